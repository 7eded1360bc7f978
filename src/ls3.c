/* ls3.c -- Lua bindings of tdm/s3.h: core.s3_client(settings) and the
 * tdm.S3Client type (head, get, put, delete, delete_many, list_page,
 * presign, transfer, queue). lua/tdm/s3.lua builds the public tdm.s3 on
 * top.
 *
 * Lua never runs inside a libcurl or expat callback: a transfer queue
 * steps the batch and calls on_complete/on_progress under lua_pcall
 * between steps. Memory the C core allocates for a call is owned by a
 * userdata (tdm.S3Batch, tdm.S3Queue), so an error raised while pushing
 * results cannot leak it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ls3_int.h"

#define CLIENT TDM_LS3_CLIENT
#define BATCH "tdm.S3Batch"

typedef tdm_ls3_client lclient;

/* Everything one call hands to the core: jobs, string copies, the batch.
 * Released by lbatch_release (also __gc). */
typedef struct lbatch {
  tdm_s3_batch *b;
  tdm_s3_job *jobs;
  size_t n;
  char **strs;
  size_t nstrs, capstrs;
  const char **keys;           /* DeleteObjects key arrays */
} lbatch;

/* ---- settings ----------------------------------------------------------- */

/* s3_client{ bucket=, region=, endpoint=, ca_bundle=, profile=, jobs=,
 * multipart_threshold=, part_size=, max_attempts=, connect_timeout=,
 * stall_timeout=, backoff_base=, backoff_cap=, path_style= (boolean),
 * sse=, sse_kms_key_id=, checksum= ("crc32c", ...) }
 * -> client | nil, msg, code. */
static int l_s3_client(lua_State *L) {
  tdm_s3_config cfg;
  tdm_error err;
  lclient *u;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tdm_s3_config_defaults(&cfg);
  cfg.bucket = tdm_ls3_opt_string(L, 1, "bucket");
  cfg.region = tdm_ls3_opt_string(L, 1, "region");
  cfg.endpoint = tdm_ls3_opt_string(L, 1, "endpoint");
  cfg.ca_bundle = tdm_ls3_opt_string(L, 1, "ca_bundle");
  cfg.profile = tdm_ls3_opt_string(L, 1, "profile");
  cfg.jobs = (int)tdm_ls3_opt_number(L, 1, "jobs", cfg.jobs);
  cfg.multipart_threshold = (uint64_t)tdm_ls3_opt_number(L, 1, "multipart_threshold",
                                       (double)cfg.multipart_threshold);
  cfg.part_size = (uint64_t)tdm_ls3_opt_number(L, 1, "part_size",
                                       (double)cfg.part_size);
  cfg.max_attempts = (int)tdm_ls3_opt_number(L, 1, "max_attempts",
                                     cfg.max_attempts);
  cfg.connect_timeout = (long)tdm_ls3_opt_number(L, 1, "connect_timeout",
                                         (double)cfg.connect_timeout);
  cfg.stall_timeout = (long)tdm_ls3_opt_number(L, 1, "stall_timeout",
                                       (double)cfg.stall_timeout);
  cfg.backoff_base = tdm_ls3_opt_number(L, 1, "backoff_base", cfg.backoff_base);
  cfg.backoff_cap = tdm_ls3_opt_number(L, 1, "backoff_cap", cfg.backoff_cap);
  cfg.path_style = tdm_ls3_opt_bool(L, 1, "path_style", cfg.path_style);
  cfg.sse = tdm_ls3_opt_string(L, 1, "sse");
  cfg.sse_kms_key_id = tdm_ls3_opt_string(L, 1, "sse_kms_key_id");
  {
    const char *ck = tdm_ls3_opt_string(L, 1, "checksum");
    cfg.checksum = tdm_ck_from_name(ck);
    if (ck && *ck && cfg.checksum == TDM_CK_NONE)
      return luaL_error(L, "S3 client setting 'checksum': not an S3 "
                        "checksum algorithm: %s", ck);
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->c = NULL;
  u->running = 0;
  luaL_setmetatable(L, CLIENT);
  if (!(u->c = tdm_s3_new(&cfg, &err))) return tdm_lua_fail(L, &err);
  return 1;
}

/* ---- the call holder ----------------------------------------------------- */

static void lbatch_release(lbatch *h) {
  size_t i;
  tdm_s3_batch_free(h->b);
  h->b = NULL;
  if (h->jobs)
    for (i = 0; i < h->n; i++) tdm_s3_job_clear(&h->jobs[i]);
  free(h->jobs);
  h->jobs = NULL;
  for (i = 0; i < h->nstrs; i++) free(h->strs[i]);
  free(h->strs);
  h->strs = NULL;
  h->nstrs = h->capstrs = 0;
  free(h->keys);
  h->keys = NULL;
}

static int lbatch_gc(lua_State *L) {
  lbatch_release(luaL_checkudata(L, 1, BATCH));
  return 0;
}

/* Push a holder for `n` jobs; its user value 1 is the client at
 * `client_idx`, so the client outlives it. */
static lbatch *new_holder(lua_State *L, int client_idx, size_t n) {
  lbatch *h = lua_newuserdatauv(L, sizeof *h, 1);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, BATCH);
  lua_pushvalue(L, client_idx);
  lua_setiuservalue(L, -2, 1);
  h->n = n;
  h->jobs = calloc(n ? n : 1, sizeof *h->jobs);
  if (!h->jobs) luaL_error(L, "S3: out of memory");
  return h;
}

/* A copy of `s` owned by the holder. */
static const char *hold(lua_State *L, lbatch *h, const char *s) {
  char *d;
  if (!s) return NULL;
  if (h->nstrs == h->capstrs) {
    size_t cap = h->capstrs ? h->capstrs * 2 : 16;
    char **p = realloc(h->strs, cap * sizeof *p);
    if (!p) luaL_error(L, "S3: out of memory");
    h->strs = p;
    h->capstrs = cap;
  }
  if (!(d = strdup(s))) luaL_error(L, "S3: out of memory");
  h->strs[h->nstrs++] = d;
  return d;
}

static int run(lua_State *L, lclient *u, lbatch *h, int conc) {
  tdm_error err;
  if (tdm_s3_run(u->c, h->jobs, h->n, conc, NULL, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 0;
}

static int job_fail(lua_State *L, const tdm_s3_job *j) {
  return tdm_lua_fail(L, &j->err);
}

/* ---- single operations ---------------------------------------------------- */

/* c:head(key) -> { size, etag, md5, md5_source, checksum_algorithm,
 * checksum, sse, bucket_region, last_modified, metadata = {} } |
 * nil, msg, code. */
static int l_head(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  const char *key = luaL_checkstring(L, 2);
  lbatch *h = new_holder(L, 1, 1);
  tdm_s3_job *j = &h->jobs[0];
  int i, r;
  j->op = TDM_S3_HEAD;
  j->key = hold(L, h, key);
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  lua_createtable(L, 0, 12);
  tdm_ls3_set_int(L, "size", (lua_Integer)j->bytes);
  tdm_ls3_set_str(L, "etag", j->etag);
  tdm_ls3_set_str(L, "md5", j->md5);
  tdm_ls3_push_answer(L, j);
  lua_pushnumber(L, j->last_modified);
  lua_setfield(L, -2, "last_modified");
  tdm_ls3_set_int(L, "attempts", j->attempts);
  lua_createtable(L, 0, j->nmeta);
  for (i = 0; i < j->nmeta; i++) {
    lua_pushstring(L, j->meta[i].value);
    lua_setfield(L, -2, j->meta[i].name);
  }
  lua_setfield(L, -2, "metadata");
  return 1;
}

/* c:bucket_region() -> region | false (S3 answered without saying) |
 * nil, msg, code (no answer, or an error status without the header): the
 * x-amz-bucket-region of a HEAD of the
 * bucket, which AWS sends whatever the status (also 301/400/403). */
static int l_bucket_region(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  lbatch *h = new_holder(L, 1, 1);
  tdm_s3_job *j = &h->jobs[0];
  int r;
  j->op = TDM_S3_HEAD;
  j->key = "";
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (j->answer.bucket_region[0]) {
    lua_pushstring(L, j->answer.bucket_region);
    return 1;
  }
  /* only a bucket that answered (2xx) without the header is "not said":
     a 403 or 404 tells nothing about the bucket's region */
  if (!j->ok) return job_fail(L, j);
  lua_pushboolean(L, 0);
  return 1;
}

/* c:get(key, path) -> { md5, bytes, etag, md5_source, attempts, ... }
 * | nil, msg, code. */
static int l_get(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  const char *key = luaL_checkstring(L, 2);
  const char *path = luaL_checkstring(L, 3);
  lbatch *h = new_holder(L, 1, 1);
  tdm_s3_job *j = &h->jobs[0];
  int r;
  j->op = TDM_S3_GET;
  j->key = hold(L, h, key);
  j->path = hold(L, h, path);
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  tdm_ls3_push_result(L, j);
  return 1;
}

/* c:put(path, key [, { content_type =, if_none_match = }]) -> { md5, bytes,
 * etag, attempts } | nil, msg, code. */
static int l_put(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *key = luaL_checkstring(L, 3);
  const char *ctype = NULL;
  int inm = 0;
  lbatch *h;
  tdm_s3_job *j;
  int r;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    ctype = tdm_ls3_opt_string(L, 4, "content_type");
    inm = tdm_ls3_opt_bool(L, 4, "if_none_match", 0);
  }
  h = new_holder(L, 1, 1);
  j = &h->jobs[0];
  j->op = TDM_S3_PUT;
  j->key = hold(L, h, key);
  j->path = hold(L, h, path);
  j->content_type = hold(L, h, ctype);
  j->if_none_match = inm;
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  tdm_ls3_push_result(L, j);
  return 1;
}

/* c:delete(key) -> true | nil, msg, code. */
static int l_delete(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  const char *key = luaL_checkstring(L, 2);
  lbatch *h = new_holder(L, 1, 1);
  tdm_s3_job *j = &h->jobs[0];
  int r;
  j->op = TDM_S3_DELETE;
  j->key = hold(L, h, key);
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  lua_pushboolean(L, 1);
  return 1;
}


/* Push a finished ListObjectsV2 page as its Lua results: { {key=, size=,
 * etag=, md5=, last_modified=}, ... }, next token or nil. */
static int push_page(lua_State *L, const tdm_s3_job *j) {
  size_t i;
  lua_createtable(L, (int)j->nobjects, 0);
  for (i = 0; i < j->nobjects; i++) {
    const tdm_s3_object *o = &j->objects[i];
    lua_createtable(L, 0, 5);
    lua_pushstring(L, o->key);
    lua_setfield(L, -2, "key");
    tdm_ls3_set_int(L, "size", (lua_Integer)o->size);
    tdm_ls3_set_str(L, "etag", o->etag);
    tdm_ls3_set_str(L, "md5", o->md5);
    lua_pushnumber(L, o->last_modified);
    lua_setfield(L, -2, "last_modified");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (j->next_token) lua_pushstring(L, j->next_token);
  else lua_pushnil(L);
  return 2;
}
/* Push a holder of one ListObjectsV2 job from the arguments (prefix
 * [, max_keys [, token [, start_after]]]) at 2..5. */
static lbatch *list_holder(lua_State *L) {
  const char *prefix = luaL_optstring(L, 2, "");
  lua_Integer max_keys = luaL_optinteger(L, 3, 0);
  const char *token = luaL_optstring(L, 4, NULL);
  const char *after = luaL_optstring(L, 5, NULL);
  lbatch *h;
  luaL_argcheck(L, max_keys >= 0 && max_keys <= 1000, 3,
                "max_keys must be 1..1000");
  h = new_holder(L, 1, 1);
  h->jobs[0].op = TDM_S3_LIST;
  h->jobs[0].key = hold(L, h, prefix);
  h->jobs[0].max_keys = (int)max_keys;
  h->jobs[0].token = hold(L, h, token);
  h->jobs[0].start_after = hold(L, h, after);
  return h;
}

/* c:list_page(prefix [, max_keys [, token [, start_after]]]) ->
 * { {key, size, etag, md5, last_modified}, ... }, next_token|nil |
 * nil, msg, code. */
static int l_list_page(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  lbatch *h;
  tdm_s3_job *j;
  int r;
  lua_settop(L, 5);
  h = list_holder(L);
  j = &h->jobs[0];
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  return push_page(L, j);
}

/* ---- a listing page fetched in the background ---------------------------
 * c:list_page_async(prefix, max_keys, token) starts one ListObjectsV2 page
 * on a thread of its own and returns at once; listing:wait() returns what
 * list_page would. Meanwhile the client is busy (close raises, and any
 * other request on it fails "EBUSY"), so give it a client of its own.
 * A bulk run fetches page k+1 this way while it works through page k. */

#define LISTING "tdm.S3Listing"

typedef struct llisting {
  lclient *u;                  /* the client (kept alive by uservalue 1) */
  lbatch *h;                   /* its job and strings (uservalue 1 too) */
  pthread_t th;
  int started, joined, rc;
  atomic_int finished;         /* set by the thread as it ends */
  tdm_error err;
} llisting;

static void *listing_thread(void *ud) {
  llisting *l = ud;
  l->rc = tdm_s3_run(l->u->c, l->h->jobs, 1, 1, NULL, &l->err);
  atomic_store(&l->finished, 1);
  return NULL;
}

/* Wait for the thread (once) and give the client back. */
static void listing_join(llisting *l) {
  if (l->started && !l->joined) {
    pthread_join(l->th, NULL);
    l->joined = 1;
    l->u->running = 0;
  }
}

static int listing_gc(lua_State *L) {
  listing_join(luaL_checkudata(L, 1, LISTING));
  return 0;
}

/* c:list_page_async([prefix [, max_keys [, token [, start_after]]]])
 * -> listing. */
static int l_list_page_async(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  llisting *l;
  lbatch *h;
  lua_settop(L, 5);
  h = list_holder(L);                                   /* 6 */
  if (u->running)
    return luaL_error(L, "list_page_async: the S3 client is busy (a "
                      "transfer or another listing is running on it)");
  l = lua_newuserdatauv(L, sizeof *l, 1);               /* 7 */
  memset(l, 0, sizeof *l);
  atomic_init(&l->finished, 0);
  luaL_setmetatable(L, LISTING);
  lua_pushvalue(L, 6);
  lua_setiuservalue(L, 7, 1);
  l->u = u;
  l->h = h;
  u->running = 1;
  if (pthread_create(&l->th, NULL, listing_thread, l) != 0) {
    /* no thread: fetch it now; wait() returns it */
    l->rc = tdm_s3_run(u->c, h->jobs, 1, 1, NULL, &l->err);
    u->running = 0;
    l->joined = 1;
    atomic_store(&l->finished, 1);
  }
  l->started = 1;
  return 1;
}

/* listing:ready() -> whether wait() would return at once. */
static int listing_ready(lua_State *L) {
  llisting *l = luaL_checkudata(L, 1, LISTING);
  lua_pushboolean(L, !l->h || atomic_load(&l->finished));
  return 1;
}

/* listing:wait() -> objects, next_token | nil, msg, code: as
 * c:list_page. A second wait() raises. */
static int listing_wait(lua_State *L) {
  llisting *l = luaL_checkudata(L, 1, LISTING);
  tdm_s3_job *j;
  if (!l->h) return luaL_error(L, "listing: already waited for");
  listing_join(l);
  j = &l->h->jobs[0];
  l->h = NULL;
  if (l->rc != TDM_OK) return tdm_lua_fail(L, &l->err);
  if (!j->ok) return job_fail(L, j);
  return push_page(L, j);
}

/* c:delete_many(keys) -> { deleted = {keys}, errors = { {key=, code=,
 * message=} } } | nil, msg, code (when no batch could be sent at all).
 * Batches of up to 1000 keys run concurrently. */
static int l_delete_many(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  size_t n, nb, i, k, ok = 0;
  lbatch *h;
  int r;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (size_t)luaL_len(L, 2);
  nb = (n + TDM_S3_DELETE_BATCH - 1) / TDM_S3_DELETE_BATCH;
  h = new_holder(L, 1, nb);
  h->keys = calloc(n ? n : 1, sizeof *h->keys);
  if (!h->keys) return luaL_error(L, "S3: out of memory");
  for (i = 0; i < n; i++) {
    lua_geti(L, 2, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "delete_many: keys[%d] is not a string",
                        (int)i + 1);
    h->keys[i] = hold(L, h, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  for (k = 0; k < nb; k++) {
    h->jobs[k].op = TDM_S3_DELETE_MANY;
    h->jobs[k].keys = h->keys + k * TDM_S3_DELETE_BATCH;
    h->jobs[k].nkeys = n - k * TDM_S3_DELETE_BATCH < TDM_S3_DELETE_BATCH
                       ? n - k * TDM_S3_DELETE_BATCH : TDM_S3_DELETE_BATCH;
  }
  if (nb > 0 && (r = run(L, u, h, 0)) != 0) return r;
  for (k = 0; k < nb; k++) ok += h->jobs[k].ok;
  if (nb > 0 && ok == 0) return job_fail(L, &h->jobs[0]);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  for (k = 0, i = 0; k < nb; k++)
    for (r = 0; (size_t)r < h->jobs[k].ndeleted; r++) {
      lua_pushstring(L, h->jobs[k].deleted[r]);
      lua_rawseti(L, -2, (lua_Integer)++i);
    }
  lua_setfield(L, -2, "deleted");
  lua_newtable(L);
  for (k = 0, i = 0; k < nb; k++) {
    const tdm_s3_job *j = &h->jobs[k];
    size_t e;
    if (!j->ok) {   /* the whole batch failed: every key in it did */
      for (e = 0; e < j->nkeys; e++) {
        lua_createtable(L, 0, 3);
        tdm_ls3_set_str(L, "key", j->keys[e]);
        tdm_ls3_set_str(L, "code", j->err.code);
        tdm_ls3_set_str(L, "message", j->err.message);
        lua_rawseti(L, -2, (lua_Integer)++i);
      }
      continue;
    }
    for (e = 0; e < j->nerrors; e++) {
      lua_createtable(L, 0, 3);
      tdm_ls3_set_str(L, "key", j->errors[e].key);
      tdm_ls3_set_str(L, "code", j->errors[e].code);
      tdm_ls3_set_str(L, "message", j->errors[e].message);
      lua_rawseti(L, -2, (lua_Integer)++i);
    }
  }
  lua_setfield(L, -2, "errors");
  return 1;
}

/* c:presign(method, key, seconds) -> url | nil, msg, code. */
static int l_presign(lua_State *L) {
  lclient *u = tdm_ls3_check_client(L, 1);
  const char *method = luaL_checkstring(L, 2);
  const char *key = luaL_checkstring(L, 3);
  lua_Integer secs = luaL_checkinteger(L, 4);
  lbatch *h = new_holder(L, 1, 0);
  tdm_buf url;
  tdm_error err;
  size_t len;
  char *s;
  hold(L, h, "");                 /* a slot the URL will own */
  tdm_buf_init(&url, 64 * 1024);
  if (tdm_s3_presign(u->c, method, key, (long)secs, &url, &err) != TDM_OK) {
    tdm_buf_free(&url);
    return tdm_lua_fail(L, &err);
  }
  if (!(s = tdm_buf_take(&url, &len, &err))) return tdm_lua_fail(L, &err);
  free(h->strs[h->nstrs - 1]);
  h->strs[h->nstrs - 1] = s;      /* owned by the holder from here */
  lua_pushlstring(L, s, len);
  return 1;
}

/* ---- the client type ------------------------------------------------------ */

/* c:stats() -> { requests = n, connections = n } so far. */
static int l_stats(lua_State *L) {
  uint64_t req = 0, conn = 0;
  tdm_s3_stats(tdm_ls3_check_client(L, 1)->c, &req, &conn);
  lua_createtable(L, 0, 2);
  tdm_ls3_set_int(L, "requests", (lua_Integer)req);
  tdm_ls3_set_int(L, "connections", (lua_Integer)conn);
  return 1;
}

static int l_bucket(lua_State *L) {
  lua_pushstring(L, tdm_s3_bucket(tdm_ls3_check_client(L, 1)->c));
  return 1;
}

/* c:region() -> the region requests are signed for, and the configured
 * one when S3 said the bucket is elsewhere (nil while it did not). */
static int l_region(lua_State *L) {
  const char *configured;
  lua_pushstring(L, tdm_s3_region(tdm_ls3_check_client(L, 1)->c,
                                  &configured));
  if (!configured) return 1;
  lua_pushstring(L, configured);
  return 2;
}

/* close(), __gc, __close: free the client; safe to call twice. */
static int l_close(lua_State *L) {
  lclient *u = luaL_checkudata(L, 1, CLIENT);
  if (u->running)
    return luaL_error(L, "cannot close an S3 client while a transfer, "
                      "queue or listing runs on it (close that first)");
  tdm_s3_free(u->c);
  u->c = NULL;
  return 0;
}

static int l_tostring(lua_State *L) {
  lclient *u = luaL_checkudata(L, 1, CLIENT);
  if (u->c) lua_pushfstring(L, "tdm.S3Client (s3://%s)", tdm_s3_bucket(u->c));
  else lua_pushliteral(L, "tdm.S3Client (closed)");
  return 1;
}

static const luaL_Reg methods[] = {
  {"head", l_head},
  {"get", l_get},
  {"put", l_put},
  {"delete", l_delete},
  {"delete_many", l_delete_many},
  {"list_page", l_list_page},
  {"list_page_async", l_list_page_async},
  {"presign", l_presign},
  {"transfer", tdm_ls3_transfer},
  {"queue", tdm_ls3_queue},
  {"bucket", l_bucket},
  {"region", l_region},
  {"bucket_region", l_bucket_region},
  {"stats", l_stats},
  {"close", l_close},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", l_close},
  {"__close", l_close},
  {"__tostring", l_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

/* etag_match(path, etag [, md5hex]) -> true|false | nil, msg, code:
 * whether the local file has S3 ETag `etag` (plain, or multipart for the
 * part sizes clients use). */
static int l_etag_match(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *etag = luaL_checkstring(L, 2);
  const char *md5 = luaL_optstring(L, 3, NULL);
  tdm_error err;
  int match = 0;
  if (tdm_etag_match_file(path, etag, md5, &match, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, match);
  return 1;
}

/* checksum_file(path, algo) -> base64 value as S3 writes it | nil, msg,
 * code; algo "crc32", "crc32c", "crc64nvme", "sha1" or "sha256". */
static int l_checksum_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *name = luaL_checkstring(L, 2);
  tdm_ck_algo a = tdm_ck_from_name(name);
  char b64[TDM_CK_B64_MAX];
  tdm_error err;
  if (a == TDM_CK_NONE)
    return luaL_argerror(L, 2, "not an S3 checksum algorithm");
  if (tdm_ck_file(path, a, b64, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushstring(L, b64);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"s3_client", l_s3_client},
  {"etag_match", l_etag_match},
  {"checksum_file", l_checksum_file},
  {NULL, NULL}
};

static void createmeta(lua_State *L) {
  luaL_newmetatable(L, CLIENT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, BATCH);
  lua_pushcfunction(L, lbatch_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, LISTING);
  lua_pushcfunction(L, listing_gc);
  lua_setfield(L, -2, "__gc");
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, listing_wait);
  lua_setfield(L, -2, "wait");
  lua_pushcfunction(L, listing_ready);
  lua_setfield(L, -2, "ready");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  tdm_ls3_queue_meta(L);
}

int tdm_lua_open_s3(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  createmeta(L);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
