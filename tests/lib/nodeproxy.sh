# tests/lib/nodeproxy.sh -- start and stop one of the Node proxies in
# tests/lib/ (faultproxy.js, awsproxy.js) in front of an S3 server; what
# faultproxy.sh and awsproxy.sh share. Each proxy keeps its own variables,
# named by PREFIX: PREFIX_URL, PREFIX_PID, PREFIX_DIR.
#
#   nodeproxy_start PREFIX JS UPSTREAM [proxy options...]
#   nodeproxy_stop PREFIX

nodeproxy_start() {
  local prefix=$1 js=$2 upstream=$3 dir pid i=0
  shift 3
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tdm-$(basename "$js" .js).XXXXXX")
  node "$js" --upstream "$upstream" --port-file "$dir/port" \
    --stats-file "$dir/stats" --log "$dir/log" "$@" >"$dir/out" 2>&1 &
  pid=$!
  printf -v "${prefix}_DIR" '%s' "$dir"
  printf -v "${prefix}_PID" '%s' "$pid"
  while [ ! -s "$dir/port" ] && [ $i -lt 100 ]; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05; i=$((i + 1))
  done
  if [ ! -s "$dir/port" ]; then
    echo "$(basename "$js") failed to start:" >&2; cat "$dir/out" >&2
    return 1
  fi
  printf -v "${prefix}_URL" 'http://127.0.0.1:%s' "$(cat "$dir/port")"
}

nodeproxy_stop() {
  local pid_var="${1}_PID" dir_var="${1}_DIR"
  if [ -n "${!pid_var:-}" ]; then
    kill "${!pid_var}" 2>/dev/null
    wait "${!pid_var}" 2>/dev/null
    printf -v "$pid_var" '%s' ""
  fi
  [ -n "${!dir_var:-}" ] && rm -rf "${!dir_var}"
  printf -v "$dir_var" '%s' ""
}
