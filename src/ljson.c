/*
 * ljson.c -- tdm.core.json_encode: a Lua value as JSON, written by the
 * core's Python-exact writer (tdm_json_write_compact: json.dumps(v) with
 * ensure_ascii), so the HTTP API and the manifests share one writer.
 *
 *   core.json_encode(v [, { order = {keys}, array_mt = mt, null = x }])
 *
 * Objects list the keys of `order` first, in that order, then the others
 * sorted by bytes. A table is an array when its metatable is `array_mt`
 * or it has [1]; an empty table without array_mt is {}. `null` (and
 * cjson.null, a NULL light userdata) is null; NaN and infinities too.
 * Strings that are not UTF-8 have each stray byte written as U+00XX, so
 * the output is always valid JSON.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lbind.h"

#define JSON_MAX_DEPTH 200

/* A json_t owned by a userdata, so a raise in the middle of the
 * conversion frees what was built. */
typedef struct holder {
  json_t *root;
  char *text;                  /* the written JSON until it is pushed */
} holder;
#define HOLDER_MT "tdm.JSONHolder"

static int holder_gc(lua_State *L) {
  holder *h = luaL_checkudata(L, 1, HOLDER_MT);
  if (h->root) json_decref(h->root);
  free(h->text);
  h->root = NULL;
  h->text = NULL;
  return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len, i;
  unsigned long c;
  if (s[0] < 0x80) return 1;
  if (s[0] < 0xc2) return 0;
  len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  c = s[0] & (0x7f >> len);
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c < 0xe000))) ||
      (len == 4 && (c < 0x10000 || c > 0x10ffff)))
    return 0;
  return len;
}

/* The string at idx as a jansson string; bytes that are not UTF-8 become
 * U+00XX (the repaired copy is built in a luaL_Buffer, popped after). */
static json_t *to_string(lua_State *L, int idx) {
  size_t n, i = 0, k;
  const unsigned char *s = (const unsigned char *)lua_tolstring(L, idx, &n);
  json_t *j;
  luaL_Buffer b;
  while (i < n && (k = utf8_len(s + i, n - i)) > 0) i += k;
  if (i == n) return json_stringn(n ? (const char *)s : "", n);
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i += k) {
    if ((k = utf8_len(s + i, n - i)) > 0) {
      luaL_addlstring(&b, (const char *)s + i, k);
    } else {
      luaL_addchar(&b, (char)(0xc0 | (s[i] >> 6)));
      luaL_addchar(&b, (char)(0x80 | (s[i] & 0x3f)));
      k = 1;
    }
  }
  luaL_pushresult(&b);
  j = json_stringn(lua_tostring(L, -1), luaL_len(L, -1));
  lua_pop(L, 1);
  return j;
}

typedef struct okey {
  const char *k;
  size_t len;
  lua_Integer rank;            /* position in `order`, or LUA_MAXINTEGER */
} okey;

static int okey_cmp(const void *a, const void *b) {
  const okey *x = a, *y = b;
  size_t m;
  int c;
  if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
  m = x->len < y->len ? x->len : y->len;
  c = memcmp(x->k, y->k, m);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Options on the stack: ORDER = rank table (key -> position), ARRAY_MT,
 * NULLV (indices, possibly nil). */
enum { OPT_RANK = 2, OPT_ARRAY_MT = 3, OPT_NULL = 4 };

static void put(lua_State *L, int idx, int depth, json_t *parent,
                const char *key, size_t klen);

/* Attach `v` (a new reference) to `parent`: appended to an array, or set
 * as key `key` of an object. Raises when out of memory. */
static void attach(lua_State *L, json_t *parent, const char *key,
                   size_t klen, json_t *v) {
  int rc;
  if (!v) luaL_error(L, "json_encode: out of memory");
  rc = key ? json_object_setn_new_nocheck(parent, key, klen, v)
           : json_array_append_new(parent, v);
  if (rc != 0) luaL_error(L, "json_encode: out of memory");
}

/* Put the fields of the table at idx into `obj`, in key order. */
static void fill_object(lua_State *L, int idx, json_t *obj, int depth) {
  size_t n = 0, i;
  okey *keys;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "json_encode: object key is a %s",
                 luaL_typename(L, -2));
    n++;
    lua_pop(L, 1);
  }
  keys = lua_newuserdatauv(L, n ? n * sizeof *keys : 1, 0);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    keys[i].k = lua_tolstring(L, -2, &keys[i].len);  /* kept by the table */
    keys[i].rank = LUA_MAXINTEGER;
    if (!lua_isnil(L, OPT_RANK)) {
      lua_pushvalue(L, -2);
      if (lua_rawget(L, OPT_RANK) == LUA_TNUMBER)
        keys[i].rank = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    i++;
    lua_pop(L, 1);
  }
  qsort(keys, n, sizeof *keys, okey_cmp);
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].k, keys[i].len);
    lua_rawget(L, idx);
    put(L, lua_gettop(L), depth + 1, obj, keys[i].k, keys[i].len);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);   /* keys */
}

/* Convert the value at idx and attach it to `parent` (under `key`, or
 * appended when key is NULL) before filling it, so the holder's tree owns
 * every json_t whatever raises. */
static void put(lua_State *L, int idx, int depth, json_t *parent,
                const char *key, size_t klen) {
  json_t *j;
  luaL_checkstack(L, 8, "json_encode: nested too deep");
  if (depth > JSON_MAX_DEPTH)
    luaL_error(L, "json_encode: nested more than %d deep", JSON_MAX_DEPTH);
  if (!lua_isnil(L, OPT_NULL) && lua_rawequal(L, idx, OPT_NULL)) {
    attach(L, parent, key, klen, json_null());
    return;
  }
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      attach(L, parent, key, klen, json_null());
      return;
    case LUA_TBOOLEAN:
      attach(L, parent, key, klen, json_boolean(lua_toboolean(L, idx)));
      return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) != NULL) break;
      attach(L, parent, key, klen, json_null());
      return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        j = json_integer(lua_tointeger(L, idx));
      else if (!isfinite(lua_tonumber(L, idx)))
        j = json_null();
      else
        j = json_real(lua_tonumber(L, idx));
      attach(L, parent, key, klen, j);
      return;
    case LUA_TSTRING:
      attach(L, parent, key, klen, to_string(L, idx));
      return;
    case LUA_TTABLE: {
      int is_array = 0;
      if (lua_getmetatable(L, idx)) {
        is_array = !lua_isnil(L, OPT_ARRAY_MT) &&
                   lua_rawequal(L, -1, OPT_ARRAY_MT);
        lua_pop(L, 1);
      }
      if (!is_array) {
        is_array = lua_rawgeti(L, idx, 1) != LUA_TNIL;
        lua_pop(L, 1);
      }
      j = is_array ? json_array() : json_object();
      attach(L, parent, key, klen, j);
      if (is_array) {
        lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
        for (i = 1; i <= n; i++) {
          lua_rawgeti(L, idx, i);
          put(L, lua_gettop(L), depth + 1, j, NULL, 0);
          lua_pop(L, 1);
        }
      } else {
        fill_object(L, idx, j, depth);
      }
      return;
    }
    default:
      break;
  }
  luaL_error(L, "json_encode: cannot encode a %s", luaL_typename(L, idx));
}

/* json_encode(v [, opts]) -> JSON text | raises (a value that cannot be
 * encoded: a function, a non-string key, nesting past the limit). */
static int l_json_encode(lua_State *L) {
  holder *h;
  tdm_buf out;
  tdm_error err;
  int rc;
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_createtable(L, 0, 0);                        /* 3: rank */
  lua_pushnil(L);                                  /* 4: array_mt */
  lua_pushnil(L);                                  /* 5: null */
  if (lua_istable(L, 2)) {
    lua_Integer i, n;
    if (lua_getfield(L, 2, "order") == LUA_TTABLE) {
      n = (lua_Integer)luaL_len(L, -1);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_pushinteger(L, i);
        lua_rawset(L, 3);
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "array_mt");
    lua_replace(L, 4);
    lua_getfield(L, 2, "null");
    lua_replace(L, 5);
  }
  /* the OPT_* indices: 1 opts, 2 rank, 3 array_mt, 4 null, 5 the value */
  lua_pushvalue(L, 1);
  lua_remove(L, 1);
  h = lua_newuserdatauv(L, sizeof *h, 0);          /* 6 */
  h->root = NULL;
  h->text = NULL;
  luaL_setmetatable(L, HOLDER_MT);
  if (!(h->root = json_array())) return luaL_error(L, "json_encode: out of "
                                                   "memory");
  put(L, 5, 0, h->root, NULL, 0);
  tdm_buf_init(&out, (size_t)1 << 30);
  rc = tdm_json_write_compact(json_array_get(h->root, 0), &out, &err);
  json_decref(h->root);
  h->root = NULL;
  h->text = out.data;               /* freed by the holder if a raise */
  if (rc != TDM_OK) return luaL_error(L, "json_encode: %s", err.message);
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  free(h->text);
  h->text = NULL;
  return 1;
}

static const luaL_Reg funcs[] = {
  {"json_encode", l_json_encode},
  {NULL, NULL}
};

int tdm_lua_open_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tdm_lua_new_closable(L, HOLDER_MT, holder_gc, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
