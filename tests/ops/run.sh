#!/bin/bash
# tests/ops/run.sh - run every tests/ops/test-*.sh and print the total.
# Every script runs even if one fails; the exit status says if any did.
set -u
dir=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp /tmp/zramd-ops-log.XXXXXX)
trap 'rm -f "$log"' EXIT
tp=0 tf=0 ts=0 status=0
for t in "$dir"/test-*.sh; do
	echo "== $(basename "$t")"
	bash "$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(tail -n 1 "$log")
	if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		tp=$((tp + BASH_REMATCH[1]))
		tf=$((tf + BASH_REMATCH[2]))
		ts=$((ts + BASH_REMATCH[3]))
	else
		echo "FAIL - $(basename "$t") ended without a summary (exit $rc)"
		tf=$((tf + 1))
	fi
	[ "$rc" -eq 0 ] || status=1
done
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ] && exit $status
exit 1
