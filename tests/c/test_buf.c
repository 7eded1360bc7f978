/* test_buf.c -- tdm_str_copy, the one bounded string copy. */
#include "t.h"
#include "tdm.h"

int main(void) {
  char d[4];
  memset(d, 'x', sizeof d);
  T_EQ_INT(tdm_str_copy(d, sizeof d, "abc"), 3, "fits: length");
  T_EQ_STR(d, "abc", "fits: copied whole");
  T_EQ_INT(tdm_str_copy(d, sizeof d, "abcdef"), 6, "cut: the source's length");
  T_EQ_STR(d, "abc", "cut: dstsz - 1 bytes, terminated");
  T_EQ_INT(tdm_str_copy(d, sizeof d, NULL), 0, "NULL: length 0");
  T_EQ_STR(d, "", "NULL: empty");
  T_EQ_INT(tdm_str_copy(d, 1, "z"), 1, "one byte: cut");
  T_EQ_STR(d, "", "one byte: only the terminator");
  T_DONE();
}
