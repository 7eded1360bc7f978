# tdm -- build, test, install.  See README.md.
#
#   make                 libtdm.a, tdm/core.so (Lua module), tdm-lua (host)
#   make test            every suite; last line "N passed, N failed"
#   make test-rgw        every suite against Ceph's RADOS Gateway instead of
#                        s3rver; make test-both: the S3 and sync suites
#                        against both (tests/run.sh, TDM_TEST_S3)
#   make install         PREFIX=/usr/local DESTDIR= (Debian's Lua 5.4 paths)
#   make SANITIZE=address,undefined test
#   make check-all       the suite under ASan+UBSan (in build-asan/), then
#                        the C unit tests under valgrind (long)
#   make fuzz FUZZ_TIME=60   libFuzzer harnesses, tests/fuzz/README.md (long)

PREFIX ?= /usr/local
DESTDIR ?=
LUA_VERSION = 5.4
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
INCDIR = $(PREFIX)/include
LUA_CMOD_DIR = $(LIBDIR)/lua/$(LUA_VERSION)
LUA_LMOD_DIR = $(PREFIX)/share/lua/$(LUA_VERSION)
MANDIR = $(PREFIX)/share/man
COMPDIR = $(PREFIX)/share/bash-completion/completions

PKG_CONFIG ?= pkg-config
DEPS = lua5.4 libcurl openssl expat jansson libmicrohttpd
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS))
# libcurl and libmicrohttpd are not linked: src/tdm_dl.c dlopens them on
# first use (start-up cost; see src/tdm_curl.h), by these sonames.
DL_LIBDIR := $(shell $(PKG_CONFIG) --variable=libdir libcurl)
soname = $(or $(shell objdump -p $(DL_LIBDIR)/$(1).so 2>/dev/null | \
  sed -n 's/^ *SONAME *//p'),$(2))
CURL_SONAME := $(call soname,libcurl,libcurl.so.4)
MHD_SONAME := $(call soname,libmicrohttpd,libmicrohttpd.so.12)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs lua5.4 openssl expat jansson) -ldl
# The Lua module resolves lua_* from the interpreter that loads it.
MOD_LIBS := $(shell $(PKG_CONFIG) --libs openssl expat jansson) -ldl

CC ?= cc
WARN = -Wall -Wextra -Wshadow -Wundef -Wwrite-strings \
       -Wmissing-prototypes -Wstrict-prototypes
OPT ?= -O2 -g
CFLAGS ?=
ifneq ($(SANITIZE),)
  SANFLAGS = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) \
             $(WARN) -fPIC -pthread -Iinclude $(DEP_CFLAGS) $(SANFLAGS) \
             -DTDM_LUADIR='"$(LUA_LMOD_DIR)"' \
             -DTDM_CURL_SONAME='"$(CURL_SONAME)"' \
             -DTDM_MHD_SONAME='"$(MHD_SONAME)"' $(CFLAGS)
ALL_LDFLAGS = -pthread $(SANFLAGS) $(LDFLAGS)

# Build directory. `make B=build-asan SANITIZE=address,undefined` builds a
# separate tree (the host and module land in $(B)/, beside a $(B)/lua
# link), so a sanitized build never disturbs the default one.
B ?= build
CORE_SRCS := $(sort $(wildcard src/tdm_*.c))
BIND_SRCS := $(sort $(wildcard src/l*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(B)/%.o)
BIND_OBJS := $(BIND_SRCS:src/%.c=$(B)/%.o)
HEADERS := include/tdm.h $(wildcard include/tdm/*.h) \
           $(wildcard include/tdm/*.def) $(wildcard src/*.h)

LIB = $(B)/libtdm.a
ifeq ($(B),build)
MODULE = tdm/core.so
HOST = tdm-lua
else
MODULE = $(B)/tdm/core.so
HOST = $(B)/tdm-lua
endif

C_TESTS := $(patsubst tests/c/%.c,$(B)/tests/%,$(wildcard tests/c/test_*.c))

VERSION := $(shell sed -n 's/^\#define TDM_VERSION "\(.*\)"/\1/p' include/tdm.h)
MANPAGE = $(B)/tdm-lua.1
PCFILE = $(B)/tdm.pc

.PHONY: all test test-c test-rgw test-both check-all fuzz fuzz-build install install-rock uninstall clean cppcheck valgrind man docs FORCE

all: $(LIB) $(MODULE) $(HOST)

# The man page is generated from the program's own --help texts.
man: $(MANPAGE)
$(MANPAGE): $(HOST) scripts/gen-man.lua $(wildcard lua/tdm/*.lua lua/tdm/commands/*.lua)
	./$(HOST) scripts/gen-man.lua ./$(HOST) > $@.tmp && mv $@.tmp $@

# The error-code page is generated from include/tdm/errcodes.def (through
# tdm.core.errors); tests/lua/test_errors.lua checks it is current.
docs/errors.md: $(HOST) scripts/gen-errors.lua include/tdm/errcodes.def
	./$(HOST) scripts/gen-errors.lua > $@.tmp && mv $@.tmp $@

# docs/commands.md: the fenced --help blocks regenerated from the binary
# (tests/e2e/test_cli.sh fails when they are stale).
docs: $(HOST) docs/errors.md
	./$(HOST) scripts/gen-commands-md.lua ./$(HOST) docs/commands.md

# Regenerated every time: it records PREFIX.
$(PCFILE): tdm.pc.in include/tdm.h FORCE | $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(B)/%.o: src/%.c $(HEADERS) | $(B)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B):
	mkdir -p $(B) $(B)/tests
	[ "$(B)" = build ] || ln -sfn ../lua $(B)/lua

$(LIB): $(CORE_OBJS)
	rm -f $@.tmp.$$$$ && $(AR) rcs $@.tmp.$$$$ $^ && mv -f $@.tmp.$$$$ $@

# Linked to a temp name and renamed into place, so a test running the
# previous binary (or starting one) never sees a half-written file.
$(MODULE): $(BIND_OBJS) $(LIB)
	mkdir -p $(dir $(MODULE))
	$(CC) -shared -o $@.tmp.$$$$ $(BIND_OBJS) $(LIB) $(MOD_LIBS) \
	  $(ALL_LDFLAGS) && mv -f $@.tmp.$$$$ $@

$(HOST): $(B)/tdm-lua.o $(BIND_OBJS) $(LIB)
	$(CC) -o $@.tmp.$$$$ $^ $(DEP_LIBS) -lm -ldl $(ALL_LDFLAGS) -Wl,-E && \
	  mv -f $@.tmp.$$$$ $@

$(B)/tdm-lua.o: src/tdm-lua.c $(HEADERS) | $(B)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/c/%.c tests/c/t.h $(LIB) | $(B)
	$(CC) $(ALL_CFLAGS) -Itests/c -o $@ $< $(LIB) $(DEP_LIBS) -lm \
	  $(ALL_LDFLAGS)

test-c: $(C_TESTS)

# The whole suite: C unit tests, Lua tests, integration tests against a
# real s3rver. Prints "N passed, N failed" last.
test: all test-c
	@B=$(B) tests/run.sh

# Against RGW (every integration test), or both servers (the S3 and sync
# suites against RGW as well): TDM_TEST_S3 of tests/run.sh.
test-rgw test-both: all test-c
	@B=$(B) TDM_TEST_S3=$(@:test-%=%) tests/run.sh

# Sanitizers and leaks (long; see tests/fuzz/README.md): the whole suite
# against an ASan+UBSan build in build-asan/ (the default build is left
# alone), then the C unit tests under valgrind.
ASAN_B = build-asan
check-all:
	$(MAKE) B=$(ASAN_B) SANITIZE=address,undefined OPT="-O1 -g" all test-c
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	  UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	  B=$(ASAN_B) tests/run.sh
	$(MAKE) valgrind

# libFuzzer harnesses tests/fuzz/fuzz_NAME.c (long, not part of `test`):
# `make fuzz FUZZ_TIME=60` runs each for FUZZ_TIME seconds (FUZZ_TIME=0
# FUZZ_RUNS=10000000: for that many executions instead), seeded from
# tests/fuzz/corpus/NAME/, new inputs in build-fuzz/corpus/NAME/, crashes
# in build-fuzz/crashes/. `make fuzz-build` only builds them.
FUZZ_B = build-fuzz
FUZZ_TIME ?= 60
FUZZ_RUNS ?= -1
FUZZ_CC ?= clang
FUZZ_SAN = -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
FUZZERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZERS:%=$(FUZZ_B)/fuzz/fuzz_%)

FUZZ_MAKE = $(MAKE) B=$(FUZZ_B) CC=$(FUZZ_CC) OPT="-O1 -g" \
	  SANITIZE=fuzzer-no-link,address,undefined
fuzz-build:
	$(FUZZ_MAKE) all
	$(FUZZ_MAKE) $(FUZZ_BINS)

$(FUZZ_B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_lua.h \
    $(FUZZ_B)/libtdm.a
	mkdir -p $(FUZZ_B)/fuzz
	$(FUZZ_CC) $(filter-out -fsanitize=%,$(ALL_CFLAGS)) -O1 $(FUZZ_SAN) \
	  -DFUZZ_ROOT='"$(CURDIR)"' -Itests/fuzz -Isrc -o $@ $< \
	  $(filter-out $(FUZZ_B)/tdm-lua.o,$(wildcard $(FUZZ_B)/l*.o)) \
	  $(FUZZ_B)/libtdm.a $(DEP_LIBS) -lm -ldl -Wl,-E

fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_B)/corpus/$$f $(FUZZ_B)/crashes tests/fuzz/corpus/$$f; \
	  echo "fuzz: $$f for $(FUZZ_TIME)s"; \
	  ROOT=$$(pwd) $(FUZZ_B)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_TIME) -runs=$(FUZZ_RUNS) \
	    -artifact_prefix=$(FUZZ_B)/crashes/$$f- -print_final_stats=1 \
	    $(FUZZ_B)/corpus/$$f tests/fuzz/corpus/$$f \
	    2>$(FUZZ_B)/fuzz-$$f.log || \
	    { tail -n 40 $(FUZZ_B)/fuzz-$$f.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^stat::peak_rss' \
	    $(FUZZ_B)/fuzz-$$f.log; \
	done

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance \
	  --std=c11 -Iinclude src

valgrind: test-c
	@for t in $(C_TESTS); do \
	  valgrind -q --leak-check=full --error-exitcode=1 $$t >/dev/null || \
	    { echo "valgrind: $$t failed"; exit 1; }; done; \
	  echo "valgrind: $(words $(C_TESTS)) C test programs clean"

install: all $(MANPAGE) $(PCFILE)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCDIR)/tdm $(DESTDIR)$(LUA_CMOD_DIR)/tdm \
	  $(DESTDIR)$(LUA_LMOD_DIR)/tdm/commands $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(COMPDIR)
	install -m 644 scripts/tdm-lua.bash $(DESTDIR)$(COMPDIR)/tdm-lua
	install -m 644 $(PCFILE) $(DESTDIR)$(LIBDIR)/pkgconfig/tdm.pc
	install -m 644 $(MANPAGE) $(DESTDIR)$(MANDIR)/man1/tdm-lua.1
	install -m 755 $(HOST) $(DESTDIR)$(BINDIR)/tdm-lua
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libtdm.a
	install -m 644 include/tdm.h $(DESTDIR)$(INCDIR)/tdm.h
	install -m 644 include/tdm/*.h $(DESTDIR)$(INCDIR)/tdm/
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_CMOD_DIR)/tdm/core.so
	install -m 644 lua/tdm/*.lua $(DESTDIR)$(LUA_LMOD_DIR)/tdm/
	install -m 644 lua/tdm/commands/*.lua \
	  $(DESTDIR)$(LUA_LMOD_DIR)/tdm/commands/

# What `luarocks make` installs (the rockspec's install target): the Lua
# module (tdm.core and the tdm.* Lua files) and the tdm-lua host, not the
# C library, headers or pkg-config file (`make install` is for those).
install-rock: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LUA_CMOD_DIR)/tdm \
	  $(DESTDIR)$(LUA_LMOD_DIR)/tdm/commands
	install -m 755 $(HOST) $(DESTDIR)$(BINDIR)/tdm-lua
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_CMOD_DIR)/tdm/core.so
	install -m 644 lua/tdm/*.lua $(DESTDIR)$(LUA_LMOD_DIR)/tdm/
	install -m 644 lua/tdm/commands/*.lua \
	  $(DESTDIR)$(LUA_LMOD_DIR)/tdm/commands/

uninstall:
	rm -f $(DESTDIR)$(COMPDIR)/tdm-lua
	rm -f $(DESTDIR)$(BINDIR)/tdm-lua $(DESTDIR)$(LIBDIR)/libtdm.a \
	  $(DESTDIR)$(INCDIR)/tdm.h $(DESTDIR)$(LUA_CMOD_DIR)/tdm/core.so
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/tdm.pc \
	  $(DESTDIR)$(MANDIR)/man1/tdm-lua.1
	rm -rf $(DESTDIR)$(INCDIR)/tdm $(DESTDIR)$(LUA_LMOD_DIR)/tdm
	-rmdir $(DESTDIR)$(LUA_CMOD_DIR)/tdm 2>/dev/null

clean:
	rm -rf $(B) tdm $(HOST)
