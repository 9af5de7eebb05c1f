/* SPDX-License-Identifier: MIT */
/*
 * readback.c - reading evicted sectors back, and bringing hot ones home
 *
 * What. A sector the shrinker moved to the backing store (evict.c) is read
 * from there on every read. That is right for data that is cold, and wrong
 * for a working set that moves: once yesterday's cold data is today's hot
 * data, every read of it pays a disk read (a few to hundreds of
 * microseconds, against about 1.6 us from the pool) for as long as it
 * stays hot. Promotion moves such a sector back into the pool.
 *
 * When. A sector is promoted when it is read a second time while it is
 * still being read: the first read after its eviction marks its entry
 * (SECT_F_READ); the next read finds the mark and promotes it. The idle
 * writeback pass (evict.c), when it runs, clears the marks it finds, so
 * with writeback_idle the two reads must fall within one idle window; a
 * sector read once a day is never promoted then. One read is not enough:
 * a backup or a scrub reads everything once, and promoting all of it
 * would only push the real working set out. Promotion also needs room:
 * the pool must be below the high watermark (mem_high percent of
 * mem_limit, device promote_below) when it starts, and stay within
 * mem_limit once the object is allocated. A promotion that takes the
 * pool past the high watermark kicks the shrinker, as a write does, and
 * the shrinker evicts down to the low watermark, coldest first: so a hot
 * set that moves pushes the cold data out and comes into memory, instead
 * of stopping at the watermark with the pool full of yesterday's data.
 * Without mem_limit there is no watermark; the sector read twice is
 * promoted, and idle writeback or pressure sends it out again if it goes
 * cold.
 *
 *   read #1:  lock: BACKING, no mark -> set SECT_F_READ; unlock
 *             load record, decode (no lock)
 *   read #2:  lock: BACKING, marked; unlock
 *             load record, decode (no lock)
 *             zpool_malloc + copy the compressed record in (no lock)
 *             lock: entry still that slot? -> POOL; unlock
 *             release the slot (no lock)
 *
 * Promotion costs no compression: the record on disk is the pool object
 * as it was, so it is copied back as it is.
 *
 * Races. No stripe lock is held across the backing store's I/O, the
 * decompression or the allocation, so a write, a trim or an eviction of
 * the same sector may run meanwhile. Two checks under the lock keep them
 * safe:
 *
 *  - The read. With no lock held the slot may be freed (the sector was
 *    overwritten or trimmed) and its units given to another record while
 *    the record is read. A record read from a freed slot fails its
 *    checks (place, nonce, sector, checksum: see backing.c); so when a
 *    load fails, the entry is looked at again, and if it no longer names
 *    that slot the sector is read again from the start (-EAGAIN), with no
 *    error counted: the bytes that failed were never the sector's. A load
 *    that succeeds returned the sector's contents of some moment during
 *    the read, which is all a read that overlaps a write may expect.
 *  - The promotion. The entry is swapped to the new pool object only if
 *    it still names the slot the record came from (state, slot and
 *    length; the mark may differ). Otherwise a writer (or trim) got there
 *    first: its data stays, and the object made for the promotion is
 *    freed. Slot numbers carry backing.c's 19-bit nonce, so the same
 *    slot number returning to the same sector after an overwrite and a
 *    new eviction would take 2^19 writebacks inside one promotion.
 *
 * The shrinker may pick the new object for eviction before the entry
 * names it (zsmalloc's LRU sees it at once): zdev_evict() then finds the
 * entry not pointing at it and leaves it alone, as for a write.
 *
 * Counters: bd_reads per record read, bd_promotions per sector moved back
 * (also when the same sector goes out and comes back again).
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "sectors.h"
#include "zpool.h"

void zdev_set_promote(struct zdev *dev, bool on, uint64_t below)
{
	dev->promote = on;
	dev->promote_below = below;
}

/* @cur still names the record @e named (the read mark aside)? */
static bool same_slot(struct sect_entry cur, struct sect_entry e)
{
	return sect_state(cur) == SECT_BACKING && cur.val == e.val &&
	       sect_len(cur) == sect_len(e);
}

/*
 * Move @sector back to the pool: @data, @len bytes, is the record its
 * entry @e names. Takes and drops the stripe lock; no lock may be held.
 */
static void promote(struct zdev *dev, uint64_t sector, struct sect_entry e,
		    const void *data, unsigned int len)
{
	struct sect_entry cur, ne;
	struct sect_ref ref;
	unsigned long handle;
	uint64_t total;
	void *p;

	if (zpool_get_total_size(dev->pool) >= dev->promote_below)
		return;
	if (zpool_malloc(dev->pool, len, sector, &handle) < 0)
		return;
	total = zpool_get_total_size(dev->pool);
	if (dev->mem_limit && total > dev->mem_limit) {
		zpool_free(dev->pool, handle);
		return;
	}
	zstat_max(&dev->live, ZSTAT_mem_used_max, total);
	p = zpool_map_handle(dev->pool, handle, ZPOOL_MM_WO);
	memcpy(p, data, len);
	zpool_unmap_handle(dev->pool, handle);

	sect_lock(dev->tab, sector, &ref);
	cur = sect_ref_get(&ref);
	if (!same_slot(cur, e)) {
		/* Overwritten, trimmed or already promoted: theirs wins. */
		sect_unlock(&ref);
		zpool_free(dev->pool, handle);
		return;
	}
	ne = sect_make(SECT_POOL, handle, len);
	/* Same leaf, non-empty to non-empty: cannot fail. */
	sect_ref_set(dev->tab, &ref, ne);
	account(&ref, cur, -1);
	account(&ref, ne, 1);
	sect_unlock(&ref);
	if (dev->backing.release)
		dev->backing.release(dev->backing.ctx, e.val);
	zstat_add(&dev->live, ZSTAT_bd_promotions, 1);
	if (dev->hooks.kick)
		dev->hooks.kick(dev->hooks.ctx);
}

int zdev_readback(struct zdev *dev, struct sect_ref *ref, uint64_t sector,
		  struct sect_entry e, unsigned int o, unsigned int n,
		  unsigned char *dst)
{
	unsigned char *page = codec_scratch(0);
	unsigned char *cbuf = codec_scratch(1);
	unsigned int len = sect_len(e);
	bool hot = (e.meta & SECT_F_READ) != 0;
	unsigned char *rec = len == SECT_LEN_RAW ? page : cbuf;
	struct sect_entry cur;
	int r;

	if (!dev->has_backing) {
		sect_unlock(ref);
		return -EIO;
	}
	if (!hot && dev->promote)
		sect_ref_set_flag(ref, SECT_F_READ, true);
	sect_unlock(ref);

	r = dev->backing.load(dev->backing.ctx, e.val, sector, rec, len);
	/* A record that passed its checksum but does not decode is not what
	 * was written either. */
	if (r == 0 && len != SECT_LEN_RAW && dev_decode(dev, cbuf, len, page) < 0)
		r = -EBADMSG;
	if (r < 0) {
		sect_lock(dev->tab, sector, ref);
		cur = sect_ref_get(ref);
		sect_unlock(ref);
		if (!same_slot(cur, e))
			return -EAGAIN; /* the slot was freed: read again */
		zstat_add(&dev->live,
			  r == -EBADMSG ? ZSTAT_bd_checksum_errors
					: ZSTAT_bd_io_errors,
			  1);
		return -EIO;
	}
	zstat_add(&dev->live, ZSTAT_bd_reads, 1);
	if (hot && dev->promote)
		promote(dev, sector, e, rec, len);
	memcpy(dst, page + o, n);
	return 0;
}
