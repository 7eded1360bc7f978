/*
 * lhttp.c -- tdm.core.http_serve: the HTTP server behind `tdm-lua serve`,
 * on libmicrohttpd (MHD).
 *
 * The binding does the HTTP mechanics -- listening, limits, multipart
 * parsing, bearer-token check, access log, graceful stop -- and hands
 * every request, its body already buffered, to a Lua handler. Routing and
 * policy live in Lua (lua/tdm/api.lua).
 *
 * Threading model: one lua_State per worker thread. A Lua state is not
 * thread-safe, and one state behind a mutex would serialise every request
 * behind the slowest S3 call. MHD runs a fixed pool of worker threads
 * (MHD_OPTION_THREAD_POOL_SIZE), each with its own event loop and its own
 * share of the connections; the first request a worker serves creates that
 * worker's state (tdm loaded, the handler module required), kept in
 * thread-specific storage and closed by the key's destructor when MHD
 * joins the thread at shutdown. No state is ever touched by two threads,
 * and no Lua value crosses between states: the caller's state only
 * supplies plain strings, copied into C memory before the daemon starts.
 * Workers exclude each other where it matters through the manifest's
 * flock, as separate processes would.
 *
 * Request life: first call (headers only) -> method/route/auth/size checks,
 * which may answer at once (401, 404, 405, 413, 415) without reading the
 * body; body calls -> multipart parts (MHD_PostProcessor) or a raw body
 * into bounded buffers (nothing more is kept once a file passes the
 * limit; MHD cannot answer in mid-body, so the 413 goes out when the body
 * ends, and a body past max_body gets its connection closed); final call
 * -> the Lua handler runs in the worker's state and returns status, body
 * and headers. The completion callback writes one access-log line.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <lualib.h>

#include "lbind.h"
#include "tdm_curl.h"
#include "tdm_mhd.h"


#define HTTP_MAX_FILES_DEFAULT 16
#define HTTP_MAX_OTHER_BODY 65536  /* body of a non-upload request */
#define HTTP_FIELD_MAX 256
#define HTTP_LOG_PATH_MAX 300
#define HTTP_HANDLER_KEY "tdm.http.handler"
#define DRAIN_IDLE_MS 2000         /* see the end of l_http_serve */

/* The server: settings copied from Lua into C memory before the daemon
 * starts, read-only while it runs (except the atomics). Lives in a
 * userdata of the caller's state whose __gc frees the strings. */
typedef struct server {
  char *module;            /* handler module, require()d in each worker */
  char *lua_path, *lua_cpath;
  char **settings;         /* name, value, name, value, ... */
  size_t nsettings;        /* pairs */
  unsigned char token_hash[32];
  int has_token;
  size_t max_upload;       /* bytes per file */
  size_t max_files;
  size_t max_body;         /* whole request */
  long long max_buffered;  /* bodies held in memory by all requests */
  double drain_timeout;    /* seconds to finish requests at shutdown */
  int quiet;               /* no access log (start/stop lines stay) */
  pthread_key_t key;       /* worker lua_State */
  int key_made;
  atomic_int inflight;     /* requests begun and not completed */
  atomic_int in_handler;   /* Lua handler calls running now */
  atomic_llong progress_ms; /* monotonic ms of the last request activity */
  atomic_llong buffered;   /* body bytes held now, all requests */
  atomic_int draining;     /* stop requested: answer with Connection: close */
} server;

typedef struct part {
  char field[HTTP_FIELD_MAX];
  char filename[HTTP_FIELD_MAX];
  char ctype[HTTP_FIELD_MAX];
  tdm_buf data;
} part;

enum { BODY_NONE, BODY_MULTIPART, BODY_RAW, BODY_DISCARD };

/* One request; allocated at its first call, freed by on_completed. */
typedef struct request {
  server *srv;
  char method[16];
  char path[HTTP_LOG_PATH_MAX + 1]; /* for the log only, truncated */
  struct timespec t0;
  int status;                 /* queued status, 0 = none yet */
  size_t bytes;               /* response body bytes */
  int kind;                   /* BODY_* */
  struct MHD_PostProcessor *pp;
  tdm_buf raw;                /* BODY_RAW: the body */
  part *parts;
  size_t nparts, capparts;
  int part_open;              /* the last part may still get data */
  size_t received;            /* body bytes seen */
  long long accounted;        /* bytes of srv->buffered that are ours */
  int err_status;             /* set while streaming: answer this */
  char err_msg[200];
} request;

/* ---- small helpers (no Lua) ------------------------------------------ */

static double elapsed_ms(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t0->tv_sec) * 1e3 +
         (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static long long now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void copy_field(char *dst, size_t dstsz, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= dstsz) n = dstsz - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
}

static void sha256(const void *data, size_t len, unsigned char out[32]) {
  unsigned int n = 32;
  EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

/* Queue `body` (copied) with `status` and the usual headers; `extra` is a
 * NULL-terminated list of name, value pairs (or NULL). Records status and
 * size in `r` for the access log. Returns MHD's verdict. */
static enum MHD_Result respond(struct MHD_Connection *c, request *r,
                               int status, const char *ctype,
                               const char *body, size_t len,
                               const char *const *extra) {
  struct MHD_Response *resp;
  enum MHD_Result ok;
  resp = MHD_create_response_from_buffer(len, (void *)body,
                                         MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", ctype);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  for (; extra && extra[0] && extra[1]; extra += 2)
    MHD_add_response_header(resp, extra[0], extra[1]);
  if (atomic_load(&r->srv->draining))
    MHD_add_response_header(resp, "Connection", "close");
  ok = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  if (ok == MHD_YES) {
    r->status = status;
    r->bytes = len;
  }
  return ok;
}

/* A JSON error {"error": msg}; msg is ASCII text of ours (no quotes or
 * backslashes need escaping beyond what we write). */
static enum MHD_Result respond_error(struct MHD_Connection *c, request *r,
                                     int status, const char *msg,
                                     const char *const *extra) {
  char body[400];
  size_t i, j = 0;
  const char *head = "{\"error\": \"";
  size_t hl = strlen(head);
  memcpy(body, head, hl);
  j = hl;
  for (i = 0; msg[i] && j < sizeof body - 8; i++) {
    unsigned char ch = (unsigned char)msg[i];
    if (ch == '"' || ch == '\\') body[j++] = '\\';
    body[j++] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
  }
  memcpy(body + j, "\"}", 2);
  j += 2;
  if (status == 503 && extra == NULL) {
    static const char *const retry[] = { "Retry-After", "5", NULL };
    extra = retry;
  }
  return respond(c, r, status, "application/json", body, j, extra);
}

/* ---- worker Lua states ------------------------------------------------ */

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void log_line(const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 1, 2)))
#endif
  ;

/* One line on stderr in a single write(2), so lines from different
 * workers never interleave. */
static void log_line(const char *fmt, ...) {
  char line[2048];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  if (write(2, line, (size_t)n) < 0) { /* nothing sensible to do */ }
}

/* Runs in a fresh worker state: package paths as the caller's, tdm.core
 * preloaded, then require(module).http_worker(settings) whose result (the
 * handler table) is stored in the registry. Stack: [1] = server ptr. */
static int worker_init(lua_State *L) {
  server *srv = lua_touserdata(L, 1);
  size_t i;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, srv->lua_path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, srv->lua_cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  tdm_lua_preload(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, srv->module);
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "http_worker");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "module '%s' has no http_worker function",
                      srv->module);
  lua_createtable(L, 0, (int)srv->nsettings);
  for (i = 0; i < srv->nsettings; i++) {
    lua_pushstring(L, srv->settings[2 * i + 1]);
    lua_setfield(L, -2, srv->settings[2 * i]);
  }
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s.http_worker did not return a table",
                      srv->module);
  lua_setfield(L, LUA_REGISTRYINDEX, HTTP_HANDLER_KEY);
  return 0;
}

static void close_state(void *p) {
  if (p) lua_close((lua_State *)p);
}

/* The calling worker's state, created on first use; NULL (after logging
 * why) when it cannot be made. The state belongs to this thread only. */
static lua_State *worker_state(server *srv) {
  lua_State *L = pthread_getspecific(srv->key);
  if (L) return L;
  L = luaL_newstate();
  if (!L) {
    log_line("tdm-lua serve: cannot create a Lua state: out of memory");
    return NULL;
  }
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, worker_init);
  lua_pushlightuserdata(L, srv);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    log_line("tdm-lua serve: cannot start a worker: %s",
             lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  lua_settop(L, 0);
  pthread_setspecific(srv->key, L);
  return L;
}

/* ---- calling the Lua handler ------------------------------------------ */

static enum MHD_Result add_kv(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value) {
  lua_State *L = cls;
  (void)kind;
  if (!key) return MHD_YES;
  lua_pushstring(L, value ? value : "");
  lua_setfield(L, -2, key);
  return MHD_YES;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Push the request table: { method, path (raw, not percent-decoded),
 * query = { raw name = raw value }, content_type, content_length,
 * stage = "headers"|"body", files = { {field, filename, content_type,
 * data} }, body }. */
static void push_request(lua_State *L, struct MHD_Connection *c,
                         request *r, const char *url, int stage_body) {
  const char *ct = header(c, "Content-Type");
  const char *cl = header(c, "Content-Length");
  size_t i;
  lua_createtable(L, 0, 9);
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, url);
  lua_setfield(L, -2, "path");
  lua_newtable(L);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_kv, L);
  lua_setfield(L, -2, "query");
  if (ct) {
    lua_pushstring(L, ct);
    lua_setfield(L, -2, "content_type");
  }
  if (cl) {
    lua_pushstring(L, cl);
    lua_setfield(L, -2, "content_length");
  }
  lua_pushstring(L, stage_body ? "body" : "headers");
  lua_setfield(L, -2, "stage");
  if (stage_body && r->kind == BODY_MULTIPART) {
    lua_createtable(L, (int)r->nparts, 0);
    for (i = 0; i < r->nparts; i++) {
      part *p = &r->parts[i];
      lua_createtable(L, 0, 4);
      lua_pushstring(L, p->field);
      lua_setfield(L, -2, "field");
      lua_pushstring(L, p->filename);
      lua_setfield(L, -2, "filename");
      lua_pushstring(L, p->ctype);
      lua_setfield(L, -2, "content_type");
      lua_pushlstring(L, p->data.data ? p->data.data : "", p->data.len);
      lua_setfield(L, -2, "data");
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "files");
  } else if (stage_body && r->kind == BODY_RAW) {
    lua_pushlstring(L, r->raw.data ? r->raw.data : "", r->raw.len);
    lua_setfield(L, -2, "body");
  }
}

/* Copy the handler's response headers table (at `idx`) into `out` as
 * name, value pairs (strings owned by the Lua state, valid until the
 * stack is cleared); only simple token names and printable values. */
static void collect_headers(lua_State *L, int idx, const char **out,
                            size_t max) {
  size_t n = 0;
  if (!lua_istable(L, idx)) {
    out[0] = NULL;
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (n + 2 < max && lua_type(L, -2) == LUA_TSTRING &&
        lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      if (k[strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-")] == '\0' &&
          strpbrk(v, "\r\n") == NULL) {
        out[n++] = k;
        out[n++] = v;
      }
    }
    lua_pop(L, 1);
  }
  out[n] = NULL;
}

/* Call handler[fname](req) in the worker's state and queue what it
 * returns (status, body, headers). A handler returning nil from
 * "preflight" means "go on": *answered = 0. A Lua error is logged with
 * its traceback on stderr and answered 500 without detail. */
static enum MHD_Result call_lua(struct MHD_Connection *c, request *r,
                                const char *url, const char *fname,
                                int stage_body, int *answered) {
  server *srv = r->srv;
  lua_State *L = worker_state(srv);
  const char *extra[34];
  enum MHD_Result ok;
  int status;
  size_t len;
  const char *body, *ctype;
  *answered = 1;
  if (!L) return respond_error(c, r, 500, "internal error", NULL);
  lua_settop(L, 0);
  lua_pushcfunction(L, msghandler);
  lua_getfield(L, LUA_REGISTRYINDEX, HTTP_HANDLER_KEY);
  lua_getfield(L, -1, fname);
  lua_remove(L, 2);
  if (!lua_isfunction(L, -1)) {
    lua_settop(L, 0);
    if (!stage_body) {
      *answered = 0;
      return MHD_YES;
    }
    return respond_error(c, r, 500, "internal error", NULL);
  }
  push_request(L, c, r, url, stage_body);
  atomic_fetch_add(&srv->in_handler, 1);
  status = lua_pcall(L, 1, 4, 1);
  atomic_fetch_sub(&srv->in_handler, 1);
  atomic_store(&srv->progress_ms, now_ms());
  if (status != LUA_OK) {
    log_line("tdm-lua serve: %s %s: handler error: %s", r->method, r->path,
             lua_tostring(L, -1));
    lua_settop(L, 0);
    return respond_error(c, r, 500, "internal error", NULL);
  }
  if (lua_isnil(L, 2) && !stage_body) {
    lua_settop(L, 0);
    *answered = 0;
    return MHD_YES;
  }
  status = (int)luaL_optinteger(L, 2, 500);
  if (status < 100 || status > 599) status = 500;
  body = lua_tolstring(L, 3, &len);
  if (!body) {
    body = "";
    len = 0;
  }
  collect_headers(L, 4, extra, sizeof extra / sizeof extra[0]);
  ctype = "application/json";
  ok = respond(c, r, status, ctype, body, len, extra);
  lua_settop(L, 0);
  if (stage_body && (r->nparts > 0 || r->raw.len > 0))
    lua_gc(L, LUA_GCCOLLECT);
  return ok;
}

/* ---- request body ----------------------------------------------------- */

static void set_err(request *r, int status, const char *msg) {
  if (r->err_status) return;
  r->err_status = status;
  copy_field(r->err_msg, sizeof r->err_msg, msg);
}

/* MHD_PostProcessor callback: file parts go into bounded buffers (one per
 * part, max_upload bytes each, at most max_files parts); plain fields are
 * ignored. Returns MHD_NO to stop parsing once a limit is passed. */
static enum MHD_Result on_post_data(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *filename,
                                    const char *content_type,
                                    const char *transfer_encoding,
                                    const char *data, uint64_t off,
                                    size_t size) {
  request *r = cls;
  part *p;
  tdm_error err;
  (void)kind;
  (void)transfer_encoding;
  if (r->err_status) return MHD_NO;
  if (filename == NULL) return MHD_YES;  /* a plain form field */
  p = r->nparts ? &r->parts[r->nparts - 1] : NULL;
  if (off == 0 && !(p && r->part_open && p->data.len == 0 &&
                    strcmp(p->filename, filename) == 0 &&
                    strcmp(p->field, key ? key : "") == 0)) {
    if (r->nparts >= r->srv->max_files) {
      char msg[120];
      snprintf(msg, sizeof msg, "too many files in one request (at most %zu)",
               r->srv->max_files);
      set_err(r, 413, msg);
      return MHD_NO;
    }
    if (r->nparts == r->capparts) {
      size_t cap = r->capparts ? r->capparts * 2 : 4;
      part *np = realloc(r->parts, cap * sizeof *np);
      if (!np) {
        set_err(r, 500, "out of memory");
        return MHD_NO;
      }
      r->parts = np;
      r->capparts = cap;
    }
    p = &r->parts[r->nparts++];
    memset(p, 0, sizeof *p);
    copy_field(p->field, sizeof p->field, key);
    copy_field(p->filename, sizeof p->filename, filename);
    copy_field(p->ctype, sizeof p->ctype, content_type);
    tdm_buf_init(&p->data, r->srv->max_upload);
    r->part_open = 1;
  }
  if (size > 0 && tdm_buf_append(&p->data, data, size, &err) != TDM_OK) {
    char msg[160];
    snprintf(msg, sizeof msg, "a file is larger than the %zu-byte limit",
             r->srv->max_upload);
    set_err(r, 413, msg);
    return MHD_NO;
  }
  return MHD_YES;
}

/* Feed `len` body bytes to the request's parser. Bodies kept in memory
 * count against the server-wide max_buffered, so many large uploads at
 * once get 503 instead of exhausting memory. */
static void take_body(request *r, const char *data, size_t len) {
  tdm_error err;
  r->received += len;
  if (r->err_status) return;
  if (r->kind == BODY_MULTIPART || r->kind == BODY_RAW) {
    long long now = atomic_fetch_add(&r->srv->buffered, (long long)len) +
                    (long long)len;
    r->accounted += (long long)len;
    if (now > r->srv->max_buffered) {
      set_err(r, 503, "too many uploads in progress; retry later");
      return;
    }
  }
  if (r->received > r->srv->max_body) {
    set_err(r, 413, "request body too large");
    return;
  }
  switch (r->kind) {
  case BODY_MULTIPART:
    if (MHD_post_process(r->pp, data, len) != MHD_YES && !r->err_status)
      set_err(r, 400, "malformed multipart/form-data body");
    break;
  case BODY_RAW:
    if (tdm_buf_append(&r->raw, data, len, &err) != TDM_OK) {
      char msg[160];
      snprintf(msg, sizeof msg, "a file is larger than the %zu-byte limit",
               r->srv->max_upload);
      set_err(r, 413, msg);
    }
    break;
  default:
    if (r->received > HTTP_MAX_OTHER_BODY)
      set_err(r, 413, "request body too large");
    break;
  }
}

static int has_prefix_ci(const char *s, const char *prefix) {
  return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Bearer-token check for mutating methods: the presented token and the
 * configured one are both hashed (SHA-256) and the digests compared with
 * CRYPTO_memcmp, so the time taken says nothing about either. */
static int authorized(server *srv, struct MHD_Connection *c) {
  const char *auth;
  unsigned char got[32];
  if (!srv->has_token) return 1;
  auth = header(c, "Authorization");
  if (!has_prefix_ci(auth, "Bearer ")) return 0;
  auth += 7;
  while (*auth == ' ') auth++;
  sha256(auth, strlen(auth), got);
  return CRYPTO_memcmp(got, srv->token_hash, sizeof got) == 0;
}

static int is_body_method(const char *m) {
  return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
         strcmp(m, "PATCH") == 0;
}

/* First call of a request: headers are in, no body read yet. Answers at
 * once when the request cannot succeed; otherwise picks the body parser. */
static enum MHD_Result first_call(struct MHD_Connection *c, request *r,
                                  const char *url) {
  server *srv = r->srv;
  const char *cl = header(c, "Content-Length");
  const char *ct = header(c, "Content-Type");
  static const char *const auth_hdr[] = {
    "WWW-Authenticate", "Bearer realm=\"tdm\"", NULL };
  int answered;
  enum MHD_Result ok;
  if ((strcmp(r->method, "POST") == 0 || strcmp(r->method, "DELETE") == 0)
      && !authorized(srv, c))
    return respond_error(c, r, 401, "missing or wrong bearer token",
                         auth_hdr);
  if (cl) {
    char *end;
    unsigned long long n;
    errno = 0;
    n = strtoull(cl, &end, 10);
    if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-')
      return respond_error(c, r, 400, "malformed Content-Length", NULL);
    if (n > srv->max_body ||
        (!is_body_method(r->method) && n > HTTP_MAX_OTHER_BODY))
      return respond_error(c, r, 413, "request body too large", NULL);
  }
  if (is_body_method(r->method)) {
    /* Let Lua refuse unknown routes and methods before the body. */
    ok = call_lua(c, r, url, "preflight", 0, &answered);
    if (answered) return ok;
    if (has_prefix_ci(ct, "multipart/form-data")) {
      r->kind = BODY_MULTIPART;
      r->pp = MHD_create_post_processor(c, 65536, on_post_data, r);
      if (!r->pp)
        return respond_error(c, r, 400,
                             "malformed multipart/form-data header", NULL);
    } else if (has_prefix_ci(ct, "image/") ||
               has_prefix_ci(ct, "application/octet-stream")) {
      r->kind = BODY_RAW;
      tdm_buf_init(&r->raw, srv->max_upload);
    } else {
      return respond_error(c, r, 415, "expected multipart/form-data or an "
                           "image body", NULL);
    }
  } else {
    r->kind = BODY_DISCARD;
  }
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  server *srv = cls;
  request *r = *con_cls;
  (void)version;
  atomic_store(&srv->progress_ms, now_ms());
  if (r == NULL) {
    size_t i, j = 0;
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    *con_cls = r;
    r->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    atomic_fetch_add(&srv->inflight, 1);
    copy_field(r->method, sizeof r->method, method);
    /* the path as logged: printable ASCII only, quotes escaped away */
    for (i = 0; url[i] && j < HTTP_LOG_PATH_MAX; i++) {
      unsigned char ch = (unsigned char)url[i];
      r->path[j++] = (ch <= 0x20 || ch >= 0x7f || ch == '"') ? '?'
                     : (char)ch;
    }
    r->path[j] = '\0';
    tdm_buf_init(&r->raw, 0);
    return first_call(c, r, url);
  }
  if (r->status) {           /* already answered: drop the rest */
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    take_body(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    /* MHD cannot answer in the middle of a body: a refused body is read
     * and dropped (413 follows at its end) as long as it stays within
     * max_body; past that the connection is closed. */
    if (r->err_status && r->received > r->srv->max_body) return MHD_NO;
    return MHD_YES;
  }
  /* final call: the whole body is in */
  if (r->pp) {
    enum MHD_Result done = MHD_destroy_post_processor(r->pp);
    r->pp = NULL;
    if (done != MHD_YES && !r->err_status)
      set_err(r, 400, "truncated or malformed multipart/form-data body");
  }
  if (r->err_status)
    return respond_error(c, r, r->err_status, r->err_msg, NULL);
  {
    int answered;
    return call_lua(c, r, url, "handle", 1, &answered);
  }
}

/* Completion: one access-log line (method, path, status, body bytes,
 * milliseconds; never headers), then free the request. */
static void on_completed(void *cls, struct MHD_Connection *c,
                         void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  server *srv = cls;
  request *r = *con_cls;
  size_t i;
  (void)c;
  if (!r) return;
  if (!srv->quiet) {
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (r->status)
      log_line("%s %s %s %d %zu %.1fms%s", when, r->method, r->path,
               r->status, r->bytes, elapsed_ms(&r->t0),
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
               : " (connection closed early)");
    else
      log_line("%s %s %s - 0 %.1fms (client went away)", when, r->method,
               r->path, elapsed_ms(&r->t0));
  }
  if (r->pp) MHD_destroy_post_processor(r->pp);
  atomic_fetch_sub(&srv->buffered, r->accounted);
  for (i = 0; i < r->nparts; i++) tdm_buf_free(&r->parts[i].data);
  free(r->parts);
  tdm_buf_free(&r->raw);
  free(r);
  *con_cls = NULL;
  atomic_fetch_sub(&srv->inflight, 1);
}

/* Keep the URL and query as sent: the handler decodes each path segment
 * itself, so "%2F", "%00" and "%2e%2e" inside a name are seen (and
 * refused) instead of being turned into separators or truncations. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s);
}

/* ---- listening socket --------------------------------------------------- */

/* Parse "HOST:PORT", "[V6]:PORT" or "PORT" and open a listening socket
 * (SO_REUSEADDR, backlog 128). Writes the bound address as "HOST:PORT"
 * into `bound`. Returns the fd or -1 with *err filled. */
static int open_listener(const char *spec, char *bound, size_t boundsz,
                         tdm_error *err) {
  char host[256], port[16];
  const char *colon;
  struct addrinfo hints, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int fd, one = 1, rc, e;
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host)
      return tdm_error_set(err, "EINVAL", "bad listen address '%s' (want "
                           "HOST:PORT)", spec), -1;
    memcpy(host, spec + 1, (size_t)(close - spec - 1));
    host[close - spec - 1] = '\0';
    colon = close + 1;
  } else if ((colon = strrchr(spec, ':')) != NULL) {
    if ((size_t)(colon - spec) >= sizeof host)
      return tdm_error_set(err, "EINVAL", "bad listen address '%s'", spec), -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
  } else {
    copy_field(host, sizeof host, "127.0.0.1");
    colon = spec - 1;
  }
  copy_field(port, sizeof port, colon + 1);
  if (port[0] == '\0' || port[strspn(port, "0123456789")] != '\0' ||
      strtol(port, NULL, 10) > 65535)
    return tdm_error_set(err, "EINVAL", "bad port in listen address '%s'",
                         spec), -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (rc != 0)
    return tdm_error_set(err, "EINVAL", "listen address '%s': %s", spec,
                         gai_strerror(rc)), -1;
  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    e = errno;
    freeaddrinfo(ai);
    return tdm_error_errno(err, e, "listen on %s", spec), -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    e = errno;
    close(fd);
    freeaddrinfo(ai);
    return tdm_error_errno(err, e, "listen on %s", spec), -1;
  }
  freeaddrinfo(ai);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
      p = ntohs(s4->sin_port);
      snprintf(bound, boundsz, "%s:%u", addr, p);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
      p = ntohs(s6->sin6_port);
      snprintf(bound, boundsz, "[%s]:%u", addr, p);
    }
  }
  return fd;
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

#define SERVER_MT "tdm.HTTPServer"

static void server_free(server *srv) {
  size_t i;
  free(srv->module);
  free(srv->lua_path);
  free(srv->lua_cpath);
  for (i = 0; i < 2 * srv->nsettings; i++) free(srv->settings[i]);
  free(srv->settings);
  if (srv->key_made) pthread_key_delete(srv->key);
  memset(srv, 0, sizeof *srv);
}

static int server_gc(lua_State *L) {
  server_free(luaL_checkudata(L, 1, SERVER_MT));
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

/* Copy the options (arg 1) into the server userdata at the top of the
 * stack. Raises on a caller mistake; allocations failing raise too (the
 * userdata's __gc frees whatever was copied). */
static void read_options(lua_State *L, server *srv) {
  const char *s;
  size_t n = 0, i;
  lua_getfield(L, 1, "handler");
  srv->module = dupstr(luaL_optstring(L, -1, "tdm.api_http"));
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  srv->lua_path = dupstr(luaL_optstring(L, -1, ""));
  lua_getfield(L, -2, "cpath");
  srv->lua_cpath = dupstr(luaL_optstring(L, -1, ""));
  lua_pop(L, 3);
  if (!srv->module || !srv->lua_path || !srv->lua_cpath)
    luaL_error(L, "http_serve: out of memory");
  lua_getfield(L, 1, "settings");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      n++;
      lua_pop(L, 1);
    }
    srv->settings = calloc(2 * n + 1, sizeof *srv->settings);
    if (!srv->settings) luaL_error(L, "http_serve: out of memory");
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) && i < n) {
      if (lua_type(L, -2) != LUA_TSTRING)
        luaL_error(L, "http_serve: settings keys must be strings");
      srv->settings[2 * i] = dupstr(lua_tostring(L, -2));
      srv->settings[2 * i + 1] = dupstr(luaL_tolstring(L, -1, NULL));
      lua_pop(L, 2);
      srv->nsettings = ++i;
      if (!srv->settings[2 * i - 2] || !srv->settings[2 * i - 1])
        luaL_error(L, "http_serve: out of memory");
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "token");
  s = lua_tostring(L, -1);
  if (s && s[0]) {
    sha256(s, strlen(s), srv->token_hash);
    srv->has_token = 1;
  }
  lua_pop(L, 1);
  srv->max_upload = opt_size(L, "max_upload", 20971520);
  srv->max_files = opt_size(L, "max_files", HTTP_MAX_FILES_DEFAULT);
  srv->max_body = srv->max_upload * srv->max_files + 1048576;
  {
    /* default 512 MB, and always room for one request at its largest */
    size_t dflt = (size_t)512 << 20;
    if (dflt < srv->max_body) dflt = srv->max_body;
    srv->max_buffered = (long long)opt_size(L, "max_buffered", dflt);
  }
  srv->drain_timeout = (double)opt_size(L, "drain_timeout", 30);
  lua_getfield(L, 1, "quiet");
  srv->quiet = lua_toboolean(L, -1);
  lua_pop(L, 1);
}

/* http_serve{ listen = "127.0.0.1:8080", threads = 4, handler = "tdm.api_http",
 *             settings = { name = value }, token = s|nil,
 *             max_upload = bytes, max_files = n, max_buffered = bytes,
 *             quiet = bool,
 *             drain_timeout = seconds, on_ready = function(addr) }
 *   -> true (stopped by SIGINT/SIGTERM) | nil, msg, code
 *
 * Blocks, serving, until tdm_interrupted(). Each worker thread runs
 * require(handler).http_worker(settings) once in its own state; the
 * returned table's preflight(req) (before the body of POST/PUT/PATCH; nil
 * means go on) and handle(req) return status, body, headers. On stop:
 * no new connections, requests in flight finish (up to drain_timeout),
 * then the workers are joined and their states closed. */
static int l_http_serve(lua_State *L) {
  server *srv;
  const char *listen_spec;
  int threads, fd;
  char bound[128] = "?";
  struct MHD_Daemon *d;
  sigset_t block, old;
  tdm_error err;
  struct timespec tick = { 0, 50 * 1000 * 1000 };
  struct timespec drain0;
  struct sigaction saved_term, saved_int;
  int took_term, took_int;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "listen");
  listen_spec = luaL_optstring(L, -1, "127.0.0.1:8080");
  lua_getfield(L, 1, "threads");
  threads = (int)luaL_optinteger(L, -1, 4);
  luaL_argcheck(L, threads >= 1 && threads <= 256, 1,
                "threads must be 1..256");
  lua_pop(L, 1);                             /* keep listen_spec at 2 */
  lua_getfield(L, 1, "on_ready");            /* 3 */
  srv = lua_newuserdatauv(L, sizeof *srv, 0); /* 4 */
  memset(srv, 0, sizeof *srv);
  luaL_setmetatable(L, SERVER_MT);
  read_options(L, srv);
  if (pthread_key_create(&srv->key, close_state) != 0)
    return luaL_error(L, "http_serve: cannot create thread key");
  srv->key_made = 1;
  atomic_init(&srv->inflight, 0);
  atomic_init(&srv->draining, 0);
  atomic_init(&srv->in_handler, 0);
  atomic_init(&srv->progress_ms, now_ms());
  atomic_init(&srv->buffered, 0);

  /* libcurl too, now: its global init is not safe to race from the
   * workers' first S3 clients. */
  if (tdm_mhd_load(&err) != TDM_OK || tdm_curl_load(&err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  fd = open_listener(listen_spec, bound, sizeof bound, &err);
  if (fd < 0) return tdm_lua_fail(L, &err);

  /* Workers inherit a mask without SIGINT/SIGTERM, so the signal reaches
   * this (the polling) thread and never interrupts a request. */
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC,
      0, NULL, NULL, on_request, srv,
      MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
      MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!d) {
    close(fd);
    tdm_error_set(&err, "EIO", "cannot start the HTTP server on %s",
                  bound);
    return tdm_lua_fail(L, &err);
  }
  log_line("tdm-lua serve: listening on http://%s (%d threads)", bound,
           threads);
  if (lua_isfunction(L, 3)) {
    lua_pushvalue(L, 3);
    lua_pushstring(L, bound);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      MHD_stop_daemon(d);
        return lua_error(L);
    }
  }
  take_default_signal(SIGTERM, &saved_term, &took_term);
  take_default_signal(SIGINT, &saved_int, &took_int);
  while (!tdm_interrupted()) nanosleep(&tick, NULL);

  /* Stop: refuse new connections, let requests in flight finish. A
   * handler running is always waited for; a request still receiving its
   * body is waited for while some request makes progress (a client that
   * stalls, or whose abort MHD has not noticed, holds nothing up for more
   * than DRAIN_IDLE_MS); all of it within drain_timeout. */
  atomic_store(&srv->draining, 1);
  {
    MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
  }
  clock_gettime(CLOCK_MONOTONIC, &drain0);
  while (elapsed_ms(&drain0) < srv->drain_timeout * 1000.0 &&
         (atomic_load(&srv->in_handler) > 0 ||
          (atomic_load(&srv->inflight) > 0 &&
           now_ms() - atomic_load(&srv->progress_ms) < DRAIN_IDLE_MS)))
    nanosleep(&tick, NULL);
  log_line("tdm-lua serve: stopped (%d requests unfinished)",
           atomic_load(&srv->inflight));
  MHD_stop_daemon(d);
  if (took_term) sigaction(SIGTERM, &saved_term, NULL);
  if (took_int) sigaction(SIGINT, &saved_int, NULL);
  /* The signal was this server's normal way to stop, not a failure. */
  tdm_interrupt_reset();
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
  if (luaL_newmetatable(L, SERVER_MT)) {
    lua_pushcfunction(L, server_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
