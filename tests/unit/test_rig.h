/* SPDX-License-Identifier: MIT */
/*
 * The fixture shared by the suites that test a device with a backing file
 * (test_daemon_evict.c, test_daemon_coldback.c, test_daemon_promote.c): a
 * scratch directory under $TMPDIR (or /tmp) made by the checked fixture and
 * removed with its backing file by the teardown, and a "rig", a device
 * wired to writeback (daemon/writeback.c) as the plugin wires it.
 *
 * A suite builds its own zdev_config / zwb_config (each tests different
 * keys), starting from rig_dev_config() / rig_wb_config(), which hold what
 * every suite sets: acceleration 1, the default huge threshold, a
 * shrinkable pool under @mem_limit with watermarks 90 / 80, and the memory
 * pressure sources off (whatever the machine's memory does, not here).
 * rig_create() then makes the device and its writeback, asserting both.
 * test_daemon_device.c and test_daemon_snapshot.c use only the two
 * config builders.
 */
#ifndef ZRAMD_TEST_RIG_H
#define ZRAMD_TEST_RIG_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "codec.h"
#include "device.h"
#include "writeback.h"

/* Makes a fresh scratch directory "$TMPDIR/zramd-@name-XXXXXX" in @dir. */
static inline void rig_scratch_make(char *dir, size_t len, const char *name)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, len, "%s/zramd-%s-XXXXXX", t ? t : "/tmp", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes @dir's backing file and then @dir. */
static inline void rig_scratch_remove(const char *dir)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/backing", dir);
	unlink(path);
	rmdir(dir);
}

/* A device with writeback; path is the backing store it was given. */
struct rig {
	struct zdev *dev;
	struct zwb *wb;
	char path[300];
};

static inline struct zdev_config rig_dev_config(const char *allocator,
						uint64_t size,
						uint64_t mem_limit)
{
	struct zdev_config dc = {
		.size = size,
		.allocator = allocator,
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.mem_limit = mem_limit,
		.shrinkable = true,
	};

	return dc;
}

static inline struct zwb_config rig_wb_config(uint64_t mem_limit)
{
	struct zwb_config wc = {
		.shrink = {
			.mem_limit = mem_limit,
			.mem_high = 90,
			.mem_low = 80,
			.pressure = { .psi = PRESSURE_OFF,
				      .cgroup = PRESSURE_OFF },
		},
	};

	return wc;
}

/*
 * Creates r->dev from @dc and r->wb from @wc with r->path (set by the
 * caller) as the backing store; the shrinker thread is not started.
 */
static inline void rig_create(struct rig *r, const struct zdev_config *dc,
			      struct zwb_config *wc)
{
	char err[512];
	int e;

	wc->backing = r->path;
	r->dev = zdev_create(dc, &e);
	ck_assert_msg(r->dev, "zdev_create %s: %s", dc->allocator,
		      strerror(-e));
	r->wb = zwb_create(r->dev, wc, err, sizeof(err));
	ck_assert_msg(r->wb, "zwb_create: %s", err);
}

static inline void rig_close(struct rig *r)
{
	zwb_destroy(r->wb);
	zdev_destroy(r->dev);
}

/* Slots of @b in use. */
static inline uint64_t rig_slots_used(struct backing *b)
{
	struct backing_stats bs;

	backing_get_stats(b, &bs);
	return bs.slots_used;
}

#endif
