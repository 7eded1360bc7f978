/* test_hash.c -- MD5/SHA-256 against RFC 1321 and FIPS 180 vectors, and
 * file hashing at buffer boundaries against md5sum. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "tdm.h"

static const struct { const char *in, *md5; } md5_vectors[] = {
  {"", "d41d8cd98f00b204e9800998ecf8427e"},
  {"a", "0cc175b9c0f1b6a831c399e269772661"},
  {"abc", "900150983cd24fb0d6963f7d28e17f72"},
  {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
  {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
  {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
   "d174ab98d277d9f5a5611c2c9f419d9f"},
  {"1234567890123456789012345678901234567890123456789012345678901234567890"
   "1234567890", "57edf4a22be3c955ac49da2e2107b67a"},
};

static const struct { const char *in, *sha; } sha_vectors[] = {
  {"abc",
   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
  {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

/* md5sum's answer for `path`, for comparison. */
static void md5sum_of(const char *path, char *hex) {
  char cmd[512];
  FILE *p;
  snprintf(cmd, sizeof cmd, "md5sum '%s'", path);
  p = popen(cmd, "r");
  hex[0] = '\0';
  if (p) {
    if (fscanf(p, "%32s", hex) != 1) hex[0] = '\0';
    pclose(p);
  }
}

static void write_pattern(const char *path, size_t size) {
  FILE *f = fopen(path, "wb");
  size_t i;
  unsigned x = 2463534242u;
  for (i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    fputc((int)(x & 0xff), f);
  }
  fclose(f);
}

int main(void) {
  char hex[TDM_SHA256_HEX_LEN + 1], want[TDM_MD5_HEX_LEN + 1];
  char dir[] = "/tmp/tdm-test-hash.XXXXXX", path[256];
  size_t i, sizes[] = {0, 1, TDM_HASH_BUFSIZE, TDM_HASH_BUFSIZE + 1,
                       50u * 1000 * 1000};
  uint64_t size;
  tdm_error err;
  tdm_hash *h;

  for (i = 0; i < sizeof md5_vectors / sizeof md5_vectors[0]; i++) {
    T_CHECK(tdm_md5_hex(md5_vectors[i].in, strlen(md5_vectors[i].in), hex,
                        &err) == TDM_OK, "md5 ok");
    T_EQ_STR(hex, md5_vectors[i].md5, md5_vectors[i].in);
  }
  for (i = 0; i < sizeof sha_vectors / sizeof sha_vectors[0]; i++) {
    T_CHECK(tdm_sha256_hex(sha_vectors[i].in, strlen(sha_vectors[i].in),
                           hex, &err) == TDM_OK, "sha256 ok");
    T_EQ_STR(hex, sha_vectors[i].sha, sha_vectors[i].in);
  }

  /* FIPS 180-2: one million 'a', fed in uneven pieces. */
  h = tdm_hash_new(TDM_HASH_SHA256, &err);
  {
    char chunk[997];
    unsigned char out[32];
    size_t left = 1000000, n = 0;
    memset(chunk, 'a', sizeof chunk);
    while (left) {
      size_t k = left < sizeof chunk ? left : sizeof chunk;
      tdm_hash_update(h, chunk, k, &err);
      left -= k;
    }
    tdm_hash_final(h, out, &n, &err);
    tdm_hex(out, n, hex);
    T_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39cc"
             "c7112cd0", "sha256 of a million 'a'");
  }
  tdm_hash_free(h);

  if (!mkdtemp(dir)) {
    printf("not ok: mkdtemp: %s\n", strerror(errno));
    T_DONE();
  }
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    snprintf(path, sizeof path, "%s/f%zu", dir, sizes[i]);
    write_pattern(path, sizes[i]);
    md5sum_of(path, want);
    size = 12345;
    T_CHECK(tdm_md5_file(path, hex, &size, &err) == TDM_OK,
            "md5_file(%zu bytes): %s", sizes[i], err.message);
    T_EQ_STR(hex, want, path);
    T_EQ_INT(size, sizes[i], "size reported");
    unlink(path);
  }

  /* A missing file, a directory and an unreadable file: clean errors. */
  snprintf(path, sizeof path, "%s/missing", dir);
  T_CHECK(tdm_md5_file(path, hex, NULL, &err) == TDM_ERR, "missing fails");
  T_EQ_STR(err.code, "ENOENT", "missing file code");
  T_CHECK(strstr(err.message, path) != NULL, "message names the file: %s",
          err.message);
  T_CHECK(tdm_md5_file(dir, hex, NULL, &err) == TDM_ERR, "directory fails");
  T_EQ_STR(err.code, "EISDIR", "directory code");
  if (geteuid() != 0) {
    snprintf(path, sizeof path, "%s/secret", dir);
    write_pattern(path, 10);
    chmod(path, 0);
    T_CHECK(tdm_md5_file(path, hex, NULL, &err) == TDM_ERR,
            "unreadable fails");
    T_EQ_STR(err.code, "EACCES", "unreadable code");
    unlink(path);
  }
  rmdir(dir);
  T_DONE();
}
