/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the shrinker thread, against a fake pool (a byte counter
 * with so many evictable bytes) and fake PSI and cgroup files.
 *
 * Nothing here measures time: tests wait for a condition with a generous
 * bound (wait_for(), 60 s) only so that a bug fails instead of hanging.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shrinker.h"
#include "test_tmptree.h"
#include "test_util.h"

#define MiB (UINT64_C(1) << 20)

/* --- the fake pool --- */

struct fake {
	uint64_t size;	    /* atomic: pool bytes */
	uint64_t evictable; /* atomic: bytes shrink may still release */
	uint64_t calls[SHRINKER_NR_TRIGGERS]; /* atomic */
	uint64_t idle_calls;		      /* atomic */
	unsigned int idle_age; /* atomic: last age given to evict_idle */
	int block;	       /* atomic: shrink waits while set */
	int entered;	       /* atomic: shrink was entered */
	char cg_current[600];  /* if set: memory.current follows the pool */
	uint64_t cg_bytes;     /* shrinker thread only */
};

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static uint64_t fake_size(void *ctx)
{
	return ld(&((struct fake *)ctx)->size);
}

static int fake_shrink(void *ctx, uint64_t bytes, enum shrinker_trigger t,
		       struct shrink_result *res)
{
	struct fake *f = ctx;
	uint64_t ev, take;

	__atomic_add_fetch(&f->calls[t], 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&f->entered, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&f->block, __ATOMIC_SEQ_CST))
		usleep(1000);
	ck_assert_uint_le(bytes, SHRINKER_DEFAULT_BATCH);
	ev = ld(&f->evictable);
	do {
		take = bytes < ev ? bytes : ev;
	} while (!__atomic_compare_exchange_n(&f->evictable, &ev, ev - take,
					      false, __ATOMIC_SEQ_CST,
					      __ATOMIC_SEQ_CST));
	__atomic_sub_fetch(&f->size, take, __ATOMIC_SEQ_CST);
	res->released = take;
	res->evicted = (take + 4095) / 4096;
	if (f->cg_current[0] && take) {
		f->cg_bytes -= take;
		write_file(f->cg_current, "%llu\n",
			   (unsigned long long)f->cg_bytes);
	}
	return take ? 0 : -ENOSPC;
}

static int fake_idle(void *ctx, unsigned int age, struct shrink_result *res)
{
	struct fake *f = ctx;

	__atomic_store_n(&f->idle_age, age, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&f->idle_calls, 1, __ATOMIC_SEQ_CST);
	res->evicted = 3;
	res->released = 3 * 1024;
	return 0;
}

static struct fake fk;

static struct shrinker_ops fake_ops(void)
{
	return (struct shrinker_ops){.pool_size = fake_size,
				     .shrink = fake_shrink,
				     .evict_idle = fake_idle,
				     .ctx = &fk};
}

/* A configuration with no pressure sources (they are tested apart). */
static struct shrinker_config quiet_config(uint64_t limit)
{
	struct shrinker_config cfg;

	shrinker_config_defaults(&cfg);
	cfg.mem_limit = limit;
	cfg.pressure.psi = PRESSURE_OFF;
	cfg.pressure.cgroup = PRESSURE_OFF;
	return cfg;
}

static struct shrinker *create_ok(const struct shrinker_config *cfg)
{
	struct shrinker_ops ops = fake_ops();
	char err[256];
	struct shrinker *s = shrinker_create(cfg, &ops, err, sizeof(err));

	ck_assert_msg(s != NULL, "shrinker_create: %s", err);
	return s;
}

/* create_ok(), and its thread started. */
static struct shrinker *start_ok(const struct shrinker_config *cfg)
{
	struct shrinker *s = create_ok(cfg);

	ck_assert_int_eq(shrinker_start(s), 0);
	return s;
}

static struct shrinker_stats stats(struct shrinker *s)
{
	struct shrinker_stats x;

	shrinker_get_stats(s, &x);
	return x;
}

/* Waits (bounded, 60 s) for @cond; fails the test if it never holds. */
#define wait_for(cond)                                                         \
	do {                                                                   \
		int i_;                                                        \
		for (i_ = 0; i_ < 60000 && !(cond); i_++)                      \
			usleep(1000);                                          \
		ck_assert_msg(cond, "gave up waiting for: %s", #cond);         \
	} while (0)

/* The fake pool from scratch: @size bytes, @evictable of them may go. */
static void reset_fake(uint64_t size, uint64_t evictable)
{
	memset(&fk, 0, sizeof(fk));
	st(&fk.size, size);
	st(&fk.evictable, evictable);
}

/* --- configuration --- */

START_TEST(test_config_errors)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker_ops ops = fake_ops();
	char err[256];

	ops.shrink = NULL;
	errno = 0;
	ck_assert_ptr_null(shrinker_create(&cfg, &ops, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "required"));

	ops = fake_ops();
	cfg.mem_high = 0;
	ck_assert_ptr_null(shrinker_create(&cfg, &ops, err, sizeof(err)));
	cfg.mem_high = 101;
	ck_assert_ptr_null(shrinker_create(&cfg, &ops, err, sizeof(err)));
	cfg.mem_high = 50;
	cfg.mem_low = 50;
	errno = 0;
	ck_assert_ptr_null(shrinker_create(&cfg, &ops, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "mem_low"));

	/* Pressure errors come through, message and all. */
	cfg = quiet_config(0);
	cfg.pressure.psi = PRESSURE_ON;
	cfg.pressure.proc_root = "/nonexistent-proc";
	errno = 0;
	ck_assert_ptr_null(shrinker_create(&cfg, &ops, err, sizeof(err)));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "psi=on"));
}
END_TEST

START_TEST(test_describe)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;
	char d[1024];

	cfg.idle_age = 30;
	s = create_ok(&cfg);
	shrinker_describe(s, d, sizeof(d));
	printf("%s\n", d);
	ck_assert_ptr_nonnull(strstr(d, "mem_limit 104857600"));
	ck_assert_ptr_nonnull(strstr(d, "from 94371840 down to 83886080"));
	ck_assert_ptr_nonnull(strstr(d, "idle after 30s"));
	ck_assert_ptr_nonnull(strstr(d, "psi: off"));
	shrinker_destroy(s);
}
END_TEST

/* --- the limit trigger --- */

START_TEST(test_watermarks)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;
	struct shrinker_stats x;

	reset_fake(0, UINT64_MAX);
	s = start_ok(&cfg);

	/* Between low and high: a kick does not even wake the thread. */
	st(&fk.size, 85 * MiB);
	shrinker_kick(s);
	ck_assert_uint_eq(ld(&fk.calls[SHRINKER_LIMIT]), 0);

	/* Above high: shrunk to exactly low, in batches. */
	st(&fk.size, 95 * MiB + 123);
	shrinker_kick(s);
	wait_for(ld(&fk.size) <= 80 * MiB);
	wait_for(stats(s).calls == ld(&fk.calls[SHRINKER_LIMIT]));
	ck_assert_uint_eq(ld(&fk.size), 80 * MiB);
	x = stats(s);
	ck_assert_uint_ge(x.calls, 15);
	ck_assert_uint_eq(x.released[SHRINKER_LIMIT], 15 * MiB + 123);
	ck_assert_uint_gt(x.evicted[SHRINKER_LIMIT], 0);
	ck_assert_uint_eq(x.evicted[SHRINKER_PSI], 0);
	ck_assert_uint_eq(x.evicted[SHRINKER_CGROUP], 0);
	ck_assert_uint_eq(x.evicted[SHRINKER_IDLE], 0);
	ck_assert_uint_eq(x.stalls, 0);

	/* Again, from far above the limit. */
	st(&fk.size, 300 * MiB);
	shrinker_kick(s);
	wait_for(ld(&fk.size) <= 80 * MiB);
	ck_assert_uint_eq(ld(&fk.size), 80 * MiB);
	shrinker_stop(s);
	shrinker_destroy(s);
}
END_TEST

/* No mem_limit: kicks do nothing, waits succeed at once. */
START_TEST(test_no_limit)
{
	struct shrinker_config cfg = quiet_config(0);
	struct shrinker *s;

	reset_fake(1000 * MiB, UINT64_MAX);
	s = start_ok(&cfg);
	shrinker_kick(s);
	ck_assert_int_eq(shrinker_wait_room(s, 1000), 0);
	shrinker_stop(s);
	ck_assert_uint_eq(stats(s).calls, 0);
	ck_assert_uint_eq(ld(&fk.size), 1000 * MiB);
	shrinker_destroy(s);
}
END_TEST

START_TEST(test_wait_room)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;

	reset_fake(100 * MiB, UINT64_MAX);
	s = create_ok(&cfg);
	/* Not running: nobody can make room. */
	ck_assert_int_eq(shrinker_wait_room(s, 60000), -ENOSPC);
	ck_assert_int_eq(shrinker_start(s), 0);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), 0);
	ck_assert_uint_lt(ld(&fk.size), 100 * MiB);
	wait_for(ld(&fk.size) == 80 * MiB);
	ck_assert_uint_eq(stats(s).waits, 2);
	ck_assert_uint_eq(stats(s).wait_nospc, 1);
	shrinker_stop(s);
	/* Stopped: -ENOSPC again. */
	st(&fk.size, 100 * MiB);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), -ENOSPC);
	shrinker_destroy(s);
}
END_TEST

/* The backing file full: writers get -ENOSPC, and room again later. */
START_TEST(test_wait_room_nospc)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;

	reset_fake(100 * MiB, 0);
	cfg.retry_ms = 3600 * 1000; /* kicks are ignored; waiters are not */
	s = start_ok(&cfg);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), -ENOSPC);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), -ENOSPC);
	ck_assert_uint_ge(stats(s).stalls, 2);
	ck_assert_uint_eq(stats(s).wait_nospc, 2);

	/* Some progress, then none, still over the limit: -ENOSPC. */
	st(&fk.size, 110 * MiB);
	st(&fk.evictable, 5 * MiB);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), -ENOSPC);
	ck_assert_uint_eq(ld(&fk.size), 105 * MiB);

	/* Space freed in the backing file: writing works again. */
	st(&fk.evictable, UINT64_MAX);
	ck_assert_int_eq(shrinker_wait_room(s, 60000), 0);
	ck_assert_uint_lt(ld(&fk.size), 100 * MiB);
	shrinker_stop(s);
	shrinker_destroy(s);
}
END_TEST

START_TEST(test_wait_room_timeout)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;

	reset_fake(100 * MiB, UINT64_MAX);
	__atomic_store_n(&fk.block, 1, __ATOMIC_SEQ_CST);
	s = start_ok(&cfg);
	/* The shrink call is stuck: the waiter gives up. */
	ck_assert_int_eq(shrinker_wait_room(s, 50), -ETIMEDOUT);
	__atomic_store_n(&fk.block, 0, __ATOMIC_SEQ_CST);
	shrinker_stop(s);
	shrinker_destroy(s);
}
END_TEST

/* --- stopping --- */

START_TEST(test_stop_prompt)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct shrinker *s;

	reset_fake(0, 0);
	cfg.idle_age = 3600;
	cfg.sample_ms = 3600 * 1000;
	s = create_ok(&cfg);
	/* Stop before start, start twice, stop twice: all fine. */
	shrinker_stop(s);
	ck_assert_int_eq(shrinker_start(s), 0);
	ck_assert_int_eq(shrinker_start(s), 0);
	shrinker_stop(s);
	ck_assert(shrinker_stopping(s));
	shrinker_stop(s);
	/* And again: a stopped shrinker restarts. */
	ck_assert_int_eq(shrinker_start(s), 0);
	ck_assert(!shrinker_stopping(s));
	shrinker_destroy(s);
	ck_assert_uint_eq(ld(&fk.idle_calls), 0);
}
END_TEST

struct waiter {
	struct shrinker *s;
	int rc;
};

static void *waiter_run(void *arg)
{
	struct waiter *w = arg;

	w->rc = shrinker_wait_room(w->s, 600000);
	return NULL;
}

static void *stopper_run(void *arg)
{
	shrinker_stop(arg);
	return NULL;
}

/* Stop during a shrink call: the call finishes, waiters get -ENOSPC. */
START_TEST(test_stop_with_waiter)
{
	struct shrinker_config cfg = quiet_config(100 * MiB);
	struct waiter w;
	pthread_t wt, stt;
	struct shrinker *s;

	reset_fake(200 * MiB, UINT64_MAX);
	__atomic_store_n(&fk.block, 1, __ATOMIC_SEQ_CST);
	s = start_ok(&cfg);
	w = (struct waiter){.s = s, .rc = 1};
	ck_assert_int_eq(pthread_create(&wt, NULL, waiter_run, &w), 0);
	wait_for(__atomic_load_n(&fk.entered, __ATOMIC_SEQ_CST));
	ck_assert_int_eq(pthread_create(&stt, NULL, stopper_run, s), 0);
	wait_for(shrinker_stopping(s));
	__atomic_store_n(&fk.block, 0, __ATOMIC_SEQ_CST);
	pthread_join(stt, NULL);
	pthread_join(wt, NULL);
	ck_assert_int_eq(w.rc, -ENOSPC);
	/* The thread left after the call it was in. */
	ck_assert_uint_eq(ld(&fk.calls[SHRINKER_LIMIT]), 1);
	ck_assert_uint_eq(ld(&fk.size), 199 * MiB);
	shrinker_destroy(s);
}
END_TEST

/* --- idle and pressure triggers --- */

START_TEST(test_idle_timer)
{
	struct shrinker_config cfg = quiet_config(0);
	struct shrinker *s;
	struct shrinker_stats x;

	reset_fake(0, 0);
	cfg.idle_age = 7;
	cfg.idle_interval_ms = 5;
	s = start_ok(&cfg);
	wait_for(ld(&fk.idle_calls) >= 3);
	shrinker_stop(s);
	x = stats(s);
	ck_assert_uint_eq(__atomic_load_n(&fk.idle_age, __ATOMIC_SEQ_CST), 7);
	ck_assert_uint_eq(x.idle_scans, ld(&fk.idle_calls));
	ck_assert_uint_eq(x.evicted[SHRINKER_IDLE], 3 * x.idle_scans);
	ck_assert_uint_eq(x.released[SHRINKER_IDLE], 3 * 1024 * x.idle_scans);
	ck_assert_uint_eq(x.evicted[SHRINKER_LIMIT], 0);
	shrinker_destroy(s);
}
END_TEST

/* PSI (sampled, as fake files are) with no mem_limit: one step per event. */
START_TEST(test_psi_sampled)
{
	struct shrinker_config cfg = quiet_config(0);
	struct shrinker *s;
	struct shrinker_stats x;

	reset_fake(50 * MiB, UINT64_MAX);
	put("proc/pressure/memory",
	    "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	cfg.pressure.proc_root = at("proc");
	cfg.pressure.psi = PRESSURE_ON;
	cfg.sample_ms = 5;
	s = start_ok(&cfg);
	/* Quiet samples first: nothing happens. */
	wait_for(stats(s).wakeups >= 3);
	ck_assert_uint_eq(stats(s).psi_events, 0);

	/* A stall far longer than any sampling interval. */
	put("proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 "
				    "total=100000000000000\n");
	wait_for(stats(s).psi_events >= 1);
	wait_for(ld(&fk.size) <= 45 * MiB);
	/* The counter stands still from now on: no more events. */
	shrinker_stop(s);
	x = stats(s);
	ck_assert_uint_eq(x.psi_events, 1);
	ck_assert_uint_eq(x.released[SHRINKER_PSI], 5 * MiB);
	ck_assert_uint_eq(ld(&fk.size), 45 * MiB);
	ck_assert_uint_eq(x.evicted[SHRINKER_PSI], 5 * MiB / 4096);
	ck_assert_uint_eq(x.evicted[SHRINKER_LIMIT], 0);
	shrinker_destroy(s);
}
END_TEST

/* A fixed step, and the step clamped to the pool. */
START_TEST(test_psi_step)
{
	struct shrinker_config cfg = quiet_config(0);
	struct shrinker *s;

	reset_fake(3 * MiB, UINT64_MAX);
	/* avg10 decides the first sample. */
	put("proc/pressure/memory",
	    "some avg10=50.00 avg60=0.00 avg300=0.00 total=0\n");
	cfg.pressure.proc_root = at("proc");
	cfg.pressure.psi = PRESSURE_ON;
	cfg.pressure.psi_pct = 40;
	cfg.sample_ms = 5;
	cfg.step = 10 * MiB;
	s = start_ok(&cfg);
	wait_for(ld(&fk.size) == 0);
	shrinker_stop(s);
	ck_assert_uint_eq(stats(s).psi_events, 1);
	ck_assert_uint_eq(stats(s).released[SHRINKER_PSI], 3 * MiB);
	shrinker_destroy(s);
}
END_TEST

/* The cgroup near memory.max: the excess is evicted. */
START_TEST(test_cgroup_sampled)
{
	struct shrinker_config cfg = quiet_config(0);
	struct shrinker *s;
	struct shrinker_stats x;
	uint64_t line = 900 * MiB;

	reset_fake(50 * MiB, UINT64_MAX);
	fk.cg_bytes = line + 3 * MiB + 5;
	put("cg/svc/memory.current", "%llu\n", (unsigned long long)fk.cg_bytes);
	put("cg/svc/memory.high", "max\n");
	put("cg/svc/memory.max", "%llu\n", (unsigned long long)(1000 * MiB));
	snprintf(fk.cg_current, sizeof(fk.cg_current), "%s",
		 at("cg/svc/memory.current"));
	cfg.pressure.cgroup = PRESSURE_ON;
	cfg.pressure.cgroup_dir = at("cg/svc");
	cfg.sample_ms = 5;
	s = start_ok(&cfg);
	/* Evicting lowers memory.current (the fake does it) below the line. */
	wait_for(stats(s).cgroup_events >= 1);
	wait_for(ld(&fk.size) < 50 * MiB - 3 * MiB);
	shrinker_stop(s);
	x = stats(s);
	ck_assert_uint_ge(x.released[SHRINKER_CGROUP], 3 * MiB + 5);
	ck_assert_uint_eq(x.released[SHRINKER_CGROUP], 50 * MiB - ld(&fk.size));
	ck_assert_uint_gt(x.evicted[SHRINKER_CGROUP], 0);
	ck_assert_uint_eq(x.evicted[SHRINKER_PSI], 0);
	ck_assert_uint_lt(fk.cg_bytes, line + 1);
	shrinker_destroy(s);
}
END_TEST

/* --- many writers --- */

struct writer {
	struct shrinker *s;
	unsigned int seed;
	int ok, nospc;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < 3000; i++) {
		uint64_t sz = __atomic_add_fetch(
		    &fk.size, 4096 + rand_r(&w->seed) % 4096, __ATOMIC_SEQ_CST);

		shrinker_kick(w->s);
		if (sz >= 16 * MiB) {
			int rc = shrinker_wait_room(w->s, 600000);

			if (rc == 0)
				w->ok++;
			else if (rc == -ENOSPC)
				w->nospc++;
			else
				return "unexpected wait_room answer";
		}
	}
	return NULL;
}

START_TEST(test_concurrent_writers)
{
	enum { T = 4 };
	struct shrinker_config cfg = quiet_config(16 * MiB);
	struct writer w[T];
	pthread_t th[T];
	struct shrinker *s;
	unsigned long seed = test_seed();
	int nospc = 0;

	printf("test_concurrent_writers: TEST_SEED=%lu\n", seed);
	reset_fake(0, UINT64_MAX);
	s = start_ok(&cfg);
	for (int i = 0; i < T; i++) {
		w[i] =
		    (struct writer){.s = s, .seed = (unsigned int)(seed + i)};
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, writer_run, &w[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		void *res;

		pthread_join(th[i], &res);
		ck_assert_msg(res == NULL, "writer %d: %s", i,
			      res ? (char *)res : "");
		nospc += w[i].nospc;
	}
	/* Evictable without end: nobody was refused. */
	ck_assert_int_eq(nospc, 0);
	wait_for(ld(&fk.size) <= 16 * MiB * 90 / 100);
	shrinker_stop(s);
	ck_assert_uint_eq(stats(s).stalls, 0);
	ck_assert_uint_gt(stats(s).evicted[SHRINKER_LIMIT], 0);
	shrinker_destroy(s);
}
END_TEST

static Suite *shrinker_suite(void)
{
	Suite *s = suite_create("shrinker");
	TCase *core = tcase_create("core");
	TCase *trig = tcase_create("triggers");
	TCase *conc = tcase_create("concurrency");

	tcase_add_test(core, test_config_errors);
	tcase_add_test(core, test_describe);
	tcase_add_test(core, test_watermarks);
	tcase_add_test(core, test_no_limit);
	tcase_add_test(core, test_wait_room);
	tcase_add_test(core, test_wait_room_nospc);
	tcase_add_test(core, test_wait_room_timeout);
	tcase_add_test(core, test_stop_prompt);
	tcase_add_test(core, test_stop_with_waiter);
	tcase_set_timeout(core, 120);
	suite_add_tcase(s, core);

	tcase_add_checked_fixture(trig, make_root, remove_root);
	tcase_add_test(trig, test_idle_timer);
	tcase_add_test(trig, test_psi_sampled);
	tcase_add_test(trig, test_psi_step);
	tcase_add_test(trig, test_cgroup_sampled);
	tcase_set_timeout(trig, 120);
	suite_add_tcase(s, trig);

	tcase_add_test(conc, test_concurrent_writers);
	tcase_set_timeout(conc, 300);
	suite_add_tcase(s, conc);
	return s;
}

int main(void)
{
	return test_run_suite(shrinker_suite());
}
