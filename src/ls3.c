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
#include <time.h>

#include "lbind.h"

#define CLIENT "tdm.S3Client"
#define BATCH "tdm.S3Batch"

typedef struct lclient {
  tdm_s3 *c;                   /* NULL once closed */
  int running;                 /* inside transfer(): close() must wait */
} lclient;

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

static lclient *check_client(lua_State *L, int idx) {
  lclient *u = luaL_checkudata(L, idx, CLIENT);
  if (!u->c) luaL_error(L, "attempt to use a closed S3 client");
  return u;
}

/* ---- settings ----------------------------------------------------------- */

static const char *opt_string(lua_State *L, int t, const char *name) {
  const char *s = NULL;
  int ty = lua_getfield(L, t, name);
  if (ty == LUA_TSTRING || ty == LUA_TNUMBER) s = lua_tostring(L, -1);
  else if (ty != LUA_TNIL)
    luaL_error(L, "S3 client setting '%s': expected a string, got %s", name,
               luaL_typename(L, -1));
  lua_pop(L, 1);   /* the table keeps the string alive */
  return s;
}

static double opt_number(lua_State *L, int t, const char *name,
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

/* s3_client{ bucket=, region=, endpoint=, ca_bundle=, profile=, jobs=,
 * multipart_threshold=, part_size=, max_attempts=, connect_timeout=,
 * stall_timeout=, backoff_base=, backoff_cap=, path_style= (boolean) }
 * -> client | nil, msg, code. */
static int l_s3_client(lua_State *L) {
  tdm_s3_config cfg;
  tdm_error err;
  lclient *u;
  int ty;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tdm_s3_config_defaults(&cfg);
  cfg.bucket = opt_string(L, 1, "bucket");
  cfg.region = opt_string(L, 1, "region");
  cfg.endpoint = opt_string(L, 1, "endpoint");
  cfg.ca_bundle = opt_string(L, 1, "ca_bundle");
  cfg.profile = opt_string(L, 1, "profile");
  cfg.jobs = (int)opt_number(L, 1, "jobs", cfg.jobs);
  cfg.multipart_threshold = (uint64_t)opt_number(L, 1, "multipart_threshold",
                                       (double)cfg.multipart_threshold);
  cfg.part_size = (uint64_t)opt_number(L, 1, "part_size",
                                       (double)cfg.part_size);
  cfg.max_attempts = (int)opt_number(L, 1, "max_attempts",
                                     cfg.max_attempts);
  cfg.connect_timeout = (long)opt_number(L, 1, "connect_timeout",
                                         (double)cfg.connect_timeout);
  cfg.stall_timeout = (long)opt_number(L, 1, "stall_timeout",
                                       (double)cfg.stall_timeout);
  cfg.backoff_base = opt_number(L, 1, "backoff_base", cfg.backoff_base);
  cfg.backoff_cap = opt_number(L, 1, "backoff_cap", cfg.backoff_cap);
  ty = lua_getfield(L, 1, "path_style");
  if (ty == LUA_TBOOLEAN) cfg.path_style = lua_toboolean(L, -1);
  else if (ty != LUA_TNIL)
    return luaL_error(L, "S3 client setting 'path_style': expected a "
                      "boolean");
  lua_pop(L, 1);
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

static void set_str(lua_State *L, const char *name, const char *v) {
  if (v && *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, name);
  }
}

static void set_int(lua_State *L, const char *name, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, name);
}

/* Push a transfer result { ok, md5, bytes, attempts, etag, error, code,
 * interrupted }. */
static void push_result(lua_State *L, const tdm_s3_job *j) {
  lua_createtable(L, 0, 8);
  lua_pushboolean(L, j->ok);
  lua_setfield(L, -2, "ok");
  if (j->ok) {
    set_str(L, "md5", j->md5);
    set_str(L, "etag", j->etag);
    set_int(L, "bytes", (lua_Integer)j->bytes);
  } else {
    set_str(L, "error", j->err.message);
    set_str(L, "code", j->err.code);
  }
  set_int(L, "attempts", j->attempts);
  if (j->interrupted) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "interrupted");
  }
}

/* ---- single operations ---------------------------------------------------- */

/* c:head(key) -> { size, etag, md5, last_modified, metadata = {} } |
 * nil, msg, code. */
static int l_head(lua_State *L) {
  lclient *u = check_client(L, 1);
  const char *key = luaL_checkstring(L, 2);
  lbatch *h = new_holder(L, 1, 1);
  tdm_s3_job *j = &h->jobs[0];
  int i, r;
  j->op = TDM_S3_HEAD;
  j->key = hold(L, h, key);
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  lua_createtable(L, 0, 6);
  set_int(L, "size", (lua_Integer)j->bytes);
  set_str(L, "etag", j->etag);
  set_str(L, "md5", j->md5);
  lua_pushnumber(L, j->last_modified);
  lua_setfield(L, -2, "last_modified");
  set_int(L, "attempts", j->attempts);
  lua_createtable(L, 0, j->nmeta);
  for (i = 0; i < j->nmeta; i++) {
    lua_pushstring(L, j->meta[i].value);
    lua_setfield(L, -2, j->meta[i].name);
  }
  lua_setfield(L, -2, "metadata");
  return 1;
}

/* c:get(key, path) -> { md5, bytes, etag, attempts } | nil, msg, code. */
static int l_get(lua_State *L) {
  lclient *u = check_client(L, 1);
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
  push_result(L, j);
  return 1;
}

/* c:put(path, key [, { content_type = }]) -> { md5, bytes, etag, attempts }
 * | nil, msg, code. */
static int l_put(lua_State *L) {
  lclient *u = check_client(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *key = luaL_checkstring(L, 3);
  const char *ctype = NULL;
  lbatch *h;
  tdm_s3_job *j;
  int r;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    ctype = opt_string(L, 4, "content_type");
  }
  h = new_holder(L, 1, 1);
  j = &h->jobs[0];
  j->op = TDM_S3_PUT;
  j->key = hold(L, h, key);
  j->path = hold(L, h, path);
  j->content_type = hold(L, h, ctype);
  if ((r = run(L, u, h, 1)) != 0) return r;
  if (!j->ok) return job_fail(L, j);
  push_result(L, j);
  return 1;
}

/* c:delete(key) -> true | nil, msg, code. */
static int l_delete(lua_State *L) {
  lclient *u = check_client(L, 1);
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
    set_int(L, "size", (lua_Integer)o->size);
    set_str(L, "etag", o->etag);
    set_str(L, "md5", o->md5);
    lua_pushnumber(L, o->last_modified);
    lua_setfield(L, -2, "last_modified");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (j->next_token) lua_pushstring(L, j->next_token);
  else lua_pushnil(L);
  return 2;
}
/* c:list_page(prefix [, max_keys [, token [, start_after]]]) ->
 * { {key, size, etag, md5, last_modified}, ... }, next_token|nil |
 * nil, msg, code. */
static int l_list_page(lua_State *L) {
  lclient *u = check_client(L, 1);
  const char *prefix = luaL_optstring(L, 2, "");
  lua_Integer max_keys = luaL_optinteger(L, 3, 0);
  const char *token = luaL_optstring(L, 4, NULL);
  const char *after = luaL_optstring(L, 5, NULL);
  lbatch *h;
  tdm_s3_job *j;
  int r;
  luaL_argcheck(L, max_keys >= 0 && max_keys <= 1000, 3,
                "max_keys must be 1..1000");
  h = new_holder(L, 1, 1);
  j = &h->jobs[0];
  j->op = TDM_S3_LIST;
  j->key = hold(L, h, prefix);
  j->max_keys = (int)max_keys;
  j->token = hold(L, h, token);
  j->start_after = hold(L, h, after);
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

/* c:list_page_async([prefix [, max_keys [, token]]]) -> listing. */
static int l_list_page_async(lua_State *L) {
  lclient *u = check_client(L, 1);
  const char *prefix = luaL_optstring(L, 2, "");
  lua_Integer max_keys = luaL_optinteger(L, 3, 0);
  const char *token = luaL_optstring(L, 4, NULL);
  llisting *l;
  lbatch *h;
  luaL_argcheck(L, max_keys >= 0 && max_keys <= 1000, 3,
                "max_keys must be 1..1000");
  if (u->running)
    return luaL_error(L, "list_page_async: the S3 client is busy (a "
                      "transfer or another listing is running on it)");
  lua_settop(L, 4);
  h = new_holder(L, 1, 1);                              /* 5 */
  h->jobs[0].op = TDM_S3_LIST;
  h->jobs[0].key = hold(L, h, prefix);
  h->jobs[0].max_keys = (int)max_keys;
  h->jobs[0].token = hold(L, h, token);
  l = lua_newuserdatauv(L, sizeof *l, 1);               /* 6 */
  memset(l, 0, sizeof *l);
  atomic_init(&l->finished, 0);
  luaL_setmetatable(L, LISTING);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, 6, 1);
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
  lclient *u = check_client(L, 1);
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
        set_str(L, "key", j->keys[e]);
        set_str(L, "code", j->err.code);
        set_str(L, "message", j->err.message);
        lua_rawseti(L, -2, (lua_Integer)++i);
      }
      continue;
    }
    for (e = 0; e < j->nerrors; e++) {
      lua_createtable(L, 0, 3);
      set_str(L, "key", j->errors[e].key);
      set_str(L, "code", j->errors[e].code);
      set_str(L, "message", j->errors[e].message);
      lua_rawseti(L, -2, (lua_Integer)++i);
    }
  }
  lua_setfield(L, -2, "errors");
  return 1;
}

/* c:presign(method, key, seconds) -> url | nil, msg, code. */
static int l_presign(lua_State *L) {
  lclient *u = check_client(L, 1);
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

/* ---- the transfer queue ------------------------------------------------- */

/* c:queue(opts) runs transfers as they are added: a fixed set of job
 * slots feeds the core's open-ended batch, jobs waiting for a slot wait in
 * a Lua table, and each pump steps the loop and delivers what finished.
 * c:transfer(jobs) is a queue that is given everything, then run out.
 * User values: 1 the client, 2 waiting jobs (id -> {op, key, path,
 * content_type}), 3 on_complete, 4 on_progress, 5 results (id -> result;
 * transfer() only), 6 the first callback error (transfer() only). */

#define QUEUE "tdm.S3Queue"
enum { QV_CLIENT = 1, QV_WAITING, QV_COMPLETE, QV_PROGRESS, QV_RESULTS,
       QV_ERROR, QV_COUNT = QV_ERROR };

typedef struct lqueue {
  lclient *u;
  tdm_s3_batch *b;             /* NULL once closed */
  tdm_s3_job *jobs;            /* cap slots */
  char **strs;                 /* 3 per slot: key, path, content_type */
  lua_Integer *ids;            /* the job id in each busy slot */
  size_t cap, *free_slots, nfree;
  size_t *done, ndone, done_pos;   /* taken from the core, not delivered */
  lua_Integer added, started, completed;
  int keep;                    /* transfer(): keep results, defer errors */
  int have_err;
  size_t last_files;
  uint64_t last_bytes;
  double last_t;
} lqueue;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_slot_strings(lqueue *q, size_t slot) {
  int k;
  for (k = 0; k < 3; k++) {
    free(q->strs[slot * 3 + k]);
    q->strs[slot * 3 + k] = NULL;
  }
}

/* Abort what is in flight (temp files removed, uploads aborted), free
 * everything, give the client back. Safe to call twice. */
static void queue_release(lqueue *q) {
  size_t i;
  if (q->b) {
    tdm_s3_batch_free(q->b);
    q->b = NULL;
    q->u->running = 0;
  }
  for (i = 0; q->jobs && i < q->cap; i++) tdm_s3_job_clear(&q->jobs[i]);
  for (i = 0; q->strs && i < q->cap; i++) free_slot_strings(q, i);
  free(q->jobs);
  free(q->strs);
  free(q->ids);
  free(q->free_slots);
  free(q->done);
  q->jobs = NULL;
  q->strs = NULL;
  q->ids = NULL;
  q->free_slots = q->done = NULL;
}

static lqueue *check_queue(lua_State *L, int idx) {
  lqueue *q = luaL_checkudata(L, idx, QUEUE);
  if (!q->b) luaL_error(L, "attempt to use a closed transfer queue");
  return q;
}

/* Push a queue on the client at client_idx with the options table at
 * opts_idx (or none): { jobs = n, on_complete = f, on_progress = g }. */
static lqueue *queue_open(lua_State *L, int client_idx, int opts_idx,
                          int keep) {
  lclient *u = check_client(L, client_idx);
  int conc = 0, k;
  lqueue *q;
  tdm_error err;
  if (u->running)
    luaL_error(L, "S3 client is busy (a transfer, a queue or a listing is "
               "running on it)");
  q = lua_newuserdatauv(L, sizeof *q, QV_COUNT);
  memset(q, 0, sizeof *q);
  luaL_setmetatable(L, QUEUE);
  lua_pushvalue(L, client_idx);
  lua_setiuservalue(L, -2, QV_CLIENT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, QV_WAITING);
  if (opts_idx && lua_istable(L, opts_idx)) {
    conc = (int)opt_number(L, opts_idx, "jobs", 0);
    for (k = 0; k < 2; k++) {
      int ty = lua_getfield(L, opts_idx, k ? "on_progress" : "on_complete");
      if (ty != LUA_TNIL && ty != LUA_TFUNCTION)
        luaL_error(L, "transfer option '%s': expected a function, got %s",
                   k ? "on_progress" : "on_complete", luaL_typename(L, -1));
      lua_setiuservalue(L, -2, k ? QV_PROGRESS : QV_COMPLETE);
    }
  }
  if (keep) {
    lua_newtable(L);
    lua_setiuservalue(L, -2, QV_RESULTS);
  }
  q->u = u;
  q->keep = keep;
  q->last_files = (size_t)-1;
  if (conc <= 0) conc = tdm_s3_default_jobs(u->c);
  /* in flight + GETs being flushed (up to 2 x conc) + a margin */
  q->cap = 3 * (size_t)conc + 8;
  q->jobs = calloc(q->cap, sizeof *q->jobs);
  q->strs = calloc(q->cap * 3, sizeof *q->strs);
  q->ids = calloc(q->cap, sizeof *q->ids);
  q->free_slots = calloc(q->cap, sizeof *q->free_slots);
  q->done = calloc(q->cap, sizeof *q->done);
  if (!q->jobs || !q->strs || !q->ids || !q->free_slots || !q->done)
    luaL_error(L, "S3: out of memory");
  for (q->nfree = 0; q->nfree < q->cap; q->nfree++)
    q->free_slots[q->nfree] = q->cap - 1 - q->nfree;
  if (!(q->b = tdm_s3_queue_new(u->c, q->jobs, q->cap, conc, &err)))
    luaL_error(L, "%s", err.message);
  u->running = 1;
  return q;
}

typedef struct job_fields { const char *op, *key, *path, *ct; } job_fields;

/* Check the job table at idx (`what` names it in errors); raises. */
static void check_job(lua_State *L, int idx, const char *what,
                      job_fields *f) {
  if (!lua_istable(L, idx)) luaL_error(L, "%s is not a table", what);
  f->op = opt_string(L, idx, "op");
  f->key = opt_string(L, idx, "key");
  f->path = opt_string(L, idx, "path");
  f->ct = opt_string(L, idx, "content_type");
  if (!f->op || (strcmp(f->op, "get") != 0 && strcmp(f->op, "put") != 0))
    luaL_error(L, "%s.op must be \"get\" or \"put\"", what);
  if (!f->key || !f->path) luaL_error(L, "%s needs key and path", what);
}

/* Check the job table at idx and queue it; returns its id. The queue is
 * at qidx. */
static lua_Integer queue_add(lua_State *L, int qidx, int idx,
                             const char *what) {
  lqueue *q = check_queue(L, qidx);
  job_fields f;
  check_job(L, idx, what, &f);
  lua_getiuservalue(L, qidx, QV_WAITING);
  lua_createtable(L, 4, 0);
  lua_pushstring(L, f.op);
  lua_rawseti(L, -2, 1);
  lua_pushstring(L, f.key);
  lua_rawseti(L, -2, 2);
  lua_pushstring(L, f.path);
  lua_rawseti(L, -2, 3);
  if (f.ct) {
    lua_pushstring(L, f.ct);
    lua_rawseti(L, -2, 4);
  }
  lua_rawseti(L, -2, q->added + 1);
  lua_pop(L, 1);
  return ++q->added;
}

/* A copy of the string at index k of the table on top, or NULL. */
static char *dup_field(lua_State *L, int k) {
  char *d = NULL;
  if (lua_rawgeti(L, -1, k) == LUA_TSTRING &&
      !(d = strdup(lua_tostring(L, -1))))
    luaL_error(L, "S3: out of memory");
  lua_pop(L, 1);
  return d;
}

/* Move waiting jobs into free slots and submit them. */
static void queue_feed(lua_State *L, int qidx, lqueue *q) {
  tdm_error err;
  if (q->started == q->added || q->nfree == 0) return;
  lua_getiuservalue(L, qidx, QV_WAITING);
  while (q->nfree > 0 && q->started < q->added) {
    size_t slot = q->free_slots[q->nfree - 1];
    tdm_s3_job *j = &q->jobs[slot];
    lua_Integer id = q->started + 1;
    char **s = &q->strs[slot * 3];
    lua_rawgeti(L, -1, id);
    lua_rawgeti(L, -1, 1);
    j->op = strcmp(lua_tostring(L, -1), "get") == 0 ? TDM_S3_GET
                                                    : TDM_S3_PUT;
    lua_pop(L, 1);
    j->key = s[0] = dup_field(L, 2);
    j->path = s[1] = dup_field(L, 3);
    j->content_type = s[2] = dup_field(L, 4);
    lua_pop(L, 1);
    if (tdm_s3_batch_submit(q->b, slot, &err) != TDM_OK)
      luaL_error(L, "%s", err.message);   /* a slot believed free: a bug */
    q->nfree--;
    q->ids[slot] = id;
    q->started = id;
    lua_pushnil(L);
    lua_rawseti(L, -2, id);
  }
  lua_pop(L, 1);
}

/* Run callback `uv` of the queue with `nargs` values on the stack. Its
 * error is raised at once, or kept (transfer()) to be raised at the end. */
static void queue_call(lua_State *L, int qidx, lqueue *q, int uv,
                       int nargs) {
  if (lua_getiuservalue(L, qidx, uv) != LUA_TFUNCTION) {
    lua_pop(L, nargs + 1);
    return;
  }
  lua_insert(L, -nargs - 1);
  if (lua_pcall(L, nargs, 0, 0) == LUA_OK) return;
  if (!q->keep) lua_error(L);
  if (!q->have_err) {
    q->have_err = 1;
    lua_setiuservalue(L, qidx, QV_ERROR);
  } else {
    lua_pop(L, 1);
  }
}

/* Deliver finished jobs: free their slots, then on_complete(id, result)
 * (after a first error of transfer(), callbacks are skipped). */
static void queue_deliver(lua_State *L, int qidx, lqueue *q) {
  while (q->done_pos < q->ndone) {
    size_t slot = q->done[q->done_pos++];
    lua_Integer id = q->ids[slot];
    push_result(L, &q->jobs[slot]);
    tdm_s3_job_clear(&q->jobs[slot]);
    free_slot_strings(q, slot);
    q->free_slots[q->nfree++] = slot;
    q->completed++;
    if (q->keep) {
      lua_getiuservalue(L, qidx, QV_RESULTS);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, id);
      lua_pop(L, 1);
    }
    if (q->have_err) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushinteger(L, id);
    lua_insert(L, -2);
    queue_call(L, qidx, q, QV_COMPLETE, 2);
  }
}

/* on_progress(files_done, files_added, bytes_done) when a file finished,
 * or bytes moved and 0.2 s passed (or the queue ran out). */
static void queue_progress(lua_State *L, int qidx, lqueue *q) {
  size_t files = 0;
  uint64_t bytes = 0;
  tdm_s3_batch_progress(q->b, &files, &bytes);
  if (q->have_err || (files == q->last_files &&
      (bytes == q->last_bytes ||
       (now_s() - q->last_t < 0.2 && q->completed < q->added))))
    return;
  q->last_files = files;
  q->last_bytes = bytes;
  q->last_t = now_s();
  lua_pushinteger(L, (lua_Integer)files);
  lua_pushinteger(L, q->added);
  lua_pushinteger(L, (lua_Integer)bytes);
  queue_call(L, qidx, q, QV_PROGRESS, 3);
}

/* One turn: feed, step the loop for up to ms, deliver, report. */
static void queue_turn(lua_State *L, int qidx, lqueue *q, int ms) {
  queue_deliver(L, qidx, q);           /* left by a raised callback */
  queue_feed(L, qidx, q);
  if (q->completed == q->added) return;
  tdm_s3_batch_step(q->b, ms);
  q->ndone = tdm_s3_batch_take_done(q->b, q->done, q->cap);
  q->done_pos = 0;
  queue_deliver(L, qidx, q);
  queue_progress(L, qidx, q);
  queue_feed(L, qidx, q);
}

/* q:add(job) -> id: queue { op = "get" | "put", key =, path =,
 * content_type = }; ids count from 1. It runs as q:pump/q:wait turn. */
static int queue_add_m(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushinteger(L, queue_add(L, 1, 2, "add: job"));
  return 1;
}

/* q:pump([ms]) -> jobs not finished yet: one turn of the loop, waiting
 * at most ms (default 0) for something to happen. */
static int queue_pump(lua_State *L) {
  lqueue *q = check_queue(L, 1);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, ms >= 0 && ms <= 60000, 2, "ms must be 0..60000");
  queue_turn(L, 1, q, (int)ms);
  lua_pushinteger(L, q->added - q->completed);
  return 1;
}

/* Turn until every job added is finished. */
static void queue_run(lua_State *L, int qidx, lqueue *q) {
  while (q->completed < q->added) queue_turn(L, qidx, q, 100);
}

/* q:wait() -> interrupted: run until every job added has finished. */
static int queue_wait(lua_State *L) {
  lqueue *q = check_queue(L, 1);
  queue_run(L, 1, q);
  lua_pushboolean(L, tdm_s3_batch_interrupted(q->b));
  return 1;
}

/* q:pending() -> jobs added and not finished. */
static int queue_pending(lua_State *L) {
  lqueue *q = check_queue(L, 1);
  lua_pushinteger(L, q->added - q->completed);
  return 1;
}

/* q:close(): abort what is still running or waiting (no partial file is
 * left) and give the client back; also __gc and __close. */
static int queue_close(lua_State *L) {
  queue_release(luaL_checkudata(L, 1, QUEUE));
  return 0;
}

/* c:queue([{ jobs = n, on_complete = f, on_progress = g }]) -> queue. */
static int l_queue(lua_State *L) {
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  queue_open(L, 1, 2, 0);
  return 1;
}

/* c:transfer(jobs [, { jobs = n, on_progress = f, on_complete = g }])
 * -> results, interrupted. Every job is checked before any runs; the
 * first callback error is raised once all have finished. */
static int l_transfer(lua_State *L) {
  lqueue *q;
  lua_Integer n, i;
  int interrupted;
  check_client(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  n = luaL_len(L, 2);
  for (i = 1; i <= n; i++) {     /* all checked before the client is held */
    char what[48];
    job_fields f;
    snprintf(what, sizeof what, "transfer: jobs[%d]", (int)i);
    lua_geti(L, 2, i);
    check_job(L, 4, what, &f);
    lua_pop(L, 1);
  }
  q = queue_open(L, 1, 3, 1);                    /* 4 */
  for (i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    queue_add(L, 4, 5, "transfer: job");
    lua_pop(L, 1);
  }
  queue_run(L, 4, q);
  interrupted = tdm_s3_batch_interrupted(q->b);
  queue_release(q);
  if (q->have_err) {
    lua_getiuservalue(L, 4, QV_ERROR);
    return lua_error(L);
  }
  lua_getiuservalue(L, 4, QV_RESULTS);
  lua_pushboolean(L, interrupted);
  return 2;
}

static const luaL_Reg queue_methods[] = {
  {"add", queue_add_m},
  {"pump", queue_pump},
  {"wait", queue_wait},
  {"pending", queue_pending},
  {"close", queue_close},
  {NULL, NULL}
};

/* ---- the client type ------------------------------------------------------ */

/* c:stats() -> { requests = n, connections = n } so far. */
static int l_stats(lua_State *L) {
  uint64_t req = 0, conn = 0;
  tdm_s3_stats(check_client(L, 1)->c, &req, &conn);
  lua_createtable(L, 0, 2);
  set_int(L, "requests", (lua_Integer)req);
  set_int(L, "connections", (lua_Integer)conn);
  return 1;
}

static int l_bucket(lua_State *L) {
  lua_pushstring(L, tdm_s3_bucket(check_client(L, 1)->c));
  return 1;
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
  {"transfer", l_transfer},
  {"queue", l_queue},
  {"bucket", l_bucket},
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

static const luaL_Reg funcs[] = {
  {"s3_client", l_s3_client},
  {"etag_match", l_etag_match},
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
  luaL_newmetatable(L, QUEUE);
  lua_pushcfunction(L, queue_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, queue_close);
  lua_setfield(L, -2, "__close");
  luaL_newlibtable(L, queue_methods);
  luaL_setfuncs(L, queue_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

int tdm_lua_open_s3(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  createmeta(L);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
