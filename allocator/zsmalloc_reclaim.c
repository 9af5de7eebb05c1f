/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_reclaim.c - compaction and shrink for the zsmalloc backend
 *
 * Both walk zspages rather than handles: a slot header names the handle of
 * the object in it (see zsmalloc.c for the layout and the lock ordering).
 * One compaction or shrink runs at a time per pool (zs_pool.reclaim_lock);
 * malloc, free and map go on meanwhile.
 *
 * Compaction, per class, under the class lock: take the emptiest partial
 * zspage (the source) off its list, move each of its objects that nobody
 * has mapped into the fullest partial zspage (the destination), and give
 * the source back to the page source once it is empty. Moving an object is
 * three steps on its handle entry: a compare-and-swap from "no pins" to
 * MOVING (a mapped object is skipped), a copy of the whole slot, header and
 * owner word included, and a store of the new location, which clears
 * MOVING. A class is worth compacting while its zspages hold at least one
 * zspage's worth of free slots. The class lock is dropped between sources,
 * so mallocs and frees of the class wait for one zspage's moves at most.
 *
 * Shrink: see "Shrink and the eviction race" in zsmalloc.c.
 */
#include <errno.h>

#include "zsmalloc_int.h"

/* The fullest partial zspage of @c, or 0. Class lock held. */
static uint32_t zs_fullest(const struct zs_class *c)
{
	for (unsigned int g = ZS_NR_GROUPS; g-- > 0;)
		if (c->group[g])
			return c->group[g];
	return 0;
}

/* The emptiest partial zspage of @c, or 0. Class lock held. */
static uint32_t zs_emptiest(const struct zs_class *c)
{
	for (unsigned int g = 0; g < ZS_NR_GROUPS; g++)
		if (c->group[g])
			return c->group[g];
	return 0;
}

/*
 * Moves what can be moved of zspage @src_id, which is off the lists, into
 * the fullest partial zspages. Class lock held. Return: objects moved.
 */
static uint32_t zs_drain(struct zs_pool *pool, struct zs_class *c,
			 uint32_t src_id)
{
	struct zspage *src = zs_zspage(pool, src_id);
	uint32_t moved = 0, dst_id = 0;

	for (uint32_t obj = 0; obj < c->objs && zs_st_inuse(src->state);
	     obj++) {
		uint32_t hdr = zs_hdr_read(c, src, obj), to;
		struct zspage *dst;
		uint64_t *ep, e;

		if (!(hdr & ZS_HDR_ALLOC))
			continue;
		ep = zs_hentry(pool, hdr >> 1);
		e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
		if (e & ZS_E_PIN_MASK)
			continue; /* mapped: it stays */
		if (!dst_id)
			dst_id = zs_fullest(c);
		if (!dst_id)
			break;
		if (!__atomic_compare_exchange_n(ep, &e, e | ZS_E_MOVING, false,
						 __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue; /* mapped just now */
		dst = zs_zspage(pool, dst_id);
		zs_group_del(pool, c, dst_id);
		to = zs_slot_take(c, dst);
		memcpy(zs_slot(c, dst, to), zs_slot(c, src, obj), c->slot);
		zs_group_add(pool, c, dst_id);
		/* The new location, with no pins and MOVING clear. */
		__atomic_store_n(ep, zs_e_make(c->index, dst_id, to),
				 __ATOMIC_RELEASE);
		zs_slot_give(c, src, obj);
		moved++;
		if (zs_st_inuse(dst->state) == c->objs)
			dst_id = 0;
	}
	return moved;
}

/* Compacts one normal class. Return: pages given back. */
static unsigned long zs_compact_class(struct zs_pool *pool, struct zs_class *c)
{
	unsigned long pages = 0;
	uint64_t rounds;

	pthread_mutex_lock(&c->lock);
	/* Frees from other threads can make new work; bound the rounds. */
	rounds = 2 * c->nr_zspages + 16;
	while (rounds--) {
		uint32_t src_id, moved;

		if (c->nr_zspages * c->objs - c->nr_objs < c->objs)
			break; /* not one zspage's worth of free slots */
		src_id = zs_emptiest(c);
		if (!src_id)
			break;
		zs_group_del(pool, c, src_id);
		moved = zs_drain(pool, c, src_id);
		if (zs_st_inuse(zs_zspage(pool, src_id)->state) == 0) {
			zs_lru_del(pool, c, src_id);
			c->nr_zspages--;
			pthread_mutex_unlock(&c->lock);
			pages += zs_zspage_free(pool, c, src_id);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		zs_group_add(pool, c, src_id);
		if (!moved)
			break; /* all mapped, or nowhere to go */
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return pages;
}

/**
 * zs_compact() - move objects out of sparse zspages and free them
 * @zp: the pool
 *
 * Also gives the classes' cached free handles back to the handle table,
 * whose emptied top pages then go back too. Handles stay valid; objects
 * mapped meanwhile are left where they are.
 *
 * Return: the number of pages given back to the page source.
 */
long zs_compact(struct zpool *zp)
{
	struct zs_pool *pool = zs_pool_of(zp);
	unsigned long pages = 0;

	pthread_mutex_lock(&pool->reclaim_lock);
	for (uint32_t i = 0; i < pool->nr_classes; i++) {
		struct zs_class *c = &pool->classes[i];

		pthread_mutex_lock(&c->lock);
		pages += zs_mag_flush(pool, c, c->nmag);
		pthread_mutex_unlock(&c->lock);
		if (!c->huge)
			pages += zs_compact_class(pool, c);
	}
	__atomic_add_fetch(&pool->compacted, pages, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pool->reclaim_lock);
	return (long)pages;
}

/* Whether stamp @a is before stamp @b (the clock wraps). */
static bool zs_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/*
 * The class whose LRU tail was allocated into longest ago, before @start;
 * NULL if no zspage is that old.
 */
static struct zs_class *zs_oldest_class(struct zs_pool *pool, uint32_t start)
{
	struct zs_class *best = NULL;
	uint32_t best_age = 0;

	for (uint32_t i = 0; i < pool->nr_classes; i++) {
		struct zs_class *c = &pool->classes[i];

		pthread_mutex_lock(&c->lock);
		if (c->lru_tail) {
			uint32_t stamp = zs_zspage(pool, c->lru_tail)->stamp;

			if (zs_before(stamp, start) &&
			    (!best || start - stamp > best_age)) {
				best = c;
				best_age = start - stamp;
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
	return best;
}

/* The handle and owner of slot @obj of @zs, if allocated. */
static bool zs_obj_of(const struct zs_pool *pool, const struct zs_class *c,
		      const struct zspage *zs, uint32_t obj,
		      unsigned long *handle, uint64_t *owner)
{
	uint32_t hdr;

	if (c->huge) {
		*handle = zs->state & ZS_ST_HANDLE_MASK;
		*owner = zs->owner;
		return true;
	}
	hdr = zs_hdr_read(c, zs, obj);
	if (!(hdr & ZS_HDR_ALLOC))
		return false;
	*handle = hdr >> 1;
	memcpy(owner, zs_slot(c, zs, obj) + ZS_HDR_SIZE, sizeof(*owner));
	(void)pool;
	return true;
}

/**
 * zs_reclaim_zspage() - evict the objects of the LRU tail zspage of @c
 * @pool:  the pool (reclaim_lock held)
 * @c:     the class
 * @start: only a zspage allocated into before this stamp is taken
 * @pages: pages given back are added here
 *
 * Return: 0 (also when the tail was no longer old enough: the caller
 * looks again), or the evict callback's negative refusal.
 */
static int zs_reclaim_zspage(struct zs_pool *pool, struct zs_class *c,
			     uint32_t start, size_t *pages)
{
	unsigned long handle;
	struct zspage *zs;
	uint32_t id, left = 0;
	uint64_t owner;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	id = c->lru_tail;
	if (!id || !zs_before(zs_zspage(pool, id)->stamp, start)) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	zs = zs_zspage(pool, id);
	zs_lru_del(pool, c, id);
	if (!c->huge)
		zs_group_del(pool, c, id);
	zs->state |= ZS_ST_RECLAIM;
	pthread_mutex_unlock(&c->lock);

	/*
	 * No lock: nothing but DEAD bits changes in a zspage under reclaim
	 * (no malloc into it, no compaction, frees only mark the entry).
	 */
	for (uint32_t obj = 0; obj < c->objs; obj++) {
		if (!zs_obj_of(pool, c, zs, obj, &handle, &owner))
			continue;
		if (__atomic_load_n(zs_hentry(pool, handle),
				    __ATOMIC_ACQUIRE) & ZS_E_DEAD)
			continue; /* its owner freed it already */
		ret = zpool_call_evict(&pool->zpool, handle, owner);
		if (ret < 0)
			break;
	}

	pthread_mutex_lock(&c->lock);
	for (uint32_t obj = 0; obj < c->objs; obj++) {
		if (!zs_obj_of(pool, c, zs, obj, &handle, &owner))
			continue;
		if (__atomic_load_n(zs_hentry(pool, handle),
				    __ATOMIC_ACQUIRE) & ZS_E_DEAD)
			*pages += zs_release_obj(pool, c, id, obj, handle) >> 1;
		else
			left++;
	}
	zs->state &= ~ZS_ST_RECLAIM;
	if (!left) {
		c->nr_zspages--;
		pthread_mutex_unlock(&c->lock);
		*pages += zs_zspage_free(pool, c, id);
		return ret;
	}
	if (!c->huge)
		zs_group_add(pool, c, id);
	if (ret < 0) {
		/* Refused: it stays where it was, the coldest. */
		zs_lru_add(pool, c, id, false);
	} else {
		/* Not all freed: newest, so this shrink does not retake it. */
		zs_lru_add(pool, c, id, true);
		zs->stamp = __atomic_fetch_add(&pool->clock, 1,
					       __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/**
 * zs_shrink() - evict the coldest zspages (zpool_shrink())
 * @zp:       the pool (it has an evict callback: zpool.c checks)
 * @size:     bytes to give back
 * @released: if not NULL, set to the bytes given back
 *
 * Takes zspages least recently allocated into first, across all classes,
 * each at most once per call.
 *
 * Return: 0 once @size bytes are given back; -ENOENT if every zspage that
 * was there when the call began has been tried first; or the first
 * negative value of the evict callback.
 */
int zs_shrink(struct zpool *zp, size_t size, size_t *released)
{
	struct zs_pool *pool = zs_pool_of(zp);
	size_t pages = 0;
	uint32_t start;
	int ret = 0;

	pthread_mutex_lock(&pool->reclaim_lock);
	start = __atomic_load_n(&pool->clock, __ATOMIC_RELAXED);
	while (pages * ZS_PAGE_SIZE < size) {
		struct zs_class *c = zs_oldest_class(pool, start);

		if (!c) {
			ret = -ENOENT;
			break;
		}
		ret = zs_reclaim_zspage(pool, c, start, &pages);
		if (ret < 0)
			break;
	}
	pthread_mutex_unlock(&pool->reclaim_lock);
	if (released)
		*released = pages * ZS_PAGE_SIZE;
	return ret;
}
