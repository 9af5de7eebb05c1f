# The nbdkit plugin, nbdkit-zramd-plugin.so, and `make run`.
#
#   $(PLUGIN_SO)       the plugin: nbdkit ./$(BUILD)/nbdkit-zramd-plugin.so 1G
#   DAEMON_LIB_OBJS    the daemon objects that do not need nbdkit, which the
#                      unit tests (tests/unit/build.mk) and fuzzers link
#   DAEMON_LIBS        the libraries those objects need
#   make run           serve a default 1 GiB device in the foreground
#
# `make install` puts the plugin where daemon/ops.mk says (install-plugin);
# with PREFIX=/usr that is nbdkit's plugin directory
# (pkg-config --variable=plugindir nbdkit), and then `nbdkit zramd 1G`
# finds it by its short name.

DAEMON_LIB_SRCS := daemon/sectors.c daemon/codec.c daemon/device.c daemon/evict.c \
	daemon/params.c daemon/stats.c daemon/bg.c daemon/backing.c \
	daemon/pressure.c daemon/cgroup.c daemon/shrinker.c daemon/writeback.c \
	daemon/localswap.c daemon/backing_bdev.c daemon/snapshot.c daemon/snapshot_load.c
# Sectors read back from the backing file, and promotion (issue 17).
DAEMON_LIB_SRCS += daemon/readback.c
# On SIGTERM, end the clients' connections before nbdkit refuses their
# next request (daemon/stopconn.c).
DAEMON_LIB_SRCS += daemon/stopconn.c
# The cold tier: zstd packs of idle sectors (issue 14).
DAEMON_LIB_SRCS += daemon/pack.c daemon/recompress.c
# Snapshots of packs as they are (issue 15).
DAEMON_LIB_SRCS += daemon/snapshot_pack.c
DAEMON_LIB_OBJS := $(DAEMON_LIB_SRCS:%.c=$(BUILD)/%.o)
# libxxhash-dev's header is used header-only (daemon/backing.c), so the
# library itself is not linked.
DAEMON_LIBS = $(call pkglibs,liblz4) $(call pkglibs,inih) $(call pkglibs,blkid) \
	$(call pkglibs,libzstd)

# daemon/notify.c (systemd notification, from daemon/ops.mk) is linked when
# it exists; it needs nbdkit, so it is not one of DAEMON_LIB_OBJS.
PLUGIN_NOTIFY_OBJ := $(if $(wildcard daemon/notify.c),$(BUILD)/daemon/notify.o)
EXTRA_CFLAGS_daemon += $(call pkgcflags,liblz4) $(call pkgcflags,inih) \
	$(call pkgcflags,libzstd) \
	$(call pkgcflags,libxxhash) $(if $(PLUGIN_NOTIFY_OBJ),-DZRAMD_HAVE_NOTIFY)

PLUGIN_SO := $(BUILD)/nbdkit-zramd-plugin.so
PLUGIN_OBJS := $(BUILD)/daemon/plugin.o $(PLUGIN_NOTIFY_OBJ) \
	$(DAEMON_LIB_OBJS) $(ALLOC_OBJS)

# Only plugin_init and the debug flags are exported (daemon/plugin.syms):
# calls between the plugin's own files then bind directly, not via the PLT.
$(PLUGIN_SO): $(PLUGIN_OBJS) daemon/plugin.syms
	$(CC) $(ALL_LDFLAGS) -shared -Wl,--version-script=daemon/plugin.syms \
		-o $@ $(PLUGIN_OBJS) $(DAEMON_LIBS) \
		$(if $(PLUGIN_NOTIFY_OBJ),$(NOTIFY_LIBS))

ALL_TARGETS += $(PLUGIN_SO)

# make run: a 1 GiB zsmalloc device on a unix socket in the build folder.
# RUN_ARGS adds parameters: make run RUN_ARGS="allocator=zbud mem_limit=256M"
# RUN_NBDKIT_OPTS are nbdkit's own options; --threads=1 as in the systemd
# units (README, "Known issues").
RUN_DEFINED := 1
RUN_SIZE ?= 1G
RUN_ARGS ?=
RUN_NBDKIT_OPTS ?= --threads=1
RUN_SOCK = $(abspath $(BUILD))/zramd.sock
RUN_STATS = $(abspath $(BUILD))/zramd.stats

.PHONY: run
run: deps $(PLUGIN_SO)
	@rm -f $(RUN_SOCK)
	@echo "zramd: serving a $(RUN_SIZE) device on $(RUN_SOCK)"
	@echo "  stats:     $(RUN_STATS)  (zramd-stat $(RUN_STATS))"
	@echo "  kernel:    nbd-client -unix $(RUN_SOCK) /dev/nbd0 -b 4096"
	@echo "             (modprobe nbd first; detach with nbd-client -d /dev/nbd0)"
	@echo "  fuse:      mkdir -p /tmp/zramd && nbdfuse /tmp/zramd/disk 'nbd+unix:///?socket=$(RUN_SOCK)' &"
	@echo "  qemu-io:   qemu-io -f raw 'nbd+unix:///?socket=$(RUN_SOCK)'"
	@echo "  info:      nbdinfo 'nbd+unix:///?socket=$(RUN_SOCK)'"
	@echo "  Ctrl-C stops it (the data is gone then: it lives in RAM)."
	nbdkit -f $(RUN_NBDKIT_OPTS) -U $(RUN_SOCK) $(PLUGIN_SO) $(RUN_SIZE) \
		stats=$(RUN_STATS) $(RUN_ARGS)
