/*
 * lerrors.c -- tdm.core.errors: the error-code table
 * (include/tdm/errcodes.def) as { [code] = { meaning =, retryable =,
 * http_status =, advice = } }. Read-only by convention; one table per
 * Lua state, built once.
 */
#include "lbind.h"

int tdm_lua_open_errors(lua_State *L) {
  size_t i, n;
  const tdm_errcode *t = tdm_errcodes(&n);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, t[i].meaning);
    lua_setfield(L, -2, "meaning");
    lua_pushboolean(L, t[i].retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushinteger(L, t[i].http_status);
    lua_setfield(L, -2, "http_status");
    lua_pushstring(L, t[i].advice);
    lua_setfield(L, -2, "advice");
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_setfield(L, -2, "order");    /* its place in errcodes.def */
    lua_setfield(L, -2, t[i].code);
  }
  lua_setfield(L, 1, "errors");
  return 0;
}
