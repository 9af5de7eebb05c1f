/* SPDX-License-Identifier: MIT */
/*
 * zramd-stat - show the stats of zramd devices, like zramctl(8) for zram
 *
 *   zramd-stat [--json | --all | --prometheus [--output PATH] |
 *              --watch [SECONDS]] [--bytes] [STATSFILE...]
 *
 * Each running device rewrites its stats file every few seconds (format:
 * include/zramd_stats.h). With no file named, zramd-stat reads every
 * /run/zramd/ *.stats, which is where the systemd units put them:
 * /run/zramd/zramd.stats for zramd.service, /run/zramd/NAME.stats for
 * zramd@NAME.service.
 *
 * The parser, zramd_stats_parse(), works on a buffer and does not touch
 * the file system, so that a fuzz target can drive it: build this file
 * with -DZRAMD_STAT_NO_MAIN and call it. It never reads past @len, needs
 * no NUL terminator, and either fills @out completely or says what is
 * wrong in @err.
 *
 * Exit status: 0 if every file was shown; 1 if any file could not be
 * read or was refused (the others are still shown); 2 on a usage error.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "zramd-stat.h"

static const char *const stat_names[NR_STATS] = {
#define X(name, type, unit, desc) [STAT_##name] = #name,
	ZRAMD_STATS(X)
#undef X
};

static const char *const stat_descs[NR_STATS] = {
#define X(name, type, unit, desc) [STAT_##name] = desc,
	ZRAMD_STATS(X)
#undef X
};

/* Counters that are sizes in bytes; the others count sectors or events. */
static const bool stat_is_bytes[NR_STATS] = {
#define X(name, type, unit, desc) \
	[STAT_##name] = ZRAMD_UNIT_##unit == ZRAMD_UNIT_BYTES,
	ZRAMD_STATS(X)
#undef X
};

/* Without these a file says nothing useful: refuse it. */
static const enum stat_id stat_required[] = {
	STAT_disksize,
	STAT_orig_data_size,
	STAT_compr_data_size,
	STAT_mem_used_total,
};

int zramd_stats_parse(const char *buf, size_t len, struct stats_file *out,
		      char *err, size_t errlen);

static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (line)
		n = snprintf(err, errlen, "line %zu: ", line);
	if (n < 0 || (size_t)n >= errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Quotes at most 32 bytes of untrusted text for an error message. */
static const char *quote(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, o = 0;

	for (i = 0; i < len && i < 32 && o + 5 < buflen; i++) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x7f && c != '\'')
			buf[o++] = c;
		else
			o += snprintf(buf + o, buflen - o, "\\x%02x", c);
	}
	if (i < len && o + 4 < buflen)
		o += snprintf(buf + o, buflen - o, "...");
	buf[o] = '\0';
	return buf;
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parses a decimal u64 that spans exactly [s, s+len). */
static bool parse_u64(const char *s, size_t len, uint64_t *v)
{
	uint64_t r = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || r > (UINT64_MAX - d) / 10)
			return false;
		r = r * 10 + d;
	}
	*v = r;
	return true;
}

static int find_stat(const char *key, size_t len)
{
	int i;

	for (i = 0; i < NR_STATS; i++)
		if (strlen(stat_names[i]) == len &&
		    memcmp(stat_names[i], key, len) == 0)
			return i;
	return -1;
}

/**
 * zramd_stats_parse() - parse the text of a stats file
 * @buf: the file's bytes (no NUL terminator needed)
 * @len: their number
 * @out: filled in on success; unspecified on failure
 * @err: receives a one-line message on failure ("line 3: ...")
 * @errlen: size of @err
 *
 * Accepts "key value" lines, comments ('#') and blank lines. Unknown keys
 * are skipped whatever their value; known ones must appear at most once,
 * with a decimal value (a word for "allocator"). The file must say
 * "version 1", hold the core counters, and end with a newline (a
 * missing one means it was cut short).
 *
 * Return: 0, or -1 with @err set.
 */
int zramd_stats_parse(const char *buf, size_t len, struct stats_file *out,
		      char *err, size_t errlen)
{
	bool have_version = false, have_allocator = false;
	size_t pos = 0, line = 0, i;
	char q[160];

	memset(out, 0, sizeof *out);
	if (len == 0)
		return fail(err, errlen, 0,
			    "empty file (no stats written yet?)");
	if (memchr(buf, '\0', len))
		return fail(err, errlen, 0,
			    "contains a NUL byte: not a text file");
	if (buf[len - 1] != '\n')
		return fail(err, errlen, 0,
			    "truncated: the last line has no newline");

	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl - s, k, v0, v1;
		uint64_t val;
		int id;

		pos += n + 1;
		line++;
		while (n > 0 && is_blank(s[n - 1]))
			n--;
		for (k = 0; k < n && is_blank(s[k]); k++)
			;
		if (k == n || s[k] == '#')
			continue;
		if (k > 0)
			return fail(err, errlen, line,
				    "line starts with blanks");

		while (k < n && is_key_char(s[k]))
			k++;
		if (k == 0 || (k < n && !is_blank(s[k])))
			return fail(err, errlen, line,
				    "malformed line '%s' (expected: key value)",
				    quote(s, n, q, sizeof q));
		for (v0 = k; v0 < n && is_blank(s[v0]); v0++)
			;
		if (v0 == n)
			return fail(err, errlen, line, "'%s' has no value",
				    quote(s, k, q, sizeof q));
		for (v1 = v0; v1 < n && !is_blank(s[v1]); v1++)
			;

		if (k == 7 && memcmp(s, "version", 7) == 0) {
			if (have_version)
				return fail(err, errlen, line,
					    "'version' appears twice");
			if (v1 != n || !parse_u64(s + v0, n - v0, &val))
				return fail(err, errlen, line,
					    "version '%s' is not a number",
					    quote(s + v0, n - v0, q, sizeof q));
			if (val != ZRAMD_STATS_VERSION)
				return fail(err, errlen, line,
					    "unknown stats file version "
					    "%" PRIu64 " (zramd-stat reads "
					    "version %d)",
					    val, ZRAMD_STATS_VERSION);
			out->version = val;
			have_version = true;
			continue;
		}
		if (k == 9 && memcmp(s, "allocator", 9) == 0) {
			if (have_allocator)
				return fail(err, errlen, line,
					    "'allocator' appears twice");
			if (v1 != n || n - v0 >= ALLOCATOR_MAX)
				return fail(err, errlen, line,
					    "bad allocator name '%s'",
					    quote(s + v0, n - v0, q, sizeof q));
			for (i = v0; i < n; i++)
				if (!is_key_char(s[i]))
					return fail(err, errlen, line,
						    "bad allocator name '%s'",
						    quote(s + v0, n - v0, q,
							  sizeof q));
			memcpy(out->allocator, s + v0, n - v0);
			out->allocator[n - v0] = '\0';
			have_allocator = true;
			continue;
		}

		id = find_stat(s, k);
		if (id < 0)
			continue; /* a newer counter: ignore it */
		if (out->have[id])
			return fail(err, errlen, line, "'%s' appears twice",
				    stat_names[id]);
		if (v1 != n || !parse_u64(s + v0, n - v0, &val))
			return fail(err, errlen, line,
				    "'%s': value '%s' is not a decimal number "
				    "below 2^64",
				    stat_names[id],
				    quote(s + v0, n - v0, q, sizeof q));
		out->value[id] = val;
		out->have[id] = true;
	}

	if (!have_version)
		return fail(err, errlen, 0,
			    "no 'version' line: not a zramd stats file");
	for (i = 0; i < sizeof stat_required / sizeof stat_required[0]; i++)
		if (!out->have[stat_required[i]])
			return fail(err, errlen, 0, "no '%s' line",
				    stat_names[stat_required[i]]);
	return 0;
}

#ifndef ZRAMD_STAT_NO_MAIN

static const char *progname = "zramd-stat";
static bool opt_bytes;

enum output { OUT_TABLE, OUT_JSON, OUT_ALL, OUT_PROM, OUT_WATCH };

/* Reads a whole stats file. Return: 0, or -1 after printing why not. */
static int read_stats(const char *path, struct stats_file *st)
{
	static char buf[STATS_FILE_MAX + 1];
	char err[256];
	struct stat sb;
	size_t len = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
			strerror(errno));
		if (errno == ENOENT && strncmp(path, ZRAMD_STATS_DIR "/",
					       sizeof ZRAMD_STATS_DIR) == 0)
			fprintf(stderr,
				"%s: is the device running (systemctl "
				"status 'zramd*')?\n",
				progname);
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		fprintf(stderr, "%s: %s: fstat: %s\n", progname, path,
			strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
			S_ISDIR(sb.st_mode) ? "is a directory"
					    : "not a regular file");
		close(fd);
		return -1;
	}
	while (len < sizeof buf) {
		r = read(fd, buf + len, sizeof buf - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fprintf(stderr, "%s: %s: read: %s\n", progname, path,
				strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	if (len > STATS_FILE_MAX) {
		fprintf(stderr,
			"%s: %s: larger than %d bytes: not a stats file\n",
			progname, path, STATS_FILE_MAX);
		return -1;
	}
	if (zramd_stats_parse(buf, len, st, err, sizeof err) == -1) {
		fprintf(stderr, "%s: %s: %s\n", progname, path, err);
		return -1;
	}
	return 0;
}

/* "1.2G", "412M", like zramctl: binary units, one decimal below 100. */
static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double x = (double)v;
	unsigned u = 0;
	size_t n;

	if (opt_bytes) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	while (x >= 1024 && u < sizeof units - 2) {
		x /= 1024;
		u++;
	}
	if (u == 0) {
		snprintf(buf, len, "%" PRIu64 "B", v);
		return;
	}
	snprintf(buf, len, x < 99.95 ? "%.1f" : "%.0f", x);
	n = strlen(buf);
	if (n >= 2 && strcmp(buf + n - 2, ".0") == 0)
		n -= 2;
	snprintf(buf + n, len - n, "%c", units[u]);
}

static void field(const struct stats_file *st, enum stat_id id, char *buf,
		  size_t len)
{
	if (!st->have[id])
		snprintf(buf, len, "-");
	else if (stat_is_bytes[id])
		human_size(st->value[id], buf, len);
	else
		snprintf(buf, len, "%" PRIu64, st->value[id]);
}

/* DATA / TOTAL: what the stored data costs in memory, overhead included. */
static bool ratio(const struct stats_file *st, double *r)
{
	if (st->value[STAT_mem_used_total] == 0)
		return false;
	*r = (double)st->value[STAT_orig_data_size] /
	     (double)st->value[STAT_mem_used_total];
	return true;
}

enum column {
	COL_NAME,
	COL_ALLOC,
	COL_DISKSIZE,
	COL_DATA,
	COL_COMPR,
	COL_TOTAL,
	COL_RATIO,
	COL_LIMIT,
	COL_SAME,
	COL_HUGE,
	COL_BACKING,
	COL_COLD,   /* data in the cold tier (packed sectors) */
	COL_PACKED, /* the pool memory its packs take */
	NR_TABLE_COLS,
	/* --watch adds rates per second since the last refresh. */
	COL_READS = NR_TABLE_COLS,
	COL_WRITES,
	COL_EVICT,
	COL_BDREAD,
	NR_COLS
};

static const char *const col_names[NR_COLS] = {
	"NAME",	   "ALLOC",   "DISKSIZE", "DATA",    "COMPR",
	"TOTAL",   "RATIO",   "LIMIT",	  "SAME",    "HUGE",
	"BACKING", "COLD",    "PACKED",   "READS/s", "WRITES/s",
	"EVICT/s", "BDREAD/s",
};

#define CELL_MAX 64

static void row_cells(const struct device *d, char cells[NR_COLS][CELL_MAX])
{
	const struct stats_file *st = &d->st;
	double r;

	snprintf(cells[COL_NAME], CELL_MAX, "%s", d->path);
	snprintf(cells[COL_ALLOC], CELL_MAX, "%s",
		 st->allocator[0] ? st->allocator : "-");
	field(st, STAT_disksize, cells[COL_DISKSIZE], CELL_MAX);
	field(st, STAT_orig_data_size, cells[COL_DATA], CELL_MAX);
	field(st, STAT_compr_data_size, cells[COL_COMPR], CELL_MAX);
	field(st, STAT_mem_used_total, cells[COL_TOTAL], CELL_MAX);
	if (ratio(st, &r))
		snprintf(cells[COL_RATIO], CELL_MAX, "%.2f", r);
	else
		snprintf(cells[COL_RATIO], CELL_MAX, "-");
	field(st, STAT_mem_limit, cells[COL_LIMIT], CELL_MAX);
	field(st, STAT_same_pages, cells[COL_SAME], CELL_MAX);
	field(st, STAT_huge_pages, cells[COL_HUGE], CELL_MAX);
	if (st->have[STAT_bd_count])
		human_size(st->value[STAT_bd_count] * ZRAMD_SECTOR_SIZE,
			   cells[COL_BACKING], CELL_MAX);
	else
		snprintf(cells[COL_BACKING], CELL_MAX, "-");
	if (st->have[STAT_packed_sectors])
		human_size(st->value[STAT_packed_sectors] * ZRAMD_SECTOR_SIZE,
			   cells[COL_COLD], CELL_MAX);
	else
		snprintf(cells[COL_COLD], CELL_MAX, "-");
	field(st, STAT_pack_bytes, cells[COL_PACKED], CELL_MAX);
}

/*
 * The rate columns of --watch: what each counter gained since @prev, per
 * second of @secs. A counter that went down (the daemon restarted) or is
 * missing shows "-".
 */
static void rate_cells(const struct device *d, const struct device *prev,
		       double secs, char cells[NR_COLS][CELL_MAX])
{
	static const enum stat_id evict[] = {STAT_evict_limit, STAT_evict_psi,
					     STAT_evict_cgroup,
					     STAT_evict_idle};
	const struct {
		int col;
		const enum stat_id *ids;
		size_t n;
	} rates[] = {
		{COL_READS, (const enum stat_id[]){STAT_num_reads}, 1},
		{COL_WRITES, (const enum stat_id[]){STAT_num_writes}, 1},
		{COL_EVICT, evict, sizeof evict / sizeof evict[0]},
		{COL_BDREAD, (const enum stat_id[]){STAT_bd_reads}, 1},
	};

	for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
		uint64_t now = 0, then = 0;
		bool ok = prev && secs > 0;

		for (size_t k = 0; ok && k < rates[r].n; k++) {
			enum stat_id id = rates[r].ids[k];

			ok = d->st.have[id] && prev->st.have[id];
			now += d->st.value[id];
			then += prev->st.value[id];
		}
		if (ok && now >= then)
			snprintf(cells[rates[r].col], CELL_MAX, "%.0f",
				 (double)(now - then) / secs);
		else
			snprintf(cells[rates[r].col], CELL_MAX, "-");
	}
}

/*
 * The table; with @prev (--watch: the same devices at the last refresh,
 * @secs ago, or NULL entries where a device is new) it has rate columns.
 */
static void print_table(const struct device *devs, size_t n,
			const struct device *const *prev, double secs)
{
	char(*cells)[NR_COLS][CELL_MAX];
	int width[NR_COLS];
	int ncols = prev ? NR_COLS : NR_TABLE_COLS;
	size_t i;
	int c;

	cells = calloc(n ? n : 1, sizeof *cells);
	if (!cells) {
		perror(progname);
		exit(1);
	}
	for (c = 0; c < ncols; c++)
		width[c] = strlen(col_names[c]);
	for (i = 0; i < n; i++) {
		row_cells(&devs[i], cells[i]);
		if (prev)
			rate_cells(&devs[i], prev[i], secs, cells[i]);
		for (c = 0; c < ncols; c++)
			if ((int)strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
	}
	/* Names and words left-aligned, numbers right-aligned. */
	for (c = 0; c < ncols; c++)
		printf("%*s%s", c <= COL_ALLOC ? -width[c] : width[c],
		       col_names[c], c == ncols - 1 ? "\n" : " ");
	for (i = 0; i < n; i++)
		for (c = 0; c < ncols; c++)
			printf("%*s%s", c <= COL_ALLOC ? -width[c] : width[c],
			       cells[i][c], c == ncols - 1 ? "\n" : " ");
	free(cells);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Raw numbers always: scripts do their own units. */
static void print_json(const struct device *devs, size_t n)
{
	size_t i;
	int id;
	double r;

	printf("{\n  \"zramd\": [");
	for (i = 0; i < n; i++) {
		const struct stats_file *st = &devs[i].st;

		printf("%s\n    {\n      \"name\": ", i ? "," : "");
		json_string(devs[i].path);
		printf(",\n      \"version\": %" PRIu64, st->version);
		printf(",\n      \"allocator\": ");
		if (st->allocator[0])
			json_string(st->allocator);
		else
			printf("null");
		for (id = 0; id < NR_STATS; id++) {
			printf(",\n      \"%s\": ", stat_names[id]);
			if (st->have[id])
				printf("%" PRIu64, st->value[id]);
			else
				printf("null");
		}
		if (ratio(st, &r))
			printf(",\n      \"ratio\": %.4f", r);
		else
			printf(",\n      \"ratio\": null");
		printf("\n    }");
	}
	printf("%s]\n}\n", n ? "\n  " : "");
}

/* Every counter, one per line, with what it means. */
static void print_all(const struct device *devs, size_t n)
{
	char v[CELL_MAX];
	size_t i;
	int id;

	for (i = 0; i < n; i++) {
		const struct stats_file *st = &devs[i].st;

		printf("%s%s:\n", i ? "\n" : "", devs[i].path);
		printf("  %-20s %10s  %s\n", "allocator",
		       st->allocator[0] ? st->allocator : "-",
		       "the zpool backend");
		for (id = 0; id < NR_STATS; id++) {
			field(st, id, v, sizeof v);
			printf("  %-20s %10s  %s\n", stat_names[id], v,
			       stat_descs[id]);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--json | --all | --prometheus [--output PATH] |\n"
		"       --watch [SECONDS]] [--bytes] [STATSFILE...]\n"
		"Show the stats of zramd devices (see zramd-stat(1)).\n"
		"\n"
		"  -j, --json         print JSON (raw numbers) for scripts\n"
		"  -a, --all          print every counter, with its meaning\n"
		"  -p, --prometheus   print Prometheus metrics (text format)\n"
		"  -o, --output PATH  with --prometheus: write PATH "
		"atomically\n"
		"  -w, --watch [SECS] redraw the table every SECS (default 2)\n"
		"                     with rates per second; Ctrl-C ends it\n"
		"  -b, --bytes        print sizes in bytes, not in K/M/G\n"
		"  -h, --help         print this help\n"
		"  -V, --version      print the version\n"
		"\n"
		"With no STATSFILE, every %s/*.stats is read.\n",
		progname, ZRAMD_STATS_DIR);
}

/*
 * Reads every file into @devs (room for @npaths). Return: how many were
 * read; *@failed is set if any could not be (each said why).
 */
static size_t load(const char *const *paths, size_t npaths, struct device *devs,
		   bool *failed)
{
	size_t i, n = 0;

	for (i = 0; i < npaths; i++) {
		devs[n].path = paths[i];
		if (read_stats(paths[i], &devs[n].st) == 0)
			n++;
		else
			*failed = true;
	}
	return n;
}

/* --output: a temporary file in PATH's directory, then rename. */
static int write_prometheus(const char *path, const struct device *devs,
			    size_t n)
{
	size_t len = strlen(path);
	char *tmp = malloc(len + 8);
	FILE *f = NULL;
	int fd, err;

	if (!tmp) {
		perror(progname);
		return -1;
	}
	snprintf(tmp, len + 8, "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd == -1)
		goto fail;
	/* Readable by node_exporter's user, as the stats file is. */
	if (fchmod(fd, 0644) == -1 || !(f = fdopen(fd, "w")))
		goto fail;
	if (zramd_stat_prometheus(f, devs, n) == -1 || fsync(fd) == -1)
		goto fail;
	if (fclose(f) == EOF) {
		f = NULL;
		fd = -1;
		goto fail;
	}
	f = NULL;
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(tmp);
	return 0;
fail:
	err = errno;
	fprintf(stderr, "%s: %s: %s\n", progname, path, strerror(err));
	if (f)
		fclose(f);
	else if (fd != -1)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}

static volatile sig_atomic_t stop_watch;

static void on_signal(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * --watch: redraw the table in place every @secs until SIGINT or SIGTERM,
 * or until a stats file goes away (the device stopped). Devices named on
 * the command line are re-read by name; with none, the glob runs again
 * each time, so devices that start later appear.
 */
static int watch(const char *const *argv_paths, size_t nargs, double secs)
{
	struct device *devs = NULL, *prev = NULL;
	const struct device **match = NULL;
	size_t n = 0, nprev = 0, cap = 0, i, j;
	double t = 0, tprev = 0;
	bool tty = isatty(STDOUT_FILENO);
	int status = 0;
	struct sigaction sa = {.sa_handler = on_signal};

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (!stop_watch) {
		const char *const *paths = argv_paths;
		size_t npaths = nargs;
		glob_t g = {0};
		bool failed = false;
		struct device *tmp;

		if (!nargs) {
			if (glob(ZRAMD_STATS_DIR "/*.stats", 0, NULL, &g) !=
			    0) {
				fprintf(stderr,
					"%s: no stats file in %s: no device "
					"is running\n",
					progname, ZRAMD_STATS_DIR);
				status = 1;
				break;
			}
			paths = (const char *const *)g.gl_pathv;
			npaths = g.gl_pathc;
		}
		if (npaths > cap) {
			cap = npaths;
			devs = realloc(devs, cap * sizeof *devs);
			prev = realloc(prev, cap * sizeof *prev);
			match = realloc(match, cap * sizeof *match);
			if (!devs || !prev || !match) {
				perror(progname);
				status = 1;
				globfree(&g);
				break;
			}
		}
		n = load(paths, npaths, devs, &failed);
		t = now_s();
		if (failed || n == 0) {
			/* The stats file went away: the device is gone. */
			fprintf(stderr,
				"%s: a stats file went away; stopping\n",
				progname);
			globfree(&g);
			break;
		}
		/* Match each device to its last sample by file name. */
		for (i = 0; i < n; i++) {
			match[i] = NULL;
			for (j = 0; j < nprev; j++)
				if (prev[j].path && /* NULL: strdup failed */
				    strcmp(devs[i].path, prev[j].path) == 0)
					match[i] = &prev[j];
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		printf("Every %gs: zramd-stat\n\n", secs);
		print_table(devs, n, match, t - tprev);
		if (!tty)
			putchar('\n');
		fflush(stdout);
		/* Keep this round's paths alive for the next match. */
		for (i = 0; i < n; i++)
			devs[i].path = strdup(devs[i].path);
		for (j = 0; j < nprev; j++)
			free((char *)prev[j].path);
		globfree(&g);
		tmp = prev;
		prev = devs;
		devs = tmp;
		nprev = n;
		tprev = t;
		for (double slept = 0; slept < secs && !stop_watch;
		     slept += 0.1)
			nanosleep(&(struct timespec){0, 100000000}, NULL);
	}
	for (j = 0; j < nprev; j++)
		free((char *)prev[j].path);
	free(devs);
	free(prev);
	free(match);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"prometheus", no_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"watch", no_argument, NULL, 'w'},
		{"bytes", no_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	enum output out = OUT_TABLE;
	const char *const *paths;
	const char *fallback[] = {ZRAMD_STATS_DIR "/zramd.stats"};
	const char *output = NULL;
	struct device *devs;
	glob_t g = {0};
	size_t npaths, n;
	double secs = 2;
	bool failed = false;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "japo:wbhV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			out = OUT_JSON;
			break;
		case 'a':
			out = OUT_ALL;
			break;
		case 'p':
			out = OUT_PROM;
			break;
		case 'o':
			output = optarg;
			break;
		case 'w':
			out = OUT_WATCH;
			/* An optional SECONDS: the next word, if a number. */
			if (optind < argc) {
				char *end;
				double v = strtod(argv[optind], &end);

				if (end != argv[optind] && *end == '\0') {
					if (!(v >= 0.1 && v <= 86400)) {
						fprintf(stderr,
							"%s: --watch %s: give "
							"seconds from 0.1 to "
							"86400\n",
							progname, argv[optind]);
						return 2;
					}
					secs = v;
					optind++;
				}
			}
			break;
		case 'b':
			opt_bytes = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("zramd-stat %s\n", ZRAMD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (output && out != OUT_PROM) {
		fprintf(stderr, "%s: --output goes with --prometheus\n",
			progname);
		return 2;
	}

	if (out == OUT_WATCH)
		return watch((const char *const *)argv + optind,
			     (size_t)(argc - optind), secs);

	if (optind < argc) {
		paths = (const char *const *)argv + optind;
		npaths = argc - optind;
	} else if (glob(ZRAMD_STATS_DIR "/*.stats", 0, NULL, &g) == 0) {
		paths = (const char *const *)g.gl_pathv;
		npaths = g.gl_pathc;
	} else {
		paths = fallback; /* reports why it is missing */
		npaths = 1;
	}

	devs = calloc(npaths, sizeof *devs);
	if (!devs) {
		perror(progname);
		return 1;
	}
	n = load(paths, npaths, devs, &failed);
	if (failed)
		status = 1;

	if (out == OUT_PROM && output) {
		/* A partial exposition would look like vanished devices. */
		if (failed || write_prometheus(output, devs, n) == -1)
			status = 1;
	} else if (n > 0 || out == OUT_JSON) {
		if (out == OUT_JSON)
			print_json(devs, n);
		else if (out == OUT_ALL)
			print_all(devs, n);
		else if (out == OUT_PROM)
			zramd_stat_prometheus(stdout, devs, n);
		else
			print_table(devs, n, NULL, 0);
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "%s: write error: %s\n", progname,
			strerror(errno));
		status = 1;
	}
	free(devs);
	globfree(&g);
	return status;
}

#endif /* ZRAMD_STAT_NO_MAIN */
