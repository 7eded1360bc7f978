-- LuaRocks build of tdm from a checkout (Lua 5.4):
--   luarocks --lua-version 5.4 make
-- (Debian 12's luarocks defaults to Lua 5.1; after `luarocks config --scope
-- user lua_version 5.4` (5.4 the default for your user) plain `luarocks make`
-- works.) Builds with the project's Makefile and installs the module
-- (tdm.core and the tdm.* Lua modules) and the tdm-lua host into the
-- rocks tree: `make install-rock`. The C library, headers, pkg-config file
-- and man page are for `make install`, not for a rock.
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
  install_target = "install-rock",
  install_variables = {
    PREFIX = "$(PREFIX)",
    BINDIR = "$(BINDIR)",
    LUA_CMOD_DIR = "$(LIBDIR)",
    LUA_LMOD_DIR = "$(LUADIR)",
  },
}
