/*
 * fuzz_manifest.c -- the manifest loader (parse + validate), and for
 * documents it accepts, the full open -> save -> re-read cycle.
 *
 * Input: the bytes of an actor_manifests/0042_fuzz_manifest.json file.
 * Properties: parsing never crashes or leaks; a refusal names the file
 * and a line/column ("BADMANIFEST"); a document that is accepted opens
 * under a lock, saves in the Python-compatible format, and that saved
 * file is accepted again by the loader (the writer never produces what
 * the reader refuses). The data root is a private directory under
 * $TMPDIR (else /dev/shm) made once per process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tdm.h"
#include "tdm_manifest_int.h"
#include "fuzz.h"

static char root[512], mdir[600], mpath[700];

/* Make the private data root once. */
static void setup(void) {
  const char *tmp = getenv("TMPDIR");
  tdm_error err;
  if (root[0]) return;
  /* /dev/shm by default: saves fsync, and fsync on a disk is slow. */
  if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(root, sizeof root, "%s/tdm-fuzz-manifest.%ld", tmp,
           (long)getpid());
  snprintf(mdir, sizeof mdir, "%s/actor_manifests", root);
  snprintf(mpath, sizeof mpath, "%s/0042_manifest.json", mdir);
  if (tdm_mkdirs(mdir, &err) != TDM_OK) fuzz_fail(err.message);
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fuzz_fail("cannot write the input file");
  while (size > 0) {
    ssize_t w = write(fd, data, size);
    if (w <= 0) fuzz_fail("short write of the input file");
    data += w;
    size -= (size_t)w;
  }
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tdm_error err;
  json_t *doc = NULL;
  tdm_manifest *m = NULL;
  tdm_manifest_opts opts;
  void *again = NULL;
  int written = 0;

  memset(&err, 0, sizeof err);
  if (tdm_manifest_parse("fuzz.json", (const char *)data, size, NULL, &doc,
                         &err) != TDM_OK) {
    if (strcmp(err.code, "BADMANIFEST") != 0)
      fuzz_fail("parse refusal is not BADMANIFEST");
    if (strncmp(err.message, "fuzz.json: ", 11) != 0)
      fuzz_fail("parse refusal does not name the file");
    return 0;
  }
  json_decref(doc);

  /* Accepted: the whole cycle through a real file. */
  setup();
  write_file(mpath, data, size);
  memset(&opts, 0, sizeof opts);
  opts.data_root = root;
  opts.public_url_base = "https://story-boards-assets.s3.us-west-1."
                         "amazonaws.com";
  opts.prefix = "system_actors/training_data";
  opts.lock_timeout = 0;
  if (tdm_manifest_open(&m, "0042_fuzz", &opts, &err) != TDM_OK) {
    /* Refusals past the parser (another actor's manifest...) are fine as
     * long as they are reported. */
    if (!err.code[0] || !err.message[0]) fuzz_fail("open failed silently");
    unlink(mpath);
    return 0;
  }
  if (tdm_manifest_save(m, &written, &err) != TDM_OK) {
    if (!err.code[0] || !err.message[0]) fuzz_fail("save failed silently");
    tdm_manifest_close(m);
    unlink(mpath);
    return 0;
  }
  tdm_manifest_close(m);
  if (tdm_manifest_read_file(mpath, root, &again, &err) != TDM_OK) {
    fprintf(stderr, "re-read: %s\n", err.message);
    fuzz_fail("a manifest tdm saved is refused by its own loader");
  }
  json_decref((json_t *)again);
  unlink(mpath);
  return 0;
}
