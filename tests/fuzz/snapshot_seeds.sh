#!/bin/bash
# tests/fuzz/snapshot_seeds.sh - the raw seeds of fuzz_snapshot.c (mode 0):
# snapshot files written by the daemon itself, each prefixed with the mode
# byte, into tests/fuzz/corpus/snapshot/seed-raw-*.
#
#   PLUGIN_SO=build/nbdkit-zramd-plugin.so tests/fuzz/snapshot_seeds.sh
#
# (seeds.py cannot make them: they need XXH3 checksums.)
set -eu
export PATH=/usr/bin:$PATH
: "${PLUGIN_SO:?set PLUGIN_SO to the plugin}"
out=$(cd "$(dirname "$0")" && pwd)/corpus/snapshot
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# seed NAME MODE SIZE PYTHON [PARAM...]: serve, run PYTHON with h, stop.
seed() {
	local name=$1 mode=$2 size=$3 code=$4
	shift 4
	rm -f "$tmp/s.sock" "$tmp/p.snap"
	nbdkit -f -U "$tmp/s.sock" -P "$tmp/pid" "$PLUGIN_SO" size="$size" \
		persist="$tmp/p.snap" "$@" 2>/dev/null &
	while [ ! -S "$tmp/s.sock" ]; do sleep 0.1; done
	nbdsh -u "nbd+unix:///?socket=$tmp/s.sock" -c "$code"
	kill "$(cat "$tmp/pid")"
	wait
	{ printf "\\x$mode"; cat "$tmp/p.snap"; } >"$out/seed-raw-$name"
}

seed few 00 64K '
import random
h.pwrite(b"zramd snapshot seed " * 204 + b"abcdefghijklmnop", 0)
h.pwrite(random.Random(1).randbytes(4096), 4096 * 3)
h.pwrite(b"\xab" * 4096, 4096 * 7)
h.pwrite(bytes(range(8)) * 512, 4096 * 9)'
seed odd-size 02 40000 '
h.pwrite(b"x" * 100, 39000)
h.pwrite(b"text " * 1000, 8192)'
seed evicted 00 256K '
import random, time
h.pwrite(random.Random(2).randbytes(8192), 0)
h.pwrite(b"compressible " * 700, 4096 * 5)
h.pwrite(b"\x01" * 4096, 4096 * 9)
time.sleep(4)' backing="$tmp/bk" writeback_idle=1
ls -la "$out"/seed-raw-*
