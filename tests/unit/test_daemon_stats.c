/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the stats file (daemon/stats.c) and the background thread
 * (daemon/bg.c): the format follows include/zramd_stats.h, the file is
 * replaced atomically, the thread writes it at start, periodically and at
 * stop, and the compaction policy.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bg.h"
#include "device.h"
#include "stats.h"
#include "test_util.h"
#include "zpool.h"

static char dir[128], path[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/zramd-stats-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/zramd.stats", dir);
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The value of @key in the stats file, or -1. */
static long long file_value(const char *key)
{
	FILE *f = fopen(path, "r");
	char line[256], k[64];
	long long v, found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", k, &v) == 2 &&
		    strcmp(k, key) == 0)
			found = v;
	fclose(f);
	return found;
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

START_TEST(test_format)
{
	struct zstats s = { .allocator = "zbud" };
	char text[4096], *line, *save;
	int i = -3;

	for (int k = 0; k < ZSTAT_COUNT; k++)
		s.v[k] = (uint64_t)k * 1000 + 1;
	s.v[ZSTAT_disksize] = UINT64_MAX;
	ck_assert_uint_lt(stats_format(&s, text, sizeof(text)), sizeof(text));
	/* Comment, version, allocator, then every counter in order. */
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char want[128];

		if (i == -3) {
			ck_assert_str_eq(line, "# zramd stats v1");
			continue;
		}
		if (i == -2) {
			ck_assert_str_eq(line, "version 1");
			continue;
		}
		if (i == -1) {
			ck_assert_str_eq(line, "allocator zbud");
			continue;
		}
		snprintf(want, sizeof(want), "%s %" PRIu64, zstat_names[i],
			 s.v[i]);
		ck_assert_str_eq(line, want);
	}
	ck_assert_int_eq(i, ZSTAT_COUNT);
	ck_assert_str_eq(zstat_names[ZSTAT_orig_data_size], "orig_data_size");
	ck_assert_str_eq(zstat_names[ZSTAT_evict_idle], "evict_idle");
	/* A short buffer says how much was needed. */
	ck_assert_uint_gt(stats_format(&s, text, 10), 10);
}
END_TEST

START_TEST(test_write_file)
{
	struct zstats s = { .allocator = "zsmalloc" };
	char bad[300];

	s.v[ZSTAT_same_pages] = 42;
	ck_assert_int_eq(stats_write_file(path, &s), 0);
	ck_assert_int_eq(file_value("same_pages"), 42);
	s.v[ZSTAT_same_pages] = 43;
	ck_assert_int_eq(stats_write_file(path, &s), 0);
	ck_assert_int_eq(file_value("same_pages"), 43);
	/* No temporary file is left behind. */
	ck_assert_int_eq(count_files(), 1);
	ck_assert_int_eq(access(path, R_OK), 0);
	snprintf(bad, sizeof(bad), "%s/missing/zramd.stats", dir);
	ck_assert_int_eq(stats_write_file(bad, &s), -ENOENT);
}
END_TEST

static void first_type(const char *type, void *arg)
{
	if (!*(const char **)arg)
		*(const char **)arg = type;
}

static char logged[256];

static void log_msg(const char *msg)
{
	snprintf(logged, sizeof(logged), "%s", msg);
}

/* The thread writes at start, every interval, and the final values. */
START_TEST(test_bg_thread)
{
	const char *type = NULL;
	struct zdev_config dc = { .size = 1 << 20, .acceleration = 1,
				  .huge_threshold = 3072 };
	struct zdev *dev;
	struct bg *bg;
	unsigned char buf[4096];
	int err;

	zpool_for_each_type(first_type, &type);
	dc.allocator = type;
	dev = zdev_create(&dc, &err);
	ck_assert_ptr_nonnull(dev);
	struct bg_config cfg = { .dev = dev, .stats_path = path,
				 .stats_interval = 1, .compact_interval = 1,
				 .log = log_msg };

	bg = bg_start(&cfg);
	ck_assert_ptr_nonnull(bg);
	ck_assert_int_eq(file_value("disksize"), 1 << 20);
	ck_assert_int_eq(file_value("same_pages"), 0);

	memset(buf, 0x11, sizeof(buf));
	zdev_write(dev, buf, sizeof(buf), 0, false);
	/* Within a few intervals the file shows the write. */
	for (int i = 0; i < 100 && file_value("same_pages") != 1; i++)
		usleep(50 * 1000);
	ck_assert_int_eq(file_value("same_pages"), 1);

	zdev_write(dev, buf, sizeof(buf), 4096, false);
	bg_stop(bg);
	/* bg_stop wrote the final counters. */
	ck_assert_int_eq(file_value("same_pages"), 2);
	ck_assert_int_eq(file_value("orig_data_size"), 8192);
	ck_assert_str_eq(logged, "");
	bg_stop(NULL);

	/* A stats file that cannot be written is reported once. */
	snprintf(path, sizeof(path), "%s/missing/x.stats", dir);
	bg = bg_start(&cfg);
	ck_assert_ptr_nonnull(bg);
	bg_stop(bg);
	ck_assert_ptr_nonnull(strstr(logged, "writing stats file"));
	zdev_destroy(dev);
}
END_TEST

START_TEST(test_compact_policy)
{
	/* Little waste, or waste small against the data: no. */
	ck_assert(!bg_compact_worth_it(0, 0));
	ck_assert(!bg_compact_worth_it(512 << 10, 0));
	ck_assert(!bg_compact_worth_it(1100 << 20, 1000 << 20));
	ck_assert(!bg_compact_worth_it(100, 200));
	/* Over 1 MiB and over 1/8 of the data: yes. */
	ck_assert(bg_compact_worth_it(4 << 20, 2 << 20));
	ck_assert(bg_compact_worth_it(1200 << 20, 1000 << 20));
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_write_file);
	tcase_add_test(tc, test_bg_thread);
	tcase_add_test(tc, test_compact_policy);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(stats_suite());
}
