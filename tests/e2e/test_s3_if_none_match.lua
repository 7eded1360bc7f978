-- test_s3_if_none_match.lua -- PUT { if_none_match = true }: the upload
-- happens only if the key does not exist yet (If-None-Match: *).
--   * against the harness's s3rver (which ignores the header): the header
--     is signed and accepted, single and multipart, put/transfer/queue;
--   * against a small recording server (python3, below) that refuses any
--     conditional write with S3's 412 PreconditionFailed: the code is
--     "S3_PreconditionFailed", it is not retried, the header goes on the
--     single PUT and on CompleteMultipartUpload (not on the parts), and the
--     refused multipart upload is aborted.
local t = require "t"
local tdm = require "tdm"

local e2e = dofile((os.getenv("TDM_TEST_ROOT") or ".") .. "/tests/lib/e2e.lua")
local PREFIX = e2e.prefix("tdmtest-inm") .. "/"
local dir = t.tmpdir()
local MIB = 1048576
local c = assert(tdm.s3.client(nil, { multipart_threshold = MIB }))
local PY = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

local small = dir .. "/small.jpg"
t.write(small, "small image bytes")
local big = dir .. "/big.bin"
t.write(big, string.rep("0123456789abcdef", 2 * MIB // 16 + 7))

t.test("s3rver: conditional single PUT is signed and stored", function()
  local r, err, code = c:put(small, PREFIX .. "s/a.jpg",
                             { content_type = "image/jpeg",
                               if_none_match = true })
  t.ok(r, "put: " .. tostring(err) .. " " .. tostring(code))
  local h = assert(c:head(PREFIX .. "s/a.jpg"))
  t.eq(h.md5, tdm.md5("small image bytes"), "stored bytes")
end)

t.test("s3rver: conditional multipart PUT completes", function()
  local r, err, code = c:put(big, PREFIX .. "m/big.bin",
                             { if_none_match = true })
  t.ok(r, "put: " .. tostring(err) .. " " .. tostring(code))
  local h = assert(c:head(PREFIX .. "m/big.bin"))
  t.eq(h.size, 2 * MIB + 112, "stored size")
  t.eq(h.metadata.md5, tdm.md5_file(big), "stored MD5 (from the "
       .. "multipart upload's metadata)")
end)

t.test("s3rver: if_none_match on transfer and queue jobs", function()
  local res = c:transfer {
    { op = "put", path = small, key = PREFIX .. "t/1.jpg",
      if_none_match = true },
    { op = "put", path = small, key = PREFIX .. "t/2.jpg",
      if_none_match = false },
  }
  t.eq(res[1].ok, true, "transfer job 1: " .. tostring(res[1].error))
  t.eq(res[2].ok, true, "transfer job 2: " .. tostring(res[2].error))
  local got
  do
    local q <close> = c:queue { on_complete = function(_, r) got = r end }
    q:add { op = "put", path = small, key = PREFIX .. "t/3.jpg",
            if_none_match = true }
    q:wait()
  end
  t.eq(got and got.ok, true, "queue job: " .. tostring(got and got.error))
  local h, herr = c:head(PREFIX .. "t/3.jpg")
  t.ok(h, "queued job stored: " .. tostring(herr))
end)

t.test("a non-boolean if_none_match is refused", function()
  local ok, err = pcall(c.put, c, small, PREFIX .. "x.jpg",
                        { if_none_match = "yes" })
  t.eq(ok, false, "put raised")
  t.ok(tostring(err):find("if_none_match", 1, true), "names it: "
       .. tostring(err))
  ok, err = pcall(c.transfer, c, { { op = "put", path = small,
                                      key = PREFIX .. "x.jpg",
                                      if_none_match = 1 } })
  t.eq(ok, false, "transfer raised")
  t.ok(tostring(err):find("if_none_match", 1, true), "names it: "
       .. tostring(err))
end)

-- A server that records "METHOD path?query inm" for every request and
-- answers any request carrying If-None-Match with 412 PreconditionFailed,
-- everything else as S3 would (enough of it for PUT and multipart).
local SERVER = [[
import hashlib, http.server, sys
log = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, body=b"", etag=None):
        self.send_response(status)
        if etag: self.send_header("ETag", '"%s"' % etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        inm = self.headers.get("If-None-Match")
        log.write("%s %s %s\n" % (self.command, self.path, inm))
        if inm is not None:
            return self.answer(412, b"<?xml version='1.0'?><Error><Code>"
                b"PreconditionFailed</Code><Message>At least one of the "
                b"pre-conditions you specified did not hold</Message>"
                b"<RequestId>R1</RequestId></Error>")
        q = self.path.partition("?")[2]
        if self.command == "POST" and q.startswith("uploads"):
            return self.answer(200, b"<InitiateMultipartUploadResult>"
                b"<UploadId>U1</UploadId></InitiateMultipartUploadResult>")
        if self.command == "POST":
            return self.answer(200, b"<CompleteMultipartUploadResult><ETag>"
                b"&quot;x-1&quot;</ETag></CompleteMultipartUploadResult>")
        if self.command == "DELETE":
            return self.answer(204)
        return self.answer(200, b"", hashlib.md5(body).hexdigest())
    do_PUT = do_POST = do_DELETE = do_GET = do_HEAD = handle_any
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
]]

local function start_server()
  local script, log = dir .. "/inm_server.py", dir .. "/inm.log"
  t.write(script, SERVER)
  t.write(log, "")
  local pf = dir .. "/inm.port"
  os.execute(string.format("%s %q %q > %q 2>/dev/null & echo $! > %q.pid",
                           PY, script, log, pf, pf))
  local port
  for _ = 1, 200 do
    port = tonumber((t.read(pf) or ""):match("%d+"))
    if port then break end
    os.execute("sleep 0.05")
  end
  assert(port, "the recording server did not start")
  local pid = t.read(pf .. ".pid"):match("%d+")
  return port, log, function() os.execute("kill " .. pid) end
end

local function lines(path)
  local out = {}
  for l in (t.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local port, log, stop = start_server()
local rc = assert(tdm.s3.client(
  { endpoint = "http://127.0.0.1:" .. port, bucket = "b" },
  { multipart_threshold = MIB, max_attempts = 3 }))

t.test("412 on a conditional PUT: S3_PreconditionFailed, no retry", function()
  t.write(log, "")
  local r, err, code = rc:put(small, "k/a.jpg", { if_none_match = true })
  t.eq(r, nil, "put refused")
  t.eq(code, "S3_PreconditionFailed", "code (" .. tostring(err) .. ")")
  t.ok(tostring(err):find("k/a.jpg", 1, true), "message names the key: "
       .. tostring(err))
  t.eq(lines(log), { "PUT /b/k/a.jpg *" }, "one request, with the header")
  t.write(log, "")
  t.ok(rc:put(small, "k/a.jpg"), "the same PUT without the option")
  t.eq(lines(log), { "PUT /b/k/a.jpg None" }, "no header without it")
end)

t.test("412 on CompleteMultipartUpload: refused and aborted", function()
  t.write(log, "")
  local res = rc:transfer { { op = "put", path = big, key = "k/big.bin",
                              if_none_match = true } }
  t.eq(res[1].ok, false, "transfer job refused")
  t.eq(res[1].code, "S3_PreconditionFailed", "code: "
       .. tostring(res[1].error))
  t.eq(lines(log), {
    "POST /b/k/big.bin?uploads= None",
    "PUT /b/k/big.bin?partNumber=1&uploadId=U1 None",
    "POST /b/k/big.bin?uploadId=U1 *",
    "DELETE /b/k/big.bin?uploadId=U1 None",
  }, "header on the completion only, then the abort: " .. table.concat(lines(log), " / "))
end)

stop()
return t.done()
