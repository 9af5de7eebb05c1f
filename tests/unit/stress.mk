# check-unit-stress: only the multi-threaded zpool suites (stress, and shrink
# with its eviction race), once per backend. make check-tsan runs this
# target under ThreadSanitizer; make check-unit runs these binaries as well.

UNIT_STRESS_BINS := $(foreach t,test_zpool_stress test_zpool_shrink, \
	$(foreach b,$(ZPOOL_BACKENDS),$(BUILD)/tests/unit/$(t)-$(b)))

.PHONY: check-unit-stress
check-unit-stress: $(UNIT_STRESS_BINS)
	@fail=0; for t in $(UNIT_STRESS_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

TSAN_TARGETS += check-unit-stress
