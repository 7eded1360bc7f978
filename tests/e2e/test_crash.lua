--- test_crash.lua -- pull-all, push, sync-manifests and migrate killed with
-- SIGKILL at random (seeded) moments, then re-run.
--
-- For every trial, while the command runs (polled every few ms until the
-- kill) and after the kill:
--   * every manifest on disk parses and has the seed's shape;
--   * every non-hidden file under actors/*/training_data/ is complete: its
--     bytes have the source's MD5 (temp files are hidden .NAME.tmp.*);
--   * (migrate) an actor whose response.json is gone has a saved manifest
--     listing every file the response.json named.
-- Then the same command re-runs uninterrupted and must converge to the end
-- state of an uninterrupted run: the same manifests (statuses, hashes,
-- sizes, statistics), the same local files, the same objects.
--
-- TDM_CRASH_TRIALS (default 30) trials per command; TDM_CRASH_SEED seeds
-- the kill moments, TDM_CRASH_ONLY=COMMAND runs one command's. Each trial is small (a dozen files) so the four
-- commands fit in about two minutes together.
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local fp = e2e.fp

local TRIALS = tonumber(os.getenv("TDM_CRASH_TRIALS") or "") or 30
local SEED = tonumber(os.getenv("TDM_CRASH_SEED") or "") or 7
math.randomseed(SEED)

local function copy_tree(from, to)
  assert(os.execute("rm -rf " .. fp.q(to) .. " && cp -a " .. fp.q(from) ..
                    " " .. fp.q(to)))
end

-- Every manifest under D: name -> decoded doc | nil, error text.
local function read_manifests(D)
  local out, bad = {}, {}
  for _, f in ipairs(core.listdir(D .. "/actor_manifests") or {}) do
    if f:match("^%d+_manifest%.json$") then
      local text = fp.read(D .. "/actor_manifests/" .. f)
      if text then   -- vanished between listdir and read: fine
        local ok, doc = pcall(cjson.decode, text)
        if not ok or type(doc) ~= "table" or type(doc.training_data) ~= "table"
           or type(doc.statistics) ~= "table" then
          bad[#bad + 1] = f .. ": " .. (ok and "wrong shape" or tostring(doc))
        else
          out[f] = doc
        end
      end
    end
  end
  return out, bad
end

-- Non-hidden files under actors/*/training_data whose bytes do not have
-- the expected MD5 (`want[actor/file]`, nil = any complete file we know
-- nothing about is an error too, except response.json).
local function partial_files(D, want)
  local bad = {}
  for path, md5 in pairs(fp.snapshot(D .. "/actors")) do
    local actor, fn = path:match("^([^/]+)/training_data/([^/]+)$")
    if actor and fn:sub(1, 1) ~= "." and fn ~= "response.json" then
      local w = want[actor .. "/" .. fn]
      if w ~= md5 then
        bad[#bad + 1] = path .. (w and " (wrong bytes)" or " (unexpected)")
      end
    end
  end
  table.sort(bad)
  return bad
end

-- The end state that must converge: manifests without timestamps, local
-- files (not hidden), and objects under `prefix` when given.
local function end_state(D, prefix)
  local st = { manifests = {}, files = {}, objects = prefix and fp.store(prefix) }
  local docs = read_manifests(D)
  for f, doc in pairs(docs) do
    local entries = {}
    for _, e in ipairs(doc.training_data) do
      entries[e.filename] = { status = e.status, md5 = e.md5_hash,
                              size = e.size_bytes }
    end
    local stats = {}
    for k, v in pairs(doc.statistics) do
      if k:match("count$") then stats[k] = v end
    end
    st.manifests[f] = { id = doc.character_id, name = doc.character_name,
                        entries = entries, stats = stats }
  end
  for path, md5 in pairs(fp.snapshot(D .. "/actors")) do
    local fn = path:match("([^/]+)$")
    if fn:sub(1, 1) ~= "." then st.files[path] = md5 end
  end
  return st
end

local function first_diff(a, b, where)
  where = where or "state"
  if type(a) ~= "table" or type(b) ~= "table" then
    if a ~= b then return where .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return nil
  end
  for k, v in pairs(a) do
    local d = first_diff(v, b[k], where .. "." .. tostring(k))
    if d then return d end
  end
  for k, v in pairs(b) do
    if a[k] == nil then return where .. "." .. tostring(k) .. ": missing vs " ..
                               tostring(v) end
  end
  return nil
end

local outcomes = {}

--- Run `trials` crash trials of one command. spec = {
--   name, template (dir copied to a fresh D per trial), args(D, i) -> argv,
--   want (actor/file -> md5 of complete files), prefix(i) (objects to
--   compare, optional), check(D) -> list of invariant violations (optional)
-- }
-- Manifests record local_path with the data root as configured (absolute
-- here), so every run uses the path the template was generated at: the
-- template is moved aside and copied back for each run.
local ONLY = os.getenv("TDM_CRASH_ONLY")
local function crash_trials(spec)
  if ONLY and ONLY ~= spec.name then return end
  local D = spec.template
  local store = D .. ".template"
  assert(os.execute("mv " .. fp.q(D) .. " " .. fp.q(store)))
  -- The reference: one uninterrupted run.
  copy_tree(store, D)
  local t0 = core.now()
  local rc, _, err = fp.tdm(spec.args(D, 0), spec.env)
  local t_ref = core.now() - t0
  t.eq(rc, 0, spec.name .. ": uninterrupted run exits 0 (" .. err:sub(1, 300) .. ")")
  local ref = end_state(D, spec.prefix and spec.prefix(0))
  local o = { trials = 0, killed = 0, finished_first = 0, violations = 0,
              reruns_failed = 0, diverged = 0, temp_left = 0, polls = 0,
              t_ref = t_ref }
  outcomes[spec.name] = o
  for i = 1, TRIALS do
    copy_tree(store, D)
    local job = fp.spawn(spec.args(D, i), spec.env)
    local start = core.now()
    -- Kill within the first 90 % of one uninterrupted run's time: start-up
    -- jitter makes some trials finish first anyway, more on a fast idle
    -- machine, so the check below asks for a third killed mid-run.
    local kill_at = start + math.random() * t_ref * 0.9
    local violations = {}
    local function check(when)
      o.polls = o.polls + 1
      local _, bad = read_manifests(D)
      for _, b in ipairs(bad) do violations[#violations + 1] = when .. ": " .. b end
      for _, b in ipairs(partial_files(D, spec.want)) do
        violations[#violations + 1] = when .. ": partial file " .. b
      end
      if spec.check then
        for _, b in ipairs(spec.check(D)) do
          violations[#violations + 1] = when .. ": " .. b
        end
      end
    end
    -- Poll in-process (no child processes) until the kill moment.
    while core.now() < kill_at and fp.alive(job.pid) do
      check("running")
    end
    local was_alive = fp.alive(job.pid)
    local krc = fp.kill(job)
    if was_alive and krc == 137 then o.killed = o.killed + 1
    else o.finished_first = o.finished_first + 1 end
    check("after kill")
    o.temp_left = o.temp_left + fp.temp_count(D)
    o.trials = o.trials + 1
    local rrc, _, rerr = fp.tdm(spec.args(D, i), spec.env)
    if rrc ~= 0 then
      o.reruns_failed = o.reruns_failed + 1
      violations[#violations + 1] = "re-run exit " .. tostring(rrc) .. ": " ..
                                    rerr:sub(1, 200)
    end
    check("after re-run")
    local got = end_state(D, spec.prefix and spec.prefix(i))
    if spec.prefix then
      -- objects are compared by their path under the trial's prefix
      local function rel(objs, p)
        local r = {}
        for k, v in pairs(objs or {}) do r[k:sub(#p + 1)] = v end
        return r
      end
      got.objects = rel(got.objects, spec.prefix(i))
      if not ref.rel then ref.objects = rel(ref.objects, spec.prefix(0)); ref.rel = true end
    end
    local d = first_diff(ref.manifests, got.manifests, "manifests") or
              first_diff(ref.files, got.files, "files") or
              first_diff(ref.objects, got.objects, "objects")
    if d then
      d = d .. " (objects: " .. tostring(first_diff(ref.objects, got.objects,
                                                    "objects")) .. ")"
      o.diverged = o.diverged + 1
      violations[#violations + 1] = "re-run diverged from the uninterrupted run: " .. d
    end
    if #violations > 0 then
      o.violations = o.violations + #violations
      error(string.format("%s trial %d (kill at %.3fs of %.3fs): %s", spec.name,
            i, kill_at - start, t_ref, table.concat(violations, "; ", 1,
            math.min(#violations, 5))))
    end
  end
  print(string.format("# %s: %d trials (%d killed mid-run, %d finished " ..
    "first), %d re-runs failed, %d diverged, %d invariant violations, " ..
    "%d state polls, %d temp files left by kills; uninterrupted run %.2fs",
    spec.name, o.trials, o.killed, o.finished_first, o.reruns_failed,
    o.diverged, o.violations, o.polls, o.temp_left, t_ref))
  t.ok(o.killed >= TRIALS // 3, spec.name .. ": at least a third of the " ..
       "trials killed mid-run (" .. o.killed .. ")")
end

-- What complete files look like: actor/file -> md5, from a fixture.
local function want_of(fx)
  local want = {}
  for name, a in pairs(fx.actors) do
    for fn, f in pairs(a.files) do
      want[name .. "/" .. fn] = f.local_md5 or f.s3_md5
    end
  end
  return want
end

local common = function(D, prefix)
  return { "--data-root", D, "--prefix", prefix, "--jobs", "2", "--quiet" }
end
local function argv(cmd, D, prefix, extra)
  local a = { cmd }
  for _, x in ipairs(extra or {}) do a[#a + 1] = x end
  for _, x in ipairs(common(D, prefix)) do a[#a + 1] = x end
  return a
end

t.test("pull-all killed at random moments", function()
  local w = e2e.world { tag = "t/crash-pull", fast = true, data = "tpl", fixture = {
    scenarios = false, bulk = 2, bulk_files = 4, bulk_size = 128 * 1024, seed = SEED } }
  local T, fx = w.D, w.fx
  os.execute("rm -rf " .. fp.q(T .. "/actors"))
  local first = true
  for _, a in pairs(fx.actors) do
    if first then os.remove(T .. "/actor_manifests/" .. a.id .. "_manifest.json") end
    first = false
  end
  crash_trials { name = "pull-all", template = T, want = want_of(fx),
    args = function(D) return argv("pull-all", D, fx.prefix) end }
end)

t.test("push killed at random moments", function()
  local w = e2e.world { tag = "t/crash-push", fast = true, data = "tpl", fixture = {
    scenarios = false, bulk = 1, bulk_files = 6, bulk_size = 192 * 1024,
    seed = SEED + 1, upload = false } }
  local T, fx, base = w.D, w.fx, w.prefix
  os.execute("rm -rf " .. fp.q(T .. "/actor_manifests"))
  local name = next(fx.actors)
  local function prefix(i) return base .. "/" .. i end
  -- Through the proxy in pass mode: it checks bodies as S3 does, so a PUT
  -- cut by the kill stores nothing (s3rver alone would store the partial
  -- body as the object, which real S3 never does).
  local p = fp.start { seed = SEED }
  crash_trials { name = "push", template = T, want = want_of(fx),
    env = { AWS_ENDPOINT_URL = p.url },
    prefix = function(i) return prefix(i) .. "/" end,
    args = function(D, i) return argv("push", D, prefix(i), { name }) end }
  local st = p:stop()
  print(string.format("# push: %d PUTs cut by the kill never stored " ..
    "(proxy client_aborts), %d bad digests", st.client_aborts, st.bad_digest))
  t.eq(st.bad_digest, 0, "uploads whose Content-MD5 did not match the body")
end)

t.test("sync-manifests killed at random moments", function()
  local w = e2e.world { tag = "t/crash-sync", fast = true, data = "tpl", fixture = {
    scenarios = true, junk = false, seed = SEED + 2 } }
  local T, fx = w.D, w.fx
  crash_trials { name = "sync-manifests", template = T, want = want_of(fx),
    args = function(D) return argv("sync-manifests", D, fx.prefix) end }
end)

t.test("migrate killed at random moments", function()
  local w = e2e.world { tag = "t/crash-migrate", fast = true, data = "tpl", fixture = {
    scenarios = false, bulk = 2, bulk_files = 4, bulk_size = 32 * 1024, seed = SEED + 3 } }
  local T, fx = w.D, w.fx
  -- Legacy layout: no manifests, a response.json per actor naming its
  -- images by their public S3 URLs.
  os.execute("rm -rf " .. fp.q(T .. "/actor_manifests"))
  local refs = {}
  for name, a in pairs(fx.actors) do
    local urls = {}
    for fn in pairs(a.files) do
      urls[#urls + 1] = "https://story-boards-assets.s3.us-west-1.amazonaws.com/" ..
                        fx.prefix .. "/" .. name .. "/" .. fn
    end
    table.sort(urls)
    refs[name] = urls
    t.write(T .. "/actors/" .. name .. "/training_data/response.json",
            cjson.encode { status = "succeeded", output = urls })
  end
  -- No response.json may vanish before a manifest that lists its files.
  local function legacy_check(D)
    local bad, gone = {}, {}
    -- Which legacy files are gone first, then the manifests: a manifest
    -- read before a deletion could predate its own save.
    for name in pairs(refs) do
      gone[name] = not fp.read(D .. "/actors/" .. name .. "/training_data/response.json")
    end
    local docs = read_manifests(D)
    for name, urls in pairs(refs) do
      if gone[name] then
        local doc = docs[fx.actors[name].id .. "_manifest.json"]
        if not doc then
          bad[#bad + 1] = name .. ": response.json deleted, no manifest"
        else
          local have = {}
          for _, e in ipairs(doc.training_data) do have[e.filename] = true end
          for _, u in ipairs(urls) do
            local fn = u:match("([^/]+)$")
            if not have[fn] then
              bad[#bad + 1] = name .. ": response.json deleted, manifest lacks " .. fn
            end
          end
        end
      end
    end
    return bad
  end
  crash_trials { name = "migrate", template = T, want = want_of(fx),
    check = legacy_check,
    args = function(D) return argv("migrate", D, fx.prefix) end }
end)

local total = { trials = 0, killed = 0, violations = 0 }
for _, o in pairs(outcomes) do
  total.trials = total.trials + o.trials
  total.killed = total.killed + o.killed
  total.violations = total.violations + o.violations
end
print(string.format("# crash totals: %d trials, %d killed mid-run, %d violations",
                    total.trials, total.killed, total.violations))
fp.cleanup()
os.exit(t.done())
