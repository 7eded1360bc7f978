-- test_sync_listing.lua -- listings fetched a page ahead: the core
-- client's list_page_async (a page fetched on a thread while the caller
-- works through the previous one) and tdm.Sync's use of it (its own
-- listing client; groups of keys spanning pages delivered whole, in order;
-- the client free again after a listing that stopped early).
local t = require "t"
local core = require "tdm.core"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "e2e-listing" }
local cfg, client = w.cfg, w.client

-- 3 actors x 5 files, plus one refused key between them
local names = { "0001_a", "0002_b", "0003_c" }
local want = {}
do
  local src = w.tmp .. "/obj.jpg"
  t.write(src, "object bytes")
  for _, name in ipairs(names) do
    for j = 1, 5 do
      local fn = name .. "_" .. j .. ".jpg"
      assert(client:put(src, w:key(name, fn)))
      want[#want + 1] = w:key(name, fn)
    end
  end
  assert(client:put(src, w.prefix .. "/0002_b/nested/x.jpg"))
end
table.sort(want)

t.test("list_page_async pages equal list_page pages", function()
  local raw = client._c
  local got, token, pages = {}, nil, 0
  repeat
    local l = raw:list_page_async(w.prefix .. "/", 4, token)
    -- the client is busy meanwhile
    t.checkerr(function() return raw:list_page_async(w.prefix .. "/", 4) end, "busy")
    t.checkerr(function() return raw:close() end, "transfer")
    local objs, nxt = l:wait()
    t.ok(objs, "a page: " .. tostring(nxt))
    t.checkerr(function() return l:wait() end, "already waited")
    local same, snxt = raw:list_page(w.prefix .. "/", 4, token)
    t.eq(#objs, #same, "page size as list_page's")
    t.eq(nxt ~= nil, snxt ~= nil, "a next token when list_page has one")
    for i, o in ipairs(objs) do
      t.eq(o.key, same[i].key, "key " .. i)
      t.eq(o.md5, same[i].md5, "md5 " .. i)
      got[#got + 1] = o.key
    end
    token, pages = nxt, pages + 1
  until not token
  t.eq(pages, 4, "16 keys in pages of 4")
  t.eq(#got, 16, "keys listed")
  -- (RGW's continuation tokens are keys in clear text: any string is one)
  if e2e.server == "s3rver" then
    local _, msg, code = raw:list_page_async("", 1000, "not-a-token"):wait()
    t.ok(code ~= nil, "a failed page returns nil, msg, code: " .. tostring(msg))
  end
end)

t.test("Sync groups keys across small pages, in order, skipping bad keys", function()
  local sync = tdm.Sync.new(cfg)
  sync.list_page_keys = 2      -- every actor spans pages
  local seen, skipped = {}, {}
  assert(sync:each_listed_actor(w.prefix .. "/", function(actor, objs)
    local files = {}
    for fn in pairs(objs) do files[#files + 1] = fn end
    seen[#seen + 1] = { actor = actor, n = #files }
  end, function(key) skipped[#skipped + 1] = key end))
  t.eq(seen, { { actor = "0001_a", n = 5 }, { actor = "0002_b", n = 5 },
               { actor = "0003_c", n = 5 } }, "actors and their files")
  t.eq(skipped, { w.prefix .. "/0002_b/nested/x.jpg" }, "refused key")
  -- a callback that raises stops the listing after the first actor; the
  -- error propagates and the client is free for the next listing
  local n = 0
  local ok = pcall(sync.each_listed_actor, sync, w.prefix .. "/", function()
    n = n + 1
    error("stop here")
  end, function() end)
  t.eq(ok, false, "the callback's error propagates")
  t.eq(n, 1, "one actor delivered before the stop")
  -- the page being fetched when it stopped was waited for: the client is
  -- free at once (no garbage collection needed)
  local again = {}
  assert(sync:each_listed_actor(w.prefix .. "/", function(actor) again[#again + 1] = actor end,
                                function() end))
  t.eq(again, names, "a later listing on the same Sync")
end)

w:cleanup()
return t.done()
