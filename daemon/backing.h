/* SPDX-License-Identifier: MIT */
/*
 * backing.h - the backing file: compressed, checksummed slots on disk
 *
 * The shrinker evicts cold compressed sectors from the pool into this file
 * and reads bring them back. Each record ("slot") holds one sector's
 * payload, as stored in the pool (LZ4 output or raw 4 KiB), behind a
 * 32-byte header carrying the sector number, the length, the caller's
 * flags, a per-write nonce and an XXH3 checksum. A read checks all of it:
 * a mismatch is -EIO, never wrong data.
 *
 * The file is scratch space for one run, like the RAM it stands in for:
 * it is truncated at open and its contents do not survive a restart.
 *
 * Slots are named by a uint64_t that is never 0 and uses at most
 * BACKING_SLOT_BITS (63) bits, so it is also a non-negative int64_t. Its
 * low BACKING_PLACE_BITS say where the record is; the bits above hold the
 * record's nonce, which is also in its header: a read of the slot accepts
 * only the record written by the backing_write() that returned it, not an
 * older record of the same sector left at the same place by a lost write.
 *
 * Thread safety: every function may be called concurrently from any number
 * of threads, except backing_close(), which must be the last call. A slot
 * belongs to its caller, as a pool handle does: the caller must not free a
 * slot while one of its threads reads it, and frees each slot exactly once
 * (the sector table's stripe lock decides who frees; see zdev_evict()).
 */
#ifndef ZRAMD_BACKING_H
#define ZRAMD_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation granularity: records start and end on 512-byte boundaries. */
#define BACKING_UNIT 512u
/* The on-disk record header (see daemon/backing.c for the layout). */
#define BACKING_HDR_SIZE 32u
/* The largest payload: one uncompressed 4 KiB sector. */
#define BACKING_MAX_PAYLOAD 4096u
/* Units of the largest record: header + payload, rounded up (9). */
#define BACKING_MAX_UNITS                                                      \
	((BACKING_HDR_SIZE + BACKING_MAX_PAYLOAD + BACKING_UNIT - 1) /         \
	 BACKING_UNIT)
/*
 * A slot number: nonce << BACKING_PLACE_BITS | first unit << 4 | units.
 * The place (first unit and units) takes the low 44 bits, enough for a
 * file of 2^40 units (512 TiB); the nonce the 19 bits above, up to bit 62.
 */
#define BACKING_PLACE_BITS 44
#define BACKING_NONCE_BITS 19
#define BACKING_SLOT_BITS  (BACKING_PLACE_BITS + BACKING_NONCE_BITS)
#define BACKING_PLACE_MASK ((UINT64_C(1) << BACKING_PLACE_BITS) - 1)
#define BACKING_NONCE_MASK ((UINT64_C(1) << BACKING_NONCE_BITS) - 1)
/* The parts of a slot number (no check that it is valid). */
#define BACKING_SLOT_UNIT(slot)	 (((slot) & BACKING_PLACE_MASK) >> 4)
#define BACKING_SLOT_UNITS(slot) ((unsigned int)((slot) & 15))
#define BACKING_SLOT_NONCE(slot) ((slot) >> BACKING_PLACE_BITS)
/* The smallest usable file: a few of the largest records. */
#define BACKING_MIN_SIZE (64u * 1024)

/* Caller flags kept in the header (16 bits); backing.c does not interpret
 * them. The device core uses this one. */
#define BACKING_FLAG_COMPRESSED 0x1u
/* The record is a pack of the cold tier (daemon/pack.h), not a sector's
 * object; its sector is the pack's first. */
#define BACKING_FLAG_PACK 0x2u

struct backing;

/* Counters, a snapshot (see backing_get_stats()). Sizes in bytes. */
struct backing_stats {
	uint64_t capacity;	  /* the most the file may hold */
	uint64_t slots_used;	  /* records currently allocated */
	uint64_t bytes_used;	  /* their size on disk, in whole units */
	uint64_t writes;	  /* records written */
	uint64_t reads;		  /* records read back and verified */
	uint64_t write_errors;	  /* writes that failed (I/O, ENOSPC) */
	uint64_t read_errors;	  /* reads that failed with an I/O error */
	uint64_t checksum_errors; /* reads refused: bad magic, length,
				   * sector, place, nonce or checksum */
	uint64_t full;		  /* allocations refused: file full */
	uint64_t punched;	  /* 4 KiB blocks hole-punched */
	uint64_t punch_errors;	  /* hole punches that failed */
	uint64_t bad_frees;	  /* frees of a slot that was not in use */
};

/**
 * backing_open() - create the backing file and its slot allocator
 * @path:     a file to create or truncate (mode 0600 if created), or an
 *            existing directory, in which an unnamed file (O_TMPFILE) is
 *            made that disappears when the process exits
 * @max_size: the most bytes the file may hold, at least BACKING_MIN_SIZE
 *            (rounded down to 4 KiB); 0 means the space free on the
 *            filesystem at open time (counting an existing file's space
 *            as free, since it is truncated). It is a bound, not a
 *            reservation: the file is sparse and grows as records are
 *            written.
 * @err:      on failure, a one-line message naming the path and the cause
 * @errlen:   size of @err
 *
 * The file is locked (flock, LOCK_EX) so a second zramd cannot share it,
 * and is truncated: its previous contents are discarded. Only regular
 * files are accepted.
 *
 * Return: the backing file, or NULL with errno set: ENOENT if the
 * directory of @path does not exist, EINVAL if @max_size is too small or
 * @path is not a regular file or directory, ENOSPC if @max_size is 0 and
 * less than BACKING_MIN_SIZE is free ("only N bytes free"; checked before
 * the file is created or truncated, so nothing changes), EBUSY if another
 * process holds the file, ENOMEM, or the errno of the failed
 * open/ftruncate/statvfs.
 */
struct backing *backing_open(const char *path, uint64_t max_size, char *err,
			     size_t errlen);

/*
 * As backing_open(); @path may also be a block device (a spare partition),
 * opened exclusively, sized by the device, and refused if libblkid finds a
 * signature on it unless @force (see backing_bdev.c). backing_open() is
 * this with @force false.
 */
struct backing *backing_open_force(const char *path, uint64_t max_size,
				   bool force, char *err, size_t errlen);

/**
 * backing_close() - close the file and free the allocator
 * @b: the backing file, or NULL
 *
 * A named file is truncated to 0 bytes (scratch space; the path stays so
 * that permissions set by the administrator survive). Must be the last
 * call on @b.
 */
void backing_close(struct backing *b);

/**
 * backing_write() - store one sector's payload in a new slot
 * @b:      the backing file
 * @sector: the sector number recorded in the header, checked at read
 * @data:   the payload (it may be a pool mapping; it is only read)
 * @len:    payload bytes, 1 to BACKING_MAX_PAYLOAD
 * @flags:  caller flags (16 bits) returned by backing_read()
 * @slot:   where the new slot is stored on success
 *
 * The record is written with one pwrite() outside any lock. Each write
 * takes the next nonce (a counter of BACKING_NONCE_BITS bits, started at a
 * random value at open), kept in the header and in *@slot: a freed place
 * written again gets a different slot number, and the two records differ
 * unless 2^19 writes separate them.
 *
 * Return: 0 on success; -EINVAL if @len or @flags are out of range;
 * -ENOSPC if no run of free space is large enough, or the filesystem is
 * full (ENOSPC, EDQUOT, EFBIG); -EIO for any other write error. On
 * failure no slot is allocated.
 */
int backing_write(struct backing *b, uint64_t sector, const void *data,
		  size_t len, unsigned int flags, uint64_t *slot);

/**
 * backing_read() - read a slot back and verify it
 * @b:      the backing file
 * @slot:   a slot from backing_write() that has not been freed
 * @sector: the sector the caller expects the slot to hold
 * @buf:    where the payload goes
 * @cap:    size of @buf
 * @len:    set to the payload length on success
 * @flags:  set to the flags given to backing_write() on success (or NULL)
 *
 * Every header field is checked: magic, version, record size, the
 * record's own position in the file, @sector, the length (at most @cap),
 * the nonce (that of @slot), and the checksum over header and payload. A
 * record whose own write was lost, leaving an older record of the same
 * sector in its place, fails the nonce check. On failure the contents of
 * @buf are undefined: never use them.
 *
 * Return: 0 on success; -EINVAL if @slot is malformed or out of the file;
 * -EIO on an I/O error or a short read (counted in read_errors);
 * -EBADMSG if any check fails (counted in checksum_errors). The two are
 * different faults: a failing disk, and data that is not what was
 * written (a flipped bit, a lost or misplaced write).
 */
int backing_read(struct backing *b, uint64_t slot, uint64_t sector, void *buf,
		 size_t cap, size_t *len, unsigned int *flags);

/**
 * backing_free() - release a slot
 * @b:    the backing file
 * @slot: a slot from backing_write(); 0 is ignored
 *
 * The space is reusable at once. Only the place in @slot is used: its
 * nonce is not checked (that would take a read). Every 4 KiB block of the
 * file that becomes entirely free is hole-punched (FALLOC_FL_PUNCH_HOLE),
 * so the disk space really returns; while a punch runs, its blocks stay
 * reserved so no new record lands in them. Freeing a slot that is not in
 * use is counted in bad_frees and otherwise ignored.
 */
void backing_free(struct backing *b, uint64_t slot);

/**
 * backing_drop_cache() - write back and drop the file's page cache
 * @b: the backing file
 *
 * Evicting to a file only saves memory once the page cache lets go of the
 * written records; a cgroup counts that cache against its limit. Call this
 * after a batch of writes (the shrinker's round, say). It blocks until the
 * dirty pages are on disk. Thread safety: may run concurrently with reads
 * and writes.
 *
 * Return: 0, or a negative errno from sync_file_range() or
 * posix_fadvise().
 */
int backing_drop_cache(struct backing *b);

/**
 * backing_get_stats() - a snapshot of the counters
 * @b:  the backing file
 * @st: filled in; each counter is read atomically, not all together
 */
void backing_get_stats(struct backing *b, struct backing_stats *st);

/* --- The record header codec, public so the unit tests can reach it. --- */

/* Header fields, decoded. */
struct backing_hdr {
	uint32_t magic;	   /* BACKING_MAGIC */
	uint8_t version;   /* BACKING_VERSION */
	uint8_t units;	   /* record size in BACKING_UNITs */
	uint16_t flags;	   /* caller flags */
	uint64_t sector;   /* the sector stored */
	uint32_t len;	   /* payload bytes, 13 bits on disk */
	uint32_t nonce;	   /* the write's nonce, 19 bits on disk */
	uint32_t where;	   /* low 32 bits of the record's first unit */
	uint64_t checksum; /* see backing_checksum() */
};

#define BACKING_MAGIC	0x4b42525au /* "ZRBK" on disk */
/* 2: the nonce shares the length's 32 bits (1 had a 32-bit length). */
#define BACKING_VERSION 2u
/* On disk, bytes 16..19 hold len | nonce << BACKING_LEN_BITS. */
#define BACKING_LEN_BITS 13

/*
 * Encodes @h into @out, little-endian, checksum field included as is; len
 * and nonce are cut to their widths on disk.
 */
void backing_hdr_encode(const struct backing_hdr *h,
			unsigned char out[BACKING_HDR_SIZE]);

/* Decodes @in into @h. No field is checked. */
void backing_hdr_decode(const unsigned char in[BACKING_HDR_SIZE],
			struct backing_hdr *h);

/*
 * The checksum of a record: XXH3-64 of the payload, seeded with XXH3-64 of
 * the first 24 header bytes (everything but the checksum field), so it
 * covers both without a copy.
 */
uint64_t backing_checksum(const unsigned char hdr[BACKING_HDR_SIZE],
			  const void *payload, size_t len);

#endif /* ZRAMD_BACKING_H */
