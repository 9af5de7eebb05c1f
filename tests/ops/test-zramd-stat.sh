#!/bin/bash
# zramd-stat against synthetic stats files: the table, --json (parsed by
# python), --all, --bytes; and bad files, each refused with its message
# and exit status 1 while good files given with it are still shown.
source "$(dirname "$0")/functions.sh"

[ -x "$ZRAMD_STAT" ] || { not_ok "no $ZRAMD_STAT (make all first)"; finish; }

# A file as the plugin writes it, every counter of include/zramd_stats.h,
# plus a counter this zramd-stat does not know (must be ignored).
good=$TMP/good.stats
{
	echo "# zramd stats v1"
	echo "version 1"
	echo "allocator zsmalloc"
	i=0
	for k in $(sed -n 's/^[[:space:]]*X(\([a-z_]*\),.*/\1/p' \
		"$TOP/include/zramd_stats.h"); do
		case $k in
		disksize) v=1073741824 ;;
		orig_data_size) v=1288490188 ;;
		compr_data_size) v=400000000 ;;
		mem_used_total) v=432013312 ;;
		mem_limit) v=0 ;;
		bd_count) v=100 ;;
		*) i=$((i + 1)); v=$i ;;
		esac
		echo "$k $v"
	done
	echo "a_future_counter 42"
	echo "a_future_string some words"
} >"$good"
nkeys=$(grep -c '^[[:space:]]*X(' "$TOP/include/zramd_stats.h")

# --- the table ---
out=$("$ZRAMD_STAT" "$good" 2>&1)
rc=$?
check "table: exit 0" [ $rc -eq 0 ]
head=$(echo "$out" | head -n 1)
row=$(echo "$out" | sed -n 2p)
check "table: header names the columns" \
	bash -c '[[ $1 =~ ^NAME\ +ALLOC\ +DISKSIZE\ +DATA\ +COMPR\ +TOTAL\ +RATIO\ +LIMIT\ +SAME\ +HUGE\ +BACKING\ +COLD\ +PACKED$ ]]' _ "$head"
# DATA 1.2G, COMPR 381M, TOTAL 412M, RATIO 1288490188/432013312 = 2.98,
# BACKING 100 sectors of 4 KiB = 400K.
check "table: row in human units" \
	bash -c '[[ $1 =~ ^$2\ +zsmalloc\ +1G\ +1.2G\ +381M\ +412M\ +2.98\ +0B\ +[0-9]+\ +[0-9]+\ +400K\ +[0-9.]+[BKMGTPE]\ +[0-9.]+[BKMGTPE]$ ]]' _ "$row" "$good"
out=$("$ZRAMD_STAT" --bytes "$good")
check "--bytes: raw byte counts" \
	bash -c '[[ $1 =~ 1073741824\ +1288490188\ +400000000\ +432013312\ +2.98\ +0\ +[0-9]+\ +[0-9]+\ +409600\ +[0-9]+\ +[0-9]+$ ]]' _ "$(echo "$out" | sed -n 2p)"

# --- JSON ---
"$ZRAMD_STAT" --json "$good" "$good" >"$TMP/out.json"
check "--json: exit 0" [ $? -eq 0 ]
check "--json: valid JSON with every counter, raw numbers" \
	/usr/bin/python3 - "$TMP/out.json" "$good" "$nkeys" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
path, nkeys = sys.argv[2], int(sys.argv[3])
devs = doc["zramd"]
assert len(devs) == 2, devs
want = {}
for line in open(path):
    if line.startswith("#"):
        continue
    k, v = line.split(None, 1)
    want[k] = v.strip()
d = devs[0]
assert d["name"] == path
assert d["version"] == 1 and d["allocator"] == "zsmalloc"
known = [k for k in d if k not in ("name", "version", "allocator", "ratio")]
assert len(known) == nkeys, (len(known), nkeys)
for k in known:
    assert d[k] == int(want[k]), (k, d[k], want[k])
assert "a_future_counter" not in d
assert abs(d["ratio"] - 1288490188 / 432013312) < 1e-3
EOF
out=$("$ZRAMD_STAT" --json "$TMP/missing" 2>/dev/null)
rc=$?
check "--json with only a bad file: exit 1, still valid JSON" \
	bash -c '[ $1 -eq 1 ] && echo "$2" | /usr/bin/python3 -c "import json,sys; assert json.load(sys.stdin)[\"zramd\"] == []"' _ $rc "$out"

# --- --all ---
out=$("$ZRAMD_STAT" --all "$good")
check "--all: one line per counter, with its meaning" \
	bash -c '[ $(echo "$1" | grep -c "^  [a-z_]") -eq $(($2 + 1)) ] &&
		echo "$1" | grep -q "^  bd_checksum_errors .*backing-file reads that failed their checksum$"' _ "$out" "$nkeys"

# --- a counter added to a newer file version-1 writer is optional ---
grep -v '^evict_idle ' "$good" >"$TMP/older.stats"
"$ZRAMD_STAT" --json "$TMP/older.stats" >"$TMP/older.json"
check "a missing optional counter is null, not an error" \
	/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["zramd"][0]; assert d["evict_idle"] is None' "$TMP/older.json"

# --- bad files: message and exit status ---
# refuse NAME "EXPECTED MESSAGE (regex)" < content
refuse() {
	local name=$1 want=$2 f=$TMP/$1.stats err rc
	cat >"$f"
	err=$("$ZRAMD_STAT" "$f" "$good" 2>&1 >"$TMP/stdout")
	rc=$?
	if [ $rc -eq 1 ] && [[ $err =~ ^zramd-stat:\ $f:\ $want ]] &&
		grep -q zsmalloc "$TMP/stdout"; then
		ok "refused: $name ($err)"
	else
		not_ok "refused: $name: exit $rc, message '$err'"
	fi
}
refuse empty "empty file" </dev/null
refuse wrong-version "line 2: unknown stats file version 2 \(zramd-stat reads version 1\)" \
	< <(sed 's/^version 1$/version 2/' "$good")
refuse no-version "no 'version' line: not a zramd stats file" \
	< <(grep -v '^version' "$good")
refuse non-number "line 5: 'orig_data_size': value '12x' is not a decimal number" \
	< <(sed 's/^orig_data_size .*/orig_data_size 12x/' "$good")
refuse negative "line 5: 'orig_data_size': value '-1' is not a decimal number" \
	< <(sed 's/^orig_data_size .*/orig_data_size -1/' "$good")
refuse overflow "line 5: 'orig_data_size': value '18446744073709551616' is not a decimal number below 2\^64" \
	< <(sed 's/^orig_data_size .*/orig_data_size 18446744073709551616/' "$good")
refuse truncated "truncated: the last line has no newline" \
	< <(head -c 100 "$good")
refuse truncated-at-line "no 'compr_data_size' line" \
	< <(head -n 5 "$good")
refuse duplicate "line [0-9]+: 'disksize' appears twice" \
	< <(cat "$good"; echo "disksize 1")
refuse no-value "line 4: 'disksize' has no value" \
	< <(sed 's/^disksize .*/disksize/' "$good")
refuse binary "contains a NUL byte" < <(printf 'version 1\n\0\n')
# (line 1 reads as an unknown key with a value, and is skipped)
refuse garbage "line 2: malformed line 'Host: x' \(expected: key value\)" \
	< <(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
head -c 70000 /dev/zero | tr '\0' '#' >"$TMP/big.stats"
err=$("$ZRAMD_STAT" "$TMP/big.stats" 2>&1)
check "refused: too large ($err)" [ $? -eq 1 -a "$err" = "zramd-stat: $TMP/big.stats: larger than 65536 bytes: not a stats file" ]
err=$("$ZRAMD_STAT" "$TMP/missing" 2>&1)
check "refused: missing file ($err)" [ $? -eq 1 -a "$err" = "zramd-stat: $TMP/missing: No such file or directory" ]
err=$("$ZRAMD_STAT" "$TMP" 2>&1)
check "refused: a directory ($err)" [ $? -eq 1 -a "$err" = "zramd-stat: $TMP: is a directory" ]

# --- usage ---
"$ZRAMD_STAT" --bogus >/dev/null 2>&1
check "unknown option: exit 2" [ $? -eq 2 ]
check "--help mentions the default directory" \
	bash -c '"$1" --help | grep -q "/run/zramd/\*.stats"' _ "$ZRAMD_STAT"
check "--version" bash -c '"$1" --version | grep -q "^zramd-stat [0-9]"' _ "$ZRAMD_STAT"

finish
