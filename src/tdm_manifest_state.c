/* tdm_manifest_state.c -- the sidecar beside a manifest: the local hash
 * cache keyed as git keys its index (device, inode, size, mtime ns, ctime
 * ns) and what vouched for S3 objects' MD5s; plus hashing that belongs to
 * one version of a file.
 *
 * The sidecar is text, one record a line, fields separated by tabs
 * (filenames are checked names: no tab, no newline):
 *
 *   tdm-state 1 WRITTEN              (epoch seconds, %.6f)
 *   L FILENAME DEV INO SIZE MTIME_NS CTIME_NS MD5
 *   S FILENAME ETAG MD5 SOURCE
 *   end N                            (N records: a cut file is refused)
 *
 * Anything unexpected discards the whole file: it only costs re-hashing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tdm_manifest_int.h"

#define STATE_MAGIC "tdm-state 1 "
/* How close to the sidecar's writing a file time counts as racy (see
 * tdm_state_vouches): file systems with whole-second times (ext3, HFS+,
 * FAT's 2 s) need 2 s; nanosecond times come from the kernel's coarse
 * clock, whose tick is at most 10 ms. */
#define RACY_COARSE_NS INT64_C(2000000000)
#define RACY_FINE_NS INT64_C(20000000)

static int64_t ns_of(const struct timespec *ts) {
  return (int64_t)ts->tv_sec * INT64_C(1000000000) + (int64_t)ts->tv_nsec;
}

int tdm_same_stat(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size &&
         ns_of(&a->st_mtim) == ns_of(&b->st_mtim) &&
         ns_of(&a->st_ctim) == ns_of(&b->st_ctim);
}

int tdm_hash_stable(const char *path, int tries, char *md5,
                    struct stat *after, tdm_error *err) {
  struct stat before;
  uint64_t size;
  int k;
  if (tries < 1) tries = 1;
  for (k = 0; k < tries; k++) {
    if (lstat(path, &before) != 0)
      return tdm_error_errno(err, errno, "stat %s", path);
    if (!S_ISREG(before.st_mode))
      return tdm_error_set(err, "EINVAL", "%s is not a regular file", path);
    if (tdm_md5_file(path, md5, &size, err) != TDM_OK) return TDM_ERR;
    if (lstat(path, after) != 0)
      return tdm_error_errno(err, errno, "stat %s", path);
    if (tdm_same_stat(&before, after) && (uint64_t)after->st_size == size)
      return TDM_OK;
  }
  return tdm_error_set(err, "ECHANGING", "%s changed while it was hashed "
                       "(%d tries); left as it was", path, tries);
}

int tdm_state_vouches(const tdm_manifest *m, size_t i,
                      const struct stat *st) {
  const tdm_mentry *e = &m->ents[i];
  int64_t written, window;
  if (!e->rec.have || m->state_ts < 0 || !e->loc.present ||
      strcmp(e->rec.md5, e->loc.md5) != 0)
    return 0;
  if (e->rec.dev != (uint64_t)st->st_dev ||
      e->rec.ino != (uint64_t)st->st_ino ||
      e->rec.size != (int64_t)st->st_size ||
      e->rec.mtime_ns != ns_of(&st->st_mtim) ||
      e->rec.ctime_ns != ns_of(&st->st_ctim))
    return 0;
  /* A change made in the instant the record was taken could leave the
   * mtime equal: only an mtime older than the sidecar by the window
   * vouches (git's racy rule, which also looks at the mtime only: a
   * download's mtime is the object's Last-Modified, its ctime is now) */
  written = (int64_t)(m->state_ts * 1e9);
  /* the ctime, set by the kernel, shows the file system's granularity
   * (an mtime may have been set to whole seconds, as downloads do) */
  window = e->rec.ctime_ns % 1000000000 ? RACY_FINE_NS : RACY_COARSE_NS;
  return e->rec.mtime_ns < written - window;
}

void tdm_state_record(tdm_manifest *m, size_t i, const struct stat *st,
                      const char *md5) {
  tdm_statrec *r = &m->ents[i].rec;
  tdm_statrec n;
  memset(&n, 0, sizeof n);
  n.have = 1;
  n.dev = (uint64_t)st->st_dev;
  n.ino = (uint64_t)st->st_ino;
  n.size = (int64_t)st->st_size;
  n.mtime_ns = ns_of(&st->st_mtim);
  n.ctime_ns = ns_of(&st->st_ctim);
  snprintf(n.md5, sizeof n.md5, "%s", md5);
  /* re-recording the same stat still rewrites the sidecar: its newer
   * stamp is what lets a racy record vouch next time */
  *r = n;
  m->state_dirty = 1;
}

/* ---- S3 memo ---------------------------------------------------------- */

/* A field the sidecar can hold: non-empty, < max bytes, no control
 * characters or spaces. */
static int plain_field(const char *s, size_t max) {
  size_t n = strlen(s), i;
  if (n == 0 || n >= max) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return 0;
  return 1;
}

static int hex32(const char *s) {
  size_t i;
  if (strlen(s) != TDM_MD5_HEX_LEN) return 0;
  for (i = 0; i < TDM_MD5_HEX_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

int tdm_manifest_s3_memo(const tdm_manifest *m, const char *filename,
                         const char *etag, char *md5, char *source) {
  long i = tdm_manifest_find(m, filename);
  const tdm_s3memo *s;
  if (i < 0 || !etag) return 0;
  s = &m->ents[i].memo;
  if (!s->etag[0] || strcmp(s->etag, etag) != 0) return 0;
  memcpy(md5, s->md5, sizeof s->md5);
  if (source) memcpy(source, s->source, sizeof s->source);
  return 1;
}

int tdm_manifest_set_s3_memo(tdm_manifest *m, const char *filename,
                             const char *etag, const char *md5,
                             const char *source, tdm_error *err) {
  long i = tdm_manifest_find(m, filename);
  tdm_s3memo *s;
  if (i < 0)
    return tdm_error_set(err, "ENOENT", "%s is not in manifest %s",
                         filename, m->path);
  if (!plain_field(etag, TDM_ETAG_MAX))
    return tdm_error_set(err, "EINVAL", "S3 memo of %s: malformed ETag",
                         filename);
  if (!hex32(md5))
    return tdm_error_set(err, "EINVAL", "S3 memo of %s: md5 '%s' is not 32 "
                         "lower-case hex digits", filename, md5);
  if (!plain_field(source, TDM_MEMO_SOURCE_MAX))
    return tdm_error_set(err, "EINVAL", "S3 memo of %s: source must be one "
                         "word of at most %d bytes", filename,
                         TDM_MEMO_SOURCE_MAX - 1);
  s = &m->ents[i].memo;
  if (strcmp(s->etag, etag) == 0 && strcmp(s->md5, md5) == 0 &&
      strcmp(s->source, source) == 0)
    return TDM_OK;
  snprintf(s->etag, sizeof s->etag, "%s", etag);
  snprintf(s->md5, sizeof s->md5, "%s", md5);
  snprintf(s->source, sizeof s->source, "%s", source);
  m->state_dirty = 1;
  return TDM_OK;
}

/* ---- encode / load ---------------------------------------------------- */

int tdm_state_encode(const tdm_manifest *m, double now, tdm_buf *out,
                     tdm_error *err) {
  size_t i, n = 0;
  if (tdm_buf_printf(out, err, STATE_MAGIC "%.6f\n", now) != TDM_OK)
    return TDM_ERR;
  for (i = 0; i < m->n; i++) {
    const tdm_mentry *e = &m->ents[i];
    const char *fn = json_string_value(
        json_object_get(json_array_get(m->list, i), "filename"));
    if (e->rec.have && e->loc.present) {
      if (tdm_buf_printf(out, err, "L\t%s\t%" PRIu64 "\t%" PRIu64 "\t%"
                         PRId64 "\t%" PRId64 "\t%" PRId64 "\t%s\n", fn,
                         e->rec.dev, e->rec.ino, e->rec.size,
                         e->rec.mtime_ns, e->rec.ctime_ns, e->rec.md5)
          != TDM_OK)
        return TDM_ERR;
      n++;
    }
    if (e->memo.etag[0]) {
      if (tdm_buf_printf(out, err, "S\t%s\t%s\t%s\t%s\n", fn, e->memo.etag,
                         e->memo.md5, e->memo.source) != TDM_OK)
        return TDM_ERR;
      n++;
    }
  }
  return tdm_buf_printf(out, err, "end %zu\n", n);
}

/* Split `line` at tabs into at most `max` fields; returns the count. */
static int split_tabs(char *line, char **f, int max) {
  int n = 0;
  char *p = line;
  while (n < max) {
    char *t = strchr(p, '\t');
    f[n++] = p;
    if (!t) break;
    *t = '\0';
    p = t + 1;
  }
  return strchr(p, '\t') ? max + 1 : n;
}

static int parse_i64(const char *s, int64_t *v) {
  char *end;
  long long x;
  errno = 0;
  x = strtoll(s, &end, 10);
  if (errno || end == s || *end) return 0;
  *v = (int64_t)x;
  return 1;
}

static int parse_u64(const char *s, uint64_t *v) {
  char *end;
  unsigned long long x;
  errno = 0;
  if (*s == '-') return 0;
  x = strtoull(s, &end, 10);
  if (errno || end == s || *end) return 0;
  *v = (uint64_t)x;
  return 1;
}

/* The entry named fn, trying `*hint` first (the sidecar is written in
 * entry order, so the next entry is usually the one). */
static long find_near(const tdm_manifest *m, const char *fn, size_t *hint) {
  long i;
  if (*hint < m->n && strcmp(json_string_value(json_object_get(
          json_array_get(m->list, *hint), "filename")), fn) == 0)
    i = (long)*hint;
  else
    i = tdm_manifest_find(m, fn);
  if (i >= 0) *hint = (size_t)i;
  return i;
}

/* Parse `text` into tmp[] (one per entry). 0 when anything is off. */
static int parse_state(const tdm_manifest *m, char *text, tdm_mentry *tmp,
                       double *ts) {
  char *line = text, *nl, *f[9];
  size_t hint = 0, count = 0, want;
  int ended = 0;
  if (strncmp(text, STATE_MAGIC, strlen(STATE_MAGIC)) != 0) return 0;
  nl = strchr(text, '\n');
  if (!nl) return 0;
  *nl = '\0';
  *ts = strtod(text + strlen(STATE_MAGIC), NULL);
  if (!(*ts > 0)) return 0;
  for (line = nl + 1; *line; line = nl + 1) {
    int nf;
    long i;
    if (ended || !(nl = strchr(line, '\n'))) return 0;
    *nl = '\0';
    if (sscanf(line, "end %zu", &want) == 1) {
      if (want != count) return 0;
      ended = 1;
      continue;
    }
    nf = split_tabs(line, f, 8);
    if (nf == 8 && strcmp(f[0], "L") == 0) {
      tdm_statrec r;
      memset(&r, 0, sizeof r);
      if (!parse_u64(f[2], &r.dev) || !parse_u64(f[3], &r.ino) ||
          !parse_i64(f[4], &r.size) || !parse_i64(f[5], &r.mtime_ns) ||
          !parse_i64(f[6], &r.ctime_ns) || !hex32(f[7]))
        return 0;
      memcpy(r.md5, f[7], sizeof r.md5);
      r.have = 1;
      if ((i = find_near(m, f[1], &hint)) >= 0) tmp[i].rec = r;
    } else if (nf == 5 && strcmp(f[0], "S") == 0) {
      if (!plain_field(f[2], TDM_ETAG_MAX) || !hex32(f[3]) ||
          !plain_field(f[4], TDM_MEMO_SOURCE_MAX))
        return 0;
      if ((i = find_near(m, f[1], &hint)) >= 0) {
        snprintf(tmp[i].memo.etag, sizeof tmp[i].memo.etag, "%s", f[2]);
        memcpy(tmp[i].memo.md5, f[3], TDM_MD5_HEX_LEN + 1);
        snprintf(tmp[i].memo.source, sizeof tmp[i].memo.source, "%s", f[4]);
      }
    } else {
      return 0;
    }
    count++;
  }
  return ended;
}

void tdm_state_load(tdm_manifest *m) {
  char *text = NULL;
  size_t len, i;
  tdm_error err;
  tdm_mentry *tmp;
  double ts = -1;
  m->state_ts = -1;
  if (m->n == 0 ||
      tdm_manifest_slurp(m->statepath, &text, &len, &err) != TDM_OK)
    return;
  tmp = calloc(m->n, sizeof *tmp);
  if (tmp && strlen(text) == len && parse_state(m, text, tmp, &ts)) {
    for (i = 0; i < m->n; i++) {
      m->ents[i].rec = tmp[i].rec;
      m->ents[i].memo = tmp[i].memo;
    }
    m->state_ts = ts;
  }
  free(tmp);
  free(text);
}
