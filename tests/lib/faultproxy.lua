--- tests/lib/faultproxy.lua -- what the reliability tests (fault, crash,
-- concurrency, catalogue) share: the fault proxy, running tdm-lua as a
-- child process, snapshots of a tree, and an independent view of the
-- bucket (python3 + botocore, not tdm.s3).
--
--   local fp = dofile(ROOT .. "/tests/lib/faultproxy.lua")
--   local p = fp.start { seed = 1, p503 = 0.1, reset = 0.03 }
--   local rc, out, err = fp.tdm({ "pull-all", "--data-root", D },
--                               { AWS_ENDPOINT_URL = p.url })
--   p:stats().p503; p:config { p503 = 0 }; p:stop()
--   local a = fp.start_aws { modes = "sse-kms,checksums" }  -- AWS's answers
--   fp.snapshot(dir) -> { [relpath] = md5 }   (every file, hidden too)
--   fp.bucket(prefix) -> { [key] = md5 }      (straight from the server)
local fp = {}

local ROOT = os.getenv("TDM_TEST_ROOT") or "."
fp.ROOT = ROOT

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
fp.q = q

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
fp.read = read

local function sleep(s) os.execute("sleep " .. s) end
fp.sleep = sleep

-- A private scratch directory for this module's files.
local scratch
local function tmp()
  if not scratch then
    local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/tdm-fp.XXXXXX\"")
    scratch = p:read("l")
    p:close()
  end
  return scratch
end
local seq = 0
local function tmpname(tag)
  seq = seq + 1
  return string.format("%s/%s.%d", tmp(), tag, seq)
end
fp.tmpname = tmpname

-- Directories made by fp.fastdir, removed by fp.cleanup.
local fastdirs = {}

--- A fresh directory on a RAM file system when there is one (/dev/shm):
-- tdm fsyncs every manifest and file it writes, and on a busy disk that
-- dominates the run time of tests that run tdm hundreds of times.
function fp.fastdir()
  local base = os.getenv("TDM_FAST_TMPDIR") or "/dev/shm"
  local p = io.popen("d=$(mktemp -d " .. q(base .. "/tdm-test.XXXXXX") ..
    " 2>/dev/null) || d=$(mktemp -d \"${TMPDIR:-/tmp}/tdm-test.XXXXXX\"); echo \"$d\"")
  local dir = p:read("l")
  p:close()
  fastdirs[#fastdirs + 1] = dir
  return dir
end

--- Remove the scratch directory and fast directories (call at the end of
-- a test).
function fp.cleanup()
  if scratch then os.execute("rm -rf " .. q(scratch)) end
  scratch = nil
  for _, d in ipairs(fastdirs) do os.execute("rm -rf " .. q(d)) end
  fastdirs = {}
end

local function env_prefix(env)
  local parts = {}
  for k, v in pairs(env or {}) do
    if v == false then parts[#parts + 1] = "-u " .. k
    else parts[#parts + 1] = k .. "=" .. q(v) end
  end
  table.sort(parts)
  return #parts > 0 and ("env " .. table.concat(parts, " ") .. " ") or ""
end

--- Run `tdm-lua ARGS...` (the one on PATH: tests/run.sh puts the build's
-- first) with extra environment `env` (value false unsets); returns exit
-- code, stdout, stderr. With `timeout` (seconds) the run is killed after
-- that long (exit 124, as timeout(1) says).
function fp.tdm(args, env, timeout)
  local qa = {}
  for i, a in ipairs(args) do qa[i] = q(a) end
  local errf = tmpname("stderr")
  local cmd = env_prefix(env) ..
              (timeout and ("timeout -k 2 " .. timeout .. " ") or "") ..
              "tdm-lua " .. table.concat(qa, " ") .. " 2>" .. q(errf)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local _, _, code = p:close()
  local err = read(errf) or ""
  os.remove(errf)
  return code, out, err
end

--- Start `tdm-lua ARGS...` in the background (stdout/stderr to files);
-- returns { pid =, out =, err = } . fp.wait(job) -> exit code.
function fp.spawn(args, env)
  local qa = {}
  for i, a in ipairs(args) do qa[i] = q(a) end
  local job = { out = tmpname("out"), err = tmpname("err"),
                rc = tmpname("rc"), pidf = tmpname("pid") }
  -- exec keeps the pid the child's, so SIGKILL hits tdm-lua itself; the
  -- exit code is collected by the subshell around it.
  local cmd = string.format(
    "( %ssh -c 'echo $$ >%s; exec \"$0\" \"$@\"' tdm-lua %s >%s 2>%s; " ..
    "echo $? >%s ) >/dev/null 2>&1 &",
    env_prefix(env), q(job.pidf), table.concat(qa, " "), q(job.out),
    q(job.err), q(job.rc))
  os.execute(cmd)
  for _ = 1, 400 do
    local pid = read(job.pidf)
    if pid and pid:match("^%d+%s") then
      job.pid = tonumber(pid:match("%d+"))
      return job
    end
    sleep(0.01)
  end
  error("could not start tdm-lua " .. table.concat(qa, " "))
end

--- Whether process `pid` still runs.
function fp.alive(pid)
  local st = read("/proc/" .. pid .. "/stat")
  if not st then return false end
  return not st:match("^%d+ %b() Z")
end

--- Wait for a spawned job (at most `timeout` seconds, default 120);
-- returns its exit code (or nil, "timeout").
function fp.wait(job, timeout)
  local deadline = os.time() + (timeout or 120)
  local spins = 0
  while true do
    local rc = read(job.rc)
    if rc and rc:match("%d+%s") then
      job.stdout, job.stderr = read(job.out) or "", read(job.err) or ""
      return tonumber(rc:match("%d+"))
    end
    if os.time() > deadline then return nil, "timeout" end
    -- spin briefly (the exit code lands within ms of a kill), then sleep
    spins = spins + 1
    if spins > 2000 then sleep(0.05) end
  end
end

--- SIGKILL a spawned job and wait for it to be gone.
function fp.kill(job)
  os.execute("kill -9 " .. job.pid .. " 2>/dev/null")
  return fp.wait(job, 30)
end

--- { [relpath] = md5 } of every regular file under `dir` (hidden files
-- and temp files too), in-process (no child process: the crash tests
-- poll this while a command runs). A file that vanishes while it is read
-- is left out.
function fp.snapshot(dir)
  local core = require "tdm.core"
  local md5_file = require("tdm").md5_file
  local snap = {}
  local function walk(d, rel)
    for _, name in ipairs(core.listdir(d) or {}) do
      local path = d .. "/" .. name
      local st = core.stat(path)
      if st and st.type == "dir" then
        walk(path, rel .. name .. "/")
      elseif st and st.type == "file" then
        local md5 = md5_file(path)
        if md5 then snap[rel .. name] = md5 end
      end
    end
  end
  walk(dir, "")
  return snap
end

--- How many tdm temp files (hidden ".NAME.tmp.PID.N" beside their target)
-- are under `dir`: an interrupted or killed command must leave none.
function fp.temp_count(dir)
  local n = 0
  for path in pairs(fp.snapshot(dir)) do
    if path:match("/%.[^/]*%.tmp%.[^/]*$") then n = n + 1 end
  end
  return n
end

--- Describe the difference of two snapshots ("" when equal).
function fp.diff(a, b)
  local d = {}
  for k, v in pairs(a) do
    if b[k] == nil then d[#d + 1] = "removed " .. k
    elseif b[k] ~= v then d[#d + 1] = "changed " .. k end
  end
  for k in pairs(b) do if a[k] == nil then d[#d + 1] = "added " .. k end end
  table.sort(d)
  return table.concat(d, ", ")
end

--- { [key] = md5 of the content } of every object under `prefix` in the
-- bucket, read straight from the S3 server with botocore (an oracle
-- independent of tdm.s3). `endpoint` defaults to $AWS_ENDPOINT_URL.
function fp.bucket(prefix, endpoint, bucket)
  local py = [[
import hashlib, os, sys
import botocore.session
s = botocore.session.get_session()
c = s.create_client('s3', endpoint_url=sys.argv[1], region_name='us-west-1',
    aws_access_key_id=os.environ.get('AWS_ACCESS_KEY_ID', 'S3RVER'),
    aws_secret_access_key=os.environ.get('AWS_SECRET_ACCESS_KEY', 'S3RVER'))
kw = {'Bucket': sys.argv[2], 'Prefix': sys.argv[3]}
while True:
    r = c.list_objects_v2(**kw)
    for o in r.get('Contents', []):
        body = c.get_object(Bucket=sys.argv[2], Key=o['Key'])['Body'].read()
        print(hashlib.md5(body).hexdigest(), o['Key'])
    if not r.get('IsTruncated'):
        break
    kw['ContinuationToken'] = r['NextContinuationToken']
]]
  local f = tmpname("bucket.py")
  local h = io.open(f, "w"); h:write(py); h:close()
  local p = io.popen("python3 " .. q(f) .. " " ..
    q(endpoint or os.getenv("AWS_ENDPOINT_URL")) .. " " ..
    q(bucket or "story-boards-assets") .. " " .. q(prefix))
  local objs = {}
  for line in p:lines() do
    local md5, key = line:match("^(%x+) (.*)$")
    if md5 then objs[key] = md5 end
  end
  p:close()
  return objs
end

--- { [key] = md5 } of the objects under `prefix`, read from s3rver's
-- storage directory ($TDM_S3_DIR, set by tests/run.sh) -- fast, and
-- independent of any S3 client. Keys with characters s3rver encodes are
-- not supported (tests use plain names). Against another server (RGW: no
-- TDM_S3_DIR) fp.bucket's answer.
function fp.store(prefix, bucket)
  if not os.getenv("TDM_S3_DIR") then return fp.bucket(prefix, nil, bucket) end
  local dir = (os.getenv("TDM_S3_DIR") or "") .. "/" ..
              (bucket or "story-boards-assets")
  local objs = {}
  local top = prefix:match("^(.*)/[^/]*$")
  local sub = top and ("/" .. top) or ""
  for path, md5 in pairs(fp.snapshot(dir .. sub)) do
    local key = path:match("^(.*)%._S3rver_object$")
    if key then
      key = (top and (top .. "/") or "") .. key
      if key:sub(1, #prefix) == prefix then objs[key] = md5 end
    end
  end
  return objs
end

-- ---- the proxy -----------------------------------------------------------

local Proxy = {}
Proxy.__index = Proxy

-- Start tests/lib/SCRIPT in front of $AWS_ENDPOINT_URL (or o.upstream);
-- the other fields of `o` are its options (underscores or dashes).
local function start_proxy(script, o)
  o = o or {}
  local dir = tmpname("proxy")
  os.execute("mkdir -p " .. q(dir))
  local args = {}
  for k, v in pairs(o) do
    if k ~= "upstream" then
      args[#args + 1] = "--" .. k:gsub("_", "-") .. " " .. q(v)
    end
  end
  table.sort(args)
  local cmd = string.format(
    "node %s --upstream %s --port-file %s --stats-file %s --log %s %s " ..
    ">%s 2>&1 & echo $!",
    q(ROOT .. "/tests/lib/" .. script),
    q(o.upstream or os.getenv("AWS_ENDPOINT_URL")), q(dir .. "/port"),
    q(dir .. "/stats"), q(dir .. "/log"), table.concat(args, " "),
    q(dir .. "/out"))
  local p = io.popen(cmd)
  local pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 200 do
    local port = read(dir .. "/port")
    if port and port:match("%d+") then
      return setmetatable({ pid = pid, dir = dir,
        url = "http://127.0.0.1:" .. port:match("%d+") }, Proxy)
    end
    sleep(0.05)
  end
  error(script .. " did not start: " .. (read(dir .. "/out") or "?"))
end

--- Start tests/lib/faultproxy.js in front of $AWS_ENDPOINT_URL (or
-- o.upstream). Options as faultproxy.js's (underscores or dashes).
function fp.start(o) return start_proxy("faultproxy.js", o) end

--- Start tests/lib/awsproxy.js (AWS's answers: o.modes =
-- "sse-kms,region=eu-central-1,checksums,conditional", o.redirect = 1,
-- ...; see the top of that file) in front of $AWS_ENDPOINT_URL (or
-- o.upstream). Same object as fp.start's: .url, :stats(), :config{}, :stop().
function fp.start_aws(o) return start_proxy("awsproxy.js", o) end

--- The body `curl -s ARGS` answers (ARGS a shell fragment), in at most
-- `max_time` seconds (default 10).
local function curl(args, max_time)
  local p = io.popen("curl -s --max-time " .. (max_time or 10) .. " " .. args)
  local s = p:read("a")
  p:close()
  return s
end
fp.curl = curl

--- The proxy's counters (a table).
function Proxy:stats()
  local cjson = require "cjson"
  return cjson.decode(curl(q(self.url .. "/__stats")))
end

--- Change settings at run time (a table, e.g. { p503 = 0, mode = "pass" }).
function Proxy:config(t)
  local cjson = require "cjson"
  curl("-X POST --data-binary " .. q(cjson.encode(t)) .. " " ..
       q(self.url .. "/__config"))
end

--- Zero the counters.
function Proxy:reset_stats() curl("-X POST " .. q(self.url .. "/__reset")) end

--- Stop the proxy; returns its final counters.
function Proxy:stop()
  local st = self:stats()
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  return st
end

return fp
