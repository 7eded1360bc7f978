#!/usr/bin/env bash
# test_rgw_harness.sh -- self-test of tests/lib/rgw.sh against the RGW
# tests/run.sh started: it checks signatures and Content-MD5, encrypts with
# the SSE-KMS test keys, knows its region; and a second cluster started
# here beside it (its own ports, OSD ports too) comes up and rgw_stop
# leaves no process and no directory behind.
. "$(dirname "$0")/../lib/e2e.sh"
needs_rgw() {
  if [ "${TDM_TEST_S3_SERVER:-s3rver}" != rgw ]; then
    echo "skip: needs rgw: the RGW harness itself"
    echo "0 passed, 0 failed"; exit 0
  fi
}
needs_rgw
B="$AWS_ENDPOINT_URL/story-boards-assets"
P="harness-rgw-$(tr -d - </proc/sys/kernel/random/uuid | cut -c1-12)"
SIG=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
PAYLOAD=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
echo "hello rgw" > "$tmp/obj"

# code URL CURL-ARGS...: the HTTP status of a signed request
code() {
  local url=$1; shift
  curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" "$url"
}

c=$(code "$B/$P/a" "${SIG[@]}" "${PAYLOAD[@]}" -T "$tmp/obj")
[ "$c" = 200 ] && pass || fail "signed PUT: expected 200, got $c"
c=$(code "$B/$P/a" --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
  --user "$AWS_ACCESS_KEY_ID:wrong-secret" "${PAYLOAD[@]}")
[ "$c" = 403 ] && grep -q SignatureDoesNotMatch "$tmp/body" && pass ||
  fail "wrong secret: expected 403 SignatureDoesNotMatch, got $c $(cat "$tmp/body")"
c=$(code "$B/$P/a")
[ "$c" = 403 ] && pass || fail "anonymous GET: expected 403, got $c"
c=$(code "$B/$P/bad" "${SIG[@]}" "${PAYLOAD[@]}" -T "$tmp/obj" \
  -H "Content-MD5: $(printf 'other' | openssl md5 -binary | base64)")
[ "$c" = 400 ] && grep -q BadDigest "$tmp/body" && pass ||
  fail "wrong Content-MD5: expected 400 BadDigest, got $c $(cat "$tmp/body")"
c=$(code "$B/$P/bad" "${SIG[@]}" "${PAYLOAD[@]}" -I)
[ "$c" = 404 ] && pass || fail "nothing stored after BadDigest: expected 404, got $c"
# SSE-KMS and the region through botocore (curl 7.88 signs neither extra
# x-amz- headers nor a bare ?location as RGW expects).
out=$(/usr/bin/python3 - "$P" "$RGW_KMS_KEY_ID" <<'PY' 2>&1
import os, sys
import botocore.session
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-west-1")
k = sys.argv[1] + "/kms"
c.put_object(Bucket="story-boards-assets", Key=k, Body=b"secret bytes",
             ServerSideEncryption="aws:kms", SSEKMSKeyId=sys.argv[2])
g = c.get_object(Bucket="story-boards-assets", Key=k)
print("kms", g["Body"].read() == b"secret bytes", g.get("ServerSideEncryption"),
      g.get("SSEKMSKeyId"))
print("location", c.get_bucket_location(Bucket="story-boards-assets")["LocationConstraint"])
PY
)
check_grep "SSE-KMS object read back, encrypted with the test key" \
  "^kms True aws:kms $RGW_KMS_KEY_ID\$" echo "$out"
check_grep "the bucket's region is the zonegroup's" "^location $AWS_REGION\$" echo "$out"
for k in a kms; do curl -s -o /dev/null -X DELETE "${SIG[@]}" "${PAYLOAD[@]}" "$B/$P/$k"; done

# A second cluster beside the first: other ports, then gone without a trace.
second=$(
  . tests/lib/rgw.sh
  rgw_start other-bucket >/dev/null 2>"$tmp/second.err" || exit 1
  pids=$(cat "$RGW_DIR"/run/*.pid | tr '\n' ' ')
  echo "$RGW_DIR|$AWS_ENDPOINT_URL|$pids"
  rgw_stop
  trap - EXIT
)
IFS='|' read -r dir2 ep2 pids2 <<<"$second"
[ -n "$ep2" ] && [ "$ep2" != "$AWS_ENDPOINT_URL" ] && pass ||
  fail "second cluster started on its own port: got '$second' $(cat "$tmp/second.err")"
alive=
for p in $pids2; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
[ -n "$pids2" ] && [ -z "$alive" ] && pass ||
  fail "rgw_stop ends radosgw, osd, mon: pids '$pids2', still alive '$alive'"
[ -n "$dir2" ] && [ ! -e "$dir2" ] && pass || fail "rgw_stop removes $dir2"
c=$(code "$B/$P/a" "${SIG[@]}" "${PAYLOAD[@]}" -I)
[ "$c" = 404 ] && pass || fail "the first cluster still answers: expected 404, got $c"
finish
