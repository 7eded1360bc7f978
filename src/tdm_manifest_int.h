/*
 * tdm_manifest_int.h -- internals shared by the tdm_manifest*.c files
 * (model, loader, scanner). Not installed; includes jansson.h.
 */
#ifndef TDM_MANIFEST_INT_H
#define TDM_MANIFEST_INT_H

#include <jansson.h>

#include "tdm.h"

/* The facts beside one entry of training_data (same index). */
typedef struct tdm_mentry {
  tdm_fact loc, s3;   /* loc.known/s3.known are always 1 once loaded */
  int s3_differs;     /* S3 MD5 unknown but known to differ (loaded
                         out_of_sync) */
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
};

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
