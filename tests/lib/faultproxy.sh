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

faultproxy_start() {
  FAULTPROXY_UPSTREAM=${FAULTPROXY_UPSTREAM:-$AWS_ENDPOINT_URL}
  FAULTPROXY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tdm-faultproxy.XXXXXX")
  node "$FAULTPROXY_JS" --upstream "$FAULTPROXY_UPSTREAM" \
    --port-file "$FAULTPROXY_DIR/port" --stats-file "$FAULTPROXY_DIR/stats" \
    --log "$FAULTPROXY_DIR/log" "$@" >"$FAULTPROXY_DIR/out" 2>&1 &
  FAULTPROXY_PID=$!
  local i=0
  while [ ! -s "$FAULTPROXY_DIR/port" ] && [ $i -lt 100 ]; do
    kill -0 "$FAULTPROXY_PID" 2>/dev/null || break
    sleep 0.05; i=$((i + 1))
  done
  if [ ! -s "$FAULTPROXY_DIR/port" ]; then
    echo "faultproxy failed to start:" >&2; cat "$FAULTPROXY_DIR/out" >&2
    return 1
  fi
  FAULTPROXY_URL="http://127.0.0.1:$(cat "$FAULTPROXY_DIR/port")"
}

faultproxy_stats() { curl -s "$FAULTPROXY_URL/__stats"; }

faultproxy_config() {
  curl -s -X POST --data-binary "$1" "$FAULTPROXY_URL/__config" >/dev/null
}

faultproxy_stop() {
  if [ -n "${FAULTPROXY_PID:-}" ]; then
    kill "$FAULTPROXY_PID" 2>/dev/null
    wait "$FAULTPROXY_PID" 2>/dev/null
    FAULTPROXY_PID=
  fi
  [ -n "${FAULTPROXY_DIR:-}" ] && rm -rf "$FAULTPROXY_DIR"
  FAULTPROXY_DIR=
}
