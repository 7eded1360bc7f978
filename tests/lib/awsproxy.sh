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

awsproxy_start() {
  local modes=$1; shift
  AWSPROXY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tdm-awsproxy.XXXXXX")
  node "$AWSPROXY_JS" --upstream "${AWSPROXY_UPSTREAM:-$AWS_ENDPOINT_URL}" \
    --modes "$modes" --port-file "$AWSPROXY_DIR/port" \
    --log "$AWSPROXY_DIR/log" "$@" >"$AWSPROXY_DIR/out" 2>&1 &
  AWSPROXY_PID=$!
  local i=0
  while [ ! -s "$AWSPROXY_DIR/port" ] && [ $i -lt 100 ]; do
    kill -0 "$AWSPROXY_PID" 2>/dev/null || break
    sleep 0.05; i=$((i + 1))
  done
  if [ ! -s "$AWSPROXY_DIR/port" ]; then
    echo "awsproxy failed to start:" >&2; cat "$AWSPROXY_DIR/out" >&2
    return 1
  fi
  AWSPROXY_URL="http://127.0.0.1:$(cat "$AWSPROXY_DIR/port")"
}

awsproxy_stats() { curl -s "$AWSPROXY_URL/__stats"; }

awsproxy_config() {
  curl -s -X POST --data-binary "$1" "$AWSPROXY_URL/__config" >/dev/null
}

awsproxy_stop() {
  if [ -n "${AWSPROXY_PID:-}" ]; then
    kill "$AWSPROXY_PID" 2>/dev/null
    wait "$AWSPROXY_PID" 2>/dev/null
    AWSPROXY_PID=
  fi
  [ -n "${AWSPROXY_DIR:-}" ] && rm -rf "$AWSPROXY_DIR"
  AWSPROXY_DIR=
}
