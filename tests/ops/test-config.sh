#!/bin/bash
# config/zramd.conf and the man pages against the plugin's key table
# (daemon/params.c, printed by dump_params): every key documented, with
# its real default, and no key that does not exist. Then the plugin must
# accept the example file as shipped, with every default uncommented, and
# the zramd.conf(5) example; and refuse a bad value naming file and line.
source "$(dirname "$0")/functions.sh"

conf=$TOP/config/zramd.conf

if [ -z "${DUMP_PARAMS:-}" ] || [ ! -x "$DUMP_PARAMS" ]; then
	skip "config vs key table: no dump_params (daemon/params.c not built)"
else
	"$DUMP_PARAMS" >"$TMP/keys"
	check "the key table is not empty" [ -s "$TMP/keys" ]

	# The man pages as text, one paragraph a line, for grepping.
	render() {
		MANWIDTH=2000 man -l "$1" 2>/dev/null | col -b |
			awk 'BEGIN { RS = ""; ORS = "\n" } { gsub(/[ \t\n]+/, " "); print }'
	}
	render "$TOP/docs/zramd.conf.5" >"$TMP/conf5.txt"
	render "$TOP/docs/nbdkit-zramd-plugin.1" >"$TMP/plugin1.txt"

	while IFS=$'\t' read -r key syntax def; do
		[ "$key" = config ] && continue
		if [ "$key" = size ]; then
			check "zramd.conf: size is set (required)" \
				grep -Eq '^size = [0-9]+[kKmMgGtT]?$' "$conf"
		elif [ -n "$def" ]; then
			check "zramd.conf: '# $key = $def' (its default)" \
				grep -qx "# $key = $def" "$conf"
		else
			check "zramd.conf: '$key' shown (no default)" \
				grep -Eq "^# $key = [^ ]" "$conf"
		fi
		# zramd.conf(5): the key's paragraph, with "Default: DEF."
		para=$(grep -E "(^| )$key = " "$TMP/conf5.txt" | head -n 1)
		if [ -n "$def" ]; then
			check "zramd.conf(5): $key, default $def" \
				bash -c '[[ $1 == *"Default: $2."* ]]' _ "$para" "$def"
		else
			check "zramd.conf(5): $key documented" [ -n "$para" ]
		fi
		# nbdkit-zramd-plugin(1) PARAMETERS: "key=..." paragraph.
		para=$(grep -E "^ *(\[)?$key(\])?=" "$TMP/plugin1.txt" | head -n 1)
		if [ -n "$def" ]; then
			check "nbdkit-zramd-plugin(1): $key, default $def" \
				bash -c '[[ $1 == *"Default: $2."* ]]' _ "$para" "$def"
		else
			check "nbdkit-zramd-plugin(1): $key documented" [ -n "$para" ]
		fi
	done <"$TMP/keys"

	# Nothing in the example that the plugin does not know.
	for key in $(sed -n 's/^#\{0,1\} \{0,1\}\([a-z_]*\) = .*/\1/p' "$conf"); do
		check "zramd.conf: '$key' is a real key" \
			grep -q "^$key	" "$TMP/keys"
	done
fi

if ! have_plugin; then
	skip "the plugin reads the example config: no plugin at $PLUGIN_SO"
	finish
fi

# serve_size ARGS...: start nbdkit with the plugin and ARGS, print the
# device size nbdinfo sees (nbdkit's error on stderr if it refuses).
serve_size() {
	nbdkit -U - "$PLUGIN_SO" "$@" ${ZRAMD_TEST_ARGS:-} \
		--run 'nbdinfo --size "$uri"'
}

size=$(serve_size config="$conf" 2>"$TMP/err")
check "the example config is accepted as shipped (size $size)" \
	[ "$size" = 1073741824 ]
[ "$size" = 1073741824 ] || cat "$TMP/err"

# Every commented "# key = value" uncommented: first all but backing
# itself (backing_size and writeback_idle at their default, 0, are fine
# without it), then with backing= set too.
# persist= goes to $TMP too (its example's directory is the units').
sed -E 's/^# ([a-z_]+) = /\1 = /' "$conf" |
	sed -E "s|^persist = .*|persist = $TMP/zramd.snapshot|" |
	grep -Ev '^(backing|stats) = ' >"$TMP/all.conf"
size=$(serve_size config="$TMP/all.conf" 2>"$TMP/err")
check "every default but backing=, uncommented, is accepted" \
	[ "$size" = 1073741824 ]
[ "$size" = 1073741824 ] || cat "$TMP/err"
sed -E 's/^# ([a-z_]+) = /\1 = /' "$conf" |
	sed -E "s|^backing = .*|backing = $TMP/zramd.backing|" |
	sed -E "s|^persist = .*|persist = $TMP/zramd.snapshot|" |
	grep -Ev '^stats = ' >"$TMP/all-backing.conf"
size=$(serve_size config="$TMP/all-backing.conf" 2>"$TMP/err")
check "every default uncommented, with backing set, is accepted" \
	[ "$size" = 1073741824 ]
[ "$size" = 1073741824 ] || cat "$TMP/err"

# The example of zramd.conf(5), with its backing file moved to $TMP.
sed -n '/^\.SH EXAMPLES/,/^\.SH FILES/p' "$TOP/docs/zramd.conf.5" |
	sed -n '/^\.nf/,/^\.fi/p' | sed '1d;$d' |
	sed "s|/var/lib/zramd|$TMP|" >"$TMP/man.conf"
size=$(serve_size config="$TMP/man.conf" 2>"$TMP/err")
check "the zramd.conf(5) example is accepted (size $size)" \
	[ "$size" = $((16 << 30)) ]
[ "$size" = $((16 << 30)) ] || { cat "$TMP/man.conf" "$TMP/err"; }

# The command line wins over the file.
size=$(serve_size config="$conf" size=2G 2>"$TMP/err")
check "size=2G on the command line wins over the file" \
	[ "$size" = $((2 << 30)) ]

# A bad value: refused, the message names the file, line, key and value.
sed 's/^# mem_high = 90$/mem_high = 120/' "$conf" >"$TMP/bad.conf"
line=$(grep -n '^mem_high = 120$' "$TMP/bad.conf" | cut -d: -f1)
serve_size config="$TMP/bad.conf" >/dev/null 2>"$TMP/err"
rc=$?
check "mem_high = 120 refused (exit $rc: $(head -n 1 "$TMP/err"))" \
	bash -c '[ $1 -ne 0 ] && grep -q "$2:$3: mem_high=120: out of range" "$4"' \
	_ $rc "$TMP/bad.conf" "$line" "$TMP/err"

finish
