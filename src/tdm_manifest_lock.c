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
#include <time.h>
#include <unistd.h>

#include "tdm.h"

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pid written by the holder, or 0 when unreadable. */
static long holder_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

int tdm_lock_acquire(const char *lockpath, double timeout, int *fdp,
                     tdm_error *err) {
  char pid[32];
  double start = mono_now();
  unsigned delay_ms = 1;
  int n, fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tdm_error_errno(err, errno, "lock %s", lockpath);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      int saved = errno;
      close(fd);
      return tdm_error_errno(err, saved, "lock %s", lockpath);
    }
    if (mono_now() - start >= timeout || tdm_interrupted()) {
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
  /* Best effort: the pid only serves the LOCKED message of others. It is
   * written in a fixed width over whatever was there, never truncated
   * (ext4 flushes a file truncated to zero on close, which would cost a
   * disk write per open), and only when it differs. */
  n = snprintf(pid, sizeof pid, "%-20ld\n", (long)getpid());
  if (n > 0) {
    char cur[32];
    ssize_t got = pread(fd, cur, sizeof cur, 0);
    if (got != n || memcmp(cur, pid, (size_t)n) != 0) {
      if (pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the LOCKED message of others loses the pid */
      }
    }
  }
  *fdp = fd;
  return TDM_OK;
}

void tdm_lock_release(int fd) {
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
}
