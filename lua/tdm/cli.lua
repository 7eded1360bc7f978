--- tdm.cli -- what every bundled command shares: option parsing, --help,
-- the configuration overrides, actor selection (--actor, --shard), the
-- reporter (human lines, --json lines, a progress bar on a terminal, the
-- summary) and exit codes.
--
--   local cli = require "tdm.cli"
--   return cli.command {
--     name = "pull-all", summary = "download everything missing locally",
--     usage = "tdm-lua pull-all [options]", bulk = true,
--     description = "...",
--     options = { { "--repair", "repair", "flag", "also re-download out_of_sync files" } },
--     args = { min = 0, max = 0 },
--     run = function(opts, positionals) ... return cli.EXIT.OK end,
--   }
local core = require "tdm.core"
local config = require "tdm.config"

local cli = {}

--- Exit codes (README "Exit codes").
cli.EXIT = { OK = 0, FINDINGS = 1, PARTIAL = 1, USAGE = 2, INTERRUPTED = 130 }

--- Raise a usage or configuration error: the host prints
-- "tdm-lua: MESSAGE" and exits 2.
function cli.usage_error(fmt, ...)
  error({ exit_code = cli.EXIT.USAGE, message = string.format(fmt, ...) }, 0)
end

-- Options every command takes (configuration overrides), then those of
-- every bulk command. Each: { flag, key, kind, help[, metavar] }; kind is
-- "flag", "value", "number" or "list" (repeatable).
local common_options = {
  { "--data-root", "data_root", "value", "data root (default: TDM_DATA_ROOT or ./data)", "DIR" },
  { "--bucket", "bucket", "value", "S3 bucket (default: TDM_BUCKET or story-boards-assets)", "NAME" },
  { "--prefix", "prefix", "value", "S3 key prefix (default: TDM_PREFIX)", "PREFIX" },
  { "--help", "help", "flag", "show this help" },
}
local bulk_options = {
  { "--dry-run", "dry_run", "flag", "print the plan; change nothing anywhere" },
  { "--json", "json", "flag", "one JSON object per line on stdout, for machines" },
  { "--jobs", "jobs", "number", "concurrent transfers/hashes (default: TDM_JOBS or 32)", "N" },
  { "--actor", "actors", "list", "only this actor (id or name; repeatable)", "ACTOR" },
  { "--shard", "shard", "value", "only shard K of N (stable split of actors across hosts)", "K/N" },
  { "--quiet", "quiet", "flag", "no per-file lines, only errors and the summary" },
}

local function option_list(spec)
  local list = {}
  for _, o in ipairs(spec.options or {}) do list[#list + 1] = o end
  if spec.bulk then
    for _, o in ipairs(bulk_options) do list[#list + 1] = o end
  end
  for _, o in ipairs(common_options) do list[#list + 1] = o end
  return list
end

--- The full help text of a command.
function cli.help(spec)
  local lines = { "usage: " .. spec.usage, "" }
  if spec.description then lines[#lines + 1] = spec.description; lines[#lines + 1] = "" end
  lines[#lines + 1] = "options:"
  for _, o in ipairs(option_list(spec)) do
    local left = o[1] .. (o[5] and (" " .. o[5]) or "")
    lines[#lines + 1] = string.format("  %-22s %s", left, o[4])
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = spec.exit_codes or
    "exit codes: 0 done, 1 findings or partial failure, 2 usage or " ..
    "configuration error, 130 interrupted"
  return table.concat(lines, "\n")
end

--- Parse `args` (a list of strings) by `spec`; returns opts, positionals.
-- Raises a usage error (exit 2) on an unknown option or a bad value.
function cli.parse(args, spec)
  local by_flag = {}
  for _, o in ipairs(option_list(spec)) do by_flag[o[1]] = o end
  local opts, pos = { actors = {} }, {}
  local i, only_pos = 1, false
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    flag = flag or a
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_pos = true
    elseif a == "-h" then
      opts.help = true
    else
      local o = by_flag[flag]
      if not o then cli.usage_error("%s: unknown option '%s'", spec.name, flag) end
      if o[3] == "flag" then
        if inline then cli.usage_error("%s: %s takes no value", spec.name, flag) end
        opts[o[2]] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
          if v == nil then cli.usage_error("%s: %s needs a value", spec.name, flag) end
        end
        if o[3] == "number" then
          local n = math.tointeger(tonumber(v))
          if not n or n < 1 then
            cli.usage_error("%s: %s needs a positive whole number, got '%s'", spec.name, flag, v)
          end
          v = n
        end
        if o[3] == "list" then
          local l = opts[o[2]] or {}
          l[#l + 1] = v
          opts[o[2]] = l
        else
          opts[o[2]] = v
        end
      end
    end
    i = i + 1
  end
  if opts.shard then
    local k, n = opts.shard:match("^(%d+)/(%d+)$")
    k, n = tonumber(k), tonumber(n)
    if not k or n < 1 or k < 1 or k > n then
      cli.usage_error("%s: --shard needs K/N with 1 <= K <= N, got '%s'", spec.name, opts.shard)
    end
    opts.shard = { k = k, n = n }
  end
  local min, max = (spec.args or {}).min or 0, (spec.args or {}).max or 0
  if not opts.help and (#pos < min or #pos > max) then
    local want = min == max and tostring(min) or (min .. " to " .. max)
    cli.usage_error("%s: expected %s argument%s, got %d\nusage: %s", spec.name,
      want, (min == max and max == 1) and "" or "s", #pos, spec.usage)
  end
  return opts, pos
end

--- The configuration for this run: tdm.config() with the command line's
-- overrides (and --jobs).
function cli.config(opts)
  local overrides = {}
  for _, k in ipairs({ "data_root", "bucket", "prefix", "jobs" }) do
    if opts[k] ~= nil then overrides[k] = opts[k] end
  end
  return config(overrides)
end

--- The numeric id of an actor name or id ("0042_x" -> 42), or nil.
function cli.actor_number(actor)
  return tonumber(tostring(actor):match("^(%d+)"))
end

--- Whether `actor_name` is selected by --actor and --shard. --actor
-- matches the full name, the padded id ("0042") or the number ("42").
function cli.selected(opts, actor_name)
  local num = cli.actor_number(actor_name)
  if opts.actors and #opts.actors > 0 then
    local hit = false
    for _, a in ipairs(opts.actors) do
      if a == actor_name or (num and cli.actor_number(a) == num
                             and a:match("^%d+$")) then
        hit = true
        break
      end
    end
    if not hit then return false end
  end
  if opts.shard then
    -- Stable across hosts and runs: the actor number when there is one,
    -- else a hash of the name.
    local key = num
    if not key then
      key = 0
      for c in actor_name:gmatch(".") do key = (key * 31 + c:byte()) % 2147483647 end
    end
    return key % opts.shard.n == opts.shard.k - 1
  end
  return true
end

--- Build a command module from a spec (see the top of this file).
function cli.command(spec)
  assert(spec.name and spec.usage and spec.run, "cli.command: name, usage and run are required")
  return {
    summary = spec.summary,
    usage = cli.help(spec),
    spec = spec,
    run = function(args)
      local opts, pos = cli.parse(args, spec)
      if opts.help then
        print(cli.help(spec))
        return cli.EXIT.OK
      end
      return spec.run(opts, pos)
    end,
  }
end

-- Reporter -----------------------------------------------------------------

local Reporter = {}
Reporter.__index = Reporter

local function human_bytes(n)
  if n >= 1073741824 then return string.format("%.1f GB", n / 1073741824) end
  if n >= 1048576 then return string.format("%.1f MB", n / 1048576) end
  if n >= 1024 then return string.format("%.1f KB", n / 1024) end
  return string.format("%d B", n)
end
cli.human_bytes = human_bytes

--- A reporter for one run of command `name`: `event` per file action,
-- `fail` per error, `progress` as work proceeds, `finish` for the summary.
function cli.reporter(name, opts)
  local cjson = require "cjson"
  return setmetatable({
    name = name, json = opts.json, quiet = opts.quiet, dry_run = opts.dry_run,
    cjson = cjson, tty = core.isatty(2) and not opts.json,
    errors = 0, events = 0, started = core.now(), last_draw = 0,
    drawn = false,
  }, Reporter)
end

function Reporter:clear_progress()
  if self.drawn then
    io.stderr:write("\r\27[K")
    self.drawn = false
  end
end

--- One action on one file: { actor =, file =, action =, result =, ... }.
-- JSON mode prints it as one line; human mode prints "actor/file: action
-- result" unless --quiet.
function Reporter:event(ev)
  self.events = self.events + 1
  if self.dry_run and ev.dry_run == nil then ev.dry_run = true end
  if self.json then
    io.stdout:write(self.cjson.encode(ev), "\n")
  elseif not self.quiet then
    self:clear_progress()
    local where = ev.actor and ev.file and (ev.actor .. "/" .. ev.file) or ev.actor or ev.file or ""
    local line = string.format("%s%s: %s%s", self.dry_run and "(dry run) " or "", where,
                               ev.action or "", ev.result and (" " .. ev.result) or "")
    if ev.error then line = line .. ": " .. ev.error end
    io.stdout:write(line, "\n")
  end
  io.stdout:flush()
end

--- An error that does not stop the run (a bad actor, a failed transfer):
-- one line on stderr (and a JSON event with result "error" in --json).
function Reporter:fail(actor, file, message, code)
  self.errors = self.errors + 1
  if self.json then
    self:event({ actor = actor, file = file, action = "error", result = "error",
                 error = message, code = code })
  else
    self:clear_progress()
    io.stderr:write("tdm-lua: ", self.name, ": ", message, "\n")
  end
end

--- Progress on stderr when it is a terminal, at most 10 redraws/s:
-- files done/total, bytes done, rate and ETA.
function Reporter:progress(files_done, files_total, bytes_done, bytes_total)
  if not self.tty then return end
  local now = core.now()
  if now - self.last_draw < 0.1 and files_done < (files_total or 0) then return end
  self.last_draw = now
  local elapsed = math.max(now - self.started, 0.001)
  local rate = bytes_done / elapsed
  local frac = (files_total and files_total > 0) and files_done / files_total or 0
  local width = 24
  local bar = string.rep("#", math.floor(frac * width)) .. string.rep(".", width - math.floor(frac * width))
  local eta = ""
  if bytes_total and bytes_total > 0 and rate > 0 then
    local s = math.floor((bytes_total - bytes_done) / rate)
    eta = string.format("  ETA %d:%02d", s // 60, s % 60)
  elseif frac > 0 then
    local s = math.floor(elapsed / frac - elapsed)
    eta = string.format("  ETA %d:%02d", s // 60, s % 60)
  end
  io.stderr:write(string.format("\r\27[K[%s] %d/%s files  %s  %s/s%s", bar, files_done,
                                files_total and tostring(files_total) or "?",
                                human_bytes(bytes_done), human_bytes(rate), eta))
  self.drawn = true
end

--- Print the summary (a flat table of counts and figures) and return the
-- exit code: 130 when interrupted, 1 when there were errors (or `findings`
-- is true), else 0.
function Reporter:finish(summary, findings)
  self:clear_progress()
  summary = summary or {}
  summary.errors = self.errors
  summary.seconds = tonumber(string.format("%.3f", core.now() - self.started))
  if self.dry_run then summary.dry_run = true end
  local interrupted = core.interrupted()
  if interrupted then summary.interrupted = true end
  if self.json then
    io.stdout:write(self.cjson.encode({ summary = summary, command = self.name }), "\n")
  else
    local keys = {}
    for k in pairs(summary) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(summary[k]) end
    io.stderr:write(string.format("%s%s: %s\n", self.dry_run and "(dry run) " or "",
                                  self.name, table.concat(parts, " ")))
  end
  io.stdout:flush()
  if interrupted then return cli.EXIT.INTERRUPTED end
  if self.errors > 0 or findings then return cli.EXIT.FINDINGS end
  return cli.EXIT.OK
end

return cli
