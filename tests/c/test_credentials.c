/*
 * test_credentials.c -- the pure parts of the credential chain: the
 * shared config file reader (src/tdm_cred_ini.c: section kinds, nested
 * settings, duplicates, BOM/CRLF), expiry times, the S3/STS endpoint
 * order (src/tdm_cred_endpoint.c) and the provider's sharing. The
 * providers that talk to services are tested end to end against botocore
 * (tests/e2e/test_credentials_chain.sh).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tdm.h"
#include "../../src/tdm_cred_int.h"
#include "t.h"

static const char conf_text[] =
  "\xef\xbb\xbf# comment\r\n"
  "[default]\r\n"
  "region = eu-west-1\r\n"
  "[profile dev]\n"
  "Role_ARN = arn:aws:iam::1:role/a\n"
  "role_arn = arn:aws:iam::1:role/b\n"
  "services = local\n"
  "s3 =\n"
  "  max_concurrent_requests = 20\n"
  "[sso-session corp]\n"
  "sso_start_url = https://x/start\n"
  "[services local]\n"
  "s3 =\n"
  "  endpoint_url = http://127.0.0.1:1\n"
  "sts =\n"
  "\tendpoint_url = http://127.0.0.1:2\n"
  "[profile dev2]\n"
  "endpoint_url = http://127.0.0.1:3\n";

static void test_ini(const char *path) {
  static const struct {
    tdm_credi_kind kind;
    const char *section, *key, *want;   /* want NULL: absent */
  } cases[] = {
    { TDM_CREDI_PROFILE, "default", "region", "eu-west-1" },
    { TDM_CREDI_PROFILE, "dev", "role_arn", "arn:aws:iam::1:role/b" },
    { TDM_CREDI_PROFILE, "dev", "s3.max_concurrent_requests", "20" },
    { TDM_CREDI_PROFILE, "dev", "max_concurrent_requests", NULL },
    { TDM_CREDI_PROFILE, "corp", "sso_start_url", NULL },
    { TDM_CREDI_SSO_SESSION, "corp", "sso_start_url", "https://x/start" },
    { TDM_CREDI_SERVICES, "local", "s3.endpoint_url", "http://127.0.0.1:1" },
    { TDM_CREDI_SERVICES, "local", "sts.endpoint_url",
      "http://127.0.0.1:2" },
    { TDM_CREDI_PLAIN, "default", "region", "eu-west-1" },
    { TDM_CREDI_PLAIN, "profile dev", "services", "local" },
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tdm_credi_sec s;
    tdm_error err;
    int exists = 0, rc;
    char what[160];
    rc = tdm_credi_read(path, cases[i].kind, cases[i].section, &s, &exists,
                        &err);
    snprintf(what, sizeof what, "[%s] %s (kind %d)", cases[i].section,
             cases[i].key, (int)cases[i].kind);
    T_CHECK(rc == TDM_OK && exists, "%s: read failed: %s", what,
            err.message);
    if (cases[i].want)
      T_EQ_STR(tdm_credi_get(&s, cases[i].key), cases[i].want, what);
    else
      T_CHECK(tdm_credi_get(&s, cases[i].key) == NULL,
              "%s: expected absent, got '%s'", what,
              tdm_credi_get(&s, cases[i].key));
    tdm_credi_free(&s);
  }
}

static void test_times(void) {
  static const struct { const char *s; long long want; } cases[] = {
    { "2026-12-03T19:00:00Z", 1796324400LL },
    { "2026-12-03T19:00:00.123Z", 1796324400LL },
    { "2026-12-03T19:00:00+00:00", 1796324400LL },
    { "2026-12-03T19:00:00UTC", 1796324400LL },
    { "2026-12-03T19:00:00", 1796324400LL },
    { "2026-12-03T19:00:00+02:00", -1 },
    { "2026-13-03T19:00:00Z", -1 },
    { "tomorrow", -1 },
    { "", -1 },
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    long long got = (long long)tdm_credi_parse_time(cases[i].s);
    T_CHECK(got == cases[i].want, "parse_time('%s'): expected %lld, got "
            "%lld", cases[i].s, cases[i].want, got);
  }
}

static void test_endpoints(const char *path) {
  static const struct {
    const char *profile, *service, *env_svc, *env_all, *ignore, *want;
  } cases[] = {
    { "dev", "s3", NULL, NULL, NULL, "http://127.0.0.1:1" },
    { "dev", "sts", NULL, NULL, NULL, "http://127.0.0.1:2" },
    { "dev", "sso", NULL, NULL, NULL, "" },
    { "dev", "s3", "http://e:9", "http://all:9", NULL, "http://e:9" },
    { "dev", "s3", NULL, "http://all:9", NULL, "http://127.0.0.1:1" },
    { "dev2", "s3", NULL, "http://all:9", NULL, "http://all:9" },
    { "dev2", "s3", NULL, NULL, NULL, "http://127.0.0.1:3" },
    { "dev2", "s3", NULL, NULL, "true", "" },
  };
  size_t i;
  setenv("AWS_CONFIG_FILE", path, 1);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[256], src[1200], env[64], what[128];
    tdm_error err;
    snprintf(env, sizeof env, "AWS_ENDPOINT_URL_%s",
             strcmp(cases[i].service, "s3") == 0 ? "S3" :
             strcmp(cases[i].service, "sts") == 0 ? "STS" : "SSO");
    if (cases[i].env_svc) setenv(env, cases[i].env_svc, 1);
    if (cases[i].env_all) setenv("AWS_ENDPOINT_URL", cases[i].env_all, 1);
    if (cases[i].ignore)
      setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", cases[i].ignore, 1);
    snprintf(what, sizeof what, "endpoint case %zu (%s, %s)", i,
             cases[i].profile, cases[i].service);
    T_CHECK(tdm_endpoint_resolve(cases[i].service, cases[i].profile, out,
                                 sizeof out, src, sizeof src, &err)
            == TDM_OK, "%s: %s", what, err.message);
    T_EQ_STR(out, cases[i].want, what);
    unsetenv(env);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  }
}

static void test_provider(void) {
  tdm_credentials fixed, got;
  tdm_cred_provider *a, *b, *c;
  tdm_error err;
  memset(&fixed, 0, sizeof fixed);
  snprintf(fixed.access_key, sizeof fixed.access_key, "AKFIXED");
  snprintf(fixed.secret_key, sizeof fixed.secret_key, "secret");
  a = tdm_cred_provider_new(NULL, &fixed, &err);
  T_CHECK(a && tdm_cred_provider_get(a, &got, &err) == TDM_OK,
          "fixed provider");
  if (a) T_EQ_STR(got.access_key, "AKFIXED", "fixed provider's key");
  setenv("AWS_ACCESS_KEY_ID", "AKENVSHARED", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  b = tdm_cred_provider_new("x", NULL, &err);
  c = tdm_cred_provider_new("x", NULL, &err);
  T_CHECK(b && b == c, "two clients of profile x share one provider");
  tdm_cred_provider_free(c);
  T_CHECK(b && tdm_cred_provider_get(b, &got, &err) == TDM_OK &&
          strcmp(got.access_key, "AKENVSHARED") == 0 &&
          strcmp(got.method, "env") == 0,
          "the shared provider outlives one client's free");
  tdm_cred_provider_free(b);
  tdm_cred_provider_free(a);
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* Threads signing at once while the credentials expire under them: a
 * credential_process hands out a new key valid 2 s each run. Every copy
 * a thread gets must be whole (key, secret and token of one issue). */
typedef struct thr_state {
  tdm_cred_provider *p;
  int bad, calls;
  char first[128], last[128];
} thr_state;

static void *signer(void *ud) {
  thr_state *st = ud;
  time_t end = time(NULL) + 5;
  while (time(NULL) < end) {
    tdm_credentials c;
    tdm_error err;
    if (tdm_cred_provider_get(st->p, &c, &err) != TDM_OK ||
        strncmp(c.access_key, "AKTHR", 5) != 0 ||
        strcmp(c.access_key + 5, c.secret_key + 6) != 0 ||
        strcmp(c.access_key + 5, c.session_token + 5) != 0)
      st->bad++;
    if (!st->first[0]) snprintf(st->first, sizeof st->first, "%s",
                                c.access_key);
    snprintf(st->last, sizeof st->last, "%s", c.access_key);
    st->calls++;
    usleep(2000);
  }
  return NULL;
}

static void test_threads(void) {
  char dir[] = "/tmp/tdm-test-thr-XXXXXX", script[128], conf[128];
  FILE *f;
  thr_state st[4];
  pthread_t th[4];
  tdm_cred_provider *p;
  tdm_error err;
  int i, bad = 0, calls = 0, changed = 0;
  if (!mkdtemp(dir)) return;
  snprintf(script, sizeof script, "%s/issue.sh", dir);
  snprintf(conf, sizeof conf, "%s/config", dir);
  f = fopen(script, "w");
  fputs("#!/bin/sh\n"
        "n=$(date +%s%N)\n"
        "exp=$(date -u -d @$(( $(date +%s) + 2 )) +%Y-%m-%dT%H:%M:%SZ)\n"
        "printf '{\"Version\":1,\"AccessKeyId\":\"AKTHR%s\","
        "\"SecretAccessKey\":\"secret%s\",\"SessionToken\":\"token%s\","
        "\"Expiration\":\"%s\"}' $n $n $n $exp\n", f);
  fclose(f);
  chmod(script, 0700);
  f = fopen(conf, "w");
  fprintf(f, "[profile thr]\ncredential_process = %s\n", script);
  fclose(f);
  setenv("AWS_CONFIG_FILE", conf, 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", conf, 1);
  p = tdm_cred_provider_new("thr", NULL, &err);
  T_CHECK(p != NULL, "process provider: %s", p ? "" : err.message);
  if (!p) return;
  for (i = 0; i < 4; i++) {
    memset(&st[i], 0, sizeof st[i]);
    st[i].p = p;
    pthread_create(&th[i], NULL, signer, &st[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    bad += st[i].bad;
    calls += st[i].calls;
    changed += strcmp(st[i].first, st[i].last) != 0;
  }
  T_CHECK(bad == 0, "threads got %d torn or failed credentials of %d",
          bad, calls);
  T_CHECK(changed == 4, "every thread saw the credentials refreshed "
          "(%d of 4 did)", changed);
  tdm_cred_provider_free(p);
  unlink(script);
  unlink(conf);
  rmdir(dir);
}

int main(void) {
  char path[] = "/tmp/tdm-test-cred-XXXXXX";
  int fd = mkstemp(path);
  T_CHECK(fd >= 0, "mkstemp");
  if (fd < 0) T_DONE();
  T_CHECK(write(fd, conf_text, sizeof conf_text - 1) ==
          (ssize_t)(sizeof conf_text - 1), "write config");
  close(fd);
  unsetenv("AWS_PROFILE");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_ENDPOINT_URL_STS");
  unsetenv("AWS_ENDPOINT_URL_SSO");
  unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  test_ini(path);
  test_times();
  test_endpoints(path);
  test_provider();
  test_threads();
  unlink(path);
  T_DONE();
}
