/* SPDX-License-Identifier: MIT */
/*
 * zpool_backend.h - what a zpool backend implements (internal to allocator/)
 *
 * A backend is one .c file. It defines a struct zpool_driver and registers
 * it with ZPOOL_DRIVER(), which runs before main(); zpool.c then finds it by
 * name. Nothing else changes to add a backend: the Makefile builds every
 * allocator .c file and links the objects directly (not through an archive), so
 * no registration is dropped by the linker.
 *
 * A backend's pool structure embeds struct zpool as its first member;
 * zpool.c fills in ->drv and ->ops after ->create returns, and backends
 * reach their own structure with container_of(). Callbacks have the same
 * contracts as the public functions in zpool.h of the same name; arguments
 * have already been checked (size within 1..ZPOOL_MAX_SIZE, handle != 0).
 */
#ifndef ZRAMD_ZPOOL_BACKEND_H
#define ZRAMD_ZPOOL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "zpool.h"

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct zpool_driver;

struct zpool {
	const struct zpool_driver *drv;
	struct zpool_ops ops;	/* ops.evict is NULL for an unshrinkable pool */
};

struct zpool_driver {
	const char *type;
	/* Fallback order: higher first. */
	int priority;

	/* Returns the embedded struct zpool of a new pool, or NULL with errno. */
	struct zpool *(*create)(bool shrinkable);
	void (*destroy)(struct zpool *pool);
	int (*malloc)(struct zpool *pool, size_t size, uint64_t owner,
		      unsigned long *handle);
	void (*free)(struct zpool *pool, unsigned long handle);
	int (*shrink)(struct zpool *pool, size_t size, size_t *released);
	long (*compact)(struct zpool *pool);	/* NULL: -EOPNOTSUPP */
	void *(*map)(struct zpool *pool, unsigned long handle,
		     enum zpool_mapmode mm);
	void (*unmap)(struct zpool *pool, unsigned long handle);
	uint64_t (*total_size)(const struct zpool *pool);

	struct zpool_driver *next;	/* registry link, owned by zpool.c */
};

/* Adds @drv to the registry. Called only from ZPOOL_DRIVER constructors. */
void zpool_register_driver(struct zpool_driver *drv);

#define ZPOOL_DRIVER(drv)                                               \
	static void __attribute__((constructor)) drv##_register(void)   \
	{                                                               \
		zpool_register_driver(&(drv));                          \
	}

/* Hands one object to the pool user's evict callback (see zpool_ops). */
static inline int zpool_call_evict(struct zpool *pool, unsigned long handle,
				   uint64_t owner)
{
	return pool->ops.evict(pool->ops.ctx, pool, handle, owner);
}

#endif /* ZRAMD_ZPOOL_BACKEND_H */
