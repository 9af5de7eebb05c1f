#!/bin/bash
# zramd-reconnect's command line, on a machine without an nbd module: a
# usage error exits 2 with the usage, a bad value exits 2 naming option
# and value, a device that is not /dev/nbdN or not there exits 1 naming
# it. (What it does to the kernel is tested in the VM: make check-vm,
# scenario restart.)
source "$(dirname "$0")/functions.sh"

bin=$BUILD/zramd-reconnect
[ -x "$bin" ] || { skip "zramd-reconnect is not built ($bin)"; finish; }

# expect RC PATTERN ARGS...: exit status RC and PATTERN on stderr.
expect() {
	local rc=$1 pat=$2 got
	shift 2
	got=$("$bin" "$@" 2>&1 >/dev/null)
	local r=$?
	if [ $r -eq "$rc" ] && grep -q -- "$pat" <<<"$got"; then
		ok "zramd-reconnect $* -> exit $rc ($pat)"
	else
		echo "$got"
		not_ok "zramd-reconnect $*: exit $r, want $rc and '$pat'"
	fi
}

expect 2 usage
expect 2 usage /dev/nbd0                       # no -t, no socket
expect 2 usage --watch /dev/nbd0               # --watch needs the socket
expect 2 usage a b c
expect 2 "-t abc: not a number of seconds from 0 to 86400" -t abc /dev/nbd0
expect 2 "-t -1: not a number" -t -1 /dev/nbd0
expect 2 "-w 99999: not a number" -w 99999 /tmp/s /dev/nbd0
expect 1 "/dev/sda: not an NBD device" -t 5 /dev/sda
expect 1 "/dev/nbd0x: not an NBD device" /tmp/s /dev/nbd0x
if [ ! -e /sys/block/nbd999 ]; then
	expect 1 "/sys/block/nbd999/size" /tmp/s /dev/nbd999
fi
finish
