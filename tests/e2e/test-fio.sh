#!/usr/bin/env bash
# fio over NBD (ioengine=nbd): 2 jobs, iodepth 32, random writes verified
# with crc32c, on data that compresses 0%, 50% and 90%; and 1536-byte
# blocks, so that neighbouring requests in flight share 4 KiB sectors and
# every write is a read-modify-write. Zero verify mismatches allowed.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires fio
fio --enghelp=nbd 2>/dev/null | grep -q uri ||
	skip_all "this fio has no nbd engine"

per_job=16M
[ -n "$E2E_QUICK" ] && per_job=4M

# run_fio DESC ARGS...: run fio on $URI and check it reports no error.
run_fio() {
	local what=$1 out rc=0
	shift
	# (from $TMP, with no verify state saved: fio would leave
	# *-verify.state files in the current directory)
	out=$(cd "$TMP" && fio --name=zramd --ioengine=nbd --uri="$URI" \
		--iodepth=32 --numjobs=2 --size=$per_job \
		--offset_increment=$per_job --verify_state_save=0 \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--group_reporting --randseed="${TEST_SEED:-1}" "$@" 2>&1) ||
		rc=$?
	if [ "$rc" -ne 0 ] || ! grep -q 'err= 0' <<<"$out" ||
		grep -qiE 'verify.*(fail|bad)|crc32c.*wanted' <<<"$out"; then
		echo "$out" | tail -30
		not_ok "$what"
	else
		ok "$what"
	fi
}

for alloc in $(allocators); do
	start_zramd size=128M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	for pct in 0 50 90; do
		run_fio "$alloc: randwrite 4k, ${pct}% compressible, verified" \
			--rw=randwrite --bs=4k --buffer_compress_percentage=$pct \
			--refill_buffers
	done
	run_fio "$alloc: randwrite 1536-byte blocks (read-modify-write)" \
		--rw=randwrite --bs=1536 --buffer_compress_percentage=50 \
		--refill_buffers
	check "$alloc: no failed writes counted" \
		test "$(stat_value failed_writes)" = 0
	check_stop "$alloc"
done
finish
