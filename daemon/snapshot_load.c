/* SPDX-License-Identifier: MIT */
/*
 * snapshot_load.c - reading a snapshot (persist=) into a new device
 *
 * The file is read front to back through one 1 MiB buffer; each record is
 * checked before anything of it is used: its length first (so that a
 * damaged length cannot make it read past a sector), then its checksum
 * (so that a flipped bit anywhere in it is reported as that, whatever
 * field it hit), then its meaning (type, codec, length for the codec,
 * sector inside the device and above the one before). The trailer checks
 * the record count and the checksum of every byte before it, and nothing
 * may follow it. A check that fails stops the load with one message; the
 * device then holds part of the snapshot and the caller must not serve
 * it (plugin.c destroys it and refuses the start). The design, and why
 * loading comes before serving, are in snapshot.c.
 *
 * Where the data goes: a same-filled record becomes a table entry; an
 * object goes into the pool as it is (never recompressed; an object of
 * the other hot codec is encoded anew), or onto the backing file if it
 * was there at the stop (EVICTED) or if the pool is at mem_limit; with no
 * backing file, a pool at mem_limit refuses the load (-ENOSPC, "does not
 * fit"). A pack record (load_pack()) is checked whole, then becomes a
 * pack in the pool or on the backing file by the same rules, and the
 * entries of its live slots (snapshot_pack.c); see snapshot.c for why it
 * stands at its last live slot and how sectors named twice are found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "device_internal.h"
#include "sectors.h"
#include "snapshot.h"
#include "snapshot_internal.h"
#include "zpool.h"
#include "zramd_snapshot.h"

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

/* snapshot_internal.h */
int snap_install(struct zdev *dev, uint64_t sector, struct sect_entry e)
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

/* snapshot_internal.h */
int snap_load_object(struct zdev *dev, uint64_t sector, const void *data,
		       unsigned int len, unsigned int codec, bool evicted)
{
	unsigned char page[SECT_SIZE];
	struct codec_out c;
	struct sect_entry e;
	unsigned long handle;
	uint64_t total;
	int64_t slot;
	int r;

	/*
	 * An object of this device's hot codec is copied as it is (a zstd
	 * object needs no level to be read). A raw sector, or an object of
	 * the other codec, is encoded anew with this start's codec: a
	 * device holds objects of one codec, its entries do not say which.
	 */
	if (codec == ZSNAP_CODEC_NONE ||
	    (codec == ZSNAP_CODEC_ZSTD) != (dev->zstd_level != 0)) {
		const void *src = data;

		if (codec != ZSNAP_CODEC_NONE) {
			if ((codec == ZSNAP_CODEC_ZSTD
				     ? codec_zstd_decode(data, len, page)
				     : codec_decode(data, len, page)) < 0)
				return -EBADMSG;
			src = page;
		}
		dev_encode(dev, src, &c);
		switch (c.kind) {
		case CODEC_ZERO:
			return 0;
		case CODEC_SAME:
			return snap_install(dev, sector,
				       sect_make(SECT_SAME, c.word, 0));
		case CODEC_COMPRESSED:
		case CODEC_RAW:
			break;
		}
		data = c.data;
		len = c.len == SECT_SIZE ? SECT_LEN_RAW : c.len;
	}

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
			r = snap_install(dev, sector, e);
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
	r = snap_install(dev, sector, e);
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
	uint32_t version = snap_get32(h + ZSNAP_HDR_OFF_VERSION);
	uint32_t codecs = snap_get32(h + ZSNAP_HDR_OFF_CODECS);
	uint64_t size = snap_get64(h + ZSNAP_HDR_OFF_DEVSIZE);

	if (memcmp(h, ZSNAP_MAGIC, ZSNAP_MAGIC_LEN) != 0)
		return refuse(err, name, -EINVAL,
			      "not a zramd snapshot (bad magic)");
	if (version < ZSNAP_VERSION_MIN || version > ZSNAP_VERSION)
		return refuse(err, name, -EINVAL,
			      "format version %" PRIu32 "; this zramd reads "
			      "versions %u to %u",
			      version, ZSNAP_VERSION_MIN, ZSNAP_VERSION);
	if (snap_get64(h + ZSNAP_HDR_OFF_CHECKSUM) !=
	    XXH3_64bits(h, ZSNAP_HDR_OFF_CHECKSUM))
		return refuse(err, name, -EINVAL,
			      "header checksum mismatch (damaged header)");
	if (snap_get32(h + ZSNAP_HDR_OFF_HDRSIZE) != ZSNAP_HDR_SIZE ||
	    snap_get32(h + ZSNAP_HDR_OFF_SECTSIZE) != ZSNAP_SECTOR_SIZE ||
	    snap_get64(h + ZSNAP_HDR_OFF_RESERVED) ||
	    snap_get64(h + ZSNAP_HDR_OFF_RESERVED + 8))
		return refuse(err, name, -EINVAL,
			      "header size %" PRIu32 " or sector size %" PRIu32
			      " or reserved fields not as version %" PRIu32
			      " has them",
			      snap_get32(h + ZSNAP_HDR_OFF_HDRSIZE),
			      snap_get32(h + ZSNAP_HDR_OFF_SECTSIZE), version);
	if (codecs & ~(version == 1 ? ZSNAP_CODECS_V1 : ZSNAP_CODECS_KNOWN))
		return refuse(err, name, -EINVAL,
			      "uses codecs this zramd does not know (mask "
			      "0x%" PRIx32 ", known 0x%x in version %" PRIu32
			      ")",
			      codecs,
			      version == 1 ? ZSNAP_CODECS_V1 : ZSNAP_CODECS_KNOWN,
			      version);
	if (size != dev->size)
		return refuse(err, name, -EINVAL,
			      "it holds a device of %" PRIu64 " bytes, this "
			      "one is %" PRIu64 " bytes (a snapshot is never "
			      "truncated or padded: start with size=%" PRIu64
			      ")",
			      size, dev->size, size);
	return 0;
}

static bool is_pack(unsigned int type)
{
	return type == ZSNAP_REC_PACK || type == ZSNAP_REC_PACK_EVICTED;
}

/* The checks of one record's head and payload length; NULL if good. */
static const char *bad_record(const unsigned char *head, uint32_t version,
			      uint64_t nsectors, bool have_prev, uint64_t prev)
{
	unsigned int type = head[ZSNAP_REC_OFF_TYPE];
	unsigned int codec = head[ZSNAP_REC_OFF_CODEC];
	uint32_t len = snap_get32(head + ZSNAP_REC_OFF_LEN);
	uint64_t sector = snap_get64(head + ZSNAP_REC_OFF_SECTOR);

	if (head[ZSNAP_REC_OFF_FLAGS] || head[ZSNAP_REC_OFF_FLAGS + 1])
		return "flags set that the format does not have";
	switch (type) {
	case ZSNAP_REC_OBJECT:
	case ZSNAP_REC_EVICTED:
		if (codec == ZSNAP_CODEC_LZ4 && len >= 1 && len < SECT_SIZE)
			break;
		if (codec == ZSNAP_CODEC_ZSTD && version >= 2 && len >= 1 &&
		    len < SECT_SIZE)
			break;
		if (codec == ZSNAP_CODEC_NONE && len == SECT_SIZE)
			break;
		return "bad codec or length for an object";
	case ZSNAP_REC_SAME:
		if (codec != ZSNAP_CODEC_NONE || len)
			return "a same-filled record with a payload";
		break;
	case ZSNAP_REC_PACK:
	case ZSNAP_REC_PACK_EVICTED:
		if (version < 2)
			return "a pack record in a version 1 file";
		if (codec != ZSNAP_CODEC_ZSTD)
			return "a pack record of a codec other than zstd";
		break; /* the rest: load_pack() */
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
	unsigned char *pdata = malloc(PACK_MAX_SLOTS * SECT_SIZE);
	struct snap_pack_fault pf;
	uint32_t version;
	const unsigned char *p;
	struct stat sb;
	double t0 = snap_now();
	size_t got;
	int ret;

	r.buf = malloc(SNAP_BUF_SIZE);
	if (!r.buf || !whole || !pdata) {
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
	version = snap_get32(p + ZSNAP_HDR_OFF_VERSION);
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
		len = snap_get32(head + ZSNAP_REC_OFF_LEN);
		if (len > (is_pack(head[ZSNAP_REC_OFF_TYPE]) ? ZSNAP_PACK_LEN_MAX
							     : SECT_SIZE)) {
			ret = refuse(err, name, -EINVAL,
				     "record %" PRIu64 " at byte %" PRIu64
				     ": length %" PRIu32 " (damaged record)",
				     records, at, len);
			goto out;
		}
		sector = snap_get64(head + ZSNAP_REC_OFF_SECTOR);
		word = snap_get64(head + ZSNAP_REC_OFF_WORD);
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
		if (snap_get64(head + ZSNAP_REC_OFF_CHECKSUM) !=
		    snap_rec_checksum(head, p, len)) {
			ret = refuse(err, name, -EINVAL,
				     "record %" PRIu64 " at byte %" PRIu64
				     ": checksum mismatch (damaged record)",
				     records, at);
			goto out;
		}
		bad = bad_record(head, version, nsectors, records > 0, prev);
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
			ret = snap_install(dev, sector,
				      sect_make(SECT_SAME, word, 0));
			s.same++;
			break;
		case ZSNAP_REC_EVICTED:
			ret = snap_load_object(dev, sector, p, len,
					  head[ZSNAP_REC_OFF_CODEC], true);
			s.evicted++;
			break;
		case ZSNAP_REC_PACK:
		case ZSNAP_REC_PACK_EVICTED:
			ret = snap_load_pack(dev, sector, word, p, len,
					head[ZSNAP_REC_OFF_TYPE] ==
						ZSNAP_REC_PACK_EVICTED,
					pdata, &pf);
			if (ret == -EINVAL) {
				ret = refuse(err, name, ret,
					     "record %" PRIu64 " at byte %" PRIu64
					     ": %s",
					     records, at, pf.what);
				goto out;
			}
			if (ret < 0)
				sector = pf.sector;
			else if (pf.kept) {
				s.packs++;
				s.packed += pf.live;
			} else {
				s.objects += pf.live;
			}
			if (ret == 0)
				s.data_bytes +=
					(uint64_t)(pf.live - 1) * SECT_SIZE;
			break;
		default:
			ret = snap_load_object(dev, sector, p, len,
					  head[ZSNAP_REC_OFF_CODEC], false);
			s.objects++;
			break;
		}
		if (ret < 0) {
			if (ret == -EEXIST)
				ret = refuse(err, name, -EINVAL,
				       "record %" PRIu64 " at byte %" PRIu64
				       ": sector %" PRIu64 " is named twice",
				       records, at, sector);
			else if (ret == -EBADMSG)
				ret = refuse(err, name, -EINVAL,
				       "record %" PRIu64 " at byte %" PRIu64
				       ": sector %" PRIu64 ": an object that "
				       "does not decode",
				       records, at, sector);
			else if (ret == -ENOSPC)
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
	s.seconds = snap_now() - t0;
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
	free(pdata);
	free(r.buf);
	return ret;
}

int snap_load(struct zdev *dev, const char *path, snap_progress_fn progress,
	      void *arg, struct snap_stats *st, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			return 0;
		snprintf(err, SNAP_ERR_LEN, "persist=%s: open: %s", path,
			 strerror(-r));
		return r;
	}
	r = snap_load_fd(dev, fd, path, progress, arg, st, err);
	close(fd);
	return r;
}
