/* SPDX-License-Identifier: MIT */
/*
 * writeback.h - a device's backing file and shrinker, wired together
 *
 * The device core (device.h), the backing file (backing.h) and the
 * shrinker thread (shrinker.h) know nothing of each other. This module
 * connects them for one device:
 *
 *   device  --zdev_backing_ops-->  backing_write / backing_read / backing_free
 *   device  --zdev_hooks-------->  shrinker_kick (after a store),
 *                                  shrinker_wait_room (pool at mem_limit)
 *   shrinker --shrinker_ops----->  zpool_shrink (-> zdev_evict per object),
 *                                  zdev_evict_idle, backing_drop_cache
 *
 * and counts evict_limit, evict_psi, evict_cgroup and evict_idle in the
 * device's counters, so they appear in its stats.
 *
 * Lifetime, as the plugin uses it: zwb_create() once the device exists
 * (.get_ready), zwb_start() where threads may start (.after_fork),
 * zwb_stop() and zwb_destroy() before zdev_destroy() (.cleanup).
 *
 * Thread safety: zwb_create(), zwb_start(), zwb_stop() and zwb_destroy()
 * from one thread, while no request runs; the device may then be used
 * from any thread.
 */
#ifndef ZRAMD_WRITEBACK_H
#define ZRAMD_WRITEBACK_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "shrinker.h"

struct backing;

struct zwb_config {
	const char *backing;	  /* a file, or a directory (unnamed file) */
	uint64_t backing_size;	  /* bytes; 0: the free space at open */
	bool backing_force;	  /* a block device with a signature too */
	bool promote;		  /* hot sectors come back (readback.c) */
	struct shrinker_config shrink;
	void (*log)(const char *msg); /* the shrinker's log lines; or NULL */
};

struct zwb;

/**
 * zwb_create() - open the backing file and create the shrinker for @dev
 * @dev:    a device created with .shrinkable set; it must outlive the
 *          result
 * @cfg:    the configuration (copied; strings too)
 * @err:    on failure, a one-line message naming what failed
 * @errlen: size of @err
 *
 * The backing file is attached to @dev and the write path's hooks are
 * set; the shrinker thread does not run yet, so until zwb_start() a
 * write at mem_limit fails at once with -ENOSPC.
 *
 * Return: the writeback, or NULL with errno set: what backing_open() or
 * shrinker_create() failed with (ENOENT, EINVAL, EBUSY...), ENOMEM.
 */
struct zwb *zwb_create(struct zdev *dev, const struct zwb_config *cfg,
		       char *err, size_t errlen);

/**
 * zwb_start() - start the shrinker thread
 * @wb: the writeback
 *
 * Return: 0, or a negative errno from pthread_create().
 */
int zwb_start(struct zwb *wb);

/* Stop the shrinker thread (it finishes the eviction it is in). */
void zwb_stop(struct zwb *wb);

/*
 * Stop the thread if needed, detach the backing file and the hooks from
 * the device, close the backing file and free @wb (NULL is fine). Sectors
 * on the backing file read as -EIO afterwards: call it just before
 * zdev_destroy().
 */
void zwb_destroy(struct zwb *wb);

/* The parts, for the status line and the tests. */
struct shrinker *zwb_shrinker(struct zwb *wb);
struct backing *zwb_backing(struct zwb *wb);

#endif /* ZRAMD_WRITEBACK_H */
