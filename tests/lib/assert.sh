# tests/lib/assert.sh -- checks for shell tests; `finish` prints
# "N passed, N failed". Each check says what it expected and what it got.
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }

# check_rc NAME WANT_RC CMD... : exit code of CMD
check_rc() {
  local name=$1 want=$2; shift 2
  "$@" >/dev/null 2>&1; local rc=$?
  [ "$rc" -eq "$want" ] && pass || fail "$name: expected exit $want, got $rc"
}
# check_out NAME WANT CMD... : stdout of CMD equals WANT exactly
check_out() {
  local name=$1 want=$2; shift 2
  local got; got=$("$@" 2>&1)
  [ "$got" == "$want" ] && pass || fail "$name: expected '$want', got '$got'"
}
# check_grep NAME REGEX CMD... : stdout+stderr of CMD matches REGEX
check_grep() {
  local name=$1 re=$2; shift 2
  local got; got=$("$@" 2>&1)
  if grep -qE -- "$re" <<<"$got"; then pass
  else fail "$name: expected output matching '$re', got '$(head -c 400 <<<"$got")'"; fi
}
# check NAME CONDITION-CMD... : CMD succeeds
check() {
  local name=$1; shift
  if "$@"; then pass; else fail "$name"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
