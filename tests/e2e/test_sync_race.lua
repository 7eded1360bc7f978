-- test_sync_race.lua -- a refresh or a pull never records a fact older
-- than the manifest state it overwrites: the HTTP API (or anyone holding
-- the manifest's lock) may upload or delete a file between the S3 listing
-- of a run and the moment the run takes the lock or records a download.
-- Each race is made deterministic through Sync's before_lock seam (runs
-- after the listing, before the lock) and the reporter's download event.
local t = require "t"
local core = require "tdm.core"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { prefix = e2e.prefix("e2e-syncrace") .. "/training_data" }
local cfg, client = w.cfg, w.client

local function lpath(name, fn) return w:lpath(name, fn) end
local function key(name, fn) return w:key(name, fn) end

local function entries(name)
  local m = assert(tdm.Manifest.open(name, cfg))
  local by = {}
  for _, e in ipairs(m:get_all_images()) do by[e.filename] = e end
  m:close()
  return by
end

-- What the API's upload does: write the file, upload it, record it synced
-- (all under the manifest's lock).
local function api_upload(name, fn, data)
  local m = assert(tdm.Manifest.open(name, cfg))
  assert(core.mkdirs(w:tdir(name)))
  t.write(lpath(name, fn), data)
  local put = assert(client:put(lpath(name, fn), key(name, fn)))
  local facts = { ["local"] = true, s3 = { md5 = put.md5, etag = put.etag,
                                           size = put.bytes, mtime = core.now() } }
  if m:get_image(fn) then assert(m:update_image(fn, facts))
  else facts.filename = fn; assert(m:add_image(facts)) end
  assert(m:save())
  m:close()
end

-- What the API's delete with s3 does: local file, object, entry.
local function api_delete(name, fn)
  local m = assert(tdm.Manifest.open(name, cfg))
  os.remove(lpath(name, fn))
  assert(client:delete(key(name, fn)))
  assert(m:remove_image(fn))
  assert(m:save())
  m:close()
end

local function status(by, fn) return by[fn] and by[fn].status end

-- A new Sync, and actor `name` with NAME_1.jpg and NAME_2.jpg uploaded and
-- recorded synced through the API: the start of the delete races.
local function sync_with_two_files(name)
  local sync = tdm.Sync.new(cfg)
  api_upload(name, name .. "_1.jpg", "one")
  api_upload(name, name .. "_2.jpg", "two")
  return sync
end

t.test("refresh: a file uploaded and recorded after the listing stays synced", function()
  local name = "0101_race_up"
  local sync = tdm.Sync.new(cfg)
  -- A local-only file the manifest knows, then the API uploads it and a
  -- new file between the listing and the lock.
  assert(core.mkdirs(w:tdir(name)))
  t.write(lpath(name, name .. "_1.jpg"), "one")
  assert(sync:auto_initialize_manifest(name))
  t.eq(status(entries(name), name .. "_1.jpg"), "local_only", "before: local_only")
  sync.before_lock = function(n)
    if n ~= name then return end
    api_upload(name, name .. "_1.jpg", "one")
    api_upload(name, name .. "_2.jpg", "two")
  end
  local rep = assert(sync:auto_initialize_manifest(name))
  sync.before_lock = nil
  local by = entries(name)
  t.eq(status(by, name .. "_1.jpg"), "synced", "uploaded file after the refresh")
  t.eq(status(by, name .. "_2.jpg"), "synced", "new uploaded file after the refresh")
  t.eq(#rep.s3_gone, 0, "nothing reported gone from S3")
  t.eq(#rep.confirmed, 2, "both disagreements confirmed with HEAD")
  -- The same race through the bulk engine (sync-manifests' path).
  sync.before_lock = function(n)
    if n == name then api_upload(name, name .. "_3.jpg", "three") end
  end
  local T = sync:run({ actors = { name } })
  sync.before_lock = nil
  t.eq(T.actor_errors, 0, "run: no actor error")
  t.eq(status(entries(name), name .. "_3.jpg"), "synced", "run: uploaded file stays synced")
  -- No disagreement, no HEAD: a second refresh confirms nothing.
  local again = assert(sync:auto_initialize_manifest(name))
  t.eq(#again.confirmed, 0, "an agreeing listing is trusted (no HEAD)")
end)

t.test("refresh: a file deleted after the listing is not brought back", function()
  local name = "0102_race_del"
  local sync = sync_with_two_files(name)
  sync.before_lock = function(n)
    if n == name then api_delete(name, name .. "_1.jpg") end
  end
  local rep = assert(sync:auto_initialize_manifest(name))
  sync.before_lock = nil
  local by = entries(name)
  t.eq(by[name .. "_1.jpg"], nil, "deleted entry not re-added from the old listing")
  t.eq(status(by, name .. "_2.jpg"), "synced", "the other file")
  t.eq(#rep.s3_added, 0, "nothing added from S3")
end)

t.test("pull: a download recorded after the API deleted the file is not resurrected", function()
  local name = "0103_race_pull"
  local sync = sync_with_two_files(name)
  -- Make both s3_only: remove the local files, refresh.
  os.remove(lpath(name, name .. "_1.jpg"))
  os.remove(lpath(name, name .. "_2.jpg"))
  assert(sync:auto_initialize_manifest(name))
  t.eq(status(entries(name), name .. "_1.jpg"), "s3_only", "before: s3_only")
  local r = { fail = function(_, a, f, msg) error("unexpected failure " .. tostring(a)
                                                   .. "/" .. tostring(f) .. ": " .. tostring(msg)) end,
              progress = function() end }
  function r.event(_, ev)
    if ev.action == "download" and ev.result == "ok" and ev.file == name .. "_1.jpg" then
      api_delete(name, name .. "_1.jpg")
    end
  end
  local T = sync:run({ direction = "pull", actors = { name }, reporter = r })
  t.eq(T.downloaded, 2, "two downloads")
  local by = entries(name)
  t.eq(by[name .. "_1.jpg"], nil, "the deleted file's entry stays deleted")
  t.eq(status(by, name .. "_2.jpg"), "synced", "the other file synced")
end)

os.exit(t.done())
