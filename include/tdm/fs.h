/*
 * tdm/fs.h -- file-system safety: confined names, atomic writes, listing.
 *
 * Every path tdm derives from untrusted text (a manifest, an S3 key, a
 * response.json, an HTTP request) is built from checked *names* joined
 * under the data root, never from a path taken as given.
 */
#ifndef TDM_FS_H
#define TDM_FS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define TDM_NAME_MAX 255

/* Check that `name` (of `len` bytes) is one safe path component: not empty,
 * not "." or "..", at most TDM_NAME_MAX bytes, no '/', '\\' or NUL, no
 * control characters. `what` names the thing in the error
 * ("filename", "actor name"). */
int tdm_check_name(const char *name, size_t len, const char *what,
                   tdm_error *err);

/* Check that a relative path (e.g. a manifest's local_path) has no NUL, is
 * not absolute and has no ".." component. */
int tdm_check_relpath(const char *path, size_t len, const char *what,
                      tdm_error *err);

/* Create directory `path` and its parents (mode 0777 & ~umask). */
int tdm_mkdirs(const char *path, tdm_error *err);

/* fsync the directory that contains `path`. */
int tdm_fsync_parent(const char *path, tdm_error *err);

/* Replace `path` atomically with `len` bytes of `data`: write a temp file
 * in the same directory, fsync it, rename it over `path`, fsync the
 * directory. A reader sees the old or the new content, never a mix; on any
 * failure the temp file is removed and `path` is untouched. */
int tdm_atomic_write(const char *path, const void *data, size_t len,
                     tdm_error *err);

/* write(2) all of `len` bytes, retrying on EINTR and short writes; 0, or
 * -1 with errno set. */
int tdm_write_all(int fd, const char *data, size_t len);

/* Make a unique temp-file name beside `path` (".NAME.tmp.PID.N") into
 * `out` (of `outsz` bytes). Temp names start with '.' so scans, which skip
 * hidden files, never take them for images. */
int tdm_temp_path(const char *path, char *out, size_t outsz, tdm_error *err);

/* Directory listing: calls `fn(name, ud)` for every entry of `dir` except
 * "." and "..", in no particular order; a non-zero return from `fn` stops
 * the walk and is returned. A missing directory is ENOENT. */
typedef int (*tdm_dir_fn)(const char *name, void *ud);
int tdm_listdir(const char *dir, tdm_dir_fn fn, void *ud, tdm_error *err);

/* Remove from directory `dir` the temp files (see tdm_temp_path) that a
 * process no longer running left behind: regular files named
 * ".NAME.tmp.PID.N" whose PID is not a live process (kill(PID, 0) says
 * ESRCH; this process's own are kept). `removed(name, ud)` (may be NULL)
 * is called for each one removed (non-zero stops the sweep). A missing
 * `dir` has none: TDM_OK. */
int tdm_sweep_temps(const char *dir, tdm_dir_fn removed, void *ud,
                    tdm_error *err);

#endif
