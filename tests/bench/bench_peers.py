# SPDX-License-Identifier: MIT
"""The devices `make bench` measures, behind one small interface.

Each peer is started fresh for every run as a Device:

  NbdDevice    nbdkit serving a plugin (memory, memory allocator=zstd,
               zramd) on a private unix socket; clients reach it with fio's
               nbd engine and nbdcopy, over the same NBD path for every row.
  ZramDevice   the kernel's /dev/zram0 with lz4; clients are fio with
               libaio direct=1 and dd with O_DIRECT.

A Device is a context manager. Leaving it stops the server (or resets
zram) and leaves the final memory counters in `dev.final`: zram's mm_stat,
or the zramd stats file, which the plugin rewrites at exit. Only the
standard library is used, so the harness runs on Debian's python3 alone.
"""

import json
import os
import signal
import subprocess
import time

MiB = 1 << 20
GiB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")


class PeerUnavailable(Exception):
    """The peer cannot run here; the message says why (printed as skipped)."""


class PeerFailed(Exception):
    """The peer started but a run failed: a bug or a broken setup."""


def oneline(text, n=300):
    """The end of a command's stderr as one line, for the report."""
    lines = [" ".join(x.split()) for x in text.strip().splitlines()]
    return " / ".join(x for x in lines if x)[-n:]


def run(cmd, **kw):
    """Run a command, raising PeerFailed with its stderr if it fails."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    if p.returncode != 0:
        raise PeerFailed("%s: exit %d: %s" % (
            " ".join(map(str, cmd[:3])), p.returncode,
            oneline(p.stderr)))
    return p.stdout


def proc_status(pid):
    """VmRSS, RssAnon, RssFile and Pss of a process, in bytes. Pss counts
    each shared library page divided by the processes that map it."""
    out = {}
    for name, keys in (("status", ("VmRSS", "RssAnon", "RssFile")),
                       ("smaps_rollup", ("Pss",))):
        try:
            with open("/proc/%d/%s" % (pid, name)) as f:
                for line in f:
                    key, _, val = line.partition(":")
                    if key in keys:
                        out[key] = int(val.split()[0]) * 1024
        except FileNotFoundError:   # smaps_rollup: Linux 4.14 and later
            pass
    return out


def read_stats_file(path):
    """Parse a zramd stats file (include/zramd_stats.h) into a dict."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, val = line.partition(" ")
            out[key] = int(val) if val.strip().isdigit() else val.strip()
    if out.get("version") != 1:
        raise PeerFailed("%s: unknown stats version %r" %
                         (path, out.get("version")))
    return out


class Peer:
    """One row of the tables: how to start the device it names."""

    def __init__(self, key, label, kind, plugin=None, args=(), stats=False,
                 nbdkit_opts=()):
        self.key = key          # short name, used in BENCH_PEERS
        self.label = label      # row label in the report
        self.kind = kind        # "nbd" or "zram"
        self.plugin = plugin    # nbdkit plugin name or .so path
        self.args = list(args)
        self.stats = stats      # the plugin writes a zramd stats file
        self.nbdkit_opts = list(nbdkit_opts)    # before the plugin

    def check(self):
        """Raise PeerUnavailable if this peer cannot run here."""
        if self.kind == "zram":
            zram_check()
        elif self.plugin.endswith(".so") and not os.path.exists(self.plugin):
            raise PeerUnavailable("plugin not built (%s)" % self.plugin)

    def device(self, size, workdir, extra=()):
        if self.kind == "zram":
            return ZramDevice(size)
        return NbdDevice(self, size, workdir, extra)


class NbdDevice:
    """nbdkit in the foreground on a unix socket, for one run."""

    def __init__(self, peer, size, workdir, extra=()):
        self.peer = peer
        self.size = size
        self.workdir = workdir
        self.sock = os.path.join(workdir, "nbd.sock")
        self.pidfile = os.path.join(workdir, "nbdkit.pid")
        self.log = os.path.join(workdir, "nbdkit-%s.log" % peer.key)
        self.stats_path = (os.path.join(workdir, "stats-%s" % peer.key)
                           if peer.stats else None)
        self.extra = list(extra)
        self.uri = "nbd+unix:///?socket=" + self.sock
        self.proc = None
        self.final = None

    def __enter__(self):
        for p in (self.sock, self.pidfile, self.stats_path):
            if p and os.path.exists(p):
                os.unlink(p)
        cmd = ["nbdkit", "-f", "--exit-with-parent", "-U", self.sock,
               "-P", self.pidfile] + self.peer.nbdkit_opts + [
               self.peer.plugin, "size=%d" % self.size]
        cmd += self.peer.args + self.extra
        if self.stats_path:
            cmd.append("stats=" + self.stats_path)
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (os.path.exists(self.pidfile) and
                   os.path.exists(self.sock)):
            if self.proc.poll() is not None:
                self.logf.close()
                with open(self.log) as f:
                    msg = f.read().strip().splitlines()
                raise PeerUnavailable("nbdkit refused to start: %s" %
                                      (msg[-1] if msg else "no message"))
            if time.monotonic() > deadline:
                self._kill()
                raise PeerFailed("nbdkit did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        crashed = self.proc.poll() is not None
        self._kill()
        self.logf.close()
        if self.stats_path and os.path.exists(self.stats_path):
            self.final = read_stats_file(self.stats_path)
        if crashed and exc[0] is None:
            raise PeerFailed("nbdkit exited during the run (exit %s), see %s"
                             % (self.proc.returncode, self.log))
        return False

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self):
        if self.proc.poll() is not None:
            raise PeerFailed("nbdkit died (exit %s), see %s" %
                             (self.proc.returncode, self.log))

    def rss(self):
        self.alive()
        return proc_status(self.proc.pid)

    def cpu_time(self):
        """User plus system CPU seconds the server has used, all threads."""
        self.alive()
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def live_stats(self):
        """The stats file as last written (None without one)."""
        if not self.stats_path or not os.path.exists(self.stats_path):
            return None
        st = read_stats_file(self.stats_path)
        st["_mtime"] = os.stat(self.stats_path).st_mtime_ns / 1e9
        return st

    def fio_target(self):
        return ["--ioengine=nbd", "--uri=" + self.uri]

    def copy_in(self, path):
        run(["nbdcopy", path, self.uri])

    def copy_out(self):
        run(["nbdcopy", self.uri, "null:"])

    def verify(self, path):
        """Read the device back and compare with the file byte by byte."""
        cp = subprocess.Popen(["nbdcopy", self.uri, "-"],
                              stdout=subprocess.PIPE)
        cmp = subprocess.run(["cmp", "-n", str(os.path.getsize(path)),
                              "-", path], stdin=cp.stdout,
                             stdout=subprocess.PIPE, text=True)
        cp.stdout.close()
        cp.wait()
        if cmp.returncode != 0:
            raise PeerFailed("read-back differs from the data written: " +
                             cmp.stdout.strip())


ZRAM = "/sys/block/zram0"


def zram_write(attr, value):
    with open(os.path.join(ZRAM, attr), "w") as f:
        f.write(value)


def zram_read(attr):
    with open(os.path.join(ZRAM, attr)) as f:
        return f.read().strip()


def zram_check():
    """Raise PeerUnavailable unless /dev/zram0 can be configured with lz4."""
    if os.geteuid() != 0:
        raise PeerUnavailable("not root, cannot configure /dev/zram0")
    if not os.path.isdir(ZRAM) or not os.path.exists("/dev/zram0"):
        raise PeerUnavailable("no /sys/block/zram0 (modprobe zram)")
    if zram_read("initstate") != "0":
        raise PeerUnavailable("/dev/zram0 is in use (initstate 1); "
                              "not touching it")
    if "lz4" not in zram_read("comp_algorithm").replace("[", " ").replace(
            "]", " ").split():
        raise PeerUnavailable("zram has no lz4 (%s)" %
                              zram_read("comp_algorithm"))
    try:
        zram_write("reset", "1")
        zram_write("comp_algorithm", "lz4")
        zram_write("disksize", str(16 * MiB))
        zram_write("reset", "1")
    except OSError as e:
        raise PeerUnavailable("cannot configure /dev/zram0: %s" % e)


def zram_mm_stat():
    f = [int(x) for x in zram_read("mm_stat").split()]
    return {"orig_data_size": f[0], "compr_data_size": f[1],
            "mem_used_total": f[2], "mem_used_max": f[4],
            "same_pages": f[5], "huge_pages": f[7] if len(f) > 7 else 0}


class ZramDevice:
    """/dev/zram0 with lz4 and the given disksize, reset when left."""

    def __init__(self, size):
        self.size = size
        self.final = None

    def __enter__(self):
        zram_write("reset", "1")
        zram_write("comp_algorithm", "lz4")
        zram_write("disksize", str(self.size))
        return self

    def __exit__(self, *exc):
        try:
            self.final = zram_mm_stat()
        finally:
            zram_write("reset", "1")
        return False

    def alive(self):
        pass

    def rss(self):
        return None

    def cpu_time(self):
        return None     # the kernel does the work in the client's context

    def live_stats(self):
        return zram_mm_stat()

    def fio_target(self):
        return ["--ioengine=libaio", "--direct=1", "--filename=/dev/zram0"]

    def copy_in(self, path):
        run(["dd", "if=" + path, "of=/dev/zram0", "bs=1M", "oflag=direct",
             "status=none"])

    def copy_out(self):
        run(["dd", "if=/dev/zram0", "of=/dev/null", "bs=1M", "iflag=direct",
             "status=none"])

    def verify(self, path):
        p = subprocess.run(["cmp", "-n", str(os.path.getsize(path)),
                            "/dev/zram0", path], stdout=subprocess.PIPE,
                           text=True)
        if p.returncode != 0:
            raise PeerFailed("read-back differs: " + p.stdout.strip())


# Every fio job writes the same kind of data: each 4 KiB block half random,
# half a repeated byte, fresh for every write, so LZ4 gets about 2:1.
FIO_DATA = ["--buffer_compress_percentage=50", "--buffer_compress_chunk=4096",
            "--refill_buffers"]


def fio(dev, workdir, name, rw, size, bs="4k", numjobs=1, iodepth=32,
        runtime=None, wait=True):
    """Run one fio job against dev; return its result (or the Popen)."""
    out = os.path.join(workdir, "fio-%s.json" % name)
    cmd = ["fio", "--name=" + name, "--rw=" + rw, "--bs=" + bs,
           "--size=%d" % size, "--numjobs=%d" % numjobs,
           "--iodepth=%d" % iodepth, "--group_reporting",
           "--output-format=json", "--output=" + out] + FIO_DATA
    if rw.startswith("rand"):
        cmd.append("--norandommap")
    if runtime:
        cmd += ["--time_based", "--runtime=%d" % runtime]
    cmd += dev.fio_target()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if not wait:
        return p, out
    return fio_result(p, out)


def fio_result(p, out):
    _, err = p.communicate()
    if p.returncode != 0:
        raise PeerFailed("fio: exit %d: %s" % (p.returncode, oneline(err)))
    with open(out) as f:
        job = json.load(f)["jobs"][0]
    if job["error"]:
        raise PeerFailed("fio: job error %d" % job["error"])
    d = job["read"] if job["read"]["total_ios"] else job["write"]
    return {"iops": d["iops"], "bw": d["bw_bytes"],
            "lat_us": d["lat_ns"]["mean"] / 1000, "ios": d["total_ios"],
            "runtime_s": d["runtime"] / 1000}
