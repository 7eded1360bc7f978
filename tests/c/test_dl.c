/*
 * test_dl.c -- the on-first-use loader of libcurl and libmicrohttpd
 * (src/tdm_dl.c): a library that cannot be loaded gives one ENOLIB line
 * naming it and the loader's reason, the same at every call; one that
 * can be loaded fills every function of the table.
 *
 * The loader is compiled in here with a curl soname that does not exist
 * (libmicrohttpd keeps the real one), so the failure path runs for real.
 */
#undef TDM_CURL_SONAME
#define TDM_CURL_SONAME "libtdm-test-no-such-curl.so.4"
#include "../../src/tdm_dl.c"

#include "t.h"

int main(void) {
  tdm_error err;
  int i;

  for (i = 0; i < 2; i++) {
    tdm_error_clear(&err);
    T_EQ_INT(tdm_curl_load(&err), TDM_ERR, "missing libcurl refused");
    T_EQ_STR(err.code, "ENOLIB", "code");
    T_CHECK(strstr(err.message, "cannot load libtdm-test-no-such-curl.so.4: ")
                == err.message && strstr(err.message, "No such file"),
            "message names the library and the reason: '%s'", err.message);
    T_CHECK(strchr(err.message, '\n') == NULL, "one line: '%s'",
            err.message);
  }
  T_CHECK(tdm_curl_api.curl_easy_init == NULL, "no curl function is set");

  tdm_error_clear(&err);
  T_EQ_INT(tdm_mhd_load(&err), TDM_OK, "libmicrohttpd loads");
  T_EQ_STR(err.code, "", "no error");
#define CHECK_SET(f) \
  T_CHECK(tdm_mhd_api.f != NULL, "%s resolved", #f);
  TDM_MHD_FUNCS(CHECK_SET)
#undef CHECK_SET
  T_EQ_INT(tdm_mhd_load(&err), TDM_OK, "a second load is a no-op");
  T_DONE();
}
