#!/usr/bin/env bash
# test_host.sh -- the tdm-lua host: scripts, arg, -e, -l, errors, exit codes.
. "$(dirname "$0")/../lib/e2e.sh"

check_out "tdm-lua -e md5" "900150983cd24fb0d6963f7d28e17f72" \
  tdm-lua -e 'print(require("tdm").md5("abc"))'
check_out "stock lua5.4 loads the build tree" \
  "900150983cd24fb0d6963f7d28e17f72" \
  lua5.4 -e 'package.cpath="./?.so;"..package.cpath; package.path="./lua/?.lua;./lua/?/init.lua;"..package.path; print(require("tdm").md5("abc"))'
# libcurl and libmicrohttpd are loaded on first use only (start-up cost):
# not for hashing or a manifest scan, libcurl for an S3 client, and the
# same from a stock lua5.4 that requires the module.
mkdir -p "$tmp/data/actors/0007_demo/training_data"
printf 'img' > "$tmp/data/actors/0007_demo/training_data/0007_demo_0.jpg"
cat > "$tmp/lazy.lua" <<EOF
local function loaded(lib)
  for l in io.lines("/proc/self/maps") do
    if l:find(lib, 1, true) then return "yes" end
  end
  return "no"
end
local tdm = require "tdm"
local cfg = tdm.config { data_root = "$tmp/data", bucket = "b",
                         endpoint = "http://127.0.0.1:9" }
tdm.md5_file("$0")
local m = assert(tdm.Manifest.open(7, cfg))
assert(m:scan_local())
m:close()
local before = loaded("libcurl") .. " " .. loaded("libmicrohttpd")
assert(tdm.s3.client(cfg))
print(before, loaded("libcurl") .. " " .. loaded("libmicrohttpd"))
EOF
export AWS_ACCESS_KEY_ID=AKIDLAZY AWS_SECRET_ACCESS_KEY=lazysecret
check_out "tdm-lua loads libcurl only for S3, libmicrohttpd never unasked" \
  "no no	yes no" tdm-lua "$tmp/lazy.lua"
check_out "stock lua5.4 with the module: the same" "no no	yes no" \
  lua5.4 -e 'package.cpath="./?.so;"..package.cpath; package.path="./lua/?.lua;./lua/?/init.lua;"..package.path' "$tmp/lazy.lua"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
check_rc "--help exits 0" 0 tdm-lua --help
check_grep "--help lists commands" "commands:" tdm-lua --help
check_grep "--help lists md5" "md5 " tdm-lua --help
check_grep "--version" "tdm-lua 0." tdm-lua --version
check_rc "missing script exits 1" 1 tdm-lua "$tmp/missing.lua"
check_grep "missing script named" "missing.lua" tdm-lua "$tmp/missing.lua"
check_rc "unknown command exits 2" 2 tdm-lua no-such-command
check_rc "unknown option exits 2" 2 tdm-lua --bogus

printf 'print(arg[0], arg[1], arg[2], select("#", ...))\n' > "$tmp/args.lua"
check_out "arg table and varargs" "$tmp/args.lua	x	y z	2" \
  tdm-lua "$tmp/args.lua" x "y z"
printf 'os.exit(7)\n' > "$tmp/exit.lua"
check_rc "os.exit honoured" 7 tdm-lua "$tmp/exit.lua"
printf 'local function f() error("boom") end\nf()\n' > "$tmp/err.lua"
check_rc "script error exits 1" 1 tdm-lua "$tmp/err.lua"
check_grep "error has prefix and message" "tdm-lua: .*err.lua:1: boom" \
  tdm-lua "$tmp/err.lua"
check_grep "error has a traceback" "stack traceback" tdm-lua "$tmp/err.lua"
check_out "-l loads a module as a global" "string" \
  tdm-lua -l tdm -e 'print(type(tdm.version))'
check_rc "syntax error in -e exits 1" 1 tdm-lua -e 'x ='
check_out "md5 command like md5sum" "$(md5sum "$0")" tdm-lua md5 "$0"
check_rc "md5 command on a missing file exits 1" 1 tdm-lua md5 "$tmp/nope"
check_rc "md5 --help" 0 tdm-lua md5 --help
finish
