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
	fuse=$TMP/fuse-$alloc mnt=$TMP/mnt-$alloc
	mkdir -p "$fuse" "$mnt"
	nbdfuse "$fuse/disk" --unix "$SOCK" &
	on_exit "fusermount3 -u '$fuse' 2>/dev/null"
	if ! wait_for 100 test -s "$fuse/disk"; then
		skip "$alloc: nbdfuse could not mount (no FUSE here?)"
		stop_zramd
		continue
	fi
	if ! loop=$(losetup -f --show "$fuse/disk" 2>"$TMP/losetup.err"); then
		skip "$alloc: losetup failed: $(cat "$TMP/losetup.err")"
		fusermount3 -u "$fuse"
		stop_zramd
		continue
	fi
	on_exit "losetup -d $loop 2>/dev/null"
	check "$alloc: mkfs.ext4" mkfs.ext4 -q -E nodiscard "$loop"
	if ! mount "$loop" "$mnt" 2>"$TMP/mount.err"; then
		skip "$alloc: mount failed: $(cat "$TMP/mount.err")"
	else
		on_exit "umount '$mnt' 2>/dev/null"
		check "$alloc: copy a tree in" cp -a "$src/." "$mnt/"
		check "$alloc: fstrim" fstrim "$mnt"
		check "$alloc: umount" umount "$mnt"
		check "$alloc: fsck -fn is clean" e2fsck -fn "$loop"
		check "$alloc: mount again" mount -o ro "$loop" "$mnt"
		check "$alloc: every file is the same" \
			diff -r --no-dereference "$src" "$mnt" -x lost+found
		umount "$mnt"
	fi
	losetup -d "$loop"
	fusermount3 -u "$fuse"
	wait_for 50 test ! -e "$fuse/disk"
	echo "$alloc: orig_data_size=$(stat_value orig_data_size)" \
		"mem_used_total=$(stat_value mem_used_total)"
	check_stop "$alloc"
done
finish
