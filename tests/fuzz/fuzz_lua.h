/*
 * tests/fuzz/fuzz_lua.h -- host a Lua state in a libFuzzer harness.
 *
 * fuzz_lua_target(chunk) builds one lua_State per process (standard
 * libraries, tdm.core preloaded, package.path = FUZZ_ROOT/lua so the
 * tree's own modules load), runs `chunk`, which must return a function,
 * and keeps that function in the registry. fuzz_lua_call(data, size)
 * calls it with the input as a Lua string under pcall: any error it
 * raises (a module raising on hostile text, or one of the chunk's
 * property asserts) is a finding and aborts. Garbage is collected every
 * call so ASan sees use-after-free early and memory stays flat.
 *
 * Coverage of Lua code: the Lua VM (Debian's liblua5.4) is not
 * instrumented, so a line hook feeds libFuzzer's extra counters with
 * (previous line, line) pairs of the Lua code being run: libFuzzer then
 * keeps inputs that reach new Lua lines and branches.
 */
#ifndef TDM_FUZZ_LUA_H
#define TDM_FUZZ_LUA_H

#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"
#include "lbind.h"

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif

static lua_State *fuzz_L;
static int fuzz_fn_ref = LUA_NOREF;

#define FUZZ_LUA_COUNTERS 65536
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_lua_counters[FUZZ_LUA_COUNTERS];
static uint32_t fuzz_lua_prev;

/* Line hook: count the edge (previous line -> this line) of Lua code.
 * The chunk is told apart by its source string's address (stable: the
 * modules stay loaded), not its text: hashing a path on every line, in
 * an instrumented build, cost more than the code under test. */
static void fuzz_lua_hook(lua_State *L, lua_Debug *ar) {
  uint32_t cur;
  if (!lua_getinfo(L, "S", ar)) return;
  cur = ((uint32_t)(uintptr_t)ar->source * 16777619u) ^
        ((uint32_t)ar->currentline * 2654435761u);
  fuzz_lua_counters[(cur ^ (fuzz_lua_prev >> 1)) % FUZZ_LUA_COUNTERS]++;
  fuzz_lua_prev = cur;
}

/* Create the state and the target function from `chunk` (once). */
static void fuzz_lua_target(const char *chunk) {
  const char *root = getenv("ROOT");
  lua_State *L;
  if (fuzz_L) return;
  if (!root || !*root) root = FUZZ_ROOT;
  L = luaL_newstate();
  if (!L) fuzz_fail("luaL_newstate");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", root, root);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  tdm_lua_preload(L);
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK
      || !lua_isfunction(L, -1)) {
    fprintf(stderr, "fuzz target setup: %s\n", lua_tostring(L, -1));
    fuzz_fail("Lua target did not load");
  }
  fuzz_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_sethook(L, fuzz_lua_hook, LUA_MASKLINE, 0);
  fuzz_L = L;
}

/* Call the target with the input; abort on any Lua error. */
static void fuzz_lua_call(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_fn_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "Lua error: %s\n", lua_tostring(L, -1));
    fuzz_fail("the Lua target raised");
  }
  lua_gc(L, LUA_GCCOLLECT);
}

#endif
