#!/bin/bash
# PR_SET_IO_FLUSHER (daemon/localswap.c): with CAP_SYS_RESOURCE the plugin
# sets it silently; without (setpriv drops it), the log says once, and
# STATUS= says, that the device is not safe as local swap.
source "$(dirname "$0")/functions.sh"

if ! have_plugin; then
	skip "local swap: no plugin at $PLUGIN_SO"
	finish
fi
/usr/bin/python3 -c 'import nbd' 2>/dev/null || {
	skip "local swap: python3-libnbd is not installed"
	finish
}
# CAP_SYS_RESOURCE is bit 24 of the effective set.
capeff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
if (((0x$capeff >> 24) & 1)); then
	run_checks /usr/bin/python3 "$OPS_DIR/localswap-nbdkit.py" SAFE "$PLUGIN_SO"
else
	skip "local swap: this shell has no CAP_SYS_RESOURCE to test the safe case"
fi
if command -v setpriv >/dev/null; then
	run_checks /usr/bin/python3 "$OPS_DIR/localswap-nbdkit.py" UNSAFE "$PLUGIN_SO" \
		setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource
else
	skip "local swap: no setpriv (package util-linux) to drop CAP_SYS_RESOURCE"
fi
finish
