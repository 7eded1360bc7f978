-- test_s3_ops.lua -- tdm.s3 against a real s3rver (started by tests/run.sh:
-- AWS_ENDPOINT_URL, bucket story-boards-assets, TDM_S3_DIR its storage).
-- Round trips, an awkward key, listing pagination over > 1000 keys,
-- delete_many, 200 concurrent GETs, an object corrupted behind the
-- server's back, callback errors, clean failure messages.
local t = require "t"
local tdm = require "tdm"
local core = tdm.core

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local PREFIX = e2e.prefix("tdmtest-s3") .. "/"
local dir = t.tmpdir()
local c = assert(tdm.s3.client())

local files_in = e2e.files_in

local function write(path, data) t.write(path, data) return path end

t.test("put, head, get, delete round trip", function()
  local src = write(dir .. "/src.jpg", "image bytes\0\1\2")
  local key = PREFIX .. "rt/0042_a_1.jpg"
  local r, err, code = c:put(src, key, { content_type = "image/jpeg" })
  t.ok(r, "put: " .. tostring(err) .. " " .. tostring(code))
  t.eq(r.md5, tdm.md5("image bytes\0\1\2"), "put md5")
  t.eq(r.etag, r.md5, "single-part ETag is the MD5")
  t.eq(r.bytes, 14, "put bytes")
  t.eq(r.attempts, 1, "put attempts")
  local h = assert(c:head(key))
  t.eq(h.size, 14, "head size")
  t.eq(h.md5, r.md5, "head md5")
  t.eq(h.metadata.md5, r.md5, "x-amz-meta-md5 sent with the PUT")
  t.ok(h.last_modified > 1.6e9, "head last_modified is an epoch time")
  local dst = dir .. "/out/nested/0042_a_1.jpg"
  local g = assert(c:get(key, dst))
  t.eq(g.md5, r.md5, "get md5")
  t.eq(g.bytes, 14, "get bytes")
  t.eq(t.read(dst), "image bytes\0\1\2", "downloaded bytes")
  t.eq(#files_in(dir .. "/out"), 1, "no temp file left beside the target")
  t.eq(c:delete(key), true, "delete")
  local none, msg, code2 = c:head(key)
  t.eq(none, nil, "head after delete")
  t.eq(code2, "S3_NoSuchKey", "HEAD 404 code")
  t.ok(msg:find(key, 1, true), "message names the key: " .. msg)
end)

t.test("a key with every awkward character", function()
  local key = PREFIX .. "awk/a b \u{e9}\u{4e2d}+=~!*'()&$@,;:.jpg"
  local src = write(dir .. "/awk.jpg", "awkward")
  assert(c:put(src, key))
  local h = assert(c:head(key))
  t.eq(h.md5, tdm.md5("awkward"), "head of awkward key")
  local got
  for obj, err in c:list(PREFIX .. "awk/") do
    t.ok(obj, "list: " .. tostring(err))
    got = obj.key
  end
  t.eq(got, key, "listed key comes back byte-identical")
  local dst = dir .. "/awk-out.jpg"
  assert(c:get(key, dst))
  t.eq(t.read(dst), "awkward", "get of awkward key")
  local url = c:presign("GET", key, 300)
  t.ok(url:find("X-Amz-Signature=", 1, true), "presigned URL signed")
  local p = io.popen("curl -s -g '" .. url:gsub("'", "'\\''") .. "'")
  local body = p:read("a")
  p:close()
  t.eq(body, "awkward", "presigned GET URL fetches the object (curl)")
  assert(c:delete(key))
end)

local N = 1010
local keys = {}

t.test("1010 PUTs through transfer, listing pages, start_after", function()
  local jobs = {}
  for i = 1, N do
    local name = string.format("%s/many/k%05d.jpg", PREFIX:sub(1, -2), i)
    keys[i] = name
    local src = dir .. string.format("/many-%05d", i)
    write(src, "object " .. i)
    jobs[i] = { op = "put", path = src, key = name }
  end
  local results, interrupted = c:transfer(jobs, { jobs = 32 })
  t.eq(interrupted, false, "not interrupted")
  local ok = 0
  for i = 1, N do if results[i].ok then ok = ok + 1 end end
  t.eq(ok, N, "all PUTs ok")
  t.eq(results[7].md5, tdm.md5("object 7"), "result md5 in job order")

  -- default pages (1000) then the rest
  local seen, last = 0, ""
  for obj, err in c:list(PREFIX .. "many/") do
    t.ok(obj, "list: " .. tostring(err))
    seen = seen + 1
    t.ok(obj.key > last, "keys come sorted")
    last = obj.key
    if seen == 1 then
      t.eq(obj.md5, tdm.md5("object 1"), "listed md5")
      t.eq(obj.size, #"object 1", "listed size")
    end
  end
  t.eq(seen, N, "all keys listed across pages of 1000")
  -- small pages
  local small = 0
  for obj, err in c:list(PREFIX .. "many/k001", { max_keys = 7 }) do
    t.ok(obj, "list small: " .. tostring(err))
    small = small + 1
  end
  t.eq(small, 100, "k00100..k00199: 100 keys in pages of 7")
  local after = {}
  for obj in c:list(PREFIX .. "many/", { start_after = keys[N - 3],
                                          max_keys = 2 }) do
    after[#after + 1] = obj.key
  end
  t.eq(after, { keys[N - 2], keys[N - 1], keys[N] }, "start_after")
end)

t.test("200 concurrent GETs via transfer, callbacks", function()
  local jobs, completed, progress = {}, {}, nil
  for i = 1, 200 do
    jobs[i] = { op = "get", key = keys[i],
                path = string.format("%s/get200/f%03d.jpg", dir, i) }
  end
  local results, interrupted = c:transfer(jobs, {
    jobs = 200,
    on_complete = function(i, r)
      t.ok(r.ok, "on_complete result ok")
      completed[#completed + 1] = i
    end,
    on_progress = function(done, total, bytes)
      progress = { done, total, bytes }
    end,
  })
  t.eq(interrupted, false, "not interrupted")
  local bad = {}
  for i = 1, 200 do
    local r = results[i]
    if not r.ok or r.md5 ~= tdm.md5("object " .. i) or
       t.read(jobs[i].path) ~= "object " .. i then
      bad[#bad + 1] = i .. ":" .. tostring(r.error)
    end
  end
  t.eq(bad, {}, "every GET ok and byte-identical")
  t.eq(#completed, 200, "on_complete called once per job")
  t.eq(progress and progress[1], 200, "last progress: files done")
  t.eq(progress and progress[2], 200, "progress: total")
  local total = 0
  for i = 1, 200 do total = total + #("object " .. i) end
  t.eq(progress and progress[3], total, "progress: bytes")
  t.eq(#files_in(dir .. "/get200"), 200, "exactly the 200 files, no temps")
end)

t.test("connections are reused across requests and calls", function()
  local before = c:stats()
  local jobs = {}
  for i = 1, 100 do
    jobs[i] = { op = "get", key = keys[i],
                path = string.format("%s/reuse/f%03d.jpg", dir, i) }
  end
  local results = c:transfer(jobs, { jobs = 4 })
  for i = 1, 100 do t.ok(results[i].ok, "get " .. i) end
  local mid = c:stats()
  t.eq(mid.requests - before.requests, 100, "100 requests counted")
  t.ok(mid.connections - before.connections <= 4,
       "at most 4 new connections for 100 GETs at 4 at a time, got " ..
       (mid.connections - before.connections))
  assert(c:head(keys[1]))
  assert(c:head(keys[2]))
  local after = c:stats()
  t.eq(after.connections, mid.connections,
       "later single calls reuse the pooled connections")
end)

t.test("an error in on_complete is raised after the batch", function()
  local jobs = {}
  for i = 1, 20 do
    jobs[i] = { op = "get", key = keys[i],
                path = string.format("%s/cberr/f%02d.jpg", dir, i) }
  end
  local calls = 0
  local ok, err = pcall(c.transfer, c, jobs, {
    on_complete = function()
      calls = calls + 1
      error("boom from callback")
    end })
  t.eq(ok, false, "transfer raised")
  t.ok(tostring(err):find("boom from callback", 1, true),
       "the callback's error: " .. tostring(err))
  t.eq(calls, 1, "callbacks stop after the first error")
  t.eq(#files_in(dir .. "/cberr"), 20, "the batch still finished cleanly")
  -- the client is usable afterwards
  t.ok(c:head(keys[1]), "client usable after a callback error")
  -- closing the client from its own callback is refused, not a crash
  local ok2, err2 = pcall(c.transfer, c, { jobs[1] }, {
    on_complete = function() c:close() end })
  t.eq(ok2, false, "close inside a callback raises")
  t.ok(tostring(err2):find("cannot close", 1, true), tostring(err2))
  t.ok(c:head(keys[1]), "client still open and usable")
end)

t.test("delete_many over two batches", function()
  local r = assert(c:delete_many(keys))
  t.eq(#r.deleted, N, "all deleted")
  t.eq(#r.errors, 0, "no errors")
  local left = 0
  for obj in c:list(PREFIX .. "many/") do if obj then left = left + 1 end end
  t.eq(left, 0, "nothing left under the prefix")
  -- keys that must be XML-escaped in the DeleteObjects body
  local odd = { PREFIX .. "odd/a&b<c>d.jpg", PREFIX .. "odd/q\"u'o te.jpg",
                PREFIX .. "odd/\u{e9}+=~!*()$.jpg" }
  local src = write(dir .. "/odd.jpg", "odd")
  for _, k in ipairs(odd) do assert(c:put(src, k)) end
  local r2 = assert(c:delete_many(odd))
  table.sort(r2.deleted)
  local want = { table.unpack(odd) }
  table.sort(want)
  t.eq(r2.deleted, want, "awkward keys deleted by DeleteObjects")
  for _, k in ipairs(odd) do
    t.eq((c:head(k)), nil, "gone: " .. k)
  end
  local empty = assert(c:delete_many({}))
  t.eq(#empty.deleted, 0, "empty delete_many")
end)

-- (s3rver only: it keeps objects as plain files in TDM_S3_DIR)
if os.getenv("TDM_S3_DIR") then
t.test("an object changed behind the server's back is refused", function()
  local key = PREFIX .. "corrupt/0042_x_1.jpg"
  local src = write(dir .. "/good.jpg", "the good bytes")
  assert(c:put(src, key))
  local stored = os.getenv("TDM_S3_DIR") .. "/story-boards-assets/" .. key ..
                 "._S3rver_object"
  t.eq(t.read(stored), "the good bytes", "s3rver's on-disk object found")
  t.write(stored, "the evil bytes")            -- same length
  local target = dir .. "/corrupt/0042_x_1.jpg"
  local before = files_in(dir .. "/corrupt")
  local r, msg, code = c:get(key, target)
  t.eq(r, nil, "GET refused")
  t.eq(code, "S3_BadDigest", "code")
  t.ok(msg:find("MD5 mismatch", 1, true) and msg:find(key, 1, true),
       "message says so and names the key: " .. tostring(msg))
  t.eq(files_in(dir .. "/corrupt"), before, "no file left, not even a temp")
  -- an existing good copy is not replaced by corrupt data
  write(target, "the good bytes")
  r = c:get(key, target)
  t.eq(r, nil, "refused again")
  t.eq(t.read(target), "the good bytes", "existing file untouched")
  assert(c:delete(key))
end)
end

t.test("clean one-line failures with advice", function()
  local nb = assert(tdm.s3.client({ bucket = "no-such-bucket-tdm" }))
  local r, msg, code = nb:head("x")
  t.eq(r, nil, "head on a missing bucket fails")
  local r2, msg2, code2 = nb:get("x", dir .. "/nb.jpg")
  t.eq(r2, nil, "get on a missing bucket fails")
  t.eq(code2, "S3_NoSuchBucket", "code from the XML body")
  t.ok(msg2:find("TDM_BUCKET", 1, true), "advice: " .. msg2)
  t.ok(not msg2:find("\n"), "one line")
  t.ok(code == "S3_NoSuchBucket" or code == "S3_NoSuchKey",
       "HEAD has no body: " .. tostring(code) .. " " .. tostring(msg))
  local miss, m3, c3 = c:get(PREFIX .. "nope.jpg", dir .. "/nope.jpg")
  t.eq(miss, nil, "missing key")
  t.eq(c3, "S3_NoSuchKey", "missing key code")
  t.ok(m3:find("download s3://story-boards-assets/" .. PREFIX .. "nope.jpg",
               1, true), "message names operation and key: " .. m3)
  t.eq(t.read(dir .. "/nope.jpg"), nil, "no file for a failed GET")
  local nf, m4, c4 = c:put(dir .. "/does-not-exist.jpg", PREFIX .. "x.jpg")
  t.eq(nf, nil, "put of a missing file")
  t.eq(c4, "ENOENT", "missing source code")
  t.ok(m4:find("does-not-exist.jpg", 1, true), "names the file: " .. m4)
  -- nothing listening: connection refused, retried, then a clean error
  local dead = assert(tdm.s3.client({ endpoint = "http://127.0.0.1:9" },
                                    { max_attempts = 2,
                                      backoff_base = 0.01 }))
  local d, m5, c5 = dead:head("x")
  t.eq(d, nil, "no server")
  t.eq(c5, "ECONNREFUSED", "connection refused code")
  t.ok(m5:find("gave up after 2 attempts", 1, true), "retried: " .. m5)
  dead:close()
  t.checkerr(function() return dead:head("x") end, "closed S3 client")
end)

t.test("edge cases: empty batch, no credentials", function()
  local r, interrupted = c:transfer({})
  t.eq(r, {}, "empty transfer gives no results")
  t.eq(interrupted, false, "and is not interrupted")
  local script = dir .. "/nocreds.lua"
  t.write(script, [[
local tdm = require "tdm"
print(select(3, tdm.s3.client()))
]])
  local p = io.popen("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY " ..
                     "-u AWS_SESSION_TOKEN -u AWS_PROFILE HOME=" .. dir ..
                     " AWS_SHARED_CREDENTIALS_FILE=" .. dir .. "/none " ..
                     "AWS_CONFIG_FILE=" .. dir .. "/none tdm-lua " .. script ..
                     " 2>&1")
  local out = p:read("a")
  p:close()
  t.eq(out, "ENOCREDS\n", "no credentials anywhere: nil, msg, ENOCREDS")
end)

t.test("addressing style: auto, path, virtual (s3_addressing)", function()
  local function base(over)
    local cl = assert(tdm.s3.client(tdm.config(over)))
    local u = cl:presign("GET", "k", 60):match("^[^?]+")
    cl:close()
    return u
  end
  local ep = os.getenv("AWS_ENDPOINT_URL")
  local hostport = ep:match("^https?://(.*)$")
  t.eq(base({}), ep .. "/story-boards-assets/k", "auto with an endpoint")
  t.eq(base({ s3_addressing = "path" }), ep .. "/story-boards-assets/k",
       "path")
  t.eq(base({ s3_addressing = "virtual" }),
       "http://story-boards-assets." .. hostport .. "/k", "virtual")
  t.eq(base({ endpoint = "" }),
       "https://story-boards-assets.s3.us-west-1.amazonaws.com/k",
       "auto without an endpoint: virtual-hosted AWS")
  local cl, err, code = tdm.s3.client(tdm.config({ s3_addressing = "x" }))
  t.eq(cl, nil, "bad s3_addressing fails")
  t.ok(tostring(err):find("s3_addressing", 1, true), "message names it")
  t.eq(code, "ECONFIG", "as a configuration error")
end)

t.test("misuse raises", function()
  t.checkerr(function() c:transfer({ { op = "copy", key = "a",
                                       path = "b" } }) end,
             "must be \"get\" or \"put\"")
  t.checkerr(function() c:transfer({ { op = "get", key = "a" } }) end,
             "needs key and path")
  t.checkerr(function() for _ in c:list("", { max_keys = 0 }) do end end,
             "max_keys")
  t.checkerr(function() tdm.s3.client(nil, { bogus = 1 }) end,
             "unknown option 'bogus'")
  t.checkerr(function() return c:presign("GET", "k", 0) end, "604800")
end)

t.test("key_for, url_for, parse_url, etag_match", function()
  local cfg = tdm.config({ prefix = "system_actors/training_data",
                           bucket = "story-boards-assets",
                           region = "us-west-1" })
  local key = tdm.s3.key_for(cfg, "0042_european_30_male",
                             "0042_european_30_male_3.jpg")
  t.eq(key, "system_actors/training_data/0042_european_30_male/" ..
            "0042_european_30_male_3.jpg", "key_for")
  local url = tdm.s3.url_for(cfg, "0042_european_30_male",
                             "0042_european_30_male_3.jpg")
  t.eq(url, "https://story-boards-assets.s3.us-west-1.amazonaws.com/" .. key,
       "url_for")
  t.eq(tdm.s3.parse_url(cfg, url), key, "parse_url of url_for")
  t.eq(tdm.s3.parse_url(cfg, "s3://story-boards-assets/" .. key), key, "s3://")
  t.eq(tdm.s3.parse_url(cfg, "https://s3.us-west-1.amazonaws.com/" ..
                             "story-boards-assets/" .. key), key,
       "path-style")
  t.eq(tdm.s3.parse_url(cfg, "https://story-boards-assets.s3.amazonaws.com/"
                             .. "a%20b.jpg"), "a b.jpg", "percent-decoded")
  local no, why = tdm.s3.parse_url(cfg, "s3://other-bucket/k")
  t.eq(no, nil, "other bucket refused")
  t.ok(why:find("other-bucket", 1, true), why)
  t.eq((tdm.s3.parse_url(cfg, "ftp://x/y")), nil, "not an S3 URL")
  t.checkerr(function() tdm.s3.key_for(cfg, "../etc", "x.jpg") end,
             "actor name")
  local f = write(dir .. "/etag.bin", "abc")
  t.eq(tdm.s3.etag_match(f, "900150983cd24fb0d6963f7d28e17f72"), true,
       "plain ETag match")
  t.eq(tdm.s3.etag_match(f, "\"00000000000000000000000000000000\""), false,
       "plain ETag mismatch")
end)

c:close()
return t.done()
