# Operations: the systemd notification object the plugin links, and the
# zramd-stat tool. (daemon/build.mk, the plugin's own fragment, is
# included before this one.)
#
# The plugin links $(NOTIFY_OBJ) and adds $(NOTIFY_LIBS) to its link line.
# notify.c needs only <nbdkit-plugin.h>: it speaks the notify protocol
# itself, without libsystemd (see the top of daemon/notify.c), so
# NOTIFY_LIBS is empty.

NOTIFY_OBJ := $(BUILD)/daemon/notify.o
NOTIFY_LIBS =

ZRAMD_STAT := $(BUILD)/zramd-stat

$(ZRAMD_STAT): $(BUILD)/daemon/zramd-stat.o $(BUILD)/daemon/zramd-stat-prom.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

ALL_TARGETS += $(NOTIFY_OBJ) $(ZRAMD_STAT)

# Where `make install` puts the plugin. Under PREFIX=/usr it is nbdkit's
# own plugin directory, so `nbdkit zramd` finds it by its short name;
# under any other PREFIX (the default is /usr/local) it is
# $(LIBDIR)/nbdkit/plugins, and the units name the full path.
ifeq ($(PREFIX),/usr)
PLUGINDIR ?= $(or $(shell $(PKG_CONFIG) --variable=plugindir nbdkit 2>/dev/null),$(LIBDIR)/nbdkit/plugins)
else
PLUGINDIR ?= $(LIBDIR)/nbdkit/plugins
endif
# The plugin's file name; daemon/build.mk defines PLUGIN_SO.
PLUGIN_SO ?= $(BUILD)/nbdkit-zramd-plugin.so

.PHONY: install-zramd-stat install-plugin
install-zramd-stat: $(ZRAMD_STAT)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(ZRAMD_STAT) $(DESTDIR)$(BINDIR)/zramd-stat
install-plugin: $(PLUGIN_SO)
	install -d $(DESTDIR)$(PLUGINDIR)
	install -m 0755 $(PLUGIN_SO) $(DESTDIR)$(PLUGINDIR)/nbdkit-zramd-plugin.so
INSTALL_TARGETS += install-zramd-stat install-plugin
