/* SPDX-License-Identifier: MIT */
/*
 * zramd_stats.h - the counters of a device and its stats file format
 *
 * Shared by the plugin, which writes the stats file, and zramd-stat, which
 * reads it, so that the two cannot disagree on a name.
 *
 * The stats file is text, rewritten atomically (write a temporary file in
 * the same directory, then rename) every few seconds and at exit:
 *
 *   # zramd stats v1
 *   version 1
 *   allocator zsmalloc
 *   disksize 1073741824
 *   orig_data_size 0
 *   ...
 *
 * One "key value" pair per line, the value a decimal unsigned 64-bit
 * integer except for "allocator". Lines beginning with '#' are comments.
 * Readers must ignore keys they do not know (new counters may be added in
 * the same version) and must refuse a file whose version they do not know.
 * The meanings follow zram's mm_stat, io_stat and bd_stat.
 */
#ifndef ZRAMD_STATS_H
#define ZRAMD_STATS_H

#define ZRAMD_STATS_VERSION 1

/* The type and unit columns of ZRAMD_STATS(), as values a reader can test. */
enum zramd_stat_type { ZRAMD_TYPE_GAUGE, ZRAMD_TYPE_COUNTER };
enum zramd_stat_unit {
	ZRAMD_UNIT_BYTES,
	ZRAMD_UNIT_SECTORS,
	ZRAMD_UNIT_EVENTS
};

/*
 * X(name, type, unit, description) — in file order.
 *
 *   type  GAUGE: a level that goes up and down (sizes, current counts);
 *         COUNTER: a total since start that only grows.
 *   unit  BYTES, SECTORS (4 KiB sectors of the device) or EVENTS.
 *
 * Every new counter states both, so that readers (zramd-stat's table,
 * --json and the Prometheus exposition) need no list of their own.
 */
#define ZRAMD_STATS(X)                                                        \
	X(disksize, GAUGE, BYTES, "virtual size of the device")               \
	X(orig_data_size, GAUGE, BYTES,                                       \
	  "uncompressed bytes stored (holes excluded)")                       \
	X(compr_data_size, GAUGE, BYTES, "compressed bytes stored")           \
	X(mem_used_total, GAUGE, BYTES,                                       \
	  "bytes of memory the pool holds from the OS")                       \
	X(mem_limit, GAUGE, BYTES,                                            \
	  "the most memory the pool may hold (0: no limit)")                  \
	X(mem_used_max, GAUGE, BYTES, "the highest mem_used_total seen")      \
	X(same_pages, GAUGE, SECTORS,                                         \
	  "sectors stored as one repeated 8-byte word")                       \
	X(pages_compacted, COUNTER, EVENTS, "pages freed by compaction")      \
	X(huge_pages, GAUGE, SECTORS, "sectors stored uncompressed")          \
	X(num_reads, COUNTER, EVENTS, "read requests served")                 \
	X(num_writes, COUNTER, EVENTS, "write requests stored")               \
	X(failed_reads, COUNTER, EVENTS, "reads that failed")                 \
	X(failed_writes, COUNTER, EVENTS, "writes that failed")               \
	X(invalid_io, COUNTER, EVENTS, "requests refused as invalid")         \
	X(notify_free, COUNTER, SECTORS,                                      \
	  "sectors freed by trim or write-zeroes")                            \
	X(bd_count, GAUGE, SECTORS, "sectors currently on the backing file")  \
	X(bd_reads, COUNTER, SECTORS,                                         \
	  "sectors read back from the backing file")                          \
	X(bd_writes, COUNTER, SECTORS, "sectors written to the backing file") \
	X(bd_failed, COUNTER, EVENTS,                                         \
	  "writebacks to the backing file that failed")                       \
	X(bd_checksum_errors, COUNTER, EVENTS,                                \
	  "backing-file reads that failed their checksum")                    \
	X(bd_io_errors, COUNTER, EVENTS,                                      \
	  "backing-file reads that failed with an I/O error")                 \
	X(evict_limit, COUNTER, SECTORS,                                      \
	  "sectors evicted because of mem_limit")                             \
	X(evict_psi, COUNTER, SECTORS,                                        \
	  "sectors evicted because of memory pressure (PSI)")                 \
	X(evict_cgroup, COUNTER, SECTORS,                                     \
	  "sectors evicted because of the cgroup memory limit")               \
	X(evict_idle, COUNTER, SECTORS,                                       \
	  "sectors evicted because they were idle")                           \
	X(hot_sectors, GAUGE, SECTORS,                                        \
	  "sectors in the hot tier: one pool object each")                    \
	X(hot_bytes, GAUGE, BYTES, "compressed bytes of hot objects")         \
	X(packed_sectors, GAUGE, SECTORS,                                     \
	  "sectors in the cold tier: in zstd packs in the pool")              \
	X(pack_bytes, GAUGE, BYTES, "bytes of pack objects in the pool")      \
	X(pack_dead_bytes, GAUGE, BYTES,                                      \
	  "of pack_bytes, the share of overwritten or trimmed slots")         \
	X(packs, GAUGE, EVENTS, "packs in the pool")                          \
	X(recompressions, COUNTER, SECTORS,                                   \
	  "sectors recompressed into packs")                                  \
	X(pack_reads, COUNTER, SECTORS, "packed sectors read (decompressed)") \
	X(repacks, COUNTER, EVENTS,                                           \
	  "sparse packs emptied into new ones")

#endif /* ZRAMD_STATS_H */
