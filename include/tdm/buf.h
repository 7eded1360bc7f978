/*
 * tdm/buf.h -- a growable byte buffer with a hard maximum (after curl's
 * dynbuf): every append is bounded, so hostile input cannot make tdm
 * allocate without limit. The content is always NUL-terminated.
 */
#ifndef TDM_BUF_H
#define TDM_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "error.h"

typedef struct tdm_buf {
  char *data;     /* NULL until the first append; owned by the buffer */
  size_t len;     /* bytes used, not counting the NUL */
  size_t cap;     /* bytes allocated */
  size_t max;     /* appends that would exceed this fail with E2BIG */
} tdm_buf;

/* Start an empty buffer that may grow to `max` bytes. No allocation. */
void tdm_buf_init(tdm_buf *b, size_t max);
/* Free the storage; the buffer is empty and usable again. */
void tdm_buf_free(tdm_buf *b);
/* Forget the content, keep the storage. */
void tdm_buf_reset(tdm_buf *b);
int tdm_buf_append(tdm_buf *b, const void *data, size_t len,
                   tdm_error *err);
int tdm_buf_appends(tdm_buf *b, const char *s, tdm_error *err);
int tdm_buf_appendc(tdm_buf *b, char c, tdm_error *err);
int tdm_buf_printf(tdm_buf *b, tdm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;
/* Hand the storage to the caller (free() it); the buffer becomes empty.
 * Never NULL: an empty buffer yields an allocated "". */
char *tdm_buf_take(tdm_buf *b, size_t *len, tdm_error *err);

/* The one bounded string copy: `src` (NULL is "") into `dst` of `dstsz`
 * (> 0) bytes, cut to fit and always terminated. Returns strlen(src): a
 * value >= dstsz says the copy was cut. */
size_t tdm_str_copy(char *dst, size_t dstsz, const char *src);

#endif
