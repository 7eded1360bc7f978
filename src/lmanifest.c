/* lmanifest.c -- Lua binding of tdm/manifest.h: the tdm.Manifest type and
 * manifest_open, manifest_read, format_utc. The Prehash and ManifestSaver
 * types it works with are in lprehash.c and lsaver.c. Policy (actor
 * resolution, config) is in lua/tdm/manifest.lua. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lbind.h"

#define MANIFEST_T "tdm.Manifest"

typedef struct lmanifest { tdm_manifest *m; } lmanifest;

/* The open manifest at `idx`; raises when closed. */
static tdm_manifest *check_open(lua_State *L, int idx) {
  lmanifest *u = luaL_checkudata(L, idx, MANIFEST_T);
  if (!u->m) luaL_error(L, "attempt to use a closed manifest");
  return u->m;
}

/* ---- boxes: C storage owned by a userdata, so a raise cannot leak it -- */

#define BOX_T "tdm.ManifestBox"

typedef struct box {
  tdm_scan_report rep;  /* freed by __gc */
  tdm_buf buf;
} box;

static int box_gc(lua_State *L) {
  box *b = luaL_checkudata(L, 1, BOX_T);
  tdm_scan_report_free(&b->rep);
  tdm_buf_free(&b->buf);
  return 0;
}

/* Push a new, empty box (owned by the Lua stack slot it occupies). */
static box *new_box(lua_State *L) {
  box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(&b->rep, 0, sizeof b->rep);
  tdm_buf_init(&b->buf, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  luaL_setmetatable(L, BOX_T);
  return b;
}

/* ---- converting facts and entries ------------------------------------ */

/* Read a fact (nil | false | true | table) at `idx` into *f; `what` names
 * it in errors ("local", "s3"). Unknown fields raise. */
static void check_fact(lua_State *L, int idx, const char *what,
                       tdm_fact *f) {
  memset(f, 0, sizeof *f);
  if (lua_isnoneornil(L, idx)) return;
  f->known = 1;
  if (lua_isboolean(L, idx)) {
    f->present = lua_toboolean(L, idx);
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "'%s' must be a table, false or nil (got %s)", what,
               luaL_typename(L, idx));
  f->present = 1;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                    : "?";
    if (strcmp(k, "md5") == 0 || strcmp(k, "etag") == 0) {
      size_t len;
      const char *s;
      char *dst = k[0] == 'm' ? f->md5 : f->etag;
      size_t cap = k[0] == 'm' ? sizeof f->md5 : sizeof f->etag;
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "'%s.%s' must be a string", what, k);
      s = lua_tolstring(L, -1, &len);
      if (len >= cap) luaL_error(L, "'%s.%s' is too long", what, k);
      memcpy(dst, s, len + 1);
    } else if (strcmp(k, "size") == 0) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
        luaL_error(L, "'%s.size' must be a non-negative integer", what);
      f->has_size = 1;
      f->size = (int64_t)lua_tointeger(L, -1);
    } else if (strcmp(k, "mtime") == 0 || strcmp(k, "last_modified") == 0) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "'%s.%s' must be a number", what, k);
      f->has_mtime = 1;
      f->mtime = (double)lua_tonumber(L, -1);
    } else if (strcmp(k, "key") != 0 && strcmp(k, "metadata") != 0) {
      luaL_error(L, "unknown field '%s' in '%s' (expected md5, etag, size, "
                 "mtime)", k, what);
    }
    lua_pop(L, 1);
  }
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* Push entry i as a fresh table (see docs/lua-api.md). */
static void push_entry(lua_State *L, tdm_manifest *m, size_t i) {
  tdm_entry_view v;
  tdm_manifest_entry(m, i, &v);
  lua_createtable(L, 0, 16);
  set_str(L, "filename", v.filename);
  set_str(L, "local_path", v.local_path);
  set_str(L, "s3_url", v.s3_url);
  set_str(L, "md5_hash", v.md5_hash);
  lua_pushinteger(L, (lua_Integer)v.size_bytes);
  lua_setfield(L, -2, "size_bytes");
  lua_pushnumber(L, v.size_mb);
  lua_setfield(L, -2, "size_mb");
  lua_pushnumber(L, v.modified_timestamp);
  lua_setfield(L, -2, "modified_timestamp");
  set_str(L, "modified_date", v.modified_date);
  set_str(L, "status", v.status);
  if (v.index >= 0) {
    lua_pushinteger(L, v.index);
    lua_setfield(L, -2, "index");
  }
  set_str(L, "local_md5", v.local_md5);
  set_str(L, "s3_md5", v.s3_md5);
  set_str(L, "s3_etag", v.s3_etag);
  lua_pushboolean(L, v.local_present);
  lua_setfield(L, -2, "local_present");
  lua_pushboolean(L, v.s3_present);
  lua_setfield(L, -2, "s3_present");
}

/* Push a jansson value as a Lua value (objects -> tables, arrays ->
 * sequences, null -> nil). */
static void push_json(lua_State *L, json_t *v, int depth) {
  /* jansson parses at most 2048 levels, so neither check fires on a
   * loaded document (a raise here would leak it) */
  luaL_checkstack(L, 4, "manifest too deeply nested");
  if (depth > 4096) luaL_error(L, "manifest too deeply nested");
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      const char *k;
      size_t klen;
      json_t *x;
      lua_createtable(L, 0, (int)json_object_size(v));
      json_object_keylen_foreach(v, k, klen, x) {
        lua_pushlstring(L, k, klen);
        push_json(L, x, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case JSON_ARRAY: {
      size_t i, n = json_array_size(v);
      lua_createtable(L, (int)n, 0);
      for (i = 0; i < n; i++) {
        push_json(L, json_array_get(v, i), depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    }
    case JSON_STRING:
      lua_pushlstring(L, json_string_value(v), json_string_length(v));
      break;
    case JSON_INTEGER:
      lua_pushinteger(L, (lua_Integer)json_integer_value(v));
      break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: lua_pushnil(L); break;
  }
}

/* ---- module functions -------------------------------------------------- */

static const char *opt_field(lua_State *L, int t, const char *k) {
  const char *s;
  lua_getfield(L, t, k);
  s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1);  /* the string stays alive in the options table */
  return s;
}

/* manifest_open(actor_name, { data_root, public_url_base, prefix,
 * lock_timeout, read_only }) -> tdm.Manifest | nil, msg, code. The userdata is made
 * (closed) and metatabled before the lock is taken, so __gc always
 * releases it. */
static int l_manifest_open(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  tdm_manifest_opts o;
  lmanifest *u;
  tdm_error err;
  memset(&o, 0, sizeof o);
  luaL_checktype(L, 2, LUA_TTABLE);
  o.data_root = opt_field(L, 2, "data_root");
  o.public_url_base = opt_field(L, 2, "public_url_base");
  o.prefix = opt_field(L, 2, "prefix");
  lua_getfield(L, 2, "lock_timeout");
  o.lock_timeout = lua_isnil(L, -1) ? 30.0 : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "read_only");
  o.read_only = lua_toboolean(L, -1);
  lua_pop(L, 1);
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = NULL;
  luaL_setmetatable(L, MANIFEST_T);
  if (tdm_manifest_open(&u->m, name, &o, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 1;
}

/* manifest_read(path [, data_root]) -> table of the file (no lock)
 * | nil, msg, code. */
static int l_manifest_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *root_dir = luaL_optstring(L, 2, NULL);
  void *root;
  tdm_error err;
  if (tdm_manifest_read_file(path, root_dir, &root, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  /* push_json raises only when out of memory (see there) */
  push_json(L, root, 0);
  json_decref(root);
  return 1;
}

/* manifest_repair_identity(actor_name, { data_root =, lock_timeout = })
 * -> true | nil, msg, code: audit --fix's repair of a manifest naming
 * another actor than its file, when unambiguous. */
static int l_manifest_repair_identity(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  tdm_manifest_opts o;
  tdm_error err;
  int repaired;
  memset(&o, 0, sizeof o);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "data_root");
  o.data_root = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 2, "lock_timeout");
  o.lock_timeout = (double)luaL_optnumber(L, -1, 0);
  if (tdm_manifest_repair_identity(name, &o, &repaired, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, repaired);
  return 1;
}

/* format_utc(ts) -> "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC). */
static int l_format_utc(lua_State *L) {
  char buf[40];
  tdm_format_utc((double)luaL_checknumber(L, 1), buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

/* ---- methods ------------------------------------------------------------- */

static int m_actor_id(lua_State *L) {
  lua_pushstring(L, tdm_manifest_actor_id(check_open(L, 1)));
  return 1;
}
static int m_actor_name(lua_State *L) {
  lua_pushstring(L, tdm_manifest_actor_name(check_open(L, 1)));
  return 1;
}
static int m_path(lua_State *L) {
  lua_pushstring(L, tdm_manifest_path(check_open(L, 1)));
  return 1;
}
static int m_exists(lua_State *L) {
  lua_pushboolean(L, tdm_manifest_existed(check_open(L, 1)));
  return 1;
}
static int m_read_only(lua_State *L) {
  lua_pushboolean(L, tdm_manifest_read_only(check_open(L, 1)));
  return 1;
}
static int m_dirty(lua_State *L) {
  lua_pushboolean(L, tdm_manifest_dirty(check_open(L, 1)));
  return 1;
}
static int m_stale(lua_State *L) {
  lua_pushboolean(L, tdm_manifest_stale(check_open(L, 1)));
  return 1;
}

/* file_path(filename) -> the derived local path (filename checked). */
static int m_file_path(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  char path[TDM_PATH_MAX];
  tdm_error err;
  if (tdm_manifest_file_path(m, luaL_checkstring(L, 2), path, sizeof path,
                             &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushstring(L, path);
  return 1;
}

/* Check the image table at `idx` ({filename=, local=, s3=}); fills the
 * facts and returns the filename (kept alive by the table). */
static const char *check_image(lua_State *L, int idx, tdm_fact *loc,
                               tdm_fact *s3) {
  const char *fn;
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                    : "?";
    if (strcmp(k, "filename") != 0 && strcmp(k, "local") != 0 &&
        strcmp(k, "s3") != 0)
      luaL_error(L, "unknown field '%s' in image (expected filename, "
                 "local, s3)", k);
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "filename");
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "image 'filename' must be a string");
  fn = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "local");
  check_fact(L, -1, "local", loc);
  lua_pop(L, 1);
  lua_getfield(L, idx, "s3");
  check_fact(L, -1, "s3", s3);
  lua_pop(L, 1);
  return fn;
}

/* add_image{ filename, local, s3 } -> entry | nil, msg, code. */
static int m_add_image(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_fact loc, s3;
  tdm_error err;
  const char *fn = check_image(L, 2, &loc, &s3);
  if (tdm_manifest_add(m, fn, &loc, &s3, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  push_entry(L, m, (size_t)tdm_manifest_find(m, fn));
  return 1;
}

/* add_generation(list) -> n | nil, msg, code (all or nothing). The fact
 * arrays live in a userdata so a raise cannot leak them. */
static int m_add_generation(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  lua_Integer i, n;
  tdm_fact *locs, *s3s;
  const char **names;
  tdm_error err;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (lua_Integer)luaL_len(L, 2);
  if (n == 0) {
    lua_pushinteger(L, 0);
    return 1;
  }
  if (n > 1000000) luaL_error(L, "add_generation: too many images");
  locs = lua_newuserdatauv(L, (size_t)n * (2 * sizeof *locs +
                                           sizeof *names), 0);
  s3s = locs + n;
  names = (const char **)(void *)(s3s + n);
  for (i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    names[i] = check_image(L, -1, &locs[i], &s3s[i]);
    lua_pop(L, 1);  /* the list keeps the strings alive */
  }
  if (tdm_manifest_add_many(m, (size_t)n, names, locs, s3s, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushinteger(L, n);
  return 1;
}

/* update_image(filename, { local =, s3 = }) -> entry | nil, msg, code. */
static int m_update_image(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  const char *fn = luaL_checkstring(L, 2);
  tdm_fact loc, s3;
  tdm_error err;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                    : "?";
    if (strcmp(k, "local") != 0 && strcmp(k, "s3") != 0)
      luaL_error(L, "update_image: unknown field '%s' (only 'local' and "
                 "'s3' facts may be given; the core derives the rest)", k);
    lua_pop(L, 1);
  }
  lua_getfield(L, 3, "local");
  check_fact(L, -1, "local", &loc);
  lua_getfield(L, 3, "s3");
  check_fact(L, -1, "s3", &s3);
  lua_pop(L, 2);
  if (tdm_manifest_update(m, fn, &loc, &s3, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  push_entry(L, m, (size_t)tdm_manifest_find(m, fn));
  return 1;
}

static int m_remove_image(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_error err;
  if (tdm_manifest_remove(m, luaL_checkstring(L, 2), &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int m_get_image(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  long i = tdm_manifest_find(m, luaL_checkstring(L, 2));
  if (i < 0) {
    lua_pushnil(L);
    return 1;
  }
  push_entry(L, m, (size_t)i);
  return 1;
}

typedef struct order { const char *name; size_t i; } order;

static int cmp_order(const void *a, const void *b) {
  const order *x = a, *y = b;
  return tdm_layout_entry_cmp(x->name, y->name);
}

/* get_all_images() -> { entry, ... } ordered by index, then name. */
static int m_get_all_images(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  size_t i, n = tdm_manifest_count(m);
  order *o = lua_newuserdatauv(L, (n ? n : 1) * sizeof *o, 0);
  for (i = 0; i < n; i++) {
    tdm_entry_view v;
    tdm_manifest_entry(m, i, &v);
    o[i].name = v.filename;
    o[i].i = i;
  }
  qsort(o, n, sizeof *o, cmp_order);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    push_entry(L, m, o[i].i);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* statistics() -> the seven statistics as saving would write them. */
static int m_statistics(lua_State *L) {
  tdm_manifest_stats s;
  int k;
  tdm_manifest_statistics(check_open(L, 1), &s);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, (lua_Integer)s.images);
  lua_setfield(L, -2, TDM_STAT_IMAGES);
  lua_pushnumber(L, s.size_mb);
  lua_setfield(L, -2, TDM_STAT_SIZE_MB);
  for (k = 0; k < TDM_ST_COUNT; k++) {
    lua_pushinteger(L, (lua_Integer)s.count[k]);
    lua_setfield(L, -2, tdm_stat_count_key((tdm_status)k));
  }
  return 1;
}

static void push_names(lua_State *L, const tdm_scan_item *v, size_t n,
                       const char *field) {
  size_t i;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_pushstring(L, v[i].name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, field);
}


/* scan_local([{ verify = false, jobs = 2, prehash = p }]) -> report |
 * nil, msg, code. With a prehash (core.prehash), MD5s it has for exactly
 * these files are taken from it instead of hashing them again.
 * The C report lives in a box (userdata with __gc) while it is copied. */
static int m_scan_local(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  int verify = 0, jobs = 2;
  tdm_prehash *pre = NULL;
  tdm_error err;
  size_t i;
  box *bx;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                      : "?";
      if (strcmp(k, "verify") == 0) verify = lua_toboolean(L, -1);
      else if (strcmp(k, "jobs") == 0) jobs = (int)luaL_checkinteger(L, -1);
      else if (strcmp(k, "prehash") == 0) pre = tdm_lua_check_prehash(L, -1);
      else luaL_error(L, "scan_local: unknown option '%s'", k);
      lua_pop(L, 1);
    }
  }
  bx = new_box(L);
  if (tdm_manifest_scan_pre(m, verify, jobs, pre, &bx->rep, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_createtable(L, 0, 8);
  push_names(L, bx->rep.added, bx->rep.n_added, "added");
  push_names(L, bx->rep.changed, bx->rep.n_changed, "changed");
  push_names(L, bx->rep.vanished, bx->rep.n_vanished, "vanished");
  lua_createtable(L, (int)bx->rep.n_skipped, 0);
  for (i = 0; i < bx->rep.n_skipped; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, bx->rep.skipped[i].name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, bx->rep.skipped[i].reason);
    lua_setfield(L, -2, "reason");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "skipped");
  lua_pushinteger(L, (lua_Integer)bx->rep.hashed);
  lua_setfield(L, -2, "hashed");
  lua_pushinteger(L, (lua_Integer)bx->rep.reused);
  lua_setfield(L, -2, "reused");
  lua_pushinteger(L, (lua_Integer)bx->rep.bytes_hashed);
  lua_setfield(L, -2, "bytes_hashed");
  lua_pushinteger(L, (lua_Integer)bx->rep.n_changing);
  lua_setfield(L, -2, "changing");
  tdm_scan_report_free(&bx->rep);  /* now, not at the next GC */
  return 1;
}

/* s3_memo(filename, etag) -> md5, source | nil: what vouched for the S3
 * object's MD5 while it had this ETag (the sidecar; see
 * tdm_manifest_s3_memo). */
static int m_s3_memo(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  char md5[TDM_MD5_HEX_LEN + 1], src[TDM_MEMO_SOURCE_MAX];
  if (!tdm_manifest_s3_memo(m, luaL_checkstring(L, 2),
                            luaL_checkstring(L, 3), md5, src)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, md5);
  lua_pushstring(L, src);
  return 2;
}

/* set_s3_memo(filename, etag, md5, source) -> true | nil, msg, code. */
static int m_set_s3_memo(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_error err;
  if (tdm_manifest_set_s3_memo(m, luaL_checkstring(L, 2),
                               luaL_checkstring(L, 3),
                               luaL_checkstring(L, 4),
                               luaL_checkstring(L, 5), &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* save() -> true, written | nil, msg, code. Saving a manifest opened
 * read_only is the caller's mistake: it raises. */
static int m_save(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_error err;
  int written;
  if (tdm_manifest_read_only(m))
    return luaL_error(L, "manifest %s was opened read-only: save refused",
                      tdm_manifest_path(m));
  if (tdm_manifest_save(m, &written, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  lua_pushboolean(L, written);
  return 2;
}

/* m:save_async(saver) -> true, written | nil, msg, code: as save(), but
 * the file is written by the saver's threads, which also release the
 * manifest's lock once the new version is durable. After a written save
 * this handle holds no lock: read it, close it; a further save fails
 * ("EINVAL"). Write failures come from saver:wait(). */
static int m_save_async(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_saver *s = tdm_lua_check_saver(L, 2);
  tdm_error err;
  int written;
  if (tdm_manifest_read_only(m))
    return luaL_error(L, "manifest %s was opened read-only: save refused",
                      tdm_manifest_path(m));
  if (tdm_manifest_save_async(m, s, &written, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  lua_pushboolean(L, written);
  return 2;
}

/* encode() -> the JSON text save would write now. */
static int m_encode(lua_State *L) {
  tdm_manifest *m = check_open(L, 1);
  tdm_error err;
  box *bx = new_box(L);
  if (tdm_manifest_encode(m, &bx->buf, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushlstring(L, bx->buf.data ? bx->buf.data : "", bx->buf.len);
  tdm_buf_free(&bx->buf);
  return 1;
}

/* close/__gc/__close: release the lock; safe twice. */
static int m_close(lua_State *L) {
  lmanifest *u = luaL_checkudata(L, 1, MANIFEST_T);
  tdm_manifest_close(u->m);
  u->m = NULL;
  return 0;
}

static int m_tostring(lua_State *L) {
  lmanifest *u = luaL_checkudata(L, 1, MANIFEST_T);
  if (u->m)
    lua_pushfstring(L, "tdm.Manifest (%s)", tdm_manifest_path(u->m));
  else
    lua_pushliteral(L, "tdm.Manifest (closed)");
  return 1;
}

static const luaL_Reg methods[] = {
  {"actor_id", m_actor_id},
  {"actor_name", m_actor_name},
  {"path", m_path},
  {"exists", m_exists},
  {"read_only", m_read_only},
  {"dirty", m_dirty},
  {"stale", m_stale},
  {"file_path", m_file_path},
  {"add_image", m_add_image},
  {"add_generation", m_add_generation},
  {"update_image", m_update_image},
  {"remove_image", m_remove_image},
  {"get_image", m_get_image},
  {"get_all_images", m_get_all_images},
  {"statistics", m_statistics},
  {"scan_local", m_scan_local},
  {"s3_memo", m_s3_memo},
  {"set_s3_memo", m_set_s3_memo},
  {"save", m_save},
  {"save_async", m_save_async},
  {"encode", m_encode},
  {"close", m_close},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", m_close},
  {"__close", m_close},
  {"__tostring", m_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

static void createmeta(lua_State *L) {
  luaL_newmetatable(L, BOX_T);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, MANIFEST_T);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static const luaL_Reg funcs[] = {
  {"manifest_open", l_manifest_open},
  {"manifest_read", l_manifest_read},
  {"manifest_repair_identity", l_manifest_repair_identity},
  {"format_utc", l_format_utc},
  {NULL, NULL}
};

int tdm_lua_open_manifest(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  createmeta(L);
  luaL_setfuncs(L, funcs, 0);
  luaL_getmetatable(L, MANIFEST_T);
  lua_setfield(L, 1, "Manifest_meta");
  return 0;
}
