/* tdm_s3_md5.c -- what an S3 answer says the object's MD5 is (issue 18):
 * MD5 metadata first (tdm's, rclone's, s3cmd's), then an additional
 * checksum, then the ETag only where it is one -- never for SSE-KMS,
 * DSSE-KMS or SSE-C objects, whose ETags are 32 hex digits that are not
 * the MD5. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "tdm_s3_xfer.h"

/* 32 hex digits at s (lower-cased into out[33]), else 0. */
static int hex32(const char *s, char *out) {
  int i;
  for (i = 0; i < 32; i++) {
    if (!isxdigit((unsigned char)s[i])) return 0;
    out[i] = (char)tolower((unsigned char)s[i]);
  }
  out[32] = '\0';
  return 1;
}

void tdm_s3i_meta_md5(tdm_s3_answer *a, const char *name, const char *v) {
  if (strcasecmp(name, "md5") == 0) {
    if (!tdm_etag_plain_md5(v, a->meta_md5)) a->meta_md5[0] = '\0';
  } else if (strcasecmp(name, "md5chksum") == 0) {
    /* rclone: base64 of the 16 bytes */
    unsigned char d[32];
    size_t n = strlen(v);
    if (n == 24 && EVP_DecodeBlock(d, (const unsigned char *)v, 24) == 18)
      tdm_hex(d, TDM_MD5_LEN, a->rclone_md5);
  } else if (strcasecmp(name, "s3cmd-attrs") == 0) {
    /* s3cmd: "atime:...//md5:HEX//mode:..." */
    const char *p = strstr(v, "md5:");
    if (!(p && (p == v || p[-1] == '/') && hex32(p + 4, a->s3cmd_md5) &&
          (p[36] == '\0' || p[36] == '/')))
      a->s3cmd_md5[0] = '\0';
  }
}

static int encrypted(const tdm_s3_answer *a) {
  return a->sse_c || strncasecmp(a->sse, "aws:kms", 7) == 0;
}

const char *tdm_s3_md5_of(const tdm_s3_answer *a, char *md5) {
  md5[0] = '\0';
  if (a->meta_md5[0]) {
    memcpy(md5, a->meta_md5, 33);
    return "meta";
  }
  if (a->rclone_md5[0]) {
    memcpy(md5, a->rclone_md5, 33);
    return "rclone";
  }
  if (a->s3cmd_md5[0]) {
    memcpy(md5, a->s3cmd_md5, 33);
    return "s3cmd";
  }
  if (a->ck_algo[0] && a->ck_value[0])
    return tdm_ck_name(tdm_ck_from_name(a->ck_algo));
  if (!a->etag[0] || encrypted(a)) return "none";
  if (tdm_etag_plain_md5(a->etag, md5)) return "etag";
  return strchr(a->etag, '-') ? "multipart-etag" : "none";
}
