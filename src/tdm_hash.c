/* tdm_hash.c -- streaming MD5/SHA-256 through OpenSSL EVP. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tdm.h"

struct tdm_hash {
  EVP_MD_CTX *ctx;
  tdm_hash_kind kind;
};

tdm_hash *tdm_hash_new(tdm_hash_kind kind, tdm_error *err) {
  tdm_hash *h = calloc(1, sizeof *h);
  const EVP_MD *md = kind == TDM_HASH_MD5 ? EVP_md5() : EVP_sha256();
  if (!h) {
    tdm_error_set(err, "ENOMEM", "hash: out of memory");
    return NULL;
  }
  h->kind = kind;
  h->ctx = EVP_MD_CTX_new();
  if (!h->ctx || EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
    tdm_error_set(err, "ECRYPTO", "hash: cannot initialise %s",
                  kind == TDM_HASH_MD5 ? "MD5" : "SHA-256");
    tdm_hash_free(h);
    return NULL;
  }
  return h;
}

int tdm_hash_update(tdm_hash *h, const void *data, size_t len,
                    tdm_error *err) {
  if (EVP_DigestUpdate(h->ctx, data, len) != 1)
    return tdm_error_set(err, "ECRYPTO", "hash: update failed");
  return TDM_OK;
}

int tdm_hash_final(tdm_hash *h, unsigned char *out, size_t *outlen,
                   tdm_error *err) {
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1)
    return tdm_error_set(err, "ECRYPTO", "hash: final failed");
  *outlen = n;
  return TDM_OK;
}

void tdm_hash_free(tdm_hash *h) {
  if (!h) return;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}

void tdm_hex(const unsigned char *bytes, size_t len, char *hex) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < len; i++) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 15];
  }
  hex[2 * len] = '\0';
}

static int digest_hex(tdm_hash_kind kind, const void *data, size_t len,
                      char *hex, tdm_error *err) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t n = 0;
  int rc = TDM_ERR;
  tdm_hash *h = tdm_hash_new(kind, err);
  if (!h) return TDM_ERR;
  if (tdm_hash_update(h, data, len, err) == TDM_OK &&
      tdm_hash_final(h, out, &n, err) == TDM_OK) {
    tdm_hex(out, n, hex);
    rc = TDM_OK;
  }
  tdm_hash_free(h);
  return rc;
}

int tdm_md5_hex(const void *data, size_t len, char *hex, tdm_error *err) {
  return digest_hex(TDM_HASH_MD5, data, len, hex, err);
}

int tdm_sha256_hex(const void *data, size_t len, char *hex,
                   tdm_error *err) {
  return digest_hex(TDM_HASH_SHA256, data, len, hex, err);
}

/* Hash an open descriptor to EOF; `path` only names it in errors. */
static int hash_fd(tdm_hash *h, int fd, const char *path, uint64_t *size,
                   tdm_error *err) {
  unsigned char *buf = malloc(TDM_HASH_BUFSIZE);
  uint64_t total = 0;
  int rc = TDM_OK;
  if (!buf) return tdm_error_set(err, "ENOMEM", "hash %s: out of memory",
                                 path);
  for (;;) {
    ssize_t n = read(fd, buf, TDM_HASH_BUFSIZE);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = tdm_error_errno(err, errno, "hash %s: read", path);
      break;
    }
    if (tdm_hash_update(h, buf, (size_t)n, err) != TDM_OK) {
      rc = TDM_ERR;
      break;
    }
    total += (uint64_t)n;
  }
  free(buf);
  if (rc == TDM_OK && size) *size = total;
  return rc;
}

int tdm_hash_file(tdm_hash_kind kind, const char *path, char *hex,
                  uint64_t *size, tdm_error *err) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t n = 0;
  struct stat st;
  tdm_hash *h;
  int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tdm_error_errno(err, errno, "hash %s: open", path);
  if (fstat(fd, &st) != 0) {
    rc = tdm_error_errno(err, errno, "hash %s: stat", path);
    close(fd);
    return rc;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return tdm_error_errno(err, EISDIR, "hash %s", path);
  }
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  h = tdm_hash_new(kind, err);
  if (!h) {
    close(fd);
    return TDM_ERR;
  }
  rc = hash_fd(h, fd, path, size, err);
  if (rc == TDM_OK) rc = tdm_hash_final(h, out, &n, err);
  if (rc == TDM_OK) tdm_hex(out, n, hex);
  tdm_hash_free(h);
  close(fd);
  return rc;
}

int tdm_md5_file(const char *path, char *hex, uint64_t *size,
                 tdm_error *err) {
  return tdm_hash_file(TDM_HASH_MD5, path, hex, size, err);
}
