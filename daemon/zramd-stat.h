/* SPDX-License-Identifier: MIT */
/*
 * zramd-stat.h - what zramd-stat's parts share: a parsed stats file
 *
 * zramd-stat.c reads and parses stats files and prints the table, --all
 * and --json; zramd-stat-prom.c prints the Prometheus exposition. Both
 * take every counter's name, type and unit from include/zramd_stats.h.
 */
#ifndef ZRAMD_STAT_H
#define ZRAMD_STAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "zramd_stats.h"

#define ZRAMD_STATS_DIR "/run/zramd"
/* Bytes per sector: the compression unit, and what bd_count counts. */
#define ZRAMD_SECTOR_SIZE 4096
/* A stats file is a few hundred bytes; anything much bigger is not one. */
#define STATS_FILE_MAX (64 * 1024)
#define ALLOCATOR_MAX  32

enum stat_id {
#define X(name, type, unit, desc) STAT_##name,
	ZRAMD_STATS(X)
#undef X
		NR_STATS
};

struct stats_file {
	uint64_t version;
	char allocator[ALLOCATOR_MAX]; /* "" if the file has none */
	uint64_t value[NR_STATS];
	bool have[NR_STATS]; /* newer counters may be absent from older files */
};

/* One device as zramd-stat shows it: the file it came from, parsed. */
struct device {
	const char *path;
	struct stats_file st;
};

/**
 * zramd_stat_prometheus() - print devices in Prometheus' text format
 * @f: where to print
 * @devs: the devices, @n of them
 *
 * Every counter of ZRAMD_STATS() is one metric, zramd_NAME with its unit
 * (_bytes, _sectors) and, for counters, _total; each device is one sample
 * labelled device="NAME" (the stats file's name without ".stats").
 * Counters a file lacks (an older daemon) have no sample.
 *
 * Return: 0, or -1 with errno set if writing to @f failed.
 */
int zramd_stat_prometheus(FILE *f, const struct device *devs, size_t n);

/* The label zramd-stat gives a stats file: its base name less ".stats". */
void zramd_stat_devname(const char *path, char *buf, size_t len);

#endif /* ZRAMD_STAT_H */
