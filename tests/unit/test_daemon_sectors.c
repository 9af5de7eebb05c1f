/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the sector table (daemon/sectors.c): every entry state,
 * sparse growth and leaf freeing, devices from 0 sectors to 2^63-1 bytes,
 * scans that skip unallocated regions, per-stripe accounting, and a
 * concurrent writer test (run under TSan by check-tsan).
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sectors.h"
#include "test_util.h"

static struct sect_entry get(struct sect_table *t, uint64_t sector)
{
	struct sect_ref ref;
	struct sect_entry e;

	sect_lock(t, sector, &ref);
	e = sect_ref_get(&ref);
	sect_unlock(&ref);
	return e;
}

static void set(struct sect_table *t, uint64_t sector, struct sect_entry e)
{
	struct sect_ref ref;

	sect_lock(t, sector, &ref);
	ck_assert_int_eq(sect_ref_set(t, &ref, e), 0);
	sect_unlock(&ref);
}

START_TEST(test_states)
{
	struct sect_table *t = sect_create(1000);
	struct sect_entry e;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(sect_nsectors(t), 1000);
	ck_assert_int_eq(sect_state(get(t, 7)), SECT_EMPTY);

	/* SAME keeps a full 64-bit word, even one with every bit set. */
	set(t, 7, sect_make(SECT_SAME, UINT64_MAX, 0));
	e = get(t, 7);
	ck_assert_int_eq(sect_state(e), SECT_SAME);
	ck_assert_uint_eq(e.val, UINT64_MAX);

	/* POOL keeps any handle value and lengths 1..4096. */
	set(t, 8, sect_make(SECT_POOL, UINT64_C(0xfedcba9876543210), 1));
	set(t, 9, sect_make(SECT_POOL, 1, SECT_LEN_RAW));
	e = get(t, 8);
	ck_assert_int_eq(sect_state(e), SECT_POOL);
	ck_assert_uint_eq(e.val, UINT64_C(0xfedcba9876543210));
	ck_assert_uint_eq(sect_len(e), 1);
	ck_assert_uint_eq(sect_len(get(t, 9)), 4096);

	/* BACKING keeps the slot and the length. */
	set(t, 999, sect_make(SECT_BACKING, UINT64_C(1) << 40, 1234));
	e = get(t, 999);
	ck_assert_int_eq(sect_state(e), SECT_BACKING);
	ck_assert_uint_eq(e.val, UINT64_C(1) << 40);
	ck_assert_uint_eq(sect_len(e), 1234);

	/* The flag bit is independent of state and length. */
	{
		struct sect_ref ref;

		sect_lock(t, 999, &ref);
		sect_ref_set_flag(&ref, SECT_F_IDLE, true);
		e = sect_ref_get(&ref);
		ck_assert(e.meta & SECT_F_IDLE);
		ck_assert_int_eq(sect_state(e), SECT_BACKING);
		ck_assert_uint_eq(sect_len(e), 1234);
		sect_ref_set_flag(&ref, SECT_F_IDLE, false);
		ck_assert(!(sect_ref_get(&ref).meta & SECT_F_IDLE));
		sect_unlock(&ref);
	}

	/* Neighbours were not touched. */
	ck_assert_int_eq(sect_state(get(t, 6)), SECT_EMPTY);
	ck_assert_int_eq(sect_state(get(t, 10)), SECT_EMPTY);
	ck_assert_int_eq(sect_state(get(t, 998)), SECT_EMPTY);
	sect_destroy(t);
}
END_TEST

/* Leaves appear with the first entry and go with the last. */
START_TEST(test_sparse_growth)
{
	struct sect_table *t = sect_create(UINT64_C(1) << 28); /* 1 TiB */
	uint64_t empty = sect_mem_bytes(t);

	/* An idle 1 TiB table is small: stripes and a tiny root. */
	ck_assert_uint_lt(empty, 256 * 1024);
	ck_assert_uint_eq(sect_nleaves(t), 0);

	for (uint64_t s = 0; s < 3 * SECT_LEAF_SECTORS; s++)
		set(t, s, sect_make(SECT_SAME, s + 1, 0));
	ck_assert_uint_eq(sect_nleaves(t), 3);
	/* Dense: about 10 bytes per sector, plus interior nodes. */
	ck_assert_uint_lt(sect_mem_bytes(t) - empty,
			  3 * SECT_LEAF_SECTORS * 11 + 3 * 4096);

	for (uint64_t s = 0; s < 3 * SECT_LEAF_SECTORS; s++)
		ck_assert_uint_eq(get(t, s).val, s + 1);

	/* Emptying a leaf frees it; the others stay. */
	for (uint64_t s = SECT_LEAF_SECTORS; s < 2 * SECT_LEAF_SECTORS; s++)
		set(t, s, SECT_ENTRY_EMPTY);
	ck_assert_uint_eq(sect_nleaves(t), 2);
	ck_assert_int_eq(sect_state(get(t, SECT_LEAF_SECTORS)), SECT_EMPTY);
	ck_assert_uint_eq(get(t, 0).val, 1);

	/* Setting EMPTY where nothing is allocates nothing. */
	set(t, UINT64_C(1) << 27, SECT_ENTRY_EMPTY);
	ck_assert_uint_eq(sect_nleaves(t), 2);
	sect_destroy(t);
}
END_TEST

/* Sizes from nothing to nbdkit's largest, with the last sector usable. */
START_TEST(test_huge_sizes)
{
	static const uint64_t sizes[] = {
		0,
		1,
		SECT_LEAF_SECTORS,
		SECT_LEAF_SECTORS + 1,
		UINT64_C(1) << 18,
		(UINT64_C(1) << 18) + 1,
		UINT64_C(1) << 40,
		SECT_MAX_SECTORS,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct sect_table *t = sect_create(sizes[i]);
		uint64_t n = sizes[i];

		ck_assert_ptr_nonnull(t);
		ck_assert_uint_lt(sect_mem_bytes(t), 256 * 1024);
		if (n) {
			set(t, n - 1, sect_make(SECT_SAME, n, 0));
			set(t, 0, sect_make(SECT_SAME, 42, 0));
			ck_assert_uint_eq(get(t, n - 1).val, n > 1 ? n : 42);
			ck_assert_uint_eq(get(t, 0).val, 42);
			if (n > 2)
				ck_assert_int_eq(sect_state(get(t, n / 2)),
						 SECT_EMPTY);
			/* Two entries far apart cost a few nodes. */
			ck_assert_uint_lt(sect_mem_bytes(t),
					  256 * 1024 + 2 * 5200 + 10 * 4096);
		}
		sect_destroy(t);
	}
	/* 2^63 bytes and more is refused. */
	ck_assert_ptr_null(sect_create(SECT_MAX_SECTORS + 1));
}
END_TEST

struct scan_rec {
	uint64_t calls;
	uint64_t sectors;
	uint64_t used;
	uint64_t last_end;
	uint64_t stop_at;
};

static int scan_cb(void *arg, uint64_t sector, uint64_t count,
		   struct sect_entry e)
{
	struct scan_rec *r = arg;

	/* Runs are contiguous and in order. */
	ck_assert_uint_eq(sector, r->last_end);
	r->last_end = sector + count;
	r->calls++;
	r->sectors += count;
	if (sect_state(e) != SECT_EMPTY) {
		ck_assert_uint_eq(count, 1);
		ck_assert_uint_eq(e.val, sector);
		r->used++;
	}
	return r->stop_at && r->calls == r->stop_at ? 7 : 0;
}

/* A scan of 2^51 sectors with three entries takes a handful of calls. */
START_TEST(test_scan)
{
	struct sect_table *t = sect_create(SECT_MAX_SECTORS);
	uint64_t n = SECT_MAX_SECTORS;
	struct scan_rec r = { 0 };

	set(t, 5, sect_make(SECT_SAME, 5, 0));
	set(t, 6, sect_make(SECT_POOL, 6, 100));
	set(t, UINT64_C(1) << 40, sect_make(SECT_SAME, UINT64_C(1) << 40, 0));
	set(t, n - 1, sect_make(SECT_BACKING, n - 1, 10));

	ck_assert_int_eq(sect_scan(t, 0, n, scan_cb, &r), 0);
	ck_assert_uint_eq(r.sectors, n);
	ck_assert_uint_eq(r.used, 4);
	/* empty, 5, 6, empty, 2^40, empty, n-1 */
	ck_assert_uint_eq(r.calls, 7);

	/* A sub-range, starting inside a leaf. */
	r = (struct scan_rec){ .last_end = 6 };
	ck_assert_int_eq(sect_scan(t, 6, 100, scan_cb, &r), 0);
	ck_assert_uint_eq(r.calls, 2);
	ck_assert_uint_eq(r.sectors, 94);

	/* The callback can stop the scan, and its value comes back. */
	r = (struct scan_rec){ .stop_at = 2 };
	ck_assert_int_eq(sect_scan(t, 0, n, scan_cb, &r), 7);
	ck_assert_uint_eq(r.calls, 2);
	sect_destroy(t);
}
END_TEST

START_TEST(test_acct)
{
	struct sect_table *t = sect_create(1 << 20);
	int64_t sum[SECT_NACCT];

	for (uint64_t s = 0; s < 5000; s += 7) {
		struct sect_ref ref;

		sect_lock(t, s, &ref);
		ref.stripe->acct[0] += 2;
		ref.stripe->acct[SECT_NACCT - 1] -= 1;
		sect_unlock(&ref);
	}
	sect_sum_acct(t, sum);
	ck_assert_int_eq(sum[0], 2 * ((5000 + 6) / 7));
	ck_assert_int_eq(sum[SECT_NACCT - 1], -((5000 + 6) / 7));
	sect_destroy(t);
}
END_TEST

/*
 * Threads write, overwrite and clear their own sectors, interleaved so
 * that leaves are shared, while another scans: nothing is lost, leaves are
 * created and freed under contention.
 */
#define CONC_THREADS 4
#define CONC_SECTORS (8 * SECT_LEAF_SECTORS)

struct conc_arg {
	struct sect_table *t;
	unsigned int id;
	int rounds;
	int failed; /* threads do not ck_assert; the test checks this */
};

static void *conc_writer(void *p)
{
	struct conc_arg *a = p;

	for (int r = 0; r < a->rounds; r++) {
		for (uint64_t s = a->id; s < CONC_SECTORS; s += CONC_THREADS) {
			struct sect_ref ref;
			struct sect_entry e =
				r % 3 == 2 ? SECT_ENTRY_EMPTY
					   : sect_make(SECT_SAME,
						       s * 1000 + (uint64_t)r,
						       0);

			sect_lock(a->t, s, &ref);
			a->failed |= sect_ref_set(a->t, &ref, e) != 0;
			sect_unlock(&ref);
		}
	}
	return NULL;
}

static int count_cb(void *arg, uint64_t sector, uint64_t count,
		    struct sect_entry e)
{
	(void)sector;
	(void)count;
	if (sect_state(e) != SECT_EMPTY)
		(*(uint64_t *)arg)++;
	return 0;
}

static void *conc_scanner(void *p)
{
	struct conc_arg *a = p;
	uint64_t used = 0;

	for (int r = 0; r < a->rounds; r++)
		sect_scan(a->t, 0, CONC_SECTORS, count_cb, &used);
	return NULL;
}

START_TEST(test_concurrent)
{
	struct sect_table *t = sect_create(CONC_SECTORS);
	pthread_t th[CONC_THREADS + 1];
	struct conc_arg args[CONC_THREADS + 1];
	int rounds = TEST_RSS_CHECKS ? 50 : 11;

	for (unsigned int i = 0; i <= CONC_THREADS; i++) {
		args[i] = (struct conc_arg){ t, i, rounds, 0 };
		pthread_create(&th[i], NULL,
			       i < CONC_THREADS ? conc_writer : conc_scanner,
			       &args[i]);
	}
	for (unsigned int i = 0; i <= CONC_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].failed, 0);
	}
	/* The last round (rounds - 1) left its value everywhere. */
	for (uint64_t s = 0; s < CONC_SECTORS; s++) {
		struct sect_entry e = get(t, s);

		if ((rounds - 1) % 3 == 2) {
			ck_assert_int_eq(sect_state(e), SECT_EMPTY);
		} else {
			ck_assert_int_eq(sect_state(e), SECT_SAME);
			ck_assert_uint_eq(e.val,
					  s * 1000 + (uint64_t)(rounds - 1));
		}
	}
	sect_destroy(t);
}
END_TEST

static Suite *sectors_suite(void)
{
	Suite *s = suite_create("sectors");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");
	TCase *conc = tcase_create("concurrent");

	tcase_add_test(core, test_states);
	tcase_add_test(core, test_sparse_growth);
	tcase_add_test(core, test_scan);
	tcase_add_test(core, test_acct);
	tcase_add_test(limits, test_huge_sizes);
	tcase_add_test(conc, test_concurrent);
	tcase_set_timeout(conc, 120);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, conc);
	return s;
}

int main(void)
{
	return test_run_suite(sectors_suite());
}
