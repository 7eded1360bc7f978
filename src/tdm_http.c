/*
 * tdm_http.c -- the HTTP server of include/tdm/http.h on libmicrohttpd
 * (MHD): worker threads, limits, multipart, access log, drain. The checks
 * on headers are tdm_http_guard.c's, the socket tdm_http_listen.c's. No
 * Lua here: src/lhttp.c is the binding that runs a Lua handler in each
 * worker thread.
 *
 * Threading: MHD runs a fixed pool of worker threads
 * (MHD_OPTION_THREAD_POOL_SIZE), each with its own event loop and its own
 * share of the connections; the handler is called on the worker serving
 * the request. The settings are copied before the daemon starts and read
 * only while it runs (except the atomics).
 *
 * Request life: first call (headers only) -> Host, cross-site, token and
 * size checks, which may answer at once (403, 401, 413, 415) without
 * reading the body, then the handler's preflight for body methods; body
 * calls -> multipart parts (MHD_PostProcessor) or a raw body into bounded
 * buffers (nothing more is kept once a file passes the limit; MHD cannot
 * answer in mid-body, so the 413 goes out when the body ends, and a body
 * past max_body gets its connection closed); final call -> the handler
 * answers. The completion callback writes one access-log line.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tdm_http_int.h"
#include "tdm_curl.h"
#include "tdm_mhd.h"

#define HTTP_MAX_FILES_DEFAULT 16
#define HTTP_MAX_UPLOAD_DEFAULT 20971520
#define HTTP_MAX_OTHER_BODY 65536  /* body of a non-upload request */
#define HTTP_MAX_RESPONSE (64u << 20)
#define HTTP_MAX_QUERY 64          /* query pairs shown to the handler */
#define HTTP_FIELD_MAX 256
#define HTTP_LOG_PATH_MAX 300
#define DRAIN_IDLE_MS 2000         /* see the end of tdm_http_serve */

/* The server: settings copied from the config, read-only while the daemon
 * runs (except the atomics). */
typedef struct server {
  tdm_http_handler handler;
  void *ud;
  void (*log)(void *ud, const char *line);
  int access_log;
  tdm_http_guard guard;     /* Host, cross-site and token checks */
  size_t max_upload;       /* bytes per file */
  size_t max_files;
  size_t max_body;         /* whole request */
  long long max_buffered;  /* bodies held in memory by all requests */
  double drain_timeout;    /* seconds to finish requests at shutdown */
  atomic_int inflight;     /* requests begun and not completed */
  atomic_int in_handler;   /* handler calls running now */
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

static void log_line(server *srv, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;

/* One formatted line to the configured log (none when it is NULL). */
static void log_line(server *srv, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  if (!srv->log) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  srv->log(srv->ud, line);
}

/* ---- small helpers ---------------------------------------------------- */

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

static const char *header(struct MHD_Connection *c, const char *name) {
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---- calling the handler ---------------------------------------------- */

int tdm_http_response_header(tdm_http_response *resp, const char *name,
                             const char *value, tdm_error *err) {
  size_t nl = strlen(name), vl = strlen(value), i;
  if (nl == 0 || nl >= sizeof resp->header_name[0] ||
      name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-")] != '\0')
    return tdm_error_set(err, "EINVAL", "bad response header name");
  if (vl >= sizeof resp->header_value[0])
    return tdm_error_set(err, "EINVAL", "response header %s: value too "
                         "long", name);
  for (i = 0; i < vl; i++)
    if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
      return tdm_error_set(err, "EINVAL", "response header %s: control "
                           "character in the value", name);
  if (resp->nheaders == TDM_HTTP_HEADERS_MAX)
    return tdm_error_set(err, "EINVAL", "more than %d response headers",
                         TDM_HTTP_HEADERS_MAX);
  memcpy(resp->header_name[resp->nheaders], name, nl + 1);
  memcpy(resp->header_value[resp->nheaders], value, vl + 1);
  resp->nheaders++;
  return TDM_OK;
}

typedef struct query_list {
  tdm_kv kv[HTTP_MAX_QUERY];
  size_t n;
} query_list;

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value) {
  query_list *q = cls;
  (void)kind;
  if (key && q->n < HTTP_MAX_QUERY)
    q->kv[q->n++] = (tdm_kv){ key, value ? value : "" };
  return MHD_YES;
}

/* Call the handler for request `r` (stage_body 0: preflight) and queue
 * its answer. A preflight that leaves status 0 means "go on":
 * *answered = 0. A status outside 100..599 is answered 500. */
static enum MHD_Result call_handler(struct MHD_Connection *c, request *r,
                                    const char *url, int stage_body,
                                    int *answered) {
  server *srv = r->srv;
  tdm_http_request req;
  tdm_http_response *resp;
  query_list q;
  tdm_http_part *parts = NULL;
  const char *extra[2 * TDM_HTTP_HEADERS_MAX + 1];
  enum MHD_Result ok;
  size_t i;
  *answered = 1;
  memset(&req, 0, sizeof req);
  q.n = 0;
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query, &q);
  req.method = r->method;
  req.path = url;
  req.query = q.kv;
  req.nquery = q.n;
  req.content_type = header(c, "Content-Type");
  req.content_length = header(c, "Content-Length");
  req.stage_body = stage_body;
  if (stage_body && r->kind == BODY_MULTIPART && r->nparts > 0) {
    if (!(parts = calloc(r->nparts, sizeof *parts)))
      return respond_error(c, r, 500, "out of memory", NULL);
    for (i = 0; i < r->nparts; i++) {
      parts[i].field = r->parts[i].field;
      parts[i].filename = r->parts[i].filename;
      parts[i].content_type = r->parts[i].ctype;
      parts[i].data = r->parts[i].data.data ? r->parts[i].data.data : "";
      parts[i].len = r->parts[i].data.len;
    }
    req.parts = parts;
    req.nparts = r->nparts;
  } else if (stage_body && r->kind == BODY_RAW) {
    req.body = r->raw.data ? r->raw.data : "";
    req.body_len = r->raw.len;
  }
  if (!(resp = calloc(1, sizeof *resp))) {
    free(parts);
    return respond_error(c, r, 500, "out of memory", NULL);
  }
  tdm_buf_init(&resp->body, HTTP_MAX_RESPONSE);
  atomic_fetch_add(&srv->in_handler, 1);
  srv->handler(srv->ud, &req, resp);
  atomic_fetch_sub(&srv->in_handler, 1);
  atomic_store(&srv->progress_ms, now_ms());
  free(parts);
  if (!stage_body && resp->status == 0) {
    *answered = 0;
    ok = MHD_YES;
  } else if (resp->status < 100 || resp->status > 599) {
    log_line(srv, "tdm-lua serve: %s %s: the handler gave no valid status",
             r->method, r->path);
    ok = respond_error(c, r, 500, "internal error", NULL);
  } else {
    for (i = 0; i < resp->nheaders; i++) {
      extra[2 * i] = resp->header_name[i];
      extra[2 * i + 1] = resp->header_value[i];
    }
    extra[2 * resp->nheaders] = NULL;
    ok = respond(c, r, resp->status, "application/json",
                 resp->body.data ? resp->body.data : "", resp->body.len,
                 extra);
  }
  tdm_buf_free(&resp->body);
  free(resp);
  return ok;
}

/* ---- request body ----------------------------------------------------- */

static void set_err(request *r, int status, const char *msg) {
  if (r->err_status) return;
  r->err_status = status;
  tdm_str_copy(r->err_msg, sizeof r->err_msg, msg);
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
    tdm_str_copy(p->field, sizeof p->field, key);
    tdm_str_copy(p->filename, sizeof p->filename, filename);
    tdm_str_copy(p->ctype, sizeof p->ctype, content_type);
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
  const char *msg, *why;
  int refused = tdm_httpi_guard_check(&srv->guard, r->method,
                                      header(c, "Host"), header(c, "Origin"),
                                      header(c, "Sec-Fetch-Site"),
                                      header(c, "Authorization"), &msg, &why);
  if (refused) {
    if (refused != 401)
      log_line(srv, "tdm-lua serve: %s %s: refused: %s", r->method, r->path,
               why);
    return respond_error(c, r, refused, msg, refused == 401 ? auth_hdr
                                                             : NULL);
  }
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
    /* Let the handler refuse unknown routes and methods before the body. */
    ok = call_handler(c, r, url, 0, &answered);
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
    tdm_str_copy(r->method, sizeof r->method, method);
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
    return call_handler(c, r, url, 1, &answered);
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
  if (srv->log && srv->access_log) {
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (r->status)
      log_line(srv, "%s %s %s %d %zu %.1fms%s", when, r->method, r->path,
               r->status, r->bytes, elapsed_ms(&r->t0),
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
               : " (connection closed early)");
    else
      log_line(srv, "%s %s %s - 0 %.1fms (client went away)", when, r->method,
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

/* ---- serving ------------------------------------------------------------ */

/* Copy the settings of `cfg` into `srv`. */
static int setup(server *srv, const tdm_http_config *cfg, tdm_error *err) {
  srv->handler = cfg->handler;
  srv->ud = cfg->handler_ud;
  srv->log = cfg->log;
  srv->access_log = cfg->access_log;
  if (tdm_httpi_guard_init(&srv->guard, cfg, err) != TDM_OK) return TDM_ERR;
  srv->max_upload = cfg->max_upload ? cfg->max_upload
                                    : HTTP_MAX_UPLOAD_DEFAULT;
  srv->max_files = cfg->max_files ? cfg->max_files : HTTP_MAX_FILES_DEFAULT;
  srv->max_body = srv->max_upload * srv->max_files + 1048576;
  {
    /* default 512 MB, and always room for one request at its largest */
    size_t dflt = (size_t)512 << 20;
    if (dflt < srv->max_body) dflt = srv->max_body;
    srv->max_buffered = (long long)(cfg->max_buffered ? cfg->max_buffered
                                                      : dflt);
  }
  srv->drain_timeout = cfg->drain_timeout > 0 ? cfg->drain_timeout : 30;
  atomic_init(&srv->inflight, 0);
  atomic_init(&srv->draining, 0);
  atomic_init(&srv->in_handler, 0);
  atomic_init(&srv->progress_ms, now_ms());
  atomic_init(&srv->buffered, 0);
  return TDM_OK;
}

int tdm_http_serve(const tdm_http_config *cfg, tdm_error *err) {
  server srv;
  const char *listen_spec = cfg->listen && cfg->listen[0] ? cfg->listen
                                                          : "127.0.0.1:8080";
  int threads = cfg->threads > 0 ? cfg->threads : 4, fd, rc = TDM_ERR;
  char bound[128] = "?";
  struct MHD_Daemon *d;
  sigset_t block, old;
  struct timespec tick = { 0, 50 * 1000 * 1000 };
  struct timespec drain0;
  memset(&srv, 0, sizeof srv);
  if (!cfg->handler || threads > 256) {
    tdm_error_set(err, "EINVAL", "HTTP server: %s",
                  cfg->handler ? "threads must be 1..256" : "no handler");
    return TDM_ERR;
  }
  if (setup(&srv, cfg, err) != TDM_OK) goto done;
  /* libcurl too, now: its global init is not safe to race from the
   * handlers' first S3 clients. */
  if (tdm_mhd_load(err) != TDM_OK || tdm_curl_load(err) != TDM_OK)
    goto done;
  fd = tdm_httpi_listen(listen_spec, bound, sizeof bound, err);
  if (fd < 0) goto done;

  /* Workers inherit a mask without SIGINT/SIGTERM, so the signal reaches
   * this (the polling) thread and never interrupts a request. */
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC,
      0, NULL, NULL, on_request, &srv,
      MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
      MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
      MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!d) {
    close(fd);
    tdm_error_set(err, "EIO", "cannot start the HTTP server on %s", bound);
    goto done;
  }
  log_line(&srv, "tdm-lua serve: listening on http://%s (%d threads)",
           bound, threads);
  if (cfg->on_ready && cfg->on_ready(cfg->handler_ud, bound) != 0) {
    MHD_stop_daemon(d);
    tdm_error_set(err, "ECANCELED", "HTTP server stopped by on_ready");
    goto done;
  }
  while (!tdm_interrupted()) nanosleep(&tick, NULL);

  /* Stop: refuse new connections, let requests in flight finish. A
   * handler running is always waited for; a request still receiving its
   * body is waited for while some request makes progress (a client that
   * stalls, or whose abort MHD has not noticed, holds nothing up for more
   * than DRAIN_IDLE_MS); all of it within drain_timeout. */
  atomic_store(&srv.draining, 1);
  {
    MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
  }
  clock_gettime(CLOCK_MONOTONIC, &drain0);
  while (elapsed_ms(&drain0) < srv.drain_timeout * 1000.0 &&
         (atomic_load(&srv.in_handler) > 0 ||
          (atomic_load(&srv.inflight) > 0 &&
           now_ms() - atomic_load(&srv.progress_ms) < DRAIN_IDLE_MS)))
    nanosleep(&tick, NULL);
  log_line(&srv, "tdm-lua serve: stopped (%d requests unfinished)",
           atomic_load(&srv.inflight));
  MHD_stop_daemon(d);
  /* The signal was this server's normal way to stop, not a failure. */
  tdm_interrupt_reset();
  rc = TDM_OK;
done:
  tdm_httpi_guard_free(&srv.guard);
  return rc;
}
