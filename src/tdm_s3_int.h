/*
 * tdm_s3_int.h -- internals shared by the tdm_s3_*.c files (client, loop,
 * errors).
 * Not installed; nothing outside src/tdm_s3_*.c includes it.
 */
#ifndef TDM_S3_INT_H
#define TDM_S3_INT_H

#include "tdm_curl.h"

#include "tdm.h"
#include "tdm/s3.h"

struct tdm_s3 {
  char *bucket, *region, *ca_bundle;
  char scheme[8];              /* "https" or "http" */
  char host[512];              /* endpoint authority, or "" for AWS */
  char s3_label[24];           /* AWS host: "s3", "s3-fips", ... */
  int path_style;
  tdm_cred_provider *creds;    /* re-read at each signing: refreshed */
  int jobs, max_attempts;
  uint64_t threshold, part_size;
  long connect_timeout, stall_timeout;
  double backoff_base, backoff_cap;
  CURLM *multi;                /* one connection cache for every request */
  CURL **pool;                 /* idle easy handles kept for reuse */
  size_t npool, cappool;
  int busy;                    /* a batch is running */
  uint64_t rng;                /* xorshift state for jitter */
  uint64_t requests, connects; /* requests finished, connections opened */
  char sse[16];                /* "" or x-amz-server-side-encryption */
  char *sse_kms_key_id;        /* "" or the KMS key */
  tdm_ck_algo checksum;        /* sent with single PUTs */
  char region_from[32];        /* the configured region, once S3 said the
                                  bucket is in another ("" before) */
};

/* One request to prepare on an easy handle: everything the signer and the
 * URL need. Strings are raw (not encoded). */
typedef struct tdm_s3_req {
  const char *method;
  const char *key;             /* "" for the bucket */
  const tdm_kv *query;
  size_t nq;
  const tdm_kv *headers;       /* signed and sent */
  size_t nh;
  const char *payload_hash;
} tdm_s3_req;

/* An easy handle from the pool (reset) or a new one; NULL when out of
 * memory. Give it back with tdm_s3i_easy_put. */
CURL *tdm_s3i_easy_get(tdm_s3 *c);
void tdm_s3i_easy_put(tdm_s3 *c, CURL *e);

/* Set the URL, the common options (TLS verification, CA bundle,
 * timeouts, no signals) and the signed headers of `r` on `e`. The header
 * list is stored in *hdrs (free with curl_slist_free_all after the
 * transfer). `errbuf` (CURL_ERROR_SIZE) receives curl's messages. */
int tdm_s3i_prepare(tdm_s3 *c, CURL *e, const tdm_s3_req *r,
                    struct curl_slist **hdrs, char *errbuf, tdm_error *err);

/* Sign for `region` from now on (the bucket's, from x-amz-bucket-region),
 * remembering the configured one in c->region_from. Once per client:
 * TDM_ERR when it switched before, or `region` is not a region name. */
int tdm_s3i_switch_region(tdm_s3 *c, const char *region);

/* Uniform [0,1) for jitter. */
double tdm_s3i_random(tdm_s3 *c);

/* tdm_s3_error.c: the kind of network failure of a curl code, and its
 * error code ("ETIMEDOUT", "ETLS", ... "ECURL"). */
tdm_s3_net tdm_s3i_net_of(CURLcode rc);
const char *tdm_s3i_net_code(tdm_s3_net net);

#endif
