/*
 * t.h -- the smallest test harness that says what it expected and what it
 * got. Each test program ends with T_DONE(), which prints
 * "N passed, N failed" (the line tests/run.sh adds up) and exits non-zero
 * when anything failed.
 */
#ifndef TDM_T_H
#define TDM_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed;

#define T_CHECK(cond, ...) do {                                        \
    if (cond) t_passed++;                                              \
    else {                                                             \
      t_failed++;                                                      \
      printf("not ok %s:%d: ", __FILE__, __LINE__);                    \
      printf(__VA_ARGS__);                                             \
      printf("\n");                                                    \
    }                                                                  \
  } while (0)

#define T_EQ_STR(got, want, what) do {                                 \
    const char *t_g_ = (got), *t_w_ = (want);                          \
    T_CHECK(t_g_ && t_w_ && strcmp(t_g_, t_w_) == 0,                   \
            "%s: expected '%s', got '%s'", (what), t_w_ ? t_w_ : "(null)",\
            t_g_ ? t_g_ : "(null)");                                   \
  } while (0)

#define T_EQ_INT(got, want, what) do {                                 \
    long long t_g_ = (long long)(got), t_w_ = (long long)(want);       \
    T_CHECK(t_g_ == t_w_, "%s: expected %lld, got %lld", (what), t_w_, \
            t_g_);                                                     \
  } while (0)

/* The whole file at `path` (malloc'd, NUL-terminated; *len its size), or
 * NULL when it cannot be read. Unused in some test programs. */
static inline char *t_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  *len = 0;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (!buf) return NULL;
  buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

#define T_DONE() do {                                                  \
    printf("%d passed, %d failed\n", t_passed, t_failed);              \
    return t_failed ? 1 : 0;                                           \
  } while (0)

#endif
