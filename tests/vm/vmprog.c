// SPDX-License-Identifier: MIT
/*
 * vmprog.c - the data generator and checker of the kernel-client tests
 *
 * One small program, linked statically so that it runs both inside the
 * test guest (whose initramfs has no C library for it) and on the host,
 * which regenerates the same bytes to check what reached the daemon.
 *
 * Every 4 KiB page of test data is a pure function of (seed, page index),
 * so any range can be regenerated and compared without storing it. The
 * page kinds mix the compressibility zramd meets in practice:
 *
 *   kind     share  content                        what zramd should do
 *   zero      1/8   all zero                       keep nothing (a hole)
 *   same      1/8   one 8-byte word repeated       same_pages, no pool memory
 *   text      5/8   log lines                      LZ4 shrinks it 2-3 times
 *   random    1/8   xorshift output                stored raw ("huge")
 *
 * Commands (sizes in pages of 4096 bytes; exit 0 ok, 1 mismatch, 2 error):
 *
 *   vmprog gen   SEED FIRST COUNT         mixed pages to stdout
 *   vmprog rand  SEED FIRST COUNT         random pages only, to stdout
 *   vmprog fill  SEED FIRST COUNT DEVICE  write mixed pages with O_DIRECT
 *   vmprog check SEED FIRST COUNT DEVICE  read them back with O_DIRECT
 *   vmprog swap  SEED MIB [ROUNDS]        fill MIB of anonymous memory and
 *                                         verify it, ROUNDS rounds (default 2)
 *   vmprog hold  SEED MIB FILE            fill MIB, wait until FILE exists,
 *                                         then verify (the local-oom
 *                                         scenario's bystander)
 *   vmprog watch PID SECS                 the local-* scenarios' watchdog:
 *                                         locked in memory, it dumps what
 *                                         the kernel and daemon PID are
 *                                         doing once memory traffic stops
 *                                         for SECS seconds
 *
 * "swap" is meant to run in a guest with less RAM than MIB, so that the
 * kernel must push the pages out to swap and bring them back; each round
 * writes every page (with a new seed) and then reads all of them back.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57 /* Linux 5.6 */
#endif

#define PAGE	    4096u
#define CHUNK_PAGES 64u /* pages per read or write of a device */

_Static_assert(PAGE % sizeof(uint64_t) == 0, "a page holds whole words");

enum kind { K_ZERO, K_SAME, K_TEXT, K_RANDOM, K_NR };

static const char *const kind_name[K_NR] = {"zero", "same", "text", "random"};

/* splitmix64: a good 64-bit mix, so neighbouring indexes look unrelated. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64*: the stream for random and text pages. @s must not be 0. */
static uint64_t next64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static enum kind page_kind(uint64_t h)
{
	unsigned int r = h % 8;

	if (r == 0)
		return K_ZERO;
	if (r == 1)
		return K_SAME;
	if (r < 7)
		return K_TEXT;
	return K_RANDOM;
}

static const char *const words[] = {
	"swap",	  "page",   "zram",   "kernel",	  "block",   "sector",
	"write",  "read",   "memory", "compress", "daemon",  "request",
	"the",	  "a",	    "of",     "to",	  "and",     "is",
	"nbd",	  "ok",	    "error",  "retry",	  "timeout", "client",
	"server", "socket", "handle", "evict",	  "backing", "cold",
	"hot",	  "lru",
};

#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Append the decimal digits of @v to @p, return the new end. */
static char *put_num(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = '0' + v % 10;
	while ((v /= 10) && n < 20);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Log-like text, a line at a time:
 *   "<seconds> zramd[<pid>]: word word ... word <number>\n"
 * with the time rising through the page. One random draw makes a line;
 * the guest runs this under emulation, so it has to be cheap. */
static void fill_text(unsigned char *p, uint64_t s)
{
	uint64_t t = next64(&s) % 1000000, pid = 100 + next64(&s) % 30000;
	char line[160], *q;
	size_t n = 0, len;

	while (n < PAGE) {
		uint64_t r = next64(&s);
		int nw = 3 + r % 5;

		t += r >> 60;
		q = put_num(line, t);
		memcpy(q, " zramd[", 7);
		q = put_num(q + 7, pid);
		memcpy(q, "]: ", 3);
		q += 3;
		for (int i = 0; i < nw; i++, r >>= 5) {
			const char *w = words[(r >> 28) % NWORDS];

			len = strlen(w);
			memcpy(q, w, len);
			q += len;
			*q++ = ' ';
		}
		q = put_num(q, (r >> 40) % 4096);
		*q++ = '\n';
		len = q - line;
		if (len > PAGE - n)
			len = PAGE - n;
		memcpy(p + n, line, len);
		n += len;
	}
}

/**
 * make_page() - the content of one page of test data
 * @p: PAGE bytes to fill
 * @seed: the data set
 * @index: the page's index in the data set
 * @only_random: make a random page whatever the index's kind
 *
 * Return: the kind of page made.
 */
static enum kind make_page(unsigned char *p, uint64_t seed, uint64_t index,
			   int only_random)
{
	uint64_t h = mix64(seed ^ mix64(index));
	enum kind k = only_random ? K_RANDOM : page_kind(h);
	uint64_t s = mix64(h) | 1;
	uint64_t *w = (uint64_t *)p;
	size_t i;

	switch (k) {
	case K_ZERO:
		memset(p, 0, PAGE);
		break;
	case K_SAME:
		for (i = 0; i < PAGE / sizeof(*w); i++)
			w[i] = s;
		break;
	case K_TEXT:
		fill_text(p, s);
		break;
	default:
		for (i = 0; i < PAGE / sizeof(*w); i++)
			w[i] = next64(&s);
		break;
	}
	return k;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "vmprog: not a number: %s\n", s);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

static int cmd_gen(uint64_t seed, uint64_t first, uint64_t count,
		   int only_random)
{
	static unsigned char buf[CHUNK_PAGES * PAGE];
	uint64_t i = 0;

	while (i < count) {
		uint64_t n = count - i < CHUNK_PAGES ? count - i : CHUNK_PAGES;

		for (uint64_t j = 0; j < n; j++)
			make_page(buf + j * PAGE, seed, first + i + j,
				  only_random);
		if (write_all(1, buf, n * PAGE) < 0) {
			perror("vmprog: write stdout");
			return 2;
		}
		i += n;
	}
	return 0;
}

/* fill and check: whole chunks with O_DIRECT, so the device really sees
 * them and a check reads what the server holds, not the guest's cache. */
static int cmd_dev(uint64_t seed, uint64_t first, uint64_t count,
		   const char *dev, int check)
{
	unsigned char *buf, *want;
	uint64_t bad = 0, i = 0;
	int fd, rc = 0;

	if (posix_memalign((void **)&buf, PAGE, CHUNK_PAGES * PAGE) ||
	    posix_memalign((void **)&want, PAGE, PAGE)) {
		fprintf(stderr, "vmprog: out of memory\n");
		return 2;
	}
	fd = open(dev, (check ? O_RDONLY : O_WRONLY) | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "vmprog: open %s: %m\n", dev);
		return 2;
	}
	while (i < count) {
		uint64_t n = count - i < CHUNK_PAGES ? count - i : CHUNK_PAGES;
		off_t off = (first + i) * PAGE;
		ssize_t r;

		if (!check)
			for (uint64_t j = 0; j < n; j++)
				make_page(buf + j * PAGE, seed, first + i + j,
					  0);
		r = check ? pread(fd, buf, n * PAGE, off)
			  : pwrite(fd, buf, n * PAGE, off);
		if (r != (ssize_t)(n * PAGE)) {
			fprintf(stderr, "vmprog: %s %s at %jd: %s\n",
				check ? "read" : "write", dev, (intmax_t)off,
				r < 0 ? strerror(errno) : "short transfer");
			rc = 2;
			goto out;
		}
		for (uint64_t j = 0; check && j < n; j++) {
			make_page(want, seed, first + i + j, 0);
			if (memcmp(buf + j * PAGE, want, PAGE) == 0)
				continue;
			if (bad++ < 5)
				fprintf(stderr,
					"vmprog: page %" PRIu64 " differs\n",
					first + i + j);
		}
		i += n;
	}
	if (!check && fsync(fd) < 0) {
		fprintf(stderr, "vmprog: fsync %s: %m\n", dev);
		rc = 2;
	}
	if (bad) {
		fprintf(stderr,
			"vmprog: %" PRIu64 " of %" PRIu64 " pages differ\n",
			bad, count);
		rc = 1;
	}
out:
	close(fd);
	free(buf);
	free(want);
	return rc;
}

/* One round of "swap": write every page, then read every page back. */
static uint64_t swap_round(unsigned char *mem, uint64_t pages, uint64_t seed,
			   int round)
{
	uint64_t nkind[K_NR] = {0}, bad = 0;
	unsigned char want[PAGE];
	double t0 = now(), t1;

	for (uint64_t i = 0; i < pages; i++) {
		nkind[make_page(mem + i * PAGE, seed, i, 0)]++;
		/* Progress, so that a slow guest can be told from a stuck one. */
		if ((i + 1) % (64u << 8) == 0) {
			printf("vmprog: round %d: %" PRIu64 " MiB written, %.1f s\n",
			       round, (i + 1) >> 8, now() - t0);
			fflush(stdout);
		}
	}
	t1 = now();
	/* In the order written: the first pages are the coldest, so most
	 * of them are out on swap, and swap readahead works forwards. */
	for (uint64_t i = 0; i < pages; i++) {
		make_page(want, seed, i, 0);
		if (memcmp(mem + i * PAGE, want, PAGE) == 0)
			continue;
		if (bad++ < 5)
			fprintf(stderr,
				"vmprog: round %d page %" PRIu64 " differs\n",
				round, i);
	}
	printf("vmprog: round %d: %" PRIu64 " pages (", round, pages);
	for (int k = 0; k < K_NR; k++)
		printf("%s%" PRIu64 " %s", k ? ", " : "", nkind[k],
		       kind_name[k]);
	printf("), fill %.1f s, verify %.1f s, %" PRIu64 " differ\n", t1 - t0,
	       now() - t1, bad);
	fflush(stdout);
	return bad;
}

static int cmd_swap(uint64_t seed, uint64_t mib, uint64_t rounds)
{
	uint64_t pages = mib * (1024 * 1024 / PAGE), bad = 0;
	unsigned char *mem;

	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "vmprog: mmap %" PRIu64 " MiB: %m\n", mib);
		return 2;
	}
	for (int round = 1; round <= (int)rounds; round++) {
		/* Drop round 1's pages first, so that round 2 writes them
		 * afresh instead of faulting each one back in to overwrite
		 * it: the daemon sees overwrites of freed swap slots, and
		 * the slow emulated guest does half the reads. */
		if (round > 1 && madvise(mem, pages * PAGE, MADV_DONTNEED)) {
			fprintf(stderr, "vmprog: madvise: %m\n");
			return 2;
		}
		bad += swap_round(mem, pages, seed + round, round);
	}
	munmap(mem, pages * PAGE);
	return bad ? 1 : 0;
}

/* Fill MIB, wait for FILE to appear, verify: data that must survive
 * another process's OOM through swap. */
static int cmd_hold(uint64_t seed, uint64_t mib, const char *file)
{
	uint64_t pages = mib * (1024 * 1024 / PAGE), bad = 0;
	unsigned char *mem, want[PAGE];

	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "vmprog: mmap %" PRIu64 " MiB: %m\n", mib);
		return 2;
	}
	for (uint64_t i = 0; i < pages; i++)
		make_page(mem + i * PAGE, seed, i, 0);
	printf("vmprog: hold: %" PRIu64 " pages written, waiting for %s\n",
	       pages, file);
	fflush(stdout);
	while (access(file, F_OK) != 0)
		sleep(1);
	for (uint64_t i = 0; i < pages; i++) {
		make_page(want, seed, i, 0);
		if (memcmp(mem + i * PAGE, want, PAGE) != 0 && bad++ < 5)
			fprintf(stderr, "vmprog: hold: page %" PRIu64 " differs\n", i);
	}
	printf("vmprog: hold: %" PRIu64 " pages verified, %" PRIu64 " differ\n",
	       pages, bad);
	fflush(stdout);
	munmap(mem, pages * PAGE);
	return bad ? 1 : 0;
}

/* --- watch: what a stalled guest is waiting for ------------------------ */

/* cat_lines LABEL PATH MAX: PATH's lines (at most MAX) as "ZVM-DUMP: LABEL: ..." */
static void cat_lines(const char *label, const char *path, int max)
{
	char line[512];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return;
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("ZVM-DUMP: %s: %s\n", label, line);
		n++;
	}
	fclose(f);
}

/* read_small PATH: the first line of PATH (static buffer, "" if none). */
static const char *read_small(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* task_state DIR: the state letter in DIR/stat, and its comm in COMM. */
static char task_state(const char *dir, char *comm, size_t n)
{
	char path[128], buf[512], *open_p, *close_p;

	snprintf(path, sizeof(path), "%s/stat", dir);
	snprintf(buf, sizeof(buf), "%s", read_small(path));
	open_p = strchr(buf, '(');
	close_p = strrchr(buf, ')');
	if (!open_p || !close_p || close_p[1] != ' ')
		return '?';
	*close_p = 0;
	snprintf(comm, n, "%s", open_p + 1);
	return close_p[2];
}

static void dump_task(const char *dir, const char *why)
{
	char path[160], comm[64], label[128];
	char st = task_state(dir, comm, sizeof(comm));

	snprintf(path, sizeof(path), "%s/wchan", dir);
	printf("ZVM-DUMP: task %s %s (%s) state %c wchan %s\n", dir, comm,
	       why, st, read_small(path));
	snprintf(path, sizeof(path), "%s/syscall", dir);
	printf("ZVM-DUMP: task %s syscall %s\n", dir, read_small(path));
	snprintf(path, sizeof(path), "%s/stack", dir);
	snprintf(label, sizeof(label), "stack %s", comm);
	cat_lines(label, path, 40);
}

static void write_proc(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

static void dump(long daemon)
{
	static const char *const dbg[] = {"busy", "dispatch", "tags"};
	char path[160], comm[64], line[256];
	DIR *procs, *tasks;
	struct dirent *p, *t;
	FILE *f;
	size_t i;

	printf("ZVM-DUMP: ---- stall: no memory traffic ----\n");
	fflush(stdout);
	/* First the kernel's own view of the blocked (D) tasks. */
	write_proc("/proc/sys/kernel/printk", "8");
	write_proc("/proc/sysrq-trigger", "w");
	/* Every thread of the daemon, every kernel worker (a sender blocked
	 * on a socket sleeps in S, which sysrq-w leaves out), every D task. */
	procs = opendir("/proc");
	while (procs && (p = readdir(procs))) {
		if (p->d_name[0] < '0' || p->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.16s/task", p->d_name);
		tasks = opendir(path);
		while (tasks && (t = readdir(tasks))) {
			char dir[128], st;

			if (t->d_name[0] < '0' || t->d_name[0] > '9')
				continue;
			snprintf(dir, sizeof(dir), "/proc/%.16s/task/%.16s",
				 p->d_name, t->d_name);
			st = task_state(dir, comm, sizeof(comm));
			if (atol(p->d_name) == daemon)
				dump_task(dir, "daemon");
			else if (st == 'D')
				dump_task(dir, "blocked");
			else if (strncmp(comm, "kworker", 7) == 0 ||
				 strstr(comm, "nbd") || strstr(comm, "kswapd"))
				dump_task(dir, "kernel");
		}
		if (tasks)
			closedir(tasks);
	}
	if (procs)
		closedir(procs);
	cat_lines("inflight", "/sys/block/nbd0/inflight", 2);
	cat_lines("max_sectors_kb", "/sys/block/nbd0/queue/max_sectors_kb", 1);
	cat_lines("meminfo", "/proc/meminfo", 24);
	f = fopen("/proc/vmstat", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "nr_free", 7) == 0 ||
		    strncmp(line, "nr_writeback", 12) == 0 ||
		    strncmp(line, "pswp", 4) == 0 ||
		    strncmp(line, "allocstall", 10) == 0 ||
		    strncmp(line, "pgscan", 6) == 0 ||
		    strncmp(line, "pgsteal", 7) == 0 ||
		    strncmp(line, "oom", 3) == 0)
			printf("ZVM-DUMP: vmstat: %s", line);
	if (f)
		fclose(f);
	fflush(stdout);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	for (i = 0; i < sizeof(dbg) / sizeof(dbg[0]); i++) {
		snprintf(path, sizeof(path),
			 "/sys/kernel/debug/block/nbd0/hctx0/%s", dbg[i]);
		cat_lines(dbg[i], path, 12);
	}
	printf("ZVM-DUMP: ---- end ----\n");
	fflush(stdout);
}

/* traffic: what moves when memory is being used: swap and allocations. */
static uint64_t traffic(void)
{
	char k[64];
	unsigned long long v, sum = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fscanf(f, "%63s %llu", k, &v) == 2)
		if (strncmp(k, "pswp", 4) == 0 || strncmp(k, "pgalloc_", 8) == 0)
			sum += v;
	fclose(f);
	return sum;
}

/*
 * watch PID SECS: run until PID is gone; when the swap and allocation
 * counters move by fewer than 1000 in SECS seconds, print a dump (at
 * most three, a minute apart). Locked in memory, so that it runs when
 * everything else waits for swap.
 */
static int cmd_watch(long pid, uint64_t secs)
{
	uint64_t last = traffic(), quiet = 0, dumps = 0, since = 60;
	char path[64];

	mlockall(MCL_CURRENT | MCL_FUTURE);
	/* Its own allocations must not wait on swap-out either. */
	prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
	snprintf(path, sizeof(path), "/proc/%ld", pid);
	while (access(path, F_OK) == 0) {
		uint64_t now_t;

		sleep(1);
		since++;
		now_t = traffic();
		if (now_t - last >= 1000) {
			last = now_t;
			quiet = 0;
			continue;
		}
		quiet++;
		if (quiet >= secs && dumps < 3 && since >= 60) {
			dump(pid);
			dumps++;
			since = 0;
			quiet = 0;
		}
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: vmprog gen|rand SEED FIRST COUNT\n"
			"       vmprog fill|check SEED FIRST COUNT DEVICE\n"
			"       vmprog swap SEED MIB [ROUNDS]\n"
			"       vmprog hold SEED MIB FILE\n"
			"       vmprog watch PID SECS\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t seed, a, b;
	const char *cmd;

	if (argc < 4)
		return usage();
	cmd = argv[1];
	if (parse_u64(argv[2], &seed) || parse_u64(argv[3], &a))
		return 2;
	if (strcmp(cmd, "swap") == 0 && argc == 4)
		return cmd_swap(seed, a, 2);
	if (strcmp(cmd, "watch") == 0 && argc == 4)
		return cmd_watch((long)seed, a);
	if (strcmp(cmd, "hold") == 0 && argc == 5)
		return cmd_hold(seed, a, argv[4]);
	if (argc < 5 || parse_u64(argv[4], &b))
		return usage();
	if (strcmp(cmd, "swap") == 0 && argc == 5 && b >= 1)
		return cmd_swap(seed, a, b);
	if (strcmp(cmd, "gen") == 0 && argc == 5)
		return cmd_gen(seed, a, b, 0);
	if (strcmp(cmd, "rand") == 0 && argc == 5)
		return cmd_gen(seed, a, b, 1);
	if (strcmp(cmd, "fill") == 0 && argc == 6)
		return cmd_dev(seed, a, b, argv[5], 0);
	if (strcmp(cmd, "check") == 0 && argc == 6)
		return cmd_dev(seed, a, b, argv[5], 1);
	return usage();
}
