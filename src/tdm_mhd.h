/*
 * tdm_mhd.h -- libmicrohttpd, loaded on first use (why: see tdm_curl.h).
 * `serve` calls tdm_mhd_load() before starting a daemon; the MHD_* names
 * below then call through the table filled from dlopen(TDM_MHD_SONAME).
 * Include this instead of <microhttpd.h>. Not installed.
 */
#ifndef TDM_MHD_H
#define TDM_MHD_H

#include <microhttpd.h>

#include "tdm/error.h"

/* Every libmicrohttpd function tdm calls. */
#define TDM_MHD_FUNCS(X)                                                \
  X(MHD_start_daemon) X(MHD_stop_daemon) X(MHD_quiesce_daemon)          \
  X(MHD_queue_response) X(MHD_create_response_from_buffer)              \
  X(MHD_destroy_response) X(MHD_add_response_header)                    \
  X(MHD_lookup_connection_value) X(MHD_get_connection_values)           \
  X(MHD_create_post_processor) X(MHD_post_process)                      \
  X(MHD_destroy_post_processor)

struct tdm_mhd_api {
#define TDM_MHD_FIELD(f) __typeof__(f) *f;
  TDM_MHD_FUNCS(TDM_MHD_FIELD)
#undef TDM_MHD_FIELD
};
extern struct tdm_mhd_api tdm_mhd_api;

/* Load libmicrohttpd once per process (thread-safe): TDM_OK, or TDM_ERR
 * with code "ENOLIB" naming the library and dlerror's reason. */
int tdm_mhd_load(tdm_error *err);

#ifndef TDM_DL_LOADER
#define MHD_start_daemon (tdm_mhd_api.MHD_start_daemon)
#define MHD_stop_daemon (tdm_mhd_api.MHD_stop_daemon)
#define MHD_quiesce_daemon (tdm_mhd_api.MHD_quiesce_daemon)
#define MHD_queue_response (tdm_mhd_api.MHD_queue_response)
#define MHD_create_response_from_buffer \
  (tdm_mhd_api.MHD_create_response_from_buffer)
#define MHD_destroy_response (tdm_mhd_api.MHD_destroy_response)
#define MHD_add_response_header (tdm_mhd_api.MHD_add_response_header)
#define MHD_lookup_connection_value \
  (tdm_mhd_api.MHD_lookup_connection_value)
#define MHD_get_connection_values (tdm_mhd_api.MHD_get_connection_values)
#define MHD_create_post_processor (tdm_mhd_api.MHD_create_post_processor)
#define MHD_post_process (tdm_mhd_api.MHD_post_process)
#define MHD_destroy_post_processor (tdm_mhd_api.MHD_destroy_post_processor)
#endif

#endif
