/* SPDX-License-Identifier: MIT */
/*
 * backing.c - the backing file: compressed, checksummed slots on disk
 *
 * What: the place the shrinker puts cold compressed sectors so that their
 * pool memory can go back to the OS. Why a file of our own and not swap:
 * the data stays compressed (a 4 KiB sector typically costs 1-2 KiB on
 * disk), every record is checksummed, and trim reaches the disk as a hole.
 *
 * Layout. The file is an array of 512-byte units. A record takes a run of
 * 1..9 whole units: a 32-byte header, the payload, zero padding.
 *
 *   file   |unit0|unit1|unit2|unit3|unit4|unit5|unit6|unit7|unit8|...
 *          |<------ record A ----->|<- B ->|<---- free ---->|<- C ...
 *          |<------------ 4 KiB block 0 ------------------->|<- block 1
 *
 *   record
 *       0      4   5     6      8       16         20      24        32
 *       +------+---+-----+------+-------+----------+-------+---------+---
 *       |magic |ver|units|flags |sector |len|nonce | where |checksum |payload,
 *       |"ZRBK"| 2 | 1-9 | u16  |  u64  |13 |19 bit|  u32  |   u64   |zeros to
 *       +------+---+-----+------+-------+----------+-------+---------+unit end
 *
 * All fields are little-endian; bytes 16..19 are one u32, the length in
 * its low 13 bits (1..4096) and the nonce in the 19 above. "where" is the
 * low 32 bits of the record's first unit, so a record read from the wrong
 * place is caught even if it is otherwise intact. The checksum is XXH3-64
 * of the payload seeded with XXH3-64 of header bytes 0..23: it covers
 * every other field. A slot number is
 *
 *   bit 63   62 ........ 44   43 ............. 4   3 .. 0
 *       0  |     nonce     |    first unit      |  units
 *
 * never 0 (units >= 1), and a non-negative int64_t, the type the device's
 * store() returns; the place takes 44 bits, which cover a file of 2^40
 * units (512 TiB).
 *
 * Why a nonce. Magic, place, sector, length and checksum do not tell two
 * records of the same sector at the same place apart. If the write of a
 * newer record is lost (a buffered pwrite() whose writeback fails, its
 * error seen at most by backing_drop_cache(); or a disk that acknowledges
 * and drops a write), the older record left there, written before the
 * place was freed and reused, passes all of them: a read would return old
 * data. So each write takes the next value of a counter (19 bits, started
 * at a random value at open), puts it in the header and in the slot number
 * the caller keeps (in the sector table), and a read refuses a record
 * whose nonce is not its slot's. The stale record gets through only if
 * exactly a multiple of 2^19 writes (to any place) separate the two. The
 * nonce shares a u32 with the length, which needs 13 bits, so the header
 * stays 32 bytes; 19 is what the slot number has left above the place.
 * backing_free() ignores the nonce (checking it would take a read); its
 * place alone names the units to free.
 *
 * Why 512-byte units: compressed sectors are 1-4 KiB, so a 4 KiB
 * granularity would waste half of the file on average; 512 bytes wastes
 * 256 bytes per record on average, about 15% of a typical 1.7 KiB record
 * with its header. Holes are punched in whole 4 KiB blocks (the page and
 * usual filesystem block): when a free leaves every unit of a block free,
 * the block is punched (on a block device: discarded, see punch()).
 *
 * The allocator is a bitmap (one bit per unit, set = in use) searched
 * next-fit from a cursor that follows the last allocation, skipping full
 * words 64 units at a time. Space freed behind the cursor is reused when
 * the cursor wraps. Until the file is nearly full an allocation looks at a
 * few words; when it is full or too fragmented for a run of the size
 * asked, it scans the whole bitmap (32 K words per GiB of file) before it
 * answers -ENOSPC. A count of free units answers the plainly-full case at
 * once.
 *
 * Locking: one mutex, b->lock, protects the bitmap, the free count and the
 * cursor. It is held only for bitmap work, never across a system call:
 * records are written and read with pwrite()/pread() outside it, at
 * offsets that only their slot's owner touches. Hole punching runs
 * outside the lock too: the blocks to punch are first marked in use
 * ("reserved"), so no allocation can land in them while fallocate() runs,
 * and cleared afterwards. Counters are atomics. There is no other lock
 * and backing.c calls no one back, so callers may hold their own locks
 * (a sector table stripe lock, say) across any call here.
 *
 * Known limits: the file is scratch (truncated at open, nothing is
 * recovered at restart); a regular file or a block device; the
 * bitmap costs 1 bit per 512 bytes (256 KiB per GiB), allocated lazily
 * by calloc(); buffered I/O, so written records sit in the page cache
 * until backing_drop_cache() or the kernel writes them back.
 */
#define _GNU_SOURCE /* fallocate, O_TMPFILE, sync_file_range, getrandom */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h> /* BLKDISCARD */
#undef BLOCK_SIZE /* linux/fs.h's 1024; ours is below */
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/*
 * xxHash is used header-only (XXH_INLINE_ALL): the functions are compiled
 * into this file instead of being called in libxxhash.so, whose mapping
 * alone added about 60 KiB to the idle daemon's resident set.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "backing.h"
#include "backing_bdev.h"
#include "errmsg.h"

#define BLOCK_SIZE	4096u
#define UNITS_PER_BLOCK (BLOCK_SIZE / BACKING_UNIT)
#define MAX_FILE_UNITS	(UINT64_C(1) << (BACKING_PLACE_BITS - 4))
#define LEN_MASK	((UINT32_C(1) << BACKING_LEN_BITS) - 1)

/* Header field offsets. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_UNITS = 5,
	OFF_FLAGS = 6,
	OFF_SECTOR = 8,
	OFF_LEN_NONCE = 16, /* len | nonce << BACKING_LEN_BITS */
	OFF_WHERE = 20,
	OFF_CHECKSUM = 24,
};

_Static_assert(OFF_CHECKSUM + 8 == BACKING_HDR_SIZE,
	       "the header is 32 bytes, the checksum last");
_Static_assert(BACKING_MAX_UNITS == 9, "a raw sector takes 9 units");
_Static_assert(BACKING_SLOT_BITS <= 63,
	       "a slot number is a non-negative int64_t (device store())");
_Static_assert(BACKING_PLACE_BITS == 44 && BACKING_NONCE_BITS == 19,
	       "place and nonce fill the 63 bits of a slot number");
_Static_assert(BACKING_LEN_BITS + BACKING_NONCE_BITS == 32,
	       "length and nonce share a u32 in the header");
_Static_assert(BACKING_MAX_PAYLOAD <= LEN_MASK,
	       "the largest payload fits the length's bits");
_Static_assert(((MAX_FILE_UNITS - 1) << 4 | 15) == BACKING_PLACE_MASK,
	       "every first unit and unit count fit the place bits");
_Static_assert(BACKING_MAX_UNITS < 16, "units fit in the slot's low 4 bits");
_Static_assert(BACKING_MAX_UNITS <= 255, "units fit in the header's u8");
_Static_assert(BLOCK_SIZE % BACKING_UNIT == 0, "units tile a block");
_Static_assert(BACKING_MIN_SIZE % BLOCK_SIZE == 0 &&
		   BACKING_MIN_SIZE >= 4 * BACKING_MAX_UNITS * BACKING_UNIT,
	       "the smallest file holds a few of the largest records");

struct backing {
	int fd;
	char *path;	 /* NULL for an unnamed (O_TMPFILE) file */
	uint64_t nunits; /* capacity, a multiple of UNITS_PER_BLOCK */

	pthread_mutex_t lock; /* protects map, nfree, cursor */
	uint64_t *map;	      /* bit set: unit in use or reserved */
	uint64_t nwords;
	uint64_t nfree;	 /* clear bits */
	uint64_t cursor; /* next-fit start */

	uint32_t nonce; /* atomic: the next write's nonce (low 19 bits) */

	bool no_punch;		 /* atomic: the filesystem cannot punch */
	bool bdev;		 /* a block device: discard freed blocks */
	bool no_discard;	 /* atomic: the device cannot discard */
	struct backing_stats st; /* atomics; capacity is constant */
};

#define STAT_ADD(b, f, n) __atomic_add_fetch(&(b)->st.f, (n), __ATOMIC_RELAXED)
#define STAT_SUB(b, f, n) __atomic_sub_fetch(&(b)->st.f, (n), __ATOMIC_RELAXED)

/* --- header codec --- */

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

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
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

void backing_hdr_encode(const struct backing_hdr *h,
			unsigned char out[BACKING_HDR_SIZE])
{
	uint32_t len_nonce = (h->len & LEN_MASK) |
			     (uint32_t)(h->nonce & BACKING_NONCE_MASK)
				     << BACKING_LEN_BITS;

	put32(out + OFF_MAGIC, h->magic);
	out[OFF_VERSION] = h->version;
	out[OFF_UNITS] = h->units;
	put16(out + OFF_FLAGS, h->flags);
	put64(out + OFF_SECTOR, h->sector);
	put32(out + OFF_LEN_NONCE, len_nonce);
	put32(out + OFF_WHERE, h->where);
	put64(out + OFF_CHECKSUM, h->checksum);
}

void backing_hdr_decode(const unsigned char in[BACKING_HDR_SIZE],
			struct backing_hdr *h)
{
	h->magic = get32(in + OFF_MAGIC);
	h->version = in[OFF_VERSION];
	h->units = in[OFF_UNITS];
	h->flags = get16(in + OFF_FLAGS);
	h->sector = get64(in + OFF_SECTOR);
	h->len = get32(in + OFF_LEN_NONCE) & LEN_MASK;
	h->nonce = get32(in + OFF_LEN_NONCE) >> BACKING_LEN_BITS;
	h->where = get32(in + OFF_WHERE);
	h->checksum = get64(in + OFF_CHECKSUM);
}

uint64_t backing_checksum(const unsigned char hdr[BACKING_HDR_SIZE],
			  const void *payload, size_t len)
{
	return XXH3_64bits_withSeed(payload, len,
				    XXH3_64bits(hdr, OFF_CHECKSUM));
}

static unsigned int units_for(size_t len)
{
	return (unsigned int)((BACKING_HDR_SIZE + len + BACKING_UNIT - 1) /
			      BACKING_UNIT);
}

/* --- slot allocator (b->lock held in all of these) --- */

static bool unit_used(const struct backing *b, uint64_t u)
{
	return b->map[u / 64] >> (u % 64) & 1;
}

static void mark(struct backing *b, uint64_t first, uint64_t n, bool used)
{
	for (uint64_t u = first; u < first + n; u++) {
		if (used)
			b->map[u / 64] |= UINT64_C(1) << (u % 64);
		else
			b->map[u / 64] &= ~(UINT64_C(1) << (u % 64));
	}
	if (used)
		b->nfree -= n;
	else
		b->nfree += n;
}

/* The first run of @n free units in [@from, nunits), or UINT64_MAX. */
static uint64_t find_run(const struct backing *b, uint64_t from, unsigned int n)
{
	uint64_t run = 0, start = 0;

	for (uint64_t u = from; u < b->nunits;) {
		uint64_t w = b->map[u / 64];

		if (u % 64 == 0 && w == UINT64_MAX) {
			run = 0;
			u += 64;
			continue;
		}
		/* A clear word lies wholly inside the file: bits past the
		 * end are set for good at open. */
		if (u % 64 == 0 && w == 0) {
			if (run == 0)
				start = u;
			run += 64;
			if (run >= n)
				return start;
			u += 64;
			continue;
		}
		if (w >> (u % 64) & 1) {
			run = 0;
		} else {
			if (run++ == 0)
				start = u;
			if (run == n)
				return start;
		}
		u++;
	}
	return UINT64_MAX;
}

/* Allocates @n units; returns the first or UINT64_MAX if none. */
static uint64_t alloc_units(struct backing *b, unsigned int n)
{
	uint64_t u = UINT64_MAX;

	pthread_mutex_lock(&b->lock);
	if (b->nfree >= n) {
		u = find_run(b, b->cursor, n);
		if (u == UINT64_MAX && b->cursor > 0)
			u = find_run(b, 0, n);
	}
	if (u != UINT64_MAX) {
		mark(b, u, n, true);
		b->cursor = u + n < b->nunits ? u + n : 0;
	}
	pthread_mutex_unlock(&b->lock);
	return u;
}

static bool block_free(const struct backing *b, uint64_t blk)
{
	for (uint64_t u = blk * UNITS_PER_BLOCK;
	     u < (blk + 1) * UNITS_PER_BLOCK; u++)
		if (unit_used(b, u))
			return false;
	return true;
}

/*
 * Gives blocks [@blk, @blk + @nblk) back: a hole in a file; on a block
 * device a discard (BLKDISCARD, as zram discards freed slots), or where
 * the device cannot discard, fallocate()'s punch, which the kernel turns
 * into a zeroing write that may unmap (a loop device punches its file
 * either way). The freed blocks' contents do not matter: no check
 * accepts zeros or stale bytes.
 */
static void punch(struct backing *b, uint64_t blk, uint64_t nblk)
{
	int rc = -1;

	if (__atomic_load_n(&b->no_punch, __ATOMIC_RELAXED))
		return;
	if (b->bdev && !__atomic_load_n(&b->no_discard, __ATOMIC_RELAXED)) {
		uint64_t range[2] = { blk * BLOCK_SIZE, nblk * BLOCK_SIZE };

		rc = ioctl(b->fd, BLKDISCARD, range);
		if (rc == 0) {
			STAT_ADD(b, punched, nblk);
			return;
		}
		if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL) {
			STAT_ADD(b, punch_errors, 1);
			return;
		}
		__atomic_store_n(&b->no_discard, true, __ATOMIC_RELAXED);
	}
	rc = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)(blk * BLOCK_SIZE), (off_t)(nblk * BLOCK_SIZE));
	if (rc == 0) {
		STAT_ADD(b, punched, nblk);
	} else {
		STAT_ADD(b, punch_errors, 1);
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			__atomic_store_n(&b->no_punch, true, __ATOMIC_RELAXED);
	}
}

/*
 * Frees units [@u, @u + @n) and punches the 4 KiB blocks that became
 * wholly free. Takes and drops b->lock; the punch runs unlocked, its
 * blocks reserved meanwhile. Returns false, freeing nothing, if a unit of
 * the run was not in use (a double or wild free).
 */
static bool free_units(struct backing *b, uint64_t u, unsigned int n)
{
	uint64_t first = u / UNITS_PER_BLOCK;
	uint64_t last = (u + n - 1) / UNITS_PER_BLOCK;
	uint64_t lo = UINT64_MAX, hi = 0;

	pthread_mutex_lock(&b->lock);
	for (uint64_t i = u; i < u + n; i++) {
		if (!unit_used(b, i)) {
			pthread_mutex_unlock(&b->lock);
			return false;
		}
	}
	mark(b, u, n, false);
	/*
	 * Blocks made free are contiguous: only the first and the last block
	 * of the record can hold other records' units, and every block in
	 * between lies inside the record.
	 */
	for (uint64_t blk = first; blk <= last; blk++) {
		if (!block_free(b, blk))
			continue;
		if (lo == UINT64_MAX)
			lo = blk;
		hi = blk;
	}
	if (lo != UINT64_MAX)
		mark(b, lo * UNITS_PER_BLOCK, (hi - lo + 1) * UNITS_PER_BLOCK,
		     true);
	pthread_mutex_unlock(&b->lock);
	if (lo == UINT64_MAX)
		return true;

	punch(b, lo, hi - lo + 1);

	pthread_mutex_lock(&b->lock);
	mark(b, lo * UNITS_PER_BLOCK, (hi - lo + 1) * UNITS_PER_BLOCK, false);
	pthread_mutex_unlock(&b->lock);
	return true;
}

/*
 * Splits @slot into its first unit and units (its nonce is
 * BACKING_SLOT_NONCE()); false if it cannot be a slot of @b.
 */
static bool slot_decode(const struct backing *b, uint64_t slot, uint64_t *u,
			unsigned int *n)
{
	*n = BACKING_SLOT_UNITS(slot);
	*u = BACKING_SLOT_UNIT(slot);
	return slot >> BACKING_SLOT_BITS == 0 && *n >= 1 &&
	       *n <= BACKING_MAX_UNITS && *u + *n <= b->nunits;
}

/* A random start for the nonce counter, so that a record of an earlier
 * run of the same file is unlikely to match either. */
static uint32_t first_nonce(void)
{
	uint32_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)time(NULL) ^ (uint32_t)getpid() * 2654435761u;
	return v;
}

/* --- open and close --- */

static struct backing *fail(char *err, size_t errlen, int e, const char *fmt,
			    ...) __attribute__((format(printf, 4, 5)));

static struct backing *fail(char *err, size_t errlen, int e, const char *fmt,
			    ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_v(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return NULL;
}

/*
 * The bytes a backing file at @path could take before it is opened: the
 * space free on the filesystem of @path (a directory) or of its directory,
 * plus what an existing file there holds now, since open truncates it.
 * False if that cannot be known (the directory is missing, say): open
 * reports it.
 */
static bool space_before_open(const char *path, uint64_t *bytes)
{
	struct statvfs vfs;
	struct stat st;
	bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	bool is_reg = !is_dir && stat(path, &st) == 0 && S_ISREG(st.st_mode);
	char *copy = strdup(path);
	bool ok;

	if (!copy)
		return false;
	ok = statvfs(is_dir ? path : dirname(copy), &vfs) == 0;
	free(copy);
	if (!ok)
		return false;
	*bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (is_reg)
		*bytes += (uint64_t)st.st_blocks * 512;
	return true;
}

/* Opens (creating or truncating) the file at @path; -errno on failure. */
static int open_file(const char *path, bool *named, char *err, size_t errlen)
{
	struct stat st;
	char *copy, *dir;
	int fd, e;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		*named = false;
		fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		e = errno;
		fail(err, errlen, e,
		     "backing file: cannot create an unnamed file in %s: %s",
		     path, strerror(e));
		return -e;
	}

	*named = true;
	copy = strdup(path);
	if (!copy) {
		fail(err, errlen, ENOMEM, "backing file %s: out of memory",
		     path);
		return -ENOMEM;
	}
	dir = dirname(copy);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		e = stat(dir, &st) != 0 ? errno : ENOTDIR;
		if (e == ENOENT)
			fail(err, errlen, e,
			     "backing file %s: directory %s does not exist",
			     path, dir);
		else
			fail(err, errlen, e,
			     "backing file %s: directory %s: %s", path, dir,
			     strerror(e));
		free(copy);
		return -e;
	}
	free(copy);

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		fail(err, errlen, e, "backing file %s: open: %s", path,
		     strerror(e));
		return -e;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		fail(err, errlen, EINVAL,
		     "backing file %s: not a regular file or directory", path);
		return -EINVAL;
	}
	return fd;
}

struct backing *backing_open(const char *path, uint64_t max_size, char *err,
			     size_t errlen)
{
	return backing_open_force(path, max_size, false, err, errlen);
}

struct backing *backing_open_force(const char *path, uint64_t max_size,
				   bool force, char *err, size_t errlen)
{
	struct backing *b;
	struct statvfs vfs;
	struct stat st;
	uint64_t space;
	bool named, bdev = false;
	int fd, e;

	if (err && errlen)
		err[0] = '\0';
	if (!path || !*path)
		return fail(err, errlen, EINVAL, "backing file: empty path");
	if (max_size != 0 && max_size < BACKING_MIN_SIZE)
		return fail(err, errlen, EINVAL,
			    "backing file %s: size %llu is below the minimum "
			    "of %u bytes",
			    path, (unsigned long long)max_size,
			    BACKING_MIN_SIZE);
	/* A block device: opened, checked and sized by backing_bdev.c. */
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		fd = backing_bdev_open(path, &max_size, force, err, errlen);
		if (fd < 0) {
			errno = -fd;
			return NULL;
		}
		if (max_size < BACKING_MIN_SIZE) {
			close(fd);
			return fail(err, errlen, ENOSPC,
				    "backing device %s: %llu bytes, below the "
				    "minimum of %u",
				    path, (unsigned long long)max_size,
				    BACKING_MIN_SIZE);
		}
		named = false; /* never truncated */
		bdev = true;
		goto have_fd;
	}
	/*
	 * With no size, a filesystem too full is refused before anything is
	 * created or truncated; the size is measured again once the file is
	 * open and empty, below.
	 */
	if (max_size == 0 && space_before_open(path, &space) &&
	    space < BACKING_MIN_SIZE)
		return fail(err, errlen, ENOSPC,
			    "backing file %s: only %llu bytes free on its "
			    "filesystem",
			    path, (unsigned long long)space);

	fd = open_file(path, &named, err, errlen);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno == EWOULDBLOCK ? EBUSY : errno;
		close(fd);
		return fail(err, errlen, e,
			    "backing file %s: in use by another process", path);
	}
	if (ftruncate(fd, 0) != 0) {
		e = errno;
		close(fd);
		return fail(err, errlen, e, "backing file %s: ftruncate: %s",
			    path, strerror(e));
	}
	if (max_size == 0) {
		if (fstatvfs(fd, &vfs) != 0) {
			e = errno;
			close(fd);
			return fail(err, errlen, e,
				    "backing file %s: statvfs: %s", path,
				    strerror(e));
		}
		max_size = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		if (max_size < BACKING_MIN_SIZE) {
			close(fd);
			return fail(err, errlen, ENOSPC,
				    "backing file %s: only %llu bytes free on "
				    "its filesystem",
				    path, (unsigned long long)max_size);
		}
	}

have_fd:
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return fail(err, errlen, ENOMEM, "backing file %s: calloc: %s",
			    path, strerror(ENOMEM));
	}
	b->fd = fd;
	b->bdev = bdev;
	b->nunits = max_size / BLOCK_SIZE * UNITS_PER_BLOCK;
	if (b->nunits > MAX_FILE_UNITS)
		b->nunits = MAX_FILE_UNITS;
	b->nwords = (b->nunits + 63) / 64;
	b->map = calloc(b->nwords, sizeof(*b->map));
	b->path = named ? strdup(path) : NULL;
	if (!b->map || (named && !b->path)) {
		free(b->map);
		free(b->path);
		free(b);
		close(fd);
		return fail(err, errlen, ENOMEM, "backing file %s: calloc: %s",
			    path, strerror(ENOMEM));
	}
	/* Units past the end never look free. */
	for (uint64_t u = b->nunits; u < b->nwords * 64; u++)
		b->map[u / 64] |= UINT64_C(1) << (u % 64);
	b->nfree = b->nunits;
	b->nonce = first_nonce();
	b->st.capacity = b->nunits * BACKING_UNIT;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

void backing_close(struct backing *b)
{
	if (!b)
		return;
	if (b->path && ftruncate(b->fd, 0) != 0) {
		/* Scratch data only; nothing more to do. */
	}
	close(b->fd);
	pthread_mutex_destroy(&b->lock);
	free(b->map);
	free(b->path);
	free(b);
}

/* --- records --- */

int backing_write(struct backing *b, uint64_t sector, const void *data,
		  size_t len, unsigned int flags, uint64_t *slot)
{
	unsigned char rec[BACKING_MAX_UNITS * BACKING_UNIT]
	    __attribute__((aligned(64)));
	struct backing_hdr h;
	unsigned int n;
	size_t size, done = 0;
	uint64_t u, nonce;
	int e;

	if (len == 0 || len > BACKING_MAX_PAYLOAD || flags > UINT16_MAX)
		return -EINVAL;
	n = units_for(len);
	size = (size_t)n * BACKING_UNIT;
	u = alloc_units(b, n);
	if (u == UINT64_MAX) {
		STAT_ADD(b, full, 1);
		STAT_ADD(b, write_errors, 1);
		return -ENOSPC;
	}
	nonce = __atomic_fetch_add(&b->nonce, 1, __ATOMIC_RELAXED) &
		BACKING_NONCE_MASK;

	h = (struct backing_hdr){
	    .magic = BACKING_MAGIC,
	    .version = BACKING_VERSION,
	    .units = (uint8_t)n,
	    .flags = (uint16_t)flags,
	    .sector = sector,
	    .len = (uint32_t)len,
	    .nonce = (uint32_t)nonce,
	    .where = (uint32_t)u,
	};
	backing_hdr_encode(&h, rec);
	memcpy(rec + BACKING_HDR_SIZE, data, len);
	memset(rec + BACKING_HDR_SIZE + len, 0, size - BACKING_HDR_SIZE - len);
	put64(rec + OFF_CHECKSUM,
	      backing_checksum(rec, rec + BACKING_HDR_SIZE, len));

	while (done < size) {
		ssize_t r = pwrite(b->fd, rec + done, size - done,
				   (off_t)(u * BACKING_UNIT + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? errno : EIO;
			free_units(b, u, n);
			STAT_ADD(b, write_errors, 1);
			if (e == ENOSPC || e == EDQUOT || e == EFBIG)
				return -ENOSPC;
			return -EIO;
		}
		done += (size_t)r;
	}
	STAT_ADD(b, slots_used, 1);
	STAT_ADD(b, bytes_used, size);
	STAT_ADD(b, writes, 1);
	*slot = nonce << BACKING_PLACE_BITS | u << 4 | n;
	return 0;
}

int backing_read(struct backing *b, uint64_t slot, uint64_t sector, void *buf,
		 size_t cap, size_t *len, unsigned int *flags)
{
	unsigned char rec[BACKING_MAX_UNITS * BACKING_UNIT]
	    __attribute__((aligned(64)));
	struct backing_hdr h;
	size_t size, done = 0;
	unsigned int n;
	uint64_t u;

	if (!slot_decode(b, slot, &u, &n))
		return -EINVAL;
	size = (size_t)n * BACKING_UNIT;
	while (done < size) {
		ssize_t r = pread(b->fd, rec + done, size - done,
				  (off_t)(u * BACKING_UNIT + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			STAT_ADD(b, read_errors, 1);
			return -EIO;
		}
		done += (size_t)r;
	}

	backing_hdr_decode(rec, &h);
	if (h.magic != BACKING_MAGIC || h.version != BACKING_VERSION ||
	    h.units != n || h.where != (uint32_t)u ||
	    h.nonce != BACKING_SLOT_NONCE(slot) || h.sector != sector ||
	    h.len == 0 || h.len > BACKING_MAX_PAYLOAD || h.len > cap ||
	    units_for(h.len) != n ||
	    h.checksum !=
		backing_checksum(rec, rec + BACKING_HDR_SIZE, h.len)) {
		STAT_ADD(b, checksum_errors, 1);
		return -EBADMSG;
	}
	memcpy(buf, rec + BACKING_HDR_SIZE, h.len);
	*len = h.len;
	if (flags)
		*flags = h.flags;
	STAT_ADD(b, reads, 1);
	return 0;
}

void backing_free(struct backing *b, uint64_t slot)
{
	unsigned int n;
	uint64_t u;

	if (slot == 0)
		return;
	/*
	 * The check in free_units() catches a double or wild free only as
	 * long as the units have not been allocated again; it is a safety
	 * net, not a licence.
	 */
	if (!slot_decode(b, slot, &u, &n) || !free_units(b, u, n)) {
		STAT_ADD(b, bad_frees, 1);
		return;
	}
	STAT_SUB(b, slots_used, 1);
	STAT_SUB(b, bytes_used, (uint64_t)n * BACKING_UNIT);
}

int backing_drop_cache(struct backing *b)
{
	int rc;

	if (sync_file_range(b->fd, 0, 0,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
				SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER) != 0)
		return -errno;
	rc = posix_fadvise(b->fd, 0, 0, POSIX_FADV_DONTNEED);
	return -rc;
}

void backing_get_stats(struct backing *b, struct backing_stats *st)
{
	const uint64_t *src = (const uint64_t *)&b->st;
	uint64_t *dst = (uint64_t *)st;

	_Static_assert(sizeof(*st) % sizeof(uint64_t) == 0,
		       "backing_stats holds only uint64_t counters");
	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
