#!/bin/bash
# systemd/zramd-swap, the script zramd-swap@.service (and the local-swap
# VM scenarios) run, against stand-ins for nbd-client, mkswap, swapon and
# swapoff that record their arguments: the commands, their order and
# arguments, and the errors (usage, a failing attach stops before mkswap).
# The real thing runs in make check-vm (local-swap-shrink, local-oom).
source "$(dirname "$0")/functions.sh"

script=$TOP/systemd/zramd-swap
log=$TMP/calls
fake=$TMP/fake
mkdir -p "$fake"
for t in nbd-client mkswap swapon swapoff; do
	printf '#!/bin/sh\necho "%s $*" >>%s\n[ -z "$FAIL_%s" ]\n' \
		"$t" "$log" "$(echo $t | tr a-z- A-Z_)" >"$fake/$t"
	chmod +x "$fake/$t"
done
export NBD_CLIENT=$fake/nbd-client MKSWAP=$fake/mkswap SWAPON=$fake/swapon SWAPOFF=$fake/swapoff
# A stand-in for /sys: the device's request size limit, as the kernel
# leaves it after attach (the NBD driver's 32 MiB).
export ZRAMD_SWAP_SYSFS=$TMP/sys
maxkb=$ZRAMD_SWAP_SYSFS/block/nbd7/queue/max_sectors_kb
mkdir -p "$(dirname "$maxkb")"
echo 32768 >"$maxkb"

# A listening unix socket, as nbdkit's.
sock=$TMP/swap.sock
/usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); time.sleep(60)' "$sock" &
on_exit "kill $! 2>/dev/null"
wait_for 50 test -S "$sock"

: >"$log"
"$script" start "$sock" /dev/nbd7
check "start: exit 0" [ $? -eq 0 ]
want="nbd-client -unix $sock /dev/nbd7 -b 4096 -swap
mkswap /dev/nbd7
swapon --priority 100 --discard=pages /dev/nbd7"
check "start: attach (4 KiB blocks, -swap), mkswap, swapon --priority 100, in that order" \
	[ "$(cat "$log")" = "$want" ]
check "start: requests capped at 64 KiB (queue/max_sectors_kb)" [ "$(cat "$maxkb")" = 64 ]

: >"$log"
ZRAMD_SWAP_MAX_KB=128 "$script" start "$sock" /dev/nbd7
check "start: ZRAMD_SWAP_MAX_KB=128 gives 128 KiB" [ "$(cat "$maxkb")" = 128 ]

: >"$log"
err=$(ZRAMD_SWAP_SYSFS=$TMP/nosys "$script" start "$sock" /dev/nbd7 2>&1)
rc=$?
check "start: a cap that cannot be set fails ($err)" [ $rc -ne 0 ] && grep -q max_sectors_kb <<<"$err"
check "start: and stops before mkswap" [ "$(cat "$log")" = "nbd-client -unix $sock /dev/nbd7 -b 4096 -swap" ]

: >"$log"
"$script" start "$sock" /dev/nbd7 5
check "start: a priority given is passed to swapon" grep -qx "swapon --priority 5 --discard=pages /dev/nbd7" "$log"

: >"$log"
err=$(FAIL_NBD_CLIENT=1 "$script" start "$sock" /dev/nbd7 2>&1)
rc=$?
check "start: a failing attach fails ($err)" [ $rc -ne 0 ]
check "start: and stops before mkswap" [ "$(cat "$log")" = "nbd-client -unix $sock /dev/nbd7 -b 4096 -swap" ]
check "start: one message naming the command" [ "$(echo "$err" | wc -l)" -eq 1 ] && grep -q "nbd-client" <<<"$err"

: >"$log"
"$script" stop /dev/nbd7
check "stop: a device not in /proc/swaps is only detached" [ "$(cat "$log")" = "nbd-client -d /dev/nbd7" ]

err=$("$script" start "$sock" 2>&1)
check "usage error: non-zero and says how ($err)" [ $? -ne 0 ] && grep -q usage <<<"$err"
err=$("$script" frobnicate 2>&1)
check "unknown command: non-zero ($err)" [ $? -ne 0 ]
finish
