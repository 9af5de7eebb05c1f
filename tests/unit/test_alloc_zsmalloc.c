/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc's own tests (the generic zpool suites cover the API): the class
 * layout, the id tables, huge objects, compaction (with and without owner
 * words, with mapped objects, and racing with malloc, free and map), the
 * LRU order of shrink across classes, and the eviction race with a second
 * thread freeing the zspage's objects while the callback reads them.
 * Under AddressSanitizer, also that an overrun and a stale mapping are
 * reported (those tests end the process, as ASan does: not with CK_FORK=no).
 *
 *   TEST_SEED=N   replay a randomized test (the seed is printed)
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZPOOL_BACKEND ZPOOL_TYPE_ZSMALLOC
#include "test_zpool_common.h"
#include "zsmalloc_int.h"

/* An evict callback that refuses: it only makes a pool keep owner words. */
static int refuse_evict(void *ctx, struct zpool *pool, unsigned long handle,
			uint64_t owner)
{
	(void)ctx, (void)pool, (void)handle, (void)owner;
	return -EBUSY;
}

/* A pool without owner words (@owners 0) or with (1). */
static struct zpool *pool_for(int owners)
{
	static const struct zpool_ops ops = {refuse_evict, NULL};

	return tz_create(owners ? &ops : NULL);
}

/* ---------------------------------------------------------------- layout */

/* The rule of zs_layout(), restated: waste + a charge per page, in double. */
static double score(uint32_t slot, uint32_t n)
{
	uint32_t k = n * ZS_PAGE_SIZE / slot;
	double waste = (double)(n * ZS_PAGE_SIZE - k * slot);

	return waste / (n * ZS_PAGE_SIZE) + (double)n / ZS_PAGE_PENALTY;
}

/*
 * Every class: slots tile its zspage as computed, its length is the best
 * by the documented rule, no two classes share a layout, and every slot
 * size maps to the class of its own layout.
 */
START_TEST(test_class_layout)
{
	struct zpool *pool = pool_for(_i);
	unsigned int nc = zs_test_nr_classes(pool), nhuge = 0;
	struct zs_class_info ci, prev = {0};
	uint64_t waste_sum = 0;

	ck_assert_uint_gt(nc, 100);
	ck_assert_uint_le(nc, ZS_NR_SLOTS);
	for (unsigned int c = 0; c < nc; c++) {
		uint32_t best = 1;

		zs_test_class_info(pool, c, &ci);
		ck_assert_uint_eq(ci.slot % ZS_ALIGN, 0);
		ck_assert_uint_gt(ci.slot, prev.slot);
		ck_assert_uint_ge(ci.pages, 1);
		ck_assert_uint_le(ci.pages, ZS_MAX_PAGES);
		ck_assert_uint_eq(ci.objs, ci.pages * ZS_PAGE_SIZE / ci.slot);
		ck_assert_uint_le(ci.objs, ZS_MAX_OBJS);
		for (uint32_t n = 2; n <= ZS_MAX_PAGES; n++)
			if (score(ci.slot, n) < score(ci.slot, best) - 1e-12)
				best = n;
		ck_assert_msg(best == ci.pages,
			      "slot %u: %u pages chosen, %u is best", ci.slot,
			      ci.pages, best);
		/* Merged: the next slot size up has another layout. */
		for (unsigned int d = 0; d < c; d++) {
			struct zs_class_info o;

			zs_test_class_info(pool, d, &o);
			ck_assert(o.pages != ci.pages || o.objs != ci.objs);
		}
		ck_assert_uint_eq(ci.huge, ci.objs == ci.pages);
		nhuge += ci.huge;
		if (!ci.huge)
			waste_sum +=
				ci.pages * ZS_PAGE_SIZE - ci.objs * ci.slot;
		prev = ci;
	}
	ck_assert_uint_eq(nhuge, 1);
	ck_assert_uint_eq(prev.slot, ZS_PAGE_SIZE); /* the huge class last */
	ck_assert(prev.huge && prev.pages == 1 && prev.objs == 1);

	/* A few layouts worked out by hand. */
	for (unsigned int c = 0; c < nc; c++) {
		zs_test_class_info(pool, c, &ci);
		if (ci.slot == 16)
			ck_assert(ci.pages == 1 && ci.objs == 256);
		if (ci.slot == 2048)
			ck_assert(ci.pages == 1 && ci.objs == 2);
		if (ci.slot == 3840) /* 16 in 15 pages, no waste */
			ck_assert(ci.pages == 15 && ci.objs == 16);
	}

	/* Sizes map to classes that hold them, by the layout of their slot. */
	for (size_t size = 1; size <= ZPOOL_MAX_SIZE; size++) {
		size_t need = size + (_i ? ZS_HDR_SIZE + ZS_OWNER_SIZE : 0);
		uint32_t slot = (uint32_t)((need + 15) / 16 * 16), n1 = 1;

		zs_test_class_info(pool, zs_test_size_class(pool, size), &ci);
		if (need > ZS_PAGE_SIZE) {
			ck_assert(ci.huge);
			continue;
		}
		ck_assert_uint_ge(ci.slot, need);
		for (uint32_t n = 2; n <= ZS_MAX_PAGES; n++)
			if (score(slot, n) < score(slot, n1) - 1e-12)
				n1 = n;
		ck_assert_uint_eq(ci.pages, n1);
		ck_assert_uint_eq(ci.objs, n1 * ZS_PAGE_SIZE / slot);
	}

	/* No zspage of up to 16 pages fits 17 slots of 3856 bytes. */
	ck_assert_uint_eq(zs_test_huge_threshold(pool),
			  3840 - (_i ? ZS_HDR_SIZE + ZS_OWNER_SIZE : 0));
	printf("zsmalloc %s owner words: %u classes, huge above %zu bytes, "
	       "zspage tails waste %llu bytes in all\n",
	       _i ? "with" : "without", nc, zs_test_huge_threshold(pool),
	       (unsigned long long)waste_sum);
	zpool_destroy_pool(pool);
}
END_TEST

/* ------------------------------------------------------------ id tables */

START_TEST(test_table)
{
	enum { N = 3 * 512 + 10 };
	struct pagesrc *ps = pagesrc_create();
	static uint32_t ids[N], more[1000];
	struct zs_table t;
	uint64_t meta = 0;
	uint64_t *e;

	ck_assert_int_eq(zs_table_init(&t, ps, &meta, 8, 2000, false), 0);
	/* Lowest first, all distinct, entries of new chunks zero. */
	ck_assert_uint_eq(zs_table_get(&t, ids, N), N);
	for (uint32_t i = 0; i < N; i++) {
		ck_assert_uint_eq(ids[i], i);
		e = zs_table_entry(&t, ids[i]);
		ck_assert_uint_eq(*e, 0);
		*e = i + 1;
	}
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 4 * PAGESRC_PAGE_SIZE);
	ck_assert_uint_gt(meta, 0);
	/* Ids run out at max_ids. */
	ck_assert_uint_eq(zs_table_get(&t, more, 1000), 2000 - N);
	ck_assert_uint_eq(more[2000 - N - 1], 1999);
	zs_table_put(&t, more, 2000 - N);

	/* Emptying the top chunks gives them back, but for one spare. */
	ck_assert_uint_eq(zs_table_put(&t, ids + 512, N - 512), 2);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 2 * PAGESRC_PAGE_SIZE);
	ck_assert_uint_eq(zs_table_used(&t), 512);
	/* A freed id comes back first. */
	zs_table_put(&t, ids + 7, 1);
	ck_assert_uint_eq(zs_table_get(&t, ids + 7, 1), 1);
	ck_assert_uint_eq(ids[7], 7);
	ck_assert_uint_eq(*(uint64_t *)zs_table_entry(&t, 5), 6);

	/* A hold keeps emptied chunks (and stale entries) readable. */
	ck_assert_uint_eq(zs_table_get(&t, ids + 512, 1024), 1024);
	zs_table_hold(&t);
	ck_assert_uint_eq(zs_table_put(&t, ids + 512, 1024), 0);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 3 * PAGESRC_PAGE_SIZE);
	e = zs_table_entry(&t, 1500);
	ck_assert_uint_eq(*e, 0);
	ck_assert_uint_eq(zs_table_unhold(&t), 1);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 2 * PAGESRC_PAGE_SIZE);
	zs_table_destroy(&t);
	pagesrc_destroy(ps);
}
END_TEST

/* -------------------------------------------------------- huge objects */

START_TEST(test_huge)
{
	struct zpool *pool = pool_for(_i);
	size_t thr = zs_test_huge_threshold(pool);
	uint64_t start = zpool_get_total_size(pool), before;
	unsigned long h[64], packed, small;
	char *p;

	/* The largest packed object is packed. */
	ck_assert_int_eq(zpool_malloc(pool, thr, 1, &packed), 0);
	ck_assert_uint_ne(zs_test_handle_zspage(pool, packed), 0);
	tz_write(pool, packed, thr, 77);
	before = zpool_get_total_size(pool);
	for (int i = 0; i < 64; i++) {
		size_t len = i % 2 ? ZPOOL_MAX_SIZE : thr + 1 + (size_t)i;

		ck_assert_int_eq(zpool_malloc(pool, len, (uint64_t)i, &h[i]),
				 0);
		/* Direct (no zspage) in a pool without owner words. */
		ck_assert_uint_eq(zs_test_handle_zspage(pool, h[i]) == 0, !_i);
		p = zpool_map_handle(pool, h[i], ZPOOL_MM_WO);
		ck_assert_uint_eq((uintptr_t)p % ZS_PAGE_SIZE, 0);
		tz_fill(p, len, (uint64_t)i);
		zpool_unmap_handle(pool, h[i]);
	}
	/* A page each, plus at most a page of tables. */
	ck_assert_uint_ge(zpool_get_total_size(pool) - before,
			  64 * ZS_PAGE_SIZE);
	ck_assert_uint_le(zpool_get_total_size(pool) - before,
			  65 * ZS_PAGE_SIZE);
	/* An allocation undone at once gives its new page back at once. */
	before = zpool_get_total_size(pool);
	ck_assert_int_eq(zpool_malloc(pool, ZPOOL_MAX_SIZE, 99, &small), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), before + ZS_PAGE_SIZE);
	zpool_free(pool, small);
	ck_assert_uint_eq(zpool_get_total_size(pool), before);
	small = 0;
	/* An overwrite reuses the freed page: none given back, none taken. */
	before = zpool_get_total_size(pool);
	zpool_free(pool, h[1]);
	ck_assert_uint_eq(zpool_get_total_size(pool), before);
	ck_assert_int_eq(zpool_malloc(pool, ZPOOL_MAX_SIZE, 1, &h[1]), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), before);
	tz_write(pool, h[1], ZPOOL_MAX_SIZE, 1);
	for (int i = 0; i < 64; i++)
		ck_assert(
			tz_verify(pool, h[i],
				  i % 2 ? ZPOOL_MAX_SIZE : thr + 1 + (size_t)i,
				  (uint64_t)i));
	/* Compaction gives the cached pages back. */
	for (int i = 0; i < 4; i++)
		zpool_free(pool, h[i]);
	ck_assert_uint_eq(zpool_get_total_size(pool), before);
	ck_assert_int_ge(zpool_compact(pool), 4);
	ck_assert_uint_le(zpool_get_total_size(pool),
			  before - 4 * ZS_PAGE_SIZE);
	for (int i = 4; i < 64; i++)
		zpool_free(pool, h[i]);
	ck_assert(tz_verify(pool, packed, thr, 77));
	zpool_free(pool, packed);
	ck_assert_uint_le(zpool_get_total_size(pool), start + TZ_EMPTY_SLACK);
	zpool_destroy_pool(pool);
}
END_TEST

/* ----------------------------------------------------------- compaction */

struct objset {
	unsigned long *h;
	size_t *len;
	uint64_t *seed;
	size_t n;
};

/* Room for @n objects, none allocated yet. */
static void objset_alloc(struct objset *os, size_t n)
{
	os->h = calloc(n, sizeof(*os->h));
	os->len = calloc(n, sizeof(*os->len));
	os->seed = calloc(n, sizeof(*os->seed));
	ck_assert(os->h && os->len && os->seed);
	os->n = n;
}

/* Frees the arrays only; the objects go with their pool. */
static void objset_release(struct objset *os)
{
	free(os->h);
	free(os->len);
	free(os->seed);
}

static void objset_fill(struct zpool *pool, struct objset *os, size_t n,
			uint64_t *st)
{
	objset_alloc(os, n);
	for (size_t i = 0; i < n; i++) {
		os->len[i] = tz_size(st);
		os->seed[i] = tz_next(st);
		ck_assert_int_eq(zpool_malloc(pool, os->len[i], i, &os->h[i]),
				 0);
		tz_write(pool, os->h[i], os->len[i], os->seed[i]);
	}
}

static void objset_verify(struct zpool *pool, const struct objset *os)
{
	for (size_t i = 0; i < os->n; i++)
		if (os->h[i])
			ck_assert_msg(tz_verify(pool, os->h[i], os->len[i],
						os->seed[i]),
				      "object %zu corrupt", i);
}

static void objset_free(struct zpool *pool, struct objset *os)
{
	for (size_t i = 0; i < os->n; i++)
		zpool_free(pool, os->h[i]);
	objset_release(os);
}

/*
 * Most objects freed at random: compaction gives pages back (total_size and
 * RSS fall), the rest keep their handles and their bytes, and what is left
 * is dense again.
 */
START_TEST(test_compact)
{
	const size_t n = TEST_SANITIZED ? 8000 : 40000;
	struct zpool *pool = pool_for(_i);
	unsigned long seed = test_seed();
	uint64_t st = seed, live = 0, full, sparse, dense;
	uint64_t start = zpool_get_total_size(pool);
	unsigned int nc = zs_test_nr_classes(pool);
	struct objset os;
	long rss1, rss2, pages;

	printf("test_compact (%s owner words): TEST_SEED=%lu\n",
	       _i ? "with" : "without", seed);
	objset_fill(pool, &os, n, &st);
	full = zpool_get_total_size(pool);
	for (size_t i = 0; i < n; i++) {
		if (tz_below(&st, 100) < 80) {
			zpool_free(pool, os.h[i]);
			os.h[i] = 0;
		} else {
			live += os.len[i];
		}
	}
	sparse = zpool_get_total_size(pool);
	ck_assert_uint_lt(sparse, full);
	rss1 = test_rss_kib();
	pages = zpool_compact(pool);
	dense = zpool_get_total_size(pool);
	rss2 = test_rss_kib();
	printf("  %zu objects %llu KiB, 80%% freed: %llu KiB left, %llu KiB "
	       "live; compacted %ld pages: %llu KiB; RSS %ld -> %ld KiB\n",
	       n, (unsigned long long)full >> 10,
	       (unsigned long long)sparse >> 10, (unsigned long long)live >> 10,
	       pages, (unsigned long long)dense >> 10, rss1, rss2);
	ck_assert_int_gt(pages, 0);
	ck_assert_uint_le(dense + (uint64_t)pages * ZS_PAGE_SIZE, sparse);
	/* Dense: per class, less than one zspage of free slots is left. */
	ck_assert_uint_le(dense,
			  live + live / 16 +
				  (uint64_t)nc * ZS_MAX_PAGES * ZS_PAGE_SIZE);
	for (unsigned int c = 0; c < nc; c++) {
		struct zs_class_info ci;

		zs_test_class_info(pool, c, &ci);
		if (!ci.huge)
			ck_assert_uint_lt(ci.nr_zspages * ci.objs - ci.nr_objs,
					  ci.objs);
	}
	if (TEST_RSS_CHECKS)
		ck_assert_int_ge(rss1 - rss2, pages * 4 * 8 / 10);
	objset_verify(pool, &os);
	/* Compacting again finds nothing to do, and the pool still works. */
	ck_assert_int_eq(zpool_compact(pool), 0);
	for (size_t i = 0; i < n; i += 2) {
		if (os.h[i])
			continue;
		os.seed[i] = tz_next(&st);
		ck_assert_int_eq(zpool_malloc(pool, os.len[i], 0, &os.h[i]), 0);
		tz_write(pool, os.h[i], os.len[i], os.seed[i]);
	}
	objset_verify(pool, &os);
	objset_free(pool, &os);
	ck_assert_uint_le(zpool_get_total_size(pool), start + TZ_EMPTY_SLACK);
	zpool_destroy_pool(pool);
}
END_TEST

/* A mapped object is not moved: its zspage stays, its mapping stays right. */
START_TEST(test_compact_mapped)
{
	struct zpool *pool = pool_for(_i);
	enum { N = 400, LEN = 1000 };
	unsigned long h[N];
	const unsigned char *p;
	uint32_t zs_before;

	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(zpool_malloc(pool, LEN, 0, &h[i]), 0);
		tz_write(pool, h[i], LEN, (uint64_t)i);
	}
	/* Keep one object in ten: the early ones are the sparse zspages. */
	for (int i = 0; i < N; i++)
		if (i % 10) {
			zpool_free(pool, h[i]);
			h[i] = 0;
		}
	p = zpool_map_handle(pool, h[0], ZPOOL_MM_RO);
	zs_before = zs_test_handle_zspage(pool, h[0]);
	ck_assert_int_gt(zpool_compact(pool), 0);
	ck_assert_int_eq(tz_check(p, LEN, 0), -1);
	ck_assert_uint_eq(zs_test_handle_zspage(pool, h[0]), zs_before);
	zpool_unmap_handle(pool, h[0]);
	for (int i = 0; i < N; i += 10)
		ck_assert(tz_verify(pool, h[i], LEN, (uint64_t)i));
	/* Unmapped, it moves like the others. */
	zpool_compact(pool);
	for (int i = 0; i < N; i += 10) {
		ck_assert(tz_verify(pool, h[i], LEN, (uint64_t)i));
		zpool_free(pool, h[i]);
	}
	zpool_destroy_pool(pool);
}
END_TEST

/*
 * Compaction racing with malloc, free and map from other threads: each
 * thread owns a slice of objects and checks every byte it reads.
 */
struct racer {
	struct zpool *pool;
	struct objset os;
	uint64_t st;
	bool *stop;
	unsigned long ops;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
		size_t i = tz_below(&r->st, r->os.n);

		if (!r->os.h[i]) {
			r->os.len[i] = tz_size(&r->st);
			r->os.seed[i] = tz_next(&r->st);
			if (zpool_malloc(r->pool, r->os.len[i], i,
					 &r->os.h[i]) != 0)
				abort();
			tz_write(r->pool, r->os.h[i], r->os.len[i],
				 r->os.seed[i]);
		} else if (tz_below(&r->st, 3) == 0) {
			zpool_free(r->pool, r->os.h[i]);
			r->os.h[i] = 0;
		} else if (!tz_verify(r->pool, r->os.h[i], r->os.len[i],
				      r->os.seed[i])) {
			abort();
		}
		__atomic_store_n(&r->ops, r->ops + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_compact_race)
{
	enum { THREADS = 2 };
	struct zpool *pool = pool_for(_i);
	unsigned long seed = test_seed();
	struct racer r[THREADS];
	pthread_t tid[THREADS];
	bool stop = false;
	long pages = 0;
	int rounds = TEST_SANITIZED ? 20 : 100;

	printf("test_compact_race (%s owner words): TEST_SEED=%lu\n",
	       _i ? "with" : "without", seed);
	for (int t = 0; t < THREADS; t++) {
		uint64_t st = seed + (uint64_t)t;

		r[t] = (struct racer){.pool = pool, .st = st, .stop = &stop};
		objset_fill(pool, &r[t].os, TEST_SANITIZED ? 1000 : 4000,
			    &r[t].st);
	}
	for (int t = 0; t < THREADS; t++)
		ck_assert_int_eq(
			pthread_create(&tid[t], NULL, racer_main, &r[t]), 0);
	/* So many compactions, and until every thread has done some work. */
	for (int k = 0;; k++) {
		long n = zpool_compact(pool);
		bool busy = true;

		ck_assert_int_ge(n, 0);
		pages += n;
		for (int t = 0; t < THREADS; t++)
			busy &= __atomic_load_n(&r[t].ops, __ATOMIC_RELAXED) >=
				2000;
		if (k >= rounds && busy)
			break;
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	for (int t = 0; t < THREADS; t++) {
		pthread_join(tid[t], NULL);
		objset_verify(pool, &r[t].os);
		printf("  thread %d: %lu ops\n", t, r[t].ops);
	}
	printf("  %d or more compactions, %ld pages\n", rounds, pages);
	for (int t = 0; t < THREADS; t++)
		objset_free(pool, &r[t].os);
	zpool_destroy_pool(pool);
}
END_TEST

/* ------------------------------------------------------ shrink and LRU */

#define MAX_EVICT 4096

struct evict_log {
	struct zpool *pool;
	uint32_t zspage[MAX_EVICT]; /* of each eviction, in order */
	uint64_t owner[MAX_EVICT];
	int n;
	/* owner -> object, for checking and freeing */
	struct objset *os;
};

static int log_evict(void *ctx, struct zpool *pool, unsigned long handle,
		     uint64_t owner)
{
	struct evict_log *l = ctx;

	ck_assert_int_lt(l->n, MAX_EVICT);
	ck_assert_uint_eq(l->os->h[owner], handle);
	ck_assert(
		tz_verify(pool, handle, l->os->len[owner], l->os->seed[owner]));
	l->zspage[l->n] = zs_test_handle_zspage(pool, handle);
	l->owner[l->n++] = owner;
	zpool_free(pool, handle);
	l->os->h[owner] = 0;
	return 0;
}

/*
 * A pool whose evictions are logged in a new *@l, and room for @n objects
 * in @os; log_pool_destroy() undoes it all.
 */
static struct zpool *log_pool(struct evict_log **l, struct objset *os,
			      size_t n)
{
	struct zpool *pool;

	*l = calloc(1, sizeof(**l));
	ck_assert_ptr_nonnull(*l);
	pool = tz_create(&(struct zpool_ops){log_evict, *l});
	(*l)->pool = pool;
	(*l)->os = os;
	objset_alloc(os, n);
	return pool;
}

static void log_pool_destroy(struct zpool *pool, struct evict_log *l,
			     struct objset *os)
{
	zpool_destroy_pool(pool);
	objset_release(os);
	free(l);
}

/* Allocates object @i of @os (length set) into the pool. */
static void put_obj(struct zpool *pool, struct objset *os, size_t i, size_t len)
{
	os->len[i] = len;
	os->seed[i] = 1000 + i;
	ck_assert_int_eq(zpool_malloc(pool, len, i, &os->h[i]), 0);
	tz_write(pool, os->h[i], len, os->seed[i]);
}

/*
 * Zspages go in the order they were last allocated into, across classes:
 * A1 (class A), B1 (class B), A2, then A1 gets one more object, so the
 * order is B1, A2, A1. Every object of a zspage goes before the next one.
 */
START_TEST(test_shrink_lru)
{
	struct evict_log *l;
	struct objset os = {0};
	struct zpool *pool = log_pool(&l, &os, 1024);
	struct zs_class_info a, b;
	uint32_t za1, zb1, za2, want[3];
	size_t n = 0, i, lena = 1000, lenb = 2000;
	size_t rel;
	int k;

	zs_test_class_info(pool, zs_test_size_class(pool, lena), &a);
	zs_test_class_info(pool, zs_test_size_class(pool, lenb), &b);
	ck_assert_uint_ne(a.slot, b.slot);

	for (i = 0; i < a.objs; i++) /* A1, full */
		put_obj(pool, &os, n++, lena);
	za1 = zs_test_handle_zspage(pool, os.h[0]);
	for (i = 0; i < b.objs; i++) /* B1, full */
		put_obj(pool, &os, n++, lenb);
	zb1 = zs_test_handle_zspage(pool, os.h[n - 1]);
	for (i = 0; i < a.objs / 2; i++) /* A2, half */
		put_obj(pool, &os, n++, lena);
	za2 = zs_test_handle_zspage(pool, os.h[n - 1]);
	ck_assert(za1 != za2 && za1 != zb1 && za2 != zb1);
	/* A1 loses an object and gets a new one: the fullest partial. */
	zpool_free(pool, os.h[1]);
	os.h[1] = 0;
	put_obj(pool, &os, 1, lena);
	ck_assert_uint_eq(zs_test_handle_zspage(pool, os.h[1]), za1);

	ck_assert_int_eq(zpool_shrink(pool, SIZE_MAX, &rel), -ENOENT);
	ck_assert_int_eq(l->n, (int)(a.objs + b.objs + a.objs / 2));
	want[0] = zb1;
	want[1] = za2;
	want[2] = za1;
	k = 0;
	for (int w = 0; w < 3; w++)
		while (k < l->n && l->zspage[k] == want[w])
			k++;
	ck_assert_msg(k == l->n, "eviction #%d from zspage %u out of order", k,
		      l->zspage[k < l->n ? k : 0]);
	ck_assert_uint_ge(rel, (2 * a.pages + b.pages) * ZS_PAGE_SIZE);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(os.h[i], 0);
	log_pool_destroy(pool, l, &os);
}
END_TEST

/*
 * Cached free huge pages are the first memory shrink gives back: they cover
 * a request without an eviction, and count when evictions finish the job
 * (shrink returns 0, not -ENOENT, once enough is given back).
 */
START_TEST(test_shrink_cached)
{
	struct evict_log *l;
	struct objset os = {0};
	struct zpool *pool = log_pool(&l, &os, 4);
	size_t rel;

	for (size_t i = 0; i < 4; i++)
		put_obj(pool, &os, i, ZPOOL_MAX_SIZE);
	/* Not the page taken last: into the cache. */
	zpool_free(pool, os.h[0]);
	os.h[0] = 0;
	ck_assert_int_eq(zpool_shrink(pool, ZS_PAGE_SIZE, &rel), 0);
	ck_assert_uint_eq(rel, ZS_PAGE_SIZE);
	ck_assert_int_eq(l->n, 0);

	zpool_free(pool, os.h[1]);
	os.h[1] = 0;
	ck_assert_int_eq(zpool_shrink(pool, 3 * ZS_PAGE_SIZE, &rel), 0);
	ck_assert_uint_eq(rel, 3 * ZS_PAGE_SIZE);
	ck_assert_int_eq(l->n, 2);
	ck_assert_int_eq(zpool_shrink(pool, ZS_PAGE_SIZE, &rel), -ENOENT);
	ck_assert_uint_eq(rel, 0);
	log_pool_destroy(pool, l, &os);
}
END_TEST

/*
 * The eviction race, harder than the generic suite's: while the callback
 * reads an object, another thread frees it and the rest of the victim
 * zspage's objects, and allocates new ones of the same class. The callback
 * still reads the right bytes (before and after the free), a freed object
 * that was not evicted yet is never handed to the callback, no new object
 * lands in the zspage under reclaim, and no handle is handed out twice.
 */
struct race {
	struct zpool *pool;
	struct objset os;
	pthread_mutex_t lock; /* protects os.h and the members below */
	pthread_cond_t cond;
	unsigned long todo; /* owner + 1 of the object to free; 0: none */
	bool done, stop;
	uint32_t victim; /* zspage being evicted */
	unsigned long evicted, skipped_dead, junk_in_victim;
	unsigned long junk[4096];
	size_t junk_len[4096];
	size_t njunk;
	uint64_t st;
};

static void *race_main(void *arg)
{
	struct race *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		size_t owner;

		while (!r->todo && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop)
			break;
		owner = r->todo - 1;
		r->todo = 0;
		/* Free the object, and the others of its zspage. */
		for (size_t i = 0; i < r->os.n; i++) {
			if (!r->os.h[i] ||
			    (i != owner &&
			     zs_test_handle_zspage(r->pool, r->os.h[i]) !=
				     r->victim))
				continue;
			zpool_free(r->pool, r->os.h[i]);
			r->os.h[i] = 0;
		}
		/* New objects of the class go elsewhere, with new handles. */
		for (int k = 0; k < 4 && r->njunk < 4096; k++) {
			unsigned long h;

			if (zpool_malloc(r->pool, r->os.len[owner], UINT64_MAX,
					 &h) != 0)
				abort();
			if (zs_test_handle_zspage(r->pool, h) == r->victim)
				r->junk_in_victim++;
			tz_write(r->pool, h, r->os.len[owner], h);
			r->junk_len[r->njunk] = r->os.len[owner];
			r->junk[r->njunk++] = h;
		}
		r->done = true;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int race_evict(void *ctx, struct zpool *pool, unsigned long handle,
		      uint64_t owner)
{
	struct race *r = ctx;
	const void *p;
	bool live;

	if (owner == UINT64_MAX) { /* junk: evict it plainly */
		zpool_free(pool, handle);
		pthread_mutex_lock(&r->lock);
		for (size_t k = 0; k < r->njunk; k++)
			if (r->junk[k] == handle)
				r->junk[k] = 0;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	live = r->os.h[owner] == handle;
	r->victim = zs_test_handle_zspage(pool, handle);
	pthread_mutex_unlock(&r->lock);
	ck_assert_msg(live, "owner %llu was freed before its eviction",
		      (unsigned long long)owner);

	p = zpool_map_handle(pool, handle, ZPOOL_MM_RO);
	ck_assert_int_eq(tz_check(p, r->os.len[owner], r->os.seed[owner]), -1);
	pthread_mutex_lock(&r->lock);
	r->done = false;
	r->todo = owner + 1;
	pthread_cond_broadcast(&r->cond);
	while (!r->done)
		pthread_cond_wait(&r->cond, &r->lock);
	r->evicted++;
	pthread_mutex_unlock(&r->lock);
	/* Freed under us: still mapped, still the same bytes. */
	ck_assert_int_eq(tz_check(p, r->os.len[owner], r->os.seed[owner]), -1);
	zpool_unmap_handle(pool, handle);
	/* And mappable again until we return. */
	ck_assert(tz_verify(pool, handle, r->os.len[owner], r->os.seed[owner]));
	return 0; /* the owner freed it: not ours to free */
}

START_TEST(test_eviction_race)
{
	struct race *r = calloc(1, sizeof(*r));
	unsigned long seed = test_seed();
	pthread_t tid;
	size_t rel, n = 600, m = 0;
	unsigned long *sorted;

	ck_assert_ptr_nonnull(r);
	printf("test_eviction_race: TEST_SEED=%lu\n", seed);
	r->st = seed;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->pool = tz_create(&(struct zpool_ops){race_evict, r});
	r->os.h = calloc(n, sizeof(*r->os.h));
	r->os.len = calloc(n, sizeof(*r->os.len));
	r->os.seed = calloc(n, sizeof(*r->os.seed));
	r->os.n = n;
	for (size_t i = 0; i < n; i++) {
		/* Three classes, one of them huge. */
		size_t len = i % 3 == 0 ? 700 : i % 3 == 1 ? 1900 : 4096;

		put_obj(r->pool, &r->os, i, len);
	}
	ck_assert_int_eq(pthread_create(&tid, NULL, race_main, r), 0);
	ck_assert_int_eq(zpool_shrink(r->pool, 64 * ZS_PAGE_SIZE, &rel), 0);
	ck_assert_uint_ge(rel, 64 * ZS_PAGE_SIZE);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(tid, NULL);

	printf("  %lu evicted while being freed, %zu new objects\n", r->evicted,
	       r->njunk);
	ck_assert_uint_ge(r->evicted, 1);
	ck_assert_uint_eq(r->junk_in_victim, 0);
	objset_verify(r->pool, &r->os);
	/* No handle twice among the live objects and the junk. */
	sorted = calloc(n + r->njunk, sizeof(*sorted));
	ck_assert_ptr_nonnull(sorted);
	for (size_t i = 0; i < n; i++)
		if (r->os.h[i])
			sorted[m++] = r->os.h[i];
	for (size_t k = 0; k < r->njunk; k++)
		if (r->junk[k]) {
			ck_assert(tz_verify(r->pool, r->junk[k], r->junk_len[k],
					    r->junk[k]));
			sorted[m++] = r->junk[k];
		}
	for (size_t i = 0; i < m; i++)
		for (size_t j = i + 1; j < m; j++)
			ck_assert_uint_ne(sorted[i], sorted[j]);
	free(sorted);
	for (size_t k = 0; k < r->njunk; k++)
		zpool_free(r->pool, r->junk[k]);
	objset_free(r->pool, &r->os);
	zpool_destroy_pool(r->pool);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
END_TEST

/* ----------------------------------------------------- AddressSanitizer */

#ifdef ZS_ASAN
/*
 * Under ASan, memory that holds no object is poisoned: touching it ends the
 * process with ASan's exit code 1, which these tests expect (ASan's report
 * goes to /dev/null, so the log does not show a failure that is none).
 */
static volatile char *asan_victim(struct zpool **pool, int owners,
				  unsigned long *h)
{
	volatile char *p;

	*pool = pool_for(owners);
	ck_assert_int_eq(zpool_malloc(*pool, 90, 0, h), 0);
	p = zpool_map_handle(*pool, *h, ZPOOL_MM_WO);
	for (int i = 0; i < 90; i++)
		p[i] = (char)i;
	printf("test_asan (%s owner words): an ASan report is expected "
	       "(hidden)\n",
	       owners ? "with" : "without");
	fflush(stdout);
	return p;
}

static void asan_quiet(void)
{
	int fd = open("/dev/null", O_WRONLY);

	ck_assert_int_ge(fd, 0);
	dup2(fd, STDERR_FILENO);
}

/* One byte past the end of an object. */
START_TEST(test_asan_overrun)
{
	struct zpool *pool;
	unsigned long h;
	volatile char *p = asan_victim(&pool, _i, &h);

	asan_quiet();
	p[90] = 1;
	ck_abort_msg("an overrun went unnoticed");
}
END_TEST

/* A mapping used after its object was freed. */
START_TEST(test_asan_stale)
{
	struct zpool *pool;
	unsigned long h;
	volatile char *p = asan_victim(&pool, _i, &h);

	zpool_unmap_handle(pool, h);
	zpool_free(pool, h);
	asan_quiet();
	p[50] = 1;
	ck_abort_msg("a stale mapping went unnoticed");
}
END_TEST
#endif

static Suite *zsmalloc_suite(void)
{
	Suite *s = suite_create("alloc_zsmalloc");
	TCase *layout = tcase_create("layout");
	TCase *compact = tcase_create("compact");
	TCase *shrink = tcase_create("shrink");

	/* Loop index 0: a pool without owner words, 1: with. */
	tcase_add_loop_test(layout, test_class_layout, 0, 2);
	tcase_add_test(layout, test_table);
	tcase_add_loop_test(layout, test_huge, 0, 2);
	tcase_set_timeout(layout, 60);
	suite_add_tcase(s, layout);

	tcase_add_loop_test(compact, test_compact, 0, 2);
	tcase_add_loop_test(compact, test_compact_mapped, 0, 2);
	tcase_add_loop_test(compact, test_compact_race, 0, 2);
	tcase_set_timeout(compact, 120);
	suite_add_tcase(s, compact);

	tcase_add_test(shrink, test_shrink_lru);
	tcase_add_test(shrink, test_shrink_cached);
	tcase_add_test(shrink, test_eviction_race);
	tcase_set_timeout(shrink, 60);
	suite_add_tcase(s, shrink);

#ifdef ZS_ASAN
	{
		TCase *asan = tcase_create("asan");

		tcase_add_loop_exit_test(asan, test_asan_overrun, 1, 0, 2);
		tcase_add_loop_exit_test(asan, test_asan_stale, 1, 0, 2);
		suite_add_tcase(s, asan);
	}
#endif
	return s;
}

int main(void)
{
	return test_run_suite(zsmalloc_suite());
}
