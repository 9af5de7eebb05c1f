/* SPDX-License-Identifier: MIT */
/*
 * bench_pack.c - the cold tier's pack size and level, in process
 *
 * make bench-pack (tests/bench/backing.mk): the first BENCH_PACK_MIB
 * (default 64) MiB of the real-data file are written to a zsmalloc
 * device, then packed by one zdev_recompress(ZDEV_RECOMPRESS_ALL) pass,
 * for each pack size (sectors of one zstd frame: 1, 8, 16) and zstd level
 * (3, 6, 9). Prints a markdown table: data / pool memory (mem_used_total,
 * after the pass's compaction) hot and packed, the pass's rate (MB of
 * packed sectors per second of one core), and the latency of 4 KiB reads
 * of packed sectors, random (each decompresses the whole pack) and
 * sequential (the thread's last pack serves the rest of its sectors).
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

#define SEC   4096u
#define READS 20000u

static uint64_t stat_of(struct zdev *dev, enum zstat k)
{
	struct zstats s;

	zdev_get_stats(dev, &s);
	return s.v[k];
}

static int run(const unsigned char *data, uint64_t nsec, unsigned int slots,
	       int level)
{
	struct zdev_config dc = {
		.size = nsec * SEC,
		.allocator = "zsmalloc",
		.acceleration = 1,
		.huge_threshold = CODEC_HUGE_THRESHOLD_DEFAULT,
		.recompress_level = level,
		.pack_slots = slots,
	};
	struct zdev_recompress_result res;
	unsigned char buf[SEC];
	uint64_t s = 777, hot, cold, bytes = nsec * SEC;
	double t, t_rand, t_seq;
	struct zdev *dev;
	int e;

	dev = zdev_create(&dc, &e);
	if (!dev) {
		fprintf(stderr, "zdev_create: %s\n", strerror(-e));
		return -1;
	}
	for (uint64_t i = 0; i < nsec; i++)
		if (zdev_write(dev, data + i * SEC, SEC, i * SEC, false) != 0)
			return -1;
	(void)zdev_compact(dev);
	hot = stat_of(dev, ZSTAT_mem_used_total);
	t = now_s();
	if (zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0, NULL, NULL, &res) != 0)
		return -1;
	t = now_s() - t;
	cold = stat_of(dev, ZSTAT_mem_used_total);
	t_rand = now_s();
	for (unsigned int i = 0; i < READS; i++) {
		uint64_t sec = rnd(&s) % nsec;

		if (zdev_read(dev, buf, SEC, sec * SEC) != 0 ||
		    memcmp(buf, data + sec * SEC, SEC) != 0) {
			fprintf(stderr, "read-back differs at %llu\n",
				(unsigned long long)sec);
			return -1;
		}
	}
	t_rand = (now_s() - t_rand) / READS;
	t_seq = now_s();
	for (unsigned int i = 0; i < READS && i < nsec; i++)
		if (zdev_read(dev, buf, SEC, (uint64_t)i * SEC) != 0)
			return -1;
	t_seq = (now_s() - t_seq) / (READS < nsec ? READS : nsec);
	printf("| %2u | %d | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f |\n",
	       slots, level, (double)bytes / (double)hot,
	       (double)bytes / (double)cold,
	       (double)stat_of(dev, ZSTAT_packed_sectors) /
		       (double)(res.packs ? res.packs : 1),
	       (double)stat_of(dev, ZSTAT_packed_sectors) * SEC / 1e6 / t,
	       t_rand * 1e6, t_seq * 1e6);
	fflush(stdout);
	zdev_destroy(dev);
	return 0;
}

int main(int argc, char **argv)
{
	static const unsigned int slots[] = { 1, 8, 16 };
	static const int levels[] = { 3, 6, 9 };
	const char *mib_env = getenv("BENCH_PACK_MIB");
	uint64_t mib = mib_env ? strtoull(mib_env, NULL, 10) : 64;
	uint64_t nsec;
	unsigned char *data;
	ssize_t got;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATA_FILE\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	data = malloc(mib << 20);
	if (!data)
		return 1;
	got = pread(fd, data, mib << 20, 0);
	close(fd);
	if (got < (ssize_t)SEC) {
		fprintf(stderr, "%s: too short\n", argv[1]);
		return 1;
	}
	nsec = (uint64_t)got / SEC;
	printf("%llu MiB of %s, zsmalloc, hot LZ4; ratio = data / "
	       "mem_used_total\n\n",
	       (unsigned long long)(nsec * SEC >> 20), argv[1]);
	printf("| pack sectors | level | hot ratio | packed ratio | "
	       "sectors/pack | packed MB/s | random read us | seq read us |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (unsigned int i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		for (unsigned int j = 0; j < sizeof(levels) / sizeof(levels[0]);
		     j++)
			if (run(data, nsec, slots[i], levels[j]) != 0)
				return 1;
	free(data);
	return 0;
}
