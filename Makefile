# vlens — `make` builds build/vlens and build/libvlens.a; `make test` runs
# every test (release, then ASan+UBSan); `make demo` runs the main job.
# Every source file under src/<layer>/ is picked up automatically; tests are
# tests/test_*.c (one binary each), fuzz targets fuzz/fuzz_*.c, benchmarks
# bench/bench_*.c.

VARIANT ?= rel
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CC ?= cc
PKGS := libcjson stb libgif libwebp zlib openblas libpcre2-8 libutf8proc libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fPIC -Iinclude -Isrc $(WARN) $(PKG_CFLAGS)
ifeq ($(VARIANT),asan)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDOPT := -fsanitize=address,undefined
else
  OPT := -O2
  LDOPT :=
endif
CFLAGS_ALL := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
# Row kernels (elementwise, norms, shape ops) need loop vectorisation, which
# GCC's -O2 only applies to loops of compile-time trip count: 2-4x there.
ifneq ($(VARIANT),asan)
$(addprefix build/$(VARIANT)/src/tensor/ops_,elementwise.o activation.o norm.o softmax.o \
  shape.o gather.o reduce.o): CFLAGS_ALL += -O3
endif
LDLIBS_ALL := $(PKG_LIBS) -lm -lpthread $(LDLIBS)

B := build/$(VARIANT)
LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC := $(wildcard bench/bench_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(B)/%.o)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
EXAMPLE_BIN := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))

.SECONDARY:

.PHONY: all deps lib cli tests benches test test-rel test-asan check-layers fuzz-smoke \
        demo clean format lint examples

all: deps
	@$(MAKE) --no-print-directory -j$(JOBS) cli
	@ln -sf $(VARIANT)/vlens build/vlens

deps:
	@scripts/deps.sh build

lib: $(B)/libvlens.a
cli: $(B)/vlens
tests: $(TEST_BIN)
benches: $(BENCH_BIN)
examples: $(EXAMPLE_BIN)

$(B)/libvlens.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/vlens: $(CLI_OBJ) $(B)/libvlens.a
	$(CC) $(LDOPT) -o $@ $(CLI_OBJ) $(B)/libvlens.a $(LDLIBS_ALL)

$(B)/tests/%: tests/%.c $(TEST_SUPPORT_OBJ) $(B)/libvlens.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Itests -MMD -MP -o $@ $< $(TEST_SUPPORT_OBJ) $(B)/libvlens.a $(LDOPT) $(LDLIBS_ALL)

$(B)/bench/%: bench/%.c $(B)/libvlens.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -O3 -o $@ $< $(B)/libvlens.a $(LDOPT) $(LDLIBS_ALL)

# Examples see only the public header (no -Isrc): they use what users get.
$(B)/examples/%: examples/%.c include/vlens.h $(B)/libvlens.a
	@mkdir -p $(@D)
	$(CC) -std=c11 -g -Iinclude $(WARN) $(OPT) $(CFLAGS) -o $@ $< $(B)/libvlens.a $(LDOPT) $(LDLIBS_ALL)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Itests -MMD -MP -c -o $@ $<

# The web UI page is embedded by the assembler (.incbin in src/serve/ui.c).
$(B)/src/serve/ui.o: src/serve/ui.html

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_SUPPORT_OBJ:.o=.d) $(TEST_BIN:=.d)

# ---- tests ---------------------------------------------------------------
# Release build first (fast), then the same suite under ASan+UBSan, then the
# structural checks. tools/run-tests.sh prints the closing
# "N passed, N failed" line CI reads.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory -j$(JOBS) VARIANT=rel cli tests
	@$(MAKE) --no-print-directory -j$(JOBS) VARIANT=asan cli tests
	@tools/run-tests.sh build/rel build/asan

check-layers:
	@tools/check-layers.sh

fuzz-smoke:
	@tools/fuzz-smoke.sh

demo: all
	@tools/demo.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 'fuzz/*.c')

lint:
	cppcheck --quiet --inline-suppr --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem -Iinclude -Isrc src

clean:
	rm -rf build
