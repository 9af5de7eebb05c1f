#!/usr/bin/python3
# localswap-nbdkit.py SAFE|UNSAFE PLUGIN_SO [PREFIX...] - PR_SET_IO_FLUSHER
# as the sd_notify STATUS= line and the log report it (daemon/localswap.c).
#
# Runs PREFIX... nbdkit PLUGIN_SO with NOTIFY_SOCKET set, writes 1 MiB so
# that a worker thread enters the plugin, waits for the next STATUS= and
# stops nbdkit. UNSAFE (nbdkit without CAP_SYS_RESOURCE): every STATUS=
# after the first request says "not safe as local swap", and the log says
# it exactly once. SAFE: neither says it.
import os
import signal
import subprocess
import sys
import time

from notify_listener import TIMEOUT, NotifySocket, report

want_unsafe = sys.argv[1] == "UNSAFE"
plugin = sys.argv[2]
prefix = sys.argv[3:]
ns = NotifySocket("zramd-localswap-")
nbd_path = os.path.join(ns.tmp, "nbd.sock")
env = dict(os.environ)
env["NOTIFY_SOCKET"] = ns.path
for k in ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
    env.pop(k, None)
ns.proc = subprocess.Popen(
    prefix + ["nbdkit", "-f", "-U", nbd_path, "--threads=1", plugin, "16M"],
    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
words = "not safe as local swap"
try:
    ready = ns.recv_until("READY=1")
    report(ready is not None, "READY=1 (%r)" % ready)
    import nbd
    h = nbd.NBD()
    h.connect_unix(nbd_path)
    h.pwrite((b"localswap " * 410)[:4096] * 256, 0)
    h.flush()
    h.shutdown()
    status = None
    deadline = time.monotonic() + TIMEOUT
    while True:
        m = ns.recv(deadline)
        if m is None or m.startswith("STATUS="):
            status = m
            break
    report(status is not None and (words in status) == want_unsafe,
           "STATUS= after a request %s %r (%r)" %
           ("says" if want_unsafe else "does not say", words, status))
    ns.proc.send_signal(signal.SIGTERM)
    err = ns.proc.stderr.read().decode(errors="replace")
    ns.proc.wait()
    n = err.count(words)
    report(n == (1 if want_unsafe else 0),
           "the log says %r %d time(s), expected %d" %
           (words, n, 1 if want_unsafe else 0))
    if want_unsafe:
        report("CAP_SYS_RESOURCE" in err,
               "the log names the capability")
finally:
    sys.exit(ns.close())
