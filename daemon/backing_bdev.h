/* SPDX-License-Identifier: MIT */
/*
 * backing_bdev.h - opening a block device as the backing store (see
 * backing_bdev.c for what is checked and why)
 */
#ifndef ZRAMD_BACKING_BDEV_H
#define ZRAMD_BACKING_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Opens the block device @path exclusively and, unless @force, refuses it
 * if libblkid finds a signature on it. *@size: 0 to use the whole device
 * (set to its size), else the bytes to use, which must fit on it.
 *
 * Return: the descriptor, or -errno with one line in @err (-EBUSY in use,
 * -EEXIST a signature found, -EINVAL too small for *@size).
 */
int backing_bdev_open(const char *path, uint64_t *size, bool force,
		      char *err, size_t errlen);

#endif
