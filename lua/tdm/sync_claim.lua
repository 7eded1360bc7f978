--- tdm.sync_claim -- part of tdm.Sync (lua/tdm/sync.lua installs these
-- methods): a run's claim on an actor's transfers, and the sweeping of
-- temp files a killed run left behind.
local core = require "tdm.core"

local Sync = {}

--- Remove the temp files (".NAME.tmp.PID.N", see tdm_temp_path) that a
-- killed tdm process left in actor `name`'s folder: only those whose PID
-- is no longer running (checked through /proc; nothing is removed where
-- /proc is absent). Returns the names removed.
function Sync:remove_stale_temps(name)
  local dir = self.data_root .. "/actors/" .. name .. "/training_data"
  local removed = {}
  if not core.stat("/proc/self") then return removed end
  for _, f in ipairs(core.listdir(dir) or {}) do
    local pid = f:match("^%..+%.tmp%.(%d+)%.%d+$")
    if pid and not core.stat("/proc/" .. pid) then
      local st = core.stat(dir .. "/" .. f)
      if st and st.type == "file" and os.remove(dir .. "/" .. f) then
        removed[#removed + 1] = f
      end
    end
  end
  return removed
end

-- This process's pid (Linux /proc), read once; nil elsewhere.
local mypid
local function my_pid()
  if mypid == nil then
    local f = io.open("/proc/self/stat", "r")
    mypid = f and f:read("a"):match("^(%d+)") or false
    if f then f:close() end
  end
  return mypid or nil
end

--- A run's claim on an actor's transfers: the file `{manifest}.claim`
-- holding "pid token", written and checked under the manifest's lock and
-- removed by its owner when the actor's last transfer of the run has
-- landed and been recorded. Another run (another process, or another
-- Sync:run in this one) finding a live claim skips the actor ("busy"),
-- so two runs share the work and no file moves twice. A claim whose pid
-- is no longer running (a killed run) is void. Claims are per host: runs
-- on several hosts split actors with --shard.
function Sync:claim_path(m)
  return m:path() .. ".claim"
end

-- Whether the claim file at `path` belongs to another live run.
local function claim_busy(path, token)
  local f = io.open(path, "r")
  if not f then return false end
  local text = f:read("a") or ""
  f:close()
  local pid, tok = text:match("^(%d+) (%S+)")
  if not pid or tok == token then return false end
  if core.stat("/proc/self") and not core.stat("/proc/" .. pid) then return false end
  return true, pid
end

-- Write our claim to `path`: a temp file renamed into place, so a reader
-- sees all of it or none, but not fsynced -- a claim only matters while
-- its run is alive (a crash voids it), so it need not survive one.
-- -> true | nil, msg, code.
local function write_claim(path, token)
  local tmp = path .. ".tmp." .. (my_pid() or "0")
  local f, msg = io.open(tmp, "w")
  if not f then return nil, "write claim " .. path .. ": " .. tostring(msg), "EIO" end
  local ok, wmsg = f:write((my_pid() or "0") .. " " .. token .. "\n")
  local okc, cmsg = f:close()
  if not ok or not okc then
    os.remove(tmp)
    return nil, "write claim " .. path .. ": " .. tostring(wmsg or cmsg), "EIO"
  end
  local okr, rmsg = os.rename(tmp, path)
  if not okr then
    os.remove(tmp)
    return nil, "write claim " .. path .. ": " .. tostring(rmsg), "EIO"
  end
  return true
end

-- Remove `path` if it still holds our claim.
local function release_claim(path, token)
  local f = io.open(path, "r")
  if not f then return end
  local text = f:read("a") or ""
  f:close()
  if text:match("^%d+ (%S+)") == token then os.remove(path) end
end

--- A token naming this run in its claims.
function Sync.claim_token()
  return string.format("%s-%.6f-%s", my_pid() or "0", core.now(),
                       tostring({}):match("0x(%x+)") or "0")
end

--- Whether another live run holds the claim at `path` -> busy, pid.
Sync.claim_busy = claim_busy

--- Take the claim at `path` for the run of `token` -> true | nil, msg, code.
Sync.write_claim = write_claim

--- Give up this run's claim on `actor` (see claim_path), if it has one.
function Sync:release_claim(state, actor)
  local path = state.claims[actor]
  if path then
    state.claims[actor] = nil
    release_claim(path, state.token)
  end
end

return Sync
