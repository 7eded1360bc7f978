/*
 * tdm_cred_imds.c -- the two metadata services a machine gives its
 * credentials through: the container endpoint (ECS, Fargate, EKS Pod
 * Identity) and EC2 instance metadata (IMDSv2: a session token from PUT
 * /latest/api/token, then the role name, then its credentials), with
 * botocore's variables, timeouts and attempts.
 *
 * Secrets: the IMDS session token, the container authorization token and
 * the answers are wiped after use and never quoted in messages.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "tdm_cred_int.h"

static void wipe(tdm_buf *b) {
  if (b->data) OPENSSL_cleanse(b->data, b->cap);
  tdm_buf_free(b);
}

/* The host part of an http(s) URL into host (brackets of an IPv6 literal
 * removed); "" when the URL is not http(s). */
static void url_host(const char *url, char *host, size_t hostsz, int *https) {
  const char *p = url, *end;
  size_t n;
  host[0] = '\0';
  *https = strncmp(p, "https://", 8) == 0;
  if (*https) p += 8;
  else if (strncmp(p, "http://", 7) == 0) p += 7;
  else return;
  if ((end = strchr(p, '@')) != NULL && end < p + strcspn(p, "/")) p = end + 1;
  if (*p == '[') {
    p++;
    end = strchr(p, ']');
  } else {
    end = p + strcspn(p, ":/?#");
  }
  if (!end) return;
  n = (size_t)(end - p);
  if (n >= hostsz) return;
  memcpy(host, p, n);
  host[n] = '\0';
}

/* May a container credentials FULL_URI name this host over plain http?
 * Loopback, and the ECS/EKS link-local addresses (botocore's list). */
static int allowed_http_host(const char *host) {
  struct in_addr a4;
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
      strcmp(host, "169.254.170.2") == 0 ||
      strcmp(host, "169.254.170.23") == 0 ||
      strcasecmp(host, "fd00:ec2::23") == 0)
    return 1;
  return inet_pton(AF_INET, host, &a4) == 1 &&
         (ntohl(a4.s_addr) >> 24) == 127;
}

/* Read the container authorization token: the file named by
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else the variable
 * AWS_CONTAINER_AUTHORIZATION_TOKEN; "" when neither. */
static int container_token(char *tok, size_t toksz, tdm_error *err) {
  const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const char *env = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  tok[0] = '\0';
  if (file && *file) {
    FILE *f = fopen(file, "r");
    size_t n;
    if (!f)
      return tdm_error_errno(err, errno, "container credentials: cannot "
                             "read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE "
                             "%s", file);
    n = fread(tok, 1, toksz - 1, f);
    fclose(f);
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
      tok[--n] = '\0';
    if (strchr(tok, '\n') || strchr(tok, '\r'))
      return tdm_error_set(err, "EBADCREDS", "container credentials: the "
                           "token in %s has a line break", file);
    return TDM_OK;
  }
  if (env && *env) {
    if (strchr(env, '\n') || strchr(env, '\r'))
      return tdm_error_set(err, "EBADCREDS", "container credentials: "
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN has a line "
                           "break");
    return tdm_credi_copy(tok, toksz, env,
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN", err);
  }
  return TDM_OK;
}

int tdm_credi_container(tdm_credentials *out, tdm_error *err) {
  const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  char url[2048], host[256], tok[4096];
  tdm_kv hdrs[2] = { { "Accept", "application/json" },
                     { "Authorization", tok } };
  tdm_credi_http r;
  tdm_buf resp;
  long status = 0;
  int https, attempt, rc = TDM_ERR;

  if (rel && *rel) {
    snprintf(url, sizeof url, "http://169.254.170.2%s", rel);
  } else if (full && *full) {
    snprintf(url, sizeof url, "%s", full);
    url_host(url, host, sizeof host, &https);
    if (!host[0] || (!https && !allowed_http_host(host)))
      return tdm_error_set(err, "EBADCREDS", "container credentials: "
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI must be "
                           "https, or http to a loopback address or "
                           "169.254.170.2/.23");
  } else {
    return 0;
  }
  if (container_token(tok, sizeof tok, err) != TDM_OK) {
    OPENSSL_cleanse(tok, sizeof tok);
    return TDM_ERR;
  }
  memset(&r, 0, sizeof r);
  r.method = "GET";
  r.url = url;
  r.headers = hdrs;
  r.nheaders = tok[0] ? 2 : 1;
  r.timeout_ms = 2000;
  r.what = "container credentials";
  /* botocore: 3 attempts, 2 s each */
  for (attempt = 0; attempt < 3; attempt++) {
    rc = tdm_credi_http_do(&r, &status, &resp, err);
    if (rc == TDM_OK && status == 200) break;
    if (rc == TDM_OK) {
      wipe(&resp);
      rc = tdm_error_set(err, "EBADCREDS", "container credentials: %s "
                         "answered HTTP %ld", url, status);
      if (status < 500) break;
    }
  }
  OPENSSL_cleanse(tok, sizeof tok);
  if (rc != TDM_OK) return TDM_ERR;
  rc = tdm_credi_json_parse(resp.data, resp.len, "AccessKeyId",
                            "SecretAccessKey", "Token", "Expiration",
                            "container-role", "container credentials",
                            out, err);
  wipe(&resp);
  if (rc != TDM_OK) return TDM_ERR;
  snprintf(out->source, sizeof out->source, "container endpoint %s",
           rel && *rel ? "169.254.170.2" : "FULL_URI");
  return 1;
}

/* --- EC2 instance metadata --------------------------------------------- */

typedef struct imds {
  char base[1024];             /* ends with '/' */
  long timeout_ms;
  int attempts;
  char token[512];             /* "" = IMDSv1 */
} imds;

/* GET base+path (with the session token when there is one) into resp;
 * 1 on 200, 0 when the service is not there (transport failure, after
 * the attempts), TDM_ERR on another status. */
static int imds_get(imds *m, const char *method, const char *path,
                    const tdm_kv *extra, tdm_buf *resp, long *status,
                    tdm_error *err) {
  char url[2048];
  tdm_kv hdrs[2];
  tdm_credi_http r;
  size_t nh = 0;
  int attempt, rc = TDM_ERR;
  snprintf(url, sizeof url, "%s%s", m->base, path);
  if (extra) hdrs[nh++] = *extra;
  if (m->token[0]) {
    hdrs[nh].name = "x-aws-ec2-metadata-token";
    hdrs[nh++].value = m->token;
  }
  memset(&r, 0, sizeof r);
  r.method = method;
  r.url = url;
  r.headers = hdrs;
  r.nheaders = nh;
  r.timeout_ms = m->timeout_ms;
  r.what = "EC2 instance metadata";
  for (attempt = 0; attempt < m->attempts; attempt++) {
    rc = tdm_credi_http_do(&r, status, resp, err);
    if (rc == TDM_OK && *status < 500) break;
    if (rc == TDM_OK && attempt + 1 < m->attempts) wipe(resp);
  }
  if (rc != TDM_OK) return 0;
  if (*status == 200) return 1;
  return TDM_ERR;
}

int tdm_credi_imds(tdm_credentials *out, tdm_error *err) {
  const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
  const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  const char *to = getenv("AWS_METADATA_SERVICE_TIMEOUT");
  const char *na = getenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
  tdm_kv ttl = { "x-aws-ec2-metadata-token-ttl-seconds", "21600" };
  imds *m;
  tdm_buf resp;
  char role[256], path[512];
  long status;
  int rc;

  if (dis && strcasecmp(dis, "true") == 0) {
    tdm_error_set(err, "ENOCREDS", "EC2 instance metadata (disabled by "
                  "AWS_EC2_METADATA_DISABLED)");
    return 0;
  }
  if (!(m = calloc(1, sizeof *m)))
    return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  if (ep && *ep)
    snprintf(m->base, sizeof m->base - 1, "%s", ep);
  else if (mode && strcasecmp(mode, "IPv6") == 0)
    snprintf(m->base, sizeof m->base, "http://[fd00:ec2::254]/");
  else
    snprintf(m->base, sizeof m->base, "http://169.254.169.254/");
  { size_t bl = strlen(m->base); /* the paths below are relative */
    if (bl && m->base[bl - 1] != '/' && bl + 1 < sizeof m->base) {
      m->base[bl] = '/';
      m->base[bl + 1] = '\0';
    } }
  /* botocore: 1 s, 1 attempt, so a machine off EC2 is not slowed */
  m->timeout_ms = to && atof(to) > 0 ? (long)(atof(to) * 1000) : 1000;
  m->attempts = na && atoi(na) > 0 ? atoi(na) : 1;

  rc = imds_get(m, "PUT", "latest/api/token", &ttl, &resp, &status, err);
  if (rc == 0) {
    char why[TDM_ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", err->message);
    tdm_error_set(err, "ENOCREDS", "EC2 instance metadata (%s)", why);
    goto out;
  }
  if (rc == 1) {
    if (resp.len == 0 || resp.len >= sizeof m->token) {
      wipe(&resp);
      rc = tdm_error_set(err, "EBADCREDS", "EC2 instance metadata: bad "
                         "session token from %slatest/api/token", m->base);
      goto out;
    }
    memcpy(m->token, resp.data, resp.len);
    m->token[resp.len] = '\0';
    wipe(&resp);
  } else if (status == 403 || status == 404 || status == 405) {
    wipe(&resp);          /* no IMDSv2 here: IMDSv1, as botocore does */
  } else {
    wipe(&resp);
    rc = tdm_error_set(err, "EBADCREDS", "EC2 instance metadata: %s"
                       "latest/api/token answered HTTP %ld", m->base,
                       status);
    goto out;
  }
  rc = imds_get(m, "GET", "latest/meta-data/iam/security-credentials/",
                NULL, &resp, &status, err);
  if (rc != 1) {
    if (rc != 0) wipe(&resp);
    /* botocore: no role (404) means no credentials from here */
    tdm_error_set(err, "ENOCREDS", "EC2 instance metadata (%s)",
                  rc == 0 ? "no answer" : "no IAM role attached");
    rc = 0;
    goto out;
  }
  snprintf(role, sizeof role, "%.*s", (int)strcspn(resp.data, "\r\n"),
           resp.data);
  wipe(&resp);
  if (!role[0] || strchr(role, '/') || strstr(role, "..")) {
    rc = tdm_error_set(err, "EBADCREDS", "EC2 instance metadata: bad role "
                       "name from %s", m->base);
    goto out;
  }
  snprintf(path, sizeof path, "latest/meta-data/iam/security-credentials/"
           "%s", role);
  rc = imds_get(m, "GET", path, NULL, &resp, &status, err);
  if (rc != 1) {
    if (rc != 0) wipe(&resp);
    rc = tdm_error_set(err, "EBADCREDS", "EC2 instance metadata: the "
                       "credentials of role %s: %s", role,
                       rc == 0 ? "no answer" : "HTTP error");
    goto out;
  }
  rc = tdm_credi_json_parse(resp.data, resp.len, "AccessKeyId",
                            "SecretAccessKey", "Token", "Expiration",
                            "iam-role", "EC2 instance metadata", out, err);
  wipe(&resp);
  if (rc == TDM_OK) {
    snprintf(out->source, sizeof out->source, "EC2 instance metadata "
             "(role %.100s)", role);
    rc = 1;
  }
out:
  OPENSSL_cleanse(m, sizeof *m);
  free(m);
  return rc;
}
