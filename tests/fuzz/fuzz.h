/*
 * tests/fuzz/fuzz.h -- shared bits of tdm's libFuzzer harnesses.
 *
 * Each harness defines LLVMFuzzerTestOneInput and must never crash, leak
 * or trip ASan/UBSan on any input; a property violation calls
 * fuzz_fail(), which aborts so libFuzzer saves the input.
 */
#ifndef TDM_FUZZ_H
#define TDM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report a broken property and abort (libFuzzer keeps the input). */
static inline void fuzz_fail(const char *what) {
  fprintf(stderr, "property violated: %s\n", what);
  abort();
}

#endif
