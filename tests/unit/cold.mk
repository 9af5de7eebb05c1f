# The cold tier's unit tests (daemon/pack.c, daemon/recompress.c): the
# codec and pack format, packs in a device, packs on the backing file and
# the shrinker's ladder, each with a shadow-model stress test in which
# packing, repacking, pack eviction and reads, writes, trims and zeroes run
# at once on several threads.
#
# tests/unit/build.mk builds and runs them in check-unit (so check-asan
# runs them under ASan and UBSan).
#
#   make check-unit-cold   just these; in TSAN_TARGETS, so check-tsan runs
#                          them under ThreadSanitizer
#   make check-soak-cold   the stress cases only, longer: COLD_SOAK_ITERATIONS
#                          operations per thread (default 2000000)

COLD_UNIT_BINS := $(BUILD)/tests/unit/test_daemon_pack \
	$(BUILD)/tests/unit/test_daemon_coldback
COLD_SOAK_ITERATIONS ?= 2000000

.PHONY: check-unit-cold check-soak-cold
check-unit-cold: $(COLD_UNIT_BINS)
	@fail=0; for t in $(COLD_UNIT_BINS); do echo "== $$t"; \
		$$t || fail=1; done; exit $$fail
check-soak-cold: $(COLD_UNIT_BINS)
	@fail=0; for t in $(COLD_UNIT_BINS); do echo "== $$t (soak)"; \
		CK_RUN_CASE=stress TEST_ITERATIONS=$(COLD_SOAK_ITERATIONS) \
		$$t || fail=1; done; exit $$fail
TSAN_TARGETS += check-unit-cold
