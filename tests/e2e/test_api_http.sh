#!/usr/bin/env bash
# test_api_http.sh -- the HTTP server binding (core.http_serve, src/lhttp.c)
# with a tiny handler: request table, limits, multipart, bearer token,
# errors without leaks, access log, graceful SIGTERM.
. "$(dirname "$0")/../lib/e2e.sh"
pid=
at_exit '[ -n "$pid" ] && kill "$pid" 2>/dev/null'

mkdir -p "$tmp/mods"
cat > "$tmp/mods/tiny_handler.lua" <<'EOF'
local M = {}
function M.http_worker(settings)
  local tdm = require "tdm"
  local function q(s) return string.format("%q", s) end
  return {
    preflight = function(req)
      if req.path == "/refuse" then return 405, '{"error": "no"}', { Allow = "GET" } end
    end,
    handle = function(req)
      if req.path == "/boom" then error("secret /etc/passwd detail") end
      -- answers of the wrong type: each must be a 500 for that request only
      if req.path == "/float" then return 200.5, "x" end
      if req.path == "/strstatus" then return "200", "x" end
      if req.path == "/tablebody" then return 200, {} end
      if req.path == "/badheader" then return 200, "x", { ["X-A"] = {} } end
      if req.path == "/crlf" then return 200, "x", { ["X-A"] = "a\r\nSet-Cookie: x" } end
      if req.path == "/grow" then local t = {} for i = 1, 1e7 do t[i] = i end end
      if req.path == "/slow" then os.execute("sleep 1.5") end
      local out = { "method=" .. req.method, "path=" .. req.path,
                    "setting=" .. tostring(settings.greeting) }
      local keys = {}
      for k in pairs(req.query) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do out[#out + 1] = "q:" .. k .. "=" .. req.query[k] end
      for _, f in ipairs(req.files or {}) do
        out[#out + 1] = "file:" .. f.field .. ":" .. f.filename .. ":" .. #f.data .. ":" .. tdm.md5(f.data)
      end
      if req.body then out[#out + 1] = "body:" .. #req.body end
      return 200, table.concat(out, "\n"), { ["X-Handled"] = "yes" }
    end,
  }
end
return M
EOF

# start SERVER_OPTS_LUA -> sets $pid and $base
start() {
  : > "$tmp/log"
  LUA_PATH="$tmp/mods/?.lua;${LUA_PATH:-;}" tdm-lua -e "
    local core = require 'tdm.core'
    local ok, msg = core.http_serve { listen = '127.0.0.1:0', threads = 2,
      handler = 'tiny_handler', settings = { greeting = 'hi' },
      max_upload = ${MAXUP:-100000}, max_files = 3,
      max_buffered = ${MAXBUF:-150000}, $1 }
    if not ok then io.stderr:write(msg, '\n') os.exit(1) end" 2>"$tmp/log" &
  pid=$!
  local i
  for i in $(seq 1 100); do
    base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/log")
    [ -n "$base" ] && return 0
    sleep 0.05
  done
  echo "server did not start: $(cat "$tmp/log")"; return 1
}
code() { curl -s -o "$tmp/body" -w '%{http_code}' "$@"; }

start "" || { fail "server start"; finish; exit 1; }

check_out "GET reaches the handler" "200" code "$base/a/b?s3=true&x=%2e%2e"
check_grep "handler sees method, raw path and raw query" \
  "method=GET.*path=/a/b.*setting=hi.*q:s3=true.*q:x=%2e%2e" tr '\n' ' ' < "$tmp/body"
check_out "percent escapes stay escaped in the path" "200" code "$base/x/%00/%2e%2e"
check_grep "path given raw" "path=/x/%00/%2e%2e" cat "$tmp/body"

head -c 5000 /dev/urandom > "$tmp/f1"
head -c 150000 /dev/urandom > "$tmp/big"
check_out "multipart with two files and a field" "200" \
  code -F "a=@$tmp/f1" -F "b=@$tmp/f1;filename=x.jpg" -F "c=text" "$base/up"
md5=$(md5sum < "$tmp/f1" | cut -d' ' -f1)
check_grep "both files received intact" "file:a:f1:5000:$md5" cat "$tmp/body"
check_grep "second file named as sent" "file:b:x.jpg:5000:$md5" cat "$tmp/body"
check_out "raw image body" "200" code --data-binary "@$tmp/f1" -H 'Content-Type: image/jpeg' "$base/raw"
check_grep "raw body length" "body:5000" cat "$tmp/body"

check_out "file over max_upload -> 413" "413" code -F "a=@$tmp/big" "$base/up"
check_grep "413 names the limit" '"error": "a file is larger than the 100000-byte limit"' cat "$tmp/body"
check_out "too many files -> 413" "413" \
  code -F "a=@$tmp/f1" -F "b=@$tmp/f1" -F "c=@$tmp/f1" -F "d=@$tmp/f1" "$base/up"
head -c 60000 /dev/urandom > "$tmp/f60k"
check_out "server-wide body budget (max_buffered) -> 503" "503" \
  code -F "a=@$tmp/f60k" -F "b=@$tmp/f60k" -F "c=@$tmp/f60k" "$base/up"
check_grep "503 says when to retry" "Retry-After: 5" \
  curl -s -D - -o /dev/null -F "a=@$tmp/f60k" -F "b=@$tmp/f60k" -F "c=@$tmp/f60k" "$base/up"
check_out "budget released after the request" "200" code -F "a=@$tmp/f60k" "$base/up"
check_out "1 GB Content-Length refused before the body" "413" \
  code -m 5 -X POST -H 'Content-Type: multipart/form-data; boundary=XX' \
  -H 'Content-Length: 1073741824' "$base/up"
printf -- '--XX\r\nContent-Disposition: form-data; name="a"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\nabcdefgh' > "$tmp/trunc"
check_out "truncated multipart -> 400" "400" \
  code --data-binary "@$tmp/trunc" -H 'Content-Type: multipart/form-data; boundary=XX' "$base/up"
check_out "POST of text/plain -> 415" "415" code --data-binary "hello" -H 'Content-Type: text/plain' "$base/up"
check_out "preflight answers before the body" "405" code -F "a=@$tmp/f1" "$base/refuse"
check_out "preflight headers sent" "GET" sh -c "curl -s -D - -o /dev/null -F 'a=@$tmp/f1' '$base/refuse' | sed -n 's/^Allow: \([A-Z]*\).*/\1/p'"

for bad in float strstatus tablebody badheader crlf; do
  check_out "handler answer of the wrong type (/$bad) -> 500" "500" code "$base/$bad"
  check_out "... and the server still answers" "200" code "$base/a"
done
check_grep "a float status is logged as such" "answered status 200.5" cat "$tmp/log"
check_grep "a table body is logged as such" "answered a table body" cat "$tmp/log"

check_out "handler error -> 500" "500" code "$base/boom"
check_out "500 body has no detail" '{"error": "internal error"}' cat "$tmp/body"
check_grep "detail logged on the server side" "handler error: .*secret" cat "$tmp/log"
check_grep "access log line: method path status bytes ms" \
  "GET /a/b 200 [0-9]+ [0-9.]+ms" cat "$tmp/log"
check "access log never shows headers" bash -c "! grep -qi 'content-type\|authorization' '$tmp/log'"

# graceful stop: a slow request in flight finishes, the process exits 0
curl -s -o "$tmp/slow" -w '%{http_code}' "$base/slow" > "$tmp/slow_code" &
cpid=$!
sleep 0.5
kill -TERM "$pid"
wait "$cpid"
wait "$pid"; rc=$?; pid=
check_out "in-flight request finished after SIGTERM" "200" cat "$tmp/slow_code"
check_out "server exits 0 on SIGTERM" "0" echo "$rc"
check_out "no new connections after stop" "000" code -m 2 "$base/a"

# a worker's Lua state has a memory limit: a request whose table cannot be
# built (a 12 MB body in a 10 MB state) is a 500, the server stays up
MAXUP=20000000 MAXBUF=60000000 start "max_lua_memory = 10000000, threads = 1" ||
  { fail "server start (memory)"; finish; exit 1; }
head -c 12000000 /dev/zero > "$tmp/f12m"
check_out "request table over the memory limit -> 500" "500" \
  code --data-binary "@$tmp/f12m" -H 'Content-Type: image/jpeg' "$base/raw"
check_grep "memory error logged" "not enough memory" cat "$tmp/log"
check_out "the same worker serves the next request" "200" \
  code --data-binary "@$tmp/f1" -H 'Content-Type: image/jpeg' "$base/raw"
check_grep "... with its body" "body:5000" cat "$tmp/body"
check_out "a handler growing past the limit -> 500" "500" code "$base/grow"
check_out "... and the worker still answers" "200" code "$base/a"
kill -TERM "$pid"; wait "$pid"; pid=

# cross-site requests and DNS rebinding: refused with or without a token
start "allowed_origins = { 'https://ops.example' }" ||
  { fail "server start (origins)"; finish; exit 1; }
port=${base##*:}
check_out "POST from another origin -> 403" "403" \
  code -H 'Origin: http://evil.example' -F "a=@$tmp/f1" "$base/up"
check_out "403 is a JSON error" '{"error": "cross-site request refused"}' cat "$tmp/body"
check_out "DELETE from another origin -> 403" "403" \
  code -X DELETE -H 'Origin: http://evil.example' "$base/x"
check_out "Origin null -> 403" "403" code -H 'Origin: null' -F "a=@$tmp/f1" "$base/up"
check_out "no Origin, Sec-Fetch-Site: cross-site -> 403" "403" \
  code -H 'Sec-Fetch-Site: cross-site' -F "a=@$tmp/f1" "$base/up"
check_out "the server's own origin -> 200" "200" \
  code -H "Origin: $base" -F "a=@$tmp/f1" "$base/up"
check_out "an allowed origin -> 200" "200" \
  code -H 'Origin: https://ops.example' -F "a=@$tmp/f1" "$base/up"
check_out "Sec-Fetch-Site: same-origin -> 200" "200" \
  code -H 'Sec-Fetch-Site: same-origin' -F "a=@$tmp/f1" "$base/up"
check_out "no Origin (curl, scripts) -> 200" "200" code -F "a=@$tmp/f1" "$base/up"
check_out "GET from another origin is a read: 200" "200" \
  code -H 'Origin: http://evil.example' "$base/a"
check_out "Host of a rebound name -> 403" "403" \
  code -H "Host: evil.example:$port" "$base/a"
check_out "Host localhost -> 200" "200" code -H "Host: localhost:$port" "$base/a"
check_out "Host of an allowed origin -> 200" "200" code -H "Host: ops.example" "$base/a"
check_out "Origin of a rebound name with its own Host -> 403" "403" \
  code -H "Host: evil.example:$port" -H "Origin: http://evil.example:$port" \
  -F "a=@$tmp/f1" "$base/up"
check_grep "refusals logged with the reason" "refused: cross-site request" cat "$tmp/log"
kill -TERM "$pid"; wait "$pid"; pid=

# bearer token on mutating methods, compared in constant time
start "token = 's3cret'" || { fail "server start (token)"; finish; exit 1; }
check_out "GET needs no token" "200" code "$base/a"
check_out "POST without token -> 401" "401" code -F "a=@$tmp/f1" "$base/up"
check_out "POST with wrong token -> 401" "401" code -H 'Authorization: Bearer nope' -F "a=@$tmp/f1" "$base/up"
check_out "DELETE with wrong token -> 401" "401" code -X DELETE -H 'Authorization: Bearer s3cre' "$base/x"
check_out "POST with the token -> 200" "200" code -H 'Authorization: Bearer s3cret' -F "a=@$tmp/f1" "$base/up"
check_out "DELETE with the token -> 200" "200" code -X DELETE -H 'Authorization: Bearer s3cret' "$base/x"
check "token never logged" bash -c "! grep -q s3cret '$tmp/log'"
kill -TERM "$pid"; wait "$pid"; pid=

# a stock lua5.4 host: SIGTERM (default action there) still stops it
# cleanly. (Not with a sanitizer build: lua5.4 cannot load an ASan core.so.)
if [ "${B:-build}" = build ]; then
  : > "$tmp/log"
  LUA_PATH="$tmp/mods/?.lua;${LUA_PATH:-;}" lua5.4 -e "
    local ok = require('tdm.core').http_serve { listen = '127.0.0.1:0',
      handler = 'tiny_handler', threads = 1 }
    print(ok)" > "$tmp/stock.out" 2>"$tmp/log" &
  pid=$!
  for i in $(seq 1 100); do
    base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/log")
    [ -n "$base" ] && break; sleep 0.05
  done
  check_out "stock lua5.4 host serves" "200" code "$base/a"
  kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
  check_out "stock lua5.4 host: SIGTERM stops the server, exit 0" "0 true" echo "$rc $(cat "$tmp/stock.out")"
fi

check_rc "a malformed TDM_API_ALLOWED_ORIGINS is a configuration error" 2 \
  env TDM_API_ALLOWED_ORIGINS=ops.example tdm-lua serve --listen 127.0.0.1:0
check_rc "listening on a bad address fails" 1 tdm-lua -e "
  local ok = require('tdm.core').http_serve { listen = '256.1.1.1:80', quiet = true }
  os.exit(ok and 0 or 1)"
finish
