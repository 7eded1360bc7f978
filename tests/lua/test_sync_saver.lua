-- test_sync_saver.lua -- background manifest saves (core.manifest_saver,
-- m:save_async), which the bulk runs of tdm.Sync use: the file is written
-- atomically by a writer thread that holds the manifest's lock until the
-- new version is on disk; failures come back from saver:wait().
local t = require "t"
local tdm = require "tdm"
local core = tdm.core
local M = tdm.Manifest

local function setup()
  local root = t.tmpdir() .. "/data"
  return { data_root = root, lock_timeout = 0.05 }, root
end

local function actor(i) return string.format("%04d_saver_actor", i) end
local function mpath(root, i)
  return string.format("%s/actor_manifests/%04d_manifest.json", root, i)
end

t.test("save_async writes what save would, for many actors", function()
  local cfg, root = setup()
  local saver <close> = core.manifest_saver(3, 4)   -- small queue: back-pressure
  local want = {}
  for i = 1, 20 do
    local m = assert(M.open(actor(i), cfg))
    assert(m:add_image({ filename = actor(i) .. "_0.jpg",
                         s3 = { md5 = string.rep("a", 32), size = i } }))
    local ok, written = m:save_async(saver)
    t.eq(ok, true, "save_async " .. i)
    t.eq(written, true, "written " .. i)
    t.eq(m:statistics().training_s3_only_count, 1, "statistics after save_async")
    local ok2, _, code = m:save()
    t.eq(ok2, nil, "a second save of a handed-over manifest")
    t.eq(code, "EINVAL", "its code")
    want[i] = m:encode()
    m:close()
  end
  t.eq(saver:wait(), {}, "no failures")
  t.eq(saver:pending(), 0, "nothing pending after wait")
  for i = 1, 20 do
    t.eq(t.read(mpath(root, i)), want[i], "file of actor " .. i)
    -- the lock was released: a no-wait open succeeds
    local m = assert(M.open(actor(i), cfg))
    t.eq(#m:get_all_images(), 1, "reopened entries " .. i)
    t.eq(m:dirty(), false, "reopened clean " .. i)
    m:close()
  end
  -- no temp file left beside the manifests
  for _, f in ipairs(core.listdir(root .. "/actor_manifests")) do
    t.ok(not f:find(".tmp.", 1, true), "temp file left: " .. f)
  end
end)

t.test("the lock is held until the background write is done", function()
  local cfg, root = setup()
  local saver <close> = core.manifest_saver(1)
  local m = assert(M.open(actor(1), cfg))
  assert(m:add_image({ filename = actor(1) .. "_0.jpg", s3 = { md5 = string.rep("b", 32) } }))
  assert(m:save_async(saver))
  m:close()
  -- Either the write is still pending (then a no-wait open must fail
  -- LOCKED and the file is absent or whole), or it is done (then the open
  -- succeeds and sees the new version): never the new lock with the old file.
  local m2, msg, code = M.open(actor(1), cfg)
  if m2 then
    t.eq(#m2:get_all_images(), 1, "open after the write sees it")
    m2:close()
  else
    t.eq(code, "LOCKED", "open while the write is pending: " .. tostring(msg))
  end
  t.eq(saver:wait(), {}, "no failures")
  t.ok(t.read(mpath(root, 1)), "manifest written")
end)

t.test("a clean manifest is not handed over and keeps its lock", function()
  local cfg = setup()
  local saver <close> = core.manifest_saver()
  local m = assert(M.open(actor(2), cfg))
  assert(m:save())
  local ok, written = m:save_async(saver)
  t.eq(ok, true, "clean save_async")
  t.eq(written, false, "nothing written")
  t.eq(saver:pending(), 0, "nothing pending")
  local _, _, code = M.open(actor(2), cfg)
  t.eq(code, "LOCKED", "still locked by the open handle")
  m:close()
end)

t.test("a failed background write is reported by wait, lock released", function()
  local cfg, root = setup()
  local saver <close> = core.manifest_saver(2)
  local m = assert(M.open(actor(3), cfg))
  assert(m:add_image({ filename = actor(3) .. "_0.jpg", s3 = { md5 = string.rep("c", 32) } }))
  -- a non-empty directory where the manifest goes: the rename must fail
  assert(core.mkdirs(mpath(root, 3) .. "/x"))
  assert(m:save_async(saver))
  m:close()
  local fails = saver:wait()
  t.eq(#fails, 1, "one failure")
  t.eq(fails[1] and fails[1].actor, actor(3), "failure names the actor")
  t.eq(fails[1] and fails[1].path, mpath(root, 3), "failure names the path")
  t.ok(fails[1] and fails[1].message:find(mpath(root, 3), 1, true),
       "message names the manifest: " .. tostring(fails[1] and fails[1].message))
  t.ok(fails[1] and fails[1].code ~= "", "a code: " .. tostring(fails[1] and fails[1].code))
  t.eq(saver:wait(), {}, "failures are taken once")
  for _, f in ipairs(core.listdir(root .. "/actor_manifests")) do
    t.ok(not f:find(".tmp.", 1, true), "temp file left: " .. f)
  end
  -- the lock went with the failed job and was released: an open now gets
  -- past the lock (and fails on the directory in the manifest's place)
  local m2, msg, code = M.open(actor(3), cfg)
  if m2 then m2:close() end
  t.ok(code ~= "LOCKED", "lock released after the failure: " .. tostring(msg))
end)

t.test("misuse raises", function()
  local cfg = setup()
  local saver = core.manifest_saver()
  local m = assert(M.open(actor(4), cfg))
  t.checkerr(function() return m:save_async({}) end, "tdm.ManifestSaver")
  m:close()
  saver:close()
  saver:close()   -- twice is fine
  local m2 = assert(M.open(actor(4), cfg))
  assert(m2:add_image({ filename = actor(4) .. "_0.jpg", s3 = { md5 = string.rep("d", 32) } }))
  t.checkerr(function() return m2:save_async(saver) end, "closed manifest saver")
  m2:close()
  local ro = assert(M.open(actor(4), cfg, { read_only = true }))
  local s2 <close> = core.manifest_saver()
  t.checkerr(function() return ro:save_async(s2) end, "read-only")
  ro:close()
end)

return t.done()
