/* tdm_errcodes.c -- the table of include/tdm/errcodes.def as data. */
#include <string.h>

#include "tdm.h"

static const tdm_errcode table[] = {
#define TDM_ERRCODE(code, retryable, status, meaning, advice) \
  {code, retryable, status, meaning, advice},
#include "tdm/errcodes.def"
#undef TDM_ERRCODE
};

#define NCODES (sizeof table / sizeof table[0])

const tdm_errcode *tdm_errcode_find(const char *code) {
  size_t i;
  if (!code) return NULL;
  for (i = 0; i < NCODES; i++)
    if (strcmp(table[i].code, code) == 0) return &table[i];
  return NULL;
}

const tdm_errcode *tdm_errcodes(size_t *n) {
  *n = NCODES;
  return table;
}
