/* tdm_manifest_parse.c -- a fast path for parsing manifests into jansson
 * values.
 *
 * jansson's decoder reads one character at a time through a callback and
 * grows a buffer per character: about 150 instructions per byte, three
 * quarters of a warm scan (open, scan, nothing changed) of 100 actors.
 * Manifests are what Python's json.dumps(indent=2) writes: ASCII only,
 * few escapes, short numbers. This parser builds the same jansson values
 * for that subset, about ten times faster, and gives up (returns NULL) on
 * anything else: non-ASCII bytes, control characters, lone surrogates,
 * NUL in a key, long or malformed numbers, duplicate keys, deep nesting,
 * trailing bytes, a root that is not an object, or any syntax error. The
 * caller then runs json_loadb, which either accepts the text (the same
 * values) or produces the error message with line and column. So this file
 * decides nothing about validity: it only answers early for the texts that
 * jansson would accept with the flags JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL, with equal values (tests/c/test_manifest_parse.c
 * compares both on tricky inputs and on random documents).
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_manifest_int.h"

/* Deeper than any manifest; deeper texts go to jansson. */
#define FAST_MAX_DEPTH 32
/* Longest number token handled here (Python's repr of a double is at
 * most 24 characters). */
#define FAST_NUM_MAX 40

typedef struct fparser {
  const char *s;
  size_t n, i;
  char *tmp;          /* decoded strings (owned, grown as needed) */
  size_t tmpcap;
} fparser;

static void fp_ws(fparser *p) {
  while (p->i < p->n) {
    char c = p->s[p->i];
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r') break;
    p->i++;
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p->s[at] -> 0..0xFFFF, or -1. */
static long hex4(const fparser *p, size_t at) {
  long v = 0;
  size_t k;
  if (at + 4 > p->n) return -1;
  for (k = 0; k < 4; k++) {
    int h = hexval(p->s[at + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

static int tmp_reserve(fparser *p, size_t need) {
  char *q;
  size_t cap;
  if (need <= p->tmpcap) return 0;
  cap = p->tmpcap ? p->tmpcap : 256;
  while (cap < need) cap *= 2;
  q = realloc(p->tmp, cap);
  if (!q) return -1;
  p->tmp = q;
  p->tmpcap = cap;
  return 0;
}

/* Bytes that end the plain run of a string: '"' (0x22), '\\' (0x5c),
 * control characters and non-ASCII. */
static const unsigned char stop[256] = {
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

/* The string at p->i (a '"'): on success *out, *outlen is its decoded
 * UTF-8 (pointing into the text when it has no escape, else into p->tmp,
 * valid until the next string) and *has_nul says whether it holds U+0000.
 * -1 gives up. */
static int fp_string(fparser *p, const char **out, size_t *outlen,
                     int *has_nul) {
  size_t start, len = 0;
  *has_nul = 0;
  p->i++;  /* '"' */
  start = p->i;
  /* the common case: no escape; ordinary bytes skipped by table */
  while (p->i < p->n && !stop[(unsigned char)p->s[p->i]]) p->i++;
  while (p->i < p->n) {
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') {
      *out = p->s + start;
      *outlen = p->i - start;
      p->i++;
      return 0;
    }
    if (c == '\\') break;
    if (c < 0x20 || c >= 0x80) return -1;
    p->i++;
  }
  if (p->i >= p->n) return -1;
  /* escapes: decode into tmp (an escape writes at most 4 bytes) */
  len = p->i - start;
  if (tmp_reserve(p, len + 8) != 0) return -1;
  memcpy(p->tmp, p->s + start, len);
  while (p->i < p->n) {
    unsigned char c = (unsigned char)p->s[p->i];
    long u;
    if (tmp_reserve(p, len + 8) != 0) return -1;
    if (c == '"') {
      p->i++;
      *out = p->tmp;
      *outlen = len;
      return 0;
    }
    if (c < 0x20 || c >= 0x80) return -1;
    if (c != '\\') {
      p->tmp[len++] = (char)c;
      p->i++;
      continue;
    }
    if (p->i + 1 >= p->n) return -1;
    c = (unsigned char)p->s[p->i + 1];
    p->i += 2;
    switch (c) {
    case '"': case '\\': case '/': p->tmp[len++] = (char)c; continue;
    case 'b': p->tmp[len++] = '\b'; continue;
    case 'f': p->tmp[len++] = '\f'; continue;
    case 'n': p->tmp[len++] = '\n'; continue;
    case 'r': p->tmp[len++] = '\r'; continue;
    case 't': p->tmp[len++] = '\t'; continue;
    case 'u': break;
    default: return -1;
    }
    u = hex4(p, p->i);
    if (u < 0) return -1;
    p->i += 4;
    if (u >= 0xDC00 && u <= 0xDFFF) return -1;  /* lone low surrogate */
    if (u >= 0xD800 && u <= 0xDBFF) {
      long lo;
      if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
        return -1;
      lo = hex4(p, p->i + 2);
      if (lo < 0xDC00 || lo > 0xDFFF) return -1;
      p->i += 6;
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (u == 0) *has_nul = 1;
    if (u < 0x80) {
      p->tmp[len++] = (char)u;
    } else if (u < 0x800) {
      p->tmp[len++] = (char)(0xC0 | (u >> 6));
      p->tmp[len++] = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      p->tmp[len++] = (char)(0xE0 | (u >> 12));
      p->tmp[len++] = (char)(0x80 | ((u >> 6) & 0x3F));
      p->tmp[len++] = (char)(0x80 | (u & 0x3F));
    } else {
      p->tmp[len++] = (char)(0xF0 | (u >> 18));
      p->tmp[len++] = (char)(0x80 | ((u >> 12) & 0x3F));
      p->tmp[len++] = (char)(0x80 | ((u >> 6) & 0x3F));
      p->tmp[len++] = (char)(0x80 | (u & 0x3F));
    }
  }
  return -1;
}

/* A number token as jansson's lexer takes it: integers (no fraction, no
 * exponent) of at most 18 digits become json_integer, the rest json_real
 * through strtod (when the locale's decimal point is '.'). NULL gives
 * up. */
static json_t *fp_number(fparser *p) {
  size_t start = p->i, digits = 0;
  int is_real = 0, neg = 0;
  char buf[FAST_NUM_MAX + 1];
  if (p->s[p->i] == '-') {
    neg = 1;
    p->i++;
  }
  if (p->i >= p->n) return NULL;
  if (p->s[p->i] == '0') {
    p->i++;
    digits = 1;
    if (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') return NULL;
  } else {
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      p->i++;
      digits++;
    }
    if (digits == 0) return NULL;
  }
  if (p->i < p->n && p->s[p->i] == '.') {
    size_t f = 0;
    is_real = 1;
    p->i++;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      p->i++;
      f++;
    }
    if (f == 0) return NULL;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    size_t e = 0;
    is_real = 1;
    p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      p->i++;
      e++;
    }
    if (e == 0) return NULL;
  }
  if (!is_real) {
    json_int_t v = 0;
    size_t k;
    if (digits > 18) return NULL;
    for (k = start + (size_t)neg; k < p->i; k++)
      v = v * 10 + (p->s[k] - '0');
    return json_integer(neg ? -v : v);
  }
  if (p->i - start > FAST_NUM_MAX) return NULL;
  {
    const struct lconv *lc = localeconv();
    double d;
    char *end;
    if (!lc || !lc->decimal_point || strcmp(lc->decimal_point, ".") != 0)
      return NULL;
    memcpy(buf, p->s + start, p->i - start);
    buf[p->i - start] = '\0';
    d = strtod(buf, &end);
    if (*end != '\0' || !isfinite(d)) return NULL;
    return json_real(d);
  }
}

static json_t *fp_value(fparser *p, int depth);

static json_t *fp_object(fparser *p, int depth) {
  json_t *obj = json_object();
  if (!obj) return NULL;
  p->i++;  /* '{' */
  fp_ws(p);
  if (p->i < p->n && p->s[p->i] == '}') {
    p->i++;
    return obj;
  }
  for (;;) {
    const char *key;
    size_t klen;
    int nul;
    json_t *v;
    char *kcopy;
    if (p->i >= p->n || p->s[p->i] != '"' ||
        fp_string(p, &key, &klen, &nul) != 0 || nul)
      goto fail;
    /* key may point into tmp, which the value's strings reuse */
    if (key != p->s + (p->i - klen - 1)) {
      kcopy = malloc(klen + 1);
      if (!kcopy) goto fail;
      memcpy(kcopy, key, klen);
      kcopy[klen] = '\0';
    } else {
      kcopy = NULL;
    }
    if (json_object_getn(obj, kcopy ? kcopy : key, klen) != NULL) {
      free(kcopy);
      goto fail;  /* duplicate: jansson words the error */
    }
    fp_ws(p);
    if (p->i >= p->n || p->s[p->i] != ':') {
      free(kcopy);
      goto fail;
    }
    p->i++;
    fp_ws(p);
    v = fp_value(p, depth + 1);
    if (!v || json_object_setn_new_nocheck(obj, kcopy ? kcopy : key, klen,
                                           v) != 0) {
      free(kcopy);
      goto fail;
    }
    free(kcopy);
    fp_ws(p);
    if (p->i >= p->n) goto fail;
    if (p->s[p->i] == '}') {
      p->i++;
      return obj;
    }
    if (p->s[p->i] != ',') goto fail;
    p->i++;
    fp_ws(p);
  }
fail:
  json_decref(obj);
  return NULL;
}

static json_t *fp_array(fparser *p, int depth) {
  json_t *arr = json_array();
  if (!arr) return NULL;
  p->i++;  /* '[' */
  fp_ws(p);
  if (p->i < p->n && p->s[p->i] == ']') {
    p->i++;
    return arr;
  }
  for (;;) {
    json_t *v = fp_value(p, depth + 1);
    if (!v || json_array_append_new(arr, v) != 0) goto fail;
    fp_ws(p);
    if (p->i >= p->n) goto fail;
    if (p->s[p->i] == ']') {
      p->i++;
      return arr;
    }
    if (p->s[p->i] != ',') goto fail;
    p->i++;
    fp_ws(p);
  }
fail:
  json_decref(arr);
  return NULL;
}

static int fp_word(fparser *p, const char *w, size_t wlen) {
  if (p->n - p->i < wlen || memcmp(p->s + p->i, w, wlen) != 0) return -1;
  p->i += wlen;
  return 0;
}

/* The value at p->i (whitespace skipped) -> new reference, or NULL. */
static json_t *fp_value(fparser *p, int depth) {
  if (p->i >= p->n || depth > FAST_MAX_DEPTH) return NULL;
  switch (p->s[p->i]) {
  case '{': return fp_object(p, depth);
  case '[': return fp_array(p, depth);
  case '"': {
    const char *s;
    size_t len;
    int nul;
    if (fp_string(p, &s, &len, &nul) != 0) return NULL;
    return json_stringn_nocheck(s, len);
  }
  case 't': return fp_word(p, "true", 4) == 0 ? json_true() : NULL;
  case 'f': return fp_word(p, "false", 5) == 0 ? json_false() : NULL;
  case 'n': return fp_word(p, "null", 4) == 0 ? json_null() : NULL;
  default:
    if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9'))
      return fp_number(p);
    return NULL;
  }
}

json_t *tdm_manifest_fast_parse(const char *text, size_t len) {
  fparser p;
  json_t *root;
  memset(&p, 0, sizeof p);
  p.s = text;
  p.n = len;
  fp_ws(&p);
  if (p.i >= p.n || text[p.i] != '{') return NULL;
  root = fp_object(&p, 1);
  free(p.tmp);
  if (!root) return NULL;
  fp_ws(&p);
  if (p.i != p.n) {
    json_decref(root);
    return NULL;
  }
  return root;
}
