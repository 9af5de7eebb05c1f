/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the device core (daemon/device.c), run once per allocator
 * built in: reads and writes at every alignment against a shadow byte
 * array, the counters, mem_limit, extents, eviction to a fake backing
 * store, devices up to 2^63-1 bytes, and concurrent partial writes to one
 * sector (the "concurrent" case runs under TSan in check-tsan).
 *
 * Randomized tests print their seed; TEST_SEED replays them and
 * TEST_ITERATIONS changes their length.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "device.h"
#include "test_daemon_common.h"
#include "test_rig.h"
#include "test_util.h"
#include "zpool.h"

static struct zdev *make_dev(const char *allocator, uint64_t size,
			     uint64_t mem_limit, bool shrinkable)
{
	struct zdev_config cfg = rig_dev_config(allocator, size, mem_limit);
	struct zdev *dev;
	int err;

	cfg.shrinkable = shrinkable;
	dev = zdev_create(&cfg, &err);
	ck_assert_msg(dev, "zdev_create %s: %s", allocator, strerror(-err));
	return dev;
}

/* --- tests ---------------------------------------------------------------- */

START_TEST(test_create_errors)
{
	struct zdev_config good = {
		.size = 1 << 20, .allocator = backends[0], .acceleration = 1,
		.huge_threshold = 3072,
	};
	struct zdev_config c;
	int err;

	c = good;
	c.allocator = "nosuch";
	ck_assert_ptr_null(zdev_create(&c, &err));
	ck_assert_int_eq(err, -EINVAL);
	c = good;
	c.acceleration = 0;
	ck_assert_ptr_null(zdev_create(&c, &err));
	ck_assert_int_eq(err, -EINVAL);
	c = good;
	c.huge_threshold = SEC;
	ck_assert_ptr_null(zdev_create(&c, &err));
	c = good;
	c.mem_limit = ZDEV_MEM_LIMIT_MIN - 1;
	ck_assert_ptr_null(zdev_create(&c, &err));
	c = good;
	c.size = ZDEV_MAX_SIZE + 1;
	ck_assert_ptr_null(zdev_create(&c, &err));
	ck_assert_int_eq(err, -EINVAL);
	zdev_destroy(NULL);
}
END_TEST

START_TEST(test_basic)
{
	const char *be = backends[_i];
	uint64_t size = 64 * SEC + 100;
	struct zdev *dev = make_dev(be, size, 0, false);
	unsigned char *shadow = calloc(1, size), buf[3 * SEC];
	uint64_t s = seed;

	ck_assert_uint_eq(zdev_size(dev), size);
	/* Unwritten: zeroes, everywhere including the partial last sector. */
	check_range(dev, shadow, 0, size);

	for (int k = 0; k < K_NKINDS; k++) {
		fill(buf, SEC, (enum kind)k, &s);
		ck_assert_int_eq(zdev_write(dev, buf, SEC, (uint64_t)k * SEC,
					    false),
				 0);
		memcpy(shadow + k * SEC, buf, SEC);
	}
	check_range(dev, shadow, 0, size);

	/* Zero-length requests are fine anywhere up to the end. */
	ck_assert_int_eq(zdev_read(dev, buf, 0, size), 0);
	ck_assert_int_eq(zdev_write(dev, buf, 0, 5, true), 0);
	ck_assert_int_eq(zdev_trim(dev, 0, 0), 0);
	ck_assert_int_eq(zdev_zero(dev, 0, size), 0);

	/* Past the end: refused and counted. */
	ck_assert_int_eq(zdev_read(dev, buf, 1, size), -EINVAL);
	ck_assert_int_eq(zdev_write(dev, buf, 2, size - 1, false), -EINVAL);
	ck_assert_int_eq(zdev_read(dev, buf, SEC, UINT64_MAX - 10), -EINVAL);
	ck_assert_int_eq(zdev_trim(dev, SEC, size), -EINVAL);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_invalid_io), 4);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_reads), 2);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_writes), 1);
	ck_assert_int_eq(zdev_flush(dev), 0);
	ck_assert_int_eq(zdev_probe(dev), 0);
	check_range(dev, shadow, 0, size);
	zdev_destroy(dev);
	free(shadow);
}
END_TEST

/* Every alignment and length around sector boundaries, every data kind. */
START_TEST(test_rmw_edges)
{
	const char *be = backends[_i];
	uint64_t size = 16 * SEC + 1234; /* the last sector is partial */
	struct zdev *dev = make_dev(be, size, 0, false);
	unsigned char *shadow = calloc(1, size), *buf = malloc(6 * SEC);
	static const uint64_t offs[] = { 0, 1, 7, 8, 511, 4095, 4096, 4097,
					 8191, 2 * SEC + 2048 };
	static const size_t lens[] = { 1, 2, 7, 8, 9, 100, 4095, 4096,
				       4097, 8192, 8193, 3 * SEC + 17 };
	uint64_t s = seed;
	int n = 0;

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			uint64_t off = offs[i] + SEC * (uint64_t)(n % 4);
			size_t len = lens[j];
			enum kind k = (enum kind)(n++ % K_NKINDS);

			fill(buf, len, k, &s);
			ck_assert_int_eq(zdev_write(dev, buf, len, off, false),
					 0);
			memcpy(shadow + off, buf, len);
			/* The range, its neighbours, and the whole device. */
			check_range(dev, shadow, off, len);
			check_range(dev, shadow, off ? off - 1 : 0,
				    len + (off ? 2 : 1));
			check_range(dev, shadow, 0, size);
		}
	}
	/* The partial last sector: write it, its tail, its last byte. */
	fill(buf, 1234, K_TEXT, &s);
	ck_assert_int_eq(zdev_write(dev, buf, 1234, 16 * SEC, false), 0);
	memcpy(shadow + 16 * SEC, buf, 1234);
	fill(buf, 1, K_RANDOM, &s);
	ck_assert_int_eq(zdev_write(dev, buf, 1, size - 1, false), 0);
	shadow[size - 1] = buf[0];
	check_range(dev, shadow, 0, size);

	/* Unaligned zero and trim read back as zeroes. */
	ck_assert_int_eq(zdev_zero(dev, 5000, 3000), 0);
	memset(shadow + 3000, 0, 5000);
	ck_assert_int_eq(zdev_trim(dev, 3 * SEC + 5, 5 * SEC - 3), 0);
	memset(shadow + 5 * SEC - 3, 0, 3 * SEC + 5);
	ck_assert_int_eq(zdev_zero(dev, 1234, 16 * SEC), 0);
	memset(shadow + 16 * SEC, 0, 1234);
	check_range(dev, shadow, 0, size);
	zdev_destroy(dev);
	free(shadow);
	free(buf);
}
END_TEST

struct ext_check {
	const unsigned char *shadow;
	uint64_t next, size;
	int calls;
};

/* Extents are contiguous, in range, and a hole is really zeroes. */
static int ext_cb(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	struct ext_check *c = arg;

	if (c->calls++)
		ck_assert_uint_eq(off, c->next);
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(off + len, c->size);
	c->next = off + len;
	if (type) {
		bool zero = true;

		ck_assert_uint_eq(type, ZDEV_EXTENT_HOLE | ZDEV_EXTENT_ZERO);
		for (uint64_t i = off; i < off + len; i++)
			zero &= c->shadow[i] == 0;
		ck_assert_msg(zero, "hole at %llu+%llu holds data",
			      (unsigned long long)off, (unsigned long long)len);
	}
	return 0;
}

/* A seeded random walk of every request kind against a shadow. */
START_TEST(test_random_shadow)
{
	const char *be = backends[_i];
	uint64_t size = 256 * SEC + 777;
	struct zdev *dev = make_dev(be, size, 0, false);
	unsigned char *shadow = calloc(1, size), *buf = malloc(8 * SEC);
	uint64_t s = seed + (uint64_t)_i, n = iterations(4000);

	for (uint64_t it = 0; it < n; it++) {
		uint64_t op = rnd(&s) % 10;
		size_t len = rnd(&s) % 2 ? (size_t)(1 + rnd(&s) % (3 * SEC))
					 : SEC * (size_t)(1 + rnd(&s) % 4);
		uint64_t off = rnd(&s) % 2 ? rnd(&s) % size
					   : SEC * (rnd(&s) % (size / SEC));

		if (off + len > size)
			len = (size_t)(size - off);
		if (op < 5) {
			fill(buf, len, (enum kind)(rnd(&s) % K_NKINDS), &s);
			ck_assert_int_eq(zdev_write(dev, buf, len, off, false),
					 0);
			memcpy(shadow + off, buf, len);
		} else if (op < 7) {
			check_range(dev, shadow, off, len);
		} else if (op == 7) {
			ck_assert_int_eq(zdev_trim(dev, len, off), 0);
			memset(shadow + off, 0, len);
		} else if (op == 8) {
			ck_assert_int_eq(zdev_zero(dev, len, off), 0);
			memset(shadow + off, 0, len);
		} else if (len) {
			struct ext_check c = { shadow, 0, size, 0 };

			ck_assert_int_eq(zdev_extents(dev, len, off, false,
						      ext_cb, &c),
					 0);
			ck_assert_int_gt(c.calls, 0);
			ck_assert_uint_ge(c.next, off + len);
		}
	}
	check_range(dev, shadow, 0, size);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_writes), 0);
	zdev_destroy(dev);
	free(shadow);
	free(buf);
}
END_TEST

START_TEST(test_stats)
{
	const char *be = backends[_i];
	struct zdev *dev = make_dev(be, 1 << 20, 0, false);
	unsigned char buf[SEC];
	struct zstats st;
	uint64_t s = seed;

	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_disksize], 1 << 20);
	ck_assert_uint_eq(st.v[ZSTAT_orig_data_size], 0);
	ck_assert_str_eq(st.allocator, be);

	fill(buf, SEC, K_ZERO, &s);
	zdev_write(dev, buf, SEC, 0, false);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_orig_data_size), 0);

	fill(buf, SEC, K_SAME, &s);
	zdev_write(dev, buf, SEC, SEC, false);
	zdev_write(dev, buf, SEC, 2 * SEC, false);
	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_same_pages], 2);
	ck_assert_uint_eq(st.v[ZSTAT_orig_data_size], 2 * SEC);
	ck_assert_uint_eq(st.v[ZSTAT_compr_data_size], 0);

	fill(buf, SEC, K_RANDOM, &s);
	zdev_write(dev, buf, SEC, 3 * SEC, false);
	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_huge_pages], 1);
	ck_assert_uint_eq(st.v[ZSTAT_compr_data_size], SEC);

	fill(buf, SEC, K_TEXT, &s);
	zdev_write(dev, buf, SEC, 4 * SEC, false);
	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_orig_data_size], 4 * SEC);
	ck_assert_uint_gt(st.v[ZSTAT_compr_data_size], SEC);
	ck_assert_uint_lt(st.v[ZSTAT_compr_data_size], SEC + 1024);
	ck_assert_uint_gt(st.v[ZSTAT_mem_used_total], 0);
	ck_assert_uint_ge(st.v[ZSTAT_mem_used_max],
			  st.v[ZSTAT_mem_used_total]);

	/* Overwriting replaces the old entry's accounting. */
	zdev_write(dev, buf, SEC, 1 * SEC, false);
	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_same_pages], 1);
	ck_assert_uint_eq(st.v[ZSTAT_orig_data_size], 4 * SEC);

	/* Trim and zero free what was there; empty sectors do not count. */
	ck_assert_int_eq(zdev_trim(dev, 2 * SEC, 0), 0);
	ck_assert_int_eq(zdev_zero(dev, 3 * SEC, 2 * SEC), 0);
	zdev_get_stats(dev, &st);
	ck_assert_uint_eq(st.v[ZSTAT_notify_free], 4);
	ck_assert_uint_eq(st.v[ZSTAT_orig_data_size], 0);
	ck_assert_uint_eq(st.v[ZSTAT_compr_data_size], 0);
	ck_assert_uint_eq(st.v[ZSTAT_same_pages], 0);
	ck_assert_uint_eq(st.v[ZSTAT_huge_pages], 0);
	ck_assert_uint_gt(st.v[ZSTAT_mem_used_max], 0);
	zdev_destroy(dev);
}
END_TEST

/*
 * Over mem_limit: ENOSPC, old data readable, room again after a trim. The
 * smallest limit allowed holds a good number of incompressible sectors
 * with either allocator, beyond the pool's own metadata (device.h).
 */
START_TEST(test_mem_limit)
{
	const char *be = backends[_i];
	uint64_t limit = ZDEV_MEM_LIMIT_MIN, size = 4 << 20;
	struct zdev *dev = make_dev(be, size, limit, false);
	unsigned char *shadow = calloc(1, size), buf[SEC];
	uint64_t s = seed, sec;
	int r = 0;

	for (sec = 0; sec < size / SEC; sec++) {
		fill(buf, SEC, K_RANDOM, &s);
		r = zdev_write(dev, buf, SEC, sec * SEC, false);
		if (r)
			break;
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	ck_assert_int_eq(r, -ENOSPC);
	printf("test_mem_limit %s: %llu sectors in %llu bytes\n", be,
	       (unsigned long long)sec, (unsigned long long)limit);
	ck_assert_uint_ge(sec, 64);
	/*
	 * A refused object is freed at once, but a backend may keep a few
	 * bytes of metadata it grew for it (zsmalloc's handle table): allow
	 * 16 KiB of that.
	 */
	ck_assert_uint_le(stat_of(dev, ZSTAT_mem_used_total), limit + 16384);
	ck_assert_uint_le(stat_of(dev, ZSTAT_mem_used_max), limit + 16384);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_writes), 1);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_mem_limit), limit);
	/* The failed sector kept its old contents (zeroes). */
	check_range(dev, shadow, 0, size);

	/* Same-filled and zero sectors need no pool memory: still fine. */
	fill(buf, SEC, K_SAME, &s);
	ck_assert_int_eq(zdev_write(dev, buf, SEC, (sec + 1) * SEC, false), 0);
	memcpy(shadow + (sec + 1) * SEC, buf, SEC);

	/* Free half, and writing works again. */
	ck_assert_int_eq(zdev_trim(dev, (sec / 2) * SEC, 0), 0);
	memset(shadow, 0, (sec / 2) * SEC);
	fill(buf, SEC, K_RANDOM, &s);
	ck_assert_int_eq(zdev_write(dev, buf, SEC, sec * SEC, false), 0);
	memcpy(shadow + sec * SEC, buf, SEC);
	check_range(dev, shadow, 0, size);
	zdev_destroy(dev);
	free(shadow);
}
END_TEST

struct ext_rec {
	uint64_t off[16], len[16];
	uint32_t type[16];
	int n;
};

static int ext_rec_cb(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	struct ext_rec *r = arg;

	ck_assert_int_lt(r->n, 16);
	r->off[r->n] = off;
	r->len[r->n] = len;
	r->type[r->n++] = type;
	return 0;
}

static int ext_fail_cb(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	(void)arg;
	(void)off;
	(void)len;
	(void)type;
	return -ENOMEM;
}

START_TEST(test_extents)
{
	const char *be = backends[_i];
	uint64_t size = 100 * SEC + 10;
	struct zdev *dev = make_dev(be, size, 0, false);
	const uint32_t HZ = ZDEV_EXTENT_HOLE | ZDEV_EXTENT_ZERO;
	unsigned char buf[2 * SEC];
	struct ext_rec r = { 0 };
	uint64_t s = seed;

	/* An empty device is one hole, cut at the device end. */
	ck_assert_int_eq(zdev_extents(dev, size, 0, false, ext_rec_cb, &r), 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_eq(r.len[0], size);
	ck_assert_uint_eq(r.type[0], HZ);

	/* data at sectors 2-3 (text, same), hole, data at 10, hole. */
	fill(buf, SEC, K_TEXT, &s);
	fill(buf + SEC, SEC, K_SAME, &s);
	zdev_write(dev, buf, 2 * SEC, 2 * SEC, false);
	zdev_write(dev, buf, 1, 10 * SEC + 5, false);
	r.n = 0;
	ck_assert_int_eq(zdev_extents(dev, size, 0, false, ext_rec_cb, &r), 0);
	ck_assert_int_eq(r.n, 5);
	ck_assert_uint_eq(r.off[1], 2 * SEC);
	ck_assert_uint_eq(r.len[1], 2 * SEC);
	ck_assert_uint_eq(r.type[1], 0);
	ck_assert_uint_eq(r.type[2], HZ);
	ck_assert_uint_eq(r.off[3], 10 * SEC);
	ck_assert_uint_eq(r.off[4] + r.len[4], size);

	/* Unaligned start: the first extent covers it; REQ_ONE gives one. */
	r.n = 0;
	ck_assert_int_eq(zdev_extents(dev, 10, 3 * SEC + 7, true, ext_rec_cb,
				      &r),
			 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_eq(r.off[0], 3 * SEC);
	ck_assert_uint_eq(r.type[0], 0);

	/* After trim and zero they are holes again. */
	zdev_trim(dev, 2 * SEC, 2 * SEC);
	zdev_zero(dev, SEC, 10 * SEC);
	r.n = 0;
	ck_assert_int_eq(zdev_extents(dev, size, 0, false, ext_rec_cb, &r), 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_eq(r.type[0], HZ);

	/* Errors from the callback and bad ranges come back. */
	ck_assert_int_eq(zdev_extents(dev, size, 0, false, ext_fail_cb, NULL),
			 -ENOMEM);
	ck_assert_int_eq(zdev_extents(dev, 0, 0, false, ext_rec_cb, &r),
			 -EINVAL);
	ck_assert_int_eq(zdev_extents(dev, 2, size - 1, false, ext_rec_cb, &r),
			 -EINVAL);
	zdev_destroy(dev);
}
END_TEST

/*
 * Bad extents requests are refused like bad reads and writes: -EINVAL,
 * one invalid_io each, no callback. A length of 0 is one of them
 * (device.h: @len is 1 or more), at the start, inside and at the end.
 */
START_TEST(test_extents_bad_input)
{
	uint64_t size = 8 * SEC + 10;
	struct zdev *dev = make_dev(backends[0], size, 0, false);
	struct ext_rec r = { 0 };

	ck_assert_int_eq(zdev_extents(dev, 0, 0, false, ext_rec_cb, &r),
			 -EINVAL);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_invalid_io), 1);
	ck_assert_int_eq(zdev_extents(dev, 0, 3 * SEC + 1, true, ext_rec_cb,
				      &r),
			 -EINVAL);
	ck_assert_int_eq(zdev_extents(dev, 0, size, false, ext_rec_cb, &r),
			 -EINVAL);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_invalid_io), 3);
	/* Past the end, and length 0 past the end: one count each. */
	ck_assert_int_eq(zdev_extents(dev, 2, size - 1, false, ext_rec_cb, &r),
			 -EINVAL);
	ck_assert_int_eq(zdev_extents(dev, 0, size + 1, false, ext_rec_cb, &r),
			 -EINVAL);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_invalid_io), 5);
	ck_assert_int_eq(r.n, 0);
	/* Extents is neither a read nor a write. */
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_reads), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_writes), 0);
	/* A good request still works and counts nothing. */
	ck_assert_int_eq(zdev_extents(dev, 1, size - 1, false, ext_rec_cb, &r),
			 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_invalid_io), 5);
	zdev_destroy(dev);
}
END_TEST

/* The largest device: the last (4095-byte) sector works, metadata tiny. */
START_TEST(test_huge_device)
{
	const char *be = backends[_i];
	uint64_t size = ZDEV_MAX_SIZE;
	struct zdev *dev = make_dev(be, size, 0, false);
	unsigned char buf[SEC], back[SEC];
	struct ext_rec r = { 0 };
	uint64_t s = seed;

	ck_assert_uint_lt(zdev_table_bytes(dev), 256 * 1024);
	fill(buf, SEC, K_TEXT, &s);
	ck_assert_int_eq(zdev_write(dev, buf, SEC - 1, size - (SEC - 1), false),
			 0);
	ck_assert_int_eq(zdev_read(dev, back, SEC - 1, size - (SEC - 1)), 0);
	ck_assert_mem_eq(buf, back, SEC - 1);
	ck_assert_int_eq(zdev_write(dev, buf, 3, size - 3, false), 0);
	ck_assert_int_eq(zdev_read(dev, back, 1, size - 1), 0);
	ck_assert_uint_eq(back[0], buf[2]);
	ck_assert_int_eq(zdev_read(dev, back, SEC, size / 2), 0);
	memset(buf, 0, SEC);
	ck_assert(memcmp(back, buf, SEC) == 0);
	/* A 4 GiB extents query over the empty middle is one hole. */
	ck_assert_int_eq(zdev_extents(dev, UINT32_MAX, size / 3, false,
				      ext_rec_cb, &r),
			 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_ge(r.off[0] + r.len[0], size / 3 + UINT32_MAX);
	/* Nothing more than a few nodes and two leaves. */
	ck_assert_uint_lt(zdev_table_bytes(dev), 256 * 1024 + 64 * 1024);
	zdev_destroy(dev);
}
END_TEST

/* Trimming every other sector leaves holes that compaction gives back. */
START_TEST(test_compact)
{
	const char *be = backends[_i];
	uint64_t n = 4096, size = n * SEC;
	struct zdev *dev = make_dev(be, size, 0, false);
	unsigned char *shadow = calloc(1, size);
	uint64_t s = seed, before, after;
	long pages;

	for (uint64_t sec = 0; sec < n; sec++)
		fill(shadow + sec * SEC, SEC, K_MIXED, &s);
	ck_assert_int_eq(zdev_write(dev, shadow, size, 0, false), 0);
	for (uint64_t sec = 0; sec < n; sec += 2) {
		ck_assert_int_eq(zdev_trim(dev, SEC, sec * SEC), 0);
		memset(shadow + sec * SEC, 0, SEC);
	}
	before = stat_of(dev, ZSTAT_mem_used_total);
	pages = zdev_compact(dev);
	after = stat_of(dev, ZSTAT_mem_used_total);
	if (strcmp(be, ZPOOL_TYPE_ZBUD) == 0) {
		ck_assert_int_eq(pages, -EOPNOTSUPP);
		ck_assert_uint_eq(stat_of(dev, ZSTAT_pages_compacted), 0);
	} else {
		ck_assert_int_gt(pages, 0);
		ck_assert_uint_eq(stat_of(dev, ZSTAT_pages_compacted),
				  (uint64_t)pages);
		ck_assert_uint_lt(after, before);
	}
	/* Moving objects did not change a byte. */
	check_range(dev, shadow, 0, size);
	zdev_destroy(dev);
	free(shadow);
}
END_TEST

/* --- eviction to a fake backing store -------------------------------------- */

#define FAKE_SLOTS 4096

struct fake_backing {
	pthread_mutex_t lock;
	unsigned char *data[FAKE_SLOTS];
	unsigned int len[FAKE_SLOTS];
	uint64_t sector[FAKE_SLOTS];
	int live, released;
	bool fail_store, corrupt, io_error;
};

static int64_t fake_store(void *ctx, uint64_t sector, const void *data,
			  unsigned int len)
{
	struct fake_backing *fb = ctx;
	int64_t slot = -ENOSPC;

	pthread_mutex_lock(&fb->lock);
	if (!fb->fail_store) {
		for (int i = 0; i < FAKE_SLOTS; i++) {
			if (fb->data[i])
				continue;
			fb->data[i] = malloc(len);
			memcpy(fb->data[i], data, len);
			fb->len[i] = len;
			fb->sector[i] = sector;
			fb->live++;
			slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&fb->lock);
	return slot;
}

static int fake_load(void *ctx, uint64_t slot, uint64_t sector, void *buf,
		     unsigned int len)
{
	struct fake_backing *fb = ctx;
	int r = 0;

	pthread_mutex_lock(&fb->lock);
	ck_assert_ptr_nonnull(fb->data[slot]);
	ck_assert_uint_eq(fb->sector[slot], sector);
	ck_assert_uint_eq(fb->len[slot], len);
	if (fb->corrupt)
		r = -EBADMSG;
	else if (fb->io_error)
		r = -EIO;
	else
		memcpy(buf, fb->data[slot], len);
	pthread_mutex_unlock(&fb->lock);
	return r;
}

static void fake_release(void *ctx, uint64_t slot)
{
	struct fake_backing *fb = ctx;

	pthread_mutex_lock(&fb->lock);
	ck_assert_ptr_nonnull(fb->data[slot]);
	free(fb->data[slot]);
	fb->data[slot] = NULL;
	fb->live--;
	fb->released++;
	pthread_mutex_unlock(&fb->lock);
}

static void fake_free_all(struct fake_backing *fb)
{
	for (int i = 0; i < FAKE_SLOTS; i++)
		free(fb->data[i]);
}

START_TEST(test_evict)
{
	const char *be = backends[_i];
	uint64_t size = 64 * SEC;
	struct zdev *dev = make_dev(be, size, 0, true);
	struct fake_backing fb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct zdev_backing_ops ops = {
		.store = fake_store,
		.load = fake_load,
		.release = fake_release,
		.ctx = &fb,
	};
	unsigned char *shadow = calloc(1, size), buf[SEC];
	uint64_t s = seed, moved;
	size_t released = 0;
	int r;

	for (uint64_t sec = 0; sec < 32; sec++) {
		fill(buf, SEC, sec % 2 ? K_TEXT : K_RANDOM, &s);
		zdev_write(dev, buf, SEC, sec * SEC, false);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	/* Without a backing store the pool refuses to evict. */
	r = zpool_shrink(zdev_pool(dev), SEC, NULL);
	ck_assert_int_eq(r, -ENOSPC);
	zdev_set_backing(dev, &ops);

	r = zpool_shrink(zdev_pool(dev), 1 << 30, &released);
	ck_assert_msg(r == -ENOENT || r == 0, "zpool_shrink: %d", r);
	moved = stat_of(dev, ZSTAT_bd_count);
	ck_assert_uint_eq(moved, 32);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_writes), 32);
	ck_assert_int_eq(fb.live, 32);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_orig_data_size), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_compr_data_size), 0);

	/* Reads come back through the backing store, partial ones too. */
	check_range(dev, shadow, 0, size);
	check_range(dev, shadow, 3 * SEC + 100, 200);
	ck_assert_uint_ge(stat_of(dev, ZSTAT_bd_reads), 32);

	/* A partial write reads the old data from the store, then frees it. */
	fill(buf, 100, K_RANDOM, &s);
	ck_assert_int_eq(zdev_write(dev, buf, 100, 5 * SEC + 50, false), 0);
	memcpy(shadow + 5 * SEC + 50, buf, 100);
	/* Overwrite and trim release their slots. */
	fill(buf, SEC, K_TEXT, &s);
	ck_assert_int_eq(zdev_write(dev, buf, SEC, 6 * SEC, false), 0);
	memcpy(shadow + 6 * SEC, buf, SEC);
	ck_assert_int_eq(zdev_trim(dev, 2 * SEC, 8 * SEC), 0);
	memset(shadow + 8 * SEC, 0, 2 * SEC);
	ck_assert_int_eq(fb.released, 4);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_count), 28);
	check_range(dev, shadow, 0, size);

	/* A bad checksum is EIO, counted, never wrong data. */
	fb.corrupt = true;
	ck_assert_int_eq(zdev_read(dev, buf, SEC, 0), -EIO);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_checksum_errors), 1);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_io_errors), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_reads), 1);
	fb.corrupt = false;

	/* So is a read the disk fails, counted apart: another fault. */
	fb.io_error = true;
	ck_assert_int_eq(zdev_read(dev, buf, SEC, 0), -EIO);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_checksum_errors), 1);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_bd_io_errors), 1);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_reads), 2);
	fb.io_error = false;

	/* A store that fails leaves the data in the pool. */
	fb.fail_store = true;
	r = zpool_shrink(zdev_pool(dev), 1 << 30, NULL);
	ck_assert_int_lt(r, 0);
	ck_assert_uint_ge(stat_of(dev, ZSTAT_bd_failed), 1);
	check_range(dev, shadow, 0, size);

	/* Detached: a sector on the backing file reads as EIO. */
	zdev_set_backing(dev, NULL);
	ck_assert_int_eq(zdev_read(dev, buf, SEC, 0), -EIO);
	zdev_destroy(dev);
	fake_free_all(&fb);
	free(shadow);
}
END_TEST

/* The eviction race: the sector changes while its object is being saved. */
static int64_t racing_store(void *ctx, uint64_t sector, const void *data,
			    unsigned int len);

static struct zdev *race_dev;
static bool raced;

static int64_t racing_store(void *ctx, uint64_t sector, const void *data,
			    unsigned int len)
{
	unsigned char buf[SEC];

	if (raced)
		return fake_store(ctx, sector, data, len);
	raced = true;
	/* The writer overwrites the sector before the store finishes. */
	memset(buf, 0x77, 100);
	memset(buf + 100, 0, SEC - 100);
	ck_assert_int_eq(zdev_write(race_dev, buf, SEC, sector * SEC, false),
			 0);
	return fake_store(ctx, sector, data, len);
}

START_TEST(test_evict_race)
{
	const char *be = backends[_i];
	struct fake_backing fb = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct zdev_backing_ops ops = {
		.store = racing_store,
		.load = fake_load,
		.release = fake_release,
		.ctx = &fb,
	};
	unsigned char buf[SEC], back[SEC];
	uint64_t s = seed;

	raced = false;
	race_dev = make_dev(be, 16 * SEC, 0, true);
	zdev_set_backing(race_dev, &ops);
	fill(buf, SEC, K_TEXT, &s);
	zdev_write(race_dev, buf, SEC, 3 * SEC, false);
	zpool_shrink(zdev_pool(race_dev), 1 << 30, NULL);
	/*
	 * The overwrite won: its data is there (in the pool, or on the
	 * store if shrink went on to evict the new object), and the slot of
	 * the stale copy went back.
	 */
	ck_assert(raced);
	ck_assert_int_eq(zdev_read(race_dev, back, SEC, 3 * SEC), 0);
	memset(buf, 0x77, 100);
	memset(buf + 100, 0, SEC - 100);
	ck_assert_mem_eq(back, buf, SEC);
	ck_assert_int_ge(fb.released, 1);
	ck_assert_uint_eq(stat_of(race_dev, ZSTAT_bd_count), (uint64_t)fb.live);
	ck_assert_int_le(fb.live, 1);
	zdev_destroy(race_dev);
	fake_free_all(&fb);
}
END_TEST

/* --- concurrency ------------------------------------------------------------ */

#define CONC_THREADS 4
#define CONC_SECTORS 64

struct conc {
	struct zdev *dev;
	unsigned int id;
	uint64_t seed;
	uint64_t iters;
	unsigned char last[SEC]; /* this thread's bytes of the hot sectors */
	char fail[200];		 /* the first failure, if any */
};

/*
 * Worker threads do not call ck_assert (each call writes to libcheck's
 * message file, and it is not meant for threads): they record the first
 * failure, and the test asserts on it after joining.
 */
#define WCHECK(c, cond)                                                      \
	do {                                                                 \
		if (!(cond)) {                                               \
			snprintf((c)->fail, sizeof((c)->fail),               \
				 "thread %u, iteration %llu: %s", (c)->id,   \
				 (unsigned long long)it, #cond);              \
			goto out;                                            \
		}                                                            \
	} while (0)

/*
 * Each thread owns bytes [id*1024, id*1024+1024) of hot sectors 0..3 and
 * writes them partially, so every write is a read-modify-write racing with
 * the others; it also owns whole sectors 4+id, 4+id+T, ... which it
 * writes, trims and verifies against its own shadow.
 */
static void *conc_worker(void *p)
{
	struct conc *c = p;
	unsigned char buf[2 * SEC], *shadow = calloc(CONC_SECTORS, SEC);
	uint64_t s = c->seed, it;

	for (it = 0; it < c->iters; it++) {
		unsigned int hot = (unsigned int)(rnd(&s) % 4);
		uint64_t base = (uint64_t)hot * SEC + c->id * 1024u;
		size_t o = rnd(&s) % 1024, n = 1 + rnd(&s) % (1024 - o);
		uint64_t sec = 4 + c->id +
			       CONC_THREADS *
				       (rnd(&s) % (CONC_SECTORS / CONC_THREADS - 1));
		unsigned int op = (unsigned int)(rnd(&s) % 4);

		fill(buf, n, (enum kind)(rnd(&s) % K_NKINDS), &s);
		WCHECK(c, zdev_write(c->dev, buf, n, base + o, false) == 0);
		memcpy(c->last + hot * 1024 + o, buf, n);

		if (op == 0) {
			fill(buf, SEC, (enum kind)(rnd(&s) % K_NKINDS), &s);
			WCHECK(c, zdev_write(c->dev, buf, SEC, sec * SEC,
					     false) == 0);
			memcpy(shadow + sec * SEC, buf, SEC);
		} else if (op == 1) {
			WCHECK(c, zdev_trim(c->dev, SEC, sec * SEC) == 0);
			memset(shadow + sec * SEC, 0, SEC);
		} else {
			WCHECK(c, zdev_read(c->dev, buf, SEC, sec * SEC) == 0);
			WCHECK(c, memcmp(buf, shadow + sec * SEC, SEC) == 0);
		}
		/* My bytes of a hot sector are mine, whatever the others do. */
		WCHECK(c, zdev_read(c->dev, buf, 1024, base) == 0);
		WCHECK(c, memcmp(buf, c->last + hot * 1024, 1024) == 0);
	}
out:
	free(shadow);
	return NULL;
}

START_TEST(test_concurrent)
{
	const char *be = backends[_i];
	struct zdev *dev = make_dev(be, CONC_SECTORS * SEC, 0, false);
	struct conc *c = calloc(CONC_THREADS, sizeof(*c));
	pthread_t th[CONC_THREADS];
	unsigned char buf[1024];

	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		c[i] = (struct conc){ .dev = dev, .id = i,
				      .seed = seed * 31 + i,
				      .iters = iterations(3000) };
		pthread_create(&th[i], NULL, conc_worker, &c[i]);
	}
	for (unsigned int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		ck_assert_msg(!c[i].fail[0], "%s", c[i].fail);
		for (unsigned int hot = 0; hot < 4; hot++) {
			zdev_read(dev, buf, 1024, hot * SEC + i * 1024);
			ck_assert(memcmp(buf, c[i].last + hot * 1024, 1024) ==
				  0);
		}
	}
	ck_assert_uint_eq(stat_of(dev, ZSTAT_failed_writes), 0);
	free(c);
	zdev_destroy(dev);
}
END_TEST

static Suite *device_suite(void)
{
	Suite *s = suite_create("device");
	TCase *core = tcase_create("core");
	TCase *limits = tcase_create("limits");
	TCase *evict = tcase_create("evict");
	TCase *conc = tcase_create("concurrent");

	tcase_add_test(core, test_create_errors);
	tcase_add_loop_test(core, test_basic, 0, nbackends);
	tcase_add_loop_test(core, test_rmw_edges, 0, nbackends);
	tcase_add_loop_test(core, test_random_shadow, 0, nbackends);
	tcase_add_loop_test(core, test_stats, 0, nbackends);
	tcase_add_loop_test(core, test_extents, 0, nbackends);
	tcase_add_test(core, test_extents_bad_input);
	tcase_add_loop_test(limits, test_mem_limit, 0, nbackends);
	tcase_add_loop_test(limits, test_compact, 0, nbackends);
	tcase_add_loop_test(limits, test_huge_device, 0, nbackends);
	tcase_add_loop_test(evict, test_evict, 0, nbackends);
	tcase_add_loop_test(evict, test_evict_race, 0, nbackends);
	tcase_add_loop_test(conc, test_concurrent, 0, nbackends);
	tcase_set_timeout(core, 300);
	tcase_set_timeout(conc, 300);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, evict);
	suite_add_tcase(s, conc);
	return s;
}

int main(void)
{
	if (!test_daemon_init("test_daemon_device"))
		return 1;
	return test_run_suite(device_suite());
}
