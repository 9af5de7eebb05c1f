#!/usr/bin/env bash
# qemu-io write/read patterns with verification: aligned and unaligned,
# overlapping, asynchronous, write-zeroes and discard.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires qemu-io

# qemu_io DESC COMMAND...: run qemu-io commands on the device; fail if
# qemu-io fails or reports a pattern mismatch.
qemu_io() {
	local what=$1 out rc=0 args=()
	shift
	for c in "$@"; do args+=(-c "$c"); done
	out=$(qemu-io -f raw "$URI" "${args[@]}" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] || grep -qiE 'verification failed|error' <<<"$out"; then
		echo "$out"
		not_ok "$what"
	else
		ok "$what"
	fi
}

for alloc in $(allocators); do
	start_zramd size=64M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	qemu_io "$alloc: aligned patterns" \
		"write -P 0xab 0 1M" "read -P 0xab 0 1M" \
		"write -P 0x00 1M 64k" "read -P 0x00 1M 64k" \
		"write -P 0x5a 63M 1M" "read -P 0x5a 63M 1M"
	qemu_io "$alloc: unaligned, overlapping" \
		"write -P 0xcd 1000 5000" "read -P 0xcd 1000 5000" \
		"read -P 0xab 0 1000" "read -P 0xab 6000 10000" \
		"write -P 0x11 4095 2" "read -P 0x11 4095 2" \
		"read -P 0xcd 4097 1903" "write -P 0x22 8191 12289" \
		"read -P 0x22 8191 12289" "read -P 0xab 20480 4096"
	qemu_io "$alloc: asynchronous writes and reads" \
		"aio_write -P 0x31 2M 128k" "aio_write -P 0x32 3M 128k" \
		"aio_write -P 0x33 4M 1000" "aio_flush" \
		"aio_read -P 0x31 2M 128k" "aio_read -P 0x32 3M 128k" \
		"aio_read -P 0x33 4M 1000" "aio_flush"
	qemu_io "$alloc: write-zeroes and discard" \
		"write -z 0 64k" "read -P 0 0 64k" "read -P 0xab 64k 64k" \
		"discard 128k 64k" "read -P 0 128k 64k" \
		"write -z 300000 5000" "read -P 0 300000 5000" \
		"read -P 0xab 299000 1000" "read -P 0xab 305000 1000"
	qemu_io "$alloc: the data survives a reconnect" \
		"read -P 0x5a 63M 1M" "read -P 0x31 2M 128k" "read -P 0 0 64k"
	check_stop "$alloc"
done
finish
