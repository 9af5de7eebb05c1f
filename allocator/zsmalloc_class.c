/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_class.c - size classes and zspages for the zsmalloc backend
 *
 * The machinery under zsmalloc.c's malloc and free: choosing each class's
 * zspage layout, the fullness groups and LRU of a class, the free slots of
 * a zspage, the classes' caches of free handles, making and giving back
 * zspages, and the cache of free huge pages. Every function here expects
 * the lock its comment names (usually the class lock) to be held by the
 * caller; none takes a class lock itself but zs_huge_flush(). The design
 * and the lock ordering are described at the top of zsmalloc.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zsmalloc_int.h"

/* ---------------------------------------------------------------- classes */

/**
 * zs_layout() - the zspage length that wastes least for a slot size
 * @slot:  bytes a slot, ZS_ALIGN to ZS_PAGE_SIZE
 * @pages: set to the pages of a zspage
 * @objs:  set to the slots a zspage holds
 *
 * A zspage of n pages holds k = n * 4096 / slot slots and wastes the rest,
 * w = n * 4096 - k * slot. The length chosen, among 1..ZS_MAX_PAGES, is the
 * one of least w / (n * 4096) + n / ZS_PAGE_PENALTY: the tail wasted, plus
 * a charge per page for the partly filled zspage of the class (ties go to
 * the shorter).
 */
static void zs_layout(uint32_t slot, uint32_t *pages, uint32_t *objs)
{
	const uint64_t P = ZS_PAGE_SIZE, Q = ZS_PAGE_PENALTY;
	uint64_t bn = 1, bk = P / slot, bw = P - bk * slot;

	for (uint64_t n = 2; n <= ZS_MAX_PAGES; n++) {
		uint64_t k = n * P / slot, w = n * P - k * slot;

		/* w/(nP) + n/Q < bw/(bn P) + bn/Q, times Q P n bn */
		if (Q * w * bn + P * n * n * bn <
		    Q * bw * n + P * bn * bn * n) {
			bn = n;
			bk = k;
			bw = w;
		}
	}
	*pages = (uint32_t)bn;
	*objs = (uint32_t)bk;
}

/*
 * Builds the classes: one per distinct layout, with the largest slot size
 * of that layout, in increasing slot order. Return: 0 or -ENOMEM.
 */
int zs_build_classes(struct zs_pool *pool)
{
	uint32_t pages[ZS_NR_SLOTS], objs[ZS_NR_SLOTS], cls_slot[ZS_NR_SLOTS];
	uint32_t n = 0;

	/* Largest slots first, so a layout's first slot is its largest. */
	for (int i = ZS_NR_SLOTS - 1; i >= 0; i--) {
		uint32_t slot = (uint32_t)(i + 1) * ZS_ALIGN, c;

		zs_layout(slot, &pages[i], &objs[i]);
		for (c = 0; c < n; c++) {
			uint32_t j = cls_slot[c] / ZS_ALIGN - 1;

			if (pages[j] == pages[i] && objs[j] == objs[i])
				break;
		}
		if (c == n)
			cls_slot[n++] = slot;
	}
	pool->classes = aligned_alloc(64, n * sizeof(*pool->classes));
	if (!pool->classes)
		return -ENOMEM;
	__atomic_add_fetch(&pool->meta_bytes, n * sizeof(*pool->classes),
			   __ATOMIC_RELAXED);
	memset(pool->classes, 0, n * sizeof(*pool->classes));
	pool->nr_classes = n;
	for (uint32_t c = 0; c < n; c++) {
		struct zs_class *cl = &pool->classes[c];
		uint32_t j = cls_slot[n - 1 - c] / ZS_ALIGN - 1;

		pthread_mutex_init(&cl->lock, NULL);
		cl->slot = (j + 1) * ZS_ALIGN;
		cl->pages = pages[j];
		cl->objs = objs[j];
		cl->index = c;
		/* No better than a page an object: the huge class. */
		cl->huge = cl->objs <= cl->pages;
		if (cl->huge)
			pool->huge = cl;
	}
	/* Each slot size goes to the class of its layout. */
	for (uint32_t i = 0; i < ZS_NR_SLOTS; i++)
		for (uint32_t c = 0; c < n; c++)
			if (pool->classes[c].pages == pages[i] &&
			    pool->classes[c].objs == objs[i])
				pool->slot_class[i] = (uint8_t)c;
	return 0;
}

/* ------------------------------------------------ lists (class lock held) */

/* Adds zspage @id to the partial list of its fullness, if it is partial. */
void zs_group_add(struct zs_pool *pool, struct zs_class *c, uint32_t id)
{
	struct zspage *zs = zs_zspage(pool, id);
	unsigned int g = zs_group_of(c, zs_st_inuse(zs->state));

	if (g >= ZS_NR_GROUPS)
		return;
	zs->grp.prev = 0;
	zs->grp.next = c->group[g];
	if (c->group[g])
		zs_zspage(pool, c->group[g])->grp.prev = id;
	c->group[g] = id;
}

/* Takes zspage @id off its partial list, if it is on one. */
void zs_group_del(struct zs_pool *pool, struct zs_class *c, uint32_t id)
{
	struct zspage *zs = zs_zspage(pool, id);
	unsigned int g = zs_group_of(c, zs_st_inuse(zs->state));

	if (g >= ZS_NR_GROUPS)
		return;
	if (zs->grp.prev)
		zs_zspage(pool, zs->grp.prev)->grp.next = zs->grp.next;
	else
		c->group[g] = zs->grp.next;
	if (zs->grp.next)
		zs_zspage(pool, zs->grp.next)->grp.prev = zs->grp.prev;
}

/* Puts zspage @id on the LRU: at the head (newest) or at the tail. */
void zs_lru_add(struct zs_pool *pool, struct zs_class *c, uint32_t id,
		bool head)
{
	struct zspage *zs = zs_zspage(pool, id);

	if (head) {
		zs->lru_prev = 0;
		zs->lru_next = c->lru_head;
		if (c->lru_head)
			zs_zspage(pool, c->lru_head)->lru_prev = id;
		else
			c->lru_tail = id;
		c->lru_head = id;
	} else {
		zs->lru_next = 0;
		zs->lru_prev = c->lru_tail;
		if (c->lru_tail)
			zs_zspage(pool, c->lru_tail)->lru_next = id;
		else
			c->lru_head = id;
		c->lru_tail = id;
	}
}

void zs_lru_del(struct zs_pool *pool, struct zs_class *c, uint32_t id)
{
	struct zspage *zs = zs_zspage(pool, id);

	if (zs->lru_prev)
		zs_zspage(pool, zs->lru_prev)->lru_next = zs->lru_next;
	else
		c->lru_head = zs->lru_next;
	if (zs->lru_next)
		zs_zspage(pool, zs->lru_next)->lru_prev = zs->lru_prev;
	else
		c->lru_tail = zs->lru_prev;
}

/* ------------------------------------------ slots of a zspage (lock held) */

/*
 * A free slot's header is (next ^ (obj + 1)) << 1, bit 0 clear: an all-zero
 * header chains to the next slot, so a fresh zspage is one free list.
 */

/**
 * zs_slot_take() - take the first free slot of a normal-class zspage
 * @c:  the class
 * @zs: the zspage, not full
 *
 * Return: the slot index. The in-use count goes up by one; the caller
 * writes the slot header.
 */
uint32_t zs_slot_take(struct zs_class *c, struct zspage *zs)
{
	uint32_t obj = zs_st_free(zs->state), hdr, next;

	assert(obj < c->objs);
	hdr = zs_hdr_read(c, zs, obj);
	assert(!(hdr & ZS_HDR_ALLOC));
	next = (hdr >> 1) ^ (obj + 1);
	zs->state = zs_st_make(zs->state, zs_st_inuse(zs->state) + 1, next);
	zs_unpoison(zs_slot(c, zs, obj), c->slot);
	return obj;
}

/* Puts slot @obj back on the zspage's free list; in-use goes down by one. */
void zs_slot_give(struct zs_class *c, struct zspage *zs, uint32_t obj)
{
	uint32_t hdr = (zs_st_free(zs->state) ^ (obj + 1)) << 1;

	zs_unpoison(zs_slot(c, zs, obj), sizeof(hdr)); /* a 1-byte object's */
	memcpy(zs_slot(c, zs, obj), &hdr, sizeof(hdr));
	zs_poison(zs_slot(c, zs, obj) + sizeof(hdr), c->slot - sizeof(hdr));
	zs->state = zs_st_make(zs->state, zs_st_inuse(zs->state) - 1, obj);
}

/* --------------------------------------- handles and zspages (lock held) */

/* Gives @n handle ids of the class's cache back to the table. */
unsigned int zs_mag_flush(struct zs_pool *pool, struct zs_class *c, uint32_t n)
{
	if (n > c->nmag)
		n = c->nmag;
	c->nmag -= n;
	return zs_table_put(&pool->handles, &c->mag[c->nmag], n);
}

/* Return: a free handle, or 0 if the handle table cannot grow. */
unsigned long zs_handle_get(struct zs_pool *pool, struct zs_class *c)
{
	if (c->nmag == 0)
		c->nmag = zs_table_get(&pool->handles, c->mag, ZS_MAG_BATCH);
	if (c->nmag == 0)
		return 0;
	return zs_handle_of(c->mag[--c->nmag]);
}

/* Return: table pages given back. */
unsigned int zs_handle_put(struct zs_pool *pool, struct zs_class *c,
			   unsigned long handle)
{
	unsigned int released = 0;

	__atomic_store_n(zs_hentry(pool, handle), 0, __ATOMIC_RELAXED);
	if (c->nmag == ZS_MAG_SIZE)
		released = zs_mag_flush(pool, c, ZS_MAG_BATCH);
	c->mag[c->nmag++] = zs_id_of(handle);
	/* An idle class keeps no handles: an empty pool frees its table. */
	if (c->nr_objs == 0)
		released += zs_mag_flush(pool, c, c->nmag);
	return released;
}

/* A new, empty zspage of class @c (no lock held). Return: its id, or 0. */
uint32_t zs_zspage_new(struct zs_pool *pool, struct zs_class *c)
{
	struct zspage *zs;
	uint32_t id;
	char *base;

	base = pagesrc_alloc(pool->ps, c->pages);
	if (!base)
		return 0;
	if (zs_table_get(&pool->zspages, &id, 1) != 1) {
		pagesrc_free(pool->ps, base, c->pages);
		return 0;
	}
	zs = zs_zspage(pool, id);
	memset(zs, 0, sizeof(*zs));
	zs->base = base;
#ifdef ZS_ASAN
	if (!c->huge) { /* all but the links of the free slots */
		zs_poison(base, (size_t)c->pages * ZS_PAGE_SIZE);
		for (uint32_t obj = 0; obj < c->objs; obj++)
			zs_unpoison(zs_slot(c, zs, obj), sizeof(uint32_t));
	}
#endif
	return id;
}

unsigned int zs_zspage_free(struct zs_pool *pool, struct zs_class *c,
			    uint32_t id)
{
	struct zspage *zs = zs_zspage(pool, id);

	zs_unpoison(zs->base, (size_t)c->pages * ZS_PAGE_SIZE);
	pagesrc_free(pool->ps, zs->base, c->pages);
	return c->pages + zs_table_put(&pool->zspages, &id, 1);
}

/**
 * zs_release_obj() - free an object for real (class lock held)
 * @pool:   the pool
 * @c:      its class
 * @id:     its zspage
 * @obj:    its slot
 * @handle: its handle
 *
 * The slot and the handle become free. A zspage under reclaim stays off
 * the lists (the shrinker puts it back); any other zspage changes group,
 * and an empty one is taken off every list.
 *
 * Return: 1 if the zspage is now empty and off every list (the caller
 * gives it back with zs_zspage_free() once the class lock is dropped), else
 * 0; plus, shifted left by one, the handle-table pages given back.
 */
unsigned int zs_release_obj(struct zs_pool *pool, struct zs_class *c,
			    uint32_t id, uint32_t obj, unsigned long handle)
{
	struct zspage *zs = zs_zspage(pool, id);
	bool reclaim = zs->state & ZS_ST_RECLAIM;
	unsigned int released;
	uint32_t left;

	c->nr_objs--;
	released = zs_handle_put(pool, c, handle);
	if (c->huge) {
		left = 0;
	} else {
		if (!reclaim)
			zs_group_del(pool, c, id);
		zs_slot_give(c, zs, obj);
		left = zs_st_inuse(zs->state);
		if (!reclaim)
			zs_group_add(pool, c, id);
	}
	if (left || reclaim)
		return released << 1;
	zs_lru_del(pool, c, id);
	c->nr_zspages--;
	return released << 1 | 1;
}

/* ---------------------------------------------- the huge page cache */

/*
 * The cache of free huge pages (see ZS_HUGE_CACHE): page addresses in a
 * pool without owner words, zspage ids (with their page) in one with.
 */

/* The page of a cache entry. */
char *zs_huge_page(const struct zs_pool *pool, uintptr_t v)
{
	return pool->huge_direct ? (char *)v
				 : zs_zspage(pool, (uint32_t)v)->base;
}

/* Keeps @v for reuse if there is room. Huge class lock held. */
bool zs_huge_keep(struct zs_pool *pool, uintptr_t v)
{
	if (pool->nhuge_cache == ZS_HUGE_CACHE || pool->huge->nr_objs == 0)
		return false;
	if (pool->nhuge_cache == 0 && v == pool->huge_fresh)
		return false; /* an allocation undone */
	pool->huge_cache[pool->nhuge_cache++] = v;
	zs_poison(zs_huge_page(pool, v), ZS_PAGE_SIZE);
	return true;
}

/* Empties the cache into @out. Huge class lock held. Return: how many. */
unsigned int zs_huge_take(struct zs_pool *pool, uintptr_t *out)
{
	unsigned int n = pool->nhuge_cache;

	memcpy(out, pool->huge_cache, n * sizeof(*out));
	pool->nhuge_cache = 0;
	return n;
}

/* Gives back what zs_huge_take() took. No lock held. Return: pages. */
unsigned int zs_huge_release(struct zs_pool *pool, const uintptr_t *v,
			     unsigned int n)
{
	unsigned int pages = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (pool->huge_direct) {
			zs_unpoison((void *)v[i], ZS_PAGE_SIZE);
			pagesrc_free(pool->ps, (void *)v[i], 1);
			pages++;
		} else {
			pages += zs_zspage_free(pool, pool->huge,
						(uint32_t)v[i]);
		}
	}
	return pages;
}

unsigned int zs_huge_flush(struct zs_pool *pool)
{
	uintptr_t v[ZS_HUGE_CACHE];
	unsigned int n;

	pthread_mutex_lock(&pool->huge->lock);
	n = zs_huge_take(pool, v);
	pthread_mutex_unlock(&pool->huge->lock);
	return zs_huge_release(pool, v, n);
}
