/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_table.h - tables of fixed-size entries named by a 32-bit id
 * (internal to zsmalloc)
 *
 * zsmalloc keeps two such tables per pool: the handle table (8-byte entries,
 * one per object, holding the object's current location) and the zspage
 * table (32-byte struct zspage, one per zspage). Both need the same things:
 *
 *  - lookup of an entry by id without any lock (the map path reads the
 *    handle table and the zspage table on every call);
 *  - entries that never move once handed out (their address is stable, so
 *    atomics on them work);
 *  - memory that comes from the pool's page source, so that it is counted
 *    in zpool_get_total_size() and goes back to the OS when the table
 *    empties.
 *
 *   dir (atomic pointer, replaced when it grows; old ones kept until destroy)
 *   +------+------+------+------+
 *   |  c0  |  c1  |  c2  | NULL |      each chunk: one 4 KiB page from pagesrc,
 *   +--|---+--|---+--|---+------+      4096 / entry_size entries
 *      v      v      v
 *   [e e e][e e e][e e e]             ids: chunk * per_chunk + slot
 *
 * Ids are handed out lowest first (a bitmap of free ids per chunk, outside
 * the chunk), so the live ids crowd into the low chunks and the top chunks
 * drain as the pool empties; a chunk at the top that is wholly free is given
 * back to the page source, keeping one spare to avoid churn at the edge.
 *
 * Thread safety: zs_table_get() and zs_table_put() take the table's mutex
 * (a leaf lock, taken with or without a size-class lock held; it takes the
 * pagesrc lock inside it). zs_table_entry() takes no lock: it may be called
 * for any id the caller knows to be live (handed out and not yet put).
 */
#ifndef ZRAMD_ZSMALLOC_TABLE_H
#define ZRAMD_ZSMALLOC_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagesrc.h"

#define ZS_TABLE_CHUNK_SIZE PAGESRC_PAGE_SIZE
/* The most entries a chunk holds: 8-byte entries. */
#define ZS_TABLE_MAX_PER_CHUNK (ZS_TABLE_CHUNK_SIZE / 8)
#define ZS_TABLE_MAP_WORDS     (ZS_TABLE_MAX_PER_CHUNK / 64)

/* The bookkeeping of one chunk (under the table lock). */
struct zs_table_chunk {
	uint64_t free[ZS_TABLE_MAP_WORDS]; /* bit set: id free */
	uint32_t nfree;
};

struct zs_table {
	pthread_mutex_t lock; /* protects all below but the entries */
	struct pagesrc *ps;
	uint64_t *meta_bytes; /* the pool's malloc'd-bytes counter */
	unsigned int entry_shift; /* log2 of the entry size */
	unsigned int chunk_shift; /* log2 of the entries per chunk */
	uint32_t max_ids; /* ids are below this */
	char **dir; /* chunk addresses (atomic); NULL: absent */
	size_t dir_cap; /* entries of dir and info */
	struct zs_table_chunk *info; /* per chunk */
	size_t nchunks; /* chunks present: 0 .. nchunks-1 */
	size_t hint; /* no free id below this chunk */
	uint64_t nused; /* ids handed out */
	unsigned int holds; /* zs_table_hold() calls outstanding */
	void **retired; /* old dir arrays (freed at destroy) */
	size_t nretired;
};

/**
 * zs_table_init() - set up an empty table
 * @t:          the table
 * @ps:         where chunk pages come from
 * @meta_bytes: a counter (updated atomically) of the malloc'd bytes the
 *              table keeps, for the pool's total_size
 * @entry_size: bytes of an entry, a power of two from 8 to 4096
 * @max_ids:    ids handed out are below this
 * @reserve_zero: hand out id 0 now, so that 0 can mean "none"
 *
 * Return: 0, or -ENOMEM.
 */
int zs_table_init(struct zs_table *t, struct pagesrc *ps, uint64_t *meta_bytes,
		  unsigned int entry_size, uint32_t max_ids, bool reserve_zero);

/**
 * zs_table_destroy() - free the table's bookkeeping
 * @t: the table
 *
 * The chunk pages are given back to the page source.
 */
void zs_table_destroy(struct zs_table *t);

/**
 * zs_table_get() - hand out free ids, lowest first
 * @t:   the table
 * @ids: where the ids are stored
 * @n:   how many are wanted
 *
 * The entries of new ids read as zero if their chunk is new; otherwise they
 * hold whatever the last user left (callers initialise them).
 *
 * Return: the number of ids stored, @n unless memory or ids ran out (then
 * fewer, possibly 0).
 */
unsigned int zs_table_get(struct zs_table *t, uint32_t *ids, unsigned int n);

/**
 * zs_table_put() - give ids back
 * @t:   the table
 * @ids: the ids, each handed out by zs_table_get() and not yet put
 * @n:   how many
 *
 * Return: the number of pages given back to the page source (0 or more).
 */
unsigned int zs_table_put(struct zs_table *t, const uint32_t *ids,
			  unsigned int n);

/**
 * zs_table_hold() - keep every chunk present until zs_table_unhold()
 * @t: the table
 *
 * While a hold is outstanding, no chunk is given back, so zs_table_entry()
 * is safe on any id below the top present at zs_table_hold() time, even on
 * one that has since been put back (its entry is then stale, not gone).
 */
void zs_table_hold(struct zs_table *t);

/* Return: the pages given back now that the hold is gone. */
unsigned int zs_table_unhold(struct zs_table *t);

/**
 * zs_table_scan() - call @fn on every present chunk of the table
 * @t:   the table
 * @fn:  called with the chunk's first entry, the id of that entry and the
 *       number of entries; the table lock is held during the call, so the
 *       chunk cannot go away (@fn must not call back into the table)
 * @arg: passed to @fn
 *
 * The lock is dropped between chunks: ids may come and go meanwhile, and
 * @fn sees each entry as it is at that moment.
 */
void zs_table_scan(struct zs_table *t,
		   void (*fn)(void *entries, uint32_t first, uint32_t n,
			      void *arg),
		   void *arg);

/* Return: ids currently handed out (a snapshot, under the lock). */
uint64_t zs_table_used(struct zs_table *t);

/**
 * zs_table_entry() - the address of a live id's entry
 * @t:  the table
 * @id: an id handed out and not put back
 *
 * Lock-free. The address stays the same as long as @id is live.
 */
static inline void *zs_table_entry(const struct zs_table *t, uint32_t id)
{
	char **dir = __atomic_load_n(&t->dir, __ATOMIC_ACQUIRE);
	char *chunk =
		__atomic_load_n(&dir[id >> t->chunk_shift], __ATOMIC_ACQUIRE);

	return chunk +
	       ((size_t)(id & ((1u << t->chunk_shift) - 1)) << t->entry_shift);
}

#endif /* ZRAMD_ZSMALLOC_TABLE_H */
