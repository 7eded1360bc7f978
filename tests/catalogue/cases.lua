--- tests/catalogue/cases.lua -- the catalogue of bad input run by
-- tests/e2e/test_catalogue.lua. One table per case:
--   name      what is bad
--   manifest  tests/catalogue/manifests/NAME.json installed as 0042's
--   legacy    tests/catalogue/legacy/NAME.json installed as 0042_cat's
--             training_data/response.json
--   keys      tests/catalogue/keys/NAME.json: objects the proxy adds to
--             every listing ("PREFIX" = the run's key prefix)
--   proxy     fault proxy options (mode = "auth403", "hang", ...)
--   args      the tdm-lua command line ({D} data root, {P} key prefix)
--   lua       instead of args: a script run by tdm-lua ({URL} = proxy)
--   exit      expected exit code
--   expect    substrings of the one error line: the first finds the line,
--             the others must be on it (the file/object and the reason)
--   timeout   seconds after which the command is killed (a hang fails)
--   unchanged paths (relative to the data root) that must keep their
--             bytes; default: the whole data root
--   setup/teardown/check  functions(ctx ...) for what a table cannot say
local cases = {}

local function add(c) cases[#cases + 1] = c end

local SYNC = { "sync-manifests", "--data-root", "{D}", "--prefix", "{P}" }
local PULL_ALL = { "pull-all", "--data-root", "{D}", "--prefix", "{P}" }
local MIGRATE = { "migrate", "--data-root", "{D}", "--prefix", "{P}" }
local MANIFEST = { "actor_manifests/0042_manifest.json" }
local LEGACY = { "actors/0042_cat/training_data/response.json" }

-- ---- malformed and hostile manifests (sync-manifests: the bad actor is
-- reported, the others are synced, exit 1, the bad file untouched) -------
local manifest_cases = {
  { "empty", { "0042_manifest.json", "empty" } },
  { "not_json", { "0042_manifest.json", "line 1" } },
  { "truncated", { "0042_manifest.json", "line" } },
  { "top_array", { "0042_manifest.json", "object" } },
  { "training_data_object", { "0042_manifest.json", "training_data" } },
  { "entry_no_filename", { "0042_manifest.json", "filename" } },
  { "filename_dotdot", { "0042_manifest.json", "filename" } },
  { "filename_absolute", { "0042_manifest.json", "filename" } },
  { "filename_nul", { "0042_manifest.json", "NUL" } },
  { "filename_backslash", { "0042_manifest.json", "filename" } },
  { "local_path_dotdot", { "0042_manifest.json", ".." } },
  { "size_negative", { "0042_manifest.json", "size_bytes" } },
  { "size_string", { "0042_manifest.json", "size_bytes" } },
  { "status_unknown", { "0042_manifest.json", "great" } },
  { "duplicate_filename", { "0042_manifest.json", "duplicate" } },
  { "duplicate_key", { "0042_manifest.json", "character_id" } },
  { "deep_nesting", { "0042_manifest.json", "line" } },
  { "invalid_utf8", { "0042_manifest.json", "unable to decode byte 0xff" } },
  { "character_name_hostile", { "0042_manifest.json", "character_name: actor name" } },
  { "filename_not_image", { "0042_manifest.json", "filename" } },
  { "md5_wrong_type", { "0042_manifest.json", "md5_hash" } },
  { "filename_2kb", { "0042_manifest.json", "filename" } },
}
-- Found by fuzz_manifest: a NUL byte after a value made the loader's
-- error-position scan loop forever (a hang, not an error).
add { name = "manifest with a NUL byte (hang regression)",
      manifest = "nul_byte_hang", args = SYNC, exit = 1, timeout = 60,
      expect = { "0042_manifest.json", "unknown status 's6_only'" },
      unchanged = MANIFEST }
-- A manifest that is a symbolic link (to a file outside the data root) is
-- refused, not followed: nothing of the target is read or quoted.
add { name = "manifest that is a symbolic link",
      setup = function(ctx)
        local secret = ctx.work .. "/not-a-manifest.txt"
        local f = assert(io.open(secret, "w"))
        f:write("rootsecret:x:0:0\n"); f:close()
        local m = ctx.D .. "/actor_manifests/0042_manifest.json"
        assert(os.execute("rm -f " .. m .. " && ln -s " .. secret .. " " .. m))
      end,
      args = SYNC, exit = 1,
      expect = { "0042_manifest.json", "symbolic link" }, unchanged = MANIFEST,
      check = function(_, _, out, err)
        assert(not (out .. err):find("rootsecret", 1, true),
               "the link's target was read and quoted")
      end }
for _, m in ipairs(manifest_cases) do
  add { name = "manifest " .. m[1], manifest = m[1], args = SYNC, exit = 1,
        expect = m[2], unchanged = MANIFEST }
end

-- ---- legacy response.json (migrate: reported, left in place, no
-- manifest written for the actor) ------------------------------------------
local legacy_cases = {
  { "not_json", { "response.json", "JSON" } },
  { "no_refs", { "response.json", "no image references" } },
  { "dotdot", { "response.json", ".." } },
  { "other_bucket", { "response.json", "evil-bucket" } },
  { "other_actor", { "response.json", "0043_other" } },
  { "nul", { "response.json", "NUL" } },
  { "same_index", { "response.json", "index 0" } },
  { "too_deep", { "response.json", "too many nested" } },
}
for _, l in ipairs(legacy_cases) do
  add { name = "response.json " .. l[1], legacy = l[1], args = MIGRATE,
        exit = 1, expect = l[2], unchanged = LEGACY,
        check = function(ctx)
          local f = io.open(ctx.D .. "/actor_manifests/0042_manifest.json")
          if f then f:close(); error("a manifest was written for a refused response.json") end
        end }
end

-- ---- hostile keys in S3 listings (pull-all: each key is reported as
-- skipped with a warning naming it and the reason -- no path is ever built
-- from it -- and counted in keys_skipped; the run carries on and exits 0,
-- so one stray object does not keep a cron job red; audit reports it) ----
local key_cases = {
  { "dotdot", { "../../../evil.jpg", "skipped", "nested" } },
  { "absolute", { "//etc/passwd.jpg", "skipped" } },
  { "long", { "bbbbbbbb", "skipped" } },
  { "too_deep", { "sub/0042_cat_7.jpg", "skipped", "nested" } },
  { "actor_dotdot", { "../0042_cat_8.jpg", "skipped", "'..'" } },
}
local CAT_IMAGE = { "actors/0042_cat/training_data/0042_cat_0.jpg" }
for _, k in ipairs(key_cases) do
  add { name = "listing key " .. k[1], keys = k[1], args = PULL_ALL,
        exit = 0, expect = k[2], unchanged = CAT_IMAGE, stdout = true,
        check = function(ctx)
          -- nothing named after the key anywhere
          local p = io.popen("find " .. ctx.work .. " -name 'evil*' -o -name " ..
                             "'passwd*' -o -name 'bbbbbbbbbb*' -o -name sub")
          local found = p:read("a"); p:close()
          assert(found == "", "files made from a hostile key: " .. found)
        end }
end
-- A key XML 1.0 cannot carry (NUL): the listing itself is refused.
add { name = "listing key nul", keys = "nul", args = PULL_ALL, exit = 1,
      expect = { "listing s3://story-boards-assets/{P}/", "malformed XML" },
      unchanged = "all" }
-- A key outside the prefix in a listing for the prefix.
add { name = "listing key outside the prefix", keys = "outside",
      args = PULL_ALL, exit = 0, stdout = true,
      expect = { "elsewhere/0042_cat/0042_cat_6.jpg", "skipped" },
      unchanged = CAT_IMAGE,
      check = function(ctx)
        local f = io.open(ctx.D .. "/actors/0042_cat/training_data/0042_cat_6.jpg")
        if f then f:close(); error("a key outside the prefix was downloaded") end
      end }

-- ---- S3 answering badly (pull-all: one line naming the listing and the
-- reason, exit 1, nothing written) ------------------------------------------
-- n counts every request the run made: with no public_url_base set, the
-- first client asks the bucket's region once (a HEAD of the bucket)
-- before the listing.
local function no_retry(n)
  return function(_, _, _, _, stats)
    assert(stats.requests <= n, "an auth error was retried: " ..
           stats.requests .. " requests")
  end
end
add { name = "S3 error body is HTML (502)", proxy = { mode = "html502" },
      args = PULL_ALL, exit = 1, unchanged = "all",
      expect = { "s3://story-boards-assets/{P}/", "502" } }
add { name = "S3 error body is plain text (500)", proxy = { mode = "text500" },
      args = PULL_ALL, exit = 1, unchanged = "all",
      expect = { "s3://story-boards-assets/{P}/", "500" } }
-- Credentials S3 refuses are a configuration error, as none are (exit 2).
add { name = "wrong credentials (403 SignatureDoesNotMatch)",
      proxy = { mode = "auth403" }, args = PULL_ALL, exit = 2,
      unchanged = "all", check = no_retry(2),
      expect = { "s3://story-boards-assets/{P}/", "SignatureDoesNotMatch" } }
add { name = "wrong region (400 AuthorizationHeaderMalformed)",
      proxy = { mode = "region400" }, args = PULL_ALL, exit = 1,
      unchanged = "all", check = no_retry(2),
      expect = { "s3://story-boards-assets/{P}/", "AuthorizationHeaderMalformed" } }
add { name = "listing that is not XML", proxy = { mode = "garbage-list" },
      args = PULL_ALL, exit = 1, unchanged = "all",
      expect = { "s3://story-boards-assets/{P}/", "XML" } }
add { name = "bucket that does not exist", env = { TDM_BUCKET = "no-such-bucket-tdm" },
      args = PULL_ALL, exit = 2, unchanged = "all",
      expect = { "no-such-bucket-tdm", "NoSuchBucket" } }
add { name = "S3 endpoint refusing connections",
      env = { AWS_ENDPOINT_URL = "http://127.0.0.1:9" },
      args = PULL_ALL, exit = 1, unchanged = "all",
      expect = { "s3://story-boards-assets/{P}/", "127.0.0.1" } }
-- A server that accepts the request and never answers: bounded by the
-- stall timeout (short here), retried, then a clear error.
add { name = "S3 server that hangs", proxy = { mode = "hang" }, exit = 0,
      lua = [[
local s3 = require "tdm.s3"
local c = assert(s3.client({ endpoint = "{URL}" },
  { stall_timeout = 1, max_attempts = 2, backoff_base = 0.05 }))
local t0 = require("tdm.core").now()
local r, msg, code = c:get("{P}/1001_bulk_1/1001_bulk_1_0.jpg",
                           "{D}/actors/0042_cat/training_data/0042_cat_9.jpg")
local dt = require("tdm.core").now() - t0
assert(r == nil, "a hung server gave a result")
assert(dt < 15, "the hang was not bounded: " .. dt .. " s")
io.stderr:write(msg, " [", code, "]\n")
]], expect = { "1001_bulk_1_0.jpg", "ETIMEDOUT" } }

-- ---- actors named on the command line (a usage error: exit 2) ------------
add { name = "pull of an unknown actor", args = { "pull", "9999",
      "--data-root", "{D}", "--prefix", "{P}" }, exit = 2, unchanged = "all",
      expect = { "unknown actor 9999", "no manifest" } }
add { name = "pull of a hostile actor name", args = { "pull", "../../etc",
      "--data-root", "{D}", "--prefix", "{P}" }, exit = 2, unchanged = "all",
      expect = { "'../../etc' is not an actor" } }
add { name = "push of a hostile actor name", args = { "push",
      "0042_cat/../../x", "--data-root", "{D}", "--prefix", "{P}" },
      exit = 2, unchanged = "all",
      expect = { "'0042_cat/../../x'", "path separator" } }
add { name = "pull with hostile URLS_JSON", args = { "pull", "0042_cat",
      '["https://story-boards-assets.s3.us-west-1.amazonaws.com/{P}/0042_cat/../../../x.jpg"]',
      "--data-root", "{D}", "--prefix", "{P}" }, exit = 2, unchanged = "all",
      expect = { "../../../x.jpg", "refused" } }

-- ---- the local disk --------------------------------------------------------
-- Files that are not regular files under image names: a FIFO (hashing it
-- would block forever), a symlink out of the data root, a directory.
add { name = "FIFO, symlink and directory named like images",
      setup = function(ctx)
        local dir = ctx.D .. "/actors/0042_cat/training_data/"
        assert(os.execute("mkfifo " .. dir .. "0042_cat_1.jpg && ln -s /etc/passwd " ..
                          dir .. "0042_cat_2.jpg && mkdir " .. dir .. "0042_cat_3.jpg"))
      end,
      args = { "sync-manifests", "--data-root", "{D}", "--prefix", "{P}",
               "--actor", "0042_cat" },
      exit = 0, stdout = true, unchanged = { "actors/0042_cat/training_data/0042_cat_0.jpg" },
      expect = { "0042_cat_0.jpg" },
      check = function(ctx)
        local f = assert(io.open(ctx.D .. "/actor_manifests/0042_manifest.json"))
        local text = f:read("a"); f:close()
        for _, n in ipairs { "0042_cat_1.jpg", "0042_cat_2.jpg", "0042_cat_3.jpg" } do
          assert(not text:find(n, 1, true), n .. " (not a regular file) entered the manifest")
        end
      end }
-- Data roots on a small tmpfs (root only; skipped with a note elsewhere).
local function on_tmpfs(ctx, size, ro)
  local D = ctx.D
  if not os.execute("mv " .. D .. " " .. D .. ".orig && mkdir " .. D ..
                    " && mount -t tmpfs -o size=" .. size .. " tdm-cat " ..
                    D .. " 2>/dev/null") then
    os.execute("rmdir " .. D .. " 2>/dev/null; mv " .. D .. ".orig " .. D)
    return "cannot mount a tmpfs here (needs root)"
  end
  assert(os.execute("cp -a " .. D .. ".orig/. " .. D .. "/"))
  if ro then assert(os.execute("mount -o remount,ro " .. D)) end
end
local function off_tmpfs(ctx)
  os.execute("umount " .. ctx.D .. " 2>/dev/null && rm -rf " .. ctx.D ..
             " && mv " .. ctx.D .. ".orig " .. ctx.D)
end

-- A full disk: a 2 MB object does not fit in a 1 MB data root.
add { name = "full disk (1 MB tmpfs)",
      setup = function(ctx)
        local big = ctx.work .. "/big.jpg"
        local f = assert(io.open(big, "wb"))
        f:write(string.rep("0123456789abcdef", 2 * 65536)); f:close()
        local c = assert(require("tdm.s3").client())
        assert(c:put(big, ctx.P .. "/0042_cat/0042_cat_5.jpg"))
        return on_tmpfs(ctx, "1m")
      end,
      teardown = function(ctx)
        off_tmpfs(ctx)
        local c = require("tdm.s3").client()
        if c then c:delete(ctx.P .. "/0042_cat/0042_cat_5.jpg") end
      end,
      args = PULL_ALL, exit = 1, unchanged = CAT_IMAGE,
      expect = { "0042_cat_5.jpg", "No space left" },
      check = function(ctx)
        local dir = ctx.D .. "/actors/0042_cat/training_data/"
        local f = io.open(dir .. "0042_cat_5.jpg")
        if f then f:close(); error("a partial file under its final name") end
        local p = io.popen("ls -a " .. dir)
        local list = p:read("a"); p:close()
        assert(not list:find("%.tmp%."), "temp file left: " .. list)
        for _, m in ipairs { "0042", "1001" } do
          local mf = io.open(ctx.D .. "/actor_manifests/" .. m .. "_manifest.json")
          if mf then
            local ok = pcall(require("cjson").decode, mf:read("a")); mf:close()
            assert(ok, m .. "'s manifest does not parse after ENOSPC")
          end
        end
      end }

-- A read-only data root: nothing can be saved; said once per actor.
add { name = "read-only data root",
      setup = function(ctx) return on_tmpfs(ctx, "4m", true) end,
      teardown = off_tmpfs,
      args = SYNC, exit = 1, unchanged = "all",
      expect = { "actor_manifests", "Read-only file system" } }

-- A file that grows while it is hashed: what the manifest records must be
-- one consistent state (size and MD5 of the same bytes), never a mix.
add { name = "file growing while it is hashed",
      setup = function(ctx)
        local f = ctx.D .. "/actors/0042_cat/training_data/0042_cat_4.jpg"
        local h = assert(io.open(f, "wb"))
        h:write(string.rep("a", 4 * 1048576)); h:close()
        os.execute("( for i in $(seq 1 150); do head -c 65536 /dev/zero | " ..
                   "tr '\\0' a >> " .. f .. "; sleep 0.01; done ) " ..
                   ">/dev/null 2>&1 & echo $! > " .. ctx.work .. "/writer.pid")
      end,
      teardown = function(ctx)
        os.execute("kill $(cat " .. ctx.work .. "/writer.pid) 2>/dev/null")
      end,
      args = { "sync-manifests", "--data-root", "{D}", "--prefix", "{P}",
               "--actor", "0042_cat", "--verify" },
      exit = { 0, 1 }, stdout = true, unchanged = CAT_IMAGE,
      expect = { "0042_cat" },
      check = function(ctx)
        local text = io.open(ctx.D .. "/actor_manifests/0042_manifest.json"):read("a")
        local doc = require("cjson").decode(text)
        for _, e in ipairs(doc.training_data) do
          if e.filename == "0042_cat_4.jpg" and e.md5_hash ~= "" and e.size_bytes then
            local want = require("tdm").md5(string.rep("a", e.size_bytes))
            assert(e.md5_hash == want, "recorded size " .. e.size_bytes ..
                   " and md5 " .. e.md5_hash .. " are not of the same bytes")
          end
        end
      end }

-- Files that vanish between the directory scan and the hash.
add { name = "files vanishing between scan and hash",
      setup = function(ctx)
        local dir = ctx.D .. "/actors/0042_cat/training_data/"
        os.execute("for i in $(seq 10 59); do head -c 300000 /dev/zero > " .. dir ..
                   "0042_cat_$i.jpg; done")
        os.execute("( sleep 0.05; for i in $(seq 10 59); do rm -f " .. dir ..
                   "0042_cat_$i.jpg; sleep 0.005; done ) >/dev/null 2>&1 & echo $! > " ..
                   ctx.work .. "/rm.pid")
      end,
      teardown = function(ctx)
        os.execute("kill $(cat " .. ctx.work .. "/rm.pid) 2>/dev/null")
      end,
      args = { "sync-manifests", "--data-root", "{D}", "--prefix", "{P}",
               "--actor", "0042_cat", "--verify", "--jobs", "1" },
      exit = { 0, 1 }, stdout = true, unchanged = CAT_IMAGE,
      expect = { "0042_cat" },
      check = function(ctx)
        local text = io.open(ctx.D .. "/actor_manifests/0042_manifest.json"):read("a")
        local doc = require("cjson").decode(text)
        local zero = require("tdm").md5(string.rep("\0", 300000))
        for _, e in ipairs(doc.training_data) do
          if e.filename ~= "0042_cat_0.jpg" and e.status ~= "missing" then
            assert(e.md5_hash == zero, e.filename .. ": md5 of a vanished file " ..
                   "recorded as " .. e.md5_hash)
          end
        end
      end }

return cases
