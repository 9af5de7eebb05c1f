#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - zramd under the real kernel NBD client, in a qemu guest
#
#   tests/vm/run.sh [SCENARIO...]      (make check-vm runs it)
#
# Scenarios: ext4 swap shrink reconnect tls local-swap local-swap-shrink
# local-oom local-swap-rawdisk restart (default: all, in that order).
# VM_REPEAT=N runs them N times.
# Each starts its own nbdkit with the zramd plugin on a private unix
# socket, boots the guest built by mkguest.sh once with the scenario on
# the kernel command line, reads the guest's marker lines from the serial
# console, then checks the daemon's side (stats file, RSS, bytes). See
# tests/vm/README.md.
#
# Environment:
#   ZRAMD_PLUGIN  the plugin .so (required; "memory" runs the harness
#                 against nbdkit-memory-plugin, for developing it only)
#   VMPROG        the static vmprog binary      VM_OUT  the guest cache dir
#   TEST_SEED     the data seed (printed; the same seed replays a run)
#   VM_TIMEOUT    seconds before a guest is killed (default per scenario)
#   VM_KEEP=1     keep each scenario's work dir (console log, stats)
#   VM_NBDKIT_OPTS, VM_NBDKIT_ARGS  more nbdkit options (before the
#                 plugin) and parameters (after it), e.g. to see a failure
#                 reported: VM_NBDKIT_OPTS=--filter=error
#                 VM_NBDKIT_ARGS="error-pread-rate=1% error-pread=EIO"
#   VM_SWAP_MIB, VM_SWAP_MEM  the swap working set and the guest's RAM
#                 (MiB; default 160 and 160)
#   VM_RESTART_MODE  restart: reconnect (default), oneshot, plain, ioctl;
#                 VM_RESTART_PERSIST=0 (no persist=), VM_RESTART_FILES=N
#                 files of VM_RESTART_PAGES pages (default 48 of 64);
#                 VM_RESTART_DELAY=MS slows every write (nbdkit's delay
#                 filter) so that some are unanswered at the stop
#
# Prints PASS/FAIL/SKIP per scenario and one line "N passed, N failed,
# N skipped"; exits 1 if any failed.

set -uo pipefail
export LC_ALL=C
# nbdsh and friends are Debian's; pyenv's python3 must not come first.
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

here=$(cd "$(dirname "$0")" && pwd)
PLUGIN=${ZRAMD_PLUGIN:-}
VMPROG=${VMPROG:-}
VM_OUT=${VM_OUT:-}
SEED=${TEST_SEED:-$(($(date +%s) % 1000000))}
SCENARIOS=${*:-ext4 swap shrink reconnect tls local-swap local-swap-shrink local-oom local-swap-rawdisk restart}
DEB_NEEDED="qemu-system-x86 busybox-static cpio nbd-client e2fsprogs util-linux socat nbdkit libnbd-bin binutils"

npass=0 nfail=0 nskip=0
result() { # result PASS|FAIL|SKIP NAME [WHY...]
	local r=$1 name=$2
	shift 2
	echo "$r: vm-$name${*:+: $*}"
	case $r in
	PASS) npass=$((npass + 1)) ;;
	FAIL) nfail=$((nfail + 1)) ;;
	SKIP) nskip=$((nskip + 1)) ;;
	esac
}
summary() {
	echo "$npass passed, $nfail failed, $nskip skipped"
	[ $nfail -eq 0 ]
	exit
}
skip_all() {
	local s
	for s in $SCENARIOS; do result SKIP "$s" "$@"; done
	summary
}

[ -n "$PLUGIN" ] && [ -n "$VMPROG" ] && [ -n "$VM_OUT" ] || {
	echo "run.sh: set ZRAMD_PLUGIN, VMPROG and VM_OUT (make check-vm does)" >&2
	exit 2
}
[ "$PLUGIN" = memory ] || [ -f "$PLUGIN" ] || {
	echo "run.sh: $PLUGIN: no such plugin" >&2
	exit 2
}
echo "vm: TEST_SEED=$SEED plugin=$PLUGIN"

# --- what the host needs -----------------------------------------------

have_all() {
	command -v qemu-system-x86_64 && command -v socat && command -v nbdkit &&
		command -v busybox && command -v cpio && command -v nbd-client
} >/dev/null
if ! have_all || ! command -v mke2fs >/dev/null || ! command -v strings >/dev/null; then
	missing=$(for p in $DEB_NEEDED; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$p"
	done)
	if [ -n "$missing" ] && [ "$(id -u)" = 0 ]; then
		echo "vm: installing" $missing
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
				apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; }
	fi
	have_all || skip_all "missing host tools (need packages: $DEB_NEEDED)"
fi

mkdir -p "$VM_OUT"
export ZRAMD_PLUGIN="$PLUGIN"
guest=$("$here/mkguest.sh" "$VM_OUT" "$VMPROG" "$here/init" 2>"$VM_OUT/mkguest.log")
rc=$?
cat "$VM_OUT/mkguest.log" >&2
case $rc in
0) eval "$guest" ;;
77) skip_all "$(grep '^mkguest:' "$VM_OUT/mkguest.log" | tail -1)" ;;
*) echo "run.sh: mkguest.sh failed ($rc)" >&2
	for s in $SCENARIOS; do result FAIL "$s" "guest build failed"; done
	summary ;;
esac
echo "vm: guest kernel $KVER, initramfs $(basename "$INITRD")"

# --- one scenario's nbdkit and guest ------------------------------------

work= nbd_pid= qemu_pid=
cleanup() {
	if [ -n "$qemu_pid" ]; then
		kill "$qemu_pid" 2>/dev/null
		wait "$qemu_pid" 2>/dev/null
	fi
	qemu_pid=
	if [ -n "$nbd_pid" ]; then
		kill "$nbd_pid" 2>/dev/null
		wait "$nbd_pid" 2>/dev/null
	fi
	nbd_pid=
	if [ -n "$work" ]; then
		if [ "${VM_KEEP:-0}" = 1 ]; then
			echo "vm: kept $work"
		else
			rm -rf "$work"
		fi
	fi
	work=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_nbdkit ARGS...: zramd (or the memory plugin) on $work/nbd.sock.
# Returns 1, with the log in $work/nbdkit.log, if it does not come up.
start_nbdkit() {
	local plugin=$PLUGIN i
	# shellcheck disable=SC2086 # VM_NBDKIT_* are lists of words
	nbdkit --exit-with-parent -f -U "$work/nbd.sock" -P "$work/nbdkit.pid" \
		${VM_NBDKIT_OPTS:-} "$plugin" "$@" ${VM_NBDKIT_ARGS:-} \
		>"$work/nbdkit.log" 2>&1 &
	nbd_pid=$!
	for ((i = 0; i < 200; i++)); do
		[ -S "$work/nbd.sock" ] && [ -s "$work/nbdkit.pid" ] && return 0
		kill -0 "$nbd_pid" 2>/dev/null || break
		sleep 0.05
	done
	wait "$nbd_pid" 2>/dev/null
	nbd_pid=
	return 1
}

# stop_nbdkit: SIGTERM and wait, so the stats file gets its final write.
stop_nbdkit() {
	[ -n "$nbd_pid" ] || return 0
	kill -TERM "$nbd_pid" 2>/dev/null
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$nbd_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$nbd_pid" 2>/dev/null
	wait "$nbd_pid" 2>/dev/null
	nbd_pid=
}

# The plugin's parameters for a device of SIZE with a stats file.
# (The memory plugin takes only size=.)
dev_args() {
	if [ "$PLUGIN" = memory ]; then
		echo "size=$1"
	else
		echo "size=$1 stats=$work/stats"
	fi
}

# zstat KEY: a counter from the stats file ("" if absent).
zstat() {
	[ -f "$work/stats" ] || return 0
	awk -v k="$1" '$1 == k { print $2; exit }' "$work/stats"
}

# boot SCENARIO MEM_MIB TIMEOUT [KERNEL_ARGS...]: run the guest; its
# console goes to $work/console.log, its markers to $work/markers.
# Returns 0 if the guest printed PASS, 1 otherwise ($why says why).
boot() {
	local scenario=$1 mem=$2 tmo=${VM_TIMEOUT:-$3} t0 rc
	shift 3
	local -a link
	t0=$SECONDS
	# The guest's 10.0.2.100:10809 exists only inside qemu's user-mode
	# network (restrict=on: the guest reaches nothing else), and leads
	# to nbdkit's unix socket.
	if [ "${scenario#local-}" != "$scenario" ] || [ "$scenario" = restart ]; then
		# The daemon runs in the guest: no link to the host's nbdkit.
		link=(-netdev "user,id=n0,restrict=on")
		[ -f "$work/scratch.img" ] &&
			link+=(-drive "file=$work/scratch.img,if=virtio,format=raw${SCRATCH_OPTS:-}")
	elif [ "$scenario" = reconnect ] || [ "$scenario" = tls ]; then
		# For every connection the guest opens, qemu runs a socat to
		# nbdkit, so the guest can detach and attach again. (Slower
		# per request than a chardev, so only this scenario uses it.)
		link=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:10809-cmd:socat -b 262144 - UNIX-CONNECT:$work/nbd.sock")
	else
		# One connection, made by qemu at start-up.
		link=(-chardev "socket,id=nbd,path=$work/nbd.sock"
			-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:10809-chardev:nbd")
	fi
	timeout -k 5 "$tmo" qemu-system-x86_64 \
		-machine accel=tcg -cpu max -m "$mem" -smp 1 \
		-nographic -no-reboot \
		-kernel "$KERNEL" -initrd "${BOOT_INITRD:-$INITRD}" \
		-append "console=ttyS0 panic=-1 quiet zswap.enabled=0 zvm.scenario=$scenario zvm.seed=$SEED $*" \
		"${link[@]}" \
		-device virtio-net-pci,netdev=n0,romfile= \
		</dev/null >"$work/console.log" 2>&1 &
	qemu_pid=$!
	# While it runs: once the daemon has failed a request, the guest
	# cannot pass (and a guest whose swap writes fail may retry for
	# ever), so stop it at once.
	local aborted=
	while kill -0 "$qemu_pid" 2>/dev/null; do
		sleep 1
		local fr fw
		fr=$(zstat failed_reads) fw=$(zstat failed_writes)
		if [ "${fr:-0}" != 0 ] || [ "${fw:-0}" != 0 ]; then
			aborted="the daemon failed requests (failed_reads ${fr:-0}, failed_writes ${fw:-0})"
			kill "$qemu_pid" 2>/dev/null
			break
		fi
	done
	wait "$qemu_pid"
	rc=$?
	qemu_pid=
	boot_secs=$((SECONDS - t0))
	tr -d '\r' <"$work/console.log" | grep -ao 'ZVM-[A-Z]*: .*' >"$work/markers"
	if [ -z "$aborted" ] && grep -q "^ZVM-RESULT: PASS $scenario\$" "$work/markers"; then
		why=
		return 0
	fi
	why=$aborted
	[ -n "$why" ] || why=$(sed -n 's/^ZVM-RESULT: FAIL [^ ]* //p' "$work/markers" | head -1)
	if [ -z "$why" ]; then
		case $rc in
		124 | 137) why="guest timed out after ${tmo}s" ;;
		*) why="guest gave no result (qemu exit $rc)" ;;
		esac
	fi
	echo "--- $scenario: last lines of the guest console:"
	tr -d '\r' <"$work/console.log" | tail -25 | sed 's/^/  | /'
	return 1
}

# ginfo KEY: a ZVM-INFO value the guest printed.
ginfo() {
	awk -v k="$1" '$1 == "ZVM-INFO:" && $2 == k { print $3; exit }' "$work/markers"
}

show_steps() {
	awk '$1 == "ZVM-INFO:" && $2 == "step" { printf "  %s@%ss", $4, $3 }' "$work/markers"
}

new_work() {
	cleanup
	work=$(mktemp -d /tmp/zramd-vm.XXXXXX)
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# --- the scenarios --------------------------------------------------------

# begin NAME SIZE MEM TIMEOUT [KERNEL_ARG...]: a fresh work folder, nbdkit
# serving a SIZE device, and the guest booted for scenario NAME (see
# boot). If either fails, NAME's FAIL is reported and 1 returned.
begin() {
	local name=$1 size=$2
	shift 2
	new_work
	start_nbdkit $(dev_args "$size") ||
		{ result FAIL "$name" "nbdkit did not start: $(head -1 "$work/nbdkit.log")"; return 1; }
	boot "$name" "$@" || { result FAIL "$name" "$why"; return 1; }
}

scenario_ext4() {
	begin ext4 256M 256 300 || return
	echo "vm-ext4: $(ginfo files) files (and $(ginfo others) directories and symlinks), $(ginfo bytes) copied, checked after remount;$(show_steps); ${boot_secs}s"
	stop_nbdkit
	[ "$PLUGIN" = memory ] ||
		echo "vm-ext4: stats: orig_data_size $(mib $(zstat orig_data_size)), compr_data_size $(mib $(zstat compr_data_size)), same_pages $(zstat same_pages), notify_free $(zstat notify_free), failed_reads $(zstat failed_reads), failed_writes $(zstat failed_writes)"
	result PASS ext4
}

# check_swap NAME: the daemon's side of a swap run. RSS is read while the
# swapped data is still stored (swapon without --discard: the kernel
# leaves it there), then nbdkit is stopped so the stats file is final.
# Sets $why and returns 1 if a check fails.
check_swap() {
	local name=$1 rss pswpout swapped orig compr same used
	rss=$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$nbd_pid/status" 2>/dev/null)
	stop_nbdkit
	pswpout=$(ginfo pswpout)
	swapped=$((${pswpout:-0} * 4096))
	[ -n "$pswpout" ] &&
		echo "vm-$name: guest RAM $(($(ginfo memtotal_kib) / 1024)) MiB, working set $SWAP_MIB MiB; swapped out $(mib $swapped) (pswpout $pswpout), swapped in $(mib $(($(ginfo pswpin) * 4096))) (pswpin $(ginfo pswpin))"
	if [ "$PLUGIN" = memory ]; then
		echo "vm-$name: daemon RSS $(mib ${rss:-0}) (memory plugin: no stats)"
		return 0
	fi
	orig=$(zstat orig_data_size) compr=$(zstat compr_data_size)
	same=$(zstat same_pages) used=$(zstat mem_used_total)
	echo "vm-$name: daemon VmRSS $(mib ${rss:-0}); stats: orig_data_size $(mib ${orig:-0}), compr_data_size $(mib ${compr:-0}), mem_used_total $(mib ${used:-0}), mem_used_max $(mib $(zstat mem_used_max)), mem_limit $(mib $(zstat mem_limit)), same_pages ${same:-absent}, huge_pages $(zstat huge_pages), failed_writes $(zstat failed_writes), bd_writes $(zstat bd_writes), bd_reads $(zstat bd_reads), bd_count $(zstat bd_count)"
	if [ "${orig:-0}" -gt 0 ] && [ "$swapped" -gt 0 ] && [ -n "$rss" ]; then
		awk -v o="$orig" -v c="${compr:-0}" -v u="${used:-0}" -v r="$rss" -v s="$swapped" 'BEGIN {
			printf "vm-'"$name"': ratios: orig/compr %.2f, orig/mem_used_total %.2f, VmRSS/swapped-out %.2f, VmRSS/orig %.2f\n",
				o / (c ? c : 1), o / (u ? u : 1), r / s, r / o }'
	fi
	if [ "$swapped" -lt $((64 << 20)) ]; then
		why="only $(mib $swapped) went to swap; the working set must be well past the guest's RAM"
	elif [ -z "$same" ] || [ "$same" -eq 0 ]; then
		why="same_pages is ${same:-absent}, expected > 0"
	elif [ -z "$orig" ] || [ -z "$compr" ] || [ "$compr" -ge "$orig" ]; then
		why="no compression: compr_data_size ${compr:-absent}, orig_data_size ${orig:-absent}"
	elif [ -z "$rss" ] || [ $((rss * 3)) -gt $((swapped * 2)) ]; then
		why="daemon VmRSS $(mib ${rss:-0}) is not well below (2/3 of) the $(mib $swapped) swapped out"
	else
		return 0
	fi
	return 1
}

SWAP_MIB=${VM_SWAP_MIB:-160}
SWAP_MEM=${VM_SWAP_MEM:-160}

scenario_swap() {
	begin swap 256M "$SWAP_MEM" 600 zvm.swap_mib=$SWAP_MIB || return
	grep '^vmprog:' <(tr -d '\r' <"$work/console.log") | sed 's/^/vm-swap: /'
	if check_swap swap; then
		echo "vm-swap:$(show_steps); ${boot_secs}s"
		result PASS swap
	else
		result FAIL swap "$why"
	fi
}

# The swap run again, with a pool limit far below the data and a backing
# file: only a working shrinker lets it pass. Until the plugin has one,
# this reports SKIP with the reason, never PASS.
scenario_shrink() {
	local bdw
	if [ "$PLUGIN" = memory ]; then
		result SKIP shrink "the memory plugin has no shrinker"
		return
	fi
	new_work
	if ! start_nbdkit $(dev_args 256M) mem_limit=16M "backing=$work/backing"; then
		if grep -qE 'backing|mem_limit' "$work/nbdkit.log"; then
			result SKIP shrink "the plugin refuses mem_limit/backing: $(grep -m1 -E 'backing|mem_limit' "$work/nbdkit.log")"
		else
			result FAIL shrink "nbdkit did not start: $(head -1 "$work/nbdkit.log")"
		fi
		return
	fi
	boot swap "$SWAP_MEM" 600 zvm.swap_mib=$SWAP_MIB
	local guest_ok=$?
	local guest_why=$why
	check_swap shrink
	local host_ok=$?
	local bdr max limit
	bdw=$(zstat bd_writes) bdr=$(zstat bd_reads)
	max=$(zstat mem_used_max) limit=$(zstat mem_limit)
	# A guest that failed is a failure, whatever the shrinker did.
	if [ $guest_ok != 0 ]; then
		result FAIL shrink "$guest_why (bd_writes ${bdw:-absent})"
	elif [ -z "$bdw" ] || [ "$bdw" = 0 ]; then
		result SKIP shrink "the shrinker did not evict (bd_writes ${bdw:-absent})"
	elif [ $host_ok != 0 ]; then
		result FAIL shrink "$why"
	elif [ "${bdr:-0}" = 0 ]; then
		# The guest read every page back, and some had been evicted.
		result FAIL shrink "bd_reads ${bdr:-absent}: nothing was read back from the backing file"
	elif [ -z "$max" ] || [ -z "$limit" ] || [ "$max" -gt "$limit" ]; then
		result FAIL shrink "the pool outgrew mem_limit: mem_used_max ${max:-absent} > mem_limit ${limit:-absent}"
	else
		echo "vm-shrink:$(show_steps); ${boot_secs}s"
		result PASS shrink
	fi
}

# host_compare URI: the host reads the whole device at URI with nbdcopy
# and compares every byte with $work/expect. Sets $why and returns 1 if
# the read fails or the bytes differ.
host_compare() {
	if ! nbdcopy "$1" "$work/got" 2>"$work/nbdcopy.err"; then
		why="nbdcopy from the daemon failed: $(head -1 "$work/nbdcopy.err")"
		return 1
	fi
	if ! cmp "$work/expect" "$work/got"; then
		why="the host reads other bytes than the guest wrote"
		return 1
	fi
}

# Write, detach, attach again, over one nbdkit; then the host reads the
# device itself and compares every byte with what vmprog makes.
scenario_reconnect() {
	begin reconnect 64M 160 300 || return
	local a=$SEED b=$((SEED + 1000))
	{
		"$VMPROG" gen $a 0 4096
		"$VMPROG" gen $b 4096 4096
		head -c $((32 << 20)) /dev/zero
	} >"$work/expect"
	host_compare "nbd+unix:///?socket=$work/nbd.sock" ||
		{ result FAIL reconnect "$why"; return; }
	echo "vm-reconnect: 3 connections, 32 MiB written and checked in the guest and from the host;$(show_steps); ${boot_secs}s"
	result PASS reconnect
}

# The kernel client over TLS (X.509: nbd-client has no PSK), as README
# tells users to serve TCP: nbdkit --tls=require --tls-verify-peer. The
# guest's keys ride in a second cpio archive after the cached image (the
# kernel unpacks both), so the image stays cached. In the guest: attach
# without TLS and with another CA's certificate must both fail; with the
# right keys, 16 MiB written and checked. Then the host reads it over
# TLS and compares every byte.
scenario_tls() {
	if [ "$PLUGIN" != memory ] && ! command -v certtool >/dev/null; then
		result SKIP tls "certtool not found (Debian package gnutls-bin)"
		return
	fi
	new_work
	# shellcheck source=../e2e/tls_certs.sh
	source "$here/../e2e/tls_certs.sh"
	if ! make_certs "$work/tls"; then
		result FAIL tls "certtool failed: $(tail -1 "$work/tls/certtool.log")"
		return
	fi
	local g=$work/guestroot/etc/zvm/tls
	mkdir -p "$g"
	cp "$work/tls/client/ca-cert.pem" "$work/tls/client/client-cert.pem" \
		"$work/tls/client/client-key.pem" "$g/"
	cp "$work/tls/stranger/client-cert.pem" "$g/stranger-cert.pem"
	cp "$work/tls/stranger/client-key.pem" "$g/stranger-key.pem"
	(cd "$work/guestroot" && find . | cpio -o -H newc --quiet -R 0:0) >"$work/keys.cpio"
	cat "$INITRD" "$work/keys.cpio" >"$work/initrd.cpio"
	VM_NBDKIT_OPTS="${VM_NBDKIT_OPTS:-} --tls=require --tls-verify-peer --tls-certificates=$work/tls/server" \
		start_nbdkit $(dev_args 64M) ||
		{ result FAIL tls "nbdkit did not start: $(head -1 "$work/nbdkit.log")"; return; }
	BOOT_INITRD=$work/initrd.cpio boot tls 160 300 || { result FAIL tls "$why"; return; }
	{
		"$VMPROG" gen "$SEED" 0 4096
		head -c $((48 << 20)) /dev/zero
	} >"$work/expect"
	host_compare "nbds+unix:///?socket=$work/nbd.sock&tls-certificates=$work/tls/client" ||
		{ result FAIL tls "$why"; return; }
	echo "vm-tls: nbd-client without TLS and with another CA's certificate refused, 16 MiB written and checked over TLS in the guest and from the host;$(show_steps); ${boot_secs}s"
	result PASS tls
}

# --- the daemon in the guest, as the guest's own swap -----------------------
#
# local-swap, local-swap-shrink, local-oom: nbdkit and the plugin run
# inside the guest (mkguest.sh puts them there), and the guest attaches
# them with systemd/zramd-swap, as the unit does. VM_LOCAL_MEM (MiB, default
# 256) is the guest's RAM, VM_LOCAL_MIB the hog's working set (default
# 208, the 203 MiB the kernel leaves usable, for local-swap; twice the
# guest's RAM for local-swap-shrink, whose pool mem_limit bounds; the
# guest's RAM for the others), VM_LOCAL_ROUNDS its
# passes (default 2), VM_LOCAL_HOGMAX the memory.max (MiB) of the cgroup the
# hog runs in (default 48; 0: none, and the guest deadlocks, see
# tests/vm/README.md). VM_LOCAL_CAPS=nosysres
# (nbdkit without CAP_SYS_RESOURCE: no PR_SET_IO_FLUSHER), VM_LOCAL_MLOCK=off
# or swap (nbdkit --swap instead of mlock=onfault), VM_LOCAL_OOMADJ=0 (no
# oom_score_adj -1000), VM_LOCAL_MAXKB=hw (the device's requests as large
# as the driver allows, not zramd-swap's 64 KiB) switch one of the daemon's
# measures off, to see what fails without it; VM_LOCAL_ZARGS=K=V,... adds
# plugin parameters (see tests/vm/README.md).

LOCAL_MEM=${VM_LOCAL_MEM:-256}
LOCAL_MIB=${VM_LOCAL_MIB:-$((LOCAL_MEM))}
# local-swap, with nothing to bound the pool: the working set and its
# compressed copy (~1/2.1 of it) must fit the guest's RAM together.
LOCAL_SWAP_MIB=${VM_LOCAL_MIB:-208}
# local-swap-shrink: mem_limit and the backing file bound the pool, so the
# working set is twice the guest's RAM, as issue 13 asks.
LOCAL_SHRINK_MIB=${VM_LOCAL_MIB:-$((2 * LOCAL_MEM))}
LOCAL_ROUNDS=${VM_LOCAL_ROUNDS:-2}
local_kargs() {
	echo "zvm.caps=${VM_LOCAL_CAPS:-all} zvm.mlock=${VM_LOCAL_MLOCK:-onfault} zvm.oomadj=${VM_LOCAL_OOMADJ:-1} zvm.minfree=${VM_LOCAL_MINFREE:-16384} zvm.hogmax=${VM_LOCAL_HOGMAX:-48}${VM_LOCAL_MAXKB:+ zvm.maxkb=$VM_LOCAL_MAXKB}${VM_LOCAL_ZARGS:+ zvm.zargs2=$VM_LOCAL_ZARGS}"
}

# local_report NAME: the guest's figures.
local_report() {
	local name=$1
	grep -a -E '^(vmprog|nbdkit-log|oom):' <(tr -d '\r' <"$work/console.log") | sed "s/^/vm-$name: /"
	echo "vm-$name: guest RAM $(($(ginfo memtotal_kib) / 1024)) MiB; daemon at start: VmRSS $(ginfo start_rss_kib) KiB, VmLck $(ginfo start_lck_kib) KiB, $(ginfo start_threads) threads"
	local out=$(ginfo pswpout) in=$(ginfo pswpin) rss=$(ginfo rss_kib) orig=$(ginfo orig_data_size) used=$(ginfo mem_used_total)
	echo "vm-$name: pswpout ${out:-?} ($(mib $((${out:-0} * 4096)))), pswpin ${in:-?} ($(mib $((${in:-0} * 4096)))); daemon VmRSS $(mib $((${rss:-0} * 1024))), VmLck $(ginfo lck_kib) KiB; orig_data_size $(mib ${orig:-0}), mem_used_total $(mib ${used:-0}), mem_used_max $(mib $(ginfo mem_used_max)), same_pages $(ginfo same_pages), bd_writes $(ginfo bd_writes), bd_reads $(ginfo bd_reads); hog wall $(ginfo wall_s) s"
	[ -n "$rss" ] && [ "${orig:-0}" -gt 0 ] && awk -v o="$orig" -v u="${used:-0}" -v r="$rss" 'BEGIN {
		printf "vm-'"$name"': ratios: orig/mem_used_total %.2f, orig/VmRSS %.2f\n", o / (u ? u : 1), o / (r * 1024) }'
	echo "vm-$name:$(show_steps); ${boot_secs}s"
}

scenario_local_swap() {
	new_work
	boot local-swap "$LOCAL_MEM" 300 zvm.swap_mib=$LOCAL_SWAP_MIB \
		zvm.rounds=$LOCAL_ROUNDS $(local_kargs) ||
		{ result FAIL local-swap "$why"; return; }
	local_report local-swap
	[ "$(ginfo pswpout)" -gt $((64 << 8)) ] ||
		{ result FAIL local-swap "only $(ginfo pswpout) pages went to swap"; return; }
	result PASS local-swap
}

scenario_local_swap_shrink() {
	new_work
	truncate -s 1G "$work/scratch.img"
	boot local-swap-shrink "$LOCAL_MEM" 600 zvm.swap_mib=$LOCAL_SHRINK_MIB \
		zvm.rounds=$LOCAL_ROUNDS $(local_kargs) \
		zvm.zargs=mem_limit=48M,backing=/mnt/backing ||
		{ result FAIL local-swap-shrink "$why"; return; }
	local_report local-swap-shrink
	if [ "${VM_LOCAL_ROUNDS:-3}" -gt 0 ] && [ "$(ginfo bd_writes)" = 0 ]; then
		result FAIL local-swap-shrink "the shrinker wrote nothing back (bd_writes 0)"
	elif [ "$(ginfo bd_reads)" = 0 ]; then
		result FAIL local-swap-shrink "nothing was read back from the backing file (bd_reads 0)"
	else
		result PASS local-swap-shrink
	fi
}

# local-swap-shrink with the backing store on the scratch virtio disk
# itself, as a raw block device (backing=/dev/vda, no file system): the
# guest sees it as a spare disk, as zram users give backing_dev a spare
# partition. discard=unmap passes the daemon's discards of freed blocks
# to the host file. Needs bd_writes > 0 and bd_reads > 0, no backing
# read error, and vmprog's 0 mismatches.
scenario_local_swap_rawdisk() {
	local name=local-swap-rawdisk
	new_work
	truncate -s 1G "$work/scratch.img"
	SCRATCH_OPTS=,discard=unmap boot $name "$LOCAL_MEM" 300 \
		zvm.swap_mib=$LOCAL_MIB zvm.rounds=$LOCAL_ROUNDS $(local_kargs) \
		zvm.zargs=mem_limit=48M,backing=/dev/vda ||
		{ result FAIL $name "$why"; return; }
	local_report $name
	echo "vm-$name: bd_writes $(ginfo bd_writes), bd_reads $(ginfo bd_reads), bd_promotions $(ginfo bd_promotions), bd_checksum_errors $(ginfo bd_checksum_errors), bd_io_errors $(ginfo bd_io_errors); /dev/vda: $(ginfo vda_discard_sectors) sectors discarded; host scratch.img $(du -k "$work/scratch.img" | cut -f1) KiB allocated"
	if [ "$(ginfo bd_writes)" = 0 ]; then
		result FAIL $name "the shrinker wrote nothing back (bd_writes 0)"
	elif [ "$(ginfo bd_reads)" = 0 ]; then
		result FAIL $name "nothing was read back from /dev/vda (bd_reads 0)"
	elif [ "$(ginfo bd_checksum_errors)" != 0 ] || [ "$(ginfo bd_io_errors)" != 0 ]; then
		result FAIL $name "backing read errors: bd_checksum_errors $(ginfo bd_checksum_errors), bd_io_errors $(ginfo bd_io_errors)"
	else
		result PASS $name
	fi
}

scenario_local_oom() {
	new_work
	# The device (192 MiB) and RAM cannot hold the hog: its pages are
	# stored compressed in the same RAM.
	boot local-oom "$LOCAL_MEM" 300 zvm.swap_mib=$((LOCAL_MEM * 2 - 32)) \
		zvm.dev_mib=192 $(local_kargs) ||
		{ result FAIL local-oom "$why"; return; }
	local_report local-oom
	echo "vm-local-oom: the hog exited $(ginfo hog_exit); nbdkit kept its pid; the bystander's 32 MiB verified; a 192 MiB run after it passed"
	result PASS local-oom
}

# restart: the daemon (in the guest, as zramd.service runs it) is stopped
# with SIGTERM and started again under a mounted ext4 with a writer
# running; the kernel client waits (dead-connection timeout) and
# zramd-reconnect --watch gives it the new connection. VM_RESTART_MODE=
# oneshot runs zramd-reconnect once after the restart instead; plain or
# ioctl show what nbd-client alone does (see tests/vm/README.md).
scenario_restart() {
	new_work
	# zramd-reconnect and its libraries ride in a second archive (see
	# mkguest.sh), after the image.
	[ -n "${RESTART_CPIO:-}" ] ||
		{ result SKIP restart "zramd-reconnect was not built"; return; }
	cat "$INITRD" "$RESTART_CPIO" >"$work/initrd.cpio"
	BOOT_INITRD=$work/initrd.cpio boot restart 256 300 zvm.rmode=${VM_RESTART_MODE:-reconnect} \
		zvm.persist=${VM_RESTART_PERSIST:-1} zvm.files=${VM_RESTART_FILES:-48} \
		zvm.fpages=${VM_RESTART_PAGES:-64} ${VM_RESTART_DELAY:+zvm.delay=$VM_RESTART_DELAY}
	local ok=$?
	grep -a -E '^(kmsg|nbdkit-log|differs|watch):' <(tr -d '\r' <"$work/console.log") | sed 's/^/vm-restart: /'
	[ $ok = 0 ] || { result FAIL restart "$why"; return; }
	echo "vm-restart: $(ginfo written) files written, $(ginfo written_before_stop) before the stop; daemon stop exit $(ginfo stop_exit); e2fsck clean, every file as written;$(show_steps); ${boot_secs}s"
	result PASS restart
}

for ((rep = 1; rep <= ${VM_REPEAT:-1}; rep++)); do
	[ "${VM_REPEAT:-1}" -gt 1 ] && echo "vm: run $rep of $VM_REPEAT"
	for s in $SCENARIOS; do
		case $s in
		ext4 | swap | shrink | reconnect | tls) "scenario_$s" ;;
		local-swap | local-swap-shrink | local-oom) "scenario_${s//-/_}" ;;
		local-swap-rawdisk) scenario_local_swap_rawdisk ;;
		restart) scenario_restart ;;
		*) result FAIL "$s" "no such scenario" ;;
		esac
	done
done
cleanup
summary
