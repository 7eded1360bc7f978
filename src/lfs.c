/* lfs.c -- Lua bindings of tdm/fs.h plus stat and a precise clock. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lbind.h"

/* listdir(dir) -> { name, ... } (unsorted) | nil, msg, code. */
static int push_name(const char *name, void *ud) {
  lua_State *L = ud;
  lua_pushstring(L, name);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static int l_listdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  tdm_error err;
  lua_newtable(L);
  if (tdm_listdir(dir, push_name, L, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 1;
}

/* stat(path) -> { type = "file"|"dir"|"link"|"other", size, mtime }
 * | nil, msg, code. mtime is seconds as a float with sub-second part.
 * Uses lstat so a symlink is reported as such, not followed. */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  const char *type;
  tdm_error err;
  if (lstat(path, &st) != 0) {
    tdm_error_errno(&err, errno, "stat %s", path);
    return tdm_lua_fail(L, &err);
  }
  type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir"
       : S_ISLNK(st.st_mode) ? "link" : "other";
  lua_createtable(L, 0, 3);
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec +
                    (lua_Number)st.st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  return 1;
}

static int l_mkdirs(lua_State *L) {
  tdm_error err;
  if (tdm_mkdirs(luaL_checkstring(L, 1), &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* atomic_write(path, data) -> true | nil, msg, code. */
static int l_atomic_write(lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1);
  const char *data = luaL_checklstring(L, 2, &len);
  tdm_error err;
  if (tdm_atomic_write(path, data, len, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* sweep_temps(dir) -> { names removed } | nil, msg, code: the temp files
 * that dead processes left in `dir` (tdm_sweep_temps). */
static int l_sweep_temps(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  tdm_error err;
  lua_newtable(L);
  if (tdm_sweep_temps(dir, push_name, L, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  return 1;
}

/* check_name(name [, what]) / check_relpath(path [, what])
 * -> true | nil, msg, code. */
static int l_check_name(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  const char *what = luaL_optstring(L, 2, "name");
  tdm_error err;
  if (tdm_check_name(name, len, what, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_check_relpath(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  const char *what = luaL_optstring(L, 2, "path");
  tdm_error err;
  if (tdm_check_relpath(path, len, what, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushboolean(L, 1);
  return 1;
}

/* now() -> wall-clock seconds since the epoch, with microseconds. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000)
                    / 1e6);
  return 1;
}

/* interrupted() -> true when SIGINT/SIGTERM asked the process to stop. */
static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, tdm_interrupted());
  return 1;
}

/* isatty(fd) -> whether file descriptor fd (0, 1, 2) is a terminal. */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg funcs[] = {
  {"listdir", l_listdir},
  {"stat", l_stat},
  {"mkdirs", l_mkdirs},
  {"atomic_write", l_atomic_write},
  {"sweep_temps", l_sweep_temps},
  {"check_name", l_check_name},
  {"check_relpath", l_check_relpath},
  {"now", l_now},
  {"interrupted", l_interrupted},
  {"isatty", l_isatty},
  {NULL, NULL}
};

int tdm_lua_open_fs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
