/* tdm_s3_loop.c -- the transfer loop's scheduler: one curl multi handle
 * runs every job of a batch, `concurrency` at a time; failures are
 * retried on a timer of the loop, never by sleeping. What a request is
 * for is its operation's business (tdm_s3_ops.c); one request's life is
 * in tdm_s3_xfer.c. */
#include <stdlib.h>
#include <string.h>

#include "tdm_s3_xfer.h"

static void start_job(tdm_s3_batch *b, size_t i) {
  xfer *x = &b->x[i];
  tdm_s3_job *j = &b->jobs[i];
  tdm_error e;
  memset(x, 0, sizeof *x);
  x->b = b;
  x->job = j;
  x->h = tdm_s3i_handler(j->op);
  x->fd = x->in_fd = -1;
  tdm_buf_init(&x->errbody, TDM_S3I_ERRBODY_MAX + 1);
  tdm_buf_init(&x->body, TDM_S3I_POSTBODY_MAX);
  b->active[b->nactive++] = x;
  x->tries = 1;
  if (x->h->setup && x->h->setup(x, &e) != TDM_OK) {
    tdm_s3i_finish(x, 0, &e);
    return;
  }
  tdm_s3i_launch(x);
}

static void reset_job(tdm_s3_job *j) {
  tdm_s3_job_clear(j);
  j->done = j->ok = j->interrupted = 0;
  j->attempts = 1;
  j->http_status = 0;
  tdm_error_clear(&j->err);
  j->request_id[0] = j->md5[0] = j->etag[0] = '\0';
  j->bytes = 0;
  j->last_modified = 0;
  j->nmeta = 0;
  j->md5_source = NULL;
  memset(&j->answer, 0, sizeof j->answer);
  j->priv = NULL;
}

tdm_s3_batch *tdm_s3_queue_new(tdm_s3 *c, tdm_s3_job *jobs, size_t cap,
                               int concurrency, tdm_error *err) {
  tdm_s3_batch *b;
  size_t i, n = cap ? cap : 1;
  if (c->busy) {
    tdm_error_set(err, "EBUSY", "S3 client: a batch is already running "
                  "(one batch per client at a time)");
    return NULL;
  }
  b = calloc(1, sizeof *b);
  if (!b || !(b->x = calloc(n, sizeof *b->x)) ||
      !(b->active = calloc(n * (TDM_S3I_MP_PARALLEL + 1), sizeof *b->active)) ||
      !(b->pendq = calloc(n, sizeof *b->pendq)) ||
      !(b->doneq = calloc(n, sizeof *b->doneq)) ||
      !(b->fin_in = calloc(n, sizeof *b->fin_in)) ||
      !(b->fin_out = calloc(n, sizeof *b->fin_out))) {
    if (b) {
      free(b->x);
      free(b->active);
      free(b->pendq);
      free(b->doneq);
      free(b->fin_in);
    }
    free(b);
    tdm_error_set(err, "ENOMEM", "S3 batch: out of memory");
    return NULL;
  }
  b->c = c;
  b->jobs = jobs;
  b->n = n;
  b->conc = concurrency > 0 ? concurrency : c->jobs;
  tdm_s3i_fin_init(b);
  for (i = 0; i < n; i++) {
    b->x[i].state = ST_FREE;
    b->x[i].fd = b->x[i].in_fd = -1;
  }
  c->busy = 1;
  return b;
}

/* A job that will not run: done, interrupted, queued as done. */
static void not_started(tdm_s3_batch *b, size_t i, const char *why) {
  tdm_s3_job *j = &b->jobs[i];
  j->done = 1;
  j->interrupted = 1;
  j->attempts = 0;
  tdm_error_set(&j->err, "EINTR", "%s s3://%s/%s: not started: %s",
                tdm_s3i_handler(j->op)->name, b->c->bucket,
                j->key ? j->key : "", why);
  b->x[i].state = ST_DONE;
  b->doneq[b->dq_tail++ % b->n] = i;
  b->remaining--;
}

int tdm_s3_batch_submit(tdm_s3_batch *b, size_t slot, tdm_error *err) {
  if (slot >= b->n || b->x[slot].state != ST_FREE) {
    tdm_error_set(err, "EINVAL", "S3 batch: slot %zu is %s", slot,
                  slot >= b->n ? "out of range" : "still in use");
    return TDM_ERR;
  }
  reset_job(&b->jobs[slot]);
  b->x[slot].state = ST_PENDING;
  b->remaining++;
  if (b->interrupted) not_started(b, slot, "interrupted");
  else b->pendq[b->pq_tail++ % b->n] = slot;
  return TDM_OK;
}

tdm_s3_batch *tdm_s3_batch_new(tdm_s3 *c, tdm_s3_job *jobs, size_t n,
                               int concurrency, tdm_error *err) {
  tdm_s3_batch *b = tdm_s3_queue_new(c, jobs, n, concurrency, err);
  size_t i;
  for (i = 0; b && i < n; i++) tdm_s3_batch_submit(b, i, err);
  return b;
}

/* Abort job x (not a part): its request ended, its parts ended, its
 * multipart upload aborted, the job finished "EINTR". */
static void abort_xfer(xfer *x, const char *why) {
  tdm_error e;
  tdm_s3i_end_request(x);
  tdm_s3i_kill_kids(x);
  if (x->upload_id[0]) tdm_s3i_abort_upload_now(x);
  x->job->interrupted = 1;
  tdm_s3i_xerr(x, &e, "EINTR", "%s", why);
  tdm_s3i_finish(x, 0, &e);
}

/* Stop everything: in-flight jobs are aborted (temp files removed, open
 * uploads aborted), jobs not started are marked so. */
static void abort_all(tdm_s3_batch *b, const char *why) {
  tdm_s3i_fin_collect(b, 1);   /* let flushing GETs finish first */
  while (b->nactive > 0) {
    xfer *x = b->active[b->nactive - 1];
    if (x->parent) {           /* a part: its upload is aborted below */
      tdm_s3i_end_request(x);
      tdm_s3i_kid_done(x);
      continue;
    }
    abort_xfer(x, why);
  }
  while (b->pq_head < b->pq_tail)
    not_started(b, b->pendq[b->pq_head++ % b->n], why);
}

/* Whether x is a request on the wire that may already have changed the
 * bucket: a PUT (or a multipart upload's Complete), a DELETE. */
static int changing_s3(const xfer *x) {
  tdm_s3_op op = x->job->op;
  return x->state == ST_RUNNING && !tdm_s3i_mp_sending(x) &&
         (op == TDM_S3_PUT || op == TDM_S3_DELETE || op == TDM_S3_DELETE_MANY);
}

/* The first interrupt: nothing new starts; jobs not started, retries not
 * yet made, reads (their temp files removed) and multipart uploads still
 * sending parts (no object appears before Complete) are aborted. A PUT
 * or DELETE on the wire runs to its answer: S3 may have applied it
 * already, so aborting it would leave the caller not knowing what the
 * bucket holds; answered, it is delivered and recorded like any other. */
static void interrupt(tdm_s3_batch *b) {
  size_t k;
  b->interrupted = 1;
  tdm_s3i_fin_collect(b, 1);   /* let flushing GETs finish first */
  for (k = b->nactive; k-- > 0;) {
    xfer *x;
    if (k >= b->nactive) continue;   /* an abort also ended parts */
    x = b->active[k];
    if (x->parent || changing_s3(x)) continue;
    abort_xfer(x, "interrupted");
    k = b->nactive;                  /* the list changed: from the top */
  }
  while (b->pq_head < b->pq_tail)
    not_started(b, b->pendq[b->pq_head++ % b->n], "interrupted");
}

/* Start due retries and new jobs up to the concurrency. */
static void fill(tdm_s3_batch *b) {
  double now = tdm_s3i_now();
  size_t k;
  for (k = b->nactive; k-- > 0;) {
    xfer *x;
    if (k >= b->nactive) continue;
    x = b->active[k];
    if (x->state == ST_WAITING && x->ready_at <= now) tdm_s3i_launch(x);
  }
  /* GETs being flushed do not hold a transfer slot, up to a bound (each
   * holds an open file) */
  while (!b->interrupted &&
         b->nactive - b->nfinal - b->nkids < (size_t)b->conc &&
         b->nfinal <= 2 * (size_t)b->conc && b->pq_head < b->pq_tail)
    start_job(b, b->pendq[b->pq_head++ % b->n]);
}

static void drain(tdm_s3_batch *b) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(b->c->multi, &left)) != NULL) {
    if (m->msg == CURLMSG_DONE) {
      CURL *e = m->easy_handle;
      CURLcode rc = m->data.result;
      xfer *x = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
      if (x && x->easy == e) tdm_s3i_request_done(x, rc);
    }
  }
}

int tdm_s3_batch_step(tdm_s3_batch *b, int max_wait_ms) {
  int running = 0;
  double wait = max_wait_ms, now;
  size_t k;
  if (!b->interrupted && tdm_interrupted()) interrupt(b);
  if (b->remaining == 0) return 0;
  fill(b);
  curl_multi_perform(b->c->multi, &running);
  drain(b);
  tdm_s3i_fin_collect(b, 0);
  fill(b);
  if (b->remaining == 0) return 0;
  now = tdm_s3i_now();
  for (k = 0; k < b->nactive; k++) {
    xfer *x = b->active[k];
    if (x->state == ST_WAITING) {
      double ms = (x->ready_at - now) * 1000.0;
      if (ms < wait) wait = ms < 0 ? 0 : ms;
    }
  }
  curl_multi_poll(b->c->multi, NULL, 0, (int)wait, NULL);
  return 1;
}

size_t tdm_s3_batch_take_done(tdm_s3_batch *b, size_t *out, size_t max) {
  size_t n = 0;
  while (n < max && b->dq_head < b->dq_tail) {
    size_t i = b->doneq[b->dq_head++ % b->n];
    b->x[i].state = ST_FREE;
    out[n++] = i;
  }
  return n;
}

void tdm_s3_batch_progress(const tdm_s3_batch *b, size_t *files_done,
                           uint64_t *bytes) {
  if (files_done) *files_done = b->ndone;
  if (bytes) *bytes = b->bytes;
}

int tdm_s3_batch_interrupted(const tdm_s3_batch *b) {
  return b->interrupted;
}

void tdm_s3_batch_free(tdm_s3_batch *b) {
  if (!b) return;
  if (b->remaining > 0) abort_all(b, "aborted");
  tdm_s3i_fin_stop(b);
  b->c->busy = 0;
  free(b->fin_in);
  free(b->fin_out);
  free(b->x);
  free(b->active);
  free(b->pendq);
  free(b->doneq);
  free(b);
}

int tdm_s3_run(tdm_s3 *c, tdm_s3_job *jobs, size_t n, int concurrency,
               int *interrupted, tdm_error *err) {
  tdm_s3_batch *b = tdm_s3_batch_new(c, jobs, n, concurrency, err);
  if (!b) return TDM_ERR;
  while (tdm_s3_batch_step(b, 100)) {}
  if (interrupted) *interrupted = b->interrupted;
  tdm_s3_batch_free(b);
  return TDM_OK;
}
