--- tdm.list_parts -- one S3 listing fetched as several parts at once and
-- handed out page by page in key order, so a caller sees exactly what a
-- page-after-page listing would show, without paying S3's latency once
-- per page.
--
--   local lister = list_parts.new {
--     client = function(i) -> tdm.s3 client | nil, msg, code,  -- i-th, 1..clients
--     clients = 8,            -- listings in flight at most (one client each)
--     parts = { { prefix =, lo =, hi = }, ... },  -- in key order
--     root = "prefix/",       -- set: parts may be split at actor ids under it
--     page = 1000,            -- keys per request
--     budget = 4,             -- pages received and not read yet, all
--                             -- parts together, at most
--   }
--   lister:next_page([idle]) -> objects, part_index | false (the end)
--                               | nil, msg, code
--   lister:close()            -- waits for the requests still in flight
--
-- A part lists `prefix` from just after key `lo` (ListObjectsV2
-- start-after; nil: from the start) up to and including key `hi` (nil: to
-- the end); consecutive parts of one listing share the prefix and
-- hi == the next part's lo, so together they hold every key once. While
-- pages of the part being read are awaited, later parts are fetched on
-- the other clients. A part whose first pages show it is large is split
-- again at actor ids (keys are {root}{digits}_...): what it has not
-- listed yet becomes new parts for idle clients. Memory stays flat in
-- the number of parts and clients: pages received and not read yet are
-- at most `budget` for all parts together (plus the one handed out);
-- requests in flight are not held pages, so up to `clients` of them go
-- out while that budget has room (an answer that arrives while it is
-- full waits in its request until a page is read). Until the first
-- answer is in, only one request is made: a bucket that refuses is asked
-- once. A request that times out while others were in flight (a server
-- that answers one at a time queues them) halves the requests kept in
-- flight and its page is asked again, at most MAX_RETRIES times.
local M = {}

local Lister = {}
Lister.__index = Lister

local MAX_ID_DIGITS = 15   -- ids beyond this are not split numerically
local MAX_SPLIT = 8        -- new parts made from one page, at most
local MAX_RETRIES = 4      -- times one page is asked again after timeouts

function M.new(o)
  local self = setmetatable({
    client = o.client, nclients = math.max(1, o.clients or 1),
    parts = {}, root = o.root, page = o.page or 1000,
    free = {}, made = 0, requests = 0, splits = 0, timeouts = 0,
    max_parts = 4 * math.max(1, o.clients or 1),
    -- pages received and not read yet (all parts), at most; the most
    -- there ever were (tests read it)
    budget = math.max(1, o.budget or 4), unread = 0, max_unread = 0,
    -- requests in flight now, and at most (halved by timeouts)
    inflight = 0, width = math.max(1, o.clients or 1),
    -- Until a first answer has come back, one request only: a bucket that
    -- refuses (credentials, region, no such bucket) is asked once, not
    -- once per part.
    probing = true,
  }, Lister)
  for i, p in ipairs(o.parts) do
    self.parts[i] = { prefix = p.prefix, lo = p.lo, hi = p.hi, index = i,
                      pages = {}, done = false }
  end
  return self
end

-- A client for a request: a free one, or a new one while fewer than
-- nclients exist; nil when all are busy (or making one failed: recorded).
function Lister:take_client()
  local c = table.remove(self.free)
  if c then return c end
  if self.made >= self.nclients then return nil end
  self.made = self.made + 1
  local cl, msg, code = self.client(self.made)
  if not cl then
    self.failed = { msg, code }
    return nil
  end
  return cl
end

function Lister:idle_clients()
  return math.max(0, self.width - self.inflight)
end

-- Start the next request of every part that may have one, first parts
-- first, while clients are free.
function Lister:issue()
  if self.failed then return end   -- the listing is over
  for pos, p in ipairs(self.parts) do
    -- The first part is asked for even with the budget full (the reader
    -- waits for it), and later parts leave it one of the `width` slots.
    if pos > 1 then
      local later = self.inflight - (self.parts[1].pending and 1 or 0)
      if self.unread >= self.budget or self.probing or later >= self.width - 1 then
        return
      end
    end
    if not p.done and not p.pending then
      local c = self:take_client()
      if not c then return end
      p.client, p.width = c, self.width
      p.pending = c:list_page_async(p.prefix, self.page, p.token,
                                    p.token == nil and p.lo or nil)
      self.requests = self.requests + 1
      self.inflight = self.inflight + 1
    end
  end
end

-- The leading digits of `key` under root, or nil.
function Lister:id_of(key)
  local root = self.root
  if not key or key:sub(1, #root) ~= root then return nil end
  return key:sub(#root + 1):match("^%d+")
end

-- The number of the id of `key` read as `width` digits (right-padded), or
-- nil when key has none.
function Lister:id_number(key, width)
  local d = self:id_of(key)
  return d and tonumber((d .. string.rep("0", width)):sub(1, width))
end

-- Up to n keys strictly between `cur` and `hi` (nil: the end), in order,
-- at actor ids `step` apart from cur's (as many ids as one page held),
-- none past hi's; {} when none fit.
function Lister:cuts(cur, hi, n, step)
  local a = self:id_of(cur)
  if not a or (hi and not self:id_of(hi)) then return {} end
  local width = math.max(#a, hi and #self:id_of(hi) or 0, 4)
  if width > MAX_ID_DIGITS then return {} end
  local lo_n = self:id_number(cur, width)
  local hi_n = hi and self:id_number(hi, width) or 10 ^ width
  local out = {}
  for i = 1, n do
    local v = lo_n + step * i
    if v >= hi_n then break end
    local key = self.root .. string.format("%0" .. width .. "d", math.floor(v))
    if key > cur and (not hi or key < hi) and key ~= out[#out] then
      out[#out + 1] = key
    end
  end
  return out
end

-- Part p (at position pos) just got a page from key `first` to `last` and
-- has more: hand what it has not listed yet to idle clients as new parts,
-- each about as many actor ids wide as that page.
function Lister:split(pos, first, last)
  local p = self.parts[pos]
  if not self.root or p.prefix ~= self.root or self.nclients < 2 then return end
  local room = math.min(self:idle_clients(), self.max_parts - #self.parts, MAX_SPLIT)
  if room < 1 then return end
  local width = math.max(#(self:id_of(last) or ""), 4)
  local f, l = self:id_number(first, width), self:id_number(last, width)
  if not f or not l then return end
  local cuts = self:cuts(last, p.hi, room, math.max(1, l - f))
  if #cuts == 0 then return end
  local hi = p.hi
  p.hi = cuts[1]
  for i, lo in ipairs(cuts) do
    table.insert(self.parts, pos + i, { prefix = p.prefix, lo = lo,
                 hi = cuts[i + 1] or hi, index = p.index, pages = {}, done = false })
  end
  self.splits = self.splits + 1
end

-- Collect the answer of part p's request (waiting for it); keys beyond
-- p.hi end the part.
function Lister:collect(pos)
  local p = self.parts[pos]
  local objs, nxt, code = p.pending:wait()
  p.pending = nil
  self.inflight = self.inflight - 1
  self.free[#self.free + 1] = p.client
  p.client = nil
  if not objs and code == "ETIMEDOUT" and (p.retries or 0) < MAX_RETRIES then
    -- fewer at once, and the same page again (p.token is unchanged)
    p.retries = (p.retries or 0) + 1
    self.timeouts = self.timeouts + 1
    self.width = math.max(1, math.min(self.width, p.width // 2))
    return
  end
  if not objs then
    self.failed = { nxt, code }
    return
  end
  p.retries = nil
  self.probing = false
  if p.hi then
    local n, got = #objs, #objs
    while n > 0 and objs[n].key > p.hi do
      objs[n] = nil
      n = n - 1
    end
    -- past hi, or at it: the rest is the next part's
    if n < got or (n > 0 and objs[n].key == p.hi) then nxt = nil end
  end
  p.pages[#p.pages + 1] = objs
  self.unread = self.unread + 1
  self.max_unread = math.max(self.max_unread, self.unread)
  p.token = nxt
  if not nxt then
    p.done = true
  elseif #objs > 0 then
    self:split(pos, objs[1].key, objs[#objs].key)
  end
end

-- Collect the answers already in, first parts first, while the budget
-- has room (the first part's always: the reader waits for it).
function Lister:harvest()
  for pos, p in ipairs(self.parts) do
    if pos > 1 and self.unread >= self.budget then return end
    if p.pending and p.pending:ready() then self:collect(pos) end
  end
end

--- The next page in key order: objects, index of the part (as given to
-- new) | false at the end | nil, msg, code. While the page is awaited,
-- idle() (optional) is called for as long as it returns true.
function Lister:next_page(idle)
  while true do
    if self.failed then return nil, self.failed[1], self.failed[2] end
    local p = self.parts[1]
    if not p then return false end
    if #p.pages > 0 then
      local page = table.remove(p.pages, 1)
      self.unread = self.unread - 1
      self:harvest()
      self:issue()
      return page, p.index
    end
    if p.done then
      table.remove(self.parts, 1)
    else
      self:issue()
      if self.failed then return nil, self.failed[1], self.failed[2] end
      if idle then
        repeat self:harvest(); self:issue() until p.done or #p.pages > 0
          or self.failed or (p.pending and p.pending:ready()) or not idle()
      end
      if p.pending and #p.pages == 0 and not p.done then
        self:collect(1)
      elseif not p.pending and #p.pages == 0 and not p.done then
        -- every client is busy with later parts: wait for the earliest
        for pos = 2, #self.parts do
          if self.parts[pos].pending then self:collect(pos); break end
        end
      end
      self:harvest()
      self:issue()
    end
  end
end

--- Wait for every request still in flight (their clients are free again).
function Lister:close()
  for _, p in ipairs(self.parts) do
    if p.pending then
      p.pending:wait()
      p.pending = nil
      self.free[#self.free + 1] = p.client
    end
  end
  self.parts, self.inflight, self.unread = {}, 0, 0
end

return M
