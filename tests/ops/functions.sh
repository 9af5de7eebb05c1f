# tests/ops/functions.sh - shared prelude of the operations shell tests
#
# Sourced by each tests/ops/test-*.sh. A test script reports each check
# with ok/not_ok/skip, one line each, and ends with `finish`, which prints
#
#   test-NAME.sh: N passed, N failed, N skipped
#
# and exits 1 if any check failed. tests/ops/run.sh runs every script and
# prints the grand total. To run one script by hand, from the top of the
# tree, after `make BUILD=build/ops all`:
#
#   BUILD=$PWD/build/ops ZRAMD_STAT=$PWD/build/ops/zramd-stat \
#   PLUGIN_SO=$PWD/build/ops/nbdkit-zramd-plugin.so tests/ops/test-units.sh
#
# ZRAMD_TEST_ARGS adds plugin parameters where the tests start nbdkit
# (e.g. ZRAMD_TEST_ARGS=allocator=zbud).

set -u
# nbdsh and the python helpers need Debian's python3 (python3-libnbd).
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

: "${BUILD:?set BUILD to the absolute build directory}"
: "${ZRAMD_STAT:=$BUILD/zramd-stat}"
: "${PLUGIN_SO:=$BUILD/nbdkit-zramd-plugin.so}"
: "${MAKE:=make}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OPS_DIR=$TOP/tests/ops
NAME=$(basename "$0")

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

finish() {
	echo "$NAME: $npass passed, $nfail failed, $nskip skipped"
	[ "$nfail" -eq 0 ]
	exit
}

# Temporary files, removed at exit; cleanup hooks run first.
TMP=$(mktemp -d /tmp/zramd-ops.XXXXXX)
cleanup_hooks=()
on_exit() { cleanup_hooks+=("$1"); }
run_cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
	rm -rf "$TMP"
}
trap run_cleanup EXIT

# have_plugin: the plugin was built (tests that need it skip otherwise).
have_plugin() { [ -f "$PLUGIN_SO" ]; }

# wait_for COUNT CMD...: retry CMD every 0.1 s, at most COUNT times.
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

# run_checks CMD...: run a helper that prints "ok - ..." / "FAIL - ..."
# lines itself (the python checks), and count them here.
run_checks() {
	local line nf0=$nfail rc=
	while IFS= read -r line; do
		case $line in
		"ok - "*) npass=$((npass + 1)) ;;
		"FAIL - "*) nfail=$((nfail + 1)) ;;
		__rc=*) rc=${line#__rc=}; continue ;;
		esac
		echo "$line"
	done < <("$@" 2>&1; echo "__rc=$?")
	if [ "$rc" != 0 ] && [ "$nfail" -eq "$nf0" ]; then
		not_ok "$* exited $rc without saying why"
	fi
}
