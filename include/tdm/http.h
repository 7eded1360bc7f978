/*
 * tdm/http.h -- the HTTP server behind `tdm-lua serve`, on libmicrohttpd
 * (loaded on first use): listening, a fixed pool of worker threads,
 * request limits, multipart parsing, the bearer token, cross-site and
 * Host checks, the access log and a graceful drain. Requests that pass
 * are handed, their body buffered, to a C handler callback on the worker
 * thread that serves them; routing and policy are the handler's.
 *
 * Checks made here, before any body is read:
 *   - Host must name this server: an IP literal, "localhost", the listen
 *     host, or the host of an allowed origin -- a name an attacker's page
 *     could rebind to 127.0.0.1 (DNS rebinding) is refused, 403;
 *   - a state-changing request (any method but GET, HEAD, OPTIONS) whose
 *     Origin is neither the server's own ("http://" + Host) nor an allowed
 *     origin, or that has no Origin and Sec-Fetch-Site: cross-site, is
 *     refused, 403 -- with or without a token (a browser sends a
 *     multipart POST cross-site without asking first);
 *   - with a token, a state-changing request needs
 *     "Authorization: Bearer TOKEN", 401;
 *   - Content-Length over the limits, 413; a body that is neither
 *     multipart/form-data nor an image, 415.
 * Answers are JSON {"error": "..."} with Cache-Control: no-store and
 * X-Content-Type-Options: nosniff.
 */
#ifndef TDM_HTTP_H
#define TDM_HTTP_H

#include <stddef.h>
#include "error.h"
#include "buf.h"
#include "sigv4.h"

typedef struct tdm_http_part {
  const char *field, *filename, *content_type;  /* "" when absent */
  const char *data;
  size_t len;
} tdm_http_part;

/* A request as the handler sees it; every pointer is valid during the
 * handler call only. */
typedef struct tdm_http_request {
  const char *method;
  const char *path;              /* raw: not percent-decoded */
  const tdm_kv *query;           /* raw names and values */
  size_t nquery;
  const char *content_type;      /* NULL when absent */
  const char *content_length;    /* NULL when absent */
  int stage_body;                /* 0: preflight (headers only), 1: all */
  const tdm_http_part *parts;    /* multipart files (stage_body) */
  size_t nparts;
  const char *body;              /* an image body (stage_body), else NULL */
  size_t body_len;
} tdm_http_request;

#define TDM_HTTP_HEADERS_MAX 16

/* What the handler answers. The server zeroes it and sets body.max before
 * the call and frees it after. */
typedef struct tdm_http_response {
  int status;                    /* 100..599; a preflight leaves 0 to go
                                    on; anything else is answered 500 */
  tdm_buf body;                  /* sent as application/json */
  char header_name[TDM_HTTP_HEADERS_MAX][64];
  char header_value[TDM_HTTP_HEADERS_MAX][256];
  size_t nheaders;
} tdm_http_response;

/* Add a response header: `name` a token (letters, digits, '-'), `value`
 * printable without CR/LF. "EINVAL" otherwise or when full. */
int tdm_http_response_header(tdm_http_response *resp, const char *name,
                             const char *value, tdm_error *err);

/* Called on a worker thread, for each request with stage_body = 0 before
 * the body of a POST/PUT/PATCH is read (a preflight: answer to refuse,
 * leave status 0 to go on), and with stage_body = 1 once it is in. Several
 * workers call it at once, each for its own requests. */
typedef void (*tdm_http_handler)(void *ud, const tdm_http_request *req,
                                 tdm_http_response *resp);

typedef struct tdm_http_config {
  const char *listen;            /* "HOST:PORT", "[V6]:PORT" or "PORT";
                                    NULL: 127.0.0.1:8080; port 0: any */
  int threads;                   /* workers, 1..256; 0: 4 */
  const char *token;             /* NULL/"": none */
  const char *const *allowed_origins;  /* "https://a.example", ... */
  size_t norigins;
  size_t max_upload;             /* bytes per file; 0: 20 MiB */
  size_t max_files;              /* per request; 0: 16 */
  size_t max_buffered;           /* bodies held by all requests at once;
                                    0: 512 MiB (at least one request at
                                    its largest) */
  double drain_timeout;          /* seconds; 0: 30 */
  tdm_http_handler handler;
  void *handler_ud;
  /* One line (no newline) to log, or NULL for none: the access log (one
   * line a request: method, path, status, bytes, ms; never a header)
   * and why a request was refused. Called from any thread. */
  void (*log)(void *ud, const char *line);
  int access_log;                /* 0: only the start/stop/refusal lines */
  /* Called on the serving thread once listening, with the bound address
   * ("127.0.0.1:PORT"); nonzero stops the server at once (the return of
   * tdm_http_serve is then "ECANCELED"). May be NULL. */
  int (*on_ready)(void *ud, const char *bound);
} tdm_http_config;

/* Serve until tdm_interrupted(): then stop accepting, let requests in
 * flight finish (a running handler always; a body still arriving while
 * requests make progress), within drain_timeout; join the workers and
 * return TDM_OK (tdm_interrupt_reset() done: the stop was the normal
 * way to end). TDM_ERR when it could not start: a bad listen address
 * ("EINVAL"), a port in use (errno code), libmicrohttpd missing
 * ("ENOLIB"). SIGINT/SIGTERM are blocked on the worker threads. */
int tdm_http_serve(const tdm_http_config *cfg, tdm_error *err);

#endif
