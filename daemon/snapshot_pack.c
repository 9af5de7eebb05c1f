/* SPDX-License-Identifier: MIT */
/*
 * snapshot_pack.c - a cold-tier pack from a snapshot's PACK record
 *
 * A PACK (or PACK_EVICTED) record holds one pack as it was: its slot
 * list and its object byte for byte (include/zramd_snapshot.h). The
 * record is checked whole before any of it is used, since the pack's
 * header decides which sectors it fills: the slot count against this
 * build's PACK_MAX_SLOTS, the object's header, sector list and whole
 * frame (pack_decode(): exactly N * 4096 bytes), the slot words against
 * the object's sectors, every sector inside the device, and the record's
 * sector being the last live slot's. Then the pack is made as the cold
 * tier's pass makes one (recompress.c: whole-page chunks and a tail,
 * owner ZDEV_OWNER_PACK, live = references = the live slots)
 * and counted in the gauges as the pass and the slots' deaths since
 * counted it (zdev_pack_adopt()); the live slots' entries are installed,
 * each into an empty entry, so that a sector named twice in the file is
 * found. Where it goes follows the objects' rule (snapshot_load.c): the
 * pool, or the backing file if it was there at the stop or the pool is
 * at mem_limit; a pack object longer than this build's packs can be
 * (more than PACK_CHUNKS_MAX chunks) gets its live sectors as hot
 * objects. The design is in snapshot.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "device.h"
#include "device_internal.h"
#include "pack.h"
#include "sectors.h"
#include "snapshot_internal.h"
#include "zpool.h"
#include "zramd_snapshot.h"

/*
 * Place the checked pack object @obj (@len bytes, @n slots, @nlive of
 * them live, the first at @base) in the pool as the pass makes packs, or on the
 * backing file if it was there (@evicted) or the pool is at mem_limit. Return:
 * the descriptor (entries not yet made), or NULL with *ret set: -ENOSPC (does
 * not fit, no backing file), -E2BIG (this device cannot hold it as a pack: the
 * caller unpacks it), another errno.
 */
static struct pack *place_pack(struct zdev *dev, const unsigned char *obj,
			       size_t len, unsigned int n, uint64_t base,
			       unsigned int nlive, bool evicted, int *ret)
{
	unsigned int nch = pack_nchunks(len);
	bool can_back = dev->has_backing && dev->backing.store_pack;
	uint64_t slot[PACK_CHUNKS_MAX];
	struct pack *pk;
	uint64_t total;
	unsigned int i;
	int r;

	/* Cut as the pass cuts them; longer than this build's packs: no. */
	if (nch > PACK_CHUNKS_MAX) {
		*ret = -E2BIG;
		return NULL;
	}
	pk = pack_alloc(nch);
	if (!pk) {
		*ret = -ENOMEM;
		return NULL;
	}
	pk->len = (uint32_t)len;
	pk->nslots = (uint16_t)n;
	pk->base = base;
	pk->live = nlive;
	pk->refs = nlive;
	if (!(evicted && can_back)) {
		r = zdev_pack_to_pool(dev, pk, obj);
		total = zpool_get_total_size(dev->pool);
		if (r == 0 && (!dev->mem_limit || total <= dev->mem_limit)) {
			zstat_max(&dev->live, ZSTAT_mem_used_max, total);
			return pk;
		}
		if (r == 0)
			for (i = 0; i < nch; i++)
				zpool_free(dev->pool,
					   (unsigned long)*pack_where(pk, i));
		if (!dev->has_backing) {
			pack_free(pk);
			*ret = -ENOSPC;
			return NULL;
		}
		if (!can_back) { /* objects can still go there */
			pack_free(pk);
			*ret = -E2BIG;
			return NULL;
		}
	}
	/* As zdev_evict_packs(): one record per chunk, all or none. */
	r = zdev_pack_to_backing(dev, pk, obj, slot);
	if (r < 0) {
		pack_free(pk);
		*ret = r;
		return NULL;
	}
	for (i = 0; i < nch; i++)
		*pack_where(pk, i) = slot[i];
	pk->on_backing = 1;
	zstat_add(&dev->live, ZSTAT_bd_writes, nch);
	return pk;
}

/* snapshot_internal.h */
int snap_load_pack(struct zdev *dev, uint64_t sector, uint64_t word,
		   const unsigned char *p, uint32_t len, bool evicted,
		   unsigned char *data, struct snap_pack_fault *f)
{
	uint64_t nsectors = sect_nsectors(dev->tab), secs[PACK_MAX_SLOTS];
	bool live[PACK_MAX_SLOTS];
	unsigned int n, nlive = 0, done = 0, i;
	const unsigned char *obj;
	uint64_t last = 0;
	struct pack *pk;
	size_t olen;
	int r = 0;

	if (word == 0 || word > PACK_MAX_SLOTS) {
		snprintf(f->what, sizeof(f->what),
			 "a pack of %" PRIu64 " slots; this zramd holds "
			 "packs of 1..%u (PACK_MAX_SLOTS)",
			 word, PACK_MAX_SLOTS);
		return -EINVAL;
	}
	n = (unsigned int)word;
	if (len <= 8u * n || len - 8u * n > PACK_OBJ_MAX) {
		snprintf(f->what, sizeof(f->what),
			 "a pack record of %" PRIu32 " bytes for %u slots "
			 "(the object must be 1..%u bytes)",
			 len, n, PACK_OBJ_MAX);
		return -EINVAL;
	}
	obj = p + 8u * n;
	olen = len - 8u * n;
	/* The object's header, sector list and whole frame: N * 4096 bytes
	 * exactly, or it is not trusted (pack_decode()). */
	if (pack_decode(obj, olen, secs, data) != (int)n) {
		snprintf(f->what, sizeof(f->what),
			 "a pack object that does not decode to its %u slots",
			 n);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		uint64_t w = snap_get64(p + 8u * i);

		if ((w & ~ZSNAP_SLOT_DEAD) != secs[i] || secs[i] >= nsectors) {
			snprintf(f->what, sizeof(f->what),
				 "pack slot %u: sector %" PRIu64 " is not the "
				 "object's %" PRIu64 " or past the end",
				 i, w & ~ZSNAP_SLOT_DEAD, secs[i]);
			return -EINVAL;
		}
		live[i] = !(w & ZSNAP_SLOT_DEAD);
		if (live[i]) {
			nlive++;
			last = secs[i];
		}
	}
	if (!nlive || last != sector) {
		snprintf(f->what, sizeof(f->what),
			 "a pack record at sector %" PRIu64 " whose last live "
			 "slot is %s",
			 sector, nlive ? "elsewhere" : "missing (none live)");
		return -EINVAL;
	}

	pk = place_pack(dev, obj, olen, n, secs[0], nlive, evicted, &r);
	if (!pk && r == -E2BIG) {
		/* This device cannot hold it as a pack: its live sectors
		 * become objects of its hot codec. */
		for (i = 0; i < n; i++) {
			if (!live[i])
				continue;
			r = snap_load_object(dev, secs[i],
					     data + (size_t)i * SECT_SIZE,
					     SECT_LEN_RAW, ZSNAP_CODEC_NONE,
					     evicted);
			if (r < 0) {
				f->sector = secs[i];
				return r;
			}
		}
		f->live = nlive;
		f->kept = false;
		return 0;
	}
	if (!pk) {
		f->sector = sector;
		return r;
	}
	zdev_pack_adopt(dev, pk);
	for (i = 0; i < n && r == 0; i++) {
		if (!live[i])
			continue;
		r = snap_install(dev, secs[i],
				 sect_make(SECT_PACKED, pack_entry_val(pk, i),
					   0));
		if (r < 0)
			f->sector = secs[i];
		else
			done++;
	}
	if (r < 0) {
		/* The slots not made are dead; the last frees the pack. */
		for (unsigned int k = done; k < nlive; k++)
			zdev_pack_kill_slot(dev, pk);
		return r;
	}
	f->live = nlive;
	f->kept = true;
	return 0;
}
