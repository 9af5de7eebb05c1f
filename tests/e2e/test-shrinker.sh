#!/usr/bin/env bash
# Eviction end to end: the plugin with a backing file and a mem_limit far
# below the data, under real clients.
#
#  1. fio (ioengine=nbd), 2 jobs, iodepth 32, one incompressible and one
#     75% compressible, on 4x mem_limit, verified with crc32c: no
#     mismatch; data went to the backing file and came back; the pool,
#     sampled from the stats file all along, never passed mem_limit by
#     more than one watermark step (mem_high - mem_low).
#  2. ext4 on the device (nbdfuse + loop) with mem_limit a quarter of the
#     data copied in: fsck clean, every file equal, data evicted.
#     1 and 2 run again (first allocator) with a loop device as the
#     backing store, a raw block device (parts fio-loopdev, ext4-loopdev).
#  3. Bytes flipped in the backing file under a running device: reads of
#     those sectors fail with EIO, the others return their data, nbdkit
#     keeps serving.
#  4. A full backing file (backing_size=64K): writes fail with ENOSPC, the
#     data stays readable, and after trims writes work again.
#  5. writeback_idle=1: sectors not touched for 1-2 s go to the backing
#     file, and read back.
#  6. Memory pressure: nbdkit in a memory cgroup whose limit is below the
#     data, no mem_limit: the shrinker evicts on the cgroup trigger, the
#     kernel never kills nbdkit, every byte reads back. Skipped where no
#     memory cgroup can be made.
#  7. Promotion: evicted sectors read twice come back to memory
#     (bd_promotions > 0); with promote=off none do; the bytes are right.
#
# The figures (evictions, reads back, peak pool size against the limit)
# are printed as "figures: ..." lines. TEST_SEED changes the data;
# SHRINKER_PARTS="corrupt full" (say) runs only those parts.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh

seed=${TEST_SEED:-$RANDOM}
echo "test-shrinker: TEST_SEED=$seed"
first_alloc=$(allocators | cut -d' ' -f1)
parts=" ${SHRINKER_PARTS:-fio ext4 fio-loopdev ext4-loopdev corrupt full idle pressure promote} "
part() { [[ $parts == *" $1 "* ]]; }

# sampler FILE: append mem_used_total from the stats file to FILE every
# 0.2 s while nbdkit runs (the file is rewritten every second).
sampler() {
	while kill -0 "$ZRAMD_PID" 2>/dev/null; do
		stat_value mem_used_total >>"$1" 2>/dev/null
		sleep 0.2
	done
}

# max_of FILE: the largest number in FILE (0 if none).
max_of() {
	sort -n "$1" 2>/dev/null | tail -n 1 | grep . || echo 0
}

# --- 1. fio --------------------------------------------------------------------

fio_test() {
	local alloc=$1 bk=${2:-$TMP/fio-$1.backing} name="fio $1${2:+ (loop device)}"
	local limit=$((16 << 20)) per_job=32M out rc=0 t0 secs
	local step peak max bdw bdr
	[ -n "$E2E_QUICK" ] && limit=$((8 << 20)) per_job=16M
	step=$((limit / 10)) # mem_high 90 - mem_low 80
	start_zramd size=256M allocator="$alloc" mem_limit=$limit \
		backing="$bk" ${2:+backing_force=yes} || {
		not_ok "$name: start"
		return
	}
	cat >"$TMP/shrink.fio" <<-EOF
		[global]
		ioengine=nbd
		uri=$URI
		iodepth=32
		rw=randwrite
		bs=4k
		size=$per_job
		verify=crc32c
		do_verify=1
		verify_fatal=1
		verify_state_save=0
		refill_buffers=1
		randseed=$seed
		group_reporting=1
		[incompressible]
		offset=0
		buffer_compress_percentage=0
		[compressible]
		offset=$per_job
		buffer_compress_percentage=75
	EOF
	: >"$TMP/samples-$alloc"
	sampler "$TMP/samples-$alloc" &
	t0=$(date +%s.%N)
	# (from $TMP: fio writes its files in the current directory)
	out=$(cd "$TMP" && fio shrink.fio 2>&1) || rc=$?
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	if [ "$rc" -ne 0 ] || ! grep -q 'err= 0' <<<"$out" ||
		grep -qiE 'verify.*(fail|bad)|crc32c.*wanted' <<<"$out"; then
		echo "$out" | tail -30
		not_ok "$name: 2 jobs on 4x mem_limit, verified"
	else
		ok "$name: 2 jobs on 4x mem_limit, verified (${secs%.*} s)"
	fi
	sleep 1.2 # one more stats file
	bdw=$(stat_value bd_writes) bdr=$(stat_value bd_reads)
	peak=$(max_of "$TMP/samples-$alloc")
	max=$(stat_value mem_used_max)
	check "$name: evicted to the backing file (bd_writes $bdw)" \
		test "$bdw" -gt 0
	check "$name: read back from it (bd_reads $bdr)" test "$bdr" -gt 0
	check "$name: no failed reads or writes" \
		test "$(stat_value failed_writes)/$(stat_value failed_reads)" = 0/0
	check "$name: sampled mem_used_total $peak <= limit $limit + step $step" \
		test "$peak" -le $((limit + step))
	check "$name: mem_used_max $max <= limit + step" \
		test "$max" -le $((limit + step))
	echo "figures: $name: mem_limit $limit, peak mem_used_total" \
		"$peak (sampled; mem_used_max $max), bd_writes $bdw, bd_reads" \
		"$bdr, $(echo "$bdw / $secs" | bc) evictions/s over ${secs%.*} s," \
		"evict_limit $(stat_value evict_limit)" \
		"evict_psi $(stat_value evict_psi)"
	check_stop "$name"
}

if ! part fio; then
	:
elif ! command -v fio >/dev/null || ! fio --enghelp=nbd 2>/dev/null | grep -q uri; then
	skip "fio: no fio with the nbd engine"
else
	for alloc in $(allocators); do
		fio_test "$alloc"
	done
fi

# --- 2. ext4 -------------------------------------------------------------------

ext4_test() {
	local alloc=$1 bk=${2:-$TMP/ext4-$1.backing} name="ext4 $1${2:+ (loop device)}"
	local tree=/usr/share/perl kib limit
	kib=$(du -sk "$tree" | cut -f1)
	limit=$((kib * 1024 / 4))
	[ "$limit" -ge $((1 << 20)) ] || limit=$((1 << 20))
	start_zramd size=256M allocator="$alloc" mem_limit=$limit \
		backing="$bk" ${2:+backing_force=yes} || {
		not_ok "$name: start"
		return
	}
	if ! ext4_check "$name" "$tree" \
		"copy $tree ($((kib >> 10)) MiB) in, mem_limit $((limit >> 10)) KiB"; then
		stop_zramd
		return
	fi
	sleep 1.2
	check "$name: evicted (bd_writes $(stat_value bd_writes))" \
		test "$(stat_value bd_writes)" -gt 0
	check "$name: no failed writes" test "$(stat_value failed_writes)" = 0
	echo "figures: $name: mem_limit $limit, bd_writes" \
		"$(stat_value bd_writes), bd_reads $(stat_value bd_reads)," \
		"mem_used_max $(stat_value mem_used_max)"
	check_stop "$name"
}

if ! part ext4; then
	:
elif [ "$(id -u)" != 0 ]; then
	skip "ext4: needs root for losetup and mount"
elif [ ! -c /dev/fuse ] || [ ! -e /dev/loop-control ]; then
	skip "ext4: no /dev/fuse or no loop devices"
elif ! command -v nbdfuse >/dev/null || ! command -v mkfs.ext4 >/dev/null ||
	! command -v fusermount3 >/dev/null || [ ! -d /usr/share/perl ]; then
	skip "ext4: nbdfuse, mkfs.ext4, fusermount3 or /usr/share/perl missing"
else
	for alloc in $(allocators); do
		ext4_test "$alloc"
	done
fi

# --- 1b, 2b. fio and ext4 with a loop device as the backing store ------------------

# The first allocator only: the backing store's type is what differs.
# One loop device serves both, so backing_force=yes: the second run finds
# the first one's records, whose LZ4 literals (an ext4 image's, say) could
# by chance look like a signature to libblkid.
if part fio-loopdev || part ext4-loopdev; then
	if [ "$(id -u)" = 0 ] && truncate -s 512M "$TMP/bk-loopfile" &&
		bkloop=$(losetup -f --show "$TMP/bk-loopfile" 2>/dev/null) &&
		[ -n "$bkloop" ]; then
		if ! part fio-loopdev; then
			:
		elif ! command -v fio >/dev/null || ! fio --enghelp=nbd 2>/dev/null | grep -q uri; then
			skip "fio-loopdev: no fio with the nbd engine"
		else
			fio_test "$first_alloc" "$bkloop"
		fi
		if ! part ext4-loopdev; then
			:
		elif [ ! -c /dev/fuse ] || ! command -v nbdfuse >/dev/null ||
			! command -v mkfs.ext4 >/dev/null ||
			! command -v fusermount3 >/dev/null || [ ! -d /usr/share/perl ]; then
			skip "ext4-loopdev: no /dev/fuse, nbdfuse, mkfs.ext4, fusermount3 or /usr/share/perl"
		else
			ext4_test "$first_alloc" "$bkloop"
		fi
		losetup -d "$bkloop"
	else
		skip "fio-loopdev, ext4-loopdev: need root and losetup -f"
	fi
fi

# --- 3. corruption in the backing file -------------------------------------------

# The seeded sectors' helpers (seeded_sectors.py), for nbdsh_checks.
set_sectors_py "$seed"

# corrupt_test NAME BACKING [FORCE]: (not indented: it holds python code)
corrupt_test() {
start_zramd size=64M allocator="$first_alloc" mem_limit=1M \
	backing="$2" ${3:+backing_force=yes} || not_ok "$1: start"
evict_sectors "$1" 512 64
# Flip a byte of the payload, of the header, of the checksum of three
# sectors' records (each sector was written once: its record is live).
bad=$(/usr/bin/python3 - "$2" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b")
data = f.read()
where = {}
for o in range(0, len(data) - 32, 512):
    if data[o:o + 4] == b"ZRBK":
        where.setdefault(struct.unpack_from("<Q", data, o + 8)[0], o)
picked = [s for s in sorted(where) if s % 5 == 2][:3]
for n, s in enumerate(picked):
    off = where[s] + (32 + 100, 16, 24)[n]
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x40]))
f.close()
print(" ".join(str(s) for s in picked))
EOF
)
echo "$1: flipped bytes in the records of sectors $bad"
check "$1: three records found" test "$(wc -w <<<"$bad")" = 3
nbdsh_checks "$1" "${SECTORS_PY[@]}" -c "bad = {$(tr ' ' , <<<"$bad")}" -c '
good, eio, wrong, other = read_all(512, bad)
print(("ok - " if eio == len(bad) else "FAIL - ")
      + "%d of %d damaged sectors fail with EIO" % (eio, len(bad)))
print(("ok - " if wrong == 0 and other == 0 else "FAIL - ")
      + "every other sector reads back (%d wrong, %d errors)" % (wrong, other))
# And the server is still there.
h.pwrite(b"x" * 4096, 600 * 4096)
print(("ok - " if h.pread(4096, 600 * 4096) == b"x" * 4096 else "FAIL - ")
      + "nbdkit keeps serving")
'
wait_stat bd_checksum_errors -ge 3
check "$1: bd_checksum_errors counted ($(stat_value bd_checksum_errors))" \
	test "$(stat_value bd_checksum_errors)" -ge 3
check_stop "$1"
}
if part corrupt; then
	corrupt_test corrupt "$TMP/corrupt.backing"
fi
# The same with a loop device as the backing store (a raw block device).
if part corrupt; then
	if [ "$(id -u)" = 0 ] && truncate -s 64M "$TMP/loopfile" &&
		loop=$(losetup -f --show "$TMP/loopfile" 2>/dev/null) &&
		[ -n "$loop" ]; then
		corrupt_test corrupt-loopdev "$loop"
		losetup -d "$loop"
	else
		skip "corrupt-loopdev: needs root and losetup -f"
	fi
fi

# --- 4. a full backing file ------------------------------------------------------

if part full; then
start_zramd size=64M allocator="$first_alloc" mem_limit=512K \
	backing="$TMP/full.backing" backing_size=64K || not_ok "full: start"
nbdsh_checks full "${SECTORS_PY[@]}" \
	-c 'fill_until_full("the file", 4096, least=1, salt=10000)'
# The file is locked: a second device on it refuses to start.
out=$(timeout 60 env ${E2E_PRELOAD:+LD_PRELOAD=$E2E_PRELOAD} nbdkit -f \
	-U "$TMP/second.sock" "$PLUGIN_SO" 64M backing="$TMP/full.backing" 2>&1)
check "full: a second nbdkit on the same backing file is refused" \
	grep -q "full.backing: in use by another process" <<<"$out"
check_stop "full"
fi

# --- 5. idle writeback ---------------------------------------------------------

if part idle; then
start_zramd size=64M allocator="$first_alloc" writeback_idle=1 \
	backing="$TMP/idle.backing" || not_ok "idle: start"
nbdsh_checks idle "${SECTORS_PY[@]}" -c '
write_sectors(0, 64)
print("ok - 64 sectors written, no mem_limit")
'
# A pass every second: marked by one, moved by the next.
wait_stat evict_idle -ge 64
check "idle: every sector went to the backing file after 1-2 s idle" \
	test "$(stat_value evict_idle)" = 64
check "idle: nothing else evicted" \
	test "$(stat_value evict_limit)/$(stat_value compr_data_size)" = 0/0
nbdsh_checks idle "${SECTORS_PY[@]}" -c '
bad = wrong_sectors(0, 64)
check("they read back (%d wrong)" % bad, bad == 0)
'
check_stop "idle"
fi

# --- 6. memory pressure: a cgroup limit --------------------------------------------

# cgroup_dir: print the memory cgroup directory of this shell (v1 or v2),
# or nothing.
cgroup_dir() {
	local line path mnt
	line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup)
	if [ -n "$line" ]; then
		path=${line#*:*:}
		mnt=$(awk '$9 == "cgroup" && $NF ~ /(^|,)memory(,|$)/ { print $5; exit }' \
			/proc/self/mountinfo)
	else
		path=$(sed -n 's/^0:://p' /proc/self/cgroup)
		mnt=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
		grep -qw memory "$mnt$path/cgroup.controllers" 2>/dev/null ||
			mnt=
	fi
	[ -n "$mnt" ] && [ -d "$mnt$path" ] && echo "$mnt$path"
}

pressure_test() {
	local parent=$1 limit=$((64 << 20)) cg v pidfile total used oom t0 secs
	cg=$parent/zramd-e2e-$$
	mkdir "$cg" 2>/dev/null || {
		skip "pressure: cannot make a cgroup in $parent"
		return
	}
	on_exit "rmdir '$cg' 2>/dev/null"
	if [ -e "$cg/memory.limit_in_bytes" ]; then
		v=1
		echo $limit >"$cg/memory.limit_in_bytes" || {
			skip "pressure: cannot set memory.limit_in_bytes"
			return
		}
	else
		v=2
		echo $limit >"$cg/memory.high" || {
			skip "pressure: cannot set memory.high"
			return
		}
	fi
	# As start_zramd, but nbdkit joins the cgroup before it starts, so
	# the shrinker finds it there.
	nstarted=$((nstarted + 1))
	SOCK=$TMP/zramd$nstarted.sock URI="nbd+unix:///?socket=$SOCK"
	STATS=$TMP/zramd$nstarted.stats ZRAMD_LOG=$TMP/zramd$nstarted.log
	pidfile=$TMP/zramd$nstarted.pid
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
		env ${E2E_PRELOAD:+LD_PRELOAD=$E2E_PRELOAD} \
		nbdkit -f -U "$SOCK" -P "$pidfile" "$PLUGIN_SO" stats="$STATS" \
		stats_interval=1 size=512M allocator="$first_alloc" \
		backing="$TMP/pressure.backing" 2>"$ZRAMD_LOG" &
	ZRAMD_PID=$!
	on_exit "kill $ZRAMD_PID 2>/dev/null"
	if ! wait_for 300 test -S "$SOCK" -a -s "$pidfile"; then
		cat "$ZRAMD_LOG"
		not_ok "pressure: start in cgroup v$v"
		return
	fi
	if [ $v = 1 ]; then used=$cg/memory.usage_in_bytes; else used=$cg/memory.current; fi
	echo "pressure: cgroup v$v $cg, limit $limit, nbdkit uses $(cat "$used")"
	# 1.5 x the limit, 4 MiB at a time, each chunk once the cgroup has
	# room for it: the cgroup trigger samples once a second and evicts
	# what is past 90% of the limit, so the writer must not outrun it.
	# Requests are 256 KiB: nbdkit's malloc keeps freed request buffers
	# (per thread, as large as the largest request), which the cgroup
	# counts too, and evicting cannot give back.
	total=$((limit * 3 / 2))
	t0=$(date +%s.%N)
	nbdsh_checks pressure "${SECTORS_PY[@]}" -c "
import time
cg, used, limit, total = '$cg', '$used', $limit, $total
chunk, req = 4 << 20, 256 << 10
def usage():
    return int(open(used).read())
def want(off, n):
    return b''.join(sector(off // 4096 + i) for i in range(n // 4096))
stuck = False
for off in range(0, total, chunk):
    t = time.time()
    while usage() + chunk > limit * 98 // 100:
        if time.time() - t > 20:
            stuck = True
            break
        time.sleep(0.05)
    if stuck:
        break
    for o in range(off, off + chunk, req):
        h.pwrite(want(o, req), o)
print(('FAIL - the cgroup stayed full for 20 s at %d MiB' % (off >> 20)) if stuck
      else 'ok - %d MiB written into a %d MiB cgroup' % (total >> 20, limit >> 20))
for f in ('memory.max_usage_in_bytes', 'memory.peak'):
    try:
        print('figures: pressure: peak cgroup usage while writing %d (limit %d)'
              % (int(open(cg + '/' + f).read()), limit))
        break
    except OSError:
        pass
bad = sum(h.pread(req, o) != want(o, req) for o in range(0, total, req))
print(('ok - ' if bad == 0 else 'FAIL - ')
      + 'every request reads back (%d wrong)' % bad)
"
	secs=$(echo "$(date +%s.%N) - $t0" | bc)
	sleep 1.2
	check "pressure: nbdkit was not killed" kill -0 "$ZRAMD_PID"
	check "pressure: evicted for the cgroup (evict_cgroup $(stat_value evict_cgroup))" \
		test "$(stat_value evict_cgroup)" -gt 0
	oom=$(sed -n 's/^oom_kill //p' "$cg/memory.oom_control" \
		"$cg/memory.events" 2>/dev/null | head -n 1)
	check "pressure: no OOM kill in the cgroup (${oom:-0})" test "${oom:-0}" = 0
	echo "figures: pressure (cgroup v$v, limit $limit, no mem_limit):" \
		"evict_cgroup $(stat_value evict_cgroup), evict_psi" \
		"$(stat_value evict_psi), bd_writes $(stat_value bd_writes)," \
		"bd_reads $(stat_value bd_reads)," \
		"mem_used_max $(stat_value mem_used_max), ${secs%.*} s"
	check_stop "pressure"
}

# --- 7. promotion ------------------------------------------------------------------

# Sectors read twice from the backing file come back to memory
# (bd_promotions), unless promote=off; every byte reads back either way.
promote_test() {
	local mode=$1
	start_zramd size=64M allocator="$first_alloc" mem_limit=1M \
		backing="$TMP/promote-$mode.backing" promote="$mode" ||
		{ not_ok "promote=$mode: start"; return; }
	evict_sectors "promote=$mode" 512 64
	nbdsh_checks "promote=$mode" "${SECTORS_PY[@]}" -c '
for n in range(2):
    check("read %d of sectors 0-63: every byte right" % (n + 1),
          wrong_sectors(0, 64) == 0)
'
	if [ "$mode" = on ]; then
		wait_stat bd_promotions -gt 0
		check "promote=on: sectors came back (bd_promotions $(stat_value bd_promotions))" \
			test "$(stat_value bd_promotions)" -gt 0
	else
		sleep 1.2
		check "promote=off: none came back (bd_promotions $(stat_value bd_promotions))" \
			test "$(stat_value bd_promotions)" = 0
	fi
	echo "figures: promote=$mode: bd_writes $(stat_value bd_writes)," \
		"bd_reads $(stat_value bd_reads)," \
		"bd_promotions $(stat_value bd_promotions)"
	check_stop "promote=$mode"
}

if part promote; then
	promote_test on
	promote_test off
fi

if ! part pressure; then
	:
elif [ "$(id -u)" != 0 ]; then
	skip "pressure: needs root to make a memory cgroup"
elif ! cg=$(cgroup_dir) || [ -z "$cg" ]; then
	skip "pressure: no memory cgroup controller here"
else
	pressure_test "$cg"
fi

finish
