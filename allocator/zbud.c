/* SPDX-License-Identifier: MIT */
/*
 * zbud.c - the "zbud" zpool backend: at most two objects ("buddies") a page
 *
 * What it is. zbud stores compressed objects two to a 4 KiB page. It gives
 * up density (never better than 2:1, however well the data compressed) for
 * a layout so simple that its behaviour is easy to predict: a page holds
 * zero, one or two objects; freeing both gives the page back to the
 * operating system at once; and evicting a page is evicting its two
 * objects, nothing more. zsmalloc is the dense backend; zbud is the one to
 * pick when predictability matters more than memory.
 *
 * Layout. A page is divided into ZBUD_NCHUNKS chunks of ZBUD_CHUNK_SIZE
 * (64) bytes, and an object is rounded up to whole chunks. The "first"
 * buddy starts at the beginning of the page, the "last" buddy ends at its
 * end, and the free space, if any, lies between them:
 *
 *   page (4 KiB, from pagesrc)           header (out of line, in a slab)
 *   +--------+------------+------+       +------------------------------+
 *   | first  |   free     | last |  <--  | page, first/last chunks,     |
 *   +--------+------------+------+       | last_start, owner words,     |
 *   0        ^ first_chunks      ^ 4096  | list links, under_reclaim    |
 *                                        +------------------------------+
 *
 * Unlike the kernel's zbud, the per-page header does not live in the page:
 * in userspace there is no struct page to hang state on, and keeping the
 * header in line would cost a chunk of every page and forbid objects of
 * ZPOOL_MAX_SIZE. Out of line, an incompressible 4 KiB sector takes one
 * page, exactly.
 *
 * Headers are carved from slab pages that come from the same page source
 * as the data pages: a slab page holds a small slab descriptor and then
 * 63 headers (84 in a pool without owner words), and goes back to the page
 * source as soon as its last header is freed. Headers from malloc() sat in
 * glibc's fast bins after a mass free and kept the process RSS up (by 3.8
 * MiB after 200 MiB of objects were freed, in test_zpool_core's RSS test);
 * this way every byte the pool holds is a page it can give back, and
 * zpool_get_total_size() is simply the page source's count plus the pool
 * structure. A header costs 64 bytes a page (48 without owner words), 1.6%.
 *
 * Lists. A page with one buddy and some free chunks sits on unbuddied[n],
 * where n is its count of free chunks; a page with two buddies, or with one
 * buddy that fills it, sits on the "buddied" list. Allocation of c chunks
 * takes the first page from unbuddied[c], unbuddied[c + 1], ... (best fit),
 * or a new page. Every page is also on the LRU list, and a page moves to
 * its head each time an object is allocated into it; zpool_shrink() takes
 * pages from the tail, so the pages least recently allocated into are
 * evicted first.
 *
 * Handles. A handle is the address of the page's header with the buddy in
 * its two low bits: ZBUD_FIRST (1) or ZBUD_LAST (2). Headers are 8-byte
 * aligned within their slab page, so the bits are free and a handle is
 * never 0. Mapping reads the header (page, last_start) and returns
 * a pointer into the page: objects never move and are never copied.
 *
 * Eviction. zpool_shrink() takes the LRU tail page off every list and marks
 * it under reclaim, then, with no pool lock held, hands each of its buddies
 * to the pool's evict callback. While a page is under reclaim nothing is
 * allocated into it, and zpool_free() only clears the buddy's chunk count:
 * the bytes stay where they are, so a callback may go on reading an object
 * that its owner freed under it (the eviction race of zpool.h). After the
 * callbacks, a page with no buddies left is given back; otherwise (the
 * callback refused or did not free) it returns to the lists, at the head of
 * the LRU, so the next shrink tries other pages first.
 *
 * Known limits. One mutex guards all lists: zbud is the simple backend, and
 * the hot paths (map and unmap) take no lock at all. Density is at most
 * two objects a page. Pages are never compacted (zpool_compact() reports
 * -EOPNOTSUPP).
 *
 * Callers map an object, use it briefly and unmap it; for zbud the mapping
 * is a plain pointer and unmap does nothing, but callers must not rely on
 * that, since other backends copy.
 *
 * Lock ordering:
 *
 *   zbud_pool.shrink_lock         (one zpool_shrink() at a time; held across
 *     -> zbud_pool.lock            the evict callbacks, which is why they
 *                                  must not call zpool_shrink())
 *   zbud_pool.slab_lock           (a leaf: never held with the pool lock)
 *     -> pagesrc lock
 *
 * Pages and headers are taken and given back with the pool lock dropped,
 * so no system call (mmap, madvise) ever runs under it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pagesrc.h"
#include "zpool_backend.h"

/*
 * Under AddressSanitizer, memory that is no object's (free chunks, the
 * slack after an object, free header slots) is poisoned, so a stale handle
 * or an overrun is reported where it happens. Pages are unpoisoned before
 * they go back to the page source, which unmaps without unpoisoning.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ZBUD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZBUD_ASAN 1
#endif
#endif
#ifdef ZBUD_ASAN
#include <sanitizer/asan_interface.h>
#define zbud_poison(addr, len) ASAN_POISON_MEMORY_REGION(addr, len)
#define zbud_unpoison(addr, len) ASAN_UNPOISON_MEMORY_REGION(addr, len)
#else
#define zbud_poison(addr, len) ((void)(addr), (void)(len))
#define zbud_unpoison(addr, len) ((void)(addr), (void)(len))
#endif

#define ZBUD_PAGE_SIZE PAGESRC_PAGE_SIZE
#define ZBUD_CHUNK_SHIFT 6
#define ZBUD_CHUNK_SIZE (1u << ZBUD_CHUNK_SHIFT)
#define ZBUD_NCHUNKS (ZBUD_PAGE_SIZE / ZBUD_CHUNK_SIZE)

/* Which buddy of a page a handle names: its two low bits. */
#define ZBUD_FIRST 1ul
#define ZBUD_LAST 2ul
#define ZBUD_BUDDY_MASK 3ul

_Static_assert(ZBUD_PAGE_SIZE == ZPOOL_PAGE_SIZE, "one page per zbud page");
_Static_assert(ZPOOL_MAX_SIZE <= ZBUD_PAGE_SIZE,
	       "the largest object must fit in a page");
_Static_assert(ZBUD_NCHUNKS * ZBUD_CHUNK_SIZE == ZBUD_PAGE_SIZE,
	       "chunks must tile the page");
_Static_assert(ZBUD_NCHUNKS <= UINT8_MAX, "chunk counts are kept in a byte");
_Static_assert(sizeof(unsigned long) >= sizeof(void *),
	       "a handle holds a header address");

/* A doubly linked list node; an unlinked node points to itself. */
struct zbud_link {
	struct zbud_link *prev, *next;
};

/**
 * struct zbud_header - the out-of-line state of one page
 * @page:          the page, from pagesrc
 * @buddy:         link in unbuddied[free chunks] or in buddied
 * @lru:           link in the pool's LRU list
 * @first_chunks:  chunks of the first buddy; 0 when it is free
 * @last_chunks:   chunks of the last buddy; 0 when it is free
 * @last_start:    chunk where the last buddy begins. Written only when the
 *                 last buddy is allocated, so zbud_map() may read it with
 *                 no lock even while the buddy is being freed.
 * @under_reclaim: zpool_shrink() is evicting the page: it is on no list
 * @owner:         owner words of the first and last buddy, present only in
 *                 a shrinkable pool
 *
 * All members but @page and @last_start (set before a handle into the page
 * exists) are protected by the pool lock.
 */
struct zbud_header {
	char *page;
	struct zbud_link buddy;
	struct zbud_link lru;
	uint8_t first_chunks;
	uint8_t last_chunks;
	uint8_t last_start;
	bool under_reclaim;
	uint64_t owner[];
};

_Static_assert(_Alignof(struct zbud_header) > ZBUD_BUDDY_MASK,
	       "header addresses leave the buddy bits free");
_Static_assert(sizeof(struct zbud_header) % _Alignof(struct zbud_header) == 0,
	       "headers packed in a slab stay aligned");

/**
 * struct zbud_slab - the descriptor at the start of a slab page of headers
 * @link:   link in the pool's list of slabs with free headers
 * @free:   the first free header; free headers are chained through their
 *          first word
 * @nfree:  free headers in this slab
 *
 * Protected by the pool's slab lock. The rest of the page is headers, each
 * pool->hdr_size bytes, from offset pool->hdr_size.
 */
struct zbud_slab {
	struct zbud_link link;
	void *free;
	unsigned int nfree;
};

_Static_assert(sizeof(struct zbud_slab) <= sizeof(struct zbud_header),
	       "the descriptor fits in the first header slot");

/**
 * struct zbud_pool - a zbud pool
 * @zpool:       the generic pool; first, for container_of()
 * @lock:        protects the lists and every header's chunk counts, owner
 *               words and @under_reclaim
 * @shrink_lock: serializes zpool_shrink(); taken before @lock
 * @slab_lock:   protects @slabs and every slab descriptor
 * @ps:          the pool's own page source, for data and slab pages
 * @shrinkable:  owner words are kept (the pool has an evict callback)
 * @hdr_size:    bytes of one header, owner words included
 * @hdr_per_slab: headers in one slab page
 * @nr_pages:    data pages held (atomic; bounds the work of a shrink)
 * @slabs:       slab pages with at least one free header
 * @unbuddied:   pages with one buddy, by count of free chunks (1..63)
 * @buddied:     pages with no room left
 * @lru:         every page not under reclaim; head = most recently
 *               allocated into
 */
struct zbud_pool {
	struct zpool zpool;
	pthread_mutex_t lock;
	pthread_mutex_t shrink_lock;
	pthread_mutex_t slab_lock;
	struct pagesrc *ps;
	bool shrinkable;
	size_t hdr_size;
	unsigned int hdr_per_slab;
	uint64_t nr_pages;
	struct zbud_link slabs;
	struct zbud_link unbuddied[ZBUD_NCHUNKS];
	struct zbud_link buddied;
	struct zbud_link lru;
};

static void link_init(struct zbud_link *l)
{
	l->prev = l->next = l;
}

static bool list_empty(const struct zbud_link *head)
{
	return head->next == head;
}

static void link_del(struct zbud_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	link_init(l);
}

static void list_add_head(struct zbud_link *head, struct zbud_link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

#define hdr_of(link, member) container_of(link, struct zbud_header, member)

static struct zbud_pool *to_zbud(const struct zpool *zpool)
{
	return container_of(zpool, struct zbud_pool, zpool);
}

static unsigned int size_to_chunks(size_t size)
{
	return (unsigned int)((size + ZBUD_CHUNK_SIZE - 1) >> ZBUD_CHUNK_SHIFT);
}

static unsigned int free_chunks(const struct zbud_header *zh)
{
	return ZBUD_NCHUNKS - zh->first_chunks - zh->last_chunks;
}

static unsigned long encode_handle(struct zbud_header *zh, unsigned long bud)
{
	return (unsigned long)(uintptr_t)zh | bud;
}

static struct zbud_header *handle_to_header(unsigned long handle)
{
	return (struct zbud_header *)(uintptr_t)(handle & ~ZBUD_BUDDY_MASK);
}

/*
 * Takes a zeroed header from a slab with room, or from a new slab page.
 * Takes the slab lock. Return: the header, or NULL if no page could be had.
 */
static struct zbud_header *alloc_header(struct zbud_pool *pool)
{
	struct zbud_slab *slab;
	void **hdr;

	pthread_mutex_lock(&pool->slab_lock);
	if (list_empty(&pool->slabs)) {
		char *page = pagesrc_alloc(pool->ps, 1);

		if (!page) {
			pthread_mutex_unlock(&pool->slab_lock);
			return NULL;
		}
		slab = (struct zbud_slab *)page;
		link_init(&slab->link);
		slab->free = NULL;
		/* Chain the headers, lowest address first. */
		for (unsigned int i = pool->hdr_per_slab; i > 0; i--) {
			hdr = (void **)(page + (size_t)i * pool->hdr_size);
			*hdr = slab->free;
			slab->free = hdr;
			zbud_poison(hdr, pool->hdr_size);
		}
		slab->nfree = pool->hdr_per_slab;
		list_add_head(&pool->slabs, &slab->link);
	}
	slab = container_of(pool->slabs.next, struct zbud_slab, link);
	hdr = slab->free;
	zbud_unpoison(hdr, pool->hdr_size);
	slab->free = *hdr;
	if (--slab->nfree == 0)
		link_del(&slab->link);
	pthread_mutex_unlock(&pool->slab_lock);

	memset(hdr, 0, pool->hdr_size);
	return (struct zbud_header *)hdr;
}

/*
 * Returns a header to its slab and an empty slab page to the page source.
 * Takes the slab lock. Return: the bytes given back (0 or a page).
 */
static uint64_t free_header(struct zbud_pool *pool, struct zbud_header *zh)
{
	struct zbud_slab *slab = (struct zbud_slab *)(uintptr_t)(
		(uintptr_t)zh & ~(uintptr_t)(ZBUD_PAGE_SIZE - 1));
	void **hdr = (void **)zh;

	pthread_mutex_lock(&pool->slab_lock);
	*hdr = slab->free;
	slab->free = hdr;
	zbud_poison(hdr, pool->hdr_size);
	if (slab->nfree++ == 0)
		list_add_head(&pool->slabs, &slab->link);
	if (slab->nfree < pool->hdr_per_slab) {
		pthread_mutex_unlock(&pool->slab_lock);
		return 0;
	}
	link_del(&slab->link);
	pthread_mutex_unlock(&pool->slab_lock);
	zbud_unpoison(slab, ZBUD_PAGE_SIZE);
	pagesrc_free(pool->ps, slab, 1);
	return ZBUD_PAGE_SIZE;
}

/* Poisons the free chunks between the buddies (ASan only). Lock held. */
static void poison_gap(const struct zbud_header *zh)
{
	zbud_poison(zh->page + (size_t)zh->first_chunks * ZBUD_CHUNK_SIZE,
		    (size_t)free_chunks(zh) * ZBUD_CHUNK_SIZE);
}

/*
 * Puts a page that is not under reclaim and holds at least one buddy on
 * the list its free space calls for. Pool lock held.
 */
static void file_page(struct zbud_pool *pool, struct zbud_header *zh)
{
	bool full = (zh->first_chunks && zh->last_chunks) ||
		    free_chunks(zh) == 0;

	list_add_head(full ? &pool->buddied : &pool->unbuddied[free_chunks(zh)],
		      &zh->buddy);
}

/*
 * Gives back a page that is on no list and holds no buddy, and its header.
 * No lock held. Return: the bytes given back (the page, perhaps a slab).
 */
static uint64_t release_page(struct zbud_pool *pool, struct zbud_header *zh)
{
	zbud_unpoison(zh->page, ZBUD_PAGE_SIZE);
	pagesrc_free(pool->ps, zh->page, 1);
	__atomic_sub_fetch(&pool->nr_pages, 1, __ATOMIC_RELAXED);
	return ZBUD_PAGE_SIZE + free_header(pool, zh);
}

/**
 * zbud_create() - create a zbud pool
 * @shrinkable: keep owner words for the evict callback
 *
 * Return: the embedded struct zpool, or NULL with errno ENOMEM.
 */
static struct zpool *zbud_create(bool shrinkable)
{
	struct zbud_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->ps = pagesrc_create();
	if (!pool->ps) {
		free(pool);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_mutex_init(&pool->shrink_lock, NULL);
	pthread_mutex_init(&pool->slab_lock, NULL);
	pool->shrinkable = shrinkable;
	pool->hdr_size = sizeof(struct zbud_header) +
			 (shrinkable ? 2 * sizeof(uint64_t) : 0);
	pool->hdr_per_slab = ZBUD_PAGE_SIZE / pool->hdr_size - 1;
	link_init(&pool->slabs);
	for (unsigned int i = 0; i < ZBUD_NCHUNKS; i++)
		link_init(&pool->unbuddied[i]);
	link_init(&pool->buddied);
	link_init(&pool->lru);
	return &pool->zpool;
}

/**
 * zbud_destroy() - free a pool, its pages and its headers
 * @zpool: the pool; no other thread may use it
 *
 * Data and slab pages all come from the pool's page source, so destroying
 * that frees everything at once.
 */
static void zbud_destroy(struct zpool *zpool)
{
	struct zbud_pool *pool = to_zbud(zpool);

#ifdef ZBUD_ASAN
	/*
	 * Every page in use is a data page on the LRU list or a slab page
	 * holding one of their headers.
	 */
	for (struct zbud_link *l = pool->lru.next; l != &pool->lru;
	     l = l->next) {
		struct zbud_header *zh = hdr_of(l, lru);

		zbud_unpoison(zh->page, ZBUD_PAGE_SIZE);
		zbud_unpoison((void *)((uintptr_t)zh &
				       ~(uintptr_t)(ZBUD_PAGE_SIZE - 1)),
			      ZBUD_PAGE_SIZE);
	}
#endif
	pagesrc_destroy(pool->ps);
	pthread_mutex_destroy(&pool->slab_lock);
	pthread_mutex_destroy(&pool->shrink_lock);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

/* Takes the best-fitting page with room for @chunks, or NULL. Lock held. */
static struct zbud_header *take_unbuddied(struct zbud_pool *pool,
					  unsigned int chunks)
{
	for (unsigned int i = chunks; i < ZBUD_NCHUNKS; i++) {
		if (!list_empty(&pool->unbuddied[i])) {
			struct zbud_header *zh =
				hdr_of(pool->unbuddied[i].next, buddy);

			link_del(&zh->buddy);
			return zh;
		}
	}
	return NULL;
}

/**
 * zbud_malloc() - allocate an object in a page with room, or a new page
 * @zpool:  the pool
 * @size:   1..ZPOOL_MAX_SIZE bytes (checked by zpool.c)
 * @owner:  kept for the evict callback if the pool is shrinkable
 * @handle: set to the new handle
 *
 * Takes the pool lock; a new page and its header are allocated outside it.
 *
 * Return: 0, or -ENOMEM if no page or header could be had.
 */
static int zbud_malloc(struct zpool *zpool, size_t size, uint64_t owner,
		       unsigned long *handle)
{
	struct zbud_pool *pool = to_zbud(zpool);
	unsigned int chunks = size_to_chunks(size);
	struct zbud_header *zh;
	unsigned long bud;

	pthread_mutex_lock(&pool->lock);
	zh = take_unbuddied(pool, chunks);
	if (!zh) {
		pthread_mutex_unlock(&pool->lock);

		zh = alloc_header(pool);
		if (!zh)
			return -ENOMEM;
		zh->page = pagesrc_alloc(pool->ps, 1);
		if (!zh->page) {
			free_header(pool, zh);
			return -ENOMEM;
		}
		zbud_poison(zh->page, ZBUD_PAGE_SIZE);
		link_init(&zh->buddy);
		link_init(&zh->lru);
		__atomic_add_fetch(&pool->nr_pages, 1, __ATOMIC_RELAXED);

		pthread_mutex_lock(&pool->lock);
	} else {
		link_del(&zh->lru);
	}

	if (zh->first_chunks == 0) {
		zh->first_chunks = (uint8_t)chunks;
		bud = ZBUD_FIRST;
		zbud_unpoison(zh->page, size);
	} else {
		zh->last_chunks = (uint8_t)chunks;
		zh->last_start = (uint8_t)(ZBUD_NCHUNKS - chunks);
		bud = ZBUD_LAST;
		zbud_unpoison(zh->page +
				      (size_t)zh->last_start * ZBUD_CHUNK_SIZE,
			      size);
	}
	if (pool->shrinkable)
		zh->owner[bud == ZBUD_LAST] = owner;
	file_page(pool, zh);
	list_add_head(&pool->lru, &zh->lru);
	pthread_mutex_unlock(&pool->lock);

	*handle = encode_handle(zh, bud);
	return 0;
}

/**
 * zbud_free() - free an object; give its page back if it was the last
 * @zpool:  the pool
 * @handle: the object
 *
 * If the page is under reclaim, only the buddy is cleared: its bytes stay
 * in place for the evict callback, and zbud_shrink() decides the page's
 * fate. Takes the pool lock; the page is given back outside it.
 */
static void zbud_free(struct zpool *zpool, unsigned long handle)
{
	struct zbud_pool *pool = to_zbud(zpool);
	struct zbud_header *zh = handle_to_header(handle);

	pthread_mutex_lock(&pool->lock);
	if ((handle & ZBUD_BUDDY_MASK) == ZBUD_FIRST)
		zh->first_chunks = 0;
	else
		zh->last_chunks = 0;
	if (zh->under_reclaim) {
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	link_del(&zh->buddy);
	if (zh->first_chunks == 0 && zh->last_chunks == 0) {
		link_del(&zh->lru);
		pthread_mutex_unlock(&pool->lock);
		release_page(pool, zh);
		return;
	}
	poison_gap(zh);
	file_page(pool, zh);
	pthread_mutex_unlock(&pool->lock);
}

/*
 * Evicts the buddies of the least recently allocated-into page. Called
 * with the shrink lock held, not the pool lock. Sets *freed to the bytes
 * given back (0 or one page's cost).
 *
 * Return: 0; -ENOENT if the pool holds no page; or the first error of the
 * evict callback.
 */
static int reclaim_page(struct zbud_pool *pool, uint64_t *freed)
{
	static const unsigned long buds[] = { ZBUD_FIRST, ZBUD_LAST };
	struct zbud_header *zh;
	int ret = 0;

	*freed = 0;
	pthread_mutex_lock(&pool->lock);
	if (list_empty(&pool->lru)) {
		pthread_mutex_unlock(&pool->lock);
		return -ENOENT;
	}
	zh = hdr_of(pool->lru.prev, lru);
	link_del(&zh->lru);
	link_del(&zh->buddy);
	zh->under_reclaim = true;
	pthread_mutex_unlock(&pool->lock);

	for (size_t i = 0; i < sizeof(buds) / sizeof(buds[0]) && !ret; i++) {
		unsigned long bud = buds[i];
		uint64_t owner;
		bool present;

		/*
		 * The owner may have freed the buddy meanwhile; since the
		 * page is on no list, a present buddy is the same object.
		 */
		pthread_mutex_lock(&pool->lock);
		present = bud == ZBUD_FIRST ? zh->first_chunks
					    : zh->last_chunks;
		owner = zh->owner[bud == ZBUD_LAST];
		pthread_mutex_unlock(&pool->lock);
		if (present)
			ret = zpool_call_evict(&pool->zpool,
					       encode_handle(zh, bud), owner);
	}

	pthread_mutex_lock(&pool->lock);
	zh->under_reclaim = false;
	if (zh->first_chunks == 0 && zh->last_chunks == 0) {
		pthread_mutex_unlock(&pool->lock);
		*freed = release_page(pool, zh);
		return ret;
	}
	/* Refused, or not freed: back on the lists, tried last next time. */
	poison_gap(zh);
	file_page(pool, zh);
	list_add_head(&pool->lru, &zh->lru);
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

/**
 * zbud_shrink() - evict whole pages, coldest first, until @size is released
 * @zpool:    the pool (shrinkable: zpool.c checked)
 * @size:     bytes to release, as zpool_get_total_size() counts them
 * @released: if not NULL, the bytes released
 *
 * Each page visited costs its two evict callbacks. A page whose objects are
 * not freed goes back to the LRU head; at most as many pages as the pool
 * held when shrink began are visited, so a callback that never frees
 * cannot make shrink loop forever. Takes the shrink lock for the whole run.
 *
 * Return: 0 if @size bytes were released; -ENOENT if the pool ran out of
 * pages (or every page was visited) first; or the first negative value an
 * evict callback returned.
 */
static int zbud_shrink(struct zpool *zpool, size_t size, size_t *released)
{
	struct zbud_pool *pool = to_zbud(zpool);
	uint64_t total = 0, visits;
	int ret = 0;

	pthread_mutex_lock(&pool->shrink_lock);
	visits = __atomic_load_n(&pool->nr_pages, __ATOMIC_RELAXED);
	while (total < size) {
		uint64_t freed;

		if (visits-- == 0) {
			ret = -ENOENT;
			break;
		}
		ret = reclaim_page(pool, &freed);
		total += freed;
		if (ret)
			break;
	}
	pthread_mutex_unlock(&pool->shrink_lock);

	if (released)
		*released = (size_t)total;
	/* A callback may fail after enough was released: that is success. */
	return total >= size ? 0 : ret;
}

/**
 * zbud_map() - the address of an object
 * @zpool:  the pool
 * @handle: the object
 * @mm:     unused: objects lie in one page and are never copied
 *
 * Takes no lock: the header's page and @last_start do not change while the
 * object exists (nor while it is being evicted).
 *
 * Return: a pointer to the object's first byte.
 */
static void *zbud_map(struct zpool *zpool, unsigned long handle,
		      enum zpool_mapmode mm)
{
	struct zbud_header *zh = handle_to_header(handle);

	(void)zpool;
	(void)mm;
	if ((handle & ZBUD_BUDDY_MASK) == ZBUD_FIRST)
		return zh->page;
	return zh->page + (size_t)zh->last_start * ZBUD_CHUNK_SIZE;
}

/**
 * zbud_unmap() - nothing to undo: zbud_map() returns a direct pointer
 * @zpool:  the pool
 * @handle: the object
 */
static void zbud_unmap(struct zpool *zpool, unsigned long handle)
{
	(void)zpool;
	(void)handle;
}

/**
 * zbud_total_size() - bytes held: data and slab pages, and the pool itself
 * @zpool: the pool
 *
 * Return: the size in bytes (a lock-free snapshot).
 */
static uint64_t zbud_total_size(const struct zpool *zpool)
{
	const struct zbud_pool *pool = to_zbud(zpool);

	return pagesrc_bytes_used(pool->ps) + sizeof(*pool);
}

static struct zpool_driver zbud_driver = {
	.type = ZPOOL_TYPE_ZBUD,
	.priority = 10,
	.create = zbud_create,
	.destroy = zbud_destroy,
	.malloc = zbud_malloc,
	.free = zbud_free,
	.shrink = zbud_shrink,
	.compact = NULL,
	.map = zbud_map,
	.unmap = zbud_unmap,
	.total_size = zbud_total_size,
};

ZPOOL_DRIVER(zbud_driver)
