/* test_s3.c -- unit tests of the S3 transport's pure parts: the expat
 * parsers (fed whole and byte by byte), the retry policy, error codes and
 * advice, time parsing, URL building for both addressing styles. No
 * network. */
#include <stdlib.h>
#include <string.h>

#include "tdm.h"
#include "tdm/s3.h"
#include "t.h"

static const char list_xml[] =
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
  "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
  "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>"
  "<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
  "<Contents><Key>p/a &amp; b.jpg</Key>"
  "<LastModified>2024-01-02T03:04:05.500Z</LastModified>"
  "<ETag>&quot;900150983cd24fb0d6963f7d28e17f72&quot;</ETag>"
  "<Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>"
  "<Contents><Key>p/\xc3\xa9t\xc3\xa9.jpg</Key>"
  "<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
  "<ETag>\"d41d8cd98f00b204e9800998ecf8427e-3\"</ETag>"
  "<Size>20971520</Size></Contents>"
  "<NextContinuationToken>tok+/=en</NextContinuationToken>"
  "</ListBucketResult>";

static void check_list(const char *what, size_t chunk) {
  tdm_s3_job job;
  tdm_error err;
  tdm_s3_xml *x;
  size_t off = 0, len = strlen(list_xml);
  int rc = TDM_OK;
  memset(&job, 0, sizeof job);
  x = tdm_s3_xml_new(TDM_S3_XML_LIST, &job, &err);
  T_CHECK(x != NULL, "%s: parser created", what);
  if (!x) return;
  while (rc == TDM_OK && off < len) {
    size_t n = chunk && chunk < len - off ? chunk : len - off;
    rc = tdm_s3_xml_feed(x, list_xml + off, n, 0, &err);
    off += n;
  }
  if (rc == TDM_OK) rc = tdm_s3_xml_feed(x, "", 0, 1, &err);
  T_EQ_INT(rc, TDM_OK, what);
  T_EQ_INT(job.nobjects, 2, what);
  if (job.nobjects == 2) {
    T_EQ_STR(job.objects[0].key, "p/a & b.jpg", "entity-decoded key");
    T_EQ_INT(job.objects[0].size, 3, "size");
    T_EQ_STR(job.objects[0].etag, "900150983cd24fb0d6963f7d28e17f72",
             "quotes stripped from ETag");
    T_EQ_STR(job.objects[0].md5, "900150983cd24fb0d6963f7d28e17f72",
             "plain ETag gives md5");
    T_CHECK(job.objects[0].last_modified > 1704164645.4 &&
            job.objects[0].last_modified < 1704164645.6,
            "last_modified: expected 1704164645.5, got %f",
            job.objects[0].last_modified);
    T_EQ_STR(job.objects[1].key, "p/\xc3\xa9t\xc3\xa9.jpg", "utf-8 key");
    T_EQ_STR(job.objects[1].md5, "", "multipart ETag gives no md5");
    T_EQ_INT(job.objects[1].size, 20971520, "large size");
  }
  T_EQ_STR(job.next_token, "tok+/=en", "continuation token");
  T_CHECK(tdm_s3_xml_error(x) == NULL, "%s: no <Error>", what);
  tdm_s3_xml_free(x);
  tdm_s3_job_clear(&job);
  T_CHECK(job.objects == NULL && job.next_token == NULL,
          "job_clear frees the page");
}

static void test_errors(void) {
  static const char body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey"
    "</Code><Message>The specified key does not exist.</Message>"
    "<Key>a/b</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>";
  tdm_s3_errinfo ei;
  T_EQ_INT(tdm_s3_parse_error(body, strlen(body), &ei), 1, "error parsed");
  T_EQ_STR(ei.code, "NoSuchKey", "code");
  T_EQ_STR(ei.message, "The specified key does not exist.", "message");
  T_EQ_STR(ei.request_id, "4442587FB7D0A2F9", "request id");
  T_EQ_INT(tdm_s3_parse_error("<html>Bad Gateway</html>", 24, &ei), 0,
           "HTML is not an S3 error");
  T_EQ_INT(tdm_s3_parse_error("Service Unavailable", 19, &ei), 0,
           "plain text is not an S3 error");
  T_EQ_INT(tdm_s3_parse_error("<Error><Code>X", 14, &ei), 0,
           "truncated XML is not an S3 error");
  T_EQ_INT(tdm_s3_parse_error("", 0, &ei), 0, "empty body");
}

static void test_delete_result(void) {
  static const char body[] =
    "<DeleteResult><Deleted><Key>a</Key></Deleted>"
    "<Deleted><Key>b &lt;1&gt;</Key></Deleted>"
    "<Error><Key>c</Key><Code>AccessDenied</Code><Message>Access Denied"
    "</Message></Error></DeleteResult>";
  tdm_s3_job job;
  tdm_error err;
  tdm_s3_xml *x;
  size_t i;
  int rc = TDM_OK;
  memset(&job, 0, sizeof job);
  x = tdm_s3_xml_new(TDM_S3_XML_DELETE, &job, &err);
  for (i = 0; x && rc == TDM_OK && i < sizeof body - 1; i++)
    rc = tdm_s3_xml_feed(x, body + i, 1, 0, &err);
  if (x && rc == TDM_OK) rc = tdm_s3_xml_feed(x, "", 0, 1, &err);
  T_EQ_INT(rc, TDM_OK, "DeleteResult fed byte by byte");
  T_EQ_INT(job.ndeleted, 2, "deleted count");
  if (job.ndeleted == 2) T_EQ_STR(job.deleted[1], "b <1>", "deleted key");
  T_EQ_INT(job.nerrors, 1, "error count");
  if (job.nerrors == 1) {
    T_EQ_STR(job.errors[0].key, "c", "error key");
    T_EQ_STR(job.errors[0].code, "S3_AccessDenied", "error code");
    T_EQ_STR(job.errors[0].message, "Access Denied", "error message");
  }
  tdm_s3_xml_free(x);
  tdm_s3_job_clear(&job);
}

static void test_multipart_xml(void) {
  static const char init[] =
    "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
    "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
  static const char done[] =
    "<CompleteMultipartUploadResult><ETag>\"3858f62230ac3c915f300c664312c11f"
    "-9\"</ETag></CompleteMultipartUploadResult>";
  static const char fail200[] =
    "<Error><Code>InternalError</Code><Message>We encountered an internal "
    "error.</Message></Error>";
  tdm_error err;
  tdm_s3_xml *x = tdm_s3_xml_new(TDM_S3_XML_INITIATE, NULL, &err);
  T_EQ_INT(tdm_s3_xml_feed(x, init, strlen(init), 1, &err), TDM_OK,
           "initiate parsed");
  T_EQ_STR(tdm_s3_xml_value(x), "VXBsb2FkIElE", "UploadId");
  tdm_s3_xml_free(x);
  x = tdm_s3_xml_new(TDM_S3_XML_COMPLETE, NULL, &err);
  T_EQ_INT(tdm_s3_xml_feed(x, done, strlen(done), 1, &err), TDM_OK,
           "complete parsed");
  T_EQ_STR(tdm_s3_xml_value(x), "3858f62230ac3c915f300c664312c11f-9",
           "complete ETag");
  T_CHECK(tdm_s3_xml_error(x) == NULL, "complete: no error");
  tdm_s3_xml_free(x);
  x = tdm_s3_xml_new(TDM_S3_XML_COMPLETE, NULL, &err);
  T_EQ_INT(tdm_s3_xml_feed(x, fail200, strlen(fail200), 1, &err), TDM_OK,
           "200 with <Error> parsed");
  T_CHECK(tdm_s3_xml_error(x) != NULL &&
          strcmp(tdm_s3_xml_error(x)->code, "InternalError") == 0,
          "complete answered 200 with an <Error> is seen as one");
  tdm_s3_xml_free(x);
}

static void test_bad_xml(void) {
  tdm_s3_job job;
  tdm_error err;
  tdm_s3_xml *x;
  int rc;
  char *big;
  memset(&job, 0, sizeof job);
  x = tdm_s3_xml_new(TDM_S3_XML_LIST, &job, &err);
  rc = tdm_s3_xml_feed(x, "<ListBucketResult><Contents><Key>a</Kez>", 40, 1,
                       &err);
  T_EQ_INT(rc, TDM_ERR, "mismatched tag fails");
  T_EQ_STR(err.code, "S3_BadXML", "malformed XML code");
  T_CHECK(strstr(err.message, "line 1") != NULL,
          "message gives the position, got '%s'", err.message);
  tdm_s3_xml_free(x);
  tdm_s3_job_clear(&job);
  /* one element's text is bounded */
  big = malloc(40000);
  memset(big, 'a', 40000);
  memset(&job, 0, sizeof job);
  x = tdm_s3_xml_new(TDM_S3_XML_LIST, &job, &err);
  rc = tdm_s3_xml_feed(x, "<ListBucketResult><Contents><Key>", 33, 0, &err);
  if (rc == TDM_OK) rc = tdm_s3_xml_feed(x, big, 40000, 0, &err);
  T_EQ_INT(rc, TDM_ERR, "a 40000-byte key is refused");
  tdm_s3_xml_free(x);
  tdm_s3_job_clear(&job);
  free(big);
}

static void test_escape(void) {
  tdm_buf b;
  tdm_error err;
  tdm_buf_init(&b, 1024);
  T_EQ_INT(tdm_s3_xml_escape("a&b<c>d\"e'f", &b, &err), TDM_OK, "escape");
  T_EQ_STR(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f", "escaped");
  tdm_buf_free(&b);
}

static void test_retry_policy(void) {
  static const struct {
    tdm_s3_net net;
    long status;
    const char *code;
    int want;
  } cases[] = {
    {TDM_S3_NET_OK, 500, "InternalError", 1},
    {TDM_S3_NET_OK, 503, "SlowDown", 1},
    {TDM_S3_NET_OK, 503, NULL, 1},
    {TDM_S3_NET_OK, 502, NULL, 1},
    {TDM_S3_NET_OK, 429, NULL, 1},
    {TDM_S3_NET_OK, 400, "RequestTimeout", 1},
    {TDM_S3_NET_OK, 200, "InternalError", 1},
    {TDM_S3_NET_OK, 403, "AccessDenied", 0},
    {TDM_S3_NET_OK, 403, "SignatureDoesNotMatch", 0},
    {TDM_S3_NET_OK, 400, "SignatureDoesNotMatch", 0},
    {TDM_S3_NET_OK, 403, "RequestTimeTooSkewed", 0},
    {TDM_S3_NET_OK, 403, NULL, 0},
    {TDM_S3_NET_OK, 404, "NoSuchKey", 0},
    {TDM_S3_NET_OK, 400, "InvalidDigest", 0},
    {TDM_S3_NET_TIMEOUT, 0, NULL, 1},
    {TDM_S3_NET_RESET, 0, NULL, 1},
    {TDM_S3_NET_CONNECT, 0, NULL, 1},
    {TDM_S3_NET_TRUNCATED, 0, NULL, 1},
    {TDM_S3_NET_DNS, 0, NULL, 1},
    {TDM_S3_NET_TLS, 0, NULL, 0},
    {TDM_S3_NET_LOCAL, 0, NULL, 0},
    {TDM_S3_NET_OTHER, 0, NULL, 0},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    T_CHECK(tdm_s3_retryable(cases[i].net, cases[i].status, cases[i].code)
            == cases[i].want, "retryable(net %d, %ld, %s): expected %d",
            (int)cases[i].net, cases[i].status,
            cases[i].code ? cases[i].code : "-", cases[i].want);
}

static void test_backoff(void) {
  double d;
  int a;
  /* full jitter: u scales the capped exponential ceiling */
  T_CHECK(tdm_s3_backoff(1, 0.1, 20, -1, 0.0) == 0.0, "u=0 gives 0");
  d = tdm_s3_backoff(1, 0.1, 20, -1, 0.5);
  T_CHECK(d > 0.0499 && d < 0.0501, "attempt 1, u=.5: expected 0.05, got %f",
          d);
  d = tdm_s3_backoff(4, 0.1, 20, -1, 0.5);
  T_CHECK(d > 0.399 && d < 0.401, "attempt 4, u=.5: expected 0.4, got %f", d);
  for (a = 1; a < 64; a++) {
    d = tdm_s3_backoff(a, 0.1, 20, -1, 0.99999);
    if (d > 20.0) break;
  }
  T_EQ_INT(a, 64, "the delay never exceeds the cap (first attempt over)");
  d = tdm_s3_backoff(1, 0.1, 20, 7, 0.5);
  T_CHECK(d == 7.0, "Retry-After 7 honoured: got %f", d);
  d = tdm_s3_backoff(1, 0.1, 20, 100000, 0.5);
  T_CHECK(d == 300.0, "Retry-After bounded to 300: got %f", d);
  T_CHECK(tdm_s3_retry_after("3", 0) == 3.0, "Retry-After: 3");
  T_CHECK(tdm_s3_retry_after(" 12 ", 0) == 12.0, "Retry-After padded");
  T_CHECK(tdm_s3_retry_after(NULL, 0) == -1, "absent");
  T_CHECK(tdm_s3_retry_after("soon", 0) == -1, "garbage");
  d = tdm_s3_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470);
  T_CHECK(d == 10.0, "HTTP-date Retry-After: expected 10, got %f", d);
}

static void test_codes(void) {
  char code[64];
  tdm_s3_error_code("NoSuchBucket", 404, code, sizeof code);
  T_EQ_STR(code, "S3_NoSuchBucket", "code from S3");
  tdm_s3_error_code(NULL, 404, code, sizeof code);
  T_EQ_STR(code, "S3_NoSuchKey", "HEAD 404 without body");
  tdm_s3_error_code("", 403, code, sizeof code);
  T_EQ_STR(code, "S3_AccessDenied", "403 without body");
  tdm_s3_error_code(NULL, 418, code, sizeof code);
  T_EQ_STR(code, "S3_HTTP418", "unknown status");
  T_CHECK(strstr(tdm_s3_advice("SignatureDoesNotMatch"), "secret") != NULL,
          "SignatureDoesNotMatch advice mentions the secret");
  T_CHECK(strstr(tdm_s3_advice("S3_RequestTimeTooSkewed"), "clock") != NULL,
          "clock skew advice");
  T_CHECK(strstr(tdm_s3_advice("NoSuchBucket"), "TDM_BUCKET") != NULL,
          "NoSuchBucket advice");
  T_EQ_STR(tdm_s3_advice("NoSuchKey"), "", "no advice for NoSuchKey");
}

static void test_time(void) {
  T_CHECK(tdm_parse_time("2024-01-02T03:04:05.000Z") == 1704164645.0,
          "ISO 8601");
  T_CHECK(tdm_parse_time("Tue, 02 Jan 2024 03:04:05 GMT") == 1704164645.0,
          "HTTP date");
  T_CHECK(tdm_parse_time("Tuesday, 02-Jan-24 03:04:05 GMT") ==
          1704164645.0, "RFC 850 date");
  T_CHECK(tdm_parse_time("Tue Jan  2 03:04:05 2024") == 1704164645.0,
          "asctime date");
  T_CHECK(tdm_parse_time("Tue, 02 Foo 2024 03:04:05 GMT") == 0,
          "unknown month gives 0");
  T_CHECK(tdm_parse_time("Tue, 32 Jan 2024 03:04:05 GMT") == 0,
          "day out of range gives 0");
  T_CHECK(tdm_parse_time("2024-13-02T03:04:05Z") == 0,
          "month out of range gives 0");
  T_CHECK(tdm_parse_time("yesterday") == 0, "garbage gives 0");
}

static void test_urls(void) {
  tdm_credentials creds;
  tdm_s3_config cfg;
  tdm_s3 *c;
  tdm_buf url, path;
  tdm_error err;
  char host[256];
  tdm_kv q[2] = {{"list-type", "2"}, {"prefix", "a b/+"}};
  memset(&creds, 0, sizeof creds);
  snprintf(creds.access_key, sizeof creds.access_key, "AKIDEXAMPLE");
  snprintf(creds.secret_key, sizeof creds.secret_key, "x");
  tdm_s3_config_defaults(&cfg);
  cfg.bucket = "story-boards-assets";
  cfg.region = "us-west-1";
  cfg.creds = &creds;
  tdm_buf_init(&url, 4096);
  tdm_buf_init(&path, 4096);
  c = tdm_s3_new(&cfg, &err);
  T_CHECK(c != NULL, "client without endpoint");
  if (c) {
    T_EQ_INT(tdm_s3_build_url(c, "a b/\xc3\xa9+=~!*'()&.jpg", NULL, 0, &url,
                              host, sizeof host, &path, &err), TDM_OK,
             "virtual-hosted URL");
    T_EQ_STR(url.data, "https://story-boards-assets.s3.us-west-1.amazonaws"
             ".com/a%20b/%C3%A9%2B%3D~%21%2A%27%28%29%26.jpg",
             "virtual-hosted URL, awkward key");
    T_EQ_STR(host, "story-boards-assets.s3.us-west-1.amazonaws.com", "host");
    T_EQ_STR(path.data, "/a b/\xc3\xa9+=~!*'()&.jpg", "raw signed path");
    tdm_s3_free(c);
  }
  cfg.endpoint = "http://127.0.0.1:4568";
  c = tdm_s3_new(&cfg, &err);
  T_CHECK(c != NULL, "client with endpoint");
  if (c) {
    tdm_buf_reset(&url);
    T_EQ_INT(tdm_s3_build_url(c, "", q, 2, &url, host, sizeof host, &path,
                              &err), TDM_OK, "path-style bucket URL");
    T_EQ_STR(url.data, "http://127.0.0.1:4568/story-boards-assets"
             "?list-type=2&prefix=a%20b%2F%2B", "path-style list URL");
    T_EQ_STR(host, "127.0.0.1:4568", "endpoint host keeps the port");
    tdm_s3_free(c);
  }
  cfg.endpoint = NULL;
  cfg.bucket = "dotted.bucket";
  c = tdm_s3_new(&cfg, &err);
  if (c) {
    tdm_buf_reset(&url);
    tdm_s3_build_url(c, "k", NULL, 0, &url, host, sizeof host, &path, &err);
    T_EQ_STR(url.data, "https://s3.us-west-1.amazonaws.com/dotted.bucket/k",
             "a dotted bucket is addressed path-style (TLS names)");
    tdm_s3_free(c);
  }
  cfg.bucket = "b";
  cfg.endpoint = "ftp://x";
  c = tdm_s3_new(&cfg, &err);
  T_CHECK(c == NULL && strcmp(err.code, "EINVAL") == 0 &&
          strstr(err.message, "AWS_ENDPOINT_URL") != NULL,
          "bad endpoint refused naming AWS_ENDPOINT_URL, got '%s'",
          err.message);
  tdm_s3_free(c);
  tdm_buf_free(&url);
  tdm_buf_free(&path);
}

int main(void) {
  check_list("list page, whole", 0);
  check_list("list page, 1 byte at a time", 1);
  check_list("list page, 7 bytes at a time", 7);
  test_errors();
  test_delete_result();
  test_multipart_xml();
  test_bad_xml();
  test_escape();
  test_retry_policy();
  test_backoff();
  test_codes();
  test_time();
  test_urls();
  T_DONE();
}
