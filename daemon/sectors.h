/* SPDX-License-Identifier: MIT */
/*
 * sectors.h - the sparse, lock-striped sector table of a device
 *
 * The table maps each 4 KiB sector of the virtual device to where its data
 * is. See sectors.c for the layout and its costs. Every entry is one of:
 *
 *   EMPTY    never written, trimmed or zeroed: reads as zeroes (a hole)
 *   SAME     one 8-byte word repeated 512 times; the word is the value
 *   POOL     in the zpool; the value is the handle, the length the bytes
 *            of the object (SECT_LEN_RAW: stored uncompressed, "huge")
 *   BACKING  on the backing file; the value is the slot number, the length
 *            that of the object as it was in the pool
 *   PACKED   in a pack of the cold tier (pack.h); the value is the pack's
 *            descriptor with the slot index in its low bits
 *
 * Locking: an entry is read and written only under the lock of its stripe,
 * taken with sect_lock(). A stripe covers whole leaves (SECT_LEAF_SECTORS
 * consecutive sectors); stripes are picked by a hash of the leaf number, so
 * neighbouring leaves use different locks. Stripe locks are leaf locks: no
 * code path holds two of them at once. A stripe lock may be held while
 * calling into the zpool (lock order: stripe lock, then any pool lock), but
 * never while calling zpool_shrink() or zpool_compact(), whose evict
 * callbacks take stripe locks.
 *
 * Each stripe also carries a few signed accounting slots (acct[]) that its
 * user updates under the stripe lock, so hot counters need no atomics and
 * cause no cache-line ping-pong; sect_sum_acct() adds them up.
 */
#ifndef ZRAMD_SECTORS_H
#define ZRAMD_SECTORS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SECT_SIZE	  4096u
#define SECT_SHIFT	  12
#define SECT_LEAF_SHIFT	  9
#define SECT_LEAF_SECTORS (1u << SECT_LEAF_SHIFT)
#define SECT_NSTRIPES	  1024u
#define SECT_NACCT	  8

/* The largest number of sectors a device may have: (2^63 - 1) / 4096, up. */
#define SECT_MAX_SECTORS (((UINT64_C(1) << 63) - 1 + SECT_SIZE - 1) >> SECT_SHIFT)

enum sect_state {
	SECT_EMPTY = 0,
	SECT_SAME = 1,
	SECT_POOL = 2,
	SECT_BACKING = 3,
	/*
	 * Not a value of the two state bits: POOL with length 0, which a pool
	 * object never has. sect_state() and sect_make() translate.
	 */
	SECT_PACKED = 4,
};

/*
 * The 16-bit metadata word kept beside each 64-bit value:
 *
 *   bit  15     SECT_F_IDLE, a spare flag for the shrinker (not used yet)
 *   bits 14-13  enum sect_state
 *   bits 12-0   object length in bytes, 1..4096 (POOL, BACKING), else 0
 *
 * The four values of the state bits are all taken, so PACKED is stored as
 * POOL with length 0 (a pool object is never empty): no bit is spent and
 * the entry stays 10 bytes.
 * A length of SECT_LEN_RAW (4096) means the object is the sector stored
 * uncompressed: compressed objects are never that long, because the huge
 * threshold is below it (see codec.h).
 */
#define SECT_LEN_BITS	13
#define SECT_LEN_MASK	((1u << SECT_LEN_BITS) - 1)
#define SECT_STATE_SHIFT SECT_LEN_BITS
#define SECT_F_IDLE	(1u << 15)
#define SECT_LEN_RAW	SECT_SIZE

_Static_assert(SECT_LEN_RAW <= SECT_LEN_MASK, "length field too narrow");
_Static_assert(SECT_STATE_SHIFT + 2 <= 15, "meta bits overlap the flag");

/* A decoded entry, as read from or written to the table. */
struct sect_entry {
	uint64_t val;	/* SAME: the word; POOL: handle; BACKING: slot */
	uint16_t meta;
};

static inline enum sect_state sect_state(struct sect_entry e)
{
	unsigned int st = (e.meta >> SECT_STATE_SHIFT) & 3;

	if (st == SECT_POOL && (e.meta & SECT_LEN_MASK) == 0)
		return SECT_PACKED;
	return (enum sect_state)st;
}

static inline unsigned int sect_len(struct sect_entry e)
{
	return e.meta & SECT_LEN_MASK;
}

static inline struct sect_entry sect_make(enum sect_state st, uint64_t val,
					  unsigned int len)
{
	if (st == SECT_PACKED) {
		st = SECT_POOL;
		len = 0;
	}
	return (struct sect_entry){
		.val = val,
		.meta = (uint16_t)(((unsigned int)st << SECT_STATE_SHIFT) |
				   (len & SECT_LEN_MASK)),
	};
}

#define SECT_ENTRY_EMPTY ((struct sect_entry){ 0, 0 })

struct sect_leaf;

struct sect_stripe {
	pthread_mutex_t lock;
	int64_t acct[SECT_NACCT];	/* protected by lock */
} __attribute__((aligned(64)));

/* Where one sector's entry lives; valid between sect_lock and sect_unlock. */
struct sect_ref {
	struct sect_stripe *stripe;
	struct sect_leaf *leaf;		/* NULL: no leaf yet, entry is EMPTY */
	struct sect_leaf **slot;	/* where the leaf pointer lives, or
					   NULL if its interior node is not
					   there yet */
	uint64_t leafno;		/* the leaf number */
	unsigned int idx;		/* index in the leaf */
};

struct sect_table;

/**
 * sect_create() - create an empty table
 * @nsectors: sectors of the device, 0 to SECT_MAX_SECTORS
 *
 * Costs one small root node and the stripe array, whatever @nsectors is.
 *
 * Return: the table, or NULL with errno ENOMEM or EINVAL (@nsectors too big).
 */
struct sect_table *sect_create(uint64_t nsectors);

/**
 * sect_destroy() - free the table and all its leaves
 * @t: the table, or NULL
 *
 * Objects the entries refer to are not freed. No other call may run.
 */
void sect_destroy(struct sect_table *t);

/* Return: the number of sectors given to sect_create(). */
uint64_t sect_nsectors(const struct sect_table *t);

/**
 * sect_lock() - lock the stripe of @sector and find its entry
 * @t:      the table
 * @sector: a sector below sect_nsectors()
 * @ref:    filled in; pass it to the other sect_ref_* calls and sect_unlock
 */
void sect_lock(struct sect_table *t, uint64_t sector, struct sect_ref *ref);

/* Unlock what sect_lock() locked. */
void sect_unlock(struct sect_ref *ref);

/* The entry of a locked sector. */
static inline struct sect_entry sect_ref_get(const struct sect_ref *ref);

/**
 * sect_ref_set() - replace the entry of a locked sector
 * @t:   the table
 * @ref: from sect_lock(), still locked
 * @e:   the new entry
 *
 * Allocates the sector's leaf on the first non-empty entry, and frees it
 * when its last entry becomes empty.
 *
 * Return: 0, or -ENOMEM if a leaf could not be allocated (nothing changed).
 */
int sect_ref_set(struct sect_table *t, struct sect_ref *ref,
		 struct sect_entry e);

/* Set or clear SECT_F_IDLE on a locked, non-empty entry. */
void sect_ref_set_flag(struct sect_ref *ref, uint16_t flag, bool on);

/**
 * typedef sect_scan_fn - called by sect_scan()
 * @arg:    the argument given to sect_scan()
 * @sector: first sector of the run
 * @count:  sectors in the run; more than 1 only for an unallocated region,
 *          whose entries are all EMPTY
 * @e:      the entry (EMPTY for an unallocated region)
 *
 * For allocated leaves the callback runs with the leaf's stripe locked, so
 * it must not call into the table or take a stripe lock.
 *
 * Return: 0 to go on, anything else to stop the scan.
 */
typedef int (*sect_scan_fn)(void *arg, uint64_t sector, uint64_t count,
			    struct sect_entry e);

/**
 * sect_scan() - visit the entries of sectors [@start, @end) in order
 * @t:     the table
 * @start: first sector
 * @end:   one past the last sector, at most sect_nsectors()
 * @fn:    the callback
 * @arg:   passed to @fn
 *
 * Unallocated regions, however large, cost one call each, so a scan of a
 * huge, mostly empty device is fast. Each leaf is visited under its stripe
 * lock, taken once per leaf.
 *
 * Return: 0 if the scan finished, or the non-zero value @fn returned.
 */
int sect_scan(struct sect_table *t, uint64_t start, uint64_t end,
	      sect_scan_fn fn, void *arg);

/* Sums each stripe's acct[] into @out[SECT_NACCT] (a snapshot). */
void sect_sum_acct(struct sect_table *t, int64_t out[SECT_NACCT]);

/* Return: bytes of table metadata (nodes, leaves, stripes) held now. */
uint64_t sect_mem_bytes(const struct sect_table *t);

/* Return: leaves currently allocated. */
uint64_t sect_nleaves(const struct sect_table *t);

/* --- inline internals ---------------------------------------------------- */

struct sect_leaf {
	uint32_t used;	/* non-empty entries */
	uint32_t pad;
	uint64_t val[SECT_LEAF_SECTORS];
	uint16_t meta[SECT_LEAF_SECTORS];
};

static inline struct sect_entry sect_ref_get(const struct sect_ref *ref)
{
	if (!ref->leaf)
		return SECT_ENTRY_EMPTY;
	return (struct sect_entry){ ref->leaf->val[ref->idx],
				    ref->leaf->meta[ref->idx] };
}

#endif /* ZRAMD_SECTORS_H */
