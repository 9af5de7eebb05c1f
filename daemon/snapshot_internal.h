/* SPDX-License-Identifier: MIT */
/*
 * snapshot_internal.h - what snapshot.c (the writer, the file's life),
 * snapshot_load.c (the reader) and snapshot_pack.c (the reader's packs)
 * share: little-endian fields, the record checksum, the I/O buffer size,
 * the reader's steps. Not an API.
 */
#ifndef ZRAMD_SNAPSHOT_INTERNAL_H
#define ZRAMD_SNAPSHOT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sectors.h"
#include "zramd_snapshot.h"

_Static_assert(ZSNAP_SECTOR_SIZE == SECT_SIZE, "one sector size");
/*
 * PACK records hold pack objects byte for byte, whose header (pack.h) is
 * in the machine's order; the format says little-endian.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "snapshots of packs assume a little-endian machine");

#define SNAP_BUF_SIZE (1u << 20)
_Static_assert(ZSNAP_PACK_LEN_MAX <= SNAP_BUF_SIZE, "a record fits the buffer");

static inline void snap_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void snap_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void snap_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t snap_get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t snap_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* XXH3-64 of @payload seeded with XXH3-64 of head bytes 0..23. */
static inline uint64_t snap_rec_checksum(const unsigned char *head,
					 const void *payload, size_t len)
{
	return XXH3_64bits_withSeed(payload, len,
				    XXH3_64bits(head, ZSNAP_REC_OFF_CHECKSUM));
}

/* --- between snapshot_load.c and snapshot_pack.c --- */

struct zdev;

/* Install @e for @sector, which is empty (else -EEXIST). */
int snap_install(struct zdev *dev, uint64_t sector, struct sect_entry e);

/*
 * Put one object (@len bytes of @codec, a ZSNAP_CODEC_*) of @sector into
 * the pool, or onto the backing file if it was there (@evicted) or the
 * pool is full; an object of the other hot codec, or a raw sector, is
 * encoded anew. Return: 0; -EBADMSG if it does not decode; -ENOSPC (does
 * not fit, no backing file); -EEXIST; another errno.
 */
int snap_load_object(struct zdev *dev, uint64_t sector, const void *data,
		     unsigned int len, unsigned int codec, bool evicted);

/* What snap_load_pack() found, for the caller's message and counts. */
struct snap_pack_fault {
	char what[160];	   /* with -EINVAL */
	uint64_t sector;   /* with -EEXIST and the errors of placing it */
	unsigned int live; /* its live slots, on success */
	bool kept;	   /* kept as a pack (else its sectors unpacked) */
};

/*
 * A PACK or PACK_EVICTED record of @sector (its checksum checked; @word
 * its slot count, @p and @len its payload): check it all, then make its
 * pack and the entries of its live slots. @data is scratch of
 * PACK_MAX_SLOTS sectors. Return: 0; -EINVAL with @f->what (a damaged or
 * foreign record: refused); -EEXIST (@f->sector named twice); -ENOSPC;
 * another errno (@f->sector).
 */
int snap_load_pack(struct zdev *dev, uint64_t sector, uint64_t word,
		   const unsigned char *p, uint32_t len, bool evicted,
		   unsigned char *data, struct snap_pack_fault *f);

static inline double snap_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif /* ZRAMD_SNAPSHOT_INTERNAL_H */
