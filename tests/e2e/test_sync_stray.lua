-- test_sync_stray.lua -- objects outside any actor folder (another tool's
-- README, a nested "folder", a name no actor has) do not make every bulk
-- run fail: sync-manifests, pull-all and push-all skip each with a
-- warning naming the key, count it (keys_skipped), write nothing for it
-- and exit 0; audit still reports each as a bad_key finding (exit 1).
local t = require "t"
local core = require "tdm.core"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local w = e2e.world { prefix = e2e.prefix("e2e-stray") .. "/training_data", fixture = {
  seed = 11, scenarios = false, bulk = 3, bulk_files = 2, bulk_size = 4000 } }
local PREFIX, D, TMP, client = w.prefix, w.D, w.tmp, w.client

-- Stray objects, in key order among the actors' (0001_.. 0003_..).
local STRAY = {
  PREFIX .. "/0002_bulk_actor/sub/0002_bulk_actor_9.jpg",   -- nested
  PREFIX .. "/README.txt",                                   -- outside any folder
  PREFIX .. "/not_an_actor/x.jpg",                           -- no actor name
  PREFIX .. "/0000_/0000__0.jpg",                            -- {id}_ with no descriptor
}
do
  local src = TMP .. "/stray.bin"
  t.write(src, "not an actor's image\n")
  for _, k in ipairs(STRAY) do assert(client:put(src, k)) end
end

local function stray_events(events)
  local got = {}
  for _, ev in ipairs(events) do
    if ev.action == "skip" and ev.result == "stray key" then got[#got + 1] = ev.file end
  end
  table.sort(got)
  return table.concat(got, " ")
end

local want_keys = {}
for i, k in ipairs(STRAY) do want_keys[i] = k end
table.sort(want_keys)
local WANT = table.concat(want_keys, " ")

for _, cmd in ipairs { "sync-manifests", "pull-all", "push-all" } do
  t.test(cmd .. " skips stray keys with a warning, counts them, exits 0", function()
    os.execute("rm -rf " .. t.shq(D .. "/actors"))
    local rc, out, err = w:tdm(cmd .. " --json")
    t.eq(rc, 0, cmd .. " exit code (stderr: " .. err:sub(1, 400) .. ")")
    local events, summary = e2e.json_lines(out, cmd)
    summary = summary or {}
    t.eq(stray_events(events), WANT, cmd .. ": keys warned about")
    t.eq(summary.keys_skipped, #STRAY, cmd .. ": keys_skipped")
    t.eq(summary.errors, 0, cmd .. ": errors")
    t.eq(summary.actors, 3, cmd .. ": actors processed")
    for _, d in ipairs { "not_an_actor", "0000_", "README.txt" } do
      t.ok(not core.stat(D .. "/actors/" .. d), cmd .. ": nothing made for " .. d)
    end
    t.ok(not core.stat(D .. "/actors/0002_bulk_actor/training_data/sub"),
         cmd .. ": no nested folder")
  end)
end

t.test("human output: one warning line per stray key on stderr, exit 0", function()
  local rc, _, err = w:tdm("sync-manifests")
  t.eq(rc, 0, "exit code (stderr: " .. err:sub(1, 400) .. ")")
  for _, k in ipairs(STRAY) do
    t.ok(err:find("warning: " .. k .. ": S3 object outside any actor folder, skipped", 1, true),
         "warning for " .. k .. " in: " .. err:sub(1, 600))
  end
  t.ok(err:find("keys_skipped=" .. #STRAY, 1, true), "summary counts them: " .. err:sub(-300))
end)

t.test("audit still reports every stray key as bad_key", function()
  local rc, out, err = w:tdm("audit --json")
  t.eq(rc, 1, "audit exit code (findings) (stderr: " .. err:sub(1, 300) .. ")")
  local events, summary = e2e.json_lines(out, "audit")
  local seen = 0
  for _, ev in ipairs(events) do
    if ev.kind == "bad_key" or ev.finding == "bad_key" or ev.action == "bad_key" then
      seen = seen + 1
    end
  end
  t.eq((summary or {}).bad_key, #STRAY, "bad_key findings in the summary")
  t.eq(seen, #STRAY, "bad_key finding events")
end)

os.exit(t.done())
