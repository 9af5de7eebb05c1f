#!/usr/bin/env bash
# SIGTERM with a client connected and idle (as the kernel's NBD client
# is between requests): nbdkit must exit at once, and the client must see
# its connection closed, never an ESHUTDOWN answer to a request. Plain
# nbdkit 1.32 waits for the client's next request and fails it with
# ESHUTDOWN, which the kernel turns into EIO (see daemon/stopconn.c). A
# second client that is not connected to the device is not touched: the
# check is that the listening socket's connections, only, are ended.
source "$(dirname "$0")/functions.sh"
requires nbdkit
requires nbdsh

start_zramd size=4M || { not_ok "start"; finish; }
# The client writes, then idles 3 s, then reads: after the SIGTERM that
# comes in its idle time, the read must fail as "not connected", not
# with ESHUTDOWN.
nbdsh -u "$URI" -c '
import time
h.pwrite(b"x" * 4096, 0)
print("idle", flush=True)
time.sleep(3)
try:
    h.pread(4096, 0)
    print("read after stop: ok (unexpected)")
except nbd.Error as e:
    print("read after stop: errno=%s: %s" % (e.errno, e.string))
' >"$TMP/client.out" 2>&1 &
cpid=$!
wait_for 100 grep -q idle "$TMP/client.out" || not_ok "the client did not connect"
t0=$(date +%s%N)
kill -TERM "$ZRAMD_PID"
if wait_for 20 eval "! kill -0 $ZRAMD_PID 2>/dev/null"; then
	ok "nbdkit exited within 2 s of SIGTERM with an idle client ($((($(date +%s%N) - t0) / 1000000)) ms)"
else
	not_ok "nbdkit still runs 2 s after SIGTERM with an idle client"
fi
wait "$ZRAMD_PID" 2>/dev/null
check "nbdkit exited with status 0" test $? -eq 0
wait "$cpid"
cat "$TMP/client.out"
if grep -q ESHUTDOWN "$TMP/client.out"; then
	not_ok "the client's next request was answered with ESHUTDOWN"
elif grep -q "read after stop: errno" "$TMP/client.out"; then
	ok "the client's next request found the connection closed (no ESHUTDOWN)"
else
	not_ok "the client's read after the stop did not fail"
fi
finish
