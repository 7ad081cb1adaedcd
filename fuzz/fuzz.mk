# Builds the libFuzzer targets fuzz/fuzz_*.c with clang under build/fuzz/.
# Used by tools/fuzz-smoke.sh; the library sources (src/*/*.c except the
# CLI) are compiled once with the sanitizers and archived, so each target
# links only what it uses. `make -k objs` first, then the targets with
# LIB_OBJ_OK = the objects that compiled: a library file clang cannot build
# only breaks the targets that need it.
CLANG ?= clang
# Same packages as the main build.
PKGS := $(shell sed -n 's/^PKGS := //p' Makefile)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FCFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Iinclude -Isrc \
           -Wall -Wno-unused-parameter $(PKG_CFLAGS) $(SAN) -fsanitize=fuzzer-no-link
FB := build/fuzz
LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(FB)/%.o)
TARGETS := $(patsubst fuzz/%.c,$(FB)/%,$(wildcard fuzz/fuzz_*.c))

LIB_OBJ_OK ?= $(LIB_OBJ)

all: $(TARGETS)
objs: $(LIB_OBJ)
.PHONY: all objs

$(FB)/libvlens-fuzz.a: $(LIB_OBJ_OK)
	@rm -f $@ && ar rcs $@ $^

$(FB)/%.o: %.c
	@mkdir -p $(@D)
	$(CLANG) $(FCFLAGS) -MMD -MP -c -o $@ $<

$(FB)/fuzz_%: fuzz/fuzz_%.c $(FB)/libvlens-fuzz.a
	@mkdir -p $(@D)
	$(CLANG) $(FCFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< $(FB)/libvlens-fuzz.a $(PKG_LIBS) -lm -lpthread

-include $(LIB_OBJ:.o=.d) $(TARGETS:=.d)
