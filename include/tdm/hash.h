/*
 * tdm/hash.h -- streaming MD5 and SHA-256 (OpenSSL EVP) with hex output.
 */
#ifndef TDM_HASH_H
#define TDM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define TDM_MD5_LEN 16
#define TDM_SHA256_LEN 32
#define TDM_MD5_HEX_LEN 32      /* without the terminating NUL */
#define TDM_SHA256_HEX_LEN 64

/* Read buffer used when hashing files: large enough that syscalls do not
 * show in a profile, small enough to stay in L2. */
#define TDM_HASH_BUFSIZE (256 * 1024)

typedef enum { TDM_HASH_MD5, TDM_HASH_SHA256 } tdm_hash_kind;

/* An incremental hash. Opaque; create with tdm_hash_new, free with
 * tdm_hash_free (NULL is a no-op). */
typedef struct tdm_hash tdm_hash;

tdm_hash *tdm_hash_new(tdm_hash_kind kind, tdm_error *err);
int tdm_hash_update(tdm_hash *h, const void *data, size_t len,
                    tdm_error *err);
/* Write the digest (16 or 32 bytes) to `out`, sets *outlen; `h` may not be
 * updated again afterwards. */
int tdm_hash_final(tdm_hash *h, unsigned char *out, size_t *outlen,
                   tdm_error *err);
void tdm_hash_free(tdm_hash *h);

/* Lower-case hex of `len` bytes into `hex` (2*len+1 bytes, NUL-terminated). */
void tdm_hex(const unsigned char *bytes, size_t len, char *hex);

/* One-shot digests of a buffer, as hex (buffers of TDM_*_HEX_LEN + 1). */
int tdm_md5_hex(const void *data, size_t len, char *hex, tdm_error *err);
int tdm_sha256_hex(const void *data, size_t len, char *hex, tdm_error *err);

/* Digest of the file at `path`, streamed through a TDM_HASH_BUFSIZE buffer.
 * Fills `hex` and, when `size` is not NULL, the number of bytes read.
 * A directory or unreadable file is an error naming the path. */
int tdm_hash_file(tdm_hash_kind kind, const char *path, char *hex,
                  uint64_t *size, tdm_error *err);
int tdm_md5_file(const char *path, char *hex, uint64_t *size,
                 tdm_error *err);

#endif

/* S3 multipart ETags ("hex-N": MD5 of the concatenated part MD5s, then the
 * part count). Buffer for one: TDM_ETAG_MAX bytes. */
#define TDM_ETAG_MAX 48

/* The multipart ETag the file at `path` would get if uploaded in parts of
 * `part_size` bytes. */
int tdm_multipart_etag_file(const char *path, uint64_t part_size,
                            char *etag, tdm_error *err);

/* Whether the file at `path` has S3 ETag `etag` (quotes allowed): a plain
 * ETag is compared with the file's MD5; a multipart one with the
 * multipart ETags of the part sizes that clients use (5, 8, 16, 64 MiB and
 * others giving the same part count). Sets *match to 1 or 0. `md5hex`
 * may give the file's known MD5 to save hashing it for a plain ETag. */
int tdm_etag_match_file(const char *path, const char *etag,
                        const char *md5hex, int *match, tdm_error *err);

/* Copy `src` without the quotes S3 puts around ETags into dst[dstsz]
 * (truncating, NUL-terminated). */
void tdm_etag_unquote(char *dst, size_t dstsz, const char *src);

/* The plain MD5 in an ETag (quotes stripped, lower case) into `md5hex`;
 * returns 1 when `etag` is a plain MD5, 0 when multipart or other. */
int tdm_etag_plain_md5(const char *etag, char *md5hex);
