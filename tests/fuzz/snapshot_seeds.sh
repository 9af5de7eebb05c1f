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
# Version 2: zstd objects (compressor=zstd; raw mode byte 04: a zstd
# device keeps them, 00: an LZ4 one encodes them anew), and packs with
# dead slots. (Evicted packs need the ladder under pressure, which a
# device this small does not reach: test_daemon_snapshot covers them.)
seed zstd 04 64K '
h.pwrite(b"zramd snapshot zstd seed " * 163 + b"abcdefghijklmnopqrstu", 0)
h.pwrite(b"\xab" * 4096, 4096 * 7)
h.pwrite(b"lorem ipsum " * 341 + b"abcd", 4096 * 9)' compressor=zstd:3
cp "$out/seed-raw-zstd" "$out/seed-raw-zstd-into-lz4"
printf '\x00' | dd of="$out/seed-raw-zstd-into-lz4" bs=1 count=1 conv=notrunc 2>/dev/null
seed packs 00 128K '
import time
for i in range(24):
    h.pwrite((b"pack %d of the cold tier, " % i) * 150 + bytes(596), 4096 * i)
time.sleep(4)
h.pwrite(b"\x17" * 4096, 4096 * 3)
h.pwrite(bytes(range(256)) * 16, 4096 * 10)
h.trim(8192, 4096 * 16)' recompress=zstd:3 recompress_idle=1
ls -la "$out"/seed-raw-*
