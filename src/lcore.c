/*
 * lcore.c -- the tdm.core Lua module: luaopen_tdm_core gathers the
 * bindings of every area of libtdm into one table. What the binding
 * files share is in lbind.c (so they do not depend on this file, which
 * depends on them).
 */
#include "lbind.h"

/* One opener per binding file; each adds its entries to the module table
 * on top of the stack and leaves the stack as it found it. */
static const lua_CFunction openers[] = {
  tdm_lua_open_hash,
  tdm_lua_open_fs,
  tdm_lua_open_proc,
  tdm_lua_open_config,
  tdm_lua_open_layout,
  tdm_lua_open_image,
  tdm_lua_open_manifest,
  tdm_lua_open_prehash,
  tdm_lua_open_saver,
  tdm_lua_open_sigv4,
  tdm_lua_open_s3,
  tdm_lua_open_http,
  tdm_lua_open_errors,
  tdm_lua_open_json,
  tdm_lua_open_trace,
  NULL
};

LUAMOD_API int luaopen_tdm_core(lua_State *L);

void tdm_lua_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_tdm_core);
  lua_setfield(L, -2, "tdm.core");
  lua_pop(L, 1);
}

LUAMOD_API int luaopen_tdm_core(lua_State *L) {
  int i;
  lua_newtable(L);
  lua_pushliteral(L, TDM_VERSION);
  lua_setfield(L, -2, "version");
  for (i = 0; openers[i]; i++) {
    lua_pushcfunction(L, openers[i]);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
  }
  return 1;
}
