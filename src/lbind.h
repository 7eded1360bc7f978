/*
 * lbind.h -- shared helpers of the Lua binding files (src/l*.c).
 *
 * Binding files translate arguments, call libtdm and push results; policy
 * lives in lua/tdm/. Failure convention of the whole module (documented in
 * the README): caller mistakes raise; failures of the world return
 * nil, message, code.
 */
#ifndef TDM_LBIND_H
#define TDM_LBIND_H

#include <lua.h>
#include <lauxlib.h>

#include "tdm.h"

/* Make `require "tdm.core"` load the linked-in module
 * (package.preload["tdm.core"] = luaopen_tdm_core), for hosts that link
 * libtdm rather than load core.so. Stack unchanged. */
void tdm_lua_preload(lua_State *L);

/* Push nil, err->message, err->code; returns 3 (use as `return ...`). */
int tdm_lua_fail(lua_State *L, const tdm_error *err);

/* Register the metatable `name` of a userdata type that holds a resource:
 * `close` (which must be safe to call twice) is its __gc and __close, and
 * `methods` (or NULL: an internal holder) its __index. Stack unchanged. */
void tdm_lua_new_closable(lua_State *L, const char *name,
                          lua_CFunction close, const luaL_Reg *methods);

/* Each binding file adds its functions/types to the table at the top of the
 * stack (the tdm.core module table). Listed in lcore.c. */
int tdm_lua_open_hash(lua_State *L);
int tdm_lua_open_fs(lua_State *L);
int tdm_lua_open_proc(lua_State *L);
int tdm_lua_open_config(lua_State *L);
int tdm_lua_open_layout(lua_State *L);
int tdm_lua_open_image(lua_State *L);
int tdm_lua_open_manifest(lua_State *L);
int tdm_lua_open_prehash(lua_State *L);
int tdm_lua_open_saver(lua_State *L);

/* The open tdm.Prehash / tdm.ManifestSaver at `idx` (lprehash.c,
 * lsaver.c); raise when closed or of another type. */
tdm_prehash *tdm_lua_check_prehash(lua_State *L, int idx);
tdm_saver *tdm_lua_check_saver(lua_State *L, int idx);
int tdm_lua_open_sigv4(lua_State *L);
int tdm_lua_open_s3(lua_State *L);
int tdm_lua_open_http(lua_State *L);
int tdm_lua_open_errors(lua_State *L);
int tdm_lua_open_json(lua_State *L);
int tdm_lua_open_trace(lua_State *L);

#endif
