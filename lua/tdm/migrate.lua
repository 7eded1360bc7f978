--- tdm.migrate -- turn legacy training_data/response.json files into
-- manifest entries (the seed's "Legacy Files"), then delete them.
--
--   local migrate = require "tdm.migrate"
--   local plan, why, code = migrate.plan(cfg, "0042_x", { client = c })
--   local res, why, code = migrate.apply(cfg, plan, { keep_legacy = false })
--   migrate.run(cfg, opts, reporter)  -- every selected actor (the command)
--
-- What a response.json may hold and how references map to files is
-- tdm.legacy_refs's business (a pure function). Here: read the file, find
-- each referenced file locally (stat + MD5) and in S3 (the actor's
-- listing), merge the entries into the manifest (existing entries are
-- updated, never dropped), save it durably, and only then delete the
-- legacy file. A file that cannot be interpreted is reported with the
-- reason and left as it is.
local core = require "tdm.core"
local legacy_refs = require "tdm.legacy_refs"

local migrate = {}

migrate.LEGACY_NAME = "response.json"

local function root_of(cfg)
  return (tostring(cfg.data_root):gsub("/+$", ""))
end

local function prefix_of(cfg)
  return (tostring(cfg.prefix or ""):gsub("^/+", ""):gsub("/+$", ""))
end

--- The training_data directory of an actor.
function migrate.training_dir(cfg, actor_name)
  return (assert(core.layout.actor_dir(root_of(cfg), actor_name)))
end

--- The legacy file of an actor.
function migrate.legacy_path(cfg, actor_name)
  return migrate.training_dir(cfg, actor_name) .. "/" .. migrate.LEGACY_NAME
end

--- Whether `name` is a usable actor directory name ({digits}_{...}, one
-- safe path component).
function migrate.is_actor_name(name)
  return type(name) == "string" and name:match("^%d+_.") ~= nil
         and core.check_name(name, "actor name") == true
end

--- Names of the actors that have a legacy file, sorted.
function migrate.actors(cfg)
  local dir = root_of(cfg) .. "/actors"
  local names = core.listdir(dir)
  local out = {}
  for _, name in ipairs(names or {}) do
    if migrate.is_actor_name(name) then
      local st = core.stat(migrate.legacy_path(cfg, name))
      if st then out[#out + 1] = name end
    end
  end
  table.sort(out)
  return out
end

-- One line, no control characters, for messages built from file contents.
local function one_line(s)
  return (tostring(s):gsub("[%c]+", " "))
end

-- Read the legacy file: text | nil, reason, code. Refuses symlinks and
-- anything that is not a regular file, and oversized files.
local function read_legacy(path)
  local st, err, code = core.stat(path)
  if not st then return nil, err, code end
  if st.type ~= "file" then
    return nil, "not a regular file (" .. st.type .. ")", "EBADLEGACY"
  end
  if st.size > legacy_refs.MAX_BYTES then
    return nil, string.format("larger than %d bytes", legacy_refs.MAX_BYTES),
           "EBADLEGACY"
  end
  local f, ferr = io.open(path, "rb")
  if not f then return nil, ferr, "EIO" end
  local text = f:read("a")
  f:close()
  return text or ""
end

-- The local fact of `path`: { md5, size, mtime } or false.
local function local_fact(path)
  local st = core.stat(path)
  if not st or st.type ~= "file" then return false end
  local md5, size_or_err, code = core.md5_file(path)
  if not md5 then return nil, size_or_err, code end
  return { md5 = md5, size = st.size, mtime = st.mtime }
end

-- The S3 fact of a listed object; a multipart ETag gets a HEAD for the
-- x-amz-meta-md5 tdm writes on upload.
local function s3_fact(client, obj)
  local fact = { size = obj.size, etag = obj.etag, md5 = obj.md5,
                 mtime = obj.last_modified }
  if not fact.md5 and client then
    local h = client:head(obj.key)
    if h then fact.md5 = h.md5 or (h.metadata and h.metadata.md5) end
  end
  return fact
end

--- The objects under the actor's key prefix: filename -> object |
-- nil, msg, code.
function migrate.list_actor(client, cfg, actor_name)
  local p = prefix_of(cfg)
  local kp = (p ~= "" and (p .. "/") or "") .. actor_name .. "/"
  local out = {}
  for obj, err, code in client:list(kp) do
    if not obj then return nil, err, code end
    local rest = obj.key:sub(#kp + 1)
    if rest ~= "" and not rest:find("/", 1, true) then out[rest] = obj end
  end
  return out
end

-- A by-position reference names only an index: when its file is not
-- there under the URL's extension but exactly one image of that index is
-- (locally or in S3), that one is meant.
local function settle_extension(e, actor_name, local_names, objects)
  if local_names[e.filename] or objects[e.filename] then return end
  local found = {}
  local stem = string.format("%s_%d.", actor_name, e.index)
  for _, set in ipairs({ local_names, objects }) do
    for name in pairs(set) do
      if name:sub(1, #stem) == stem and legacy_refs.is_image_name(name)
         and not name:sub(#stem + 1):find(".", 1, true) then
        found[name] = true
      end
    end
  end
  local only, n = nil, 0
  for name in pairs(found) do only, n = name, n + 1 end
  if n == 1 then
    e.filename = only
    e.ext = only:match("%.([%w]+)$")
    e.key = e.key:gsub("[^/]*$", only)
  end
end

-- The status the core will give these facts (for the dry-run plan only;
-- the saved status always comes from the core).
local function predicted_status(l, s)
  if l and s then
    if s.md5 and s.md5 == l.md5 then return "synced" end
    return "out_of_sync"
  elseif l then return "local_only"
  elseif s then return "s3_only" end
  return "missing"
end

--- Everything the migration of one actor would do, touching nothing:
-- plan | nil, reason, code. opts.client (a tdm.s3 client; nil = S3 not
-- consulted, every S3 fact false), opts.objects (a prefetched listing,
-- filename -> object). plan = { actor, legacy (path), entries = { {
-- filename, index, by, ref, key, ["local"] = fact|false, s3 = fact|false,
-- status (predicted), action = "add"|"update" } }, ignored = n }.
function migrate.plan(cfg, actor_name, opts)
  opts = opts or {}
  if not migrate.is_actor_name(actor_name) then
    error("migrate.plan: bad actor name '" .. tostring(actor_name) .. "'", 2)
  end
  local path = migrate.legacy_path(cfg, actor_name)
  local text, err, code = read_legacy(path)
  if not text then return nil, path .. ": " .. one_line(err), code end
  local entries, ignored = legacy_refs.interpret(text, {
    actor_name = actor_name, bucket = cfg.bucket, prefix = prefix_of(cfg),
    public_url_base = cfg.public_url_base })
  if not entries then
    return nil, path .. ": " .. one_line(ignored), "EBADLEGACY"
  end
  local objects = opts.objects
  if not objects and opts.client then
    objects, err, code = migrate.list_actor(opts.client, cfg, actor_name)
    if not objects then
      return nil, "list " .. actor_name .. ": " .. one_line(err), code
    end
  end
  objects = objects or {}
  -- Which files the manifest already lists (read only, no lock): the
  -- plan says "update" for those, "add" for the rest.
  local existing = {}
  local id = core.layout.actor_id(actor_name)
  local mpath = id and assert(core.layout.manifest_path(root_of(cfg), id))
  if mpath and core.stat(mpath) then
    local doc = require("tdm.manifest").load(mpath, cfg)
    for _, e in ipairs(doc and doc.training_data or {}) do
      if type(e) == "table" and type(e.filename) == "string" then
        existing[e.filename] = true
      end
    end
  end
  local dir = migrate.training_dir(cfg, actor_name)
  local local_names = {}
  for _, n in ipairs(core.listdir(dir) or {}) do local_names[n] = true end
  for _, e in ipairs(entries) do
    if e.by == "position" then
      settle_extension(e, actor_name, local_names, objects)
    end
    local lf, lerr, lcode = local_fact(dir .. "/" .. e.filename)
    if lf == nil then return nil, one_line(lerr), lcode end
    e["local"] = lf
    local obj = objects[e.filename]
    e.s3 = obj and s3_fact(opts.client, obj) or false
    e.status = predicted_status(e["local"], e.s3)
    e.action = existing[e.filename] and "update" or "add"
  end
  return { actor = actor_name, legacy = path, entries = entries,
           ignored = ignored }
end

--- Merge a plan into the actor's manifest, save it, then delete the
-- legacy file (unless opts.keep_legacy): result | nil, msg, code.
-- result = { manifest = path, added = n, updated = n, deleted = bool,
-- entries = { {filename, action = "add"|"update", status} } }. On any
-- failure nothing is saved and the legacy file stays.
function migrate.apply(cfg, plan, opts)
  opts = opts or {}
  local Manifest = require "tdm.manifest"
  local m, err, code = Manifest.open(plan.actor, cfg)
  if not m then return nil, one_line(err), code end
  local res = { manifest = m:path(), added = 0, updated = 0, deleted = false,
                entries = {} }
  local ok, perr = pcall(function()
    for _, e in ipairs(plan.entries) do
      local facts = { ["local"] = e["local"], s3 = e.s3 }
      local action, entry, eerr, ecode
      if m:get_image(e.filename) then
        action = "update"
        entry, eerr, ecode = m:update_image(e.filename, facts)
      else
        action = "add"
        entry, eerr, ecode = m:add_image { filename = e.filename,
          ["local"] = e["local"], s3 = e.s3 }
      end
      if not entry then
        err, code = string.format("%s: %s: %s", plan.legacy, e.filename,
                                  one_line(eerr)), ecode
        return
      end
      res[action == "add" and "added" or "updated"] =
        res[action == "add" and "added" or "updated"] + 1
      res.entries[#res.entries + 1] = { filename = e.filename,
        action = action, status = entry.status, by = e.by, ref = e.ref }
    end
    local saved, serr, scode = m:save()
    if not saved then err, code = one_line(serr), scode end
  end)
  m:close()
  if not ok then return nil, one_line(perr), "EIO" end
  if err then return nil, err, code end
  -- The manifest is durably saved (atomic write, fsync'd): only now may
  -- the legacy file go.
  if not opts.keep_legacy then
    local removed, rerr = os.remove(plan.legacy)
    if not removed then
      return nil, "delete " .. plan.legacy .. ": " .. one_line(rerr), "EIO"
    end
    res.deleted = true
  end
  return res
end

--- The migrate command's work over every selected actor. opts: the
-- parsed command line (dry_run, keep_legacy, actors, shard); `reporter`
-- from tdm.cli. Returns the summary table.
function migrate.run(cfg, opts, reporter, selected)
  local sum = { actors = 0, migrated = 0, failed = 0, entries_added = 0,
                entries_updated = 0, legacy_deleted = 0, legacy_kept = 0 }
  local client
  local names = {}
  for _, name in ipairs(migrate.actors(cfg)) do
    if not selected or selected(name) then names[#names + 1] = name end
  end
  if #names > 0 then
    local s3 = require "tdm.s3"
    local cerr, ccode
    client, cerr, ccode = s3.client(cfg)
    if not client then
      reporter:fail(nil, nil, "S3 client: " .. one_line(cerr), ccode)
      sum.failed = #names
      return sum
    end
  end
  for i, name in ipairs(names) do
    if core.interrupted() then break end
    sum.actors = sum.actors + 1
    local plan, err, code = migrate.plan(cfg, name, { client = client })
    if not plan then
      sum.failed = sum.failed + 1
      reporter:fail(name, migrate.LEGACY_NAME, err, code)
    elseif opts.dry_run then
      for _, e in ipairs(plan.entries) do
        reporter:event({ actor = name, file = e.filename, action = e.action,
                         result = e.status, by = e.by, ref = e.ref })
      end
      reporter:event({ actor = name, file = migrate.LEGACY_NAME,
                       action = opts.keep_legacy and "keep" or "delete",
                       result = "planned" })
    else
      local res
      res, err, code = migrate.apply(cfg, plan, { keep_legacy = opts.keep_legacy })
      if not res then
        sum.failed = sum.failed + 1
        reporter:fail(name, migrate.LEGACY_NAME, err, code)
      else
        sum.migrated = sum.migrated + 1
        sum.entries_added = sum.entries_added + res.added
        sum.entries_updated = sum.entries_updated + res.updated
        for _, e in ipairs(res.entries) do
          reporter:event({ actor = name, file = e.filename, action = e.action,
                           result = e.status, by = e.by, ref = e.ref })
        end
        if res.deleted then
          sum.legacy_deleted = sum.legacy_deleted + 1
        else
          sum.legacy_kept = sum.legacy_kept + 1
        end
        reporter:event({ actor = name, file = migrate.LEGACY_NAME,
                         action = res.deleted and "delete" or "keep",
                         result = "ok" })
      end
    end
    reporter:progress(i, #names, 0)
  end
  return sum
end

return migrate
