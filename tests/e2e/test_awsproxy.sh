#!/usr/bin/env bash
# test_awsproxy.sh -- tests/lib/awsproxy.js answers as AWS S3 does, checked
# with botocore itself (tests/oracle/awsproxy_botocore.py): SSE-KMS ETags
# and headers, region errors botocore re-signs on, checksums botocore
# verifies, conditional PUTs. Runs against the server tests/run.sh started
# (s3rver or RGW).
. "$(dirname "$0")/../lib/e2e.sh"
. tests/lib/awsproxy.sh
e2e_world t/awsproxy

awsproxy_start "" || { fail "awsproxy starts"; finish; exit 1; }
at_exit awsproxy_stop
out=$(/usr/bin/python3 tests/oracle/awsproxy_botocore.py "$AWSPROXY_URL" \
  "$AWSPROXY_URL" story-boards-assets "$TDM_PREFIX" 2>&1)
rc=$?
echo "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
if [[ $(tail -n 1 <<<"$out") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  PASSED=$((PASSED + BASH_REMATCH[1])) FAILED=$((FAILED + BASH_REMATCH[2]))
else
  fail "botocore oracle ran to the end (exit $rc)"
fi
[ "$rc" -eq 0 ] || [ "$FAILED" -gt 0 ] || fail "oracle exit $rc"

# The stop is clean and the usage errors are one line, exit 2.
check_rc "unknown mode refused" 2 node tests/lib/awsproxy.js \
  --upstream http://127.0.0.1:1 --modes sse-kmx
check_grep "unknown mode named" "unknown mode 'sse-kmx'" node tests/lib/awsproxy.js \
  --upstream http://127.0.0.1:1 --modes sse-kmx
finish
