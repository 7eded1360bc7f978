-- test_lua_api_docs.lua -- every worked script in docs/lua-api.md (a
-- ```lua block after "<!-- example: NAME -->") runs on the example data
-- the page describes, under tdm-lua and under a stock lua5.4, and prints
-- exactly the ```text block shown after it. Also tdm.actors itself.
local t = require "t"
local tdm = require "tdm"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "t/luadocs" }
local cfg, s3 = w.cfg, w.client

local function put(name, fn, bytes)
  local src = w.tmp .. "/upload.tmp"
  t.write(src, bytes)
  assert(s3:put(src, w:key(name, fn)))
  os.remove(src)
end
local function localfile(name, fn, bytes)
  assert(tdm.core.mkdirs(w:tdir(name)))
  t.write(w:lpath(name, fn), bytes)
end

-- The example data of the page.
put("0001_ann", "0001_ann_0.jpg", "ann image 0")
localfile("0001_ann", "0001_ann_0.jpg", "ann image 0")
put("0001_ann", "0001_ann_1.jpg", "ann image 1 v1")
localfile("0001_ann", "0001_ann_1.jpg", "ann image 1, v2 local work")
localfile("0002_bob", "0002_bob_0.jpg", "bob image 0 (local)")
put("0003_cy", "0003_cy_0.jpg", "cy image 0 in S3!")
local rc, out, err = w:tdm("sync-manifests -q --actor 1 --actor 2")
assert(rc == 0, "sync-manifests: " .. tostring(out) .. tostring(err))

t.test("tdm.actors: folders and manifests, each once, in name order", function()
  assert(tdm.core.mkdirs(w.D .. "/actors/not_an_actor"))
  local got = {}
  for a in assert(tdm.actors(cfg)) do
    got[#got + 1] = string.format("%s %s %s %s %s", a.name, a.id,
      a.manifest_path == w:mpath(a.name), tostring(a.has_folder), tostring(a.has_manifest))
  end
  t.eq(got, { "0001_ann 0001 true true true", "0002_bob 0002 true true true" }, "actors")
  local none = {}
  for a in assert(tdm.actors { data_root = w.tmp .. "/nowhere" }) do none[#none + 1] = a end
  t.eq(#none, 0, "a data root that does not exist has no actors")
end)

-- The examples of the page: name, script, expected output.
local page = t.read((os.getenv("TDM_TEST_ROOT") or ".") .. "/docs/lua-api.md")
local examples = {}
for name, code, want in page:gmatch("<!%-%- example: (%S+) %-%->\n```lua\n(.-\n)```\n.-```text\n(.-\n)```") do
  examples[#examples + 1] = { name = name, code = code, want = want }
end

t.test("docs/lua-api.md has its three worked scripts", function()
  t.eq(#examples, 3, "examples found")
end)

local env = string.format("cd %s && TDM_DATA_ROOT=%s TDM_PREFIX=%s ", t.shq(w.tmp),
                          t.shq(w.D), t.shq(w.prefix))
for _, ex in ipairs(examples) do
  local path = w.tmp .. "/" .. ex.name
  t.write(path, ex.code)
  for _, interp in ipairs({ "tdm-lua", "lua5.4" }) do
    t.test(ex.name .. " under " .. interp .. " prints what the page shows", function()
      local p = io.popen(env .. interp .. " " .. t.shq(path) .. " 2>&1")
      local got = p:read("a")
      local ok = p:close()
      t.ok(ok, ex.name .. " exits 0 (output: " .. got .. ")")
      t.eq(got, ex.want, ex.name .. " output")
    end)
  end
end

w:cleanup()
return t.done()
