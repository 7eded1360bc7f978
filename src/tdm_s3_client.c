/* tdm_s3_client.c -- the S3 client: settings, credentials, addressing
 * (virtual-hosted or path-style), URL building with the signer's own
 * encoding, signing of each request, presigned URLs, and the pool of
 * reusable curl easy handles around one multi handle. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tdm_s3_int.h"

#define MIB (1024ull * 1024ull)

void tdm_s3_config_defaults(tdm_s3_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->path_style = -1;
  cfg->jobs = 32;
  cfg->multipart_threshold = 64 * MIB;
  cfg->part_size = 8 * MIB;
  cfg->max_attempts = 5;
  cfg->connect_timeout = 10;
  cfg->stall_timeout = 30;
  cfg->backoff_base = 0.1;
  cfg->backoff_cap = 20.0;
}

static char *dup_or(const char *s, const char *fallback) {
  return strdup(s && *s ? s : fallback);
}

/* Split "scheme://authority[/]" into c->scheme and c->host. */
static int parse_endpoint(tdm_s3 *c, const char *ep, tdm_error *err) {
  const char *rest, *slash;
  size_t n;
  if (strncmp(ep, "https://", 8) == 0) {
    snprintf(c->scheme, sizeof c->scheme, "https");
    rest = ep + 8;
  } else if (strncmp(ep, "http://", 7) == 0) {
    snprintf(c->scheme, sizeof c->scheme, "http");
    rest = ep + 7;
  } else {
    return tdm_error_set(err, "EINVAL", "endpoint '%s' (AWS_ENDPOINT_URL):"
                         " expected http://HOST[:PORT] or https://...", ep);
  }
  slash = strchr(rest, '/');
  n = slash ? (size_t)(slash - rest) : strlen(rest);
  if (slash && strcmp(slash, "/") != 0)
    return tdm_error_set(err, "EINVAL", "endpoint '%s' (AWS_ENDPOINT_URL):"
                         " a path after the host is not supported", ep);
  if (n == 0 || n >= sizeof c->host)
    return tdm_error_set(err, "EINVAL", "endpoint '%s' (AWS_ENDPOINT_URL):"
                         " bad host", ep);
  memcpy(c->host, rest, n);
  c->host[n] = '\0';
  for (rest = c->host; *rest; rest++)
    if (isspace((unsigned char)*rest) || *rest == '@')
      return tdm_error_set(err, "EINVAL", "endpoint (AWS_ENDPOINT_URL): "
                           "bad host");
  return TDM_OK;
}

tdm_s3 *tdm_s3_new(const tdm_s3_config *cfg, tdm_error *err) {
  tdm_s3 *c;
  if (!cfg->bucket || !*cfg->bucket) {
    tdm_error_set(err, "EINVAL", "S3 client: no bucket (TDM_BUCKET)");
    return NULL;
  }
  c = calloc(1, sizeof *c);
  if (!c) {
    tdm_error_set(err, "ENOMEM", "S3 client: out of memory");
    return NULL;
  }
  c->bucket = strdup(cfg->bucket);
  c->region = dup_or(cfg->region, "us-west-1");
  c->ca_bundle = dup_or(cfg->ca_bundle, "");
  c->sse_kms_key_id = dup_or(cfg->sse_kms_key_id, "");
  c->checksum = cfg->checksum;
  if (cfg->sse && *cfg->sse) {
    if (strcmp(cfg->sse, "AES256") != 0 && strcmp(cfg->sse, "aws:kms") != 0
        && strcmp(cfg->sse, "aws:kms:dsse") != 0) {
      tdm_error_set(err, "ECONFIG", "S3 client: sse (TDM_SSE) must be "
                    "AES256, aws:kms or aws:kms:dsse, got '%.40s'", cfg->sse);
      goto fail;
    }
    snprintf(c->sse, sizeof c->sse, "%s", cfg->sse);
  }
  if (!c->bucket || !c->region || !c->ca_bundle || !c->sse_kms_key_id) {
    tdm_error_set(err, "ENOMEM", "S3 client: out of memory");
    goto fail;
  }
  snprintf(c->scheme, sizeof c->scheme, "https");
  if (cfg->endpoint && *cfg->endpoint &&
      parse_endpoint(c, cfg->endpoint, err) != TDM_OK)
    goto fail;
  c->path_style = cfg->path_style >= 0 ? cfg->path_style
                  : (c->host[0] || strchr(c->bucket, '.') != NULL);
  c->creds = tdm_cred_provider_new(cfg->profile && *cfg->profile ?
                                   cfg->profile : NULL, cfg->creds, err);
  if (!c->creds) goto fail;
  if (tdm_endpoint_s3_label(cfg->profile, c->s3_label, sizeof c->s3_label,
                            err) != TDM_OK)
    goto fail;
  c->jobs = cfg->jobs > 0 ? cfg->jobs : 32;
  c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
  c->threshold = cfg->multipart_threshold ? cfg->multipart_threshold
                                          : 64 * MIB;
  c->part_size = cfg->part_size >= 5 * MIB ? cfg->part_size : 8 * MIB;
  c->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout : 10;
  c->stall_timeout = cfg->stall_timeout > 0 ? cfg->stall_timeout : 30;
  c->backoff_base = cfg->backoff_base > 0 ? cfg->backoff_base : 0.1;
  c->backoff_cap = cfg->backoff_cap > 0 ? cfg->backoff_cap : 20.0;
  c->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^
           (uint64_t)(uintptr_t)c;
  if (!c->rng) c->rng = 88172645463325252ull;
  if (tdm_curl_load(err) != TDM_OK) goto fail;
  if (!(c->multi = curl_multi_init())) {
    tdm_error_set(err, "EIO", "S3 client: libcurl failed to start");
    goto fail;
  }
  return c;
fail:
  tdm_s3_free(c);
  return NULL;
}

void tdm_s3_free(tdm_s3 *c) {
  size_t i;
  if (!c) return;
  for (i = 0; i < c->npool; i++) curl_easy_cleanup(c->pool[i]);
  free(c->pool);
  if (c->multi) curl_multi_cleanup(c->multi);
  free(c->bucket);
  free(c->region);
  free(c->ca_bundle);
  free(c->sse_kms_key_id);
  tdm_cred_provider_free(c->creds);   /* wipes the secret */
  free(c);
}

const char *tdm_s3_bucket(const tdm_s3 *c) { return c->bucket; }

const char *tdm_s3_region(const tdm_s3 *c, const char **configured) {
  if (configured) *configured = c->region_from[0] ? c->region_from : NULL;
  return c->region;
}

int tdm_s3i_switch_region(tdm_s3 *c, const char *region) {
  size_t i, n = strlen(region);
  char *dup;
  if (c->region_from[0] || n == 0 || n >= sizeof c->region_from)
    return TDM_ERR;
  for (i = 0; i < n; i++)
    if (!(islower((unsigned char)region[i]) ||
          isdigit((unsigned char)region[i]) || region[i] == '-'))
      return TDM_ERR;
  if (!(dup = strdup(region))) return TDM_ERR;
  snprintf(c->region_from, sizeof c->region_from, "%s", c->region);
  free(c->region);
  c->region = dup;
  return TDM_OK;
}

void tdm_s3_stats(const tdm_s3 *c, uint64_t *requests, uint64_t *connects) {
  if (requests) *requests = c->requests;
  if (connects) *connects = c->connects;
}
int tdm_s3_default_jobs(const tdm_s3 *c) { return c->jobs; }

double tdm_s3i_random(tdm_s3 *c) {
  uint64_t x = c->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  c->rng = x;
  return (double)(x >> 11) / 9007199254740992.0;
}

CURL *tdm_s3i_easy_get(tdm_s3 *c) {
  CURL *e;
  if (c->npool > 0) {
    e = c->pool[--c->npool];
    curl_easy_reset(e);
    return e;
  }
  return curl_easy_init();
}

void tdm_s3i_easy_put(tdm_s3 *c, CURL *e) {
  if (!e) return;
  if (c->npool == c->cappool) {
    size_t cap = c->cappool ? c->cappool * 2 : 16;
    CURL **p = realloc(c->pool, cap * sizeof *p);
    if (!p) {
      curl_easy_cleanup(e);
      return;
    }
    c->pool = p;
    c->cappool = cap;
  }
  c->pool[c->npool++] = e;
}

int tdm_s3_build_url(const tdm_s3 *c, const char *key, const tdm_kv *query,
                     size_t nq, tdm_buf *url, char *host, size_t hostsz,
                     tdm_buf *path, tdm_error *err) {
  size_t i;
  int n;
  if (c->host[0])
    n = c->path_style
        ? snprintf(host, hostsz, "%s", c->host)
        : snprintf(host, hostsz, "%s.%s", c->bucket, c->host);
  else
    n = c->path_style
        ? snprintf(host, hostsz, "%s.%s.amazonaws.com", c->s3_label,
                   c->region)
        : snprintf(host, hostsz, "%s.%s.%s.amazonaws.com", c->bucket,
                   c->s3_label, c->region);
  if (n < 0 || (size_t)n >= hostsz)
    return tdm_error_set(err, "EINVAL", "S3 host name too long");
  tdm_buf_reset(path);
  if (c->path_style) {
    if (tdm_buf_printf(path, err, "/%s", c->bucket) != TDM_OK)
      return TDM_ERR;
    if (*key && tdm_buf_printf(path, err, "/%s", key) != TDM_OK)
      return TDM_ERR;
  } else if (tdm_buf_printf(path, err, "/%s", key) != TDM_OK) {
    return TDM_ERR;
  }
  if (tdm_buf_printf(url, err, "%s://%s", c->scheme, host) != TDM_OK ||
      tdm_uri_encode(path->data, path->len, 1, url, err) != TDM_OK)
    return TDM_ERR;
  for (i = 0; i < nq; i++) {
    if (tdm_buf_appendc(url, i ? '&' : '?', err) != TDM_OK ||
        tdm_uri_encode(query[i].name, strlen(query[i].name), 0, url,
                       err) != TDM_OK ||
        tdm_buf_appendc(url, '=', err) != TDM_OK ||
        tdm_uri_encode(query[i].value, strlen(query[i].value), 0, url,
                       err) != TDM_OK)
      return TDM_ERR;
  }
  return TDM_OK;
}

/* Append "Name: value" to *list. */
static int add_header(struct curl_slist **list, const char *name,
                      const char *value, tdm_error *err) {
  char line[8192];
  struct curl_slist *l;
  int n = snprintf(line, sizeof line, "%s: %s", name, value);
  if (n < 0 || (size_t)n >= sizeof line)
    return tdm_error_set(err, "EINVAL", "S3 request: header %s too long",
                         name);
  l = curl_slist_append(*list, line);
  if (!l) return tdm_error_set(err, "ENOMEM", "S3 request: out of memory");
  *list = l;
  return TDM_OK;
}

/* --debug: hand the canonical request of `sr` to the trace function,
 * the session token's value masked (the secret key is never in it). */
static void trace_signing(const tdm_s3_req *r, const tdm_sigv4_request *sr,
                          const tdm_credentials *creds) {
  int debug = 0;
  void *ud = NULL;
  tdm_s3_trace_fn fn = tdm_s3_get_trace(&debug, &ud);
  tdm_buf canon;
  tdm_error e;
  tdm_s3_trace t;
  char *tok;
  if (!fn || !debug) return;
  tdm_buf_init(&canon, 256 * 1024);
  if (tdm_sigv4_debug(sr, creds, &canon, NULL, &e) == TDM_OK && canon.data) {
    tok = strstr(canon.data, "x-amz-security-token:");
    if (tok) {
      tok += strlen("x-amz-security-token:");
      while (*tok && *tok != '\n') *tok++ = '*';
    }
    memset(&t, 0, sizeof t);
    t.method = r->method;
    t.key = r->key ? r->key : "";
    t.retry_in = -1;
    t.detail = canon.data;
    fn(&t, ud);
  }
  tdm_buf_free(&canon);
}

int tdm_s3i_prepare(tdm_s3 *c, CURL *e, const tdm_s3_req *r,
                    struct curl_slist **hdrs, char *errbuf,
                    tdm_error *err) {
  tdm_buf url, path;
  char host[600];
  tdm_sigv4_request sr;
  tdm_sigv4_signed sig;
  tdm_credentials creds;        /* this request's copy, wiped at the end */
  size_t i;
  int rc = TDM_ERR;
  *hdrs = NULL;
  tdm_buf_init(&url, 64 * 1024);
  tdm_buf_init(&path, 16 * 1024);
  if (tdm_s3_build_url(c, r->key, r->query, r->nq, &url, host, sizeof host,
                       &path, err) != TDM_OK)
    goto done;
  memset(&sr, 0, sizeof sr);
  sr.method = r->method;
  sr.host = host;
  sr.path = path.data;
  sr.query = r->query;
  sr.nquery = r->nq;
  sr.headers = r->headers;
  sr.nheaders = r->nh;
  sr.payload_hash = r->payload_hash;
  sr.region = c->region;
  sr.service = "s3";
  sr.when = time(NULL);
  if (tdm_cred_provider_get(c->creds, &creds, err) != TDM_OK ||
      tdm_sigv4_sign(&sr, &creds, &sig, err) != TDM_OK)
    goto done;
  trace_signing(r, &sr, &creds);
  for (i = 0; i < r->nh; i++)
    if (add_header(hdrs, r->headers[i].name, r->headers[i].value, err)
        != TDM_OK)
      goto done;
  if (add_header(hdrs, "Host", host, err) != TDM_OK ||
      add_header(hdrs, "x-amz-date", sig.amz_date, err) != TDM_OK ||
      add_header(hdrs, "x-amz-content-sha256", sig.content_sha256, err)
        != TDM_OK ||
      add_header(hdrs, "Authorization", sig.authorization, err) != TDM_OK ||
      (creds.session_token[0] &&
       add_header(hdrs, "x-amz-security-token", creds.session_token, err)
         != TDM_OK))
    goto done;
  /* no "Expect: 100-continue" round trip; no unsigned default type */
  if (!(*hdrs = curl_slist_append(*hdrs, "Expect:"))) {
    tdm_error_set(err, "ENOMEM", "S3 request: out of memory");
    goto done;
  }
  errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, url.data);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* send the path exactly as signed: no squashing of "/./" or "/../" */
  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_bundle[0]) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_bundle);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->stall_timeout);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  rc = TDM_OK;
done:
  if (rc != TDM_OK) {
    curl_slist_free_all(*hdrs);
    *hdrs = NULL;
  }
  tdm_buf_free(&url);
  tdm_buf_free(&path);
  OPENSSL_cleanse(&creds, sizeof creds);
  return rc;
}

int tdm_s3_presign(tdm_s3 *c, const char *method, const char *key,
                   long seconds, tdm_buf *url, tdm_error *err) {
  tdm_buf path, dummy;
  char host[600];
  tdm_sigv4_request sr;
  tdm_credentials creds;
  int rc;
  if (seconds < 1 || seconds > 604800)
    return tdm_error_set(err, "EINVAL", "presign %s: expiry %ld s is "
                         "outside 1..604800", key, seconds);
  tdm_buf_init(&path, 16 * 1024);
  tdm_buf_init(&dummy, 64 * 1024);
  rc = tdm_s3_build_url(c, key, NULL, 0, &dummy, host, sizeof host, &path,
                        err);
  if (rc == TDM_OK) {
    memset(&sr, 0, sizeof sr);
    sr.method = method;
    sr.host = host;
    sr.path = path.data;
    sr.payload_hash = "UNSIGNED-PAYLOAD";
    sr.region = c->region;
    sr.service = "s3";
    sr.when = time(NULL);
    rc = tdm_cred_provider_get(c->creds, &creds, err);
    if (rc == TDM_OK)
      rc = tdm_sigv4_presign(&sr, &creds, c->scheme, seconds, url, err);
    OPENSSL_cleanse(&creds, sizeof creds);
  }
  tdm_buf_free(&path);
  tdm_buf_free(&dummy);
  return rc;
}
