#!/usr/bin/env bash
# test_s3_leak.sh -- known fake secrets never reach any output of tdm.s3:
# every operation, succeeding and failing (missing key, missing bucket,
# refused connection, 403 SignatureDoesNotMatch, exhausted 503 retries,
# bad endpoint, interrupted-free batch with callbacks), every result field
# dumped, plus `tdm-lua config`. stdout and stderr are grepped for the
# secret key and the session token. (A presigned URL carries the session
# token by design -- X-Amz-Security-Token -- so that one URL is checked
# for the secret only.)
set -u
. "$(dirname "$0")/../lib/e2e.sh"
needs_s3rver "operations signed with a canary secret must succeed (s3rver checks no signature)"

SECRET="tdmCanarySecret/Do+Not=Leak0123456789abcdefABCDEF"
TOKEN="tdmCanaryToken/Session+Token=0123456789abcdefSECRETTOKEN"
WORK=$tmp
at_exit '[ -n "${FLAKY_PID:-}" ] && kill "$FLAKY_PID" 2>/dev/null'

# the misbehaving server for 403 / 503
exec 3< <(exec python3 tests/lib/s3_flaky.py)
read -r FLAKY_PORT FLAKY_PID <&3

cat > "$WORK/leak.lua" <<'EOF'
local tdm = require "tdm"
local work, flaky = arg[1], arg[2]

local function dump(v, indent)
  indent = indent or ""
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local val = v[k] ~= nil and v[k] or v[tonumber(k)]
    out[#out + 1] = indent .. k .. " = " .. dump(val, indent .. "  ")
  end
  return "{\n" .. table.concat(out, "\n") .. "\n" .. indent .. "}"
end
local function show(what, ...)
  local parts = { what }
  for i = 1, select("#", ...) do parts[#parts + 1] = dump((select(i, ...))) end
  print(table.concat(parts, " | "))
  io.stderr:write(table.concat(parts, " | "), "\n")
end

local cfg = tdm.config()
show("config", tostring(cfg))
local c = assert(tdm.s3.client())
show("client", tostring(c), c._c)
local src = work .. "/src.jpg"
local f = assert(io.open(src, "wb")); f:write("leak test"); f:close()
local P = "tdmtest-leak-" .. math.random(0, 0x7fffffff) .. "/"
show("put", c:put(src, P .. "a.jpg"))
show("head", c:head(P .. "a.jpg"))
show("get", c:get(P .. "a.jpg", work .. "/a.jpg"))
for obj, err, code in c:list(P) do show("list", obj, err, code) end
show("head missing", c:head(P .. "missing.jpg"))
show("get missing", c:get(P .. "missing.jpg", work .. "/m.jpg"))
show("put missing file", c:put(work .. "/nope.jpg", P .. "x.jpg"))
show("transfer", c:transfer({
  { op = "get", key = P .. "a.jpg", path = work .. "/t1.jpg" },
  { op = "get", key = P .. "missing.jpg", path = work .. "/t2.jpg" },
  { op = "put", path = src, key = P .. "b.jpg" } }, {
  on_complete = function(i, r) show("on_complete", i, r) end,
  on_progress = function(...) show("on_progress", ...) end }))
show("delete_many", c:delete_many({ P .. "a.jpg", P .. "b.jpg" }))
show("delete", c:delete(P .. "zzz.jpg"))
local url = c:presign("GET", P .. "a.jpg", 60)
io.stderr:write("presign-secret-check ",
                url:find(os.getenv("AWS_SECRET_ACCESS_KEY"), 1, true)
                and "LEAKED" or "clean", "\n")
show("presign (token parameter removed)",
     (url:gsub("X%-Amz%-Security%-Token=[^&]*", "X-Amz-Security-Token=...")))
local nb = assert(tdm.s3.client({ bucket = "no-such-bucket-leak" }))
show("no bucket", nb:get("k", work .. "/nb.jpg"))
show("no bucket list", nb:list("")())
local dead = assert(tdm.s3.client({ endpoint = "http://127.0.0.1:9" },
                                  { max_attempts = 2, backoff_base = 0.01 }))
show("refused", dead:get("k", work .. "/d.jpg"))
local fl = assert(tdm.s3.client({ endpoint = flaky, bucket = "flaky" },
                                { max_attempts = 2, backoff_base = 0.01 }))
show("403", fl:get("e403-0-x", work .. "/f1.jpg"))
show("503", fl:put(src, "e503-9-x"))
show("bad endpoint", tdm.s3.client({ endpoint = "gopher://x" }))
show("misuse", pcall(c.get, c))
c:close()
show("closed", pcall(c.head, c, "k"))
EOF

OUT="$WORK/out.txt"
AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$TOKEN" \
  ./tdm-lua "$WORK/leak.lua" "$WORK" "http://127.0.0.1:$FLAKY_PORT" \
  >"$OUT" 2>&1
rc=$?
check "leak script ran (rc $rc)" [ "$rc" -eq 0 ]
check_grep "operations really ran (put result dumped)" "^put \| \{" cat "$OUT"
check_grep "failures were exercised (403)" "S3_SignatureDoesNotMatch" cat "$OUT"
check_grep "failures were exercised (refused)" "ECONNREFUSED" cat "$OUT"
check_grep "failures were exercised (503)" "gave up after 2 attempts" cat "$OUT"
check_grep "presigned URL checked" "presign-secret-check clean" cat "$OUT"
if grep -qF -- "$SECRET" "$OUT"; then
  fail "secret key found in output: $(grep -nF -- "$SECRET" "$OUT" | head -3)"
else pass; fi
if grep -qF -- "$TOKEN" "$OUT"; then
  fail "session token found in output: $(grep -nF -- "$TOKEN" "$OUT" | head -3)"
else pass; fi
# the URL-encoded forms too
ENC_SECRET=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$SECRET")
ENC_TOKEN=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$TOKEN")
if grep -qF -- "$ENC_SECRET" "$OUT" || grep -qF -- "$ENC_TOKEN" "$OUT"; then
  fail "URL-encoded secret or token found in output"
else pass; fi

# tdm-lua config (shows the settings and where credentials come from)
AWS_SECRET_ACCESS_KEY="$SECRET" AWS_SESSION_TOKEN="$TOKEN" \
  ./tdm-lua config >"$WORK/config.txt" 2>&1
if grep -qF -- "$SECRET" "$WORK/config.txt" ||
   grep -qF -- "$TOKEN" "$WORK/config.txt"; then
  fail "tdm-lua config shows a secret"
else pass; fi
finish
