# Unit tests of the shrinker's modules: the backing file (daemon/backing.c),
# the pressure sources (daemon/pressure.c, daemon/cgroup.c), the shrinker
# thread (daemon/shrinker.c), and eviction through all of them wired to a
# device (daemon/writeback.c: test_daemon_evict).
#
# tests/unit/build.mk builds and runs these in check-unit, as
# UNIT_DAEMON_TESTS linked with $(DAEMON_LIB_OBJS), which holds those
# modules (daemon/build.mk).
#
# check-unit-shrink runs just these; it is in TSAN_TARGETS, so
# `make check-tsan` runs them under ThreadSanitizer (test_daemon_evict's
# concurrent case races overwrites, trims and reads against the shrinker
# thread's evictions).

SHRINK_UNIT_TESTS := test_daemon_backing test_daemon_pressure \
	test_daemon_shrinker test_daemon_evict
SHRINK_UNIT_BINS := $(patsubst %,$(BUILD)/tests/unit/%, \
	$(filter $(SHRINK_UNIT_TESTS),$(UNIT_DAEMON_TESTS)))

.PHONY: check-unit-shrink
check-unit-shrink: $(SHRINK_UNIT_BINS)
	@fail=0; for t in $(SHRINK_UNIT_BINS); do echo "== $$t"; \
		$$t || fail=1; done; exit $$fail
TSAN_TARGETS += check-unit-shrink
