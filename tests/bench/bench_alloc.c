/* SPDX-License-Identifier: MIT */
/*
 * bench_alloc - the zpool backends on real compressed data
 *
 * Usage: bench_alloc FILE [MiB]
 *
 * FILE (the first MiB of it, default all) is cut into 4 KiB blocks, and
 * each block is compressed with LZ4_compress_default(), as zramd does.
 * The rule for what is stored, as in zramd and zram:
 *
 *  - an all-zero block is skipped (zramd keeps it in its sector table);
 *  - a block that compresses to more than 3/4 of a page (3072 bytes) is
 *    stored raw, 4096 bytes (not worth decompressing for < 25% saved);
 *  - any other block is stored as its compressed bytes.
 *
 * Every backend, with and without owner words (a pool with and without an
 * evict callback), gets the same objects in the same order, with their real
 * bytes, and the bench prints for each:
 *
 *  objects, bytes stored (the sum of object sizes), total_size after
 *  storing them all, overhead (total_size / stored - 1); the overhead
 *  again after a churn (a quarter of the objects overwritten, at random,
 *  with the bytes of other objects) and after zpool_compact(); malloc+free
 *  ops/s (that churn, one thread, then two threads each on its own half);
 *  and map+unmap ops/s (random objects, read-only, one byte read; one and
 *  two threads).
 *
 * Every object is checked byte for byte after the fill and again after
 * the compaction: a wrong byte stops the bench with an error. With
 * BENCH_ALLOC_PROFILE=1 the zsmalloc rows are followed by where the
 * overhead goes (slot rounding, zspage tails, free slots, tables).
 * BENCH_ALLOC_ONLY=zsmalloc (or zbud) runs one backend only (and prints
 * no ratios), for perf record.
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "zpool.h"
#include "zsmalloc_int.h"

#define BLOCK	  4096u
#define RAW_ABOVE (BLOCK * 3 / 4)

struct object {
	uint64_t off; /* in data */
	uint32_t len;
};

static unsigned char *data; /* the stored bytes of every object, end to end */
static struct object *objs;
static size_t nobjs;
static uint64_t stored;
/* Slot i of a run holds the bytes of object which[i] (churn changes it). */
static size_t *which;

struct run {
	const char *type;
	bool owners;
	uint64_t total, churned, compacted_total;
	uint64_t stored_churned; /* bytes stored after the churn */
	long compacted_pages;
	double churn1, churn2, map1, map2; /* ops/s */
};

static void die(const char *what)
{
	fprintf(stderr, "bench_alloc: %s\n", what);
	exit(1);
}

/* Reads and compresses @path; fills data, objs, nobjs, stored. */
static void load(const char *path, uint64_t limit)
{
	static char in[BLOCK], out[LZ4_COMPRESSBOUND(BLOCK)];
	uint64_t nblocks, zero = 0, raw = 0;
	struct stat stt;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &stt) < 0) {
		perror(path);
		exit(1);
	}
	if (limit == 0 || limit > (uint64_t)stt.st_size)
		limit = (uint64_t)stt.st_size;
	nblocks = limit / BLOCK;
	data = malloc(nblocks * BLOCK);
	objs = calloc(nblocks, sizeof(*objs));
	which = calloc(nblocks, sizeof(*which));
	if (!data || !objs || !which)
		die("out of memory");
	for (uint64_t b = 0; b < nblocks; b++) {
		struct object *o = &objs[nobjs];
		bool allzero = true;
		int len;

		if (pread(fd, in, BLOCK, (off_t)(b * BLOCK)) != BLOCK)
			die("short read");
		for (unsigned int i = 0; i < BLOCK && allzero; i++)
			allzero = in[i] == 0;
		if (allzero) {
			zero++;
			continue;
		}
		len = LZ4_compress_default(in, out, BLOCK, sizeof(out));
		if (len <= 0)
			die("LZ4_compress_default failed");
		o->off = stored;
		if ((unsigned int)len > RAW_ABOVE) {
			o->len = BLOCK;
			memcpy(data + stored, in, BLOCK);
			raw++;
		} else {
			o->len = (uint32_t)len;
			memcpy(data + stored, out, (size_t)len);
		}
		stored += o->len;
		nobjs++;
	}
	close(fd);
	printf("bench-alloc: %s, first %llu MiB: %llu blocks of 4 KiB, "
	       "%llu zero (skipped), %llu stored raw (LZ4 > %u bytes), "
	       "%zu objects, %.1f MiB stored (%.1f%% of the non-zero data)\n",
	       path, (unsigned long long)(limit >> 20),
	       (unsigned long long)nblocks, (unsigned long long)zero,
	       (unsigned long long)raw, RAW_ABOVE, nobjs,
	       (double)stored / (1 << 20),
	       100.0 * (double)stored / (double)((nblocks - zero) * BLOCK));
}

static int evict_refuse(void *ctx, struct zpool *pool, unsigned long handle,
			uint64_t owner)
{
	(void)ctx, (void)pool, (void)handle, (void)owner;
	return -EBUSY;
}

static void store(struct zpool *pool, unsigned long *h, size_t i)
{
	void *p;

	if (zpool_malloc(pool, objs[i].len, i, &h[i]) != 0)
		die("zpool_malloc failed");
	which[i] = i;
	p = zpool_map_handle(pool, h[i], ZPOOL_MM_WO);
	memcpy(p, data + objs[i].off, objs[i].len);
	zpool_unmap_handle(pool, h[i]);
}

static void verify(struct zpool *pool, const unsigned long *h, const char *when)
{
	for (size_t i = 0; i < nobjs; i++) {
		const struct object *o = &objs[which[i]];
		const void *p = zpool_map_handle(pool, h[i], ZPOOL_MM_RO);
		int bad = memcmp(p, data + o->off, o->len);

		zpool_unmap_handle(pool, h[i]);
		if (bad) {
			fprintf(stderr,
				"bench_alloc: %s: object %zu wrong %s\n",
				zpool_get_type(pool), i, when);
			exit(1);
		}
	}
}

struct worker {
	struct zpool *pool;
	unsigned long *h;
	size_t first, count; /* the objects this worker owns */
	size_t ops;
	uint64_t seed;
	bool map; /* map+unmap, else free+malloc */
	double secs;
	volatile unsigned long sink;
};

/*
 * Churn: overwrites a quarter of its objects, picked at random: each is
 * freed and allocated again with the size of another object picked at
 * random (timed), then written (not timed). Map: maps random objects
 * read-only and reads a byte (timed).
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t n = w->ops;
	size_t *pick = malloc(n * sizeof(*pick));
	double t;

	if (!pick)
		die("out of memory");
	for (size_t k = 0; k < n; k++)
		pick[k] = w->first + rnd(&w->seed) % w->count;
	if (w->map) {
		unsigned long sum = 0;

		t = now_s();
		for (size_t k = 0; k < n; k++) {
			const unsigned char *p = zpool_map_handle(
				w->pool, w->h[pick[k]], ZPOOL_MM_RO);

			sum += p[objs[which[pick[k]]].len - 1];
			zpool_unmap_handle(w->pool, w->h[pick[k]]);
		}
		w->secs = now_s() - t;
		w->sink = sum;
	} else {
		/* Distinct objects, each freed and allocated again once. */
		bool *seen = calloc(w->count, sizeof(*seen));
		size_t m = 0;

		if (!seen)
			die("out of memory");
		for (size_t k = 0; k < n; k++) {
			if (!seen[pick[k] - w->first]) {
				seen[pick[k] - w->first] = true;
				pick[m++] = pick[k];
			}
		}
		free(seen);
		t = now_s();
		for (size_t k = 0; k < m; k++) {
			size_t i = pick[k], j = (size_t)(rnd(&w->seed) % nobjs);

			/* An overwrite: the new data compress differently. */
			zpool_free(w->pool, w->h[i]);
			if (zpool_malloc(w->pool, objs[j].len, i, &w->h[i]))
				die("zpool_malloc failed");
			which[i] = j;
		}
		w->secs = now_s() - t;
		w->ops = 2 * m;
		for (size_t k = 0; k < m; k++) {
			const struct object *o = &objs[which[pick[k]]];
			void *p = zpool_map_handle(w->pool, w->h[pick[k]],
						   ZPOOL_MM_WO);

			memcpy(p, data + o->off, o->len);
			zpool_unmap_handle(w->pool, w->h[pick[k]]);
		}
	}
	free(pick);
	return NULL;
}

/* Runs @nthreads workers over disjoint halves. Return: ops/s overall. */
static double parallel(struct zpool *pool, unsigned long *h, int nthreads,
		       bool map, size_t ops_each, uint64_t seed)
{
	struct worker w[2];
	pthread_t tid[2];
	double secs = 0;
	size_t ops = 0;

	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){
			.pool = pool,
			.h = h,
			.first = nobjs / (size_t)nthreads * (size_t)i,
			.count = nobjs / (size_t)nthreads,
			.ops = ops_each,
			.seed = seed + (uint64_t)i,
			.map = map,
		};
		if (pthread_create(&tid[i], NULL, worker_main, &w[i]))
			die("pthread_create failed");
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		ops += w[i].ops;
		if (w[i].secs > secs)
			secs = w[i].secs;
	}
	return (double)ops / secs;
}

/* Where zsmalloc's overhead goes (BENCH_ALLOC_PROFILE=1). */
static void profile(struct zpool *pool)
{
	unsigned int nc = zs_test_nr_classes(pool);
	uint64_t round = 0, tail = 0, free_slots = 0, zspages = 0, classes = 0;
	struct zs_pool *zp = zs_pool_of(pool);
	uint64_t total = zpool_get_total_size(pool);

	for (size_t i = 0; i < nobjs; i++) {
		struct zs_class_info ci;
		unsigned int c = zs_test_size_class(pool, objs[i].len);

		zs_test_class_info(pool, c, &ci);
		round += ci.slot - objs[i].len;
	}
	for (unsigned int c = 0; c < nc; c++) {
		struct zs_class_info ci;

		zs_test_class_info(pool, c, &ci);
		if (!ci.nr_objs)
			continue;
		classes++;
		zspages += ci.nr_zspages * ci.pages * ZS_PAGE_SIZE;
		tail += ci.nr_zspages *
			(ci.pages * ZS_PAGE_SIZE - ci.objs * ci.slot);
		free_slots += (ci.nr_zspages * ci.objs - ci.nr_objs) * ci.slot;
	}
	printf("  profile %s owners=%s: %llu classes in use of %u; of the "
	       "overhead, in %% of stored: slot header and rounding %.3f, "
	       "zspage tails %.3f, free slots %.3f, handle and zspage "
	       "tables and bookkeeping %.3f (handles %llu, zspages %llu)\n",
	       zpool_get_type(pool), zp->shrinkable ? "yes" : "no",
	       (unsigned long long)classes, nc,
	       100.0 * (double)round / (double)stored,
	       100.0 * (double)tail / (double)stored,
	       100.0 * (double)free_slots / (double)stored,
	       100.0 * (double)(total - zspages) / (double)stored,
	       (unsigned long long)zs_table_used(&zp->handles),
	       (unsigned long long)zs_table_used(&zp->zspages));
}

static void run(struct run *r, bool prof)
{
	const struct zpool_ops ops = {evict_refuse, NULL};
	struct zpool *pool =
		zpool_create_pool(r->type, r->owners ? &ops : NULL, false);
	unsigned long *h = calloc(nobjs, sizeof(*h));
	size_t quarter = nobjs / 4;

	if (!pool || !h)
		die("cannot create the pool");
	for (size_t i = 0; i < nobjs; i++)
		store(pool, h, i);
	r->total = zpool_get_total_size(pool);
	verify(pool, h, "after the fill");
	if (prof && strcmp(r->type, ZPOOL_TYPE_ZSMALLOC) == 0)
		profile(pool);

	r->map1 = parallel(pool, h, 1, true, nobjs, 1);
	r->map2 = parallel(pool, h, 2, true, nobjs / 2, 2);
	r->churn1 = parallel(pool, h, 1, false, quarter, 3);
	r->churn2 = parallel(pool, h, 2, false, quarter / 2, 4);
	r->churned = zpool_get_total_size(pool);
	for (size_t i = 0; i < nobjs; i++)
		r->stored_churned += objs[which[i]].len;
	r->compacted_pages = zpool_compact(pool);
	r->compacted_total = zpool_get_total_size(pool);
	verify(pool, h, "after churn and compaction");
	for (size_t i = 0; i < nobjs; i++)
		zpool_free(pool, h[i]);
	zpool_destroy_pool(pool);
	free(h);
}

static double pct(uint64_t total, uint64_t bytes)
{
	return 100.0 * ((double)total / (double)bytes - 1);
}

int main(int argc, char **argv)
{
	struct run runs[] = {
		{.type = ZPOOL_TYPE_ZSMALLOC, .owners = false},
		{.type = ZPOOL_TYPE_ZSMALLOC, .owners = true},
		{.type = ZPOOL_TYPE_ZBUD, .owners = false},
		{.type = ZPOOL_TYPE_ZBUD, .owners = true},
	};
	const char *env = getenv("BENCH_ALLOC_PROFILE");
	const char *only = getenv("BENCH_ALLOC_ONLY");
	bool prof = env && *env && strcmp(env, "0") != 0;
	const double mib = 1 << 20;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_alloc FILE [MiB]\n");
		return 2;
	}
	load(argv[1], argc == 3 ? strtoull(argv[2], NULL, 0) << 20 : 0);
	if (!nobjs)
		die("no data");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		if (!only || strcmp(only, runs[i].type) == 0)
			run(&runs[i], prof);

	printf("\n%-9s %-6s %9s %10s %10s %9s %10s %10s %10s %10s %10s %10s\n",
	       "backend", "owners", "objects", "stored", "total", "overhead",
	       "churned", "compacted", "malloc+free", "(2 thr)", "map+unmap",
	       "(2 thr)");
	printf("%-9s %-6s %9s %10s %10s %9s %10s %10s %10s %10s %10s %10s\n",
	       "", "", "", "MiB", "MiB", "", "overhead", "overhead", "ops/s",
	       "ops/s", "ops/s", "ops/s");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		const struct run *r = &runs[i];

		if (!r->total)
			continue; /* not run */
		printf("%-9s %-6s %9zu %10.1f %10.1f %8.2f%% %9.2f%% %9.2f%% "
		       "%10.0f %10.0f %10.0f %10.0f\n",
		       r->type, r->owners ? "yes" : "no", nobjs,
		       (double)stored / mib, (double)r->total / mib,
		       pct(r->total, stored),
		       pct(r->churned, r->stored_churned),
		       pct(r->compacted_pages < 0 ? r->churned
						  : r->compacted_total,
			   r->stored_churned),
		       r->churn1, r->churn2, r->map1, r->map2);
	}
	if (only)
		return 0;
	printf("\nratios, zsmalloc / zbud (same owners setting): memory "
	       "(total_size) %.2fx and %.2fx, malloc+free %.2fx, "
	       "map+unmap %.2fx\n",
	       (double)runs[0].total / (double)runs[2].total,
	       (double)runs[1].total / (double)runs[3].total,
	       runs[0].churn1 / runs[2].churn1, runs[0].map1 / runs[2].map1);
	printf("zsmalloc overhead target <= 2.0%%: %.2f%% without owner "
	       "words, %.2f%% with\n",
	       pct(runs[0].total, stored), pct(runs[1].total, stored));
	return 0;
}
