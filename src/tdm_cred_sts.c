/*
 * tdm_cred_sts.c -- AWS STS: AssumeRole (SigV4-signed with the source
 * credentials by src/tdm_sigv4.c) and AssumeRoleWithWebIdentity
 * (unsigned), as a form POST; the XML answer read with expat. The STS
 * endpoint is botocore's: AWS_ENDPOINT_URL_STS (and the other endpoint
 * settings, tdm_cred_endpoint.c), else the regional endpoint
 * sts.REGION.amazonaws.com, or the global sts.amazonaws.com when no region
 * is set or AWS_STS_REGIONAL_ENDPOINTS=legacy names one of the regions
 * that used it.
 *
 * Secrets: the source credentials, the web identity token and the answer
 * are wiped after use; messages carry STS's error code and message only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <expat.h>
#include <openssl/crypto.h>

#include "tdm_cred_int.h"

#define TEXT_MAX 8192

/* The elements of the answer we keep. */
enum { F_AK, F_SK, F_TOKEN, F_EXP, F_CODE, F_MSG, F_COUNT };
static const char *const field_names[F_COUNT] = {
  "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code",
  "Message"
};

typedef struct sts_xml {
  int cur;                     /* field being read, -1 none */
  size_t len[F_COUNT];
  char text[F_COUNT][TEXT_MAX];
} sts_xml;

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs) {
  sts_xml *x = ud;
  int i;
  (void)attrs;
  x->cur = -1;
  for (i = 0; i < F_COUNT; i++)
    if (strcmp(name, field_names[i]) == 0) {
      x->cur = i;
      x->len[i] = 0;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  sts_xml *x = ud;
  (void)name;
  x->cur = -1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  sts_xml *x = ud;
  size_t room;
  if (x->cur < 0 || len <= 0) return;
  room = TEXT_MAX - 1 - x->len[x->cur];
  if ((size_t)len > room) len = (int)room;
  memcpy(x->text[x->cur] + x->len[x->cur], s, (size_t)len);
  x->len[x->cur] += (size_t)len;
  x->text[x->cur][x->len[x->cur]] = '\0';
}

/* Parse an STS answer into *x; TDM_ERR when it is not XML. */
static int parse_xml(const tdm_buf *body, sts_xml *x, tdm_error *err) {
  XML_Parser p = XML_ParserCreate("UTF-8");
  int ok;
  if (!p) return tdm_error_set(err, "ENOMEM", "STS: out of memory");
  memset(x, 0, sizeof *x);
  x->cur = -1;
  XML_SetUserData(p, x);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  ok = XML_Parse(p, body->data ? body->data : "", (int)body->len, 1) ==
       XML_STATUS_OK;
  XML_ParserFree(p);
  return ok ? TDM_OK : tdm_error_set(err, "EBADCREDS", "STS: the answer "
                                     "is not XML");
}

/* Regions whose STS calls went to sts.amazonaws.com under "legacy". */
static int legacy_global(const char *region) {
  static const char *const r[] = {
    "ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "aws-global", "ca-central-1", "eu-central-1", "eu-north-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1", "us-east-1",
    "us-east-2", "us-west-1", "us-west-2", NULL
  };
  int i;
  for (i = 0; r[i]; i++)
    if (strcmp(region, r[i]) == 0) return 1;
  return 0;
}

/* The STS URL and the region to sign for. */
static int sts_endpoint(const tdm_credi_profile *p, char *url, size_t urlsz,
                        char *region, size_t regionsz, tdm_error *err) {
  const char *mode = getenv("AWS_STS_REGIONAL_ENDPOINTS");
  if (!mode || !*mode) mode = tdm_credi_get(&p->conf, "sts_regional_endpoints");
  if (tdm_region_resolve(region, regionsz, p->name, "", NULL, 0, err)
      != TDM_OK)
    return TDM_ERR;
  if (tdm_credi_endpoint(p, "sts", url, urlsz, NULL, 0, err) != TDM_OK)
    return TDM_ERR;
  if (url[0]) {
    if (!region[0]) snprintf(region, regionsz, "us-east-1");
    return TDM_OK;
  }
  if (!region[0] || strcmp(region, "aws-global") == 0 ||
      (mode && strcasecmp(mode, "legacy") == 0 && legacy_global(region))) {
    snprintf(url, urlsz, "https://sts.amazonaws.com");
    snprintf(region, regionsz, "us-east-1");
  } else {
    snprintf(url, urlsz, "https://sts.%s.amazonaws.com", region);
  }
  return TDM_OK;
}

/* Append "&name=value" (value form-encoded) to the body. */
static int form_add(tdm_buf *b, const char *name, const char *value,
                    tdm_error *err) {
  if (!value || !*value) return TDM_OK;
  if (tdm_buf_printf(b, err, "&%s=", name) != TDM_OK) return TDM_ERR;
  return tdm_uri_encode(value, strlen(value), 0, b, err);
}

/* Split "scheme://authority/path" into authority and path ("/" default). */
static int split_url(const char *url, char *host, size_t hostsz, char *path,
                     size_t pathsz, tdm_error *err) {
  const char *a = strstr(url, "://"), *slash;
  size_t n;
  if (!a) return tdm_error_set(err, "ECONFIG", "STS endpoint %s: expected "
                               "http(s)://HOST", url);
  a += 3;
  slash = strchr(a, '/');
  n = slash ? (size_t)(slash - a) : strlen(a);
  if (n == 0 || n >= hostsz)
    return tdm_error_set(err, "ECONFIG", "STS endpoint %s: bad host", url);
  memcpy(host, a, n);
  host[n] = '\0';
  snprintf(path, pathsz, "%s", slash ? slash : "/");
  return TDM_OK;
}

/* POST `body` to STS (signed with `source` unless NULL) and read the
 * credentials from the answer into *out. */
static int sts_call(const tdm_credi_profile *p, const char *action,
                    const char *role_arn, tdm_buf *body,
                    const tdm_credentials *source, tdm_credentials *out,
                    tdm_error *err) {
  static const char ctype[] =
    "application/x-www-form-urlencoded; charset=utf-8";
  char url[1024], region[64], host[512], path[512], hash[65], what[64];
  tdm_kv hdrs[6];
  tdm_kv signed_h[1] = { { "Content-Type", ctype } };
  tdm_sigv4_signed sig;
  tdm_credi_http r;
  tdm_buf resp;
  sts_xml *x = NULL;
  long status;
  size_t nh = 0;
  int rc = TDM_ERR;

  if (sts_endpoint(p, url, sizeof url, region, sizeof region, err) != TDM_OK)
    return TDM_ERR;
  hdrs[nh].name = "Content-Type";
  hdrs[nh++].value = ctype;
  if (source) {
    tdm_sigv4_request sr;
    if (split_url(url, host, sizeof host, path, sizeof path, err) != TDM_OK ||
        tdm_sha256_hex(body->data, body->len, hash, err) != TDM_OK)
      return TDM_ERR;
    memset(&sr, 0, sizeof sr);
    sr.method = "POST";
    sr.host = host;
    sr.path = path;
    sr.headers = signed_h;
    sr.nheaders = 1;
    sr.payload_hash = hash;
    sr.region = region;
    sr.service = "sts";
    sr.when = time(NULL);
    if (tdm_sigv4_sign(&sr, source, &sig, err) != TDM_OK) {
      char why[TDM_ERR_MSG_MAX];
      snprintf(why, sizeof why, "%s", err->message);
      return tdm_error_set(err, err->code, "STS %s %s: %s", action,
                           role_arn, why);
    }
    hdrs[nh].name = "X-Amz-Date";
    hdrs[nh++].value = sig.amz_date;
    hdrs[nh].name = "X-Amz-Content-SHA256";
    hdrs[nh++].value = sig.content_sha256;
    hdrs[nh].name = "Authorization";
    hdrs[nh++].value = sig.authorization;
    if (source->session_token[0]) {
      hdrs[nh].name = "X-Amz-Security-Token";
      hdrs[nh++].value = source->session_token;
    }
  }
  memset(&r, 0, sizeof r);
  r.method = "POST";
  r.url = url;
  r.headers = hdrs;
  r.nheaders = nh;
  r.body = body->data;
  r.timeout_ms = 60000;
  snprintf(what, sizeof what, "STS %s", action);
  r.what = what;
  if (tdm_credi_http_do(&r, &status, &resp, err) != TDM_OK) {
    char why[TDM_ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", err->message);
    return tdm_error_set(err, err->code, "%s (role %s)", why, role_arn);
  }
  if (!(x = malloc(sizeof *x))) {
    tdm_error_set(err, "ENOMEM", "STS: out of memory");
    goto done;
  }
  if (parse_xml(&resp, x, err) != TDM_OK) {
    if (status != 200)
      tdm_error_set(err, "ESTS", "STS %s %s: HTTP %ld from %s", action,
                    role_arn, status, url);
    goto done;
  }
  if (status != 200 || !x->len[F_AK]) {
    tdm_error_set(err, "ESTS", "STS %s %s: %s%s%.300s (HTTP %ld from %s)",
                  action, role_arn, x->len[F_CODE] ? x->text[F_CODE] :
                  "no credentials in the answer", x->len[F_MSG] ? ": " : "",
                  x->text[F_MSG], status, url);
    goto done;
  }
  if (tdm_credi_fill(out, x->text[F_AK], x->text[F_SK], x->text[F_TOKEN],
                     "assume-role", "STS", err) != TDM_OK)
    goto done;
  out->expiration = tdm_credi_parse_time(x->text[F_EXP]);
  if (out->expiration <= 0) {
    tdm_error_set(err, "EBADCREDS", "STS %s %s: bad Expiration", action,
                  role_arn);
    goto done;
  }
  rc = TDM_OK;
done:
  if (x) OPENSSL_cleanse(x, sizeof *x);
  free(x);
  if (resp.data) OPENSSL_cleanse(resp.data, resp.cap);
  tdm_buf_free(&resp);
  return rc;
}

/* The session name: the configured one, else "tdm-session-EPOCH" as
 * botocore's "botocore-session-EPOCH". */
static void session_name(const tdm_credi_role *role, char *out,
                         size_t outsz) {
  if (role->session_name && *role->session_name)
    snprintf(out, outsz, "%s", role->session_name);
  else
    snprintf(out, outsz, "tdm-session-%lld", (long long)time(NULL));
}

int tdm_credi_sts_assume_role(const tdm_credi_profile *p,
                              const tdm_credi_role *role,
                              const tdm_credentials *source,
                              tdm_credentials *out, tdm_error *err) {
  char name[128];
  tdm_buf body;
  int rc;
  session_name(role, name, sizeof name);
  tdm_buf_init(&body, 16384);
  rc = tdm_buf_printf(&body, err, "Action=AssumeRole&Version=2011-06-15");
  if (rc == TDM_OK) rc = form_add(&body, "RoleArn", role->role_arn, err);
  if (rc == TDM_OK) rc = form_add(&body, "RoleSessionName", name, err);
  if (rc == TDM_OK)
    rc = form_add(&body, "DurationSeconds", role->duration, err);
  if (rc == TDM_OK) rc = form_add(&body, "ExternalId", role->external_id, err);
  if (rc == TDM_OK)
    rc = sts_call(p, "AssumeRole", role->role_arn, &body, source, out, err);
  tdm_buf_free(&body);
  if (rc == TDM_OK)
    snprintf(out->source, sizeof out->source, "profile '%.40s': role %.100s",
             p->name, role->role_arn);
  return rc;
}

int tdm_credi_sts_web_identity(const tdm_credi_profile *p,
                               const tdm_credi_role *role,
                               const char *token_file,
                               tdm_credentials *out, tdm_error *err) {
  char name[128];
  tdm_buf body, tok;
  FILE *f;
  char chunk[4096];
  size_t n;
  int rc;

  tdm_buf_init(&tok, 64 * 1024);
  if (!(f = fopen(token_file, "r")))
    return tdm_error_errno(err, errno, "web identity: cannot read token "
                           "file %s", token_file);
  rc = TDM_OK;
  while (rc == TDM_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (tdm_buf_append(&tok, chunk, n, NULL) != TDM_OK)
      rc = tdm_error_set(err, "EBADCREDS", "web identity: token file %s "
                         "is larger than 64 KiB", token_file);
  fclose(f);
  OPENSSL_cleanse(chunk, sizeof chunk);
  /* sent as read, trailing newline included, as botocore does */
  if (rc == TDM_OK && tok.len == 0)
    rc = tdm_error_set(err, "EBADCREDS", "web identity: token file %s is "
                       "empty", token_file);
  session_name(role, name, sizeof name);
  tdm_buf_init(&body, 128 * 1024);
  if (rc == TDM_OK)
    rc = tdm_buf_printf(&body, err, "Action=AssumeRoleWithWebIdentity"
                        "&Version=2011-06-15");
  if (rc == TDM_OK) rc = form_add(&body, "RoleArn", role->role_arn, err);
  if (rc == TDM_OK) rc = form_add(&body, "RoleSessionName", name, err);
  if (rc == TDM_OK)
    rc = form_add(&body, "WebIdentityToken", tok.data, err);
  if (rc == TDM_OK)
    rc = sts_call(p, "AssumeRoleWithWebIdentity", role->role_arn, &body,
                  NULL, out, err);
  if (tok.data) OPENSSL_cleanse(tok.data, tok.cap);
  if (body.data) OPENSSL_cleanse(body.data, body.cap);
  tdm_buf_free(&tok);
  tdm_buf_free(&body);
  if (rc == TDM_OK) {
    snprintf(out->method, sizeof out->method,
             "assume-role-with-web-identity");
    snprintf(out->source, sizeof out->source, "web identity: role %.120s",
             role->role_arn);
  }
  return rc;
}
