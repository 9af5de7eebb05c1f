/* SPDX-License-Identifier: MIT */
/*
 * bench_promote.c - a hot set that moves, with and without promotion
 * (daemon/readback.c)
 *
 * A device of real data (a tar of system files) several times larger
 * than its mem_limit, with a backing file and the shrinker thread
 * running, exactly as the plugin wires them (daemon/writeback.c). Reads
 * come from a hot set of HOT sectors that moves: in each of PHASES phases
 * it is a different stretch of the device, read at random READS_PER
 * times per sector. Most of each new stretch was evicted while the
 * previous ones were hot.
 *
 * Printed for promote=off and promote=on, from the same data and the
 * same sequence of reads: reads per second, the share served from memory
 * (reads less bd_reads), reads per second served from memory, and the
 * ratio on/off. One thread reads, through zdev_read() (no NBD), so the
 * figures are the device's own.
 *
 * Run twice. First as it falls: the shrinker drops the backing file's
 * page cache after each of its rounds (backing_drop_cache), but records
 * read back sit in it until the next round, so without promotion (and so
 * without evictions) the "disk" reads are page-cache reads: memory the
 * daemon does not count and a machine under pressure does not have.
 * Then with the backing file's cache dropped before every read
 * (posix_fadvise), so that a read from the backing file is a disk read.
 *
 * Usage: bench_promote DIR DATAFILE [device MiB, default 64]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "codec.h"
#include "device.h"
#include "stats.h"
#include "writeback.h"

#define SEC	  4096u
#define HOT	  2048u /* sectors: 8 MiB of data, about 3 MiB compressed */
#define PHASES	  8u
#define READS_PER 8u
#define MEM_LIMIT (8u << 20)

static uint64_t stat_of(struct zdev *dev, enum zstat k)
{
	struct zstats s;

	zdev_get_stats(dev, &s);
	return s.v[k];
}

struct result {
	double sec;
	uint64_t reads, disk, promoted, evicted;
};

static int run(const char *dir, const unsigned char *data, uint64_t nsec,
	       bool promote, bool keep_cache, struct result *res)
{
	struct zdev_config dc = {
		.size = nsec * SEC,
		.allocator = "zsmalloc",
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.mem_limit = MEM_LIMIT,
		.shrinkable = true,
	};
	struct zwb_config wc = {
		.promote = promote,
		.shrink =
			{
				.mem_limit = MEM_LIMIT,
				.mem_high = 90,
				.mem_low = 80,
				.pressure = {.psi = PRESSURE_OFF,
					     .cgroup = PRESSURE_OFF},
			},
	};
	char path[512], err[512];
	unsigned char buf[SEC];
	uint64_t s = 12345, disk0, prom0, ev0;
	int cfd = -1;
	struct zwb *wb;
	struct zdev *dev;
	double t;
	int e, r;

	snprintf(path, sizeof(path), "%s/bench-promote.backing", dir);
	wc.backing = path;
	dev = zdev_create(&dc, &e);
	if (!dev) {
		fprintf(stderr, "zdev_create: %s\n", strerror(-e));
		return -1;
	}
	wb = zwb_create(dev, &wc, err, sizeof(err));
	if (!wb || zwb_start(wb) != 0) {
		fprintf(stderr, "zwb: %s\n", err);
		zdev_destroy(dev);
		return -1;
	}
	for (uint64_t i = 0; i < nsec; i++) {
		if (zdev_write(dev, data + i * SEC, SEC, i * SEC, false) != 0) {
			fprintf(stderr, "write of sector %llu failed\n",
				(unsigned long long)i);
			goto fail;
		}
	}
	cfd = open(path, O_RDONLY);
	disk0 = stat_of(dev, ZSTAT_bd_reads);
	prom0 = stat_of(dev, ZSTAT_bd_promotions);
	ev0 = stat_of(dev, ZSTAT_bd_writes);
	res->reads = 0;
	res->sec = 0;
	for (unsigned int p = 0; p < PHASES; p++) {
		/* Each phase's stretch is well away from the last one. */
		uint64_t base = (uint64_t)p * 3 * HOT % (nsec - HOT);

		for (unsigned int k = 0; k < HOT * READS_PER; k++) {
			uint64_t sec = base + rnd(&s) % HOT;

			/* No page cache: every "disk" read is one. */
			if (!keep_cache && cfd >= 0)
				posix_fadvise(cfd, 0, 0, POSIX_FADV_DONTNEED);
			t = now_s();
			r = zdev_read(dev, buf, SEC, sec * SEC);
			res->sec += now_s() - t; /* the reads alone */
			if (r != 0 || memcmp(buf, data + sec * SEC, SEC) != 0) {
				fprintf(stderr, "sector %llu reads wrong\n",
					(unsigned long long)sec);
				goto fail;
			}
			res->reads++;
		}
	}
	res->disk = stat_of(dev, ZSTAT_bd_reads) - disk0;
	res->promoted = stat_of(dev, ZSTAT_bd_promotions) - prom0;
	res->evicted = stat_of(dev, ZSTAT_bd_writes) - ev0;
	if (cfd >= 0)
		close(cfd);
	zwb_destroy(wb);
	zdev_destroy(dev);
	unlink(path);
	return 0;

fail:
	if (cfd >= 0)
		close(cfd);
	zwb_destroy(wb);
	zdev_destroy(dev);
	unlink(path);
	return -1;
}

static void row(const char *name, const struct result *r)
{
	double mem = (double)(r->reads - r->disk);

	printf("| %s | %llu | %.0f | %.1f%% | %.0f | %llu | %llu |\n", name,
	       (unsigned long long)r->reads, (double)r->reads / r->sec,
	       100.0 * mem / (double)r->reads, mem / r->sec,
	       (unsigned long long)r->promoted, (unsigned long long)r->evicted);
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 3 ? strtoull(argv[3], NULL, 0) : 64, nsec;
	struct result off, on;
	unsigned char *data;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR DATAFILE [MiB]\n", argv[0]);
		return 2;
	}
	nsec = (mib << 20) / SEC;
	if (nsec < 4 * HOT) {
		fprintf(stderr,
			"bench_promote: the device must be at least "
			"%u MiB\n",
			4 * HOT * SEC >> 20);
		return 2;
	}
	data = malloc(nsec * SEC);
	f = fopen(argv[2], "rb");
	if (!data || !f || fread(data, SEC, nsec, f) != nsec) {
		fprintf(stderr, "%s: cannot read %llu MiB\n", argv[2],
			(unsigned long long)mib);
		return 1;
	}
	fclose(f);
	printf("bench_promote: %llu MiB device, mem_limit %u MiB, hot set "
	       "%u sectors moving %u times, %u reads per hot sector\n",
	       (unsigned long long)mib, MEM_LIMIT >> 20, HOT, PHASES,
	       READS_PER);
	for (int keep = 1; keep >= 0; keep--) {
		if (run(argv[1], data, nsec, false, keep, &off) != 0 ||
		    run(argv[1], data, nsec, true, keep, &on) != 0)
			return 1;
		printf("\n%s\n\n| promote | reads | reads/s | from memory | "
		       "from memory/s | promoted | evicted |\n"
		       "|---|---:|---:|---:|---:|---:|---:|\n",
		       keep ? "Backing file in the page cache (records read "
			      "back stay cached):"
			    : "No page cache (dropped before every read, as "
			      "under memory pressure):");
		row("off", &off);
		row("on", &on);
		printf("\npromote=on / off: %.2fx reads/s",
		       ((double)on.reads / on.sec) /
			       ((double)off.reads / off.sec));
		if (off.reads > off.disk)
			printf(", %.2fx reads/s from memory",
			       ((double)(on.reads - on.disk) / on.sec) /
				       ((double)(off.reads - off.disk) /
					off.sec));
		printf("\n");
	}
	free(data);
	return 0;
}
