# Promotion (daemon/readback.c): tests/unit/test_daemon_promote.c is built
# and run in check-unit as one of UNIT_DAEMON_TESTS. check-unit-promote
# runs it alone; it is in TSAN_TARGETS, so `make check-tsan` runs its
# stress case (readers promoting while writers overwrite and trim the same
# sectors and the shrinker thread evicts) under ThreadSanitizer.

PROMOTE_UNIT_BIN := $(BUILD)/tests/unit/test_daemon_promote

.PHONY: check-unit-promote
check-unit-promote: $(PROMOTE_UNIT_BIN)
	$(PROMOTE_UNIT_BIN)
TSAN_TARGETS += check-unit-promote
