/* tdm_interrupt.c -- the "stop soon" flag (see include/tdm/interrupt.h). */
#include <signal.h>

#include "tdm.h"

static volatile sig_atomic_t interrupted;

void tdm_interrupt_request(void) { interrupted = 1; }
int tdm_interrupted(void) { return interrupted != 0; }
void tdm_interrupt_reset(void) { interrupted = 0; }
