/*
 * tdm/interrupt.h -- a process-wide "stop soon" flag.
 *
 * A host's SIGINT/SIGTERM handler calls tdm_interrupt_request(); long
 * operations (transfer batches, scans) poll tdm_interrupted() between
 * units of work, finish or roll back what is in flight, and return what
 * completed. Async-signal-safe.
 */
#ifndef TDM_INTERRUPT_H
#define TDM_INTERRUPT_H

void tdm_interrupt_request(void);
int tdm_interrupted(void);
void tdm_interrupt_reset(void);

#endif
