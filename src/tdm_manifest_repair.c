/* tdm_manifest_repair.c -- audit --fix's one repair of a manifest that
 * names another actor than its file: only when the intent is unambiguous
 * (see tdm_manifest_repair_identity in include/tdm/manifest.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdm_manifest_int.h"

/* Decide the repair of `root` (the document of actor_name's manifest,
 * whose id is `id`): sets *key and *val to the one field to rewrite, or
 * returns a reason why nothing can be decided. */
static const char *decide(json_t *root, const char *actor_name,
                          const char *id, const char **key,
                          const char **val) {
  const char *cid = json_string_value(json_object_get(root, "character_id"));
  const char *cname = json_string_value(json_object_get(root,
                                                        "character_name"));
  char cidn[TDM_ACTOR_ID_MAX + 1], nid[TDM_ACTOR_ID_MAX + 1];
  json_t *list = json_object_get(root, "training_data"), *e;
  size_t i;
  tdm_error err;
  int id_ok, name_ok;
  if (!cid || !cname || !json_is_array(list))
    return "character_id, character_name or training_data missing";
  id_ok = tdm_layout_id_of_digits(cid, strlen(cid), cidn, sizeof cidn,
                                  &err) == TDM_OK && strcmp(cidn, id) == 0;
  name_ok = strcmp(cname, actor_name) == 0;
  if (id_ok && name_ok) return "nothing to repair";
  if (!id_ok && !name_ok)
    return "both character_id and character_name name another actor";
  if (!id_ok) {                       /* the name is right: the id follows */
    *key = "character_id";
    *val = id;
    return NULL;
  }
  /* the id is right, the name another actor's: only when no entry is
   * named for that other actor */
  if (tdm_actor_id(cname, nid, sizeof nid, &err) == TDM_OK &&
      strcmp(nid, id) == 0)
    return "character_name names another folder of the same id";
  json_array_foreach(list, i, e) {
    const char *fn = json_string_value(json_object_get(e, "filename"));
    if (fn && tdm_layout_foreign_file(fn, id))
      return "an entry is named for another actor";
  }
  *key = "character_name";
  *val = actor_name;
  return NULL;
}

int tdm_manifest_repair_identity(const char *actor_name,
                                 const tdm_manifest_opts *o, int *repaired,
                                 tdm_error *err) {
  const char *data_root = o && o->data_root ? o->data_root : "data";
  char id[TDM_ACTOR_ID_MAX + 1], path[TDM_PATH_MAX], lockpath[TDM_PATH_MAX];
  char *text = NULL;
  size_t len;
  json_t *root = NULL, *check = NULL;
  json_error_t je;
  const char *key = NULL, *val = NULL, *why;
  tdm_buf b;
  int fd = -1, rc = TDM_ERR;
  *repaired = 0;
  tdm_buf_init(&b, (size_t)TDM_MANIFEST_MAX_BYTES * 2);
  if (tdm_actor_id(actor_name, id, sizeof id, err) != TDM_OK ||
      tdm_layout_manifest_path(data_root, id, path, sizeof path, err)
      != TDM_OK)
    return TDM_ERR;
  if (snprintf(lockpath, sizeof lockpath, "%s.lock", path)
      >= (int)sizeof lockpath)
    return tdm_error_set(err, "ENAMETOOLONG", "lock path of %s", path);
  if (tdm_lock_acquire(lockpath, o ? o->lock_timeout : 0, &fd, err)
      != TDM_OK)
    return TDM_ERR;
  if (tdm_manifest_slurp(path, &text, &len, err) != TDM_OK) goto out;
  root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!root || !json_is_object(root)) {
    tdm_error_set(err, "BADMANIFEST", "%s: does not parse; not repaired",
                  path);
    goto out;
  }
  if ((why = decide(root, actor_name, id, &key, &val)) != NULL) {
    tdm_error_set(err, "BADMANIFEST", "%s: identity not repaired: %s",
                  path, why);
    goto out;
  }
  /* jansson replaces a key's value in place: the key order is kept */
  if (json_object_set_new(root, key, json_string(val)) != 0 ||
      tdm_json_write(root, &b, err) != TDM_OK)
    goto out;
  /* the result must be a valid manifest of this actor, or nothing is
   * written */
  if (tdm_manifest_parse(path, b.data, b.len, data_root, &check, err)
      != TDM_OK)
    goto out;
  if (tdm_atomic_write(path, b.data, b.len, err) != TDM_OK) goto out;
  *repaired = 1;
  rc = TDM_OK;
out:
  json_decref(check);
  json_decref(root);
  free(text);
  tdm_buf_free(&b);
  tdm_lock_release(fd);
  return rc;
}
