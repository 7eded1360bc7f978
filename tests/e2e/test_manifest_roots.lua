-- test_manifest_roots.lua -- one data directory reached through several
-- spellings of its root (absolute, relative, through a symlink, with a
-- "..") is one world: no manifest is refused or rewritten for the
-- spelling, local_path is the seed's relative form, and the absolute forms
-- an older tdm wrote are read and rewritten once. Against the real s3rver
-- (tests/run.sh).
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "t/roots" }
local q = t.shq
local A = "0042_european_30_male"
local JPEG = "\255\216\255\224" .. string.rep("j", 200)

assert(core.mkdirs(w:tdir(A)))
t.write(w:lpath(A, A .. "_0.jpg"), JPEG .. "0")
t.write(w:lpath(A, A .. "_1.jpg"), JPEG .. "1")
-- files older than the racy window, so that a run writes only on change
assert(os.execute("touch -d 2024-01-01 " .. q(w:tdir(A)) .. "/*.jpg"))
assert(os.execute("ln -s " .. q(w.D) .. " " .. q(w.tmp .. "/link")))
assert(core.mkdirs(w.tmp .. "/sub"))

-- Spellings of the same root, each run from w.tmp.
local ROOTS = { w.D, "data", "./data", w.tmp .. "/link",
                w.tmp .. "/sub/../data", "link/" }

-- tdm-lua ARGS with the root spelled `root`, run in w.tmp.
local function run(args, root)
  local p = io.popen(string.format("cd %s && tdm-lua %s --data-root %s "
                                   .. "--prefix %s 2>&1", q(w.tmp), args,
                                   q(root), q(w.prefix)))
  local out = p:read("a")
  local _, _, rc = p:close()
  return rc, out
end

local function manifest() return t.read(w:mpath(A)) end

t.test("push with an absolute root writes the seed's relative local_path", function()
  local rc, out = run("push " .. A, w.D)
  t.eq(rc, 0, "push exit: " .. out)
  local doc = assert(tdm.Manifest.load(w:mpath(A), w.cfg))
  for i, e in ipairs(doc.training_data) do
    t.eq(e.local_path, "data/actors/" .. A .. "/training_data/" .. A .. "_"
         .. (i - 1) .. ".jpg", "local_path " .. i)
    t.eq(e.status, "synced", "status " .. i)
  end
end)

t.test("every spelling of the root: audit clean, sync-manifests writes nothing", function()
  local before = manifest()
  for _, root in ipairs(ROOTS) do
    local rc, out = run("audit", root)
    t.eq(rc, 0, "audit with root '" .. root .. "': " .. out)
    rc, out = run("sync-manifests", root)
    t.eq(rc, 0, "sync-manifests with root '" .. root .. "': " .. out)
    t.eq(manifest(), before, "manifest bytes after sync-manifests with '"
         .. root .. "'")
  end
end)

t.test("absolute local_paths of an older tdm: read, rewritten once", function()
  local good = manifest()
  -- what tdm wrote before under TDM_DATA_ROOT=/srv/tdm/data
  local old = good:gsub('"local_path": "data/', '"local_path": "/srv/tdm/data/')
  t.ok(old ~= good, "the old form differs")
  t.write(w:mpath(A), old)
  for _, root in ipairs(ROOTS) do
    local rc, out = run("audit", root)
    t.eq(rc, 0, "audit of the old form with root '" .. root .. "': " .. out)
  end
  t.eq(manifest(), old, "audit without --fix wrote nothing")
  local rc, out = run("sync-manifests", "data")
  t.eq(rc, 0, "sync-manifests: " .. out)
  local doc = assert(tdm.Manifest.load(w:mpath(A), w.cfg))
  for _, e in ipairs(doc.training_data) do
    t.ok(e.local_path:sub(1, 5) == "data/", "rewritten: " .. e.local_path)
  end
  local once = manifest()
  rc, out = run("sync-manifests", w.tmp .. "/link")
  t.eq(rc, 0, "second sync-manifests: " .. out)
  t.eq(manifest(), once, "second run wrote nothing")
end)

t.test("a local_path outside any actor folder is still refused", function()
  local good = manifest()
  t.write(w:mpath(A), (good:gsub('"local_path": "data/actors/[^"]*"',
                                 '"local_path": "/etc/passwd"', 1)))
  local rc, out = run("audit --json", "data")
  t.eq(rc, 1, "audit exit")
  t.ok(out:find("bad_manifest", 1, true) and out:find("passwd", 1, true),
       "bad_manifest naming the path: " .. out)
  t.write(w:mpath(A), good)
end)

w:cleanup()
t.done()
