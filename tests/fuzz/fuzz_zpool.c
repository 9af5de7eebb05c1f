/* SPDX-License-Identifier: MIT */
/*
 * fuzz_zpool.c - zpool operation sequences against a shadow model
 *
 * Built once per backend (-DZPOOL_BACKEND='"zbud"' or '"zsmalloc"'); the
 * input format is the same for both, so they share one corpus.
 *
 * The input is a program. Byte 0 picks the pool: bit 0 set makes a pool
 * with no evict callback (shrink must then say -EINVAL). Then each op is
 * one byte and its arguments:
 *
 *   malloc SIZE SEED   allocate, fill through a WO mapping, remember
 *   free I             free live object I (I taken modulo the live count)
 *   read I             map RO and compare with the model
 *   modify I OFF LEN   map RW, check, change LEN bytes, unmap
 *   rewrite I SEED     map WO and fill the whole object again
 *   shrink SIZE        zpool_shrink(); the evict callback reads one more
 *                      byte per object to decide what to do (below)
 *   compact            zpool_compact(), then every object is checked
 *   verify             check every object
 *   bad-malloc         sizes 0 and ZPOOL_MAX_SIZE + 1 must be -EINVAL
 *
 * The evict callback checks that it is called only inside zpool_shrink(),
 * for a live object whose owner word and handle match the model and whose
 * bytes are intact, and then, as the byte says: evicts it (frees, drops it
 * from the model); refuses (-EAGAIN, which shrink must pass on unless it
 * had already released enough); plays the eviction race (the owner frees
 * the handle first, the callback then reads it once more, which the
 * contract allows, and returns 0 without freeing); frees another live
 * object first (a buddy on the same page, say), which must then not be
 * handed to the callback; or allocates a new object from inside the
 * callback, which the contract allows.
 *
 * At the end every object is checked and freed, and the pool must be back
 * to its starting size give or take its metadata slack.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "zpool.h"

#ifndef ZPOOL_BACKEND
#error "compile with -DZPOOL_BACKEND='\"zbud\"' or '\"zsmalloc\"'"
#endif

#define MAX_OBJS 96
#define MAX_OPS 1500
/* What a pool may keep once empty (handle slabs and the like). */
#define EMPTY_SLACK (64u * 1024)

struct obj {
	unsigned long handle;
	size_t size;
	uint64_t owner;
	unsigned char *data; /* the expected bytes */
};

struct model {
	struct zpool *pool;
	struct fin in;
	bool shrinkable;
	bool in_shrink;
	bool cb_malloced; /* a callback allocated during this shrink */
	int refusals;	  /* callbacks that refused during this shrink */
	uint64_t next_owner;
	int nobjs;
	struct obj objs[MAX_OBJS];
};

static struct model m;

static void fill(unsigned char *p, size_t len, uint8_t kind, uint64_t seed)
{
	switch (kind % 4) {
	case 0:
		fuzz_fill_random(p, len, seed);
		break;
	case 1:
		memset(p, (int)(seed & 0xff), len);
		break;
	case 2:
		for (size_t i = 0; i < len; i++)
			p[i] = (unsigned char)(i * 7 + seed);
		break;
	default:
		memset(p, 0, len);
		if (len)
			p[seed % len] = (unsigned char)(seed >> 8 | 1);
		break;
	}
}

static int find_owner(uint64_t owner)
{
	for (int i = 0; i < m.nobjs; i++)
		if (m.objs[i].owner == owner)
			return i;
	return -1;
}

/* Maps @o read-only and compares it with the model. */
static void check_obj(const struct obj *o, const char *when)
{
	const unsigned char *p = zpool_map_handle(m.pool, o->handle,
						  ZPOOL_MM_RO);

	FUZZ_CHECK(p != NULL, "%s: map of %#lx returned NULL", when,
		   o->handle);
	if (memcmp(p, o->data, o->size) != 0)
		for (size_t i = 0; i < o->size; i++)
			FUZZ_CHECK(p[i] == o->data[i],
				   "%s: object %#lx (owner %llu, %zu bytes): "
				   "byte %zu is %#x, expected %#x",
				   when, o->handle,
				   (unsigned long long)o->owner, o->size, i,
				   p[i], o->data[i]);
	zpool_unmap_handle(m.pool, o->handle);
}

/* Drops object @i from the model (the pool side is the caller's). */
static void forget(int i)
{
	free(m.objs[i].data);
	m.objs[i] = m.objs[--m.nobjs];
}

static void do_malloc(size_t size, uint8_t kind, uint64_t seed)
{
	struct obj *o;
	unsigned long handle = 0;
	void *p;
	int r;

	if (m.nobjs == MAX_OBJS)
		return;
	r = zpool_malloc(m.pool, size, m.next_owner, &handle);
	FUZZ_TRACE("malloc %zu -> %d, handle %#lx, owner %llu", size, r, handle,
		   (unsigned long long)m.next_owner);
	FUZZ_CHECK(r == 0, "malloc(%zu) returned %d", size, r);
	FUZZ_CHECK(handle != 0, "malloc(%zu) gave handle 0", size);
	for (int i = 0; i < m.nobjs; i++)
		FUZZ_CHECK(m.objs[i].handle != handle,
			   "malloc(%zu) gave live handle %#lx again", size,
			   handle);
	o = &m.objs[m.nobjs];
	o->handle = handle;
	o->size = size;
	o->owner = m.next_owner++;
	o->data = malloc(size);
	FUZZ_CHECK(o->data != NULL, "out of memory");
	fill(o->data, size, kind, seed);
	p = zpool_map_handle(m.pool, handle, ZPOOL_MM_WO);
	FUZZ_CHECK(p != NULL, "WO map of a new object returned NULL");
	memcpy(p, o->data, size);
	zpool_unmap_handle(m.pool, handle);
	m.nobjs++;
}

static size_t pick_size(struct fin *in)
{
	uint8_t k = fin_u8(in);
	uint16_t v = fin_u16(in);

	switch (k % 8) {
	case 0:
		return 1 + v % 64;
	case 1:
		return ZPOOL_MAX_SIZE;
	case 2:
		return ZPOOL_MAX_SIZE - v % 128;
	case 3:
		return 1 + v % 16;
	default:
		return 1 + v % ZPOOL_MAX_SIZE;
	}
}

enum cb_action {
	CB_EVICT,
	CB_REFUSE,
	CB_RACE,
	CB_FREE_OTHER,
	CB_MALLOC,
	CB_NR
};

static int evict_cb(void *ctx, struct zpool *pool, unsigned long handle,
		    uint64_t owner)
{
	int i = find_owner(owner), j;
	uint8_t b;

	FUZZ_CHECK(ctx == &m, "evict: ctx %p is not the one given", ctx);
	FUZZ_CHECK(pool == m.pool, "evict: wrong pool");
	FUZZ_CHECK(m.in_shrink, "evict called outside zpool_shrink()");
	FUZZ_CHECK(i >= 0,
		   "evict of owner %llu (handle %#lx): no live object has it "
		   "(freed, evicted twice, or a wrong owner word)",
		   (unsigned long long)owner, handle);
	FUZZ_CHECK(m.objs[i].handle == handle,
		   "evict: owner %llu has handle %#lx, callback got %#lx",
		   (unsigned long long)owner, m.objs[i].handle, handle);
	check_obj(&m.objs[i], "evict");

	b = fin_u8(&m.in);
	FUZZ_TRACE("  evict owner %llu (%zu bytes): %s", (unsigned long long)owner,
		   m.objs[i].size,
		   (const char *[]){ "evict", "refuse", "race", "free other",
				     "malloc" }[b % CB_NR]);
	switch ((enum cb_action)(b % CB_NR)) {
	case CB_EVICT:
		zpool_free(pool, handle);
		forget(i);
		return 0;
	case CB_REFUSE:
		m.refusals++;
		return -EAGAIN;
	case CB_RACE: {
		struct obj o = m.objs[i];

		/* Another thread of the owner frees the handle under us... */
		zpool_free(pool, handle);
		m.objs[i].data = NULL;
		forget(i);
		/* ...and the object must stay readable until we return. */
		check_obj(&o, "evict after the owner freed it");
		free(o.data);
		return 0;
	}
	case CB_FREE_OTHER:
		/* The owner frees some other object first (often the buddy
		 * or zspage neighbour due for eviction next). */
		j = (int)(b / CB_NR) % m.nobjs;
		if (j != i) {
			zpool_free(pool, m.objs[j].handle);
			forget(j);
			i = find_owner(owner);
		}
		zpool_free(pool, handle);
		forget(i);
		return 0;
	case CB_MALLOC:
		zpool_free(pool, handle);
		forget(i);
		m.cb_malloced = true;
		do_malloc(1 + (size_t)b * 16 % ZPOOL_MAX_SIZE, b, b * 31u);
		return 0;
	case CB_NR:
		break;
	}
	return 0;
}

static void do_shrink(size_t size)
{
	uint64_t before = zpool_get_total_size(m.pool), after;
	size_t released = (size_t)-1;
	int r;

	m.in_shrink = true;
	m.cb_malloced = false;
	m.refusals = 0;
	FUZZ_TRACE("shrink %zu (total %llu)", size, (unsigned long long)before);
	r = zpool_shrink(m.pool, size, &released);
	m.in_shrink = false;
	after = zpool_get_total_size(m.pool);
	FUZZ_TRACE("  -> %d, released %zu, total %llu", r, released,
		   (unsigned long long)after);

	if (!m.shrinkable) {
		FUZZ_CHECK(r == -EINVAL,
			   "shrink of a pool with no evict callback: %d", r);
		return;
	}
	FUZZ_CHECK(r == 0 || r == -ENOENT || (r == -EAGAIN && m.refusals),
		   "shrink(%zu) returned %d (%d refusals)", size, r,
		   m.refusals);
	FUZZ_CHECK(released != (size_t)-1, "shrink did not set *released");
	if (r == 0)
		FUZZ_CHECK(released >= size,
			   "shrink(%zu) returned 0 but released %zu", size,
			   released);
	else
		FUZZ_CHECK(released < size,
			   "shrink(%zu) released %zu but returned %d", size,
			   released, r);
	if (!m.cb_malloced)
		FUZZ_CHECK(before >= after && before - after >= released,
			   "shrink says it released %zu bytes, total size went "
			   "from %llu to %llu",
			   released, (unsigned long long)before,
			   (unsigned long long)after);
}

static void verify_all(const char *when)
{
	for (int i = 0; i < m.nobjs; i++)
		check_obj(&m.objs[i], when);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zpool_ops ops = { .evict = evict_cb, .ctx = &m };
	uint64_t base, total;
	unsigned long handle = 0;
	uint8_t flags;
	long pages;
	int i, r;

	memset(&m, 0, sizeof(m));
	m.in = (struct fin){ data, size };
	fuzz_op_index = 0;
	flags = fin_u8(&m.in);
	m.shrinkable = !(flags & 1);
	m.pool = zpool_create_pool(ZPOOL_BACKEND, m.shrinkable ? &ops : NULL,
				   false);
	FUZZ_CHECK(m.pool != NULL, "cannot create a %s pool", ZPOOL_BACKEND);
	FUZZ_CHECK(strcmp(zpool_get_type(m.pool), ZPOOL_BACKEND) == 0,
		   "pool type %s", zpool_get_type(m.pool));
	base = zpool_get_total_size(m.pool);

	while (fin_left(&m.in) && fuzz_op_index < MAX_OPS) {
		uint8_t op = fin_u8(&m.in);

		fuzz_op_index++;
		switch (op % 12) {
		case 0:
		case 1:
		case 2: {
			size_t sz = pick_size(&m.in);
			uint8_t kind = fin_u8(&m.in);

			do_malloc(sz, kind, fin_u32(&m.in));
			break;
		}
		case 3:
		case 4:
			i = fin_u8(&m.in);
			if (!m.nobjs)
				break;
			i %= m.nobjs;
			check_obj(&m.objs[i], "before free");
			FUZZ_TRACE("free owner %llu",
				   (unsigned long long)m.objs[i].owner);
			zpool_free(m.pool, m.objs[i].handle);
			forget(i);
			break;
		case 5:
			i = fin_u8(&m.in);
			if (m.nobjs)
				check_obj(&m.objs[i % m.nobjs], "read");
			break;
		case 6: {
			uint16_t off = fin_u16(&m.in), len = fin_u16(&m.in);
			uint8_t x = fin_u8(&m.in) | 1;
			struct obj *o;
			unsigned char *p;

			i = fin_u8(&m.in);
			if (!m.nobjs)
				break;
			o = &m.objs[i % m.nobjs];
			off %= o->size;
			len = (uint16_t)(1 + len % (o->size - off));
			p = zpool_map_handle(m.pool, o->handle, ZPOOL_MM_RW);
			FUZZ_CHECK(p != NULL, "RW map returned NULL");
			FUZZ_CHECK(memcmp(p, o->data, o->size) == 0,
				   "RW map of %#lx does not show its bytes",
				   o->handle);
			for (size_t k = off; k < (size_t)off + len; k++) {
				p[k] ^= x;
				o->data[k] ^= x;
			}
			zpool_unmap_handle(m.pool, o->handle);
			break;
		}
		case 7: {
			uint8_t kind = fin_u8(&m.in);
			uint32_t seed = fin_u32(&m.in);
			struct obj *o;
			void *p;

			i = fin_u8(&m.in);
			if (!m.nobjs)
				break;
			o = &m.objs[i % m.nobjs];
			fill(o->data, o->size, kind, seed);
			p = zpool_map_handle(m.pool, o->handle, ZPOOL_MM_WO);
			FUZZ_CHECK(p != NULL, "WO map returned NULL");
			memcpy(p, o->data, o->size);
			zpool_unmap_handle(m.pool, o->handle);
			break;
		}
		case 8: {
			/* One read per statement: argument order is
			 * unspecified, inputs must replay the same with any
			 * compiler. */
			size_t kib = fin_u8(&m.in);

			do_shrink(kib * 1024 + fin_u8(&m.in));
			verify_all("after shrink");
			break;
		}
		case 9: {
			uint64_t before = zpool_get_total_size(m.pool), after;

			pages = zpool_compact(m.pool);
			after = zpool_get_total_size(m.pool);
			FUZZ_TRACE("compact -> %ld, total %llu -> %llu", pages,
				   (unsigned long long)before,
				   (unsigned long long)after);
			/* The pages it says it gave back are gone from the
			 * total, and moving objects never grows the pool. */
			FUZZ_CHECK(pages <= 0 ||
					   before - after >=
						   (uint64_t)pages * 4096,
				   "compact says %ld pages, the total went from "
				   "%llu to %llu",
				   pages, (unsigned long long)before,
				   (unsigned long long)after);
			FUZZ_CHECK(after <= before,
				   "compact grew the pool from %llu to %llu",
				   (unsigned long long)before,
				   (unsigned long long)after);
			if (strcmp(ZPOOL_BACKEND, ZPOOL_TYPE_ZBUD) == 0)
				FUZZ_CHECK(pages == -EOPNOTSUPP,
					   "zbud compact returned %ld", pages);
			else
				FUZZ_CHECK(pages >= 0, "compact returned %ld",
					   pages);
			verify_all("after compact");
			break;
		}
		case 10:
			verify_all("verify");
			break;
		case 11:
			r = zpool_malloc(m.pool, 0, 1, &handle);
			FUZZ_CHECK(r == -EINVAL, "malloc(0) returned %d", r);
			r = zpool_malloc(m.pool, ZPOOL_MAX_SIZE + 1, 1, &handle);
			FUZZ_CHECK(r == -EINVAL, "malloc(MAX + 1) returned %d",
				   r);
			zpool_free(m.pool, 0); /* ignored */
			break;
		}
	}

	fuzz_op_index++;
	verify_all("at the end");
	while (m.nobjs) {
		zpool_free(m.pool, m.objs[m.nobjs - 1].handle);
		forget(m.nobjs - 1);
	}
	total = zpool_get_total_size(m.pool);
	FUZZ_CHECK(total <= base + EMPTY_SLACK,
		   "every object freed, but the pool holds %llu bytes (it "
		   "started with %llu)",
		   (unsigned long long)total, (unsigned long long)base);
	zpool_destroy_pool(m.pool);
	m.pool = NULL;
	return 0;
}
