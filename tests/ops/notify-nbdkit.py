#!/usr/bin/python3
# notify-nbdkit.py PLUGIN_SO [KEY=VALUE...] - the plugin under nbdkit, watched as systemd
# would watch it: a datagram socket as NOTIFY_SOCKET, WATCHDOG_USEC set.
#
# Checks, printing one "ok - ..." or "FAIL - ..." line each:
#  - READY=1 is the first message, sent once, and when it arrives the unix
#    socket already accepts connections: an NBD client gets the greeting;
#  - STATUS= lines are one line and parse; after a write, one shows data;
#  - WATCHDOG=1 comes repeatedly, on average no more often than the half
#    interval (a lower bound, which holds however loaded the machine is);
#  - SIGTERM brings STOPPING=1, and nbdkit exits 0.
# Timeouts are generous (60 s); nothing asserts that anything was fast.
import os
import re
import signal
import socket
import subprocess
import sys
import time

from notify_listener import TIMEOUT, NotifySocket, report

WATCHDOG_USEC = 2_000_000  # pings expected every 1 s

plugin = sys.argv[1]

ns = NotifySocket("zramd-notify-")
tmp = ns.tmp
nbd_path = os.path.join(tmp, "nbd.sock")

env = dict(os.environ)
env["NOTIFY_SOCKET"] = ns.path
env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
env.pop("WATCHDOG_PID", None)  # nbdkit's pid is not known before exec
env.pop("LISTEN_FDS", None)
env.pop("LISTEN_PID", None)
proc = ns.proc = subprocess.Popen(
    ["nbdkit", "-f", "-U", nbd_path, plugin, "64M",
     "stats=" + os.path.join(tmp, "stats"), "stats_interval=1"] +
    sys.argv[2:],
    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

msgs = ns.msgs  # (monotonic time, text)
recv = ns.recv


def nbd_greeting():
    """Connects to nbdkit's socket; returns the first 8 bytes it sends."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(nbd_path)
        data = b""
        while len(data) < 8:
            chunk = s.recv(8 - len(data))
            if not chunk:
                break
            data += chunk
        return data
    except OSError as e:
        return repr(e).encode()
    finally:
        s.close()


STATUS_RE = re.compile(r"^STATUS=(\S+): (\d+) MiB stored in (\d+) MiB "
                       r"\((\d+\.\d\d)x\), (\d+) same-filled, "
                       r"(\d+) on backing file"
                       r"(, cold tier \d+ MiB in \d+ MiB)?"
                       r"(; not safe as local swap \([^)]*\))?$")
try:
    first = recv(time.monotonic() + TIMEOUT)
    # Right now, before anything else: the socket must be serving.
    greeting = nbd_greeting() if first else b""
    report(first is not None and first.split("\n")[0] == "READY=1",
           "READY=1 is the first message (%r)" % first)
    report(greeting == b"NBDMAGIC",
           "at READY=1 the socket accepts and nbdkit greets (%r)" % greeting)
    lines = (first or "").split("\n")
    report(len(lines) == 2 and STATUS_RE.match(lines[1]) is not None,
           "READY=1 carries a STATUS= line that parses (%r)" %
           lines[1:])

    # A write the next STATUS= must show: 8 MiB of compressible text.
    import nbd
    h = nbd.NBD()
    h.connect_unix(nbd_path)
    block = (b"zramd notify test " * 300)[:4096]
    h.pwrite(block * 2048, 0)
    h.flush()
    h.shutdown()

    # Pings are timed from here, while this script only waits, so that
    # the receive times are close to the send times. What queued up during
    # the write is read first, untimed.
    pings, statuses = [], []
    shown = False

    def saw_status(m):
        global shown
        statuses.append(m)
        mo = STATUS_RE.match(m)
        shown = shown or (mo is not None and int(mo.group(2)) >= 8)

    for m in ns.drain():
        if m.startswith("STATUS="):
            saw_status(m)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not (shown and len(pings) >= 5):
        m = recv(deadline)
        if m is None:
            break
        if m == "WATCHDOG=1":
            pings.append(msgs[-1][0])
        elif m.startswith("STATUS="):
            saw_status(m)
    report(statuses and all(STATUS_RE.match(s) for s in statuses),
           "periodic STATUS= lines parse (%d seen, last %r)" %
           (len(statuses), statuses[-1] if statuses else None))
    report(shown, "a STATUS= after writing 8 MiB shows it stored")
    report(len(pings) >= 5, "WATCHDOG=1 sent repeatedly (%d)" % len(pings))
    # The thread waits WATCHDOG_USEC/2 after each ping, so on average
    # pings cannot come more often than that; a loaded machine only
    # spaces them more. (A single gap can look shorter if one datagram
    # was read late.)
    half = WATCHDOG_USEC / 2e6
    avg = (pings[-1] - pings[0]) / (len(pings) - 1) if len(pings) > 1 else 0
    report(avg >= half * 0.95,
           "WATCHDOG=1 on average no more often than WATCHDOG_USEC/2 = "
           "%.1f s (%.2f s over %d pings)" % (half, avg, len(pings)))
    report(sum(1 for _, t in msgs if t.startswith("READY=1")) == 1,
           "READY=1 sent once")

    proc.send_signal(signal.SIGTERM)
    stopping = ns.recv_until("STOPPING=1")
    report(stopping is not None, "SIGTERM: STOPPING=1 (%r)" % stopping)
    try:
        rc = proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    report(rc == 0, "nbdkit exits 0 after SIGTERM (%s)" % rc)
finally:
    status = ns.close()

sys.exit(status)
