#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make bench: zramd against its peers, in one run, on the same data.

Peers (bench_peers.py says how each is started):

  nbdkit memory            uncompressed RAM over the same NBD path: the
                           speed ceiling and the first reference row
  nbdkit memory zstd       nbdkit's own compressed RAM disk
  kernel zram (lz4)        /dev/zram0: the second reference row
  zramd zsmalloc, zbud     this project's plugin, as shipped (nbdkit
                           --threads=1, as the systemd units run it)
  zramd zsmalloc, 16 thr.  the same under nbdkit's default --threads=16

Sections, each printed as a table where every row also shows its ratio to
the nbdkit memory row and to the zram row of the same run:

  idle     VmRSS of a server holding an empty 1 TiB device
  copy     a 512 MiB real-data file (a tar of system libraries and
           documentation) copied onto a fresh device and back out: wall
           time, memory growth, compression ratio
  random   4 KiB random write, then random read, IOPS
  shrinker zramd with its working set at 4x mem_limit and a backing file,
           beside the same workload all in memory

The cold tier (issue 14) is measured by bench_cold.py (make bench-cold),
which writes its own block of the same page; this script keeps that block
when it rewrites the rest, and everything from "## Where the time goes" to
the end of the page (the hand-written analysis and the sections pasted
from the issue-17 benches).

The report goes to docs/BENCHMARKS.md (a quick run writes to the build
folder instead), with the machine it ran on and a "targets" block; the raw
figures go to BUILD/bench/results.json.

Environment: BENCH_QUICK=1 (2 s fio jobs, 64 MiB data, one repeat),
BENCH_PEERS=memory,zstd,zram,zsmalloc,zbud,zsmalloc-mt and
BENCH_SECTIONS=idle,copy,random,shrinker to run a subset, BENCH_OUT=FILE.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peers import (GiB, MiB, Peer, PeerFailed,  # noqa: E402
                         PeerUnavailable, fio, fio_result)
import bench_report  # noqa: E402

TiB = 1 << 40
SECTIONS = ["idle", "copy", "random", "shrinker"]


class Config:
    def __init__(self, quick):
        self.quick = quick
        self.runtime = 2 if quick else 10       # seconds per timed fio job
        self.repeats = 1 if quick else 3        # medians over this many
        self.region = 64 * MiB if quick else GiB    # random I/O device size
        self.copy_size = 64 * MiB if quick else 512 * MiB
        self.idle_size = TiB
        self.shrink_limit = 16 * MiB if quick else 128 * MiB
        self.shrink_ws = 4 * self.shrink_limit


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- data

def build_data(path, size):
    """A real-data file: system libraries and documentation, as a tar,
    cut to `size` bytes. Built once and cached in the build folder."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    log("building %s (%d MiB of system files)" % (path, size // MiB))
    srcs = [d for d in ["/usr/share/doc"] + sorted(
        glob.glob("/usr/lib/*-linux-gnu")) + ["/usr/share", "/usr/lib"]
        if os.path.isdir(d)]
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        tar = subprocess.Popen(["tar", "-cf", "-", "--sort=name"] + srcs,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        left = size
        while left:
            buf = tar.stdout.read(min(left, 4 * MiB))
            if not buf:
                break
            out.write(buf)
            left -= len(buf)
        tar.kill()
        tar.wait()
    if os.path.getsize(tmp) != size:
        os.unlink(tmp)
        sys.exit("bench: the system files add up to less than %d bytes" %
                 size)
    os.rename(tmp, path)


def warm(path):
    """Read the file once so every copy-in starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(8 * MiB):
            pass


# ------------------------------------------------------------ sections

def sec_idle(cfg, peer, workdir):
    if peer.kind == "zram":
        raise PeerUnavailable("not comparable: zram allocates its sector "
                              "table for the whole disksize up front")
    with peer.device(cfg.idle_size, workdir) as dev:
        time.sleep(1)
        st = dev.rss()
    return {"vmrss": st["VmRSS"], "rss_anon": st["RssAnon"],
            "pss": st.get("Pss")}


def sec_copy(cfg, peer, workdir, data):
    runs = []
    for r in range(cfg.repeats):
        warm(data)
        with peer.device(cfg.copy_size, workdir) as dev:
            before, cpu = dev.rss(), dev.cpu_time()
            t = time.monotonic()
            dev.copy_in(data)
            t_in = time.monotonic() - t
            after = dev.rss()
            if cpu is not None:
                cpu = dev.cpu_time() - cpu
            if r == 0:
                dev.verify(data)
            t = time.monotonic()
            dev.copy_out()
            t_out = time.monotonic() - t
            dev.alive()
        run = {"in_s": t_in, "out_s": t_out, "in_cpu_s": cpu}
        if before:
            run["rss_growth"] = after["VmRSS"] - before["VmRSS"]
        if dev.final:
            for k in ("orig_data_size", "compr_data_size", "mem_used_total"):
                run[k] = dev.final.get(k)
        runs.append(run)
        log("  copy %-9s run %d: in %.2f s, out %.2f s%s" % (
            peer.key, r + 1, t_in, t_out,
            ", RSS +%.1f MiB" % (run["rss_growth"] / MiB)
            if "rss_growth" in run else ""))
    return median_of(runs)


# The timed phases of random_io: (name, fio rw, jobs, iodepth).
PHASES = [("randwrite", "randwrite", 2, 32), ("randread", "randread", 2, 32)]
# The shrinker section adds one read at queue depth 1, where latency is
# service time rather than queueing.
PHASE_QD1 = ("randread-qd1", "randread", 1, 1)


def random_io(cfg, dev, workdir, size, sampler=None, phases=PHASES,
              prepare=None):
    """Fill [0, size) sequentially, then run each timed phase over it, so
    every read hits written data. prepare(phase) runs before a phase and
    sampler(phase, fio process) while it runs. Returns one fio result per
    phase."""
    fio(dev, workdir, "prefill", "write", size, bs="1M", iodepth=4)
    res = []
    for name, rw, jobs, depth in phases:
        if prepare:
            prepare(name)
        cpu = dev.cpu_time()
        p, out = fio(dev, workdir, name, rw, size, numjobs=jobs,
                     iodepth=depth, runtime=cfg.runtime, wait=False)
        if sampler:
            sampler(name, p)
        r = fio_result(p, out)
        if cpu is not None and r["ios"]:
            r["cpu_us"] = (dev.cpu_time() - cpu) * 1e6 / r["ios"]
        res.append(r)
    return res


def sec_random(cfg, peer, workdir):
    runs = []
    for r in range(cfg.repeats):
        with peer.device(cfg.region, workdir) as dev:
            w, rd = random_io(cfg, dev, workdir, cfg.region)
        runs.append({"write_iops": w["iops"], "read_iops": rd["iops"],
                     "write_lat_us": w["lat_us"], "read_lat_us": rd["lat_us"],
                     "write_cpu_us": w.get("cpu_us"),
                     "read_cpu_us": rd.get("cpu_us")})
        log("  random %-9s run %d: write %.0f IOPS, read %.0f IOPS" % (
            peer.key, r + 1, w["iops"], rd["iops"]))
    return median_of(runs)


def sample_stats(dev, samples):
    """Return a sampler for random_io: while fio runs, record each version
    of the stats file written after the phase began as (phase, stats)."""
    def sampler(phase, p):
        start, seen = time.time(), None
        while p.poll() is None:
            st = dev.live_stats()
            if st and st["_mtime"] != seen and st["_mtime"] >= start:
                seen = st["_mtime"]
                samples.append((phase, st))
            time.sleep(0.2)
    return sampler


def drop_cache(path):
    """Drop the file's pages from the page cache, so that the next reads of
    it come from the disk (each page until it is cached again)."""
    if not os.path.exists(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def wait_stats(dev, timeout=5):
    """The stats file once it exists (the plugin writes it every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = dev.live_stats()
        if st:
            return st
        time.sleep(0.1)
    return None


def rate(samples, phase, key):
    """Counter increase per second over a phase, from the stats file's
    own write times; None unless it was written at least twice."""
    pts = [s for ph, s in samples if ph == phase]
    if len(pts) < 2 or pts[-1]["_mtime"] <= pts[0]["_mtime"]:
        return None
    return (pts[-1][key] - pts[0][key]) / (pts[-1]["_mtime"] -
                                           pts[0]["_mtime"])


def sec_shrinker(cfg, peer, workdir):
    ws, limit = cfg.shrink_ws, cfg.shrink_limit
    backing = os.path.join(workdir, "backing.img")
    phases = PHASES + [PHASE_QD1]
    with peer.device(ws, workdir) as dev:
        mem_w, mem_r, mem_q = random_io(cfg, dev, workdir, ws, None, phases)
    log("  shrinker %s in memory: write %.0f IOPS, read %.0f IOPS" % (
        peer.key, mem_w["iops"], mem_r["iops"]))

    samples, failure = [], None
    extra = ["mem_limit=%d" % limit, "backing=" + backing]
    try:
        with peer.device(ws, workdir, extra) as dev:
            st0 = wait_stats(dev)
            if st0 is None:
                raise PeerUnavailable("the plugin wrote no stats file")
            if "bd_writes" not in st0:
                raise PeerUnavailable("the stats file has no bd_writes "
                                      "counter")
            try:
                lim_w, lim_r, lim_q = random_io(
                    cfg, dev, workdir, ws, sample_stats(dev, samples), phases,
                    lambda phase: phase == PHASE_QD1[0] and drop_cache(
                        backing))
            except PeerFailed as e:
                failure = e
            # The plugin empties the file when it stops.
            backing_size = (os.stat(backing).st_blocks * 512
                            if os.path.exists(backing) else None)
        final = dev.final
    finally:
        if os.path.exists(backing):
            os.unlink(backing)
    if not final or not final.get("bd_writes"):
        raise PeerUnavailable(
            "bd_writes stayed 0 with the working set at 4x mem_limit and "
            "backing= set: nothing was evicted (shrinker not integrated?)%s"
            % ("" if not failure else
               "; writes past mem_limit fail with ENOSPC"
               if "No space left" in str(failure) else
               "; the run failed: %s" % str(failure)[:160]))
    if failure:
        why = ("writes past mem_limit fail with ENOSPC"
               if "No space left" in str(failure) else str(failure))
        raise PeerFailed("%s, although the shrinker evicted (at exit: "
                         "bd_writes %d, bd_failed %s, mem_used_max %s)" % (
                             why, final["bd_writes"], final.get("bd_failed"),
                             final.get("mem_used_max")))
    # Queue depth 1: a read costs lat_mem from memory and lat_evicted from
    # the backing file, so lat = (1 - f) lat_mem + f lat_evicted, with f
    # the share of reads the backing file served.
    bdr = rate(samples, PHASE_QD1[0], "bd_reads")
    f = bdr / lim_q["iops"] if bdr is not None and lim_q["iops"] else None
    lat_evicted = None
    if f and f >= 0.05:
        lat_evicted = (lim_q["lat_us"] - (1 - f) * mem_q["lat_us"]) / f
    out = {
        "qd1_mem_lat_us": mem_q["lat_us"], "qd1_lat_us": lim_q["lat_us"],
        "qd1_backing_share": f, "qd1_evicted_lat_us": lat_evicted,
        "evicted_read_slowdown": lat_evicted / mem_q["lat_us"]
        if lat_evicted and mem_q["lat_us"] else None,
        "label": peer.label, "mem_limit": limit, "working_set": ws,
        "mem_write_iops": mem_w["iops"], "mem_read_iops": mem_r["iops"],
        "mem_read_lat_us": mem_r["lat_us"],
        "write_iops": lim_w["iops"], "read_iops": lim_r["iops"],
        "read_lat_us": lim_r["lat_us"],
        "evict_per_s": rate(samples, "randwrite", "bd_writes"),
        "bd_reads_per_s": rate(samples, "randread", "bd_reads"),
        "bd_writes": final.get("bd_writes"), "bd_reads": final.get("bd_reads"),
        "bd_count": final.get("bd_count"),
        "mem_used_max": final.get("mem_used_max"),
        "backing_bytes": backing_size,
        "read_slowdown": mem_r["iops"] / lim_r["iops"] if lim_r["iops"] else
        None,
    }
    log("  shrinker at 4x mem_limit: write %.0f IOPS, read %.0f IOPS, "
        "%s evictions/s" % (lim_w["iops"], lim_r["iops"],
                            "%.0f" % out["evict_per_s"]
                            if out["evict_per_s"] is not None else "n/a"))
    return out


def median_of(runs):
    """Per-key medians over runs (keys whose value is None are dropped)."""
    out = {"runs": runs}
    for k in runs[0]:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            out[k] = statistics.median(vals)
    return out


# ---------------------------------------------------------------- main

def write_page(path, md):
    """Write the report, keeping the cold-tier block that `make
    bench-cold` (bench_cold.py) wrote into the page before, and the
    hand-written part from "## Where the time goes" to the end."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    page = bench_report.splice_cold(md, bench_report.cold_block(old))
    tail = bench_report.hand_tail(old)
    if tail:
        page = page.rstrip("\n") + "\n\n" + tail
    with open(path, "w") as f:
        f.write(page)


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True
                                  ).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem,
        "kernel": platform.release(),
        "nbdkit": first(["nbdkit", "--version"]),
        "fio": first(["fio", "--version"]),
        "libnbd": first(["nbdcopy", "--version"]),
        "lz4": "liblz4 " + first(["dpkg-query", "-W", "-f=${Version}",
                                  "liblz4-1"]),
        "zramd": first(["git", "describe", "--always", "--dirty"]),
        "loadavg": os.getloadavg(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--plugin", default=None)
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="only write the report from an earlier run")
    args = ap.parse_args()

    cfg = Config(os.environ.get("BENCH_QUICK") == "1")
    build = os.path.abspath(args.build)
    workdir = os.path.join(build, "bench")
    os.makedirs(workdir, exist_ok=True)
    plugin = os.path.abspath(args.plugin or os.path.join(
        build, "nbdkit-zramd-plugin.so"))
    res = None
    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        cfg.quick = res["config"]["quick"]
    default_out = ("docs/BENCHMARKS.md" if not cfg.quick else
                   os.path.join(workdir, "BENCHMARKS.md"))
    out_md = os.environ.get("BENCH_OUT", default_out)

    if res:
        md, targets = bench_report.render(res)
        write_page(out_md, md)
        log(targets)
        return 0

    for tool in ("nbdkit", "nbdcopy", "fio", "dd", "cmp", "tar"):
        if not shutil.which(tool):
            sys.exit("bench: %s not found (make deps)" % tool)

    peers = [
        Peer("memory", "nbdkit memory (sparse)", "nbd", "memory"),
        Peer("zstd", "nbdkit memory allocator=zstd", "nbd", "memory",
             ["allocator=zstd"]),
        Peer("zram", "kernel zram (lz4)", "zram"),
        # zramd as shipped: nbdkit --threads=1, one thread per connection,
        # which survives clients that vanish mid-request (README, "Known
        # issues"); the nbdkit peers run with nbdkit's defaults.
        Peer("zsmalloc", "zramd allocator=zsmalloc", "nbd", plugin,
             ["allocator=zsmalloc"], stats=True,
             nbdkit_opts=["--threads=1"]),
        Peer("zbud", "zramd allocator=zbud", "nbd", plugin,
             ["allocator=zbud"], stats=True, nbdkit_opts=["--threads=1"]),
        # The same with nbdkit's default of 16 threads per connection.
        Peer("zsmalloc-mt", "zramd allocator=zsmalloc, nbdkit --threads=16",
             "nbd", plugin, ["allocator=zsmalloc"], stats=True,
             nbdkit_opts=["--threads=16"]),
    ]
    floor = Peer("null", "nbdkit null (nbdkit's own floor)", "nbd", "null")
    only = os.environ.get("BENCH_PEERS")
    if only:
        peers = [p for p in peers if p.key in only.split(",")]
    sections = os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",")

    res = {"config": vars(cfg), "machine": machine(), "peers": {},
           "skipped": {}, "errors": {}}
    log("bench: %s run, %d s per fio job, %d repeat(s); load average %.2f" %
        ("quick" if cfg.quick else "full", cfg.runtime, cfg.repeats,
         res["machine"]["loadavg"][0]))
    usable = []
    for p in peers:
        try:
            p.check()
            usable.append(p)
        except PeerUnavailable as e:
            res["skipped"][p.key] = str(e)
            log("bench: %s skipped: %s" % (p.label, e))
    res["labels"] = {p.key: p.label for p in peers + [floor]}
    res["order"] = [p.key for p in peers]

    data = os.path.join(workdir, "data-%dM.tar" % (cfg.copy_size // MiB))
    if "copy" in sections:
        build_data(data, cfg.copy_size)

    def attempt(section, peer, fn, *a):
        log("bench: %s / %s" % (section, peer.label))
        try:
            r = fn(cfg, peer, workdir, *a)
            res["peers"].setdefault(peer.key, {})[section] = r
        except PeerUnavailable as e:
            res["skipped"]["%s/%s" % (section, peer.key)] = str(e)
            log("  skipped: %s" % e)
        except PeerFailed as e:
            res["errors"]["%s/%s" % (section, peer.key)] = str(e)
            log("  ERROR: %s" % e)
        except (OSError, ValueError, KeyError) as e:
            # A harness or environment fault: report it, run the rest.
            traceback.print_exc(file=sys.stdout)
            res["errors"]["%s/%s" % (section, peer.key)] = repr(e)

    if "idle" in sections:
        for p in [floor] + usable:
            attempt("idle", p, sec_idle)
    if "copy" in sections:
        for p in usable:
            attempt("copy", p, sec_copy, data)
    if "random" in sections:
        for p in usable:
            attempt("random", p, sec_random)
    if "shrinker" in sections:
        # zsmalloc, the default; zbud only while zsmalloc cannot run.
        zramd = [p for p in usable if p.key in ("zsmalloc", "zbud")]
        for p in zramd:
            attempt("shrinker", p, sec_shrinker)
            if "shrinker/%s" % p.key not in res["skipped"]:
                break
        if not zramd:
            res["skipped"]["shrinker/zsmalloc"] = res["skipped"].get(
                "zsmalloc", "zramd not selected")
    res["machine"]["loadavg_end"] = os.getloadavg()

    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    md, targets = bench_report.render(res)
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    write_page(out_md, md)
    log("")
    log(targets)
    log("bench: report written to %s (raw figures: %s)" % (
        out_md, os.path.join(workdir, "results.json")))
    if res["errors"]:
        log("bench: %d run(s) failed: %s" % (
            len(res["errors"]), ", ".join(res["errors"])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
