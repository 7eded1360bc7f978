/*
 * ltrace.c -- tdm.core.s3_trace(level [, log_path]): the per-request lines
 * of `tdm-lua -v` (level 1: method, key, status, attempt, ms, retries) and
 * `--debug` (level 2: also each request's canonical request, the session
 * token masked), written to stderr and appended to log_path with an ISO
 * 8601 UTC timestamp. Level 0 turns it off. The sink runs on whatever
 * thread runs a transfer loop, so it never touches Lua: it formats under
 * a mutex and writes.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "tdm.h"
#include "lbind.h"

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *sink_log;           /* --log-file, or NULL */

/* Write `line` to stderr and to the log file with a timestamp. */
static void sink_line(const char *line) {
  fprintf(stderr, "%s\n", line);
  if (sink_log) {
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(sink_log, "%s.%03ldZ %s\n", when, ts.tv_nsec / 1000000L, line);
    fflush(sink_log);
  }
}

static void sink(const tdm_s3_trace *t, void *ud) {
  char line[2048];
  (void)ud;
  pthread_mutex_lock(&sink_lock);
  if (t->detail) {
    const char *p = t->detail;
    snprintf(line, sizeof line, "s3: signing %s %s, canonical request:",
             t->method, t->key[0] ? t->key : "/");
    sink_line(line);
    while (*p) {
      const char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) : strlen(p);
      snprintf(line, sizeof line, "s3:   %.*s", (int)(n > 2000 ? 2000 : n),
               p);
      sink_line(line);
      p += n + (nl ? 1 : 0);
    }
  } else {
    char status[32], retry[48];
    if (t->code) snprintf(status, sizeof status, "%s", t->code);
    else snprintf(status, sizeof status, "%ld", t->status);
    retry[0] = '\0';
    if (t->retry_in >= 0)
      snprintf(retry, sizeof retry, ", retry in %.2f s", t->retry_in);
    snprintf(line, sizeof line, "s3: %s %s -> %s (attempt %d, %.1f ms%s)",
             t->method, t->key[0] ? t->key : "/", status, t->attempt, t->ms,
             retry);
    sink_line(line);
  }
  fflush(stderr);
  pthread_mutex_unlock(&sink_lock);
}

/* s3_trace(level [, log_path]) -> true | nil, msg, code. */
static int l_s3_trace(lua_State *L) {
  lua_Integer level = luaL_checkinteger(L, 1);
  const char *path = luaL_optstring(L, 2, NULL);
  FILE *f = NULL;
  if (level > 0 && path && !(f = fopen(path, "a")))
    return luaL_fileresult(L, 0, path);
  pthread_mutex_lock(&sink_lock);
  if (sink_log) fclose(sink_log);
  sink_log = f;
  pthread_mutex_unlock(&sink_lock);
  tdm_s3_set_trace(level > 0 ? sink : NULL, level > 1, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

int tdm_lua_open_trace(lua_State *L) {
  lua_pushcfunction(L, l_s3_trace);
  lua_setfield(L, 1, "s3_trace");
  return 0;
}
