--- tests/lib/e2e.lua -- the set-up the end-to-end Lua tests share: a
-- unique S3 key prefix, a data root in a scratch directory, the fixture,
-- the config and S3 client for them, running tdm-lua on that world,
-- snapshots of the data root and the prefix's objects, and removing those
-- objects at the end.
--
--   local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
--   local w = e2e.world {
--     tag = "t/audit",       -- prefix = e2e.prefix(tag), unless
--     prefix = nil,          -- given in full
--     fixture = { seed = 11 },  -- fixture.generate options (data_root and
--                               -- prefix filled in); nil: no fixture
--     fast = false,          -- true: scratch dir on /dev/shm (fp.fastdir;
--                            -- the test calls fp.cleanup() at the end)
--     data = "data",         -- the data root's name in the scratch dir
--   }
--   w.tmp, w.D (data root), w.prefix, w.fx (fixture or nil),
--   w.cfg (tdm.config), w.client (tdm.s3 client; both made on first use)
--   w:tdm("audit --json") -> rc, stdout, stderr  (`tdm-lua ARGS
--       --data-root D --prefix P`, the tdm-lua on PATH: tests/run.sh puts
--       the build's first, B=build-asan's under `make check-all`)
--   w:key(name, fn), w:tdir(name), w:lpath(name, fn), w:mpath(name or id)
--   w:snapshot { no_locks = true, dirs = true } -> { ["file ./rel"] = md5,
--       ["dir ./rel"] = true, ["object KEY"] = "etag/size" }
--   w:cleanup()             -- delete every object under the prefix
--   e2e.snapdiff(a, b)      -- "" when two snapshots are equal
--   e2e.json_lines(out[, what]) -- events, summary of a --json run's stdout
--   e2e.files_in(dir)       -- sorted paths of every file under dir
--   e2e.free_port()         -- a free loopback TCP port (a string)
--   e2e.run_id(), e2e.prefix(tag), e2e.ROOT, e2e.fixture, e2e.fp
--   e2e.server              -- "s3rver" or "rgw" (TDM_TEST_S3_SERVER)
--   e2e.needs(server, reason), e2e.needs_s3rver(reason) -- skip the whole
--                           -- program on another server
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local cjson = require "cjson"

local e2e = {}
local ROOT = os.getenv("TDM_TEST_ROOT") or "."
e2e.ROOT = ROOT
e2e.fixture = dofile(ROOT .. "/tests/lib/fixture.lua")
e2e.fp = dofile(ROOT .. "/tests/lib/faultproxy.lua")

local q = t.shq

--- 12 random hex digits: unique per run (the kernel's UUID, not Lua's
-- PRNG, which some tests seed on purpose).
function e2e.run_id()
  local f = assert(io.open("/proc/sys/kernel/random/uuid"))
  local u = f:read("l"):gsub("-", ""):sub(1, 12)
  f:close()
  return u
end

--- The S3 server tests/run.sh started: "s3rver" or "rgw".
e2e.server = os.getenv("TDM_TEST_S3_SERVER") or "s3rver"

--- End the test program here (nothing failed, nothing tested) unless the
-- server is `server`: for tests built on s3rver's specifics (TDM_S3_DIR,
-- accepting any signature...) or RGW's. `reason` says which.
function e2e.needs(server, reason)
  if e2e.server ~= server then
    print("skip: needs " .. server .. ": " .. reason)
    print("0 passed, 0 failed")
    os.exit(0)
  end
end
function e2e.needs_s3rver(reason) e2e.needs("s3rver", reason) end

--- A key prefix of this run's own: "TAG-RUNID".
function e2e.prefix(tag)
  return tag .. "-" .. e2e.run_id()
end

local World = {}

-- cfg and client are made on first use (not every test needs them).
function World.__index(w, k)
  if k == "cfg" then
    local cfg = tdm.config { data_root = w.D, prefix = w.prefix }
    rawset(w, "cfg", cfg)
    return cfg
  elseif k == "client" then
    local client = assert(tdm.s3.client(w.cfg))
    rawset(w, "client", client)
    return client
  end
  return World[k]
end

--- A fresh world (see the options at the top); the scratch directory goes
-- away at t.done() (or fp.cleanup() when `fast`).
function e2e.world(o)
  assert(os.getenv("AWS_ENDPOINT_URL"), "run through tests/run.sh (needs s3rver)")
  local tmp = o.fast and e2e.fp.fastdir() or t.tmpdir()
  local w = setmetatable({ tmp = tmp, D = tmp .. "/" .. (o.data or "data"),
                           prefix = o.prefix or e2e.prefix(o.tag) }, World)
  if o.fixture then
    local opts = { data_root = w.D, prefix = w.prefix }
    for k, v in pairs(o.fixture) do opts[k] = v end
    w.fx = e2e.fixture.generate(opts)
  end
  return w
end

function World:key(name, fn) return self.prefix .. "/" .. name .. "/" .. fn end
function World:tdir(name) return self.D .. "/actors/" .. name .. "/training_data" end
function World:lpath(name, fn) return self:tdir(name) .. "/" .. fn end
function World:mpath(name)
  return self.D .. "/actor_manifests/" .. tostring(name):match("^(%d+)") ..
         "_manifest.json"
end

--- Run `tdm-lua ARGS --data-root D --prefix P` (ARGS a shell fragment);
-- returns exit code, stdout, stderr.
local runs = 0
function World:tdm(args)
  runs = runs + 1
  local errf = string.format("%s/stderr.%d", self.tmp, runs)
  local p = io.popen(string.format("tdm-lua %s --data-root %s --prefix %s 2>%s",
                                   args, q(self.D), q(self.prefix), q(errf)))
  local out = p:read("a")
  local _, _, rc = p:close()
  local err = t.read(errf) or ""
  os.remove(errf)
  return rc, out, err
end

--- Every file under the data root -> md5 (lock files too unless
-- `no_locks`: a dry run opens manifests read-only, a real run writes its
-- pid into them), every directory when `dirs`, and every object under the
-- prefix -> "etag/size".
function World:snapshot(o)
  o = o or {}
  local snap = {}
  local p = io.popen("cd " .. q(self.D) .. " && find . -type f " ..
                     (o.no_locks and "! -name '*.lock' " or "") .. "| sort")
  for rel in p:lines() do
    snap["file " .. rel] = core.md5_file(self.D .. "/" .. rel:sub(3))
  end
  p:close()
  if o.dirs then
    p = io.popen("cd " .. q(self.D) .. " && find . -type d | sort")
    for rel in p:lines() do snap["dir " .. rel] = true end
    p:close()
  end
  for obj, err in self.client:list(self.prefix .. "/") do
    assert(obj, err)
    snap["object " .. obj.key] = tostring(obj.etag) .. "/" .. obj.size
  end
  return snap
end

--- Delete every object under the prefix.
function World:cleanup()
  local keys = {}
  for obj in self.client:list(self.prefix .. "/") do
    if obj then keys[#keys + 1] = obj.key end
  end
  if #keys > 0 then self.client:delete_many(keys) end
end

--- What differs between two snapshots ("" = nothing): faultproxy's.
e2e.snapdiff = e2e.fp.diff

--- Every file under `d` (hidden ones, temp files, too), sorted.
function e2e.files_in(d)
  local out, p = {}, io.popen("find " .. q(d) .. " -type f 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

--- A free TCP port on 127.0.0.1 (as a string), from Debian's python3 (a
-- pyenv shim can take seconds to start).
function e2e.free_port()
  local py = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"
  local p = io.popen(py .. " -c 'import socket; s=socket.socket(); " ..
    "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1]); s.close()'")
  local port = p:read("l")
  p:close()
  return port
end

--- The events and the summary of a --json run; every line must be a JSON
-- object (else a failed check, named after `what` when given).
function e2e.json_lines(out, what)
  local events, summary = {}, nil
  for line in out:gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, line)
    t.ok(ok and type(v) == "table", (what and what .. ": " or "") ..
         "stdout line is a JSON object: " .. line)
    if v.summary then summary = v.summary else events[#events + 1] = v end
  end
  return events, summary
end

return e2e
