# systemd units and the example configuration file.
#
# The units are *.in templates. The install paths are substituted into
# $(BUILD)/systemd/ (the build tree copy is what the tests verify), and
# `make install` copies them to $(DESTDIR)$(UNITDIR). The values come
# from PREFIX, SYSCONFDIR, PLUGINDIR (daemon/ops.mk) and the programs
# found on this machine; override any of them on the command line.

# zramd-swap, the attach/swapon script zramd-swap@.service runs.
LIBEXECDIR ?= $(PREFIX)/lib/zramd

NBDKIT ?= $(or $(shell command -v nbdkit 2>/dev/null),/usr/bin/nbdkit)
NBD_CLIENT ?= $(or $(shell PATH=/usr/sbin:/sbin:$$PATH command -v nbd-client 2>/dev/null),/usr/sbin/nbd-client)

UNIT_INS := $(wildcard systemd/*.in)
UNITS := $(UNIT_INS:systemd/%.in=$(BUILD)/systemd/%)

UNIT_SUBST = -e 's|@NBDKIT@|$(NBDKIT)|g' \
	-e 's|@NBD_CLIENT@|$(NBD_CLIENT)|g' \
	-e 's|@PLUGINDIR@|$(PLUGINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g'

# The values in force, rewritten only when they change, so that the units
# are regenerated after `make PREFIX=/usr` and not otherwise.
$(BUILD)/systemd/subst.vars: FORCE
	@mkdir -p $(@D)
	@echo "$(UNIT_SUBST)" > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

$(BUILD)/systemd/%: systemd/%.in $(BUILD)/systemd/subst.vars
	@mkdir -p $(@D)
	sed $(UNIT_SUBST) $< > $@.tmp
	@if grep -n '@[A-Z_]*@' $@.tmp; then \
		echo "$<: unsubstituted variable" >&2; rm -f $@.tmp; exit 1; fi
	mv -f $@.tmp $@

$(BUILD)/systemd/units.stamp: $(UNITS)
	@touch $@

ALL_TARGETS += $(BUILD)/systemd/units.stamp

.PHONY: FORCE install-units install-config
FORCE:

install-units: $(UNITS)
	install -d $(DESTDIR)$(UNITDIR)
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/
	install -d $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 systemd/zramd-swap $(DESTDIR)$(LIBEXECDIR)/zramd-swap

# An existing configuration is the administrator's: never overwrite it.
install-config: config/zramd.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/zramd
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/zramd/zramd.conf ]; then \
		echo "install-config: keeping $(DESTDIR)$(SYSCONFDIR)/zramd/zramd.conf;" \
			"the example is in $(DESTDIR)$(SYSCONFDIR)/zramd/zramd.conf.example"; \
		install -m 0644 config/zramd.conf \
			$(DESTDIR)$(SYSCONFDIR)/zramd/zramd.conf.example; \
	else \
		install -m 0644 config/zramd.conf $(DESTDIR)$(SYSCONFDIR)/zramd/zramd.conf; \
	fi

INSTALL_TARGETS += install-units install-config
