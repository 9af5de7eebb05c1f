# Unit tests (libcheck). Each tests/unit/test_NAME.c is one program.
#
#  - UNIT_ALLOC_TESTS link with the allocator objects only.
#  - UNIT_BACKEND_TESTS are compiled once per backend, with
#    -DZPOOL_BACKEND='"zbud"' or '"zsmalloc"', as test_NAME-zbud and
#    test_NAME-zsmalloc.
#  - UNIT_DAEMON_TESTS also link with $(DAEMON_LIB_OBJS), the daemon's
#    objects that do not need nbdkit (defined in daemon/build.mk).
#
# CK_FORK=no makes a crash debuggable; CK_RUN_SUITE / CK_RUN_CASE run a
# subset (see tests/README.md).

EXTRA_CFLAGS_tests/unit := -Iallocator -Idaemon $(call pkgcflags,check)
CHECK_LIBS = $(call pkglibs,check)
ZPOOL_BACKENDS := zsmalloc zbud

UNIT_ALLOC_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_alloc_*.c))
UNIT_BACKEND_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_zpool_*.c))
UNIT_DAEMON_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_daemon_*.c))

UNIT_BINS := $(UNIT_ALLOC_TESTS:%=$(BUILD)/tests/unit/%) \
	$(foreach t,$(UNIT_BACKEND_TESTS),$(foreach b,$(ZPOOL_BACKENDS),$(BUILD)/tests/unit/$(t)-$(b))) \
	$(UNIT_DAEMON_TESTS:%=$(BUILD)/tests/unit/%)

$(UNIT_ALLOC_TESTS:%=$(BUILD)/tests/unit/%): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(ALLOC_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS)

define backend_test
$(BUILD)/tests/unit/$(1)-$(2).o: tests/unit/$(1).c
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $$(EXTRA_CFLAGS_tests/unit) -DZPOOL_BACKEND='"$(2)"' -MMD -MP -c -o $$@ $$<
$(BUILD)/tests/unit/$(1)-$(2): $(BUILD)/tests/unit/$(1)-$(2).o $$(ALLOC_OBJS)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(CHECK_LIBS)
endef
$(foreach t,$(UNIT_BACKEND_TESTS),$(foreach b,$(ZPOOL_BACKENDS),$(eval $(call backend_test,$(t),$(b)))))

$(UNIT_DAEMON_TESTS:%=$(BUILD)/tests/unit/%): $(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(DAEMON_LIB_OBJS) $(ALLOC_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(DAEMON_LIBS)

ALL_TARGETS += $(UNIT_BINS)

# Every unit test runs even if one fails; the target fails at the end.
.PHONY: check-unit
check-unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail
CHECK_TARGETS += check-unit

# The unit tests under valgrind's memcheck: any error fails the run.
# CK_FORK=no keeps each suite in one process that valgrind follows;
# TEST_NO_RSS turns off RSS assertions (valgrind's own memory shows in RSS)
# and TEST_DURATION bounds the randomized tests, which run ~30x slower.
VALGRIND_FLAGS := --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--track-origins=yes --quiet
.PHONY: check-valgrind
check-valgrind: deps $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
		CK_FORK=no TEST_NO_RSS=1 TEST_DURATION=5 TEST_ITERATIONS=20000 \
		valgrind $(VALGRIND_FLAGS) $$t || fail=1; done; exit $$fail
