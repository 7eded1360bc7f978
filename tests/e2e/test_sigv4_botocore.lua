-- test_sigv4_botocore.lua -- tdm's SigV4 against botocore as an oracle.
--
-- tests/oracle/sigv4_botocore.py (run by Debian's /usr/bin/python3, which
-- has python3-botocore) generates a few hundred seeded random S3 requests
-- and signs them with S3SigV4Auth / S3SigV4QueryAuth at a fixed time; one
-- JSON line each. Here every request is signed by tdm (core.sigv4_debug,
-- core.sigv4_sign, core.sigv4_presign) and the canonical request, string
-- to sign, signature and Authorization header / URL must be equal.
--
--   TDM_SIGV4_CASES=N TDM_SIGV4_SEED=S ./tdm-lua tests/e2e/test_sigv4_botocore.lua
local core = require "tdm.core"
local cjson = require "cjson"

local root = os.getenv("TDM_TEST_ROOT") or "."
local count = tonumber(os.getenv("TDM_SIGV4_CASES") or "") or 400
local seed = tonumber(os.getenv("TDM_SIGV4_SEED") or "") or 20130524
local passed, failed = 0, 0

local function check(ok, fmt, ...)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("not ok " .. string.format(fmt, ...))
  end
end

local function show(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- The query of a URL as a sorted list of "name=value" (botocore puts the
-- operation parameters first, tdm sorts them: same set, same encoding).
local function split_url(url)
  local base, query = url:match("^([^?]*)%?(.*)$")
  local items = {}
  for item in (query or ""):gmatch("[^&]+") do items[#items + 1] = item end
  table.sort(items)
  return base or url, table.concat(items, "&")
end

-- The binding itself: argument forms, caller mistakes raise, failures of
-- the signer return nil, message, code.
do
  local base = { method = "GET", host = "h.example", path = "/a b",
    region = "us-east-1", when = 1369353600,
    payload_hash = "UNSIGNED-PAYLOAD",
    credentials = { access_key = "AK", secret_key = "FAKESECRETKEY" } }
  local function with(t)
    local r = {}
    for k, v in pairs(base) do r[k] = v end
    for k, v in pairs(t) do r[k] = v end
    return r
  end
  check(core.uri_encode("a b/ü+~", true) == "a%20b/%C3%BC%2B~",
        "uri_encode keep_slash: got %s", core.uri_encode("a b/ü+~", true))
  check(core.uri_encode("a/b") == "a%2Fb", "uri_encode without keep_slash")
  local a = core.sigv4_debug(with { query = { { "b", "2" }, { "a", "1" } } })
  local b = core.sigv4_debug(with { query = { a = "1", b = "2" } })
  check(a == b and a:find("\na=1&b=2\n", 1, true),
        "query as pairs and as a map: got %s / %s", show(a), show(b))
  local ok, err = pcall(core.sigv4_sign, with { host = false })
  check(not ok and tostring(err):find("host", 1, true),
        "non-string host raises: got %s", tostring(err))
  ok, err = pcall(core.sigv4_sign, { method = "GET", region = "r" })
  check(not ok and tostring(err):find("'host' is required", 1, true),
        "missing host raises: got %s", tostring(err))
  local r, msg, code = core.sigv4_presign(with { expires = 604801 })
  check(r == nil and code == "EINVAL" and msg:find("604800", 1, true),
        "expiry over 7 days: nil, message, EINVAL; got %s %s %s",
        tostring(r), tostring(msg), tostring(code))
  r, msg, code = core.sigv4_sign(with { headers = { Host = "x" } })
  check(r == nil and code == "EINVAL" and not msg:find("FAKESECRET"),
        "Host given as a header: got %s %s", tostring(msg), tostring(code))
  local now = with {}
  now.when = nil
  local s = core.sigv4_sign(now)
  local t1 = os.time()
  check(s and (s.amz_date == os.date("!%Y%m%dT%H%M%SZ", t1) or
               s.amz_date == os.date("!%Y%m%dT%H%M%SZ", t1 - 1)),
        "default signing time is now: got %s", s and s.amz_date)
end

local cmd = string.format("/usr/bin/python3 %s/tests/oracle/sigv4_botocore.py %d %d",
                          root, count, seed)
local pipe = assert(io.popen(cmd, "r"))
local cases, kinds = 0, { header = 0, presign = 0, token = 0, unsigned = 0 }
for line in pipe:lines() do
  local c = cjson.decode(line)
  local req = c.req
  cases = cases + 1
  local what = string.format("case %d (%s %s)", c.n, req.method, show(req.path))
  if req.presign then kinds.presign = kinds.presign + 1
  else kinds.header = kinds.header + 1 end
  if req.credentials.session_token ~= "" then kinds.token = kinds.token + 1 end
  if req.payload_hash == "UNSIGNED-PAYLOAD" then
    kinds.unsigned = kinds.unsigned + 1
  end

  local canon, sts = core.sigv4_debug(req)
  check(canon == c.canonical, "%s canonical request: expected %s, got %s",
        what, show(c.canonical), show(canon or sts))
  check(sts == c.string_to_sign, "%s string to sign: expected %s, got %s",
        what, show(c.string_to_sign), show(sts or ""))
  if req.presign then
    local url, err = core.sigv4_presign(req)
    local got_base, got_q = split_url(url or "")
    local want_base, want_q = split_url(c.url)
    check(got_base == want_base and got_q == want_q,
          "%s presigned URL: expected %s, got %s", what, show(c.url),
          show(url or err))
    check(url and url:match("&X%-Amz%-Signature=(%x+)$") == c.signature,
          "%s signature: expected %s, got %s", what, c.signature,
          show(url or err))
  else
    local s, err = core.sigv4_sign(req)
    check(s and s.authorization == c.authorization,
          "%s Authorization: expected %s, got %s", what, c.authorization,
          show(s and s.authorization or err))
    check(s and s.authorization:match("Signature=(%x+)$") == c.signature,
          "%s signature: expected %s", what, c.signature)
  end
end
-- What is signed is what is sent: the transport (tdm.s3) talks to
-- tests/oracle/sigv4_verify_server.py, a small in-memory S3 that rebuilds
-- each request exactly as received and checks its signature with botocore
-- (s3rver accepts any signature and rewrites paths, so it cannot). Awkward
-- keys -- dot segments libcurl would squash, '//', spaces, unicode,
-- + = ~ ! * ' ( ) $ & , ; @ -- through put, head, get, list, presigned GET
-- (fetched with curl) and delete_many; with and without a session token.
local WIRE = [==[
local s3 = require "tdm.s3"
local c = assert(s3.client({ bucket = "wire-bucket", region = "eu-central-1",
  endpoint = os.getenv("T_ENDPOINT") }, { max_attempts = 1 }))
local prefix = "wire" .. os.getenv("T_RUN") .. "/"
local keys = { "a/./b.txt", "x/../y.txt", "double//slash.jpg", "trail/",
  "sp ace/\u{e9}\u{1F600}.jpg", "+=~!*'()$&,;@:[]{}.jpg", "p%41ct%.jpg" }
local body = os.tmpname()
local f = assert(io.open(body, "wb")); f:write("signed is sent\n"); f:close()
local n = 0
local function say(ok, what) print((ok and "ok " or "not ok ") .. what) end
for _, k in ipairs(keys) do
  local key = prefix .. k
  local r, err = c:put(body, key); say(r, "put " .. key .. " " .. tostring(err))
  r, err = c:head(key); say(r, "head " .. key .. " " .. tostring(err))
  r, err = c:get(key, body .. ".got"); say(r, "get " .. key .. " " .. tostring(err))
  local url = c:presign("GET", key, 60)
  local p = io.popen("curl -s --path-as-is -o /dev/null -w '%{http_code}' '" .. url .. "'")
  local code = p:read("a"); p:close()
  say(code == "200", "presigned GET " .. key .. ": HTTP " .. code)
  n = n + 4
end
local listed = 0
for obj, err in c:list(prefix) do
  say(obj, "list " .. tostring(err)); if obj then listed = listed + 1 end
end
say(listed == #keys, "listed " .. listed .. " of " .. #keys .. " keys")
local want = {}
for i, k in ipairs(keys) do want[i] = prefix .. k end
local d, err = c:delete_many(want)
say(d and #d.deleted == #keys, "delete_many " .. tostring(err))
os.remove(body); os.remove(body .. ".got")
print("requests " .. (n + 2))
]==]

do
  local secret = os.getenv("AWS_SECRET_ACCESS_KEY") or "S3RVER"
  local srv = io.popen("/usr/bin/python3 " .. root ..
                       "/tests/oracle/sigv4_verify_server.py '" .. secret .. "'")
  local port = srv:read("l")
  check(port and port:match("^%d+$"), "verify server port: got %s", tostring(port))
  local endpoint = "http://127.0.0.1:" .. tostring(port)
  local tdm_lua = root .. "/tdm-lua"
  local script = os.tmpname()
  local sf = assert(io.open(script, "wb"))
  sf:write(WIRE)
  sf:close()
  local runs = {
    { "no token", "" },
    { "session token", "AWS_SESSION_TOKEN='FQoGZXIvYXdzE/token+with=chars' " },
  }
  for i, run in ipairs(runs) do
    local cmd = string.format("env %sT_ENDPOINT=%s T_RUN=%d AWS_ACCESS_KEY_ID=%s "
      .. "AWS_SECRET_ACCESS_KEY='%s' %s %s 2>&1", run[2], endpoint, i,
      os.getenv("AWS_ACCESS_KEY_ID") or "S3RVER", secret, tdm_lua, script)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    for line in out:gmatch("[^\n]+") do
      if line:match("^ok ") then check(true)
      elseif line:match("^not ok ") then check(false, "wire (%s): %s", run[1], line:sub(8))
      elseif not line:match("^requests ") then check(false, "wire (%s): %s", run[1], line) end
    end
    check(out:match("requests (%d+)"), "wire (%s) client finished: %s", run[1], out:sub(1, 300))
  end
  os.remove(script)
  local p = io.popen("curl -s " .. endpoint .. "/__report")
  local report = cjson.decode(p:read("a") or "{}")
  p:close()
  os.execute("curl -s -o /dev/null " .. endpoint .. "/__shutdown")
  srv:close()
  for _, f in ipairs(report.failed or {}) do
    check(false, "verify server: %s %s: %s", f.method, f.path, f.why)
  end
  check((report.verified or 0) >= 60, "verify server checked %s signatures, expected >= 60",
        tostring(report.verified))
  local dots = 0
  for _, path in ipairs(report.paths or {}) do
    if path:find("/a/./b.txt", 1, true) or path:find("/x/../y.txt", 1, true) then
      dots = dots + 1
    end
  end
  check(dots >= 8, "dot segments reached the server unsquashed (%d requests)", dots)
  print(string.format("# wire: %d requests verified by botocore, %d failed",
                      math.tointeger(report.verified or 0) or 0,
                      #(report.failed or {})))
end

local ok, how, code = pipe:close()
check(ok, "oracle %s exited %s %s (needs Debian's python3-botocore)", cmd,
      tostring(how), tostring(code))
check(cases == count, "oracle produced %d cases, expected %d", cases, count)
-- The generator's odds: ~25% presigned, ~35% with a token, ~11% unsigned.
check(kinds.presign >= count // 10 and kinds.header >= count // 2 and
      kinds.token >= count // 5 and kinds.unsigned >= count // 25,
      "case mix too thin: %d header, %d presign, %d with token, %d unsigned",
      kinds.header, kinds.presign, kinds.token, kinds.unsigned)
print(string.format("# %d requests (%d header-signed, %d presigned, %d with "
                    .. "a session token, %d UNSIGNED-PAYLOAD), seed %d",
                    cases, kinds.header, kinds.presign, kinds.token,
                    kinds.unsigned, seed))
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
