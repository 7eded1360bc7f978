-- test_audit.lua -- `tdm-lua audit` end to end on the generated fixture
-- (every sync state) plus a few more problems, against a real s3rver (run
-- through tests/run.sh): every finding kind is reported once with the
-- right kind, --json parses, audit without --fix changes nothing, --fix
-- adds and records without deleting, and once the rest is resolved the
-- audit is clean (exit 0); --verify finds what size+mtime hide.
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "t/audit", fixture = { seed = 11 } }
local PREFIX, DATA, cfg, client = w.prefix, w.D, w.cfg, w.client
local JPEG = "\255\216\255\224"
local sh_quote = t.shq

-- Findings of a --json run: "kind actor/file" -> count, and the summary.
local function findings(out)
  local got = {}
  local events, summary = e2e.json_lines(out)
  for _, ev in ipairs(events) do
    if ev.kind then
      local k = string.format("%s %s/%s", ev.kind, tostring(ev.actor), tostring(ev.file))
      got[k] = (got[k] or 0) + 1
    end
  end
  return got, summary
end

-- More problems on top of the fixture's.
local A1 = "0001_all_synced"
t.write(w:tdir(A1) .. "/" .. A1 .. "_1.jpg", JPEG .. "changed behind tdm's back")   -- hash_mismatch
assert(client:delete(w:key(A1, A1 .. "_2.jpg")))                          -- synced -> local_only
local m2 = t.read(w:mpath("0002"))
t.write(w:mpath("0002"), (m2:gsub('"training_images_count": 3', '"training_images_count": 99')))
t.write(w:tdir("0006_orphans") .. "/response.json", '["0006_orphans_0.jpg"]')
assert(core.mkdirs(w:tdir("0013_bad_manifest")))
t.write(w:tdir("0013_bad_manifest") .. "/0013_bad_manifest_0.jpg", JPEG .. "an image")
t.write(w:mpath("0013"), '{"character_id": "0013", "training_data": [')
-- a second actor with id 0001: the manifest 0001 is not its
assert(core.mkdirs(w:tdir("0001_impostor")))
t.write(w:tdir("0001_impostor") .. "/0001_impostor_0.jpg", JPEG .. "another 0001")
-- images that are not: empty, text bytes, and one named for another actor
local B14 = "0014_bad_images"
assert(core.mkdirs(w:tdir(B14)))
t.write(w:tdir(B14) .. "/" .. B14 .. "_0.jpg", "")
t.write(w:tdir(B14) .. "/" .. B14 .. "_1.jpg", "plain text, not a JPEG")
t.write(w:tdir(B14) .. "/0015_other_actor_0.jpg", JPEG .. "0015's image")
-- a manifest that names another actor than its file
assert(core.mkdirs(w:tdir("0016_named_wrong")))
t.write(w:tdir("0016_named_wrong") .. "/0016_named_wrong_0.jpg", JPEG .. "0016")
t.write(w:mpath("0016"), '{"character_id": "0016", "character_name": '
        .. '"0017_someone_else", "training_data": []}')

local expected = {
  ["hash_mismatch 0001_all_synced/0001_all_synced_1.jpg"] = 1,
  ["stale_manifest 0001_all_synced/0001_all_synced_2.jpg"] = 1,
  ["stale_manifest 0002_local_only/0002_manifest.json"] = 1,
  ["out_of_sync 0004_out_of_sync/0004_out_of_sync_0.jpg"] = 1,
  ["out_of_sync 0004_out_of_sync/0004_out_of_sync_1.jpg"] = 1,
  ["missing 0005_missing/0005_missing_1.jpg"] = 1,
  ["missing 0005_missing/0005_missing_2.jpg"] = 1,
  ["orphan 0006_orphans/0006_orphans_1.jpg"] = 1,
  ["orphan 0006_orphans/0006_orphans_2.jpg"] = 1,
  ["legacy_file 0006_orphans/response.json"] = 1,
  ["orphan 0007_no_manifest/0007_no_manifest_0.jpg"] = 1,
  ["orphan 0007_no_manifest/0007_no_manifest_1.jpg"] = 1,
  ["untracked_s3 0007_no_manifest/0007_no_manifest_2.jpg"] = 1,
  ["no_actor 0008_ghost/0008_manifest.json"] = 1,
  ["stray_file 0009_non_images/notes.txt"] = 1,
  ["stray_file 0009_non_images/.DS_Store"] = 1,
  ["bad_key 0009_non_images/readme.txt"] = 1,
  ["untracked_s3 0010_s3_only_actor/0010_s3_only_actor_0.jpg"] = 1,
  ["untracked_s3 0010_s3_only_actor/0010_s3_only_actor_1.jpg"] = 1,
  ["untracked_s3 0010_s3_only_actor/0010_s3_only_actor_2.jpg"] = 1,
  ["out_of_sync 0011_mixed_state/0011_mixed_state_3.jpg"] = 1,
  ["missing 0011_mixed_state/0011_mixed_state_4.jpg"] = 1,
  ["orphan 0011_mixed_state/0011_mixed_state_5.jpg"] = 1,
  ["bad_key nil/" .. PREFIX .. "/stray.jpg"] = 1,
  ["bad_key nil/" .. w:key("0012_nested", "sub/0012_nested_0.jpg")] = 1,
  ["bad_manifest 0013_bad_manifest/0013_manifest.json"] = 1,
  ["bad_manifest 0001_impostor/0001_manifest.json"] = 1,
  ["bad_image 0014_bad_images/0014_bad_images_0.jpg"] = 1,
  ["bad_image 0014_bad_images/0014_bad_images_1.jpg"] = 1,
  ["foreign_file 0014_bad_images/0015_other_actor_0.jpg"] = 1,
  ["orphan 0014_bad_images/0014_bad_images_0.jpg"] = 1,
  ["orphan 0014_bad_images/0014_bad_images_1.jpg"] = 1,
  ["orphan 0014_bad_images/0015_other_actor_0.jpg"] = 1,
  ["bad_manifest 0016_named_wrong/0016_manifest.json"] = 1,
}

local function diff(got, want)
  local lines = {}
  for k, n in pairs(got) do
    if want[k] ~= n then lines[#lines + 1] = "unexpected: " .. k .. " x" .. n end
  end
  for k in pairs(want) do
    if not got[k] then lines[#lines + 1] = "not reported: " .. k end
  end
  table.sort(lines)
  return table.concat(lines, "; ")
end

-- The fixture writes manifests without tdm, so there is no lock file: an
-- audit that locked would create them (the snapshot includes them).
local before = w:snapshot { dirs = true }

t.test("--json: every finding once, with the right kind; exit 1", function()
  local rc, out, err = w:tdm("audit --json")
  t.eq(rc, 1, "exit code; stderr: " .. err:sub(1, 300))
  local got, summary = findings(out)
  t.eq(diff(got, expected), "", "findings")
  t.ok(summary, "summary line")
  t.eq(summary and summary.findings, 34, "summary.findings")
  t.eq(summary and summary.orphan, 8, "summary.orphan")
  t.eq(summary and summary.bad_key, 3, "summary.bad_key")
  t.eq(summary and summary.fixed, 0, "summary.fixed")
  local msg = out:match('"[^"]*0016_manifest.json"[^\n]*')
  t.ok(out:find("actor 0016", 1, true) and out:find("actor 0017", 1, true),
       "bad_manifest names both ids: " .. tostring(msg))
end)

t.test("audit without --fix (and --dry-run --fix) changes nothing", function()
  t.eq(e2e.snapdiff(before, w:snapshot { dirs = true }), "", "data root and bucket after audit")
  local rc = w:tdm("audit --fix --dry-run --quiet")
  t.eq(rc, 1, "exit code of --dry-run --fix")
  t.eq(e2e.snapdiff(before, w:snapshot { dirs = true }), "",
       "data root and bucket after audit --fix --dry-run")
end)

t.test("human report: one line per finding, summary on stderr", function()
  local rc, out, err = w:tdm("audit")
  t.eq(rc, 1, "exit code")
  t.ok(out:find("0006_orphans/0006_orphans_1.jpg: orphan ", 1, true), "orphan line in:\n" .. out)
  t.ok(out:find("0008_ghost/0008_manifest.json: no_actor ", 1, true), "no_actor line")
  local n = 0
  for _ in out:gmatch("[^\n]+") do n = n + 1 end
  t.eq(n, 34, "lines on stdout")
  t.ok(err:find("audit: ", 1, true) and err:find("findings=34", 1, true), "summary: " .. err)
end)

t.test("--actor and --shard select actors", function()
  local rc, out = w:tdm("audit --json --actor 6")
  t.eq(rc, 1, "exit code")
  local got = findings(out)
  local want = {
    ["orphan 0006_orphans/0006_orphans_1.jpg"] = 1,
    ["orphan 0006_orphans/0006_orphans_2.jpg"] = 1,
    ["legacy_file 0006_orphans/response.json"] = 1 }
  t.eq(diff(got, want), "", "findings for --actor 6")
  local all = {}
  for k = 1, 3 do
    local _, o = w:tdm("audit --json --shard " .. k .. "/3")
    for f, n in pairs(findings(o)) do all[f] = (all[f] or 0) + n end
  end
  -- keys with no actor are reported only by an unfiltered run
  local want_all = {}
  for k, n in pairs(expected) do if not k:find(" nil/", 1, true) then want_all[k] = n end end
  t.eq(diff(all, want_all), "", "shards 1/3..3/3 together")
end)

t.test("--fix adds and records, never deletes", function()
  local rc, out = w:tdm("audit --fix --json")
  t.eq(rc, 1, "exit code")
  local got, summary = findings(out)
  t.eq(diff(got, expected), "", "findings of the --fix run")
  -- orphans 8 (bad images are recorded too, and stay findings), untracked
  -- 4, stale 2, and 0016's identity (only its character_name was wrong)
  t.eq(summary and summary.fixed, 15, "summary.fixed")
  local after = w:snapshot { dirs = true }
  for k, v in pairs(before) do
    if not k:find("^file %./actor_manifests/") then
      t.eq(after[k], v, "unchanged: " .. k)
    end
  end
  local doc = assert(tdm.Manifest.load(w:mpath("0007"), cfg))
  t.eq(#doc.training_data, 3, "0007's new manifest lists its 3 files")
  doc = assert(tdm.Manifest.load(w:mpath("0010"), cfg))
  t.eq(#doc.training_data, 3, "0010's new manifest lists its 3 objects")
  doc = assert(tdm.Manifest.load(w:mpath("0005"), cfg))
  t.eq(#doc.training_data, 3, "0005 keeps its missing entries")
  t.eq(t.read(w:mpath("0013")), '{"character_id": "0013", "training_data": [',
       "bad manifest left alone")
  rc, out = w:tdm("audit --json")
  t.eq(rc, 1, "exit code after --fix")
  got = findings(out)
  local want = {}
  for k, n in pairs(expected) do
    local kind = k:match("^(%S+)")
    if kind ~= "orphan" and kind ~= "untracked_s3" and kind ~= "stale_manifest"
       and kind ~= "hash_mismatch" then
      want[k] = n
    end
  end
  -- the changed file is now recorded: local and S3 differ
  want["out_of_sync 0001_all_synced/0001_all_synced_1.jpg"] = 1
  -- 0016's identity was repaired: now an ordinary manifest whose image is
  -- not listed yet and whose statistics are missing (the next --fix)
  want["bad_manifest 0016_named_wrong/0016_manifest.json"] = nil
  want["orphan 0016_named_wrong/0016_named_wrong_0.jpg"] = 1
  want["stale_manifest 0016_named_wrong/0016_manifest.json"] = 1
  t.eq(diff(got, want), "", "what --fix leaves")
end)

t.test("after --fix, removing leftovers and push/prune/migrate: exit 0", function()
  -- what only a person should remove
  os.remove(w:mpath("0008"))
  os.remove(w:mpath("0013"))
  os.execute("rm -rf " .. sh_quote(DATA .. "/actors/0001_impostor"))
  os.execute("rm -rf " .. sh_quote(DATA .. "/actors/0014_bad_images"))
  os.execute("rm -rf " .. sh_quote(DATA .. "/actors/0016_named_wrong"))
  os.remove(w:mpath("0016"))
  os.remove(w:mpath("0014"))
  os.remove(w:tdir("0009_non_images") .. "/notes.txt")
  os.remove(w:tdir("0009_non_images") .. "/.DS_Store")
  for _, k in ipairs({ w:key("0009_non_images", "readme.txt"), PREFIX .. "/stray.jpg",
                       w:key("0012_nested", "sub/0012_nested_0.jpg") }) do
    assert(client:delete(k))
  end
  -- what the other commands resolve: missing entries (explicit prune),
  -- out_of_sync files (push --overwrite: local wins), the legacy file
  local rc, _, err = w:tdm("sync-manifests --prune --quiet")
  t.eq(rc, 0, "sync-manifests --prune: " .. err)
  for _, a in ipairs({ A1, "0004_out_of_sync", "0011_mixed_state" }) do
    rc, _, err = w:tdm("push --overwrite --quiet " .. a)
    t.eq(rc, 0, "push --overwrite " .. a .. ": " .. err)
  end
  rc, _, err = w:tdm("migrate --quiet")
  t.eq(rc, 0, "migrate: " .. err)
  local out
  rc, out = w:tdm("audit --json")
  t.eq(rc, 0, "exit code on a clean tree; got " .. out:sub(1, 400))
  t.eq(diff(findings(out), {}), "", "no findings")
end)

t.test("stale derived fields: reported once, fixed by --fix", function()
  local path = w:mpath("0002")
  local text = t.read(path)
  local changed, n = text:gsub('"size_mb": [%d.]+', '"size_mb": 9.99', 1)
  t.eq(n, 1, "size_mb replaced")
  t.write(path, changed)
  local rc, out = w:tdm("audit --json")
  t.eq(rc, 1, "exit code")
  local got = findings(out)
  local key = next(got)
  t.ok(key and key:find("^stale_manifest 0002_local_only/0002_local_only_%d%.jpg$"),
       "one stale_manifest entry finding: " .. tostring(key))
  t.eq(next(got, key), nil, "only that finding")
  t.ok(out:find("size_mb 9.99 stored", 1, true), "detail names the field")
  rc = w:tdm("audit --fix --quiet")
  t.eq(rc, 1, "--fix run reports it")
  rc = w:tdm("audit --quiet")
  t.eq(rc, 0, "clean after --fix")
end)

t.test("a same-size rewrite with its mtime put back is found (ctime), --verify too", function()
  local name = "0002_local_only"
  local path = w:tdir(name) .. "/" .. name .. "_0.jpg"
  os.execute("touch -d '2024-01-01 00:00:00' " .. sh_quote(path))
  local rc = w:tdm("audit --fix --quiet")   -- records the old mtime
  rc = w:tdm("audit --quiet")
  t.eq(rc, 0, "clean before the change")
  local data = t.read(path)
  local flipped = string.char((data:byte(10) + 1) % 256)
  t.write(path, data:sub(1, 9) .. flipped .. data:sub(11))
  os.execute("touch -d '2024-01-01 00:00:00' " .. sh_quote(path))
  -- same size, mtime put back: the ctime (the hash cache's key, as git's)
  -- cannot be put back, so even without --verify the change is found
  local out
  rc, out = w:tdm("audit --json")
  t.eq(rc, 1, "same size and mtime: the change is found")
  t.eq(diff(findings(out), { ["hash_mismatch " .. name .. "/" .. name .. "_0.jpg"] = 1 }), "",
       "findings without --verify")
  rc, out = w:tdm("audit --verify --json")
  t.eq(rc, 1, "--verify finds it too")
  t.eq(diff(findings(out), { ["hash_mismatch " .. name .. "/" .. name .. "_0.jpg"] = 1 }), "",
       "findings with --verify")
end)

w:cleanup()

return t.done()
