#!/usr/bin/env bash
# Many connections at once (multi-conn): fio with 4 jobs, each its own NBD
# connection, writing and verifying regions that are not sector-aligned,
# so neighbouring jobs read-modify-write the same 4 KiB sectors from
# different connections; and parallel nbdsh clients hammering one sector
# with partial writes. Run under ThreadSanitizer by check-tsan.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires fio
requires nbdsh

alloc=$(allocators | cut -d' ' -f1)
[ -n "${E2E_ALLOCATORS:-}" ] || alloc=$(allocators)
region=$((1000 * 1024)) # 1000 KiB: not a multiple of 4096
for a in $alloc; do
	start_zramd size=64M allocator="$a" || {
		not_ok "$a: start"
		continue
	}
	# (from $TMP, with no verify state saved: see test-fio.sh)
	out=$(cd "$TMP" && fio --name=multi --ioengine=nbd --uri="$URI" \
		--numjobs=4 --verify_state_save=0 \
		--iodepth=16 --size=$region --offset_increment=$region \
		--rw=randwrite --bs=1024 --verify=crc32c --do_verify=1 \
		--verify_fatal=1 --buffer_compress_percentage=50 \
		--refill_buffers --loops=2 --group_reporting 2>&1)
	if [ $? -eq 0 ] && grep -q 'err= 0' <<<"$out"; then
		ok "$a: 4 connections, shared boundary sectors, verified"
	else
		echo "$out" | tail -20
		not_ok "$a: 4 connections, shared boundary sectors, verified"
	fi

	# 4 clients, each owning 1 KiB of sector 5000, writing it 200 times.
	pids=()
	for i in 0 1 2 3; do
		nbdsh -u "$URI" -c "
for n in range(200):
    h.pwrite(bytes([($i * 50 + n) % 256]) * 1024, 5000 * 4096 + $i * 1024)
" &
		pids+=($!)
	done
	wait "${pids[@]}"
	nbdsh_checks "$a" -c '
back = h.pread(4096, 5000 * 4096)
want = b"".join(bytes([(i * 50 + 199) % 256]) * 1024 for i in range(4))
print(("ok - " if back == want else "FAIL - ")
      + "4 clients writing quarters of one sector: no update lost")
'
	check "$a: no failed writes" test "$(stat_value failed_writes)" = 0
	check_stop "$a"
done
finish
