--- tdm.sync_claim -- part of tdm.Sync (lua/tdm/sync.lua installs these
-- methods): a run's claim on an actor's transfers, and the sweeping of
-- temp files a killed run left behind. Both are the core's (core.claim,
-- core.sweep_temps); this names what they apply to.
local core = require "tdm.core"

local Sync = {}

--- Remove the temp files (".NAME.tmp.PID.N", see tdm_temp_path) that a
-- process no longer running left in actor `name`'s folder. Returns the
-- names removed.
function Sync:remove_stale_temps(name)
  local dir = core.layout.actor_dir(self.data_root, name)
  return dir and core.sweep_temps(dir) or {}
end

--- A run's claim on an actor's transfers is an flock on the file
-- `{manifest}.claim`, taken under the manifest's lock by a run that plans
-- transfers and held until the actor's last transfer of the run has
-- landed and been recorded. Another run (another process, or another
-- Sync:run in this one) finding it held skips the actor ("busy"), so two
-- runs share the work and no file moves twice. The kernel drops the
-- claim of a process that dies. Claims are per host: runs on several
-- hosts split actors with --shard.
function Sync:claim_path(m)
  return m:path() .. ".claim"
end

--- Take the claim on open manifest m's transfers -> claim (core.claim)
-- | nil, msg, "LOCKED" (another run holds it) | nil, msg, code.
function Sync:take_claim(m)
  return core.claim(self:claim_path(m))
end

--- Give up this run's claim on `actor` (see claim_path), if it has one.
function Sync:release_claim(state, actor)
  local claim = state.claims[actor]
  if claim then
    state.claims[actor] = nil
    claim:release()
  end
end

return Sync
