/* tdm_config.c -- settings from defaults, config file and environment. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm.h"

static const struct {
  const char *name, *env1, *env2, *def;
  int secret, numeric;
} keys[TDM_CFG_COUNT] = {
  {"data_root", "TDM_DATA_ROOT", NULL, "data", 0, 0},
  {"bucket", "TDM_BUCKET", NULL, "story-boards-assets", 0, 0},
  {"prefix", "TDM_PREFIX", NULL, "system_actors/training_data", 0, 0},
  {"region", "AWS_REGION", "AWS_DEFAULT_REGION", "us-west-1", 0, 0},
  {"public_url_base", "TDM_PUBLIC_URL_BASE", NULL, "", 0, 0},
  {"endpoint", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "", 0, 0},
  {"profile", "AWS_PROFILE", NULL, "", 0, 0},
  {"ca_bundle", "AWS_CA_BUNDLE", NULL, "", 0, 0},
  {"jobs", "TDM_JOBS", NULL, "32", 0, 1},
  {"lock_timeout", "TDM_LOCK_TIMEOUT", NULL, "30", 0, 1},
  {"multipart_threshold", "TDM_MULTIPART_THRESHOLD", NULL, "67108864", 0, 1},
  {"api_listen", "TDM_API_LISTEN", NULL, "127.0.0.1:8080", 0, 0},
  {"api_token", "TDM_API_TOKEN", NULL, "", 1, 0},
  {"api_max_upload", "TDM_API_MAX_UPLOAD", NULL, "20971520", 0, 1},
  {"s3_addressing", "TDM_S3_ADDRESSING", NULL, "auto", 0, 0},
  {"api_allowed_origins", "TDM_API_ALLOWED_ORIGINS", NULL, "", 0, 0},
  {"sse", "TDM_SSE", NULL, "", 0, 0},
  {"sse_kms_key_id", "TDM_SSE_KMS_KEY_ID", NULL, "", 0, 0},
  {"s3_checksum", "TDM_S3_CHECKSUM", NULL, "auto", 0, 0},
};

const char *tdm_config_name(tdm_config_key key) { return keys[key].name; }
int tdm_config_is_secret(tdm_config_key key) { return keys[key].secret; }

const char *tdm_config_get(const tdm_config *cfg, tdm_config_key key) {
  return cfg->value[key];
}

const char *tdm_config_env(tdm_config_key key, int which) {
  return which == 0 ? keys[key].env1 : keys[key].env2;
}

const char *tdm_config_default(tdm_config_key key) { return keys[key].def; }

int tdm_config_lookup(const char *name) {
  int i;
  for (i = 0; i < TDM_CFG_COUNT; i++)
    if (strcmp(keys[i].name, name) == 0) return i;
  return -1;
}

static int check_value(tdm_config_key key, const char *value,
                       const char *where, tdm_error *err) {
  if (strlen(value) >= TDM_CFG_VALUE_MAX)
    return tdm_error_set(err, "ECONFIG", "%s: %s is too long", where,
                         keys[key].name);
  if (keys[key].numeric && *value) {
    char *end;
    double d;
    errno = 0;
    d = strtod(value, &end);
    if (errno || *end || d <= 0)
      return tdm_error_set(err, "ECONFIG",
                           "%s: %s must be a positive number, got '%s'",
                           where, keys[key].name, value);
  }
  return TDM_OK;
}

static void put(tdm_config *cfg, tdm_config_key key, const char *value,
                const char *source) {
  snprintf(cfg->value[key], TDM_CFG_VALUE_MAX, "%s", value);
  snprintf(cfg->source[key], sizeof cfg->source[key], "%s", source);
}

int tdm_config_set(tdm_config *cfg, tdm_config_key key, const char *value,
                   tdm_error *err) {
  if ((int)key < 0 || key >= TDM_CFG_COUNT)
    return tdm_error_set(err, "ECONFIG", "unknown setting");
  if (check_value(key, value, "setting", err) != TDM_OK) return TDM_ERR;
  put(cfg, key, value, "set");
  return TDM_OK;
}

static char *trim(char *s) {
  char *e;
  while (isspace((unsigned char)*s)) s++;
  e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

/* What the AWS profile decides when nothing else set it, as for the aws
 * cli: the endpoint (the profile's [services] section or endpoint_url,
 * docs/credentials.md) and the region (~/.aws/config). */
static int from_profile(tdm_config *cfg, tdm_error *err) {
  char src[sizeof cfg->source[0]];
  if (strcmp(cfg->source[TDM_CFG_ENDPOINT], "default") == 0) {
    char ep[TDM_CFG_VALUE_MAX], epsrc[sizeof cfg->source[0]];
    const char *profile = cfg->value[TDM_CFG_PROFILE];
    if (tdm_endpoint_resolve("s3", *profile ? profile : NULL, ep, sizeof ep,
                             epsrc, sizeof epsrc, err) != TDM_OK)
      return TDM_ERR;
    if (ep[0]) put(cfg, TDM_CFG_ENDPOINT, ep, epsrc);
  }
  if (strcmp(cfg->source[TDM_CFG_REGION], "default") == 0) {
    char region[TDM_CFG_VALUE_MAX];
    const char *profile = cfg->value[TDM_CFG_PROFILE];
    if (tdm_region_resolve(region, sizeof region, *profile ? profile : NULL,
                           cfg->value[TDM_CFG_REGION], src, sizeof src,
                           err) != TDM_OK)
      return TDM_ERR;
    put(cfg, TDM_CFG_REGION, region, src);
  }
  return TDM_OK;
}

int tdm_config_use_profile(tdm_config *cfg, const char *profile,
                           tdm_error *err) {
  static const tdm_config_key derived[] = { TDM_CFG_ENDPOINT, TDM_CFG_REGION };
  size_t k;
  if (check_value(TDM_CFG_PROFILE, profile, "argument", err) != TDM_OK)
    return TDM_ERR;
  put(cfg, TDM_CFG_PROFILE, profile, "argument");
  for (k = 0; k < sizeof derived / sizeof derived[0]; k++)
    if (strncmp(cfg->source[derived[k]], "profile ", 8) == 0)
      put(cfg, derived[k], tdm_config_default(derived[k]), "default");
  return from_profile(cfg, err);
}

/* Read "key = value" lines from `path`. */
static int load_file(tdm_config *cfg, const char *path, tdm_error *err) {
  char line[TDM_CFG_VALUE_MAX + 128], where[600];
  int lineno = 0, rc = TDM_OK;
  FILE *f = fopen(path, "r");
  if (!f) return tdm_error_errno(err, errno, "config file %s", path);
  while (fgets(line, sizeof line, f)) {
    char *eq, *k, *v;
    int key;
    lineno++;
    snprintf(where, sizeof where, "config file %s:%d", path, lineno);
    k = trim(line);
    if (*k == '\0' || *k == '#' || *k == ';' || *k == '[') continue;
    eq = strchr(k, '=');
    if (!eq) {
      rc = tdm_error_set(err, "ECONFIG", "%s: expected 'key = value'",
                         where);
      break;
    }
    *eq = '\0';
    k = trim(k);
    v = trim(eq + 1);
    key = tdm_config_lookup(k);
    if (key < 0) {
      rc = tdm_error_set(err, "ECONFIG", "%s: unknown setting '%s'", where,
                         k);
      break;
    }
    if (check_value((tdm_config_key)key, v, where, err) != TDM_OK) {
      rc = TDM_ERR;
      break;
    }
    snprintf(where, sizeof where, "file %s:%d", path, lineno);
    put(cfg, (tdm_config_key)key, v, where);
  }
  fclose(f);
  return rc;
}

int tdm_config_load(tdm_config *cfg, tdm_error *err) {
  const char *file = getenv("TDM_CONFIG");
  char src[160];
  int i;
  FILE *probe;
  for (i = 0; i < TDM_CFG_COUNT; i++) put(cfg, (tdm_config_key)i,
                                          keys[i].def, "default");
  if (file && *file) {
    if (load_file(cfg, file, err) != TDM_OK) return TDM_ERR;
  } else if ((probe = fopen("tdm.conf", "r")) != NULL) {
    fclose(probe);
    if (load_file(cfg, "tdm.conf", err) != TDM_OK) return TDM_ERR;
  }
  for (i = 0; i < TDM_CFG_COUNT; i++) {
    const char *env = keys[i].env1 ? getenv(keys[i].env1) : NULL;
    const char *name = keys[i].env1;
    if ((!env || !*env) && keys[i].env2) {
      env = getenv(keys[i].env2);
      name = keys[i].env2;
    }
    if (!env || !*env) continue;
    snprintf(src, sizeof src, "env %s", name);
    if (check_value((tdm_config_key)i, env, src, err) != TDM_OK)
      return TDM_ERR;
    put(cfg, (tdm_config_key)i, env, src);
  }
  return from_profile(cfg, err);
}
