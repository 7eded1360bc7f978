/* tdm_s3_io.c -- the bytes of one request: curl's callbacks (headers,
 * body, upload reads), request bodies and their hashes, and the one form
 * of a transfer's error message. Callbacks only record: bytes go to temp
 * files and hashes, XML to expat, failures into the xfer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tdm_s3_xfer.h"

int tdm_s3i_xerr(const xfer *x, tdm_error *e, const char *code,
                 const char *fmt, ...) {
  char detail[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (x->job->op == TDM_S3_DELETE_MANY)
    return tdm_error_set(e, code, "%s: %zu keys in s3://%s: %s", x->h->name,
                         x->job->nkeys, x->b->c->bucket, detail);
  return tdm_error_set(e, code, "%s s3://%s/%s: %s", x->h->name,
                       x->b->c->bucket, x->job->key ? x->job->key : "",
                       detail);
}

void tdm_s3i_b64(const unsigned char *in, int len, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, len);
}

int tdm_s3i_hash_region(int fd, uint64_t off, uint64_t len,
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

int tdm_s3i_body_hashes(xfer *x, char *md5b64, char *sha, tdm_error *err) {
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
  if (rc == TDM_OK) tdm_s3i_b64(d, TDM_MD5_LEN, md5b64);
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

void tdm_s3i_reset_response(xfer *x) {
  x->have_cl = 0;
  x->content_length = 0;
  memset(&x->a, 0, sizeof x->a);
  x->retry_after[0] = '\0';
  if (x->ck_on) tdm_ck_free(&x->ck);
  x->ck_on = x->ck_composite = 0;
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
    tdm_s3i_reset_response(x);
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
    tdm_etag_unquote(x->a.etag, sizeof x->a.etag, v);
  } else if (strcasecmp(line, "last-modified") == 0) {
    x->last_modified = tdm_parse_time(v);
  } else if (strcasecmp(line, "retry-after") == 0) {
    scopy(x->retry_after, sizeof x->retry_after, v);
  } else if (strcasecmp(line, "x-amz-request-id") == 0) {
    scopy(x->request_id, sizeof x->request_id, v);
  } else if (strncasecmp(line, "x-amz-server-side-encryption", 28) == 0) {
    if (line[28] == '\0') scopy(x->a.sse, sizeof x->a.sse, v);
    else if (strcasecmp(line + 28, "-customer-algorithm") == 0)
      x->a.sse_c = 1;
  } else if (strcasecmp(line, "x-amz-checksum-type") == 0) {
    if (strcasecmp(v, "COMPOSITE") == 0) x->ck_composite = 1;
  } else if (strncasecmp(line, "x-amz-checksum-", 15) == 0) {
    tdm_ck_algo algo = tdm_ck_from_name(line + 15);
    /* the first one; a composite (multipart "B64-N") one covers parts */
    if (algo != TDM_CK_NONE && !x->a.ck_algo[0] && !strchr(v, '-')) {
      scopy(x->a.ck_algo, sizeof x->a.ck_algo, tdm_ck_name(algo));
      scopy(x->a.ck_value, sizeof x->a.ck_value, v);
      /* a GET's body is checked against it as it arrives */
      if (x->fd >= 0 && x->status >= 200 && x->status < 300 &&
          tdm_ck_init(&x->ck, algo, NULL) == TDM_OK)
        x->ck_on = 1;
    }
  } else if (strcasecmp(line, "x-amz-bucket-region") == 0) {
    scopy(x->a.bucket_region, sizeof x->a.bucket_region, v);
  } else if (strncasecmp(line, "x-amz-meta-", 11) == 0) {
    tdm_s3_job *j = x->job;
    const char *name = line + 11;
    char *p;
    tdm_s3i_meta_md5(&x->a, name, v);
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

/* A 2xx body goes to the GET's temp file (fd open) or the XML parser; an
 * error body is kept, bounded. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (x->status >= 200 && x->status < 300) {
    if (x->fd >= 0) {
      if (tdm_write_all(x->fd, data, n) != 0) {
        tdm_s3i_xerr(x, &x->local, tdm_errno_name(errno), "write %s: %s",
                     x->tmp, strerror(errno));
        x->local_failed = 1;
        return 0;
      }
      if (tdm_hash_update(x->md5, data, n, &x->local) != TDM_OK) {
        x->local_failed = 1;
        return 0;
      }
      if (x->ck_on) tdm_ck_update(&x->ck, data, n);
      x->received += n;
      x->b->bytes += n;
    } else if (x->xml) {
      tdm_error e;
      if (tdm_s3_xml_feed(x->xml, data, n, 0, &e) != TDM_OK) {
        tdm_s3i_xerr(x, &x->local, e.code, "%s", e.message);
        x->local_failed = 1;
        return 0;
      }
    }
    return n;
  }
  /* an error body: keep the first ERRBODY_MAX bytes */
  if (x->errbody.len < TDM_S3I_ERRBODY_MAX) {
    size_t room = TDM_S3I_ERRBODY_MAX - x->errbody.len;
    tdm_buf_append(&x->errbody, data, n < room ? n : room, NULL);
  }
  return n;
}

void tdm_s3i_set_callbacks(xfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
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
      tdm_s3i_xerr(x, &x->local, tdm_errno_name(errno), "read %s: %s",
                   x->job->path, strerror(errno));
    else
      tdm_s3i_xerr(x, &x->local, "EIO", "%s shrank while being uploaded",
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

void tdm_s3i_set_upload(xfer *x, uint64_t off, uint64_t len) {
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

void tdm_s3i_add_sse(const xfer *x, tdm_s3_reqb *rb) {
  const tdm_s3 *c = x->b->c;
  if (!c->sse[0]) return;
  rb->h[rb->nh++] = (tdm_kv){"x-amz-server-side-encryption", c->sse};
  if (c->sse_kms_key_id[0] && strncmp(c->sse, "aws:kms", 7) == 0)
    rb->h[rb->nh++] = (tdm_kv){"x-amz-server-side-encryption-aws-kms-key-id",
                               c->sse_kms_key_id};
}

void tdm_s3i_set_post(xfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                   (curl_off_t)x->body.len);
  curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS,
                   x->body.data ? x->body.data : "");
}
