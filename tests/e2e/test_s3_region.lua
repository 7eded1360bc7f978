-- test_s3_region.lua -- a client configured for the wrong region works
-- (issue 18): S3's AuthorizationHeaderMalformed (400) or PermanentRedirect
-- (301), each with x-amz-bucket-region, makes it sign for the bucket's
-- region, once per client, and say so once. Against tests/lib/awsproxy.js
-- (region=eu-central-1) in front of the harness's s3rver.
local t = require "t"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local PREFIX = e2e.prefix("tdmtest-region") .. "/"
local dir = t.tmpdir()
local src = dir .. "/a.jpg"
t.write(src, "bytes in eu-central-1")

local function client(p)
  local notices = {}
  local c = assert(tdm.s3.client({ endpoint = p.url, region = "us-west-1" }))
  c.on_notice = function(msg) notices[#notices + 1] = msg end
  return c, notices
end

for _, redirect in ipairs { 0, 1 } do
  local how = redirect == 1 and "301 PermanentRedirect" or
              "400 AuthorizationHeaderMalformed"
  t.test(how .. ": re-signed for the bucket's region, said once", function()
    local p = e2e.fp.start_aws { modes = "region=eu-central-1", redirect = redirect }
    local c, notices = client(p)
    t.eq(c:region(), "us-west-1", "signs for the configured region first")
    local r, err = c:put(src, PREFIX .. redirect .. "/a.jpg")
    t.ok(r, "put: " .. tostring(err))
    t.eq(r.attempts, 1, "the re-signed request is not a retry")
    local now, configured = c:region()
    t.eq(now, "eu-central-1", "now signs for the bucket's region")
    t.eq(configured, "us-west-1", "and remembers what was configured")
    local h = assert(c:head(PREFIX .. redirect .. "/a.jpg"))
    t.eq(h.md5, tdm.md5("bytes in eu-central-1"), "head")
    assert(c:get(PREFIX .. redirect .. "/a.jpg", dir .. "/back.jpg"))
    t.eq(t.read(dir .. "/back.jpg"), "bytes in eu-central-1", "get")
    t.eq(#notices, 1, "said once: " .. table.concat(notices, " | "))
    t.ok(notices[1]:find("eu-central-1", 1, true) and
         notices[1]:find("us-west-1", 1, true), notices[1])
    -- a missing key after the switch is an honest 404
    local none, _, code = c:head(PREFIX .. redirect .. "/none.jpg")
    t.eq(none, nil, "missing")
    t.eq(code, "S3_NoSuchKey", "code")
    -- a fresh client finds it out for itself (once per client)
    local c2, n2 = client(p)
    local res = c2:transfer({ { op = "get", key = PREFIX .. redirect .. "/a.jpg",
                                path = dir .. "/back2.jpg" } })
    t.ok(res[1].ok, "transfer: " .. tostring(res[1].error))
    t.eq((c2:region()), "eu-central-1", "switched")
    t.eq(#n2, 1, "said once")
    -- a HEAD first: its answer has no body, the header says the region
    local c3 = client(p)
    local h3, herr = c3:head(PREFIX .. redirect .. "/a.jpg")
    t.ok(h3, "head on a fresh client: " .. tostring(herr))
    t.eq((c3:region()), "eu-central-1", "switched by a HEAD")
    p:stop()
  end)
end

t.test("public URL: the bucket's region as S3 says it, remembered", function()
  local p = e2e.fp.start_aws { modes = "region=eu-central-1" }
  local root = dir .. "/root-eu"
  assert(tdm.core.mkdirs(root))
  local cfg = assert(tdm.config { data_root = root, endpoint = p.url,
                                  region = "us-west-1" })
  t.eq(cfg.public_url_base,
       "https://story-boards-assets.s3.us-west-1.amazonaws.com",
       "before any client: the configured region, no request made")
  t.eq(p:stats().requests, 0, "a local-only use asks nothing")
  assert(tdm.s3.client(cfg)):close()
  t.eq(cfg.public_url_base,
       "https://story-boards-assets.s3.eu-central-1.amazonaws.com",
       "from x-amz-bucket-region, not the configured us-west-1")
  t.eq(cfg:source("public_url_base"), "derived from the bucket's region",
       "source")
  t.eq(tdm.core.stat(root .. "/.tdm-bucket-region.story-boards-assets@"
                     .. p.url:gsub("[^%w%.%-_@]", "_")), nil,
       "asking writes nothing (a dry run changes nothing)")
  tdm.s3.remember_bucket_region(cfg)
  p:stop()
  local again = assert(tdm.config { data_root = root, endpoint = p.url,
                                    region = "ap-south-1" })
  t.eq(again.public_url_base,
       "https://story-boards-assets.s3.eu-central-1.amazonaws.com",
       "remembered under the data root: no request, no signing region")
  local set = assert(tdm.config { data_root = root, endpoint = p.url,
                                  public_url_base = "https://cdn.example/x/" })
  t.eq(set.public_url_base, "https://cdn.example/x", "an explicit base wins")
end)

t.test("s3_url does not follow the signing region (issue 15)", function()
  local w = e2e.world { tag = "tdmtest-url", fixture = { seed = 7 } }
  local rc, _, err = w:tdm("sync-manifests")
  t.eq(rc, 0, "sync-manifests: " .. err)
  local before = w:snapshot()
  rc, _, err = w:tdm("--region eu-west-2 sync-manifests")
  t.eq(rc, 0, "sync-manifests signing for eu-west-2: " .. err)
  local after, diff = w:snapshot(), {}
  for k, v in pairs(after) do
    if before[k] ~= v then diff[#diff + 1] = k end
  end
  for k in pairs(before) do
    if after[k] == nil then diff[#diff + 1] = "gone " .. k end
  end
  table.sort(diff)
  -- (the sidecar .state is a hash cache that may refresh its stamps)
  local shown = table.concat(diff, ", "):gsub("file [^,]*%.state,? ?", "")
  t.eq(shown, "", "no manifest rewritten, no s3_url changed")
  -- A run that writes nothing still remembers the region once the whole
  -- bucket listed, so no-op runs do not ask S3 for it every time.
  local found = io.popen("ls -A " .. w.D .. " | grep '^.tdm-bucket-region'")
  local name = found:read("l"); found:close()
  t.ok(name, "the region is remembered under the data root")
  if name then
    os.remove(w.D .. "/" .. name)
    rc, _, err = w:tdm("pull-all")
    t.eq(rc, 0, "no-op pull-all: " .. err)
    local f = io.open(w.D .. "/" .. name)
    t.ok(f, "a no-op run remembers the region again")
    if f then f:close() end
  end
end)

return t.done()
