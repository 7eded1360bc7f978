#!/usr/bin/env python3
"""redump.py FILE... -- for each file written by tdm, check that Python
reads it and json.dumps(obj, indent=2) gives back the very same bytes
(so tdm wrote what Python would, and the data survived). Prints one line
per mismatch and "N ok, M bad" last."""
import json
import sys

ok = bad = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        again = json.dumps(json.loads(raw.decode("ascii")), indent=2)
    except Exception as e:  # noqa: BLE001 -- report any failure
        print("%s: python cannot read it: %s" % (path, e))
        bad += 1
        continue
    if again.encode("ascii") != raw:
        print("%s: python re-dumps different bytes" % path)
        bad += 1
    else:
        ok += 1
print("%d ok, %d bad" % (ok, bad))
