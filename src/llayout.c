/*
 * llayout.c -- tdm.core.layout: the seed's vocabulary (tdm/layout.h) for
 * Lua. Every Lua module asks these functions instead of writing a rule of
 * its own. Bad arguments raise; a name that breaks a rule returns
 * nil, message, code.
 */
#include <string.h>

#include "lbind.h"

#define PATH_SZ 8192

/* Push the string in `buf` or the failure of `rc`. */
static int push_or_fail(lua_State *L, int rc, const char *buf,
                        const tdm_error *err) {
  if (rc != TDM_OK) return tdm_lua_fail(L, err);
  lua_pushstring(L, buf);
  return 1;
}

#define OUT_SZ (3 * PATH_SZ)

/* Push what `b` holds (at most OUT_SZ - 1 bytes) or the failure of `rc`;
 * b is freed before anything that can raise. */
static int push_buf(lua_State *L, int rc, tdm_buf *b, const tdm_error *err) {
  char out[OUT_SZ];
  size_t n = b->len;
  if (n >= sizeof out) n = sizeof out - 1;
  if (rc == TDM_OK && n) memcpy(out, b->data, n);
  tdm_buf_free(b);
  if (rc != TDM_OK) return tdm_lua_fail(L, err);
  lua_pushlstring(L, out, n);
  return 1;
}

/* actor_id(name) -> "0042" | nil, msg, "ENOACTOR"|"EBADNAME": the id of a
 * full actor name ({digits}_{descriptor}). */
static int l_actor_id(lua_State *L) {
  char id[TDM_ACTOR_ID_MAX + 1];
  tdm_error err;
  int rc = tdm_actor_id(luaL_checkstring(L, 1), id, sizeof id, &err);
  return push_or_fail(L, rc, id, &err);
}

/* id(x) -> "0042" | nil, msg, "ENOACTOR": the id of an actor number (an
 * integer >= 0, or a string of digits: 42, "42", "00042"). */
static int l_id(lua_State *L) {
  char id[TDM_ACTOR_ID_MAX + 1];
  tdm_error err;
  int rc;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer n;
    if (!lua_isinteger(L, 1))
      return luaL_argerror(L, 1, "actor number must be an integer");
    n = lua_tointeger(L, 1);
    rc = tdm_layout_id_of_number((int64_t)n, id, sizeof id, &err);
  } else {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    rc = tdm_layout_id_of_digits(s, len, id, sizeof id, &err);
  }
  return push_or_fail(L, rc, id, &err);
}

/* manifest_path(data_root, id) -> path. */
static int l_manifest_path(lua_State *L) {
  char out[PATH_SZ];
  tdm_error err;
  int rc = tdm_layout_manifest_path(luaL_checkstring(L, 1),
                                    luaL_checkstring(L, 2), out, sizeof out,
                                    &err);
  return push_or_fail(L, rc, out, &err);
}

/* manifest_id(filename) -> id, digits as written | nil: the inverse of
 * manifest_path for a file name ("00042_manifest.json" -> "0042",
 * "00042"). */
static int l_manifest_id(lua_State *L) {
  char id[TDM_ACTOR_ID_MAX + 1];
  const char *fn = luaL_checkstring(L, 1);
  size_t nd;
  if (!tdm_layout_manifest_id(fn, id, sizeof id, &nd)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, id);
  lua_pushlstring(L, fn, nd);
  return 2;
}

/* actor_dir(data_root, name) -> ".../actors/{name}/training_data". */
static int l_actor_dir(lua_State *L) {
  char out[PATH_SZ];
  tdm_error err;
  int rc = tdm_layout_actor_dir(luaL_checkstring(L, 1),
                                luaL_checkstring(L, 2), out, sizeof out,
                                &err);
  return push_or_fail(L, rc, out, &err);
}

/* file_path(data_root, name, filename) -> the file's path | nil, msg. */
static int l_file_path(lua_State *L) {
  char out[PATH_SZ];
  tdm_error err;
  int rc = tdm_layout_file_path(luaL_checkstring(L, 1),
                                luaL_checkstring(L, 2),
                                luaL_checkstring(L, 3), out, sizeof out,
                                &err);
  return push_or_fail(L, rc, out, &err);
}

/* absolute_file_path(data_root, name, filename) -> absolute path. */
static int l_abs_file_path(lua_State *L) {
  char out[PATH_SZ];
  tdm_error err;
  int rc = tdm_layout_abs_file_path(luaL_checkstring(L, 1),
                                    luaL_checkstring(L, 2),
                                    luaL_checkstring(L, 3), out, sizeof out,
                                    &err);
  return push_or_fail(L, rc, out, &err);
}

/* local_path(name, filename) -> "data/actors/{name}/training_data/{f}". */
static int l_local_path(lua_State *L) {
  char out[PATH_SZ];
  tdm_error err;
  int rc = tdm_layout_local_path(luaL_checkstring(L, 1),
                                 luaL_checkstring(L, 2), out, sizeof out,
                                 &err);
  return push_or_fail(L, rc, out, &err);
}

static int l_is_image_name(lua_State *L) {
  lua_pushboolean(L, tdm_is_image_name(luaL_checkstring(L, 1)));
  return 1;
}

/* image_index(filename) -> N of "..._N.ext" | nil. */
static int l_image_index(lua_State *L) {
  long i = tdm_layout_image_index(luaL_checkstring(L, 1));
  if (i < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)i);
  return 1;
}

/* image_name(name, index, ext) -> "{name}_{index}.{ext}" | nil, msg. */
static int l_image_name(lua_State *L) {
  char out[TDM_NAME_MAX + 64];
  tdm_error err;
  lua_Integer idx = luaL_checkinteger(L, 2);
  int rc = tdm_layout_image_name(luaL_checkstring(L, 1), (long)idx,
                                 luaL_checkstring(L, 3), out, sizeof out,
                                 &err);
  return push_or_fail(L, rc, out, &err);
}

/* foreign_file(filename, id) -> whether it names another actor's image. */
static int l_foreign_file(lua_State *L) {
  lua_pushboolean(L, tdm_layout_foreign_file(luaL_checkstring(L, 1),
                                             luaL_checkstring(L, 2)));
  return 1;
}

/* entry_before(a, b) -> bool: the entry order, for table.sort. */
static int l_entry_before(lua_State *L) {
  lua_pushboolean(L, tdm_layout_entry_cmp(luaL_checkstring(L, 1),
                                          luaL_checkstring(L, 2)) < 0);
  return 1;
}

/* key(prefix, name, filename) -> "{prefix}/{name}/{filename}". */
static int l_key(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "");
  const char *name = luaL_checkstring(L, 2), *fn = luaL_checkstring(L, 3);
  tdm_buf b;
  tdm_error err;
  int rc;
  tdm_buf_init(&b, OUT_SZ - 1);
  rc = tdm_layout_key(prefix, name, fn, &b, &err);
  return push_buf(L, rc, &b, &err);
}

/* split_key(prefix, key) -> actor, filename | actor, nil, reason (a sound
 * actor folder, not an image) | nil, nil, reason. */
static int l_split_key(lua_State *L) {
  char actor[TDM_NAME_MAX + 1], file[TDM_NAME_MAX + 1], reason[512];
  tdm_key_kind k = tdm_layout_split_key(luaL_optstring(L, 1, ""),
                                        luaL_checkstring(L, 2), actor, file,
                                        reason, sizeof reason);
  if (k == TDM_KEY_FILE) {
    lua_pushstring(L, actor);
    lua_pushstring(L, file);
    return 2;
  }
  if (k == TDM_KEY_NOT_IMAGE) lua_pushstring(L, actor);
  else lua_pushnil(L);
  lua_pushnil(L);
  lua_pushstring(L, reason);
  return 3;
}

/* url_base(bucket, region) -> "https://{bucket}.s3.{region}.amazonaws.com". */
static int l_url_base(lua_State *L) {
  char out[2048];
  tdm_error err;
  int rc = tdm_layout_url_base(luaL_checkstring(L, 1),
                               luaL_checkstring(L, 2), out, sizeof out,
                               &err);
  return push_or_fail(L, rc, out, &err);
}

/* public_url(base, prefix, name, filename) -> the s3_url of a file. */
static int l_public_url(lua_State *L) {
  const char *base = luaL_checkstring(L, 1);
  const char *prefix = luaL_optstring(L, 2, "");
  const char *name = luaL_checkstring(L, 3), *fn = luaL_checkstring(L, 4);
  tdm_buf b;
  tdm_error err;
  int rc;
  tdm_buf_init(&b, OUT_SZ - 1);
  rc = tdm_layout_public_url(base, prefix, name, fn, &b, &err);
  return push_buf(L, rc, &b, &err);
}

static const luaL_Reg funcs[] = {
  {"actor_id", l_actor_id},
  {"id", l_id},
  {"manifest_path", l_manifest_path},
  {"manifest_id", l_manifest_id},
  {"actor_dir", l_actor_dir},
  {"file_path", l_file_path},
  {"absolute_file_path", l_abs_file_path},
  {"local_path", l_local_path},
  {"is_image_name", l_is_image_name},
  {"image_index", l_image_index},
  {"image_name", l_image_name},
  {"foreign_file", l_foreign_file},
  {"entry_before", l_entry_before},
  {"key", l_key},
  {"split_key", l_split_key},
  {"url_base", l_url_base},
  {"public_url", l_public_url},
  {NULL, NULL}
};

/* statuses = { "synced", ... } in statistics order; statistics_keys =
 * the seven keys in the order a manifest writes them. */
static void push_names(lua_State *L) {
  int k;
  lua_createtable(L, TDM_ST_COUNT, 0);
  for (k = 0; k < TDM_ST_COUNT; k++) {
    lua_pushstring(L, tdm_status_name((tdm_status)k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "statuses");
  lua_createtable(L, TDM_ST_COUNT + 2, 0);
  lua_pushliteral(L, TDM_STAT_IMAGES);
  lua_rawseti(L, -2, 1);
  lua_pushliteral(L, TDM_STAT_SIZE_MB);
  lua_rawseti(L, -2, 2);
  for (k = 0; k < TDM_ST_COUNT; k++) {
    lua_pushstring(L, tdm_stat_count_key((tdm_status)k));
    lua_rawseti(L, -2, k + 3);
  }
  lua_setfield(L, -2, "statistics_keys");
  lua_createtable(L, 0, TDM_ST_COUNT);
  for (k = 0; k < TDM_ST_COUNT; k++) {
    lua_pushstring(L, tdm_stat_count_key((tdm_status)k));
    lua_setfield(L, -2, tdm_status_name((tdm_status)k));
  }
  lua_setfield(L, -2, "stat_key");
  lua_pushinteger(L, TDM_ACTOR_ID_PAD);
  lua_setfield(L, -2, "id_pad");
  lua_pushinteger(L, TDM_ACTOR_ID_MAX);
  lua_setfield(L, -2, "id_max_digits");
}

int tdm_lua_open_layout(lua_State *L) {
  luaL_newlib(L, funcs);
  push_names(L);
  /* the two rules tdm.core had at its top level before the layout home */
  lua_getfield(L, -1, "actor_id");
  lua_setfield(L, 1, "actor_id");
  lua_getfield(L, -1, "is_image_name");
  lua_setfield(L, 1, "is_image_name");
  lua_setfield(L, 1, "layout");
  return 0;
}
