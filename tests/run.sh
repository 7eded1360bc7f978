#!/usr/bin/env bash
# tests/run.sh -- run every suite and add up their results.
#
# Suites: C unit tests (build/tests/test_*), Lua tests (tests/lua/test_*.lua
# run by ./tdm-lua), integration tests (tests/e2e/test_*.sh and
# tests/e2e/test_*.lua) against one real s3rver started here on a free
# loopback port. Each test program prints "N passed, N failed" last; a
# program that dies without that line counts as one failure.
#
#   tests/run.sh [PATTERN]   # only test files whose path contains PATTERN
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PATTERN="${1:-}"
TIMEOUT="${TDM_TEST_TIMEOUT:-300}"

. tests/lib/s3rver.sh
s3rver_start story-boards-assets || { echo "0 passed, 1 failed"; exit 1; }
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
  local out="$LOG/$(echo "$name" | tr '/' '_').log" start end last p f
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
  if [ "$f" -ne 0 ]; then
    failed_files+=("$name")
    grep -E '^not ok|rror' "$out" | head -n 20 | sed 's/^/    /'
    [ "$rc" -eq 124 ] && echo "    (timed out after ${TIMEOUT}s)"
    echo "    full log: $out"
  fi
}

matches() { [ -z "$PATTERN" ] || [[ $1 == *"$PATTERN"* ]]; }

for t in "$B"/tests/test_*; do
  [ -x "$t" ] && matches "$t" && run_one "$t" "$t"
done
for t in tests/lua/test_*.lua; do
  [ -f "$t" ] && matches "$t" && run_one "$t" "$TDM_LUA" "$t"
done
for t in tests/e2e/test_*.sh tests/e2e/test_*.lua; do
  [ -f "$t" ] || continue
  matches "$t" || continue
  case $t in
    *.sh) run_one "$t" bash "$t" ;;
    *.lua) run_one "$t" "$TDM_LUA" "$t" ;;
  esac
done

[ ${#failed_files[@]} -gt 0 ] && echo "failing: ${failed_files[*]}"
[ "$total_fail" -eq 0 ] && rm -rf "$LOG"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
