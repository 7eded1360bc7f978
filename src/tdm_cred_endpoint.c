/*
 * tdm_cred_endpoint.c -- a service's endpoint URL as the AWS CLI reads
 * it: AWS_ENDPOINT_URL_<SERVICE>, the profile's [services NAME] section
 * ("s3 =\n  endpoint_url = ..."), AWS_ENDPOINT_URL, the profile's
 * endpoint_url. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores all of
 * them. Used for S3 (tdm_config.c), STS and SSO. And S3's host label
 * on AWS: s3, s3-fips, s3.dualstack (AWS_USE_FIPS_ENDPOINT,
 * AWS_USE_DUALSTACK_ENDPOINT or the profile's use_*_endpoint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tdm_cred_int.h"

static int put(char *out, size_t outsz, const char *val, char *src,
               size_t srcsz, const char *from, tdm_error *err) {
  if (strlen(val) >= outsz)
    return tdm_error_set(err, "ECONFIG", "endpoint from %s is too long",
                         from);
  snprintf(out, outsz, "%s", val);
  if (src && srcsz) snprintf(src, srcsz, "%s", from);
  return TDM_OK;
}

int tdm_credi_endpoint(const tdm_credi_profile *p, const char *service,
                       char *out, size_t outsz, char *src, size_t srcsz,
                       tdm_error *err) {
  char env[64], from[TDM_CRED_PATH_MAX + 160], key[80];
  const char *v, *ign = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  size_t i;

  out[0] = '\0';
  if (src && srcsz) src[0] = '\0';
  if (ign && strcasecmp(ign, "true") == 0) return TDM_OK;
  snprintf(env, sizeof env, "AWS_ENDPOINT_URL_%s", service);
  for (i = 17; env[i]; i++)
    if (env[i] >= 'a' && env[i] <= 'z') env[i] = (char)(env[i] - 32);
  if ((v = getenv(env)) && *v) {
    snprintf(from, sizeof from, "env %s", env);
    return put(out, outsz, v, src, srcsz, from, err);
  }
  if ((v = tdm_credi_get(&p->conf, "services")) && *v && p->conf_path[0]) {
    tdm_credi_sec s;
    int rc = tdm_credi_read(p->conf_path, TDM_CREDI_SERVICES, v, &s, NULL,
                            err);
    const char *ep;
    snprintf(key, sizeof key, "%s.endpoint_url", service);
    ep = rc == TDM_OK ? tdm_credi_get(&s, key) : NULL;
    if (ep && *ep) {
      snprintf(from, sizeof from, "services '%s' in %s", v, p->conf_path);
      rc = put(out, outsz, ep, src, srcsz, from, err);
      tdm_credi_free(&s);
      return rc;
    }
    tdm_credi_free(&s);
    if (rc != TDM_OK) return TDM_ERR;
  }
  if ((v = getenv("AWS_ENDPOINT_URL")) && *v)
    return put(out, outsz, v, src, srcsz, "env AWS_ENDPOINT_URL", err);
  if ((v = tdm_credi_get(&p->conf, "endpoint_url")) && *v) {
    snprintf(from, sizeof from, "profile '%s' in %s", p->name,
             p->conf_path);
    return put(out, outsz, v, src, srcsz, from, err);
  }
  return TDM_OK;
}

int tdm_endpoint_resolve(const char *service, const char *profile,
                         char *out, size_t outsz, char *src, size_t srcsz,
                         tdm_error *err) {
  tdm_credi_profile *p = malloc(sizeof *p);
  const char *env = getenv("AWS_PROFILE");
  int rc;
  if (!p) return tdm_error_set(err, "ENOMEM", "endpoint: out of memory");
  if (!profile || !*profile) profile = env && *env ? env : "default";
  rc = tdm_credi_profile_load(p, profile, err);
  if (rc == TDM_OK)
    rc = tdm_credi_endpoint(p, service, out, outsz, src, srcsz, err);
  tdm_credi_profile_free(p);
  free(p);
  return rc;
}

/* A true/false setting: the environment variable, else the profile's
 * key; -1 when neither says. */
static int flag(const tdm_credi_profile *p, const char *env,
                const char *key) {
  const char *v = getenv(env);
  if (!v || !*v) v = tdm_credi_get(&p->conf, key);
  if (!v || !*v) return -1;
  return strcasecmp(v, "true") == 0;
}

int tdm_endpoint_s3_label(const char *profile, char *out, size_t outsz,
                          tdm_error *err) {
  tdm_credi_profile *p = malloc(sizeof *p);
  const char *env = getenv("AWS_PROFILE");
  int rc, fips, dual;
  if (!p) return tdm_error_set(err, "ENOMEM", "endpoint: out of memory");
  if (!profile || !*profile) profile = env && *env ? env : "default";
  rc = tdm_credi_profile_load(p, profile, err);
  if (rc == TDM_OK) {
    fips = flag(p, "AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint") == 1;
    dual = flag(p, "AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint")
           == 1;
    snprintf(out, outsz, "%s%s", fips ? "s3-fips" : "s3",
             dual ? ".dualstack" : "");
  }
  tdm_credi_profile_free(p);
  free(p);
  return rc;
}
