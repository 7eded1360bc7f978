/*
 * test_sigv4.c -- SigV4 against AWS's published S3 examples
 * ("Signature Calculations for the Authorization Header: Transferring
 * Payload in a Single Chunk" and "Authenticating Requests: Using Query
 * Parameters"), URI encoding, and the failure paths (whose messages must
 * never contain the secret or the session token).
 */
#include <stdlib.h>
#include <string.h>

#include "tdm.h"
#include "t.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* 2013-05-24T00:00:00Z */
#define WHEN ((time_t)1369353600)

static tdm_credentials example_creds(void) {
  tdm_credentials c;
  memset(&c, 0, sizeof c);
  snprintf(c.access_key, sizeof c.access_key, "%s", AK);
  snprintf(c.secret_key, sizeof c.secret_key, "%s", SK);
  return c;
}

static tdm_sigv4_request example_req(const char *method, const char *path) {
  tdm_sigv4_request r;
  memset(&r, 0, sizeof r);
  r.method = method;
  r.host = "examplebucket.s3.amazonaws.com";
  r.path = path;
  r.payload_hash = EMPTY_SHA;
  r.region = "us-east-1";
  r.service = "s3";
  r.when = WHEN;
  return r;
}

/* Sign and compare the Authorization header with the expected signed
 * headers and signature. */
static void check_sig(const char *what, const tdm_sigv4_request *r,
                      const char *signed_headers, const char *sig) {
  tdm_credentials c = example_creds();
  tdm_sigv4_signed out;
  tdm_error err;
  char want[1024];
  int rc = tdm_sigv4_sign(r, &c, &out, &err);
  T_EQ_INT(rc, TDM_OK, what);
  if (rc != TDM_OK) {
    printf("# %s: %s\n", what, err.message);
    return;
  }
  snprintf(want, sizeof want, "AWS4-HMAC-SHA256 Credential=" AK
           "/20130524/us-east-1/s3/aws4_request, SignedHeaders=%s, "
           "Signature=%s", signed_headers, sig);
  T_EQ_STR(out.authorization, want, what);
  T_EQ_STR(out.amz_date, "20130524T000000Z", "x-amz-date");
  T_EQ_STR(out.content_sha256, r->payload_hash, "x-amz-content-sha256");
}

static void test_get_object(void) {
  tdm_sigv4_request r = example_req("GET", "/test.txt");
  tdm_kv h[] = { { "Range", "bytes=0-9" } };
  tdm_credentials c = example_creds();
  tdm_buf canon, sts;
  tdm_error err;
  r.headers = h;
  r.nheaders = 1;
  check_sig("GET object", &r, "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  tdm_buf_init(&canon, 65536);
  tdm_buf_init(&sts, 65536);
  T_EQ_INT(tdm_sigv4_debug(&r, &c, &canon, &sts, &err), TDM_OK, "debug");
  T_EQ_STR(canon.data,
           "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
           "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA "\n"
           "x-amz-date:20130524T000000Z\n\n"
           "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA,
           "GET object canonical request");
  T_EQ_STR(sts.data,
           "AWS4-HMAC-SHA256\n20130524T000000Z\n"
           "20130524/us-east-1/s3/aws4_request\n"
           "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
           "GET object string to sign");
  tdm_buf_free(&canon);
  tdm_buf_free(&sts);
}

static void test_put_object(void) {
  tdm_sigv4_request r = example_req("PUT", "/test$file.text");
  tdm_kv h[] = {
    { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
    { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
  };
  char sha[TDM_SHA256_HEX_LEN + 1];
  tdm_credentials c = example_creds();
  tdm_buf canon;
  tdm_error err;
  const char *body = "Welcome to Amazon S3.";
  T_EQ_INT(tdm_sha256_hex(body, strlen(body), sha, &err), TDM_OK, "sha");
  T_EQ_STR(sha,
           "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
           "sha256 of the PUT body");
  r.payload_hash = sha;
  r.headers = h;
  r.nheaders = 2;
  check_sig("PUT object", &r,
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  tdm_buf_init(&canon, 65536);
  T_EQ_INT(tdm_sigv4_debug(&r, &c, &canon, NULL, &err), TDM_OK, "debug");
  T_CHECK(canon.data && strncmp(canon.data, "PUT\n/test%24file.text\n\n",
                                23) == 0,
          "PUT canonical URI: expected '/test%%24file.text', got '%.40s'",
          canon.data ? canon.data : "(null)");
  tdm_buf_free(&canon);
}

static void test_lifecycle(void) {
  tdm_sigv4_request r = example_req("GET", "/");
  tdm_kv q[] = { { "lifecycle", "" } };
  tdm_credentials c = example_creds();
  tdm_buf canon;
  tdm_error err;
  r.query = q;
  r.nquery = 1;
  check_sig("GET bucket lifecycle", &r,
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  tdm_buf_init(&canon, 65536);
  T_EQ_INT(tdm_sigv4_debug(&r, &c, &canon, NULL, &err), TDM_OK, "debug");
  T_CHECK(canon.data && strncmp(canon.data, "GET\n/\nlifecycle=\n", 17) == 0,
          "lifecycle canonical query: expected 'lifecycle=', got '%.40s'",
          canon.data ? canon.data : "(null)");
  tdm_buf_free(&canon);
}

static void test_list_objects(void) {
  tdm_sigv4_request r = example_req("GET", "");   /* empty path -> "/" */
  /* Given out of order: the signer sorts. */
  tdm_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
  r.query = q;
  r.nquery = 2;
  check_sig("GET bucket (list objects)", &r,
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_presign(void) {
  tdm_sigv4_request r = example_req("GET", "/test.txt");
  tdm_credentials c = example_creds();
  tdm_buf url;
  tdm_error err;
  int rc;
  r.payload_hash = NULL;   /* ignored by presign */
  tdm_buf_init(&url, 65536);
  rc = tdm_sigv4_presign(&r, &c, "https", 86400, &url, &err);
  T_EQ_INT(rc, TDM_OK, "presign");
  T_EQ_STR(url.data,
           "https://examplebucket.s3.amazonaws.com/test.txt"
           "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
           "%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
           "&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
           "presigned GET URL");
  tdm_buf_free(&url);
}

static void test_uri_encode(void) {
  static const struct { const char *in; int slash; const char *want; } v[] = {
    { "AZaz09-_.~", 0, "AZaz09-_.~" },
    { "a b", 0, "a%20b" },
    { "a/b c", 1, "a/b%20c" },
    { "a/b", 0, "a%2Fb" },
    { "+=!*'()$&,:;@?#[]%", 1,
      "%2B%3D%21%2A%27%28%29%24%26%2C%3A%3B%40%3F%23%5B%5D%25" },
    { "caf\xc3\xa9 \xe2\x82\xac", 1, "caf%C3%A9%20%E2%82%AC" },
    { "\x01\x7f\xff", 0, "%01%7F%FF" },
    { "", 1, "" },
  };
  size_t i;
  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    tdm_buf b;
    tdm_error err;
    tdm_buf_init(&b, 4096);
    T_EQ_INT(tdm_uri_encode(v[i].in, strlen(v[i].in), v[i].slash, &b, &err),
             TDM_OK, "uri_encode");
    T_EQ_STR(b.data ? b.data : "", v[i].want, "uri_encode");
    tdm_buf_free(&b);
  }
}

/* Awkward keys: spaces, unicode, + = ~ ! * ' ( ) encode once in the
 * canonical URI; query names and values encode '/' too. */
static void test_awkward(void) {
  tdm_sigv4_request r = example_req("PUT", "/dir/a b+c=d~e!f*g'h(i).jpg");
  tdm_kv q[] = { { "b", "x/y z" }, { "a", "2" }, { "a", "1" },
                 { "acl", "" } };
  tdm_kv h[] = { { "X-Amz-Meta-Note", "  two   words\there " },
                 { "x-amz-meta-multi", "b" }, { "X-AMZ-META-MULTI", "a" } };
  tdm_credentials c = example_creds();
  tdm_buf canon;
  tdm_error err;
  r.query = q;
  r.nquery = 4;
  r.headers = h;
  r.nheaders = 3;
  tdm_buf_init(&canon, 65536);
  T_EQ_INT(tdm_sigv4_debug(&r, &c, &canon, NULL, &err), TDM_OK, "debug");
  T_EQ_STR(canon.data,
           "PUT\n/dir/a%20b%2Bc%3Dd~e%21f%2Ag%27h%28i%29.jpg\n"
           "a=1&a=2&acl=&b=x%2Fy%20z\n"
           "host:examplebucket.s3.amazonaws.com\n"
           "x-amz-content-sha256:" EMPTY_SHA "\n"
           "x-amz-date:20130524T000000Z\n"
           "x-amz-meta-multi:b,a\n"
           "x-amz-meta-note:two words here\n\n"
           "host;x-amz-content-sha256;x-amz-date;x-amz-meta-multi;"
           "x-amz-meta-note\n" EMPTY_SHA,
           "awkward canonical request");
  tdm_buf_free(&canon);
}

static void test_session_token(void) {
  tdm_sigv4_request r = example_req("GET", "/k");
  tdm_credentials c = example_creds();
  tdm_sigv4_signed out;
  tdm_buf canon, url;
  tdm_error err;
  snprintf(c.session_token, sizeof c.session_token, "TOKEN/with+chars=");
  tdm_buf_init(&canon, 65536);
  T_EQ_INT(tdm_sigv4_debug(&r, &c, &canon, NULL, &err), TDM_OK, "debug");
  T_CHECK(canon.data &&
          strstr(canon.data, "\nx-amz-security-token:TOKEN/with+chars=\n") &&
          strstr(canon.data, ";x-amz-security-token\n"),
          "session token signed as a header: got '%s'",
          canon.data ? canon.data : "(null)");
  T_EQ_INT(tdm_sigv4_sign(&r, &c, &out, &err), TDM_OK, "sign with token");
  T_CHECK(strstr(out.authorization,
                 "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                 "x-amz-security-token,") != NULL,
          "token in SignedHeaders: got '%s'", out.authorization);
  tdm_buf_init(&url, 65536);
  T_EQ_INT(tdm_sigv4_presign(&r, &c, "http", 60, &url, &err), TDM_OK,
           "presign with token");
  T_CHECK(url.data && strstr(url.data, "&X-Amz-Security-Token="
                             "TOKEN%2Fwith%2Bchars%3D&") &&
          strncmp(url.data, "http://", 7) == 0,
          "presigned URL carries the encoded token: got '%s'",
          url.data ? url.data : "(null)");
  tdm_buf_free(&canon);
  tdm_buf_free(&url);
}

/* Every failure path: an error (not a crash), the expected code, and a
 * message that never contains the secret or the token. */
static void test_failures(void) {
  size_t i;
  tdm_kv bad_hdr[] = { { "Host", "evil" } };
  tdm_kv crlf[] = { { "x-amz-meta-a", "v\r\nInjected: 1" } };
  tdm_kv badname[] = { { "a b", "v" } };
  tdm_kv noname[] = { { NULL, "v" } };
  struct { const char *what; int field; const char *code; } v[] = {
    { "no secret", 0, "ENOCREDS" },
    { "bad payload hash", 1, "EINVAL" },
    { "upper-case payload hash", 2, "EINVAL" },
    { "empty region", 3, "EINVAL" },
    { "region with slash", 4, "EINVAL" },
    { "lower-case method", 5, "EINVAL" },
    { "host header given", 6, "EINVAL" },
    { "CR LF in value", 7, "EINVAL" },
    { "space in header name", 8, "EINVAL" },
    { "host with space", 9, "EINVAL" },
    { "token with newline", 10, "EINVAL" },
    { "NULL path", 11, "EINVAL" },
    { "query without name", 12, "EINVAL" },
    { "no access key", 13, "ENOCREDS" },
    { "empty header name", 14, "EINVAL" },
    { "access key with '/'", 15, "EINVAL" },
    { "header count without headers", 16, "EINVAL" },
    { "service with space", 17, "EINVAL" },
    { "Authorization over 1023 bytes", 18, "E2BIG" },
    { "x-amz-security-token given as a header", 19, "EINVAL" },
    { "year 10000", 20, "EINVAL" },
  };
  tdm_kv empty_name[] = { { "", "v" } };
  tdm_kv token_hdr[] = { { "X-Amz-Security-Token", "FAKETOKENSECRET" } };
  static char names[40][40];
  tdm_kv many[40];
  for (i = 0; i < 40; i++) {
    snprintf(names[i], sizeof names[i], "x-amz-meta-long-header-name-%02zu", i);
    many[i].name = names[i];
    many[i].value = "v";
  }
  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    tdm_sigv4_request r = example_req("GET", "/k");
    tdm_credentials c = example_creds();
    tdm_sigv4_signed out;
    tdm_error err;
    int rc;
    snprintf(c.session_token, sizeof c.session_token, "FAKETOKENSECRET");
    switch (v[i].field) {
    case 0: c.secret_key[0] = '\0'; break;
    case 1: r.payload_hash = "abc"; break;
    case 2: r.payload_hash =
      "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
      break;
    case 3: r.region = ""; break;
    case 4: r.region = "us/east"; break;
    case 5: r.method = "get"; break;
    case 6: r.headers = bad_hdr; r.nheaders = 1; break;
    case 7: r.headers = crlf; r.nheaders = 1; break;
    case 8: r.headers = badname; r.nheaders = 1; break;
    case 9: r.host = "a b"; break;
    case 10: snprintf(c.session_token, sizeof c.session_token,
                      "FAKETOKENSECRET\nx"); break;
    case 11: r.path = NULL; break;
    case 12: r.headers = noname; r.nheaders = 1; break;
    case 13: c.access_key[0] = '\0'; break;
    case 14: r.headers = empty_name; r.nheaders = 1; break;
    case 15: snprintf(c.access_key, sizeof c.access_key, "AK/X"); break;
    case 16: r.nheaders = 2; break;
    case 17: r.service = "s 3"; break;
    case 18: r.headers = many; r.nheaders = 40; break;
    case 19: r.headers = token_hdr; r.nheaders = 1; break;
    case 20: r.when = (time_t)253402300800LL; break;
    }
    tdm_error_clear(&err);
    rc = tdm_sigv4_sign(&r, &c, &out, &err);
    T_EQ_INT(rc, TDM_ERR, v[i].what);
    T_EQ_STR(err.code, v[i].code, v[i].what);
    T_CHECK(err.message[0] != '\0', "%s: expected a message", v[i].what);
    T_CHECK(!strstr(err.message, SK) && !strstr(err.message, "FAKETOKEN"),
            "%s: message leaks a secret: %s", v[i].what, err.message);
  }
  {
    tdm_sigv4_request r = example_req("GET", "/k");
    tdm_credentials c = example_creds();
    tdm_buf url;
    tdm_error err;
    long bad[] = { 0, -1, 604801 };
    tdm_buf_init(&url, 4096);
    for (i = 0; i < 3; i++) {
      T_EQ_INT(tdm_sigv4_presign(&r, &c, "https", bad[i], &url, &err),
               TDM_ERR, "presign expiry out of range");
      T_EQ_STR(err.code, "EINVAL", "presign expiry code");
    }
    T_EQ_INT(tdm_sigv4_presign(&r, &c, "https", 604800, &url, &err),
             TDM_OK, "presign expiry of exactly 7 days");
    T_EQ_INT(tdm_sigv4_presign(&r, &c, "ftp", 60, &url, &err), TDM_ERR,
             "presign with scheme ftp");
    {
      /* A failed presign leaves the buffer as it was. */
      size_t len = url.len;
      r.region = "";
      T_EQ_INT(tdm_sigv4_presign(&r, &c, "https", 60, &url, &err), TDM_ERR,
               "presign with empty region");
      T_EQ_INT(url.len, len, "url length after a failed presign");
    }
    tdm_buf_free(&url);
  }
}

int main(void) {
  test_get_object();
  test_put_object();
  test_lifecycle();
  test_list_objects();
  test_presign();
  test_uri_encode();
  test_awkward();
  test_session_token();
  test_failures();
  T_DONE();
}
