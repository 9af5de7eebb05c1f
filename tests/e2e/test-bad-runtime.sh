#!/usr/bin/env bash
# Bad things that happen to a running device, outside its backing file:
#
#  1. The stats file's directory removed, then made unwritable (a read-only
#     remount as root, chmod 555 otherwise), then full, while nbdkit
#     serves. Each time: I/O goes on with the data intact (compared
#     byte for byte), one log line says what failed (not one a second),
#     no temporary file is left behind, and once the directory is back
#     the stats file is published again with current counters.
#  2. NBD requests longer than nbdkit's 64 MiB limit, sent raw
#     (tests/e2e/raw_nbd.py; libnbd will not send them): reads and writes
#     up to 2^32 - 1 bytes are refused with an error, a write whose
#     payload is too large to skip ends that connection, trims, zeroes
#     and cache of 4 GiB - 1 are served; nbdkit keeps serving and the data
#     is intact.
#
# TEST_SEED changes the data (printed).
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh
requires nbdcopy

seed=${TEST_SEED:-$RANDOM}
echo "test-bad-runtime: TEST_SEED=$seed"
alloc=$(allocators | cut -d' ' -f1)

# random_file FILE MIB SALT: MIB MiB of seeded, incompressible bytes.
random_file() {
	/usr/bin/python3 -c 'import random, sys
sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2]) << 20))' \
		"$((seed * 1009 + $3))" "$2" >"$1"
}

# --- 1. the stats directory ------------------------------------------------------

dir=$TMP/statsdir
mkdir -p "$dir"
start_zramd size=16M allocator="$alloc" stats="$dir/zramd.stats" || {
	not_ok "stats dir: start"
	finish
}
random_file "$TMP/want" 16 1
nbdcopy "$TMP/want" "$URI"
check "stats dir: published at first (orig_data_size 16 MiB)" \
	wait_stat orig_data_size -eq $((16 << 20))

# errors: how many "writing stats file" lines nbdkit logged.
errors() { grep -c 'writing stats file' "$ZRAMD_LOG"; }

# write_at FILE OFF_MIB: write FILE on the device at OFF_MIB MiB.
write_at() {
	nbdsh -u "$URI" -c "h.pwrite(open('$1', 'rb').read(), $2 << 20)"
}

# device_is LABEL: the whole device equals $TMP/want, byte for byte.
device_is() {
	rm -f "$TMP/got"
	nbdcopy "$URI" "$TMP/got"
	check "$1: the device reads back, byte for byte" cmp "$TMP/want" "$TMP/got"
}

# outage_io LABEL N OFF_MIB: while the stats file cannot be written, write
# 2 MiB at OFF_MIB, trim the 1 MiB after it, let 2.5 s (two intervals)
# pass, and check: nbdkit runs, the data is intact, exactly N error lines
# in its log so far.
outage_io() {
	local label=$1 n=$2 off=$3
	random_file "$TMP/part" 2 "$off"
	write_at "$TMP/part" "$off"
	dd if="$TMP/part" of="$TMP/want" bs=1M seek="$off" conv=notrunc status=none
	nbdsh -u "$URI" -c "h.trim(1 << 20, $((off + 2)) << 20)"
	dd if=/dev/zero of="$TMP/want" bs=1M seek=$((off + 2)) count=1 \
		conv=notrunc status=none
	sleep 2.5
	check "$label: nbdkit still serves" kill -0 "$ZRAMD_PID"
	device_is "$label"
	check "$label: one error in the log, not one a second ($(errors) of $n)" \
		test "$(errors)" -eq "$n"
	grep 'writing stats file' "$ZRAMD_LOG" | tail -n 1 | sed "s/^/$label: log: /"
}

# resumed LABEL WHAT: the stats file is written again and shows the
# counters of now (16 MiB less the MiB trimmed so far).
trimmed=0
resumed() {
	local want=$(((16 - trimmed) << 20))
	check "$1: published again after $2 (orig_data_size $want)" \
		wait_stat orig_data_size -eq "$want"
	check "$1: no temporary file left in the directory" \
		test -z "$(find "$dir" -name 'zramd.stats.*')"
}

# a. removed, then made again.
rm -rf "$dir"
outage_io "removed" 1 0
trimmed=$((trimmed + 1))
check "removed: the stats file did not come back by itself" test ! -e "$dir"
mkdir "$dir"
resumed "removed" "mkdir"

# b. unwritable. As root a mode means nothing: a read-only tmpfs instead.
if [ "$(id -u)" = 0 ]; then
	if mount -t tmpfs -o size=64k tmpfs "$dir" 2>"$TMP/mount.err"; then
		on_exit "umount '$dir' 2>/dev/null"
		ro() { mount -o remount,ro "$dir"; }
		rw() { mount -o remount,rw "$dir"; }
	else
		skip "unwritable: cannot mount a tmpfs: $(cat "$TMP/mount.err")"
	fi
else
	ro() { chmod 555 "$dir"; }
	rw() { chmod 755 "$dir"; }
fi
if declare -F ro >/dev/null; then
	check "unwritable: stats written before" wait_stat orig_data_size -gt 0
	ro
	old=$(cat "$STATS")
	outage_io "unwritable" 2 4
	trimmed=$((trimmed + 1))
	check "unwritable: the old stats file stays as it was" \
		test "$(cat "$STATS")" = "$old"
	rw
	resumed "unwritable" "it was writable again"
fi

# c. full: a tmpfs filled up (root only).
if [ "$(id -u)" = 0 ] && mountpoint -q "$dir"; then
	n=$(errors)
	dd if=/dev/zero of="$dir/filler" bs=4k status=none 2>/dev/null
	outage_io "full" $((n + 1)) 8
	trimmed=$((trimmed + 1))
	rm -f "$dir/filler"
	resumed "full" "space was freed"
else
	skip "full: needs root to mount a small tmpfs"
fi
check_stop "stats dir"
check "stats dir: the final stats file at exit (orig_data_size)" \
	test "$(stat_value orig_data_size)" -eq $(((16 - trimmed) << 20))
mountpoint -q "$dir" && umount "$dir"

# --- 2. requests above nbdkit's 64 MiB limit --------------------------------------

start_zramd size=8G allocator="$alloc" || {
	not_ok "huge: start"
	finish
}
random_file "$TMP/low" 8 10
random_file "$TMP/high" 8 11
write_at "$TMP/low" 0
write_at "$TMP/high" $((6 << 10))
PYTHONPATH=$E2E_DIR /usr/bin/python3 - "$SOCK" "$TMP/low" "$TMP/high" \
	>"$TMP/huge.out" 2>&1 <<'EOF'
import errno, hashlib, sys
from raw_nbd import *
sock, low, high = sys.argv[1:]
M, G = 1 << 20, 1 << 30
low, high = open(low, "rb").read(), open(high, "rb").read()

def check(what, cond):
    print(("ok - " if cond else "FAIL - ") + what, flush=True)

def name(r):
    return "closed" if r is None else errno.errorcode.get(r[0], r[0]) or "ok"

def intact(c, what):
    r1 = c.request(CMD_READ, 0, 8 * M)
    r2 = c.request(CMD_READ, 6 * G, 8 * M)
    check(what, r1 == (0, low) and r2 == (0, high))

c = RawNBD(sock)
check("the device is 8 GiB (%d)" % c.size, c.size == 8 * G)
r = c.request(CMD_READ, 0, 64 * M)
check("a read of exactly 64 MiB is served, its bytes right",
      r is not None and r[0] == 0 and r[1] == low + bytes(56 * M))
for n in (64 * M + 1, 128 * M, (1 << 32) - 1):
    r = c.request(CMD_READ, 0, n)
    check("a read of %d bytes fails (%s)" % (n, name(r)), r is not None and r[0])
intact(c, "the same connection still reads the data")
r = c.request(CMD_WRITE, 0, 64 * M + 4096, b"\xee" * (64 * M + 4096))
check("a write of 64 MiB + 4 KiB, payload sent, fails (%s)" % name(r),
      r is not None and r[0])
intact(c, "...and wrote nothing: the data is unchanged")
for cmd, what in ((CMD_TRIM, "trim"), (CMD_WRITE_ZEROES, "zero"),
                  (CMD_CACHE, "cache")):
    r = c.request(cmd, 8 * M, (1 << 32) - 1)
    check("a %s of 4 GiB - 1 is served (%s)" % (what, name(r)),
          r is not None and r[0] == 0)
r = c.request(CMD_READ, 8 * M, 4096)
check("the trimmed and zeroed range reads as zeroes",
      r == (0, bytes(4096)))
intact(c, "the data around the 4 GiB trim and zero is unchanged")
c.close()

# Payloads nbdkit will not skip: it ends the connection.
c = RawNBD(sock)
c.send_header(CMD_WRITE, 0, (1 << 32) - 1)
sent = c.send(b"\xee" * M)
r = c.reply()
check("a write header of 4 GiB - 1 ends that connection (%s, %s)"
      % (name(r), "payload sent" if sent else "payload refused"), r is None)
c.sock.close()
c = RawNBD(sock)
c.send_header(CMD_WRITE, 0, 64 * M + 4096)
c.send(b"\xee" * M)
c.sock.close()             # the payload cut short
c = RawNBD(sock)
intact(c, "a new connection reads the data intact after both")
c.close()
EOF
rc=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "huge: ${line#ok - }" ;;
	"FAIL - "*) not_ok "huge: ${line#FAIL - }" ;;
	*) echo "$line" ;;
	esac
done <"$TMP/huge.out"
check "huge: the raw client ran to its end (exit $rc)" test "$rc" = 0
grep -q 'data request is too large' "$ZRAMD_LOG"
check "huge: nbdkit logs 'data request is too large'" test $? = 0
grep 'too large' "$ZRAMD_LOG" | sort | uniq -c | sed 's/^/huge: log: /'
nbdsh_checks "huge" -c "low = open('$TMP/low', 'rb').read()" \
	-c "high = open('$TMP/high', 'rb').read()" -c '
ok = h.pread(8 << 20, 0) == low and h.pread(8 << 20, 6 << 30) == high
print(("ok - " if ok else "FAIL - ") + "libnbd reads the data intact")
'
check_stop "huge"
finish
