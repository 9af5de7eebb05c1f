/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the cold tier: the zstd codec (daemon/codec.c), the pack
 * format (daemon/pack.c) and packs in a device (daemon/recompress.c):
 * reads, overwrites, trims, zeroes and extents of packed sectors, repacking
 * of sparse packs, the counters, and a shadow-model stress test in which
 * recompression passes run while several threads read, write, trim and
 * zero. Every test runs once per allocator built in.
 *
 * Environment: TEST_SEED replays a run; TEST_ITERATIONS sets the length of
 * the stress test (check-soak runs it longer).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "pack.h"
#include "sectors.h"
#include "test_daemon_common.h"

/* Text-like data that compresses about as real files do (2-4x). */
static void fill_words(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *words[] = { "zram ",	 "sector ", "compress ",
				       "zstd ",	 "page ",   "the ",
				       "of ",	 "\n",	    "pack ",
				       "cold ",	 "idle ",   "tier " };

	for (size_t i = 0; i < n;) {
		const char *w = words[rnd(s) % 12];

		for (; *w && i < n; w++)
			p[i++] = (unsigned char)*w;
		if (rnd(s) % 16 == 0 && i < n)
			p[i++] = (unsigned char)rnd(s);
	}
}

/* A sector of a kind drawn at random, mostly compressible. */
static void fill_sector(unsigned char *p, uint64_t *s)
{
	switch (rnd(s) % 8) {
	case 0:
		fill(p, SEC, K_ZERO, s);
		break;
	case 1:
		fill(p, SEC, K_SAME, s);
		break;
	case 2:
		fill(p, SEC, K_RANDOM, s);
		break;
	case 3:
		fill(p, SEC, K_MIXED, s);
		break;
	default:
		fill_words(p, SEC, s);
		break;
	}
}

/* --- codec ----------------------------------------------------------------- */

START_TEST(test_codec_parse)
{
	int level;

	ck_assert_int_eq(codec_parse("lz4", true, false, &level), CODEC_ID_LZ4);
	ck_assert_int_eq(codec_parse("lz4", false, true, &level), -1);
	ck_assert_int_eq(codec_parse("off", false, true, &level), CODEC_ID_OFF);
	ck_assert_int_eq(codec_parse("off", true, false, &level), -1);
	ck_assert_int_eq(codec_parse("zstd", true, false, &level),
			 CODEC_ID_ZSTD);
	ck_assert_int_eq(level, CODEC_ZSTD_LEVEL_DEFAULT);
	/* recompress=zstd: the cold tier's own default level */
	ck_assert_int_eq(codec_parse("zstd", false, true, &level),
			 CODEC_ID_ZSTD);
	ck_assert_int_eq(level, CODEC_RECOMPRESS_LEVEL_DEFAULT);
	ck_assert_int_eq(codec_parse("zstd:19", true, true, &level),
			 CODEC_ID_ZSTD);
	ck_assert_int_eq(level, 19);
	ck_assert_int_eq(codec_parse("zstd:1", true, true, &level),
			 CODEC_ID_ZSTD);
	ck_assert_int_eq(level, 1);
	static const char *bad[] = { "zstd:0", "zstd:20", "zstd:", "zstd:-1",
				     "zstd:3x", "zstd3", "ZSTD", "", "zstd:99999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(codec_parse(bad[i], true, true, &level) == -1,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_codec_zstd)
{
	static unsigned char src[SEC], back[SEC], copy[SEC];
	uint64_t s = seed;
	struct codec_out c;

	for (int i = 0; i < 200; i++) {
		fill_sector(src, &s);
		codec_zstd_encode(src, 1 + i % 19, CODEC_HUGE_THRESHOLD_DEFAULT,
				  &c);
		switch (c.kind) {
		case CODEC_ZERO:
		case CODEC_SAME:
			ck_assert(codec_same_filled(src, &c.word));
			break;
		case CODEC_RAW:
			ck_assert_uint_eq(c.len, SEC);
			ck_assert_ptr_eq(c.data, src);
			break;
		case CODEC_COMPRESSED:
			ck_assert_uint_le(c.len, CODEC_HUGE_THRESHOLD_DEFAULT);
			memcpy(copy, c.data, c.len);
			ck_assert_int_eq(codec_zstd_decode(copy, c.len, back),
					 0);
			ck_assert_mem_eq(back, src, SEC);
			/* Damaged: refused, never a wrong sector that says ok. */
			ck_assert_int_eq(codec_zstd_decode(copy, c.len - 1,
							   back),
					 -EIO);
			ck_assert_int_eq(codec_zstd_decode(copy, 0, back), -EIO);
			copy[0] ^= 0xff;
			ck_assert_int_eq(codec_zstd_decode(copy, c.len, back),
					 -EIO);
			break;
		}
	}
	/* A frame of another length is refused. */
	fill_words(src, SEC, &s);
	long n = codec_zstd_compress(src, SEC / 2, copy, sizeof(copy), 3);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_zstd_decode(copy, (unsigned int)n, back), -EIO);
	ck_assert_int_eq(codec_zstd_decompress(copy, (size_t)n, back, SEC / 2),
			 0);
	ck_assert_mem_eq(back, src, SEC / 2);
	/* Too small an output: -ENOSPC, nothing written past it. */
	memset(copy, 0xa5, sizeof(copy));
	fill(src, SEC, K_RANDOM, &s);
	ck_assert_int_eq(codec_zstd_compress(src, SEC, copy, 100, 3), -ENOSPC);
	for (size_t i = 100; i < sizeof(copy); i++)
		ck_assert_uint_eq(copy[i], 0xa5);
}
END_TEST

/* --- the pack format ---------------------------------------------------- */

START_TEST(test_pack_roundtrip)
{
	static unsigned char data[PACK_MAX_SLOTS * SEC], back[PACK_MAX_SLOTS * SEC];
	static unsigned char obj[PACK_OBJ_MAX], scratch[PACK_SCRATCH_SIZE];
	uint64_t secs[PACK_MAX_SLOTS], got[PACK_MAX_SLOTS], s = seed;
	size_t len;
	int n;

	for (unsigned int i = 0; i < PACK_MAX_SLOTS; i++) {
		secs[i] = UINT64_C(1) << 40 | (i * 3 + (i > 8 ? 1000 : 0));
		fill_words(data + i * SEC, SEC, &s);
	}
	/* All that fit, in order; the object never exceeds its cap. */
	n = pack_build(secs, PACK_MAX_SLOTS, data, 3, obj, sizeof(obj), &len,
		       scratch);
	ck_assert_int_ge(n, 2);
	ck_assert_uint_le(len, PACK_OBJ_MAX);
	/* A pack is one frame over many chunks: all fit, past one chunk. */
	ck_assert_int_eq(n, PACK_MAX_SLOTS);
	ck_assert_uint_gt(len, PACK_CHUNK_MAX);
	/* Whole pages but the last, which holds the rest. */
	{
		unsigned int c = pack_nchunks(len);

		ck_assert_uint_eq(c, (len + PACK_CHUNK_MAX - 1) / PACK_CHUNK_MAX);
		ck_assert_uint_eq(pack_chunk_off(len, c, 0), 0);
		ck_assert_uint_eq(pack_chunk_off(len, c, c), len);
		for (unsigned int i = 0; i < c; i++) {
			size_t a = pack_chunk_off(len, c, i),
			       b = pack_chunk_off(len, c, i + 1);

			ck_assert_uint_gt(b, a);
			if (i + 1 < c)
				ck_assert_uint_eq(b - a, PACK_CHUNK_MAX);
			else
				ck_assert_uint_le(b - a, PACK_CHUNK_MAX);
		}
		ck_assert_uint_eq(pack_nchunks(PACK_CHUNK_MAX), 1);
		ck_assert_uint_eq(pack_nchunks(PACK_CHUNK_MAX + 1), 2);
	}
	ck_assert_int_eq(pack_peek(obj, len, got), n);
	ck_assert_int_eq(pack_decode(obj, len, got, back), n);
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(got[i], secs[i]);
	ck_assert_mem_eq(back, data, (size_t)n * SEC);

	/* Incompressible: not even one sector fits one chunk. */
	fill(data, SEC, K_RANDOM, &s);
	ck_assert_int_eq(pack_build(secs, 1, data, 3, obj, SEC, &len,
				    scratch),
			 0);
	/* Bad arguments. */
	ck_assert_int_eq(pack_encode(secs, 0, data, 3, obj, sizeof(obj)),
			 -EINVAL);
	secs[1] = secs[0];
	ck_assert_int_eq(pack_encode(secs, 2, data, 3, obj, sizeof(obj)),
			 -EINVAL);
	secs[1] = secs[0] + (UINT64_C(1) << 32) + 1;
	ck_assert_int_eq(pack_encode(secs, 2, data, 3, obj, sizeof(obj)),
			 -EINVAL);
}
END_TEST

START_TEST(test_pack_corrupt)
{
	static unsigned char data[4 * SEC], back[PACK_MAX_SLOTS * SEC];
	static unsigned char obj[PACK_OBJ_MAX], bad[PACK_OBJ_MAX];
	uint64_t secs[4] = { 7, 8, 9, 12 }, s = seed;
	long len;

	for (int i = 0; i < 4; i++)
		fill(data + i * SEC, SEC, K_TEXT, &s);
	len = pack_encode(secs, 4, data, 3, obj, sizeof(obj));
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(pack_decode(obj, (size_t)len, NULL, back), 4);
	/* Every single-byte change and every truncation is refused. */
	for (long i = 0; i < len; i++) {
		memcpy(bad, obj, (size_t)len);
		bad[i] ^= 0x5a;
		int r = pack_decode(bad, (size_t)len, NULL, back);

		/*
		 * A changed base or delta may be a valid pack of other
		 * sectors: the caller checks them (the backing file's record
		 * names its base). zstd has no checksum by default: a changed
		 * literal may decode.
		 */
		if (r == 4 && i >= 16 && i < (long)pack_hdr_size(4)) {
			uint64_t got[PACK_MAX_SLOTS];

			pack_peek(bad, (size_t)len, got);
			ck_assert(memcmp(got, secs, sizeof(secs)) != 0);
			continue;
		}
		if (r == 4) {
			ck_assert_int_ge(i, (long)pack_hdr_size(4));
			continue;
		}
		ck_assert_int_eq(r, -EIO);
	}
	for (long l = 0; l < len; l++)
		ck_assert_int_eq(pack_decode(obj, (size_t)l, NULL, back), -EIO);
}
END_TEST

/* --- packs in a device ---------------------------------------------------- */

#define NSECT 512u

static struct zdev *make_dev_with(const char *alloc, uint64_t nsect,
				  int hot_zstd, unsigned int huge_threshold,
				  unsigned int pack_slots)
{
	struct zdev_config cfg = {
		.size = nsect * SEC,
		.allocator = alloc,
		.acceleration = 1,
		.huge_threshold = huge_threshold,
		.recompress_level = 3,
		.zstd_level = hot_zstd,
		.pack_slots = pack_slots,
	};
	int err;
	struct zdev *dev = zdev_create(&cfg, &err);

	ck_assert_msg(dev, "zdev_create: %s", strerror(-err));
	return dev;
}

static struct zdev *make_dev(const char *alloc, uint64_t nsect, int hot_zstd)
{
	return make_dev_with(alloc, nsect, hot_zstd,
			     CODEC_HUGE_THRESHOLD_DEFAULT, 0);
}

/* Holes are exactly the all-zero sectors of @shadow. */
struct ext_check {
	const unsigned char *shadow;
	uint64_t next;
};

static int ext_cb(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	struct ext_check *x = arg;
	static const unsigned char zero[SEC];

	ck_assert_uint_eq(off, x->next);
	for (uint64_t o = off; o < off + len; o += SEC) {
		bool z = memcmp(x->shadow + o, zero, SEC) == 0;

		ck_assert_msg(z == (type != 0), "sector %llu: type %u",
			      (unsigned long long)(o / SEC), type);
	}
	x->next = off + len;
	return 0;
}

static void check_extents(struct zdev *dev, const unsigned char *shadow,
			  uint64_t size)
{
	struct ext_check x = { shadow, 0 };

	ck_assert_int_eq(zdev_extents(dev, size, 0, false, ext_cb, &x), 0);
	ck_assert_uint_eq(x.next, size);
}

static void test_device_with(const char *alloc, int hot_zstd)
{
	unsigned char *shadow = calloc(NSECT, SEC);
	struct zdev *dev = make_dev(alloc, NSECT, hot_zstd);
	struct zdev_recompress_result res;
	uint64_t s = seed, before_mem, before_compr, hot0;
	unsigned char buf[SEC];

	for (unsigned int i = 0; i < NSECT; i++) {
		fill_sector(shadow + (size_t)i * SEC, &s);
		ck_assert_int_eq(zdev_write(dev, shadow + (size_t)i * SEC, SEC,
					    (uint64_t)i * SEC, false),
				 0);
	}
	hot0 = stat_of(dev, ZSTAT_hot_sectors);
	before_compr = stat_of(dev, ZSTAT_compr_data_size);
	before_mem = stat_of(dev, ZSTAT_mem_used_total);
	ck_assert_uint_gt(hot0, NSECT / 2);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_hot_bytes), before_compr);

	/* First pass: marks only. */
	ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_IDLE, 0, NULL,
					 NULL, &res),
			 0);
	ck_assert_uint_eq(res.packed, 0);
	ck_assert_uint_gt(res.marked, 0);
	/* Touch the first 16 sectors: not idle any more. */
	check_range(dev, shadow, 0, 16 * SEC);
	ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_IDLE, 0, NULL,
					 NULL, &res),
			 0);
	ck_assert_uint_gt(res.packed, NSECT / 4);
	ck_assert_uint_gt(res.packs, 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packed_sectors), res.packed);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_recompressions), res.packed);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packs), res.packs);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_hot_sectors), hot0 - res.packed);
	ck_assert_uint_gt(stat_of(dev, ZSTAT_pack_bytes), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_pack_dead_bytes), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_compr_data_size),
			  stat_of(dev, ZSTAT_hot_bytes) +
				  stat_of(dev, ZSTAT_pack_bytes));
	/* Denser: fewer compressed bytes, and no more pool memory. */
	ck_assert_uint_lt(stat_of(dev, ZSTAT_compr_data_size), before_compr);
	/* Packs span several pool objects (one frame of many sectors). */
	ck_assert_uint_gt(stat_of(dev, ZSTAT_pack_bytes) / res.packs,
			  CODEC_HUGE_THRESHOLD_DEFAULT);
	printf("cold tier %s (hot %s): %llu sectors in %llu packs, "
	       "compressed %llu -> %llu bytes, pool %llu -> %llu\n",
	       alloc, hot_zstd ? "zstd" : "lz4", (unsigned long long)res.packed,
	       (unsigned long long)res.packs,
	       (unsigned long long)before_compr,
	       (unsigned long long)stat_of(dev, ZSTAT_compr_data_size),
	       (unsigned long long)before_mem,
	       (unsigned long long)stat_of(dev, ZSTAT_mem_used_total));
	/*
	 * Hot LZ4 objects into zstd packs: less pool memory too. (From hot
	 * zstd the gain is small, and on a device this small the pool's
	 * partly filled zspages of the pack sizes can outweigh it.)
	 */
	if (!hot_zstd)
		ck_assert_uint_le(stat_of(dev, ZSTAT_mem_used_total),
				  before_mem);
	/* The first 16 were read in between: still hot. */
	uint64_t reads0 = stat_of(dev, ZSTAT_pack_reads);
	check_range(dev, shadow, 0, 16 * SEC);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_pack_reads), reads0);
	/* Every byte reads back; reads of packed sectors are counted. */
	check_range(dev, shadow, 0, (size_t)NSECT * SEC);
	ck_assert_uint_ge(stat_of(dev, ZSTAT_pack_reads), reads0 + res.packed);
	check_range(dev, shadow, 3 * SEC + 100, 5 * SEC + 7);
	check_extents(dev, shadow, (uint64_t)NSECT * SEC);

	/* Overwrite, trim, zero and patch packed sectors. */
	for (unsigned int i = 16; i < NSECT; i++) {
		unsigned char *p = shadow + (size_t)i * SEC;

		switch (i % 6) {
		case 0:
			fill_sector(p, &s);
			ck_assert_int_eq(zdev_write(dev, p, SEC,
						    (uint64_t)i * SEC, false),
					 0);
			break;
		case 1:
			memset(p, 0, SEC);
			ck_assert_int_eq(zdev_trim(dev, SEC, (uint64_t)i * SEC),
					 0);
			break;
		case 2:
			memset(p, 0, SEC);
			ck_assert_int_eq(zdev_zero(dev, SEC, (uint64_t)i * SEC),
					 0);
			break;
		case 3:
			fill(buf, 700, K_RANDOM, &s);
			memcpy(p + 1000, buf, 700);
			ck_assert_int_eq(zdev_write(dev, buf, 700,
						    (uint64_t)i * SEC + 1000,
						    false),
					 0);
			break;
		case 4:
			memset(p + 10, 0, 300);
			ck_assert_int_eq(zdev_zero(dev, 300,
						   (uint64_t)i * SEC + 10),
					 0);
			break;
		default:
			break;
		}
	}
	check_range(dev, shadow, 0, (size_t)NSECT * SEC);
	check_extents(dev, shadow, (uint64_t)NSECT * SEC);
	ck_assert_uint_gt(stat_of(dev, ZSTAT_pack_dead_bytes), 0);
	ck_assert_uint_lt(stat_of(dev, ZSTAT_packed_sectors), res.packed);

	/* Under pressure: every hot sector, and sparse packs repacked. */
	ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0, NULL,
					 NULL, &res),
			 0);
	ck_assert_uint_gt(res.packed, 0);
	ck_assert_uint_gt(res.repacks, 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_repacks), res.repacks);
	/* Dead bytes do not pile up: at most half of what packs hold. */
	ck_assert_uint_le(stat_of(dev, ZSTAT_pack_dead_bytes) * 2,
			  stat_of(dev, ZSTAT_pack_bytes));
	check_range(dev, shadow, 0, (size_t)NSECT * SEC);
	check_extents(dev, shadow, (uint64_t)NSECT * SEC);

	/* Trim everything: nothing is left, packs included. */
	ck_assert_int_eq(zdev_trim(dev, (size_t)NSECT * SEC, 0), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packs), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_pack_bytes), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_pack_dead_bytes), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packed_sectors), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_orig_data_size), 0);
	zdev_destroy(dev);
	free(shadow);
}

/*
 * The zstd level in the header of the pack of the first packed sector in
 * [@lo, @hi) (fill_sector() makes some sectors zero or same-filled).
 */
static unsigned int level_at(struct zdev *dev, uint64_t lo, uint64_t hi)
{
	static unsigned char obj[PACK_OBJ_MAX];
	struct sect_entry e;
	struct sect_ref ref;
	uint16_t level;
	long n = -1;

	for (uint64_t sector = lo; sector < hi && n < 0; sector++) {
		sect_lock(dev->tab, sector, &ref);
		e = sect_ref_get(&ref);
		if (sect_state(e) == SECT_PACKED)
			n = zdev_pack_fetch(dev, pack_of(e.val), obj);
		sect_unlock(&ref);
	}
	ck_assert_msg(n > 8, "no pack in sectors %llu to %llu",
		      (unsigned long long)lo, (unsigned long long)hi);
	memcpy(&level, obj + 6, sizeof(level)); /* pack.h: magic, nslots, level */
	return level;
}

/*
 * Idle passes pack at the device's level; passes under pressure at
 * ZDEV_RECOMPRESS_FAST_LEVEL at most.
 */
START_TEST(test_pressure_level)
{
	struct zdev_config cfg = {
		.size = NSECT * SEC, .allocator = backends[_i],
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.recompress_level = 9,
	};
	struct zdev_recompress_result res;
	unsigned char *shadow = calloc(NSECT, SEC);
	uint64_t s = seed + 77;
	struct zdev *dev;
	int err;

	dev = zdev_create(&cfg, &err);
	ck_assert_msg(dev, "zdev_create: %s", strerror(-err));
	for (unsigned int i = 0; i < NSECT / 2; i++) {
		fill_sector(shadow + (size_t)i * SEC, &s);
		ck_assert_int_eq(zdev_write(dev, shadow + (size_t)i * SEC, SEC,
					    (uint64_t)i * SEC, false),
				 0);
	}
	ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0, NULL,
					 NULL, &res),
			 0);
	ck_assert_uint_gt(res.packed, 0);
	ck_assert_uint_eq(level_at(dev, 0, NSECT / 2),
			  ZDEV_RECOMPRESS_FAST_LEVEL);
	for (unsigned int i = NSECT / 2; i < NSECT; i++) {
		fill_sector(shadow + (size_t)i * SEC, &s);
		ck_assert_int_eq(zdev_write(dev, shadow + (size_t)i * SEC, SEC,
					    (uint64_t)i * SEC, false),
				 0);
	}
	for (int pass = 0; pass < 2; pass++)
		ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_IDLE, 0,
						 NULL, NULL, &res),
				 0);
	/* Only idle passes saw the second half. */
	ck_assert_uint_eq(level_at(dev, NSECT / 2, NSECT), 9);
	check_range(dev, shadow, 0, (size_t)NSECT * SEC);
	zdev_destroy(dev);
	free(shadow);
}
END_TEST

START_TEST(test_device)
{
	test_device_with(backends[_i], 0);
}
END_TEST

START_TEST(test_device_hot_zstd)
{
	test_device_with(backends[_i], 3);
}
END_TEST

/* Recompression off: the pass does nothing. */
START_TEST(test_off)
{
	struct zdev_config cfg = {
		.size = 64 * SEC, .allocator = backends[_i], .acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
	};
	struct zdev_recompress_result res;
	unsigned char buf[SEC];
	uint64_t s = seed;
	int err;
	struct zdev *dev = zdev_create(&cfg, &err);

	ck_assert_ptr_nonnull(dev);
	fill_words(buf, SEC, &s);
	ck_assert_int_eq(zdev_write(dev, buf, SEC, 0, false), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0,
						 NULL, NULL, &res),
				 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_packed_sectors), 0);
	ck_assert_uint_eq(stat_of(dev, ZSTAT_hot_sectors), 1);
	zdev_destroy(dev);
	/* Bad levels are refused. */
	cfg.recompress_level = 20;
	ck_assert_ptr_null(zdev_create(&cfg, &err));
	ck_assert_int_eq(err, -EINVAL);
	cfg.recompress_level = 0;
	cfg.pack_slots = PACK_MAX_SLOTS + 1; /* out of range */
	ck_assert_ptr_null(zdev_create(&cfg, &err));
	cfg.pack_slots = 0;
	cfg.zstd_level = -1;
	ck_assert_ptr_null(zdev_create(&cfg, &err));
}
END_TEST

/* --- stress: a shadow model under concurrent packing ----------------------- */

#define ST_THREADS 3u
#define ST_SECT	   768u

struct stress {
	struct zdev *dev;
	unsigned char *shadow; /* sector i belongs to thread i % ST_THREADS */
	uint64_t iters;
	int stop;	       /* atomic */
	uint64_t mismatches;   /* atomic */
	uint64_t passes;
};

struct worker {
	struct stress *st;
	unsigned int id;
	uint64_t seed;
};

static uint64_t own_sector(struct worker *w, uint64_t *s)
{
	return (rnd(s) % (ST_SECT / ST_THREADS)) * ST_THREADS + w->id;
}

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	uint64_t s = w->seed;
	unsigned char buf[SEC], got[SEC];

	for (uint64_t it = 0; it < st->iters; it++) {
		uint64_t sec = own_sector(w, &s);
		unsigned char *p = st->shadow + sec * SEC;
		unsigned int o = (unsigned int)(rnd(&s) % SEC);
		unsigned int n = 1 + (unsigned int)(rnd(&s) % (SEC - o));
		int r = 0;

		switch (rnd(&s) % 10) {
		case 0: case 1: case 2:
			fill_sector(buf, &s);
			memcpy(p, buf, SEC);
			r = zdev_write(st->dev, buf, SEC, sec * SEC, false);
			break;
		case 3:
			fill(buf, n, K_RANDOM, &s);
			memcpy(p + o, buf, n);
			r = zdev_write(st->dev, buf, n, sec * SEC + o, false);
			break;
		case 4:
			memset(p, 0, SEC);
			r = zdev_trim(st->dev, SEC, sec * SEC);
			break;
		case 5:
			memset(p + o, 0, n);
			r = zdev_zero(st->dev, n, sec * SEC + o);
			break;
		default:
			/* Reads are most of it, so that packs get read. */
			r = zdev_read(st->dev, got, SEC, sec * SEC);
			if (r == 0 && memcmp(got, p, SEC) != 0) {
				fprintf(stderr, "mismatch at sector %llu\n",
					(unsigned long long)sec);
				__atomic_add_fetch(&st->mismatches, 1,
						   __ATOMIC_RELAXED);
			}
			break;
		}
		ck_assert_msg(r == 0, "op failed: %s", strerror(-r));
	}
	return NULL;
}

static void *stress_packer(void *arg)
{
	struct stress *st = arg;
	struct zdev_recompress_result res;

	while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		uint64_t pass = __atomic_fetch_add(&st->passes, 1,
						   __ATOMIC_RELAXED);
		enum zdev_recompress_mode m = pass % 3 == 2
						      ? ZDEV_RECOMPRESS_ALL
						      : ZDEV_RECOMPRESS_IDLE;

		ck_assert_int_eq(zdev_recompress(st->dev, m, 0, NULL, NULL,
						 &res),
				 0);
	}
	return NULL;
}

/*
 * The stress's devices, by _i / nbackends: packs of PACK_MAX_SLOTS
 * sectors (many whole-page chunks); of 8; of 16 on a device whose huge
 * threshold is 1 KiB (many hot sectors stored raw, which packs take too);
 * of one sector (one chunk each).
 */
static const struct {
	unsigned int thr, slots;
} st_var[] = { { CODEC_HUGE_THRESHOLD_DEFAULT, 0 },
	       { CODEC_HUGE_THRESHOLD_DEFAULT, 8 },
	       { 1024, 16 },
	       { CODEC_HUGE_THRESHOLD_DEFAULT, 1 } };
#define ST_NVAR (sizeof(st_var) / sizeof(st_var[0]))

START_TEST(test_stress)
{
	unsigned int v = (unsigned int)_i / nbackends;
	struct stress st = {
		.dev = make_dev_with(backends[_i % nbackends], ST_SECT, 0,
				     st_var[v].thr, st_var[v].slots),
		.shadow = calloc(ST_SECT, SEC),
		.iters = iterations(40000),
	};
	struct worker w[ST_THREADS];
	pthread_t tw[ST_THREADS], tp[2];

	for (unsigned int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&tp[i], NULL, stress_packer,
						&st),
				 0);
	for (unsigned int i = 0; i < ST_THREADS; i++) {
		w[i] = (struct worker){ &st, i, seed + i * 7919 };
		ck_assert_int_eq(pthread_create(&tw[i], NULL, stress_worker,
						&w[i]),
				 0);
	}
	for (unsigned int i = 0; i < ST_THREADS; i++)
		pthread_join(tw[i], NULL);
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < 2; i++)
		pthread_join(tp[i], NULL);
	printf("stress %s (huge threshold %u, <= %u slots): %llu ops x %u threads, "
	       "%llu passes, %llu packed, "
	       "%llu pack reads, %llu repacks, %llu mismatches\n",
	       backends[_i % nbackends], st_var[v].thr,
	       st_var[v].slots ? st_var[v].slots : PACK_MAX_SLOTS,
	       (unsigned long long)st.iters, ST_THREADS,
	       (unsigned long long)st.passes,
	       (unsigned long long)stat_of(st.dev, ZSTAT_recompressions),
	       (unsigned long long)stat_of(st.dev, ZSTAT_pack_reads),
	       (unsigned long long)stat_of(st.dev, ZSTAT_repacks),
	       (unsigned long long)st.mismatches);
	ck_assert_uint_eq(st.mismatches, 0);
	check_range(st.dev, st.shadow, 0, (size_t)ST_SECT * SEC);
	check_extents(st.dev, st.shadow, (uint64_t)ST_SECT * SEC);
	ck_assert_uint_gt(stat_of(st.dev, ZSTAT_recompressions), 0);
	ck_assert_uint_gt(stat_of(st.dev, ZSTAT_pack_reads), 0);
	zdev_destroy(st.dev);
	free(st.shadow);
}
END_TEST

static Suite *pack_suite(void)
{
	Suite *s = suite_create("pack");
	TCase *codec = tcase_create("codec");
	TCase *format = tcase_create("format");
	TCase *device = tcase_create("device");
	TCase *stress = tcase_create("stress");

	tcase_add_test(codec, test_codec_parse);
	tcase_add_test(codec, test_codec_zstd);
	tcase_add_test(format, test_pack_roundtrip);
	tcase_add_test(format, test_pack_corrupt);
	tcase_add_loop_test(device, test_device, 0, nbackends);
	tcase_add_loop_test(device, test_device_hot_zstd, 0, nbackends);
	tcase_add_loop_test(device, test_pressure_level, 0, nbackends);
	tcase_add_loop_test(device, test_off, 0, nbackends);
	tcase_add_loop_test(stress, test_stress, 0, (int)ST_NVAR * nbackends);
	tcase_set_timeout(device, 120);
	tcase_set_timeout(stress, 600);
	suite_add_tcase(s, codec);
	suite_add_tcase(s, format);
	suite_add_tcase(s, device);
	suite_add_tcase(s, stress);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!test_daemon_init("test_daemon_pack"))
		return 1;
	sr = srunner_create(pack_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
