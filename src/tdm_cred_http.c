/*
 * tdm_cred_http.c -- one blocking HTTP request to a credential service
 * (EC2 instance metadata, the container endpoint, STS, the SSO portal)
 * on a libcurl easy handle. These run once per resolution, before any
 * transfer, so a plain easy handle is enough; the S3 client's multi loop
 * is not involved.
 *
 * Secrets: neither request headers nor the body ever go into a message;
 * errors name the service (`what`), the URL and curl's reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_curl.h"
#include "tdm_cred_int.h"

#define RESP_MAX (1024 * 1024)

typedef struct sink {
  tdm_buf *buf;
  int overflow;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  sink *s = ud;
  size_t len = size * n;
  if (tdm_buf_append(s->buf, data, len, NULL) != TDM_OK) {
    s->overflow = 1;
    return 0;
  }
  return len;
}

int tdm_credi_http_do(const tdm_credi_http *r, long *status, tdm_buf *resp,
                      tdm_error *err) {
  CURL *e;
  struct curl_slist *hdrs = NULL, *l;
  char errbuf[CURL_ERROR_SIZE], line[8192];
  const char *ca = getenv("AWS_CA_BUNDLE");
  sink s;
  CURLcode cc;
  size_t i;
  int rc = TDM_ERR;

  *status = 0;
  tdm_buf_init(resp, RESP_MAX);
  if (tdm_curl_load(err) != TDM_OK) return TDM_ERR;
  if (!(e = curl_easy_init()))
    return tdm_error_set(err, "ENOMEM", "%s: libcurl failed to start",
                         r->what);
  for (i = 0; i < r->nheaders; i++) {
    int n = snprintf(line, sizeof line, "%s: %s", r->headers[i].name,
                     r->headers[i].value);
    if (n < 0 || (size_t)n >= sizeof line) {
      tdm_error_set(err, "EINVAL", "%s: header %s too long", r->what,
                    r->headers[i].name);
      goto done;
    }
    if (!(l = curl_slist_append(hdrs, line))) {
      tdm_error_set(err, "ENOMEM", "%s: out of memory", r->what);
      goto done;
    }
    hdrs = l;
  }
  if ((l = curl_slist_append(hdrs, "Expect:")) != NULL) hdrs = l;
  s.buf = resp;
  s.overflow = 0;
  errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  if (ca && *ca) curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  if (strcmp(r->method, "GET") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  if (r->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
  } else if (strcmp(r->method, "PUT") == 0 ||
             strcmp(r->method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
  }
  cc = curl_easy_perform(e);
  if (s.overflow) {
    tdm_error_set(err, "EHTTP", "%s: answer from %s is larger than %d "
                  "bytes", r->what, r->url, RESP_MAX);
    goto done;
  }
  if (cc != CURLE_OK) {
    tdm_error_set(err, "EHTTP", "%s: %s: %s", r->what, r->url,
                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
    goto done;
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
  rc = TDM_OK;
done:
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(e);
  if (rc != TDM_OK) tdm_buf_free(resp);
  return rc;
}
