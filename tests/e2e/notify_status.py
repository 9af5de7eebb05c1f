# tests/e2e/notify_status.py - the STATUS= lines a start sends to systemd
#
#   notify_status.py NBDKIT-ARGS...
#
# Runs nbdkit with NOTIFY_SOCKET set to a socket of its own, prints every
# STATUS= it sends until READY=1 and the first STATUS= after it, then
# kills it with SIGKILL (as a crash: no snapshot written, nothing
# renamed). Exit status 1 if READY=1 never came (60 s).
import os
import socket
import subprocess
import sys
import tempfile
import time

tmp = tempfile.mkdtemp(prefix="zramd-notify-")
path = os.path.join(tmp, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1.0)
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen(["nbdkit", "-f"] + sys.argv[1:], env=env,
                     stderr=subprocess.DEVNULL)
ready = False
deadline = time.time() + 60
try:
    while time.time() < deadline:
        try:
            m = s.recv(65536).decode()
        except socket.timeout:
            if p.poll() is not None:
                break
            continue
        for line in m.split("\n"):
            if line.startswith("STATUS="):
                print(line, flush=True)
        if "READY=1" in m:
            ready = True
            break
finally:
    p.kill()
    p.wait()
    s.close()
    os.unlink(path)
    os.rmdir(tmp)
sys.exit(0 if ready else 1)
