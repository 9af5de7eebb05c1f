#!/usr/bin/env bash
# tests/e2e/run.sh - run the end-to-end test scripts and add up the results
#
#   tests/e2e/run.sh [test-NAME.sh ...]     (default: every test-*.sh)
#
# Each script ends with "N passed, N failed, N skipped"; its exit status is
# 0 (passed), 77 (skipped as a whole, the reason printed) or anything else
# (failed). The last line here is the total over all checks, a skipped
# script counting as one skipped check and a script that died before its
# summary as one failed check. The environment is passed on (see
# functions.sh): PLUGIN_SO is required.
set -u
cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- test-*.sh
pass=0 fail=0 skip=0 failed=()
for t in "$@"; do
	t=$(basename "$t")
	echo "== $t"
	log=$(mktemp)
	start=$SECONDS
	./"$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
	rm -f "$log"
	if [ "$rc" -eq 77 ]; then
		skip=$((skip + 1))
		echo "-- $t: skipped ($((SECONDS - start)) s)"
		continue
	fi
	if [ -n "$summary" ]; then
		read -r p _ f _ s _ <<<"${summary//,/}"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + ${s:-0}))
	fi
	if [ "$rc" -ne 0 ]; then
		[ -n "$summary" ] && [ "${f:-0}" -gt 0 ] || fail=$((fail + 1))
		failed+=("$t")
		echo "-- $t: FAILED (exit $rc, $((SECONDS - start)) s)"
	else
		echo "-- $t: passed ($((SECONDS - start)) s)"
	fi
done
[ ${#failed[@]} -eq 0 ] || echo "failed scripts: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
