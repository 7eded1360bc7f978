-- test_pull_kill.lua -- pull-all killed with SIGKILL at random (seeded)
-- points, then run again: no partial file under a final name, every
-- manifest parses, and the run to completion ends with everything synced.
-- A handful of trials here; the reliability suite runs many more
-- (TDM_KILL_TRIALS raises the count).
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local HOST = e2e.ROOT .. "/tdm-lua"
local TRIALS = tonumber(os.getenv("TDM_KILL_TRIALS")) or 3
local SEED = tonumber(os.getenv("TDM_KILL_SEED")) or 20261126

local w = e2e.world { prefix = e2e.prefix("e2e-kill") .. "/training_data", fixture = {
  seed = 9, scenarios = false, bulk = 6, bulk_files = 17, bulk_size = 32 * 1024 } }
local PREFIX, TMP, D, fx = w.prefix, w.tmp, w.D, w.fx

local q = t.shq
local function sh(cmd) return os.execute(cmd) end

local function wipe_local()
  sh("rm -rf " .. q(D .. "/actors"))
end

-- Every image under a final name has exactly the bytes of its object;
-- returns the number of final files and of leftover temp files.
local function check_tree(trial)
  local finals, temps = 0, 0
  for name, a in pairs(fx.actors) do
    local dir = w:tdir(name)
    for _, f in ipairs(core.listdir(dir) or {}) do
      if f:sub(1, 1) == "." then
        temps = temps + 1
      else
        finals = finals + 1
        local want = a.files[f] and a.files[f].s3_md5
        t.eq(core.md5_file(dir .. "/" .. f), want, trial .. ": " .. name .. "/" .. f ..
             " is whole (md5)")
      end
    end
  end
  return finals, temps
end

local function check_manifests(trial)
  for name in pairs(fx.actors) do
    local p = w:mpath(name)
    local text = t.read(p)
    t.ok(text, trial .. ": manifest of " .. name .. " exists")
    local ok, doc = pcall(cjson.decode, text)
    t.ok(ok and type(doc.training_data) == "table", trial .. ": manifest of " .. name .. " parses")
  end
end

local function count_files()
  local p = io.popen("find " .. q(D .. "/actors") .. " -name '*.jpg' 2>/dev/null | wc -l")
  local n = tonumber(p:read("a")) or 0
  p:close()
  return n
end

-- Start pull-all in the background and SIGKILL it once `target` files
-- have landed under their final names (or after `limit` seconds); a kill
-- point defined by progress, not by time, so a loaded machine still gets
-- mid-transfer kills. Returns the files seen before the kill.
local function run_bg_and_kill(target, limit)
  local pidf = TMP .. "/pid"
  sh(string.format("%s pull-all --quiet --jobs 8 --data-root %s --prefix %s >/dev/null 2>&1 & echo $! > %s",
                   HOST, q(D), q(PREFIX), q(pidf)))
  local pid = t.read(pidf):match("%d+")
  local deadline, n = core.now() + limit, 0
  repeat
    n = count_files()
    if n >= target or not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
    sh("sleep 0.01")
  until core.now() > deadline
  sh("kill -9 " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
    sh("sleep 0.02")
  end
  return n
end

math.randomseed(SEED)
local total_files = 0
for _, a in pairs(fx.actors) do for _ in pairs(a.files) do total_files = total_files + 1 end end

t.test("pull-all killed at random points leaves no partial file", function()
  for trial = 1, TRIALS do
    if trial % 2 == 1 then wipe_local() end   -- odd trials start from an empty tree
    local have = count_files()
    local target = have + math.random(1, math.max(1, total_files - have - 1))
    local seen = run_bg_and_kill(target, 60)
    local label = string.format("trial %d (kill at >= %d files, saw %d)", trial, target, seen)
    local finals, temps = check_tree(label)
    check_manifests(label)
    io.write(string.format("# %s: %d/%d files whole, %d temp files left\n", label,
                           finals, total_files, temps))
  end
end)

t.test("SIGINT stops pull-all cleanly: exit 130, finished files kept", function()
  wipe_local()
  local pidf, rcf = TMP .. "/pid2", TMP .. "/rc2"
  os.remove(rcf)
  sh(string.format("sh -c '%s pull-all --quiet --jobs 4 --data-root %s --prefix %s >/dev/null 2>&1 & "
                   .. "echo $! > %s; wait $!; echo $? > %s.tmp; mv %s.tmp %s' &", HOST, D, PREFIX,
                   pidf, rcf, rcf, rcf))
  local deadline = core.now() + 60
  while not t.read(pidf) and core.now() < deadline do sh("sleep 0.01") end
  local pid = t.read(pidf):match("%d+")
  while count_files() < 20 and not t.read(rcf) and core.now() < deadline do sh("sleep 0.01") end
  sh("kill -INT " .. pid .. " 2>/dev/null")
  while not t.read(rcf) and core.now() < deadline do sh("sleep 0.02") end
  local rc = tonumber((t.read(rcf) or ""):match("%d+"))
  local finals, temps = check_tree("sigint")
  check_manifests("sigint")
  if finals < total_files then
    t.eq(rc, 130, "exit code after SIGINT")
  end
  t.eq(temps, 0, "temp files left by an interrupted (not killed) run")
  -- what landed is recorded: every file present is synced in its manifest
  for name in pairs(fx.actors) do
    local doc = cjson.decode(t.read(w:mpath(name)))
    for _, e in ipairs(doc.training_data) do
      if core.stat(w:lpath(name, e.filename)) then
        t.eq(e.status, "synced", "sigint: landed " .. e.filename .. " recorded")
      end
    end
  end
  io.write(string.format("# sigint: exit %s, %d/%d files kept\n", tostring(rc), finals, total_files))
end)

t.test("the next pull-all completes and everything is synced", function()
  local rc = sh(string.format("%s pull-all --quiet --data-root %s --prefix %s >/dev/null 2>&1",
                              HOST, q(D), q(PREFIX)))
  t.ok(rc, "pull-all to completion exits 0")
  local finals, temps = check_tree("final")
  t.eq(finals, total_files, "files present")
  t.eq(temps, 0, "temp files of killed runs left after a completed run")
  for name, a in pairs(fx.actors) do
    local p = w:mpath(name)
    local doc = cjson.decode(t.read(p))
    t.eq(doc.statistics.training_synced_count, 17, name .. " synced count")
    for _, e in ipairs(doc.training_data) do
      t.eq(e.status, "synced", name .. "/" .. e.filename .. " status")
      t.eq(e.md5_hash, a.files[e.filename].s3_md5, name .. "/" .. e.filename .. " md5_hash")
    end
  end
end)

return t.done()
