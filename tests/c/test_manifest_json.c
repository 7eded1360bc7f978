/* test_manifest_json.c -- the JSON writer against python3's json module,
 * both directions:
 *   python -> tdm: random manifests and free-form documents written by
 *     json.dumps(indent=2) are read and re-written byte for byte, and an
 *     unchanged manifest opened and saved is not written at all;
 *   tdm -> python: random documents written by tdm are read by python and
 *     re-dumped to the same bytes.
 * Plus fixed float repr cases. Needs python3 and tests/oracle/. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "t.h"
#include "tdm.h"

#define N_DOCS 300

static char tmp[256];

/* The python oracle: $PYTHON, else /usr/bin/python3 (a pyenv shim on PATH
 * costs seconds per start on a loaded machine), else python3. */
static const char *python(void) {
  const char *p = getenv("PYTHON");
  if (p && *p) return p;
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                               : "python3";
}

static void test_float_repr(void) {
  static const struct { double d; const char *want; } cases[] = {
    {0.1, "0.1"}, {1e-05, "1e-05"}, {1e+16, "1e+16"},
    {123456789.0, "123456789.0"}, {1729176000.0, "1729176000.0"},
    {0.0, "0.0"}, {-0.0, "-0.0"}, {1.5e-05, "1.5e-05"},
    {1e15, "1000000000000000.0"}, {0.0001, "0.0001"}, {0.31, "0.31"},
    {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
    {2.0 / 3.0, "0.6666666666666666"}, {-2.5, "-2.5"}, {1e22, "1e+22"},
    {9999999999999998.0, "9999999999999998.0"}, {100.0, "100.0"},
    {1729176000.123456, "1729176000.123456"},
  };
  size_t i;
  char out[64];
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    T_CHECK(tdm_float_repr(cases[i].d, out, sizeof out) == TDM_OK,
            "repr %s: expected OK", cases[i].want);
    T_EQ_STR(out, cases[i].want, "float repr");
  }
  T_CHECK(tdm_float_repr(NAN, out, sizeof out) == TDM_ERR,
          "repr NaN: expected refusal");
  T_CHECK(tdm_float_repr(INFINITY, out, sizeof out) == TDM_ERR,
          "repr inf: expected refusal");
  {
    json_t *v = json_pack("{s:f}", "x", 1.0);
    tdm_buf b;
    tdm_error err;
    tdm_buf_init(&b, 1 << 20);
    json_object_set_new(v, "bad", json_real(1.0));
    /* jansson refuses NaN itself, so force one through a real */
    json_real_set(json_object_get(v, "bad"), 0.0);
    T_CHECK(tdm_json_write(v, &b, &err) == TDM_OK, "write plain doc");
    T_EQ_STR(b.data, "{\n  \"x\": 1.0,\n  \"bad\": 0.0\n}", "small doc");
    tdm_buf_free(&b);
    json_decref(v);
  }
}

/* Python writes, tdm re-writes: bytes equal. */
static void test_python_to_tdm(void) {
  char cmd[1024], path[512];
  int i, same_m = 0, same_j = 0, quiet_saves = 0;
  tdm_error err;
  snprintf(cmd, sizeof cmd, "%s tests/oracle/gen_manifests.py %s %d 7",
           python(), tmp, N_DOCS);
  T_EQ_INT(system(cmd), 0, "gen_manifests.py exit status");
  for (i = 0; i < N_DOCS; i++) {
    size_t len;
    char *text;
    void *root = NULL;
    json_t *doc;
    json_error_t je;
    tdm_buf b;
    tdm_buf_init(&b, 64u << 20);
    snprintf(path, sizeof path, "%s/m_%04d.json", tmp, i);
    text = t_slurp(path, &len);
    if (tdm_manifest_read_file(path, NULL, &root, &err) != TDM_OK) {
      T_CHECK(0, "%s: expected to load, got %s", path, err.message);
    } else if (tdm_json_write(root, &b, &err) != TDM_OK) {
      T_CHECK(0, "%s: expected to write, got %s", path, err.message);
    } else if (b.len == len && memcmp(b.data, text, len) == 0) {
      same_m++;
    } else {
      T_CHECK(0, "%s: expected identical bytes after load+write", path);
    }
    json_decref(root);
    /* open through the model (lock, facts, stale check), save: no write */
    if (root) {
      char droot[512], mdir[600], mpath[700], name[300];
      struct stat st1, st2;
      tdm_manifest *m;
      tdm_manifest_opts o = {0};
      json_t *parsed = json_loadb(text, len, JSON_ALLOW_NUL, &je);
      int written = -1;
      snprintf(name, sizeof name, "%s",
               json_string_value(json_object_get(parsed, "character_name")));
      snprintf(droot, sizeof droot, "%s/d%d", tmp, i);
      snprintf(mdir, sizeof mdir, "%s/actor_manifests", droot);
      tdm_mkdirs(mdir, &err);
      snprintf(mpath, sizeof mpath, "%s/%s_manifest.json", mdir,
               json_string_value(json_object_get(parsed, "character_id")));
      json_decref(parsed);
      rename(path, mpath);
      stat(mpath, &st1);
      o.data_root = droot;
      o.public_url_base = "https://story-boards-assets.s3.us-west-1."
                          "amazonaws.com";
      o.prefix = "system_actors/training_data";
      if (tdm_manifest_open(&m, name, &o, &err) != TDM_OK) {
        T_CHECK(0, "%s: expected to open, got %s", mpath, err.message);
      } else {
        T_CHECK(!tdm_manifest_dirty(m), "%s: expected clean after open",
                mpath);
        if (tdm_manifest_save(m, &written, &err) == TDM_OK && !written) {
          stat(mpath, &st2);
          if (st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
              st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec &&
              st1.st_ino == st2.st_ino)
            quiet_saves++;
        }
        tdm_manifest_close(m);
      }
    }
    free(text);
    tdm_buf_reset(&b);

    snprintf(path, sizeof path, "%s/j_%04d.json", tmp, i);
    text = t_slurp(path, &len);
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
                     JSON_DECODE_ANY, &je);
    if (!doc) {
      T_CHECK(0, "%s: jansson: %s", path, je.text);
    } else if (tdm_json_write(doc, &b, &err) == TDM_OK && b.len == len &&
               memcmp(b.data, text, len) == 0) {
      same_j++;
    } else {
      T_CHECK(0, "%s: expected identical bytes, got:\n%s", path,
              b.data ? b.data : err.message);
    }
    json_decref(doc);
    free(text);
    tdm_buf_free(&b);
  }
  T_EQ_INT(same_m, N_DOCS, "python manifests re-written identically");
  T_EQ_INT(quiet_saves, N_DOCS, "unchanged open+save left the file alone");
  T_EQ_INT(same_j, N_DOCS, "python documents re-written identically");
}

/* ---- tdm writes random documents; python reads and re-dumps ---------- */

static unsigned long long rng = 88172645463325252ULL;
static unsigned long long rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void utf8_put(char *s, size_t *n, unsigned long c) {
  if (c < 0x80) s[(*n)++] = (char)c;
  else if (c < 0x800) {
    s[(*n)++] = (char)(0xc0 | (c >> 6));
    s[(*n)++] = (char)(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    s[(*n)++] = (char)(0xe0 | (c >> 12));
    s[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
    s[(*n)++] = (char)(0x80 | (c & 0x3f));
  } else {
    s[(*n)++] = (char)(0xf0 | (c >> 18));
    s[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3f));
    s[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
    s[(*n)++] = (char)(0x80 | (c & 0x3f));
  }
}

static json_t *rand_string(void) {
  char s[128];
  size_t n = 0, k = rnd() % 12;
  while (k--) {
    unsigned long c;
    switch (rnd() % 5) {
      case 0: c = rnd() % 0x80; break;
      case 1: c = 0x20 + rnd() % 0x5f; break;
      case 2: c = 0x80 + rnd() % 0x780; break;
      case 3: c = 0x800 + rnd() % 0xf800; break;
      default: c = 0x10000 + rnd() % 0x100000; break;
    }
    if (c >= 0xd800 && c < 0xe000) c = 'x';
    utf8_put(s, &n, c);
  }
  return json_stringn(s, n);
}

static double rand_double(void) {
  for (;;) {
    unsigned long long bits = rnd();
    double d;
    switch (rnd() % 4) {
      case 0: memcpy(&d, &bits, sizeof d); break;
      case 1: d = (double)(bits % 100000000) / 1000.0; break;
      case 2: d = (double)(bits % 1000) * pow(10, (double)(rnd() % 40) - 20);
        break;
      default: d = (double)(bits % 3000000000ULL) +
                   (double)(rnd() % 1000000) / 1e6; break;
    }
    if (isfinite(d)) return d;
  }
}

static json_t *rand_value(int depth) {
  int k = (int)(rnd() % (depth < 3 ? 8 : 5));
  size_t i, n;
  json_t *v;
  switch (k) {
    case 0: return rand_string();
    case 1: return json_integer((json_int_t)rnd());
    case 2: return json_real(rand_double());
    case 3: return rnd() % 3 == 0 ? json_null() : json_boolean(rnd() % 2);
    case 4: return json_integer((json_int_t)(rnd() % 2000) - 1000);
    case 5:
      v = json_array();
      n = rnd() % 4;
      for (i = 0; i < n; i++) json_array_append_new(v, rand_value(depth + 1));
      return v;
    default:
      v = json_object();
      n = rnd() % 4;
      for (i = 0; i < n; i++) {
        json_t *key = rand_string();
        json_object_setn_new(v, json_string_value(key),
                             json_string_length(key), rand_value(depth + 1));
        json_decref(key);
      }
      return v;
  }
}

static void test_tdm_to_python(void) {
  char path[512], line[1024];
  tdm_buf cmd;
  tdm_error err;
  int i, ok = -1, bad = -1;
  FILE *p;
  tdm_buf_init(&cmd, 1 << 20);
  tdm_buf_printf(&cmd, &err, "%s tests/oracle/redump.py", python());
  for (i = 0; i < N_DOCS; i++) {
    json_t *v = i % 3 ? rand_value(0) : json_object();
    tdm_buf b;
    if (i % 3 == 0)
      json_object_set_new(v, "k", rand_value(1));
    tdm_buf_init(&b, 1 << 20);
    snprintf(path, sizeof path, "%s/t_%04d.json", tmp, i);
    if (tdm_json_write(v, &b, &err) != TDM_OK) {
      T_CHECK(0, "write %s: %s", path, err.message);
    } else {
      FILE *f = fopen(path, "wb");
      T_CHECK(f && fwrite(b.data, 1, b.len, f) == b.len, "write %s", path);
      if (f) fclose(f);
    }
    tdm_buf_printf(&cmd, &err, " %s", path);
    tdm_buf_free(&b);
    json_decref(v);
  }
  p = popen(cmd.data, "r");
  while (p && fgets(line, sizeof line, p)) {
    if (sscanf(line, "%d ok, %d bad", &ok, &bad) != 2)
      T_CHECK(0, "python: %s", line);
  }
  if (p) pclose(p);
  T_EQ_INT(ok, N_DOCS, "documents python re-dumps identically");
  T_EQ_INT(bad, 0, "documents python disagrees with");
  tdm_buf_free(&cmd);
}

int main(void) {
  char cmd[300];
  snprintf(tmp, sizeof tmp, "%s/tdm-json-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  test_float_repr();
  test_python_to_tdm();
  test_tdm_to_python();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) T_CHECK(0, "cleanup of %s", tmp);
  T_DONE();
}
