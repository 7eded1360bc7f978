/* tdm_manifest_scan.c -- bring a manifest's local facts up to date with
 * the actor's training_data/ directory, hashing only what size+mtime (and
 * the racy rule) cannot vouch for, on several threads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tdm_manifest_int.h"

/* One image file found in the directory. */
typedef struct sfile {
  char name[TDM_NAME_MAX + 1];
  int64_t size;
  double mtime;
  long entry;          /* index in the manifest, -1 for a new file */
  int need_hash;
  int ok;              /* hashed (or reused) fine */
  char md5[TDM_MD5_HEX_LEN + 1];
  char reason[256];    /* why skipped */
} sfile;

typedef struct flist {
  sfile *v;
  size_t n, cap;
  const char *dir;
  tdm_error *err;
} flist;

/* Add an image file name of the directory to the list (others are
 * ignored). */
static int collect(const char *name, flist *l) {
  size_t len;
  sfile *f;
  if (!tdm_is_image_name(name)) return 0;
  len = strlen(name);
  if (len > TDM_NAME_MAX || strlen(l->dir) + len + 2 > TDM_PATH_MAX)
    return tdm_error_errno(l->err, ENAMETOOLONG, "path of %s", name);
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 32;
    sfile *p = realloc(l->v, cap * sizeof *p);
    if (!p) return tdm_error_set(l->err, "ENOMEM", "out of memory");
    l->v = p;
    l->cap = cap;
  }
  f = &l->v[l->n];
  /* the fields the scan reads before it sets them */
  f->need_hash = f->ok = 0;
  f->md5[0] = f->reason[0] = '\0';
  memcpy(f->name, name, len + 1);
  l->n++;
  return 0;
}

static double mtime_of(const struct stat *st) {
  return (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec * 1e-9;
}

/* Work shared by the hashing threads: the next file to take. */
typedef struct hwork {
  flist *files;
  size_t next;
  pthread_mutex_t mu;
  int stop;
} hwork;

/* Hash the files marked need_hash; a file that vanished or changed
 * underneath is marked skipped with a reason. No Lua, no shared state
 * except the claim counter. */
static void *hash_worker(void *arg) {
  hwork *w = arg;
  for (;;) {
    size_t i;
    sfile *f;
    tdm_error err;
    uint64_t size;
    struct stat st;
    char path[TDM_PATH_MAX];
    pthread_mutex_lock(&w->mu);
    while (w->next < w->files->n && !w->files->v[w->next].need_hash)
      w->next++;
    i = w->next++;
    if (tdm_interrupted()) w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    if (i >= w->files->n || w->stop) break;
    f = &w->files->v[i];
    if (snprintf(path, sizeof path, "%s/%s", w->files->dir, f->name)
        >= (int)sizeof path) {
      snprintf(f->reason, sizeof f->reason, "path too long");
      continue;
    }
    if (tdm_md5_file(path, f->md5, &size, &err) != TDM_OK) {
      snprintf(f->reason, sizeof f->reason, "%.200s", err.message);
      continue;
    }
    if (stat(path, &st) != 0) {
      snprintf(f->reason, sizeof f->reason, "vanished while hashing");
      continue;
    }
    if ((uint64_t)st.st_size != size) {
      snprintf(f->reason, sizeof f->reason, "changed while hashing");
      continue;
    }
    f->size = (int64_t)size;
    f->mtime = mtime_of(&st);
    f->ok = 1;
  }
  return NULL;
}

static int push_item(tdm_scan_item **v, size_t *n, const char *name,
                     const char *reason, tdm_error *err) {
  tdm_scan_item *p = realloc(*v, (*n + 1) * sizeof *p);
  if (!p) return tdm_error_set(err, "ENOMEM", "out of memory");
  *v = p;
  snprintf(p[*n].name, sizeof p[*n].name, "%s", name);
  snprintf(p[*n].reason, sizeof p[*n].reason, "%s", reason ? reason : "");
  (*n)++;
  return TDM_OK;
}

void tdm_scan_report_free(tdm_scan_report *rep) {
  free(rep->added);
  free(rep->changed);
  free(rep->vanished);
  free(rep->skipped);
  memset(rep, 0, sizeof *rep);
}

/* Hash every need_hash file on `jobs` threads (the caller's thread is
 * one of them). */
static int hash_all(flist *files, int jobs, tdm_error *err) {
  hwork w;
  pthread_t th[16];
  int k, started = 0;
  size_t i, todo = 0;
  for (i = 0; i < files->n; i++) todo += files->v[i].need_hash != 0;
  if (todo == 0) return TDM_OK;  /* the warm case: no thread at all */
  if ((size_t)jobs > todo) jobs = (int)todo;
  w.files = files;
  w.next = 0;
  w.stop = 0;
  if (jobs < 1) jobs = 1;
  if (jobs > 16) jobs = 16;
  pthread_mutex_init(&w.mu, NULL);
  for (k = 1; k < jobs; k++) {
    if (pthread_create(&th[started], NULL, hash_worker, &w) != 0) break;
    started++;
  }
  hash_worker(&w);
  for (k = 0; k < started; k++) pthread_join(th[k], NULL);
  pthread_mutex_destroy(&w.mu);
  if (w.stop) return tdm_error_set(err, "EINTR", "scan interrupted");
  return TDM_OK;
}

/* The local fact of a listed, hashed (or vouched for) file. */
static void local_fact(const sfile *f, tdm_fact *loc) {
  memset(loc, 0, sizeof *loc);
  loc->known = loc->present = loc->has_size = loc->has_mtime = 1;
  loc->size = f->size;
  loc->mtime = f->mtime;
  memcpy(loc->md5, f->md5, sizeof loc->md5);
}

/* Listed files by the _N index of their name, then by name. */
static long sfile_index(const char *fn) {
  const char *dot = strrchr(fn, '.'), *p;
  long v = 0, mul = 1;
  if (!dot || dot == fn) return -1;
  for (p = dot - 1; p > fn && *p >= '0' && *p <= '9'; p--) {
    if (mul > 100000000L) return -1;
    v += (*p - '0') * mul;
    mul *= 10;
  }
  if (p == dot - 1 || *p != '_') return -1;
  return v;
}

static int cmp_sfile(const void *a, const void *b) {
  const sfile *x = a, *y = b;
  long ix = sfile_index(x->name), iy = sfile_index(y->name);
  if ((ix >= 0) != (iy >= 0)) return ix >= 0 ? -1 : 1;
  if (ix != iy) return ix < iy ? -1 : 1;
  return strcmp(x->name, y->name);
}

int tdm_manifest_scan(tdm_manifest *m, int verify, int jobs,
                      tdm_scan_report *rep, tdm_error *err) {
  char dir[TDM_PATH_MAX];
  flist files;
  size_t i, old_n = 0;
  char *seen = NULL;
  int rc = TDM_ERR;
  size_t n_new = 0;
  DIR *d = NULL;
  tdm_error lerr;
  memset(rep, 0, sizeof *rep);
  memset(&files, 0, sizeof files);
  if (snprintf(dir, sizeof dir, "%s/actors/%s/training_data", m->data_root,
               m->actor_name) >= (int)sizeof dir)
    return tdm_error_errno(err, ENAMETOOLONG, "scan of %s", m->actor_name);
  files.dir = dir;
  files.err = &lerr;
  tdm_error_clear(&lerr);
  /* The directory stays open while its files are stat'ed relative to it
   * (fstatat: no path to build, no walk from the data root per file). */
  d = opendir(dir);
  if (!d) {
    if (errno != ENOENT) {
      tdm_error_errno(err, errno, "list %s", dir);
      goto out;
    }
    /* no directory: no local files */
  } else {
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
      if (collect(de->d_name, &files) != 0) {
        *err = lerr;
        goto out;
      }
      errno = 0;
    }
    if (errno != 0) {
      tdm_error_errno(err, errno, "list %s", dir);
      goto out;
    }
  }
  /* stat each; decide reuse or hash */
  for (i = 0; i < files.n; i++) {
    sfile *f = &files.v[i];
    struct stat st;
    const tdm_mentry *e;
    f->entry = tdm_manifest_find(m, f->name);
    if (fstatat(dirfd(d), f->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      snprintf(f->reason, sizeof f->reason, "vanished before it was read");
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      snprintf(f->reason, sizeof f->reason, "not a regular file");
      continue;
    }
    f->size = (int64_t)st.st_size;
    f->mtime = mtime_of(&st);
    e = f->entry >= 0 ? &m->ents[f->entry] : NULL;
    if (e && !verify && e->loc.present && e->loc.md5[0] &&
        e->loc.size == f->size && fabs(e->loc.mtime - f->mtime) <= 1e-6 &&
        !(m->updated_ts < 0 || f->mtime >= m->updated_ts - 1.0)) {
      memcpy(f->md5, e->loc.md5, sizeof f->md5);
      f->ok = 1;
      rep->reused++;
    } else {
      f->need_hash = 1;
    }
  }
  if (hash_all(&files, jobs, err) != TDM_OK) goto out;
  old_n = m->n;
  seen = calloc(old_n + 1, 1);
  if (!seen) {
    tdm_error_set(err, "ENOMEM", "out of memory");
    goto out;
  }
  /* Existing entries first, while their indexes still hold; new files
   * are inserted afterwards (in index order, see tdm_manifest_add). */
  for (i = 0; i < files.n; i++) {
    sfile *f = &files.v[i];
    tdm_fact loc;
    const tdm_mentry *e;
    int differs;
    if (f->entry >= 0) seen[f->entry] = 1;
    if (!f->ok) {
      if (push_item(&rep->skipped, &rep->n_skipped, f->name, f->reason,
                    err) != TDM_OK)
        goto out;
      continue;
    }
    if (f->need_hash) {
      rep->hashed++;
      rep->bytes_hashed += (uint64_t)f->size;
    }
    if (f->entry < 0) {
      n_new++;
      continue;
    }
    local_fact(f, &loc);
    e = &m->ents[f->entry];
    differs = !e->loc.present || strcmp(e->loc.md5, loc.md5) != 0 ||
              e->loc.size != loc.size ||
              fabs(e->loc.mtime - loc.mtime) > 1e-6;
    /* the warm case: same facts, nothing to derive */
    if (differs && tdm_manifest_set_facts(m, (size_t)f->entry, &loc, NULL,
                                          err) != TDM_OK)
      goto out;
    /* A racily clean file (mtime within a second of the last save) was
     * re-hashed and is unchanged: save again, so that a later
     * training_data_updated vouches for it and the next scan reuses
     * its MD5 instead of re-hashing it on every run. */
    if (!differs && f->need_hash && !verify &&
        (m->updated_ts < 0 || f->mtime >= m->updated_ts - 1.0))
      m->changed = 1;
    if (differs && push_item(&rep->changed, &rep->n_changed, f->name, NULL,
                             err) != TDM_OK)
      goto out;
  }
  /* entries whose local file is gone */
  for (i = 0; i < old_n; i++) {
    tdm_fact loc;
    const char *fn;
    if (seen[i] || !m->ents[i].loc.present) continue;
    fn = json_string_value(json_object_get(json_array_get(m->list, i),
                                           "filename"));
    memset(&loc, 0, sizeof loc);
    loc.known = 1;
    if (push_item(&rep->vanished, &rep->n_vanished, fn, NULL, err) != TDM_OK
        || tdm_manifest_set_facts(m, i, &loc, NULL, err) != TDM_OK)
      goto out;
  }
  /* new files: local only until someone reports S3 facts */
  if (n_new > 0 && files.n > 1)
    qsort(files.v, files.n, sizeof *files.v, cmp_sfile);
  for (i = 0; i < files.n; i++) {
    sfile *f = &files.v[i];
    tdm_fact loc, s3;
    if (f->entry >= 0 || !f->ok) continue;
    local_fact(f, &loc);
    memset(&s3, 0, sizeof s3);
    s3.known = 1;
    if (tdm_manifest_add(m, f->name, &loc, &s3, err) != TDM_OK ||
        push_item(&rep->added, &rep->n_added, f->name, NULL, err)
        != TDM_OK)
      goto out;
  }
  rc = TDM_OK;
out:
  if (d) closedir(d);
  free(seen);
  free(files.v);
  if (rc != TDM_OK) tdm_scan_report_free(rep);
  return rc;
}
