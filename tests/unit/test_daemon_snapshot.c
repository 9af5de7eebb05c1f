/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of snapshots (daemon/snapshot.c, persist=), in process, once
 * per allocator built in:
 *
 *  - roundtrip:  every kind of data the codec tells apart, partial and
 *                trimmed sectors, a device size that cuts its last
 *                sector: written, loaded into a new device (of the other
 *                allocator too), every byte and every size counter equal
 *  - backing:    a device with a real backing file and shrinker, most of
 *                it evicted: the snapshot holds the evicted data, and the
 *                load puts it back on the new device's backing file
 *  - refusals:   missing file (0, nothing changes), another size, a byte
 *                flipped anywhere, cut anywhere: refused with a message
 *                naming the file; a write into a missing directory fails
 *                and leaves nothing
 *  - consume:    snap_consume, snap_consumed_exists, snap_remove_consumed,
 *                snap_remove_stale
 *
 * Files go in a temporary directory under $TMPDIR (or /tmp). The seed is
 * printed; TEST_SEED replays a run.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "device.h"
#include "snapshot.h"
#include "test_daemon_common.h"
#include "test_util.h"
#include "writeback.h"
#include "zpool.h"
#include "zramd_snapshot.h"

static char dir[256], snap[300];

static void setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/zramd-snap-XXXXXX", t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(snap, sizeof(snap), "%s/snap", dir);
}

static void teardown(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct zdev *new_dev(const char *allocator, uint64_t size,
			    uint64_t mem_limit, bool shrinkable)
{
	struct zdev_config dc = {
		.size = size,
		.allocator = allocator,
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.mem_limit = mem_limit,
		.shrinkable = shrinkable,
	};
	struct zdev *dev;
	int e;

	dev = zdev_create(&dc, &e);
	ck_assert_msg(dev, "zdev_create %s: %s", allocator, strerror(-e));
	return dev;
}

/* Fill @dev (and @shadow) with every kind of data, partial writes, trims. */
static void fill_dev(struct zdev *dev, unsigned char *shadow, uint64_t size,
		     uint64_t *s)
{
	uint64_t nsect = (size + SEC - 1) / SEC;

	for (uint64_t i = 0; i < nsect; i++) {
		uint64_t off = i * SEC;
		size_t n = size - off < SEC ? (size_t)(size - off) : SEC;

		fill(shadow + off, n, (enum kind)(rnd(s) % K_NKINDS), s);
		ck_assert_int_eq(zdev_write(dev, shadow + off, n, off, false),
				 0);
	}
	for (int k = 0; k < 20; k++) {
		uint64_t off = rnd(s) % size;
		size_t n = (size_t)(rnd(s) % 20000);

		if (n > size - off)
			n = (size_t)(size - off);
		if (k % 2) {
			ck_assert_int_eq(zdev_trim(dev, n, off), 0);
			/* Whole sectors are holes; parts may stay (trim is
			 * advisory): read the truth back. */
			ck_assert_int_eq(zdev_read(dev, shadow + off, n, off),
					 0);
		} else {
			fill(shadow + off, n, K_RANDOM, s);
			ck_assert_int_eq(
				zdev_write(dev, shadow + off, n, off, false),
				0);
		}
	}
}

static void same_counters(struct zdev *a, struct zdev *b)
{
	static const enum zstat keys[] = {
		ZSTAT_orig_data_size, ZSTAT_compr_data_size,
		ZSTAT_same_pages,     ZSTAT_huge_pages,
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_uint_eq(stat_of(a, keys[i]), stat_of(b, keys[i]));
}

START_TEST(test_roundtrip)
{
	const char *alloc = backends[_i], *other = backends[(_i + 1) % nbackends];
	uint64_t s = seed + (uint64_t)_i, size = 3 * 1024 * 1024 + 1234;
	unsigned char *shadow = calloc(1, size);
	char err[SNAP_ERR_LEN];
	struct snap_stats st;
	struct zdev *dev, *dev2;
	struct stat sb;

	ck_assert_ptr_nonnull(shadow);
	dev = new_dev(alloc, size, 0, false);
	fill_dev(dev, shadow, size, &s);
	ck_assert_msg(snap_write(dev, snap, &st, err) == 0, "%s", err);
	ck_assert_int_eq(stat(snap, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_uint_eq(st.file_bytes, (uint64_t)sb.st_size);
	ck_assert_uint_eq(st.data_bytes, stat_of(dev, ZSTAT_orig_data_size));
	ck_assert_uint_eq(st.same, stat_of(dev, ZSTAT_same_pages));

	dev2 = new_dev(other, size, 0, false);
	ck_assert_msg(snap_load(dev2, snap, NULL, NULL, &st, err) == 1, "%s",
		      err);
	check_range(dev2, shadow, 0, size);
	same_counters(dev, dev2);
	zdev_destroy(dev2);
	zdev_destroy(dev);
	free(shadow);
}
END_TEST

START_TEST(test_backing)
{
	const char *alloc = backends[_i];
	uint64_t s = seed + 100 + (uint64_t)_i, size = 4 * 1024 * 1024;
	uint64_t limit = 512 * 1024;
	unsigned char *shadow = calloc(1, size);
	char err[SNAP_ERR_LEN], bk[320], werr[512];
	struct zwb_config wc = {
		.backing = bk,
		.shrink = { .mem_limit = limit, .mem_high = 90, .mem_low = 80,
			    .pressure = { .psi = PRESSURE_OFF,
					  .cgroup = PRESSURE_OFF } },
	};
	struct snap_stats st;
	struct zdev *dev, *dev2;
	struct zwb *wb, *wb2;

	ck_assert_ptr_nonnull(shadow);
	snprintf(bk, sizeof(bk), "%s/backing", dir);
	dev = new_dev(alloc, size, limit, true);
	wb = zwb_create(dev, &wc, werr, sizeof(werr));
	ck_assert_msg(wb, "zwb_create: %s", werr);
	ck_assert_int_eq(zwb_start(wb), 0);
	for (uint64_t off = 0; off < size; off += SEC) {
		fill(shadow + off, SEC, off % (7 * SEC) ? K_MIXED : K_SAME, &s);
		ck_assert_int_eq(zdev_write(dev, shadow + off, SEC, off, false),
				 0);
	}
	zwb_stop(wb);
	ck_assert_uint_gt(stat_of(dev, ZSTAT_bd_count), 100);
	ck_assert_msg(snap_write(dev, snap, &st, err) == 0, "%s", err);
	ck_assert_uint_eq(st.evicted, stat_of(dev, ZSTAT_bd_count));
	zwb_destroy(wb);
	zdev_destroy(dev);

	/* Loaded into a new device with its own (new) backing file. */
	dev2 = new_dev(alloc, size, limit, true);
	wb2 = zwb_create(dev2, &wc, werr, sizeof(werr));
	ck_assert_msg(wb2, "zwb_create: %s", werr);
	ck_assert_msg(snap_load(dev2, snap, NULL, NULL, &st, err) == 1, "%s",
		      err);
	ck_assert_uint_gt(st.evicted, 100);
	ck_assert_uint_ge(stat_of(dev2, ZSTAT_bd_count), st.evicted);
	ck_assert_uint_le(zpool_get_total_size(zdev_pool(dev2)), limit);
	check_range(dev2, shadow, 0, size);
	zwb_destroy(wb2);
	zdev_destroy(dev2);

	/* Without a backing file it does not fit under mem_limit. */
	dev2 = new_dev(alloc, size, limit, false);
	ck_assert_int_eq(snap_load(dev2, snap, NULL, NULL, NULL, err),
			 -ENOSPC);
	ck_assert_msg(strstr(err, "does not fit"), "%s", err);
	zdev_destroy(dev2);
	free(shadow);
}
END_TEST

/* The whole file at @path, in *@len bytes (malloc'd). */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spill(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* A load of @path into a new device of @size is refused with @want. */
static void refused(const char *alloc, uint64_t size, const char *want)
{
	char err[SNAP_ERR_LEN] = "";
	struct zdev *dev = new_dev(alloc, size, 0, false);
	int r = snap_load(dev, snap, NULL, NULL, NULL, err);

	ck_assert_msg(r == -EINVAL, "load: %d %s (want %s)", r, err, want);
	ck_assert_msg(strstr(err, want) && strncmp(err, "persist=", 8) == 0 &&
			      strstr(err, snap),
		      "message: %s (want %s)", err, want);
	zdev_destroy(dev);
}

START_TEST(test_refusals)
{
	const char *alloc = backends[_i];
	uint64_t s = seed + 200 + (uint64_t)_i, size = 256 * 1024;
	unsigned char *shadow = calloc(1, size), *good;
	char err[SNAP_ERR_LEN], path[400];
	struct zdev *dev;
	size_t len;

	ck_assert_ptr_nonnull(shadow);
	dev = new_dev(alloc, size, 0, false);
	ck_assert_int_eq(snap_load(dev, snap, NULL, NULL, NULL, err), 0);
	fill_dev(dev, shadow, size, &s);
	ck_assert_msg(snap_write(dev, snap, NULL, err) == 0, "%s", err);
	zdev_destroy(dev);
	good = slurp(snap, &len);

	refused(alloc, size + SEC, "it holds a device of 262144 bytes");
	refused(alloc, size - SEC, "never truncated or padded");
	/* Every 97th byte flipped, and cuts at every 89th. */
	for (size_t at = 0; at < len; at += 97) {
		good[at] ^= 0x10;
		spill(snap, good, len);
		good[at] ^= 0x10;
		refused(alloc, size, "snapshot refused");
	}
	for (size_t at = 0; at < len; at += 89) {
		spill(snap, good, at);
		refused(alloc, size, at < ZSNAP_HDR_SIZE ? "cut short: "
							 : "cut short at byte");
	}
	spill(snap, good, len);

	/* A write into a missing directory: an error, nothing made. */
	snprintf(path, sizeof(path), "%s/missing/snap", dir);
	dev = new_dev(alloc, size, 0, false);
	ck_assert_int_eq(snap_write(dev, path, NULL, err), -ENOENT);
	ck_assert_msg(strstr(err, "snapshot not written: create"), "%s", err);
	zdev_destroy(dev);
	free(good);
	free(shadow);
}
END_TEST

START_TEST(test_consume)
{
	char err[SNAP_ERR_LEN], c[400], tmp[400];
	struct zdev *dev = new_dev(backends[0], 1 << 20, 0, false);

	ck_assert_int_eq(snap_write(dev, snap, NULL, err), 0);
	ck_assert(!snap_consumed_exists(snap));
	ck_assert_int_eq(snap_consume(snap, err), 0);
	snprintf(c, sizeof(c), "%s%s", snap, SNAP_CONSUMED_SUFFIX);
	ck_assert_int_eq(access(snap, F_OK), -1);
	ck_assert_int_eq(access(c, F_OK), 0);
	ck_assert(snap_consumed_exists(snap));
	/* Nothing at PATH: a load finds nothing, consuming fails. */
	ck_assert_int_eq(snap_load(dev, snap, NULL, NULL, NULL, err), 0);
	ck_assert_int_eq(snap_consume(snap, err), -ENOENT);
	snap_remove_consumed(snap);
	ck_assert(!snap_consumed_exists(snap));

	snprintf(tmp, sizeof(tmp), "%s.tmp.Ab12Cd", snap);
	spill(tmp, (const unsigned char *)"x", 1);
	ck_assert_uint_eq(snap_remove_stale(snap), 1);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_uint_eq(snap_remove_stale(snap), 0);
	zdev_destroy(dev);
}
END_TEST

static Suite *snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_roundtrip, 0, nbackends);
	tcase_add_loop_test(tc, test_backing, 0, nbackends);
	tcase_add_loop_test(tc, test_refusals, 0, nbackends);
	tcase_add_test(tc, test_consume);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!test_daemon_init("test_daemon_snapshot"))
		return 1;
	return test_run_suite(snapshot_suite());
}
