--- tdm.sync_list -- part of tdm.Sync (lua/tdm/sync.lua installs these
-- methods): the S3 listing, streamed and cut into per-actor groups.
-- Keys come sorted, so one actor's objects are contiguous and only one
-- actor's objects are held at a time. The key space is listed as several
-- parts at once (tdm.list_parts), split at the actor ids the data root
-- already knows and refined as pages arrive, and read back in key order.
local core = require "tdm.core"
local list_parts = require "tdm.list_parts"

local Sync = {}

-- Listing clients at most (one request in flight on each).
local MAX_LIST_CLIENTS = 32

--- The client listings use: one of their own, so that the next page can
-- be fetched in the background while the main client transfers files.
function Sync:list_client() return self:client("list") end

-- Listings in flight at most: cfg.jobs (capped), or the test seam
-- self.list_clients.
function Sync:list_width()
  return math.max(1, self.list_clients or math.min(self.cfg.jobs or 1, MAX_LIST_CLIENTS))
end

-- The i-th listing client (the first is Sync:list_client).
local function list_client_fn(self)
  return function(i)
    if i == 1 then return self:list_client() end
    return self:client("list" .. i)
  end
end

-- Actor ids the data root knows (local folders, manifests), sorted as
-- keys sort, each once.
function Sync:known_ids()
  local seen, ids = {}, {}
  local function add(id)
    if id and not seen[id] then seen[id] = true; ids[#ids + 1] = id end
  end
  for _, n in ipairs(core.listdir(self.data_root .. "/actors") or {}) do
    add(n:match("^(%d+)_"))
  end
  for _, f in ipairs(core.listdir(self.data_root .. "/actor_manifests") or {}) do
    add(f:match("^(%d+)_manifest%.json$"))
  end
  table.sort(ids)
  return ids
end

-- Keys an actor has in S3, guessed from the image files of up to 8 of
-- the local actor folders (the seed's 17 when there are none).
function Sync:keys_per_actor()
  local dir = self.data_root .. "/actors"
  local names, files, seen = core.listdir(dir) or {}, 0, 0
  table.sort(names)
  for i = 1, #names, math.max(1, #names // 8) do
    local tdir = core.layout.actor_dir(self.data_root, names[i])
    local list = tdir and core.listdir(tdir)
    if list then
      seen = seen + 1
      for _, f in ipairs(list) do if self.is_image(f) then files = files + 1 end end
    end
  end
  return seen > 0 and math.max(1, files / seen) or 17
end

-- The parts of a listing of `list_prefix`: for the whole prefix, cut at
-- known actor ids so that each part holds about one page of keys (at most
-- 4 x width parts); else one part.
function Sync:list_parts_of(list_prefix, width)
  if list_prefix ~= self.list_root or width < 2 then return { { prefix = list_prefix } } end
  local ids = self:known_ids()
  local page = self.list_page_keys or 1000
  local pages = math.ceil(#ids * self:keys_per_actor() / page)
  local n = math.min(4 * width, #ids + 1, pages + 1)
  local parts, lo = {}, nil
  for i = 1, n - 1 do
    local cut = list_prefix .. ids[(#ids * i) // n + 1]
    if not lo or cut > lo then
      parts[#parts + 1] = { prefix = list_prefix, lo = lo, hi = cut }
      lo = cut
    end
  end
  parts[#parts + 1] = { prefix = list_prefix, lo = lo }
  return parts
end

-- A lister (tdm.list_parts) of `parts`, counted as one listing.
function Sync:lister(parts)
  self.listings = (self.listings or 0) + 1
  -- Every object of this listing was seen at this time or later: what a
  -- manifest recorded after it is newer than the listing (see refresh).
  self.listed_at = core.now()
  local width = self:list_width()
  return list_parts.new { client = list_client_fn(self), clients = width,
                          parts = parts, root = self.list_root,
                          page = self.list_page_keys or 1000 }   -- seam: smaller pages
end

--- Stream the listing under `list_prefix` and call fn(actor, objects) for
-- each actor as soon as its (contiguous) group of keys ends; objects maps
-- filename -> listing object. on_skip(key, reason, actor) gets every key
-- that is refused. Only one actor's objects are held at a time (and the
-- pages of later parts fetched meanwhile, a bounded number). While a page
-- is awaited, idle() (optional) is called for as long as it returns true.
-- Returns true | nil, msg, code (after a listing failure no later group
-- is delivered, so no actor is judged on a partial listing).
function Sync:each_listed_actor(list_prefix, fn, on_skip, idle)
  local lister = self:lister(self:list_parts_of(list_prefix, self:list_width()))
  local cur, objs, done = nil, {}, {}
  local ok, res, emsg, ecode = pcall(function()
    while true do
      local page, pmsg, pcode = lister:next_page(idle)
      if page == false then break end
      if not page then return nil, pmsg, pcode end
      for _, obj in ipairs(page) do
        local actor, file, why = self:split_key(obj.key)
        if actor and actor ~= cur then
          if done[actor] then
            return nil, string.format("listing of '%s' is not sorted by key (%s seen twice)",
                                      list_prefix, actor), "S3_UNSORTED"
          end
          if cur then
            done[cur] = true
            fn(cur, objs)
          end
          cur, objs = actor, {}
        end
        if file then objs[file] = obj else on_skip(obj.key, why, actor) end
        if core.interrupted() then return nil, "interrupted", "EINTR" end
      end
    end
    if cur then fn(cur, objs) end
    return true
  end)
  -- However the listing ended, requests still in flight are waited for,
  -- so the listing clients are free for the next listing.
  self.list_requests = (self.list_requests or 0) + lister.requests
  lister:close()
  if not ok then error(res, 0) end
  return res, emsg, ecode
end

--- The objects of each actor of `names` (full names), listed at once:
-- name -> (filename -> object) | nil, msg, code. Refused keys go to
-- on_skip when given.
function Sync:list_actors(names, on_skip)
  local parts = {}
  for i, name in ipairs(names) do parts[i] = { prefix = self:key_for(name, "") } end
  local lister = self:lister(parts)
  local out = {}
  for _, name in ipairs(names) do out[name] = {} end
  local ok, res, emsg, ecode = pcall(function()
    while true do
      local page, i, pcode = lister:next_page()
      if page == false then return true end
      if not page then return nil, i, pcode end
      local name = names[i]
      for _, obj in ipairs(page) do
        local actor, file, why = self:split_key(obj.key)
        if actor == name and file then out[name][file] = obj
        elseif on_skip then on_skip(obj.key, why or "outside the actor's folder", actor) end
      end
    end
  end)
  self.list_requests = (self.list_requests or 0) + lister.requests
  lister:close()
  if not ok then error(res, 0) end
  if not res then return nil, emsg, ecode end
  return out
end

--- The objects of one actor: filename -> object | nil, msg, code.
-- Refused keys go to on_skip when given.
function Sync:list_actor(name, on_skip)
  local all, msg, code = self:list_actors({ name }, on_skip)
  if not all then return nil, msg, code end
  return all[name]
end

return Sync
