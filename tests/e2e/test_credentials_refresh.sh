#!/usr/bin/env bash
# test_credentials_refresh.sh -- temporary credentials are refreshed
# before they expire during a long run. The stand-in
# (tests/lib/cred_standin.py --rotate --ttl 4) hands out new instance
# metadata credentials valid 4 s each and fronts the harness's s3rver,
# refusing with 403 ExpiredToken any request signed with a key of its own
# that has expired. One client makes requests for ~10 s: every one must
# succeed, signed with several successive keys.
. "$(dirname "$0")/../lib/e2e.sh"
[ -n "${AWS_ENDPOINT_URL:-}" ] || { echo "needs the harness's s3rver"; echo "0 passed, 1 failed"; exit 1; }
needs_s3rver "the stand-in's rotating secrets reach the server, which must accept any signature"
LOG="$tmp/standin.log"
python3 tests/lib/cred_standin.py --port-file "$tmp/port" --log "$LOG" \
  --ttl 4 --rotate --upstream "$AWS_ENDPOINT_URL" \
  --upstream-key "$AWS_ACCESS_KEY_ID" &
STANDIN=$!
at_exit 'kill $STANDIN 2>/dev/null'
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$tmp/port")"
e2e_world refresh

# The credentials come from instance metadata only; S3 is the stand-in.
imds_env() {
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
    -u AWS_PROFILE AWS_CONFIG_FILE="$tmp/none" \
    AWS_SHARED_CREDENTIALS_FILE="$tmp/none" AWS_EC2_METADATA_DISABLED=false \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$BASE" AWS_ENDPOINT_URL="$BASE" "$@"
}

printf 'refresh test body\n' >"$tmp/body"
LONG_RUN='local s3 = require "tdm.s3"
local c = assert(s3.client())
local key = os.getenv("TDM_PREFIX") .. "/refresh.txt"
local ok, msg = c:put(os.getenv("BODY"), key)
print("put", ok and "ok" or msg)
for i = 1, 5 do
  os.execute("sleep 2")
  local h, m = c:head(key)
  print("head " .. i, h and "ok" or m)
end'
out=$(imds_env BODY="$tmp/body" tdm-lua -e "$LONG_RUN" 2>&1)
check_out "a ~10 s run with 4 s credentials: every request succeeds" \
  "put	ok
head 1	ok
head 2	ok
head 3	ok
head 4	ok
head 5	ok" printf '%s' "$out"
n=$(grep -c '^imds-creds ' "$LOG")
[ "$n" -ge 3 ] && pass || fail "expected >= 3 credential fetches from instance metadata, got $n: $(cat "$LOG")"
keys=$(grep '^s3 ' "$LOG" | awk '{print $4}' | sort -u | wc -l)
[ "$keys" -ge 3 ] && pass || fail "expected requests signed with >= 3 successive keys, got $keys: $(grep '^s3 ' "$LOG")"
check_out "no request was signed with an expired key" "0" \
  grep -c ' expired$' "$LOG"

# The stand-in's check is live: the first key, now expired, is refused.
first=$(grep '^imds-creds ' "$LOG" | head -1 | awk '{print $2}')
check_grep "an expired key is refused by the stand-in (the check above can fail)" \
  "ExpiredToken" curl -s -H "Authorization: AWS4-HMAC-SHA256 Credential=$first/20260101/us-west-1/s3/aws4_request, SignedHeaders=host, Signature=0" \
  "$BASE/$TDM_BUCKET/$TDM_PREFIX/refresh.txt"

# A bundled command runs on instance metadata credentials end to end.
mkdir -p "$TDM_DATA_ROOT"
check_grep "pull-all with instance metadata credentials" \
  "pull-all: .*errors=0" imds_env tdm-lua pull-all
finish
