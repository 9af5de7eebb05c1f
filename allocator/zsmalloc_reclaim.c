/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_reclaim.c - compaction and shrink for the zsmalloc backend
 *
 * See zsmalloc.c for the layout and the lock ordering. One compaction or
 * shrink runs at a time per pool (zs_pool.reclaim_lock); malloc, free and
 * map go on meanwhile.
 *
 * Compaction, per class, under the class lock: take the emptiest partial
 * zspage (the source) off its list, move each of its objects that nobody
 * has mapped into the fullest partial zspage (the destination), and give
 * the source back to the page source once it is empty. Moving an object is
 * three steps on its handle entry: a compare-and-swap from "no pins" to
 * MOVING (a mapped object is skipped), a copy of the whole slot (header and
 * owner word included, where there are any), and a store of the new
 * location, which clears MOVING. A class is worth compacting while its
 * zspages hold at least one zspage's worth of free slots. The class lock is
 * dropped between sources, so mallocs and frees of the class wait for one
 * zspage's moves at most. A source that cannot be emptied (an object
 * mapped, or allocated after the snapshot below) is left and not retried.
 *
 * Shrink walks the victim zspage's slot headers (a shrinkable pool always
 * has them): see "Shrink and the eviction race" in zsmalloc.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "zsmalloc_int.h"

/* The fullest partial zspage of @c, or 0. Class lock held. */
static uint32_t zs_fullest(const struct zs_class *c)
{
	for (unsigned int g = ZS_NR_GROUPS; g-- > 0;)
		if (c->group[g])
			return c->group[g];
	return 0;
}

/*
 * Where compaction learns which handles live in a zspage. A pool with owner
 * words has slot headers: the zspage itself says. A pool without has none
 * (4 bytes an object saved), so compaction first scans the handle table
 * once and sorts what it found by zspage: @keys[class] holds
 * zspage id << 32 | handle, ascending. Such a snapshot goes stale as
 * objects come and go meanwhile, so every handle is checked against its
 * entry under the class lock before it is moved; an object allocated since
 * the scan is simply not moved (its zspage then stays). The snapshot is
 * malloc'd for the call: 8 bytes an object of the classes worth compacting.
 * While it lives, the handle table keeps its emptied pages (zs_table_hold()),
 * so that reading the entry of a handle freed since the scan stays safe.
 */
struct zs_snapshot {
	uint64_t *keys[ZS_NR_SLOTS];
	size_t n[ZS_NR_SLOTS], cap[ZS_NR_SLOTS];
	const bool *want; /* classes to collect */
	bool nomem;
	/*
	 * Zspages objects were moved into (bit per zspage id): the snapshot
	 * does not know those objects are there now, so such a zspage is
	 * never taken as a source. (Nor is it worth one: destinations are the
	 * fullest zspages.)
	 */
	uint64_t *moved_in;
	size_t nwords;
};

static bool zs_moved_in(const struct zs_snapshot *snap, uint32_t id)
{
	return id / 64 < snap->nwords && snap->moved_in[id / 64] >> id % 64 & 1;
}

static void zs_mark_moved_in(struct zs_snapshot *snap, uint32_t id)
{
	if (id / 64 >= snap->nwords) {
		size_t n = (id / 64 + 1) * 2;
		uint64_t *m = realloc(snap->moved_in, n * sizeof(*m));

		if (!m)
			return; /* then it may be tried as a source: no harm */
		memset(m + snap->nwords, 0, (n - snap->nwords) * sizeof(*m));
		snap->moved_in = m;
		snap->nwords = n;
	}
	snap->moved_in[id / 64] |= UINT64_C(1) << id % 64;
}

/*
 * The emptiest partial zspage of @c that is not one of the @nskip in
 * @skip, nor one objects were moved into, or 0. Class lock held.
 */
static uint32_t zs_emptiest(struct zs_pool *pool, const struct zs_class *c,
			    const struct zs_snapshot *snap,
			    const uint32_t *skip, unsigned int nskip)
{
	for (unsigned int g = 0; g < ZS_NR_GROUPS; g++) {
		for (uint32_t id = c->group[g]; id;
		     id = zs_zspage(pool, id)->grp.next) {
			unsigned int i = 0;

			while (i < nskip && skip[i] != id)
				i++;
			if (i == nskip && !zs_moved_in(snap, id))
				return id;
		}
	}
	return 0;
}

/* zs_table_scan() callback: collects the handles of wanted classes. */
static void zs_snap_chunk(void *entries, uint32_t first, uint32_t n, void *arg)
{
	struct zs_snapshot *s = arg;
	uint64_t *ent = entries;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = __atomic_load_n(&ent[i], __ATOMIC_RELAXED);
		unsigned int c = zs_e_class(e);

		if (!(e & ZS_E_ALLOC) || !s->want[c])
			continue;
		if (s->n[c] == s->cap[c]) {
			size_t cap = s->cap[c] ? 2 * s->cap[c] : 1024;
			uint64_t *k = realloc(s->keys[c], cap * sizeof(*k));

			if (!k) {
				s->nomem = true;
				continue;
			}
			s->keys[c] = k;
			s->cap[c] = cap;
		}
		s->keys[c][s->n[c]++] = (uint64_t)zs_e_zspage(e) << 32 |
					zs_handle_of(first + i);
	}
}

static int zs_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The handles that may live in zspage @id: into @buf from the slot headers
 * (owner words), or a range of the snapshot. Class lock held.
 */
static const uint64_t *zs_candidates(struct zs_pool *pool,
				     const struct zs_class *c, uint32_t id,
				     const struct zs_snapshot *snap,
				     uint64_t *buf, size_t *n)
{
	const uint64_t *k = snap->keys[c->index];
	size_t lo = 0, hi = snap->n[c->index];

	if (pool->shrinkable) {
		const struct zspage *zs = zs_zspage(pool, id);

		*n = 0;
		for (uint32_t obj = 0; obj < c->objs; obj++) {
			uint32_t hdr = zs_hdr_read(c, zs, obj);

			if (hdr & ZS_HDR_ALLOC)
				buf[(*n)++] = hdr & ~ZS_HDR_ALLOC;
		}
		return buf;
	}
	while (lo < hi) { /* the first key of zspage @id */
		size_t mid = lo + (hi - lo) / 2;

		if (k[mid] >> 32 < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; hi < snap->n[c->index] && k[hi] >> 32 == id; hi++)
		;
	*n = hi - lo;
	return *n ? k + lo : buf;
}

/*
 * Moves what can be moved of zspage @src_id, which is off the lists, into
 * the fullest partial zspages; @cand (low 32 bits) are the handles that may
 * be in it. Class lock held. Return: objects moved; *nodst is set if no
 * zspage had room.
 */
static uint32_t zs_drain(struct zs_pool *pool, struct zs_class *c,
			 uint32_t src_id, const uint64_t *cand, size_t n,
			 struct zs_snapshot *snap, bool *nodst)
{
	struct zspage *src = zs_zspage(pool, src_id);
	uint32_t moved = 0, dst_id = 0;

	for (size_t k = 0; k < n && zs_st_inuse(src->state); k++) {
		uint64_t *ep = zs_hentry(pool, (uint32_t)cand[k]);
		uint64_t e = __atomic_load_n(ep, __ATOMIC_ACQUIRE);
		struct zspage *dst;
		uint32_t obj, to;

		if (!(e & ZS_E_ALLOC) || zs_e_class(e) != c->index ||
		    zs_e_zspage(e) != src_id)
			continue; /* a stale snapshot entry */
		if (e & ZS_E_PIN_MASK)
			continue; /* mapped: it stays */
		if (!dst_id) {
			dst_id = zs_fullest(c);
			if (!dst_id) {
				*nodst = true;
				break;
			}
			if (!pool->shrinkable)
				zs_mark_moved_in(snap, dst_id);
		}
		if (!__atomic_compare_exchange_n(ep, &e, e | ZS_E_MOVING, false,
						 __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue; /* mapped just now */
		obj = zs_e_obj(e);
		dst = zs_zspage(pool, dst_id);
		zs_group_del(pool, c, dst_id);
		to = zs_slot_take(c, dst);
		zs_unpoison(zs_slot(c, src, obj), c->slot); /* its slack */
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

/* At most this many zspages a class compaction gives up on. */
#define ZS_COMPACT_SKIP 64

/* Compacts one normal class. Return: pages given back. */
static unsigned long zs_compact_class(struct zs_pool *pool, struct zs_class *c,
				      struct zs_snapshot *snap, uint64_t *buf)
{
	uint32_t skip[ZS_COMPACT_SKIP];
	unsigned int nskip = 0;
	unsigned long pages = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		const uint64_t *cand;
		bool nodst = false;
		uint32_t src_id;
		size_t n;

		if (c->nr_zspages * c->objs - c->nr_objs < c->objs)
			break; /* not one zspage's worth of free slots */
		src_id = zs_emptiest(pool, c, snap, skip, nskip);
		if (!src_id)
			break;
		cand = zs_candidates(pool, c, src_id, snap, buf, &n);
		zs_group_del(pool, c, src_id);
		zs_drain(pool, c, src_id, cand, n, snap, &nodst);
		if (zs_st_inuse(zs_zspage(pool, src_id)->state) == 0) {
			zs_lru_del(pool, c, src_id);
			c->nr_zspages--;
			pthread_mutex_unlock(&c->lock);
			pages += zs_zspage_free(pool, c, src_id);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		zs_group_add(pool, c, src_id);
		/* Mapped objects, or new ones the snapshot missed. */
		if (nodst || nskip == ZS_COMPACT_SKIP)
			break;
		skip[nskip++] = src_id;
		pthread_mutex_unlock(&c->lock); /* let malloc and free in */
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return pages;
}

/**
 * zs_compact() - move objects out of sparse zspages and free them
 * @zp: the pool
 *
 * Also gives the cached free huge pages back, and the classes' cached
 * free handles back to the handle table, whose emptied top pages then go
 * back too. Handles stay valid; objects
 * mapped meanwhile are left where they are.
 *
 * Return: the number of pages given back to the page source.
 */
long zs_compact(struct zpool *zp)
{
	struct zs_pool *pool = zs_pool_of(zp);
	struct zs_snapshot *snap = calloc(1, sizeof(*snap));
	bool want[ZS_NR_SLOTS] = {false}, any = false;
	uint64_t *buf = malloc(ZS_MAX_OBJS * sizeof(*buf));
	unsigned long pages = 0;

	if (!snap || !buf) {
		free(snap);
		free(buf);
		return 0;
	}
	pthread_mutex_lock(&pool->reclaim_lock);
	/* Stale handles of the snapshot must stay readable. */
	zs_table_hold(&pool->handles);
	for (uint32_t i = 0; i < pool->nr_classes; i++) {
		struct zs_class *c = &pool->classes[i];

		pthread_mutex_lock(&c->lock);
		pages += zs_mag_flush(pool, c, c->nmag);
		want[i] = !c->huge &&
			  c->nr_zspages * c->objs - c->nr_objs >= c->objs;
		any |= want[i];
		pthread_mutex_unlock(&c->lock);
	}
	pages += zs_huge_flush(pool);
	snap->want = want;
	if (any && !pool->shrinkable) {
		zs_table_scan(&pool->handles, zs_snap_chunk, snap);
		for (uint32_t i = 0; i < pool->nr_classes; i++)
			if (snap->n[i] > 1)
				qsort(snap->keys[i], snap->n[i],
				      sizeof(uint64_t), zs_cmp_u64);
	}
	for (uint32_t i = 0; i < pool->nr_classes && !snap->nomem; i++)
		if (want[i])
			pages += zs_compact_class(pool, &pool->classes[i], snap,
						  buf);
	pages += zs_table_unhold(&pool->handles);
	__atomic_add_fetch(&pool->compacted, pages, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&pool->reclaim_lock);
	for (uint32_t i = 0; i < ZS_NR_SLOTS; i++)
		free(snap->keys[i]);
	free(snap->moved_in);
	free(snap);
	free(buf);
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
		*handle = (unsigned long)(zs->state & ZS_ST_HANDLE_MASK) << 1;
		*owner = zs->owner;
		return true;
	}
	hdr = zs_hdr_read(c, zs, obj);
	if (!(hdr & ZS_HDR_ALLOC))
		return false;
	*handle = hdr & ~ZS_HDR_ALLOC;
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
		if (__atomic_load_n(zs_hentry(pool, handle), __ATOMIC_ACQUIRE) &
		    ZS_E_DEAD)
			continue; /* its owner freed it already */
		ret = zpool_call_evict(&pool->zpool, handle, owner);
		if (ret < 0)
			break;
	}

	pthread_mutex_lock(&c->lock);
	for (uint32_t obj = 0; obj < c->objs; obj++) {
		if (!zs_obj_of(pool, c, zs, obj, &handle, &owner))
			continue;
		if (__atomic_load_n(zs_hentry(pool, handle), __ATOMIC_ACQUIRE) &
		    ZS_E_DEAD)
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
		zs->stamp =
			__atomic_fetch_add(&pool->clock, 1, __ATOMIC_RELAXED);
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
 * The cached free huge pages go first: giving them back costs no eviction.
 * Then zspages least recently allocated into, across all classes, each at
 * most once per call.
 *
 * Return: 0 if @size bytes were given back; else -ENOENT if every zspage
 * that was there when the call began has been tried, or the first negative
 * value of the evict callback.
 */
int zs_shrink(struct zpool *zp, size_t size, size_t *released)
{
	struct zs_pool *pool = zs_pool_of(zp);
	size_t pages = 0;
	uint32_t start;
	int ret = 0;

	if (size == 0)
		goto out;
	pthread_mutex_lock(&pool->reclaim_lock);
	pages += zs_huge_flush(pool);
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
	/* Huge objects the callbacks freed elsewhere went to the cache. */
	pages += zs_huge_flush(pool);
	pthread_mutex_unlock(&pool->reclaim_lock);
out:
	if (released)
		*released = pages * ZS_PAGE_SIZE;
	return pages * ZS_PAGE_SIZE >= size ? 0 : ret;
}
