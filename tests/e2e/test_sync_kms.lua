-- test_sync_kms.lua -- a bucket whose ETags are not MD5s (SSE-KMS, through
-- tests/lib/awsproxy.js): pull-all and push-all end with every status
-- synced, a second run transfers nothing and asks S3 nothing (a listing
-- ETag is a change token; what it stands for is remembered in the
-- manifest's sidecar), and an object nothing vouches for is counted.
local t = require "t"
local tdm = require "tdm"
local cjson = require "cjson"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local w = e2e.world { tag = "tdmtest-kms" }
local p = e2e.fp.start_aws { modes = "sse-kms" }
local NAME = "0042_kms_actor"
local EP = "--endpoint-url " .. p.url .. " "

local function heads()
  local n = 0
  for line in (t.read(p.dir .. "/log") or ""):gmatch("[^\n]+") do
    if line:match("^HEAD .* op=head$") then n = n + 1 end
  end
  return n
end

local function summary(out)
  local last
  for line in out:gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, line)
    if ok and type(v) == "table" and v.summary then last = v.summary end
    if ok and type(v) == "table" and v.downloaded then last = v end
  end
  return last
end

local function statuses()
  local m = assert(tdm.Manifest.load(w:mpath(NAME), w.cfg))
  local s = {}
  for _, e in ipairs(m.training_data) do s[e.filename] = e.status end
  return s
end

-- three images tdm pushed (x-amz-meta-md5), one another tool did (nothing)
local pc = assert(tdm.s3.client({ endpoint = p.url, data_root = w.D,
                                  prefix = w.prefix }))
local src = w.tmp .. "/src"
assert(tdm.core.mkdirs(src))
for i = 1, 3 do
  t.write(src .. "/" .. i, "kms image " .. i)
  assert(pc:put(src .. "/" .. i, w:key(NAME, NAME .. "_" .. i .. ".jpg")))
end
t.write(src .. "/4", "another tool's image")
local ok = os.execute(string.format(
  "aws --endpoint-url %s s3api put-object --bucket story-boards-assets " ..
  "--key %s --body %s >/dev/null", p.url, w:key(NAME, NAME .. "_4.jpg"),
  src .. "/4"))
assert(ok, "aws s3api put-object")

t.test("pull-all through SSE-KMS: all synced, the unverified one counted", function()
  local rc, out, err = w:tdm(EP .. "pull-all --json")
  t.eq(rc, 0, "pull-all: " .. err)
  local s = summary(out)
  t.ok(s, "a JSON summary: " .. out:sub(-400))
  t.eq(s.downloaded, 4, "downloaded")
  t.eq(s.unverified, 1, "the object nothing vouches for is counted")
  for fn, st in pairs(statuses()) do t.eq(st, "synced", fn) end
end)

t.test("a second pull-all transfers nothing and asks S3 nothing", function()
  local before = heads()
  local rc, out, err = w:tdm(EP .. "pull-all --json")
  t.eq(rc, 0, "pull-all: " .. err)
  local s = summary(out)
  t.ok(s, "a JSON summary: " .. out:sub(-600))
  t.eq(s.downloaded or 0, 0, "nothing downloaded")
  t.eq(heads() - before, 0, "no HEAD: the ETags are remembered")
  for fn, st in pairs(statuses()) do t.eq(st, "synced", fn) end
end)

t.test("push-all and sync-manifests through SSE-KMS end synced", function()
  t.write(w:lpath(NAME, NAME .. "_5.jpg"), "\255\216\255\224\0\16JFIF\0a new local image")
  local rc, out, err = w:tdm(EP .. "push-all --json")
  t.eq(rc, 0, "push-all: " .. err)
  t.eq(summary(out).uploaded, 1, "uploaded the new one")
  local before = heads()
  rc, out, err = w:tdm(EP .. "push-all --json")
  t.eq(rc, 0, "second push-all: " .. err)
  t.eq(summary(out).uploaded or 0, 0, "nothing uploaded again")
  rc, _, err = w:tdm(EP .. "sync-manifests")
  t.eq(rc, 0, "sync-manifests: " .. err)
  t.eq(heads() - before, 0, "no HEADs")
  local s = statuses()
  t.eq(s[NAME .. "_5.jpg"], "synced", "the pushed one")
  for fn, st in pairs(s) do t.eq(st, "synced", fn) end
end)

p:stop()
return t.done()
