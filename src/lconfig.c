/* lconfig.c -- Lua binding of tdm/config.h: config_load(). */
#include <string.h>

#include "lbind.h"

/* config_load([profile]) -> { values = {name = string}, sources = {name = string},
 * secrets = {name = true}, order = {name, ...} } | nil, msg, code.
 * Unset values are absent from `values`. */
static int l_config_load(lua_State *L) {
  tdm_config cfg;
  tdm_error err;
  int i;
  const char *profile = luaL_optstring(L, 1, NULL);
  if (tdm_config_load(&cfg, &err) != TDM_OK ||
      (profile && *profile &&
       tdm_config_use_profile(&cfg, profile, &err) != TDM_OK))
    return tdm_lua_fail(L, &err);
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

/* config_keys() -> { { name =, env = {..}, default =, secret = }, ... }
 * in display order, for help texts and the man page. */
static int l_config_keys(lua_State *L) {
  int i, j;
  lua_createtable(L, TDM_CFG_COUNT, 0);
  for (i = 0; i < TDM_CFG_COUNT; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, tdm_config_name((tdm_config_key)i));
    lua_setfield(L, -2, "name");
    lua_newtable(L);
    for (j = 0; j < 2; j++) {
      const char *e = tdm_config_env((tdm_config_key)i, j);
      if (!e) break;
      lua_pushstring(L, e);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "env");
    lua_pushstring(L, tdm_config_default((tdm_config_key)i));
    lua_setfield(L, -2, "default");
    lua_pushboolean(L, tdm_config_is_secret((tdm_config_key)i));
    lua_setfield(L, -2, "secret");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const luaL_Reg funcs[] = {
  {"config_load", l_config_load},
  {"config_keys", l_config_keys},
  {NULL, NULL}
};

int tdm_lua_open_config(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
