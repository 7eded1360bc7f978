#!/usr/bin/env bash
# test_manifest_safety.sh -- manifests under concurrent writers, SIGKILL
# and missing write permission:
#   * 8 processes x 50 (open, add_image, save, close) on one actor: all 400
#     entries present, statistics agree;
#   * a save loop killed with SIGKILL at random moments (50 times): the file
#     always parses (python3) and is a complete version (statistics agree
#     with its entries);
#   * no permission to write (run as nobody via setpriv): save fails with a
#     message naming the file, bytes unchanged.
set -u
# tmpfs when there is one: the test is about locks and atomic renames, and
# fsync on a loaded shared disk would make it slow, not stronger.
E2E_FAST=1 . "$(dirname "$0")/../lib/e2e.sh"
TMP=$tmp
ROOT=$(pwd)
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/?.so;;"
ACTOR=0042_european_30_male
export TDM_DATA_ROOT="$TMP/data"
mkdir -p "$TDM_DATA_ROOT/actors/$ACTOR/training_data"
MANIFEST="$TDM_DATA_ROOT/actor_manifests/0042_manifest.json"

PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3

# One line per manifest FILE: "N complete" (parses; statistics agree
# with its N entries), "N INCOMPLETE" or "BAD reason".
summary() {
  "$PY" - "$@" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            m = json.load(f)
        n = len(m["training_data"])
        st = m["statistics"]
        counted = sum(st[k] for k in ("training_synced_count",
            "training_local_only_count", "training_s3_only_count",
            "training_out_of_sync_count", "training_missing_count"))
        ok = st["training_images_count"] == n == counted
        print("%d %s" % (n, "complete" if ok else "INCOMPLETE"))
    except Exception as e:
        print("BAD %s: %s" % (path, e))
EOF
}

# ---- 8 writers x 50 ---------------------------------------------------------
WRITER='
local tdm = require "tdm"
local p = tonumber(arg[1])
for i = 1, 50 do
  local m = assert(tdm.Manifest.open(42, nil, { lock_timeout = 120 }))
  assert(m:add_image{ filename = string.format("0042_european_30_male_%d.jpg",
                                               p * 1000 + i),
                      s3 = { md5 = tdm.md5(p .. ":" .. i), size = i },
                      ["local"] = false })
  assert(m:save())
  m:close()
end'
printf '%s\n' "$WRITER" > "$TMP/writer.lua"
pids=()
for p in 1 2 3 4 5 6 7 8; do
  ./tdm-lua "$TMP/writer.lua" "$p" >"$TMP/w$p.log" 2>&1 &
  pids+=($!)
done
wfail=0
for pid in "${pids[@]}"; do wait "$pid" || wfail=$((wfail + 1)); done
[ "$wfail" -eq 0 ] && pass || fail "writers: expected all 8 to succeed, $wfail failed: $(cat "$TMP"/w*.log | head -5)"
check_out "8 x 50 writers: entries" "400 complete" summary "$MANIFEST"
uniq=$("$PY" -c '
import json,sys
m=json.load(open(sys.argv[1]))
print(len({e["filename"] for e in m["training_data"]}))' "$MANIFEST")
[ "$uniq" = 400 ] && pass || fail "distinct filenames: expected 400, got $uniq"

# ---- SIGKILL during saves ---------------------------------------------------
LOOP='
local tdm = require "tdm"
local n = 0
while true do
  n = n + 1
  local m = assert(tdm.Manifest.open(42, nil, { lock_timeout = 30 }))
  local name = string.format("0042_european_30_male_%d.jpg", 900000 + n)
  if m:get_image(name) then m:remove_image(name) end
  assert(m:add_image{ filename = name, s3 = { md5 = tdm.md5(name), size = n },
                      ["local"] = false })
  assert(m:save())
  m:close()
end'
printf '%s\n' "$LOOP" > "$TMP/loop.lua"
kills=0
mkdir -p "$TMP/snap"
for k in $(seq 1 50); do
  ./tdm-lua "$TMP/loop.lua" >/dev/null 2>&1 &
  pid=$!
  sleep "0.0$((RANDOM % 9 + 1))"
  kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
  wait "$pid" 2>/dev/null
  cp "$MANIFEST" "$TMP/snap/$k.json"
done
bad=$(summary "$TMP"/snap/*.json | grep -vc " complete$")
[ "$kills" -ge 50 ] && pass || fail "SIGKILLs: expected >= 50, got $kills"
[ "$bad" -eq 0 ] && pass || fail "after SIGKILL: expected a complete manifest every time, $bad were not"
# the lock of a killed holder is released by the kernel
check_rc "open after the kills" 0 ./tdm-lua -e '
  local m = assert(require("tdm").Manifest.open(42, nil, { lock_timeout = 5 }))
  m:close()'

# ---- no permission to write -------------------------------------------------
chmod 755 "$TMP" "$TMP/data" "$TDM_DATA_ROOT/actor_manifests"
chmod 666 "$MANIFEST.lock"
chmod 644 "$MANIFEST"
before=$(md5sum < "$MANIFEST")
out=$(setpriv --reuid nobody --regid nogroup --clear-groups ./tdm-lua -e '
  local tdm = require "tdm"
  local m = assert(tdm.Manifest.open(42))
  assert(m:add_image{ filename = "0042_european_30_male_77777.jpg",
                      s3 = false, ["local"] = false })
  local ok, msg, code = m:save()
  print(ok, msg, code)' 2>&1)
if grep -q "EACCES" <<<"$out" && grep -qF "$MANIFEST" <<<"$out"; then pass
else fail "save without permission: expected EACCES naming $MANIFEST, got '$out'"; fi
after=$(md5sum < "$MANIFEST")
[ "$before" = "$after" ] && pass || fail "manifest changed by a failed save"
# ...and without permission to create the lock file
rm -f "$MANIFEST.lock"
out=$(setpriv --reuid nobody --regid nogroup --clear-groups ./tdm-lua -e '
  print(require("tdm").Manifest.open(42))' 2>&1)
if grep -q "EACCES" <<<"$out" && grep -qF "$MANIFEST.lock" <<<"$out"; then
  pass
else fail "open without permission: expected EACCES naming the lock file, got '$out'"; fi
after=$(md5sum < "$MANIFEST")
[ "$before" = "$after" ] && pass || fail "manifest changed by a failed open"

finish
