/* tdm_s3_multipart.c -- a large PUT as a multipart upload: initiate, up
 * to TDM_S3I_MP_PARALLEL parts in flight at once (each a child xfer of
 * the upload), complete; a failure aborts the upload so no parts are
 * left behind. Each step is a handler the loop runs like an operation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_s3_xfer.h"

#define MAX_PARTS 10000u

static const tdm_s3_handler mp_part, mp_complete, mp_abort;

int tdm_s3i_mp_plan(xfer *x, tdm_error *err) {
  x->psize = x->b->c->part_size;
  while ((x->file_size + x->psize - 1) / x->psize > MAX_PARTS)
    x->psize *= 2;
  x->nparts = (int)((x->file_size + x->psize - 1) / x->psize);
  x->part_etags = calloc((size_t)x->nparts, sizeof *x->part_etags);
  if (!x->part_etags)
    return tdm_s3i_xerr(x, err, "ENOMEM", "out of memory");
  x->h = &tdm_s3i_mp_init;
  return TDM_OK;
}

int tdm_s3i_mp_sending(const xfer *x) {
  return x->parent != NULL || x->h == &tdm_s3i_mp_init || x->h == &mp_part;
}

void tdm_s3i_kid_done(xfer *k) {
  xfer *p = k->parent;
  int i;
  tdm_s3i_release(k);
  tdm_s3i_remove_active(k->b, k);
  k->b->nkids--;
  for (i = 0; i < TDM_S3I_MP_PARALLEL; i++)
    if (p->kids[i] == k) p->kids[i] = NULL;
  p->parts_running--;
  free(k);
}

void tdm_s3i_kill_kids(xfer *p) {
  int i;
  for (i = 0; i < TDM_S3I_MP_PARALLEL; i++)
    if (p->kids[i]) tdm_s3i_kid_done(p->kids[i]);
}

/* Keep up to MP_PARALLEL parts of upload p in flight; when all are up,
 * complete the upload. */
static void start_parts(xfer *p) {
  tdm_s3_batch *b = p->b;
  if (p->h != &mp_part) {
    p->h = &mp_part;
    p->next_part = 1;
  }
  while (p->parts_running < TDM_S3I_MP_PARALLEL &&
         p->next_part <= p->nparts && p->h == &mp_part) {
    xfer *k = calloc(1, sizeof *k);
    int i;
    if (!k) {
      tdm_error e;
      tdm_s3i_xerr(p, &e, "ENOMEM", "out of memory");
      tdm_s3i_kill_kids(p);
      tdm_s3i_job_failed(p, &e);
      return;
    }
    k->b = b;
    k->job = p->job;
    k->h = &mp_part;
    k->parent = p;
    k->fd = k->in_fd = -1;
    k->part = p->next_part++;
    k->tries = 1;
    tdm_buf_init(&k->errbody, TDM_S3I_ERRBODY_MAX + 1);
    tdm_buf_init(&k->body, TDM_S3I_POSTBODY_MAX);
    for (i = 0; i < TDM_S3I_MP_PARALLEL; i++)
      if (!p->kids[i]) {
        p->kids[i] = k;
        break;
      }
    p->parts_running++;
    b->active[b->nactive++] = k;
    b->nkids++;
    tdm_s3i_launch(k);         /* may fail the upload at once */
  }
  if (p->h == &mp_part && p->parts_running == 0 &&
      p->next_part > p->nparts)
    tdm_s3i_next(p, &mp_complete);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ud) {
  (void)data;
  (void)ud;
  return size * nmemb;
}

void tdm_s3i_abort_upload_now(xfer *x) {
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
  r.payload_hash = TDM_S3I_EMPTY_SHA256;
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

/* A step of an open upload failed: a part fails its upload; an upload
 * with an UploadId is aborted (on the loop, or at once when interrupted)
 * before the job finishes with the first failure. */
static int mp_fail(xfer *x, const tdm_error *e) {
  if (x->parent) {             /* a part failed: the upload fails */
    xfer *p = x->parent;
    tdm_error pe = *e;
    tdm_s3i_kid_done(x);
    tdm_s3i_kill_kids(p);
    tdm_s3i_job_failed(p, &pe);
    return 1;
  }
  if (x->upload_id[0] && !x->b->interrupted) {
    tdm_error e2;
    x->saved = *e;
    x->h = &mp_abort;
    x->tries = 1;
    if (tdm_s3i_start_request(x, &e2) != TDM_OK)
      tdm_s3i_finish(x, 0, &x->saved);
    return 1;
  }
  if (x->upload_id[0]) tdm_s3i_abort_upload_now(x);
  return 0;
}

/* ---- initiate ------------------------------------------------------------ */

static int init_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  tdm_s3_job *j = x->job;
  (void)err;
  rb->r.method = "POST";
  rb->q[rb->nq++] = (tdm_kv){"uploads", ""};
  rb->h[rb->nh++] = (tdm_kv){"x-amz-meta-md5", x->file_md5};
  if (j->content_type && *j->content_type)
    rb->h[rb->nh++] = (tdm_kv){"Content-Type", j->content_type};
  tdm_s3i_add_sse(x, rb);
  tdm_buf_reset(&x->body);
  tdm_s3i_set_post(x);
  rb->xk = TDM_S3_XML_INITIATE;
  rb->want_xml = 1;
  return TDM_OK;
}

static void init_ok(xfer *x) {
  tdm_error e;
  if (tdm_s3i_xml_end(x) != TDM_OK) return;
  snprintf(x->upload_id, sizeof x->upload_id, "%s",
           tdm_s3_xml_value(x->xml));
  if (!x->upload_id[0]) {
    tdm_s3i_xerr(x, &e, "S3_BadXML", "S3 started a multipart upload but "
                 "sent no UploadId");
    tdm_s3i_job_failed(x, &e);
    return;
  }
  start_parts(x);
}

const tdm_s3_handler tdm_s3i_mp_init = {
  "upload", NULL, init_prepare, init_ok, mp_fail
};

/* ---- parts --------------------------------------------------------------- */

static int part_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  const xfer *o = x->parent ? x->parent : x;
  uint64_t off = (uint64_t)(x->part - 1) * o->psize;
  uint64_t len = o->file_size - off < o->psize ? o->file_size - off
                                               : o->psize;
  if (x->part_hashed != x->part) {
    unsigned char d[TDM_MD5_LEN];
    if (tdm_s3i_hash_region(o->in_fd, off, len, d, NULL, x->part_sha,
                            x->job->path, err) != TDM_OK)
      return TDM_ERR;
    tdm_s3i_b64(d, TDM_MD5_LEN, x->part_md5_b64);
    x->part_hashed = x->part;
  }
  rb->r.method = "PUT";
  snprintf(rb->num, sizeof rb->num, "%d", x->part);
  rb->q[rb->nq++] = (tdm_kv){"partNumber", rb->num};
  rb->q[rb->nq++] = (tdm_kv){"uploadId", o->upload_id};
  rb->h[rb->nh++] = (tdm_kv){"Content-MD5", x->part_md5_b64};
  rb->r.payload_hash = x->part_sha;
  tdm_s3i_set_upload(x, off, len);
  return TDM_OK;
}

static void part_ok(xfer *x) {
  xfer *p = x->parent;
  tdm_error e;
  if (!x->a.etag[0]) {
    tdm_s3i_xerr(x, &e, "S3_BadXML", "part %d: S3 sent no ETag", x->part);
    tdm_s3i_job_failed(x, &e);
    return;
  }
  snprintf(p->part_etags[x->part - 1], TDM_S3_ETAG_MAX, "%s", x->a.etag);
  tdm_s3i_kid_done(x);
  start_parts(p);
}

static const tdm_s3_handler mp_part = {
  "upload", NULL, part_prepare, part_ok, mp_fail
};

/* ---- complete ------------------------------------------------------------ */

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

static int complete_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  rb->r.method = "POST";
  rb->q[rb->nq++] = (tdm_kv){"uploadId", x->upload_id};
  if (complete_body(x, err) != TDM_OK ||
      tdm_s3i_body_hashes(x, rb->bmd5, rb->bsha, err) != TDM_OK)
    return TDM_ERR;
  rb->h[rb->nh++] = (tdm_kv){"Content-Type", "application/xml"};
  /* the object appears only at completion: the condition goes here */
  if (x->job->if_none_match)
    rb->h[rb->nh++] = (tdm_kv){"If-None-Match", "*"};
  rb->r.payload_hash = rb->bsha;
  tdm_s3i_set_post(x);
  rb->xk = TDM_S3_XML_COMPLETE;
  rb->want_xml = 1;
  return TDM_OK;
}

static void complete_ok(xfer *x) {
  tdm_s3_job *j = x->job;
  const tdm_s3_errinfo *ei;
  tdm_error e;
  if (tdm_s3i_xml_end(x) != TDM_OK) return;
  if ((ei = tdm_s3_xml_error(x->xml)) != NULL) {
    /* S3 may answer 200 and still fail the completion */
    char code[TDM_ERR_CODE_MAX];
    tdm_s3_error_code(ei->code, 0, code, sizeof code);
    tdm_s3i_xerr(x, &e, code, "completing the multipart upload: %s",
                 ei->message);
    tdm_s3i_request_failed(x, &e, tdm_s3_retryable(TDM_S3_NET_OK, 200,
                                                     ei->code));
    return;
  }
  snprintf(j->etag, sizeof j->etag, "%s", *tdm_s3_xml_value(x->xml)
           ? tdm_s3_xml_value(x->xml) : x->a.etag);
  snprintf(j->md5, sizeof j->md5, "%s", x->file_md5);
  j->bytes = x->file_size;
  x->upload_id[0] = '\0';
  tdm_s3i_finish(x, 1, NULL);
}

static const tdm_s3_handler mp_complete = {
  "upload", NULL, complete_prepare, complete_ok, mp_fail
};

/* ---- abort (after a failure; the job fails with the saved error) -------- */

static int abort_prepare(xfer *x, tdm_s3_reqb *rb, tdm_error *err) {
  (void)err;
  rb->r.method = "DELETE";
  rb->q[rb->nq++] = (tdm_kv){"uploadId", x->upload_id};
  curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
  return TDM_OK;
}

static void abort_ok(xfer *x) {
  x->upload_id[0] = '\0';
  tdm_s3i_finish(x, 0, &x->saved);
}

/* The abort itself failed: one synchronous try, then the job ends. */
static int abort_fail(xfer *x, const tdm_error *e) {
  (void)e;
  if (x->upload_id[0]) tdm_s3i_abort_upload_now(x);
  return 0;
}

static const tdm_s3_handler mp_abort = {
  "upload", NULL, abort_prepare, abort_ok, abort_fail
};
