#!/usr/bin/env bash
# Parameters: each bad one refused before serving, with its message and a
# non-zero exit; the config file and command-line precedence; what
# --dump-plugin and --help say.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdinfo

# refused WANT PARAM...: nbdkit must exit non-zero, printing WANT.
# (The timeout catches a value wrongly accepted, which would serve for
# ever. Under a preloaded sanitizer, nbdkit may hang in exit() after
# printing its error -- see stop_zramd -- so there a timeout after the
# message counts as the refusal it is.)
refused() {
	local want=$1 out rc=0 limit=60 hang=124
	shift
	[ -n "$E2E_PRELOAD" ] && limit=15 hang=-1
	out=$(timeout $limit env ${E2E_PRELOAD:+LD_PRELOAD=$E2E_PRELOAD} \
		nbdkit -f -U "$TMP/refused.sock" "$PLUGIN_SO" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne "$hang" ] &&
		grep -qF -- "$want" <<<"$out" && [ ! -S "$TMP/refused.sock" ]; then
		ok "refused: $* ($want)"
	else
		echo "exit $rc, output: $out"
		not_ok "refused: $* (want '$want')"
	fi
}

refused "size: missing" allocator=zbud
refused "unknown key" 1G colour=blue
refused "size=lots: not a number" lots
refused "size=4Q: bad size suffix" 4Q
refused "size=8E: too large" 8E
refused "allocator=slab: unknown allocator" 1G allocator=slab
refused "compressor=lzo: unknown codec or level; allowed: lz4, zstd or zstd:LEVEL with LEVEL from 1 to 19" 1G compressor=lzo
refused "compressor=zstd:20: unknown codec or level" 1G compressor=zstd:20
refused "recompress=lz4: unknown codec or level; allowed: off, zstd or zstd:LEVEL" 1G recompress=lz4
refused "recompress_idle=10y: bad duration suffix (use s, m, h or d)" 1G recompress_idle=10y
refused "recompress_idle=31d: out of range" 1G recompress_idle=31d
refused "acceleration=0: out of range; allowed: an integer from 1 to 65537" \
	1G acceleration=0
refused "huge_threshold=5000: out of range" 1G huge_threshold=5000
refused "mem_limit=4K: too small to hold a single sector" 1G mem_limit=4K
refused "acceleration given twice" 1G acceleration=2 acceleration=3
refused "backing_size=" 1G backing_size=1G
refused "does not exist" 1G backing=/nonexistent/dir/backing
refused "does not exist" 1G stats=/nonexistent/dir/stats
refused "mem_low must be below mem_high" 1G mem_low=90 mem_high=50
refused "psi=maybe: not on, off or a number" 1G psi=maybe
refused "cannot read the config file: No such file or directory" \
	config=/nonexistent/zramd.conf

conf=$TMP/zramd.conf
printf 'size = 1G\nsize = 2G\n' >"$conf"
refused "$conf:2: size=2G: key given twice in the file" config="$conf"
printf '# comment\nsize = 1G\nacceleration = fast\n' >"$conf"
refused "$conf:3: acceleration=fast: not a number" config="$conf"
printf 'size = 1G\nmem_limit = 10X\n' >"$conf"
refused "$conf:2: mem_limit=10X: bad size suffix" config="$conf"
printf 'size = 1G\nfrobnicate = yes\n' >"$conf"
refused "$conf:2: frobnicate: unknown key" config="$conf"

# A good file; the command line wins over it, before or after config=.
cat >"$conf" <<'CONF'
# zramd test configuration
[zramd]
size = 1G
mem_limit = 1G
stats_interval = 5
CONF
alloc=$(allocators | cut -d' ' -f1)
if start_zramd config="$conf" 2G mem_limit=512M allocator="$alloc"; then
	check "config file: command line size wins" \
		test "$(nbdinfo --size "$URI")" = $((2 << 30))
	check "config file: command line mem_limit wins (after config=)" \
		wait_stat mem_limit -eq $((512 << 20))
	check "config file: allocator in the stats file" \
		grep -qx "allocator $alloc" "$STATS"
	check_stop "config file"
else
	not_ok "config file: start"
fi
if start_zramd allocator="$alloc" config="$conf"; then
	check "config file: its size is used" \
		test "$(nbdinfo --size "$URI")" = $((1 << 30))
	check "config file: its mem_limit is used" \
		wait_stat mem_limit -eq $((1 << 30))
	check_stop "config file"
else
	not_ok "config file (size from file): start"
fi

# size=N%: a share of the machine's RAM, rounded down to 4 KiB.
ram=$(($(getconf _PHYS_PAGES) * $(getconf PAGESIZE)))
if start_zramd size=10% allocator="$alloc"; then
	check "size=10%: the device is 10% of RAM, in whole sectors" \
		test "$(nbdinfo --size "$URI")" = $((ram / 100 * 10 / 4096 * 4096))
	check_stop "size=10%"
else
	not_ok "size=10%: start"
fi

# A block device as backing=: an ext4 file system on it is refused unless
# backing_force=yes, a backing_size past its end is refused, and one held
# by another program is refused, each naming the device.
loop=
if [ "$(id -u)" = 0 ] && truncate -s 4M "$TMP/loopfile" &&
	loop=$(losetup -f --show "$TMP/loopfile" 2>/dev/null) && [ -n "$loop" ]; then
	on_exit "losetup -d $loop 2>/dev/null"
	if mkfs.ext4 -q -F "$loop" >/dev/null 2>&1; then
		refused "holds a file system or other signature (ext4)" \
			size=16M mem_limit=1M backing="$loop"
		# Through start_zramd, so a sanitized plugin gets its runtime.
		if start_zramd size=16M mem_limit=1M backing="$loop" backing_force=yes; then
			check "backing_force=yes: the ext4 device is used" \
				nbdsh -u "$URI" -c 'h.pwrite(b"x" * 4096, 0); assert h.pread(4096, 0) == b"x" * 4096'
			check_stop "backing_force=yes"
		else
			not_ok "backing_force=yes: start"
		fi
	else
		skip "backing device signature: mkfs.ext4 failed"
	fi
	refused "larger than the device" size=16M backing="$loop" backing_size=8M
	python3 -c 'import os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_EXCL); print("held", flush=True); time.sleep(30)' "$loop" >"$TMP/held" &
	holder=$!
	for _ in $(seq 50); do grep -q held "$TMP/held" && break; sleep 0.1; done
	refused "backing device $loop: in use" size=16M backing="$loop"
	kill "$holder"; wait "$holder" 2>/dev/null
	losetup -d "$loop"
else
	skip "backing block device: needs root and losetup"
fi

dump=$(nbdkit "$PLUGIN_SO" --dump-plugin)
check "--dump-plugin: zramd_version" grep -q '^zramd_version=[0-9]' <<<"$dump"
check "--dump-plugin: allocators" grep -q '^zramd_allocators=.*zbud' <<<"$dump"
check "--dump-plugin: lz4 version" \
	grep -q '^zramd_lz4_version=[0-9]*\.[0-9]*\.[0-9]*$' <<<"$dump"
check "--dump-plugin: thread model parallel" \
	grep -q '^thread_model=parallel' <<<"$dump"
help=$(nbdkit "$PLUGIN_SO" --help)
check "--help lists the keys" grep -q 'mem_limit=SIZE' <<<"$help"
# After make install (PREFIX=/usr) the short name works too.
plugindir=$(pkg-config --variable=plugindir nbdkit 2>/dev/null)
if [ -n "$plugindir" ] && [ -f "$plugindir/nbdkit-zramd-plugin.so" ]; then
	dump=$(nbdkit zramd --dump-plugin 2>/dev/null)
	check "nbdkit zramd (installed) loads" \
		grep -q '^zramd_version=' <<<"$dump"
else
	skip "nbdkit zramd: the plugin is not installed in nbdkit's plugin directory"
fi
finish
