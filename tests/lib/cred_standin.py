#!/usr/bin/env python3
"""cred_standin.py -- loopback stand-ins for the AWS credential services
tdm's credential chain calls, for tests/e2e/test_credentials_chain.sh:
EC2 instance metadata (IMDSv2), the container credentials endpoint, STS
(AssumeRole, AssumeRoleWithWebIdentity) and the SSO portal
(GetRoleCredentials), all on one port. tdm and botocore are pointed at it
with the same settings and must resolve the same access key.

Keys are derived from what was asked (the role, the source key that
signed an AssumeRole, the web identity token), so two clients asking the
same thing get the same key, and a client that used the wrong source gets
a different one. With --rotate every issue is new (refresh tests).

With --upstream URL, any other request is an S3 request: it is refused
with 403 ExpiredToken when signed with a key this stand-in issued that has
expired, else forwarded to the upstream server (s3rver, which checks the
key id but not the signature: --upstream-key) and relayed.

As an HTTPS proxy (HTTPS_PROXY) it logs "connect HOST:PORT" and refuses
the tunnel: tests see which AWS endpoint a client chose without a network.

Every request is appended to --log as one line ("imds-creds", "sts
AssumeRole role=... source=AK", "s3 GET /bucket/key AK", ...).
Secrets handed out all start with STANDINsecret / STANDINtoken, so a
test can check none of them is ever printed.
"""
import argparse
import datetime
import hashlib
import http.client
import http.server
import itertools
import json
import re
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--ttl", type=int, default=3600)
ap.add_argument("--rotate", action="store_true")
ap.add_argument("--upstream")
ap.add_argument("--upstream-key", help="the access key id the upstream "
                "knows (s3rver checks the id, not the signature): forwarded "
                "requests name it instead of the stand-in's")
ap.add_argument("--container-token")
ap.add_argument("--sso-token")
args = ap.parse_args()

LOCK = threading.Lock()
COUNTER = itertools.count(1)
ISSUED = {}                     # access key -> expiry (epoch seconds)
IMDS_TOKEN = "STANDINimdsSESSION"


def log(line):
    with LOCK, open(args.log, "a") as f:
        f.write(line + "\n")


def issue(kind, seed):
    """A key for (kind, seed): deterministic unless --rotate."""
    if args.rotate:
        seed = "%s#%d" % (seed, next(COUNTER))
    h = hashlib.sha1(("%s|%s" % (kind, seed)).encode()).hexdigest().upper()
    ak = "ASIA" + kind + h[:12]
    exp = int(time.time()) + args.ttl
    with LOCK:
        ISSUED[ak] = exp
    iso = datetime.datetime.fromtimestamp(exp, datetime.timezone.utc)
    return {"ak": ak, "sk": "STANDINsecret" + h[12:28],
            "token": "STANDINtoken" + h[:20], "exp": exp,
            "iso": iso.strftime("%Y-%m-%dT%H:%M:%SZ")}


def sigv4_key(auth):
    m = re.search(r"Credential=([^/,]+)/", auth or "")
    return m.group(1) if m else ""


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def path_only(self):
        # a proxied request names the whole URL
        u = urllib.parse.urlsplit(self.path)
        return u.path, urllib.parse.parse_qs(u.query), u.netloc

    def do_PUT(self):
        path, _, _ = self.path_only()
        if path == "/latest/api/token":
            if not self.headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(400, "missing ttl", "text/plain")
            log("imds-token")
            return self.reply(200, IMDS_TOKEN, "text/plain")
        return self.s3()

    def do_GET(self):
        path, q, netloc = self.path_only()
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("x-aws-ec2-metadata-token") != IMDS_TOKEN:
                return self.reply(401, "", "text/plain")
            role = path[len("/latest/meta-data/iam/security-credentials/"):]
            if not role:
                log("imds-role")
                return self.reply(200, "tdm-test-role", "text/plain")
            c = issue("IMDS", role)
            log("imds-creds %s" % c["ak"])
            return self.reply(200, json.dumps({
                "Code": "Success", "LastUpdated": c["iso"],
                "Type": "AWS-HMAC", "AccessKeyId": c["ak"],
                "SecretAccessKey": c["sk"], "Token": c["token"],
                "Expiration": c["iso"]}))
        if path.startswith("/container/"):
            if args.container_token and \
               self.headers.get("Authorization") != args.container_token:
                log("container-refused")
                return self.reply(401, "{}")
            c = issue("ECS", path + netloc)
            log("container-creds %s %s" % (netloc or "-", c["ak"]))
            return self.reply(200, json.dumps({
                "AccessKeyId": c["ak"], "SecretAccessKey": c["sk"],
                "Token": c["token"], "Expiration": c["iso"],
                "RoleArn": "arn:aws:iam::123456789012:role/ecs"}))
        if path == "/federation/credentials":
            if args.sso_token and \
               self.headers.get("x-amz-sso_bearer_token") != args.sso_token:
                log("sso-refused")
                return self.reply(401, '{"message":"Session token not found or invalid"}')
            role = q.get("role_name", [""])[0]
            acct = q.get("account_id", [""])[0]
            c = issue("SSO", role + "@" + acct)
            log("sso role=%s account=%s %s" % (role, acct, c["ak"]))
            return self.reply(200, json.dumps({"roleCredentials": {
                "accessKeyId": c["ak"], "secretAccessKey": c["sk"],
                "sessionToken": c["token"],
                "expiration": c["exp"] * 1000}}))
        return self.s3()

    def do_POST(self):
        raw = self.body()
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
        action = form.get("Action", [""])[0]
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
            return self.s3(raw)
        role = form.get("RoleArn", [""])[0]
        session = form.get("RoleSessionName", [""])[0]
        if action == "AssumeRole":
            src = sigv4_key(self.headers.get("Authorization"))
            if not src:
                return self.sts_error(403, "MissingAuthenticationToken",
                                      "Request is missing Authentication Token")
            seed = role + "|" + src
            note = "source=%s" % src
            kind = "ROLE"
        else:
            tok = form.get("WebIdentityToken", [""])[0]
            if not tok:
                return self.sts_error(400, "MissingParameter",
                                      "WebIdentityToken is required")
            seed = role + "|" + tok
            note = "token=%d-bytes" % len(tok)
            kind = "WEBI"
        if role.endswith(":role/denied"):
            log("sts %s role=%s refused" % (action, role))
            return self.sts_error(403, "AccessDenied", "User is not "
                                  "authorized to perform: sts:%s on "
                                  "resource: %s" % (action, role))
        c = issue(kind, seed)
        log("sts %s role=%s %s session=%s ext=%s %s" % (
            action, role, note, session, form.get("ExternalId", ["-"])[0],
            c["ak"]))
        xml = ("<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
               "<%sResult><Credentials><AccessKeyId>%s</AccessKeyId>"
               "<SecretAccessKey>%s</SecretAccessKey>"
               "<SessionToken>%s</SessionToken>"
               "<Expiration>%s</Expiration></Credentials>"
               "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>X:%s</AssumedRoleId>"
               "</AssumedRoleUser></%sResult>"
               "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
               "</%sResponse>") % (action, action, c["ak"], c["sk"],
                                   c["token"], c["iso"], role, session,
                                   session, action, action)
        return self.reply(200, xml, "text/xml")

    def sts_error(self, code, ecode, msg):
        return self.reply(code, "<ErrorResponse><Error><Type>Sender</Type>"
                          "<Code>%s</Code><Message>%s</Message></Error>"
                          "<RequestId>1</RequestId></ErrorResponse>"
                          % (ecode, msg), "text/xml")

    def do_CONNECT(self):
        # as an HTTPS proxy: record which host the client chose, refuse
        log("connect %s" % self.path)
        return self.reply(403, "", "text/plain")

    def do_HEAD(self):
        return self.s3()

    def do_DELETE(self):
        return self.s3()

    def s3(self, raw=None):
        if not args.upstream:
            return self.reply(404, "{}")
        if raw is None:
            raw = self.body()
        ak = sigv4_key(self.headers.get("Authorization"))
        with LOCK:
            exp = ISSUED.get(ak)
        if exp is not None and time.time() >= exp:
            log("s3 %s %s %s expired" % (self.command, self.path, ak))
            return self.reply(403, "<Error><Code>ExpiredToken</Code><Message>"
                              "The provided token has expired.</Message></Error>",
                              "application/xml")
        log("s3 %s %s %s" % (self.command, self.path, ak))
        u = urllib.parse.urlsplit(args.upstream)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("connection", "content-length")}
        if args.upstream_key and "Authorization" in hdrs:
            hdrs["Authorization"] = hdrs["Authorization"].replace(
                "Credential=%s/" % ak, "Credential=%s/" % args.upstream_key)
        conn.request(self.command, self.path, body=raw, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding",
                                 "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(args.port_file + ".tmp", args.port_file)
srv.serve_forever()
