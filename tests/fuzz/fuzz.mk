# fuzz.mk: libFuzzer targets (clang) and their corpus. Included by the
# Makefile. The replay driver tests/test_fuzz_replay.c is an ordinary test
# suite: `make test` and `make asan` build it and replay tests/fuzz/corpus.

FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_TARGETS := safetensors gguf model writer
# -fopenmp: the library has OpenMP loops (pipeline, sweeps); the fuzzers
# link every library source, so they need the runtime too.
FUZZ_FLAGS   := -std=c11 -D_DEFAULT_SOURCE -g -O1 -fno-omit-frame-pointer -fopenmp \
                -fsanitize=fuzzer,address,undefined -Iinclude -Isrc $(PKG_CFLAGS)

.PHONY: fuzz fuzz-bin fuzz-corpus

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(wildcard src/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Wno-unknown-pragmas -o $@ $< $(LIB_SRC) $(PKG_LIBS) -lm

fuzz-bin: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

## fuzz: build the libFuzzer targets with clang and run each for FUZZ_SECONDS (default 60)
fuzz: fuzz-bin
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus-new/$$t; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	      tests/fuzz/corpus-new/$$t tests/fuzz/corpus/$$t || exit 1; \
	done; \
	echo "new inputs are in tests/fuzz/corpus-new/; add crashes and findings to tests/fuzz/corpus/"

## fuzz-corpus: regenerate the seed corpus tests/fuzz/corpus from tests/support/modelgen.c
fuzz-corpus: $(BUILD)/tests/test_fuzz_replay
	$(BUILD)/tests/test_fuzz_replay --write-corpus tests/fuzz/corpus
