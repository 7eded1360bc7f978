#!/usr/bin/python3
"""sigv4_botocore.py -- botocore as the SigV4 oracle for tdm.

Generates COUNT random S3 requests (seeded, so a failure reproduces):
awkward keys (spaces, unicode, + = ~ ! * ' ( ) $ & ...), path- and
virtual-hosted style, query parameters (repeated names, empty values),
empty and non-empty bodies, UNSIGNED-PAYLOAD, session tokens, extra
headers (mixed case, runs of spaces, repeated names), and presigned GETs.
Each is signed by botocore's S3SigV4Auth / S3SigV4QueryAuth at a fixed
timestamp, and written as one JSON line:

  {"n": i, "req": {...tdm request table...}, "canonical": "...",
   "string_to_sign": "...", "signature": "...",
   "authorization": "..." | "url": "..."}

The "req" object is exactly what core.sigv4_sign / sigv4_debug /
sigv4_presign take, so the Lua side needs no translation.

Run with Debian's /usr/bin/python3 (python3-botocore):
  /usr/bin/python3 tests/oracle/sigv4_botocore.py [COUNT [SEED]]
"""
import calendar
import datetime
import hashlib
import json
import random
import sys
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "-_.~ +=!*'()$&,:;@?#[]%/^`{}|\"<>\\"
)
UNICODE = ["é", "ü", "日本", "😀", "Ω", "ß", "\u00a0", "中文"]
HOSTS = [
    "story-boards-assets.s3.us-west-1.amazonaws.com",
    "127.0.0.1:4568",
    "localhost:9000",
    "s3.amazonaws.com",
    "examplebucket.s3.amazonaws.com",
]
REGIONS = ["us-east-1", "us-west-1", "eu-central-1", "ap-southeast-2"]
QUERY_NAMES = [
    "acl", "list-type", "prefix", "continuation-token", "max-keys",
    "delete", "uploadId", "partNumber", "uploads", "start-after",
    "x y", "a+b", "ümlaut", "tagging", "versionId",
]
HEADER_NAMES = [
    "Range", "Content-MD5", "Content-Type", "x-amz-meta-md5",
    "X-Amz-Meta-Note", "x-amz-storage-class", "Cache-Control",
    "If-None-Match", "x-amz-acl", "Content-Length",
]
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def rand_text(rng, alphabet, lo, hi, unicode_p=0.0):
    out = []
    for _ in range(rng.randint(lo, hi)):
        if unicode_p and rng.random() < unicode_p:
            out.append(rng.choice(UNICODE))
        else:
            out.append(rng.choice(alphabet))
    return "".join(out)


def rand_key(rng):
    parts = [rand_text(rng, KEY_CHARS, 1, 12, 0.15)
             for _ in range(rng.randint(1, 3))]
    key = "/".join(parts)
    if rng.random() < 0.1:
        key += "/"
    return key


def rand_header_value(rng):
    v = rand_text(rng, KEY_CHARS.replace("/", "") + "  \t", 0, 20)
    if rng.random() < 0.3:
        v = "  " + v + " \t "
    return v


def make_case(rng, n):
    presign = rng.random() < 0.25
    host = rng.choice(HOSTS)
    key = rand_key(rng)
    path = "/" + key
    if rng.random() < 0.4:
        path = "/story-boards-assets/" + key  # path-style
    if rng.random() < 0.05:
        path = "/"
    method = "GET" if presign and rng.random() < 0.7 else rng.choice(
        ["GET", "PUT", "HEAD", "DELETE", "POST"])
    token = None
    if rng.random() < 0.35:
        token = rand_text(rng, "ABCDEFabcdef0123456789/+=", 20, 300)
    creds = {
        "access_key": "AKIA" + rand_text(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16),
        "secret_key": rand_text(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40, 40),
        "session_token": token or "",
    }
    when = rng.randint(1262304000, 1893456000)  # 2010 .. 2030
    region = rng.choice(REGIONS)

    query = []
    used = set()
    for _ in range(rng.choice([0, 0, 1, 2, 3, 4])):
        name = rng.choice(QUERY_NAMES)
        if presign and name in used:
            continue
        used.add(name)
        value = "" if rng.random() < 0.25 else rand_text(
            rng, KEY_CHARS, 1, 15, 0.1)
        query.append([name, value])
        if not presign and rng.random() < 0.15:
            query.append([name, rand_text(rng, KEY_CHARS, 0, 6)])

    headers = []
    if not presign:
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            name = rng.choice(HEADER_NAMES)
            if rng.random() < 0.3:
                name = name.upper() if rng.random() < 0.5 else name.lower()
            headers.append([name, rand_header_value(rng)])
        if headers and rng.random() < 0.15:
            headers.append([headers[0][0].lower(), rand_header_value(rng)])

    body = b""
    if not presign and rng.random() < 0.5:
        body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    payload = hashlib.sha256(body).hexdigest()
    if not presign and rng.random() < 0.15:
        payload = "UNSIGNED-PAYLOAD"

    req = {
        "method": method, "host": host, "path": path, "query": query,
        "headers": headers, "payload_hash": payload, "region": region,
        "service": "s3", "when": when, "credentials": creds,
    }
    if presign:
        req["presign"] = True
        req["expires"] = rng.choice([1, 60, 3600, 86400, 604800])
        del req["payload_hash"]
    return req, body, token


def sign_with_botocore(req, body, token):
    creds = Credentials(req["credentials"]["access_key"],
                        req["credentials"]["secret_key"], token)
    ts = datetime.datetime.utcfromtimestamp(req["when"]).strftime(
        "%Y%m%dT%H%M%SZ")
    assert calendar.timegm(
        datetime.datetime.strptime(ts, "%Y%m%dT%H%M%SZ").timetuple()
    ) == req["when"]
    url = "https://" + req["host"] + quote(req["path"], safe="/~")
    if req.get("presign"):
        auth = S3SigV4QueryAuth(creds, "s3", req["region"],
                                expires=req["expires"])
        areq = AWSRequest(method=req["method"], url=url)
        areq.params = {k: v for k, v in req["query"]}
    else:
        auth = S3SigV4Auth(creds, "s3", req["region"])
        areq = AWSRequest(method=req["method"], url=url, data=body)
        for name, value in req["headers"]:
            areq.headers[name] = value  # appends: repeated names kept
        areq.params = [tuple(p) for p in req["query"]]
    areq.context["timestamp"] = ts
    auth._modify_request_before_signing(areq)
    if not req.get("presign") and req["payload_hash"] == "UNSIGNED-PAYLOAD":
        del areq.headers["X-Amz-Content-SHA256"]
        areq.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    canonical = auth.canonical_request(areq)
    sts = auth.string_to_sign(areq, canonical)
    sig = auth.signature(sts, areq)
    auth._inject_signature_to_request(areq, sig)
    out = {"canonical": canonical, "string_to_sign": sts, "signature": sig}
    if req.get("presign"):
        out["url"] = areq.url
    else:
        out["authorization"] = areq.headers["Authorization"]
    return out


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20130524
    rng = random.Random(seed)
    for n in range(count):
        req, body, token = make_case(rng, n)
        out = sign_with_botocore(req, body, token)
        out["n"] = n
        out["req"] = req
        sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
