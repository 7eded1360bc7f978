/* test_manifest.c -- the manifest model: every mutation rule of the seed,
 * status from facts, derived fields, saves that write only on change,
 * locks, local scans, the bad-input list (message checked, bytes
 * unchanged), and training_data_updated read back (out-of-range fields
 * refused). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "t.h"
#include "tdm.h"
#include "../../src/tdm_manifest_int.h"

#define ACTOR "0042_european_30_male"
#define URL "https://story-boards-assets.s3.us-west-1.amazonaws.com"

static char root[512], mpath[700], tdir[700], base[512];
static tdm_manifest_opts opts;

static void sh(const char *fmt, const char *arg) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, arg, arg, arg);
  if (system(cmd) != 0) T_CHECK(0, "command failed: %s", cmd);
}

static void spit(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) T_CHECK(0, "write %s", path);
  if (f) fclose(f);
}

/* A local image file of `size` bytes with byte `c`; returns its path. */
static const char *make_image(const char *name, size_t size, int c) {
  static char path[900];
  char *data = malloc(size + 1);
  memset(data, c, size);
  snprintf(path, sizeof path, "%s/%s", tdir, name);
  spit(path, data, size);
  free(data);
  return path;
}

static tdm_manifest *open_m(void) {
  tdm_manifest *m = NULL;
  tdm_error err;
  if (tdm_manifest_open(&m, ACTOR, &opts, &err) != TDM_OK)
    T_CHECK(0, "open: expected OK, got %s: %s", err.code, err.message);
  return m;
}

static tdm_fact fact_absent(void) {
  tdm_fact f;
  memset(&f, 0, sizeof f);
  f.known = 1;
  return f;
}

static tdm_fact fact(const char *md5, int64_t size, double mtime) {
  tdm_fact f = fact_absent();
  f.present = 1;
  snprintf(f.md5, sizeof f.md5, "%s", md5 ? md5 : "");
  f.has_size = f.has_mtime = 1;
  f.size = size;
  f.mtime = mtime;
  return f;
}

static const char *status_of(tdm_manifest *m, const char *fn) {
  tdm_entry_view v;
  long i = tdm_manifest_find(m, fn);
  if (i < 0 || tdm_manifest_entry(m, (size_t)i, &v) != 0) return "(none)";
  return v.status;
}

#define A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void reset_root(void) {
  sh("rm -rf '%s'/actor_manifests '%s'/actors", root);
  tdm_mkdirs(tdir, NULL);
}

/* The seed's mutation rules: add, delete, modify, sync; each updates the
 * entry, training_data_updated and the statistics. */
static void test_mutation_rules(void) {
  tdm_manifest *m;
  tdm_error err;
  tdm_fact l, s, none = {0};
  tdm_entry_view v;
  tdm_manifest_stats st;
  int written;
  char *text1, *text2;
  size_t len;
  reset_root();
  m = open_m();
  if (!m) return;
  T_CHECK(!tdm_manifest_existed(m) && tdm_manifest_dirty(m),
          "new manifest: expected not existing and dirty");
  /* add: local only */
  l = fact(A, 328059, 1729176000.0);
  s = fact_absent();
  T_EQ_INT(tdm_manifest_add(m, ACTOR "_0.jpg", &l, &s, &err), TDM_OK, "add");
  tdm_manifest_entry(m, 0, &v);
  T_EQ_STR(v.status, "local_only", "status after local add");
  T_EQ_STR(v.md5_hash, A, "md5_hash");
  T_EQ_INT(v.size_bytes, 328059, "size_bytes");
  T_CHECK(v.size_mb == 0.31, "size_mb: expected 0.31, got %.17g", v.size_mb);
  T_EQ_STR(v.modified_date, "2024-10-17T14:40:00.000000", "modified_date");
  /* the seed's relative form, whatever the data root is called */
  T_EQ_STR(v.local_path, "data/actors/" ACTOR "/training_data/" ACTOR
           "_0.jpg", "local_path");
  T_EQ_STR(v.s3_url, URL "/system_actors/training_data/" ACTOR "/" ACTOR
           "_0.jpg", "s3_url");
  T_EQ_INT(v.index, 0, "index");
  /* add: S3 only, and synced */
  l = fact_absent();
  s = fact(B, 1048576 * 3, 1729176001.5);
  T_EQ_INT(tdm_manifest_add(m, ACTOR "_1.jpg", &l, &s, &err), TDM_OK,
           "add s3");
  T_EQ_STR(status_of(m, ACTOR "_1.jpg"), "s3_only", "status s3 add");
  l = fact(A, 10, 1.0);
  s = fact(A, 10, 2.0);
  T_EQ_INT(tdm_manifest_add(m, ACTOR "_2.png", &l, &s, &err), TDM_OK,
           "add both");
  T_EQ_STR(status_of(m, ACTOR "_2.png"), "synced", "status same md5");
  T_EQ_INT(tdm_manifest_add(m, ACTOR "_2.png", &l, &s, &err), TDM_ERR,
           "add twice");
  T_EQ_STR(err.code, "EEXIST", "add twice code");
  T_EQ_INT(tdm_manifest_add(m, "../x.jpg", &l, &s, &err), TDM_ERR,
           "add ../");
  T_EQ_STR(err.code, "EBADNAME", "add ../ code");
  T_EQ_INT(tdm_manifest_add(m, "notes.txt", &l, &s, &err), TDM_ERR,
           "add non-image");
  tdm_manifest_statistics(m, &st);
  T_EQ_INT(st.images, 3, "images");
  T_EQ_INT(st.count[TDM_ST_SYNCED], 1, "synced count");
  T_EQ_INT(st.count[TDM_ST_LOCAL_ONLY], 1, "local_only count");
  T_EQ_INT(st.count[TDM_ST_S3_ONLY], 1, "s3_only count");
  T_CHECK(st.size_mb == 3.31, "size_mb total: expected 3.31, got %.17g",
          st.size_mb);
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, "save");
  T_EQ_INT(written, 1, "first save writes");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, "save again");
  T_EQ_INT(written, 0, "second save without change does not write");
  tdm_manifest_close(m);
  text1 = t_slurp(mpath, &len);
  T_CHECK(text1 && strstr(text1, "\"training_synced_count\": 1,\n"),
          "saved statistics: synced count 1");
  T_CHECK(text1 && strstr(text1, "\"training_missing_count\": 0\n"),
          "saved statistics end with training_missing_count");
  T_CHECK(text1 && strncmp(text1, "{\n  \"character_id\": \"0042\",\n  "
          "\"character_name\": \"" ACTOR "\",\n  \"training_data\": [\n    "
          "{\n      \"filename\": ", 100) == 0, "seed key order");

  /* modify: new local md5 -> out_of_sync, new timestamp */
  usleep(2000);
  m = open_m();
  if (!m) return;
  T_CHECK(!tdm_manifest_dirty(m), "reopened: expected clean");
  l = fact(B, 11, 3.0);
  T_EQ_INT(tdm_manifest_update(m, ACTOR "_2.png", &l, &none, &err), TDM_OK,
           "update");
  T_EQ_STR(status_of(m, ACTOR "_2.png"), "out_of_sync", "modified locally");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, "save modify");
  tdm_manifest_close(m);
  m = open_m();
  if (!m) return;
  T_EQ_STR(status_of(m, ACTOR "_2.png"), "out_of_sync",
           "out_of_sync survives a reload (S3 md5 unknown but different)");
  /* sync: upload -> S3 md5 equals local */
  s = fact(B, 11, 4.0);
  T_EQ_INT(tdm_manifest_update(m, ACTOR "_2.png", &none, &s, &err), TDM_OK,
           "sync");
  T_EQ_STR(status_of(m, ACTOR "_2.png"), "synced", "synced after upload");
  /* delete */
  T_EQ_INT(tdm_manifest_remove(m, ACTOR "_1.jpg", &err), TDM_OK, "remove");
  T_EQ_INT(tdm_manifest_remove(m, ACTOR "_1.jpg", &err), TDM_ERR,
           "remove twice");
  T_EQ_STR(err.code, "ENOENT", "remove twice code");
  /* missing: local vanished, not in S3 */
  l = fact_absent();
  s = fact_absent();
  T_EQ_INT(tdm_manifest_update(m, ACTOR "_0.jpg", &l, &s, &err), TDM_OK,
           "vanish");
  tdm_manifest_entry(m, (size_t)tdm_manifest_find(m, ACTOR "_0.jpg"), &v);
  T_EQ_STR(v.status, "missing", "status when nowhere");
  T_EQ_STR(v.md5_hash, A, "a missing entry keeps its md5");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, "save 2");
  tdm_manifest_close(m);
  text2 = t_slurp(mpath, &len);
  T_CHECK(text2 && strstr(text2, "\"training_images_count\": 2,"),
          "images count after delete");
  T_CHECK(text2 && strstr(text2, "\"training_missing_count\": 1"),
          "missing count");
  T_CHECK(text2 && !strstr(text2, ACTOR "_1.jpg"), "deleted entry gone");
  {
    const char *u1 = text1 ? strstr(text1, "training_data_updated") : NULL;
    const char *u2 = text2 ? strstr(text2, "training_data_updated") : NULL;
    T_CHECK(u1 && u2 && strncmp(u1, u2, 52) != 0,
            "training_data_updated changes with a saved change");
  }
  free(text1);
  free(text2);
}

/* Multipart ETag: the core compares it with the local file's. */
static void test_multipart(void) {
  tdm_manifest *m;
  tdm_error err;
  tdm_fact l = {0}, s;
  char etag[TDM_ETAG_MAX];
  const char *path;
  reset_root();
  path = make_image(ACTOR "_5.jpg", 6 * 1024 * 1024, 'q');
  T_EQ_INT(tdm_multipart_etag_file(path, 5 * 1024 * 1024, etag, &err),
           TDM_OK, "multipart etag");
  m = open_m();
  if (!m) return;
  l.known = l.present = 1;   /* md5/size/mtime from the file */
  s = fact_absent();
  s.present = 1;
  snprintf(s.etag, sizeof s.etag, "\"%.40s\"", etag);
  T_EQ_INT(tdm_manifest_add(m, ACTOR "_5.jpg", &l, &s, &err), TDM_OK,
           "add multipart");
  T_EQ_STR(status_of(m, ACTOR "_5.jpg"), "synced", "multipart etag match");
  snprintf(s.etag, sizeof s.etag, "\"0123456789abcdef0123456789abcdef-2\"");
  T_EQ_INT(tdm_manifest_update(m, ACTOR "_5.jpg", NULL, &s, &err), TDM_OK,
           "update etag");
  T_EQ_STR(status_of(m, ACTOR "_5.jpg"), "out_of_sync",
           "multipart etag mismatch");
  tdm_manifest_close(m);
}

/* Stale statistics make a manifest dirty; an absent missing count does
 * not while nothing is missing. */
static void test_stale(void) {
  static const char doc[] =
    "{\n  \"character_id\": \"0042\",\n  \"character_name\": \"" ACTOR "\",\n"
    "  \"training_data\": [],\n  \"training_data_updated\": \"\",\n"
    "  \"statistics\": {\n    \"training_images_count\": %d,\n"
    "    \"training_data_size_mb\": 0.0,\n    \"training_synced_count\": 0,\n"
    "    \"training_local_only_count\": 0,\n    \"training_s3_only_count\": 0,"
    "\n    \"training_out_of_sync_count\": 0\n  }\n}";
  char buf[1024];
  tdm_manifest *m;
  int n;
  reset_root();
  tdm_mkdirs(root, NULL);
  snprintf(buf, sizeof buf, "%s/actor_manifests", root);
  tdm_mkdirs(buf, NULL);
  n = snprintf(buf, sizeof buf, doc, 0);
  spit(mpath, buf, (size_t)n);
  m = open_m();
  if (m) T_CHECK(!tdm_manifest_stale(m) && !tdm_manifest_dirty(m),
                 "python-style statistics without missing count: not stale");
  tdm_manifest_close(m);
  n = snprintf(buf, sizeof buf, doc, 5);
  spit(mpath, buf, (size_t)n);
  m = open_m();
  if (m) T_CHECK(tdm_manifest_stale(m) && tdm_manifest_dirty(m),
                 "wrong image count: stale and dirty");
  tdm_manifest_close(m);
}

typedef struct lockarg { int rc; tdm_error err; } lockarg;

static void *open_in_thread(void *p) {
  lockarg *a = p;
  tdm_manifest *m = NULL;
  tdm_manifest_opts o = opts;
  o.lock_timeout = 0.2;
  a->rc = tdm_manifest_open(&m, ACTOR, &o, &a->err);
  tdm_manifest_close(m);
  return NULL;
}

/* flock excludes another open in the same process (another thread), and
 * the LOCKED message names our pid. */
static void test_lock(void) {
  tdm_manifest *m;
  pthread_t th;
  lockarg a;
  char want[64];
  reset_root();
  m = open_m();
  if (!m) return;
  pthread_create(&th, NULL, open_in_thread, &a);
  pthread_join(th, NULL);
  T_EQ_INT(a.rc, TDM_ERR, "second open while locked");
  T_EQ_STR(a.err.code, "LOCKED", "lock code");
  snprintf(want, sizeof want, "locked by pid %ld", (long)getpid());
  T_CHECK(strstr(a.err.message, want) != NULL,
          "LOCKED message: expected '%s', got '%s'", want, a.err.message);
  tdm_manifest_close(m);
  pthread_create(&th, NULL, open_in_thread, &a);
  pthread_join(th, NULL);
  T_EQ_INT(a.rc, TDM_OK, "open after close");
  {
    /* the holder's pid comes from /proc/locks: nothing is written into
     * the lock file, so a no-op run changes no byte of the data root */
    struct stat st;
    char lockpath[800];
    snprintf(lockpath, sizeof lockpath, "%s.lock", mpath);
    T_CHECK(stat(lockpath, &st) == 0 && st.st_size == 0,
            "lock file after opens: expected 0 bytes, got %lld",
            (long long)st.st_size);
  }
}

static int path_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static tdm_manifest *open_ro(tdm_error *err) {
  tdm_manifest *m = NULL;
  tdm_manifest_opts o = opts;
  o.read_only = 1;
  o.lock_timeout = 0;
  if (tdm_manifest_open(&m, ACTOR, &o, err) != TDM_OK) return NULL;
  return m;
}

/* Read-only opens create and write nothing (no actor_manifests/, no lock
 * file), do not wait for a writer's lock, work in memory, refuse save. */
static void test_read_only(void) {
  tdm_manifest *m, *w;
  tdm_error err;
  tdm_fact loc = fact(A, 10, 1700000000.0), s3 = fact_absent();
  char lockpath[800], *before, *after;
  size_t blen, alen;
  int written = 7;
  struct stat st1, st2;
  snprintf(lockpath, sizeof lockpath, "%s.lock", mpath);
  reset_root();
  /* no manifest, no actor_manifests/ */
  m = open_ro(&err);
  T_CHECK(m != NULL, "read-only open without a manifest: expected OK, "
          "got %s: %s", err.code, err.message);
  if (!m) return;
  T_EQ_INT(tdm_manifest_read_only(m), 1, "read_only flag");
  T_EQ_INT(tdm_manifest_existed(m), 0, "existed");
  T_EQ_INT(tdm_manifest_add(m, "0042_european_30_male_0.jpg", &loc, &s3,
                            &err), TDM_OK, "add in memory");
  T_EQ_INT(tdm_manifest_dirty(m), 1, "dirty after add");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_ERR, "save refused");
  T_EQ_STR(err.code, "EROFS", "code of a read-only save");
  T_EQ_INT(written, 0, "written after a refused save");
  tdm_manifest_close(m);
  T_CHECK(!path_exists("data-x/actor_manifests"),
          "read-only open: expected no actor_manifests/, it exists");
  /* an existing manifest without a lock file */
  w = open_m();
  if (!w) return;
  tdm_manifest_add(w, "0042_european_30_male_0.jpg", &loc, &s3, &err);
  T_EQ_INT(tdm_manifest_save(w, &written, &err), TDM_OK, "writer save");
  tdm_manifest_close(w);
  T_EQ_INT(unlink(lockpath), 0, "remove the lock file");
  before = t_slurp(mpath, &blen);
  stat(mpath, &st1);
  /* a writer holds the lock: the reader neither waits nor fails */
  w = open_m();
  m = open_ro(&err);
  T_CHECK(m != NULL, "read-only open while a writer holds the lock: "
          "expected OK, got %s: %s", err.code, err.message);
  tdm_manifest_close(w);
  if (!m) {
    free(before);
    return;
  }
  T_EQ_INT(tdm_manifest_existed(m), 1, "existed");
  T_EQ_INT((long long)tdm_manifest_count(m), 1, "entries read");
  T_EQ_INT(tdm_manifest_dirty(m), 0, "dirty right after open");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_ERR,
           "clean read-only save refused too");
  T_EQ_INT(tdm_manifest_remove(m, "0042_european_30_male_0.jpg", &err),
           TDM_OK, "remove in memory");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_ERR,
           "dirty read-only save refused");
  tdm_manifest_close(m);
  T_EQ_INT(unlink(lockpath), 0, "the writer's lock file");
  m = open_ro(&err);
  tdm_manifest_close(m);
  T_CHECK(!path_exists(lockpath),
          "read-only open: expected no lock file, %s exists", lockpath);
  after = t_slurp(mpath, &alen);
  stat(mpath, &st2);
  T_CHECK(before && after && blen == alen && memcmp(before, after, blen) == 0,
          "manifest bytes after read-only opens: expected unchanged");
  T_CHECK(st1.st_ino == st2.st_ino &&
          st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
          st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec,
          "manifest inode and mtime: expected untouched");
  free(before);
  free(after);
}

/* Local scan: images only, reuse by size+mtime, racy rule, verify,
 * vanished files, changed files. */
static void test_scan(void) {
  tdm_manifest *m;
  tdm_scan_report rep;
  tdm_error err;
  int written;
  char path[900];
  struct timeval old[2] = {{1600000000, 0}, {1600000000, 0}};
  reset_root();
  make_image(ACTOR "_0.jpg", 1000, 'a');
  make_image(ACTOR "_1.JPEG", 2000, 'b');
  make_image(".hidden.jpg", 10, 'c');
  make_image(".tmp.x.jpg.tmp.1.1", 10, 'c');
  make_image("response.json", 10, 'c');
  make_image("notes.txt", 10, 'c');
  snprintf(path, sizeof path, "%s/dir.jpg", tdir);
  mkdir(path, 0755);
  /* old mtimes, so the racy rule does not apply */
  snprintf(path, sizeof path, "%s/%s", tdir, ACTOR "_0.jpg");
  utimes(path, old);
  snprintf(path, sizeof path, "%s/%s", tdir, ACTOR "_1.JPEG");
  utimes(path, old);
  /* utimes set the ctimes to now: let them age past the racy window
   * (20 ms with nanosecond times) before the save that records them */
  usleep(100 * 1000);
  m = open_m();
  if (!m) return;
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "scan");
  T_EQ_INT(rep.n_added, 2, "added");
  T_EQ_INT(rep.hashed, 2, "hashed");
  T_EQ_INT(rep.bytes_hashed, 3000, "bytes hashed");
  T_EQ_INT(rep.n_skipped, 1, "skipped (the directory named .jpg)");
  tdm_scan_report_free(&rep);
  T_EQ_INT(tdm_manifest_count(m), 2, "entries after scan");
  T_EQ_STR(status_of(m, ACTOR "_0.jpg"), "local_only", "scanned status");
  tdm_manifest_save(m, &written, &err);
  tdm_manifest_close(m);

  m = open_m();
  if (!m) return;
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "warm scan");
  T_EQ_INT(rep.hashed, 0, "warm scan hashes nothing");
  T_EQ_INT(rep.reused, 2, "warm scan reuses both");
  T_CHECK(!tdm_manifest_dirty(m), "warm scan changes nothing");
  tdm_scan_report_free(&rep);
  T_EQ_INT(tdm_manifest_scan(m, 1, 2, &rep, &err), TDM_OK, "verify scan");
  T_EQ_INT(rep.hashed, 2, "verify hashes all");
  tdm_scan_report_free(&rep);
  /* same size, mtime put back, different content (cp new f; touch -r
   * old f): the ctime cannot be put back, so the cache does not vouch */
  make_image(ACTOR "_0.jpg", 1000, 'z');
  snprintf(path, sizeof path, "%s/%s", tdir, ACTOR "_0.jpg");
  utimes(path, old);
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "scan 3");
  T_EQ_INT(rep.n_changed, 1, "a restored mtime does not hide new content");
  T_EQ_INT(rep.hashed, 1, "only that file is hashed");
  tdm_scan_report_free(&rep);
  T_EQ_INT(tdm_manifest_scan(m, 1, 2, &rep, &err), TDM_OK, "scan 4");
  T_EQ_INT(rep.n_changed, 0, "verify finds nothing more");
  tdm_scan_report_free(&rep);
  usleep(100 * 1000);
  /* a file touched now is racy: re-hashed even with equal size+mtime */
  make_image(ACTOR "_0.jpg", 1000, 'y');
  tdm_manifest_save(m, &written, &err);
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "scan 5");
  T_EQ_INT(rep.n_changed, 1, "changed mtime -> re-hashed");
  tdm_scan_report_free(&rep);
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "scan 6");
  T_EQ_INT(rep.hashed, 1, "racy file re-hashed although size+mtime match");
  tdm_scan_report_free(&rep);
  /* vanished */
  snprintf(path, sizeof path, "%s/%s", tdir, ACTOR "_1.JPEG");
  unlink(path);
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, &rep, &err), TDM_OK, "scan 7");
  T_EQ_INT(rep.n_vanished, 1, "vanished");
  T_EQ_STR(status_of(m, ACTOR "_1.JPEG"), "missing", "vanished -> missing");
  tdm_scan_report_free(&rep);
  tdm_manifest_close(m);
}

typedef struct badcase {
  const char *what, *content, *want;
} badcase;

/* The bad-input list: each refused with its message, bytes unchanged,
 * and the file never overwritten by a later save. */
static void test_bad_inputs(void) {
  static const badcase cases[] = {
    {"truncated JSON", "{\n  \"character_id\": \"0042\",\n  \"charac",
     "line 3 column 9: premature end of input"},
    {"number where a string belongs",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": 17, \"status\": \"synced\"}]}",
     "line 1 column 100: expected a string for 'filename' of "
     "training_data[0], got integer"},
    {"duplicate filename",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\",\n"
     "\"training_data\": [{\"filename\": \"a_1.jpg\", \"status\": \"synced\"},"
     "\n{\"filename\": \"a_1.jpg\", \"status\": \"synced\"}]}",
     "line 3 column 14: duplicate filename 'a_1.jpg'"},
    {"../ in filename",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": \"../../etc/x.jpg\", "
     "\"status\": \"synced\"}]}", "contains a path separator"},
    {"absolute filename",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": \"/etc/passwd.jpg\", "
     "\"status\": \"synced\"}]}", "line 1 column 100: training_data[0]: "
     "filename '/etc/passwd.jpg' contains a path separator"},
    {"absolute local_path",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": \"a.jpg\", \"status\": \"synced\", "
     "\"local_path\": \"/etc/passwd\"}]}", "local_path '/etc/passwd' is "
     "absolute"},
    {"../ in local_path",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": \"a.jpg\", \"status\": \"synced\", "
     "\"local_path\": \"data/../../x.jpg\"}]}", "contains '..'"},
    {"duplicate key", "{\"character_id\": \"1\", \"character_id\": \"2\"}",
     "duplicate object key"},
    {"unknown status",
     "{\"character_id\": \"0042\", \"character_name\": \"" ACTOR "\", "
     "\"training_data\": [{\"filename\": \"a.jpg\", \"status\": \"ok\"}]}",
     "unknown status 'ok'"},
  };
  size_t i;
  char dir[800];
  reset_root();
  snprintf(dir, sizeof dir, "%s/actor_manifests", root);
  tdm_mkdirs(dir, NULL);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tdm_manifest *m = NULL;
    tdm_error err;
    char *after;
    size_t len;
    spit(mpath, cases[i].content, strlen(cases[i].content));
    T_EQ_INT(tdm_manifest_open(&m, ACTOR, &opts, &err), TDM_ERR,
             cases[i].what);
    T_EQ_STR(err.code, "BADMANIFEST", cases[i].what);
    T_CHECK(strncmp(err.message, mpath, strlen(mpath)) == 0 &&
            strstr(err.message, cases[i].want) != NULL,
            "%s: expected a message naming the file and '%s', got '%s'",
            cases[i].what, cases[i].want, err.message);
    after = t_slurp(mpath, &len);
    T_CHECK(after && len == strlen(cases[i].content) &&
            memcmp(after, cases[i].content, len) == 0,
            "%s: file bytes unchanged", cases[i].what);
    free(after);
    tdm_manifest_close(m);
  }
  /* 100 MB of garbage */
  {
    FILE *f = fopen(mpath, "wb");
    tdm_manifest *m = NULL;
    tdm_error err;
    struct stat st;
    static char chunk[1 << 20];
    int k;
    memset(chunk, '#', sizeof chunk);
    for (k = 0; f && k < 100; k++) fwrite(chunk, 1, sizeof chunk, f);
    if (f) fclose(f);
    T_EQ_INT(tdm_manifest_open(&m, ACTOR, &opts, &err), TDM_ERR,
             "100 MB garbage");
    T_CHECK(strstr(err.message, "larger than") != NULL &&
            strstr(err.message, mpath) != NULL,
            "100 MB garbage: expected a size refusal naming the file, got "
            "'%s'", err.message);
    T_CHECK(stat(mpath, &st) == 0 && st.st_size == 100 << 20,
            "100 MB garbage unchanged");
    unlink(mpath);
    /* a manifest that is a directory */
    mkdir(mpath, 0755);
    T_EQ_INT(tdm_manifest_open(&m, ACTOR, &opts, &err), TDM_ERR,
             "directory manifest");
    T_CHECK(strstr(err.message, "is a directory") != NULL,
            "directory: expected 'is a directory', got '%s'", err.message);
    T_CHECK(stat(mpath, &st) == 0 && S_ISDIR(st.st_mode),
            "directory left alone");
    rmdir(mpath);
  }
}

/* New entries go in index order; existing order is kept. */
static void test_order(void) {
  static const char *const adds[] = {ACTOR "_10.jpg", ACTOR "_2.jpg",
                                     "zz.png", ACTOR "_1.jpg", "aa.png"};
  static const char *const want[] = {ACTOR "_1.jpg", ACTOR "_2.jpg",
                                     ACTOR "_10.jpg", "aa.png", "zz.png"};
  tdm_manifest *m;
  tdm_error err;
  tdm_fact l = fact_absent(), s = fact(A, 1, 1.0);
  tdm_entry_view v;
  size_t i;
  reset_root();
  m = open_m();
  if (!m) return;
  for (i = 0; i < 5; i++)
    T_EQ_INT(tdm_manifest_add(m, adds[i], &l, &s, &err), TDM_OK, adds[i]);
  for (i = 0; i < 5; i++) {
    tdm_manifest_entry(m, i, &v);
    T_EQ_STR(v.filename, want[i], "file order by index, then name");
  }
  tdm_manifest_close(m);
}

/* training_data_updated back to epoch seconds: the value the racy-rule
 * compares mtimes with; -1 for anything that is not a UTC time in range
 * (the scan then re-hashes rather than trust a wrong time). */
static void test_dates(void) {
  static const struct { const char *s; double want; } cases[] = {
    {"2024-01-02T03:04:05", 1704164645.0},
    {"2024-01-02T03:04:05.250000", 1704164645.25},
    {"1970-01-01T00:00:00.000000", 0.0},
    {"2016-12-31T23:59:60.000000", 1483228800.0}, /* leap second */
    {"2026-13-40T25:61:00", -1},
    {"2026-13-01T00:00:00", -1},
    {"2026-00-01T00:00:00", -1},
    {"2026-01-40T00:00:00", -1},
    {"2026-01-00T00:00:00", -1},
    {"2026-01-01T25:00:00", -1},
    {"2026-01-01T00:61:00", -1},
    {"2026-01-01T00:00:61", -1},
    {"1969-12-31T23:59:59", -1},
    {"2026-01-01", -1},
    {"yesterday", -1},
  };
  char what[96];
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double got = tdm_parse_utc(cases[i].s);
    snprintf(what, sizeof what, "tdm_parse_utc(\"%s\")", cases[i].s);
    T_CHECK(got == cases[i].want, "%s: expected %.6f, got %.6f", what,
            cases[i].want, got);
  }
  T_CHECK(tdm_parse_utc(NULL) == -1, "tdm_parse_utc(NULL): expected -1");
  /* the whole seconds exact, the fraction added once: the same double
   * as timegm + strtod(".123456"), and as minutes + 5.123456 for S3 */
  T_CHECK(tdm_parse_utc("2024-01-02T03:04:05.123456") ==
          1704164645.0 + strtod(".123456", NULL),
          "fraction added to the whole seconds: got %.9f",
          tdm_parse_utc("2024-01-02T03:04:05.123456"));
  T_CHECK(tdm_utc_seconds(2024, 1, 2, 3, 4, 5.123456) ==
          1704164640.0 + 5.123456,
          "seconds with a fraction: expected %.9f, got %.9f",
          1704164640.0 + 5.123456,
          tdm_utc_seconds(2024, 1, 2, 3, 4, 5.123456));
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/tdm-manifest-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(base, sizeof base, "%s", root);
  snprintf(mpath, sizeof mpath, "%s/actor_manifests/0042_manifest.json",
           root);
  snprintf(tdir, sizeof tdir, "%s/actors/" ACTOR "/training_data", root);
  /* data_root as configured: relative, like the default "data" */
  if (chdir(root) != 0) return 1;
  snprintf(root, sizeof root, "data-x");
  snprintf(mpath, sizeof mpath, "data-x/actor_manifests/0042_manifest.json");
  snprintf(tdir, sizeof tdir, "data-x/actors/" ACTOR "/training_data");
  opts.data_root = root;
  opts.public_url_base = URL;
  opts.prefix = "system_actors/training_data";
  opts.lock_timeout = 1;
  test_mutation_rules();
  test_multipart();
  test_stale();
  test_lock();
  test_read_only();
  test_scan();
  test_bad_inputs();
  test_order();
  test_dates();
  if (chdir("/") == 0) sh("rm -rf '%s'", base);
  T_DONE();
}
