/* SPDX-License-Identifier: MIT */
/*
 * test_loopdev.h - a loop device over a scratch file, for the suites that
 * run the backing tests on a block device as well as on a file
 *
 * Needs root and /dev/loop-control; loop_attach() says false otherwise,
 * and the suite skips those cases with the reason. losetup(8) does the
 * work, so the tests use what an administrator would.
 */
#ifndef TEST_LOOPDEV_H
#define TEST_LOOPDEV_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs "losetup ARGS"; its first output line goes to @out. */
static inline bool losetup_run(const char *args, char *out, size_t outlen)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "losetup %s 2>/dev/null", args);
	f = popen(cmd, "r");
	if (!f)
		return false;
	if (out && outlen) {
		out[0] = '\0';
		if (fgets(out, (int)outlen, f))
			out[strcspn(out, "\n")] = '\0';
	}
	return pclose(f) == 0;
}

/*
 * loop_attach() - a loop device over DIR/loopfile, @mib MiB of zeroes
 * @dev: set to the device's path ("" on failure)
 *
 * Return: true, or false if the file or the device could not be made.
 */
static inline bool loop_attach(const char *dir, unsigned int mib, char *dev,
			       size_t devlen)
{
	char file[300], args[340];
	int fd;

	dev[0] = '\0';
	snprintf(file, sizeof(file), "%s/loopfile", dir);
	fd = open(file, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return false;
	if (ftruncate(fd, (off_t)mib << 20) != 0) {
		close(fd);
		return false;
	}
	close(fd);
	snprintf(args, sizeof(args), "-f --show %s", file);
	if (!losetup_run(args, dev, devlen) || !dev[0]) {
		dev[0] = '\0';
		return false;
	}
	return true;
}

/* Detaches @dev (if any), removes DIR/loopfile, and clears @dev. */
static inline void loop_detach(const char *dir, char *dev)
{
	char args[100], file[300];

	if (dev[0]) {
		snprintf(args, sizeof(args), "-d %s", dev);
		losetup_run(args, NULL, 0);
		dev[0] = '\0';
	}
	snprintf(file, sizeof(file), "%s/loopfile", dir);
	unlink(file);
}

#endif /* TEST_LOOPDEV_H */
