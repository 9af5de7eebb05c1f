# Fuzz targets (libFuzzer) and the replay of their checked-in corpus.
#
# Each tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput() and is
# linked two ways:
#
#   $(BUILD)/tests/fuzz/replay-T   with replay.c, a plain main() that runs
#                                  every file of a corpus directory through
#                                  the target; any compiler, any SANITIZE.
#                                  `make check-fuzz` (in `make check`, and in
#                                  `make check-asan` under ASan and UBSan)
#                                  replays tests/fuzz/corpus/ in seconds.
#   $(BUILD)/fuzz/tests/fuzz/fuzz-T  with libFuzzer, clang and ASan+UBSan,
#                                  for `make fuzz`.
#
# Targets T: zpool-zbud and zpool-zsmalloc (one source, compiled per
# backend; the zpool corpus is shared), device, params, stats, backing,
# codec, snapshot. See each source file's header for its input format and the
# properties it checks.
#
#   make fuzz                       every target for FUZZ_SECONDS (60) each,
#                                   one after another (one core at a time)
#   make fuzz FUZZ_ONLY="device"    only these targets
#   make fuzz FUZZ_ARGS="-rss_limit_mb=4096"   more libFuzzer options
#
# New inputs go to a scratch corpus, $(BUILD)/fuzz/corpus/T/, never to the
# checked-in one; crashes to $(BUILD)/fuzz/crashes/. Replay a crash with
# $(BUILD)/tests/fuzz/replay-T FILE (or replay-T -n FILE under gdb).
# `make fuzz-minimize` merges the scratch corpus with the checked-in one
# into $(BUILD)/fuzz/min/T/ (libFuzzer -merge=1). `make fuzz-pick` picks at
# most FUZZ_PICK (40) of those inputs that keep most of the coverage
# (tests/fuzz/pick.py) into $(BUILD)/fuzz/pick/T/: copy them into
# tests/fuzz/corpus/ to grow the checked-in corpus.

EXTRA_CFLAGS_tests/fuzz := -Iallocator -Idaemon $(call pkgcflags,liblz4) \
	$(call pkgcflags,inih) $(call pkgcflags,libxxhash)

# Every tests/fuzz/fuzz_NAME.c is a target; fuzz_zpool.c is two.
FUZZ_TARGETS := $(foreach f,$(sort $(wildcard tests/fuzz/fuzz_*.c)), \
	$(if $(filter fuzz_zpool.c fuzz_common.c,$(notdir $(f))), \
	$(if $(filter fuzz_zpool.c,$(notdir $(f))),zpool-zbud zpool-zsmalloc), \
	$(patsubst fuzz_%.c,%,$(notdir $(f)))))
# The object of a target's LLVMFuzzerTestOneInput.
fuzz_obj = $(BUILD)/tests/fuzz/fuzz_$(subst -,_,$(1)).o

# Every target links the same objects: those of the daemon that need no
# nbdkit (the backing file and shrinker included) and the allocator.
FUZZ_LINK_OBJS = $(BUILD)/tests/fuzz/fuzz_common.o $(DAEMON_LIB_OBJS) \
	$(ALLOC_OBJS)
FUZZ_LIBS = $(DAEMON_LIBS)

# The zpool target, once per backend.
define fuzz_zpool_obj
$(BUILD)/tests/fuzz/fuzz_zpool_$(1).o: tests/fuzz/fuzz_zpool.c
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $$(EXTRA_CFLAGS_tests/fuzz) \
		-DZPOOL_BACKEND='"$(1)"' -MMD -MP -c -o $$@ $$<
endef
$(foreach b,zbud zsmalloc,$(eval $(call fuzz_zpool_obj,$(b))))

define fuzz_bins
$(BUILD)/tests/fuzz/replay-$(1): $(call fuzz_obj,$(1)) \
		$(BUILD)/tests/fuzz/replay.o $$(FUZZ_LINK_OBJS)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(FUZZ_LIBS)
$(BUILD)/tests/fuzz/fuzz-$(1): $(call fuzz_obj,$(1)) $$(FUZZ_LINK_OBJS)
	$$(CC) $$(ALL_LDFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_bins,$(t))))

FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/replay-%)
ALL_TARGETS += $(FUZZ_REPLAY_BINS)

# Every target replays even if one fails; the target fails at the end,
# after one line that sums up every target's.
.PHONY: check-fuzz
check-fuzz: $(FUZZ_REPLAY_BINS)
	@fail=0; p=0; f=0; for t in $(FUZZ_TARGETS); do \
		case $$t in zpool-*) c=zpool;; *) c=$$t;; esac; \
		out=$$($(BUILD)/tests/fuzz/replay-$$t tests/fuzz/corpus/$$c) \
			|| fail=1; \
		echo "$$out"; \
		set -- $$(echo "$$out" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$$/\1 \2/p'); \
		p=$$((p + $${1:-0})); f=$$((f + $${2:-1})); \
	done; echo "check-fuzz: $$p passed, $$f failed"; exit $$fail
CHECK_TARGETS += check-fuzz
ASAN_TARGETS += check-fuzz

# --- libFuzzer runs -----------------------------------------------------------

FUZZ_SECONDS ?= 60
FUZZ_ONLY ?= $(FUZZ_TARGETS)
FUZZ_ARGS ?=
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_SAN := fuzzer-no-link,address,undefined

# Built by a recursive make, so that every object is compiled by clang
# with -fsanitize=fuzzer-no-link into a build folder of its own.
.PHONY: fuzz-bins fuzz fuzz-minimize fuzz-pick
fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/fuzz-%)

fuzz: deps
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
		BUILD=$(FUZZ_BUILD) fuzz-bins
	@set -e; for t in $(FUZZ_ONLY); do \
		case $$t in zpool-*) c=zpool;; *) c=$$t;; esac; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes; \
		dict=; [ -f tests/fuzz/$$c.dict ] && dict=-dict=tests/fuzz/$$c.dict; \
		echo "== fuzz-$$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/tests/fuzz/fuzz-$$t $$dict \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- $(FUZZ_ARGS) \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$c; \
	done

fuzz-minimize:
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
		BUILD=$(FUZZ_BUILD) fuzz-bins
	@set -e; for t in $(FUZZ_ONLY); do \
		case $$t in zpool-*) c=zpool;; *) c=$$t;; esac; \
		rm -rf $(FUZZ_BUILD)/min/$$t; mkdir -p $(FUZZ_BUILD)/min/$$t \
			$(FUZZ_BUILD)/corpus/$$t; \
		$(FUZZ_BUILD)/tests/fuzz/fuzz-$$t -merge=1 -timeout=10 \
			$(FUZZ_BUILD)/min/$$t tests/fuzz/corpus/$$c \
			$(FUZZ_BUILD)/corpus/$$t; \
	done

# Inputs that fail today (open bugs, tests/fuzz/repro/README.md). Not in
# check: expected to fail until each bug is fixed and its file moves to the
# corpus.
.PHONY: check-fuzz-repro
check-fuzz-repro: $(FUZZ_REPLAY_BINS)
	@fail=0; for t in $(FUZZ_TARGETS); do \
		case $$t in zpool-*) c=zpool;; *) c=$$t;; esac; \
		[ -d tests/fuzz/repro/$$c ] || continue; \
		FUZZ_REPLAY_TIMEOUT=10 $(BUILD)/tests/fuzz/replay-$$t \
			tests/fuzz/repro/$$c || fail=1; \
	done; exit $$fail

FUZZ_PICK ?= 40
fuzz-pick:
	@$(MAKE) --no-print-directory CC=clang SANITIZE=$(FUZZ_SAN) \
		BUILD=$(FUZZ_BUILD) fuzz-bins
	@set -e; for t in $(FUZZ_ONLY); do \
		case $$t in zpool-*) c=zpool;; *) c=$$t;; esac; \
		rm -rf $(FUZZ_BUILD)/pick/$$t; mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		python3 tests/fuzz/pick.py $(FUZZ_BUILD)/tests/fuzz/fuzz-$$t \
			$(FUZZ_PICK) $(FUZZ_BUILD)/pick/$$t tests/fuzz/corpus/$$c \
			$(FUZZ_BUILD)/corpus/$$t; \
	done
