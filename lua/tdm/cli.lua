--- tdm.cli -- what every bundled command shares: option parsing, --help,
-- "did you mean", the configuration overrides, actor selection (--actor,
-- --shard or the job engine's shard), logging options and exit codes.
-- The reporter (per-file lines, --json, progress, summary) is tdm.reporter.
--
--   local cli = require "tdm.cli"
--   return cli.command {
--     name = "pull-all", summary = "download everything missing locally",
--     usage = "tdm-lua pull-all [options]",
--     bulk = true,      -- --dry-run, --json, --jobs
--     select = true,    -- --actor, --shard (default: the value of bulk)
--     description = "...",
--     options = { { "--repair", "repair", "flag", "also re-download ..." } },
--     args = { min = 0, max = 0 },
--     run = function(opts, positionals) ... return cli.EXIT.OK end,
--   }
local config = require "tdm.config"
local shard = require "tdm.shard"
local log = require "tdm.log"

local cli = {}

--- Exit codes (README "Exit codes").
cli.EXIT = { OK = 0, FINDINGS = 1, PARTIAL = 1, USAGE = 2, INTERRUPTED = 130 }

--- Error codes that mean "the configuration or the command line is wrong"
-- rather than "the world failed": a run that meets one exits 2.
cli.CONFIG_CODES = { ECONFIG = true, EUSAGE = true, ENOCREDS = true, EBADCREDS = true,
                     S3_NoSuchBucket = true, S3_InvalidBucketName = true,
                     S3_InvalidAccessKeyId = true, S3_SignatureDoesNotMatch = true }

-- The error object of a usage or configuration error: prints as its
-- message (also in a stock lua5.4); the host exits with exit_code.
local UsageError = { __name = "tdm.UsageError" }
function UsageError.__tostring(e) return e.message end

--- Raise a usage or configuration error: the host prints
-- "tdm-lua: MESSAGE" and exits 2.
function cli.usage_error(fmt, ...)
  error(setmetatable({ exit_code = cli.EXIT.USAGE, code = "EUSAGE",
                       message = string.format(fmt, ...) }, UsageError), 0)
end

-- Option groups. Each option: { flag, key, kind, help, metavar,
-- alias = { other spellings } }; kind is "flag", "value", "number" or
-- "list" (repeatable).
local groups = {
  -- Every command built with cli.command (they all read the settings).
  settings = {
    { "--data-root", "data_root", "value", "data root (default: TDM_DATA_ROOT or ./data)", "DIR" },
    { "--bucket", "bucket", "value", "S3 bucket (default: TDM_BUCKET or story-boards-assets)", "NAME" },
    { "--prefix", "prefix", "value", "S3 key prefix (default: TDM_PREFIX)", "PREFIX" },
    { "--profile", "profile", "value", "AWS profile in ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE)", "NAME" },
    { "--region", "region", "value", "AWS region to sign for (default: AWS_REGION, the profile's, us-west-1)", "REGION" },
    { "--endpoint-url", "endpoint", "value", "S3 endpoint, e.g. http://127.0.0.1:4568 (default: AWS_ENDPOINT_URL)", "URL" },
  },
  output = {
    { "--verbose", "verbose", "flag", "more detail on stderr (per-request lines: method, key, status, attempt, ms)", alias = { "-v" } },
    { "--debug", "debug", "flag", "everything --verbose shows, plus signing inputs (secrets masked), retries, timings" },
    { "--log-file", "log_file", "value", "also append every line, with an ISO 8601 timestamp, to PATH", "PATH" },
    { "--quiet", "quiet", "flag", "no per-file lines, only errors and the summary", alias = { "-q" } },
    { "--help", "help", "flag", "show this help", alias = { "-h" } },
  },
  bulk = {
    { "--dry-run", "dry_run", "flag", "print the plan; change nothing anywhere", alias = { "--dryrun", "-n" } },
    { "--json", "json", "flag", "one JSON object per line on stdout, for machines" },
    { "--jobs", "jobs", "number", "concurrent transfers/hashes (default: TDM_JOBS or 32)", "N" },
  },
  select = {
    { "--actor", "actors", "list", "only this actor (id or name; repeatable)", "ACTOR" },
    { "--shard", "shard", "value", "only shard K of N (default: TDM_SHARD, JOB_COMPLETION_INDEX + TDM_SHARDS, SLURM_ARRAY_TASK_ID)", "K/N" },
  },
}
cli.groups = groups

-- The options of a spec, in help order: its own, then the groups that
-- apply. A spec option with the same flag as a group's replaces it.
local function option_list(spec)
  local list, seen = {}, {}
  local function add(o)
    if not seen[o[1]] then seen[o[1]] = true; list[#list + 1] = o end
  end
  for _, o in ipairs(spec.options or {}) do add(o) end
  local use_select = spec.select
  if use_select == nil then use_select = spec.bulk end
  if spec.bulk then for _, o in ipairs(groups.bulk) do add(o) end end
  if use_select then for _, o in ipairs(groups.select) do add(o) end end
  for _, o in ipairs(groups.settings) do add(o) end
  for _, o in ipairs(groups.output) do add(o) end
  return list
end
cli.option_list = option_list

--- Every spelling of every option in `list`, mapped to its option.
local function by_spelling(list)
  local map = {}
  for _, o in ipairs(list) do
    map[o[1]] = o
    for _, a in ipairs(o.alias or {}) do map[a] = o end
  end
  return map
end

-- Edit distance (insertions, deletions, substitutions, transpositions).
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

--- The candidate closest to `word` (a typo of it), or nil: within an
-- edit distance of 2 (1 for short words), or the only one `word` begins.
function cli.suggest(word, candidates)
  local best, best_d, prefixed = nil, math.huge, {}
  for _, c in ipairs(candidates) do
    local d = distance(word, c)
    if d < best_d or (d == best_d and c < best) then best, best_d = c, d end
    if #word >= 3 and c:sub(1, #word) == word then prefixed[#prefixed + 1] = c end
  end
  local limit = #word <= 4 and 1 or 2
  if best_d <= limit then return best end
  if #prefixed == 1 then return prefixed[1] end
  return nil
end

local function did_you_mean(word, candidates)
  local s = cli.suggest(word, candidates)
  return s and string.format(" (did you mean '%s'?)", s) or ""
end

local function spellings(list)
  local out = {}
  for flag in pairs(by_spelling(list)) do out[#out + 1] = flag end
  table.sort(out)
  return out
end

-- `text` cut into lines of at most `width` characters, at spaces.
local function wrap(text, width)
  local lines, cur = {}, ""
  for word in text:gmatch("%S+") do
    if cur ~= "" and #cur + 1 + #word > width then
      lines[#lines + 1] = cur
      cur = word
    else
      cur = cur == "" and word or (cur .. " " .. word)
    end
  end
  lines[#lines + 1] = cur
  return lines
end

cli.wrap = wrap

--- The help text of an option list.
function cli.options_help(list)
  local lines = {}
  for _, o in ipairs(list) do
    local short, long = {}, { o[1] }
    for _, a in ipairs(o.alias or {}) do
      if a:match("^%-%-") then long[#long + 1] = a else short[#short + 1] = a end
    end
    for _, a in ipairs(long) do short[#short + 1] = a end
    local names = table.concat(short, ", ")
    local left = names .. (o[5] and (" " .. o[5]) or "")
    local text = wrap(o[4], 78 - 27)
    if #left > 24 then
      lines[#lines + 1] = "  " .. left
      left = ""
    end
    for n, part in ipairs(text) do
      lines[#lines + 1] = string.format("  %-24s %s", n == 1 and left or "", part)
    end
  end
  return table.concat(lines, "\n")
end

cli.EXIT_TEXT = "exit codes: 0 done, 1 findings or partial failure, 2 usage "
  .. "or configuration error (bad option, tdm.conf, bucket name, endpoint, "
  .. "no credentials, no such bucket, unknown actor), 130 interrupted"
cli.OUTPUT_TEXT = "output: per-file lines on stdout; errors and the summary "
  .. "line (COMMAND: key=value ...) on stderr; with --json, JSON lines on "
  .. "stdout ending with {\"summary\": {...}}"

--- The full help text of a command.
function cli.help(spec)
  local lines = { "usage: " .. spec.usage, "" }
  if spec.description then lines[#lines + 1] = spec.description; lines[#lines + 1] = "" end
  lines[#lines + 1] = "options:"
  lines[#lines + 1] = cli.options_help(option_list(spec))
  lines[#lines + 1] = ""
  if spec.bulk then
    lines[#lines + 1] = table.concat(wrap(cli.OUTPUT_TEXT, 78), "\n")
    lines[#lines + 1] = ""
  end
  lines[#lines + 1] = table.concat(wrap(spec.exit_codes or cli.EXIT_TEXT, 78), "\n")
  return table.concat(lines, "\n")
end

--- Parse `args` (a list of strings) by `spec`; returns opts, positionals.
-- Raises a usage error (exit 2) on an unknown option or a bad value.
function cli.parse(args, spec)
  local list = option_list(spec)
  local map = by_spelling(list)
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
    else
      local o = map[flag]
      if not o then
        cli.usage_error("%s: unknown option '%s'%s; see 'tdm-lua help %s'",
                        spec.name, flag, did_you_mean(flag, spellings(list)),
                        spec.name)
      end
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
  if not opts.help then
    local use_select = spec.select
    if use_select == nil then use_select = spec.bulk end
    if use_select then
      local s, err = shard.resolve(opts.shard, cli.getenv)
      if s == nil then cli.usage_error("%s: %s", spec.name, err) end
      opts.shard = s or nil
    end
    local min, max = (spec.args or {}).min or 0, (spec.args or {}).max or 0
    if #pos < min or #pos > max then
      local want = min == max and tostring(min) or (min .. " to " .. max)
      cli.usage_error("%s: expected %s argument%s, got %d\nusage: %s", spec.name,
        want, (min == max and max == 1) and "" or "s", #pos, spec.usage)
    end
  end
  return opts, pos
end

--- How the job-engine variables are read (tests replace it).
cli.getenv = os.getenv

-- The settings the command line can override.
local setting_keys = { "data_root", "bucket", "prefix", "profile", "region",
                       "endpoint", "jobs" }

--- The configuration for this run: tdm.config() with the command line's
-- overrides, checked as a run needs it (quoted values, bucket name,
-- endpoint) before any request. A problem is a usage error (exit 2).
function cli.config(opts)
  local overrides = {}
  for _, k in ipairs(setting_keys) do
    if opts[k] ~= nil then overrides[k] = opts[k] end
  end
  local cfg, err = config(overrides)
  if not cfg then cli.usage_error("%s", err) end
  local ok, why = cfg:check()
  if not ok then cli.usage_error("%s", why) end
  return cfg
end

--- The command-line overrides as strings (for settings handed to other
-- Lua states, as serve's workers).
function cli.overrides(opts)
  local out = {}
  for _, k in ipairs(setting_keys) do
    if opts[k] ~= nil and k ~= "jobs" then out[k] = tostring(opts[k]) end
  end
  return out
end

--- The numeric id of an actor name or id ("0042_x" -> 42), or nil.
function cli.actor_number(actor)
  return tonumber(tostring(actor):match("^(%d+)"))
end

--- Whether `actor_name` is selected by --actor and the shard. --actor
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
  return shard.selects(opts.shard, actor_name)
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
      local ok, err = log.setup { verbose = opts.verbose, debug = opts.debug,
                                  file = opts.log_file }
      if not ok then cli.usage_error("%s: %s", spec.name, err) end
      -- Per-request lines come from the S3 core (tdm.core.s3_trace).
      local level = opts.debug and 2 or (opts.verbose and 1 or 0)
      if level > 0 then
        ok, err = require("tdm.core").s3_trace(level, opts.log_file)
        if not ok then cli.usage_error("%s: --log-file: %s", spec.name, err) end
      end
      return spec.run(opts, pos)
    end,
  }
end

--- A reporter for one run (see tdm.reporter).
function cli.reporter(name, opts, cfg)
  return require("tdm.reporter").new(name, opts, cfg)
end

cli.human_bytes = function(n) return require("tdm.reporter").human_bytes(n) end

return cli
