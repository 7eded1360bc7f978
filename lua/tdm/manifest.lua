--- tdm.Manifest: the seed's TrainingDataManifest.
--
--   local m <close> = assert(tdm.Manifest.open(42))
--   m:add_image{ filename = "0042_x_3.jpg", ["local"] = { md5 = h,
--                size = n, mtime = t }, s3 = false }
--   assert(m:save())
--
-- The methods of an open manifest are implemented in C (src/lmanifest.c,
-- type "tdm.Manifest"); this module resolves actors and settings and
-- opens it. See docs/lua-api.md for the contract.
local core = require "tdm.core"
local config = require "tdm.config"
local layout = core.layout

local Manifest = {}

-- A Config as is; a plain table (or nil) as overrides of tdm.config().
local function resolve_cfg(cfg)
  if type(cfg) == "table" and getmetatable(cfg) == config.Config then
    return cfg
  end
  if cfg ~= nil and type(cfg) ~= "table" then
    error("cfg must be a tdm.config or a table of overrides, got "
          .. type(cfg), 3)
  end
  return config.resolve(cfg)
end

local function manifest_file(cfg, id)
  return assert(layout.manifest_path(cfg.data_root, id))
end

-- The one directory {data_root}/actors/{name} whose id is `id`, or nil, msg.
local function name_from_dirs(cfg, id)
  local names = core.listdir(cfg.data_root .. "/actors")
  local found = {}
  for _, n in ipairs(names or {}) do
    if layout.actor_id(n) == id then
      local st = core.stat(cfg.data_root .. "/actors/" .. n)
      if st and st.type == "dir" then found[#found + 1] = n end
    end
  end
  if #found == 1 then return found[1] end
  table.sort(found)
  if #found > 1 then
    return nil, string.format("actor %s is ambiguous: %s", id,
                              table.concat(found, ", "))
  end
  return nil, string.format("actor %s: no manifest %s and no directory "
                            .. "%s/actors/%s_*", id, manifest_file(cfg, id),
                            cfg.data_root, id)
end

--- Resolve an actor (42, "42", "0042" or "0042_european_30_male") to
-- { manifest =, dir =, name =, id = } | nil, msg, "ENOACTOR".
function Manifest.paths(actor, cfg)
  cfg = resolve_cfg(cfg)
  local name, id
  if math.type(actor) == "integer" then
    if actor < 0 then error("actor id must not be negative", 2) end
    local msg
    id, msg = layout.id(actor)
    if not id then return nil, msg, "ENOACTOR" end
  elseif type(actor) == "string" then
    local aid, msg
    if actor:match("^%d+$") then
      aid, msg = layout.id(actor)
    else
      aid, msg = layout.actor_id(actor)
      name = actor
    end
    if not aid then return nil, msg, "ENOACTOR" end
    id = aid
  else
    error("actor must be an integer or a string, got " .. type(actor), 2)
  end
  local mpath = manifest_file(cfg, id)
  if not name then
    local doc = core.manifest_read(mpath, cfg.data_root)
    if doc and type(doc.character_name) == "string" and
       layout.actor_id(doc.character_name) == id then
      name = doc.character_name
    else
      local msg
      name, msg = name_from_dirs(cfg, id)
      if not name then return nil, msg, "ENOACTOR" end
    end
  end
  return { manifest = mpath, name = name, id = id,
           dir = assert(layout.actor_dir(cfg.data_root, name)) }
end

--- Lock and load an actor's manifest -> m | nil, msg, code.
-- opts.lock_timeout (seconds) overrides cfg.lock_timeout.
-- opts.read_only: no lock, nothing created or written on disk; mutations
-- work in memory, m:save() raises.
function Manifest.open(actor, cfg, opts)
  cfg = resolve_cfg(cfg)
  if opts ~= nil and type(opts) ~= "table" then
    error("opts must be a table", 2)
  end
  for k in pairs(opts or {}) do
    if k ~= "lock_timeout" and k ~= "read_only" then
      error("tdm.Manifest.open: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local p, msg, code = Manifest.paths(actor, cfg)
  if not p then return nil, msg, code end
  return core.manifest_open(p.name, {
    data_root = cfg.data_root,
    public_url_base = cfg.public_url_base,
    prefix = cfg.prefix,
    lock_timeout = (opts and opts.lock_timeout) or cfg.lock_timeout,
    read_only = (opts and opts.read_only) and true or false,
  })
end

--- The parsed, validated file at `path` as a table (no lock), for audits
-- -> table | nil, msg, code ("BADMANIFEST", "ENOENT", ...). `cfg` gives
-- the data root under which absolute local_paths are accepted.
function Manifest.load(path, cfg)
  if type(path) ~= "string" then
    error("tdm.Manifest.load: path must be a string", 2)
  end
  return core.manifest_read(path, resolve_cfg(cfg).data_root)
end

--- Whether `name` is an image file name tdm tracks (.jpg .jpeg .png
-- .webp, any case, not hidden).
Manifest.is_image_name = layout.is_image_name

return Manifest
