/*
 * tdm/errcodes.h -- the table of error codes (include/tdm/errcodes.def):
 * what each code means, whether it is worth retrying, the HTTP API's
 * status for it and what to do about it.
 */
#ifndef TDM_ERRCODES_H
#define TDM_ERRCODES_H

#include <stddef.h>

typedef struct tdm_errcode {
  const char *code;            /* "ENOENT", "S3_SlowDown", ... */
  int retryable;               /* 1: a later try may succeed */
  int http_status;             /* the HTTP API's answer */
  const char *meaning;         /* one line */
  const char *advice;          /* "" when nothing specific */
} tdm_errcode;

/* The entry of `code`, or NULL when the table has none. */
const tdm_errcode *tdm_errcode_find(const char *code);

/* The whole table (in the order of errcodes.def); *n gets its length. */
const tdm_errcode *tdm_errcodes(size_t *n);

#endif
