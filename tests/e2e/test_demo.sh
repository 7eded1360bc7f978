#!/usr/bin/env bash
# test_demo.sh -- scripts/demo.sh (the README's first command) runs the
# whole story into a temp dir and ends clean: exit 0, every manifest
# all synced, no legacy response.json left.
set -u
. "$(dirname "$0")/../lib/e2e.sh"
DIR=$tmp
# The harness already installed and built; the demo starts its own s3rver.
TDM_DEMO_DIR=$DIR TDM_DEMO_SKIP_DEPS=1 TDM_DEMO_SKIP_BUILD=1 \
  bash scripts/demo.sh >"$DIR/out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && pass || { fail "demo exit: expected 0, got $rc"; tail -n 30 "$DIR/out"; }
check_grep "demo ends accounted for" 'everything accounted for' cat "$DIR/out"
for step in "sync-manifests" "push" "pull-all --repair" "sync-manifests --prune"; do
  check_grep "demo runs $step" "^\\\$ tdm-lua $step" cat "$DIR/out"
done
if [ -f lua/tdm/commands/migrate.lua ]; then
  check_grep "demo runs migrate" '^\$ tdm-lua migrate' cat "$DIR/out"
  n=$(find "$DIR/data" -name response.json | wc -l)
  [ "$n" -eq 0 ] && pass || fail "legacy response.json left: expected 0, got $n"
fi
if [ -f lua/tdm/commands/audit.lua ]; then
  check_grep "demo runs audit" '^\$ tdm-lua audit' cat "$DIR/out"
fi
# every manifest: all entries synced, statistics say so
bad=$(python3 - "$DIR/data" <<'PY'
import json, glob, sys
bad = []
for p in sorted(glob.glob(sys.argv[1] + '/actor_manifests/*_manifest.json')):
    d = json.load(open(p))
    st = [e['status'] for e in d['training_data']]
    s = d['statistics']
    if any(x != 'synced' for x in st) or s['training_synced_count'] != len(st) \
       or s['training_images_count'] != len(st) or not st:
        bad.append('%s: %s' % (p.rsplit('/', 1)[1], st))
print('; '.join(bad))
PY
)
[ -z "$bad" ] && pass || fail "manifests not all synced: expected none, got $bad"
n=$(ls "$DIR/data/actor_manifests"/*_manifest.json 2>/dev/null | wc -l)
[ "$n" -ge 10 ] && pass || fail "manifests: expected >= 10, got $n"
finish
