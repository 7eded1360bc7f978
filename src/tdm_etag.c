/* tdm_etag.c -- S3 ETags: plain MD5s and locally computed multipart ETags,
 * so an object uploaded in parts (aws cli, tdm's own multipart PUT) can
 * still be compared with a local file. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tdm.h"

#define MIB (1024u * 1024u)

void tdm_etag_unquote(char *dst, size_t dstsz, const char *src) {
  size_t n;
  if (*src == '"') src++;
  n = strlen(src);
  if (n > 0 && src[n - 1] == '"') n--;
  if (n >= dstsz) n = dstsz - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

int tdm_etag_plain_md5(const char *etag, char *md5hex) {
  size_t i, n;
  if (*etag == '"') etag++;
  n = strlen(etag);
  if (n > 0 && etag[n - 1] == '"') n--;
  if (n != TDM_MD5_HEX_LEN) return 0;
  for (i = 0; i < n; i++) {
    if (!isxdigit((unsigned char)etag[i])) return 0;
    md5hex[i] = (char)tolower((unsigned char)etag[i]);
  }
  md5hex[n] = '\0';
  return 1;
}

/* Parse "hex-N" (quotes allowed) into lower-case hex and N. */
static int parse_multipart(const char *etag, char *hex, unsigned long *parts) {
  char tmp[TDM_ETAG_MAX + 2];
  char *dash, *end;
  size_t n;
  if (*etag == '"') etag++;
  n = strlen(etag);
  if (n > 0 && etag[n - 1] == '"') n--;
  if (n >= sizeof tmp) return 0;
  memcpy(tmp, etag, n);
  tmp[n] = '\0';
  dash = strchr(tmp, '-');
  if (!dash) return 0;
  *dash = '\0';
  if (!tdm_etag_plain_md5(tmp, hex)) return 0;
  errno = 0;
  *parts = strtoul(dash + 1, &end, 10);
  return errno == 0 && *end == '\0' && *parts > 0 && *parts <= 10000;
}

int tdm_multipart_etag_file(const char *path, uint64_t part_size,
                            char *etag, tdm_error *err) {
  unsigned char digest[TDM_MD5_LEN], *buf;
  size_t dlen;
  unsigned long parts = 0;
  int rc = TDM_OK, fd;
  tdm_hash *outer, *part = NULL;
  uint64_t in_part = 0;
  char hex[TDM_MD5_HEX_LEN + 1];
  if (part_size == 0)
    return tdm_error_set(err, "EINVAL", "multipart ETag: part size is 0");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tdm_error_errno(err, errno, "hash %s: open", path);
  buf = malloc(TDM_HASH_BUFSIZE);
  outer = tdm_hash_new(TDM_HASH_MD5, err);
  if (!buf || !outer) {
    if (!buf) tdm_error_set(err, "ENOMEM", "hash %s: out of memory", path);
    rc = TDM_ERR;
    goto done;
  }
  for (;;) {
    uint64_t want = part_size - in_part;
    ssize_t n = read(fd, buf, want < TDM_HASH_BUFSIZE ? (size_t)want
                                                      : TDM_HASH_BUFSIZE);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = tdm_error_errno(err, errno, "hash %s: read", path);
      goto done;
    }
    if (n == 0) break;
    if (!part && !(part = tdm_hash_new(TDM_HASH_MD5, err))) {
      rc = TDM_ERR;
      goto done;
    }
    tdm_hash_update(part, buf, (size_t)n, err);
    in_part += (uint64_t)n;
    if (in_part == part_size) {
      tdm_hash_final(part, digest, &dlen, err);
      tdm_hash_update(outer, digest, dlen, err);
      tdm_hash_free(part);
      part = NULL;
      in_part = 0;
      parts++;
    }
  }
  if (part || parts == 0) {
    if (!part && !(part = tdm_hash_new(TDM_HASH_MD5, err))) {
      rc = TDM_ERR;
      goto done;
    }
    tdm_hash_final(part, digest, &dlen, err);
    tdm_hash_update(outer, digest, dlen, err);
    parts++;
  }
  tdm_hash_final(outer, digest, &dlen, err);
  tdm_hex(digest, dlen, hex);
  snprintf(etag, TDM_ETAG_MAX, "%s-%lu", hex, parts);
done:
  tdm_hash_free(part);
  tdm_hash_free(outer);
  free(buf);
  close(fd);
  return rc;
}

int tdm_etag_match_file(const char *path, const char *etag,
                        const char *md5hex, int *match, tdm_error *err) {
  static const unsigned common_mib[] = {8, 5, 16, 64, 15, 10, 32, 50, 100,
                                        128, 256, 512};
  char want[TDM_MD5_HEX_LEN + 1], got[TDM_ETAG_MAX], mine[TDM_MD5_HEX_LEN + 1];
  unsigned long parts;
  struct stat st;
  size_t i;
  uint64_t size, tried[16];
  size_t ntried = 0;
  *match = 0;
  if (tdm_etag_plain_md5(etag, want)) {
    if (!md5hex) {
      if (tdm_md5_file(path, mine, NULL, err) != TDM_OK) return TDM_ERR;
      md5hex = mine;
    }
    *match = strcmp(want, md5hex) == 0;
    return TDM_OK;
  }
  if (!parse_multipart(etag, want, &parts)) return TDM_OK;
  if (stat(path, &st) != 0)
    return tdm_error_errno(err, errno, "stat %s", path);
  size = (uint64_t)st.st_size;
  /* Candidate part sizes: the common ones that give `parts` parts, and
   * size/parts rounded up to a whole MiB. */
  for (i = 0; i <= sizeof common_mib / sizeof common_mib[0]; i++) {
    uint64_t p;
    size_t j;
    if (i < sizeof common_mib / sizeof common_mib[0])
      p = (uint64_t)common_mib[i] * MIB;
    else
      p = ((size + parts - 1) / parts + MIB - 1) / MIB * MIB;
    if (p == 0 || (size + p - 1) / p != parts) {
      if (!(size == 0 && parts == 1)) continue;
    }
    for (j = 0; j < ntried; j++) if (tried[j] == p) break;
    if (j < ntried) continue;
    tried[ntried++] = p;
    if (tdm_multipart_etag_file(path, p, got, err) != TDM_OK) return TDM_ERR;
    if (strncmp(got, want, TDM_MD5_HEX_LEN) == 0) {
      *match = 1;
      return TDM_OK;
    }
  }
  return TDM_OK;
}
