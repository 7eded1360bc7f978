/*
 * tdm_cred_int.h -- internals of the credential chain, shared by
 * src/tdm_credentials.c (the chain and its order) and the providers in
 * src/tdm_cred_*.c. Not installed.
 *
 * Secrets: every function here that fills a tdm_credentials or reads a
 * token never puts a secret, a token or a response body into an error
 * message; messages name the provider, the URL or file, and the reason.
 */
#ifndef TDM_CRED_INT_H
#define TDM_CRED_INT_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "tdm.h"

#define TDM_CRED_PATH_MAX 1024

/* --- shared config / credentials files (tdm_cred_ini.c) --------------- */

/* One section's "key = value" pairs, keys lower-cased. A nested setting
 * ("s3 =" followed by indented "endpoint_url = ...") is stored as
 * "s3.endpoint_url". Values are wiped when freed. */
typedef struct tdm_credi_sec {
  int found;                  /* the section exists */
  size_t n, cap;
  char **keys, **vals;
  char path[TDM_CRED_PATH_MAX]; /* the file it came from */
} tdm_credi_sec;

/* Section kinds of the config file: "[profile NAME]" (and "[default]"),
 * "[sso-session NAME]", "[services NAME]"; the credentials file has plain
 * "[NAME]" sections (TDM_CREDI_PLAIN). */
typedef enum {
  TDM_CREDI_PLAIN, TDM_CREDI_PROFILE, TDM_CREDI_SSO_SESSION,
  TDM_CREDI_SERVICES
} tdm_credi_kind;

/* Read section (kind, name) of INI file `path` into *out (initialised
 * here; free with tdm_credi_free even on error). A missing file is not an
 * error: out->found = 0 and *exists = 0 (exists may be NULL). An
 * unreadable or malformed file is EBADCREDS/errno naming file and line,
 * never a value. Later duplicate keys win, as in botocore. */
int tdm_credi_read(const char *path, tdm_credi_kind kind, const char *name,
                   tdm_credi_sec *out, int *exists, tdm_error *err);
/* The value of `key`, or NULL when absent. */
const char *tdm_credi_get(const tdm_credi_sec *s, const char *key);
/* Add or replace key = value (a copy); TDM_ERR only on out of memory. */
int tdm_credi_put(tdm_credi_sec *s, const char *key, const char *val,
                  tdm_error *err);
void tdm_credi_free(tdm_credi_sec *s);

/* $ENV (a leading "~/" expanded) else $HOME/def, into out; "" when
 * neither can be formed. */
void tdm_credi_file_path(const char *env, const char *def, char *out,
                         size_t outsz);

/* A profile as botocore's full_config sees it: the config file's
 * [profile NAME] section overlaid with the credentials file's [NAME]. */
typedef struct tdm_credi_profile {
  char name[128];
  tdm_credi_sec conf, cred, merged;
  char conf_path[TDM_CRED_PATH_MAX], cred_path[TDM_CRED_PATH_MAX];
  int conf_exists, cred_exists;
} tdm_credi_profile;

int tdm_credi_profile_load(tdm_credi_profile *p, const char *name,
                           tdm_error *err);
void tdm_credi_profile_free(tdm_credi_profile *p);

/* --- small helpers (tdm_cred_ini.c) ----------------------------------- */

/* Copy `val` into a fixed credential field; too long is EBADCREDS naming
 * `what` (never the value). */
int tdm_credi_copy(char *dst, size_t dstsz, const char *val,
                   const char *what, tdm_error *err);
/* Fill out's key, secret, token (token may be NULL or "") and method;
 * errors name `what`. */
int tdm_credi_fill(tdm_credentials *out, const char *ak, const char *sk,
                   const char *token, const char *method, const char *what,
                   tdm_error *err);
/* An ISO 8601 UTC time ("2026-12-03T19:00:00Z", fractions, "+00:00" or
 * "UTC" suffix allowed) to epoch seconds; -1 when malformed. */
time_t tdm_credi_parse_time(const char *s);

/* Credentials from JSON object `o`: string members named ak/sk/tok (tok
 * may be NULL or absent) and exp (may be NULL or absent: no expiry; an
 * ISO 8601 string, or a number of milliseconds since the epoch).
 * EBADCREDS naming `what` and the member when one is missing or not a
 * string. */
int tdm_credi_json_fill(json_t *o, const char *ak, const char *sk,
                        const char *tok, const char *exp,
                        const char *method, const char *what,
                        tdm_credentials *out, tdm_error *err);
/* The same from a JSON text; EBADCREDS "`what`: not JSON" when it is
 * not an object. */
int tdm_credi_json_parse(const char *text, size_t len, const char *ak,
                         const char *sk, const char *tok, const char *exp,
                         const char *method, const char *what,
                         tdm_credentials *out, tdm_error *err);

/* --- HTTP for the credential services (tdm_cred_http.c) --------------- */

typedef struct tdm_credi_http {
  const char *method;         /* "GET", "PUT", "POST" */
  const char *url;
  const tdm_kv *headers;      /* sent as given */
  size_t nheaders;
  const char *body;           /* may be NULL */
  long timeout_ms;            /* whole request, connect included */
  const char *what;           /* "EC2 instance metadata", for messages */
} tdm_credi_http;

/* Run one blocking request; the HTTP status in *status and the body
 * (at most 1 MiB) in `resp`. A transport failure (refused, timeout) is
 * EHTTP naming `what`, the URL and curl's reason. HTTPS verifies the peer
 * (AWS_CA_BUNDLE when set); proxies come from the environment as libcurl
 * reads them (https_proxy, no_proxy). */
int tdm_credi_http_do(const tdm_credi_http *r, long *status, tdm_buf *resp,
                      tdm_error *err);

/* The endpoint URL for AWS service `service` ("sts", "sso", "s3") as the
 * AWS CLI reads it: AWS_ENDPOINT_URL_<SERVICE>, the profile's
 * [services] section, AWS_ENDPOINT_URL, the profile's endpoint_url; ""
 * when none. `src` receives where it came from. */
int tdm_credi_endpoint(const tdm_credi_profile *p, const char *service,
                       char *out, size_t outsz, char *src, size_t srcsz,
                       tdm_error *err);

/* --- providers ---------------------------------------------------------- */

/* Each returns 1 with *out filled, 0 when the provider is not configured
 * (nothing to try), TDM_ERR when it is configured but failed. */

/* Container endpoint and EC2 IMDSv2 (tdm_cred_imds.c). */
int tdm_credi_container(tdm_credentials *out, tdm_error *err);
int tdm_credi_imds(tdm_credentials *out, tdm_error *err);

/* STS (tdm_cred_sts.c): AssumeRole signed with `source`, and
 * AssumeRoleWithWebIdentity (unsigned). `p` is the profile whose region
 * and endpoint settings the STS client uses. */
typedef struct tdm_credi_role {
  const char *role_arn, *session_name, *external_id, *duration;
} tdm_credi_role;
int tdm_credi_sts_assume_role(const tdm_credi_profile *p,
                              const tdm_credi_role *role,
                              const tdm_credentials *source,
                              tdm_credentials *out, tdm_error *err);
int tdm_credi_sts_web_identity(const tdm_credi_profile *p,
                               const tdm_credi_role *role,
                               const char *token_file,
                               tdm_credentials *out, tdm_error *err);

/* credential_process of profile `p` (tdm_cred_process.c). */
int tdm_credi_process(const tdm_credi_profile *p, tdm_credentials *out,
                      tdm_error *err);

/* SSO profile `p` via the CLI's token cache (tdm_cred_sso.c). */
int tdm_credi_sso(const tdm_credi_profile *p, tdm_credentials *out,
                  tdm_error *err);

#endif
