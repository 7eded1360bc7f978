-- test_s3_sse.lua -- what uploads ask of S3 (issue 18): server-side
-- encryption from TDM_SSE/TDM_SSE_KMS_KEY_ID on single and multipart PUTs,
-- and an additional checksum (TDM_S3_CHECKSUM) on single PUTs that the
-- server verifies and keeps. The request headers are read from the
-- core's --debug trace (the canonical request), the server's side through
-- tests/lib/awsproxy.js (checksums verified: a wrong one is 400 BadDigest).
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local PREFIX = e2e.prefix("tdmtest-sse") .. "/"
local dir = t.tmpdir()
local MIB = 1048576
local small = dir .. "/small.jpg"
t.write(small, "small encrypted bytes")
local big = dir .. "/big.bin"
t.write(big, string.rep("0123456789abcdef", 6 * MIB // 16))
-- RGW encrypts only with the keys it knows (tests/lib/rgw.sh)
local KEY = os.getenv("RGW_KMS_KEY_ID") or
            "arn:aws:kms:us-west-1:111122223333:key/test-key"

-- The canonical requests the core signed while fn ran.
local function traced(fn)
  local log = dir .. "/trace." .. tostring(math.random(1e9))
  core.s3_trace(2, log)
  local ok, err = pcall(fn)
  core.s3_trace(0)
  assert(ok, err)
  return t.read(log) or ""
end

t.test("TDM_SSE=aws:kms + key id: on the PUT and on the multipart start", function()
  local c = assert(tdm.s3.client({ sse = "aws:kms", sse_kms_key_id = KEY,
                                   s3_checksum = "off" },
                                 { multipart_threshold = 5 * MIB }))
  local trace = traced(function()
    assert(c:put(small, PREFIX .. "small.jpg"))
    assert(c:put(big, PREFIX .. "big.bin"))
  end)
  local n = select(2, trace:gsub("x%-amz%-server%-side%-encryption:aws:kms\n", ""))
  t.eq(n, 2, "x-amz-server-side-encryption signed on the PUT and the "
       .. "CreateMultipartUpload (not on parts)")
  local k = select(2, trace:gsub("x%-amz%-server%-side%-encryption%-aws%-kms%-key%-id:"
                                 .. KEY:gsub("%p", "%%%0"), ""))
  t.eq(k, 2, "the key id with it")
  t.ok(not trace:find("x-amz-checksum-", 1, true), "s3_checksum=off: none")
end)

t.test("a wrong TDM_SSE is a configuration error naming the setting", function()
  local c, msg, code = tdm.s3.client({ sse = "aes256" })
  t.eq(c, nil, "refused")
  t.eq(code, "ECONFIG", "code")
  t.ok(msg:find("TDM_SSE", 1, true), msg)
end)

t.test("TDM_S3_CHECKSUM: sent, verified and kept by the server", function()
  local p = e2e.fp.start_aws { modes = "checksums" }
  for _, algo in ipairs { "crc32c", "sha256" } do
    local c = assert(tdm.s3.client({ endpoint = p.url, s3_checksum = algo }))
    local key = PREFIX .. "ck-" .. algo .. ".jpg"
    local trace = traced(function() assert(c:put(small, key)) end)
    local want = assert(tdm.s3.checksum_file(small, algo))
    t.ok(trace:find("x-amz-checksum-" .. algo .. ":" .. want, 1, true),
         algo .. " header signed with the file's value")
    t.ok(trace:find("x-amz-sdk-checksum-algorithm:" .. algo:upper(), 1, true),
         "the algorithm named as the SDKs do")
    local h = assert(c:head(key))
    t.eq(h.checksum_algorithm, algo, "the server kept it")
    t.eq(h.checksum, want, "its value")
    t.eq(h.md5_source, "meta", "the MD5 still from tdm's metadata")
  end
  -- auto: none with an endpoint (servers may refuse headers they lack)
  local c = assert(tdm.s3.client({ endpoint = p.url, s3_checksum = "auto" }))
  local trace = traced(function() assert(c:put(small, PREFIX .. "auto.jpg")) end)
  t.ok(not trace:find("x-amz-checksum-crc32c", 1, true), "auto + endpoint: none")
  p:stop()
end)

t.test("s3rver accepts uploads with checksum and SSE headers", function()
  local c = assert(tdm.s3.client({ sse = "AES256", s3_checksum = "crc32c" }))
  local r, err = c:put(small, PREFIX .. "s3rver.jpg")
  t.ok(r, "put: " .. tostring(err))
  local g = assert(c:get(PREFIX .. "s3rver.jpg", dir .. "/back.jpg"))
  t.eq(g.md5, tdm.md5("small encrypted bytes"), "round trip")
end)

return t.done()
