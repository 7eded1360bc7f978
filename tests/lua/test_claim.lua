-- test_claim.lua -- the core's safety pieces under tdm.Sync: claims (an
-- flock the kernel drops when the holder dies, core.claim), sweeping the
-- temp files of dead processes (core.sweep_temps) and the CPU count
-- (core.cpu_count). Real processes, real files, no S3.
local t = require "t"
local core = require "tdm.core"

local ROOT = os.getenv("TDM_TEST_ROOT") or "."
local holder = dofile(ROOT .. "/tests/lib/claim_holder.lua")
local q = t.shq

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  return pid
end

-- A pid that was a process and is not running any more (it exited and
-- was reaped before this returns).
local function dead_pid()
  local p = io.popen("sh -c 'echo $$'")
  local pid = p:read("l")
  p:close()
  return pid
end

t.test("a claim excludes a second claim, also in the same process", function()
  local path = t.tmpdir() .. "/0001_manifest.json.claim"
  local a, amsg, acode = core.claim(path)
  t.ok(a, "first claim: " .. tostring(amsg) .. " " .. tostring(acode))
  t.eq(a:held(), true, "held after taking")
  local b, bmsg, bcode = core.claim(path)
  t.eq(b, nil, "second claim while the first is held")
  t.eq(bcode, "LOCKED", "code of the refused claim")
  t.ok(tostring(bmsg):find(path, 1, true), "message names the file: " .. tostring(bmsg))
  a:release()
  t.eq(a:held(), false, "held after release")
  a:release()   -- twice is fine
  do
    local c <close> = assert(core.claim(path))
    t.ok(c:held(), "claim after release")
  end
  local d = core.claim(path)
  t.ok(d, "claim after the <close> scope released it")
  d:release()
  t.ok(core.stat(path), "the claim file stays (only the flock means anything)")
end)

t.test("a claim of a live process is refused naming its pid; killed, it is free at once", function()
  local dir = t.tmpdir()
  local path = dir .. "/0002_manifest.json.claim"
  local h = holder.start(dir, path)
  local pid = h.pid
  local c, msg, code = core.claim(path)
  t.eq(c, nil, "claim while another process holds it")
  t.eq(code, "LOCKED", "code")
  t.ok(tostring(msg):find("pid " .. pid, 1, true),
       "message names the holder (pid " .. pid .. "): " .. tostring(msg))
  h:kill()
  local c2, msg2, code2 = core.claim(path)
  t.ok(c2, "first claim after the holder was killed: "
       .. tostring(msg2) .. " " .. tostring(code2))
  if c2 then c2:release() end
end)

t.test("sweep_temps removes exactly the temp files of processes not running", function()
  local dir = t.tmpdir()
  local dead, me = dead_pid(), my_pid()
  local files = {
    ["a.jpg"] = "keep",                              -- a final name
    [".a.jpg.tmp." .. dead .. ".1"] = "remove",        -- dead writer
    [".b.png.tmp." .. dead .. ".27"] = "remove",
    [".a.jpg.tmp." .. me .. ".2"] = "keep",            -- this process writes it
    [".a.jpg.tmp.1.3"] = "keep",                       -- pid 1 is running
    [".a.jpg.tmp.x.1"] = "keep",                       -- not the temp form
    [".tmp." .. dead .. ".1"] = "keep",                -- no NAME
    ["a.jpg.tmp." .. dead .. ".1"] = "keep",           -- not hidden
    [".a.jpg.tmp." .. dead .. ".1x"] = "keep",
    [".a.jpg.tmp." .. dead] = "keep",
  }
  for f in pairs(files) do t.write(dir .. "/" .. f, "x") end
  assert(os.execute("mkdir " .. q(dir .. "/.d.tmp." .. dead .. ".4")))     -- not a file
  assert(os.execute("ln -s a.jpg " .. q(dir .. "/.l.tmp." .. dead .. ".5")))  -- a link
  files[".d.tmp." .. dead .. ".4"] = "keep"
  files[".l.tmp." .. dead .. ".5"] = "keep"
  local removed, msg = core.sweep_temps(dir)
  t.ok(removed, "sweep: " .. tostring(msg))
  table.sort(removed)
  t.eq(table.concat(removed, " "), ".a.jpg.tmp." .. dead .. ".1 .b.png.tmp." .. dead .. ".27",
       "names reported removed")
  for f, what in pairs(files) do
    t.eq(core.stat(dir .. "/" .. f) ~= nil, what == "keep", f .. " is there afterwards")
  end
  local none = core.sweep_temps(dir .. "/no-such-dir")
  t.eq(none and #none, 0, "a missing folder has nothing to sweep")
end)

t.test("cpu_count is the CPUs this process may use (as nproc counts them)", function()
  local p = io.popen("nproc")
  local want = tonumber(p:read("l"))
  p:close()
  t.eq(core.cpu_count(), want, "cpu_count vs nproc")
  t.eq(math.type(core.cpu_count()), "integer", "an integer")
end)

os.exit(t.done())
