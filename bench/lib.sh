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
#   raw_listing ENDPOINT BUCKET PREFIX COUNT   # every ListObjectsV2 page,
#       page after page, with curl; fails unless COUNT keys were listed
#   peers_setup DIR CONCURRENCY...   # aws cli, rclone and s3cmd configured
#       for the s3rver; aws_peer, rclone_peer, s3cmd_peer (see below)
#
# The server CPU column: when S3RVER_PID is set, the CPU time the s3rver
# process used during CMD, as a percentage of one core over CMD's wall time
# (from /proc/PID/stat; 100 % means the one Node process was saturated).
#
# Rows are tab-separated:
#   op tool role run status seconds bytes files srv_cpu_pct rss_kb note
#   client_cpu_s (user + system CPU seconds of CMD and its children)
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

# bench_tmpfs: put TMPDIR (and so s3rver's store) on /dev/shm when it is a
# writable tmpfs, unless TDM_BENCH_TMP names another place. For the runs
# of many tiny files: on a disk shared with fsync-heavy neighbours one
# file creation took ~6 ms here (5,000 empty files: 29 s), so setting up
# 51,000 objects took longer than measuring them; what those runs measure
# (latency, listing, memory and CPU per key) is not the disk.
bench_tmpfs() {
  local t=${TDM_BENCH_TMP:-/dev/shm}
  [ -d "$t" ] && [ -w "$t" ] || t=${TMPDIR:-/tmp}
  export TMPDIR=$t
}

# CPU seconds (user + system) of this shell's reaped children, as saved
# by `times > "$BENCH_TIMES"` (which must run in the current shell: a
# subshell starts from zero). Prints seconds.
times_secs() {
  awk 'NR == 2 { t = 0
         for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2])
                                    t += p[1] * 60 + p[2] }
         printf "%.3f", t }' "$BENCH_TIMES"
}

bench_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" \
    >> "$BENCH_RESULTS"
}

bench_run() {
  local op=$1 tool=$2 role=$3 run=$4 bytes=$5 files=$6
  shift 6; [ "${1:-}" = "--" ] && shift
  local t0 t1 c0 c1 u0 u1 rc secs cpu= status=ok
  echo "### $op / $tool / run $run: $*" >> "$BENCH_LOG"
  BENCH_TIMES=${BENCH_TIMES:-$(mktemp)}
  c0=$(proc_ticks "${S3RVER_PID:-}")
  times > "$BENCH_TIMES"; u0=$(times_secs)
  t0=$(now_ns)
  "$@" >> "$BENCH_LOG" 2>&1
  rc=$?
  t1=$(now_ns)
  times > "$BENCH_TIMES"; u1=$(times_secs)
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
    "$files" "$cpu" "" "" "$(awk -v a="$u0" -v b="$u1" \
      'BEGIN { printf "%.2f", b - a }')"
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
  local out rc kb secs us ss status=ok
  out=$(mktemp)
  echo "### $op / $tool / run $run: $*" >> "$BENCH_LOG"
  /usr/bin/time -f '%M %e %U %S' -o "$out" "$@" >> "$BENCH_LOG" 2>&1
  rc=$?
  read -r kb secs us ss < <(tail -n 1 "$out")
  rm -f "$out"
  if [ "$rc" -ne 0 ]; then
    status="fail(rc=$rc)"
  elif [ -n "${BENCH_CHECK:-}" ] && ! eval "$BENCH_CHECK" >> "$BENCH_LOG" 2>&1
  then
    status="fail(check)"; rc=1
  fi
  bench_row "$op" "$tool" "$role" "$run" "$status" "$secs" "" "$files" "" \
    "$kb" "" "$(awk -v a="$us" -v b="$ss" 'BEGIN { printf "%.2f", a + b }')"
  printf '  %-26s %-24s run %s: peak RSS %s KB, %ss  %s\n' "$op" "$tool" \
    "$run" "$kb" "$secs" "$status" >&2
  return "$rc"
}

# tdm_snapshot DIR: copy the built tdm-lua and lua/ into DIR and point
# TDM_LUA at the copy, so a rebuild in the tree (others work in it) cannot
# change or break the binary in the middle of a benchmark. Retries while
# the binary is being relinked.
# TDM_BENCH_SNAPSHOT=DIR uses an earlier snapshot as it is (to measure an
# older build, e.g. main before a change landed).
tdm_snapshot() {
  local dir=$1 i
  if [ -n "${TDM_BENCH_SNAPSHOT:-}" ]; then
    TDM_LUA=$TDM_BENCH_SNAPSHOT/tdm-lua TDM_SNAP=$TDM_BENCH_SNAPSHOT
    "$TDM_LUA" -e 'require "tdm"' > /dev/null 2>&1 && return 0
    echo "bench: $TDM_BENCH_SNAPSHOT/tdm-lua does not run" >&2
    return 1
  fi
  for i in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "$dir"; mkdir -p "$dir"
    if cp "$BENCH_ROOT/tdm-lua" "$dir/tdm-lua" 2>/dev/null &&
       cp -r "$BENCH_ROOT/lua" "$dir/lua" &&
       "$dir/tdm-lua" -e 'require "tdm"' > /dev/null 2>&1; then
      TDM_LUA=$dir/tdm-lua
      TDM_SNAP=$dir
      return 0
    fi
    sleep 3
  done
  echo "bench: cannot snapshot a working tdm-lua from $BENCH_ROOT" >&2
  return 1
}

# Does `tdm-lua COMMAND` exist in this build, with the S3 module it needs?
# (0 yes, 1 no; a command whose modules do not load yet counts as not
# built, so a half-landed feature gives "n/a", not a failure.)
tdm_has_command() {
  [ -f "$TDM_SNAP/lua/tdm/commands/$1.lua" ] &&
    "$TDM_LUA" -e "require 'tdm.commands.$1'; require 'tdm.s3'" \
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

# raw_listing ENDPOINT BUCKET PREFIX COUNT: every ListObjectsV2 page under
# PREFIX, as a client must fetch them (each page waits for the previous
# one's token): the floor of a sequential listing; fails unless COUNT keys
# were listed.
raw_listing() {
  local ep=$1 bucket=$2 prefix=$3 want=$4 tok="" page n total=0
  while :; do
    page=$(curl -s --no-progress-meter --fail -G \
      --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
      --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      --data-urlencode "list-type=2" --data-urlencode "prefix=$prefix" \
      ${tok:+--data-urlencode "continuation-token=$tok"} \
      "$ep/$bucket") || return 1
    n=$(printf '%s' "$page" | grep -o '<Key>' | wc -l)
    total=$((total + n))
    tok=$(printf '%s' "$page" |
      sed -n 's:.*<NextContinuationToken>\(.*\)</NextContinuationToken>.*:\1:p')
    [ -n "$tok" ] || break
  done
  echo "listed $total objects"
  [ "$total" -eq "$want" ]
}

# peers_setup DIR CONCURRENCY...: configure the peer tools for the s3rver
# at $AWS_ENDPOINT_URL (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION: tests/lib/s3rver.sh exports them), one file each in DIR
# (also $PEERS), and define the functions the benchmarks run them by:
#   aws_peer cN ARGS...   /usr/bin/aws (Debian's awscli, not whatever else
#                         is on PATH) with profile cN, one per CONCURRENCY
#                         N (max_concurrent_requests N)
#   rclone_peer ARGS...   rclone with the remote "s3rver:"
#   s3cmd_peer ARGS...    s3cmd, quiet, no progress meter
# awscli 2.9 ignores AWS_ENDPOINT_URL (so --endpoint-url) and takes its
# concurrency only from its config file; named profiles take the
# credentials file.
AWS=/usr/bin/aws
peers_setup() {
  PEERS=$1; shift
  local c hostport=${AWS_ENDPOINT_URL#http://}
  mkdir -p "$PEERS"
  : > "$PEERS/aws-config"; : > "$PEERS/aws-credentials"
  for c in "$@"; do
    printf '[profile c%s]\nregion = %s\ns3 =\n  max_concurrent_requests = %s\n' \
      "$c" "$AWS_REGION" "$c" >> "$PEERS/aws-config"
    printf '[c%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
      "$c" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" \
      >> "$PEERS/aws-credentials"
  done
  cat > "$PEERS/rclone.conf" <<EOC
[s3rver]
type = s3
provider = Other
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $AWS_ENDPOINT_URL
region = $AWS_REGION
force_path_style = true
EOC
  cat > "$PEERS/s3cfg" <<EOC
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hostport
host_bucket = $hostport
bucket_location = $AWS_REGION
use_https = False
signature_v2 = False
check_ssl_certificate = False
progress_meter = False
EOC
}
aws_peer() {       # aws_peer PROFILE ARGS...
  AWS_CONFIG_FILE=$PEERS/aws-config \
  AWS_SHARED_CREDENTIALS_FILE=$PEERS/aws-credentials \
  AWS_PROFILE=$1 "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors \
    "${@:2}" < /dev/null
}
rclone_peer() {    # rclone 1.60 refuses to start with AWS_CA_BUNDLE set
  env -u AWS_CA_BUNDLE rclone --config "$PEERS/rclone.conf" -q "$@"
}
s3cmd_peer() { s3cmd -c "$PEERS/s3cfg" --no-progress -q "$@"; }
