/* SPDX-License-Identifier: MIT */
/*
 * sectors.c - the sparse, lock-striped sector table
 *
 * Why: a device may be as large as 2^63-1 bytes (2^51 sectors) and is
 * usually almost empty, so a flat array is out of the question; yet every
 * request looks up entries, so the lookup must be a few pointer loads with
 * no global lock. This is a radix tree whose interior nodes are allocated
 * on demand and whose leaves hold the entries:
 *
 *   root (2^k slots, k <= 9) --> node (512 slots) --> ... --> leaf
 *                                                         +-----------------+
 *                                                         | used            |
 *                                                         | val[512]  u64   |
 *                                                         | meta[512] u16   |
 *                                                         +-----------------+
 *
 * A leaf covers 512 sectors (2 MiB of device) and costs 5128 bytes, so a
 * densely written region costs 10 bytes per sector and 0.25% on top of
 * 4 KiB; the worst case, one sector written per leaf, costs a whole leaf.
 * The depth follows the device size: a 1 GiB device has a root of 512 leaf
 * slots and nothing else; an idle 1 TiB device has a 2-slot root; an 8 EiB
 * one has five levels. Interior nodes (4 KiB) are created with a
 * compare-and-swap and never freed before the table is, which makes them
 * safe to walk without a lock; leaves are freed as soon as their last entry
 * becomes empty, so trimming gives the memory back.
 *
 * The entry is split in two arrays, a 64-bit value and a 16-bit meta word
 * (see sectors.h), because the value of a same-filled sector is a full
 * 64-bit word and a pool handle is an opaque unsigned long: neither leaves
 * room for a tag. Ten bytes per sector buys freedom from any assumption on
 * handle values.
 *
 * Locking: a leaf, its entries, and the bottom-level slot that points to it
 * are protected by the mutex of the leaf's stripe (SECT_NSTRIPES stripes,
 * picked by a multiplicative hash of the leaf number). Slot pointers are
 * read and written with atomics, so sect_scan() can skip missing leaves
 * without taking their locks; it then re-reads the slot under the lock.
 * Interior node pointers are published with release/acquire ordering.
 *
 * Limits: a request touching N leaves takes N lock round trips (one per
 * sector, in fact, for reads and writes; see device.c). With 1024 stripes
 * and two worker threads doing 4 KiB random I/O over 1 GiB, two requests
 * hit the same stripe about once in a thousand, and a hold is a table
 * update, never a compression.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sectors.h"

#define NODE_SHIFT 9
#define NODE_SLOTS (1u << NODE_SHIFT)
#define NODE_MASK  (NODE_SLOTS - 1)

_Static_assert(SECT_LEAF_SECTORS <= UINT32_MAX, "leaf too big to count");
_Static_assert(sizeof(struct sect_stripe) % 64 == 0, "stripe padding");

struct sect_node {
	void *slot[NODE_SLOTS];
};

struct sect_table {
	uint64_t nsectors;
	uint64_t nleaves;
	unsigned int levels;	 /* interior levels, >= 1; the root is one */
	unsigned int root_shift; /* leaf number >> root_shift = root index */
	size_t root_slots;
	void **root;
	uint64_t nodes;		/* interior nodes, atomic */
	uint64_t leaves;	/* leaves, atomic */
	struct sect_stripe stripes[SECT_NSTRIPES];
};

static inline struct sect_stripe *stripe_of(struct sect_table *t,
					    uint64_t leafno)
{
	uint64_t h = leafno * UINT64_C(0x9e3779b97f4a7c15);

	return &t->stripes[h >> (64 - 10)];
}
_Static_assert(SECT_NSTRIPES == 1u << 10, "stripe_of() takes 10 bits");

struct sect_table *sect_create(uint64_t nsectors)
{
	struct sect_table *t;
	unsigned int bits = 0;
	uint64_t nleaves;

	if (nsectors > SECT_MAX_SECTORS) {
		errno = EINVAL;
		return NULL;
	}
	nleaves = (nsectors + SECT_LEAF_SECTORS - 1) >> SECT_LEAF_SHIFT;
	if (nleaves == 0)
		nleaves = 1;
	while (bits < 64 && (UINT64_C(1) << bits) < nleaves)
		bits++;

	if (posix_memalign((void **)&t, 64, sizeof(*t)) != 0) {
		errno = ENOMEM;
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->nsectors = nsectors;
	t->nleaves = nleaves;
	t->levels = bits <= NODE_SHIFT ? 1 : (bits + NODE_SHIFT - 1) / NODE_SHIFT;
	t->root_shift = NODE_SHIFT * (t->levels - 1);
	t->root_slots = (size_t)((nleaves - 1) >> t->root_shift) + 1;
	t->root = calloc(t->root_slots, sizeof(void *));
	if (!t->root) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int i = 0; i < SECT_NSTRIPES; i++)
		pthread_mutex_init(&t->stripes[i].lock, NULL);
	return t;
}

static void free_subtree(void **slots, size_t n, unsigned int level)
{
	for (size_t i = 0; i < n; i++) {
		if (!slots[i])
			continue;
		if (level > 0) {
			struct sect_node *node = slots[i];

			free_subtree(node->slot, NODE_SLOTS, level - 1);
		}
		free(slots[i]);
	}
}

void sect_destroy(struct sect_table *t)
{
	if (!t)
		return;
	free_subtree(t->root, t->root_slots, t->levels - 1);
	free(t->root);
	for (unsigned int i = 0; i < SECT_NSTRIPES; i++)
		pthread_mutex_destroy(&t->stripes[i].lock);
	free(t);
}

uint64_t sect_nsectors(const struct sect_table *t)
{
	return t->nsectors;
}

/*
 * The bottom-level slot of leaf @leafno. With @create, missing interior
 * nodes are made; otherwise NULL is returned if one is missing, and
 * *@skip_to is set to the first leaf number past the missing subtree.
 */
static struct sect_leaf **find_slot(struct sect_table *t, uint64_t leafno,
				    bool create, uint64_t *skip_to)
{
	void **slots = t->root;
	unsigned int shift = t->root_shift;
	size_t idx = (size_t)(leafno >> shift);

	for (unsigned int lvl = t->levels - 1; lvl > 0; lvl--) {
		/*
		 * A slot is a void * (it holds a node or, at the bottom, a
		 * leaf), so the value the CAS expects is one too.
		 */
		void **pp = &slots[idx];
		void *child = __atomic_load_n(pp, __ATOMIC_ACQUIRE);

		if (!child) {
			struct sect_node *fresh;

			if (!create) {
				if (skip_to)
					*skip_to = ((leafno >> shift) + 1)
						   << shift;
				return NULL;
			}
			fresh = calloc(1, sizeof(*fresh));
			if (!fresh)
				return NULL;
			if (__atomic_compare_exchange_n(pp, &child, fresh, false,
							__ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE)) {
				child = fresh;
				__atomic_fetch_add(&t->nodes, 1,
						   __ATOMIC_RELAXED);
			} else {
				free(fresh); /* child is the winner's node */
			}
		}
		slots = ((struct sect_node *)child)->slot;
		shift -= NODE_SHIFT;
		idx = (size_t)((leafno >> shift) & NODE_MASK);
	}
	return (struct sect_leaf **)&slots[idx];
}

void sect_lock(struct sect_table *t, uint64_t sector, struct sect_ref *ref)
{
	uint64_t leafno = sector >> SECT_LEAF_SHIFT;

	ref->stripe = stripe_of(t, leafno);
	ref->leafno = leafno;
	ref->idx = (unsigned int)(sector & (SECT_LEAF_SECTORS - 1));
	pthread_mutex_lock(&ref->stripe->lock);
	ref->slot = find_slot(t, leafno, false, NULL);
	ref->leaf = ref->slot ? __atomic_load_n(ref->slot, __ATOMIC_RELAXED)
			      : NULL;
}

void sect_unlock(struct sect_ref *ref)
{
	pthread_mutex_unlock(&ref->stripe->lock);
}

int sect_ref_set(struct sect_table *t, struct sect_ref *ref,
		 struct sect_entry e)
{
	struct sect_leaf *leaf = ref->leaf;
	bool was_used, now_used = sect_state(e) != SECT_EMPTY;

	if (!leaf) {
		if (!now_used)
			return 0;
		if (!ref->slot) {
			ref->slot = find_slot(t, ref->leafno, true, NULL);
			if (!ref->slot)
				return -ENOMEM;
		}
		leaf = calloc(1, sizeof(*leaf));
		if (!leaf)
			return -ENOMEM;
		__atomic_store_n(ref->slot, leaf, __ATOMIC_RELEASE);
		__atomic_fetch_add(&t->leaves, 1, __ATOMIC_RELAXED);
		ref->leaf = leaf;
	}
	was_used = (leaf->meta[ref->idx] >> SECT_STATE_SHIFT) & 3;
	leaf->val[ref->idx] = now_used ? e.val : 0;
	leaf->meta[ref->idx] = now_used ? e.meta : 0;
	if (now_used && !was_used) {
		leaf->used++;
	} else if (!now_used && was_used && --leaf->used == 0) {
		__atomic_store_n(ref->slot, NULL, __ATOMIC_RELAXED);
		__atomic_fetch_sub(&t->leaves, 1, __ATOMIC_RELAXED);
		free(leaf);
		ref->leaf = NULL;
	}
	return 0;
}

void sect_ref_set_flag(struct sect_ref *ref, uint16_t flag, bool on)
{
	if (!ref->leaf)
		return;
	if (on)
		ref->leaf->meta[ref->idx] |= flag;
	else
		ref->leaf->meta[ref->idx] &= (uint16_t)~flag;
}

/* The state of sect_scan(): a pending run of empty sectors. */
struct scan {
	sect_scan_fn fn;
	void *arg;
	uint64_t empty_start, empty_count;
};

static int flush_empty(struct scan *s)
{
	int r = 0;

	if (s->empty_count)
		r = s->fn(s->arg, s->empty_start, s->empty_count,
			  SECT_ENTRY_EMPTY);
	s->empty_count = 0;
	return r;
}

static void add_empty(struct scan *s, uint64_t sector, uint64_t count)
{
	if (!s->empty_count)
		s->empty_start = sector;
	s->empty_count += count;
}

static int scan_leaf(struct scan *s, struct sect_leaf *leaf, uint64_t from,
		     uint64_t to)
{
	unsigned int base = (unsigned int)(from & (SECT_LEAF_SECTORS - 1));

	for (uint64_t sec = from; sec < to; sec++) {
		unsigned int i = base + (unsigned int)(sec - from);
		struct sect_entry e = { leaf->val[i], leaf->meta[i] };
		int r;

		if (sect_state(e) == SECT_EMPTY) {
			add_empty(s, sec, 1);
			continue;
		}
		r = flush_empty(s);
		if (r == 0)
			r = s->fn(s->arg, sec, 1, e);
		if (r)
			return r;
	}
	return 0;
}

int sect_scan(struct sect_table *t, uint64_t start, uint64_t end,
	      sect_scan_fn fn, void *arg)
{
	struct scan s = { .fn = fn, .arg = arg };
	uint64_t sec = start;
	int r;

	if (end > t->nsectors)
		end = t->nsectors;
	while (sec < end) {
		uint64_t leafno = sec >> SECT_LEAF_SHIFT;
		uint64_t next = leafno + 1;
		struct sect_leaf **slot = find_slot(t, leafno, false, &next);
		uint64_t to = next << SECT_LEAF_SHIFT;

		if (to > end || to == 0)
			to = end;
		if (slot && __atomic_load_n(slot, __ATOMIC_RELAXED)) {
			struct sect_stripe *st = stripe_of(t, leafno);
			struct sect_leaf *leaf;

			pthread_mutex_lock(&st->lock);
			leaf = __atomic_load_n(slot, __ATOMIC_RELAXED);
			if (leaf)
				r = scan_leaf(&s, leaf, sec, to);
			else {
				add_empty(&s, sec, to - sec);
				r = 0;
			}
			pthread_mutex_unlock(&st->lock);
			if (r)
				return r;
		} else {
			add_empty(&s, sec, to - sec);
		}
		sec = to;
	}
	return flush_empty(&s);
}

void sect_sum_acct(struct sect_table *t, int64_t out[SECT_NACCT])
{
	memset(out, 0, sizeof(int64_t) * SECT_NACCT);
	for (unsigned int i = 0; i < SECT_NSTRIPES; i++) {
		struct sect_stripe *st = &t->stripes[i];

		pthread_mutex_lock(&st->lock);
		for (unsigned int j = 0; j < SECT_NACCT; j++)
			out[j] += st->acct[j];
		pthread_mutex_unlock(&st->lock);
	}
}

uint64_t sect_nleaves(const struct sect_table *t)
{
	return __atomic_load_n(&t->leaves, __ATOMIC_RELAXED);
}

uint64_t sect_mem_bytes(const struct sect_table *t)
{
	return sizeof(*t) + t->root_slots * sizeof(void *) +
	       __atomic_load_n(&t->nodes, __ATOMIC_RELAXED) *
		       sizeof(struct sect_node) +
	       sect_nleaves(t) * sizeof(struct sect_leaf);
}
