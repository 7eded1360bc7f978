#!/usr/bin/python3
"""sigv4_verify_server.py -- a tiny in-memory S3 that checks every
signature with botocore, to prove that what tdm signs is what it sends.

s3rver accepts any signature and normalises paths itself, so it cannot
catch a request whose wire form differs from what was signed (a header
value sent differently, a path libcurl rewrote). This server rebuilds each
request exactly as received -- raw path, raw query, the signed headers'
received values, the body -- and recomputes the signature with botocore's
S3SigV4Auth (Authorization header) or S3SigV4QueryAuth (presigned URL),
with the secret given on the command line. A mismatch is answered 403
SignatureDoesNotMatch (as S3 does) and recorded.

Objects live in memory: PUT, GET, HEAD, DELETE, ListObjectsV2 and
DeleteObjects (POST ?delete) with the answers the transport expects.

  /usr/bin/python3 sigv4_verify_server.py SECRET
    prints the port on the first line of stdout, serves until
    GET /__shutdown; GET /__report returns the JSON record:
    {"verified": n, "failed": [{"method", "path", "why"}], "paths": [...]}
"""
import hashlib
import json
import re
import sys
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, parse_qsl
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SECRET = sys.argv[1] if len(sys.argv) > 1 else "S3RVER"
LOCK = threading.Lock()
OBJECTS = {}   # (bucket, key) -> (body, metadata dict)
REPORT = {"verified": 0, "failed": [], "paths": []}
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/"
    r"aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$")


def verify(handler, body):
    """Return None when the request's signature is right, else why not."""
    raw_path, _, raw_query = handler.path.partition("?")
    token = handler.headers.get("x-amz-security-token")
    url = "http://" + handler.headers.get("host", "") + raw_path
    if "X-Amz-Signature=" in raw_query:
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        got = params.get("X-Amz-Signature", "")
        ak, date, region, service, _ = params.get(
            "X-Amz-Credential", "////").split("/", 4)
        token = params.get("X-Amz-Security-Token")
        kept = "&".join(p for p in raw_query.split("&")
                        if not p.startswith("X-Amz-Signature="))
        auth = S3SigV4QueryAuth(Credentials(ak, SECRET, token), service,
                                region, expires=int(params["X-Amz-Expires"]))
        req = AWSRequest(method=handler.command, url=url + "?" + kept)
        req.headers["host"] = handler.headers.get("host", "")
        req.context["timestamp"] = params.get("X-Amz-Date", "")
    else:
        m = AUTH_RE.match(handler.headers.get("authorization", ""))
        if not m:
            return "no or malformed Authorization header"
        ak, date, region, service, signed, got = m.groups()
        sha = handler.headers.get("x-amz-content-sha256", "")
        if sha != "UNSIGNED-PAYLOAD" and sha != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's SHA-256"
        auth = S3SigV4Auth(Credentials(ak, SECRET, token), service, region)
        req = AWSRequest(method=handler.command,
                         url=url + ("?" + raw_query if raw_query else ""),
                         data=body)
        for name in signed.split(";"):
            values = handler.headers.get_all(name)
            if values is None:
                return "signed header %s was not sent" % name
            for v in values:
                req.headers[name] = v
        req.context["timestamp"] = handler.headers.get("x-amz-date", "")
    if req.context["timestamp"][:8] != date:
        return "date in the scope differs from x-amz-date"
    canonical = auth.canonical_request(req)
    sts = auth.string_to_sign(req, canonical)
    want = auth.signature(sts, req)
    if want != got:
        return "signature mismatch; botocore's canonical request:\n" + canonical
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, s3code, message):
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s"
               "</Code><Message>%s</Message><RequestId>verify</RequestId>"
               "</Error>" % (s3code, escape(message)))
        self.reply(code, xml.encode(), {"Content-Type": "application/xml"})

    def handle_any(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/__report":
            with LOCK:
                data = json.dumps(REPORT).encode()
            return self.reply(200, data, {"Content-Type": "application/json"})
        if self.path == "/__shutdown":
            self.reply(200, b"bye")
            threading.Thread(target=self.server.shutdown).start()
            return None
        why = verify(self, body)
        raw_path, _, raw_query = self.path.partition("?")
        with LOCK:
            REPORT["paths"].append(raw_path)
            if why:
                REPORT["failed"].append({"method": self.command,
                                         "path": self.path, "why": why})
            else:
                REPORT["verified"] += 1
        if why:
            return self.error(403, "SignatureDoesNotMatch", why)
        return self.s3(unquote(raw_path), dict(
            parse_qsl(raw_query, keep_blank_values=True)), body)

    def s3(self, path, query, body):
        bucket, _, key = path.lstrip("/").partition("/")
        m = self.command
        if m == "PUT" and key:
            meta = {k: v for k, v in self.headers.items()
                    if k.lower().startswith("x-amz-meta-")}
            with LOCK:
                OBJECTS[(bucket, key)] = (body, meta)
            return self.reply(200, b"", {
                "ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if m in ("GET", "HEAD") and key:
            with LOCK:
                obj = OBJECTS.get((bucket, key))
            if not obj:
                return self.error(404, "NoSuchKey", "no such key")
            headers = {"ETag": '"%s"' % hashlib.md5(obj[0]).hexdigest(),
                       "Last-Modified": formatdate(usegmt=True),
                       "Content-Type": "application/octet-stream"}
            headers.update(obj[1])
            if m == "HEAD":
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(obj[0])))
                self.end_headers()
                return None
            return self.reply(200, obj[0], headers)
        if m == "DELETE" and key:
            with LOCK:
                OBJECTS.pop((bucket, key), None)
            return self.reply(204)
        if m == "GET" and not key:
            prefix = query.get("prefix", "")
            with LOCK:
                keys = sorted((k, b) for (bk, k), (b, _) in OBJECTS.items()
                              if bk == bucket and k.startswith(prefix))
            items = "".join(
                "<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:00.000Z"
                "</LastModified><ETag>&quot;%s&quot;</ETag><Size>%d</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
                % (escape(k), hashlib.md5(b).hexdigest(), len(b))
                for k, b in keys)
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"
                   "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>"
                   "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>%s"
                   "</ListBucketResult>" % (escape(bucket), escape(prefix),
                                            len(keys), items))
            return self.reply(200, xml.encode(),
                              {"Content-Type": "application/xml"})
        if m == "POST" and "delete" in query:
            keys = [unescape_xml(k) for k in
                    re.findall(r"<Key>(.*?)</Key>", body.decode())]
            with LOCK:
                for k in keys:
                    OBJECTS.pop((bucket, k), None)
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult>"
                   + "".join("<Deleted><Key>%s</Key></Deleted>" % escape(k)
                             for k in keys) + "</DeleteResult>")
            return self.reply(200, xml.encode(),
                              {"Content-Type": "application/xml"})
        return self.error(400, "InvalidRequest", "not supported here")

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = handle_any


def unescape_xml(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">")
            .replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
