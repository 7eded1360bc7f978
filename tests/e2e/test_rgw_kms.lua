-- test_rgw_kms.lua -- issue 18's "done when" against Ceph's RADOS Gateway
-- with SSE-KMS (its built-in test keys, tests/lib/rgw.sh): push-all,
-- pull-all, sync-manifests and audit end with every status synced and a
-- second run transfers nothing, for objects tdm pushed itself (with
-- TDM_SSE=aws:kms), objects the aws CLI uploaded (multipart) and objects
-- with rclone's and s3cmd's MD5 metadata (tests/lib/kms.lua). RGW shows
-- aws:kms but gives such objects their MD5 as ETag; test_rgw_kms_awsetags
-- does the same through awsproxy, with ETags that are not MD5s as on AWS.
-- Only against RGW (TDM_TEST_S3=rgw or both).
local t = require "t"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
e2e.needs("rgw", "SSE-KMS with RGW's test keys")
local kms = dofile(e2e.ROOT .. "/tests/lib/kms.lua")

local w = kms.round("rgw", os.getenv("AWS_ENDPOINT_URL"))
w:cleanup()
e2e.fp.cleanup()
return t.done()
