#!/usr/bin/env bash
# tests/soak/soak.sh - the long verified run (make soak; not in make check)
#
# fio (ioengine=nbd) for SOAK_SECONDS (default 600) on a device whose
# working set (80 MiB) is 5x its mem_limit (16 MiB), with a backing file,
# so the shrinker evicts and reads back all along. Five job sections, each
# iodepth 32 on its own 16 MiB range, one per kind of data:
# incompressible, 50% and 90% compressible, zero-filled (all zero but
# fio's verify header), and a randtrimwrite job whose verified blocks are
# in part (trim_percentage) trimmed and must then read back as zeroes
# (trim_verify_zero). Every block carries a crc32c checked as it goes
# (verify_backlog) and at the end; verify_fatal=1.
#
# At the end it prints the figures (bytes written, bytes verified,
# mismatches, bd_writes, bd_reads) and "N passed, N failed, N skipped".
#
#   SOAK_SECONDS  how long fio writes (default 600)
#   SOAK_ALLOC    the allocator (default: the first one built in)
#   TEST_SEED     fio's randseed (printed)
#   PLUGIN_SO     the plugin (required; make soak sets it)
source "$(dirname "$0")/../e2e/functions.sh"
requires nbdkit
requires fio
requires jq
fio --enghelp=nbd 2>/dev/null | grep -q uri ||
	skip_all "this fio has no nbd engine"

secs=${SOAK_SECONDS:-600}
seed=${TEST_SEED:-$RANDOM}
alloc=${SOAK_ALLOC:-$(allocators | cut -d' ' -f1)}
limit=$((16 << 20))
per_job=16M # 5 jobs x 16M = 5x mem_limit
echo "soak: TEST_SEED=$seed SOAK_SECONDS=$secs allocator=$alloc" \
	"mem_limit=$limit, 5 jobs x $per_job"

start_zramd size=256M allocator="$alloc" mem_limit=$limit \
	backing="$TMP/soak.backing" || {
	not_ok "start"
	finish
}

cat >"$TMP/soak.fio" <<EOF2
[global]
ioengine=nbd
uri=$URI
iodepth=32
rw=randwrite
bs=4k
size=$per_job
offset_increment=$per_job
time_based=1
runtime=$secs
verify=crc32c
do_verify=1
verify_backlog=1024
verify_fatal=1
verify_state_save=0
refill_buffers=1
randseed=$seed
[incompressible]
offset=0
buffer_compress_percentage=0
[compress50]
offset=$per_job
buffer_compress_percentage=50
[compress90]
offset=32M
buffer_compress_percentage=90
[zero]
offset=48M
zero_buffers=1
[trim]
offset=64M
rw=randtrimwrite
buffer_compress_percentage=50
trim_percentage=10
trim_backlog=256
trim_verify_zero=1
EOF2
# (offset_increment applies per job number within a section; each section
# has one job, so the sections' own offsets keep them apart. fio 3.33
# asserts on trim_percentage in a randwrite job -- td_trim() is false
# there -- so the trims are in their own randtrimwrite section.)

rc=0
(cd "$TMP" && fio --output-format=json --output="$TMP/fio.json" \
	soak.fio 2>"$TMP/fio.err") || rc=$?
sed -n '1,20p' "$TMP/fio.err"

written=$(jq '[.jobs[].write.io_bytes] | add' "$TMP/fio.json" 2>/dev/null)
verified=$(jq '[.jobs[].read.io_bytes] | add' "$TMP/fio.json" 2>/dev/null)
trimmed=$(jq '[.jobs[].trim.io_bytes] | add' "$TMP/fio.json" 2>/dev/null)
errs=$(jq '[.jobs[].error] | add' "$TMP/fio.json" 2>/dev/null)
mism=$(grep -ciE 'verify.*(fail|bad)|wanted|bad magic|header.*mismatch' \
	"$TMP/fio.err")
check "fio exited 0 ($rc)" test "$rc" -eq 0
check "fio job errors: ${errs:-none reported}" test "${errs:-x}" = 0
check "verify mismatches: $mism" test "$mism" -eq 0
check "bytes written: ${written:-?}" test "${written:-0}" -gt 0
check "bytes verified: ${verified:-?}" test "${verified:-0}" -gt 0
sleep 1.2 # one more stats file
bdw=$(stat_value bd_writes) bdr=$(stat_value bd_reads)
check "evicted to the backing file (bd_writes $bdw)" test "${bdw:-0}" -gt 0
check "read back from it (bd_reads $bdr)" test "${bdr:-0}" -gt 0
check "no failed reads or writes counted" \
	test "$(stat_value failed_writes)/$(stat_value failed_reads)" = 0/0
check "bd_checksum_errors 0" test "$(stat_value bd_checksum_errors)" = 0
check "bd_io_errors 0" test "$(stat_value bd_io_errors)" = 0
check_stop "soak"
echo "figures: soak $secs s, $alloc, mem_limit $limit:" \
	"bytes written $written, bytes verified $verified," \
	"bytes trimmed $trimmed, mismatches $mism," \
	"bd_writes $bdw, bd_reads $bdr, mem_used_max $(stat_value mem_used_max)"
finish
