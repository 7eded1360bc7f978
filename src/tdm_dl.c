/*
 * tdm_dl.c -- load libcurl and libmicrohttpd on first use (see
 * tdm_curl.h for why). One dlopen per library per process, under
 * pthread_once; a failure is remembered and reported to every caller.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define TDM_DL_LOADER 1
#include "tdm_curl.h"
#include "tdm_mhd.h"

#ifndef TDM_CURL_SONAME
#define TDM_CURL_SONAME "libcurl.so.4"
#endif
#ifndef TDM_MHD_SONAME
#define TDM_MHD_SONAME "libmicrohttpd.so.12"
#endif

struct tdm_curl_api tdm_curl_api;
struct tdm_mhd_api tdm_mhd_api;

/* The outcome of one library's load: "" on success, else the reason. */
typedef struct dl_state {
  pthread_once_t once;
  char failure[512];
} dl_state;

static dl_state curl_state = { PTHREAD_ONCE_INIT, "" };
static dl_state mhd_state = { PTHREAD_ONCE_INIT, "" };

/* dlopen `soname`; on failure record dlerror's reason in st. */
static void *dl_open(dl_state *st, const char *soname) {
  void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    snprintf(st->failure, sizeof st->failure, "%s", why ? why : soname);
  }
  return h;
}

/* Resolve `name` into *slot (a function pointer, stored through void **
 * as POSIX's dlsym documentation does); record a failure in st. */
static void dl_sym(dl_state *st, void *h, const char *name, void **slot) {
  if (st->failure[0]) return;
  *slot = dlsym(h, name);
  if (!*slot)
    snprintf(st->failure, sizeof st->failure, "no symbol %s", name);
}

static void curl_load_once(void) {
  void *h = dl_open(&curl_state, TDM_CURL_SONAME);
  if (!h) return;
#define TDM_CURL_RESOLVE(f) \
  dl_sym(&curl_state, h, #f, (void **)&tdm_curl_api.f);
  TDM_CURL_FUNCS(TDM_CURL_RESOLVE)
#undef TDM_CURL_RESOLVE
  /* Once, before any thread may use libcurl (its global init is not
   * safe to race). */
  if (!curl_state.failure[0] &&
      tdm_curl_api.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    snprintf(curl_state.failure, sizeof curl_state.failure,
             "curl_global_init failed");
}

static void mhd_load_once(void) {
  void *h = dl_open(&mhd_state, TDM_MHD_SONAME);
  if (!h) return;
#define TDM_MHD_RESOLVE(f) dl_sym(&mhd_state, h, #f, (void **)&tdm_mhd_api.f);
  TDM_MHD_FUNCS(TDM_MHD_RESOLVE)
#undef TDM_MHD_RESOLVE
}

static int dl_result(const dl_state *st, const char *soname,
                     tdm_error *err) {
  if (!st->failure[0]) return TDM_OK;
  return tdm_error_set(err, "ENOLIB", "cannot load %s: %s", soname,
                       st->failure);
}

int tdm_curl_load(tdm_error *err) {
  pthread_once(&curl_state.once, curl_load_once);
  return dl_result(&curl_state, TDM_CURL_SONAME, err);
}

int tdm_mhd_load(tdm_error *err) {
  pthread_once(&mhd_state.once, mhd_load_once);
  return dl_result(&mhd_state, TDM_MHD_SONAME, err);
}
