-- test_rgw_kms_awsetags.lua -- test_rgw_kms's round (tests/lib/kms.lua)
-- through tests/lib/awsproxy.js in sse-kms mode in front of RGW: every
-- ETag tdm sees (PUT, HEAD, GET, listings, multipart) is a stable
-- random-looking hex that is not the MD5, as AWS answers for SSE-KMS
-- objects. Only against RGW (TDM_TEST_S3=rgw or both).
local t = require "t"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
e2e.needs("rgw", "SSE-KMS with RGW's test keys")
local kms = dofile(e2e.ROOT .. "/tests/lib/kms.lua")

local proxy = e2e.fp.start_aws { modes = "sse-kms" }
local w = kms.round("aws-etags", proxy.url)
proxy:stop()
w:cleanup()
e2e.fp.cleanup()
return t.done()
