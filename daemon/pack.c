/* SPDX-License-Identifier: MIT */
/*
 * pack.c - the pack object format and the pack descriptors
 *
 * See pack.h for the layout. Encoding is one zstd call over the slots laid
 * end to end; pack_build() shrinks the set until the object fits, guided
 * by the size of the attempt that did not (zstd's output grows about
 * linearly with its input here, so one retry is the usual case).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pack.h"

_Static_assert(PACK_SECTOR == CODEC_SECTOR, "one sector size");

#define PACK_NLOCKS 64u

static pthread_mutex_t pack_locks[PACK_NLOCKS] = {
#define L4 PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, \
	   PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER
#define L16 L4, L4, L4, L4
	L16, L16, L16, L16
#undef L16
#undef L4
};

static pthread_mutex_t *lock_of(const struct pack *pk)
{
	uint64_t h = (uint64_t)(uintptr_t)pk * UINT64_C(0x9e3779b97f4a7c15);

	return &pack_locks[h >> 58];
}
_Static_assert(PACK_NLOCKS == 64, "lock_of() takes 6 bits");

void pack_lock(const struct pack *pk)
{
	pthread_mutex_lock(lock_of(pk));
}

void pack_unlock(const struct pack *pk)
{
	pthread_mutex_unlock(lock_of(pk));
}

static uint64_t next_serial;

#define PACK_ALIGN ((size_t)1 << PACK_SLOT_BITS)
_Static_assert(PACK_ALIGN >= 16, "malloc's own alignment at least");

struct pack *pack_alloc(unsigned int nchunks)
{
	size_t sz = sizeof(struct pack) + 8u * (nchunks - 1);
	struct pack *pk;

	if (nchunks == 0 || nchunks > PACK_CHUNKS_MAX)
		return NULL;
	/* aligned_alloc(): a multiple of the alignment, which leaves the
	 * address's low PACK_SLOT_BITS bits for the slot */
	sz = (sz + PACK_ALIGN - 1) & ~(size_t)(PACK_ALIGN - 1);
	pk = aligned_alloc(PACK_ALIGN, sz);
	if (pk) {
		memset(pk, 0, sz);
		pk->nchunks = (uint8_t)nchunks;
		pk->serial = __atomic_add_fetch(&next_serial, 1,
						__ATOMIC_RELAXED);
	}
	return pk;
}

void pack_free(struct pack *pk)
{
	free(pk);
}

struct hdr {
	uint32_t magic;
	uint16_t nslots;
	uint16_t level;
	uint32_t frame_len;
	uint32_t pad;
	uint64_t base;
};
_Static_assert(sizeof(struct hdr) == 24, "header size");

long pack_encode(const uint64_t *sectors, unsigned int n, const void *data,
		 int level, void *dst, size_t cap)
{
	unsigned char *d = dst;
	size_t hs = pack_hdr_size(n);
	struct hdr h;
	long fl;

	if (n == 0 || n > PACK_MAX_SLOTS)
		return -EINVAL;
	for (unsigned int i = 1; i < n; i++)
		if (sectors[i] <= sectors[i - 1] ||
		    sectors[i] - sectors[0] > UINT32_MAX)
			return -EINVAL;
	if (cap <= hs)
		return -ENOSPC;
	fl = codec_zstd_compress(data, (size_t)n * PACK_SECTOR, d + hs,
				 cap - hs, level);
	if (fl < 0)
		return fl;
	h = (struct hdr){ .magic = PACK_MAGIC, .nslots = (uint16_t)n,
			  .level = (uint16_t)level, .frame_len = (uint32_t)fl,
			  .base = sectors[0] };
	memcpy(d, &h, sizeof(h));
	for (unsigned int i = 0; i < n; i++) {
		uint32_t delta = (uint32_t)(sectors[i] - sectors[0]);

		memcpy(d + sizeof(h) + 4u * i, &delta, 4);
	}
	return (long)(hs + (size_t)fl);
}

int pack_build(const uint64_t *sectors, unsigned int n, const void *data,
	       int level, void *dst, size_t cap, size_t *len, void *scratch)
{
	unsigned char *big = scratch;
	unsigned int k = n;

	while (k > 0) {
		long r = pack_encode(sectors, k, data, level, big,
				     PACK_SCRATCH_SIZE);
		unsigned int next;

		if (r < 0)
			return (int)r;
		if ((size_t)r <= cap) {
			memcpy(dst, big, (size_t)r);
			*len = (size_t)r;
			return (int)k;
		}
		/* Scale down by how much too big it was, with 3% to spare. */
		next = (unsigned int)((double)k * (double)cap / (double)r *
				      0.97);
		k = next < k ? next : k - 1;
	}
	return 0;
}

int pack_peek(const void *obj, size_t len, uint64_t *sectors)
{
	const unsigned char *o = obj;
	struct hdr h;
	uint32_t prev = 0;

	if (len < sizeof(h))
		return -EIO;
	memcpy(&h, o, sizeof(h));
	if (h.magic != PACK_MAGIC || h.nslots == 0 ||
	    h.nslots > PACK_MAX_SLOTS || h.level < CODEC_ZSTD_LEVEL_MIN ||
	    h.level > CODEC_ZSTD_LEVEL_MAX || h.pad != 0 ||
	    pack_hdr_size(h.nslots) + h.frame_len != len || h.frame_len == 0)
		return -EIO;
	for (unsigned int i = 0; i < h.nslots; i++) {
		uint32_t delta;

		memcpy(&delta, o + sizeof(h) + 4u * i, 4);
		if ((i == 0 && delta != 0) || (i > 0 && delta <= prev) ||
		    h.base + delta < h.base)
			return -EIO;
		prev = delta;
		if (sectors)
			sectors[i] = h.base + delta;
	}
	return h.nslots;
}

int pack_decode(const void *obj, size_t len, uint64_t *sectors, void *data)
{
	int n = pack_peek(obj, len, sectors);
	size_t hs;

	if (n < 0)
		return n;
	hs = pack_hdr_size((unsigned int)n);
	if (codec_zstd_decompress((const unsigned char *)obj + hs, len - hs,
				  data, (size_t)n * PACK_SECTOR) < 0)
		return -EIO;
	return n;
}
