/*
 * test_http_guard.c -- the HTTP server's header checks (src/
 * tdm_http_guard.c), table-driven: which Hosts name the server, which
 * state-changing requests are cross-site, the bearer token.
 */
#include <stdio.h>
#include <string.h>

#include "tdm.h"
#include "../../src/tdm_http_int.h"
#include "t.h"

typedef struct gcase {
  const char *what, *method, *host, *origin, *sfs, *auth;
  int want;                     /* 0, 401 or 403 */
} gcase;

static void run(const char *listen, const char *token,
                const char *const *origins, size_t norigins,
                const gcase *cases, size_t n) {
  tdm_http_config cfg;
  tdm_http_guard g;
  tdm_error err;
  size_t i;
  memset(&cfg, 0, sizeof cfg);
  cfg.listen = listen;
  cfg.token = token;
  cfg.allowed_origins = origins;
  cfg.norigins = norigins;
  T_EQ_INT(tdm_httpi_guard_init(&g, &cfg, &err), TDM_OK, "guard init");
  for (i = 0; i < n; i++) {
    const char *msg = NULL, *why = NULL;
    int got = tdm_httpi_guard_check(&g, cases[i].method, cases[i].host,
                                    cases[i].origin, cases[i].sfs,
                                    cases[i].auth, &msg, &why);
    T_EQ_INT(got, cases[i].want, cases[i].what);
    T_CHECK(got == 0 || (msg && why), "%s: a message and a reason",
            cases[i].what);
  }
  tdm_httpi_guard_free(&g);
}

static void test_loopback_no_token(void) {
  static const char *const origins[] = { "https://Ops.Example/" };
  static const gcase cases[] = {
    { "GET, IP Host", "GET", "127.0.0.1:8080", NULL, NULL, NULL, 0 },
    { "GET, no Host (HTTP/1.0)", "GET", NULL, NULL, NULL, NULL, 0 },
    { "GET, localhost", "GET", "LOCALHOST:8080", NULL, NULL, NULL, 0 },
    { "GET, IPv6 literal", "GET", "[::1]:8080", NULL, NULL, NULL, 0 },
    { "GET, rebound name", "GET", "evil.example:8080", NULL, NULL, NULL,
      403 },
    { "GET, allowed origin's host", "GET", "ops.example", NULL, NULL, NULL,
      0 },
    { "GET, malformed Host", "GET", "a b", NULL, NULL, NULL, 403 },
    { "GET, cross-site is a read", "GET", "127.0.0.1:8080",
      "http://evil.example", "cross-site", NULL, 0 },
    { "POST, no Origin (curl)", "POST", "127.0.0.1:8080", NULL, NULL, NULL,
      0 },
    { "POST, own origin", "POST", "127.0.0.1:8080", "http://127.0.0.1:8080",
      NULL, NULL, 0 },
    { "POST, own origin, other port", "POST", "127.0.0.1:8080",
      "http://127.0.0.1:9090", NULL, NULL, 403 },
    { "POST, https origin of the same host", "POST", "127.0.0.1:8080",
      "https://127.0.0.1:8080", NULL, NULL, 403 },
    { "POST, allowed origin (case, slash)", "POST", "127.0.0.1:8080",
      "https://ops.example", NULL, NULL, 0 },
    { "POST, other origin", "POST", "127.0.0.1:8080", "http://evil.example",
      NULL, NULL, 403 },
    { "POST, Origin null", "POST", "127.0.0.1:8080", "null", NULL, NULL,
      403 },
    { "DELETE, cross-site fetch", "DELETE", "127.0.0.1:8080", NULL,
      "cross-site", NULL, 403 },
    { "DELETE, same-site fetch", "DELETE", "127.0.0.1:8080", NULL,
      "same-site", NULL, 0 },
    { "PUT, rebound name with its own origin", "PUT", "evil.example",
      "http://evil.example", NULL, NULL, 403 },
  };
  run("127.0.0.1:8080", NULL, origins, 1, cases,
      sizeof cases / sizeof cases[0]);
}

static void test_named_listen_with_token(void) {
  static const gcase cases[] = {
    { "GET, the listen name", "GET", "tdm.internal:8080", NULL, NULL, NULL,
      0 },
    { "POST, no token", "POST", "tdm.internal:8080", NULL, NULL, NULL, 401 },
    { "POST, wrong token", "POST", "tdm.internal:8080", NULL, NULL,
      "Bearer nope", 401 },
    { "POST, the token", "POST", "tdm.internal:8080", NULL, NULL,
      "bearer  s3cret", 0 },
    { "POST, cross-site with the token", "POST", "tdm.internal:8080",
      "http://evil.example", NULL, "Bearer s3cret", 403 },
    { "GET needs no token", "GET", "10.1.2.3", NULL, NULL, NULL, 0 },
  };
  run("tdm.internal:8080", "s3cret", NULL, 0, cases,
      sizeof cases / sizeof cases[0]);
}

static void test_bad_origin_setting(void) {
  static const char *const origins[] = { "ops.example" };
  tdm_http_config cfg;
  tdm_http_guard g;
  tdm_error err;
  memset(&cfg, 0, sizeof cfg);
  cfg.allowed_origins = origins;
  cfg.norigins = 1;
  T_EQ_INT(tdm_httpi_guard_init(&g, &cfg, &err), TDM_ERR,
           "an origin without a scheme is refused");
  T_EQ_STR(err.code, "EINVAL", "code");
  T_CHECK(strstr(err.message, "ops.example") != NULL, "names it: %s",
          err.message);
  tdm_httpi_guard_free(&g);
}

int main(void) {
  test_loopback_no_token();
  test_named_listen_with_token();
  test_bad_origin_setting();
  T_DONE();
}
