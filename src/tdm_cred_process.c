/*
 * tdm_cred_process.c -- a profile's credential_process: the command line
 * split as botocore splits it (POSIX shell words: quotes and backslashes,
 * no shell), run with stdin and stderr inherited, its stdout read as the
 * AWS CLI's JSON ({"Version": 1, "AccessKeyId", "SecretAccessKey",
 * "SessionToken", "Expiration"}).
 *
 * Secrets: the child's output is wiped after parsing; messages name the
 * profile and the program, never the output.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tdm_cred_int.h"

#define ARGS_MAX 64
#define OUT_MAX (64 * 1024)

extern char **environ;

/* Split `cmd` into words in `buf` (same size as cmd + 1); argv gets
 * pointers into buf. TDM_ERR on an unclosed quote or too many words. */
static int split_words(const char *cmd, char *buf, char **argv, int *argc,
                       const char *what, tdm_error *err) {
  const char *s = cmd;
  char *o = buf;
  int n = 0;
  while (*s) {
    int in_word = 0;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (!*s) break;
    if (n == ARGS_MAX - 1)
      return tdm_error_set(err, "EBADCREDS", "%s: more than %d words",
                           what, ARGS_MAX - 1);
    argv[n++] = o;
    while (*s && (in_word || !(*s == ' ' || *s == '\t' || *s == '\n'))) {
      if (*s == '\'') {
        const char *e = strchr(s + 1, '\'');
        if (!e) goto unclosed;
        memcpy(o, s + 1, (size_t)(e - s - 1));
        o += e - s - 1;
        s = e + 1;
      } else if (*s == '"') {
        s++;
        while (*s && *s != '"') {
          if (*s == '\\' && s[1] && strchr("\\\"$`\n", s[1])) s++;
          *o++ = *s++;
        }
        if (*s != '"') goto unclosed;
        s++;
      } else if (*s == '\\') {
        if (s[1]) s++;
        *o++ = *s++;
      } else {
        *o++ = *s++;
      }
    }
    *o++ = '\0';
  }
  argv[n] = NULL;
  *argc = n;
  return TDM_OK;
unclosed:
  return tdm_error_set(err, "EBADCREDS", "%s: unclosed quote", what);
}

int tdm_credi_process(const tdm_credi_profile *p, tdm_credentials *out,
                      tdm_error *err) {
  const char *cmd = tdm_credi_get(&p->merged, "credential_process");
  char what[256], *buf = NULL, *argv[ARGS_MAX];
  int argc = 0, fds[2] = { -1, -1 }, status = 0, rc = TDM_ERR;
  int overflow = 0;
  posix_spawn_file_actions_t fa;
  tdm_buf outb;
  pid_t pid;
  json_t *o = NULL, *v;
  json_error_t je;

  if (!cmd || !*cmd) return 0;
  snprintf(what, sizeof what, "credential_process of profile '%s'",
           p->name);
  tdm_buf_init(&outb, OUT_MAX);
  if (!(buf = malloc(strlen(cmd) + 1)))
    return tdm_error_set(err, "ENOMEM", "%s: out of memory", what);
  if (split_words(cmd, buf, argv, &argc, what, err) != TDM_OK) goto done;
  if (argc == 0) {
    tdm_error_set(err, "EBADCREDS", "%s: empty command", what);
    goto done;
  }
  if (pipe(fds) != 0) {
    tdm_error_errno(err, errno, "%s: pipe", what);
    goto done;
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  errno = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (errno) {
    tdm_error_errno(err, errno, "%s: cannot run %s", what, argv[0]);
    close(fds[0]);
    goto done;
  }
  for (;;) {
    char chunk[4096];
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (tdm_buf_append(&outb, chunk, (size_t)n, NULL) != TDM_OK) {
      OPENSSL_cleanse(chunk, sizeof chunk);
      tdm_error_set(err, "EBADCREDS", "%s: %s wrote more than %d bytes",
                    what, argv[0], OUT_MAX);
      overflow = 1;
      break;
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (overflow) goto done;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    tdm_error_set(err, "EBADCREDS", "%s: %s %s %d", what, argv[0],
                  WIFEXITED(status) ? "exited with status"
                                    : "was killed by signal",
                  WIFEXITED(status) ? WEXITSTATUS(status)
                                    : WTERMSIG(status));
    goto done;
  }
  o = json_loadb(outb.data ? outb.data : "", outb.len, 0, &je);
  if (!json_is_object(o)) {
    tdm_error_set(err, "EBADCREDS", "%s: %s did not print a JSON object",
                  what, argv[0]);
    goto done;
  }
  v = json_object_get(o, "Version");
  if (!json_is_integer(v) || json_integer_value(v) != 1) {
    tdm_error_set(err, "EBADCREDS", "%s: %s printed Version %s; only 1 is "
                  "known", what, argv[0], v ? "other than 1" : "none");
    goto done;
  }
  if (tdm_credi_json_fill(o, "AccessKeyId", "SecretAccessKey",
                          "SessionToken", "Expiration", "custom-process",
                          what, out, err) != TDM_OK)
    goto done;
  snprintf(out->source, sizeof out->source, "profile '%.40s': "
           "credential_process %.80s", p->name, argv[0]);
  rc = 1;
done:
  json_decref(o);
  if (buf) OPENSSL_cleanse(buf, strlen(cmd));
  free(buf);
  if (outb.data) OPENSSL_cleanse(outb.data, outb.cap);
  tdm_buf_free(&outb);
  return rc;
}
