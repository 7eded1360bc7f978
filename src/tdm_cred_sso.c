/*
 * tdm_cred_sso.c -- SSO profiles (IAM Identity Center) the way the AWS
 * CLI uses them after `aws sso login`: the access token from the CLI's
 * cache ~/.aws/sso/cache/SHA1.json (SHA-1 hex of the sso_session name,
 * or of sso_start_url for a legacy profile), then the portal's
 * GetRoleCredentials (GET /federation/credentials) for sso_account_id
 * and sso_role_name. tdm does not log in or refresh the token: when it
 * has expired, the message says to run `aws sso login`.
 * The portal is https://portal.sso.REGION.amazonaws.com, or the endpoint
 * settings for service "sso" (AWS_ENDPOINT_URL_SSO, tdm_cred_endpoint.c).
 *
 * Secrets: the access token and the answer are wiped after use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tdm_cred_int.h"

/* The SSO settings of profile p: from its [sso-session] section when it
 * names one, else from the profile (legacy). */
typedef struct sso_cfg {
  const char *session, *start_url, *region, *account, *role;
  tdm_credi_sec sec;           /* the [sso-session NAME] section */
} sso_cfg;

static int sso_settings(const tdm_credi_profile *p, sso_cfg *c,
                        tdm_error *err) {
  memset(c, 0, sizeof *c);
  c->session = tdm_credi_get(&p->merged, "sso_session");
  c->account = tdm_credi_get(&p->merged, "sso_account_id");
  c->role = tdm_credi_get(&p->merged, "sso_role_name");
  if (c->session && *c->session) {
    if (tdm_credi_read(p->conf_path, TDM_CREDI_SSO_SESSION, c->session,
                       &c->sec, NULL, err) != TDM_OK)
      return TDM_ERR;
    if (!c->sec.found)
      return tdm_error_set(err, "EBADCREDS", "SSO profile '%s': no "
                           "[sso-session %s] in %s", p->name, c->session,
                           p->conf_path);
    c->start_url = tdm_credi_get(&c->sec, "sso_start_url");
    c->region = tdm_credi_get(&c->sec, "sso_region");
  } else {
    c->session = NULL;
    c->start_url = tdm_credi_get(&p->merged, "sso_start_url");
    c->region = tdm_credi_get(&p->merged, "sso_region");
  }
  {
    const char *need[4] = { "sso_start_url", "sso_region", "sso_account_id",
                            "sso_role_name" };
    const char *have[4] = { c->start_url, c->region, c->account, c->role };
    int i;
    for (i = 0; i < 4; i++)
      if (!have[i] || !*have[i])
        return tdm_error_set(err, "EBADCREDS", "SSO profile '%s' in %s has "
                             "no %s", p->name, p->conf_path, need[i]);
  }
  return TDM_OK;
}

/* The cached token's file: ~/.aws/sso/cache/<sha1 hex of key>.json. */
static int cache_path(const char *key, char *out, size_t outsz,
                      tdm_error *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  const char *home = getenv("HOME");
  if (!home || !*home)
    return tdm_error_set(err, "ENOCREDS", "SSO: HOME is not set, so the "
                         "AWS CLI's token cache cannot be found");
  if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL) != 1)
    return tdm_error_set(err, "EIO", "SSO: SHA-1 failed");
  tdm_hex(md, mdlen, hex);
  snprintf(out, outsz, "%s/.aws/sso/cache/%s.json", home, hex);
  return TDM_OK;
}

/* Read the access token from the cache into tok; errors say to log in. */
static int read_token(const tdm_credi_profile *p, const sso_cfg *c,
                      char *tok, size_t toksz, tdm_error *err) {
  char path[TDM_CRED_PATH_MAX];
  json_error_t je;
  json_t *o, *t, *e;
  time_t exp;
  int rc = TDM_ERR;
  if (cache_path(c->session ? c->session : c->start_url, path, sizeof path,
                 err) != TDM_OK)
    return TDM_ERR;
  o = json_load_file(path, 0, &je);
  if (!o)
    return tdm_error_set(err, "ENOCREDS", "SSO profile '%s': no token in "
                         "the AWS CLI's cache (%s); run aws sso login "
                         "--profile %s", p->name, path, p->name);
  t = json_object_get(o, "accessToken");
  e = json_object_get(o, "expiresAt");
  exp = json_is_string(e) ? tdm_credi_parse_time(json_string_value(e)) : -1;
  if (!json_is_string(t) || exp <= 0)
    tdm_error_set(err, "EBADCREDS", "SSO profile '%s': %s has no "
                  "accessToken/expiresAt", p->name, path);
  else if (exp <= time(NULL))
    tdm_error_set(err, "ENOCREDS", "SSO profile '%s': the token in %s "
                  "has expired; run aws sso login --profile %s", p->name,
                  path, p->name);
  else
    rc = tdm_credi_copy(tok, toksz, json_string_value(t), "the SSO token",
                        err);
  if (json_is_string(t))
    OPENSSL_cleanse((char *)json_string_value(t), json_string_length(t));
  json_decref(o);
  return rc;
}

int tdm_credi_sso(const tdm_credi_profile *p, tdm_credentials *out,
                  tdm_error *err) {
  sso_cfg c;
  char tok[8192], ep[1024];
  tdm_buf q, resp;
  tdm_kv hdr = { "x-amz-sso_bearer_token", tok };
  tdm_credi_http r;
  json_t *o = NULL;
  json_error_t je;
  long status;
  int rc = TDM_ERR;

  if (!tdm_credi_get(&p->merged, "sso_session") &&
      !tdm_credi_get(&p->merged, "sso_start_url"))
    return 0;
  tok[0] = '\0';
  tdm_buf_init(&q, 4096);
  if (sso_settings(p, &c, err) != TDM_OK ||
      read_token(p, &c, tok, sizeof tok, err) != TDM_OK ||
      tdm_credi_endpoint(p, "sso", ep, sizeof ep, NULL, 0, err) != TDM_OK)
    goto done;
  if (!ep[0])
    snprintf(ep, sizeof ep, "https://portal.sso.%s.amazonaws.com",
             c.region);
  if (tdm_buf_printf(&q, err, "%s/federation/credentials?role_name=", ep)
        != TDM_OK ||
      tdm_uri_encode(c.role, strlen(c.role), 0, &q, err) != TDM_OK ||
      tdm_buf_appends(&q, "&account_id=", err) != TDM_OK ||
      tdm_uri_encode(c.account, strlen(c.account), 0, &q, err) != TDM_OK)
    goto done;
  memset(&r, 0, sizeof r);
  r.method = "GET";
  r.url = q.data;
  r.headers = &hdr;
  r.nheaders = 1;
  r.timeout_ms = 60000;
  r.what = "SSO GetRoleCredentials";
  if (tdm_credi_http_do(&r, &status, &resp, err) != TDM_OK) goto done;
  if (status != 200) {
    tdm_error_set(err, status == 401 || status == 403 ? "ENOCREDS" : "ESSO",
                  "SSO profile '%s': GetRoleCredentials for role %s in "
                  "account %s: HTTP %ld%s", p->name, c.role, c.account,
                  status, status == 401 || status == 403 ?
                  "; run aws sso login" : "");
  } else if (!(o = json_loadb(resp.data, resp.len, 0, &je))) {
    tdm_error_set(err, "EBADCREDS", "SSO GetRoleCredentials: the answer "
                  "is not JSON");
  } else if (tdm_credi_json_fill(json_object_get(o, "roleCredentials"),
                                 "accessKeyId", "secretAccessKey",
                                 "sessionToken", "expiration", "sso",
                                 "SSO GetRoleCredentials", out, err)
             == TDM_OK) {
    snprintf(out->source, sizeof out->source, "profile '%.40s': SSO role "
             "%.40s in account %.20s", p->name, c.role, c.account);
    rc = 1;
  }
  json_decref(o);
  if (resp.data) OPENSSL_cleanse(resp.data, resp.cap);
  tdm_buf_free(&resp);
done:
  OPENSSL_cleanse(tok, sizeof tok);
  tdm_credi_free(&c.sec);
  tdm_buf_free(&q);
  return rc;
}
