-- test_api.lua -- `tdm-lua serve` end to end against s3rver: the endpoint's
-- JSON for actors in every state equals tdm.API's and has the seed's shape;
-- a curl -F upload then GET shows the files synced; DELETE evicts the
-- local copy, DELETE ?s3=true removes the image everywhere; hostile requests get their
-- status and change nothing on disk or in S3; S3 down -> 503; a short
-- 50-client load run with no errors.
local ROOT = os.getenv("TDM_TEST_ROOT") or "."
package.path = ROOT .. "/tests/lua/?.lua;" .. package.path
local t = require "t"
local tdm = require "tdm"
local core = require "tdm.core"
local e2e = dofile(ROOT .. "/tests/lib/e2e.lua")

local q = t.shq
local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

-- Each test prints its wall time (tests stay lean; see HACKING.md).
local test = t.test
t.test = function(name, fn)
  local t0 = core.now()
  test(name, fn)
  print(string.format("# %-60s %.1fs", name, core.now() - t0))
end
local T0 = core.now()

-- Debian's python3 (a pyenv shim can take seconds to start).
local PY = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

local w = e2e.world { tag = "t/api", fixture = {} }
local tmp, data_root, prefix, fx, cfg, s3 = w.tmp, w.D, w.prefix, w.fx, w.cfg, w.client
local api = tdm.API.new(cfg)
local TOKEN = "tok-" .. tostring(math.random(1e9))
local MAX = 1048576

-- Servers started (killed at the end whatever happened).
local servers = {}

-- Start `tdm-lua serve` (the one on PATH: tests/run.sh puts the build's
-- first, B=build-asan's under `make check-all`) on a free port with extra environment `env`;
-- returns base URL, pid, log path.
local function serve(env, name)
  local log = tmp .. "/" .. name .. ".log"
  local pidf = tmp .. "/" .. name .. ".pid"
  local rcf = tmp .. "/" .. name .. ".rc"
  os.execute(string.format(
    "( %s TDM_API_MAX_UPLOAD=%d TDM_API_TOKEN=%s tdm-lua serve "
    .. "--listen 127.0.0.1:0 --threads 4 --data-root %s --prefix %s "
    .. "2>%s & echo $! > %s; wait $!; echo $? > %s ) >/dev/null 2>&1 &",
    env or "", MAX, q(TOKEN), q(data_root), q(prefix), q(log), q(pidf),
    q(rcf)))
  for _ = 1, 100 do
    if (t.read(pidf) or ""):match("%d+") then break end
    os.execute("sleep 0.05")
  end
  local pid = t.read(pidf):match("%d+")
  servers[#servers + 1] = pid
  for _ = 1, 200 do
    local base = (t.read(log) or ""):match("listening on (http://%S+)")
    if base then return base, pid, log end
    os.execute("sleep 0.05")
  end
  error("serve did not start: " .. tostring(t.read(log)))
end

local base, pid, log = serve("TDM_API_ALLOWED_ORIGINS=https://ops.example",
                            "main")
local AUTH = "-H " .. q("Authorization: Bearer " .. TOKEN)

-- curl ARGS -> status, body
local function curl(args)
  local out = tmp .. "/body"
  os.remove(out)
  local code = sh("curl -s -m 20 -o " .. q(out) .. " -w '%{http_code}' " .. args)
  return tonumber(code) or 0, t.read(out) or ""
end

-- python3 checks on JSON texts; prints "ok" or the problem.
local function python(code, ...)
  local files = {}
  for i, s in ipairs({ ... }) do
    files[i] = tmp .. "/py" .. i .. ".json"
    t.write(files[i], s)
  end
  t.write(tmp .. "/check.py", code)
  return sh(PY .. " " .. q(tmp .. "/check.py") .. " " .. table.concat(files, " ")
            .. " 2>&1")
end

local SHAPE = [[
import json, sys
TOP = ["actor_id", "actor_name", "training_images", "total_count",
       "synced_count", "local_only_count", "s3_only_count",
       "out_of_sync_count", "missing_count"]
IMG = ["index", "filename", "s3_url", "local_exists", "local_path",
       "md5_hash", "size_mb", "modified_date", "status"]
TYPES = {"index": int, "filename": str, "s3_url": str, "local_exists": bool,
         "local_path": str, "md5_hash": str, "size_mb": (int, float),
         "modified_date": str, "status": str}
import re
problems = []
def check(got, want, problems):
    if got != want: problems.append("endpoint != get_training_data")
    if list(got.keys()) != TOP: problems.append("top keys %r" % list(got.keys()))
    if type(got["actor_id"]) is not int: problems.append("actor_id not int")
    for k in TOP[3:]:
        if type(got[k]) is not int: problems.append(k + " not int")
    if got["total_count"] != len(got["training_images"]): problems.append("total_count")
    for s in ["synced", "local_only", "s3_only", "out_of_sync", "missing"]:
        n = sum(1 for i in got["training_images"] if i["status"] == s)
        if got[s + "_count"] != n: problems.append(s + "_count")
    for i in got["training_images"]:
        if list(i.keys()) != IMG: problems.append("image keys %r" % list(i.keys()))
        for k, ty in TYPES.items():
            if not isinstance(i[k], ty) or (ty is int and isinstance(i[k], bool)):
                problems.append("%s: %s is %r" % (i["filename"], k, i[k]))
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", i["modified_date"]):
            problems.append("modified_date " + i["modified_date"])
args = sys.argv[1:]
for i in range(0, len(args), 2):
    got = json.load(open(args[i])); want = json.load(open(args[i + 1]))
    p = []
    check(got, want, p)
    if p: problems.append("%s: %s" % (got.get("actor_name"), "; ".join(p)))
print("; ".join(problems) or "ok")
]]

local function status_of(doc)
  local out = {}
  for _, img in ipairs(doc.training_images) do out[img.filename] = img.status end
  return out
end

-- Every byte under the data root and the test's S3 prefix (lock files
-- aside).
local function snapshot() return w:snapshot { no_locks = true } end

print(string.format("# fixture and server ready: %.1fs", core.now() - T0))

-- Bring the manifests up to date (the fixture's statuses are stale on
-- purpose), except two actors left for GET to auto-initialize.
local sync = tdm.Sync.new(cfg)
for name, a in pairs(fx.actors) do
  if name ~= "0007_no_manifest" and name ~= "0010_s3_only_actor" then
    assert(sync:auto_initialize_manifest(a.id))
  end
end

t.test("GET equals get_training_data, seed shape, for every state", function()
  local seen, pairs_ = {}, {}
  for name, a in pairs(fx.actors) do
    local id = tonumber(a.id)
    -- the endpoint first: it auto-initializes 0007 and 0010
    local code, body = curl(q(base .. "/api/actors/" .. id .. "/training-data"))
    local want = assert(api:get_training_data(id))
    t.eq(code, 200, name .. " status")
    pairs_[#pairs_ + 1] = body
    pairs_[#pairs_ + 1] = tdm.API.encode_json(want)
    for _, img in ipairs(want.training_images) do seen[img.status] = true end
    t.eq(want.actor_name, name, "actor_name")
  end
  t.eq(python(SHAPE, table.unpack(pairs_)), "ok\n", "python3: equal, seed shape")
  for _, s in ipairs({ "synced", "local_only", "s3_only", "out_of_sync",
                       "missing" }) do
    t.ok(seen[s], "some actor has a file " .. s)
  end
end)

t.test("healthz, HEAD, 405 with Allow", function()
  local code, body = curl(q(base .. "/healthz"))
  t.eq(code, 200, "healthz status")
  t.eq(body, '{"status": "ok"}\n', "healthz body")
  local head = sh("curl -s -I -m 10 " .. q(base .. "/api/actors/1/training-data"))
  t.ok(head:match("^HTTP/1.1 200"), "HEAD status: " .. head)
  t.ok(head:lower():find("content-type: application/json", 1, true), "HEAD type")
  local hdrs = sh("curl -s -D - -o /dev/null -m 10 -X POST " .. AUTH .. " "
                  .. q(base .. "/healthz"))
  t.ok(hdrs:match("^HTTP/1.1 405"), "POST /healthz: " .. hdrs)
  t.ok(hdrs:find("Allow: GET, HEAD", 1, true), "Allow header: " .. hdrs)
  hdrs = sh("curl -s -D - -o /dev/null -m 10 -X PATCH " .. AUTH .. " "
            .. q(base .. "/api/actors/1/training-data"))
  t.ok(hdrs:find("Allow: GET, HEAD, POST", 1, true), "Allow on the collection: " .. hdrs)
end)

t.test("GET auto-initialized the actor with no manifest", function()
  local doc = assert(api:get_training_data(7))
  t.ok(core.stat(data_root .. "/actor_manifests/0007_manifest.json"),
       "manifest 0007 written")
  t.eq(status_of(doc), e2e.fixture.expected_statuses(fx, "0007_no_manifest"),
       "statuses")
  local only = assert(api:get_training_data(10))
  t.eq(only.actor_name, "0010_s3_only_actor", "S3-only actor found")
  t.eq(only.s3_only_count, 3, "S3-only actor files")
end)

local function jpeg(n, seed)
  local b = { "\255\216\255\224" }
  for i = 1, n - 4 do b[#b + 1] = string.char((i * 31 + seed) % 256) end
  return table.concat(b)
end
local function png(n)
  return "\137PNG\r\n\26\n" .. string.rep("p", n - 8)
end

t.test("curl -F upload, GET shows them synced, DELETE removes them", function()
  t.write(tmp .. "/a.jpg", jpeg(3000, 1))
  t.write(tmp .. "/b.png", png(2000))
  -- from a page of an origin in TDM_API_ALLOWED_ORIGINS
  local code, body = curl(AUTH .. " -H 'Origin: https://ops.example' -F "
    .. q("files=@" .. tmp .. "/a.jpg") .. " -F " .. q("files=@" .. tmp .. "/b.png")
    .. " " .. q(base .. "/api/actors/1/training-data"))
  t.eq(code, 201, "upload status (" .. body .. ")")
  local res = require("cjson").decode(body)
  t.eq(res.uploaded_count, 2, "uploaded_count")
  local names = { res.files[1].filename, res.files[2].filename }
  t.eq(names, { "0001_all_synced_4.jpg", "0001_all_synced_5.png" },
       "named {actor_name}_{next index}.{ext}")
  code, body = curl(q(base .. "/api/actors/1/training-data"))
  local doc = require("cjson").decode(body)
  local st = status_of(doc)
  local dir = data_root .. "/actors/0001_all_synced/training_data/"
  for i, n in ipairs(names) do
    t.eq(st[n], "synced", n .. " status")
    local want = core.md5(t.read(tmp .. (i == 1 and "/a.jpg" or "/b.png")))
    t.eq(core.md5(t.read(dir .. n) or ""), want, n .. " local bytes")
    local head = assert(s3:head(tdm.s3.key_for(cfg, "0001_all_synced", n)))
    t.eq(head.md5, want, n .. " S3 object")
  end
  t.eq(doc.total_count, 6, "total_count")
  -- DELETE with s3=true: local, S3 and the entry go
  code, body = curl(AUTH .. " -X DELETE " .. q(base .. "/api/actors/1/training-data/"
                    .. names[1] .. "?s3=true"))
  t.eq(code, 200, "DELETE status (" .. body .. ")")
  t.eq(core.stat(dir .. names[1]), nil, "local file gone")
  local h, _, hcode = s3:head(tdm.s3.key_for(cfg, "0001_all_synced", names[1]))
  t.eq(h, nil, "S3 object gone")
  t.eq(hcode, "S3_NoSuchKey", "S3 head code")
  local m = tdm.Manifest.load(data_root .. "/actor_manifests/0001_manifest.json", cfg)
  for _, e in ipairs(m.training_data) do
    t.ok(e.filename ~= names[1], "entry removed")
  end
  -- DELETE without s3 evicts the local copy: the entry stays, s3_only,
  -- while the object exists
  code, body = curl(AUTH .. " -X DELETE " .. q(base .. "/api/actors/1/training-data/"
                    .. names[2]))
  t.eq(code, 200, "DELETE without s3 (" .. body .. ")")
  local del = require("cjson").decode(body)
  t.eq({ del.deleted_local, del.deleted_s3, del.evicted_local, del.status },
       { true, false, true, "s3_only" }, "eviction reported")
  t.eq(core.stat(dir .. names[2]), nil, "local file gone")
  t.ok(s3:head(tdm.s3.key_for(cfg, "0001_all_synced", names[2])),
       "S3 object kept without ?s3=true")
  t.eq(status_of(api:get_training_data(1))[names[2]], "s3_only",
       "entry kept as s3_only")
  -- and now with ?s3=true: the object and the entry go
  code, body = curl(AUTH .. " -X DELETE " .. q(base .. "/api/actors/1/training-data/"
                    .. names[2] .. "?s3=true"))
  t.eq(code, 200, "DELETE s3_only entry with s3=true (" .. body .. ")")
  t.eq(status_of(api:get_training_data(1))[names[2]], nil, "entry gone")
end)

t.test("POST never replaces another host's object at the next index", function()
  -- actor 1 now has _0.._3 everywhere; another host wrote _4 and _5 to S3
  local theirs = {}
  for i = 4, 5 do
    local fn = "0001_all_synced_" .. i .. ".jpg"
    t.write(tmp .. "/other.jpg", jpeg(600 + i, 40 + i))
    theirs[fn] = core.md5(t.read(tmp .. "/other.jpg"))
    assert(s3:put(tmp .. "/other.jpg", tdm.s3.key_for(cfg, "0001_all_synced", fn)))
  end
  t.write(tmp .. "/mine.jpg", jpeg(900, 7))
  local code, body = curl(AUTH .. " -F " .. q("f=@" .. tmp .. "/mine.jpg") .. " "
                          .. q(base .. "/api/actors/1/training-data"))
  t.eq(code, 201, "upload (" .. body .. ")")
  t.eq(require("cjson").decode(body).files[1].filename, "0001_all_synced_6.jpg",
       "named past the S3 listing")
  for fn, md5 in pairs(theirs) do
    local h = assert(s3:head(tdm.s3.key_for(cfg, "0001_all_synced", fn)))
    t.eq(h.md5, md5, fn .. " untouched")
  end
end)

t.test("8 concurrent uploads to one actor: distinct names, all recorded", function()
  local cmds = {}
  for i = 1, 8 do
    t.write(tmp .. "/c" .. i .. ".jpg", jpeg(1000 + i, 10 + i))
    cmds[#cmds + 1] = string.format("curl -s -m 30 %s -F %s %s > %s &", AUTH,
      q("f=@" .. tmp .. "/c" .. i .. ".jpg"), q(base .. "/api/actors/6/training-data"),
      q(tmp .. "/c" .. i .. ".out"))
  end
  os.execute(table.concat(cmds, "\n") .. "\nwait")
  local cjson = require "cjson"
  local names = {}
  for i = 1, 8 do
    local ok, res = pcall(cjson.decode, t.read(tmp .. "/c" .. i .. ".out") or "")
    t.ok(ok and res.uploaded_count == 1, "upload " .. i .. ": " .. tostring(t.read(tmp .. "/c" .. i .. ".out")))
    local n = res.files[1].filename
    t.eq(names[n], nil, "name " .. n .. " given once")
    names[n] = core.md5(t.read(tmp .. "/c" .. i .. ".jpg"))
  end
  local doc = assert(api:get_training_data(6))
  local recorded = {}
  for _, img in ipairs(doc.training_images) do recorded[img.filename] = img end
  for n, md5 in pairs(names) do
    t.ok(recorded[n], n .. " in the manifest")
    t.eq(recorded[n].status, "synced", n .. " status")
    t.eq(recorded[n].md5_hash, md5, n .. " md5")
  end
end)

t.test("hostile requests get their status and change nothing", function()
  t.write(tmp .. "/ok.jpg", jpeg(500, 2))
  t.write(tmp .. "/note.txt", "just text, not an image\n")
  t.write(tmp .. "/big.jpg", jpeg(MAX + 200000, 3))
  t.write(tmp .. "/trunc", "--XX\r\nContent-Disposition: form-data; name=\"f\"; "
    .. "filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\255\216\255\224abc")
  local coll = base .. "/api/actors/1/training-data"
  local item = coll .. "/0001_all_synced_0.jpg"
  local cases = {
    { "dot-dot segment", 400, "--path-as-is -X DELETE " .. AUTH .. " " .. q(coll .. "/..") },
    { "encoded dot-dot", 400, "-X DELETE " .. AUTH .. " " .. q(coll .. "/%2e%2e") },
    { "encoded traversal", 400, "-X DELETE " .. AUTH .. " " .. q(coll .. "/..%2f..%2f0001_manifest.json") },
    { "encoded slash", 400, "-X DELETE " .. AUTH .. " " .. q(coll .. "/a%2fb.jpg") },
    { "NUL in filename", 400, "-X DELETE " .. AUTH .. " " .. q(coll .. "/0001_all_synced_0.jpg%00.jpg") },
    { "NUL in id", 400, q(base .. "/api/actors/1%00/training-data") },
    { "dot-dot id", 400, "--path-as-is " .. q(base .. "/api/actors/../training-data") },
    { "absurdly long id", 400, q(base .. "/api/actors/" .. string.rep("9", 2000) .. "/training-data") },
    { "non-numeric id", 400, q(base .. "/api/actors/abc/training-data") },
    { "negative id", 400, q(base .. "/api/actors/-1/training-data") },
    { "unknown actor", 404, q(base .. "/api/actors/9999/training-data") },
    { "unknown file", 404, "-X DELETE " .. AUTH .. " " .. q(coll .. "/0001_all_synced_77.jpg") },
    { "unknown route", 404, q(base .. "/api/nope") },
    { "PUT", 405, "-X PUT " .. AUTH .. " " .. q(coll) },
    { "GET on an item", 405, q(item) },
    { "1 GB Content-Length", 413, AUTH .. " -H 'Content-Type: multipart/form-data; boundary=XX' "
      .. "-H 'Content-Length: 1073741824' -X POST " .. q(coll) },
    { "file over the limit (streamed)", 413, AUTH .. " -F " .. q("f=@" .. tmp .. "/big.jpg") .. " " .. q(coll) },
    { "truncated multipart", 400, AUTH .. " -H 'Content-Type: multipart/form-data; boundary=XX' "
      .. "--data-binary " .. q("@" .. tmp .. "/trunc") .. " " .. q(coll) },
    { "non-image", 415, AUTH .. " -F " .. q("f=@" .. tmp .. "/note.txt") .. " " .. q(coll) },
    -- a web page of another origin, even with the token in hand
    { "cross-site upload", 403, AUTH .. " -H 'Origin: http://evil.example' -F "
      .. q("f=@" .. tmp .. "/ok.jpg") .. " " .. q(coll) },
    { "cross-site delete", 403, AUTH .. " -H 'Sec-Fetch-Site: cross-site' -X DELETE "
      .. q(item .. "?s3=true") },
    { "rebound Host", 403, "-H 'Host: evil.example' " .. q(coll) },
    { "image + non-image", 415, AUTH .. " -F " .. q("f=@" .. tmp .. "/ok.jpg")
      .. " -F " .. q("g=@" .. tmp .. "/note.txt") .. " " .. q(coll) },
    { "no files", 400, AUTH .. " -F a=b " .. q(coll) },
    { "POST without token", 401, "-F " .. q("f=@" .. tmp .. "/ok.jpg") .. " " .. q(coll) },
    { "POST with wrong token", 401, "-H 'Authorization: Bearer wrong' -F "
      .. q("f=@" .. tmp .. "/ok.jpg") .. " " .. q(coll) },
    { "DELETE without token", 401, "-X DELETE " .. q(item .. "?s3=true") },
    { "DELETE with wrong token", 401, "-X DELETE -H " .. q("Authorization: Bearer " .. TOKEN .. "x")
      .. " " .. q(item .. "?s3=true") },
  }
  local before = snapshot()
  -- all at once (independent requests; one curl each)
  local script = {}
  for i, c in ipairs(cases) do
    script[#script + 1] = string.format(
      "curl -s -m 20 -o %s -w '%%{http_code}' %s > %s &", q(tmp .. "/h" .. i .. ".body"),
      c[3], q(tmp .. "/h" .. i .. ".code"))
  end
  os.execute(table.concat(script, "\n") .. "\nwait")
  for i, c in ipairs(cases) do
    local code = tonumber(t.read(tmp .. "/h" .. i .. ".code") or "") or 0
    local body = t.read(tmp .. "/h" .. i .. ".body") or ""
    t.eq(code, c[2], c[1] .. " status (" .. body .. ")")
    if code ~= 414 then
      t.ok(body:match('^{"error": "[^"]*"}\n?$'), c[1] .. ": JSON error body, got " .. body)
      t.ok(not body:find(data_root, 1, true) and not body:find("traceback")
           and not body:find(TOKEN, 1, true), c[1] .. ": leaks nothing")
    end
  end
  -- a big body that stops after a few MB (4 of 8 MB sent, then closed)
  local sent = sh(PY .. " - " .. q(base) .. " <<'EOF'\n"
    .. "import socket, sys, urllib.parse\n"
    .. "u = urllib.parse.urlparse(sys.argv[1])\n"
    .. "s = socket.create_connection((u.hostname, u.port))\n"
    .. "s.sendall(b'POST /api/actors/1/training-data HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n"
    .. "Authorization: Bearer " .. TOKEN .. "\\r\\n"
    .. "Content-Type: image/jpeg\\r\\nContent-Length: 8388608\\r\\n\\r\\n')\n"
    .. "n = 0\n"
    .. "chunk = b'\\xff\\xd8\\xff' + b'x' * 65533\n"
    .. "try:\n"
    .. "    for i in range(64):\n"
    .. "        s.sendall(chunk); n += len(chunk)\n"
    .. "except OSError:\n"
    .. "    pass\n"
    .. "s.close()\n"
    .. "print(n)\n"
    .. "EOF")
  t.ok(tonumber(sent) and tonumber(sent) > MAX, "streamed more than the limit: " .. sent)
  os.execute("sleep 0.3")
  t.eq(e2e.snapdiff(before, snapshot()), "", "data root and bucket unchanged")
end)

t.test("access log: one line a request, no headers, no token", function()
  local text = t.read(log)
  t.ok(text:find("GET /api/actors/1/training%-data 200 %d+ [%d.]+ms"), "GET line")
  t.ok(text:find("DELETE /api/actors/1/training%-data/[^ ]+ 401 %d+"), "401 line")
  t.ok(not text:find(TOKEN, 1, true), "token never logged")
  t.ok(not text:lower():find("authorization"), "headers never logged")
end)

t.test("S3 unreachable -> 503, nothing changed", function()
  local port = e2e.free_port()
  local b2, pid2 = serve("AWS_ENDPOINT_URL=http://127.0.0.1:" .. port, "down")
  t.write(tmp .. "/ok.jpg", jpeg(500, 4))
  local before = snapshot()
  local code, body = curl(AUTH .. " -F " .. q("f=@" .. tmp .. "/ok.jpg") .. " "
                          .. q(b2 .. "/api/actors/1/training-data"))
  t.eq(code, 503, "upload with S3 down (" .. body .. ")")
  code, body = curl(AUTH .. " -X DELETE " .. q(b2 .. "/api/actors/3/training-data/0003_s3_only_0.jpg?s3=true"))
  t.eq(code, 503, "delete from S3 with S3 down (" .. body .. ")")
  code = curl(q(b2 .. "/api/actors/1/training-data"))
  t.eq(code, 200, "GET from the manifest still works")
  code, body = curl(q(b2 .. "/api/actors/12/training-data"))
  t.eq(code, 503, "GET of an actor to look up in S3 (" .. body .. ")")
  t.eq(e2e.snapdiff(before, snapshot()), "", "nothing changed")
  os.execute("kill -TERM " .. pid2)
end)

t.test("50 concurrent clients for 2 s: no errors, all 2xx", function()
  local out = sh("wrk -t 2 -c 50 -d 2s --latency " .. q(base .. "/api/actors/11/training-data") .. " 2>&1")
  local reqs = tonumber(out:match("(%d+) requests in"))
  t.ok(reqs and reqs > 0, "requests made: " .. out)
  t.ok(not out:find("Non%-2xx"), "no non-2xx: " .. out)
  t.ok(not out:find("Socket errors"), "no socket errors: " .. out)
end)

t.test("SIGTERM: exit 0", function()
  os.execute("kill -TERM " .. pid)
  local rc
  for _ = 1, 200 do
    rc = (t.read(tmp .. "/main.rc") or ""):match("%d+")
    if rc then break end
    os.execute("sleep 0.05")
  end
  t.eq(rc, "0", "exit status after SIGTERM")
  t.ok(t.read(log):find("stopped"), "stop logged")
end)

for _, p in ipairs(servers) do os.execute("kill -TERM " .. p .. " 2>/dev/null") end
if t.failed > 0 or os.getenv("TDM_API_TEST_LOGS") then
  for _, n in ipairs({ "main", "down" }) do
    print("--- server log " .. n .. " (tail) ---")
    print((sh("grep -v ' 200 ' " .. q(tmp .. "/" .. n .. ".log") .. " | tail -n 60 2>&1")))
  end
end
return t.done()
