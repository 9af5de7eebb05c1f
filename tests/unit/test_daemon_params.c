/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the configuration keys (daemon/params.c): every key with
 * good and bad values, the size parser, the config file (sections,
 * comments, relative paths), command-line precedence in either order, and
 * each kind of bad input refused with one message naming what is wrong.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "params.h"
#include "shrinker.h"
#include "test_util.h"
#include "zpool.h"

static char dir[128];
static char err[PARAMS_ERR_LEN];
static struct zramd_params p;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/zramd-params-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(params_init(&p), 0);
	err[0] = '\0';
}

static void teardown(void)
{
	char cmd[256];

	params_free(&p);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes @text to DIR/@name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void set_ok(const char *key, const char *value)
{
	ck_assert_msg(params_set(&p, key, value, err) == 0, "%s=%s: %s", key,
		      value, err);
}

/* The key is refused with a message containing each of the @want strings. */
static void set_bad(const char *key, const char *value, const char *want1,
		    const char *want2)
{
	ck_assert_msg(params_set(&p, key, value, err) == -1,
		      "%s=%s was accepted", key, value);
	ck_assert_msg(strstr(err, want1), "message '%s' lacks '%s'", err,
		      want1);
	if (want2)
		ck_assert_msg(strstr(err, want2), "message '%s' lacks '%s'",
			      err, want2);
	ck_assert_ptr_null(strchr(err, '\n'));
}

static void finish_bad(const char *want1, const char *want2)
{
	ck_assert_msg(params_finish(&p, err) == -1, "finish accepted");
	ck_assert_msg(strstr(err, want1), "message '%s' lacks '%s'", err,
		      want1);
	if (want2)
		ck_assert_msg(strstr(err, want2), "message '%s' lacks '%s'",
			      err, want2);
}

START_TEST(test_defaults)
{
	ck_assert_str_eq(p.allocator, "zsmalloc");
	ck_assert_str_eq(p.compressor, "lz4");
	ck_assert_str_eq(p.recompress, "zstd");
	ck_assert_uint_eq(p.recompress_idle, 600);
	ck_assert_uint_eq(p.pack_sectors, 64);
	ck_assert_uint_eq(p.acceleration, 1);
	ck_assert_uint_eq(p.huge_threshold, 3584);
	ck_assert_uint_eq(p.stats_interval, 1);
	ck_assert_uint_eq(p.mem_limit, 0);
	ck_assert_uint_eq(p.mem_high, 90);
	ck_assert_uint_eq(p.mem_low, 80);
	ck_assert_uint_eq(p.psi, PARAMS_PSI_DEFAULT);
	ck_assert_str_eq(p.mlock, "off");
	ck_assert_ptr_null(p.stats);
	ck_assert_ptr_null(p.backing);
	/* size is required. */
	finish_bad("size: missing", "nbdkit zramd 4G");
	/* The help text names every key. */
	ck_assert_ptr_nonnull(strstr(params_help(), "mem_limit=SIZE"));
	ck_assert_ptr_nonnull(strstr(params_help(), "psi=on|off|PERCENT"));
}
END_TEST

START_TEST(test_sizes)
{
	static const struct {
		const char *text;
		uint64_t want;
	} good[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "4096", 4096 },
		{ "10b", 10 },
		{ "10B", 10 },
		{ "2s", 1024 },
		{ "1k", 1024 },
		{ "3K", 3072 },
		{ "1M", 1 << 20 },
		{ "4G", UINT64_C(4) << 30 },
		{ "1t", UINT64_C(1) << 40 },
		{ "2P", UINT64_C(2) << 50 },
		{ "7E", UINT64_C(7) << 60 },
		{ "9223372036854775807", UINT64_C(9223372036854775807) },
	};
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "not a number" },
		{ "abc", "not a number" },
		{ "-1", "not a number" },
		{ " 1", "not a number" },
		{ "1.5G", "bad size suffix" },
		{ "10X", "bad size suffix" },
		{ "10GB", "bad size suffix" },
		{ "10 G", "bad size suffix" },
		{ "8E", "too large" },
		{ "9223372036854775808", "too large" },
		{ "99999999999999999999999", "too large" },
	};
	const char *why;
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(params_parse_size(good[i].text, &v, &why) == 0,
			      "%s: %s", good[i].text, why);
		ck_assert_uint_eq(v, good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(params_parse_size(bad[i].text, &v, &why) == -1,
			      "'%s' accepted", bad[i].text);
		ck_assert_msg(strstr(why, bad[i].why), "'%s': '%s'",
			      bad[i].text, why);
	}
}
END_TEST

static void first_type(const char *type, void *arg)
{
	if (!*(const char **)arg)
		*(const char **)arg = type;
}

/* Each key: a good value is stored, bad ones are refused with why. */
/* size=N%: a share of RAM, rounded down to 4 KiB; bad shares refused. */
START_TEST(test_size_ram_share)
{
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) *
		       (uint64_t)sysconf(_SC_PAGESIZE);
	static const struct {
		const char *text;
		unsigned int pct;
	} good[] = { { "50%", 50 }, { "1%", 1 }, { "100%", 100 },
		     { "400%", 400 }, { "025%", 25 } };

	ck_assert_uint_gt(ram, 0);
	ck_assert_uint_eq(params_ram_bytes(), ram);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t want = ram / 100 * good[i].pct & ~(uint64_t)4095;

		set_ok("size", good[i].text);
		ck_assert_msg(p.size == want, "size=%s: %" PRIu64 ", want %" PRIu64,
			      good[i].text, p.size, want);
		ck_assert_uint_eq(p.size % 4096, 0);
		params_free(&p);
		ck_assert_int_eq(params_init(&p), 0);
	}
	set_bad("size", "0%", "size=0%: share of RAM out of range", "1% to 400%");
	set_bad("size", "401%", "size=401%: share of RAM out of range", NULL);
	set_bad("size", "%", "size=%: not a whole number of percent", NULL);
	set_bad("size", "1.5%", "size=1.5%: not a whole number of percent", NULL);
	set_bad("size", "abc%", "not a whole number of percent", NULL);
	set_bad("size", "50%%", "not a whole number of percent", NULL);
	set_bad("size", "-5%", "size=-5%", "allowed:");
	/* Only size takes a share: other sizes stay sizes. */
	set_bad("mem_limit", "50%", "mem_limit=50%", NULL);
	/* The same in the config file, with its file and line. */
	set_ok("config", write_file("share.conf", "size = 25%\n"));
	ck_assert_int_eq(params_finish(&p, err), 0);
	ck_assert_uint_eq(p.size, ram / 100 * 25 & ~(uint64_t)4095);
	params_free(&p);
	ck_assert_int_eq(params_init(&p), 0);
	set_ok("config", write_file("bad-share.conf", "size = 0%\n"));
	finish_bad("bad-share.conf:1: size=0%: share of RAM out of range",
		   "allowed:");
}
END_TEST

START_TEST(test_every_key)
{
	const char *type = NULL;
	char path[256];

	zpool_for_each_type(first_type, &type);
	ck_assert_ptr_nonnull(type);

	set_ok("size", "9223372036854775807");
	ck_assert_uint_eq(p.size, (uint64_t)INT64_MAX);
	set_ok("allocator", type);
	ck_assert_str_eq(p.allocator, type);
	set_ok("compressor", "zstd:19");
	ck_assert_str_eq(p.compressor, "zstd:19");
	set_ok("recompress", "off");
	set_ok("recompress_idle", "2h");
	ck_assert_uint_eq(p.recompress_idle, 7200);
	set_ok("acceleration", "65537");
	ck_assert_uint_eq(p.acceleration, 65537);
	set_ok("huge_threshold", "3K");
	ck_assert_uint_eq(p.huge_threshold, 3072);
	snprintf(path, sizeof(path), "%s/stats", dir);
	set_ok("stats", path);
	ck_assert_str_eq(p.stats, path);
	set_ok("stats_interval", "0");
	set_ok("mem_limit", "512K");
	ck_assert_uint_eq(p.mem_limit, 524288);
	snprintf(path, sizeof(path), "%s/backing", dir);
	set_ok("backing", path);
	set_ok("backing_size", "1G");
	ck_assert_uint_eq(p.backing_size, 1 << 30);
	set_ok("writeback_idle", "600");
	set_ok("mem_high", "100");
	set_ok("mem_low", "0");
	set_ok("psi", "25");
	ck_assert_uint_eq(p.psi, 25);
	set_ok("mlock", "onfault");
	ck_assert_str_eq(p.mlock, "onfault");
	ck_assert_int_eq(params_finish(&p, err), 0);
}
END_TEST

START_TEST(test_bad_values)
{
	set_bad("size", "lots", "size=lots: not a number", "allowed:");
	set_bad("size", "4Q", "size=4Q: bad size suffix", "allowed:");
	set_bad("size", "9E", "size=9E: too large", "2^63-1");
	set_bad("allocator", "slab", "allocator=slab: unknown allocator",
		"allowed: ");
	set_bad("compressor", "lzo", "compressor=lzo: unknown codec or level",
		"allowed: lz4, zstd or zstd:LEVEL");
	set_bad("compressor", "zstd:0", "compressor=zstd:0: unknown codec",
		"1 to 19");
	set_bad("compressor", "zstd:20", "unknown codec or level", NULL);
	set_bad("compressor", "zstd:", "unknown codec or level", NULL);
	set_bad("compressor", "off", "unknown codec or level", NULL);
	set_ok("compressor", "zstd");
	set_bad("recompress", "lz4", "recompress=lz4: unknown codec or level",
		"allowed: off, zstd");
	set_bad("recompress", "zstd:x", "unknown codec or level", NULL);
	set_ok("recompress", "zstd:6");
	set_bad("recompress_idle", "5y",
		"recompress_idle=5y: bad duration suffix", "allowed: 0");
	set_bad("recompress_idle", "31d", "recompress_idle=31d: out of range",
		NULL);
	set_bad("recompress_idle", "soon", "not a number", NULL);
	set_ok("recompress_idle", "90");
	ck_assert_uint_eq(p.recompress_idle, 90);
	set_bad("pack_sectors", "0", "pack_sectors=0: out of range",
		"allowed: an integer from 1 to 64");
	set_bad("pack_sectors", "65", "pack_sectors=65: out of range", NULL);
	set_bad("pack_sectors", "x", "not a number", NULL);
	set_ok("pack_sectors", "16");
	ck_assert_uint_eq(p.pack_sectors, 16);
	set_bad("backing_force", "maybe", "backing_force=maybe: unknown choice",
		"allowed: no or yes");
	set_bad("backing_force", "", "unknown choice", NULL);
	set_bad("backing_force", "ye", "unknown choice", NULL);
	set_ok("backing_force", "yes");
	ck_assert_str_eq(p.backing_force, "yes");
	set_bad("promote", "yes", "promote=yes: unknown choice",
		"allowed: on or off");
	set_ok("promote", "off");
	ck_assert_str_eq(p.promote, "off");
	set_bad("acceleration", "0", "acceleration=0: out of range",
		"1 to 65537");
	set_bad("acceleration", "65538", "out of range", NULL);
	set_bad("acceleration", "fast", "acceleration=fast: not a number",
		NULL);
	set_bad("acceleration", "1x", "not a number", NULL);
	set_bad("huge_threshold", "4096", "huge_threshold=4096: out of range",
		"1 to 4095");
	set_bad("huge_threshold", "0", "out of range", NULL);
	set_bad("stats", "", "stats=: empty path", NULL);
	set_bad("stats_interval", "86401", "out of range", NULL);
	set_bad("mem_limit", "4K", "mem_limit=4K: too small to hold a single",
		"at least 512K");
	set_bad("mem_limit", "1Z", "bad size suffix", NULL);
	set_bad("backing_size", "-5", "not a number", NULL);
	set_bad("writeback_idle", "9999999", "out of range", NULL);
	set_bad("mem_high", "0", "mem_high=0: out of range", "1 to 100");
	set_bad("mem_high", "101", "out of range", NULL);
	set_bad("mem_low", "100", "mem_low=100: out of range", NULL);
	set_bad("psi", "maybe", "psi=maybe: not on, off or a number",
		"on, off, or");
	set_bad("psi", "0", "out of range", NULL);
	set_bad("psi", "101", "out of range", NULL);
	set_bad("mlock", "yes", "mlock=yes: unknown choice", "off or onfault");
	set_bad("mlock", "on", "unknown choice", NULL);
	set_bad("mlock", "onfaul", "unknown choice", NULL);
	set_bad("mlock", "", "unknown choice", NULL);
	set_bad("colour", "blue", "colour=blue: unknown key",
		"allowed: size, allocator");
	/* A refused value leaves the old one. */
	ck_assert_uint_eq(p.acceleration, 1);
	ck_assert_str_eq(p.allocator, "zsmalloc");
	/* Given twice on the command line. */
	set_ok("acceleration", "3");
	set_bad("acceleration", "4", "acceleration given twice", NULL);
	ck_assert_uint_eq(p.acceleration, 3);
	set_ok("psi", "off");
	ck_assert_uint_eq(p.psi, PARAMS_PSI_OFF);
}
END_TEST

START_TEST(test_cross_checks)
{
	char path[256];

	set_ok("size", "1G");
	set_ok("backing_size", "1G");
	finish_bad("backing_size=", "needs backing=");
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	set_ok("writeback_idle", "10");
	finish_bad("writeback_idle=10: needs backing=", NULL);
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	set_ok("backing_force", "yes");
	finish_bad("backing_force=yes: needs backing=", NULL);
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	set_ok("backing_force", "no");
	ck_assert_int_eq(params_finish(&p, err), 0);
	params_free(&p);
	params_init(&p);

	/* At their default, 0, both are fine without backing. */
	set_ok("size", "1G");
	set_ok("backing_size", "0");
	set_ok("writeback_idle", "0");
	ck_assert_int_eq(params_finish(&p, err), 0);
	params_free(&p);
	params_init(&p);

	/* A backing file has a least size. */
	set_bad("backing_size", "60K", "below the smallest backing file",
		"at least 64K");
	set_ok("backing_size", "64K");
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	snprintf(path, sizeof(path), "%s/nosuchdir/backing", dir);
	set_ok("backing", path);
	finish_bad("backing=", "nosuchdir does not exist");
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	set_ok("backing", dir);
	finish_bad("is a directory", NULL);
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	snprintf(path, sizeof(path), "%s/no/stats", dir);
	set_ok("stats", path);
	finish_bad("stats=", "does not exist");
	params_free(&p);
	params_init(&p);

	set_ok("size", "1G");
	set_ok("mem_low", "90");
	finish_bad("mem_low=90, mem_high=90", "must be below");
	params_free(&p);
	params_init(&p);

	/* Relative paths become absolute (nbdkit may chdir to /). */
	set_ok("size", "1G");
	set_ok("stats", "relative.stats");
	ck_assert_int_eq(p.stats[0], '/');
	ck_assert_ptr_nonnull(strstr(p.stats, "/relative.stats"));
}
END_TEST

START_TEST(test_file)
{
	const char *path = write_file("zramd.conf",
				      "# a comment\n"
				      "; another\n"
				      "size = 2G\n"
				      "\n"
				      "[zramd]\n"
				      "acceleration=7 ; inline comment\n"
				      "mem_limit = 512M\n"
				      "stats = sub.stats\n"
				      "psi = off\n");
	char want[256];

	set_ok("config", path);
	ck_assert_int_eq(params_finish(&p, err), 0);
	ck_assert_uint_eq(p.size, UINT64_C(2) << 30);
	ck_assert_uint_eq(p.acceleration, 7);
	ck_assert_uint_eq(p.mem_limit, 512 << 20);
	ck_assert_uint_eq(p.psi, PARAMS_PSI_OFF);
	/* Relative to the file's directory. */
	snprintf(want, sizeof(want), "%s/sub.stats", dir);
	ck_assert_str_eq(p.stats, want);
}
END_TEST

/* The command line wins over the file, given before or after config=. */
START_TEST(test_precedence)
{
	const char *path = write_file("zramd.conf", "size = 2G\n"
						    "acceleration = 7\n"
						    "mem_limit = 1G\n");

	set_ok("acceleration", "3");
	set_ok("config", path);
	set_ok("mem_limit", "128M");
	ck_assert_int_eq(params_finish(&p, err), 0);
	ck_assert_uint_eq(p.acceleration, 3);
	ck_assert_uint_eq(p.mem_limit, 128 << 20);
	ck_assert_uint_eq(p.size, UINT64_C(2) << 30);
}
END_TEST

/* Each kind of bad file, with the file name and the line. */
START_TEST(test_file_errors)
{
	static const struct {
		const char *text, *want1, *want2;
	} cases[] = {
		{ "size = 1G\ncolour = blue\n", ":2: colour: unknown key",
		  "allowed: size" },
		{ "size = 1G\n\nacceleration = fast\n",
		  ":3: acceleration=fast: not a number", "1 to 65537" },
		{ "size = 1G\nmem_limit = 3Q\n",
		  ":2: mem_limit=3Q: bad size suffix", NULL },
		{ "size = 1G\nsize = 2G\n", ":2: size=2G: key given twice",
		  NULL },
		{ "size = 1G\n[other]\nacceleration = 2\n",
		  ":3: unknown section [other]", "[zramd]" },
		{ "size = 1G\nthis is not ini\n", ":2: syntax error", NULL },
		{ "size = 1G\nconfig = /etc/x.conf\n",
		  ":2: config=/etc/x.conf: a config file cannot name", NULL },
		{ "size = 1G\nallocator = slab\n",
		  ":2: allocator=slab: unknown allocator", NULL },
		{ "size = 1G\nmem_low = 95\n", "mem_low=95, mem_high=90",
		  NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = write_file("bad.conf", cases[i].text);

		params_free(&p);
		params_init(&p);
		set_ok("config", path);
		finish_bad(cases[i].want1, cases[i].want2);
		if (i < 8)
			ck_assert_msg(strncmp(err, path, strlen(path)) == 0,
				      "'%s' does not start with the file name",
				      err);
	}

	/* A bad value in the file is refused even if the command line
	 * overrides the key. */
	params_free(&p);
	params_init(&p);
	set_ok("config", write_file("bad.conf", "size=1G\nmem_high = x\n"));
	set_ok("mem_high", "50");
	finish_bad(":2: mem_high=x: not a number", NULL);

	/* A missing file. */
	params_free(&p);
	params_init(&p);
	set_ok("config", "/nonexistent/zramd.conf");
	finish_bad("config=/nonexistent/zramd.conf: cannot read the config "
		   "file: No such file or directory",
		   NULL);
	/* config given twice. */
	set_bad("config", "/etc/other.conf", "config given twice", NULL);
}
END_TEST

/* The shrinker's configuration, and what psi= given or not means. */
START_TEST(test_shrinker_config)
{
	struct shrinker_config c;

	set_ok("size", "1G");
	set_ok("mem_limit", "1G");
	set_ok("mem_high", "70");
	set_ok("mem_low", "50");
	set_ok("writeback_idle", "60");
	snprintf(err, sizeof(err), "%s/backing", dir);
	set_ok("backing", err);
	ck_assert_int_eq(params_finish(&p, err), 0);
	params_shrinker_config(&p, &c);
	ck_assert_uint_eq(c.mem_limit, 1 << 30);
	ck_assert_uint_eq(c.mem_high, 70);
	ck_assert_uint_eq(c.mem_low, 50);
	ck_assert_uint_eq(c.idle_age, 60);
	/* psi not given: watched where there is PSI, at 10%. */
	ck_assert_int_eq(c.pressure.psi, PRESSURE_AUTO);
	ck_assert_uint_eq(c.pressure.psi_pct, 10);
	ck_assert_int_eq(c.pressure.cgroup, PRESSURE_AUTO);

	/* Given: required. */
	set_ok("psi", "25");
	params_shrinker_config(&p, &c);
	ck_assert_int_eq(c.pressure.psi, PRESSURE_ON);
	ck_assert_uint_eq(c.pressure.psi_pct, 25);
	params_free(&p);
	params_init(&p);
	set_ok("psi", "on");
	params_shrinker_config(&p, &c);
	ck_assert_int_eq(c.pressure.psi, PRESSURE_ON);
	ck_assert_uint_eq(c.pressure.psi_pct, 10);
	params_free(&p);
	params_init(&p);
	set_ok("psi", "off");
	params_shrinker_config(&p, &c);
	ck_assert_int_eq(c.pressure.psi, PRESSURE_OFF);
	ck_assert_int_eq(c.pressure.cgroup, PRESSURE_AUTO);
	/* In a config file, too. */
	params_free(&p);
	params_init(&p);
	set_ok("config", write_file("psi.conf", "size = 1G\npsi = 30\n"));
	ck_assert_int_eq(params_finish(&p, err), 0);
	params_shrinker_config(&p, &c);
	ck_assert_int_eq(c.pressure.psi, PRESSURE_ON);
	ck_assert_uint_eq(c.pressure.psi_pct, 30);
}
END_TEST

static Suite *params_suite(void)
{
	Suite *s = suite_create("params");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_size_ram_share);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_cross_checks);
	tcase_add_test(tc, test_file);
	tcase_add_test(tc, test_precedence);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_shrinker_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(params_suite());
}
