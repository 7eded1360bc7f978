/* tdm_s3_retry.c -- how long to wait before a retry (backoff with jitter,
 * Retry-After). Pure functions; what is worth retrying is in
 * tdm_s3_error.c. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

#include "tdm.h"
#include "tdm/s3.h"

#define RETRY_AFTER_MAX 300.0

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
  if ((t = (time_t)tdm_parse_time(value)) <= 0) return -1;
  return t > now ? (double)(t - now) : 0;
}
