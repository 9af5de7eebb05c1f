/* SPDX-License-Identifier: MIT */
/*
 * bigmem.h - large, short-lived buffers straight from mmap()
 *
 * The cold tier needs a few MiB for a pass (zstd's tables at the higher
 * levels, the pass's own buffers) and nothing between passes. Asked of
 * malloc(), such blocks soon stop being given back: glibc raises its mmap
 * threshold to the size of the last mapped block freed, so the next pass's
 * blocks come from a thread heap, between long-lived small objects (pack
 * descriptors), and their pages stay in RSS. Measured on the bench corpus:
 * 3.4 MiB more RSS after packing than with these blocks mapped and
 * unmapped each time. A mapping costs a system call and page faults, which
 * a pass (milliseconds to seconds of zstd) does not notice.
 */
#ifndef ZRAMD_BIGMEM_H
#define ZRAMD_BIGMEM_H

#include <stddef.h>
#include <sys/mman.h>

/* The header before the caller's bytes: the mapping's length. */
#define BIGMEM_HDR 64u

/* @size zeroed bytes, aligned to BIGMEM_HDR; NULL if out of memory. */
static inline void *bigmem_alloc(size_t size)
{
	size_t len = size + BIGMEM_HDR;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	*(size_t *)(void *)p = len;
	return p + BIGMEM_HDR;
}

static inline void bigmem_free(void *ptr)
{
	char *p;

	if (!ptr)
		return;
	p = (char *)ptr - BIGMEM_HDR;
	munmap(p, *(size_t *)(void *)p);
}

#endif /* ZRAMD_BIGMEM_H */
