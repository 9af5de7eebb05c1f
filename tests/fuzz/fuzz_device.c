/* SPDX-License-Identifier: MIT */
/*
 * fuzz_device.c - device request sequences against a shadow byte array
 *
 * Drives the device core (daemon/device.h) directly, with no nbdkit: the
 * requests the plugin would pass on, at any offset and length, with data
 * of mixed compressibility, checked byte for byte against a shadow copy.
 *
 * Input: three configuration bytes, then ops.
 *
 *   byte 0  bit 0     allocator: zsmalloc or zbud
 *           bits 1-2  mem_limit: none, 512K (ZDEV_MEM_LIMIT_MIN), 576K,
 *                     768K
 *           bit 3     attach a backing file (daemon/backing.c, in a
 *                     tmpfs directory) through zdev_set_backing()
 *           bit 4     shrinkable pool (always, with a backing file)
 *           bits 5-7  huge_threshold: 3072 1 64 512 2048 3000 4000 4095
 *   byte 1  bits 0-1  acceleration: 1 2 17 65537
 *           bits 2-4  device size: 1M, 1M+1234, 12388, 0, 2^63-1,
 *                     2^40+777, 4096, 1M
 *           bits 5-6  backing file size: 64K 128K 1M 4M
 *           bit 7     hooks in the backing store() callback: each call
 *                     reads a byte that says what happens while the
 *                     evicted object is being written (see bk_store)
 *   byte 2  bit 0     the write path's hooks (zdev_set_hooks(), with a
 *                     backing file), the shrinker played synchronously:
 *                     wait_room() evicts down to 80% of mem_limit and
 *                     says whether that made progress
 *           bit 1     kick() also evicts down to 80% once the pool is
 *                     past 90% (the shrinker's high watermark)
 *           bit 2     the cold tier on: recompress_level 3 (packs)
 *           bit 3     the hot path's codec is zstd:1 instead of LZ4
 *
 * Requests stay inside a window of at most 1 MiB at the end of the device
 * (its start unaligned when the size is), so a device of 2^63-1 bytes
 * needs no more shadow than a small one, and offsets near the top of the
 * range are exercised. Ops:
 *
 *   write OFF LEN KIND ...  data: zeroes, one repeated word, text, random,
 *                           input bytes, per-sector mix, sparse, one byte
 *   read OFF LEN            must succeed and match the shadow
 *   zero OFF LEN            zdev_zero()
 *   trim OFF LEN            zdev_trim(): whole sectors must read as zeroes,
 *                           partial pieces as zeroes or as before (advisory)
 *   extents OFF LEN FLAGS   in order, contiguous, covering the request,
 *                           sector aligned; a hole must read as zeroes;
 *                           req_one; a callback that stops the walk
 *   shrink SIZE             zpool_shrink() on the device's pool (evicts
 *                           through zdev_evict() to the backing file)
 *   idle STOP               zdev_evict_idle(), one mark-and-sweep pass of
 *                           idle writeback, stopped early after STOP calls
 *                           of its stop callback (0: never)
 *   recompress MODE STOP    zdev_recompress(): a mark-and-sweep pass or
 *                           one under pressure (every hot sector, sparse
 *                           packs repacked), stopped early after STOP
 *                           calls; then every byte must read back
 *   evictpacks N            zdev_evict_packs() of N KiB of packs to the
 *                           backing file (store hooks race it as above)
 *   compact, flush, stats   stats are checked against the shadow
 *   bad                     requests out of range must be -EINVAL and
 *                           counted in invalid_io
 *
 * A write that fails with -ENOSPC must leave the sectors before the one
 * that failed new and the rest old (device.h); the target reads the range
 * back and checks exactly that. At the end the window is trimmed, and the
 * device must then hold nothing: no stored sectors, no backing slots, a
 * pool back near its starting size.
 *
 * Not covered: concurrency (this is one thread), the shrinker thread
 * (daemon/shrinker.c, daemon/writeback.c: played synchronously here, with
 * backing ops of this file's own, so that stores can fail and race),
 * backing-file corruption (fuzz_backing.c covers the record reader).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "codec.h"
#include "device.h"
#include "fuzz.h"
#include "stats.h"
#include "zpool.h"

#define MAX_OPS 400
#define WINDOW (1u << 20)
#define SECTOR 4096u
/* The longest request: a few sectors, so that requests span several. */
#define MAX_LEN (4 * SECTOR + 1000)
#define EMPTY_SLACK (64u * 1024)
#define MEM_LIMIT_SLACK (16u * 1024)

struct dev_model {
	struct zdev *dev;
	struct zdev_config cfg;
	uint64_t size, base, wlen; /* device size; the window [base, +wlen) */
	unsigned char *shadow;	   /* wlen bytes */
	struct backing *bk;
	char bk_path[512];
	bool store_hooks;
	bool hooks, eager_kick;
	bool packs_evicted; /* a backing slot may hold several sectors */
	bool in_shrink; /* inside zpool_shrink() or zdev_evict_idle() */
	/* The request in progress, whose sectors the shadow does not know
	 * yet (it may be part way through when the hooks run). */
	uint64_t busy_off, busy_len;
	unsigned int stop_after, stop_calls;
	uint64_t invalid, failed_writes, failed_reads;
	uint64_t base_total; /* the empty pool's size */
	struct fin in;
};

static struct dev_model d;
static unsigned char buf[MAX_LEN], rbuf[MAX_LEN];

static const unsigned int huge_thresholds[8] = { 3072, 1,    64,   512,
						  2048, 3000, 4000, 4095 };
static const int accels[4] = { 1, 2, 17, 65537 };
static const uint64_t mem_limits[4] = { 0, ZDEV_MEM_LIMIT_MIN, 576 << 10,
					768 << 10 };
static const uint64_t bk_sizes[4] = { 64 << 10, 128 << 10, 1 << 20,
				      4 << 20 };

/* --- the backing file, as the plugin would attach it --------------------- */

static void race(uint64_t sector, uint8_t how);

/*
 * The backing file's store(). zdev_evict() calls it with no lock held,
 * from inside the pool's evict callback; with store hooks on, a byte of
 * the input says what else happens meanwhile: nothing, a failed store
 * (-EIO), or another thread's request on the very sector being evicted
 * (overwrite, partial write, trim, zero), which zdev_evict() must notice
 * so that neither update is lost (the eviction race of zpool.h).
 * store_hook() is that byte's work, shared with bk_store_pack(): -EIO or 0.
 */
static int store_hook(uint64_t sector)
{
	uint8_t how;

	if (!d.store_hooks)
		return 0;
	how = fin_u8(&d.in);
	if (how % 8 == 3)
		return -EIO;
	if (how % 8 >= 4)
		race(sector, how);
	return 0;
}

static int64_t bk_store(void *ctx, uint64_t sector, const void *data,
			unsigned int len)
{
	uint64_t slot;
	int r;

	(void)ctx;
	r = store_hook(sector);
	if (r < 0)
		return r;
	r = backing_write(d.bk, sector, data, len,
			  len == SECTOR ? 0 : BACKING_FLAG_COMPRESSED, &slot);
	if (r < 0)
		return r;
	return (int64_t)slot;
}

static int bk_load(void *ctx, uint64_t slot, uint64_t sector, void *out,
		   unsigned int len)
{
	unsigned int flags;
	size_t got;
	int r;

	(void)ctx;
	r = backing_read(d.bk, slot, sector, out, len, &got, &flags);
	if (r < 0)
		return r;
	FUZZ_CHECK(got == len, "slot %llu of sector %llu: %zu bytes, the "
		   "table says %u", (unsigned long long)slot,
		   (unsigned long long)sector, got, len);
	FUZZ_CHECK(!!(flags & BACKING_FLAG_COMPRESSED) == (len != SECTOR),
		   "slot flags %#x for a %u-byte object", flags, len);
	return 0;
}

/* As bk_store(), for a pack: the race hits the pack's first sector. */
static int64_t bk_store_pack(void *ctx, uint64_t base, const void *data,
			     unsigned int len)
{
	uint64_t slot;
	int r;

	(void)ctx;
	r = store_hook(base);
	if (r < 0)
		return r;
	r = backing_write(d.bk, base, data, len, BACKING_FLAG_PACK, &slot);
	if (r < 0)
		return r;
	d.packs_evicted = true;
	return (int64_t)slot;
}

static int bk_load_pack(void *ctx, uint64_t slot, uint64_t base, void *out,
			unsigned int len)
{
	unsigned int flags;
	size_t got;
	int r;

	(void)ctx;
	r = backing_read(d.bk, slot, base, out, len, &got, &flags);
	if (r < 0)
		return r;
	FUZZ_CHECK(got == len && flags == BACKING_FLAG_PACK,
		   "pack slot %llu: %zu bytes, flags %#x",
		   (unsigned long long)slot, got, flags);
	return 0;
}

static void bk_release(void *ctx, uint64_t slot)
{
	(void)ctx;
	backing_free(d.bk, slot);
}

/* --- data ------------------------------------------------------------------ */

static const char *const words[] = {
	"the ", "zram ", "sector ", "of ", "data ", "\n", "compress ",
	"0123456789", "lz4 ", "    ", "block ", "page ", "\t", "nbd ",
};

/* Fills @len bytes at @p of the kind @kind, from the input and a seed. */
static void gen(unsigned char *p, size_t len, uint8_t kind, uint64_t seed)
{
	uint64_t word = seed * UINT64_C(0x9e3779b97f4a7c15);
	size_t i, k;

	switch (kind % 8) {
	case 0:
		memset(p, 0, len);
		break;
	case 1: /* one repeated 8-byte word (same-filled if aligned) */
		for (i = 0; i < len; i++)
			p[i] = (unsigned char)(word >> (8 * (i % 8)));
		break;
	case 2: /* text: compresses, not same-filled */
		for (i = 0; i < len;) {
			const char *w = words[fuzz_rand(&seed) % 14];

			for (k = 0; w[k] && i < len; k++)
				p[i++] = (unsigned char)w[k];
		}
		break;
	case 3:
		fuzz_fill_random(p, len, seed);
		break;
	case 4: /* the input itself, random after it runs out */
		k = fin_bytes(&d.in, p, len);
		fuzz_fill_random(p + k, len - k, seed);
		break;
	case 5: /* a different kind every sector */
		for (i = 0; i < len; i += k) {
			/* Two statements: the order of arguments' evaluation
			 * is unspecified, and inputs must replay the same
			 * whatever the compiler. */
			uint8_t sub = (uint8_t)(fuzz_rand(&seed) % 4);
			uint64_t sub_seed = fuzz_rand(&seed);

			k = len - i < SECTOR ? len - i : SECTOR;
			gen(p + i, k, sub, sub_seed);
		}
		break;
	case 6: /* sparse: a few bytes in zeroes */
		memset(p, 0, len);
		for (k = 0; len && k < 1 + seed % 4; k++)
			p[fuzz_rand(&seed) % len] = (unsigned char)(seed | 1);
		break;
	default:
		memset(p, (int)(seed & 0xff), len);
		break;
	}
}

/* --- the model ------------------------------------------------------------- */

/* A request inside the window: offset relative to the device. */
static void pick_range(uint64_t *off, size_t *len)
{
	uint8_t how = fin_u8(&d.in);
	uint32_t o = fin_u32(&d.in) % (uint32_t)(d.wlen + 1);
	uint16_t l = fin_u16(&d.in);
	uint32_t r;

	switch (how % 4) {
	case 0: /* sector aligned, whole sectors */
		r = (uint32_t)((d.base + o) % SECTOR);
		o = r <= o ? o - r : o + (SECTOR - r);
		if (o > d.wlen)
			o = (uint32_t)d.wlen;
		*len = SECTOR * (1 + l % 4);
		break;
	case 1: /* small */
		*len = l % 600;
		break;
	case 2: /* ends at the window's end */
		*len = d.wlen - o;
		break;
	default:
		*len = l % MAX_LEN;
		break;
	}
	if (*len > MAX_LEN)
		*len = MAX_LEN;
	if (*len > d.wlen - o)
		*len = d.wlen - o;
	*off = d.base + o;
}

static unsigned char *shadow_at(uint64_t off)
{
	return d.shadow + (off - d.base);
}

/*
 * After a request that may have changed only a prefix of its sectors
 * (zdev_write(), zdev_zero() failing part way): read the range back and
 * check that every piece before some point equals @want and every piece
 * after it the old contents. The shadow then follows the device.
 */
static void reconcile_prefix(uint64_t off, size_t len, const unsigned char *want,
			     const char *what)
{
	bool old_part = false;
	size_t done, n;
	int r = zdev_read(d.dev, rbuf, len, off);

	FUZZ_CHECK(r == 0, "%s: read back after a failure: %d", what, r);
	for (done = 0; done < len; done += n) {
		uint64_t o = (off + done) % SECTOR;
		bool is_new, is_old;

		n = SECTOR - o < len - done ? SECTOR - o : len - done;
		is_new = memcmp(rbuf + done, want + done, n) == 0;
		is_old = memcmp(rbuf + done, shadow_at(off + done), n) == 0;
		if (!old_part && !is_new)
			old_part = true;
		FUZZ_CHECK(old_part ? is_old : is_new,
			   "%s [%llu, +%zu) failed part way: the piece at "
			   "%llu holds neither the %s bytes nor the old ones",
			   what, (unsigned long long)off, len,
			   (unsigned long long)(off + done),
			   old_part ? "old" : "new");
	}
	memcpy(shadow_at(off), rbuf, len);
}

static void check_read(uint64_t off, size_t len, const char *what)
{
	int r = zdev_read(d.dev, rbuf, len, off);

	FUZZ_TRACE("%s [%llu, +%zu) -> %d", what, (unsigned long long)off, len,
		   r);
	FUZZ_CHECK(r == 0, "%s: read [%llu, +%zu): %d", what,
		   (unsigned long long)off, len, r);
	if (memcmp(rbuf, shadow_at(off), len) == 0)
		return;
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(rbuf[i] == shadow_at(off)[i],
			   "%s: read [%llu, +%zu): byte at %llu (sector %llu "
			   "+ %llu) is %#x, expected %#x",
			   what, (unsigned long long)off, len,
			   (unsigned long long)(off + i),
			   (unsigned long long)((off + i) / SECTOR),
			   (unsigned long long)((off + i) % SECTOR), rbuf[i],
			   shadow_at(off)[i]);
}

/*
 * A request on @sector from "another thread", made while the sector's
 * object is being evicted: one sector only, so if it fails (-ENOSPC at
 * mem_limit) the sector must simply be as it was.
 */
static void race(uint64_t sector, uint8_t how)
{
	static unsigned char data[SECTOR], back[SECTOR];
	uint64_t off = sector * SECTOR, lo, hi;
	size_t o = (how >> 3) * 97 % SECTOR, n = SECTOR - o;
	int r;

	/* Only the part of the sector inside the window is modelled. */
	lo = off > d.base ? off : d.base;
	hi = off + SECTOR < d.base + d.wlen ? off + SECTOR : d.base + d.wlen;
	if (lo >= hi)
		return;
	/* A sector of the request in progress: its contents are that
	 * request's business until it returns (see reconcile_prefix). */
	if (lo < d.busy_off + d.busy_len && d.busy_off < hi) {
		FUZZ_TRACE("  during eviction of sector %llu: (in the request "
			   "in progress)", (unsigned long long)sector);
		return;
	}
	gen(data, SECTOR, how >> 3, sector ^ how);
	FUZZ_TRACE("  during eviction of sector %llu: %s [%llu, %llu)",
		   (unsigned long long)sector,
		   how % 8 == 4	  ? "write"
		   : how % 8 == 5 ? "partial write"
		   : how % 8 == 6 ? "trim"
				  : "zero",
		   (unsigned long long)lo, (unsigned long long)hi);
	switch (how % 8) {
	case 4: /* overwrite what is in the window (twice: the second
		 * object may get the evicted one's freed handle) */
		r = zdev_write(d.dev, data, hi - lo, lo, false);
		if (r == 0)
			memcpy(shadow_at(lo), data, hi - lo);
		if (r == 0 && (how & 0x40)) {
			gen(data, SECTOR, (how >> 3) + 1, sector + how);
			r = zdev_write(d.dev, data, hi - lo, lo, false);
			if (r == 0)
				memcpy(shadow_at(lo), data, hi - lo);
		}
		break;
	case 5: /* a partial write */
		lo = lo + o < hi ? lo + o : lo;
		n = hi - lo < n ? hi - lo : n;
		r = zdev_write(d.dev, data, n, lo, false);
		if (r == 0)
			memcpy(shadow_at(lo), data, n);
		break;
	case 6:
		r = zdev_trim(d.dev, hi - lo, lo);
		FUZZ_CHECK(r == 0, "trim during eviction: %d", r);
		r = zdev_read(d.dev, back, hi - lo, lo);
		FUZZ_CHECK(r == 0, "read during eviction: %d", r);
		FUZZ_CHECK(fuzz_all_zero(back, hi - lo) ||
				   (hi - lo != SECTOR &&
				    memcmp(back, shadow_at(lo), hi - lo) == 0),
			   "trim during eviction of sector %llu: neither zeroes "
			   "nor the old bytes",
			   (unsigned long long)sector);
		memcpy(shadow_at(lo), back, hi - lo);
		r = 0;
		break;
	default:
		r = zdev_zero(d.dev, hi - lo, lo);
		if (r == 0)
			memset(shadow_at(lo), 0, hi - lo);
		break;
	}
	FUZZ_TRACE("  -> %d", r);
	if (r < 0) {
		FUZZ_CHECK(r == -ENOSPC && d.cfg.mem_limit,
			   "request during eviction of sector %llu: %d",
			   (unsigned long long)sector, r);
		d.failed_writes++;
	}
	r = zdev_read(d.dev, back, hi - lo, lo);
	FUZZ_CHECK(r == 0, "read during eviction: %d", r);
	FUZZ_CHECK(memcmp(back, shadow_at(lo), hi - lo) == 0,
		   "sector %llu, changed while it was being evicted, does not "
		   "read back as written",
		   (unsigned long long)sector);
}

/*
 * The shrinker, played synchronously: evict down to 80% of mem_limit.
 * Return: the bytes released.
 */
static size_t play_shrinker(const char *why)
{
	uint64_t total = zpool_get_total_size(zdev_pool(d.dev));
	uint64_t low = d.cfg.mem_limit / 10 * 8;
	size_t released = 0;
	int r;

	FUZZ_TRACE("  %s: pool %llu, limit %llu", why, (unsigned long long)total,
		   (unsigned long long)d.cfg.mem_limit);
	if (total <= low)
		return 0;
	d.in_shrink = true;
	r = zpool_shrink(zdev_pool(d.dev), total - low, &released);
	d.in_shrink = false;
	FUZZ_TRACE("  %s: shrink %llu -> %d, released %zu", why,
		   (unsigned long long)(total - low), r, released);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENOSPC ||
			   (r == -EIO && d.store_hooks),
		   "shrink for the write path returned %d", r);
	return released;
}

/* The device's hooks (zdev_set_hooks), as writeback.c gives them. */
static void hook_kick(void *ctx)
{
	(void)ctx;
	/* Inside a shrink, the shrinker is busy: it will see the pool. */
	if (!d.eager_kick || d.in_shrink ||
	    zpool_get_total_size(zdev_pool(d.dev)) <= d.cfg.mem_limit / 10 * 9)
		return;
	(void)play_shrinker("kick");
}

static int hook_wait_room(void *ctx, unsigned int timeout_ms)
{
	(void)ctx;
	FUZZ_CHECK(timeout_ms > 0, "wait_room with no time to wait");
	if (d.in_shrink)
		return -ENOSPC; /* the shrinker thread is in its own work */
	return play_shrinker("wait_room") ? 0 : -ENOSPC;
}

static void do_write(uint64_t off, size_t len, uint8_t kind, uint64_t seed)
{
	int r;

	gen(buf, len, kind, seed);
	FUZZ_TRACE("write [%llu, +%zu) kind %u", (unsigned long long)off, len,
		   kind % 8);
	d.busy_off = off;
	d.busy_len = len;
	r = zdev_write(d.dev, buf, len, off, kind & 0x80);
	d.busy_len = 0;
	FUZZ_TRACE("  -> %d (pool %llu)", r,
		   (unsigned long long)zpool_get_total_size(zdev_pool(d.dev)));
	if (r == 0) {
		memcpy(shadow_at(off), buf, len);
		return;
	}
	d.failed_writes++;
	FUZZ_CHECK(r == -ENOSPC && d.cfg.mem_limit,
		   "write [%llu, +%zu) returned %d (mem_limit %llu)",
		   (unsigned long long)off, len, r,
		   (unsigned long long)d.cfg.mem_limit);
	reconcile_prefix(off, len, buf, "write");
}

static void do_zero(uint64_t off, size_t len)
{
	int r;

	d.busy_off = off;
	d.busy_len = len;
	r = zdev_zero(d.dev, len, off);
	d.busy_len = 0;
	FUZZ_TRACE("zero [%llu, +%zu) -> %d", (unsigned long long)off, len, r);
	if (r == 0) {
		memset(shadow_at(off), 0, len);
		return;
	}
	d.failed_writes++;
	FUZZ_CHECK(r == -ENOSPC && d.cfg.mem_limit,
		   "zero [%llu, +%zu) returned %d", (unsigned long long)off,
		   len, r);
	memset(buf, 0, len);
	reconcile_prefix(off, len, buf, "zero");
}

static void do_trim(uint64_t off, size_t len)
{
	size_t done, n;
	int r;

	d.busy_off = off;
	d.busy_len = len;
	r = zdev_trim(d.dev, len, off);
	d.busy_len = 0;
	FUZZ_TRACE("trim [%llu, +%zu) -> %d", (unsigned long long)off, len, r);
	FUZZ_CHECK(r == 0, "trim [%llu, +%zu) returned %d",
		   (unsigned long long)off, len, r);
	r = zdev_read(d.dev, rbuf, len, off);
	FUZZ_CHECK(r == 0, "read after trim: %d", r);
	for (done = 0; done < len; done += n) {
		uint64_t o = (off + done) % SECTOR;
		bool zero;

		n = SECTOR - o < len - done ? SECTOR - o : len - done;
		zero = fuzz_all_zero(rbuf + done, n);
		if (n == SECTOR)
			FUZZ_CHECK(zero, "trim: whole sector %llu not zero",
				   (unsigned long long)((off + done) / SECTOR));
		else
			FUZZ_CHECK(zero || memcmp(rbuf + done,
						  shadow_at(off + done),
						  n) == 0,
				   "trim: partial piece at %llu is neither "
				   "zeroes nor the old bytes",
				   (unsigned long long)(off + done));
	}
	memcpy(shadow_at(off), rbuf, len);
}

struct ext_walk {
	uint64_t off, len, next;
	int n, stop_after;
	bool req_one;
};

static int ext_cb(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	struct ext_walk *w = arg;
	uint64_t lo, hi;

	FUZZ_CHECK(len > 0, "extent of length 0 at %llu",
		   (unsigned long long)off);
	FUZZ_CHECK(off + len <= d.size && off + len > off,
		   "extent [%llu, +%llu) past the device end %llu",
		   (unsigned long long)off, (unsigned long long)len,
		   (unsigned long long)d.size);
	if (w->n == 0)
		FUZZ_CHECK(off <= w->off && off + len > w->off,
			   "first extent [%llu, +%llu) does not hold the "
			   "request start %llu",
			   (unsigned long long)off, (unsigned long long)len,
			   (unsigned long long)w->off);
	else
		FUZZ_CHECK(off == w->next,
			   "extent at %llu, previous one ended at %llu",
			   (unsigned long long)off,
			   (unsigned long long)w->next);
	FUZZ_CHECK(off % SECTOR == 0, "extent start %llu not aligned",
		   (unsigned long long)off);
	FUZZ_CHECK((off + len) % SECTOR == 0 || off + len == d.size,
		   "extent end %llu neither aligned nor the device end",
		   (unsigned long long)(off + len));
	FUZZ_CHECK(type == 0 || type == (ZDEV_EXTENT_HOLE | ZDEV_EXTENT_ZERO),
		   "extent type %#x", type);
	FUZZ_CHECK(!w->req_one || w->n == 0, "req_one, but a second extent");
	if (type) {
		/* A hole reads as zeroes: the part inside the window. */
		lo = off > d.base ? off : d.base;
		hi = off + len < d.base + d.wlen ? off + len : d.base + d.wlen;
		if (lo < hi)
			FUZZ_CHECK(fuzz_all_zero(shadow_at(lo), hi - lo),
				   "extent [%llu, +%llu) is a hole, but the "
				   "shadow holds data in it",
				   (unsigned long long)off,
				   (unsigned long long)len);
	}
	w->n++;
	w->next = off + len;
	if (w->stop_after && w->n == w->stop_after)
		return -EINTR;
	return 0;
}

static void do_extents(uint64_t off, size_t len, uint8_t flags)
{
	struct ext_walk w = { .off = off, .len = len, .req_one = flags & 1,
			      .stop_after = (flags >> 1) % 4 };
	int r = zdev_extents(d.dev, len, off, w.req_one, ext_cb, &w);

	if (len == 0) {
		struct zstats st;

		/* device.h: len is 1 or more. Whether invalid_io counts it
		 * is not said; follow the device. */
		FUZZ_CHECK(r == -EINVAL && w.n == 0, "extents of length 0: %d",
			   r);
		zdev_get_stats(d.dev, &st);
		FUZZ_CHECK(st.v[ZSTAT_invalid_io] - d.invalid <= 1,
			   "invalid_io");
		d.invalid = st.v[ZSTAT_invalid_io];
		return;
	}
	if (w.stop_after && w.n == w.stop_after) {
		FUZZ_CHECK(r == -EINTR, "extents: the callback stopped the "
			   "walk with -EINTR, zdev_extents() returned %d", r);
		return;
	}
	FUZZ_CHECK(r == 0, "extents [%llu, +%zu): %d", (unsigned long long)off,
		   len, r);
	FUZZ_CHECK(w.n >= 1, "extents: no extent");
	if (!w.req_one)
		FUZZ_CHECK(w.next >= off + len,
			   "extents end at %llu, the request at %llu",
			   (unsigned long long)w.next,
			   (unsigned long long)(off + len));
}

static void do_shrink(size_t size)
{
	size_t released = 0;
	int r;

	d.in_shrink = true;
	r = zpool_shrink(zdev_pool(d.dev), size, &released);
	d.in_shrink = false;
	FUZZ_TRACE("shrink %zu -> %d, released %zu", size, r, released);
	if (!d.cfg.shrinkable) {
		FUZZ_CHECK(r == -EINVAL, "shrink, no evict callback: %d", r);
		return;
	}
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -ENOSPC ||
			   (r == -EIO && d.store_hooks),
		   "shrink(%zu) returned %d", size, r);
	if (!d.bk)
		FUZZ_CHECK(r != 0 || size == 0,
			   "shrink(%zu) with no backing file returned 0 "
			   "(released %zu)",
			   size, released);
}

static bool idle_stop(void *arg)
{
	FUZZ_CHECK(arg == &d, "stop callback argument");
	return d.stop_after && ++d.stop_calls >= d.stop_after;
}

/* One pass of idle writeback: sectors marked by the last pass go. */
static void do_idle(uint8_t stop_after)
{
	struct zdev_idle_result res = { 1, 1, 1 };
	struct zstats before, after;
	int r;

	d.stop_after = stop_after % 8;
	d.stop_calls = 0;
	zdev_get_stats(d.dev, &before);
	d.in_shrink = true;
	r = zdev_evict_idle(d.dev, idle_stop, &d, &res);
	d.in_shrink = false;
	zdev_get_stats(d.dev, &after);
	FUZZ_TRACE("idle pass (stop after %u) -> %d: evicted %llu, marked "
		   "%llu, %llu bytes", d.stop_after, r,
		   (unsigned long long)res.evicted,
		   (unsigned long long)res.marked,
		   (unsigned long long)res.bytes);
	if (!d.bk) {
		FUZZ_CHECK(r == -ENOSPC, "idle pass without a backing file: %d",
			   r);
		return;
	}
	FUZZ_CHECK(r == 0 || r == -ENOSPC || (r == -EIO && d.store_hooks),
		   "idle pass returned %d", r);
	FUZZ_CHECK(res.evicted <= after.v[ZSTAT_bd_writes] -
					  before.v[ZSTAT_bd_writes],
		   "idle pass says %llu evicted, bd_writes grew by %llu",
		   (unsigned long long)res.evicted,
		   (unsigned long long)(after.v[ZSTAT_bd_writes] -
					before.v[ZSTAT_bd_writes]));
	FUZZ_CHECK(res.evicted == 0 || res.bytes > 0,
		   "%llu sectors evicted, 0 bytes",
		   (unsigned long long)res.evicted);
}

/* One pass of the cold tier; every byte must read back after it. */
static void do_recompress(uint8_t mode, uint8_t stop_after)
{
	struct zdev_recompress_result res;
	int r;

	d.stop_after = stop_after % 8;
	d.stop_calls = 0;
	r = zdev_recompress(d.dev, mode & 1 ? ZDEV_RECOMPRESS_ALL
					    : ZDEV_RECOMPRESS_IDLE,
			    mode & 2 ? (uint64_t)(mode >> 2) * 1024 : 0,
			    idle_stop, &d, &res);
	FUZZ_TRACE("recompress (mode %u) -> %d: packed %llu in %llu packs, "
		   "marked %llu, repacks %llu",
		   mode, r, (unsigned long long)res.packed,
		   (unsigned long long)res.packs,
		   (unsigned long long)res.marked,
		   (unsigned long long)res.repacks);
	FUZZ_CHECK(r == 0, "recompress returned %d", r);
	FUZZ_CHECK(d.cfg.recompress_level || res.packed == 0,
		   "packed with the cold tier off");
	check_read(d.base, d.wlen < MAX_LEN ? d.wlen : MAX_LEN,
		   "after recompress");
}

static void do_evict_packs(uint16_t kib)
{
	uint64_t n = 0;
	int r;

	d.in_shrink = true;
	r = zdev_evict_packs(d.dev, (uint64_t)kib * 1024 + 1, NULL, NULL, &n);
	d.in_shrink = false;
	FUZZ_TRACE("evict packs %u KiB -> %d: %llu packs", kib, r,
		   (unsigned long long)n);
	if (!d.bk) {
		FUZZ_CHECK(r == -ENOSPC, "pack eviction without a file: %d", r);
		return;
	}
	FUZZ_CHECK(r == 0 || r == -ENOSPC || (r == -EIO && d.store_hooks),
		   "pack eviction returned %d", r);
	check_read(d.base, d.wlen < MAX_LEN ? d.wlen : MAX_LEN,
		   "after pack eviction");
}

/*
 * What the device must hold for the shadow: the sectors that are not
 * zero, and how the codec encodes each (same-filled, compressed to how
 * many bytes, or raw). The codec is deterministic, so this is exact.
 */
struct expect {
	uint64_t nonzero, same, huge, compr;
};

static void expected(struct expect *e)
{
	static unsigned char sec[SECTOR];
	uint64_t s, first = d.base / SECTOR,
		    last = (d.base + d.wlen + SECTOR - 1) / SECTOR;
	struct codec_out c;

	memset(e, 0, sizeof(*e));
	for (s = first; s < last; s++) {
		uint64_t lo = s * SECTOR > d.base ? s * SECTOR : d.base;
		uint64_t hi = (s + 1) * SECTOR < d.base + d.wlen
				      ? (s + 1) * SECTOR
				      : d.base + d.wlen;

		if (lo >= hi || fuzz_all_zero(shadow_at(lo), hi - lo))
			continue;
		e->nonzero++;
		/* Bytes of the sector outside the window are zero. */
		memset(sec, 0, SECTOR);
		memcpy(sec + (lo - s * SECTOR), shadow_at(lo), hi - lo);
		if (d.cfg.zstd_level)
			codec_zstd_encode(sec, d.cfg.zstd_level,
					  d.cfg.huge_threshold, &c);
		else
			codec_encode(sec, d.cfg.acceleration,
				     d.cfg.huge_threshold, &c);
		if (c.kind == CODEC_SAME)
			e->same++;
		else if (c.kind == CODEC_RAW)
			e->huge++;
		if (c.kind == CODEC_RAW || c.kind == CODEC_COMPRESSED)
			e->compr += c.len;
	}
}

static void check_stats(void)
{
	struct zstats st;
	struct backing_stats bs;
	struct expect e;
	uint64_t stored, total = zpool_get_total_size(zdev_pool(d.dev));

	expected(&e);
	zdev_get_stats(d.dev, &st);
	stored = st.v[ZSTAT_orig_data_size] / SECTOR;
	FUZZ_CHECK(st.v[ZSTAT_orig_data_size] % SECTOR == 0,
		   "orig_data_size %llu",
		   (unsigned long long)st.v[ZSTAT_orig_data_size]);
	FUZZ_CHECK(stored + st.v[ZSTAT_bd_count] == e.nonzero,
		   "%llu sectors stored + %llu on the backing file, but %llu "
		   "sectors of the shadow are not zero",
		   (unsigned long long)stored,
		   (unsigned long long)st.v[ZSTAT_bd_count],
		   (unsigned long long)e.nonzero);
	/* The cold tier's counters add up. */
	FUZZ_CHECK(st.v[ZSTAT_hot_sectors] + st.v[ZSTAT_packed_sectors] +
				   st.v[ZSTAT_same_pages] ==
			   stored,
		   "hot %llu + packed %llu + same %llu != stored %llu",
		   (unsigned long long)st.v[ZSTAT_hot_sectors],
		   (unsigned long long)st.v[ZSTAT_packed_sectors],
		   (unsigned long long)st.v[ZSTAT_same_pages],
		   (unsigned long long)stored);
	FUZZ_CHECK(st.v[ZSTAT_compr_data_size] ==
			   st.v[ZSTAT_hot_bytes] + st.v[ZSTAT_pack_bytes],
		   "compr_data_size is not hot_bytes + pack_bytes");
	FUZZ_CHECK(st.v[ZSTAT_pack_dead_bytes] <= st.v[ZSTAT_pack_bytes] &&
			   (st.v[ZSTAT_packs] == 0) ==
				   (st.v[ZSTAT_pack_bytes] == 0),
		   "packs %llu, pack_bytes %llu, dead %llu, packed %llu",
		   (unsigned long long)st.v[ZSTAT_packs],
		   (unsigned long long)st.v[ZSTAT_pack_bytes],
		   (unsigned long long)st.v[ZSTAT_pack_dead_bytes],
		   (unsigned long long)st.v[ZSTAT_packed_sectors]);
	if (!d.cfg.recompress_level)
		FUZZ_CHECK(st.v[ZSTAT_packs] == 0 &&
				   st.v[ZSTAT_recompressions] == 0,
			   "packs with the cold tier off");
	if (st.v[ZSTAT_bd_count] == 0 && st.v[ZSTAT_packs] == 0 &&
	    st.v[ZSTAT_packed_sectors] == 0)
		FUZZ_CHECK(st.v[ZSTAT_same_pages] == e.same &&
				   st.v[ZSTAT_huge_pages] == e.huge &&
				   st.v[ZSTAT_compr_data_size] == e.compr,
			   "same_pages %llu huge_pages %llu compr_data_size "
			   "%llu; the shadow encodes to %llu, %llu, %llu",
			   (unsigned long long)st.v[ZSTAT_same_pages],
			   (unsigned long long)st.v[ZSTAT_huge_pages],
			   (unsigned long long)st.v[ZSTAT_compr_data_size],
			   (unsigned long long)e.same,
			   (unsigned long long)e.huge,
			   (unsigned long long)e.compr);
	/*
	 * A write is refused if its object takes the pool over mem_limit;
	 * the object is freed, but the pool may keep metadata it grew for it
	 * (zsmalloc keeps a handle slab page), hence a little slack.
	 */
	if (d.cfg.mem_limit)
		FUZZ_CHECK(total <= d.cfg.mem_limit + MEM_LIMIT_SLACK,
			   "the pool holds %llu bytes, mem_limit is %llu",
			   (unsigned long long)total,
			   (unsigned long long)d.cfg.mem_limit);
	FUZZ_CHECK(st.v[ZSTAT_same_pages] + st.v[ZSTAT_huge_pages] <= stored,
		   "same %llu + huge %llu > stored %llu",
		   (unsigned long long)st.v[ZSTAT_same_pages],
		   (unsigned long long)st.v[ZSTAT_huge_pages],
		   (unsigned long long)stored);
	FUZZ_CHECK(st.v[ZSTAT_compr_data_size] <=
				   (stored - st.v[ZSTAT_same_pages]) * SECTOR &&
			   st.v[ZSTAT_compr_data_size] >=
				   stored - st.v[ZSTAT_same_pages],
		   "compr_data_size %llu for %llu pool objects",
		   (unsigned long long)st.v[ZSTAT_compr_data_size],
		   (unsigned long long)(stored - st.v[ZSTAT_same_pages]));
	FUZZ_CHECK(st.v[ZSTAT_mem_used_total] == total,
		   "mem_used_total %llu, pool %llu",
		   (unsigned long long)st.v[ZSTAT_mem_used_total],
		   (unsigned long long)total);
	FUZZ_CHECK(st.v[ZSTAT_mem_used_max] >= total, "mem_used_max");
	FUZZ_CHECK(st.v[ZSTAT_disksize] == d.size, "disksize");
	FUZZ_CHECK(st.v[ZSTAT_mem_limit] == d.cfg.mem_limit, "mem_limit");
	FUZZ_CHECK(st.v[ZSTAT_invalid_io] == d.invalid,
		   "invalid_io %llu, expected %llu",
		   (unsigned long long)st.v[ZSTAT_invalid_io],
		   (unsigned long long)d.invalid);
	FUZZ_CHECK(st.v[ZSTAT_failed_writes] == d.failed_writes,
		   "failed_writes %llu, expected %llu",
		   (unsigned long long)st.v[ZSTAT_failed_writes],
		   (unsigned long long)d.failed_writes);
	FUZZ_CHECK(st.v[ZSTAT_failed_reads] == d.failed_reads,
		   "failed_reads %llu, expected %llu",
		   (unsigned long long)st.v[ZSTAT_failed_reads],
		   (unsigned long long)d.failed_reads);
	FUZZ_CHECK(st.v[ZSTAT_bd_checksum_errors] == 0, "checksum errors");
	FUZZ_CHECK(st.v[ZSTAT_bd_io_errors] == 0, "backing I/O errors");
	FUZZ_CHECK(strcmp(st.allocator, d.cfg.allocator) == 0, "allocator %s",
		   st.allocator);
	if (d.bk) {
		backing_get_stats(d.bk, &bs);
		/* A pack's record holds several sectors. */
		FUZZ_CHECK(d.packs_evicted
				   ? bs.slots_used <= st.v[ZSTAT_bd_count]
				   : bs.slots_used == st.v[ZSTAT_bd_count],
			   "backing file holds %llu slots, bd_count is %llu",
			   (unsigned long long)bs.slots_used,
			   (unsigned long long)st.v[ZSTAT_bd_count]);
		FUZZ_CHECK(bs.bad_frees == 0, "%llu bad backing frees",
			   (unsigned long long)bs.bad_frees);
		FUZZ_CHECK(bs.checksum_errors == 0 && bs.read_errors == 0,
			   "backing read errors");
	} else {
		FUZZ_CHECK(st.v[ZSTAT_bd_count] == 0, "bd_count without file");
	}
}

static bool range_valid(uint64_t off, size_t len)
{
	return off <= d.size && len <= d.size - off;
}

/* Requests out of range: -EINVAL, counted in invalid_io. */
static void do_bad(uint8_t how)
{
	struct ext_walk w = { 0 };
	uint64_t off;
	size_t len = 1 + how % 8192, rwlen = len < MAX_LEN ? len : MAX_LEN;
	int r;

	switch ((how >> 4) % 4) {
	case 0:
		off = d.size - (len > d.size ? d.size : len) + 1;
		break;
	case 1:
		off = d.size + 1;
		break;
	case 2:
		off = UINT64_MAX - how;
		break;
	default:
		off = d.size;
		break;
	}
	if (!range_valid(off, rwlen)) {
		r = zdev_read(d.dev, rbuf, rwlen, off);
		FUZZ_CHECK(r == -EINVAL, "read out of range: %d", r);
		d.invalid++;
		d.failed_reads++;
		r = zdev_write(d.dev, buf, rwlen, off, false);
		FUZZ_CHECK(r == -EINVAL, "write out of range: %d", r);
		d.invalid++;
		d.failed_writes++;
	}
	if (range_valid(off, len))
		return;
	r = zdev_trim(d.dev, len, off);
	FUZZ_CHECK(r == -EINVAL, "trim out of range: %d", r);
	d.invalid++;
	r = zdev_zero(d.dev, len, off);
	FUZZ_CHECK(r == -EINVAL, "zero out of range: %d", r);
	d.invalid++;
	d.failed_writes++;
	r = zdev_extents(d.dev, len, off, false, ext_cb, &w);
	FUZZ_CHECK(r == -EINVAL, "extents out of range: %d", r);
	FUZZ_CHECK(w.n == 0, "extents out of range called back");
	d.invalid++;
}

static void setup(void)
{
	static const uint64_t sizes[8] = {
		1 << 20,	 (1 << 20) + 1234,	 12388, 0,
		ZDEV_MAX_SIZE, (UINT64_C(1) << 40) + 777, 4096,	 1 << 20,
	};
	uint8_t c0 = fin_u8(&d.in), c1 = fin_u8(&d.in), c2 = fin_u8(&d.in);
	struct zdev_backing_ops ops;
	struct zdev_hooks hooks = { .kick = hook_kick,
				    .wait_room = hook_wait_room };
	char err[256];
	int e;

	d.cfg.allocator = c0 & 1 ? ZPOOL_TYPE_ZBUD : ZPOOL_TYPE_ZSMALLOC;
	d.cfg.mem_limit = mem_limits[(c0 >> 1) & 3];
	d.cfg.shrinkable = (c0 >> 3) & 3;
	d.cfg.huge_threshold = huge_thresholds[c0 >> 5];
	d.cfg.acceleration = accels[c1 & 3];
	d.cfg.size = d.size = sizes[(c1 >> 2) & 7];
	d.cfg.recompress_level = c2 & 4 ? 3 : 0;
	d.cfg.zstd_level = c2 & 8 ? 1 : 0;
	d.store_hooks = c1 >> 7;
	d.wlen = d.size < WINDOW ? d.size : WINDOW;
	d.base = d.size - d.wlen;
	d.shadow = calloc(1, d.wlen + 1);
	FUZZ_CHECK(d.shadow, "out of memory");

	d.dev = zdev_create(&d.cfg, &e);
	FUZZ_CHECK(d.dev != NULL, "zdev_create: %d", e);
	FUZZ_CHECK(zdev_size(d.dev) == d.size, "size");
	d.base_total = zpool_get_total_size(zdev_pool(d.dev));

	if ((c0 >> 3) & 1) {
		snprintf(d.bk_path, sizeof(d.bk_path), "%s/device-%d.bk",
			 fuzz_tmpdir(), (int)getpid());
		d.bk = backing_open(d.bk_path, bk_sizes[(c1 >> 5) & 3], err,
				    sizeof(err));
		FUZZ_CHECK(d.bk != NULL, "backing_open: %s", err);
		ops = (struct zdev_backing_ops){ .store = bk_store,
						 .load = bk_load,
						 .release = bk_release,
						 .store_pack = bk_store_pack,
						 .load_pack = bk_load_pack };
		zdev_set_backing(d.dev, &ops);
		d.hooks = c2 & 1;
		d.eager_kick = c2 & 2;
		if (d.hooks)
			zdev_set_hooks(d.dev, &hooks);
	}
}

static void teardown(void)
{
	struct zstats st;
	uint64_t total;
	int r;

	/* Trim everything: the device must then hold nothing. */
	if (d.wlen) {
		r = zdev_trim(d.dev, d.wlen, d.base);
		FUZZ_CHECK(r == 0, "final trim: %d", r);
		memset(d.shadow, 0, d.wlen);
		check_read(d.base, d.wlen < MAX_LEN ? d.wlen : MAX_LEN,
			   "after the final trim");
	}
	check_stats();
	zdev_get_stats(d.dev, &st);
	FUZZ_CHECK(st.v[ZSTAT_orig_data_size] == 0 &&
			   st.v[ZSTAT_compr_data_size] == 0 &&
			   st.v[ZSTAT_bd_count] == 0,
		   "after trimming everything: orig %llu compr %llu bd %llu",
		   (unsigned long long)st.v[ZSTAT_orig_data_size],
		   (unsigned long long)st.v[ZSTAT_compr_data_size],
		   (unsigned long long)st.v[ZSTAT_bd_count]);
	total = zpool_get_total_size(zdev_pool(d.dev));
	FUZZ_CHECK(total <= d.base_total + EMPTY_SLACK,
		   "empty device, the pool holds %llu bytes (%llu at first)",
		   (unsigned long long)total,
		   (unsigned long long)d.base_total);
	zdev_destroy(d.dev);
	if (d.bk) {
		backing_close(d.bk);
		unlink(d.bk_path);
	}
	free(d.shadow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&d, 0, sizeof(d));
	d.in = (struct fin){ data, size };
	fuzz_op_index = 0;
	setup();

	while (fin_left(&d.in) && fuzz_op_index < MAX_OPS) {
		uint8_t op = fin_u8(&d.in), kind;
		uint64_t off = 0;
		size_t len = 0;

		fuzz_op_index++;
		switch (op % 19) {
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
			pick_range(&off, &len);
			kind = fin_u8(&d.in);
			do_write(off, len, kind, fin_u32(&d.in));
			break;
		case 5:
		case 6:
		case 7:
			pick_range(&off, &len);
			check_read(off, len, "read");
			break;
		case 8:
			pick_range(&off, &len);
			do_zero(off, len);
			break;
		case 9:
			pick_range(&off, &len);
			do_trim(off, len);
			break;
		case 10:
			pick_range(&off, &len);
			do_extents(off, len, fin_u8(&d.in));
			break;
		case 11:
			do_shrink((size_t)fin_u16(&d.in) * 16);
			break;
		case 12:
			(void)zdev_compact(d.dev);
			check_read(d.base, d.wlen < MAX_LEN ? d.wlen : MAX_LEN,
				   "after compact");
			break;
		case 13:
			check_stats();
			break;
		case 14:
			do_bad(fin_u8(&d.in));
			break;
		case 15:
			FUZZ_CHECK(zdev_flush(d.dev) == 0, "flush");
			FUZZ_CHECK(zdev_probe(d.dev) == 0, "probe");
			break;
		case 16:
			do_idle(fin_u8(&d.in));
			break;
		case 17:
			kind = fin_u8(&d.in);
			do_recompress(kind, fin_u8(&d.in));
			break;
		case 18:
			do_evict_packs(fin_u16(&d.in));
			break;
		}
	}
	fuzz_op_index++;
	for (uint64_t o = 0; o < d.wlen; o += MAX_LEN)
		check_read(d.base + o,
			   d.wlen - o < MAX_LEN ? d.wlen - o : MAX_LEN,
			   "at the end");
	teardown();
	return 0;
}
