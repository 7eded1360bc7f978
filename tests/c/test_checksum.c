/* test_checksum.c -- S3's additional checksums against the check values
 * of the CRC catalogue ("123456789") and FIPS 180 (values as S3 writes
 * them: base64 of the big-endian digest), streamed in odd pieces, and of
 * a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "tdm.h"

static const struct { const char *algo, *in, *b64; } vectors[] = {
  {"crc32", "123456789", "y/Q5Jg=="},              /* 0xCBF43926 */
  {"crc32c", "123456789", "4waSgw=="},             /* 0xE3069283 */
  {"crc64nvme", "123456789", "rosUhgp5mIg="},      /* 0xAE8B14860A799888 */
  {"sha1", "123456789", "98O8HYCOBHMq32eZZczDTKeuNEE="},
  {"sha256", "123456789", "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="},
  {"crc32", "", "AAAAAA=="},
  {"crc64nvme", "", "AAAAAAAAAAA="},
  {"CRC32C", "", "AAAAAA=="},                      /* names in any case */
};

static void one(const char *algo, const char *in, size_t step,
                const char *want) {
  tdm_ck c;
  tdm_error err;
  char got[TDM_CK_B64_MAX], what[128];
  size_t i, n = strlen(in);
  snprintf(what, sizeof what, "%s(\"%s\") in pieces of %zu", algo, in, step);
  T_CHECK(tdm_ck_init(&c, tdm_ck_from_name(algo), &err) == TDM_OK, what);
  for (i = 0; i < n; i += step)
    tdm_ck_update(&c, in + i, n - i < step ? n - i : step);
  T_CHECK(tdm_ck_final(&c, got, &err) == TDM_OK, what);
  T_EQ_STR(got, want, what);
}

int main(void) {
  size_t i;
  tdm_error err;
  char path[] = "/tmp/tdm-ck-XXXXXX", got[TDM_CK_B64_MAX];
  int fd;
  for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    one(vectors[i].algo, vectors[i].in, 1, vectors[i].b64);
    one(vectors[i].algo, vectors[i].in, 4, vectors[i].b64);
    one(vectors[i].algo, vectors[i].in, 100, vectors[i].b64);
  }
  T_EQ_INT(tdm_ck_from_name("md5"), TDM_CK_NONE, "md5 is no S3 checksum");
  T_EQ_STR(tdm_ck_name(TDM_CK_CRC64NVME), "crc64nvme", "name");
  fd = mkstemp(path);
  T_CHECK(fd >= 0 && write(fd, "123456789", 9) == 9, "write a file");
  close(fd);
  T_CHECK(tdm_ck_file(path, TDM_CK_CRC32C, got, &err) == TDM_OK, "file");
  T_EQ_STR(got, "4waSgw==", "crc32c of a file");
  unlink(path);
  T_CHECK(tdm_ck_file(path, TDM_CK_CRC32C, got, &err) == TDM_ERR &&
          strcmp(err.code, "ENOENT") == 0, "a missing file: ENOENT");
  T_DONE();
}
