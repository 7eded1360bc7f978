#!/usr/bin/env python3
"""botocore_creds.py -- the oracle for tdm's credential chain: botocore's
own resolver reading the environment and files it is given prints
"ACCESS_KEY_ID|method" (botocore's provider name), or "NONE", or
"ERROR|<exception class>". Never the secret.

Debian's botocore (1.29) predates the service-specific endpoint variables
(AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SSO, botocore >= 1.31); the
clients its credential providers create (sts, sso) are given that
variable's endpoint here, which is what a newer botocore does itself.

With arguments, each is a file of NUL-separated VAR=VALUE settings: the
whole environment of one case (python starts once for all of them, which
is most of the cost); one line is printed per file, in order. HOME must
be the same in every case (botocore reads it once, at import).
"""
import os
import sys



def resolve():
    # imported once the case's environment is in place: botocore fixes
    # the SSO token cache directory from HOME at import
    import botocore.session
    s = botocore.session.get_session()
    orig = s.create_client

    def create_client(service_name, *a, **kw):
        ep = os.environ.get("AWS_ENDPOINT_URL_" + service_name.upper())
        if ep and not kw.get("endpoint_url"):
            kw["endpoint_url"] = ep
        return orig(service_name, *a, **kw)

    s.create_client = create_client
    try:
        c = s.get_credentials()
        if c is None:
            return "NONE"
        f = c.get_frozen_credentials()
        return "%s|%s" % (f.access_key, c.method)
    except Exception as e:  # the class names the failure; no secret in it
        return "ERROR|%s" % type(e).__name__


if len(sys.argv) == 1:
    print(resolve())
for case in sys.argv[1:]:
    with open(case, "rb") as f:
        settings = [x.decode() for x in f.read().split(b"\0") if x]
    os.environ.clear()
    os.environ.update(dict(x.split("=", 1) for x in settings))
    print(resolve(), flush=True)
