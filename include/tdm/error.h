/*
 * tdm/error.h -- the one error convention of libtdm.
 *
 * A failing call returns TDM_ERR and fills *err: `code` is a short stable
 * string ("ENOENT", "EIO", "LOCKED", "BADJSON", "S3_AccessDenied", ...)
 * that scripts may compare, `message` is one line for humans that names the
 * operation and the object. Neither ever contains a secret.
 */
#ifndef TDM_ERROR_H
#define TDM_ERROR_H

#include <stddef.h>

#define TDM_OK 0
#define TDM_ERR (-1)

#define TDM_ERR_CODE_MAX 48
#define TDM_ERR_MSG_MAX 1024

typedef struct tdm_error {
  char code[TDM_ERR_CODE_MAX];
  char message[TDM_ERR_MSG_MAX];
} tdm_error;

/* Clear *err (either pointer may be NULL in every tdm_error_* call). */
void tdm_error_clear(tdm_error *err);

/* Fill *err with `code` and a printf-style message; returns TDM_ERR so
 * callers can write `return tdm_error_set(err, "EIO", "...", ...);`.
 * Both strings are truncated to fit. */
int tdm_error_set(tdm_error *err, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Like tdm_error_set, with the code taken from errno value `errnum`
 * ("ENOENT", "EACCES", ...) and ": strerror(errnum)" appended. */
int tdm_error_errno(tdm_error *err, int errnum, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Stable name of an errno value ("ENOENT"); "EIO" for unknown values. */
const char *tdm_errno_name(int errnum);

#endif
