/* tdm_s3_trace.c -- where the S3 core reports each request attempt (and,
 * with debug, each canonical request): one process-wide sink, set by the
 * host (src/ltrace.c) and read by the signer (tdm_s3_client.c) and the
 * loop (tdm_s3_xfer.c). Its own file so neither depends on the other. */
#include "tdm.h"

static tdm_s3_trace_fn trace_fn;
static int trace_debug;
static void *trace_ud;

void tdm_s3_set_trace(tdm_s3_trace_fn fn, int debug, void *ud) {
  trace_fn = fn;
  trace_debug = debug;
  trace_ud = ud;
}

tdm_s3_trace_fn tdm_s3_get_trace(int *debug, void **ud) {
  if (debug) *debug = trace_debug;
  if (ud) *ud = trace_ud;
  return trace_fn;
}
