#!/usr/bin/env bash
# test_credentials_leak.sh -- secrets never reach any output: every bundled
# command (default and --json output, the most verbose there is) runs
# with known fake AWS credentials and a session token against the test
# s3rver, against an endpoint that refuses connections, and against a
# bucket that does not exist; then the HTTP API is queried. Everything
# printed to stdout and stderr is grepped for the secret and the token.
# Commands' own results are not judged here, only what they print.
. "$(dirname "$0")/../lib/e2e.sh"
serve_pid=
at_exit '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null'
ALL="$tmp/all-output"; : >"$ALL"

SECRET="LEAKsecretKEY/never+shown0123456789abcdef"
TOKEN="LEAKsessionTOKEN/never+shown=zzzzzzzzzzzz"
# The key id stays the harness's (s3rver checks it; it accepts any
# signature, so a fake secret still gets real answers).
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-S3RVER}"
export AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$TOKEN"
e2e_world leaktest
unset TDM_API_TOKEN

actor=0042_leak
mkdir -p "$TDM_DATA_ROOT/actors/$actor/training_data"
# JPEG magic first: push holds back bytes that are not an image
{ printf '\377\330\377'; head -c 3000 /dev/urandom; } >"$TDM_DATA_ROOT/actors/$actor/training_data/${actor}_1.jpg"
{ printf '\377\330\377'; head -c 2000 /dev/urandom; } >"$TDM_DATA_ROOT/actors/$actor/training_data/${actor}_2.jpg"
printf '{"training_data": {"urls": ["https://story-boards-assets.s3.us-west-1.amazonaws.com/%s/%s/%s_1.jpg"]}}\n' \
  "$TDM_PREFIX" "$actor" "$actor" >"$TDM_DATA_ROOT/actors/$actor/response.json"

runs=0
# run LABEL CMD...: run with a time limit; collect all output; check it.
run() {
  local label=$1; shift
  local out="$tmp/out.$runs" rc
  runs=$((runs + 1))
  timeout -k 5 60 "$@" >"$out" 2>&1; rc=$?
  cat "$out" >>"$ALL"
  if grep -q -F -e "$SECRET" -e "$TOKEN" "$out"; then
    fail "$label: printed the secret key or session token: $(grep -F -e LEAK "$out" | head -c 300)"
  else
    pass
  fi
  [ "$rc" -lt 128 ] || [ "$rc" -eq 130 ] ||
    echo "# note: $label ended with status $rc"
}

run "config" tdm-lua config
run "config --json" tdm-lua config --json
run "push" tdm-lua push 42
run "sync-manifests --json" tdm-lua sync-manifests --json
run "pull" tdm-lua pull 42
run "audit --json" tdm-lua audit --json
run "migrate --dry-run" tdm-lua migrate --dry-run
rm -f "$TDM_DATA_ROOT/actors/$actor/training_data/${actor}_1.jpg"
run "pull after a local delete" tdm-lua pull 42
run "pull-all --json" tdm-lua pull-all --json
# Not vacuous: signed requests carrying the token reached S3.
if [ -n "${TDM_S3_DIR:-}" ]; then
  find "$TDM_S3_DIR" -path "*$TDM_PREFIX*" | grep -q . && pass ||
    fail "push stored nothing under $TDM_PREFIX: the commands never reached S3"
fi

# Failure paths: connection refused, a missing bucket, an access key id
# the server does not know (403 InvalidAccessKeyId).
AWS_ENDPOINT_URL=http://127.0.0.1:1 run "refused push" tdm-lua push 42
TDM_BUCKET=no-such-bucket-$$ run "no bucket push --json" tdm-lua push --json 42
AWS_ACCESS_KEY_ID=AKIAUNKNOWN00000000 run "unknown key sync-manifests --json" \
  tdm-lua sync-manifests --json

# The HTTP API (access log on stderr) and its S3-backed paths.
port=$(free_port)
tdm-lua serve --listen "127.0.0.1:$port" >"$tmp/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.1
done
run "API GET" curl -s "http://127.0.0.1:$port/api/actors/42/training-data"
run "API DELETE with s3" curl -s -X DELETE \
  "http://127.0.0.1:$port/api/actors/42/training-data/${actor}_2.jpg?s3=true"
kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=
run "serve's own output" cat "$tmp/serve.out"

# Not vacuous: the commands did talk to S3 and print things.
lines=$(wc -l <"$ALL")
[ "$lines" -gt 40 ] && pass || fail "only $lines lines of output were checked"
grep -q "$actor" "$ALL" && pass ||
  fail "no output mentioned the actor $actor: the commands did not run"
echo "# $runs runs, $lines lines of output checked for the secret and token"
finish
