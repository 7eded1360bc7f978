/* lprehash.c -- the tdm.Prehash type (tdm_prehash of tdm/manifest.h):
 * hashing the folders a bulk run will scan, ahead of the scan. Made by
 * core.prehash, passed to m:scan_local{ prehash = p }. */
#include "lbind.h"

#define PREHASH_T "tdm.Prehash"

typedef struct lprehash { tdm_prehash *p; } lprehash;

tdm_prehash *tdm_lua_check_prehash(lua_State *L, int idx) {
  lprehash *u = luaL_checkudata(L, idx, PREHASH_T);
  if (!u->p) luaL_error(L, "attempt to use a closed prehash");
  return u->p;
}

/* core.prehash(dirs [, threads [, ahead]]) -> prehash: hash the image
 * files of the folders dirs (a list of training_data/ paths, in the order
 * the scans will come) on `threads` background threads (default 2), at
 * most `ahead` folders (default 4) beyond the one being scanned; pass it
 * to m:scan_local{ prehash = p }. The list is copied before any thread
 * starts. */
static int l_prehash(lua_State *L) {
  int threads = (int)luaL_optinteger(L, 2, 2);
  int ahead = (int)luaL_optinteger(L, 3, 4);
  size_t n, i;
  const char **dirs;
  tdm_error err;
  lprehash *u;
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  n = (size_t)luaL_len(L, 1);
  /* the strings stay referenced by the table (argument 1) meanwhile */
  dirs = lua_newuserdatauv(L, (n ? n : 1) * sizeof *dirs, 0);   /* 4 */
  for (i = 0; i < n; i++) {
    lua_geti(L, 1, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "prehash: dirs[%d] is not a string", (int)i + 1);
    dirs[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);                       /* 5 */
  u->p = NULL;
  luaL_setmetatable(L, PREHASH_T);
  rc = tdm_prehash_new(&u->p, dirs, n, threads, ahead, &err);
  if (rc != TDM_OK) return tdm_lua_fail(L, &err);
  return 1;
}

/* p:stats() -> { taken = n, hashed = n }: files whose MD5 scans took from
 * it, files it hashed. */
static int p_stats(lua_State *L) {
  uint64_t taken, hashed;
  tdm_prehash_stats(tdm_lua_check_prehash(L, 1), &taken, &hashed);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)taken);
  lua_setfield(L, -2, "taken");
  lua_pushinteger(L, (lua_Integer)hashed);
  lua_setfield(L, -2, "hashed");
  return 1;
}

/* close(), __gc, __close: stop the threads and free; safe twice. */
static int p_close(lua_State *L) {
  lprehash *u = luaL_checkudata(L, 1, PREHASH_T);
  tdm_prehash_free(u->p);
  u->p = NULL;
  return 0;
}

static const luaL_Reg prehash_methods[] = {
  {"stats", p_stats},
  {"close", p_close},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"prehash", l_prehash},
  {NULL, NULL}
};

int tdm_lua_open_prehash(lua_State *L) {
  tdm_lua_new_closable(L, PREHASH_T, p_close, prehash_methods);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
