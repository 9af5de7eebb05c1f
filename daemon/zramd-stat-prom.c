/* SPDX-License-Identifier: MIT */
/*
 * zramd-stat-prom.c - the stats of zramd devices as Prometheus metrics
 *
 * `zramd-stat --prometheus` prints every counter of every device in
 * Prometheus' text exposition format (version 0.0.4), for
 * node_exporter's textfile collector or any scraper that reads a file:
 *
 *   # HELP zramd_orig_data_size_bytes uncompressed bytes stored (holes
 * excluded) # TYPE zramd_orig_data_size_bytes gauge
 *   zramd_orig_data_size_bytes{device="zramd"} 1288490188
 *
 * Names follow Prometheus' advice: the base unit in the name (_bytes; a
 * count of 4 KiB device sectors says _sectors), and _total on counters.
 * Everything comes from ZRAMD_STATS() in include/zramd_stats.h, whose
 * type and unit columns make a new counter a new metric with no edit
 * here. zramd_info carries what is not a number (the allocator, the
 * file's version) as labels with the value 1, the usual idiom.
 *
 * Each metric's samples stand together under one HELP and TYPE, as the
 * format requires, so the loops go metric by metric, then device by
 * device.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "zramd-stat.h"

struct metric {
	const char *name;
	enum zramd_stat_type type;
	enum zramd_stat_unit unit;
	const char *help;
};

static const struct metric metrics[NR_STATS] = {
#define X(name, type, unit, desc) \
	[STAT_##name] = {#name, ZRAMD_TYPE_##type, ZRAMD_UNIT_##unit, desc},
	ZRAMD_STATS(X)
#undef X
};

void zramd_stat_devname(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 6 && strcmp(base + n - 6, ".stats") == 0)
		n -= 6;
	snprintf(buf, len, "%.*s", (int)n, base);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	putc('"', f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			putc(*s, f);
	}
	putc('"', f);
}

static void metric_name(const struct metric *m, char *buf, size_t len)
{
	const char *unit = m->unit == ZRAMD_UNIT_BYTES	   ? "_bytes"
			   : m->unit == ZRAMD_UNIT_SECTORS ? "_sectors"
							   : "";

	snprintf(buf, len, "zramd_%s%s%s", m->name, unit,
		 m->type == ZRAMD_TYPE_COUNTER ? "_total" : "");
}

int zramd_stat_prometheus(FILE *f, const struct device *devs, size_t n)
{
	char name[128], dev[256];
	size_t i;
	int id;

	fputs("# HELP zramd_info the device's allocator and stats file "
	      "version (always 1)\n# TYPE zramd_info gauge\n",
	      f);
	for (i = 0; i < n; i++) {
		zramd_stat_devname(devs[i].path, dev, sizeof dev);
		fputs("zramd_info{device=", f);
		label_value(f, dev);
		fputs(",allocator=", f);
		label_value(f, devs[i].st.allocator[0] ? devs[i].st.allocator
						       : "unknown");
		fprintf(f, ",version=\"%" PRIu64 "\"} 1\n", devs[i].st.version);
	}
	for (id = 0; id < NR_STATS; id++) {
		const struct metric *m = &metrics[id];

		metric_name(m, name, sizeof name);
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, m->help, name,
			m->type == ZRAMD_TYPE_COUNTER ? "counter" : "gauge");
		for (i = 0; i < n; i++) {
			if (!devs[i].st.have[id])
				continue;
			zramd_stat_devname(devs[i].path, dev, sizeof dev);
			fprintf(f, "%s{device=", name);
			label_value(f, dev);
			fprintf(f, "} %" PRIu64 "\n", devs[i].st.value[id]);
		}
	}
	if (fflush(f) == EOF || ferror(f))
		return -1;
	return 0;
}
