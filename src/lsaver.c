/* lsaver.c -- the tdm.ManifestSaver type (tdm_saver of tdm/manifest.h):
 * manifests written on background threads, handed over by
 * m:save_async(saver). Made by core.manifest_saver. */
#include "lbind.h"

#define SAVER_T "tdm.ManifestSaver"

typedef struct lsaver { tdm_saver *s; } lsaver;

tdm_saver *tdm_lua_check_saver(lua_State *L, int idx) {
  lsaver *u = luaL_checkudata(L, idx, SAVER_T);
  if (!u->s) luaL_error(L, "attempt to use a closed manifest saver");
  return u->s;
}

/* core.manifest_saver([threads [, max_pending]]) -> saver: writes the
 * manifests handed to m:save_async on `threads` background threads
 * (default 4). Closing it (close, __gc, __close) waits for every save. */
static int l_manifest_saver(lua_State *L) {
  int threads = (int)luaL_optinteger(L, 1, 4);
  int max_pending = (int)luaL_optinteger(L, 2, 0);
  tdm_error err;
  lsaver *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  luaL_setmetatable(L, SAVER_T);
  if (tdm_saver_new(&u->s, threads, max_pending, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 1;
}

/* saver:wait() -> failures: wait for every save handed over, then return
 * (and forget) the failed ones as a list of { actor, path, message, code }
 * (empty when all were written). */
static int s_wait(lua_State *L) {
  tdm_saver *s = tdm_lua_check_saver(L, 1);
  tdm_saver_failure f;
  lua_Integer k = 0;
  tdm_saver_wait(s);
  lua_newtable(L);
  while (tdm_saver_take_failures(s, &f, 1) == 1) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, f.actor_name);
    lua_setfield(L, -2, "actor");
    lua_pushstring(L, f.path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, f.err.message[0] ? f.err.message : "unknown error");
    lua_setfield(L, -2, "message");
    lua_pushstring(L, f.err.code[0] ? f.err.code : "EIO");
    lua_setfield(L, -2, "code");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* saver:pending() -> number of saves handed over and not yet written. */
static int s_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tdm_saver_pending(tdm_lua_check_saver(L, 1)));
  return 1;
}

/* close(), __gc, __close: wait for the pending saves, then free (failures
 * not taken by wait() are dropped); safe to call twice. */
static int s_close(lua_State *L) {
  lsaver *u = luaL_checkudata(L, 1, SAVER_T);
  tdm_saver_free(u->s);
  u->s = NULL;
  return 0;
}

static const luaL_Reg saver_methods[] = {
  {"wait", s_wait},
  {"pending", s_pending},
  {"close", s_close},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"manifest_saver", l_manifest_saver},
  {NULL, NULL}
};

int tdm_lua_open_saver(lua_State *L) {
  tdm_lua_new_closable(L, SAVER_T, s_close, saver_methods);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
