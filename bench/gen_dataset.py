#!/usr/bin/env python3
"""bench/gen_dataset.py -- a deterministic benchmark dataset for tdm.

  bench/gen_dataset.py [--actors N] [--images 17] [--seed S] DATA_ROOT
  bench/gen_dataset.py --keys-only --actors N --images K [--prefix P]

Writes N actors x 17 images into DATA_ROOT in tdm's layout:

  DATA_ROOT/actors/{actor_name}/training_data/{actor_name}_{i}.jpg

actor_name is "{id:04d}_{descriptor}" (e.g. 0042_european_30_male), i runs
from 0. Sizes are uniform in [150 KB, 500 KB] (--min-kb/--max-kb); the
bytes are a JPEG SOI/APP0 header, then SHAKE-128 output keyed by (seed,
actor, image), then an EOI marker, so every file is distinct and the same
arguments always give byte-identical trees (and the same MD5s). Existing
files of the right size are kept, so re-running is cheap.

--keys-only prints the S3 keys "{prefix}/{actor_name}/{file}" one per line
and writes nothing (for the zero-byte listing benchmark).

Prints "actors files bytes" on stdout when done.
"""
import argparse
import hashlib
import os
import random
import sys

ORIGINS = ["european", "asian", "african", "latino", "middle_eastern",
           "south_asian", "nordic", "mediterranean"]
GENDERS = ["male", "female"]


def actor_name(seed, actor_id):
    """The deterministic actor name for id `actor_id`."""
    r = random.Random(f"{seed}:name:{actor_id}")
    return "%04d_%s_%d_%s" % (actor_id, r.choice(ORIGINS),
                              r.randrange(18, 71), r.choice(GENDERS))


def image_bytes(seed, name, index, size):
    """`size` bytes that look like a JPEG, unique to (seed, name, index)."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    tail = b"\xff\xd9"
    body = hashlib.shake_128(f"{seed}:{name}:{index}".encode()).digest(
        size - len(head) - len(tail))
    return head + body + tail


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("data_root", nargs="?")
    ap.add_argument("--actors", type=int, default=100)
    ap.add_argument("--first", type=int, default=1, help="first actor id")
    ap.add_argument("--images", type=int, default=17)
    ap.add_argument("--seed", default="tdm-bench-1")
    ap.add_argument("--min-kb", type=int, default=150)
    ap.add_argument("--max-kb", type=int, default=500)
    ap.add_argument("--keys-only", action="store_true")
    ap.add_argument("--prefix", default="system_actors/training_data")
    a = ap.parse_args()
    if not a.keys_only and not a.data_root:
        ap.error("DATA_ROOT is required")

    files = total = 0
    out = sys.stdout
    for actor_id in range(a.first, a.first + a.actors):
        name = actor_name(a.seed, actor_id)
        sizes = random.Random(f"{a.seed}:sizes:{actor_id}")
        if a.keys_only:
            for i in range(a.images):
                out.write(f"{a.prefix}/{name}/{name}_{i}.jpg\n")
            continue
        d = os.path.join(a.data_root, "actors", name, "training_data")
        os.makedirs(d, exist_ok=True)
        for i in range(a.images):
            size = sizes.randint(a.min_kb * 1024, a.max_kb * 1024)
            path = os.path.join(d, f"{name}_{i}.jpg")
            files += 1
            total += size
            try:
                if os.stat(path).st_size == size:
                    continue
            except FileNotFoundError:
                pass
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(image_bytes(a.seed, name, i, size))
            os.replace(tmp, path)
    if not a.keys_only:
        print(a.actors, files, total)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # --keys-only | head
        sys.stderr.close()
        sys.exit(0)
