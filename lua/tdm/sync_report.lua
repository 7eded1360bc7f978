--- tdm.sync_report -- what the parts of tdm.Sync share to report a run:
-- events and failures to the reporter (tdm.cli's, or none), the events of
-- a refresh, the run's totals.
local M = {}

--- The keys of table `t`, sorted (reports list files in a stable order).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function emit(r, ev)
  if r then r:event(ev) end
end

local function fail(r, actor, file, msg, code)
  if r then r:fail(actor, file, msg, code) end
end

-- Per-actor events of a refresh.
local function report_refresh(r, name, rep)
  if not r then return end
  for _, fn in ipairs(rep.scan.added or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "added" })
  end
  for _, fn in ipairs(rep.scan.changed or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "changed" })
  end
  for _, fn in ipairs(rep.scan.vanished or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "vanished" })
  end
  for _, s in ipairs(rep.scan.skipped or {}) do
    r:event({ actor = name, file = s.name, action = "scan", result = "skipped",
              error = s.reason })
  end
  for _, fn in ipairs(rep.s3_added) do
    r:event({ actor = name, file = fn, action = "list", result = "added" })
  end
  for _, fn in ipairs(rep.s3_gone) do
    r:event({ actor = name, file = fn, action = "list", result = "gone" })
  end
  for _, fn in ipairs(rep.pruned) do
    r:event({ actor = name, file = fn, action = "prune", result = "removed" })
  end
end

local function new_totals()
  return { actors = 0, manifests_written = 0, manifests_unchanged = 0,
           manifests_created = 0, files_hashed = 0, files_reused = 0,
           bytes_hashed = 0, downloaded = 0, uploaded = 0, deleted = 0,
           bytes_transferred = 0, transfers_failed = 0, keys_skipped = 0,
           retries = 0, busy_skipped = 0, unverified = 0, held_back = 0,
           actor_errors = 0, synced = 0, local_only = 0, s3_only = 0,
           out_of_sync = 0, missing = 0 }
end

--- A warning to reporter r (one without warn gets it as an event).
function M.warn(r, ev)
  if not r then return end
  if r.warn then r:warn(ev) else r:event(ev) end
end

M.emit, M.fail, M.report_refresh, M.new_totals = emit, fail, report_refresh, new_totals

return M
