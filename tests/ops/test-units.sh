#!/bin/bash
# The systemd units, as `make install` writes them: systemd-analyze verify
# must accept every one without a word (an unknown key is only a warning
# there, so any output fails), the template units as real instances, with
# their man: links resolving to the man pages installed alongside; and
# systemd-analyze security must rate zramd.service and zramd@.service at
# an exposure of 2.0 or less ("OK" or better).
source "$(dirname "$0")/functions.sh"

command -v systemd-analyze >/dev/null || {
	skip "systemd-analyze is not installed"
	finish
}

root=$TMP/root
if ! $MAKE -s -C "$TOP" BUILD="$BUILD" DESTDIR="$root" \
	install-units install-docs install-zramd-stat >"$TMP/make.log" 2>&1; then
	cat "$TMP/make.log"
	not_ok "make install-units install-docs"
	finish
fi
unitdir=$(find "$root" -name zramd.service -printf '%h\n' | head -n 1)
mandir=$(find "$root" -name 'nbdkit-zramd-plugin.1*' -printf '%h\n' | head -n 1)
check "units installed" [ -n "$unitdir" ]
check "man pages installed" [ -n "$mandir" ]
[ -n "$unitdir" ] && [ -n "$mandir" ] || finish
export MANPATH=$(dirname "$mandir"):

# Templates are verified as instances, the way systemd loads them.
v=$TMP/verify
mkdir -p "$v"
cp "$unitdir"/* "$v"/
ln -s zramd@.service "$v/zramd@test.service"
ln -s zramd@.socket "$v/zramd@test.socket"
ln -s zramd-nbd@.service "$v/zramd-nbd@nbd0.service"
ln -s zramd-swap@.service "$v/zramd-swap@nbd0.service"
units=(zramd.service zramd.socket zramd@test.service zramd@test.socket
	zramd-nbd@nbd0.service zramd-prometheus.service zramd-prometheus.timer
	zramd-swap@nbd0.service)
check "every template has an instance here" \
	[ "$(ls "$unitdir" | wc -l)" -eq 8 ]
# zramd-stat is installed under $root, not on this machine: verify that
# one (the command must exist and be executable) where it was installed.
stat_bin=$(find "$root" -name zramd-stat -type f | head -n 1)
check "zramd-stat installed" [ -x "$stat_bin" ]
exec_line=$(sed -n '/^ExecStart=/{N;s/ *\\\n[[:space:]]*/ /;p}' "$v/zramd-prometheus.service")
check "zramd-prometheus.service runs the installed zramd-stat ($exec_line)" \
	[ "$exec_line" = "ExecStart=${stat_bin#$root} --prometheus --output /var/lib/prometheus/node-exporter/zramd.prom" ]
sed -i "s|^ExecStart=${stat_bin#$root}|ExecStart=$stat_bin|" "$v/zramd-prometheus.service"
# The same for the swap unit's script.
swap_bin=$(find "$root" -name zramd-swap -type f | head -n 1)
check "zramd-swap installed, executable" [ -x "$swap_bin" ]
sw=$v/zramd-swap@.service
check "zramd-swap@ attaches with the installed script after nbdkit is ready" \
	grep -qx "ExecStartPost=+${swap_bin#$root} start /run/zramd/swap-%i.sock /dev/%i \${ZRAMD_SWAP_PRIORITY}" "$sw"
check "zramd-swap@ swapoffs and detaches before nbdkit stops (ExecStop)" \
	grep -qx "ExecStop=${swap_bin#$root} stop /dev/%i" "$sw"
sw_joined=$(tr -d '\\\n' <"$sw")
check "zramd-swap@ serves the socket the script attaches, with mlock=onfault" \
	grep -Eq -- 'ExecStart=.*-U /run/zramd/swap-%i\.sock.*size=\$\{ZRAMD_SWAP_SIZE\}[[:space:]]*mlock=onfault' <<<"$sw_joined"
check "zramd-swap@: 50% of RAM and priority 100 by default" \
	grep -qx 'Environment=ZRAMD_SWAP_SIZE=50%% ZRAMD_SWAP_PRIORITY=100' "$sw"
check "zramd-swap@: before swap.target, stopped before shutdown" \
	bash -c 'grep -q "^Before=.*swap.target" "$1" && grep -q "^Before=.*shutdown.target" "$1" && grep -qx "Conflicts=shutdown.target" "$1" && grep -qx "DefaultDependencies=no" "$1" && grep -qx "WantedBy=swap.target" "$1"' _ "$sw"
check "zramd-swap@: out of the OOM killer's reach, memlock unlimited" \
	bash -c 'grep -qx "OOMScoreAdjust=-1000" "$1" && grep -qx "LimitMEMLOCK=infinity" "$1"' _ "$sw"
check "zramd-swap@ keeps CAP_SYS_RESOURCE (PR_SET_IO_FLUSHER)" \
	grep -q "^CapabilityBoundingSet=.*CAP_SYS_RESOURCE" "$sw"
sed -i "s|${swap_bin#$root}|$swap_bin|" "$sw"

for u in "${units[@]}"; do
	out=$(cd "$v" && systemd-analyze verify "./$u" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "systemd-analyze verify $u"
	else
		echo "$out"
		not_ok "systemd-analyze verify $u (exit $rc)"
	fi
done

# The units run what was installed, with the installed config.
check "zramd.service runs nbdkit with the installed plugin and config" \
	grep -Eq "^ExecStart=$(type -P nbdkit) .*$" "$v/zramd.service"
check "the plugin path in the units is PLUGINDIR" \
	bash -c 'grep -A3 "^ExecStart=" "$1" | grep -q "/nbdkit/plugins/nbdkit-zramd-plugin.so"' _ "$v/zramd.service"
# One thread per connection, before NBDKIT_OPTS so that it can be
# overridden (README, "Known issues": nbdkit 1.32 with more aborts when a
# client vanishes mid-request).
for u in zramd.service zramd@.service; do
	check "$u runs nbdkit --threads=1, then \$NBDKIT_OPTS" \
		grep -Eq '^ExecStart=[^ ]+ .*--threads=1 \$NBDKIT_OPTS' "$v/$u"
done
check "zramd@.service reads /etc/zramd/%i.conf and writes /run/zramd/%i.stats" \
	bash -c 'grep -q "config=/etc/zramd/%i.conf" "$1" && grep -q "stats=/run/zramd/%i.stats" "$1"' _ "$v/zramd@.service"

# A typo must not pass: the same check on a broken copy fails.
sed 's/^LockPersonality=/LockPersonalty=/' "$v/zramd.service" >"$v/zbroken.service"
out=$(cd "$v" && systemd-analyze verify ./zbroken.service 2>&1)
check "verify catches an unknown key (the check above is not blind)" \
	[ -n "$out" ]

for u in zramd.service zramd@test.service zramd-prometheus.service; do
	out=$(cd "$v" && systemd-analyze security --offline=yes "./$u" 2>&1)
	level=$(echo "$out" | sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
		ok "systemd-analyze security $u: exposure $level (at most 2.0)"
	else
		echo "$out" | grep -v '^✓'
		not_ok "systemd-analyze security $u: exposure '${level:-?}', above 2.0"
	fi
done

# The shrinker's inputs stay visible (see the comments in the unit).
check "zramd.service does not hide /proc/pressure (no ProcSubset=pid)" \
	bash -c '! grep -q "^ProcSubset=pid" "$1"' _ "$v/zramd.service"
check "zramd.service is Type=notify with a watchdog" \
	bash -c 'grep -q "^Type=notify$" "$1" && grep -q "^WatchdogSec=" "$1"' _ "$v/zramd.service"

finish
