# The backing store's benchmarks (issue 17), apart from bench.py's tables:
#
#   make bench-backing  writeback and read-back rates of a file and a raw
#                       block device (a loop device), buffered and O_DIRECT,
#                       and of daemon/backing.c itself
#                       (tests/bench/bench_backing.c)
#   make bench-promote  a hot set that moves, with promote=off and on:
#                       reads per second served from memory
#                       (tests/bench/bench_promote.c)
#
# Both use the real-data file of bench-alloc (tests/bench/alloc.mk) and
# print markdown tables; docs/BENCHMARKS.md quotes them by hand. Scratch
# files go in $(BUILD)/bench. The loop device rows need root.

BENCH_BACKING_BIN := $(BUILD)/tests/bench/bench_backing
BENCH_PROMOTE_BIN := $(BUILD)/tests/bench/bench_promote
BENCH_PACK_BIN := $(BUILD)/tests/bench/bench_pack
BENCH_BACKING_DATA = $(or $(BENCH_ALLOC_DATA),$(BUILD)/bench/data-512M.tar)
EXTRA_CFLAGS_tests/bench += -Idaemon

$(BENCH_BACKING_BIN) $(BENCH_PROMOTE_BIN) $(BENCH_PACK_BIN): \
		$(BUILD)/tests/bench/%: \
		$(BUILD)/tests/bench/%.o $(DAEMON_LIB_OBJS) $(ALLOC_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

.PHONY: bench-backing bench-promote
bench-backing: deps $(BENCH_BACKING_BIN) $(BENCH_BACKING_DATA)
	$(BENCH_BACKING_BIN) $(BUILD)/bench $(BENCH_BACKING_DATA)
bench-promote: deps $(BENCH_PROMOTE_BIN) $(BENCH_BACKING_DATA)
	$(BENCH_PROMOTE_BIN) $(BUILD)/bench $(BENCH_BACKING_DATA)

# make bench-pack: the cold tier's pack sizes and zstd levels, in process
# (tests/bench/bench_pack.c); BENCH_PACK_MIB of the data (default 64).
.PHONY: bench-pack
bench-pack: deps $(BENCH_PACK_BIN) $(BENCH_BACKING_DATA)
	$(BENCH_PACK_BIN) $(BENCH_BACKING_DATA)

ALL_TARGETS += $(BENCH_BACKING_BIN) $(BENCH_PROMOTE_BIN) $(BENCH_PACK_BIN)
BENCH_TARGETS += bench-backing bench-promote bench-pack
