/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of promotion (daemon/readback.c): sectors read back from the
 * backing file twice move back into the pool. Run once per allocator
 * built in.
 *
 *  - happens:    evicted sectors read twice come back (bd_promotions, the
 *                slots freed, later reads from memory); promote=off and
 *                a single read leave them on the backing file
 *  - window:     the idle writeback pass forgets a first read
 *  - watermark:  with the pool above mem_high percent of mem_limit nothing
 *                comes back; once it is below, it does
 *  - displace:   with the pool full of cold data, a hot set read again
 *                and again ends up in memory (the shrinker evicts the
 *                cold data to make room)
 *  - race:       a write, a trim or a write and its eviction land while
 *                the record is read (before and after the load): the
 *                newer data wins, no error is counted, no slot leaks
 *  - stress:     readers read twice (promoting) while writers overwrite
 *                and trim the same sectors without any test lock, and the
 *                shrinker thread evicts; each read must return a version
 *                the sector held during the read (under TSan in
 *                check-tsan)
 *
 * Backing files go in a temporary directory under $TMPDIR (or /tmp).
 * TEST_SEED replays a run; TEST_DURATION (seconds) sets the stress
 * test's length.
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
#include "sectors.h"
#include "test_daemon_common.h"
#include "test_rig.h"
#include "test_util.h"
#include "writeback.h"
#include "zpool.h"

#define KiB 1024u
#define MiB (1024u * KiB)

static char dir[256];

static void setup(void)
{
	rig_scratch_make(dir, sizeof(dir), "promote");
}

static void teardown(void)
{
	rig_scratch_remove(dir);
}

/* A device with writeback as the plugin wires it; the thread not started. */
static void rig_open(struct rig *r, const char *allocator, uint64_t size,
		     uint64_t mem_limit, bool promote)
{
	struct zdev_config dc = rig_dev_config(allocator, size, mem_limit);
	struct zwb_config wc = rig_wb_config(mem_limit);

	wc.promote = promote;
	snprintf(r->path, sizeof(r->path), "%s/backing", dir);
	rig_create(r, &dc, &wc);
}

/* Everything in the pool to the backing file: mark, then sweep. */
static void evict_all(struct zdev *dev)
{
	struct zdev_idle_result res;

	ck_assert_int_eq(zdev_evict_idle(dev, NULL, NULL, &res), 0);
	ck_assert_int_eq(zdev_evict_idle(dev, NULL, NULL, &res), 0);
}

static void read_check(struct zdev *dev, const unsigned char *shadow,
		       uint64_t sec)
{
	unsigned char buf[SEC];

	ck_assert_int_eq(zdev_read(dev, buf, SEC, sec * SEC), 0);
	ck_assert_msg(memcmp(buf, shadow + sec * SEC, SEC) == 0,
		      "sector %llu reads wrong bytes", (unsigned long long)sec);
}

/* Writes @n sectors of text, random and mixed data; returns the shadow. */
static unsigned char *write_mixed(struct zdev *dev, uint64_t n, uint64_t *s)
{
	unsigned char *shadow = malloc(n * SEC);

	for (uint64_t i = 0; i < n; i++) {
		enum kind k = (enum kind)(K_TEXT + i % 3);

		fill(shadow + i * SEC, SEC, k, s);
		ck_assert_int_eq(zdev_write(dev, shadow + i * SEC, SEC, i * SEC,
					    false),
				 0);
	}
	return shadow;
}

/* --- happens -------------------------------------------------------------- */

START_TEST(test_happens)
{
	const uint64_t n = 96;
	uint64_t s = seed + 1, reads;
	struct rig r;
	unsigned char *shadow;

	for (int on = 1; on >= 0; on--) {
		rig_open(&r, backends[_i], n * SEC, 0, on);
		shadow = write_mixed(r.dev, n, &s);
		evict_all(r.dev);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), n);

		/* One read: marked, not promoted. */
		for (uint64_t i = 0; i < n; i++)
			read_check(r.dev, shadow, i);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_reads), n);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions), 0);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), n);

		/* The second: back in the pool, slots freed (with on). */
		for (uint64_t i = 0; i < n; i++)
			read_check(r.dev, shadow, i);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_reads), 2 * n);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions),
				  on ? n : 0);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), on ? 0 : n);
		ck_assert_uint_eq(rig_slots_used(zwb_backing(r.wb)), on ? 0 : n);

		/* The third: from memory if promoted, else from disk again. */
		reads = stat_of(r.dev, ZSTAT_bd_reads);
		for (uint64_t i = 0; i < n; i++)
			read_check(r.dev, shadow, i);
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_reads),
				  reads + (on ? 0 : n));
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_orig_data_size),
				  on ? n * SEC : 0);

		/* A promoted sector can be evicted and promoted again. */
		if (on) {
			evict_all(r.dev);
			ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), n);
			read_check(r.dev, shadow, 7);
			read_check(r.dev, shadow, 7);
			ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions),
					  n + 1);
		}
		ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_checksum_errors), 0);
		rig_close(&r);
		free(shadow);
	}
}
END_TEST

/* --- window --------------------------------------------------------------- */

START_TEST(test_window)
{
	const uint64_t n = 8;
	uint64_t s = seed + 2;
	struct zdev_idle_result res;
	unsigned char *shadow;
	struct rig r;

	rig_open(&r, backends[_i], n * SEC, 0, true);
	shadow = write_mixed(r.dev, n, &s);
	evict_all(r.dev);
	read_check(r.dev, shadow, 3);
	/* An idle pass between the reads: the first is forgotten. */
	ck_assert_int_eq(zdev_evict_idle(r.dev, NULL, NULL, &res), 0);
	read_check(r.dev, shadow, 3);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions), 0);
	read_check(r.dev, shadow, 3);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions), 1);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), n - 1);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- watermark ------------------------------------------------------------ */

START_TEST(test_watermark)
{
	const uint64_t cold = 64, nsec = 4096, limit = 1 * MiB;
	uint64_t s = seed + 3, fill_to;
	unsigned char *shadow, buf[SEC];
	struct rig r;

	rig_open(&r, backends[_i], nsec * SEC, limit, true);
	shadow = write_mixed(r.dev, cold, &s);
	evict_all(r.dev);
	/* Fill the pool with random data until it is full (no shrinker
	 * thread runs, so a write at mem_limit fails at once). */
	for (fill_to = cold; fill_to < nsec; fill_to++) {
		fill(buf, SEC, K_RANDOM, &s);
		if (zdev_write(r.dev, buf, SEC, fill_to * SEC, false) != 0)
			break;
	}
	ck_assert_uint_lt(fill_to, nsec);
	ck_assert_uint_ge(zpool_get_total_size(zdev_pool(r.dev)),
			  limit / 100 * 90);
	for (int round = 0; round < 3; round++)
		for (uint64_t i = 0; i < cold; i++)
			read_check(r.dev, shadow, i);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions), 0);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), cold);

	/* Room again: the next read of each (all are marked) promotes. */
	ck_assert_int_eq(zdev_trim(r.dev, (fill_to - cold) * SEC, cold * SEC),
			 0);
	zdev_compact(r.dev);
	ck_assert_uint_lt(zpool_get_total_size(zdev_pool(r.dev)),
			  limit / 100 * 90);
	for (uint64_t i = 0; i < cold; i++)
		read_check(r.dev, shadow, i);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_promotions), cold);
	ck_assert_uint_eq(stat_of(r.dev, ZSTAT_bd_count), 0);
	ck_assert_uint_le(stat_of(r.dev, ZSTAT_mem_used_max), limit);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- displace ------------------------------------------------------------- */

/*
 * With the pool full of cold data, a hot set read twice still comes in:
 * a promotion past the high watermark kicks the shrinker, which evicts
 * the coldest data to make room.
 */
START_TEST(test_displace)
{
	const uint64_t nsec = 1024, hot = 128, limit = 1 * MiB;
	uint64_t s = seed + 5, reads, first = UINT64_MAX;
	unsigned char *shadow = malloc(nsec * SEC);
	struct rig r;

	rig_open(&r, backends[_i], nsec * SEC, limit, true);
	ck_assert_int_eq(zwb_start(r.wb), 0);
	/* 2 KiB or so per sector compressed: 2 MiB into a 1 MiB pool. */
	for (uint64_t i = 0; i < nsec; i++) {
		fill(shadow + i * SEC, SEC, K_TEXT, &s);
		fill(shadow + i * SEC, SEC / 2, K_RANDOM, &s);
		ck_assert_int_eq(zdev_write(r.dev, shadow + i * SEC, SEC,
					    i * SEC, false),
				 0);
	}
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_count), hot);
	/* The first sectors written went out first: the hot set. */
	for (int round = 0; round < 2; round++)
		for (uint64_t i = 0; i < hot; i++)
			read_check(r.dev, shadow, i);
	/* Read again and again (the shrinker makes room asynchronously):
	 * the hot set ends up in memory. */
	for (int w = 0; w < 500; w++) {
		reads = stat_of(r.dev, ZSTAT_bd_reads);
		for (uint64_t i = 0; i < hot; i++)
			read_check(r.dev, shadow, i);
		if (first == UINT64_MAX)
			first = stat_of(r.dev, ZSTAT_bd_reads) - reads;
		if (stat_of(r.dev, ZSTAT_bd_reads) - reads < hot / 4)
			break;
		usleep(10000);
	}
	ck_assert_uint_gt(stat_of(r.dev, ZSTAT_bd_promotions), 0);
	ck_assert_msg(
		stat_of(r.dev, ZSTAT_bd_reads) - reads < hot / 4,
		"the hot set stays on disk: %llu of %llu reads from "
		"the backing file (first pass %llu)",
		(unsigned long long)(stat_of(r.dev, ZSTAT_bd_reads) - reads),
		(unsigned long long)hot, (unsigned long long)first);
	ck_assert_uint_le(stat_of(r.dev, ZSTAT_mem_used_max), limit);
	rig_close(&r);
	free(shadow);
}
END_TEST

/* --- race ----------------------------------------------------------------- */

/*
 * Backing ops of the test's own, over backing.c as writeback.c's, whose
 * load() does something to the sector it loads, once, before or after the
 * real read: a deterministic interleaving of a read with a write.
 */
enum race_what { RACE_WRITE, RACE_TRIM, RACE_WRITE_EVICT };

struct race {
	struct zdev *dev;
	struct backing *bk;
	bool armed, after;
	enum race_what what;
	uint64_t sector;
	unsigned char newdata[SEC];
	int rc; /* of the racing operation */
	const char *path; /* the backing file */
};

static int64_t race_store(void *ctx, uint64_t sector, const void *data,
			  unsigned int len)
{
	struct race *ra = ctx;
	uint64_t slot;
	int r = backing_write(ra->bk, sector, data, len,
			      len == SECT_LEN_RAW ? 0 : BACKING_FLAG_COMPRESSED,
			      &slot);

	return r < 0 ? r : (int64_t)slot;
}

static void *race_thread(void *p)
{
	struct race *ra = p;
	struct zdev_idle_result res;

	switch (ra->what) {
	case RACE_WRITE:
		ra->rc = zdev_write(ra->dev, ra->newdata, SEC, ra->sector * SEC,
				    false);
		break;
	case RACE_TRIM:
		ra->rc = zdev_trim(ra->dev, SEC, ra->sector * SEC);
		break;
	case RACE_WRITE_EVICT:
		ra->rc = zdev_write(ra->dev, ra->newdata, SEC, ra->sector * SEC,
				    false);
		/* Everything else is on the backing file already. */
		if (ra->rc == 0)
			ra->rc = zdev_evict_idle(ra->dev, NULL, NULL, &res);
		if (ra->rc == 0)
			ra->rc = zdev_evict_idle(ra->dev, NULL, NULL, &res);
		break;
	}
	return NULL;
}

/* The racing operation, on a thread of its own as a client's would be
 * (the codec's scratch buffers are per thread). */
static void race_act(struct race *ra)
{
	pthread_t th;

	ra->armed = false;
	ck_assert_int_eq(pthread_create(&th, NULL, race_thread, ra), 0);
	pthread_join(th, NULL);
}

static int race_load(void *ctx, uint64_t slot, uint64_t sector, void *buf,
		     unsigned int len)
{
	struct race *ra = ctx;
	bool act = ra->armed && sector == ra->sector;
	size_t got;
	int r;

	/*
	 * Runs with no stripe lock held: else the write would deadlock.
	 * Before the load, the racing write frees the slot; its place is then
	 * scribbled over, as a new record written there would, so the read
	 * must notice and start again.
	 */
	if (act && !ra->after) {
		static const unsigned char
			junk[BACKING_MAX_UNITS * BACKING_UNIT];
		int fd = open(ra->path, O_WRONLY);

		race_act(ra);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(
			pwrite(fd, junk,
			       BACKING_SLOT_UNITS(slot) * BACKING_UNIT,
			       (off_t)(BACKING_SLOT_UNIT(slot) * BACKING_UNIT)),
			(ssize_t)(BACKING_SLOT_UNITS(slot) * BACKING_UNIT));
		close(fd);
	}
	r = backing_read(ra->bk, slot, sector, buf, len, &got, NULL);
	if (act && ra->after)
		race_act(ra);
	if (r < 0)
		return r == -EBADMSG ? -EBADMSG : -EIO;
	return got == len ? 0 : -EBADMSG;
}

static void race_release(void *ctx, uint64_t slot)
{
	struct race *ra = ctx;

	backing_free(ra->bk, slot);
}

START_TEST(test_race)
{
	const uint64_t n = 16, sec = 5;
	struct zdev_config dc = {
		.size = n * SEC,
		.allocator = backends[_i],
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.shrinkable = true,
	};
	static struct race ra;
	struct zdev_backing_ops ops = {
		.store = race_store,
		.load = race_load,
		.release = race_release,
		.ctx = &ra,
	};
	uint64_t s = seed + 4;
	unsigned char buf[SEC], zero[SEC] = {0};
	char path[300], err[256];
	int e;

	snprintf(path, sizeof(path), "%s/backing", dir);
	for (int c = 0; c < 6; c++) {
		enum race_what what = (enum race_what)(c % 3);
		bool after = c >= 3;
		unsigned char *shadow, *want;

		memset(&ra, 0, sizeof(ra));
		ra.path = path;
		ra.dev = zdev_create(&dc, &e);
		ck_assert_ptr_nonnull(ra.dev);
		ra.bk = backing_open(path, 0, err, sizeof(err));
		ck_assert_msg(ra.bk, "%s", err);
		zdev_set_backing(ra.dev, &ops);
		zdev_set_promote(ra.dev, true, UINT64_MAX);
		shadow = write_mixed(ra.dev, n, &s);
		evict_all(ra.dev);
		read_check(ra.dev, shadow, sec); /* the first read: marked */

		/* The second read promotes, and the race lands in it. */
		ra.what = what;
		ra.after = after;
		ra.sector = sec;
		fill(ra.newdata, SEC, K_MIXED, &s);
		ra.armed = true;
		ck_assert_int_eq(zdev_read(ra.dev, buf, SEC, sec * SEC), 0);
		ck_assert(!ra.armed);
		ck_assert_int_eq(ra.rc, 0);
		want = what == RACE_TRIM ? zero : ra.newdata;
		/*
		 * Before the load: the slot was freed and overwritten first,
		 * so the read starts again and sees the new data. After: the
		 * read saw the old record (it began first), and the
		 * promotion is dropped.
		 */
		ck_assert_msg(memcmp(buf, after ? shadow + sec * SEC : want,
				     SEC) == 0,
			      "case %d: the racing read returned wrong bytes",
			      c);
		ck_assert_uint_eq(stat_of(ra.dev, ZSTAT_bd_promotions), 0);
		/* The write (or trim) stays, now and after more reads. */
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(zdev_read(ra.dev, buf, SEC, sec * SEC),
					 0);
			ck_assert_msg(memcmp(buf, want, SEC) == 0,
				      "case %d: the racing write was lost", c);
		}
		ck_assert_uint_eq(stat_of(ra.dev, ZSTAT_bd_checksum_errors), 0);
		ck_assert_uint_eq(stat_of(ra.dev, ZSTAT_bd_io_errors), 0);
		ck_assert_uint_eq(rig_slots_used(ra.bk),
				  stat_of(ra.dev, ZSTAT_bd_count));
		zdev_set_backing(ra.dev, NULL);
		/* The sectors still on the backing file: their slots go with
		 * the file. */
		zdev_destroy(ra.dev);
		backing_close(ra.bk);
		free(shadow);
	}
}
END_TEST

/* --- stress --------------------------------------------------------------- */

/*
 * Each sector has one writer (sector % STRESS_WRITERS) that gives it
 * versions 1, 2, ...: version v is a trim when v % 5 == 4, else data that
 * names the sector and v. The writer publishes v after its write returns,
 * so a reader that saw @before published before the read and @after
 * after it must find a version in [before, after + 1].
 */
#define STRESS_SECTORS 1024
#define STRESS_WRITERS 2
#define STRESS_READERS 2
#define STRESS_LIMIT   (1 * MiB)

struct stress {
	struct zdev *dev;
	uint64_t version[STRESS_SECTORS]; /* atomic */
	int stop; /* atomic */
	uint64_t duration_ms;
};

struct worker {
	struct stress *st;
	unsigned int id;
	uint64_t seed, ops;
	char fail[200];
};

static bool is_trim(uint64_t v)
{
	return v % 5 == 4;
}

/*
 * Version @v of sector @sec: its first 16 bytes name both, half of the
 * rest is drawn from them (about 2 KiB compressed, so 1024 sectors do not
 * fit in STRESS_LIMIT), the other half text.
 */
static void version_data(unsigned char *p, uint64_t sec, uint64_t v)
{
	uint64_t s = sec * 1000003u + v;

	fill(p, SEC, K_TEXT, &s);
	fill(p + 16, SEC / 2, K_RANDOM, &s);
	memcpy(p, &sec, 8);
	memcpy(p + 8, &v, 8);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Workers record their first failure; the test asserts after joining. */
#define WCHECK(w, cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			snprintf((w)->fail, sizeof((w)->fail), __VA_ARGS__);   \
			__atomic_store_n(&(w)->st->stop, 1, __ATOMIC_RELAXED); \
			return NULL;                                           \
		}                                                              \
	} while (0)

static void *stress_writer(void *p)
{
	struct worker *w = p;
	struct stress *st = w->st;
	unsigned char buf[SEC];
	uint64_t s = w->seed;
	int rc;

	while (!__atomic_load_n(&st->stop, __ATOMIC_RELAXED)) {
		uint64_t sec = rnd(&s) % (STRESS_SECTORS / STRESS_WRITERS) *
				       STRESS_WRITERS +
			       w->id;
		uint64_t v =
			__atomic_load_n(&st->version[sec], __ATOMIC_RELAXED) +
			1;

		if (is_trim(v)) {
			rc = zdev_trim(st->dev, SEC, sec * SEC);
		} else {
			version_data(buf, sec, v);
			rc = zdev_write(st->dev, buf, SEC, sec * SEC, false);
		}
		WCHECK(w, rc == 0, "writer %u: sector %llu version %llu: %s",
		       w->id, (unsigned long long)sec, (unsigned long long)v,
		       strerror(-rc));
		__atomic_store_n(&st->version[sec], v, __ATOMIC_RELEASE);
		w->ops++;
	}
	return NULL;
}

/* @buf is a version of @sec in [@lo, @hi]? */
static bool version_ok(const unsigned char *buf, uint64_t sec, uint64_t lo,
		       uint64_t hi, uint64_t *seen)
{
	static const unsigned char zero[SEC];
	unsigned char want[SEC];
	uint64_t got_sec, v;

	if (memcmp(buf, zero, SEC) == 0) {
		*seen = UINT64_MAX;
		for (v = lo; v <= hi; v++)
			if (is_trim(v))
				return true;
		return false;
	}
	memcpy(&got_sec, buf, 8);
	memcpy(&v, buf + 8, 8);
	*seen = v;
	if (got_sec != sec || v < lo || v > hi || is_trim(v))
		return false;
	version_data(want, sec, v);
	return memcmp(buf, want, SEC) == 0;
}

static void *stress_reader(void *p)
{
	struct worker *w = p;
	struct stress *st = w->st;
	unsigned char buf[SEC];
	uint64_t s = w->seed, seen;
	int rc;

	while (!__atomic_load_n(&st->stop, __ATOMIC_RELAXED)) {
		uint64_t sec = rnd(&s) % STRESS_SECTORS;

		/* Twice in a row: the second read promotes. */
		for (int i = 0; i < 2; i++) {
			uint64_t lo = __atomic_load_n(&st->version[sec],
						      __ATOMIC_ACQUIRE);
			uint64_t hi;

			rc = zdev_read(st->dev, buf, SEC, sec * SEC);
			hi = __atomic_load_n(&st->version[sec],
					     __ATOMIC_ACQUIRE) +
			     1;
			WCHECK(w, rc == 0, "reader %u: sector %llu: %s", w->id,
			       (unsigned long long)sec, strerror(-rc));
			WCHECK(w, version_ok(buf, sec, lo, hi, &seen),
			       "reader %u: sector %llu: read version %lld, "
			       "expected one of %llu..%llu",
			       w->id, (unsigned long long)sec, (long long)seen,
			       (unsigned long long)lo, (unsigned long long)hi);
			w->ops++;
		}
	}
	return NULL;
}

START_TEST(test_stress)
{
	static struct stress st;
	struct worker w[STRESS_WRITERS + STRESS_READERS];
	pthread_t th[STRESS_WRITERS + STRESS_READERS];
	const char *d = getenv("TEST_DURATION");
	struct zdev_config dc = {
		.size = STRESS_SECTORS * SEC,
		.allocator = backends[_i],
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.mem_limit = STRESS_LIMIT,
		.shrinkable = true,
	};
	struct zwb_config wc = {
		.promote = true,
		.shrink =
			{
				.mem_limit = STRESS_LIMIT,
				.mem_high = 90,
				.mem_low = 80,
				.idle_age = 1,
				.idle_interval_ms = 100,
				.pressure = {.psi = PRESSURE_OFF,
					     .cgroup = PRESSURE_OFF},
			},
	};
	unsigned char buf[SEC];
	uint64_t rops = 0, wops = 0, t0, seen;
	char path[300], err[512];
	struct zwb *wb;
	int e;

	memset(&st, 0, sizeof(st));
	st.duration_ms = (d ? strtoull(d, NULL, 0) : 3) * 1000;
	snprintf(path, sizeof(path), "%s/backing", dir);
	wc.backing = path;
	st.dev = zdev_create(&dc, &e);
	ck_assert_ptr_nonnull(st.dev);
	wb = zwb_create(st.dev, &wc, err, sizeof(err));
	ck_assert_msg(wb, "%s", err);
	ck_assert_int_eq(zwb_start(wb), 0);
	for (uint64_t sec = 0; sec < STRESS_SECTORS; sec++) {
		version_data(buf, sec, 0);
		ck_assert_int_eq(zdev_write(st.dev, buf, SEC, sec * SEC, false),
				 0);
	}
	for (unsigned int i = 0; i < STRESS_WRITERS + STRESS_READERS; i++) {
		w[i] = (struct worker){.st = &st, .seed = seed + 100 + i};
		w[i].id = i < STRESS_WRITERS ? i : i - STRESS_WRITERS;
		ck_assert_int_eq(pthread_create(&th[i], NULL,
						i < STRESS_WRITERS
							? stress_writer
							: stress_reader,
						&w[i]),
				 0);
	}
	t0 = now_ms();
	while (now_ms() - t0 < st.duration_ms &&
	       !__atomic_load_n(&st.stop, __ATOMIC_RELAXED))
		usleep(20000);
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELAXED);
	for (unsigned int i = 0; i < STRESS_WRITERS + STRESS_READERS; i++) {
		pthread_join(th[i], NULL);
		if (i < STRESS_WRITERS)
			wops += w[i].ops;
		else
			rops += w[i].ops;
	}
	zwb_stop(wb);
	printf("test_stress %s: %llu writes/trims, %llu reads; evicted %llu, "
	       "read back %llu, promoted %llu\n",
	       backends[_i], (unsigned long long)wops, (unsigned long long)rops,
	       (unsigned long long)stat_of(st.dev, ZSTAT_bd_writes),
	       (unsigned long long)stat_of(st.dev, ZSTAT_bd_reads),
	       (unsigned long long)stat_of(st.dev, ZSTAT_bd_promotions));
	for (unsigned int i = 0; i < STRESS_WRITERS + STRESS_READERS; i++)
		ck_assert_msg(!w[i].fail[0], "%s", w[i].fail);
	/* Every sector holds its last version exactly. */
	for (uint64_t sec = 0; sec < STRESS_SECTORS; sec++) {
		uint64_t v = st.version[sec];

		ck_assert_int_eq(zdev_read(st.dev, buf, SEC, sec * SEC), 0);
		ck_assert_msg(version_ok(buf, sec, v, v, &seen),
			      "sector %llu: version %lld, want %llu",
			      (unsigned long long)sec, (long long)seen,
			      (unsigned long long)v);
	}
	ck_assert_uint_gt(stat_of(st.dev, ZSTAT_bd_writes), 0);
	ck_assert_uint_gt(stat_of(st.dev, ZSTAT_bd_promotions), 0);
	ck_assert_uint_eq(stat_of(st.dev, ZSTAT_bd_checksum_errors), 0);
	ck_assert_uint_eq(stat_of(st.dev, ZSTAT_bd_io_errors), 0);
	ck_assert_uint_le(stat_of(st.dev, ZSTAT_mem_used_max), STRESS_LIMIT);
	ck_assert_uint_eq(rig_slots_used(zwb_backing(wb)),
			  stat_of(st.dev, ZSTAT_bd_count));
	zwb_destroy(wb);
	zdev_destroy(st.dev);
}
END_TEST

static Suite *promote_suite(void)
{
	Suite *s = suite_create("promote");
	TCase *core = tcase_create("core");
	TCase *stress = tcase_create("stress");

	tcase_add_checked_fixture(core, setup, teardown);
	tcase_add_loop_test(core, test_happens, 0, nbackends);
	tcase_add_loop_test(core, test_window, 0, nbackends);
	tcase_add_loop_test(core, test_watermark, 0, nbackends);
	tcase_add_loop_test(core, test_race, 0, nbackends);
	tcase_add_loop_test(core, test_displace, 0, nbackends);
	tcase_set_timeout(core, 120);
	suite_add_tcase(s, core);
	tcase_add_checked_fixture(stress, setup, teardown);
	tcase_add_loop_test(stress, test_stress, 0, nbackends);
	tcase_set_timeout(stress, 300);
	suite_add_tcase(s, stress);
	return s;
}

int main(void)
{
	if (!test_daemon_init("test_daemon_promote"))
		return 1;
	return test_run_suite(promote_suite());
}
