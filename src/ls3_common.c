/* ls3_common.c -- what both S3 binding files (ls3.c, ls3_queue.c) use:
 * the client check, readers of settings tables, and result tables. */
#include "ls3_int.h"

tdm_ls3_client *tdm_ls3_check_client(lua_State *L, int idx) {
  tdm_ls3_client *u = luaL_checkudata(L, idx, TDM_LS3_CLIENT);
  if (!u->c) luaL_error(L, "attempt to use a closed S3 client");
  return u;
}

const char *tdm_ls3_opt_string(lua_State *L, int t, const char *name) {
  const char *s = NULL;
  int ty = lua_getfield(L, t, name);
  if (ty == LUA_TSTRING || ty == LUA_TNUMBER) s = lua_tostring(L, -1);
  else if (ty != LUA_TNIL)
    luaL_error(L, "S3 client setting '%s': expected a string, got %s", name,
               luaL_typename(L, -1));
  lua_pop(L, 1);   /* the table keeps the string alive */
  return s;
}

double tdm_ls3_opt_number(lua_State *L, int t, const char *name,
                          double dflt) {
  double v = dflt;
  int ty = lua_getfield(L, t, name);
  if (ty == LUA_TNUMBER || ty == LUA_TSTRING) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum)
      luaL_error(L, "S3 client setting '%s': expected a number", name);
  } else if (ty != LUA_TNIL) {
    luaL_error(L, "S3 client setting '%s': expected a number, got %s", name,
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

int tdm_ls3_opt_bool(lua_State *L, int t, const char *name, int dflt) {
  int v = dflt;
  int ty = lua_getfield(L, t, name);
  if (ty == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (ty != LUA_TNIL)
    luaL_error(L, "S3 setting '%s': expected a boolean, got %s", name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

void tdm_ls3_set_str(lua_State *L, const char *name, const char *v) {
  if (v && *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, name);
  }
}

void tdm_ls3_set_int(lua_State *L, const char *name, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

void tdm_ls3_push_answer(lua_State *L, const tdm_s3_job *j) {
  const tdm_s3_answer *a = &j->answer;
  tdm_ls3_set_str(L, "md5_source", j->md5_source);
  tdm_ls3_set_str(L, "checksum_algorithm", a->ck_algo);
  tdm_ls3_set_str(L, "checksum", a->ck_value);
  tdm_ls3_set_str(L, "sse", a->sse_c ? "SSE-C" : a->sse);
  tdm_ls3_set_str(L, "bucket_region", a->bucket_region);
}

void tdm_ls3_push_result(lua_State *L, const tdm_s3_job *j) {
  lua_createtable(L, 0, 12);
  lua_pushboolean(L, j->ok);
  lua_setfield(L, -2, "ok");
  if (j->ok) {
    tdm_ls3_set_str(L, "md5", j->md5);
    tdm_ls3_set_str(L, "etag", j->etag);
    tdm_ls3_set_int(L, "bytes", (lua_Integer)j->bytes);
  } else {
    tdm_ls3_set_str(L, "error", j->err.message);
    tdm_ls3_set_str(L, "code", j->err.code);
  }
  tdm_ls3_push_answer(L, j);
  tdm_ls3_set_int(L, "attempts", j->attempts);
  if (j->interrupted) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "interrupted");
  }
}
