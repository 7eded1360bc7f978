-- test_list_parts.lua -- a listing fetched as parts at once (tdm.list_parts,
-- used by tdm.Sync) returns exactly the keys of a page-after-page listing,
-- in the same order: with and without known boundaries, with boundaries
-- that are keys themselves, with keys that sort between actor names
-- (5-digit ids, "0005", "0010.txt", names before and after the digits),
-- with empty parts, with parts split again as pages arrive, and while keys
-- are added and removed during the listing. Against the harness's s3rver.
local t = require "t"
local tdm = require "tdm"
local list_parts = require "tdm.list_parts"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local w = e2e.world { tag = "e2e-parts" }
local cfg, client = w.cfg, w.client
local ROOT = w.prefix .. "/"

local function put_all(keys)
  local src = w.tmp .. "/obj.jpg"
  t.write(src, "object bytes")
  local jobs = {}
  for i, k in ipairs(keys) do jobs[i] = { op = "put", path = src, key = k } end
  local res = client:transfer(jobs, { jobs = 8 })
  for i, r in ipairs(res) do assert(r.ok, "put " .. jobs[i].key .. ": " .. tostring(r.error)) end
end

local keys = {}
for a = 1, 40 do
  local name = string.format("%04d_actor", a)
  for f = 1, 3 do keys[#keys + 1] = ROOT .. name .. "/" .. name .. "_" .. f .. ".jpg" end
end
for _, k in ipairs { "0005", "0005_actor/sub/x.jpg", "0010.txt", "00100_five/00100_five_0.jpg",
                     "00399_five/a.jpg", "!first.txt", "README.txt", "zzz/last.jpg" } do
  keys[#keys + 1] = ROOT .. k
end
put_all(keys)

-- The page-after-page listing, the reference.
local function sequential()
  local out = {}
  for obj, err in client:list(ROOT, { max_keys = 7 }) do
    assert(obj, "sequential listing: " .. tostring(err))
    out[#out + 1] = obj.key
  end
  return out
end

local clients = {}
local function client_fn(i)
  if not clients[i] then clients[i] = assert(tdm.s3.client(cfg)) end
  return clients[i]
end

-- Every key of a parallel listing, in the order handed out.
local function parallel(parts, width, page, on_page, o)
  o = o or {}
  local l = list_parts.new { client = o.client or client_fn, clients = width, parts = parts,
                             root = ROOT, page = page, budget = o.budget }
  local out = {}
  while true do
    local objs, msg, code = l:next_page()
    if objs == false then break end
    assert(objs, "parallel listing: " .. tostring(msg) .. " " .. tostring(code))
    for _, o in ipairs(objs) do out[#out + 1] = o.key end
    if on_page then on_page() end
  end
  local requests, splits = l.requests, l.splits
  l:close()
  return out, requests, splits, l
end

local function cut(...)
  local parts, lo = {}, nil
  for _, b in ipairs({ ... }) do
    parts[#parts + 1] = { prefix = ROOT, lo = lo, hi = ROOT .. b }
    lo = ROOT .. b
  end
  parts[#parts + 1] = { prefix = ROOT, lo = lo }
  return parts
end

local want = sequential()
t.eq(#want, #keys, "the reference lists every key put")

local cases = {
  { "one part, split as pages arrive", cut(), 8, 3 },
  { "one part, one client (no split possible)", cut(), 1, 3 },
  { "boundaries at known actor ids", cut("0010", "0020", "0030"), 4, 5 },
  { "a boundary that is a key itself", cut("0005", "0010.txt"), 3, 2 },
  { "boundaries between 5-digit ids", cut("00100", "0011", "00399"), 4, 2 },
  { "empty parts beyond every actor", cut("0040_actor/zzz", "5000", "6000", "7000"), 6, 4 },
  { "empty parts before every actor", cut("!", "!a", "0000"), 4, 1000 },
  { "many narrow parts, pages of one key", cut("0002", "0003", "0004", "0005", "0006"), 16, 1 },
}
for _, c in ipairs(cases) do
  t.test("parallel = sequential: " .. c[1], function()
    local got, requests, splits = parallel(c[2], c[3], c[4])
    t.eq(table.concat(got, "\n"), table.concat(want, "\n"), c[1] .. ": keys in order")
    if c[1]:find("split as pages arrive", 1, true) then
      t.ok(splits > 0, "the large part was split (splits " .. splits .. ")")
      print(string.format("# one part over %d keys, pages of 3, 8 clients: %d requests, %d splits",
                          #want, requests, splits))
    end
  end)
end

t.test("keys added and removed while the listing runs", function()
  local stable, gone, added = {}, {}, {}
  for _, k in ipairs(want) do stable[k] = true end
  -- removed from a later range, added to it and to one already read
  for a = 30, 33 do
    local k = string.format("%s%04d_actor/%04d_actor_2.jpg", ROOT, a, a)
    gone[#gone + 1] = k
    stable[k] = nil
  end
  local new = { ROOT .. "0031_actor/0031_actor_9.jpg", ROOT .. "0035_new/0035_new_0.jpg",
                ROOT .. "0001_actor/0001_actor_9.jpg" }
  local pages, changed = 0, false
  local got = parallel(cut("0020"), 4, 4, function()
    pages = pages + 1
    if pages == 2 and not changed then
      changed = true
      assert(client:delete_many(gone))
      put_all(new)
      for _, k in ipairs(new) do added[k] = true end
    end
  end)
  t.ok(changed, "the bucket changed mid-listing")
  local seen, bad = {}, {}
  for i, k in ipairs(got) do
    if seen[k] then bad[#bad + 1] = "twice: " .. k end
    if i > 1 and got[i - 1] >= k then bad[#bad + 1] = "out of order: " .. got[i - 1] .. " then " .. k end
    seen[k] = true
  end
  for k in pairs(stable) do
    if not seen[k] then bad[#bad + 1] = "missing (present throughout): " .. k end
  end
  for _, k in ipairs(got) do
    local known = false
    for _, x in ipairs(want) do if x == k then known = true; break end end
    if not known and not added[k] then bad[#bad + 1] = "never put: " .. k end
  end
  t.eq(table.concat(bad, "\n"), "", "every key present throughout once, in order, nothing else")
  -- back to the reference set
  assert(client:delete_many(new))
  put_all(gone)
end)

t.test("tdm.Sync: groups from a parallel listing equal those of a sequential one", function()
  local function groups(width)
    local sync = tdm.Sync.new(cfg)
    sync.list_clients, sync.list_page_keys = width, 2
    local out, skipped = {}, {}
    assert(sync:each_listed_actor(ROOT, function(actor, objs)
      local files = {}
      for f in pairs(objs) do files[#files + 1] = f end
      table.sort(files)
      out[#out + 1] = actor .. ":" .. table.concat(files, ",")
    end, function(key) skipped[#skipped + 1] = key end))
    return table.concat(out, "\n"), table.concat(skipped, "\n"), sync.list_requests
  end
  -- local folders give the boundaries
  for a = 5, 40, 5 do
    assert(tdm.core.mkdirs(string.format("%s/actors/%04d_actor/training_data", w.D, a)))
  end
  local g1, s1, r1 = groups(1)
  local g8, s8, r8 = groups(8)
  t.eq(g8, g1, "actor groups")
  t.eq(s8, s1, "skipped keys")
  print(string.format("# Sync listing, pages of 2: %d requests with 1 client, %d with 8", r1, r8))
end)

t.test("tdm.Sync:list_actors lists several actors at once, each as list_actor does", function()
  local sync = tdm.Sync.new(cfg)
  sync.list_clients, sync.list_page_keys = 3, 2
  local names = { "0003_actor", "0005_actor", "0017_actor", "0040_actor", "0041_none" }
  local all = assert(sync:list_actors(names))
  for _, n in ipairs(names) do
    local one = assert(tdm.Sync.new(cfg):list_actor(n))
    local a, b = {}, {}
    for f, o in pairs(all[n]) do a[#a + 1] = f .. "=" .. o.key end
    for f, o in pairs(one) do b[#b + 1] = f .. "=" .. o.key end
    table.sort(a)
    table.sort(b)
    t.eq(table.concat(a, " "), table.concat(b, " "), n .. ": objects")
  end
  t.eq(next(all["0041_none"]), nil, "an actor with no objects has none")
end)

t.test("pages received and not read stay within one budget for all parts", function()
  -- 16 clients, 9 parts, pages of 2 keys, a reader slower than the
  -- server: without the shared budget every part would fill up
  local parts = cut("0005", "0010", "0015", "0020", "0025", "0030", "0035", "0040")
  for _, budget in ipairs { 1, 3 } do
    local got, requests, _, l = parallel(parts, 16, 2, function()
      os.execute("sleep 0.02")
    end, { budget = budget })
    t.eq(table.concat(got, "\n"), table.concat(want, "\n"), "budget " .. budget .. ": keys in order")
    -- + 1: the page of the first part, collected for the reader
    t.ok(l.max_unread <= budget + 1, string.format(
      "budget %d: at most %d unread pages held, held %d", budget, budget + 1, l.max_unread))
    t.ok(l.max_unread >= budget, string.format(
      "budget %d: the budget was used (%d unread at most, %d requests)", budget, l.max_unread, requests))
  end
end)

t.test("requests that time out halve the requests in flight and are asked again", function()
  local fp = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/faultproxy.lua")
  -- seed 1336 at hang = 0.1: the 2nd and 7th requests through the proxy
  -- hang, then none before the 46th (never 5 on one page: MAX_RETRIES)
  local p = fp.start { seed = 1336, hang = 0.1 }
  local slow = {}
  local function slow_fn(i)
    if not slow[i] then
      slow[i] = assert(tdm.s3.client({ endpoint = p.url },
                                     { max_attempts = 1, stall_timeout = 1 }))
    end
    return slow[i]
  end
  local ok, err = pcall(function()
    local got, requests, _, l = parallel(cut("0010", "0020", "0030"), 8, 10, nil,
                                         { client = slow_fn })
    local st = p:stats()
    t.eq(table.concat(got, "\n"), table.concat(want, "\n"), "keys in order, as sequential")
    t.ok(st.hang >= 2 and l.timeouts == st.hang, string.format(
      "every hung request timed out and was asked again (%d hung, %d timeouts, %d requests)",
      st.hang, l.timeouts, requests))
    t.ok(l.width < 8, "fewer requests in flight after the timeouts (width " .. l.width .. ")")
  end)
  for _, c in pairs(slow) do c:close() end
  p:stop()
  fp.cleanup()
  if not ok then error(err, 0) end
end)

for _, c in pairs(clients) do c:close() end
os.exit(t.done())
