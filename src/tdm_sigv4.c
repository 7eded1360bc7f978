/*
 * tdm_sigv4.c -- AWS Signature Version 4 for S3 (see include/tdm/sigv4.h):
 * Authorization-header signing, presigned URLs and the URI encoding both
 * use. Pure computation on OpenSSL (SHA-256, HMAC-SHA256).
 *
 * Secret material: the "AWS4"+secret key and every derived signing key
 * live in stack buffers of this file and are wiped with OPENSSL_cleanse
 * before return. No message built here ever contains the secret key or
 * the session token.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "tdm.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define UNSIGNED "UNSIGNED-PAYLOAD"
/* Upper bound of a canonical request (and of any single encoded piece):
 * large enough for 1 KiB keys, long query strings and a 4 KiB session
 * token several times over. */
#define CANON_MAX (1024 * 1024)
#define PRESIGN_MAX_EXPIRES 604800L

/* One canonical name=value pair (query parameter or header), both
 * malloc'd and owned by the pair list. */
typedef struct pair {
  char *name;
  char *value;
  size_t order;   /* position given by the caller: keeps duplicate header
                     values in their original order */
} pair;

typedef struct pairs {
  pair *v;
  size_t n, cap;
} pairs;

static void pairs_free(pairs *p) {
  size_t i;
  for (i = 0; i < p->n; i++) {
    free(p->v[i].name);
    free(p->v[i].value);
  }
  free(p->v);
  p->v = NULL;
  p->n = p->cap = 0;
}

/* Append a pair taking ownership of `name` and `value` (freed on
 * failure too). */
static int pairs_add(pairs *p, char *name, char *value, tdm_error *err) {
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    pair *v = realloc(p->v, cap * sizeof *v);
    if (!v) {
      free(name);
      free(value);
      return tdm_error_set(err, "ENOMEM", "sigv4: out of memory");
    }
    p->v = v;
    p->cap = cap;
  }
  p->v[p->n].name = name;
  p->v[p->n].value = value;
  p->v[p->n].order = p->n;
  p->n++;
  return TDM_OK;
}

/* Byte-wise comparison (the canonical form is ASCII after encoding, and
 * AWS sorts by code point). */
static int cmp_pair(const void *a, const void *b) {
  const pair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  c = strcmp(x->value, y->value);
  if (c) return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Headers sort by name only; equal names keep the caller's order so their
 * values are joined with ',' in that order (as botocore and AWS do). */
static int cmp_header(const void *a, const void *b) {
  const pair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c) return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
         c == '~';
}

int tdm_uri_encode(const char *in, size_t len, int keep_slash, tdm_buf *out,
                   tdm_error *err) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      if (tdm_buf_appendc(out, (char)c, err) != TDM_OK) return TDM_ERR;
    } else {
      char e[3];
      e[0] = '%';
      e[1] = hex[c >> 4];
      e[2] = hex[c & 15];
      if (tdm_buf_append(out, e, 3, err) != TDM_OK) return TDM_ERR;
    }
  }
  return TDM_OK;
}

/* URI-encode the NUL-terminated `s` into a new malloc'd string (*out). */
static int encode_dup(const char *s, int keep_slash, char **out,
                      tdm_error *err) {
  tdm_buf b;
  tdm_buf_init(&b, CANON_MAX);
  if (tdm_uri_encode(s, strlen(s), keep_slash, &b, err) != TDM_OK) {
    tdm_buf_free(&b);
    return TDM_ERR;
  }
  *out = tdm_buf_take(&b, NULL, err);
  return TDM_OK;
}

/* RFC 7230 token character (header names). */
static int is_tchar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Lower-case copy of header name `s` (malloc'd) after checking it is a
 * token and not one of the headers the signer adds itself. */
static int header_name(const char *s, char **out, tdm_error *err) {
  static const char *const reserved[] = {
    "host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
    "authorization", NULL
  };
  size_t i, n = strlen(s);
  char *p;
  if (n == 0 || n > 256)
    return tdm_error_set(err, "EINVAL", "sigv4: header name is %s",
                         n ? "too long" : "empty");
  for (i = 0; i < n; i++)
    if (!is_tchar((unsigned char)s[i]))
      return tdm_error_set(err, "EINVAL",
                           "sigv4: header name '%.64s' has a character "
                           "not allowed in a header name", s);
  p = malloc(n + 1);
  if (!p) return tdm_error_set(err, "ENOMEM", "sigv4: out of memory");
  for (i = 0; i < n; i++) {
    char c = s[i];
    p[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  p[n] = '\0';
  for (i = 0; reserved[i]; i++)
    if (strcmp(p, reserved[i]) == 0) {
      tdm_error_set(err, "EINVAL", "sigv4: header '%s' is added by the "
                    "signer and must not be given", p);
      free(p);
      return TDM_ERR;
    }
  *out = p;
  return TDM_OK;
}

/* Canonical header value (malloc'd): leading and trailing spaces/tabs
 * removed, inner runs of spaces/tabs collapsed to one space. Control
 * characters (CR, LF, ...) are refused: they would let a value inject
 * headers. The value itself is never quoted in the message (it may be a
 * credential of another kind). */
static int header_value(const char *name, const char *s, char **out,
                        tdm_error *err) {
  size_t n = strlen(s), i, o = 0;
  int space = 0;
  char *p = malloc(n + 1);
  if (!p) return tdm_error_set(err, "ENOMEM", "sigv4: out of memory");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t') {
      space = 1;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      free(p);
      return tdm_error_set(err, "EINVAL", "sigv4: value of header '%.64s' "
                           "contains a control character", name);
    }
    if (space && o > 0) p[o++] = ' ';
    space = 0;
    p[o++] = (char)c;
  }
  p[o] = '\0';
  *out = p;
  return TDM_OK;
}

static int dup_str(const char *s, char **out, tdm_error *err) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (!p) return tdm_error_set(err, "ENOMEM", "sigv4: out of memory");
  memcpy(p, s, n + 1);
  *out = p;
  return TDM_OK;
}

/* Add a query pair from raw name and value (both encoded here). */
static int add_query(pairs *q, const char *name, const char *value,
                     tdm_error *err) {
  char *n = NULL, *v = NULL;
  if (encode_dup(name, 0, &n, err) != TDM_OK) return TDM_ERR;
  if (encode_dup(value ? value : "", 0, &v, err) != TDM_OK) {
    free(n);
    return TDM_ERR;
  }
  return pairs_add(q, n, v, err);
}

/* Add a header from a lower-case name the signer owns and a value. */
static int add_header_raw(pairs *h, const char *name, const char *value,
                          tdm_error *err) {
  char *n = NULL, *v = NULL;
  if (dup_str(name, &n, err) != TDM_OK) return TDM_ERR;
  if (header_value(name, value, &v, err) != TDM_OK) {
    free(n);
    return TDM_ERR;
  }
  return pairs_add(h, n, v, err);
}

static int is_lower_hex64(const char *s) {
  size_t i;
  for (i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[64] == '\0';
}

/* A scope component (region, service) must be non-empty and free of
 * '/', whitespace and control characters. */
static int check_scope_part(const char *what, const char *s,
                            tdm_error *err) {
  size_t i;
  if (!s || !*s)
    return tdm_error_set(err, "EINVAL", "sigv4: %s is empty", what);
  for (i = 0; s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == '/' || c == 0x7f || i >= 64)
      return tdm_error_set(err, "EINVAL", "sigv4: %s '%.64s' is not valid",
                           what, s);
  }
  return TDM_OK;
}

/* Check the parts of a request and credentials every mode needs. Messages
 * name what is wrong, never a secret. */
static int check_request(const tdm_sigv4_request *req,
                         const tdm_credentials *creds, tdm_error *err) {
  size_t i;
  if (!req || !creds)
    return tdm_error_set(err, "EINVAL", "sigv4: no request or credentials");
  if (!creds->access_key[0] || !creds->secret_key[0])
    return tdm_error_set(err, "ENOCREDS", "sigv4: credentials have no "
                         "access key id or no secret access key");
  for (i = 0; creds->access_key[i]; i++) {
    unsigned char c = (unsigned char)creds->access_key[i];
    if (c <= ' ' || c == '/' || c == ',' || c == 0x7f)
      return tdm_error_set(err, "EINVAL", "sigv4: access key id has a "
                           "character not allowed in a credential scope");
  }
  for (i = 0; creds->session_token[i]; i++) {
    unsigned char c = (unsigned char)creds->session_token[i];
    if (c < 0x20 || c == 0x7f)
      return tdm_error_set(err, "EINVAL", "sigv4: session token contains "
                           "a control character");
  }
  if (!req->method || !*req->method)
    return tdm_error_set(err, "EINVAL", "sigv4: method is empty");
  for (i = 0; req->method[i]; i++)
    if (!(req->method[i] >= 'A' && req->method[i] <= 'Z') || i >= 16)
      return tdm_error_set(err, "EINVAL", "sigv4: method '%.16s' is not "
                           "an upper-case HTTP method", req->method);
  if (!req->host || !*req->host)
    return tdm_error_set(err, "EINVAL", "sigv4: host is empty");
  for (i = 0; req->host[i]; i++) {
    unsigned char c = (unsigned char)req->host[i];
    if (c <= ' ' || c == 0x7f || c == '/' || i >= 255)
      return tdm_error_set(err, "EINVAL", "sigv4: host '%.64s' is not a "
                           "host name[:port]", req->host);
  }
  if (!req->path)
    return tdm_error_set(err, "EINVAL", "sigv4: path is missing");
  if (check_scope_part("region", req->region, err) != TDM_OK ||
      check_scope_part("service", req->service, err) != TDM_OK)
    return TDM_ERR;
  if (req->nquery && !req->query)
    return tdm_error_set(err, "EINVAL", "sigv4: query count without query");
  for (i = 0; i < req->nquery; i++)
    if (!req->query[i].name)
      return tdm_error_set(err, "EINVAL", "sigv4: query parameter %zu has "
                           "no name", i + 1);
  if (req->nheaders && !req->headers)
    return tdm_error_set(err, "EINVAL", "sigv4: header count without "
                         "headers");
  for (i = 0; i < req->nheaders; i++)
    if (!req->headers[i].name || !req->headers[i].value)
      return tdm_error_set(err, "EINVAL", "sigv4: header %zu has no name "
                           "or no value", i + 1);
  return TDM_OK;
}

/* "20130524T000000Z" (16 chars + NUL) for `when`. */
static int format_amz_date(time_t when, char out[17], tdm_error *err) {
  struct tm tm;
  if (!gmtime_r(&when, &tm) ||
      strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
    return tdm_error_set(err, "EINVAL", "sigv4: signing time %lld cannot "
                         "be formatted", (long long)when);
  return TDM_OK;
}

/* Canonical URI: the path with each byte outside the unreserved set and
 * '/' percent-encoded once (S3 does not normalise); "" becomes "/", and a
 * path not starting with '/' gets one. */
static int canonical_uri(const char *path, tdm_buf *out, tdm_error *err) {
  if (path[0] != '/' && tdm_buf_appendc(out, '/', err) != TDM_OK)
    return TDM_ERR;
  return tdm_uri_encode(path, strlen(path), 1, out, err);
}

/* Everything one signature needs, built by prepare(). */
typedef struct signing {
  char amz_date[17];
  char scope[160];         /* 20130524/us-east-1/s3/aws4_request */
  char payload[65];        /* payload hash as signed */
  pairs query;             /* encoded, sorted */
  pairs headers;           /* lower-case, trimmed, sorted */
  tdm_buf signed_headers;  /* host;range;x-amz-date */
  tdm_buf canonical;
  tdm_buf to_sign;
  char signature[65];
} signing;

static void signing_init(signing *s) {
  memset(s, 0, sizeof *s);
  tdm_buf_init(&s->signed_headers, CANON_MAX);
  tdm_buf_init(&s->canonical, CANON_MAX);
  tdm_buf_init(&s->to_sign, CANON_MAX);
}

static void signing_free(signing *s) {
  /* The canonical request may hold the session token: wipe it. */
  if (s->canonical.data) OPENSSL_cleanse(s->canonical.data, s->canonical.cap);
  pairs_free(&s->query);
  pairs_free(&s->headers);
  tdm_buf_free(&s->signed_headers);
  tdm_buf_free(&s->canonical);
  tdm_buf_free(&s->to_sign);
}

static int hmac(const void *key, size_t keylen, const void *msg,
                size_t msglen, unsigned char out[32], tdm_error *err) {
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &n) ||
      n != 32)
    return tdm_error_set(err, "ECRYPTO", "sigv4: HMAC-SHA256 failed");
  return TDM_OK;
}

/* Signature = hex(HMAC(kSigning, string to sign)) with
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 * "aws4_request"). Every intermediate key is wiped. */
static int compute_signature(signing *s, const tdm_sigv4_request *req,
                             const tdm_credentials *creds, tdm_error *err) {
  unsigned char secret[4 + sizeof creds->secret_key];
  unsigned char k1[32], k2[32], mac[32];
  size_t slen = strnlen(creds->secret_key, sizeof creds->secret_key);
  int rc = TDM_ERR;
  memcpy(secret, "AWS4", 4);
  memcpy(secret + 4, creds->secret_key, slen);
  if (hmac(secret, 4 + slen, s->amz_date, 8, k1, err) == TDM_OK &&
      hmac(k1, 32, req->region, strlen(req->region), k2, err) == TDM_OK &&
      hmac(k2, 32, req->service, strlen(req->service), k1, err) == TDM_OK &&
      hmac(k1, 32, "aws4_request", 12, k2, err) == TDM_OK &&
      hmac(k2, 32, s->to_sign.data, s->to_sign.len, mac, err) == TDM_OK) {
    tdm_hex(mac, 32, s->signature);
    rc = TDM_OK;
  }
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(k1, sizeof k1);
  OPENSSL_cleanse(k2, sizeof k2);
  OPENSSL_cleanse(mac, sizeof mac);
  return rc;
}

/* Build the canonical request, string to sign and signature of `req`.
 * presign: query authentication (X-Amz-* parameters, only host signed,
 * UNSIGNED-PAYLOAD, `expires` seconds); else header authentication. */
static int prepare(signing *s, const tdm_sigv4_request *req,
                   const tdm_credentials *creds, int presign, long expires,
                   tdm_error *err) {
  tdm_buf *c = &s->canonical;
  char hash[TDM_SHA256_HEX_LEN + 1];
  size_t i;
  int n;

  if (check_request(req, creds, err) != TDM_OK) return TDM_ERR;
  if (format_amz_date(req->when, s->amz_date, err) != TDM_OK) return TDM_ERR;
  n = snprintf(s->scope, sizeof s->scope, "%.8s/%s/%s/aws4_request",
               s->amz_date, req->region, req->service);
  if (n < 0 || (size_t)n >= sizeof s->scope)
    return tdm_error_set(err, "EINVAL", "sigv4: credential scope too long");

  if (presign) {
    memcpy(s->payload, UNSIGNED, sizeof UNSIGNED);
  } else {
    const char *ph = req->payload_hash;
    if (!ph || !(strcmp(ph, UNSIGNED) == 0 || is_lower_hex64(ph)))
      return tdm_error_set(err, "EINVAL", "sigv4: payload hash must be the "
                           "lower-case hex SHA-256 of the body or "
                           "UNSIGNED-PAYLOAD");
    memcpy(s->payload, ph, strlen(ph) + 1);
  }

  /* Query. */
  for (i = 0; i < req->nquery; i++)
    if (add_query(&s->query, req->query[i].name, req->query[i].value, err)
        != TDM_OK)
      return TDM_ERR;
  if (presign) {
    char cred[sizeof creds->access_key + sizeof s->scope + 1];
    char exp[24];
    snprintf(cred, sizeof cred, "%s/%s", creds->access_key, s->scope);
    snprintf(exp, sizeof exp, "%ld", expires);
    if (add_query(&s->query, "X-Amz-Algorithm", ALGORITHM, err) != TDM_OK ||
        add_query(&s->query, "X-Amz-Credential", cred, err) != TDM_OK ||
        add_query(&s->query, "X-Amz-Date", s->amz_date, err) != TDM_OK ||
        add_query(&s->query, "X-Amz-Expires", exp, err) != TDM_OK ||
        add_query(&s->query, "X-Amz-SignedHeaders", "host", err) != TDM_OK)
      return TDM_ERR;
    if (creds->session_token[0] &&
        add_query(&s->query, "X-Amz-Security-Token", creds->session_token,
                  err) != TDM_OK)
      return TDM_ERR;
  }
  if (s->query.n) qsort(s->query.v, s->query.n, sizeof *s->query.v, cmp_pair);

  /* Headers. */
  if (add_header_raw(&s->headers, "host", req->host, err) != TDM_OK)
    return TDM_ERR;
  if (!presign) {
    for (i = 0; i < req->nheaders; i++) {
      char *hn = NULL, *hv = NULL;
      if (header_name(req->headers[i].name, &hn, err) != TDM_OK)
        return TDM_ERR;
      if (header_value(hn, req->headers[i].value, &hv, err) != TDM_OK) {
        free(hn);
        return TDM_ERR;
      }
      if (pairs_add(&s->headers, hn, hv, err) != TDM_OK) return TDM_ERR;
    }
    if (add_header_raw(&s->headers, "x-amz-date", s->amz_date, err)
        != TDM_OK ||
        add_header_raw(&s->headers, "x-amz-content-sha256", s->payload, err)
        != TDM_OK)
      return TDM_ERR;
    if (creds->session_token[0] &&
        add_header_raw(&s->headers, "x-amz-security-token",
                       creds->session_token, err) != TDM_OK)
      return TDM_ERR;
  }
  qsort(s->headers.v, s->headers.n, sizeof *s->headers.v, cmp_header);

  /* Canonical request. */
  if (tdm_buf_appends(c, req->method, err) != TDM_OK ||
      tdm_buf_appendc(c, '\n', err) != TDM_OK ||
      canonical_uri(req->path, c, err) != TDM_OK ||
      tdm_buf_appendc(c, '\n', err) != TDM_OK)
    return TDM_ERR;
  for (i = 0; i < s->query.n; i++)
    if (tdm_buf_printf(c, err, "%s%s=%s", i ? "&" : "", s->query.v[i].name,
                       s->query.v[i].value) != TDM_OK)
      return TDM_ERR;
  if (tdm_buf_appendc(c, '\n', err) != TDM_OK) return TDM_ERR;
  for (i = 0; i < s->headers.n; i++) {
    const pair *h = &s->headers.v[i];
    int first = i == 0 || strcmp(h->name, s->headers.v[i - 1].name) != 0;
    int last = i + 1 == s->headers.n ||
               strcmp(h->name, s->headers.v[i + 1].name) != 0;
    if (first) {
      if (tdm_buf_printf(c, err, "%s:", h->name) != TDM_OK ||
          tdm_buf_printf(&s->signed_headers, err, "%s%s",
                         s->signed_headers.len ? ";" : "", h->name)
          != TDM_OK)
        return TDM_ERR;
    } else if (tdm_buf_appendc(c, ',', err) != TDM_OK) {
      return TDM_ERR;
    }
    if (tdm_buf_appends(c, h->value, err) != TDM_OK ||
        (last && tdm_buf_appendc(c, '\n', err) != TDM_OK))
      return TDM_ERR;
  }
  if (tdm_buf_printf(c, err, "\n%s\n%s", s->signed_headers.data,
                     s->payload) != TDM_OK)
    return TDM_ERR;

  /* String to sign, signature. */
  if (tdm_sha256_hex(c->data, c->len, hash, err) != TDM_OK ||
      tdm_buf_printf(&s->to_sign, err, ALGORITHM "\n%s\n%s\n%s",
                     s->amz_date, s->scope, hash) != TDM_OK)
    return TDM_ERR;
  return compute_signature(s, req, creds, err);
}

int tdm_sigv4_sign(const tdm_sigv4_request *req,
                   const tdm_credentials *creds, tdm_sigv4_signed *out,
                   tdm_error *err) {
  signing s;
  int rc = TDM_ERR, n;
  signing_init(&s);
  if (prepare(&s, req, creds, 0, 0, err) == TDM_OK) {
    n = snprintf(out->authorization, sizeof out->authorization,
                 ALGORITHM " Credential=%s/%s, SignedHeaders=%s, "
                 "Signature=%s", creds->access_key, s.scope,
                 s.signed_headers.data, s.signature);
    if (n < 0 || (size_t)n >= sizeof out->authorization) {
      tdm_error_set(err, "E2BIG", "sigv4: Authorization header longer "
                    "than %zu bytes (too many signed headers)",
                    sizeof out->authorization - 1);
    } else {
      memcpy(out->amz_date, s.amz_date, sizeof out->amz_date);
      memcpy(out->content_sha256, s.payload, sizeof out->content_sha256);
      rc = TDM_OK;
    }
  }
  signing_free(&s);
  return rc;
}

/* Append the canonical request / string to sign of a prepared signing. */
static int debug_out(const signing *s, tdm_buf *canonical, tdm_buf *to_sign,
                     tdm_error *err) {
  if (canonical &&
      tdm_buf_append(canonical, s->canonical.data, s->canonical.len, err)
      != TDM_OK)
    return TDM_ERR;
  if (to_sign &&
      tdm_buf_append(to_sign, s->to_sign.data, s->to_sign.len, err)
      != TDM_OK)
    return TDM_ERR;
  return TDM_OK;
}

int tdm_sigv4_debug(const tdm_sigv4_request *req,
                    const tdm_credentials *creds, tdm_buf *canonical,
                    tdm_buf *to_sign, tdm_error *err) {
  signing s;
  int rc = TDM_ERR;
  signing_init(&s);
  if (prepare(&s, req, creds, 0, 0, err) == TDM_OK)
    rc = debug_out(&s, canonical, to_sign, err);
  signing_free(&s);
  return rc;
}

static int check_expires(long expires, tdm_error *err) {
  if (expires < 1 || expires > PRESIGN_MAX_EXPIRES)
    return tdm_error_set(err, "EINVAL", "presign: expiry of %ld seconds is "
                         "outside 1..%ld (7 days)", expires,
                         PRESIGN_MAX_EXPIRES);
  return TDM_OK;
}

int tdm_sigv4_presign_debug(const tdm_sigv4_request *req,
                            const tdm_credentials *creds, long expires,
                            tdm_buf *canonical, tdm_buf *to_sign,
                            tdm_error *err) {
  signing s;
  int rc = TDM_ERR;
  if (check_expires(expires, err) != TDM_OK) return TDM_ERR;
  signing_init(&s);
  if (prepare(&s, req, creds, 1, expires, err) == TDM_OK)
    rc = debug_out(&s, canonical, to_sign, err);
  signing_free(&s);
  return rc;
}

int tdm_sigv4_presign(const tdm_sigv4_request *req,
                      const tdm_credentials *creds, const char *scheme,
                      long expires, tdm_buf *url, tdm_error *err) {
  signing s;
  size_t i, start = url->len;
  int rc = TDM_ERR;
  if (check_expires(expires, err) != TDM_OK) return TDM_ERR;
  if (!scheme || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http")))
    return tdm_error_set(err, "EINVAL", "presign: scheme must be https or "
                         "http");
  signing_init(&s);
  if (prepare(&s, req, creds, 1, expires, err) != TDM_OK) goto done;
  if (tdm_buf_printf(url, err, "%s://%s", scheme, req->host) != TDM_OK ||
      canonical_uri(req->path, url, err) != TDM_OK ||
      tdm_buf_appendc(url, '?', err) != TDM_OK)
    goto done;
  for (i = 0; i < s.query.n; i++)
    if (tdm_buf_printf(url, err, "%s=%s&", s.query.v[i].name,
                       s.query.v[i].value) != TDM_OK)
      goto done;
  if (tdm_buf_printf(url, err, "X-Amz-Signature=%s", s.signature) != TDM_OK)
    goto done;
  rc = TDM_OK;
done:
  if (rc != TDM_OK && url->data) {
    url->len = start;   /* leave `url` as it was */
    url->data[start] = '\0';
  }
  signing_free(&s);
  return rc;
}
