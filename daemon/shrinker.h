/* SPDX-License-Identifier: MIT */
/*
 * shrinker.h - the thread that decides when to evict, and how much
 *
 * The shrinker knows nothing of sectors, pools or files: it watches the
 * pool's size through ops->pool_size and the pressure sources of
 * pressure.h, and when one of its triggers fires it asks ops->shrink to
 * release so many bytes of pool memory (the device core does it with
 * zpool_shrink(), whose evict callback writes to the backing file).
 *
 * Triggers, and the counter each eviction is charged to:
 *
 *   SHRINKER_LIMIT   the pool passed mem_high percent of mem_limit (a kick
 *                    from the write path, or a writer waiting for room):
 *                    shrink down to mem_low percent           evict_limit
 *   SHRINKER_PSI     a PSI trigger fired, or a sampled PSI file showed
 *                    stall over the threshold: shrink one step  evict_psi
 *   SHRINKER_CGROUP  the cgroup is within its margin of memory.high or
 *                    memory.max: shrink the excess (at least 1 MiB)
 *                                                             evict_cgroup
 *   SHRINKER_IDLE    every idle interval: ops->evict_idle evicts sectors
 *                    not touched for idle_age seconds          evict_idle
 *
 * The idle interval defaults to idle_age itself, which suits a device core
 * with one idle bit per sector (zram's scheme): each call evicts the
 * sectors still marked idle, then marks every sector in the pool idle, and
 * any access clears the mark; a sector goes after idle_age to 2 * idle_age
 * seconds without access.
 *
 * Lifetime: shrinker_create() (checks the configuration and opens the
 * pressure files; the plugin's .get_ready), shrinker_start() (the thread;
 * .after_fork, since threads do not survive nbdkit's fork), shrinker_stop()
 * (.cleanup: the thread is woken, finishes the shrink call it is in, and
 * is joined), shrinker_destroy().
 *
 * Locking: the shrinker calls every op with no lock of its own held, from
 * its thread only (except pool_size, which shrinker_kick() and
 * shrinker_wait_room() call from the caller's thread). The caller must not
 * hold a lock that ops->shrink takes (a sector table stripe lock) across
 * shrinker_wait_room(), or the two wait for each other.
 */
#ifndef ZRAMD_SHRINKER_H
#define ZRAMD_SHRINKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pressure.h"

#define SHRINKER_DEFAULT_HIGH	   90u	      /* percent of mem_limit */
#define SHRINKER_DEFAULT_LOW	   80u	      /* percent of mem_limit */
#define SHRINKER_DEFAULT_BATCH	   (1u << 20) /* bytes per ops->shrink call */
#define SHRINKER_MIN_STEP	   (1u << 20) /* least bytes per pressure event */
/* More than one allocation can take: the largest zspage (64 KiB) and the
 * metadata pages it may add. See shrinker_wait_room(). */
#define SHRINKER_ROOM_STEP	   (128u << 10)
#define SHRINKER_DEFAULT_SAMPLE_MS 1000u
#define SHRINKER_DEFAULT_RETRY_MS  1000u

enum shrinker_trigger {
	SHRINKER_LIMIT,
	SHRINKER_PSI,
	SHRINKER_CGROUP,
	SHRINKER_IDLE,
	SHRINKER_NR_TRIGGERS
};

/* What one ops->shrink or ops->evict_idle call achieved. */
struct shrink_result {
	uint64_t released; /* bytes of pool memory given back */
	uint64_t evicted;  /* sectors moved to the backing file */
};

struct shrinker_ops {
	/* Bytes of memory the pool holds now. Cheap and lock-free
	 * (zpool_get_total_size()); called on every kick. Required. */
	uint64_t (*pool_size)(void *ctx);
	/*
	 * Release about @bytes (at most the batch size) of pool memory,
	 * coldest data first, and fill @res. Returns 0, or a negative errno
	 * (-ENOSPC: the backing file is full or absent; -ENOENT: nothing to
	 * evict); @res counts what was done before the error. A call that
	 * releases nothing is "no progress": writers waiting for room are
	 * then told -ENOSPC. Required.
	 */
	int (*shrink)(void *ctx, uint64_t bytes, enum shrinker_trigger trigger,
		      struct shrink_result *res);
	/* Evict sectors idle for @age_s seconds or more; may take long, and
	 * should check shrinker_stopping() now and then. Optional. */
	int (*evict_idle)(void *ctx, unsigned int age_s,
			  struct shrink_result *res);
	/* One line for the log (nbdkit_debug, say). Optional. */
	void (*log)(void *ctx, const char *msg);
	void *ctx;
};

struct shrinker_config {
	uint64_t mem_limit;    /* pool bytes; 0: no limit trigger */
	unsigned int mem_high; /* percent of mem_limit, 1..100 */
	unsigned int mem_low;  /* percent of mem_limit, below mem_high */
	uint64_t step;	       /* bytes per PSI event; 0: a tenth of the
				* pool, at least SHRINKER_MIN_STEP */
	uint64_t batch;	       /* bytes per ops->shrink call; 0: default */
	unsigned int idle_age; /* seconds; 0: no idle eviction */
	unsigned int idle_interval_ms; /* 0: idle_age (see below) */
	unsigned int sample_ms; /* pressure sampling period; 0: default */
	unsigned int retry_ms;	/* quiet time after no progress; 0: def. */
	struct pressure_config pressure;
};

/* Counters, a snapshot (shrinker_get_stats()). */
struct shrinker_stats {
	uint64_t evicted[SHRINKER_NR_TRIGGERS];	 /* sectors */
	uint64_t released[SHRINKER_NR_TRIGGERS]; /* bytes */
	uint64_t wakeups;			 /* times the thread woke */
	uint64_t calls;				 /* ops->shrink calls */
	uint64_t stalls;			 /* of which made no progress */
	uint64_t psi_events;	/* PSI triggers fired or samples over */
	uint64_t cgroup_events; /* samples near a cgroup limit */
	uint64_t idle_scans;	/* ops->evict_idle calls */
	uint64_t waits;		/* shrinker_wait_room() calls */
	uint64_t wait_nospc;	/* of which answered -ENOSPC */
};

struct shrinker;

/* Fills @cfg with the defaults: no limit, 90/80, PSI and cgroup AUTO. */
void shrinker_config_defaults(struct shrinker_config *cfg);

/**
 * shrinker_create() - check the configuration, open the pressure sources
 * @cfg:    the configuration (copied; pressure strings too)
 * @ops:    the callbacks (copied)
 * @err:    on failure, a one-line message
 * @errlen: size of @err
 *
 * No thread runs yet; shrinker_kick() is already safe to call.
 *
 * Return: the shrinker, or NULL with errno set: EINVAL if a required op
 * is missing or mem_high/mem_low are out of range or not ordered, ENOMEM,
 * or what pressure_open() failed with (ENOENT for psi=on without PSI...).
 */
struct shrinker *shrinker_create(const struct shrinker_config *cfg,
				 const struct shrinker_ops *ops, char *err,
				 size_t errlen);

/**
 * shrinker_start() - start the thread
 * @s: the shrinker, not started yet (or stopped)
 *
 * Return: 0, or a negative errno from pthread_create().
 */
int shrinker_start(struct shrinker *s);

/**
 * shrinker_stop() - stop the thread and wait for it
 * @s: the shrinker; nothing happens if it is not running
 *
 * The thread returns after the ops call it is in. Writers waiting in
 * shrinker_wait_room() are answered -ENOSPC.
 */
void shrinker_stop(struct shrinker *s);

/* Stops the thread if needed and frees @s (NULL is fine). */
void shrinker_destroy(struct shrinker *s);

/**
 * shrinker_kick() - tell the shrinker the pool may have grown
 * @s: the shrinker
 *
 * Cheap enough for every write: an atomic load and ops->pool_size(); the
 * thread is woken only when the pool is over the high watermark and no
 * wake-up is pending yet. Thread safety: any thread, any time.
 */
void shrinker_kick(struct shrinker *s);

/**
 * shrinker_wait_room() - wait until the pool is below mem_limit
 * @s:          the shrinker
 * @timeout_ms: the longest wait
 *
 * For a write that found the pool full. Wakes the thread and waits for
 * ops->shrink calls made on this request's behalf. Must be called with no
 * lock held that ops->shrink might take.
 *
 * Return: 0 if the pool is below mem_limit after a shrink call made on
 * this request's behalf, or below the low watermark and at least
 * SHRINKER_ROOM_STEP under mem_limit (else a call is made for it even
 * below the low watermark), or if there is no limit; -ENOSPC if a shrink
 * call started after this request made no progress
 * (the backing file is full or absent, nothing to evict) or the thread is
 * not running; -ETIMEDOUT if neither happened in time.
 */
int shrinker_wait_room(struct shrinker *s, unsigned int timeout_ms);

/* True once shrinker_stop() began: long callbacks should return early. */
bool shrinker_stopping(const struct shrinker *s);

/* Fills @st with a snapshot of the counters. */
void shrinker_get_stats(struct shrinker *s, struct shrinker_stats *st);

/* A one-line description of the configuration and sources, for the log. */
void shrinker_describe(const struct shrinker *s, char *buf, size_t len);

#endif /* ZRAMD_SHRINKER_H */
