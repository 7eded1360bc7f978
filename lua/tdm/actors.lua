--- tdm.actors([cfg]) -> iterator over the actors of the data root, in name
-- order, for fleet scripts (no shelling out to ls):
--
--   for a in tdm.actors() do
--     print(a.name, a.id, a.manifest_path, a.has_folder, a.has_manifest)
--   end
--
-- An actor is a folder `{data_root}/actors/{id}_{descriptor}` or a
-- manifest `{data_root}/actor_manifests/{id}_manifest.json` (named by its
-- character_name); each appears once. Fields: name, id ("0042"),
-- manifest_path, dir (the training_data folder), has_folder,
-- has_manifest. A manifest whose name cannot be read yields name = nil
-- and error = the reason. Paths come from tdm.core.layout. A data root
-- that does not exist has no actors; one that cannot be read is
-- nil, message, code.
local core = require "tdm.core"
local config = require "tdm.config"

local layout = core.layout

-- Names of the entries of `dir` (none when it does not exist).
local function entries(dir)
  local list, msg, code = core.listdir(dir)
  if not list then
    if code == "ENOENT" then return {} end
    return nil, msg, code
  end
  table.sort(list)
  return list
end

return function(cfg)
  cfg = config.resolve(cfg)
  local root = cfg.data_root
  local folders, msg, code = entries(root .. "/actors")
  if not folders then return nil, msg, code end
  local manifests
  manifests, msg, code = entries(root .. "/actor_manifests")
  if not manifests then return nil, msg, code end

  local by_id, list = {}, {}
  for _, name in ipairs(folders) do
    local id = layout.actor_id(name)
    local st = id and core.stat(root .. "/actors/" .. name)
    if st and st.type == "dir" then
      local a = { name = name, id = id, has_folder = true, has_manifest = false,
                  manifest_path = assert(layout.manifest_path(root, id)),
                  dir = assert(layout.actor_dir(root, name)) }
      list[#list + 1] = a
      by_id[id] = by_id[id] or a
    end
  end
  for _, f in ipairs(manifests) do
    local id = layout.manifest_id(f)
    if id then
      local path = assert(layout.manifest_path(root, id))
      if by_id[id] then
        by_id[id].has_manifest = true
      else
        local doc, err = core.manifest_read(path, root)
        local name = doc and doc.character_name
        local a = { id = id, manifest_path = path, has_folder = false,
                    has_manifest = true }
        if type(name) == "string" and layout.actor_id(name) == id then
          a.name, a.dir = name, assert(layout.actor_dir(root, name))
        else
          a.error = err or (path .. ": no character_name of actor " .. id)
        end
        list[#list + 1] = a
      end
    end
  end
  table.sort(list, function(x, y)
    return (x.name or x.id) < (y.name or y.id)
  end)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end
