#!/usr/bin/env bash
# scripts/test.sh -- install what the tests need, build, run every suite.
# The last line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)" all test-c >/dev/null
exec tests/run.sh "$@"
