#!/bin/bash
# The unit's own ExecStart= line under socket activation, as zramd.socket
# starts it (tests/ops/socket-activation.py, with systemd-socket-activate
# in systemd's place), serving the shipped config/zramd.conf.
source "$(dirname "$0")/functions.sh"

if ! have_plugin; then
	skip "socket activation: no plugin at $PLUGIN_SO"
	finish
fi
command -v systemd-socket-activate >/dev/null || {
	skip "socket activation: no systemd-socket-activate"
	finish
}
/usr/bin/python3 -c 'import nbd' 2>/dev/null || {
	skip "socket activation: python3-libnbd is not installed"
	finish
}
unit=$BUILD/systemd/zramd.service
[ -f "$unit" ] || $MAKE -s -C "$TOP" BUILD="$BUILD" "$BUILD/systemd/units.stamp"
run_checks /usr/bin/python3 "$OPS_DIR/socket-activation.py" "$unit" \
	"$PLUGIN_SO" "$TOP/config/zramd.conf" ${ZRAMD_TEST_ARGS:-}
finish
