/* SPDX-License-Identifier: MIT */
/*
 * backing_bdev.c - a block device (a spare partition, a whole disk) as the
 * backing store
 *
 * Users who come from the kernel's zram have a partition for writeback,
 * not a file. backing.c keeps its records the same way on either: a
 * device is a fixed-size file that is never truncated. What differs is
 * how it is opened, and what is checked before the first byte is written:
 *
 * - Exclusive. A block device is opened with O_EXCL, which the kernel
 *   turns into an exclusive claim: it fails with EBUSY if the device is
 *   mounted, is a member of an md/dm/LVM stack, or is open exclusively by
 *   another program (another zramd). The message names the device.
 * - Never over someone's data. Before anything is written, libblkid
 *   probes the device for any signature it knows (file systems, swap,
 *   partition tables, RAID and LVM members, LUKS, ...). A device with one
 *   is refused, naming what was found: writeback would destroy it. The
 *   daemon writes no signature of its own (its records carry a magic
 *   that blkid does not know), so a device that held zramd's records
 *   probes as empty and is taken again without asking.
 * - Sized by the device. Its size is BLKGETSIZE64; a backing_size larger
 *   than that is an error, one smaller uses only the start.
 */
#define _GNU_SOURCE
#include "backing_bdev.h"
#include "errmsg.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* 0 if blkid finds nothing on @fd; -EEXIST, naming it in @err, if it does. */
static int bdev_probe(int fd, const char *path, char *err, size_t errlen)
{
	blkid_probe pr = blkid_new_probe();
	const char *type = NULL, *what = "signature";
	int rc, ret = 0;

	if (!pr)
		return errmsg(err, errlen, ENOMEM,
				 "backing device %s: blkid: out of memory",
				 path);
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0) {
		blkid_free_probe(pr);
		return errmsg(err, errlen, EIO,
				 "backing device %s: blkid cannot probe it",
				 path);
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	rc = blkid_do_safeprobe(pr);
	if (rc == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0)
			what = "file system or other signature";
		else if (blkid_probe_lookup_value(pr, "PTTYPE", &type,
						  NULL) == 0)
			what = "partition table";
		ret = errmsg(err, errlen, EEXIST,
				"backing device %s holds a %s (%s); zramd "
				"would overwrite it (wipefs it first, or set "
				"backing_force=yes)",
				path, what, type ? type : "unknown");
	} else if (rc == -2) {
		ret = errmsg(err, errlen, EEXIST,
				"backing device %s holds several signatures; "
				"zramd would overwrite them (wipefs it first, "
				"or set backing_force=yes)",
				path);
	} else if (rc < 0) {
		ret = errmsg(err, errlen, EIO,
				"backing device %s: blkid probe failed", path);
	}
	blkid_free_probe(pr);
	return ret;
}

int backing_bdev_open(const char *path, uint64_t *size, bool force,
		      char *err, size_t errlen)
{
	uint64_t bytes;
	int fd, e;

	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == EBUSY)
			return errmsg(err, errlen, e,
					 "backing device %s: in use (mounted, "
					 "part of a RAID/LVM stack, or open by "
					 "another zramd)",
					 path);
		return errmsg(err, errlen, e, "backing device %s: open: %s",
				 path, strerror(e));
	}
	if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
		e = errno;
		close(fd);
		return errmsg(err, errlen, e,
				 "backing device %s: BLKGETSIZE64: %s", path,
				 strerror(e));
	}
	if (*size == 0) {
		*size = bytes;
	} else if (*size > bytes) {
		close(fd);
		return errmsg(err, errlen, EINVAL,
				 "backing device %s: backing_size %llu is larger "
				 "than the device (%llu bytes)",
				 path, (unsigned long long)*size,
				 (unsigned long long)bytes);
	}
	if (!force) {
		int r = bdev_probe(fd, path, err, errlen);

		if (r < 0) {
			close(fd);
			return r;
		}
	}
	return fd;
}
