/* SPDX-License-Identifier: MIT */
/*
 * fuzz_common.c - helpers linked into every fuzz target (see fuzz.h)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static pid_t tmpdir_owner;

/* Removes the directory and whatever a crashed run left in it. */
static void remove_tmpdir(void)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	if (!tmpdir[0] || getpid() != tmpdir_owner)
		return;
	d = opendir(tmpdir);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
				 de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

const char *fuzz_tmpdir(void)
{
	const char *bases[] = { getenv("FUZZ_TMPDIR"), "/dev/shm", "/tmp" };

	if (tmpdir[0])
		return tmpdir;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (!bases[i] || !bases[i][0])
			continue;
		snprintf(tmpdir, sizeof(tmpdir), "%s/zramd-fuzz.XXXXXX",
			 bases[i]);
		if (mkdtemp(tmpdir)) {
			tmpdir_owner = getpid();
			atexit(remove_tmpdir);
			return tmpdir;
		}
	}
	tmpdir[0] = '\0';
	return NULL;
}
