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
-- Its HTTP adapter (routes, statuses) is tdm.api_http.
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
  "deleted_local", "deleted_s3", "evicted_local", "files", "uploaded_count",
  "failed_count",
  "error", "code",
}
local JSON_OPTS = { order = KEY_ORDER, array_mt = array_mt, null = API.null }

--- JSON text of `v` with object keys in the seed's order (see KEY_ORDER,
-- then the others sorted), `", "`/`": "` separators, ASCII only: the
-- core's Python-exact writer (json.dumps), the one the manifests use.
function API.encode_json(v)
  return core.json_encode(v, JSON_OPTS)
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
API.check_filename = check_filename

-- The extension an upload of each type gets.
local EXT_OF = { jpeg = "jpg", png = "png", webp = "webp" }

--- The image type of `data` by its magic bytes (the core's rule,
-- tdm.core.image_type_of): ext, content type | nil.
local function image_type(data)
  local kind, ctype = core.image_type_of(data)
  if not kind then return nil end
  return EXT_OF[kind], ctype
end
API.image_type = image_type

-- The instance -----------------------------------------------------------------

--- tdm.API.new([cfg [, { s3 = client }]]): cfg is a Config, a table of
-- overrides or nil; opts.s3 an S3 client to use (else one is made per
-- call that needs S3).
function API.new(cfg, opts)
  cfg = config.resolve(cfg)
  return setmetatable({ cfg = cfg, s3 = opts and opts.s3 }, API)
end

-- The S3 client: the one given to new, else a new one.
function API:client()
  if self.s3 then return self.s3 end
  return s3_mod().client(self.cfg)
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
    -- the manifest keeps the seed's relative form; the API shows where
    -- the file is under the root configured now
    local_path = core.layout.absolute_file_path(self.cfg.data_root, name,
                                                e.filename) or e.local_path,
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

--- Delete one training image. S3 is the truth, so without opts.s3 this
-- evicts the local copy: the file goes, the entry stays (now s3_only)
-- while the object exists -- the next pull brings it back; an entry whose
-- object is gone too has nothing left and is removed. With opts.s3 the
-- object is deleted too, then the entry. The manifest is saved after each
-- step, so it never claims a file that is gone, and an entry is never
-- removed while its object exists (a HEAD says so, not the manifest).
-- -> { filename, deleted_local, deleted_s3, evicted_local, status (the
-- entry's status now; null once it is removed) } | nil, msg, code.
function API:delete_training_image(actor_id, filename, opts)
  opts = opts or {}
  local id, msg, code = parse_actor_id(actor_id)
  if not id then return nil, msg, code end
  local ok
  ok, msg, code = check_filename(filename)
  if not ok then return nil, msg, code end
  local m <close>, c, ccode = self:open_for_change(id)
  if not m then return nil, c, ccode end
  return self:delete_locked(m, c, id, filename, opts.s3)
end

-- Actor `id`'s manifest, open (locked), and the S3 client, for a change
-- of both: m, c | nil, msg, code.
function API:open_for_change(id)
  local c, msg, code = self:client()
  if not c then return nil, msg, code end
  local m
  m, msg, code = self:open_manifest(id)
  if not m then return nil, msg, code end
  return m, c
end

-- delete_training_image with the manifest `m` open (locked).
function API:delete_locked(m, c, id, filename, also_s3)
  local name = m:actor_name()
  if not m:get_image(filename) then
    return nil, string.format("actor %d has no training image '%s'", id,
                              filename), "ENOENT"
  end
  local res = { filename = filename, deleted_local = false,
                deleted_s3 = false, evicted_local = false }
  local function save()
    local saved, serr, scode = m:save()
    if not saved then return nil, serr, scode end
    return true
  end
  local path = self:training_dir(name) .. "/" .. filename
  if core.stat(path) then
    local removed, err = os.remove(path)
    if not removed then
      return nil, "delete " .. filename .. ": " .. tostring(err), "EIO"
    end
    res.deleted_local = true
    m:update_image(filename, { ["local"] = false })
    local saved, serr, scode = save()
    if not saved then return nil, serr, scode end
  end
  local key = s3_mod().key_for(self.cfg, name, filename)
  if also_s3 then
    local done, derr, dcode = c:delete(key)
    if not done then return nil, derr, dcode end
    res.deleted_s3 = true
  end
  local head, herr, hcode = c:head(key)
  if head then
    -- the object is there (kept, or written again meanwhile): so is its
    -- entry, with what S3 says now
    local e, uerr, ucode = m:update_image(filename, { ["local"] = false,
      s3 = { md5 = head.md5, etag = head.etag, size = head.size,
             last_modified = head.last_modified } })
    if not e then return nil, uerr, ucode end
    local saved, serr, scode = save()
    if not saved then return nil, serr, scode end
    res.evicted_local = res.deleted_local
    res.status = e.status
    return res
  end
  if hcode ~= "S3_NoSuchKey" then return nil, herr, hcode end
  m:remove_image(filename)
  local saved, serr, scode = save()
  if not saved then return nil, serr, scode end
  res.status = API.null
  return res
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
-- of a name {name}_{index}.{any ext} in the manifest, on disk and in the
-- actor's S3 folder (another host may have written names this one never
-- saw). -> index | nil, msg, code (the listing failed).
function API:next_index(m, name, c)
  local top, mine = -1, name .. "_"
  local function see(fn)
    local i = fn:sub(1, #mine) == mine and core.layout.image_index(fn)
    if i and i > top then top = i end
  end
  for _, e in ipairs(m:get_all_images()) do see(e.filename) end
  for _, f in ipairs(core.listdir(self:training_dir(name)) or {}) do see(f) end
  local folder = s3_mod().key_for(self.cfg, name, "-"):sub(1, -2)
  for obj, err, code in c:list(folder) do
    if obj == false then return nil, err, code end
    see(obj.key:sub(#folder + 1))
  end
  return top + 1
end

local MAX_NAME_TRIES = 100   -- names tried for one file before giving up

--- Upload images for an actor: each checked by its magic bytes (JPEG, PNG,
-- WebP) -- all before anything is written, so one bad file changes
-- nothing -- then named {actor_name}_{next index}.{ext}, the index past
-- every one in the manifest, the folder and the S3 listing; written
-- locally (atomically), uploaded to S3 only if the key is still free
-- (HEAD, then PUT with If-None-Match: *; a taken key moves on to the
-- next index), and recorded synced. An object this API did not write is
-- never replaced. A file whose S3 upload fails is taken back (local file
-- removed) and reported.
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
  local m <close>, c, ccode = self:open_for_change(id)
  if not m then return nil, c, ccode end
  local name = m:actor_name()
  local dir = self:training_dir(name)
  local made, derr, dcode = core.mkdirs(dir)
  if not made then return nil, derr, dcode end
  local idx, ierr, icode = self:next_index(m, name, c)
  if not idx then return nil, ierr, icode end
  local out = { actor_id = id, actor_name = name, files = API.array(),
                uploaded_count = 0, failed_count = 0 }
  for _, it in ipairs(items) do
    local r
    for _ = 1, MAX_NAME_TRIES do
      local fn = assert(core.layout.image_name(name, idx, it.ext))
      idx = idx + 1
      r = self:upload_one(m, c, name, fn, dir .. "/" .. fn, it)
      if not r.taken then break end
    end
    if r.taken then
      r = { filename = r.filename, code = "ETAKEN", error = string.format(
        "no free name after %d tries (another writer is adding images to "
        .. "%s)", MAX_NAME_TRIES, name) }
    end
    r.source = it.source
    out.files[#out.files + 1] = r
    if r.error then
      out.failed_count = out.failed_count + 1
    else
      out.uploaded_count = out.uploaded_count + 1
    end
  end
  return out
end

-- S3 codes that mean "the key exists": the write was refused by
-- If-None-Match (412) or lost a race with another conditional write (409).
local TAKEN = { S3_PreconditionFailed = true,
                S3_ConditionalRequestConflict = true }

-- Write locally, upload, then record one file under name `fn` (see
-- upload_training_images). -> the image view | { filename, error, code }
-- | { filename, taken = true } when the name is in use locally or in S3
-- (nothing written). A failed upload takes the local file back, so a
-- failure leaves no trace; the manifest is written only once both copies
-- exist.
function API:upload_one(m, c, name, fn, path, it)
  local key = s3_mod().key_for(self.cfg, name, fn)
  local function failed(emsg, ecode)
    return { filename = fn, error = emsg, code = ecode or "EIO" }
  end
  if core.stat(path) then return { filename = fn, taken = true } end
  -- A server that ignores If-None-Match would overwrite: ask first.
  local head, emsg, ecode = c:head(key)
  if head then return { filename = fn, taken = true } end
  if ecode ~= "S3_NoSuchKey" then return failed(emsg, ecode) end
  local ok
  ok, emsg, ecode = core.atomic_write(path, it.data)
  if not ok then return failed(emsg, ecode) end
  local st = core.stat(path)
  local md5 = core.md5(it.data)
  local put
  put, emsg, ecode = c:put(path, key, { content_type = it.content_type,
                                        if_none_match = true })
  if not put then
    os.remove(path)
    if TAKEN[ecode] then return { filename = fn, taken = true } end
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

return API
