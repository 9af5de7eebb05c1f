/* SPDX-License-Identifier: MIT */
/*
 * The zpool API against one backend (ZPOOL_BACKEND): creation and the
 * registry, argument limits, map/unmap round trips in every mode, many
 * objects at once, total_size, and the process RSS given back on free.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_zpool_common.h"

START_TEST(test_create_destroy)
{
	struct zpool *pool = tz_create(NULL);

	ck_assert_str_eq(zpool_get_type(pool), ZPOOL_BACKEND);
	zpool_destroy_pool(pool);
	zpool_destroy_pool(NULL);
}
END_TEST

/* A pool destroyed with objects still in it frees them all (ASan checks). */
START_TEST(test_destroy_nonempty)
{
	struct zpool *pool = tz_create(NULL);
	unsigned long h;

	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(zpool_malloc(pool, 1 + i * 13 % 4096, 0, &h),
				 0);
		tz_write(pool, h, 1 + i * 13 % 4096, i);
	}
	zpool_destroy_pool(pool);
}
END_TEST

struct type_list {
	const char *types[8];
	int n;
};

static void collect_type(const char *type, void *arg)
{
	struct type_list *tl = arg;

	if (tl->n < 8)
		tl->types[tl->n++] = type;
}

START_TEST(test_registry)
{
	struct type_list tl = { .n = 0 };
	bool found = false;

	zpool_for_each_type(collect_type, &tl);
	ck_assert_int_ge(tl.n, 1);
	for (int i = 0; i < tl.n; i++)
		found |= strcmp(tl.types[i], ZPOOL_BACKEND) == 0;
	ck_assert_msg(found, "%s is not registered", ZPOOL_BACKEND);
}
END_TEST

START_TEST(test_unknown_type)
{
	struct type_list tl = { .n = 0 };
	struct zpool *pool;

	errno = 0;
	ck_assert_ptr_null(zpool_create_pool("no-such-pool", NULL, false));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(zpool_create_pool(NULL, NULL, false));
	ck_assert_int_eq(errno, EINVAL);

	/* Fallback: the registered backend of highest priority. */
	zpool_for_each_type(collect_type, &tl);
	pool = zpool_create_pool("no-such-pool", NULL, true);
	ck_assert_ptr_nonnull(pool);
	ck_assert_str_eq(zpool_get_type(pool), tl.types[0]);
	zpool_destroy_pool(pool);

	/* Fallback with a known type: that type. */
	pool = zpool_create_pool(ZPOOL_BACKEND, NULL, true);
	ck_assert_ptr_nonnull(pool);
	ck_assert_str_eq(zpool_get_type(pool), ZPOOL_BACKEND);
	zpool_destroy_pool(pool);
}
END_TEST

START_TEST(test_invalid_sizes)
{
	struct zpool *pool = tz_create(NULL);
	unsigned long h = 12345;

	ck_assert_int_eq(zpool_malloc(pool, 0, 0, &h), -EINVAL);
	ck_assert_int_eq(zpool_malloc(pool, ZPOOL_MAX_SIZE + 1, 0, &h),
			 -EINVAL);
	ck_assert_int_eq(zpool_malloc(pool, (size_t)-1, 0, &h), -EINVAL);
	ck_assert_uint_eq(h, 12345);
	ck_assert_int_eq(zpool_malloc(pool, ZPOOL_MAX_SIZE, 0, &h), 0);
	ck_assert_uint_ne(h, 0);
	zpool_free(pool, h);
	zpool_free(pool, 0); /* ignored */
	zpool_destroy_pool(pool);
}
END_TEST

static const size_t rt_sizes[] = { 1, 16, 17, 100, 2000, 3000, 4096 };

/*
 * Every size, every mode: WO writes, RO reads, RW reads and writes back.
 * A neighbour object of the same size sits next to each one and must not
 * change.
 */
START_TEST(test_roundtrip_modes)
{
	struct zpool *pool = tz_create(NULL);
	size_t len = rt_sizes[_i];
	unsigned long h, nb;
	unsigned char *p;

	ck_assert_int_eq(zpool_malloc(pool, len, 1, &nb), 0);
	ck_assert_int_eq(zpool_malloc(pool, len, 2, &h), 0);
	ck_assert_uint_ne(h, 0);
	ck_assert_uint_ne(h, nb);
	tz_write(pool, nb, len, 0xbeef);
	tz_write(pool, h, len, 1);

	/* RO */
	ck_assert(tz_verify(pool, h, len, 1));

	/* RW: reads the old contents, and what it writes stays. */
	p = zpool_map_handle(pool, h, ZPOOL_MM_RW);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(tz_check(p, len, 1), -1);
	tz_fill(p, len, 2);
	zpool_unmap_handle(pool, h);
	ck_assert(tz_verify(pool, h, len, 2));

	/* RW on the default mode, a one-byte change only. */
	p = zpool_map_handle(pool, h, ZPOOL_MM_DEFAULT);
	p[len - 1] ^= 0xff;
	zpool_unmap_handle(pool, h);
	p = zpool_map_handle(pool, h, ZPOOL_MM_RO);
	p[len - 1] ^= 0xff;
	ck_assert_int_eq(tz_check(p, len, 2), -1);
	zpool_unmap_handle(pool, h);

	/* WO over an existing object replaces it entirely. */
	tz_write(pool, h, len, 3);
	ck_assert(tz_verify(pool, h, len, 3));

	ck_assert(tz_verify(pool, nb, len, 0xbeef));
	zpool_free(pool, h);
	ck_assert(tz_verify(pool, nb, len, 0xbeef));
	zpool_free(pool, nb);
	zpool_destroy_pool(pool);
}
END_TEST

/* Chunk and class boundaries: every size around them keeps its bytes. */
START_TEST(test_boundary_sizes)
{
	static const size_t sizes[] = { 1,    2,    7,    8,    9,    15,
					16,   31,   32,   33,   63,   64,
					65,   127,  128,  129,  1023, 1024,
					1025, 2047, 2048, 2049, 3264, 3265,
					4032, 4033, 4095, 4096 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct zpool *pool = tz_create(NULL);
	unsigned long h[N][3];

	for (int i = 0; i < N; i++)
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(zpool_malloc(pool, sizes[i], 0,
						      &h[i][k]),
					 0);
			tz_write(pool, h[i][k], sizes[i], i * 3 + k);
		}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 3; k++)
			ck_assert(tz_verify(pool, h[i][k], sizes[i],
					    i * 3 + k));
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 3; k++)
			zpool_free(pool, h[i][k]);
	zpool_destroy_pool(pool);
}
END_TEST

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Many objects of mixed sizes: handles are distinct and non-zero, every
 * object keeps its own contents through frees of others, and total_size
 * grows with the data and falls back when it is freed.
 */
START_TEST(test_many_objects)
{
	enum { N = 6000 };
	struct zpool *pool = tz_create(NULL);
	unsigned long *h = calloc(N, sizeof(*h));
	unsigned long *sorted = calloc(N, sizeof(*sorted));
	size_t *len = calloc(N, sizeof(*len));
	uint64_t st = 42, start = zpool_get_total_size(pool), stored = 0, full;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(sorted);
	ck_assert_ptr_nonnull(len);
	for (int i = 0; i < N; i++) {
		len[i] = tz_size(&st);
		ck_assert_int_eq(zpool_malloc(pool, len[i], (uint64_t)i, &h[i]),
				 0);
		ck_assert_uint_ne(h[i], 0);
		tz_write(pool, h[i], len[i], 1000 + i);
		stored += len[i];
		sorted[i] = h[i];
	}
	qsort(sorted, N, sizeof(*sorted), cmp_ulong);
	for (int i = 1; i < N; i++)
		ck_assert_uint_ne(sorted[i - 1], sorted[i]);

	full = zpool_get_total_size(pool);
	ck_assert_uint_ge(full, start + stored);
	for (int i = 0; i < N; i++)
		ck_assert(tz_verify(pool, h[i], len[i], 1000 + i));

	/* Free every other object; the rest are untouched. */
	for (int i = 0; i < N; i += 2)
		zpool_free(pool, h[i]);
	for (int i = 1; i < N; i += 2)
		ck_assert(tz_verify(pool, h[i], len[i], 1000 + i));
	/* Refill the holes with new objects. */
	for (int i = 0; i < N; i += 2) {
		ck_assert_int_eq(zpool_malloc(pool, len[i], 0, &h[i]), 0);
		tz_write(pool, h[i], len[i], 5000 + i);
	}
	for (int i = 0; i < N; i++)
		ck_assert(tz_verify(pool, h[i], len[i],
				    i % 2 ? 1000 + i : 5000 + i));
	for (int i = 0; i < N; i++)
		zpool_free(pool, h[i]);

	ck_assert_uint_lt(zpool_get_total_size(pool), full);
	ck_assert_uint_le(zpool_get_total_size(pool), start + TZ_EMPTY_SLACK);
	if (backend_is_zbud())
		ck_assert_uint_eq(zpool_get_total_size(pool), start);
	free(len);
	free(sorted);
	free(h);
	zpool_destroy_pool(pool);
}
END_TEST

/* total_size rises with each page's worth of data and falls on free. */
START_TEST(test_total_size)
{
	enum { N = 512 };
	struct zpool *pool = tz_create(NULL);
	unsigned long h[N];
	uint64_t start = zpool_get_total_size(pool), prev = start, mid;

	ck_assert_uint_gt(start, 0); /* the pool's own structure */
	for (int i = 0; i < N; i++) {
		uint64_t now;

		ck_assert_int_eq(zpool_malloc(pool, 3000, 0, &h[i]), 0);
		tz_write(pool, h[i], 3000, i);
		now = zpool_get_total_size(pool);
		ck_assert_uint_ge(now, prev);
		prev = now;
	}
	ck_assert_uint_ge(prev, start + (uint64_t)N * 3000);
	for (int i = 0; i < N / 2; i++)
		zpool_free(pool, h[i]);
	mid = zpool_get_total_size(pool);
	ck_assert_uint_lt(mid, prev);
	for (int i = N / 2; i < N; i++)
		zpool_free(pool, h[i]);
	ck_assert_uint_lt(zpool_get_total_size(pool), mid);
	ck_assert_uint_le(zpool_get_total_size(pool), start + TZ_EMPTY_SLACK);
	zpool_destroy_pool(pool);
}
END_TEST

/*
 * zpool_compact(): zbud does not compact; a backend that does keeps every
 * handle valid and never holds more afterwards.
 */
START_TEST(test_compact)
{
	enum { N = 4000 };
	struct zpool *pool = tz_create(NULL);
	unsigned long *h = calloc(N, sizeof(*h));
	size_t *len = calloc(N, sizeof(*len));
	uint64_t st = 3, before;
	long n;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(len);
	for (int i = 0; i < N; i++) {
		len[i] = tz_size(&st);
		ck_assert_int_eq(zpool_malloc(pool, len[i], 0, &h[i]), 0);
		tz_write(pool, h[i], len[i], i);
	}
	/* Leave one object in four: sparse pages. */
	for (int i = 0; i < N; i++)
		if (i % 4)
			zpool_free(pool, h[i]);
	before = zpool_get_total_size(pool);
	n = zpool_compact(pool);
	if (backend_is_zbud())
		ck_assert_int_eq(n, -EOPNOTSUPP);
	else
		ck_assert_int_ge(n, 0);
	ck_assert_uint_le(zpool_get_total_size(pool), before);
	if (n > 0)
		ck_assert_uint_le(zpool_get_total_size(pool),
				  before - (uint64_t)n * ZPOOL_PAGE_SIZE +
					  TZ_EMPTY_SLACK);
	for (int i = 0; i < N; i += 4)
		ck_assert(tz_verify(pool, h[i], len[i], i));
	/* Compacting a compact pool moves nothing more. */
	if (!backend_is_zbud())
		ck_assert_int_ge(zpool_compact(pool), 0);
	for (int i = 0; i < N; i += 4) {
		ck_assert(tz_verify(pool, h[i], len[i], i));
		zpool_free(pool, h[i]);
	}
	free(len);
	free(h);
	zpool_destroy_pool(pool);
}
END_TEST

/*
 * zbud's own layout: two buddies share a page only if their chunks fit,
 * a 4096-byte object fills a page, and a freed buddy's room is reused.
 * (The first page also brings a slab page for headers: 2 pages.)
 */
START_TEST(test_zbud_layout)
{
	const uint64_t pg = ZPOOL_PAGE_SIZE;
	struct zpool *pool = tz_create(NULL);
	uint64_t start = zpool_get_total_size(pool);
	unsigned long a, b, c, d;
	char *pa, *pb;

	ck_assert_int_eq(zpool_malloc(pool, 2048, 0, &a), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 2 * pg);
	ck_assert_int_eq(zpool_malloc(pool, 2048, 0, &b), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 2 * pg);
	/* One page, two buddies: the first at its start, the last at its end */
	pa = zpool_map_handle(pool, a, ZPOOL_MM_RO);
	zpool_unmap_handle(pool, a);
	pb = zpool_map_handle(pool, b, ZPOOL_MM_RO);
	zpool_unmap_handle(pool, b);
	ck_assert_ptr_eq(pa + 2048, pb);
	ck_assert_uint_eq((uintptr_t)pa % pg, 0);
	tz_write(pool, a, 2048, 1);
	tz_write(pool, b, 2048, 2);

	/* 2049 + 2048 bytes are 33 + 32 chunks: two pages. */
	ck_assert_int_eq(zpool_malloc(pool, 2049, 0, &c), 0);
	ck_assert_int_eq(zpool_malloc(pool, 2048, 0, &d), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 4 * pg);
	zpool_free(pool, d);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 3 * pg);

	/* A freed first buddy's room takes a new object, in place. */
	zpool_free(pool, a);
	ck_assert_int_eq(zpool_malloc(pool, 1000, 0, &d), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 3 * pg);
	tz_write(pool, d, 1000, 4);
	ck_assert(tz_verify(pool, b, 2048, 2));
	zpool_free(pool, b);
	zpool_free(pool, c);
	zpool_free(pool, d);
	ck_assert_uint_eq(zpool_get_total_size(pool), start);

	/* A whole-page object has a page to itself. */
	ck_assert_int_eq(zpool_malloc(pool, 4096, 0, &a), 0);
	ck_assert_int_eq(zpool_malloc(pool, 1, 0, &b), 0);
	ck_assert_uint_eq(zpool_get_total_size(pool), start + 3 * pg);
	zpool_free(pool, a);
	zpool_free(pool, b);
	ck_assert_uint_eq(zpool_get_total_size(pool), start);
	zpool_destroy_pool(pool);
}
END_TEST

/*
 * RSS: about 200 MiB of objects with non-zero contents, then all freed; the
 * process's resident memory must come back to within a few MiB of where it
 * started. (Under sanitizers, RSS means nothing: the test only runs.)
 */
START_TEST(test_rss_returns)
{
	const uint64_t target = (TEST_SANITIZED ? 32ull : 200ull) << 20;
	const size_t max = target / 400;
	unsigned long *h = malloc(max * sizeof(*h));
	struct zpool *pool = tz_create(NULL);
	uint64_t st = 7, stored = 0;
	long rss0, rss1, rss2;
	size_t n = 0;

	ck_assert_ptr_nonnull(h);
	memset(h, 0, max * sizeof(*h)); /* fault the table in before rss0 */
	rss0 = test_rss_kib();
	while (stored < target && n < max) {
		size_t len = 500 + tz_below(&st, 2501);
		unsigned char *p;

		ck_assert_int_eq(zpool_malloc(pool, len, 0, &h[n]), 0);
		p = zpool_map_handle(pool, h[n], ZPOOL_MM_WO);
		memset(p, 0x5a ^ (int)(n & 0x7f), len);
		zpool_unmap_handle(pool, h[n]);
		stored += len;
		n++;
	}
	rss1 = test_rss_kib();
	for (size_t i = 0; i < n; i++)
		zpool_free(pool, h[i]);
	rss2 = test_rss_kib();
	fprintf(stderr,
		"%s rss: %ld KiB before, %ld KiB with %zu objects (%llu MiB), "
		"%ld KiB after free\n",
		ZPOOL_BACKEND, rss0, rss1, n,
		(unsigned long long)(stored >> 20), rss2);
	if (TEST_RSS_CHECKS) {
		ck_assert_int_ge(rss1 - rss0, (long)(target >> 10) * 9 / 10);
		ck_assert_int_le(rss2 - rss0, 6 * 1024);
	}
	zpool_destroy_pool(pool);
	free(h);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("zpool_core-" ZPOOL_BACKEND);
	TCase *tc = tcase_create("core");
	TCase *lim = tcase_create("limits");
	TCase *rss = tcase_create("rss");

	tcase_add_test(tc, test_create_destroy);
	tcase_add_test(tc, test_destroy_nonempty);
	tcase_add_test(tc, test_registry);
	tcase_add_test(tc, test_unknown_type);
	tcase_add_loop_test(tc, test_roundtrip_modes, 0,
			    sizeof(rt_sizes) / sizeof(rt_sizes[0]));
	tcase_add_test(tc, test_many_objects);
	tcase_add_test(tc, test_total_size);
	tcase_add_test(tc, test_compact);
	if (backend_is_zbud())
		tcase_add_test(tc, test_zbud_layout);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tcase_add_test(lim, test_invalid_sizes);
	tcase_add_test(lim, test_boundary_sizes);
	tcase_set_timeout(lim, 60);
	suite_add_tcase(s, lim);

	tcase_add_test(rss, test_rss_returns);
	tcase_set_timeout(rss, 120);
	suite_add_tcase(s, rss);
	return s;
}

int main(void)
{
	return test_run_suite(core_suite());
}
