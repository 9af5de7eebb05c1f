/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_int.h - zsmalloc's structures and encodings, shared by
 * zsmalloc.c (malloc, free, map), zsmalloc_class.c (classes, zspages) and
 * zsmalloc_reclaim.c (compaction and shrink), and seen by the unit tests
 * and bench_alloc. Internal: nothing else includes it.
 *
 * The design, the memory layout and the lock ordering are described at the
 * top of zsmalloc.c.
 */
#ifndef ZRAMD_ZSMALLOC_INT_H
#define ZRAMD_ZSMALLOC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pagesrc.h"
#include "zpool_backend.h"
#include "zsmalloc_table.h"

/*
 * Under AddressSanitizer, memory that holds no object is poisoned: free
 * slots (but for their 4-byte link), the slack after an object in its slot
 * (as allocated; a slot compaction moved keeps its slack addressable), the
 * tail of a zspage, and cached huge pages. An overrun or a stale mapping is
 * then reported where it happens. Everything is unpoisoned before it goes
 * back to the page source, which unmaps without unpoisoning. Huge pages of
 * a pool without owner words are left unpoisoned: nothing lists them, so
 * destroy could not unpoison them.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ZS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZS_ASAN 1
#endif
#endif
#ifdef ZS_ASAN
#include <sanitizer/asan_interface.h>
#define zs_poison(addr, len)   ASAN_POISON_MEMORY_REGION(addr, len)
#define zs_unpoison(addr, len) ASAN_UNPOISON_MEMORY_REGION(addr, len)
#else
#define zs_poison(addr, len)   ((void)(addr), (void)(len))
#define zs_unpoison(addr, len) ((void)(addr), (void)(len))
#endif

#define ZS_PAGE_SIZE ZPOOL_PAGE_SIZE
/* Slot sizes are multiples of this: 16, 32, ..., 4096. */
#define ZS_ALIGN    16u
#define ZS_NR_SLOTS (ZS_PAGE_SIZE / ZS_ALIGN)
/* The longest zspage, in pages. */
#define ZS_MAX_PAGES 16u
/*
 * Choosing a zspage's length, each of its pages counts as 1/ZS_PAGE_PENALTY
 * of waste (0.25%): the partly filled zspage every class keeps costs half a
 * zspage on average, so length is not free (see zs_layout()).
 */
#define ZS_PAGE_PENALTY 400u
/* The most objects a zspage holds (16-byte slots in the longest zspage). */
#define ZS_MAX_OBJS (ZS_MAX_PAGES * ZS_PAGE_SIZE / ZS_ALIGN)
/* Partial zspages are kept in groups by quarter of fullness. */
#define ZS_NR_GROUPS   4u
#define ZS_GROUP_EMPTY ZS_NR_GROUPS
#define ZS_GROUP_FULL  (ZS_NR_GROUPS + 1)
/*
 * Free huge pages kept for reuse: an overwrite of an incompressible sector
 * frees a huge object and allocates another, and giving the page back and
 * taking a new one costs a madvise() (a TLB shootdown on every CPU that ran
 * the process) and a page fault each time. At most this many (128 KiB),
 * and none once the class is empty, compacted or shrunk. In the churn of
 * bench_alloc, 32 cuts the pages given back per overwrite from 1 in 56 (8
 * pages) to 1 in 240. One exception: a page freed while the cache is empty
 * right after it was taken new goes back at once, so that a caller that
 * undoes an allocation (it found the pool over its memory limit) sees
 * total_size fall back.
 */
#define ZS_HUGE_CACHE 32u
/* Free handles a class keeps at hand, and how many move at a time. */
#define ZS_MAG_SIZE  64u
#define ZS_MAG_BATCH 32u

/*
 * Handles. A handle of the handle table is (id + 1) << 1: even, never 0,
 * below 2^32. A huge object of a pool without owner words has no entry and
 * no zspage structure: its handle is its page's address with bit 0 set
 * (ZS_H_DIRECT). Table ids are below ZS_MAX_HANDLES.
 */
#define ZS_H_DIRECT    1ul
#define ZS_MAX_HANDLES ((UINT32_C(1) << 31) - 1)

static inline unsigned long zs_handle_of(uint32_t id)
{
	return ((unsigned long)id + 1) << 1;
}

static inline uint32_t zs_id_of(unsigned long handle)
{
	return (uint32_t)((handle >> 1) - 1);
}

/*
 * Slot header, in pools with owner words only (normal classes): the
 * handle with bit 0 set (a free slot's link has bit 0 clear), then the
 * 8-byte owner word, then the object.
 */
#define ZS_HDR_SIZE   4u
#define ZS_OWNER_SIZE 8u
#define ZS_HDR_ALLOC  1u

_Static_assert(ZS_MAX_HANDLES <= UINT32_MAX / 2, "a handle fits 32 bits");

_Static_assert(PAGESRC_PAGE_SIZE == ZS_PAGE_SIZE, "one page size");
_Static_assert(ZS_MAX_PAGES <= PAGESRC_MAX_RUN, "a zspage is one run");
_Static_assert(ZS_PAGE_SIZE % ZS_ALIGN == 0, "slots tile a page");

/*
 * Handle table entry (64 bits). The handle names the entry; the entry says
 * where the object is now.
 *
 *   63                 32 31      20 19      12 11   10  9  8  7  6      0
 *  +---------------------+----------+----------+------+--+--+--+--------+
 *  |     zspage id       | obj idx  |  class   |  0   |DE|AL|MV|  pins  |
 *  +---------------------+----------+----------+------+--+--+--+--------+
 *
 *  pins    how many mappings are open (map adds one, unmap takes it away)
 *  MV      compaction is copying the object: map waits
 *  AL      allocated (a free entry is all zero)
 *  DE      freed while its zspage was under reclaim; released afterwards
 */
#define ZS_E_PIN_MASK	  0x7fu
#define ZS_E_MOVING	  (1u << 7)
#define ZS_E_ALLOC	  (1u << 8)
#define ZS_E_DEAD	  (1u << 9)
#define ZS_E_CLASS_SHIFT  12
#define ZS_E_CLASS_BITS	  8
#define ZS_E_OBJ_SHIFT	  20
#define ZS_E_OBJ_BITS	  12
#define ZS_E_ZSPAGE_SHIFT 32

_Static_assert(ZS_NR_SLOTS <= 1u << ZS_E_CLASS_BITS, "class fits entry");
_Static_assert(ZS_MAX_OBJS <= 1u << ZS_E_OBJ_BITS, "index fits entry");
_Static_assert(ZS_E_CLASS_SHIFT + ZS_E_CLASS_BITS == ZS_E_OBJ_SHIFT &&
		       ZS_E_OBJ_SHIFT + ZS_E_OBJ_BITS == ZS_E_ZSPAGE_SHIFT,
	       "entry fields do not overlap");
_Static_assert(ZS_E_DEAD < (1u << ZS_E_CLASS_SHIFT) &&
		       ZS_E_PIN_MASK < ZS_E_MOVING,
	       "flags fit below the class, pins below the flags");

static inline uint64_t zs_e_make(unsigned int cls, uint32_t zspage,
				 uint32_t obj)
{
	return (uint64_t)zspage << ZS_E_ZSPAGE_SHIFT |
	       (uint64_t)obj << ZS_E_OBJ_SHIFT |
	       (uint64_t)cls << ZS_E_CLASS_SHIFT | ZS_E_ALLOC;
}

static inline unsigned int zs_e_class(uint64_t e)
{
	return (unsigned int)(e >> ZS_E_CLASS_SHIFT) &
	       ((1u << ZS_E_CLASS_BITS) - 1);
}

static inline uint32_t zs_e_obj(uint64_t e)
{
	return (uint32_t)(e >> ZS_E_OBJ_SHIFT) & ((1u << ZS_E_OBJ_BITS) - 1);
}

static inline uint32_t zs_e_zspage(uint64_t e)
{
	return (uint32_t)(e >> ZS_E_ZSPAGE_SHIFT);
}

/*
 * A zspage: a run of 1..ZS_MAX_PAGES pages cut into the slots of one class.
 * 32 bytes, in the zspage table (ids are 32-bit, 0 means none).
 *
 * state, normal class: bits 0-12 objects in use, bits 13-25 the first free
 * slot (objs: none), bit 31 under reclaim. Huge class (one object, a page):
 * bits 0-30 the object's handle, bit 31 under reclaim; the owner word sits in
 * @owner, since the object fills its page.
 */
struct zspage {
	char *base; /* first byte of the run */
	uint32_t lru_prev; /* class LRU, towards the head (newer) */
	uint32_t lru_next; /* towards the tail (older) */
	union {
		struct {
			uint32_t prev, next; /* fullness group list */
		} grp;
		uint64_t owner; /* huge class */
	};
	uint32_t stamp; /* pool clock at the last malloc into it */
	uint32_t state;
};

_Static_assert(sizeof(struct zspage) == 32, "zspage entries are 32 bytes");

#define ZS_ST_INUSE_MASK  0x1fffu
#define ZS_ST_FREE_SHIFT  13
#define ZS_ST_RECLAIM	  (UINT32_C(1) << 31)
#define ZS_ST_HANDLE_MASK (ZS_ST_RECLAIM - 1)

_Static_assert(ZS_MAX_OBJS <= ZS_ST_INUSE_MASK, "13-bit counts");
_Static_assert(ZS_ST_FREE_SHIFT + 13 <= 30, "state fields do not overlap");
_Static_assert(ZS_MAX_HANDLES <= ZS_ST_HANDLE_MASK, "state holds handle");

static inline uint32_t zs_st_inuse(uint32_t st)
{
	return st & ZS_ST_INUSE_MASK;
}

static inline uint32_t zs_st_free(uint32_t st)
{
	return (st >> ZS_ST_FREE_SHIFT) & ZS_ST_INUSE_MASK;
}

static inline uint32_t zs_st_make(uint32_t st, uint32_t inuse, uint32_t free)
{
	return (st & ZS_ST_RECLAIM) | inuse | free << ZS_ST_FREE_SHIFT;
}

/*
 * A size class: every object whose slot size maps here. Layout fields are
 * fixed at pool creation; the rest is under @lock.
 */
struct zs_class {
	pthread_mutex_t lock;
	uint32_t group[ZS_NR_GROUPS]; /* partial zspages: list heads */
	uint32_t lru_head, lru_tail; /* zspages not under reclaim */
	uint64_t nr_zspages; /* all of the class's zspages */
	uint64_t nr_objs; /* objects allocated (dead ones too) */
	uint32_t nmag;
	uint32_t mag[ZS_MAG_SIZE]; /* free handle-table ids at hand */

	uint32_t slot; /* bytes a slot (header included) */
	uint32_t objs; /* slots a zspage */
	uint32_t pages; /* pages a zspage */
	uint32_t index; /* in pool->classes */
	bool huge; /* one object a page, no slot header */
} __attribute__((aligned(64)));

struct zs_pool {
	struct zpool zpool; /* first: zpool.c sees this */
	struct pagesrc *ps;
	bool shrinkable;
	bool huge_direct; /* huge objects have no zspage structure */
	uint32_t hdr_size; /* slot header: 0, or 12 with owner words */
	uint32_t nr_classes;
	struct zs_class *classes;
	struct zs_class *huge; /* the huge class */
	/* slot size index ((slot / ZS_ALIGN) - 1) -> class index */
	uint8_t slot_class[ZS_NR_SLOTS];

	struct zs_table handles; /* uint64_t entries */
	struct zs_table zspages; /* struct zspage entries */

	/* Free huge pages (direct) or huge zspage ids, under the huge lock. */
	uint32_t nhuge_cache;
	uintptr_t huge_cache[ZS_HUGE_CACHE];
	uintptr_t huge_fresh; /* the last one taken new from the page source */

	uint64_t meta_bytes; /* malloc'd metadata, atomic */
	uint32_t clock; /* malloc counter for LRU stamps, atomic */
	uint64_t compacted; /* pages freed by compaction, atomic */
	pthread_mutex_t reclaim_lock; /* one shrink or compact at a time */
};

static inline struct zs_pool *zs_pool_of(const struct zpool *zp)
{
	return container_of(zp, struct zs_pool, zpool);
}

static inline uint64_t *zs_hentry(const struct zs_pool *pool,
				  unsigned long handle)
{
	return zs_table_entry(&pool->handles, zs_id_of(handle));
}

static inline struct zspage *zs_zspage(const struct zs_pool *pool, uint32_t id)
{
	return zs_table_entry(&pool->zspages, id);
}

static inline char *zs_slot(const struct zs_class *c, const struct zspage *zs,
			    uint32_t obj)
{
	return zs->base + (size_t)obj * c->slot;
}

/* The header word of slot @obj (normal classes). */
static inline uint32_t zs_hdr_read(const struct zs_class *c,
				   const struct zspage *zs, uint32_t obj)
{
	uint32_t h;

	memcpy(&h, zs_slot(c, zs, obj), sizeof(h));
	return h;
}

/*
 * Fullness group of a zspage with @inuse objects: ZS_GROUP_EMPTY,
 * ZS_GROUP_FULL, or 0..ZS_NR_GROUPS-1 by quarter (partial ones).
 */
static inline unsigned int zs_group_of(const struct zs_class *c, uint32_t inuse)
{
	if (inuse == 0)
		return ZS_GROUP_EMPTY;
	if (inuse >= c->objs)
		return ZS_GROUP_FULL;
	return inuse * ZS_NR_GROUPS / c->objs;
}

/* The class of an object of @size (1..ZPOOL_MAX_SIZE) bytes. */
static inline struct zs_class *zs_class_for(struct zs_pool *pool, size_t size)
{
	size_t need = size + pool->hdr_size;

	if (need > ZS_PAGE_SIZE)
		return pool->huge;
	return &pool->classes[pool->slot_class[(need + ZS_ALIGN - 1) / ZS_ALIGN -
					       1]];
}

/* zsmalloc_class.c: classes and zspages. Class lock held unless said. */
int zs_build_classes(struct zs_pool *pool); /* at creation */
void zs_group_add(struct zs_pool *pool, struct zs_class *c, uint32_t id);
void zs_group_del(struct zs_pool *pool, struct zs_class *c, uint32_t id);
void zs_lru_add(struct zs_pool *pool, struct zs_class *c, uint32_t id,
		bool head);
void zs_lru_del(struct zs_pool *pool, struct zs_class *c, uint32_t id);
uint32_t zs_slot_take(struct zs_class *c, struct zspage *zs);
void zs_slot_give(struct zs_class *c, struct zspage *zs, uint32_t obj);
unsigned int zs_release_obj(struct zs_pool *pool, struct zs_class *c,
			    uint32_t id, uint32_t obj, unsigned long handle);
unsigned int zs_mag_flush(struct zs_pool *pool, struct zs_class *c, uint32_t n);
unsigned long zs_handle_get(struct zs_pool *pool, struct zs_class *c);
unsigned int zs_handle_put(struct zs_pool *pool, struct zs_class *c,
			   unsigned long handle);
/* No lock held: a new empty zspage of @c. Return: its id, or 0. */
uint32_t zs_zspage_new(struct zs_pool *pool, struct zs_class *c);
/* No lock held: gives a zspage (off every list) back. Return: pages. */
unsigned int zs_zspage_free(struct zs_pool *pool, struct zs_class *c,
			    uint32_t id);
/* The cache of free huge pages: huge class lock held, but the last two. */
char *zs_huge_page(const struct zs_pool *pool, uintptr_t v);
bool zs_huge_keep(struct zs_pool *pool, uintptr_t v);
unsigned int zs_huge_take(struct zs_pool *pool, uintptr_t *out);
unsigned int zs_huge_release(struct zs_pool *pool, const uintptr_t *v,
			     unsigned int n);
unsigned int zs_huge_flush(struct zs_pool *pool);

/* zsmalloc_reclaim.c */
long zs_compact(struct zpool *zp);
int zs_shrink(struct zpool *zp, size_t size, size_t *released);

/* For the unit tests (tests/unit/test_alloc_zsmalloc.c). */
struct zs_class_info {
	uint32_t slot, pages, objs;
	bool huge;
	uint64_t nr_zspages, nr_objs;
};
unsigned int zs_test_nr_classes(struct zpool *zp);
void zs_test_class_info(struct zpool *zp, unsigned int index,
			struct zs_class_info *info);
/* Return: the class index an object of @size bytes goes to. */
unsigned int zs_test_size_class(struct zpool *zp, size_t size);
/* Return: the zspage id holding @handle (0 for a direct huge object). */
uint32_t zs_test_handle_zspage(struct zpool *zp, unsigned long handle);
/* Return: the largest object size that is not huge in @zp. */
size_t zs_test_huge_threshold(struct zpool *zp);

#endif /* ZRAMD_ZSMALLOC_INT_H */
