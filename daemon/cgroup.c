/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c - finding the process's memory cgroup and reading its limits
 *
 * What: the part of the pressure sources (pressure.c) that deals with
 * cgroup files. Where: /proc/self/cgroup gives the process's path in each
 * hierarchy ("0::/system.slice/zramd.service" for v2, "N:memory:/..." for
 * v1), and /proc/self/mountinfo where each hierarchy is mounted (fstype
 * cgroup2, or cgroup with the "memory" super option). The mount's own root
 * (not "/" inside a container that sees part of the tree) is stripped from
 * the path, and mountinfo's octal escapes (\040 for a space) are undone.
 *
 * v2 is preferred when the process's v2 directory has memory.current (the
 * memory controller is enabled there); otherwise the v1 memory hierarchy
 * is used, as on hybrid hosts. Every path starts from a caller's proc
 * root, so the unit tests use fake trees.
 *
 * Locking: none; these functions keep no state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s%s%s", a, *b == '/' || !*b ? "" : "/", b) < 0)
		return NULL;
	return s;
}

/* Reads a small file into @buf (NUL-terminated); -errno on failure. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

static bool exists(const char *dir, const char *name)
{
	char *p = join(dir, name);
	bool ok = p && access(p, F_OK) == 0;

	free(p);
	return ok;
}

int cgroup_version(const char *dir)
{
	if (exists(dir, "memory.current"))
		return 2;
	if (exists(dir, "memory.usage_in_bytes"))
		return 1;
	return 0;
}

int cgroup_parse_value(const char *text, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (strcmp(text, "max") == 0 || strcmp(text, "max\n") == 0) {
		*v = UINT64_MAX;
		return 0;
	}
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(text, &end, 10);
	if (errno || (*end && strcmp(end, "\n") != 0))
		return -EINVAL;
	*v = x >= CGROUP_NO_LIMIT ? UINT64_MAX : x;
	return 0;
}

bool cgroup_near(uint64_t current, uint64_t limit, unsigned int margin_pct,
		 uint64_t *excess)
{
	uint64_t line;

	*excess = 0;
	if (limit == UINT64_MAX)
		return false;
	line =
	    limit - limit / 100 * margin_pct - limit % 100 * margin_pct / 100;
	if (current < line)
		return false;
	*excess = current - line;
	return true;
}

int cgroup_read_value(const char *dir, const char *name, uint64_t *v)
{
	char buf[64], *p = join(dir, name);
	ssize_t n;

	if (!p)
		return -ENOMEM;
	n = read_small(p, buf, sizeof(buf));
	free(p);
	if (n < 0)
		return (int)n;
	return cgroup_parse_value(buf, v);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/* Whether the comma-separated list @opts holds @opt. */
static bool has_opt(const char *opts, const char *opt)
{
	size_t l = strlen(opt);

	for (const char *o = opts; o; o = strchr(o, ',')) {
		if (*o == ',')
			o++;
		if (strncmp(o, opt, l) == 0 && (o[l] == ',' || o[l] == '\0'))
			return true;
	}
	return false;
}

/*
 * Finds the mount of the cgroup hierarchy @version (2, or 1 for the memory
 * controller) in @proc/self/mountinfo, and joins it with @cgpath. Sets
 * *dir and *top (the mount point), both malloc'ed; -ENOENT if not found.
 */
static int find_mount(const char *proc, int version, const char *cgpath,
		      char **dir, char **top)
{
	char *path = join(proc, "self/mountinfo"), *line = NULL;
	size_t cap = 0;
	FILE *f = path ? fopen(path, "re") : NULL;
	int rc = -ENOENT;

	free(path);
	if (!f)
		return -ENOENT;
	while (rc == -ENOENT && getline(&line, &cap, f) > 0) {
		char *fields[6], *sep, *fstype, *opts, *save = NULL;
		const char *rel = cgpath;
		int i;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		fstype = strtok_r(sep + 3, " \n", &save);
		strtok_r(NULL, " \n", &save); /* source */
		opts = strtok_r(NULL, " \n", &save);
		if (!fstype || !opts)
			continue;
		if (version == 2 && strcmp(fstype, "cgroup2") != 0)
			continue;
		if (version == 1 &&
		    (strcmp(fstype, "cgroup") != 0 || !has_opt(opts, "memory")))
			continue;
		save = NULL;
		for (i = 0; i < 5; i++) {
			fields[i] = strtok_r(i ? NULL : line, " ", &save);
			if (!fields[i])
				break;
		}
		if (i < 5)
			continue;
		unescape(fields[3]);
		unescape(fields[4]);
		/* Strip the mount's own root from the process's path. */
		if (strcmp(fields[3], "/") != 0) {
			size_t l = strlen(fields[3]);

			if (strncmp(cgpath, fields[3], l) != 0 ||
			    (cgpath[l] != '/' && cgpath[l] != '\0'))
				continue;
			rel = cgpath + l;
		}
		*top = strdup(fields[4]);
		*dir = join(fields[4], rel);
		if (!*top || !*dir) {
			free(*top);
			free(*dir);
			rc = -ENOMEM;
		} else {
			rc = 0;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

int cgroup_find(const char *proc, char **dir, char **top, int *version)
{
	char *path = join(proc, "self/cgroup"), *line = NULL;
	char *v2 = NULL, *v1 = NULL;
	size_t cap = 0;
	FILE *f = path ? fopen(path, "re") : NULL;
	int rc = -ENOENT;

	free(path);
	if (!f)
		return -ENOENT;
	while (getline(&line, &cap, f) > 0) {
		char *c1 = strchr(line, ':'),
		     *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *ctl, *tok, *save = NULL;

		if (!c2)
			continue;
		line[strcspn(line, "\n")] = '\0';
		*c1 = *c2 = '\0';
		ctl = c1 + 1;
		if (strcmp(line, "0") == 0 && *ctl == '\0' && !v2) {
			v2 = strdup(c2 + 1);
			continue;
		}
		for (tok = strtok_r(ctl, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save))
			if (strcmp(tok, "memory") == 0 && !v1)
				v1 = strdup(c2 + 1);
	}
	free(line);
	fclose(f);

	if (v2 && find_mount(proc, 2, v2, dir, top) == 0) {
		if (exists(*dir, "memory.current")) {
			*version = 2;
			rc = 0;
		} else {
			free(*dir);
			free(*top);
		}
	}
	if (rc != 0 && v1 && find_mount(proc, 1, v1, dir, top) == 0) {
		if (exists(*dir, "memory.usage_in_bytes")) {
			*version = 1;
			rc = 0;
		} else {
			free(*dir);
			free(*top);
		}
	}
	free(v1);
	free(v2);
	return rc;
}
