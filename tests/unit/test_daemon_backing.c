/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the backing file: header codec, slot allocator, checksum
 * and placement checks, hole punching, and concurrent use.
 *
 * The files live in a fresh directory under $TMPDIR (default /tmp).
 * test_concurrent is randomized: TEST_SEED replays it.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "test_util.h"

static char dir[256];
static char path[300];

/* A fresh directory in $TMPDIR; false if it cannot be made. */
static bool try_make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/zramd-backing-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return false;
	snprintf(path, sizeof(path), "%s/backing", dir);
	return true;
}

static void make_dir(void)
{
	ck_assert_msg(try_make_dir(), "mkdtemp %s: %s", dir, strerror(errno));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

/* Fills @buf with bytes derived from @sector and @len. */
static void pattern(unsigned char *buf, size_t len, uint64_t sector)
{
	uint64_t x = sector * 0x9e3779b97f4a7c15ull + len;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static struct backing *open_ok(uint64_t size)
{
	char err[256];
	struct backing *b = backing_open(path, size, err, sizeof(err));

	ck_assert_msg(b != NULL, "backing_open: %s", err);
	return b;
}

static struct backing_stats stats(struct backing *b)
{
	struct backing_stats st;

	backing_get_stats(b, &st);
	return st;
}

/* Flips one byte of the file at @off. */
static void flip_byte(off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static off_t slot_offset(uint64_t slot)
{
	return (off_t)((slot >> 4) * BACKING_UNIT);
}

/* --- header codec --- */

START_TEST(test_hdr_roundtrip)
{
	struct backing_hdr h = {
	    .magic = BACKING_MAGIC,
	    .version = 0xa5,
	    .units = 0x07,
	    .flags = 0xbeef,
	    .sector = 0x0102030405060708ull,
	    .len = 0x11223344,
	    .where = 0x55667788,
	    .checksum = 0x99aabbccddeeff00ull,
	};
	static const unsigned char want[BACKING_HDR_SIZE] = {
	    'Z',  'R',	'B',  'K',  0xa5, 0x07, 0xef, 0xbe, 0x08, 0x07, 0x06,
	    0x05, 0x04, 0x03, 0x02, 0x01, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77,
	    0x66, 0x55, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99,
	};
	unsigned char out[BACKING_HDR_SIZE];
	struct backing_hdr d;

	backing_hdr_encode(&h, out);
	ck_assert_mem_eq(out, want, sizeof(want));
	memset(&d, 0, sizeof(d));
	backing_hdr_decode(out, &d);
	ck_assert_uint_eq(d.magic, h.magic);
	ck_assert_uint_eq(d.version, h.version);
	ck_assert_uint_eq(d.units, h.units);
	ck_assert_uint_eq(d.flags, h.flags);
	ck_assert_uint_eq(d.sector, h.sector);
	ck_assert_uint_eq(d.len, h.len);
	ck_assert_uint_eq(d.where, h.where);
	ck_assert_uint_eq(d.checksum, h.checksum);
}
END_TEST

/* The checksum covers every header byte but its own, and the payload. */
START_TEST(test_checksum_coverage)
{
	unsigned char hdr[BACKING_HDR_SIZE], payload[100];
	uint64_t c0;

	pattern(hdr, sizeof(hdr), 1);
	pattern(payload, sizeof(payload), 2);
	c0 = backing_checksum(hdr, payload, sizeof(payload));
	for (size_t i = 0; i < BACKING_HDR_SIZE; i++) {
		hdr[i] ^= 1;
		if (i < 24)
			ck_assert_uint_ne(
			    backing_checksum(hdr, payload, sizeof(payload)),
			    c0);
		else
			ck_assert_uint_eq(
			    backing_checksum(hdr, payload, sizeof(payload)),
			    c0);
		hdr[i] ^= 1;
	}
	for (size_t i = 0; i < sizeof(payload); i++) {
		payload[i] ^= 0x80;
		ck_assert_uint_ne(
		    backing_checksum(hdr, payload, sizeof(payload)), c0);
		payload[i] ^= 0x80;
	}
}
END_TEST

/* --- records --- */

START_TEST(test_write_read)
{
	static const size_t lens[] = {1,   100,	 479,  480,  481,  992,
				      993, 2048, 4063, 4064, 4065, 4096};
	struct backing *b = open_ok(1 << 20);
	uint64_t slots[sizeof(lens) / sizeof(lens[0])];
	unsigned char in[BACKING_MAX_PAYLOAD], out[BACKING_MAX_PAYLOAD];
	uint64_t used = 0;
	struct backing_stats st;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		pattern(in, lens[i], 1000 + i);
		ck_assert_int_eq(backing_write(b, 1000 + i, in, lens[i],
					       (unsigned int)i, &slots[i]),
				 0);
		ck_assert_uint_ne(slots[i], 0);
		ck_assert_uint_eq(slots[i] >> BACKING_SLOT_BITS, 0);
		/* The record takes header + payload in whole units. */
		ck_assert_uint_eq(slots[i] & 15,
				  (32 + lens[i] + 511) / BACKING_UNIT);
		used += (slots[i] & 15) * BACKING_UNIT;
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = 0;
		unsigned int flags = 99;

		pattern(in, lens[i], 1000 + i);
		memset(out, 0, sizeof(out));
		ck_assert_int_eq(backing_read(b, slots[i], 1000 + i, out,
					      sizeof(out), &len, &flags),
				 0);
		ck_assert_uint_eq(len, lens[i]);
		ck_assert_uint_eq(flags, i);
		ck_assert_mem_eq(out, in, lens[i]);
	}
	st = stats(b);
	ck_assert_uint_eq(st.capacity, 1 << 20);
	ck_assert_uint_eq(st.slots_used, sizeof(lens) / sizeof(lens[0]));
	ck_assert_uint_eq(st.bytes_used, used);
	ck_assert_uint_eq(st.writes, sizeof(lens) / sizeof(lens[0]));
	ck_assert_uint_eq(st.reads, sizeof(lens) / sizeof(lens[0]));
	ck_assert_uint_eq(st.checksum_errors, 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		backing_free(b, slots[i]);
	st = stats(b);
	ck_assert_uint_eq(st.slots_used, 0);
	ck_assert_uint_eq(st.bytes_used, 0);
	ck_assert_uint_eq(st.bad_frees, 0);
	ck_assert_int_eq(backing_drop_cache(b), 0);
	backing_close(b);
}
END_TEST

START_TEST(test_invalid_args)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[BACKING_MAX_PAYLOAD + 1] = {0};
	uint64_t slot, bad;
	size_t len;

	ck_assert_int_eq(backing_write(b, 1, buf, 0, 0, &slot), -EINVAL);
	ck_assert_int_eq(
	    backing_write(b, 1, buf, BACKING_MAX_PAYLOAD + 1, 0, &slot),
	    -EINVAL);
	ck_assert_int_eq(backing_write(b, 1, buf, 10, 0x10000, &slot), -EINVAL);
	ck_assert_int_eq(backing_write(b, 1, buf, 600, 0, &slot), 0);
	/* Malformed slots: no units, too many units, past the end. */
	ck_assert_int_eq(
	    backing_read(b, slot & ~(uint64_t)15, 1, buf, 4096, &len, NULL),
	    -EINVAL);
	ck_assert_int_eq(backing_read(b, (slot & ~(uint64_t)15) | 10, 1, buf,
				      4096, &len, NULL),
			 -EINVAL);
	bad = (uint64_t)(BACKING_MIN_SIZE / BACKING_UNIT) << 4 | 1;
	ck_assert_int_eq(backing_read(b, bad, 1, buf, 4096, &len, NULL),
			 -EINVAL);
	/* A buffer too small for the payload is refused, not overrun. */
	ck_assert_int_eq(backing_read(b, slot, 1, buf, 599, &len, NULL), -EIO);
	ck_assert_int_eq(backing_read(b, slot, 1, buf, 600, &len, NULL), 0);
	/* Wild and double frees are counted and ignored. */
	backing_free(b, 0);
	backing_free(b, bad);
	backing_free(b, slot);
	backing_free(b, slot);
	ck_assert_uint_eq(stats(b).bad_frees, 2);
	ck_assert_uint_eq(stats(b).slots_used, 0);
	backing_close(b);
}
END_TEST

/* --- the allocator --- */

START_TEST(test_full_and_reuse)
{
	enum { UNITS = BACKING_MIN_SIZE / BACKING_UNIT };
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[BACKING_MAX_PAYLOAD];
	uint64_t slots[UNITS], slot;
	int n = 0;

	pattern(buf, sizeof(buf), 7);
	/* One-unit records fill the file exactly. */
	while (backing_write(b, (uint64_t)n, buf, 100, 0, &slot) == 0) {
		ck_assert_int_lt(n, UNITS);
		slots[n++] = slot;
	}
	ck_assert_int_eq(n, UNITS);
	ck_assert_int_eq(backing_write(b, 0, buf, 100, 0, &slot), -ENOSPC);
	ck_assert_uint_ge(stats(b).full, 2);

	/* A freed slot is reused. */
	backing_free(b, slots[17]);
	ck_assert_int_eq(backing_write(b, 17, buf, 100, 0, &slot), 0);
	ck_assert_uint_eq(slot, slots[17]);

	/* Fragmented: half the units free, but no two adjacent. */
	for (int i = 0; i < UNITS; i += 2)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).slots_used, UNITS / 2);
	ck_assert_int_eq(backing_write(b, 1, buf, 600, 0, &slot), -ENOSPC);
	ck_assert_int_eq(backing_write(b, 1, buf, 100, 0, &slot), 0);
	backing_free(b, slot);

	/* Freeing the neighbours makes room for the largest records. */
	for (int i = 1; i < UNITS; i += 2)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).slots_used, 0);
	n = 0;
	while (backing_write(b, (uint64_t)n, buf, BACKING_MAX_PAYLOAD, 1,
			     &slot) == 0)
		slots[n++] = slot;
	ck_assert_int_eq(n, UNITS / BACKING_MAX_UNITS);
	for (int i = 0; i < n; i++) {
		unsigned char out[BACKING_MAX_PAYLOAD];
		size_t len;

		ck_assert_int_eq(backing_read(b, slots[i], (uint64_t)i, out,
					      sizeof(out), &len, NULL),
				 0);
		ck_assert_mem_eq(out, buf, sizeof(buf));
	}
	ck_assert_uint_eq(stats(b).bad_frees, 0);
	backing_close(b);
}
END_TEST

/* Records never overlap, whatever the mix of sizes and frees. */
START_TEST(test_no_overlap)
{
	enum { N = 400 };
	struct backing *b = open_ok(1 << 20);
	unsigned char buf[BACKING_MAX_PAYLOAD], out[BACKING_MAX_PAYLOAD];
	uint64_t slots[N] = {0};
	size_t lens[N];
	unsigned long seed = test_seed();

	printf("test_no_overlap: TEST_SEED=%lu\n", seed);
	srandom((unsigned int)seed);
	for (int round = 0; round < 3000; round++) {
		int i = (int)(random() % N);

		if (slots[i]) {
			size_t len;

			pattern(buf, lens[i], (uint64_t)i);
			ck_assert_int_eq(backing_read(b, slots[i], (uint64_t)i,
						      out, sizeof(out), &len,
						      NULL),
					 0);
			ck_assert_mem_eq(out, buf, lens[i]);
			backing_free(b, slots[i]);
			slots[i] = 0;
		} else {
			lens[i] = 1 + (size_t)random() % BACKING_MAX_PAYLOAD;
			pattern(buf, lens[i], (uint64_t)i);
			ck_assert_int_eq(backing_write(b, (uint64_t)i, buf,
						       lens[i], 0, &slots[i]),
					 0);
		}
	}
	for (int i = 0; i < N; i++)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).slots_used, 0);
	ck_assert_uint_eq(stats(b).bad_frees, 0);
	backing_close(b);
}
END_TEST

/* --- integrity --- */

START_TEST(test_corrupt_payload)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[3000], out[BACKING_MAX_PAYLOAD];
	uint64_t slot;
	size_t len;

	pattern(buf, sizeof(buf), 42);
	ck_assert_int_eq(backing_write(b, 42, buf, sizeof(buf), 1, &slot), 0);
	for (size_t off = 0; off < sizeof(buf); off += 397) {
		flip_byte(slot_offset(slot) + BACKING_HDR_SIZE + (off_t)off);
		ck_assert_int_eq(
		    backing_read(b, slot, 42, out, sizeof(out), &len, NULL),
		    -EIO);
		flip_byte(slot_offset(slot) + BACKING_HDR_SIZE + (off_t)off);
		ck_assert_int_eq(
		    backing_read(b, slot, 42, out, sizeof(out), &len, NULL), 0);
		ck_assert_mem_eq(out, buf, sizeof(buf));
	}
	ck_assert_uint_eq(stats(b).checksum_errors, 8);
	backing_close(b);
}
END_TEST

START_TEST(test_corrupt_header)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[700], out[BACKING_MAX_PAYLOAD];
	uint64_t slot;
	size_t len;

	pattern(buf, sizeof(buf), 5);
	ck_assert_int_eq(backing_write(b, 5, buf, sizeof(buf), 0, &slot), 0);
	for (off_t i = 0; i < BACKING_HDR_SIZE; i++) {
		flip_byte(slot_offset(slot) + i);
		ck_assert_msg(backing_read(b, slot, 5, out, sizeof(out), &len,
					   NULL) == -EIO,
			      "header byte %d flipped, read not refused",
			      (int)i);
		flip_byte(slot_offset(slot) + i);
	}
	ck_assert_uint_eq(stats(b).checksum_errors, BACKING_HDR_SIZE);
	ck_assert_int_eq(backing_read(b, slot, 5, out, sizeof(out), &len, NULL),
			 0);
	ck_assert_mem_eq(out, buf, sizeof(buf));
	backing_close(b);
}
END_TEST

START_TEST(test_wrong_sector_and_place)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[200], rec[BACKING_UNIT], out[BACKING_MAX_PAYLOAD];
	uint64_t s1, s2;
	size_t len;
	int fd;

	pattern(buf, sizeof(buf), 9);
	ck_assert_int_eq(backing_write(b, 9, buf, sizeof(buf), 0, &s1), 0);
	ck_assert_int_eq(backing_write(b, 9, buf, sizeof(buf), 0, &s2), 0);
	ck_assert_uint_ne(s1, s2);
	ck_assert_int_eq(backing_read(b, s1, 10, out, sizeof(out), &len, NULL),
			 -EIO);
	ck_assert_int_eq(backing_read(b, s1, 9, out, sizeof(out), &len, NULL),
			 0);

	/* An intact record copied to another slot's place is refused. */
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, rec, sizeof(rec), slot_offset(s1)),
			 sizeof(rec));
	ck_assert_int_eq(pwrite(fd, rec, sizeof(rec), slot_offset(s2)),
			 sizeof(rec));
	close(fd);
	ck_assert_int_eq(backing_read(b, s2, 9, out, sizeof(out), &len, NULL),
			 -EIO);
	ck_assert_uint_eq(stats(b).checksum_errors, 2);
	backing_close(b);
}
END_TEST

/* --- the file --- */

START_TEST(test_open_errors)
{
	char err[256], p[400];
	struct backing *b, *b2;
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/no-such-dir/backing", dir);
	errno = 0;
	ck_assert_ptr_null(backing_open(p, 0, err, sizeof(err)));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "does not exist"));
	ck_assert_ptr_nonnull(strstr(err, "no-such-dir"));

	ck_assert_ptr_null(backing_open(path, 4096, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "minimum"));

	ck_assert_ptr_null(backing_open("/dev/null", 0, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);

	/* An old file is truncated; a new one is private. */
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(write(fd, "old contents", 12), 12);
	close(fd);
	b = open_ok(0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_uint_gt(stats(b).capacity, 0);

	/* A second user of the same file is refused. */
	errno = 0;
	b2 = backing_open(path, 0, err, sizeof(err));
	ck_assert_ptr_null(b2);
	ck_assert_int_eq(errno, EBUSY);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	backing_close(b);
	unlink(path);

	b = open_ok(BACKING_MIN_SIZE);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	backing_close(b);
}
END_TEST

START_TEST(test_unnamed_file)
{
	char err[256];
	struct backing *b = backing_open(dir, 1 << 20, err, sizeof(err));
	unsigned char buf[1000], out[BACKING_MAX_PAYLOAD];
	uint64_t slot;
	size_t len;
	DIR *d;
	struct dirent *e;
	int entries = 0;

	if (!b && errno == EOPNOTSUPP) {
		printf("SKIP test_unnamed_file: no O_TMPFILE in %s\n", dir);
		return;
	}
	ck_assert_msg(b != NULL, "backing_open: %s", err);
	pattern(buf, sizeof(buf), 3);
	ck_assert_int_eq(backing_write(b, 3, buf, sizeof(buf), 0, &slot), 0);
	ck_assert_int_eq(backing_read(b, slot, 3, out, sizeof(out), &len, NULL),
			 0);
	ck_assert_mem_eq(out, buf, sizeof(buf));
	/* Nothing shows in the directory. */
	d = opendir(dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	ck_assert_int_eq(entries, 0);
	backing_close(b);
}
END_TEST

static long blocks_of(const char *p)
{
	struct stat st;

	ck_assert_int_eq(stat(p, &st), 0);
	return (long)st.st_blocks;
}

START_TEST(test_hole_punch)
{
	enum { N = 512 };
	struct backing *b = open_ok(8 << 20);
	unsigned char buf[BACKING_MAX_PAYLOAD];
	uint64_t slots[N];
	long full, empty;
	size_t len;

	for (int i = 0; i < N; i++) {
		pattern(buf, sizeof(buf), (uint64_t)i);
		/* 1800 bytes: 4 units, two records per 4 KiB block. */
		ck_assert_int_eq(
		    backing_write(b, (uint64_t)i, buf, 1800, 0, &slots[i]), 0);
		ck_assert_uint_eq(slots[i] & 15, 4);
	}
	ck_assert_int_eq(backing_drop_cache(b), 0);
	full = blocks_of(path);
	/* 512 records of 4 units: 1 MiB, 2048 blocks of 512 bytes. */
	ck_assert_int_ge(full, 2048);

	/* Freeing every other record frees no whole 4 KiB block. */
	for (int i = 0; i < N; i += 2)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).punched, 0);
	for (int i = 1; i < N; i += 2)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).punch_errors, 0);
	ck_assert_uint_eq(stats(b).punched, N * 4 * BACKING_UNIT / 4096);
	empty = blocks_of(path);
	ck_assert_msg(empty <= full / 16, "st_blocks %ld -> %ld", full, empty);
	/* A punched slot reads as zeros, which no check accepts. */
	ck_assert_int_eq(
	    backing_read(b, slots[0], 0, buf, sizeof(buf), &len, NULL), -EIO);
	backing_close(b);
}
END_TEST

/* --- concurrency --- */

struct worker {
	struct backing *b;
	unsigned int seed;
	int id;
	uint64_t ops;
};

static void *worker_run(void *arg)
{
	enum { SLOTS = 64 };
	struct worker *w = arg;
	uint64_t slots[SLOTS] = {0};
	size_t lens[SLOTS];
	unsigned char buf[BACKING_MAX_PAYLOAD], out[BACKING_MAX_PAYLOAD];

	for (int round = 0; round < 2000; round++) {
		int i = (int)(rand_r(&w->seed) % SLOTS);
		uint64_t sector = (uint64_t)w->id << 32 | (uint64_t)i;
		size_t len;
		int rc;

		if (!slots[i]) {
			lens[i] =
			    1 + (size_t)rand_r(&w->seed) % BACKING_MAX_PAYLOAD;
			pattern(buf, lens[i], sector + lens[i]);
			rc = backing_write(w->b, sector, buf, lens[i], 0,
					   &slots[i]);
			if (rc == -ENOSPC)
				continue;
			if (rc != 0)
				return "write failed";
		} else {
			pattern(buf, lens[i], sector + lens[i]);
			if (backing_read(w->b, slots[i], sector, out,
					 sizeof(out), &len, NULL) != 0 ||
			    len != lens[i] || memcmp(out, buf, len) != 0)
				return "read back wrong data";
			if (rand_r(&w->seed) % 2) {
				backing_free(w->b, slots[i]);
				slots[i] = 0;
			}
		}
		w->ops++;
	}
	for (int i = 0; i < SLOTS; i++)
		backing_free(w->b, slots[i]);
	return NULL;
}

START_TEST(test_concurrent)
{
	enum { T = 4 };
	/* Small enough that writers sometimes find it full. */
	struct backing *b = open_ok(512 << 10);
	struct worker w[T];
	pthread_t th[T];
	unsigned long seed = test_seed();
	struct backing_stats st;

	printf("test_concurrent: TEST_SEED=%lu\n", seed);
	for (int i = 0; i < T; i++) {
		w[i] = (struct worker){
		    .b = b, .seed = (unsigned int)(seed + i), .id = i};
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		void *res;

		pthread_join(th[i], &res);
		ck_assert_msg(res == NULL, "thread %d: %s", i,
			      res ? (char *)res : "");
	}
	st = stats(b);
	ck_assert_uint_eq(st.slots_used, 0);
	ck_assert_uint_eq(st.bytes_used, 0);
	ck_assert_uint_eq(st.checksum_errors, 0);
	ck_assert_uint_eq(st.bad_frees, 0);
	ck_assert_uint_eq(st.read_errors, 0);
	backing_close(b);
}
END_TEST

/* Whether the temporary directory's filesystem can punch holes. */
static bool can_punch(void)
{
	char p[300];
	bool ok;
	int fd;

	if (!try_make_dir())
		return false;
	snprintf(p, sizeof(p), "%s/probe", dir);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	ok = fd >= 0 && ftruncate(fd, 8192) == 0 &&
	     fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		       4096) == 0;
	if (fd >= 0)
		close(fd);
	remove_dir();
	return ok;
}

static Suite *backing_suite(void)
{
	Suite *s = suite_create("backing");
	TCase *codec = tcase_create("codec");
	TCase *core = tcase_create("core");
	TCase *file = tcase_create("file");
	TCase *conc = tcase_create("concurrency");

	tcase_add_test(codec, test_hdr_roundtrip);
	tcase_add_test(codec, test_checksum_coverage);
	suite_add_tcase(s, codec);

	tcase_add_checked_fixture(core, make_dir, remove_dir);
	tcase_add_test(core, test_write_read);
	tcase_add_test(core, test_invalid_args);
	tcase_add_test(core, test_full_and_reuse);
	tcase_add_test(core, test_no_overlap);
	tcase_add_test(core, test_corrupt_payload);
	tcase_add_test(core, test_corrupt_header);
	tcase_add_test(core, test_wrong_sector_and_place);
	suite_add_tcase(s, core);

	tcase_add_checked_fixture(file, make_dir, remove_dir);
	tcase_add_test(file, test_open_errors);
	tcase_add_test(file, test_unnamed_file);
	if (can_punch())
		tcase_add_test(file, test_hole_punch);
	else
		printf("SKIP test_hole_punch: the filesystem of $TMPDIR "
		       "cannot punch holes\n");
	suite_add_tcase(s, file);

	tcase_add_checked_fixture(conc, make_dir, remove_dir);
	tcase_add_test(conc, test_concurrent);
	tcase_set_timeout(conc, 120);
	suite_add_tcase(s, conc);
	return s;
}

int main(void)
{
	return test_run_suite(backing_suite());
}
