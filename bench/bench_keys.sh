#!/usr/bin/env bash
# bench/bench_keys.sh -- peak RSS and cost per key of a no-op pull-all as
# the bucket grows (issue 17: 100,000 actors x 17 keys under 64 MB, time
# per key flat from N = 1,000 up).
#
#   bench/bench_keys.sh [--actors 1000,10000,100000] [--out DIR]
#
# Starts its own s3rver; scratch and its store on /dev/shm (bench_tmpfs in
# bench/lib.sh). For each N: N actors x 17 zero-byte objects,
# written straight into s3rver's store, and the same zero-byte files in a
# local data root (bench/tiny_world.py); then two `tdm-lua pull-all` runs
# under /usr/bin/time: the first finds no manifests (it hashes the empty
# files and writes N manifests), the second, after the racy window, is the
# true no-op (everything current, nothing hashed or written). Reports peak
# RSS, wall time, client CPU and both per key, and the s3rver process's CPU
# (its ListObjectsV2 walks the whole prefix directory for every page, so
# the server's cost per page grows with N; tdm's own cost per key is the
# client CPU column). Rows to DIR/results.tsv, table to DIR/report.md.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACTORS=1000,10000,100000 OUT=$ROOT/bench/out/keys
while [ $# -gt 0 ]; do
  case $1 in
    --actors) ACTORS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_keys.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
make -s -j2 > /dev/null || { echo "bench_keys.sh: build failed" >&2; exit 1; }

. bench/lib.sh
bench_tmpfs
WORK=${TDM_BENCH_DIR:-$TMPDIR/tdm-bench}/keys
mkdir -p "$WORK"
tdm_snapshot "$WORK/tdm" || exit 1
. tests/lib/s3rver.sh
BUCKET=story-boards-assets
s3rver_start "$BUCKET" > /dev/null || exit 1
STORE=$TDM_S3_DIR/$BUCKET
trap 's3rver_stop' EXIT
export TDM_BUCKET=$BUCKET
unset TDM_CONFIG TDM_JOBS

mkdir -p "$OUT"
bench_init "$OUT/results.tsv"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUILD=${TDM_BENCH_SNAPSHOT:-$(git rev-parse --short HEAD)}   # what is measured

# bench_rss with the s3rver's CPU over the same run in the note column.
rss_srv() {
  local c0 c1 rc
  c0=$(proc_ticks "$S3RVER_PID")
  bench_rss "$@"; rc=$?
  c1=$(proc_ticks "$S3RVER_PID")
  echo "$1	s3rver_cpu_s	$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" \
    'BEGIN { printf "%.1f", c / hz }')" >> "$OUT/server.tsv"
  return $rc
}
: > "$OUT/server.tsv"

for n in ${ACTORS//,/ }; do
  P=keys$n/training_data D=$WORK/data-$n
  rm -rf "$D" "${STORE:?}/keys$n"
  echo "bench_keys: N=$n: writing $((n * 17)) objects and files" >&2
  t0=$(now_ns)
  bench/tiny_world.py --actors "$n" --size 0 --store "$STORE" --prefix "$P" \
    --data-root "$D" > /dev/null || exit 1
  echo "bench_keys: N=$n: written in $(( ($(now_ns) - t0) / 1000000000 )) s" >&2
  export TDM_DATA_ROOT=$D TDM_PREFIX=$P
  BENCH_CHECK="[ \$(ls $D/actor_manifests | grep -c '_manifest.json\$') -eq $n ]" \
    rss_srv "rss pull-all, no manifests yet, N=$n" "tdm-lua pull-all" tdm 1 \
    $((n * 17)) "$TDM_LUA" pull-all --quiet
  sleep 2
  rss_srv "rss pull-all, no-op, N=$n" "tdm-lua pull-all" tdm 1 \
    $((n * 17)) "$TDM_LUA" pull-all
  tail -n 1 "$BENCH_LOG" >&2
  unset TDM_DATA_ROOT TDM_PREFIX
  rm -rf "$D" "${STORE:?}/keys$n"
done

{
  echo "<!-- bench/bench_keys.sh --actors $ACTORS;" \
    "$(date -u +%Y-%m-%dT%H:%MZ); tdm $BUILD;" \
    "load average $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg)" \
    "at end -->"
  echo
  python3 bench/report.py "$OUT/results.tsv"
  echo
  echo "| measurement | s3rver CPU s |"
  echo "| --- | ---: |"
  awk -F'\t' '{ printf "| %s | %s |\n", $1, $3 }' "$OUT/server.tsv"
} > "$OUT/report.md"
cat "$OUT/report.md"
