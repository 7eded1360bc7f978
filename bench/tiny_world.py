#!/usr/bin/env python3
"""bench/tiny_world.py -- many tiny (or empty) objects, fast, for the
latency and key-count benchmarks.

  bench/tiny_world.py --actors N [--first 1] [--images 17] [--size BYTES]
                      [--store DIR --prefix P] [--data-root D]

Actor names as bench/gen_dataset.py makes them. For every image
{actor}_{i}.jpg, with --store: writes the object straight into s3rver's
store directory (the object file, its .md5 and its metadata file, as
s3rver 3.7.1 itself writes them: one PUT each would take minutes for
100,000s of keys and measure nothing we report); with --data-root: writes
the same bytes to D/actors/{actor}/training_data/. --size 0 gives empty
objects and files (their MD5 is d41d8cd98f00b204e9800998ecf8427e); a
larger size gives distinct bytes per image. Existing files are rewritten.
The listing and every transfer still go through the server.

Prints "actors files bytes" when done.
"""
import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_dataset import actor_name  # noqa: E402

META = '{\n  "content-type": "binary/octet-stream"\n}'


def payload(seed, name, i, size):
    if size == 0:
        return b""
    return hashlib.shake_128(f"{seed}:{name}:{i}".encode()).digest(size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--actors", type=int, required=True)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--images", type=int, default=17)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--seed", default="tdm-bench-1")
    ap.add_argument("--store")
    ap.add_argument("--prefix", default="system_actors/training_data")
    ap.add_argument("--data-root")
    a = ap.parse_args()
    if not a.store and not a.data_root:
        ap.error("give --store, --data-root or both")
    files = total = 0
    for actor_id in range(a.first, a.first + a.actors):
        name = actor_name(a.seed, actor_id)
        sdir = ddir = None
        if a.store:
            sdir = os.path.join(a.store, a.prefix, name)
            os.makedirs(sdir, exist_ok=True)
        if a.data_root:
            ddir = os.path.join(a.data_root, "actors", name, "training_data")
            os.makedirs(ddir, exist_ok=True)
        for i in range(a.images):
            fn = f"{name}_{i}.jpg"
            data = payload(a.seed, name, i, a.size)
            if sdir:
                p = os.path.join(sdir, fn)
                with open(p + "._S3rver_object", "wb") as f:
                    f.write(data)
                with open(p + "._S3rver_object.md5", "w") as f:
                    f.write(hashlib.md5(data).hexdigest())
                with open(p + "._S3rver_metadata.json", "w") as f:
                    f.write(META)
            if ddir:
                with open(os.path.join(ddir, fn), "wb") as f:
                    f.write(data)
            files += 1
            total += len(data)
    print(a.actors, files, total)


if __name__ == "__main__":
    main()
