/* tdm_manifest_save.c -- saving a manifest: statistics and
 * training_data_updated recomputed, the document and its sidecar written
 * atomically under the manifest's lock. The background saver
 * (tdm_manifest_saver.c) writes what tdm_manifest_prepare makes, too. */
#include <stdio.h>
#include <string.h>

#include "tdm_manifest_int.h"

/* Recompute statistics and training_data_updated in the document. */
static int refresh_invariants(tdm_manifest *m, double now) {
  tdm_manifest_stats s;
  json_t *st = json_object_get(m->root, "statistics");
  char date[40];
  int k, rc = 0;
  tdm_manifest_statistics(m, &s);
  if (!json_is_object(st)) {
    st = json_object();
    if (!st || json_object_set_new(m->root, "statistics", st) != 0)
      return -1;
  }
  rc |= json_object_set_new(st, TDM_STAT_IMAGES, json_integer(s.images));
  rc |= json_object_set_new(st, TDM_STAT_SIZE_MB, json_real(s.size_mb));
  for (k = 0; k < TDM_ST_COUNT; k++)
    rc |= json_object_set_new(st, tdm_stat_count_key((tdm_status)k),
                              json_integer(s.count[k]));
  tdm_format_utc(now, date, sizeof date);
  rc |= json_object_set_new(m->root, "training_data_updated",
                            json_string(date));
  return rc;
}

int tdm_manifest_encode(tdm_manifest *m, tdm_buf *out, tdm_error *err) {
  if (tdm_manifest_dirty(m) &&
      refresh_invariants(m, tdm_manifest_now()) != 0)
    return tdm_error_set(err, "ENOMEM", "out of memory");
  return tdm_json_write(m->root, out, err);
}

int tdm_manifest_check_writable(const tdm_manifest *m, tdm_error *err) {
  if (m->read_only)
    return tdm_error_set(err, "EROFS", "manifest %s was opened read-only",
                         m->path);
  if (m->lockfd < 0)
    return tdm_error_set(err, "EINVAL", "manifest %s is not locked",
                         m->path);
  return TDM_OK;
}

int tdm_manifest_prepare(tdm_manifest *m, double now, tdm_buf *doc,
                         int *has_doc, tdm_buf *state, int *has_state,
                         tdm_error *err) {
  *has_doc = *has_state = 0;
  if (tdm_manifest_dirty(m)) {
    if (refresh_invariants(m, now) != 0)
      return tdm_error_set(err, "ENOMEM", "out of memory");
    if (tdm_json_write(m->root, doc, err) != TDM_OK) return TDM_ERR;
    *has_doc = 1;
  }
  if ((*has_doc || m->state_dirty) && m->n > 0) {
    if (tdm_state_encode(m, now, state, err) != TDM_OK) return TDM_ERR;
    *has_state = 1;
  }
  return TDM_OK;
}

int tdm_manifest_write_prepared(const char *path, const tdm_buf *doc,
                                int has_doc, const char *statepath,
                                const tdm_buf *state, int has_state,
                                tdm_error *err) {
  tdm_error ignored;
  if (has_doc && tdm_atomic_write(path, doc->data ? doc->data : "",
                                  doc->len, err) != TDM_OK)
    return TDM_ERR;
  if (has_state)
    (void)tdm_atomic_write(statepath, state->data ? state->data : "",
                           state->len, &ignored);
  return TDM_OK;
}

void tdm_manifest_mark_saved(tdm_manifest *m, double now, int has_doc,
                             int has_state) {
  if (has_doc) {
    m->changed = m->stale = 0;
    m->existed = 1;
    m->updated_ts = now;
  }
  if (has_state) {
    m->state_dirty = 0;
    m->state_ts = now;
  }
}

int tdm_manifest_save(tdm_manifest *m, int *written, tdm_error *err) {
  tdm_buf doc, state;
  double now = tdm_manifest_now();
  int has_doc, has_state, rc;
  *written = 0;
  if (tdm_manifest_check_writable(m, err) != TDM_OK) return TDM_ERR;
  tdm_buf_init(&doc, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  tdm_buf_init(&state, (size_t)TDM_MANIFEST_MAX_BYTES);
  rc = tdm_manifest_prepare(m, now, &doc, &has_doc, &state, &has_state,
                            err);
  if (rc == TDM_OK)
    rc = tdm_manifest_write_prepared(m->path, &doc, has_doc, m->statepath,
                                     &state, has_state, err);
  tdm_buf_free(&doc);
  tdm_buf_free(&state);
  if (rc != TDM_OK) return TDM_ERR;
  tdm_manifest_mark_saved(m, now, has_doc, has_state);
  *written = has_doc;
  return TDM_OK;
}
