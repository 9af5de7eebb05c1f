# make bench-snapshot: persist= snapshot write and load times, MB/s, and
# the time from start to the first read answered, for the 512 MiB bench
# corpus and 1 GiB of it (tests/bench/bench_snapshot.py). Writes
# docs/BENCHMARKS-snapshot.md; BENCH_QUICK=1 a 64 MiB run into
# $(BUILD)/bench/BENCHMARKS-snapshot.md. Part of make bench.

BENCH_SNAPSHOT_OUT = $(if $(BENCH_QUICK),$(BUILD)/bench/BENCHMARKS-snapshot.md,docs/BENCHMARKS-snapshot.md)

.PHONY: bench-snapshot
bench-snapshot: deps $(if $(wildcard daemon/build.mk),$(BENCH_PLUGIN)) \
		$(BENCH_ALLOC_DATA)
	@mkdir -p $(BUILD)/bench
	PATH=/usr/bin:$$PATH /usr/bin/python3 tests/bench/bench_snapshot.py \
		--plugin $(abspath $(BENCH_PLUGIN)) --data $(BENCH_ALLOC_DATA) \
		--workdir $(abspath $(BUILD))/bench --out $(BENCH_SNAPSHOT_OUT) \
		$(if $(BENCH_QUICK),--quick)

BENCH_TARGETS += bench-snapshot
