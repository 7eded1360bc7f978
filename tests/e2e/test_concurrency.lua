--- test_concurrency.lua -- two pull-all runs and the HTTP API server
-- (tdm-lua serve) working on one data root at the same time.
--
--   * no lost manifest update: every image uploaded through the API while
--     the pull-alls run is in its manifest afterwards, next to every
--     pulled file (all synced);
--   * no file written twice: the two runs' downloads add up to the number
--     of files that were missing (each was fetched once: a run claims an
--     actor's downloads, a concurrent run skips a claimed actor);
--   * uploads made through the API during the runs end "synced" (a refresh
--     never trusts a listing older than the manifest it overwrites);
--   * no deadlock: everything finishes within a bound, and a lock that is
--     held elsewhere makes a run give up after TDM_LOCK_TIMEOUT with a
--     clear "LOCKED" error naming the holder's pid.
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"
local tdm = require "tdm"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local fp = e2e.fp

local function curl(args) return fp.curl(args, 30) end

-- A small distinct JPEG-looking image (the API checks magic bytes).
local function jpeg(n)
  return "\255\216\255\224\0\16JFIF\0\1\1\0\0\1\0\1\0\0" ..
         string.rep(string.char(n % 251), 2000 + n) .. "\255\217"
end

local w = e2e.world { tag = "t/concurrency", fixture = {
  scenarios = false, bulk = 3, bulk_files = 10, bulk_size = 200 * 1024, seed = 99 } }
local D, fx = w.D, w.fx
local names = {}
for name in pairs(fx.actors) do names[#names + 1] = name end
table.sort(names)
local missing = 0
for _, a in pairs(fx.actors) do for _ in pairs(a.files) do missing = missing + 1 end end
os.execute("rm -rf " .. fp.q(D .. "/actors"))
local env = { TDM_LOCK_TIMEOUT = "60" }

t.test("two pull-alls and the API server at once", function()
  local port = e2e.free_port()
  local server = fp.spawn({ "serve", "--listen", "127.0.0.1:" .. port,
    "--quiet", "--data-root", D, "--prefix", fx.prefix }, env)
  local url = "http://127.0.0.1:" .. port
  local up = false
  for _ = 1, 200 do
    if curl(url .. "/healthz"):find("ok") then up = true; break end
    fp.sleep(0.05)
  end
  t.ok(up, "the API server answers /healthz")
  local args = function() return { "pull-all", "--data-root", D, "--prefix",
    fx.prefix, "--json", "--jobs", "2" } end
  local t0 = core.now()
  local a = fp.spawn(args(), env)
  local b = fp.spawn(args(), env)
  -- While they run: uploads and reads through the API.
  local uploaded, gets = {}, 0
  local img = fp.tmpname("img")
  for i = 1, 6 do
    local name = names[(i - 1) % #names + 1]
    local id = tostring(tonumber(fx.actors[name].id))
    t.write(img, jpeg(i))
    local body = curl("-F " .. fp.q("file=@" .. img .. ";type=image/jpeg;filename=up" ..
                      i .. ".jpg") .. " " .. fp.q(url .. "/api/actors/" .. id ..
                      "/training-data"))
    local ok, res = pcall(cjson.decode, body)
    t.ok(ok and type(res) == "table" and res.files, "upload " .. i ..
         " answered JSON with files: " .. body:sub(1, 300))
    for _, f in ipairs(res.files or {}) do
      t.ok(not f.error, "upload " .. i .. " failed: " .. tostring(f.error))
      uploaded[#uploaded + 1] = { actor = name, filename = f.filename,
                                  md5 = tdm.md5(jpeg(i)) }
    end
    local g = curl(url .. "/api/actors/" .. id .. "/training-data")
    t.ok(pcall(cjson.decode, g), "GET during the runs answers JSON: " .. g:sub(1, 200))
    gets = gets + 1
  end
  local rca, rcb = fp.wait(a, 180), fp.wait(b, 180)
  local elapsed = core.now() - t0
  os.execute("kill " .. server.pid)
  local rcs = fp.wait(server, 30)
  t.eq(rca, 0, "first pull-all exit (stderr: " .. tostring(a.stderr):sub(1, 300) .. ")")
  t.eq(rcb, 0, "second pull-all exit (stderr: " .. tostring(b.stderr):sub(1, 300) .. ")")
  t.eq(rcs, 0, "serve exits 0 on SIGTERM")
  local _, sa = e2e.json_lines(a.stdout, "first pull-all")
  local _, sb = e2e.json_lines(b.stdout, "second pull-all")
  t.ok(sa and sb, "both pull-all runs printed a summary")
  local da = sa and sa.downloaded or 0
  local db = sb and sb.downloaded or 0
  print(string.format("# concurrency: pull-all A downloaded %d, B %d (of %d " ..
    "missing); %d API uploads, %d GETs; %.1fs", da, db, missing, #uploaded,
    gets, elapsed))
  t.eq(da + db, missing, "downloads of the two runs together (no file fetched twice)")
  -- Every manifest: pulled files and uploads all there, all synced.
  local bucket = fp.store(fx.prefix .. "/")
  for _, name in ipairs(names) do
    local doc, why = tdm.Manifest.load(D .. "/actor_manifests/" ..
      fx.actors[name].id .. "_manifest.json", tdm.config { data_root = D })
    t.ok(doc, "manifest of " .. name .. " loads: " .. tostring(why))
    local by = {}
    for _, e in ipairs(doc.training_data) do by[e.filename] = e end
    for fn, f in pairs(fx.actors[name].files) do
      t.ok(by[fn], name .. ": entry for pulled " .. fn)
      t.eq(by[fn] and by[fn].status, "synced", name .. ": status of " .. fn)
      t.eq(tdm.md5_file(D .. "/actors/" .. name .. "/training_data/" .. fn),
           f.s3_md5, name .. ": bytes of " .. fn)
    end
    for _, u in ipairs(uploaded) do
      if u.actor == name then
        t.ok(by[u.filename], name .. ": uploaded " .. tostring(u.filename) ..
             " kept in the manifest (no lost update)")
        local st = by[u.filename] and by[u.filename].status
        t.eq(st, "synced", name .. ": status of uploaded " .. tostring(u.filename))
        t.eq(bucket[fx.prefix .. "/" .. name .. "/" .. u.filename], u.md5,
             name .. ": object of uploaded " .. tostring(u.filename))
      end
    end
  end
  for path in pairs(fp.snapshot(D)) do
    t.ok(not path:match("%.tmp%."), "temp file left: " .. path)
  end
end)

t.test("a lock held elsewhere: bounded wait, clear LOCKED error", function()
  local name = names[1]
  local cfg = tdm.config { data_root = D, prefix = fx.prefix }
  local m = assert(tdm.Manifest.open(name, cfg))
  local f = io.open("/proc/self/stat")
  local mypid = f:read("a"):match("^(%d+)")
  f:close()
  local t0 = core.now()
  local rc, _, err = fp.tdm({ "pull", name, "--data-root", D, "--prefix",
    fx.prefix }, { TDM_LOCK_TIMEOUT = "1" })
  local waited = core.now() - t0
  m:close()
  print(string.format("# lock held: pull gave up after %.1fs with exit %d: %s",
    waited, rc, (err:match("[^\n]*LOCK[^\n]*") or err):sub(1, 200)))
  t.ok(rc ~= 0, "pull of a locked actor fails (exit " .. rc .. ")")
  t.ok(waited < 20, "the wait is bounded (" .. waited .. " s)")
  t.ok(err:find("LOCKED") or err:lower():find("lock"), "error says the " ..
       "manifest is locked: " .. err:sub(1, 300))
  t.ok(err:find(mypid, 1, true), "error names the holder's pid " .. mypid ..
       ": " .. err:sub(1, 300))
  rc, _, err = fp.tdm({ "pull", name, "--data-root", D, "--prefix", fx.prefix })
  t.eq(rc, 0, "pull once the lock is released (" .. err:sub(1, 200) .. ")")
end)

fp.cleanup()
os.exit(t.done())
