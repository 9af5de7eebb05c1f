/* SPDX-License-Identifier: MIT */
/*
 * Concurrency stress of one backend (ZPOOL_BACKEND), built to run clean
 * under ThreadSanitizer (make check-tsan).
 *
 * Worker threads allocate, verify, rewrite and free objects of a shared
 * handle table, one lock per entry, as the daemon's sector table does.
 * Meanwhile a shrinker thread calls zpool_shrink(); its evict callback
 * takes the entry's lock (the "caller lock" discipline of zpool.h), checks
 * that the entry still holds the handle, verifies the bytes and frees it.
 * Where the backend compacts, a third kind of thread calls zpool_compact(),
 * and the main thread keeps reading zpool_get_total_size(). At the end
 * every surviving object is checked byte for byte and everything is freed.
 *
 *   TEST_SEED=N      the base seed (printed); worker i uses N + i
 *   TEST_DURATION=S  seconds of stress (default 2)
 *
 * Interleavings depend on the scheduler, so a seed replays each thread's
 * choices but not their timing.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_zpool_common.h"

#define ENTRIES 2048
#define WORKERS 4

struct entry {
	pthread_mutex_t lock; /* protects the members below */
	unsigned long handle; /* 0: empty */
	size_t len;
	uint64_t seed;
};

struct stress {
	struct zpool *pool;
	struct entry entry[ENTRIES];
	double until;
	unsigned long base_seed;
	bool stop; /* atomic */

	/* Atomic counters. */
	unsigned long failures, ops, shrinks, evict_calls, evicted,
		evict_stale, evict_busy, compacts, compacted_pages;
};

struct worker {
	struct stress *st;
	pthread_t thread;
	int id;
};

static void stress_fail(struct stress *st, const char *what, unsigned long k)
{
	fprintf(stderr, "stress: %s (entry %lu)\n", what, k);
	__atomic_add_fetch(&st->failures, 1, __ATOMIC_RELAXED);
}

static void count(unsigned long *c, unsigned long n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static bool stopping(struct stress *st)
{
	return __atomic_load_n(&st->stop, __ATOMIC_ACQUIRE);
}

/* Reads an entry's object and compares it. Entry lock held. */
static bool entry_ok(struct stress *st, struct entry *e)
{
	const void *p = zpool_map_handle(st->pool, e->handle, ZPOOL_MM_RO);
	bool ok = p && tz_check(p, e->len, e->seed) < 0;

	zpool_unmap_handle(st->pool, e->handle);
	return ok;
}

/* Puts a new object in an empty entry. Entry lock held. */
static bool entry_fill(struct stress *st, struct entry *e, unsigned long k,
		       uint64_t *rnd)
{
	void *p;

	e->len = tz_size(rnd);
	e->seed = tz_next(rnd);
	if (zpool_malloc(st->pool, e->len, k, &e->handle) != 0 ||
	    e->handle == 0) {
		e->handle = 0;
		return false;
	}
	p = zpool_map_handle(st->pool, e->handle, ZPOOL_MM_WO);
	tz_fill(p, e->len, e->seed);
	zpool_unmap_handle(st->pool, e->handle);
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint64_t rnd = st->base_seed + (uint64_t)w->id;
	unsigned long n = 0;

	while (!stopping(st)) {
		unsigned long k = tz_below(&rnd, ENTRIES);
		struct entry *e = &st->entry[k];
		uint64_t r = tz_below(&rnd, 100);

		pthread_mutex_lock(&e->lock);
		if (!e->handle) {
			if (!entry_fill(st, e, k, &rnd))
				stress_fail(st, "malloc failed", k);
		} else if (!entry_ok(st, e)) {
			stress_fail(st, "object corrupt", k);
		} else if (r < 30) {
			zpool_free(st->pool, e->handle);
			e->handle = 0;
		} else if (r < 50) {
			/* A rewrite of the sector: a new object, then free. */
			unsigned long old = e->handle;

			if (!entry_fill(st, e, k, &rnd))
				stress_fail(st, "malloc failed", k);
			zpool_free(st->pool, old);
		} else if (r < 60) {
			unsigned char *p = zpool_map_handle(st->pool, e->handle,
							    ZPOOL_MM_RW);
			uint64_t seed2 = tz_next(&rnd);

			if (tz_check(p, e->len, e->seed) >= 0)
				stress_fail(st, "object corrupt (RW)", k);
			tz_fill(p, e->len, seed2);
			zpool_unmap_handle(st->pool, e->handle);
			e->seed = seed2;
		}
		pthread_mutex_unlock(&e->lock);
		n++;
	}
	count(&st->ops, n);
	return NULL;
}

/*
 * The evict callback, as the daemon writes it: the entry named by the
 * owner word is locked; if it still holds @handle, the object is "saved"
 * (here: verified) and freed; if not, its owner freed it meanwhile and
 * there is nothing to do. Now and then the lock is only tried, and a busy
 * entry refuses the eviction.
 */
static int stress_evict(void *arg, struct zpool *pool, unsigned long handle,
			uint64_t owner)
{
	struct stress *st = arg;
	unsigned long call;
	struct entry *e;

	if (owner >= ENTRIES) {
		stress_fail(st, "owner word out of range",
			    (unsigned long)owner);
		return -EINVAL;
	}
	e = &st->entry[owner];
	call = __atomic_add_fetch(&st->evict_calls, 1, __ATOMIC_RELAXED);
	if (call % 8 == 0) {
		if (pthread_mutex_trylock(&e->lock) != 0) {
			count(&st->evict_busy, 1);
			return -EAGAIN;
		}
	} else {
		pthread_mutex_lock(&e->lock);
	}
	if (e->handle != handle) {
		count(&st->evict_stale, 1);
	} else {
		if (!entry_ok(st, e))
			stress_fail(st, "evicted object corrupt",
				    (unsigned long)owner);
		zpool_free(pool, handle);
		e->handle = 0;
		count(&st->evicted, 1);
	}
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static void *shrinker_main(void *arg)
{
	struct stress *st = arg;
	uint64_t rnd = st->base_seed + 100;

	do {
		size_t want = (1 + tz_below(&rnd, 32)) * ZPOOL_PAGE_SIZE, rel;
		int ret = zpool_shrink(st->pool, want, &rel);

		if (ret != 0 && ret != -ENOENT && ret != -EAGAIN)
			stress_fail(st, "shrink: unexpected error", 0);
		if (ret == 0 && rel < want)
			stress_fail(st, "shrink released less than asked", 0);
		count(&st->shrinks, 1);
		usleep(500);
	} while (!stopping(st));
	return NULL;
}

static void *compactor_main(void *arg)
{
	struct stress *st = arg;

	do {
		long n = zpool_compact(st->pool);

		if (n < 0) {
			stress_fail(st, "compact failed", 0);
			break;
		}
		count(&st->compacts, 1);
		count(&st->compacted_pages, (unsigned long)n);
		usleep(200);
	} while (!stopping(st));
	return NULL;
}

START_TEST(test_stress)
{
	struct stress *st = calloc(1, sizeof(*st));
	struct worker w[WORKERS];
	pthread_t shrinker, compactor;
	bool compacts;
	uint64_t start, rnd;
	unsigned long live = 0;

	ck_assert_ptr_nonnull(st);
	st->base_seed = test_seed();
	st->until = tz_now() + (double)tz_env("TEST_DURATION", 2);
	printf("%s stress: TEST_SEED=%lu, %d workers, shrink%s\n",
	       ZPOOL_BACKEND, st->base_seed, WORKERS,
	       backend_is_zbud() ? "" : ", compact");
	fflush(stdout);
	st->pool = tz_create(&(struct zpool_ops){ stress_evict, st });
	start = zpool_get_total_size(st->pool);
	compacts = zpool_compact(st->pool) != -EOPNOTSUPP;
	if (backend_is_zbud())
		ck_assert(!compacts);

	/* Half the table is full before the threads start. */
	rnd = st->base_seed + 1000;
	for (unsigned long k = 0; k < ENTRIES; k++) {
		pthread_mutex_init(&st->entry[k].lock, NULL);
		if (k % 2 == 0)
			ck_assert(entry_fill(st, &st->entry[k], k, &rnd));
	}

	for (int i = 0; i < WORKERS; i++) {
		w[i] = (struct worker){ .st = st, .id = i };
		ck_assert_int_eq(
			pthread_create(&w[i].thread, NULL, worker_main, &w[i]),
			0);
	}
	ck_assert_int_eq(pthread_create(&shrinker, NULL, shrinker_main, st), 0);
	if (compacts)
		ck_assert_int_eq(
			pthread_create(&compactor, NULL, compactor_main, st),
			0);

	/* total_size is lock-free: read it all the while. */
	while (tz_now() < st->until) {
		ck_assert_uint_gt(zpool_get_total_size(st->pool), 0);
		usleep(1000);
	}
	__atomic_store_n(&st->stop, true, __ATOMIC_RELEASE);

	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i].thread, NULL);
	pthread_join(shrinker, NULL);
	if (compacts)
		pthread_join(compactor, NULL);

	for (unsigned long k = 0; k < ENTRIES; k++) {
		struct entry *e = &st->entry[k];

		if (e->handle) {
			ck_assert_msg(entry_ok(st, e), "entry %lu corrupt", k);
			zpool_free(st->pool, e->handle);
			live++;
		}
		pthread_mutex_destroy(&e->lock);
	}
	printf("%lu ops, %lu shrinks (%lu evicted, %lu stale, %lu busy), "
	       "%lu compacts (%lu pages), %lu live at the end\n",
	       st->ops, st->shrinks, st->evicted, st->evict_stale,
	       st->evict_busy, st->compacts, st->compacted_pages, live);
	ck_assert_uint_eq(st->failures, 0);
	ck_assert_uint_gt(st->ops, 0);
	ck_assert_uint_gt(st->shrinks, 0);
	ck_assert_uint_gt(st->evicted, 0);
	ck_assert_uint_le(zpool_get_total_size(st->pool),
			  start + TZ_EMPTY_SLACK);
	if (backend_is_zbud())
		ck_assert_uint_eq(zpool_get_total_size(st->pool), start);
	zpool_destroy_pool(st->pool);
	free(st);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("zpool_stress-" ZPOOL_BACKEND);
	TCase *tc = tcase_create("stress");

	tcase_add_test(tc, test_stress);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(stress_suite());
}
