/* tdm_s3_xfer.c -- one request's life in the transfer loop: start it on a
 * pooled easy handle as its operation (x->h) asks, read how it ended,
 * then hand a 2xx answer to the operation, retry on the loop's timer, or
 * finish the job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tdm_s3_xfer.h"

static void trace_attempt(xfer *x, double retry_in);

double tdm_s3i_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tdm_s3i_start_request(xfer *x, tdm_error *err) {
  tdm_s3 *c = x->b->c;
  tdm_s3_job *j = x->job;
  tdm_s3_reqb rb;
  memset(&rb, 0, sizeof rb);
  rb.r.key = j->key ? j->key : "";
  rb.r.payload_hash = TDM_S3I_EMPTY_SHA256;
  x->status = 0;
  x->local_failed = 0;
  tdm_s3i_reset_response(x);
  tdm_s3_xml_free(x->xml);
  x->xml = NULL;
  if (!(x->easy = tdm_s3i_easy_get(c)))
    return tdm_s3i_xerr(x, err, "ENOMEM", "out of memory");
  snprintf(x->region, sizeof x->region, "%s", c->region);
  if (x->h->prepare(x, &rb, err) != TDM_OK) goto fail;
  if (rb.want_xml && !(x->xml = tdm_s3_xml_new(rb.xk, j, err))) goto fail;
  rb.r.query = rb.q;
  rb.r.nq = rb.nq;
  rb.r.headers = rb.h;
  rb.r.nh = rb.nh;
  if (tdm_s3i_prepare(c, x->easy, &rb.r, &x->hdrs, x->errbuf, err)
      != TDM_OK)
    goto fail;
  tdm_s3i_set_callbacks(x);
  x->method = rb.r.method;
  x->started = tdm_s3i_now();
  x->traced = 0;
  x->net_code = NULL;
  if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
    tdm_s3i_xerr(x, err, "EIO", "libcurl refused the transfer");
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

void tdm_s3i_end_request(xfer *x) {
  if (!x->easy) return;
  curl_multi_remove_handle(x->b->c->multi, x->easy);
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  tdm_s3i_easy_put(x->b->c, x->easy);
  x->easy = NULL;
}

void tdm_s3i_release(xfer *x) {
  tdm_s3i_end_request(x);
  if (x->fd >= 0) close(x->fd);
  x->fd = -1;
  if (x->tmp[0]) unlink(x->tmp);
  x->tmp[0] = '\0';
  if (x->in_fd >= 0) close(x->in_fd);
  x->in_fd = -1;
  tdm_hash_free(x->md5);
  x->md5 = NULL;
  if (x->ck_on) tdm_ck_free(&x->ck);
  x->ck_on = 0;
  tdm_s3_xml_free(x->xml);
  x->xml = NULL;
  free(x->part_etags);
  x->part_etags = NULL;
  tdm_buf_free(&x->errbody);
  tdm_buf_free(&x->body);
}

void tdm_s3i_remove_active(tdm_s3_batch *b, xfer *x) {
  size_t i;
  for (i = 0; i < b->nactive; i++)
    if (b->active[i] == x) {
      b->active[i] = b->active[--b->nactive];
      return;
    }
}

void tdm_s3i_finish(xfer *x, int ok, const tdm_error *e) {
  tdm_s3_batch *b = x->b;
  tdm_s3_job *j = x->job;
  tdm_s3i_release(x);
  j->ok = ok;
  j->done = 1;
  j->answer = x->a;
  if (!ok && e) j->err = *e;
  x->state = ST_DONE;
  tdm_s3i_remove_active(b, x);
  b->doneq[b->dq_tail++ % b->n] = (size_t)(x - b->x);
  b->ndone++;
  b->remaining--;
}

void tdm_s3i_job_failed(xfer *x, const tdm_error *e) {
  if (x->h->on_fail && x->h->on_fail(x, e)) return;
  tdm_s3i_finish(x, 0, e);
}

void tdm_s3i_request_failed(xfer *x, tdm_error *e, int retryable) {
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
    x->ready_at = tdm_s3i_now() + d;
    if (x->easy == NULL) {       /* the attempt that ended */
      x->tries--;
      trace_attempt(x, d);
      x->tries++;
    }
    return;
  }
  if (x->easy == NULL) trace_attempt(x, -1);
  if (retryable && x->tries > 1) {
    size_t n = strlen(e->message);
    snprintf(e->message + n, sizeof e->message - n, " (gave up after %d "
             "attempts)", x->tries);
  }
  tdm_s3i_job_failed(x, e);
}

void tdm_s3i_launch(xfer *x) {
  tdm_error e;
  if (tdm_s3i_start_request(x, &e) != TDM_OK) tdm_s3i_job_failed(x, &e);
}

void tdm_s3i_next(xfer *x, const tdm_s3_handler *h) {
  x->h = h;
  x->tries = 1;
  tdm_s3i_launch(x);
}

int tdm_s3i_xml_end(xfer *x) {
  tdm_error e, e2;
  if (!x->xml || tdm_s3_xml_feed(x->xml, "", 0, 1, &e) == TDM_OK)
    return TDM_OK;
  tdm_s3i_xerr(x, &e2, e.code, "%s", e.message);
  tdm_s3i_job_failed(x, &e2);
  return TDM_ERR;
}

/* S3 says the bucket is in another region than the request was signed
 * for (400 AuthorizationHeaderMalformed, 301 PermanentRedirect, each
 * with x-amz-bucket-region): sign for that region from now on, once per
 * client, and send the request again at once. 1 when it was sent. */
static int resign_for_region(xfer *x) {
  tdm_s3 *c = x->b->c;
  const char *br = x->a.bucket_region;
  if ((x->status != 400 && x->status != 301) || !br[0] ||
      strcmp(br, x->region) == 0)
    return 0;
  if (strcmp(br, c->region) != 0 && tdm_s3i_switch_region(c, br) != TDM_OK)
    return 0;
  trace_attempt(x, 0);
  tdm_s3i_launch(x);
  return 1;
}

/* A non-2xx answer as *e: S3's code, message and request id with advice,
 * or one clean line from the start of a body that is not S3 XML.
 * Returns whether it is worth retrying. */
static int answer_error(xfer *x, tdm_error *e) {
  tdm_s3_job *j = x->job;
  tdm_s3_errinfo ei;
  char code[TDM_ERR_CODE_MAX], snippet[128], hint[160];
  const char *advice;
  int have = tdm_s3_parse_error(x->errbody.data ? x->errbody.data : "",
                                x->errbody.len, &ei);
  size_t i, k = 0;
  tdm_s3_error_code(have ? ei.code : NULL, x->status, code, sizeof code);
  advice = tdm_s3_advice(code);
  snprintf(j->request_id, sizeof j->request_id, "%s",
           have && ei.request_id[0] ? ei.request_id : x->request_id);
  if (x->a.bucket_region[0] && strcmp(x->a.bucket_region, x->region)) {
    /* said by a header, so also for a HEAD, which has no body */
    snprintf(hint, sizeof hint, "the bucket is in region %s, not %s; set "
             "AWS_REGION=%s", x->a.bucket_region, x->region,
             x->a.bucket_region);
    advice = hint;
  }
  if (have) {
    tdm_s3i_xerr(x, e, code, "%s (HTTP %ld %s%s%s)%s%s", ei.message[0]
                 ? ei.message : ei.code, x->status, ei.code,
                 j->request_id[0] ? ", request id " : "", j->request_id,
                 *advice ? "; " : "", advice);
  } else {
    for (i = 0; i < x->errbody.len && k < sizeof snippet - 1; i++) {
      char ch = x->errbody.data[i];
      if (ch == '\n' || ch == '\r') break;
      snippet[k++] = (ch >= 32 && ch < 127) ? ch : '?';
    }
    snippet[k] = '\0';
    tdm_s3i_xerr(x, e, code, "%sHTTP %ld%s%s%s%s%s", x->status == 404
                 ? "no such object (" : "", x->status, x->status == 404
                 ? ")" : "", k ? ": " : "", snippet, *advice ? "; " : "",
                 advice);
  }
  return tdm_s3_retryable(TDM_S3_NET_OK, x->status, have ? ei.code : NULL);
}

/* Report the attempt that just ended to the trace function, once per
 * attempt, before its outcome can finish the job. retry_in: seconds until
 * the retry, or -1. */
static void trace_attempt(xfer *x, double retry_in) {
  tdm_s3_trace t;
  void *ud;
  tdm_s3_trace_fn trace_fn = tdm_s3_get_trace(NULL, &ud);
  if (!trace_fn || x->traced) return;
  x->traced = 1;
  memset(&t, 0, sizeof t);
  t.method = x->method ? x->method : "?";
  t.key = x->job->key ? x->job->key : "";
  t.status = x->status;
  t.code = x->net_code;
  t.attempt = x->tries;
  t.ms = (tdm_s3i_now() - x->started) * 1000.0;
  t.retry_in = retry_in;
  trace_fn(&t, ud);
}

void tdm_s3i_request_done(xfer *x, CURLcode rc) {
  tdm_s3_net net = tdm_s3i_net_of(rc);
  tdm_error e;
  long nconn = 0;
  if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK)
    x->b->c->connects += (uint64_t)nconn;
  x->b->c->requests++;
  x->net_code = net != TDM_S3_NET_OK ? tdm_s3i_net_code(net) : NULL;
  tdm_s3i_end_request(x);
  x->job->http_status = x->status;
  if (x->local_failed) {
    e = x->local;
    tdm_s3i_job_failed(x, &e);
    return;
  }
  if (net != TDM_S3_NET_OK) {
    tdm_s3i_xerr(x, &e, tdm_s3i_net_code(net), "%s", x->errbuf[0]
                 ? x->errbuf : curl_easy_strerror(rc));
    if (net == TDM_S3_NET_TLS) {
      size_t n = strlen(e.message);
      snprintf(e.message + n, sizeof e.message - n, "; check AWS_CA_BUNDLE "
               "and the endpoint's certificate");
    }
    tdm_s3i_request_failed(x, &e, tdm_s3_retryable(net, 0, NULL));
    return;
  }
  if (x->status >= 200 && x->status < 300) {
    trace_attempt(x, -1);
    x->h->on_ok(x);
    return;
  }
  if (resign_for_region(x)) return;
  {
    int retry = answer_error(x, &e);
    tdm_s3i_request_failed(x, &e, retry);
  }
}

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
