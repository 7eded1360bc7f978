#!/usr/bin/env bash
# tests/run.sh -- run every suite and add up their results.
#
# Suites: C unit tests (build/tests/test_*), Lua tests (tests/lua/test_*.lua
# run by ./tdm-lua), integration tests (tests/e2e/test_*.sh and
# tests/e2e/test_*.lua) against a real S3 server started here on free
# loopback ports: s3rver (tests/lib/s3rver.sh), Ceph's RADOS Gateway
# (tests/lib/rgw.sh), or both one after the other. Each test program
# prints "N passed, N failed" last; a program that dies without that line
# counts as one failure; one that prints "skip: REASON" had nothing to test
# on this server.
#
#   tests/run.sh [PATTERN]   # only test files whose path contains PATTERN
#   TDM_TEST_S3=s3rver|rgw|both tests/run.sh   # default s3rver (make
#       # test-rgw, make test-both). C and Lua unit tests run once
#       # (against the first server), the integration tests against each
#       # server; with both, only the S3 and sync suites (test_s3*,
#       # test_sync*, test_pull*, test_audit*, test_rgw*, test_awsproxy*)
#       # once more against RGW.
#       # TDM_TEST_S3_SERVER=s3rver|rgw tells a test which server it has.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PATTERN="${1:-}"
TIMEOUT="${TDM_TEST_TIMEOUT:-300}"

. tests/lib/s3rver.sh
. tests/lib/rgw.sh
case ${TDM_TEST_S3:=s3rver} in
  s3rver) SERVERS=(s3rver) ;;
  rgw) SERVERS=(rgw) ;;
  both) SERVERS=(s3rver rgw) ;;
  *) echo "tests/run.sh: TDM_TEST_S3 must be s3rver, rgw or both," \
       "not '$TDM_TEST_S3'" >&2; exit 2 ;;
esac
trap 's3rver_stop; rgw_stop' EXIT

export TDM_TEST_ROOT="$ROOT"
# A test that drops the fake credentials must not reach this machine's
# own instance metadata (the chain's last source); the credential tests
# point AWS_EC2_METADATA_SERVICE_ENDPOINT at a stand-in instead.
export AWS_EC2_METADATA_DISABLED=true
export LUA_PATH="$ROOT/tests/lua/?.lua;$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/?.so;;"
export PATH="$ROOT:$PATH"
# B=build-asan (make check-all): the sanitized host and C tests of that
# build directory instead of the default ones.
B="${B:-build}"
TDM_LUA=./tdm-lua
if [ "$B" != build ]; then
  export PATH="$ROOT/$B:$PATH" LUA_CPATH="$ROOT/$B/?.so;;"
  TDM_LUA="$ROOT/$B/tdm-lua"
fi

total_pass=0 total_fail=0 failed_files=()
LOG=$(mktemp -d "${TMPDIR:-/tmp}/tdm-tests.XXXXXX")

run_one() {
  local name=$1; shift
  local out="$LOG/$(echo "$name" | tr '/ []' '____').log" start end last p f
  start=$(date +%s.%N)
  timeout -k 10 "$TIMEOUT" "$@" >"$out" 2>&1
  local rc=$?
  end=$(date +%s.%N)
  last=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [[ $last =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
  else
    p=0 f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  printf '%-44s %4d passed, %d failed  (%.1fs)\n' "$name" "$p" "$f" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
  grep -m 1 '^skip: ' "$out" | sed 's/^/    /'
  if [ "$f" -ne 0 ]; then
    failed_files+=("$name")
    grep -E '^not ok|rror' "$out" | head -n 20 | sed 's/^/    /'
    [ "$rc" -eq 124 ] && echo "    (timed out after ${TIMEOUT}s)"
    echo "    full log: $out"
  fi
}

matches() { [ -z "$PATTERN" ] || [[ $1 == *"$PATTERN"* ]]; }

# Whether integration test $1 runs against $2 (s3rver or rgw): RGW as the
# second server takes the suites that talk S3.
for_server() {
  [ "$2" = rgw ] && [ ${#SERVERS[@]} -gt 1 ] || return 0
  case ${1##*/} in
    test_s3*|test_sync*|test_pull*|test_audit*|test_rgw*|test_awsproxy*) return 0 ;;
  esac
  return 1
}

# Start SERVER (s3rver or rgw), stopping the other one first.
start_server() {
  s3rver_stop; rgw_stop
  case $1 in
    s3rver) s3rver_start story-boards-assets &&
            export TDM_TEST_S3_SERVER=s3rver ;;
    rgw) rgw_start story-boards-assets ;;
  esac
  local rc=$?
  trap 's3rver_stop; rgw_stop' EXIT
  if [ $rc -ne 0 ]; then
    echo "tests/run.sh: $1 did not start" >&2
    total_fail=$((total_fail + 1)); failed_files+=("($1 start)")
  fi
  return $rc
}

# No integration test chosen: one server is enough for the unit tests.
e2e_chosen=
for t in tests/e2e/test_*.sh tests/e2e/test_*.lua; do
  [ -f "$t" ] && matches "$t" && for_server "$t" "${SERVERS[-1]}" && e2e_chosen=1
done
[ -z "$e2e_chosen" ] && SERVERS=("${SERVERS[0]}")

unit_done=
for server in "${SERVERS[@]}"; do
  start_server "$server" || continue
  # A name suffix tells the second server's runs apart.
  tag=; [ ${#SERVERS[@]} -gt 1 ] && tag=" [$server]"
  if [ -z "$unit_done" ]; then
    unit_done=1
    for t in "$B"/tests/test_*; do
      [ -x "$t" ] && matches "$t" && run_one "$t" "$t"
    done
    for t in tests/lua/test_*.lua; do
      [ -f "$t" ] && matches "$t" && run_one "$t" "$TDM_LUA" "$t"
    done
  fi
  for t in tests/e2e/test_*.sh tests/e2e/test_*.lua; do
    [ -f "$t" ] || continue
    matches "$t" && for_server "$t" "$server" || continue
    case $t in
      *.sh) run_one "$t$tag" bash "$t" ;;
      *.lua) run_one "$t$tag" "$TDM_LUA" "$t" ;;
    esac
  done
done

[ ${#failed_files[@]} -gt 0 ] && echo "failing: ${failed_files[*]}"
[ "$total_fail" -eq 0 ] && rm -rf "$LOG"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
