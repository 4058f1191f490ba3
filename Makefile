# mpoc: MPO compression of neural-network weights.
# `make help` lists the targets. Each configuration builds into its own
# folder (build/ for release, build/asan/ for the sanitizers) so objects with
# different flags never mix.

PREFIX  ?= /usr/local
CC      ?= cc
BUILD   ?= build
# -Werror is on by default: the tree is kept warning-free. `make WERROR=`
# builds with a newer compiler whose new warnings we have not seen yet.
WERROR  ?= -Werror
OPT     ?= -O2

PKGS      := openblas lapacke gsl jansson
TEST_PKGS := cmocka
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# OpenBLAS first so its CBLAS wins over GSL's reference one (-lgslcblas dropped).
PKG_LIBS   := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS) 2>/dev/null))
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# zstd's warning set plus -Wdouble-promotion (silent float → double in a
# float32 core) and -Wvla (sizes come from files: no stack arrays of them).
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-qual -Wcast-align -Wvla -Wdouble-promotion -Wformat=2 \
        -Wundef -Wwrite-strings -Wredundant-decls
CFLAGS   ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -fPIC -fopenmp $(WARN) $(WERROR) $(CFLAGS) \
             $(SAN) -Iinclude -Isrc -Itests/support $(PKG_CFLAGS) -MMD -MP
LDFLAGS  ?=
ALL_LDFLAGS = $(SAN) -fopenmp $(LDFLAGS)
LDLIBS   := $(PKG_LIBS) -lm

LIB_SRC   := $(wildcard src/*.c)
CLI_SRC   := $(wildcard src/cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
TESTLIB_SRC := $(wildcard tests/support/*.c)
BENCH_SRC := $(wildcard bench/*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

STATIC := $(BUILD)/libmpoc.a
SHARED := $(BUILD)/libmpoc.so
CLI    := $(BUILD)/mpoc
BENCH  := $(BUILD)/mpoc-bench

FIXTURES ?= $(abspath ..)/shared/fixtures

.PHONY: all help deps demo test test-bin asan bench install uninstall clean lint

## all: build the library (static and shared) and the mpoc command
all: $(STATIC) $(SHARED) $(CLI)

## help: list the targets
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

DEBS := build-essential pkg-config liblapacke-dev libopenblas-dev libgsl-dev \
        libcmocka-dev libjansson-dev python3-numpy
## deps: install the Debian packages mpoc needs (idempotent, quiet when present)
deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# `make V=1` shows the full command lines.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# Tests compare floats against double references all the time: the
# promotion is intended there.
$(BUILD)/obj/tests/%.o: ALL_CFLAGS += -Wno-double-promotion

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(Q)$(CC) -shared $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(CLI): $(CLI_OBJ) $(STATIC)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LDLIBS)

$(BENCH): $(BENCH_OBJ) $(STATIC)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(BENCH_OBJ) $(STATIC) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTLIB_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(STATIC) $(LDLIBS) $(TEST_LIBS)

## demo: compress a LLaMA-shaped model (the stories260K fixture if present, else `mpoc synth`), decompress it
DEMO := $(BUILD)/demo
demo: $(CLI)
	@mkdir -p $(DEMO)
	@if [ -f $(FIXTURES)/stories260K-hf/model.safetensors ]; then \
	    model=$(FIXTURES)/stories260K-hf/model.safetensors; \
	else \
	    $(CLI) synth $(DEMO)/synth --force >/dev/null || exit 1; model=$(DEMO)/synth/model.safetensors; \
	fi; \
	echo "== mpoc compress $$model (defaults: --eps 0.1, q8_0 cores, f16 centre, error feedback)"; \
	$(CLI) compress $$model $(DEMO)/model.mpoc.safetensors --force --report $(DEMO)/report.jsonl || exit 1; \
	echo "== mpoc decompress"; \
	$(CLI) decompress $(DEMO)/model.mpoc.safetensors $(DEMO)/model.dense.safetensors --force --quiet || exit 1; \
	ls -l $$model $(DEMO)/model.mpoc.safetensors $(DEMO)/model.dense.safetensors | awk '{print "  " $$5 " bytes  " $$NF}'; \
	echo "per-tensor report: $(DEMO)/report.jsonl; dense model: $(DEMO)/model.dense.safetensors"

test-bin: $(TEST_BIN) $(CLI)

## test: build with -Werror and run every test suite (unit, CLI, format checks)
test: test-bin
	@MPOC_BUILD=$(BUILD) MPOC_FIXTURES=$(FIXTURES) sh tests/run_tests.sh

## asan: run the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

## bench: build and run the benchmarks, then the `standard` suite (figures are ratios measured
##        in one run; BENCH_ARGS="--quick" (quick suite) or names, e.g. BENCH_ARGS="decompose io";
##        BENCH_SUITE= skips the suite; docs/benchmarks.md)
BENCH_SUITE ?= $(if $(filter --quick,$(BENCH_ARGS)),quick,standard)
bench: $(BENCH) $(CLI)
	@mkdir -p $(BUILD)/bench
	@t0=$$(date +%s); st=0; \
	MPOC_FIXTURES=$(FIXTURES) $(BENCH) --json $(BUILD)/bench/results.jsonl $(BENCH_ARGS) || st=$$?; \
	if [ -n "$(BENCH_SUITE)" ]; then \
	  echo "== mpoc bench $(BENCH_SUITE) --out $(BUILD)/bench/$(BENCH_SUITE)"; \
	  MPOC_FIXTURES=$(FIXTURES) $(CLI) bench $(BENCH_SUITE) --out $(BUILD)/bench/$(BENCH_SUITE) || st=1; \
	  if [ "$(BENCH_SUITE)" = standard ] && [ $$st = 0 ]; then \
	    mkdir -p docs/bench && cp $(BUILD)/bench/standard/*.svg docs/bench/ && \
	    echo "   plots copied to docs/bench/ (docs/benchmarks.md links them)"; \
	  fi; \
	fi; \
	echo "make bench: $$(( $$(date +%s) - t0 )) s in all"; exit $$st

## install: install mpoc, libmpoc, the headers and mpoc.pc under PREFIX
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/mpoc
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/mpoc
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/libmpoc.a
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libmpoc.so
	install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/mpoc/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(PKG_LIBS) -lm -fopenmp|' mpoc.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mpoc.pc

## uninstall: remove what install put under PREFIX
uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/mpoc $(DESTDIR)$(PREFIX)/lib/libmpoc.a \
	    $(DESTDIR)$(PREFIX)/lib/libmpoc.so $(DESTDIR)$(PREFIX)/include/mpoc \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/mpoc.pc

## lint: cppcheck over the sources
lint:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 \
	    --suppress=missingIncludeSystem -Iinclude -Isrc src

## clean: remove every build folder
clean:
	rm -rf build

-include tests/fuzz/fuzz.mk
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
