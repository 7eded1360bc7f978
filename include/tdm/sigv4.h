/*
 * tdm/sigv4.h -- AWS Signature Version 4 for S3, and the AWS credential
 * chain. Signing is pure computation on OpenSSL (HMAC-SHA256, SHA-256);
 * the chain reads the shared config files and may call STS, SSO, the
 * container endpoint or EC2 instance metadata (src/tdm_cred_*.c).
 *
 * Secrets: tdm_credentials holds them; nothing in libtdm ever formats
 * secret_key or session_token into an error message or log.
 */
#ifndef TDM_SIGV4_H
#define TDM_SIGV4_H

#include <stddef.h>
#include <time.h>
#include "error.h"
#include "buf.h"

typedef struct tdm_credentials {
  char access_key[128];
  char secret_key[128];
  char session_token[4096];   /* "" when none */
  char source[160];           /* where they came from, for `tdm-lua config`:
                                 "environment", "profile 'x' in FILE",
                                 "EC2 instance metadata (role r)" */
  char method[40];            /* botocore's name for the provider: "env",
                                 "shared-credentials-file", "assume-role",
                                 "iam-role", ... ("explicit" when given) */
  time_t expiration;          /* UTC seconds; 0 when they do not expire */
} tdm_credentials;

/* Resolve credentials in botocore's order (docs/credentials.md):
 *  1. environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
 *     (+ AWS_SESSION_TOKEN);
 *  2. the profile's role_arn with source_profile or credential_source
 *     (STS AssumeRole);
 *  3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *     (+ AWS_ROLE_SESSION_NAME), or the profile's web_identity_token_file
 *     (STS AssumeRoleWithWebIdentity);
 *  4. the profile's SSO settings (sso_session or sso_start_url) with the
 *     AWS CLI's token cache (~/.aws/sso/cache);
 *  5. static keys of the profile in the credentials file
 *     ($AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials);
 *  6. the profile's credential_process;
 *  7. static keys of the profile in the config file ($AWS_CONFIG_FILE,
 *     default ~/.aws/config, "[profile NAME]" or "[default]");
 *  8. the container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *     _FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]);
 *  9. EC2 instance metadata, IMDSv2 (AWS_EC2_METADATA_DISABLED,
 *     AWS_EC2_METADATA_SERVICE_ENDPOINT; 1 s timeout, 1 attempt).
 * The profile is `profile`, else $AWS_PROFILE, else "default"; the
 * environment wins even over an explicit `profile`. The first source that
 * is configured decides: if it fails, that is the error (as botocore). No
 * credentials anywhere is "ENOCREDS", one line saying where it looked. A
 * partial set, a value too long for its field or a malformed file is
 * "EBADCREDS" naming the variable or the file, line and key -- never a
 * value. */
int tdm_credentials_resolve(tdm_credentials *out, const char *profile,
                            tdm_error *err);

/* A source of credentials for a long run: resolves once when made, then
 * hands out copies, resolving again (the whole chain, same profile) when
 * temporary credentials come within min(15 min, half their lifetime) of
 * expiring. If that refresh fails while the old ones are still valid,
 * the old ones are used. Safe to use from several threads. Providers
 * for the same profile are shared within the process (one STS call or
 * helper run for every client) and kept for later clients. */
typedef struct tdm_cred_provider tdm_cred_provider;

/* `fixed` (may be NULL): use these credentials as they are, never
 * refreshed; else resolve for `profile` (NULL: as above). NULL with *err
 * set when the first resolution fails. */
tdm_cred_provider *tdm_cred_provider_new(const char *profile,
                                         const tdm_credentials *fixed,
                                         tdm_error *err);
/* Current credentials into *out (the caller wipes them after use). */
int tdm_cred_provider_get(tdm_cred_provider *p, tdm_credentials *out,
                          tdm_error *err);
void tdm_cred_provider_free(tdm_cred_provider *p);

/* Region the AWS way: AWS_REGION, AWS_DEFAULT_REGION, the profile's
 * `region` in the config file, else `fallback`. `source` (may be NULL)
 * receives where it came from. */
int tdm_region_resolve(char *out, size_t outsz, const char *profile,
                       const char *fallback, char *source, size_t srcsz,
                       tdm_error *err);

/* The endpoint URL of AWS service `service` ("s3", "sts") the way the AWS
 * CLI reads it: AWS_ENDPOINT_URL_<SERVICE>, the profile's [services]
 * section, AWS_ENDPOINT_URL, the profile's endpoint_url (profile as for
 * credentials); AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores them.
 * "" when none (the service's AWS endpoint). `src` (may be NULL)
 * receives where it came from. */
int tdm_endpoint_resolve(const char *service, const char *profile,
                         char *out, size_t outsz, char *src, size_t srcsz,
                         tdm_error *err);

/* The first label of S3's AWS host name: "s3", or "s3-fips" /
 * "s3.dualstack" / "s3-fips.dualstack" when AWS_USE_FIPS_ENDPOINT /
 * AWS_USE_DUALSTACK_ENDPOINT (else the profile's use_fips_endpoint /
 * use_dualstack_endpoint) is true. */
int tdm_endpoint_s3_label(const char *profile, char *out, size_t outsz,
                          tdm_error *err);

typedef struct tdm_kv {
  const char *name;
  const char *value;
} tdm_kv;

/* One request to sign. All strings are raw (not URI-encoded): the signer
 * encodes `path` (keeping '/') and every query name and value the way S3
 * expects (RFC 3986 unreserved characters kept, everything else %XX, upper
 * case hex). */
typedef struct tdm_sigv4_request {
  const char *method;         /* "GET", "PUT", ... */
  const char *host;           /* Host header: "bucket.s3.us-west-1.amazonaws.com"
                                 or "127.0.0.1:4568" (port kept) */
  const char *path;           /* "/key with spaces" or "/bucket/key" */
  const tdm_kv *query;        /* may be NULL; a value may be "" */
  size_t nquery;
  const tdm_kv *headers;      /* extra headers to sign (Range, Content-MD5,
                                 Content-Type, x-amz-meta-*, ...); any case;
                                 host, x-amz-date, x-amz-content-sha256 and
                                 x-amz-security-token are added by the
                                 signer and must not be given here */
  size_t nheaders;
  const char *payload_hash;   /* lower-case hex SHA-256 of the body, or
                                 "UNSIGNED-PAYLOAD" */
  const char *region;         /* "us-west-1" */
  const char *service;        /* "s3" */
  time_t when;                /* signing time (UTC seconds) */
} tdm_sigv4_request;

/* The result of signing: the headers the caller must send in addition to
 * its own (`headers` above, which were signed). */
typedef struct tdm_sigv4_signed {
  char authorization[1024];   /* value of the Authorization header */
  char amz_date[17];          /* value of x-amz-date: 20130524T000000Z */
  char content_sha256[65];    /* value of x-amz-content-sha256 */
  /* x-amz-security-token: send creds->session_token when it is not "". */
} tdm_sigv4_signed;

/* Sign `req` with `creds` into *out. Canonical form: method; the path
 * with every byte but unreserved and '/' %XX-encoded once ("" -> "/"); the
 * query encoded and sorted by name then value ("acl" -> "acl="); header
 * names lower-cased, values trimmed with inner runs of spaces/tabs
 * collapsed, sorted, a repeated name's values joined with ',' in the
 * given order. Refused (EINVAL, message naming the part, never a secret):
 * a header the signer adds, a control character in a header value or the
 * token, a payload hash that is not 64 lower-case hex digits or
 * UNSIGNED-PAYLOAD, an empty or malformed method/host/region/service.
 * Missing access key or secret: ENOCREDS. */
int tdm_sigv4_sign(const tdm_sigv4_request *req,
                   const tdm_credentials *creds, tdm_sigv4_signed *out,
                   tdm_error *err);

/* The canonical request and the string to sign that tdm_sigv4_sign uses,
 * appended to `canonical` / `to_sign` (either may be NULL); for tests
 * against AWS's examples and botocore. The canonical request contains the
 * session token (x-amz-security-token) when there is one: never log it. */
int tdm_sigv4_debug(const tdm_sigv4_request *req,
                    const tdm_credentials *creds, tdm_buf *canonical,
                    tdm_buf *to_sign, tdm_error *err);

/* The canonical request and string to sign that tdm_sigv4_presign uses
 * (query authentication), like tdm_sigv4_debug. */
int tdm_sigv4_presign_debug(const tdm_sigv4_request *req,
                            const tdm_credentials *creds, long expires,
                            tdm_buf *canonical, tdm_buf *to_sign,
                            tdm_error *err);

/* A presigned URL (query authentication, UNSIGNED-PAYLOAD) for `req`
 * (payload_hash and headers ignored except `host`), valid `expires`
 * seconds (1 .. 604800), appended to `url` as
 * "{scheme}://{host}{encoded path}?{query with X-Amz-*}". */
int tdm_sigv4_presign(const tdm_sigv4_request *req,
                      const tdm_credentials *creds, const char *scheme,
                      long expires, tdm_buf *url, tdm_error *err);

/* URI-encode `len` bytes of `in` the way SigV4 canonicalises them
 * (unreserved A-Z a-z 0-9 - _ . ~ kept; '/' kept when keep_slash), appended
 * to `out`. Used for paths, query strings and when building request URLs,
 * so that what is signed is exactly what is sent. */
int tdm_uri_encode(const char *in, size_t len, int keep_slash, tdm_buf *out,
                   tdm_error *err);

#endif
