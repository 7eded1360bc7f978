/* lproc.c -- Lua bindings of tdm/proc.h: claims (type tdm.Claim) and the
 * CPU count. */
#include "lbind.h"

#define CLAIM_T "tdm.Claim"

typedef struct lclaim { int fd; } lclaim;

/* claim:release(), also __gc and __close: give the claim up; safe twice. */
static int c_release(lua_State *L) {
  lclaim *c = luaL_checkudata(L, 1, CLAIM_T);
  tdm_claim_release(c->fd);
  c->fd = -1;
  return 0;
}

/* claim:held() -> whether release has not been called yet. */
static int c_held(lua_State *L) {
  lclaim *c = luaL_checkudata(L, 1, CLAIM_T);
  lua_pushboolean(L, c->fd >= 0);
  return 1;
}

/* claim(path) -> claim | nil, msg, code ("LOCKED": another run holds it).
 * The userdata exists (released) before the flock is taken, so __gc can
 * always give it up. */
static int l_claim(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tdm_error err;
  lclaim *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->fd = -1;
  luaL_setmetatable(L, CLAIM_T);
  if (tdm_claim_take(path, &c->fd, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 1;
}

/* cpu_count() -> the CPUs this process may run on. */
static int l_cpu_count(lua_State *L) {
  lua_pushinteger(L, tdm_cpu_count());
  return 1;
}

static const luaL_Reg claim_methods[] = {
  {"release", c_release},
  {"held", c_held},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"claim", l_claim},
  {"cpu_count", l_cpu_count},
  {NULL, NULL}
};

int tdm_lua_open_proc(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tdm_lua_new_closable(L, CLAIM_T, c_release, claim_methods);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
