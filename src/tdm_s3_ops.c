/* tdm_s3_ops.c -- the S3 operations, one handler each (as curl's
 * Curl_handler): the single-request ones (PUT, HEAD, DELETE, a listing
 * page, DeleteObjects) here, GET in tdm_s3_get.c, a large PUT's steps in
 * tdm_s3_multipart.c; and the table from a job's op to its handler. */
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tdm_s3_xfer.h"

/* ---- PUT ----------------------------------------------------------------- */

/* Open and hash the source; choose single or multipart. */
static int put_setup(xfer *x, tdm_error *err) {
  tdm_s3 *c = x->b->c;
  tdm_s3_job *j = x->job;
  struct stat st;
  unsigned char d[TDM_MD5_LEN];
  if (!j->path) return tdm_s3i_xerr(x, err, "EINVAL", "no source file");
  x->in_fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (x->in_fd < 0 || fstat(x->in_fd, &st) != 0)
    return tdm_s3i_xerr(x, err, tdm_errno_name(errno), "open %s: %s",
                        j->path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return tdm_s3i_xerr(x, err, "EISDIR", "%s is not a regular file",
                        j->path);
  x->file_size = (uint64_t)st.st_size;
  if (x->file_size <= c->threshold) {
    if (tdm_s3i_hash_region(x->in_fd, 0, x->file_size, d, x->file_md5,
                            x->file_sha, j->path, err) != TDM_OK)
      return TDM_ERR;
    tdm_s3i_b64(d, TDM_MD5_LEN, x->file_md5_b64);
    /* an additional checksum for other tools (and S3) to verify with;
     * a second read of a file that is in the page cache now */
    if (c->checksum != TDM_CK_NONE &&
        tdm_ck_file(j->path, c->checksum, x->file_ck, err) != TDM_OK)
      return TDM_ERR;
    return TDM_OK;
  }
  if (tdm_s3i_hash_region(x->in_fd, 0, x->file_size, d, x->file_md5, NULL,
                          j->path, err) != TDM_OK)
    return TDM_ERR;
  return tdm_s3i_mp_plan(x, err);
}

static int put_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  tdm_s3_job *j = x->job;
  (void)err;
  rb->r.method = "PUT";
  rb->h[rb->nh++] = (tdm_kv){"Content-MD5", x->file_md5_b64};
  rb->h[rb->nh++] = (tdm_kv){"x-amz-meta-md5", x->file_md5};
  if (j->content_type && *j->content_type)
    rb->h[rb->nh++] = (tdm_kv){"Content-Type", j->content_type};
  if (j->if_none_match) rb->h[rb->nh++] = (tdm_kv){"If-None-Match", "*"};
  if (x->file_ck[0]) {
    static const char *const sdk[] = {
      "", "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"
    };
    tdm_ck_algo a = x->b->c->checksum;
    snprintf(rb->ckname, sizeof rb->ckname, "x-amz-checksum-%s",
             tdm_ck_name(a));
    rb->h[rb->nh++] = (tdm_kv){rb->ckname, x->file_ck};
    rb->h[rb->nh++] = (tdm_kv){"x-amz-sdk-checksum-algorithm", sdk[a]};
  }
  tdm_s3i_add_sse(x, rb);
  rb->r.payload_hash = x->file_sha;
  tdm_s3i_set_upload(x, 0, x->file_size);
  return TDM_OK;
}

/* S3 checked the body against Content-MD5 before it answered 2xx: that
 * is the verification (the ETag of an encrypted object is no MD5). */
static void put_ok(xfer *x) {
  tdm_s3_job *j = x->job;
  snprintf(j->md5, sizeof j->md5, "%s", x->file_md5);
  snprintf(j->etag, sizeof j->etag, "%s", x->a.etag);
  j->bytes = x->file_size;
  tdm_s3i_finish(x, 1, NULL);
}

static const tdm_s3_handler put = {
  "upload", put_setup, put_prepare, put_ok, NULL
};

/* ---- HEAD, DELETE ---------------------------------------------------------- */

static int head_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  (void)err;
  rb->r.method = "HEAD";
  rb->h[rb->nh++] = (tdm_kv){"x-amz-checksum-mode", "ENABLED"};
  curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
  return TDM_OK;
}

static void head_ok(xfer *x) {
  tdm_s3_job *j = x->job;
  j->bytes = x->content_length;
  snprintf(j->etag, sizeof j->etag, "%s", x->a.etag);
  j->md5_source = tdm_s3_md5_of(&x->a, j->md5);
  j->last_modified = x->last_modified;
  tdm_s3i_finish(x, 1, NULL);
}

static const tdm_s3_handler head = {
  "head", NULL, head_prepare, head_ok, NULL
};

static int delete_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  (void)err;
  rb->r.method = "DELETE";
  curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
  return TDM_OK;
}

/* A 2xx answer is the whole job. */
static void done_ok(xfer *x) {
  tdm_s3i_finish(x, 1, NULL);
}

static const tdm_s3_handler delete = {
  "delete", NULL, delete_prepare, done_ok, NULL
};

/* ---- answers in XML: a listing page, DeleteObjects ------------------------ */

static void xml_ok(xfer *x) {
  if (tdm_s3i_xml_end(x) == TDM_OK) tdm_s3i_finish(x, 1, NULL);
}

static int list_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  tdm_s3_job *j = x->job;
  (void)err;
  rb->r.method = "GET";
  rb->r.key = "";
  rb->q[rb->nq++] = (tdm_kv){"list-type", "2"};
  rb->q[rb->nq++] = (tdm_kv){"prefix", j->key ? j->key : ""};
  if (j->max_keys > 0) {
    snprintf(rb->maxk, sizeof rb->maxk, "%d", j->max_keys);
    rb->q[rb->nq++] = (tdm_kv){"max-keys", rb->maxk};
  }
  if (j->token && *j->token)
    rb->q[rb->nq++] = (tdm_kv){"continuation-token", j->token};
  if (j->start_after && *j->start_after)
    rb->q[rb->nq++] = (tdm_kv){"start-after", j->start_after};
  tdm_s3_job_clear(j);
  rb->xk = TDM_S3_XML_LIST;
  rb->want_xml = 1;
  return TDM_OK;
}

static const tdm_s3_handler list = {
  "list", NULL, list_prepare, xml_ok, NULL
};

static int delete_many_setup(xfer *x, tdm_error *err) {
  if (x->job->nkeys > TDM_S3_DELETE_BATCH)
    return tdm_s3i_xerr(x, err, "EINVAL", "more than %d keys in one batch",
                        TDM_S3_DELETE_BATCH);
  return TDM_OK;
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

static int delete_many_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  rb->r.method = "POST";
  rb->r.key = "";
  rb->q[rb->nq++] = (tdm_kv){"delete", ""};
  if (delete_body(x, err) != TDM_OK ||
      tdm_s3i_body_hashes(x, rb->bmd5, rb->bsha, err) != TDM_OK)
    return TDM_ERR;
  rb->h[rb->nh++] = (tdm_kv){"Content-MD5", rb->bmd5};
  rb->h[rb->nh++] = (tdm_kv){"Content-Type", "application/xml"};
  rb->r.payload_hash = rb->bsha;
  tdm_s3i_set_post(x);
  tdm_s3_job_clear(x->job);
  rb->xk = TDM_S3_XML_DELETE;
  rb->want_xml = 1;
  return TDM_OK;
}

static const tdm_s3_handler delete_many = {
  "delete-objects", delete_many_setup, delete_many_prepare, xml_ok, NULL
};

/* ---- the table ------------------------------------------------------------- */

static const tdm_s3_handler *const handlers[] = {
  [TDM_S3_GET] = &tdm_s3i_get,
  [TDM_S3_PUT] = &put,
  [TDM_S3_HEAD] = &head,
  [TDM_S3_DELETE] = &delete,
  [TDM_S3_LIST] = &list,
  [TDM_S3_DELETE_MANY] = &delete_many,
};

const tdm_s3_handler *tdm_s3i_handler(tdm_s3_op op) {
  return handlers[op];
}
