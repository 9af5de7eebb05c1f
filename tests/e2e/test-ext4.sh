#!/usr/bin/env bash
# A file system on the device: nbdfuse exposes it as a file, losetup makes
# that a block device, then mkfs.ext4, mount, copy a directory tree in,
# umount, fsck -fn must be clean, mount again and compare every file.
# Skips (saying why) where FUSE or loop devices cannot be used.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdfuse
requires losetup
requires mkfs.ext4
requires fusermount3
[ "$(id -u)" = 0 ] || skip_all "needs root for losetup and mount"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ -e /dev/loop-control ] || skip_all "no loop devices (/dev/loop-control)"

# The tree to copy: Python's library (~50 MiB, thousands of small files),
# or Perl's (~20 MiB) for a quick run.
tree=/usr/lib/python3.11
[ -n "$E2E_QUICK" ] || [ ! -d "$tree" ] && tree=/usr/share/perl
[ -d "$tree" ] || skip_all "no directory tree to copy ($tree)"
src=$TMP/src
mkdir -p "$src"
cp -a "$tree" "$src/" 2>/dev/null

for alloc in $(allocators); do
	start_zramd size=256M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	if ! ext4_check --fstrim "$alloc" "$src" "copy a tree in"; then
		stop_zramd
		continue
	fi
	echo "$alloc: orig_data_size=$(stat_value orig_data_size)" \
		"mem_used_total=$(stat_value mem_used_total)"
	check_stop "$alloc"
done
finish
