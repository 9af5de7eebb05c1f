/* SPDX-License-Identifier: MIT */
/*
 * pack.h - the cold tier's unit: many idle sectors in one zstd pool object
 *
 * What and why. The hot path stores each 4 KiB sector as its own LZ4
 * object: cheap to write and to read. Data that is not being used is worth
 * more squeezed hard, and zstd over several sectors at once squeezes much
 * harder than anything over one sector. So idle sectors are recompressed
 * together into a pack: several sectors of the device (up to
 * PACK_MAX_SLOTS, 256 KiB) compressed as one zstd frame. The allocator
 * sees only objects of at most ZPOOL_MAX_SIZE (4 KiB), so the pack's
 * bytes (the "object" below) are cut into chunks, each its own pool
 * object; the descriptor holds where each chunk is. A frame of 256 KiB of
 * real data needs 10-25 chunks. See recompress.c for who makes packs and
 * when, and the figures that chose the sizes.
 *
 * Chunks. Every chunk but the last is one whole page (PACK_CHUNK_MAX),
 * the last holds the rest (pack_chunk_off()), so their sizes need not be
 * stored. A page-sized object costs exactly a page in either allocator
 * (zsmalloc's huge class, a zbud page of its own); only the tails fall
 * into size classes, rounded up (pack_chunk_alloc()) so that they share
 * a few classes instead of leaving a partly used zspage in each. Cut into
 * equal chunks of at most the huge threshold, as first built, the same
 * packs cost 2-3% more pool memory. Reading a packed sector copies every
 * chunk, in order, into one buffer and decompresses the whole frame. On
 * the backing file each chunk is one record (a record holds 4 KiB at
 * most), all naming the pack's first sector; the object is checked as a
 * whole when read back.
 *
 * The object (all integers little-endian as the machine's, since it never
 * leaves the process except through the checksummed backing file):
 *
 *   +--------+--------+-------+-----------+-------------+----------------+
 *   | magic  | nslots | level | frame_len | base sector | delta[nslots]  |
 *   | u32    | u16    | u16   | u32       | u64         | u32 each       |
 *   +--------+--------+-------+-----------+-------------+----------------+
 *   | one zstd frame of nslots * 4096 bytes, slot i at offset i * 4096   |
 *   +---------------------------------------------------------------------+
 *
 * Slot i holds device sector base + delta[i]; deltas ascend, so a pack
 * holds sectors of one stretch of the device (adjacent sectors compress
 * best together). The header says what the object holds without the
 * sector table, which is what eviction and the checks on reading back
 * from the backing file need.
 *
 * A pack is immutable once made. Its mutable state lives in a small
 * descriptor (struct pack) in the daemon's heap, which the sector table's
 * PACKED entries point to: the slot's entry is the descriptor's address
 * with the slot index in its low bits. A write to a packed sector makes it
 * hot again and its slot dead; the descriptor counts live slots and
 * references, and the pack is freed when the last reference goes.
 *
 * Lock ordering: stripe lock -> pack lock -> pool locks. A pack lock
 * (pack_lock()) protects where the chunks are (pool handles or backing
 * slots); the counts are atomics.
 */
#ifndef ZRAMD_PACK_H
#define ZRAMD_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_SECTOR	4096u
/*
 * The most sectors in one pack (zdev_config.pack_slots may ask fewer): it
 * caps what one read of a packed sector decompresses (256 KiB, about 0.1-
 * 0.2 ms; recompress.c has the figures that chose it).
 */
#define PACK_MAX_SLOTS	64u
#define PACK_MAGIC	0x314b505au /* "ZPK1" */
/*
 * The bytes of one pool object of a pack (ZPOOL_MAX_SIZE, one page): every
 * chunk but the last is exactly this long, the last holds the rest.
 */
#define PACK_CHUNK_MAX	4096u
/*
 * The longest pack object (header and frame, before it is cut into
 * chunks): a frame of PACK_MAX_SLOTS sectors that compresses at all is
 * shorter than its input, and pack_build() keeps only those.
 */
#define PACK_OBJ_MAX	(PACK_MAX_SLOTS * PACK_SECTOR)
/* The most pool objects ("chunks") one pack spans. */
#define PACK_CHUNKS_MAX	(PACK_OBJ_MAX / PACK_CHUNK_MAX)
_Static_assert(PACK_CHUNKS_MAX <= 255, "struct pack's nchunks is a byte");
/* The low bits of a PACKED entry's value that hold the slot index. */
#define PACK_SLOT_BITS	6u
#define PACK_SLOT_MASK	((1u << PACK_SLOT_BITS) - 1)
_Static_assert(PACK_MAX_SLOTS <= (1u << PACK_SLOT_BITS), "slot bits");

/* The header's size for @n slots. */
static inline size_t pack_hdr_size(unsigned int n)
{
	return 24u + 4u * n;
}

/*
 * The descriptor of one pack; 40 bytes and 8 a chunk past the first,
 * aligned to 1 << PACK_SLOT_BITS at least, so its address leaves room for
 * the slot index.
 */
struct pack {
	uint64_t where;	   /* chunk 0: pool handle, or backing slot if
			    * on_backing */
	uint32_t len;	   /* bytes of the object, all chunks */
	uint16_t nslots;   /* slots it was made with */
	uint8_t on_backing; /* under the pack lock */
	uint8_t nchunks;   /* pool objects (or backing records), 1.. */
	uint32_t refs;	   /* atomic: live slots + pins; freed at 0 */
	uint32_t live;	   /* atomic: slots still referenced by the table */
	uint64_t base;	   /* first sector, for the backing record */
	uint64_t serial;   /* set by pack_alloc(), never reused: tells a pack
			    * from a later one at the same address */
	uint64_t more[];   /* where chunks 1..nchunks-1 are, as @where */
};
_Static_assert(sizeof(struct pack) == 40, "descriptor size");

/*
 * Allocate a descriptor of @nchunks chunks (1..PACK_CHUNKS_MAX; zeroed,
 * suitably aligned, nchunks set); NULL if out of memory.
 */
struct pack *pack_alloc(unsigned int nchunks);
void pack_free(struct pack *pk);

/* Where chunk @i of @pk is (pool handle or backing slot). */
static inline uint64_t *pack_where(struct pack *pk, unsigned int i)
{
	return i == 0 ? &pk->where : &pk->more[i - 1];
}

/*
 * How an object of @len bytes is cut into chunks: chunk i is bytes
 * [pack_chunk_off(len, n, i), pack_chunk_off(len, n, i + 1)), where @n is
 * pack_nchunks(len): every chunk but the last is one whole page
 * (PACK_CHUNK_MAX), which the allocators store without waste (zsmalloc's
 * huge class, a zbud page of its own), and the last holds the rest.
 */
static inline unsigned int pack_nchunks(size_t len)
{
	return (unsigned int)((len + PACK_CHUNK_MAX - 1) / PACK_CHUNK_MAX);
}

static inline size_t pack_chunk_off(size_t len, unsigned int n, unsigned int i)
{
	return i >= n ? len : (size_t)i * PACK_CHUNK_MAX;
}

/*
 * The pool size asked for a chunk of @clen bytes: rounded up to
 * PACK_TAIL_ALIGN. Only the last chunk of a pack is short, and its length
 * is anything from 1 to 4096 bytes; asked as it is, the packs' tails
 * spread a few objects over every size class of the pool, and each class
 * keeps a partly empty zspage: measured on the bench corpus (1,782 tails
 * of 64-sector packs, zsmalloc), 2.3 MiB more than their bytes, against
 * 0.5 MiB rounded to 256 (64: 0.7, 512: 0.6, 1024: 1.0).
 */
#define PACK_TAIL_ALIGN 256u
_Static_assert(PACK_CHUNK_MAX % PACK_TAIL_ALIGN == 0, "tail alignment");

static inline size_t pack_chunk_alloc(size_t clen)
{
	return (clen + PACK_TAIL_ALIGN - 1) & ~(size_t)(PACK_TAIL_ALIGN - 1);
}

/* The lock of @pk's location (one of a small hashed set). */
void pack_lock(const struct pack *pk);
void pack_unlock(const struct pack *pk);

/* A PACKED entry's value, and back. */
static inline uint64_t pack_entry_val(const struct pack *pk, unsigned int slot)
{
	return (uint64_t)(uintptr_t)pk | slot;
}

static inline struct pack *pack_of(uint64_t val)
{
	return (struct pack *)(uintptr_t)(val & ~(uint64_t)PACK_SLOT_MASK);
}

static inline unsigned int pack_slot_of(uint64_t val)
{
	return (unsigned int)(val & PACK_SLOT_MASK);
}

/**
 * pack_encode() - make a pack object of @n sectors
 * @sectors: their device sector numbers, ascending, all below
 *           @sectors[0] + 2^32
 * @n:       1..PACK_MAX_SLOTS
 * @data:    @n * 4096 bytes, the sectors in the same order
 * @level:   the zstd level
 * @dst:     where the object goes
 * @cap:     its size
 *
 * Return: the object's length, -ENOSPC if it does not fit in @cap,
 * -EINVAL for bad arguments, -ENOMEM.
 */
long pack_encode(const uint64_t *sectors, unsigned int n, const void *data,
		 int level, void *dst, size_t cap);

/**
 * pack_build() - as many of @n sectors as fit in one object of @cap bytes
 * @sectors, @n, @data, @level: as pack_encode()
 * @dst:     the object, at most @cap bytes
 * @cap:     at most PACK_OBJ_MAX
 * @len:     set to the object's length
 * @scratch: PACK_SCRATCH_SIZE bytes, to learn the size of an attempt that
 *           does not fit
 *
 * Tries all @n, then fewer (as many as the last attempt suggests would
 * fit) until the object fits: the first sectors in order are taken.
 *
 * Return: how many sectors the object holds (1..@n), 0 if not even the
 * first fits (it is incompressible), or a negative errno.
 */
#define PACK_SCRATCH_SIZE (PACK_MAX_SLOTS * PACK_SECTOR + 4096u)
int pack_build(const uint64_t *sectors, unsigned int n, const void *data,
	       int level, void *dst, size_t cap, size_t *len, void *scratch);

/**
 * pack_decode() - check a pack object and decompress all of it
 * @obj:     the object
 * @len:     its length
 * @sectors: set to the sector of each slot (PACK_MAX_SLOTS entries); or NULL
 * @data:    PACK_MAX_SLOTS * 4096 bytes; slot i goes to data + i * 4096
 *
 * Return: the number of slots, or -EIO if the object is not a valid pack
 * (bad magic, counts, lengths, deltas, or a frame that does not decompress
 * to exactly nslots * 4096 bytes). Never reads beyond @len nor writes
 * beyond the slots the header claims.
 */
int pack_decode(const void *obj, size_t len, uint64_t *sectors, void *data);

/**
 * pack_peek() - check a pack object's header only
 * @obj, @len: the object
 * @sectors:   as for pack_decode(), or NULL
 *
 * Return: the number of slots, or -EIO.
 */
int pack_peek(const void *obj, size_t len, uint64_t *sectors);

#endif /* ZRAMD_PACK_H */
