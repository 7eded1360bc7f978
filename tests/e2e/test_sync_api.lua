-- test_sync_api.lua -- tdm.Sync as ops scripts use it (the seed's
-- TrainingDataSync): auto_initialize_manifest and sync_actor_training_data
-- with each direction, dry_run and delete, key confinement, unknown actors.
local t = require "t"
local core = require "tdm.core"
local tdm = require "tdm"

-- before anything below loads tdm.sync (tdm.Sync.new does)
t.test("the sync modules and commands write no globals", function()
  t.require_no_globals("tdm.sync", "tdm.sync_cli",
                       "tdm.commands.sync-manifests", "tdm.commands.pull-all",
                       "tdm.commands.pull", "tdm.commands.push")
end)

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local w = e2e.world { prefix = e2e.prefix("e2e-syncapi") .. "/training_data",
                      fixture = { seed = 11 } }
local PREFIX, D, fx, cfg, client = w.prefix, w.D, w.fx, w.cfg, w.client
local sync = tdm.Sync.new(cfg)

local function manifest(name)
  local m = assert(tdm.Manifest.open(name, cfg))
  local by = {}
  for _, e in ipairs(m:get_all_images()) do by[e.filename] = e end
  local stats = m:statistics()
  m:close()
  return by, stats
end

local function lpath(name, fn) return w:lpath(name, fn) end

t.test("auto_initialize_manifest creates a manifest for an S3-only actor", function()
  local name = "0010_s3_only_actor"
  local rep = assert(sync:auto_initialize_manifest(10))
  t.eq(rep.actor, name, "resolved name (from the S3 folder, given the bare id 10)")
  t.eq(rep.created, true, "created")
  t.eq(rep.written, true, "written")
  t.eq(#rep.s3_added, 3, "objects added")
  local by, stats = manifest(name)
  for fn, f in pairs(fx.actors[name].files) do
    t.eq(by[fn] and by[fn].status, "s3_only", fn .. " status")
    t.eq(by[fn].md5_hash, f.s3_md5, fn .. " md5_hash")
  end
  t.eq(stats.training_s3_only_count, 3, "s3_only count")
  local again = assert(sync:auto_initialize_manifest(name))
  t.eq(again.written, false, "a second run writes nothing")
  t.eq(again.scan.hashed, 0, "and hashes nothing")
end)

t.test("auto_initialize_manifest dry_run reports without writing", function()
  local name = "0007_no_manifest"
  local rep = assert(sync:auto_initialize_manifest(name, { dry_run = true }))
  t.eq(rep.would_write, true, "would write")
  t.eq(rep.written, false, "written")
  t.ok(not core.stat(D .. "/actor_manifests/0007_manifest.json"), "no manifest file")
end)

t.test("unknown actors are refused, nothing created", function()
  local r, msg, code = sync:auto_initialize_manifest("0099_nobody")
  t.eq(r, nil, "result")
  t.eq(code, "ENOACTOR", "code (" .. tostring(msg) .. ")")
  t.ok(not core.stat(D .. "/actor_manifests/0099_manifest.json"), "no manifest created")
  r, msg, code = sync:auto_initialize_manifest(98)
  t.eq(code, "ENOACTOR", "bare unknown id (" .. tostring(msg) .. ")")
  t.ok(not pcall(sync.sync_actor_training_data, sync, "0011_mixed_state",
                 { direction = "sideways" }), "a bad direction raises")
end)

t.test("split_key confines every key", function()
  local cases = {
    { PREFIX .. "/0042_a/0042_a_1.jpg", "0042_a", "0042_a_1.jpg" },
    { PREFIX .. "/0042_a/sub/0042_a_1.jpg", nil, nil },
    { PREFIX .. "/../0042_a/x.jpg", nil, nil },
    { PREFIX .. "/0042_a/..", nil, nil },
    { PREFIX .. "/stray.jpg", nil, nil },
    { "elsewhere/0042_a/0042_a_1.jpg", nil, nil },
    { PREFIX .. "/0042_a/notes.txt", "0042_a", nil },
    { PREFIX .. "/noid/noid_1.jpg", nil, nil },
  }
  for _, c in ipairs(cases) do
    local a, f, why = sync:split_key(c[1])
    t.eq(a, c[2], c[1] .. " actor")
    t.eq(f, c[3], c[1] .. " file")
    if not f then t.ok(why, c[1] .. " has a reason") end
  end
end)

t.test("sync_actor_training_data pull, push, both", function()
  local name = "0011_mixed_state"
  local T = assert(sync:sync_actor_training_data(11, { direction = "pull", dry_run = true }))
  t.eq(T.planned, 1, "dry run plans the one s3_only download")
  t.ok(not core.stat(lpath(name, name .. "_2.jpg")), "dry run downloaded nothing")
  T = assert(sync:sync_actor_training_data(name, { direction = "both" }))
  t.eq(T.downloaded, 1, "downloaded")
  t.eq(T.uploaded, 2, "uploaded (local_only + orphan)")
  local by = manifest(name)
  t.eq(by[name .. "_0.jpg"].status, "synced", "_0")
  t.eq(by[name .. "_1.jpg"].status, "synced", "_1 pushed")
  t.eq(by[name .. "_2.jpg"].status, "synced", "_2 pulled")
  t.eq(by[name .. "_3.jpg"].status, "out_of_sync", "_3 left alone by both")
  t.eq(by[name .. "_4.jpg"].status, "missing", "_4 missing")
  t.eq(by[name .. "_5.jpg"].status, "synced", "_5 orphan pushed")
  T = assert(sync:sync_actor_training_data(name, { direction = "push", overwrite = true }))
  t.eq(T.uploaded, 1, "overwrite uploads the out_of_sync file")
  local h = assert(client:head(PREFIX .. "/" .. name .. "/" .. name .. "_3.jpg"))
  t.eq(h.md5, fx.actors[name].files[name .. "_3.jpg"].local_md5, "S3 now has the local bytes")
end)

t.test("delete = true mirrors one side onto the other", function()
  local name = "0002_local_only"
  -- pull + delete: the local-only files go (S3 has none of them)
  local T = assert(sync:sync_actor_training_data(name, { direction = "pull", delete = true }))
  t.eq(T.deleted, 3, "local files deleted")
  for fn in pairs(fx.actors[name].files) do
    t.ok(not core.stat(lpath(name, fn)), fn .. " removed locally")
  end
  local by, stats = manifest(name)
  t.eq(next(by), nil, "entries removed with their files")
  t.eq(stats.training_images_count, 0, "statistics")
  -- push + delete: S3-only objects of 0003 go
  name = "0003_s3_only"
  T = assert(sync:sync_actor_training_data(name, { direction = "push", delete = true }))
  t.eq(T.deleted, 3, "objects deleted")
  for fn in pairs(fx.actors[name].files) do
    t.eq(client:head(PREFIX .. "/" .. name .. "/" .. fn), nil, fn .. " gone from S3")
  end
end)

t.test("a small backlog bound (batch = 4) pauses the listing for the queue; everything lands", function()
  local w2 = e2e.world { prefix = PREFIX .. "-batch", fixture = { seed = 3,
    scenarios = false, bulk = 6, bulk_files = 5, bulk_size = 5000 } }
  os.execute("rm -rf " .. t.shq(w2.D .. "/actors"))
  local s = tdm.Sync.new(w2.cfg)
  local T = s:run { direction = "pull", batch = 4 }
  t.eq(T.downloaded, 30, "downloaded")
  t.eq(T.synced, 30, "synced")
  t.eq(T.actor_errors + T.transfers_failed, 0, "errors")
end)

t.test("a run that raises mid-listing frees its client and leaves no temp file and holds no claim", function()
  local w3 = e2e.world { prefix = PREFIX .. "-raise", fixture = { seed = 5,
    scenarios = false, bulk = 6, bulk_files = 8, bulk_size = 200000 } }
  os.execute("rm -rf " .. t.shq(w3.D .. "/actors"))
  local s = tdm.Sync.new(w3.cfg)
  local seen = 0
  -- the third actor raises: the first two actors' downloads are queued
  -- (and some in flight) when it does
  s.before_lock = function()
    seen = seen + 1
    if seen == 3 then error("stop here") end
  end
  local ok, err = pcall(s.run, s, { direction = "pull" })
  t.eq(ok, false, "the run raised")
  t.ok(tostring(err):find("stop here", 1, true), "with the seam's error: " .. tostring(err))
  s.before_lock = nil
  local leftovers = {}
  local p = io.popen("find " .. t.shq(w3.D) .. " -name '.*.tmp.*' -o -name '*.claim'")
  for line in p:lines() do
    -- a claim file may stay; its flock must not
    local c = line:match("%.claim$") and core.claim(line)
    if c then c:release() else leftovers[#leftovers + 1] = line end
  end
  p:close()
  t.eq(table.concat(leftovers, " "), "", "no temp file, no claim held")
  local c = assert(s:client())
  t.ok(c:head(w3.prefix .. "/" .. next(w3.fx.actors) .. "/none.jpg") == nil,
       "the client answers again (HEAD of a missing key)")
  -- downloads that finished before the raise are kept (a fast server
  -- finishes some); the next run pulls the rest
  local kept = 0
  p = io.popen("find " .. t.shq(w3.D .. "/actors") .. " -type f -name '*.jpg' 2>/dev/null")
  for _ in p:lines() do kept = kept + 1 end
  p:close()
  local T = s:run { direction = "pull" }
  t.eq(T.downloaded, 48 - kept, "the next run on the same Sync pulls everything else")
  t.eq(T.actor_errors + T.transfers_failed + T.busy_skipped, 0, "no errors, no busy claims")
end)

return t.done()
