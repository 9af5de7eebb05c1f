#!/usr/bin/env bash
# The cold tier through nbdkit: with recompress_idle=1, data left alone is
# packed (packed_sectors, packs, pack_bytes, recompressions in the stats
# file), its pool memory shrinks, and it reads back byte for byte (counted
# in pack_reads); overwriting packed sectors makes them hot again and
# leaves dead bytes; pack_sectors bounds the packs; compressor=zstd serves
# the same bytes; recompress=off packs nothing.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh
requires nbdcopy
# zramd-stat is built next to the plugin.
: "${ZRAMD_STAT:=$(dirname "$PLUGIN_SO")/zramd-stat}"

# Up to 4 MiB of real files (headers, licences, programs): compressible, not
# trivially.
tar cf - /usr/include /usr/share/common-licenses /bin 2>/dev/null | head -c $((4 << 20)) >"$TMP/data"
size=$(stat -c %s "$TMP/data")
secs=$((size / 4096))
[ "$secs" -ge 256 ] || { skip "too little data in /usr/include and /bin"; finish; }

for alloc in $(allocators); do
	start_zramd size=16M allocator="$alloc" recompress=zstd:3 \
		recompress_idle=1 || {
		not_ok "$alloc: start"
		continue
	}
	nbdcopy "$TMP/data" "$URI"
	check "$alloc: stored" wait_stat orig_data_size -gt 0
	before=$(stat_value mem_used_total)
	# A pass a second marks, the next packs: well within wait_stat's 10 s.
	check "$alloc: idle sectors are packed" wait_stat packed_sectors -gt $((secs / 4))
	check "$alloc: packs counted" wait_stat packs -gt 0
	check "$alloc: recompressions counted" wait_stat recompressions -gt $((secs / 4))
	# pack_sectors=64 by default: packs of 16 sectors or fewer (the size
	# before it) would fail this.
	check "$alloc: packs of more than 16 sectors on average" \
		bash -c '[ "$1" -gt $((16 * $2)) ]' _ \
		"$(stat_value packed_sectors)" "$(stat_value packs)"
	check "$alloc: compr_data_size = hot_bytes + pack_bytes" \
		test "$(stat_value compr_data_size)" -eq \
		$(($(stat_value hot_bytes) + $(stat_value pack_bytes)))
	check "$alloc: less pool memory once packed" \
		wait_stat mem_used_total -lt "$before"
	check "$alloc: reads back byte for byte" \
		bash -c 'nbdcopy "$1" "$2" && cmp -n "$3" "$2" "$4"' _ \
		"$URI" "$TMP/out" "$size" "$TMP/data"
	check "$alloc: reads of packed sectors counted" \
		wait_stat pack_reads -gt 0
	# Overwrite the first 64 KiB (packed, if idle since): hot again.
	nbdsh -u "$URI" -c "h.pwrite(b'hot!' * 16384, 0)"
	check "$alloc: an overwrite reads back" \
		nbdsh -u "$URI" -c "assert h.pread(65536, 0) == b'hot!' * 16384" \
		-c "assert h.pread(4096, 65536) == open('$TMP/data','rb').read()[65536:65536+4096]"
	if [ ! -x "$ZRAMD_STAT" ]; then
		skip "$alloc: zramd-stat: $ZRAMD_STAT not built"
	else
	check "$alloc: zramd-stat shows the cold tier" \
		bash -c '"$1" "$2" | head -n 1 | grep -q "COLD *PACKED"' _ \
		"$ZRAMD_STAT" "$STATS"
	check "$alloc: zramd-stat --json carries packed_sectors" \
		bash -c '"$1" --json "$2" | grep -q "\"packed_sectors\": [1-9]"' _ \
		"$ZRAMD_STAT" "$STATS"
	fi
	check_stop "$alloc"
done

# pack_sectors from a config file: no pack holds more.
printf 'size = 16M\nrecompress = zstd:1\nrecompress_idle = 1\npack_sectors = 4\n' \
	>"$TMP/small.conf"
if start_zramd config="$TMP/small.conf"; then
	nbdcopy "$TMP/data" "$URI"
	check "pack_sectors=4: idle sectors are packed" \
		wait_stat packed_sectors -gt $((secs / 4))
	check "pack_sectors=4: no pack holds more than 4 sectors" \
		bash -c '[ "$1" -le $((4 * $2)) ]' _ \
		"$(stat_value packed_sectors)" "$(stat_value packs)"
	check "pack_sectors=4: reads back byte for byte" \
		bash -c 'nbdcopy "$1" "$2" && cmp -n "$3" "$2" "$4"' _ \
		"$URI" "$TMP/out" "$size" "$TMP/data"
	check_stop "pack_sectors=4"
else
	not_ok "pack_sectors=4: start"
fi
printf 'size = 16M\npack_sectors = 65\n' >"$TMP/bad.conf"
check "pack_sectors=65: refused with one message" \
	bash -c 'nbdkit -U - --run true "$1" config="$2" 2>&1 | grep -q "pack_sectors = 65: out of range\|pack_sectors=65: out of range"' _ \
	"$PLUGIN_SO" "$TMP/bad.conf"

# compressor=zstd (hot path) from a config file, the cold tier off.
printf 'size = 16M\ncompressor = zstd:1\nrecompress = off\nrecompress_idle = 1\n' \
	>"$TMP/cold.conf"
if start_zramd config="$TMP/cold.conf"; then
	nbdcopy "$TMP/data" "$URI"
	check "compressor=zstd: stored" wait_stat orig_data_size -gt 0
	check "compressor=zstd: reads back byte for byte" \
		bash -c 'nbdcopy "$1" "$2" && cmp -n "$3" "$2" "$4"' _ \
		"$URI" "$TMP/out" "$size" "$TMP/data"
	sleep 3
	check "recompress=off: nothing packed" \
		test "$(stat_value packed_sectors)" -eq 0
	check "recompress=off: every sector hot" \
		test "$(stat_value hot_sectors)" -gt $((secs / 2))
	check_stop "compressor=zstd"
else
	not_ok "compressor=zstd: start"
fi
finish
