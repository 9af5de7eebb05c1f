/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the backing file: header codec, slot allocator, checksum,
 * placement and nonce checks (a lost write), hole punching, a full
 * filesystem, and concurrent use.
 *
 * The files live in a fresh directory under $TMPDIR (default /tmp).
 * test_open_full_fs mounts a small tmpfs in a mount namespace of its own
 * (it needs root; without it, it is skipped). test_concurrent is
 * randomized: TEST_SEED replays it.
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
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backing.h"
#include "test_loopdev.h"
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
	return (off_t)(BACKING_SLOT_UNIT(slot) * BACKING_UNIT);
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
	    /* 13 and 19 bits on disk: 0x5a5a5 << 13 | 0xabc = 0xb4b4aabc */
	    .len = 0x0abc,
	    .nonce = 0x5a5a5,
	    .where = 0x55667788,
	    .checksum = 0x99aabbccddeeff00ull,
	};
	static const unsigned char want[BACKING_HDR_SIZE] = {
	    'Z',  'R',	'B',  'K',  0xa5, 0x07, 0xef, 0xbe, 0x08, 0x07, 0x06,
	    0x05, 0x04, 0x03, 0x02, 0x01, 0xbc, 0xaa, 0xb4, 0xb4, 0x88, 0x77,
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
	ck_assert_uint_eq(d.nonce, h.nonce);
	ck_assert_uint_eq(d.where, h.where);
	ck_assert_uint_eq(d.checksum, h.checksum);

	/* Length and nonce are cut to their widths, neither spills over. */
	h.len = 0xffffffff;
	h.nonce = 0;
	backing_hdr_encode(&h, out);
	backing_hdr_decode(out, &d);
	ck_assert_uint_eq(d.len, 0x1fff);
	ck_assert_uint_eq(d.nonce, 0);
	h.len = 0;
	h.nonce = 0xffffffff;
	backing_hdr_encode(&h, out);
	backing_hdr_decode(out, &d);
	ck_assert_uint_eq(d.len, 0);
	ck_assert_uint_eq(d.nonce, 0x7ffff);
	ck_assert_uint_eq(BACKING_VERSION, 2);
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
		ck_assert_uint_le(slots[i], INT64_MAX);
		/* Each write takes the next nonce. */
		if (i > 0)
			ck_assert_uint_eq(BACKING_SLOT_NONCE(slots[i]),
					  (BACKING_SLOT_NONCE(slots[i - 1]) +
					   1) & BACKING_NONCE_MASK);
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
	/* Bit 63, above the nonce, is never set. */
	ck_assert_int_eq(backing_read(b, slot | UINT64_C(1) << 63, 1, buf, 4096,
				      &len, NULL),
			 -EINVAL);
	/* A buffer too small for the payload is refused, not overrun. */
	ck_assert_int_eq(backing_read(b, slot, 1, buf, 599, &len, NULL), -EBADMSG);
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

	/* A freed place is reused, under a new nonce. */
	backing_free(b, slots[17]);
	ck_assert_int_eq(backing_write(b, 17, buf, 100, 0, &slot), 0);
	ck_assert_uint_eq(slot & BACKING_PLACE_MASK,
			  slots[17] & BACKING_PLACE_MASK);
	ck_assert_uint_ne(slot, slots[17]);
	slots[17] = slot;

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
		    -EBADMSG);
		flip_byte(slot_offset(slot) + BACKING_HDR_SIZE + (off_t)off);
		ck_assert_int_eq(
		    backing_read(b, slot, 42, out, sizeof(out), &len, NULL), 0);
		ck_assert_mem_eq(out, buf, sizeof(buf));
	}
	ck_assert_uint_eq(stats(b).checksum_errors, 8);
	backing_close(b);
}
END_TEST

/*
 * A record that cannot be read (here: the file was truncated under it,
 * so the read comes up short) is an I/O error, counted apart from a
 * record that reads but fails its checks: the operator replaces a disk
 * for one and looks for a bug or a stray writer for the other.
 */
START_TEST(test_io_error_counted_apart)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char buf[3000], out[BACKING_MAX_PAYLOAD];
	uint64_t slot;
	size_t len;
	int fd;

	pattern(buf, sizeof(buf), 7);
	ck_assert_int_eq(backing_write(b, 7, buf, sizeof(buf), 1, &slot), 0);
	flip_byte(slot_offset(slot) + BACKING_HDR_SIZE + 100);
	ck_assert_int_eq(backing_read(b, slot, 7, out, sizeof(out), &len, NULL),
			 -EBADMSG);
	ck_assert_uint_eq(stats(b).checksum_errors, 1);
	ck_assert_uint_eq(stats(b).read_errors, 0);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, slot_offset(slot) + 10), 0);
	close(fd);
	ck_assert_int_eq(backing_read(b, slot, 7, out, sizeof(out), &len, NULL),
			 -EIO);
	ck_assert_uint_eq(stats(b).checksum_errors, 1);
	ck_assert_uint_eq(stats(b).read_errors, 1);
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
					   NULL) == -EBADMSG,
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
			 -EBADMSG);
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
			 -EBADMSG);
	ck_assert_uint_eq(stats(b).checksum_errors, 2);
	backing_close(b);
}
END_TEST

/*
 * A lost write: the newer record of a sector never reaches the file, and
 * the older record of the same sector, written at the same place before
 * the place was freed and reused, is still there. It is intact in every
 * other respect (magic, place, sector, length, checksum); only its nonce
 * tells it apart. (tests/fuzz/repro/README.md had these steps.)
 */
START_TEST(test_lost_write)
{
	struct backing *b = open_ok(BACKING_MIN_SIZE);
	unsigned char a[1000], bb[1000], out[BACKING_MAX_PAYLOAD];
	unsigned char saved[3 * BACKING_UNIT], now[3 * BACKING_UNIT];
	uint64_t sa, sb, slot, errs;
	size_t len;
	int fd, fill = 0;

	memset(a, 'A', sizeof(a));
	memset(bb, 'B', sizeof(bb));
	ck_assert_int_eq(backing_write(b, 5, a, sizeof(a), 0, &sa), 0);
	ck_assert_uint_eq(sa & BACKING_PLACE_MASK, 0x3); /* unit 0, 3 units */

	/* Save A's record as it is on disk. */
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, saved, sizeof(saved), 0), sizeof(saved));

	/* Fill the file, so that the next write must wrap to A's place. */
	while (backing_write(b, 1000 + (uint64_t)fill, a, 100, 0, &slot) == 0)
		fill++;
	ck_assert_int_eq(fill, BACKING_MIN_SIZE / BACKING_UNIT - 3);
	backing_free(b, sa);
	ck_assert_int_eq(backing_write(b, 5, bb, sizeof(bb), 0, &sb), 0);
	ck_assert_uint_eq(sb & BACKING_PLACE_MASK, sa & BACKING_PLACE_MASK);
	ck_assert_uint_ne(BACKING_SLOT_NONCE(sb), BACKING_SLOT_NONCE(sa));
	ck_assert_int_eq(backing_read(b, sb, 5, out, sizeof(out), &len, NULL),
			 0);
	ck_assert_uint_eq(len, sizeof(bb));
	ck_assert_mem_eq(out, bb, sizeof(bb));

	/* B's write is "lost": A's bytes are back, and they are intact. */
	ck_assert_int_eq(pwrite(fd, saved, sizeof(saved), 0), sizeof(saved));
	ck_assert_int_eq(pread(fd, now, sizeof(now), 0), sizeof(now));
	ck_assert_mem_eq(now, saved, sizeof(saved));
	close(fd);
	errs = stats(b).checksum_errors;
	memset(out, 0, sizeof(out));
	ck_assert_int_eq(backing_read(b, sb, 5, out, sizeof(out), &len, NULL),
			 -EBADMSG);
	ck_assert_uint_eq(stats(b).checksum_errors, errs + 1);
	/* A's own, stale slot number reads it, so A's record is intact:
	 * only the nonce refused it above. */
	ck_assert_int_eq(backing_read(b, sa, 5, out, sizeof(out), &len, NULL),
			 0);
	ck_assert_mem_eq(out, a, sizeof(a));
	/* The nonce does not matter to a free: sa frees B's place. */
	backing_free(b, sa);
	ck_assert_uint_eq(stats(b).slots_used, (uint64_t)fill);
	ck_assert_uint_eq(stats(b).bad_frees, 0);
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

/*
 * A full filesystem: with backing_size 0, less than BACKING_MIN_SIZE free
 * is refused with ENOSPC and "only N bytes free", before the file is
 * created or truncated. A 256 KiB tmpfs is mounted on dir, in a mount
 * namespace of the test's own (so a failed test leaves no mount behind),
 * and filled but for FREE bytes.
 */
enum { FS_SIZE = 256 << 10, FREE = 32 << 10, OLD = 8 << 10 };

/* Mounts a FS_SIZE tmpfs on @on in a new mount namespace; 0 or errno. */
static int mount_small_tmpfs(const char *on)
{
	if (unshare(CLONE_NEWNS) != 0)
		return errno;
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return errno;
	if (mount("tmpfs", on, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=256k,mode=0700") != 0)
		return errno;
	return 0;
}

/* Whether this process may do what test_open_full_fs does; else why not
 * in @why. A child tries, so this process's namespace stays as it is. */
static bool can_mount_tmpfs(char *why, size_t len)
{
	int st, e;
	pid_t pid;

	if (!try_make_dir()) {
		snprintf(why, len, "mkdtemp: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid == 0) {
		e = mount_small_tmpfs(dir);
		if (e == 0)
			umount(dir);
		_exit(e);
	}
	e = pid < 0 ? errno : 0;
	if (pid > 0 && (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)))
		e = ECHILD;
	else if (pid > 0)
		e = WEXITSTATUS(st);
	remove_dir();
	if (e)
		snprintf(why, len, "cannot mount a tmpfs in a new mount "
			 "namespace (root needed): %s", strerror(e));
	return e == 0;
}

static uint64_t free_bytes(const char *p)
{
	struct statvfs vfs;

	ck_assert_int_eq(statvfs(p, &vfs), 0);
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

/* Writes @n bytes of @c to a new file @p. */
static void write_file(const char *p, size_t n, int c)
{
	static unsigned char buf[64 << 10];
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);

	ck_assert_int_ge(fd, 0);
	memset(buf, c, sizeof(buf));
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);

		ck_assert_int_eq(write(fd, buf, k), (ssize_t)k);
		done += k;
	}
	close(fd);
}

static int count_entries(const char *d_path)
{
	DIR *d = opendir(d_path);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Opens with size 0 and expects ENOSPC with "only @avail bytes free". */
static void expect_no_space(const char *p, uint64_t avail)
{
	char err[256], want[128];

	errno = 0;
	ck_assert_ptr_null(backing_open(p, 0, err, sizeof(err)));
	ck_assert_int_eq(errno, ENOSPC);
	snprintf(want, sizeof(want), "only %llu bytes free",
		 (unsigned long long)avail);
	ck_assert_msg(strstr(err, want) != NULL, "message \"%s\", want \"%s\"",
		      err, want);
	ck_assert_ptr_nonnull(strstr(err, p));
}

START_TEST(test_open_full_fs)
{
	char fill[400], err[256];
	unsigned char old[OLD], now[OLD];
	struct backing *b;
	struct stat st;
	uint64_t avail;
	int e = mount_small_tmpfs(dir), fd;

	ck_assert_msg(e == 0, "mount tmpfs on %s: %s", dir, strerror(e));
	ck_assert_uint_eq(free_bytes(dir), FS_SIZE);
	snprintf(fill, sizeof(fill), "%s/fill", dir);

	/* A new file: refused, and nothing is created. */
	write_file(fill, FS_SIZE - FREE, 'f');
	avail = free_bytes(dir);
	ck_assert_uint_eq(avail, FREE);
	expect_no_space(path, avail);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(count_entries(dir), 1);

	/* An unnamed file in the directory: refused as well. */
	expect_no_space(dir, avail);
	ck_assert_int_eq(count_entries(dir), 1);

	/* An existing file: its space counts as free (open would truncate
	 * it), still too little; it is left as it was. */
	ck_assert_int_eq(unlink(fill), 0);
	write_file(path, OLD, 'o');
	ck_assert_int_eq(chmod(path, 0640), 0);
	write_file(fill, FS_SIZE - FREE - OLD, 'f');
	avail = free_bytes(dir);
	ck_assert_uint_eq(avail, FREE);
	expect_no_space(path, avail + OLD);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, OLD);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, now, sizeof(now)), sizeof(now));
	close(fd);
	memset(old, 'o', sizeof(old));
	ck_assert_mem_eq(now, old, sizeof(old));
	ck_assert_int_eq(count_entries(dir), 2);

	/* The control: with the space back, the same open succeeds. */
	ck_assert_int_eq(unlink(fill), 0);
	b = backing_open(path, 0, err, sizeof(err));
	ck_assert_msg(b != NULL, "backing_open: %s", err);
	ck_assert_uint_eq(stats(b).capacity, FS_SIZE);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	backing_close(b);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(umount(dir), 0);
}
END_TEST

/* Unchecked fixture of the "fullfs" case: runs in the parent process. */
static void unmount_and_remove_dir(void)
{
	umount2(dir, MNT_DETACH); /* mounted only if CK_FORK=no and failed */
	remove_dir();
}

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
	    backing_read(b, slots[0], 0, buf, sizeof(buf), &len, NULL), -EBADMSG);
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


/*
 * The same tests against a block device: a loop device over a file in the
 * scratch directory, created by the fixture and always detached after.
 * path names the device, so the tests open, damage and read it as they
 * do the file.
 */
static char loopdev[64];

/* A loop device over a fresh 4 MiB file; false (and a reason) if not. */
static bool try_make_loop(char *why, size_t whylen)
{
	if (!try_make_dir()) {
		snprintf(why, whylen, "mkdtemp: %s", strerror(errno));
		return false;
	}
	if (!loop_attach(dir, 4, loopdev, sizeof(loopdev))) {
		snprintf(why, whylen, "losetup -f cannot attach a loop device "
			 "(needs root and /dev/loop-control)");
		return false;
	}
	snprintf(path, sizeof(path), "%s", loopdev);
	return true;
}

static void remove_loop(void)
{
	loop_detach(dir, loopdev);
	remove_dir();
}

static void make_loop(void)
{
	char why[200];

	ck_assert_msg(try_make_loop(why, sizeof(why)), "%s", why);
}

/* --- block devices --- */

/* Sectors discarded on block device @dev so far (/sys/block/NAME/stat). */
static long long discarded_sectors(const char *dev)
{
	const char *name = strrchr(dev, '/');
	long long v[14];
	char p[340];
	FILE *f;
	int n;

	snprintf(p, sizeof(p), "/sys/block/%s/stat", name ? name + 1 : dev);
	f = fopen(p, "r");
	if (!f)
		return -1;
	n = 0;
	while (n < 14 && fscanf(f, "%lld", &v[n]) == 1)
		n++;
	fclose(f);
	return n == 14 ? v[13] : -1;
}

/*
 * Freed space is discarded on the device: on a loop device over a sparse
 * file, discard punches the file, so the file's allocated blocks shrink
 * when the records on them are freed, as test_hole_punch shows for a
 * file.
 */
START_TEST(test_bdev_discard)
{
	enum { N = 512 };
	struct backing *b = open_ok(0);
	unsigned char buf[BACKING_MAX_PAYLOAD];
	char under[300];
	uint64_t slots[N];
	long full, empty;
	long long disc;

	snprintf(under, sizeof(under), "%s/loopfile", dir);
	for (int i = 0; i < N; i++) {
		pattern(buf, sizeof(buf), (uint64_t)i);
		ck_assert_int_eq(
		    backing_write(b, (uint64_t)i, buf, 1800, 0, &slots[i]), 0);
	}
	ck_assert_int_eq(backing_drop_cache(b), 0);
	full = blocks_of(under);
	/* 512 records of 4 units: 1 MiB, 2048 blocks of 512 bytes. */
	ck_assert_msg(full >= 2048, "the loop file holds %ld blocks", full);
	disc = discarded_sectors(path);
	for (int i = 0; i < N; i++)
		backing_free(b, slots[i]);
	ck_assert_uint_eq(stats(b).punch_errors, 0);
	ck_assert_uint_eq(stats(b).punched, N * 4 * BACKING_UNIT / 4096);
	empty = blocks_of(under);
	ck_assert_msg(empty <= full / 16, "loop file st_blocks %ld -> %ld",
		      full, empty);
	/* As discards (BLKDISCARD), not zeroing writes: the device counts
	 * them (when the kernel shows discard counters). */
	if (disc >= 0)
		ck_assert_int_eq(discarded_sectors(path) - disc,
				 N * 4 * BACKING_UNIT / 512);
	backing_close(b);
}
END_TEST

/* A device another program holds exclusively is refused, named. */
START_TEST(test_bdev_excl)
{
	char err[256];
	struct backing *b = open_ok(0), *b2;

	ck_assert_uint_eq(stats(b).capacity / BACKING_UNIT * BACKING_UNIT,
			  stats(b).capacity);
	b2 = backing_open(path, 0, err, sizeof(err));
	ck_assert_ptr_null(b2);
	ck_assert_int_eq(errno, EBUSY);
	ck_assert_msg(strstr(err, path) && strstr(err, "in use"), "%s", err);
	backing_close(b);
	b2 = open_ok(0);
	backing_close(b2);
}
END_TEST

/* backing_size past the device's end is an error naming both. */
START_TEST(test_bdev_too_large)
{
	char err[256];
	struct backing *b = backing_open(path, 8 << 20, err, sizeof(err));

	ck_assert_ptr_null(b);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(strstr(err, "larger than the device") &&
		      strstr(err, "4194304"), "%s", err);
	b = open_ok(2 << 20);
	ck_assert_uint_le(stats(b).capacity, 2 << 20);
	backing_close(b);
	b = open_ok(0);
	ck_assert_uint_le(stats(b).capacity, 4 << 20);
	ck_assert_uint_ge(stats(b).capacity, 3 << 20);
	backing_close(b);
}
END_TEST

/* An ext4 file system on the device: refused, unless forced. */
START_TEST(test_bdev_signature)
{
	char err[256], cmd[400];
	unsigned char buf[2000], out[BACKING_MAX_PAYLOAD];
	struct backing *b;
	uint64_t slot;
	size_t len;

	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s >/dev/null 2>&1", path);
	if (system(cmd) != 0) {
		printf("SKIP test_bdev_signature: mkfs.ext4 failed\n");
		return;
	}
	b = backing_open(path, 0, err, sizeof(err));
	ck_assert_ptr_null(b);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_msg(strstr(err, path) && strstr(err, "ext4") &&
		      strstr(err, "backing_force=yes"), "%s", err);
	b = backing_open_force(path, 0, true, err, sizeof(err));
	ck_assert_msg(b != NULL, "forced: %s", err);
	pattern(buf, sizeof(buf), 3);
	ck_assert_int_eq(backing_write(b, 3, buf, sizeof(buf), 1, &slot), 0);
	ck_assert_int_eq(backing_read(b, slot, 3, out, sizeof(out), &len, NULL),
			 0);
	ck_assert_mem_eq(out, buf, sizeof(buf));
	backing_close(b);
}
END_TEST

static Suite *backing_suite(void)
{
	char why[200];
	/* First, while the process holds nothing its probe child could
	 * appear to leak (under valgrind). */
	bool mount_ok = can_mount_tmpfs(why, sizeof(why));
	Suite *s = suite_create("backing");
	TCase *codec = tcase_create("codec");
	TCase *core = tcase_create("core");
	TCase *file = tcase_create("file");
	TCase *fullfs, *conc = tcase_create("concurrency");

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
	tcase_add_test(core, test_io_error_counted_apart);
	tcase_add_test(core, test_wrong_sector_and_place);
	tcase_add_test(core, test_lost_write);
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

	if (mount_ok) {
		fullfs = tcase_create("fullfs");
		tcase_add_unchecked_fixture(fullfs, make_dir,
					    unmount_and_remove_dir);
		tcase_add_test(fullfs, test_open_full_fs);
		suite_add_tcase(s, fullfs);
	} else {
		printf("SKIP test_open_full_fs: %s\n", why);
	}

	{
		char lwhy[200];

		if (try_make_loop(lwhy, sizeof(lwhy))) {
			TCase *loop = tcase_create("loopdev");

			remove_loop();
			tcase_add_checked_fixture(loop, make_loop, remove_loop);
			tcase_add_test(loop, test_write_read);
			tcase_add_test(loop, test_invalid_args);
			tcase_add_test(loop, test_full_and_reuse);
			tcase_add_test(loop, test_no_overlap);
			tcase_add_test(loop, test_corrupt_payload);
			tcase_add_test(loop, test_corrupt_header);
			tcase_add_test(loop, test_wrong_sector_and_place);
			tcase_add_test(loop, test_lost_write);
			tcase_add_test(loop, test_bdev_excl);
			tcase_add_test(loop, test_bdev_too_large);
			tcase_add_test(loop, test_bdev_signature);
			tcase_add_test(loop, test_bdev_discard);
			suite_add_tcase(s, loop);
		} else {
			remove_loop();
			printf("SKIP loopdev (the backing tests on a block "
			       "device): %s\n", lwhy);
		}
	}

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
