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
#include <time.h>

#include "tdm_manifest_int.h"

/* Times a file that changes while it is hashed is hashed again. */
#define HASH_TRIES 3

/* One image file found in the directory. */
typedef struct sfile {
  char name[TDM_NAME_MAX + 1];
  int64_t size;
  double mtime;
  long entry;          /* index in the manifest, -1 for a new file */
  int need_hash;
  int ok;              /* hashed (or reused) fine */
  int changing;        /* kept changing while hashed */
  struct stat st;      /* as the scan found it */
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
  f->need_hash = f->ok = f->changing = 0;
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

/* Hash the files marked need_hash, each from one version of the file
 * (tdm_hash_stable); a file that vanished or kept changing is marked
 * skipped with a reason. No Lua, no shared state except the claim
 * counter. */
static void *hash_worker(void *arg) {
  hwork *w = arg;
  for (;;) {
    size_t i;
    sfile *f;
    tdm_error err;
    char path[TDM_PATH_MAX];
    pthread_mutex_lock(&w->mu);
    while (w->next < w->files->n && (!w->files->v[w->next].need_hash ||
                                     w->files->v[w->next].ok))
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
    if (tdm_hash_stable(path, HASH_TRIES, f->md5, &f->st, &err) != TDM_OK) {
      f->changing = strcmp(err.code, "ECHANGING") == 0;
      if (f->changing)
        snprintf(f->reason, sizeof f->reason, "changed while it was hashed "
                 "(%d tries); entry left as it was", HASH_TRIES);
      else if (strcmp(err.code, "ENOENT") == 0)
        snprintf(f->reason, sizeof f->reason, "vanished while hashing");
      else
        snprintf(f->reason, sizeof f->reason, "%.200s", err.message);
      continue;
    }
    f->size = (int64_t)f->st.st_size;
    f->mtime = mtime_of(&f->st);
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
  for (i = 0; i < files->n; i++)
    todo += files->v[i].need_hash && !files->v[i].ok;
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

/* Listed files in entry order. */
static int cmp_sfile(const void *a, const void *b) {
  const sfile *x = a, *y = b;
  return tdm_layout_entry_cmp(x->name, y->name);
}

static long pre_enter(tdm_prehash *p, const char *dir);
static int pre_take(tdm_prehash *p, long idx, const char *name,
                    const struct stat *st, char *md5);

int tdm_manifest_scan(tdm_manifest *m, int verify, int jobs,
                      tdm_scan_report *rep, tdm_error *err) {
  return tdm_manifest_scan_pre(m, verify, jobs, NULL, rep, err);
}

int tdm_manifest_scan_pre(tdm_manifest *m, int verify, int jobs,
                          tdm_prehash *pre, tdm_scan_report *rep,
                          tdm_error *err) {
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
  if (tdm_layout_actor_dir(m->data_root, m->actor_name, dir, sizeof dir,
                           err) != TDM_OK)
    return TDM_ERR;
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
    f->st = st;
    e = f->entry >= 0 ? &m->ents[f->entry] : NULL;
    /* the hash cache: the sidecar's record of exactly this file (device,
     * inode, size, mtime, ctime), not racy, vouches for the MD5 */
    if (e && !verify && e->loc.present && e->loc.md5[0] &&
        e->loc.size == f->size && fabs(e->loc.mtime - f->mtime) <= 1e-6 &&
        tdm_state_vouches(m, (size_t)f->entry, &st)) {
      memcpy(f->md5, e->loc.md5, sizeof f->md5);
      f->ok = 1;
      rep->reused++;
    } else {
      f->need_hash = 1;
    }
  }
  if (pre) {
    /* MD5s hashed ahead, for exactly these files */
    long idx = pre_enter(pre, dir);
    for (i = 0; idx >= 0 && i < files.n; i++) {
      sfile *f = &files.v[i];
      if (f->need_hash && pre_take(pre, idx, f->name, &f->st, f->md5))
        f->ok = 1;
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
      rep->n_changing += (size_t)f->changing;
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
    /* A hashed file's stat goes to the cache (the sidecar is rewritten
     * even when the manifest is not: a racy record re-taken now is what
     * lets the next scan reuse it). */
    if (f->need_hash)
      tdm_state_record(m, (size_t)f->entry, &f->st, f->md5);
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

/* ---- hashing ahead (tdm_prehash) ---------------------------------------- */

#define PRE_MAX_THREADS 16
/* Seconds a file must have been left alone before it is hashed ahead. */
#define PRE_SETTLED 0.1

enum { P_QUEUED, P_HASHING, P_DONE, P_FAILED, P_TAKEN };
enum { D_NEW, D_LISTING, D_LISTED, D_GONE };

typedef struct pfile {
  char name[TDM_NAME_MAX + 1];
  int state;
  struct stat st;                /* as hashed (P_DONE) */
  char md5[TDM_MD5_HEX_LEN + 1];
} pfile;

typedef struct pdir {
  char *path;
  int state;
  pfile *files;
  size_t n, next;                /* next: first file not handed out */
  int busy;                      /* files of it being hashed */
} pdir;

struct tdm_prehash {
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  pthread_t th[PRE_MAX_THREADS];
  int nth, ahead, stop;
  pdir *dirs;
  size_t n;
  size_t cursor;                 /* the last folder a scan asked for */
  size_t work;                   /* folders before it have no work left */
  uint64_t taken, hashed;
};

/* Free a folder's file list when nobody hashes in it (mu held). */
static void pdir_drop(pdir *d) {
  d->state = D_GONE;
  if (d->busy == 0) {
    free(d->files);
    d->files = NULL;
    d->n = d->next = 0;
  }
}

/* List the image files of `path` into a new array (no lock held).
 * Returns the count; 0 and *out NULL when none or unreadable. */
static size_t pre_list(const char *path, pfile **out) {
  DIR *dd = opendir(path);
  struct dirent *de;
  pfile *v = NULL;
  size_t n = 0, cap = 0;
  *out = NULL;
  if (!dd) return 0;
  while ((de = readdir(dd)) != NULL) {
    size_t len = strlen(de->d_name);
    if (!tdm_is_image_name(de->d_name) || len > TDM_NAME_MAX) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 32;
      pfile *p = realloc(v, nc * sizeof *p);
      if (!p) break;
      v = p;
      cap = nc;
    }
    memset(&v[n], 0, sizeof v[n]);
    memcpy(v[n].name, de->d_name, len + 1);
    v[n].state = P_QUEUED;
    n++;
  }
  closedir(dd);
  *out = v;
  return n;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Hash one file of folder `d` (no lock held): stat, hash, stat again; the
 * result is kept only for a regular file unchanged throughout and settled
 * (ctime more than a second before the hashing began). */
static int pre_hash_one(const char *dir, const char *name,
                        struct stat *out, char *md5) {
  char path[TDM_PATH_MAX];
  struct stat a;
  uint64_t size;
  tdm_error err;
  double start = wall_now();
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    return 0;
  if (lstat(path, &a) != 0 || !S_ISREG(a.st_mode)) return 0;
  /* A change after the bytes were read must show in the stat the scan
   * compares: so the last change must be older than the read by more than
   * the granularity of file timestamps (one clock tick, <= 10 ms). */
  if ((double)a.st_ctim.tv_sec + (double)a.st_ctim.tv_nsec * 1e-9
      >= start - PRE_SETTLED)
    return 0;                    /* racy: the scan hashes it itself */
  if (tdm_md5_file(path, md5, &size, &err) != TDM_OK) return 0;
  return lstat(path, out) == 0 && tdm_same_stat(&a, out) &&
         (uint64_t)out->st_size == size;
}

static void *pre_worker(void *arg) {
  tdm_prehash *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    size_t i, lim = p->cursor + (size_t)p->ahead;
    pdir *d = NULL;
    pfile *f = NULL;
    struct stat st;
    char md5[TDM_MD5_HEX_LEN + 1];
    int ok;
    if (tdm_interrupted()) break;
    if (lim > p->n) lim = p->n;
    /* folders with nothing left to hand out move the start of the search */
    while (p->work < p->n &&
           (p->dirs[p->work].state == D_GONE ||
            (p->dirs[p->work].state == D_LISTED &&
             p->dirs[p->work].next >= p->dirs[p->work].n)))
      p->work++;
    for (i = p->work < p->cursor ? p->cursor : p->work; i < lim; i++) {
      pdir *c = &p->dirs[i];
      if (c->state == D_NEW) {
        pfile *v;
        size_t n;
        c->state = D_LISTING;
        pthread_mutex_unlock(&p->mu);
        n = pre_list(c->path, &v);
        pthread_mutex_lock(&p->mu);
        c->files = v;
        c->n = n;
        c->next = 0;
        if (c->state == D_LISTING) c->state = D_LISTED;
        else pdir_drop(c);       /* passed while listing */
        pthread_cond_broadcast(&p->cv_done);
        d = NULL;
        break;                   /* look again from the start */
      }
      if (c->state == D_LISTED) {
        while (c->next < c->n && c->files[c->next].state != P_QUEUED)
          c->next++;
        if (c->next < c->n) {
          d = c;
          f = &c->files[c->next++];
          break;
        }
      }
    }
    if (i < lim && !d) continue; /* listed a folder: search again */
    if (!d) {
      pthread_cond_wait(&p->cv_work, &p->mu);
      continue;
    }
    f->state = P_HASHING;
    d->busy++;
    pthread_mutex_unlock(&p->mu);
    ok = pre_hash_one(d->path, f->name, &st, md5);
    pthread_mutex_lock(&p->mu);
    if (ok) {
      f->st = st;
      memcpy(f->md5, md5, sizeof f->md5);
      f->state = P_DONE;
      p->hashed++;
    } else {
      f->state = P_FAILED;
    }
    d->busy--;
    if (d->state == D_GONE) pdir_drop(d);
    pthread_cond_broadcast(&p->cv_done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int tdm_prehash_new(tdm_prehash **out, const char *const *dirs, size_t n,
                    int threads, int ahead, tdm_error *err) {
  tdm_prehash *p = calloc(1, sizeof *p);
  size_t i;
  *out = NULL;
  if (!p || !(p->dirs = calloc(n ? n : 1, sizeof *p->dirs))) {
    free(p);
    return tdm_error_set(err, "ENOMEM", "out of memory");
  }
  p->n = n;
  for (i = 0; i < n; i++) {
    if (!(p->dirs[i].path = strdup(dirs[i]))) {
      p->n = i;
      tdm_prehash_free(p);
      return tdm_error_set(err, "ENOMEM", "out of memory");
    }
  }
  p->ahead = ahead > 0 ? ahead : 4;
  if (threads < 1) threads = 1;
  if (threads > PRE_MAX_THREADS) threads = PRE_MAX_THREADS;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv_work, NULL);
  pthread_cond_init(&p->cv_done, NULL);
  while (n > 0 && p->nth < threads &&
         pthread_create(&p->th[p->nth], NULL, pre_worker, p) == 0)
    p->nth++;
  *out = p;
  return TDM_OK;
}

void tdm_prehash_free(tdm_prehash *p) {
  size_t i;
  int k;
  if (!p) return;
  if (p->dirs && (p->nth > 0 || p->n == 0)) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
  }
  for (k = 0; k < p->nth; k++) pthread_join(p->th[k], NULL);
  if (p->dirs) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    for (i = 0; i < p->n; i++) {
      free(p->dirs[i].path);
      free(p->dirs[i].files);
    }
  }
  free(p->dirs);
  free(p);
}

void tdm_prehash_stats(tdm_prehash *p, uint64_t *taken, uint64_t *hashed) {
  pthread_mutex_lock(&p->mu);
  *taken = p->taken;
  *hashed = p->hashed;
  pthread_mutex_unlock(&p->mu);
}

/* The folder `dir` in p's list, or -1 (mu held). Scans come in list
 * order, so the search starts at the cursor. */
static long pre_find_dir(const tdm_prehash *p, const char *dir) {
  size_t i;
  for (i = p->cursor; i < p->n; i++)
    if (strcmp(p->dirs[i].path, dir) == 0) return (long)i;
  for (i = 0; i < p->cursor && i < p->n; i++)
    if (strcmp(p->dirs[i].path, dir) == 0) return (long)i;
  return -1;
}

/* The scan of folder `dir` is starting: move the window there (folders
 * before it are dropped) and return its index, or -1 when not listed. */
static long pre_enter(tdm_prehash *p, const char *dir) {
  long idx;
  size_t i;
  pthread_mutex_lock(&p->mu);
  idx = pre_find_dir(p, dir);
  if (idx >= 0 && (size_t)idx > p->cursor) {
    for (i = p->cursor; i < (size_t)idx; i++)
      if (p->dirs[i].state != D_GONE) pdir_drop(&p->dirs[i]);
    p->cursor = (size_t)idx;
    pthread_cond_broadcast(&p->cv_work);
  }
  if (idx >= 0) {
    pdir *d = &p->dirs[idx];
    /* not reached yet: the scan hashes it all, the threads skip it */
    if (d->state == D_NEW) {
      d->state = D_GONE;
      idx = -1;
    }
    while (d->state == D_LISTING) pthread_cond_wait(&p->cv_done, &p->mu);
    if (d->state == D_GONE) idx = -1;
  }
  pthread_mutex_unlock(&p->mu);
  return idx;
}

/* The MD5 of `name` in folder idx when the prehash has it for exactly the
 * file `st` describes (copied to md5, returns 1); a file not started yet
 * is withdrawn (the caller hashes it). Returns 0 otherwise. */
static int pre_take(tdm_prehash *p, long idx, const char *name,
                    const struct stat *st, char *md5) {
  pdir *d;
  size_t i;
  int hit = 0;
  pthread_mutex_lock(&p->mu);
  d = &p->dirs[idx];
  for (i = 0; d->state == D_LISTED && i < d->n; i++) {
    pfile *f = &d->files[i];
    if (strcmp(f->name, name) != 0) continue;
    if (f->state == P_QUEUED) f->state = P_TAKEN;
    while (f->state == P_HASHING) pthread_cond_wait(&p->cv_done, &p->mu);
    if (f->state == P_DONE && tdm_same_stat(&f->st, st)) {
      memcpy(md5, f->md5, TDM_MD5_HEX_LEN + 1);
      p->taken++;
      hit = 1;
    }
    f->state = P_TAKEN;
    break;
  }
  pthread_mutex_unlock(&p->mu);
  return hit;
}
