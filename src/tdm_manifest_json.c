/* tdm_manifest_json.c -- a JSON writer byte-compatible with Python's
 * json.dumps(obj, indent=2): ensure_ascii escapes, ", "-less item
 * separators with newline + indent, ": " key separator, "[]"/"{}" for
 * empty containers, floats as repr(). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tdm.h"

/* Python's repr() of a finite double: the shortest digit string that
 * reads back as `d` (found by trying %.{p}e for p = 1..17), laid out as
 * fixed notation when the decimal exponent is in [-4, 16), else as
 * d[.ddd]e[+-]XX. */
int tdm_float_repr(double d, char *out, size_t outsz) {
  char tmp[64], digits[32];
  int p, exp10 = 0, nd = 0, neg, i, n = 0;
  char *e;
  if (!isfinite(d) || outsz < 32) return TDM_ERR;
  if (d == 0) {
    snprintf(out, outsz, "%s", signbit(d) ? "-0.0" : "0.0");
    return TDM_OK;
  }
  for (p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    if (strtod(tmp, NULL) == d) break;
  }
  neg = tmp[0] == '-';
  for (i = neg; tmp[i] && tmp[i] != 'e'; i++)
    if (tmp[i] >= '0' && tmp[i] <= '9') digits[nd++] = tmp[i];
  digits[nd] = '\0';
  e = strchr(tmp, 'e');
  if (e) exp10 = atoi(e + 1);
  while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = '\0';
#define PUT(c) do { if ((size_t)n + 1 < outsz) out[n++] = (c); } while (0)
  if (neg) PUT('-');
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 >= 0) {
      for (i = 0; i <= exp10; i++) PUT(i < nd ? digits[i] : '0');
      PUT('.');
      if (nd > exp10 + 1)
        for (i = exp10 + 1; i < nd; i++) PUT(digits[i]);
      else
        PUT('0');
    } else {
      PUT('0');
      PUT('.');
      for (i = 0; i < -exp10 - 1; i++) PUT('0');
      for (i = 0; i < nd; i++) PUT(digits[i]);
    }
    out[n] = '\0';
  } else {
    PUT(digits[0]);
    if (nd > 1) {
      PUT('.');
      for (i = 1; i < nd; i++) PUT(digits[i]);
    }
    out[n] = '\0';
    snprintf(out + n, outsz - (size_t)n, "e%c%02d", exp10 < 0 ? '-' : '+',
             exp10 < 0 ? -exp10 : exp10);
  }
#undef PUT
  return TDM_OK;
}

/* Decode one UTF-8 sequence at s[*i] (jansson strings are valid UTF-8);
 * advances *i. */
static unsigned long utf8_next(const unsigned char *s, size_t len,
                               size_t *i) {
  unsigned long c = s[*i];
  int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
  (*i)++;
  if (extra) c &= (unsigned long)(0x3f >> extra);
  while (extra-- > 0 && *i < len) c = (c << 6) | (s[(*i)++] & 0x3f);
  return c;
}

/* Append `s` as a JSON string literal with Python's ensure_ascii escapes:
 * \" \\ \n \r \t \b \f, other bytes outside ' '..'~' as \u00xx, non-BMP
 * characters as surrogate pairs; hex in lower case. */
static int write_string(const char *str, size_t len, tdm_buf *out,
                        tdm_error *err) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run;
  if (tdm_buf_appendc(out, '"', err) != TDM_OK) return TDM_ERR;
  while (i < len) {
    unsigned long c;
    const char *esc = NULL;
    for (run = i; run < len && s[run] >= 0x20 && s[run] < 0x7f &&
         s[run] != '"' && s[run] != '\\'; run++) {}
    if (run > i) {
      if (tdm_buf_append(out, s + i, run - i, err) != TDM_OK) return TDM_ERR;
      i = run;
      continue;
    }
    switch (s[i]) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      default: break;
    }
    if (esc) {
      i++;
      if (tdm_buf_appends(out, esc, err) != TDM_OK) return TDM_ERR;
      continue;
    }
    c = utf8_next(s, len, &i);
    if (c >= 0x10000) {
      unsigned long v = c - 0x10000;
      if (tdm_buf_printf(out, err, "\\u%04lx\\u%04lx", 0xd800 | (v >> 10),
                         0xdc00 | (v & 0x3ff)) != TDM_OK)
        return TDM_ERR;
    } else if (tdm_buf_printf(out, err, "\\u%04lx", c) != TDM_OK) {
      return TDM_ERR;
    }
  }
  return tdm_buf_appendc(out, '"', err);
}

/* A newline and `level` indents -- nothing when not indenting (`indent`
 * 0: Python's json.dumps(v) with its default ", " and ": " separators). */
static int write_indent(tdm_buf *out, int level, int indent,
                        tdm_error *err) {
  static const char spaces[] = "                                        ";
  int n = level * 2;
  if (!indent) return TDM_OK;
  if (tdm_buf_appendc(out, '\n', err) != TDM_OK) return TDM_ERR;
  while (n > 0) {
    int k = n > 40 ? 40 : n;
    if (tdm_buf_append(out, spaces, (size_t)k, err) != TDM_OK)
      return TDM_ERR;
    n -= k;
  }
  return TDM_OK;
}

/* Recursive writer; `level` is the nesting depth of `v`. Jansson objects
 * iterate in insertion order (2.14), which is the order the file had. */
static int write_value(const json_t *v, int level, int indent,
                       tdm_buf *out, tdm_error *err) {
  const char *sep = indent ? "," : ", ";
  char num[64];
  if (level > 512) return tdm_error_set(err, "EINVAL", "JSON nested too deep");
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      const char *key;
      size_t klen;
      json_t *val;
      int first = 1;
      if (json_object_size(v) == 0) return tdm_buf_appends(out, "{}", err);
      if (tdm_buf_appendc(out, '{', err) != TDM_OK) return TDM_ERR;
      json_object_keylen_foreach((json_t *)v, key, klen, val) {
        if (!first && tdm_buf_appends(out, sep, err) != TDM_OK)
          return TDM_ERR;
        first = 0;
        if (write_indent(out, level + 1, indent, err) != TDM_OK ||
            write_string(key, klen, out, err) != TDM_OK ||
            tdm_buf_append(out, ": ", 2, err) != TDM_OK ||
            write_value(val, level + 1, indent, out, err) != TDM_OK)
          return TDM_ERR;
      }
      if (write_indent(out, level, indent, err) != TDM_OK) return TDM_ERR;
      return tdm_buf_appendc(out, '}', err);
    }
    case JSON_ARRAY: {
      size_t i, n = json_array_size(v);
      if (n == 0) return tdm_buf_appends(out, "[]", err);
      if (tdm_buf_appendc(out, '[', err) != TDM_OK) return TDM_ERR;
      for (i = 0; i < n; i++) {
        if (i && tdm_buf_appends(out, sep, err) != TDM_OK) return TDM_ERR;
        if (write_indent(out, level + 1, indent, err) != TDM_OK ||
            write_value(json_array_get(v, i), level + 1, indent, out, err)
              != TDM_OK)
          return TDM_ERR;
      }
      if (write_indent(out, level, indent, err) != TDM_OK) return TDM_ERR;
      return tdm_buf_appendc(out, ']', err);
    }
    case JSON_STRING:
      return write_string(json_string_value(v), json_string_length(v), out,
                          err);
    case JSON_INTEGER:
      return tdm_buf_printf(out, err, "%" JSON_INTEGER_FORMAT,
                            json_integer_value(v));
    case JSON_REAL:
      if (tdm_float_repr(json_real_value(v), num, sizeof num) != TDM_OK)
        return tdm_error_set(err, "EINVAL",
                             "JSON cannot hold NaN or Infinity");
      return tdm_buf_appends(out, num, err);
    case JSON_TRUE: return tdm_buf_appends(out, "true", err);
    case JSON_FALSE: return tdm_buf_appends(out, "false", err);
    case JSON_NULL: return tdm_buf_appends(out, "null", err);
  }
  return tdm_error_set(err, "EINVAL", "unknown JSON type");
}

int tdm_json_write(const void *v, tdm_buf *out, tdm_error *err) {
  if (!v) return tdm_error_set(err, "EINVAL", "no JSON value");
  return write_value((const json_t *)v, 0, 1, out, err);
}

int tdm_json_write_compact(const void *v, tdm_buf *out, tdm_error *err) {
  if (!v) return tdm_error_set(err, "EINVAL", "no JSON value");
  return write_value((const json_t *)v, 0, 0, out, err);
}
