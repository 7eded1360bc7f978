/*
 * tdm_credentials.c -- the AWS credential chain and region (see
 * include/tdm/sigv4.h): environment, then the shared credentials file,
 * then the config file, parsed as AWS's tools parse them (INI: "[name]"
 * sections in credentials, "[profile name]" or "[default]" in config,
 * "key = value" lines, '#'/';' comment lines, indented continuation lines
 * of nested settings ignored, no inline comments).
 *
 * Secrets: the line buffer that held a secret key or token is wiped after
 * use; no message built here ever quotes a value read from these files,
 * only file names, line numbers, profile names and key names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tdm.h"

#define LINE_MAX_LEN 8192
#define PATH_MAX_LEN 1024

/* What one profile section holds (only the keys tdm uses). */
typedef struct profile_vals {
  int found;                 /* the section exists */
  char access_key[128];
  char secret_key[128];
  char session_token[4096];
  char region[64];
  int have_access, have_secret, have_token, have_region;
  char other[32];            /* a credential source tdm does not support
                                (role_arn, sso_session, ...), "" if none */
} profile_vals;

/* Credential sources of AWS's tools that need more than the files (STS,
 * SSO, a helper process): named in the error so the user knows why. */
static const char *const unsupported[] = {
  "role_arn", "credential_process", "sso_session", "sso_start_url",
  "web_identity_token_file", "credential_source", NULL
};

static void profile_vals_wipe(profile_vals *p) {
  OPENSSL_cleanse(p, sizeof *p);
}

static char *trim(char *s) {
  char *e;
  while (*s == ' ' || *s == '\t') s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                   e[-1] == '\n'))
    *--e = '\0';
  return s;
}

static void lower(char *s) {
  for (; *s; s++)
    if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

/* Does section header text `sec` (inside the brackets, trimmed) name
 * `profile`? In the credentials file the section is the profile name; in
 * the config file it is "profile NAME", or "default" for the default
 * profile. */
static int section_matches(const char *sec, const char *profile,
                            int config_file) {
  if (!config_file) return strcmp(sec, profile) == 0;
  if (strcmp(profile, "default") == 0 && strcmp(sec, "default") == 0)
    return 1;
  if (strncmp(sec, "profile", 7) == 0 && (sec[7] == ' ' || sec[7] == '\t')) {
    const char *p = sec + 7;
    while (*p == ' ' || *p == '\t') p++;
    return strcmp(p, profile) == 0;
  }
  return 0;
}

/* Copy a value into a fixed field; too long is an error naming the key
 * (never the value). */
static int store(char *dst, size_t dstsz, const char *val, int *have,
                 const char *path, int lineno, const char *key,
                 tdm_error *err) {
  size_t n = strlen(val);
  if (n >= dstsz)
    return tdm_error_set(err, "EBADCREDS", "%s:%d: value of %s is longer "
                         "than %zu bytes", path, lineno, key, dstsz - 1);
  memcpy(dst, val, n + 1);
  *have = 1;
  return TDM_OK;
}

/* Read profile `profile` from INI file `path` into *out. A missing file is
 * not an error (out->found stays 0, *exists = 0); an unreadable or
 * malformed one is, naming the file and line. */
static int read_profile(const char *path, const char *profile,
                        int config_file, profile_vals *out, int *exists,
                        tdm_error *err) {
  char line[LINE_MAX_LEN];
  FILE *f;
  int lineno = 0, in_section = 0, had_key = 0, rc = TDM_OK;
  size_t key_indent = 0;

  memset(out, 0, sizeof *out);
  *exists = 0;
  f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT || errno == ENOTDIR) return TDM_OK;
    return tdm_error_errno(err, errno, "credentials: cannot read %s", path);
  }
  *exists = 1;
  while (fgets(line, sizeof line, f)) {
    char *s, *eq, *key, *val;
    size_t n = strlen(line), indent = strspn(line, " \t");
    lineno++;
    if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
      rc = tdm_error_set(err, "EBADCREDS", "%s:%d: line longer than %d "
                         "bytes", path, lineno, LINE_MAX_LEN - 2);
      break;
    }
    s = trim(line);
    if (lineno == 1 && (unsigned char)s[0] == 0xEF &&
        (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
      s = trim(s + 3);   /* UTF-8 byte order mark of Windows editors */
    /* A line indented deeper than the key before it continues that key's
     * value (a nested setting: "s3 =\n  max_concurrent_requests = 20");
     * not ours. */
    if (*s && had_key && indent > key_indent) continue;
    if (!*s || *s == '#' || *s == ';') continue;
    if (*s == '[') {
      char *end = strrchr(s, ']');
      if (!end || end[1] != '\0') {
        rc = tdm_error_set(err, "EBADCREDS", "%s:%d: section header "
                           "without closing ']'", path, lineno);
        break;
      }
      *end = '\0';
      in_section = section_matches(trim(s + 1), profile, config_file);
      if (in_section) out->found = 1;
      had_key = 0;
      continue;
    }
    eq = strchr(s, '=');
    if (!eq) {
      rc = tdm_error_set(err, "EBADCREDS", "%s:%d: expected 'key = value' "
                         "or '[section]'", path, lineno);
      break;
    }
    had_key = 1;
    key_indent = indent;
    if (!in_section) continue;
    *eq = '\0';
    key = trim(s);
    val = trim(eq + 1);
    lower(key);
    if (strcmp(key, "aws_access_key_id") == 0)
      rc = store(out->access_key, sizeof out->access_key, val,
                 &out->have_access, path, lineno, key, err);
    else if (strcmp(key, "aws_secret_access_key") == 0)
      rc = store(out->secret_key, sizeof out->secret_key, val,
                 &out->have_secret, path, lineno, key, err);
    else if (strcmp(key, "aws_session_token") == 0 ||
             (strcmp(key, "aws_security_token") == 0 && !out->have_token))
      rc = store(out->session_token, sizeof out->session_token, val,
                 &out->have_token, path, lineno, key, err);
    else if (strcmp(key, "region") == 0)
      rc = store(out->region, sizeof out->region, val, &out->have_region,
                 path, lineno, key, err);
    else if (!out->other[0]) {
      int u;
      for (u = 0; unsupported[u]; u++)
        if (strcmp(key, unsupported[u]) == 0)
          snprintf(out->other, sizeof out->other, "%s", key);
    }
    if (rc != TDM_OK) break;
  }
  if (rc == TDM_OK && ferror(f))
    rc = tdm_error_errno(err, errno ? errno : EIO,
                         "credentials: cannot read %s", path);
  OPENSSL_cleanse(line, sizeof line);
  fclose(f);
  if (rc != TDM_OK) profile_vals_wipe(out);
  return rc;
}

/* File path from environment variable `env` (with a leading "~/"
 * expanded), else $HOME/`def`. "" when neither can be formed. */
static void file_path(const char *env, const char *def, char *out,
                      size_t outsz) {
  const char *v = getenv(env), *home = getenv("HOME");
  out[0] = '\0';
  if (v && *v) {
    if (v[0] == '~' && (v[1] == '/' || v[1] == '\0') && home && *home)
      snprintf(out, outsz, "%s%s", home, v + 1);
    else
      snprintf(out, outsz, "%s", v);
  } else if (home && *home) {
    snprintf(out, outsz, "%s/%s", home, def);
  }
}

/* The profile asked for: `profile`, else $AWS_PROFILE, else "default". */
static const char *profile_name(const char *profile) {
  const char *env = getenv("AWS_PROFILE");
  if (profile && *profile) return profile;
  if (env && *env) return env;
  return "default";
}

static void set_source(tdm_credentials *out, const char *profile,
                       const char *path) {
  int n = snprintf(out->source, sizeof out->source, "profile '%s' in %s",
                   profile, path);
  if (n < 0) out->source[0] = '\0';
}

/* Take the credentials of profile values *p read from `path`, or report
 * a partial set. Returns 1 when taken, 0 when the profile holds none,
 * TDM_ERR on a partial set. */
static int take_profile(tdm_credentials *out, const profile_vals *p,
                        const char *profile, const char *path,
                        tdm_error *err) {
  if (p->found && !p->have_access && !p->have_secret && p->other[0])
    return tdm_error_set(err, "ENOCREDS", "credentials: profile '%s' in %s "
                         "uses %s, which tdm does not support; export "
                         "static credentials instead (aws configure "
                         "export-credentials --profile %s --format env)",
                         profile, path, p->other, profile);
  if (!p->found || (!p->have_access && !p->have_secret)) return 0;
  if (!p->have_access || !*p->access_key || !p->have_secret ||
      !*p->secret_key)
    return tdm_error_set(err, "EBADCREDS", "credentials: profile '%s' in "
                         "%s has %s but no %s", profile, path,
                         p->have_access && *p->access_key ?
                           "aws_access_key_id" : "aws_secret_access_key",
                         p->have_access && *p->access_key ?
                           "aws_secret_access_key" : "aws_access_key_id");
  memcpy(out->access_key, p->access_key, sizeof out->access_key);
  memcpy(out->secret_key, p->secret_key, sizeof out->secret_key);
  memcpy(out->session_token, p->session_token, sizeof out->session_token);
  set_source(out, profile, path);
  return 1;
}

/* Copy an environment value into a fixed field; too long is an error
 * naming the variable, never its value. */
static int env_copy(char *dst, size_t dstsz, const char *name,
                    tdm_error *err) {
  const char *v = getenv(name);
  size_t n = v ? strlen(v) : 0;
  if (n >= dstsz)
    return tdm_error_set(err, "EBADCREDS", "credentials: %s is longer than "
                         "%zu bytes", name, dstsz - 1);
  memcpy(dst, v ? v : "", n);
  dst[n] = '\0';
  return TDM_OK;
}

int tdm_credentials_resolve(tdm_credentials *out, const char *profile,
                            tdm_error *err) {
  const char *ak = getenv("AWS_ACCESS_KEY_ID");
  const char *sk = getenv("AWS_SECRET_ACCESS_KEY");
  const char *name = profile_name(profile);
  char cred_path[PATH_MAX_LEN], conf_path[PATH_MAX_LEN];
  profile_vals *p;
  int exists_cred = 0, exists_conf = 0, rc;

  memset(out, 0, sizeof *out);
  /* 1. Environment. */
  if ((ak && *ak) || (sk && *sk)) {
    if (!(ak && *ak) || !(sk && *sk))
      return tdm_error_set(err, "EBADCREDS", "credentials: %s is set in "
                           "the environment but %s is not",
                           ak && *ak ? "AWS_ACCESS_KEY_ID" :
                                       "AWS_SECRET_ACCESS_KEY",
                           ak && *ak ? "AWS_SECRET_ACCESS_KEY" :
                                       "AWS_ACCESS_KEY_ID");
    if (env_copy(out->access_key, sizeof out->access_key,
                 "AWS_ACCESS_KEY_ID", err) != TDM_OK ||
        env_copy(out->secret_key, sizeof out->secret_key,
                 "AWS_SECRET_ACCESS_KEY", err) != TDM_OK ||
        env_copy(out->session_token, sizeof out->session_token,
                 "AWS_SESSION_TOKEN", err) != TDM_OK) {
      OPENSSL_cleanse(out, sizeof *out);
      return TDM_ERR;
    }
    snprintf(out->source, sizeof out->source, "environment");
    return TDM_OK;
  }

  /* 2. Shared credentials file, 3. config file. */
  p = malloc(sizeof *p);
  if (!p) return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  file_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", cred_path,
            sizeof cred_path);
  file_path("AWS_CONFIG_FILE", ".aws/config", conf_path, sizeof conf_path);
  rc = 0;
  if (cred_path[0]) {
    if (read_profile(cred_path, name, 0, p, &exists_cred, err) != TDM_OK)
      rc = TDM_ERR;
    else
      rc = take_profile(out, p, name, cred_path, err);
    profile_vals_wipe(p);
  }
  if (rc == 0 && conf_path[0]) {
    if (read_profile(conf_path, name, 1, p, &exists_conf, err) != TDM_OK)
      rc = TDM_ERR;
    else
      rc = take_profile(out, p, name, conf_path, err);
    profile_vals_wipe(p);
  }
  free(p);
  if (rc == 1) return TDM_OK;
  if (rc == TDM_ERR) {
    OPENSSL_cleanse(out, sizeof *out);
    return TDM_ERR;
  }
  return tdm_error_set(err, "ENOCREDS", "no AWS credentials: "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set "
                       "and profile '%s' has none in %s%s or %s%s", name,
                       cred_path[0] ? cred_path : "(no HOME)",
                       exists_cred ? "" : " (missing)",
                       conf_path[0] ? conf_path : "(no HOME)",
                       exists_conf ? "" : " (missing)");
}

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
  char conf_path[PATH_MAX_LEN], src[PATH_MAX_LEN + 192];
  const char *name = profile_name(profile);
  profile_vals *p;
  int i, exists = 0, rc;

  if (!out || outsz == 0)
    return tdm_error_set(err, "EINVAL", "region: no output buffer");
  for (i = 0; envs[i]; i++) {
    const char *v = getenv(envs[i]);
    if (v && *v) {
      snprintf(src, sizeof src, "env %s", envs[i]);
      return put_region(out, outsz, v, source, srcsz, src, err);
    }
  }
  file_path("AWS_CONFIG_FILE", ".aws/config", conf_path, sizeof conf_path);
  if (conf_path[0]) {
    p = malloc(sizeof *p);
    if (!p) return tdm_error_set(err, "ENOMEM", "region: out of memory");
    rc = read_profile(conf_path, name, 1, p, &exists, err);
    if (rc == TDM_OK && p->have_region && p->region[0]) {
      snprintf(src, sizeof src, "profile '%s' in %s", name, conf_path);
      rc = put_region(out, outsz, p->region, source, srcsz, src, err);
      profile_vals_wipe(p);
      free(p);
      return rc;
    }
    profile_vals_wipe(p);
    free(p);
    if (rc != TDM_OK) return TDM_ERR;
  }
  return put_region(out, outsz, fallback ? fallback : "", source, srcsz,
                    "default", err);
}
