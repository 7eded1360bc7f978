/*
 * embed.c -- using libtdm from C, without Lua.
 *
 *   cc -o embed embed.c $(pkg-config --cflags --libs tdm)
 *   ./embed [FILE...]
 *
 * Prints the resolved configuration (no secrets) and the MD5 of each FILE,
 * or of the string "abc" when none is given.
 */
#include <stdio.h>
#include <tdm.h>

int main(int argc, char **argv) {
  tdm_config cfg;
  tdm_error err;
  char hex[TDM_MD5_HEX_LEN + 1];
  uint64_t size;
  int i, status = 0;

  if (tdm_config_load(&cfg, &err) != TDM_OK) {
    fprintf(stderr, "embed: %s\n", err.message);
    return 2;
  }
  printf("data root %s, bucket %s (%s)\n",
         tdm_config_get(&cfg, TDM_CFG_DATA_ROOT),
         tdm_config_get(&cfg, TDM_CFG_BUCKET), cfg.source[TDM_CFG_BUCKET]);
  if (argc < 2) {
    if (tdm_md5_hex("abc", 3, hex, &err) != TDM_OK) return 1;
    printf("%s  (the string \"abc\")\n", hex);
  }
  for (i = 1; i < argc; i++) {
    if (tdm_md5_file(argv[i], hex, &size, &err) != TDM_OK) {
      fprintf(stderr, "embed: %s (%s)\n", err.message, err.code);
      status = 1;
      continue;
    }
    printf("%s  %s  %llu bytes\n", hex, argv[i], (unsigned long long)size);
  }
  return status;
}
