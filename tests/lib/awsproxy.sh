# tests/lib/awsproxy.sh -- start tests/lib/awsproxy.js (AWS S3's answers:
# SSE-KMS ETags, regions, checksums, conditional PUTs) in front of the S3
# server tests/run.sh started ($AWS_ENDPOINT_URL).
#
#   . tests/lib/awsproxy.sh
#   awsproxy_start MODES [awsproxy.js options...]
#       # MODES e.g. "sse-kms,region=eu-central-1,checksums,conditional";
#       # sets AWSPROXY_URL (http://127.0.0.1:PORT), AWSPROXY_PID; does not
#       # change AWS_ENDPOINT_URL -- point tdm at the proxy per command:
#       #   AWS_ENDPOINT_URL=$AWSPROXY_URL tdm-lua pull-all ...
#   awsproxy_stats               # JSON counters on stdout
#   awsproxy_config '{"modes":"sse-kms"}'   # change settings at run time
#   awsproxy_stop
AWSPROXY_JS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/awsproxy.js"
. "$(dirname "${BASH_SOURCE[0]}")/nodeproxy.sh"

awsproxy_start() {
  local modes=$1; shift
  nodeproxy_start AWSPROXY "$AWSPROXY_JS" \
    "${AWSPROXY_UPSTREAM:-$AWS_ENDPOINT_URL}" --modes "$modes" "$@"
}

awsproxy_stats() { curl -s "$AWSPROXY_URL/__stats"; }

awsproxy_config() {
  curl -s -X POST --data-binary "$1" "$AWSPROXY_URL/__config" >/dev/null
}

awsproxy_stop() { nodeproxy_stop AWSPROXY; }
