/* SPDX-License-Identifier: MIT */
/*
 * codec.h - how one 4 KiB sector is encoded: hole, same-filled, LZ4, raw
 *
 * A sector that is all zeroes becomes a hole (no storage at all). A sector
 * that is one 8-byte word repeated is kept as that word. Anything else is
 * compressed with LZ4; if the result is longer than the huge threshold the
 * sector is stored raw, since compressing it saves too little to pay for
 * the decompression and the allocator's rounding (zram's "huge" pages).
 *
 * The default threshold is 3584 bytes (7/8 of a sector). A higher one
 * keeps more sectors compressed, which pays with zsmalloc, whose classes
 * pack large objects tightly, and hardly matters with zbud, where an
 * object over 2 KiB leaves room only for a small buddy anyway. Measured on
 * a 160 MiB tar of system files (LZ4, acceleration 1): the zsmalloc pool
 * held 107.6 MB at 3072, 103.7 MB at 3264 (zram's huge class), 100.9 MB at
 * 3584 and 101.0 MB at 4095; zbud 115.1, 114.7 and 114.6 MB. The cost of a
 * higher threshold is decompressing sectors that saved little; past 3584
 * the pool hardly shrinks, so 3584 is the default. It also stays below the
 * largest object zsmalloc packs several to a zspage (3840 bytes, 3828 with
 * owner words), so every compressed sector is packed.
 *
 * Buffers are per thread (thread-local storage), so encoding needs no lock
 * and no allocation per call: the LZ4 state, the compressed output, and a
 * scratch sector for read-modify-write.
 *
 * zstd is the second codec (libzstd). It serves two users: the hot path,
 * one sector per object, when compressor=zstd[:LEVEL] asks for density
 * over speed (codec_zstd_encode(), codec_zstd_decode(), same contract as
 * the LZ4 pair); and the cold tier (pack.h), which compresses many idle
 * sectors as one frame (codec_zstd_compress(), codec_zstd_decompress()).
 * zstd decompresses at about a fifth of LZ4's speed, which is why LZ4
 * stays the default of the hot path. Its contexts are per thread too,
 * made on first use and freed when the thread exits.
 */
#ifndef ZRAMD_CODEC_H
#define ZRAMD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_SECTOR 4096u
#define CODEC_HUGE_THRESHOLD_DEFAULT 3584u
/* Compressed objects must stay shorter than a sector (see sectors.h). */
#define CODEC_HUGE_THRESHOLD_MAX (CODEC_SECTOR - 1)
#define CODEC_ACCEL_MIN 1
#define CODEC_ACCEL_MAX 65537

enum codec_kind {
	CODEC_ZERO,	  /* all zeroes: store nothing */
	CODEC_SAME,	  /* one repeated word: store the word */
	CODEC_COMPRESSED, /* LZ4 output in a thread-local buffer */
	CODEC_RAW,	  /* incompressible: store the 4096 bytes as they are */
};

struct codec_out {
	enum codec_kind kind;
	uint64_t word;	  /* CODEC_SAME: the word, as stored in memory */
	const void *data; /* COMPRESSED: thread-local; RAW: the source */
	unsigned int len; /* bytes at data: 1..threshold or 4096 */
};

/**
 * codec_same_filled() - is a sector one 8-byte word repeated?
 * @src:  4096 bytes, any alignment
 * @word: set to the word if so
 *
 * Return: true if every 8-byte word of @src equals the first.
 */
bool codec_same_filled(const void *src, uint64_t *word);

/**
 * codec_encode() - classify and, if worth it, compress one sector
 * @src:            4096 bytes
 * @acceleration:   LZ4 acceleration, CODEC_ACCEL_MIN..CODEC_ACCEL_MAX
 * @huge_threshold: longest compressed object kept, 1..CODEC_HUGE_THRESHOLD_MAX
 * @out:            the result
 *
 * For CODEC_COMPRESSED, @out->data points into a thread-local buffer that
 * stays valid until the calling thread's next codec_encode(). Never fails.
 */
void codec_encode(const void *src, int acceleration,
		  unsigned int huge_threshold, struct codec_out *out);

/**
 * codec_decode() - decompress one sector
 * @src: LZ4 data as codec_encode() produced it
 * @len: its exact length
 * @dst: 4096 bytes; never written beyond
 *
 * Return: 0, or -EIO if @src is not a valid LZ4 block that decompresses to
 * exactly 4096 bytes (corruption); @dst is then undefined.
 */
int codec_decode(const void *src, unsigned int len, void *dst);

/**
 * codec_fill() - write part of a same-filled sector
 * @dst:  where bytes [@off, @off + @len) of the sector go
 * @word: the repeated word
 * @off:  offset in the sector, 0..4095
 * @len:  bytes, with @off + @len <= 4096
 */
void codec_fill(void *dst, uint64_t word, size_t off, size_t len);

/*
 * Thread-local scratch sectors (4096 bytes each, 64-byte aligned), for
 * callers that must assemble a sector: index 0 or 1. Valid until the
 * thread exits; never used by codec_encode() or codec_decode().
 */
void *codec_scratch(unsigned int index);

/* --- zstd ---------------------------------------------------------------- */

#define CODEC_ZSTD_LEVEL_MIN	 1
#define CODEC_ZSTD_LEVEL_MAX	 19 /* above: "ultra" levels, much memory */
#define CODEC_ZSTD_LEVEL_DEFAULT 3  /* zstd's own default */
/*
 * The cold tier's (recompress=zstd): its packs are made once, off the hot
 * path, and read rarely; see recompress.c for the figures.
 */
#define CODEC_RECOMPRESS_LEVEL_DEFAULT 9

/* What a codec key names (compressor=, recompress=). */
enum codec_id {
	CODEC_ID_OFF,  /* recompress=off */
	CODEC_ID_LZ4,  /* lz4 */
	CODEC_ID_ZSTD, /* zstd or zstd:LEVEL */
};

/**
 * codec_parse() - parse "lz4", "zstd", "zstd:LEVEL" or "off"
 * @text:      the value
 * @allow_lz4: whether "lz4" is allowed (compressor=)
 * @allow_off: whether "off" is allowed (recompress=)
 * @level:     set to the zstd level: for "zstd", CODEC_ZSTD_LEVEL_DEFAULT,
 *             or CODEC_RECOMPRESS_LEVEL_DEFAULT where "off" is allowed
 *             (recompress=); 0 for lz4 and off
 *
 * Return: the codec, or -1 if @text is none of the allowed forms or the
 * level is not an integer from CODEC_ZSTD_LEVEL_MIN to _MAX.
 */
int codec_parse(const char *text, bool allow_lz4, bool allow_off, int *level);

/**
 * codec_zstd_encode() - as codec_encode(), with zstd at @level
 * @src:            4096 bytes
 * @level:          CODEC_ZSTD_LEVEL_MIN..CODEC_ZSTD_LEVEL_MAX
 * @huge_threshold: longest compressed object kept
 * @out:            the result; COMPRESSED data is thread-local, as for LZ4
 *
 * Never fails: a context that cannot be made stores the sector raw.
 */
void codec_zstd_encode(const void *src, int level, unsigned int huge_threshold,
		       struct codec_out *out);

/**
 * codec_zstd_decode() - decompress one sector codec_zstd_encode() made
 * @src: the object
 * @len: its length, 1..4095
 * @dst: 4096 bytes
 *
 * Return: 0, or -EIO if @src is not one zstd frame of exactly 4096 bytes.
 */
int codec_zstd_decode(const void *src, unsigned int len, void *dst);

/**
 * codec_zstd_compress() - compress a buffer as one zstd frame
 * @src:    the bytes
 * @srclen: their number
 * @dst:    the output; never written beyond @cap
 * @cap:    its size
 * @level:  CODEC_ZSTD_LEVEL_MIN..CODEC_ZSTD_LEVEL_MAX
 *
 * Return: the length of the frame, -ENOSPC if it does not fit in @cap, or
 * -ENOMEM if no context could be made.
 */
long codec_zstd_compress(const void *src, size_t srclen, void *dst, size_t cap,
			 int level);

/*
 * Free the calling thread's compression context, made again at its next
 * codec_zstd_compress(). Its tables are sized for the largest frame and
 * level it has seen (about 3 MiB at zstd:9 over 256 KiB): a thread that
 * compresses in bursts gives them back between them.
 */
void codec_zstd_release(void);

/**
 * codec_zstd_decompress() - decompress one zstd frame
 * @src:    the frame
 * @len:    its exact length
 * @dst:    the output
 * @dstlen: the exact number of bytes the frame must give
 *
 * Return: 0, or -EIO if @src is not a valid frame of exactly @dstlen bytes
 * (never written beyond @dstlen).
 */
int codec_zstd_decompress(const void *src, size_t len, void *dst,
			  size_t dstlen);

/* The zstd library version, e.g. "1.5.4". */
const char *codec_zstd_version(void);

/* The LZ4 library version, e.g. "1.9.4". */
const char *codec_lz4_version(void);

#endif /* ZRAMD_CODEC_H */
