/*
 * tdm/checksum.h -- the additional checksums S3 keeps beside an object
 * (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256): streaming,
 * with the value as S3 writes it (base64 of the big-endian digest).
 */
#ifndef TDM_CHECKSUM_H
#define TDM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef enum {
  TDM_CK_NONE, TDM_CK_CRC32, TDM_CK_CRC32C, TDM_CK_CRC64NVME, TDM_CK_SHA1,
  TDM_CK_SHA256
} tdm_ck_algo;

/* Room for a value: base64 of a SHA-256 (44) + NUL. */
#define TDM_CK_B64_MAX 48

/* "crc32", "crc32c", "crc64nvme", "sha1", "sha256" ("" for NONE); the
 * algorithm of such a name (any case), TDM_CK_NONE for others. */
const char *tdm_ck_name(tdm_ck_algo a);
tdm_ck_algo tdm_ck_from_name(const char *name);

/* A running checksum. Zero it, tdm_ck_init, update, final; tdm_ck_free
 * releases it at any point (safe twice, and on a zeroed one). */
typedef struct tdm_ck {
  tdm_ck_algo algo;
  uint64_t crc;
  void *md;                    /* EVP_MD_CTX for SHA-1/SHA-256 */
} tdm_ck;

int tdm_ck_init(tdm_ck *c, tdm_ck_algo a, tdm_error *err);
void tdm_ck_update(tdm_ck *c, const void *data, size_t len);
/* The value as S3 writes it into b64[TDM_CK_B64_MAX]; frees c. */
int tdm_ck_final(tdm_ck *c, char *b64, tdm_error *err);
void tdm_ck_free(tdm_ck *c);

/* The checksum of the file at `path`. */
int tdm_ck_file(const char *path, tdm_ck_algo a, char *b64, tdm_error *err);

#endif
