/* SPDX-License-Identifier: MIT */
/*
 * plugin.c - nbdkit-zramd-plugin: the nbdkit glue over the device core
 *
 *   nbdkit ./build/nbdkit-zramd-plugin.so 4G [key=value ...]
 *   nbdkit zramd 4G                       (after make install)
 *
 * Everything of substance is in device.c (the data path), evict.c
 * (moving pool objects to the backing file), params.c (the keys and the
 * config file), writeback.c (backing file and shrinker) and bg.c (stats
 * file and compaction); this file maps nbdkit callbacks onto them. The
 * lifecycle:
 *
 *   .load             defaults
 *   .config           one key (the bare "4G" comes as size=4G)
 *   .config_complete  the config file, cross checks
 *   .get_ready        the device is created, and with backing= the backing
 *                     file opened and the shrinker set up; with persist=
 *                     the snapshot loaded and renamed away (errors still
 *                     reach the user)
 *   .after_fork       the shrinker and background threads, systemd
 *                     notification, the SIGTERM handler that ends the
 *                     clients' connections first (stopconn.c)
 *   .cleanup          threads stopped, final stats written, with persist=
 *                     the snapshot written, backing file closed, device
 *                     freed; a snapshot that could not be written ends
 *                     nbdkit with exit status 1 (see zramd_cleanup)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include "bg.h"
#include "codec.h"
#include "device.h"
#include "localswap.h"
#include "params.h"
#include "snapshot.h"
#include "stopconn.h"
#include "writeback.h"
#include "zpool.h"
#ifdef ZRAMD_HAVE_NOTIFY
#include "notify.h"
#endif

/* -D zramd.verbose=1: debug messages about configuration and errors. */
NBDKIT_DLL_PUBLIC int zramd_debug_verbose;

static struct zramd_params params;
static int params_status; /* params_init() result */
static struct zdev *dev;
static struct zwb *wb; /* NULL without backing= */
static struct bg *bg;
/* persist=: what the start did with the snapshot, for STATUS= */
static char persist_note[SNAP_ERR_LEN];

static void zramd_load(void)
{
	params_status = params_init(&params);
}

static void zramd_unload(void)
{
	params_free(&params);
}

static int zramd_config(const char *key, const char *value)
{
	char err[PARAMS_ERR_LEN];

	if (params_status < 0) {
		nbdkit_error("params_init: %s", strerror(-params_status));
		return -1;
	}
	if (params_set(&params, key, value, err) < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	return 0;
}

static int zramd_config_complete(void)
{
	char err[PARAMS_ERR_LEN];

	if (params_status < 0) {
		nbdkit_error("params_init: %s", strerror(-params_status));
		return -1;
	}
	if (params_finish(&params, err) < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	return 0;
}

static void log_debug(const char *msg)
{
	nbdkit_debug("zramd: %s", msg);
}

/*
 * The backing file and the shrinker. Without a backing file there is
 * nothing to evict to, so there is no shrinker either: writes past
 * mem_limit fail at once with ENOSPC.
 */
static int setup_writeback(void)
{
	struct zwb_config cfg = {
		.backing = params.backing,
		.backing_size = params.backing_size,
		.backing_force = params.backing_force &&
				 strcmp(params.backing_force, "yes") == 0,
		.promote = !params.promote || strcmp(params.promote, "on") == 0,
		.log = log_debug,
	};
	char err[512];

	params_shrinker_config(&params, &cfg.shrink);
	wb = zwb_create(dev, &cfg, err, sizeof(err));
	if (!wb) {
		/* The message names the file, or the psi key, already. */
		if (err[0])
			nbdkit_error("%s", err);
		else
			nbdkit_error("backing=%s: %s", params.backing,
				     strerror(errno));
		return -1;
	}
	if (zramd_debug_verbose) {
		char desc[768];

		shrinker_describe(zwb_shrinker(wb), desc, sizeof(desc));
		nbdkit_debug("zramd: backing=%s backing_size=%" PRIu64
			     " writeback_idle=%u: %s",
			     params.backing, params.backing_size,
			     params.writeback_idle, desc);
	}
	return 0;
}

/* A line for the log that is not an error: stderr, as nbdkit logs. */
static void __attribute__((format(printf, 1, 2))) log_info(const char *fmt,
							    ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("nbdkit: zramd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
	va_end(ap);
}

static void persist_status(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void persist_status(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
#ifdef ZRAMD_HAVE_NOTIFY
	notify_status_now(line);
#endif
	log_info("%s", line);
}

static void load_progress(void *arg, unsigned int pct)
{
	(void)arg;
	if (pct % 10 == 0 && pct < 100)
		persist_status("persist=%s: loading the snapshot: %u%%",
			       params.persist, pct);
}

/*
 * persist=: load the snapshot into the new device and rename it away
 * before anything is served (snapshot.c, "Never stale"). A start without
 * one says why it is empty.
 */
static int load_snapshot(void)
{
	const char *path = params.persist;
	struct snap_stats st;
	char err[SNAP_ERR_LEN];
	unsigned int stale;
	int r;

	stale = snap_remove_stale(path);
	if (stale)
		log_info("persist=%s: removed %u temporary file(s) of a "
			 "snapshot write that was cut short",
			 path, stale);
	r = snap_load(dev, path, load_progress, NULL, &st, err);
	if (r < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	if (r == 0) {
		if (snap_consumed_exists(path))
			snprintf(persist_note, sizeof(persist_note),
				 "started empty: the last run did not stop "
				 "cleanly (crash or kill): the snapshot it "
				 "loaded is now %s%s, stale",
				 path, SNAP_CONSUMED_SUFFIX);
		else
			snprintf(persist_note, sizeof(persist_note),
				 "started empty: no snapshot at %s yet", path);
		log_info("persist=%s: %s", path, persist_note);
		return 0;
	}
	if (snap_consume(path, err) < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	snprintf(persist_note, sizeof(persist_note),
		 "loaded %" PRIu64 " MiB from the snapshot in %.2f s",
		 st.data_bytes >> 20, st.seconds);
	log_info("persist=%s: loaded %" PRIu64 " MiB of data (%" PRIu64
		 " objects, %" PRIu64 " same-filled, %" PRIu64
		 " back to the backing file, %" PRIu64 " packs of %" PRIu64
		 " sectors) from %" PRIu64
		 " bytes in %.3f s (%.0f MB/s of file); the file is now %s%s",
		 path, st.data_bytes >> 20, st.objects, st.same, st.evicted,
		 st.packs, st.packed,
		 st.file_bytes, st.seconds,
		 st.seconds > 0 ? (double)st.file_bytes / st.seconds / 1e6 : 0,
		 path, SNAP_CONSUMED_SUFFIX);
	return 0;
}

/* persist=: write the snapshot at a clean stop. Return: 0 or -1. */
static int write_snapshot(void)
{
	const char *path = params.persist;
	struct snap_stats st;
	char err[SNAP_ERR_LEN];

	persist_status("persist=%s: writing the snapshot", path);
	if (snap_write(dev, path, &st, err) < 0) {
		nbdkit_error("%s", err);
		return -1;
	}
	snap_remove_consumed(path);
	log_info("persist=%s: wrote %" PRIu64 " MiB of data (%" PRIu64
		 " objects, %" PRIu64 " same-filled, %" PRIu64
		 " from the backing file, %" PRIu64 " packs of %" PRIu64
		 " sectors) as %" PRIu64
		 " bytes in %.3f s (%.0f MB/s of file)",
		 path, st.data_bytes >> 20, st.objects, st.same, st.evicted,
		 st.packs, st.packed,
		 st.file_bytes, st.seconds,
		 st.seconds > 0 ? (double)st.file_bytes / st.seconds / 1e6 : 0);
	return 0;
}

static int zramd_get_ready(void)
{
	struct zdev_config cfg = {
		.size = params.size,
		.allocator = params.allocator,
		.acceleration = (int)params.acceleration,
		.huge_threshold = params.huge_threshold,
		.mem_limit = params.mem_limit,
		.shrinkable = params.backing != NULL,
		.pack_slots = params.pack_sectors,
	};
	int err;

	/* Both were checked by params.c: codec_parse() cannot fail here. */
	(void)codec_parse(params.compressor, true, false, &cfg.zstd_level);
	(void)codec_parse(params.recompress, false, true,
			  &cfg.recompress_level);

	dev = zdev_create(&cfg, &err);
	if (!dev) {
		nbdkit_error("zdev_create: allocator=%s size=%" PRIu64 ": %s",
			     params.allocator, params.size, strerror(-err));
		return -1;
	}
	if (params.backing && setup_writeback() < 0) {
		zdev_destroy(dev);
		dev = NULL;
		return -1;
	}
	if (params.persist && load_snapshot() < 0) {
		zwb_destroy(wb);
		wb = NULL;
		zdev_destroy(dev);
		dev = NULL;
		return -1;
	}
	if (zramd_debug_verbose)
		nbdkit_debug("zramd: size=%" PRIu64 " allocator=%s "
			     "acceleration=%u huge_threshold=%u "
			     "mem_limit=%" PRIu64 " stats=%s",
			     params.size, params.allocator, params.acceleration,
			     params.huge_threshold, params.mem_limit,
			     params.stats ? params.stats : "(none)");
	return 0;
}

static void log_error(const char *msg)
{
	nbdkit_error("%s", msg);
}

#ifdef ZRAMD_HAVE_NOTIFY
static int notify_probe(void *arg)
{
	return zdev_probe(arg);
}

/* "zsmalloc: 1024 MiB stored in 310 MiB (3.30x), 2 MiB same-filled" */
static void notify_status(char *buf, size_t len, void *arg)
{
	struct zstats s;
	uint64_t orig, total;

	zdev_get_stats(arg, &s);
	orig = s.v[ZSTAT_orig_data_size];
	total = s.v[ZSTAT_mem_used_total];
	snprintf(buf, len,
		 "%s: %" PRIu64 " MiB stored in %" PRIu64 " MiB (%.2fx), "
		 "%" PRIu64 " same-filled, %" PRIu64 " on backing file, "
		 "cold tier %" PRIu64 " MiB in %" PRIu64 " MiB",
		 s.allocator, orig >> 20, total >> 20,
		 total ? (double)orig / (double)total : 0.0,
		 s.v[ZSTAT_same_pages], s.v[ZSTAT_bd_count],
		 s.v[ZSTAT_packed_sectors] >> 8, s.v[ZSTAT_pack_bytes] >> 20);
	if (!localswap_safe()) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, "; %s", localswap_status());
	}
	if (persist_note[0]) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, "; %s", persist_note);
	}
}
#endif

static int zramd_after_fork(void)
{
	struct bg_config cfg = {
		.dev = dev,
		.stats_path = params.stats,
		.stats_interval = params.stats_interval,
		.compact_interval = BG_COMPACT_INTERVAL,
		.recompress_interval =
			strcmp(params.recompress, "off") != 0
				? params.recompress_idle
				: 0,
		.log = log_error,
	};
	int r;

	/* Before any thread starts, so they inherit it; says once if the
	 * device is not safe as local swap (see localswap.c). */
	localswap_set_log(log_error);
	localswap_thread();
	if (strcmp(params.mlock, "onfault") == 0 && (r = localswap_lock()) < 0) {
		nbdkit_error("mlock=onfault: mlockall: %s%s", strerror(-r),
			     r == -ENOMEM || r == -EPERM
				     ? " (raise LimitMEMLOCK=/ulimit -l, or "
				       "give CAP_IPC_LOCK)"
				     : "");
		return -1;
	}
	if (wb && (r = zwb_start(wb)) < 0) {
		nbdkit_error("shrinker: pthread_create: %s", strerror(-r));
		return -1;
	}
	bg = bg_start(&cfg);
	if (!bg) {
		nbdkit_error("pthread_create: %m");
		return -1;
	}
	/* nbdkit set its own handlers just before .after_fork. */
	if ((r = stopconn_install()) < 0) {
		nbdkit_error("sigaction: %s", strerror(-r));
		return -1;
	}
#ifdef ZRAMD_HAVE_NOTIFY
	{
		struct notify_ops ops = {
			.probe = notify_probe,
			.status = notify_status,
			.arg = dev,
		};

		if (notify_start(&ops) < 0)
			return -1;
	}
#endif
	return 0;
}

/*
 * With persist=, the snapshot is written once no thread of ours runs
 * (shrinker, background) and before the backing file is closed, whose
 * evicted sectors it reads back. .cleanup cannot fail, and nbdkit 1.32
 * exits 0 after it whatever a plugin does; a snapshot that was not
 * written must not look like a clean stop (systemd would not say), so
 * then, with everything freed and the error logged, the process ends
 * here with status 1 (nbdkit's own remaining teardown is skipped: it
 * unloads the plugin and exits).
 */
static void zramd_cleanup(void)
{
	bool failed = false;

#ifdef ZRAMD_HAVE_NOTIFY
	notify_stop();
#endif
	/* Before bg_stop(), so the final stats count every eviction. */
	zwb_stop(wb);
	bg_stop(bg);
	bg = NULL;
	if (dev && params.persist)
		failed = write_snapshot() < 0;
	zwb_destroy(wb);
	wb = NULL;
	zdev_destroy(dev);
	dev = NULL;
	if (failed) {
		fflush(NULL);
		_exit(1);
	}
}

static void print_type(const char *type, void *arg)
{
	int *n = arg;

	printf("%s%s", (*n)++ ? "," : "", type);
}

static void zramd_dump_plugin(void)
{
	int n = 0;

	printf("zramd_version=%s\n", ZRAMD_VERSION);
	printf("zramd_allocators=");
	zpool_for_each_type(print_type, &n);
	printf("\nzramd_default_allocator=%s\n", ZPOOL_TYPE_ZSMALLOC);
	printf("zramd_compressors=lz4,zstd\n");
	printf("zramd_zstd_version=%s\n", codec_zstd_version());
	printf("zramd_lz4_version=%s\n", codec_lz4_version());
#ifdef ZRAMD_HAVE_NOTIFY
	printf("zramd_systemd_notify=yes\n");
#else
	printf("zramd_systemd_notify=no\n");
#endif
}

static void *zramd_open(int readonly)
{
	(void)readonly;
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t zramd_get_size(void *handle)
{
	(void)handle;
	return (int64_t)zdev_size(dev);
}

static int zramd_block_size(void *handle, uint32_t *minimum,
			    uint32_t *preferred, uint32_t *maximum)
{
	(void)handle;
	*minimum = 1;
	*preferred = 4096;
	*maximum = 32 * 1024 * 1024; /* the NBD protocol's usual ceiling */
	return 0;
}

static int zramd_yes(void *handle)
{
	(void)handle;
	return 1;
}

static int zramd_can_fua(void *handle)
{
	(void)handle;
	return NBDKIT_FUA_NATIVE;
}

static int zramd_can_cache(void *handle)
{
	(void)handle;
	return NBDKIT_CACHE_NATIVE;
}

/* Report a device error the nbdkit way: message, errno, -1. */
static int fail(const char *call, int err, uint32_t count, uint64_t offset)
{
	nbdkit_error("%s: count=%" PRIu32 " offset=%" PRIu64 ": %s", call,
		     count, offset, strerror(-err));
	nbdkit_set_error(-err);
	return -1;
}

static int zramd_pread(void *handle, void *buf, uint32_t count,
		       uint64_t offset, uint32_t flags)
{
	int r;

	localswap_thread();
	r = zdev_read(dev, buf, count, offset);
	(void)handle;
	(void)flags;
	return r < 0 ? fail("pread", r, count, offset) : 0;
}

static int zramd_pwrite(void *handle, const void *buf, uint32_t count,
			uint64_t offset, uint32_t flags)
{
	int r;

	localswap_thread();
	r = zdev_write(dev, buf, count, offset, flags & NBDKIT_FLAG_FUA);
	(void)handle;
	return r < 0 ? fail("pwrite", r, count, offset) : 0;
}

static int zramd_trim(void *handle, uint32_t count, uint64_t offset,
		      uint32_t flags)
{
	int r;

	localswap_thread();
	r = zdev_trim(dev, count, offset);
	(void)handle;
	(void)flags;
	return r < 0 ? fail("trim", r, count, offset) : 0;
}

/* Whole sectors become holes at once: always fast, so FAST_ZERO is fine. */
static int zramd_zero(void *handle, uint32_t count, uint64_t offset,
		      uint32_t flags)
{
	int r;

	localswap_thread();
	r = zdev_zero(dev, count, offset);
	(void)handle;
	(void)flags;
	return r < 0 ? fail("zero", r, count, offset) : 0;
}

static int zramd_flush(void *handle, uint32_t flags)
{
	localswap_thread();
	(void)handle;
	(void)flags;
	return zdev_flush(dev);
}

/* Memory is as close as data gets: nothing to prefetch. */
static int zramd_cache(void *handle, uint32_t count, uint64_t offset,
		       uint32_t flags)
{
	localswap_thread();
	(void)handle;
	(void)count;
	(void)offset;
	(void)flags;
	return 0;
}

static int add_extent(void *arg, uint64_t off, uint64_t len, uint32_t type)
{
	_Static_assert(ZDEV_EXTENT_HOLE == NBDKIT_EXTENT_HOLE &&
			       ZDEV_EXTENT_ZERO == NBDKIT_EXTENT_ZERO,
		       "extent types match nbdkit's");
	return nbdkit_add_extent(arg, off, len, type) < 0 ? -errno : 0;
}

static int zramd_extents(void *handle, uint32_t count, uint64_t offset,
			 uint32_t flags, struct nbdkit_extents *extents)
{
	int r;

	localswap_thread();
	r = zdev_extents(dev, count, offset, flags & NBDKIT_FLAG_REQ_ONE,
			 add_extent, extents);

	(void)handle;
	return r < 0 ? fail("extents", r, count, offset) : 0;
}

static struct nbdkit_plugin plugin = {
	.name              = "zramd",
	.longname          = "zramd compressed RAM disk",
	.version           = ZRAMD_VERSION,
	.description       = "A RAM disk that stores LZ4-compressed sectors "
			     "in a zsmalloc or zbud pool",
	.load              = zramd_load,
	.unload            = zramd_unload,
	.config            = zramd_config,
	.config_complete   = zramd_config_complete,
	.magic_config_key  = "size",
	.get_ready         = zramd_get_ready,
	.after_fork        = zramd_after_fork,
	.cleanup           = zramd_cleanup,
	.dump_plugin       = zramd_dump_plugin,
	.open              = zramd_open,
	.get_size          = zramd_get_size,
	.block_size        = zramd_block_size,
	.can_multi_conn    = zramd_yes,
	.can_trim          = zramd_yes,
	.can_zero          = zramd_yes,
	.can_fast_zero     = zramd_yes,
	.can_extents       = zramd_yes,
	.can_flush         = zramd_yes,
	.can_fua           = zramd_can_fua,
	.can_cache         = zramd_can_cache,
	.pread             = zramd_pread,
	.pwrite            = zramd_pwrite,
	.trim              = zramd_trim,
	.zero              = zramd_zero,
	.flush             = zramd_flush,
	.cache             = zramd_cache,
	.extents           = zramd_extents,
	.errno_is_preserved = 0,
};

/* The help text comes from the key table; fill it in when loaded. */
static void __attribute__((constructor)) zramd_set_help(void)
{
	plugin.config_help = params_help();
}

NBDKIT_REGISTER_PLUGIN(plugin)
