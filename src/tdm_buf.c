/* tdm_buf.c -- bounded growable buffer (see include/tdm/buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm.h"

void tdm_buf_init(tdm_buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void tdm_buf_free(tdm_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void tdm_buf_reset(tdm_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

/* Make room for `extra` more bytes plus the NUL. */
static int reserve(tdm_buf *b, size_t extra, tdm_error *err) {
  size_t need, cap;
  char *p;
  if (extra > b->max || b->len > b->max - extra)
    return tdm_error_set(err, "E2BIG", "buffer limit of %zu bytes exceeded",
                         b->max);
  need = b->len + extra + 1;
  if (need <= b->cap) return TDM_OK;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  if (cap > b->max + 1) cap = b->max + 1;
  p = realloc(b->data, cap);
  if (!p) return tdm_error_set(err, "ENOMEM", "out of memory");
  b->data = p;
  b->cap = cap;
  return TDM_OK;
}

int tdm_buf_append(tdm_buf *b, const void *data, size_t len,
                   tdm_error *err) {
  if (reserve(b, len, err) != TDM_OK) return TDM_ERR;
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return TDM_OK;
}

int tdm_buf_appends(tdm_buf *b, const char *s, tdm_error *err) {
  return tdm_buf_append(b, s, strlen(s), err);
}

int tdm_buf_appendc(tdm_buf *b, char c, tdm_error *err) {
  return tdm_buf_append(b, &c, 1, err);
}

int tdm_buf_printf(tdm_buf *b, tdm_error *err, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return tdm_error_set(err, "EINVAL", "bad format");
  if (reserve(b, (size_t)n, err) != TDM_OK) return TDM_ERR;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return TDM_OK;
}

char *tdm_buf_take(tdm_buf *b, size_t *len, tdm_error *err) {
  char *p;
  if (!b->data && reserve(b, 0, err) != TDM_OK) return NULL;
  if (!b->data) return NULL;
  b->data[b->len] = '\0';
  p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

size_t tdm_str_copy(char *dst, size_t dstsz, const char *src) {
  size_t len = src ? strlen(src) : 0, n = len;
  if (n >= dstsz) n = dstsz - 1;
  if (n) memcpy(dst, src, n);
  dst[n] = '\0';
  return len;
}
