/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc.c - the "zsmalloc" zpool backend: dense storage of compressed
 * objects in size classes, with movable objects
 *
 * What it is. zsmalloc stores objects of 1 to 4096 bytes (compressed 4 KiB
 * sectors) packed end to end, so that the memory a pool holds is close to
 * the sum of the object sizes. It is the default backend; zbud, two objects
 * a page, is the simple one. The ideas are those of Linux's zsmalloc (size
 * classes, zspages, fullness groups, indirect handles, compaction); the
 * code and the details are this project's own.
 *
 * Why not malloc(). The C library rounds to its own size classes, keeps
 * headers in front of every block, fragments over time with nothing to move
 * blocks around, and does not reliably give free memory back to the OS.
 * Compressed sectors come and go at random; only an allocator that can move
 * objects can keep them dense.
 *
 * Size classes. An object of s bytes takes a slot of s + header bytes
 * rounded up to 16; the header is empty in a pool without owner words (no
 * evict callback), 12 bytes in one with (below). Slots of one size are cut
 * from a zspage: a run of 1 to ZS_MAX_PAGES (16) contiguous pages from the
 * page source. Because the run is contiguous, a slot may straddle a page
 * boundary and mapping it is a plain pointer: nothing is ever copied.
 *
 *   zspage of 3 pages, class of 1536-byte slots (8 slots, no waste)
 *   |<------ page 0 ------>|<------ page 1 ------>|<------ page 2 ------>|
 *   +-------+-------+------+-+-------+-------+----+--+-------+-------+
 *   | slot0 | slot1 | slot2  | slot3 | slot4 | slot5   | slot6 | slot7 |
 *   +-------+-------+------+-+-------+-------+----+--+-------+-------+
 *   slot, no owner words:    | object bytes ...                      |
 *   slot, with owner words:  | handle | owner word | object bytes ... |
 *                              4 bytes  8 bytes
 *
 * Zspage length. A zspage of n pages wastes its tail, n * 4096 mod slot;
 * longer zspages waste less there, but every class keeps one zspage
 * partly filled, half empty on average, and a long one wastes more there.
 * zs_layout() takes the n of least tail fraction + n * 0.25%
 * (ZS_PAGE_PENALTY). On the LZ4 block sizes of 512 MiB of /usr (made by
 * tests/bench/bench_alloc.c), modelled, the whole pool overhead is 3.8%
 * with zspages of at most 4 pages, 2.0% with 8, and 1.8% with 16 or more
 * (the penalty keeps longer ones from being chosen); without the penalty,
 * the least tail waste alone gives 2.1% (8 pages), 2.3% (16), 2.9% (32).
 * Hence 16, with the penalty. Slot sizes whose layout comes out identical
 * (same pages, same objects per zspage) are one class, whose slot is the
 * largest of them: an object costs the same memory in either.
 *
 * Huge objects. Where no zspage of up to 16 pages holds more objects than
 * pages, an object costs a whole page anyway: such slots (3856 bytes and
 * up: 16 * 4096 / 3856 < 17) form the huge class, one object a page, with
 * no slot header, so that an incompressible 4096-byte sector takes exactly
 * one page. The threshold is computed, not chosen: 3840-byte slots still
 * fit 16 to 15 pages (6% less than a page each), so objects up to 3840
 * bytes (3828 with owner words) are packed. Linux's zsmalloc puts it at
 * about 3264 because its zspages are at most 4 pages long. Freed huge
 * pages are kept for reuse, up to ZS_HUGE_CACHE of them (128 KiB): an
 * overwrite then costs no madvise() and no page fault.
 *
 * Handles. A handle names an 8-byte entry of the pool's handle table, which
 * says where the object is now (class, zspage id, slot), so compaction can
 * move the object by rewriting the entry. That is all an object of a pool
 * without owner words costs beyond its bytes rounded to 16: 8 bytes. To
 * move the objects of a zspage, compaction must find their entries; in
 * such a pool it scans the handle table once per compaction (see
 * zsmalloc_reclaim.c) rather than keep a back pointer in every slot, which
 * would cost 4 bytes an object, 0.15% of the pool, on every object, for
 * the sake of a rare operation. A pool with owner words must also find the
 * objects of a zspage at every shrink, so there the slot header holds the
 * handle, followed by the owner word. A huge object of a pool without owner
 * words has no entry and no zspage structure at all: its handle is its
 * page's address with bit 0 set (table handles are even).
 *
 *   handle h ---> handle table[h/2 - 1]    zspage table[id]
 *                 +-------------------+    +---------------------------+
 *                 | id | obj | class  |--->| base, LRU links, group    |
 *                 | flags | pins      |    | links, stamp, in-use,     |
 *                 +-------------------+    | first free slot (32 bytes)|
 *                                          +---------------------------+
 *                 base + obj * slot + header = the object's bytes
 *
 * Both tables live in pages of the pool's page source (zsmalloc_table.c):
 * what the pool holds is pagesrc_bytes_used() plus a little malloc'd
 * bookkeeping (table directories, the class array), all of it counted in
 * zpool_get_total_size(). Per object, in a pool without owner words on the
 * bench data: 8 bytes of entry and under 3 of zspage table; in all, the
 * pool holds 1.8% more than the bytes stored (2.7% with owner words).
 *
 * Free slots of a zspage form a list threaded through their first 4 bytes.
 * A fresh zspage is all zero, and a zero link means "the next free slot is
 * the one after me", so a new zspage needs no initialisation at all and
 * its pages are touched only as objects fill them.
 *
 * Fullness groups. Each class keeps its partly used zspages in four lists
 * by quarter of fullness; full zspages are on no list, and an empty one is
 * given back to the page source at once. malloc takes a slot in the
 * fullest partial zspage, so zspages fill up before new ones are made;
 * compaction moves objects from the emptiest zspages into the fullest.
 *
 * Mapping. zpool_map_handle() takes no lock: it adds one to the pin count
 * in the handle's entry (a compare-and-swap) and returns a pointer into the
 * zspage; unmap takes the pin away. Compaction moves only objects with no
 * pin: it sets MOVING with a compare-and-swap that expects zero pins, copies
 * the slot, and stores the new location, which clears MOVING; a map that
 * finds MOVING waits the few hundred nanoseconds the copy takes. Several
 * threads may map one handle at once. The map mode does not matter, since
 * no object is ever split.
 *
 * Shrink and the eviction race. Each class keeps an LRU of its zspages: a
 * zspage moves to the head when an object is allocated into it, stamped
 * with the pool's malloc counter. zpool_shrink() takes the class whose LRU
 * tail has the oldest stamp, takes that zspage off every list, marks it
 * under reclaim, drops the class lock and hands each object to the evict
 * callback. While a zspage is under reclaim, zpool_free() of one of its
 * objects only sets DEAD in the handle's entry: the bytes, the slot and the
 * handle stay as they are, so a callback still reading the object (or
 * mapping it after its owner freed it) sees it unchanged, and the handle is
 * not handed out again meanwhile. After the callbacks, the zspage's DEAD
 * objects are released for real; the zspage is freed if it is empty, else
 * it goes back to the lists (at the LRU head, so this shrink call does not
 * take it again; after a refusal, back at the tail, where it was).
 *
 * Caller contract (zpool.h): map, use the object briefly, unmap; do not
 * free a handle that one's own threads still have mapped; free each handle
 * once. The evict callback is called with no pool lock held.
 *
 * Lock ordering:
 *
 *   zs_pool.reclaim_lock        one zpool_shrink() or zpool_compact() at a
 *                               time; held across evict callbacks (hence
 *                               they may not shrink or compact)
 *     -> zs_class.lock          a class's lists, LRU, counts, the free
 *                               slots of its zspages and its handle cache;
 *                               one class lock at a time, never two
 *       -> zs_table.lock        handle or zspage table ids (leaf, but for:)
 *         -> pagesrc lock       page runs
 *
 *   The huge class's lock also guards the cache of free huge pages.
 *
 *   Handle entries are changed with atomics: pins by map/unmap with no
 *   lock; location, MOVING and DEAD under the object's class lock.
 *   total_size reads two atomic counters.
 *
 *   On the hot paths: map and unmap take no lock; malloc and free take
 *   their class lock, plus the handle table's once per ZS_MAG_BATCH (32)
 *   handles (each class caches free handles) and the zspage table's and
 *   the page source's only when a zspage is made or given back, the only
 *   times a system call is made (madvise() on release, page faults on
 *   first touch). malloc also bumps the pool's LRU clock, an atomic.
 *
 * Known limits. Handle-table and zspage-table pages in the middle of the
 * tables stay while any id in them lives (a long-lived object pins 4 KiB
 * of handle table at worst); only the top of a table shrinks. Objects
 * mapped during compaction are skipped, so their zspage may survive it;
 * so are, in a pool without owner words, objects allocated into a sparse
 * zspage after compaction scanned the handle table. Every zspage given
 * back costs a madvise(), which in a virtual machine with several CPUs
 * can take tens of microseconds (TLB shootdown): freeing gigabytes at once
 * takes seconds.
 */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "zsmalloc_int.h"

/* ------------------------------------------------------ the zpool driver */

/*
 * Huge object of a pool without owner words: a page, no zspage, no handle
 * table entry. The huge class lock guards the counts and the cache only.
 */
static int zs_malloc_direct(struct zs_pool *pool, unsigned long *handle)
{
	struct zs_class *c = pool->huge;
	char *page = NULL;

	pthread_mutex_lock(&c->lock);
	if (pool->nhuge_cache)
		page = (char *)pool->huge_cache[--pool->nhuge_cache];
	c->nr_objs++;
	c->nr_zspages++;
	pthread_mutex_unlock(&c->lock);
	zs_unpoison(page, page ? ZS_PAGE_SIZE : 0);
	if (!page) {
		page = pagesrc_alloc(pool->ps, 1);
		pthread_mutex_lock(&c->lock);
		if (page) {
			pool->huge_fresh = (uintptr_t)page;
		} else {
			c->nr_objs--;
			c->nr_zspages--;
		}
		pthread_mutex_unlock(&c->lock);
		if (!page)
			return -ENOMEM;
	}
	*handle = (unsigned long)(uintptr_t)page | ZS_H_DIRECT;
	return 0;
}

static void zs_free_direct(struct zs_pool *pool, unsigned long handle)
{
	uintptr_t page = handle & ~ZS_H_DIRECT, v[ZS_HUGE_CACHE];
	struct zs_class *c = pool->huge;
	unsigned int n = 0;

	pthread_mutex_lock(&c->lock);
	c->nr_objs--;
	c->nr_zspages--;
	if (zs_huge_keep(pool, page))
		page = 0;
	else if (c->nr_objs == 0)
		n = zs_huge_take(pool, v);
	pthread_mutex_unlock(&c->lock);
	if (page)
		pagesrc_free(pool->ps, (void *)page, 1);
	zs_huge_release(pool, v, n);
}

/**
 * zs_malloc() - allocate an object (zpool_malloc())
 * @zp:     the pool
 * @size:   1..ZPOOL_MAX_SIZE bytes (checked by zpool.c)
 * @owner:  stored with the object if the pool is shrinkable
 * @handle: where the handle goes
 *
 * Takes the class lock; drops it while a new zspage is made.
 *
 * Return: 0, or -ENOMEM if pages or handles ran out.
 */
static int zs_malloc(struct zpool *zp, size_t size, uint64_t owner,
		     unsigned long *handle)
{
	struct zs_pool *pool = zs_pool_of(zp);
	struct zs_class *c = zs_class_for(pool, size);
	uint32_t id = 0, fresh = 0, obj = 0;
	struct zspage *zs;
	unsigned long h;

	if (c->huge && pool->huge_direct)
		return zs_malloc_direct(pool, handle);

	pthread_mutex_lock(&c->lock);
	h = zs_handle_get(pool, c);
	if (!h)
		goto nomem;
	for (unsigned int g = ZS_NR_GROUPS; g-- > 0 && !c->huge;) {
		if (c->group[g]) {
			id = c->group[g];
			break;
		}
	}
	if (!id && c->huge && pool->nhuge_cache) {
		id = fresh = (uint32_t)pool->huge_cache[--pool->nhuge_cache];
		c->nr_zspages++;
	}
	if (!id) {
		pthread_mutex_unlock(&c->lock);
		fresh = zs_zspage_new(pool, c);
		pthread_mutex_lock(&c->lock);
		if (!fresh) {
			zs_handle_put(pool, c, h);
			goto nomem;
		}
		id = fresh;
		c->nr_zspages++;
		if (c->huge)
			pool->huge_fresh = id;
	}
	zs = zs_zspage(pool, id);
	if (c->huge) {
		zs->state = (uint32_t)(h >> 1);
		zs->owner = owner;
		zs_unpoison(zs->base, ZS_PAGE_SIZE); /* it may come cached */
		zs_poison(zs->base + size, ZS_PAGE_SIZE - size);
	} else {
		char *slot;

		if (!fresh)
			zs_group_del(pool, c, id);
		obj = zs_slot_take(c, zs);
		slot = zs_slot(c, zs, obj);
		if (pool->shrinkable) {
			uint32_t hdr = (uint32_t)h | ZS_HDR_ALLOC;

			memcpy(slot, &hdr, sizeof(hdr));
			memcpy(slot + ZS_HDR_SIZE, &owner, sizeof(owner));
		}
		zs_poison(slot + pool->hdr_size + size,
			  c->slot - pool->hdr_size - size);
		zs_group_add(pool, c, id);
	}
	if (!fresh)
		zs_lru_del(pool, c, id);
	zs_lru_add(pool, c, id, true);
	zs->stamp = __atomic_fetch_add(&pool->clock, 1, __ATOMIC_RELAXED);
	c->nr_objs++;
	__atomic_store_n(zs_hentry(pool, h), zs_e_make(c->index, id, obj),
			 __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
	*handle = h;
	return 0;

nomem:
	pthread_mutex_unlock(&c->lock);
	return -ENOMEM;
}

/**
 * zs_free() - free an object (zpool_free())
 * @zp:     the pool
 * @handle: a live handle (not 0: zpool.c checks)
 *
 * If the object's zspage is under reclaim, the object is only marked dead
 * and the shrinker releases it once its evict callbacks are done.
 */
static void zs_free(struct zpool *zp, unsigned long handle)
{
	struct zs_pool *pool = zs_pool_of(zp);
	uintptr_t v[ZS_HUGE_CACHE];
	unsigned int r, n = 0;
	struct zs_class *c;
	uint64_t *ep, e;
	uint32_t id;

	if (handle & ZS_H_DIRECT) {
		zs_free_direct(pool, handle);
		return;
	}
	ep = zs_hentry(pool, handle);
	e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
	assert(e & ZS_E_ALLOC);
	/* The class never changes; the location may until the lock is held. */
	c = &pool->classes[zs_e_class(e)];
	pthread_mutex_lock(&c->lock);
	e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
	id = zs_e_zspage(e);
	if (zs_zspage(pool, id)->state & ZS_ST_RECLAIM) {
		__atomic_fetch_or(ep, ZS_E_DEAD, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	r = zs_release_obj(pool, c, id, zs_e_obj(e), handle);
	if (c->huge) {
		if ((r & 1) && zs_huge_keep(pool, id))
			r &= ~1u;
		else if (c->nr_objs == 0)
			n = zs_huge_take(pool, v);
	}
	pthread_mutex_unlock(&c->lock);
	if (r & 1)
		zs_zspage_free(pool, c, id);
	zs_huge_release(pool, v, n);
}

/**
 * zs_map() - map an object (zpool_map_handle())
 * @zp:     the pool
 * @handle: a handle (live, or freed while under eviction)
 * @mm:     ignored: objects are never split, so never copied
 *
 * Lock-free: pins the entry, which keeps compaction from moving the object
 * until zs_unmap(). Waits only while compaction is copying it.
 *
 * Return: the object's address.
 */
static void *zs_map(struct zpool *zp, unsigned long handle,
		    enum zpool_mapmode mm)
{
	struct zs_pool *pool = zs_pool_of(zp);
	const struct zs_class *c;
	unsigned int spins = 0;
	uint64_t *ep, e;

	(void)mm;
	if (handle & ZS_H_DIRECT)
		return (void *)(uintptr_t)(handle & ~ZS_H_DIRECT);
	ep = zs_hentry(pool, handle);
	e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
	for (;;) {
		if ((e & ZS_E_MOVING) || (e & ZS_E_PIN_MASK) == ZS_E_PIN_MASK) {
			if (++spins % 64 == 0)
				sched_yield();
			e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
			continue;
		}
		if (__atomic_compare_exchange_n(ep, &e, e + 1, true,
						__ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE))
			break;
	}
	assert(e & ZS_E_ALLOC);
	c = &pool->classes[zs_e_class(e)];
	return zs_slot(c, zs_zspage(pool, zs_e_zspage(e)), zs_e_obj(e)) +
	       (c->huge ? 0 : pool->hdr_size);
}

static void zs_unmap(struct zpool *zp, unsigned long handle)
{
	uint64_t e __attribute__((unused));

	if (handle & ZS_H_DIRECT)
		return;
	e = __atomic_fetch_sub(zs_hentry(zs_pool_of(zp), handle), 1,
			       __ATOMIC_RELEASE);
	assert(e & ZS_E_PIN_MASK);
}

static uint64_t zs_total_size(const struct zpool *zp)
{
	const struct zs_pool *pool = zs_pool_of(zp);

	return pagesrc_bytes_used(pool->ps) +
	       __atomic_load_n(&pool->meta_bytes, __ATOMIC_RELAXED);
}

static void zs_destroy(struct zpool *zp)
{
	struct zs_pool *pool = zs_pool_of(zp);

#ifdef ZS_ASAN
	/* Every zspage is on its class's LRU; the cache holds the rest. */
	for (uint32_t i = 0; i < pool->nr_classes; i++) {
		struct zs_class *c = &pool->classes[i];

		for (uint32_t id = c->lru_head; id;
		     id = zs_zspage(pool, id)->lru_next)
			zs_unpoison(zs_zspage(pool, id)->base,
				    (size_t)c->pages * ZS_PAGE_SIZE);
	}
	for (uint32_t i = 0; i < pool->nhuge_cache; i++)
		zs_unpoison(zs_huge_page(pool, pool->huge_cache[i]),
			    ZS_PAGE_SIZE);
#endif
	/* Every page, zspages and tables alike, goes with the page source. */
	zs_table_destroy(&pool->handles);
	zs_table_destroy(&pool->zspages);
	for (uint32_t c = 0; c < pool->nr_classes; c++)
		pthread_mutex_destroy(&pool->classes[c].lock);
	free(pool->classes);
	pthread_mutex_destroy(&pool->reclaim_lock);
	pagesrc_destroy(pool->ps);
	free(pool);
}

/**
 * zs_create() - a new, empty pool
 * @shrinkable: whether objects carry owner words (the pool has an evict
 *              callback)
 *
 * Return: the pool, or NULL with errno ENOMEM.
 */
static struct zpool *zs_create(bool shrinkable)
{
	struct zs_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		goto nomem;
	pool->meta_bytes = sizeof(*pool);
	pool->shrinkable = shrinkable;
	pool->huge_direct = !shrinkable;
	pool->hdr_size = shrinkable ? ZS_HDR_SIZE + ZS_OWNER_SIZE : 0;
	pthread_mutex_init(&pool->reclaim_lock, NULL);
	pool->ps = pagesrc_create();
	if (!pool->ps) {
		free(pool);
		goto nomem;
	}
	if (zs_build_classes(pool) < 0)
		goto fail_classes;
	if (zs_table_init(&pool->handles, pool->ps, &pool->meta_bytes,
			  sizeof(uint64_t), ZS_MAX_HANDLES, false) < 0)
		goto fail_handles;
	if (zs_table_init(&pool->zspages, pool->ps, &pool->meta_bytes,
			  sizeof(struct zspage), UINT32_MAX, true) < 0)
		goto fail_zspages;
	return &pool->zpool;

fail_zspages:
	zs_table_destroy(&pool->handles);
fail_handles:
	free(pool->classes);
fail_classes:
	pagesrc_destroy(pool->ps);
	free(pool);
nomem:
	errno = ENOMEM;
	return NULL;
}

static struct zpool_driver zs_driver = {
	.type = ZPOOL_TYPE_ZSMALLOC,
	.priority = 20,
	.create = zs_create,
	.destroy = zs_destroy,
	.malloc = zs_malloc,
	.free = zs_free,
	.shrink = zs_shrink,
	.compact = zs_compact,
	.map = zs_map,
	.unmap = zs_unmap,
	.total_size = zs_total_size,
};

ZPOOL_DRIVER(zs_driver)

/* ------------------------------------------------------ for the unit tests */

unsigned int zs_test_nr_classes(struct zpool *zp)
{
	return zs_pool_of(zp)->nr_classes;
}

void zs_test_class_info(struct zpool *zp, unsigned int index,
			struct zs_class_info *info)
{
	struct zs_class *c = &zs_pool_of(zp)->classes[index];

	pthread_mutex_lock(&c->lock);
	info->slot = c->slot;
	info->pages = c->pages;
	info->objs = c->objs;
	info->huge = c->huge;
	info->nr_zspages = c->nr_zspages;
	info->nr_objs = c->nr_objs;
	pthread_mutex_unlock(&c->lock);
}

unsigned int zs_test_size_class(struct zpool *zp, size_t size)
{
	return zs_class_for(zs_pool_of(zp), size)->index;
}

uint32_t zs_test_handle_zspage(struct zpool *zp, unsigned long handle)
{
	if (handle & ZS_H_DIRECT)
		return 0;
	return zs_e_zspage(__atomic_load_n(zs_hentry(zs_pool_of(zp), handle),
					   __ATOMIC_ACQUIRE));
}

size_t zs_test_huge_threshold(struct zpool *zp)
{
	struct zs_pool *pool = zs_pool_of(zp);
	size_t size = ZPOOL_MAX_SIZE;

	while (size > 0 && zs_class_for(pool, size)->huge)
		size--;
	return size;
}
