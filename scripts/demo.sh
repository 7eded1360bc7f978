#!/usr/bin/env bash
# scripts/demo.sh -- the whole story on a local demonstration, against a
# local S3 server started here (s3rver, stopped at the end):
#
#   1. install dependencies, build
#   2. generate a sample data root + bucket: actors in every sync state,
#      some with legacy training_data/response.json files and no manifest
#   3. tdm-lua migrate         response.json -> manifests, legacy deleted
#   4. tdm-lua sync-manifests  every manifest in line with disk + bucket
#   5. tdm-lua audit           what is not accounted for (findings: exit 1)
#   6. tdm-lua push ACTOR      local_only files up, for every actor
#      tdm-lua pull-all --repair   S3 -> local, S3 wins for out_of_sync
#      tdm-lua sync-manifests --prune   drop entries whose file exists nowhere
#   7. tdm-lua audit           clean: exit 0
#
#   scripts/demo.sh                 # data in ./demo-data (replaced)
#   TDM_DEMO_DIR=/tmp/x scripts/demo.sh
#   TDM_DEMO_SKIP_DEPS=1            # do not run scripts/install-deps.sh
#   TDM_DEMO_SKIP_BUILD=1           # do not run make (the tests build first)
# Exit status: 0 when the final audit is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${TDM_DEMO_SKIP_DEPS:-}" ]; then scripts/install-deps.sh; fi
if [ -z "${TDM_DEMO_SKIP_BUILD:-}" ]; then make -j2 >/dev/null; fi

DEMO=${TDM_DEMO_DIR:-demo-data}
mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)
rm -rf "$DEMO/data"
export TDM_DATA_ROOT="$DEMO/data"
export TDM_PREFIX="demo-$$/system_actors/training_data"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/?.so;;"

. tests/lib/s3rver.sh
s3rver_start story-boards-assets
TDM=("$ROOT/tdm-lua")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
have() { [ -f "$ROOT/lua/tdm/commands/$1.lua" ]; }
# run CMD...: show it, run it, show its exit code (findings are not fatal)
run() {
  printf '$ tdm-lua %s\n' "$*"
  local rc=0
  "${TDM[@]}" "$@" || rc=$?
  echo "(exit $rc)"
  return $rc
}

step "generating a sample data root in $TDM_DATA_ROOT and bucket prefix $TDM_PREFIX"
GEN=$(mktemp "${TMPDIR:-/tmp}/tdm-demo-gen.XXXXXX.lua")
cat >"$GEN" <<'EOF'
local root = os.getenv("TDM_TEST_ROOT")
local fixture = dofile(root .. "/tests/lib/fixture.lua")
local fx = fixture.generate { data_root = os.getenv("TDM_DATA_ROOT"), seed = 42,
                              junk = false, bulk = 2, bulk_files = 5,
                              bulk_size = 40 * 1024 }
-- Legacy response.json files (the Python system's, now deprecated) for the
-- actors that have no manifest: two of the shapes `migrate` accepts.
local cfg = require("tdm.config")()
local base = cfg.public_url_base
local function files_of(name)
  local list = {}
  for fn in pairs(fx.actors[name].files) do list[#list + 1] = fn end
  table.sort(list)
  return list
end
local function write(path, text)
  local f = assert(io.open(path, "w")); f:write(text); f:close()
end
local core = require "tdm.core"
local a = "0007_no_manifest"
local urls = {}
for _, fn in ipairs(files_of(a)) do
  urls[#urls + 1] = '"' .. base .. "/" .. fx.prefix .. "/" .. a .. "/" .. fn .. '"'
end
local dir = fx.data_root .. "/actors/" .. a .. "/training_data"
core.mkdirs(dir)
write(dir .. "/response.json", "[" .. table.concat(urls, ", ") .. "]\n")
a = "0010_s3_only_actor"
local items = {}
for _, fn in ipairs(files_of(a)) do
  items[#items + 1] = '{"url": "s3://' .. cfg.bucket .. "/" .. fx.prefix .. "/" .. a .. "/" .. fn .. '"}'
end
dir = fx.data_root .. "/actors/" .. a .. "/training_data"
core.mkdirs(dir)
write(dir .. "/response.json", '{"images": [' .. table.concat(items, ", ") .. "]}\n")
local names = {}
for name, actor in pairs(fx.actors) do
  names[#names + 1] = string.format("  %-22s %s", name, actor.scenario)
end
table.sort(names)
print(table.concat(names, "\n"))
EOF
TDM_TEST_ROOT="$ROOT" "${TDM[@]}" "$GEN"
rm -f "$GEN"
find "$TDM_DATA_ROOT" -name response.json | sed "s|^$DEMO/||; s|^|  legacy: |"

if have migrate; then
  step "migrate: legacy response.json files become manifest entries"
  run migrate || true
else
  step "migrate: (command not installed yet; skipped)"
fi

step "sync-manifests: every actor, local files + one S3 listing"
run sync-manifests --quiet || true

if have audit; then
  step "audit: what is not accounted for"
  run audit || true
fi

step "push: local_only files of every actor up to S3"
for dir in "$TDM_DATA_ROOT"/actors/*/; do
  run push --quiet "$(basename "$dir")" || true
done

step "pull-all --repair: everything not present locally comes down, S3 wins for out_of_sync"
run pull-all --repair --quiet || true

step "sync-manifests --prune: entries whose file exists nowhere are dropped (explicitly)"
run sync-manifests --prune || true

final=0
if have audit; then
  step "audit: clean"
  run audit || final=$?
else
  step "final state (audit not installed yet)"
  run sync-manifests --dry-run --quiet || final=$?
fi
s3rver_stop || true   # (its wait reports the server's signal)
if [ "$final" -eq 0 ]; then echo; echo "demo: everything accounted for"; fi
exit "$final"
