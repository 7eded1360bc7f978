/* tdm_s3_error.c -- what a failed S3 request is called and means: the
 * network failure of a curl code, the "S3_<Code>" of an answer, whether
 * it is worth retrying, and what the user should do about it. Pure
 * functions. */
#include <stdio.h>
#include <string.h>

#include "tdm_s3_int.h"

tdm_s3_net tdm_s3i_net_of(CURLcode rc) {
  switch (rc) {
    case CURLE_OK: return TDM_S3_NET_OK;
    case CURLE_OPERATION_TIMEDOUT: return TDM_S3_NET_TIMEOUT;
    case CURLE_COULDNT_CONNECT: return TDM_S3_NET_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TDM_S3_NET_DNS;
    case CURLE_PARTIAL_FILE: return TDM_S3_NET_TRUNCATED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return TDM_S3_NET_RESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return TDM_S3_NET_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: return TDM_S3_NET_LOCAL;
    default: return TDM_S3_NET_OTHER;
  }
}

const char *tdm_s3i_net_code(tdm_s3_net net) {
  switch (net) {
    case TDM_S3_NET_TIMEOUT: return "ETIMEDOUT";
    case TDM_S3_NET_CONNECT: return "ECONNREFUSED";
    case TDM_S3_NET_DNS: return "EHOSTUNREACH";
    case TDM_S3_NET_TRUNCATED: return "ETRUNCATED";
    case TDM_S3_NET_RESET: return "ECONNRESET";
    case TDM_S3_NET_TLS: return "ETLS";
    default: return "ECURL";
  }
}

static const char *const retry_codes[] = {
  "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
  "Throttling", "ThrottlingException", "RequestLimitExceeded",
  "TooManyRequests", "OperationAborted", NULL
};

int tdm_s3_retryable(tdm_s3_net net, long status, const char *s3code) {
  int i;
  switch (net) {
    case TDM_S3_NET_OK: break;
    case TDM_S3_NET_TLS:
    case TDM_S3_NET_LOCAL:
    case TDM_S3_NET_OTHER:
      return 0;
    default:
      return 1;
  }
  if (s3code && *s3code)
    for (i = 0; retry_codes[i]; i++)
      if (strcmp(s3code, retry_codes[i]) == 0) return 1;
  return status >= 500 || status == 429;
}

void tdm_s3_error_code(const char *s3code, long status, char *out,
                       size_t outsz) {
  const char *name;
  if (s3code && *s3code) {
    snprintf(out, outsz, "S3_%s", s3code);
    return;
  }
  switch (status) {
    case 400: name = "BadRequest"; break;
    case 403: name = "AccessDenied"; break;
    case 404: name = "NoSuchKey"; break;
    case 405: name = "MethodNotAllowed"; break;
    case 409: name = "Conflict"; break;
    case 412: name = "PreconditionFailed"; break;
    case 416: name = "InvalidRange"; break;
    case 429: name = "SlowDown"; break;
    case 500: name = "InternalError"; break;
    case 501: name = "NotImplemented"; break;
    case 503: name = "ServiceUnavailable"; break;
    default: name = NULL; break;
  }
  if (name) snprintf(out, outsz, "S3_%s", name);
  else snprintf(out, outsz, "S3_HTTP%ld", status);
}

static const struct { const char *code, *advice; } advice[] = {
  {"SignatureDoesNotMatch", "check the secret key (AWS_SECRET_ACCESS_KEY "
   "or the profile's) and the region (AWS_REGION)"},
  {"InvalidAccessKeyId", "check AWS_ACCESS_KEY_ID (or the profile's "
   "aws_access_key_id)"},
  {"ExpiredToken", "the session token expired; refresh the credentials"},
  {"InvalidToken", "check AWS_SESSION_TOKEN"},
  {"RequestTimeTooSkewed", "this machine's clock is off; fix it (NTP) and "
   "retry"},
  {"NoSuchBucket", "check TDM_BUCKET and the region (AWS_REGION)"},
  {"AuthorizationHeaderMalformed", "check the region (AWS_REGION) matches "
   "the bucket's"},
  {"PermanentRedirect", "the bucket is in another region; set AWS_REGION "
   "to it"},
  {"AccessDenied", "the credentials lack permission for this; check the "
   "IAM policy and the bucket policy"},
  {"AllAccessDisabled", "access to the bucket is disabled"},
  {"BadDigest", "the data changed in transit; retry"},
  {"InvalidDigest", "the data changed in transit; retry"},
  {"SlowDown", "S3 is throttling; lower --jobs"},
  {NULL, NULL}
};

const char *tdm_s3_advice(const char *s3code) {
  int i;
  if (!s3code) return "";
  if (strncmp(s3code, "S3_", 3) == 0) s3code += 3;
  for (i = 0; advice[i].code; i++)
    if (strcmp(advice[i].code, s3code) == 0) return advice[i].advice;
  return "";
}
