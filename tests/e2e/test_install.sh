#!/usr/bin/env bash
# test_install.sh -- tdm fits its ecosystems: `make install` into a staging
# tree works for a stock lua5.4, the installed tdm-lua, pkg-config and a C
# program; `luarocks make` builds and installs a loadable rock; uninstall
# removes what install put there. Runs in a copy of the source tree so
# the working build is not disturbed.
. "$(dirname "$0")/../lib/e2e.sh"
src=$(pwd)
mkdir "$tmp/src"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$tmp/src")
cd "$tmp/src" || exit 1

make -j2 >"$tmp/build.log" 2>&1 || { fail "build: $(tail -5 "$tmp/build.log")"; finish; exit 1; }
stage="$tmp/stage"
check "make install DESTDIR PREFIX=/usr" \
  make install DESTDIR="$stage" PREFIX=/usr >"$tmp/install.log" 2>&1
for f in usr/bin/tdm-lua usr/lib/libtdm.a usr/include/tdm.h \
         usr/lib/lua/5.4/tdm/core.so usr/share/lua/5.4/tdm/init.lua \
         usr/share/lua/5.4/tdm/commands/init.lua usr/lib/pkgconfig/tdm.pc \
         usr/share/man/man1/tdm-lua.1 \
         usr/share/bash-completion/completions/tdm-lua; do
  [ -f "$stage/$f" ] && pass || fail "installed file missing: $f"
done

cd "$tmp" || exit 1
export LUA_PATH="$stage/usr/share/lua/5.4/?.lua;$stage/usr/share/lua/5.4/?/init.lua"
export LUA_CPATH="$stage/usr/lib/lua/5.4/?.so"
check_out "stock lua5.4 requires the installed tdm" \
  "900150983cd24fb0d6963f7d28e17f72" \
  lua5.4 -e 'print(require("tdm").md5("abc"))'
# A manifest round trip through the installed module, when it exists.
if [ -f "$stage/usr/share/lua/5.4/tdm/manifest.lua" ]; then
  mkdir -p "$tmp/data/actors/0007_demo_actor/training_data"
  printf 'img' > "$tmp/data/actors/0007_demo_actor/training_data/0007_demo_actor_0.jpg"
  check_out "manifest round trip with stock lua5.4" "1 local_only" \
    lua5.4 -e '
      local tdm = require "tdm"
      local cfg = tdm.config { data_root = "'"$tmp"'/data" }
      local m = assert(tdm.Manifest.open("0007_demo_actor", cfg))
      assert(m:scan_local())
      assert(m:save()); m:close()
      m = assert(tdm.Manifest.open(7, cfg))
      local imgs = m:get_all_images()
      print(#imgs .. " " .. imgs[1].status)'
  # A worked script of docs/lua-api.md on the installed module.
  python3 -c 'import re,sys; t=open(sys.argv[1]).read()
print(re.search(r"<!-- example: out_of_sync_report.lua -->\n```lua\n(.*?)```", t, re.S).group(1), end="")' \
    "$tmp/src/docs/lua-api.md" > "$tmp/report.lua"
  check_out "stock lua5.4 runs docs/lua-api.md's out-of-sync report on the installed module" \
    "0007_demo_actor 0007_demo_actor_0.jpg local_only" \
    env TDM_DATA_ROOT="$tmp/data" lua5.4 "$tmp/report.lua"
fi
unset LUA_PATH LUA_CPATH
check_out "installed tdm-lua runs a command" "900150983cd24fb0d6963f7d28e17f72  -" \
  bash -c "printf abc > '$tmp/abc' && cd '$tmp' && '$stage/usr/bin/tdm-lua' md5 abc | sed 's/abc\$/-/'"
check_grep "installed tdm-lua finds its commands" "config " "$stage/usr/bin/tdm-lua" --help
check_grep "man page renders" "tdm-lua" man -l "$stage/usr/share/man/man1/tdm-lua.1"
for s in EXAMPLES FILES ENVIRONMENT "EXIT STATUS"; do
  check_grep "man page has $s" "^$s" man -l "$stage/usr/share/man/man1/tdm-lua.1"
done
check_grep "man page ENVIRONMENT lists the job-engine shard variables" "JOB_COMPLETION_INDEX" \
  man -l "$stage/usr/share/man/man1/tdm-lua.1"

# Bash completion: commands, a command's own options, actors of the data root.
mkdir -p "$tmp/cdata/actors/0007_demo_actor" "$tmp/cdata/actors/0012_other"
comp() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
           _tdm_lua; echo "${COMPREPLY[*]}"' _ \
    "$stage/usr/share/bash-completion/completions/tdm-lua" "$@"
}
PATH="$stage/usr/bin:$PATH"
check_out "completion: commands" "pull pull-all push push-all" comp tdm-lua pu
check_out "completion: a command's options" "--repair" comp tdm-lua pull --rep
check_out "completion: pull has no --shard" "" comp tdm-lua pull --sha
check_out "completion: pull-all has --shard" "--shard" comp tdm-lua pull-all --sha
check_out "completion: actors from --data-root" "0007_demo_actor 0012_other" \
  comp tdm-lua --data-root "$tmp/cdata" pull-all --actor ""
check_out "completion: actors for pull" "0012_other" comp tdm-lua pull --data-root "$tmp/cdata" 001
PATH=${PATH#"$stage/usr/bin:"}

# pkg-config and the embedding example.
export PKG_CONFIG_PATH="$stage/usr/lib/pkgconfig"
check_out "pkg-config finds tdm" "0.1.0" pkg-config --modversion tdm
if [ -f "$tmp/src/examples/embed.c" ]; then
  check "C example links through pkg-config" \
    cc -o "$tmp/embed" "$tmp/src/examples/embed.c" \
      $(pkg-config --define-prefix --cflags --libs tdm)
  check_grep "C example runs" "900150983cd24fb0d6963f7d28e17f72" "$tmp/embed"
fi
unset PKG_CONFIG_PATH

check "make uninstall" make -C "$tmp/src" uninstall DESTDIR="$stage" PREFIX=/usr >/dev/null 2>&1
left=$(find "$stage" -type f | wc -l)
[ "$left" -eq 0 ] && pass || fail "uninstall left $left files: $(find "$stage" -type f | head -3)"

# LuaRocks: build and install the rock from the checkout into a tree.
# As the README says: 5.4 made the user's default once, then plain
# `luarocks make` (Debian 12's luarocks defaults to Lua 5.1).
if command -v luarocks >/dev/null; then
  (export HOME="$tmp/home"; mkdir -p "$HOME" && cd "$tmp/src" && make clean >/dev/null && \
   luarocks config --scope user lua_version 5.4 && \
   luarocks make --tree "$tmp/rocks") \
    >"$tmp/rock.log" 2>&1 && pass || fail "luarocks make: $(tail -5 "$tmp/rock.log")"
  left=$(find "$tmp/rocks" -name 'libtdm.a' -o -name 'tdm.pc' -o -name 'tdm.h' | head -3)
  [ -z "$left" ] && pass || fail "the rock installs only the module and host, found: $left"
  [ -f "$tmp/rocks/lib/lua/5.4/tdm/core.so" ] && pass || fail "the rock installs tdm/core.so"
  check_out "module loads from the rocks tree" "900150983cd24fb0d6963f7d28e17f72" \
    lua5.4 -e 'package.path="'"$tmp"'/rocks/share/lua/5.4/?.lua;'"$tmp"'/rocks/share/lua/5.4/?/init.lua;"..package.path
               package.cpath="'"$tmp"'/rocks/lib/lua/5.4/?.so;"..package.cpath
               print(require("tdm").md5("abc"))'
else
  fail "luarocks is not installed (scripts/install-deps.sh installs it)"
fi
finish
