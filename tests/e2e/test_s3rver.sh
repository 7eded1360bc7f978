#!/usr/bin/env bash
# test_s3rver.sh -- self-test of the harness: the S3 server started by
# tests/run.sh (s3rver or RGW) takes a signed PUT, lists more than 1000
# keys across pages, and serves a GET, all through curl --aws-sigv4.
. "$(dirname "$0")/../lib/e2e.sh"
: "${AWS_ENDPOINT_URL:?run through tests/run.sh, which starts s3rver}"
B="$AWS_ENDPOINT_URL/story-boards-assets"
SIG=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
PAYLOAD=(-H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

echo "hello s3" > "$tmp/obj"
code=$(curl -s -o /dev/null -w '%{http_code}' "${SIG[@]}" "${PAYLOAD[@]}" \
  -T "$tmp/obj" "$B/harness/hello.txt")
[ "$code" = 200 ] && pass || fail "signed PUT: expected 200, got $code"

code=$(curl -s -o "$tmp/got" -w '%{http_code}' "${SIG[@]}" "${PAYLOAD[@]}" \
  "$B/harness/hello.txt")
[ "$code" = 200 ] && pass || fail "GET: expected 200, got $code"
check "GET returns the bytes PUT" cmp -s "$tmp/obj" "$tmp/got"

# 1100 keys in one curl run (a config file of uploads, 16 at a time).
: > "$tmp/many.cfg"
for i in $(seq -w 1 1100); do
  printf 'upload-file = "%s"\nurl = "%s/harness/many/k%s"\n' \
    "$tmp/obj" "$B" "$i" >> "$tmp/many.cfg"
done
curl -s --parallel --parallel-max 16 "${SIG[@]}" "${PAYLOAD[@]}" \
  -K "$tmp/many.cfg" -o /dev/null
total=0 token= pages=0
while :; do
  # The query sorted and fully encoded, as SigV4 canonicalises it: curl
  # signs it as written (s3rver does not check, RGW does).
  url="$B?list-type=2&max-keys=1000&prefix=harness%2Fmany%2F"
  [ -n "$token" ] && url="$B?continuation-token=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$token")&${url#*\?}"
  code=$(curl -s -o "$tmp/list.xml" -w '%{http_code}' "${SIG[@]}" \
    "${PAYLOAD[@]}" "$url")
  [ "$code" = 200 ] || { fail "LIST page $pages: HTTP $code: $(head -c 300 "$tmp/list.xml")"; break; }
  pages=$((pages + 1))
  n=$(grep -o '<Key>' "$tmp/list.xml" | wc -l)
  total=$((total + n))
  token=$(sed -n 's:.*<NextContinuationToken>\([^<]*\)</NextContinuationToken>.*:\1:p' "$tmp/list.xml")
  [ -z "$token" ] && break
  [ $pages -gt 5 ] && break
done
[ "$total" = 1100 ] && pass || fail "LIST total: expected 1100 keys, got $total"
[ "$pages" = 2 ] && pass || fail "LIST pages: expected 2, got $pages"
finish
