/* SPDX-License-Identifier: MIT */
/*
 * zpool.h - common API for compressed-memory storage pools (userspace)
 *
 * A zpool stores opaque objects of up to ZPOOL_MAX_SIZE bytes, typically
 * compressed 4 KiB sectors, and hands back an opaque handle for each. The
 * memory behind a handle is reached only between zpool_map_handle() and
 * zpool_unmap_handle(). Several backends implement the API and register
 * themselves by type name (see zpool_backend.h): "zsmalloc" (dense, the
 * default) and "zbud" (two objects per page, simple and deterministic).
 *
 * The shape follows the Linux zpool patch of 2014 (Dan Streetman). Where it
 * differs, it is on purpose:
 *
 *  - Backends register as drivers in a table keyed by name; zpool.c knows
 *    none of them by name.
 *  - Every object carries an @owner word given at zpool_malloc(), and the
 *    evict callback receives it together with the caller's @ctx. The caller
 *    needs no reverse map, no header inside the object and no search of a
 *    global list of pools (the seed's zpool_*_evict walked one under a
 *    spinlock on every eviction).
 *  - Errors are negative errno values (-EINVAL, -ENOSPC, -ENOMEM, ...).
 *  - Memory freed inside a backend is returned to the operating system
 *    (madvise or munmap), so zpool_get_total_size() and the process RSS
 *    both fall when objects are freed.
 *  - The thread-safety contract is written down for every function below.
 *
 * Thread safety, in general: every function may be called concurrently from
 * any number of threads on the same pool, except zpool_destroy_pool(), which
 * must be the last call on a pool. A single handle, however, belongs to its
 * caller: the caller must not free a handle while another of its own threads
 * has it mapped, and must free each handle exactly once. The one exception is
 * eviction; see struct zpool_ops.
 */
#ifndef ZRAMD_ZPOOL_H
#define ZRAMD_ZPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZPOOL_PAGE_SIZE 4096u

/* The largest object a pool accepts: one uncompressed 4 KiB sector. */
#define ZPOOL_MAX_SIZE ZPOOL_PAGE_SIZE

#define ZPOOL_TYPE_ZSMALLOC "zsmalloc"
#define ZPOOL_TYPE_ZBUD "zbud"

struct zpool;

/**
 * struct zpool_ops - callbacks from a pool to its user
 * @evict: called by zpool_shrink() for each object it evicts. @ctx is the
 *         @ctx member below and @owner the word given to zpool_malloc().
 *         The callback saves the object elsewhere (it may map @handle
 *         ZPOOL_MM_RO to read it) and then, if it still owns @handle, frees
 *         it with zpool_free() and returns 0. It returns a negative errno to
 *         refuse; the object then stays where it is and zpool_shrink() stops.
 *
 *         The eviction race: while the callback runs, another thread of the
 *         caller may free @handle (for example because the data was
 *         overwritten). The backend keeps the object's memory mapped and
 *         unchanged until the callback returns, so the callback may still read
 *         it; it must then not free @handle a second time. Callers decide who
 *         frees a handle under their own lock (the sector table's, in zramd).
 *
 *         The callback is called with no pool lock held. It may call
 *         zpool_map_handle(), zpool_unmap_handle(), zpool_free() and
 *         zpool_malloc() on the pool, but not zpool_shrink() or
 *         zpool_compact().
 * @ctx:   passed unchanged to @evict.
 */
struct zpool_ops {
	int (*evict)(void *ctx, struct zpool *pool, unsigned long handle,
		     uint64_t owner);
	void *ctx;
};

/*
 * How a handle is mapped. It says how memory is copied in and out where a
 * backend must copy (an object that spans two non-contiguous pages, say);
 * it is not memory protection. RO: no copy back at unmap. WO: no copy in at
 * map, for initialising a new object. RW: both.
 */
enum zpool_mapmode {
	ZPOOL_MM_RW,
	ZPOOL_MM_RO,
	ZPOOL_MM_WO,

	ZPOOL_MM_DEFAULT = ZPOOL_MM_RW
};

/**
 * zpool_create_pool() - create a new pool
 * @type:     the backend, by name ("zsmalloc", "zbud")
 * @ops:      eviction callbacks, or NULL for a pool that cannot be shrunk.
 *            The structure is copied. With NULL, backends need not store
 *            owner words.
 * @fallback: if @type is unknown or cannot be created, try the other
 *            registered backends in registration order
 *
 * Thread safety: may be called from any thread at any time.
 *
 * Return: the new pool, or NULL with errno set: EINVAL if @type is NULL or
 * unknown and @fallback is false (a message naming the known types is
 * written to stderr), ENOMEM if memory ran out. With @fallback, use
 * zpool_get_type() to learn which backend was created.
 */
struct zpool *zpool_create_pool(const char *type, const struct zpool_ops *ops,
				bool fallback);

/**
 * zpool_get_type() - the backend name of a pool
 * @pool: the pool
 *
 * Thread safety: may be called concurrently with any call but destroy.
 *
 * Return: a static string, one of the ZPOOL_TYPE_* values.
 */
const char *zpool_get_type(const struct zpool *pool);

/**
 * zpool_destroy_pool() - destroy a pool and free all of its memory
 * @pool: the pool, or NULL (then nothing happens)
 *
 * Outstanding handles become invalid. Thread safety: must be the last call
 * on @pool; no other thread may be using it.
 */
void zpool_destroy_pool(struct zpool *pool);

/**
 * zpool_malloc() - allocate an object
 * @pool:   the pool
 * @size:   bytes, 1 to ZPOOL_MAX_SIZE
 * @owner:  a word kept with the object and given back to ops->evict
 * @handle: where the new handle is stored; never 0 on success
 *
 * The new object's contents are undefined; fill it through a ZPOOL_MM_WO
 * mapping. Thread safety: concurrent calls are the normal case.
 *
 * Return: 0 on success; -EINVAL if @size is 0 or above ZPOOL_MAX_SIZE;
 * -ENOMEM if no memory could be had from the operating system.
 */
int zpool_malloc(struct zpool *pool, size_t size, uint64_t owner,
		 unsigned long *handle);

/**
 * zpool_free() - free an object
 * @pool:   the pool that allocated @handle
 * @handle: the handle; 0 is ignored
 *
 * The memory may not return to the operating system at once (a page still
 * holds other objects), but is reusable by the pool at once, unless @handle
 * is being evicted, in which case it is released when the evict callback
 * returns. Thread safety: concurrent calls are the normal case; see the
 * eviction race in struct zpool_ops.
 */
void zpool_free(struct zpool *pool, unsigned long handle);

/**
 * zpool_shrink() - evict objects until at least @size bytes are released
 * @pool: the pool
 * @size: bytes of pool memory (as counted by zpool_get_total_size()) to
 *        release
 * @released: if not NULL, set to the bytes actually released
 *
 * Evicts the coldest objects first: least recently allocated pages (zbud)
 * or zspages (zsmalloc) go before recently used ones. Each object is handed
 * to ops->evict. Thread safety: may run concurrently with malloc, free and
 * map; only one shrink or compact runs at a time per pool (others wait).
 *
 * Return: 0 if at least @size bytes were released; -EINVAL if the pool has
 * no evict callback; -ENOENT if the pool ran out of objects to evict first;
 * or the first negative value an evict callback returned.
 */
int zpool_shrink(struct zpool *pool, size_t size, size_t *released);

/**
 * zpool_compact() - move objects out of sparsely used pages and free them
 * @pool: the pool
 *
 * Handles stay valid. Thread safety: as zpool_shrink().
 *
 * Return: the number of 4 KiB pages returned to the operating system (0 or
 * more), or -EOPNOTSUPP if the backend does not compact (zbud).
 */
long zpool_compact(struct zpool *pool);

/**
 * zpool_map_handle() - map an object into memory
 * @pool:   the pool that allocated @handle
 * @handle: the handle
 * @mm:     how the memory is used (see enum zpool_mapmode)
 *
 * The mapping may hold a backend lock (for example, one that stops
 * compaction moving the object); use it briefly, call zpool_unmap_handle()
 * as soon as possible, and do not map a second handle of the same pool from
 * the same thread before unmapping the first.
 *
 * Return: a pointer to the object's bytes; never NULL for a valid handle.
 */
void *zpool_map_handle(struct zpool *pool, unsigned long handle,
		       enum zpool_mapmode mm);

/**
 * zpool_unmap_handle() - undo zpool_map_handle()
 * @pool:   the pool that allocated @handle
 * @handle: the handle that was mapped
 *
 * The pointer returned by the map may not be used after this.
 */
void zpool_unmap_handle(struct zpool *pool, unsigned long handle);

/**
 * zpool_get_total_size() - bytes of memory the pool holds from the OS
 * @pool: the pool
 *
 * This counts pages that hold objects and the backend's own metadata, not
 * pages it has given back. Thread safety: lock-free; the value is a snapshot.
 *
 * Return: the size in bytes.
 */
uint64_t zpool_get_total_size(const struct zpool *pool);

/**
 * zpool_for_each_type() - list the registered backends
 * @fn:  called once per backend, in registration order, with its name
 * @arg: passed to @fn
 */
void zpool_for_each_type(void (*fn)(const char *type, void *arg), void *arg);

#endif /* ZRAMD_ZPOOL_H */
