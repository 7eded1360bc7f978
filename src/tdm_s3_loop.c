/* tdm_s3_loop.c -- the transfer loop: one curl multi handle runs every
 * job of a batch (GET, PUT, multipart PUT, HEAD, DELETE, list pages,
 * DeleteObjects), `concurrency` at a time; failures are retried on a timer
 * of the loop, never by sleeping. curl callbacks only record: bytes go to
 * temp files and hashes, XML to expat, failures into the job. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/evp.h>

#include "tdm_s3_int.h"

#define ERRBODY_MAX (64 * 1024)
#define POSTBODY_MAX (16u * 1024u * 1024u)
#define MAX_PARTS 10000u
#define EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ST_FREE: a slot not submitted yet, or whose end has been taken */
enum { ST_FREE, ST_PENDING, ST_RUNNING, ST_WAITING, ST_FINAL, ST_DONE };
enum { FIN_OK, FIN_RETRY, FIN_FAIL };

/* Finalizer threads: many, because they spend their time in fdatasync/
 * fsync, and concurrent fsyncs share journal commits. */
#define FIN_THREADS 16
#define MP_PARALLEL 4          /* parts of one upload in flight at once */
enum { PH_MAIN, PH_MP_INIT, PH_MP_PART, PH_MP_COMPLETE, PH_MP_ABORT };

typedef struct xfer {
  tdm_s3_batch *b;
  tdm_s3_job *job;
  int state, phase, tries;
  double ready_at;             /* ST_WAITING: monotonic time of the retry */
  CURL *easy;
  struct curl_slist *hdrs;
  char errbuf[CURL_ERROR_SIZE];
  /* the response of the current attempt */
  long status;
  uint64_t content_length;
  int have_cl;
  char etag[TDM_S3_ETAG_MAX];
  char meta_md5[33];
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
  int fin;                     /* FIN_*: outcome of finalize_get */
  /* PUT: the source file and the region being sent */
  int in_fd;
  uint64_t file_size;
  char file_md5[33], file_md5_b64[32], file_sha[65];
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
  struct xfer *kids[MP_PARALLEL];
  int next_part, parts_running;
} xfer;

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
  pthread_t th[FIN_THREADS];
  int nth;                     /* threads started; -1: none could be */
  int stop;
  size_t *fin_in, fin_in_head, fin_in_tail;
  size_t *fin_out, fin_out_head, fin_out_tail;
  size_t nfinal;               /* handed off, not yet finished */
};

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *op_name(const xfer *x) {
  switch (x->job->op) {
    case TDM_S3_GET: return "download";
    case TDM_S3_PUT: return "upload";
    case TDM_S3_HEAD: return "head";
    case TDM_S3_DELETE: return "delete";
    case TDM_S3_LIST: return "list";
    case TDM_S3_DELETE_MANY: return "delete-objects";
  }
  return "request";
}

/* Fill *e with `code` and "OP s3://BUCKET/KEY: detail". */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int xerr(const xfer *x, tdm_error *e, const char *code,
                const char *fmt, ...) {
  char detail[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (x->job->op == TDM_S3_DELETE_MANY)
    return tdm_error_set(e, code, "%s: %zu keys in s3://%s: %s", op_name(x),
                         x->job->nkeys, x->b->c->bucket, detail);
  return tdm_error_set(e, code, "%s s3://%s/%s: %s", op_name(x),
                       x->b->c->bucket, x->job->key ? x->job->key : "",
                       detail);
}

static void b64(const unsigned char *in, int len, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, len);
}

/* MD5 (raw into md5, hex into md5hex) and, when sha is not NULL, the
 * SHA-256 hex of `len` bytes of fd at `off`. */
static int hash_region(int fd, uint64_t off, uint64_t len,
                       unsigned char *md5, char *md5hex, char *sha,
                       const char *path, tdm_error *err) {
  unsigned char *buf = malloc(TDM_HASH_BUFSIZE), d[TDM_SHA256_LEN];
  tdm_hash *hm = tdm_hash_new(TDM_HASH_MD5, err);
  tdm_hash *hs = sha ? tdm_hash_new(TDM_HASH_SHA256, err) : NULL;
  size_t dlen;
  int rc = TDM_ERR;
  if (!buf || !hm || (sha && !hs)) {
    if (!buf) tdm_error_set(err, "ENOMEM", "hash %s: out of memory", path);
    goto done;
  }
  while (len > 0) {
    size_t want = len < TDM_HASH_BUFSIZE ? (size_t)len : TDM_HASH_BUFSIZE;
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      tdm_error_errno(err, errno, "read %s", path);
      goto done;
    }
    if (n == 0) {
      tdm_error_set(err, "EIO", "read %s: the file shrank while being "
                    "read", path);
      goto done;
    }
    if (tdm_hash_update(hm, buf, (size_t)n, err) != TDM_OK ||
        (hs && tdm_hash_update(hs, buf, (size_t)n, err) != TDM_OK))
      goto done;
    off += (uint64_t)n;
    len -= (uint64_t)n;
  }
  if (tdm_hash_final(hm, md5, &dlen, err) != TDM_OK) goto done;
  if (md5hex) tdm_hex(md5, TDM_MD5_LEN, md5hex);
  if (hs) {
    if (tdm_hash_final(hs, d, &dlen, err) != TDM_OK) goto done;
    tdm_hex(d, TDM_SHA256_LEN, sha);
  }
  rc = TDM_OK;
done:
  free(buf);
  tdm_hash_free(hm);
  tdm_hash_free(hs);
  return rc;
}

/* ---- curl callbacks: record, never raise ------------------------------- */

/* Copy `src` into dst[dstsz], truncating. */
static void scopy(char *dst, size_t dstsz, const char *src) {
  size_t n = strlen(src);
  if (n >= dstsz) n = dstsz - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void reset_response(xfer *x) {
  x->have_cl = 0;
  x->content_length = 0;
  x->etag[0] = x->meta_md5[0] = x->retry_after[0] = '\0';
  x->request_id[0] = '\0';
  x->last_modified = 0;
  x->job->nmeta = 0;
  tdm_buf_reset(&x->errbody);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  size_t n = size * nitems, len = n < 1023 ? n : 1023;
  char line[1024], *colon, *v, *end;
  memcpy(line, data, len);
  line[len] = '\0';
  while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
    line[--len] = '\0';
  if (strncmp(line, "HTTP/", 5) == 0) {
    char *sp = strchr(line, ' ');
    x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    reset_response(x);
    return n;
  }
  if (!(colon = strchr(line, ':'))) return n;
  *colon = '\0';
  v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  end = v + strlen(v);
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
  if (strcasecmp(line, "content-length") == 0) {
    x->content_length = strtoull(v, NULL, 10);
    x->have_cl = 1;
  } else if (strcasecmp(line, "etag") == 0) {
    tdm_etag_unquote(x->etag, sizeof x->etag, v);
  } else if (strcasecmp(line, "last-modified") == 0) {
    x->last_modified = tdm_s3_parse_time(v);
  } else if (strcasecmp(line, "retry-after") == 0) {
    scopy(x->retry_after, sizeof x->retry_after, v);
  } else if (strcasecmp(line, "x-amz-request-id") == 0) {
    scopy(x->request_id, sizeof x->request_id, v);
  } else if (strncasecmp(line, "x-amz-meta-", 11) == 0) {
    tdm_s3_job *j = x->job;
    const char *name = line + 11;
    char *p;
    if (strcasecmp(name, "md5") == 0 && !tdm_etag_plain_md5(v,
                                                            x->meta_md5))
      x->meta_md5[0] = '\0';
    if (j->nmeta < TDM_S3_META_MAX) {
      scopy(j->meta[j->nmeta].name, sizeof j->meta[0].name, name);
      for (p = j->meta[j->nmeta].name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
      scopy(j->meta[j->nmeta].value, sizeof j->meta[0].value, v);
      j->nmeta++;
    }
  }
  return n;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (x->status >= 200 && x->status < 300) {
    if (x->phase == PH_MAIN && x->job->op == TDM_S3_GET) {
      if (write_all(x->fd, data, n) != 0) {
        xerr(x, &x->local, tdm_errno_name(errno), "write %s: %s", x->tmp,
             strerror(errno));
        x->local_failed = 1;
        return 0;
      }
      if (tdm_hash_update(x->md5, data, n, &x->local) != TDM_OK) {
        x->local_failed = 1;
        return 0;
      }
      x->received += n;
      x->b->bytes += n;
    } else if (x->xml) {
      tdm_error e;
      if (tdm_s3_xml_feed(x->xml, data, n, 0, &e) != TDM_OK) {
        xerr(x, &x->local, e.code, "%s", e.message);
        x->local_failed = 1;
        return 0;
      }
    }
    return n;
  }
  /* an error body: keep the first ERRBODY_MAX bytes */
  if (x->errbody.len < ERRBODY_MAX) {
    size_t room = ERRBODY_MAX - x->errbody.len;
    tdm_buf_append(&x->errbody, data, n < room ? n : room, NULL);
  }
  return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud) {
  xfer *x = ud;
  size_t want = size * nitems;
  uint64_t left = x->len - x->sent;
  ssize_t n;
  if (left < want) want = (size_t)left;
  if (want == 0) return 0;
  do n = pread(x->parent ? x->parent->in_fd : x->in_fd, buf, want,
               (off_t)(x->off + x->sent));
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    if (n < 0)
      xerr(x, &x->local, tdm_errno_name(errno), "read %s: %s",
           x->job->path, strerror(errno));
    else
      xerr(x, &x->local, "EIO", "%s shrank while being uploaded",
           x->job->path);
    x->local_failed = 1;
    return CURL_READFUNC_ABORT;
  }
  x->sent += (uint64_t)n;
  x->b->bytes += (uint64_t)n;
  return (size_t)n;
}

static int on_seek(void *ud, curl_off_t offset, int origin) {
  xfer *x = ud;
  if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->len)
    return CURL_SEEKFUNC_CANTSEEK;
  x->sent = (uint64_t)offset;
  return CURL_SEEKFUNC_OK;
}

/* ---- requests ----------------------------------------------------------- */

/* GET: create the temp file beside the target (first attempt) or empty it
 * (a retry), and start a fresh MD5. */
static int open_temp(xfer *x, tdm_error *err) {
  const char *path = x->job->path;
  tdm_hash_free(x->md5);
  x->md5 = NULL;
  x->received = 0;
  if (x->fd >= 0) {
    if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)
      return xerr(x, err, tdm_errno_name(errno), "truncate %s: %s", x->tmp,
                  strerror(errno));
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
      return xerr(x, err, tdm_errno_name(errno), "create a temp file for "
                  "%s: %s", path, strerror(errno));
    }
  }
  x->md5 = tdm_hash_new(TDM_HASH_MD5, err);
  return x->md5 ? TDM_OK : TDM_ERR;
}

/* The DeleteObjects body (once per job). */
static int delete_body(xfer *x, tdm_error *err) {
  size_t i;
  if (x->body.len) return TDM_OK;
  if (tdm_buf_appends(&x->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                      "<Delete><Quiet>false</Quiet>", err) != TDM_OK)
    return TDM_ERR;
  for (i = 0; i < x->job->nkeys; i++)
    if (tdm_buf_appends(&x->body, "<Object><Key>", err) != TDM_OK ||
        tdm_s3_xml_escape(x->job->keys[i], &x->body, err) != TDM_OK ||
        tdm_buf_appends(&x->body, "</Key></Object>", err) != TDM_OK)
      return TDM_ERR;
  return tdm_buf_appends(&x->body, "</Delete>", err);
}

static int complete_body(xfer *x, tdm_error *err) {
  int i;
  tdm_buf_reset(&x->body);
  if (tdm_buf_appends(&x->body, "<CompleteMultipartUpload>", err) != TDM_OK)
    return TDM_ERR;
  for (i = 0; i < x->nparts; i++)
    if (tdm_buf_printf(&x->body, err, "<Part><PartNumber>%d</PartNumber>"
                       "<ETag>\"%s\"</ETag></Part>", i + 1,
                       x->part_etags[i]) != TDM_OK)
      return TDM_ERR;
  return tdm_buf_appends(&x->body, "</CompleteMultipartUpload>", err);
}

/* Content-MD5 (base64) and SHA-256 of the POST body. */
static int body_hashes(xfer *x, char *md5b64, char *sha, tdm_error *err) {
  unsigned char d[TDM_MD5_LEN];
  tdm_hash *h = tdm_hash_new(TDM_HASH_MD5, err);
  size_t dlen;
  int rc;
  if (!h) return TDM_ERR;
  rc = tdm_hash_update(h, x->body.data ? x->body.data : "", x->body.len,
                       err) == TDM_OK &&
       tdm_hash_final(h, d, &dlen, err) == TDM_OK &&
       tdm_sha256_hex(x->body.data ? x->body.data : "", x->body.len, sha,
                      err) == TDM_OK ? TDM_OK : TDM_ERR;
  tdm_hash_free(h);
  if (rc == TDM_OK) b64(d, TDM_MD5_LEN, md5b64);
  return rc;
}

static void set_upload(xfer *x, uint64_t off, uint64_t len) {
  x->off = off;
  x->len = len;
  x->sent = 0;
  curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_SEEKFUNCTION, on_seek);
  curl_easy_setopt(x->easy, CURLOPT_SEEKDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
}

static void set_post(xfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                   (curl_off_t)x->body.len);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS,
                   x->body.data ? x->body.data : "");
}

/* Start the current request of x (phase, part) on a pooled easy handle. */
static int start_request(xfer *x, tdm_error *err) {
  tdm_s3 *c = x->b->c;
  tdm_s3_job *j = x->job;
  tdm_kv q[6], h[6];
  size_t nq = 0, nh = 0;
  tdm_s3_req r;
  char num[32], maxk[32], bmd5[32], bsha[65];
  tdm_s3_xml_kind xk = TDM_S3_XML_ERROR;
  int want_xml = 0;
  memset(&r, 0, sizeof r);
  r.key = j->key ? j->key : "";
  r.payload_hash = EMPTY_SHA256;
  x->status = 0;
  x->local_failed = 0;
  reset_response(x);
  tdm_s3_xml_free(x->xml);
  x->xml = NULL;
  if (!(x->easy = tdm_s3i_easy_get(c)))
    return xerr(x, err, "ENOMEM", "out of memory");
  switch (x->phase) {
    case PH_MAIN:
      switch (j->op) {
        case TDM_S3_GET:
          r.method = "GET";
          if (open_temp(x, err) != TDM_OK) goto fail;
          break;
        case TDM_S3_HEAD:
          r.method = "HEAD";
          curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
          break;
        case TDM_S3_DELETE:
          r.method = "DELETE";
          curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
          break;
        case TDM_S3_PUT:
          r.method = "PUT";
          h[nh++] = (tdm_kv){"Content-MD5", x->file_md5_b64};
          h[nh++] = (tdm_kv){"x-amz-meta-md5", x->file_md5};
          if (j->content_type && *j->content_type)
            h[nh++] = (tdm_kv){"Content-Type", j->content_type};
          if (j->if_none_match) h[nh++] = (tdm_kv){"If-None-Match", "*"};
          r.payload_hash = x->file_sha;
          set_upload(x, 0, x->file_size);
          break;
        case TDM_S3_LIST:
          r.method = "GET";
          r.key = "";
          q[nq++] = (tdm_kv){"list-type", "2"};
          q[nq++] = (tdm_kv){"prefix", j->key ? j->key : ""};
          if (j->max_keys > 0) {
            snprintf(maxk, sizeof maxk, "%d", j->max_keys);
            q[nq++] = (tdm_kv){"max-keys", maxk};
          }
          if (j->token && *j->token)
            q[nq++] = (tdm_kv){"continuation-token", j->token};
          if (j->start_after && *j->start_after)
            q[nq++] = (tdm_kv){"start-after", j->start_after};
          tdm_s3_job_clear(j);
          xk = TDM_S3_XML_LIST;
          want_xml = 1;
          break;
        case TDM_S3_DELETE_MANY:
          r.method = "POST";
          r.key = "";
          q[nq++] = (tdm_kv){"delete", ""};
          if (delete_body(x, err) != TDM_OK ||
              body_hashes(x, bmd5, bsha, err) != TDM_OK)
            goto fail;
          h[nh++] = (tdm_kv){"Content-MD5", bmd5};
          h[nh++] = (tdm_kv){"Content-Type", "application/xml"};
          r.payload_hash = bsha;
          set_post(x);
          tdm_s3_job_clear(j);
          xk = TDM_S3_XML_DELETE;
          want_xml = 1;
          break;
      }
      break;
    case PH_MP_INIT:
      r.method = "POST";
      q[nq++] = (tdm_kv){"uploads", ""};
      h[nh++] = (tdm_kv){"x-amz-meta-md5", x->file_md5};
      if (j->content_type && *j->content_type)
        h[nh++] = (tdm_kv){"Content-Type", j->content_type};
      tdm_buf_reset(&x->body);
      set_post(x);
      xk = TDM_S3_XML_INITIATE;
      want_xml = 1;
      break;
    case PH_MP_PART: {
      const xfer *o = x->parent ? x->parent : x;
      uint64_t off = (uint64_t)(x->part - 1) * o->psize;
      uint64_t len = o->file_size - off < o->psize ? o->file_size - off
                                                   : o->psize;
      if (x->part_hashed != x->part) {
        unsigned char d[TDM_MD5_LEN];
        if (hash_region(o->in_fd, off, len, d, NULL, x->part_sha, j->path,
                        err) != TDM_OK)
          goto fail;
        b64(d, TDM_MD5_LEN, x->part_md5_b64);
        x->part_hashed = x->part;
      }
      r.method = "PUT";
      snprintf(num, sizeof num, "%d", x->part);
      q[nq++] = (tdm_kv){"partNumber", num};
      q[nq++] = (tdm_kv){"uploadId", o->upload_id};
      h[nh++] = (tdm_kv){"Content-MD5", x->part_md5_b64};
      r.payload_hash = x->part_sha;
      set_upload(x, off, len);
      break;
    }
    case PH_MP_COMPLETE:
      r.method = "POST";
      q[nq++] = (tdm_kv){"uploadId", x->upload_id};
      if (complete_body(x, err) != TDM_OK ||
          body_hashes(x, bmd5, bsha, err) != TDM_OK)
        goto fail;
      h[nh++] = (tdm_kv){"Content-Type", "application/xml"};
      /* the object appears only at completion: the condition goes here */
      if (j->if_none_match) h[nh++] = (tdm_kv){"If-None-Match", "*"};
      r.payload_hash = bsha;
      set_post(x);
      xk = TDM_S3_XML_COMPLETE;
      want_xml = 1;
      break;
    case PH_MP_ABORT:
      r.method = "DELETE";
      q[nq++] = (tdm_kv){"uploadId", x->upload_id};
      curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
      break;
  }
  if (want_xml && !(x->xml = tdm_s3_xml_new(xk, j, err))) goto fail;
  r.query = q;
  r.nq = nq;
  r.headers = h;
  r.nh = nh;
  if (tdm_s3i_prepare(c, x->easy, &r, &x->hdrs, x->errbuf, err) != TDM_OK)
    goto fail;
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
  if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
    xerr(x, err, "EIO", "libcurl refused the transfer");
    goto fail;
  }
  x->state = ST_RUNNING;
  return TDM_OK;
fail:
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  tdm_s3i_easy_put(c, x->easy);
  x->easy = NULL;
  return TDM_ERR;
}

/* Take the easy handle of a finished (or aborted) request back. */
static void end_request(xfer *x) {
  if (!x->easy) return;
  curl_multi_remove_handle(x->b->c->multi, x->easy);
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  tdm_s3i_easy_put(x->b->c, x->easy);
  x->easy = NULL;
}

/* Release everything a job holds; remove a temp file that was not renamed
 * into place. */
static void release(xfer *x) {
  end_request(x);
  if (x->fd >= 0) close(x->fd);
  x->fd = -1;
  if (x->tmp[0]) unlink(x->tmp);
  x->tmp[0] = '\0';
  if (x->in_fd >= 0) close(x->in_fd);
  x->in_fd = -1;
  tdm_hash_free(x->md5);
  x->md5 = NULL;
  tdm_s3_xml_free(x->xml);
  x->xml = NULL;
  free(x->part_etags);
  x->part_etags = NULL;
  tdm_buf_free(&x->errbody);
  tdm_buf_free(&x->body);
}

static void remove_active(tdm_s3_batch *b, xfer *x) {
  size_t i;
  for (i = 0; i < b->nactive; i++)
    if (b->active[i] == x) {
      b->active[i] = b->active[--b->nactive];
      return;
    }
}

/* The job is over: record the outcome, free its resources, queue it. */
static void finish(xfer *x, int ok, const tdm_error *e) {
  tdm_s3_batch *b = x->b;
  tdm_s3_job *j = x->job;
  release(x);
  j->ok = ok;
  j->done = 1;
  if (!ok && e) j->err = *e;
  x->state = ST_DONE;
  remove_active(b, x);
  b->doneq[b->dq_tail++ % b->n] = (size_t)(x - b->x);
  b->ndone++;
  b->remaining--;
}

static void job_failed(xfer *x, const tdm_error *e);
static void launch(xfer *x);
static void next_phase(xfer *x, int phase);

/* A part is over (done, failed or killed): unhook it from its upload and
 * free it. */
static void kid_done(xfer *k) {
  xfer *p = k->parent;
  int i;
  release(k);
  remove_active(k->b, k);
  k->b->nkids--;
  for (i = 0; i < MP_PARALLEL; i++)
    if (p->kids[i] == k) p->kids[i] = NULL;
  p->parts_running--;
  free(k);
}

/* Stop every part of upload p still in flight. */
static void kill_kids(xfer *p) {
  int i;
  for (i = 0; i < MP_PARALLEL; i++)
    if (p->kids[i]) kid_done(p->kids[i]);
}

/* Keep up to MP_PARALLEL parts of upload p in flight; when all are up,
 * complete the upload. */
static void start_parts(xfer *p) {
  tdm_s3_batch *b = p->b;
  if (p->phase != PH_MP_PART) {
    p->phase = PH_MP_PART;
    p->next_part = 1;
  }
  while (p->parts_running < MP_PARALLEL && p->next_part <= p->nparts &&
         p->phase == PH_MP_PART) {
    xfer *k = calloc(1, sizeof *k);
    int i;
    if (!k) {
      tdm_error e;
      xerr(p, &e, "ENOMEM", "out of memory");
      kill_kids(p);
      job_failed(p, &e);
      return;
    }
    k->b = b;
    k->job = p->job;
    k->parent = p;
    k->fd = k->in_fd = -1;
    k->phase = PH_MP_PART;
    k->part = p->next_part++;
    k->tries = 1;
    tdm_buf_init(&k->errbody, ERRBODY_MAX + 1);
    tdm_buf_init(&k->body, POSTBODY_MAX);
    for (i = 0; i < MP_PARALLEL; i++)
      if (!p->kids[i]) {
        p->kids[i] = k;
        break;
      }
    p->parts_running++;
    b->active[b->nactive++] = k;
    b->nkids++;
    launch(k);                 /* may fail the upload at once */
  }
  if (p->phase == PH_MP_PART && p->parts_running == 0 &&
      p->next_part > p->nparts)
    next_phase(p, PH_MP_COMPLETE);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ud) {
  (void)data;
  (void)ud;
  return size * nmemb;
}

/* Synchronous best-effort abort of an open multipart upload (used when
 * the loop itself is being torn down: interrupt, batch freed). */
static void abort_upload_now(xfer *x) {
  tdm_s3 *c = x->b->c;
  tdm_kv q[1];
  tdm_s3_req r;
  struct curl_slist *hdrs = NULL;
  char errbuf[CURL_ERROR_SIZE];
  CURL *e;
  if (!x->upload_id[0] || !(e = tdm_s3i_easy_get(c))) return;
  memset(&r, 0, sizeof r);
  q[0] = (tdm_kv){"uploadId", x->upload_id};
  r.method = "DELETE";
  r.key = x->job->key;
  r.query = q;
  r.nq = 1;
  r.payload_hash = EMPTY_SHA256;
  if (tdm_s3i_prepare(c, e, &r, &hdrs, errbuf, NULL) == TDM_OK) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_perform(e);
  }
  curl_slist_free_all(hdrs);
  x->upload_id[0] = '\0';
  tdm_s3i_easy_put(c, e);
}

/* A request failed with *e: retry it later on the loop's timer when that
 * is allowed, else fail the job. */
static void request_failed(xfer *x, tdm_error *e, int retryable) {
  tdm_s3_batch *b = x->b;
  tdm_s3 *c = b->c;
  if (retryable && x->tries < c->max_attempts && !b->interrupted) {
    double ra = tdm_s3_retry_after(x->retry_after[0] ? x->retry_after
                                                     : NULL, time(NULL));
    double d = tdm_s3_backoff(x->tries, c->backoff_base, c->backoff_cap,
                              ra, tdm_s3i_random(c));
    x->tries++;
    x->job->attempts++;
    x->state = ST_WAITING;
    x->ready_at = now_mono() + d;
    return;
  }
  if (retryable && x->tries > 1) {
    size_t n = strlen(e->message);
    snprintf(e->message + n, sizeof e->message - n, " (gave up after %d "
             "attempts)", x->tries);
  }
  job_failed(x, e);
}

static void job_failed(xfer *x, const tdm_error *e) {
  if (x->parent) {             /* a part failed: the upload fails */
    xfer *p = x->parent;
    tdm_error pe = *e;
    kid_done(x);
    kill_kids(p);
    job_failed(p, &pe);
    return;
  }
  if (x->upload_id[0] && x->phase != PH_MP_ABORT && !x->b->interrupted) {
    tdm_error e2;
    x->saved = *e;
    x->phase = PH_MP_ABORT;
    x->tries = 1;
    if (start_request(x, &e2) == TDM_OK) return;
    finish(x, 0, &x->saved);
    return;
  }
  if (x->upload_id[0]) abort_upload_now(x);
  finish(x, 0, e);
}

/* Start request `x` now; on a failure to even start, fail the job. */
static void launch(xfer *x) {
  tdm_error e;
  if (start_request(x, &e) != TDM_OK) job_failed(x, &e);
}

static void next_phase(xfer *x, int phase) {
  x->phase = phase;
  x->tries = 1;
  launch(x);
}

/* The second half of a GET, run on a finalizer thread (or inline when
 * none could start): flush the temp file, compare its MD5 with the
 * object's, rename it into place, fsync the directory. Touches only x and
 * its job; the outcome goes to x->fin (and x->local). */
static void finalize_get(xfer *x) {
  tdm_s3_job *j = x->job;
  const char *md5hex = x->got_md5, *what, *want;
  char plain[33];
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
    xerr(x, e, tdm_errno_name(saved), "write %s: %s", x->tmp,
         strerror(saved));
    return;
  }
  if (tdm_etag_plain_md5(x->etag, plain)) {
    what = "ETag";
    want = plain;
    match = strcmp(plain, md5hex) == 0;
  } else if (x->meta_md5[0]) {
    what = "x-amz-meta-md5";
    want = x->meta_md5;
    match = strcmp(x->meta_md5, md5hex) == 0;
  } else if (x->etag[0]) {
    what = "multipart ETag";
    want = x->etag;
    if (tdm_etag_match_file(x->tmp, x->etag, md5hex, &match, e) != TDM_OK)
      return;
  } else {
    xerr(x, e, "S3_BadDigest", "S3 sent no ETag or x-amz-meta-md5 to "
         "verify the data against; nothing written to %s", j->path);
    return;
  }
  if (!match) {
    xerr(x, e, "S3_BadDigest", "MD5 mismatch: received data has MD5 %s "
         "but the object's %s is %s; the object may be corrupt in S3 -- "
         "nothing written to %s", md5hex, what, want, j->path);
    /* The body may have been damaged in transit: drop it and retry like a
     * truncated body; only a mismatch on every attempt fails the job. */
    unlink(x->tmp);
    x->tmp[0] = '\0';
    x->fin = FIN_RETRY;
    return;
  }
  if (rename(x->tmp, j->path) != 0) {
    xerr(x, e, tdm_errno_name(errno), "rename into %s: %s", j->path,
         strerror(errno));
    return;
  }
  x->tmp[0] = '\0';
  if (tdm_fsync_parent(j->path, e) != TDM_OK) return;
  snprintf(j->md5, sizeof j->md5, "%s", md5hex);
  snprintf(j->etag, sizeof j->etag, "%s", x->etag);
  j->bytes = x->received;
  j->last_modified = x->last_modified;
  x->fin = FIN_OK;
}

/* Back on the loop thread: act on a finalized GET. */
static void finalized(xfer *x) {
  tdm_error e = x->local;
  switch (x->fin) {
    case FIN_OK: finish(x, 1, NULL); break;
    case FIN_RETRY: request_failed(x, &e, 1); break;
    default: job_failed(x, &e); break;
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
    int want = FIN_THREADS;
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

/* Finish the GETs the finalizer threads are done with; with `wait`, until
 * none is left with them. */
static void collect_finalized(tdm_s3_batch *b, int wait) {
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

/* GET answered 2xx: check the length, finish the MD5, then flush, verify
 * and rename off the loop thread (fsync latency must not stall the other
 * transfers). */
static void finish_get(xfer *x) {
  unsigned char d[TDM_MD5_LEN];
  size_t dlen;
  tdm_error e;
  if (x->have_cl && x->received != x->content_length) {
    xerr(x, &e, "ETRUNCATED", "body truncated: %llu of %llu bytes",
         (unsigned long long)x->received,
         (unsigned long long)x->content_length);
    request_failed(x, &e, 1);
    return;
  }
  if (tdm_hash_final(x->md5, d, &dlen, &e) != TDM_OK) {
    job_failed(x, &e);
    return;
  }
  tdm_hex(d, TDM_MD5_LEN, x->got_md5);
  hand_off(x);
}

/* Feed the end of the XML body; on failure fail the job. */
static int xml_end(xfer *x) {
  tdm_error e, e2;
  if (!x->xml || tdm_s3_xml_feed(x->xml, "", 0, 1, &e) == TDM_OK)
    return TDM_OK;
  xerr(x, &e2, e.code, "%s", e.message);
  job_failed(x, &e2);
  return TDM_ERR;
}

/* The current request got a 2xx answer. */
static void request_ok(xfer *x) {
  tdm_s3_job *j = x->job;
  tdm_error e;
  char plain[33];
  switch (x->phase) {
    case PH_MAIN:
      switch (j->op) {
        case TDM_S3_GET:
          finish_get(x);
          return;
        case TDM_S3_PUT:
          if (tdm_etag_plain_md5(x->etag, plain) &&
              strcmp(plain, x->file_md5) != 0) {
            xerr(x, &e, "S3_BadDigest", "S3 stored MD5 %s but %s has MD5 "
                 "%s; the data changed in transit or the file changed "
                 "while uploading", plain, j->path, x->file_md5);
            job_failed(x, &e);
            return;
          }
          snprintf(j->md5, sizeof j->md5, "%s", x->file_md5);
          snprintf(j->etag, sizeof j->etag, "%s", x->etag);
          j->bytes = x->file_size;
          finish(x, 1, NULL);
          return;
        case TDM_S3_HEAD:
          j->bytes = x->content_length;
          snprintf(j->etag, sizeof j->etag, "%s", x->etag);
          if (!tdm_etag_plain_md5(x->etag, j->md5))
            snprintf(j->md5, sizeof j->md5, "%s", x->meta_md5);
          j->last_modified = x->last_modified;
          finish(x, 1, NULL);
          return;
        case TDM_S3_DELETE:
          finish(x, 1, NULL);
          return;
        case TDM_S3_LIST:
        case TDM_S3_DELETE_MANY:
          if (xml_end(x) == TDM_OK) finish(x, 1, NULL);
          return;
      }
      return;
    case PH_MP_INIT:
      if (xml_end(x) != TDM_OK) return;
      snprintf(x->upload_id, sizeof x->upload_id, "%s",
               tdm_s3_xml_value(x->xml));
      if (!x->upload_id[0]) {
        xerr(x, &e, "S3_BadXML", "S3 started a multipart upload but sent "
             "no UploadId");
        job_failed(x, &e);
        return;
      }
      start_parts(x);
      return;
    case PH_MP_PART: {
      xfer *p = x->parent;
      if (!x->etag[0]) {
        xerr(x, &e, "S3_BadXML", "part %d: S3 sent no ETag", x->part);
        job_failed(x, &e);
        return;
      }
      snprintf(p->part_etags[x->part - 1], TDM_S3_ETAG_MAX, "%s", x->etag);
      kid_done(x);
      start_parts(p);
      return;
    }
    case PH_MP_COMPLETE: {
      const tdm_s3_errinfo *ei;
      if (xml_end(x) != TDM_OK) return;
      if ((ei = tdm_s3_xml_error(x->xml)) != NULL) {
        char code[TDM_ERR_CODE_MAX];
        tdm_s3_error_code(ei->code, 0, code, sizeof code);
        xerr(x, &e, code, "completing the multipart upload: %s",
             ei->message);
        request_failed(x, &e, tdm_s3_retryable(TDM_S3_NET_OK, 200,
                                               ei->code));
        return;
      }
      snprintf(j->etag, sizeof j->etag, "%s", *tdm_s3_xml_value(x->xml)
               ? tdm_s3_xml_value(x->xml) : x->etag);
      snprintf(j->md5, sizeof j->md5, "%s", x->file_md5);
      j->bytes = x->file_size;
      x->upload_id[0] = '\0';
      finish(x, 1, NULL);
      return;
    }
    case PH_MP_ABORT:
      x->upload_id[0] = '\0';
      finish(x, 0, &x->saved);
      return;
  }
}

static tdm_s3_net classify(CURLcode rc) {
  switch (rc) {
    case CURLE_OK: return TDM_S3_NET_OK;
    case CURLE_OPERATION_TIMEDOUT: return TDM_S3_NET_TIMEOUT;
    case CURLE_COULDNT_CONNECT: return TDM_S3_NET_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TDM_S3_NET_DNS;
    case CURLE_PARTIAL_FILE: return TDM_S3_NET_TRUNCATED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return TDM_S3_NET_RESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return TDM_S3_NET_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: return TDM_S3_NET_LOCAL;
    default: return TDM_S3_NET_OTHER;
  }
}

static const char *net_code(tdm_s3_net net) {
  switch (net) {
    case TDM_S3_NET_TIMEOUT: return "ETIMEDOUT";
    case TDM_S3_NET_CONNECT: return "ECONNREFUSED";
    case TDM_S3_NET_DNS: return "EHOSTUNREACH";
    case TDM_S3_NET_TRUNCATED: return "ETRUNCATED";
    case TDM_S3_NET_RESET: return "ECONNRESET";
    case TDM_S3_NET_TLS: return "ETLS";
    default: return "ECURL";
  }
}

/* A request finished (curl says how). */
static void request_done(xfer *x, CURLcode rc) {
  tdm_s3_job *j = x->job;
  tdm_s3_net net = classify(rc);
  tdm_error e;
  const char *advice;
  long nconn = 0;
  if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK)
    x->b->c->connects += (uint64_t)nconn;
  x->b->c->requests++;
  end_request(x);
  j->http_status = x->status;
  if (x->local_failed) {
    e = x->local;
    job_failed(x, &e);
    return;
  }
  if (net != TDM_S3_NET_OK) {
    xerr(x, &e, net_code(net), "%s", x->errbuf[0] ? x->errbuf
                                                  : curl_easy_strerror(rc));
    if (net == TDM_S3_NET_TLS) {
      size_t n = strlen(e.message);
      snprintf(e.message + n, sizeof e.message - n, "; check AWS_CA_BUNDLE "
               "and the endpoint's certificate");
    }
    request_failed(x, &e, tdm_s3_retryable(net, 0, NULL));
    return;
  }
  if (x->status >= 200 && x->status < 300) {
    request_ok(x);
    return;
  }
  {
    tdm_s3_errinfo ei;
    char code[TDM_ERR_CODE_MAX], snippet[128];
    int have = tdm_s3_parse_error(x->errbody.data ? x->errbody.data : "",
                                  x->errbody.len, &ei);
    size_t i, k = 0;
    tdm_s3_error_code(have ? ei.code : NULL, x->status, code, sizeof code);
    advice = tdm_s3_advice(code);
    snprintf(j->request_id, sizeof j->request_id, "%s",
             have && ei.request_id[0] ? ei.request_id : x->request_id);
    if (have) {
      xerr(x, &e, code, "%s (HTTP %ld %s%s%s)%s%s", ei.message[0]
           ? ei.message : ei.code, x->status, ei.code, j->request_id[0]
           ? ", request id " : "", j->request_id, *advice ? "; " : "",
           advice);
    } else {
      /* not S3 XML: one clean line from the start of the body */
      for (i = 0; i < x->errbody.len && k < sizeof snippet - 1; i++) {
        char ch = x->errbody.data[i];
        if (ch == '\n' || ch == '\r') break;
        snippet[k++] = (ch >= 32 && ch < 127) ? ch : '?';
      }
      snippet[k] = '\0';
      xerr(x, &e, code, "%sHTTP %ld%s%s%s%s%s", x->status == 404
           ? "no such object (" : "", x->status, x->status == 404 ? ")"
           : "", k ? ": " : "", snippet, *advice ? "; " : "", advice);
    }
    request_failed(x, &e, tdm_s3_retryable(TDM_S3_NET_OK, x->status,
                                           have ? ei.code : NULL));
  }
}

/* ---- jobs and batches --------------------------------------------------- */

void tdm_s3_job_clear(tdm_s3_job *j) {
  size_t i;
  for (i = 0; i < j->nobjects; i++) free(j->objects[i].key);
  free(j->objects);
  j->objects = NULL;
  j->nobjects = 0;
  free(j->next_token);
  j->next_token = NULL;
  for (i = 0; i < j->ndeleted; i++) free(j->deleted[i]);
  free(j->deleted);
  j->deleted = NULL;
  j->ndeleted = 0;
  for (i = 0; i < j->nerrors; i++) free(j->errors[i].key);
  free(j->errors);
  j->errors = NULL;
  j->nerrors = 0;
}

/* PUT: open and hash the source; choose single or multipart. */
static int prepare_put(xfer *x, tdm_error *err) {
  tdm_s3 *c = x->b->c;
  tdm_s3_job *j = x->job;
  struct stat st;
  unsigned char d[TDM_MD5_LEN];
  if (!j->path) return xerr(x, err, "EINVAL", "no source file");
  x->in_fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (x->in_fd < 0 || fstat(x->in_fd, &st) != 0)
    return xerr(x, err, tdm_errno_name(errno), "open %s: %s", j->path,
                strerror(errno));
  if (!S_ISREG(st.st_mode))
    return xerr(x, err, "EISDIR", "%s is not a regular file", j->path);
  x->file_size = (uint64_t)st.st_size;
  if (x->file_size <= c->threshold) {
    if (hash_region(x->in_fd, 0, x->file_size, d, x->file_md5, x->file_sha,
                    j->path, err) != TDM_OK)
      return TDM_ERR;
    b64(d, TDM_MD5_LEN, x->file_md5_b64);
    x->phase = PH_MAIN;
    return TDM_OK;
  }
  if (hash_region(x->in_fd, 0, x->file_size, d, x->file_md5, NULL, j->path,
                  err) != TDM_OK)
    return TDM_ERR;
  x->psize = c->part_size;
  while ((x->file_size + x->psize - 1) / x->psize > MAX_PARTS)
    x->psize *= 2;
  x->nparts = (int)((x->file_size + x->psize - 1) / x->psize);
  x->part_etags = calloc((size_t)x->nparts, sizeof *x->part_etags);
  if (!x->part_etags) return xerr(x, err, "ENOMEM", "out of memory");
  x->phase = PH_MP_INIT;
  return TDM_OK;
}

static void start_job(tdm_s3_batch *b, size_t i) {
  xfer *x = &b->x[i];
  tdm_s3_job *j = &b->jobs[i];
  tdm_error e;
  memset(x, 0, sizeof *x);
  x->b = b;
  x->job = j;
  x->fd = x->in_fd = -1;
  tdm_buf_init(&x->errbody, ERRBODY_MAX + 1);
  tdm_buf_init(&x->body, POSTBODY_MAX);
  b->active[b->nactive++] = x;
  x->tries = 1;
  x->phase = PH_MAIN;
  if (j->op == TDM_S3_PUT && prepare_put(x, &e) != TDM_OK) {
    finish(x, 0, &e);
    return;
  }
  if (j->op == TDM_S3_DELETE_MANY && j->nkeys > TDM_S3_DELETE_BATCH) {
    xerr(x, &e, "EINVAL", "more than %d keys in one batch",
         TDM_S3_DELETE_BATCH);
    finish(x, 0, &e);
    return;
  }
  launch(x);
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
      !(b->active = calloc(n * (MP_PARALLEL + 1), sizeof *b->active)) ||
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
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  pthread_cond_init(&b->cv_out, NULL);
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
                j->op == TDM_S3_GET ? "download"
                : j->op == TDM_S3_PUT ? "upload" : "request", b->c->bucket,
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

/* Stop everything: in-flight jobs are aborted (temp files removed, open
 * uploads aborted), jobs not started are marked so. */
static void abort_all(tdm_s3_batch *b, const char *why) {
  tdm_error e;
  collect_finalized(b, 1);     /* let flushing GETs finish first */
  while (b->nactive > 0) {
    xfer *x = b->active[b->nactive - 1];
    end_request(x);
    if (x->parent) {           /* a part: its upload is aborted below */
      kid_done(x);
      continue;
    }
    kill_kids(x);
    if (x->upload_id[0]) abort_upload_now(x);
    x->job->interrupted = 1;
    xerr(x, &e, "EINTR", "%s", why);
    finish(x, 0, &e);
  }
  while (b->pq_head < b->pq_tail)
    not_started(b, b->pendq[b->pq_head++ % b->n], why);
}

/* Start due retries and new jobs up to the concurrency. */
static void fill(tdm_s3_batch *b) {
  double now = now_mono();
  size_t k;
  for (k = b->nactive; k-- > 0;) {
    xfer *x;
    if (k >= b->nactive) continue;
    x = b->active[k];
    if (x->state == ST_WAITING && x->ready_at <= now) launch(x);
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
      if (x && x->easy == e) request_done(x, rc);
    }
  }
}

int tdm_s3_batch_step(tdm_s3_batch *b, int max_wait_ms) {
  int running = 0;
  double wait = max_wait_ms, now;
  size_t k;
  if (!b->interrupted && tdm_interrupted()) {
    b->interrupted = 1;
    abort_all(b, "interrupted");
  }
  if (b->remaining == 0) return 0;
  fill(b);
  curl_multi_perform(b->c->multi, &running);
  drain(b);
  collect_finalized(b, 0);
  fill(b);
  if (b->remaining == 0) return 0;
  now = now_mono();
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
  int i;
  if (!b) return;
  if (b->remaining > 0) abort_all(b, "aborted");
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  for (i = 0; i < b->nth; i++) pthread_join(b->th[i], NULL);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  pthread_cond_destroy(&b->cv_out);
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
