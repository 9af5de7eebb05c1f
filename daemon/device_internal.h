/* SPDX-License-Identifier: MIT */
/*
 * device_internal.h - what the device core's files share: struct zdev and
 * the per-stripe accounting
 *
 * Not an API: only device.c (requests), evict.c (eviction to the
 * backing file), readback.c (reading it back, promotion), snapshot.c,
 * snapshot_load.c and snapshot_pack.c (the device written to and read
 * from a snapshot file), recompress.c (the cold tier) include this;
 * everything else uses device.h.
 *
 * Accounting: the per-stripe acct[] slots of the sector table hold the
 * size counters (sectors stored, compressed bytes, same-filled, huge, on
 * the backing file, freed by trim), updated under the stripe lock that the
 * entry change holds anyway; zdev_get_stats() sums them. Event counters
 * are atomics in dev->live.
 */
#ifndef ZRAMD_DEVICE_INTERNAL_H
#define ZRAMD_DEVICE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "device.h"
#include "pack.h"
#include "sectors.h"
#include "stats.h"
#include "zpool.h"

/* The per-stripe accounting slots (struct sect_stripe.acct). */
enum {
	ACCT_STORED,  /* sectors SAME or POOL: orig_data_size / 4096 */
	ACCT_COMPR,   /* bytes of pool objects: compr_data_size */
	ACCT_SAME,    /* same_pages */
	ACCT_HUGE,    /* huge_pages */
	ACCT_BACKING, /* bd_count */
	ACCT_FREED,   /* notify_free */
	ACCT_HOT,     /* sectors POOL: hot_sectors */
	ACCT_PACKED,  /* sectors PACKED (in the pool or evicted with a pack) */
};
_Static_assert(ACCT_PACKED < SECT_NACCT, "acct slots");
_Static_assert(CODEC_SECTOR == SECT_SIZE, "one sector size");
_Static_assert(SECT_SIZE == ZPOOL_MAX_SIZE, "a raw sector fits the pool");

struct zdev {
	struct sect_table *tab;
	struct zpool *pool;
	uint64_t size;
	uint64_t mem_limit;
	int acceleration;
	unsigned int huge_threshold;
	bool has_backing;
	struct zdev_backing_ops backing;
	struct zdev_hooks hooks; /* all NULL: no shrinker */
	struct zstat_live live;
	/* Promotion (readback.c): set while not serving. */
	bool promote;
	uint64_t promote_below; /* pool bytes; at or above, no promotion */
	int zstd_level;		 /* hot path: 0 for LZ4, else zstd's level */
	int recompress_level;	 /* cold tier: zstd's level; 0: off */
	unsigned int pack_slots; /* cold tier: sectors of a pack at most */
	/* The cold tier's gauges (atomics; recompress.c keeps them). */
	uint64_t packs;		 /* packs in the pool */
	uint64_t pack_bytes;	 /* bytes of their objects */
	uint64_t pack_dead;	 /* of which dead slots' share */
	uint64_t packed_backing; /* live slots of packs on the backing file */
};

/*
 * The owner word of a pack object in the pool: this bit, which no sector
 * number has, and the pack's first sector. The pool's evict callback
 * skips such objects; packs leave the pool through zdev_evict_packs().
 */
#define ZDEV_OWNER_PACK (UINT64_C(1) << 63)

/* The hot path's codec. */
static inline void dev_encode(const struct zdev *dev, const void *src,
			      struct codec_out *c)
{
	if (dev->zstd_level)
		codec_zstd_encode(src, dev->zstd_level, dev->huge_threshold, c);
	else
		codec_encode(src, dev->acceleration, dev->huge_threshold, c);
}

static inline int dev_decode(const struct zdev *dev, const void *src,
			     unsigned int len, void *dst)
{
	return dev->zstd_level ? codec_zstd_decode(src, len, dst)
			       : codec_decode(src, len, dst);
}

/* --- the cold tier's side of the device core (recompress.c) --- */

/*
 * A table entry that pointed at slot of @pk was replaced: the slot is
 * dead. The pack is freed with its last reference. No stripe lock needed.
 * Return: true if the pack was freed.
 */
bool zdev_pack_kill_slot(struct zdev *dev, struct pack *pk);

/*
 * Pin @pk under the stripe lock of an entry pointing at it, so that it
 * outlives the lock; unpin without a lock (the pack is freed if that was
 * its last reference).
 */
void zdev_pack_pin(struct pack *pk);
void zdev_pack_unpin(struct zdev *dev, struct pack *pk);

/*
 * Copy the object of @pk (at most PACK_OBJ_MAX bytes) to @obj, from the
 * pool or the backing file, under the pack lock. The caller holds the
 * stripe lock of an entry pointing at @pk (or a pin). Return: its length,
 * or -EIO (backing file unreadable or its record corrupt; counted).
 */
long zdev_pack_fetch(struct zdev *dev, struct pack *pk, void *obj);

/*
 * Put the object @obj of @pk (len, base and nchunks set) into the pool,
 * one object a chunk (pack_chunk_alloc()), owner ZDEV_OWNER_PACK; or onto
 * the backing file, one record a chunk, the slots into @slot[]. All or
 * none. Return: 0, or the allocation's or store's negative errno.
 */
int zdev_pack_to_pool(struct zdev *dev, struct pack *pk, const void *obj);
int zdev_pack_to_backing(struct zdev *dev, const struct pack *pk,
			 const void *obj, uint64_t *slot);

/*
 * A per-thread buffer of PACK_MAX_SLOTS sectors for decompressed packs,
 * followed by PACK_OBJ_MAX bytes for the compressed object; NULL if it
 * could not be allocated.
 */
unsigned char *zdev_pack_buf(void);

/*
 * Decode the entry @e of @sector, any state, into the 4096 bytes at @dst,
 * under its stripe lock (device.c's read-modify-write). Return: 0 or a
 * negative errno.
 */
int zdev_decode_locked(struct zdev *dev, uint64_t sector, struct sect_entry e,
		       unsigned char *dst);

/*
 * Count @pk, made whole by snapshot_pack.c (chunks in place, len, nslots,
 * base, live, refs, on_backing set; no entry yet), in the cold tier's
 * gauges as the pass that made it and the dead slots since would have.
 */
void zdev_pack_adopt(struct zdev *dev, const struct pack *pk);

/* Free every pack (zdev_destroy()); no other call may run. */
void zdev_packs_destroy(struct zdev *dev);

/* Add (@sign 1) or take away (@sign -1) @e in its stripe's accounting. */
static inline void account(struct sect_ref *ref, struct sect_entry e, int sign)
{
	int64_t *acct = ref->stripe->acct;
	unsigned int len = sect_len(e);

	switch (sect_state(e)) {
	case SECT_EMPTY:
		break;
	case SECT_SAME:
		acct[ACCT_STORED] += sign;
		acct[ACCT_SAME] += sign;
		break;
	case SECT_POOL:
		acct[ACCT_STORED] += sign;
		acct[ACCT_HOT] += sign;
		acct[ACCT_COMPR] += sign * (int64_t)len;
		if (len == SECT_LEN_RAW)
			acct[ACCT_HUGE] += sign;
		break;
	case SECT_PACKED:
		acct[ACCT_STORED] += sign;
		acct[ACCT_PACKED] += sign;
		break;
	case SECT_BACKING:
		acct[ACCT_BACKING] += sign;
		break;
	}
}

/*
 * zdev_readback() - read bytes [@o, @o + @n) of @sector, whose locked entry
 * @e (in @ref) is BACKING, into @dst; promote it if it is hot (readback.c)
 *
 * Unlocks @ref before any I/O. Return: 0; -EAGAIN if the entry changed
 * while the record was read and the read failed (the caller reads the
 * sector again); -EIO.
 */
int zdev_readback(struct zdev *dev, struct sect_ref *ref, uint64_t sector,
		  struct sect_entry e, unsigned int o, unsigned int n,
		  unsigned char *dst);

#endif /* ZRAMD_DEVICE_INTERNAL_H */
