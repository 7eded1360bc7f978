/* tdm_manifest.c -- the manifest model: open/close under a lock, facts ->
 * status and derived fields, mutations, statistics, saves. */
#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tdm_manifest_int.h"

/* ---- small helpers ------------------------------------------------------ */

double tdm_round2(double x) {
  char buf[64];
  /* glibc rounds the exact binary value half-even, as Python's round()
   * does through its own correctly rounded dtoa. */
  snprintf(buf, sizeof buf, "%.2f", x);
  return strtod(buf, NULL);
}

void tdm_format_utc(double ts, char *out, size_t outsz) {
  double ipart, frac = modf(ts, &ipart);
  double us = nearbyint(frac * 1e6);
  time_t t;
  struct tm tm;
  if (us >= 1e6) { ipart += 1; us -= 1e6; }
  else if (us < 0) { ipart -= 1; us += 1e6; }
  t = (time_t)ipart;
  gmtime_r(&t, &tm);
  snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, (long)us);
}

static double now_ts(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

int tdm_manifest_file_path(const tdm_manifest *m, const char *filename,
                           char *out, size_t outsz, tdm_error *err) {
  return tdm_layout_file_path(m->data_root, m->actor_name, filename, out,
                              outsz, err);
}

/* ---- field setters that notice change ------------------------------------ */

static int set_string(tdm_manifest *m, json_t *obj, const char *key,
                      const char *val) {
  json_t *old = json_object_get(obj, key);
  if (old && json_is_string(old) && strcmp(json_string_value(old), val) == 0)
    return 0;
  m->changed = 1;
  return json_object_set_new(obj, key, json_string(val));
}

static int set_int(tdm_manifest *m, json_t *obj, const char *key,
                   int64_t val) {
  json_t *old = json_object_get(obj, key);
  if (old && json_is_integer(old) && json_integer_value(old) == val)
    return 0;
  m->changed = 1;
  return json_object_set_new(obj, key, json_integer(val));
}

/* Reals compare with a tolerance of `tol` (timestamps read back from
 * stat may differ from a Python-written value in the last bit). */
static int set_real(tdm_manifest *m, json_t *obj, const char *key,
                    double val, double tol) {
  json_t *old = json_object_get(obj, key);
  if (old && json_is_real(old) && fabs(json_real_value(old) - val) <= tol)
    return 0;
  m->changed = 1;
  return json_object_set_new(obj, key, json_real(val));
}

/* ---- facts -> status and derived fields --------------------------------- */

static const char *fact_md5(const tdm_fact *f) {
  return f->md5[0] ? f->md5 : NULL;
}

/* Decide the status of entry i from its facts. */
static tdm_status derive_status(tdm_manifest *m, size_t i) {
  tdm_mentry *e = &m->ents[i];
  if (e->loc.present && e->s3.present) {
    char md5[TDM_MD5_HEX_LEN + 1];
    if (e->s3.md5[0])
      return strcmp(e->s3.md5, e->loc.md5) == 0 ? TDM_ST_SYNCED
                                                : TDM_ST_OUT_OF_SYNC;
    if (e->s3.etag[0]) {
      char path[TDM_PATH_MAX];
      const char *fn = json_string_value(
          json_object_get(json_array_get(m->list, i), "filename"));
      int match = 0;
      tdm_error err;
      if (tdm_etag_plain_md5(e->s3.etag, md5))
        return strcmp(md5, e->loc.md5) == 0 ? TDM_ST_SYNCED
                                            : TDM_ST_OUT_OF_SYNC;
      if (tdm_manifest_file_path(m, fn, path, sizeof path, &err) == TDM_OK &&
          tdm_etag_match_file(path, e->s3.etag, fact_md5(&e->loc), &match,
                              &err) == TDM_OK && match)
        return TDM_ST_SYNCED;
      return TDM_ST_OUT_OF_SYNC;
    }
    return TDM_ST_OUT_OF_SYNC;  /* S3 MD5 unknown: cannot vouch for it */
  }
  if (e->loc.present) return TDM_ST_LOCAL_ONLY;
  if (e->s3.present) return TDM_ST_S3_ONLY;
  return TDM_ST_MISSING;
}

/* Write every derived field of entry i from its facts, in place. */
static int derive(tdm_manifest *m, size_t i, tdm_error *err) {
  json_t *obj = json_array_get(m->list, i);
  tdm_mentry *e = &m->ents[i];
  const char *fn = json_string_value(json_object_get(obj, "filename"));
  const char *md5 = NULL;
  char date[40], lp[TDM_PATH_MAX];
  tdm_buf b;
  int64_t size = -1;
  double mtime = -1;
  json_t *old;
  int rc = 0;

  tdm_buf_init(&b, 3 * TDM_PATH_MAX);
  if (tdm_layout_local_path(m->actor_name, fn, lp, sizeof lp, err)
      != TDM_OK)
    goto fail;
  rc |= set_string(m, obj, "local_path", lp);
  if (tdm_layout_public_url(m->url_base, m->prefix, m->actor_name, fn, &b,
                            err) != TDM_OK)
    goto fail;
  rc |= set_string(m, obj, "s3_url", b.data);
  tdm_buf_free(&b);

  if (e->loc.present) {
    md5 = fact_md5(&e->loc);
    if (e->loc.has_size) size = e->loc.size;
    if (e->loc.has_mtime) mtime = e->loc.mtime;
  } else if (e->s3.present) {
    md5 = fact_md5(&e->s3);
    if (e->s3.has_size) size = e->s3.size;
    if (e->s3.has_mtime) mtime = e->s3.mtime;
  }
  /* What is not known now keeps what the entry recorded (a missing
   * file's md5 is the record of what was lost). */
  if (!md5) {
    old = json_object_get(obj, "md5_hash");
    md5 = json_is_string(old) ? json_string_value(old) : "";
  }
  rc |= set_string(m, obj, "md5_hash", md5);
  if (size < 0) {
    old = json_object_get(obj, "size_bytes");
    size = json_is_integer(old) ? json_integer_value(old) : 0;
  }
  rc |= set_int(m, obj, "size_bytes", size);
  rc |= set_real(m, obj, "size_mb", tdm_round2((double)size / 1048576.0),
                 0);
  if (mtime < 0) {
    old = json_object_get(obj, "modified_timestamp");
    mtime = json_is_number(old) ? json_number_value(old) : 0;
  }
  rc |= set_real(m, obj, "modified_timestamp", mtime, 1e-6);
  mtime = json_number_value(json_object_get(obj, "modified_timestamp"));
  tdm_format_utc(mtime, date, sizeof date);
  rc |= set_string(m, obj, "modified_date", date);
  rc |= set_string(m, obj, "status", tdm_status_name(derive_status(m, i)));
  if (rc) return tdm_error_set(err, "ENOMEM", "out of memory");
  return TDM_OK;
fail:
  tdm_buf_free(&b);
  return TDM_ERR;
}

/* Facts of entry i as the stored status implies them (see header). */
static void infer_facts(tdm_manifest *m, size_t i) {
  json_t *obj = json_array_get(m->list, i), *v;
  tdm_mentry *e = &m->ents[i];
  int st = tdm_status_parse(json_string_value(json_object_get(obj,
                                                              "status")));
  const char *md5 = "";
  int64_t size = 0;
  double mtime = 0;
  memset(e, 0, sizeof *e);
  e->loc.known = e->s3.known = 1;
  if ((v = json_object_get(obj, "md5_hash")) && json_is_string(v))
    md5 = json_string_value(v);
  if ((v = json_object_get(obj, "size_bytes")) && json_is_integer(v))
    size = json_integer_value(v);
  if ((v = json_object_get(obj, "modified_timestamp")) && json_is_number(v))
    mtime = json_number_value(v);
  e->loc.present = st == TDM_ST_SYNCED || st == TDM_ST_LOCAL_ONLY ||
                   st == TDM_ST_OUT_OF_SYNC;
  e->s3.present = st == TDM_ST_SYNCED || st == TDM_ST_S3_ONLY ||
                  st == TDM_ST_OUT_OF_SYNC;
  if (e->loc.present) {
    snprintf(e->loc.md5, sizeof e->loc.md5, "%.32s", md5);
    e->loc.has_size = e->loc.has_mtime = 1;
    e->loc.size = size;
    e->loc.mtime = mtime;
  }
  if (st == TDM_ST_SYNCED || st == TDM_ST_S3_ONLY)
    snprintf(e->s3.md5, sizeof e->s3.md5, "%.32s", md5);
  if (st == TDM_ST_S3_ONLY) {
    e->s3.has_size = e->s3.has_mtime = 1;
    e->s3.size = size;
    e->s3.mtime = mtime;
  }
  e->s3_differs = st == TDM_ST_OUT_OF_SYNC;
}

/* Write entry i's local_path in the seed's form when it holds another
 * spelling (an absolute root, written by an older tdm): the next save
 * rewrites it, once. */
static int canonical_local_path(tdm_manifest *m, size_t i, tdm_error *err) {
  json_t *obj = json_array_get(m->list, i), *v;
  char lp[TDM_PATH_MAX];
  if (tdm_layout_local_path(m->actor_name, json_string_value(
          json_object_get(obj, "filename")), lp, sizeof lp, err) != TDM_OK)
    return TDM_ERR;
  v = json_object_get(obj, "local_path");
  if (v && set_string(m, obj, "local_path", lp) != 0)
    return tdm_error_set(err, "ENOMEM", "out of memory");
  return TDM_OK;
}

/* ---- statistics ---------------------------------------------------------- */

void tdm_manifest_statistics(const tdm_manifest *m, tdm_manifest_stats *s) {
  size_t i;
  memset(s, 0, sizeof *s);
  for (i = 0; i < m->n; i++) {
    json_t *obj = json_array_get(m->list, i), *v;
    int st = tdm_status_parse(json_string_value(json_object_get(obj,
                                                                "status")));
    if (st >= 0) s->count[st]++;
    v = json_object_get(obj, "size_bytes");
    if (json_is_integer(v)) s->bytes += json_integer_value(v);
    s->images++;
  }
  s->size_mb = tdm_round2((double)s->bytes / 1048576.0);
}

/* Whether the stored statistics disagree with the entries. An absent
 * training_missing_count (files written by the Python system) is fine
 * while nothing is missing. */
static int compute_stale(const tdm_manifest *m) {
  tdm_manifest_stats s;
  json_t *st = json_object_get(m->root, "statistics"), *v;
  int k;
  if (!json_is_object(st)) return 1;
  tdm_manifest_statistics(m, &s);
  v = json_object_get(st, "training_images_count");
  if (!json_is_number(v) || json_number_value(v) != (double)s.images)
    return 1;
  v = json_object_get(st, "training_data_size_mb");
  if (!json_is_number(v) || json_number_value(v) != s.size_mb) return 1;
  for (k = 0; k < TDM_ST_COUNT; k++) {
    v = json_object_get(st, tdm_stat_count_key((tdm_status)k));
    if (!v && k == TDM_ST_MISSING && s.count[k] == 0) continue;
    if (!json_is_number(v) || json_number_value(v) != (double)s.count[k])
      return 1;
  }
  return 0;
}

/* ---- open / close ---- */

static int copy_str(char *dst, size_t dstsz, const char *src,
                    const char *what, tdm_error *err) {
  size_t n = strlen(src);
  if (n >= dstsz)
    return tdm_error_set(err, "ENAMETOOLONG", "%s is too long", what);
  memcpy(dst, src, n + 1);
  return TDM_OK;
}

/* A new, empty document with the seed's keys in the seed's order. */
static json_t *new_document(const tdm_manifest *m) {
  json_t *root = json_object(), *st = json_object();
  int k;
  if (!root || !st) {
    json_decref(root);
    json_decref(st);
    return NULL;
  }
  json_object_set_new(root, "character_id", json_string(m->actor_id));
  json_object_set_new(root, "character_name", json_string(m->actor_name));
  json_object_set_new(root, "training_data", json_array());
  json_object_set_new(root, "training_data_updated", json_string(""));
  json_object_set_new(st, "training_images_count", json_integer(0));
  json_object_set_new(st, "training_data_size_mb", json_real(0));
  for (k = 0; k < TDM_ST_COUNT; k++)
    json_object_set_new(st, tdm_stat_count_key((tdm_status)k), json_integer(0));
  json_object_set_new(root, "statistics", st);
  return root;
}

/* Load (or start) the document of an opened, locked manifest. */
static int load_document(tdm_manifest *m, tdm_error *err) {
  char *text = NULL;
  size_t len, i;
  json_t *root;
  const char *name;
  tdm_error e2;
  if (tdm_manifest_slurp(m->path, &text, &len, &e2) != TDM_OK) {
    if (strcmp(e2.code, "ENOENT") != 0) {
      *err = e2;
      return TDM_ERR;
    }
    m->root = new_document(m);
    if (!m->root) return tdm_error_set(err, "ENOMEM", "out of memory");
    m->list = json_object_get(m->root, "training_data");
    m->existed = 0;
    m->updated_ts = -1;
    return TDM_OK;
  }
  if (tdm_manifest_parse(m->path, text, len, m->data_root, &root, err)
      != TDM_OK) {
    free(text);
    return TDM_ERR;
  }
  free(text);
  name = json_string_value(json_object_get(root, "character_name"));
  if (strcmp(name, m->actor_name) != 0) {
    tdm_error_set(err, "ENOACTOR", "%s belongs to actor '%s', not '%s'",
                  m->path, name, m->actor_name);
    json_decref(root);
    return TDM_ERR;
  }
  m->root = root;
  m->list = json_object_get(root, "training_data");
  m->n = m->cap = json_array_size(m->list);
  m->ents = calloc(m->cap ? m->cap : 1, sizeof *m->ents);
  if (!m->ents) return tdm_error_set(err, "ENOMEM", "out of memory");
  for (i = 0; i < m->n; i++) {
    infer_facts(m, i);
    if (canonical_local_path(m, i, err) != TDM_OK) return TDM_ERR;
  }
  m->existed = 1;
  m->updated_ts = tdm_parse_utc(json_string_value(
      json_object_get(root, "training_data_updated")));
  m->stale = compute_stale(m);
  return TDM_OK;
}

int tdm_manifest_open(tdm_manifest **out, const char *actor_name,
                      const tdm_manifest_opts *o, tdm_error *err) {
  tdm_manifest *m = calloc(1, sizeof *m);
  char dir[TDM_PATH_MAX];
  const char *root = o && o->data_root ? o->data_root : "data";
  int n;
  *out = NULL;
  if (!m) return tdm_error_set(err, "ENOMEM", "out of memory");
  m->lockfd = -1;
  if (tdm_actor_id(actor_name, m->actor_id, sizeof m->actor_id, err)
      != TDM_OK ||
      copy_str(m->actor_name, sizeof m->actor_name, actor_name,
               "actor name", err) != TDM_OK ||
      copy_str(m->data_root, sizeof m->data_root, root, "data_root", err)
      != TDM_OK ||
      copy_str(m->url_base, sizeof m->url_base,
               o && o->public_url_base ? o->public_url_base : "",
               "public_url_base", err) != TDM_OK ||
      copy_str(m->prefix, sizeof m->prefix, o && o->prefix ? o->prefix : "",
               "prefix", err) != TDM_OK)
    goto fail;
  if (tdm_layout_manifest_path(root, m->actor_id, m->path, sizeof m->path,
                               err) != TDM_OK)
    goto fail;
  n = snprintf(dir, sizeof dir, "%s/actor_manifests", root);
  if (n < 0 || (size_t)n >= sizeof dir ||
      snprintf(m->lockpath, sizeof m->lockpath, "%s.lock", m->path)
      >= (int)sizeof m->lockpath) {
    tdm_error_errno(err, ENAMETOOLONG, "manifest path under %s", root);
    goto fail;
  }
  /* Read-only: no lock at all, not even a shared one on an existing lock
   * file. Every save is an atomic rename of a complete, fsynced temp file
   * and load_document reads the file through one open descriptor, so a
   * reader sees one whole version (the one before or after a concurrent
   * save), never half of one; a shared lock would add nothing to that, and
   * it would make audits and API reads wait (then fail LOCKED) behind
   * writers that hold the exclusive lock for a whole pull. What is read
   * may be stale by the time it is used, which read-only callers accept:
   * they cannot save it. */
  if (o && o->read_only) {
    m->read_only = 1;
  } else if (tdm_lock_acquire(m->lockpath, o ? o->lock_timeout : 0,
                              &m->lockfd, err) != TDM_OK) {
    /* actor_manifests/ is made only when the lock file cannot be opened
     * for want of it (saves a mkdir per component on every open). */
    if (strcmp(err->code, "ENOENT") != 0 || tdm_mkdirs(dir, err) != TDM_OK ||
        tdm_lock_acquire(m->lockpath, o ? o->lock_timeout : 0, &m->lockfd,
                         err) != TDM_OK)
      goto fail;
  }
  if (load_document(m, err) != TDM_OK) goto fail;
  *out = m;
  return TDM_OK;
fail:
  tdm_manifest_close(m);
  return TDM_ERR;
}

void tdm_manifest_close(tdm_manifest *m) {
  if (!m) return;
  tdm_lock_release(m->lockfd);
  json_decref(m->root);
  free(m->ents);
  free(m);
}

/* ---- queries ------------------------------------------------------------ */

const char *tdm_manifest_path(const tdm_manifest *m) { return m->path; }
const char *tdm_manifest_actor_name(const tdm_manifest *m) {
  return m->actor_name;
}
const char *tdm_manifest_actor_id(const tdm_manifest *m) {
  return m->actor_id;
}
const char *tdm_manifest_data_root(const tdm_manifest *m) {
  return m->data_root;
}
int tdm_manifest_existed(const tdm_manifest *m) { return m->existed; }
int tdm_manifest_read_only(const tdm_manifest *m) { return m->read_only; }
int tdm_manifest_stale(const tdm_manifest *m) { return m->stale; }
int tdm_manifest_dirty(const tdm_manifest *m) {
  return m->changed || m->stale || !m->existed;
}
size_t tdm_manifest_count(const tdm_manifest *m) { return m->n; }

long tdm_manifest_find(const tdm_manifest *m, const char *filename) {
  size_t i;
  for (i = 0; i < m->n; i++) {
    const char *fn = json_string_value(
        json_object_get(json_array_get(m->list, i), "filename"));
    if (fn && strcmp(fn, filename) == 0) return (long)i;
  }
  return -1;
}

static const char *get_str(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

int tdm_manifest_entry(const tdm_manifest *m, size_t i, tdm_entry_view *v) {
  json_t *obj, *x;
  const tdm_mentry *e;
  if (i >= m->n) return -1;
  obj = json_array_get(m->list, i);
  e = &m->ents[i];
  v->filename = get_str(obj, "filename");
  v->local_path = get_str(obj, "local_path");
  v->s3_url = get_str(obj, "s3_url");
  v->md5_hash = get_str(obj, "md5_hash");
  v->modified_date = get_str(obj, "modified_date");
  v->status = get_str(obj, "status");
  x = json_object_get(obj, "size_bytes");
  v->size_bytes = json_is_integer(x) ? json_integer_value(x) : 0;
  x = json_object_get(obj, "size_mb");
  v->size_mb = json_is_number(x) ? json_number_value(x) : 0;
  x = json_object_get(obj, "modified_timestamp");
  v->modified_timestamp = json_is_number(x) ? json_number_value(x) : 0;
  v->index = tdm_layout_image_index(v->filename);
  v->local_present = e->loc.present;
  v->s3_present = e->s3.present;
  v->local_md5 = e->loc.present && e->loc.md5[0] ? e->loc.md5 : NULL;
  v->s3_md5 = e->s3.present && e->s3.md5[0] ? e->s3.md5 : NULL;
  v->s3_etag = e->s3.present && e->s3.etag[0] ? e->s3.etag : NULL;
  return 0;
}

/* ---- mutations ---- */

static int check_md5(const char *md5, const char *what, tdm_error *err) {
  size_t i, n = strlen(md5);
  if (n == 0) return TDM_OK;
  if (n != TDM_MD5_HEX_LEN) goto bad;
  for (i = 0; i < n; i++)
    if (!isxdigit((unsigned char)md5[i]) || isupper((unsigned char)md5[i]))
      goto bad;
  return TDM_OK;
bad:
  return tdm_error_set(err, "EINVAL", "%s '%s' is not 32 lower-case hex "
                       "digits", what, md5);
}

/* Fill a present local fact's missing MD5/size/mtime from the file. */
static int complete_local(tdm_manifest *m, const char *fn, tdm_fact *f,
                          tdm_error *err) {
  char path[TDM_PATH_MAX];
  struct stat st;
  if (!f->known || !f->present) return TDM_OK;
  if (check_md5(f->md5, "local md5", err) != TDM_OK) return TDM_ERR;
  if (f->md5[0] && f->has_size && f->has_mtime) return TDM_OK;
  if (tdm_manifest_file_path(m, fn, path, sizeof path, err) != TDM_OK)
    return TDM_ERR;
  if (stat(path, &st) != 0) return tdm_error_errno(err, errno, "stat %s",
                                                   path);
  if (!f->md5[0]) {
    uint64_t size;
    if (tdm_md5_file(path, f->md5, &size, err) != TDM_OK) return TDM_ERR;
  }
  if (!f->has_size) {
    f->has_size = 1;
    f->size = (int64_t)st.st_size;
  }
  if (!f->has_mtime) {
    f->has_mtime = 1;
    f->mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
  }
  return TDM_OK;
}

int tdm_manifest_set_facts(tdm_manifest *m, size_t i, const tdm_fact *loc,
                           const tdm_fact *s3, tdm_error *err) {
  tdm_mentry *e = &m->ents[i];
  const char *fn = json_string_value(
      json_object_get(json_array_get(m->list, i), "filename"));
  tdm_fact l;
  if (loc && loc->known) {
    l = *loc;
    if (complete_local(m, fn, &l, err) != TDM_OK) return TDM_ERR;
  }
  if (s3 && s3->known && check_md5(s3->md5, "S3 md5", err) != TDM_OK)
    return TDM_ERR;
  if (loc && loc->known) {
    e->loc = l;
    if (!l.present) memset(&e->loc, 0, sizeof e->loc), e->loc.known = 1;
  }
  if (s3 && s3->known) {
    e->s3 = *s3;
    e->s3_differs = 0;
    if (!s3->present) memset(&e->s3, 0, sizeof e->s3), e->s3.known = 1;
  }
  return derive(m, i, err);
}

/* Check a new filename: one safe component, an image, not present. */
static int check_new_name(const tdm_manifest *m, const char *filename,
                          tdm_error *err) {
  if (tdm_check_name(filename, strlen(filename), "filename", err) != TDM_OK)
    return TDM_ERR;
  if (!tdm_is_image_name(filename))
    return tdm_error_set(err, "EBADNAME", "filename '%s' is not an image "
                         "(.jpg .jpeg .png .webp)", filename);
  if (tdm_manifest_find(m, filename) >= 0)
    return tdm_error_set(err, "EEXIST", "%s is already in manifest %s",
                         filename, m->path);
  return TDM_OK;
}

/* Insert an entry with the seed's keys in order, facts absent, after the
 * last entry that sorts before it (a sorted list stays sorted; the order
 * of existing entries is never changed). Its index goes to *pos. */
static int insert_entry(tdm_manifest *m, const char *filename, size_t *pos,
                        tdm_error *err) {
  static const char *const keys[] = {"local_path", "s3_url", "md5_hash"};
  json_t *obj = json_object();
  size_t at = m->n;
  int k;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    tdm_mentry *p = realloc(m->ents, cap * sizeof *p);
    if (!p) {
      json_decref(obj);
      return tdm_error_set(err, "ENOMEM", "out of memory");
    }
    m->ents = p;
    m->cap = cap;
  }
  if (!obj) return tdm_error_set(err, "ENOMEM", "out of memory");
  json_object_set_new(obj, "filename", json_string(filename));
  for (k = 0; k < 3; k++) json_object_set_new(obj, keys[k], json_string(""));
  json_object_set_new(obj, "size_bytes", json_integer(0));
  json_object_set_new(obj, "size_mb", json_real(0));
  json_object_set_new(obj, "modified_timestamp", json_real(0));
  json_object_set_new(obj, "modified_date", json_string(""));
  json_object_set_new(obj, "status", json_string("missing"));
  while (at > 0 && tdm_layout_entry_cmp(json_string_value(json_object_get(
             json_array_get(m->list, at - 1), "filename")), filename) > 0)
    at--;
  if (json_array_insert_new(m->list, at, obj) != 0)
    return tdm_error_set(err, "ENOMEM", "out of memory");
  memmove(&m->ents[at + 1], &m->ents[at], (m->n - at) * sizeof *m->ents);
  memset(&m->ents[at], 0, sizeof m->ents[at]);
  m->ents[at].loc.known = m->ents[at].s3.known = 1;
  m->n++;
  m->changed = 1;
  *pos = at;
  return TDM_OK;
}

static void drop_entry(tdm_manifest *m, size_t i) {
  json_array_remove(m->list, i);
  memmove(&m->ents[i], &m->ents[i + 1], (m->n - i - 1) * sizeof *m->ents);
  m->n--;
}

int tdm_manifest_add(tdm_manifest *m, const char *filename,
                     const tdm_fact *local, const tdm_fact *s3,
                     tdm_error *err) {
  int was_changed = m->changed;
  size_t at = 0;
  if (check_new_name(m, filename, err) != TDM_OK ||
      insert_entry(m, filename, &at, err) != TDM_OK)
    return TDM_ERR;
  if (tdm_manifest_set_facts(m, at, local, s3, err) != TDM_OK) {
    drop_entry(m, at);
    m->changed = was_changed;
    return TDM_ERR;
  }
  return TDM_OK;
}

int tdm_manifest_update(tdm_manifest *m, const char *filename,
                        const tdm_fact *local, const tdm_fact *s3,
                        tdm_error *err) {
  long i = tdm_manifest_find(m, filename);
  if (i < 0)
    return tdm_error_set(err, "ENOENT", "%s is not in manifest %s", filename,
                         m->path);
  return tdm_manifest_set_facts(m, (size_t)i, local, s3, err);
}

int tdm_manifest_remove(tdm_manifest *m, const char *filename,
                        tdm_error *err) {
  long i = tdm_manifest_find(m, filename);
  if (i < 0)
    return tdm_error_set(err, "ENOENT", "%s is not in manifest %s", filename,
                         m->path);
  drop_entry(m, (size_t)i);
  m->changed = 1;
  return TDM_OK;
}

/* ---- save ---- */

/* Recompute statistics and training_data_updated in the document. */
static int refresh_invariants(tdm_manifest *m, double now) {
  tdm_manifest_stats s;
  json_t *st = json_object_get(m->root, "statistics");
  char date[40];
  int k, rc = 0;
  tdm_manifest_statistics(m, &s);
  if (!json_is_object(st)) {
    st = json_object();
    if (!st || json_object_set_new(m->root, "statistics", st) != 0)
      return -1;
  }
  rc |= json_object_set_new(st, "training_images_count",
                            json_integer(s.images));
  rc |= json_object_set_new(st, "training_data_size_mb",
                            json_real(s.size_mb));
  for (k = 0; k < TDM_ST_COUNT; k++)
    rc |= json_object_set_new(st, tdm_stat_count_key((tdm_status)k),
                              json_integer(s.count[k]));
  tdm_format_utc(now, date, sizeof date);
  rc |= json_object_set_new(m->root, "training_data_updated",
                            json_string(date));
  return rc;
}

int tdm_manifest_encode(tdm_manifest *m, tdm_buf *out, tdm_error *err) {
  if (tdm_manifest_dirty(m) && refresh_invariants(m, now_ts()) != 0)
    return tdm_error_set(err, "ENOMEM", "out of memory");
  return tdm_json_write(m->root, out, err);
}

/* A save needs a manifest opened for writing, with its lock held. */
static int check_writable(const tdm_manifest *m, tdm_error *err) {
  if (m->read_only)
    return tdm_error_set(err, "EROFS", "manifest %s was opened read-only",
                         m->path);
  if (m->lockfd < 0)
    return tdm_error_set(err, "EINVAL", "manifest %s is not locked",
                         m->path);
  return TDM_OK;
}

int tdm_manifest_save(tdm_manifest *m, int *written, tdm_error *err) {
  tdm_buf b;
  double now = now_ts();
  *written = 0;
  if (check_writable(m, err) != TDM_OK) return TDM_ERR;
  if (!tdm_manifest_dirty(m)) return TDM_OK;
  if (refresh_invariants(m, now) != 0)
    return tdm_error_set(err, "ENOMEM", "out of memory");
  tdm_buf_init(&b, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  if (tdm_json_write(m->root, &b, err) != TDM_OK ||
      tdm_atomic_write(m->path, b.data ? b.data : "", b.len, err)
      != TDM_OK) {
    tdm_buf_free(&b);
    return TDM_ERR;
  }
  tdm_buf_free(&b);
  m->changed = m->stale = 0;
  m->existed = 1;
  m->updated_ts = now;
  *written = 1;
  return TDM_OK;
}

int tdm_manifest_add_many(tdm_manifest *m, size_t n,
                          const char *const *filenames,
                          const tdm_fact *locals, const tdm_fact *s3s,
                          tdm_error *err) {
  size_t i, j;
  int was_changed = m->changed;
  for (i = 0; i < n; i++) {
    if (check_new_name(m, filenames[i], err) != TDM_OK) return TDM_ERR;
    for (j = 0; j < i; j++)
      if (strcmp(filenames[j], filenames[i]) == 0)
        return tdm_error_set(err, "EEXIST", "%s is listed twice",
                             filenames[i]);
  }
  for (i = 0; i < n; i++) {
    if (tdm_manifest_add(m, filenames[i], locals ? &locals[i] : NULL,
                         s3s ? &s3s[i] : NULL, err) != TDM_OK) {
      for (j = 0; j < i; j++)
        drop_entry(m, (size_t)tdm_manifest_find(m, filenames[j]));
      m->changed = was_changed;
      return TDM_ERR;
    }
  }
  return TDM_OK;
}

/* ---- background saves --------------------------------------------------- */

#define SAVER_MAX_THREADS 16

/* One handed-over save: the encoded document, where it goes, and the lock
 * fd to release once it is there. */
typedef struct save_job {
  struct save_job *next;
  char path[TDM_PATH_MAX];
  char actor_name[TDM_NAME_MAX + 1];
  int lockfd;
  tdm_buf doc;
} save_job;

typedef struct failure_node {
  struct failure_node *next;
  tdm_saver_failure f;
} failure_node;

struct tdm_saver {
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  pthread_t th[SAVER_MAX_THREADS];
  int want, nth, stop;
  size_t max_pending;
  save_job *head, *tail;       /* queued, not taken by a writer */
  size_t pending;              /* queued + being written */
  failure_node *fail_head, *fail_tail;
  size_t nfail;
};

/* Record the failure of job `j` (called with s->mu held). */
static void saver_record_failure(tdm_saver *s, const save_job *j,
                                 const tdm_error *e) {
  failure_node *n = calloc(1, sizeof *n);
  if (!n) return;              /* out of memory: the failure is lost */
  snprintf(n->f.actor_name, sizeof n->f.actor_name, "%s", j->actor_name);
  snprintf(n->f.path, sizeof n->f.path, "%s", j->path);
  n->f.err = *e;
  if (s->fail_tail) s->fail_tail->next = n;
  else s->fail_head = n;
  s->fail_tail = n;
  s->nfail++;
}

/* A writer: take jobs until stopped and idle; write each atomically, then
 * release its lock (after the rename and the directory fsync, so no one
 * else can lock the manifest before the new version is durable). */
static void *saver_thread(void *ud) {
  tdm_saver *s = ud;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    save_job *j;
    tdm_error e;
    int rc;
    while (!s->stop && !s->head) pthread_cond_wait(&s->cv_work, &s->mu);
    if (!s->head) break;
    j = s->head;
    s->head = j->next;
    if (!s->head) s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    rc = tdm_atomic_write(j->path, j->doc.data ? j->doc.data : "",
                          j->doc.len, &e);
    tdm_lock_release(j->lockfd);
    tdm_buf_free(&j->doc);
    pthread_mutex_lock(&s->mu);
    if (rc != TDM_OK) saver_record_failure(s, j, &e);
    free(j);
    s->pending--;
    pthread_cond_broadcast(&s->cv_done);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int tdm_saver_new(tdm_saver **out, int threads, int max_pending,
                  tdm_error *err) {
  tdm_saver *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return tdm_error_set(err, "ENOMEM", "out of memory");
  if (threads < 1) threads = 1;
  if (threads > SAVER_MAX_THREADS) threads = SAVER_MAX_THREADS;
  s->want = threads;
  s->max_pending = max_pending > 0 ? (size_t)max_pending : 64;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    free(s);
    return tdm_error_set(err, "ENOMEM", "saver: cannot make a mutex");
  }
  pthread_cond_init(&s->cv_work, NULL);
  pthread_cond_init(&s->cv_done, NULL);
  *out = s;
  return TDM_OK;
}

/* Start the writers (first use). With none startable, saves are written
 * by the caller (returns 0). Called with s->mu held. */
static int saver_start(tdm_saver *s) {
  while (s->nth < s->want &&
         pthread_create(&s->th[s->nth], NULL, saver_thread, s) == 0)
    s->nth++;
  return s->nth > 0;
}

int tdm_manifest_save_async(tdm_manifest *m, tdm_saver *s, int *written,
                            tdm_error *err) {
  save_job *j;
  double now = now_ts();
  *written = 0;
  if (check_writable(m, err) != TDM_OK) return TDM_ERR;
  if (!tdm_manifest_dirty(m)) return TDM_OK;
  if (refresh_invariants(m, now) != 0 || !(j = calloc(1, sizeof *j)))
    return tdm_error_set(err, "ENOMEM", "out of memory");
  tdm_buf_init(&j->doc, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  if (tdm_json_write(m->root, &j->doc, err) != TDM_OK) {
    tdm_buf_free(&j->doc);
    free(j);
    return TDM_ERR;
  }
  snprintf(j->path, sizeof j->path, "%s", m->path);
  snprintf(j->actor_name, sizeof j->actor_name, "%s", m->actor_name);
  pthread_mutex_lock(&s->mu);
  if (!saver_start(s)) {
    /* no thread: an ordinary synchronous save */
    int rc;
    pthread_mutex_unlock(&s->mu);
    rc = tdm_atomic_write(j->path, j->doc.data ? j->doc.data : "",
                          j->doc.len, err);
    tdm_buf_free(&j->doc);
    free(j);
    if (rc != TDM_OK) return TDM_ERR;
  } else {
    while (s->pending >= s->max_pending)
      pthread_cond_wait(&s->cv_done, &s->mu);
    j->lockfd = m->lockfd;     /* the lock goes with the document */
    m->lockfd = -1;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->pending++;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
  }
  m->changed = m->stale = 0;
  m->existed = 1;
  m->updated_ts = now;
  *written = 1;
  return TDM_OK;
}

size_t tdm_saver_wait(tdm_saver *s) {
  size_t n;
  pthread_mutex_lock(&s->mu);
  while (s->pending > 0) pthread_cond_wait(&s->cv_done, &s->mu);
  n = s->nfail;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t tdm_saver_pending(tdm_saver *s) {
  size_t n;
  pthread_mutex_lock(&s->mu);
  n = s->pending;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t tdm_saver_take_failures(tdm_saver *s, tdm_saver_failure *out,
                               size_t max) {
  size_t k = 0;
  pthread_mutex_lock(&s->mu);
  while (k < max && s->fail_head) {
    failure_node *n = s->fail_head;
    s->fail_head = n->next;
    if (!s->fail_head) s->fail_tail = NULL;
    out[k++] = n->f;
    free(n);
    s->nfail--;
  }
  pthread_mutex_unlock(&s->mu);
  return k;
}

void tdm_saver_free(tdm_saver *s) {
  int i;
  if (!s) return;
  tdm_saver_wait(s);
  pthread_mutex_lock(&s->mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->cv_work);
  pthread_mutex_unlock(&s->mu);
  for (i = 0; i < s->nth; i++) pthread_join(s->th[i], NULL);
  while (s->fail_head) {
    failure_node *n = s->fail_head;
    s->fail_head = n->next;
    free(n);
  }
  pthread_cond_destroy(&s->cv_work);
  pthread_cond_destroy(&s->cv_done);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
