#!/usr/bin/env bash
# bench/bench_pull_peers.sh -- issue 4's download benchmark: 100 actors x
# 17 objects of ~300 KB (1700 objects, ~500 MB) on a local s3rver, pulled
# into an empty directory by
#
#   tdm       a small Lua script: one listing, then c:transfer (verified
#             MD5s, temp file + rename + fsync per file), --jobs J
#   aws       aws s3 sync (max_concurrent_requests J)
#   rclone    rclone copy --transfers J (AWS_CA_BUNDLE unset for rclone)
#   s3cmd     s3cmd sync (one connection; it has no concurrency setting)
#
# at each concurrency in $JOBS_LIST, $RUNS times each; prints every time,
# each tool's best, and the ratio of each peer's best to tdm's best
# (> 1 means tdm was faster).
#
#   bench/bench_pull_peers.sh            # JOBS_LIST="8 16 32" RUNS=1
#   ACTORS=20 RUNS=3 bench/bench_pull_peers.sh
#   TDM_LUA=/path/tdm-lua TDM_LUA_DIR=/path/lua ...   # a snapshot build
#
# Needs: node + s3rver (scripts/install-deps.sh), awscli, rclone, s3cmd
# (scripts/install-deps.sh --bench), python3. Takes a few minutes; not
# part of `make test`. s3rver is one Node process: it is usually the
# bottleneck, so the ratios say more than the absolute times.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACTORS=${ACTORS:-100}
PER_ACTOR=${PER_ACTOR:-17}
SIZE=${SIZE:-307200}
RUNS=${RUNS:-1}
JOBS_LIST=${JOBS_LIST:-"8 16 32"}
TOOLS=${TOOLS:-"tdm aws rclone s3cmd"}
TDM_LUA=${TDM_LUA:-$ROOT/tdm-lua}
TDM_LUA_DIR=${TDM_LUA_DIR:-$ROOT/lua}
PREFIX=system_actors/training_data

for t in $TOOLS; do
  case $t in
    tdm) [ -x "$TDM_LUA" ] || { echo "build tdm first (make)" >&2; exit 1; } ;;
    *) command -v "$t" >/dev/null ||
         { echo "$t not installed: scripts/install-deps.sh --bench" >&2
           exit 1; } ;;
  esac
done

. tests/lib/s3rver.sh
. bench/lib.sh
s3rver_start story-boards-assets || exit 1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tdm-bench-pull.XXXXXX")
trap 's3rver_stop; rm -rf "$WORK"' EXIT
export LUA_PATH="$TDM_LUA_DIR/?.lua;$TDM_LUA_DIR/?/init.lua;;"
export LUA_CPATH="$ROOT/?.so;;"

# ---- dataset ---------------------------------------------------------------
echo "bench: generating $ACTORS x $PER_ACTOR objects of ~$SIZE bytes" >&2
python3 - "$WORK/src" "$ACTORS" "$PER_ACTOR" "$SIZE" <<'EOF'
import os, random, sys
root, actors, per, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(42)
for a in range(1, actors + 1):
    name = "%04d_actor_%d" % (a, a)
    d = os.path.join(root, "actors", name, "training_data")
    os.makedirs(d, exist_ok=True)
    for i in range(1, per + 1):
        n = size + rnd.randint(-size // 10, size // 10)
        with open(os.path.join(d, "%s_%d.jpg" % (name, i)), "wb") as f:
            f.write(os.urandom(n))
EOF
TOTAL_BYTES=$(du -sb "$WORK/src" | cut -f1)
NFILES=$((ACTORS * PER_ACTOR))
echo "bench: uploading $NFILES objects ($TOTAL_BYTES bytes)" >&2
bench/load_s3.sh "$WORK/src" || exit 1

# ---- the tdm client ----------------------------------------------------------
cat > "$WORK/pull.lua" <<'EOF'
-- pull.lua DEST JOBS: download every object under the prefix, verified.
local tdm = require "tdm"
local dest, jobs = arg[1], tonumber(arg[2])
local cfg = tdm.config()
local c = assert(tdm.s3.client(cfg))
local prefix = cfg.prefix .. "/"
local list = {}
for obj, err in c:list(prefix) do
  assert(obj, err)
  list[#list + 1] = { op = "get", key = obj.key,
                      path = dest .. "/" .. obj.key:sub(#prefix + 1) }
end
local results = c:transfer(list, { jobs = jobs })
local bad = 0
for _, r in ipairs(results) do
  if not r.ok then bad = bad + 1; io.stderr:write(r.error, "\n") end
end
if bad > 0 then os.exit(1) end
EOF

# ---- peers' configuration (bench/lib.sh) --------------------------------------
peers_setup "$WORK/peers" $JOBS_LIST

RESULTS=$WORK/results.tsv
: > "$RESULTS"

# run TOOL JOBS N: one timed download into a fresh directory
run() {
  local tool=$1 jobs=$2 n=$3 dest="$WORK/dest.$1.$2.$3" start end rc got
  mkdir -p "$dest"
  sync
  start=$(date +%s.%N)
  case $tool in
    tdm) "$TDM_LUA" "$WORK/pull.lua" "$dest" "$jobs" ;;
    aws) aws_peer "c$jobs" s3 sync "s3://story-boards-assets/$PREFIX" "$dest" ;;
    rclone)
      rclone_peer copy "s3rver:story-boards-assets/$PREFIX" "$dest" \
        --transfers "$jobs" --checkers "$jobs" ;;
    s3cmd)
      s3cmd_peer sync "s3://story-boards-assets/$PREFIX/" "$dest/" >/dev/null ;;
  esac
  rc=$?
  end=$(date +%s.%N)
  got=$(find "$dest" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$got" -ne "$NFILES" ]; then
    echo "bench: $tool jobs=$jobs run $n FAILED (rc $rc, $got of $NFILES files)" >&2
    printf '%s\t%s\t%s\tfail\n' "$tool" "$jobs" "$n" >> "$RESULTS"
  else
    printf '%s\t%s\t%s\t%s\n' "$tool" "$jobs" "$n" \
      "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')" \
      >> "$RESULTS"
    tail -n 1 "$RESULTS" >&2
  fi
  rm -rf "$dest"
}

for n in $(seq 1 "$RUNS"); do
  for tool in $TOOLS; do
    if [ "$tool" = s3cmd ]; then run s3cmd 1 "$n"; continue; fi
    for j in $JOBS_LIST; do run "$tool" "$j" "$n"; done
  done
done

echo
echo "Download of $NFILES objects ($TOTAL_BYTES bytes) from s3rver,"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
printf '%-8s %6s %4s %9s %9s\n' tool jobs run seconds 'MB/s'
awk -F'\t' -v b="$TOTAL_BYTES" '{ if ($4 == "fail") printf "%-8s %6s %4s %9s\n", $1, $2, $3, "fail";
  else printf "%-8s %6s %4s %9.2f %9.1f\n", $1, $2, $3, $4, b / $4 / 1e6 }' "$RESULTS"
echo
awk -F'\t' '$4 != "fail" { if (!($1 in best) || $4 < best[$1]) { best[$1] = $4; bj[$1] = $2 } }
  END { if (!("tdm" in best)) { print "no tdm result"; exit 1 }
        printf "%-8s %9s %6s %18s\n", "tool", "best s", "jobs", "best / tdm best"
        for (t in best) printf "%-8s %9.2f %6s %18.2f\n", t, best[t], bj[t], best[t] / best["tdm"] }' "$RESULTS"
