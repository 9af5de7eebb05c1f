# make check-vm: zramd under the real kernel NBD client, in a qemu guest.
#
# tests/vm/run.sh boots Debian's kernel under qemu (TCG, no KVM needed)
# with a small initramfs built by tests/vm/mkguest.sh and cached in
# $(VM_OUT), and runs the scenarios ext4, swap, shrink and reconnect
# against the plugin, then local-swap, local-swap-shrink, local-oom and
# local-swap-rawdisk (backing=/dev/vda, a raw virtio disk) with nbdkit and
# the plugin inside the guest, as the guest's own swap, and restart: the
# daemon restarted under a mounted ext4 (zramd-reconnect, built here, goes
# into the guest). It takes a few minutes, so it is not part of
# `make check`. It installs the packages it needs itself (as root), or
# skips saying why. See tests/vm/README.md.
#
#   make check-vm                      all scenarios
#   make check-vm VM_SCENARIOS=ext4    some of them
#   TEST_SEED=N make check-vm          replay a run's data
#   VM_REPEAT=3 make check-vm VM_SCENARIOS=local-swap   three runs in a row

DEB_PACKAGES_EXTRA += qemu-system-x86 busybox-static cpio socat binutils \
	util-linux nbd-client e2fsprogs libnbd-bin

VMPROG := $(BUILD)/tests/vm/vmprog
VM_OUT := $(BUILD)/tests/vm/guest
VM_SCENARIOS ?=

# The guest runs it, so it is static: the initramfs has no C library for
# it. Plain flags: no sanitizers in a static guest binary.
$(VMPROG): tests/vm/vmprog.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 $(WARNFLAGS) -static -o $@ $<

ALL_TARGETS += $(VMPROG)

.PHONY: check-vm
check-vm: $(PLUGIN_SO) $(VMPROG) $(ZRAMD_RECONNECT)
	ZRAMD_PLUGIN=$(abspath $(PLUGIN_SO)) VMPROG=$(abspath $(VMPROG)) \
		ZRAMD_RECONNECT=$(abspath $(ZRAMD_RECONNECT)) \
		VM_OUT=$(abspath $(VM_OUT)) tests/vm/run.sh $(VM_SCENARIOS)
