/* tdm_layout.c -- the seed's vocabulary in one place: actor ids, paths,
 * image names, S3 keys and URLs, entry order, status and statistics
 * names (see include/tdm/layout.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tdm/layout.h"
#include "tdm/fs.h"
#include "tdm/sigv4.h"

static const char *const status_names[TDM_ST_COUNT] = {
  "synced", "local_only", "s3_only", "out_of_sync", "missing"};

static const char *const stat_count_keys[TDM_ST_COUNT] = {
  "training_synced_count", "training_local_only_count",
  "training_s3_only_count", "training_out_of_sync_count",
  "training_missing_count"};

const char *tdm_status_name(tdm_status st) {
  return (unsigned)st < TDM_ST_COUNT ? status_names[st] : "?";
}

int tdm_status_parse(const char *s) {
  int i;
  for (i = 0; s && i < TDM_ST_COUNT; i++)
    if (strcmp(s, status_names[i]) == 0) return i;
  return -1;
}

const char *tdm_stat_count_key(tdm_status st) {
  return (unsigned)st < TDM_ST_COUNT ? stat_count_keys[st] : NULL;
}

/* snprintf into out, ENAMETOOLONG naming `what` when it does not fit. */
static int fit(int n, size_t outsz, const char *what, tdm_error *err) {
  if (n < 0 || (size_t)n >= outsz)
    return tdm_error_errno(err, ENAMETOOLONG, "%s", what);
  return TDM_OK;
}

/* ---- actors ------------------------------------------------------------- */

int tdm_layout_id_of_digits(const char *digits, size_t n, char *id,
                            size_t idsz, tdm_error *err) {
  size_t i, z = 0, sig;
  for (i = 0; i < n; i++)
    if (!isdigit((unsigned char)digits[i]))
      return tdm_error_set(err, "ENOACTOR", "actor id '%.*s' is not a "
                           "number", (int)(n > 64 ? 64 : n), digits);
  if (n == 0)
    return tdm_error_set(err, "ENOACTOR", "empty actor id");
  while (z < n - 1 && digits[z] == '0') z++;   /* "0000" keeps one 0 */
  sig = n - z;
  if (sig > TDM_ACTOR_ID_MAX)
    return tdm_error_set(err, "ENOACTOR", "actor id '%.*s' has more than "
                         "%d digits", (int)(n > 64 ? 64 : n), digits,
                         TDM_ACTOR_ID_MAX);
  return fit(snprintf(id, idsz, "%.*s%.*s",
                      sig < TDM_ACTOR_ID_PAD ? (int)(TDM_ACTOR_ID_PAD - sig)
                                             : 0, "0000",
                      (int)sig, digits + z), idsz, "actor id", err);
}

int tdm_actor_id(const char *actor_name, char *id, size_t idsz,
                 tdm_error *err) {
  size_t nd = 0, len = strlen(actor_name);
  if (tdm_check_name(actor_name, len, "actor name", err) != TDM_OK)
    return TDM_ERR;
  while (isdigit((unsigned char)actor_name[nd])) nd++;
  if (nd == 0 || actor_name[nd] != '_' || actor_name[nd + 1] == '\0')
    return tdm_error_set(err, "ENOACTOR", "actor name '%s' is not "
                         "{actor_id}_{descriptor}", actor_name);
  return tdm_layout_id_of_digits(actor_name, nd, id, idsz, err);
}

int tdm_layout_id_of_number(int64_t number, char *id, size_t idsz,
                            tdm_error *err) {
  char digits[32];
  if (number < 0)
    return tdm_error_set(err, "ENOACTOR", "actor id %" PRId64 " is "
                         "negative", number);
  snprintf(digits, sizeof digits, "%" PRId64, number);
  return tdm_layout_id_of_digits(digits, strlen(digits), id, idsz, err);
}

int tdm_layout_manifest_path(const char *data_root, const char *id,
                             char *out, size_t outsz, tdm_error *err) {
  return fit(snprintf(out, outsz, "%s/actor_manifests/%s_manifest.json",
                      data_root, id), outsz, "manifest path", err);
}

int tdm_layout_manifest_id(const char *filename, char *id, size_t idsz,
                           size_t *ndigits) {
  size_t nd = 0;
  tdm_error err;
  while (isdigit((unsigned char)filename[nd])) nd++;
  if (nd == 0 || strcmp(filename + nd, "_manifest.json") != 0 ||
      tdm_layout_id_of_digits(filename, nd, id, idsz, &err) != TDM_OK)
    return 0;
  if (ndigits) *ndigits = nd;
  return 1;
}

int tdm_layout_state_path(const char *data_root, const char *id, char *out,
                          size_t outsz, tdm_error *err) {
  return fit(snprintf(out, outsz, "%s/actor_manifests/.%s_manifest.state",
                      data_root, id), outsz, "manifest state path", err);
}

int tdm_layout_actor_dir(const char *data_root, const char *actor_name,
                         char *out, size_t outsz, tdm_error *err) {
  return fit(snprintf(out, outsz, "%s/actors/%s/training_data", data_root,
                      actor_name), outsz, "training_data path", err);
}

int tdm_layout_check_actor_dirs(const char *data_root, const char *actor_name,
                                tdm_error *err) {
  char path[8192];
  struct stat st;
  int k;
  for (k = 0; k < 2; k++) {
    if (fit(snprintf(path, sizeof path, "%s/actors/%s%s", data_root,
                     actor_name, k ? "/training_data" : ""), sizeof path,
            "actor folder", err) != TDM_OK)
      return TDM_ERR;
    if (lstat(path, &st) != 0) {
      if (errno == ENOENT) return TDM_OK;
      return tdm_error_errno(err, errno, "stat %s", path);
    }
    if (S_ISLNK(st.st_mode))
      return tdm_error_set(err, "EBADPATH", "%s is a symlink; refused (files "
                           "must stay under the data root)", path);
    if (!S_ISDIR(st.st_mode))
      return tdm_error_set(err, "EBADPATH", "%s is not a directory", path);
  }
  return TDM_OK;
}

int tdm_layout_file_path(const char *data_root, const char *actor_name,
                         const char *filename, char *out, size_t outsz,
                         tdm_error *err) {
  if (tdm_check_name(filename, strlen(filename), "filename", err) != TDM_OK)
    return TDM_ERR;
  return fit(snprintf(out, outsz, "%s/actors/%s/training_data/%s",
                      data_root, actor_name, filename), outsz, filename,
             err);
}

int tdm_layout_abs_file_path(const char *data_root, const char *actor_name,
                             const char *filename, char *out, size_t outsz,
                             tdm_error *err) {
  char cwd[4096], root[8192];
  if (data_root[0] == '/')
    return tdm_layout_file_path(data_root, actor_name, filename, out, outsz,
                                err);
  if (!getcwd(cwd, sizeof cwd))
    return tdm_error_errno(err, errno, "current directory");
  while (data_root[0] == '.' && data_root[1] == '/') data_root += 2;
  if (strcmp(data_root, ".") == 0) data_root = "";
  if (fit(snprintf(root, sizeof root, "%s%s%s", cwd,
                   strcmp(cwd, "/") == 0 || !*data_root ? "" : "/",
                   data_root), sizeof root, "data root", err) != TDM_OK)
    return TDM_ERR;
  return tdm_layout_file_path(root, actor_name, filename, out, outsz, err);
}

int tdm_layout_local_path(const char *actor_name, const char *filename,
                          char *out, size_t outsz, tdm_error *err) {
  return tdm_layout_file_path("data", actor_name, filename, out, outsz,
                              err);
}

const char *tdm_layout_local_path_file(const char *lp,
                                       const char *actor_name) {
  static const char tail[] = "/training_data/";
  size_t an = strlen(actor_name), ln = strlen(lp), k;
  /* find "actors/{actor_name}/training_data/" at the start or after '/' */
  for (k = 0; k + 7 + an + sizeof tail - 1 < ln; k++) {
    const char *p = lp + k;
    if ((k > 0 && lp[k - 1] != '/') || strncmp(p, "actors/", 7) != 0 ||
        strncmp(p + 7, actor_name, an) != 0 ||
        strncmp(p + 7 + an, tail, sizeof tail - 1) != 0)
      continue;
    p += 7 + an + sizeof tail - 1;
    return strchr(p, '/') ? NULL : p;
  }
  return NULL;
}

/* ---- images ------------------------------------------------------------- */

int tdm_is_image_name(const char *name) {
  static const char *const exts[] = {".jpg", ".jpeg", ".png", ".webp", NULL};
  size_t n = strlen(name), k;
  int i;
  if (n == 0 || name[0] == '.') return 0;
  for (i = 0; exts[i]; i++) {
    k = strlen(exts[i]);
    if (n > k && strcasecmp(name + n - k, exts[i]) == 0) return 1;
  }
  return 0;
}

long tdm_layout_image_index(const char *fn) {
  const char *dot = strrchr(fn, '.'), *p;
  long v = 0, mul = 1;
  if (!dot || dot == fn) return -1;
  for (p = dot - 1; p > fn && isdigit((unsigned char)*p); p--) {
    if (mul > 100000000L) return -1;
    v += (*p - '0') * mul;
    mul *= 10;
  }
  if (p == dot - 1 || *p != '_') return -1;
  return v;
}

int tdm_layout_image_name(const char *actor_name, long index,
                          const char *ext, char *out, size_t outsz,
                          tdm_error *err) {
  if (index < 0)
    return tdm_error_set(err, "EINVAL", "image index %ld is negative",
                         index);
  if (fit(snprintf(out, outsz, "%s_%ld.%s", actor_name, index, ext), outsz,
          "image name", err) != TDM_OK ||
      tdm_check_name(out, strlen(out), "image name", err) != TDM_OK)
    return TDM_ERR;
  if (!tdm_is_image_name(out))
    return tdm_error_set(err, "EBADNAME", "'%s' is not an image name "
                         "(.jpg .jpeg .png .webp)", out);
  return TDM_OK;
}

int tdm_layout_foreign_file(const char *filename, const char *actor_id) {
  char id[TDM_ACTOR_ID_MAX + 1];
  size_t nd = 0;
  tdm_error err;
  while (isdigit((unsigned char)filename[nd])) nd++;
  if (nd == 0 || filename[nd] != '_') return 0;
  if (tdm_layout_id_of_digits(filename, nd, id, sizeof id, &err) != TDM_OK)
    return 1;                   /* an id no actor can have */
  return strcmp(id, actor_id) != 0;
}

int tdm_layout_entry_cmp(const char *a, const char *b) {
  long ia = tdm_layout_image_index(a), ib = tdm_layout_image_index(b);
  if ((ia >= 0) != (ib >= 0)) return ia >= 0 ? -1 : 1;
  if (ia != ib) return ia < ib ? -1 : 1;
  return strcmp(a, b);
}

/* ---- S3 ----------------------------------------------------------------- */

/* The prefix without leading/trailing slashes: start and length. */
static const char *trim_prefix(const char *prefix, size_t *len) {
  size_t n;
  if (!prefix) prefix = "";
  while (*prefix == '/') prefix++;
  n = strlen(prefix);
  while (n > 0 && prefix[n - 1] == '/') n--;
  *len = n;
  return prefix;
}

int tdm_layout_key(const char *prefix, const char *actor_name,
                   const char *filename, tdm_buf *out, tdm_error *err) {
  size_t pn;
  const char *p = trim_prefix(prefix, &pn);
  if (pn > 0 && (tdm_buf_append(out, p, pn, err) != TDM_OK ||
                 tdm_buf_appendc(out, '/', err) != TDM_OK))
    return TDM_ERR;
  return tdm_buf_printf(out, err, "%s/%s", actor_name, filename);
}

/* Copy `n` bytes of `s` into a TDM_NAME_MAX + 1 buffer (n checked). */
static void copy_name(char *dst, const char *s, size_t n) {
  if (n > TDM_NAME_MAX) n = TDM_NAME_MAX;
  memcpy(dst, s, n);
  dst[n] = '\0';
}

tdm_key_kind tdm_layout_split_key(const char *prefix, const char *key,
                                  char *actor, char *file, char *reason,
                                  size_t reasonsz) {
  size_t pn, an;
  const char *p = trim_prefix(prefix, &pn), *rest = key, *slash;
  char id[TDM_ACTOR_ID_MAX + 1];
  tdm_error err;
  actor[0] = file[0] = reason[0] = '\0';
  if (pn > 0) {
    if (strncmp(key, p, pn) != 0 || key[pn] != '/') {
      snprintf(reason, reasonsz, "outside the prefix '%.*s'", (int)pn, p);
      return TDM_KEY_BAD;
    }
    rest = key + pn + 1;
  }
  slash = strchr(rest, '/');
  if (!slash) {
    snprintf(reason, reasonsz, "not inside an actor folder");
    return TDM_KEY_BAD;
  }
  an = (size_t)(slash - rest);
  if (an == 0 || slash[1] == '\0' || strchr(slash + 1, '/')) {
    snprintf(reason, reasonsz, "not {actor_name}/{filename} (nested or "
             "empty part)");
    return TDM_KEY_BAD;
  }
  if (an > TDM_NAME_MAX) {
    snprintf(reason, reasonsz, "actor name is longer than %d bytes",
             TDM_NAME_MAX);
    return TDM_KEY_BAD;
  }
  copy_name(actor, rest, an);
  if (tdm_actor_id(actor, id, sizeof id, &err) != TDM_OK) {
    snprintf(reason, reasonsz, "%s", err.message);
    actor[0] = '\0';
    return TDM_KEY_BAD;
  }
  if (tdm_check_name(slash + 1, strlen(slash + 1), "file name", &err)
      != TDM_OK) {
    snprintf(reason, reasonsz, "%s", err.message);
    actor[0] = '\0';
    return TDM_KEY_BAD;
  }
  if (!tdm_is_image_name(slash + 1)) {
    snprintf(reason, reasonsz, "not an image");
    return TDM_KEY_NOT_IMAGE;
  }
  copy_name(file, slash + 1, strlen(slash + 1));
  return TDM_KEY_FILE;
}

int tdm_layout_url_base(const char *bucket, const char *region, char *out,
                        size_t outsz, tdm_error *err) {
  if (!bucket || !*bucket || !region || !*region)
    return tdm_error_set(err, "EINVAL", "public URL base needs a bucket "
                         "and its region");
  return fit(snprintf(out, outsz, "https://%s.s3.%s.amazonaws.com", bucket,
                      region), outsz, "public URL base", err);
}

int tdm_layout_public_url(const char *base, const char *prefix,
                          const char *actor_name, const char *filename,
                          tdm_buf *out, tdm_error *err) {
  size_t pn, bn = strlen(base);
  const char *p = trim_prefix(prefix, &pn);
  while (bn > 0 && base[bn - 1] == '/') bn--;
  if (tdm_buf_append(out, base, bn, err) != TDM_OK ||
      tdm_buf_appendc(out, '/', err) != TDM_OK)
    return TDM_ERR;
  if (pn > 0 && (tdm_uri_encode(p, pn, 1, out, err) != TDM_OK ||
                 tdm_buf_appendc(out, '/', err) != TDM_OK))
    return TDM_ERR;
  if (tdm_uri_encode(actor_name, strlen(actor_name), 0, out, err) !=
      TDM_OK ||
      tdm_buf_appendc(out, '/', err) != TDM_OK)
    return TDM_ERR;
  return tdm_uri_encode(filename, strlen(filename), 0, out, err);
}
