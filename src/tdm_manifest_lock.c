/* tdm_manifest_lock.c -- exclusive flock on a lock file beside a manifest.
 *
 * flock, not fcntl locks: fcntl locks belong to the process, so two threads
 * of the HTTP API would both "hold" one; flock locks belong to the open
 * file description, so two open()s exclude each other even in one
 * process. The lock file is never removed (removing it would let a waiter
 * lock an unlinked inode while a newcomer locks a fresh one). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "tdm.h"

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pid holding a flock on the file of `fd`, from /proc/locks (lines
 * "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; waiters' lines
 * have "->" and are skipped), or 0 when not found (no /proc, another pid
 * namespace). Nothing is written into the lock file for this: a holder
 * that wrote its pid there would rewrite the file on every open by a new
 * process, so even a no-op run would change the data root. */
static long holder_pid(int fd) {
  struct stat st;
  char line[256], want[96];
  long pid = 0;
  FILE *f;
  if (fstat(fd, &st) != 0) return 0;
  snprintf(want, sizeof want, " %02x:%02x:%llu ", major(st.st_dev),
           minor(st.st_dev), (unsigned long long)st.st_ino);
  f = fopen("/proc/locks", "re");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) {
    char *p;
    if (!strstr(line, "FLOCK") || strstr(line, "->")) continue;
    p = strstr(line, want);
    if (!p) continue;
    /* the pid is the field just before the device:inode */
    while (p > line && p[-1] == ' ') p--;
    while (p > line && p[-1] >= '0' && p[-1] <= '9') p--;
    pid = strtol(p, NULL, 10);
    break;
  }
  fclose(f);
  return pid;
}

int tdm_lock_acquire(const char *lockpath, double timeout, int *fdp,
                     tdm_error *err) {
  double start = mono_now();
  unsigned delay_ms = 1;
  int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tdm_error_errno(err, errno, "lock %s", lockpath);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      int saved = errno;
      close(fd);
      return tdm_error_errno(err, saved, "lock %s", lockpath);
    }
    /* Not cut short by an interrupt: once interrupted, a run opens
     * manifests only to record transfers that landed, which must not be
     * lost; a second SIGINT ends the process. */
    if (mono_now() - start >= timeout) {
      long holder = holder_pid(fd);
      close(fd);
      if (holder > 0)
        return tdm_error_set(err, "LOCKED",
                             "%s is locked by pid %ld (waited %.1f s)",
                             lockpath, holder, timeout);
      return tdm_error_set(err, "LOCKED",
                           "%s is locked by another process (waited %.1f s)",
                           lockpath, timeout);
    }
    {
      struct timespec ts;
      ts.tv_sec = 0;
      ts.tv_nsec = (long)delay_ms * 1000000L;
      nanosleep(&ts, NULL);
      if (delay_ms < 10) delay_ms += 1;
    }
  }
  /* No pid is written (see holder_pid). */
  *fdp = fd;
  return TDM_OK;
}

void tdm_lock_release(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}
