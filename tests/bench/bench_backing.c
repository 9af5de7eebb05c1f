/* SPDX-License-Identifier: MIT */
/*
 * bench_backing.c - writeback and read-back rates of the backing store:
 * a file and a raw block device (a loop device here), through the page
 * cache and with O_DIRECT
 *
 * The records are what the shrinker writes: 4 KiB sectors of a real-data
 * file, LZ4-compressed (raw above 3584 bytes, as the huge threshold
 * does), each with a 32-byte header and padded to 512-byte units.
 *
 *   write     every record once, packed one after the other (the
 *             next-fit allocator of a fresh file does the same), then
 *             fdatasync: the rate at which evicted data reaches the disk
 *   read      every record once, in a random order (reads of evicted
 *             sectors come in the order clients ask), after the page
 *             cache of the target (and of the loop device's own file)
 *             was dropped with posix_fadvise(DONTNEED)
 *
 * Rows: "records" rows do the I/O with pwrite/pread alone, buffered or
 * O_DIRECT, one synchronous request at a time, as backing.c does; the
 * "backing.c" row runs the daemon's own code (backing_write, then
 * backing_drop_cache, as the shrinker after a round; backing_read, which
 * checks every record), buffered, as shipped.
 *
 * Usage: bench_backing DIR DATAFILE [MiB of data, default 32]
 * DIR gets a scratch file and, if losetup can attach one (root), a loop
 * device over a second scratch file; both are removed at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "backing.h"

#define SEC	  4096u
#define UNIT	  512u
#define HDR	  32u
#define HUGE_AT	  3584u
#define TARGET_MB 256u

struct rec {
	uint64_t off; /* bytes */
	uint32_t len; /* payload */
	uint32_t size; /* padded, a multiple of UNIT */
	uint64_t src; /* sector of the data */
};

static unsigned char *data;
static struct rec *recs;
static size_t nrec;
static uint64_t total_size, total_payload;
static unsigned char (*payload)[SEC];

static size_t *order;

static void prepare(const char *file, unsigned int mib)
{
	size_t n = (size_t)mib << 20, nsec;
	FILE *f = fopen(file, "rb");
	uint64_t off = 0, s = 42;
	char tmp[LZ4_COMPRESSBOUND(SEC)];

	if (!f) {
		perror(file);
		exit(1);
	}
	data = malloc(n);
	n = fread(data, 1, n, f);
	fclose(f);
	nsec = n / SEC;
	recs = calloc(nsec, sizeof(*recs));
	payload = malloc(nsec * sizeof(*payload));
	order = malloc(nsec * sizeof(*order));
	for (size_t i = 0; i < nsec; i++) {
		int c = LZ4_compress_default((const char *)data + i * SEC, tmp,
					     SEC, sizeof(tmp));
		uint32_t len = c > 0 && (unsigned int)c <= HUGE_AT ? (uint32_t)c
								   : SEC;

		memcpy(payload[i], len == SEC ? (char *)data + i * SEC : tmp,
		       len);
		recs[i].len = len;
		recs[i].size = (HDR + len + UNIT - 1) / UNIT * UNIT;
		recs[i].off = off;
		recs[i].src = i;
		off += recs[i].size;
		total_payload += len;
	}
	nrec = nsec;
	total_size = off;
	for (size_t i = 0; i < nrec; i++)
		order[i] = i;
	for (size_t i = nrec - 1; i > 0; i--) {
		size_t j = rnd(&s) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
}

/* Drops the page cache of @fd and, if given, of the file @under. */
static void drop(int fd, const char *under)
{
	if (fd >= 0) {
		if (fdatasync(fd) != 0 && errno != EINVAL)
			perror("fdatasync");
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	if (under) {
		int u = open(under, O_RDONLY);

		if (u >= 0) {
			fdatasync(u);
			posix_fadvise(u, 0, 0, POSIX_FADV_DONTNEED);
			close(u);
		}
	}
}

struct result {
	double wsec, rsec;
};

static void print_row(const char *target, const char *mode, struct result r)
{
	printf("| %s | %s | %.1f MB/s | %.0f | %.1f MB/s | %.0f |\n", target,
	       mode, (double)total_size / r.wsec / 1e6, (double)nrec / r.wsec,
	       (double)total_size / r.rsec / 1e6, (double)nrec / r.rsec);
	fflush(stdout);
}

/* pwrite/pread of the records on @path, with @flags added to O_RDWR. */
static int run_records(const char *path, const char *under, int flags,
		       struct result *res)
{
	unsigned char *buf;
	double t;
	int fd = open(path, O_RDWR | flags);

	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (posix_memalign((void **)&buf, 4096, 16 * UNIT) != 0)
		return -1;
	memset(buf, 0, 16 * UNIT);
	drop(fd, under);
	t = now_s();
	for (size_t i = 0; i < nrec; i++) {
		memcpy(buf + HDR, payload[i], recs[i].len);
		if (pwrite(fd, buf, recs[i].size, (off_t)recs[i].off) !=
		    (ssize_t)recs[i].size) {
			perror("pwrite");
			close(fd);
			free(buf);
			return -1;
		}
	}
	if (fdatasync(fd) != 0)
		perror("fdatasync");
	res->wsec = now_s() - t;
	drop(fd, under);
	t = now_s();
	for (size_t k = 0; k < nrec; k++) {
		size_t i = order[k];

		if (pread(fd, buf, recs[i].size, (off_t)recs[i].off) !=
		    (ssize_t)recs[i].size) {
			perror("pread");
			close(fd);
			free(buf);
			return -1;
		}
	}
	res->rsec = now_s() - t;
	close(fd);
	free(buf);
	return 0;
}

/* The daemon's own code: backing_write + drop_cache, backing_read. */
static int run_backing(const char *path, const char *under, struct result *res)
{
	char err[512];
	struct backing *b = backing_open_force(path, (uint64_t)TARGET_MB << 20,
					       true, err, sizeof(err));
	uint64_t *slot = calloc(nrec, sizeof(*slot));
	unsigned char out[SEC];
	size_t len;
	double t;

	if (!b) {
		fprintf(stderr, "%s\n", err);
		free(slot);
		return -1;
	}
	t = now_s();
	for (size_t i = 0; i < nrec; i++) {
		if (backing_write(b, recs[i].src, payload[i], recs[i].len,
				  recs[i].len == SEC ? 0
						     : BACKING_FLAG_COMPRESSED,
				  &slot[i]) != 0) {
			fprintf(stderr, "backing_write failed\n");
			backing_close(b);
			free(slot);
			return -1;
		}
	}
	backing_drop_cache(b);
	res->wsec = now_s() - t;
	if (under)
		drop(-1, under);
	t = now_s();
	for (size_t k = 0; k < nrec; k++) {
		size_t i = order[k];

		if (backing_read(b, slot[i], recs[i].src, out, sizeof(out),
				 &len, NULL) != 0 ||
		    len != recs[i].len || memcmp(out, payload[i], len) != 0) {
			fprintf(stderr, "backing_read: record %zu wrong\n", i);
			backing_close(b);
			free(slot);
			return -1;
		}
	}
	res->rsec = now_s() - t;
	backing_close(b);
	free(slot);
	return 0;
}

static int losetup(const char *args, char *out, size_t outlen)
{
	char cmd[700];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "losetup %s 2>/dev/null", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out) {
		out[0] = '\0';
		if (fgets(out, (int)outlen, p))
			out[strcspn(out, "\n")] = '\0';
	}
	return pclose(p) == 0 && (!out || out[0]) ? 0 : -1;
}

static int make_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)TARGET_MB << 20) != 0) {
		perror(path);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	char file[512], loopfile[512], loopdev[64] = "", args[600];
	unsigned int mib = argc > 3 ? (unsigned int)atoi(argv[3]) : 32;
	struct result r;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR DATAFILE [MiB]\n", argv[0]);
		return 2;
	}
	prepare(argv[2], mib);
	printf("bench_backing: %zu records of %u MiB of %s, %.1f MiB on disk "
	       "(%.2f compressed payload bytes per data byte)\n",
	       nrec, mib, argv[2], (double)total_size / (1 << 20),
	       (double)total_payload / ((double)nrec * SEC));
	snprintf(file, sizeof(file), "%s/bench-backing.file", argv[1]);
	snprintf(loopfile, sizeof(loopfile), "%s/bench-backing.loop", argv[1]);
	if (make_file(file) != 0 || make_file(loopfile) != 0)
		return 1;
	snprintf(args, sizeof(args), "-f --show %s", loopfile);
	if (losetup(args, loopdev, sizeof(loopdev)) != 0) {
		loopdev[0] = '\0';
		printf("SKIP loop device rows: losetup -f failed (needs "
		       "root)\n");
	}

	printf("\n| target | I/O | write | records/s | read (random) | "
	       "records/s |\n|---|---|---:|---:|---:|---:|\n");
	if (run_records(file, NULL, 0, &r) == 0)
		print_row("file", "records, buffered", r);
	if (run_records(file, NULL, O_DIRECT, &r) == 0)
		print_row("file", "records, O_DIRECT", r);
	if (run_backing(file, NULL, &r) == 0)
		print_row("file", "backing.c (buffered)", r);
	if (loopdev[0]) {
		if (run_records(loopdev, loopfile, 0, &r) == 0)
			print_row("loop device", "records, buffered", r);
		if (run_records(loopdev, loopfile, O_DIRECT, &r) == 0)
			print_row("loop device", "records, O_DIRECT", r);
		if (run_backing(loopdev, loopfile, &r) == 0)
			print_row("loop device", "backing.c (buffered)", r);
		snprintf(args, sizeof(args), "-d %s", loopdev);
		losetup(args, NULL, 0);
	}
	unlink(file);
	unlink(loopfile);
	return 0;
}
