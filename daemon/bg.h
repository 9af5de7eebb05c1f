/* SPDX-License-Identifier: MIT */
/*
 * bg.h - the device's background thread: stats file and compaction
 *
 * One thread, started once serving begins (the plugin's .after_fork, as
 * threads do not survive nbdkit's fork) and stopped at .cleanup:
 *
 *  - every stats_interval seconds it rewrites the stats file, and once
 *    more when it stops, so the file ends with the final counters;
 *  - every compact_interval seconds it compacts the pool if fragmentation
 *    is worth it: the pool holds more than BG_COMPACT_MIN_WASTE bytes, and
 *    more than 1/BG_COMPACT_RATIO of the compressed data, beyond what the
 *    compressed data needs. A pass that frees nothing is not repeated until
 *    the waste has grown by BG_COMPACT_MIN_WASTE; an allocator that cannot
 *    compact (zbud) is not asked again;
 *  - every recompress_interval seconds it runs one pass of the cold tier
 *    (zdev_recompress(), ZDEV_RECOMPRESS_IDLE): hot sectors not read or
 *    written since the pass before are packed, so a sector is packed once
 *    it has been idle between one and two intervals.
 */
#ifndef ZRAMD_BG_H
#define ZRAMD_BG_H

#include "device.h"

#define BG_COMPACT_MIN_WASTE (1u << 20)
#define BG_COMPACT_RATIO     8
#define BG_COMPACT_INTERVAL  5

struct bg;

struct bg_config {
	struct zdev *dev;
	const char *stats_path;	       /* NULL: no stats file */
	unsigned int stats_interval;   /* seconds; 0: only when stopping */
	unsigned int compact_interval; /* seconds; 0: never compact */
	unsigned int recompress_interval; /* seconds; 0: no idle packing */
	/* Reports a failure (first of its kind only); may be NULL. */
	void (*log)(const char *msg);
};

/**
 * bg_start() - start the background thread
 * @cfg: what to do; copied (the strings are not: keep them alive)
 *
 * Return: the thread's handle, or NULL with errno set (pthread_create).
 */
struct bg *bg_start(const struct bg_config *cfg);

/**
 * bg_stop() - stop the thread and write the stats file one last time
 * @bg: from bg_start(), or NULL
 */
void bg_stop(struct bg *bg);

/**
 * bg_compact_worth_it() - the compaction policy (exposed for tests)
 * @total: bytes the pool holds (mem_used_total)
 * @compr: bytes of compressed data in it (compr_data_size)
 */
static inline int bg_compact_worth_it(uint64_t total, uint64_t compr)
{
	uint64_t waste = total > compr ? total - compr : 0;

	return waste > BG_COMPACT_MIN_WASTE && waste > compr / BG_COMPACT_RATIO;
}

#endif /* ZRAMD_BG_H */
