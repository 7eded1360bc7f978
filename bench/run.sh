#!/usr/bin/env bash
# bench/run.sh -- tdm against aws cli, rclone and s3cmd on one local s3rver.
#
#   bench/run.sh [--actors N] [--runs R] [--scale] [--list-objects K]
#                [--ops LIST] [--no-install] [--out DIR]
#
# One command, from a clean clone: installs the peers
# (scripts/install-deps.sh --bench), builds tdm, starts its own s3rver
# (tests/lib/s3rver.sh) on a free loopback port, generates a deterministic
# dataset (N actors x 17 images of 150-500 KB; default N = 100) under
# $TDM_BENCH_DIR (default /tmp/tdm-bench), loads it into the bucket, and
# times each operation for tdm and the peers on the same server and data,
# alternating tools (the order rotates every run), R runs each (default
# 3). Prints a Markdown table (median, min-max, MB/s, ms per file, the
# s3rver process's CPU, tdm / best peer) and writes it to DIR/report.md
# (default bench/out). See bench/README.md.
#
# Operations (--ops, comma-separated; default all but scale):
#   pull      pull into an empty tree, then the no-op pull of the same tree
#             (for tdm also a second no-op: see "no-op pull, 2nd")
#             tdm-lua pull-all | aws s3 sync (max_concurrent_requests 10,
#             32) | rclone copy --checksum (--transfers 4, 32) | s3cmd sync
#   push      push of a fresh tree (no manifests) to a fresh prefix:
#             `tdm-lua push-all` (every actor in one batch), and
#             `tdm-lua push ACTOR` once per actor
#   manifests sync-manifests cold (no manifests) and warm (manifests
#             current) vs md5sum of the tree (one process and xargs -P2)
#   md5       hashing of the tree: tdm.md5_file vs md5sum, openssl speed
#   ceiling   the server's ceiling: curl --parallel (32) GETs to /dev/null,
#             and the listing floor (curl ListObjectsV2, every page) of
#             the no-op pull and warm sync-manifests
#   rss       peak RSS (/usr/bin/time) of sync-manifests and pull-all at N,
#             and of listing K zero-byte objects (default 100,000)
#             (TDM_BENCH_LIST_PEER=0 skips the aws s3 ls comparison)
#   scale     (--scale) the rss measurements again at N = 1000
#   latency   (not in the default) no-op pull-all and warm sync-manifests
#             with 0, 50 and 100 ms per request, N = 300 and 3000
#             (--latency-actors), vs rclone: bench/bench_latency.sh
#   keys      (not in the default) peak RSS and cost per key of a no-op
#             pull-all at N = 1000, 10,000, 100,000 actors x 17 empty
#             objects (--keys-actors): bench/bench_keys.sh
# --pull-tools LIST: the tools of the pull operation (default
# tdm,aws10,aws32,rclone4,rclone32,s3cmd; add "curl" for the server's
# ceiling -- curl --parallel 32 writing the files -- in the same rotation).
# A tdm row whose command does not exist in this build is reported as
# "n/a (not built)"; a failing tool is reported as failed, and the run
# goes on.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ACTORS=100 RUNS=${TDM_BENCH_RUNS:-3} SCALE=0 LISTK=100000 INSTALL=1
OUT=$ROOT/bench/out OPS="pull,push,manifests,md5,ceiling,rss"
PULL_TOOLS="tdm,aws10,aws32,rclone4,rclone32,s3cmd"
LAT_ACTORS=300,3000 KEYS_ACTORS=1000,10000,100000
while [ $# -gt 0 ]; do
  case $1 in
    --actors) ACTORS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --scale) SCALE=1; shift ;;
    --list-objects) LISTK=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --pull-tools) PULL_TOOLS=$2; shift 2 ;;
    --latency-actors) LAT_ACTORS=$2; shift 2 ;;
    --keys-actors) KEYS_ACTORS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$SCALE" = 1 ] && OPS="$OPS,scale"
want() { [[ ",$OPS," == *",$1,"* ]]; }

if [ "$INSTALL" = 1 ]; then
  scripts/install-deps.sh --bench || exit 1
fi
make -s -j2 >/dev/null || { echo "bench/run.sh: build failed" >&2; exit 1; }

. bench/lib.sh
WORK=${TDM_BENCH_DIR:-/tmp/tdm-bench}
mkdir -p "$WORK"
tdm_snapshot "$WORK/tdm" || exit 1
export TDM_LUA
. tests/lib/s3rver.sh
BUCKET=story-boards-assets
s3rver_start "$BUCKET" || exit 1
STORE=$TDM_S3_DIR/$BUCKET
export TDM_BUCKET=$BUCKET
export PATH="$ROOT:$PATH"
unset TDM_CONFIG TDM_JOBS
EP=$AWS_ENDPOINT_URL

mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
bench_init "$RESULTS"
PEERS=$WORK/peers; rm -rf "$PEERS"; mkdir -p "$PEERS"
SCRATCH=$WORK/scratch; rm -rf "$SCRATCH"; mkdir -p "$SCRATCH"
trap 's3rver_stop; rm -rf "$SCRATCH"' EXIT

# ---- peers' configuration, all pointed at this s3rver (bench/lib.sh) --
peers_setup "$PEERS" 10 32

# ---- data --------------------------------------------------------------
# dataset N PREFIX: generate $WORK/src-N (kept between runs) and load it
# under PREFIX; sets SRC, NFILES, NBYTES.
dataset() {
  local n=$1 prefix=$2 line
  SRC=$WORK/src-$n
  echo "bench: dataset: $n actors into $SRC" >&2
  line=$(bench/gen_dataset.py --actors "$n" "$SRC") || exit 1
  read -r _ NFILES NBYTES <<<"$line"
  rm -rf "$SRC/actor_manifests"
  echo "bench: loading $NFILES objects ($NBYTES bytes) under $prefix" >&2
  TDM_PREFIX=$prefix bench/load_s3.sh "$SRC" || exit 1
}
count_files() { find "$1" -type f -name '*.jpg' 2>/dev/null | wc -l; }
count_objects() {
  find "$STORE/$1" -type f -name '*._S3rver_object' 2>/dev/null | wc -l
}
# A copy of the source tree (hard links: same bytes, no copying time).
fresh_tree() {
  rm -rf "$1"; mkdir -p "$1"
  cp -al "$SRC/actors" "$1/actors"
}

# Run a tdm command, or record n/a when this build does not have it.
tdm_row() {        # tdm_row OP RUN BYTES FILES COMMAND ARGS...
  local op=$1 run=$2 bytes=$3 files=$4 cmd=$5
  if ! tdm_has_command "$cmd"; then
    [ "$run" = 1 ] && bench_na "$op" "tdm-lua $cmd" tdm "not built"
    return 0
  fi
  bench_run "$op" "tdm-lua $cmd" tdm "$run" "$bytes" "$files" \
    "$TDM_LUA" "${@:5}"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PREFIX=bench$ACTORS/training_data
# The latency and key-count runs bring their own servers and data.
if [[ ",$OPS," =~ ,(pull|push|manifests|md5|ceiling|rss|scale), ]]; then
  dataset "$ACTORS" "$PREFIX"
  N_FILES=$NFILES N_BYTES=$NBYTES N_SRC=$SRC
fi

# ---- pull into an empty tree, then the no-op pull -----------------------
op_pull() {
  local tools=(${PULL_TOOLS//,/ }) run k t d
  local nt=${#tools[@]} e="$N_FILES"
  local P="pull (empty tree)" Q="no-op pull"
  # tdm's first no-op after a pull re-hashes what landed within the racy
  # window of its manifest's save; the second shows the settled state.
  local Q2="no-op pull, 2nd (tdm manifests settled)"
  for run in $(seq 1 "$RUNS"); do
    for k in $(seq 0 $((nt - 1))); do
      t=${tools[$(( (run + k) % nt ))]}
      d=$SCRATCH/pull-$t; rm -rf "$d"; mkdir -p "$d"
      BENCH_CHECK="[ \$(count_files $d) -eq $e ]"
      case $t in
        tdm)
          export TDM_DATA_ROOT=$d TDM_PREFIX=$PREFIX
          tdm_row "$P" "$run" "$N_BYTES" "$e" pull-all --quiet &&
            tdm_row "$Q" "$run" 0 "$e" pull-all --quiet &&
            tdm_row "$Q2" "$run" 0 "$e" pull-all --quiet
          unset TDM_DATA_ROOT TDM_PREFIX ;;
        aws10|aws32)
          local c=${t#aws}
          bench_run "$P" "aws s3 sync ($c)" peer "$run" "$N_BYTES" "$e" \
            aws_peer "c$c" s3 sync "s3://$BUCKET/$PREFIX/" "$d/" &&
          bench_run "$Q" "aws s3 sync ($c)" peer "$run" 0 "$e" \
            aws_peer "c$c" s3 sync "s3://$BUCKET/$PREFIX/" "$d/" ;;
        rclone4|rclone32)
          local c=${t#rclone}
          bench_run "$P" "rclone copy --checksum ($c)" peer "$run" \
            "$N_BYTES" "$e" rclone_peer copy --checksum --transfers "$c" \
            --checkers "$c" "s3rver:$BUCKET/$PREFIX" "$d" &&
          bench_run "$Q" "rclone copy --checksum ($c)" peer "$run" 0 "$e" \
            rclone_peer copy --checksum --transfers "$c" --checkers "$c" \
            "s3rver:$BUCKET/$PREFIX" "$d" ;;
        s3cmd)
          bench_run "$P" "s3cmd sync" peer "$run" "$N_BYTES" "$e" \
            s3cmd_peer sync "s3://$BUCKET/$PREFIX/" "$d/" &&
          bench_run "$Q" "s3cmd sync" peer "$run" 0 "$e" \
            s3cmd_peer sync "s3://$BUCKET/$PREFIX/" "$d/" ;;
        curl)
          get_cfgs "$d"
          bench_run "$P" "curl --parallel 32 into files" ref "$run" \
            "$N_BYTES" "$e" "${CURL_GET[@]}" --create-dirs -K "$FCFG" ;;
      esac
      unset BENCH_CHECK
      rm -rf "$d"
    done
  done
}

# ---- push of a fresh tree to a fresh prefix ----------------------------
tdm_push_all() {   # `tdm-lua push ACTOR` for every actor of $TDM_DATA_ROOT
  local a
  for a in $(ls "$TDM_DATA_ROOT/actors"); do
    "$TDM_LUA" push --quiet "$a" || return 1
  done
}
op_push() {
  local tools=(tdm tdmbulk aws10 aws32 rclone4 rclone32 s3cmd) run k t d p
  local nt=${#tools[@]} e="$N_FILES" P="push (fresh tree)"
  for run in $(seq 1 "$RUNS"); do
    for k in $(seq 0 $((nt - 1))); do
      t=${tools[$(( (run + k) % nt ))]}
      d=$SCRATCH/push-$t; fresh_tree "$d"
      p=push-$t-$run
      BENCH_CHECK="[ \$(count_objects $p) -eq $e ]"
      case $t in
        tdm)
          if tdm_has_command push; then
            export TDM_DATA_ROOT=$d TDM_PREFIX=$p/training_data
            bench_run "$P" "tdm-lua push, per actor" tdm "$run" "$N_BYTES" \
              "$e" tdm_push_all
            unset TDM_DATA_ROOT TDM_PREFIX
          elif [ "$run" = 1 ]; then
            bench_na "$P" "tdm-lua push, per actor" tdm "not built"
          fi ;;
        tdmbulk)   # every actor in one batch
          if tdm_has_command push-all; then
            export TDM_DATA_ROOT=$d TDM_PREFIX=$p/training_data
            bench_run "$P" "tdm-lua push-all" tdm "$run" "$N_BYTES" "$e" \
              "$TDM_LUA" push-all --quiet
            unset TDM_DATA_ROOT TDM_PREFIX
          elif [ "$run" = 1 ]; then
            bench_na "$P" "tdm-lua push-all" tdm "not built"
          fi ;;
        aws10|aws32)
          local c=${t#aws}
          bench_run "$P" "aws s3 sync ($c)" peer "$run" "$N_BYTES" "$e" \
            aws_peer "c$c" s3 sync "$d/actors/" "s3://$BUCKET/$p/" ;;
        rclone4|rclone32)
          local c=${t#rclone}
          bench_run "$P" "rclone copy --checksum ($c)" peer "$run" \
            "$N_BYTES" "$e" rclone_peer copy --checksum --transfers "$c" \
            --checkers "$c" --s3-no-check-bucket "$d/actors" \
            "s3rver:$BUCKET/$p" ;;
        s3cmd)
          bench_run "$P" "s3cmd sync" peer "$run" "$N_BYTES" "$e" \
            s3cmd_peer sync "$d/actors/" "s3://$BUCKET/$p/" ;;
      esac
      unset BENCH_CHECK
      rm -rf "$d" "${STORE:?}/$p"
    done
  done
}

# ---- sync-manifests cold and warm vs md5sum ------------------------------
op_manifests() {
  local run k t d=$SCRATCH/manifests e="$N_FILES"
  local C="sync-manifests cold" W="sync-manifests warm"
  local list=$SCRATCH/manifests.list
  fresh_tree "$d"
  find "$d/actors" -type f -name '*.jpg' -print0 > "$list"
  warm_cache "$d/actors"
  for run in $(seq 1 "$RUNS"); do
    for k in 0 1 2; do
      t=$(( (run + k) % 3 ))
      case $t in
        0)
          rm -rf "$d/actor_manifests"
          export TDM_DATA_ROOT=$d TDM_PREFIX=$PREFIX
          BENCH_CHECK="[ \$(ls $d/actor_manifests | grep -c '_manifest.json\$') -eq $ACTORS ]"
          tdm_row "$C" "$run" "$N_BYTES" "$e" sync-manifests --quiet &&
            tdm_row "$W" "$run" 0 "$e" sync-manifests --quiet
          unset TDM_DATA_ROOT TDM_PREFIX BENCH_CHECK ;;
        1)
          bench_run "$C" "md5sum" peer "$run" "$N_BYTES" "$e" \
            sh -c "xargs -0 md5sum < '$list' > /dev/null"
          bench_run "$W" "md5sum" peer "$run" "$N_BYTES" "$e" \
            sh -c "xargs -0 md5sum < '$list' > /dev/null" ;;
        2)
          bench_run "$C" "xargs -P2 md5sum" peer "$run" "$N_BYTES" "$e" \
            sh -c "xargs -0 -P2 -n 64 md5sum < '$list' > /dev/null" ;;
      esac
    done
  done
  rm -rf "$d"
}

# ---- the server's ceiling: raw parallel GETs ------------------------------
# get_cfgs DIR: curl configs for every object of the dataset: $CFG (GETs
# to /dev/null) and $FCFG (the same GETs written under DIR: no
# verification, no fsync, no manifest -- what any client that lands the
# files must at least pay); $CURL_GET is the signed curl command.
get_cfgs() {
  local d=$1
  CFG=$SCRATCH/get.cfg FCFG=$SCRATCH/get-files.cfg
  (cd "$N_SRC/actors" && find . -path './*/training_data/*' -type f) |
    LC_ALL=C sort > "$SCRATCH/keys.txt"
  awk -v b="$EP/$BUCKET/$PREFIX" -F/ \
    '{ printf "url = \"%s/%s/%s\"\noutput = \"/dev/null\"\n", b, $2, $4 }' \
    "$SCRATCH/keys.txt" > "$CFG"
  awk -v b="$EP/$BUCKET/$PREFIX" -v d="$d" -F/ \
    '{ printf "url = \"%s/%s/%s\"\noutput = \"%s/%s/%s\"\n", b, $2, $4, d, $2, $4 }' \
    "$SCRATCH/keys.txt" > "$FCFG"
  CURL_GET=(curl -s --no-progress-meter --fail --parallel
    --parallel-max 32 --aws-sigv4 "aws:amz:$AWS_REGION:s3"
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
}
op_ceiling() {
  local run d=$SCRATCH/pull-curl
  get_cfgs "$d"
  for run in $(seq 1 "$RUNS"); do
    bench_run "pull (empty tree)" "curl --parallel 32 to /dev/null" ref \
      "$run" "$N_BYTES" "$N_FILES" "${CURL_GET[@]}" -K "$CFG"
    rm -rf "$d"
    BENCH_CHECK="[ \$(count_files $d) -eq $N_FILES ]" \
      bench_run "pull (empty tree)" "curl --parallel 32 into files" ref \
      "$run" "$N_BYTES" "$N_FILES" "${CURL_GET[@]}" --create-dirs -K "$FCFG"
    rm -rf "$d"
    # The floor of a no-op pull and of a warm sync-manifests: the listing
    # every client must make (pages of 1000, one after the other).
    local op
    for op in "no-op pull" "no-op pull, 2nd (tdm manifests settled)" \
              "sync-manifests warm"; do
      BENCH_CHECK="" bench_run "$op" "curl ListObjectsV2, every page" ref \
        "$run" "" "$N_FILES" raw_listing "$EP" "$BUCKET" "$PREFIX/" "$N_FILES"
    done
  done
}
# ---- peak RSS -----------------------------------------------------------
# rss_at N PREFIX SRC FILES: sync-manifests (cold) and pull-all at N.
rss_at() {
  local n=$1 prefix=$2 src=$3 files=$4 d=$SCRATCH/rss
  export TDM_PREFIX=$prefix
  if tdm_has_command sync-manifests; then
    fresh_tree "$d"
    export TDM_DATA_ROOT=$d
    BENCH_CHECK="[ \$(ls $d/actor_manifests | grep -c '_manifest.json\$') -eq $n ]"
    bench_rss "rss sync-manifests cold N=$n" "tdm-lua sync-manifests" tdm \
      1 "$files" "$TDM_LUA" sync-manifests --quiet
  else
    bench_na "rss sync-manifests cold N=$n" "tdm-lua sync-manifests" tdm \
      "not built"
  fi
  if tdm_has_command pull-all; then
    rm -rf "$d"; mkdir -p "$d"
    export TDM_DATA_ROOT=$d
    BENCH_CHECK="[ \$(count_files $d) -eq $files ]"
    bench_rss "rss pull-all N=$n" "tdm-lua pull-all" tdm 1 "$files" \
      "$TDM_LUA" pull-all --quiet
  else
    bench_na "rss pull-all N=$n" "tdm-lua pull-all" tdm "not built"
  fi
  unset TDM_DATA_ROOT TDM_PREFIX BENCH_CHECK
  rm -rf "$d"
}
op_rss() {
  rss_at "$ACTORS" "$PREFIX" "$N_SRC" "$N_FILES"
  # K zero-byte objects: written straight into s3rver's store (one PUT
  # each would take minutes and measure nothing we report), 17 per actor.
  local lp=list$LISTK/training_data keys=$SCRATCH/list.keys
  local nact=$(( (LISTK + 16) / 17 ))
  bench/gen_dataset.py --keys-only --actors "$nact" --prefix "$lp" |
    head -n "$LISTK" > "$keys"
  python3 - "$STORE" "$keys" <<'EOF'
import os, sys
store, keys = sys.argv[1], sys.argv[2]
meta = '{\n  "content-type": "binary/octet-stream"\n}'
for key in open(keys):
    p = os.path.join(store, key.rstrip("\n"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p + "._S3rver_object", "w").close()
    with open(p + "._S3rver_object.md5", "w") as f:
        f.write("d41d8cd98f00b204e9800998ecf8427e")
    with open(p + "._S3rver_metadata.json", "w") as f:
        f.write(meta)
EOF
  local op="rss list $LISTK objects"
  if "$TDM_LUA" -e "require 'tdm.s3'" > /dev/null 2>&1; then
    BENCH_CHECK="grep -qx 'listed $LISTK' $SCRATCH/list.out"
    bench_rss "$op" "tdm s3 client:list" tdm 1 "$LISTK" \
      sh -c "$TDM_LUA bench/list_objects.lua '$lp/' | tee $SCRATCH/list.out"
    unset BENCH_CHECK
  else
    bench_na "$op" "tdm s3 client:list" tdm "not built"
  fi
  [ "${TDM_BENCH_LIST_PEER:-1}" = 1 ] &&
  bench_rss "$op" "aws s3 ls --recursive" peer 1 "$LISTK" \
    sh -c "AWS_CONFIG_FILE=$PEERS/aws-config \
      AWS_SHARED_CREDENTIALS_FILE=$PEERS/aws-credentials AWS_PROFILE=c10 \
      $AWS --endpoint-url $EP s3 ls --recursive s3://$BUCKET/$lp/ |
      wc -l"
  rm -rf "${STORE:?}/list$LISTK"
}
op_scale() {
  local n=1000
  [ "$ACTORS" -ge 1000 ] && n=$((ACTORS * 10))
  dataset "$n" "bench$n/training_data"
  rss_at "$n" "bench$n/training_data" "$SRC" "$NFILES"
  rm -rf "${STORE:?}/bench$n"
}

want pull && op_pull
want ceiling && op_ceiling
want push && op_push
want manifests && op_manifests
want md5 && bench/bench_md5.sh --runs "$RUNS" --tree "$N_SRC/actors" \
  --append "$RESULTS" --op "hash the tree (N=$ACTORS)"
want rss && op_rss
want scale && op_scale
want latency && bench/bench_latency.sh --actors "$LAT_ACTORS" \
  --runs "$RUNS" --out "$OUT/latency"
want keys && bench/bench_keys.sh --actors "$KEYS_ACTORS" --out "$OUT/keys"

{
  echo "<!-- bench/run.sh --actors $ACTORS --runs $RUNS --ops $OPS;" \
    "$(date -u +%Y-%m-%dT%H:%MZ); tdm $(git rev-parse --short HEAD)" \
    "(+ working tree); load average $LOAD_START at start," \
    "$(cut -d' ' -f1-3 /proc/loadavg) at end -->"
  echo
  python3 bench/report.py "$RESULTS"
} > "$OUT/report.md"
echo
cat "$OUT/report.md"
