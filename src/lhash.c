/* lhash.c -- Lua bindings of tdm/hash.h: md5, sha256, md5_file, ... */
#include "lbind.h"

/* md5(s) / sha256(s) -> hex. */
static int digest_string(lua_State *L, tdm_hash_kind kind) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char hex[TDM_SHA256_HEX_LEN + 1];
  tdm_error err;
  int rc = kind == TDM_HASH_MD5 ? tdm_md5_hex(s, len, hex, &err)
                                : tdm_sha256_hex(s, len, hex, &err);
  if (rc != TDM_OK) return tdm_lua_fail(L, &err);
  lua_pushstring(L, hex);
  return 1;
}

static int l_md5(lua_State *L) { return digest_string(L, TDM_HASH_MD5); }
static int l_sha256(lua_State *L) {
  return digest_string(L, TDM_HASH_SHA256);
}

/* md5_file(path) / sha256_file(path) -> hex, size | nil, msg, code. */
static int digest_file(lua_State *L, tdm_hash_kind kind) {
  const char *path = luaL_checkstring(L, 1);
  char hex[TDM_SHA256_HEX_LEN + 1];
  uint64_t size = 0;
  tdm_error err;
  if (tdm_hash_file(kind, path, hex, &size, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushstring(L, hex);
  lua_pushinteger(L, (lua_Integer)size);
  return 2;
}

static int l_md5_file(lua_State *L) { return digest_file(L, TDM_HASH_MD5); }
static int l_sha256_file(lua_State *L) {
  return digest_file(L, TDM_HASH_SHA256);
}

static const luaL_Reg funcs[] = {
  {"md5", l_md5},
  {"sha256", l_sha256},
  {"md5_file", l_md5_file},
  {"sha256_file", l_sha256_file},
  {NULL, NULL}
};

int tdm_lua_open_hash(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
