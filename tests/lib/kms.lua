--- tests/lib/kms.lua -- issue 18's "done when" as one round of tests, for
-- the SSE-KMS tests against RGW (tests/e2e/test_rgw_kms*.lua): local
-- images pushed by push-all with TDM_SSE=aws:kms, objects uploaded by the
-- aws CLI (multipart, --sse aws:kms) and with rclone's and s3cmd's MD5
-- metadata (multipart, as those tools write it); sync-manifests, push-all,
-- pull-all and audit end with every status synced and every object
-- encrypted, and a second run transfers nothing.
--
--   local kms = dofile(ROOT .. "/tests/lib/kms.lua")
--   local w = kms.round("rgw", os.getenv("AWS_ENDPOINT_URL"))
--   w:cleanup()
local t = require "t"
local cjson = require "cjson"
local core = require "tdm.core"
local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")

local kms = {}
local q = t.shq
local KEY_ID = os.getenv("RGW_KMS_KEY_ID") or "tdm-test-key-1"
local BUCKET = "story-boards-assets"
local MiB = 1024 * 1024

-- Bytes of a given size, different for every `seed`, starting as a JPEG
-- (or, for `png`, a PNG) does: tdm checks an image's first bytes.
local MAGIC = { jpg = "\xff\xd8\xff\xe0\0\x10JFIF\0", png = "\x89PNG\r\n\x1a\n" }
local function bytes(size, seed, ext)
  local unit = string.format("%08d-kms-test-image-bytes|", seed)
  local head = MAGIC[ext or "jpg"]
  return head .. (string.rep(unit, size // #unit + 1)):sub(1, size - #head)
end

--- Objects uploaded by other tools, under `prefix` through `endpoint`:
-- { [key] = md5 }. aws CLI: `aws s3 cp --sse aws:kms` (multipart above
-- 5 MiB); rclone and s3cmd: multipart uploads carrying the MD5 metadata
-- those tools write (X-Amz-Meta-Md5chksum: base64; x-amz-meta-s3cmd-attrs
-- with md5:HEX), put with botocore.
local function other_tools(w, endpoint, actor)
  local src = w.tmp .. "/src"
  os.execute("mkdir -p " .. q(src))
  local objs, files = {}, {
    { tool = "awscli", name = actor .. "_0.jpg", size = 12 * MiB + 7 },
    { tool = "awscli", name = actor .. "_1.png", size = 4000 },
    { tool = "rclone", name = actor .. "_2.jpg", size = 11 * MiB + 3 },
    { tool = "s3cmd", name = actor .. "_3.jpg", size = 10 * MiB + 1 },
  }
  local cfgfile = w.tmp .. "/aws-config"
  t.write(cfgfile, "[default]\nregion = us-west-1\ns3 =\n" ..
          "  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n")
  local py = {}
  for i, f in ipairs(files) do
    local path = src .. "/" .. f.name
    local data = bytes(f.size, 100 + i, f.name:match("%.(%w+)$"))
    t.write(path, data)
    local key = w.prefix .. "/" .. actor .. "/" .. f.name
    objs[key] = core.md5_file(path)
    if f.tool == "awscli" then
      local rc = os.execute(string.format(
        "AWS_CONFIG_FILE=%s aws --endpoint-url %s s3 cp --quiet --sse aws:kms " ..
        "--sse-kms-key-id %s %s s3://%s/%s", q(cfgfile), q(endpoint), q(KEY_ID),
        q(path), BUCKET, q(key)))
      t.ok(rc, "aws s3 cp " .. key)
    else
      py[#py + 1] = { tool = f.tool, path = path, key = key }
    end
  end
  local script = w.tmp .. "/tools.py"
  t.write(script, [==[
import base64, hashlib, json, os, sys, time
import botocore.session
from botocore.config import Config
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=sys.argv[1], region_name="us-west-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    config=Config(s3={"addressing_style": "path"}))
for job in json.load(open(sys.argv[3])):
    data = open(job["path"], "rb").read()
    md5 = hashlib.md5(data)
    if job["tool"] == "rclone":
        meta = {"md5chksum": base64.b64encode(md5.digest()).decode()}
    else:
        now = int(time.time())
        meta = {"s3cmd-attrs": "atime:%d/ctime:%d/gid:0/gname:root/md5:%s/"
                "mode:33188/mtime:%d/uid:0/uname:root" % (now, now, md5.hexdigest(), now)}
    m = c.create_multipart_upload(Bucket=sys.argv[2], Key=job["key"], Metadata=meta,
                                  ServerSideEncryption="aws:kms",
                                  SSEKMSKeyId=sys.argv[4])
    parts, size = [], 5 * 1024 * 1024
    for n, off in enumerate(range(0, len(data), size), 1):
        r = c.upload_part(Bucket=sys.argv[2], Key=job["key"], UploadId=m["UploadId"],
                          PartNumber=n, Body=data[off:off + size])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    c.complete_multipart_upload(Bucket=sys.argv[2], Key=job["key"],
                                UploadId=m["UploadId"],
                                MultipartUpload={"Parts": parts})
]==])
  local jobsfile = w.tmp .. "/tools.json"
  t.write(jobsfile, cjson.encode(py))
  local p = io.popen(string.format("/usr/bin/python3 %s %s %s %s %s 2>&1",
    q(script), q(endpoint), BUCKET, q(jobsfile), q(KEY_ID)))
  local out = p:read("a")
  local ok = p:close()
  t.ok(ok, "rclone/s3cmd-style uploads: " .. out)
  return objs
end

--- { [key] = { sse =, etag = } } of every object under the prefix, by
-- botocore HEAD straight from RGW.
local function heads(prefix)
  local script = os.tmpname()
  t.write(script, [==[
import json, os, sys
import botocore.session
c = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-west-1")
out, kw = {}, {"Bucket": sys.argv[1], "Prefix": sys.argv[2]}
for o in c.list_objects_v2(**kw).get("Contents", []):
    h = c.head_object(Bucket=sys.argv[1], Key=o["Key"])
    out[o["Key"]] = {"sse": h.get("ServerSideEncryption") or "",
                     "etag": h["ETag"]}
print(json.dumps(out))
]==])
  local p = io.popen(string.format("/usr/bin/python3 %s %s %s", q(script),
                                   BUCKET, q(prefix .. "/")))
  local out = p:read("a")
  p:close()
  os.remove(script)
  return cjson.decode(out)
end

--- Every manifest entry's status under the data root: { [filename] = status }.
local function statuses(D)
  local st = {}
  for _, f in ipairs(e2e.files_in(D .. "/actor_manifests")) do
    if f:match("_manifest%.json$") then
      local m = cjson.decode(t.read(f))
      for _, e in ipairs(m.training_data) do st[e.filename] = e.status end
    end
  end
  return st
end

--- One full round (the tests above) on a fresh world through `endpoint`
-- (RGW itself, or awsproxy in front of it); returns the world.
function kms.round(label, endpoint)
  local w = e2e.world { tag = "t/rgw-kms-" .. label }
  local env = string.format("AWS_ENDPOINT_URL=%s TDM_SSE=aws:kms " ..
    "TDM_SSE_KMS_KEY_ID=%s ", q(endpoint), q(KEY_ID))
  local pushed, other = "0801_kms_pushed", "0802_kms_tools"
  local want = {}
  t.test(label .. ": local images to push, other tools' objects to pull", function()
    os.execute("mkdir -p " .. q(w:tdir(pushed)))
    for i = 0, 3 do
      local data = bytes(3000 + 1000 * i, i)
      t.write(w:lpath(pushed, pushed .. "_" .. i .. ".jpg"), data)
      want[pushed .. "/" .. pushed .. "_" .. i .. ".jpg"] = core.md5_file(
        w:lpath(pushed, pushed .. "_" .. i .. ".jpg"))
    end
    for key, md5 in pairs(other_tools(w, endpoint, other)) do
      want[key:sub(#w.prefix + 2)] = md5
    end
  end)
  local function tdm(args)
    local p = io.popen(string.format("env %s tdm-lua %s --json --data-root %s " ..
      "--prefix %s 2>%s", env, args, q(w.D), q(w.prefix), q(w.tmp .. "/err")))
    local out = p:read("a")
    local _, _, rc = p:close()
    local events, summary = e2e.json_lines(out, args)
    -- what went wrong, for the failure messages: stderr and error events
    local why = { t.read(w.tmp .. "/err") or "" }
    for _, ev in ipairs(events) do
      if ev.error and #why < 4 then why[#why + 1] = cjson.encode(ev) end
    end
    -- and an audit's findings ({actor, file, kind, result, fixed})
    for _, ev in ipairs(events) do
      if ev.kind and #why < 6 then why[#why + 1] = cjson.encode(ev) end
    end
    if rc ~= 0 and summary then why[#why + 1] = cjson.encode(summary) end
    return rc, summary or {}, table.concat(why, " ")
  end
  local rc, s, err
  t.test(label .. ": sync-manifests, push-all, pull-all", function()
    rc, s, err = tdm("sync-manifests")
    t.eq(rc, 0, "sync-manifests exit code (" .. err .. ")")
    rc, s, err = tdm("push-all")
    t.eq(rc, 0, "push-all exit code (" .. err .. ")")
    t.eq(s.uploaded, 4, "push-all uploaded")
    rc, s, err = tdm("pull-all")
    t.eq(rc, 0, "pull-all exit code (" .. err .. ")")
    t.eq(s.downloaded, 4, "pull-all downloaded")
  end)
  t.test(label .. ": every file where it belongs with its bytes", function()
    for rel, md5 in pairs(want) do
      local actor, fn = rel:match("^([^/]+)/(.+)$")
      t.eq(core.md5_file(w:lpath(actor, fn)), md5, "local " .. rel)
    end
  end)
  t.test(label .. ": every object encrypted with aws:kms", function()
    local h = heads(w.prefix)
    local n = 0
    for rel in pairs(want) do
      local o = h[w.prefix .. "/" .. rel]
      t.ok(o, "object " .. rel .. " exists")
      t.eq(o.sse, "aws:kms", "x-amz-server-side-encryption of " .. rel)
      n = n + 1
    end
    t.eq(n, 8, "objects checked")
  end)
  t.test(label .. ": audit finds nothing, every status synced", function()
    rc, s, err = tdm("audit")
    t.eq(rc, 0, "audit exit code (" .. err .. ")")
    t.eq(s.findings, 0, "audit findings")
    local st = statuses(w.D)
    for rel in pairs(want) do
      local fn = rel:match("/(.+)$")
      t.eq(st[fn], "synced", "status of " .. fn)
    end
  end)
  t.test(label .. ": a second run transfers nothing", function()
    rc, s, err = tdm("push-all")
    t.eq(rc, 0, "second push-all exit code (" .. err .. ")")
    t.eq(s.uploaded or 0, 0, "second push-all uploaded")
    rc, s, err = tdm("pull-all")
    t.eq(rc, 0, "second pull-all exit code (" .. err .. ")")
    t.eq(s.downloaded or 0, 0, "second pull-all downloaded")
    rc, s, err = tdm("sync-manifests")
    t.eq(rc, 0, "second sync-manifests exit code (" .. err .. ")")
    t.eq(s.manifests_written or 0, 0, "second sync-manifests wrote manifests")
  end)
  return w
end

return kms
