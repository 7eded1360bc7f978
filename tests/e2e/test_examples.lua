-- test_examples.lua -- the embedding examples under examples/ work: the
-- ops Lua script re-pulls stale out_of_sync images (and its --dry-run
-- changes nothing). The C example is built and run by test_install.sh.
local t = require "t"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "examples" }
local root, cfg, s3 = w.D, w.cfg, w.client
local env = string.format("TDM_DATA_ROOT=%s TDM_PREFIX=%s ", t.shq(root), t.shq(w.prefix))
local actor = "0031_example_actor"
local dir = w:tdir(actor)
assert(tdm.core.mkdirs(dir))

local function put(name, bytes)
  local src = root .. "/upload.tmp"
  t.write(src, bytes)
  assert(s3:put(src, tdm.s3.key_for(cfg, actor, name)))
  os.remove(src)
end

-- Two out_of_sync images: one stale (10 days old), one fresh.
local stale, fresh = actor .. "_0.jpg", actor .. "_1.jpg"
put(stale, "S3 version of image 0")
put(fresh, "S3 version of image 1")
t.write(dir .. "/" .. stale, "old local image 0")
t.write(dir .. "/" .. fresh, "new local image 1")
os.execute(string.format("touch -d '10 days ago' '%s/%s'", dir, stale))
do
  local m <close> = assert(tdm.Manifest.open(actor, cfg))
  for _, f in ipairs({ stale, fresh }) do
    local h = assert(s3:head(tdm.s3.key_for(cfg, actor, f)))
    assert(m:add_image { filename = f, ["local"] = true,
                         s3 = { md5 = h.md5, etag = h.etag, size = h.size,
                                mtime = h.last_modified } })
  end
  assert(m:save())
end

local function status_of(name)
  local m <close> = assert(tdm.Manifest.open(actor, cfg))
  return m:get_image(name).status
end

local function run(args)
  local p = io.popen(env .. "tdm-lua examples/repull_out_of_sync.lua " .. args .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

t.test("fixture starts out_of_sync", function()
  t.eq(status_of(stale), "out_of_sync", "stale image status")
  t.eq(status_of(fresh), "out_of_sync", "fresh image status")
end)

t.test("--dry-run changes nothing", function()
  local before = t.read(dir .. "/" .. stale)
  local out, code = run("--days 7 --dry-run")
  t.eq(code, 0, "exit code (output: " .. out .. ")")
  t.ok(out:find("would re-pull", 1, true), "plan printed: " .. out)
  t.eq(t.read(dir .. "/" .. stale), before, "stale file unchanged")
  t.eq(status_of(stale), "out_of_sync", "status unchanged")
end)

t.test("stale images are re-pulled, fresh ones kept", function()
  local out, code = run("--days 7")
  t.eq(code, 0, "exit code (output: " .. out .. ")")
  t.eq(t.read(dir .. "/" .. stale), "S3 version of image 0", "stale file replaced by S3's")
  t.eq(status_of(stale), "synced", "stale image now synced")
  t.eq(t.read(dir .. "/" .. fresh), "new local image 1", "fresh file kept")
  t.eq(status_of(fresh), "out_of_sync", "fresh image still out_of_sync")
end)

s3:close()
return t.done()
