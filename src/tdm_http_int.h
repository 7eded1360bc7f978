/*
 * tdm_http_int.h -- shared by the files of the HTTP server (not
 * installed): the request guard (tdm_http_guard.c: Host, cross-site and
 * token checks) and the listening socket (tdm_http_listen.c), used by
 * tdm_http.c.
 */
#ifndef TDM_HTTP_INT_H
#define TDM_HTTP_INT_H

#include "tdm.h"

#define TDM_HTTP_ORIGIN_MAX 256

/* What the checks need, fixed before the server starts. */
typedef struct tdm_http_guard {
  char listen_host[256];       /* as given in the listen address */
  char (*origins)[TDM_HTTP_ORIGIN_MAX]; /* lower case, no final '/' */
  size_t norigins;
  unsigned char token_hash[32];
  int has_token;
} tdm_http_guard;

/* Fill `g` from cfg (token hashed, origins checked and normalised, the
 * listen host). "EINVAL" for an origin that is not SCHEME://HOST[:PORT].
 * Free with tdm_httpi_guard_free (also after a failure). */
int tdm_httpi_guard_init(tdm_http_guard *g, const tdm_http_config *cfg,
                         tdm_error *err);
void tdm_httpi_guard_free(tdm_http_guard *g);

/* Any method but GET, HEAD and OPTIONS. */
int tdm_httpi_changes_state(const char *method);

/* Check a request's headers (each NULL when absent). Returns 0 when it
 * may go on, else the status to answer (403, 401) with *msg for the
 * client and *why for the server log. */
int tdm_httpi_guard_check(const tdm_http_guard *g, const char *method,
                          const char *host, const char *origin,
                          const char *sec_fetch_site,
                          const char *authorization, const char **msg,
                          const char **why);

/* Parse "HOST:PORT", "[V6]:PORT" or "PORT" and open a listening socket
 * (SO_REUSEADDR, backlog 128). Writes the bound address as "HOST:PORT"
 * into `bound`. Returns the fd or -1 with *err filled. */
int tdm_httpi_listen(const char *spec, char *bound, size_t boundsz,
                     tdm_error *err);

#endif
