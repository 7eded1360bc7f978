#!/usr/bin/env bash
# bench/bench_md5.sh -- tdm.md5_file throughput vs md5sum and openssl.
#
#   bench/bench_md5.sh [--runs N] [--size-mb MB] [--tree DIR]
#                      [--append RESULTS.tsv] [--op NAME]
#
# Hashes a file set (default: a ~1 GB generated set of 150-500 KB files in
# $TDM_BENCH_DIR/md5set, /tmp/tdm-bench by default; --tree DIR hashes every
# file under DIR instead) with, alternating, in each of N runs (default 5):
#   tdm        one tdm-lua process calling tdm.md5_file on each file
#              (bench/md5_files.lua; a copy of the built tdm-lua, see
#              tdm_snapshot in bench/lib.sh, or $TDM_LUA when set)
#   md5sum     one md5sum process over all files
#   md5sum -P2 xargs -P2 md5sum (both cores)
# and reports `openssl speed -evp md5 -bytes 16384` (one core, 16 KB
# blocks) as the per-core limit. The page cache is warmed first (every
# file read once), so this measures hashing, not the disk. Before timing,
# tdm's digests are checked against md5sum's for every file.
#
# Prints a Markdown table (bench/report.py); the ratio on tdm's line is
# md5sum's median time / tdm's (>= 0.95 is issue 2's target). With
# --append the rows are added to RESULTS.tsv instead (used by run.sh).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${TDM_BENCH_RUNS:-5} SIZE_MB=1024 TREE= APPEND= OP="md5 (hash ~1 GB)"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --tree) TREE=$2; shift 2 ;;
    --append) APPEND=$2; shift 2 ;;
    --op) OP=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_md5.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

[ -x ./tdm-lua ] || { echo "bench_md5.sh: build first (make)" >&2; exit 1; }
WORK=${TDM_BENCH_DIR:-/tmp/tdm-bench}
mkdir -p "$WORK"
[ -n "${TDM_LUA:-}" ] || tdm_snapshot "$WORK/tdm-md5" || exit 1
if [ -z "$TREE" ]; then
  # 17 files of 325 KB on average per actor.
  actors=$(( (SIZE_MB * 1048576 + 17 * 332800 - 1) / (17 * 332800) ))
  TREE=$WORK/md5set
  echo "bench_md5: generating $actors actors x 17 files in $TREE" >&2
  bench/gen_dataset.py --actors "$actors" "$TREE" > /dev/null || exit 1
fi
LIST=$WORK/md5.list
find "$TREE" -type f -print | LC_ALL=C sort > "$LIST"
files=$(wc -l < "$LIST")
bytes=$(tr '\n' '\0' < "$LIST" | du -cb --files0-from=- | tail -n 1 | cut -f1)
echo "bench_md5: $files files, $bytes bytes" >&2

if [ -n "$APPEND" ]; then
  BENCH_RESULTS=$APPEND
  BENCH_LOG=${BENCH_LOG:-$(dirname "$APPEND")/bench.log}
else
  bench_init "bench/out/md5.tsv"
fi

# Correctness first (this also warms the page cache).
warm_cache "$TREE"
if ! diff -q <("$TDM_LUA" bench/md5_files.lua "$LIST" --print) \
             <(tr '\n' '\0' < "$LIST" | xargs -0 md5sum) > /dev/null; then
  echo "bench_md5: tdm's digests differ from md5sum's" >&2
  exit 1
fi

run_tdm() { "$TDM_LUA" bench/md5_files.lua "$LIST"; }
run_md5sum() { tr '\n' '\0' < "$LIST" | xargs -0 md5sum > /dev/null; }
run_md5sum_p2() {
  tr '\n' '\0' < "$LIST" | xargs -0 -P2 -n 64 md5sum > /dev/null
}
tools=(tdm md5sum md5sum-P2)
for run in $(seq 1 "$RUNS"); do
  # Rotate the order each run so no tool always goes first.
  for k in 0 1 2; do
    t=${tools[$(( (run + k) % 3 ))]}
    case $t in
      tdm) bench_run "$OP" "tdm md5_file" tdm "$run" "$bytes" "$files" \
             run_tdm ;;
      md5sum) bench_run "$OP" "md5sum" peer "$run" "$bytes" "$files" \
                run_md5sum ;;
      md5sum-P2) bench_run "$OP" "xargs -P2 md5sum" peer "$run" "$bytes" \
                   "$files" run_md5sum_p2 ;;
    esac
  done
done

# Per-core limit: OpenSSL's own loop over 16 KB blocks, in 1000s of B/s,
# turned into the time that speed needs for this file set.
kps=$(openssl speed -evp md5 -bytes 16384 -seconds 3 2>/dev/null |
  awk '$1 == "md5" { v = $NF } END { sub(/k$/, "", v); print v }')
if [ -n "$kps" ]; then
  secs=$(awk -v b="$bytes" -v k="$kps" 'BEGIN { printf "%.4f", b / (k * 1000) }')
  bench_row "$OP" "openssl speed -evp md5 (1 core)" ref 1 ok "$secs" \
    "$bytes" "$files" "" "" "16 KB blocks"
fi

[ -z "$APPEND" ] && python3 bench/report.py "$BENCH_RESULTS"
exit 0
