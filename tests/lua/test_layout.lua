-- test_layout.lua -- tdm.core.layout, the one home of the seed's rules,
-- as every Lua layer sees it: one actor id per number whichever way it is
-- spelled, and the manifest, the API, the listing and the sync all asking
-- it (00042_x, 42 and "0042" meet at one manifest).
local t = require "t"
local tdm = require "tdm"
local layout = tdm.core.layout

t.test("ids: names, numbers and digit strings give one id", function()
  local cases = {
    { "0042_european_30_male", "0042" }, { "42_x", "0042" },
    { "00042_x", "0042" }, { "12345_x", "12345" }, { "0_x", "0000" },
  }
  for _, c in ipairs(cases) do t.eq(layout.actor_id(c[1]), c[2], c[1]) end
  for _, x in ipairs({ 42, "42", "042", "0042", "00042" }) do
    t.eq(layout.id(x), "0042", "id of " .. tostring(x))
  end
  local id, msg, code = layout.actor_id("x_42")
  t.eq({ id, code }, { nil, "ENOACTOR" }, "x_42 refused")
  t.ok(msg:find("x_42", 1, true), "message names the name: " .. tostring(msg))
  t.eq(select(3, layout.id("4a")), "ENOACTOR", "id of '4a'")
  t.checkerr(function() layout.id(4.5) end, "integer")
end)

t.test("paths, keys and URLs", function()
  t.eq(layout.manifest_path("/r", "0042"),
       "/r/actor_manifests/0042_manifest.json", "manifest path")
  t.eq(layout.file_path("/r", "0042_x", "0042_x_1.jpg"),
       "/r/actors/0042_x/training_data/0042_x_1.jpg", "file path")
  t.eq(layout.local_path("0042_x", "0042_x_1.jpg"),
       "data/actors/0042_x/training_data/0042_x_1.jpg", "stored local_path")
  t.eq(select(3, layout.file_path("/r", "0042_x", "../a.jpg")), "EBADNAME",
       "file path with ..")
  t.eq(layout.key("/p/q/", "0042_x", "a.jpg"), "p/q/0042_x/a.jpg", "key")
  t.eq({ layout.split_key("p/q", "p/q/0042_x/a.jpg") }, { "0042_x", "a.jpg" },
       "split_key")
  t.eq({ layout.split_key("p/q", "p/q/0042_x/notes.txt") },
       { "0042_x", nil, "not an image" }, "split_key of a non-image")
  local a, f, why = layout.split_key("p/q", "p/q/README.txt")
  t.eq({ a, f, why }, { nil, nil, "not inside an actor folder" },
       "split_key outside any actor folder")
  t.eq(layout.url_base("b", "eu-west-2"), "https://b.s3.eu-west-2.amazonaws.com",
       "url base")
  t.eq(layout.public_url("https://b.s3.r.amazonaws.com", "p/q", "0042_x",
                         "a b.jpg"),
       "https://b.s3.r.amazonaws.com/p/q/0042_x/a%20b.jpg", "public url")
end)

t.test("images, order, names", function()
  t.eq(layout.image_index("0042_x_17.jpg"), 17, "index")
  t.eq(layout.image_index("photo.jpg"), nil, "no index")
  t.eq(layout.image_name("0042_x", 3, "png"), "0042_x_3.png", "image name")
  t.ok(layout.is_image_name("A.JPEG") and not layout.is_image_name(".a.jpg"),
       "image names")
  t.ok(layout.foreign_file("0043_y_1.jpg", "0042"), "0043's file is foreign")
  t.ok(not layout.foreign_file("0042_x_1.jpg", "0042"), "own file")
  local names = { "b.jpg", "x_10.jpg", "x_2.jpg", "a.jpg", "x_0.jpg" }
  table.sort(names, layout.entry_before)
  t.eq(names, { "x_0.jpg", "x_2.jpg", "x_10.jpg", "a.jpg", "b.jpg" },
       "entry order")
  t.eq(layout.statuses, { "synced", "local_only", "s3_only", "out_of_sync",
                          "missing" }, "statuses")
  t.eq(layout.statistics_keys[1], "training_images_count", "first stat key")
  t.eq(layout.stat_key.missing, "training_missing_count", "missing key")
  t.ok(tdm.core.actor_id == layout.actor_id, "core.actor_id is the layout's")
end)

t.test("00042_x, 42 and '0042' meet at one manifest", function()
  local root = t.tmpdir() .. "/data"
  local name = "00042_x"
  assert(tdm.core.mkdirs(root .. "/actors/" .. name .. "/training_data"))
  local cfg = { data_root = root }
  local m = assert(tdm.Manifest.open(name, cfg))
  t.eq(m:actor_id(), "0042", "the core's id")
  assert(m:save())
  local path = m:path()
  m:close()
  t.eq(path, root .. "/actor_manifests/0042_manifest.json", "manifest file")
  for _, x in ipairs({ 42, "42", "0042", "00042" }) do
    local p = assert(tdm.Manifest.paths(x, cfg))
    t.eq({ p.manifest, p.name }, { path, name }, "paths of " .. tostring(x))
  end
  local sync = tdm.Sync.new(cfg)
  t.eq(sync:resolve_actor(42), name, "Sync resolves 42")
  local api = tdm.API.new(cfg)
  local res = assert(api:get_training_data(42))
  t.eq(res.actor_name, name, "API's actor 42")
end)

t.done()
