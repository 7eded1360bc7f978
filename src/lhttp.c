/*
 * lhttp.c -- tdm.core.http_serve: runs the core's HTTP server
 * (src/tdm_http.c) with a Lua handler module (lua/tdm/api_http.lua by
 * default).
 *
 * Threading model: one lua_State per worker thread. A Lua state is not
 * thread-safe, and one state behind a mutex would serialise every request
 * behind the slowest S3 call. The first request a worker serves creates
 * that worker's state (tdm loaded, the handler module required), kept in
 * thread-specific storage and closed by the key's destructor when the
 * server joins the thread at shutdown. No state is ever touched by two
 * threads, and no Lua value crosses between states: the caller's state
 * only supplies plain strings, copied into C memory before the server
 * starts. Workers exclude each other where it matters through the
 * manifest's flock, as separate processes would.
 *
 * Every piece of Lua work for a request -- building the request table,
 * calling the handler, reading its status, body and headers -- runs in
 * ONE protected call (trampoline): a memory error, a handler error or an
 * answer of the wrong type (a status of 200.5, a table where the body
 * belongs) becomes a 500 for that request only; the server stays up. An
 * optional per-worker memory limit (max_lua_memory) bounds each state.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "lbind.h"

#define HTTP_HANDLER_KEY "tdm.http.handler"
#define SERVER_MT "tdm.HTTPServer"

/* The binding's settings: copied from Lua into C memory before the server
 * starts, read-only while it runs. Lives in a userdata of the caller's
 * state whose __gc frees the strings. */
typedef struct binding {
  char *module;            /* handler module, require()d in each worker */
  char *lua_path, *lua_cpath;
  char **settings;         /* name, value, name, value, ... */
  size_t nsettings;        /* pairs */
  char **origins;          /* allowed origins */
  size_t norigins;
  size_t max_lua_memory;   /* bytes per worker state; 0: no limit */
  pthread_key_t key;       /* worker state */
  int key_made;
  lua_State *caller;       /* for on_ready, on the serving thread only */
  int on_ready_idx;        /* its stack index, 0: none */
} binding;

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* One line on stderr in a single write(2), so lines from different
 * workers never interleave. */
static void log_stderr(void *ud, const char *line) {
  char buf[2100];
  size_t n = strlen(line);
  (void)ud;
  if (n > sizeof buf - 2) n = sizeof buf - 2;
  memcpy(buf, line, n);
  buf[n++] = '\n';
  if (write(2, buf, n) < 0) { /* nothing sensible to do */ }
}

/* ---- worker Lua states ------------------------------------------------ */

/* A worker state's allocator: a hard limit on its memory, so one request
 * cannot take the whole process down (the allocation fails and Lua raises
 * a memory error, which the trampoline turns into a 500). */
typedef struct limited {
  size_t used, limit;      /* limit 0: none */
} limited;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  limited *m = ud;
  size_t old = ptr ? osize : 0;
  void *p;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (m->limit && nsize > old && m->used - old + nsize > m->limit)
    return NULL;
  if (!(p = realloc(ptr, nsize))) return NULL;
  m->used = m->used - old + nsize;
  return p;
}

static int panic(lua_State *L) {
  /* unreachable: all Lua work runs under lua_pcall */
  const char *msg = lua_tostring(L, -1);
  log_stderr(NULL, msg ? msg : "tdm-lua serve: Lua panic");
  return 0;
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs in a fresh worker state: package paths as the caller's, tdm.core
 * preloaded, then require(module).http_worker(settings) whose result (the
 * handler table) is stored in the registry. Stack: [1] = binding ptr. */
static int worker_init(lua_State *L) {
  binding *b = lua_touserdata(L, 1);
  size_t i;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, b->lua_path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, b->lua_cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  tdm_lua_preload(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, b->module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "http_worker");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "module '%s' has no http_worker function",
                      b->module);
  lua_createtable(L, 0, (int)b->nsettings);
  for (i = 0; i < b->nsettings; i++) {
    lua_pushstring(L, b->settings[2 * i + 1]);
    lua_setfield(L, -2, b->settings[2 * i]);
  }
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s.http_worker did not return a table",
                      b->module);
  lua_setfield(L, LUA_REGISTRYINDEX, HTTP_HANDLER_KEY);
  return 0;
}

static void close_state(void *p) {
  limited *m;
  if (!p) return;
  lua_getallocf((lua_State *)p, (void **)&m);
  lua_close((lua_State *)p);
  free(m);
}

/* The calling worker's state, created on first use; NULL (after logging
 * why) when it cannot be made. The state belongs to this thread only. */
static lua_State *worker_state(binding *b) {
  lua_State *L = pthread_getspecific(b->key);
  limited *m;
  char line[2048];
  if (L) return L;
  if (!(m = calloc(1, sizeof *m)) ||
      !(L = lua_newstate(limited_alloc, m))) {
    free(m);
    log_stderr(NULL, "tdm-lua serve: cannot create a Lua state: out of "
               "memory");
    return NULL;
  }
  lua_atpanic(L, panic);
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, worker_init);
  lua_pushlightuserdata(L, b);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    snprintf(line, sizeof line, "tdm-lua serve: cannot start a worker: %s",
             lua_tostring(L, -1));
    log_stderr(NULL, line);
    close_state(L);
    return NULL;
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  m->limit = b->max_lua_memory;   /* loading the handler is not limited */
  if (m->limit && m->used >= m->limit) {
    snprintf(line, sizeof line, "tdm-lua serve: warning: max_lua_memory "
             "(%zu bytes) is below what a worker needs to start (%zu)",
             m->limit, m->used);
    log_stderr(NULL, line);
  }
  pthread_setspecific(b->key, L);
  return L;
}

/* ---- the trampoline ---------------------------------------------------- */

typedef struct call {
  const tdm_http_request *req;
  tdm_http_response *resp;
} call;

/* Push the request table: { method, path (raw, not percent-decoded),
 * query = { raw name = raw value }, content_type, content_length,
 * stage = "headers"|"body", files = { {field, filename, content_type,
 * data} }, body }. */
static void push_request(lua_State *L, const tdm_http_request *q) {
  size_t i;
  lua_createtable(L, 0, 9);
  lua_pushstring(L, q->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, q->path);
  lua_setfield(L, -2, "path");
  lua_createtable(L, 0, (int)q->nquery);
  for (i = 0; i < q->nquery; i++) {
    lua_pushstring(L, q->query[i].value);
    lua_setfield(L, -2, q->query[i].name);
  }
  lua_setfield(L, -2, "query");
  if (q->content_type) {
    lua_pushstring(L, q->content_type);
    lua_setfield(L, -2, "content_type");
  }
  if (q->content_length) {
    lua_pushstring(L, q->content_length);
    lua_setfield(L, -2, "content_length");
  }
  lua_pushstring(L, q->stage_body ? "body" : "headers");
  lua_setfield(L, -2, "stage");
  if (q->parts) {
    lua_createtable(L, (int)q->nparts, 0);
    for (i = 0; i < q->nparts; i++) {
      const tdm_http_part *p = &q->parts[i];
      lua_createtable(L, 0, 4);
      lua_pushstring(L, p->field);
      lua_setfield(L, -2, "field");
      lua_pushstring(L, p->filename);
      lua_setfield(L, -2, "filename");
      lua_pushstring(L, p->content_type);
      lua_setfield(L, -2, "content_type");
      lua_pushlstring(L, p->data, p->len);
      lua_setfield(L, -2, "data");
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "files");
  } else if (q->body) {
    lua_pushlstring(L, q->body, q->body_len);
    lua_setfield(L, -2, "body");
  }
}

/* Read the handler's answer at base (status), base+1 (body), base+2
 * (headers) into the response; raises on anything of the wrong type. */
static void read_answer(lua_State *L, int base, tdm_http_response *resp) {
  int isint;
  lua_Integer status = lua_tointegerx(L, base, &isint);
  size_t len;
  const char *body;
  tdm_error err;
  if (lua_type(L, base) != LUA_TNUMBER || !isint || status < 100 ||
      status > 599)
    luaL_error(L, "the handler answered status %s (want an integer "
               "100..599)", luaL_tolstring(L, base, NULL));
  if (lua_isnil(L, base + 1)) {
    body = "";
    len = 0;
  } else if (lua_type(L, base + 1) == LUA_TSTRING) {
    body = lua_tolstring(L, base + 1, &len);
  } else {
    return (void)luaL_error(L, "the handler answered a %s body (want a "
                            "string)", luaL_typename(L, base + 1));
  }
  if (!lua_isnil(L, base + 2)) {
    if (!lua_istable(L, base + 2))
      luaL_error(L, "the handler answered %s headers (want a table)",
                 luaL_typename(L, base + 2));
    lua_pushnil(L);
    while (lua_next(L, base + 2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "the handler answered a header that is not string = "
                   "string");
      if (tdm_http_response_header(resp, lua_tostring(L, -2),
                                   lua_tostring(L, -1), &err) != TDM_OK)
        luaL_error(L, "%s", err.message);
      lua_pop(L, 1);
    }
  }
  if (tdm_buf_append(&resp->body, body, len, &err) != TDM_OK)
    luaL_error(L, "response body: %s", err.message);
  resp->status = (int)status;
}

/* The protected trampoline: [1] = the call. handler.preflight(req) or
 * handler.handle(req) -> status, body, headers. A preflight without the
 * function, or answering nil, leaves status 0 (go on). */
static int trampoline(lua_State *L) {
  call *k = lua_touserdata(L, 1);
  const char *fname = k->req->stage_body ? "handle" : "preflight";
  lua_getfield(L, LUA_REGISTRYINDEX, HTTP_HANDLER_KEY);   /* 2 */
  lua_getfield(L, 2, fname);                              /* 3 */
  if (!lua_isfunction(L, 3)) {
    if (!k->req->stage_body) return 0;
    return luaL_error(L, "the handler has no '%s' function", fname);
  }
  push_request(L, k->req);
  lua_call(L, 1, 3);                                      /* 3, 4, 5 */
  if (!k->req->stage_body && lua_isnil(L, 3)) return 0;
  read_answer(L, 3, k->resp);
  return 0;
}

/* The core's handler callback: this worker's state, the trampoline in one
 * lua_pcall; any failure is logged with its traceback and answered 500
 * without detail. */
static void lua_handler(void *ud, const tdm_http_request *req,
                        tdm_http_response *resp) {
  binding *b = ud;
  lua_State *L = worker_state(b);
  call k;
  char line[2048];
  if (L) {
    k.req = req;
    k.resp = resp;
    lua_settop(L, 0);
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, trampoline);
    lua_pushlightuserdata(L, &k);
    if (lua_pcall(L, 1, 0, 1) == LUA_OK) {
      lua_settop(L, 0);
      if (req->parts || req->body) lua_gc(L, LUA_GCCOLLECT);
      return;
    }
    snprintf(line, sizeof line, "tdm-lua serve: %s %.200s: handler error: "
             "%s", req->method, req->path, lua_tostring(L, -1) ?
             lua_tostring(L, -1) : "(no message: out of memory)");
    log_stderr(NULL, line);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
  }
  resp->nheaders = 0;
  tdm_buf_reset(&resp->body);
  resp->status = 500;
  tdm_buf_appends(&resp->body, "{\"error\": \"internal error\"}", NULL);
}

/* ---- the Lua function ------------------------------------------------- */

/* For hosts other than tdm-lua (a stock lua5.4 that loaded tdm.core): a
 * SIGTERM/SIGINT left at its default action would kill the server in the
 * middle of requests; while serving it asks tdm to stop instead (a second
 * one kills). tdm-lua's own handlers do the same and are left alone. */
static void on_stop_signal(int sig) {
  tdm_interrupt_request();
  signal(sig, SIG_DFL);
}

static void take_default_signal(int sig, struct sigaction *saved,
                                int *taken) {
  struct sigaction sa;
  *taken = 0;
  if (sigaction(sig, NULL, saved) != 0 || saved->sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  *taken = sigaction(sig, &sa, NULL) == 0;
}

static void binding_free(binding *b) {
  size_t i;
  free(b->module);
  free(b->lua_path);
  free(b->lua_cpath);
  for (i = 0; i < 2 * b->nsettings; i++) free(b->settings[i]);
  free(b->settings);
  for (i = 0; i < b->norigins; i++) free(b->origins[i]);
  free(b->origins);
  if (b->key_made) pthread_key_delete(b->key);
  memset(b, 0, sizeof *b);
}

static int binding_gc(lua_State *L) {
  binding_free(luaL_checkudata(L, 1, SERVER_MT));
  return 0;
}

static size_t opt_size(lua_State *L, const char *name, size_t dflt) {
  lua_Integer n;
  size_t v = dflt;
  lua_getfield(L, 1, name);
  if (!lua_isnil(L, -1)) {
    n = luaL_checkinteger(L, -1);
    if (n < 1) luaL_error(L, "http_serve: %s must be positive", name);
    v = (size_t)n;
  }
  lua_pop(L, 1);
  return v;
}

/* Copy the allowed_origins list of the options (arg 1) into the binding,
 * which owns each string as soon as it is copied (its __gc frees them if
 * a later one raises). */
static void read_origins(lua_State *L, binding *b) {
  size_t i, len;
  lua_getfield(L, 1, "allowed_origins");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  len = (size_t)luaL_len(L, -1);
  if (!(b->origins = calloc(len + 1, sizeof *b->origins)))
    luaL_error(L, "http_serve: out of memory");
  for (i = 0; i < len; i++) {
    lua_geti(L, -1, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "http_serve: allowed_origins[%d] must be a string",
                 (int)i + 1);
    if (!(b->origins[i] = dupstr(lua_tostring(L, -1))))
      luaL_error(L, "http_serve: out of memory");
    b->norigins = i + 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Copy the Lua-side options (arg 1) into the binding userdata. Raises on
 * a caller mistake; allocations failing raise too (the userdata's __gc
 * frees whatever was copied). */
static void read_options(lua_State *L, binding *b) {
  size_t n = 0, i;
  lua_getfield(L, 1, "handler");
  b->module = dupstr(luaL_optstring(L, -1, "tdm.api_http"));
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  b->lua_path = dupstr(luaL_optstring(L, -1, ""));
  lua_getfield(L, -2, "cpath");
  b->lua_cpath = dupstr(luaL_optstring(L, -1, ""));
  lua_pop(L, 3);
  if (!b->module || !b->lua_path || !b->lua_cpath)
    luaL_error(L, "http_serve: out of memory");
  lua_getfield(L, 1, "settings");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      n++;
      lua_pop(L, 1);
    }
    b->settings = calloc(2 * n + 1, sizeof *b->settings);
    if (!b->settings) luaL_error(L, "http_serve: out of memory");
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) && i < n) {
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "http_serve: settings keys must be strings");
      b->settings[2 * i] = dupstr(lua_tostring(L, -2));
      b->settings[2 * i + 1] = dupstr(luaL_tolstring(L, -1, NULL));
      lua_pop(L, 2);
      b->nsettings = ++i;
      if (!b->settings[2 * i - 2] || !b->settings[2 * i - 1])
        luaL_error(L, "http_serve: out of memory");
    }
  }
  lua_pop(L, 1);
  read_origins(L, b);
  b->max_lua_memory = opt_size(L, "max_lua_memory", 0);
}

/* on_ready(addr) in the caller's state, on the serving thread. */
static int ready(void *ud, const char *bound) {
  binding *b = ud;
  lua_State *L = b->caller;
  if (!b->on_ready_idx) return 0;
  lua_pushvalue(L, b->on_ready_idx);
  lua_pushstring(L, bound);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 1;   /* error kept on top */
  return 0;
}

/* http_serve{ listen = "127.0.0.1:8080", threads = 4,
 *             handler = "tdm.api_http", settings = { name = value },
 *             token = s|nil, allowed_origins = { "https://..." },
 *             max_upload = bytes, max_files = n, max_buffered = bytes,
 *             max_lua_memory = bytes (per worker), quiet = bool,
 *             drain_timeout = seconds, on_ready = function(addr) }
 *   -> true (stopped by SIGINT/SIGTERM) | nil, msg, code
 *
 * Blocks, serving, until tdm_interrupted(). Each worker thread runs
 * require(handler).http_worker(settings) once in its own state; the
 * returned table's preflight(req) (before the body of POST/PUT/PATCH; nil
 * means go on) and handle(req) return status, body, headers. An error in
 * on_ready stops the server and is raised. */
static int l_http_serve(lua_State *L) {
  binding *b;
  tdm_http_config cfg;
  tdm_error err;
  struct sigaction saved_term, saved_int;
  int took_term, took_int, rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  memset(&cfg, 0, sizeof cfg);
  lua_getfield(L, 1, "listen");                /* 2 */
  cfg.listen = luaL_optstring(L, 2, "127.0.0.1:8080");
  lua_getfield(L, 1, "threads");
  cfg.threads = (int)luaL_optinteger(L, -1, 4);
  luaL_argcheck(L, cfg.threads >= 1 && cfg.threads <= 256, 1,
                "threads must be 1..256");
  lua_pop(L, 1);
  lua_getfield(L, 1, "token");                 /* 3 */
  cfg.token = lua_tostring(L, 3);
  lua_getfield(L, 1, "on_ready");              /* 4 */
  b = lua_newuserdatauv(L, sizeof *b, 0);      /* 5 */
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, SERVER_MT);
  read_options(L, b);
  if (pthread_key_create(&b->key, close_state) != 0)
    return luaL_error(L, "http_serve: cannot create thread key");
  b->key_made = 1;
  b->caller = L;
  b->on_ready_idx = lua_isfunction(L, 4) ? 4 : 0;
  cfg.allowed_origins = (const char *const *)b->origins;
  cfg.norigins = b->norigins;
  cfg.max_upload = opt_size(L, "max_upload", 20971520);
  cfg.max_files = opt_size(L, "max_files", 16);
  cfg.max_buffered = opt_size(L, "max_buffered", 0);
  cfg.drain_timeout = (double)opt_size(L, "drain_timeout", 30);
  lua_getfield(L, 1, "quiet");
  cfg.access_log = !lua_toboolean(L, -1);
  lua_pop(L, 1);
  cfg.handler = lua_handler;
  cfg.handler_ud = b;
  cfg.log = log_stderr;
  cfg.on_ready = ready;
  take_default_signal(SIGTERM, &saved_term, &took_term);
  take_default_signal(SIGINT, &saved_int, &took_int);
  rc = tdm_http_serve(&cfg, &err);
  if (took_term) sigaction(SIGTERM, &saved_term, NULL);
  if (took_int) sigaction(SIGINT, &saved_int, NULL);
  if (rc != TDM_OK && strcmp(err.code, "ECANCELED") == 0 && b->on_ready_idx)
    return lua_error(L);             /* on_ready's error, on top */
  if (rc != TDM_OK) return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"http_serve", l_http_serve},
  {NULL, NULL}
};

int tdm_lua_open_http(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tdm_lua_new_closable(L, SERVER_MT, binding_gc, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
