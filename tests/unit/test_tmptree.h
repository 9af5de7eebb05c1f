/* SPDX-License-Identifier: MIT */
/*
 * A scratch directory tree for the suites that read fake /proc and cgroup
 * files (tests/unit/test_daemon_pressure.c, test_daemon_shrinker.c).
 *
 * make_root() and remove_root() are a checked fixture's setup and
 * teardown: a fresh directory $TMPDIR/zramd-PROGRAM-XXXXXX (TMPDIR unset
 * or empty: /tmp) per test, removed with everything in it. at() names a
 * file in it; put() writes one, creating the directories on the way, and
 * write_file() writes a file anywhere.
 * Include after defining _GNU_SOURCE (program_invocation_short_name).
 */
#ifndef ZRAMD_TEST_TMPTREE_H
#define ZRAMD_TEST_TMPTREE_H

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tree of the running test. */
static char root[256];

static inline void make_root(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(root, sizeof(root), "%s/zramd-%s-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", program_invocation_short_name);
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static inline void remove_root(void)
{
	char cmd[300];

	/* Only our own mkdtemp() directory. */
	if (strstr(root, "/zramd-")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", root);
	}
}

/*
 * Return: root/@rel, in one of four static buffers, so that up to four
 * results can be used at once.
 */
static inline char *at(const char *rel)
{
	static char p[4][600];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", root, rel);
	return p[k];
}

static inline void vwrite_file(const char *path, const char *fmt, va_list ap)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "fopen %s", path);
	vfprintf(f, fmt, ap);
	fclose(f);
}

/* Writes the printf-style text to @path (any path), replacing it. */
__attribute__((format(printf, 2, 3))) static inline void
write_file(const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwrite_file(path, fmt, ap);
	va_end(ap);
}

/* Writes the printf-style text to root/@rel, creating directories. */
__attribute__((format(printf, 2, 3))) static inline void
put(const char *rel, const char *fmt, ...)
{
	char p[600];
	va_list ap;

	/* Not at(): callers keep its results in configurations. */
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	va_start(ap, fmt);
	vwrite_file(p, fmt, ap);
	va_end(ap);
}

#endif
