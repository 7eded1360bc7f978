--- test_fault.lua -- pull-all and push through the fault-injecting proxy
-- (tests/lib/faultproxy.js) in front of s3rver: 10 % 503 SlowDown, 3 %
-- connection resets, 3 % truncated bodies, 1 % flipped bytes. Every file
-- must end verified (MD5 against the source), every status synced, no temp
-- file left, the run's output must report the retries, and a corrupted
-- body must never land under a final name nor be recorded as synced.
--
-- Seeded: TDM_FAULT_SEED (default below) seeds the proxy and the data.
local t = require "t"
local cjson = require "cjson"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local fp = e2e.fp

local SEED = tonumber(os.getenv("TDM_FAULT_SEED") or "") or 20261126
local FAULTS = { seed = SEED, p503 = 0.10, reset = 0.03, truncate = 0.03,
                 corrupt = 0.01 }
local totals = { injected = 0, p503 = 0, reset = 0, truncate = 0,
                 corrupt = 0, requests = 0 }

local function add_stats(st)
  for _, k in ipairs { "p503", "reset", "truncate", "corrupt", "requests" } do
    totals[k] = totals[k] + (st[k] or 0)
    if k ~= "requests" then totals.injected = totals.injected + (st[k] or 0) end
  end
end

-- The retries a run reports: a numeric field named like "retries" in any
-- event (the summary), else nil. Every stdout line must be JSON.
local function reported_retries(out)
  local best
  local events, summary = e2e.json_lines(out)
  events[#events + 1] = { summary = summary }
  for _, ev in ipairs(events) do
    for k, v in pairs(ev) do
      if type(v) == "number" and k:lower():find("retr") then
        best = math.max(best or 0, v)
      elseif type(v) == "table" then
        for k2, v2 in pairs(v) do
          if type(v2) == "number" and tostring(k2):lower():find("retr") then
            best = math.max(best or 0, v2)
          end
        end
      end
    end
  end
  return best
end

-- Hidden temp files (.NAME.tmp.*) anywhere under dir.
local function temp_files(dir)
  local found = {}
  for path in pairs(fp.snapshot(dir)) do
    if path:match("/%.[^/]*%.tmp%.[^/]*$") or path:match("^%.[^/]*%.tmp%.") then
      found[#found + 1] = path
    end
  end
  return found
end

local function manifest_of(fx, name)
  local id = fx.actors[name].id
  local text = fp.read(fx.data_root .. "/actor_manifests/" .. id ..
                       "_manifest.json")
  if not text then return nil, "no manifest for " .. name end
  local ok, doc = pcall(cjson.decode, text)
  if not ok then return nil, "manifest of " .. name .. " does not parse: " .. doc end
  return doc
end

-- Check every file of every actor of fx: local bytes == source MD5, entry
-- synced with that md5 (and, with `bucket`, the object's MD5 too).
local function check_all_synced(fx, bucket)
  local nfiles = 0
  for name, a in pairs(fx.actors) do
    local doc, why = manifest_of(fx, name)
    t.ok(doc, why)
    local by = {}
    for _, e in ipairs(doc.training_data) do by[e.filename] = e end
    for fn, f in pairs(a.files) do
      local want = f.local_md5 or f.s3_md5
      local path = fx.data_root .. "/actors/" .. name .. "/training_data/" .. fn
      local got = require("tdm").md5_file(path)
      t.eq(got, want, "MD5 of local " .. fn)
      t.ok(by[fn], "manifest entry for " .. fn)
      t.eq(by[fn].status, "synced", "status of " .. fn)
      t.eq(by[fn].md5_hash, want, "md5_hash of " .. fn)
      if bucket then
        t.eq(bucket[fx.prefix .. "/" .. name .. "/" .. fn], want,
             "MD5 of the object of " .. fn)
      end
      nfiles = nfiles + 1
    end
  end
  return nfiles
end

t.test("pull-all through 10% 503 + 3% resets + 3% truncation + 1% corruption",
       function()
  local w = e2e.world { tag = "t/fault-pull", fast = true, fixture = {
    scenarios = false, bulk = 10, bulk_files = 16, bulk_size = 160 * 1024,
    seed = SEED } }
  local D, fx = w.D, w.fx
  -- Nothing local: half the actors keep their manifest (files missing
  -- locally), half start from S3 alone.
  os.execute("rm -rf " .. fp.q(D .. "/actors"))
  local k = 0
  for _, a in pairs(fx.actors) do
    k = k + 1
    if k % 2 == 0 then os.remove(D .. "/actor_manifests/" .. a.id .. "_manifest.json") end
  end
  local p = fp.start(FAULTS)
  local rc, out, err = fp.tdm({ "pull-all", "--data-root", D, "--prefix",
    fx.prefix, "--json", "--jobs", "4" }, { AWS_ENDPOINT_URL = p.url })
  local st = p:stop()
  add_stats(st)
  print(string.format("# pull-all: %d requests, injected 503=%d reset=%d " ..
    "truncate=%d corrupt=%d; exit %d", st.requests, st.p503, st.reset,
    st.truncate, st.corrupt, rc))
  t.eq(rc, 0, "exit code of pull-all through faults (stderr: " ..
       err:sub(1, 300) .. ")")
  t.ok(st.p503 + st.reset + st.truncate + st.corrupt > 0,
       "faults injected (stats " .. cjson.encode(st) .. ")")
  local n = check_all_synced(fx)
  t.eq(n, 160, "files checked")
  t.eq(temp_files(D), {}, "temp files left")
  local retries = reported_retries(out)
  print("# pull-all reported retries: " .. tostring(retries))
  t.ok(retries ~= nil, "the run's JSON output reports its retries " ..
       "(a numeric 'retries' field); got none in: " .. out:sub(-400))
  -- Not every fault hits a transfer (listings are retried too, inside the
  -- listing), so the transfers' retries are at most the faults injected.
  t.ok((retries or 0) > 0 and retries <= st.p503 + st.reset + st.truncate +
       st.corrupt, "reported retries (" .. tostring(retries) .. ") in 1.." ..
       (st.p503 + st.reset + st.truncate + st.corrupt) .. " (faults injected)")
end)

t.test("push through the same faults", function()
  local w = e2e.world { tag = "t/fault-push", fast = true, fixture = {
    scenarios = false, bulk = 6, bulk_files = 12, bulk_size = 120 * 1024,
    seed = SEED + 1, upload = false } }
  local D, fx = w.D, w.fx
  local p = fp.start(FAULTS)
  local names = {}
  for name in pairs(fx.actors) do names[#names + 1] = name end
  table.sort(names)
  local retries_seen = 0
  for _, name in ipairs(names) do
    local rc, out, err = fp.tdm({ "push", name, "--data-root", D, "--prefix",
      fx.prefix, "--json" }, { AWS_ENDPOINT_URL = p.url })
    t.eq(rc, 0, "exit code of push " .. name .. " (stderr: " ..
         err:sub(1, 300) .. ")")
    retries_seen = retries_seen + (reported_retries(out) or 0)
  end
  local st = p:stop()
  add_stats(st)
  print(string.format("# push: %d requests, injected 503=%d reset=%d; " ..
    "reported retries %d", st.requests, st.p503, st.reset, retries_seen))
  t.ok(st.p503 + st.reset > 0, "faults injected (" .. cjson.encode(st) .. ")")
  t.ok(retries_seen > 0 and retries_seen <= st.p503 + st.reset,
       "reported retries (" .. retries_seen .. ") in 1.." ..
       (st.p503 + st.reset) .. " (faults injected)")
  local bucket = fp.bucket(fx.prefix .. "/")
  t.eq(check_all_synced(fx, bucket), 72, "files checked")
  t.eq(temp_files(D), {}, "temp files left")
end)

t.test("a corrupted body never lands under its final name nor as synced",
       function()
  local w = e2e.world { tag = "t/fault-corrupt", fast = true, fixture = {
    scenarios = false, bulk = 1, bulk_files = 4, bulk_size = 64 * 1024,
    seed = SEED + 2 } }
  local D, fx = w.D, w.fx
  local name = next(fx.actors)
  os.execute("rm -rf " .. fp.q(D .. "/actors"))
  -- Every object GET corrupted: every attempt fails its MD5 check.
  local p = fp.start { seed = SEED, corrupt = 1.0 }
  local rc, _, err = fp.tdm({ "pull", name, "--data-root", D, "--prefix",
    fx.prefix }, { AWS_ENDPOINT_URL = p.url })
  local st = p:stats()
  add_stats(st)
  print(string.format("# corruption: %d bodies corrupted, exit %d", st.corrupt, rc))
  t.ok(rc ~= 0, "pull of corrupted bodies fails (exit " .. rc .. ")")
  t.ok(st.corrupt >= 4, "every object corrupted at least once (" ..
       st.corrupt .. ")")
  t.ok(err:find("BadDigest") or err:lower():find("md5"),
       "error names the digest mismatch: " .. err:sub(1, 300))
  local dir = D .. "/actors/" .. name .. "/training_data/"
  for fn in pairs(fx.actors[name].files) do
    t.eq(fp.read(dir .. fn), nil, "no file under the final name " .. fn)
  end
  t.eq(temp_files(D), {}, "temp files left")
  local doc = manifest_of(fx, name)
  for _, e in ipairs(doc and doc.training_data or {}) do
    t.ok(e.status ~= "synced", "entry " .. e.filename .. " is not synced (" ..
         e.status .. ")")
  end
  -- Faults off: the same command now converges.
  p:config { corrupt = 0 }
  rc, _, err = fp.tdm({ "pull", name, "--data-root", D, "--prefix",
    fx.prefix }, { AWS_ENDPOINT_URL = p.url })
  p:stop()
  t.eq(rc, 0, "pull after the corruption stops (" .. err:sub(1, 200) .. ")")
  check_all_synced(fx)
end)

print(string.format("# fault totals: %d requests, %d faults injected " ..
  "(503 %d, reset %d, truncate %d, corrupt %d); %s",
  totals.requests, totals.injected, totals.p503, totals.reset,
  totals.truncate, totals.corrupt,
  t.failed == 0 and "all survived" or "NOT all survived"))
fp.cleanup()
os.exit(t.done())
