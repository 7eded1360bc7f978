/*
 * tdm_manifest_int.h -- internals shared by the tdm_manifest*.c files
 * (model, loader, scanner). Not installed; includes jansson.h.
 */
#ifndef TDM_MANIFEST_INT_H
#define TDM_MANIFEST_INT_H

#include <jansson.h>

#include "tdm.h"

#include <sys/stat.h>

/* The hash cache record of a local file (the sidecar's "L" line): the
 * stat that vouched for `md5`, as git's index keeps it. */
typedef struct tdm_statrec {
  int have;
  uint64_t dev, ino;
  int64_t size, mtime_ns, ctime_ns;
  char md5[TDM_MD5_HEX_LEN + 1];
} tdm_statrec;

/* What vouched for an S3 object's MD5 while it had ETag `etag` (the
 * sidecar's "S" line; see tdm_manifest_set_s3_memo). */
typedef struct tdm_s3memo {
  char etag[TDM_ETAG_MAX];
  char md5[TDM_MD5_HEX_LEN + 1];
  char source[TDM_MEMO_SOURCE_MAX];
} tdm_s3memo;

/* The facts beside one entry of training_data (same index). */
typedef struct tdm_mentry {
  tdm_fact loc, s3;   /* loc.known/s3.known are always 1 once loaded */
  int s3_differs;     /* S3 MD5 unknown but known to differ (loaded
                         out_of_sync) */
  tdm_statrec rec;    /* hash cache, from and for the sidecar */
  tdm_s3memo memo;    /* memo.etag[0] == 0: none */
} tdm_mentry;

struct tdm_manifest {
  char path[TDM_PATH_MAX];
  char lockpath[TDM_PATH_MAX];
  char data_root[TDM_PATH_MAX];
  char url_base[1024];
  char prefix[1024];
  char actor_name[TDM_NAME_MAX + 1];
  char actor_id[TDM_NAME_MAX + 1];
  json_t *root;       /* the document (owned) */
  json_t *list;       /* root.training_data (borrowed) */
  tdm_mentry *ents;   /* one per element of list */
  size_t n, cap;
  int lockfd;         /* -1 when not locked */
  int read_only;      /* opened without a lock; save refused */
  int existed, changed, stale;
  double updated_ts;  /* training_data_updated as epoch seconds, or -1 */
  char statepath[TDM_PATH_MAX];  /* the sidecar (tdm_manifest_state.c) */
  double state_ts;    /* when the sidecar read was written, or -1 */
  int state_dirty;    /* the sidecar needs writing */
};

/* Now, as epoch seconds to the microsecond (what dates are written from). */
double tdm_manifest_now(void);
/* Write entry i's local_path in the seed's form when it holds another
 * spelling (an absolute root, written by an older tdm). */
int tdm_manifest_canonical_local_path(tdm_manifest *m, size_t i,
                                      tdm_error *err);

/* ---- saving (tdm_manifest_save.c; the saver uses these too) ---- */

/* A save needs a manifest opened for writing, with its lock held. */
int tdm_manifest_check_writable(const tdm_manifest *m, tdm_error *err);
/* What a save writes now: the manifest document into doc when dirty
 * (*has_doc; statistics and training_data_updated recomputed for `now`),
 * the sidecar into state when the manifest or the cache changed
 * (*has_state). Neither when clean. */
int tdm_manifest_prepare(tdm_manifest *m, double now, tdm_buf *doc,
                         int *has_doc, tdm_buf *state, int *has_state,
                         tdm_error *err);
/* Write what tdm_manifest_prepare made: the manifest atomically (its
 * failure is the save's), then the sidecar atomically (a failure there
 * only costs re-hashing, so it is not one). */
int tdm_manifest_write_prepared(const char *path, const tdm_buf *doc,
                                int has_doc, const char *statepath,
                                const tdm_buf *state, int has_state,
                                tdm_error *err);
/* After a save handed over or written: memory matches the files. */
void tdm_manifest_mark_saved(tdm_manifest *m, double now, int has_doc,
                             int has_state);

/* ---- the sidecar (tdm_manifest_state.c) ---- */

/* Read the sidecar of an opened manifest into its entries' rec/memo;
 * a missing, unreadable or malformed sidecar is no sidecar (it only
 * costs re-hashing). Never fails. */
void tdm_state_load(tdm_manifest *m);
/* The sidecar's text for the entries as they are now, stamped `now`. */
int tdm_state_encode(const tdm_manifest *m, double now, tdm_buf *out,
                     tdm_error *err);
/* Whether entry i's record vouches for its local MD5 given the file's
 * stat `st`: same device, inode, size, mtime and ctime (ns), the same
 * MD5, and the mtime not within the timestamp granularity of the
 * sidecar's writing (git's racy rule: a change in the same instant could
 * hide). */
int tdm_state_vouches(const tdm_manifest *m, size_t i, const struct stat *st);
/* Set entry i's record from a stat that vouched for md5. */
void tdm_state_record(tdm_manifest *m, size_t i, const struct stat *st,
                      const char *md5);
/* Hash `path` (dirfd-relative when dirfd >= 0) so that the result belongs
 * to one version of the file: lstat, hash, lstat; when anything moved
 * (device, inode, size, mtime, ctime), again, up to `tries` times.
 * *after is the stat that vouches. "ECHANGING" when it kept changing. */
int tdm_hash_stable(const char *path, int tries, char *md5,
                    struct stat *after, tdm_error *err);
/* Whether two stats are of one unchanged file (device, inode, size, mtime
 * and ctime to the nanosecond). */
int tdm_same_stat(const struct stat *a, const struct stat *b);

/* Validate a parsed document; errors "FILE: line L column C: reason". */
int tdm_manifest_validate(json_t *root, const char *path, const char *text,
                          size_t len, const char *data_root,
                          tdm_error *err);
/* Read a whole (bounded) file into a malloc'd NUL-terminated buffer. */
int tdm_manifest_slurp(const char *path, char **text, size_t *len,
                       tdm_error *err);
/* The fast path of tdm_manifest_parse (tdm_manifest_parse.c): the
 * document of `text` as json_loadb(JSON_REJECT_DUPLICATES |
 * JSON_ALLOW_NUL) would build it (a new reference), for the texts Python's
 * json.dumps writes; NULL when it gives up (then ask jansson). */
json_t *tdm_manifest_fast_parse(const char *text, size_t len);
/* Parse + validate text; *out is a new reference. */
int tdm_manifest_parse(const char *path, const char *text, size_t len,
                       const char *data_root, json_t **out, tdm_error *err);

/* Replace the facts of entry i and re-derive its fields (marks the
 * manifest changed only when a stored value changes). */
int tdm_manifest_set_facts(tdm_manifest *m, size_t i, const tdm_fact *loc,
                           const tdm_fact *s3, tdm_error *err);

#endif
