#!/usr/bin/env bash
# The stats file after known workloads: same_pages after a repeated
# pattern, huge_pages after random data, orig_data_size after a copy,
# notify_free after trim; mem_limit refusing writes with ENOSPC and
# accepting them again after a trim; the final counters written at exit.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh
requires nbdcopy

for alloc in $(allocators); do
	start_zramd size=64M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	check "$alloc: the stats file exists at once" test -s "$STATS"
	check "$alloc: disksize" wait_stat disksize -eq $((64 << 20))
	check "$alloc: allocator line" grep -qx "allocator $alloc" "$STATS"
	check "$alloc: version line" grep -qx "version 1" "$STATS"

	# A copy of text: orig_data_size is its size.
	for _ in $(seq 40); do cat /usr/share/common-licenses/GPL-3; done |
		head -c $((1 << 20)) >"$TMP/text"
	nbdcopy "$TMP/text" "$URI"
	check "$alloc: orig_data_size after a copy" \
		wait_stat orig_data_size -eq $((1 << 20))
	text_compr=$(stat_value compr_data_size)
	check "$alloc: the text compressed" \
		test "$text_compr" -gt 0 -a "$text_compr" -lt $(((1 << 20) * 3 / 4))

	# 100 sectors of one repeated 8-byte word, at 4 MiB.
	nbdsh -u "$URI" -c "h.pwrite(b'zramd!\x01\x02' * (100 * 512), $((4 << 20)))"
	check "$alloc: same_pages after a repeated pattern" \
		wait_stat same_pages -eq 100
	check "$alloc: same-filled sectors count as data" \
		wait_stat orig_data_size -eq $(((256 + 100) * 4096))
	check "$alloc: ...but take no pool memory" \
		test "$(stat_value compr_data_size)" -eq "$text_compr"

	# 50 sectors of random data at 8 MiB: stored raw.
	head -c $((50 * 4096)) /dev/urandom >"$TMP/random"
	nbdsh -u "$URI" -c "h.pwrite(open('$TMP/random','rb').read(), $((8 << 20)))"
	check "$alloc: huge_pages after random data" wait_stat huge_pages -eq 50
	check "$alloc: huge sectors count 4096 compressed bytes each" \
		wait_stat compr_data_size -eq $((text_compr + 50 * 4096))
	check "$alloc: mem_used_total holds it" \
		test "$(stat_value mem_used_total)" -ge "$(stat_value compr_data_size)"
	check "$alloc: mem_used_max >= mem_used_total" \
		test "$(stat_value mem_used_max)" -ge "$(stat_value mem_used_total)"

	# Trim the pattern and zero the random data.
	nbdsh -u "$URI" -c "h.trim($((100 * 4096)), $((4 << 20)))" \
		-c "h.zero($((50 * 4096)), $((8 << 20)))"
	check "$alloc: notify_free after trim and zero" \
		wait_stat notify_free -eq 150
	check "$alloc: same_pages back to 0" wait_stat same_pages -eq 0
	check "$alloc: huge_pages back to 0" wait_stat huge_pages -eq 0
	check "$alloc: failed_writes 0" test "$(stat_value failed_writes)" -eq 0

	# Fragment the pool (16 MiB of text, then every other sector
	# trimmed): the background thread compacts it within a few seconds
	# (it looks every 5 s). zbud cannot compact.
	for _ in $(seq 16); do cat "$TMP/text"; done >"$TMP/text16"
	nbdcopy "$TMP/text16" "$URI"
	nbdsh -u "$URI" -c '
for i in range(0, 4096, 2):
    h.trim(4096, i * 4096)
'
	if [ "$alloc" = zsmalloc ]; then
		check "$alloc: pages_compacted after fragmentation" \
			wait_stat pages_compacted -gt 0
		nbdcopy "$URI" "$TMP/back" 2>/dev/null
		check "$alloc: compaction changed no byte" python3 -c "
import sys
a = open('$TMP/text16', 'rb').read(); b = open('$TMP/back', 'rb').read()
for i in range(4096):
    want = bytes(4096) if i % 2 == 0 else a[i * 4096:(i + 1) * 4096]
    if b[i * 4096:(i + 1) * 4096] != want:
        sys.exit(1)
"
		rm -f "$TMP/back"
	else
		check "$alloc: no compaction" \
			test "$(stat_value pages_compacted)" -eq 0
	fi
	check_stop "$alloc"
done

alloc=$(allocators | cut -d' ' -f1)

# mem_limit without a backing file: ENOSPC, old data stays, trim makes room.
if start_zramd size=64M allocator="$alloc" mem_limit=1M; then
	nbdsh_checks "mem_limit" -c '
import errno, os
data = {}
err = None
for i in range(1024):
    buf = os.urandom(4096)
    try:
        h.pwrite(buf, i * 4096)
        data[i] = buf
    except nbd.Error as ex:
        err = ex
        break
print(("ok - " if err is not None and err.errnum == errno.ENOSPC else "FAIL - ")
      + "writes over mem_limit fail with ENOSPC (%s, after %d sectors)"
      % (err, len(data)))
print(("ok - " if all(h.pread(4096, i * 4096) == b for i, b in data.items())
       else "FAIL - ") + "data stored before the limit reads back")
h.pwrite(bytes([7]) * 4096, 40 << 20)
print(("ok - " if h.pread(4096, 40 << 20) == bytes([7]) * 4096 else "FAIL - ")
      + "same-filled writes need no pool memory: still accepted")
h.trim(len(data) * 4096, 0)
buf = os.urandom(4096)
try:
    h.pwrite(buf, 50 << 20)
    print(("ok - " if h.pread(4096, 50 << 20) == buf else "FAIL - ")
          + "after a trim, writes work again")
except nbd.Error as ex:
    print("FAIL - after a trim, writes work again (%s)" % ex)
'
	check "mem_limit: failed_writes counted" wait_stat failed_writes -ge 1
	check "mem_limit: mem_used_max within the limit" \
		test "$(stat_value mem_used_max)" -le $((1 << 20))
	check_stop "mem_limit"
else
	not_ok "mem_limit: start"
fi

# stats_interval=0: written at start and at exit only, with final values.
if start_zramd size=16M allocator="$alloc" stats_interval=0; then
	nbdsh -u "$URI" -c 'h.pwrite(b"\x11" * 8192, 0)'
	sleep 1.5
	check "stats_interval=0: not rewritten while serving" \
		test "$(stat_value same_pages)" -eq 0
	check_stop "stats_interval=0"
	check "stats_interval=0: final counters written at exit" \
		test "$(stat_value same_pages)" -eq 2
else
	not_ok "stats_interval=0: start"
fi
finish
