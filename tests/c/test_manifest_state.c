/* test_manifest_state.c -- the sidecar beside a manifest: the hash cache
 * keyed on (device, inode, size, mtime ns, ctime ns) notices a same-size
 * rewrite whose mtime was put back; a file that changes while it is hashed
 * is hashed again and, when it keeps changing, left as it was and
 * reported; the S3 memo round-trips through a save; a corrupt or cut
 * sidecar only costs re-hashing; the manifest's bytes stay the seed's. */
#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <fcntl.h>

#include "t.h"
#include "tdm.h"

#define ACTOR "0042_x"

static char root[600], tdir[800], spath[800], mpath[800];
static tdm_manifest_opts opts;

static void spit(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) T_CHECK(0, "write %s", path);
  if (f) fclose(f);
}

static const char *image(const char *name, size_t size, int c) {
  static char path[1000];
  char *data = malloc(size);
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

/* Open, scan, save, close; the scan's report in *rep (freed by caller). */
static void scan_save(tdm_scan_report *rep, const char *what) {
  tdm_manifest *m = open_m();
  tdm_error err;
  int written;
  if (!m) return;
  T_EQ_INT(tdm_manifest_scan(m, 0, 2, rep, &err), TDM_OK, what);
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, what);
  tdm_manifest_close(m);
}

static const char *md5_of(const char *fn) {
  static char md5[40];
  tdm_manifest *m = open_m();
  tdm_entry_view v;
  long i;
  md5[0] = '\0';
  if (!m) return md5;
  i = tdm_manifest_find(m, fn);
  if (i >= 0 && tdm_manifest_entry(m, (size_t)i, &v) == 0)
    snprintf(md5, sizeof md5, "%s", v.md5_hash);
  tdm_manifest_close(m);
  return md5;
}

/* cp new f; touch -r old f: same size, same mtime, new ctime. */
static void test_restored_mtime(void) {
  tdm_scan_report rep;
  struct stat st;
  struct timeval tv[2];
  const char *p = image(ACTOR "_0.jpg", 5000, 'a');
  char before[40];
  image(ACTOR "_1.jpg", 5000, 'b');
  usleep(100 * 1000);             /* ctimes older than the racy window */
  scan_save(&rep, "first scan");
  T_EQ_INT(rep.hashed, 2, "first scan hashes both");
  tdm_scan_report_free(&rep);
  T_CHECK(access(spath, F_OK) == 0, "sidecar %s written", spath);
  scan_save(&rep, "warm scan");
  T_EQ_INT(rep.hashed, 0, "warm scan: the cache vouches for both");
  T_EQ_INT(rep.reused, 2, "warm scan reuses both");
  tdm_scan_report_free(&rep);
  snprintf(before, sizeof before, "%s", md5_of(ACTOR "_0.jpg"));
  /* rewrite with the same size, put the mtime back */
  T_CHECK(stat(p, &st) == 0, "stat");
  image(ACTOR "_0.jpg", 5000, 'z');
  tv[0].tv_sec = tv[1].tv_sec = st.st_mtim.tv_sec;
  tv[0].tv_usec = tv[1].tv_usec = st.st_mtim.tv_nsec / 1000;
  T_CHECK(utimes(p, tv) == 0, "utimes");
  scan_save(&rep, "scan after cp + touch -r");
  T_EQ_INT(rep.hashed, 1, "the rewritten file is hashed again");
  T_EQ_INT(rep.n_changed, 1, "and found changed");
  tdm_scan_report_free(&rep);
  T_CHECK(strcmp(md5_of(ACTOR "_0.jpg"), before) != 0,
          "md5_hash recalculated: was %s, still %s", before,
          md5_of(ACTOR "_0.jpg"));
}

/* A writer that keeps rewriting a file in place (same size) until told. */
typedef struct writer { const char *path; volatile int stop; } writer;

static void *rewrite_loop(void *ud) {
  writer *w = ud;
  int fd = open(w->path, O_WRONLY);
  unsigned char c = 0;
  if (fd < 0) return NULL;
  while (!w->stop) {
    c++;
    if (pwrite(fd, &c, 1, 0) != 1) break;
    usleep(200);
  }
  close(fd);
  return NULL;
}

static void test_changing(void) {
  tdm_scan_report rep;
  tdm_manifest *m;
  tdm_error err;
  pthread_t th;
  writer w;
  char before[40];
  size_t k;
  int found = 0;
  const char *p = image(ACTOR "_0.jpg", 16u << 20, 'c');
  w.path = p;
  w.stop = 0;
  /* the entry exists first, with this content's MD5 */
  scan_save(&rep, "scan before the writer");
  tdm_scan_report_free(&rep);
  snprintf(before, sizeof before, "%s", md5_of(ACTOR "_0.jpg"));
  m = open_m();
  if (!m) return;
  T_CHECK(pthread_create(&th, NULL, rewrite_loop, &w) == 0, "writer");
  usleep(20 * 1000);
  T_EQ_INT(tdm_manifest_scan(m, 1, 1, &rep, &err), TDM_OK,
           "verify scan while the file changes");
  w.stop = 1;
  pthread_join(th, NULL);
  T_EQ_INT(rep.n_changing, 1, "reported as changing");
  for (k = 0; k < rep.n_skipped; k++)
    if (strcmp(rep.skipped[k].name, ACTOR "_0.jpg") == 0 &&
        strstr(rep.skipped[k].reason, "changed while it was hashed"))
      found = 1;
  T_CHECK(found, "skipped with the reason 'changed while it was hashed'");
  T_EQ_INT(rep.n_changed, 0, "no change recorded from a moving file");
  tdm_scan_report_free(&rep);
  T_CHECK(!tdm_manifest_dirty(m), "the entry is left as it was");
  tdm_manifest_close(m);
  T_EQ_STR(md5_of(ACTOR "_0.jpg"), before, "md5_hash unchanged");
  unlink(p);
}

static void test_memo_and_corruption(void) {
  tdm_manifest *m;
  tdm_error err;
  tdm_scan_report rep;
  char md5[40], src[TDM_MEMO_SOURCE_MAX], *mtext1, *mtext2;
  size_t len;
  int written;
  const char *E = "\"0123456789abcdef0123456789abcdef-2\"";
  const char *H = "0123456789abcdef0123456789abcdef";
  image(ACTOR "_2.jpg", 100, 'd');
  usleep(100 * 1000);
  scan_save(&rep, "scan");
  tdm_scan_report_free(&rep);
  mtext1 = t_slurp(mpath, &len);
  m = open_m();
  if (!m) return;
  T_EQ_INT(tdm_manifest_s3_memo(m, ACTOR "_2.jpg", E, md5, src), 0,
           "no memo yet");
  T_EQ_INT(tdm_manifest_set_s3_memo(m, ACTOR "_2.jpg", E, H, "GET", &err),
           TDM_OK, "set memo");
  T_EQ_INT(tdm_manifest_set_s3_memo(m, "nope.jpg", E, H, "GET", &err),
           TDM_ERR, "memo of no entry");
  T_EQ_STR(err.code, "ENOENT", "memo of no entry: code");
  T_EQ_INT(tdm_manifest_set_s3_memo(m, ACTOR "_2.jpg", E, "XYZ", "GET",
                                    &err), TDM_ERR, "memo with a bad md5");
  T_EQ_INT(tdm_manifest_set_s3_memo(m, ACTOR "_2.jpg", E, H, "two words",
                                    &err), TDM_ERR, "memo with a bad source");
  T_CHECK(!tdm_manifest_dirty(m), "a memo does not dirty the manifest");
  T_EQ_INT(tdm_manifest_save(m, &written, &err), TDM_OK, "save");
  T_EQ_INT(written, 0, "manifest not rewritten for a memo");
  tdm_manifest_close(m);
  mtext2 = t_slurp(mpath, &len);
  T_CHECK(mtext1 && mtext2 && strcmp(mtext1, mtext2) == 0,
          "manifest bytes unchanged by the sidecar");
  free(mtext1);
  free(mtext2);
  m = open_m();
  if (!m) return;
  T_EQ_INT(tdm_manifest_s3_memo(m, ACTOR "_2.jpg", E, md5, src), 1,
           "memo read back");
  T_EQ_STR(md5, H, "memo md5");
  T_EQ_STR(src, "GET", "memo source");
  T_EQ_INT(tdm_manifest_s3_memo(m, ACTOR "_2.jpg", "\"other\"", md5, src),
           0, "another ETag is another version");
  tdm_manifest_close(m);
  /* a cut sidecar is no sidecar: everything is hashed again, nothing
   * fails */
  {
    char *st = t_slurp(spath, &len);
    T_CHECK(st && len > 20, "sidecar readable");
    if (st) spit(spath, st, len / 2);
    free(st);
  }
  m = open_m();
  if (!m) return;
  T_EQ_INT(tdm_manifest_s3_memo(m, ACTOR "_2.jpg", E, md5, src), 0,
           "cut sidecar: no memo");
  T_EQ_INT(tdm_manifest_scan(m, 0, 1, &rep, &err), TDM_OK, "scan");
  T_EQ_INT(rep.reused, 0, "cut sidecar: nothing vouched for");
  T_EQ_INT(rep.n_changed, 0, "cut sidecar: nothing changed either");
  tdm_scan_report_free(&rep);
  tdm_manifest_close(m);
  spit(spath, "garbage\n\t\t", 10);
  m = open_m();
  T_CHECK(m != NULL, "garbage sidecar: the manifest still opens");
  tdm_manifest_close(m);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  char cmd[1200];
  snprintf(root, sizeof root, "%s/tdm-state-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) return 1;
  snprintf(tdir, sizeof tdir, "%s/actors/" ACTOR "/training_data", root);
  snprintf(spath, sizeof spath, "%s/actor_manifests/.0042_manifest.state",
           root);
  snprintf(mpath, sizeof mpath, "%s/actor_manifests/0042_manifest.json",
           root);
  tdm_mkdirs(tdir, NULL);
  opts.data_root = root;
  opts.public_url_base = "https://b.s3.us-west-1.amazonaws.com";
  opts.prefix = "p";
  opts.lock_timeout = 1;
  test_restored_mtime();
  test_changing();
  test_memo_and_corruption();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) T_CHECK(0, "cleanup");
  T_DONE();
}
