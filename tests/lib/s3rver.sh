# tests/lib/s3rver.sh -- start a real S3-compatible server (s3rver, from the
# pinned npm package) on a free loopback port, for the tests and the demo.
#
#   . tests/lib/s3rver.sh
#   s3rver_start [BUCKET...]   # exports AWS_ENDPOINT_URL, fake credentials,
#                              # TDM_S3_DIR; registers a trap to stop it
#   s3rver_stop
#
# s3rver 3.7.1 on Node 20 needs --openssl-legacy-provider: its listing
# continuation tokens use DES, and without it every listing past 1000 keys
# fails with a 500.

S3RVER_JS="${S3RVER_JS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/node_modules/s3rver/bin/s3rver.js}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

s3rver_start() {
  local buckets=("$@") port dir args=() i
  [ ${#buckets[@]} -eq 0 ] && buckets=(story-boards-assets)
  if [ ! -f "$S3RVER_JS" ]; then
    echo "s3rver not installed ($S3RVER_JS); run scripts/install-deps.sh" >&2
    return 1
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tdm-s3rver.XXXXXX")
  for b in "${buckets[@]}"; do args+=(--configure-bucket "$b"); done
  for i in 1 2 3 4 5; do
    port=$(free_port)
    node --openssl-legacy-provider "$S3RVER_JS" --silent \
      --address 127.0.0.1 --port "$port" --directory "$dir/store" \
      "${args[@]}" >"$dir/log" 2>&1 &
    S3RVER_PID=$!
    local tries=0
    while [ $tries -lt 100 ]; do
      if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
        break
      fi
      kill -0 "$S3RVER_PID" 2>/dev/null || break
      sleep 0.1; tries=$((tries + 1))
    done
    if kill -0 "$S3RVER_PID" 2>/dev/null &&
       curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      break
    fi
    kill "$S3RVER_PID" 2>/dev/null; wait "$S3RVER_PID" 2>/dev/null
    S3RVER_PID=
  done
  if [ -z "$S3RVER_PID" ]; then
    echo "s3rver failed to start; log:" >&2; cat "$dir/log" >&2
    return 1
  fi
  S3RVER_DIR=$dir
  export TDM_S3_DIR="$dir/store"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=S3RVER
  export AWS_SECRET_ACCESS_KEY=S3RVER
  export AWS_REGION=us-west-1
  unset AWS_SESSION_TOKEN AWS_PROFILE
  trap s3rver_stop EXIT
}

s3rver_stop() {
  if [ -n "${S3RVER_PID:-}" ]; then
    kill "$S3RVER_PID" 2>/dev/null
    wait "$S3RVER_PID" 2>/dev/null
    S3RVER_PID=
  fi
  [ -n "${S3RVER_DIR:-}" ] && rm -rf "$S3RVER_DIR"
  S3RVER_DIR=
}
