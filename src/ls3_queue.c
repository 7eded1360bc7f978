/* ls3_queue.c -- transfer queues of the S3 binding.
 *
 * c:queue(opts) runs transfers as they are added: a fixed set of job
 * slots feeds the core's open-ended batch, jobs waiting for a slot wait in
 * a Lua table, and each pump steps the loop and delivers what finished.
 * c:transfer(jobs) is a queue that is given everything, then run out.
 * User values: 1 the client, 2 waiting jobs (id -> {op, key, path,
 * content_type, if_none_match}), 3 on_complete, 4 on_progress, 5 results
 * (id -> result; transfer() only), 6 the first callback error (transfer()
 * only). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ls3_int.h"

#define QUEUE "tdm.S3Queue"
enum { QV_CLIENT = 1, QV_WAITING, QV_COMPLETE, QV_PROGRESS, QV_RESULTS,
       QV_ERROR, QV_COUNT = QV_ERROR };

typedef struct lqueue {
  tdm_ls3_client *u;
  tdm_s3_batch *b;             /* NULL once closed */
  tdm_s3_job *jobs;            /* cap slots */
  char **strs;                 /* 3 per slot: key, path, content_type */
  lua_Integer *ids;            /* the job id in each busy slot */
  size_t cap, *free_slots, nfree;
  size_t *done, ndone, done_pos;   /* taken from the core, not delivered */
  lua_Integer added, started, completed;
  int keep;                    /* transfer(): keep results, defer errors */
  int have_err;
  int in_callback;             /* inside on_complete/on_progress */
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

/* The queue at idx, for what turns or closes it: not from its own
 * callbacks (the turn that runs them is still using the queue). */
static lqueue *check_idle_queue(lua_State *L, int idx, const char *what) {
  lqueue *q = luaL_checkudata(L, idx, QUEUE);
  if (q->in_callback)
    luaL_error(L, "cannot %s a transfer queue from its own callback", what);
  return q;
}

/* Push a queue on the client at client_idx with the options table at
 * opts_idx (or none): { jobs = n, on_complete = f, on_progress = g }. */
static lqueue *queue_open(lua_State *L, int client_idx, int opts_idx,
                          int keep) {
  tdm_ls3_client *u = tdm_ls3_check_client(L, client_idx);
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
    conc = (int)tdm_ls3_opt_number(L, opts_idx, "jobs", 0);
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

typedef struct job_fields {
  const char *op, *key, *path, *ct;
  int inm;                     /* if_none_match */
} job_fields;

/* Check the job table at idx (`what` names it in errors); raises. */
static void check_job(lua_State *L, int idx, const char *what,
                      job_fields *f) {
  if (!lua_istable(L, idx)) luaL_error(L, "%s is not a table", what);
  f->op = tdm_ls3_opt_string(L, idx, "op");
  f->key = tdm_ls3_opt_string(L, idx, "key");
  f->path = tdm_ls3_opt_string(L, idx, "path");
  f->ct = tdm_ls3_opt_string(L, idx, "content_type");
  f->inm = tdm_ls3_opt_bool(L, idx, "if_none_match", 0);
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
  lua_pushboolean(L, f.inm);
  lua_rawseti(L, -2, 5);
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
    lua_rawgeti(L, -1, 5);
    j->if_none_match = lua_toboolean(L, -1);
    lua_pop(L, 1);
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
  int rc;
  if (lua_getiuservalue(L, qidx, uv) != LUA_TFUNCTION) {
    lua_pop(L, nargs + 1);
    return;
  }
  lua_insert(L, -nargs - 1);
  q->in_callback++;
  rc = lua_pcall(L, nargs, 0, 0);
  q->in_callback--;
  if (rc == LUA_OK) return;
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
    tdm_ls3_push_result(L, &q->jobs[slot]);
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
 * content_type =, if_none_match = }; ids count from 1. It runs as
 * q:pump/q:wait turn. */
static int queue_add_m(lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushinteger(L, queue_add(L, 1, 2, "add: job"));
  return 1;
}

/* q:pump([ms]) -> jobs not finished yet: one turn of the loop, waiting
 * at most ms (default 0) for something to happen. */
static int queue_pump(lua_State *L) {
  lqueue *q = check_idle_queue(L, 1, "pump");
  check_queue(L, 1);
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
  lqueue *q = check_idle_queue(L, 1, "wait for");
  check_queue(L, 1);
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
  queue_release(check_idle_queue(L, 1, "close"));
  return 0;
}

/* c:queue([{ jobs = n, on_complete = f, on_progress = g }]) -> queue. */
int tdm_ls3_queue(lua_State *L) {
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  queue_open(L, 1, 2, 0);
  return 1;
}

/* c:transfer(jobs [, { jobs = n, on_progress = f, on_complete = g }])
 * -> results, interrupted. Every job is checked before any runs; the
 * first callback error is raised once all have finished. */
int tdm_ls3_transfer(lua_State *L) {
  lqueue *q;
  lua_Integer n, i;
  int interrupted;
  tdm_ls3_check_client(L, 1);
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

void tdm_ls3_queue_meta(lua_State *L) {
  tdm_lua_new_closable(L, QUEUE, queue_close, queue_methods);
}
