/* tdm_manifest_open.c -- open a manifest: lock, read and validate the
 * file (tdm_manifest_load.c), infer each entry's facts from its stored
 * status, read the sidecar (tdm_manifest_state.c); and close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_manifest_int.h"

/* Facts of entry i as the stored status implies them (see header). */
static void infer_facts(tdm_manifest *m, size_t i) {
  json_t *obj = json_array_get(m->list, i), *v;
  tdm_mentry *e = &m->ents[i];
  int st = tdm_status_parse(json_string_value(json_object_get(obj,
                                                              "status")));
  const char *md5 = "";
  int64_t size = 0;
  double mtime = 0;
  memset(e, 0, sizeof *e);
  e->loc.known = e->s3.known = 1;
  if ((v = json_object_get(obj, "md5_hash")) && json_is_string(v))
    md5 = json_string_value(v);
  if ((v = json_object_get(obj, "size_bytes")) && json_is_integer(v))
    size = json_integer_value(v);
  if ((v = json_object_get(obj, "modified_timestamp")) && json_is_number(v))
    mtime = json_number_value(v);
  e->loc.present = st == TDM_ST_SYNCED || st == TDM_ST_LOCAL_ONLY ||
                   st == TDM_ST_OUT_OF_SYNC;
  e->s3.present = st == TDM_ST_SYNCED || st == TDM_ST_S3_ONLY ||
                  st == TDM_ST_OUT_OF_SYNC;
  if (e->loc.present) {
    snprintf(e->loc.md5, sizeof e->loc.md5, "%.32s", md5);
    e->loc.has_size = e->loc.has_mtime = 1;
    e->loc.size = size;
    e->loc.mtime = mtime;
  }
  if (st == TDM_ST_SYNCED || st == TDM_ST_S3_ONLY)
    snprintf(e->s3.md5, sizeof e->s3.md5, "%.32s", md5);
  if (st == TDM_ST_S3_ONLY) {
    e->s3.has_size = e->s3.has_mtime = 1;
    e->s3.size = size;
    e->s3.mtime = mtime;
  }
  e->s3_differs = st == TDM_ST_OUT_OF_SYNC;
}

/* Whether the stored statistics disagree with the entries. An absent
 * training_missing_count (files written by the Python system) is fine
 * while nothing is missing. */
static int compute_stale(const tdm_manifest *m) {
  tdm_manifest_stats s;
  json_t *st = json_object_get(m->root, "statistics"), *v;
  int k;
  if (!json_is_object(st)) return 1;
  tdm_manifest_statistics(m, &s);
  v = json_object_get(st, "training_images_count");
  if (!json_is_number(v) || json_number_value(v) != (double)s.images)
    return 1;
  v = json_object_get(st, "training_data_size_mb");
  if (!json_is_number(v) || json_number_value(v) != s.size_mb) return 1;
  for (k = 0; k < TDM_ST_COUNT; k++) {
    v = json_object_get(st, tdm_stat_count_key((tdm_status)k));
    if (!v && k == TDM_ST_MISSING && s.count[k] == 0) continue;
    if (!json_is_number(v) || json_number_value(v) != (double)s.count[k])
      return 1;
  }
  return 0;
}

static int copy_str(char *dst, size_t dstsz, const char *src,
                    const char *what, tdm_error *err) {
  size_t n = strlen(src);
  if (n >= dstsz)
    return tdm_error_set(err, "ENAMETOOLONG", "%s is too long", what);
  memcpy(dst, src, n + 1);
  return TDM_OK;
}

/* A new, empty document with the seed's keys in the seed's order. */
static json_t *new_document(const tdm_manifest *m) {
  json_t *root = json_object(), *st = json_object();
  int k;
  if (!root || !st) {
    json_decref(root);
    json_decref(st);
    return NULL;
  }
  json_object_set_new(root, "character_id", json_string(m->actor_id));
  json_object_set_new(root, "character_name", json_string(m->actor_name));
  json_object_set_new(root, "training_data", json_array());
  json_object_set_new(root, "training_data_updated", json_string(""));
  json_object_set_new(st, "training_images_count", json_integer(0));
  json_object_set_new(st, "training_data_size_mb", json_real(0));
  for (k = 0; k < TDM_ST_COUNT; k++)
    json_object_set_new(st, tdm_stat_count_key((tdm_status)k), json_integer(0));
  json_object_set_new(root, "statistics", st);
  return root;
}

/* Load (or start) the document of an opened, locked manifest. */
static int load_document(tdm_manifest *m, tdm_error *err) {
  char *text = NULL;
  size_t len, i;
  json_t *root;
  const char *name;
  tdm_error e2;
  if (tdm_manifest_slurp(m->path, &text, &len, &e2) != TDM_OK) {
    if (strcmp(e2.code, "ENOENT") != 0) {
      *err = e2;
      return TDM_ERR;
    }
    m->root = new_document(m);
    if (!m->root) return tdm_error_set(err, "ENOMEM", "out of memory");
    m->list = json_object_get(m->root, "training_data");
    m->existed = 0;
    m->updated_ts = -1;
    return TDM_OK;
  }
  if (tdm_manifest_parse(m->path, text, len, m->data_root, &root, err)
      != TDM_OK) {
    free(text);
    return TDM_ERR;
  }
  free(text);
  name = json_string_value(json_object_get(root, "character_name"));
  if (strcmp(name, m->actor_name) != 0) {
    tdm_error_set(err, "ENOACTOR", "%s belongs to actor '%s', not '%s'",
                  m->path, name, m->actor_name);
    json_decref(root);
    return TDM_ERR;
  }
  m->root = root;
  m->list = json_object_get(root, "training_data");
  m->n = m->cap = json_array_size(m->list);
  m->ents = calloc(m->cap ? m->cap : 1, sizeof *m->ents);
  if (!m->ents) return tdm_error_set(err, "ENOMEM", "out of memory");
  for (i = 0; i < m->n; i++) {
    infer_facts(m, i);
    if (tdm_manifest_canonical_local_path(m, i, err) != TDM_OK)
      return TDM_ERR;
  }
  m->existed = 1;
  m->updated_ts = tdm_parse_utc(json_string_value(
      json_object_get(root, "training_data_updated")));
  m->stale = compute_stale(m);
  return TDM_OK;
}

int tdm_manifest_open(tdm_manifest **out, const char *actor_name,
                      const tdm_manifest_opts *o, tdm_error *err) {
  tdm_manifest *m = calloc(1, sizeof *m);
  char dir[TDM_PATH_MAX];
  const char *root = o && o->data_root ? o->data_root : "data";
  int n;
  *out = NULL;
  if (!m) return tdm_error_set(err, "ENOMEM", "out of memory");
  m->lockfd = -1;
  if (tdm_actor_id(actor_name, m->actor_id, sizeof m->actor_id, err)
      != TDM_OK ||
      copy_str(m->actor_name, sizeof m->actor_name, actor_name,
               "actor name", err) != TDM_OK ||
      copy_str(m->data_root, sizeof m->data_root, root, "data_root", err)
      != TDM_OK ||
      copy_str(m->url_base, sizeof m->url_base,
               o && o->public_url_base ? o->public_url_base : "",
               "public_url_base", err) != TDM_OK ||
      copy_str(m->prefix, sizeof m->prefix, o && o->prefix ? o->prefix : "",
               "prefix", err) != TDM_OK)
    goto fail;
  if (tdm_layout_check_actor_dirs(root, actor_name, err) != TDM_OK)
    goto fail;
  if (tdm_layout_manifest_path(root, m->actor_id, m->path, sizeof m->path,
                               err) != TDM_OK ||
      tdm_layout_state_path(root, m->actor_id, m->statepath,
                            sizeof m->statepath, err) != TDM_OK)
    goto fail;
  n = snprintf(dir, sizeof dir, "%s/actor_manifests", root);
  if (n < 0 || (size_t)n >= sizeof dir ||
      snprintf(m->lockpath, sizeof m->lockpath, "%s.lock", m->path)
      >= (int)sizeof m->lockpath) {
    tdm_error_errno(err, ENAMETOOLONG, "manifest path under %s", root);
    goto fail;
  }
  /* Read-only: no lock at all, not even a shared one on an existing lock
   * file. Every save is an atomic rename of a complete, fsynced temp file
   * and load_document reads the file through one open descriptor, so a
   * reader sees one whole version (the one before or after a concurrent
   * save), never half of one; a shared lock would add nothing to that, and
   * it would make audits and API reads wait (then fail LOCKED) behind
   * writers that hold the exclusive lock for a whole pull. What is read
   * may be stale by the time it is used, which read-only callers accept:
   * they cannot save it. */
  if (o && o->read_only) {
    m->read_only = 1;
  } else if (tdm_lock_acquire(m->lockpath, o ? o->lock_timeout : 0,
                              &m->lockfd, err) != TDM_OK) {
    /* actor_manifests/ is made only when the lock file cannot be opened
     * for want of it (saves a mkdir per component on every open). */
    if (strcmp(err->code, "ENOENT") != 0 || tdm_mkdirs(dir, err) != TDM_OK ||
        tdm_lock_acquire(m->lockpath, o ? o->lock_timeout : 0, &m->lockfd,
                         err) != TDM_OK)
      goto fail;
  }
  if (load_document(m, err) != TDM_OK) goto fail;
  tdm_state_load(m);
  *out = m;
  return TDM_OK;
fail:
  tdm_manifest_close(m);
  return TDM_ERR;
}

void tdm_manifest_close(tdm_manifest *m) {
  if (!m) return;
  tdm_lock_release(m->lockfd);
  json_decref(m->root);
  free(m->ents);
  free(m);
}

