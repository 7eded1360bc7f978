-- LuaRocks build of tdm from a checkout: `luarocks make` (Lua 5.4).
-- Builds with the project's Makefile and installs the module (tdm.core and
-- the tdm.* Lua modules), the tdm-lua host, libtdm.a, the headers, the
-- pkg-config file and the man page into the rocks tree.
rockspec_format = "3.0"
package = "tdm"
version = "0.1.0-1"
source = { url = "git+file://." }
description = {
  summary = "Keep AI actors' training images accounted for between local disks and S3",
  detailed = [[
Per-actor JSON manifests with MD5, size, local path, S3 URL and sync
status; verified concurrent sync with S3 (SigV4, libcurl multi); audit
and legacy migration; an HTTP API. C core exposed as a Lua 5.4 module.]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
-- C dependencies (libcurl, OpenSSL, expat, jansson, libmicrohttpd) are
-- found by the Makefile through pkg-config; scripts/install-deps.sh
-- installs them from Debian.
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    PREFIX = "$(PREFIX)",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    BINDIR = "$(BINDIR)",
    LUA_CMOD_DIR = "$(LIBDIR)",
    LUA_LMOD_DIR = "$(LUADIR)",
  },
}
