/* SPDX-License-Identifier: MIT */
/*
 * stats.h - a device's counters and the stats file writer
 *
 * The names, their order and the file format come from
 * include/zramd_stats.h (shared with zramd-stat). Here they become an enum
 * and a snapshot structure. The counters themselves live in the device
 * (device.c): sizes are summed from the sector table's per-stripe
 * accounting, events are atomic counters.
 */
#ifndef ZRAMD_DAEMON_STATS_H
#define ZRAMD_DAEMON_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zramd_stats.h"

enum zstat {
#define ZSTAT_ENUM(name, type, unit, desc) ZSTAT_##name,
	ZRAMD_STATS(ZSTAT_ENUM)
#undef ZSTAT_ENUM
		ZSTAT_COUNT
};

/* A snapshot of every counter of a device. */
struct zstats {
	uint64_t v[ZSTAT_COUNT];
	char allocator[32];
};

/* The counter names in file order, and their one-line descriptions. */
extern const char *const zstat_names[ZSTAT_COUNT];
extern const char *const zstat_descriptions[ZSTAT_COUNT];

/* Event counters of a device, updated with atomics from any thread. */
struct zstat_live {
	uint64_t v[ZSTAT_COUNT];
};

static inline void zstat_add(struct zstat_live *l, enum zstat k, uint64_t n)
{
	__atomic_fetch_add(&l->v[k], n, __ATOMIC_RELAXED);
}

static inline uint64_t zstat_get(const struct zstat_live *l, enum zstat k)
{
	return __atomic_load_n(&l->v[k], __ATOMIC_RELAXED);
}

/* Raise @l->v[@k] to @n if @n is higher (a running maximum). */
static inline void zstat_max(struct zstat_live *l, enum zstat k, uint64_t n)
{
	uint64_t cur = __atomic_load_n(&l->v[k], __ATOMIC_RELAXED);

	while (n > cur &&
	       !__atomic_compare_exchange_n(&l->v[k], &cur, n, true,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/**
 * stats_format() - the stats file text of a snapshot
 * @s:   the snapshot
 * @buf: where the text goes
 * @len: size of @buf
 *
 * Return: the length of the text (as snprintf: if it is @len or more, the
 * text was cut).
 */
size_t stats_format(const struct zstats *s, char *buf, size_t len);

/**
 * stats_write_file() - replace the stats file atomically
 * @path: the stats file
 * @s:    the snapshot to write
 *
 * Writes a temporary file in the same directory, then renames it over
 * @path, so a reader sees the old file or the new one, never a mix.
 *
 * Return: 0, or a negative errno from the failing call (the temporary file
 * is removed).
 */
int stats_write_file(const char *path, const struct zstats *s);

#endif /* ZRAMD_DAEMON_STATS_H */
