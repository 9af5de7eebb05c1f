# tests/e2e/functions.sh - shared prelude of the end-to-end tests
#
# Sourced by each tests/e2e/test-*.sh. A test reports each check with
# ok / not_ok / skip (or check DESC CMD...), and ends with `finish`, which
# prints the one summary line
#
#   N passed, N failed, N skipped
#
# and exits 1 if a check failed. `requires CMD` skips the whole script
# (exit 77, the reason printed) when a tool is missing. tests/e2e/run.sh
# runs every script and prints the grand total.
#
# To run one script by hand, after `make BUILD=build all`:
#
#   PLUGIN_SO=$PWD/build/nbdkit-zramd-plugin.so tests/e2e/test-nbdsh.sh
#
# Environment:
#   PLUGIN_SO     the plugin (required)
#   E2E_CACHE     where expensive inputs (the real-data tar) are kept
#   E2E_PRELOAD   a sanitizer runtime to LD_PRELOAD into nbdkit (only)
#   E2E_QUICK=1   smaller workloads (sanitizer runs)
#   E2E_ALLOCATORS  allocators to test (default: every one built in)

set -u
# nbdsh (python3 -m nbd) needs Debian's python3, not pyenv's.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
# The python helpers imported from the tree leave no __pycache__ there.
export PYTHONDONTWRITEBYTECODE=1

: "${PLUGIN_SO:?set PLUGIN_SO to the plugin to test}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_DIR=$TOP/tests/e2e
NAME=$(basename "$0" .sh)
: "${E2E_CACHE:=/tmp/zramd-e2e-cache}"
: "${E2E_PRELOAD:=}"
: "${E2E_QUICK:=}"

npass=0 nfail=0 nskip=0

ok() { echo "ok - $*"; npass=$((npass + 1)); }
not_ok() { echo "FAIL - $*"; nfail=$((nfail + 1)); }
skip() { echo "skip - $*"; nskip=$((nskip + 1)); }

# check DESCRIPTION COMMAND...: ok if COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# requires CMD [REASON]: skip the whole script if CMD is not there.
requires() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "SKIP: $NAME: ${2:-$1 is not installed}"
		exit 77
	fi
}

# skip_all REASON: skip the whole script.
skip_all() {
	echo "SKIP: $NAME: $*"
	exit 77
}

finish() {
	if [ $((npass + nfail + nskip)) -eq 0 ]; then
		echo "$NAME: no check ran"
		nfail=1
	fi
	echo "$npass passed, $nfail failed, $nskip skipped"
	[ "$nfail" -eq 0 ]
	exit
}

# Temporary files go in $TMP, removed at exit after the cleanup hooks,
# which run in reverse order of registration.
TMP=$(mktemp -d /tmp/zramd-e2e.XXXXXX)
cleanup_hooks=()
on_exit() { cleanup_hooks=("$1" "${cleanup_hooks[@]}"); }
run_cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
	rm -rf "$TMP"
}
trap run_cleanup EXIT
trap 'exit 130' INT TERM

# nbdkit loads the plugin, so a sanitized plugin needs the sanitizer
# runtime preloaded into every nbdkit run (and only there). Not for
# background runs: $! would be the subshell's pid.
# A run that hangs is killed after 2 minutes.
nbdkit() {
	timeout 120 env ${E2E_PRELOAD:+LD_PRELOAD=$E2E_PRELOAD} nbdkit "$@"
}

# wait_for TENTHS CMD...: retry CMD every 0.1 s, at most TENTHS times.
wait_for() {
	local n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# The allocators to test: E2E_ALLOCATORS, or every one built in.
allocators() {
	if [ -n "${E2E_ALLOCATORS:-}" ]; then
		echo "$E2E_ALLOCATORS"
		return
	fi
	nbdkit "$PLUGIN_SO" --dump-plugin |
		sed -n 's/^zramd_allocators=//p' | tr , ' '
}

# start_zramd [PARAM...]: start nbdkit with the plugin on a private unix
# socket, in the foreground of a background job, and wait until it
# serves. Sets SOCK, URI, ZRAMD_PID, ZRAMD_LOG and STATS (the stats file,
# written every second; a stats=PATH among the PARAMs names it). Only
# nbdkit gets E2E_PRELOAD; ZRAMD_NBDKIT_OPTS are nbdkit's own options
# (e.g. --threads=1), empty by default: nbdkit's 16 threads per
# connection stress the plugin's concurrency more.
nstarted=0
start_zramd() {
	nstarted=$((nstarted + 1))
	SOCK=$TMP/zramd$nstarted.sock
	URI="nbd+unix:///?socket=$SOCK"
	STATS=$TMP/zramd$nstarted.stats
	ZRAMD_LOG=$TMP/zramd$nstarted.log
	local pidfile=$TMP/zramd$nstarted.pid defaults=() a
	for a in "$@"; do
		[[ $a == stats=* ]] && STATS=${a#stats=}
	done
	[[ " $* " == *" stats="* ]] || defaults+=(stats="$STATS")
	[[ " $* " == *" stats_interval="* ]] || defaults+=(stats_interval=1)
	# (env, not the nbdkit function: $! must be nbdkit's own pid)
	env ${E2E_PRELOAD:+LD_PRELOAD=$E2E_PRELOAD} \
		nbdkit -f ${ZRAMD_NBDKIT_OPTS:-} -U "$SOCK" -P "$pidfile" "$PLUGIN_SO" \
		"${defaults[@]}" "$@" 2>"$ZRAMD_LOG" &
	ZRAMD_PID=$!
	on_exit "kill $ZRAMD_PID 2>/dev/null"
	# Sanitized builds start slowly: allow 30 s.
	if ! wait_for 300 test -S "$SOCK" -a -s "$pidfile"; then
		echo "nbdkit did not start ($*):"
		cat "$ZRAMD_LOG"
		return 1
	fi
}

# stop_zramd: stop nbdkit (SIGTERM: clean shutdown, final stats written)
# and check that it exited cleanly with no sanitizer report. Returns 1 and
# prints the log otherwise.
#
# Under a preloaded sanitizer runtime, nbdkit sometimes hangs in exit()
# after the plugin is unloaded: glibc's setlocale lock is found corrupted
# when libp11-kit's destructor runs (it happens with nbdkit's own plugins
# too). There, a process still alive 20 s after SIGTERM is killed and
# stop_zramd returns 2 (cannot tell), unless its log shows a report.
stop_zramd() {
	local rc=0 limit=600 hung=
	[ -n "$E2E_PRELOAD" ] && limit=200
	kill -TERM "$ZRAMD_PID" 2>/dev/null
	if ! wait_for $limit eval "! kill -0 $ZRAMD_PID 2>/dev/null"; then
		echo "nbdkit did not exit within $((limit / 10)) s of SIGTERM"
		kill -KILL "$ZRAMD_PID" 2>/dev/null
		hung=1
	fi
	wait "$ZRAMD_PID" 2>/dev/null || rc=$?
	if grep -qE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' \
		"$ZRAMD_LOG"; then
		cat "$ZRAMD_LOG"
		return 1
	fi
	if [ -n "$hung" ] && [ -n "$E2E_PRELOAD" ]; then
		echo "(the known hang in exit under a preloaded sanitizer)"
		return 2
	fi
	if [ "$rc" -ne 0 ]; then
		echo "nbdkit exited with status $rc; its log:"
		cat "$ZRAMD_LOG"
		return 1
	fi
}

# check_stop LABEL: stop_zramd as a check ("LABEL: clean shutdown").
check_stop() {
	local rc=0
	stop_zramd || rc=$?
	case $rc in
	0) ok "$1: clean shutdown" ;;
	2) skip "$1: clean shutdown (cannot tell: nbdkit hung in exit()" \
		"under the sanitizer runtime)" ;;
	*) not_ok "$1: clean shutdown" ;;
	esac
}

# stat_value KEY [FILE]: a counter from the stats file.
stat_value() {
	sed -n "s/^$1 //p" "${2:-$STATS}"
}

# wait_stat KEY OP VALUE: wait (up to 10 s) until the stats file has
# KEY OP VALUE (OP as in test: -eq, -ge, ...).
wait_stat() {
	local key=$1 op=$2 want=$3
	_stat_is() {
		local v
		v=$(stat_value "$key" 2>/dev/null)
		[ -n "$v" ] && [ "$v" "$op" "$want" ]
	}
	wait_for 100 _stat_is
}

# nbdsh_checks LABEL [--base-allocation] -c CODE...: run python checks with
# nbdsh on $URI. They print "ok - ..." / "FAIL - ..." lines, which are
# counted here; a crash counts as one failure.
nbdsh_checks() {
	local label=$1 out rc=0 pre=()
	shift
	if [ "${1:-}" = --base-allocation ]; then
		pre=(--base-allocation)
		shift
	fi
	out=$(nbdsh "${pre[@]}" -u "$URI" "$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "$label: ${line#ok - }" ;;
		"FAIL - "*) not_ok "$label: ${line#FAIL - }" ;;
		*) echo "$line" ;;
		esac
	done <<<"$out"
	[ "$rc" -eq 0 ] || not_ok "$label: nbdsh exited with $rc"
}

# realdata_tar: print the path of a ~160 MiB tar of system files (binaries,
# libraries, documentation), made once and kept in $E2E_CACHE.
realdata_tar() {
	local f=$E2E_CACHE/realdata.tar size=$((160 << 20))
	[ -n "$E2E_QUICK" ] && f=$E2E_CACHE/realdata-small.tar size=$((32 << 20))
	if [ ! -s "$f" ]; then
		mkdir -p "$E2E_CACHE"
		tar cf - -C / usr/lib/x86_64-linux-gnu usr/bin usr/share/doc \
			usr/share/man usr/share/locale 2>/dev/null |
			head -c "$size" >"$f.tmp"
		mv "$f.tmp" "$f"
	fi
	echo "$f"
}

# ext4_check [--fstrim] LABEL SRC COPY: ext4 on the running device
# ($SOCK): nbdfuse exposes it as a file, losetup makes that a block
# device; then the checks "LABEL: ...": mkfs.ext4, COPY (the contents of
# the directory SRC copied in), fstrim (with --fstrim), umount, fsck -fn
# clean, mount again read-only, every file the same as in SRC; then all of
# it comes down. Returns 1, having skipped with the reason, when nbdfuse
# or losetup cannot be used here (the caller stops the device); a mount
# that fails is a skip too. Needs root, /dev/fuse and loop devices.
ext4_check() {
	local fstrim= label src copy fuse mnt loop
	if [ "$1" = --fstrim ]; then
		fstrim=1
		shift
	fi
	label=$1 src=$2 copy=$3
	fuse=$TMP/fuse-$nstarted mnt=$TMP/mnt-$nstarted
	mkdir -p "$fuse" "$mnt"
	nbdfuse "$fuse/disk" --unix "$SOCK" &
	on_exit "fusermount3 -u '$fuse' 2>/dev/null"
	if ! wait_for 100 test -s "$fuse/disk"; then
		skip "$label: nbdfuse could not mount (no FUSE here?)"
		return 1
	fi
	if ! loop=$(losetup -f --show "$fuse/disk" 2>"$TMP/losetup.err"); then
		skip "$label: losetup failed: $(cat "$TMP/losetup.err")"
		fusermount3 -u "$fuse"
		return 1
	fi
	on_exit "losetup -d $loop 2>/dev/null"
	check "$label: mkfs.ext4" mkfs.ext4 -q -E nodiscard "$loop"
	if ! mount "$loop" "$mnt" 2>"$TMP/mount.err"; then
		skip "$label: mount failed: $(cat "$TMP/mount.err")"
	else
		on_exit "umount '$mnt' 2>/dev/null"
		check "$label: $copy" cp -a "$src/." "$mnt/"
		[ -z "$fstrim" ] || check "$label: fstrim" fstrim "$mnt"
		check "$label: umount" umount "$mnt"
		check "$label: fsck -fn is clean" e2fsck -fn "$loop"
		check "$label: mount again" mount -o ro "$loop" "$mnt"
		check "$label: every file is the same" \
			diff -r --no-dereference "$src" "$mnt" -x lost+found
		umount "$mnt"
	fi
	losetup -d "$loop"
	fusermount3 -u "$fuse"
	wait_for 50 test ! -e "$fuse/disk"
}

# set_sectors_py SEED: SECTORS_PY, nbdsh arguments that run
# tests/e2e/seeded_sectors.py with that seed before a test's own code:
# sector(i), write_sectors, wrong_sectors, read_all, fill_until_full.
#   nbdsh_checks LABEL "${SECTORS_PY[@]}" -c 'CODE'
set_sectors_py() {
	SECTORS_PY=(-c "seed = $1"
		-c "exec(open('$E2E_DIR/seeded_sectors.py').read())")
}

# evict_sectors LABEL N MIN: write the seeded sectors 0..N-1 (to a device
# whose mem_limit is below them), wait for the next stats file, and check
# that more than MIN of them went to the backing file.
evict_sectors() {
	nbdsh_checks "$1" "${SECTORS_PY[@]}" -c "
write_sectors(0, $2)
print('ok - %d KiB written' % ($2 * 4))
"
	sleep 1.2
	check "$1: sectors on the backing file ($(stat_value bd_count))" \
		test "$(stat_value bd_count)" -gt "$3"
}
