/* SPDX-License-Identifier: MIT */
/*
 * codec.c - LZ4 compression of sectors with per-thread state
 *
 * LZ4_compress_fast_extState() takes its state from the caller, so each
 * thread keeps one in thread-local storage and no call allocates. The
 * output capacity given to LZ4 is the huge threshold itself: LZ4 then
 * stops (returns 0) as soon as the output would not fit, so incompressible
 * data costs a partial pass, not a full one.
 */
#include <errno.h>
#include <lz4.h>
#include <string.h>

#include "codec.h"

_Static_assert(CODEC_HUGE_THRESHOLD_MAX < CODEC_SECTOR,
	       "a compressed object must be shorter than a raw one");
_Static_assert(CODEC_SECTOR % sizeof(uint64_t) == 0, "word size");

/*
 * Thread-local buffers. In a shared object these use the dynamic TLS model:
 * each thread gets its block on first use and glibc frees it at thread exit.
 */
static __thread LZ4_stream_t lz4_state;
static __thread unsigned char cbuf[CODEC_SECTOR] __attribute__((aligned(64)));
static __thread unsigned char scratch[2][CODEC_SECTOR]
	__attribute__((aligned(64)));

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

bool codec_same_filled(const void *src, uint64_t *word)
{
	const unsigned char *p = src;
	uint64_t w = load64(p);

	/* Most sectors differ at the end already: check it first. */
	if (load64(p + CODEC_SECTOR - 8) != w)
		return false;
	for (size_t i = 8; i < CODEC_SECTOR - 8; i += 8)
		if (load64(p + i) != w)
			return false;
	*word = w;
	return true;
}

void codec_encode(const void *src, int acceleration,
		  unsigned int huge_threshold, struct codec_out *out)
{
	uint64_t w;
	int n;

	if (codec_same_filled(src, &w)) {
		out->kind = w ? CODEC_SAME : CODEC_ZERO;
		out->word = w;
		out->data = NULL;
		out->len = 0;
		return;
	}
	n = LZ4_compress_fast_extState(&lz4_state, src, (char *)cbuf,
				       (int)CODEC_SECTOR, (int)huge_threshold,
				       acceleration);
	if (n > 0 && (unsigned int)n <= huge_threshold) {
		out->kind = CODEC_COMPRESSED;
		out->data = cbuf;
		out->len = (unsigned int)n;
	} else {
		out->kind = CODEC_RAW;
		out->data = src;
		out->len = CODEC_SECTOR;
	}
	out->word = 0;
}

int codec_decode(const void *src, unsigned int len, void *dst)
{
	int n;

	if (len == 0 || len >= CODEC_SECTOR)
		return -EIO;
	n = LZ4_decompress_safe(src, dst, (int)len, (int)CODEC_SECTOR);
	return n == (int)CODEC_SECTOR ? 0 : -EIO;
}

void codec_fill(void *dst, uint64_t word, size_t off, size_t len)
{
	unsigned char *d = dst;
	unsigned char pat[8];

	memcpy(pat, &word, sizeof(pat));
	/* Head up to a word boundary of the sector, then whole words. */
	while (len && (off & 7)) {
		*d++ = pat[off++ & 7];
		len--;
	}
	for (; len >= 8; len -= 8, d += 8)
		memcpy(d, pat, 8);
	for (size_t i = 0; i < len; i++)
		d[i] = pat[i];
}

void *codec_scratch(unsigned int index)
{
	return scratch[index & 1];
}

const char *codec_lz4_version(void)
{
	return LZ4_versionString();
}
