# tests/ops/notify_listener.py - systemd's side of sd_notify, for the tests
#
# Shared by notify-nbdkit.py and socket-activation.py: the ok/FAIL line
# printer, and a NOTIFY_SOCKET (a datagram socket in a fresh temporary
# directory) that collects the messages of the process under test.
#
#   ns = NotifySocket("zramd-x-")         # ns.path for NOTIFY_SOCKET, ns.tmp
#   ns.proc = subprocess.Popen(..., stderr=subprocess.PIPE)
#   m = ns.recv(deadline)                 # or ns.recv_until("READY=1")
#   ...
#   sys.exit(ns.close())                  # in a finally: kills, cleans up
import os
import select
import socket
import tempfile
import time

TIMEOUT = 60.0
failed = 0


def report(good, what):
    """Prints "ok - WHAT" or "FAIL - WHAT"; counts the failures."""
    global failed
    print(("ok - " if good else "FAIL - ") + what, flush=True)
    if not good:
        failed += 1


class NotifySocket:
    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.path = os.path.join(self.tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.proc = None
        self.msgs = []  # (monotonic time, text) of every message read

    def _read(self):
        text = self.sock.recv(4096).decode()
        self.msgs.append((time.monotonic(), text))
        return text

    def recv(self, deadline):
        """The next message, or None at the deadline or once the process
        has died."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if r:
                return self._read()
            if self.proc is not None and self.proc.poll() is not None:
                return None

    def recv_until(self, prefix, timeout=TIMEOUT):
        """The first message starting with prefix within timeout seconds
        (the others are read and dropped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(deadline)
            if m is None or m.startswith(prefix):
                return m

    def drain(self):
        """The messages already queued, without waiting."""
        out = []
        while select.select([self.sock], [], [], 0)[0]:
            out.append(self._read())
        return out

    def close(self):
        """Kills the process if it still runs, shows its stderr if a
        check failed, removes the directory. Returns the exit status for
        the script: 1 if a check failed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            err = self.proc.stderr.read().decode(errors="replace")
            if failed and err:
                print("nbdkit stderr:\n" + err)
        self.sock.close()
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)
        return 1 if failed else 0
