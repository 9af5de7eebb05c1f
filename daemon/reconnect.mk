# zramd-reconnect: hands the kernel's NBD client a new connection to a
# restarted zramd (see the top of daemon/zramd-reconnect.c). It links
# libnbd (the handshake) and libnl-genl-3 (NBD_CMD_RECONFIGURE), the
# library nbd-client itself uses for netlink.

DEB_PACKAGES_EXTRA += libnbd-dev libnl-genl-3-dev

ZRAMD_RECONNECT := $(BUILD)/zramd-reconnect
RECONNECT_PKGS := libnbd libnl-genl-3.0

$(BUILD)/daemon/zramd-reconnect.o: EXTRA_CFLAGS_daemon += $(call pkgcflags,$(RECONNECT_PKGS))
$(ZRAMD_RECONNECT): $(BUILD)/daemon/zramd-reconnect.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(call pkglibs,$(RECONNECT_PKGS))

ALL_TARGETS += $(ZRAMD_RECONNECT)

.PHONY: install-zramd-reconnect
install-zramd-reconnect: $(ZRAMD_RECONNECT)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(ZRAMD_RECONNECT) $(DESTDIR)$(BINDIR)/zramd-reconnect
INSTALL_TARGETS += install-zramd-reconnect

# tests/ops/test-zramd-reconnect.sh runs the built binary.
check-ops-shell: $(ZRAMD_RECONNECT)
