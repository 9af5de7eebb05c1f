/* SPDX-License-Identifier: MIT */
/*
 * device.c - the device core: requests cut into sectors, sectors encoded
 *
 * A whole-sector write goes:
 *
 *   codec_encode (no lock) -> zpool_malloc + copy in (no lock)
 *     -> stripe lock: swap the entry, account -> unlock
 *       -> free what the old entry held (pool handle, backing slot)
 *
 * so the stripe lock covers a table update only, and the two slow steps,
 * compression and the allocation, run in parallel across threads. A write
 * that covers part of a sector must read the old contents, and does it all
 * under the stripe lock (decode, patch, encode, allocate, swap), which is
 * what keeps two partial writes to the same sector from losing each
 * other's bytes. Reads copy the compressed object out under the lock and
 * decompress after unlocking; a sector on the backing file is read with
 * no lock held, and brought back to the pool if it is hot (readback.c).
 *
 * Lock ordering: stripe lock (sectors.c) -> pool locks (inside the zpool).
 * The pool's evict callback takes stripe locks, so zpool_shrink() and
 * zpool_compact() are never called with a stripe lock held.
 *
 * Eviction to the backing file (zdev_evict(), zdev_evict_idle()) is in
 * evict.c. A write that finds the pool at mem_limit waits for room
 * (zdev_hooks.wait_room) with no lock held: a partial write drops its
 * stripe lock to wait and starts over, because the evict callback it
 * waits for may need that very lock.
 *
 * struct zdev and the per-stripe accounting, which both files update, are
 * in device_internal.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "pack.h"
#include "sectors.h"
#include "zpool.h"

static int pool_evict(void *ctx, struct zpool *pool, unsigned long handle,
		      uint64_t owner)
{
	(void)pool;
	if (owner & ZDEV_OWNER_PACK)
		return 0; /* packs leave through zdev_evict_packs() */
	return zdev_evict(ctx, owner, handle);
}

struct zdev *zdev_create(const struct zdev_config *cfg, int *err)
{
	struct zdev *dev;
	struct zpool_ops ops;

	*err = -EINVAL;
	if (cfg->size > ZDEV_MAX_SIZE || !cfg->allocator ||
	    cfg->acceleration < CODEC_ACCEL_MIN ||
	    cfg->acceleration > CODEC_ACCEL_MAX || cfg->huge_threshold < 1 ||
	    cfg->huge_threshold > CODEC_HUGE_THRESHOLD_MAX ||
	    (cfg->mem_limit && cfg->mem_limit < ZDEV_MEM_LIMIT_MIN) ||
	    (cfg->zstd_level &&
	     (cfg->zstd_level < CODEC_ZSTD_LEVEL_MIN ||
	      cfg->zstd_level > CODEC_ZSTD_LEVEL_MAX)) ||
	    (cfg->recompress_level &&
	     (cfg->recompress_level < CODEC_ZSTD_LEVEL_MIN ||
	      cfg->recompress_level > CODEC_ZSTD_LEVEL_MAX)) ||
	    cfg->pack_slots > PACK_MAX_SLOTS)
		return NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		*err = -ENOMEM;
		return NULL;
	}
	dev->size = cfg->size;
	dev->mem_limit = cfg->mem_limit;
	dev->acceleration = cfg->acceleration;
	dev->huge_threshold = cfg->huge_threshold;
	dev->zstd_level = cfg->zstd_level;
	dev->recompress_level = cfg->recompress_level;
	dev->pack_slots = cfg->pack_slots ? cfg->pack_slots : PACK_MAX_SLOTS;
	dev->tab = sect_create((cfg->size + SECT_SIZE - 1) >> SECT_SHIFT);
	if (!dev->tab)
		goto fail;
	ops = (struct zpool_ops){ .evict = pool_evict, .ctx = dev };
	dev->pool = zpool_create_pool(cfg->allocator,
				      cfg->shrinkable ? &ops : NULL, false);
	if (!dev->pool)
		goto fail;
	dev->live.v[ZSTAT_disksize] = cfg->size;
	dev->live.v[ZSTAT_mem_limit] = cfg->mem_limit;
	*err = 0;
	return dev;

fail:
	*err = errno == EINVAL ? -EINVAL : -ENOMEM;
	sect_destroy(dev->tab);
	free(dev);
	return NULL;
}

void zdev_destroy(struct zdev *dev)
{
	if (!dev)
		return;
	zdev_packs_destroy(dev);
	zpool_destroy_pool(dev->pool);
	sect_destroy(dev->tab);
	free(dev);
}

uint64_t zdev_size(const struct zdev *dev)
{
	return dev->size;
}

struct zpool *zdev_pool(struct zdev *dev)
{
	return dev->pool;
}

void zdev_set_backing(struct zdev *dev, const struct zdev_backing_ops *ops)
{
	dev->has_backing = ops != NULL;
	if (ops)
		dev->backing = *ops;
	else
		memset(&dev->backing, 0, sizeof(dev->backing));
}

void zdev_set_hooks(struct zdev *dev, const struct zdev_hooks *hooks)
{
	if (hooks)
		dev->hooks = *hooks;
	else
		memset(&dev->hooks, 0, sizeof(dev->hooks));
}

struct zstat_live *zdev_live_stats(struct zdev *dev)
{
	return &dev->live;
}

uint64_t zdev_table_bytes(const struct zdev *dev)
{
	return sect_mem_bytes(dev->tab);
}

/* --- entries ------------------------------------------------------------- */

/* Give back what an entry that was just replaced held. No lock held. */
static void release_entry(struct zdev *dev, struct sect_entry e)
{
	switch (sect_state(e)) {
	case SECT_POOL:
		zpool_free(dev->pool, (unsigned long)e.val);
		break;
	case SECT_BACKING:
		if (dev->has_backing && dev->backing.release)
			dev->backing.release(dev->backing.ctx, e.val);
		break;
	case SECT_PACKED:
		zdev_pack_kill_slot(dev, pack_of(e.val));
		break;
	default:
		break;
	}
}

/*
 * Turn an encoded sector into a table entry, allocating and filling a pool
 * object if it needs one. May run under a stripe lock.
 */
static int store_encoded(struct zdev *dev, uint64_t sector,
			 const struct codec_out *c, struct sect_entry *e)
{
	unsigned long handle;
	uint64_t total;
	void *p;
	int r;

	switch (c->kind) {
	case CODEC_ZERO:
		*e = SECT_ENTRY_EMPTY;
		return 0;
	case CODEC_SAME:
		*e = sect_make(SECT_SAME, c->word, 0);
		return 0;
	case CODEC_COMPRESSED:
	case CODEC_RAW:
		break;
	}
	r = zpool_malloc(dev->pool, c->len, sector, &handle);
	if (r < 0)
		return r;
	total = zpool_get_total_size(dev->pool);
	if (dev->mem_limit && total > dev->mem_limit) {
		zpool_free(dev->pool, handle);
		return -ENOSPC;
	}
	zstat_max(&dev->live, ZSTAT_mem_used_max, total);
	p = zpool_map_handle(dev->pool, handle, ZPOOL_MM_WO);
	memcpy(p, c->data, c->len);
	zpool_unmap_handle(dev->pool, handle);
	*e = sect_make(SECT_POOL, handle, c->len);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * A store found the pool at mem_limit: wait for the shrinker to make
 * room. @since is 0 before the first wait, then the time it began.
 * Returns true to try again. No lock may be held: the shrinker's evict
 * callback takes stripe locks.
 */
static bool wait_for_room(struct zdev *dev, uint64_t *since)
{
	uint64_t now;

	if (!dev->hooks.wait_room)
		return false;
	now = now_ms();
	if (!*since)
		*since = now;
	else if (now - *since >= ZDEV_ROOM_GIVE_UP_MS)
		return false;
	return dev->hooks.wait_room(dev->hooks.ctx, ZDEV_ROOM_WAIT_MS) == 0;
}

/* A new entry @e is in the table: tell the shrinker if it grew the pool. */
static void stored(struct zdev *dev, struct sect_entry e)
{
	if (sect_state(e) == SECT_POOL && dev->hooks.kick)
		dev->hooks.kick(dev->hooks.ctx);
}

/*
 * The sector of the PACKED entry @e into the 4096 bytes at @dst: the pack
 * object (all its chunks) is copied to the per-thread buffer, then
 * decompressed whole. The caller holds the stripe lock of an entry
 * pointing at the pack, or a pin (zdev_pack_pin()). Counts pack_reads.
 *
 * The thread keeps its last decompressed pack: a pack never changes once
 * made, so the next read of any of its sectors (a sequential read) copies
 * the sector from it instead. The key is the descriptor's address and
 * serial, compared under that lock or pin: a later pack at the same
 * address has another serial.
 */
static __thread struct {
	const struct pack *pk; /* NULL: nothing cached */
	uint64_t serial;
	unsigned int n;
	const struct pack *want; /* the fetch's pack, for the decode */
	uint64_t want_serial;
} pcache;

/* Return: the object's length, 0 if the thread has the pack decompressed. */
static long fetch_packed(struct zdev *dev, struct sect_entry e)
{
	unsigned char *all = zdev_pack_buf();
	struct pack *pk = pack_of(e.val);

	if (!all)
		return -ENOMEM;
	if (pcache.pk == pk && pcache.serial == pk->serial)
		return 0;
	pcache.want = pk;
	pcache.want_serial = pk->serial;
	return zdev_pack_fetch(dev, pk, all + PACK_MAX_SLOTS * PACK_SECTOR);
}

static int unpack_sector(struct zdev *dev, struct sect_entry e, long len,
			 void *dst)
{
	unsigned char *all = zdev_pack_buf();
	unsigned int slot = pack_slot_of(e.val);
	int n;

	if (len < 0)
		return len == -ENOMEM ? -ENOMEM : -EIO;
	if (len > 0) {
		pcache.pk = NULL; /* the buffer is about to change */
		n = pack_decode(all + PACK_MAX_SLOTS * PACK_SECTOR,
				(size_t)len, NULL, all);
		if (n < 0)
			return -EIO;
		pcache.pk = pcache.want;
		pcache.serial = pcache.want_serial;
		pcache.n = (unsigned int)n;
	}
	if (slot >= pcache.n)
		return -EIO;
	memcpy(dst, all + (size_t)slot * SECT_SIZE, SECT_SIZE);
	zstat_add(&dev->live, ZSTAT_pack_reads, 1);
	return 0;
}

static int read_packed(struct zdev *dev, struct sect_entry e, void *dst)
{
	return unpack_sector(dev, e, fetch_packed(dev, e), dst);
}

/* device_internal.h: read-modify-write here. */
int zdev_decode_locked(struct zdev *dev, uint64_t sector, struct sect_entry e,
		       unsigned char *dst)
{
	unsigned int len = sect_len(e);
	unsigned char *cbuf;
	void *p;
	int r;

	switch (sect_state(e)) {
	case SECT_EMPTY:
		memset(dst, 0, SECT_SIZE);
		return 0;
	case SECT_SAME:
		codec_fill(dst, e.val, 0, SECT_SIZE);
		return 0;
	case SECT_POOL:
		p = zpool_map_handle(dev->pool, (unsigned long)e.val,
				     ZPOOL_MM_RO);
		if (len == SECT_LEN_RAW) {
			memcpy(dst, p, SECT_SIZE);
			r = 0;
		} else {
			r = dev_decode(dev, p, len, dst);
		}
		zpool_unmap_handle(dev->pool, (unsigned long)e.val);
		return r;
	case SECT_PACKED:
		return read_packed(dev, e, dst);
	case SECT_BACKING:
		if (!dev->has_backing)
			return -EIO;
		cbuf = len == SECT_LEN_RAW ? dst : codec_scratch(1);
		r = dev->backing.load(dev->backing.ctx, e.val, sector, cbuf,
				      len);
		/* A record that passed its checksum but does not decode is
		 * not what was written either. */
		if (r == 0 && len != SECT_LEN_RAW &&
		    dev_decode(dev, cbuf, len, dst) < 0)
			r = -EBADMSG;
		if (r == 0)
			zstat_add(&dev->live, ZSTAT_bd_reads, 1);
		else if (r == -EBADMSG)
			zstat_add(&dev->live, ZSTAT_bd_checksum_errors, 1);
		else
			zstat_add(&dev->live, ZSTAT_bd_io_errors, 1);
		return r < 0 ? -EIO : r;
	}
	return -EIO;
}

/* --- per-sector operations ----------------------------------------------- */

/*
 * Read bytes [@o, @o + @n) of @sector into @dst. The compressed object is
 * copied to a thread-local buffer under the lock and decompressed after.
 */
static int read_sector(struct zdev *dev, uint64_t sector, unsigned int o,
		       unsigned int n, unsigned char *dst)
{
	struct sect_ref ref;
	struct sect_entry e;
	unsigned char *cbuf = codec_scratch(1);
	unsigned int len;
	void *p;
	int r;

again:
	sect_lock(dev->tab, sector, &ref);
	e = sect_ref_get(&ref);
	len = sect_len(e);
	/* Touched: not idle any more (on BACKING, the bit is SECT_F_READ). */
	if ((e.meta & SECT_F_IDLE) && sect_state(e) == SECT_POOL)
		sect_ref_set_flag(&ref, SECT_F_IDLE, false);
	switch (sect_state(e)) {
	case SECT_EMPTY:
		sect_unlock(&ref);
		memset(dst, 0, n);
		return 0;
	case SECT_SAME:
		sect_unlock(&ref);
		codec_fill(dst, e.val, o, n);
		return 0;
	case SECT_POOL:
		p = zpool_map_handle(dev->pool, (unsigned long)e.val,
				     ZPOOL_MM_RO);
		if (len == SECT_LEN_RAW)
			memcpy(dst, (unsigned char *)p + o, n);
		else
			memcpy(cbuf, p, len);
		zpool_unmap_handle(dev->pool, (unsigned long)e.val);
		sect_unlock(&ref);
		if (len == SECT_LEN_RAW)
			return 0;
		break;
	case SECT_BACKING:
		/* Unlocks; readback.c. */
		r = zdev_readback(dev, &ref, sector, e, o, n, dst);
		if (r == -EAGAIN)
			goto again;
		return r;
	case SECT_PACKED: {
		/*
		 * Pinned, then copied (from the pool, or read from the backing
		 * file) and decompressed with no lock held: a pack never
		 * changes once made.
		 */
		struct pack *pk = pack_of(e.val);
		unsigned char *page = o == 0 && n == SECT_SIZE
					      ? dst
					      : codec_scratch(0);

		zdev_pack_pin(pk);
		sect_unlock(&ref);
		r = read_packed(dev, e, page);
		zdev_pack_unpin(dev, pk);
		if (r == 0 && page != dst)
			memcpy(dst, page + o, n);
		return r;
	}
	}
	if (o == 0 && n == SECT_SIZE)
		return dev_decode(dev, cbuf, len, dst);
	r = dev_decode(dev, cbuf, len, codec_scratch(0));
	if (r == 0)
		memcpy(dst, (unsigned char *)codec_scratch(0) + o, n);
	return r;
}

/* Install @ne for @sector (locked in @ref), account, and unlock. */
static int swap_locked(struct zdev *dev, struct sect_ref *ref,
		       struct sect_entry ne, struct sect_entry *old)
{
	int r;

	*old = sect_ref_get(ref);
	r = sect_ref_set(dev->tab, ref, ne);
	if (r == 0) {
		account(ref, *old, -1);
		account(ref, ne, 1);
	}
	sect_unlock(ref);
	return r;
}

static int write_full(struct zdev *dev, uint64_t sector,
		      const unsigned char *src)
{
	struct codec_out c;
	struct sect_entry ne, old;
	struct sect_ref ref;
	int r;

	dev_encode(dev, src, &c);
	for (uint64_t since = 0;;) {
		r = store_encoded(dev, sector, &c, &ne);
		if (r != -ENOSPC || !wait_for_room(dev, &since))
			break;
	}
	if (r < 0)
		return r;
	sect_lock(dev->tab, sector, &ref);
	r = swap_locked(dev, &ref, ne, &old);
	if (r < 0) {
		release_entry(dev, ne);
		return r;
	}
	release_entry(dev, old);
	stored(dev, ne);
	return 0;
}

/*
 * Replace bytes [@o, @o + @n) of @sector with @src (NULL: zeroes), all
 * under the stripe lock; zeroing leaves an empty sector alone (it reads
 * as zeroes already). If the pool is at mem_limit and @may_wait, the lock
 * is dropped (the shrinker's evict callback needs it), room is waited
 * for, and the whole read-modify-write is done again from the start,
 * since the sector may have changed meanwhile.
 */
static int write_partial(struct zdev *dev, uint64_t sector, unsigned int o,
			 unsigned int n, const unsigned char *src,
			 bool may_wait)
{
	unsigned char *page = codec_scratch(0);
	struct sect_entry old, ne;
	struct sect_ref ref;
	struct codec_out c;
	int r;

	for (uint64_t since = 0;;) {
		sect_lock(dev->tab, sector, &ref);
		old = sect_ref_get(&ref);
		if (!src && sect_state(old) == SECT_EMPTY) {
			sect_unlock(&ref);
			return 0;
		}
		r = zdev_decode_locked(dev, sector, old, page);
		if (r < 0)
			goto unlock;
		if (src)
			memcpy(page + o, src, n);
		else
			memset(page + o, 0, n);
		dev_encode(dev, page, &c);
		r = store_encoded(dev, sector, &c, &ne);
		if (r == 0)
			break;
		sect_unlock(&ref);
		if (r != -ENOSPC || !may_wait || !wait_for_room(dev, &since))
			return r;
	}
	r = swap_locked(dev, &ref, ne, &old);
	if (r < 0) {
		release_entry(dev, ne);
		return r;
	}
	release_entry(dev, old);
	stored(dev, ne);
	return 0;

unlock:
	sect_unlock(&ref);
	return r;
}

/* Make a whole sector a hole; counts notify_free if it held anything. */
static void discard_sector(struct zdev *dev, uint64_t sector)
{
	struct sect_entry old;
	struct sect_ref ref;

	sect_lock(dev->tab, sector, &ref);
	old = sect_ref_get(&ref);
	if (sect_state(old) == SECT_EMPTY) {
		sect_unlock(&ref);
		return;
	}
	/* Setting EMPTY never allocates, so it cannot fail. */
	sect_ref_set(dev->tab, &ref, SECT_ENTRY_EMPTY);
	account(&ref, old, -1);
	ref.stripe->acct[ACCT_FREED]++;
	sect_unlock(&ref);
	release_entry(dev, old);
}

/* --- requests ------------------------------------------------------------ */

static bool range_ok(struct zdev *dev, size_t len, uint64_t off)
{
	if (off > dev->size || len > dev->size - off) {
		zstat_add(&dev->live, ZSTAT_invalid_io, 1);
		return false;
	}
	return true;
}

/*
 * Walk [@off, @off + @len) sector by sector: @o is the offset in the
 * sector, @n the bytes in it, @done the bytes before it.
 */
#define for_each_piece(off, len, sector, o, n, done)                         \
	for ((done) = 0, (sector) = (off) >> SECT_SHIFT,                     \
	    (o) = (unsigned int)((off) & (SECT_SIZE - 1)),                   \
	    (n) = (unsigned int)((len) < SECT_SIZE - (o) ? (len)             \
							 : SECT_SIZE - (o)); \
	     (done) < (len); (done) += (n), (sector)++, (o) = 0,             \
	    (n) = (unsigned int)((len) - (done) < SECT_SIZE                  \
					 ? (len) - (done)                    \
					 : SECT_SIZE))

int zdev_read(struct zdev *dev, void *buf, size_t len, uint64_t off)
{
	unsigned char *dst = buf;
	uint64_t sector;
	unsigned int o, n;
	size_t done;
	int r;

	if (!range_ok(dev, len, off)) {
		zstat_add(&dev->live, ZSTAT_failed_reads, 1);
		return -EINVAL;
	}
	for_each_piece(off, len, sector, o, n, done)
	{
		r = read_sector(dev, sector, o, n, dst + done);
		if (r < 0) {
			zstat_add(&dev->live, ZSTAT_failed_reads, 1);
			return r;
		}
	}
	zstat_add(&dev->live, ZSTAT_num_reads, 1);
	return 0;
}

int zdev_write(struct zdev *dev, const void *buf, size_t len, uint64_t off,
	       bool fua)
{
	const unsigned char *src = buf;
	uint64_t sector;
	unsigned int o, n;
	size_t done;
	int r;

	(void)fua; /* RAM: every write is as durable as it will ever be */
	if (!range_ok(dev, len, off)) {
		zstat_add(&dev->live, ZSTAT_failed_writes, 1);
		return -EINVAL;
	}
	for_each_piece(off, len, sector, o, n, done)
	{
		if (n == SECT_SIZE)
			r = write_full(dev, sector, src + done);
		else
			r = write_partial(dev, sector, o, n, src + done, true);
		if (r < 0) {
			zstat_add(&dev->live, ZSTAT_failed_writes, 1);
			return r;
		}
	}
	zstat_add(&dev->live, ZSTAT_num_writes, 1);
	return 0;
}

int zdev_zero(struct zdev *dev, size_t len, uint64_t off)
{
	uint64_t sector;
	unsigned int o, n;
	size_t done;
	int r;

	if (!range_ok(dev, len, off)) {
		zstat_add(&dev->live, ZSTAT_failed_writes, 1);
		return -EINVAL;
	}
	for_each_piece(off, len, sector, o, n, done)
	{
		if (n == SECT_SIZE) {
			discard_sector(dev, sector);
			continue;
		}
		r = write_partial(dev, sector, o, n, NULL, true);
		if (r < 0) {
			zstat_add(&dev->live, ZSTAT_failed_writes, 1);
			return r;
		}
	}
	return 0;
}

int zdev_trim(struct zdev *dev, size_t len, uint64_t off)
{
	uint64_t sector;
	unsigned int o, n;
	size_t done;

	if (!range_ok(dev, len, off))
		return -EINVAL;
	for_each_piece(off, len, sector, o, n, done)
	{
		if (n == SECT_SIZE)
			discard_sector(dev, sector);
		else
			(void)write_partial(dev, sector, o, n, NULL, false);
	}
	return 0;
}

int zdev_flush(struct zdev *dev)
{
	(void)dev;
	return 0;
}

/* zdev_extents(): runs of one type are merged before they are reported. */
struct extents_walk {
	zdev_extent_fn fn;
	void *arg;
	bool req_one;
	bool pending;
	uint64_t start, end; /* bytes */
	uint32_t type;
	uint64_t size;
	int err;
};

static int emit_extent(struct extents_walk *w)
{
	uint64_t end = w->end < w->size ? w->end : w->size;
	int r;

	if (!w->pending)
		return 0;
	w->pending = false;
	r = w->fn(w->arg, w->start, end - w->start, w->type);
	if (r < 0) {
		w->err = r;
		return 1;
	}
	return w->req_one ? 1 : 0;
}

static int extents_cb(void *arg, uint64_t sector, uint64_t count,
		      struct sect_entry e)
{
	struct extents_walk *w = arg;
	uint32_t type = sect_state(e) == SECT_EMPTY
				? ZDEV_EXTENT_HOLE | ZDEV_EXTENT_ZERO
				: 0;
	uint64_t start = sector << SECT_SHIFT;
	uint64_t end = (sector + count) << SECT_SHIFT;
	int r;

	if (w->pending && w->type == type && w->end == start) {
		w->end = end;
		return 0;
	}
	r = emit_extent(w);
	if (r)
		return r;
	w->pending = true;
	w->start = start;
	w->end = end;
	w->type = type;
	return 0;
}

int zdev_extents(struct zdev *dev, size_t len, uint64_t off, bool req_one,
		 zdev_extent_fn fn, void *arg)
{
	struct extents_walk w = {
		.fn = fn, .arg = arg, .req_one = req_one, .size = dev->size,
	};
	uint64_t first, last;

	/* There is no extent to report for no bytes: bad input, as a range
	 * past the end is, and counted the same way. */
	if (len == 0) {
		zstat_add(&dev->live, ZSTAT_invalid_io, 1);
		return -EINVAL;
	}
	if (!range_ok(dev, len, off))
		return -EINVAL;
	first = off >> SECT_SHIFT;
	last = (off + len - 1) >> SECT_SHIFT;
	if (sect_scan(dev->tab, first, last + 1, extents_cb, &w) == 0)
		emit_extent(&w);
	return w.err;
}

/* --- pool maintenance ---------------------------------------------------- */

long zdev_compact(struct zdev *dev)
{
	long n = zpool_compact(dev->pool);

	if (n > 0)
		zstat_add(&dev->live, ZSTAT_pages_compacted, (uint64_t)n);
	return n;
}

/* --- status -------------------------------------------------------------- */

int zdev_probe(struct zdev *dev)
{
	struct sect_ref ref;

	sect_lock(dev->tab, 0, &ref);
	sect_unlock(&ref);
	(void)zpool_get_total_size(dev->pool);
	return 0;
}

void zdev_get_stats(struct zdev *dev, struct zstats *out)
{
	int64_t acct[SECT_NACCT];
	uint64_t total = zpool_get_total_size(dev->pool);

	for (int i = 0; i < ZSTAT_COUNT; i++)
		out->v[i] = zstat_get(&dev->live, (enum zstat)i);
	sect_sum_acct(dev->tab, acct);
	out->v[ZSTAT_orig_data_size] = (uint64_t)acct[ACCT_STORED] * SECT_SIZE;
	out->v[ZSTAT_compr_data_size] = (uint64_t)acct[ACCT_COMPR];
	out->v[ZSTAT_same_pages] = (uint64_t)acct[ACCT_SAME];
	out->v[ZSTAT_huge_pages] = (uint64_t)acct[ACCT_HUGE];
	out->v[ZSTAT_bd_count] = (uint64_t)acct[ACCT_BACKING];
	out->v[ZSTAT_notify_free] = (uint64_t)acct[ACCT_FREED];
	/* The cold tier: packs on the backing file are bd_count's, not
	 * orig_data_size's, as evicted hot sectors are. */
	{
		uint64_t pb = __atomic_load_n(&dev->packed_backing,
					      __ATOMIC_RELAXED);
		uint64_t bytes = __atomic_load_n(&dev->pack_bytes,
						 __ATOMIC_RELAXED);

		out->v[ZSTAT_orig_data_size] -= pb * SECT_SIZE;
		out->v[ZSTAT_bd_count] += pb;
		out->v[ZSTAT_compr_data_size] += bytes;
		out->v[ZSTAT_hot_sectors] = (uint64_t)acct[ACCT_HOT];
		out->v[ZSTAT_hot_bytes] = (uint64_t)acct[ACCT_COMPR];
		out->v[ZSTAT_packed_sectors] = (uint64_t)acct[ACCT_PACKED] - pb;
		out->v[ZSTAT_pack_bytes] = bytes;
		out->v[ZSTAT_pack_dead_bytes] =
			__atomic_load_n(&dev->pack_dead, __ATOMIC_RELAXED);
		out->v[ZSTAT_packs] =
			__atomic_load_n(&dev->packs, __ATOMIC_RELAXED);
	}
	out->v[ZSTAT_mem_used_total] = total;
	zstat_max(&dev->live, ZSTAT_mem_used_max, total);
	if (out->v[ZSTAT_mem_used_max] < total)
		out->v[ZSTAT_mem_used_max] = total;
	snprintf(out->allocator, sizeof(out->allocator), "%s",
		 zpool_get_type(dev->pool));
}
