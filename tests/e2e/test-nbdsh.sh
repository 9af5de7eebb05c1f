#!/usr/bin/env bash
# Exact-byte checks with nbdsh, for every allocator: start, middle and end
# of the device, unaligned writes across sector boundaries, unwritten
# regions, trim, write-zeroes, fast zero, extents; and a device of the
# largest size nbdkit allows, written and read at its last sector.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh

for alloc in $(allocators); do
	# 64 MiB + 1234: the last sector is partial.
	start_zramd size=$(((64 << 20) + 1234)) allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	nbdsh_checks "$alloc" --base-allocation \
		-c "exec(open('$E2E_DIR/bytes_checks.py').read())"
	check_stop "$alloc"
done

# 2^63-1 bytes: the largest size; the last sector holds 4095 bytes.
alloc=$(allocators | cut -d' ' -f1)
if start_zramd 9223372036854775807 allocator="$alloc"; then
	nbdsh_checks "8E-1 device" -c '
size = h.get_size()
print(("ok - " if size == (1 << 63) - 1 else "FAIL - ") + "size is 2^63-1")
data = bytes(range(256)) * 16
h.pwrite(data[:4095], size - 4095)
print(("ok - " if h.pread(4095, size - 4095) == data[:4095] else "FAIL - ")
      + "last sector reads back")
h.pwrite(b"end", size - 3)
print(("ok - " if h.pread(4, size - 4) == data[4091:4092] + b"end" else "FAIL - ")
      + "last bytes read back")
h.pwrite(data, 0)
print(("ok - " if h.pread(4096, 0) == data else "FAIL - ") + "first sector")
print(("ok - " if h.pread(4096, size // 2) == bytes(4096) else "FAIL - ")
      + "middle reads zero")
'
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$ZRAMD_PID"/status)
	echo "RSS of nbdkit serving an 8E device with two sectors: ${rss} KiB"
	check_stop "8E device"
else
	not_ok "8E device: start"
fi
finish
