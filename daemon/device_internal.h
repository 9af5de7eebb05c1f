/* SPDX-License-Identifier: MIT */
/*
 * device_internal.h - what the device core's files share: struct zdev and
 * the per-stripe accounting
 *
 * Not an API: only device.c (requests), evict.c (eviction to the
 * backing file), snapshot.c and snapshot_load.c (the device written to
 * and read from a snapshot file) include this; everything else uses
 * device.h.
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
};
_Static_assert(ACCT_FREED < SECT_NACCT, "acct slots");
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
};

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
		acct[ACCT_COMPR] += sign * (int64_t)len;
		if (len == SECT_LEN_RAW)
			acct[ACCT_HUGE] += sign;
		break;
	case SECT_BACKING:
		acct[ACCT_BACKING] += sign;
		break;
	}
}

#endif /* ZRAMD_DEVICE_INTERNAL_H */
