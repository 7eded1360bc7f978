/*
 * tdm_s3_xfer.h -- what the files of the transfer loop share: one job in
 * flight (xfer), the batch, and the table entry of an S3 operation.
 * Not installed; only src/tdm_s3_{loop,xfer,io,ops,get,multipart}.c
 * include it.
 *
 * Who calls whom (no cycles):
 *   tdm_s3_loop.c       the batch: queue, submit, step, abort, free
 *     -> tdm_s3_ops.c   the table: one tdm_s3_handler per operation
 *        -> tdm_s3_get.c, tdm_s3_multipart.c  (their operations)
 *     -> tdm_s3_xfer.c  one request's life: start, answer, retry, finish
 *        -> tdm_s3_io.c curl callbacks, request bodies, hashes, messages
 *        -> tdm_s3_error.c  what a failure is called and means
 * A handler runs the scheduler's functions (finish, fail, retry); the
 * scheduler reaches a handler only through the pointer x->h.
 */
#ifndef TDM_S3_XFER_H
#define TDM_S3_XFER_H

#include <pthread.h>

#include "tdm_s3_int.h"

#define TDM_S3I_ERRBODY_MAX (64 * 1024)
#define TDM_S3I_POSTBODY_MAX (16u * 1024u * 1024u)
#define TDM_S3I_EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Finalizer threads: many, because they spend their time in fdatasync/
 * fsync, and concurrent fsyncs share journal commits. */
#define TDM_S3I_FIN_THREADS 16
#define TDM_S3I_MP_PARALLEL 4  /* parts of one upload in flight at once */

/* ST_FREE: a slot not submitted yet, or whose end has been taken */
enum { ST_FREE, ST_PENDING, ST_RUNNING, ST_WAITING, ST_FINAL, ST_DONE };
enum { FIN_OK, FIN_RETRY, FIN_FAIL };

typedef struct xfer xfer;

/* The request an operation asks for: filled by its prepare. Strings it
 * points to must live until the request has been prepared (in x or in
 * the scratch below). */
typedef struct tdm_s3_reqb {
  tdm_s3_req r;                /* method, key, payload_hash */
  tdm_kv q[6], h[10];
  size_t nq, nh;
  char num[32], maxk[32], bmd5[32], bsha[65], ckname[32];
  int want_xml;                /* parse a 2xx body as xk */
  tdm_s3_xml_kind xk;
} tdm_s3_reqb;

/* One S3 operation or step of one (as curl's Curl_handler): the loop
 * knows nothing of what a request is for and asks x->h. */
typedef struct tdm_s3_handler {
  const char *name;            /* "download", ...: messages name it */
  /* Once per job before its first request; may set x->h to the step to
   * run first. NULL: nothing to do. */
  int (*setup)(xfer *x, tdm_error *err);
  /* This attempt's request into *rb (method, key, query, headers,
   * body); set up curl's upload/post on x->easy. */
  int (*prepare)(xfer *x, tdm_s3_reqb *rb, tdm_error *err);
  /* The request got a 2xx answer: finish, fail or go on. */
  void (*on_ok)(xfer *x);
  /* The job is failing with *e: 1 when the handler took it over (it
   * finishes the job later), 0 to finish it failed now. NULL: 0. */
  int (*on_fail)(xfer *x, const tdm_error *e);
} tdm_s3_handler;

struct xfer {
  tdm_s3_batch *b;
  tdm_s3_job *job;
  const tdm_s3_handler *h;     /* the operation (or step) running */
  int state, tries;
  const char *method;          /* this attempt's (a string literal) */
  double started;              /* monotonic start of this attempt */
  int traced;                  /* this attempt was traced */
  const char *net_code;        /* this attempt's network failure code */
  char region[32];             /* the request was signed for */
  double ready_at;             /* ST_WAITING: monotonic time of the retry */
  CURL *easy;
  struct curl_slist *hdrs;
  char errbuf[CURL_ERROR_SIZE];
  /* the response of the current attempt */
  long status;
  uint64_t content_length;
  int have_cl;
  tdm_s3_answer a;             /* ETag, MD5 metadata, SSE, checksum */
  char retry_after[64];
  char request_id[80];
  double last_modified;
  tdm_buf errbody;             /* body of a non-2xx answer (bounded) */
  tdm_s3_xml *xml;             /* parser of a 2xx XML answer */
  int local_failed;            /* a callback failed (disk, XML, file) */
  tdm_error local;
  /* GET: the temp file beside the target */
  char tmp[4096];
  int fd;
  tdm_hash *md5;
  uint64_t received;
  char got_md5[33];            /* MD5 of what was received */
  tdm_ck ck;                   /* the answer's checksum over the body */
  int ck_on;                   /* ck is running */
  int ck_composite;            /* x-amz-checksum-type: COMPOSITE */
  int fin;                     /* FIN_*: outcome of finalize_get */
  /* PUT: the source file and the region being sent */
  int in_fd;
  uint64_t file_size;
  char file_md5[33], file_md5_b64[32], file_sha[65];
  char file_ck[TDM_CK_B64_MAX];  /* the client's checksum of it, or "" */
  uint64_t off, len, sent;
  char part_md5_b64[32], part_sha[65];
  int part_hashed;             /* part number whose hashes are above */
  /* multipart */
  char upload_id[1024];
  int part, nparts;
  uint64_t psize;
  char (*part_etags)[TDM_S3_ETAG_MAX];
  tdm_buf body;                /* POST body (DeleteObjects, Complete) */
  tdm_error saved;             /* the failure that caused an abort */
  /* parallel parts: a part in flight is a child xfer of the upload */
  struct xfer *parent;         /* set in a part's xfer */
  struct xfer *kids[TDM_S3I_MP_PARALLEL];
  int next_part, parts_running;
};

struct tdm_s3_batch {
  tdm_s3 *c;
  tdm_s3_job *jobs;
  size_t n;                    /* slots */
  /* Rings of n slot indices (head/tail count up, taken modulo n; a slot
   * is in at most one place at a time): submitted and not started yet,
   * and done and not yet taken. */
  size_t *pendq, pq_head, pq_tail;
  size_t *doneq, dq_head, dq_tail;
  xfer *x;
  xfer **active;               /* running or waiting for a retry, and */
  size_t nactive, nkids;       /* the parts in flight (nkids of them) */
  int conc;
  size_t ndone, remaining;     /* remaining: submitted, not yet done */
  uint64_t bytes;
  int interrupted;
  /* GETs being flushed/verified/renamed by the finalizer threads: the
   * loop puts job indices into the ring fin_in, the threads into the ring
   * fin_out (n slots each: a job is in at most one place at a time);
   * head/tail count up and are taken modulo n. Guarded by mu. */
  pthread_mutex_t mu;
  pthread_cond_t cv, cv_out;
  pthread_t th[TDM_S3I_FIN_THREADS];
  int nth;                     /* threads started; -1: none could be */
  int stop;
  size_t *fin_in, fin_in_head, fin_in_tail;
  size_t *fin_out, fin_out_head, fin_out_tail;
  size_t nfinal;               /* handed off, not yet finished */
};

/* ---- tdm_s3_io.c: bytes, hashes, messages -------------------------------- */

/* Fill *e with `code` and "OP s3://BUCKET/KEY: detail"; returns TDM_ERR. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int tdm_s3i_xerr(const xfer *x, tdm_error *e, const char *code,
                 const char *fmt, ...);
/* Base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes). */
void tdm_s3i_b64(const unsigned char *in, int len, char *out);
/* MD5 (raw into md5, hex into md5hex when not NULL) and, when sha is not
 * NULL, the SHA-256 hex of `len` bytes of fd at `off`. */
int tdm_s3i_hash_region(int fd, uint64_t off, uint64_t len,
                        unsigned char *md5, char *md5hex, char *sha,
                        const char *path, tdm_error *err);
/* Content-MD5 (base64) and SHA-256 hex of x->body. */
int tdm_s3i_body_hashes(xfer *x, char *md5b64, char *sha, tdm_error *err);
/* Note the MD5 a metadata header `name` (without "x-amz-meta-") = v
 * carries, if it is one tools write (tdm_s3_md5.c). */
void tdm_s3i_meta_md5(tdm_s3_answer *a, const char *name, const char *v);
/* Forget the last response's headers and error body. */
void tdm_s3i_reset_response(xfer *x);
/* Hook x's callbacks (headers, body) to x->easy. */
void tdm_s3i_set_callbacks(xfer *x);
/* Send `len` bytes of the source file from `off` as the request body. */
void tdm_s3i_set_upload(xfer *x, uint64_t off, uint64_t len);
/* Ask for the client's server-side encryption (sse, KMS key) in rb. */
void tdm_s3i_add_sse(const xfer *x, tdm_s3_reqb *rb);
/* Send x->body as a POST body. */
void tdm_s3i_set_post(xfer *x);

/* ---- tdm_s3_xfer.c: one request's life ----------------------------------- */

double tdm_s3i_now(void);      /* monotonic seconds */
/* Start the current request of x (x->h) on a pooled easy handle. */
int tdm_s3i_start_request(xfer *x, tdm_error *err);
/* Start request `x` now; on a failure to even start, fail the job. */
void tdm_s3i_launch(xfer *x);
/* Run step h of x's job next (first attempt). */
void tdm_s3i_next(xfer *x, const tdm_s3_handler *h);
/* Take the easy handle of a finished (or aborted) request back. */
void tdm_s3i_end_request(xfer *x);
/* Release everything a job holds; remove an unrenamed temp file. */
void tdm_s3i_release(xfer *x);
void tdm_s3i_remove_active(tdm_s3_batch *b, xfer *x);
/* The job is over: record the outcome, free its resources, queue it. */
void tdm_s3i_finish(xfer *x, int ok, const tdm_error *e);
/* The job fails with *e (its handler may take over first). */
void tdm_s3i_job_failed(xfer *x, const tdm_error *e);
/* A request failed with *e: retry it later on the loop's timer when that
 * is allowed, else fail the job. */
void tdm_s3i_request_failed(xfer *x, tdm_error *e, int retryable);
/* A request finished (curl says how): classify, then on_ok or fail. */
void tdm_s3i_request_done(xfer *x, CURLcode rc);
/* Feed the end of the XML body; on failure fail the job. */
int tdm_s3i_xml_end(xfer *x);

/* ---- tdm_s3_ops.c: the table --------------------------------------------- */

/* The handler of operation op (its first step). */
const tdm_s3_handler *tdm_s3i_handler(tdm_s3_op op);

/* ---- tdm_s3_get.c: downloads and their finishing ------------------------- */

extern const tdm_s3_handler tdm_s3i_get;
void tdm_s3i_fin_init(tdm_s3_batch *b);
/* Finish the GETs the finalizer threads are done with; with `wait`,
 * until none is left with them. */
void tdm_s3i_fin_collect(tdm_s3_batch *b, int wait);
/* Stop and join the finalizer threads (none may be busy). */
void tdm_s3i_fin_stop(tdm_s3_batch *b);

/* ---- tdm_s3_multipart.c -------------------------------------------------- */

extern const tdm_s3_handler tdm_s3i_mp_init;
/* Plan a multipart upload of x's open source (part size, part count). */
int tdm_s3i_mp_plan(xfer *x, tdm_error *err);
/* Whether x is (a part of) a multipart upload still before its
 * Complete step: aborting it leaves no object. */
int tdm_s3i_mp_sending(const xfer *x);
/* A part is over: unhook it from its upload and free it. */
void tdm_s3i_kid_done(xfer *k);
/* Stop every part of upload p still in flight. */
void tdm_s3i_kill_kids(xfer *p);
/* Synchronous best-effort abort of an open multipart upload (used when
 * the loop itself is being torn down: interrupt, batch freed). */
void tdm_s3i_abort_upload_now(xfer *x);

#endif
