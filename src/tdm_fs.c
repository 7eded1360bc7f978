/* tdm_fs.c -- confined names, atomic writes, directory listing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tdm.h"

int tdm_check_name(const char *name, size_t len, const char *what,
                   tdm_error *err) {
  size_t i;
  if (len == 0) return tdm_error_set(err, "EBADNAME", "%s is empty", what);
  if (len > TDM_NAME_MAX)
    return tdm_error_set(err, "EBADNAME", "%s is longer than %d bytes",
                         what, TDM_NAME_MAX);
  if ((len == 1 && name[0] == '.') ||
      (len == 2 && name[0] == '.' && name[1] == '.'))
    return tdm_error_set(err, "EBADNAME", "%s '%.*s' is not a file name",
                         what, (int)len, name);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '\0')
      return tdm_error_set(err, "EBADNAME", "%s contains a NUL byte", what);
    if (c == '/' || c == '\\')
      return tdm_error_set(err, "EBADNAME",
                           "%s '%.*s' contains a path separator", what,
                           (int)len, name);
    if (c < 0x20 || c == 0x7f)
      return tdm_error_set(err, "EBADNAME",
                           "%s contains a control character", what);
  }
  return TDM_OK;
}

int tdm_check_relpath(const char *path, size_t len, const char *what,
                      tdm_error *err) {
  size_t i, start = 0;
  if (len == 0) return tdm_error_set(err, "EBADPATH", "%s is empty", what);
  if (memchr(path, '\0', len))
    return tdm_error_set(err, "EBADPATH", "%s contains a NUL byte", what);
  if (path[0] == '/' || path[0] == '\\')
    return tdm_error_set(err, "EBADPATH",
                         "%s '%.*s' is absolute; paths must stay under the "
                         "data root", what, (int)len, path);
  for (i = 0; i <= len; i++) {
    if (i == len || path[i] == '/' || path[i] == '\\') {
      if (i - start == 2 && path[start] == '.' && path[start + 1] == '.')
        return tdm_error_set(err, "EBADPATH",
                             "%s '%.*s' contains '..'; paths must stay "
                             "under the data root", what, (int)len, path);
      start = i + 1;
    }
  }
  return TDM_OK;
}

int tdm_mkdirs(const char *path, tdm_error *err) {
  char buf[4096];
  size_t i, n = strlen(path);
  if (n == 0) return TDM_OK;
  if (n >= sizeof buf)
    return tdm_error_errno(err, ENAMETOOLONG, "mkdir %s", path);
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char saved = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return tdm_error_errno(err, errno, "mkdir %s", buf);
      buf[i] = saved;
    }
  }
  return TDM_OK;
}

int tdm_fsync_parent(const char *path, tdm_error *err) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n;
  int fd, rc = TDM_OK;
  if (!slash) {
    dir[0] = '.';
    dir[1] = '\0';
  } else {
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof dir)
      return tdm_error_errno(err, ENAMETOOLONG, "fsync dir of %s", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return tdm_error_errno(err, errno, "open directory %s", dir);
  if (fsync(fd) != 0 && errno != EINVAL)
    rc = tdm_error_errno(err, errno, "fsync directory %s", dir);
  close(fd);
  return rc;
}

int tdm_temp_path(const char *path, char *out, size_t outsz,
                  tdm_error *err) {
  static unsigned counter;
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  const char *base = path + dirlen;
  int n = snprintf(out, outsz, "%.*s.%s.tmp.%ld.%u", (int)dirlen, path,
                   base, (long)getpid(), __atomic_add_fetch(&counter, 1,
                   __ATOMIC_RELAXED));
  if (n < 0 || (size_t)n >= outsz)
    return tdm_error_errno(err, ENAMETOOLONG, "temp file for %s", path);
  return TDM_OK;
}

/* The PID in a temp-file name ".NAME.tmp.PID.N" (tdm_temp_path's form,
 * NAME not empty), or 0 when `name` is not one. */
static long temp_pid(const char *name) {
  size_t len = strlen(name), i = len, pid_end;
  long pid = 0;
  if (name[0] != '.') return 0;
  while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') i--;
  if (i == len || i == 0 || name[i - 1] != '.') return 0;
  pid_end = --i;
  while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') i--;
  if (i == pid_end || pid_end - i > 9 || i < 7 ||
      memcmp(name + i - 5, ".tmp.", 5) != 0)
    return 0;
  for (; i < pid_end; i++) pid = pid * 10 + (name[i] - '0');
  return pid;
}

int tdm_sweep_temps(const char *dir, tdm_dir_fn removed, void *ud,
                    tdm_error *err) {
  struct dirent *de;
  DIR *d = opendir(dir);
  long self = (long)getpid();
  if (!d) {
    if (errno == ENOENT) return TDM_OK;
    return tdm_error_errno(err, errno, "sweep temp files in %s", dir);
  }
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    long pid = temp_pid(de->d_name);
    /* EPERM: alive, someone else's; only ESRCH says nobody writes it */
    if (pid <= 0 || pid == self || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0 && removed &&
        removed(de->d_name, ud) != 0)
      break;
  }
  closedir(d);
  return TDM_OK;
}

int tdm_write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

int tdm_atomic_write(const char *path, const void *data, size_t len,
                     tdm_error *err) {
  char tmp[4096];
  int fd, saved;
  if (tdm_temp_path(path, tmp, sizeof tmp, err) != TDM_OK) return TDM_ERR;
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return tdm_error_errno(err, errno, "write %s", path);
  if (tdm_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
    saved = errno;
    close(fd);
    unlink(tmp);
    return tdm_error_errno(err, saved, "write %s", path);
  }
  if (close(fd) != 0) {
    saved = errno;
    unlink(tmp);
    return tdm_error_errno(err, saved, "write %s", path);
  }
  if (rename(tmp, path) != 0) {
    saved = errno;
    unlink(tmp);
    return tdm_error_errno(err, saved, "rename into %s", path);
  }
  return tdm_fsync_parent(path, err);
}

int tdm_listdir(const char *dir, tdm_dir_fn fn, void *ud, tdm_error *err) {
  struct dirent *de;
  int rc = 0;
  DIR *d = opendir(dir);
  if (!d) return tdm_error_errno(err, errno, "list %s", dir);
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    rc = fn(de->d_name, ud);
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}
