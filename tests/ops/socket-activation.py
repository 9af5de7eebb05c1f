#!/usr/bin/python3
# socket-activation.py UNIT PLUGIN_SO CONFIG [KEY=VALUE...]
#
# Runs the ExecStart= line of the built zramd.service as systemd would
# with zramd.socket: systemd-socket-activate holds the listening socket
# and execs the command on the first connection, with LISTEN_FDS=1 and
# NOTIFY_SOCKET. The paths of the installed system (plugin, config, stats
# file) are replaced by test ones; $NBDKIT_OPTS is empty and $ZRAMD_ARGS
# takes the extra KEY=VALUEs.
#
# Checks ("ok - ..."/"FAIL - ..." lines): the unit's command line works
# under socket activation with the shipped config; the first client,
# queued before nbdkit even ran, is served, and data reads back; READY=1
# arrives; a second client is served too; SIGTERM gives STOPPING=1 and
# exit status 0.
import os
import shlex
import signal
import subprocess
import sys
import time

from notify_listener import TIMEOUT, NotifySocket, report

unit, plugin, config = sys.argv[1:4]
extra = sys.argv[4:]

# ExecStart=, continuation lines joined as systemd joins them.
text = open(unit).read().replace("\\\n", " ")
line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
argv = []
for a in shlex.split(line[len("ExecStart="):]):
    if a == "$NBDKIT_OPTS":
        continue
    if a == "$ZRAMD_ARGS":
        argv += extra
        continue
    argv.append(a)

ns = NotifySocket("zramd-sa-")
sock_path = os.path.join(ns.tmp, "zramd.sock")
stats_path = os.path.join(ns.tmp, "zramd.stats")
snap_path = os.path.join(ns.tmp, "zramd.snapshot")
cmd = []
for a in argv:
    if a.endswith("/nbdkit-zramd-plugin.so"):
        a = plugin
    elif a.startswith("config="):
        a = "config=" + config
    elif a.startswith("stats="):
        a = "stats=" + stats_path
    elif a.startswith("persist="):
        a = "persist=" + snap_path
    cmd.append(a)
report("--foreground" in cmd and not any(a in ("-U", "--unix") or
                                         a.startswith("--unix=")
                                         for a in cmd),
       "the unit runs nbdkit in the foreground, without -U (%s)" %
       " ".join(cmd))

env = dict(os.environ)
env.pop("NOTIFY_SOCKET", None)
proc = ns.proc = subprocess.Popen(
    ["systemd-socket-activate", "-l", sock_path,
     "-E", "NOTIFY_SOCKET=" + ns.path] + cmd,
    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
recv_until = ns.recv_until

try:
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(sock_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    report(os.path.exists(sock_path), "the socket exists before nbdkit runs")

    import nbd
    data = os.urandom(4096) + b"zramd" * 1000
    data = data[:8192]
    h = nbd.NBD()
    h.connect_unix(sock_path)  # this connection starts nbdkit
    size = h.get_size()
    h.pwrite(data, 1 << 20)
    back = h.pread(len(data), 1 << 20)
    h.shutdown()
    report(size == 1 << 30, "first client served, size from the shipped "
           "config (%d)" % size)
    report(back == data, "data written reads back")
    ready = recv_until("READY=1")
    report(ready is not None, "READY=1 (%r)" % ready)

    h = nbd.NBD()
    h.connect_unix(sock_path)
    back = h.pread(len(data), 1 << 20)
    h.shutdown()
    report(back == data, "a second client is served by the same nbdkit")

    proc.send_signal(signal.SIGTERM)
    stopping = recv_until("STOPPING=1")
    report(stopping is not None, "SIGTERM: STOPPING=1")
    try:
        rc = proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    report(rc == 0, "nbdkit exits 0 (%s)" % rc)
    report(os.path.exists(stats_path), "the stats file was written")
    report(os.path.exists(snap_path) and
           os.stat(snap_path).st_mode & 0o777 == 0o600,
           "the unit's persist= snapshot was written, mode 0600")
except Exception as e:  # report, do not hide: the wrapper counts this
    report(False, "exception: %r" % e)
finally:
    status = ns.close()

sys.exit(status)
