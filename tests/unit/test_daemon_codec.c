/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the sector codec (daemon/codec.c): zero and same-filled
 * detection, LZ4 round trips, the huge rule, corrupt input refused, partial
 * fills. The random data uses a seed (TEST_SEED replays it).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "test_util.h"

static unsigned long seed;

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void fill_random(unsigned char *p, size_t n, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)next(s);
}

/* Text-like data: words from a small alphabet, compresses 2-4x. */
static void fill_text(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *words[] = { "zram ", "sector ", "compress ",
				       "lz4 ", "page ", "the ", "of ", "\n" };

	for (size_t i = 0; i < n;) {
		const char *w = words[next(s) % 8];

		for (; *w && i < n; w++)
			p[i++] = (unsigned char)*w;
	}
}

START_TEST(test_zero_and_same)
{
	unsigned char buf[CODEC_SECTOR];
	struct codec_out c;
	uint64_t w, pat = UINT64_C(0x0123456789abcdef);

	memset(buf, 0, sizeof(buf));
	codec_encode(buf, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_ZERO);

	for (size_t i = 0; i < sizeof(buf); i += 8)
		memcpy(buf + i, &pat, 8);
	ck_assert(codec_same_filled(buf, &w));
	ck_assert_uint_eq(w, pat);
	codec_encode(buf, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_SAME);
	ck_assert_uint_eq(c.word, pat);

	/* One byte off anywhere, first word, middle or last, is not same. */
	static const size_t where[] = { 0, 7, 8, 2048, 4088, 4095 };

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		buf[where[i]] ^= 1;
		ck_assert(!codec_same_filled(buf, &w));
		codec_encode(buf, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
		ck_assert_int_eq(c.kind, CODEC_COMPRESSED);
		buf[where[i]] ^= 1;
	}
	/* A repeated byte is a repeated word too. */
	memset(buf, 0xa5, sizeof(buf));
	ck_assert(codec_same_filled(buf, &w));
	ck_assert_uint_eq(w, UINT64_C(0xa5a5a5a5a5a5a5a5));
}
END_TEST

START_TEST(test_round_trip)
{
	unsigned char src[CODEC_SECTOR], dst[CODEC_SECTOR], copy[CODEC_SECTOR];
	uint64_t s = seed;
	int compressed = 0;

	for (int i = 0; i < 200; i++) {
		struct codec_out c;
		int accel = i % 2 ? 1 : 1 + (int)(next(&s) % 100);

		fill_text(src, sizeof(src), &s);
		/* Sometimes a random middle, so sizes vary widely. */
		if (i % 5 == 0)
			fill_random(src + 1024, 1024 + next(&s) % 2048, &s);
		codec_encode(src, accel, CODEC_HUGE_THRESHOLD_MAX, &c);
		/* A high acceleration may give up on a mixed sector. */
		if (c.kind == CODEC_RAW && accel > 1) {
			ck_assert_ptr_eq(c.data, src);
			continue;
		}
		ck_assert_int_eq(c.kind, CODEC_COMPRESSED);
		compressed++;
		ck_assert_uint_ge(c.len, 1);
		ck_assert_uint_le(c.len, CODEC_HUGE_THRESHOLD_MAX);
		memcpy(copy, c.data, c.len);
		memset(dst, 0xee, sizeof(dst));
		ck_assert_int_eq(codec_decode(copy, c.len, dst), 0);
		ck_assert_mem_eq(src, dst, sizeof(src));
	}
	ck_assert_int_gt(compressed, 100);
}
END_TEST

/* Random data does not compress: it is stored raw, from the source. */
START_TEST(test_huge)
{
	unsigned char src[CODEC_SECTOR];
	struct codec_out c;
	uint64_t s = seed;

	fill_random(src, sizeof(src), &s);
	codec_encode(src, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_RAW);
	ck_assert_uint_eq(c.len, CODEC_SECTOR);
	ck_assert_ptr_eq(c.data, src);

	/* Text compresses below 3072 but not below 16: the threshold rules. */
	fill_text(src, sizeof(src), &s);
	codec_encode(src, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_COMPRESSED);
	ck_assert_uint_le(c.len, CODEC_HUGE_THRESHOLD_DEFAULT);
	codec_encode(src, 1, 16, &c);
	ck_assert_int_eq(c.kind, CODEC_RAW);
	/* Half random: between the two thresholds. */
	fill_random(src + 2048, 2048, &s);
	codec_encode(src, 1, 1024, &c);
	ck_assert_int_eq(c.kind, CODEC_RAW);
	codec_encode(src, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_COMPRESSED);
	ck_assert_uint_gt(c.len, 2048);
}
END_TEST

/* Corrupt or truncated input is -EIO, never a short or silent result. */
START_TEST(test_corrupt)
{
	unsigned char src[CODEC_SECTOR], dst[CODEC_SECTOR], bad[CODEC_SECTOR];
	struct codec_out c;
	uint64_t s = seed;
	unsigned int len;
	int eio = 0;

	fill_text(src, sizeof(src), &s);
	codec_encode(src, 1, CODEC_HUGE_THRESHOLD_DEFAULT, &c);
	ck_assert_int_eq(c.kind, CODEC_COMPRESSED);
	len = c.len;
	memcpy(bad, c.data, len);

	ck_assert_int_eq(codec_decode(bad, 0, dst), -EIO);
	ck_assert_int_eq(codec_decode(bad, CODEC_SECTOR, dst), -EIO);
	ck_assert_int_eq(codec_decode(bad, len - 1, dst), -EIO);
	ck_assert_int_eq(codec_decode(bad, len / 2, dst), -EIO);

	/* Flip bytes: every result is either -EIO or a full 4096 bytes. */
	for (unsigned int i = 0; i < len; i++) {
		int r;

		bad[i] ^= 0x5a;
		r = codec_decode(bad, len, dst);
		ck_assert(r == 0 || r == -EIO);
		eio += r == -EIO;
		bad[i] ^= 0x5a;
	}
	ck_assert_int_gt(eio, 0);
	/* Garbage. */
	fill_random(bad, sizeof(bad), &s);
	ck_assert_int_eq(codec_decode(bad, 100, dst), -EIO);
	ck_assert_int_eq(codec_decode(bad, len, dst), -EIO);
}
END_TEST

START_TEST(test_fill)
{
	unsigned char full[CODEC_SECTOR], part[CODEC_SECTOR];
	uint64_t w = UINT64_C(0x1122334455667788);

	codec_fill(full, w, 0, CODEC_SECTOR);
	for (size_t i = 0; i < CODEC_SECTOR; i += 8)
		ck_assert_mem_eq(full + i, &w, 8);
	/* Any sub-range matches the same bytes of the full sector. */
	for (size_t off = 0; off < 20; off++) {
		for (size_t len = 0; len < 30; len++) {
			memset(part, 0, sizeof(part));
			codec_fill(part, w, off, len);
			ck_assert_mem_eq(part, full + off, len);
		}
	}
	codec_fill(part, w, 4093, 3);
	ck_assert_mem_eq(part, full + 4093, 3);
}
END_TEST

static void *scratch_thread(void *arg)
{
	*(void **)arg = codec_scratch(0);
	return NULL;
}

/* Scratch buffers are per thread and aligned. */
START_TEST(test_scratch)
{
	void *mine = codec_scratch(0), *other = NULL;
	pthread_t th;

	ck_assert_ptr_ne(mine, codec_scratch(1));
	ck_assert_uint_eq((uintptr_t)mine % 64, 0);
	pthread_create(&th, NULL, scratch_thread, &other);
	pthread_join(th, NULL);
	ck_assert_ptr_ne(mine, other);
	ck_assert_ptr_nonnull(strchr(codec_lz4_version(), '.'));
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_zero_and_same);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_huge);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_fill);
	tcase_add_test(tc, test_scratch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	seed = test_seed();
	printf("test_daemon_codec: TEST_SEED=%lu\n", seed);
	return test_run_suite(codec_suite());
}
