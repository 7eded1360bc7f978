/*
 * tdm/layout.h -- the one home of the seed's vocabulary: how an actor's
 * name gives its id, where its manifest and files live, what an image is
 * called, the S3 key of a file and its inverse, the public URL, the order
 * of entries and the names of statuses and statistics. Every layer (core,
 * bindings as tdm.core.layout, Lua policy) asks these functions; none
 * writes a rule of its own. docs/manifest.md states the rules.
 *
 * Pure functions (no I/O, no allocation except into a caller's tdm_buf),
 * except tdm_layout_check_actor_dirs, which lstat()s.
 */
#ifndef TDM_LAYOUT_H
#define TDM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"

/* Longest actor id ("0042"): at most 18 significant digits, so that the
 * id is also an integer in Lua and in JSON. */
#define TDM_ACTOR_ID_MAX 18
/* Fewest digits of an id: shorter ones are zero-padded ("42" -> "0042"). */
#define TDM_ACTOR_ID_PAD 4

/* Status values of an entry, in statistics order. */
typedef enum {
  TDM_ST_SYNCED, TDM_ST_LOCAL_ONLY, TDM_ST_S3_ONLY, TDM_ST_OUT_OF_SYNC,
  TDM_ST_MISSING, TDM_ST_COUNT
} tdm_status;

/* "synced", "local_only", ... ("?" out of range). */
const char *tdm_status_name(tdm_status st);
/* Status name -> tdm_status, or -1. */
int tdm_status_parse(const char *s);
/* The statistics key counting status `st` ("training_synced_count"...),
 * NULL out of range. The seed's six keys come first: images count, size,
 * then these in status order (missing last, the design's extension). */
const char *tdm_stat_count_key(tdm_status st);
#define TDM_STAT_IMAGES "training_images_count"
#define TDM_STAT_SIZE_MB "training_data_size_mb"

/* ---- actors ------------------------------------------------------------- */

/* The id of a run of decimal digits `digits` (`n` bytes): the number they
 * spell, written with at least TDM_ACTOR_ID_PAD digits ("42", "042",
 * "00042" -> "0042"; "12345" -> "12345"). One id per number, so the API's
 * integer, a name's digits and a manifest file always agree. "ENOACTOR"
 * when not all digits or more than TDM_ACTOR_ID_MAX significant ones.
 * `id` holds TDM_ACTOR_ID_MAX + 1 bytes. */
int tdm_layout_id_of_digits(const char *digits, size_t n, char *id,
                            size_t idsz, tdm_error *err);

/* Check an actor name ("0042_european_30_male": leading digits, "_", a
 * non-empty descriptor, one safe path component) and write its id. */
int tdm_actor_id(const char *actor_name, char *id, size_t idsz,
                 tdm_error *err);

/* The id of an integer actor number (>= 0). */
int tdm_layout_id_of_number(int64_t number, char *id, size_t idsz,
                            tdm_error *err);

/* "{data_root}/actor_manifests/{id}_manifest.json" into out. */
int tdm_layout_manifest_path(const char *data_root, const char *id,
                             char *out, size_t outsz, tdm_error *err);

/* The inverse of tdm_layout_manifest_path for a file name: the id of
 * "{digits}_manifest.json" into id (digits as an id: "00042" -> "0042"),
 * and the number of digits as written into *ndigits (may be NULL).
 * Returns 1, or 0 for any other name. */
int tdm_layout_manifest_id(const char *filename, char *id, size_t idsz,
                           size_t *ndigits);

/* The manifest's sidecar: "{data_root}/actor_manifests/.{id}_manifest.
 * state" (hidden: listings of manifests never take it for one). */
int tdm_layout_state_path(const char *data_root, const char *id, char *out,
                          size_t outsz, tdm_error *err);

/* "{data_root}/actors/{actor_name}/training_data" into out. */
int tdm_layout_actor_dir(const char *data_root, const char *actor_name,
                         char *out, size_t outsz, tdm_error *err);

/* Refuse an actor whose folder or training_data/ is not a real directory
 * under the data root (a symlink could send downloads outside it):
 * "EBADPATH" naming the path. Missing folders are fine (an actor known
 * only in S3). */
int tdm_layout_check_actor_dirs(const char *data_root, const char *actor_name,
                                tdm_error *err);

/* "{data_root}/actors/{actor_name}/training_data/{filename}" into out
 * (filename checked to be one safe component). */
int tdm_layout_file_path(const char *data_root, const char *actor_name,
                         const char *filename, char *out, size_t outsz,
                         tdm_error *err);

/* tdm_layout_file_path with a relative data root made absolute from the
 * current directory (leading "./" dropped): the API's local_path, built
 * at request time, never stored. */
int tdm_layout_abs_file_path(const char *data_root, const char *actor_name,
                             const char *filename, char *out, size_t outsz,
                             tdm_error *err);

/* The stored local_path: always the seed's relative form
 * "data/actors/{actor_name}/training_data/{filename}", whatever spelling
 * of the data root is configured, so the same directory reached two ways
 * gives the same bytes. */
int tdm_layout_local_path(const char *actor_name, const char *filename,
                          char *out, size_t outsz, tdm_error *err);

/* The filename a stored local_path names when it is one of the forms tdm
 * writes or wrote ("[...]/actors/{actor_name}/training_data/{filename}",
 * relative or absolute, any root): a pointer into `lp`, or NULL. */
const char *tdm_layout_local_path_file(const char *lp,
                                       const char *actor_name);

/* ---- images ------------------------------------------------------------- */

/* Whether `name` ends in an image extension (.jpg .jpeg .png .webp, any
 * case) and is not hidden. */
int tdm_is_image_name(const char *name);

/* The N of "..._N.ext", or -1 when the name has no such index. */
long tdm_layout_image_index(const char *filename);

/* "{actor_name}_{index}.{ext}" (the seed's image name) into out. */
int tdm_layout_image_name(const char *actor_name, long index,
                          const char *ext, char *out, size_t outsz,
                          tdm_error *err);

/* Whether `filename` names an image of another actor than `actor_id`:
 * it starts with {digits}_ whose id is not actor_id. Names without an
 * id prefix ("photo.jpg") belong to nobody else. */
int tdm_layout_foreign_file(const char *filename, const char *actor_id);

/* Order of entries (get_all_images, new entries' place): names with an
 * _N index first, by index, then by name. strcmp-like. */
int tdm_layout_entry_cmp(const char *a, const char *b);

/* ---- S3 ----------------------------------------------------------------- */

/* The key of a file: "{prefix}/{actor_name}/{filename}" (prefix with its
 * slashes trimmed; no prefix: "{actor_name}/{filename}"), appended. */
int tdm_layout_key(const char *prefix, const char *actor_name,
                   const char *filename, tdm_buf *out, tdm_error *err);

/* What a key under `prefix` is. */
typedef enum {
  TDM_KEY_FILE,       /* an image of an actor: actor and file set */
  TDM_KEY_NOT_IMAGE,  /* in a sound actor folder, not an image: actor set */
  TDM_KEY_BAD         /* outside any actor folder, or unsafe: reason set */
} tdm_key_kind;

/* The inverse of tdm_layout_key: split `key` into actor name and filename
 * (copied into actor/file, TDM_NAME_MAX + 1 bytes each), refusing what
 * cannot safely become a local path; `reason` (256 bytes) says why. */
tdm_key_kind tdm_layout_split_key(const char *prefix, const char *key,
                                  char *actor, char *file, char *reason,
                                  size_t reasonsz);

/* The public URL base of a bucket: "https://{bucket}.s3.{region}.
 * amazonaws.com" (the bucket's region, never the signer's). */
int tdm_layout_url_base(const char *bucket, const char *region, char *out,
                        size_t outsz, tdm_error *err);

/* The public URL of a file: "{base}/{key}", the key URI-encoded as S3
 * shows it (unreserved characters and the prefix's slashes kept). */
int tdm_layout_public_url(const char *base, const char *prefix,
                          const char *actor_name, const char *filename,
                          tdm_buf *out, tdm_error *err);

#endif
