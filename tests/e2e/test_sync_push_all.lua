-- test_sync_push_all.lua -- tdm-lua push-all: every actor's local_only
-- files uploaded in one run (verified by S3's MD5s), manifests synced;
-- --dry-run changes nothing; a second run uploads nothing; out_of_sync
-- files are held unless --overwrite.
local t = require "t"
local core = require "tdm.core"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "e2e-pushall" }
local client = w.client
local names = { "0001_push_a", "0002_push_b", "0003_push_c" }
local data = {}
for i, name in ipairs(names) do
  assert(core.mkdirs(w:tdir(name)))
  for j = 0, 2 do
    local fn = name .. "_" .. j .. ".jpg"
    -- JPEG magic first: push holds back bytes that are not an image
    data[w:key(name, fn)] = "\255\216\255\224" .. string.rep(string.char(96 + i), 500 + j) .. fn
    t.write(w:lpath(name, fn), data[w:key(name, fn)])
  end
end

local function objects()
  local got = {}
  for obj in client:list(w.prefix .. "/") do got[obj.key] = obj.md5 end
  return got
end

local function count(tbl)
  local n = 0
  for _ in pairs(tbl) do n = n + 1 end
  return n
end

t.test("--dry-run plans every upload and changes nothing", function()
  local before = w:snapshot {}
  local rc, out, err = w:tdm("push-all --dry-run --json")
  t.eq(rc, 0, "exit code (stderr: " .. err .. ")")
  local events, summary = e2e.json_lines(out)
  local planned = 0
  for _, ev in ipairs(events) do
    if ev.action == "upload" and ev.result == "planned" then planned = planned + 1 end
  end
  t.eq(planned, 9, "uploads planned")
  t.eq(summary and summary.planned, 9, "summary.planned")
  t.eq(e2e.snapdiff(before, w:snapshot {}), "", "nothing changed")
end)

t.test("push-all uploads every local_only file, verified, manifests synced", function()
  local rc, out, err = w:tdm("push-all --json")
  t.eq(rc, 0, "exit code (stderr: " .. err .. ")")
  local _, summary = e2e.json_lines(out)
  t.eq(summary and summary.uploaded, 9, "summary.uploaded")
  t.eq(summary and summary.synced, 9, "summary.synced")
  t.eq(summary and summary.listings, 1, "one listing for the whole run")
  local got = objects()
  t.eq(count(got), 9, "objects in S3")
  for key, bytes in pairs(data) do
    t.eq(got[key], tdm.md5(bytes), "S3 MD5 of " .. key)
  end
  for _, name in ipairs(names) do
    local m = assert(tdm.Manifest.open(name, w.cfg))
    t.eq(m:statistics().training_synced_count, 3, name .. " synced entries")
    m:close()
  end
end)

t.test("a second run uploads nothing", function()
  local rc, out = w:tdm("push-all --json")
  t.eq(rc, 0, "exit code")
  local _, summary = e2e.json_lines(out)
  t.eq(summary and summary.uploaded, nil, "nothing uploaded (no uploaded count)")
  t.eq(summary and summary.synced, 9, "still synced")
end)

t.test("an out_of_sync file is held, and uploaded with --overwrite", function()
  local name, fn = names[2], names[2] .. "_1.jpg"
  local new = "\255\216\255\224changed locally " .. string.rep("z", 100)
  t.write(w:lpath(name, fn), new)
  local rc, out = w:tdm("push-all --json")
  t.eq(rc, 0, "exit code")
  local events, summary = e2e.json_lines(out)
  local held = false
  for _, ev in ipairs(events) do
    if ev.action == "hold" and ev.file == fn then held = true end
  end
  t.ok(held, "the out_of_sync file is held")
  t.eq(summary and summary.out_of_sync, 1, "summary.out_of_sync")
  t.eq(objects()[w:key(name, fn)], tdm.md5(data[w:key(name, fn)]), "S3 unchanged")
  rc, out = w:tdm("push-all --overwrite --json")
  t.eq(rc, 0, "exit code with --overwrite")
  local _, s2 = e2e.json_lines(out)
  t.eq(s2 and s2.uploaded, 1, "one upload")
  t.eq(s2 and s2.synced, 9, "all synced")
  t.eq(objects()[w:key(name, fn)], tdm.md5(new), "S3 has the local version")
end)

w:cleanup()
return t.done()
