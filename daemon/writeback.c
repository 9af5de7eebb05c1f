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
 * wb_load -> backing_read on the reading thread, with no stripe lock held
 * (readback.c; a partial write's read-modify-write holds it, which is
 * fine: backing.c takes no lock across I/O and calls no one back). Hot
 * sectors read back are promoted to the pool below the high watermark
 * (zdev_set_promote(), set here from the shrinker's configuration).
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

/* One record of @len bytes for @sector with @flags; its slot, or -errno. */
static int64_t wb_write(struct zwb *wb, uint64_t sector, const void *data,
			unsigned int len, unsigned int flags)
{
	uint64_t slot;
	int r;

	r = backing_write(wb->bk, sector, data, len, flags, &slot);
	return r < 0 ? r : (int64_t)slot;
}

static int64_t wb_store(void *ctx, uint64_t sector, const void *data,
			unsigned int len)
{
	return wb_write(ctx, sector, data, len,
			len == SECT_LEN_RAW ? 0 : BACKING_FLAG_COMPRESSED);
}

/*
 * Read the record in @slot for @sector into @buf: it must be @len bytes
 * long with exactly @flags. -EBADMSG: the record fails its checks or is
 * not the one the table expects; -EIO: the file could not be read. A
 * read must never return wrong data.
 */
static int wb_read(struct zwb *wb, uint64_t slot, uint64_t sector, void *buf,
		   unsigned int len, unsigned int flags)
{
	unsigned int got_flags;
	size_t got;
	int r;

	r = backing_read(wb->bk, slot, sector, buf, len, &got, &got_flags);
	if (r < 0)
		return r == -EBADMSG ? -EBADMSG : -EIO;
	return got == len && got_flags == flags ? 0 : -EBADMSG;
}

static int wb_load(void *ctx, uint64_t slot, uint64_t sector, void *buf,
		   unsigned int len)
{
	return wb_read(ctx, slot, sector, buf, len,
		       len == SECT_LEN_RAW ? 0 : BACKING_FLAG_COMPRESSED);
}

static int64_t wb_store_pack(void *ctx, uint64_t base, const void *data,
			     unsigned int len)
{
	return wb_write(ctx, base, data, len, BACKING_FLAG_PACK);
}

/* As wb_load(), for a pack: the record must say it is one. */
static int wb_load_pack(void *ctx, uint64_t slot, uint64_t base, void *buf,
			unsigned int len)
{
	return wb_read(ctx, slot, base, buf, len, BACKING_FLAG_PACK);
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
	/*
	 * What counts is what the pool gives back, not the bytes of the
	 * objects recompression freed: those sit in partly used pages until
	 * a compaction moves their neighbours out. Counting the objects
	 * told writers there was room when the pool was as full as before,
	 * and a write at mem_limit failed with ENOSPC instead of waiting for
	 * the eviction below (test-persist.sh, round trip with a backing
	 * file, caught it).
	 */
	sz0 = wb_pool_size(wb);
	if (zdev_recompress(wb->dev, ZDEV_RECOMPRESS_ALL, bytes, wb_stopping,
			    wb, &rr) == 0 &&
	    rr.freed)
		(void)zpool_compact(zdev_pool(wb->dev));
	sz1 = wb_pool_size(wb);
	rr.freed = sz0 > sz1 ? sz0 - sz1 : 0;
	if (rr.freed >= bytes) {
		res->evicted = 0;
		res->released = rr.freed;
		return 0;
	}
	bytes -= rr.freed;
	r = zpool_shrink(zdev_pool(wb->dev), (size_t)bytes, &released);
	if (r < 0 && released < bytes) {
		/*
		 * Packs leave holes all over the pool's pages, as
		 * recompression does: compact to give pages back, and evict
		 * more (twice as much each round) while the pool has not
		 * shrunk by what was asked: a few small packs out of
		 * half-used pages free no page at all, and a call that
		 * frees nothing tells the writers waiting for room ENOSPC.
		 */
		uint64_t want = bytes - released, got = 0, n;

		sz0 = wb_pool_size(wb);
		for (int round = 0; round < 8 && got < bytes - released;
		     round++, want *= 2) {
			n = 0;
			if (zdev_evict_packs(wb->dev, want, wb_stopping, wb,
					     &n) < 0 || !n)
				break;
			npacks += n;
			(void)zpool_compact(zdev_pool(wb->dev));
			sz1 = wb_pool_size(wb);
			got = sz0 > sz1 ? sz0 - sz1 : 0;
		}
		released += got;
		if (released >= bytes)
			r = 0;
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
	uint64_t high;
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
	/* Promotion stops at the shrinker's high watermark. */
	high = cfg->shrink.mem_limit / 100 * cfg->shrink.mem_high +
	       cfg->shrink.mem_limit % 100 * cfg->shrink.mem_high / 100;
	zdev_set_promote(dev, cfg->promote,
			 cfg->shrink.mem_limit ? high : UINT64_MAX);
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
	zdev_set_promote(wb->dev, false, 0);
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
