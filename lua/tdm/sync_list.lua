--- tdm.sync_list -- part of tdm.Sync (lua/tdm/sync.lua installs these
-- methods): the S3 listing, streamed and cut into per-actor groups.
-- Keys come sorted, so one actor's objects are contiguous and only one
-- actor's objects are held at a time.
local core = require "tdm.core"

local Sync = {}

--- The client listings use: one of their own, so that the next page can
-- be fetched in the background while the main client transfers files.
function Sync:list_client() return self:client("list") end

--- Stream the listing under `list_prefix` and call fn(actor, objects) for
-- each actor as soon as its (contiguous) group of keys ends; objects maps
-- filename -> listing object. on_skip(key, reason, actor) gets every key
-- that is refused. Only one actor's objects are held at a time (and the
-- next page of keys, which is fetched in the background while this one
-- is worked through). While a page is awaited, idle() (optional) is
-- called for as long as it returns true. Returns true | nil, msg, code
-- (after a listing failure no later group is delivered, so no actor is
-- judged on a partial listing).
function Sync:each_listed_actor(list_prefix, fn, on_skip, idle)
  local c, msg, code = self:list_client()
  if not c then return nil, msg, code end
  local cur, objs, done = nil, {}, {}
  self.listings = (self.listings or 0) + 1
  -- Every object of this listing was seen at this time or later: what a
  -- manifest recorded after it is newer than the listing (see refresh).
  self.listed_at = core.now()
  local per_page = self.list_page_keys or 1000   -- test seam: smaller pages
  local pending = c:list_page_async(list_prefix, per_page)
  local ok, res, emsg, ecode = pcall(function()
    while pending do
      if idle then repeat until pending:ready() or not idle() end
      local page, nxt, pcode = pending:wait()
      pending = nil
      if not page then return nil, nxt, pcode end
      if nxt then pending = c:list_page_async(list_prefix, per_page, nxt) end
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
  -- However the listing ended, a page still being fetched is waited for,
  -- so the listing client is free for the next listing.
  if pending then pending:wait() end
  if not ok then error(res, 0) end
  return res, emsg, ecode
end

--- The objects of one actor: filename -> object | nil, msg, code.
-- Refused keys go to on_skip when given.
function Sync:list_actor(name, on_skip)
  local objects = {}
  local ok, msg, code = self:each_listed_actor(self:key_for(name, ""),
    function(actor, objs) if actor == name then objects = objs end end,
    on_skip or function() end)
  if not ok then return nil, msg, code end
  return objects
end


return Sync
