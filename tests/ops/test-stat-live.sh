#!/bin/bash
# zramd-stat against a live device: after a known workload (64 same-filled
# sectors, 64 random ones, 128 compressible ones) the stats file, read by
# zramd-stat, must show exactly that; after trimming it all, nothing.
source "$(dirname "$0")/functions.sh"

if ! have_plugin; then
	skip "zramd-stat on a live device: no plugin at $PLUGIN_SO"
	finish
fi
/usr/bin/python3 -c 'import nbd' 2>/dev/null || {
	skip "zramd-stat on a live device: python3-libnbd is not installed"
	finish
}

if ! start_zramd size=64M ${ZRAMD_TEST_ARGS:-}; then
	not_ok "nbdkit did not start"
	finish
fi
sock=$SOCK stats=$STATS

# json KEY: a field of the device's zramd-stat --json object.
json() {
	"$ZRAMD_STAT" --json "$stats" 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["zramd"][0][sys.argv[1]])' "$1" 2>/dev/null
}

/usr/bin/python3 - "$sock" <<'EOF'
import os, sys, nbd
h = nbd.NBD()
h.connect_unix(sys.argv[1])
S = 4096
same = (0x0123456789abcdef).to_bytes(8, "little") * (S // 8)
text = (b"zramd-stat live test, compressible. " * 200)[:S]
for i in range(64):
    h.pwrite(same, i * S)
for i in range(64):
    h.pwrite(os.urandom(S), (64 + i) * S)
for i in range(128):
    h.pwrite(text, (128 + i) * S)
h.flush()
h.shutdown()
EOF
check "workload written" [ $? -eq 0 ]

# The file is rewritten every second: wait for the workload to show.
json_is() { [ "$(json "$1")" = "$2" ]; }
wait_for 300 json_is orig_data_size 1048576
check "orig_data_size = 256 sectors (same-filled included)" [ "$(json orig_data_size)" = 1048576 ]
check "disksize = 64M" [ "$(json disksize)" = 67108864 ]
check "same_pages = 64" [ "$(json same_pages)" = 64 ]
check "huge_pages = 64 (the random sectors)" [ "$(json huge_pages)" = 64 ]
compr=$(json compr_data_size)
check "compr_data_size ($compr) below the data, above the 64 raw sectors" \
	[ "$compr" -ge 262144 -a "$compr" -lt 1048576 ]
total=$(json mem_used_total)
check "mem_used_total ($total) at least compr_data_size" [ "$total" -ge "$compr" ]
row=$("$ZRAMD_STAT" "$stats" | sed -n 2p)
check "the table shows the device ($row)" \
	bash -c '[[ $1 =~ ^$2\ +[a-z]+\ +64M\ +1M\ + ]]' _ "$row" "$stats"

/usr/bin/python3 - "$sock" <<'EOF'
import sys, nbd
h = nbd.NBD()
h.connect_unix(sys.argv[1])
h.trim(256 * 4096, 0)
h.flush()
h.shutdown()
EOF
check "trimmed" [ $? -eq 0 ]
wait_for 300 json_is orig_data_size 0
check "after trim: orig_data_size = 0" [ "$(json orig_data_size)" = 0 ]
check "after trim: same_pages = 0, huge_pages = 0" \
	[ "$(json same_pages)" = 0 -a "$(json huge_pages)" = 0 ]
check "after trim: notify_free = 256" [ "$(json notify_free)" = 256 ]

check "nbdkit exits 0 on SIGTERM" stop_zramd
check "the stats file stays, valid, after exit" \
	bash -c '"$1" "$2" >/dev/null' _ "$ZRAMD_STAT" "$stats"

finish
