/* tdm_manifest_load.c -- read and validate a manifest file; errors name
 * the file, line and column. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tdm.h"
#include "tdm_manifest_int.h"

/* ---- a minimal locator: offset of the value at a path -------------------
 * The text has already parsed, so the scanner only needs to skip values
 * and match plain keys. A step is a key (key != NULL) or an array index. */
typedef struct step { const char *key; size_t index; } step;

typedef struct scanner { const char *s; size_t n, i; } scanner;

static void skip_ws(scanner *sc) {
  while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' ||
         sc->s[sc->i] == '\n' || sc->s[sc->i] == '\r'))
    sc->i++;
}

/* Skip a string starting at '"'; *start and *len give its raw body. */
static void skip_string(scanner *sc, size_t *start, size_t *len) {
  size_t b = ++sc->i;
  while (sc->i < sc->n && sc->s[sc->i] != '"') {
    if (sc->s[sc->i] == '\\') sc->i++;
    sc->i++;
  }
  if (start) *start = b;
  if (len) *len = sc->i - b;
  if (sc->i < sc->n) sc->i++;
}

static void skip_value(scanner *sc) {
  int depth = 0;
  skip_ws(sc);
  do {
    if (sc->i >= sc->n) return;
    switch (sc->s[sc->i]) {
      case '"': skip_string(sc, NULL, NULL); break;
      case '{': case '[': depth++; sc->i++; break;
      case '}': case ']': depth--; sc->i++; break;
      default: {
        size_t from = sc->i;
        while (sc->i < sc->n && !strchr(",}]\"{[", sc->s[sc->i])) sc->i++;
        /* strchr finds a NUL byte in the set (its terminator): step over
         * it, or this loop never ends (found by fuzz_manifest). */
        if (sc->i == from && sc->s[sc->i] == '\0') sc->i++;
        if (depth == 0) return;
        if (sc->i < sc->n && sc->s[sc->i] == ',') sc->i++;
        continue;
      }
    }
    if (depth > 0) {
      skip_ws(sc);
      if (sc->i < sc->n && (sc->s[sc->i] == ',' || sc->s[sc->i] == ':'))
        sc->i++;
      skip_ws(sc);
    }
  } while (depth > 0);
}

/* Offset of the value at `path` (or of the deepest found part). */
static size_t locate(const char *text, size_t n, const step *path,
                     int nsteps) {
  scanner sc = {text, n, 0};
  int k;
  skip_ws(&sc);
  for (k = 0; k < nsteps; k++) {
    size_t here = sc.i;
    if (path[k].key) {
      int found = 0;
      if (sc.i >= n || text[sc.i] != '{') return here;
      sc.i++;
      for (;;) {
        size_t ks, kl;
        skip_ws(&sc);
        if (sc.i >= n || text[sc.i] != '"') break;
        skip_string(&sc, &ks, &kl);
        skip_ws(&sc);
        if (sc.i < n && text[sc.i] == ':') sc.i++;
        skip_ws(&sc);
        if (kl == strlen(path[k].key) &&
            memcmp(text + ks, path[k].key, kl) == 0) {
          found = 1;
          break;
        }
        skip_value(&sc);
        skip_ws(&sc);
        if (sc.i < n && text[sc.i] == ',') sc.i++;
      }
      if (!found) return here;
    } else {
      size_t j;
      if (sc.i >= n || text[sc.i] != '[') return here;
      sc.i++;
      for (j = 0; j < path[k].index; j++) {
        skip_value(&sc);
        skip_ws(&sc);
        if (sc.i < n && text[sc.i] == ',') sc.i++;
      }
      skip_ws(&sc);
    }
  }
  return sc.i;
}

typedef struct vctx {
  const char *path, *text, *data_root;
  const char *actor;    /* character_name, once checked to be a string */
  size_t len;
  tdm_error *err;
} vctx;

/* BADMANIFEST "FILE: line L column C: <fmt>" at the value of `p`. */
static int bad(vctx *c, const step *p, int np, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;
static int bad(vctx *c, const step *p, int np, const char *fmt, ...) {
  char reason[600];
  va_list ap;
  size_t off = c->text ? locate(c->text, c->len, p, np) : 0, i;
  long line = 1, col = 1;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  for (i = 0; c->text && i < off && i < c->len; i++) {
    if (c->text[i] == '\n') { line++; col = 1; } else col++;
  }
  return tdm_error_set(c->err, "BADMANIFEST", "%s: line %ld column %ld: %s",
                       c->path, line, col, reason);
}

static const char *type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    default: return "null";
  }
}

/* Check entry i's key `key`: must be absent (unless required) or of the
 * wanted kind: 's' string, 'i' integer >= 0, 'n' number. */
static int check_field(vctx *c, json_t *obj, size_t i, const char *key,
                       int kind, int required) {
  json_t *v = json_object_get(obj, key);
  step p[3] = {{"training_data", 0}, {NULL, i}, {key, 0}};
  int ok;
  if (!v) {
    if (required) return bad(c, p, 2, "training_data[%zu] has no '%s'", i,
                             key);
    return TDM_OK;
  }
  ok = kind == 's' ? json_is_string(v)
     : kind == 'i' ? json_is_integer(v) && json_integer_value(v) >= 0
     : json_is_number(v);
  if (!ok && kind == 'i' && json_is_integer(v))  /* say which number */
    return bad(c, p, 3, "expected a non-negative integer for '%s' of "
               "training_data[%zu], got %" JSON_INTEGER_FORMAT, key, i,
               json_integer_value(v));
  if (!ok)
    return bad(c, p, 3, "expected %s for '%s' of training_data[%zu], got %s",
               kind == 's' ? "a string" : kind == 'i'
               ? "a non-negative integer" : "a number", key, i,
               type_name(v));
  return TDM_OK;
}

/* local_path is never opened (a file's place comes from the data root,
 * the actor and the filename), so no spelling of the root is refused: a
 * relative path without "..", an absolute one under the configured root,
 * or any path of the form ".../actors/{actor}/training_data/{filename}"
 * (what tdm wrote under another spelling of the root; rewritten to the
 * seed's form on the next save). */
static int check_local_path(const char *lp, size_t len, const char *root,
                            const char *actor, const char *fn,
                            tdm_error *err) {
  size_t rl = root ? strlen(root) : 0;
  const char *named;
  if (strlen(lp) == len && actor &&
      (named = tdm_layout_local_path_file(lp, actor)) != NULL &&
      strcmp(named, fn) == 0)
    return TDM_OK;
  while (rl > 1 && root[rl - 1] == '/') rl--;
  if (lp[0] == '/' && root && root[0] == '/' && len > rl + 1 &&
      memcmp(lp, root, rl) == 0 && lp[rl] == '/')
    return tdm_check_relpath(lp + rl + 1, len - rl - 1, "local_path", err);
  return tdm_check_relpath(lp, len, "local_path", err);
}

/* Validate training_data[i]; `seen` maps filenames met so far to their
 * index (so duplicates are found in O(n)). */
static int validate_entry(vctx *c, json_t *list, size_t i, json_t *seen) {
  json_t *v;
  size_t j;
  tdm_error sub;
  json_t *e = json_array_get(list, i);
  const char *fn, *st;
  step p[3] = {{"training_data", 0}, {NULL, i}, {"filename", 0}};
  if (!json_is_object(e))
    return bad(c, p, 2, "expected an object for training_data[%zu], "
               "got %s", i, type_name(e));
  if (check_field(c, e, i, "filename", 's', 1) != TDM_OK ||
      check_field(c, e, i, "status", 's', 1) != TDM_OK ||
      check_field(c, e, i, "local_path", 's', 0) != TDM_OK ||
      check_field(c, e, i, "s3_url", 's', 0) != TDM_OK ||
      check_field(c, e, i, "md5_hash", 's', 0) != TDM_OK ||
      check_field(c, e, i, "size_bytes", 'i', 0) != TDM_OK ||
      check_field(c, e, i, "size_mb", 'n', 0) != TDM_OK ||
      check_field(c, e, i, "modified_timestamp", 'n', 0) != TDM_OK ||
      check_field(c, e, i, "modified_date", 's', 0) != TDM_OK)
    return TDM_ERR;
  v = json_object_get(e, "filename");
  fn = json_string_value(v);
  if (tdm_check_name(fn, json_string_length(v), "filename", &sub)
      != TDM_OK)
    return bad(c, p, 3, "training_data[%zu]: %s", i, sub.message);
  if (!tdm_is_image_name(fn))
    return bad(c, p, 3, "training_data[%zu]: filename '%s' is not an "
               "image (.jpg .jpeg .png .webp)", i, fn);
  /* duplicates: `seen` maps filename -> first index (O(n) overall) */
  if ((v = json_object_get(seen, fn)) != NULL) {
    j = (size_t)json_integer_value(v);
    return bad(c, p, 3, "duplicate filename '%s' (training_data[%zu] "
               "and [%zu])", fn, j, i);
  }
  json_object_set_new(seen, fn, json_integer((json_int_t)i));
  v = json_object_get(e, "local_path");
  if (v && check_local_path(json_string_value(v), json_string_length(v),
                            c->data_root, c->actor, fn, &sub) != TDM_OK) {
    p[2].key = "local_path";
    return bad(c, p, 3, "training_data[%zu]: %s", i, sub.message);
  }
  st = json_string_value(json_object_get(e, "status"));
  if (tdm_status_parse(st) < 0) {
    p[2].key = "status";
    return bad(c, p, 3, "training_data[%zu]: unknown status '%s'", i, st);
  }
  return TDM_OK;
}

/* The actor a manifest names must be the actor its file is for:
 * character_id, the id of character_name and the {id} of the file name
 * ({id}_manifest.json, when the file is so named) are one id (compared
 * as tdm/layout.h writes ids). Otherwise "BADMANIFEST" naming both. */
static int check_identity(vctx *c, json_t *root) {
  const char *cid = json_string_value(json_object_get(root, "character_id"));
  const char *base = strrchr(c->path, '/');
  char nid[TDM_ACTOR_ID_MAX + 1], id[TDM_ACTOR_ID_MAX + 1];
  char fid[TDM_ACTOR_ID_MAX + 1];
  step pn[1] = {{"character_name", 0}}, pi[1] = {{"character_id", 0}};
  tdm_error sub;
  base = base ? base + 1 : c->path;
  if (tdm_actor_id(c->actor, nid, sizeof nid, &sub) != TDM_OK)
    return bad(c, pn, 1, "character_name: %s", sub.message);
  if (tdm_layout_id_of_digits(cid, strlen(cid), id, sizeof id, &sub)
      != TDM_OK)
    return bad(c, pi, 1, "character_id '%s' is not an actor id", cid);
  if (strcmp(id, nid) != 0)
    return bad(c, pi, 1, "character_id '%s' (actor %s) and character_name "
               "'%s' (actor %s) name different actors", cid, id, c->actor,
               nid);
  if (tdm_layout_manifest_id(base, fid, sizeof fid, NULL) &&
      strcmp(fid, id) != 0)
    return bad(c, pi, 1, "the file is actor %s's manifest, but it names "
               "actor %s ('%s')", fid, id, c->actor);
  return TDM_OK;
}

int tdm_manifest_validate(json_t *root, const char *path, const char *text,
                          size_t len, const char *data_root,
                          tdm_error *err) {
  vctx c = {path, text, data_root, NULL, len, err};
  json_t *list, *v, *seen;
  size_t i, n;
  int k;
  if (!json_is_object(root))
    return bad(&c, NULL, 0, "expected an object at the top level, got %s",
               type_name(root));
  for (k = 0; k < 2; k++) {
    const char *key = k ? "character_name" : "character_id";
    step p[1] = {{key, 0}};
    v = json_object_get(root, key);
    if (!v) return bad(&c, NULL, 0, "no '%s'", key);
    if (!json_is_string(v))
      return bad(&c, p, 1, "expected a string for '%s', got %s", key,
                 type_name(v));
  }
  c.actor = json_string_value(json_object_get(root, "character_name"));
  if (check_identity(&c, root) != TDM_OK) return TDM_ERR;
  v = json_object_get(root, "training_data_updated");
  if (v && !json_is_string(v)) {
    step p[1] = {{"training_data_updated", 0}};
    return bad(&c, p, 1, "expected a string for 'training_data_updated', "
               "got %s", type_name(v));
  }
  v = json_object_get(root, "statistics");
  if (v) {
    step p[2] = {{"statistics", 0}, {NULL, 0}};
    if (!json_is_object(v))
      return bad(&c, p, 1, "expected an object for 'statistics', got %s",
                 type_name(v));
    for (k = -2; k < TDM_ST_COUNT; k++) {
      const char *key = k == -2 ? TDM_STAT_IMAGES : k == -1
                      ? TDM_STAT_SIZE_MB : tdm_stat_count_key((tdm_status)k);
      json_t *s = json_object_get(v, key);
      p[1].key = key;
      if (s && !json_is_number(s))
        return bad(&c, p, 2, "expected a number for 'statistics.%s', got %s",
                   key, type_name(s));
    }
  }
  list = json_object_get(root, "training_data");
  if (!list) return bad(&c, NULL, 0, "no 'training_data'");
  if (!json_is_array(list)) {
    step p[1] = {{"training_data", 0}};
    return bad(&c, p, 1, "expected an array for 'training_data', got %s",
               type_name(list));
  }
  n = json_array_size(list);
  seen = json_object();
  if (!seen) return tdm_error_set(err, "ENOMEM", "out of memory");
  for (i = 0; i < n; i++)
    if (validate_entry(&c, list, i, seen) != TDM_OK) {
      json_decref(seen);
      return TDM_ERR;
    }
  json_decref(seen);
  return TDM_OK;
}

/* Read all of `path` (at most TDM_MANIFEST_MAX_BYTES) into *text (malloc'd,
 * NUL-terminated). ENOENT is returned as is so open can start empty. A
 * symbolic link is refused, not followed: saves replace the file by
 * rename, so a link is never what tdm wrote, and following one would read
 * (and quote in errors) a file outside the data root. */
int tdm_manifest_slurp(const char *path, char **text, size_t *len,
                       tdm_error *err) {
  struct stat st;
  size_t got = 0;
  char *buf;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP)
    return tdm_error_set(err, "BADMANIFEST",
                         "%s: is a symbolic link, not a manifest file", path);
  if (fd < 0) return tdm_error_errno(err, errno, "read %s", path);
  if (fstat(fd, &st) != 0) {
    int saved = errno;
    close(fd);
    return tdm_error_errno(err, saved, "read %s", path);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return tdm_error_set(err, "BADMANIFEST",
                         "%s: is a directory, not a manifest file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tdm_error_set(err, "BADMANIFEST", "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > TDM_MANIFEST_MAX_BYTES) {
    close(fd);
    return tdm_error_set(err, "BADMANIFEST",
                         "%s: %lld bytes is larger than the %u MiB a "
                         "manifest may have", path, (long long)st.st_size,
                         TDM_MANIFEST_MAX_BYTES >> 20);
  }
  buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return tdm_error_set(err, "ENOMEM", "read %s: out of memory", path);
  }
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int saved = errno;
      free(buf);
      close(fd);
      return tdm_error_errno(err, saved, "read %s", path);
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  *text = buf;
  *len = got;
  return TDM_OK;
}

int tdm_manifest_parse(const char *path, const char *text, size_t len,
                       const char *data_root, json_t **out, tdm_error *err) {
  json_error_t je;
  json_t *root;
  if (len == 0)
    return tdm_error_set(err, "BADMANIFEST", "%s: line 1 column 1: empty "
                         "file", path);
  /* jansson only for what the fast path gives up on (its errors carry
   * the line and column) */
  root = tdm_manifest_fast_parse(text, len);
  if (!root)
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &je);
  if (!root)
    return tdm_error_set(err, "BADMANIFEST", "%s: line %d column %d: %s",
                         path, je.line, je.column, je.text);
  if (tdm_manifest_validate(root, path, text, len, data_root, err)
      != TDM_OK) {
    json_decref(root);
    return TDM_ERR;
  }
  *out = root;
  return TDM_OK;
}

int tdm_manifest_read_file(const char *path, const char *data_root,
                           void **root_out, tdm_error *err) {
  char *text;
  size_t len;
  json_t *root;
  int rc;
  if (tdm_manifest_slurp(path, &text, &len, err) != TDM_OK) return TDM_ERR;
  rc = tdm_manifest_parse(path, text, len, data_root, &root, err);
  free(text);
  if (rc == TDM_OK) *root_out = root;
  return rc;
}
