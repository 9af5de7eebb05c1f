# Operations tests: sd_notify, zramd-stat, the systemd units, install.
#
#   make check-ops          everything below, in turn
#   make check-ops-notify   daemon/notify.c against a fake notify socket
#   make check-ops-shell    the shell tests (tests/ops/test-*.sh)
#
# The shell tests get every path they need through the environment, so
# each can also be run by hand: see the top of tests/ops/functions.sh.

DEB_PACKAGES_EXTRA += man-db groff-base systemd
# promtool (test-prometheus.sh), a pseudo-terminal for --watch
# (test-stat-watch.sh), psktool and certtool (tests/e2e/test-tls.sh).
DEB_PACKAGES_EXTRA += prometheus tmux gnutls-bin

EXTRA_CFLAGS_tests/ops := -Idaemon $(call pkgcflags,check)

OPS_TEST_NOTIFY := $(BUILD)/tests/ops/test_notify

$(OPS_TEST_NOTIFY): $(BUILD)/tests/ops/test_notify.o $(NOTIFY_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(call pkglibs,check) $(NOTIFY_LIBS)

ALL_TARGETS += $(OPS_TEST_NOTIFY)

# The plugin's key table, printed for test-config.sh (daemon/params.c).
ifneq ($(wildcard daemon/params.c),)
OPS_DUMP_PARAMS := $(BUILD)/tests/ops/dump_params
$(OPS_DUMP_PARAMS): $(BUILD)/tests/ops/dump_params.o $(DAEMON_LIB_OBJS) $(ALLOC_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS)
ALL_TARGETS += $(OPS_DUMP_PARAMS)
endif

.PHONY: check-ops check-ops-notify check-ops-shell
check-ops-notify: $(OPS_TEST_NOTIFY)
	$(OPS_TEST_NOTIFY)

# The plugin is optional here: tests that need it skip without it.
OPS_SHELL_DEPS := $(ZRAMD_STAT) $(BUILD)/systemd/units.stamp \
	$(OPS_DUMP_PARAMS) $(if $(wildcard daemon/plugin.c),$(PLUGIN_SO))

check-ops-shell: $(OPS_SHELL_DEPS)
	@BUILD=$(abspath $(BUILD)) MAKE="$(MAKE)" PLUGIN_SO=$(abspath $(PLUGIN_SO)) \
		ZRAMD_STAT=$(abspath $(ZRAMD_STAT)) \
		DUMP_PARAMS=$(if $(OPS_DUMP_PARAMS),$(abspath $(OPS_DUMP_PARAMS))) \
		tests/ops/run.sh

check-ops: check-ops-notify check-ops-shell

CHECK_TARGETS += check-ops
TSAN_TARGETS += check-ops-notify
ASAN_TARGETS += check-ops-notify
