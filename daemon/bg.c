/* SPDX-License-Identifier: MIT */
/*
 * bg.c - the background thread: stats file writer and pool compaction
 *
 * The thread sleeps on a condition variable (CLOCK_MONOTONIC) one second
 * at a time, so bg_stop() wakes it at once. Only the thread touches the
 * fields below "thread's own"; stop is protected by lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bg.h"
#include "localswap.h"

struct bg {
	struct bg_config cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;		/* protected by lock */

	/* The thread's own. */
	bool stats_failed;	/* a failure was reported already */
	bool no_compact;	/* the allocator cannot */
	uint64_t fruitless_waste; /* waste when a pass freed nothing */
};

static void write_stats(struct bg *bg)
{
	struct zstats s;
	char msg[256];
	int r;

	if (!bg->cfg.stats_path)
		return;
	zdev_get_stats(bg->cfg.dev, &s);
	r = stats_write_file(bg->cfg.stats_path, &s);
	if (r < 0 && !bg->stats_failed && bg->cfg.log) {
		snprintf(msg, sizeof(msg), "writing stats file %s: %s",
			 bg->cfg.stats_path, strerror(-r));
		bg->cfg.log(msg);
	}
	bg->stats_failed = r < 0;
}

static void maybe_compact(struct bg *bg)
{
	struct zstats s;
	uint64_t total, compr, waste;
	long n;

	if (bg->no_compact)
		return;
	zdev_get_stats(bg->cfg.dev, &s);
	total = s.v[ZSTAT_mem_used_total];
	compr = s.v[ZSTAT_compr_data_size];
	if (!bg_compact_worth_it(total, compr))
		return;
	waste = total - compr;
	if (bg->fruitless_waste &&
	    waste < bg->fruitless_waste + BG_COMPACT_MIN_WASTE)
		return;
	n = zdev_compact(bg->cfg.dev);
	if (n == -EOPNOTSUPP)
		bg->no_compact = true;
	bg->fruitless_waste = n > 0 ? 0 : waste;
}

static bool bg_stopping(void *arg)
{
	struct bg *bg = arg;

	return __atomic_load_n(&bg->stop, __ATOMIC_RELAXED);
}

static void recompress_idle(struct bg *bg)
{
	struct zdev_recompress_result res;
	char msg[256];
	int r;

	r = zdev_recompress(bg->cfg.dev, ZDEV_RECOMPRESS_IDLE, 0, bg_stopping,
			    bg, &res);
	if (r < 0 && bg->cfg.log) {
		snprintf(msg, sizeof(msg), "cold tier: recompress pass: %s",
			 strerror(-r));
		bg->cfg.log(msg);
	}
}

static void *bg_thread(void *arg)
{
	struct bg *bg = arg;
	unsigned long tick = 0;
	struct timespec ts;

	localswap_thread();
	pthread_mutex_lock(&bg->lock);
	while (!bg->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec++;
		pthread_cond_timedwait(&bg->wake, &bg->lock, &ts);
		if (bg->stop)
			break;
		pthread_mutex_unlock(&bg->lock);
		tick++;
		if (bg->cfg.stats_interval &&
		    tick % bg->cfg.stats_interval == 0)
			write_stats(bg);
		if (bg->cfg.compact_interval &&
		    tick % bg->cfg.compact_interval == 0)
			maybe_compact(bg);
		if (bg->cfg.recompress_interval &&
		    tick % bg->cfg.recompress_interval == 0)
			recompress_idle(bg);
		pthread_mutex_lock(&bg->lock);
	}
	pthread_mutex_unlock(&bg->lock);
	return NULL;
}

struct bg *bg_start(const struct bg_config *cfg)
{
	struct bg *bg = calloc(1, sizeof(*bg));
	pthread_condattr_t ca;
	int r;

	if (!bg)
		return NULL;
	bg->cfg = *cfg;
	pthread_mutex_init(&bg->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bg->wake, &ca);
	pthread_condattr_destroy(&ca);
	/* A first stats file at once, so readers need not wait. */
	write_stats(bg);
	r = pthread_create(&bg->thread, NULL, bg_thread, bg);
	if (r) {
		pthread_cond_destroy(&bg->wake);
		pthread_mutex_destroy(&bg->lock);
		free(bg);
		errno = r;
		return NULL;
	}
	return bg;
}

void bg_stop(struct bg *bg)
{
	if (!bg)
		return;
	pthread_mutex_lock(&bg->lock);
	__atomic_store_n(&bg->stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&bg->wake);
	pthread_mutex_unlock(&bg->lock);
	pthread_join(bg->thread, NULL);
	write_stats(bg);
	pthread_cond_destroy(&bg->wake);
	pthread_mutex_destroy(&bg->lock);
	free(bg);
}
