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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
/* ZSTD_createCCtx_advanced(), ZSTD_customMem: zstd's "experimental" API,
 * unchanged since 1.3 and exported by Debian's libzstd1. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "bigmem.h"
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

/* Both codecs: a same-filled sector is stored as its word (or nothing). */
static bool encode_same(const void *src, struct codec_out *out)
{
	uint64_t w;

	if (!codec_same_filled(src, &w))
		return false;
	out->kind = w ? CODEC_SAME : CODEC_ZERO;
	out->word = w;
	out->data = NULL;
	out->len = 0;
	return true;
}

/* Both codecs: @n bytes compressed into cbuf, or 0: store @src raw. */
static void encode_result(const void *src, long n, struct codec_out *out)
{
	if (n > 0) {
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

void codec_encode(const void *src, int acceleration,
		  unsigned int huge_threshold, struct codec_out *out)
{
	int n;

	if (encode_same(src, out))
		return;
	n = LZ4_compress_fast_extState(&lz4_state, src, (char *)cbuf,
				       (int)CODEC_SECTOR, (int)huge_threshold,
				       acceleration);
	encode_result(src, n > 0 && (unsigned int)n <= huge_threshold ? n : 0,
		      out);
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

/* --- zstd ---------------------------------------------------------------- */

/*
 * One compression and one decompression context per thread (the first
 * made at the first compression: most threads only read). The key's
 * destructor frees them when the thread exits; the thread-local pointers
 * are only a fast path to what the key holds.
 */
struct zstd_ctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;
static __thread struct zstd_ctx *zstd_tls;

static void zstd_ctx_free(void *arg)
{
	struct zstd_ctx *z = arg;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zstd_key_make(void)
{
	(void)pthread_key_create(&zstd_key, zstd_ctx_free);
}

static struct zstd_ctx *zstd_ctx(void)
{
	struct zstd_ctx *z = zstd_tls;

	if (z)
		return z;
	pthread_once(&zstd_once, zstd_key_make);
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->d = ZSTD_createDCtx();
	if (!z->d || pthread_setspecific(zstd_key, z) != 0) {
		zstd_ctx_free(z);
		return NULL;
	}
	zstd_tls = z;
	return z;
}

int codec_parse(const char *text, bool allow_lz4, bool allow_off, int *level)
{
	const char *p;
	long v = 0;

	*level = 0;
	if (allow_lz4 && strcmp(text, "lz4") == 0)
		return CODEC_ID_LZ4;
	if (allow_off && strcmp(text, "off") == 0)
		return CODEC_ID_OFF;
	if (strncmp(text, "zstd", 4) != 0)
		return -1;
	if (text[4] == '\0') {
		*level = allow_off ? CODEC_RECOMPRESS_LEVEL_DEFAULT
				   : CODEC_ZSTD_LEVEL_DEFAULT;
		return CODEC_ID_ZSTD;
	}
	if (text[4] != ':' || !text[5])
		return -1;
	for (p = text + 5; *p; p++) {
		if (*p < '0' || *p > '9' || v > CODEC_ZSTD_LEVEL_MAX)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v < CODEC_ZSTD_LEVEL_MIN || v > CODEC_ZSTD_LEVEL_MAX)
		return -1;
	*level = (int)v;
	return CODEC_ID_ZSTD;
}

/*
 * A compression context's tables (about 3 MiB at zstd:9 over 256 KiB)
 * are mapped and unmapped, never taken from malloc()'s heaps (bigmem.h).
 */
static void *zstd_map(void *opaque, size_t size)
{
	(void)opaque;
	return bigmem_alloc(size);
}

static void zstd_unmap(void *opaque, void *p)
{
	(void)opaque;
	bigmem_free(p);
}

static const ZSTD_customMem zstd_bigmem = { zstd_map, zstd_unmap, NULL };

long codec_zstd_compress(const void *src, size_t srclen, void *dst, size_t cap,
			 int level)
{
	struct zstd_ctx *z = zstd_ctx();
	size_t n;

	if (!z)
		return -ENOMEM;
	if (!z->c && !(z->c = ZSTD_createCCtx_advanced(zstd_bigmem)))
		return -ENOMEM;
	n = ZSTD_compressCCtx(z->c, dst, cap, src, srclen, level);
	/* The output not fitting is the only error a valid call can get,
	 * but running out of memory for the context's tables. */
	if (ZSTD_isError(n))
		return -ENOSPC;
	return (long)n;
}

void codec_zstd_release(void)
{
	struct zstd_ctx *z = zstd_tls;

	if (z && z->c) {
		ZSTD_freeCCtx(z->c);
		z->c = NULL;
	}
}

int codec_zstd_decompress(const void *src, size_t len, void *dst,
			  size_t dstlen)
{
	struct zstd_ctx *z = zstd_ctx();
	size_t n;

	if (!z || len == 0)
		return -EIO;
	n = ZSTD_decompressDCtx(z->d, dst, dstlen, src, len);
	return !ZSTD_isError(n) && n == dstlen ? 0 : -EIO;
}

void codec_zstd_encode(const void *src, int level, unsigned int huge_threshold,
		       struct codec_out *out)
{
	long n;

	if (encode_same(src, out))
		return;
	n = codec_zstd_compress(src, CODEC_SECTOR, cbuf, huge_threshold, level);
	encode_result(src, n > 0 ? n : 0, out);
}

int codec_zstd_decode(const void *src, unsigned int len, void *dst)
{
	if (len == 0 || len >= CODEC_SECTOR)
		return -EIO;
	return codec_zstd_decompress(src, len, dst, CODEC_SECTOR);
}

const char *codec_zstd_version(void)
{
	return ZSTD_versionString();
}
