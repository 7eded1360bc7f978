-- test_s3_retry.lua -- retry policy and interruption of tdm.s3 against
-- tests/lib/s3_flaky.py, a local server that fails on purpose (503/500/
-- 429 with Retry-After, HTML 502, connection resets, truncated bodies,
-- 403 SignatureDoesNotMatch, stalls). s3rver is not involved.
local t = require "t"
local tdm = require "tdm"
local core = tdm.core

local ROOT = os.getenv("TDM_TEST_ROOT") or "."
local files_in = dofile(ROOT .. "/tests/lib/e2e.lua").files_in
local srv = io.popen("exec python3 '" .. ROOT .. "/tests/lib/s3_flaky.py'")
local port, pid = srv:read("l"):match("^(%d+) (%d+)$")
assert(port, "flaky server did not start")
local ENDPOINT = "http://127.0.0.1:" .. port
local dir = t.tmpdir()
local RUN = string.format("%x", math.random(0, 0x7fffffff))

local c = assert(tdm.s3.client({ endpoint = ENDPOINT, bucket = "flaky" },
                               { backoff_base = 0.02, backoff_cap = 0.2,
                                 max_attempts = 4 }))

local function stats(ep)
  local p = io.popen("curl -sk " .. (ep or ENDPOINT) .. "/__stats")
  local s = p:read("a")
  p:close()
  local out = {}
  for path, n in s:gmatch("(%S+) (%d+)\n") do out[path] = tonumber(n) end
  return out
end

-- key -> (expected attempts) for GETs that must end well
local recover = {
  { "e503-2", 3, "503 SlowDown twice" },
  { "e500-1", 2, "500 InternalError once" },
  { "reset-2", 3, "connection closed without an answer twice" },
  { "trunc-1", 2, "a body cut short once" },
  { "html-1", 2, "a 502 with an HTML body once" },
}

for _, case in ipairs(recover) do
  t.test("GET retried after " .. case[3], function()
    local key = case[1] .. "-" .. RUN
    local path = dir .. "/" .. key
    local r, err, code = c:get(key, path)
    t.ok(r, "get: " .. tostring(err) .. " " .. tostring(code))
    if case[1]:match("^reset") then
      -- curl itself re-sends once when a reused connection dies before
      -- answering, so tdm may count one attempt fewer than the server saw
      t.ok(r.attempts >= case[2] - 1 and r.attempts <= case[2],
           "attempts counted: " .. r.attempts)
    else
      t.eq(r.attempts, case[2], "attempts counted")
    end
    t.eq(t.read(path), "payload of /flaky/" .. key, "final bytes")
    t.eq(stats()["/flaky/" .. key], case[2], "requests the server saw")
  end)
end

t.test("403 SignatureDoesNotMatch is never retried", function()
  local key = "e403-0-" .. RUN
  local r, msg, code = c:get(key, dir .. "/" .. key)
  t.eq(r, nil, "failed")
  t.eq(code, "S3_SignatureDoesNotMatch", "code")
  t.ok(msg:find("secret key", 1, true) and msg:find("region", 1, true),
       "tells the user what to check: " .. msg)
  t.ok(msg:find("FLAKY0001", 1, true), "request id in the message")
  t.eq(stats()["/flaky/" .. key], 1, "exactly one request")
  t.eq(t.read(dir .. "/" .. key), nil, "no file")
end)

t.test("attempts are bounded", function()
  local key = "e503-99-" .. RUN
  local r, msg, code = c:get(key, dir .. "/" .. key)
  t.eq(r, nil, "failed")
  t.eq(code, "S3_SlowDown", "code")
  t.ok(msg:find("gave up after 4 attempts", 1, true), msg)
  t.eq(stats()["/flaky/" .. key], 4, "max_attempts requests")
  local leftovers = 0
  for _, f in ipairs(files_in(dir)) do
    if f:find("e503-99", 1, true) then leftovers = leftovers + 1 end
  end
  t.eq(leftovers, 0, "no file or temp file left")
end)

t.test("PUT retried re-sends the whole body", function()
  local src = dir .. "/put-src"
  t.write(src, string.rep("0123456789", 5000))
  local key = "e503-2-put-" .. RUN
  local r, err = c:put(src, key)
  t.ok(r, "put: " .. tostring(err))
  t.eq(r.attempts, 3, "attempts")
  t.eq(r.etag, tdm.md5(string.rep("0123456789", 5000)),
       "the server got the complete body on the final attempt")
end)

t.test("Retry-After is honoured without blocking other transfers", function()
  local jobs = { { op = "get", key = "e429-1-" .. RUN,
                   path = dir .. "/ra-slow" } }
  for i = 1, 5 do
    jobs[#jobs + 1] = { op = "get", key = "ok-0-" .. i .. "-" .. RUN,
                        path = dir .. "/ra-" .. i }
  end
  local order = {}
  local t0 = core.now()
  local results = c:transfer(jobs, { jobs = 2, on_complete = function(i)
    order[#order + 1] = i
  end })
  local elapsed = core.now() - t0
  for i = 1, 6 do t.ok(results[i].ok, "job " .. i .. " ok") end
  t.eq(results[1].attempts, 2, "429 retried once")
  t.ok(elapsed >= 0.9, "waited at least Retry-After: 1 s, took " .. elapsed)
  t.eq(order[#order], 1, "the throttled job finished last: the other five "
       .. "ran on its slot-mate while it waited")
end)

t.test("SIGINT: stop, return what completed, no partial file", function()
  local out = dir .. "/int"
  local script = dir .. "/int.lua"
  t.write(script, string.format([[
local tdm = require "tdm"
local c = assert(tdm.s3.client({ endpoint = %q, bucket = "flaky" }))
local jobs = {}
for i = 1, 4 do jobs[#jobs + 1] = { op = "get", key = "ok-0-i" .. i,
                                    path = %q .. "/ok" .. i } end
for i = 1, 4 do jobs[#jobs + 1] = { op = "get", key = "slow-0-i" .. i,
                                    path = %q .. "/slow" .. i } end
for i = 1, 4 do jobs[#jobs + 1] = { op = "get", key = "ok-0-late" .. i,
                                    path = %q .. "/late" .. i } end
local r, interrupted = c:transfer(jobs, { jobs = 4 })
local ok, intr, codes = 0, 0, {}
for i, x in ipairs(r) do
  if x.ok then ok = ok + 1 end
  if x.interrupted then intr = intr + 1 end
  codes[#codes + 1] = x.code or "-"
end
print(string.format("interrupted=%%s ok=%%d intr=%%d %%s", interrupted, ok,
                    intr, table.concat(codes, ",")))
]], ENDPOINT, out, out, out))
  local sh = string.format("tdm-lua %q > %q 2>&1 & p=$!; sleep 2; " ..
                           "kill -INT $p; wait $p; echo rc=$?",
                           script, dir .. "/int.out")
  local p = io.popen(sh)
  local rc = p:read("a")
  p:close()
  local got = t.read(dir .. "/int.out") or ""
  t.ok(got:find("interrupted=true ok=4 intr=8", 1, true),
       "4 done, 4 aborted, 4 never started: " .. got)
  t.ok(got:find("EINTR", 1, true), "interrupted jobs say EINTR: " .. got)
  t.ok(rc:find("rc=130", 1, true), "exit code 130: " .. rc)
  local names = {}
  for _, f in ipairs(files_in(out)) do names[#names + 1] = f:match("[^/]+$") end
  t.eq(names, { "ok1", "ok2", "ok3", "ok4" },
       "only the completed files, no temp or partial file")
end)

t.test("a stalled transfer times out, is retried, then fails", function()
  local st = assert(tdm.s3.client({ endpoint = ENDPOINT, bucket = "flaky" },
                                  { stall_timeout = 1, max_attempts = 2,
                                    backoff_base = 0.01 }))
  local key = "slow-0-stall-" .. RUN
  local r, msg, code = st:get(key, dir .. "/stall")
  t.eq(r, nil, "failed")
  t.eq(code, "ETIMEDOUT", "code")
  t.ok(msg:find("gave up after 2 attempts", 1, true), msg)
  t.eq(stats()["/flaky/" .. key], 2, "two attempts reached the server")
  t.eq(t.read(dir .. "/stall"), nil, "no file")
  st:close()
end)

t.test("a failed multipart upload is aborted", function()
  local mp = assert(tdm.s3.client({ endpoint = ENDPOINT, bucket = "flaky" },
                                  { backoff_base = 0.01, backoff_cap = 0.05,
                                    max_attempts = 2,
                                    multipart_threshold = 5 * 1048576,
                                    part_size = 5 * 1048576 }))
  local src = dir .. "/mp-src"
  t.write(src, string.rep("m", 6 * 1048576))
  local key = "mpfail-0-" .. RUN
  local r, msg, code = mp:put(src, key)
  t.eq(r, nil, "failed")
  t.eq(code, "S3_InternalError", "the part's failure is reported")
  t.ok(msg:find("gave up after 2 attempts", 1, true), msg)
  local st = stats()
  t.eq(st["POST:/flaky/" .. key], 1, "initiated once")
  -- both parts start at once; the first to exhaust its 2 attempts stops
  -- the other
  local puts = st["PUT:/flaky/" .. key]
  t.ok(puts >= 2 and puts <= 4, "parts tried at most max_attempts times "
       .. "each: " .. tostring(puts))
  t.eq(st["DELETE:/flaky/" .. key], 1, "the upload was aborted")
  mp:close()
end)

t.test("TLS is verified; AWS_CA_BUNDLE (cfg.ca_bundle) is honoured", function()
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  t.ok(t.sh(string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " ..
    "-nodes " ..
    "-keyout %q -out %q -days 1 -subj /CN=127.0.0.1 " ..
    "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert)),
    "self-signed certificate made")
  local tls = io.popen(string.format("exec python3 '%s/tests/lib/s3_flaky.py'"
                                     .. " --tls %q %q", ROOT, cert, key))
  local tport, tpid = tls:read("l"):match("^(%d+) (%d+)$")
  local ep = "https://127.0.0.1:" .. tport
  -- not trusted: the system store (or whatever AWS_CA_BUNDLE says)
  local untrusted = assert(tdm.s3.client({ endpoint = ep, bucket = "flaky",
                                           ca_bundle = "" },
                                         { backoff_base = 0.01 }))
  local r, msg, code = untrusted:get("ok-0-tls1", dir .. "/tls1")
  t.eq(r, nil, "an untrusted certificate is refused")
  t.eq(code, "ETLS", "code")
  t.ok(msg:find("AWS_CA_BUNDLE", 1, true), "says what to check: " .. msg)
  t.eq(stats(ep)["/flaky/ok-0-tls1"], nil, "no request reached the server")
  local trusted = assert(tdm.s3.client({ endpoint = ep, bucket = "flaky",
                                         ca_bundle = cert }))
  local ok, err = trusted:get("ok-0-tls2", dir .. "/tls2")
  t.ok(ok, "trusted through ca_bundle: " .. tostring(err))
  t.eq(ok and ok.attempts, 1, "one attempt")
  t.eq(stats(ep)["/flaky/ok-0-tls2"], 1, "the TLS server answered it")
  untrusted:close()
  trusted:close()
  os.execute("kill " .. tpid)
  tls:close()
end)

c:close()
os.execute("kill " .. pid)
srv:close()
return t.done()
