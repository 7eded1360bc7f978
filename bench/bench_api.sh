#!/usr/bin/env bash
# bench/bench_api.sh -- load test of `tdm-lua serve`: wrk with 50
# concurrent connections for 10 s against GET
# /api/actors/:actorId/training-data; prints requests/s, p50/p99 latency,
# errors and non-2xx responses. Not part of `make test` (the test suite
# runs a 2 s version in tests/e2e/test_api.lua).
#
#   bench/bench_api.sh [--duration 10s] [--connections 50] [--threads N]
#                      [--quiet-log]
#
# Starts its own s3rver (tests/lib/s3rver.sh) and a generated data root
# (tests/lib/fixture.lua: the scenario actors plus 5 actors of 17 synced
# images), then benchmarks two actors: 0011 (6 images, mixed states) and
# 1001 (17 images). --threads is the server's worker-thread count
# (default 4); --quiet-log turns the access log off (default: on, to a
# file, as in production). Exit 1 when any request failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=10s CONNS=50 THREADS=4 QUIET=
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --quiet-log) QUIET=--quiet; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench_api: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "bench_api: wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }
make -s -j2 >/dev/null || exit 2

. tests/lib/s3rver.sh
s3rver_start story-boards-assets || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/tdm-bench-api.XXXXXX")
srv=
cleanup() { [ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null && wait "$srv"; rm -rf "$work"; s3rver_stop; }
trap cleanup EXIT

prefix="bench/api$$"
TDM_TEST_ROOT=$ROOT ./tdm-lua -e "
  local fixture = dofile('$ROOT/tests/lib/fixture.lua')
  fixture.generate { data_root = '$work/data', prefix = '$prefix', bulk = 5 }
  local sync = require('tdm').Sync.new { data_root = '$work/data', prefix = '$prefix' }
  for _, id in ipairs { 11, 1001 } do assert(sync:auto_initialize_manifest(id)) end" ||
  { echo "bench_api: fixture failed" >&2; exit 2; }

./tdm-lua serve --listen 127.0.0.1:0 --threads "$THREADS" $QUIET \
  --data-root "$work/data" --prefix "$prefix" 2>"$work/serve.log" &
srv=$!
for _ in $(seq 1 100); do
  base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/serve.log")
  [ -n "$base" ] && break
  sleep 0.05
done
[ -n "$base" ] || { echo "bench_api: serve did not start"; cat "$work/serve.log"; exit 2; }

status=0
echo "tdm-lua serve, $THREADS worker threads, access log ${QUIET:+off}${QUIET:-on}; wrk -t2 -c$CONNS -d$DURATION"
printf '%-34s %10s %10s %10s %8s %8s\n' "GET" "req/s" "p50" "p99" "errors" "non-2xx"
for id in 11 1001; do
  url="$base/api/actors/$id/training-data"
  curl -sf "$url" >/dev/null || { echo "bench_api: GET $url failed"; status=1; continue; }
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$url" 2>&1)
  echo "$out" > "$work/wrk_$id.txt"
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  errs=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  printf '%-34s %10s %10s %10s %8s %8s\n' "/api/actors/$id/training-data" \
    "$rps" "$p50" "$p99" "${errs:-0}" "${non2xx:-0}"
  [ "${errs:-0}" = 0 ] && [ "${non2xx:-0}" = 0 ] || status=1
done
echo "access log lines: $(grep -c ' GET /api/' "$work/serve.log")"
exit $status
