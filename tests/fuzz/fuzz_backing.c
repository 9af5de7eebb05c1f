/* SPDX-License-Identifier: MIT */
/*
 * fuzz_backing.c - the backing file's records, written, damaged, read back
 *
 * The property: backing_read() returns the bytes backing_write() was
 * given, or -EBADMSG (-EIO where the file was cut short); never other
 * bytes, never a crash. Records are written
 * through daemon/backing.c into a real file (in a tmpfs directory), the
 * target damages the file behind its back through a descriptor of its
 * own, and every read is judged against what is on disk now: a record
 * whose header and payload bytes are as written (and whose units are all
 * in the file) must read back exactly; any other is refused.
 *
 * Input: byte 0 picks the file size (64K 128K 256K 1M, from bits 0-1),
 * then ops:
 *
 *   write SECTOR LEN KIND FLAGS  the slot must be new, the right size, not
 *                          overlap a live one, and hold a well-formed
 *                          header (checked by decoding the file's bytes
 *                          with backing_hdr_decode); -ENOSPC only when no
 *                          run of free units that long exists; bad
 *                          lengths and flags -EINVAL
 *   free I                 the slot's units become free in the model
 *   read I HOW             with the right sector and room; or a wrong
 *                          sector, too small a buffer (both -EBADMSG), or
 *                          no flags pointer
 *   corrupt I OFF MASK     XOR one byte of a record (header, payload or
 *                          padding; padding is not checksummed)
 *   truncate I OFF         cut the file inside a record
 *   punch BLOCK            punch a 4 KiB hole anywhere
 *   bad SLOT               read and free slots that are malformed or
 *                          free: -EINVAL, -EBADMSG or -EIO, and bad_frees counted
 *   stats [LOST]           every counter against the model; with bit 2
 *                          of its byte, a lost write: one of the last 4
 *                          freed records (bits 3-4: 0 the last) is put
 *                          back on disk as it was written, over whatever
 *                          was written there since, which a read must
 *                          then refuse (unless it is that very record)
 *
 * Each write's slot must carry the nonce of the record's header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "fuzz.h"

#define MAX_RECS 96
#define MAX_OPS 600
#define UNIT BACKING_UNIT
#define REC_MAX (BACKING_MAX_UNITS * UNIT)

struct rec {
	uint64_t slot, sector;
	size_t len;
	unsigned int flags;
	unsigned char data[BACKING_MAX_PAYLOAD];
	unsigned char disk[BACKING_HDR_SIZE + BACKING_MAX_PAYLOAD];
};

/* A freed record, as it was on disk: what a lost write leaves behind. */
struct ghost {
	uint64_t unit;
	size_t size; /* 0: none */
	unsigned char disk[BACKING_HDR_SIZE + BACKING_MAX_PAYLOAD];
};

#define NGHOSTS 4

struct bmodel {
	struct backing *b;
	int fd; /* ours, to damage the file */
	char path[512];
	uint64_t nunits;
	unsigned char *used; /* one byte per unit: in use by a live record */
	int nrecs;
	struct rec recs[MAX_RECS];
	struct ghost ghosts[NGHOSTS]; /* ring of freed records */
	unsigned int nghosts;	      /* frees so far */
	/* Expected counters. */
	uint64_t writes, reads, read_fails, bad_frees, full, write_errors;
	struct fin in;
};

static struct bmodel m;

static const uint64_t file_sizes[4] = { 64 << 10, 128 << 10, 256 << 10,
					1 << 20 };

static unsigned int units_for(size_t len)
{
	return (unsigned int)((BACKING_HDR_SIZE + len + UNIT - 1) / UNIT);
}

static void slot_split(uint64_t slot, uint64_t *u, unsigned int *n)
{
	*u = BACKING_SLOT_UNIT(slot);
	*n = BACKING_SLOT_UNITS(slot);
}

static void mark(uint64_t slot, bool used)
{
	uint64_t u;
	unsigned int n;

	slot_split(slot, &u, &n);
	memset(m.used + u, used, n);
}

/* Is there a run of @n free units anywhere? */
static bool have_run(unsigned int n)
{
	uint64_t run = 0;

	for (uint64_t u = 0; u < m.nunits; u++) {
		run = m.used[u] ? 0 : run + 1;
		if (run >= n)
			return true;
	}
	return false;
}

static uint64_t file_size(void)
{
	struct stat st;

	FUZZ_CHECK(fstat(m.fd, &st) == 0, "fstat");
	return (uint64_t)st.st_size;
}

static void gen(unsigned char *p, size_t len, uint8_t kind, uint64_t seed)
{
	switch (kind % 4) {
	case 0:
		fuzz_fill_random(p, len, seed);
		break;
	case 1:
		memset(p, (int)kind, len);
		break;
	case 2:
		memset(p, 0, len);
		break;
	default: {
		size_t k = fin_bytes(&m.in, p, len);

		fuzz_fill_random(p + k, len - k, seed);
		break;
	}
	}
}

static void do_write(void)
{
	uint8_t how = fin_u8(&m.in);
	uint64_t sector = how & 1 ? fin_u64(&m.in) : fin_u8(&m.in);
	uint16_t lv = fin_u16(&m.in);
	uint8_t kind = fin_u8(&m.in);
	unsigned int flags = fin_u16(&m.in);
	size_t len = 1 + lv % BACKING_MAX_PAYLOAD;
	struct backing_hdr h;
	struct rec *r;
	uint64_t slot = 0, u;
	unsigned int n;
	int ret;

	if (how & 2) {
		/* Out of range: nothing may be allocated. */
		ret = backing_write(m.b, sector, m.recs[0].data,
				    how & 4 ? 0 : BACKING_MAX_PAYLOAD + 1, 0,
				    &slot);
		FUZZ_CHECK(ret == -EINVAL, "write of a bad length: %d", ret);
		ret = backing_write(m.b, sector, m.recs[0].data, 1,
				    0x10000 | flags, &slot);
		FUZZ_CHECK(ret == -EINVAL, "write of bad flags: %d", ret);
		return;
	}
	if (m.nrecs == MAX_RECS)
		return;
	r = &m.recs[m.nrecs];
	gen(r->data, len, kind, sector ^ lv);
	ret = backing_write(m.b, sector, r->data, len, flags, &slot);
	n = units_for(len);
	if (ret == -ENOSPC) {
		m.full++;
		m.write_errors++;
		FUZZ_CHECK(!have_run(n),
			   "write of %zu bytes: -ENOSPC, but %u free units in "
			   "a row are there",
			   len, n);
		return;
	}
	FUZZ_CHECK(ret == 0, "write of %zu bytes: %d", len, ret);
	m.writes++;
	slot_split(slot, &u, &n);
	FUZZ_CHECK(slot != 0 && slot >> BACKING_SLOT_BITS == 0, "slot %#llx",
		   (unsigned long long)slot);
	FUZZ_CHECK(n == units_for(len), "slot %#llx of %u units for %zu bytes",
		   (unsigned long long)slot, n, len);
	FUZZ_CHECK(u + n <= m.nunits, "slot %#llx past the capacity",
		   (unsigned long long)slot);
	for (unsigned int i = 0; i < n; i++)
		FUZZ_CHECK(!m.used[u + i],
			   "slot %#llx overlaps a live record at unit %llu",
			   (unsigned long long)slot,
			   (unsigned long long)(u + i));
	r->slot = slot;
	r->sector = sector;
	r->len = len;
	r->flags = flags;
	mark(slot, true);
	m.nrecs++;

	/* What is on disk: a well-formed record of what we gave. */
	FUZZ_CHECK(pread(m.fd, r->disk, BACKING_HDR_SIZE + len,
			 (off_t)(u * UNIT)) == (ssize_t)(BACKING_HDR_SIZE + len),
		   "short read of a new record");
	backing_hdr_decode(r->disk, &h);
	FUZZ_CHECK(h.magic == BACKING_MAGIC && h.version == BACKING_VERSION &&
			   h.units == n && h.flags == flags &&
			   h.sector == sector && h.len == len &&
			   h.where == (uint32_t)u &&
			   h.nonce == BACKING_SLOT_NONCE(slot),
		   "header of slot %#llx: magic %#x version %u units %u flags "
		   "%#x sector %llu len %u where %u nonce %#x",
		   (unsigned long long)slot, h.magic, h.version, h.units,
		   h.flags, (unsigned long long)h.sector, h.len, h.where,
		   h.nonce);
	FUZZ_CHECK(h.checksum == backing_checksum(r->disk,
						  r->disk + BACKING_HDR_SIZE,
						  len),
		   "checksum of slot %#llx", (unsigned long long)slot);
	FUZZ_CHECK(memcmp(r->disk + BACKING_HDR_SIZE, r->data, len) == 0,
		   "payload of slot %#llx on disk differs",
		   (unsigned long long)slot);
}

/* Keeps record @i's bytes as written, for a lost write later. */
static void bury(int i)
{
	struct ghost *g = &m.ghosts[m.nghosts++ % NGHOSTS];

	g->unit = BACKING_SLOT_UNIT(m.recs[i].slot);
	g->size = BACKING_HDR_SIZE + m.recs[i].len;
	memcpy(g->disk, m.recs[i].disk, g->size);
}

/*
 * A lost write: the @k-th last freed record's bytes are back in its place,
 * as if every write there since had never reached the disk. Live records
 * it overlaps are no longer intact(): reads of them must fail.
 */
static void lose_writes(unsigned int k)
{
	const struct ghost *g;

	if (k >= m.nghosts || k >= NGHOSTS)
		return;
	g = &m.ghosts[(m.nghosts - 1 - k) % NGHOSTS];
	FUZZ_CHECK(pwrite(m.fd, g->disk, g->size,
			  (off_t)(g->unit * UNIT)) == (ssize_t)g->size,
		   "pwrite");
}

static void forget(int i)
{
	mark(m.recs[i].slot, false);
	if (i != m.nrecs - 1)
		memcpy(&m.recs[i], &m.recs[m.nrecs - 1], sizeof(m.recs[i]));
	m.nrecs--;
}

/* Whether record @r is on disk as it was written. */
static bool intact(const struct rec *r)
{
	static unsigned char now[BACKING_HDR_SIZE + BACKING_MAX_PAYLOAD];
	size_t want = BACKING_HDR_SIZE + r->len;
	uint64_t u;
	unsigned int n;

	slot_split(r->slot, &u, &n);
	if (file_size() < (u + n) * UNIT)
		return false; /* a short read */
	FUZZ_CHECK(pread(m.fd, now, want, (off_t)(u * UNIT)) == (ssize_t)want,
		   "pread");
	return memcmp(now, r->disk, want) == 0;
}

static void do_read(int i, uint8_t how)
{
	const struct rec *r = &m.recs[i];
	uint64_t sector = r->sector;
	size_t cap = r->len, len = 0;
	unsigned int flags = 0xdead;
	bool ok = intact(r), expect_ok;
	unsigned char *buf;
	int ret;

	switch (how % 4) {
	case 1:
		sector ^= 1 + (uint64_t)(how >> 2);
		break;
	case 2:
		cap = r->len - 1;
		break;
	case 3:
		cap = BACKING_MAX_PAYLOAD;
		break;
	}
	expect_ok = ok && sector == r->sector && cap >= r->len;
	buf = malloc(cap ? cap : 1);
	FUZZ_CHECK(buf, "out of memory");
	ret = backing_read(m.b, r->slot, sector, buf, cap, &len,
			   how % 4 == 3 ? NULL : &flags);
	if (ret == 0) {
		FUZZ_CHECK(expect_ok,
			   "slot %#llx read back, but it is %s",
			   (unsigned long long)r->slot,
			   !ok		       ? "damaged on disk"
			   : sector != r->sector ? "another sector's"
						 : "larger than the buffer");
		FUZZ_CHECK(len == r->len && memcmp(buf, r->data, len) == 0,
			   "slot %#llx: WRONG DATA (%zu bytes, wrote %zu)",
			   (unsigned long long)r->slot, len, r->len);
		if (how % 4 != 3)
			FUZZ_CHECK(flags == r->flags, "flags %#x, wrote %#x",
				   flags, r->flags);
		m.reads++;
	} else {
		/* -EIO: cut short by a truncation, an I/O error */
		FUZZ_CHECK(ret == -EBADMSG || ret == -EIO,
			   "read of slot %#llx: %d",
			   (unsigned long long)r->slot, ret);
		FUZZ_CHECK(!expect_ok,
			   "slot %#llx is intact on disk, but is refused",
			   (unsigned long long)r->slot);
		m.read_fails++;
	}
	free(buf);
}

static void do_corrupt(int i, uint16_t off, uint8_t mask)
{
	const struct rec *r = &m.recs[i];
	uint64_t u;
	unsigned int n;
	unsigned char c = 0;
	off_t at;

	slot_split(r->slot, &u, &n);
	at = (off_t)(u * UNIT + off % (n * UNIT));
	if (pread(m.fd, &c, 1, at) < 0)
		c = 0;
	c ^= mask ? mask : 0x80;
	FUZZ_CHECK(pwrite(m.fd, &c, 1, at) == 1, "pwrite");
}

static void do_bad(uint64_t v)
{
	unsigned char buf[BACKING_MAX_PAYLOAD];
	uint64_t slot, u;
	unsigned int n;
	bool decodes, all_free = true;
	size_t len;
	int ret;

	switch (v % 4) {
	case 0: /* malformed: 0 or too many units, past the end, high bits */
		slot = (v >> 2) & ~UINT64_C(15);
		slot |= (v >> 8) & 1 ? 0 : 10 + (v >> 9) % 6;
		break;
	case 1:
		slot = (m.nunits << 4) | (1 + (v >> 2) % 9);
		break;
	case 2:
		slot = UINT64_C(1) << BACKING_SLOT_BITS | 1;
		break;
	default: /* well-formed, maybe free */
		slot = ((v >> 2) % m.nunits) << 4 | (1 + (v >> 40) % 9);
		break;
	}
	slot_split(slot, &u, &n);
	decodes = slot >> BACKING_SLOT_BITS == 0 && n >= 1 &&
		  n <= BACKING_MAX_UNITS && u + n <= m.nunits;
	for (unsigned int i = 0; decodes && i < n; i++)
		all_free &= !m.used[u + i];
	if (decodes && !all_free)
		return; /* would hit a live record: not a bad slot */
	ret = backing_read(m.b, slot, v, buf, sizeof(buf), &len, NULL);
	if (decodes) {
		/* Free space: old bytes or a hole, never a valid record
		 * of this sector unless one was written there (skip). */
		FUZZ_CHECK(ret == -EBADMSG || ret == -EIO || ret == 0,
			   "read of free slot %#llx: "
			   "%d", (unsigned long long)slot, ret);
		if (ret == 0)
			m.reads++;
		else
			m.read_fails++;
	} else {
		FUZZ_CHECK(ret == -EINVAL, "read of malformed slot %#llx: %d",
			   (unsigned long long)slot, ret);
	}
	backing_free(m.b, slot);
	if (slot)
		m.bad_frees++;
}

static void check_stats(void)
{
	struct backing_stats st;
	uint64_t bytes = 0;

	backing_get_stats(m.b, &st);
	for (int i = 0; i < m.nrecs; i++)
		bytes += (m.recs[i].slot & 15) * UNIT;
	FUZZ_CHECK(st.capacity == m.nunits * UNIT, "capacity %llu",
		   (unsigned long long)st.capacity);
	FUZZ_CHECK(st.slots_used == (uint64_t)m.nrecs,
		   "slots_used %llu, %d live", (unsigned long long)st.slots_used,
		   m.nrecs);
	FUZZ_CHECK(st.bytes_used == bytes, "bytes_used %llu, expected %llu",
		   (unsigned long long)st.bytes_used, (unsigned long long)bytes);
	FUZZ_CHECK(st.writes == m.writes, "writes %llu, expected %llu",
		   (unsigned long long)st.writes, (unsigned long long)m.writes);
	FUZZ_CHECK(st.reads == m.reads, "reads %llu, expected %llu",
		   (unsigned long long)st.reads, (unsigned long long)m.reads);
	FUZZ_CHECK(st.read_errors + st.checksum_errors == m.read_fails,
		   "read_errors %llu + checksum_errors %llu, expected %llu",
		   (unsigned long long)st.read_errors,
		   (unsigned long long)st.checksum_errors,
		   (unsigned long long)m.read_fails);
	FUZZ_CHECK(st.bad_frees == m.bad_frees, "bad_frees %llu, expected %llu",
		   (unsigned long long)st.bad_frees,
		   (unsigned long long)m.bad_frees);
	FUZZ_CHECK(st.full == m.full && st.write_errors == m.write_errors,
		   "full %llu write_errors %llu, expected %llu",
		   (unsigned long long)st.full,
		   (unsigned long long)st.write_errors,
		   (unsigned long long)m.full);
	FUZZ_CHECK(st.punch_errors == 0, "punch_errors %llu on tmpfs",
		   (unsigned long long)st.punch_errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_tmpdir();
	char err[256];
	uint64_t fsize;
	int i;

	memset(&m, 0, sizeof(m));
	m.in = (struct fin){ data, size };
	fuzz_op_index = 0;
	fsize = file_sizes[fin_u8(&m.in) & 3];
	snprintf(m.path, sizeof(m.path), "%s/backing-%d.bk", dir,
		 (int)getpid());
	m.b = backing_open(m.path, fsize, err, sizeof(err));
	FUZZ_CHECK(m.b != NULL, "backing_open: %s", err);
	m.fd = open(m.path, O_RDWR | O_CLOEXEC);
	FUZZ_CHECK(m.fd >= 0, "open %s", m.path);
	m.nunits = fsize / UNIT;
	m.used = calloc(1, m.nunits);
	FUZZ_CHECK(m.used, "out of memory");
	check_stats();

	while (fin_left(&m.in) && fuzz_op_index < MAX_OPS) {
		uint8_t op = fin_u8(&m.in), a = fin_u8(&m.in);

		fuzz_op_index++;
		i = m.nrecs ? a % m.nrecs : -1;
		switch (op % 9) {
		case 0:
		case 8:
			m.in.p--, m.in.n++; /* no index for a write */
			do_write();
			break;
		case 1:
			if (i < 0)
				break;
			backing_free(m.b, m.recs[i].slot);
			bury(i);
			forget(i);
			break;
		case 2:
			if (i >= 0)
				do_read(i, fin_u8(&m.in));
			break;
		case 3: {
			uint16_t off = fin_u16(&m.in);

			if (i >= 0)
				do_corrupt(i, off, fin_u8(&m.in));
			break;
		}
		case 4: {
			uint16_t off = fin_u16(&m.in);
			uint64_t u;
			unsigned int n;

			if (i < 0)
				break;
			slot_split(m.recs[i].slot, &u, &n);
			FUZZ_CHECK(ftruncate(m.fd, (off_t)(u * UNIT +
							   off % (n * UNIT))) ==
					   0,
				   "ftruncate");
			break;
		}
		case 5:
			/* Punch one 4 KiB block of the file (a no-op past
			 * its end). */
			(void)fallocate(m.fd,
					FALLOC_FL_PUNCH_HOLE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)(a % (m.nunits / 8)) * 4096,
					4096);
			break;
		case 6:
			do_bad((uint64_t)a << 32 | fin_u32(&m.in));
			break;
		case 7:
			check_stats();
			if (a & 1)
				FUZZ_CHECK(backing_drop_cache(m.b) == 0,
					   "backing_drop_cache");
			if (a & 2)
				backing_free(m.b, 0); /* ignored */
			if (a & 4)
				lose_writes((a >> 3) & 3);
			break;
		}
	}

	fuzz_op_index++;
	for (i = 0; i < m.nrecs; i++)
		do_read(i, 0);
	check_stats();
	while (m.nrecs) {
		backing_free(m.b, m.recs[m.nrecs - 1].slot);
		forget(m.nrecs - 1);
	}
	check_stats();
	backing_close(m.b);
	close(m.fd);
	unlink(m.path);
	free(m.used);
	return 0;
}
