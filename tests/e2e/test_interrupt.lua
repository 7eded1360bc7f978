-- test_interrupt.lua -- push-all, push, pull-all, pull, sync-manifests and
-- migrate
-- interrupted with SIGINT at random (seeded) moments. The README promises
-- that in-flight work is finished and recorded (or aborted cleanly), so
-- after each trial:
--   * the exit code is 130 (or 0 when the run finished first);
--   * every manifest parses, no temp file is left;
--   * an audit of the data root against the bucket finds no entry that
--     lies: no stale_manifest ("local_only in the manifest, really
--     synced"), no untracked_s3 (an upload that landed unrecorded), no
--     orphan, no hash_mismatch, no bad_manifest.
-- Every request goes through the fault proxy with a delay, so uploads
-- whose body has been sent are waiting for their answer when the signal
-- comes (the window in which aborting one leaves its object unrecorded).
-- TDM_INT_TRIALS (default 4) trials per command, TDM_INT_SEED the moments.
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local fp = e2e.fp

local TRIALS = tonumber(os.getenv("TDM_INT_TRIALS") or "") or 4
local SEED = tonumber(os.getenv("TDM_INT_SEED") or "") or 15
math.randomseed(SEED)

-- Findings that mean a manifest says something untrue about disk or bucket.
local LIES = { stale_manifest = true, untracked_s3 = true, orphan = true,
               hash_mismatch = true, bad_manifest = true }

local proxy = fp.start { seed = SEED, latency_ms = 40, latency_p = 1 }
local ENV = { AWS_ENDPOINT_URL = proxy.url }

local function copy_tree(from, to)
  assert(os.execute("rm -rf " .. fp.q(to) .. " && cp -a " .. fp.q(from) .. " " .. fp.q(to)))
end

local function run(args) return fp.tdm(args, ENV) end

local function common(cmd, D, prefix, extra)
  local a = { cmd }
  for _, x in ipairs(extra or {}) do a[#a + 1] = x end
  for _, x in ipairs({ "--data-root", D, "--prefix", prefix, "--jobs", "4", "--quiet" }) do
    a[#a + 1] = x
  end
  return a
end

-- The lies an audit finds, as "kind actor/file: detail" lines (with
-- `saved_only`, only in actors that have a manifest: one never written
-- is not a manifest that lies).
local function lies(D, prefix, saved_only)
  local _, out, err = run({ "audit", "--json", "--data-root", D, "--prefix", prefix })
  local events, summary = e2e.json_lines(out, "audit")
  local found = {}
  for _, ev in ipairs(events) do
    local id = ev.actor and tostring(ev.actor):match("^(%d+)")
    local has = id and core.stat(D .. "/actor_manifests/" .. id .. "_manifest.json")
    if ev.kind and LIES[ev.kind] and (has or not saved_only) then
      found[#found + 1] = string.format("%s %s/%s: %s", ev.kind, tostring(ev.actor),
                                        tostring(ev.file), tostring(ev.result))
    end
  end
  if not summary then found[#found + 1] = "audit printed no summary: " .. err:sub(1, 200) end
  return found
end

local function bad_manifests(D)
  local bad = {}
  for _, f in ipairs(core.listdir(D .. "/actor_manifests") or {}) do
    if f:match("_manifest%.json$") then
      local ok, doc = pcall(cjson.decode, fp.read(D .. "/actor_manifests/" .. f) or "")
      if not ok or type(doc) ~= "table" or type(doc.training_data) ~= "table" then
        bad[#bad + 1] = f
      end
    end
  end
  return bad
end

--- spec = { name, prepare(i) -> D, prefix (a fresh world for trial i),
--   args(D, prefix) -> argv, saved_only (judge only actors with a
--   manifest), check(D) -> extra problems (optional) }
local function trials(spec)
  local D, prefix = spec.prepare(0)
  local t0 = core.now()
  local rc, _, err = run(spec.args(D, prefix))
  local t_ref = core.now() - t0
  t.eq(rc, 0, spec.name .. ": uninterrupted run (" .. err:sub(1, 300) .. ")")
  local interrupted, problems = 0, {}
  for i = 1, TRIALS do
    D, prefix = spec.prepare(i)
    local job = fp.spawn(spec.args(D, prefix), ENV)
    local delay = math.random() * t_ref * 0.8
    os.execute(string.format("sleep %.3f", delay))
    os.execute("kill -INT " .. job.pid .. " 2>/dev/null")
    local krc = fp.wait(job, 120)
    local where = string.format("%s trial %d (SIGINT at %.2fs of %.2fs)", spec.name, i,
                                delay, t_ref)
    if krc == 130 then interrupted = interrupted + 1
    elseif krc ~= 0 then
      problems[#problems + 1] = where .. ": exit " .. tostring(krc) .. ": "
                                .. (job.stderr or ""):sub(1, 300)
    end
    for _, f in ipairs(bad_manifests(D)) do
      problems[#problems + 1] = where .. ": manifest does not parse: " .. f
    end
    local n = fp.temp_count(D)
    if n > 0 then problems[#problems + 1] = where .. ": " .. n .. " temp files left" end
    for _, l in ipairs(lies(D, prefix, spec.saved_only)) do problems[#problems + 1] = where .. ": " .. l end
    for _, l in ipairs(spec.check and spec.check(D) or {}) do
      problems[#problems + 1] = where .. ": " .. l
    end
  end
  print(string.format("# %s: %d trials, %d interrupted mid-run, uninterrupted run %.2fs",
                      spec.name, TRIALS, interrupted, t_ref))
  t.eq(table.concat(problems, "\n  "), "", spec.name .. ": problems after SIGINT")
  t.ok(interrupted >= 1, spec.name .. ": at least one trial interrupted mid-run")
end

-- Local files, no objects: each trial gets a fresh copy and its own key
-- prefix, and true manifests (all local_only) from a sync-manifests.
local up = e2e.world { tag = "t/int-push", fast = true, data = "tpl", fixture = {
  scenarios = false, bulk = 6, bulk_files = 6, bulk_size = 48 * 1024, seed = SEED,
  upload = false } }
os.execute("rm -rf " .. fp.q(up.D .. "/actor_manifests"))
local function push_world(i)
  local D = up.tmp .. "/push" .. i
  local prefix = up.prefix .. "/" .. i
  copy_tree(up.D, D)
  local rc, _, err = run(common("sync-manifests", D, prefix))
  assert(rc == 0, "sync-manifests before push: " .. err)
  return D, prefix
end

t.test("push-all interrupted: every landed upload is recorded", function()
  trials { name = "push-all", prepare = push_world,
           args = function(D, prefix) return common("push-all", D, prefix) end }
end)

t.test("push interrupted: every landed upload is recorded", function()
  local name = next(up.fx.actors)
  trials { name = "push", prepare = push_world,
           args = function(D, prefix) return common("push", D, prefix, { name }) end }
end)

-- Objects, true manifests (all s3_only), no local files.
local down = e2e.world { tag = "t/int-pull", fast = true, data = "tpl", fixture = {
  scenarios = false, bulk = 6, bulk_files = 6, bulk_size = 48 * 1024, seed = SEED + 1 } }
os.execute("rm -rf " .. fp.q(down.D .. "/actors"))
do
  local rc, _, err = run(common("sync-manifests", down.D, down.prefix))
  assert(rc == 0, "sync-manifests before pull: " .. err)
end
local function pull_world(i)
  local D = down.tmp .. "/pull" .. i
  copy_tree(down.D, D)
  return D, down.prefix
end

t.test("pull-all interrupted: every landed download is recorded", function()
  trials { name = "pull-all", prepare = pull_world,
           args = function(D, prefix) return common("pull-all", D, prefix) end }
end)

t.test("pull interrupted: every landed download is recorded", function()
  local name = next(down.fx.actors)
  trials { name = "pull", prepare = pull_world,
           args = function(D, prefix) return common("pull", D, prefix, { name }) end }
end)

t.test("sync-manifests interrupted: what it saved is true", function()
  -- local files and objects both, no manifests yet
  local both = e2e.world { tag = "t/int-sync", fast = true, data = "tpl", fixture = {
    scenarios = false, bulk = 8, bulk_files = 4, bulk_size = 48 * 1024, seed = SEED + 2 } }
  os.execute("rm -rf " .. fp.q(both.D .. "/actor_manifests"))
  trials { name = "sync-manifests", saved_only = true,
    prepare = function(i)
      local D = both.tmp .. "/sync" .. i
      copy_tree(both.D, D)
      return D, both.prefix
    end,
    args = function(D, prefix) return common("sync-manifests", D, prefix) end }
end)

t.test("migrate interrupted: what it saved is true, no legacy file lost early", function()
  local leg = e2e.world { tag = "t/int-migrate", fast = true, data = "tpl", fixture = {
    scenarios = false, bulk = 8, bulk_files = 4, bulk_size = 32 * 1024, seed = SEED + 3 } }
  os.execute("rm -rf " .. fp.q(leg.D .. "/actor_manifests"))
  for name, a in pairs(leg.fx.actors) do
    local urls = {}
    for fn in pairs(a.files) do
      urls[#urls + 1] = "https://story-boards-assets.s3.us-west-1.amazonaws.com/"
                        .. leg.fx.prefix .. "/" .. name .. "/" .. fn
    end
    table.sort(urls)
    t.write(leg.D .. "/actors/" .. name .. "/training_data/response.json",
            cjson.encode { status = "succeeded", output = urls })
  end
  trials { name = "migrate", saved_only = true,
    prepare = function(i)
      local D = leg.tmp .. "/migrate" .. i
      copy_tree(leg.D, D)
      return D, leg.fx.prefix
    end,
    args = function(D, prefix) return common("migrate", D, prefix) end,
    check = function(D)
      -- a response.json is gone only where a manifest now lists its files
      local bad = {}
      for name, a in pairs(leg.fx.actors) do
        if not fp.read(D .. "/actors/" .. name .. "/training_data/response.json") then
          local doc = cjson.decode(fp.read(D .. "/actor_manifests/" .. a.id .. "_manifest.json")
                                   or "null")
          local have = {}
          for _, e in ipairs(type(doc) == "table" and doc.training_data or {}) do
            have[e.filename] = true
          end
          for fn in pairs(a.files) do
            if not have[fn] then bad[#bad + 1] = name .. ": response.json gone, manifest lacks " .. fn end
          end
        end
      end
      return bad
    end }
end)

local st = proxy:stop()
print(string.format("# proxy: %d requests", st.requests or -1))
fp.cleanup()
os.exit(t.done())
