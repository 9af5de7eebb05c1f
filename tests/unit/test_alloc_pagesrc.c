/* SPDX-License-Identifier: MIT */
/* Unit tests of the page source: runs, reuse, zero fill, RSS given back. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pagesrc.h"
#include "test_util.h"

START_TEST(test_alloc_free_zeroed)
{
	struct pagesrc *ps = pagesrc_create();
	char *p;

	ck_assert_ptr_nonnull(ps);
	p = pagesrc_alloc(ps, 3);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 3 * PAGESRC_PAGE_SIZE);
	for (size_t i = 0; i < 3 * PAGESRC_PAGE_SIZE; i++)
		ck_assert_int_eq(p[i], 0);
	memset(p, 0xab, 3 * PAGESRC_PAGE_SIZE);
	pagesrc_free(ps, p, 3);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 0);
	/* The same run comes back, zero-filled again. */
	p = pagesrc_alloc(ps, 3);
	for (size_t i = 0; i < 3 * PAGESRC_PAGE_SIZE; i++)
		ck_assert_int_eq(p[i], 0);
	pagesrc_free(ps, p, 3);
	pagesrc_destroy(ps);
}
END_TEST

/*
 * In locked memory (mlockall, as under nbdkit --swap or mlock=onfault) the
 * kernel refuses MADV_DONTNEED: a released run must still come back zeroed.
 * mlock() of the run's pages locks its part of the arena the same way.
 */
START_TEST(test_locked_zeroed)
{
	struct pagesrc *ps = pagesrc_create();
	char *p, *q;

	p = pagesrc_alloc(ps, 3);
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(mlock(p, 3 * PAGESRC_PAGE_SIZE) == 0, "mlock: %s",
		      strerror(errno));
	memset(p, 0xab, 3 * PAGESRC_PAGE_SIZE);
	pagesrc_free(ps, p, 3); /* a tiny pool: not cached, released */
	q = pagesrc_alloc(ps, 3);
	ck_assert_ptr_eq(q, p);
	for (size_t i = 0; i < 3 * PAGESRC_PAGE_SIZE; i++)
		ck_assert_int_eq(q[i], 0);
	pagesrc_free(ps, q, 3);
	pagesrc_destroy(ps);
}
END_TEST

START_TEST(test_bad_run)
{
	struct pagesrc *ps = pagesrc_create();

	errno = 0;
	ck_assert_ptr_null(pagesrc_alloc(ps, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(pagesrc_alloc(ps, PAGESRC_MAX_RUN + 1));
	pagesrc_destroy(ps);
}
END_TEST

/* Runs never overlap, across several arenas, and all memory goes back. */
START_TEST(test_many_runs_rss)
{
	enum { N = 4000 };
	struct pagesrc *ps = pagesrc_create();
	static char *runs[N];
	static unsigned int len[N];
	long rss0 = test_rss_kib();

	for (int i = 0; i < N; i++) {
		len[i] = 1 + (unsigned int)(i * 7) % 16;
		runs[i] = pagesrc_alloc(ps, len[i]);
		ck_assert_ptr_nonnull(runs[i]);
		memset(runs[i], i & 0xff, (size_t)len[i] * PAGESRC_PAGE_SIZE);
	}
	for (int i = 0; i < N; i++)
		for (size_t j = 0; j < (size_t)len[i] * PAGESRC_PAGE_SIZE;
		     j += 512)
			ck_assert_int_eq((unsigned char)runs[i][j], i & 0xff);
	if (TEST_RSS_CHECKS)
		ck_assert_int_gt(test_rss_kib() - rss0, 100 * 1024);
	for (int i = 0; i < N; i += 2)
		pagesrc_free(ps, runs[i], len[i]);
	for (int i = 1; i < N; i += 2)
		pagesrc_free(ps, runs[i], len[i]);
	/* At most the release cache is still held; flushing gives it back. */
	ck_assert_uint_le(pagesrc_bytes_used(ps), 256 * PAGESRC_PAGE_SIZE);
	pagesrc_flush(ps);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 0);
	if (TEST_RSS_CHECKS)
		ck_assert_int_lt(test_rss_kib() - rss0, 4 * 1024);
	pagesrc_destroy(ps);
}
END_TEST

/*
 * The release cache: in a pool with enough pages in use, a freed run comes
 * back from the cache (same address) zero-filled and still counted; in a
 * tiny pool nothing is cached and the bytes fall at once.
 */
START_TEST(test_release_cache)
{
	struct pagesrc *ps = pagesrc_create();
	static char *base[1024];
	char *p, *q;

	p = pagesrc_alloc(ps, 2);
	memset(p, 0x5a, 2 * PAGESRC_PAGE_SIZE);
	pagesrc_free(ps, p, 2);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 0); /* tiny: not cached */

	for (int i = 0; i < 1024; i++)
		base[i] = pagesrc_alloc(ps, 1);
	p = pagesrc_alloc(ps, 2);
	memset(p, 0x5a, 2 * PAGESRC_PAGE_SIZE);
	pagesrc_free(ps, p, 2);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 1026 * PAGESRC_PAGE_SIZE);
	q = pagesrc_alloc(ps, 2);
	ck_assert_ptr_eq(q, p);
	for (size_t i = 0; i < 2 * PAGESRC_PAGE_SIZE; i++)
		ck_assert_int_eq(q[i], 0);
	pagesrc_free(ps, q, 2);
	for (int i = 0; i < 1024; i++)
		pagesrc_free(ps, base[i], 1);
	pagesrc_flush(ps);
	ck_assert_uint_eq(pagesrc_bytes_used(ps), 0);
	pagesrc_destroy(ps);
}
END_TEST

static Suite *pagesrc_suite(void)
{
	Suite *s = suite_create("pagesrc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_alloc_free_zeroed);
	tcase_add_test(tc, test_locked_zeroed);
	tcase_add_test(tc, test_bad_run);
	tcase_add_test(tc, test_many_runs_rss);
	tcase_add_test(tc, test_release_cache);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(pagesrc_suite());
}
