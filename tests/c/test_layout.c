/* test_layout.c -- the seed's vocabulary pinned by tables: actor ids and
 * their padding, manifest and file paths, the stored local_path, image
 * names and order, S3 keys and their inverse, public URLs, status and
 * statistics names. */
#include <unistd.h>

#include "t.h"
#include "tdm.h"

/* name -> id, or NULL when the name is refused (code given) */
static const struct { const char *name, *id, *code; } ids[] = {
  {"0042_european_30_male", "0042", NULL},
  {"42_x", "0042", NULL},
  {"042_x", "0042", NULL},
  {"00042_x", "0042", NULL},      /* one id per number: 00042 is 42 */
  {"0000_x", "0000", NULL},
  {"0_x", "0000", NULL},
  {"12345_x", "12345", NULL},
  {"000012345_x", "12345", NULL},
  {"123456789012345678_x", "123456789012345678", NULL},
  {"1234567890123456789_x", NULL, "ENOACTOR"},
  {"0000000000000000000042_x", "0042", NULL},
  {"x_42", NULL, "ENOACTOR"},
  {"42", NULL, "ENOACTOR"},
  {"42_", NULL, "ENOACTOR"},
  {"42x_y", NULL, "ENOACTOR"},
  {"", NULL, "EBADNAME"},
  {"..", NULL, "EBADNAME"},
  {"42_a/b", NULL, "EBADNAME"},
};

static void test_ids(void) {
  size_t i;
  for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    char id[TDM_ACTOR_ID_MAX + 1];
    tdm_error err;
    int rc = tdm_actor_id(ids[i].name, id, sizeof id, &err);
    if (ids[i].id) {
      T_EQ_INT(rc, TDM_OK, ids[i].name);
      if (rc == TDM_OK) T_EQ_STR(id, ids[i].id, ids[i].name);
    } else {
      T_EQ_INT(rc, TDM_ERR, ids[i].name);
      if (rc != TDM_OK) T_EQ_STR(err.code, ids[i].code, ids[i].name);
    }
  }
}

static void test_numbers(void) {
  static const struct { int64_t n; const char *id; } nums[] = {
    {0, "0000"}, {7, "0007"}, {42, "0042"}, {9999, "9999"},
    {10000, "10000"}, {999999999, "999999999"}};
  size_t i;
  char id[TDM_ACTOR_ID_MAX + 1], what[64];
  tdm_error err;
  for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    snprintf(what, sizeof what, "id of %lld", (long long)nums[i].n);
    T_EQ_INT(tdm_layout_id_of_number(nums[i].n, id, sizeof id, &err),
             TDM_OK, what);
    T_EQ_STR(id, nums[i].id, what);
  }
  T_EQ_INT(tdm_layout_id_of_number(-1, id, sizeof id, &err), TDM_ERR,
           "negative number");
  T_EQ_INT(tdm_layout_id_of_digits("4a", 2, id, sizeof id, &err), TDM_ERR,
           "digits with a letter");
  T_EQ_INT(tdm_layout_id_of_digits("", 0, id, sizeof id, &err), TDM_ERR,
           "no digits");
}

static void test_paths(void) {
  char out[1024];
  tdm_error err;
  T_EQ_INT(tdm_layout_manifest_path("data", "0042", out, sizeof out, &err),
           TDM_OK, "manifest path");
  T_EQ_STR(out, "data/actor_manifests/0042_manifest.json", "manifest path");
  T_EQ_INT(tdm_layout_actor_dir("/srv/d", "0042_x", out, sizeof out, &err),
           TDM_OK, "actor dir");
  T_EQ_STR(out, "/srv/d/actors/0042_x/training_data", "actor dir");
  T_EQ_INT(tdm_layout_file_path("/srv/d", "0042_x", "0042_x_1.jpg", out,
                                sizeof out, &err), TDM_OK, "file path");
  T_EQ_STR(out, "/srv/d/actors/0042_x/training_data/0042_x_1.jpg",
           "file path");
  T_EQ_INT(tdm_layout_file_path("d", "0042_x", "../x.jpg", out, sizeof out,
                                &err), TDM_ERR, "file path with a slash");
  T_EQ_INT(tdm_layout_file_path("d", "0042_x", "a.jpg", out, 10, &err),
           TDM_ERR, "file path too long for the buffer");
  T_EQ_STR(err.code, "ENAMETOOLONG", "too long: code");
  {
    char id[TDM_ACTOR_ID_MAX + 1];
    size_t nd = 0;
    T_EQ_INT(tdm_layout_manifest_id("00042_manifest.json", id, sizeof id,
                                    &nd), 1, "manifest id");
    T_EQ_STR(id, "0042", "manifest id of 00042_manifest.json");
    T_EQ_INT(nd, 5, "digits as written");
    T_EQ_INT(tdm_layout_manifest_id(".0042_manifest.state", id, sizeof id,
                                    NULL), 0, "sidecar is no manifest");
    T_EQ_INT(tdm_layout_manifest_id("0042_manifest.json.lock", id,
                                    sizeof id, NULL), 0, "lock file");
    T_EQ_INT(tdm_layout_manifest_id("_manifest.json", id, sizeof id, NULL),
             0, "no digits");
  }
  /* local_path is the seed's relative form whatever the root */
  T_EQ_INT(tdm_layout_local_path("0042_x", "0042_x_1.jpg", out, sizeof out,
                                 &err), TDM_OK, "local_path");
  T_EQ_STR(out, "data/actors/0042_x/training_data/0042_x_1.jpg",
           "local_path");
}

static void test_local_path_file(void) {
  static const struct { const char *lp, *file; } cases[] = {
    {"data/actors/0042_x/training_data/a.jpg", "a.jpg"},
    {"/srv/tdm/data/actors/0042_x/training_data/a.jpg", "a.jpg"},
    {"/srv/tdm/../tdm/data/actors/0042_x/training_data/a.jpg", "a.jpg"},
    {"actors/0042_x/training_data/a.jpg", "a.jpg"},
    {"data/actors/0043_y/training_data/a.jpg", NULL},
    {"data/actors/0042_x/training_data/", NULL},
    {"data/actors/0042_x/training_data/sub/a.jpg", NULL},
    {"data/xactors/0042_x/training_data/a.jpg", NULL},
    {"", NULL},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *got = tdm_layout_local_path_file(cases[i].lp, "0042_x");
    if (cases[i].file) T_EQ_STR(got, cases[i].file, cases[i].lp);
    else T_CHECK(got == NULL, "%s: expected no file, got '%s'",
                 cases[i].lp, got ? got : "");
  }
}

static void test_images(void) {
  static const struct { const char *name; int image; long index; } imgs[] = {
    {"0042_x_0.jpg", 1, 0}, {"0042_x_17.JPEG", 1, 17}, {"a.png", 1, -1},
    {"a_3.webp", 1, 3}, {".0042_x_1.jpg", 0, 1}, {"a.gif", 0, -1},
    {"jpg", 0, -1}, {".jpg", 0, -1}, {"a_.jpg", 1, -1}, {"a_1x.jpg", 1, -1},
    {"response.json", 0, -1}};
  static const char *const order[] = {
    "0042_x_0.jpg", "0042_x_2.jpg", "0042_x_10.jpg", "a_10.png",
    "0042_x.jpg", "b.jpg"};
  size_t i;
  char out[300];
  tdm_error err;
  for (i = 0; i < sizeof imgs / sizeof imgs[0]; i++) {
    T_EQ_INT(tdm_is_image_name(imgs[i].name), imgs[i].image, imgs[i].name);
    T_EQ_INT(tdm_layout_image_index(imgs[i].name), imgs[i].index,
             imgs[i].name);
  }
  for (i = 0; i + 1 < sizeof order / sizeof order[0]; i++) {
    T_CHECK(tdm_layout_entry_cmp(order[i], order[i + 1]) < 0,
            "expected %s before %s", order[i], order[i + 1]);
    T_CHECK(tdm_layout_entry_cmp(order[i + 1], order[i]) > 0,
            "expected %s after %s", order[i + 1], order[i]);
  }
  T_EQ_INT(tdm_layout_image_name("0042_x", 3, "jpg", out, sizeof out, &err),
           TDM_OK, "image name");
  T_EQ_STR(out, "0042_x_3.jpg", "image name");
  T_EQ_INT(tdm_layout_image_name("0042_x", 3, "gif", out, sizeof out, &err),
           TDM_ERR, "image name with a non-image extension");
  T_EQ_INT(tdm_layout_image_name("0042_x", 3, "a/b", out, sizeof out, &err),
           TDM_ERR, "image name with a slash");
  T_EQ_INT(tdm_layout_foreign_file("0043_y_1.jpg", "0042"), 1, "0043 file");
  T_EQ_INT(tdm_layout_foreign_file("42_x_1.jpg", "0042"), 0, "42 file");
  T_EQ_INT(tdm_layout_foreign_file("0042_x_1.jpg", "0042"), 0, "own file");
  T_EQ_INT(tdm_layout_foreign_file("photo_1.jpg", "0042"), 0, "no id");
  T_EQ_INT(tdm_layout_foreign_file("0042.jpg", "0042"), 0, "no id_");
}

static void test_keys(void) {
  static const struct {
    const char *prefix, *key, *actor, *file;
    tdm_key_kind kind;
  } keys[] = {
    {"p/q", "p/q/0042_x/0042_x_1.jpg", "0042_x", "0042_x_1.jpg",
     TDM_KEY_FILE},
    {"/p/q/", "p/q/0042_x/0042_x_1.jpg", "0042_x", "0042_x_1.jpg",
     TDM_KEY_FILE},
    {"", "0042_x/a.png", "0042_x", "a.png", TDM_KEY_FILE},
    {"p/q", "p/q/0042_x/README.txt", "0042_x", "", TDM_KEY_NOT_IMAGE},
    {"p/q", "p/q/README.txt", "", "", TDM_KEY_BAD},
    {"p/q", "p/q/0042_x/sub/a.jpg", "", "", TDM_KEY_BAD},
    {"p/q", "p/q//a.jpg", "", "", TDM_KEY_BAD},
    {"p/q", "p/q/0042_x/", "", "", TDM_KEY_BAD},
    {"p/q", "p/qq/0042_x/a.jpg", "", "", TDM_KEY_BAD},
    {"p/q", "p/q/x_42/a.jpg", "", "", TDM_KEY_BAD},
    {"p/q", "p/q/0042_x/..", "", "", TDM_KEY_BAD},
  };
  size_t i;
  for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char actor[TDM_NAME_MAX + 1], file[TDM_NAME_MAX + 1], why[256];
    tdm_key_kind k = tdm_layout_split_key(keys[i].prefix, keys[i].key,
                                          actor, file, why, sizeof why);
    T_EQ_INT(k, keys[i].kind, keys[i].key);
    T_EQ_STR(actor, keys[i].actor, keys[i].key);
    T_EQ_STR(file, keys[i].file, keys[i].key);
    T_CHECK((k == TDM_KEY_FILE) == (why[0] == '\0'),
            "%s: a reason exactly when refused, got '%s'", keys[i].key, why);
    if (k == TDM_KEY_FILE) {
      /* the inverse: key(prefix, actor, file) gives the key back */
      tdm_buf b;
      tdm_error err;
      tdm_buf_init(&b, 4096);
      T_EQ_INT(tdm_layout_key(keys[i].prefix, actor, file, &b, &err),
               TDM_OK, "key");
      T_EQ_STR(b.data, keys[i].key, "key of the split parts");
      tdm_buf_free(&b);
    }
  }
}

static void test_urls(void) {
  static const struct {
    const char *base, *prefix, *actor, *file, *url;
  } urls[] = {
    {"https://story-boards-assets.s3.us-west-1.amazonaws.com",
     "system_actors/training_data", "0042_european_30_male",
     "0042_european_30_male_0.jpg",
     "https://story-boards-assets.s3.us-west-1.amazonaws.com/system_actors/"
     "training_data/0042_european_30_male/0042_european_30_male_0.jpg"},
    {"https://cdn.example/", "/a b/", "0042_x y", "x+y~.jpg",
     "https://cdn.example/a%20b/0042_x%20y/x%2By~.jpg"},
    {"https://cdn.example", "", "0042_x", "a.jpg",
     "https://cdn.example/0042_x/a.jpg"},
  };
  size_t i;
  char base[256];
  tdm_error err;
  for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    tdm_buf b;
    tdm_buf_init(&b, 4096);
    T_EQ_INT(tdm_layout_public_url(urls[i].base, urls[i].prefix,
                                   urls[i].actor, urls[i].file, &b, &err),
             TDM_OK, urls[i].url);
    T_EQ_STR(b.data, urls[i].url, "public URL");
    tdm_buf_free(&b);
  }
  T_EQ_INT(tdm_layout_url_base("story-boards-assets", "eu-west-2", base,
                               sizeof base, &err), TDM_OK, "url base");
  T_EQ_STR(base, "https://story-boards-assets.s3.eu-west-2.amazonaws.com",
           "url base");
  T_EQ_INT(tdm_layout_url_base("b", "", base, sizeof base, &err), TDM_ERR,
           "url base without a region");
}

static void test_names(void) {
  static const char *const st[] = {"synced", "local_only", "s3_only",
                                   "out_of_sync", "missing"};
  static const char *const keys[] = {
    "training_synced_count", "training_local_only_count",
    "training_s3_only_count", "training_out_of_sync_count",
    "training_missing_count"};
  int k;
  for (k = 0; k < TDM_ST_COUNT; k++) {
    T_EQ_STR(tdm_status_name((tdm_status)k), st[k], "status name");
    T_EQ_INT(tdm_status_parse(st[k]), k, st[k]);
    T_EQ_STR(tdm_stat_count_key((tdm_status)k), keys[k], "statistics key");
  }
  T_EQ_INT(tdm_status_parse("SYNCED"), -1, "status names are exact");
  T_EQ_STR(TDM_STAT_IMAGES, "training_images_count", "images key");
  T_EQ_STR(TDM_STAT_SIZE_MB, "training_data_size_mb", "size key");
}

static void test_absolute(void) {
  char cwd[2048], want[4096], out[4096];
  tdm_error err;
  T_CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
  snprintf(want, sizeof want, "%s/data/actors/0042_x/training_data/a.jpg",
           cwd);
  T_EQ_INT(tdm_layout_abs_file_path("./data", "0042_x", "a.jpg", out,
                                    sizeof out, &err), TDM_OK, "abs path");
  T_EQ_STR(out, want, "abs path of ./data");
  T_EQ_INT(tdm_layout_abs_file_path("/srv/d", "0042_x", "a.jpg", out,
                                    sizeof out, &err), TDM_OK, "abs path");
  T_EQ_STR(out, "/srv/d/actors/0042_x/training_data/a.jpg",
           "abs path of an absolute root");
}

int main(void) {
  test_ids();
  test_numbers();
  test_paths();
  test_local_path_file();
  test_images();
  test_keys();
  test_urls();
  test_names();
  test_absolute();
  T_DONE();
}
