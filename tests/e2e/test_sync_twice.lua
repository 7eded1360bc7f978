-- test_sync_twice.lua -- two pull-all runs started together on the same
-- empty data root share the work: a run claims an actor's transfers
-- (Sync:claim_path) and the other skips it as busy, so every file is
-- downloaded exactly once, every entry ends synced, neither run fails,
-- and no claim is held afterwards. A claim is an flock: an actor claimed
-- by a live process is skipped, and free as soon as that process dies.
local t = require "t"
local core = require "tdm.core"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local HOST = e2e.ROOT .. "/tdm-lua"
local holder = dofile(e2e.ROOT .. "/tests/lib/claim_holder.lua")
local w = e2e.world { prefix = e2e.prefix("e2e-synctwice") .. "/training_data" }
local PREFIX, TMP, D, cfg, client = w.prefix, w.tmp, w.D, w.cfg, w.client

local q = t.shq

-- 12 actors x 8 objects of 32 KiB, only in S3.
local ACTORS, FILES = 12, 8
local names, want = {}, {}
do
  local src = TMP .. "/src.jpg"
  local jobs = {}
  for a = 1, ACTORS do
    local name = string.format("%04d_twice_%d", 200 + a, a)
    names[#names + 1] = name
    for i = 1, FILES do
      local fn = name .. "_" .. i .. ".jpg"
      local path = TMP .. "/" .. fn
      t.write(path, string.rep(string.format("%s-%d;", name, i), 3000):sub(1, 32768))
      jobs[#jobs + 1] = { op = "put", path = path, key = PREFIX .. "/" .. name .. "/" .. fn }
      want[name .. "/" .. fn] = true
    end
  end
  local res = client:transfer(jobs, { jobs = 8 })
  for i, r in ipairs(res) do assert(r.ok, "seed upload " .. i .. ": " .. tostring(r.error)) end
  os.remove(src)
end

t.test("two pull-all runs at once download each file exactly once", function()
  local cmd = string.format("%s pull-all --json --jobs 2 --data-root %s --prefix %s",
                            HOST, q(D), q(PREFIX))
  local sh = string.format("(%s >%s/a.out 2>%s/a.err; echo $? >%s/a.rc) & "
                           .. "(%s >%s/b.out 2>%s/b.err; echo $? >%s/b.rc) & wait",
                           cmd, q(TMP), q(TMP), q(TMP), cmd, q(TMP), q(TMP), q(TMP))
  os.execute(sh)
  local count, busy, total = {}, 0, 0
  for _, run in ipairs({ "a", "b" }) do
    local rc = tonumber(t.read(TMP .. "/" .. run .. ".rc"))
    t.eq(rc, 0, "run " .. run .. " exit code (stderr: "
         .. (t.read(TMP .. "/" .. run .. ".err") or ""):sub(1, 300) .. ")")
    local events, summary = e2e.json_lines(
      t.read(TMP .. "/" .. run .. ".out") or "", "run " .. run)
    for _, ev in ipairs(events) do
      if ev.action == "download" and ev.result == "ok" then
        local k = ev.actor .. "/" .. ev.file
        count[k] = (count[k] or 0) + 1
        total = total + 1
      elseif ev.action == "claim" then
        busy = busy + 1
      end
    end
    t.ok(summary, "run " .. run .. " printed a summary")
    t.eq(summary and summary.errors, 0, "run " .. run .. " errors")
  end
  for k in pairs(want) do
    t.eq(count[k], 1, "downloads of " .. k)
  end
  t.eq(total, ACTORS * FILES, "downloads of the two runs together")
  print(string.format("# two pull-alls: %d downloads for %d files, %d actors skipped as busy",
                      total, ACTORS * FILES, busy))
  for _, name in ipairs(names) do
    local doc, why = tdm.Manifest.load(w:mpath(name), cfg)
    t.ok(doc, name .. ": manifest loads (" .. tostring(why) .. ")")
    for _, e in ipairs(doc and doc.training_data or {}) do
      t.eq(e.status, "synced", name .. ": status of " .. e.filename)
    end
    t.eq(doc and #doc.training_data, FILES, name .. ": entries")
  end
  for _, f in ipairs(core.listdir(D .. "/actor_manifests") or {}) do
    if f:match("%.claim$") then
      local c, msg = core.claim(D .. "/actor_manifests/" .. f)
      t.ok(c, "claim still held after both runs ended: " .. f .. ": " .. tostring(msg))
      if c then c:release() end
    end
  end
end)

t.test("an actor claimed by a live process is skipped; killed, it is free at once", function()
  local name = "0300_held"
  for i = 1, 2 do
    local path = TMP .. "/held" .. i .. ".jpg"
    t.write(path, string.rep("held" .. i, 1000))
    assert(client:put(path, PREFIX .. "/" .. name .. "/" .. name .. "_" .. i .. ".jpg"))
  end
  assert(core.mkdirs(D .. "/actor_manifests"))
  local h = holder.start(TMP, w:mpath(name) .. ".claim")
  local cmd = string.format("%s pull-all --json --actor %s --data-root %s --prefix %s",
                            HOST, name, q(D), q(PREFIX))
  local function run()
    local p = io.popen(cmd .. " 2>" .. q(TMP .. "/held.err"))
    local out = p:read("a")
    local _, _, rc = p:close()
    local events, summary = e2e.json_lines(out, "pull-all --actor " .. name)
    local got, busy = 0, 0
    for _, ev in ipairs(events) do
      if ev.action == "download" and ev.result == "ok" then got = got + 1 end
      if ev.action == "claim" and ev.result == "busy, skipped" then busy = busy + 1 end
    end
    return rc, got, busy, summary or {}
  end
  local rc, got, busy, summary = run()
  t.eq(rc, 0, "exit code while claimed (stderr: " .. tostring(t.read(TMP .. "/held.err")) .. ")")
  t.eq(got, 0, "downloads while another process holds the claim")
  t.eq(busy, 1, "busy events while claimed")
  t.eq(summary.busy_skipped, 1, "busy_skipped in the summary")
  h:kill()
  rc, got, busy, summary = run()
  t.eq(rc, 0, "exit code after the holder was killed")
  t.eq(got, 2, "downloads right after the holder was killed")
  t.eq(busy, 0, "busy events after the holder was killed")
end)

os.exit(t.done())
