--- test_catalogue.lua -- a catalogue of bad input, table-driven: the cases
-- are tests/catalogue/cases.lua, their data the files beside it.
--
-- Every case runs one tdm-lua command (or a Lua snippet) against a fresh
-- copy of a small data root (actor 0042_cat with one local image; actor
-- 1001_bulk_1 with two images in S3 and a good manifest), optionally
-- through the fault proxy, and checks:
--   * the exit code;
--   * the error: one line on stderr containing every `expect` substring
--     (the file or object named, and the reason);
--   * that no file changed: the `unchanged` paths (or the whole data root)
--     have the same bytes afterwards, and no file appeared outside the
--     data root's actors/ and actor_manifests/ trees.
-- TDM_CATALOGUE_SHOW=1 prints every case's exit code and stderr.
local t = require "t"
local core = require "tdm.core"
local cjson = require "cjson"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local fp = e2e.fp
local CAT = e2e.ROOT .. "/tests/catalogue"
local cases = dofile(CAT .. "/cases.lua")
local SHOW = os.getenv("TDM_CATALOGUE_SHOW") == "1"

-- The template data root, made once; every case gets a copy at the same
-- absolute path (manifests record the data root as configured).
local w = e2e.world { tag = "t/catalogue", fast = true, fixture = { scenarios = false,
  bulk = 1, bulk_files = 2, bulk_size = 8 * 1024, seed = 42 } }
local work, D, P, fx = w.tmp, w.D, w.prefix, w.fx
local CAT_DIR = D .. "/actors/0042_cat/training_data"
assert(core.mkdirs(CAT_DIR))
t.write(CAT_DIR .. "/0042_cat_0.jpg", "hello")
local TEMPLATE = work .. "/template"
assert(os.execute("mv " .. fp.q(D) .. " " .. fp.q(TEMPLATE)))

local function fresh()
  assert(os.execute("rm -rf " .. fp.q(D) .. " && cp -a " .. fp.q(TEMPLATE) ..
                    " " .. fp.q(D)))
end

local function subst(s, extra)
  s = s:gsub("{D}", D):gsub("{P}", P):gsub("{CAT}", CAT)
  for k, v in pairs(extra or {}) do s = s:gsub("{" .. k .. "}", v) end
  return s
end

local function copy_file(from, to)
  local data = assert(fp.read(from), "catalogue data missing: " .. from)
  local dir = to:match("^(.*)/[^/]*$")
  assert(core.mkdirs(dir))
  t.write(to, data)
end

-- Every file of the work area outside D: must stay as it was.
local function outside_snapshot()
  local snap = fp.snapshot(work)
  local out = {}
  for k, v in pairs(snap) do
    if k:sub(1, 5) ~= "data/" and k:sub(1, 9) ~= "template/" then out[k] = v end
  end
  return out
end

local counts = { cases = 0 }

local skipped = {}

local function run_case(c)
  fresh()
  local ctx = { D = D, P = P, CAT = CAT, fx = fx, work = work }
  if c.manifest then
    copy_file(CAT .. "/manifests/" .. c.manifest .. ".json",
              D .. "/actor_manifests/0042_manifest.json")
  end
  if c.legacy then
    copy_file(CAT .. "/legacy/" .. c.legacy .. ".json",
              CAT_DIR .. "/response.json")
  end
  local proxy
  if c.proxy or c.keys then
    local o = {}
    for k, v in pairs(c.proxy or {}) do o[k] = v end
    if c.keys then
      local keys = cjson.decode(fp.read(CAT .. "/keys/" .. c.keys .. ".json"))
      for _, k in ipairs(keys) do k.key = k.key:gsub("^PREFIX", P) end
      local kf = work .. "/keys.json"
      t.write(kf, cjson.encode(keys))
      o.inject_keys = kf
    end
    proxy = fp.start(o)
  end
  if c.setup then
    local skip = c.setup(ctx)
    if skip then
      if proxy then proxy:stop() end
      skipped[#skipped + 1] = c.name .. ": " .. skip
      print("# SKIP " .. c.name .. ": " .. skip)
      return
    end
  end
  local script = work .. "/case.lua"
  if c.lua then
    t.write(script, subst(c.lua, { URL = proxy and proxy.url or "" }))
  end
  local unchanged = {}
  local paths = c.unchanged or "all"
  local before_all = fp.snapshot(D)
  if paths == "all" then unchanged = before_all
  else
    for _, p in ipairs(paths) do unchanged[subst(p)] = before_all[subst(p)] or false end
  end
  local outside = outside_snapshot()

  local env = {}
  for k, v in pairs(c.env or {}) do env[k] = v end
  if proxy then env.AWS_ENDPOINT_URL = proxy.url end
  local rc, out, err
  if c.lua then
    rc, out, err = fp.tdm({ script }, env)
  else
    local args = {}
    for i, a in ipairs(c.args) do args[i] = subst(a) end
    rc, out, err = fp.tdm(args, env, c.timeout)
  end
  local stats = proxy and proxy:stop()
  if SHOW then
    print(string.format("## %s: exit %s\n%s%s", c.name, tostring(rc),
          err, c.show_stdout and out or ""))
  end
  counts.cases = counts.cases + 1

  if type(c.exit) == "table" then
    local ok = false
    for _, e in ipairs(c.exit) do ok = ok or rc == e end
    t.ok(ok, c.name .. ": exit code " .. tostring(rc) .. " is one of " ..
         table.concat(c.exit, ", ") .. " (stderr: " .. err:sub(1, 300) .. ")")
  else
    t.eq(rc, c.exit, c.name .. ": exit code (stderr: " .. err:sub(1, 300) .. ")")
  end
  -- The error line: the first line that has the first expected piece.
  local text = c.stdout and (out .. err) or err
  local line
  for l in text:gmatch("[^\n]+") do
    if l:find(subst(c.expect[1]), 1, true) then line = l; break end
  end
  t.ok(line, c.name .. ": a line containing '" .. subst(c.expect[1]) ..
       "' in: " .. text:sub(1, 600))
  for i = 2, #c.expect do
    t.ok(line:find(subst(c.expect[i]), 1, true), c.name .. ": '" ..
         subst(c.expect[i]) .. "' on the error line: " .. line)
  end
  if c.check then c.check(ctx, rc, out, err, stats) end
  local after = fp.snapshot(D)
  for p, md5 in pairs(unchanged) do
    t.ok((after[p] or false) == md5, c.name .. ": " .. p .. " unchanged")
  end
  if paths == "all" then
    t.eq(fp.diff(before_all, after), "", c.name .. ": files changed")
  end
  t.eq(fp.diff(outside, outside_snapshot()), "",
       c.name .. ": files outside the data root")
end

for _, c in ipairs(cases) do
  t.test(c.name, function()
    local ok, err = pcall(run_case, c)
    if c.teardown then c.teardown({ D = D, P = P, work = work }) end
    if not ok then error(err, 0) end
  end)
end
print(string.format("# catalogue: %d cases in the table, %d run, %d skipped%s",
  #cases, counts.cases, #skipped,
  #skipped > 0 and (" (" .. table.concat(skipped, "; ") .. ")") or ""))
fp.cleanup()
os.exit(t.done())
