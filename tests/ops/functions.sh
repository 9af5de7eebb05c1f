# tests/ops/functions.sh - shared prelude of the operations shell tests
#
# Sourced by each tests/ops/test-*.sh. It is tests/e2e/functions.sh (ok,
# not_ok, skip, check, finish with its one summary line
#
#   N passed, N failed, N skipped
#
# $TMP and on_exit, wait_for, start_zramd/stop_zramd) with the paths the
# ops tests need, and run_checks. tests/ops/run.sh runs every script and
# prints the grand total. To run one script by hand, from the top of the
# tree, after `make BUILD=build/ops all`:
#
#   BUILD=$PWD/build/ops ZRAMD_STAT=$PWD/build/ops/zramd-stat \
#   PLUGIN_SO=$PWD/build/ops/nbdkit-zramd-plugin.so tests/ops/test-units.sh
#
# ZRAMD_TEST_ARGS adds plugin parameters where the tests start nbdkit
# (e.g. ZRAMD_TEST_ARGS=allocator=zbud).

: "${BUILD:?set BUILD to the absolute build directory}"
: "${ZRAMD_STAT:=$BUILD/zramd-stat}"
: "${PLUGIN_SO:=$BUILD/nbdkit-zramd-plugin.so}"
: "${MAKE:=make}"
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/functions.sh"
OPS_DIR=$TOP/tests/ops

# have_plugin: the plugin was built (tests that need it skip otherwise).
have_plugin() { [ -f "$PLUGIN_SO" ]; }

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
