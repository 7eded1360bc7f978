-- test_sync.lua -- sync-manifests, push, pull and pull-all end to end on the
-- fixture (tests/lib/fixture.lua) against the harness's s3rver: every
-- manifest checked against what is really on disk and in the bucket,
-- --dry-run of every command changes nothing, shards cover every actor
-- once, a second sync rewrites and hashes nothing.
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local ROOT, fixture = e2e.ROOT, e2e.fixture

local w = e2e.world { prefix = e2e.prefix("e2e-sync") .. "/system_actors/training_data",
                      fixture = { seed = 5 } }
local PREFIX, D, fx, cfg, client = w.prefix, w.D, w.fx, w.cfg, w.client
-- Let the fixture's files age past the racy window (a file modified
-- within 1 s of a manifest save is re-hashed by the next scan), so "a
-- second sync hashes nothing" depends on tdm, not on how fast this runs.
os.execute("sleep 1.1")

local q = t.shq
local function tdm(args) return w:tdm(args) end

-- Events and summary of a --json run.
local function json_lines(out)
  local events, summary = e2e.json_lines(out)
  return events, summary or {}
end

-- Lock files count unless `no_locks` (a dry run opens manifests
-- read-only and touches none; a real run writes its pid into them).
local function snapshot(no_locks) return w:snapshot { no_locks = no_locks } end

local function manifest_path(name) return w:mpath(name) end

local function load_manifest(name)
  local text = t.read(manifest_path(name))
  t.ok(text, "manifest of " .. name .. " exists")
  return cjson.decode(text), text
end

local function md5_of_object(key)
  local h = client:head(key)
  return h and h.md5
end

-- Check actor `name`'s manifest against disk and bucket: statuses (as
-- `want`, default the fixture's expectation), hashes, sizes, URLs, paths,
-- statistics, dates.
local function check_actor(name, want)
  want = want or fixture.expected_statuses(fx, name)
  local doc = load_manifest(name)
  t.eq(doc.character_name, name, name .. ": character_name")
  t.eq(doc.character_id, name:match("^(%d+)"), name .. ": character_id")
  t.ok(tostring(doc.training_data_updated):match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d$"),
       name .. ": training_data_updated format, got " .. tostring(doc.training_data_updated))
  local seen, counts, bytes = {}, {}, 0
  for _, e in ipairs(doc.training_data) do
    local fn = e.filename
    seen[fn] = true
    t.eq(e.status, want[fn], name .. "/" .. fn .. " status")
    local lp = D .. "/actors/" .. name .. "/training_data/" .. fn
    local key = PREFIX .. "/" .. name .. "/" .. fn
    local lmd5 = core.md5_file(lp)
    local smd5 = md5_of_object(key)
    local st = (lmd5 and smd5) and (lmd5 == smd5 and "synced" or "out_of_sync")
               or lmd5 and "local_only" or smd5 and "s3_only" or "missing"
    t.eq(e.status, st, name .. "/" .. fn .. " status vs disk+bucket")
    if lmd5 then
      t.eq(e.md5_hash, lmd5, name .. "/" .. fn .. " md5_hash = local file")
      local size = core.stat(lp).size
      t.eq(e.size_bytes, size, name .. "/" .. fn .. " size_bytes")
    elseif smd5 then
      t.eq(e.md5_hash, smd5, name .. "/" .. fn .. " md5_hash = object")
    end
    t.eq(e.size_mb, math.floor(e.size_bytes / 1048576 * 100 + 0.5) / 100,
         name .. "/" .. fn .. " size_mb")
    t.eq(e.s3_url, cfg.public_url_base .. "/" .. key, name .. "/" .. fn .. " s3_url")
    t.eq(e.local_path, "data/actors/" .. name .. "/training_data/" .. fn,
         name .. "/" .. fn .. " local_path (the seed's form)")
    t.ok(tostring(e.modified_date):match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+$"),
         name .. "/" .. fn .. " modified_date format")
    counts[e.status] = (counts[e.status] or 0) + 1
    bytes = bytes + e.size_bytes
  end
  for fn in pairs(want) do t.ok(seen[fn], name .. "/" .. fn .. " has an entry") end
  local s = doc.statistics
  t.eq(s.training_images_count, #doc.training_data, name .. " training_images_count")
  t.eq(s.training_synced_count, counts.synced or 0, name .. " synced count")
  t.eq(s.training_local_only_count, counts.local_only or 0, name .. " local_only count")
  t.eq(s.training_s3_only_count, counts.s3_only or 0, name .. " s3_only count")
  t.eq(s.training_out_of_sync_count, counts.out_of_sync or 0, name .. " out_of_sync count")
  t.eq(s.training_missing_count or 0, counts.missing or 0, name .. " missing count")
  t.eq(s.training_data_size_mb, math.floor(bytes / 1048576 * 100 + 0.5) / 100,
       name .. " training_data_size_mb")
  return doc
end

local function all_actor_names()
  local names = {}
  for name in pairs(fx.actors) do names[#names + 1] = name end
  table.sort(names)
  return names
end

local function manifest_mtimes()
  local m = {}
  for _, name in ipairs(all_actor_names()) do
    local st = core.stat(manifest_path(name))
    m[name] = st and st.mtime
  end
  return m
end

-- Python's json module re-dumps every manifest byte for byte.
local function python_identical()
  local cmd = "python3 -c " .. q([[
import json, sys, glob
bad = [p for p in glob.glob(sys.argv[1] + '/actor_manifests/*_manifest.json')
       if json.dumps(json.load(open(p)), indent=2) != open(p).read()]
print(' '.join(bad)); sys.exit(1 if bad else 0)]]) .. " " .. q(D)
  return os.execute(cmd)
end

-- 1. --dry-run of every command changes nothing anywhere --------------------
t.test("--dry-run of every command changes nothing", function()
  local before = snapshot()
  for _, args in ipairs({ "sync-manifests --dry-run", "pull-all --dry-run --repair",
                          "pull --dry-run --repair 0011_mixed_state",
                          "push --dry-run --overwrite 0011_mixed_state",
                          "sync-manifests --dry-run --prune --json" }) do
    local rc, out, err = tdm(args)
    t.ok(rc == 0 or rc == 1, args .. ": exit 0/1, got " .. tostring(rc) .. " " .. err)
    t.ok(#out > 0, args .. ": prints a plan")
    t.eq(e2e.snapdiff(before, snapshot()), "", args .. ": data root and bucket")
  end
  local _, out = tdm("pull-all --dry-run --json")
  local events, summary = json_lines(out)
  local planned = 0
  for _, ev in ipairs(events) do
    if ev.action == "download" and ev.result == "planned" then planned = planned + 1 end
  end
  -- s3_only files of 0003 (3), 0007 (1), 0010 (3), 0011 (1)
  t.eq(planned, 8, "downloads planned by pull-all --dry-run")
  t.eq(summary.dry_run, true, "summary says dry_run")
end)

-- 2. sync-manifests on the fixture ------------------------------------------
t.test("sync-manifests brings every manifest in line with disk and bucket", function()
  local rc, out, err = tdm("sync-manifests --json")
  -- the fixture's hostile keys: warned about, skipped, counted, exit 0
  t.eq(rc, 0, "exit code (stderr: " .. err .. ")")
  local events, summary = json_lines(out)
  t.eq(summary.actor_errors, nil, "no actor errors")
  t.eq(summary.errors, 0, "errors (stray keys are warnings)")
  -- the stray keys and 0009's readme.txt
  t.eq(summary.keys_skipped, #fx.bad_keys + 1, "keys_skipped")
  t.eq(summary.listings, 1, "S3 listings (one streamed listing of the whole prefix)")
  t.eq(summary.actors, 11, "actors processed (0001..0011, whether local, S3-only or manifest-only)")
  local refused = {}
  for _, ev in ipairs(events) do
    if ev.action == "skip" and ev.result == "stray key" then refused[ev.file] = ev.error end
  end
  for _, k in ipairs(fx.bad_keys) do
    t.ok(refused[k], "stray key warned about: " .. k)
  end
  t.ok(not core.stat(D .. "/actors/0012_nested/training_data/0012_nested_0.jpg"),
       "nothing written for the nested key")
  for _, name in ipairs(all_actor_names()) do check_actor(name) end
  -- the nested key's actor folder is not an actor with files
  t.ok(python_identical(), "every manifest re-dumps identically through Python's json")
  -- non-images are not tracked
  local doc = load_manifest("0009_non_images")
  for _, e in ipairs(doc.training_data) do
    t.ok(e.filename:match("%.jpg$"), "only images tracked, got " .. e.filename)
  end
end)

-- The hostile keys have been checked above (each skipped with a warning); the
-- rest of this file works on a bucket without them, so a clean run is 0.
assert(client:delete_many(fx.bad_keys))

t.test("a second sync-manifests rewrites no manifest and hashes no file", function()
  local before = manifest_mtimes()
  local rc, out, err = tdm("sync-manifests --json")
  t.eq(rc, 0, "exit code (stderr: " .. err .. ")")
  local _, summary = json_lines(out)
  t.eq(summary.files_hashed or 0, 0, "files hashed")
  t.eq(summary.manifests_written or 0, 0, "manifests written")
  t.eq(manifest_mtimes(), before, "manifest mtimes")
end)

t.test("--shard 1/3, 2/3, 3/3 cover every actor exactly once", function()
  local hits = {}
  for k = 1, 3 do
    local rc, out = tdm("sync-manifests --dry-run --json --shard " .. k .. "/3")
    t.eq(rc, 0, "shard " .. k .. " exit code")
    local events = json_lines(out)
    for _, ev in ipairs(events) do
      if ev.action == "manifest" then hits[ev.actor] = (hits[ev.actor] or 0) + 1 end
    end
  end
  for _, name in ipairs(all_actor_names()) do
    t.eq(hits[name], 1, "shards processing " .. name)
  end
end)

-- 3. push ---------------------------------------------------------------------
t.test("push uploads local_only files; out_of_sync only with --overwrite", function()
  local before = load_manifest("0002_local_only")
  local other = t.read(manifest_path("0001_all_synced"))
  local rc, _, err = tdm("push 2")
  t.eq(rc, 0, "push 2 exit code (stderr: " .. err .. ")")
  -- mutation rules: the changed manifest's training_data_updated moves on,
  -- an untouched actor's manifest keeps every byte
  local after = load_manifest("0002_local_only")
  t.ok(after.training_data_updated > before.training_data_updated,
       "training_data_updated advanced: " .. before.training_data_updated .. " -> "
       .. after.training_data_updated)
  t.eq(t.read(manifest_path("0001_all_synced")), other, "0001's manifest untouched")
  local want = {}
  for fn in pairs(fx.actors["0002_local_only"].files) do want[fn] = "synced" end
  check_actor("0002_local_only", want)

  rc, _, err = tdm("push 0004_out_of_sync")
  t.eq(rc, 0, "push without --overwrite exit code (stderr: " .. err .. ")")
  check_actor("0004_out_of_sync")   -- still out_of_sync
  rc, _, err = tdm("push --overwrite 0004")
  t.eq(rc, 0, "push --overwrite exit code (stderr: " .. err .. ")")
  local w4 = {}
  for fn in pairs(fx.actors["0004_out_of_sync"].files) do w4[fn] = "synced" end
  check_actor("0004_out_of_sync", w4)
end)

-- 4. pull with URLs ---------------------------------------------------------
t.test("pull ACTOR URLS_JSON: exactly those; foreign URLs refused", function()
  local name = "0003_s3_only"
  local url = cfg.public_url_base .. "/" .. PREFIX .. "/" .. name .. "/" .. name .. "_1.jpg"
  local foreign = cfg.public_url_base .. "/" .. PREFIX .. "/0010_s3_only_actor/0010_s3_only_actor_0.jpg"
  local before = snapshot()
  local rc, _, err = tdm("pull " .. name .. " " .. q(cjson.encode({ url, foreign })))
  t.eq(rc, 2, "foreign URL refused with exit 2")
  t.ok(err:find("outside actor", 1, true), "message names the refusal: " .. err)
  t.eq(e2e.snapdiff(before, snapshot()), "", "refused pull changed nothing")

  -- a URL of this actor's prefix with no object behind it: reported, exit 1
  local ghost = cfg.public_url_base .. "/" .. PREFIX .. "/" .. name .. "/" .. name .. "_9.jpg"
  rc, _, err = tdm("pull " .. name .. " " .. q(cjson.encode({ ghost })))
  t.eq(rc, 1, "pull of a URL with no object: exit code")
  t.ok(err:find("not in S3", 1, true), "message says not in S3: " .. err)
  t.ok(not core.stat(D .. "/actors/" .. name .. "/training_data/" .. name .. "_9.jpg"), "no file")

  local s3url = "s3://" .. cfg.bucket .. "/" .. PREFIX .. "/" .. name .. "/" .. name .. "_2.jpg"
  local pathurl = "https://s3." .. cfg.region .. ".amazonaws.com/" .. cfg.bucket .. "/"
                  .. PREFIX .. "/" .. name .. "/" .. name .. "_1.jpg"
  rc, _, err = tdm("pull 3 " .. q(cjson.encode({ url, s3url, pathurl })))
  t.eq(rc, 0, "pull with URLs exit code (stderr: " .. err .. ")")
  check_actor(name, { [name .. "_0.jpg"] = "s3_only", [name .. "_1.jpg"] = "synced",
                      [name .. "_2.jpg"] = "synced" })
end)

-- 5. pull-all -----------------------------------------------------------------
-- The summary's counts against the sums of every manifest's statistics.
local function check_summary_counts(summary, what)
  local sums = { synced = 0, local_only = 0, s3_only = 0, out_of_sync = 0, missing = 0 }
  for _, name in ipairs(all_actor_names()) do
    local st = load_manifest(name).statistics
    for k in pairs(sums) do sums[k] = sums[k] + (st["training_" .. k .. "_count"] or 0) end
  end
  -- (a zero count is left out of the summary)
  for k, v in pairs(sums) do t.eq(summary[k] or 0, v, what .. ": summary " .. k .. " = sum over manifests") end
end

t.test("pull-all downloads every s3_only file; --repair fixes out_of_sync", function()
  local rc, sout, err = tdm("pull-all --jobs 4 --json")
  t.eq(rc, 0, "pull-all exit code (stderr: " .. err .. ")")
  -- counted after the transfers (actors with downloads) and at once (none)
  check_summary_counts(select(2, json_lines(sout)), "pull-all with downloads")
  rc, sout, err = tdm("pull-all --jobs 4 --json")
  t.eq(rc, 0, "no-op pull-all exit code (stderr: " .. err .. ")")
  check_summary_counts(select(2, json_lines(sout)), "no-op pull-all")
  for _, name in ipairs(all_actor_names()) do
    local want = fixture.expected_statuses(fx, name)
    for fn, st in pairs(want) do
      if st == "s3_only" then want[fn] = "synced" end
      local f = fx.actors[name].files[fn]
      if name == "0002_local_only" or name == "0004_out_of_sync" then want[fn] = "synced" end
      if st == "s3_only" then
        t.eq(core.md5_file(D .. "/actors/" .. name .. "/training_data/" .. fn), f.s3_md5,
             name .. "/" .. fn .. " downloaded bytes")
      end
    end
    check_actor(name, want)
  end
  -- 0011_mixed_state_3 is out_of_sync: only --repair takes S3's copy
  local out
  rc, out, err = tdm("pull-all --repair --actor 11 --json")
  t.eq(rc, 0, "pull-all --repair exit code (stderr: " .. err .. ")")
  local _, summary = json_lines(out)
  t.eq(summary.listings, 1, "listings for --actor 11 (its own prefix only)")
  t.eq(summary.actors, 1, "actors processed for --actor 11")
  local f3 = fx.actors["0011_mixed_state"].files["0011_mixed_state_3.jpg"]
  t.eq(core.md5_file(D .. "/actors/0011_mixed_state/training_data/0011_mixed_state_3.jpg"),
       f3.s3_md5, "repaired file has S3's bytes")
  t.eq(load_manifest("0011_mixed_state").statistics.training_out_of_sync_count, 0,
       "no out_of_sync left in 0011")
end)

t.test("the no-op pull-all hashes, downloads and writes nothing", function()
  -- Files written within a second of a manifest save are re-hashed once
  -- (the racy rule); let that second pass and settle them first.
  os.execute("sleep 1.1")
  t.eq(tdm("pull-all --quiet"), 0, "settling pull-all exit code")
  local before, snap = manifest_mtimes(), snapshot(true)
  local rc, out, err = tdm("pull-all --json")
  t.eq(rc, 0, "exit code (stderr: " .. err .. ")")
  local _, summary = json_lines(out)
  t.eq(summary.files_hashed or 0, 0, "files hashed")
  t.eq(summary.downloaded or 0, 0, "files downloaded")
  t.eq(summary.manifests_written or 0, 0, "manifests written")
  t.eq(manifest_mtimes(), before, "manifest mtimes")
  t.eq(e2e.snapdiff(snap, snapshot(true)), "", "data root and bucket unchanged")
end)

t.test("a bad manifest is reported and the run goes on", function()
  local p = manifest_path("0001_all_synced")
  local good = t.read(p)
  t.write(p, '{"character_id": "0001", "training_data": [}')
  local rc, out, err = tdm("sync-manifests --json")
  t.write(p, good)
  t.eq(rc, 1, "exit code with one bad manifest")
  local events, summary = json_lines(out)
  local named = false
  for _, ev in ipairs(events) do
    if ev.result == "error" and tostring(ev.error):find("0001_manifest.json", 1, true) then
      named = true
    end
  end
  t.ok(named, "the error names the bad manifest (stderr: " .. err .. ")")
  t.eq(summary.actors, 10, "the other actors were processed")
end)

t.test("shell entry points under the seed's names exec the commands", function()
  for script, cmd in pairs({ sync_training_data_to_manifests = "sync-manifests",
                             ["sync_all_training_data.sh"] = "pull-all",
                             sync_actor_training_from_s3 = "pull",
                             sync_actor_training_to_s3 = "push" }) do
    local p = io.popen(ROOT .. "/scripts/" .. script .. " --help 2>&1")
    local out = p:read("a")
    local _, _, rc = p:close()
    t.eq(rc, 0, script .. " --help exit code")
    t.ok(out:find("usage: tdm-lua " .. cmd .. " ", 1, true), script .. " runs " .. cmd .. ": " .. out:sub(1, 80))
  end
  -- arguments pass through: a dry-run pull of one URL prints its plan
  local name = "0010_s3_only_actor"
  local url = cfg.public_url_base .. "/" .. PREFIX .. "/" .. name .. "/" .. name .. "_0.jpg"
  local p = io.popen(string.format("%s/scripts/sync_actor_training_from_s3 --dry-run --json "
    .. "--data-root %s --prefix %s %s %s 2>&1", ROOT, q(D), q(PREFIX), name,
    q(cjson.encode({ url }))))
  local out = p:read("a")
  local _, _, rc = p:close()
  t.eq(rc, 0, "wrapper pull exit code: " .. out)
  t.ok(out:find('"summary"', 1, true), "wrapper pull printed a JSON summary")
end)

t.test("usage errors exit 2", function()
  local rc = tdm("pull")
  t.eq(rc, 2, "pull without an actor")
  rc = tdm("pull 0001_all_synced 'not json'")
  t.eq(rc, 2, "pull with bad URLS_JSON")
  rc = tdm("push --actor 1 0001_all_synced")
  t.eq(rc, 2, "push with --actor")
  rc = tdm("sync-manifests extra")
  t.eq(rc, 2, "sync-manifests with an argument")
end)

return t.done()
