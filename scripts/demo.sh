#!/usr/bin/env bash
# scripts/demo.sh -- the main job on a local demonstration: build tdm,
# generate a sample data root, and run tdm on it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)" >/dev/null
DEMO=${TDM_DEMO_DIR:-demo-data}
rm -rf "$DEMO"
for actor in 0001_european_30_male 0002_asian_25_female; do
  dir="$DEMO/actors/$actor/training_data"
  mkdir -p "$dir"
  for i in 0 1 2; do
    head -c $((100000 + i * 1000)) /dev/urandom > "$dir/${actor}_$i.jpg"
  done
done
echo "== hashing the sample tree with tdm"
./tdm-lua md5 "$DEMO"/actors/*/training_data/*.jpg
