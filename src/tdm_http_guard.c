/*
 * tdm_http_guard.c -- the checks the HTTP server makes on a request's
 * headers before reading its body: Host names this server (DNS
 * rebinding), a state-changing request comes from this server's pages or
 * an allowed origin (cross-site request forgery), the bearer token.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tdm_http_int.h"

/* Whether a request with this method may change something: everything
 * but GET, HEAD and OPTIONS. */
int tdm_httpi_changes_state(const char *m) {
  return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
         strcmp(m, "OPTIONS") != 0;
}

/* The host part of a Host value ("h", "h:port", "[v6]:port") into `out`
 * (lower case); 0 when it is malformed or too long. */
static int host_part(const char *hv, char *out, size_t outsz) {
  const char *end;
  size_t n, i;
  if (hv[0] == '[') {
    end = strchr(hv, ']');
    if (!end) return 0;
    end++;
  } else {
    end = strchr(hv, ':');
    if (!end) end = hv + strlen(hv);
  }
  n = (size_t)(end - hv);
  if (n == 0 || n >= outsz) return 0;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)hv[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '@') return 0;
    out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  out[n] = '\0';
  return 1;
}

static int is_ip_literal(const char *h) {
  unsigned char a[16];
  char v6[64];
  size_t n = strlen(h);
  if (inet_pton(AF_INET, h, a) == 1) return 1;
  if (n < 3 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= sizeof v6)
    return 0;
  memcpy(v6, h + 1, n - 2);
  v6[n - 2] = '\0';
  return inet_pton(AF_INET6, v6, a) == 1;
}

/* Host must name this server. An IP literal cannot be rebound to
 * 127.0.0.1 by an attacker's DNS, "localhost" is this machine; any other
 * name must be the listen host or the host of an allowed origin. No Host
 * at all (HTTP/1.0) is not a browser: allowed. */
static int host_allowed(const tdm_http_guard *srv, const char *hv) {
  char h[256], oh[256];
  size_t i;
  if (!hv) return 1;
  if (!host_part(hv, h, sizeof h)) return 0;
  if (is_ip_literal(h) || strcmp(h, "localhost") == 0) return 1;
  if (srv->listen_host[0] && strcasecmp(h, srv->listen_host) == 0) return 1;
  for (i = 0; i < srv->norigins; i++) {
    const char *o = strstr(srv->origins[i], "://");
    if (o && host_part(o + 3, oh, sizeof oh) && strcmp(h, oh) == 0)
      return 1;
  }
  return 0;
}

/* Whether a state-changing request comes from this server's own pages or
 * an allowed origin: by Origin when sent ("http://" + Host is our own;
 * "null" never matches), else by Sec-Fetch-Site (only "cross-site" is
 * refused: same-site, same-origin, none and its absence -- curl, scripts
 * -- pass). */
static int same_site(const tdm_http_guard *srv, const char *origin,
                     const char *host, const char *sfs) {
  char o[TDM_HTTP_ORIGIN_MAX];
  size_t n, i;
  if (!origin) return !(sfs && strcasecmp(sfs, "cross-site") == 0);
  n = strlen(origin);
  while (n > 0 && origin[n - 1] == '/') n--;
  if (n >= sizeof o) return 0;
  for (i = 0; i < n; i++)
    o[i] = (char)(origin[i] >= 'A' && origin[i] <= 'Z' ? origin[i] + 32
                                                       : origin[i]);
  o[n] = '\0';
  if (host && strncmp(o, "http://", 7) == 0 && strcasecmp(o + 7, host) == 0)
    return 1;
  for (i = 0; i < srv->norigins; i++)
    if (strcmp(o, srv->origins[i]) == 0) return 1;
  return 0;
}

/* Bearer-token check for mutating methods: the presented token and the
 * configured one are both hashed (SHA-256) and the digests compared with
 * CRYPTO_memcmp, so the time taken says nothing about either. */
static int authorized(const tdm_http_guard *srv, const char *auth) {
  unsigned char got[32];
  unsigned int n = sizeof got;
  if (!srv->has_token) return 1;
  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
  auth += 7;
  while (*auth == ' ') auth++;
  EVP_Digest(auth, strlen(auth), got, &n, EVP_sha256(), NULL);
  return CRYPTO_memcmp(got, srv->token_hash, sizeof got) == 0;
}

int tdm_httpi_guard_init(tdm_http_guard *g, const tdm_http_config *cfg,
                         tdm_error *err) {
  const char *spec = cfg->listen && cfg->listen[0] ? cfg->listen : "";
  const char *colon = strrchr(spec, ':');
  size_t i, n, k;
  unsigned int hl = sizeof g->token_hash;
  memset(g, 0, sizeof *g);
  if (cfg->token && cfg->token[0]) {
    EVP_Digest(cfg->token, strlen(cfg->token), g->token_hash, &hl,
               EVP_sha256(), NULL);
    g->has_token = 1;
  }
  if (cfg->norigins > 0 &&
      !(g->origins = calloc(cfg->norigins, sizeof *g->origins)))
    return tdm_error_set(err, "ENOMEM", "HTTP server: out of memory");
  for (i = 0; i < cfg->norigins; i++) {
    const char *o = cfg->allowed_origins[i];
    n = strlen(o);
    while (n > 0 && o[n - 1] == '/') n--;
    if (n == 0 || n >= TDM_HTTP_ORIGIN_MAX || !strstr(o, "://"))
      return tdm_error_set(err, "EINVAL", "allowed origin '%s' is not "
                           "SCHEME://HOST[:PORT]", o);
    for (k = 0; k < n; k++)
      g->origins[i][k] = (char)(o[k] >= 'A' && o[k] <= 'Z' ? o[k] + 32
                                                           : o[k]);
    g->origins[i][n] = '\0';
    g->norigins = i + 1;
  }
  /* the listen host, unless an IP literal in brackets (allowed anyway) */
  n = colon && spec[0] != '[' ? (size_t)(colon - spec) : 0;
  if (n < sizeof g->listen_host) {
    memcpy(g->listen_host, spec, n);
    g->listen_host[n] = '\0';
  }
  return TDM_OK;
}

void tdm_httpi_guard_free(tdm_http_guard *g) {
  free(g->origins);
  g->origins = NULL;
  g->norigins = 0;
}

int tdm_httpi_guard_check(const tdm_http_guard *g, const char *method,
                          const char *host, const char *origin,
                          const char *sec_fetch_site,
                          const char *authorization, const char **msg,
                          const char **why) {
  if (!host_allowed(g, host)) {
    *msg = "the Host header does not name this server";
    *why = "Host does not name this server (add its origin to "
           "TDM_API_ALLOWED_ORIGINS if it does)";
    return 403;
  }
  if (!tdm_httpi_changes_state(method)) return 0;
  if (!same_site(g, origin, host, sec_fetch_site)) {
    *msg = "cross-site request refused";
    *why = "cross-site request (Origin or Sec-Fetch-Site; "
           "TDM_API_ALLOWED_ORIGINS lists the origins allowed besides this "
           "server's own)";
    return 403;
  }
  if (!authorized(g, authorization)) {
    *msg = "missing or wrong bearer token";
    *why = "missing or wrong bearer token";
    return 401;
  }
  return 0;
}
