/*
 * lsigv4.c -- Lua bindings of tdm/sigv4.h, for tests (AWS's examples,
 * the botocore oracle) and for `tdm-lua config`:
 *
 *   core.uri_encode(s [, keep_slash]) -> encoded
 *   core.sigv4_sign(req)     -> { authorization, amz_date, content_sha256 }
 *   core.sigv4_debug(req)    -> canonical_request, string_to_sign
 *                               (req.presign = true: query authentication,
 *                               req.expires seconds)
 *   core.sigv4_presign(req)  -> url (req.expires, req.scheme = "https")
 *   core.credentials([profile]) -> { access_key_id, source,
 *                                    session_token = boolean }
 *   core.region([profile [, fallback]]) -> region, source
 *
 * `req` is a table: method, host, path, query, headers, payload_hash,
 * region, service (default "s3"), when (integer UTC seconds, default now),
 * and credentials = { access_key =, secret_key =, session_token = } (when
 * absent, the AWS credential chain with req.profile). query and headers
 * are arrays of { name, value } pairs (duplicates allowed) or maps.
 *
 * The secret key and session token are copied into a C stack structure
 * only after every argument has been checked (nothing can raise while
 * they are there) and wiped before results are pushed. core.credentials
 * never returns the secret or the token.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lbind.h"

#define OUT_MAX (1024 * 1024)

/* The request as read from Lua: every string is owned by the Lua table
 * at the argument's stack slot (kept alive for the whole call). */
typedef struct lreq {
  tdm_sigv4_request r;
  const char *ak, *sk, *token;   /* NULL: resolve the chain */
  const char *profile;
  const char *scheme;
  long expires;
  int presign;
} lreq;

static const char *opt_field(lua_State *L, int t, const char *k,
                             const char *def) {
  const char *s;
  lua_getfield(L, t, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "sigv4: field '%s' must be a string", k);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);   /* still referenced by the table */
  return s;
}

/* Read a list of name/value pairs from field `k` of the table at `t`
 * into an array in a new userdata left on the stack (so it is collected
 * whatever happens). Sets *out and *n. */
static void read_pairs(lua_State *L, int t, const char *k,
                       const tdm_kv **out, size_t *n) {
  tdm_kv *v;
  size_t count = 0, i = 0;
  int tab;
  lua_getfield(L, t, k);
  tab = lua_gettop(L);
  if (lua_isnil(L, tab)) {
    *out = NULL;
    *n = 0;
    return;   /* the nil stays as a placeholder */
  }
  luaL_argexpected(L, lua_istable(L, tab), 1, "table for query/headers");
  lua_pushnil(L);
  while (lua_next(L, tab)) {
    count++;
    lua_pop(L, 1);
  }
  v = lua_newuserdatauv(L, (count ? count : 1) * sizeof *v, 0);
  lua_pushnil(L);
  while (lua_next(L, tab)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      v[i].name = lua_tostring(L, -2);
      v[i].value = lua_tostring(L, -1);
    } else if (lua_type(L, -2) == LUA_TNUMBER && lua_istable(L, -1)) {
      int pr = lua_gettop(L);
      lua_rawgeti(L, pr, 1);
      lua_rawgeti(L, pr, 2);
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "sigv4: %s entries must be { name, value } strings",
                   k);
      v[i].name = lua_tostring(L, -2);   /* owned by the pair table */
      v[i].value = lua_tostring(L, -1);
      lua_pop(L, 2);
    } else {
      luaL_error(L, "sigv4: %s must map names to strings or list "
                 "{ name, value } pairs", k);
    }
    i++;
    lua_pop(L, 1);
  }
  *out = v;
  *n = count;
}

/* Read the request table at index 1 into *q. Leaves helper values on the
 * stack; raises on a caller mistake. */
static void read_req(lua_State *L, lreq *q) {
  memset(q, 0, sizeof *q);
  luaL_checktype(L, 1, LUA_TTABLE);
  q->r.method = opt_field(L, 1, "method", "GET");
  q->r.host = opt_field(L, 1, "host", NULL);
  q->r.path = opt_field(L, 1, "path", "/");
  q->r.payload_hash = opt_field(L, 1, "payload_hash", NULL);
  q->r.region = opt_field(L, 1, "region", NULL);
  q->r.service = opt_field(L, 1, "service", "s3");
  q->profile = opt_field(L, 1, "profile", NULL);
  q->scheme = opt_field(L, 1, "scheme", "https");
  if (!q->r.host) luaL_error(L, "sigv4: field 'host' is required");
  if (!q->r.region) luaL_error(L, "sigv4: field 'region' is required");
  lua_getfield(L, 1, "when");
  if (lua_isnil(L, -1)) {
    q->r.when = time(NULL);
  } else {
    int ok;
    lua_Integer w = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "sigv4: field 'when' must be an integer");
    q->r.when = (time_t)w;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "expires");
  q->expires = lua_isnil(L, -1) ? 3600 : (long)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "presign");
  q->presign = lua_toboolean(L, -1);
  lua_pop(L, 1);
  read_pairs(L, 1, "query", &q->r.query, &q->r.nquery);
  read_pairs(L, 1, "headers", &q->r.headers, &q->r.nheaders);
  lua_getfield(L, 1, "credentials");
  if (!lua_isnil(L, -1)) {
    int c = lua_gettop(L);
    luaL_argexpected(L, lua_istable(L, c), 1, "table for credentials");
    q->ak = opt_field(L, c, "access_key", "");
    q->sk = opt_field(L, c, "secret_key", "");
    q->token = opt_field(L, c, "session_token", "");
  }
  /* the credentials table stays on the stack */
}

/* Fill *creds from the request (explicit) or the chain. No Lua call. */
static int get_creds(const lreq *q, tdm_credentials *creds,
                     tdm_error *err) {
  if (!q->ak) return tdm_credentials_resolve(creds, q->profile, err);
  memset(creds, 0, sizeof *creds);
  if (strlen(q->ak) >= sizeof creds->access_key ||
      strlen(q->sk) >= sizeof creds->secret_key ||
      strlen(q->token) >= sizeof creds->session_token)
    return tdm_error_set(err, "EINVAL", "sigv4: a credential is too long");
  memcpy(creds->access_key, q->ak, strlen(q->ak) + 1);
  memcpy(creds->secret_key, q->sk, strlen(q->sk) + 1);
  memcpy(creds->session_token, q->token, strlen(q->token) + 1);
  snprintf(creds->source, sizeof creds->source, "explicit");
  snprintf(creds->method, sizeof creds->method, "explicit");
  return TDM_OK;
}

/* core.sigv4_sign(req) -> table | nil, msg, code */
static int l_sigv4_sign(lua_State *L) {
  lreq q;
  tdm_credentials creds;
  tdm_sigv4_signed out;
  tdm_error err;
  int rc;
  read_req(L, &q);
  rc = get_creds(&q, &creds, &err);
  if (rc == TDM_OK) rc = tdm_sigv4_sign(&q.r, &creds, &out, &err);
  OPENSSL_cleanse(&creds, sizeof creds);
  if (rc != TDM_OK) return tdm_lua_fail(L, &err);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, out.authorization);
  lua_setfield(L, -2, "authorization");
  lua_pushstring(L, out.amz_date);
  lua_setfield(L, -2, "amz_date");
  lua_pushstring(L, out.content_sha256);
  lua_setfield(L, -2, "content_sha256");
  return 1;
}

/* Push a tdm_buf's content as a string and free the buffer. */
static void push_buf(lua_State *L, tdm_buf *b) {
  char *s = b->data;
  size_t n = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  /* lua_pushlstring raises only on memory exhaustion; the buffer is
   * already detached, so at worst it leaks then. */
  lua_pushlstring(L, s ? s : "", n);
  free(s);
}

/* core.sigv4_debug(req) -> canonical request, string to sign
 *                        | nil, msg, code */
static int l_sigv4_debug(lua_State *L) {
  lreq q;
  tdm_credentials creds;
  tdm_buf canon, sts;
  tdm_error err;
  int rc;
  read_req(L, &q);
  tdm_buf_init(&canon, OUT_MAX);
  tdm_buf_init(&sts, OUT_MAX);
  rc = get_creds(&q, &creds, &err);
  if (rc == TDM_OK)
    rc = q.presign ? tdm_sigv4_presign_debug(&q.r, &creds, q.expires,
                                             &canon, &sts, &err)
                   : tdm_sigv4_debug(&q.r, &creds, &canon, &sts, &err);
  OPENSSL_cleanse(&creds, sizeof creds);
  if (rc != TDM_OK) {
    tdm_buf_free(&canon);
    tdm_buf_free(&sts);
    return tdm_lua_fail(L, &err);
  }
  push_buf(L, &canon);
  push_buf(L, &sts);
  return 2;
}

/* core.sigv4_presign(req) -> url | nil, msg, code */
static int l_sigv4_presign(lua_State *L) {
  lreq q;
  tdm_credentials creds;
  tdm_buf url;
  tdm_error err;
  int rc;
  read_req(L, &q);
  tdm_buf_init(&url, OUT_MAX);
  rc = get_creds(&q, &creds, &err);
  if (rc == TDM_OK)
    rc = tdm_sigv4_presign(&q.r, &creds, q.scheme, q.expires, &url, &err);
  OPENSSL_cleanse(&creds, sizeof creds);
  if (rc != TDM_OK) {
    tdm_buf_free(&url);
    return tdm_lua_fail(L, &err);
  }
  push_buf(L, &url);
  return 1;
}

/* core.uri_encode(s [, keep_slash]) -> string */
static int l_uri_encode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int keep = lua_toboolean(L, 2);
  tdm_buf b;
  tdm_error err;
  tdm_buf_init(&b, OUT_MAX);
  if (tdm_uri_encode(s, len, keep, &b, &err) != TDM_OK) {
    tdm_buf_free(&b);
    return tdm_lua_fail(L, &err);
  }
  push_buf(L, &b);
  return 1;
}

/* core.credentials([profile]) -> { access_key_id, source, method,
 * session_token, expiration } | nil, msg, code. The secret never leaves
 * C; session_token is only whether there is one; expiration is UTC
 * seconds or absent; method is botocore's name of the provider. */
static int l_credentials(lua_State *L) {
  const char *profile = luaL_optstring(L, 1, NULL);
  tdm_credentials creds;
  tdm_error err;
  char ak[sizeof creds.access_key], src[sizeof creds.source];
  char method[sizeof creds.method];
  time_t exp;
  int has_token;
  if (tdm_credentials_resolve(&creds, profile, &err) != TDM_OK) {
    OPENSSL_cleanse(&creds, sizeof creds);
    return tdm_lua_fail(L, &err);
  }
  memcpy(ak, creds.access_key, sizeof ak);
  memcpy(src, creds.source, sizeof src);
  memcpy(method, creds.method, sizeof method);
  exp = creds.expiration;
  has_token = creds.session_token[0] != '\0';
  OPENSSL_cleanse(&creds, sizeof creds);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, ak);
  lua_setfield(L, -2, "access_key_id");
  lua_pushstring(L, src);
  lua_setfield(L, -2, "source");
  lua_pushboolean(L, has_token);
  lua_setfield(L, -2, "session_token");
  lua_pushstring(L, method);
  lua_setfield(L, -2, "method");
  if (exp) {
    lua_pushinteger(L, (lua_Integer)exp);
    lua_setfield(L, -2, "expiration");
  }
  return 1;
}

/* core.region([profile [, fallback]]) -> region, source | nil, msg, code */
static int l_region(lua_State *L) {
  const char *profile = luaL_optstring(L, 1, NULL);
  const char *fallback = luaL_optstring(L, 2, "us-west-1");
  char region[64], src[1280];
  tdm_error err;
  if (profile && !*profile) profile = NULL;
  if (tdm_region_resolve(region, sizeof region, profile, fallback, src,
                         sizeof src, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushstring(L, region);
  lua_pushstring(L, src);
  return 2;
}

static const luaL_Reg funcs[] = {
  {"uri_encode", l_uri_encode},
  {"sigv4_sign", l_sigv4_sign},
  {"sigv4_debug", l_sigv4_debug},
  {"sigv4_presign", l_sigv4_presign},
  {"credentials", l_credentials},
  {"region", l_region},
  {NULL, NULL}
};

int tdm_lua_open_sigv4(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
