/* SPDX-License-Identifier: MIT */
/*
 * pressure.c - memory pressure sources for the shrinker: PSI and cgroups
 *
 * What: the shrinker evicts when the pool passes its own limit, but memory
 * can be short for the machine or the service long before that. This file
 * finds out, from the two signals Linux gives a userspace daemon:
 *
 *   PSI   /proc/pressure/memory              machine-wide stall
 *         <cgroup>/memory.pressure            the service's own stall (v2)
 *           armed:   write "some <thr_us> <win_us>" and poll() for POLLPRI;
 *                    the kernel wakes us at most once per window
 *           sampled: read "some ... total=<us>" every period; the stall
 *                    share is (total - previous total) / elapsed
 *
 *   cgroup <mount>/<path>/memory.current     against memory.high, memory.max
 *          ...and the same for each ancestor up to (not including) the
 *          mount point, since a parent slice's limit binds us as well;
 *          cgroup v1 (memory.usage_in_bytes, memory.limit_in_bytes) when
 *          only the v1 memory controller is mounted (hybrid hosts)
 *
 * Why sample PSI by "total" and not avg10: avg10 is a 10-second decaying
 * average, so it keeps reporting pressure for many seconds after it ended
 * and the shrinker would keep evicting; the total counter gives the share
 * of exactly the last interval. avg10 is used only for the first sample.
 *
 * The cgroup is found by cgroup.c, from /proc/self/cgroup and
 * /proc/self/mountinfo.
 *
 * Triggers are armed only on files that really live on procfs or cgroupfs
 * (fstatfs), so fake files in tests are sampled, never written to. Arming
 * needs write access; an unprivileged process may only use windows that
 * are multiples of 2 s, so a refused 1 s window is retried with 2 s, then
 * the file is sampled.
 *
 * Locking: none. One thread owns a struct pressure.
 *
 * Known limits: the cgroup is found once, at open; a process moved to
 * another cgroup keeps watching the old one. memory.high and memory.max
 * are treated alike (both "near" at the same margin). cgroup v1 has no
 * per-cgroup PSI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "errmsg.h"
#include "pressure.h"

#define PROC_MAGIC    0x9fa0
#define CGROUP2_MAGIC 0x63677270
#define MAX_LEVELS    16
#define PSI_WINDOW_US 1000000u

struct psi_src {
	char *path;
	int fd;	      /* -1: not open */
	bool trigger; /* armed; else sampled */
	bool have_prev;
	struct psi_line prev;
	uint64_t prev_us; /* CLOCK_MONOTONIC of prev */
};

struct pressure {
	unsigned int psi_pct;
	unsigned int margin;
	struct psi_src psi[PRESSURE_MAX_FDS]; /* machine, then cgroup */
	int npsi;
	int cg_version;		  /* 0: no cgroup watched; 1 or 2 */
	char *levels[MAX_LEVELS]; /* the cgroup, then its ancestors */
	int nlevels;
};

_Static_assert(PRESSURE_MAX_FDS >= 2, "a machine and a cgroup PSI file");

/* --- pure helpers --- */

int pressure_parse_psi(const char *s, enum pressure_mode *mode,
		       unsigned int *pct)
{
	char *end;
	unsigned long v;

	*pct = PRESSURE_PSI_DEFAULT_PCT;
	if (!s)
		return -EINVAL;
	if (strcmp(s, "on") == 0) {
		*mode = PRESSURE_ON;
		return 0;
	}
	if (strcmp(s, "off") == 0) {
		*mode = PRESSURE_OFF;
		return 0;
	}
	if (strcmp(s, "auto") == 0) {
		*mode = PRESSURE_AUTO;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > 100)
		return -EINVAL;
	*mode = PRESSURE_ON;
	*pct = (unsigned int)v;
	return 0;
}

/* Parses "NN.NN" into hundredths; advances *p. */
static bool parse_avg(const char **p, uint32_t *out)
{
	char *end;
	unsigned long whole, frac = 0;
	int digits = 0;

	if (**p < '0' || **p > '9')
		return false;
	whole = strtoul(*p, &end, 10);
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9') {
			if (digits < 2)
				frac = frac * 10 + (unsigned long)(*end - '0');
			digits++;
			end++;
		}
		if (digits == 0)
			return false;
		if (digits == 1)
			frac *= 10;
	}
	if (whole > 100)
		return false;
	*out = (uint32_t)(whole * 100 + frac);
	*p = end;
	return true;
}

/* Parses the rest of a line after "some " or "full ". */
static bool parse_line(const char *p, struct psi_line *l)
{
	static const char *const keys[] = {
	    "avg10=", "avg60=", "avg300=", "total="};
	uint32_t *avgs[] = {&l->avg10, &l->avg60, &l->avg300};
	char *end;

	for (int k = 0; k < 4; k++) {
		while (*p == ' ')
			p++;
		if (strncmp(p, keys[k], strlen(keys[k])) != 0)
			return false;
		p += strlen(keys[k]);
		if (k < 3) {
			if (!parse_avg(&p, avgs[k]))
				return false;
		} else {
			if (*p < '0' || *p > '9')
				return false;
			errno = 0;
			l->total = strtoull(p, &end, 10);
			if (errno)
				return false;
			p = end;
		}
	}
	return *p == '\0' || *p == '\n' || *p == ' ';
}

int psi_parse(const char *text, struct psi_stats *out)
{
	const char *line = text;

	memset(out, 0, sizeof(*out));
	while (line && *line) {
		struct psi_line *l = NULL;

		if (strncmp(line, "some ", 5) == 0)
			l = &out->some;
		else if (strncmp(line, "full ", 5) == 0)
			l = &out->full;
		if (l) {
			struct psi_line tmp = {0};

			tmp.valid = parse_line(line + 5, &tmp);
			if (tmp.valid)
				*l = tmp;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return out->some.valid ? 0 : -EINVAL;
}

bool psi_over(const struct psi_line *prev, const struct psi_line *cur,
	      uint64_t elapsed_us, unsigned int pct)
{
	uint64_t stalled;

	if (!cur->valid)
		return false;
	if (!prev || !prev->valid || elapsed_us == 0)
		return cur->avg10 >= (uint64_t)pct * 100;
	stalled = cur->total >= prev->total ? cur->total - prev->total : 0;
	/* stalled / elapsed >= pct / 100 */
	return (unsigned __int128)stalled * 100 >=
	       (unsigned __int128)pct * elapsed_us;
}

/* --- files --- */

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s%s%s", a, *b == '/' || !*b ? "" : "/", b) < 0)
		return NULL;
	return s;
}

static ssize_t pread_small(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* --- PSI --- */

/* Opens @path as a PSI source; -errno if it is absent or unreadable. */
static int psi_open(struct psi_src *s, const char *path, unsigned int pct,
		    bool no_trigger)
{
	char buf[256];
	struct statfs sfs;
	struct psi_stats st;
	ssize_t n;
	int fd;

	s->fd = -1;
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* PSI disabled at boot: the file exists but reads EOPNOTSUPP. */
	n = pread_small(fd, buf, sizeof(buf));
	if (n < 0 || psi_parse(buf, &st) != 0) {
		close(fd);
		return n < 0 ? (int)n : -EINVAL;
	}
	s->fd = fd;
	if (no_trigger || fstatfs(fd, &sfs) != 0 ||
	    (sfs.f_type != PROC_MAGIC && sfs.f_type != CGROUP2_MAGIC))
		return 0;
	for (unsigned int win = PSI_WINDOW_US; win <= 2 * PSI_WINDOW_US;
	     win += PSI_WINDOW_US) {
		snprintf(buf, sizeof(buf), "some %u %u",
			 (unsigned int)((uint64_t)win * pct / 100), win);
		if (write(fd, buf, strlen(buf) + 1) > 0) {
			s->trigger = true;
			return 0;
		}
		if (errno == EBADF) /* opened read-only */
			break;
	}
	/* A failed arming leaves the fd usable for reading. */
	return 0;
}

static void psi_close(struct psi_src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	s->fd = -1;
	s->path = NULL;
}

/* Lists @dir and its ancestors strictly below @top into p->levels. */
static int add_levels(struct pressure *p, const char *dir, const char *top)
{
	size_t tl = top ? strlen(top) : 0;
	char *cur = strdup(dir);

	if (!cur)
		return -ENOMEM;
	while (top && tl > 1 && top[tl - 1] == '/')
		tl--;
	for (;;) {
		size_t l = strlen(cur);
		char *slash;

		while (l > 1 && cur[l - 1] == '/')
			cur[--l] = '\0';
		if (top && (l <= tl || strncmp(cur, top, tl) != 0))
			break;
		if (p->nlevels == MAX_LEVELS)
			break;
		p->levels[p->nlevels] = strdup(cur);
		if (!p->levels[p->nlevels]) {
			free(cur);
			return -ENOMEM;
		}
		p->nlevels++;
		slash = strrchr(cur, '/');
		if (!top || !slash || slash == cur)
			break;
		*slash = '\0';
	}
	free(cur);
	return 0;
}

/* --- the monitor --- */

struct pressure *pressure_open(const struct pressure_config *cfg, char *err,
			       size_t errlen)
{
	const char *proc = cfg->proc_root ? cfg->proc_root : "/proc";
	struct pressure *p;
	char *dir = NULL, *top = NULL, *path;
	int version = 0, rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (cfg->psi_pct > 100 || cfg->cgroup_margin_pct > 99) {
		errmsg(err, errlen, EINVAL,
		     "pressure: psi threshold %u%% (1-100) or cgroup margin "
		     "%u%% (0-99) out of range",
		     cfg->psi_pct, cfg->cgroup_margin_pct);
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->psi_pct = cfg->psi_pct ? cfg->psi_pct : PRESSURE_PSI_DEFAULT_PCT;
	p->margin = cfg->cgroup_margin_pct ? cfg->cgroup_margin_pct
					   : PRESSURE_CGROUP_DEFAULT_MARGIN;
	for (int i = 0; i < PRESSURE_MAX_FDS; i++)
		p->psi[i].fd = -1;

	/* The cgroup, wanted for its limits and its memory.pressure. */
	if (cfg->cgroup != PRESSURE_OFF || cfg->psi != PRESSURE_OFF) {
		if (cfg->cgroup_dir) {
			if (*cfg->cgroup_dir) {
				dir = strdup(cfg->cgroup_dir);
				top = cfg->cgroup_top ? strdup(cfg->cgroup_top)
						      : NULL;
				version = dir ? cgroup_version(dir) : 0;
			}
		} else if (cgroup_find(proc, &dir, &top, &version) != 0) {
			dir = top = NULL;
		}
	}
	if (cfg->cgroup != PRESSURE_OFF && version) {
		rc = add_levels(p, dir, top);
		if (rc == 0 && p->nlevels)
			p->cg_version = version;
	}
	if (rc == 0 && cfg->cgroup == PRESSURE_ON && !p->cg_version)
		rc = errmsg(err, errlen, ENOENT,
			  "cgroup=on: no cgroup memory limits to watch "
			  "(%s has no memory.current or memory.usage_in_bytes)",
			  dir ? dir : "no memory cgroup found");

	if (rc == 0 && cfg->psi != PRESSURE_OFF) {
		path = join(proc, "pressure/memory");
		rc = path ? psi_open(&p->psi[0], path, p->psi_pct,
				     cfg->psi_no_trigger)
			  : -ENOMEM;
		if (rc == 0) {
			p->npsi = 1;
		} else if (cfg->psi == PRESSURE_ON) {
			errmsg(err, errlen, -rc, "psi=on: %s: %s%s",
			     path ? path : "", strerror(-rc),
			     rc == -EOPNOTSUPP
				 ? " (PSI disabled: boot with psi=1)"
				 : "");
		} else {
			psi_close(&p->psi[0]);
			rc = 0;
		}
		free(path);
		/* The service's own stall: optional even with psi=on. */
		if (rc == 0 && version == 2) {
			path = join(dir, "memory.pressure");
			if (path && psi_open(&p->psi[p->npsi], path, p->psi_pct,
					     cfg->psi_no_trigger) == 0)
				p->npsi++;
			else
				psi_close(&p->psi[p->npsi]);
			free(path);
		}
	}
	free(dir);
	free(top);
	if (rc != 0) {
		pressure_close(p);
		errno = -rc;
		return NULL;
	}
	return p;
}

void pressure_close(struct pressure *p)
{
	if (!p)
		return;
	for (int i = 0; i < PRESSURE_MAX_FDS; i++)
		if (p->psi[i].path || p->psi[i].fd >= 0)
			psi_close(&p->psi[i]);
	for (int i = 0; i < p->nlevels; i++)
		free(p->levels[i]);
	free(p);
}

int pressure_poll_fds(const struct pressure *p, struct pollfd *fds, int max)
{
	int n = 0;

	for (int i = 0; i < p->npsi && n < max; i++) {
		if (!p->psi[i].trigger)
			continue;
		fds[n++] =
		    (struct pollfd){.fd = p->psi[i].fd, .events = POLLPRI};
	}
	return n;
}

int pressure_poll_events(struct pressure *p, const struct pollfd *fds, int n)
{
	int fired = 0;

	for (int k = 0; k < n; k++) {
		for (int i = 0; i < p->npsi; i++) {
			struct psi_src *s = &p->psi[i];

			if (!s->trigger || s->fd != fds[k].fd)
				continue;
			if (fds[k].revents & (POLLERR | POLLNVAL)) {
				close(s->fd);
				s->trigger = false;
				s->have_prev = false;
				s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
			} else if (fds[k].revents & POLLPRI) {
				fired++;
			}
		}
	}
	return fired;
}

bool pressure_needs_sampling(const struct pressure *p)
{
	for (int i = 0; i < p->npsi; i++)
		if (p->psi[i].fd >= 0 && !p->psi[i].trigger)
			return true;
	return p->cg_version != 0;
}

static void sample_psi(struct pressure *p, struct psi_src *s, bool *over)
{
	char buf[256];
	struct psi_stats st;
	uint64_t t = now_us();

	if (s->fd < 0 || s->trigger)
		return;
	if (pread_small(s->fd, buf, sizeof(buf)) < 0 ||
	    psi_parse(buf, &st) != 0)
		return;
	if (psi_over(s->have_prev ? &s->prev : NULL, &st.some,
		     s->have_prev ? t - s->prev_us : 0, p->psi_pct))
		*over = true;
	s->prev = st.some;
	s->prev_us = t;
	s->have_prev = true;
}

static void sample_level(struct pressure *p, const char *dir,
			 struct pressure_sample *out)
{
	static const char *const v2[] = {"memory.high", "memory.max"};
	static const char *const v1[] = {"memory.limit_in_bytes"};
	const char *const *names = p->cg_version == 2 ? v2 : v1;
	int nnames = p->cg_version == 2 ? 2 : 1;
	uint64_t cur, limit, excess;

	if (cgroup_read_value(dir,
			      p->cg_version == 2 ? "memory.current"
						 : "memory.usage_in_bytes",
			      &cur) != 0)
		return;
	for (int i = 0; i < nnames; i++) {
		if (cgroup_read_value(dir, names[i], &limit) != 0 ||
		    !cgroup_near(cur, limit, p->margin, &excess))
			continue;
		if (!out->cgroup_near || excess > out->cgroup_excess) {
			out->cgroup_excess = excess;
			out->cgroup_current = cur;
			out->cgroup_limit = limit;
		}
		out->cgroup_near = true;
	}
}

void pressure_sample(struct pressure *p, struct pressure_sample *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < p->npsi; i++)
		sample_psi(p, &p->psi[i], &out->psi);
	for (int i = 0; i < p->nlevels && p->cg_version; i++)
		sample_level(p, p->levels[i], out);
}

void pressure_describe(const struct pressure *p, char *buf, size_t len)
{
	size_t off = 0;

#define ADD(...)                                                               \
	do {                                                                   \
		int r_ = snprintf(buf + off, len - off, __VA_ARGS__);          \
		if (r_ > 0)                                                    \
			off = off + (size_t)r_ < len ? off + (size_t)r_        \
						     : len - 1;                \
	} while (0)

	if (!len)
		return;
	buf[0] = '\0';
	ADD("psi:");
	if (p->npsi == 0)
		ADD(" off");
	for (int i = 0; i < p->npsi; i++)
		ADD("%s %s (%s, %u%%)", i ? "," : "", p->psi[i].path,
		    p->psi[i].trigger ? "trigger" : "sampled", p->psi_pct);
	if (p->cg_version)
		ADD("; cgroup v%d: %s and %d ancestor(s), margin %u%%",
		    p->cg_version, p->levels[0], p->nlevels - 1, p->margin);
	else
		ADD("; cgroup: off");
#undef ADD
}
