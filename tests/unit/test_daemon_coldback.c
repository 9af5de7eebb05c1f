/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the cold tier with a backing file (daemon/recompress.c,
 * daemon/writeback.c): packs evicted to the backing file read back
 * transparently, die with their last slot, and a damaged pack record makes
 * every sector it holds -EIO (never wrong bytes) and no other; the
 * shrinker's ladder packs before it evicts; and a shadow-model stress test
 * in which packing, pack eviction, the shrinker at mem_limit, reads,
 * writes, trims and zeroes all run at once. Once per allocator.
 *
 * Environment: TEST_SEED, TEST_ITERATIONS (see test_daemon_common.h).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "pack.h"
#include "codec.h"
#include "device.h"
#include "test_daemon_common.h"
#include "test_rig.h"
#include "writeback.h"

static char dir[256];

static void setup(void)
{
	rig_scratch_make(dir, sizeof(dir), "coldback");
}

static void teardown(void)
{
	rig_scratch_remove(dir);
}

/* A device with writeback and recompression, its shrinker thread running. */
static void rig_open(struct rig *r, const char *allocator, uint64_t size,
		     uint64_t mem_limit)
{
	struct zdev_config dc = rig_dev_config(allocator, size, mem_limit);
	struct zwb_config wc = rig_wb_config(mem_limit);

	dc.recompress_level = 3;
	snprintf(r->path, sizeof(r->path), "%s/backing", dir);
	rig_create(r, &dc, &wc);
	ck_assert_int_eq(zwb_start(r->wb), 0);
}

/* Compressible, varied: 2-4 sectors a pack. */
static void fill_words(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *words[] = { "cold ", "tier ", "pack ", "zstd ",
				       "the ",	"of ",	 "\n",	  "sector " };

	for (size_t i = 0; i < n;) {
		const char *w = words[rnd(s) % 8];

		for (; *w && i < n; w++)
			p[i++] = (unsigned char)*w;
		if (rnd(s) % 8 == 0 && i < n)
			p[i++] = (unsigned char)rnd(s);
	}
}

static uint64_t pack_records(struct rig *r, uint64_t *first_sector,
			     off_t *first_off, int *nfirst)
{
	unsigned char hdr[BACKING_HDR_SIZE];
	int fd = open(r->path, O_RDONLY);
	off_t end;
	uint64_t n = 0;

	ck_assert_int_ge(fd, 0);
	end = lseek(fd, 0, SEEK_END);
	for (off_t o = 0; o + (off_t)sizeof(hdr) <= end; o += BACKING_UNIT) {
		struct backing_hdr h;

		if (pread(fd, hdr, sizeof(hdr), o) != (ssize_t)sizeof(hdr))
			break;
		backing_hdr_decode(hdr, &h);
		if (h.magic != BACKING_MAGIC || !(h.flags & BACKING_FLAG_PACK))
			continue;
		if (n < (uint64_t)*nfirst) {
			first_sector[n] = h.sector;
			first_off[n] = o;
		}
		n++;
	}
	close(fd);
	if (n < (uint64_t)*nfirst)
		*nfirst = (int)n;
	return n;
}

START_TEST(test_evict_packs)
{
	const uint64_t nsec = 256, size = nsec * SEC;
	unsigned char *shadow = calloc(1, size), buf[SEC];
	struct zdev_recompress_result res;
	uint64_t s = seed, evicted, packed, bsec[2];
	off_t boff[2];
	int nb = 2, fd;

	struct rig r;
	rig_open(&r, backends[_i], size, 0);
	for (uint64_t i = 0; i < nsec; i++) {
		fill_words(shadow + i * SEC, SEC, &s);
		ck_assert_int_eq(zdev_write(r.dev, shadow + i * SEC, SEC,
					    i * SEC, false),
				 0);
	}
	ck_assert_int_eq(zdev_recompress(r.dev, ZDEV_RECOMPRESS_ALL, 0, NULL,
					 NULL, &res),
			 0);
	packed = stat_of(r.dev, ZSTAT_packed_sectors);
	ck_assert_uint_gt(packed, nsec / 2);
	ck_assert_int_eq(zdev_evict_packs(r.dev, UINT64_MAX, NULL, NULL,
					  &evicted),
			 0);
	ck_assert_uint_eq(evicted, res.packs);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_packs), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_pack_bytes), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_packed_sectors), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), packed);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_orig_data_size),
			  (nsec - packed) * SEC);
	/* Read back through the backing file. */
	check_range(r.dev, shadow, 0, size);
	/*
	 * Every pack read from the file, once: the thread keeps the frame it
	 * decompressed last, so the pack's other sectors come from it.
	 */
	ck_assert_uint_ge(stat_of(r.dev, ZSTAT_bd_reads), res.packs);
	ck_assert_uint_lt(stat_of(r.dev, ZSTAT_bd_reads), packed);
	/* Still on the backing file: reads do not bring packs back. */
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), packed);
	/* A second eviction finds nothing left. */
	ck_assert_int_eq(zdev_evict_packs(r.dev, UINT64_MAX, NULL, NULL,
					  &evicted),
			 0);
	ck_assert_uint_eq(evicted, 0);

	/* Damage the first two pack records: a payload byte, a header byte. */
	/* One record per chunk: at least one per pack. */
	ck_assert_uint_ge(pack_records(&r, bsec, boff, &nb), res.packs);
	ck_assert_int_eq(nb, 2);
	fd = open(r.path, O_RDWR);
	for (int i = 0; i < 2; i++) {
		unsigned char c;
		off_t o = boff[i] + (i == 0 ? BACKING_HDR_SIZE + 30 : 16);

		ck_assert_int_eq(pread(fd, &c, 1, o), 1);
		c ^= 0x5a;
		ck_assert_int_eq(pwrite(fd, &c, 1, o), 1);
	}
	close(fd);
	/* Every sector of a damaged pack is -EIO; the others read fine. */
	uint64_t nbad = 0;
	for (uint64_t i = 0; i < nsec; i++) {
		int rc = zdev_read(r.dev, buf, SEC, i * SEC);

		if (rc == -EIO) {
			nbad++;
			/* Only sectors at or just past a damaged pack's base. */
			ck_assert_msg((i >= bsec[0] && i < bsec[0] + PACK_MAX_SLOTS) ||
					      (i >= bsec[1] && i < bsec[1] + PACK_MAX_SLOTS),
				      "sector %llu -EIO", (unsigned long long)i);
			continue;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_mem_eq(buf, shadow + i * SEC, SEC);
	}
	ck_assert_uint_ge(nbad, 2);
	ck_assert_uint_ge(stat_of(r.dev, ZSTAT_bd_checksum_errors), nbad);
	/* The first sector of each is one of them. */
	ck_assert_int_eq(zdev_read(r.dev, buf, SEC, bsec[0] * SEC), -EIO);
	ck_assert_int_eq(zdev_read(r.dev, buf, 100, bsec[1] * SEC + 5), -EIO);

	/* Overwriting every sector frees every record. */
	for (uint64_t i = 0; i < nsec; i++) {
		fill(buf, SEC, K_TEXT, &s);
		memcpy(shadow + i * SEC, buf, SEC);
		ck_assert_int_eq(zdev_write(r.dev, buf, SEC, i * SEC, false),
				 0);
	}
	check_range(r.dev, shadow, 0, size);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), 0);
	struct backing_stats bs;
	backing_get_stats(zwb_backing(r.wb), &bs);
	ck_assert_uint_eq(bs.slots_used, 0);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* At mem_limit, the shrinker packs before it evicts. */
START_TEST(test_ladder)
{
	const uint64_t nsec = 2048, size = nsec * SEC;
	const uint64_t limit = 1u << 20;
	unsigned char *shadow = calloc(1, size);
	uint64_t s = seed + 1;
	struct rig r;

	rig_open(&r, backends[_i], size, limit);
	for (uint64_t i = 0; i < nsec; i++) {
		fill_words(shadow + i * SEC, SEC, &s);
		ck_assert_int_eq(zdev_write(r.dev, shadow + i * SEC, SEC,
					    i * SEC, false),
				 0);
	}
	zwb_stop(r.wb);
	printf("ladder %s: %llu sectors: %llu hot, %llu packed, %llu on the "
	       "backing file; pool %llu of %llu\n",
	       backends[_i], (unsigned long long)nsec,
	       (unsigned long long)stat_of(r.dev, ZSTAT_hot_sectors),
	       (unsigned long long)stat_of(r.dev, ZSTAT_packed_sectors),
	       (unsigned long long)stat_of(r.dev, ZSTAT_bd_count),
	       (unsigned long long)stat_of(r.dev, ZSTAT_mem_used_total),
	       (unsigned long long)limit);
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_recompressions), 0);
	ck_assert_uint_le(stat_of(r.dev, ZSTAT_mem_used_total), limit);
	check_range(r.dev, shadow, 0, size);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- stress ------------------------------------------------------------------ */

#define ST_THREADS 3u
#define ST_SECT	   1024u

struct stress {
	struct rig r;
	unsigned char *shadow; /* sector i belongs to thread i % ST_THREADS */
	uint64_t iters;
	int stop;
	uint64_t mismatches;
	uint64_t passes, pack_evictions;
};

struct worker {
	struct stress *st;
	unsigned int id;
	uint64_t seed;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct stress *st = w->st;
	struct zdev *dev = st->r.dev;
	uint64_t s = w->seed;
	unsigned char buf[SEC], got[SEC];

	for (uint64_t it = 0; it < st->iters; it++) {
		uint64_t sec = (rnd(&s) % (ST_SECT / ST_THREADS)) * ST_THREADS +
			       w->id;
		unsigned char *p = st->shadow + sec * SEC;
		unsigned int o = (unsigned int)(rnd(&s) % SEC);
		unsigned int n = 1 + (unsigned int)(rnd(&s) % (SEC - o));
		int rc = 0;

		switch (rnd(&s) % 10) {
		case 0: case 1: case 2:
			if (rnd(&s) % 4)
				fill_words(buf, SEC, &s);
			else
				fill(buf, SEC, (enum kind)(rnd(&s) % K_NKINDS),
				     &s);
			memcpy(p, buf, SEC);
			rc = zdev_write(dev, buf, SEC, sec * SEC, false);
			break;
		case 3:
			fill(buf, n, K_TEXT, &s);
			memcpy(p + o, buf, n);
			rc = zdev_write(dev, buf, n, sec * SEC + o, false);
			break;
		case 4:
			memset(p, 0, SEC);
			rc = zdev_trim(dev, SEC, sec * SEC);
			break;
		case 5:
			memset(p + o, 0, n);
			rc = zdev_zero(dev, n, sec * SEC + o);
			break;
		default:
			rc = zdev_read(dev, got, SEC, sec * SEC);
			if (rc == 0 && memcmp(got, p, SEC) != 0) {
				fprintf(stderr, "mismatch at sector %llu\n",
					(unsigned long long)sec);
				__atomic_add_fetch(&st->mismatches, 1,
						   __ATOMIC_RELAXED);
			}
			break;
		}
		ck_assert_msg(rc == 0, "op failed: %s", strerror(-rc));
	}
	return NULL;
}

static void *packer(void *arg)
{
	struct stress *st = arg;
	struct zdev_recompress_result res;
	uint64_t ev;

	while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE)) {
		ck_assert_int_eq(zdev_recompress(st->r.dev,
						 st->passes % 2
							 ? ZDEV_RECOMPRESS_ALL
							 : ZDEV_RECOMPRESS_IDLE,
						 0, NULL, NULL, &res),
				 0);
		ck_assert_int_eq(zdev_evict_packs(st->r.dev, 64 * 1024, NULL,
						  NULL, &ev),
				 0);
		st->pack_evictions += ev;
		st->passes++;
	}
	return NULL;
}

START_TEST(test_stress)
{
	struct stress st = {
		.shadow = calloc(ST_SECT, SEC),
		.iters = iterations(30000),
	};
	struct worker w[ST_THREADS];
	pthread_t tw[ST_THREADS], tp;

	/* mem_limit: the shrinker's ladder runs too. */
	rig_open(&st.r, backends[_i], (uint64_t)ST_SECT * SEC, 1u << 20);
	ck_assert_int_eq(pthread_create(&tp, NULL, packer, &st), 0);
	for (unsigned int i = 0; i < ST_THREADS; i++) {
		w[i] = (struct worker){ &st, i, seed + 31 * i };
		ck_assert_int_eq(pthread_create(&tw[i], NULL, worker, &w[i]),
				 0);
	}
	for (unsigned int i = 0; i < ST_THREADS; i++)
		pthread_join(tw[i], NULL);
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	pthread_join(tp, NULL);
	zwb_stop(st.r.wb);
	printf("coldback stress %s: %llu ops x %u, %llu passes, %llu packed, "
	       "%llu packs evicted, %llu pack reads, %llu bd_reads, "
	       "%llu repacks, %llu mismatches\n",
	       backends[_i], (unsigned long long)st.iters, ST_THREADS,
	       (unsigned long long)st.passes,
	       (unsigned long long)stat_of(st.r.dev, ZSTAT_recompressions),
	       (unsigned long long)st.pack_evictions,
	       (unsigned long long)stat_of(st.r.dev, ZSTAT_pack_reads),
	       (unsigned long long)stat_of(st.r.dev, ZSTAT_bd_reads),
	       (unsigned long long)stat_of(st.r.dev, ZSTAT_repacks),
	       (unsigned long long)st.mismatches);
	ck_assert_uint_eq(st.mismatches, 0);
	check_range(st.r.dev, st.shadow, 0, (size_t)ST_SECT * SEC);
	ck_assert_uint_gt(stat_of(st.r.dev, ZSTAT_recompressions), 0);
	ck_assert_uint_gt(st.pack_evictions, 0);
	/* Trim all: no record, no pack, nothing stored is left. */
	ck_assert_int_eq(zdev_trim(st.r.dev, (size_t)ST_SECT * SEC, 0), 0);
	ck_assert_uint_eq(stat_of(st.r.dev, ZSTAT_bd_count), 0);
	ck_assert_uint_eq(stat_of(st.r.dev, ZSTAT_packs), 0);
	ck_assert_uint_eq(stat_of(st.r.dev, ZSTAT_orig_data_size), 0);
	rig_close(&st.r);
	free(st.shadow);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("coldback");
	TCase *core = tcase_create("core");
	TCase *stress = tcase_create("stress");
	SRunner *sr;
	int failed;

	if (!test_daemon_init("test_daemon_coldback"))
		return 1;
	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_checked_fixture(stress, setup, teardown);
	tcase_add_loop_test(core, test_evict_packs, 0, nbackends);
	tcase_add_loop_test(core, test_ladder, 0, nbackends);
	tcase_add_loop_test(stress, test_stress, 0, nbackends);
	tcase_set_timeout(core, 120);
	tcase_set_timeout(stress, 600);
	suite_add_tcase(s, core);
	suite_add_tcase(s, stress);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
