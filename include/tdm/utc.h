/*
 * tdm/utc.h -- broken-down UTC times to epoch seconds, with the range
 * checks that manifest dates and S3 times (ISO 8601, HTTP dates) share.
 */
#ifndef TDM_UTC_H
#define TDM_UTC_H

/* Epoch seconds of the UTC time year `y`, month `mo` (1-12), day `d`
 * (1-31), `h`:`mi`:`sec` (0-23, 0-59, 0 <= sec < 61: a leap second and
 * a fraction allowed); -1 when a field is out of range or the year is
 * before 1970. A day past the month's end rolls over as timegm does. */
double tdm_utc_seconds(int y, int mo, int d, int h, int mi, double sec);

/* Epoch seconds of "YYYY-MM-DDTHH:MM:SS[.ffffff]" (UTC; what manifests
 * hold and S3 listings send, a trailing "Z" ignored), or -1 (also when a
 * field is out of range). */
double tdm_parse_utc(const char *s);

/* Epoch seconds of the times S3 and HTTP send: the form above or an HTTP
 * date in any of its three forms (Last-Modified, Retry-After); 0 when
 * unparsable. */
double tdm_parse_time(const char *s);

#endif
