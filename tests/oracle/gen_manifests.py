#!/usr/bin/env python3
"""gen_manifests.py DIR N SEED -- write N random manifests (m_*.json) and N
random free-form JSON documents (j_*.json) into DIR, each exactly as
json.dumps(obj, indent=2) writes it. The manifests are valid for tdm
(image filenames, relative local_path, statistics consistent with the
entries), with non-ASCII names, microsecond timestamps, empty lists,
unknown keys at the top level and per entry, and awkward floats."""
import json
import os
import random
import struct
import sys

SPECIAL_FLOATS = [0.1, 1e-05, 1e+16, 123456789.0, 0.0, -0.0, 1.5e-05,
                  1e15, 9999999999999998.0, 5e-324, 1.7976931348623157e308,
                  0.0001, 0.00001234, 2.5, 1729176000.0, 1e22, 1e-7,
                  123456789012345678.0, 0.3, 2.0 / 3.0]
ALPHABET = ("abcxyz_-. 0123456789\"\\/\n\t\r\b\f\x00\x01\x1f\x7f"
            "éüßñ€中文字日本語Ωж\u2028\u2029\ufeff\U0001F600\U00010348")


def rstr(r, n=None, key=False):
    # jansson cannot hold a NUL byte in an object key (a documented limit
    # of tdm's parser), so keys never get one
    n = r.randint(0, 12) if n is None else n
    alphabet = ALPHABET.replace("\x00", "") if key else ALPHABET
    return "".join(r.choice(alphabet) for _ in range(n))


def rfloat(r):
    k = r.random()
    if k < 0.3:
        return r.choice(SPECIAL_FLOATS)
    if k < 0.6:
        while True:
            f = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
            if f == f and f not in (float("inf"), float("-inf")):
                return f
    if k < 0.8:
        return round(r.uniform(0, 1e6), r.randint(0, 7))
    return r.uniform(-1e3, 1e3) * 10 ** r.randint(-30, 30)


def rvalue(r, depth=0):
    k = r.randint(0, 9 if depth < 3 else 5)
    if k == 0: return rstr(r)
    if k == 1: return r.randint(-2**63, 2**63 - 1)
    if k == 2: return rfloat(r)
    if k == 3: return r.choice([True, False, None])
    if k == 4: return r.randint(-1000, 1000)
    if k == 5: return rstr(r, 3)
    if k in (6, 7): return [rvalue(r, depth + 1) for _ in range(r.randint(0, 4))]
    d = {}
    for _ in range(r.randint(0, 4)):
        d[rstr(r, r.randint(1, 6), key=True)] = rvalue(r, depth + 1)
    return d


def fmt_date(ts):
    import datetime
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).replace(tzinfo=None).isoformat(
            timespec="microseconds")


def manifest(r, i):
    aid = "%04d" % r.randint(0, 99999)
    desc = r.choice(["european_30_male", "asian_25_female", "élan_vital",
                     "中文", "x"])
    name = "%s_%s" % (aid, desc)
    entries = []
    names = set()
    for j in range(r.choice([0, 0, 1, 3, 17, r.randint(0, 40)])):
        fn = "%s_%d.%s" % (name, j, r.choice(["jpg", "png", "JPEG", "webp"]))
        if fn in names:
            continue
        names.add(fn)
        size = r.choice([0, 1, 328059, r.randint(0, 10**9)])
        ts = r.choice([1729176000.0, round(r.uniform(0, 2e9), 6),
                       r.uniform(0, 2e9), float(r.randint(0, 2**31))])
        e = {
            "filename": fn,
            "local_path": "data/actors/%s/training_data/%s" % (name, fn),
            "s3_url": "https://story-boards-assets.s3.us-west-1.amazonaws.com/"
                      "system_actors/training_data/%s/%s" % (name, fn),
            "md5_hash": "%032x" % r.getrandbits(128),
            "size_bytes": size,
            "size_mb": round(size / 1048576, 2),
            "modified_timestamp": ts,
            "modified_date": fmt_date(ts),
            "status": r.choice(["synced", "local_only", "s3_only",
                                "out_of_sync", "missing"]),
        }
        if r.random() < 0.2:
            e["x_note_" + rstr(r, 2, key=True)] = rvalue(r, 2)
        if r.random() < 0.1:
            e["width"] = r.randint(1, 4096)
        entries.append(e)
    counts = {s: sum(1 for e in entries if e["status"] == s)
              for s in ["synced", "local_only", "s3_only", "out_of_sync",
                        "missing"]}
    stats = {
        "training_images_count": len(entries),
        "training_data_size_mb": round(sum(e["size_bytes"] for e in entries)
                                       / 1048576, 2),
        "training_synced_count": counts["synced"],
        "training_local_only_count": counts["local_only"],
        "training_s3_only_count": counts["s3_only"],
        "training_out_of_sync_count": counts["out_of_sync"],
    }
    if counts["missing"] or r.random() < 0.5:
        stats["training_missing_count"] = counts["missing"]
    m = {"character_id": aid, "character_name": name,
         "training_data": entries,
         "training_data_updated": fmt_date(r.uniform(0, 2e9)),
         "statistics": stats}
    if r.random() < 0.3:
        m["zz_unknown_" + rstr(r, 3, key=True)] = rvalue(r)
    if r.random() < 0.2:
        m = dict([("schema_version", 1)] + list(m.items()))
    return m


def main():
    out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = random.Random(seed)
    for i in range(n):
        with open(os.path.join(out, "m_%04d.json" % i), "w") as f:
            f.write(json.dumps(manifest(r, i), indent=2))
        with open(os.path.join(out, "j_%04d.json" % i), "w") as f:
            f.write(json.dumps(rvalue(r) if i % 2 else
                               {rstr(r, 3, key=True) + str(k): rvalue(r)
                                for k in range(r.randint(0, 6))}, indent=2))


main()
