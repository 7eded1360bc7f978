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
  local r = cli.reporter(name, opts)
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

--- The actor positional of pull/push: refuses --actor/--shard (the actor
-- is the argument).
function M.one_actor(name, opts, pos)
  if (opts.actors and #opts.actors > 0) or opts.shard then
    cli.usage_error("%s: the actor is the argument; --actor and --shard do not apply", name)
  end
  return pos[1]
end

return M
