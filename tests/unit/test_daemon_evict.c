/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of eviction end to end: a device (daemon/device.c, evict.c)
 * with a real backing file and a real shrinker thread, wired by
 * daemon/writeback.c exactly as the plugin wires them. Run once per
 * allocator built in.
 *
 *  - limit:      writes past a tiny mem_limit evict; every byte reads back
 *                (shadow model); the pool never passes the limit;
 *                overwrite and trim of evicted sectors free their slots
 *  - corrupt:    bytes flipped in the backing file make reads of those
 *                sectors -EIO (counted), and only those
 *  - full:       a full backing file makes writes -ENOSPC, keeps the data
 *                readable, and after trims writes work again
 *  - idle:       mark and sweep, by hand and by the shrinker's timer
 *  - concurrent: 4 threads overwrite, trim and read the sectors the
 *                shrinker thread is evicting (limit and idle passes), each
 *                sector under a test lock so the shadow is exact; under
 *                TSan in check-tsan (check-unit-shrink)
 *
 * Backing files go in a temporary directory under $TMPDIR (or /tmp).
 * Randomized tests print their seed; TEST_SEED replays them and
 * TEST_ITERATIONS changes the length of the concurrent one.
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
#include <time.h>
#include <unistd.h>

#include "backing.h"
#include "codec.h"
#include "device.h"
#include "test_daemon_common.h"
#include "test_rig.h"
#include "test_loopdev.h"
#include "test_util.h"
#include "writeback.h"
#include "zpool.h"

#define KiB 1024u

static char dir[256];

static void setup(void)
{
	rig_scratch_make(dir, sizeof(dir), "evict");
}

static void teardown(void)
{
	rig_scratch_remove(dir);
}

/*
 * The same tests with a block device as the backing store: a loop device
 * over a sparse 64 MiB file in the scratch directory, attached by the
 * fixture and always detached by its teardown.
 */
static char loopdev[64];

static bool try_attach_loop(void)
{
	return loop_attach(dir, 64, loopdev, sizeof(loopdev));
}

static void setup_loop(void)
{
	setup();
	ck_assert_msg(try_attach_loop(), "losetup -f failed");
}

static void teardown_loop(void)
{
	loop_detach(dir, loopdev);
	teardown();
}

/* A device with writeback, its shrinker thread running. */
static void rig_open(struct rig *r, const char *allocator, uint64_t size,
		     uint64_t mem_limit, uint64_t backing_size,
		     unsigned int idle_age, unsigned int idle_interval_ms)
{
	struct zdev_config dc = rig_dev_config(allocator, size, mem_limit);
	struct zwb_config wc = rig_wb_config(mem_limit);

	wc.backing_size = backing_size;
	wc.shrink.idle_age = idle_age;
	wc.shrink.idle_interval_ms = idle_interval_ms;
	if (loopdev[0])
		snprintf(r->path, sizeof(r->path), "%s", loopdev);
	else
		snprintf(r->path, sizeof(r->path), "%s/backing", dir);
	rig_create(r, &dc, &wc);
	ck_assert_int_eq(zwb_start(r->wb), 0);
}

static uint64_t slots_used(struct rig *r)
{
	return rig_slots_used(zwb_backing(r->wb));
}

/* Polls @cond for up to 20 s (the shrinker thread works asynchronously). */
#define wait_until(cond)                                                     \
	do {                                                                 \
		for (int w_ = 0; w_ < 2000 && !(cond); w_++)                 \
			usleep(10000);                                       \
		ck_assert_msg((cond), "timed out waiting for " #cond);       \
	} while (0)

/* --- limit ---------------------------------------------------------------- */

START_TEST(test_limit)
{
	const char *be = backends[_i];
	const uint64_t nsec = 1024, size = nsec * SEC;
	const uint64_t limit = ZDEV_MEM_LIMIT_MIN;
	unsigned char *shadow = calloc(1, size), buf[2 * SEC];
	uint64_t s = seed + 1, freed, before;
	struct rig r;

	rig_open(&r, be, size, limit, 0, 0, 0);
	/* 4 MiB through the smallest pool: whole and partial writes. */
	for (uint64_t i = 0; i < nsec; i++) {
		uint64_t sec = (i * 389) % nsec; /* a scattered order */
		enum kind k = (enum kind)(1 + rnd(&s) % (K_NKINDS - 1));

		fill(buf, SEC, k, &s);
		ck_assert_int_eq(zdev_write(r.dev, buf, SEC, sec * SEC, false),
				 0);
		memcpy(shadow + sec * SEC, buf, SEC);
		if (i % 7 == 0) {
			size_t o = rnd(&s) % SEC, n = 1 + rnd(&s) % 3000;

			fill(buf, n, K_RANDOM, &s);
			ck_assert_int_eq(
				zdev_write(r.dev, buf, n, sec * SEC + o, false),
				0);
			memcpy(shadow + sec * SEC + o, buf, n);
		}
	}
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_writes), 0);
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_evict_limit), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_failed_writes), 0);
	ck_assert_uint_le(stat_of(r.dev, ZSTAT_mem_used_max), limit);
	check_range(r.dev, shadow, 0, size);
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_reads), 0);

	/* Overwrite and trim of evicted sectors free their slots. */
	zwb_stop(r.wb); /* no evictions meanwhile: exact counts */
	before = stat_of(r.dev, ZSTAT_bd_count);
	ck_assert_uint_gt(before, 100);
	ck_assert_uint_eq(slots_used(&r), before);
	ck_assert_int_eq(zdev_trim(r.dev, size / 2, 0), 0);
	memset(shadow, 0, size / 2);
	freed = before - stat_of(r.dev, ZSTAT_bd_count);
	ck_assert_uint_gt(freed, 0);
	ck_assert_uint_eq(slots_used(&r), stat_of(r.dev, ZSTAT_bd_count));
	before = stat_of(r.dev, ZSTAT_bd_count);
	for (uint64_t sec = nsec / 2; sec < nsec; sec++) {
		/* Same-filled: no pool memory, so no room needed. */
		memset(buf, (int)(sec & 0xff) | 1, SEC);
		ck_assert_int_eq(zdev_write(r.dev, buf, SEC, sec * SEC, false),
				 0);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), 0);
	ck_assert_uint_eq(slots_used(&r), 0);
	check_range(r.dev, shadow, 0, size);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- corrupt -------------------------------------------------------------- */

/*
 * Finds the record of @sector in the backing file: its offset, or -1.
 * Records start on 512-byte units with the magic, the sector at byte 8.
 */
static off_t find_record(int fd, uint64_t sector)
{
	unsigned char hdr[BACKING_HDR_SIZE];
	off_t end = lseek(fd, 0, SEEK_END);

	for (off_t o = 0; o + (off_t)sizeof(hdr) <= end; o += BACKING_UNIT) {
		struct backing_hdr h;

		if (pread(fd, hdr, sizeof(hdr), o) != (ssize_t)sizeof(hdr))
			break;
		backing_hdr_decode(hdr, &h);
		if (h.magic == BACKING_MAGIC && h.sector == sector)
			return o;
	}
	return -1;
}

static void flip(int fd, off_t off)
{
	unsigned char c;

	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
}

START_TEST(test_corrupt)
{
	const char *be = backends[_i];
	const uint64_t nsec = 512, size = nsec * SEC;
	unsigned char *shadow = calloc(1, size), buf[SEC];
	uint64_t s = seed + 2, bad[3], errs;
	int fd, nbad = 0;
	struct rig r;

	rig_open(&r, be, size, ZDEV_MEM_LIMIT_MIN, 0, 0, 0);
	for (uint64_t sec = 0; sec < nsec; sec++) {
		fill(buf, SEC, sec % 3 ? K_MIXED : K_RANDOM, &s);
		ck_assert_int_eq(zdev_write(r.dev, buf, SEC, sec * SEC, false),
				 0);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	zwb_stop(r.wb); /* nothing moves from here on */
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_count), 64);

	/* Each sector was written once: a record found is its live copy. */
	fd = open(r.path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	for (uint64_t sec = 0; sec < nsec && nbad < 3; sec += 7) {
		off_t o = find_record(fd, sec);

		if (o < 0)
			continue;
		/* A payload byte, a header byte (the length), a checksum byte. */
		flip(fd, o + (nbad == 0	  ? BACKING_HDR_SIZE + 10
			      : nbad == 1 ? 16
					  : 24));
		bad[nbad++] = sec;
	}
	close(fd);
	ck_assert_int_eq(nbad, 3);

	for (uint64_t sec = 0; sec < nsec; sec++) {
		bool is_bad = sec == bad[0] || sec == bad[1] || sec == bad[2];

		if (is_bad) {
			ck_assert_int_eq(zdev_read(r.dev, buf, SEC, sec * SEC),
					 -EIO);
			/* A partial read, and a partial write (RMW), too. */
			ck_assert_int_eq(
				zdev_read(r.dev, buf, 100, sec * SEC + 7), -EIO);
			ck_assert_int_eq(zdev_write(r.dev, buf, 100,
						    sec * SEC + 7, false),
					 -EIO);
		} else {
			check_range(r.dev, shadow, sec * SEC, SEC);
		}
	}
	errs = stat_of(r.dev, ZSTAT_bd_checksum_errors);
	ck_assert_uint_eq(errs, 9);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_failed_reads), 6);
	/* A whole-sector overwrite needs no old data: the sector heals. */
	ck_assert_int_eq(zwb_start(r.wb), 0); /* it may need room */
	fill(buf, SEC, K_TEXT, &s);
	ck_assert_int_eq(zdev_write(r.dev, buf, SEC, bad[0] * SEC, false), 0);
	memcpy(shadow + bad[0] * SEC, buf, SEC);
	check_range(r.dev, shadow, bad[0] * SEC, SEC);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- full ----------------------------------------------------------------- */

START_TEST(test_full)
{
	const char *be = backends[_i];
	const uint64_t nsec = 1024, size = nsec * SEC;
	unsigned char *shadow = calloc(1, size), buf[SEC];
	uint64_t s = seed + 3, written = 0;
	struct shrinker_stats st0, st1;
	struct rig r;
	int rc = 0;

	/* 64 KiB of file holds at most 14 raw sectors. */
	rig_open(&r, be, size, ZDEV_MEM_LIMIT_MIN, BACKING_MIN_SIZE, 0, 0);
	for (uint64_t sec = 0; sec < nsec; sec++) {
		fill(buf, SEC, K_RANDOM, &s);
		shrinker_get_stats(zwb_shrinker(r.wb), &st0);
		rc = zdev_write(r.dev, buf, SEC, sec * SEC, false);
		if (rc < 0)
			break;
		memcpy(shadow + sec * SEC, buf, SEC);
		written++;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	/*
	 * Answered by the first shrink call that could not evict, not after
	 * rounds of "progress" made of the allocator's page caches, which
	 * the failed allocation itself refills.
	 */
	shrinker_get_stats(zwb_shrinker(r.wb), &st1);
	ck_assert_uint_le(st1.waits - st0.waits, 2);
	ck_assert_uint_ge(st1.wait_nospc - st0.wait_nospc, 1);
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_count), 0);
	ck_assert_uint_lt(written, 200);
	ck_assert_uint_ge(stat_of(r.dev, ZSTAT_failed_writes), 1);
	/* The sector that failed kept its old contents (zeroes). */
	check_range(r.dev, shadow, 0, size);

	/* Trim makes room, in the pool and in the file. */
	ck_assert_int_eq(zdev_trim(r.dev, written * SEC, 0), 0);
	memset(shadow, 0, written * SEC);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), 0);
	ck_assert_uint_eq(slots_used(&r), 0);
	for (uint64_t sec = 0; sec < written / 2; sec++) {
		fill(buf, SEC, K_RANDOM, &s);
		ck_assert_int_eq(zdev_write(r.dev, buf, SEC, sec * SEC, false),
				 0);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	check_range(r.dev, shadow, 0, size);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- idle ----------------------------------------------------------------- */

START_TEST(test_idle_by_hand)
{
	const char *be = backends[_i];
	const uint64_t nsec = 64, size = nsec * SEC;
	unsigned char *shadow = calloc(1, size), buf[16 * SEC];
	struct zdev_idle_result res;
	uint64_t s = seed + 4;
	struct rig r;

	/* No limit, no idle timer: only the passes below evict. */
	rig_open(&r, be, size, 0, 0, 0, 0);
	for (uint64_t sec = 0; sec < nsec; sec++) {
		fill(buf, SEC, sec % 8 == 0 ? K_SAME : K_MIXED, &s);
		zdev_write(r.dev, buf, SEC, sec * SEC, false);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	/* Pass 1 marks the 56 pool sectors (same-filled ones are not). */
	ck_assert_int_eq(zdev_evict_idle(r.dev, NULL, NULL, &res), 0);
	ck_assert_uint_eq(res.marked, 56);
	ck_assert_uint_eq(res.evicted, 0);
	/*
	 * Touch 1..9 (read: 8 pool sectors, 8 is same-filled) and 10..19
	 * (overwrite: 10 pool sectors, 16 was same-filled): 57 in the pool,
	 * 18 of them no longer idle.
	 */
	ck_assert_int_eq(zdev_read(r.dev, buf, 9 * SEC, 1 * SEC), 0);
	for (uint64_t sec = 10; sec < 20; sec++) {
		fill(buf, SEC, K_TEXT, &s);
		zdev_write(r.dev, buf, SEC, sec * SEC, false);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	/* Pass 2 moves the others and marks the touched ones. */
	ck_assert_int_eq(zdev_evict_idle(r.dev, NULL, NULL, &res), 0);
	ck_assert_uint_eq(res.evicted, 57 - 18);
	ck_assert_uint_eq(res.marked, 18);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), 57 - 18);
	check_range(r.dev, shadow, 0, size);
	/* Pass 3: the reads just now touched the marked ones again. */
	ck_assert_int_eq(zdev_evict_idle(r.dev, NULL, NULL, &res), 0);
	ck_assert_uint_eq(res.evicted, 0);
	ck_assert_uint_eq(res.marked, 18);
	ck_assert_int_eq(zdev_evict_idle(r.dev, NULL, NULL, &res), 0);
	ck_assert_uint_eq(res.evicted, 18);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_compr_data_size), 0);
	/* 0, 8, 24, 32, 40, 48 and 56 are same-filled: never evicted. */
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_orig_data_size), 7 * SEC);
	check_range(r.dev, shadow, 0, size);
	rig_close(&r);
	free(shadow);
}
END_TEST

START_TEST(test_idle_timer)
{
	const char *be = backends[_i];
	const uint64_t nsec = 128, size = nsec * SEC;
	unsigned char *shadow = calloc(1, size), buf[SEC];
	uint64_t s = seed + 5;
	struct rig r;

	/* idle_age 1 s, but a pass every 20 ms: gone after two passes. */
	rig_open(&r, be, size, 0, 0, 1, 20);
	for (uint64_t sec = 0; sec < nsec; sec++) {
		fill(buf, SEC, K_MIXED, &s);
		zdev_write(r.dev, buf, SEC, sec * SEC, false);
		memcpy(shadow + sec * SEC, buf, SEC);
	}
	wait_until(stat_of(r.dev, ZSTAT_evict_idle) == nsec);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), nsec);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_evict_limit), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_compr_data_size), 0);
	check_range(r.dev, shadow, 0, size);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- concurrent ----------------------------------------------------------- */

#define CONC_THREADS 4
#define CONC_SECTORS 512
#define CONC_LIMIT   (512 * KiB)

/* The shared shadow: each sector's bytes, under the sector's test lock. */
struct conc_shared {
	struct zdev *dev;
	pthread_mutex_t lock[CONC_SECTORS];
	unsigned char *shadow;
};

struct conc {
	struct conc_shared *sh;
	unsigned int id;
	uint64_t seed, iters;
	uint64_t ops[4];
	char fail[200];
};

/* Workers record their first failure; the test asserts after joining. */
#define WCHECK(c, cond)                                                      \
	do {                                                                 \
		if (!(cond)) {                                               \
			snprintf((c)->fail, sizeof((c)->fail),               \
				 "thread %u, iteration %llu, sector %llu: "   \
				 "%s (rc %d)",                                \
				 (c)->id, (unsigned long long)it,             \
				 (unsigned long long)sec, #cond, rc);         \
			pthread_mutex_unlock(&sh->lock[sec]);               \
			goto out;                                            \
		}                                                            \
	} while (0)

static void *conc_worker(void *p)
{
	struct conc *c = p;
	struct conc_shared *sh = c->sh;
	unsigned char buf[SEC];
	uint64_t s = c->seed, it, sec = 0;
	int rc = 0;

	for (it = 0; it < c->iters; it++) {
		unsigned char *sh_sec;
		unsigned int op = (unsigned int)(rnd(&s) % 8);
		size_t o, n;

		sec = rnd(&s) % CONC_SECTORS;
		sh_sec = sh->shadow + sec * SEC;
		pthread_mutex_lock(&sh->lock[sec]);
		switch (op) {
		case 0:
		case 1: /* overwrite, whole */
			fill(buf, SEC, (enum kind)(rnd(&s) % K_NKINDS), &s);
			rc = zdev_write(sh->dev, buf, SEC, sec * SEC, false);
			WCHECK(c, rc == 0);
			memcpy(sh_sec, buf, SEC);
			c->ops[0]++;
			break;
		case 2: /* overwrite, part (read-modify-write) */
			o = rnd(&s) % SEC;
			n = 1 + rnd(&s) % (SEC - o);
			fill(buf, n, (enum kind)(rnd(&s) % K_NKINDS), &s);
			rc = zdev_write(sh->dev, buf, n, sec * SEC + o, false);
			WCHECK(c, rc == 0);
			memcpy(sh_sec + o, buf, n);
			c->ops[1]++;
			break;
		case 3: /* trim */
			rc = zdev_trim(sh->dev, SEC, sec * SEC);
			WCHECK(c, rc == 0);
			memset(sh_sec, 0, SEC);
			c->ops[2]++;
			break;
		default: /* read, whole or part */
			o = op == 4 ? rnd(&s) % SEC : 0;
			n = op == 4 ? 1 + rnd(&s) % (SEC - o) : SEC;
			rc = zdev_read(sh->dev, buf, n, sec * SEC + o);
			WCHECK(c, rc == 0);
			WCHECK(c, memcmp(buf, sh_sec + o, n) == 0);
			c->ops[3]++;
			break;
		}
		pthread_mutex_unlock(&sh->lock[sec]);
	}
out:
	return NULL;
}

START_TEST(test_concurrent)
{
	const char *be = backends[_i];
	struct conc_shared sh;
	struct conc c[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	uint64_t ops[4] = { 0 };
	struct rig r;

	/*
	 * 2 MiB of sectors, a quarter of them incompressible, against a
	 * 512 KiB pool (an empty zsmalloc pool holds 64 KiB of its own, and
	 * one zspage may take 64 KiB more), and an idle pass every 10 ms: the
	 * shrinker thread evicts all the time, the sectors the workers are
	 * hitting among them.
	 */
	rig_open(&r, be, CONC_SECTORS * SEC, CONC_LIMIT, 0, 1, 10);
	sh.dev = r.dev;
	sh.shadow = calloc(CONC_SECTORS, SEC);
	for (int i = 0; i < CONC_SECTORS; i++)
		pthread_mutex_init(&sh.lock[i], NULL);
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		c[i] = (struct conc){ .sh = &sh, .id = i,
				      .seed = seed * 131 + i,
				      .iters = iterations(20000) };
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_worker,
						&c[i]),
				 0);
	}
	for (unsigned int i = 0; i < CONC_THREADS; i++)
		pthread_join(th[i], NULL);
	for (unsigned int i = 0; i < CONC_THREADS; i++) {
		ck_assert_msg(!c[i].fail[0], "%s", c[i].fail);
		for (int k = 0; k < 4; k++)
			ops[k] += c[i].ops[k];
	}
	zwb_stop(r.wb);
	printf("test_concurrent %s: %llu writes, %llu partial, %llu trims, "
	       "%llu reads; evicted %llu (limit) + %llu (idle), read back "
	       "%llu\n",
	       be, (unsigned long long)ops[0], (unsigned long long)ops[1],
	       (unsigned long long)ops[2], (unsigned long long)ops[3],
	       (unsigned long long)stat_of(r.dev, ZSTAT_evict_limit),
	       (unsigned long long)stat_of(r.dev, ZSTAT_evict_idle),
	       (unsigned long long)stat_of(r.dev, ZSTAT_bd_reads));
	check_range(r.dev, sh.shadow, 0, CONC_SECTORS * SEC);
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_writes), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_failed_writes), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_failed_reads), 0);
	ck_assert_uint_le(stat_of(r.dev, ZSTAT_mem_used_max), CONC_LIMIT);
	/* Every slot in use belongs to a sector, and none leaked. */
	ck_assert_uint_eq(slots_used(&r), stat_of(r.dev, ZSTAT_bd_count));
	rig_close(&r);
	for (int i = 0; i < CONC_SECTORS; i++)
		pthread_mutex_destroy(&sh.lock[i]);
	free(sh.shadow);
}
END_TEST

static Suite *evict_suite(void)
{
	Suite *s = suite_create("evict");
	TCase *core = tcase_create("core");
	TCase *idle = tcase_create("idle");
	TCase *conc = tcase_create("concurrent");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_loop_test(core, test_limit, 0, nbackends);
	tcase_add_loop_test(core, test_corrupt, 0, nbackends);
	tcase_add_loop_test(core, test_full, 0, nbackends);
	tcase_set_timeout(core, 300);
	suite_add_tcase(s, core);
	tcase_add_checked_fixture(idle, setup, teardown);
	tcase_add_loop_test(idle, test_idle_by_hand, 0, nbackends);
	tcase_add_loop_test(idle, test_idle_timer, 0, nbackends);
	tcase_set_timeout(idle, 120);
	suite_add_tcase(s, idle);
	tcase_add_checked_fixture(conc, setup, teardown);
	tcase_add_loop_test(conc, test_concurrent, 0, nbackends);
	tcase_set_timeout(conc, 600);
	suite_add_tcase(s, conc);

	/* Outside a test: no ck_assert (setup() has them). */
	snprintf(dir, sizeof(dir), "%s/zramd-evict-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) && try_attach_loop()) {
		TCase *loop = tcase_create("loopdev");

		teardown_loop();
		tcase_add_checked_fixture(loop, setup_loop, teardown_loop);
		tcase_add_loop_test(loop, test_limit, 0, nbackends);
		tcase_add_loop_test(loop, test_corrupt, 0, nbackends);
		tcase_add_loop_test(loop, test_full, 0, nbackends);
		tcase_add_loop_test(loop, test_idle_by_hand, 0, nbackends);
		tcase_add_loop_test(loop, test_concurrent, 0, nbackends);
		tcase_set_timeout(loop, 600);
		suite_add_tcase(s, loop);
	} else {
		teardown_loop();
		printf("SKIP loopdev (the eviction tests on a block device): "
		       "losetup -f cannot attach a loop device (needs root and "
		       "/dev/loop-control)\n");
	}
	return s;
}

int main(void)
{
	if (!test_daemon_init("test_daemon_evict"))
		return 1;
	return test_run_suite(evict_suite());
}
