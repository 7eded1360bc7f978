/*
 * fuzz_s3xml.c -- the S3 XML parsers (expat, streaming): ListObjectsV2
 * pages, <Error> bodies, DeleteObjects results, multipart initiate and
 * complete answers.
 *
 * Input: byte 0 picks the parser kind (bits 0-2, modulo 5) and the
 * chunking (bits 3-6: the body is fed in pieces of that many bytes, 0 =
 * whole, as it may arrive from the network);
 * the rest is the body. Properties: no crash, leak or UB; a failed feed
 * fills the error; every listed object has a key with no NUL before its
 * end; tdm_s3_parse_error on the same bytes never crashes and fills
 * NUL-terminated fields.
 */
#include <string.h>

#include "tdm.h"
#include "tdm/s3.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const tdm_s3_xml_kind kinds[] = {
    TDM_S3_XML_LIST, TDM_S3_XML_ERROR, TDM_S3_XML_DELETE,
    TDM_S3_XML_INITIATE, TDM_S3_XML_COMPLETE};
  tdm_s3_job job;
  tdm_s3_xml *x;
  tdm_s3_errinfo info;
  tdm_error err;
  size_t chunk, off = 0, i;
  int rc = TDM_OK;
  const char *body;

  if (size < 1) return 0;
  body = (const char *)data + 1;
  size -= 1;
  chunk = (data[0] >> 3) & 0x0f;   /* 0: whole body at once */

  memset(&info, 0, sizeof info);
  if (tdm_s3_parse_error(body, size, &info)) {
    if (memchr(info.code, 0, sizeof info.code) == NULL ||
        memchr(info.message, 0, sizeof info.message) == NULL ||
        memchr(info.request_id, 0, sizeof info.request_id) == NULL)
      fuzz_fail("error fields not terminated");
  }

  memset(&job, 0, sizeof job);
  memset(&err, 0, sizeof err);
  job.op = TDM_S3_LIST;
  x = tdm_s3_xml_new(kinds[(data[0] & 7) % 5], &job, &err);
  if (!x) {
    if (!err.message[0]) fuzz_fail("xml_new failed silently");
    return 0;
  }
  if (chunk == 0) {
    rc = tdm_s3_xml_feed(x, body, size, 1, &err);
  } else {
    while (rc == TDM_OK && off < size) {
      size_t n = size - off < chunk ? size - off : chunk;
      rc = tdm_s3_xml_feed(x, body + off, n, 0, &err);
      off += n;
    }
    if (rc == TDM_OK) rc = tdm_s3_xml_feed(x, "", 0, 1, &err);
  }
  if (rc != TDM_OK && (!err.code[0] || !err.message[0]))
    fuzz_fail("feed failed without an error");
  if (rc == TDM_OK) {
    for (i = 0; i < job.nobjects; i++)
      if (!job.objects[i].key) fuzz_fail("listed object without a key");
    (void)tdm_s3_xml_error(x);
    (void)tdm_s3_xml_value(x);
  }
  tdm_s3_xml_free(x);
  tdm_s3_job_clear(&job);
  return 0;
}
