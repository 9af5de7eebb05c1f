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
#include "pack.h"
#include "snapshot.h"
#include "snapshot_internal.h"
#include "test_daemon_common.h"
#include "test_rig.h"
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

/* A device; @zstd: its hot codec's zstd level (0: LZ4); @rc: the cold
 * tier's (0: off). */
static struct zdev *new_dev_codec(const char *allocator, uint64_t size,
				  uint64_t mem_limit, bool shrinkable, int zstd,
				  int rc)
{
	struct zdev_config dc = rig_dev_config(allocator, size, mem_limit);
	struct zdev *dev;
	int e;

	dc.shrinkable = shrinkable;
	dc.zstd_level = zstd;
	dc.recompress_level = rc;
	dev = zdev_create(&dc, &e);
	ck_assert_msg(dev, "zdev_create %s: %s", allocator, strerror(-e));
	return dev;
}

static struct zdev *new_dev(const char *allocator, uint64_t size,
			    uint64_t mem_limit, bool shrinkable)
{
	return new_dev_codec(allocator, size, mem_limit, shrinkable, 0, 0);
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
	struct zwb_config wc = rig_wb_config(limit);
	struct snap_stats st;
	struct zdev *dev, *dev2;
	struct zwb *wb, *wb2;

	ck_assert_ptr_nonnull(shadow);
	snprintf(bk, sizeof(bk), "%s/backing", dir);
	wc.backing = bk;
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

/* --- the cold tier and the hot codec ------------------------------------- */

static const enum zstat cold_keys[] = {
	ZSTAT_orig_data_size, ZSTAT_compr_data_size, ZSTAT_same_pages,
	ZSTAT_huge_pages,     ZSTAT_packed_sectors,  ZSTAT_pack_bytes,
	ZSTAT_pack_dead_bytes, ZSTAT_packs,	     ZSTAT_bd_count,
};

static void same_cold_counters(struct zdev *a, struct zdev *b)
{
	for (size_t i = 0; i < sizeof(cold_keys) / sizeof(cold_keys[0]); i++)
		ck_assert_msg(stat_of(a, cold_keys[i]) ==
				      stat_of(b, cold_keys[i]),
			      "counter %zu: %llu before, %llu after", i,
			      (unsigned long long)stat_of(a, cold_keys[i]),
			      (unsigned long long)stat_of(b, cold_keys[i]));
}

/*
 * Text (packs well), some random and same-filled sectors; packed; then
 * every 5th sector overwritten and a stretch trimmed, so that packs have
 * dead slots.
 */
static void fill_cold(struct zdev *dev, unsigned char *shadow, uint64_t size,
		      uint64_t *s)
{
	struct zdev_recompress_result res;

	for (uint64_t off = 0; off < size; off += SEC) {
		unsigned int k = (unsigned int)(off / SEC % 23);

		fill(shadow + off, SEC, k == 3 ? K_RANDOM : k == 7 ? K_SAME
								  : K_TEXT,
		     s);
		ck_assert_int_eq(zdev_write(dev, shadow + off, SEC, off, false),
				 0);
	}
	ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0, NULL,
					 NULL, &res),
			 0);
	ck_assert_uint_gt(stat_of(dev, ZSTAT_packed_sectors), size / SEC / 2);
	for (uint64_t off = 0; off < size; off += 5 * SEC) {
		fill(shadow + off, SEC, K_TEXT, s);
		ck_assert_int_eq(zdev_write(dev, shadow + off, SEC, off, false),
				 0);
	}
	ck_assert_int_eq(zdev_trim(dev, 8 * SEC, 64 * SEC), 0);
	memset(shadow + 64 * SEC, 0, 8 * SEC);
	ck_assert_uint_gt(stat_of(dev, ZSTAT_pack_dead_bytes), 0);
}

START_TEST(test_cold)
{
	const char *alloc = backends[_i], *other = backends[(_i + 1) % nbackends];
	uint64_t s = seed + 300 + (uint64_t)_i, size = 2 * 1024 * 1024;
	unsigned char *shadow = calloc(1, size), *orig;
	char err[SNAP_ERR_LEN];
	struct snap_stats st, lst;
	struct zdev *dev, *dev2;
	uint64_t stored;

	ck_assert_ptr_nonnull(shadow);
	dev = new_dev_codec(alloc, size, 0, false, 0, 3);
	fill_cold(dev, shadow, size, &s);
	ck_assert_msg(snap_write(dev, snap, &st, err) == 0, "%s", err);
	ck_assert_uint_eq(st.packed, stat_of(dev, ZSTAT_packed_sectors));
	ck_assert_uint_eq(st.packs, stat_of(dev, ZSTAT_packs));
	ck_assert_uint_eq(st.data_bytes, stat_of(dev, ZSTAT_orig_data_size));
	/*
	 * Compressed as stored: the file is the pool's bytes and the record
	 * heads (and 8 bytes a slot), not the data decoded.
	 */
	stored = stat_of(dev, ZSTAT_compr_data_size);
	ck_assert_uint_le(st.file_bytes,
			  stored + ZSNAP_HDR_SIZE +
				  (st.objects + st.same + st.packs + 1) *
					  ZSNAP_REC_SIZE +
				  st.packs * 8 * PACK_MAX_SLOTS);
	ck_assert_uint_lt(st.file_bytes, st.data_bytes / 2);

	/* Back on the other allocator: the same bytes, the same counters. */
	dev2 = new_dev_codec(other, size, 0, false, 0, 3);
	ck_assert_msg(snap_load(dev2, snap, NULL, NULL, &lst, err) == 1, "%s",
		      err);
	ck_assert_uint_eq(lst.packs, st.packs);
	ck_assert_uint_eq(lst.packed, st.packed);
	check_range(dev2, shadow, 0, size);
	same_cold_counters(dev, dev2);
	orig = malloc(size);
	ck_assert_ptr_nonnull(orig);
	memcpy(orig, shadow, size);
	/* Packs brought back live as made ones do: write over the rest. */
	for (uint64_t off = SEC; off < size; off += 3 * SEC) {
		fill(shadow + off, SEC, K_RANDOM, &s);
		ck_assert_int_eq(zdev_write(dev2, shadow + off, SEC, off,
					    false),
				 0);
	}
	check_range(dev2, shadow, 0, size);
	zdev_destroy(dev2);

	/*
	 * Packs are cut into whole pages whatever the device's huge
	 * threshold (pack.h): a device whose threshold is 1 byte holds every
	 * pack as a pack, the same bytes.
	 */
	{
		struct zdev_config dc = {
			.size = size, .allocator = alloc, .acceleration = 1,
			.huge_threshold = 1, .recompress_level = 3,
		};
		int e;

		dev2 = zdev_create(&dc, &e);
		ck_assert_msg(dev2, "zdev_create: %s", strerror(-e));
		ck_assert_msg(snap_load(dev2, snap, NULL, NULL, &lst, err) == 1,
			      "%s", err);
		ck_assert_uint_eq(lst.packs, st.packs);
		same_cold_counters(dev, dev2);
		ck_assert_uint_eq(stat_of(dev2, ZSTAT_packs), lst.packs);
		ck_assert_uint_eq(stat_of(dev2, ZSTAT_orig_data_size),
				  stat_of(dev, ZSTAT_orig_data_size));
		check_range(dev2, orig, 0, size);
		zdev_destroy(dev2);
	}
	zdev_destroy(dev);
	free(orig);
	free(shadow);
}
END_TEST

/*
 * zstd hot objects: a compressor=zstd device's snapshot holds them as
 * they are; loaded into a zstd device they are the same objects (the
 * same bytes stored), into an LZ4 one they are encoded anew, and back.
 */
START_TEST(test_zstd)
{
	const char *alloc = backends[_i];
	uint64_t s = seed + 400 + (uint64_t)_i, size = 1024 * 1024;
	unsigned char *shadow = calloc(1, size);
	char err[SNAP_ERR_LEN];
	struct snap_stats st;
	struct zdev *z, *z2, *l;
	uint64_t zc;

	ck_assert_ptr_nonnull(shadow);
	z = new_dev_codec(alloc, size, 0, false, 3, 0);
	fill_dev(z, shadow, size, &s);
	zc = stat_of(z, ZSTAT_compr_data_size);
	ck_assert_msg(snap_write(z, snap, &st, err) == 0, "%s", err);
	/* Not decoded: about the pool's bytes. */
	ck_assert_uint_le(st.file_bytes,
			  zc + ZSNAP_HDR_SIZE +
				  (st.objects + st.same + 1) * ZSNAP_REC_SIZE);

	z2 = new_dev_codec(alloc, size, 0, false, 3, 0);
	ck_assert_msg(snap_load(z2, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(z2, shadow, 0, size);
	same_counters(z, z2);
	zdev_destroy(z2);

	/* zstd -> LZ4 -> zstd. */
	l = new_dev_codec(alloc, size, 0, false, 0, 0);
	ck_assert_msg(snap_load(l, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(l, shadow, 0, size);
	ck_assert_uint_ne(stat_of(l, ZSTAT_compr_data_size), zc);
	ck_assert_msg(snap_write(l, snap, NULL, err) == 0, "%s", err);
	z2 = new_dev_codec(alloc, size, 0, false, 3, 0);
	ck_assert_msg(snap_load(z2, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(z2, shadow, 0, size);
	same_counters(z, z2);
	zdev_destroy(z2);
	zdev_destroy(l);
	zdev_destroy(z);
	free(shadow);
}
END_TEST

/* A pack evicted to the backing file goes out as PACK_EVICTED and comes
 * back to the new backing file (or to the pool without one). */
START_TEST(test_evicted_pack)
{
	const char *alloc = backends[_i];
	uint64_t s = seed + 500 + (uint64_t)_i, size = 1024 * 1024, evicted;
	unsigned char *shadow = calloc(1, size);
	char err[SNAP_ERR_LEN], bk[320], werr[512];
	struct zwb_config wc = rig_wb_config(0);
	struct snap_stats st;
	struct zdev *dev, *dev2;
	struct zwb *wb, *wb2;

	ck_assert_ptr_nonnull(shadow);
	snprintf(bk, sizeof(bk), "%s/backing", dir);
	wc.backing = bk;
	dev = new_dev_codec(alloc, size, 0, true, 0, 3);
	wb = zwb_create(dev, &wc, werr, sizeof(werr));
	ck_assert_msg(wb, "zwb_create: %s", werr);
	fill_cold(dev, shadow, size, &s);
	ck_assert_int_eq(zdev_evict_packs(dev, UINT64_MAX, NULL, NULL,
					  &evicted),
			 0);
	ck_assert_uint_gt(evicted, 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packs), 0);
	ck_assert_msg(snap_write(dev, snap, &st, err) == 0, "%s", err);
	ck_assert_uint_eq(st.packs, evicted);

	dev2 = new_dev_codec(alloc, size, 0, true, 0, 3);
	snprintf(bk, sizeof(bk), "%s/backing2", dir);
	wb2 = zwb_create(dev2, &wc, werr, sizeof(werr));
	ck_assert_msg(wb2, "zwb_create: %s", werr);
	ck_assert_msg(snap_load(dev2, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(dev2, shadow, 0, size);
	same_cold_counters(dev, dev2);
	zwb_destroy(wb2);
	zdev_destroy(dev2);
	zwb_destroy(wb);
	zdev_destroy(dev);

	/* No backing file: the packs go to the pool. */
	dev2 = new_dev_codec(alloc, size, 0, false, 0, 3);
	ck_assert_msg(snap_load(dev2, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(dev2, shadow, 0, size);
	ck_assert_uint_eq(stat_of(dev2, ZSTAT_packs), evicted);
	zdev_destroy(dev2);
	free(shadow);
}
END_TEST

/* Record @i's offset in @f (@len bytes); 0 if none. */
static size_t record_at(const unsigned char *f, size_t len, unsigned int type,
			unsigned int nth)
{
	for (size_t o = ZSNAP_HDR_SIZE; o + ZSNAP_REC_SIZE <= len;) {
		uint32_t l = snap_get32(f + o + ZSNAP_REC_OFF_LEN);

		if (f[o + ZSNAP_REC_OFF_TYPE] == type && nth-- == 0)
			return o;
		o += ZSNAP_REC_SIZE + l;
	}
	return 0;
}

/* Make the record at @o and the trailer's checksums right again. */
static void reseal(unsigned char *f, size_t len, size_t o)
{
	uint32_t l = snap_get32(f + o + ZSNAP_REC_OFF_LEN);
	unsigned char *t = f + len - ZSNAP_REC_SIZE;

	snap_put64(f + o + ZSNAP_REC_OFF_CHECKSUM,
		   snap_rec_checksum(f + o, f + o + ZSNAP_REC_SIZE, l));
	snap_put64(t + ZSNAP_REC_OFF_WORD,
		   XXH3_64bits(f, len - ZSNAP_REC_SIZE));
	snap_put64(t + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(t, NULL, 0));
}

/*
 * PACK records damaged so that their checksums still hold (a hostile or
 * buggy writer): each refused by what is wrong, never loaded.
 */
START_TEST(test_pack_refusals)
{
	const char *alloc = backends[_i];
	uint64_t s = seed + 600 + (uint64_t)_i, size = 1024 * 1024;
	unsigned char *shadow = calloc(1, size), *good;
	char err[SNAP_ERR_LEN], want[80];
	struct zdev *dev;
	size_t len, o, dead_i = 0;
	unsigned int n, nth;

	ck_assert_ptr_nonnull(shadow);
	dev = new_dev_codec(alloc, size, 0, false, 0, 3);
	fill_cold(dev, shadow, size, &s);
	ck_assert_msg(snap_write(dev, snap, NULL, err) == 0, "%s", err);
	zdev_destroy(dev);
	good = slurp(snap, &len);
	/* A pack with a dead slot before its last live one. */
	for (nth = 0; (o = record_at(good, len, ZSNAP_REC_PACK, nth)); nth++) {
		n = (unsigned int)snap_get64(good + o + ZSNAP_REC_OFF_WORD);
		/* Dead by a write (an OBJECT record), not by the trim. */
		for (dead_i = 0; dead_i + 1 < n; dead_i++) {
			uint64_t w = snap_get64(good + o + ZSNAP_REC_SIZE +
						8 * dead_i);
			uint64_t sec = w & ~ZSNAP_SLOT_DEAD;

			if ((w & ZSNAP_SLOT_DEAD) && sec % 5 == 0 &&
			    (sec < 64 || sec >= 72))
				break;
		}
		if (dead_i + 1 < n &&
		    !(snap_get64(good + o + ZSNAP_REC_SIZE + 8 * (n - 1)) &
		      ZSNAP_SLOT_DEAD))
			break;
	}
	ck_assert_msg(o, "no pack with a dead slot before a live one");
	n = (unsigned int)snap_get64(good + o + ZSNAP_REC_OFF_WORD);

	/* Unsealed: the checksum. */
	good[o + ZSNAP_REC_SIZE + 8 * n + 40] ^= 1;
	spill(snap, good, len);
	refused(alloc, size, "checksum mismatch");
	/* Sealed: a byte of the frame, a slot's sector, the slot count, a
	 * dead slot made live (its sector is in another record). */
	reseal(good, len, o);
	spill(snap, good, len);
	refused(alloc, size, "a pack object that does not decode");
	good[o + ZSNAP_REC_SIZE + 8 * n + 40] ^= 1;
	good[o + ZSNAP_REC_SIZE] ^= 2;
	reseal(good, len, o);
	spill(snap, good, len);
	refused(alloc, size, "pack slot 0: sector");
	good[o + ZSNAP_REC_SIZE] ^= 2;
	snap_put64(good + o + ZSNAP_REC_OFF_WORD, PACK_MAX_SLOTS + 1);
	reseal(good, len, o);
	spill(snap, good, len);
	snprintf(want, sizeof(want),
		 "a pack of %u slots; this zramd holds packs of 1..%u",
		 PACK_MAX_SLOTS + 1, PACK_MAX_SLOTS);
	refused(alloc, size, want);
	snap_put64(good + o + ZSNAP_REC_OFF_WORD, n);
	good[o + ZSNAP_REC_SIZE + 8 * dead_i + 7] ^= 0x80;
	reseal(good, len, o);
	spill(snap, good, len);
	refused(alloc, size, "is named twice");
	good[o + ZSNAP_REC_SIZE + 8 * dead_i + 7] ^= 0x80;
	reseal(good, len, o);
	spill(snap, good, len);
	dev = new_dev_codec(alloc, size, 0, false, 0, 3);
	ck_assert_msg(snap_load(dev, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	check_range(dev, shadow, 0, size);
	zdev_destroy(dev);
	free(good);
	free(shadow);
}
END_TEST

/* A version 1 file (before packs) still loads. */
START_TEST(test_version1)
{
	unsigned char f[ZSNAP_HDR_SIZE + 2 * ZSNAP_REC_SIZE] = { 0 }, *r, *t;
	unsigned char buf[SEC], want[SEC];
	char err[SNAP_ERR_LEN];
	struct zdev *dev = new_dev(backends[0], 64 * SEC, 0, false);

	memcpy(f, ZSNAP_MAGIC, ZSNAP_MAGIC_LEN);
	snap_put32(f + ZSNAP_HDR_OFF_VERSION, 1);
	snap_put32(f + ZSNAP_HDR_OFF_HDRSIZE, ZSNAP_HDR_SIZE);
	snap_put64(f + ZSNAP_HDR_OFF_DEVSIZE, 64 * SEC);
	snap_put32(f + ZSNAP_HDR_OFF_SECTSIZE, ZSNAP_SECTOR_SIZE);
	snap_put32(f + ZSNAP_HDR_OFF_CODECS, ZSNAP_CODECS_V1);
	snap_put64(f + ZSNAP_HDR_OFF_CHECKSUM,
		   XXH3_64bits(f, ZSNAP_HDR_OFF_CHECKSUM));
	r = f + ZSNAP_HDR_SIZE;
	r[ZSNAP_REC_OFF_TYPE] = ZSNAP_REC_SAME;
	snap_put64(r + ZSNAP_REC_OFF_SECTOR, 5);
	snap_put64(r + ZSNAP_REC_OFF_WORD, 0x0123456789abcdefull);
	snap_put64(r + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(r, NULL, 0));
	t = r + ZSNAP_REC_SIZE;
	t[ZSNAP_REC_OFF_TYPE] = ZSNAP_REC_END;
	snap_put64(t + ZSNAP_REC_OFF_SECTOR, 1);
	snap_put64(t + ZSNAP_REC_OFF_WORD,
		   XXH3_64bits(f, sizeof(f) - ZSNAP_REC_SIZE));
	snap_put64(t + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(t, NULL, 0));
	spill(snap, f, sizeof(f));
	ck_assert_msg(snap_load(dev, snap, NULL, NULL, NULL, err) == 1, "%s",
		      err);
	for (unsigned int i = 0; i < SEC / 8; i++)
		memcpy(want + 8 * i, &(uint64_t){ 0x0123456789abcdefull }, 8);
	ck_assert_int_eq(zdev_read(dev, buf, SEC, 5 * SEC), 0);
	ck_assert_mem_eq(buf, want, SEC);
	zdev_destroy(dev);
	/* A pack record in a version 1 file is refused. */
	r[ZSNAP_REC_OFF_TYPE] = ZSNAP_REC_PACK;
	r[ZSNAP_REC_OFF_CODEC] = ZSNAP_CODEC_ZSTD;
	snap_put64(r + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(r, NULL, 0));
	snap_put64(t + ZSNAP_REC_OFF_WORD,
		   XXH3_64bits(f, sizeof(f) - ZSNAP_REC_SIZE));
	snap_put64(t + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(t, NULL, 0));
	spill(snap, f, sizeof(f));
	refused(backends[0], 64 * SEC, "a pack record in a version 1 file");
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
	tcase_add_loop_test(tc, test_cold, 0, nbackends);
	tcase_add_loop_test(tc, test_zstd, 0, nbackends);
	tcase_add_loop_test(tc, test_evicted_pack, 0, nbackends);
	tcase_add_loop_test(tc, test_pack_refusals, 0, nbackends);
	tcase_add_test(tc, test_version1);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!test_daemon_init("test_daemon_snapshot"))
		return 1;
	return test_run_suite(snapshot_suite());
}
