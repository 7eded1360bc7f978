/*
 * tdm_cred_ini.c -- the AWS shared config and credentials files, parsed as
 * AWS's tools parse them: "[name]" sections in the credentials file,
 * "[profile name]" (or "[default]"), "[sso-session name]" and
 * "[services name]" in the config file; "key = value" lines, keys
 * case-insensitive, '#'/';' comment lines, no inline comments; a key with
 * an empty value followed by deeper-indented lines is a nested setting
 * ("s3 =\n  endpoint_url = ..."), kept as "s3.endpoint_url".
 *
 * Secrets: the line buffer is wiped after use and values are wiped when a
 * section is freed; messages quote file names, line numbers and key
 * names only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tdm_cred_int.h"

#define LINE_MAX_LEN 8192

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
 * (kind, name)? "[default]" and "[profile default]" both are the default
 * profile of the config file. */
static int section_matches(const char *sec, tdm_credi_kind kind,
                           const char *name) {
  static const char *const prefix[] = { "", "profile", "sso-session",
                                        "services" };
  const char *p = prefix[kind];
  size_t n = strlen(p);
  if (kind == TDM_CREDI_PLAIN) return strcmp(sec, name) == 0;
  if (kind == TDM_CREDI_PROFILE && strcmp(name, "default") == 0 &&
      strcmp(sec, "default") == 0)
    return 1;
  if (strncmp(sec, p, n) != 0 || (sec[n] != ' ' && sec[n] != '\t'))
    return 0;
  sec += n;
  while (*sec == ' ' || *sec == '\t') sec++;
  return strcmp(sec, name) == 0;
}

int tdm_credi_put(tdm_credi_sec *s, const char *key, const char *val,
                  tdm_error *err) {
  size_t i;
  char *v = strdup(val);
  if (!v) return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  for (i = 0; i < s->n; i++)
    if (strcmp(s->keys[i], key) == 0) {
      OPENSSL_cleanse(s->vals[i], strlen(s->vals[i]));
      free(s->vals[i]);
      s->vals[i] = v;
      return TDM_OK;
    }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **k = realloc(s->keys, cap * sizeof *k), **vv;
    if (k) s->keys = k;
    vv = k ? realloc(s->vals, cap * sizeof *vv) : NULL;
    if (!vv) {
      free(v);
      return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
    }
    s->vals = vv;
    s->cap = cap;
  }
  if (!(s->keys[s->n] = strdup(key))) {
    free(v);
    return tdm_error_set(err, "ENOMEM", "credentials: out of memory");
  }
  s->vals[s->n++] = v;
  return TDM_OK;
}

const char *tdm_credi_get(const tdm_credi_sec *s, const char *key) {
  size_t i;
  for (i = 0; i < s->n; i++)
    if (strcmp(s->keys[i], key) == 0) return s->vals[i];
  return NULL;
}

void tdm_credi_free(tdm_credi_sec *s) {
  size_t i;
  for (i = 0; i < s->n; i++) {
    OPENSSL_cleanse(s->vals[i], strlen(s->vals[i]));
    free(s->vals[i]);
    free(s->keys[i]);
  }
  free(s->keys);
  free(s->vals);
  s->keys = s->vals = NULL;
  s->n = s->cap = 0;
}

int tdm_credi_read(const char *path, tdm_credi_kind kind, const char *name,
                   tdm_credi_sec *out, int *exists, tdm_error *err) {
  char line[LINE_MAX_LEN], parent[128] = "";
  FILE *f;
  int lineno = 0, in_section = 0, had_key = 0, rc = TDM_OK;
  size_t key_indent = 0;

  memset(out, 0, sizeof *out);
  snprintf(out->path, sizeof out->path, "%s", path);
  if (exists) *exists = 0;
  f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT || errno == ENOTDIR) return TDM_OK;
    return tdm_error_errno(err, errno, "credentials: cannot read %s", path);
  }
  if (exists) *exists = 1;
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
    if (!*s || *s == '#' || *s == ';') continue;
    /* A line indented deeper than the key before it continues that key:
     * a nested setting when the key's own value was empty. */
    if (had_key && indent > key_indent) {
      if (in_section && parent[0] && (eq = strchr(s, '=')) != NULL) {
        char full[300];
        *eq = '\0';
        key = trim(s);
        lower(key);
        snprintf(full, sizeof full, "%s.%s", parent, key);
        rc = tdm_credi_put(out, full, trim(eq + 1), err);
        if (rc != TDM_OK) break;
      }
      continue;
    }
    if (*s == '[') {
      char *end = strrchr(s, ']');
      if (!end || end[1] != '\0') {
        rc = tdm_error_set(err, "EBADCREDS", "%s:%d: section header "
                           "without closing ']'", path, lineno);
        break;
      }
      *end = '\0';
      in_section = section_matches(trim(s + 1), kind, name);
      if (in_section) out->found = 1;
      had_key = 0;
      continue;
    }
    eq = strchr(s, '=');
    if (!eq) {
      rc = tdm_error_set(err, "EBADCREDS", "%s:%d: expected 'key = value'"
                         " or '[section]'", path, lineno);
      break;
    }
    had_key = 1;
    key_indent = indent;
    if (!in_section) continue;
    *eq = '\0';
    key = trim(s);
    val = trim(eq + 1);
    lower(key);
    if (strlen(key) >= sizeof parent) {
      rc = tdm_error_set(err, "EBADCREDS", "%s:%d: key too long", path,
                         lineno);
      break;
    }
    snprintf(parent, sizeof parent, "%s", *val ? "" : key);
    rc = tdm_credi_put(out, key, val, err);
    if (rc != TDM_OK) break;
  }
  if (rc == TDM_OK && ferror(f))
    rc = tdm_error_errno(err, errno ? errno : EIO,
                         "credentials: cannot read %s", path);
  OPENSSL_cleanse(line, sizeof line);
  fclose(f);
  return rc;
}

void tdm_credi_file_path(const char *env, const char *def, char *out,
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

int tdm_credi_profile_load(tdm_credi_profile *p, const char *name,
                           tdm_error *err) {
  size_t i;
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  tdm_credi_file_path("AWS_CONFIG_FILE", ".aws/config", p->conf_path,
                      sizeof p->conf_path);
  tdm_credi_file_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials",
                      p->cred_path, sizeof p->cred_path);
  if (p->cred_path[0] &&
      tdm_credi_read(p->cred_path, TDM_CREDI_PLAIN, name, &p->cred,
                     &p->cred_exists, err) != TDM_OK)
    return TDM_ERR;
  if (p->conf_path[0] &&
      tdm_credi_read(p->conf_path, TDM_CREDI_PROFILE, name, &p->conf,
                     &p->conf_exists, err) != TDM_OK)
    return TDM_ERR;
  /* botocore's full_config: credentials-file values override. */
  p->merged.found = p->conf.found || p->cred.found;
  for (i = 0; i < p->conf.n; i++)
    if (tdm_credi_put(&p->merged, p->conf.keys[i], p->conf.vals[i], err)
        != TDM_OK)
      return TDM_ERR;
  for (i = 0; i < p->cred.n; i++)
    if (tdm_credi_put(&p->merged, p->cred.keys[i], p->cred.vals[i], err)
        != TDM_OK)
      return TDM_ERR;
  return TDM_OK;
}

void tdm_credi_profile_free(tdm_credi_profile *p) {
  tdm_credi_free(&p->conf);
  tdm_credi_free(&p->cred);
  tdm_credi_free(&p->merged);
}

int tdm_credi_copy(char *dst, size_t dstsz, const char *val,
                   const char *what, tdm_error *err) {
  size_t n = val ? strlen(val) : 0;
  if (n >= dstsz)
    return tdm_error_set(err, "EBADCREDS", "credentials: %s is longer "
                         "than %zu bytes", what, dstsz - 1);
  memcpy(dst, val ? val : "", n);
  dst[n] = '\0';
  return TDM_OK;
}

int tdm_credi_fill(tdm_credentials *out, const char *ak, const char *sk,
                   const char *token, const char *method, const char *what,
                   tdm_error *err) {
  char w[256];
  snprintf(w, sizeof w, "the access key id from %s", what);
  if (tdm_credi_copy(out->access_key, sizeof out->access_key, ak, w, err)
      != TDM_OK)
    return TDM_ERR;
  snprintf(w, sizeof w, "the secret access key from %s", what);
  if (tdm_credi_copy(out->secret_key, sizeof out->secret_key, sk, w, err)
      != TDM_OK)
    return TDM_ERR;
  snprintf(w, sizeof w, "the session token from %s", what);
  if (tdm_credi_copy(out->session_token, sizeof out->session_token, token,
                     w, err) != TDM_OK)
    return TDM_ERR;
  snprintf(out->method, sizeof out->method, "%s", method);
  return TDM_OK;
}

time_t tdm_credi_parse_time(const char *s) {
  int y, mo, d, h, mi, n = 0;
  double sec;
  const char *rest;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi,
                   &sec, &n) != 6)
    return -1;
  rest = s + n;
  if (*rest && strcmp(rest, "Z") != 0 && strcmp(rest, "UTC") != 0 &&
      strcmp(rest, "+00:00") != 0 && strcmp(rest, "+0000") != 0)
    return -1;
  sec = tdm_utc_seconds(y, mo, d, h, mi, (double)(int)sec);
  return sec < 0 ? -1 : (time_t)sec;
}

int tdm_credi_json_fill(json_t *o, const char *ak, const char *sk,
                        const char *tok, const char *exp,
                        const char *method, const char *what,
                        tdm_credentials *out, tdm_error *err) {
  const char *names[3] = { ak, sk, tok }, *vals[3] = { NULL, NULL, "" };
  json_t *v;
  int i;
  if (!json_is_object(o))
    return tdm_error_set(err, "EBADCREDS", "%s: expected a JSON object",
                         what);
  for (i = 0; i < 3; i++) {
    if (!names[i]) continue;
    v = json_object_get(o, names[i]);
    if (!v && i == 2) continue;
    if (!json_is_string(v) || (i < 2 && !*json_string_value(v)))
      return tdm_error_set(err, "EBADCREDS", "%s: %s is %s", what,
                           names[i], v ? "not a non-empty string"
                                       : "missing");
    vals[i] = json_string_value(v);
  }
  out->expiration = 0;
  if (exp && (v = json_object_get(o, exp)) != NULL && !json_is_null(v)) {
    time_t t = -1;
    if (json_is_string(v)) t = tdm_credi_parse_time(json_string_value(v));
    else if (json_is_integer(v)) t = (time_t)(json_integer_value(v) / 1000);
    if (t <= 0)
      return tdm_error_set(err, "EBADCREDS", "%s: %s is not a time",
                           what, exp);
    out->expiration = t;
  }
  i = tdm_credi_fill(out, vals[0], vals[1], vals[2], method, what, err);
  /* the copies in the JSON tree are freed unwiped by jansson */
  OPENSSL_cleanse((char *)vals[1], strlen(vals[1]));
  OPENSSL_cleanse((char *)vals[2], strlen(vals[2]));
  return i;
}

int tdm_credi_json_parse(const char *text, size_t len, const char *ak,
                         const char *sk, const char *tok, const char *exp,
                         const char *method, const char *what,
                         tdm_credentials *out, tdm_error *err) {
  json_error_t je;
  json_t *o = text ? json_loadb(text, len, 0, &je) : NULL;
  int rc;
  if (!o)
    return tdm_error_set(err, "EBADCREDS", "%s: the answer is not JSON",
                         what);
  rc = tdm_credi_json_fill(o, ak, sk, tok, exp, method, what, out, err);
  json_decref(o);
  return rc;
}
