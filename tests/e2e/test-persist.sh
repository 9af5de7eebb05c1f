#!/usr/bin/env bash
# test-persist.sh - persist=PATH: a clean stop writes a snapshot, the next
# start brings the device back byte for byte (daemon/snapshot.c)
#
#   round trip   real, random, same-filled, trimmed, zeroed and unaligned
#                regions on each allocator, without and with a backing
#                file (a small mem_limit, so that part of the device is
#                evicted when it stops): every byte and the extents equal
#                after the restart; the snapshot is renamed to .consumed
#   cold tier    packs with dead slots (recompress_idle=1, then every 5th
#                packed sector written over) and zstd objects
#                (compressor=zstd) go out as they are: the file is about
#                the pool's size, far below the data decoded; every byte,
#                the extents and the cold tier's counters (packed_sectors,
#                packs, pack_bytes, pack_dead_bytes) come back equal
#                through restarts that change the hot codec (zstd:3,
#                zstd:1 keeping zstd objects as they are, lz4, zstd:3)
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
round_trip() {
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
}

# --- crash ----------------------------------------------------------------
crash() {
	L=crash
	snap=$TMP/crash.snap
	start_zramd size=$SIZE persist="$snap" && "${PY[@]}" "$SOCK" write "$REAL" 2 &&
		check_stop "$L: first run" && start_zramd size=$SIZE persist="$snap" &&
		"${PY[@]}" "$SOCK" write-more 3 || not_ok "$L: write, stop, start, write"
	check "$L: the snapshot was consumed at the start" \
		test ! -e "$snap" -a -s "$snap.consumed"
	kill -KILL "$ZRAMD_PID"
	wait "$ZRAMD_PID" 2>/dev/null
	# systemd hears it too (then a crash again: .consumed stays).
	/usr/bin/python3 "$E2E_DIR/notify_status.py" -U "$TMP/notify1.sock" \
		"$PLUGIN_SO" size=$SIZE persist="$snap" >"$TMP/status" 2>&1
	check "$L: STATUS= says why it is empty ($(tail -n 1 "$TMP/status"))" \
		grep -q "^STATUS=.*; started empty: the last run did not stop cleanly" "$TMP/status"
	# A write killed part-way leaves a temporary file: removed at start.
	echo partial >"$snap.tmp.AbC123"
	if start_zramd size=$SIZE persist="$snap"; then
		check "$L: a stale temporary file is removed at start" \
			test ! -e "$snap.tmp.AbC123"
		dump crash
		check "$L: the device is empty after kill -9 and a start" \
			cmp -s -n $((64 << 20)) "$TMP/crash.img" /dev/zero
		check "$L: one hole, no data extents" \
			test "$(cat "$TMP/crash.ext")" = "$((64 << 20)) 3"
		check "$L: the log says why it is empty" \
			grep -q "persist=$snap: started empty: the last run did not stop cleanly (crash or kill): the snapshot it loaded is now $snap.consumed" "$ZRAMD_LOG"
		check_stop "$L: the empty run"
		check "$L: a clean stop writes a snapshot and drops .consumed" \
			test -s "$snap" -a ! -e "$snap.consumed"
	else
		not_ok "$L: start after kill -9"
	fi
}

# --- corruption -----------------------------------------------------------
corruption() {
	# refused LABEL PATTERN [SIZE]: a start with persist=$TMP/bad.snap
	# fails, before it serves, with one error naming the file and matching
	# PATTERN, and leaves the file as it was.
	refused() {
		local label=$1 pattern=$2 size=${3:-$SIZE} sock=$TMP/refused.sock rc=0
		local sum
		sum=$(md5sum <"$TMP/bad.snap")
		nbdkit -f -U "$sock" "$PLUGIN_SO" size="$size" \
			persist="$TMP/bad.snap" >"$TMP/refused.log" 2>&1 || rc=$?
		check "corruption: $label: the start fails (exit $rc)" test $rc -ne 0
		check "corruption: $label: one message naming the file ($(grep -c error "$TMP/refused.log") error lines)" \
			test "$(grep -c "error: persist=$TMP/bad.snap: snapshot refused: $pattern" "$TMP/refused.log")" = 1 -a \
			"$(grep -c error "$TMP/refused.log")" = 1
		grep error "$TMP/refused.log" | head -n 1
		check "corruption: $label: nothing was served (no socket)" \
			test ! -e "$sock"
		check "corruption: $label: the file is left as it was" \
			test "$(md5sum <"$TMP/bad.snap")" = "$sum"
	}
	good=$TMP/good.snap
	start_zramd size=$SIZE persist="$good" && "${PY[@]}" "$SOCK" write "$REAL" 4 &&
		check_stop "corruption: make a snapshot" || not_ok "corruption: make a snapshot"
	gsize=$(stat -c %s "$good")
	# Loading reports progress to systemd (then a crash: it is consumed).
	cp "$good" "$TMP/progress.snap"
	/usr/bin/python3 "$E2E_DIR/notify_status.py" -U "$TMP/notify2.sock" \
		"$PLUGIN_SO" size=$SIZE persist="$TMP/progress.snap" \
		>"$TMP/status" 2>&1
	check "loading: STATUS= shows the progress ($(grep -c loading "$TMP/status") lines)" \
		grep -q "^STATUS=persist=$TMP/progress.snap: loading the snapshot: 50%" "$TMP/status"
	check "loading: STATUS= says it was loaded once serving" \
		grep -q "^STATUS=.*; loaded [0-9]* MiB from the snapshot in" "$TMP/status"
	flip() { # flip OFFSET: xor one byte of bad.snap with 0x01
		local b
		b=$(od -An -tu1 -j "$1" -N1 "$TMP/bad.snap" | tr -d ' ')
		printf "$(printf '\\%03o' $((b ^ 1)))" |
			dd of="$TMP/bad.snap" bs=1 seek="$1" conv=notrunc status=none
	}
	cp "$good" "$TMP/bad.snap"
	truncate -s $((gsize - 100)) "$TMP/bad.snap"
	refused "truncated" "cut short at byte"
	cp "$good" "$TMP/bad.snap"
	truncate -s $((gsize / 2)) "$TMP/bad.snap"
	refused "cut in half" "cut short at byte"
	cp "$good" "$TMP/bad.snap"
	flip $((64 + 32 + 100))
	refused "a byte flipped in the first record" "record 0 at byte 64: checksum mismatch"
	cp "$good" "$TMP/bad.snap"
	flip $((gsize / 2))
	refused "a byte flipped in the middle" "record [0-9]* at byte [0-9]*: checksum mismatch"
	cp "$good" "$TMP/bad.snap"
	flip 20
	refused "a header byte flipped (device size)" "header checksum mismatch"
	cp "$good" "$TMP/bad.snap"
	flip 8
	refused "another format version" "format version [0-9]*; this zramd reads versions 1 to 2"
	cp "$good" "$TMP/bad.snap"
	flip 0
	refused "not a snapshot (magic)" "not a zramd snapshot"
	cp "$good" "$TMP/bad.snap"
	flip $((gsize - 1))
	refused "the trailer flipped" "record [0-9]* at byte [0-9]*: checksum mismatch"
	cp "$good" "$TMP/bad.snap"
	echo x >>"$TMP/bad.snap"
	refused "bytes after the trailer" "bytes after the trailer"
	cp "$good" "$TMP/bad.snap"
	refused "another device size" "it holds a device of 67108864 bytes, this one is 134217728 bytes" 128M
	rm -f "$TMP/bad.snap"
	: >"$TMP/bad.snap"
	refused "an empty file" "cut short: 0 bytes"
}

# --- fault while writing --------------------------------------------------
# In a private mount namespace (the test runs itself again there), a
# small tmpfs holds the snapshot.
fault() {
	local dir=$TMP/fs snap
	snap=$dir/f.snap
	mkdir -p "$dir"
	mount -t tmpfs -o size=12m,mode=0700 tmpfs "$dir" || {
		skip "fault: cannot mount a tmpfs"
		return
	}
	on_exit "umount '$dir' 2>/dev/null"
	# A first snapshot: 4 MiB of random data, about 4 MiB of file.
	start_zramd size=$SIZE persist="$snap" &&
		/usr/bin/python3 -c '
import nbd, random, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
h.pwrite(random.Random(5).randbytes(4 << 20), 0); h.shutdown()' "$SOCK" &&
		check_stop "fault: first snapshot" || {
		not_ok "fault: first snapshot"
		return
	}
	cp "$snap" "$TMP/first.snap"
	# Loaded (now f.snap.consumed), then 12 MiB more: no room for it.
	start_zramd size=$SIZE persist="$snap" || {
		not_ok "fault: start"
		return
	}
	/usr/bin/python3 -c '
import nbd, random, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
h.pwrite(random.Random(6).randbytes(12 << 20), 8 << 20); h.shutdown()' "$SOCK"
	local rc=0
	stop_zramd >/dev/null || rc=$?
	wait "$ZRAMD_PID" 2>/dev/null
	check "fault: the stop fails (status $rc)" test $rc -ne 0
	check "fault: one log line names the file and the error" \
		grep -q "error: persist=$snap: snapshot not written: write: No space left on device" "$ZRAMD_LOG"
	grep "snapshot not written" "$ZRAMD_LOG"
	check "fault: no temporary file is left" \
		test -z "$(find "$dir" -name 'f.snap.tmp.*')"
	check "fault: no snapshot at PATH (the loaded one is not current)" \
		test ! -e "$snap"
	check "fault: the snapshot loaded at the start is intact" \
		cmp -s "$snap.consumed" "$TMP/first.snap"
	mv "$snap.consumed" "$snap"
	if start_zramd size=$SIZE persist="$snap"; then
		check "fault: and loadable (its data comes back)" \
			/usr/bin/python3 -c '
import nbd, random, sys
h = nbd.NBD(); h.connect_unix(sys.argv[1])
sys.exit(h.pread(4 << 20, 0) != random.Random(5).randbytes(4 << 20))' "$SOCK"
		check_stop "fault: last run"
	else
		not_ok "fault: the old snapshot loads"
	fi
}
if [ -n "${PERSIST_IN_NS:-}" ]; then
	fault
	finish
fi
# --- the cold tier and the hot codec ----------------------------------------
# cold_counters [FILE]: the cold tier's counters from the stats file.
cold_counters() {
	local k
	for k in packed_sectors packs pack_bytes pack_dead_bytes; do
		printf '%s=%s ' "$k" "$(stat_value "$k" "${1:-$STATS}")"
	done
}

cold_round_trip() {
	local before stats0 fsize compr pbytes packed decoded prev_compr
	for alloc in $(allocators); do
		L="cold tier $alloc"
		snap=$TMP/cold-$alloc.snap
		start_zramd size=$SIZE allocator="$alloc" persist="$snap" \
			recompress=zstd:3 recompress_idle=1 ||
			{ not_ok "$L: start"; continue; }
		"${PY[@]}" "$SOCK" write "$REAL" 1 || not_ok "$L: write"
		check "$L: idle sectors are packed before the stop" \
			wait_stat packed_sectors -gt 1000
		# Every 5th packed sector written over: packs with dead slots.
		"${PY[@]}" "$SOCK" write-sparse 2 || not_ok "$L: write-sparse"
		check "$L: packs have dead slots before the stop" \
			wait_stat pack_dead_bytes -gt 0
		dump before
		stats0=$STATS
		check_stop "$L"
		# The final stats file: the device as the snapshot holds it.
		before=$(cold_counters "$stats0")
		fsize=$(stat -c %s "$snap")
		compr=$(stat_value compr_data_size "$stats0")
		pbytes=$(stat_value pack_bytes "$stats0")
		packed=$(stat_value packed_sectors "$stats0")
		decoded=$((compr - pbytes + packed * 4096))
		echo "# $L: $before; file $fsize bytes, pool $compr, decoded $decoded"
		check "$L: the snapshot is about the pool's size ($fsize <= $compr + 1 MiB)" \
			test "$fsize" -le $((compr + 1048576))
		check "$L: the snapshot holds packs, not their sectors decoded ($fsize < $decoded - $((packed * 2048)))" \
			test "$fsize" -lt $((decoded - packed * 1024))
		# The hot codec changes from start to start: zstd -> zstd at
		# another level (objects kept as they are) -> LZ4 (decoded and
		# encoded anew) -> zstd again. Packs stay packs throughout.
		prev_compr=
		for codec in zstd:3 zstd:1 lz4 zstd:3; do
			start_zramd size=$SIZE allocator="$alloc" persist="$snap" \
				compressor=$codec recompress=off ||
				{ not_ok "$L: start with compressor=$codec"; continue 2; }
			dump after
			check "$L: every byte the same after a restart with compressor=$codec" \
				cmp -s "$TMP/before.img" "$TMP/after.img"
			check "$L: the extents the same (compressor=$codec)" \
				cmp -s "$TMP/before.ext" "$TMP/after.ext"
			wait_stat packed_sectors -ge 0
			check "$L: the cold tier's counters as before the stop (compressor=$codec)" \
				test "$(cold_counters)" = "$before"
			if [ "$codec" = zstd:1 ]; then
				# zstd:1 would store other bytes than zstd:3 did.
				check "$L: zstd objects kept as they are (compr_data_size $prev_compr)" \
					test "$(stat_value compr_data_size)" = "$prev_compr"
			fi
			prev_compr=$(stat_value compr_data_size)
			check_stop "$L: stop (compressor=$codec)"
		done
		rm -f "$TMP"/before.* "$TMP"/after.*
	done
}

round_trip
cold_round_trip
crash
corruption
if [ "$(id -u)" != 0 ]; then
	skip "fault: needs root to mount a tmpfs in a private mount namespace"
elif [ -z "${PERSIST_IN_NS:-}" ]; then
	if unshare --mount --propagation private true 2>/dev/null; then
		# Only the fault part runs again, in the namespace; its
		# checks are added to ours.
		out=$(PERSIST_IN_NS=1 unshare --mount --propagation private \
			"$0" 2>&1)
		while IFS= read -r line; do
			case $line in
			"ok - "*) ok "${line#ok - }" ;;
			"FAIL - "*) not_ok "${line#FAIL - }" ;;
			"skip - "*) skip "${line#skip - }" ;;
			*" passed, "*" failed"*) ;;
			*) echo "$line" ;;
			esac
		done <<<"$out"
	else
		skip "fault: unshare --mount does not work here"
	fi
fi

finish
