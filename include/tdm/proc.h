/*
 * tdm/proc.h -- what the core knows about running processes: a run's
 * claims on work, and the CPUs it may use.
 */
#ifndef TDM_PROC_H
#define TDM_PROC_H

#include "error.h"

/* Claim the work that `path` stands for (e.g. "{manifest}.claim", an
 * actor's transfers) for this run: an exclusive flock on the file
 * (created 0644, never written, never removed), taken without waiting.
 * The claim belongs to the open file description, so a second claim in
 * the same process is refused too, and the kernel drops it when the
 * process dies, however it dies: no pid is recorded, nothing goes stale.
 * On TDM_OK *fd holds the claim until tdm_claim_release(*fd). "LOCKED"
 * when another run holds it (the message names its pid when /proc shows
 * it); other codes when the file cannot be opened. */
int tdm_claim_take(const char *path, int *fd, tdm_error *err);

/* Give up a claim taken by tdm_claim_take (fd < 0: nothing). */
void tdm_claim_release(int fd);

/* The CPUs this process may run on (its affinity mask, else the online
 * CPUs), at least 1. */
int tdm_cpu_count(void);

#endif
