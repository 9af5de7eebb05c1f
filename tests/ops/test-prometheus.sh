#!/bin/bash
# zramd-stat --prometheus: the exposition of a live device passes
# `promtool check metrics`; every counter of include/zramd_stats.h is in
# it with the type the header gives; --output writes the file atomically
# and readable; a bad stats file is refused and leaves --output's file as
# it was.
source "$(dirname "$0")/functions.sh"

[ -x "$ZRAMD_STAT" ] || { not_ok "no $ZRAMD_STAT (make all first)"; finish; }
hdr=$TOP/include/zramd_stats.h

if ! have_plugin; then
	skip "prometheus on a live device: no plugin at $PLUGIN_SO"
	finish
fi
if ! start_zramd size=64M ${ZRAMD_TEST_ARGS:-}; then
	not_ok "nbdkit did not start"
	finish
fi
# Some I/O, so the counters are not all zero.
nbdcopy -- [ nbdkit pattern size=4M ] "nbd+unix:///?socket=$SOCK" &&
	nbdcopy "nbd+unix:///?socket=$SOCK" null:
check "I/O through the device" [ $? -eq 0 ]
has_reads() { "$ZRAMD_STAT" --prometheus "$STATS" | grep -q '^zramd_num_reads_total{device="[^"]*"} [1-9]'; }
wait_for 300 has_reads
check "num_reads counted the reads" has_reads
prom=$TMP/out.prom
"$ZRAMD_STAT" --prometheus "$STATS" >"$prom"
check "--prometheus: exit 0" [ $? -eq 0 ]
dev=$(basename "$STATS" .stats)

if command -v promtool >/dev/null; then
	out=$(promtool check metrics <"$prom" 2>&1)
	check "promtool check metrics: no problem ($out)" [ $? -eq 0 -a -z "$out" ]
else
	skip "promtool check metrics: promtool not installed (Debian package prometheus)"
fi

# Every counter of the header, with its type and one sample of the device.
while read -r name type unit; do
	case $unit in BYTES) m=zramd_${name}_bytes ;; SECTORS) m=zramd_${name}_sectors ;; *) m=zramd_$name ;; esac
	[ "$type" = COUNTER ] && m=${m}_total
	t=$(echo "$type" | tr A-Z a-z)
	grep -qx "# TYPE $m $t" "$prom" &&
		grep -q "^$m{device=\"$dev\"} [0-9][0-9]*\$" "$prom" ||
		{ not_ok "$name: no $t $m with a sample for device $dev"; continue; }
	ok "$name: $t $m"
done < <(sed -n 's/^[[:space:]]*X(\([a-z_]*\), *\([A-Z]*\), *\([A-Z]*\),.*/\1 \2 \3/p' "$hdr")
n=$(grep -c '^[[:space:]]*X(' "$hdr")
check "the header's $n counters all parsed" [ "$(grep -c '^# TYPE zramd_' "$prom")" -eq $((n + 1)) ]
check "zramd_info names the allocator" grep -q "^zramd_info{device=\"$dev\",allocator=\"zsmalloc\",version=\"1\"} 1\$" "$prom"

# --output: atomic (no temporary left), mode 0644, same content.
outdir=$TMP/textfile
mkdir -p "$outdir"
"$ZRAMD_STAT" --prometheus --output "$outdir/zramd.prom" "$STATS"
check "--output: exit 0" [ $? -eq 0 ]
check "--output: only the file, no temporary left" [ "$(ls "$outdir")" = zramd.prom ]
check "--output: mode 0644" [ "$(stat -c %a "$outdir/zramd.prom")" = 644 ]
check "--output: the exposition" grep -q "^zramd_disksize_bytes{device=\"$dev\"} 67108864\$" "$outdir/zramd.prom"

# A bad stats file: one message, exit 1, the previous file kept.
echo "not a stats file" >"$TMP/bad.stats"
cp "$outdir/zramd.prom" "$TMP/before.prom"
err=$("$ZRAMD_STAT" --prometheus --output "$outdir/zramd.prom" "$TMP/bad.stats" 2>&1)
rc=$?
check "bad file: exit 1 ($err)" [ $rc -eq 1 ]
check "bad file: one message naming it" [ "$(echo "$err" | wc -l)" -eq 1 -a -n "$(echo "$err" | grep -F "$TMP/bad.stats")" ]
check "bad file: the previous exposition is untouched" cmp -s "$TMP/before.prom" "$outdir/zramd.prom"
err=$("$ZRAMD_STAT" --output "$outdir/x.prom" "$STATS" 2>&1)
check "--output without --prometheus: usage error" [ $? -eq 2 ]
err=$("$ZRAMD_STAT" --prometheus --output /nonexistent/dir/z.prom "$STATS" 2>&1)
check "--output into a missing directory: exit 1 ($err)" [ $? -eq 1 ]

stop_zramd
finish
