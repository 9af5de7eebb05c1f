/* SPDX-License-Identifier: MIT */
/*
 * pressure.h - memory pressure sources for the shrinker
 *
 * Two sources tell the shrinker that memory is short even though the pool
 * is below its own limit:
 *
 *  - PSI (pressure stall information): /proc/pressure/memory for the whole
 *    machine and, under cgroup v2, the service cgroup's memory.pressure.
 *    Where the kernel allows it a PSI trigger is armed ("some" stall of
 *    psi_pct percent over a 1 s window) and its fd is poll()ed for
 *    POLLPRI; otherwise the file is sampled and the stall share since the
 *    previous sample is computed from its "total" counter.
 *  - cgroup limits: memory.current against memory.high and memory.max
 *    (cgroup v1: memory.usage_in_bytes against memory.limit_in_bytes), for
 *    the process's cgroup and each ancestor up to the mount point, sampled.
 *    A level is "near" its limit once usage is within cgroup_margin_pct
 *    percent of it.
 *
 * Every path is injectable (proc_root, cgroup_dir) so the unit tests run
 * against fake files. A regular file that is not on procfs or cgroupfs is
 * always sampled, never armed.
 *
 * Thread safety: a struct pressure is used by one thread (the shrinker's)
 * after pressure_open(); the parsing helpers are pure functions.
 */
#ifndef ZRAMD_PRESSURE_H
#define ZRAMD_PRESSURE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRESSURE_PSI_DEFAULT_PCT       10u
#define PRESSURE_CGROUP_DEFAULT_MARGIN 10u
/* The most trigger fds pressure_poll_fds() fills in. */
#define PRESSURE_MAX_FDS 2

enum pressure_mode {
	PRESSURE_AUTO, /* on if the source exists, else silently off */
	PRESSURE_OFF,
	PRESSURE_ON, /* required: pressure_open() fails without it */
};

struct pressure_config {
	const char *proc_root; /* NULL: "/proc" */
	/*
	 * The cgroup directory to watch. NULL: the process's own, found
	 * through proc_root/self/cgroup and proc_root/self/mountinfo. The
	 * walk up to ancestors stops at cgroup_top (NULL: the cgroup mount
	 * point when found, else cgroup_dir alone is watched).
	 */
	const char *cgroup_dir;
	const char *cgroup_top;
	enum pressure_mode psi;
	unsigned int psi_pct; /* stall share 1..100; 0: default */
	bool psi_no_trigger;  /* sample only, never arm triggers */
	enum pressure_mode cgroup;
	unsigned int cgroup_margin_pct; /* 0..99; 0: default */
};

/* One line of a PSI file. Averages in hundredths of a percent. */
struct psi_line {
	bool valid;
	uint32_t avg10, avg60, avg300;
	uint64_t total; /* microseconds stalled since boot */
};

struct psi_stats {
	struct psi_line some, full;
};

/* What pressure_sample() saw. */
struct pressure_sample {
	bool psi;		 /* a sampled PSI file is over the threshold */
	bool cgroup_near;	 /* a cgroup level is within the margin */
	uint64_t cgroup_excess;	 /* bytes past the margin line, largest level */
	uint64_t cgroup_current; /* usage and limit of that level */
	uint64_t cgroup_limit;
};

struct pressure;

/**
 * pressure_open() - find and open the configured sources
 * @cfg:    the configuration; strings are copied
 * @err:    on failure, a one-line message
 * @errlen: size of @err
 *
 * Return: the monitor (possibly with no source at all, when everything is
 * off or absent in AUTO mode), or NULL with errno set: ENOENT if a source
 * set to PRESSURE_ON does not exist, EOPNOTSUPP if the kernel has PSI
 * disabled and psi is PRESSURE_ON, EINVAL for an out-of-range percentage,
 * ENOMEM.
 */
struct pressure *pressure_open(const struct pressure_config *cfg, char *err,
			       size_t errlen);

/* Closes the files and frees @p (NULL is fine). */
void pressure_close(struct pressure *p);

/**
 * pressure_poll_fds() - the armed PSI trigger fds, for poll()
 * @p:   the monitor
 * @fds: filled with up to @max entries, events = POLLPRI
 * @max: room in @fds
 *
 * Return: the number of entries filled (0 if no trigger is armed).
 */
int pressure_poll_fds(const struct pressure *p, struct pollfd *fds, int max);

/**
 * pressure_poll_events() - digest poll()'s answer for those fds
 * @p:   the monitor
 * @fds: the entries pressure_poll_fds() filled, with revents set
 * @n:   their number
 *
 * A trigger whose fd reports POLLERR or POLLNVAL (its cgroup was removed)
 * is disarmed and its file sampled from then on, if it still reads.
 *
 * Return: the number of triggers that fired (POLLPRI).
 */
int pressure_poll_events(struct pressure *p, const struct pollfd *fds, int n);

/* True if pressure_sample() has anything to look at. */
bool pressure_needs_sampling(const struct pressure *p);

/**
 * pressure_sample() - read the sampled sources once
 * @p:   the monitor
 * @out: the result
 *
 * A PSI file's first sample has no predecessor; it is judged by its avg10.
 */
void pressure_sample(struct pressure *p, struct pressure_sample *out);

/* A one-line description of the sources, for the log. */
void pressure_describe(const struct pressure *p, char *buf, size_t len);

/* --- pure helpers, public for params.c and the unit tests (the cgroup
 * ones are in cgroup.h) --- */

/**
 * pressure_parse_psi() - parse the value of the psi= key
 * @s:    "on", "off", "auto" or a stall percentage 1..100 (which means on)
 * @mode: set to the mode
 * @pct:  set to the percentage (PRESSURE_PSI_DEFAULT_PCT unless given)
 *
 * Return: 0, or -EINVAL.
 */
int pressure_parse_psi(const char *s, enum pressure_mode *mode,
		       unsigned int *pct);

/**
 * psi_parse() - parse the text of a PSI file
 * @text: "some avg10=... avg60=... avg300=... total=...\nfull ...\n"
 * @out:  the lines found; a line absent or malformed has valid == false
 *
 * Return: 0 if a "some" line was parsed, else -EINVAL.
 */
int psi_parse(const char *text, struct psi_stats *out);

/**
 * psi_over() - whether a PSI "some" line shows enough stall
 * @prev:       the previous sample (may be NULL or invalid)
 * @cur:        the current sample
 * @elapsed_us: microseconds between the two samples
 * @pct:        the threshold, percent
 *
 * With a valid predecessor and @elapsed_us > 0 it uses the exact stall
 * share of the interval, (total - prev total) / elapsed; otherwise avg10.
 */
bool psi_over(const struct psi_line *prev, const struct psi_line *cur,
	      uint64_t elapsed_us, unsigned int pct);

#endif /* ZRAMD_PRESSURE_H */
