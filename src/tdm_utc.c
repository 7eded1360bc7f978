/* tdm_utc.c -- broken-down UTC times to epoch seconds (see
 * include/tdm/utc.h). */
#include <math.h>
#include <string.h>
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
