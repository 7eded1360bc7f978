/*
 * tdm_curl.h -- libcurl, loaded on first use.
 *
 * tdm links neither libcurl nor libmicrohttpd: loading them and the ~30
 * libraries they pull in (GnuTLS, Kerberos, LDAP, SSH, ...) costs more
 * than a whole local scan, and most commands that only read manifests
 * never touch the network. The S3 client calls tdm_curl_load() before
 * anything else; after that, the usual curl_* names below call through
 * the table filled from dlopen(TDM_CURL_SONAME). Include this instead of
 * <curl/curl.h>. Not installed.
 */
#ifndef TDM_CURL_H
#define TDM_CURL_H

/* The type-checking macros of typecheck-gcc.h would shadow ours. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "tdm/error.h"

/* Every libcurl function tdm calls. */
#define TDM_CURL_FUNCS(X)                                               \
  X(curl_global_init) X(curl_global_cleanup) X(curl_easy_init)          \
  X(curl_easy_cleanup) X(curl_easy_reset) X(curl_easy_setopt)           \
  X(curl_easy_getinfo) X(curl_easy_perform) X(curl_easy_strerror)       \
  X(curl_slist_append) X(curl_slist_free_all) X(curl_multi_init)        \
  X(curl_multi_cleanup) X(curl_multi_add_handle)                        \
  X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll)  \
  X(curl_multi_wakeup) X(curl_multi_info_read)

struct tdm_curl_api {
#define TDM_CURL_FIELD(f) __typeof__(f) *f;
  TDM_CURL_FUNCS(TDM_CURL_FIELD)
#undef TDM_CURL_FIELD
};
extern struct tdm_curl_api tdm_curl_api;

/* Load libcurl once per process (thread-safe) and run curl_global_init.
 * TDM_OK, or TDM_ERR with code "ENOLIB" naming the library and dlerror's
 * reason. Every curl_* call must come after a successful load. */
int tdm_curl_load(tdm_error *err);

/* The loader (tdm_dl.c) names the table's fields itself. */
#ifndef TDM_DL_LOADER
#define curl_global_init (tdm_curl_api.curl_global_init)
#define curl_global_cleanup (tdm_curl_api.curl_global_cleanup)
#define curl_easy_init (tdm_curl_api.curl_easy_init)
#define curl_easy_cleanup (tdm_curl_api.curl_easy_cleanup)
#define curl_easy_reset (tdm_curl_api.curl_easy_reset)
/* curl.h defines these two as argument-count checks; ours replace them. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt (tdm_curl_api.curl_easy_setopt)
#define curl_easy_getinfo (tdm_curl_api.curl_easy_getinfo)
#define curl_easy_perform (tdm_curl_api.curl_easy_perform)
#define curl_easy_strerror (tdm_curl_api.curl_easy_strerror)
#define curl_slist_append (tdm_curl_api.curl_slist_append)
#define curl_slist_free_all (tdm_curl_api.curl_slist_free_all)
#define curl_multi_init (tdm_curl_api.curl_multi_init)
#define curl_multi_cleanup (tdm_curl_api.curl_multi_cleanup)
#define curl_multi_add_handle (tdm_curl_api.curl_multi_add_handle)
#define curl_multi_remove_handle (tdm_curl_api.curl_multi_remove_handle)
#define curl_multi_perform (tdm_curl_api.curl_multi_perform)
#define curl_multi_poll (tdm_curl_api.curl_multi_poll)
#define curl_multi_wakeup (tdm_curl_api.curl_multi_wakeup)
#define curl_multi_info_read (tdm_curl_api.curl_multi_info_read)
#endif

#endif
