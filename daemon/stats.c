/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the stats file: text, "key value" lines, replaced atomically
 *
 * Format (see include/zramd_stats.h): a comment line, "version 1",
 * "allocator NAME", then every counter in ZRAMD_STATS() order.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"

const char *const zstat_names[ZSTAT_COUNT] = {
#define ZSTAT_NAME(name, type, unit, desc) #name,
	ZRAMD_STATS(ZSTAT_NAME)
#undef ZSTAT_NAME
};

const char *const zstat_descriptions[ZSTAT_COUNT] = {
#define ZSTAT_DESC(name, type, unit, desc) desc,
	ZRAMD_STATS(ZSTAT_DESC)
#undef ZSTAT_DESC
};

size_t stats_format(const struct zstats *s, char *buf, size_t len)
{
	size_t n = 0;
	int r;

	r = snprintf(buf, len, "# zramd stats v%d\nversion %d\nallocator %s\n",
		     ZRAMD_STATS_VERSION, ZRAMD_STATS_VERSION,
		     s->allocator[0] ? s->allocator : "none");
	n += (size_t)r;
	for (int i = 0; i < ZSTAT_COUNT; i++) {
		r = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0,
			     "%s %" PRIu64 "\n", zstat_names[i], s->v[i]);
		n += (size_t)r;
	}
	return n;
}

int stats_write_file(const char *path, const struct zstats *s)
{
	char text[4096];
	size_t len = stats_format(s, text, sizeof(text));
	size_t plen = strlen(path);
	char *tmp;
	int fd, err = 0;

	if (len >= sizeof(text))
		return -EOVERFLOW;
	tmp = malloc(plen + sizeof(".XXXXXX"));
	if (!tmp)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
	fd = mkstemp(tmp);
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return err;
	}
	errno = 0;
	if (fchmod(fd, 0644) < 0 || write(fd, text, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}
