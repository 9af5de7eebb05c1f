# make bench: zramd against nbdkit memory, nbdkit memory allocator=zstd and
# the kernel's zram, in one run (tests/bench/bench.py). It writes
# docs/BENCHMARKS.md; BENCH_QUICK=1 makes a short run that writes
# $(BUILD)/bench/BENCHMARKS.md instead. BENCH_PEERS and BENCH_SECTIONS run
# a subset (see the top of bench.py). Needs root for the zram rows.
#
# The zramd rows use the plugin daemon/build.mk builds; without it they
# are reported as skipped.

BENCH_PLUGIN = $(or $(PLUGIN_SO),$(BUILD)/nbdkit-zramd-plugin.so)

# The 512 MiB data file is shared with bench-alloc (tests/bench/alloc.mk),
# whose rule builds it; depending on it keeps two builds from racing.
BENCH_DEVICE_DATA = $(if $(BENCH_QUICK),,$(BENCH_ALLOC_DATA))

.PHONY: bench-device
bench-device: deps $(if $(wildcard daemon/build.mk),$(BENCH_PLUGIN)) \
		$(BENCH_DEVICE_DATA)
	PATH=/usr/bin:$$PATH /usr/bin/python3 tests/bench/bench.py \
		--build $(BUILD) --plugin $(BENCH_PLUGIN)

BENCH_TARGETS += bench-device
DEB_PACKAGES_EXTRA += python3 diffutils
