/* SPDX-License-Identifier: MIT */
/*
 * replay.c - run a fuzz target over corpus files, without libFuzzer
 *
 *   replay-TARGET [-n] [-v] PATH...
 *
 * Each PATH is a file or a directory (its regular files, sorted by name,
 * not recursing). The empty input runs first, as libFuzzer does. Each
 * input runs in a child process, so one that crashes is named and the
 * others still run, and one that runs longer than $FUZZ_REPLAY_TIMEOUT
 * seconds (60) is killed and counted as failed (a hang); -n runs them all
 * in this process instead (for gdb; the first failure then ends the run).
 * -v names every input.
 *
 * This is how `make check-fuzz` replays the checked-in corpus: built with
 * the normal compiler and flags, or with ASan and UBSan in check-asan.
 * The last line is "replay-TARGET: N passed, N failed".
 *
 * Exit status: 0 if every input passed, 1 if any failed, 2 on a usage
 * error or an unreadable path.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

/* Optional in a target; replay calls it once if it is there. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *progname = "replay";
static bool opt_nofork, opt_verbose;
static unsigned int timeout_s = 60;
static unsigned long passed, failed;

/* Reads a whole file into an exactly sized buffer (so that ASan sees any
 * read past its end). Return: 0, or -1 after printing why. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, r;
	uint8_t *buf = malloc(cap), *exact;

	if (!f || !buf) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
			strerror(errno));
		if (f)
			fclose(f);
		free(buf);
		return -1;
	}
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);

			if (!nb) {
				fclose(f);
				free(buf);
				fprintf(stderr, "%s: %s: out of memory\n",
					progname, path);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s: read error\n", progname, path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	*data = exact;
	*size = n;
	return 0;
}

static void run_one(const char *name, const uint8_t *data, size_t size)
{
	int status;
	pid_t pid;

	if (opt_verbose)
		fprintf(stderr, "%s: %s (%zu bytes)\n", progname, name, size);
	if (opt_nofork) {
		LLVMFuzzerTestOneInput(data, size);
		passed++;
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", progname, strerror(errno));
		failed++;
		return;
	}
	if (pid == 0) {
		alarm(timeout_s);
		LLVMFuzzerTestOneInput(data, size);
		fflush(NULL);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		passed++;
		return;
	}
	failed++;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fprintf(stderr, "%s: FAIL %s: still running after %u s (a "
			"hang?)\n", progname, name, timeout_s);
	else if (WIFSIGNALED(status))
		fprintf(stderr, "%s: FAIL %s: killed by signal %d\n", progname,
			name, WTERMSIG(status));
	else
		fprintf(stderr, "%s: FAIL %s: exit status %d\n", progname,
			name, WEXITSTATUS(status));
}

static int run_file(const char *path)
{
	uint8_t *data;
	size_t size;

	if (read_file(path, &data, &size) < 0)
		return -1;
	run_one(path, data, size);
	free(data);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	int r = 0;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "%s: %s: %s\n", progname, dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) *
							   sizeof(*names));

			if (!nn) {
				r = -1;
				break;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -1;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    run_file(path) < 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	struct stat st;
	int opt, bad = 0;

	progname = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	while ((opt = getopt(argc, argv, "nv")) != -1) {
		switch (opt) {
		case 'n':
			opt_nofork = true;
			break;
		case 'v':
			opt_verbose = true;
			break;
		default:
			fprintf(stderr, "usage: %s [-n] [-v] PATH...\n",
				progname);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: %s [-n] [-v] PATH...\n", progname);
		return 2;
	}
	if (getenv("FUZZ_REPLAY_TIMEOUT"))
		timeout_s = (unsigned int)atoi(getenv("FUZZ_REPLAY_TIMEOUT"));
	/* Made here, so that children share it and it is removed once. */
	(void)fuzz_tmpdir();
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);

	run_one("(empty input)", (const uint8_t *)"", 0);
	for (int i = optind; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s: %s\n", progname, argv[i],
				strerror(errno));
			bad = 1;
		} else if (S_ISDIR(st.st_mode) ? run_dir(argv[i]) < 0
					       : run_file(argv[i]) < 0) {
			bad = 1;
		}
	}
	printf("%s: %lu passed, %lu failed\n", progname, passed, failed);
	if (bad)
		return 2;
	return failed ? 1 : 0;
}
