#!/bin/bash
# make install DESTDIR=...: every file where it belongs, with its mode;
# units substituted; an existing config kept; man pages that groff and man
# accept without a warning. Both the default PREFIX (/usr/local) and
# PREFIX=/usr, where the plugin goes to nbdkit's own plugin directory.
source "$(dirname "$0")/functions.sh"

# install_into DESTDIR [VAR=VALUE...]: the whole `make install`, or the
# part that does not need the plugin when there is none.
install_into() {
	local dest=$1
	shift
	if have_plugin; then
		$MAKE -s -C "$TOP" BUILD="$BUILD" DESTDIR="$dest" "$@" install
	else
		$MAKE -s -C "$TOP" BUILD="$BUILD" DESTDIR="$dest" "$@" \
			install-zramd-stat install-units install-config install-docs
	fi
}
have_plugin || skip "installing the plugin: no plugin at $PLUGIN_SO"

# expect_file PATH MODE: PATH exists as a regular file with MODE.
expect_file() {
	local mode
	mode=$(stat -c %a "$1" 2>/dev/null)
	if [ -f "$1" ] && [ "$mode" = "$2" ]; then
		ok "installed ${1#$dest} ($mode)"
	else
		not_ok "installed ${1#$dest}: ${mode:-missing}, want mode $2"
	fi
}

units="zramd.service zramd.socket zramd@.service zramd@.socket zramd-nbd@.service
	zramd-prometheus.service zramd-prometheus.timer zramd-swap@.service"
plugindir_usr=$(pkg-config --variable=plugindir nbdkit)

for prefix in /usr/local /usr; do
	dest=$TMP/dest$(echo $prefix | tr / _)
	if ! install_into "$dest" PREFIX=$prefix >"$TMP/make.log" 2>&1; then
		cat "$TMP/make.log"
		not_ok "make install PREFIX=$prefix"
		continue
	fi
	ok "make install PREFIX=$prefix DESTDIR=$dest"
	if [ $prefix = /usr ]; then plugindir=$plugindir_usr; else
		plugindir=$prefix/lib/nbdkit/plugins; fi

	expect_file "$dest$prefix/bin/zramd-stat" 755
	check "installed zramd-stat runs" \
	bash -c '"$1" --version >/dev/null' _ "$dest$prefix/bin/zramd-stat"
	if have_plugin; then
		expect_file "$dest$plugindir/nbdkit-zramd-plugin.so" 755
		check "installed plugin loads (nbdkit --dump-plugin)" \
			bash -c 'nbdkit "$1" --dump-plugin >/dev/null' _ \
			"$dest$plugindir/nbdkit-zramd-plugin.so"
	fi
	for u in $units; do
		expect_file "$dest$prefix/lib/systemd/system/$u" 644
	done
	check "units name PLUGINDIR $plugindir" \
		grep -q "$plugindir/nbdkit-zramd-plugin.so" \
		"$dest$prefix/lib/systemd/system/zramd.service"
	check "no @VARIABLE@ left in the units" \
		bash -c '! grep -n "@[A-Z_]*@" "$@"' _ "$dest$prefix"/lib/systemd/system/*
	expect_file "$dest/etc/zramd/zramd.conf" 644
	check "installed config is config/zramd.conf" \
		cmp -s "$dest/etc/zramd/zramd.conf" "$TOP/config/zramd.conf"
	for m in man1/nbdkit-zramd-plugin.1 man1/zramd-stat.1 man1/zramd-reconnect.1 \
		man5/zramd.conf.5; do
		expect_file "$dest$prefix/share/man/$m" 644
	done
	n=$(find "$dest" -type f | wc -l)
	expect_file "$dest$prefix/lib/zramd/zramd-swap" 755
	want=$((1 + $(echo $units | wc -w) + 1 + 4 + 1))
	# The plugin, and zramd-reconnect (make install builds both).
	have_plugin && want=$((want + 2))
	have_plugin && expect_file "$dest$prefix/bin/zramd-reconnect" 755
	check "nothing else installed ($n files, want $want)" [ "$n" -eq "$want" ]
done

# A second install keeps an edited config and leaves the example beside it.
dest=$TMP/dest_usr_local
if [ -f "$dest/etc/zramd/zramd.conf" ]; then
	echo "size = 7G" >>"$dest/etc/zramd/zramd.conf"
	cp "$dest/etc/zramd/zramd.conf" "$TMP/edited.conf"
	install_into "$dest" >"$TMP/make.log" 2>&1
	check "reinstall keeps the edited config" \
		cmp -s "$dest/etc/zramd/zramd.conf" "$TMP/edited.conf"
	check "reinstall puts the example in zramd.conf.example" \
		cmp -s "$dest/etc/zramd/zramd.conf.example" "$TOP/config/zramd.conf"
	check "reinstall says so" grep -q "keeping .*zramd.conf" "$TMP/make.log"
else
	not_ok "reinstall: the first install did not put a config in place"
fi

# The man pages: no warning from groff, none from man.
for m in "$TOP"/docs/*.[15]; do
	out=$(groff -man -ww -z "$m" 2>&1)
	check "groff -man -ww -z $(basename "$m") is silent" [ -z "$out" ]
	[ -z "$out" ] || echo "$out"
	out=$(LC_ALL=C.UTF-8 man --warnings -l "$m" 2>&1 >/dev/null)
	check "man --warnings -l $(basename "$m") is silent" [ -z "$out" ]
	[ -z "$out" ] || echo "$out"
done
# nbdkit's section order in the plugin's page.
order=$(grep '^\.SH ' "$TOP/docs/nbdkit-zramd-plugin.1" | cut -c5- | tr '\n' ' ')
check "nbdkit-zramd-plugin(1) sections in nbdkit's order ($order)" \
	[ "$order" = "NAME SYNOPSIS DESCRIPTION EXAMPLES PARAMETERS NOTES FILES SEE ALSO " ]

finish
