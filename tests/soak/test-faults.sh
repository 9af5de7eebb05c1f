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

# The data of sector I: incompressible, from the seed.
data_py="
import errno, random
def sector(i):
    return random.Random($seed * 100003 + i).randbytes(4096)
"

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
	nbdsh_checks "full fs" -c "$data_py" -c '
n = err = 0
for i in range(16384):
    try:
        h.pwrite(sector(i), i * 4096)
        n += 1
    except nbd.Error as e:
        err = e.errnum
        break
print(("ok - " if err == errno.ENOSPC else "FAIL - ")
      + "writes fail with ENOSPC once the 8 MiB filesystem is full "
        "(after %d sectors, %s)" % (n, errno.errorcode.get(err, err)))
# A few more attempts must fail the same way, not crash.
more = 0
for i in range(n, n + 32):
    try:
        h.pwrite(sector(i), i * 4096)
    except nbd.Error as e:
        more += e.errnum == errno.ENOSPC
print(("ok - " if more > 0 else "FAIL - ")
      + "further writes still refused cleanly (%d of 32 ENOSPC)" % more)
bad = sum(h.pread(4096, i * 4096) != sector(i) for i in range(n))
print(("ok - " if bad == 0 and n > 1024 else "FAIL - ")
      + "the %d sectors written before read back intact (%d wrong)" % (n, bad))
h.trim(n * 4096, 0)
for i in range(n // 2):
    h.pwrite(sector(i + 50000), i * 4096)
bad = sum(h.pread(4096, i * 4096) != sector(i + 50000) for i in range(n // 2))
print(("ok - " if bad == 0 else "FAIL - ")
      + "after trims, %d sectors written and read back (%d wrong)" % (n // 2, bad))
'
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
	nbdsh_checks "$how" -c "$data_py" -c '
for i in range(1024):
    h.pwrite(sector(i), i * 4096)
print("ok - 4 MiB written through a 1 MiB pool")
'
	sleep 1.2
	check "$how: sectors on the backing file ($(stat_value bd_count))" \
		test "$(stat_value bd_count)" -gt 256
	case $how in
	truncate) truncate -s 0 "$file" ;;
	garbage) dd if=/dev/urandom of="$file" bs=64K \
		count=$(($(stat -c %s "$file") / 65536 + 1)) conv=notrunc \
		status=none ;;
	esac
	check "$how: nbdkit alive after the file was destroyed" \
		kill -0 "$ZRAMD_PID"
	nbdsh_checks "$how" -c "$data_py" -c '
good = eio = wrong = other = 0
for i in range(1024):
    try:
        got = h.pread(4096, i * 4096)
        if got == sector(i):
            good += 1
        else:
            wrong += 1
    except nbd.Error as e:
        if e.errnum == errno.EIO:
            eio += 1
        else:
            other += 1
            print("sector %d: %s" % (i, e))
print("reads: %d intact, %d EIO, %d wrong, %d other errors" % (good, eio, wrong, other))
print(("ok - " if eio > 0 else "FAIL - ") + "evicted sectors fail with EIO (%d)" % eio)
print(("ok - " if good > 0 else "FAIL - ") + "sectors in memory read intact (%d)" % good)
print(("ok - " if wrong == 0 and other == 0 else "FAIL - ")
      + "no read returns wrong data or another error")
# Still serving: new data, enough to evict again, reads back.
for i in range(2048, 2048 + 512):
    h.pwrite(sector(i), i * 4096)
bad = sum(h.pread(4096, i * 4096) != sector(i) for i in range(2048, 2048 + 512))
print(("ok - " if bad == 0 else "FAIL - ")
      + "nbdkit keeps serving: 2 MiB more written and read back (%d wrong)" % bad)
'
	sleep 1.2
	echo "figures: $how: bd_failed $(stat_value bd_failed)," \
		"bd_checksum_errors $(stat_value bd_checksum_errors)," \
		"failed_reads $(stat_value failed_reads)"
	check_stop "$how"
}

destroy truncate
destroy garbage
finish
