/* tdm_proc.c -- claims on work (flock held for a run) and the CPU count. */
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>

#include "tdm.h"

/* A claim is the manifest lock's flock taken with no wait: one mechanism
 * for both (tdm_lock_acquire: open file description semantics, the
 * holder's pid from /proc/locks in the message, the file never removed). */
int tdm_claim_take(const char *path, int *fd, tdm_error *err) {
  *fd = -1;
  return tdm_lock_acquire(path, 0.0, fd, err);
}

void tdm_claim_release(int fd) { tdm_lock_release(fd); }

int tdm_cpu_count(void) {
  cpu_set_t set;
  long n;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
