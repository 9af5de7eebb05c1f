/* SPDX-License-Identifier: MIT */
/*
 * recompress.c - the cold tier: idle hot sectors recompressed into packs
 *
 * What. Hot sectors are one LZ4 object each (device.c). This file turns
 * idle ones into packs (pack.h): several sectors of one stretch of the
 * device in one zstd-compressed pool object. It also owns the life of
 * packs: who holds them, when they die, how they leave the pool for the
 * backing file, and how a reader gets at their bytes.
 *
 * Why. Measured on the first 64 MiB of a tar of /usr/lib/x86_64-linux-gnu
 * and /usr/share/doc (mostly shared libraries; ratio = data / bytes of the
 * objects, headers included):
 *
 *   LZ4, 4 KiB (the hot path)                   1.63
 *   zstd-1 / -3 / -6 / -9, 4 KiB                2.15 / 2.20 / 2.26 / 2.27
 *   packs of one 4 KiB object, zstd-1 / -3 / -6 2.21 / 2.28 / 2.36
 *   one frame of 16 / 32 / 64 KiB, zstd-3       2.43 / 2.46 / 2.51
 *
 * so a pack at zstd-3 stores this data 40% denser than LZ4, at 50 MB/s of
 * one core (zstd-6: 2.36 at 21 MB/s; -9: 2.37 at 10 MB/s). Most of the
 * gain is zstd itself; but the window of one 4 KiB object holds only 1.6
 * sectors of such data on average (more of text), and frames over 16-64
 * KiB add 7-10% more; over 256 KiB, 7% more again (below). The pool's
 * objects stay at most ZPOOL_MAX_SIZE, so a pack's bytes are cut into
 * chunks, each its own pool object (pack.h).
 *
 * Frames and levels, measured on the 512 MiB corpus of make bench-cold
 * (a tar of /usr/lib and /usr/share/doc; the 114,000 sectors LZ4 can
 * compress, in device order, one frame per N of them; zstd alone, one
 * core; decompression is of the whole frame):
 *
 *   N sectors, level     16,3   64,3   64,6   64,9   128,6  128,9
 *   MiB of frames        106.4  98.8   93.5   90.6   90.3   89.5
 *   compression MB/s     350    -      107    55-75  107    75
 *   one frame, us        49     -      180    209    376    341
 *
 * Levels past 9 gain nothing more at this size (64 sectors at 12: 91.0
 * MiB at 13 MB/s), and a dictionary trained on the data itself (zdict,
 * 16-256 KiB) gains 2% over frames of 16 sectors and nothing over 64.
 * So a pack is one frame of up to pack_slots sectors (default
 * PACK_MAX_SLOTS, 64: 256 KiB), cut into whole-page chunks (pack.h), and
 * recompress=zstd means zstd:9. Packs made under memory pressure (the
 * shrinker's ladder, ZDEV_RECOMPRESS_ALL) use zstd:3 at most
 * (ZDEV_RECOMPRESS_FAST_LEVEL): there what counts is memory freed per CPU
 * second, five times more at level 3.
 *
 * Sectors LZ4 cannot store below the huge threshold (13% of that corpus,
 * 66 MiB, raw) are candidates too. Alone, zstd finds 2% in them; in a
 * frame with their compressible neighbours, 3 MiB more of the whole (all
 * sectors in one stream of 64-sector frames at zstd:9: 153.1 MiB, against
 * 90.6 + 65.7 kept apart). A pack is made only if it is shorter than the
 * hot objects it replaces; and a gathering of nothing but raw sectors is
 * left untried (95 of the 98 groups that would not shrink are such:
 * compressed files), or it would be tried again at every pass.
 *
 * On the whole corpus (make bench-cold: RSS growth of the server after
 * the copy, the packing and a full read; nbdkit memory allocator=zstd
 * 182.2 MiB in the same runs):
 *
 *                                                      MiB    x zstd
 *   16 a pack, chunks of the huge threshold, zstd:3    182.1  1.00
 *   64 a pack, whole pages, tails rounded, zstd:3      174    0.95 (*)
 *   and raw sectors packed, zstd buffers mapped        167.3  0.92
 *   the same at zstd:6                                 161.9  0.89
 *   the same at zstd:9 (the default)                   159.3  0.87
 *
 *   (*) by hand, the server's VmRSS in the same steps
 *
 * The zstd compression context of a pass (about 3 MiB of tables at level
 * 9) and the pass's own buffers are mapped for the pass and unmapped
 * after it (bigmem.h): left to malloc(), they stayed in a thread heap
 * between the packs' small descriptors, 3.4 MiB of RSS that the cold
 * tier had just saved.
 *
 * A random read of a packed sector decompresses its whole frame: over NBD
 * at queue depth 1, 208 us against 47 for a hot sector (make bench-cold),
 * and random reads over a device all packed run at 0.16x the IOPS of the
 * same device all hot. That is the price of the last 10% of density, paid
 * by data that has been idle for recompress_idle; pack_sectors=16 buys
 * 97 us and 0.40x back for 7% more memory (171 MiB). Each thread keeps the last frame it
 * decompressed (device.c, keyed by the descriptor's address and its
 * serial, which no later pack has), so a sequential read pays it once a
 * pack and the other sectors cost 1.5 us.
 *
 * A pass that packed anything ends with a compaction of the pool: the hot
 * objects it freed are scattered over the pool's pages, and only moving
 * the rest together gives their memory back.
 *
 * How, one pass (zdev_recompress()):
 *
 *   scan a stretch of the table (leaf locks, no other lock)
 *     -> per candidate, under its stripe lock: copy its object out, mark
 *        it (hot) or pin its pack (packed); unlock
 *     -> decompress (no lock); gather in device order
 *     -> pack_build() the first pack_slots sectors (no lock)
 *     -> zpool_malloc its chunks; per sector, under its stripe lock: if the
 *        entry (and object) is still the one copied, it becomes PACKED, else
 *        its slot is dead from the start; free what it held after unlock
 *
 * No stripe lock is held while compressing or decompressing. The check
 * at commit is exact: a hot entry must be the one copied, idle mark
 * included, and its object must still hold the bytes copied
 * (same_object()). The entry alone is not enough: while the pass held no
 * lock the sector may have been written twice, got its old handle back
 * from the allocator with the same length (always so for raw sectors)
 * and been marked idle again by another pass (the writeback's idle pass,
 * or a second recompress pass); the stress test packed stale bytes that
 * way. A packed entry's pack is pinned from the copy to the commit, so
 * its address cannot be reused.
 *
 * Life of a pack. Its descriptor counts live slots (entries pointing at
 * it) and references (live slots + pins). A write, trim or zero of a
 * packed sector kills its slot (zdev_pack_kill_slot()); the pack goes
 * with its last reference. A pack whose live slots fall to half or less
 * is sparse: its live sectors are candidates of the next pass, which
 * packs them anew and so frees it ("repacks"). Dead bytes are counted as
 * the dead slots' share of the object.
 *
 * Eviction (zdev_evict_packs()): a pinned pack's chunks are copied out
 * under the pack lock, stored on the backing file with no lock held (one
 * record per chunk, since a record holds 4 KiB at most; all or none), and
 * the descriptor switched to the backing slots under the pack lock; the
 * table does not change. The pool's own evict callback skips chunks of
 * packs (their owner says ZDEV_OWNER_PACK). A read of an evicted pack
 * reads all its records; a pack is never brought back to the pool.
 *
 * Lock ordering: stripe lock -> pack lock -> pool locks. The pass and the
 * evictor take a stripe lock, then maybe the pack lock inside it, never
 * two stripe locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "pack.h"
#include "sectors.h"
#include "zpool.h"

/* --- per-thread buffer for decompressed packs ----------------------------- */

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static __thread unsigned char *tls_buf;

static void buf_key_make(void)
{
	(void)pthread_key_create(&buf_key, free);
}

unsigned char *zdev_pack_buf(void)
{
	unsigned char *b = tls_buf;

	if (b)
		return b;
	pthread_once(&buf_once, buf_key_make);
	b = malloc(PACK_MAX_SLOTS * PACK_SECTOR + PACK_OBJ_MAX);
	if (!b)
		return NULL;
	if (pthread_setspecific(buf_key, b) != 0) {
		free(b);
		return NULL;
	}
	tls_buf = b;
	return b;
}

/* --- life of a pack -------------------------------------------------------- */

/* The dead share of a pack of @len bytes and @n slots with @live alive. */
static uint64_t dead_share(uint32_t len, uint32_t n, uint32_t live)
{
	return (uint64_t)len - (uint64_t)len * live / n;
}

static void gauge_add(uint64_t *g, int64_t d)
{
	__atomic_add_fetch(g, (uint64_t)d, __ATOMIC_RELAXED);
}

/* Drop a reference; free the pack with the last. Return: true if freed. */
static bool pack_put(struct zdev *dev, struct pack *pk)
{
	if (__atomic_sub_fetch(&pk->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return false;
	/* Nobody else can reach it now: no entry, no pin. */
	if (__atomic_load_n(&pk->on_backing, __ATOMIC_ACQUIRE)) {
		if (dev->has_backing && dev->backing.release)
			for (unsigned int i = 0; i < pk->nchunks; i++)
				dev->backing.release(dev->backing.ctx,
						     *pack_where(pk, i));
	} else {
		for (unsigned int i = 0; i < pk->nchunks; i++)
			zpool_free(dev->pool,
				   (unsigned long)*pack_where(pk, i));
		gauge_add(&dev->packs, -1);
		gauge_add(&dev->pack_bytes, -(int64_t)pk->len);
		gauge_add(&dev->pack_dead, -(int64_t)pk->len);
	}
	pack_free(pk);
	return true;
}

static void pack_pin(struct pack *pk)
{
	__atomic_add_fetch(&pk->refs, 1, __ATOMIC_RELAXED);
}

void zdev_pack_pin(struct pack *pk)
{
	pack_pin(pk);
}

void zdev_pack_unpin(struct zdev *dev, struct pack *pk)
{
	(void)pack_put(dev, pk);
}

bool zdev_pack_kill_slot(struct zdev *dev, struct pack *pk)
{
	uint32_t live;

	pack_lock(pk);
	live = __atomic_sub_fetch(&pk->live, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&pk->on_backing, __ATOMIC_RELAXED))
		gauge_add(&dev->packed_backing, -1);
	else
		gauge_add(&dev->pack_dead,
			  (int64_t)(dead_share(pk->len, pk->nslots, live) -
				    dead_share(pk->len, pk->nslots, live + 1)));
	pack_unlock(pk);
	return pack_put(dev, pk);
}

long zdev_pack_fetch(struct zdev *dev, struct pack *pk, void *obj)
{
	unsigned char *o = obj;
	unsigned int n = pk->nchunks;
	long r;
	void *p;

	pack_lock(pk);
	if (!pk->on_backing) {
		for (unsigned int i = 0; i < n; i++) {
			size_t off = pack_chunk_off(pk->len, n, i);
			unsigned long h = (unsigned long)*pack_where(pk, i);

			p = zpool_map_handle(dev->pool, h, ZPOOL_MM_RO);
			memcpy(o + off, p,
			       pack_chunk_off(pk->len, n, i + 1) - off);
			zpool_unmap_handle(dev->pool, h);
		}
		r = pk->len;
	} else if (!dev->has_backing || !dev->backing.load_pack) {
		r = -EIO;
	} else {
		int e = 0;

		/* One record per chunk, each checked on its own. */
		for (unsigned int i = 0; i < n && e == 0; i++) {
			size_t off = pack_chunk_off(pk->len, n, i);

			e = dev->backing.load_pack(
				dev->backing.ctx, *pack_where(pk, i), pk->base,
				o + off,
				(unsigned int)(pack_chunk_off(pk->len, n,
							      i + 1) -
					       off));
		}

		if (e == 0)
			zstat_add(&dev->live, ZSTAT_bd_reads, 1);
		else if (e == -EBADMSG)
			zstat_add(&dev->live, ZSTAT_bd_checksum_errors, 1);
		else
			zstat_add(&dev->live, ZSTAT_bd_io_errors, 1);
		r = e < 0 ? -EIO : (long)pk->len;
	}
	pack_unlock(pk);
	return r;
}

int zdev_pack_to_pool(struct zdev *dev, struct pack *pk, const void *obj)
{
	const unsigned char *o = obj;
	unsigned int n = pk->nchunks;

	for (unsigned int i = 0; i < n; i++) {
		size_t off = pack_chunk_off(pk->len, n, i),
		       clen = pack_chunk_off(pk->len, n, i + 1) - off;
		unsigned long h;
		int r = zpool_malloc(dev->pool, pack_chunk_alloc(clen),
				     ZDEV_OWNER_PACK | pk->base, &h);

		if (r < 0) {
			while (i--)
				zpool_free(dev->pool,
					   (unsigned long)*pack_where(pk, i));
			return r;
		}
		memcpy(zpool_map_handle(dev->pool, h, ZPOOL_MM_WO), o + off,
		       clen);
		zpool_unmap_handle(dev->pool, h);
		*pack_where(pk, i) = h;
	}
	return 0;
}

int zdev_pack_to_backing(struct zdev *dev, const struct pack *pk,
			 const void *obj, uint64_t *slot)
{
	const unsigned char *o = obj;
	unsigned int n = pk->nchunks;

	for (unsigned int i = 0; i < n; i++) {
		size_t off = pack_chunk_off(pk->len, n, i);
		int64_t s = dev->backing.store_pack(
			dev->backing.ctx, pk->base, o + off,
			(unsigned int)(pack_chunk_off(pk->len, n, i + 1) - off));

		if (s < 0) {
			while (i-- && dev->backing.release)
				dev->backing.release(dev->backing.ctx,
						     slot[i]);
			return (int)s;
		}
		slot[i] = (uint64_t)s;
	}
	return 0;
}

static int destroy_cb(void *arg, uint64_t sector, uint64_t count,
		      struct sect_entry e)
{
	(void)sector;
	(void)count;
	if (sect_state(e) == SECT_PACKED)
		zdev_pack_kill_slot(arg, pack_of(e.val));
	return 0;
}

void zdev_packs_destroy(struct zdev *dev)
{
	if (dev->tab)
		sect_scan(dev->tab, 0, sect_nsectors(dev->tab), destroy_cb, dev);
}

/* --- the pass --------------------------------------------------------------- */

#define RC_BATCH 256u

struct cand {
	uint64_t sector;
	struct sect_entry e; /* as copied; the commit needs it unchanged */
	struct pack *src;    /* the pinned pack it came from, or NULL */
	unsigned char *obj;  /* hot: its object's bytes as copied */
	unsigned int est;    /* guess of its zstd bytes in a pack */
};

struct rc {
	struct zdev *dev;
	enum zdev_recompress_mode mode;
	int level;	  /* of the packs this pass makes */
	bool mark;	  /* unmarked hot sectors: mark them, take none */
	bool only_marked; /* unmarked hot sectors: leave them */
	struct zdev_recompress_result *res;
	/* the scan's batch */
	uint64_t sector[RC_BATCH];
	unsigned int n;
	uint64_t next;
	/* the pack being gathered */
	struct cand c[PACK_MAX_SLOTS];
	unsigned int k;
	unsigned int est;
	uint64_t secs[PACK_MAX_SLOTS];
	unsigned char data[PACK_MAX_SLOTS * PACK_SECTOR];
	unsigned char obj[PACK_OBJ_MAX];
	unsigned char scratch[PACK_SCRATCH_SIZE];
	/* copies of the candidates' hot objects, and the free ones */
	unsigned char hotobj[PACK_MAX_SLOTS][PACK_SECTOR];
	unsigned char *freeobj[PACK_MAX_SLOTS];
	unsigned int nfreeobj;
	/* the last source pack decompressed (pinned while cached) */
	struct pack *cached;
	unsigned char srcobj[PACK_OBJ_MAX];
	unsigned char srcdata[PACK_MAX_SLOTS * PACK_SECTOR];
};

/* A pack with half its slots dead or more: worth packing anew. */
static bool sparse(const struct pack *pk)
{
	return __atomic_load_n(&pk->live, __ATOMIC_RELAXED) * 2u <=
	       pk->nslots;
}

static int rc_collect(void *arg, uint64_t sector, uint64_t count,
		      struct sect_entry e)
{
	struct rc *rc = arg;

	(void)count;
	switch (sect_state(e)) {
	case SECT_POOL:
		if (rc->only_marked && !(e.meta & SECT_F_IDLE))
			return 0;
		break;
	case SECT_PACKED:
		/* The entry holds the pack: it is alive under this lock. */
		/* Sparse packs in the pool; evicted ones stay where they are. */
		if (pack_slot_of(e.val) >= pack_of(e.val)->nslots ||
		    !sparse(pack_of(e.val)) ||
		    __atomic_load_n(&pack_of(e.val)->on_backing,
				    __ATOMIC_ACQUIRE))
			return 0;
		break;
	default:
		return 0;
	}
	rc->sector[rc->n++] = sector;
	if (rc->n < RC_BATCH)
		return 0;
	rc->next = sector + 1;
	return 1;
}

static void uncache(struct rc *rc)
{
	if (rc->cached) {
		if (pack_put(rc->dev, rc->cached))
			rc->res->repacks++;
		rc->cached = NULL;
	}
}

/* Drop candidate @i (its pin, if any) and close the gap. */
static void drop(struct rc *rc, unsigned int i)
{
	if (rc->c[i].src && pack_put(rc->dev, rc->c[i].src))
		rc->res->repacks++;
	if (rc->c[i].obj)
		rc->freeobj[rc->nfreeobj++] = rc->c[i].obj;
	rc->est -= rc->c[i].est;
	memmove(&rc->c[i], &rc->c[i + 1], (rc->k - i - 1) * sizeof(rc->c[0]));
	memmove(rc->data + (size_t)i * PACK_SECTOR,
		rc->data + (size_t)(i + 1) * PACK_SECTOR,
		(size_t)(rc->k - i - 1) * PACK_SECTOR);
	rc->k--;
}

/*
 * Does the locked POOL entry @cur's object still hold the bytes @copy?
 * The entry being equal is not enough: while the pass held no lock, the
 * sector may have been written twice and its object's handle given back
 * to it (an allocator reuses handles), with the same length (always so
 * for raw sectors), and marked idle again by another pass. Only the
 * bytes tell; if they are equal, the pack holds what the sector holds.
 */
static bool same_object(struct zdev *dev, struct sect_entry cur,
			const unsigned char *copy)
{
	const void *p = zpool_map_handle(dev->pool, (unsigned long)cur.val,
					 ZPOOL_MM_RO);
	bool same = memcmp(p, copy, sect_len(cur)) == 0;

	zpool_unmap_handle(dev->pool, (unsigned long)cur.val);
	return same;
}

/*
 * Move candidate @i into slot @slot of @pk if its entry is unchanged (and
 * for a hot one, its object's bytes too).
 */
static bool commit_one(struct rc *rc, struct pack *pk, unsigned int slot,
		       unsigned int i)
{
	struct zdev *dev = rc->dev;
	struct cand *c = &rc->c[i];
	struct sect_entry cur,
		ne = sect_make(SECT_PACKED, pack_entry_val(pk, slot), 0);
	struct sect_ref ref;

	sect_lock(dev->tab, c->sector, &ref);
	cur = sect_ref_get(&ref);
	if (cur.val != c->e.val || cur.meta != c->e.meta ||
	    (c->obj && !same_object(dev, cur, c->obj))) {
		sect_unlock(&ref);
		return false;
	}
	/* Same leaf, non-empty to non-empty: cannot fail. */
	sect_ref_set(dev->tab, &ref, ne);
	account(&ref, cur, -1);
	account(&ref, ne, 1);
	sect_unlock(&ref);
	if (sect_state(cur) == SECT_POOL)
		zpool_free(dev->pool, (unsigned long)cur.val);
	else if (zdev_pack_kill_slot(dev, pack_of(cur.val)))
		rc->res->repacks++;
	return true;
}

/*
 * Would a pack of @len bytes of the first @m candidates be no shorter than
 * their hot objects? Then it is not made. A pack with sectors of sparse
 * packs among them is always made: it is what frees those packs' dead
 * bytes, whatever the new one costs.
 */
static bool no_gain(const struct rc *rc, unsigned int m, size_t len)
{
	size_t sum = 0;

	for (unsigned int i = 0; i < m; i++) {
		if (rc->c[i].src)
			return false;
		sum += sect_len(rc->c[i].e);
	}
	return len >= sum;
}

/* Are all the candidates hot sectors stored raw? */
static bool all_raw(const struct rc *rc)
{
	for (unsigned int i = 0; i < rc->k; i++)
		if (rc->c[i].src || sect_len(rc->c[i].e) != SECT_LEN_RAW)
			return false;
	return true;
}

/*
 * Make one pack of the first candidates that fit, and commit them.
 * Return: 0, or -ENOMEM.
 */
static int rc_flush_one(struct rc *rc)
{
	struct zdev *dev = rc->dev;
	struct pack *pk;
	unsigned int m, done = 0;
	size_t len;
	int r;

	/*
	 * A stretch of nothing but sectors LZ4 could not compress is left
	 * as it is without trying: on the bench corpus 95 of the 98 groups
	 * whose pack would not be shorter are such (compressed files), and
	 * the few such groups that do shrink gain under 1%. Tried, they
	 * would be tried again at every pass.
	 */
	if (all_raw(rc)) {
		while (rc->k)
			drop(rc, 0);
		return 0;
	}
	for (unsigned int i = 0; i < rc->k; i++)
		rc->secs[i] = rc->c[i].sector;
	r = pack_build(rc->secs, rc->k, rc->data, rc->level, rc->obj,
		       PACK_OBJ_MAX, &len, rc->scratch);
	if (r < 0)
		return r;
	m = (unsigned int)r;
	/*
	 * Not even the first fits, or the pack would not be shorter than
	 * the hot objects it replaces: they stay as they are. (Sectors LZ4
	 * could not compress are candidates too: in a frame with their
	 * neighbours zstd still finds 2-5% in them.)
	 */
	if (m == 0) {
		drop(rc, 0);
		return 0;
	}
	if (no_gain(rc, m, len)) {
		while (m--)
			drop(rc, 0);
		return 0;
	}
	pk = pack_alloc(pack_nchunks(len));
	if (!pk)
		return -ENOMEM;
	pk->len = (uint32_t)len;
	pk->base = rc->secs[0];
	r = zdev_pack_to_pool(dev, pk, rc->obj);
	if (r < 0) {
		pack_free(pk);
		return r;
	}
	pk->nslots = (uint16_t)m;
	pk->live = m;
	pk->refs = m + 1; /* the slots, and our pin until the commits end */
	gauge_add(&dev->packs, 1);
	gauge_add(&dev->pack_bytes, (int64_t)len);
	for (unsigned int i = 0; i < m; i++) {
		if (commit_one(rc, pk, i, i))
			done++;
		else
			zdev_pack_kill_slot(dev, pk); /* dead from the start */
	}
	pack_put(dev, pk);
	if (done) {
		rc->res->packs++;
		rc->res->packed += done;
		zstat_add(&dev->live, ZSTAT_recompressions, done);
	}
	while (m--)
		drop(rc, 0);
	return 0;
}

/* Enough gathered for one pack, by the guess? */
static bool rc_full(const struct rc *rc)
{
	return rc->k >= rc->dev->pack_slots ||
	       rc->est >= PACK_OBJ_MAX - pack_hdr_size(rc->k);
}

/*
 * Take @sector as a candidate if it still is one: copy its object under
 * its stripe lock, decompress with none. Return: 0, or -ENOMEM.
 */
static int rc_take(struct rc *rc, uint64_t sector)
{
	struct zdev *dev = rc->dev;
	unsigned char *dst, *copy = NULL;
	struct sect_entry e;
	struct sect_ref ref;
	struct pack *src = NULL;
	unsigned int len, est;
	void *p;

	/* A pack covers at most 2^32 sectors from its first. */
	if (rc->k && sector - rc->c[0].sector > UINT32_MAX)
		while (rc->k) {
			int r = rc_flush_one(rc);

			if (r < 0)
				return r;
		}
	dst = rc->data + (size_t)rc->k * PACK_SECTOR;
	sect_lock(dev->tab, sector, &ref);
	e = sect_ref_get(&ref);
	switch (sect_state(e)) {
	case SECT_POOL:
		len = sect_len(e);
		if (!(e.meta & SECT_F_IDLE)) {
			if (rc->only_marked) {
				sect_unlock(&ref);
				return 0;
			}
			if (rc->mark) {
				sect_ref_set_flag(&ref, SECT_F_IDLE, true);
				sect_unlock(&ref);
				rc->res->marked++;
				return 0;
			}
			/* Mark it now: the commit needs the mark still there. */
			sect_ref_set_flag(&ref, SECT_F_IDLE, true);
			e.meta |= SECT_F_IDLE;
		}
		/* k < pack_slots <= PACK_MAX_SLOTS: one is free */
		copy = rc->freeobj[--rc->nfreeobj];
		p = zpool_map_handle(dev->pool, (unsigned long)e.val,
				     ZPOOL_MM_RO);
		memcpy(copy, p, len);
		zpool_unmap_handle(dev->pool, (unsigned long)e.val);
		sect_unlock(&ref);
		if (len == SECT_LEN_RAW) {
			memcpy(dst, copy, PACK_SECTOR);
		} else if (dev_decode(dev, copy, len, dst) < 0) {
			/* corrupt: leave it to the reader's -EIO */
			rc->freeobj[rc->nfreeobj++] = copy;
			return 0;
		}
		est = len * 3 / 4;
		break;
	case SECT_PACKED:
		src = pack_of(e.val);
		if (!sparse(src) ||
		    __atomic_load_n(&src->on_backing, __ATOMIC_ACQUIRE)) {
			sect_unlock(&ref);
			return 0;
		}
		pack_pin(src);
		sect_unlock(&ref);
		if (rc->cached != src) {
			long n;

			uncache(rc);
			pack_pin(src);
			rc->cached = src;
			n = zdev_pack_fetch(dev, src, rc->srcobj);
			if (n < 0 ||
			    pack_decode(rc->srcobj, (size_t)n, NULL,
					rc->srcdata) != src->nslots) {
				uncache(rc);
				pack_put(dev, src);
				return 0;
			}
		}
		memcpy(dst, rc->srcdata + (size_t)pack_slot_of(e.val) *
						  PACK_SECTOR,
		       PACK_SECTOR);
		est = src->len / src->nslots;
		break;
	default:
		sect_unlock(&ref);
		return 0;
	}
	rc->c[rc->k] = (struct cand){
		.sector = sector, .e = e, .src = src, .obj = copy, .est = est,
	};
	rc->k++;
	rc->est += est;
	while (rc->k && rc_full(rc)) {
		int r = rc_flush_one(rc);

		if (r < 0)
			return r;
	}
	return 0;
}

int zdev_recompress(struct zdev *dev, enum zdev_recompress_mode mode,
		    uint64_t target, bool (*stop)(void *arg), void *arg,
		    struct zdev_recompress_result *res)
{
	uint64_t end = sect_nsectors(dev->tab);
	uint64_t before = zpool_get_total_size(dev->pool), now;
	struct rc *rc;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (!dev->recompress_level)
		return 0;
	rc = bigmem_alloc(sizeof(*rc)); /* zeroed */
	if (!rc)
		return -ENOMEM;
	rc->dev = dev;
	rc->mode = mode;
	rc->level = mode == ZDEV_RECOMPRESS_ALL &&
				    dev->recompress_level >
					    ZDEV_RECOMPRESS_FAST_LEVEL
			    ? ZDEV_RECOMPRESS_FAST_LEVEL
			    : dev->recompress_level;
	for (unsigned int i = 0; i < PACK_MAX_SLOTS; i++)
		rc->freeobj[i] = rc->hotobj[i];
	rc->nfreeobj = PACK_MAX_SLOTS;
	rc->mark = mode == ZDEV_RECOMPRESS_IDLE;
	rc->res = res;
	/*
	 * Under pressure, the sectors a pass marked idle go first (the
	 * idlest), then any hot sector.
	 */
	for (int round = mode == ZDEV_RECOMPRESS_ALL ? 0 : 1; round < 2;
	     round++) {
		uint64_t pos = 0;

		if (mode == ZDEV_RECOMPRESS_ALL)
			rc->only_marked = round == 0;
		while (pos < end && r == 0 && !(stop && stop(arg))) {
			rc->n = 0;
			if (sect_scan(dev->tab, pos, end, rc_collect, rc) == 0)
				pos = end;
			else
				pos = rc->next;
			for (unsigned int i = 0; i < rc->n && r == 0; i++)
				r = rc_take(rc, rc->sector[i]);
			now = zpool_get_total_size(dev->pool);
			if (target && before > now && before - now >= target)
				break;
		}
		while (rc->k && r == 0)
			r = rc_flush_one(rc);
		while (rc->k)
			drop(rc, rc->k - 1);
		uncache(rc);
		now = zpool_get_total_size(dev->pool);
		if (r || (target && before > now && before - now >= target))
			break;
	}
	zstat_add(&dev->live, ZSTAT_repacks, res->repacks);
	/*
	 * The hot objects that left are scattered over the pool's pages:
	 * compaction is what gives their memory back.
	 */
	if (res->packed)
		(void)zdev_compact(dev);
	now = zpool_get_total_size(dev->pool);
	res->freed = before > now ? before - now : 0;
	/*
	 * The pass's buffers and the zstd context (a few MiB of tables at
	 * the higher levels) go back to the system between idle passes, or
	 * the cold tier would keep in RSS part of what it saves (bigmem.h).
	 * The shrinker's thread keeps its context (zstd:3 at most): its
	 * passes come in runs under memory pressure, no time to map it anew.
	 */
	bigmem_free(rc);
	if (mode == ZDEV_RECOMPRESS_IDLE)
		codec_zstd_release();
	return r;
}

/* --- packs to the backing file ------------------------------------------------ */

/* zdev_evict_packs(): the packed sectors of the next stretch of the table. */
struct ev_batch {
	uint64_t sector[RC_BATCH];
	unsigned int n;
	uint64_t next;
	const struct pack *last; /* the last pack collected: skip its slots */
};

static int ev_collect(void *arg, uint64_t sector, uint64_t count,
		      struct sect_entry e)
{
	struct ev_batch *b = arg;
	const struct pack *pk;

	(void)count;
	if (sect_state(e) != SECT_PACKED)
		return 0;
	pk = pack_of(e.val);
	if (pk == b->last || __atomic_load_n(&pk->on_backing, __ATOMIC_ACQUIRE))
		return 0;
	b->last = pk;
	b->sector[b->n++] = sector;
	if (b->n < RC_BATCH)
		return 0;
	b->next = sector + 1;
	return 1;
}

/*
 * Move the pack of @sector's entry to the backing file, if it is still
 * packed and its pack still in the pool. Return: the bytes that left the
 * pool (0 if nothing moved), or a negative errno of store_pack().
 */
static long evict_pack(struct zdev *dev, uint64_t sector, unsigned char *obj)
{
	struct sect_entry e;
	struct sect_ref ref;
	struct pack *pk;
	unsigned long handle[PACK_CHUNKS_MAX];
	uint64_t slot[PACK_CHUNKS_MAX];
	uint32_t len, live;
	unsigned int n;
	long r;

	sect_lock(dev->tab, sector, &ref);
	e = sect_ref_get(&ref);
	if (sect_state(e) != SECT_PACKED) {
		sect_unlock(&ref);
		return 0;
	}
	pk = pack_of(e.val);
	pack_pin(pk);
	sect_unlock(&ref);

	if (__atomic_load_n(&pk->on_backing, __ATOMIC_ACQUIRE)) {
		pack_put(dev, pk);
		return 0;
	}
	len = pk->len;
	n = pk->nchunks;
	/*
	 * Copied under the pack lock; one backing record per chunk (a
	 * record holds 4 KiB at most), all naming the pack's first sector;
	 * all or none.
	 */
	r = zdev_pack_fetch(dev, pk, obj);
	if (r >= 0)
		r = zdev_pack_to_backing(dev, pk, obj, slot);
	if (r < 0) {
		zstat_add(&dev->live, ZSTAT_bd_failed, 1);
		pack_put(dev, pk);
		return r;
	}
	pack_lock(pk);
	if (pk->on_backing) { /* another evictor was first */
		pack_unlock(pk);
		for (unsigned int i = 0; i < n && dev->backing.release; i++)
			dev->backing.release(dev->backing.ctx, slot[i]);
		pack_put(dev, pk);
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		handle[i] = (unsigned long)*pack_where(pk, i);
		*pack_where(pk, i) = slot[i];
	}
	__atomic_store_n(&pk->on_backing, 1, __ATOMIC_RELEASE);
	live = __atomic_load_n(&pk->live, __ATOMIC_RELAXED);
	gauge_add(&dev->packs, -1);
	gauge_add(&dev->pack_bytes, -(int64_t)len);
	gauge_add(&dev->pack_dead, -(int64_t)dead_share(len, pk->nslots, live));
	gauge_add(&dev->packed_backing, live);
	pack_unlock(pk);
	/* Readers copy the object under the pack lock: none has it now. */
	for (unsigned int i = 0; i < n; i++)
		zpool_free(dev->pool, handle[i]);
	zstat_add(&dev->live, ZSTAT_bd_writes, n);
	pack_put(dev, pk);
	return len;
}

int zdev_evict_packs(struct zdev *dev, uint64_t target, bool (*stop)(void *arg),
		     void *arg, uint64_t *evicted)
{
	uint64_t end = sect_nsectors(dev->tab), pos = 0, moved = 0;
	struct ev_batch *b;
	unsigned char *obj;
	long r = 0;

	*evicted = 0;
	if (!dev->has_backing || !dev->backing.store_pack)
		return -ENOSPC;
	b = malloc(sizeof(*b) + PACK_OBJ_MAX);
	if (!b)
		return -ENOMEM;
	obj = (unsigned char *)(b + 1);
	while (pos < end && moved < target && !(stop && stop(arg))) {
		b->n = 0;
		b->last = NULL;
		if (sect_scan(dev->tab, pos, end, ev_collect, b) == 0)
			pos = end;
		else
			pos = b->next;
		for (unsigned int i = 0; i < b->n && moved < target; i++) {
			r = evict_pack(dev, b->sector[i], obj);
			if (r < 0)
				break;
			if (r > 0) {
				moved += (uint64_t)r;
				(*evicted)++;
			}
		}
		if (r < 0)
			break;
	}
	free(b);
	return r < 0 ? (int)r : 0;
}

/* --- packs brought back by a snapshot (snapshot_pack.c) ------------------ */

void zdev_pack_adopt(struct zdev *dev, const struct pack *pk)
{
	uint32_t live = __atomic_load_n(&pk->live, __ATOMIC_RELAXED);

	if (pk->on_backing) {
		gauge_add(&dev->packed_backing, live);
		return;
	}
	gauge_add(&dev->packs, 1);
	gauge_add(&dev->pack_bytes, (int64_t)pk->len);
	gauge_add(&dev->pack_dead,
		  (int64_t)dead_share(pk->len, pk->nslots, live));
}
