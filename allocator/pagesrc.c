/* SPDX-License-Identifier: MIT */
/*
 * pagesrc.c - page runs from 2 MiB anonymous arenas, given back to the OS
 *
 * Why not mmap() every run: a pool of a few GiB would need hundreds of
 * thousands of mappings, far past vm.max_map_count (65530). Why not malloc():
 * its free memory is not reliably returned, and RSS must fall when data is
 * trimmed.
 *
 *   arena table (sorted by address, binary searched on free)
 *   +---------+---------+-----
 *   | arena 0 | arena 1 | ...      each: 2 MiB aligned mapping,
 *   +----+----+---------+-----     512-bit bitmap of pages in use,
 *        |                         count of free pages
 *        v
 *   [##..###.......###########.....]  first fit for a run of n pages
 *
 * Arenas are 2 MiB aligned and marked MADV_NOHUGEPAGE, so a transparent
 * huge page never makes one touched page cost 2 MiB of RSS, and freeing a
 * 4 KiB run really releases it. Fresh and released pages read as zero
 * (in locked memory, where MADV_DONTNEED is refused, release_run() zeroes
 * them itself: zsmalloc relies on it).
 *
 * The release cache. madvise(MADV_DONTNEED) is not cheap: it shoots down
 * the TLB of every CPU, and the next use of the page faults and zeroes it
 * again. Measured on a 2-vCPU VM, about 40 us a call; zbud, which frees a
 * page on nearly every overwrite, spent 56% of its CPU there and wrote at
 * an eighth of the rate it reached without it. So a released run first
 * goes on a per-length stack (linked through the run itself) and the next
 * allocation of that length takes it back with a memset instead of three
 * kernel entries. The cache holds at most PAGESRC_CACHE_MAX pages and at
 * most 1/PAGESRC_CACHE_FRACTION of the pages handed out, so a tiny pool
 * caches nothing and a large one keeps its RSS within 0.4% of its use.
 * Cached pages are memory held from the OS and are counted as such in
 * pagesrc_bytes_used(); pagesrc_flush() gives them all back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pagesrc.h"

#define ARENA_SIZE (2u << 20)
#define ARENA_PAGES (ARENA_SIZE / PAGESRC_PAGE_SIZE)
#define ARENA_WORDS (ARENA_PAGES / 64)
#define PAGESRC_CACHE_MAX 256u	  /* pages: 1 MiB */
#define PAGESRC_CACHE_FRACTION 256u /* of the pages handed out */

_Static_assert(ARENA_PAGES % 64 == 0, "bitmap words must cover the arena");
_Static_assert(PAGESRC_MAX_RUN <= 64, "runs are found within two words");

struct arena {
	char *base;
	unsigned int nfree;
	uint64_t used[ARENA_WORDS];	/* bit set: page handed out */
};

/* A released run in the cache: its own first bytes link the stack. */
struct cached_run {
	struct cached_run *next;
};

struct pagesrc {
	pthread_mutex_t lock;	/* protects everything below but bytes_used */
	struct arena **arenas;	/* sorted by base address */
	size_t narenas, cap;
	size_t hint;		/* an arena that last had room */
	uint64_t handed_pages;	/* in runs handed out */
	uint64_t cached_pages;	/* in runs on the stacks below */
	struct cached_run *cache[PAGESRC_MAX_RUN + 1];	/* by run length */
	uint64_t bytes_used;	/* atomic: (handed + cached) pages, in bytes */
};

struct pagesrc *pagesrc_create(void)
{
	struct pagesrc *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	pthread_mutex_init(&ps->lock, NULL);
	return ps;
}

void pagesrc_destroy(struct pagesrc *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->narenas; i++) {
		munmap(ps->arenas[i]->base, ARENA_SIZE);
		free(ps->arenas[i]);
	}
	free(ps->arenas);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

uint64_t pagesrc_bytes_used(const struct pagesrc *ps)
{
	return __atomic_load_n(&ps->bytes_used, __ATOMIC_RELAXED);
}

static bool page_used(const struct arena *a, unsigned int i)
{
	return a->used[i / 64] >> (i % 64) & 1;
}

static void mark(struct arena *a, unsigned int first, unsigned int n,
		 bool used)
{
	for (unsigned int i = first; i < first + n; i++) {
		if (used)
			a->used[i / 64] |= UINT64_C(1) << (i % 64);
		else
			a->used[i / 64] &= ~(UINT64_C(1) << (i % 64));
	}
	if (used)
		a->nfree -= n;
	else
		a->nfree += n;
}

/* First fit of @n free pages in @a; returns the first page or -1. */
static int find_run(const struct arena *a, unsigned int n)
{
	unsigned int run = 0;

	for (unsigned int i = 0; i < ARENA_PAGES; i++) {
		if (run == 0 && i % 64 == 0 && a->used[i / 64] == UINT64_MAX) {
			i += 63;	/* skip a full word */
			continue;
		}
		if (page_used(a, i)) {
			run = 0;
			continue;
		}
		if (++run == n)
			return (int)(i + 1 - n);
	}
	return -1;
}

/* Maps a new 2 MiB aligned arena and inserts it in order. Lock held. */
static struct arena *new_arena(struct pagesrc *ps)
{
	struct arena *a;
	char *raw, *base;
	size_t pos;

	if (ps->narenas == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		struct arena **t = realloc(ps->arenas, cap * sizeof(*t));

		if (!t)
			return NULL;
		ps->arenas = t;
		ps->cap = cap;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	raw = mmap(NULL, 2 * ARENA_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	base = (char *)(((uintptr_t)raw + ARENA_SIZE - 1) &
			~(uintptr_t)(ARENA_SIZE - 1));
	if (base > raw)
		munmap(raw, (size_t)(base - raw));
	munmap(base + ARENA_SIZE, (size_t)(raw + ARENA_SIZE - base));
	madvise(base, ARENA_SIZE, MADV_NOHUGEPAGE);
	a->base = base;
	a->nfree = ARENA_PAGES;

	for (pos = ps->narenas; pos > 0 && ps->arenas[pos - 1]->base > base;
	     pos--)
		ps->arenas[pos] = ps->arenas[pos - 1];
	ps->arenas[pos] = a;
	ps->narenas++;
	ps->hint = pos;
	return a;
}

void *pagesrc_alloc(struct pagesrc *ps, unsigned int npages)
{
	struct arena *a = NULL;
	void *addr = NULL;
	int first = -1;

	if (npages == 0 || npages > PAGESRC_MAX_RUN) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&ps->lock);
	if (ps->cache[npages]) {
		struct cached_run *run = ps->cache[npages];

		ps->cache[npages] = run->next;
		ps->cached_pages -= npages;
		ps->handed_pages += npages;
		pthread_mutex_unlock(&ps->lock);
		memset(run, 0, (size_t)npages * PAGESRC_PAGE_SIZE);
		return run;
	}
	for (size_t k = 0; k < ps->narenas; k++) {
		size_t i = (ps->hint + k) % ps->narenas;

		if (ps->arenas[i]->nfree < npages)
			continue;
		first = find_run(ps->arenas[i], npages);
		if (first >= 0) {
			a = ps->arenas[i];
			ps->hint = i;
			break;
		}
	}
	if (!a) {
		a = new_arena(ps);
		first = 0;
	}
	if (a) {
		mark(a, (unsigned int)first, npages, true);
		addr = a->base + (size_t)first * PAGESRC_PAGE_SIZE;
		ps->handed_pages += npages;
		__atomic_add_fetch(&ps->bytes_used,
				   (uint64_t)npages * PAGESRC_PAGE_SIZE,
				   __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&ps->lock);
	return addr;
}

/* The index of the arena holding @addr. Lock held. */
static size_t arena_index(const struct pagesrc *ps, const char *addr)
{
	size_t lo = 0, hi = ps->narenas;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (ps->arenas[mid]->base <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Gives a run back to the OS and to its arena; the run is in no list.
 * Called without the lock.
 */
static void release_run(struct pagesrc *ps, void *addr, unsigned int npages)
{
	struct arena *a;
	size_t i;

	/*
	 * Release the memory while the run is still ours: once its bits are
	 * clear another thread may take it and write to it.
	 */
	if (madvise(addr, (size_t)npages * PAGESRC_PAGE_SIZE, MADV_DONTNEED))
		/*
		 * Locked memory (mlockall(), as nbdkit --swap or the plugin's
		 * mlock=onfault do): the kernel refuses MADV_DONTNEED on a
		 * VM_LOCKED mapping with EINVAL, and the run would come back
		 * with its old bytes. It stays resident, so zero it here.
		 */
		memset(addr, 0, (size_t)npages * PAGESRC_PAGE_SIZE);

	pthread_mutex_lock(&ps->lock);
	i = arena_index(ps, addr);
	a = ps->arenas[i];
	mark(a, (unsigned int)(((char *)addr - a->base) / PAGESRC_PAGE_SIZE),
	     npages, false);
	__atomic_sub_fetch(&ps->bytes_used, (uint64_t)npages * PAGESRC_PAGE_SIZE,
			   __ATOMIC_RELAXED);
	/* An empty arena goes back, unless it is the last one with room. */
	if (a->nfree == ARENA_PAGES && ps->narenas > 1) {
		munmap(a->base, ARENA_SIZE);
		free(a);
		memmove(&ps->arenas[i], &ps->arenas[i + 1],
			(ps->narenas - i - 1) * sizeof(*ps->arenas));
		ps->narenas--;
		ps->hint = 0;
	}
	pthread_mutex_unlock(&ps->lock);
}

/* The cache's bound for the pages now handed out. Lock held. */
static uint64_t cache_room(const struct pagesrc *ps)
{
	uint64_t room = ps->handed_pages / PAGESRC_CACHE_FRACTION;

	return room < PAGESRC_CACHE_MAX ? room : PAGESRC_CACHE_MAX;
}

void pagesrc_free(struct pagesrc *ps, void *addr, unsigned int npages)
{
	struct cached_run *excess = NULL, *run;
	unsigned int excess_len = 0;

	if (!addr)
		return;
	pthread_mutex_lock(&ps->lock);
	ps->handed_pages -= npages;
	if (ps->cached_pages + npages <= cache_room(ps)) {
		run = addr;
		run->next = ps->cache[npages];
		ps->cache[npages] = run;
		ps->cached_pages += npages;
		addr = NULL;
	} else if (ps->cached_pages > cache_room(ps)) {
		/*
		 * Use has fallen since the cache filled: give back one cached
		 * run as well, so the cache shrinks with the pool and is empty
		 * once nothing is handed out.
		 */
		for (unsigned int n = PAGESRC_MAX_RUN; n > 0 && !excess; n--) {
			if (ps->cache[n]) {
				excess = ps->cache[n];
				excess_len = n;
				ps->cache[n] = excess->next;
				ps->cached_pages -= n;
			}
		}
	}
	pthread_mutex_unlock(&ps->lock);
	if (addr)
		release_run(ps, addr, npages);
	if (excess)
		release_run(ps, excess, excess_len);
}

void pagesrc_flush(struct pagesrc *ps)
{
	for (unsigned int n = 1; n <= PAGESRC_MAX_RUN; n++) {
		for (;;) {
			struct cached_run *run;

			pthread_mutex_lock(&ps->lock);
			run = ps->cache[n];
			if (run) {
				ps->cache[n] = run->next;
				ps->cached_pages -= n;
			}
			pthread_mutex_unlock(&ps->lock);
			if (!run)
				break;
			release_run(ps, run, n);
		}
	}
}
