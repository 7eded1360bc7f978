--- tdm.sync_cli -- what the sync commands (sync-manifests, pull-all, pull,
-- push) share: turning parsed options into a tdm.Sync run, and the
-- summary.
local cli = require "tdm.cli"

local M = {}

--- Run `o` (see Sync:run) for the command `name` with parsed `opts`;
-- prints the summary and returns the exit code.
function M.run(name, opts, o)
  local Sync = require "tdm.sync"
  local cfg = cli.config(opts)
  local sync = Sync.new(cfg)
  -- No usable credentials is a configuration error: one line, exit 2,
  -- before any actor is tried (the client is kept for the run).
  local _, msg, code = sync:client()
  if code == "ENOCREDS" or code == "EBADCREDS" then
    cli.usage_error("%s: %s", name, msg)
  end
  local r = cli.reporter(name, opts, cfg)
  r.one_actor, o.one_actor = o.one_actor, nil
  o.reporter = r
  o.dry_run = opts.dry_run
  o.select = function(actor) return cli.selected(opts, actor) end
  if o.actors == nil and opts.actors and #opts.actors > 0 then
    o.actors = opts.actors
  end
  local totals = sync:run(o)
  local summary = {}
  for k, v in pairs(totals) do
    if k:sub(1, 1) ~= "_" and (v ~= 0 or k == "actors" or k == "errors") then
      summary[k] = v
    end
  end
  return r:finish(summary)
end

--- The actor named by pull/push's argument (42, 0042 or the name), or a
-- configuration error (exit 2) naming why it is unknown.
function M.resolve_actor(name, sync, actor)
  local resolved, msg = sync:resolve_actor(actor)
  if not resolved then cli.usage_error("%s: %s", name, msg) end
  return resolved
end

return M
