/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - persist=PATH: the device survives a clean restart
 *
 * What. A RAM disk loses everything when its daemon stops: a package
 * upgrade or `systemctl restart zramd` destroys a mounted file system.
 * With persist=PATH, a clean stop (SIGTERM, SIGINT) writes every sector
 * to PATH, and the next start reads it back before it serves, so the
 * device comes back byte for byte.
 *
 * How it is written. The table is walked in sector order (sect_scan(), a
 * leaf at a time under its stripe lock; nothing else runs at a stop) and
 * each sector that holds data becomes one record of
 * include/zramd_snapshot.h: a pool object exactly as the pool holds it
 * (LZ4 or raw, never recompressed: the write is a copy), a same-filled
 * sector as its fill word, a sector on the backing file as an EVICTED
 * record. The backing file is scratch (truncated at every open), so the
 * snapshot must hold that data itself: it is read back through the
 * device's backing ops, which check every record, and a record that
 * fails its check fails the snapshot instead of being saved as good.
 * Holes are not written. Records and the whole file are checksummed with
 * XXH3-64, as the backing file's records are.
 *
 * Atomicity. Everything goes to a temporary file in PATH's directory
 * (mkostemp: mode 0600), which is fsynced, renamed over PATH, and the
 * directory fsynced. A full disk or an I/O error anywhere unlinks the
 * temporary file and leaves PATH exactly as it was; the caller reports
 * the failure (plugin.c: a log line and a non-zero exit).
 *
 * Loading. Into the new, empty device, before the first request: every
 * record is checked as it is read (checksum, type, codec, length, sector
 * inside the device and above the one before), then the trailer (record
 * count, checksum of the whole file). Anything wrong refuses the start
 * with one message naming the file and the fault; a device of another
 * size is refused too, never truncated or padded. Objects are copied
 * into the pool as they are; EVICTED records, and objects that no longer
 * fit under mem_limit, go back to the backing file when there is one.
 *
 * Why load before serving, and not lazily. Loading is a read of the file
 * and a copy per object, no compression. Measured (make bench-snapshot,
 * docs/BENCHMARKS-snapshot.md; 2 shared cores): 512 MiB of real data, a
 * 265 MiB file, loads in 0.8 s from the page cache and 0.9-1.0 s from
 * disk, so the first read is answered about 1 s after nbdkit starts (20
 * ms without a snapshot); 1 GiB in 1.4-2.8 s. Most of it is the pool's
 * first touch of its memory (page faults) and the read itself; the two
 * XXH3 passes are about 15%. A lazy loader (a second source for every
 * read until the load is done, and a file that must stay unchanged
 * meanwhile) would have a second to win at this size, so the device is
 * complete before the first request; progress is logged and sent as
 * STATUS= while it loads. A device of tens of GiB takes tens of seconds
 * at the disk's speed: that is where serving during the load would pay.
 *
 * Never stale. A snapshot that has been loaded must never be loaded
 * again: after a crash, the device it describes has changed since.
 * snap_consume() renames PATH to PATH.consumed (and fsyncs the
 * directory) as soon as the load is done, before the first request is
 * even read; a clean stop writes a new PATH and removes PATH.consumed.
 * So a start that finds PATH.consumed and no PATH knows the last run did
 * not stop cleanly, starts empty and says so. PATH.consumed is kept for
 * a person to look at (or, knowingly, rename back); nothing loads it.
 *
 * Limits. The write holds a copy of the device on disk; its speed is the
 * disk's (TimeoutStopSec= in the units is sized from it). The cold tier's
 * zstd packs have a record type reserved and are refused by this reader.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec.h"
#include "device.h"
#include "device_internal.h"
#include "sectors.h"
#include "snapshot.h"
#include "zpool.h"
#include "zramd_snapshot.h"

_Static_assert(ZSNAP_SECTOR_SIZE == SECT_SIZE, "one sector size");

#define SNAP_BUF_SIZE (1u << 20)

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t rec_checksum(const unsigned char *head, const void *payload,
			     size_t len)
{
	return XXH3_64bits_withSeed(payload, len,
				    XXH3_64bits(head, ZSNAP_REC_OFF_CHECKSUM));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The directory of @path, fsynced (a rename is durable only then). */
static int fsync_dir_of(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, r = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return r;
}

/* --- writing ------------------------------------------------------------- */

struct writer {
	struct zdev *dev;
	int fd;
	unsigned char *buf;
	size_t used;
	XXH3_state_t *whole; /* every byte before the trailer */
	uint64_t records;
	uint64_t file_bytes;
	unsigned char *obj; /* an evicted object read back */
	struct snap_stats st;
	int err;	      /* the first error, a negative errno */
	const char *call;     /* what failed: "write", "backing read" */
	uint64_t bad_sector;  /* with "backing read" */
};

static void w_flush(struct writer *w)
{
	size_t off = 0;

	while (off < w->used && !w->err) {
		ssize_t n = write(w->fd, w->buf + off, w->used - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->err = n < 0 ? -errno : -EIO;
			w->call = "write";
			break;
		}
		off += (size_t)n;
	}
	w->used = 0;
}

static void w_put(struct writer *w, const void *data, size_t len, bool hash)
{
	const unsigned char *p = data;

	if (hash)
		XXH3_64bits_update(w->whole, data, len);
	w->file_bytes += len;
	while (len && !w->err) {
		size_t n = SNAP_BUF_SIZE - w->used;

		if (n > len)
			n = len;
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		len -= n;
		if (w->used == SNAP_BUF_SIZE)
			w_flush(w);
	}
}

static void w_record(struct writer *w, unsigned int type, unsigned int codec,
		     uint64_t sector, uint64_t word, const void *payload,
		     uint32_t len)
{
	unsigned char head[ZSNAP_REC_SIZE];
	bool end = type == ZSNAP_REC_END;

	head[ZSNAP_REC_OFF_TYPE] = (unsigned char)type;
	head[ZSNAP_REC_OFF_CODEC] = (unsigned char)codec;
	put16(head + ZSNAP_REC_OFF_FLAGS, 0);
	put32(head + ZSNAP_REC_OFF_LEN, len);
	put64(head + ZSNAP_REC_OFF_SECTOR, sector);
	put64(head + ZSNAP_REC_OFF_WORD, word);
	put64(head + ZSNAP_REC_OFF_CHECKSUM, rec_checksum(head, payload, len));
	w_put(w, head, sizeof(head), !end);
	if (len)
		w_put(w, payload, len, !end);
	if (!end)
		w->records++;
}

/* sect_scan() callback: one record per sector that holds data. Runs
 * under the leaf's stripe lock. */
static int w_sector(void *arg, uint64_t sector, uint64_t count,
		    struct sect_entry e)
{
	struct writer *w = arg;
	struct zdev *dev = w->dev;
	unsigned int len = sect_len(e);
	unsigned int codec =
		len == SECT_LEN_RAW ? ZSNAP_CODEC_NONE : ZSNAP_CODEC_LZ4;
	void *p;
	int r;

	(void)count; /* more than 1 only for holes */
	switch (sect_state(e)) {
	case SECT_EMPTY:
		return 0;
	case SECT_SAME:
		w_record(w, ZSNAP_REC_SAME, ZSNAP_CODEC_NONE, sector, e.val,
			 NULL, 0);
		w->st.same++;
		break;
	case SECT_POOL:
		p = zpool_map_handle(dev->pool, (unsigned long)e.val,
				     ZPOOL_MM_RO);
		w_record(w, ZSNAP_REC_OBJECT, codec, sector, 0, p, len);
		zpool_unmap_handle(dev->pool, (unsigned long)e.val);
		w->st.objects++;
		break;
	case SECT_BACKING:
		r = dev->has_backing ? dev->backing.load(dev->backing.ctx,
							 e.val, sector, w->obj,
							 len)
				     : -EIO;
		if (r < 0) {
			w->err = r;
			w->call = "backing read";
			w->bad_sector = sector;
			return 1;
		}
		w_record(w, ZSNAP_REC_EVICTED, codec, sector, 0, w->obj, len);
		w->st.evicted++;
		break;
	}
	w->st.data_bytes += SECT_SIZE;
	return w->err ? 1 : 0;
}

int snap_write(struct zdev *dev, const char *path, struct snap_stats *st,
	       char *err)
{
	struct writer w = { .dev = dev, .fd = -1 };
	unsigned char hdr[ZSNAP_HDR_SIZE] = { 0 };
	char *tmp = NULL;
	double t0 = now_s();
	int r;

	w.buf = malloc(SNAP_BUF_SIZE);
	w.obj = malloc(SECT_SIZE);
	w.whole = XXH3_createState();
	if (!w.buf || !w.obj || !w.whole ||
	    asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		w.err = -ENOMEM;
		w.call = "malloc";
		goto out;
	}
	XXH3_64bits_reset(w.whole);
	w.fd = mkostemp(tmp, O_CLOEXEC);
	if (w.fd < 0) {
		w.err = -errno;
		w.call = "create";
		free(tmp);
		tmp = NULL;
		goto out;
	}

	memcpy(hdr, ZSNAP_MAGIC, ZSNAP_MAGIC_LEN);
	put32(hdr + ZSNAP_HDR_OFF_VERSION, ZSNAP_VERSION);
	put32(hdr + ZSNAP_HDR_OFF_HDRSIZE, ZSNAP_HDR_SIZE);
	put64(hdr + ZSNAP_HDR_OFF_DEVSIZE, dev->size);
	put32(hdr + ZSNAP_HDR_OFF_SECTSIZE, ZSNAP_SECTOR_SIZE);
	put32(hdr + ZSNAP_HDR_OFF_CODECS, ZSNAP_CODECS_KNOWN);
	put64(hdr + ZSNAP_HDR_OFF_CREATED, (uint64_t)time(NULL));
	put64(hdr + ZSNAP_HDR_OFF_CHECKSUM,
	      XXH3_64bits(hdr, ZSNAP_HDR_OFF_CHECKSUM));
	w_put(&w, hdr, sizeof(hdr), true);

	sect_scan(dev->tab, 0, sect_nsectors(dev->tab), w_sector, &w);
	if (!w.err)
		w_record(&w, ZSNAP_REC_END, ZSNAP_CODEC_NONE, w.records,
			 XXH3_64bits_digest(w.whole), NULL, 0);
	if (!w.err)
		w_flush(&w);
	if (!w.err && fsync(w.fd) < 0) {
		w.err = -errno;
		w.call = "fsync";
	}
	if (close(w.fd) < 0 && !w.err) {
		w.err = -errno;
		w.call = "close";
	}
	w.fd = -1;
	if (!w.err && rename(tmp, path) < 0) {
		w.err = -errno;
		w.call = "rename";
	}
	if (!w.err) {
		free(tmp);
		tmp = NULL; /* it is PATH now */
		if ((r = fsync_dir_of(path)) < 0) {
			w.err = r;
			w.call = "fsync of the directory";
		}
	}

out:
	if (w.fd >= 0)
		close(w.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (w.err) {
		if (w.call && strcmp(w.call, "backing read") == 0)
			snprintf(err, SNAP_ERR_LEN,
				 "persist=%s: snapshot not written: sector "
				 "%" PRIu64 " on the backing file could not be "
				 "read back: %s; the old snapshot, if any, is "
				 "left as it was",
				 path, w.bad_sector, strerror(-w.err));
		else
			snprintf(err, SNAP_ERR_LEN,
				 "persist=%s: snapshot not written: %s: %s; "
				 "the old snapshot, if any, is left as it was",
				 path, w.call ? w.call : "?", strerror(-w.err));
	} else if (st) {
		*st = w.st;
		st->file_bytes = w.file_bytes;
		st->seconds = now_s() - t0;
	}
	XXH3_freeState(w.whole);
	free(w.obj);
	free(w.buf);
	return w.err;
}

/* --- reading ------------------------------------------------------------- */

struct reader {
	int fd;
	unsigned char *buf;
	size_t len, pos;     /* bytes in buf, bytes consumed */
	uint64_t off;	     /* file offset of buf[pos] (from the start) */
	uint64_t total;	     /* file size, for progress; 0: unknown */
	bool eof;
	int err;	     /* a read error, negative errno */
	unsigned int pct;
	snap_progress_fn progress;
	void *arg;
};

/*
 * Make @n bytes (at most SNAP_BUF_SIZE) available at the reader's
 * position. Return: a pointer to them, or NULL at the end of the file
 * (*got says how many there were) or on a read error (r->err).
 */
static const unsigned char *r_take(struct reader *r, size_t n, size_t *got)
{
	const unsigned char *p;

	while (r->len - r->pos < n && !r->eof) {
		ssize_t k;

		if (r->pos) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		k = read(r->fd, r->buf + r->len, SNAP_BUF_SIZE - r->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r->err = -errno;
			return NULL;
		}
		if (k == 0)
			r->eof = true;
		r->len += (size_t)k;
	}
	if (r->len - r->pos < n) {
		*got = r->len - r->pos;
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	r->off += n;
	*got = n;
	if (r->progress && r->total) {
		unsigned int pct = (unsigned int)(r->off * 100 / r->total);

		if (pct > r->pct && pct <= 100) {
			r->pct = pct;
			r->progress(r->arg, pct);
		}
	}
	return p;
}

/* Install @e for @sector, which is empty. */
static int install(struct zdev *dev, uint64_t sector, struct sect_entry e)
{
	struct sect_ref ref;
	int r;

	sect_lock(dev->tab, sector, &ref);
	if (sect_state(sect_ref_get(&ref)) != SECT_EMPTY) {
		sect_unlock(&ref);
		return -EEXIST;
	}
	r = sect_ref_set(dev->tab, &ref, e);
	if (r == 0)
		account(&ref, e, 1);
	sect_unlock(&ref);
	return r;
}

/*
 * Put one object (@len bytes, LZ4 or raw) of @sector into the pool, or
 * onto the backing file if it was there (@evicted) or the pool is full.
 */
static int load_object(struct zdev *dev, uint64_t sector, const void *data,
		       unsigned int len, bool evicted)
{
	struct sect_entry e;
	unsigned long handle;
	uint64_t total;
	int64_t slot;
	int r;

	if (!(evicted && dev->has_backing)) {
		r = zpool_malloc(dev->pool, len, sector, &handle);
		if (r < 0)
			return r;
		total = zpool_get_total_size(dev->pool);
		if (!dev->mem_limit || total <= dev->mem_limit) {
			void *p = zpool_map_handle(dev->pool, handle,
						   ZPOOL_MM_WO);

			memcpy(p, data, len);
			zpool_unmap_handle(dev->pool, handle);
			zstat_max(&dev->live, ZSTAT_mem_used_max, total);
			e = sect_make(SECT_POOL, handle, len);
			r = install(dev, sector, e);
			if (r < 0)
				zpool_free(dev->pool, handle);
			return r;
		}
		zpool_free(dev->pool, handle);
		if (!dev->has_backing)
			return -ENOSPC;
	}
	slot = dev->backing.store(dev->backing.ctx, sector, data, len);
	if (slot < 0)
		return (int)slot;
	zstat_add(&dev->live, ZSTAT_bd_writes, 1);
	e = sect_make(SECT_BACKING, (uint64_t)slot, len);
	r = install(dev, sector, e);
	if (r < 0 && dev->backing.release)
		dev->backing.release(dev->backing.ctx, (uint64_t)slot);
	return r;
}

/* "persist=NAME: refused: <what>; ..." */
static int __attribute__((format(printf, 4, 5)))
refuse(char *err, const char *name, int ret, const char *fmt, ...)
{
	char what[SNAP_ERR_LEN / 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, SNAP_ERR_LEN,
		 "persist=%s: snapshot refused: %s; nothing of it is served "
		 "(to start empty, remove or rename the file)",
		 name, what);
	return ret;
}

static int check_header(struct zdev *dev, const unsigned char *h,
			const char *name, char *err)
{
	uint32_t version = get32(h + ZSNAP_HDR_OFF_VERSION);
	uint32_t codecs = get32(h + ZSNAP_HDR_OFF_CODECS);
	uint64_t size = get64(h + ZSNAP_HDR_OFF_DEVSIZE);

	if (memcmp(h, ZSNAP_MAGIC, ZSNAP_MAGIC_LEN) != 0)
		return refuse(err, name, -EINVAL,
			      "not a zramd snapshot (bad magic)");
	if (version != ZSNAP_VERSION)
		return refuse(err, name, -EINVAL,
			      "format version %" PRIu32 "; this zramd reads "
			      "version %u",
			      version, ZSNAP_VERSION);
	if (get64(h + ZSNAP_HDR_OFF_CHECKSUM) !=
	    XXH3_64bits(h, ZSNAP_HDR_OFF_CHECKSUM))
		return refuse(err, name, -EINVAL,
			      "header checksum mismatch (damaged header)");
	if (get32(h + ZSNAP_HDR_OFF_HDRSIZE) != ZSNAP_HDR_SIZE ||
	    get32(h + ZSNAP_HDR_OFF_SECTSIZE) != ZSNAP_SECTOR_SIZE ||
	    get64(h + ZSNAP_HDR_OFF_RESERVED) ||
	    get64(h + ZSNAP_HDR_OFF_RESERVED + 8))
		return refuse(err, name, -EINVAL,
			      "header size %" PRIu32 " or sector size %" PRIu32
			      " or reserved fields not as version %u has them",
			      get32(h + ZSNAP_HDR_OFF_HDRSIZE),
			      get32(h + ZSNAP_HDR_OFF_SECTSIZE), ZSNAP_VERSION);
	if (codecs & ~ZSNAP_CODECS_KNOWN)
		return refuse(err, name, -EINVAL,
			      "uses codecs this zramd does not know (mask "
			      "0x%" PRIx32 ", known 0x%x)",
			      codecs, ZSNAP_CODECS_KNOWN);
	if (size != dev->size)
		return refuse(err, name, -EINVAL,
			      "it holds a device of %" PRIu64 " bytes, this "
			      "one is %" PRIu64 " bytes (a snapshot is never "
			      "truncated or padded: start with size=%" PRIu64
			      ")",
			      size, dev->size, size);
	return 0;
}

/* The checks of one record's head and payload length; NULL if good. */
static const char *bad_record(const unsigned char *head, uint64_t nsectors,
			      bool have_prev, uint64_t prev)
{
	unsigned int type = head[ZSNAP_REC_OFF_TYPE];
	unsigned int codec = head[ZSNAP_REC_OFF_CODEC];
	uint32_t len = get32(head + ZSNAP_REC_OFF_LEN);
	uint64_t sector = get64(head + ZSNAP_REC_OFF_SECTOR);

	if (head[ZSNAP_REC_OFF_FLAGS] || head[ZSNAP_REC_OFF_FLAGS + 1])
		return "flags set that version 1 does not have";
	switch (type) {
	case ZSNAP_REC_OBJECT:
	case ZSNAP_REC_EVICTED:
		if (codec == ZSNAP_CODEC_LZ4 && len >= 1 && len < SECT_SIZE)
			break;
		if (codec == ZSNAP_CODEC_NONE && len == SECT_SIZE)
			break;
		return "bad codec or length for an object";
	case ZSNAP_REC_SAME:
		if (codec != ZSNAP_CODEC_NONE || len)
			return "a same-filled record with a payload";
		break;
	case ZSNAP_REC_PACK:
		return "a zstd pack record, which this zramd cannot load";
	case ZSNAP_REC_END:
		if (len || codec)
			return "a trailer with a payload";
		return NULL;
	default:
		return "unknown record type";
	}
	if (sector >= nsectors)
		return "sector past the end of the device";
	if (have_prev && sector <= prev)
		return "sectors out of order";
	return NULL;
}

int snap_load_fd(struct zdev *dev, int fd, const char *name,
		 snap_progress_fn progress, void *arg, struct snap_stats *st,
		 char *err)
{
	struct reader r = { .fd = fd, .progress = progress, .arg = arg };
	struct snap_stats s = { 0 };
	XXH3_state_t *whole = XXH3_createState();
	uint64_t nsectors = sect_nsectors(dev->tab), records = 0, prev = 0;
	const unsigned char *p;
	struct stat sb;
	double t0 = now_s();
	size_t got;
	int ret;

	r.buf = malloc(SNAP_BUF_SIZE);
	if (!r.buf || !whole) {
		ret = -ENOMEM;
		snprintf(err, SNAP_ERR_LEN, "persist=%s: %s", name,
			 strerror(ENOMEM));
		goto out;
	}
	XXH3_64bits_reset(whole);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		off_t here = lseek(fd, 0, SEEK_CUR);

		if (here >= 0 && sb.st_size > here)
			r.total = (uint64_t)(sb.st_size - here);
	}

	p = r_take(&r, ZSNAP_HDR_SIZE, &got);
	if (!p) {
		ret = r.err ? r.err : -EINVAL;
		if (r.err)
			snprintf(err, SNAP_ERR_LEN, "persist=%s: read: %s",
				 name, strerror(-r.err));
		else
			refuse(err, name, ret,
			       "cut short: %zu bytes, less than a header", got);
		goto out;
	}
	ret = check_header(dev, p, name, err);
	if (ret < 0)
		goto out;
	XXH3_64bits_update(whole, p, ZSNAP_HDR_SIZE);

	for (;;) {
		unsigned char head[ZSNAP_REC_SIZE];
		uint64_t at = r.off, sector, word;
		const char *bad;
		uint32_t len;

		p = r_take(&r, ZSNAP_REC_SIZE, &got);
		if (!p) {
			if (r.err)
				goto read_error;
			ret = refuse(err, name, -EINVAL,
				     "cut short at byte %" PRIu64
				     " (no trailer after %" PRIu64 " records)",
				     at + got, records);
			goto out;
		}
		memcpy(head, p, sizeof(head));
		len = get32(head + ZSNAP_REC_OFF_LEN);
		if (len > SECT_SIZE) {
			ret = refuse(err, name, -EINVAL,
				     "record %" PRIu64 " at byte %" PRIu64
				     ": length %" PRIu32 " (damaged record)",
				     records, at, len);
			goto out;
		}
		sector = get64(head + ZSNAP_REC_OFF_SECTOR);
		word = get64(head + ZSNAP_REC_OFF_WORD);
		p = len ? r_take(&r, len, &got) : head;
		if (!p) {
			if (r.err)
				goto read_error;
			ret = refuse(err, name, -EINVAL,
				     "cut short at byte %" PRIu64
				     " (in record %" PRIu64 ")",
				     at + ZSNAP_REC_SIZE + got, records);
			goto out;
		}
		if (get64(head + ZSNAP_REC_OFF_CHECKSUM) !=
		    rec_checksum(head, p, len)) {
			ret = refuse(err, name, -EINVAL,
				     "record %" PRIu64 " at byte %" PRIu64
				     ": checksum mismatch (damaged record)",
				     records, at);
			goto out;
		}
		bad = bad_record(head, nsectors, records > 0, prev);
		if (bad) {
			ret = refuse(err, name, -EINVAL,
				     "record %" PRIu64 " at byte %" PRIu64
				     ": %s",
				     records, at, bad);
			goto out;
		}
		if (head[ZSNAP_REC_OFF_TYPE] == ZSNAP_REC_END) {
			if (sector != records ||
			    word != XXH3_64bits_digest(whole)) {
				ret = refuse(err, name, -EINVAL,
					     "whole-file checksum or record "
					     "count mismatch in the trailer");
				goto out;
			}
			break;
		}
		XXH3_64bits_update(whole, head, sizeof(head));
		if (len)
			XXH3_64bits_update(whole, p, len);

		switch (head[ZSNAP_REC_OFF_TYPE]) {
		case ZSNAP_REC_SAME:
			ret = install(dev, sector,
				      sect_make(SECT_SAME, word, 0));
			s.same++;
			break;
		case ZSNAP_REC_EVICTED:
			ret = load_object(dev, sector, p, len, true);
			s.evicted++;
			break;
		default:
			ret = load_object(dev, sector, p, len, false);
			s.objects++;
			break;
		}
		if (ret < 0) {
			if (ret == -ENOSPC)
				snprintf(err, SNAP_ERR_LEN,
					 "persist=%s: snapshot refused: "
					 "does not fit: sector %" PRIu64
					 ": %s (raise mem_limit=, or give a "
					 "backing file)",
					 name, sector, strerror(-ret));
			else
				snprintf(err, SNAP_ERR_LEN,
					 "persist=%s: loading sector %" PRIu64
					 ": %s",
					 name, sector, strerror(-ret));
			goto out;
		}
		s.data_bytes += SECT_SIZE;
		prev = sector;
		records++;
	}
	p = r_take(&r, 1, &got);
	if (p || got) {
		ret = refuse(err, name, -EINVAL,
			     "bytes after the trailer at byte %" PRIu64,
			     r.off - (p ? 1 : 0));
		goto out;
	}
	if (r.err)
		goto read_error;
	s.file_bytes = r.off;
	s.seconds = now_s() - t0;
	if (st)
		*st = s;
	ret = 1;
	goto out;

read_error:
	ret = r.err;
	snprintf(err, SNAP_ERR_LEN, "persist=%s: read: %s", name,
		 strerror(-r.err));
out:
	XXH3_freeState(whole);
	free(r.buf);
	return ret;
}

int snap_load(struct zdev *dev, const char *path, snap_progress_fn progress,
	      void *arg, struct snap_stats *st, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, SNAP_ERR_LEN, "persist=%s: open: %s", path,
			 strerror(errno));
		return -errno;
	}
	r = snap_load_fd(dev, fd, path, progress, arg, st, err);
	close(fd);
	return r;
}

static char *consumed_name(const char *path)
{
	char *c;

	if (asprintf(&c, "%s%s", path, SNAP_CONSUMED_SUFFIX) < 0)
		return NULL;
	return c;
}

int snap_consume(const char *path, char *err)
{
	char *c = consumed_name(path);
	int r = 0;

	if (!c) {
		snprintf(err, SNAP_ERR_LEN, "persist=%s: %s", path,
			 strerror(ENOMEM));
		return -ENOMEM;
	}
	if (rename(path, c) < 0) {
		r = -errno;
		snprintf(err, SNAP_ERR_LEN,
			 "persist=%s: cannot mark the loaded snapshot as used "
			 "(rename to %s: %s); not serving, so that a crash "
			 "cannot bring back stale data",
			 path, c, strerror(-r));
	} else if ((r = fsync_dir_of(path)) < 0) {
		snprintf(err, SNAP_ERR_LEN,
			 "persist=%s: renamed to %s, but fsync of its "
			 "directory failed: %s; not serving",
			 path, c, strerror(-r));
	}
	free(c);
	return r;
}

bool snap_consumed_exists(const char *path)
{
	char *c = consumed_name(path);
	bool yes = c && access(c, F_OK) == 0;

	free(c);
	return yes;
}

void snap_remove_consumed(const char *path)
{
	char *c = consumed_name(path);

	if (c && unlink(c) == 0)
		(void)fsync_dir_of(path);
	free(c);
}

unsigned int snap_remove_stale(const char *path)
{
	unsigned int n = 0;
	char *pattern;
	glob_t g;

	/* Only the suffix is a pattern: escape nothing of @path but glob
	 * characters, which a snapshot path is not expected to have. */
	if (strpbrk(path, "*?[\\") ||
	    asprintf(&pattern, "%s.tmp.??????", path) < 0)
		return 0;
	if (glob(pattern, GLOB_NOSORT, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (unlink(g.gl_pathv[i]) == 0)
				n++;
		globfree(&g);
	}
	free(pattern);
	return n;
}
