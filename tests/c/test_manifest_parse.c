/* test_manifest_parse.c -- the fast manifest parser against jansson.
 *
 * Property: whenever tdm_manifest_fast_parse returns a document, jansson
 * (json_loadb with the manifest loader's flags) accepts the same text and
 * builds an equal document (same types, values and key order). Checked on
 * a table of tricky texts (each also says whether the fast path must take
 * it or give up), on random documents in json.dumps(indent=2) form (the
 * fast path must take all of them), and on truncated and byte-flipped
 * copies of those (whatever the fast path takes, jansson must agree). */
#include <stdlib.h>

#include "t.h"
#include "../../src/tdm_manifest_int.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* The document as compact text, keys in order (malloc'd). */
static char *dump(const json_t *v) {
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Fast and jansson agree on text[0..len): 1 when the fast path took it,
 * 0 when it gave up; a disagreement is a failed check. */
static int agree(const char *text, size_t len, const char *what) {
  json_error_t je;
  json_t *fast = tdm_manifest_fast_parse(text, len);
  json_t *slow;
  char *a, *b;
  int same;
  if (!fast) return 0;
  slow = json_loadb(text, len, FLAGS, &je);
  if (!slow) {
    T_CHECK(0, "%s: fast parse took a text jansson refuses (%s): %.200s",
            what, je.text, text);
    json_decref(fast);
    return 1;
  }
  a = dump(fast);
  b = dump(slow);
  same = json_equal(fast, slow) && a && b && strcmp(a, b) == 0;
  T_CHECK(same, "%s: expected jansson's %.300s, got %.300s", what,
          b ? b : "?", a ? a : "?");
  free(a);
  free(b);
  json_decref(fast);
  json_decref(slow);
  return 1;
}

typedef struct tcase { const char *text; int fast; } tcase;

static const tcase cases[] = {
  {"{}", 1},
  {" \n\t\r{ } \n", 1},
  {"{\"a\": [1, -0, 0, 12345678901234567, -5, 1.5, -0.0, 1e300, 2E-5, "
   "1.5e+3, 4.9e-324, 1729176000.0, true, false, null, [], {}]}", 1},
  {"{\"s\": \"plain\", \"e\": \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}", 1},
  {"{\"u\": \"\\u00e9\\u4e2d\\ud83d\\ude00\\u0041\"}", 1},
  {"{\"nul\": \"a\\u0000b\"}", 1},
  {"{\"\\u00e9\": 1, \"\": 2}", 1},
  {"{\"nested\": {\"a\": {\"b\": [[{\"c\": []}]]}}}", 1},
  /* given up, jansson decides */
  {"[1, 2]", 0},
  {"\"str\"", 0},
  {"{\"a\": 1, \"a\": 2}", 0},
  {"{\"\\u0000\": 1}", 0},
  {"{\"a\": \"\\ud800\"}", 0},
  {"{\"a\": \"\\udc00\"}", 0},
  {"{\"a\": \"\\ud800\\u0041\"}", 0},
  {"{\"a\": \"\xc3\xa9\"}", 0},
  {"{\"a\": \"tab\there\"}", 0},
  {"{\"a\": 01}", 0},
  {"{\"a\": 1.}", 0},
  {"{\"a\": .5}", 0},
  {"{\"a\": 1e}", 0},
  {"{\"a\": -}", 0},
  {"{\"a\": +1}", 0},
  {"{\"a\": 1234567890123456789}", 0},
  {"{\"a\": 1e999}", 0},
  {"{\"a\": NaN}", 0},
  {"{\"a\": tru}", 0},
  {"{\"a\": 1,}", 0},
  {"{\"a\": [1,]}", 0},
  {"{\"a\" 1}", 0},
  {"{\"a\": 1} x", 0},
  {"{\"a\": 1}{}", 0},
  {"{\"a\": \"\\x\"}", 0},
  {"{\"a\": \"\\u12g4\"}", 0},
  {"{\"a\": \"unterminated}", 0},
  {"{\"a\": [", 0},
  {"", 0},
  {"\xef\xbb\xbf{}", 0},
};

static void test_table(void) {
  size_t i;
  char what[64];
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int took;
    snprintf(what, sizeof what, "case %zu", i);
    took = agree(cases[i].text, strlen(cases[i].text), what);
    T_CHECK(took == cases[i].fast, "%s (%.60s): expected the fast path "
            "to %s, it %s", what, cases[i].text,
            cases[i].fast ? "take it" : "give up",
            took ? "took it" : "gave up");
  }
  /* deep nesting goes to jansson */
  {
    char deep[200];
    size_t k, n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"a\": ", 5);
    n += 5;
    for (k = 0; k < 60; k++) deep[n++] = '[';
    for (k = 0; k < 60; k++) deep[n++] = ']';
    deep[n++] = '}';
    T_EQ_INT(agree(deep, n, "deep"), 0, "fast path on 61 levels");
  }
}

/* ---- random documents in json.dumps(indent=2) form --------------------- */

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

/* A random string value (random escapes and non-ASCII code points). */
static json_t *rand_string(void) {
  char s[64];
  size_t n = 0, len = rnd(12), k;
  for (k = 0; k < len && n + 4 < sizeof s; k++) {
    unsigned r = rnd(10);
    if (r < 6) s[n++] = (char)(' ' + rnd(95));
    else if (r == 6) s[n++] = (char)rnd(32);          /* control: \uXXXX */
    else if (r == 7) { s[n++] = '\xc3'; s[n++] = '\xa9'; }       /* é */
    else if (r == 8) { s[n++] = '\xe4'; s[n++] = '\xb8'; s[n++] = '\xad'; }
    else { s[n++] = '\xf0'; s[n++] = '\x9f'; s[n++] = '\x98';
           s[n++] = '\x80'; }                                    /* 😀 */
  }
  return json_stringn(s, n);
}

static json_t *rand_value(int depth) {
  unsigned r = rnd(depth > 3 ? 6 : 8);
  switch (r) {
  case 0: return rand_string();
  case 1: return json_integer((json_int_t)rnd(2000000000) - 1000000000);
  case 2: return json_real((double)rnd(1000000) / (double)(1 + rnd(999)));
  case 3: return json_real((double)rnd(100000) * 1e-300 * (rnd(2) ? 1 : -1));
  case 4: return rnd(3) == 0 ? json_null() : json_boolean(rnd(2));
  case 5: return json_real(1729176000.0 + (double)rnd(1000000) / 1e6);
  case 6: {
    json_t *a = json_array();
    unsigned k, n = rnd(5);
    for (k = 0; k < n; k++) json_array_append_new(a, rand_value(depth + 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    unsigned k, n = rnd(6);
    for (k = 0; k < n; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%u_%u", k, rnd(100));
      json_object_set_new(o, key, rand_value(depth + 1));
    }
    return o;
  }
  }
}

static void test_random(void) {
  int i, took_all = 1, mutated_taken = 0;
  for (i = 0; i < 300; i++) {
    json_t *doc = json_object();
    tdm_buf b;
    tdm_error err;
    char what[64];
    int k;
    json_object_set_new(doc, "character_id", json_string("0042"));
    for (k = 0; k < 4; k++) {
      char key[16];
      snprintf(key, sizeof key, "f%d", k);
      json_object_set_new(doc, key, rand_value(1));
    }
    tdm_buf_init(&b, 1u << 20);
    if (tdm_json_write(doc, &b, &err) != TDM_OK) {
      T_CHECK(0, "write random document %d: %s", i, err.message);
      json_decref(doc);
      tdm_buf_free(&b);
      continue;
    }
    snprintf(what, sizeof what, "random %d", i);
    if (!agree(b.data, b.len, what)) {
      took_all = 0;
      T_CHECK(0, "random %d: the fast path gave up on %.300s", i, b.data);
    }
    /* truncated and byte-flipped copies */
    for (k = 0; k < 20; k++) {
      char *c = malloc(b.len + 1);
      size_t len = b.len;
      memcpy(c, b.data, b.len);
      if (k < 5) len = rnd((unsigned)b.len);
      else c[rnd((unsigned)b.len)] = (char)rnd(256);
      snprintf(what, sizeof what, "random %d mutation %d", i, k);
      mutated_taken += agree(c, len, what);
      free(c);
    }
    tdm_buf_free(&b);
    json_decref(doc);
  }
  T_CHECK(took_all, "the fast path took every random document");
  T_CHECK(mutated_taken > 0, "some mutated documents still parse (%d)",
          mutated_taken);
}

int main(void) {
  test_table();
  test_random();
  T_DONE();
}
