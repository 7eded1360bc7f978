/*
 * tdm/config.h -- tdm's settings, resolved in one place.
 *
 * Precedence: explicit setting (tdm_config_set) > environment > config
 * file > default. The config file is INI-like ("key = value", '#'
 * comments, keys as in the table below); it is $TDM_CONFIG when set, else
 * ./tdm.conf when present. Every value remembers where it came from.
 */
#ifndef TDM_CONFIG_H
#define TDM_CONFIG_H

#include "error.h"

/* key            environment            default
 * data_root      TDM_DATA_ROOT          data
 * bucket         TDM_BUCKET             story-boards-assets
 * prefix         TDM_PREFIX             system_actors/training_data
 * region         AWS_REGION, AWS_DEFAULT_REGION   us-west-1
 * public_url_base TDM_PUBLIC_URL_BASE   https://{bucket}.s3.{region}.amazonaws.com
 * endpoint       AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then the AWS
 *                profile's services section / endpoint_url   (AWS)
 * profile        AWS_PROFILE            (default)
 * ca_bundle      AWS_CA_BUNDLE          (system)
 * jobs           TDM_JOBS               32
 * lock_timeout   TDM_LOCK_TIMEOUT       30 (seconds)
 * multipart_threshold TDM_MULTIPART_THRESHOLD 67108864 (bytes)
 * api_listen     TDM_API_LISTEN         127.0.0.1:8080
 * api_token      TDM_API_TOKEN          (none; secret)
 * api_max_upload TDM_API_MAX_UPLOAD     20971520 (bytes)
 * s3_addressing  TDM_S3_ADDRESSING      auto (path-style with an endpoint,
 *                                       else virtual-hosted) | path | virtual
 * api_allowed_origins TDM_API_ALLOWED_ORIGINS (none) origins besides the
 *                                       server's own that may send it
 *                                       POST/DELETE ("https://a.example
 *                                       https://b.example", comma or space
 *                                       separated)
 * sse            TDM_SSE                (none) server-side encryption asked
 *                                       for on uploads: AES256 | aws:kms |
 *                                       aws:kms:dsse
 * sse_kms_key_id TDM_SSE_KMS_KEY_ID     (the bucket's) KMS key for aws:kms
 * s3_checksum    TDM_S3_CHECKSUM        auto (crc32c on AWS, none with an
 *                                       endpoint) | crc32c | sha256 | off:
 *                                       an additional checksum sent with
 *                                       single-request uploads
 */
typedef enum {
  TDM_CFG_DATA_ROOT, TDM_CFG_BUCKET, TDM_CFG_PREFIX, TDM_CFG_REGION,
  TDM_CFG_PUBLIC_URL_BASE, TDM_CFG_ENDPOINT, TDM_CFG_PROFILE,
  TDM_CFG_CA_BUNDLE, TDM_CFG_JOBS, TDM_CFG_LOCK_TIMEOUT,
  TDM_CFG_MULTIPART_THRESHOLD, TDM_CFG_API_LISTEN, TDM_CFG_API_TOKEN,
  TDM_CFG_API_MAX_UPLOAD, TDM_CFG_S3_ADDRESSING,
  TDM_CFG_API_ALLOWED_ORIGINS, TDM_CFG_SSE, TDM_CFG_SSE_KMS_KEY_ID,
  TDM_CFG_S3_CHECKSUM,
  TDM_CFG_COUNT
} tdm_config_key;

#define TDM_CFG_VALUE_MAX 1024

typedef struct tdm_config {
  char value[TDM_CFG_COUNT][TDM_CFG_VALUE_MAX];  /* "" = unset */
  char source[TDM_CFG_COUNT][640];  /* "default", "env AWS_REGION",
                                       "file ./tdm.conf:3", "set" */
} tdm_config;

/* Resolve every setting from defaults, the config file and the
 * environment. A config file that cannot be read or parsed is an error
 * naming the file and line. */
int tdm_config_load(tdm_config *cfg, tdm_error *err);
/* Make `profile` (given on the command line) the profile of a loaded
 * *cfg: the endpoint and region that came from the previous profile, or
 * from nobody, are resolved again for it, as `aws --profile` does. */
int tdm_config_use_profile(tdm_config *cfg, const char *profile,
                           tdm_error *err);

/* Name of a key ("data_root"), its index by name (-1 if unknown), whether
 * it is a secret (never shown), its value ("" when unset). */
const char *tdm_config_name(tdm_config_key key);
int tdm_config_lookup(const char *name);
int tdm_config_is_secret(tdm_config_key key);
const char *tdm_config_get(const tdm_config *cfg, tdm_config_key key);
/* The environment variable(s) of a key ("AWS_REGION, AWS_DEFAULT_REGION")
 * and its default ("" when none), for help texts. */
const char *tdm_config_env(tdm_config_key key, int which);
const char *tdm_config_default(tdm_config_key key);

/* Set a value explicitly (source "set"); checks numbers and names. */
int tdm_config_set(tdm_config *cfg, tdm_config_key key, const char *value,
                   tdm_error *err);

#endif
