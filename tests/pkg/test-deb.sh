#!/bin/bash
# The Debian package as an administrator gets it: `make deb` builds it;
# dpkg installs it into a scratch root (never this machine's own /usr);
# every file `make install` installs with Debian's paths is in it, the
# installed plugin loads in nbdkit, the config file is a conffile; lintian
# finds no error or warning; then remove keeps the conffile and purge
# leaves nothing of the package behind.
#
# The scratch root has a static busybox as /bin/sh, so dpkg can run the
# maintainer scripts chrooted there (they call deb-systemd-helper, which
# is absent and guarded with || true: nothing touches the host's systemd).
# The ops prelude: ok, not_ok, skip, check, finish (one summary line), $TMP.
source "$(dirname "$0")/../ops/functions.sh"
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
	skip "the Debian package: dpkg-buildpackage or debhelper is not installed (make deps installs them)"
	finish
fi
busybox=$(command -v busybox)
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	skip "the Debian package: no static busybox for the scratch root's /bin/sh (Debian package busybox-static)"
	finish
fi

if ! $MAKE -s -C "$TOP" BUILD="$BUILD" deb >"$TMP/deb.log" 2>&1; then
	cat "$TMP/deb.log"
	not_ok "make deb"
	finish
fi
deb=$(ls "$BUILD"/deb/zramd_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
check "make deb built $(basename "${deb:-none}")" [ -f "$deb" ]
[ -f "$deb" ] || finish

if command -v lintian >/dev/null; then
	lintian --allow-root "$deb" >"$TMP/lintian.log" 2>&1
	check "lintian: no error and no warning ($(grep -c '^[EW]:' "$TMP/lintian.log") tags)" \
		bash -c '! grep -q "^[EW]:" "$1"' _ "$TMP/lintian.log"
	grep '^[EW]:' "$TMP/lintian.log"
else
	skip "lintian is not installed"
fi

# What make install puts where, with the package's paths.
$MAKE -s -C "$TOP" BUILD="$BUILD/pkg-install" PREFIX=/usr SYSCONFDIR=/etc \
	UNITDIR=/lib/systemd/system DESTDIR="$TMP/want" install >"$TMP/install.log" 2>&1 ||
	{ cat "$TMP/install.log"; not_ok "make install DESTDIR=..."; finish; }
(cd "$TMP/want" && find . -type f | sed 's|^\.||' | sort) >"$TMP/want.list"

# The scratch root: an empty dpkg database and a shell.
root=$TMP/root
mkdir -p "$root"/var/lib/dpkg/{info,updates,triggers} "$root/bin" "$root/tmp"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
(cd "$root" && find . | sort) >"$TMP/before.list"

dpkg --root="$root" --force-depends -i "$deb" >"$TMP/dpkg.log" 2>&1
rc=$?
[ $rc -eq 0 ] || cat "$TMP/dpkg.log"
check "dpkg --root -i: installed (exit $rc)" [ $rc -eq 0 ]
check "dpkg says zramd is installed" \
	bash -c 'dpkg --root="$1" -s zramd 2>/dev/null | grep -q "^Status: install ok installed"' _ "$root"

missing=0
while read -r f; do
	case $f in */share/man/*) f=$f.gz ;; esac
	[ -f "$root$f" ] || { echo "  not in the package: $f"; missing=$((missing + 1)); }
done <"$TMP/want.list"
check "every file make install installs is installed ($(wc -l <"$TMP/want.list") files, $missing missing)" [ $missing -eq 0 ]
for f in /usr/bin/zramd-stat /etc/zramd/zramd.conf /lib/systemd/system/zramd.service \
	/lib/systemd/system/zramd.socket /usr/share/man/man1/nbdkit-zramd-plugin.1.gz \
	/usr/share/man/man5/zramd.conf.5.gz /usr/share/doc/zramd/copyright; do
	check "installed: $f" [ -f "$root$f" ]
done
plugindir=$(pkg-config --variable=plugindir nbdkit 2>/dev/null)
plugin=$root${plugindir:-/usr/lib/x86_64-linux-gnu/nbdkit/plugins}/nbdkit-zramd-plugin.so
check "the plugin is in nbdkit's plugin directory, so 'nbdkit zramd' finds it" [ -f "$plugin" ]
check "nbdkit --dump-plugin loads the installed plugin" \
	bash -c 'nbdkit --dump-plugin "$1" 2>&1 | grep -q "^name=zramd$"' _ "$plugin"
check "the installed zramd-stat runs" "$root/usr/bin/zramd-stat" --version
check "/etc/zramd/zramd.conf is a conffile" \
	bash -c 'dpkg --root="$1" -s zramd | sed -n "/^Conffiles:/,/^[A-Z]/p" | grep -q "^ /etc/zramd/zramd.conf "' _ "$root"
check "the units are not enabled (no symlinks made)" \
	bash -c '[ -z "$(find "$1/etc" -type l 2>/dev/null)" ]' _ "$root"

# An administrator's edit of the conffile survives remove; purge removes it.
echo "size = 2G" >>"$root/etc/zramd/zramd.conf"
dpkg --root="$root" -r zramd >>"$TMP/dpkg.log" 2>&1
check "dpkg -r: removed" [ $? -eq 0 -a ! -e "$root/usr/bin/zramd-stat" -a ! -e "$plugin" ]
check "dpkg -r: the edited conffile stays" grep -q "^size = 2G" "$root/etc/zramd/zramd.conf"
dpkg --root="$root" -P zramd >>"$TMP/dpkg.log" 2>&1
check "dpkg -P: purged" [ $? -eq 0 ]
check "dpkg knows no zramd any more" \
	bash -c '! dpkg --root="$1" -s zramd >/dev/null 2>&1' _ "$root"
# Nothing is left but what was there before and dpkg's own bookkeeping.
(cd "$root" && find . | sort) >"$TMP/after.list"
left=$(comm -13 "$TMP/before.list" "$TMP/after.list" | grep -v '^\./var/lib/dpkg\(/\|$\)' | grep -v '^\./var/log\(/\|$\)' | grep -v '^\./var$')
check "nothing of the package is left after purge${left:+: $(echo $left)}" [ -z "$left" ]
finish
