/* SPDX-License-Identifier: MIT */
/*
 * evict.c - the device core's eviction: pool objects to the backing file
 *
 * The shrinker (shrinker.c, wired up by writeback.c) moves pool objects to
 * the backing file through zdev_evict(), the pool's evict callback, and
 * zdev_evict_idle(), its idle pass. Both save the object with no lock held
 * and then commit under the stripe lock only if the entry still holds
 * that object; a writer that got there first wins and the saved copy's
 * slot is released.
 *
 * Lock ordering is device.c's: stripe lock -> pool locks. zdev_evict()
 * runs inside the pool's evict callback, whose caller holds no stripe
 * lock, and takes them itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "sectors.h"
#include "zpool.h"

/*
 * The last step of an eviction: the locked entry @cur (POOL) becomes
 * BACKING @slot, the stripe is unlocked and the pool object freed.
 */
static void commit_backing(struct zdev *dev, struct sect_ref *ref,
			   struct sect_entry cur, int64_t slot)
{
	struct sect_entry ne =
		sect_make(SECT_BACKING, (uint64_t)slot, sect_len(cur));

	/* Same leaf, non-empty to non-empty: cannot fail. */
	sect_ref_set(dev->tab, ref, ne);
	account(ref, cur, -1);
	account(ref, ne, 1);
	sect_unlock(ref);
	zpool_free(dev->pool, (unsigned long)cur.val);
	zstat_add(&dev->live, ZSTAT_bd_writes, 1);
}

/*
 * Store the @len bytes at @buf, copied from @sector's pool object, on the
 * backing file, then move the entry there if it still holds the object
 * copied: entry @expect's handle, in state POOL (with @exact, @expect's
 * metadata bit for bit, idle mark included). Takes and drops the stripe
 * lock; must be called without it.
 *
 * Return: 1 if the sector moved; 0 if its entry changed meanwhile (the
 * slot is released again: the writer that changed it owns the sector);
 * or the negative errno of the store, counted in bd_failed.
 */
static int store_and_commit(struct zdev *dev, uint64_t sector,
			    const void *buf, unsigned int len,
			    struct sect_entry expect, bool exact)
{
	struct sect_entry cur;
	struct sect_ref ref;
	int64_t slot;

	slot = dev->backing.store(dev->backing.ctx, sector, buf, len);
	if (slot < 0) {
		zstat_add(&dev->live, ZSTAT_bd_failed, 1);
		return (int)slot;
	}
	sect_lock(dev->tab, sector, &ref);
	cur = sect_ref_get(&ref);
	if (sect_state(cur) != SECT_POOL || cur.val != expect.val ||
	    (exact && cur.meta != expect.meta)) {
		sect_unlock(&ref);
		if (dev->backing.release)
			dev->backing.release(dev->backing.ctx, (uint64_t)slot);
		return 0;
	}
	commit_backing(dev, &ref, cur, slot);
	return 1;
}

int zdev_evict(struct zdev *dev, uint64_t sector, unsigned long handle)
{
	unsigned char *buf = codec_scratch(1);
	struct sect_entry e;
	struct sect_ref ref;
	unsigned int len;
	void *p;
	int r;

	if (!dev->has_backing)
		return -ENOSPC;
	if (sector >= sect_nsectors(dev->tab))
		return 0;
	sect_lock(dev->tab, sector, &ref);
	e = sect_ref_get(&ref);
	sect_unlock(&ref);
	if (sect_state(e) != SECT_POOL || e.val != handle)
		return 0; /* not ours any more (or not yet): the writer frees */
	len = sect_len(e);

	/* The backend keeps the object intact until we return. */
	p = zpool_map_handle(dev->pool, handle, ZPOOL_MM_RO);
	memcpy(buf, p, len);
	zpool_unmap_handle(dev->pool, handle);
	r = store_and_commit(dev, sector, buf, len, e, false);
	return r < 0 ? r : 0;
}

/*
 * Idle writeback, one sector: mark it, or move it if it was marked; on
 * the backing file, clear its read mark (readback.c's idle window). The
 * object is copied out under the stripe lock: outside a pool evict
 * callback nothing keeps a handle alive once a writer has replaced it.
 * The move is committed only if the entry is bit for bit the one copied,
 * mark included. Only this pass sets the mark and every write makes an
 * entry without it, so an equal entry cannot be a new object that happens
 * to reuse the old handle.
 */
static int idle_one(struct zdev *dev, uint64_t sector,
		    struct zdev_idle_result *res)
{
	unsigned char *buf = codec_scratch(1);
	struct sect_entry e;
	struct sect_ref ref;
	unsigned int len;
	void *p;
	int r;

	sect_lock(dev->tab, sector, &ref);
	e = sect_ref_get(&ref);
	if (sect_state(e) == SECT_BACKING && (e.meta & SECT_F_READ)) {
		/* The idle window closes: a read mark is forgotten. */
		sect_ref_set_flag(&ref, SECT_F_READ, false);
		sect_unlock(&ref);
		return 0;
	}
	if (sect_state(e) != SECT_POOL) {
		sect_unlock(&ref);
		return 0;
	}
	if (!(e.meta & SECT_F_IDLE)) {
		sect_ref_set_flag(&ref, SECT_F_IDLE, true);
		sect_unlock(&ref);
		res->marked++;
		return 0;
	}
	len = sect_len(e);
	p = zpool_map_handle(dev->pool, (unsigned long)e.val, ZPOOL_MM_RO);
	memcpy(buf, p, len);
	zpool_unmap_handle(dev->pool, (unsigned long)e.val);
	sect_unlock(&ref);

	r = store_and_commit(dev, sector, buf, len, e, true);
	if (r <= 0)
		return r;
	res->evicted++;
	res->bytes += len;
	return 0;
}

#define IDLE_BATCH 256u

/* zdev_evict_idle(): the pool sectors of the next stretch of the table. */
struct idle_batch {
	uint64_t sector[IDLE_BATCH];
	unsigned int n;
	uint64_t next; /* where the next batch starts */
};

static int idle_collect(void *arg, uint64_t sector, uint64_t count,
			struct sect_entry e)
{
	struct idle_batch *b = arg;

	(void)count; /* more than 1 only for empty runs */
	if (sect_state(e) != SECT_POOL &&
	    !(sect_state(e) == SECT_BACKING && (e.meta & SECT_F_READ)))
		return 0;
	b->sector[b->n++] = sector;
	if (b->n < IDLE_BATCH)
		return 0;
	b->next = sector + 1;
	return 1;
}

int zdev_evict_idle(struct zdev *dev, bool (*stop)(void *arg), void *arg,
		    struct zdev_idle_result *res)
{
	uint64_t end = sect_nsectors(dev->tab), pos = 0;
	struct idle_batch *b;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (!dev->has_backing)
		return -ENOSPC;
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	/*
	 * The sectors are gathered under the scan's leaf locks, then visited
	 * one by one under their own: the scan callback may not take locks.
	 */
	while (pos < end && r == 0 && !(stop && stop(arg))) {
		b->n = 0;
		if (sect_scan(dev->tab, pos, end, idle_collect, b) == 0)
			pos = end;
		else
			pos = b->next;
		for (unsigned int i = 0; i < b->n && r == 0; i++)
			r = idle_one(dev, b->sector[i], res);
	}
	free(b);
	return r;
}
