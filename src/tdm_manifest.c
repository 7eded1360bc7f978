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

double tdm_manifest_now(void) {
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

/* Write entry i's local_path in the seed's form when it holds another
 * spelling (an absolute root, written by an older tdm): the next save
 * rewrites it, once. */
int tdm_manifest_canonical_local_path(tdm_manifest *m, size_t i,
                                       tdm_error *err) {
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

/* Fill a present local fact's missing MD5/size/mtime from the file, and
 * the hash cache record *rec when a stat of the file vouches for the
 * fact's MD5 (hashed here from one version of the file, or a given MD5
 * whose size and mtime the file still has). */
static int complete_local(tdm_manifest *m, const char *fn, tdm_fact *f,
                          tdm_statrec *rec, tdm_error *err) {
  char path[TDM_PATH_MAX];
  struct stat st;
  rec->have = 0;
  if (!f->known || !f->present) return TDM_OK;
  if (check_md5(f->md5, "local md5", err) != TDM_OK) return TDM_ERR;
  if (tdm_manifest_file_path(m, fn, path, sizeof path, err) != TDM_OK)
    return TDM_ERR;
  if (!f->md5[0]) {
    if (tdm_hash_stable(path, 3, f->md5, &st, err) != TDM_OK)
      return TDM_ERR;
  } else if (lstat(path, &st) != 0) {
    /* the caller vouches for what it hashed; nothing to record */
    if (f->has_size && f->has_mtime) return TDM_OK;
    return tdm_error_errno(err, errno, "stat %s", path);
  } else if ((f->has_size && f->size != (int64_t)st.st_size) ||
             (f->has_mtime && fabs(f->mtime - ((double)st.st_mtim.tv_sec +
              (double)st.st_mtim.tv_nsec * 1e-9)) > 1e-6)) {
    return TDM_OK;            /* changed since: the next scan hashes it */
  }
  if (!f->has_size) {
    f->has_size = 1;
    f->size = (int64_t)st.st_size;
  }
  if (!f->has_mtime) {
    f->has_mtime = 1;
    f->mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
  }
  if (S_ISREG(st.st_mode)) {
    memset(rec, 0, sizeof *rec);
    rec->have = 1;
    rec->dev = (uint64_t)st.st_dev;
    rec->ino = (uint64_t)st.st_ino;
    rec->size = (int64_t)st.st_size;
    rec->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
                    st.st_mtim.tv_nsec;
    rec->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 +
                    st.st_ctim.tv_nsec;
    memcpy(rec->md5, f->md5, sizeof rec->md5);
  }
  return TDM_OK;
}

int tdm_manifest_set_facts(tdm_manifest *m, size_t i, const tdm_fact *loc,
                           const tdm_fact *s3, tdm_error *err) {
  tdm_mentry *e = &m->ents[i];
  const char *fn = json_string_value(
      json_object_get(json_array_get(m->list, i), "filename"));
  tdm_fact l;
  tdm_statrec rec;
  if (loc && loc->known) {
    l = *loc;
    if (complete_local(m, fn, &l, &rec, err) != TDM_OK) return TDM_ERR;
  }
  if (s3 && s3->known && check_md5(s3->md5, "S3 md5", err) != TDM_OK)
    return TDM_ERR;
  if (loc && loc->known) {
    e->loc = l;
    if (!l.present) memset(&e->loc, 0, sizeof e->loc), e->loc.known = 1;
    if (rec.have) {
      e->rec = rec;
      m->state_dirty = 1;
    } else if (e->rec.have && (!l.present ||
                               strcmp(e->rec.md5, l.md5) != 0)) {
      e->rec.have = 0;        /* no longer true of the file */
      m->state_dirty = 1;
    }
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

