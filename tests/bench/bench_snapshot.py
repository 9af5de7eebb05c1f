#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Snapshot figures (persist=): how long a clean stop takes to write the
device, how long a start takes to load it, and how soon after nbdkit is
started the first read is answered.

    bench_snapshot.py --plugin SO --data FILE --out FILE.md [--quick]
                      [--workdir DIR]

For 512 MiB of real data (the bench corpus) and 1 GiB (the corpus twice):
the device is filled (4 MiB writes), stopped with SIGTERM (the plugin's log
gives the write time, the stop is timed from the signal to the exit),
its page cache dropped (posix_fadvise), then started again; the time
from starting nbdkit to the first 4 KiB read answered is measured by a
client retrying every 2 ms, and the plugin's log gives the load time.
The same start without a snapshot is the baseline. The device is read
back whole and compared with the data. The snapshot goes to --workdir
(default: the build folder, a real disk, not a tmpfs).

Kept apart from bench.py (its own make target, bench-snapshot, and its
own page, docs/BENCHMARKS-snapshot.md) so that the two can change
independently.
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import nbd

MiB = 1 << 20


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start(plugin, sock, size, snap, logf):
    if os.path.exists(sock):
        os.unlink(sock)
    t0 = time.monotonic()
    p = subprocess.Popen(["nbdkit", "-f", "--threads=1", "-U", sock, plugin,
                          "size=%d" % size, "persist=" + snap],
                         stderr=open(logf, "a"))
    # First read answered: connect and read, retrying every 2 ms.
    while True:
        if p.poll() is not None:
            sys.exit("nbdkit exited: " + open(logf).read())
        try:
            h = nbd.NBD()
            h.connect_unix(sock)
            h.pread(4096, 0)
            break
        except nbd.Error:
            time.sleep(0.002)
    first = time.monotonic() - t0
    h.shutdown()
    return p, first


def stop(p):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(600)
    if rc != 0:
        sys.exit("nbdkit exited with %d" % rc)
    return time.monotonic() - t0


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def one(args, work, data, copies):
    size = copies * os.stat(data).st_size
    sock = os.path.join(work, "s.sock")
    snap = os.path.join(work, "bench.snapshot")
    logf = os.path.join(work, "nbdkit.log")
    for f in (snap, snap + ".consumed", logf):
        if os.path.exists(f):
            os.unlink(f)

    p, empty_first = start(args.plugin, sock, size, snap, logf)
    for i in range(copies):
        write_at(sock, data, i * os.stat(data).st_size)
    stop_s = stop(p)
    text = open(logf).read()
    m = re.findall(r"wrote (\d+) MiB of data .* as (\d+) bytes in "
                   r"([0-9.]+) s", text)
    data_mib, file_bytes, write_s = int(m[-1][0]), int(m[-1][1]), \
        float(m[-1][2])
    drop_cache(snap)

    p, first = start(args.plugin, sock, size, snap, logf)
    text = open(logf).read()
    m = re.findall(r"loaded (\d+) MiB of data .* from (\d+) bytes in "
                   r"([0-9.]+) s", text)
    load_s = float(m[-1][2])
    # Every byte back.
    got = hashlib.sha256()
    h = nbd.NBD()
    h.connect_unix(sock)
    for off in range(0, size, 32 * MiB):
        got.update(h.pread(min(32 * MiB, size - off), off))
    h.shutdown()
    want = hashlib.sha256()
    for i in range(copies):
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(32 * MiB), b""):
                want.update(chunk)
    equal = got.digest() == want.digest()
    p.send_signal(signal.SIGKILL)  # no second snapshot to write
    p.wait()
    # The same load again, the file now in the page cache (as after a
    # restart that follows the stop at once): what the CPU costs.
    os.rename(snap + ".consumed", snap)
    p, warm_first = start(args.plugin, sock, size, snap, logf)
    m = re.findall(r"loaded (\d+) MiB of data .* from (\d+) bytes in "
                   r"([0-9.]+) s", open(logf).read())
    warm_s = float(m[-1][2])
    p.send_signal(signal.SIGKILL)
    p.wait()
    for f in (snap, snap + ".consumed"):
        if os.path.exists(f):
            os.unlink(f)
    return dict(size=size, data_mib=data_mib, file_mib=file_bytes / MiB,
                write_s=write_s, stop_s=stop_s, load_s=load_s,
                first_s=first, empty_first_s=empty_first, equal=equal,
                warm_s=warm_s, warm_first_s=warm_first,
                warm_mbs=data_mib * MiB / warm_s / 1e6,
                write_mbs=file_bytes / write_s / 1e6,
                write_data_mbs=data_mib * MiB / write_s / 1e6,
                load_mbs=file_bytes / load_s / 1e6,
                load_data_mbs=data_mib * MiB / load_s / 1e6)


def write_at(sock, data, off):
    h = nbd.NBD()
    h.connect_unix(sock)
    with open(data, "rb") as f:
        pos = 0
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.pwrite(chunk, off + pos)
            pos += len(chunk)
    h.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    data = args.data
    work = tempfile.mkdtemp(prefix="zramd-bench-snap-", dir=args.workdir)
    try:
        if args.quick:
            small = os.path.join(work, "data-64M")
            with open(data, "rb") as f, open(small, "wb") as g:
                g.write(f.read(64 * MiB))
            data = small
        rows = []
        for copies in (1,) if args.quick else (1, 2):
            log("snapshot bench: %d MiB" %
                (copies * os.stat(data).st_size // MiB))
            rows.append(one(args, work, data, copies))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = []
    out.append("# Snapshot benchmarks (persist=)\n")
    out.append("Written by `make bench-snapshot` (tests/bench/"
               "bench_snapshot.py); %s.\n" %
               ("a quick run (64 MiB)" if args.quick else
                "the 512 MiB real-data corpus, and 1 GiB (it twice)"))
    out.append("The write is the clean stop's snapshot (fsync included); "
               "the load is the next start's, with the file's page cache "
               "dropped first. *first read* is the time from starting "
               "nbdkit to the first 4 KiB read answered, with the "
               "snapshot and without one (an empty device). *file cached*: "
               "the same load with the snapshot in the page cache, as right "
               "after a stop: the CPU's part.\n")
    out.append("| device | data | snapshot file | write | write MB/s "
               "(file / data) | whole stop | load | load MB/s (file / data) "
               "| first read | load, file cached (data MB/s) | first read, file "
               "cached | first read, no snapshot | bytes equal |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append(
            "| %d MiB | %d MiB | %.0f MiB | %.2f s | %.0f / %.0f | %.2f s "
            "| %.2f s | %.0f / %.0f | %.2f s | %.2f s (%.0f) | %.2f s "
            "| %.2f s | %s |" %
            (r["size"] // MiB, r["data_mib"], r["file_mib"], r["write_s"],
             r["write_mbs"], r["write_data_mbs"], r["stop_s"], r["load_s"],
             r["load_mbs"], r["load_data_mbs"], r["first_s"],
             r["warm_s"], r["warm_mbs"], r["warm_first_s"],
             r["empty_first_s"], "yes" if r["equal"] else "NO"))
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    if not all(r["equal"] for r in rows):
        sys.exit("snapshot bench: the device did not come back equal")


if __name__ == "__main__":
    main()
