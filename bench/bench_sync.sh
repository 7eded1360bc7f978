#!/usr/bin/env bash
# bench/bench_sync.sh -- tdm's sync commands beside aws s3 sync, rclone and
# s3cmd doing the same work on the same local s3rver. Small and
# self-contained (the big suite is bench/run.sh).
#
#   bench/bench_sync.sh [ACTORS [FILES [BYTES_PER_ACTOR]]]
#       default 100 actors x 17 files, ~300 KB per actor (~30 MB)
#   TDM_BENCH_JOBS=16  transfers in flight for tdm and the peers
#   TDM_BENCH_RUNS=1   timed runs per row (the best is shown)
#
# Operations (each tool on its own fresh copy, same bucket prefix):
#   sync-cold   tdm sync-manifests with no manifests (every file hashed,
#               one listing)  | peers: compare the tree with the bucket by
#               checksum -- rclone check, s3cmd sync --dry-run, aws s3 sync
#               --dryrun (aws compares size+mtime, not content)
#   sync-warm   the same again (tdm: the manifest is the hash cache)
#   pull-empty  tdm pull-all into a tree with manifests but no files
#               | peers: aws s3 sync, rclone copy --checksum, s3cmd sync
#               from the bucket into an empty directory
#   pull-settle tdm only: the first run after pull-empty, once 1 s has passed
#               (files written within 1 s of a save are re-hashed once)
#   pull-noop   the same again with nothing to do
# Prints one line per run and a table with ratios peer/tdm (> 1: tdm is
# faster). Needs awscli, rclone, s3cmd (skipped when absent).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACTORS=${1:-100} FILES=${2:-17} BYTES=${3:-$((300 * 1024))}
JOBS=${TDM_BENCH_JOBS:-16} RUNS=${TDM_BENCH_RUNS:-1}
W=$(mktemp -d "${TMPDIR:-/tmp}/tdm-bench-sync.XXXXXX")
LOG=$W/bench.log
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/?.so;;"

. tests/lib/s3rver.sh
. bench/lib.sh
s3rver_start story-boards-assets || exit 1
trap 's3rver_stop; rm -rf "$W"' EXIT
PREFIX="bench-sync/system_actors/training_data"
BUCKET=story-boards-assets

echo "bench_sync: $ACTORS actors x $FILES files, ~$((BYTES / 1024)) KB/actor, jobs $JOBS," \
     "server $AWS_ENDPOINT_URL, work dir $W" >&2

# -- dataset: local tree + manifests in $W/src, the same bytes in the bucket
cat >"$W/gen.lua" <<'EOF'
local fixture = dofile(os.getenv("ROOT") .. "/tests/lib/fixture.lua")
fixture.generate { data_root = "data", prefix = os.getenv("PREFIX"),
                   seed = 7, scenarios = false, bulk = tonumber(os.getenv("ACTORS")),
                   bulk_files = tonumber(os.getenv("FILES")),
                   bulk_size = tonumber(os.getenv("BYTES")) }
EOF
# The data root is relative ("data", as the seed writes local_path), so a
# copy of the tree is a valid tree: tdm runs inside $W/NAME.
t0=$(date +%s%N)
mkdir -p "$W/src"
(cd "$W/src" && ROOT=$ROOT PREFIX=$PREFIX ACTORS=$ACTORS FILES=$FILES BYTES=$BYTES \
  "$ROOT/tdm-lua" "$W/gen.lua") || { echo "bench_sync: dataset generation failed" >&2; exit 1; }
echo "dataset ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms:" \
     "$(find "$W/src/data/actors" -type f | wc -l) files, $(du -sh "$W/src/data/actors" | cut -f1)" >&2

# -- peers' configuration (bench/lib.sh: same server, path-style, plain HTTP)
peers_setup "$W/peers" "$JOBS"
# tdm DIR CMD...: tdm-lua CMD on the tree $W/DIR (data root "data" there)
tdm() { local d=$1; shift; (cd "$W/$d" && "$ROOT/tdm-lua" "$@" --quiet --jobs "$JOBS" \
  --prefix "$PREFIX" --data-root data); }
awss3() { aws_peer "c$JOBS" s3 "$@"; }
rcl() { rclone_peer --transfers "$JOBS" --checkers "$JOBS" "$@"; }
has() { command -v "$1" >/dev/null 2>&1; }

declare -A BEST
# timed OP TOOL CMD...: run CMD (in the current directory), keep the best time
timed() {
  local op=$1 tool=$2; shift 2
  local t0 t1 rc secs
  echo "### $op $tool: $*" >>"$LOG"
  t0=$(date +%s%N); "$@" >>"$LOG" 2>&1; rc=$?; t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  if [ "$rc" -ne 0 ] && ! { [ "$tool" = "rclone check" ] && [ "$rc" -eq 1 ]; }; then
    printf '  %-11s %-22s FAILED (exit %d; see %s)\n' "$op" "$tool" "$rc" "$LOG" >&2
    BEST["$op|$tool"]=fail; return 1
  fi
  printf '  %-11s %-22s %8.3fs\n' "$op" "$tool" "$secs" >&2
  local prev=${BEST["$op|$tool"]:-}
  if [ -z "$prev" ] || [ "$prev" = fail ] || awk -v a="$secs" -v b="$prev" 'BEGIN { exit !(a < b) }'; then
    BEST["$op|$tool"]=$secs
  fi
}

fresh() { # fresh NAME [--no-files] [--no-manifests]: a copy of src in $W/NAME
  rm -rf "${W:?}/$1"; cp -a "$W/src" "$W/$1"
  local d=$W/$1/data; shift
  for o in "$@"; do
    case $o in
      --no-files) find "$d/actors" -type f -delete ;;
      --no-manifests) rm -rf "$d/actor_manifests" ;;
    esac
  done
}

S3URL="s3://$BUCKET/$PREFIX"
for run in $(seq 1 "$RUNS"); do
  # sync-cold / sync-warm: the tree (files, no manifests) against the bucket
  fresh tdm-sync --no-manifests
  timed sync-cold tdm tdm tdm-sync sync-manifests
  timed sync-warm tdm tdm tdm-sync sync-manifests
  if has rclone; then
    timed sync-cold "rclone check" rcl check --checksum "$W/src/data/actors" "s3rver:$BUCKET/$PREFIX" --one-way
    timed sync-warm "rclone check" rcl check --checksum "$W/src/data/actors" "s3rver:$BUCKET/$PREFIX" --one-way
  fi
  if has s3cmd; then
    timed sync-cold "s3cmd sync --dry-run" s3cmd_peer sync --dry-run "$W/src/data/actors/" "$S3URL/"
    timed sync-warm "s3cmd sync --dry-run" s3cmd_peer sync --dry-run "$W/src/data/actors/" "$S3URL/"
  fi
  if has aws; then
    timed sync-cold "aws s3 sync --dryrun" awss3 sync --dryrun "$W/src/data/actors" "$S3URL"
    timed sync-warm "aws s3 sync --dryrun" awss3 sync --dryrun "$W/src/data/actors" "$S3URL"
  fi

  # pull-empty / pull-noop: bucket -> a tree without the files
  fresh tdm-pull --no-files
  timed pull-empty tdm tdm tdm-pull pull-all
  sleep 1.1   # files written within 1 s of a manifest save are re-hashed once (racy rule)
  timed pull-settle tdm tdm tdm-pull pull-all
  timed pull-noop tdm tdm tdm-pull pull-all
  n=$(find "$W/tdm-pull/data/actors" -type f -name '*.jpg' | wc -l)
  [ "$n" -eq $((ACTORS * FILES)) ] || echo "  tdm pull-all: $n files, expected $((ACTORS * FILES))" >&2
  if has aws; then
    rm -rf "$W/aws"; mkdir -p "$W/aws"
    timed pull-empty "aws s3 sync" awss3 sync "$S3URL" "$W/aws"
    timed pull-noop "aws s3 sync" awss3 sync "$S3URL" "$W/aws"
  fi
  if has rclone; then
    rm -rf "$W/rclone"; mkdir -p "$W/rclone"
    timed pull-empty "rclone copy --checksum" rcl copy --checksum "s3rver:$BUCKET/$PREFIX" "$W/rclone"
    timed pull-noop "rclone copy --checksum" rcl copy --checksum "s3rver:$BUCKET/$PREFIX" "$W/rclone"
  fi
  if has s3cmd; then
    rm -rf "$W/s3cmd"; mkdir -p "$W/s3cmd"
    timed pull-empty "s3cmd sync" s3cmd_peer sync "$S3URL/" "$W/s3cmd/"
    timed pull-noop "s3cmd sync" s3cmd_peer sync "$S3URL/" "$W/s3cmd/"
  fi
done

echo
printf '| %-11s | %-22s | %9s | %12s |\n' op tool seconds "tool/tdm"
printf '|%s|%s|%s|%s|\n' -------------  ------------------------ ----------- --------------
for op in sync-cold sync-warm pull-empty pull-settle pull-noop; do
  base=${BEST["$op|tdm"]:-}
  for key in "${!BEST[@]}"; do
    [ "${key%%|*}" = "$op" ] || continue
    echo "$key"
  done | sort | while IFS='|' read -r o tool; do
    s=${BEST["$o|$tool"]}
    ratio=-
    if [ "$s" != fail ] && [ -n "$base" ] && [ "$base" != fail ]; then
      ratio=$(awk -v a="$s" -v b="$base" 'BEGIN { r = (b > 0) ? a / b : 0; printf "%.2fx", r }')
    fi
    printf '| %-11s | %-22s | %9s | %12s |\n' "$o" "$tool" "$s" "$ratio"
  done
done
echo
echo "($ACTORS actors x $FILES files, ~$((BYTES / 1024)) KB/actor, --jobs $JOBS, best of $RUNS;" \
     "ratio > 1 means the peer took longer than tdm)"
