-- test_s3_queue.lua -- the transfer queue (c:queue) against a real s3rver:
-- jobs added while others run, more jobs than the queue has slots, ids
-- delivered once each, progress, the client held while the queue is open,
-- callback errors, closing with transfers in flight, listing:ready().
local t = require "t"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local PREFIX = e2e.prefix("tdmtest-queue") .. "/"
local dir = t.tmpdir()
local files_in = e2e.files_in
-- jobs = 2: the queue has 3 x 2 + 8 = 14 slots, so 40 jobs reuse them
local c = assert(tdm.s3.client(nil, { jobs = 2 }))

local N = 40
local function body(i) return string.rep(string.format("object %03d;", i), 50 * i) end
local function key(i) return string.format("%sq/%03d.jpg", PREFIX, i) end

t.test("puts, then gets added while the queue runs", function()
  local done, order = {}, {}
  local q = c:queue { on_complete = function(id, res)
    done[id] = (done[id] or 0) + 1
    order[#order + 1] = id
    t.ok(res.ok, "job " .. id .. ": " .. tostring(res.error))
  end }
  for i = 1, N do
    local src = dir .. string.format("/src-%03d", i)
    t.write(src, body(i))
    t.eq(q:add { op = "put", path = src, key = key(i) }, i, "ids count from 1")
  end
  t.eq(q:pending(), N, "nothing runs before a turn")
  t.eq(q:wait(), false, "not interrupted")
  t.eq(q:pending(), 0, "all finished")
  -- gets, added a few at a time between turns
  local next_id, pumps = N + 1, 0
  for i = 1, N do
    local id = q:add { op = "get", key = key(i), path = dir .. string.format("/out/%03d.jpg", i) }
    t.eq(id, next_id, "ids go on counting")
    next_id = next_id + 1
    -- turn until the first get is delivered (however long that takes on
    -- a loaded machine), then add the rest
    if i == 5 then
      while #order == N do q:pump(100); pumps = pumps + 1 end
    end
  end
  t.ok(#order > N, "some gets finished while others were still being added ("
       .. (#order - N) .. " of " .. N .. ")")
  q:wait()
  q:close()
  local twice = 0
  for id = 1, 2 * N do
    if done[id] ~= 1 then twice = twice + 1 end
  end
  t.eq(twice, 0, "every id delivered exactly once")
  t.eq(#order, 2 * N, "deliveries")
  local bad = 0
  for i = 1, N do
    if t.read(dir .. string.format("/out/%03d.jpg", i)) ~= body(i) then bad = bad + 1 end
  end
  t.eq(bad, 0, "every downloaded file has its object's bytes")
  t.eq(#files_in(dir .. "/out"), N, "no temp file left")
end)

t.test("progress counts files and bytes of the whole queue", function()
  local calls, last = 0, nil
  local q <close> = c:queue { jobs = 4, on_progress = function(files, total, bytes)
    calls = calls + 1
    if last then
      t.ok(files >= last[1] and bytes >= last[3], "progress never goes back")
    end
    last = { files, total, bytes }
  end }
  local want = 0
  for i = 1, 10 do
    q:add { op = "get", key = key(i), path = dir .. string.format("/p/%03d.jpg", i) }
    want = want + #body(i)
  end
  q:wait()
  t.ok(calls > 0, "on_progress called")
  t.eq(last, { 10, 10, want }, "last progress: files done, files added, bytes")
end)

t.test("the client is held while a queue is open", function()
  local q = c:queue()
  local r, msg, code = c:head(key(1))
  t.eq(r, nil, "head on a client with an open queue fails")
  t.eq(code, "EBUSY", "EBUSY: " .. tostring(msg))
  t.checkerr(function() c:close() end, "close that first")
  t.checkerr(function() c:queue() end, "busy")
  q:close()
  t.ok(c:head(key(1)), "after q:close() the client works again")
  t.checkerr(function() q:pump() end, "closed transfer queue")
end)

t.test("an error in on_complete is raised by the turn; the queue goes on", function()
  local seen = {}
  local q <close> = c:queue { on_complete = function(id)
    seen[#seen + 1] = id
    if id == 3 then error("callback failed on 3") end
  end }
  for i = 1, 6 do
    q:add { op = "get", key = key(i), path = dir .. string.format("/e/%03d.jpg", i) }
  end
  local ok, err = pcall(function() q:wait() end)
  t.eq(ok, false, "wait raised")
  t.ok(tostring(err):find("callback failed on 3", 1, true), "the callback's error: " .. tostring(err))
  t.eq(q:wait(), false, "waiting again finishes the rest")
  table.sort(seen)
  t.eq(seen, { 1, 2, 3, 4, 5, 6 }, "every job still delivered once")
end)

t.test("a callback cannot close, pump or wait for its own queue; it can add", function()
  local q, errs, added = nil, {}, false
  q = c:queue { on_complete = function(id)
    for _, f in ipairs { "close", "pump", "wait" } do
      local ok, err = pcall(q[f], q)
      if not ok then errs[#errs + 1] = f .. ": " .. tostring(err) end
    end
    if id == 1 and not added then
      added = true
      q:add { op = "get", key = key(2), path = dir .. "/cb/002.jpg" }
    end
  end }
  q:add { op = "get", key = key(1), path = dir .. "/cb/001.jpg" }
  t.eq(q:wait(), false, "wait")
  t.eq(#errs, 6, "each of the three refused in both callbacks")
  t.ok(errs[1] and errs[1]:find("from its own callback", 1, true), "named: " .. tostring(errs[1]))
  t.eq(t.read(dir .. "/cb/002.jpg"), body(2), "the job added from a callback ran")
  q:close()
end)

t.test("closing with transfers in flight leaves no partial file", function()
  local q = c:queue()
  for i = 1, N do
    q:add { op = "get", key = key(i), path = dir .. string.format("/x/%03d.jpg", i) }
  end
  q:pump(0)
  q:pump(0)
  local left = q:pending()
  q:close()
  t.ok(left > 0, "jobs were still pending at close (" .. left .. ")")
  local bad = 0
  for _, f in ipairs(files_in(dir .. "/x")) do
    local i = tonumber(f:match("^(%d+)%.jpg$"))
    if not i or t.read(dir .. "/x/" .. f) ~= body(i) then bad = bad + 1 end
  end
  t.eq(bad, 0, "only complete files under final names, no temp files")
end)

t.test("bad jobs raise and name what is wrong", function()
  local q <close> = c:queue()
  t.checkerr(function() q:add { op = "copy", key = "a", path = "b" } end,
             "must be \"get\" or \"put\"")
  t.checkerr(function() q:add { op = "get", key = "a" } end, "needs key and path")
  t.checkerr(function() q:add("x") end, "table expected")
  t.checkerr(function() q:pump(-1) end, "0..60000")
  t.eq(q:pending(), 0, "nothing was added")
  q:close()
  t.checkerr(function() c:queue { on_complete = 1 } end, "expected a function")
  t.ok(c:head(key(1)), "a refused queue does not hold the client")
end)

t.test("listing:ready() turns true when the page has arrived", function()
  local lc = assert(tdm.s3.client())
  local l = lc._c:list_page_async(PREFIX .. "q/", 1000)
  -- busy-waits: ready() must turn true without wait() (own thread)
  repeat until l:ready()
  local page = assert(l:wait())
  t.eq(#page, N, "the page")
  t.eq(l:ready(), true, "ready after wait too")
  lc:close()
end)

c:close()
return t.done()
