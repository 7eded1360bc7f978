#!/usr/bin/env python3
"""tests/lib/s3_flaky.py -- a tiny misbehaving S3 look-alike for retry tests.

Listens on 127.0.0.1 (free port), prints "PORT PID" on its first line
(with `--tls CERT KEY`: HTTPS with that certificate), and
serves object requests whose key says how to misbehave:

  /BUCKET/MODE-N-ANYTHING   fail the first N requests of this path with
                            MODE, then answer like S3

  MODE: e503   503 + <Error><Code>SlowDown</Code> XML
        e500   500 + InternalError XML
        e429   429 + "Retry-After: 1", plain-text body
        html   502 + an HTML page (not S3 XML)
        reset  close the connection without answering
        trunc  200 with Content-Length of the full body, half of it sent
        e403   403 SignatureDoesNotMatch (always, N ignored)
        slow   200, headers and 1 byte, then a 60 s stall (always)
        ok     answer at once
        mpfail multipart: initiate works, every part upload gets a 500,
               abort (DELETE ?uploadId) is answered 204

A good GET answers "payload of PATH" with its MD5 as ETag; a good PUT
answers the MD5 of what it received as ETag. GET /__stats returns
"PATH COUNT" lines ("METHOD:PATH COUNT" too). Stops on SIGTERM or when its parent exits.
"""
import hashlib
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {}
lock = threading.Lock()


def xml_error(code, msg):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message><RequestId>FLAKY0001</RequestId></Error>'
            % (code, msg)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        if path == "/__stats":
            with lock:
                body = "".join("%s %d\n" % kv for kv in sorted(counts.items()))
            return self.send(200, body.encode())
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        with lock:
            counts[path] = counts.get(path, 0) + 1
            mkey = self.command + ":" + path
            counts[mkey] = counts.get(mkey, 0) + 1
            n = counts[path]
        key = path.rsplit("/", 1)[-1]
        parts = key.split("-", 2)
        mode = parts[0]
        fails = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        body = b"payload of " + path.encode()
        if mode == "e403":
            return self.send(403, xml_error(
                "SignatureDoesNotMatch", "The request signature we calculated "
                "does not match the signature you provided."),
                [("Content-Type", "application/xml")])
        if mode == "mpfail":
            if self.command == "POST" and "uploads" in self.path:
                return self.send(200, b"<InitiateMultipartUploadResult>"
                                 b"<UploadId>UPLOAD1</UploadId>"
                                 b"</InitiateMultipartUploadResult>")
            if self.command == "PUT":
                return self.send(500, xml_error("InternalError", "part "
                                                "failed"))
            if self.command == "DELETE":
                return self.send(204)
        if mode == "slow" and self.command == "GET":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"%s"' % hashlib.md5(body).hexdigest())
            self.end_headers()
            self.wfile.write(body[:1])
            self.wfile.flush()
            time.sleep(60)
            return
        if n <= fails:
            if mode == "e503":
                return self.send(503, xml_error("SlowDown", "Please reduce "
                                                "your request rate."))
            if mode == "e500":
                return self.send(500, xml_error("InternalError", "We "
                                                "encountered an internal "
                                                "error."))
            if mode == "e429":
                return self.send(429, b"Too Many Requests\n",
                                 [("Retry-After", "1")])
            if mode == "html":
                return self.send(502, b"<html><body>Bad Gateway</body>"
                                 b"</html>\n", [("Content-Type", "text/html")])
            if mode == "reset":
                self.close_connection = True
                return
            if mode == "trunc" and self.command == "GET":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"%s"' %
                                 hashlib.md5(body).hexdigest())
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
        if self.command == "PUT":
            return self.send(200, b"", [("ETag", '"%s"' %
                                         hashlib.md5(data).hexdigest())])
        if self.command == "DELETE":
            return self.send(204)
        return self.send(200, body, [("ETag", '"%s"' %
                                      hashlib.md5(body).hexdigest())])

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = handle_any


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # clients that hang up on purpose (aborts, timeouts)


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("%d %d" % (srv.server_address[1], os.getpid()), flush=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    parent = os.getppid()
    try:
        while os.getppid() == parent:   # stop when the test that ran us dies
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
