-- test_migrate_plan.lua -- tdm.migrate without S3: the plan (local facts,
-- S3 facts from a given listing, by-position extensions settled, add vs
-- update), apply (merge, save, then delete), and a failed save leaving
-- the legacy file; the audit and migrate modules write no globals.
local t = require "t"
local core = require "tdm.core"

local before = {}
for k in pairs(_G) do before[k] = true end
local migrate = require "tdm.migrate"
local audit = require "tdm.audit"
require "tdm.commands.audit"
require "tdm.commands.migrate"
local tdm = require "tdm"

t.test("no globals; lazy fields", function()
  for k in pairs(_G) do t.ok(before[k], "global '" .. tostring(k) .. "' created") end
  t.eq(tdm.migrate, migrate, "tdm.migrate")
  t.eq(tdm.audit, audit, "tdm.audit")
  t.eq(#audit.KINDS, 13, "finding kinds")
end)

t.test("actor names", function()
  for _, c in ipairs({ { "0042_x", true }, { "7_a-b", true }, { "x_1", false },
                       { "0042", false }, { "..", false }, { "0042_a/b", false },
                       { "", false } }) do
    t.eq(migrate.is_actor_name(c[1]), c[2], "is_actor_name " .. c[1])
  end
end)

local root = t.tmpdir() .. "/data"
local cfg = tdm.config { data_root = root, prefix = "p" }
local A = "0042_plan"
local dir = root .. "/actors/" .. A .. "/training_data"
assert(core.mkdirs(dir))
t.write(dir .. "/" .. A .. "_0.jpg", "zero")
t.write(dir .. "/" .. A .. "_1.png", "one")      -- named .png, URL says .jpg
t.write(dir .. "/" .. A .. "_3.jpg", "three local")
local objects = {
  [A .. "_0.jpg"] = { key = "p/" .. A .. "/" .. A .. "_0.jpg", size = 4,
                      etag = '"' .. core.md5("zero") .. '"', md5 = core.md5("zero"),
                      last_modified = 1.5e9 },
  [A .. "_2.jpg"] = { key = "p/" .. A .. "/" .. A .. "_2.jpg", size = 3,
                      etag = '"' .. core.md5("two") .. '"', md5 = core.md5("two"),
                      last_modified = 1.5e9 },
  [A .. "_3.jpg"] = { key = "p/" .. A .. "/" .. A .. "_3.jpg", size = 5,
                      etag = '"' .. core.md5("three") .. '"', md5 = core.md5("three"),
                      last_modified = 1.5e9 },
}
local legacy = migrate.legacy_path(cfg, A)
local text = '{"output": ["https://gen.example.com/a.jpg", "https://gen.example.com/b.jpg", '
  .. '"https://gen.example.com/c.jpg", "https://gen.example.com/d.jpg", '
  .. '"https://gen.example.com/e.jpg"]}'
t.write(legacy, text)

t.test("plan: facts, statuses, extensions settled, nothing written", function()
  local plan = assert(migrate.plan(cfg, A, { objects = objects }))
  local got = {}
  for _, e in ipairs(plan.entries) do got[e.filename] = e end
  t.eq(got[A .. "_0.jpg"].status, "synced", "_0")
  t.eq(got[A .. "_1.png"] and got[A .. "_1.png"].status, "local_only", "_1 settled to .png")
  t.eq(got[A .. "_2.jpg"].status, "s3_only", "_2")
  t.eq(got[A .. "_3.jpg"].status, "out_of_sync", "_3")
  t.eq(got[A .. "_4.jpg"].status, "missing", "_4")
  t.eq(got[A .. "_0.jpg"]["local"].md5, core.md5("zero"), "local md5")
  t.eq(got[A .. "_0.jpg"].action, "add", "action without a manifest")
  t.eq(core.stat(root .. "/actor_manifests"), nil, "no manifest dir made by plan")
  t.eq(t.read(legacy), text, "legacy untouched")
end)

t.test("a failed save keeps the legacy file", function()
  t.write(root .. "/actor_manifests", "a file where the directory should be")
  local plan = assert(migrate.plan(cfg, A, { objects = objects }))
  local res, err = migrate.apply(cfg, plan)
  t.eq(res, nil, "apply fails")
  t.ok(type(err) == "string" and #err > 0, "with a message")
  t.eq(t.read(legacy), text, "legacy kept byte-identical")
  os.remove(root .. "/actor_manifests")
end)

t.test("apply merges, saves, then deletes", function()
  local m = assert(tdm.Manifest.open(A, cfg))
  assert(m:add_image { filename = A .. "_9.jpg", ["local"] = false, s3 = false })
  assert(m:save())
  m:close()
  local plan = assert(migrate.plan(cfg, A, { objects = objects }))
  local res = assert(migrate.apply(cfg, plan))
  t.eq(res.added, 5, "added")
  t.eq(res.deleted, true, "deleted")
  t.eq(core.stat(legacy), nil, "legacy gone")
  local doc = assert(tdm.Manifest.load(res.manifest, cfg))
  local names = {}
  for _, e in ipairs(doc.training_data) do names[#names + 1] = e.filename .. "=" .. e.status end
  table.sort(names)
  t.eq(names, { A .. "_0.jpg=synced", A .. "_1.png=local_only", A .. "_2.jpg=s3_only",
                A .. "_3.jpg=out_of_sync", A .. "_4.jpg=missing", A .. "_9.jpg=missing" },
       "entries after the merge")
  -- again, with the manifest in place: every entry is an update
  t.write(legacy, text)
  plan = assert(migrate.plan(cfg, A, { objects = objects }))
  for _, e in ipairs(plan.entries) do t.eq(e.action, "update", e.filename) end
  res = assert(migrate.apply(cfg, plan, { keep_legacy = true }))
  t.eq(res.updated, 5, "updated")
  t.eq(t.read(legacy), text, "kept with keep_legacy")
end)

t.test("refused documents name the file", function()
  t.write(legacy, '{"output": ["0043_other_1.jpg"]}')
  local plan, err, code = migrate.plan(cfg, A, { objects = objects })
  t.eq(plan, nil, "refused")
  t.ok(err:find(legacy .. ": ", 1, true) and err:find("another actor", 1, true), err)
  t.eq(code, "EBADLEGACY", "code")
  t.ok(not pcall(migrate.plan, cfg, "../x"), "bad actor name raises")
end)

return t.done()
