--- tdm.log: where a command's lines go. Normal lines go to stdout or
-- stderr as the reporter decides; -v/--verbose and --debug add detail
-- lines on stderr; --log-file PATH appends every line, each prefixed with
-- an ISO 8601 UTC timestamp, to PATH as well.
--
--   log.setup { verbose = true, debug = false, file = "/var/log/tdm.log" }
--   log.out(io.stderr, "pull-all: downloaded=3 ...")
--   log.verbose("GET %s -> %d", key, status)   -- only with -v or --debug
--   log.debug("signing %s", what)              -- only with --debug
local core = require "tdm.core"

local log = { level = 0 }
local file

--- The current time as "YYYY-MM-DDTHH:MM:SS.mmmZ".
function log.iso(t)
  t = t or core.now()
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) ..
         string.format(".%03dZ", math.floor((t - s) * 1000))
end

--- Set the level (1 verbose, 2 debug) and open the log file (appending).
-- Returns true or nil, message.
function log.setup(o)
  log.level = o.debug and 2 or (o.verbose and 1 or 0)
  if file then file:close(); file = nil end
  if o.file then
    local f, err = io.open(o.file, "a")
    if not f then return nil, "--log-file: " .. err end
    f:setvbuf("line")
    file = f
  end
  return true
end

--- Write `line` (no newline) to `stream` and to the log file.
function log.out(stream, line)
  if stream then stream:write(line, "\n") end
  if file then file:write(log.iso(), " ", line, "\n") end
end

--- Write `line` to the log file only (lines the terminal does not show).
function log.file_only(line)
  if file then file:write(log.iso(), " ", line, "\n") end
end

--- A detail line on stderr (and the log file) at -v or above.
function log.verbose(fmt, ...)
  if log.level >= 1 then log.out(io.stderr, string.format(fmt, ...)) end
end

--- A detail line on stderr (and the log file) at --debug.
function log.debug(fmt, ...)
  if log.level >= 2 then log.out(io.stderr, string.format(fmt, ...)) end
end

return log
