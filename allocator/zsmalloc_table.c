/* SPDX-License-Identifier: MIT */
/*
 * zsmalloc_table.c - tables of fixed-size entries named by a 32-bit id
 *
 * See zsmalloc_table.h for what the tables are for and how they look. The
 * one subtle point is the directory: lookups read it with no lock while
 * zs_table_get() may replace it with a larger copy. A replaced directory is
 * therefore never freed before the table is destroyed (it may still be
 * read); the old ones together are never larger than the current one, so
 * this costs at most one directory's worth of memory, which is counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zsmalloc_table.h"

_Static_assert(ZS_TABLE_CHUNK_SIZE == PAGESRC_PAGE_SIZE, "chunk is a page");
_Static_assert(ZS_TABLE_MAX_PER_CHUNK % 64 == 0, "bitmap of whole words");

static void meta_add(struct zs_table *t, int64_t bytes)
{
	__atomic_add_fetch(t->meta_bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
}

static uint32_t per_chunk(const struct zs_table *t)
{
	return 1u << t->chunk_shift;
}

int zs_table_init(struct zs_table *t, struct pagesrc *ps, uint64_t *meta_bytes,
		  unsigned int entry_size, uint32_t max_ids, bool reserve_zero)
{
	memset(t, 0, sizeof(*t));
	if (entry_size < 8 || entry_size > ZS_TABLE_CHUNK_SIZE ||
	    (entry_size & (entry_size - 1)))
		return -EINVAL;
	pthread_mutex_init(&t->lock, NULL);
	t->ps = ps;
	t->meta_bytes = meta_bytes;
	t->entry_shift = (unsigned int)__builtin_ctz(entry_size);
	t->chunk_shift =
		(unsigned int)__builtin_ctz(ZS_TABLE_CHUNK_SIZE / entry_size);
	t->max_ids = max_ids;
	if (reserve_zero) {
		uint32_t id;

		if (zs_table_get(t, &id, 1) != 1) {
			zs_table_destroy(t);
			return -ENOMEM;
		}
	}
	return 0;
}

void zs_table_destroy(struct zs_table *t)
{
	/* The chunk pages go back when the caller destroys the page source. */
	for (size_t i = 0; i < t->nretired; i++)
		free(t->retired[i]);
	free(t->retired);
	free(t->dir);
	free(t->info);
	pthread_mutex_destroy(&t->lock);
}

/* Doubles the directory and the chunk bookkeeping. Lock held. */
static int grow(struct zs_table *t)
{
	size_t cap = t->dir_cap ? t->dir_cap * 2 : 16;
	struct zs_table_chunk *info;
	void **retired;
	char **dir;

	dir = calloc(cap, sizeof(*dir));
	if (!dir)
		return -ENOMEM;
	info = realloc(t->info, cap * sizeof(*info));
	if (!info) {
		free(dir);
		return -ENOMEM;
	}
	t->info = info;
	if (t->dir) {
		retired = realloc(t->retired,
				  (t->nretired + 1) * sizeof(*retired));
		if (!retired) {
			free(dir);
			return -ENOMEM; /* info grew, harmlessly */
		}
		t->retired = retired;
		t->retired[t->nretired++] = t->dir;
		memcpy(dir, t->dir, t->dir_cap * sizeof(*dir));
		meta_add(t, (int64_t)sizeof(*retired));
	}
	meta_add(t, (int64_t)(cap * sizeof(*dir) +
			      (cap - t->dir_cap) * sizeof(*info)));
	t->dir_cap = cap;
	/* Readers that loaded the old directory may go on using it. */
	__atomic_store_n(&t->dir, dir, __ATOMIC_RELEASE);
	return 0;
}

/* Adds a chunk at the top. Lock held. Return: 0 or -ENOMEM. */
static int add_chunk(struct zs_table *t)
{
	struct zs_table_chunk *ci;
	char *page;

	if ((uint64_t)t->nchunks << t->chunk_shift >= t->max_ids)
		return -ENOMEM;
	if (t->nchunks == t->dir_cap && grow(t) < 0)
		return -ENOMEM;
	page = pagesrc_alloc(t->ps, 1);
	if (!page)
		return -ENOMEM;
	ci = &t->info[t->nchunks];
	memset(ci, 0, sizeof(*ci));
	for (uint32_t i = 0; i < per_chunk(t) / 64; i++)
		ci->free[i] = UINT64_MAX;
	if (per_chunk(t) < 64)
		ci->free[0] = (UINT64_C(1) << per_chunk(t)) - 1;
	ci->nfree = per_chunk(t);
	__atomic_store_n(&t->dir[t->nchunks], page, __ATOMIC_RELEASE);
	t->nchunks++;
	return 0;
}

unsigned int zs_table_get(struct zs_table *t, uint32_t *ids, unsigned int n)
{
	unsigned int got = 0;

	pthread_mutex_lock(&t->lock);
	while (got < n) {
		size_t c = t->hint;
		struct zs_table_chunk *ci;

		while (c < t->nchunks && t->info[c].nfree == 0)
			c++;
		t->hint = c;
		if (c == t->nchunks && add_chunk(t) < 0)
			break;
		ci = &t->info[c];
		for (unsigned int w = 0; w < ZS_TABLE_MAP_WORDS && got < n;
		     w++) {
			while (ci->free[w] && got < n) {
				unsigned int b = (unsigned int)__builtin_ctzll(
					ci->free[w]);
				uint64_t id = ((uint64_t)c << t->chunk_shift) +
					      w * 64 + b;

				if (id >= t->max_ids)
					goto out;
				ci->free[w] &= ci->free[w] - 1;
				ci->nfree--;
				ids[got++] = (uint32_t)id;
			}
		}
	}
out:
	t->nused += got;
	pthread_mutex_unlock(&t->lock);
	return got;
}

/*
 * Gives back wholly free chunks at the top, keeping one free chunk there so
 * that ids coming and going at the edge do not make a page come and go each
 * time; not while a hold is outstanding. Lock held. Return: pages.
 */
static unsigned int trim(struct zs_table *t)
{
	const uint32_t full = per_chunk(t);
	unsigned int released = 0;

	while (!t->holds && t->nchunks >= 2 &&
	       t->info[t->nchunks - 1].nfree == full &&
	       t->info[t->nchunks - 2].nfree == full) {
		size_t c = --t->nchunks;
		char *page = t->dir[c];

		__atomic_store_n(&t->dir[c], NULL, __ATOMIC_RELAXED);
		pagesrc_free(t->ps, page, 1);
		released++;
	}
	if (t->hint > t->nchunks)
		t->hint = t->nchunks;
	return released;
}

unsigned int zs_table_put(struct zs_table *t, const uint32_t *ids,
			  unsigned int n)
{
	const uint32_t full = per_chunk(t);
	unsigned int released;

	pthread_mutex_lock(&t->lock);
	for (unsigned int i = 0; i < n; i++) {
		size_t c = ids[i] >> t->chunk_shift;
		uint32_t slot = ids[i] & (full - 1);

		t->info[c].free[slot / 64] |= UINT64_C(1) << (slot % 64);
		t->info[c].nfree++;
		if (c < t->hint)
			t->hint = c;
	}
	t->nused -= n;
	released = trim(t);
	pthread_mutex_unlock(&t->lock);
	return released;
}

void zs_table_hold(struct zs_table *t)
{
	pthread_mutex_lock(&t->lock);
	t->holds++;
	pthread_mutex_unlock(&t->lock);
}

unsigned int zs_table_unhold(struct zs_table *t)
{
	unsigned int released;

	pthread_mutex_lock(&t->lock);
	t->holds--;
	released = trim(t);
	pthread_mutex_unlock(&t->lock);
	return released;
}

void zs_table_scan(struct zs_table *t,
		   void (*fn)(void *entries, uint32_t first, uint32_t n,
			      void *arg),
		   void *arg)
{
	for (size_t c = 0;; c++) {
		pthread_mutex_lock(&t->lock);
		if (c >= t->nchunks) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		fn(t->dir[c], (uint32_t)(c << t->chunk_shift), per_chunk(t),
		   arg);
		pthread_mutex_unlock(&t->lock);
	}
}

uint64_t zs_table_used(struct zs_table *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->nused;
	pthread_mutex_unlock(&t->lock);
	return n;
}
