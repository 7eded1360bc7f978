/* tdm_manifest_saver.c -- background saves: a pool of writer threads
 * takes a locked manifest's encoded document, sidecar *and lock*, writes
 * them atomically and only then releases the lock (see tdm_saver_new in
 * include/tdm/manifest.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_manifest_int.h"

#define SAVER_MAX_THREADS 16

/* One handed-over save: the encoded document and sidecar, where they go,
 * and the lock fd to release once they are there. */
typedef struct save_job {
  struct save_job *next;
  char path[TDM_PATH_MAX], statepath[TDM_PATH_MAX];
  char actor_name[TDM_NAME_MAX + 1];
  int lockfd;
  int has_doc, has_state;
  tdm_buf doc, state;
} save_job;

/* Write job j's documents; frees its buffers. */
static int write_job(save_job *j, tdm_error *err) {
  int rc = tdm_manifest_write_prepared(j->path, &j->doc, j->has_doc,
                                       j->statepath, &j->state,
                                       j->has_state, err);
  tdm_buf_free(&j->doc);
  tdm_buf_free(&j->state);
  return rc;
}

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
    rc = write_job(j, &e);
    tdm_lock_release(j->lockfd);
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
  double now = tdm_manifest_now();
  int has_doc, has_state;
  *written = 0;
  if (tdm_manifest_check_writable(m, err) != TDM_OK) return TDM_ERR;
  if (!tdm_manifest_dirty(m) && !m->state_dirty) return TDM_OK;
  if (!(j = calloc(1, sizeof *j)))
    return tdm_error_set(err, "ENOMEM", "out of memory");
  tdm_buf_init(&j->doc, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  tdm_buf_init(&j->state, (size_t)TDM_MANIFEST_MAX_BYTES);
  if (tdm_manifest_prepare(m, now, &j->doc, &j->has_doc, &j->state,
                           &j->has_state, err) != TDM_OK) {
    tdm_buf_free(&j->doc);
    tdm_buf_free(&j->state);
    free(j);
    return TDM_ERR;
  }
  has_doc = j->has_doc;
  has_state = j->has_state;
  if (!has_doc && !has_state) {   /* nothing after all: keep the lock */
    free(j);
    return TDM_OK;
  }
  snprintf(j->path, sizeof j->path, "%s", m->path);
  snprintf(j->statepath, sizeof j->statepath, "%s", m->statepath);
  snprintf(j->actor_name, sizeof j->actor_name, "%s", m->actor_name);
  pthread_mutex_lock(&s->mu);
  if (!saver_start(s)) {
    /* no thread: an ordinary synchronous save */
    int rc;
    pthread_mutex_unlock(&s->mu);
    rc = write_job(j, err);
    free(j);
    if (rc != TDM_OK) return TDM_ERR;
  } else {
    while (s->pending >= s->max_pending)
      pthread_cond_wait(&s->cv_done, &s->mu);
    j->lockfd = m->lockfd;     /* the lock goes with the documents */
    m->lockfd = -1;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->pending++;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
  }
  tdm_manifest_mark_saved(m, now, has_doc, has_state);
  *written = has_doc;
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
