#!/usr/bin/env bash
# The kernel's NBD client: attach the device as /dev/nbd0 with nbd-client,
# mkfs.ext4, mount, copy files, umount, fsck, detach. Needs root, the nbd
# kernel module (/dev/nbd0) and an unused /dev/nbd0; skips saying which is
# missing. (tests/vm/ runs the same path inside a qemu guest.)
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbd-client
requires mkfs.ext4
[ "$(id -u)" = 0 ] || skip_all "needs root to attach /dev/nbd0"
[ -b /dev/nbd0 ] || modprobe nbd 2>/dev/null
[ -b /dev/nbd0 ] ||
	skip_all "no /dev/nbd0: the nbd kernel module is not available here"
if [ "$(cat /sys/block/nbd0/pid 2>/dev/null)" != "" ]; then
	skip_all "/dev/nbd0 is in use"
fi

alloc=$(allocators | cut -d' ' -f1)
start_zramd size=256M allocator="$alloc" || {
	not_ok "start"
	finish
}
mnt=$TMP/mnt
mkdir -p "$mnt"
check "nbd-client attaches /dev/nbd0" \
	nbd-client -unix "$SOCK" /dev/nbd0 -b 4096
on_exit "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
check "mkfs.ext4 /dev/nbd0" mkfs.ext4 -q /dev/nbd0
if mount /dev/nbd0 "$mnt"; then
	on_exit "umount '$mnt' 2>/dev/null"
	check "copy files in" cp -a /usr/share/perl "$mnt/"
	check "umount" umount "$mnt"
	check "fsck -fn is clean" e2fsck -fn /dev/nbd0
	check "mount again" mount -o ro /dev/nbd0 "$mnt"
	check "the files are the same" \
		diff -r --no-dereference /usr/share/perl "$mnt/perl"
	umount "$mnt"
else
	not_ok "mount /dev/nbd0"
fi
check "nbd-client detaches" nbd-client -d /dev/nbd0
check_stop "zramd"
finish
