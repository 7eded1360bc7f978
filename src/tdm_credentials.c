/*
 * tdm_credentials.c -- the AWS credential chain in botocore's order (see
 * include/tdm/sigv4.h and docs/credentials.md), the refreshing provider
 * the S3 client signs with, and the region. The providers themselves are
 * in src/tdm_cred_*.c; this file decides which one applies.
 *
 * botocore's rule, kept here: the first source that is configured
 * decides. A profile with role_arn whose STS call fails is an error, not
 * a reason to try the instance metadata.
 *
 * Secrets: no message built here quotes a value read from the files or
 * the environment, only variable names, file names, line numbers,
 * profile names and key names.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "tdm_cred_int.h"

#define CHAIN_MAX 8            /* source_profile hops */

/* The profile asked for: `profile`, else $AWS_PROFILE, else "default". */
static const char *profile_name(const char *profile) {
  const char *env = getenv("AWS_PROFILE");
  if (profile && *profile) return profile;
  if (env && *env) return env;
  return "default";
}

/* 1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN). */
static int from_env(tdm_credentials *out, tdm_error *err) {
  const char *ak = getenv("AWS_ACCESS_KEY_ID");
  const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
  const char *tok = getenv("AWS_SESSION_TOKEN");
  if (!(ak && *ak) && !(sk && *sk)) return 0;
  if (!(ak && *ak) || !(sk && *sk))
    return tdm_error_set(err, "EBADCREDS", "credentials: %s is set in "
                         "the environment but %s is not",
                         ak && *ak ? "AWS_ACCESS_KEY_ID" :
                                     "AWS_SECRET_ACCESS_KEY",
                         ak && *ak ? "AWS_SECRET_ACCESS_KEY" :
                                     "AWS_ACCESS_KEY_ID");
  if (tdm_credi_copy(out->access_key, sizeof out->access_key, ak,
                     "AWS_ACCESS_KEY_ID", err) != TDM_OK ||
      tdm_credi_copy(out->secret_key, sizeof out->secret_key, sk,
                     "AWS_SECRET_ACCESS_KEY", err) != TDM_OK ||
      tdm_credi_copy(out->session_token, sizeof out->session_token,
                     tok && *tok ? tok : getenv("AWS_SECURITY_TOKEN"),
                     "AWS_SESSION_TOKEN", err) != TDM_OK)
    return TDM_ERR;
  snprintf(out->source, sizeof out->source, "environment");
  snprintf(out->method, sizeof out->method, "env");
  return 1;
}

/* Static keys of section s: 1 taken, 0 none, TDM_ERR partial. */
static int static_keys(const tdm_credi_sec *s, const char *profile,
                       const char *method, tdm_credentials *out,
                       tdm_error *err) {
  const char *ak = tdm_credi_get(s, "aws_access_key_id");
  const char *sk = tdm_credi_get(s, "aws_secret_access_key");
  const char *tok = tdm_credi_get(s, "aws_session_token");
  char what[TDM_CRED_PATH_MAX + 160];
  if (!s->found || (!ak && !sk)) return 0;
  if (!ak || !*ak || !sk || !*sk)
    return tdm_error_set(err, "EBADCREDS", "credentials: profile '%s' in "
                         "%s has %s but no %s", profile, s->path,
                         ak && *ak ? "aws_access_key_id" :
                                     "aws_secret_access_key",
                         ak && *ak ? "aws_secret_access_key" :
                                     "aws_access_key_id");
  if (!tok) tok = tdm_credi_get(s, "aws_security_token");
  snprintf(what, sizeof what, "profile '%s' in %s", profile, s->path);
  if (tdm_credi_fill(out, ak, sk, tok, method, what, err) != TDM_OK)
    return TDM_ERR;
  out->expiration = 0;
  snprintf(out->source, sizeof out->source, "%.159s", what);
  return 1;
}

/* Web identity from the environment (unless disable_env) or profile p:
 * each setting from AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN /
 * AWS_ROLE_SESSION_NAME first, else the profile's
 * web_identity_token_file / role_arn / role_session_name (botocore). */
static int web_identity(const tdm_credi_profile *p,
                        const tdm_credi_profile *top, int disable_env,
                        tdm_credentials *out, tdm_error *err) {
  static const char *const keys[3][2] = {
    { "AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file" },
    { "AWS_ROLE_ARN", "role_arn" },
    { "AWS_ROLE_SESSION_NAME", "role_session_name" } };
  const char *v[3];
  tdm_credi_role role;
  int i;
  for (i = 0; i < 3; i++) {
    const char *e = disable_env ? NULL : getenv(keys[i][0]);
    v[i] = e ? e : tdm_credi_get(&p->merged, keys[i][1]);
  }
  if (!v[0] || !*v[0]) return 0;
  if (!v[1] || !*v[1])
    return tdm_error_set(err, "EBADCREDS", "web identity: a token file is "
                         "configured (AWS_WEB_IDENTITY_TOKEN_FILE or "
                         "web_identity_token_file of profile '%s') but no "
                         "role (AWS_ROLE_ARN or role_arn)", p->name);
  memset(&role, 0, sizeof role);
  role.role_arn = v[1];
  role.session_name = v[2];
  return tdm_credi_sts_web_identity(top, &role, v[0], out, err) == TDM_OK
         ? 1 : TDM_ERR;
}

/* botocore's profile providers, in order: web identity, SSO, the
 * credentials file's keys, credential_process, the config file's keys. */
static int profile_chain(const tdm_credi_profile *p,
                         const tdm_credi_profile *top, int disable_env,
                         tdm_credentials *out, tdm_error *err) {
  int rc = web_identity(p, top, disable_env, out, err);
  if (rc == 0) rc = tdm_credi_sso(p, out, err);
  if (rc == 0) rc = static_keys(&p->cred, p->name,
                                "shared-credentials-file", out, err);
  if (rc == 0) rc = tdm_credi_process(p, out, err);
  if (rc == 0) rc = static_keys(&p->conf, p->name, "config-file", out, err);
  return rc;
}

/* Does profile p assume a role through AssumeRole (not web identity)? */
static int is_role_profile(const tdm_credi_profile *p) {
  return tdm_credi_get(&p->merged, "role_arn") != NULL &&
         tdm_credi_get(&p->merged, "web_identity_token_file") == NULL;
}

static int assume_role(const tdm_credi_profile *p,
                       const tdm_credi_profile *top, int depth,
                       tdm_credentials *out, tdm_error *err);

/* The credentials a role profile p signs its AssumeRole with. */
static int role_source(const tdm_credi_profile *p,
                       const tdm_credi_profile *top, int depth,
                       tdm_credentials *src, tdm_error *err) {
  const char *sp = tdm_credi_get(&p->merged, "source_profile");
  const char *cs = tdm_credi_get(&p->merged, "credential_source");
  tdm_credi_profile *q;
  int rc;
  if (sp && cs)
    return tdm_error_set(err, "EBADCREDS", "profile '%s' has both "
                         "source_profile and credential_source", p->name);
  if (cs) {
    if (strcmp(cs, "Environment") == 0) rc = from_env(src, err);
    else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
      rc = tdm_credi_imds(src, err);
    else if (strcmp(cs, "EcsContainer") == 0)
      rc = tdm_credi_container(src, err);
    else
      return tdm_error_set(err, "EBADCREDS", "profile '%s': "
                           "credential_source %.40s is not one of "
                           "Environment, Ec2InstanceMetadata, EcsContainer",
                           p->name, cs);
    if (rc == 0)
      return tdm_error_set(err, "ENOCREDS", "profile '%s': "
                           "credential_source %s gave no credentials",
                           p->name, cs);
    return rc == 1 ? TDM_OK : TDM_ERR;
  }
  if (!sp)
    return tdm_error_set(err, "EBADCREDS", "profile '%s' has role_arn but "
                         "neither source_profile nor credential_source",
                         p->name);
  if (depth >= CHAIN_MAX)
    return tdm_error_set(err, "EBADCREDS", "profile '%s': source_profile "
                         "chain longer than %d (a loop?)", p->name,
                         CHAIN_MAX);
  if (!(q = malloc(sizeof *q)))
    return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  rc = tdm_credi_profile_load(q, sp, err);
  if (rc == TDM_OK && !q->merged.found)
    rc = tdm_error_set(err, "EBADCREDS", "profile '%s': source_profile "
                       "'%s' is not in %s or %s", p->name, sp, q->conf_path,
                       q->cred_path);
  if (rc == TDM_OK) {
    /* botocore: static keys (also of a profile naming itself) or no
     * role of its own -> that profile's providers; else its role. */
    int has_static = tdm_credi_get(&q->merged, "aws_access_key_id") &&
                     tdm_credi_get(&q->merged, "aws_secret_access_key");
    if (has_static || !is_role_profile(q)) {
      rc = profile_chain(q, top, 1, src, err);
      if (rc == 0)
        rc = tdm_error_set(err, "ENOCREDS", "profile '%s': source_profile "
                           "'%s' has no credentials", p->name, sp);
      rc = rc == 1 ? TDM_OK : TDM_ERR;
    } else if (strcmp(sp, p->name) == 0) {
      rc = tdm_error_set(err, "EBADCREDS", "profile '%s' is its own "
                         "source_profile but has no static keys", p->name);
    } else {
      rc = assume_role(q, top, depth + 1, src, err);
    }
  }
  tdm_credi_profile_free(q);
  free(q);
  return rc;
}

/* AssumeRole for role profile p with the credentials of its source. */
static int assume_role(const tdm_credi_profile *p,
                       const tdm_credi_profile *top, int depth,
                       tdm_credentials *out, tdm_error *err) {
  tdm_credentials *src;
  tdm_credi_role role;
  int rc;
  if (tdm_credi_get(&p->merged, "mfa_serial"))
    return tdm_error_set(err, "EBADCREDS", "profile '%s' needs an MFA code "
                         "(mfa_serial), which tdm cannot ask for; use aws "
                         "configure export-credentials --profile %s",
                         p->name, p->name);
  if (!(src = calloc(1, sizeof *src)))
    return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  rc = role_source(p, top, depth, src, err);
  if (rc == TDM_OK) {
    memset(&role, 0, sizeof role);
    role.role_arn = tdm_credi_get(&p->merged, "role_arn");
    role.session_name = tdm_credi_get(&p->merged, "role_session_name");
    role.external_id = tdm_credi_get(&p->merged, "external_id");
    role.duration = tdm_credi_get(&p->merged, "duration_seconds");
    rc = tdm_credi_sts_assume_role(top, &role, src, out, err);
  }
  OPENSSL_cleanse(src, sizeof *src);
  free(src);
  return rc;
}

/* The whole chain for profile `name`. */
static int resolve(tdm_credentials *out, const char *name, int named,
                   tdm_error *err) {
  tdm_credi_profile *p;
  char looked[2 * TDM_CRED_PATH_MAX + 600], imds_why[TDM_ERR_MSG_MAX];
  int rc = from_env(out, err);
  if (rc != 0) return rc == 1 ? TDM_OK : TDM_ERR;
  if (!(p = malloc(sizeof *p)))
    return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  rc = tdm_credi_profile_load(p, name, err);
  if (rc == TDM_OK && named && !p->merged.found)
    rc = tdm_error_set(err, "ENOCREDS", "no AWS credentials: "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set "
                       "and profile '%s' has none in %s or %s", name,
                       p->cred_path[0] ? p->cred_path : "(no HOME)",
                       p->conf_path[0] ? p->conf_path : "(no HOME)");
  if (rc == TDM_OK && is_role_profile(p))
    rc = assume_role(p, p, 0, out, err) == TDM_OK ? 1 : TDM_ERR;
  else if (rc == TDM_OK) rc = profile_chain(p, p, 0, out, err);
  if (rc == 0) rc = tdm_credi_container(out, err);
  imds_why[0] = '\0';
  if (rc == 0) {
    rc = tdm_credi_imds(out, err);
    if (rc == 0) snprintf(imds_why, sizeof imds_why, "%s", err->message);
  }
  if (rc == 0) {
    snprintf(looked, sizeof looked, "profile '%s' has none in %s%s or %s%s",
             name, p->cred_path[0] ? p->cred_path : "(no HOME)",
             p->cred_exists ? "" : " (missing)",
             p->conf_path[0] ? p->conf_path : "(no HOME)",
             p->conf_exists ? "" : " (missing)");
    rc = tdm_error_set(err, "ENOCREDS", "no AWS credentials: "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not "
                       "set, AWS_WEB_IDENTITY_TOKEN_FILE is not set, %s, "
                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI "
                       "are not set, %.300s", looked, imds_why);
  }
  tdm_credi_profile_free(p);
  free(p);
  return rc == 1 || rc == TDM_OK ? TDM_OK : TDM_ERR;
}

int tdm_credentials_resolve(tdm_credentials *out, const char *profile,
                            tdm_error *err) {
  const char *name = profile_name(profile);
  int named = strcmp(name, "default") != 0;
  memset(out, 0, sizeof *out);
  if (resolve(out, name, named, err) != TDM_OK) {
    OPENSSL_cleanse(out, sizeof *out);
    return TDM_ERR;
  }
  return TDM_OK;
}

/* --- the refreshing provider ------------------------------------------- */

struct tdm_cred_provider {
  pthread_mutex_t mu;
  int fixed;                   /* explicit credentials: never refreshed */
  int refs;                    /* shared ones: clients holding it */
  char profile[128];           /* "" = the default resolution */
  tdm_credentials cur;
  time_t refresh_at;           /* 0 = never */
  struct tdm_cred_provider *next;  /* in `shared` */
};

/* Resolved providers by profile, shared by every client of the process:
 * a run makes several S3 clients, and each resolution may be an STS call
 * or a helper process. */
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static tdm_cred_provider *shared;

/* When to resolve again: min(15 min, half the lifetime) before expiry
 * (botocore refreshes 15 min ahead; short-lived test credentials would
 * otherwise be refreshed on every request). */
static time_t refresh_time(const tdm_credentials *c, time_t now) {
  time_t life, margin;
  if (!c->expiration) return 0;
  life = c->expiration > now ? c->expiration - now : 0;
  margin = life / 2 < 900 ? life / 2 : 900;
  return c->expiration - margin;
}

tdm_cred_provider *tdm_cred_provider_new(const char *profile,
                                         const tdm_credentials *fixed,
                                         tdm_error *err) {
  tdm_cred_provider *p;
  if (!profile) profile = "";
  if (!fixed) {
    pthread_mutex_lock(&shared_mu);
    for (p = shared; p; p = p->next)
      if (strcmp(p->profile, profile) == 0) {
        p->refs++;
        break;
      }
    pthread_mutex_unlock(&shared_mu);
    if (p) return p;
  }
  if (!(p = calloc(1, sizeof *p))) {
    tdm_error_set(err, "ENOMEM", "credentials: out of memory");
    return NULL;
  }
  if (fixed) {
    p->cur = *fixed;
    p->fixed = 1;
  } else {
    snprintf(p->profile, sizeof p->profile, "%s", profile);
    if (tdm_credentials_resolve(&p->cur, p->profile[0] ? p->profile : NULL,
                                err) != TDM_OK) {
      free(p);
      return NULL;
    }
    p->refresh_at = refresh_time(&p->cur, time(NULL));
  }
  pthread_mutex_init(&p->mu, NULL);
  p->refs = 1;
  if (!fixed) {
    pthread_mutex_lock(&shared_mu);
    p->next = shared;
    shared = p;
    pthread_mutex_unlock(&shared_mu);
  }
  return p;
}

int tdm_cred_provider_get(tdm_cred_provider *p, tdm_credentials *out,
                          tdm_error *err) {
  int rc = TDM_OK;
  time_t now = time(NULL);
  pthread_mutex_lock(&p->mu);
  if (!p->fixed && p->refresh_at && now >= p->refresh_at) {
    tdm_credentials *fresh = malloc(sizeof *fresh);
    tdm_error e2;
    if (fresh && tdm_credentials_resolve(fresh, p->profile[0] ? p->profile
                                         : NULL, &e2) == TDM_OK) {
      p->cur = *fresh;
      p->refresh_at = refresh_time(&p->cur, now);
    } else if (now >= p->cur.expiration) {
      /* the old ones are no use any more: that failure is the answer */
      if (fresh) *err = e2;
      else tdm_error_set(err, "ENOMEM", "credentials: out of memory");
      rc = TDM_ERR;
    } else {
      /* still valid: keep them, try again in a few seconds */
      p->refresh_at = now + 5 < p->cur.expiration ? now + 5
                                                  : p->cur.expiration;
    }
    if (fresh) OPENSSL_cleanse(fresh, sizeof *fresh);
    free(fresh);
  }
  if (rc == TDM_OK) *out = p->cur;
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void tdm_cred_provider_free(tdm_cred_provider *p) {
  if (!p) return;
  if (!p->fixed) {
    /* Shared ones stay for the next client of the process (`tdm-lua
     * serve` makes clients as requests come): no new STS call or helper
     * run for each. */
    pthread_mutex_lock(&shared_mu);
    p->refs--;
    pthread_mutex_unlock(&shared_mu);
    return;
  }
  pthread_mutex_destroy(&p->mu);
  OPENSSL_cleanse(&p->cur, sizeof p->cur);
  free(p);
}

/* --- region --------------------------------------------------------------- */

static int put_region(char *out, size_t outsz, const char *val,
                      char *source, size_t srcsz, const char *src,
                      tdm_error *err) {
  size_t n = strlen(val);
  if (n >= outsz)
    return tdm_error_set(err, "ECONFIG", "region from %s is too long", src);
  memcpy(out, val, n + 1);
  if (source && srcsz) snprintf(source, srcsz, "%s", src);
  return TDM_OK;
}

int tdm_region_resolve(char *out, size_t outsz, const char *profile,
                       const char *fallback, char *source, size_t srcsz,
                       tdm_error *err) {
  static const char *const envs[] = { "AWS_REGION", "AWS_DEFAULT_REGION",
                                      NULL };
  char conf_path[TDM_CRED_PATH_MAX], src[TDM_CRED_PATH_MAX + 192];
  const char *name = profile_name(profile), *v;
  tdm_credi_sec s;
  int i, rc;

  if (!out || outsz == 0)
    return tdm_error_set(err, "EINVAL", "region: no output buffer");
  for (i = 0; envs[i]; i++) {
    v = getenv(envs[i]);
    if (v && *v) {
      snprintf(src, sizeof src, "env %s", envs[i]);
      return put_region(out, outsz, v, source, srcsz, src, err);
    }
  }
  tdm_credi_file_path("AWS_CONFIG_FILE", ".aws/config", conf_path,
                      sizeof conf_path);
  if (conf_path[0]) {
    rc = tdm_credi_read(conf_path, TDM_CREDI_PROFILE, name, &s, NULL, err);
    if (rc == TDM_OK && (v = tdm_credi_get(&s, "region")) && *v) {
      snprintf(src, sizeof src, "profile '%s' in %s", name, conf_path);
      rc = put_region(out, outsz, v, source, srcsz, src, err);
      tdm_credi_free(&s);
      return rc;
    }
    tdm_credi_free(&s);
    if (rc != TDM_OK) return TDM_ERR;
  }
  return put_region(out, outsz, fallback ? fallback : "", source, srcsz,
                    "default", err);
}
