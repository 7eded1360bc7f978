/*
 * tdm-lua.c -- the tdm host: runs a bundled command or any Lua script with
 * the tdm module preloaded, in the spirit of the standalone `lua` program.
 *
 *   tdm-lua [options] SCRIPT.lua [ARGS]   run a script (arg as lua gives)
 *   tdm-lua [options] COMMAND [ARGS]      run a bundled command
 *   tdm-lua [global options] COMMAND [ARGS]  (options moved after COMMAND)
 *   host options: -e CHUNK, -l MODULE, -V/--version, -h/--help, --
 *
 * No business logic here: argument handling, finding the Lua files, pcall
 * with a traceback, exit codes and signals.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "tdm.h"
#include "lbind.h"

#ifndef TDM_LUADIR
#define TDM_LUADIR "/usr/local/share/lua/5.4"
#endif

static const char *progname = "tdm-lua";

/* Exit codes (README "Exit codes"). */
enum { EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* First SIGINT/SIGTERM: ask tdm to stop after the work in flight (every
 * write is atomic, so stopping between units loses nothing). A second one
 * kills the process at once. */
static void on_signal(int sig) {
  tdm_interrupt_request();
  signal(sig, SIG_DFL);
}

static void print_error(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* Message handler for lua_pcall: adds a traceback to string errors. A table
 * error (a usage error, a configuration error: { message, exit_code or
 * code }) is a deliberate, already-worded failure and passes through
 * untouched. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (lua_istable(L, 1)) return 1;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Print the error object on top of the stack (as msghandler left it) and
 * pop it; returns the exit status it implies. */
static int report_error(lua_State *L) {
  int code = 1;
  if (lua_istable(L, -1)) {
    const char *c;
    lua_getfield(L, -1, "message");
    print_error(lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_getfield(L, -2, "exit_code");
    lua_getfield(L, -3, "code");
    c = lua_tostring(L, -1);
    if (lua_isinteger(L, -2)) code = (int)lua_tointeger(L, -2);
    else if (c && (strcmp(c, "ECONFIG") == 0 || strcmp(c, "EUSAGE") == 0))
      code = EXIT_USAGE;
    lua_pop(L, 3);
  } else {
    print_error(lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
  }
  lua_pop(L, 1);
  return code;
}

/* Run the function on top of the stack with `nargs` arguments under the
 * message handler. Returns the process exit status it implies: 0 on
 * success (or the integer the function returned), else non-zero after
 * printing the error. */
static int docall(lua_State *L, int nargs) {
  int status, base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, 1, base);
  lua_remove(L, base);
  if (status == LUA_OK) {
    int code = 0;
    if (lua_isinteger(L, -1)) code = (int)lua_tointeger(L, -1);
    else if (lua_isboolean(L, -1)) code = lua_toboolean(L, -1) ? 0 : 1;
    lua_pop(L, 1);
    return code;
  }
  return report_error(L);
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Prepend the directories holding tdm's Lua files to package.path: the
 * build tree when the binary sits at its top (./tdm-lua beside ./lua/),
 * else the installed prefix relative to the binary, else TDM_LUADIR. */
static void set_paths(lua_State *L) {
  char exe[PATH_MAX], probe[PATH_MAX + 64], dir[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  const char *found = NULL;
  dir[0] = '\0';
  if (n > 0) {
    char *slash;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(probe, sizeof probe, "%s/lua/tdm/init.lua", exe);
    if (file_exists(probe)) {
      snprintf(dir, sizeof dir, "%s/lua", exe);
      found = dir;
    } else {
      snprintf(probe, sizeof probe, "%s/../share/lua/5.4/tdm/init.lua", exe);
      if (file_exists(probe)) {
        snprintf(dir, sizeof dir, "%s/../share/lua/5.4", exe);
        found = dir;
      }
    }
  }
  if (!found) found = TDM_LUADIR;
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", found, found);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  /* tdm.core is linked in; no core.so needs to be found. */
  tdm_lua_preload(L);
}

/* Build the global `arg` table as lua.c does: arg[0] is the script or
 * command, arg[1..] its arguments, negative indices the host's. */
static void create_arg_table(lua_State *L, char **argv, int argc,
                             int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Push the script arguments (argv[script+1..]) on the stack; returns n. */
static int push_args(lua_State *L, char **argv, int argc, int script) {
  int i, n = argc - script - 1;
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return n;
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *fname = argv[script];
  int nargs;
  if (strcmp(fname, "-") == 0) fname = NULL;
  if (luaL_loadfile(L, fname) != LUA_OK) {
    print_error(lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  nargs = push_args(L, argv, argc, script);
  return docall(L, nargs);
}

/* Push field `field` of the module tdm.commands (the command registry),
 * loaded under the traceback handler. Returns 0, or the exit status after
 * printing the error (nothing pushed). */
static int push_commands_field(lua_State *L, const char *field) {
  int base;
  lua_pushcfunction(L, msghandler);
  base = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tdm.commands");
  if (lua_pcall(L, 1, 1, base) != LUA_OK) {
    int code = report_error(L);
    lua_pop(L, 1);
    return code ? code : 1;
  }
  lua_getfield(L, -1, field);
  lua_replace(L, base);
  lua_settop(L, base);
  return 0;
}

/* tdm.commands.run(name, {args...}) (with_name) or tdm.commands.main(
 * {args...}) (the command line from argv[cmd] on, starting with global
 * options) returns the exit code. */
static int run_command(lua_State *L, char **argv, int argc, int cmd,
                       int with_name) {
  int i, first = with_name ? cmd + 1 : cmd;
  if (push_commands_field(L, with_name ? "run" : "main") != 0) return 1;
  if (with_name) lua_pushstring(L, argv[cmd]);
  lua_createtable(L, argc - first, 0);
  for (i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  return docall(L, with_name ? 2 : 1);
}

/* The main help is written in Lua (tdm.commands.print_help), beside the
 * option tables it lists. */
static int print_help(lua_State *L) {
  if (push_commands_field(L, "print_help") != 0) return 1;
  if (docall(L, 0) != 0) return 1;
  return 0;
}

static int is_script_name(const char *s) {
  size_t n = strlen(s);
  return strcmp(s, "-") == 0 || strchr(s, '/') != NULL ||
         (n > 4 && strcmp(s + n - 4, ".lua") == 0);
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nRun '%s --help' for usage.\n", progname);
  return EXIT_USAGE;
}

static int run(lua_State *L, int argc, char **argv) {
  int i, ran_chunk = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      return print_help(L);
    } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("tdm-lua %s (%s)\n", TDM_VERSION, LUA_RELEASE);
      return 0;
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      int rc;
      if (i + 1 >= argc) return usage_error("'%s' needs an argument", a);
      create_arg_table(L, argv, argc, i + 1);
      if (a[1] == 'e') {
        if (luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]),
                            "=(command line)") != LUA_OK) {
          print_error(lua_tostring(L, -1));
          return 1;
        }
        rc = docall(L, 0);
        ran_chunk = 1;
      } else {
        const char *mod = argv[i + 1];
        lua_getglobal(L, "require");
        lua_pushstring(L, mod);
        rc = docall(L, 1);
        if (rc == 0) {
          lua_getglobal(L, "require");
          lua_pushstring(L, mod);
          lua_call(L, 1, 1);
          lua_setglobal(L, mod);
        }
      }
      if (rc != 0) return rc;
      i++;
    } else if (a[0] == '-' && a[1] != '\0') {
      /* Global options before a command: tdm.commands.main sorts them. */
      create_arg_table(L, argv, argc, i);
      return run_command(L, argv, argc, i, 0);
    } else {
      break;
    }
  }
  if (i >= argc) {
    if (ran_chunk) return 0;
    print_help(L);
    return EXIT_USAGE;
  }
  create_arg_table(L, argv, argc, i);
  if (is_script_name(argv[i])) {
    if (strcmp(argv[i], "-") != 0 && !file_exists(argv[i])) {
      fprintf(stderr, "%s: cannot open %s: no such file\n", progname,
              argv[i]);
      return 1;
    }
    return run_script(L, argv, argc, i);
  }
  return run_command(L, argv, argc, i, 1);
}

int main(int argc, char **argv) {
  int status;
  lua_State *L = luaL_newstate();
  if (!L) {
    print_error("cannot create Lua state: not enough memory");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  luaL_openlibs(L);
  set_paths(L);
  status = run(L, argc, argv);
  fflush(stdout);
  lua_close(L);
  if (status == 0 && tdm_interrupted()) status = EXIT_INTERRUPTED;
  return status;
}
