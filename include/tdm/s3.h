/*
 * tdm/s3.h -- the S3 transport: one libcurl multi event loop that runs many
 * verified transfers at once over reused connections.
 *
 * A client (tdm_s3) holds the settings, the credentials, one curl multi
 * handle (its connection cache is shared by every request) and a pool of
 * easy handles kept for reuse. Work is described as jobs (tdm_s3_job) and
 * run as a batch; a batch is stepped (tdm_s3_batch_step) so that a host can
 * run its own code -- e.g. Lua callbacks -- between steps, never inside a
 * libcurl or expat callback. tdm_s3_run runs a batch to the end.
 *
 * Integrity: GETs stream into a temp file beside the target while hashing
 * and are renamed into place only when the MD5 matches the object's (plain
 * ETag, x-amz-meta-md5, or a multipart ETag computed locally). PUTs send
 * Content-MD5, x-amz-meta-md5 and the payload's SHA-256; above the
 * multipart threshold they upload in parts, each with its Content-MD5, and
 * abort the upload on failure.
 *
 * Retries: capped exponential backoff with full jitter on 5xx, 429 and
 * SlowDown, timeouts, connection resets and truncated bodies, honouring
 * Retry-After; never on other 4xx. A backoff never blocks the loop: the
 * job waits on a timer while other transfers run.
 *
 * Secrets: no request header, credential or signature is ever written to
 * an error message or anywhere else.
 */
#ifndef TDM_S3_H
#define TDM_S3_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "error.h"
#include "buf.h"
#include "sigv4.h"

/* ---- settings ---------------------------------------------------------- */

typedef struct tdm_s3_config {
  const char *bucket;           /* required */
  const char *region;           /* NULL/"": us-west-1 */
  const char *endpoint;         /* NULL/"": AWS; else "http[s]://host[:port]" */
  const char *ca_bundle;        /* NULL/"": the system's CA store */
  const char *profile;          /* NULL/"": $AWS_PROFILE or "default" */
  const tdm_credentials *creds; /* NULL: resolve the AWS way */
  int path_style;               /* -1 (default): path-style when an endpoint
                                   is set or the bucket has a '.', else
                                   virtual-hosted; 0 or 1 to force */
  int jobs;                     /* default concurrency of a batch: 32 */
  uint64_t multipart_threshold; /* bytes; default 64 MiB */
  uint64_t part_size;           /* bytes; default 8 MiB (grown so that a
                                   file has at most 10000 parts) */
  int max_attempts;             /* per request; default 5 */
  long connect_timeout;         /* seconds; default 10 */
  long stall_timeout;           /* seconds below 1 byte/s; default 30 */
  double backoff_base;          /* seconds; default 0.1 */
  double backoff_cap;           /* seconds; default 20 */
  const char *sse;              /* NULL/"": none; "AES256", "aws:kms",
                                   "aws:kms:dsse": x-amz-server-side-
                                   encryption on PUTs and multipart
                                   uploads */
  const char *sse_kms_key_id;   /* NULL/"": the bucket's default key */
  tdm_ck_algo checksum;         /* TDM_CK_NONE: none; else sent with a
                                   single PUT (x-amz-checksum-ALGO and
                                   x-amz-sdk-checksum-algorithm) */
} tdm_s3_config;

/* Fill *cfg with the defaults above (all strings NULL). */
void tdm_s3_config_defaults(tdm_s3_config *cfg);

typedef struct tdm_s3 tdm_s3;

/* A client for cfg->bucket. Copies every string of *cfg; resolves the
 * credentials unless cfg->creds is given ("ENOCREDS" when there are none).
 * A bad endpoint is "EINVAL". Free with tdm_s3_free. */
tdm_s3 *tdm_s3_new(const tdm_s3_config *cfg, tdm_error *err);
void tdm_s3_free(tdm_s3 *c);
const char *tdm_s3_bucket(const tdm_s3 *c);
/* Requests completed (every attempt) and new connections opened by the
 * client so far: connections/requests shows how well they are reused. */
void tdm_s3_stats(const tdm_s3 *c, uint64_t *requests, uint64_t *connects);
int tdm_s3_default_jobs(const tdm_s3 *c);

/* A per-request trace, for `tdm-lua -v`/`--debug`. When a trace function
 * is set, the transfer loop calls it after every request attempt (on the
 * thread running the loop, so it must be thread-safe and must not call
 * into tdm_s3), and, with `debug`, once per signed request with the
 * canonical request in `detail` (session token masked). Process-wide;
 * set it before any client runs; NULL turns it off. */
typedef struct tdm_s3_trace {
  const char *method, *key;     /* key "" for the bucket itself */
  long status;                  /* HTTP status; 0 when none arrived */
  const char *code;             /* NULL, or the network failure code */
  int attempt;                  /* 1, 2, ... */
  double ms;                    /* this attempt, start to end */
  double retry_in;              /* seconds until the retry; -1 none */
  const char *detail;           /* debug: the canonical request */
} tdm_s3_trace;
typedef void (*tdm_s3_trace_fn)(const tdm_s3_trace *t, void *ud);
void tdm_s3_set_trace(tdm_s3_trace_fn fn, int debug, void *ud);
/* The trace function set (NULL: none) and whether debug is on. */
tdm_s3_trace_fn tdm_s3_get_trace(int *debug, void **ud);

/* The request URL for `key` ("" for the bucket itself) with `nq` raw query
 * pairs, encoded with tdm_uri_encode exactly as the signer encodes them,
 * appended to `url`; the Host header into `host` (hostsz bytes) and the
 * raw (unencoded) path that is signed into `path`. */
int tdm_s3_build_url(const tdm_s3 *c, const char *key, const tdm_kv *query,
                     size_t nq, tdm_buf *url, char *host, size_t hostsz,
                     tdm_buf *path, tdm_error *err);

/* A presigned URL for METHOD on `key`, valid `seconds` (1..604800),
 * appended to `url`. */
int tdm_s3_presign(tdm_s3 *c, const char *method, const char *key,
                   long seconds, tdm_buf *url, tdm_error *err);

/* The region requests are signed for, and (*configured, may be NULL) the
 * configured one when S3 said the bucket is elsewhere and the client
 * switched (AuthorizationHeaderMalformed, PermanentRedirect: the request
 * is signed again for the bucket's region, once per client, as botocore
 * does); *configured is NULL while no switch happened. */
const char *tdm_s3_region(const tdm_s3 *c, const char **configured);

/* ---- jobs -------------------------------------------------------------- */

typedef enum {
  TDM_S3_GET,          /* key -> file at path, verified */
  TDM_S3_PUT,          /* file at path -> key (multipart when large) */
  TDM_S3_HEAD,         /* key -> size, etag, md5, last_modified, meta */
  TDM_S3_DELETE,       /* key */
  TDM_S3_LIST,         /* one ListObjectsV2 page under `key` (a prefix) */
  TDM_S3_DELETE_MANY   /* DeleteObjects of keys[0..nkeys) (<= 1000) */
} tdm_s3_op;

#define TDM_S3_META_MAX 16
#define TDM_S3_ETAG_MAX 128
#define TDM_S3_DELETE_BATCH 1000

typedef struct tdm_s3_meta {
  char name[64];       /* lower case, without "x-amz-meta-" */
  char value[256];
} tdm_s3_meta;

typedef struct tdm_s3_object {
  char *key;                     /* owned by the page */
  uint64_t size;
  char etag[TDM_S3_ETAG_MAX];    /* quotes stripped */
  char md5[33];                  /* the plain ETag's MD5, or "" */
  double last_modified;          /* epoch seconds; 0 when unknown */
} tdm_s3_object;

typedef struct tdm_s3_delete_error {
  char *key;
  char code[TDM_ERR_CODE_MAX];   /* "S3_AccessDenied" */
  char message[256];
} tdm_s3_delete_error;

/* What an answer's headers say about the object: its ETag, the MD5s
 * tools store in metadata, encryption, an additional checksum, and the
 * bucket's region (any answer, also errors). */
typedef struct tdm_s3_answer {
  char etag[TDM_S3_ETAG_MAX];    /* quotes stripped */
  char meta_md5[33];             /* x-amz-meta-md5 (tdm), hex */
  char rclone_md5[33];           /* x-amz-meta-md5chksum (base64) as hex */
  char s3cmd_md5[33];            /* md5: in x-amz-meta-s3cmd-attrs */
  char sse[32];                  /* x-amz-server-side-encryption */
  int sse_c;                     /* customer keys (SSE-C) */
  char ck_algo[12];              /* "crc32c", ...: x-amz-checksum-ALGO */
  char ck_value[TDM_CK_B64_MAX]; /* its value (base64); full object */
  char bucket_region[32];        /* x-amz-bucket-region */
} tdm_s3_answer;

/* The object's MD5 as far as the answer vouches for it, into md5[33]
 * ("" when it does not say), and where that comes from, in this order:
 *   "meta", "rclone", "s3cmd"   MD5 metadata (tdm's, rclone's, s3cmd's)
 *   "crc32", "crc32c", "crc64nvme", "sha1", "sha256"
 *                               an additional checksum (md5 ""): verify
 *                               the body with it
 *   "etag"                      a plain ETag of an object not encrypted
 *                               with KMS, DSSE or customer keys
 *   "multipart-etag"            a multipart ETag ("hex-N"), likewise
 *                               (md5 ""; compare part-wise)
 *   "none"                      nothing: an encrypted object's ETag is
 *                               not its MD5, and a listing's is only a
 *                               change token. */
const char *tdm_s3_md5_of(const tdm_s3_answer *a, char *md5);

/* Zero a job (memset) before its first use; a batch frees the outputs of
 * an earlier run of the same job. */
typedef struct tdm_s3_job {
  /* in (strings are borrowed and must outlive the batch) */
  tdm_s3_op op;
  const char *key;             /* LIST: the prefix ("" for all) */
  const char *path;            /* GET: target file; PUT: source file */
  const char *content_type;    /* PUT; NULL: none */
  int if_none_match;           /* PUT: only if the key does not exist yet
                                  (If-None-Match: *, on the single PUT or
                                  the CompleteMultipartUpload); taken:
                                  "S3_PreconditionFailed", not retried.
                                  A server that ignores it overwrites. */
  const char *const *keys;     /* DELETE_MANY */
  size_t nkeys;
  const char *token;           /* LIST: continuation token or NULL */
  const char *start_after;     /* LIST: or NULL */
  int max_keys;                /* LIST: 1..1000, 0 = server default */

  /* out (valid once the job is done; free with tdm_s3_job_clear) */
  int done, ok, interrupted;
  int attempts;                /* 1 when nothing was retried */
  long http_status;            /* of the last response, 0 if none */
  tdm_error err;               /* when !ok */
  char request_id[80];         /* of a failed request, for support */
  char md5[33];                /* GET/PUT: the file's MD5; HEAD: the
                                  object's when known */
  char etag[TDM_S3_ETAG_MAX];  /* GET/PUT/HEAD, quotes stripped */
  uint64_t bytes;              /* GET/PUT: file size; HEAD: object size */
  double last_modified;        /* HEAD */
  const char *md5_source;      /* GET/HEAD: tdm_s3_md5_of's source of
                                  md5 ("none": a GET kept on its size
                                  alone); static, NULL before */
  tdm_s3_answer answer;        /* GET/HEAD/PUT, also on failure: the
                                  last answer's headers */
  tdm_s3_meta meta[TDM_S3_META_MAX];
  int nmeta;
  tdm_s3_object *objects;      /* LIST page */
  size_t nobjects;
  char *next_token;            /* LIST: NULL on the last page */
  char **deleted;              /* DELETE_MANY */
  size_t ndeleted;
  tdm_s3_delete_error *errors; /* DELETE_MANY: per-key failures */
  size_t nerrors;

  void *priv;                  /* the loop's state; do not touch */
} tdm_s3_job;

/* Free a job's outputs (objects, tokens, lists) and reset them. */
void tdm_s3_job_clear(tdm_s3_job *job);

/* ---- batches ----------------------------------------------------------- */

typedef struct tdm_s3_batch tdm_s3_batch;

/* A batch over jobs[0..n) (borrowed until tdm_s3_batch_free) running at
 * most `concurrency` (<= 0: the client's default) at once. Only one batch
 * per client at a time ("EBUSY"). */
tdm_s3_batch *tdm_s3_batch_new(tdm_s3 *c, tdm_s3_job *jobs, size_t n,
                               int concurrency, tdm_error *err);

/* An open-ended batch (a queue) of `cap` job slots jobs[0..cap)
 * (borrowed until tdm_s3_batch_free), none submitted yet: fill a free slot
 * and submit it; it may run at once. A slot is free before its first
 * submit and again once tdm_s3_batch_take_done has returned it, so a
 * queue runs any number of jobs through a fixed amount of memory. About
 * 3 x concurrency slots keep it busy (GETs being flushed hold theirs). */
tdm_s3_batch *tdm_s3_queue_new(tdm_s3 *c, tdm_s3_job *jobs, size_t cap,
                               int concurrency, tdm_error *err);

/* Queue jobs[slot] (filled in by the caller) to run. After an interrupt
 * it is done at once, "EINTR" (not started). "EINVAL": slot out of range
 * or still in use. */
int tdm_s3_batch_submit(tdm_s3_batch *b, size_t slot, tdm_error *err);

/* Run the loop for at most about `max_wait_ms`: start jobs, move bytes,
 * finish and schedule retries. Returns 1 while jobs remain, 0 when every
 * submitted job is done. On tdm_interrupted() it starts nothing more, aborts what is
 * in flight (temp files removed; an open multipart upload is aborted) and
 * marks those jobs interrupted ("EINTR"). */
int tdm_s3_batch_step(tdm_s3_batch *b, int max_wait_ms);

/* Indices of jobs finished since the last call (in a queue, also those
 * never started because of an interrupt), at most `max`, into `out`;
 * returns how many. Their slots are free again. */
size_t tdm_s3_batch_take_done(tdm_s3_batch *b, size_t *out, size_t max);

/* Files done, bytes moved so far (a retried transfer counts again). */
void tdm_s3_batch_progress(const tdm_s3_batch *b, size_t *files_done,
                           uint64_t *bytes);
int tdm_s3_batch_interrupted(const tdm_s3_batch *b);

/* Abort anything still in flight (as on interrupt) and free the batch. */
void tdm_s3_batch_free(tdm_s3_batch *b);

/* Run jobs[0..n) to the end. Sets *interrupted (may be NULL). Returns
 * TDM_ERR only when the batch could not run at all; per-job failures are
 * in each job. */
int tdm_s3_run(tdm_s3 *c, tdm_s3_job *jobs, size_t n, int concurrency,
               int *interrupted, tdm_error *err);

/* ---- retry policy (pure; exposed for tests) ----------------------------- */

typedef enum {
  TDM_S3_NET_OK,          /* a complete HTTP response */
  TDM_S3_NET_TIMEOUT,     /* connect timeout or stalled transfer */
  TDM_S3_NET_RESET,       /* connection reset, send/recv error, no reply */
  TDM_S3_NET_CONNECT,     /* connection refused / unreachable */
  TDM_S3_NET_DNS,         /* host not resolved */
  TDM_S3_NET_TRUNCATED,   /* body shorter than Content-Length */
  TDM_S3_NET_TLS,         /* certificate not trusted: never retried */
  TDM_S3_NET_LOCAL,       /* local failure (disk full, bad file) */
  TDM_S3_NET_OTHER
} tdm_s3_net;

/* Whether a failure is worth retrying: network trouble except TLS trust,
 * local failures and other curl errors (a bad URL); HTTP 5xx, 429; S3 codes SlowDown, RequestTimeout,
 * InternalError, ServiceUnavailable, Throttling*. Never other 4xx. */
int tdm_s3_retryable(tdm_s3_net net, long status, const char *s3code);

/* Delay in seconds before retry number `attempt` (1 = first retry): full
 * jitter, u * min(cap, base * 2^(attempt-1)) with u in [0,1); at least
 * `retry_after` when that is >= 0 (bounded by 300 s). */
double tdm_s3_backoff(int attempt, double base, double cap,
                      double retry_after, double u);

/* Seconds from a Retry-After value (delta seconds or an HTTP date,
 * relative to `now`); -1 when absent or unparsable. */
double tdm_s3_retry_after(const char *value, time_t now);

/* "S3_<Code>" for an S3 error code, or a code derived from the HTTP status
 * when S3 gave none (404 -> S3_NoSuchKey, 403 -> S3_AccessDenied, ...). */
void tdm_s3_error_code(const char *s3code, long status, char *out,
                       size_t outsz);

/* What the user should do about S3 error `s3code` ("" when nothing
 * specific), e.g. SignatureDoesNotMatch -> check the secret and region. */
const char *tdm_s3_advice(const char *s3code);

/* ---- XML (expat, streaming; exposed for tests) -------------------------- */

typedef struct tdm_s3_errinfo {
  char code[64];
  char message[512];
  char request_id[80];
} tdm_s3_errinfo;

/* Parse an S3 <Error> body. Returns 1 when it was one (fields filled), 0
 * when the body is not S3 error XML. */
int tdm_s3_parse_error(const char *xml, size_t len, tdm_s3_errinfo *out);

/* A streaming ListObjectsV2 page parser: feed the body as it arrives; the
 * objects accumulate in `job` (objects/nobjects/next_token). Memory is
 * bounded by the page. */
typedef struct tdm_s3_xml tdm_s3_xml;
typedef enum {
  TDM_S3_XML_ERROR, TDM_S3_XML_LIST, TDM_S3_XML_DELETE,
  TDM_S3_XML_INITIATE, TDM_S3_XML_COMPLETE
} tdm_s3_xml_kind;

tdm_s3_xml *tdm_s3_xml_new(tdm_s3_xml_kind kind, tdm_s3_job *job,
                           tdm_error *err);
int tdm_s3_xml_feed(tdm_s3_xml *x, const char *data, size_t len,
                    int final, tdm_error *err);
/* After a final feed: the S3 <Error> seen instead of the expected root
 * (e.g. a CompleteMultipartUpload that failed with 200), or NULL. */
const tdm_s3_errinfo *tdm_s3_xml_error(const tdm_s3_xml *x);
/* INITIATE: the UploadId; COMPLETE: the ETag ("" when absent). */
const char *tdm_s3_xml_value(const tdm_s3_xml *x);
void tdm_s3_xml_free(tdm_s3_xml *x);

/* Append `s` XML-escaped (& < > " ') to `out`. */
int tdm_s3_xml_escape(const char *s, tdm_buf *out, tdm_error *err);

#endif
