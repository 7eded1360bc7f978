--- tdm-lua serve: the HTTP API (the seed's GET /api/actors/:actorId/
-- training-data, plus upload and delete) on libmicrohttpd.
local core = require "tdm.core"
local cli = require "tdm.cli"

local description = [[
Serve the training-data API until SIGTERM or SIGINT (requests in flight
finish; exit 0):

  GET    /api/actors/:actorId/training-data            the actor's images
  POST   /api/actors/:actorId/training-data            multipart/form-data
                                                       upload, one or more
                                                       JPEG/PNG/WebP files
  DELETE /api/actors/:actorId/training-data/:filename  [?s3=true]
  GET    /healthz

Errors are JSON {"error": "..."}: 400 malformed id or filename, 401 bad
token, 404 unknown actor or file, 405, 413 a file over TDM_API_MAX_UPLOAD
(default 20 MB), 415 not an image, 503 S3 unreachable. With TDM_API_TOKEN
set, POST and DELETE need "Authorization: Bearer TOKEN". A POST or DELETE
from a web page of another origin (Origin, or Sec-Fetch-Site: cross-site)
is refused 403 unless TDM_API_ALLOWED_ORIGINS lists it; a Host header
naming another server (DNS rebinding) is refused 403. One access-log line
per request on stderr.]]

local function is_loopback(listen)
  local host = listen:match("^%[(.*)%]:%d+$") or listen:match("^(.*):%d+$")
               or "127.0.0.1"
  return host == "127.0.0.1" or host == "::1" or host == "localhost"
         or host:match("^127%.") ~= nil
end

return cli.command {
  name = "serve",
  summary = "HTTP API: GET/POST/DELETE /api/actors/:actorId/training-data",
  usage = "tdm-lua serve [--listen HOST:PORT] [--threads N] [options]",
  description = description,
  options = {
    { "--listen", "listen", "value",
      "address to listen on (default: TDM_API_LISTEN or 127.0.0.1:8080)",
      "HOST:PORT" },
    { "--threads", "threads", "number",
      "worker threads, each with its own Lua state (default 4)", "N" },
  },
  exit_codes = "exit codes: 0 stopped by SIGTERM/SIGINT, 1 cannot listen, "
    .. "2 usage or configuration error",
  run = function(opts)
    local cfg = cli.config(opts)
    local listen = opts.listen or cfg.api_listen or "127.0.0.1:8080"
    -- Each worker state resolves its own tdm.config(); it gets the command
    -- line's overrides so it sees the same settings as this state.
    local settings = cli.overrides(opts)
    if not is_loopback(listen) and not cfg.api_token then
      io.stderr:write("tdm-lua serve: warning: listening on ", listen,
                      " with no TDM_API_TOKEN: anyone who can reach it may ",
                      "upload and delete\n")
    end
    local origins = {}
    for o in (cfg.api_allowed_origins or ""):gmatch("[^,%s]+") do
      if not o:match("^%a[%w+.-]*://[^/]+/?$") then
        cli.usage_error("TDM_API_ALLOWED_ORIGINS: '%s' is not an origin "
                        .. "(want SCHEME://HOST[:PORT], e.g. "
                        .. "https://ops.example.com)", o)
      end
      origins[#origins + 1] = o
    end
    local ok, msg = core.http_serve {
      listen = listen,
      threads = opts.threads or 4,
      handler = "tdm.api_http",
      settings = settings,
      token = cfg.api_token,
      allowed_origins = origins,
      max_upload = cfg.api_max_upload,
      quiet = opts.quiet,
    }
    if not ok then
      io.stderr:write("tdm-lua: serve: ", msg, "\n")
      return 1
    end
    return 0
  end,
}
