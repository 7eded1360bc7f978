/*
 * tdm/manifest.h -- per-actor training-data manifests: the model, its
 * invariants, a Python-compatible JSON writer, locked atomic saves and
 * local scans that reuse known hashes.
 *
 * A manifest is data/actor_manifests/{actor_id}_manifest.json. The core
 * keeps the parsed document (jansson, key order and unknown keys kept) and,
 * beside each entry, the *facts* it knows: whether the file is present
 * locally and in S3, and with which MD5/size/mtime. Callers report facts;
 * the core derives `status`, `md5_hash`, `size_bytes`, `size_mb`,
 * `modified_timestamp`, `modified_date`, `local_path`, `s3_url`, the
 * statistics and `training_data_updated`. Nobody sets a status by hand.
 *
 * Files are never opened through a manifest's `local_path`: the location of
 * an entry's file is always data_root/actors/{actor_name}/training_data/
 * {filename}, with the filename checked to be one safe component.
 */
#ifndef TDM_MANIFEST_H
#define TDM_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "hash.h"
#include "fs.h"
#include "layout.h"

/* Largest manifest file tdm reads (a 10,000-entry manifest is ~5 MB). */
#define TDM_MANIFEST_MAX_BYTES (64u * 1024 * 1024)
/* Largest path tdm builds. */
#define TDM_PATH_MAX 4096

typedef struct tdm_manifest tdm_manifest;

/* Where and how to open a manifest. All strings are borrowed for the
 * duration of tdm_manifest_open (copied). */
typedef struct tdm_manifest_opts {
  const char *data_root;        /* "data" when NULL */
  const char *public_url_base;  /* "https://{bucket}.s3.{region}..." */
  const char *prefix;           /* "system_actors/training_data" */
  double lock_timeout;          /* seconds; <= 0 tries once */
  int read_only;                /* no lock, no directory, no save */
} tdm_manifest_opts;

/* What a caller saw of one side (local file or S3 object) of an entry. */
typedef struct tdm_fact {
  int known;        /* 0: not reported, keep what the manifest knew */
  int present;      /* when known: 1 the file/object exists, 0 absent */
  char md5[TDM_MD5_HEX_LEN + 1];  /* "" = unknown */
  char etag[TDM_ETAG_MAX];        /* S3 only; "" = unknown */
  int has_size, has_mtime;
  int64_t size;
  double mtime;     /* seconds since the epoch */
} tdm_fact;

typedef struct tdm_manifest_stats {
  int64_t count[TDM_ST_COUNT];
  int64_t images;
  int64_t bytes;
  double size_mb;   /* round(bytes / 1048576, 2) */
} tdm_manifest_stats;

/* A read-only view of one entry, valid until the next mutation or close.
 * Strings point into the manifest. */
typedef struct tdm_entry_view {
  const char *filename, *local_path, *s3_url, *md5_hash, *modified_date;
  const char *status;
  int64_t size_bytes;
  double size_mb, modified_timestamp;
  long index;            /* the _N of the filename, -1 when none */
  const char *local_md5; /* NULL when unknown / absent */
  const char *s3_md5, *s3_etag;
  int local_present, s3_present;
} tdm_entry_view;

/* Actor ids, image names, paths, keys, URLs: tdm/layout.h. */

/* Python's round(x, 2) for the non-negative doubles of sizes. */
double tdm_round2(double x);

/* "YYYY-MM-DDTHH:MM:SS.ffffff" (UTC) of `ts`, rounded to microseconds as
 * Python's datetime.utcfromtimestamp does. `out` holds 32 bytes. */
void tdm_format_utc(double ts, char *out, size_t outsz);

/* ---- the JSON writer -------------------------------------------------- */

/* Append `v` (a jansson json_t *) to `out` exactly as Python's
 * json.dumps(v, indent=2) would write it (no trailing newline). NaN and
 * infinities are refused (EINVAL). `v` is const void * so this header does
 * not need jansson.h. */
int tdm_json_write(const void *v, tdm_buf *out, tdm_error *err);
/* The same as Python's json.dumps(v) (one line, ", " and ": "): the HTTP
 * API's bodies. */
int tdm_json_write_compact(const void *v, tdm_buf *out, tdm_error *err);

/* Python's repr() of a finite double into `out` (32 bytes is enough). */
int tdm_float_repr(double d, char *out, size_t outsz);

/* ---- open, query, mutate, save, close -------------------------------- */

/* Lock and load the manifest of `actor_name` (a full checked name) under
 * opts->data_root: creates actor_manifests/ when needed, takes an
 * exclusive flock on "{manifest}.lock" polling up to opts->lock_timeout
 * ("LOCKED", naming the holder's pid, when not had in time), then parses
 * and validates the file ("BADMANIFEST", "FILE: line L column C: reason").
 * A missing file gives an empty manifest in memory. On success *out owns
 * the lock until tdm_manifest_close.
 *
 * With opts->read_only nothing on disk is created or written: no lock file,
 * no directory, no lock taken (saves are atomic renames, so the one read
 * of the file sees a whole version; see tdm_manifest_open). Mutations work
 * in memory; tdm_manifest_save refuses ("EROFS"). */
int tdm_manifest_open(tdm_manifest **out, const char *actor_name,
                      const tdm_manifest_opts *opts, tdm_error *err);

/* Release the lock and free everything; unsaved changes are dropped.
 * NULL is a no-op. */
void tdm_manifest_close(tdm_manifest *m);

/* Parse and validate a manifest file without locking. On success
 * *root_out is a new jansson reference (json_t *) to the document.
 * `data_root` (may be NULL) is the configured data root: when absolute,
 * local_paths under it are accepted besides relative ones. */
int tdm_manifest_read_file(const char *path, const char *data_root,
                           void **root_out, tdm_error *err);

const char *tdm_manifest_path(const tdm_manifest *m);
const char *tdm_manifest_actor_name(const tdm_manifest *m);
const char *tdm_manifest_actor_id(const tdm_manifest *m);
const char *tdm_manifest_data_root(const tdm_manifest *m);
/* Whether the manifest was opened read-only. */
int tdm_manifest_read_only(const tdm_manifest *m);
/* Whether the file existed when opened. */
int tdm_manifest_existed(const tdm_manifest *m);
/* Whether save would write: changed since load, never saved, or the
 * stored statistics are stale. */
int tdm_manifest_dirty(const tdm_manifest *m);
/* Whether the stored statistics disagree with the entries. */
int tdm_manifest_stale(const tdm_manifest *m);

size_t tdm_manifest_count(const tdm_manifest *m);
/* View of entry i (0-based, file order); -1 when out of range. */
int tdm_manifest_entry(const tdm_manifest *m, size_t i, tdm_entry_view *v);
/* Index of the entry named `filename`, or -1. */
long tdm_manifest_find(const tdm_manifest *m, const char *filename);
void tdm_manifest_statistics(const tdm_manifest *m, tdm_manifest_stats *s);

/* The local file of `filename`: data_root/actors/{name}/training_data/
 * {filename} into `out` (filename checked). */
int tdm_manifest_file_path(const tdm_manifest *m, const char *filename,
                           char *out, size_t outsz, tdm_error *err);

/* Add an entry ("EEXIST" when present, "EBADNAME" for a bad filename).
 * A local fact that is present without an MD5 (or size/mtime) is
 * completed by hashing (stat-ing) the local file. */
int tdm_manifest_add(tdm_manifest *m, const char *filename,
                     const tdm_fact *local, const tdm_fact *s3,
                     tdm_error *err);
/* Add `n` entries, all or nothing: every name is checked first, and a
 * failure part-way removes what was added. `locals`/`s3s` may be NULL. */
int tdm_manifest_add_many(tdm_manifest *m, size_t n,
                          const char *const *filenames,
                          const tdm_fact *locals, const tdm_fact *s3s,
                          tdm_error *err);
/* Update an entry's facts ("ENOENT" when absent); facts with known == 0
 * keep what the manifest knew. */
int tdm_manifest_update(tdm_manifest *m, const char *filename,
                        const tdm_fact *local, const tdm_fact *s3,
                        tdm_error *err);
int tdm_manifest_remove(tdm_manifest *m, const char *filename,
                        tdm_error *err);

/* Write the manifest when dirty: recompute statistics and
 * training_data_updated, then tdm_atomic_write. *written says whether it
 * wrote. A read-only manifest is refused ("EROFS"), dirty or not. */
int tdm_manifest_save(tdm_manifest *m, int *written, tdm_error *err);

/* The document as it would be saved now (statistics recomputed only when
 * dirty), appended to `out`. */
int tdm_manifest_encode(tdm_manifest *m, tdm_buf *out, tdm_error *err);

/* Repair a manifest of `actor_name` that names another actor than its
 * file, when the intent is unambiguous (audit --fix): the file is
 * {id}_manifest.json of this actor and exactly one field disagrees --
 * character_id (rewritten to the id) or character_name (rewritten to
 * actor_name, only when no entry is named for the other actor). Under the
 * manifest's lock; the result is validated before it is written
 * atomically. *repaired = 1 when written; "BADMANIFEST" saying why when
 * nothing can be decided. */
int tdm_manifest_repair_identity(const char *actor_name,
                                 const tdm_manifest_opts *opts,
                                 int *repaired, tdm_error *err);

/* ---- the sidecar: what vouched for MD5s -----------------------------------
 *
 * Beside each manifest (whose schema stays the seed's) a hidden sidecar,
 * actor_manifests/.{id}_manifest.state, is written atomically under the
 * manifest's lock with every save. It holds the local hash cache (per
 * file: device, inode, size, mtime and ctime in ns, MD5) and, per file,
 * what an S3 object's MD5 was learned from while it had a given ETag. A
 * lost or corrupt sidecar only costs re-hashing and re-asking S3. */

#define TDM_MEMO_SOURCE_MAX 32

/* The MD5 remembered for `filename`'s S3 object while its ETag is `etag`
 * (exactly): copies it into md5 (33 bytes) and what vouched for it into
 * source (TDM_MEMO_SOURCE_MAX bytes, may be NULL) and returns 1; 0 when
 * nothing is remembered for that ETag (another ETag: another version). */
int tdm_manifest_s3_memo(const tdm_manifest *m, const char *filename,
                         const char *etag, char *md5, char *source);

/* Remember that `filename`'s S3 object with ETag `etag` has MD5 `md5`, as
 * `source` vouched ("x-amz-meta-md5", "checksum", "GET", ...: one word,
 * < TDM_MEMO_SOURCE_MAX bytes). Written with the next save (also when the
 * manifest itself is unchanged). "ENOENT" when filename is not an entry,
 * "EINVAL" for a malformed md5, etag or source. */
int tdm_manifest_set_s3_memo(tdm_manifest *m, const char *filename,
                             const char *etag, const char *md5,
                             const char *source, tdm_error *err);

/* ---- local scan -------------------------------------------------------- */

typedef struct tdm_scan_item {
  char name[TDM_NAME_MAX + 1];
  char reason[256];          /* for skipped files */
} tdm_scan_item;

typedef struct tdm_scan_report {
  tdm_scan_item *added, *changed, *vanished, *skipped;
  size_t n_added, n_changed, n_vanished, n_skipped;
  size_t n_changing;  /* of the skipped: kept changing while hashed (their
                         entries are left as they were) */
  size_t hashed, reused;
  uint64_t bytes_hashed;
} tdm_scan_report;

/* List the actor's training_data/ and bring the local facts up to date:
 * size+mtime equal to the entry's (and not racy) reuse the stored MD5
 * unless `verify`; the rest are hashed on `jobs` threads. New images are
 * added, entries whose file is gone are marked locally absent. A missing
 * directory means no local files. Free with tdm_scan_report_free. */
int tdm_manifest_scan(tdm_manifest *m, int verify, int jobs,
                      tdm_scan_report *rep, tdm_error *err);
void tdm_scan_report_free(tdm_scan_report *rep);

/* ---- hashing ahead ------------------------------------------------------ */

/* A prehash hashes, on background threads, the image files of a list of
 * actor folders in the order a bulk run will scan them, a few folders
 * ahead of the scan, so that hashing overlaps the S3 listing and one pool
 * of threads keeps every core busy across actors. A scan given the
 * prehash (tdm_manifest_scan_pre) takes a file's MD5 from it instead of
 * hashing, but only when the file is unchanged since it was hashed (same
 * device, inode, size, mtime and ctime, checked before and after hashing
 * and again by the scan) and settled (its ctime 0.1 s or more before the
 * hashing began, well over the granularity of file timestamps, so that a
 * later change cannot go unseen): anything else is hashed by the scan as
 * usual. */
typedef struct tdm_prehash tdm_prehash;

/* A prehash over the `n` folders dirs[] (copied; each
 * "{data_root}/actors/{name}/training_data"), hashed on `threads` threads
 * (1-16), at most `ahead` folders beyond the last one a scan asked for
 * (<= 0: 4). Threads start at once. */
int tdm_prehash_new(tdm_prehash **out, const char *const *dirs, size_t n,
                    int threads, int ahead, tdm_error *err);

/* Stop the threads (the file being hashed is finished) and free. NULL is a
 * no-op. */
void tdm_prehash_free(tdm_prehash *p);

/* Files whose MD5 a scan took from the prehash so far, and files the
 * prehash hashed. */
void tdm_prehash_stats(tdm_prehash *p, uint64_t *taken, uint64_t *hashed);

/* tdm_manifest_scan, taking MD5s from `pre` (may be NULL) where it can. */
int tdm_manifest_scan_pre(tdm_manifest *m, int verify, int jobs,
                          tdm_prehash *pre, tdm_scan_report *rep,
                          tdm_error *err);

/* ---- locks (used by tdm_manifest_open) -------------------------------- */

/* Take an exclusive flock on `lockpath` (created 0644, never written),
 * polling every 1-10 ms up to `timeout` seconds. Returns the open fd in
 * *fd. "LOCKED" names the holder's pid (from /proc/locks) on timeout. */
int tdm_lock_acquire(const char *lockpath, double timeout, int *fd,
                     tdm_error *err);
void tdm_lock_release(int fd);

/* ---- background saves ------------------------------------------------- */

/* A saver writes manifests on background threads, so that a bulk run does
 * not wait on each save's fsyncs: the caller hands over a locked manifest's
 * encoded document *and its lock*; a writer thread writes it atomically
 * (tdm_atomic_write: temp file, fsync, rename, fsync of the directory) and
 * only then releases the lock. Until then no other process (and no other
 * open in this process) can lock, read-modify-write or replace that
 * manifest, so the safety rules hold unchanged; what a crash loses is
 * what a crash before a synchronous save would lose. */
typedef struct tdm_saver tdm_saver;

/* A failed background save: the actor, the manifest path, the error. */
typedef struct tdm_saver_failure {
  char actor_name[TDM_NAME_MAX + 1];
  char path[TDM_PATH_MAX];
  tdm_error err;
} tdm_saver_failure;

/* A saver with `threads` writers (1-16; started on first use). At most
 * `max_pending` saves are queued at once (<= 0: 64); a save handed over
 * beyond that waits for a writer (bounds memory). */
int tdm_saver_new(tdm_saver **out, int threads, int max_pending,
                  tdm_error *err);

/* Like tdm_manifest_save, but the write happens on `s`'s threads. When
 * the manifest is dirty its statistics and training_data_updated are
 * recomputed now, the encoded document and the lock go to the saver, and
 * *written = 1: from then on m is unlocked for this handle (readable in
 * memory; further saves are refused with "EINVAL"). When it is clean
 * nothing is queued and m keeps its lock. Failures of the write itself
 * are reported by tdm_saver_wait. */
int tdm_manifest_save_async(tdm_manifest *m, tdm_saver *s, int *written,
                            tdm_error *err);

/* Block until every save handed over so far is written (or failed).
 * Returns the number of failures not yet taken. */
size_t tdm_saver_wait(tdm_saver *s);

/* Saves handed over and not finished yet. */
size_t tdm_saver_pending(tdm_saver *s);

/* Move up to `max` finished failures into out[]; returns how many. */
size_t tdm_saver_take_failures(tdm_saver *s, tdm_saver_failure *out,
                               size_t max);

/* Wait for every pending save, stop the threads, free. NULL is a no-op.
 * Failures not taken are dropped. */
void tdm_saver_free(tdm_saver *s);

#endif
