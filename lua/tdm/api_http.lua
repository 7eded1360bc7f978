--- tdm.api_http: the HTTP adapter of tdm.API for `tdm-lua serve`: routes,
-- methods, statuses and JSON bodies. The server itself (threads, limits,
-- multipart, token, cross-site checks) is the core's (src/tdm_http.c);
-- each worker thread calls http_worker(settings) once in its own Lua
-- state and gets { preflight = f, handle = f } (see src/lhttp.c for req).
local core = require "tdm.core"
local API = require "tdm.api"

local M = {}

local parse_actor_id, check_filename = API.parse_actor_id, API.check_filename
local function manifest_mod() return require "tdm.manifest" end

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Split a raw path into decoded segments; nil when it is not absolute.
local function segments(path)
  if path:sub(1, 1) ~= "/" then return nil end
  local segs = {}
  for seg in path:gmatch("[^/]+") do segs[#segs + 1] = percent_decode(seg) end
  return segs
end

-- Printable ASCII for echoing client-supplied names in messages.
local function safe_text(s)
  s = tostring(s):gsub("[^%w%._%- ]", "?")
  if #s > 80 then s = s:sub(1, 77) .. "..." end
  return s
end

-- The HTTP status of failure `code`: the core's one error table
-- (tdm.core.errors, from include/tdm/errcodes.def); an S3 code not in it
-- is S3's own answer (a 5xx one: unreachable, 503; else 502); the rest 500.
local ERRORS = core.errors
local function status_of(code)
  code = tostring(code or "")
  local known = ERRORS[code]
  if known and known.http_status then return known.http_status end
  if code:match("^S3_HTTP5%d%d$") then return 503 end
  if code:match("^S3_") then return 502 end
  return 500
end

-- S3 could not be reached or was busy (a LOCKED manifest is not S3).
local function unreachable(code)
  return code ~= "LOCKED" and status_of(code) == 503
end

local function json_response(status, body, headers)
  return status, API.encode_json(body) .. "\n", headers
end

local function error_response(status, message, headers)
  return json_response(status, { error = message }, headers)
end

-- The HTTP status and a message safe to show for a failure of the world;
-- details that could hold paths go to the server log only.
local function failure(what, msg, code, id, filename)
  local status = status_of(code)
  io.stderr:write(string.format("tdm-lua serve: %s: %s (%s)\n", what,
                                tostring(msg), tostring(code)))
  local shown
  if status == 404 and code == "ENOACTOR" then
    shown = string.format("unknown actor %d", id)
  elseif status == 404 then
    shown = filename and string.format("actor %d has no training image '%s'",
                                       id, safe_text(filename))
            or "not found"
  elseif status == 400 then
    shown = "bad request"
  elseif code == "BADMANIFEST" then
    shown = string.format("the manifest of actor %d is invalid (see the "
                          .. "server log; `tdm-lua audit` reports it)", id)
  elseif status == 503 and code == "LOCKED" then
    return error_response(503, "the actor's manifest is busy; retry",
                          { ["Retry-After"] = "1" })
  elseif status == 503 then
    return error_response(503, "S3 is unreachable; retry later",
                          { ["Retry-After"] = "5" })
  elseif status == 502 then
    shown = "S3 refused the request (" .. safe_text(code) .. ")"
  else
    shown = "internal error"
  end
  return error_response(status, shown)
end

local UNKNOWN_TTL = 5   -- seconds a worker remembers an unknown actor id

local ALLOW_COLLECTION = "GET, HEAD, POST"
local ALLOW_ITEM = "DELETE"
local ALLOW_HEALTH = "GET, HEAD"

-- Route a request: -> kind ("health" | "collection" | "item"), id,
-- filename | nil, status, message.
local function route(req)
  local segs = segments(req.path)
  if not segs then return nil, 400, "malformed path" end
  if #segs == 1 and segs[1] == "healthz" then return "health" end
  if #segs < 4 or #segs > 5 or segs[1] ~= "api" or segs[2] ~= "actors"
     or segs[4] ~= "training-data" then
    return nil, 404, "not found"
  end
  local id = parse_actor_id(segs[3])
  if not id then return nil, 400, "malformed actor id" end
  if #segs == 4 then return "collection", id end
  if not check_filename(segs[5]) then
    return nil, 400, "malformed filename"
  end
  return "item", id, segs[5]
end

local function method_allowed(kind, method)
  if kind == "health" then
    return method == "GET" or method == "HEAD", ALLOW_HEALTH
  elseif kind == "collection" then
    return method == "GET" or method == "HEAD" or method == "POST",
      ALLOW_COLLECTION
  end
  return method == "DELETE", ALLOW_ITEM
end

local function truthy(v)
  v = tostring(v or ""):lower()
  return v == "true" or v == "1" or v == "yes"
end

--- The request handler of `tdm-lua serve` for one worker state: settings
-- are tdm.config overrides (strings). See src/lhttp.c for `req`.
function M.http_worker(settings)
  local api = API.new(settings)
  local unknown, nunknown = {}, 0     -- id -> time seen (at most 4096)

  local function check(req)
    local kind, id, filename = route(req)
    if not kind then return nil, error_response(id, filename) end
    local allowed, allow = method_allowed(kind, req.method)
    if not allowed then
      return nil, error_response(405, "method not allowed", { Allow = allow })
    end
    return kind, id, filename
  end

  -- Before a body is read: refuse what cannot succeed (nil = go on).
  local function preflight(req)
    local kind, a, b, c = check(req)
    if not kind then return a, b, c end
    if kind == "collection" and req.method == "POST"
       and not manifest_mod().paths(a, api.cfg) then
      -- not known locally: maybe only in S3 (auto-initialized), else 404
      local paths, msg, code = api:ensure_manifest(a)
      if not paths then return failure("POST actor " .. a, msg, code, a) end
    end
    return nil
  end

  local function handle(req)
    local kind, id, filename, headers = check(req)
    if not kind then return id, filename, headers end
    local method = req.method
    if kind == "health" then
      return json_response(200, { status = "ok" })
    end
    if kind == "collection" and (method == "GET" or method == "HEAD") then
      -- An unknown id costs an S3 listing (auto-initialization); this
      -- worker remembers it for UNKNOWN_TTL seconds, so a client cycling
      -- through ids cannot turn each request into an S3 call.
      local seen = unknown[id]
      if seen and core.now() - seen < UNKNOWN_TTL then
        return error_response(404, string.format("unknown actor %d", id))
      end
      local data, msg, code = api:get_training_data(id)
      if not data then
        if code == "ENOACTOR" then
          if nunknown >= 4096 then unknown, nunknown = {}, 0 end
          if not unknown[id] then nunknown = nunknown + 1 end
          unknown[id] = core.now()
        end
        return failure("GET actor " .. id, msg, code, id)
      end
      unknown[id] = nil
      return json_response(200, data)
    end
    if kind == "collection" then   -- POST
      local files = {}
      for _, f in ipairs(req.files or {}) do
        -- a browser sends an empty file input as a part with no name and
        -- no bytes: not a file
        if f.filename ~= "" or #f.data > 0 then
          files[#files + 1] = { data = f.data, filename = safe_text(f.filename) }
        end
      end
      if req.body then
        files[#files + 1] = { data = req.body, filename = "body" }
      end
      if #files == 0 then
        return error_response(400, "no files in the request (send "
                              .. "multipart/form-data with one or more files)")
      end
      local res, msg, code = api:upload_training_images(id, files)
      if not res then
        if code == "EBADIMAGE" or code == "E2BIG" then
          return error_response(status_of(code), msg)
        end
        return failure("upload to actor " .. id, msg, code, id)
      end
      local status = 201
      if res.failed_count > 0 then
        local all_unreachable, first_code = true, nil
        for _, f in ipairs(res.files) do
          if f.error then
            first_code = first_code or f.code
            io.stderr:write(string.format(
              "tdm-lua serve: upload %s: %s (%s)\n", f.filename, f.error,
              f.code))
            if not unreachable(f.code) then all_unreachable = false end
            f.error = unreachable(f.code) and "S3 is unreachable"
                      or "upload failed (" .. safe_text(f.code) .. ")"
          end
        end
        -- all failed: the first failure's status (from the error table)
        if res.uploaded_count > 0 then status = 207
        elseif all_unreachable then status = 503
        else status = status_of(first_code) end
      end
      return json_response(status, res)
    end
    -- DELETE
    local also_s3 = truthy(percent_decode(req.query.s3 or ""))
    local res, msg, code = api:delete_training_image(id, filename,
                                                     { s3 = also_s3 })
    if not res then
      return failure("DELETE " .. filename, msg, code, id, filename)
    end
    return json_response(200, res)
  end

  return { preflight = preflight, handle = handle }
end

M.status_of = status_of

return M
