-- test_sync_prehash.lua -- hashing ahead (core.prehash), which bulk runs
-- of tdm.Sync use to hash new actors' files on every core while the S3
-- listing arrives: a scan takes an MD5 from it only for exactly the file
-- that was hashed; anything changed, racy or not reached is hashed by the
-- scan itself, so the manifest is the same either way.
local t = require "t"
local tdm = require "tdm"
local core = tdm.core
local M = tdm.Manifest

local function actor(i) return string.format("%04d_prehash_actor", i) end

-- A tree of `n` actors with `k` files each; returns cfg, root, dirs,
-- contents (actor name -> filename -> bytes).
local function tree(n, k)
  local root = t.tmpdir() .. "/data"
  local dirs, contents = {}, {}
  for i = 1, n do
    local dir = root .. "/actors/" .. actor(i) .. "/training_data"
    assert(core.mkdirs(dir))
    dirs[i] = dir
    contents[actor(i)] = {}
    for j = 0, k - 1 do
      local fn = actor(i) .. "_" .. j .. ".jpg"
      local data = string.rep(string.char(65 + (i + j) % 26), 1000 + 37 * j) .. fn
      t.write(dir .. "/" .. fn, data)
      contents[actor(i)][fn] = data
    end
  end
  return { data_root = root, lock_timeout = 5 }, root, dirs, contents
end

-- Let the files settle (the prehash leaves files changed in the last 0.1 s
-- to the scan).
local function settle() t.sh("sleep 0.3") end

local function wait_hashed(p, n)
  local deadline = core.now() + 20
  while p:stats().hashed < n and core.now() < deadline do t.sh("sleep 0.02") end
end

-- Scan actor i with the prehash; check every entry's MD5 against the bytes.
local function scan_check(cfg, i, p, contents, what)
  local m = assert(M.open(actor(i), cfg))
  local rep = assert(m:scan_local({ prehash = p, jobs = 2 }))
  for fn, data in pairs(contents[actor(i)]) do
    local e = m:get_image(fn)
    t.eq(e and e.local_md5, tdm.md5(data), what .. ": md5 of " .. fn)
  end
  m:close()
  return rep
end

t.test("scans take the MD5s hashed ahead, all of them", function()
  local cfg, _, dirs, contents = tree(5, 6)
  settle()
  local p <close> = core.prehash(dirs, 2, 8)
  wait_hashed(p, 30)
  t.eq(p:stats().hashed, 30, "files hashed ahead")
  for i = 1, 5 do
    local rep = scan_check(cfg, i, p, contents, "actor " .. i)
    t.eq(rep.hashed, 6, "actor " .. i .. ": files counted as hashed")
  end
  t.eq(p:stats().taken, 30, "MD5s taken from the prehash")
end)

t.test("a file changed after it was hashed ahead is hashed again", function()
  local cfg, _, dirs, contents = tree(2, 4)
  settle()
  local p <close> = core.prehash(dirs, 2, 8)
  wait_hashed(p, 8)
  -- same size, different bytes: only the stat (mtime/ctime) tells
  local fn = actor(1) .. "_2.jpg"
  local old = contents[actor(1)][fn]
  local new = string.rep("z", #old)
  t.write(dirs[1] .. "/" .. fn, new)
  contents[actor(1)][fn] = new
  scan_check(cfg, 1, p, contents, "changed file")
  scan_check(cfg, 2, p, contents, "untouched actor")
  t.eq(p:stats().taken, 7, "the changed file was not taken")
end)

t.test("racy files, skipped folders and other orders stay correct", function()
  local cfg, _, dirs, contents = tree(6, 3)
  -- no settling: every file is racy for the prehash at first
  local p <close> = core.prehash(dirs, 2, 2)
  -- scan out of order: 4 (skips 1-3), then 1, 6, 2 (behind the cursor)
  for _, i in ipairs({ 4, 1, 6, 2 }) do
    scan_check(cfg, i, p, contents, "actor " .. i)
  end
  t.ok(p:stats().taken <= p:stats().hashed, "taken <= hashed")
  -- a folder not in the list, and a list with a missing folder
  local q <close> = core.prehash({ dirs[3] .. "-gone", dirs[5] }, 1)
  settle()
  scan_check(cfg, 5, q, contents, "actor 5")
  scan_check(cfg, 3, q, contents, "actor 3 (not listed)")
end)

t.test("an empty list, closing twice, misuse", function()
  local p = core.prehash({})
  t.eq(p:stats(), { taken = 0, hashed = 0 }, "empty prehash stats")
  p:close()
  p:close()
  t.checkerr(function() return p:stats() end, "closed prehash")
  t.checkerr(function() return core.prehash({ 1 }) end, "not a string")
  local cfg = tree(1, 1)
  local m = assert(M.open(actor(1), cfg))
  t.checkerr(function() return m:scan_local({ prehash = {} }) end, "tdm.Prehash")
  m:close()
end)

return t.done()
