/* SPDX-License-Identifier: MIT */
/*
 * pagesrc.h - where pool pages come from and go back to (internal)
 *
 * Backends take runs of 1..PAGESRC_MAX_RUN contiguous 4 KiB pages and give
 * them back. Memory comes from the kernel in 2 MiB anonymous arenas; a run
 * that is given back is released at once with madvise(MADV_DONTNEED), so
 * the process RSS falls, and an arena with no pages in use is unmapped.
 * Pages handed out are zero-filled. A few released runs are kept back for
 * reuse, so that a free followed by an allocation costs no system call;
 * the cache is bounded (see pagesrc.c) and counted as memory held.
 *
 * Thread safety: all functions may be called concurrently; one mutex guards
 * the arena table and is never held across a system call other than mmap
 * and munmap of a whole arena.
 */
#ifndef ZRAMD_PAGESRC_H
#define ZRAMD_PAGESRC_H

#include <stddef.h>
#include <stdint.h>

#define PAGESRC_PAGE_SIZE 4096u
#define PAGESRC_MAX_RUN 64u

struct pagesrc;

/* Return: a new page source, or NULL with errno set. */
struct pagesrc *pagesrc_create(void);

/* Unmaps every arena; all runs become invalid. */
void pagesrc_destroy(struct pagesrc *ps);

/*
 * pagesrc_alloc() - take @npages (1..PAGESRC_MAX_RUN) contiguous pages
 * Return: the address of the first page, zero-filled; NULL with errno
 * EINVAL (bad @npages) or ENOMEM.
 */
void *pagesrc_alloc(struct pagesrc *ps, unsigned int npages);

/* Gives back a run exactly as pagesrc_alloc() returned it. */
void pagesrc_free(struct pagesrc *ps, void *addr, unsigned int npages);

/* Gives every cached run back to the OS. */
void pagesrc_flush(struct pagesrc *ps);

/*
 * Return: bytes held from the OS, in runs handed out and in the release
 * cache (a lock-free snapshot).
 */
uint64_t pagesrc_bytes_used(const struct pagesrc *ps);

#endif /* ZRAMD_PAGESRC_H */
