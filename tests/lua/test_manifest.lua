-- test_manifest.lua -- tdm.Manifest as Lua sees it: actor resolution,
-- the contract's methods and return shapes, misuse raising, failures
-- returning nil, msg, code with files unchanged.
local t = require "t"

local before = {}
for k in pairs(_G) do before[k] = true end
local tdm = require "tdm"
local M = tdm.Manifest

local ACTOR = "0042_european_30_male"

local function setup()
  local root = t.tmpdir() .. "/data"
  local dir = root .. "/actors/" .. ACTOR .. "/training_data"
  assert(tdm.core.mkdirs(dir))
  return { data_root = root }, root, dir
end

local function md5sum(s) return tdm.md5(s) end

t.test("module writes no globals", function()
  local _ = tdm.Manifest
  for k in pairs(_G) do
    t.ok(before[k], "global '" .. tostring(k) .. "' was not created")
  end
end)

t.test("actor resolution: 42, '42', '0042', full name", function()
  local cfg, root = setup()
  for _, a in ipairs({ 42, "42", "0042", ACTOR }) do
    local p = assert(M.paths(a, cfg))
    t.eq(p.name, ACTOR, "name of " .. tostring(a))
    t.eq(p.id, "0042", "id of " .. tostring(a))
    t.eq(p.manifest, root .. "/actor_manifests/0042_manifest.json",
         "manifest path")
    t.eq(p.dir, root .. "/actors/" .. ACTOR .. "/training_data", "dir")
  end
  local p, msg, code = M.paths(7, cfg)
  t.eq(p, nil, "unknown actor")
  t.eq(code, "ENOACTOR", "unknown actor code")
  t.ok(msg:find("0007", 1, true), "message names the id: " .. msg)
  assert(tdm.core.mkdirs(root .. "/actors/0042_other"))
  local _, msg2, code2 = M.paths(42, cfg)
  t.eq(code2, "ENOACTOR", "ambiguous code")
  t.ok(msg2:find("ambiguous", 1, true), "ambiguous message: " .. msg2)
  -- once a manifest exists, its character_name decides
  local m = assert(M.open(ACTOR, cfg))
  assert(m:save())
  m:close()
  t.eq(assert(M.paths(42, cfg)).name, ACTOR, "name from the manifest")
  t.checkerr(function() return M.paths("../x", cfg) end, "actor name")
  t.checkerr(function() return M.paths({}, cfg) end, "must be an integer")
end)

t.test("open, add, get, statistics, save, reopen", function()
  local cfg, root, dir = setup()
  local m <close> = assert(M.open(42, cfg))
  t.eq(m:actor_id(), "0042", "actor_id")
  t.eq(m:actor_name(), ACTOR, "actor_name")
  t.eq(m:exists(), false, "exists before the first save")
  t.eq(m:path(), root .. "/actor_manifests/0042_manifest.json", "path")
  t.write(dir .. "/" .. ACTOR .. "_0.jpg", "hello")
  local e = assert(m:add_image{ filename = ACTOR .. "_0.jpg",
                                ["local"] = true, s3 = false })
  t.eq(e.md5_hash, md5sum("hello"), "md5 hashed from the file")
  t.eq(e.size_bytes, 5, "size from the file")
  t.eq(e.status, "local_only", "status")
  t.eq(e.index, 0, "index")
  t.eq(e.local_md5, md5sum("hello"), "local_md5")
  t.eq(e.local_path, "data/actors/" .. ACTOR .. "/training_data/"
       .. ACTOR .. "_0.jpg", "local_path in the seed's form, any data_root")
  local s3 = { md5 = md5sum("x"), size = 1, mtime = 1729176000.0 }
  assert(m:add_image{ filename = ACTOR .. "_10.jpg", s3 = s3,
                      ["local"] = false })
  assert(m:add_image{ filename = ACTOR .. "_2.png", s3 = s3,
                      ["local"] = { md5 = md5sum("x"), size = 1,
                                    mtime = 1.5 } })
  local all = m:get_all_images()
  t.eq(#all, 3, "three images")
  t.eq({ all[1].index, all[2].index, all[3].index }, { 0, 2, 10 },
       "ordered by index")
  t.eq(all[2].status, "synced", "synced")
  t.eq(all[3].status, "s3_only", "s3_only")
  t.eq(all[3].modified_date, "2024-10-17T14:40:00.000000", "modified_date")
  t.eq(m:statistics(), {
    training_images_count = 3, training_data_size_mb = 0.0,
    training_synced_count = 1, training_local_only_count = 1,
    training_s3_only_count = 1, training_out_of_sync_count = 0,
    training_missing_count = 0 }, "statistics")
  local _, msg, code = m:add_image{ filename = ACTOR .. "_0.jpg",
                                    ["local"] = false }
  t.eq(code, "EEXIST", "duplicate add")
  t.ok(msg:find(ACTOR .. "_0.jpg", 1, true), "message names the file")
  t.eq(m:dirty(), true, "dirty")
  local ok, written = m:save()
  t.eq({ ok, written }, { true, true }, "save writes")
  t.eq({ m:save() }, { true, false }, "second save does not write")
  t.eq(m:get_image("nope.jpg"), nil, "get_image of an unknown file")
  m:close()
  t.checkerr(function() return m:get_all_images() end, "closed manifest")
  m:close()  -- twice is fine

  local m2 <close> = assert(M.open("0042", cfg))
  t.eq(m2:exists(), true, "exists after save")
  t.eq(m2:dirty(), false, "clean after reopen")
  t.eq(#m2:get_all_images(), 3, "entries kept")
  local doc = assert(M.load(m2:path(), cfg))
  t.eq(doc.character_name, ACTOR, "load: character_name")
  t.eq(#doc.training_data, 3, "load: entries")
  t.eq(doc.statistics.training_synced_count, 1, "load: statistics")
end)

t.test("update_image, remove_image, add_generation", function()
  local cfg = setup()
  local m <close> = assert(M.open(42, cfg))
  local f = function(i) return ACTOR .. "_" .. i .. ".jpg" end
  local s3 = { md5 = md5sum("a"), size = 1, mtime = 10.0 }
  t.eq(m:add_generation{ { filename = f(1), s3 = s3 },
                         { filename = f(2), s3 = s3 } }, 2, "generation")
  local n, msg, code = m:add_generation{ { filename = f(3), s3 = s3 },
                                         { filename = f(1), s3 = s3 } }
  t.eq({ n, code }, { nil, "EEXIST" }, "generation with a duplicate")
  t.ok(msg:find(f(1), 1, true), "names the duplicate: " .. msg)
  t.eq(m:get_image(f(3)), nil, "all or nothing")
  local e = assert(m:update_image(f(1), { ["local"] = { md5 = md5sum("b"),
                                          size = 1, mtime = 11.0 } }))
  t.eq(e.status, "out_of_sync", "local differs from S3")
  t.eq(e.md5_hash, md5sum("b"), "md5_hash is the local md5")
  e = assert(m:update_image(f(1), { s3 = { md5 = md5sum("b"), size = 1 } }))
  t.eq(e.status, "synced", "after upload")
  e = assert(m:update_image(f(1), { ["local"] = false, s3 = false }))
  t.eq(e.status, "missing", "nowhere")
  t.eq(e.md5_hash, md5sum("b"), "missing keeps its md5")
  t.eq(m:statistics().training_missing_count, 1, "missing counted")
  local r, msg2, code2 = m:update_image("nope.jpg", { s3 = false })
  t.eq({ r, code2 }, { nil, "ENOENT" }, "update unknown")
  t.ok(msg2:find("nope.jpg", 1, true), "message names it")
  t.eq(m:remove_image(f(2)), true, "remove")
  t.eq(select(3, m:remove_image(f(2))), "ENOENT", "remove twice")
end)

t.test("misuse raises", function()
  local cfg = setup()
  local m <close> = assert(M.open(42, cfg))
  local function raises(fn, pat)
    local ok, err = pcall(fn)
    t.ok(not ok, "expected a raise matching " .. pat)
    t.ok(tostring(err):find(pat, 1, true), "raise '" .. tostring(err)
         .. "' contains '" .. pat .. "'")
  end
  raises(function() m:update_image(ACTOR .. "_1.jpg", { status = "synced" })
         end, "unknown field 'status'")
  raises(function() m:add_image{ filename = "x_1.jpg", color = 1 } end,
         "unknown field 'color'")
  raises(function() m:add_image{ filename = 5 } end, "'filename' must be")
  raises(function() m:add_image{ filename = "x_1.jpg", s3 = { sz = 1 } } end,
         "unknown field 'sz'")
  raises(function() m:add_image{ filename = "x_1.jpg", s3 = 7 } end,
         "'s3' must be a table")
  raises(function() m:scan_local{ fast = true } end, "unknown option")
  raises(function() M.open(42, cfg, { timeout = 1 }) end, "unknown option")
  raises(function() M.open(42, { no_such_setting = 1 }) end,
         "unknown setting")
  t.checkerr(function()
    return m:add_image{ filename = "x_1.jpg", s3 = { md5 = "XYZ" } }
  end, "not 32 lower-case hex")
  t.checkerr(function() return m:add_image{ filename = "../x_1.jpg" } end,
             "path separator")
  t.checkerr(function() return m:add_image{ filename = "x.txt" } end,
             "is not an image")
end)

t.test("lock: a second open waits, then LOCKED with the pid", function()
  local cfg = setup()
  local m = assert(M.open(42, cfg))
  local t0 = tdm.core.now()
  local m2, msg, code = M.open(42, cfg, { lock_timeout = 0.3 })
  t.eq({ m2, code }, { nil, "LOCKED" }, "second open")
  t.ok(tdm.core.now() - t0 >= 0.25, "waited for the timeout")
  t.ok(msg:find("pid", 1, true), "message names the holder: " .. msg)
  m:close()
  local m3 = assert(M.open(42, cfg, { lock_timeout = 0.3 }))
  m3:close()
  do
    local m4 <close> = assert(M.open(42, cfg))
  end
  assert(M.open(42, cfg, { lock_timeout = 0 })):close()
end)

t.test("read_only: nothing created or written, save raises", function()
  local cfg, root, dir = setup()
  local mdir = root .. "/actor_manifests"
  t.write(dir .. "/" .. ACTOR .. "_0.jpg", "zero")
  local m = assert(M.open(42, cfg, { read_only = true }))
  t.eq({ m:read_only(), m:exists() }, { true, false }, "read_only, exists")
  local r = assert(m:scan_local())
  t.eq(r.added, { ACTOR .. "_0.jpg" }, "scan adds in memory")
  t.eq(m:get_image(ACTOR .. "_0.jpg").status, "local_only", "derived status")
  local ok, err = pcall(m.save, m)
  t.ok(not ok and tostring(err):find("read-only", 1, true),
       "save raises 'read-only', got " .. tostring(err))
  m:close()
  t.eq(tdm.core.stat(mdir), nil, "actor_manifests/ after a read-only open")
  -- a manifest saved by a writer, its lock file removed
  local w = assert(M.open(42, cfg))
  assert(w:scan_local())
  assert(w:save())
  t.eq(w:read_only(), false, "writer's read_only()")
  w:close()
  local mpath = mdir .. "/0042_manifest.json"
  local bytes = t.read(mpath)
  assert(os.remove(mpath .. ".lock"))
  w = assert(M.open(42, cfg))   -- holds the exclusive lock
  local t0 = tdm.core.now()
  m = assert(M.open(42, cfg, { read_only = true, lock_timeout = 5 }))
  t.ok(tdm.core.now() - t0 < 2, "read-only open did not wait for the writer")
  w:close()
  t.eq(m:exists(), true, "exists")
  t.eq(#m:get_all_images(), 1, "entries read")
  assert(m:remove_image(ACTOR .. "_0.jpg"))
  t.eq(m:dirty(), true, "dirty in memory")
  ok = pcall(m.save, m)
  t.ok(not ok, "save of a changed read-only manifest raises")
  m:close()
  assert(os.remove(mpath .. ".lock"))
  assert(M.open(ACTOR, cfg, { read_only = true })):close()
  t.eq(tdm.core.stat(mpath .. ".lock"), nil, "lock file after read-only open")
  t.eq(t.read(mpath), bytes, "manifest bytes after read-only opens")
end)

t.test("scan_local report", function()
  local cfg, _, dir = setup()
  t.write(dir .. "/" .. ACTOR .. "_0.jpg", "zero")
  t.write(dir .. "/" .. ACTOR .. "_1.webp", "one")
  t.write(dir .. "/response.json", "{}")
  t.write(dir .. "/.hidden.png", "h")
  local m <close> = assert(M.open(42, cfg))
  local r = assert(m:scan_local{ jobs = 2 })
  table.sort(r.added)
  t.eq(r.added, { ACTOR .. "_0.jpg", ACTOR .. "_1.webp" }, "added")
  t.eq({ r.hashed, r.reused, r.bytes_hashed }, { 2, 0, 7 }, "counts")
  t.eq({ #r.changed, #r.vanished, #r.skipped }, { 0, 0, 0 }, "others")
  os.remove(dir .. "/" .. ACTOR .. "_1.webp")
  r = assert(m:scan_local{ verify = true })
  t.eq(r.vanished, { ACTOR .. "_1.webp" }, "vanished")
  t.eq(m:get_image(ACTOR .. "_1.webp").status, "missing", "marked missing")
end)

t.test("bad manifests: nil, message, BADMANIFEST; file unchanged", function()
  local cfg, root = setup()
  assert(tdm.core.mkdirs(root .. "/actor_manifests"))
  local path = root .. "/actor_manifests/0042_manifest.json"
  t.write(path, '{"character_id": "0042", "character_name": "' .. ACTOR
          .. '", "training_data": [{"filename": "a.jpg", "status": 3}]}')
  local msg = t.checkerr(function() return M.open(ACTOR, cfg) end,
                         path .. ": line 1 column 119: expected a string "
                         .. "for 'status'", { path })
  t.ok(msg, "message")
  local _, _, code = M.open(ACTOR, cfg)
  t.eq(code, "BADMANIFEST", "code")
  t.checkerr(function() return M.load(path, cfg) end, "expected a string",
             { path })
  t.write(path, '{"character_id": "0042", "chara')
  t.checkerr(function() return M.open(ACTOR, cfg) end,
             path .. ": line 1 column 31: premature end of input", { path })
end)

return t.done()
