/* tdm_error.c -- filling tdm_error (see include/tdm/error.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tdm.h"

void tdm_error_clear(tdm_error *err) {
  if (err) {
    err->code[0] = '\0';
    err->message[0] = '\0';
  }
}

static void set_code(tdm_error *err, const char *code) {
  size_t n = strlen(code);
  if (n >= sizeof err->code) n = sizeof err->code - 1;
  memcpy(err->code, code, n);
  err->code[n] = '\0';
}

int tdm_error_set(tdm_error *err, const char *code, const char *fmt, ...) {
  va_list ap;
  if (!err) return TDM_ERR;
  set_code(err, code);
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return TDM_ERR;
}

int tdm_error_errno(tdm_error *err, int errnum, const char *fmt, ...) {
  va_list ap;
  size_t n;
  if (!err) return TDM_ERR;
  set_code(err, tdm_errno_name(errnum));
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  n = strlen(err->message);
  snprintf(err->message + n, sizeof err->message - n, ": %s",
           strerror(errnum));
  return TDM_ERR;
}

const char *tdm_errno_name(int errnum) {
  switch (errnum) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EEXIST: return "EEXIST";
  case EISDIR: return "EISDIR";
  case ENOTDIR: return "ENOTDIR";
  case ENOSPC: return "ENOSPC";
  case EROFS: return "EROFS";
  case EINVAL: return "EINVAL";
  case ENOMEM: return "ENOMEM";
  case EINTR: return "EINTR";
  case EAGAIN: return "EAGAIN";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EMFILE: return "EMFILE";
  case EDQUOT: return "EDQUOT";
  case EXDEV: return "EXDEV";
  case ETIMEDOUT: return "ETIMEDOUT";
  default: return "EIO";
  }
}
