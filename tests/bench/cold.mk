# make bench-cold: the cold tier (issue 14) against nbdkit memory (zstd and
# sparse) and the kernel's zram, in one run (tests/bench/bench_cold.py):
# density by RSS on the 512 MiB real-data corpus, hot-path IOPS with the
# cold tier off and on, and the cost of reading packed sectors. It
# replaces only the "Cold tier" block of docs/BENCHMARKS.md; BENCH_QUICK=1
# (64 MiB) and BENCH_SMOKE=1 (8 MiB) write $(BUILD)/bench/BENCHMARKS-cold.md
# instead. Needs root for the zram row. A plugin without recompress= gets
# its cold-tier rows printed as skipped; the peers still run.
#
# make check-bench-smoke runs it with BENCH_SMOKE=1, so the harness cannot
# rot unnoticed: it fails only if a run fails (a crash, a read-back that
# differs, a harness fault), never on a figure.

BENCH_COLD_DATA = $(if $(BENCH_QUICK)$(BENCH_SMOKE),,$(BENCH_ALLOC_DATA))
BENCH_COLD_RUN = PATH=/usr/bin:$$PATH /usr/bin/python3 tests/bench/bench_cold.py \
	--build $(BUILD) --plugin $(BENCH_PLUGIN)

.PHONY: bench-cold check-bench-smoke
bench-cold: deps $(if $(wildcard daemon/build.mk),$(BENCH_PLUGIN)) \
		$(BENCH_COLD_DATA)
	$(BENCH_COLD_RUN)

check-bench-smoke: deps $(if $(wildcard daemon/build.mk),$(BENCH_PLUGIN))
	BENCH_SMOKE=1 $(BENCH_COLD_RUN)

BENCH_TARGETS += bench-cold
