# make bench-alloc: the zpool backends on real compressed data
# (tests/bench/bench_alloc.c). The data file is the one bench.py builds
# (a tar of system files, --sort=name, cut to 512 MiB), cached in
# $(BUILD)/bench; either bench builds it if it is missing.
# BENCH_ALLOC_MB=N uses only the first N MiB of it (default: all).
# BENCH_ALLOC_PROFILE=1 also prints where zsmalloc's overhead goes.

BENCH_ALLOC_BIN := $(BUILD)/tests/bench/bench_alloc
BENCH_ALLOC_DATA := $(BUILD)/bench/data-512M.tar
BENCH_ALLOC_MB ?=
EXTRA_CFLAGS_tests/bench += -Iallocator $(call pkgcflags,liblz4)

$(BENCH_ALLOC_BIN): $(BUILD)/tests/bench/bench_alloc.o $(ALLOC_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(call pkglibs,liblz4)

# The same bytes as bench.py's build_data(): system libraries and
# documentation, in name order.
$(BENCH_ALLOC_DATA):
	@mkdir -p $(@D)
	@echo "building $@ (512 MiB of system files)"
	@srcs=; for d in /usr/share/doc /usr/lib/*-linux-gnu /usr/share /usr/lib; do \
		[ -d "$$d" ] && srcs="$$srcs $$d"; done; \
	tar -cf - --sort=name $$srcs 2>/dev/null | head -c 536870912 > $@.tmp; \
	if [ "$$(stat -c %s $@.tmp)" != 536870912 ]; then \
		rm -f $@.tmp; echo "bench-alloc: the system files add up to less than 512 MiB" >&2; exit 1; fi; \
	mv $@.tmp $@

.PHONY: bench-alloc
bench-alloc: deps $(BENCH_ALLOC_BIN) $(BENCH_ALLOC_DATA)
	$(BENCH_ALLOC_BIN) $(BENCH_ALLOC_DATA) $(BENCH_ALLOC_MB)

ALL_TARGETS += $(BENCH_ALLOC_BIN)
BENCH_TARGETS += bench-alloc
