#!/usr/bin/env bash
# bench/bench_latency.sh -- no-op pull-all and warm sync-manifests when
# every S3 request costs a fixed delay, next to rclone and the bare
# page-after-page listing (issue 17).
#
#   bench/bench_latency.sh [--actors 300,3000] [--delays 0,50,100]
#                          [--runs R] [--copy-runs C] [--out DIR]
#                          [--settle-with SNAPSHOT_DIR]
#
# Scratch and s3rver's store on /dev/shm (bench_tmpfs in bench/lib.sh).
# Starts its own s3rver and, in front of it, tests/lib/faultproxy.js with
# no faults and --latency-p 1: every request waits DELAY ms before it is
# forwarded (the delay is changed between rounds through the proxy's
# /__config; connection set-up is not delayed, so real S3's TLS handshakes
# are not imitated). For each N: N actors x 17 images of 1 KB, written
# straight into s3rver's store and into a local data root
# (bench/tiny_world.py), then, directly against s3rver, one cold
# sync-manifests and one settling pull-all, so the tree is current. Then,
# at each delay, R rounds in which the tools take turns (the order rotates):
#   tdm-lua pull-all          (a no-op: everything is present)
#   tdm-lua sync-manifests    (warm: manifests current)
#   rclone copy --checksum    (--transfers 32 --checkers 32; into a tree of
#                              the same files, hard-linked, rclone's layout)
#   rclone lsf -R --fast-list (the listing alone)
#   curl ListObjectsV2        (ref: every page, each after the previous
#                              one's token: what a sequential listing costs)
# --settle-with DIR: the set-up's sync-manifests and pull-all run with the
# tdm-lua in DIR (an earlier snapshot, see tdm_snapshot in bench/lib.sh),
# e.g. one that lists page after page when the build measured trips over
# the server during set-up. rclone copy takes part in the first C rounds only (--copy-runs, default
# R: at N = 3000 it lists every actor's folder and hashes every local
# file, minutes per round on a shared machine). Every run also records how many requests reached the proxy
# and for how long at least one of them was being delayed
# (DIR/requests.tsv): that time / the delay is the number of round trips
# the tool waited for one after another, which CPU load does not blur. Rows go to DIR/results.tsv (bench/lib.sh format);
# DIR/report.md holds the table and the targets (bench/latency_report.py).
# No run asserts a time.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACTORS=300,3000 DELAYS=0,50,100 RUNS=${TDM_BENCH_RUNS:-3}
OUT=$ROOT/bench/out/latency
while [ $# -gt 0 ]; do
  case $1 in
    --actors) ACTORS=$2; shift 2 ;;
    --delays) DELAYS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --copy-runs) COPY_RUNS=$2; shift 2 ;;
    --settle-with) SETTLE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_latency.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
COPY_RUNS=${COPY_RUNS:-$RUNS}
command -v rclone > /dev/null ||
  { echo "bench_latency.sh: rclone missing (scripts/install-deps.sh --bench)" >&2
    exit 1; }
make -s -j2 > /dev/null || { echo "bench_latency.sh: build failed" >&2; exit 1; }

. bench/lib.sh
bench_tmpfs
WORK=${TDM_BENCH_DIR:-$TMPDIR/tdm-bench}/latency
mkdir -p "$WORK"
tdm_snapshot "$WORK/tdm" || exit 1
. tests/lib/s3rver.sh
. tests/lib/faultproxy.sh
BUCKET=story-boards-assets
s3rver_start "$BUCKET" > /dev/null || exit 1
STORE=$TDM_S3_DIR/$BUCKET
DIRECT=$AWS_ENDPOINT_URL
faultproxy_start --latency-ms 0 --latency-p 1 --strict 0 > /dev/null || exit 1
PROXY=$FAULTPROXY_URL
trap 'faultproxy_stop; s3rver_stop' EXIT
export TDM_BUCKET=$BUCKET
unset TDM_CONFIG TDM_JOBS TDM_DATA_ROOT TDM_PREFIX

mkdir -p "$OUT"
bench_init "$OUT/results.tsv"
REQS=$OUT/requests.tsv; : > "$REQS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUILD=${TDM_BENCH_SNAPSHOT:-$(git rev-parse --short HEAD)}   # what is measured

proxy() { curl -s -X "$1" "$PROXY/__$2" ${3:+-d "$3"}; }
# "REQUESTS<TAB>DELAYED_MS": requests since the last reset, and the time
# covered by at least one delay (/ delay = round trips on the critical path)
requests() {
  proxy GET stats | python3 -c 'import json,sys; d = json.load(sys.stdin)
print("%d\t%d" % (d["requests"], d.get("latency_union_ms", 0)))'
}

# The world for N actors; sets D (tdm's data root), RC (rclone's tree),
# P (the key prefix), NF (files).
world() {
  local n=$1
  P=lat$n/training_data D=$WORK/tdm-$n RC=$WORK/rclone-$n
  rm -rf "$D" "$RC" "${STORE:?}/lat$n"
  read -r _ NF _ < <(bench/tiny_world.py --actors "$n" --size 1024 \
    --store "$STORE" --prefix "$P" --data-root "$D") || exit 1
  # rclone's layout: DEST/{actor}/{file}, the same files (hard links)
  python3 - "$D/actors" "$RC" <<'EOF' || exit 1
import os, sys
src, dst = sys.argv[1], sys.argv[2]
for a in os.listdir(src):
    os.makedirs(os.path.join(dst, a))
    td = os.path.join(src, a, "training_data")
    for f in os.listdir(td):
        os.link(os.path.join(td, f), os.path.join(dst, a, f))
EOF
  echo "bench_latency: N=$n: $NF objects; settling manifests" >&2
  local lua=${SETTLE:+$SETTLE/tdm-lua}
  AWS_ENDPOINT_URL=$DIRECT TDM_DATA_ROOT=$D TDM_PREFIX=$P \
    "${lua:-$TDM_LUA}" sync-manifests --quiet || exit 1
  sleep 2   # past the racy window of the manifests just saved
  AWS_ENDPOINT_URL=$DIRECT TDM_DATA_ROOT=$D TDM_PREFIX=$P \
    "${lua:-$TDM_LUA}" pull-all --quiet || exit 1
}

# One timed run of tool T through the proxy; its request count to $REQS.
one() {
  local op=$1 t=$2 run=$3 n0 rc=0
  proxy POST reset > /dev/null
  export AWS_ENDPOINT_URL=$PROXY
  case $t in
    pull)
      TDM_DATA_ROOT=$D TDM_PREFIX=$P bench_run "$op" "tdm-lua pull-all" tdm \
        "$run" 0 "$NF" "$TDM_LUA" pull-all --quiet || rc=1 ;;
    sm)
      TDM_DATA_ROOT=$D TDM_PREFIX=$P bench_run "$op" \
        "tdm-lua sync-manifests" tdm "$run" 0 "$NF" \
        "$TDM_LUA" sync-manifests --quiet || rc=1 ;;
    rcopy)
      bench_run "$op" "rclone copy --checksum (32)" peer "$run" 0 "$NF" \
        rclone_peer copy --checksum --transfers 32 --checkers 32 \
        "s3rver:$BUCKET/$P" "$RC" || rc=1 ;;
    rlsf)
      BENCH_CHECK="[ \$(wc -l < $WORK/lsf.out) -eq $NF ]" \
      bench_run "$op" "rclone lsf -R --fast-list" peer "$run" 0 "$NF" \
        sh -c "env -u AWS_CA_BUNDLE rclone --config '$PEERS/rclone.conf' \
          -q lsf -R --fast-list --files-only 's3rver:$BUCKET/$P' \
          > '$WORK/lsf.out'" || rc=1 ;;
    pages)
      bench_run "$op" "curl ListObjectsV2, page after page" ref "$run" "" \
        "$NF" raw_listing "$PROXY" "$BUCKET" "$P/" "$NF" || rc=1 ;;
  esac
  export AWS_ENDPOINT_URL=$DIRECT
  n0=$(requests)
  printf '%s\t%s\t%s\t%s\n' "$op" "$t" "$run" "$n0" >> "$REQS"
  return $rc
}

PEERS=$WORK/peers
AWS_ENDPOINT_URL=$PROXY peers_setup "$PEERS" 32
tools=(pull sm rcopy rlsf pages)
for n in ${ACTORS//,/ }; do
  world "$n"
  for d in ${DELAYS//,/ }; do
    proxy POST config "{\"latency_ms\": $d}" > /dev/null
    op="no-op N=$n @$d ms"
    for run in $(seq 1 "$RUNS"); do
      for k in $(seq 0 $((${#tools[@]} - 1))); do
        t=${tools[$(( (run + k) % ${#tools[@]} ))]}
        [ "$t" = rcopy ] && [ "$run" -gt "$COPY_RUNS" ] && continue
        one "$op" "$t" "$run"
      done
    done
  done
  rm -rf "$D" "$RC" "${STORE:?}/lat$n"
done

{
  echo "<!-- bench/bench_latency.sh --actors $ACTORS --delays $DELAYS" \
    "--runs $RUNS; $(date -u +%Y-%m-%dT%H:%MZ); tdm" \
    "$BUILD; load average $LOAD_START at start," \
    "$(cut -d' ' -f1-3 /proc/loadavg) at end -->"
  echo
  python3 bench/report.py "$OUT/results.tsv"
  echo
  python3 bench/latency_report.py "$OUT/results.tsv" "$REQS"
} > "$OUT/report.md"
cat "$OUT/report.md"
