#!/bin/bash
# sd_notify from the plugin under a real nbdkit (tests/ops/notify-nbdkit.py
# plays systemd's part): READY=1 only once the socket serves, STATUS=,
# WATCHDOG=1 at the interval, STOPPING=1 at SIGTERM.
source "$(dirname "$0")/functions.sh"

if ! have_plugin; then
	skip "sd_notify under nbdkit: no plugin at $PLUGIN_SO"
	finish
fi
if ! nbdkit "$PLUGIN_SO" --dump-plugin >"$TMP/dump" 2>&1; then
	cat "$TMP/dump"
	not_ok "nbdkit cannot load $PLUGIN_SO"
	finish
fi
if ! grep -q '^zramd_systemd_notify=yes$' "$TMP/dump"; then
	not_ok "the plugin was built without systemd notification (--dump-plugin)"
	finish
fi
/usr/bin/python3 -c 'import nbd' 2>/dev/null || {
	skip "sd_notify under nbdkit: python3-libnbd is not installed"
	finish
}
run_checks /usr/bin/python3 "$OPS_DIR/notify-nbdkit.py" "$PLUGIN_SO" ${ZRAMD_TEST_ARGS:-}
finish
