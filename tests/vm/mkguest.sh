#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mkguest.sh - build (or reuse) the minimal Linux guest of the VM tests
#
#   mkguest.sh OUTDIR VMPROG INIT
#
# The guest is Debian's own kernel, booted with an initramfs that holds
# only what the scenarios need:
#
#   /init                   tests/vm/init (the scenarios)
#   /bin/busybox + applets  shell and coreutils (static)
#   /bin/vmprog             the static data generator (tests/vm/vmprog.c)
#   /sbin/nbd-client, mke2fs (mkfs.ext4), e2fsck, mkswap, swapon, swapoff
#                           Debian's binaries, with the libraries ldd lists
#   /lib/modules/VER/...    the .ko files, and etc/zvm/modules: their
#                           load order, dependencies first
#   /usr/bin/nbdkit, /usr/lib/zramd/nbdkit-zramd-plugin.so,
#   /usr/lib/zramd/zramd-swap
#                           for the local-* scenarios, where the daemon
#                           runs inside the guest: nbdkit, the plugin
#                           given as ZRAMD_PLUGIN (environment), both
#                           with their libraries, and the swap setup
#                           script the systemd unit runs
#   /usr/lib/zramd/nbdkit-delay-filter.so
#                           for the restart scenario (nbdkit's delay
#                           filter), with its libraries
#
# and OUTDIR/restart-KEY-RKEY.cpio, which the restart scenario appends to
# the image: /usr/bin/zramd-reconnect (ZRAMD_RECONNECT, environment) and
# the libraries it needs that the image lacks (libnbd's libxml2 and ICU,
# about 35 MiB that every other guest would carry in RAM).
#
# The kernel comes from the package that linux-image-amd64 depends on:
# `apt-get download`, then `dpkg-deb -x`, keeping only vmlinuz and the
# modules named in MODULES below with their dependencies. It is cached in
# OUTDIR/kernel-PACKAGE_VERSION/. The initramfs is cached as
# OUTDIR/initrd-KEY.cpio, KEY being a hash of every input (kernel, init,
# vmprog, busybox, each host binary and library, this script).
#
# On success prints KERNEL=, INITRD= and KVER= lines for the caller to
# eval. Exits 77, with the reason on stderr, when the guest cannot be had
# here (no apt, no kernel package, a tool missing), 1 on a real error.

set -euo pipefail

# Kernel modules the scenarios use; their dependencies are added.
MODULES="virtio_pci virtio_net virtio_blk nbd ext4 crc32c_generic"
# Debian tools copied into /sbin with their libraries.
TOOLS="nbd-client mke2fs e2fsck mkswap swapon swapoff setpriv"

skip() {
	echo "mkguest: $*" >&2
	exit 77
}
die() {
	echo "mkguest: $*" >&2
	exit 1
}

[ $# -eq 3 ] || die "usage: mkguest.sh OUTDIR VMPROG INIT"
out=$1 vmprog=$2 init=$3
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
export PATH="/usr/sbin:/sbin:/usr/bin:/bin:$PATH"
export LC_ALL=C

for t in dpkg-deb cpio ldd strings sha256sum; do
	command -v $t >/dev/null || skip "$t not found (packages dpkg, cpio, libc-bin, binutils)"
done
busybox=$(command -v busybox) || skip "busybox not found (package busybox-static)"
# ldd fails on a static binary, and the guest has no libc for busybox.
ldd "$busybox" >/dev/null 2>&1 && skip "$busybox is not statically linked (install busybox-static)"
ldd "$vmprog" >/dev/null 2>&1 && die "$vmprog is not statically linked"

# --- the kernel package ------------------------------------------------

# Name and version of the package linux-image-amd64 depends on.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(kernel_pkg || true)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
	apt-get update -q >&2 || true
	pkg=$(kernel_pkg || true)
fi
ver=
if [ -n "$pkg" ]; then
	ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
	[ "$ver" = "(none)" ] && ver=
fi

kdir=
if [ -n "$pkg" ] && [ -n "$ver" ]; then
	kdir="$out/kernel-${pkg}_$ver"
elif cached=$(ls -d "$out"/kernel-*/complete 2>/dev/null | sort | tail -1) &&
	[ -n "$cached" ]; then
	# No apt metadata now: a kernel fetched earlier still does.
	kdir=$(dirname "$cached")
	echo "mkguest: apt does not name a kernel package; using cached $(basename "$kdir")" >&2
else
	skip "cannot find the kernel package linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
fi

# Modules: MODULES and everything they depend on, dependencies first.
# Each .ko's "depends=" modinfo line names what it needs.
resolve_modules() {
	local root=$1 name f deps d
	declare -A seen=()
	order=()
	visit() {
		local n=${1//-/_} f deps d
		[ -n "${seen[$n]:-}" ] && return 0
		seen[$n]=1
		f=$(find "$root" \( -name "$n.ko" -o -name "${n//_/-}.ko" \) -print -quit)
		if [ -z "$f" ]; then
			grep -qE "/(${n}|${n//_/-})\.ko\$" "$root/modules.builtin" 2>/dev/null &&
				return 0
			die "kernel module $n not found"
		fi
		deps=$(strings "$f" | sed -n 's/^depends=//p' | head -1)
		for d in ${deps//,/ }; do visit "$d"; done
		order+=("${f#$root/}")
	}
	for name in $MODULES; do visit "$name"; done
}

# A kernel cached for another module list is fetched again.
if [ -e "$kdir/complete" ] && [ "$(cat "$kdir/wanted")" != "$MODULES" ] &&
	[ -n "$pkg" ] && [ -n "$ver" ]; then
	rm -rf "$kdir"
fi
if [ ! -e "$kdir/complete" ]; then
	tmp=$(mktemp -d "$out/kernel-tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "mkguest: fetching $pkg $ver (apt-get download)" >&2
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
		skip "apt-get download $pkg=$ver failed"
	dpkg-deb -x "$tmp"/*.deb "$tmp/x" || die "dpkg-deb -x failed"
	kver=$(ls "$tmp/x/lib/modules" | head -1)
	[ -n "$kver" ] && [ -f "$tmp/x/boot/vmlinuz-$kver" ] ||
		die "$pkg has no vmlinuz or modules"
	mroot="$tmp/x/lib/modules/$kver"
	resolve_modules "$mroot"
	rm -rf "$kdir" && mkdir -p "$kdir/modules"
	cp "$tmp/x/boot/vmlinuz-$kver" "$kdir/vmlinuz"
	cp "$tmp/x/boot/config-$kver" "$kdir/config"
	for m in "${order[@]}"; do
		mkdir -p "$kdir/modules/$(dirname "$m")"
		cp "$mroot/$m" "$kdir/modules/$m"
	done
	printf '%s\n' "${order[@]}" >"$kdir/modules.order"
	echo "$kver" >"$kdir/kver"
	echo "$MODULES" >"$kdir/wanted"
	touch "$kdir/complete"
	rm -rf "$tmp"
	trap - EXIT
	# A kernel fetched before this one is stale now.
	find "$out" -maxdepth 1 -name 'kernel-*' ! -name "$(basename "$kdir")" \
		-exec rm -rf {} +
fi
[ "$(cat "$kdir/wanted")" = "$MODULES" ] ||
	die "$kdir was made for other modules; remove it"
kver=$(cat "$kdir/kver")

# --- the initramfs -----------------------------------------------------

# Host files that go into the image: the tools and their libraries.
declare -a tool_paths=() lib_paths=()
for t in $TOOLS; do
	p=$(command -v "$t") || skip "$t not found (packages nbd-client, e2fsprogs, util-linux)"
	tool_paths+=("$p")
	while read -r lib; do
		lib_paths+=("$lib")
	done < <(ldd "$p" | awk '/=> \// { print $3 } /^\t\// { print $1 }')
done
# The daemon itself, for the scenarios that run it in the guest.
declare -a zramd_paths=()
nbdkit_bin=$(command -v nbdkit) || skip "nbdkit not found (package nbdkit)"
zramd_paths+=("$nbdkit_bin")
if [ -n "${ZRAMD_PLUGIN:-}" ] && [ -f "$ZRAMD_PLUGIN" ]; then
	zramd_paths+=("$ZRAMD_PLUGIN")
fi
# nbdkit's delay filter: the restart scenario can slow every write down so
# that some are on the wire when the daemon stops (zvm.delay=).
delay_filter=$(pkg-config --variable=libdir nbdkit 2>/dev/null)/nbdkit/filters/nbdkit-delay-filter.so
[ -f "$delay_filter" ] || delay_filter=$(ls /usr/lib/*/nbdkit/filters/nbdkit-delay-filter.so 2>/dev/null | head -1)
[ -f "$delay_filter" ] && zramd_paths+=("$delay_filter")
swap_script="$here/../../systemd/zramd-swap"
for p in "${zramd_paths[@]}"; do
	while read -r lib; do
		lib_paths+=("$lib")
	done < <(ldd "$p" | awk '/=> \// { print $3 } /^\t\// { print $1 }')
done
mapfile -t lib_paths < <(printf '%s\n' "${lib_paths[@]}" | sort -u)
# zramd-reconnect, for the restart scenario only (ZRAMD_RECONNECT,
# environment), goes into a second archive with the libraries it needs
# that the image lacks: libnbd brings libxml2 and ICU's 30 MiB of data,
# and the initramfs stays in RAM for the whole run. In the image, it left
# the small guests (swap, reconnect, tls) out of memory while unpacking
# and took 30 MiB from what local-swap's working set is sized for.
declare -a restart_libs=()
if [ -n "${ZRAMD_RECONNECT:-}" ] && [ -f "$ZRAMD_RECONNECT" ]; then
	mapfile -t restart_libs < <(ldd "$ZRAMD_RECONNECT" |
		awk '/=> \// { print $3 } /^\t\// { print $1 }' | sort -u |
		comm -23 - <(printf '%s\n' "${lib_paths[@]}"))
fi

key=$( {
	echo "$kdir"
	cat "$kdir/modules.order"
	sha256sum "$0" "$init" "$vmprog" "$busybox" "${tool_paths[@]}" \
		"${zramd_paths[@]}" "$swap_script" \
		"${lib_paths[@]}" /etc/mke2fs.conf 2>/dev/null | awk '{ print $1 }'
} | sha256sum | cut -c1-16)
initrd="$out/initrd-$key.cpio"
restart_cpio=
if [ -n "${ZRAMD_RECONNECT:-}" ] && [ -f "$ZRAMD_RECONNECT" ]; then
	rkey=$(sha256sum "$ZRAMD_RECONNECT" "${restart_libs[@]}" | sha256sum | cut -c1-16)
	restart_cpio="$out/restart-$key-$rkey.cpio"
	if [ ! -f "$restart_cpio" ]; then
		rroot=$(mktemp -d "$out/rroot.XXXXXX")
		mkdir -p "$rroot/usr/bin"
		cp "$ZRAMD_RECONNECT" "$rroot/usr/bin/zramd-reconnect"
		for l in "${restart_libs[@]}"; do
			mkdir -p "$rroot$(dirname "$l")"
			cp -L "$l" "$rroot$l"
		done
		(cd "$rroot" && find . | sort | cpio -o -H newc --quiet -R 0:0) >"$restart_cpio.tmp"
		mv "$restart_cpio.tmp" "$restart_cpio"
		rm -rf "$rroot"
		find "$out" -maxdepth 1 -name 'restart-*.cpio' ! -name "$(basename "$restart_cpio")" -delete
	fi
fi

if [ ! -f "$initrd" ]; then
	echo "mkguest: building $initrd" >&2
	root=$(mktemp -d "$out/root.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root"/{bin,sbin,etc/zvm,proc,sys,dev,mnt,tmp,run,lib64} \
		"$root/lib/modules/$kver"
	cp "$busybox" "$root/bin/busybox"
	# Skip the applet named busybox, or the binary becomes a link to
	# itself and the kernel cannot run /init (ELOOP).
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || [ -e "$root/bin/$a" ] ||
			ln -s busybox "$root/bin/$a"
	done
	cp "$vmprog" "$root/bin/vmprog"
	for p in "${tool_paths[@]}"; do cp "$p" "$root/sbin/"; done
	ln -s mke2fs "$root/sbin/mkfs.ext4"
	for l in "${lib_paths[@]}"; do
		mkdir -p "$root$(dirname "$l")"
		cp -L "$l" "$root$l"
	done
	[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
	mkdir -p "$root/usr/bin" "$root/usr/lib/zramd"
	cp "$nbdkit_bin" "$root/usr/bin/nbdkit"
	[ -n "${ZRAMD_PLUGIN:-}" ] && [ -f "$ZRAMD_PLUGIN" ] &&
		cp "$ZRAMD_PLUGIN" "$root/usr/lib/zramd/nbdkit-zramd-plugin.so"
	[ -f "$swap_script" ] && install -m 755 "$swap_script" "$root/usr/lib/zramd/zramd-swap"
	[ -f "${delay_filter:-}" ] &&
		cp "$delay_filter" "$root/usr/lib/zramd/nbdkit-delay-filter.so"
	cp -r "$kdir/modules/." "$root/lib/modules/$kver/"
	cp "$kdir/modules.order" "$root/etc/zvm/modules"
	echo "$kver" >"$root/etc/zvm/kver"
	install -m 755 "$init" "$root/init"
	(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$root"
	trap - EXIT
	# Older images of this cache are stale now.
	find "$out" -maxdepth 1 -name 'initrd-*.cpio' ! -name "$(basename "$initrd")" -delete
fi

echo "KERNEL=$kdir/vmlinuz"
echo "INITRD=$initrd"
echo "RESTART_CPIO=$restart_cpio"
echo "KVER=$kver"
