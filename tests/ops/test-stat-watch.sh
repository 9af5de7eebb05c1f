#!/bin/bash
# zramd-stat --watch in a real pseudo-terminal (tmux): while a writer and a
# reader keep a live device busy,, the screen shows the device and non-zero
# READS/s and WRITES/s; the table is redrawn in place (one header on the
# screen); Ctrl-C ends it with status 0; and a watch ends by itself when
# its stats file goes away.
source "$(dirname "$0")/functions.sh"

if ! have_plugin; then
	skip "zramd-stat --watch: no plugin at $PLUGIN_SO"
	finish
fi
command -v tmux >/dev/null || {
	skip "zramd-stat --watch: tmux is not installed"
	finish
}
if ! start_zramd size=64M ${ZRAMD_TEST_ARGS:-}; then
	not_ok "nbdkit did not start"
	finish
fi
sess=zramd-watch-$$
export TMUX_TMPDIR=$TMP
on_exit "tmux kill-server 2>/dev/null"

# Busy for up to 60 s, in the background: write and read 4 MiB in turn.
(
	end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ] && [ -S "$SOCK" ]; do
		nbdcopy -- [ nbdkit random size=4M ] "nbd+unix:///?socket=$SOCK" 2>/dev/null
		nbdcopy "nbd+unix:///?socket=$SOCK" null: 2>/dev/null
	done
) &
busy=$!
on_exit "kill $busy 2>/dev/null"

rcfile=$TMP/watch.rc
tmux new-session -d -s "$sess" -x 200 -y 30 \
	"$ZRAMD_STAT --watch 1 $STATS; echo \$? >$rcfile; sleep 30"
screen() { tmux capture-pane -p -t "$sess"; }
# rate SCREEN COLUMN: its value in the device's row (columns as the header's).
rate() {
	awk -v col="$2" -v dev="$STATS" '
		/^NAME/ { for (i = 1; i <= NF; i++) if ($i == col) c = i }
		$1 == dev && c { print $c }' <<<"$1"
}
# One capture of the screen, judged whole: both rates above zero.
moving() {
	out=$(screen)
	r=$(rate "$out" READS/s) w=$(rate "$out" WRITES/s)
	[[ $r =~ ^[0-9]+$ && $w =~ ^[0-9]+$ && $r -gt 0 && $w -gt 0 ]]
}
out= r= w=
wait_for 200 moving
moved=$?
check "reads and writes per second move (READS/s $r, WRITES/s $w)" [ $moved -eq 0 ]
check "the screen shows the device" grep -qF "$STATS" <<<"$out"
check "redrawn in place: one header on the screen" [ "$(grep -c '^NAME ' <<<"$out")" -eq 1 ]
check "the rate columns are there" grep -Eq '^NAME .* READS/s +WRITES/s +EVICT/s +BDREAD/s$' <<<"$out"

tmux send-keys -t "$sess" C-c
wait_for 50 test -s "$rcfile"
check "Ctrl-C ends it with status 0" [ "$(cat "$rcfile" 2>/dev/null)" = 0 ]
kill $busy 2>/dev/null
wait $busy 2>/dev/null

# The stats file goes away (the device stopped and it was removed, as
# systemd removes /run/zramd with the last unit): the watch ends.
rcfile=$TMP/watch2.rc sess=$sess-2
tmux new-session -d -s "$sess" -x 200 -y 30 \
	"$ZRAMD_STAT --watch 0.5 $STATS 2>$TMP/watch.err; echo \$? >$rcfile; sleep 30"
wait_for 50 bash -c "tmux capture-pane -p -t $sess | grep -qF '$STATS'"
stop_zramd
rm -f "$STATS"
wait_for 100 test -s "$rcfile"
check "the watch ends when the stats file goes away (status $(cat "$rcfile" 2>/dev/null))" \
	[ "$(cat "$rcfile" 2>/dev/null)" = 0 ]
check "and says why ($(cat $TMP/watch.err))" grep -q 'went away' "$TMP/watch.err"
finish
