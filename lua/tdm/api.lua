--- tdm.API (TrainingDataAPI): the frontend's view of an actor's training
-- data, and its upload and delete actions -- the seed's "API Layer".
--
--   local api = tdm.API.new(cfg)           -- cfg: Config, overrides or nil
--   api:get_training_data(42)              -- the seed's response shape
--   api:delete_training_image(42, "0042_x_3.jpg", { s3 = true })
--   api:upload_training_images(42, { "/tmp/a.jpg", { data = bytes } })
--   tdm.API.encode_json(v)                 -- JSON with the seed's key order
--
-- Failure convention: misuse raises; failures of the world return
-- nil, message, code. Codes: "EINVAL" (malformed id or filename),
-- "ENOACTOR" (unknown actor), "ENOENT" (unknown file), "EBADIMAGE" (not a
-- JPEG/PNG/WebP), "E2BIG" (over cfg.api_max_upload), "LOCKED", and the
-- codes of tdm.Manifest and tdm.s3.
--
-- API.http_worker(settings) is the request handler of `tdm-lua serve`
-- (src/lhttp.c): each worker thread of the server calls it once in its own
-- Lua state and gets { preflight = f, handle = f }.
local core = require "tdm.core"
local config = require "tdm.config"

local API = {}
API.__index = API
API.__name = "tdm.API"

local function manifest_mod() return require "tdm.manifest" end
local function s3_mod() return require "tdm.s3" end
local function sync_mod() return require "tdm.sync" end

--- A JSON null for encode_json (cjson's when it is there).
local ok_cjson, cjson = pcall(require, "cjson")
API.null = ok_cjson and cjson.null or setmetatable({}, { __name = "null" })

--- Mark a (possibly empty) table as a JSON array for encode_json.
local array_mt = { __name = "tdm.json.array" }
function API.array(t) return setmetatable(t or {}, array_mt) end

-- Ordered JSON ---------------------------------------------------------------

-- Keys in the order the seed shows them (response, then image entries),
-- then the keys this module adds. Objects are written in this order;
-- other keys follow, sorted.
local KEY_ORDER = {
  "actor_id", "actor_name", "training_images",
  "source", "index", "filename", "s3_url", "local_exists", "local_path",
  "md5_hash", "size_mb", "modified_date", "status",
  "total_count", "synced_count", "local_only_count", "s3_only_count",
  "out_of_sync_count", "missing_count",
  "deleted_local", "deleted_s3", "files", "uploaded_count", "failed_count",
  "error", "code",
}
local KEY_RANK = {}
for i, k in ipairs(KEY_ORDER) do KEY_RANK[k] = i end

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
              ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

-- A JSON string, ASCII only as Python's json.dumps writes it: non-ASCII
-- as \uXXXX (surrogate pairs above U+FFFF); bytes that are not UTF-8 as
-- \u00XX, so the output is always valid JSON.
local function json_string(s)
  if not s:find('[%c"\\\128-\255]') then return '"' .. s .. '"' end
  local ascii = s:gsub('[%c"\\]', function(c)
    return ESC[c] or string.format("\\u%04x", c:byte())
  end)
  if not ascii:find("[\128-\255]") then return '"' .. ascii .. '"' end
  local out, i, n = {}, 1, #ascii
  while i <= n do
    local b = ascii:byte(i)
    local len = b < 0x80 and 1 or b >= 0xF0 and 4 or b >= 0xE0 and 3
                or b >= 0xC2 and 2 or 0
    local cp
    if len > 0 and i + len - 1 <= n then
      local ok, v = pcall(utf8.codepoint, ascii, i)
      if ok and utf8.len(ascii, i, i + len - 1) == 1 then cp = v end
    end
    if not cp then
      cp, len = b, 1      -- not UTF-8: the byte as U+00XX
    end
    if cp < 128 then
      out[#out + 1] = string.char(cp)
    elseif cp < 0x10000 then
      out[#out + 1] = string.format("\\u%04x", cp)
    else
      cp = cp - 0x10000
      out[#out + 1] = string.format("\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                                    0xDC00 + (cp & 0x3FF))
    end
    i = i + len
  end
  return '"' .. table.concat(out) .. '"'
end

-- Numbers as Python writes them: integers as such, floats in shortest
-- round-trip form with ".0" on whole values; NaN and infinities as null.
local function json_number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and math.abs(x) < 1e16 then
    return string.format("%.1f", x)
  end
  -- %.15g is the shortest round-trip form whenever one of at most 15
  -- digits exists (%g drops trailing zeros); else 16 or 17 digits.
  local s = string.format("%.15g", x)
  if tonumber(s) ~= x then
    s = string.format("%.16g", x)
    if tonumber(s) ~= x then s = string.format("%.17g", x) end
  end
  return s
end

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  return next(t) ~= nil and t[1] ~= nil
end

local function key_before(a, b)
  local ra, rb = KEY_RANK[a] or math.huge, KEY_RANK[b] or math.huge
  if ra ~= rb then return ra < rb end
  return a < b
end

local function encode(v, out)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = json_string(v)
  elseif tv == "number" then
    out[#out + 1] = json_number(v)
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == API.null then
    out[#out + 1] = "null"
  elseif tv == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = ", " end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys, slots, ranked = {}, {}, true
      for k in pairs(v) do
        if type(k) ~= "string" then
          error("encode_json: object key is a " .. type(k), 0)
        end
        keys[#keys + 1] = k
        local r = KEY_RANK[k]
        if r then slots[r] = k else ranked = false end
      end
      if ranked then       -- the common case: known keys, no sort needed
        local n = 0
        for r = 1, #KEY_ORDER do
          if slots[r] then n = n + 1; keys[n] = slots[r] end
        end
      else
        table.sort(keys, key_before)
      end
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = ", " end
        out[#out + 1] = json_string(k)
        out[#out + 1] = ": "
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("encode_json: cannot encode a " .. tv, 0)
  end
end

--- JSON text of `v` with object keys in the seed's order (see KEY_ORDER),
-- `", "`/`": "` separators, ASCII only.
function API.encode_json(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

-- Arguments -------------------------------------------------------------------

local MAX_ID_DIGITS = 9

--- The integer id of `actor_id` (42, "42", "0042") | nil, msg, "EINVAL".
local function parse_actor_id(actor_id)
  if math.type(actor_id) == "integer" then
    if actor_id < 0 or actor_id >= 10 ^ MAX_ID_DIGITS then
      return nil, "actor id out of range", "EINVAL"
    end
    return actor_id
  end
  if type(actor_id) == "string" and actor_id:match("^%d+$")
     and #actor_id <= MAX_ID_DIGITS then
    return math.tointeger(tonumber(actor_id))
  end
  return nil, "malformed actor id (want a non-negative integer)", "EINVAL"
end
API.parse_actor_id = parse_actor_id

--- Check a training image filename: one safe path component with an image
-- extension. -> true | nil, msg, "EINVAL".
local function check_filename(filename)
  if type(filename) ~= "string" then
    return nil, "malformed filename", "EINVAL"
  end
  if not core.check_name(filename, "filename")
     or not core.layout.is_image_name(filename) then
    return nil, "malformed filename (want one name ending in .jpg, .jpeg, "
      .. ".png or .webp)", "EINVAL"
  end
  return true
end

--- The image type of `data` by its magic bytes: ext, content type | nil.
local function image_type(data)
  if data:sub(1, 3) == "\255\216\255" then return "jpg", "image/jpeg" end
  if data:sub(1, 8) == "\137PNG\r\n\26\n" then return "png", "image/png" end
  if #data >= 12 and data:sub(1, 4) == "RIFF" and data:sub(9, 12) == "WEBP"
  then
    return "webp", "image/webp"
  end
  return nil
end
API.image_type = image_type

-- The instance -----------------------------------------------------------------

--- tdm.API.new([cfg]): cfg is a Config, a table of overrides or nil.
function API.new(cfg)
  if getmetatable(cfg) ~= config.Config then cfg = config(cfg) end
  return setmetatable({ cfg = cfg }, API)
end

function API:training_dir(name)
  return (assert(core.layout.actor_dir(self.cfg.data_root, name)))
end

-- "YYYY-MM-DDTHH:MM:SS.ffffff" (manifest, UTC) -> "YYYY-MM-DDTHH:MM:SS.mmmZ";
-- from the timestamp when the date is absent or odd.
local function api_date(entry)
  local d = entry.modified_date
  if type(d) == "string" then
    local base, frac = d:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)%.?(%d*)$")
    if base then return base .. "." .. (frac .. "000"):sub(1, 3) .. "Z" end
  end
  local ts = tonumber(entry.modified_timestamp)
  if not ts then return API.null end
  local sec = math.floor(ts)
  local ms = math.floor((ts - sec) * 1000 + 1e-6)
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%03dZ", ms)
end

local function index_of(filename)
  return core.layout.image_index(filename)
end

-- The manifest's entries (Manifest.load's training_data).
local function entries_of(doc)
  return doc.training_data or {}
end

--- The actor's manifest paths, auto-initializing the manifest (the seed's
-- auto_initialize_manifest: S3 listing + local scan) when there is none.
-- -> paths { manifest, name, id, ... } | nil, msg, code.
function API:ensure_manifest(id)
  local M = manifest_mod()
  local paths = M.paths(id, self.cfg)
  if paths and paths.name and core.stat(paths.manifest) then return paths end
  local sync = sync_mod().new(self.cfg)
  local rep, msg, code = sync:auto_initialize_manifest(id)
  if not rep then return nil, msg, code end
  local err
  paths, err, code = M.paths(id, self.cfg)
  if not paths then return nil, err, code end
  return paths
end

--- One image of the response: the seed's keys, local_exists checked now.
function API:image_view(name, e)
  local st = core.stat(self:training_dir(name) .. "/" .. e.filename)
  local idx = e.index or index_of(e.filename)
  return {
    index = idx == nil and API.null or idx,
    filename = e.filename,
    s3_url = e.s3_url,
    local_exists = st ~= nil and st.type == "file",
    local_path = e.local_path,
    md5_hash = e.md5_hash,
    size_mb = e.size_mb,
    modified_date = api_date(e),
    status = e.status,
  }
end

--- The seed's GET /api/actors/:actorId/training-data response for one
-- actor, from its manifest (auto-initialized when there is none), with
-- local_exists checked on disk now. -> table | nil, msg, code.
function API:get_training_data(actor_id)
  local id, msg, code = parse_actor_id(actor_id)
  if not id then return nil, msg, code end
  -- The manifest file is read once (Manifest.load); only when there is
  -- none is the actor resolved and its manifest auto-initialized.
  local M = manifest_mod()
  local mpath = assert(core.layout.manifest_path(self.cfg.data_root,
                                                assert(core.layout.id(id))))
  local doc
  doc, msg, code = M.load(mpath, self.cfg)
  if not doc and code ~= "ENOENT" then return nil, msg, code end
  if not doc then
    local paths
    paths, msg, code = self:ensure_manifest(id)
    if not paths then return nil, msg, code end
    doc, msg, code = M.load(paths.manifest, self.cfg)
    if not doc then return nil, msg, code end
  end
  local name = doc.character_name
  local images = API.array()
  local counts = { synced = 0, local_only = 0, s3_only = 0, out_of_sync = 0,
                   missing = 0 }
  for _, e in ipairs(entries_of(doc)) do
    images[#images + 1] = self:image_view(name, e)
    counts[e.status] = (counts[e.status] or 0) + 1
  end
  table.sort(images, function(a, b)
    return core.layout.entry_before(a.filename, b.filename)
  end)
  return {
    actor_id = math.tointeger(tonumber(doc.character_id)) or id,
    actor_name = name,
    training_images = images,
    total_count = #images,
    synced_count = counts.synced,
    local_only_count = counts.local_only,
    s3_only_count = counts.s3_only,
    out_of_sync_count = counts.out_of_sync,
    missing_count = counts.missing,
  }
end

-- Open the actor's manifest (locked), auto-initializing it first when the
-- actor is known only in S3.
function API:open_manifest(id)
  local M = manifest_mod()
  local m, msg, code = M.open(id, self.cfg)
  if m then return m end
  if code ~= "ENOACTOR" then return nil, msg, code end
  local paths
  paths, msg, code = self:ensure_manifest(id)
  if not paths then return nil, msg, code end
  return M.open(id, self.cfg)
end

--- Delete one training image: the local file first, then (opts.s3) the S3
-- object, then the entry -- saving the manifest after each step, so it
-- never claims a file that is gone. Without opts.s3 the S3 object stays
-- (the seed: "delete from manifest and optionally S3").
-- -> { filename, deleted_local, deleted_s3 } | nil, msg, code.
function API:delete_training_image(actor_id, filename, opts)
  opts = opts or {}
  local id, msg, code = parse_actor_id(actor_id)
  if not id then return nil, msg, code end
  local ok
  ok, msg, code = check_filename(filename)
  if not ok then return nil, msg, code end
  local m
  m, msg, code = self:open_manifest(id)
  if not m then return nil, msg, code end
  local pok, result, rmsg, rcode = pcall(function()
    local name = m:actor_name()
    if not m:get_image(filename) then
      return nil, string.format("actor %d has no training image '%s'", id,
                                filename), "ENOENT"
    end
    local res = { filename = filename, deleted_local = false,
                  deleted_s3 = false }
    local path = self:training_dir(name) .. "/" .. filename
    if core.stat(path) then
      local removed, err = os.remove(path)
      if not removed then
        return nil, "delete " .. filename .. ": " .. tostring(err), "EIO"
      end
      res.deleted_local = true
      m:update_image(filename, { ["local"] = false })
      local saved, serr, scode = m:save()
      if not saved then return nil, serr, scode end
    end
    if opts.s3 then
      local S3 = s3_mod()
      local c, cerr, ccode = S3.client(self.cfg)
      if not c then return nil, cerr, ccode end
      local done, derr, dcode = c:delete(S3.key_for(self.cfg, name, filename))
      if not done then return nil, derr, dcode end
      res.deleted_s3 = true
      m:update_image(filename, { s3 = false })
    end
    m:remove_image(filename)
    local saved, serr, scode = m:save()
    if not saved then return nil, serr, scode end
    return res
  end)
  m:close()
  if not pok then error(result, 0) end
  return result, rmsg, rcode
end

-- Read one item of `files` for upload: a path, { path = }, { data = [,
-- filename = ] }. -> { data, source, ext, content_type } | nil, msg, code.
function API:read_upload(item, n)
  local data, source
  if type(item) == "string" then item = { path = item } end
  if type(item) ~= "table" then
    error(string.format("upload_training_images: file %d must be a path or a "
                        .. "table, got %s", n, type(item)), 3)
  end
  source = item.filename or item.source or item.path or ("file " .. n)
  if item.data ~= nil then
    data = item.data
    if type(data) ~= "string" then
      error("upload_training_images: data of file " .. n .. " must be a string",
            3)
    end
  elseif item.path then
    local st = core.stat(item.path)
    if st and st.type == "file" and st.size > self.cfg.api_max_upload then
      return nil, string.format("%s is larger than the %d-byte limit", source,
                                self.cfg.api_max_upload), "E2BIG"
    end
    local f, err = io.open(item.path, "rb")
    if not f then return nil, "read " .. tostring(err), "ENOENT" end
    data = f:read(self.cfg.api_max_upload + 1) or ""
    f:close()
  else
    error("upload_training_images: file " .. n .. " has neither data nor path",
          3)
  end
  if #data > self.cfg.api_max_upload then
    return nil, string.format("%s is larger than the %d-byte limit", source,
                              self.cfg.api_max_upload), "E2BIG"
  end
  local ext, ctype = image_type(data)
  if not ext then
    return nil, string.format("%s is not a JPEG, PNG or WebP image", source),
      "EBADIMAGE"
  end
  return { data = data, source = source, ext = ext, content_type = ctype }
end

-- The next free index of the actor's images: one past the highest index
-- in the manifest and on disk.
function API:next_index(m, name)
  local top = -1
  for _, e in ipairs(m:get_all_images()) do
    local i = e.index or index_of(e.filename)
    if i and i > top then top = i end
  end
  local pat = "^" .. name:gsub("%p", "%%%0") .. "_(%d+)%.[%w]+$"
  for _, f in ipairs(core.listdir(self:training_dir(name)) or {}) do
    local i = math.tointeger(tonumber(f:match(pat) or ""))
    if i and i > top then top = i end
  end
  return top + 1
end

--- Upload images for an actor: each checked by its magic bytes (JPEG, PNG,
-- WebP) -- all before anything is written, so one bad file changes
-- nothing -- then named {actor_name}_{next index}.{ext}, written locally
-- (atomically), uploaded to S3, and recorded synced. A file whose S3
-- upload fails is taken back (local file removed) and reported.
-- -> { actor_id, actor_name, files = { per file: the image view plus
-- source | { source, filename, error, code } }, uploaded_count,
-- failed_count } | nil, msg, code (nothing changed).
function API:upload_training_images(actor_id, files)
  local id, msg, code = parse_actor_id(actor_id)
  if not id then return nil, msg, code end
  if type(files) ~= "table" then
    error("upload_training_images: files must be a list", 2)
  end
  if #files == 0 then return nil, "no files to upload", "EINVAL" end
  local items = {}
  for n, item in ipairs(files) do
    local it, emsg, ecode = self:read_upload(item, n)
    if not it then return nil, emsg, ecode end
    items[n] = it
  end
  local S3 = s3_mod()
  local c
  c, msg, code = S3.client(self.cfg)
  if not c then return nil, msg, code end
  local m
  m, msg, code = self:open_manifest(id)
  if not m then return nil, msg, code end
  local ok, res, rmsg, rcode = pcall(function()
    local name = m:actor_name()
    local dir = self:training_dir(name)
    local made, derr, dcode = core.mkdirs(dir)
    if not made then return nil, derr, dcode end
    local idx = self:next_index(m, name)
    local out = { actor_id = id, actor_name = name, files = API.array(),
                  uploaded_count = 0, failed_count = 0 }
    for _, it in ipairs(items) do
      local fn = string.format("%s_%d.%s", name, idx, it.ext)
      idx = idx + 1
      local path = dir .. "/" .. fn
      local r = self:upload_one(m, c, name, fn, path, it)
      r.source = it.source
      out.files[#out.files + 1] = r
      if r.error then
        out.failed_count = out.failed_count + 1
      else
        out.uploaded_count = out.uploaded_count + 1
      end
    end
    return out
  end)
  m:close()
  if not ok then error(res, 0) end
  return res, rmsg, rcode
end

-- Write locally, upload, then record one file (see
-- upload_training_images). A failed upload takes the local file back, so
-- a failure leaves no trace; the manifest is written only once both
-- copies exist.
function API:upload_one(m, c, name, fn, path, it)
  local S3 = s3_mod()
  local function failed(emsg, ecode)
    return { filename = fn, error = emsg, code = ecode or "EIO" }
  end
  local ok, emsg, ecode = core.atomic_write(path, it.data)
  if not ok then return failed(emsg, ecode) end
  local st = core.stat(path)
  local md5 = core.md5(it.data)
  local put
  put, emsg, ecode = c:put(path, S3.key_for(self.cfg, name, fn),
                           { content_type = it.content_type })
  if not put then
    os.remove(path)
    return failed(emsg, ecode)
  end
  local e
  e, emsg, ecode = m:add_image { filename = fn,
    ["local"] = { md5 = md5, size = #it.data, mtime = st and st.mtime },
    s3 = { md5 = put.md5 or md5, etag = put.etag, size = put.bytes or #it.data } }
  local saved
  if e then saved, emsg, ecode = m:save() end
  if not e or not saved then
    -- Both copies exist but are not recorded: the next sync adopts them.
    return failed(emsg, ecode)
  end
  return self:image_view(name, m:get_image(fn))
end

-- HTTP -------------------------------------------------------------------------

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

local STATUS_OF = {
  EINVAL = 400, EBADNAME = 400, ENOACTOR = 404, ENOENT = 404,
  S3_NoSuchKey = 404, EBADIMAGE = 415, E2BIG = 413, LOCKED = 503,
}

-- Whether `code` (from tdm.s3 or the core) means S3 could not be reached or
-- answered with a server error: the API says 503.
local function unreachable(code)
  code = tostring(code or "")
  return code:match("^S3_5") or code:match("^CURL") or code:match("^E?CONN")
    or code:match("TIMEDOUT") or code:match("^EHOST") or code:match("^ENET")
    or code:match("Unavailable") or code:match("SlowDown")
    or code:match("^S3_Network") or code:match("^S3_Connect")
    or code == "ECONNREFUSED" or code == "EAGAIN" or code == "EINTR"
    or code == "S3_InternalError" or code == "S3_HTTP"
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
  local status = STATUS_OF[code]
  if not status then
    if unreachable(code) then
      status = 503
    elseif tostring(code):match("^S3_") then
      status = 502
    else
      status = 500
    end
  end
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
function API.http_worker(settings)
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
          return error_response(STATUS_OF[code], msg)
        end
        return failure("upload to actor " .. id, msg, code, id)
      end
      local status = 201
      if res.failed_count > 0 then
        local all_unreachable = true
        for _, f in ipairs(res.files) do
          if f.error then
            io.stderr:write(string.format(
              "tdm-lua serve: upload %s: %s (%s)\n", f.filename, f.error,
              f.code))
            if not unreachable(f.code) then all_unreachable = false end
            f.error = unreachable(f.code) and "S3 is unreachable"
                      or "upload failed (" .. safe_text(f.code) .. ")"
          end
        end
        if res.uploaded_count > 0 then status = 207
        elseif all_unreachable then status = 503
        else status = 502 end
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

return API
