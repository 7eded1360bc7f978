#!/usr/bin/env bash
# bench/bench_scan.sh -- local scan + hash of a tree of actors, cold (no
# manifests: every file hashed) then warm (nothing changed: size+mtime
# vouch for every file), next to md5sum of the same files.
#
#   bench/bench_scan.sh [ACTORS [FILES_PER_ACTOR [KB_PER_FILE]]]
#   (defaults 100 x 17 x 300 KB = ~500 MB; BENCH_DIR=/path keeps the tree)
#
# "cold" means no manifest exists, not an empty page cache: the files were
# just written, so both tdm and md5sum read them from memory and the ratio
# compares hashing work, not disk speed. Prints the times and the ratio
# md5sum / warm scan; the issue asks for >= 20x. Warm scan, start-up and
# cached md5sum are the median of REPEAT (default 5) runs, by CPU time.
# Not part of `make test`.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ACTORS=${1:-100} FILES=${2:-17} KB=${3:-300}
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/?.so;;"
DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tdm-bench-scan.XXXXXX")}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$DIR"' EXIT
export TDM_DATA_ROOT="$DIR/data"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

echo "generating $ACTORS actors x $FILES files x ${KB} KB in $DIR ..."
python3 - "$TDM_DATA_ROOT" "$ACTORS" "$FILES" "$KB" <<'EOF'
import os, sys
root, actors, files, kb = sys.argv[1], *map(int, sys.argv[2:])
for a in range(actors):
    name = "%04d_bench_actor" % (a + 1)
    d = os.path.join(root, "actors", name, "training_data")
    os.makedirs(d, exist_ok=True)
    for i in range(files):
        with open(os.path.join(d, "%s_%d.jpg" % (name, i)), "wb") as f:
            f.write(os.urandom(kb * 1024 - 1000 + (i * 97) % 2000))
EOF
rm -rf "$TDM_DATA_ROOT/actor_manifests"
# old mtimes: outside the racy window of the first save
find "$TDM_DATA_ROOT/actors" -type f -exec touch -d '2 hours ago' {} +

SCAN='
local tdm = require "tdm"
local cfg = tdm.config()
local names = assert(tdm.core.listdir(os.getenv("TDM_DATA_ROOT") .. "/actors"))
table.sort(names)
local hashed, reused, written = 0, 0, 0
for _, name in ipairs(names) do
  local m = assert(tdm.Manifest.open(name, cfg))
  local r = assert(m:scan_local{ jobs = 2 })
  hashed, reused = hashed + r.hashed, reused + r.reused
  local _, w = assert(m:save())
  if w then written = written + 1 end
  m:close()
end
print(string.format("hashed %d reused %d manifests written %d", hashed,
                    reused, written))'

# timed: "wall cpu" seconds (cpu = user + system of the command and its
# children; on a shared, loaded machine the CPU figure is the steadier one)
TIMEFORMAT='%R %U %S'
timed() {
  { time "$@" >>"$DIR/bench.log" 2>&1; } 2> "$DIR/.time"
  awk 'END { printf "%.3f %.3f\n", $1, $2 + $3 }' "$DIR/.time"
}
run_scan() { ./tdm-lua -e "$SCAN"; }
# Drop the tree's pages from the page cache (posix_fadvise DONTNEED on these
# files only; the rest of the machine is left alone), for "disk" runs.
evict() {
  python3 - "$TDM_DATA_ROOT/actors" <<'EOF'
import os, sys
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        fd = os.open(os.path.join(d, f), os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
EOF
}
run_md5() {
  find "$TDM_DATA_ROOT/actors" -type f -name '*.jpg' -print0 |
    xargs -0 md5sum > /dev/null
}
# The median "wall cpu" of REPEAT runs of a command (a run of 0.05 s CPU
# on a loaded machine varies by +-30%; one sample is not a figure).
REPEAT=${REPEAT:-5}
median() {
  local i
  for i in $(seq "$REPEAT"); do timed "$@"; done |
    sort -n -k2 | awk '{ w[NR] = $1; c[NR] = $2 }
      END { m = int((NR + 1) / 2); printf "%.3f %.3f\n", w[m], c[m] }'
}
run_startup() { ./tdm-lua -e ''; }
evict
read -r cold cold_cpu <<<"$(timed run_scan)"
read -r warm warm_cpu <<<"$(median run_scan)"
read -r start start_cpu <<<"$(median run_startup)"
read -r md5 md5_cpu <<<"$(median run_md5)"
evict
read -r md5d md5d_cpu <<<"$(timed run_md5)"
cat "$DIR/bench.log"
bytes=$(du -sb "$TDM_DATA_ROOT/actors" | cut -f1)
echo "files: $((ACTORS * FILES)), bytes: $bytes, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "                                       wall s   cpu s"
printf 'cold scan (from disk, hash all, save): %7s %7s\n' "$cold" "$cold_cpu"
printf 'warm scan (nothing changed), median:   %7s %7s\n' "$warm" "$warm_cpu"
printf "  of which tdm-lua start-up (-e ''):   %7s %7s\n" "$start" "$start_cpu"
printf 'md5sum (files in page cache), median:  %7s %7s\n' "$md5" "$md5_cpu"
printf 'md5sum (files from disk):              %7s %7s\n' "$md5d" "$md5d_cpu"
awk -v m="$md5" -v d="$md5d" -v w="$warm" -v c="$cold" -v mc="$md5_cpu" \
    -v wc="$warm_cpu" 'BEGIN {
  printf "md5sum(disk) / warm = %.1fx wall; md5sum(cached) / warm = %.1fx wall, %.1fx cpu (want >= 20x)\n",
         d / w, m / w, mc / (wc > 0 ? wc : 0.001)
  printf "md5sum(disk) / cold scan = %.2fx wall\n", d / c }'
