/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.c - helpers linked into every fuzz target (see fuzz.h)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

unsigned long fuzz_op_index;
int fuzz_trace;

static void __attribute__((constructor)) read_env(void)
{
	const char *t = getenv("FUZZ_TRACE");

	fuzz_trace = t && *t && strcmp(t, "0") != 0;
}

static char tmpdir[256];

/* Removes the directory if it is empty (other runs may be using it). */
static void remove_tmpdir(void)
{
	rmdir(tmpdir);
}

const char *fuzz_tmpdir(void)
{
	const char *bases[] = { getenv("FUZZ_TMPDIR"), "/dev/shm", "/tmp" };
	struct stat st;

	if (tmpdir[0])
		return tmpdir;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (!bases[i] || !bases[i][0])
			continue;
		snprintf(tmpdir, sizeof(tmpdir), "%s/zramd-fuzz-%u", bases[i],
			 (unsigned int)getuid());
		if (mkdir(tmpdir, 0700) != 0 && errno != EEXIST)
			continue;
		if (lstat(tmpdir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_uid == getuid()) {
			atexit(remove_tmpdir);
			return tmpdir;
		}
	}
	/* A target that needs a file cannot run: fail, never pass. */
	fprintf(stderr, "fuzz: cannot make a scratch directory under "
		"$FUZZ_TMPDIR, /dev/shm or /tmp\n");
	abort();
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void fuzz_remove_tree(const char *path)
{
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
