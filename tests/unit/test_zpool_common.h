/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the per-backend zpool suites (tests/unit/test_zpool_*.c).
 *
 * Each suite is compiled once per backend with -DZPOOL_BACKEND='"zbud"' or
 * '"zsmalloc"'. Object contents are derived from a per-object seed, so any
 * object can be checked byte for byte without keeping a copy of it.
 *
 * Environment (randomized suites):
 *   TEST_SEED=N        replay one run (the seed is always printed)
 *   TEST_ITERATIONS=N  operations of a randomized test
 *   TEST_DURATION=S    seconds a randomized or stress test may run at most
 */
#ifndef ZRAMD_TEST_ZPOOL_COMMON_H
#define ZRAMD_TEST_ZPOOL_COMMON_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zpool.h"
#include "test_util.h"

#ifndef ZPOOL_BACKEND
#error "compile with -DZPOOL_BACKEND='\"zbud\"' or '\"zsmalloc\"'"
#endif

/* Whether this build of the suite tests zbud (some checks are zbud's own). */
static inline bool backend_is_zbud(void)
{
	return strcmp(ZPOOL_BACKEND, ZPOOL_TYPE_ZBUD) == 0;
}

/* Sanitizers slow everything down; tests scale their sizes by this. */
#if TEST_RSS_BUILD
#define TEST_SANITIZED 0
#else
#define TEST_SANITIZED 1
#endif

/* splitmix64: a small, good, reproducible generator. */
static inline uint64_t tz_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A number in [0, n). */
static inline uint64_t tz_below(uint64_t *state, uint64_t n)
{
	return tz_next(state) % n;
}

/* Fills @buf with @len bytes derived from @seed (never all zero). */
static inline void tz_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t st = seed, w = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			w = tz_next(&st) | 1;
		p[i] = (unsigned char)(w >> (8 * (i % 8)));
	}
}

/*
 * Checks @buf against tz_fill(@seed). Return: the index of the first wrong
 * byte, or -1 if all @len bytes are right.
 */
static inline long tz_check(const void *buf, size_t len, uint64_t seed)
{
	const unsigned char *p = buf;
	uint64_t st = seed, w = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			w = tz_next(&st) | 1;
		if (p[i] != (unsigned char)(w >> (8 * (i % 8))))
			return (long)i;
	}
	return -1;
}

/* Writes a new object's contents through a ZPOOL_MM_WO mapping. */
static inline void tz_write(struct zpool *pool, unsigned long handle,
			    size_t len, uint64_t seed)
{
	void *p = zpool_map_handle(pool, handle, ZPOOL_MM_WO);

	ck_assert_ptr_nonnull(p);
	tz_fill(p, len, seed);
	zpool_unmap_handle(pool, handle);
}

/* Return: whether the object reads back as tz_fill(@seed) (mapped RO). */
static inline bool tz_verify(struct zpool *pool, unsigned long handle,
			     size_t len, uint64_t seed)
{
	const void *p = zpool_map_handle(pool, handle, ZPOOL_MM_RO);
	long bad;

	ck_assert_ptr_nonnull(p);
	bad = tz_check(p, len, seed);
	zpool_unmap_handle(pool, handle);
	if (bad >= 0)
		fprintf(stderr,
			"object %#lx (%zu bytes, seed %#llx): byte %ld wrong\n",
			handle, len, (unsigned long long)seed, bad);
	return bad < 0;
}

/*
 * A size from the mix zramd sees: mostly compressed sectors of 500 to 3000
 * bytes, some tiny ones, some incompressible (4096), some anything.
 */
static inline size_t tz_size(uint64_t *st)
{
	uint64_t r = tz_below(st, 100);

	if (r < 70)
		return 500 + tz_below(st, 2501);
	if (r < 82)
		return 1 + tz_below(st, 64);
	if (r < 90)
		return ZPOOL_MAX_SIZE;
	return 1 + tz_below(st, ZPOOL_MAX_SIZE);
}

/* An unsigned number from the environment, or @def. */
static inline unsigned long tz_env(const char *name, unsigned long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoul(s, NULL, 0) : def;
}

/* Seconds since an arbitrary point (CLOCK_MONOTONIC). */
static inline double tz_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Creates a pool of the backend under test; fails the test if it cannot. */
static inline struct zpool *tz_create(const struct zpool_ops *ops)
{
	struct zpool *pool = zpool_create_pool(ZPOOL_BACKEND, ops, false);

	ck_assert_msg(pool != NULL, "cannot create a %s pool", ZPOOL_BACKEND);
	ck_assert_str_eq(zpool_get_type(pool), ZPOOL_BACKEND);
	return pool;
}

/*
 * How far total_size may stay above its starting value once every object
 * is freed: metadata a backend keeps for reuse (handle slabs and the like),
 * but no page of objects.
 */
#define TZ_EMPTY_SLACK (64u * 1024)

#endif
