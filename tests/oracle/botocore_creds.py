#!/usr/bin/env python3
"""botocore_creds.py -- the oracle for tdm's credential chain: botocore's
own resolver reading the environment and files it is given prints
"ACCESS_KEY_ID|method" (botocore's provider name), or "NONE", or
"ERROR|<exception class>". Never the secret.

Debian's botocore (1.29) predates the service-specific endpoint variables
(AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SSO, botocore >= 1.31); the
clients its credential providers create (sts, sso) are given that
variable's endpoint here, which is what a newer botocore does itself.
"""
import os
import sys

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
        print("NONE")
    else:
        f = c.get_frozen_credentials()
        print("%s|%s" % (f.access_key, c.method))
except Exception as e:  # the class names the failure; no secret in it
    print("ERROR|%s" % type(e).__name__)
