# tests/lib/e2e.sh -- the set-up the shell end-to-end tests share; source
# it first:  . "$(dirname "$0")/../lib/e2e.sh"
#   * the checks of tests/lib/assert.sh;
#   * the repository root as the working directory;
#   * $tmp, a scratch directory removed at exit (on /dev/shm when there is
#     one if E2E_FAST=1 is set before sourcing: for tests that fsync a lot);
#   * at_exit 'CMD': run the shell command CMD at exit, before $tmp goes
#     (servers to stop; CMD is evaluated then, so it may name variables
#     set later);
#   * e2e_world TAG: export TDM_DATA_ROOT=$tmp/data and a key prefix of
#     this run's own, TDM_PREFIX=TAG-RUNID;
#   * free_port: a free loopback TCP port (tests/lib/s3rver.sh's);
#   * needs_s3rver REASON: end the test here (skipped, nothing failed)
#     unless tests/run.sh started s3rver (TDM_TEST_S3_SERVER, s3rver|rgw).
. "$(dirname "${BASH_SOURCE[0]}")/assert.sh"
. "$(dirname "${BASH_SOURCE[0]}")/s3rver.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
if [ "${E2E_FAST:-}" = 1 ]; then
  tmp=$(mktemp -d /dev/shm/tdm-e2e.XXXXXX 2>/dev/null ||
        mktemp -d "${TMPDIR:-/tmp}/tdm-e2e.XXXXXX")
else
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/tdm-e2e.XXXXXX")
fi
E2E_AT_EXIT=()
at_exit() { E2E_AT_EXIT+=("$1"); }
e2e_cleanup() {
  local c
  for c in "${E2E_AT_EXIT[@]}"; do eval "$c"; done
  rm -rf "$tmp"
}
trap e2e_cleanup EXIT
e2e_world() {
  export TDM_DATA_ROOT="$tmp/data"
  TDM_PREFIX="$1-$(tr -d - </proc/sys/kernel/random/uuid | cut -c1-12)"
  export TDM_PREFIX
}
needs_s3rver() {
  if [ "${TDM_TEST_S3_SERVER:-s3rver}" != s3rver ]; then
    echo "skip: needs s3rver: $1"
    echo "0 passed, 0 failed"
    exit 0
  fi
}
