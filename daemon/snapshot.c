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
 * (LZ4, zstd or raw, never recompressed: the write is a copy), a
 * same-filled sector as its fill word, a sector on the backing file as an
 * EVICTED record, and each cold-tier pack one PACK record (below). The
 * backing file is scratch (truncated at every open), so the snapshot
 * must hold that data itself: it is read back through the
 * device's backing ops, which check every record, and a record that
 * fails its check fails the snapshot instead of being saved as good.
 * Holes are not written. Records and the whole file are checksummed with
 * XXH3-64, as the backing file's records are.
 *
 * Packs, as they are. A pack (pack.h) is one zstd frame of up to
 * PACK_MAX_SLOTS sectors, whose sectors need not be adjacent and may
 * interleave with other records and other packs. It is written once, as
 * one record holding its slot list (each slot's device sector, dead
 * slots marked) and its object byte for byte; evicted packs are read
 * back through the backing ops (each chunk's record checked) and written
 * the same way, as PACK_EVICTED. Which slots are dead is known only from
 * the table: a slot is live iff an entry points at it. So the writer
 * notes each PACKED entry it meets (a small table of the packs that
 * straddle the scan's position, w_packed()) and writes the record at the
 * pack's last live slot, when it has met as many as the descriptor
 * counts live; the record's sector is that slot's, which keeps the
 * file's one order rule ("each record's sector above the one before")
 * true. The loader checks a pack record whole before it uses any of it:
 * its slot count against this build's PACK_MAX_SLOTS (another count is
 * refused by name), the slot words against the object's own sector
 * list, every live sector inside the device and the last of them being
 * the record's, and the frame decompressed to exactly its slots' bytes
 * (pack_decode()), so a damaged record whose checksum still holds is
 * refused at start, never served. Each sector may be named once in the
 * whole file: a second record or slot naming it finds its entry taken
 * and the load is refused ("named twice"). The pack is rebuilt as the
 * pass makes one (whole-page chunks and a tail, owner
 * ZDEV_OWNER_PACK, live and references the live slots) and counted as
 * the pass and the dead slots since counted it (zdev_pack_adopt()), so
 * packed_sectors, packs, pack_bytes and pack_dead_bytes after a restart
 * are those before the stop. A pack object longer than this build's
 * packs can be (more than PACK_CHUNKS_MAX chunks) is not kept as a pack:
 * its live sectors are loaded as hot objects instead.
 *
 * zstd hot objects. A table entry does not say which codec made its
 * object (its 16 meta bits are all taken, sectors.h): a device holds
 * objects of its one hot codec. So a zstd object loaded into a
 * compressor=zstd device is copied as it is (a zstd frame carries what
 * any level needs to read it), and into an LZ4 device it is decoded and
 * encoded anew, as LZ4 objects are into a zstd device. Neither kind of
 * object is decoded to be checked at load (the checksum covers it; a
 * crafted object that does not decode reads as EIO, never as other
 * bytes, since both decoders check the output is exactly one sector);
 * packs are, because their header decides which sectors they fill.
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
 * size is refused too, never truncated or padded. Objects and packs are
 * copied into the pool as they are; EVICTED and PACK_EVICTED records,
 * and objects and packs that no longer fit under mem_limit, go back to
 * the backing file when there is one (without one, a load that does not
 * fit is refused, "does not fit").
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
 * Files: this one writes (and handles the file's life: consumed, stale
 * temporary files); snapshot_load.c reads; snapshot_internal.h has what
 * both need.
 *
 * Limits. The write holds a copy of the device on disk; its speed is the
 * disk's (TimeoutStopSec= in the units is sized from it). The file is
 * about the pool's size; the load decompresses each pack once to check
 * it, which the copies of objects do not pay. Measured by hand (2 shared
 * cores, page cache): 128 MiB of the real-data corpus, all idle and
 * packed (31908 sectors in 1996 packs, pool 48.5 MB): a 48.9 MB file
 * (written decoded, as version 1 did, it would be about 132 MB), written
 * in 0.08-0.10 s, loaded in 0.17 s. Version 1 files (before packs and
 * zstd records) still load.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "device_internal.h"
#include "pack.h"
#include "sectors.h"
#include "snapshot.h"
#include "snapshot_internal.h"
#include "zpool.h"
#include "zramd_snapshot.h"

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

/* A PACK record of this build's largest pack is one the format allows. */
_Static_assert(PACK_MAX_SLOTS * 8u + PACK_OBJ_MAX <= ZSNAP_PACK_LEN_MAX,
	       "raise ZSNAP_PACK_LEN_MAX (a new format version) with "
	       "PACK_MAX_SLOTS");

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
	/* packs (w_packed()) */
	unsigned char *pack; /* a PACK record's payload */
	struct pend *pend;
	size_t pcap, npend, ngone;
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
	snap_put16(head + ZSNAP_REC_OFF_FLAGS, 0);
	snap_put32(head + ZSNAP_REC_OFF_LEN, len);
	snap_put64(head + ZSNAP_REC_OFF_SECTOR, sector);
	snap_put64(head + ZSNAP_REC_OFF_WORD, word);
	snap_put64(head + ZSNAP_REC_OFF_CHECKSUM, snap_rec_checksum(head, payload, len));
	w_put(w, head, sizeof(head), !end);
	if (len)
		w_put(w, payload, len, !end);
	if (!end)
		w->records++;
}

/*
 * Packs whose live slots the scan has begun to meet: a pack's record is
 * written at its last live slot, when the scan has seen all of them (its
 * descriptor counts them), since only then is it known which are dead.
 * An open-addressed table keyed by the descriptor's address; it holds
 * only the packs that straddle the scan's position, a handful.
 */
#define PEND_WORDS ((PACK_MAX_SLOTS + 63u) / 64u)

struct pend {
	struct pack *pk; /* NULL: free; PEND_GONE: emitted */
	uint32_t seen;
	uint64_t live[PEND_WORDS];
};

#define PEND_GONE ((struct pack *)(uintptr_t)1)

static size_t pend_hash(const struct pack *pk, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)pk * UINT64_C(0x9e3779b97f4a7c15);

	return (size_t)(h >> 32) & (cap - 1);
}

/* The slot of @pk in w->pend, made if new; NULL if out of memory. */
static struct pend *pend_get(struct writer *w, struct pack *pk)
{
	size_t i;

	if ((w->npend + w->ngone + 1) * 2 > w->pcap) {
		size_t cap = w->pcap ? w->pcap : 64;
		struct pend *old = w->pend, *t;

		while ((w->npend + 1) * 4 > cap)
			cap *= 2;
		t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t k = 0; k < w->pcap; k++) {
			if (old[k].pk == NULL || old[k].pk == PEND_GONE)
				continue;
			for (i = pend_hash(old[k].pk, cap); t[i].pk;
			     i = (i + 1) & (cap - 1))
				;
			t[i] = old[k];
		}
		free(old);
		w->pend = t;
		w->pcap = cap;
		w->ngone = 0;
	}
	for (i = pend_hash(pk, w->pcap); w->pend[i].pk;
	     i = (i + 1) & (w->pcap - 1))
		if (w->pend[i].pk == pk)
			return &w->pend[i];
	w->pend[i] = (struct pend){ .pk = pk };
	w->npend++;
	return &w->pend[i];
}

/*
 * Write the PACK record of @pd's pack: its slot words, then its object as
 * the pool (or, read back and checked, the backing file) holds it.
 * Runs under the stripe lock of the entry of its last live slot.
 */
static int w_pack(struct writer *w, struct pend *pd, uint64_t sector)
{
	struct pack *pk = pd->pk;
	unsigned int n = pk->nslots;
	uint64_t secs[PACK_MAX_SLOTS];
	unsigned char *obj = w->pack + (size_t)n * 8u;
	bool evicted = __atomic_load_n(&pk->on_backing, __ATOMIC_ACQUIRE);
	long len = zdev_pack_fetch(w->dev, pk, obj);

	unsigned int last = n;

	while (last-- > 0 && !((pd->live[last / 64] >> (last % 64)) & 1))
		;
	/* The object names this sector in the slot this entry points at. */
	if (len < 0 || pack_peek(obj, (size_t)len, secs) != (int)n ||
	    last >= n || secs[last] != sector) {
		w->err = len < 0 ? (int)len : -EIO;
		w->call = evicted ? "backing read" : "pack check";
		w->bad_sector = sector;
		return 1;
	}
	for (unsigned int i = 0; i < n; i++)
		snap_put64(w->pack + 8u * i,
			   secs[i] | ((pd->live[i / 64] >> (i % 64)) & 1
					      ? 0
					      : ZSNAP_SLOT_DEAD));
	w_record(w, evicted ? ZSNAP_REC_PACK_EVICTED : ZSNAP_REC_PACK,
		 ZSNAP_CODEC_ZSTD, sector, n, w->pack,
		 (uint32_t)((size_t)n * 8u + (size_t)len));
	w->st.packs++;
	w->st.packed += pd->seen;
	pd->pk = PEND_GONE;
	w->npend--;
	w->ngone++;
	return w->err ? 1 : 0;
}

/* A PACKED entry at @sector: note its slot live; the record at the last. */
static int w_packed(struct writer *w, uint64_t sector, struct sect_entry e)
{
	struct pack *pk = pack_of(e.val);
	unsigned int slot = pack_slot_of(e.val);
	struct pend *pd;

	if (slot >= pk->nslots || !(pd = pend_get(w, pk))) {
		w->err = slot >= pk->nslots ? -EIO : -ENOMEM;
		w->call = slot >= pk->nslots ? "pack check" : "malloc";
		w->bad_sector = sector;
		return 1;
	}
	pd->live[slot / 64] |= UINT64_C(1) << (slot % 64);
	pd->seen++;
	w->st.data_bytes += SECT_SIZE;
	if (pd->seen == __atomic_load_n(&pk->live, __ATOMIC_ACQUIRE))
		return w_pack(w, pd, sector);
	return 0;
}

/* sect_scan() callback: one record per sector that holds data, one per
 * pack. Runs under the leaf's stripe lock. */
static int w_sector(void *arg, uint64_t sector, uint64_t count,
		    struct sect_entry e)
{
	struct writer *w = arg;
	struct zdev *dev = w->dev;
	unsigned int len = sect_len(e);
	/* A device's hot objects are all of its hot codec (or raw). */
	unsigned int codec = len == SECT_LEN_RAW ? ZSNAP_CODEC_NONE
			     : dev->zstd_level    ? ZSNAP_CODEC_ZSTD
						  : ZSNAP_CODEC_LZ4;
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
	case SECT_PACKED:
		return w_packed(w, sector, e);
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
	double t0 = snap_now();
	int r;

	w.buf = malloc(SNAP_BUF_SIZE);
	w.obj = malloc(SECT_SIZE);
	w.pack = malloc(PACK_MAX_SLOTS * 8u + PACK_OBJ_MAX);
	w.whole = XXH3_createState();
	if (!w.buf || !w.obj || !w.pack || !w.whole ||
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
	snap_put32(hdr + ZSNAP_HDR_OFF_VERSION, ZSNAP_VERSION);
	snap_put32(hdr + ZSNAP_HDR_OFF_HDRSIZE, ZSNAP_HDR_SIZE);
	snap_put64(hdr + ZSNAP_HDR_OFF_DEVSIZE, dev->size);
	snap_put32(hdr + ZSNAP_HDR_OFF_SECTSIZE, ZSNAP_SECTOR_SIZE);
	snap_put32(hdr + ZSNAP_HDR_OFF_CODECS, ZSNAP_CODECS_KNOWN);
	snap_put64(hdr + ZSNAP_HDR_OFF_CREATED, (uint64_t)time(NULL));
	snap_put64(hdr + ZSNAP_HDR_OFF_CHECKSUM,
	      XXH3_64bits(hdr, ZSNAP_HDR_OFF_CHECKSUM));
	w_put(&w, hdr, sizeof(hdr), true);

	sect_scan(dev->tab, 0, sect_nsectors(dev->tab), w_sector, &w);
	if (!w.err && w.npend) {
		/* A pack counts more live slots than entries point at it. */
		w.err = -EIO;
		w.call = "pack check";
	}
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
		if (w.call && strcmp(w.call, "fsync of the directory") == 0)
			snprintf(err, SNAP_ERR_LEN,
				 "persist=%s: snapshot written, but the fsync "
				 "of its directory failed: %s; a power loss "
				 "may still lose the rename",
				 path, strerror(-w.err));
		else if (w.call && strcmp(w.call, "backing read") == 0)
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
		st->seconds = snap_now() - t0;
	}
	XXH3_freeState(w.whole);
	free(w.pend);
	free(w.pack);
	free(w.obj);
	free(w.buf);
	return w.err;
}

/* --- the file's life ---------------------------------------------------- */

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

