/* tdm_checksum.c -- S3's additional checksums (see tdm/checksum.h). The
 * CRCs are the reflected table-driven forms: CRC-32 (ISO-HDLC, as zlib),
 * CRC-32C (Castagnoli) and CRC-64/NVME (what AWS S3 computes by default
 * since 2025); SHA-1/SHA-256 go through OpenSSL. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tdm.h"

static uint32_t t32[256], t32c[256];
static uint64_t t64[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_tables(void) {
  unsigned i, k;
  for (i = 0; i < 256; i++) {
    uint32_t a = i, b = i;
    uint64_t c = i;
    for (k = 0; k < 8; k++) {
      a = (a >> 1) ^ (a & 1 ? 0xEDB88320u : 0);
      b = (b >> 1) ^ (b & 1 ? 0x82F63B78u : 0);
      c = (c >> 1) ^ (c & 1 ? 0x9A6C9329AC4BC9B5ull : 0);
    }
    t32[i] = a;
    t32c[i] = b;
    t64[i] = c;
  }
}

static const char *const names[] = {
  "", "crc32", "crc32c", "crc64nvme", "sha1", "sha256"
};

const char *tdm_ck_name(tdm_ck_algo a) {
  return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "";
}

tdm_ck_algo tdm_ck_from_name(const char *name) {
  unsigned i;
  if (!name || !*name) return TDM_CK_NONE;
  for (i = 1; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(name, names[i]) == 0) return (tdm_ck_algo)i;
  return TDM_CK_NONE;
}

int tdm_ck_init(tdm_ck *c, tdm_ck_algo a, tdm_error *err) {
  memset(c, 0, sizeof *c);
  c->algo = a;
  pthread_once(&once, make_tables);
  if (a == TDM_CK_CRC32 || a == TDM_CK_CRC32C) c->crc = 0xFFFFFFFFu;
  else if (a == TDM_CK_CRC64NVME) c->crc = ~0ull;
  else if (a == TDM_CK_SHA1 || a == TDM_CK_SHA256) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, a == TDM_CK_SHA1 ? EVP_sha1()
                                 : EVP_sha256(), NULL) != 1) {
      EVP_MD_CTX_free(md);
      return tdm_error_set(err, "ECRYPTO", "checksum %s: cannot initialise",
                           tdm_ck_name(a));
    }
    c->md = md;
  } else {
    return tdm_error_set(err, "EINVAL", "no such checksum algorithm");
  }
  return TDM_OK;
}

void tdm_ck_update(tdm_ck *c, const void *data, size_t len) {
  const unsigned char *p = data;
  size_t i;
  switch (c->algo) {
    case TDM_CK_CRC32: {
      uint32_t r = (uint32_t)c->crc;
      for (i = 0; i < len; i++) r = t32[(r ^ p[i]) & 0xFF] ^ (r >> 8);
      c->crc = r;
      break;
    }
    case TDM_CK_CRC32C: {
      uint32_t r = (uint32_t)c->crc;
      for (i = 0; i < len; i++) r = t32c[(r ^ p[i]) & 0xFF] ^ (r >> 8);
      c->crc = r;
      break;
    }
    case TDM_CK_CRC64NVME: {
      uint64_t r = c->crc;
      for (i = 0; i < len; i++) r = t64[(r ^ p[i]) & 0xFF] ^ (r >> 8);
      c->crc = r;
      break;
    }
    case TDM_CK_SHA1:
    case TDM_CK_SHA256:
      if (c->md) EVP_DigestUpdate(c->md, data, len);
      break;
    default:
      break;
  }
}

int tdm_ck_final(tdm_ck *c, char *b64, tdm_error *err) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0, i;
  if (c->algo == TDM_CK_CRC32 || c->algo == TDM_CK_CRC32C) {
    uint32_t v = (uint32_t)c->crc ^ 0xFFFFFFFFu;
    for (i = 0; i < 4; i++) d[i] = (unsigned char)(v >> (24 - 8 * i));
    n = 4;
  } else if (c->algo == TDM_CK_CRC64NVME) {
    uint64_t v = ~c->crc;
    for (i = 0; i < 8; i++) d[i] = (unsigned char)(v >> (56 - 8 * i));
    n = 8;
  } else if (!c->md || EVP_DigestFinal_ex(c->md, d, &n) != 1) {
    tdm_ck_free(c);
    return tdm_error_set(err, "ECRYPTO", "checksum %s: final failed",
                         tdm_ck_name(c->algo));
  }
  EVP_EncodeBlock((unsigned char *)b64, d, (int)n);
  tdm_ck_free(c);
  return TDM_OK;
}

void tdm_ck_free(tdm_ck *c) {
  EVP_MD_CTX_free(c->md);
  c->md = NULL;
}

int tdm_ck_file(const char *path, tdm_ck_algo a, char *b64, tdm_error *err) {
  unsigned char *buf;
  tdm_ck c;
  int fd, rc = TDM_ERR;
  if (tdm_ck_init(&c, a, err) != TDM_OK) return TDM_ERR;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    tdm_ck_free(&c);
    return tdm_error_errno(err, errno, "open %s", path);
  }
  if (!(buf = malloc(TDM_HASH_BUFSIZE))) {
    tdm_error_set(err, "ENOMEM", "checksum %s: out of memory", path);
    goto done;
  }
  for (;;) {
    ssize_t n = read(fd, buf, TDM_HASH_BUFSIZE);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      tdm_error_errno(err, errno, "read %s", path);
      goto done;
    }
    if (n == 0) break;
    tdm_ck_update(&c, buf, (size_t)n);
  }
  rc = tdm_ck_final(&c, b64, err);
done:
  tdm_ck_free(&c);
  free(buf);
  close(fd);
  return rc;
}
