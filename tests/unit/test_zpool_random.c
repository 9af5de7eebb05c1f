/* SPDX-License-Identifier: MIT */
/*
 * A seeded random walk over one backend (ZPOOL_BACKEND) against a shadow
 * model: malloc, free, map RO to verify, map RW to rewrite, map WO to
 * overwrite, and now and then a full check of every live object. Every
 * object's bytes are derived from its own seed, so a check is byte exact.
 *
 *   TEST_SEED=N        replay a run (the seed is printed)
 *   TEST_ITERATIONS=N  operations (default 100000; a quarter under
 *                      sanitizers)
 *   TEST_DURATION=S    stop early after S seconds (default 10)
 *
 * A second test runs the same walk with zpool_shrink() and, where the
 * backend has it, zpool_compact() mixed in, the evict callback updating the
 * model.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_zpool_common.h"

#define SLOTS 4096

struct slot {
	unsigned long handle; /* 0: empty */
	size_t len;
	uint64_t seed;
};

struct model {
	struct zpool *pool;
	struct slot slot[SLOTS];
	size_t live, bytes;
	uint64_t st;
	unsigned long evicted, refused;
	bool refuse_some;
};

static struct model *m;

/* Evict callback: the shadow model is the owner; owner words are slots. */
static int model_evict(void *arg, struct zpool *pool, unsigned long handle,
		       uint64_t owner)
{
	struct model *mm = arg;
	struct slot *s;

	ck_assert_uint_lt(owner, SLOTS);
	s = &mm->slot[owner];
	ck_assert_uint_eq(s->handle, handle);
	ck_assert(tz_verify(pool, handle, s->len, s->seed));
	if (mm->refuse_some && tz_below(&mm->st, 16) == 0) {
		mm->refused++;
		return -EAGAIN;
	}
	zpool_free(pool, handle);
	s->handle = 0;
	mm->live--;
	mm->bytes -= s->len;
	mm->evicted++;
	return 0;
}

static void model_setup(void)
{
	m = calloc(1, sizeof(*m));
	ck_assert_ptr_nonnull(m);
}

static void model_teardown(void)
{
	zpool_destroy_pool(m->pool);
	free(m);
	m = NULL;
}

static void verify_all(void)
{
	for (int i = 0; i < SLOTS; i++)
		if (m->slot[i].handle)
			ck_assert_msg(tz_verify(m->pool, m->slot[i].handle,
						m->slot[i].len,
						m->slot[i].seed),
				      "slot %d corrupt", i);
}

static void walk(bool with_shrink)
{
	unsigned long seed = test_seed();
	unsigned long iters = tz_env("TEST_ITERATIONS", 100000);
	double until = tz_now() + (double)tz_env("TEST_DURATION", 10);
	uint64_t start;
	unsigned long i, ops[8] = { 0 };
	long compact_pages = 0;

	if (TEST_SANITIZED)
		iters /= 4;
	printf("%s walk%s: TEST_SEED=%lu TEST_ITERATIONS=%lu\n", ZPOOL_BACKEND,
	       with_shrink ? " with shrink" : "", seed, iters);
	fflush(stdout);
	m->st = seed;
	m->refuse_some = with_shrink;
	m->pool = tz_create(with_shrink ? &(struct zpool_ops){ model_evict, m }
					: NULL);
	start = zpool_get_total_size(m->pool);

	for (i = 0; i < iters; i++) {
		unsigned int k = (unsigned int)tz_below(&m->st, SLOTS);
		struct slot *s = &m->slot[k];
		uint64_t r = tz_below(&m->st, 1000);
		unsigned char *p;

		if (i % 1024 == 0 && tz_now() > until)
			break;
		if (!s->handle) {
			/* Empty slot: allocate, fill (WO or RW mapping). */
			s->len = tz_size(&m->st);
			s->seed = tz_next(&m->st);
			ck_assert_int_eq(zpool_malloc(m->pool, s->len, k,
						      &s->handle),
					 0);
			ck_assert_uint_ne(s->handle, 0);
			p = zpool_map_handle(m->pool, s->handle,
					     r & 1 ? ZPOOL_MM_WO : ZPOOL_MM_RW);
			tz_fill(p, s->len, s->seed);
			zpool_unmap_handle(m->pool, s->handle);
			m->live++;
			m->bytes += s->len;
			ops[0]++;
		} else if (r < 400) {
			ck_assert(tz_verify(m->pool, s->handle, s->len,
					    s->seed));
			zpool_free(m->pool, s->handle);
			s->handle = 0;
			m->live--;
			m->bytes -= s->len;
			ops[1]++;
		} else if (r < 800) {
			ck_assert(tz_verify(m->pool, s->handle, s->len,
					    s->seed));
			ops[2]++;
		} else if (r < 900) {
			/* RW: check the old bytes, write new ones. */
			uint64_t seed2 = tz_next(&m->st);

			p = zpool_map_handle(m->pool, s->handle, ZPOOL_MM_RW);
			ck_assert_int_eq(tz_check(p, s->len, s->seed), -1);
			tz_fill(p, s->len, seed2);
			zpool_unmap_handle(m->pool, s->handle);
			s->seed = seed2;
			ops[3]++;
		} else if (r < 990) {
			s->seed = tz_next(&m->st);
			tz_write(m->pool, s->handle, s->len, s->seed);
			ops[4]++;
		} else if (r < 996) {
			if (!with_shrink)
				continue;
			size_t want = (1 + tz_below(&m->st, 16)) *
				      ZPOOL_PAGE_SIZE,
			       rel;
			uint64_t before = zpool_get_total_size(m->pool);
			int ret = zpool_shrink(m->pool, want, &rel);

			ck_assert_msg(ret == 0 || ret == -EAGAIN ||
					      ret == -ENOENT,
				      "shrink: %d", ret);
			if (ret == 0)
				ck_assert_uint_ge(rel, want);
			ck_assert_uint_le(rel, before);
			ops[5]++;
		} else if (with_shrink) {
			long n = zpool_compact(m->pool);

			ck_assert(n >= 0 || n == -EOPNOTSUPP);
			if (n > 0)
				compact_pages += n;
			ops[6]++;
		}
		if (i % 16384 == 16383) {
			verify_all();
			ops[7]++;
		}
		/* The pool never holds less than the data in it. */
		if (i % 256 == 0)
			ck_assert_uint_ge(zpool_get_total_size(m->pool),
					  start + m->bytes);
	}
	printf("%lu ops: %lu malloc, %lu free, %lu verify, %lu rw, %lu wo, "
	       "%lu shrink (%lu evicted, %lu refused), %lu compact "
	       "(%ld pages), %lu full checks; %zu live, %zu bytes, "
	       "total_size %llu\n",
	       i, ops[0], ops[1], ops[2], ops[3], ops[4], ops[5], m->evicted,
	       m->refused, ops[6], compact_pages, ops[7], m->live, m->bytes,
	       (unsigned long long)zpool_get_total_size(m->pool));

	verify_all();
	for (int k = 0; k < SLOTS; k++)
		if (m->slot[k].handle) {
			zpool_free(m->pool, m->slot[k].handle);
			m->slot[k].handle = 0;
		}
	ck_assert_uint_le(zpool_get_total_size(m->pool),
			  start + TZ_EMPTY_SLACK);
	if (backend_is_zbud())
		ck_assert_uint_eq(zpool_get_total_size(m->pool), start);
}

START_TEST(test_random_walk)
{
	walk(false);
}
END_TEST

START_TEST(test_random_walk_shrink)
{
	walk(true);
}
END_TEST

static Suite *random_suite(void)
{
	Suite *s = suite_create("zpool_random-" ZPOOL_BACKEND);
	TCase *tc = tcase_create("random");

	tcase_add_checked_fixture(tc, model_setup, model_teardown);
	tcase_add_test(tc, test_random_walk);
	tcase_add_test(tc, test_random_walk_shrink);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(random_suite());
}
