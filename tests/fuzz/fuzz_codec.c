/* SPDX-License-Identifier: MIT */
/*
 * fuzz_codec.c - the sector codec (daemon/codec.c): decode, encode, fill
 *
 * Byte 0 % 3 picks the property:
 *
 *  0  decode: the rest of the input is a compressed object (as if read
 *     back from a damaged pool or backing file). codec_decode() must
 *     return 0 or -EIO, never write past its 4096-byte output (an exact
 *     heap buffer, so ASan sees it) nor read past the input, and must
 *     agree with LZ4_decompress_safe(): 0 exactly when that yields 4096
 *     bytes, and then the same bytes.
 *  1  encode: a sector is built from the input (kind, acceleration, huge
 *     threshold, data). codec_encode() must classify it correctly (ZERO
 *     only for zeroes, SAME for one repeated word with that word,
 *     COMPRESSED no longer than the threshold, RAW otherwise) and
 *     decoding must give the sector back.
 *  2  fill: codec_fill() of any word, offset and length must write
 *     exactly bytes [off, off + len) of the same-filled sector, into an
 *     exact buffer.
 */
#include <errno.h>
#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz.h"

#define SECTOR CODEC_SECTOR

static void decode_mode(const uint8_t *src, size_t len)
{
	unsigned char *dst = malloc(SECTOR), *ref = malloc(SECTOR);
	int r, n;

	FUZZ_CHECK(dst && ref, "out of memory");
	r = codec_decode(src, (unsigned int)len, dst);
	FUZZ_CHECK(r == 0 || r == -EIO, "codec_decode returned %d", r);
	n = len && len < SECTOR ? LZ4_decompress_safe((const char *)src,
						      (char *)ref, (int)len,
						      SECTOR)
				: -1;
	FUZZ_CHECK((r == 0) == (n == (int)SECTOR),
		   "codec_decode says %d, LZ4 decoded %d bytes", r, n);
	if (r == 0)
		FUZZ_CHECK(memcmp(dst, ref, SECTOR) == 0,
			   "codec_decode and LZ4 disagree on the bytes");
	free(dst);
	free(ref);
}

static void encode_mode(struct fin *in)
{
	static const int accels[4] = { 1, 3, 100, CODEC_ACCEL_MAX };
	unsigned char *src = malloc(SECTOR), *back = malloc(SECTOR);
	uint8_t kind = fin_u8(in), a = fin_u8(in);
	unsigned int threshold = 1 + fin_u16(in) % CODEC_HUGE_THRESHOLD_MAX;
	uint64_t word = fin_u64(in), w2 = 0;
	struct codec_out out;
	bool same;
	size_t k;
	int r;

	FUZZ_CHECK(src && back, "out of memory");
	switch (kind % 6) {
	case 0:
		memset(src, 0, SECTOR);
		break;
	case 1:
		for (k = 0; k < SECTOR; k += 8)
			memcpy(src + k, &word, 8);
		break;
	case 2: /* one repeated word but for one byte */
		for (k = 0; k < SECTOR; k += 8)
			memcpy(src + k, &word, 8);
		src[word % SECTOR] ^= (unsigned char)(1 + (word >> 16) % 255);
		break;
	case 3: /* the input, repeated */
		k = fin_bytes(in, src, SECTOR);
		for (size_t i = k; k && i < SECTOR; i++)
			src[i] = src[i % k];
		if (!k)
			memset(src, 0, SECTOR);
		break;
	case 4:
		fuzz_fill_random(src, SECTOR, word);
		break;
	default: /* random head, zero tail: compressibility in between */
		memset(src, 0, SECTOR);
		fuzz_fill_random(src, word % SECTOR, word);
		break;
	}

	codec_encode(src, accels[a % 4], threshold, &out);
	same = codec_same_filled(src, &w2);
	switch (out.kind) {
	case CODEC_ZERO:
		FUZZ_CHECK(fuzz_all_zero(src, SECTOR), "ZERO for data");
		break;
	case CODEC_SAME:
		FUZZ_CHECK(same && w2 == out.word && out.word != 0,
			   "SAME, word %#llx", (unsigned long long)out.word);
		codec_fill(back, out.word, 0, SECTOR);
		FUZZ_CHECK(memcmp(back, src, SECTOR) == 0, "SAME, wrong fill");
		break;
	case CODEC_COMPRESSED:
		FUZZ_CHECK(!same, "a same-filled sector compressed");
		FUZZ_CHECK(out.len >= 1 && out.len <= threshold,
			   "compressed to %u bytes, threshold %u", out.len,
			   threshold);
		r = codec_decode(out.data, out.len, back);
		FUZZ_CHECK(r == 0 && memcmp(back, src, SECTOR) == 0,
			   "round trip of %u compressed bytes: %d", out.len,
			   r);
		break;
	case CODEC_RAW:
		FUZZ_CHECK(!same, "a same-filled sector stored raw");
		FUZZ_CHECK(out.len == SECTOR && out.data == src,
			   "RAW of %u bytes", out.len);
		break;
	default:
		FUZZ_CHECK(0, "kind %d", (int)out.kind);
	}
	free(src);
	free(back);
}

static void fill_mode(struct fin *in)
{
	uint64_t word = fin_u64(in);
	size_t off = fin_u16(in) % SECTOR;
	size_t len = fin_u16(in) % (SECTOR - off + 1);
	unsigned char *dst = malloc(len ? len : 1), pat[8];

	FUZZ_CHECK(dst, "out of memory");
	memcpy(pat, &word, 8);
	codec_fill(dst, word, off, len);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(dst[i] == pat[(off + i) % 8],
			   "fill(%#llx, off %zu, len %zu): byte %zu",
			   (unsigned long long)word, off, len, i);
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	uint8_t mode = fin_u8(&in);

	fuzz_op_index = 0;
	switch (mode % 3) {
	case 0:
		decode_mode(in.p, in.n);
		break;
	case 1:
		encode_mode(&in);
		break;
	default:
		fill_mode(&in);
		break;
	}
	return 0;
}
