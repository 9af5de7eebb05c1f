#!/usr/bin/env bash
# The backing file's faults (make soak-faults; not in make check):
#
#  a. The backing file on a filesystem that fills up: an 8 MiB tmpfs and
#     backing_size=64M, larger than it. Once the filesystem is full, writes
#     fail with ENOSPC (the pool at mem_limit, eviction refused), nbdkit
#     does not crash, every sector written before reads back intact, and
#     once trims free space writes work again.
#  b. The backing file destroyed under a running device, two ways:
#     truncated to 0, and overwritten with random bytes (dd conv=notrunc).
#     Reads of the evicted sectors fail with EIO, the sectors still in
#     memory read back intact, no read returns wrong data, and nbdkit
#     keeps serving.
#
# TEST_SEED changes the data (printed).
source "$(dirname "$0")/../e2e/functions.sh"
requires nbdkit
requires nbdsh

seed=${TEST_SEED:-$RANDOM}
echo "test-faults: TEST_SEED=$seed"
alloc=$(allocators | cut -d' ' -f1)

# The seeded sectors' helpers (tests/e2e/seeded_sectors.py), for nbdsh_checks.
set_sectors_py "$seed"

# --- a. the backing filesystem fills up -----------------------------------------

fs=$TMP/smallfs
mkdir -p "$fs"
if [ "$(id -u)" != 0 ]; then
	skip "full fs: needs root to mount a tmpfs"
elif ! mount -t tmpfs -o size=8m tmpfs "$fs" 2>"$TMP/mount.err"; then
	skip "full fs: cannot mount a tmpfs: $(cat "$TMP/mount.err")"
else
	on_exit "umount '$fs' 2>/dev/null"
	start_zramd size=64M allocator="$alloc" mem_limit=2M \
		backing="$fs/backing" backing_size=64M || not_ok "full fs: start"
	# A few more attempts after the first ENOSPC must fail the same
	# way, not crash.
	nbdsh_checks "full fs" "${SECTORS_PY[@]}" \
		-c 'fill_until_full("the 8 MiB filesystem", 16384, least=1025,
		                    salt=50000, retries=32)'
	sleep 1.2
	echo "figures: full fs: bd_writes $(stat_value bd_writes)," \
		"bd_reads $(stat_value bd_reads), failed_writes" \
		"$(stat_value failed_writes), tmpfs use $(df -k --output=used "$fs" | tail -1) KiB"
	check "full fs: failed writes counted ($(stat_value failed_writes))" \
		test "$(stat_value failed_writes)" -gt 0
	check_stop "full fs"
	umount "$fs"
fi

# --- b. the backing file destroyed under the device --------------------------------

# destroy HOW: start a device, write 4 MiB through a 1 MiB pool, destroy
# its backing file HOW (truncate / garbage), read everything back.
destroy() {
	local how=$1 file
	file=$TMP/$how.backing
	start_zramd size=64M allocator="$alloc" mem_limit=1M \
		backing="$file" || {
		not_ok "$how: start"
		return
	}
	evict_sectors "$how" 1024 256
	case $how in
	truncate) truncate -s 0 "$file" ;;
	garbage) dd if=/dev/urandom of="$file" bs=64K \
		count=$(($(stat -c %s "$file") / 65536 + 1)) conv=notrunc \
		status=none ;;
	esac
	check "$how: nbdkit alive after the file was destroyed" \
		kill -0 "$ZRAMD_PID"
	nbdsh_checks "$how" "${SECTORS_PY[@]}" -c '
good, eio, wrong, other = read_all(1024)
print("reads: %d intact, %d EIO, %d wrong, %d other errors" % (good, eio, wrong, other))
print(("ok - " if eio > 0 else "FAIL - ") + "evicted sectors fail with EIO (%d)" % eio)
print(("ok - " if good > 0 else "FAIL - ") + "sectors in memory read intact (%d)" % good)
print(("ok - " if wrong == 0 and other == 0 else "FAIL - ")
      + "no read returns wrong data or another error")
# Still serving: new data, enough to evict again, reads back.
write_sectors(2048, 512)
bad = wrong_sectors(2048, 512)
print(("ok - " if bad == 0 else "FAIL - ")
      + "nbdkit keeps serving: 2 MiB more written and read back (%d wrong)" % bad)
'
	sleep 1.2
	echo "figures: $how: bd_failed $(stat_value bd_failed)," \
		"bd_checksum_errors $(stat_value bd_checksum_errors)," \
		"bd_io_errors $(stat_value bd_io_errors)," \
		"failed_reads $(stat_value failed_reads)"
	check_stop "$how"
}

destroy truncate
destroy garbage
finish
