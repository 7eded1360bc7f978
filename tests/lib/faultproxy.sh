# tests/lib/faultproxy.sh -- start/stop tests/lib/faultproxy.js in front of
# the s3rver that tests/run.sh started ($AWS_ENDPOINT_URL).
#
#   . tests/lib/faultproxy.sh
#   faultproxy_start [faultproxy.js options...]
#       # sets FAULTPROXY_URL (http://127.0.0.1:PORT), FAULTPROXY_PID,
#       # FAULTPROXY_UPSTREAM (the real endpoint); does not change
#       # AWS_ENDPOINT_URL -- point tdm at the proxy per command:
#       #   AWS_ENDPOINT_URL=$FAULTPROXY_URL tdm-lua pull-all ...
#   faultproxy_stats            # JSON counters on stdout
#   faultproxy_config '{"p503":0}'   # change settings at run time
#   faultproxy_stop

FAULTPROXY_JS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/faultproxy.js"
. "$(dirname "${BASH_SOURCE[0]}")/nodeproxy.sh"

faultproxy_start() {
  FAULTPROXY_UPSTREAM=${FAULTPROXY_UPSTREAM:-$AWS_ENDPOINT_URL}
  nodeproxy_start FAULTPROXY "$FAULTPROXY_JS" "$FAULTPROXY_UPSTREAM" "$@"
}

faultproxy_stats() { curl -s "$FAULTPROXY_URL/__stats"; }

faultproxy_config() {
  curl -s -X POST --data-binary "$1" "$FAULTPROXY_URL/__config" >/dev/null
}

faultproxy_stop() { nodeproxy_stop FAULTPROXY; }
