/* tdm_utc.c -- UTC times to epoch seconds: broken-down fields, and the
 * text forms S3 and HTTP use (see include/tdm/utc.h). */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tdm.h"

/* The whole seconds go through timegm and the fraction is added last, so
 * the result is the double nearest the exact time whether the caller
 * passes "05.123" as one double or adds the fraction itself. */
double tdm_utc_seconds(int y, int mo, int d, int h, int mi, double sec) {
  struct tm tm;
  double whole;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 ||
      h > 23 || mi < 0 || mi > 59 || !(sec >= 0 && sec < 61))
    return -1;
  whole = floor(sec);
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = (int)whole;
  return (double)timegm(&tm) + (sec - whole);
}

double tdm_parse_utc(const char *s) {
  int y, mo, d, h, mi, sec, n = 0;
  double t, frac = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
                   &sec, &n) != 6)
    return -1;
  if (s[n] == '.') frac = strtod(s + n, NULL);
  t = tdm_utc_seconds(y, mo, d, h, mi, sec);
  return t < 0 ? -1 : t + frac;
}

/* 1..12 for an English month abbreviation, 0 for anything else. */
static int month_number(const char *m) {
  static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int i;
  if (strlen(m) != 3) return 0;
  for (i = 0; i < 12; i++)
    if (strncasecmp(m, names + 3 * i, 3) == 0) return i + 1;
  return 0;
}

/* An HTTP date (RFC 9110 5.6.7) in any of its three forms: IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37
 * GMT" and asctime "Sun Nov  6 08:49:37 1994"; -1 when it is none or a
 * field is out of range. */
static double http_date(const char *s) {
  char mon[4];
  int y, d, h, mi, sec;
  if (sscanf(s, "%*[A-Za-z], %2d %3s %4d %2d:%2d:%2d", &d, mon, &y, &h,
             &mi, &sec) == 6)
    return tdm_utc_seconds(y, month_number(mon), d, h, mi, sec);
  if (sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d", &d, mon, &y,
             &h, &mi, &sec) == 6)
    return tdm_utc_seconds(y + (y < 70 ? 2000 : 1900), month_number(mon), d,
                           h, mi, sec);
  if (sscanf(s, "%*[A-Za-z] %3s %2d %2d:%2d:%2d %4d", mon, &d, &h, &mi, &sec,
             &y) == 6)
    return tdm_utc_seconds(y, month_number(mon), d, h, mi, sec);
  return -1;
}

double tdm_parse_time(const char *s) {
  double t = tdm_parse_utc(s);
  if (t < 0 && s) t = http_date(s);
  return t < 0 ? 0 : t;
}
