/* lconfig.c -- Lua binding of tdm/config.h: config_load(). */
#include <string.h>

#include "lbind.h"

/* config_load() -> { values = {name = string}, sources = {name = string},
 * secrets = {name = true}, order = {name, ...} } | nil, msg, code.
 * Unset values are absent from `values`. */
static int l_config_load(lua_State *L) {
  tdm_config cfg;
  tdm_error err;
  int i;
  if (tdm_config_load(&cfg, &err) != TDM_OK) return tdm_lua_fail(L, &err);
  lua_createtable(L, 0, 4);
  lua_newtable(L);  /* values */
  lua_newtable(L);  /* sources */
  lua_newtable(L);  /* secrets */
  lua_createtable(L, TDM_CFG_COUNT, 0);  /* order */
  for (i = 0; i < TDM_CFG_COUNT; i++) {
    const char *name = tdm_config_name((tdm_config_key)i);
    const char *v = tdm_config_get(&cfg, (tdm_config_key)i);
    if (*v) {
      lua_pushstring(L, v);
      lua_setfield(L, -5, name);
    }
    lua_pushstring(L, cfg.source[i]);
    lua_setfield(L, -4, name);
    if (tdm_config_is_secret((tdm_config_key)i)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -3, name);
    }
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -5, "order");
  lua_setfield(L, -4, "secrets");
  lua_setfield(L, -3, "sources");
  lua_setfield(L, -2, "values");
  return 1;
}

static const luaL_Reg funcs[] = {
  {"config_load", l_config_load},
  {NULL, NULL}
};

int tdm_lua_open_config(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
