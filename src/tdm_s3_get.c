/* tdm_s3_get.c -- downloads: the GET operation writes the body into a
 * temp file beside the target while hashing it; finishing it (flush,
 * verify the MD5, rename into place, fsync the directory) runs on
 * finalizer threads, so fsync latency does not stall the other
 * transfers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tdm_s3_xfer.h"

/* GET: create the temp file beside the target (first attempt) or empty it
 * (a retry), and start a fresh MD5. */
static int open_temp(xfer *x, tdm_error *err) {
  const char *path = x->job->path;
  tdm_hash_free(x->md5);
  x->md5 = NULL;
  x->received = 0;
  if (x->fd >= 0) {
    if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)
      return tdm_s3i_xerr(x, err, tdm_errno_name(errno), "truncate %s: %s",
                          x->tmp, strerror(errno));
  } else {
    if (tdm_temp_path(path, x->tmp, sizeof x->tmp, err) != TDM_OK)
      return TDM_ERR;
    x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (x->fd < 0 && errno == ENOENT) {
      char dir[4096];
      const char *slash = strrchr(path, '/');
      if (slash && slash > path && (size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if (tdm_mkdirs(dir, err) != TDM_OK) return TDM_ERR;
        x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                     0644);
      }
    }
    if (x->fd < 0) {
      x->tmp[0] = '\0';
      return tdm_s3i_xerr(x, err, tdm_errno_name(errno), "create a temp "
                          "file for %s: %s", path, strerror(errno));
    }
  }
  x->md5 = tdm_hash_new(TDM_HASH_MD5, err);
  return x->md5 ? TDM_OK : TDM_ERR;
}

static int get_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  rb->r.method = "GET";
  rb->h[rb->nh++] = (tdm_kv){"x-amz-checksum-mode", "ENABLED"};
  return open_temp(x, err);
}

/* How a message names where the MD5 came from. */
static const char *claim_name(const char *src) {
  static const struct { const char *src, *name; } names[] = {
    {"meta", "x-amz-meta-md5"}, {"rclone", "x-amz-meta-md5chksum (rclone)"},
    {"s3cmd", "md5 in x-amz-meta-s3cmd-attrs"}, {"etag", "ETag"},
    {"multipart-etag", "multipart ETag"},
  };
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(src, names[i].src) == 0) return names[i].name;
  return src;
}

/* The second half of a GET, run on a finalizer thread (or inline when
 * none could start): flush the temp file, compare its MD5 with the
 * object's, rename it into place, fsync the directory. Touches only x and
 * its job; the outcome goes to x->fin (and x->local). */
static void finalize_get(xfer *x) {
  tdm_s3_job *j = x->job;
  const char *md5hex = x->got_md5, *what, *want, *src, *whose;
  char claimed[33], ck[TDM_CK_B64_MAX], ckname[40];
  int match = 0;
  tdm_error *e = &x->local;
  int synced, closed, saved;
  x->fin = FIN_FAIL;
  if (x->last_modified > 0) {
    /* The object's Last-Modified becomes the file's mtime (as aws s3 sync
     * does): the file is then older than the manifest save that records
     * it, so the next scan's racy rule does not re-hash it. A later local
     * edit still moves the mtime. Best effort: a failure costs a hash. */
    struct timespec ts[2];
    ts[0].tv_sec = 0;
    ts[0].tv_nsec = UTIME_NOW;
    ts[1].tv_sec = (time_t)x->last_modified;
    ts[1].tv_nsec = (long)((x->last_modified - (double)ts[1].tv_sec) * 1e9);
    (void)futimens(x->fd, ts);
  }
  synced = fdatasync(x->fd);
  saved = errno;
  closed = close(x->fd);
  if (synced == 0) saved = errno;
  x->fd = -1;
  if (synced != 0 || closed != 0) {
    tdm_s3i_xerr(x, e, tdm_errno_name(saved), "write %s: %s", x->tmp,
                 strerror(saved));
    return;
  }
  src = tdm_s3_md5_of(&x->a, claimed);
  what = "MD5";
  whose = claim_name(src);
  if (claimed[0]) {            /* metadata or a plain ETag */
    want = claimed;
    match = strcmp(claimed, md5hex) == 0;
  } else if (x->ck_on) {       /* an additional checksum */
    if (tdm_ck_final(&x->ck, ck, e) != TDM_OK) return;
    x->ck_on = 0;
    snprintf(ckname, sizeof ckname, "x-amz-checksum-%s", x->a.ck_algo);
    what = x->a.ck_algo;
    whose = ckname;
    md5hex = ck;
    want = x->a.ck_value;
    match = strcmp(ck, want) == 0;
  } else if (strcmp(src, "multipart-etag") == 0) {
    want = x->a.etag;
    if (tdm_etag_match_file(x->tmp, x->a.etag, md5hex, &match, e) != TDM_OK)
      return;
  } else {                     /* "none": the size was all to check */
    want = "";
    match = 1;
  }
  if (!match) {
    tdm_s3i_xerr(x, e, "S3_BadDigest", "%s mismatch: received data has "
                 "%s %s but the object's %s is %s; the object may be "
                 "corrupt in S3 -- nothing written to %s", what, what,
                 md5hex, whose, want, j->path);
    /* The body may have been damaged in transit: drop it and retry like a
     * truncated body; only a mismatch on every attempt fails the job. */
    unlink(x->tmp);
    x->tmp[0] = '\0';
    x->fin = FIN_RETRY;
    return;
  }
  if (rename(x->tmp, j->path) != 0) {
    tdm_s3i_xerr(x, e, tdm_errno_name(errno), "rename into %s: %s",
                 j->path, strerror(errno));
    return;
  }
  x->tmp[0] = '\0';
  if (tdm_fsync_parent(j->path, e) != TDM_OK) return;
  snprintf(j->md5, sizeof j->md5, "%s", x->got_md5);
  snprintf(j->etag, sizeof j->etag, "%s", x->a.etag);
  j->md5_source = src;
  j->bytes = x->received;
  j->last_modified = x->last_modified;
  x->fin = FIN_OK;
}

/* Back on the loop thread: act on a finalized GET. */
static void finalized(xfer *x) {
  tdm_error e = x->local;
  switch (x->fin) {
    case FIN_OK: tdm_s3i_finish(x, 1, NULL); break;
    case FIN_RETRY: tdm_s3i_request_failed(x, &e, 1); break;
    default: tdm_s3i_job_failed(x, &e); break;
  }
}

static void *finalizer(void *ud) {
  tdm_s3_batch *b = ud;
  pthread_mutex_lock(&b->mu);
  for (;;) {
    size_t i;
    while (!b->stop && b->fin_in_head == b->fin_in_tail)
      pthread_cond_wait(&b->cv, &b->mu);
    if (b->fin_in_head == b->fin_in_tail) break;   /* stopping, idle */
    i = b->fin_in[b->fin_in_head++ % b->n];
    pthread_mutex_unlock(&b->mu);
    finalize_get(&b->x[i]);
    pthread_mutex_lock(&b->mu);
    b->fin_out[b->fin_out_tail++ % b->n] = i;
    pthread_cond_signal(&b->cv_out);
    curl_multi_wakeup(b->c->multi);
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* Hand a verified-size GET to the finalizer threads (started on first
 * use); inline when no thread can be started. */
static void hand_off(xfer *x) {
  tdm_s3_batch *b = x->b;
  if (b->nth == 0) {
    int want = TDM_S3I_FIN_THREADS;
    if ((size_t)want > b->n) want = (int)b->n;
    if (want > b->conc) want = b->conc;
    while (b->nth < want &&
           pthread_create(&b->th[b->nth], NULL, finalizer, b) == 0)
      b->nth++;
    if (b->nth == 0) b->nth = -1;
  }
  if (b->nth < 0) {
    finalize_get(x);
    finalized(x);
    return;
  }
  x->state = ST_FINAL;
  b->nfinal++;
  pthread_mutex_lock(&b->mu);
  b->fin_in[b->fin_in_tail++ % b->n] = (size_t)(x - b->x);
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

void tdm_s3i_fin_collect(tdm_s3_batch *b, int wait) {
  while (b->nfinal > 0) {
    size_t items[64], k, m = 0;
    pthread_mutex_lock(&b->mu);
    while (wait && b->fin_out_head == b->fin_out_tail)
      pthread_cond_wait(&b->cv_out, &b->mu);
    while (m < 64 && b->fin_out_head < b->fin_out_tail)
      items[m++] = b->fin_out[b->fin_out_head++ % b->n];
    pthread_mutex_unlock(&b->mu);
    if (m == 0) return;
    for (k = 0; k < m; k++) {
      b->nfinal--;
      finalized(&b->x[items[k]]);
    }
  }
}

void tdm_s3i_fin_init(tdm_s3_batch *b) {
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  pthread_cond_init(&b->cv_out, NULL);
}

void tdm_s3i_fin_stop(tdm_s3_batch *b) {
  int i;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  for (i = 0; i < b->nth; i++) pthread_join(b->th[i], NULL);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  pthread_cond_destroy(&b->cv_out);
}

/* GET answered 2xx: check the length, finish the MD5, then flush, verify
 * and rename off the loop thread. */
static void get_ok(xfer *x) {
  unsigned char d[TDM_MD5_LEN];
  size_t dlen;
  tdm_error e;
  if (x->have_cl && x->received != x->content_length) {
    tdm_s3i_xerr(x, &e, "ETRUNCATED", "body truncated: %llu of %llu bytes",
                 (unsigned long long)x->received,
                 (unsigned long long)x->content_length);
    tdm_s3i_request_failed(x, &e, 1);
    return;
  }
  if (tdm_hash_final(x->md5, d, &dlen, &e) != TDM_OK) {
    tdm_s3i_job_failed(x, &e);
    return;
  }
  tdm_hex(d, TDM_MD5_LEN, x->got_md5);
  hand_off(x);
}

const tdm_s3_handler tdm_s3i_get = {
  "download", NULL, get_prepare, get_ok, NULL
};
