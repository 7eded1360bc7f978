/*
 * fuzz_name.c -- the path-confinement checks tdm_check_name and
 * tdm_check_relpath.
 *
 * Properties: an accepted name is non-empty, at most TDM_NAME_MAX bytes,
 * not "." or "..", and has no '/', '\\', NUL or control byte; an accepted
 * relative path has no NUL, does not start with '/' and has no ".."
 * component. A refusal always fills the error's code and message.
 */
#include <string.h>

#include "tdm.h"
#include "fuzz.h"

/* Whether `p` (len bytes) has a ".." path component. */
static int has_dotdot(const char *p, size_t len) {
  size_t i, start = 0;
  for (i = 0; i <= len; i++) {
    if (i == len || p[i] == '/' || p[i] == '\\') {
      if (i - start == 2 && p[start] == '.' && p[start + 1] == '.')
        return 1;
      start = i + 1;
    }
  }
  return 0;
}

static void check_refusal(const tdm_error *err) {
  if (err->code[0] == '\0') fuzz_fail("refusal without an error code");
  if (err->message[0] == '\0') fuzz_fail("refusal without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  tdm_error err;
  size_t i;

  memset(&err, 0, sizeof err);
  if (tdm_check_name(s, size, "filename", &err) == TDM_OK) {
    if (size == 0 || size > TDM_NAME_MAX) fuzz_fail("name length");
    if ((size == 1 && s[0] == '.') ||
        (size == 2 && s[0] == '.' && s[1] == '.'))
      fuzz_fail("name is . or ..");
    for (i = 0; i < size; i++) {
      unsigned char c = data[i];
      if (c == '/' || c == '\\') fuzz_fail("name has a separator");
      if (c == 0) fuzz_fail("name has a NUL");
      if (c < 0x20 || c == 0x7f) fuzz_fail("name has a control byte");
    }
  } else {
    check_refusal(&err);
  }

  memset(&err, 0, sizeof err);
  if (tdm_check_relpath(s, size, "local_path", &err) == TDM_OK) {
    if (size == 0) fuzz_fail("empty relpath accepted");
    if (memchr(s, 0, size)) fuzz_fail("relpath has a NUL");
    if (s[0] == '/' || s[0] == '\\') fuzz_fail("relpath is absolute");
    if (has_dotdot(s, size)) fuzz_fail("relpath has ..");
  } else {
    check_refusal(&err);
  }
  return 0;
}
