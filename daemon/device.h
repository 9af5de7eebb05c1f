/* SPDX-License-Identifier: MIT */
/*
 * device.h - the device core: a compressed RAM disk, independent of nbdkit
 *
 * A struct zdev is one virtual disk of any size up to 2^63-1 bytes, stored
 * 4 KiB sector by sector: holes and same-filled sectors in the sector
 * table only (sectors.h), everything else LZ4-compressed (codec.h) in a
 * zpool (zpool.h). The nbdkit plugin (plugin.c) is thin glue over this
 * API, and unit tests and fuzzers drive it directly.
 *
 * Any byte offset and length works: a request is cut at sector boundaries,
 * and a piece that covers part of a sector is a read-modify-write done
 * under the sector's stripe lock, so two partial writes to one sector never
 * lose each other's bytes. Whole-sector writes compress before taking any
 * lock; the lock is held only to swap the table entry.
 *
 * Thread safety: every call may run concurrently with every other, except
 * zdev_create() and zdev_destroy().
 *
 * Errors are negative errno values. The request calls check the range
 * (counting invalid_io when it is wrong) and count failed_reads and
 * failed_writes.
 */
#ifndef ZRAMD_DEVICE_H
#define ZRAMD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct zpool;
struct zdev;

/* The largest device: nbdkit's limit, 2^63-1 bytes. */
#define ZDEV_MAX_SIZE ((uint64_t)INT64_MAX)

/*
 * The smallest non-zero mem_limit. A pool holds metadata of its own before
 * it stores anything (an empty zsmalloc pool about 64 KiB: size classes
 * and the handle table; its first object takes it to about 76 KiB), so a
 * limit much above that is needed for the pool to hold even a few
 * sectors; 512 KiB holds over a hundred incompressible ones with either
 * allocator.
 */
#define ZDEV_MEM_LIMIT_MIN (512u * 1024)

struct zdev_config {
	uint64_t size;		     /* bytes, 0..ZDEV_MAX_SIZE */
	const char *allocator;	     /* zpool type: "zsmalloc", "zbud" */
	int acceleration;	     /* LZ4, CODEC_ACCEL_MIN..MAX */
	unsigned int huge_threshold; /* 1..CODEC_HUGE_THRESHOLD_MAX */
	uint64_t mem_limit;	     /* pool bytes; 0: no limit */
	bool shrinkable;	     /* create the pool with an evict callback */
	int zstd_level;		     /* hot path: 0 for LZ4, else zstd 1..19 */
	int recompress_level;	     /* cold tier: zstd 1..19; 0: off */
	unsigned int pack_slots;     /* cold tier: sectors a pack holds at
				      * most, 1..16; 0: 16 */
};

/*
 * The backing file, as the device sees it. Until one is attached with
 * zdev_set_backing(), a sector in the BACKING state reads as -EIO.
 */
struct zdev_backing_ops {
	/*
	 * Store @len bytes, the pool object of @sector (compressed, or raw if
	 * @len is 4096). Called with no lock held. Returns the slot number
	 * (0 or more) or a negative errno.
	 */
	int64_t (*store)(void *ctx, uint64_t sector, const void *data,
			 unsigned int len);
	/*
	 * Read the @len bytes of @slot, which holds @sector, into @buf.
	 * Called with or without the sector's stripe lock: a read does not
	 * hold it, so @slot may be released (and reused) meanwhile; the
	 * device then reads again. Returns 0, -EBADMSG for a
	 * checksum or header mismatch, -EIO if it could not be read, or
	 * another negative errno. The device answers -EIO for all of them.
	 */
	int (*load)(void *ctx, uint64_t slot, uint64_t sector, void *buf,
		    unsigned int len);
	/* @slot holds nothing live any more. Called with no lock held. */
	void (*release)(void *ctx, uint64_t slot);
	void *ctx;
	/*
	 * Optional, for the cold tier: store and load a pack object (pack.h)
	 * of @len bytes whose first sector is @base, marked as a pack in the
	 * record so that it can never be taken for a sector's object. As
	 * store() and load(); without them packs stay in the pool.
	 */
	int64_t (*store_pack)(void *ctx, uint64_t base, const void *data,
			      unsigned int len);
	int (*load_pack)(void *ctx, uint64_t slot, uint64_t base, void *buf,
			 unsigned int len);
};

/**
 * zdev_create() - create an empty device
 * @cfg: the configuration; strings are copied
 * @err: set to a negative errno on failure
 *
 * Return: the device, or NULL: -EINVAL for a bad configuration (size too
 * large, unknown allocator, acceleration or huge threshold out of range,
 * mem_limit below ZDEV_MEM_LIMIT_MIN), -ENOMEM.
 */
struct zdev *zdev_create(const struct zdev_config *cfg, int *err);

/* Free the device and everything it stores. @dev may be NULL. */
void zdev_destroy(struct zdev *dev);

/* Return: the device size in bytes. */
uint64_t zdev_size(const struct zdev *dev);

/* Return: the pool (for the shrinker). */
struct zpool *zdev_pool(struct zdev *dev);

/* Attach (or with NULL, detach) the backing file. Not while serving. */
void zdev_set_backing(struct zdev *dev, const struct zdev_backing_ops *ops);

/**
 * zdev_set_promote() - bring hot sectors back from the backing file
 * @dev:   the device
 * @on:    promote (off: a sector on the backing file stays there until it
 *         is overwritten or trimmed)
 * @below: promote only while the pool holds fewer bytes than this (the
 *         shrinker's high watermark; UINT64_MAX: no limit)
 *
 * A sector read twice in a row from the backing file (the idle writeback
 * pass, if it runs, forgets the first read) moves back to the pool on the
 * second read; see readback.c. Not while serving.
 */
void zdev_set_promote(struct zdev *dev, bool on, uint64_t below);

/*
 * A write that found the pool at mem_limit waits for the shrinker to make
 * room, then tries again, as long as each wait made room (other writers
 * may take it first). A wait in which the shrinker made no progress for
 * ZDEV_ROOM_WAIT_MS, or could not make any (backing file full or absent),
 * ends it with -ENOSPC; so does ZDEV_ROOM_GIVE_UP_MS spent in all, so that
 * nothing loops for ever (evictions keep going, so losing every round
 * for that long is not expected to happen).
 */
#define ZDEV_ROOM_WAIT_MS    5000u
#define ZDEV_ROOM_GIVE_UP_MS 60000u

/*
 * The write path's link to the shrinker (writeback.c). Both are called
 * with no lock of the device held, from the writing thread.
 */
struct zdev_hooks {
	/* A write stored a pool object: the pool may have grown. Cheap. */
	void (*kick)(void *ctx);
	/*
	 * The pool is at mem_limit: wait up to @timeout_ms for room. Returns
	 * 0 if there may be room now, or a negative errno (then the write
	 * fails with -ENOSPC).
	 */
	int (*wait_room)(void *ctx, unsigned int timeout_ms);
	void *ctx;
};

/* Set (or with NULL, clear) the hooks. Not while serving. */
void zdev_set_hooks(struct zdev *dev, const struct zdev_hooks *hooks);

/**
 * zdev_read() - read bytes
 * @dev: the device
 * @buf: where the bytes go
 * @len: bytes, 0 or more
 * @off: offset, with @off + @len <= the device size
 *
 * Return: 0; -EINVAL if the range is past the end; -EIO if stored data is
 * corrupt or a backing-file read failed.
 */
int zdev_read(struct zdev *dev, void *buf, size_t len, uint64_t off);

/**
 * zdev_write() - write bytes
 * @dev: the device
 * @buf: the bytes
 * @len: bytes, 0 or more
 * @off: offset, with @off + @len <= the device size
 * @fua: force unit access: nothing to do for memory, accepted for the API
 *
 * Sectors are replaced one by one; on failure, the sectors before the one
 * that failed hold the new data and the rest the old.
 *
 * A sector that does not fit under mem_limit waits for the shrinker to
 * make room (struct zdev_hooks, ZDEV_ROOM_WAIT_MS), with no lock held.
 *
 * Return: 0; -EINVAL (range); -ENOSPC if the pool would go over mem_limit
 * and no room was made (no backing file, or it is full; stored data stays
 * readable; trim to make room); -ENOMEM; -EIO if a sector to be partly
 * overwritten could not be read.
 */
int zdev_write(struct zdev *dev, const void *buf, size_t len, uint64_t off,
	       bool fua);

/**
 * zdev_trim() - discard bytes: whole sectors become holes
 * @dev: the device
 * @len: bytes
 * @off: offset
 *
 * Parts of sectors are zeroed if that can be done (trim is advisory: if
 * it cannot, for example at mem_limit, they are left as they were).
 * Return: 0, or -EINVAL (range).
 */
int zdev_trim(struct zdev *dev, size_t len, uint64_t off);

/**
 * zdev_zero() - write zeroes: whole sectors become holes, parts are zeroed
 * @dev: the device
 * @len: bytes
 * @off: offset
 *
 * Always fast (no data is written for whole sectors), so a "fast zero"
 * request may use it. Return: as zdev_write().
 */
int zdev_zero(struct zdev *dev, size_t len, uint64_t off);

/* Nothing is volatile in a RAM disk; returns 0. */
int zdev_flush(struct zdev *dev);

#define ZDEV_EXTENT_HOLE (1u << 0) /* as NBDKIT_EXTENT_HOLE */
#define ZDEV_EXTENT_ZERO (1u << 1) /* as NBDKIT_EXTENT_ZERO */

/*
 * Called by zdev_extents() for each extent, in order: [@off, @off + @len)
 * is of @type (0 for data, or ZDEV_EXTENT_HOLE | ZDEV_EXTENT_ZERO). Returns
 * 0 to go on, or a negative errno to stop the walk.
 */
typedef int (*zdev_extent_fn)(void *arg, uint64_t off, uint64_t len,
			      uint32_t type);

/**
 * zdev_extents() - describe which parts hold data and which are holes
 * @dev:     the device
 * @len:     bytes, 1 or more
 * @off:     offset
 * @req_one: stop after the first extent
 * @fn:      called for each extent; the first starts at or before @off,
 *           and extents are sector-aligned and stop at the device end
 * @arg:     passed to @fn
 *
 * Return: 0; -EINVAL if @len is 0 or the range is past the end (both
 * counted in invalid_io; @fn is not called); or the error @fn returned.
 */
int zdev_extents(struct zdev *dev, size_t len, uint64_t off, bool req_one,
		 zdev_extent_fn fn, void *arg);

/**
 * zdev_compact() - compact the pool
 * @dev: the device
 *
 * Return: pages given back to the OS (also added to pages_compacted), or
 * -EOPNOTSUPP if the allocator cannot compact.
 */
long zdev_compact(struct zdev *dev);

/**
 * zdev_evict() - move one pool object of a sector to the backing file
 * @dev:    the device
 * @sector: the object's owner word, as given to zpool_malloc()
 * @handle: the object
 *
 * The entry point for the pool's evict callback (and so for the shrinker).
 * The object is copied out and stored with the backing ops' store() with
 * no lock held; the entry then becomes BACKING if it still refers to
 * @handle, and @handle is freed. If the sector was overwritten or trimmed
 * meanwhile, the new slot is released and @handle is left to the writer,
 * which frees it (the zpool eviction race). The caller must hold no
 * stripe lock.
 *
 * Return: 0 if the object was moved or no longer belongs to @sector;
 * -ENOSPC if no backing file is attached; the error store() returned
 * (bd_failed is counted).
 */
int zdev_evict(struct zdev *dev, uint64_t sector, unsigned long handle);

/* What zdev_evict_idle() did. */
struct zdev_idle_result {
	uint64_t evicted; /* sectors moved to the backing file */
	uint64_t marked;  /* sectors newly marked idle */
	uint64_t bytes;	  /* compressed bytes that left the pool */
};

/**
 * zdev_evict_idle() - one pass of idle writeback (mark and sweep)
 * @dev:   the device
 * @stop:  called now and then; the pass ends early if it returns true
 *         (may be NULL)
 * @arg:   passed to @stop
 * @res:   filled in (also when the pass ends on an error)
 *
 * Every sector in the pool that is marked idle (SECT_F_IDLE) is moved to
 * the backing file; every other sector in the pool is marked. Any read or
 * write of a sector clears its mark, so a sector goes after one to two
 * passes without access. A sector is moved only if it is still the same
 * object and still marked when the move is committed: a write meanwhile
 * wins, and its data stays. Must not run concurrently with itself; may run
 * concurrently with everything else. No lock may be held by the caller.
 *
 * Return: 0; -ENOSPC if no backing file is attached or it is full (the
 * pass stops there; bd_failed is counted); another error of store().
 */
int zdev_evict_idle(struct zdev *dev, bool (*stop)(void *arg), void *arg,
		    struct zdev_idle_result *res);

/*
 * The zstd level of packs made under memory pressure, when recompress=
 * asks a higher one: what frees memory soonest is the fastest level (zstd:3
 * packs the bench corpus at 350 MB/s of one core, zstd:9 at 55-75), and
 * data that stays idle is not packed again at the higher level.
 */
#define ZDEV_RECOMPRESS_FAST_LEVEL 3

/* How zdev_recompress() picks sectors. */
enum zdev_recompress_mode {
	/*
	 * Mark and sweep, as zdev_evict_idle(): hot sectors marked idle by
	 * the pass before are packed, the others marked.
	 */
	ZDEV_RECOMPRESS_IDLE,
	/*
	 * Memory pressure: every hot sector, in device order, at
	 * ZDEV_RECOMPRESS_FAST_LEVEL if the device's level is higher.
	 */
	ZDEV_RECOMPRESS_ALL,
};

/* What zdev_recompress() did. */
struct zdev_recompress_result {
	uint64_t packed;  /* sectors put into new packs */
	uint64_t packs;	  /* packs made */
	uint64_t marked;  /* sectors newly marked idle */
	uint64_t repacks; /* sparse packs emptied into new ones */
	uint64_t freed;	  /* bytes the pool shrank by (0 if it grew) */
};

/**
 * zdev_recompress() - one pass of the cold tier: pack hot sectors
 * @dev:    the device (recompress_level set, else the pass does nothing)
 * @mode:   which hot sectors
 * @target: stop once the pool has shrunk by this many bytes; 0: no target
 * @stop:   called now and then; the pass ends early if it returns true
 *          (may be NULL)
 * @arg:    passed to @stop
 * @res:    filled in
 *
 * Candidates are gathered in device order: hot sectors as @mode says, and
 * the live sectors of sparse packs (half their slots dead or more), which
 * are repacked. They are decompressed and compressed again into packs
 * with no stripe lock held; each sector is then moved into its pack only
 * if its entry is still the one copied (a write meanwhile wins, and its
 * slot in the new pack is dead from the start). A sector whose zstd
 * object would not beat its hot one stays hot. May run concurrently with
 * everything, itself included. No lock may be held by the caller.
 *
 * Return: 0, -ENOMEM.
 */
int zdev_recompress(struct zdev *dev, enum zdev_recompress_mode mode,
		    uint64_t target, bool (*stop)(void *arg), void *arg,
		    struct zdev_recompress_result *res);

/**
 * zdev_evict_packs() - move packs from the pool to the backing file
 * @dev:     the device
 * @target:  stop once this many bytes of packs have left the pool
 * @stop:    as for zdev_recompress()
 * @arg:     passed to @stop
 * @evicted: set to the number of packs moved
 *
 * Packs stay compressed and are checksummed in the backing file, marked as
 * packs; reading a sector of one loads and checks the record (-EIO if it
 * is damaged, for every sector it holds). The table does not change: its
 * entries point at the pack, which now says where its object is.
 *
 * Return: 0; -ENOSPC if there is no backing file (or it cannot take
 * packs) or it is full; another error of store_pack().
 */
int zdev_evict_packs(struct zdev *dev, uint64_t target, bool (*stop)(void *arg),
		     void *arg, uint64_t *evicted);

/**
 * zdev_probe() - check that the data path answers
 * @dev: the device
 *
 * Takes and releases a stripe lock and reads the pool size, as a request
 * does. For the systemd watchdog. Return: 0.
 */
int zdev_probe(struct zdev *dev);

/* Fill @out with a snapshot of every counter. */
void zdev_get_stats(struct zdev *dev, struct zstats *out);

/* Event counters, for modules that count on the device's behalf. */
struct zstat_live *zdev_live_stats(struct zdev *dev);

/* Return: bytes of sector-table metadata (for tests and the status line). */
uint64_t zdev_table_bytes(const struct zdev *dev);

#endif /* ZRAMD_DEVICE_H */
