/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the pressure sources: the PSI and cgroup parsers, the
 * threshold logic, cgroup discovery (v2, v1, mount roots) and sampling,
 * all against fake /proc and cgroup trees in a temporary directory; and a
 * smoke test against this machine's real files when they exist.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "pressure.h"
#include "test_tmptree.h"
#include "test_util.h"

/* --- parsers --- */

START_TEST(test_parse_psi_key)
{
	static const char *const bad[] = {"",	"0",   "101", "abc", "15x",
					  "-5", "on ", "ON",  " 5",  "1.5"};
	enum pressure_mode m;
	unsigned int pct;

	ck_assert_int_eq(pressure_parse_psi("on", &m, &pct), 0);
	ck_assert_int_eq(m, PRESSURE_ON);
	ck_assert_uint_eq(pct, PRESSURE_PSI_DEFAULT_PCT);
	ck_assert_int_eq(pressure_parse_psi("off", &m, &pct), 0);
	ck_assert_int_eq(m, PRESSURE_OFF);
	ck_assert_int_eq(pressure_parse_psi("auto", &m, &pct), 0);
	ck_assert_int_eq(m, PRESSURE_AUTO);
	ck_assert_int_eq(pressure_parse_psi("1", &m, &pct), 0);
	ck_assert_int_eq(m, PRESSURE_ON);
	ck_assert_uint_eq(pct, 1);
	ck_assert_int_eq(pressure_parse_psi("100", &m, &pct), 0);
	ck_assert_uint_eq(pct, 100);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pressure_parse_psi(bad[i], &m, &pct) == -EINVAL,
			      "psi=%s accepted", bad[i]);
	ck_assert_int_eq(pressure_parse_psi(NULL, &m, &pct), -EINVAL);
}
END_TEST

START_TEST(test_psi_parse)
{
	struct psi_stats st;

	ck_assert_int_eq(
	    psi_parse("some avg10=12.34 avg60=5.60 avg300=0.07 "
		      "total=123456789\n"
		      "full avg10=100.00 avg60=0.00 avg300=99.9 total=42\n",
		      &st),
	    0);
	ck_assert(st.some.valid);
	ck_assert_uint_eq(st.some.avg10, 1234);
	ck_assert_uint_eq(st.some.avg60, 560);
	ck_assert_uint_eq(st.some.avg300, 7);
	ck_assert_uint_eq(st.some.total, 123456789);
	ck_assert(st.full.valid);
	ck_assert_uint_eq(st.full.avg10, 10000);
	ck_assert_uint_eq(st.full.avg300, 9990);
	ck_assert_uint_eq(st.full.total, 42);

	/* "some" alone (the kernel's cpu file once had no "full"). */
	ck_assert_int_eq(psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00 "
				   "total=0",
				   &st),
			 0);
	ck_assert(!st.full.valid);
	ck_assert_uint_eq(st.some.total, 0);

	/* A malformed "full" line does not spoil "some". */
	ck_assert_int_eq(psi_parse("some avg10=1.00 avg60=0.00 avg300=0.00 "
				   "total=7\nfull avg10=x\n",
				   &st),
			 0);
	ck_assert(!st.full.valid);
	ck_assert_uint_eq(st.some.avg10, 100);

	ck_assert_int_eq(psi_parse("", &st), -EINVAL);
	ck_assert_int_eq(psi_parse("full avg10=0.00 avg60=0.00 avg300=0.00 "
				   "total=0\n",
				   &st),
			 -EINVAL);
	ck_assert_int_eq(psi_parse("some avg10=0.00 avg60=0.00 total=0\n", &st),
			 -EINVAL);
	ck_assert_int_eq(psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00 "
				   "total=abc\n",
				   &st),
			 -EINVAL);
	ck_assert_int_eq(psi_parse("some avg10=101.00 avg60=0.00 avg300=0.00 "
				   "total=1\n",
				   &st),
			 -EINVAL);
}
END_TEST

START_TEST(test_psi_over)
{
	struct psi_line prev = {.valid = true, .total = 1000000};
	struct psi_line cur = {.valid = true, .avg10 = 1500};
	struct psi_line bad = {0};

	/* No predecessor: avg10 against the threshold. */
	ck_assert(psi_over(NULL, &cur, 0, 15));
	ck_assert(!psi_over(NULL, &cur, 0, 16));
	ck_assert(psi_over(&bad, &cur, 1000000, 15));
	ck_assert(psi_over(&prev, &cur, 0, 15));
	ck_assert(!psi_over(NULL, &bad, 0, 1));

	/* With one: the exact share of the interval, avg10 ignored. */
	cur.avg10 = 0;
	cur.total = prev.total + 150000;
	ck_assert(psi_over(&prev, &cur, 1000000, 15));
	ck_assert(!psi_over(&prev, &cur, 1000001, 15));
	cur.total = prev.total + 149999;
	ck_assert(!psi_over(&prev, &cur, 1000000, 15));
	cur.avg10 = 9999;
	ck_assert(!psi_over(&prev, &cur, 1000000, 15));
	/* A counter going backwards (a new cgroup) is no stall. */
	cur.total = prev.total - 1;
	ck_assert(!psi_over(&prev, &cur, 1000000, 1));
	/* Stall longer than the interval (clock granularity). */
	cur.total = prev.total + 5000000;
	ck_assert(psi_over(&prev, &cur, 1000000, 100));
	/* Huge values do not overflow. */
	prev.total = 0;
	cur.total = UINT64_MAX / 50;
	ck_assert(psi_over(&prev, &cur, UINT64_MAX / 10, 15));
	ck_assert(!psi_over(&prev, &cur, UINT64_MAX / 2, 15));
}
END_TEST

START_TEST(test_cgroup_values)
{
	uint64_t v = 0;

	ck_assert_int_eq(cgroup_parse_value("max", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(cgroup_parse_value("max\n", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(cgroup_parse_value("123\n", &v), 0);
	ck_assert_uint_eq(v, 123);
	ck_assert_int_eq(cgroup_parse_value("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	/* cgroup v1's "unlimited". */
	ck_assert_int_eq(cgroup_parse_value("9223372036854771712\n", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(cgroup_parse_value("", &v), -EINVAL);
	ck_assert_int_eq(cgroup_parse_value("abc", &v), -EINVAL);
	ck_assert_int_eq(cgroup_parse_value("12a", &v), -EINVAL);
	ck_assert_int_eq(cgroup_parse_value("-1", &v), -EINVAL);
	ck_assert_int_eq(cgroup_parse_value("maxi", &v), -EINVAL);
	ck_assert_int_eq(cgroup_parse_value("99999999999999999999999", &v),
			 -EINVAL);
}
END_TEST

START_TEST(test_cgroup_near)
{
	uint64_t ex = 99;

	ck_assert(!cgroup_near(899, 1000, 10, &ex));
	ck_assert_uint_eq(ex, 0);
	ck_assert(cgroup_near(900, 1000, 10, &ex));
	ck_assert_uint_eq(ex, 0);
	ck_assert(cgroup_near(950, 1000, 10, &ex));
	ck_assert_uint_eq(ex, 50);
	ck_assert(cgroup_near(1200, 1000, 10, &ex));
	ck_assert_uint_eq(ex, 300);
	ck_assert(!cgroup_near(UINT64_MAX - 1, UINT64_MAX, 10, &ex));
	ck_assert(!cgroup_near(999, 1000, 0, &ex));
	ck_assert(cgroup_near(1000, 1000, 0, &ex));
	/* No overflow near the top of the range. */
	ck_assert(!cgroup_near(0, UINT64_MAX - 1, 50, &ex));
	ck_assert(cgroup_near(UINT64_MAX - 2, UINT64_MAX - 1, 50, &ex));
}
END_TEST

/* --- discovery and sampling against fake trees --- */

static const char psi_zero[] = "some avg10=0.00 avg60=0.00 avg300=0.00 "
			       "total=0\nfull avg10=0.00 avg60=0.00 "
			       "avg300=0.00 total=0\n";

static struct pressure *open_fake(enum pressure_mode psi, enum pressure_mode cg)
{
	struct pressure_config cfg = {
	    .proc_root = at("proc"),
	    .psi = psi,
	    .cgroup = cg,
	};
	char err[256];
	struct pressure *p = pressure_open(&cfg, err, sizeof(err));

	ck_assert_msg(p != NULL, "pressure_open: %s", err);
	return p;
}

static void fake_v2(void)
{
	put("proc/self/cgroup", "0::/system.slice/zramd.service\n");
	put("proc/self/mountinfo",
	    "22 1 0:20 / /proc rw,nosuid - proc proc rw\n"
	    "30 25 0:26 / %s rw,nosuid,nodev - cgroup2 cgroup2 "
	    "rw,nsdelegate\n",
	    at("cg"));
	put("proc/pressure/memory", psi_zero);
	/* The mount point's own files are never read. */
	put("cg/memory.max", "1\n");
	put("cg/memory.current", "1000000\n");
	put("cg/system.slice/memory.current", "300\n");
	put("cg/system.slice/memory.high", "max\n");
	put("cg/system.slice/memory.max", "max\n");
	put("cg/system.slice/zramd.service/memory.current", "100\n");
	put("cg/system.slice/zramd.service/memory.high", "max\n");
	put("cg/system.slice/zramd.service/memory.max", "1000\n");
	put("cg/system.slice/zramd.service/memory.pressure", psi_zero);
}

START_TEST(test_discover_v2)
{
	struct pressure *p;
	struct pressure_sample s;
	struct pollfd fds[PRESSURE_MAX_FDS];
	char desc[1024];

	fake_v2();
	p = open_fake(PRESSURE_AUTO, PRESSURE_AUTO);
	pressure_describe(p, desc, sizeof(desc));
	printf("v2: %s\n", desc);
	ck_assert_ptr_nonnull(strstr(desc, "cgroup v2"));
	ck_assert_ptr_nonnull(strstr(desc, "zramd.service and 1 ancestor"));
	ck_assert_ptr_nonnull(strstr(desc, "zramd.service/memory.pressure"));
	ck_assert_ptr_nonnull(strstr(desc, "proc/pressure/memory (sampled"));
	/* Fake files are sampled, never armed (nor written to). */
	ck_assert_int_eq(pressure_poll_fds(p, fds, PRESSURE_MAX_FDS), 0);
	ck_assert(pressure_needs_sampling(p));

	pressure_sample(p, &s);
	ck_assert(!s.cgroup_near);
	ck_assert(!s.psi);

	/* The service near its memory.max. */
	put("cg/system.slice/zramd.service/memory.current", "950\n");
	pressure_sample(p, &s);
	ck_assert(s.cgroup_near);
	ck_assert_uint_eq(s.cgroup_excess, 50);
	ck_assert_uint_eq(s.cgroup_current, 950);
	ck_assert_uint_eq(s.cgroup_limit, 1000);

	/* memory.high counts too; the largest excess wins. */
	put("cg/system.slice/zramd.service/memory.high", "800\n");
	pressure_sample(p, &s);
	ck_assert(s.cgroup_near);
	ck_assert_uint_eq(s.cgroup_excess, 950 - 720);
	ck_assert_uint_eq(s.cgroup_limit, 800);

	/* A parent slice's limit binds as well. */
	put("cg/system.slice/zramd.service/memory.current", "100\n");
	put("cg/system.slice/memory.current", "1900\n");
	put("cg/system.slice/memory.max", "2000\n");
	pressure_sample(p, &s);
	ck_assert(s.cgroup_near);
	ck_assert_uint_eq(s.cgroup_excess, 100);
	ck_assert_uint_eq(s.cgroup_limit, 2000);
	pressure_close(p);
}
END_TEST

START_TEST(test_discover_v1)
{
	struct pressure *p;
	struct pressure_sample s;
	char desc[1024];

	put("proc/self/cgroup",
	    "9:name=systemd:/\n4:cpu,memory:/jobs/job1\n0::/\n");
	put("proc/self/mountinfo",
	    "30 25 0:26 / %s rw - cgroup2 cgroup2 rw\n"
	    "31 25 0:27 / %s rw - cgroup cgroup rw,cpu,memory\n",
	    at("unified"), at("mem"));
	put("mem/jobs/job1/memory.usage_in_bytes", "5000\n");
	put("mem/jobs/job1/memory.limit_in_bytes", "9223372036854771712\n");
	put("mem/jobs/memory.usage_in_bytes", "5000\n");
	put("mem/jobs/memory.limit_in_bytes", "9223372036854771712\n");
	p = open_fake(PRESSURE_OFF, PRESSURE_ON);
	pressure_describe(p, desc, sizeof(desc));
	printf("v1: %s\n", desc);
	ck_assert_ptr_nonnull(strstr(desc, "psi: off"));
	ck_assert_ptr_nonnull(strstr(desc, "cgroup v1"));
	ck_assert_ptr_nonnull(strstr(desc, "job1 and 1 ancestor"));
	pressure_sample(p, &s);
	ck_assert(!s.cgroup_near);
	put("mem/jobs/job1/memory.limit_in_bytes", "5200\n");
	pressure_sample(p, &s);
	ck_assert(s.cgroup_near);
	ck_assert_uint_eq(s.cgroup_excess, 5000 - 4680);
	pressure_close(p);
}
END_TEST

/* A mount whose root is not "/" and whose mount point has a space. */
START_TEST(test_discover_mount_root)
{
	struct pressure *p;
	char desc[1024];

	put("proc/self/cgroup", "0::/system.slice/a.service\n");
	put("proc/self/mountinfo",
	    "30 25 0:26 /other %s rw - cgroup2 cgroup2 rw\n"
	    "31 25 0:26 /system.slice %s/c\\040g\\040x rw - cgroup2 cgroup2 "
	    "rw\n",
	    at("wrong"), root);
	put("c g x/a.service/memory.current", "1\n");
	put("c g x/a.service/memory.max", "max\n");
	p = open_fake(PRESSURE_OFF, PRESSURE_ON);
	pressure_describe(p, desc, sizeof(desc));
	printf("root: %s\n", desc);
	ck_assert_ptr_nonnull(strstr(desc, "c g x/a.service and 0 ancestor"));
	pressure_close(p);
}
END_TEST

START_TEST(test_psi_sampling)
{
	struct pressure *p;
	struct pressure_sample s;

	put("proc/self/cgroup", "0::/\n");
	put("proc/pressure/memory", psi_zero);
	p = open_fake(PRESSURE_ON, PRESSURE_AUTO);
	pressure_sample(p, &s);
	ck_assert(!s.psi);
	ck_assert(!s.cgroup_near);
	/* Stalled far longer than any interval this test can take. */
	put("proc/pressure/memory",
	    "some avg10=0.00 avg60=0.00 avg300=0.00 total=100000000000000\n"
	    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	pressure_sample(p, &s);
	ck_assert(s.psi);
	/* No stall since: not over, even with a high avg10. */
	put("proc/pressure/memory",
	    "some avg10=99.00 avg60=0.00 avg300=0.00 total=100000000000000\n");
	pressure_sample(p, &s);
	ck_assert(!s.psi);
	pressure_close(p);

	/* The first sample goes by avg10. */
	p = open_fake(PRESSURE_ON, PRESSURE_OFF);
	pressure_sample(p, &s);
	ck_assert(s.psi);
	pressure_close(p);
}
END_TEST

START_TEST(test_required_sources)
{
	struct pressure_config cfg = {.proc_root = at("proc")};
	struct pressure *p;
	char err[256];

	put("proc/self/cgroup", "0::/\n");
	/* AUTO with nothing there: a monitor that watches nothing. */
	p = pressure_open(&cfg, err, sizeof(err));
	ck_assert_ptr_nonnull(p);
	ck_assert(!pressure_needs_sampling(p));
	pressure_close(p);

	cfg.psi = PRESSURE_ON;
	errno = 0;
	ck_assert_ptr_null(pressure_open(&cfg, err, sizeof(err)));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "psi=on"));
	ck_assert_ptr_nonnull(strstr(err, "pressure/memory"));

	/* PSI compiled in but disabled: unparsable here, refused too. */
	put("proc/pressure/memory", "garbage\n");
	ck_assert_ptr_null(pressure_open(&cfg, err, sizeof(err)));

	cfg.psi = PRESSURE_OFF;
	cfg.cgroup = PRESSURE_ON;
	errno = 0;
	ck_assert_ptr_null(pressure_open(&cfg, err, sizeof(err)));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cgroup=on"));

	cfg.cgroup = PRESSURE_OFF;
	cfg.psi_pct = 101;
	errno = 0;
	ck_assert_ptr_null(pressure_open(&cfg, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* An explicit directory, watched alone unless a top is given. */
START_TEST(test_explicit_dir)
{
	struct pressure_config cfg = {
	    .proc_root = at("proc"),
	    .cgroup_dir = at("cg/system.slice/zramd.service"),
	    .psi = PRESSURE_OFF,
	    .cgroup = PRESSURE_ON,
	    .cgroup_margin_pct = 50,
	};
	struct pressure_sample s;
	struct pressure *p;
	char desc[1024];

	fake_v2();
	p = pressure_open(&cfg, desc, sizeof(desc));
	ck_assert_msg(p != NULL, "%s", desc);
	pressure_describe(p, desc, sizeof(desc));
	ck_assert_ptr_nonnull(strstr(desc, "and 0 ancestor"));
	ck_assert_ptr_nonnull(strstr(desc, "margin 50%"));
	pressure_sample(p, &s);
	ck_assert(!s.cgroup_near);
	put("cg/system.slice/zramd.service/memory.current", "500\n");
	pressure_sample(p, &s);
	ck_assert(s.cgroup_near);
	pressure_close(p);

	cfg.cgroup_top = at("cg");
	p = pressure_open(&cfg, desc, sizeof(desc));
	ck_assert_msg(p != NULL, "%s", desc);
	pressure_describe(p, desc, sizeof(desc));
	ck_assert_ptr_nonnull(strstr(desc, "and 1 ancestor"));
	pressure_close(p);
}
END_TEST

/* --- this machine --- */

START_TEST(test_real_files)
{
	struct pressure_config cfg = {.psi = PRESSURE_ON,
				      .cgroup = PRESSURE_AUTO};
	struct pollfd fds[PRESSURE_MAX_FDS];
	struct pressure_sample s;
	struct pressure *p;
	char desc[1024];
	int n;

	p = pressure_open(&cfg, desc, sizeof(desc));
	ck_assert_msg(p != NULL, "%s", desc);
	pressure_describe(p, desc, sizeof(desc));
	printf("this machine: %s\n", desc);
	n = pressure_poll_fds(p, fds, PRESSURE_MAX_FDS);
	ck_assert_int_ge(n, 0);
	if (n > 0) {
		ck_assert_int_ge(poll(fds, (nfds_t)n, 0), 0);
		ck_assert_int_ge(pressure_poll_events(p, fds, n), 0);
	}
	pressure_sample(p, &s);
	pressure_close(p);

	cfg.psi_no_trigger = true;
	p = pressure_open(&cfg, desc, sizeof(desc));
	ck_assert_msg(p != NULL, "%s", desc);
	ck_assert_int_eq(pressure_poll_fds(p, fds, PRESSURE_MAX_FDS), 0);
	ck_assert(pressure_needs_sampling(p));
	pressure_close(p);
}
END_TEST

static bool real_psi_readable(void)
{
	char buf[256] = "";
	struct psi_stats st;
	FILE *f = fopen("/proc/pressure/memory", "r");
	bool ok;

	if (!f)
		return false;
	ok = fread(buf, 1, sizeof(buf) - 1, f) > 0 && psi_parse(buf, &st) == 0;
	fclose(f);
	return ok;
}

static Suite *pressure_suite(void)
{
	Suite *s = suite_create("pressure");
	TCase *parse = tcase_create("parse");
	TCase *fake = tcase_create("fake");
	TCase *real = tcase_create("real");

	tcase_add_test(parse, test_parse_psi_key);
	tcase_add_test(parse, test_psi_parse);
	tcase_add_test(parse, test_psi_over);
	tcase_add_test(parse, test_cgroup_values);
	tcase_add_test(parse, test_cgroup_near);
	suite_add_tcase(s, parse);

	tcase_add_checked_fixture(fake, make_root, remove_root);
	tcase_add_test(fake, test_discover_v2);
	tcase_add_test(fake, test_discover_v1);
	tcase_add_test(fake, test_discover_mount_root);
	tcase_add_test(fake, test_psi_sampling);
	tcase_add_test(fake, test_required_sources);
	tcase_add_test(fake, test_explicit_dir);
	suite_add_tcase(s, fake);

	if (real_psi_readable())
		tcase_add_test(real, test_real_files);
	else
		printf("SKIP test_real_files: /proc/pressure/memory absent or "
		       "PSI disabled\n");
	suite_add_tcase(s, real);
	return s;
}

int main(void)
{
	return test_run_suite(pressure_suite());
}
