/* SPDX-License-Identifier: MIT */
/*
 * zpool.c - the backend registry and the dispatch of the zpool API
 *
 * Backends register a struct zpool_driver by name before main() runs (see
 * zpool_backend.h). This file knows none of them: creating a pool looks the
 * name up in the registry, and every other call goes through pool->drv.
 * Argument checks common to all backends live here, once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zpool_backend.h"

/*
 * The registry is written only by constructors, which run one at a time
 * before main(), and read-only afterwards: no lock is needed.
 */
static struct zpool_driver *drivers;

void zpool_register_driver(struct zpool_driver *drv)
{
	struct zpool_driver **p = &drivers;

	/* Keep the list sorted by falling priority, for fallback order. */
	while (*p && (*p)->priority >= drv->priority)
		p = &(*p)->next;
	drv->next = *p;
	*p = drv;
}

void zpool_for_each_type(void (*fn)(const char *type, void *arg), void *arg)
{
	for (const struct zpool_driver *d = drivers; d; d = d->next)
		fn(d->type, arg);
}

static const struct zpool_driver *find_driver(const char *type)
{
	for (const struct zpool_driver *d = drivers; d; d = d->next)
		if (strcmp(d->type, type) == 0)
			return d;
	return NULL;
}

static struct zpool *create_with(const struct zpool_driver *drv,
				 const struct zpool_ops *ops)
{
	struct zpool *pool = drv->create(ops && ops->evict);

	if (!pool)
		return NULL;
	pool->drv = drv;
	if (ops && ops->evict)
		pool->ops = *ops;
	else
		pool->ops = (struct zpool_ops){ 0 };
	return pool;
}

static void print_type(const char *type, void *arg)
{
	fprintf(stderr, "%s%s", *(int *)arg ? ", " : "", type);
	*(int *)arg = 1;
}

struct zpool *zpool_create_pool(const char *type, const struct zpool_ops *ops,
				bool fallback)
{
	const struct zpool_driver *drv = type ? find_driver(type) : NULL;
	struct zpool *pool = NULL;
	int err = EINVAL;

	if (drv) {
		pool = create_with(drv, ops);
		if (pool)
			return pool;
		err = errno;
	}
	if (fallback) {
		for (drv = drivers; drv; drv = drv->next) {
			if (type && strcmp(drv->type, type) == 0)
				continue;
			pool = create_with(drv, ops);
			if (pool)
				return pool;
			err = errno;
		}
	} else if (!drv) {
		int any = 0;

		fprintf(stderr, "zpool: unknown pool type '%s' (known: ",
			type ? type : "(null)");
		zpool_for_each_type(print_type, &any);
		fprintf(stderr, ")\n");
	}
	errno = err;
	return NULL;
}

const char *zpool_get_type(const struct zpool *pool)
{
	return pool->drv->type;
}

void zpool_destroy_pool(struct zpool *pool)
{
	if (pool)
		pool->drv->destroy(pool);
}

int zpool_malloc(struct zpool *pool, size_t size, uint64_t owner,
		 unsigned long *handle)
{
	if (size == 0 || size > ZPOOL_MAX_SIZE)
		return -EINVAL;
	return pool->drv->malloc(pool, size, owner, handle);
}

void zpool_free(struct zpool *pool, unsigned long handle)
{
	if (handle)
		pool->drv->free(pool, handle);
}

int zpool_shrink(struct zpool *pool, size_t size, size_t *released)
{
	if (released)
		*released = 0;
	if (!pool->ops.evict)
		return -EINVAL;
	return pool->drv->shrink(pool, size, released);
}

long zpool_compact(struct zpool *pool)
{
	if (!pool->drv->compact)
		return -EOPNOTSUPP;
	return pool->drv->compact(pool);
}

void *zpool_map_handle(struct zpool *pool, unsigned long handle,
		       enum zpool_mapmode mm)
{
	return pool->drv->map(pool, handle, mm);
}

void zpool_unmap_handle(struct zpool *pool, unsigned long handle)
{
	pool->drv->unmap(pool, handle);
}

uint64_t zpool_get_total_size(const struct zpool *pool)
{
	return pool->drv->total_size(pool);
}
