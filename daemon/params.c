/* SPDX-License-Identifier: MIT */
/*
 * params.c - the table of configuration keys, and the config file reader
 *
 * Every key is one row of keys[] below; nothing else in the daemon knows
 * the key names. Parsing a value never changes anything until the whole
 * value is known to be good, so a refused value leaves the previous one.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "codec.h"
#include "device.h"
#include "pack.h"
#include "params.h"
#include "shrinker.h"
#include "zpool.h"

enum kind {
	K_SIZE,	     /* uint64_t, size syntax, min..max */
	K_UINT,	     /* unsigned int, decimal, min..max */
	K_CHOICE,    /* char *, one of a fixed list */
	K_ALLOCATOR, /* char *, a registered zpool type */
	K_PATH,	     /* char *, made absolute */
	K_PSI,	     /* unsigned int: on, off or a percentage */
	K_CODEC,     /* char *: lz4, zstd or zstd:LEVEL (codec_parse()) */
	K_RECOMP,    /* char *: zstd, zstd:LEVEL or off (codec_parse()) */
	K_DURATION,  /* unsigned int seconds: N, Ns, Nm, Nh or Nd, min..max */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off;	     /* offset of the field in struct zramd_params */
	uint64_t min, max;   /* K_SIZE, K_UINT, K_PSI */
	uint64_t nzmin;	     /* K_SIZE: the least value but 0, if any */
	const char *nzwhy;   /* why a value below nzmin is refused */
	bool ram_share;	     /* K_SIZE: "N%" of the machine's RAM too */
	const char *choices; /* K_CHOICE: "a|b" */
	const char *syntax;  /* for the help text */
	const char *def;     /* default, parsed like a value; NULL: none */
	const char *allowed; /* what an error message says is allowed */
	const char *help;
};

#define F(field) offsetof(struct zramd_params, field)

/*
 * The one table. The command line and the config file both use it. A
 * K_SIZE field is an unsigned int if its max fits one, else a uint64_t.
 */
static const struct key keys[] = {
	{ .name = "size", .kind = K_SIZE, .off = F(size),
	  .max = ZDEV_MAX_SIZE, .syntax = "SIZE|N%", .ram_share = true,
	  .allowed = "a size from 0 to 8E-1 (2^63-1 bytes), e.g. 4G, or "
		     "a share of RAM from 1% to " PARAMS_RAM_PCT_MAX_STR
		     "%, e.g. 50%",
	  .help = "virtual size of the device (required; 'nbdkit zramd 4G')" },
	{ .name = "allocator", .kind = K_ALLOCATOR, .off = F(allocator),
	  .syntax = "zsmalloc|zbud", .def = ZPOOL_TYPE_ZSMALLOC,
	  .help = "the memory pool: zsmalloc (dense) or zbud (simple)" },
	{ .name = "compressor", .kind = K_CODEC, .off = F(compressor),
	  .syntax = "lz4|zstd[:LEVEL]", .def = "lz4",
	  .allowed = "lz4, zstd or zstd:LEVEL with LEVEL from 1 to 19",
	  .help = "the hot path's codec, one sector per object" },
	{ .name = "acceleration", .kind = K_UINT, .off = F(acceleration),
	  .min = CODEC_ACCEL_MIN, .max = CODEC_ACCEL_MAX, .syntax = "N",
	  .def = "1", .allowed = "an integer from 1 to 65537",
	  .help = "LZ4 acceleration: higher is faster, compresses less" },
	{ .name = "huge_threshold", .kind = K_SIZE, .off = F(huge_threshold),
	  .min = 1, .max = CODEC_HUGE_THRESHOLD_MAX, .syntax = "BYTES",
	  .def = "3584", .allowed = "a size from 1 to 4095 bytes",
	  .help = "sectors compressing to more than this are stored raw" },
	{ .name = "stats", .kind = K_PATH, .off = F(stats), .syntax = "PATH",
	  .allowed = "a file path in an existing directory",
	  .help = "write the counters to this file (see zramd-stat)" },
	{ .name = "stats_interval", .kind = K_UINT, .off = F(stats_interval),
	  .max = 86400, .syntax = "SECONDS", .def = "1",
	  .allowed = "an integer from 0 (only at exit) to 86400",
	  .help = "how often the stats file is rewritten; 0: at exit only" },
	{ .name = "mem_limit", .kind = K_SIZE, .off = F(mem_limit),
	  .max = ZDEV_MAX_SIZE, .nzmin = ZDEV_MEM_LIMIT_MIN, .syntax = "SIZE",
	  .def = "0", .allowed = "0 (no limit) or a size of at least 512K",
	  .help = "the most memory the pool may hold; 0: no limit" },
	{ .name = "config", .kind = K_PATH, .off = F(config), .syntax = "PATH",
	  .allowed = "the path of a readable config file",
	  .help = "read more keys from this file; the command line wins" },
	{ .name = "backing", .kind = K_PATH, .off = F(backing),
	  .syntax = "PATH",
	  .allowed = "a file path in an existing directory, or a block device",
	  .help = "backing file for evicted data (created if missing)" },
	{ .name = "backing_size", .kind = K_SIZE, .off = F(backing_size),
	  .max = ZDEV_MAX_SIZE, .nzmin = BACKING_MIN_SIZE,
	  .nzwhy = "below the smallest backing file", .syntax = "SIZE",
	  .def = "0",
	  .allowed = "0 (the free space) or a size of at least 64K, "
		     "with backing=",
	  .help = "largest size of the backing file; 0: the free space" },
	{ .name = "backing_force", .kind = K_CHOICE, .off = F(backing_force),
	  .choices = "no|yes", .syntax = "no|yes", .def = "no",
	  .allowed = "no or yes",
	  .help = "use a backing block device even if it holds a signature "
		  "(file system, swap, partition table)" },
	{ .name = "promote", .kind = K_CHOICE, .off = F(promote),
	  .choices = "on|off", .syntax = "on|off", .def = "on",
	  .allowed = "on or off",
	  .help = "move sectors read twice from the backing file back into "
		  "memory, below mem_high" },
	{ .name = "writeback_idle", .kind = K_UINT, .off = F(writeback_idle),
	  .max = 30u * 86400, .syntax = "SECONDS", .def = "0",
	  .allowed = "an integer from 0 (off) to 2592000, with backing=",
	  .help = "write sectors idle this long to the backing file" },
	{ .name = "mem_high", .kind = K_UINT, .off = F(mem_high), .min = 1,
	  .max = 100, .syntax = "PERCENT", .def = "90",
	  .allowed = "an integer from 1 to 100, above mem_low",
	  .help = "start evicting at this % of mem_limit" },
	{ .name = "mem_low", .kind = K_UINT, .off = F(mem_low), .max = 99,
	  .syntax = "PERCENT", .def = "80",
	  .allowed = "an integer from 0 to 99, below mem_high",
	  .help = "evict down to this % of mem_limit" },
	{ .name = "psi", .kind = K_PSI, .off = F(psi), .min = 1, .max = 100,
	  .syntax = "on|off|PERCENT", .def = "on",
	  .allowed = "on, off, or an integer from 1 to 100",
	  .help = "evict when tasks stall on memory (PSI some) this % of the "
		  "time; on: 10" },
	{ .name = "mlock", .kind = K_CHOICE, .off = F(mlock),
	  .choices = "off|onfault", .syntax = "off|onfault", .def = "off",
	  .allowed = "off or onfault",
	  .help = "lock the daemon's memory as it is touched (for local "
		  "swap; nbdkit --swap locks all of nbdkit's 192 MiB .bss)" },
	{ .name = "persist", .kind = K_PATH, .off = F(persist),
	  .syntax = "PATH",
	  .allowed = "a file path in an existing directory, not the "
		     "backing or stats file",
	  .help = "write the device to this snapshot file on a clean stop "
		  "and load it at the next start (see daemon/snapshot.c)" },
	{ .name = "recompress", .kind = K_RECOMP, .off = F(recompress),
	  .syntax = "zstd[:LEVEL]|off", .def = "zstd",
	  .allowed = "off, zstd or zstd:LEVEL with LEVEL from 1 to 19",
	  .help = "the cold tier: recompress idle sectors into zstd packs" },
	{ .name = "recompress_idle", .kind = K_DURATION,
	  .off = F(recompress_idle), .max = 30u * 86400,
	  .syntax = "DURATION", .def = "10m",
	  .allowed = "0 (only under memory pressure) or a duration up to 30d, "
		     "e.g. 90, 90s, 10m, 2h, 1d",
	  .help = "pack sectors idle this long; 0: only under pressure" },
	{ .name = "pack_sectors", .kind = K_UINT, .off = F(pack_sectors),
	  .min = 1, .max = PACK_MAX_SLOTS, .syntax = "N", .def = "64",
	  .allowed = "an integer from 1 to 64",
	  .help = "sectors a cold-tier pack holds at most: fewer read cold "
		  "data faster and store it less densely" },
};
_Static_assert(PACK_MAX_SLOTS == 64, "pack_sectors' allowed and default");
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= sizeof(((struct zramd_params *)0)->origin),
	       "origin[] too small");
/* mem_limit's .allowed text names the minimum. */
_Static_assert(ZDEV_MEM_LIMIT_MIN == 512u * 1024, "mem_limit: at least 512K");

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static size_t key_index(const struct key *k)
{
	return (size_t)(k - keys);
}

/* --- value parsers -------------------------------------------------------- */

/* Whether @text is one of the '|'-separated words of @choices. */
static bool choice_known(const char *choices, const char *text)
{
	size_t n = strlen(text);

	for (const char *c = choices; c; c = strchr(c, '|'), c = c ? c + 1 : c)
		if (strncmp(c, text, n) == 0 && (c[n] == '|' || c[n] == '\0') &&
		    n > 0)
			return true;
	return false;
}

/* A decimal number with nothing around it. */
static int parse_u64(const char *s, uint64_t *out, const char **rest)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = (unsigned int)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*out = v;
	*rest = p;
	return 0;
}

int params_parse_size(const char *str, uint64_t *out, const char **why)
{
	const char *rest;
	unsigned int shift;
	uint64_t v;
	int r = parse_u64(str, &v, &rest);

	if (r == -1) {
		*why = "not a number";
		return -1;
	}
	if (r == -2) {
		*why = "too large";
		return -1;
	}
	switch (*rest) {
	case '\0': case 'b': case 'B': shift = 0; break;
	case 's': case 'S': shift = 9; break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	case 'p': case 'P': shift = 50; break;
	case 'e': case 'E': shift = 60; break;
	default:
		*why = "bad size suffix (use b, s, k, m, g, t, p or e)";
		return -1;
	}
	if (*rest && rest[1]) {
		*why = "bad size suffix (use b, s, k, m, g, t, p or e)";
		return -1;
	}
	if (v > ((uint64_t)INT64_MAX >> shift)) {
		*why = "too large";
		return -1;
	}
	*out = v << shift;
	return 0;
}

uint64_t params_ram_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psize <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)psize;
}

int params_parse_ram_share(const char *str, uint64_t *out, const char **why)
{
	const char *rest;
	uint64_t pct, ram;
	int r = parse_u64(str, &pct, &rest);

	if (r == -1 || (r == 0 && strcmp(rest, "%") != 0)) {
		*why = "not a whole number of percent";
		return -1;
	}
	if (r == -2 || pct < 1 || pct > PARAMS_RAM_PCT_MAX) {
		*why = "share of RAM out of range";
		return -1;
	}
	ram = params_ram_bytes();
	if (!ram) {
		*why = "the machine's RAM size is unknown";
		return -1;
	}
	/* Rounded down to whole 4 KiB sectors. */
	*out = ram / 100 * pct & ~(uint64_t)4095;
	return 0;
}

/*
 * A duration: a whole number of seconds, or of minutes, hours or days with
 * the suffix m, h or d (s for seconds is allowed too).
 */
static int parse_duration(const char *str, uint64_t *out, const char **why)
{
	const char *rest;
	uint64_t v, mul;
	int r = parse_u64(str, &v, &rest);

	if (r == -1) {
		*why = "not a number";
		return -1;
	}
	if (r == -2) {
		*why = "out of range";
		return -1;
	}
	switch (*rest) {
	case '\0': case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default:
		*why = "bad duration suffix (use s, m, h or d)";
		return -1;
	}
	if (*rest && rest[1]) {
		*why = "bad duration suffix (use s, m, h or d)";
		return -1;
	}
	if (v > UINT32_MAX / mul) {
		*why = "out of range";
		return -1;
	}
	*out = v * mul;
	return 0;
}

static void list_type(const char *type, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 128 - n, "%s%s", n ? ", " : "", type);
}

/* "zsmalloc, zbud": the allocators built in. */
static void allocator_list(char buf[128])
{
	buf[0] = '\0';
	zpool_for_each_type(list_type, buf);
}

static bool allocator_known(const char *name)
{
	char list[128];
	const char *p;
	size_t n = strlen(name);

	if (n == 0)
		return false;	/* strstr finds "" everywhere: no progress */
	allocator_list(list);
	for (p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static char *join_path(const char *base, const char *value)
{
	char cwd[PATH_MAX];
	char *out;

	if (value[0] == '/')
		return strdup(value);
	if (!base) {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		base = cwd;
	}
	if (asprintf(&out, "%s/%s", base, value) < 0)
		return NULL;
	return out;
}

/* The parsed form of a value before it is stored. */
struct value {
	uint64_t num;
	char *str;
};

/*
 * Parse @text for @k into @v. On error, write "key=text: reason; allowed:
 * ..." into @err and return -1.
 */
static int parse_value(const struct key *k, const char *text,
		       const char *base, struct value *v, char *err,
		       size_t errlen)
{
	const char *why = NULL, *rest;
	char list[128];
	int r;

	v->str = NULL;
	v->num = 0;
	switch (k->kind) {
	case K_SIZE:
		if (k->ram_share && text[0] && text[strlen(text) - 1] == '%') {
			params_parse_ram_share(text, &v->num, &why);
			break;
		}
		if (params_parse_size(text, &v->num, &why) < 0)
			break;
		if (v->num < k->min || v->num > k->max)
			why = "out of range";
		else if (v->num && v->num < k->nzmin)
			why = k->nzwhy ? k->nzwhy
				       : "too small to hold a single sector";
		break;
	case K_UINT:
		r = parse_u64(text, &v->num, &rest);
		if (r == -1 || (r == 0 && *rest))
			why = "not a number";
		else if (r == -2 || v->num < k->min || v->num > k->max)
			why = "out of range";
		break;
	case K_PSI:
		if (strcmp(text, "on") == 0) {
			v->num = PARAMS_PSI_DEFAULT;
			break;
		}
		if (strcmp(text, "off") == 0) {
			v->num = PARAMS_PSI_OFF;
			break;
		}
		r = parse_u64(text, &v->num, &rest);
		if (r == -1 || (r == 0 && *rest))
			why = "not on, off or a number";
		else if (r == -2 || v->num < k->min || v->num > k->max)
			why = "out of range";
		break;
	case K_CHOICE:
		if (!choice_known(k->choices, text))
			why = "unknown choice";
		break;
	case K_CODEC:
	case K_RECOMP: {
		int level;

		if (codec_parse(text, k->kind == K_CODEC, k->kind == K_RECOMP,
				&level) < 0)
			why = "unknown codec or level";
		break;
	}
	case K_DURATION:
		if (parse_duration(text, &v->num, &why) == 0 &&
		    (v->num < k->min || v->num > k->max))
			why = "out of range";
		break;
	case K_ALLOCATOR:
		if (!allocator_known(text)) {
			allocator_list(list);
			snprintf(err, errlen,
				 "%s=%s: unknown allocator; allowed: %s",
				 k->name, text, list[0] ? list : "(none built)");
			return -1;
		}
		break;
	case K_PATH:
		if (!text[0])
			why = "empty path";
		break;
	}
	if (why) {
		snprintf(err, errlen, "%s=%s: %s; allowed: %s", k->name, text,
			 why, k->allowed);
		return -1;
	}
	if (k->kind == K_CHOICE || k->kind == K_ALLOCATOR ||
	    k->kind == K_CODEC || k->kind == K_RECOMP)
		v->str = strdup(text);
	else if (k->kind == K_PATH)
		v->str = join_path(base, text);
	if ((k->kind == K_CHOICE || k->kind == K_ALLOCATOR ||
	     k->kind == K_PATH || k->kind == K_CODEC ||
	     k->kind == K_RECOMP) &&
	    !v->str) {
		snprintf(err, errlen, "%s=%s: %s", k->name, text,
			 strerror(errno ? errno : ENOMEM));
		return -1;
	}
	return 0;
}

static void store_value(struct zramd_params *p, const struct key *k,
			struct value *v)
{
	char *field = (char *)p + k->off;

	switch (k->kind) {
	case K_SIZE:
		if (k->max <= UINT_MAX)
			*(unsigned int *)field = (unsigned int)v->num;
		else
			*(uint64_t *)field = v->num;
		break;
	case K_UINT:
	case K_PSI:
	case K_DURATION:
		*(unsigned int *)field = (unsigned int)v->num;
		break;
	case K_CHOICE:
	case K_ALLOCATOR:
	case K_PATH:
	case K_CODEC:
	case K_RECOMP:
		free(*(char **)field);
		*(char **)field = v->str;
		v->str = NULL;
		break;
	}
}

/* --- the API -------------------------------------------------------------- */

int params_init(struct zramd_params *p)
{
	char err[PARAMS_ERR_LEN];

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < NKEYS; i++) {
		struct value v;

		if (!keys[i].def)
			continue;
		/* Defaults are not checked against the registry. */
		if (keys[i].kind == K_ALLOCATOR) {
			v.str = strdup(keys[i].def);
			if (!v.str)
				goto nomem;
		} else if (parse_value(&keys[i], keys[i].def, NULL, &v, err,
				       sizeof(err)) < 0) {
			goto nomem; /* a bad default: caught by the tests */
		}
		store_value(p, &keys[i], &v);
		p->origin[i] = PARAMS_DEFAULT;
	}
	return 0;
nomem:
	params_free(p);
	return -ENOMEM;
}

void params_free(struct zramd_params *p)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].kind == K_CHOICE || keys[i].kind == K_ALLOCATOR ||
		    keys[i].kind == K_PATH || keys[i].kind == K_CODEC ||
		    keys[i].kind == K_RECOMP) {
			char **field = (char **)((char *)p + keys[i].off);

			free(*field);
			*field = NULL;
		}
	}
	free(p->config_dir);
	p->config_dir = NULL;
}

static void key_list(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKEYS && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
				      keys[i].name);
}

int params_set(struct zramd_params *p, const char *key, const char *value,
	       char *err)
{
	const struct key *k = find_key(key);
	struct value v;
	char list[256];

	if (!k) {
		key_list(list, sizeof(list));
		snprintf(err, PARAMS_ERR_LEN,
			 "%s=%s: unknown key; allowed: %s", key, value, list);
		return -1;
	}
	if (p->origin[key_index(k)] == PARAMS_CMDLINE) {
		snprintf(err, PARAMS_ERR_LEN,
			 "%s=%s: %s given twice on the command line", key,
			 value, key);
		return -1;
	}
	if (parse_value(k, value, NULL, &v, err, PARAMS_ERR_LEN) < 0)
		return -1;
	store_value(p, k, &v);
	p->origin[key_index(k)] = PARAMS_CMDLINE;
	return 0;
}

/* snprintf into an error buffer; a message too long is cut. */
static void __attribute__((format(printf, 2, 3)))
errf(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, PARAMS_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* --- the config file ------------------------------------------------------- */

struct file_ctx {
	struct zramd_params *p;
	FILE *fp;
	const char *path;
	int line;		 /* lines read so far */
	int err_line;		 /* line of the first error we found */
	char err[PARAMS_ERR_LEN];
	unsigned char seen[NKEYS];
};

/* An fgets() that counts lines, so the handler knows where it is. */
static char *file_reader(char *str, int num, void *stream)
{
	struct file_ctx *c = stream;
	char *s = fgets(str, num, c->fp);
	size_t n;

	if (!s)
		return NULL;
	c->line++;
	n = strlen(s);
	if (n && s[n - 1] != '\n' && !feof(c->fp) && !c->err_line) {
		c->err_line = c->line;
		snprintf(c->err, sizeof(c->err),
			 "line longer than %d characters", num - 3);
	}
	return s;
}

static int file_error(struct file_ctx *c, const char *fmt, const char *a,
		      const char *b)
{
	if (!c->err_line) {
		c->err_line = c->line;
		snprintf(c->err, sizeof(c->err), fmt, a, b);
	}
	return 0;
}

static int file_handler(void *user, const char *section, const char *name,
			const char *value)
{
	struct file_ctx *c = user;
	const struct key *k;
	struct value v;
	char list[256];

	if (section[0] && strcmp(section, "zramd") != 0)
		return file_error(c,
				  "unknown section [%s]%s; allowed: keys before "
				  "any section, or in [zramd]",
				  section, "");
	k = find_key(name);
	if (!k) {
		key_list(list, sizeof(list));
		return file_error(c, "%s: unknown key; allowed: %s", name,
				  list);
	}
	if (strcmp(k->name, "config") == 0)
		return file_error(c,
				  "%s=%s: a config file cannot name another; "
				  "allowed: only on the command line",
				  name, value);
	if (c->seen[key_index(k)])
		return file_error(c, "%s=%s: key given twice in the file", name,
				  value);
	c->seen[key_index(k)] = 1;
	if (parse_value(k, value, c->p->config_dir, &v, list, sizeof(list)) <
	    0)
		return file_error(c, "%s%s", list, "");
	if (c->p->origin[key_index(k)] == PARAMS_CMDLINE) {
		free(v.str); /* the command line wins */
		return 1;
	}
	store_value(c->p, k, &v);
	c->p->origin[key_index(k)] = PARAMS_FILE;
	return 1;
}

static int load_file(struct zramd_params *p, char *err)
{
	struct file_ctx c = { .p = p, .path = p->config };
	char *slash;
	int r;

	c.fp = fopen(p->config, "r");
	if (!c.fp) {
		snprintf(err, PARAMS_ERR_LEN,
			 "config=%s: cannot read the config file: %s",
			 p->config, strerror(errno));
		return -1;
	}
	free(p->config_dir);
	p->config_dir = strdup(p->config);
	if (!p->config_dir) {
		fclose(c.fp);
		snprintf(err, PARAMS_ERR_LEN, "config: %s", strerror(ENOMEM));
		return -1;
	}
	slash = strrchr(p->config_dir, '/');
	if (slash)
		slash[slash == p->config_dir ? 1 : 0] = '\0';
	r = ini_parse_stream(file_reader, &c, file_handler, &c);
	fclose(c.fp);
	if (r == 0 && !c.err_line)
		return 0;
	if (r < 0) {
		snprintf(err, PARAMS_ERR_LEN, "config=%s: cannot read: %s",
			 p->config, strerror(ENOMEM));
		return -1;
	}
	if (c.err_line && (r == 0 || c.err_line <= r))
		errf(err, "%s:%d: %s", p->config, c.err_line, c.err);
	else
		snprintf(err, PARAMS_ERR_LEN,
			 "%s:%d: syntax error; allowed: 'key = value', "
			 "a comment (# or ;) or [zramd]",
			 p->config, r);
	return -1;
}

/* The directory of @path exists (and is a directory)? */
static int check_dir_of(const char *key, const char *path, char *err)
{
	char *dir = strdup(path);
	char *slash;
	struct stat st;
	int r = 0;

	if (!dir) {
		snprintf(err, PARAMS_ERR_LEN, "%s: %s", key, strerror(ENOMEM));
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, PARAMS_ERR_LEN,
			 "%s=%s: directory %s does not exist; allowed: %s", key,
			 path, dir, find_key(key)->allowed);
		r = -1;
	} else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, PARAMS_ERR_LEN,
			 "%s=%s: is a directory; allowed: %s", key, path,
			 find_key(key)->allowed);
		r = -1;
	}
	free(dir);
	return r;
}

static bool is_set(const struct zramd_params *p, const char *key)
{
	unsigned char o = p->origin[key_index(find_key(key))];

	return o == PARAMS_FILE || o == PARAMS_CMDLINE;
}

int params_finish(struct zramd_params *p, char *err)
{
	if (p->config && load_file(p, err) < 0)
		return -1;
	if (!is_set(p, "size")) {
		snprintf(err, PARAMS_ERR_LEN,
			 "size: missing; give the device size, e.g. "
			 "'nbdkit zramd 4G' or size=4G");
		return -1;
	}
	/* 0, their default, is fine without it: it is what "none" means. */
	if (!p->backing && p->backing_size) {
		snprintf(err, PARAMS_ERR_LEN,
			 "backing_size=%" PRIu64 ": needs backing=PATH",
			 p->backing_size);
		return -1;
	}
	if (!p->backing && p->writeback_idle) {
		snprintf(err, PARAMS_ERR_LEN,
			 "writeback_idle=%u: needs backing=PATH",
			 p->writeback_idle);
		return -1;
	}
	/* backing_force=no is the default and means nothing without it;
	 * yes alone is most likely a backing= that was forgotten. */
	if (!p->backing && p->backing_force &&
	    strcmp(p->backing_force, "yes") == 0) {
		snprintf(err, PARAMS_ERR_LEN,
			 "backing_force=yes: needs backing=PATH");
		return -1;
	}
	if (p->backing && check_dir_of("backing", p->backing, err) < 0)
		return -1;
	if (p->stats && check_dir_of("stats", p->stats, err) < 0)
		return -1;
	if (p->persist && check_dir_of("persist", p->persist, err) < 0)
		return -1;
	if (p->persist && ((p->backing && strcmp(p->persist, p->backing) == 0) ||
			   (p->stats && strcmp(p->persist, p->stats) == 0))) {
		snprintf(err, PARAMS_ERR_LEN,
			 "persist=%s: is also the %s file; allowed: %s",
			 p->persist,
			 p->backing && strcmp(p->persist, p->backing) == 0
				 ? "backing"
				 : "stats",
			 find_key("persist")->allowed);
		return -1;
	}
	if (p->mem_low >= p->mem_high) {
		snprintf(err, PARAMS_ERR_LEN,
			 "mem_low=%u, mem_high=%u: mem_low must be below "
			 "mem_high",
			 p->mem_low, p->mem_high);
		return -1;
	}
	return 0;
}

void params_shrinker_config(const struct zramd_params *p,
			    struct shrinker_config *cfg)
{
	enum pressure_mode psi = PRESSURE_AUTO;

	if (p->psi == PARAMS_PSI_OFF)
		psi = PRESSURE_OFF;
	else if (is_set(p, "psi"))
		psi = PRESSURE_ON;
	*cfg = (struct shrinker_config){
		.mem_limit = p->mem_limit,
		.mem_high = p->mem_high,
		.mem_low = p->mem_low,
		.idle_age = p->writeback_idle,
		.pressure = {
			.psi = psi,
			.psi_pct = p->psi ? p->psi : PARAMS_PSI_DEFAULT,
			.cgroup = PRESSURE_AUTO,
		},
	};
}

void params_for_each_key(void (*fn)(const char *name, const char *syntax,
				    const char *def, const char *help,
				    void *arg),
			 void *arg)
{
	for (size_t i = 0; i < NKEYS; i++)
		fn(keys[i].name, keys[i].syntax, keys[i].def, keys[i].help,
		   arg);
}

const char *params_help(void)
{
	static char text[4096];

	if (text[0])
		return text;
	for (size_t i = 0, n = 0; i < NKEYS && n < sizeof(text); i++) {
		char lhs[64];

		snprintf(lhs, sizeof(lhs), "%s=%s", keys[i].name,
			 keys[i].syntax);
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%s%-26s %s%s%s%s", i ? "\n" : "", lhs,
				      keys[i].help, keys[i].def ? " (default " : "",
				      keys[i].def ? keys[i].def : "",
				      keys[i].def ? ")" : "");
	}
	return text;
}
