/* SPDX-License-Identifier: MIT */
/*
 * fuzz_snapshot.c - the snapshot reader (daemon/snapshot_load.c) on any bytes,
 *                   and on snapshots damaged after they were written
 *
 * The properties: the reader never crashes and never loads a file that is
 * not exactly what a writer wrote; what it refuses, it refuses with one
 * line naming the file; what it loads comes back out of the writer record
 * for record, and a snapshot damaged in any byte is refused, never loaded
 * as something else.
 *
 * Input: byte 0 picks the mode (bit 0), the allocator (bit 1) and the
 * devices' hot codec (bit 2: zstd:3, else LZ4); the cold tier is on
 * (recompress=zstd:3), packing only when an op says so.
 *
 *   mode 0, raw      the rest of the input is a snapshot file, loaded
 *                    (from a memfd) into a device of the size its header
 *                    names (1 MiB if it names none that can be made).
 *                    Refused: the message starts "persist=fuzz: " and is
 *                    one line. Loaded: a few sectors are read (-EIO is
 *                    allowed: a record's checksum does not make its LZ4
 *                    valid) and the device written again must give the
 *                    same header fields and the same records, byte for
 *                    byte (packs too); if the file has objects of the
 *                    other hot codec, they are encoded anew, and the
 *                    file written again need only load.
 *   mode 1, damaged  byte 1: the device size ((b + 1) sectors, less
 *                    (b & 3) * 1000 bytes, so its end may cut a sector);
 *                    byte 2: damage, then ops until 48 or the end:
 *                      op 0 SECTOR SEED   a random sector
 *                      op 1 SECTOR SEED   a compressible sector
 *                      op 2 SECTOR WORD64 a same-filled sector
 *                      op 3 SECTOR        trim
 *                      op 4-7 SECTOR      pack: one cold-tier pass over
 *                                         the whole device, so that later
 *                                         writes and trims kill slots
 *                    (SECTOR a byte, modulo the sectors). The device is
 *                    written to a snapshot file, which is then damaged as
 *                    byte 2 says (bits 0-2: 0 none, 1 XOR a byte, 2 cut,
 *                    3 a byte appended, 4 load into another size, 5 a
 *                    mem_limit of 512K; bits 3-7 and the last input bytes
 *                    place it) and loaded into a new device. Undamaged:
 *                    loaded, every byte as the first device's. Damaged:
 *                    refused (with a mem_limit: loaded equal or -ENOSPC).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "device.h"
#include "fuzz.h"
#include "snapshot.h"
#include "zpool.h"
#include "zramd_snapshot.h"

#define SEC	 4096u
#define MAX_OPS	 48
#define RAW_SIZE (1u << 20)

/* The hot codec of the devices: 0 LZ4, else zstd's level (mode bit 2). */
static int zstd_level;

static struct zdev *make_dev(uint64_t size, bool zbud, uint64_t mem_limit)
{
	struct zdev_config cfg = {
		.size = size,
		.allocator = zbud ? ZPOOL_TYPE_ZBUD : ZPOOL_TYPE_ZSMALLOC,
		.acceleration = 1,
		.huge_threshold = 3584,
		.mem_limit = mem_limit,
		.zstd_level = zstd_level,
		.recompress_level = 3,
	};
	struct zdev *dev;
	int err;

	dev = zdev_create(&cfg, &err);
	FUZZ_CHECK(dev, "zdev_create size=%llu: %d", (unsigned long long)size,
		   err);
	return dev;
}

/* A memfd holding @len bytes at @data, at offset 0. */
static int mem_file(const void *data, size_t len)
{
	int fd = memfd_create("zramd-fuzz.snap", MFD_CLOEXEC);

	FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write memfd");
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	return fd;
}

/* snap_write() @dev; return the file's bytes (malloc'd) in *@len. */
static unsigned char *write_snapshot(struct zdev *dev, size_t *len)
{
	char path[512], err[SNAP_ERR_LEN];
	unsigned char *buf;
	struct stat st;
	int fd, r;

	snprintf(path, sizeof(path), "%s/snap-%d", fuzz_tmpdir(),
		 (int)getpid());
	r = snap_write(dev, path, NULL, err);
	FUZZ_CHECK(r == 0, "snap_write: %s", err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
	FUZZ_CHECK((st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	FUZZ_CHECK(buf, "malloc");
	FUZZ_CHECK(read(fd, buf, *len) == (ssize_t)*len, "read %s", path);
	close(fd);
	unlink(path);
	return buf;
}

static void check_message(const char *err)
{
	FUZZ_CHECK(strncmp(err, "persist=fuzz: ", 14) == 0 &&
			   !strchr(err, '\n'),
		   "message: %s", err);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void raw(const uint8_t *data, size_t size, bool zbud)
{
	uint64_t devsize = RAW_SIZE;
	char err[SNAP_ERR_LEN] = "";
	unsigned char *out, *sec;
	struct zdev *dev, *dev2;
	size_t outlen;
	int fd, r;

	if (size >= ZSNAP_HDR_SIZE) {
		devsize = get64(data + ZSNAP_HDR_OFF_DEVSIZE);
		if (devsize > ZDEV_MAX_SIZE)
			devsize = RAW_SIZE;
	}
	dev = make_dev(devsize, zbud, 0);
	fd = mem_file(data, size);
	r = snap_load_fd(dev, fd, "fuzz", NULL, NULL, NULL, err);
	close(fd);
	FUZZ_TRACE("raw load of %zu bytes: %d %s", size, r, err);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL, "refused with %d: %s", r, err);
		check_message(err);
		zdev_destroy(dev);
		return;
	}
	FUZZ_CHECK(r == 1, "loaded: %d", r);
	sec = malloc(SEC);
	FUZZ_CHECK(sec, "malloc");
	for (uint64_t off = 0; off < devsize && off < 64 * SEC; off += SEC) {
		size_t n = devsize - off < SEC ? (size_t)(devsize - off) : SEC;

		r = zdev_read(dev, sec, n, off);
		FUZZ_CHECK(r == 0 || r == -EIO, "read at %llu: %d",
			   (unsigned long long)off, r);
	}
	free(sec);
	out = write_snapshot(dev, &outlen);
	/*
	 * Objects of the other hot codec were encoded anew: the file written
	 * again holds other bytes for them; it must load, nothing more.
	 */
	for (size_t pos = ZSNAP_HDR_SIZE; pos < size - ZSNAP_REC_SIZE;) {
		unsigned int c = data[pos + ZSNAP_REC_OFF_CODEC];

		if ((data[pos] == ZSNAP_REC_OBJECT ||
		     data[pos] == ZSNAP_REC_EVICTED) &&
		    c != ZSNAP_CODEC_NONE &&
		    (c == ZSNAP_CODEC_ZSTD) != (zstd_level != 0)) {
			dev2 = make_dev(devsize, zbud, 0);
			fd = mem_file(out, outlen);
			r = snap_load_fd(dev2, fd, "fuzz", NULL, NULL, NULL, err);
			close(fd);
			FUZZ_CHECK(r == 1, "written again, not loaded: %d %s",
				   r, err);
			zdev_destroy(dev2);
			free(out);
			zdev_destroy(dev);
			return;
		}
		pos += ZSNAP_REC_SIZE + get32(data + pos + ZSNAP_REC_OFF_LEN);
	}
	FUZZ_CHECK(outlen == size, "written again: %zu bytes, loaded %zu",
		   outlen, size);
	/* A version 1 file is written again as the current version. */
	FUZZ_CHECK(memcmp(out, data, ZSNAP_HDR_OFF_VERSION) == 0 &&
			   get32(out + ZSNAP_HDR_OFF_VERSION) == ZSNAP_VERSION &&
			   memcmp(out + ZSNAP_HDR_OFF_HDRSIZE,
				  data + ZSNAP_HDR_OFF_HDRSIZE,
				  ZSNAP_HDR_OFF_CODECS -
					  ZSNAP_HDR_OFF_HDRSIZE) == 0,
		   "header fields differ");
	/* Record by record: an EVICTED record comes back as an OBJECT (no
	 * backing file here), so its type and checksum may differ. */
	for (size_t pos = ZSNAP_HDR_SIZE; pos < size - ZSNAP_REC_SIZE;) {
		size_t n = ZSNAP_REC_SIZE + get32(data + pos + ZSNAP_REC_OFF_LEN);
		unsigned int t = data[pos], u = out[pos];

		FUZZ_CHECK(t == u ||
				   (t == ZSNAP_REC_EVICTED &&
				    u == ZSNAP_REC_OBJECT) ||
				   (t == ZSNAP_REC_PACK_EVICTED &&
				    u == ZSNAP_REC_PACK),
			   "record at %zu: type %u written as %u", pos, t, u);
		FUZZ_CHECK(memcmp(out + pos + 1, data + pos + 1,
				  ZSNAP_REC_OFF_CHECKSUM - 1) == 0 &&
				   memcmp(out + pos + ZSNAP_REC_SIZE,
					  data + pos + ZSNAP_REC_SIZE,
					  n - ZSNAP_REC_SIZE) == 0,
			   "record at %zu differs", pos);
		pos += n;
	}
	free(out);
	zdev_destroy(dev);
}

static void damaged(struct fin *in, bool zbud)
{
	unsigned int b = fin_u8(in), how = fin_u8(in);
	uint64_t size = (uint64_t)(b + 1) * SEC - (b & 3) * 1000;
	uint64_t nsect = (size + SEC - 1) / SEC, load_size = size;
	uint64_t mem_limit = 0;
	unsigned char *img, *img2, *file, page[SEC];
	char err[SNAP_ERR_LEN] = "";
	bool changed = false;
	struct zdev *dev, *dev2;
	size_t len;
	int fd, r;

	dev = make_dev(size, zbud, 0);
	for (int i = 0; i < MAX_OPS && fin_left(in); i++) {
		unsigned int op = fin_u8(in) % 8;
		uint64_t s = fin_u8(in) % nsect, off = s * SEC;
		size_t n = size - off < SEC ? (size_t)(size - off) : SEC;
		uint64_t w;

		fuzz_op_index = (unsigned long)i;
		switch (op) {
		case 0:
			fuzz_fill_random(page, SEC, fin_u8(in));
			break;
		case 1:
			w = fin_u8(in);
			for (unsigned int k = 0; k < SEC; k++)
				page[k] = (unsigned char)("zramd snapshot "[k % 15] +
							  (k / 97 == w % 7));
			break;
		case 2:
			w = fin_u64(in);
			for (unsigned int k = 0; k < SEC; k += 8)
				memcpy(page + k, &w, 8);
			break;
		case 3:
			FUZZ_CHECK(zdev_trim(dev, n, off) == 0, "trim");
			continue;
		default: {
			struct zdev_recompress_result res;

			FUZZ_CHECK(zdev_recompress(dev, ZDEV_RECOMPRESS_ALL, 0,
						   NULL, NULL, &res) == 0,
				   "recompress");
			continue;
		}
		}
		FUZZ_CHECK(zdev_write(dev, page, n, off, false) == 0, "write");
	}
	img = malloc(size + 1);
	img2 = malloc(size + 1);
	FUZZ_CHECK(img && img2, "malloc");
	FUZZ_CHECK(zdev_read(dev, img, size, 0) == 0, "read the device");
	file = write_snapshot(dev, &len);
	zdev_destroy(dev);

	switch (how & 7) {
	case 1: {
		size_t at = ((size_t)(how >> 3) * 977 + fin_u16(in)) % len;
		unsigned char m = fin_u8(in) | 1;

		file[at] ^= m;
		changed = true;
		break;
	}
	case 2:
		len = ((size_t)(how >> 3) * 977 + fin_u16(in)) % len;
		changed = true;
		break;
	case 3:
		file[len++] = (unsigned char)how;
		changed = true;
		break;
	case 4:
		load_size = size + SEC;
		changed = true;
		break;
	case 5:
		mem_limit = ZDEV_MEM_LIMIT_MIN;
		break;
	}
	FUZZ_TRACE("size %llu, %zu bytes, damage %u",
		   (unsigned long long)size, len, how & 7);
	dev2 = make_dev(load_size, zbud, mem_limit);
	fd = mem_file(file, len);
	r = snap_load_fd(dev2, fd, "fuzz", NULL, NULL, NULL, err);
	close(fd);
	if (changed) {
		FUZZ_CHECK(r == -EINVAL, "damage %u not refused: %d %s",
			   how & 7, r, err);
		check_message(err);
	} else if (r == -ENOSPC && mem_limit) {
		check_message(err);
	} else {
		FUZZ_CHECK(r == 1, "undamaged not loaded: %d %s", r, err);
		FUZZ_CHECK(zdev_read(dev2, img2, size, 0) == 0, "read back");
		FUZZ_CHECK(memcmp(img, img2, size) == 0, "bytes differ");
	}
	zdev_destroy(dev2);
	free(file);
	free(img);
	free(img2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fin in = { data, size };
	unsigned int mode;

	fuzz_op_index = 0;
	if (!size)
		return 0;
	mode = fin_u8(&in);
	zstd_level = mode & 4 ? 3 : 0;
	if (mode & 1)
		damaged(&in, mode & 2);
	else
		raw(in.p, in.n, mode & 2);
	return 0;
}
