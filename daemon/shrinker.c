/* SPDX-License-Identifier: MIT */
/*
 * shrinker.c - the thread that decides when to evict, and how much
 *
 * What: one thread per device sleeps in poll() until something says
 * memory should be given back, then calls ops->shrink in batches. Why a
 * thread and not the write path: eviction writes to a file and can take
 * milliseconds; writers should only pay for it when they are truly out of
 * room (shrinker_wait_room()).
 *
 *   write path --shrinker_kick()---+  (pool over the high mark; once
 *   writers --shrinker_wait_room()-+   until the thread has looked)
 *                                  v
 *                              [eventfd]  [PSI trigger fds]  poll() timeouts:
 *                                  +-------- poll() --------+ sample, idle,
 *                                              |              retry
 *            +----------------+----------------+----------------+
 *       pool > high      PSI fired or     cgroup near       idle timer:
 *       or a waiter:     sampled over:    a limit:          ops->evict_idle
 *       down to low      one step         the excess
 *            +----------------+----------------+
 *                             v
 *             ops->shrink(bytes, trigger), in batches of `batch` bytes
 *
 * Why an eventfd and not only a condition variable: the thread must also
 * wait for PSI triggers, which are file descriptors; an eventfd lets one
 * poll() wait for all of it. Writers waiting for room do sleep on a
 * condition variable, broadcast after every shrink call.
 *
 * Kicks are cheap: a kick reads the "pending" flag and the pool size and
 * writes the eventfd only on the pool's first crossing of the high mark
 * since the thread last looked. The thread clears the flag before it
 * shrinks, so a pool that keeps growing keeps it busy.
 *
 * No progress: when a shrink call releases nothing (the backing file is
 * full or absent, nothing is left to evict), the thread records it for
 * the waiters, who answer -ENOSPC, and ignores kicks for retry_ms so a
 * full pool does not make it spin. A waiter's request is always served,
 * quiet time or not: each waiter takes a ticket (req_seq) and is answered
 * -ENOSPC by the first shrink call that started after the ticket and
 * released nothing (fail_seq >= ticket), else 0 once the pool is below
 * mem_limit and either past a shrink call that started after the ticket
 * (done_seq >= ticket) or below the low mark with SHRINKER_ROOM_STEP to
 * spare. The size alone is not enough near the limit: an object may need
 * a new zspage of several pages, and a writer told "room" without
 * anything evicted would only fail again, and again. So a waiter the
 * size does not answer gets a shrink call of its own, even below the low
 * mark (a small mem_limit).
 *
 * Locking: s->lock protects the request and failure tickets, running and
 * the condition variable; it is never held across an ops call or a system
 * call other than the eventfd write. Counters are atomics. The pressure
 * monitor belongs to the thread once it runs. Order: callers' locks, if
 * any, come before s->lock (shrinker_kick() takes none; ops->pool_size()
 * is called without s->lock).
 *
 * Known limits: one thread per device; watermarks and mem_limit are fixed
 * at create; the PSI step is one tenth of the pool per event when no step
 * is set, which under sustained pressure empties the pool in a few tens
 * of seconds (by design, as zswap writeback does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "localswap.h"
#include "shrinker.h"

struct shrinker {
	struct shrinker_config cfg;
	struct shrinker_ops ops;
	uint64_t high, low;	   /* watermarks, bytes; 0 without mem_limit */
	struct pressure *pressure; /* the thread's once started */
	char *strings[3];	   /* copies behind cfg.pressure's strings */
	int efd;		   /* eventfd: kicks, requests, stop */
	pthread_t thread;
	bool started; /* caller's: a thread to join */

	pthread_mutex_t lock; /* protects the fields below, and cond */
	pthread_cond_t cond;  /* broadcast after every shrink call */
	bool running;	      /* the thread is in its loop */
	unsigned int waiters; /* threads in shrinker_wait_room() */
	uint64_t req_seq;     /* the last ticket handed to a waiter */
	uint64_t fail_seq;    /* tickets up to this one saw a shrink call
			       * that started after them make no progress */
	uint64_t done_seq;    /* ... saw such a call finish, either way */

	int pending;		  /* atomic: a kick's wake-up is pending */
	bool stop;		  /* atomic */
	struct shrinker_stats st; /* atomics */
};

#define STAT_ADD(s, f, n) __atomic_add_fetch(&(s)->st.f, (n), __ATOMIC_RELAXED)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void logf_(struct shrinker *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(struct shrinker *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->ops.log(s->ops.ctx, msg);
}

static void wake(struct shrinker *s)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is saturated, the thread will wake anyway. */
	if (write(s->efd, &one, sizeof(one)) < 0) {
	}
}

bool shrinker_stopping(const struct shrinker *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

void shrinker_config_defaults(struct shrinker_config *cfg)
{
	*cfg = (struct shrinker_config){
	    .mem_high = SHRINKER_DEFAULT_HIGH,
	    .mem_low = SHRINKER_DEFAULT_LOW,
	    .pressure = {.psi = PRESSURE_AUTO, .cgroup = PRESSURE_AUTO},
	};
}

/* --- create, start, stop --- */

struct shrinker *shrinker_create(const struct shrinker_config *cfg,
				 const struct shrinker_ops *ops, char *err,
				 size_t errlen)
{
	const char **strs[3];
	pthread_condattr_t ca;
	struct shrinker *s;
	int e;

	if (err && errlen)
		err[0] = '\0';
	if (!ops->pool_size || !ops->shrink || cfg->mem_high < 1 ||
	    cfg->mem_high > 100 || cfg->mem_low >= cfg->mem_high) {
		if (err && errlen)
			snprintf(err, errlen, "shrinker: %s",
				 !ops->pool_size || !ops->shrink
				     ? "pool_size and shrink ops are required"
				     : "mem_high must be 1-100 and mem_low "
				       "below it");
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->cfg = *cfg;
	s->ops = *ops;
	if (!s->cfg.batch)
		s->cfg.batch = SHRINKER_DEFAULT_BATCH;
	if (!s->cfg.sample_ms)
		s->cfg.sample_ms = SHRINKER_DEFAULT_SAMPLE_MS;
	if (!s->cfg.retry_ms)
		s->cfg.retry_ms = SHRINKER_DEFAULT_RETRY_MS;
	if (!s->cfg.idle_interval_ms && s->cfg.idle_age) {
		uint64_t ms = (uint64_t)s->cfg.idle_age * 1000;

		s->cfg.idle_interval_ms =
		    ms > UINT32_MAX ? UINT32_MAX : (unsigned int)ms;
	}
	if (cfg->mem_limit) {
		s->high = cfg->mem_limit / 100 * cfg->mem_high +
			  cfg->mem_limit % 100 * cfg->mem_high / 100;
		s->low = cfg->mem_limit / 100 * cfg->mem_low +
			 cfg->mem_limit % 100 * cfg->mem_low / 100;
	}
	/* The pressure strings are the caller's; keep copies. */
	strs[0] = &s->cfg.pressure.proc_root;
	strs[1] = &s->cfg.pressure.cgroup_dir;
	strs[2] = &s->cfg.pressure.cgroup_top;
	for (int i = 0; i < 3; i++) {
		if (!*strs[i])
			continue;
		s->strings[i] = strdup(*strs[i]);
		if (!s->strings[i]) {
			e = ENOMEM;
			goto fail;
		}
		*strs[i] = s->strings[i];
	}

	s->pressure = pressure_open(&s->cfg.pressure, err, errlen);
	if (!s->pressure) {
		e = errno;
		goto fail;
	}
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->efd < 0) {
		e = errno;
		if (err && errlen)
			snprintf(err, errlen, "shrinker: eventfd: %s",
				 strerror(e));
		pressure_close(s->pressure);
		goto fail;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	return s;

fail:
	for (int i = 0; i < 3; i++)
		free(s->strings[i]);
	free(s);
	errno = e;
	return NULL;
}

static void *shrinker_thread(void *arg);

int shrinker_start(struct shrinker *s)
{
	int e;

	if (s->started)
		return 0;
	__atomic_store_n(&s->stop, false, __ATOMIC_RELEASE);
	pthread_mutex_lock(&s->lock);
	s->running = true;
	pthread_mutex_unlock(&s->lock);
	e = pthread_create(&s->thread, NULL, shrinker_thread, s);
	if (e) {
		pthread_mutex_lock(&s->lock);
		s->running = false;
		pthread_mutex_unlock(&s->lock);
		return -e;
	}
	s->started = true;
	return 0;
}

void shrinker_stop(struct shrinker *s)
{
	if (!s->started)
		return;
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	wake(s);
	pthread_join(s->thread, NULL);
	s->started = false;
}

void shrinker_destroy(struct shrinker *s)
{
	if (!s)
		return;
	shrinker_stop(s);
	pressure_close(s->pressure);
	close(s->efd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	for (int i = 0; i < 3; i++)
		free(s->strings[i]);
	free(s);
}

/* --- the callers' side --- */

/*
 * Whether a pool of @size has room for any writer on its own: below the
 * low mark and at least SHRINKER_ROOM_STEP under mem_limit. Above it, or
 * closer to the limit than that (a small mem_limit), a writer that failed
 * needs a shrink call of its own to be sure of room.
 */
static bool room_ok(const struct shrinker *s, uint64_t size)
{
	return size <= s->low && s->cfg.mem_limit - size >= SHRINKER_ROOM_STEP;
}

void shrinker_kick(struct shrinker *s)
{
	if (!s->high || __atomic_load_n(&s->pending, __ATOMIC_RELAXED))
		return;
	if (s->ops.pool_size(s->ops.ctx) <= s->high)
		return;
	if (__atomic_exchange_n(&s->pending, 1, __ATOMIC_ACQ_REL) == 0)
		wake(s);
}

int shrinker_wait_room(struct shrinker *s, unsigned int timeout_ms)
{
	struct timespec dl;
	uint64_t ticket;
	int rc = 0;

	if (!s->cfg.mem_limit)
		return 0;
	STAT_ADD(s, waits, 1);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}

	pthread_mutex_lock(&s->lock);
	ticket = ++s->req_seq;
	s->waiters++;
	wake(s);
	for (;;) {
		uint64_t size = s->ops.pool_size(s->ops.ctx);

		/* A call for us that freed nothing: below the limit or not,
		 * what the writer needs did not fit and will not. */
		if (!s->running || s->fail_seq >= ticket) {
			rc = -ENOSPC;
			break;
		}
		if (size < s->cfg.mem_limit &&
		    (s->done_seq >= ticket || room_ok(s, size))) {
			rc = 0;
			break;
		}
		if (pthread_cond_timedwait(&s->cond, &s->lock, &dl) ==
		    ETIMEDOUT) {
			rc = s->ops.pool_size(s->ops.ctx) < s->cfg.mem_limit
				 ? 0
				 : -ETIMEDOUT;
			break;
		}
	}
	s->waiters--;
	pthread_mutex_unlock(&s->lock);
	if (rc == -ENOSPC)
		STAT_ADD(s, wait_nospc, 1);
	return rc;
}

/* --- the thread --- */

/*
 * One ops->shrink call. Returns the bytes released (0: no progress, which
 * answers every waiter whose ticket predates the call) and wakes the
 * waiters either way.
 */
static uint64_t shrink_once(struct shrinker *s, uint64_t bytes,
			    enum shrinker_trigger trig)
{
	struct shrink_result res = {0};
	uint64_t start;
	int rc;

	if (bytes > s->cfg.batch)
		bytes = s->cfg.batch;
	pthread_mutex_lock(&s->lock);
	start = s->req_seq;
	pthread_mutex_unlock(&s->lock);

	rc = s->ops.shrink(s->ops.ctx, bytes, trig, &res);
	STAT_ADD(s, calls, 1);
	STAT_ADD(s, evicted[trig], res.evicted);
	STAT_ADD(s, released[trig], res.released);
	if (!res.released)
		STAT_ADD(s, stalls, 1);

	pthread_mutex_lock(&s->lock);
	if (!res.released && start > s->fail_seq)
		s->fail_seq = start;
	if (start > s->done_seq)
		s->done_seq = start;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (!res.released && rc < 0 && rc != -ENOENT)
		logf_(s, "shrinker: no progress (%s)", strerror(-rc));
	return res.released;
}

/*
 * Whether a waiter is still owed a shrink call: one that started after
 * its ticket has not finished yet (a waiter served already may not have
 * left yet; it must not get another step below the low mark).
 */
static bool waiter_owed(struct shrinker *s)
{
	bool owed;

	pthread_mutex_lock(&s->lock);
	owed = s->waiters > 0 && s->req_seq > s->done_seq;
	pthread_mutex_unlock(&s->lock);
	return owed;
}

/*
 * The limit trigger: from above the high mark (or for a waiter) down to
 * the low mark. After a call that made no progress, kicks are ignored
 * until *retry_at; waiters are not.
 */
static void limit_work(struct shrinker *s, uint64_t now, uint64_t *retry_at)
{
	bool owed = waiter_owed(s), unserved = owed;
	uint64_t size, want;

	if (!s->high)
		return;
	size = s->ops.pool_size(s->ops.ctx);
	if (!owed && (now < *retry_at || size <= s->high)) {
		if (now >= *retry_at) {
			*retry_at = 0;
			__atomic_store_n(&s->pending, 0, __ATOMIC_RELEASE);
		}
		return;
	}
	*retry_at = 0;
	__atomic_store_n(&s->pending, 0, __ATOMIC_RELEASE);
	while (!shrinker_stopping(s)) {
		size = s->ops.pool_size(s->ops.ctx);
		if (size > s->low)
			want = size - s->low;
		else if (unserved && !room_ok(s, size))
			/* A writer found no room below the low mark, close to
			 * a small mem_limit (its object needed a new zspage of
			 * several pages): a step for it. */
			want = s->high - s->low > SHRINKER_ROOM_STEP
				   ? s->high - s->low
				   : SHRINKER_ROOM_STEP;
		else
			break;
		unserved = false;
		if (!shrink_once(s, want, SHRINKER_LIMIT)) {
			/* Kicks stay silent (pending) until retry_at. */
			__atomic_store_n(&s->pending, 1, __ATOMIC_RELEASE);
			*retry_at = now_ms() + s->cfg.retry_ms;
			break;
		}
	}
	/* Waiters re-check the size even if no call was needed. */
	if (owed) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

/* Shrinks @bytes (clamped to the pool) for a pressure trigger. */
static void pressure_work(struct shrinker *s, uint64_t bytes,
			  enum shrinker_trigger trig)
{
	uint64_t size = s->ops.pool_size(s->ops.ctx);

	if (bytes > size)
		bytes = size;
	while (bytes && !shrinker_stopping(s)) {
		uint64_t got = shrink_once(s, bytes, trig);

		if (!got)
			break;
		bytes -= got < bytes ? got : bytes;
	}
}

static uint64_t psi_step(struct shrinker *s)
{
	uint64_t step = s->ops.pool_size(s->ops.ctx) / 10;

	if (s->cfg.step)
		return s->cfg.step;
	return step < SHRINKER_MIN_STEP ? SHRINKER_MIN_STEP : step;
}

static void idle_work(struct shrinker *s)
{
	struct shrink_result res = {0};

	STAT_ADD(s, idle_scans, 1);
	s->ops.evict_idle(s->ops.ctx, s->cfg.idle_age, &res);
	STAT_ADD(s, evicted[SHRINKER_IDLE], res.evicted);
	STAT_ADD(s, released[SHRINKER_IDLE], res.released);
	if (res.released) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

static int timeout_to(uint64_t now, uint64_t at, int cur)
{
	uint64_t d;

	if (!at)
		return cur;
	d = at > now ? at - now : 0;
	if (d > 60000)
		d = 60000;
	return cur < 0 || (int)d < cur ? (int)d : cur;
}

static void *shrinker_thread(void *arg)
{
	struct shrinker *s = arg;
	struct pollfd fds[1 + PRESSURE_MAX_FDS];
	bool sampling = pressure_needs_sampling(s->pressure);
	bool idle = s->cfg.idle_age && s->ops.evict_idle;
	uint64_t now = now_ms();
	uint64_t next_sample = sampling ? now + s->cfg.sample_ms : 0;
	uint64_t next_idle = idle ? now + s->cfg.idle_interval_ms : 0;
	uint64_t retry_at = 0;
	char desc[768];

	localswap_thread();
	shrinker_describe(s, desc, sizeof(desc));
	logf_(s, "%s", desc);
	while (!shrinker_stopping(s)) {
		struct pressure_sample ps;
		int n, timeout = -1;
		uint64_t drain;

		fds[0] = (struct pollfd){.fd = s->efd, .events = POLLIN};
		n = 1 +
		    pressure_poll_fds(s->pressure, fds + 1, PRESSURE_MAX_FDS);
		now = now_ms();
		timeout = timeout_to(now, next_sample, timeout);
		timeout = timeout_to(now, next_idle, timeout);
		timeout = timeout_to(now, retry_at, timeout);
		if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (shrinker_stopping(s))
			break;
		STAT_ADD(s, wakeups, 1);
		if (fds[0].revents & POLLIN) {
			if (read(s->efd, &drain, sizeof(drain)) < 0) {
				/* EAGAIN: someone else drained it. */
			}
		}
		now = now_ms();
		limit_work(s, now, &retry_at);

		if (n > 1 &&
		    pressure_poll_events(s->pressure, fds + 1, n - 1)) {
			STAT_ADD(s, psi_events, 1);
			pressure_work(s, psi_step(s), SHRINKER_PSI);
		}
		if (sampling && now >= next_sample) {
			pressure_sample(s->pressure, &ps);
			if (ps.psi) {
				STAT_ADD(s, psi_events, 1);
				pressure_work(s, psi_step(s), SHRINKER_PSI);
			}
			if (ps.cgroup_near) {
				STAT_ADD(s, cgroup_events, 1);
				pressure_work(s,
					      ps.cgroup_excess <
						      SHRINKER_MIN_STEP
						  ? SHRINKER_MIN_STEP
						  : ps.cgroup_excess,
					      SHRINKER_CGROUP);
			}
			/* A trigger fd that died is sampled from now on. */
			sampling = pressure_needs_sampling(s->pressure);
			next_sample =
			    sampling ? now_ms() + s->cfg.sample_ms : 0;
		}
		if (idle && now >= next_idle) {
			idle_work(s);
			next_idle = now_ms() + s->cfg.idle_interval_ms;
		}
	}

	pthread_mutex_lock(&s->lock);
	s->running = false;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- reporting --- */

void shrinker_get_stats(struct shrinker *s, struct shrinker_stats *st)
{
	const uint64_t *src = (const uint64_t *)&s->st;
	uint64_t *dst = (uint64_t *)st;

	_Static_assert(sizeof(*st) % sizeof(uint64_t) == 0,
		       "shrinker_stats holds only uint64_t counters");
	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void shrinker_describe(const struct shrinker *s, char *buf, size_t len)
{
	char pd[512];
	int n;

	pressure_describe(s->pressure, pd, sizeof(pd));
	if (s->cfg.mem_limit)
		n = snprintf(buf, len,
			     "shrinker: mem_limit %llu, evict from %llu down "
			     "to %llu; ",
			     (unsigned long long)s->cfg.mem_limit,
			     (unsigned long long)s->high,
			     (unsigned long long)s->low);
	else
		n = snprintf(buf, len, "shrinker: no mem_limit; ");
	if (n < 0 || (size_t)n >= len)
		return;
	if (s->cfg.idle_age)
		n += snprintf(buf + n, len - (size_t)n, "idle after %us; ",
			      s->cfg.idle_age);
	else
		n += snprintf(buf + n, len - (size_t)n, "no idle eviction; ");
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - (size_t)n, "%s", pd);
}
