-- test_manifest_truth.lua -- the manifest tells the truth about files
-- other writers touched, against the real s3rver (tests/run.sh):
-- a same-size rewrite with its mtime put back (cp new f; touch -r old f)
-- is noticed without --verify; push holds back empty files, bytes that
-- are not JPEG/PNG/WebP and files named for another actor, saying so; a
-- training_data/ that is a symlink out of the data root is refused, and
-- nothing lands outside the root; a manifest naming another actor than
-- its file is refused for writes, unchanged, both ids named.
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local w = e2e.world { tag = "t/truth" }
local q = t.shq
local JPEG = "\255\216\255\224"

local function status_of(name, fn)
  local doc = assert(tdm.Manifest.load(w:mpath(name), w.cfg))
  for _, e in ipairs(doc.training_data) do
    if e.filename == fn then return e.status, e.md5_hash end
  end
end

local function exists_key(key)
  local h = w.client:head(key)
  return h ~= nil
end

t.test("cp new f; touch -r old f: the new content is noticed", function()
  local A = "0050_truth"
  assert(core.mkdirs(w:tdir(A)))
  local f0 = w:lpath(A, A .. "_0.jpg")
  t.write(f0, JPEG .. string.rep("a", 4000))
  t.write(w:lpath(A, A .. "_1.jpg"), JPEG .. string.rep("b", 4000))
  assert(os.execute("touch -d 2024-01-01 " .. q(w:tdir(A)) .. "/*.jpg"))
  local rc, out, err = w:tdm("push " .. A)
  t.eq(rc, 0, "push: " .. out .. err)
  t.eq(status_of(A, A .. "_0.jpg"), "synced", "pushed")
  rc = w:tdm("sync-manifests")     -- the hash cache now vouches for both
  t.eq(rc, 0, "sync-manifests")
  -- another tool rewrites the file, same size, and puts the mtime back
  assert(os.execute("cp -p " .. q(f0) .. " " .. q(w.tmp .. "/ref")))
  t.write(w.tmp .. "/new", JPEG .. string.rep("c", 4000))
  assert(os.execute("cp " .. q(w.tmp .. "/new") .. " " .. q(f0) ..
                    " && touch -r " .. q(w.tmp .. "/ref") .. " " .. q(f0)))
  rc, out, err = w:tdm("sync-manifests")
  t.eq(rc, 0, "sync-manifests after the rewrite: " .. err)
  local st, md5 = status_of(A, A .. "_0.jpg")
  t.eq(st, "out_of_sync", "local and S3 now differ")
  t.eq(md5, tdm.md5(JPEG .. string.rep("c", 4000)), "md5_hash recalculated")
  t.eq(status_of(A, A .. "_1.jpg"), "synced", "the other file untouched")
end)

t.test("push holds back empty, non-image and foreign files, saying so", function()
  local A = "0060_held"
  assert(core.mkdirs(w:tdir(A)))
  t.write(w:lpath(A, A .. "_0.jpg"), JPEG .. "a real one")
  t.write(w:lpath(A, A .. "_1.jpg"), "")
  t.write(w:lpath(A, A .. "_2.jpg"), "<html>not an image</html>")
  t.write(w:lpath(A, "0061_someone_0.jpg"), JPEG .. "0061's")
  local rc, out, err = w:tdm("push --json " .. A)
  t.ok(exists_key(w:key(A, A .. "_0.jpg")), "the real image is uploaded")
  for _, fn in ipairs({ A .. "_1.jpg", A .. "_2.jpg", "0061_someone_0.jpg" }) do
    t.ok(not exists_key(w:key(A, fn)), fn .. " not uploaded")
    t.ok(out:find(fn, 1, true) and out:find("not uploaded", 1, true),
         fn .. " reported: " .. out .. err)
    t.eq(status_of(A, fn), "local_only", fn .. " stays local_only")
  end
  t.ok(out:find("empty", 1, true) and out:find("another actor", 1, true),
       "reasons given: " .. out)
  t.ok(rc ~= nil, "exit code " .. tostring(rc))
end)

t.test("training_data a symlink out of the data root: refused", function()
  local A = "0070_linked"
  local outside = w.tmp .. "/outside"
  assert(core.mkdirs(outside))
  assert(core.mkdirs(w.D .. "/actors/" .. A))
  assert(os.execute("ln -s " .. q(outside) .. " " .. q(w:tdir(A))))
  -- an object for it in S3: a pull must not land it outside the root
  t.write(w.tmp .. "/obj", JPEG .. "from S3")
  assert(w.client:put(w.tmp .. "/obj", w:key(A, A .. "_0.jpg")))
  local rc, out, err = w:tdm("pull " .. A)
  t.ok(rc ~= 0, "pull refused: exit " .. tostring(rc))
  t.ok((out .. err):find("symlink", 1, true), "message says symlink: " .. out .. err)
  rc, out, err = w:tdm("pull-all --json")
  t.ok((out .. err):find("symlink", 1, true), "pull-all reports it: " .. out .. err)
  t.eq(e2e.files_in(outside), {}, "nothing written outside the data root")
  t.eq(core.stat(w:mpath(A)), nil, "no manifest written for it")
end)

t.test("a manifest naming another actor: writes refused, both ids named", function()
  local A = "0080_mine"
  assert(core.mkdirs(w:tdir(A)))
  t.write(w:lpath(A, A .. "_0.jpg"), JPEG .. "0080")
  local text = '{"character_id": "0081", "character_name": "0081_theirs", '
               .. '"training_data": []}'
  t.write(w:mpath(A), text)
  local rc, out, err = w:tdm("push " .. A)
  t.ok(rc ~= 0, "push refused: exit " .. tostring(rc))
  local msg = out .. err
  t.ok(msg:find("0080", 1, true) and msg:find("0081", 1, true),
       "both ids named: " .. msg)
  t.eq(t.read(w:mpath(A)), text, "manifest unchanged")
  t.ok(not exists_key(w:key(A, A .. "_0.jpg")), "nothing uploaded")
  local api = tdm.API.new(w.cfg)
  local res, amsg, acode = api:get_training_data(80)
  t.eq({ res, acode }, { nil, "BADMANIFEST" }, "the API does not answer for 0081 as 0080: "
       .. tostring(amsg))
end)

t.test("audit --fix repairs an identity only when unambiguous", function()
  local function make(name, text)
    assert(core.mkdirs(w:tdir(name)))
    t.write(w:lpath(name, name .. "_0.jpg"), JPEG .. name)
    t.write(w:mpath(name), text)
  end
  -- the name is this actor's, the id another: the id follows the name
  make("0090_fixable", '{"character_id": "0091", "character_name": '
       .. '"0090_fixable", "training_data": []}')
  -- both name another actor: nothing can be decided
  local both = '{"character_id": "0093", "character_name": "0093_x", '
               .. '"training_data": []}'
  make("0092_ambiguous", both)
  local rc, out = w:tdm("audit --fix --json --actor 90 --actor 92")
  t.eq(rc, 1, "findings reported")
  t.ok(out:find('"fixed":true', 1, true), "one repaired: " .. out)
  local doc = assert(tdm.Manifest.load(w:mpath("0090_fixable"), w.cfg))
  t.eq({ doc.character_id, doc.character_name }, { "0090", "0090_fixable" },
       "0090's identity repaired")
  t.eq(t.read(w:mpath("0092_ambiguous")), both, "the ambiguous one untouched")
  rc, out = w:tdm("audit --json --actor 92")
  t.ok(out:find("bad_manifest", 1, true), "still reported: " .. out)
end)

w:cleanup()
t.done()
