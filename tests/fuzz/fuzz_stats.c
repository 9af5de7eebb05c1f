/* SPDX-License-Identifier: MIT */
/*
 * fuzz_stats.c - the stats file: zramd-stat's parser and the writer
 *
 * zramd-stat's parser, zramd_stats_parse(), works on a buffer; this file
 * includes daemon/zramd-stat.c with ZRAMD_STAT_NO_MAIN (as that file
 * invites), so it reaches the parser and its struct stats_file.
 *
 * Byte 0, bit 0 picks the mode; bits 1-2 the error buffer size (256, 1,
 * 9, 48 bytes: short ones test the message truncation).
 *
 * Mode 0, parse: the rest of the input is a stats file. The parser must
 * not read past the end (the buffer is exactly the input), must either
 * succeed with version 1, the required counters and a terminated
 * allocator name, or fail with a terminated one-line message. A file it
 * accepts is then written again with stats_format() (daemon/stats.c) and
 * parsed again: the counters must come back the same.
 *
 * Mode 1, write: counters and an allocator name come from the input;
 * stats_format() into a buffer of a size from the input must give the
 * full length and a terminated prefix of the full text, and the full text
 * must parse back to the same counters.
 */
#define ZRAMD_STAT_NO_MAIN
#include "zramd-stat.c"

#include "fuzz.h"
#include "stats.h"

_Static_assert((int)NR_STATS == (int)ZSTAT_COUNT,
	       "zramd-stat and the writer list the same counters");

static const size_t errlens[4] = { 256, 1, 9, 48 };

static void check_err(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);

	FUZZ_CHECK(n < errlen, "message not terminated");
	FUZZ_CHECK(errlen < 16 || n > 0, "failure with no message");
	FUZZ_CHECK(!memchr(err, '\n', n), "message of two lines: %s", err);
}

/* Writes @want with stats_format() and parses it back. */
static void round_trip(const struct zstats *want)
{
	static char text[8192];
	struct stats_file got;
	char err[256];
	size_t n = stats_format(want, text, sizeof(text));
	int r;

	FUZZ_CHECK(n < sizeof(text), "stats text of %zu bytes", n);
	r = zramd_stats_parse(text, n, &got, err, sizeof(err));
	FUZZ_CHECK(r == 0, "zramd-stat refuses what the plugin wrote: %s\n%s",
		   err, text);
	for (int i = 0; i < ZSTAT_COUNT; i++) {
		FUZZ_CHECK(got.have[i], "%s missing after a round trip",
			   zstat_names[i]);
		FUZZ_CHECK(got.value[i] == want->v[i],
			   "%s: wrote %llu, read %llu", zstat_names[i],
			   (unsigned long long)want->v[i],
			   (unsigned long long)got.value[i]);
	}
	FUZZ_CHECK(strcmp(got.allocator,
			  want->allocator[0] ? want->allocator : "none") == 0,
		   "allocator: wrote '%s', read '%s'", want->allocator,
		   got.allocator);
}

static void parse_mode(const uint8_t *data, size_t size, size_t errlen)
{
	struct stats_file st;
	struct zstats again;
	char *err = malloc(errlen);
	int r;

	FUZZ_CHECK(err, "out of memory");
	memset(err, 'x', errlen);
	r = zramd_stats_parse((const char *)data, size, &st, err, errlen);
	FUZZ_CHECK(r == 0 || r == -1, "parse returned %d", r);
	if (r < 0) {
		check_err(err, errlen);
		free(err);
		return;
	}
	free(err);
	FUZZ_CHECK(st.version == ZRAMD_STATS_VERSION, "version %llu",
		   (unsigned long long)st.version);
	for (size_t i = 0; i < sizeof(stat_required) / sizeof(stat_required[0]);
	     i++)
		FUZZ_CHECK(st.have[stat_required[i]], "accepted without %s",
			   stat_names[stat_required[i]]);
	FUZZ_CHECK(memchr(st.allocator, '\0', sizeof(st.allocator)),
		   "allocator not terminated");
	FUZZ_CHECK(size > 0 && data[size - 1] == '\n',
		   "accepted a file that does not end with a newline");

	memset(&again, 0, sizeof(again));
	for (int i = 0; i < ZSTAT_COUNT; i++)
		again.v[i] = st.value[i];
	snprintf(again.allocator, sizeof(again.allocator), "%s",
		 st.allocator);
	round_trip(&again);
}

static void write_mode(struct fin *in)
{
	static const char *const allocs[4] = { "zsmalloc", "zbud", "", "x" };
	struct zstats s;
	char *small, full[8192];
	size_t len, n, m;

	memset(&s, 0, sizeof(s));
	snprintf(s.allocator, sizeof(s.allocator), "%s",
		 allocs[fin_u8(in) % 4]);
	for (int i = 0; i < ZSTAT_COUNT; i++) {
		uint8_t how = fin_u8(in);

		s.v[i] = how % 3 == 0	? how
			 : how % 3 == 1 ? UINT64_MAX - how
					: fin_u64(in);
	}
	len = fin_u16(in) % 1200;
	n = stats_format(&s, full, sizeof(full));
	FUZZ_CHECK(n < sizeof(full), "stats text of %zu bytes", n);
	small = malloc(len ? len : 1);
	FUZZ_CHECK(small, "out of memory");
	m = stats_format(&s, small, len);
	FUZZ_CHECK(m == n, "stats_format into %zu bytes says %zu, into "
		   "enough says %zu", len, m, n);
	if (len) {
		size_t k = strnlen(small, len);

		FUZZ_CHECK(k < len, "cut text not terminated");
		FUZZ_CHECK(k == (n < len ? n : len - 1) &&
				   memcmp(small, full, k) == 0,
			   "cut text is not a prefix of the full one");
	}
	free(small);
	round_trip(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	uint8_t b0 = fin_u8(&in);

	fuzz_op_index = 0;
	if (b0 & 1)
		write_mode(&in);
	else
		parse_mode(in.p, in.n, errlens[(b0 >> 1) & 3]);
	return 0;
}
