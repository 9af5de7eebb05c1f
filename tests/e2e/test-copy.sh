#!/usr/bin/env bash
# Copy real data (a tar of system files, ~160 MiB, made once and cached) in
# and out with nbdcopy, for every allocator, and compare it byte for byte.
# Prints the compression figures from the stats file.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdcopy

tar=$(realdata_tar)
size=$(stat -c %s "$tar")
echo "real data: $tar, $size bytes"

for alloc in $(allocators); do
	start_zramd size=256M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	check "$alloc: nbdcopy in" nbdcopy "$tar" "$URI"
	check "$alloc: nbdcopy out" nbdcopy "$URI" "$TMP/out.img"
	check "$alloc: the copy equals the original" \
		cmp -n "$size" "$tar" "$TMP/out.img"
	check "$alloc: the rest of the device reads zero" \
		cmp -i "$size" "$TMP/out.img" /dev/zero -n $(((256 << 20) - size))
	rm -f "$TMP/out.img"
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$ZRAMD_PID"/status)
	check_stop "$alloc"
	# The stats file now holds the final counters.
	orig=$(stat_value orig_data_size) compr=$(stat_value compr_data_size)
	total=$(stat_value mem_used_total)
	echo "$alloc: orig_data_size=$orig compr_data_size=$compr" \
		"mem_used_total=$total same_pages=$(stat_value same_pages)" \
		"huge_pages=$(stat_value huge_pages) nbdkit_rss_kib=$rss" \
		"ratio=$(awk "BEGIN {printf \"%.2f\", $orig / ($total ? $total : 1)}")"
	check "$alloc: orig_data_size counts the data (holes excluded)" \
		test "$orig" -gt $((size / 2)) -a "$orig" -le $((size + 4096))
	check "$alloc: the data compressed" test "$compr" -lt "$orig"
	check "$alloc: the pool holds the compressed data" \
		test "$total" -ge "$compr"
done
finish
