/* SPDX-License-Identifier: MIT */
/*
 * zramd_snapshot.h - the snapshot file format (persist=PATH)
 *
 * A clean stop writes the whole device to one file; the next start reads
 * it back (daemon/snapshot.c). The file is written once and read once, in
 * order, so it is a plain stream: a header, records in strictly increasing
 * order of their sector field, and a trailer. Every integer is little-endian.
 *
 *   header (64 bytes)
 *       0        8      12     16            24     28      32
 *       +--------+------+------+-------------+------+-------+---
 *       |magic   |ver   |hdr   |device size  |sector|codecs |created,
 *       |ZRAMDSNP| u32  |size  |   u64       |size  | u32   |reserved,
 *       |        |  2   | 64   |  (bytes)    | 4096 | mask  |checksum
 *       +--------+------+------+-------------+------+-------+---
 *       32 u64 created (Unix seconds; for people, never checked)
 *       40 u64 reserved, 0
 *       48 u64 reserved, 0
 *       56 u64 checksum: XXH3-64 of bytes 0..55
 *
 *   record (32-byte head, then the payload)
 *       0    1     2      4     8         16          24          32
 *       +----+-----+------+-----+---------+-----------+-----------+------
 *       |type|codec|flags |len  |sector   |word       |checksum   |payload
 *       | u8 | u8  | u16 0|u32  |  u64    |  u64      |  u64      |(len)
 *       +----+-----+------+-----+---------+-----------+-----------+------
 *       checksum: XXH3-64 of the payload seeded with XXH3-64 of head bytes
 *       0..23 (as the backing file's records, daemon/backing.c): it covers
 *       every other field, so a flipped bit anywhere in a record is found.
 *
 *   trailer: a record of type ZSNAP_REC_END, no payload, sector = the
 *       number of records before it, word = XXH3-64 of every byte of the
 *       file before the trailer. Nothing may follow it. A file cut short
 *       has no trailer and is refused, even if it ends on a record.
 *
 * Record types:
 *
 *   OBJECT   a hot pool object as it was stored: codec LZ4 (len
 *            1..4095, one LZ4 block of one sector), ZSTD (len 1..4095,
 *            one zstd frame of one sector, compressor=zstd; version 2)
 *            or NONE (len 4096, the sector raw, "huge"). The loader
 *            keeps an object as it is when the new device's hot codec
 *            is the object's, and decodes and encodes it anew otherwise
 *            (a device holds one hot codec: its table entries do not
 *            say which codec made an object).
 *   SAME     a same-filled sector: word is the 8-byte fill value (the
 *            sector is that word 512 times); no payload, codec NONE.
 *   EVICTED  an object that was on the backing file at the stop, read
 *            back (and checked) and stored here as OBJECT is: the backing
 *            file is scratch, so the snapshot holds the data itself. The
 *            loader puts it back on the backing file if there is one.
 *   PACK     (version 2) a cold-tier pack (daemon/pack.h) as the pool
 *            held it: many sectors in one zstd frame. codec ZSTD; word
 *            = the pack's slot count N (1..PACK_MAX_SLOTS of the loading
 *            build; a reader refuses other counts by name); sector = the
 *            device sector of the pack's LAST live slot, which is where
 *            the record stands in the file's sector order. Payload:
 *
 *              N slot words, u64 each: bits 0..62 the device sector of
 *                slot i (as the pack object names it), bit 63
 *                (ZSNAP_SLOT_DEAD) set if the slot was dead at the stop
 *                (its sector overwritten, trimmed or zeroed since);
 *              the pack object of pack.h, byte for byte: its header
 *                (magic, N, level, frame length, base sector, N sector
 *                deltas; integers in the machine's order, which is
 *                little-endian on every build, see snapshot_internal.h)
 *                and one zstd frame of exactly N * 4096 bytes.
 *
 *            len is at most ZSNAP_PACK_LEN_MAX. The live slots' sectors
 *            are inside the device and at most the record's sector; the
 *            slot words agree with the object's own sector list; the
 *            frame decompresses to exactly N * 4096 bytes. A pack's
 *            sectors need not be adjacent, and packs interleave with
 *            other records and each other, so "above the one before"
 *            holds for the record's sector only; the loader refuses a
 *            file that names any sector twice (in two records, or a
 *            record and a pack's slot).
 *   PACK_EVICTED (version 2) as PACK, a pack that was on the backing
 *            file at the stop (read back through its checked records).
 *   END      the trailer.
 *
 * Sectors not named by any record are holes (read as zeroes). The device
 * size must equal the header's: a snapshot is never truncated or padded
 * to fit another size. The codecs mask has bit (1 << id) set for each
 * codec id used; a reader refuses a file with a codec it does not know.
 *
 * Version rules: any change in layout or meaning takes a new version; a
 * reader refuses any version it does not know. Version 2 added the ZSTD
 * codec and the PACK records; a version 1 file is a version 2 file
 * without them, and a reader of version 2 loads it (a restart across an
 * upgrade keeps the device).
 */
#ifndef ZRAMD_SNAPSHOT_H
#define ZRAMD_SNAPSHOT_H

#include <stdint.h>

#define ZSNAP_MAGIC	  "ZRAMDSNP"
#define ZSNAP_MAGIC_LEN	  8
#define ZSNAP_VERSION	  2u
#define ZSNAP_VERSION_MIN 1u /* the oldest version this reader loads */
#define ZSNAP_HDR_SIZE	  64u
#define ZSNAP_REC_SIZE	  32u
#define ZSNAP_SECTOR_SIZE 4096u

/* Header field offsets. */
#define ZSNAP_HDR_OFF_VERSION  8
#define ZSNAP_HDR_OFF_HDRSIZE  12
#define ZSNAP_HDR_OFF_DEVSIZE  16
#define ZSNAP_HDR_OFF_SECTSIZE 24
#define ZSNAP_HDR_OFF_CODECS   28
#define ZSNAP_HDR_OFF_CREATED  32
#define ZSNAP_HDR_OFF_RESERVED 40 /* 16 bytes, 0 */
#define ZSNAP_HDR_OFF_CHECKSUM 56

/* Record head field offsets. */
#define ZSNAP_REC_OFF_TYPE     0
#define ZSNAP_REC_OFF_CODEC    1
#define ZSNAP_REC_OFF_FLAGS    2
#define ZSNAP_REC_OFF_LEN      4
#define ZSNAP_REC_OFF_SECTOR   8
#define ZSNAP_REC_OFF_WORD     16
#define ZSNAP_REC_OFF_CHECKSUM 24

enum zsnap_rec_type {
	ZSNAP_REC_OBJECT = 1,
	ZSNAP_REC_SAME = 2,
	ZSNAP_REC_EVICTED = 3,
	ZSNAP_REC_PACK = 4,	    /* version 2: a cold-tier pack */
	ZSNAP_REC_PACK_EVICTED = 5, /* version 2: one from the backing file */
	ZSNAP_REC_END = 0xff,
};

enum zsnap_codec {
	ZSNAP_CODEC_NONE = 0, /* raw 4096 bytes, or no payload */
	ZSNAP_CODEC_LZ4 = 1,  /* one LZ4 block of one sector */
	ZSNAP_CODEC_ZSTD = 2, /* version 2: one zstd frame (object or pack) */
};

/* The codecs a reader of this version knows. */
#define ZSNAP_CODECS_KNOWN \
	((1u << ZSNAP_CODEC_NONE) | (1u << ZSNAP_CODEC_LZ4) | \
	 (1u << ZSNAP_CODEC_ZSTD))
/* The codecs of a version 1 file. */
#define ZSNAP_CODECS_V1 ((1u << ZSNAP_CODEC_NONE) | (1u << ZSNAP_CODEC_LZ4))

/* PACK records: a dead slot's word has this bit; the longest payload. */
#define ZSNAP_SLOT_DEAD	   (UINT64_C(1) << 63)
#define ZSNAP_PACK_LEN_MAX (512u * 1024u)

_Static_assert(ZSNAP_HDR_OFF_CHECKSUM + 8 == ZSNAP_HDR_SIZE, "header size");
_Static_assert(ZSNAP_REC_OFF_CHECKSUM + 8 == ZSNAP_REC_SIZE, "record size");

#endif /* ZRAMD_SNAPSHOT_H */
