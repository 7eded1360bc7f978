-- test_s3_etag.lua -- what an ETag means (issue 18): the MD5 of an object
-- comes from tdm's x-amz-meta-md5, rclone's md5chksum, s3cmd's attrs, an
-- additional checksum, and the ETag only for objects that are not
-- SSE-KMS/DSSE/SSE-C encrypted; each GET/HEAD says which (md5_source).
-- Against the harness's s3rver, and through tests/lib/awsproxy.js, which
-- answers as AWS does (SSE-KMS ETags that are not the MD5, CRC64NVME
-- checksums on single PUTs).
local t = require "t"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
e2e.needs_s3rver("rewrites objects in s3rver's storage directory")
local PREFIX = e2e.prefix("tdmtest-etag") .. "/"
local dir = t.tmpdir()
local EP = os.getenv("AWS_ENDPOINT_URL")
local BUCKET = "story-boards-assets"
local c = assert(tdm.s3.client())

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, rc = p:close()
  return ok and rc == 0, out
end

local function b64_of_hex(hex)
  local ok, out = sh(string.format("printf %%s %s | xxd -r -p | base64", hex))
  assert(ok, out)
  return (out:gsub("%s", ""))
end

-- Put `body` at `key` as another tool would: with aws s3api, straight to
-- s3rver (or `endpoint`), with `meta` (name=value) as user metadata and
-- no x-amz-meta-md5.
local function other_tool_put(key, body, meta, endpoint)
  local src = dir .. "/other.src"
  t.write(src, body)
  local ok, out = sh(string.format(
    "aws --endpoint-url %s s3api put-object --bucket %s --key %q --body %q%s",
    endpoint or EP, BUCKET, key, src, meta and (" --metadata " .. meta) or ""))
  t.ok(ok, "aws s3api put-object: " .. out)
end

local function via(modes)
  local p = e2e.fp.start_aws { modes = modes }
  local pc = assert(tdm.s3.client({ endpoint = p.url }))
  return p, pc
end

local function got_file(path) return t.read(path) end

t.test("s3rver: tdm's own objects verify by x-amz-meta-md5", function()
  local src = dir .. "/own.jpg"
  t.write(src, "tdm's own bytes")
  local r = assert(c:put(src, PREFIX .. "own.jpg"))
  local h = assert(c:head(PREFIX .. "own.jpg"))
  t.eq(h.md5, r.md5, "head md5")
  t.eq(h.md5_source, "meta", "head: from x-amz-meta-md5")
  local g = assert(c:get(PREFIX .. "own.jpg", dir .. "/own.back"))
  t.eq(g.md5_source, "meta", "get: verified against x-amz-meta-md5")
  t.eq(g.md5, r.md5, "get md5")
end)

t.test("s3rver: a plain object of another tool verifies by its ETag", function()
  other_tool_put(PREFIX .. "plain.jpg", "plain bytes")
  local h = assert(c:head(PREFIX .. "plain.jpg"))
  t.eq(h.md5_source, "etag", "head: the ETag of an unencrypted object")
  t.eq(h.md5, tdm.md5("plain bytes"), "head md5")
  local g = assert(c:get(PREFIX .. "plain.jpg", dir .. "/plain.back"))
  t.eq(g.md5_source, "etag", "get source")
end)

t.test("rclone's and s3cmd's MD5 metadata count, and are checked", function()
  local md5 = tdm.md5("rclone bytes")
  other_tool_put(PREFIX .. "rclone.jpg", "rclone bytes",
                 "md5chksum=" .. b64_of_hex(md5))
  local h = assert(c:head(PREFIX .. "rclone.jpg"))
  t.eq(h.md5_source, "rclone", "head: rclone's md5chksum")
  t.eq(h.md5, md5, "head md5 from base64")
  local s3cmd_md5 = tdm.md5("s3cmd bytes")
  other_tool_put(PREFIX .. "s3cmd.jpg", "s3cmd bytes",
                 "s3cmd-attrs=atime:1700000000/ctime:1700000000/gid:0/md5:"
                 .. s3cmd_md5 .. "/mode:33188/mtime:1700000000/uid:0")
  local h2 = assert(c:head(PREFIX .. "s3cmd.jpg"))
  t.eq(h2.md5_source, "s3cmd", "head: s3cmd's attrs")
  t.eq(h2.md5, s3cmd_md5, "head md5 from the attrs")
  -- through the KMS proxy the ETag means nothing, the metadata still does
  local p, pc = via("sse-kms")
  local g = assert(pc:get(PREFIX .. "rclone.jpg", dir .. "/rclone.back"))
  t.eq(g.md5_source, "rclone", "get through SSE-KMS: rclone's metadata")
  t.eq(g.sse, "aws:kms", "the answer said aws:kms")
  local g2 = assert(pc:get(PREFIX .. "s3cmd.jpg", dir .. "/s3cmd.back"))
  t.eq(g2.md5_source, "s3cmd", "get through SSE-KMS: s3cmd's attrs")
  -- metadata that disagrees with the bytes is a corrupt object
  other_tool_put(PREFIX .. "liar.jpg", "the real bytes",
                 "md5chksum=" .. b64_of_hex(tdm.md5("other bytes")))
  local before = e2e.files_in(dir)
  local r, msg, code = pc:get(PREFIX .. "liar.jpg", dir .. "/liar.back")
  t.eq(r, nil, "refused")
  t.eq(code, "S3_BadDigest", "code")
  t.ok(msg:find("md5chksum", 1, true), "names rclone's metadata: " .. msg)
  t.eq(e2e.files_in(dir), before, "nothing written")
  p:stop()
end)

t.test("SSE-KMS: tdm pushes and pulls its own objects; ETags are not MD5s", function()
  local p, pc = via("sse-kms")
  local src = dir .. "/kms.jpg"
  t.write(src, "encrypted at rest")
  local r, err = pc:put(src, PREFIX .. "kms.jpg")
  t.ok(r, "PUT succeeds though the ETag is not the MD5: " .. tostring(err))
  t.eq(r.md5, tdm.md5("encrypted at rest"), "put md5 is the file's")
  t.ok(r.etag ~= r.md5, "the proxy's ETag is no MD5")
  local h = assert(pc:head(PREFIX .. "kms.jpg"))
  t.eq(h.md5, r.md5, "head: MD5 from x-amz-meta-md5, not from the ETag")
  t.eq(h.md5_source, "meta", "head source")
  t.eq(h.sse, "aws:kms", "head: encryption reported")
  local g, gerr = pc:get(PREFIX .. "kms.jpg", dir .. "/kms.back")
  t.ok(g, "GET verifies: " .. tostring(gerr))
  t.eq(g.attempts, 1, "first try")
  t.eq(got_file(dir .. "/kms.back"), "encrypted at rest", "bytes")
  p:stop()
end)

t.test("SSE-KMS without any checksum: kept on its size, said so", function()
  other_tool_put(PREFIX .. "bare.jpg", "no checksum anywhere")
  local p, pc = via("sse-kms")
  local h = assert(pc:head(PREFIX .. "bare.jpg"))
  t.eq(h.md5_source, "none", "head: nothing vouches for an MD5")
  t.eq(h.md5, nil, "no md5 from an encrypted object's ETag")
  local g, err = pc:get(PREFIX .. "bare.jpg", dir .. "/bare.back")
  t.ok(g, "kept: " .. tostring(err))
  t.eq(g.md5_source, "none", "get says nothing verified it")
  t.eq(g.md5, tdm.md5("no checksum anywhere"), "md5 of what was received")
  t.eq(got_file(dir .. "/bare.back"), "no checksum anywhere", "bytes")
  p:stop()
end)

t.test("additional checksums: asked for, verified, reported", function()
  local p, pc = via("sse-kms,checksums")
  -- tdm's own upload: the proxy keeps CRC64NVME for it, as AWS does
  local src = dir .. "/ck.src"
  t.write(src, "checked by a checksum")
  assert(pc:put(src, PREFIX .. "ck1.jpg"))
  local h = assert(pc:head(PREFIX .. "ck1.jpg"))
  t.eq(h.checksum_algorithm, "crc64nvme", "head: the checksum S3 keeps")
  t.eq(h.checksum, tdm.s3.checksum_file(src, "crc64nvme"), "its value")
  t.eq(h.md5_source, "meta", "tdm's metadata still comes first")
  -- another tool's upload through the proxy: no MD5 metadata, a checksum
  other_tool_put(PREFIX .. "ck2.jpg", "checked by a checksum", nil, p.url)
  local h2 = assert(pc:head(PREFIX .. "ck2.jpg"))
  t.ok(h2.checksum_algorithm, "head: a checksum algorithm")
  t.eq(h2.md5_source, h2.checksum_algorithm, "head: the MD5 is unknown, "
       .. "the checksum is what verifies")
  t.eq(h2.md5, nil, "no md5 claimed")
  local g, err = pc:get(PREFIX .. "ck2.jpg", dir .. "/ck2.bin")
  t.ok(g, "get: " .. tostring(err))
  t.eq(g.md5_source, h2.checksum_algorithm, "get verified by the checksum")
  t.eq(g.md5, tdm.md5("checked by a checksum"), "and learned the MD5")
  -- bytes changed behind the server's back: the checksum catches it
  local body = os.getenv("TDM_S3_DIR") .. "/" .. BUCKET .. "/" .. PREFIX ..
               "ck2.jpg._S3rver_object"
  t.eq(t.read(body), "checked by a checksum", "s3rver's object found")
  t.write(body, "checked by a CHECKSUM")   -- same length
  local r, msg, code = pc:get(PREFIX .. "ck2.jpg", dir .. "/ck2.bad")
  t.eq(r, nil, "refused")
  t.eq(code, "S3_BadDigest", "code")
  t.ok(msg:find("x-amz-checksum-" .. h2.checksum_algorithm, 1, true), msg)
  t.eq(t.read(dir .. "/ck2.bad"), nil, "nothing written")
  p:stop()
end)

return t.done()
