/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - persist=PATH: the device written to a file on a clean stop
 *              and read back at the next start
 *
 * The file format is include/zramd_snapshot.h; the design, and why a
 * loaded snapshot is renamed away at once, are in snapshot.c.
 *
 * Lifetime, as the plugin uses it: snap_load() into the new, empty device
 * before serving (.get_ready, after the backing file is attached), then
 * snap_consume() before the first request; snap_write() on a quiet device
 * at a clean stop (.cleanup, after the shrinker and the background thread
 * stopped, before the backing file is closed).
 *
 * Messages: every function that fails writes one line into @err naming
 * the file and what is wrong ("persist=PATH: ..."); nothing here prints.
 */
#ifndef ZRAMD_SNAPSHOT_DAEMON_H
#define ZRAMD_SNAPSHOT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zdev;

#define SNAP_ERR_LEN	     768
#define SNAP_CONSUMED_SUFFIX ".consumed"

/* What a load or a write did. */
struct snap_stats {
	uint64_t file_bytes; /* size of the snapshot file */
	uint64_t objects;    /* OBJECT records */
	uint64_t same;	     /* SAME records */
	uint64_t evicted;    /* EVICTED records */
	uint64_t packs;	     /* PACK and PACK_EVICTED records */
	uint64_t packed;     /* live sectors in them */
	uint64_t data_bytes; /* bytes of the device that hold data */
	double seconds;	     /* wall time of the whole load or write */
};

/* Called now and then with the share of the file loaded, 0..100. */
typedef void (*snap_progress_fn)(void *arg, unsigned int percent);

/**
 * snap_write() - write the device to @path, atomically
 * @dev:    the device; nothing else may use it meanwhile
 * @path:   the snapshot file
 * @st:     filled in on success (may be NULL)
 * @err:    SNAP_ERR_LEN bytes for the message
 *
 * Written to a temporary file in the same directory (mode 0600), fsynced,
 * renamed over @path, and the directory fsynced. Objects go as stored,
 * never recompressed; sectors on the backing file are read back through
 * the device's backing ops (checked) and stored as EVICTED records. On
 * any failure the temporary file is removed and @path is left exactly as
 * it was.
 *
 * Return: 0; or a negative errno: -ENOSPC, -EIO, -EDQUOT... from the
 * file system, -EBADMSG or -EIO if an evicted sector could not be read
 * back, -ENOMEM.
 */
int snap_write(struct zdev *dev, const char *path, struct snap_stats *st,
	       char *err);

/**
 * snap_load() - fill an empty device from the snapshot at @path
 * @dev:      a new device with nothing written to it; not serving yet
 * @path:     the snapshot file
 * @progress: called with the share loaded (may be NULL)
 * @arg:      passed to @progress
 * @st:       filled in (may be NULL)
 * @err:      SNAP_ERR_LEN bytes for the message
 *
 * Every record is checked (its checksum, type, codec, length, and that
 * sectors rise and stay inside the device), then the trailer: the record
 * count and the checksum of the whole file. Evicted records go back to
 * the backing file when one is attached; pool objects too when the pool
 * is at mem_limit.
 *
 * Return: 1 if loaded; 0 if @path does not exist (nothing changed); or a
 * negative errno with the message in @err: -EINVAL for a file that is not
 * a snapshot this zramd can load (bad magic, version, header, checksum,
 * cut short, another device size: the device may then hold part of it
 * and must not be served), -ENOSPC if it does not fit under mem_limit
 * (and no backing file took the rest), -EIO, -ENOMEM.
 */
int snap_load(struct zdev *dev, const char *path, snap_progress_fn progress,
	      void *arg, struct snap_stats *st, char *err);

/*
 * As snap_load(), from an open file (read from its current offset to the
 * end); @name is used in messages. For the fuzzer and the tests.
 */
int snap_load_fd(struct zdev *dev, int fd, const char *name,
		 snap_progress_fn progress, void *arg, struct snap_stats *st,
		 char *err);

/**
 * snap_consume() - make a loaded snapshot no longer count as valid
 * @path: the snapshot file just loaded
 * @err:  SNAP_ERR_LEN bytes for the message
 *
 * Renames @path to @path.consumed (replacing an older one) and fsyncs the
 * directory, so that after a crash no later start finds it at @path.
 *
 * Return: 0, or a negative errno (the device must not be served then).
 */
int snap_consume(const char *path, char *err);

/* Whether @path.consumed exists (a loaded snapshot, never replaced). */
bool snap_consumed_exists(const char *path);

/*
 * Remove temporary files a write killed part-way left (@path.tmp.*).
 * Return: how many were removed.
 */
unsigned int snap_remove_stale(const char *path);

/* Remove @path.consumed, once a newer snapshot is in place. */
void snap_remove_consumed(const char *path);

#endif /* ZRAMD_SNAPSHOT_DAEMON_H */
