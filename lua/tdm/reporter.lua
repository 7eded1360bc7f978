--- tdm.reporter: what a bulk command prints. Human mode: one line per
-- file action on stdout in plain words, errors on stderr, a progress bar
-- on stderr when it is a terminal, the summary line on stderr. --json:
-- one JSON object per event on stdout, the summary last. Every line also
-- goes to --log-file (tdm.log).
--
--   local r = reporter.new("pull-all", opts, cfg)
--   r:event { actor =, file =, action =, result =, ... }
--   r:fail(actor, file, message, code)
--   r:progress(files_done, files_total, bytes_done, bytes_total)
--   return r:finish(summary, findings)   -- the exit code
local core = require "tdm.core"
local log = require "tdm.log"

local reporter = {}

local Reporter = {}
Reporter.__index = Reporter

function reporter.human_bytes(n)
  if n >= 1073741824 then return string.format("%.1f GB", n / 1073741824) end
  if n >= 1048576 then return string.format("%.1f MB", n / 1048576) end
  if n >= 1024 then return string.format("%.1f KB", n / 1024) end
  return string.format("%d B", n)
end
local human_bytes = reporter.human_bytes

-- What an event says in plain words ("ACTION RESULT" -> words); events
-- not listed print as "ACTION RESULT". The --json events keep the terse
-- names (scripts match on them).
local plain = {
  ["scan added"] = "new local file, added to the manifest",
  ["scan changed"] = "local file changed, hashed again",
  ["scan vanished"] = "not on local disk",
  ["scan skipped"] = "skipped",
  ["list added"] = "new in S3, added to the manifest",
  ["list gone"] = "no longer in S3",
  ["prune removed"] = "entry removed (the file exists nowhere)",
  ["download ok"] = "downloaded",
  ["download planned"] = "would download",
  ["upload ok"] = "uploaded",
  ["upload planned"] = "would upload",
  ["overwrite ok"] = "uploaded over the S3 copy",
  ["overwrite planned"] = "would upload over the S3 copy",
  ["manifest created"] = "manifest created",
  ["manifest updated"] = "manifest updated",
  ["manifest unchanged"] = "manifest already up to date",
  ["manifest would create"] = "would create the manifest",
  ["manifest would update"] = "would update the manifest",
  ["delete-local ok"] = "deleted locally",
  ["delete-s3 ok"] = "deleted from S3",
  ["skip ignored"] = "ignored",
  ["hold skipped"] = "held back",
  ["skip stray key"] = "S3 object outside any actor folder, skipped",
  -- migrate: the legacy response.json
  ["delete ok"] = "legacy file deleted (its manifest is saved)",
  ["delete planned"] = "would delete the legacy file",
  ["keep ok"] = "legacy file kept (--keep-legacy)",
  ["keep planned"] = "would keep the legacy file",
}
-- migrate: an entry added or updated, with the status it has now.
for _, st in ipairs(core.layout.statuses) do
  plain["add " .. st] = "added to the manifest, " .. st
  plain["update " .. st] = "manifest entry updated, " .. st
end
reporter.plain = plain

--- A reporter for one run of command `name` with parsed `opts` and the
-- run's configuration `cfg` (its bucket and endpoint go into the summary).
function reporter.new(name, opts, cfg)
  local cjson = require "cjson"
  local r = setmetatable({
    name = name, json = opts.json, quiet = opts.quiet, dry_run = opts.dry_run,
    cjson = cjson, tty = core.isatty(2) and not opts.json,
    errors = 0, config_errors = 0, events = 0, started = core.now(),
    last_draw = 0, drawn = false, cfg = cfg, shard = opts.shard,
    named_actors = opts.actors and #opts.actors > 0,
  }, Reporter)
  if cfg then
    log.verbose("%s: bucket %s, prefix %s, endpoint %s, region %s, profile %s",
                name, cfg.bucket, cfg.prefix, cfg.endpoint or "(AWS)",
                cfg.region, cfg.profile or "(none)")
  end
  if opts.shard and not opts.json then
    log.out(io.stderr, string.format("%s: shard %s", name,
                                     require("tdm.shard").describe(opts.shard)))
  end
  return r
end

function Reporter:clear_progress()
  if self.drawn then
    io.stderr:write("\r\27[K")
    self.drawn = false
  end
end

--- The human line of an event.
function reporter.line(ev, dry_run)
  local where = ev.actor and ev.file and (ev.actor .. "/" .. ev.file) or ev.actor or ev.file or ""
  local what = (ev.action or "") .. (ev.result and (" " .. ev.result) or "")
  what = plain[what] or what
  local line = string.format("%s%s: %s", dry_run and "(dry run) " or "", where, what)
  if ev.error then line = line .. ": " .. ev.error end
  return line
end

--- One action on one file: { actor =, file =, action =, result =, ... }.
-- JSON mode prints it as one line; human mode prints "actor/file: what
-- happened" unless --quiet.
function Reporter:event(ev)
  self.events = self.events + 1
  if self.dry_run and ev.dry_run == nil then ev.dry_run = true end
  if self.json then
    log.out(io.stdout, self.cjson.encode(ev))
  elseif not self.quiet then
    self:clear_progress()
    log.out(io.stdout, reporter.line(ev, self.dry_run))
  else
    log.file_only(reporter.line(ev, self.dry_run))
  end
  io.stdout:flush()
end

--- Something skipped on purpose that the operator should hear of (an S3
-- key outside any actor folder): a JSON event in --json, else one line
-- "tdm-lua: COMMAND: warning: ..." on stderr. Not an error: the exit code
-- is unchanged.
function Reporter:warn(ev)
  if self.json then return self:event(ev) end
  self:clear_progress()
  log.out(io.stderr, "tdm-lua: " .. self.name .. ": warning: "
          .. reporter.line(ev, self.dry_run))
end

-- Whether an error with `code` is the configuration's fault (exit 2).
function Reporter:is_config_error(code)
  local cli = require "tdm.cli"
  if cli.CONFIG_CODES[code] then return true end
  -- An actor named on the command line that exists nowhere or is no name.
  return (code == "ENOACTOR" or code == "EBADNAME")
    and (self.named_actors or self.one_actor) or false
end

--- An error that does not stop the run (a bad actor, a failed transfer):
-- one line on stderr (and a JSON event with result "error" in --json).
function Reporter:fail(actor, file, message, code)
  self.errors = self.errors + 1
  if self:is_config_error(code) then self.config_errors = self.config_errors + 1 end
  if self.json then
    self:event({ actor = actor, file = file, action = "error", result = "error",
                 error = message, code = code })
  else
    self:clear_progress()
    log.out(io.stderr, "tdm-lua: " .. self.name .. ": " .. message)
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

--- Print the summary (a flat table of counts and figures, plus the
-- bucket, endpoint and shard the run used) and return the exit code: 130
-- when interrupted, 2 when an error was a configuration error, 1 when
-- there were other errors (or `findings` is true), else 0.
function Reporter:finish(summary, findings)
  self:clear_progress()
  summary = summary or {}
  summary.errors = self.errors
  summary.seconds = tonumber(string.format("%.3f", core.now() - self.started))
  if self.cfg then
    summary.bucket = self.cfg.bucket
    summary.endpoint = self.cfg.endpoint or "aws"
  end
  if self.shard then summary.shard = self.shard.k .. "/" .. self.shard.n end
  if self.dry_run then summary.dry_run = true end
  local interrupted = core.interrupted()
  if interrupted then summary.interrupted = true end
  if self.json then
    log.out(io.stdout, self.cjson.encode({ summary = summary, command = self.name }))
  else
    local keys = {}
    for k in pairs(summary) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(summary[k]) end
    log.out(io.stderr, string.format("%s%s: %s", self.dry_run and "(dry run) " or "",
                                     self.name, table.concat(parts, " ")))
  end
  io.stdout:flush()
  if interrupted then return 130 end
  if self.config_errors > 0 then return 2 end
  if self.errors > 0 or findings then return 1 end
  return 0
end

return reporter
