# Unit tests of the shrinker's modules: the backing file (daemon/backing.c),
# the pressure sources (daemon/pressure.c, daemon/cgroup.c) and the
# shrinker thread (daemon/shrinker.c).
#
# tests/unit/build.mk already builds these as UNIT_DAEMON_TESTS, linked with
# $(DAEMON_LIB_OBJS), and runs them in check-unit. The lines below make each
# one link even while daemon/build.mk does not list these objects (extra
# prerequisites land in $^; duplicates are dropped) and give it libxxhash.
#
# check-unit-shrink runs just these three; it is in TSAN_TARGETS, so
# `make check-tsan` runs them under ThreadSanitizer.

SHRINK_UNIT_TESTS := test_daemon_backing test_daemon_pressure \
	test_daemon_shrinker
SHRINK_UNIT_BINS := $(patsubst %,$(BUILD)/tests/unit/%, \
	$(filter $(SHRINK_UNIT_TESTS),$(UNIT_DAEMON_TESTS)))

$(BUILD)/tests/unit/test_daemon_backing: $(BUILD)/daemon/backing.o
$(BUILD)/tests/unit/test_daemon_pressure: $(BUILD)/daemon/pressure.o \
	$(BUILD)/daemon/cgroup.o
$(BUILD)/tests/unit/test_daemon_shrinker: $(BUILD)/daemon/shrinker.o \
	$(BUILD)/daemon/pressure.o $(BUILD)/daemon/cgroup.o
$(SHRINK_UNIT_BINS): DAEMON_LIBS += $(call pkglibs,libxxhash)

.PHONY: check-unit-shrink
check-unit-shrink: $(SHRINK_UNIT_BINS)
	@fail=0; for t in $(SHRINK_UNIT_BINS); do echo "== $$t"; \
		$$t || fail=1; done; exit $$fail
TSAN_TARGETS += check-unit-shrink
