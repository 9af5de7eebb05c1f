/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the device suites (tests/unit/test_daemon_device.c,
 * tests/unit/test_daemon_evict.c), which run every test once per allocator
 * built in: the list of allocators and the seed, a reproducible generator,
 * data of every kind the codec tells apart, and a byte-for-byte check of a
 * device against a shadow copy.
 *
 * Each including file gets its own copy of the variables below (they are
 * static); test_daemon_init() fills them in from main().
 *
 * Environment:
 *   TEST_SEED=N        replay one run (the seed is always printed)
 *   TEST_ITERATIONS=N  length of the randomized and concurrent tests
 */
#ifndef ZRAMD_TEST_DAEMON_COMMON_H
#define ZRAMD_TEST_DAEMON_COMMON_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "stats.h"
#include "test_util.h"
#include "zpool.h"

#define SEC 4096u

/* The seed of this run, and the allocators a loop test's _i indexes. */
static unsigned long seed;
static const char *backends[8];
static int nbackends;

static inline void add_backend(const char *type, void *arg)
{
	(void)arg;
	if (nbackends < 8)
		backends[nbackends++] = type;
}

/*
 * For main(): lists the allocators built in and picks the seed, and prints
 * both after @prog. Return: false (with a message) if no allocator is
 * built in.
 */
static inline bool test_daemon_init(const char *prog)
{
	zpool_for_each_type(add_backend, NULL);
	seed = test_seed();
	printf("%s: TEST_SEED=%lu, allocators:", prog, seed);
	for (int i = 0; i < nbackends; i++)
		printf(" %s", backends[i]);
	printf("\n");
	if (nbackends == 0) {
		fprintf(stderr, "no zpool backend is built in\n");
		return false;
	}
	return true;
}

/* splitmix64: a small, good, reproducible generator. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* $TEST_ITERATIONS, else @def (a quarter of it under a sanitizer). */
static inline uint64_t iterations(uint64_t def)
{
	const char *e = getenv("TEST_ITERATIONS");

	if (e)
		return strtoull(e, NULL, 0);
	return TEST_RSS_CHECKS ? def : def / 4;
}

/* Data of every kind the codec tells apart. */
enum kind { K_ZERO, K_SAME, K_TEXT, K_RANDOM, K_MIXED, K_NKINDS };

/* Fills @n bytes at @p with data of kind @k, drawn from @s. */
static inline void fill(unsigned char *p, size_t n, enum kind k, uint64_t *s)
{
	uint64_t w = rnd(s) | 1;

	switch (k) {
	case K_ZERO:
		memset(p, 0, n);
		break;
	case K_SAME:
		for (size_t i = 0; i < n; i++)
			p[i] = ((unsigned char *)&w)[i & 7];
		break;
	case K_TEXT:
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)("zramd sector data "[(i + w) %
								    18]);
		break;
	case K_RANDOM:
		for (size_t i = 0; i < n; i += 8) {
			uint64_t r = rnd(s);

			memcpy(p + i, &r, n - i < 8 ? n - i : 8);
		}
		break;
	case K_MIXED:
		fill(p, n, K_TEXT, s);
		fill(p, n / 3, K_RANDOM, s);
		break;
	default:
		break;
	}
}

/* Return: the device's counter @k now. */
static inline uint64_t stat_of(struct zdev *dev, enum zstat k)
{
	struct zstats s;

	zdev_get_stats(dev, &s);
	return s.v[k];
}

/* The device reads back exactly @shadow over [off, off + len). */
static inline void check_range(struct zdev *dev, const unsigned char *shadow,
			       uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	int rc = zdev_read(dev, buf, len, off);

	ck_assert_msg(rc == 0, "read %zu at %llu: %s", len,
		      (unsigned long long)off, strerror(-rc));
	/* ck_assert costs a write to a pipe: compare first, assert once. */
	if (memcmp(buf, shadow + off, len) != 0) {
		size_t i = 0;

		while (buf[i] == shadow[off + i])
			i++;
		ck_abort_msg("byte %llu: got %#x want %#x",
			     (unsigned long long)(off + i), buf[i],
			     shadow[off + i]);
	}
	free(buf);
}

#endif
