/* SPDX-License-Identifier: MIT */
/*
 * fuzz_params.c - the configuration: command-line keys and config file
 *
 * Input: byte 0, then (byte 0 % 4) NUL-terminated command-line arguments
 * ("key=value", or a bare value, which is the size as in 'nbdkit zramd
 * 4G'), then the text of the config file. Unless bit 2 of byte 0 is set,
 * config= names the file, which lives in a memfd (no disk, no cleanup),
 * so params_finish() reads it through libinih.
 *
 * Checked:
 *  - nothing crashes, leaks or reads out of bounds, whatever the bytes;
 *  - every error is one line, not empty, and a command-line error names
 *    its key;
 *  - after success every value is in its documented range, the cross
 *    checks hold (mem_low < mem_high, backing_size and writeback_idle only
 *    with backing, size given), paths are absolute, and a key given on
 *    the command line kept its command-line value whatever the file said;
 *  - params_parse_size() agrees with a reference parser written here from
 *    the documentation in params.h, on the first argument's value;
 *  - what params accepts, the modules it configures accept too ("every
 *    invalid value is refused before serving"): zdev_create() with the
 *    device keys, shrinker_create() with params_shrinker_config() (its
 *    pressure sources turned off, so that no file of this machine is
 *    read), and backing_size as backing_open() would take it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backing.h"
#include "codec.h"
#include "device.h"
#include "fuzz.h"
#include "params.h"
#include "shrinker.h"
#include "zpool.h"

#define MAX_ARGS 3
#define MAX_ARG 256

/* params_parse_size() as params.h documents it. */
static int ref_parse_size(const char *s, uint64_t *out)
{
	unsigned __int128 v = 0;
	unsigned int shift = 0;
	size_t i = 0;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT64_MAX)
			return -1;
	}
	if (s[i]) {
		const char *suffixes = "bBsSkKmMgGtTpPeE";
		const unsigned int shifts[] = { 0, 9, 10, 20, 30, 40, 50, 60 };
		const char *p = strchr(suffixes, s[i]);

		if (!p || s[i + 1])
			return -1;
		shift = shifts[(p - suffixes) / 2];
	}
	v <<= shift;
	if (v > INT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static void check_size_parser(const char *s)
{
	uint64_t a = 0, b = 0;
	const char *why = NULL;
	int ra = params_parse_size(s, &a, &why), rb = ref_parse_size(s, &b);

	FUZZ_CHECK(ra == rb, "params_parse_size(\"%s\") returned %d, the "
		   "reference %d", s, ra, rb);
	if (ra == 0)
		FUZZ_CHECK(a == b, "params_parse_size(\"%s\") = %llu, the "
			   "reference %llu", s, (unsigned long long)a,
			   (unsigned long long)b);
	else
		FUZZ_CHECK(why && why[0], "params_parse_size(\"%s\"): no "
			   "reason", s);
}

/* One line, not empty, within the buffer. */
static void check_msg(const char *err, bool may_have_newline)
{
	size_t n = strnlen(err, PARAMS_ERR_LEN);

	FUZZ_CHECK(n > 0, "an error with no message");
	FUZZ_CHECK(n < PARAMS_ERR_LEN, "message not terminated");
	if (!may_have_newline)
		FUZZ_CHECK(!strchr(err, '\n'), "message of two lines: %s",
			   err);
}

static bool known_allocator(const char *a)
{
	return a && (strcmp(a, ZPOOL_TYPE_ZSMALLOC) == 0 ||
		     strcmp(a, ZPOOL_TYPE_ZBUD) == 0);
}

static void check_result(const struct zramd_params *p)
{
	FUZZ_CHECK(p->size <= ZDEV_MAX_SIZE, "size %llu",
		   (unsigned long long)p->size);
	FUZZ_CHECK(known_allocator(p->allocator), "allocator %s",
		   p->allocator ? p->allocator : "(null)");
	{
		int level;

		FUZZ_CHECK(p->compressor &&
				   codec_parse(p->compressor, true, false,
					       &level) >= 0,
			   "compressor");
		FUZZ_CHECK(p->recompress &&
				   codec_parse(p->recompress, false, true,
					       &level) >= 0,
			   "recompress");
		FUZZ_CHECK(p->recompress_idle <= 30u * 86400,
			   "recompress_idle %u", p->recompress_idle);
		FUZZ_CHECK(p->pack_sectors >= 1 && p->pack_sectors <= 64,
			   "pack_sectors %u", p->pack_sectors);
	}
	FUZZ_CHECK(p->acceleration >= CODEC_ACCEL_MIN &&
			   p->acceleration <= CODEC_ACCEL_MAX,
		   "acceleration %u", p->acceleration);
	FUZZ_CHECK(p->huge_threshold >= 1 &&
			   p->huge_threshold <= CODEC_HUGE_THRESHOLD_MAX,
		   "huge_threshold %u", p->huge_threshold);
	FUZZ_CHECK(p->stats_interval <= 86400, "stats_interval %u",
		   p->stats_interval);
	FUZZ_CHECK(p->mem_limit == 0 || (p->mem_limit >= ZDEV_MEM_LIMIT_MIN &&
					 p->mem_limit <= ZDEV_MAX_SIZE),
		   "mem_limit %llu", (unsigned long long)p->mem_limit);
	FUZZ_CHECK(p->backing_size <= ZDEV_MAX_SIZE, "backing_size");
	FUZZ_CHECK(p->writeback_idle <= 30u * 86400, "writeback_idle %u",
		   p->writeback_idle);
	FUZZ_CHECK(p->mem_high >= 1 && p->mem_high <= 100, "mem_high %u",
		   p->mem_high);
	FUZZ_CHECK(p->mem_low < p->mem_high, "mem_low %u, mem_high %u",
		   p->mem_low, p->mem_high);
	FUZZ_CHECK(p->psi <= 100, "psi %u", p->psi);
	FUZZ_CHECK(!p->writeback_idle || p->backing,
		   "writeback_idle without backing");
	FUZZ_CHECK(!p->stats || p->stats[0] == '/', "stats path %s", p->stats);
	FUZZ_CHECK(!p->backing || p->backing[0] == '/', "backing path %s",
		   p->backing);
	FUZZ_CHECK(!p->config || p->config[0] == '/', "config path %s",
		   p->config);
}

/* The numeric fields a command-line key must keep. */
struct snap {
	uint64_t size, mem_limit, backing_size;
	unsigned int acceleration, huge_threshold, stats_interval, mem_high,
		mem_low, psi, writeback_idle;
};

static void take(struct snap *s, const struct zramd_params *p)
{
	*s = (struct snap){ p->size,	       p->mem_limit,
			    p->backing_size,   p->acceleration,
			    p->huge_threshold, p->stats_interval,
			    p->mem_high,       p->mem_low,
			    p->psi,	       p->writeback_idle };
}

static void check_kept(const char *key, const struct snap *a,
		       const struct snap *b)
{
#define KEPT(f)                                                            \
	do {                                                               \
		if (strcmp(key, #f) == 0)                                  \
			FUZZ_CHECK(a->f == b->f,                           \
				   "%s given on the command line changed " \
				   "from %llu to %llu",                    \
				   key, (unsigned long long)a->f,          \
				   (unsigned long long)b->f);              \
	} while (0)
	KEPT(size);
	KEPT(mem_limit);
	KEPT(backing_size);
	KEPT(acceleration);
	KEPT(huge_threshold);
	KEPT(stats_interval);
	KEPT(mem_high);
	KEPT(mem_low);
	KEPT(psi);
	KEPT(writeback_idle);
#undef KEPT
}

static uint64_t dummy_pool_size(void *ctx)
{
	(void)ctx;
	return 0;
}

static int dummy_shrink(void *ctx, uint64_t bytes,
			enum shrinker_trigger trigger,
			struct shrink_result *res)
{
	(void)ctx;
	(void)bytes;
	(void)trigger;
	(void)res;
	return -ENOENT;
}

/* Parameters that params_finish() took must start the modules. */
static void check_modules(const struct zramd_params *p)
{
	struct zdev_config dc = {
		.size = p->size,
		.allocator = p->allocator,
		.acceleration = (int)p->acceleration,
		.huge_threshold = p->huge_threshold,
		.mem_limit = p->mem_limit,
		.shrinkable = p->backing != NULL,
	};
	struct shrinker_ops ops = { .pool_size = dummy_pool_size,
				    .shrink = dummy_shrink };
	struct shrinker_config sc;
	struct shrinker *s;
	struct zdev *dev;
	char err[256];
	int e = 0;

	dev = zdev_create(&dc, &e);
	FUZZ_CHECK(dev != NULL,
		   "params accepted size %llu allocator %s acceleration %u "
		   "huge_threshold %u mem_limit %llu, zdev_create() says %d",
		   (unsigned long long)p->size, p->allocator, p->acceleration,
		   p->huge_threshold, (unsigned long long)p->mem_limit, e);
	zdev_destroy(dev);

	params_shrinker_config(p, &sc);
	FUZZ_CHECK(sc.mem_limit == p->mem_limit && sc.mem_high == p->mem_high &&
			   sc.mem_low == p->mem_low &&
			   sc.idle_age == p->writeback_idle,
		   "params_shrinker_config() changed a value");
	sc.pressure.psi = PRESSURE_OFF;
	sc.pressure.cgroup = PRESSURE_OFF;
	s = shrinker_create(&sc, &ops, err, sizeof(err));
	FUZZ_CHECK(s != NULL, "params accepted mem_high %u mem_low %u, "
		   "shrinker_create() says: %s", p->mem_high, p->mem_low, err);
	shrinker_destroy(s);

	if (p->backing)
		FUZZ_CHECK(p->backing_size == 0 ||
				   p->backing_size >= BACKING_MIN_SIZE,
			   "params accepted backing_size %llu, backing_open() "
			   "needs 0 or at least %u",
			   (unsigned long long)p->backing_size,
			   BACKING_MIN_SIZE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_CHECK(params_help()[0] != '\0', "empty help");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	struct zramd_params p;
	struct snap before, after;
	char err[PARAMS_ERR_LEN], args[MAX_ARGS][MAX_ARG], keys[MAX_ARGS][MAX_ARG];
	char cfg_path[64];
	bool set_ok[MAX_ARGS] = { false }, newline = false, use_file;
	uint8_t b0 = fin_u8(&in);
	int nargs = b0 % 4, fd = -1, r;

	fuzz_op_index = 0;
	use_file = !(b0 & 4);
	for (int i = 0; i < nargs && i < MAX_ARGS; i++) {
		size_t n = 0;

		while (fin_left(&in) && n < MAX_ARG - 1) {
			char c = (char)fin_u8(&in);

			if (!c)
				break;
			newline |= c == '\n';
			args[i][n++] = c;
		}
		args[i][n] = '\0';
	}
	nargs = nargs < MAX_ARGS ? nargs : MAX_ARGS;
	if (nargs > 0) {
		const char *eq = strchr(args[0], '=');

		check_size_parser(eq ? eq + 1 : args[0]);
	}

	r = params_init(&p);
	FUZZ_CHECK(r == 0, "params_init: %d", r);
	check_result(&p);
	for (int i = 0; i < nargs; i++) {
		char *eq = strchr(args[i], '=');
		const char *value = args[i];

		fuzz_op_index++;
		if (eq) {
			*eq = '\0';
			value = eq + 1;
			memcpy(keys[i], args[i], strlen(args[i]) + 1);
		} else {
			strcpy(keys[i], "size");
		}
		/* The input names no files of its own to read. */
		if (strcmp(keys[i], "config") == 0)
			continue;
		err[0] = '\0';
		r = params_set(&p, keys[i], value, err);
		FUZZ_CHECK(r == 0 || r == -1, "params_set returned %d", r);
		if (r == 0) {
			set_ok[i] = true;
			continue;
		}
		check_msg(err, newline);
		FUZZ_CHECK(strstr(err, keys[i]) != NULL,
			   "the message does not name the key %s: %s", keys[i],
			   err);
	}

	if (use_file) {
		fd = memfd_create("zramd-fuzz.conf", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
		if (fin_left(&in))
			FUZZ_CHECK(write(fd, in.p, in.n) == (ssize_t)in.n,
				   "write to memfd");
		snprintf(cfg_path, sizeof(cfg_path), "/proc/self/fd/%d", fd);
		r = params_set(&p, "config", cfg_path, err);
		FUZZ_CHECK(r == 0, "config=%s: %s", cfg_path, err);
	}

	fuzz_op_index++;
	take(&before, &p);
	err[0] = '\0';
	r = params_finish(&p, err);
	FUZZ_CHECK(r == 0 || r == -1, "params_finish returned %d", r);
	if (r == 0) {
		check_result(&p);
		check_modules(&p);
		take(&after, &p);
		for (int i = 0; i < nargs; i++)
			if (set_ok[i])
				check_kept(keys[i], &before, &after);
	} else {
		check_msg(err, newline);
	}
	params_free(&p);
	if (fd >= 0)
		close(fd);
	return 0;
}
