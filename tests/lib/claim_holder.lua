-- claim_holder.lua -- a real process that holds a claim (core.claim) until
-- it is killed, for the tests of what another run sees meanwhile and
-- after it dies.
--   local holder = dofile(ROOT .. "/tests/lib/claim_holder.lua")
--   local h = holder.start(scratch_dir, claim_path)  -- returns once held
--   h.pid; h:kill()   -- SIGKILL, returns once the process is gone
local t = require "t"

local ROOT = os.getenv("TDM_TEST_ROOT") or "."
local HOST = ROOT .. "/tdm-lua"
local q = t.shq

local M = {}
local Holder = {}
Holder.__index = Holder

function M.start(dir, path)
  local script, fifo, ready, pidf = dir .. "/hold.lua", dir .. "/hold.fifo",
                                    dir .. "/hold.ready", dir .. "/hold.pid"
  t.write(script, [[
local core = require "tdm.core"
local c = assert(core.claim(arg[1]))
local f = assert(io.open(arg[2], "w")); f:write("held\n"); f:close()
io.read("a")   -- blocks until killed
c:release()
]])
  os.remove(ready)
  os.remove(fifo)
  assert(os.execute("mkfifo " .. q(fifo)))
  -- the subshell waits for the holder, so it is reaped as soon as it dies
  os.execute(string.format("(%s %s %s %s <%s & echo $! >%s; wait) >/dev/null 2>&1 &",
                           q(HOST), q(script), q(path), q(ready), q(fifo), q(pidf)))
  local w = assert(io.open(fifo, "w"))   -- returns once the holder's stdin is open
  while not t.read(ready) do os.execute("sleep 0.01") end
  return setmetatable({ pid = t.read(pidf):match("%d+"), stdin = w }, Holder)
end

function Holder:kill()
  os.execute("kill -9 " .. self.pid)
  -- gone (reaped by its subshell) once kill -0 fails
  while os.execute("kill -0 " .. self.pid .. " 2>/dev/null") do os.execute("sleep 0.01") end
  self.stdin:close()
end

return M
