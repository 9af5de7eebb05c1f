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

/* X(name, description) — in file order. Sizes are in bytes. */
#define ZRAMD_STATS(X)                                                        \
	X(disksize, "virtual size of the device")                             \
	X(orig_data_size, "uncompressed bytes stored (holes excluded)")       \
	X(compr_data_size, "compressed bytes stored")                         \
	X(mem_used_total, "bytes of memory the pool holds from the OS")       \
	X(mem_limit, "the most memory the pool may hold (0: no limit)")       \
	X(mem_used_max, "the highest mem_used_total seen")                    \
	X(same_pages, "sectors stored as one repeated 8-byte word")           \
	X(pages_compacted, "pages freed by compaction")                       \
	X(huge_pages, "sectors stored uncompressed")                          \
	X(failed_reads, "reads that failed")                                  \
	X(failed_writes, "writes that failed")                                \
	X(invalid_io, "requests refused as invalid")                          \
	X(notify_free, "sectors freed by trim or write-zeroes")               \
	X(bd_count, "sectors currently on the backing file")                  \
	X(bd_reads, "sectors read back from the backing file")                \
	X(bd_writes, "sectors written to the backing file")                   \
	X(bd_failed, "writebacks to the backing file that failed")            \
	X(bd_checksum_errors, "backing-file reads that failed their checksum") \
	X(evict_limit, "sectors evicted because of mem_limit")                \
	X(evict_psi, "sectors evicted because of memory pressure (PSI)")      \
	X(evict_cgroup, "sectors evicted because of the cgroup memory limit") \
	X(evict_idle, "sectors evicted because they were idle")

#endif /* ZRAMD_STATS_H */
