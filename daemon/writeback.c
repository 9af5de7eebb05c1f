/* SPDX-License-Identifier: MIT */
/*
 * writeback.c - a device's backing file and shrinker, wired together
 *
 * What: thin adapters between three modules that do not know each other
 * (see writeback.h for the picture). Why a module of its own: the plugin
 * stays nbdkit glue, and the unit tests drive exactly what the plugin
 * runs, shrinker thread included, without nbdkit.
 *
 * Eviction paths, all on the shrinker thread:
 *
 *   limit, PSI, cgroup: wb_shrink, a ladder: zdev_recompress (pack hot
 *       sectors, no disk) -> zpool_shrink -> (pool's evict callback)
 *       zdev_evict -> wb_store -> backing_write -> zdev_evict_packs ->
 *       wb_store_pack (packs, marked BACKING_FLAG_PACK)
 *   idle:               wb_evict_idle -> zdev_evict_idle -> wb_store
 *
 * after which the written records are pushed out of the page cache
 * (backing_drop_cache()), since a cgroup counts that cache as its own
 * memory: evicting into it would free nothing. Reads come back through
 * wb_load -> backing_read on the reading thread, under its stripe lock
 * (backing.c takes no lock across I/O and calls no one back).
 *
 * Counting: a shrink call's evictions are the growth of bd_writes during
 * the call. Only the shrinker thread evicts, so the difference is its
 * own; each is charged to the trigger of the call.
 *
 * Locking: none of its own. The shrinker calls in with no lock held; the
 * device calls the hooks with no stripe lock held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backing.h"
#include "sectors.h"
#include "writeback.h"
#include "zpool.h"

struct zwb {
	struct zdev *dev;
	struct backing *bk;
	struct shrinker *s;
	void (*log)(const char *msg);
};

/* The device counter each shrinker trigger is charged to. */
static const enum zstat trigger_stat[SHRINKER_NR_TRIGGERS] = {
	[SHRINKER_LIMIT] = ZSTAT_evict_limit,
	[SHRINKER_PSI] = ZSTAT_evict_psi,
	[SHRINKER_CGROUP] = ZSTAT_evict_cgroup,
	[SHRINKER_IDLE] = ZSTAT_evict_idle,
};
_Static_assert(SHRINKER_NR_TRIGGERS == 4, "a counter for each trigger");
_Static_assert(SECT_LEN_RAW == BACKING_MAX_PAYLOAD,
	       "a raw sector is the largest backing record");
_Static_assert(BACKING_SLOT_BITS <= 63,
	       "a slot number is store()'s non-negative int64_t as it is");

/* --- the device's backing ops --- */

static int64_t wb_store(void *ctx, uint64_t sector, const void *data,
			unsigned int len)
{
	struct zwb *wb = ctx;
	unsigned int flags = len == SECT_LEN_RAW ? 0 : BACKING_FLAG_COMPRESSED;
	uint64_t slot;
	int r;

	r = backing_write(wb->bk, sector, data, len, flags, &slot);
	return r < 0 ? r : (int64_t)slot;
}

/*
 * -EBADMSG: the record fails its checks or is not the one the table
 * expects (its length or its raw/compressed flag differ); -EIO: the file
 * could not be read. A read must never return wrong data.
 */
static int wb_load(void *ctx, uint64_t slot, uint64_t sector, void *buf,
		   unsigned int len)
{
	struct zwb *wb = ctx;
	unsigned int flags;
	size_t got;
	int r;

	r = backing_read(wb->bk, slot, sector, buf, len, &got, &flags);
	if (r < 0)
		return r == -EBADMSG ? -EBADMSG : -EIO;
	if (got != len || (flags & BACKING_FLAG_PACK) ||
	    !(flags & BACKING_FLAG_COMPRESSED) != (len == SECT_LEN_RAW))
		return -EBADMSG;
	return 0;
}

static int64_t wb_store_pack(void *ctx, uint64_t base, const void *data,
			     unsigned int len)
{
	struct zwb *wb = ctx;
	uint64_t slot;
	int r;

	r = backing_write(wb->bk, base, data, len, BACKING_FLAG_PACK, &slot);
	return r < 0 ? r : (int64_t)slot;
}

/* As wb_load(), for a pack: the record must say it is one. */
static int wb_load_pack(void *ctx, uint64_t slot, uint64_t base, void *buf,
			unsigned int len)
{
	struct zwb *wb = ctx;
	unsigned int flags;
	size_t got;
	int r;

	r = backing_read(wb->bk, slot, base, buf, len, &got, &flags);
	if (r < 0)
		return r == -EBADMSG ? -EBADMSG : -EIO;
	if (got != len || flags != BACKING_FLAG_PACK)
		return -EBADMSG;
	return 0;
}

static void wb_release(void *ctx, uint64_t slot)
{
	struct zwb *wb = ctx;

	backing_free(wb->bk, slot);
}

/* --- the device's hooks --- */

static void wb_kick(void *ctx)
{
	struct zwb *wb = ctx;

	shrinker_kick(wb->s);
}

static int wb_wait_room(void *ctx, unsigned int timeout_ms)
{
	struct zwb *wb = ctx;

	return shrinker_wait_room(wb->s, timeout_ms);
}

/* --- the shrinker's ops --- */

static uint64_t wb_pool_size(void *ctx)
{
	struct zwb *wb = ctx;

	return zpool_get_total_size(zdev_pool(wb->dev));
}

static bool wb_stopping(void *arg)
{
	struct zwb *wb = arg;

	return shrinker_stopping(wb->s);
}

static int wb_shrink(void *ctx, uint64_t bytes, enum shrinker_trigger trig,
		     struct shrink_result *res)
{
	struct zwb *wb = ctx;
	struct zstat_live *live = zdev_live_stats(wb->dev);
	uint64_t before = zstat_get(live, ZSTAT_bd_writes);
	struct zdev_recompress_result rr;
	uint64_t npacks = 0, sz0, sz1;
	size_t released = 0;
	int r;

	/*
	 * The ladder: first recompress (no disk, the most memory per CPU
	 * second), idle-marked sectors first, then any hot one; then evict
	 * hot objects; then packs, which are evicted last because each holds
	 * several sectors and costs a read of all of them to bring back.
	 */
	if (zdev_recompress(wb->dev, ZDEV_RECOMPRESS_ALL, bytes, wb_stopping,
			    wb, &rr) == 0 &&
	    rr.freed >= bytes) {
		res->evicted = 0;
		res->released = rr.freed;
		return 0;
	}
	bytes -= rr.freed;
	r = zpool_shrink(zdev_pool(wb->dev), (size_t)bytes, &released);
	if (r < 0 && released < bytes) {
		sz0 = wb_pool_size(wb);
		if (zdev_evict_packs(wb->dev, bytes - released, wb_stopping,
				     wb, &npacks) == 0 && npacks) {
			sz1 = wb_pool_size(wb);
			released += sz0 > sz1 ? sz0 - sz1 : 0;
			if (released >= bytes)
				r = 0;
		}
	}
	released += rr.freed;
	res->evicted = zstat_get(live, ZSTAT_bd_writes) - before;
	/*
	 * A call that fell short having evicted nothing released at most
	 * the allocator's caches of free pages, which a writer's failed
	 * allocation refills at once (zsmalloc keeps freed huge pages): not
	 * progress, or writers would retry for ever against a full file.
	 * What recompression freed is progress either way.
	 */
	res->released = r < 0 && !res->evicted ? rr.freed : released;
	if (res->evicted) {
		zstat_add(live, trigger_stat[trig], res->evicted);
		backing_drop_cache(wb->bk);
	}
	return r;
}


static int wb_evict_idle(void *ctx, unsigned int age_s,
			 struct shrink_result *res)
{
	struct zwb *wb = ctx;
	uint64_t before = wb_pool_size(wb), after;
	struct zdev_idle_result ir;
	int r;

	(void)age_s; /* the pass runs every idle_age: marks do the rest */
	r = zdev_evict_idle(wb->dev, wb_stopping, wb, &ir);
	after = wb_pool_size(wb);
	res->evicted = ir.evicted;
	res->released = before > after ? before - after : 0;
	if (ir.evicted) {
		zstat_add(zdev_live_stats(wb->dev), ZSTAT_evict_idle,
			  ir.evicted);
		backing_drop_cache(wb->bk);
	}
	return r;
}

static void wb_log(void *ctx, const char *msg)
{
	struct zwb *wb = ctx;

	if (wb->log)
		wb->log(msg);
}

/* --- lifetime --- */

struct zwb *zwb_create(struct zdev *dev, const struct zwb_config *cfg,
		       char *err, size_t errlen)
{
	struct shrinker_ops sops = {
		.pool_size = wb_pool_size,
		.shrink = wb_shrink,
		.evict_idle = wb_evict_idle,
		.log = wb_log,
	};
	struct zdev_backing_ops bops = {
		.store = wb_store,
		.load = wb_load,
		.release = wb_release,
		.store_pack = wb_store_pack,
		.load_pack = wb_load_pack,
	};
	struct zdev_hooks hooks = {
		.kick = wb_kick,
		.wait_room = wb_wait_room,
	};
	struct zwb *wb = calloc(1, sizeof(*wb));
	int e;

	if (!wb) {
		snprintf(err, errlen, "writeback: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	wb->dev = dev;
	wb->log = cfg->log;
	wb->bk = backing_open_force(cfg->backing, cfg->backing_size,
				    cfg->backing_force, err, errlen);
	if (!wb->bk)
		goto fail;
	sops.ctx = wb;
	wb->s = shrinker_create(&cfg->shrink, &sops, err, errlen);
	if (!wb->s)
		goto fail;
	bops.ctx = wb;
	hooks.ctx = wb;
	zdev_set_backing(dev, &bops);
	zdev_set_hooks(dev, &hooks);
	return wb;

fail:
	e = errno;
	backing_close(wb->bk);
	free(wb);
	errno = e;
	return NULL;
}

int zwb_start(struct zwb *wb)
{
	return shrinker_start(wb->s);
}

void zwb_stop(struct zwb *wb)
{
	if (wb)
		shrinker_stop(wb->s);
}

void zwb_destroy(struct zwb *wb)
{
	if (!wb)
		return;
	shrinker_destroy(wb->s);
	zdev_set_hooks(wb->dev, NULL);
	zdev_set_backing(wb->dev, NULL);
	backing_close(wb->bk);
	free(wb);
}

struct shrinker *zwb_shrinker(struct zwb *wb)
{
	return wb->s;
}

struct backing *zwb_backing(struct zwb *wb)
{
	return wb->bk;
}
