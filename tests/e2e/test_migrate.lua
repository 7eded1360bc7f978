-- test_migrate.lua -- `tdm-lua migrate` end to end on a generated data
-- root and a real s3rver (run through tests/run.sh): every accepted
-- response.json shape becomes the right entries with true statuses, an
-- existing manifest is merged, garbled files are reported and left
-- byte-identical, --keep-legacy, --dry-run changes nothing, and under
-- SIGKILL a legacy file never disappears before its manifest is saved.
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local cjson = require "cjson"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local lf = dofile(e2e.ROOT .. "/tests/lib/legacy_fixture.lua")

local sh_quote = t.shq
local PREFIX = e2e.prefix("t/migrate")

local accepted = lf.accepted({ actor_name = "X", bucket = "story-boards-assets",
                               prefix = PREFIX, region = "us-west-1" })
local garbled = lf.garbled({ actor_name = "X", bucket = "story-boards-assets",
                             prefix = PREFIX, region = "us-west-1" })
local N_SHAPES, N_GARBLED = #accepted, #garbled
local N_KILL = 12
local nbulk = N_SHAPES + N_GARBLED + 4 + N_KILL

local w = e2e.world { prefix = PREFIX, fixture = { seed = 7, scenarios = false,
                      bulk = nbulk, bulk_files = 4, bulk_size = 4 * 400 } }
local DATA, fx, cfg = w.D, w.fx, w.cfg

local names = {}
for name in pairs(fx.actors) do names[#names + 1] = name end
table.sort(names)
assert(#names == nbulk, "fixture actors")

local function legacy(name) return w:tdir(name) .. "/response.json" end

-- The world per actor, made varied: index 1 only in S3 (local deleted),
-- index 3 differs (local rewritten), index 5 only local; 0 and 2 synced.
for _, name in ipairs(names) do
  os.remove(w:tdir(name) .. "/" .. name .. "_1.jpg")
  t.write(w:tdir(name) .. "/" .. name .. "_3.jpg", "changed locally " .. name)
  t.write(w:tdir(name) .. "/" .. name .. "_5.jpg", "only local " .. name)
end

-- What each file of `name` really is now.
local function truth(name, fn)
  local lmd5 = core.stat(w:tdir(name) .. "/" .. fn) and core.md5_file(w:tdir(name) .. "/" .. fn)
  local smd5 = fx.objects[w:key(name, fn)]
  if lmd5 and smd5 then return lmd5 == smd5 and "synced" or "out_of_sync", lmd5 end
  if lmd5 then return "local_only", lmd5 end
  if smd5 then return "s3_only", smd5 end
  return "missing"
end

-- A by-position reference whose extension matches no file is the one
-- image of that index that exists (the fixture's are .jpg).
local function expected_name(name, fn)
  if truth(name, fn) ~= "missing" then return fn end
  local jpg = fn:gsub("%.%w+$", ".jpg")
  if truth(name, jpg) ~= "missing" then return jpg end
  return fn
end

local function entries_of(name)
  local doc = assert(tdm.Manifest.load(w:mpath(name), cfg))
  local out = {}
  for _, e in ipairs(doc.training_data) do out[e.filename] = e end
  return out, doc
end

-- Assign actors: shapes, garbled, merge, keep-legacy, dry-run, kill.
local shape_actor, garbled_actor = {}, {}
local i = 0
local function next_actor() i = i + 1; return names[i] end
for k, c in ipairs(accepted) do
  local name = next_actor()
  shape_actor[k] = name
  os.remove(w:mpath(name))
  local text = lf.accepted({ actor_name = name, bucket = "story-boards-assets",
                             prefix = PREFIX, region = "us-west-1" })[k].text
  lf.write(DATA, name, text)
  assert(c.name)
end
for k in ipairs(garbled) do
  local name = next_actor()
  garbled_actor[k] = name
  os.remove(w:mpath(name))
  lf.write(DATA, name, lf.garbled({ actor_name = name, bucket = "story-boards-assets",
                                    prefix = PREFIX, region = "us-west-1" })[k].text)
end
local merge_actor, keep_actor, dry_actor, link_actor = next_actor(), next_actor(), next_actor(), next_actor()
local kill_actors = {}
for _ = 1, N_KILL do kill_actors[#kill_actors + 1] = next_actor() end

t.test("dry run prints the plan and changes nothing", function()
  local name = dry_actor
  os.remove(w:mpath(name))
  lf.write(DATA, name, cjson.encode({ images = {
    { url = "s3://story-boards-assets/" .. w:key(name, name .. "_0.jpg") },
    { url = "s3://story-boards-assets/" .. w:key(name, name .. "_1.jpg") } } }))
  local before = w:snapshot { no_locks = true }
  local rc, out, err = w:tdm("migrate --dry-run --json")
  t.eq(e2e.snapdiff(before, w:snapshot { no_locks = true }), "", "data root and bucket after --dry-run")
  t.eq(rc, 1, "exit code (garbled files present): " .. err)
  local planned = {}
  for _, ev in ipairs((e2e.json_lines(out))) do
    if ev.actor == name then planned[ev.file] = ev end
  end
  t.eq(planned[name .. "_0.jpg"] and planned[name .. "_0.jpg"].result, "synced", "planned _0")
  t.eq(planned[name .. "_1.jpg"] and planned[name .. "_1.jpg"].result, "s3_only", "planned _1")
  t.eq(planned[name .. "_0.jpg"].action, "add", "planned action _0 (no manifest)")
  t.eq(planned["response.json"] and planned["response.json"].action, "delete", "planned delete")
  t.ok(planned[name .. "_0.jpg"].dry_run, "events marked dry_run")
  os.remove(legacy(name))   -- not part of the later runs
end)

-- Garbled files: their bytes before the real run.
local garbled_bytes = {}
for k, name in ipairs(garbled_actor) do garbled_bytes[k] = t.read(legacy(name)) end

-- The merge actor keeps its fixture manifest (4 synced entries, now
-- stale) and gets a legacy file naming _0 and a new _6 (exists nowhere).
lf.write(DATA, merge_actor, cjson.encode({ merge_actor .. "_0.jpg", merge_actor .. "_6.jpg" }))
lf.write(DATA, keep_actor, cjson.encode({ output = { keep_actor .. "_0.jpg" } }))
for _, name in ipairs(kill_actors) do
  local urls = {}
  for j = 0, 5 do
    urls[#urls + 1] = "https://story-boards-assets.s3.us-west-1.amazonaws.com/" ..
                      w:key(name, string.format("%s_%d.jpg", name, j))
  end
  lf.write(DATA, name, cjson.encode(urls))
end

t.test("dry run plans 'update' for entries the manifest has, 'add' for new ones", function()
  local before = w:snapshot { no_locks = true }
  local rc, out, err = w:tdm("migrate --dry-run --json --actor " .. merge_actor)
  t.eq(rc, 0, "exit code: " .. err)
  local planned = {}
  for _, ev in ipairs((e2e.json_lines(out))) do
    if ev.file then planned[ev.file] = ev.action end
  end
  t.eq(planned[merge_actor .. "_0.jpg"], "update", "_0")
  t.eq(planned[merge_actor .. "_6.jpg"], "add", "_6")
  t.eq(e2e.snapdiff(before, w:snapshot { no_locks = true }), "", "nothing changed")
end)

-- Kill migrate at seeded random moments: whenever a legacy file is gone,
-- its manifest exists, parses and lists what the legacy file named.
local function check_invariant(round)
  for _, name in ipairs(kill_actors) do
    if not core.stat(legacy(name)) then
      local doc, err = tdm.Manifest.load(w:mpath(name), cfg)
      t.ok(doc, string.format("round %d: %s: response.json gone, manifest loads: %s",
                              round, name, tostring(err)))
      local have = {}
      for _, e in ipairs(doc.training_data) do have[e.filename] = true end
      for j = 0, 5 do
        t.ok(have[string.format("%s_%d.jpg", name, j)],
             string.format("round %d: %s: entry _%d saved before the delete", round, name, j))
      end
    end
  end
end

t.test("SIGKILL at random moments never loses a legacy file before its manifest", function()
  local seed = 20261126
  local function rand(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
  local sel = {}
  for _, name in ipairs(kill_actors) do sel[#sel + 1] = "--actor " .. name end
  local args = "migrate --quiet " .. table.concat(sel, " ") ..
               " --data-root " .. sh_quote(DATA) .. " --prefix " .. sh_quote(PREFIX)
  for round = 1, 4 do
    local delay = (20 + rand(400)) / 1000
    os.execute(string.format("tdm-lua %s >/dev/null 2>&1 & p=$!; sleep %.3f; kill -9 $p 2>/dev/null; wait $p 2>/dev/null",
                             args, delay))
    check_invariant(round)
    local left = 0
    for _, name in ipairs(kill_actors) do
      if core.stat(legacy(name)) then left = left + 1 end
    end
    print(string.format("# round %d: killed after %.3f s, %d of %d legacy files left",
                        round, delay, left, #kill_actors))
  end
  os.execute("tdm-lua " .. args .. " >/dev/null 2>&1")
  check_invariant(5)
  for _, name in ipairs(kill_actors) do
    t.eq(core.stat(legacy(name)), nil, name .. ": legacy file after the final run")
  end
end)

local rc, out, err = w:tdm("migrate --json")

t.test("exit code 1: garbled files were found, the rest went on", function()
  t.eq(rc, 1, "exit code; stderr: " .. err:sub(1, 300))
  local last
  for line in out:gmatch("[^\n]+") do last = line end
  local ok, summary = pcall(cjson.decode, last or "")
  t.ok(ok and summary.summary, "last line is the JSON summary")
  t.eq(summary.summary.failed, N_GARBLED, "failed actors")
end)

for k, c in ipairs(accepted) do
  t.test("shape: " .. c.name, function()
    local name = shape_actor[k]
    t.eq(core.stat(legacy(name)), nil, "response.json deleted")
    local entries = entries_of(name)
    local case = lf.accepted({ actor_name = name, bucket = "story-boards-assets",
                               prefix = PREFIX, region = "us-west-1" })[k]
    local want = {}
    for _, fn in ipairs(case.want) do
      want[case.by[fn] == "position" and expected_name(name, fn) or fn] = true
    end
    local got = {}
    for fn in pairs(entries) do got[fn] = true end
    t.eq(got, want, "entries")
    for fn, e in pairs(entries) do
      local st, md5 = truth(name, fn)
      t.eq(e.status, st, fn .. " status")
      if md5 then t.eq(e.md5_hash, md5, fn .. " md5_hash") end
      t.eq(e.s3_url, "https://story-boards-assets.s3.us-west-1.amazonaws.com/" ..
                     w:key(name, fn), fn .. " s3_url")
    end
  end)
end

t.test("garbled files are reported, left byte-identical, no manifest made", function()
  for k in ipairs(garbled) do
    local name = garbled_actor[k]
    local c = lf.garbled({ actor_name = name, bucket = "story-boards-assets",
                           prefix = PREFIX, region = "us-west-1" })[k]
    t.eq(t.read(legacy(name)), garbled_bytes[k], c.name .. ": bytes of response.json")
    t.eq(core.stat(w:mpath(name)), nil, c.name .. ": no manifest written")
    local found = false
    for _, ev in ipairs((e2e.json_lines(out))) do
      if ev.actor == name and ev.result == "error" then
        found = true
        t.ok(ev.error:find(legacy(name), 1, true), c.name .. ": message names the file: " .. ev.error)
        t.ok(ev.error:find(c.reason, 1, true), c.name .. ": reason '" .. c.reason .. "' in: " .. ev.error)
      end
    end
    t.ok(found, c.name .. ": reported")
  end
end)

t.test("merge with an existing manifest loses no entry", function()
  local entries = entries_of(merge_actor)
  for j = 0, 3 do
    t.ok(entries[string.format("%s_%d.jpg", merge_actor, j)], "kept entry _" .. j)
  end
  local fn6 = merge_actor .. "_6.jpg"
  t.ok(entries[fn6], "added _6")
  t.eq(entries[fn6] and entries[fn6].status, "missing", "_6 exists nowhere")
  t.eq(entries[merge_actor .. "_0.jpg"].status, "synced", "_0 status")
  t.eq(core.stat(legacy(merge_actor)), nil, "legacy deleted")
end)

t.test("--keep-legacy keeps response.json", function()
  -- keep_actor was migrated above (and its legacy deleted): write a new
  -- one and run for that actor only.
  local text = cjson.encode({ keep_actor .. "_2.jpg" })
  lf.write(DATA, keep_actor, text)
  local rc2, _, err2 = w:tdm("migrate --keep-legacy --actor " .. keep_actor)
  t.eq(rc2, 0, "exit code: " .. err2)
  t.eq(t.read(legacy(keep_actor)), text, "response.json kept byte-identical")
  local entries = entries_of(keep_actor)
  t.eq(entries[keep_actor .. "_2.jpg"] and entries[keep_actor .. "_2.jpg"].status,
       "synced", "entry _2 saved")
  t.ok(entries[keep_actor .. "_0.jpg"], "earlier entry _0 kept")
end)

t.test("a second run on the leftovers changes nothing; one stderr line each", function()
  os.remove(legacy(keep_actor))
  -- a symlinked response.json is refused too (and left as it is)
  t.write(w.tmp .. "/elsewhere.json", cjson.encode({ link_actor .. "_0.jpg" }))
  os.remove(w:mpath(link_actor))
  assert(os.execute("ln -s " .. sh_quote(w.tmp .. "/elsewhere.json") .. " " ..
                    sh_quote(legacy(link_actor))))
  local before = w:snapshot { no_locks = true }
  local rc2, out2, err2 = w:tdm("migrate")
  t.eq(rc2, 1, "exit code")
  t.eq(e2e.snapdiff(before, w:snapshot { no_locks = true }), "", "data root and bucket")
  t.eq(out2, "", "nothing migrated")
  local lines = {}
  for line in err2:gmatch("[^\n]+") do
    if line:find("^tdm%-lua: migrate: /") then lines[#lines + 1] = line end
  end
  t.eq(#lines, N_GARBLED + 1, "error lines on stderr:\n" .. err2)
  t.ok(err2:find(legacy(link_actor) .. ": not a regular file (link)", 1, true),
       "symlink refused: " .. err2)
  t.ok(core.stat(legacy(link_actor)).type == "link", "symlink left in place")
  t.eq(core.stat(w:mpath(link_actor)), nil, "no manifest for the symlinked one")
end)

w:cleanup()

return t.done()
