/* tdm_s3_retry.c -- what is worth retrying, how long to wait, and what an
 * S3 error code means for the user. Pure functions. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm.h"
#include "tdm/s3.h"

#define RETRY_AFTER_MAX 300.0

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

double tdm_s3_backoff(int attempt, double base, double cap,
                      double retry_after, double u) {
  double ceiling = base * ldexp(1.0, attempt > 1 ? attempt - 1 : 0);
  double d;
  if (ceiling > cap) ceiling = cap;
  if (u < 0) u = 0;
  if (u >= 1) u = 0.999999;
  d = u * ceiling;
  if (retry_after >= 0) {
    if (retry_after > RETRY_AFTER_MAX) retry_after = RETRY_AFTER_MAX;
    if (d < retry_after) d = retry_after;
  }
  return d;
}

double tdm_s3_retry_after(const char *value, time_t now) {
  char *end;
  double d;
  time_t t;
  if (!value) return -1;
  while (isspace((unsigned char)*value)) value++;
  if (!*value) return -1;
  if (isdigit((unsigned char)*value)) {
    d = strtod(value, &end);
    while (isspace((unsigned char)*end)) end++;
    return *end ? -1 : d;
  }
  if ((t = (time_t)tdm_s3_parse_time(value)) <= 0) return -1;
  return t > now ? (double)(t - now) : 0;
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
