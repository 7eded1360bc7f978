# bench/lib.sh -- shared helpers of the benchmark scripts (sourced).
#
#   . bench/lib.sh
#   bench_init RESULTS_TSV       # start (truncate) a results file
#   bench_run OP TOOL ROLE RUN BYTES FILES -- CMD...
#       time CMD (wall clock), record one row; ROLE is tdm, peer or ref.
#       CMD's output goes to $BENCH_LOG; a non-zero exit records "fail".
#       When BENCH_CHECK is set, it is eval'd after CMD (untimed); if it
#       fails the run is recorded as "fail(check)" (e.g. files missing).
#   bench_na OP TOOL ROLE NOTE   # record a row that could not run
#   bench_rss OP TOOL ROLE RUN FILES -- CMD...   # peak RSS (KB) of CMD
#       (OP must start with "rss ": report.py puts those in the RSS table)
#
# The server CPU column: when S3RVER_PID is set, the CPU time the s3rver
# process used during CMD, as a percentage of one core over CMD's wall time
# (from /proc/PID/stat; 100 % means the one Node process was saturated).
#
# Rows are tab-separated:
#   op tool role run status seconds bytes files srv_cpu_pct rss_kb note
# bench/report.py turns them into Markdown.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLK_TCK=$(getconf CLK_TCK)

bench_init() {
  BENCH_RESULTS=$1
  mkdir -p "$(dirname "$BENCH_RESULTS")"
  : > "$BENCH_RESULTS"
  BENCH_LOG=${BENCH_LOG:-$(dirname "$BENCH_RESULTS")/bench.log}
  : > "$BENCH_LOG"
}

# CPU ticks (user + system) used so far by process $1, or empty.
proc_ticks() {
  local stat
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 0
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  # Fields after the ")" of the command name: 14 utime, 15 stime overall.
  stat=${stat##*) }
  set -- $stat
  echo $(( ${12} + ${13} ))
}

now_ns() { date +%s%N; }

bench_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" \
    >> "$BENCH_RESULTS"
}

bench_run() {
  local op=$1 tool=$2 role=$3 run=$4 bytes=$5 files=$6
  shift 6; [ "${1:-}" = "--" ] && shift
  local t0 t1 c0 c1 rc secs cpu= status=ok
  echo "### $op / $tool / run $run: $*" >> "$BENCH_LOG"
  c0=$(proc_ticks "${S3RVER_PID:-}")
  t0=$(now_ns)
  "$@" >> "$BENCH_LOG" 2>&1
  rc=$?
  t1=$(now_ns)
  c1=$(proc_ticks "${S3RVER_PID:-}")
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  if [ -n "$c0" ] && [ -n "$c1" ]; then
    cpu=$(awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v s="$secs" \
      'BEGIN { printf "%.0f", (s > 0 ? 100 * c / hz / s : 0) }')
  fi
  if [ "$rc" -ne 0 ]; then
    status="fail(rc=$rc)"
  elif [ -n "${BENCH_CHECK:-}" ] && ! eval "$BENCH_CHECK" >> "$BENCH_LOG" 2>&1
  then
    status="fail(check)"; rc=1
  fi
  bench_row "$op" "$tool" "$role" "$run" "$status" "$secs" "$bytes" \
    "$files" "$cpu" "" ""
  printf '  %-26s %-24s run %s: %7.2fs  %s%s\n' "$op" "$tool" "$run" \
    "$secs" "$status" "${cpu:+  (s3rver ${cpu}% CPU)}" >&2
  return "$rc"
}

bench_na() {
  bench_row "$1" "$2" "$3" 0 "n/a" "" "" "" "" "" "$4"
  printf '  %-26s %-24s n/a: %s\n' "$1" "$2" "$4" >&2
}

bench_rss() {
  local op=$1 tool=$2 role=$3 run=$4 files=$5
  shift 5; [ "${1:-}" = "--" ] && shift
  local out rc kb secs status=ok
  out=$(mktemp)
  echo "### $op / $tool / run $run: $*" >> "$BENCH_LOG"
  /usr/bin/time -f '%M %e' -o "$out" "$@" >> "$BENCH_LOG" 2>&1
  rc=$?
  read -r kb secs < <(tail -n 1 "$out")
  rm -f "$out"
  if [ "$rc" -ne 0 ]; then
    status="fail(rc=$rc)"
  elif [ -n "${BENCH_CHECK:-}" ] && ! eval "$BENCH_CHECK" >> "$BENCH_LOG" 2>&1
  then
    status="fail(check)"; rc=1
  fi
  bench_row "$op" "$tool" "$role" "$run" "$status" "$secs" "" "$files" "" \
    "$kb" ""
  printf '  %-26s %-24s run %s: peak RSS %s KB, %ss  %s\n' "$op" "$tool" \
    "$run" "$kb" "$secs" "$status" >&2
  return "$rc"
}

# Does `tdm-lua COMMAND` exist in this build, with the S3 module it needs?
# (0 yes, 1 no; a command whose modules do not load yet counts as not
# built, so a half-landed feature gives "n/a", not a failure.)
tdm_has_command() {
  [ -f "$BENCH_ROOT/lua/tdm/commands/$1.lua" ] &&
    "$BENCH_ROOT/tdm-lua" -e "require 'tdm.commands.$1'; require 'tdm.s3'" \
      > /dev/null 2>&1
}

# Read every file of a tree once, so timed runs see a warm page cache.
warm_cache() {
  find "$@" -type f -print0 | xargs -0 -r cat > /dev/null
}

# Drop the page cache when we may (root); 0 when done.
drop_cache() {
  sync
  { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null
}
