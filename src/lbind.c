/*
 * lbind.c -- what every binding file shares (declared in lbind.h): the
 * (nil, message, code) failure and the registration of a type that holds
 * a resource.
 */
#include "lbind.h"

int tdm_lua_fail(lua_State *L, const tdm_error *err) {
  lua_pushnil(L);
  lua_pushstring(L, err->message[0] ? err->message : "unknown error");
  lua_pushstring(L, err->code[0] ? err->code : "EIO");
  return 3;
}

void tdm_lua_new_closable(lua_State *L, const char *name,
                          lua_CFunction close, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}
