/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the C benchmarks (bench_alloc.c, bench_backing.c,
 * bench_pack.c, bench_promote.c): a monotonic clock in seconds and the
 * splitmix64 generator their data and access orders come from (the same
 * sequence for the same seed, so runs compare).
 */
#ifndef ZRAMD_BENCH_COMMON_H
#define ZRAMD_BENCH_COMMON_H

#include <stdint.h>
#include <time.h>

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

#endif
