-- test_pull_noop.lua -- a pull-all right after a pull-all is a true no-op:
-- downloaded files carry the object's Last-Modified as their mtime, so
-- they are older than the manifest saves that record them and the racy
-- rule has nothing to re-hash; no manifest is rewritten.
local t = require "t"
local tdm = require "tdm"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "e2e-noop" }
local src, D, cfg, s3 = w.tmp, w.D, w.cfg, w.client

-- 3 actors x 4 objects, put straight into the bucket.
local jobs = {}
for a = 1, 3 do
  local name = string.format("%04d_noop_actor", 700 + a)
  for i = 0, 3 do
    local path = string.format("%s/%s_%d.jpg", src, name, i)
    t.write(path, string.rep(string.char(65 + a + i), 3000 + 100 * i))
    jobs[#jobs + 1] = { op = "put", path = path,
                        key = tdm.s3.key_for(cfg, name, string.format("%s_%d.jpg", name, i)) }
  end
end
for _, r in ipairs((s3:transfer(jobs))) do assert(r.ok, r.error) end
-- Objects written in the last second are racy by design (Last-Modified
-- has whole seconds); a cron pull sees older ones, as here.
os.execute("sleep 1.2")

local function pull_all()
  local rc, out = w:tdm("pull-all --json")
  local _, summary = e2e.json_lines(out)
  return rc, summary or {}
end

t.test("pull-all then an immediate no-op pull-all", function()
  local rc, first = pull_all()
  t.eq(rc, 0, "first pull-all exit code")
  t.eq(first.downloaded, 12, "files downloaded")
  local second
  rc, second = pull_all()
  t.eq(rc, 0, "second pull-all exit code")
  t.eq(second.files_hashed or 0, 0, "files hashed by the no-op")
  t.eq(second.manifests_written or 0, 0, "manifests written by the no-op")
  t.eq(second.downloaded or 0, 0, "files downloaded by the no-op")
end)

t.test("a downloaded file's mtime is the object's Last-Modified", function()
  local name = "0701_noop_actor"
  local h = assert(s3:head(tdm.s3.key_for(cfg, name, name .. "_0.jpg")))
  local st = assert(tdm.core.stat(D .. "/actors/" .. name .. "/training_data/" .. name .. "_0.jpg"))
  t.ok(math.abs(st.mtime - h.last_modified) < 1.0,
       string.format("mtime %.3f vs Last-Modified %.3f", st.mtime, h.last_modified))
end)

s3:close()
return t.done()
