/* SPDX-License-Identifier: MIT */
/*
 * cgroup.h - the process's memory cgroup: where it is, what it may use
 *
 * Used by pressure.c, which watches the cgroup and its ancestors, and by
 * the unit tests. See cgroup.c for how the cgroup is found.
 *
 * Thread safety: no state; any thread.
 */
#ifndef ZRAMD_CGROUP_H
#define ZRAMD_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

/* Limits at or above this are "none" (cgroup v1 reports ~2^63). */
#define CGROUP_NO_LIMIT (UINT64_C(1) << 62)

/**
 * cgroup_find() - the process's memory cgroup
 * @proc:    the proc root ("/proc", or a fake tree)
 * @dir:     set to the cgroup's directory (malloc'ed)
 * @top:     set to the hierarchy's mount point (malloc'ed)
 * @version: set to 2 or 1
 *
 * Return: 0; -ENOENT if no cgroup with memory accounting was found (then
 * nothing is allocated); -ENOMEM.
 */
int cgroup_find(const char *proc, char **dir, char **top, int *version);

/* 2 if @dir has memory.current, 1 if memory.usage_in_bytes, else 0. */
int cgroup_version(const char *dir);

/**
 * cgroup_read_value() - read one memory file of a cgroup
 * @dir:  the cgroup directory
 * @name: the file ("memory.current", "memory.max", ...)
 * @v:    set as by cgroup_parse_value()
 *
 * Return: 0, -EINVAL if the contents do not parse, or -errno of open/read.
 */
int cgroup_read_value(const char *dir, const char *name, uint64_t *v);

/**
 * cgroup_parse_value() - parse a cgroup memory file
 * @text: a decimal byte count or "max", optionally newline-terminated
 * @v:    set to the value; "max" and values >= CGROUP_NO_LIMIT give
 *        UINT64_MAX
 *
 * Return: 0, or -EINVAL.
 */
int cgroup_parse_value(const char *text, uint64_t *v);

/**
 * cgroup_near() - whether usage is within @margin_pct of @limit
 * @current:    usage, bytes
 * @limit:      the limit, UINT64_MAX for none
 * @margin_pct: 0..99
 * @excess:     set to the bytes past limit * (100 - margin) / 100, or 0
 */
bool cgroup_near(uint64_t current, uint64_t limit, unsigned int margin_pct,
		 uint64_t *excess);

#endif /* ZRAMD_CGROUP_H */
