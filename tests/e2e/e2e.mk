# End-to-end tests: the plugin under a real nbdkit, driven by real clients
# (nbdsh, nbdcopy, qemu-io, fio, nbdfuse + ext4, nbd-client).
#
#   make check-e2e            every tests/e2e/test-*.sh (part of make check)
#   make check-e2e-quick      the fast ones with small workloads; under
#                             check-asan (ASan + UBSan)
#   make check-e2e-multiconn  the multi-connection test; under check-tsan
#   make check-unit-daemon-concurrent
#                             the concurrent cases of the sector table and
#                             device unit tests; under check-tsan
#
# One script by hand:
#   PLUGIN_SO=$PWD/build/nbdkit-zramd-plugin.so tests/e2e/test-nbdsh.sh
#
# A sanitized plugin needs its runtime loaded first into nbdkit (which is
# not instrumented): E2E_PRELOAD names it, and functions.sh puts it in
# LD_PRELOAD for nbdkit only, never for the clients.

E2E_QUICK_TESTS := test-nbdsh.sh test-qemu-io.sh test-params.sh \
	test-stats.sh test-fio.sh test-multiconn.sh
E2E_PRELOAD = $(strip \
	$(if $(findstring address,$(SANITIZE)),$(shell $(CC) -print-file-name=libasan.so)) \
	$(if $(findstring thread,$(SANITIZE)),$(shell $(CC) -print-file-name=libtsan.so)))
# Sanitizer reports end nbdkit with an error, which stop_zramd catches.
# Leaks are not checked here: nbdkit itself (uninstrumented, so its stacks
# cannot be told from the plugin's) leaks a few bytes at exit; the unit
# tests check the plugin's objects for leaks under check-asan.
E2E_ENV = PLUGIN_SO=$(abspath $(PLUGIN_SO)) \
	E2E_CACHE=$(abspath $(BUILD))/e2e-cache \
	E2E_PRELOAD="$(E2E_PRELOAD)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=66 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=halt_on_error=1:exitcode=66:report_signal_unsafe=0:suppressions=$(abspath tests/e2e/tsan.supp)

.PHONY: check-e2e check-e2e-quick check-e2e-multiconn \
	check-unit-daemon-concurrent
check-e2e: $(PLUGIN_SO)
	@$(E2E_ENV) tests/e2e/run.sh

check-e2e-quick: $(PLUGIN_SO)
	@$(E2E_ENV) E2E_QUICK=1 tests/e2e/run.sh $(E2E_QUICK_TESTS)

check-e2e-multiconn: $(PLUGIN_SO)
	@$(E2E_ENV) E2E_QUICK=1 tests/e2e/run.sh test-multiconn.sh

check-unit-daemon-concurrent: $(BUILD)/tests/unit/test_daemon_device \
		$(BUILD)/tests/unit/test_daemon_sectors
	CK_RUN_CASE=concurrent $(BUILD)/tests/unit/test_daemon_sectors
	CK_RUN_CASE=concurrent $(BUILD)/tests/unit/test_daemon_device

CHECK_TARGETS += check-e2e
ASAN_TARGETS += check-e2e-quick
TSAN_TARGETS += check-e2e-multiconn check-unit-daemon-concurrent
