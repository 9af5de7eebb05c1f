/* SPDX-License-Identifier: MIT */
/*
 * zpool_shrink() against one backend (ZPOOL_BACKEND): what is evicted (the
 * coldest objects, with the right owner words), how much is released, the
 * errors (-EINVAL, -ENOENT, a callback's refusal), calls back into the pool
 * from the callback, and the eviction race of zpool.h: the owner frees an
 * object from another thread while the callback is still reading it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_zpool_common.h"

#define MAX_OBJS 256
#define OBJ_SIZE 1500 /* zbud: two a page */
#define JUNK_OWNER (UINT64_C(1) << 32) /* owner words of the racer's junk */

enum evict_mode {
	EVICT_FREE,	   /* verify, then free: the normal callback */
	EVICT_REENTER,	   /* as FREE, and malloc/map/free another object */
	EVICT_REFUSE_ONCE, /* refuse the first call with -EBUSY, then FREE */
	EVICT_KEEP,	   /* verify, return 0 without freeing */
	EVICT_RACE_BEFORE, /* another thread frees (and allocates), then read */
	EVICT_RACE_DURING, /* map, another thread frees, go on reading */
};

struct obj {
	unsigned long handle;
	size_t len;
	uint64_t seed;
	bool live;
};

/*
 * The test's view of the pool, the evict callback's context. The callback
 * runs in the test's own thread (zpool_shrink() is called from it), so it
 * may use ck_assert.
 */
struct shrink_ctx {
	struct zpool *pool;
	enum evict_mode mode;
	struct obj objs[MAX_OBJS];
	int nobjs;
	uint64_t evicted[MAX_OBJS * 4]; /* owners, in the order evicted */
	int nevicted, calls, refused;

	/* The racing thread of EVICT_RACE_*. */
	pthread_t racer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long race_handle; /* to free; 0: nothing to do */
	bool race_done, race_stop;
	struct obj junk[MAX_OBJS * 4]; /* the racer's own allocations */
	int njunk;
};

static struct shrink_ctx *ctx;

static void *racer_main(void *arg)
{
	struct shrink_ctx *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		unsigned long h;

		while (!c->race_handle && !c->race_stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->race_stop)
			break;
		h = c->race_handle;
		c->race_handle = 0;
		pthread_mutex_unlock(&c->lock);

		/* The owner frees the object... */
		zpool_free(c->pool, h);
		/* ...and the pool hands its room to new data, if it may. */
		for (int i = 0; i < 8 && c->njunk < MAX_OBJS * 4; i++) {
			struct obj *j = &c->junk[c->njunk];
			unsigned char *p;

			if (zpool_malloc(c->pool, OBJ_SIZE,
					 JUNK_OWNER + c->njunk,
					 &j->handle) != 0)
				break;
			p = zpool_map_handle(c->pool, j->handle, ZPOOL_MM_WO);
			memset(p, 0xee, OBJ_SIZE);
			zpool_unmap_handle(c->pool, j->handle);
			j->len = OBJ_SIZE;
			j->live = true;
			c->njunk++;
		}

		pthread_mutex_lock(&c->lock);
		c->race_done = true;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Has the racer free @handle (and allocate junk). */
static void race_start(struct shrink_ctx *c, unsigned long handle)
{
	pthread_mutex_lock(&c->lock);
	c->race_done = false;
	c->race_handle = handle;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Waits for the racer: @bound_s 0 waits for good, else at most so long. */
static bool race_wait(struct shrink_ctx *c, int bound_s)
{
	struct timespec until;
	bool done;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += bound_s;
	pthread_mutex_lock(&c->lock);
	while (!c->race_done) {
		if (bound_s == 0)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, &until))
			break;
	}
	done = c->race_done;
	pthread_mutex_unlock(&c->lock);
	return done;
}

static int test_evict(void *arg, struct zpool *pool, unsigned long handle,
		      uint64_t owner)
{
	struct shrink_ctx *c = arg;
	struct obj *o;
	const unsigned char *p;

	ck_assert_ptr_eq(pool, c->pool);
	if (owner >= JUNK_OWNER) {
		/* The racer's junk, evicted in turn: 0xee throughout. */
		o = &c->junk[owner - JUNK_OWNER];
		ck_assert(o->live);
		ck_assert_uint_eq(handle, o->handle);
		p = zpool_map_handle(pool, handle, ZPOOL_MM_RO);
		for (size_t k = 0; k < o->len; k++)
			ck_assert_uint_eq(p[k], 0xee);
		zpool_unmap_handle(pool, handle);
		zpool_free(pool, handle);
		o->live = false;
		return 0;
	}
	ck_assert_uint_lt(owner, (uint64_t)c->nobjs);
	o = &c->objs[owner];
	ck_assert_msg(o->live, "owner %llu evicted twice or after free",
		      (unsigned long long)owner);
	ck_assert_uint_eq(handle, o->handle);
	c->calls++;

	switch (c->mode) {
	case EVICT_REFUSE_ONCE:
		if (c->refused++ == 0)
			return -EBUSY;
		break;
	case EVICT_KEEP:
		ck_assert(tz_verify(pool, handle, o->len, o->seed));
		return 0;
	case EVICT_RACE_BEFORE:
		race_start(c, handle);
		race_wait(c, 0);
		o->live = false;
		ck_assert(tz_verify(pool, handle, o->len, o->seed));
		c->evicted[c->nevicted++] = owner;
		return 0; /* the owner freed it: not ours to free */
	case EVICT_RACE_DURING: {
		bool freed;

		p = zpool_map_handle(pool, handle, ZPOOL_MM_RO);
		ck_assert_int_eq(tz_check(p, o->len / 2, o->seed), -1);
		/*
		 * A backend whose mapping holds a lock may make the free
		 * wait for the unmap: then wait no more than a moment.
		 */
		race_start(c, handle);
		freed = race_wait(c, 2);
		ck_assert_int_eq(tz_check(p, o->len, o->seed), -1);
		zpool_unmap_handle(pool, handle);
		if (!freed)
			race_wait(c, 0); /* the free ends after the unmap */
		o->live = false;
		c->evicted[c->nevicted++] = owner;
		return 0;
	}
	case EVICT_REENTER: {
		unsigned long other;

		ck_assert_int_eq(zpool_malloc(pool, 100, 0, &other), 0);
		tz_write(pool, other, 100, 99);
		ck_assert(tz_verify(pool, other, 100, 99));
		zpool_free(pool, other);
		break;
	}
	default:
		break;
	}
	ck_assert(tz_verify(pool, handle, o->len, o->seed));
	zpool_free(pool, handle);
	o->live = false;
	c->evicted[c->nevicted++] = owner;
	return 0;
}

static void setup(void)
{
	ctx = calloc(1, sizeof(*ctx));
	ck_assert_ptr_nonnull(ctx);
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->cond, NULL);
	ctx->pool = tz_create(&(struct zpool_ops){ test_evict, ctx });
	ck_assert_int_eq(pthread_create(&ctx->racer, NULL, racer_main, ctx),
			 0);
}

static void teardown(void)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->race_stop = true;
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
	pthread_join(ctx->racer, NULL);
	for (int i = 0; i < ctx->nobjs; i++)
		if (ctx->objs[i].live)
			ck_assert(tz_verify(ctx->pool, ctx->objs[i].handle,
					    ctx->objs[i].len,
					    ctx->objs[i].seed));
	zpool_destroy_pool(ctx->pool);
	pthread_cond_destroy(&ctx->cond);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	ctx = NULL;
}

/* Allocates @n objects of @len bytes, owners in allocation order. */
static void fill(int n, size_t len)
{
	for (int i = 0; i < n; i++) {
		struct obj *o = &ctx->objs[ctx->nobjs];

		ck_assert_int_lt(ctx->nobjs, MAX_OBJS);
		ck_assert_int_eq(zpool_malloc(ctx->pool, len,
					      (uint64_t)ctx->nobjs, &o->handle),
				 0);
		o->len = len;
		o->seed = 0x1000 + (uint64_t)ctx->nobjs;
		o->live = true;
		tz_write(ctx->pool, o->handle, len, o->seed);
		ctx->nobjs++;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Asserts the evicted owners are exactly 0, 1, ..., nevicted - 1. */
static void assert_evicted_prefix(void)
{
	uint64_t sorted[MAX_OBJS * 4];

	memcpy(sorted, ctx->evicted, sizeof(uint64_t) * ctx->nevicted);
	qsort(sorted, ctx->nevicted, sizeof(uint64_t), cmp_u64);
	for (int i = 0; i < ctx->nevicted; i++)
		ck_assert_msg(sorted[i] == (uint64_t)i,
			      "evicted owners are not the oldest: #%d is %llu",
			      i, (unsigned long long)sorted[i]);
}

static void assert_live_intact(void)
{
	for (int i = 0; i < ctx->nobjs; i++)
		if (ctx->objs[i].live)
			ck_assert(tz_verify(ctx->pool, ctx->objs[i].handle,
					    ctx->objs[i].len,
					    ctx->objs[i].seed));
}

START_TEST(test_shrink_no_ops)
{
	struct zpool *pool = tz_create(NULL);
	struct zpool *pool2 = tz_create(&(struct zpool_ops){ NULL, NULL });
	size_t rel = 1;
	unsigned long h;

	ck_assert_int_eq(zpool_malloc(pool, 100, 0, &h), 0);
	ck_assert_int_eq(zpool_shrink(pool, 4096, &rel), -EINVAL);
	ck_assert_uint_eq(rel, 0);
	ck_assert_int_eq(zpool_shrink(pool2, 4096, NULL), -EINVAL);
	zpool_free(pool, h);
	zpool_destroy_pool(pool2);
	zpool_destroy_pool(pool);
}
END_TEST

START_TEST(test_shrink_zero)
{
	size_t rel = 1;

	fill(8, OBJ_SIZE);
	ck_assert_int_eq(zpool_shrink(ctx->pool, 0, &rel), 0);
	ck_assert_uint_eq(rel, 0);
	ck_assert_int_eq(ctx->calls, 0);
}
END_TEST

/*
 * Objects allocated earliest, never touched since, go first; total_size
 * falls by at least what was asked; everything else stays intact.
 */
START_TEST(test_shrink_coldest)
{
	const size_t want = 3 * ZPOOL_PAGE_SIZE;
	uint64_t before, after;
	size_t rel;

	ctx->mode = _i ? EVICT_REENTER : EVICT_FREE;
	fill(128, OBJ_SIZE);
	before = zpool_get_total_size(ctx->pool);
	ck_assert_int_eq(zpool_shrink(ctx->pool, want, &rel), 0);
	after = zpool_get_total_size(ctx->pool);
	ck_assert_uint_ge(rel, want);
	ck_assert_uint_ge(before - after, want);
	ck_assert_int_ge(ctx->nevicted, 1);
	ck_assert_int_eq(ctx->calls, ctx->nevicted);
	assert_evicted_prefix();
	if (backend_is_zbud()) {
		/* Exactly the three oldest pages, two buddies each. */
		ck_assert_int_eq(ctx->nevicted, 6);
		ck_assert_uint_eq(rel, before - after);
	}
	assert_live_intact();

	/* The next shrink goes on with the next oldest. */
	ck_assert_int_eq(zpool_shrink(ctx->pool, want, &rel), 0);
	ck_assert_uint_ge(rel, want);
	assert_evicted_prefix();
	if (backend_is_zbud())
		ck_assert_int_eq(ctx->nevicted, 12);
	assert_live_intact();
}
END_TEST

/*
 * zbud: a page moves to the LRU head when an object is allocated into it,
 * so a page filled earlier but allocated into since outlives a younger one.
 */
START_TEST(test_zbud_lru_touch)
{
	size_t rel;

	fill(4, OBJ_SIZE); /* page P: 0, 1; page Q: 2, 3 */
	zpool_free(ctx->pool, ctx->objs[1].handle);
	ctx->objs[1].live = false;
	fill(1, OBJ_SIZE); /* 4 goes into P's free buddy: P is now hottest */
	ck_assert_int_eq(zpool_shrink(ctx->pool, ZPOOL_PAGE_SIZE, &rel), 0);
	ck_assert_int_eq(ctx->nevicted, 2);
	qsort(ctx->evicted, 2, sizeof(uint64_t), cmp_u64);
	ck_assert_uint_eq(ctx->evicted[0], 2);
	ck_assert_uint_eq(ctx->evicted[1], 3);
	assert_live_intact();
}
END_TEST

/* More than the pool holds: everything is evicted, then -ENOENT. */
START_TEST(test_shrink_too_much)
{
	uint64_t start = zpool_get_total_size(ctx->pool), full;
	size_t rel;

	fill(21, OBJ_SIZE);
	fill(3, ZPOOL_MAX_SIZE);
	fill(6, 10);
	full = zpool_get_total_size(ctx->pool);
	ck_assert_int_eq(zpool_shrink(ctx->pool, 2 * full, &rel), -ENOENT);
	ck_assert_int_eq(ctx->nevicted, 30);
	assert_evicted_prefix();
	ck_assert_uint_ge(rel + TZ_EMPTY_SLACK, full - start);
	ck_assert_uint_le(zpool_get_total_size(ctx->pool),
			  start + TZ_EMPTY_SLACK);
	if (backend_is_zbud()) {
		ck_assert_uint_eq(zpool_get_total_size(ctx->pool), start);
		ck_assert_uint_eq(rel, full - start);
	}
	/* An empty pool: nothing to evict. */
	ck_assert_int_eq(zpool_shrink(ctx->pool, 1, &rel), -ENOENT);
	ck_assert_uint_eq(rel, 0);
	/* The pool still works. */
	fill(2, OBJ_SIZE);
	assert_live_intact();
}
END_TEST

/* A refusal stops shrink at once and leaves the object valid. */
START_TEST(test_shrink_refused)
{
	uint64_t before;
	size_t rel;
	int ret;

	ctx->mode = EVICT_REFUSE_ONCE;
	fill(40, OBJ_SIZE);
	before = zpool_get_total_size(ctx->pool);
	ret = zpool_shrink(ctx->pool, 4 * ZPOOL_PAGE_SIZE, &rel);
	ck_assert_int_eq(ret, -EBUSY);
	ck_assert_int_eq(ctx->calls, 1);
	ck_assert_int_eq(ctx->nevicted, 0);
	ck_assert_uint_lt(rel, 4 * ZPOOL_PAGE_SIZE);
	ck_assert_uint_eq(zpool_get_total_size(ctx->pool), before);
	assert_live_intact(); /* the refused object included */

	/* Shrink works again once the callback agrees. */
	ck_assert_int_eq(zpool_shrink(ctx->pool, 4 * ZPOOL_PAGE_SIZE, &rel), 0);
	ck_assert_uint_ge(rel, 4 * ZPOOL_PAGE_SIZE);
	assert_live_intact();
}
END_TEST

/* A callback that returns 0 without freeing: the objects stay, intact. */
START_TEST(test_shrink_not_freed)
{
	uint64_t before;
	size_t rel;

	ctx->mode = EVICT_KEEP;
	fill(10, OBJ_SIZE);
	before = zpool_get_total_size(ctx->pool);
	ck_assert_int_eq(zpool_shrink(ctx->pool, 2 * ZPOOL_PAGE_SIZE, &rel),
			 -ENOENT);
	ck_assert_uint_eq(rel, 0);
	ck_assert_int_ge(ctx->calls, 1);
	ck_assert_uint_eq(zpool_get_total_size(ctx->pool), before);
	assert_live_intact();
	/* The objects are still good for a real eviction. */
	ctx->mode = EVICT_FREE;
	ck_assert_int_eq(zpool_shrink(ctx->pool, 2 * ZPOOL_PAGE_SIZE, &rel), 0);
	assert_live_intact();
}
END_TEST

/*
 * The eviction race: the owner frees the object from another thread (and
 * allocates fresh objects filled with 0xee) while the callback runs; what
 * the callback reads is still the object, byte for byte.
 */
START_TEST(test_eviction_race)
{
	size_t rel;

	ctx->mode = _i ? EVICT_RACE_DURING : EVICT_RACE_BEFORE;
	fill(32, OBJ_SIZE);
	ck_assert_int_eq(zpool_shrink(ctx->pool, 3 * ZPOOL_PAGE_SIZE, &rel), 0);
	ck_assert_uint_ge(rel, 3 * ZPOOL_PAGE_SIZE);
	ck_assert_int_ge(ctx->nevicted, 1);
	assert_evicted_prefix();
	assert_live_intact();
	ck_assert_int_ge(ctx->njunk, 1);
	for (int i = 0; i < ctx->njunk; i++) {
		unsigned long h = ctx->junk[i].handle;
		const unsigned char *p;

		if (!ctx->junk[i].live)
			continue;
		p = zpool_map_handle(ctx->pool, h, ZPOOL_MM_RO);
		for (int k = 0; k < OBJ_SIZE; k++)
			ck_assert_uint_eq(p[k], 0xee);
		zpool_unmap_handle(ctx->pool, h);
		zpool_free(ctx->pool, h);
	}
}
END_TEST

static Suite *shrink_suite(void)
{
	Suite *s = suite_create("zpool_shrink-" ZPOOL_BACKEND);
	TCase *tc = tcase_create("core");
	TCase *lim = tcase_create("limits");
	TCase *race = tcase_create("race");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_shrink_coldest, 0, 2);
	tcase_add_test(tc, test_shrink_zero);
	if (backend_is_zbud())
		tcase_add_test(tc, test_zbud_lru_touch);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(lim, setup, teardown);
	tcase_add_test(lim, test_shrink_no_ops);
	tcase_add_test(lim, test_shrink_too_much);
	tcase_add_test(lim, test_shrink_refused);
	tcase_add_test(lim, test_shrink_not_freed);
	tcase_set_timeout(lim, 60);
	suite_add_tcase(s, lim);

	tcase_add_checked_fixture(race, setup, teardown);
	tcase_add_loop_test(race, test_eviction_race, 0, 2);
	tcase_set_timeout(race, 120);
	suite_add_tcase(s, race);
	return s;
}

int main(void)
{
	return test_run_suite(shrink_suite());
}
