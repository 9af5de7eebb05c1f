#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make bench-cold: zramd's cold tier (issue 14) against its peers, one run.

The cold tier recompresses idle sectors with zstd, many to a pool object
(`recompress=zstd[:LEVEL]`, `recompress_idle=DURATION`). This section asks
three questions of it, each on fresh devices, all in the same run:

  density   Does it hold more data per byte of RAM than every peer? The
            real-data corpus (bench.py's tar of /usr/share/doc and the
            system libraries, 512 MiB) is copied onto a 1 GiB device, left
            to go idle, read back in full and compared byte for byte. The
            figure is the server's VmRSS growth over its VmRSS at start,
            taken after that read (zram: mm_stat mem_used_total). Rows:
            nbdkit memory allocator=zstd, nbdkit memory (sparse), the
            kernel's zram (lz4), zramd with the cold tier off and on. The
            cold-tier row waits until the stats file's packed_sectors stops
            growing (or a timeout) before it reads back.
  hot       Is the hot path unchanged? Random 4 KiB write, then read, IOPS
            on hot data, zramd with the cold tier off against on with
            recompress_idle long enough that nothing goes cold during the
            run; the two alternate, so drift on a busy machine hits both.
  coldread  What does a cold read cost? The corpus on a cold-tier device
            once it is all packed, against the same device all hot (a long
            recompress_idle): mean read latency at queue depth 1, and
            random read IOPS at 2 jobs x iodepth 32. The stats file's
            pack_reads counter gives the share of reads that hit a pack.

A plugin without the cold tier refuses `recompress=` ("unknown key"). The
harness detects that before it starts, prints
"SKIP: zramd cold tier: plugin has no recompress= key" for the rows that
need it and still measures the peers and zramd with the cold tier off.

The report is one block of docs/BENCHMARKS.md between the markers
`<!-- bench-cold:begin -->` and `<!-- bench-cold:end -->`; a run replaces
that block only (bench.py keeps it when it rewrites the rest of the page).
A quick or smoke run writes BUILD/bench/BENCHMARKS-cold.md instead. Raw
figures: BUILD/bench/cold.json. Figures are printed, never asserted.

Environment:
  BENCH_QUICK=1        64 MiB corpus, 2 s fio jobs, one repeat
  BENCH_SMOKE=1        8 MiB corpus, 1 s fio jobs: checks that the harness
                       runs end to end (make check-bench-smoke); the figures
                       mean nothing
  BENCH_COLD_RECOMPRESS  the recompress= value of the cold rows
                       (default zstd, the plugin's default level)
  BENCH_COLD_EXTRA     more parameters of the cold rows, space-separated
                       (e.g. pack_sectors=16)
  BENCH_COLD_IDLE      recompress_idle= in seconds for the density and
                       packed rows (default 2)
  BENCH_COLD_TIMEOUT   longest wait, in seconds, for packing to stop
                       (default 300; quick and smoke: 60)
  BENCH_COLD_PARTS     density,hot,coldread (default all three)
  BENCH_PEERS          a subset of zstd,memory,zram,zramd,zramd-cold
  BENCH_OUT            the Markdown file to write the block into
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peers import (GiB, MiB, Peer, PeerFailed,  # noqa: E402
                         PeerUnavailable, fio, fio_result, oneline)
import bench  # noqa: E402
import bench_report  # noqa: E402
from bench_report import fmt, table  # noqa: E402

PARTS = ["density", "hot", "coldread"]
SKIP_COLD = "SKIP: zramd cold tier: plugin has no recompress= key"
# The stats-file counters of the cold tier (issue 14), printed when present.
COLD_STATS = ["packed_sectors", "pack_bytes", "pack_dead_bytes",
              "hot_sectors", "hot_bytes", "recompressions", "pack_reads",
              "packs", "repacks"]
# The long recompress_idle of the "hot" rows: nothing goes cold in a run.
HOT_IDLE_S = 86400
DENSITY_GOAL = 0.90     # zramd cold RSS growth / nbdkit zstd RSS growth
HOT_GOAL = 0.95         # cold tier on / off, IOPS on hot data


class Config:
    def __init__(self, mode):
        self.mode = mode
        self.quick = mode != "full"
        self.runtime = {"full": 10, "quick": 2, "smoke": 1}[mode]
        self.repeats = 3 if mode == "full" else 1
        self.corpus = {"full": 512, "quick": 64, "smoke": 8}[mode] * MiB
        # The density device: 1 GiB as in the issue, whatever the corpus.
        self.dev_size = GiB
        self.region = {"full": GiB, "quick": 64 * MiB,
                       "smoke": 16 * MiB}[mode]
        self.idle_s = int(os.environ.get("BENCH_COLD_IDLE", "2"))
        self.timeout = int(os.environ.get(
            "BENCH_COLD_TIMEOUT", "300" if mode == "full" else "60"))
        self.recompress = os.environ.get("BENCH_COLD_RECOMPRESS", "zstd")
        # More parameters of the cold rows, e.g. "pack_sectors=16".
        self.cold_extra = os.environ.get("BENCH_COLD_EXTRA", "").split()
        # Filled in by probe_cold(): how the plugin spells a duration.
        self.idle_arg = None


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------ the plugin

def probe_cold(plugin, cfg):
    """Does the plugin take the cold-tier keys? Starts it once on a
    throw-away socket with recompress= and recompress_idle=; returns None
    and sets cfg.idle_arg (how a duration is written: "2s" or "2") if it
    does, else the reason it does not."""
    why = None
    for form in ("%ds", "%d"):
        cmd = ["nbdkit", "-U", "-", "--run", "true", plugin, "size=1M",
               "recompress=" + cfg.recompress,
               "recompress_idle=" + form % cfg.idle_s]
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        errs = [x for x in p.stdout.splitlines() if "error" in x and
                "PR_SET_IO_FLUSHER" not in x]
        if p.returncode == 0:
            cfg.idle_arg = form
            return None
        why = oneline("\n".join(errs) or p.stdout)
        if "recompress=" in why and "unknown key" in why:
            return SKIP_COLD
        if "recompress_idle=" not in why:
            break
    return "the plugin refuses the cold-tier keys: " + why


def idle(cfg, seconds):
    return "recompress_idle=" + cfg.idle_arg % seconds


def zramd_peers(plugin, cfg, cold_ok):
    """The zramd rows: cold tier off, on (short idle), on (idle too long
    to matter). As shipped: allocator=zsmalloc, nbdkit --threads=1."""
    base = ["allocator=zsmalloc"]
    opts = ["--threads=1"]
    # Once the plugin has the key, "off" is said out loud, whatever the
    # default; before, there is no cold tier to turn off.
    off_args = base + (["recompress=off"] if cold_ok else [])
    off = Peer("zramd", "zramd, cold tier off" +
               (" (recompress=off)" if cold_ok else " (no cold tier)"),
               "nbd", plugin, off_args, stats=True, nbdkit_opts=opts)
    if not cold_ok:
        return off, None, None
    rc = ["recompress=" + cfg.recompress] + cfg.cold_extra
    on = Peer("zramd-cold", "zramd, cold tier on (%s %s)" % (
        " ".join(rc), idle(cfg, cfg.idle_s)), "nbd", plugin,
        base + rc + [idle(cfg, cfg.idle_s)], stats=True, nbdkit_opts=opts)
    on_hot = Peer("zramd-cold-hot", "zramd, cold tier on (%s %s)" % (
        " ".join(rc), idle(cfg, HOT_IDLE_S)), "nbd", plugin,
        base + rc + [idle(cfg, HOT_IDLE_S)], stats=True, nbdkit_opts=opts)
    return off, on, on_hot


# ------------------------------------------------------------ waiting

def fresh_stats(dev, since, timeout=5):
    """The stats file once it has been rewritten after `since` (a
    time.time()); the plugin rewrites it every second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = dev.live_stats()
        if st and st["_mtime"] > since:
            return st
        time.sleep(0.1)
    raise PeerFailed("the stats file was not rewritten within %d s" %
                     timeout)


def wait_packed(cfg, dev):
    """Wait until the cold tier has packed what went idle: packed_sectors
    above 0 and unchanged over four rewrites of the stats file, once
    recompress_idle has passed. Returns (stats, seconds waited, settled);
    settled is False when the timeout came first."""
    t0 = time.monotonic()
    seen, last, same, st = None, None, 0, None
    while time.monotonic() - t0 < cfg.timeout:
        cur = dev.live_stats()
        if cur and cur["_mtime"] != seen:
            seen, st = cur["_mtime"], cur
            if "packed_sectors" not in st:
                raise PeerFailed("the stats file has no packed_sectors "
                                 "counter")
            p = st["packed_sectors"]
            if p and p == last and time.monotonic() - t0 > cfg.idle_s:
                same += 1
                if same >= 4:
                    return st, time.monotonic() - t0, True
            else:
                same = 0
            last = p
        time.sleep(0.2)
    return st, time.monotonic() - t0, False


def cold_counters(st):
    return {k: st.get(k) for k in COLD_STATS + [
        "orig_data_size", "compr_data_size", "mem_used_total"]
        if st and k in st}


# ------------------------------------------------------------ parts

def part_density(cfg, peer, workdir, data, cold):
    """Copy in, go idle, read back and compare, then the memory figures."""
    with peer.device(cfg.dev_size, workdir) as dev:
        time.sleep(0.5)
        start = dev.rss()
        t = time.monotonic()
        dev.copy_in(data)
        out = {"in_s": time.monotonic() - t}
        if cold:
            st, out["wait_s"], out["settled"] = wait_packed(cfg, dev)
            out["idle_stats"] = cold_counters(st)
            log("  packed_sectors %s after %.1f s%s" % (
                st and st.get("packed_sectors"), out["wait_s"],
                "" if out["settled"] else
                " (still changing at the %d s timeout)" % cfg.timeout))
        else:
            # The same pause for every row; nothing else to wait for.
            time.sleep(cfg.idle_s + 1)
        idle_rss = dev.rss()
        if peer.kind == "zram":
            out["idle_growth"] = dev.live_stats()["mem_used_total"]
        t = time.monotonic()
        dev.verify(data)
        out["read_s"] = time.monotonic() - t
        end = dev.rss()
        dev.alive()
        if start:
            out["start_rss"] = start["VmRSS"]
            out["idle_growth"] = idle_rss["VmRSS"] - start["VmRSS"]
            out["rss_growth"] = end["VmRSS"] - start["VmRSS"]
    # zramd rewrites its stats file at exit: the counters after the read.
    # zram's mm_stat is read as the device is left, also after the read.
    if dev.final:
        out["final"] = cold_counters(dev.final)
        out["mem_used_total"] = dev.final.get("mem_used_total")
        if peer.kind == "zram":
            out["rss_growth"] = dev.final["mem_used_total"]
    out["data_per_mem"] = (cfg.corpus / out["rss_growth"]
                           if out.get("rss_growth", 0) > 0 else None)
    log("  %s: RSS +%.1f MiB after the read (data/RSS %.2f), in %.2f s, "
        "read back %.2f s" % (peer.key, out.get("rss_growth", 0) / MiB,
                              out["data_per_mem"] or 0, out["in_s"],
                              out["read_s"]))
    return out


def part_hot_once(cfg, peer, workdir):
    with peer.device(cfg.region, workdir) as dev:
        w, r = bench.random_io(cfg, dev, workdir, cfg.region)
    final = dev.final or {}
    return {"write_iops": w["iops"], "read_iops": r["iops"],
            "write_lat_us": w["lat_us"], "read_lat_us": r["lat_us"],
            "write_cpu_us": w.get("cpu_us"), "read_cpu_us": r.get("cpu_us"),
            "packed_sectors": final.get("packed_sectors"),
            "recompressions": final.get("recompressions")}


PHASES = [("qd1", "randread", 1, 1), ("iops", "randread", 2, 32)]


def part_coldread(cfg, peer, workdir, data, packed):
    """The corpus on a fresh device; packed: let it all go cold first, and
    again before each phase (reads may have made sectors hot)."""
    out = {}
    size = os.path.getsize(data)
    with peer.device(size, workdir) as dev:
        dev.copy_in(data)
        for name, rw, jobs, depth in PHASES:
            if packed:
                st, waited, settled = wait_packed(cfg, dev)
                out[name + "_wait_s"] = waited
                out[name + "_settled"] = settled
            before = fresh_stats(dev, time.time())
            p, res = fio(dev, workdir, "cold-" + name, rw, size,
                         numjobs=jobs, iodepth=depth, runtime=cfg.runtime,
                         wait=False)
            r = fio_result(p, res)
            after = fresh_stats(dev, time.time())
            out[name + "_iops"] = r["iops"]
            out[name + "_lat_us"] = r["lat_us"]
            out[name + "_packed_before"] = before.get("packed_sectors")
            if before.get("packed_sectors") is not None:
                out[name + "_packed_share"] = ratio(
                    before["packed_sectors"], before["packed_sectors"] +
                    before.get("hot_sectors", 0))
            if "pack_reads" in after and r["ios"]:
                out[name + "_pack_share"] = min(1.0, (
                    after["pack_reads"] - before["pack_reads"]) / r["ios"])
        dev.alive()
    out["final"] = cold_counters(dev.final)
    log("  %s: QD1 read %.0f µs, read %.0f IOPS%s" % (
        "packed" if packed else "hot", out["qd1_lat_us"], out["iops_iops"],
        "" if out.get("iops_pack_share") is None else
        ", %.0f%% of reads from packs" % (100 * out["iops_pack_share"])))
    return out


def median_of(runs):
    out = {"runs": runs}
    for k in runs[0]:
        vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        if vals:
            out[k] = statistics.median(vals)
    return out


# ------------------------------------------------------------ report

def ratio(a, b):
    return a / b if a is not None and b else None


def goals(res):
    """The issue's goals as printed lines: figure, reference, met or not."""
    d, h, c = (res.get(k, {}) for k in ("density", "hot", "coldread"))
    lines = ["cold tier (figures, not assertions):"]

    def mem(key):
        return (d.get(key) or {}).get("rss_growth")

    def why(part, key):
        return res["skipped"].get("%s/%s" % (part, key)) or res[
            "errors"].get("%s/%s" % (part, key)) or "not measured"

    x = ratio(mem("zramd-cold"), mem("zstd"))
    if x is None:
        lines.append("  %-50s %s" % (
            "density: zramd cold / nbdkit zstd RSS growth",
            why("density", "zramd-cold" if not mem("zramd-cold")
                else "zstd")))
    else:
        lines.append("  %-50s %5.2fx (%s vs %s MiB; goal <= %.2f)  %s" % (
            "density: zramd cold / nbdkit zstd RSS growth", x,
            fmt(mem("zramd-cold"), "mib"), fmt(mem("zstd"), "mib"),
            DENSITY_GOAL, "met" if x <= DENSITY_GOAL else "NOT MET"))
    for other, name in (("zram", "kernel zram"), ("zramd", "zramd cold off")):
        y = ratio(mem("zramd-cold"), mem(other))
        if y is not None:
            lines.append("  %-50s %5.2fx" % (
                "  zramd cold / %s" % name, y))
    for what in ("write", "read"):
        off = (h.get("zramd") or {}).get(what + "_iops")
        on = (h.get("zramd-cold-hot") or {}).get(what + "_iops")
        y = ratio(on, off)
        name = "hot path: random 4K %s IOPS, cold on / off" % what
        if y is None:
            lines.append("  %-50s %s" % (name, why("hot", "zramd-cold-hot")))
        else:
            lines.append("  %-50s %5.2fx (%s vs %s; goal >= %.2f)  %s" % (
                name, y, fmt(on, "iops"), fmt(off, "iops"), HOT_GOAL,
                "met" if y >= HOT_GOAL else "NOT MET"))
            # Server CPU per I/O: steadier than IOPS on a busy machine.
            cpu = ratio((h.get("zramd-cold-hot") or {}).get(what + "_cpu_us"),
                        (h.get("zramd") or {}).get(what + "_cpu_us"))
            if cpu is not None:
                lines.append("  %-50s %5.2fx" % (
                    "  server CPU per %s, cold on / off" % what, cpu))
    hot, packed = c.get("hot") or {}, c.get("packed") or {}
    for field, name in (("qd1_lat_us", "cold read: QD1 latency, packed / hot"),
                        ("iops_iops", "cold read: read IOPS, packed / hot")):
        y = ratio(packed.get(field), hot.get(field))
        if y is None:
            lines.append("  %-50s %s" % (name, why("coldread", "packed")))
        else:
            lines.append("  %-50s %5.2fx (%s vs %s)" % (
                name, y, fmt(packed[field], "us" if "lat" in field
                             else "iops"),
                fmt(hot[field], "us" if "lat" in field else "iops")))
    return "\n".join(lines)


def notes(res, part, keys):
    out = []
    for k in keys:
        if k in res.get(part, {}):
            continue
        for where in ("skipped", "errors"):
            msg = res[where].get("%s/%s" % (part, k))
            if msg:
                out.append("- %s: %s%s" % (
                    res["labels"].get(k, k),
                    "error: " if where == "errors" else "", msg))
    return "\n" + "\n".join(out) + "\n" if out else ""


def render(res):
    """The Markdown block, markers included."""
    cfg, m = res["config"], res["machine"]
    corpus = cfg["corpus"] // MiB
    d = res.get("density", {})
    labels = res["labels"]
    md = [bench_report.COLD_BEGIN + "\n", "## Cold tier (issue 14)\n\n",
          "Written by `make bench-cold` (tests/bench/bench_cold.py), "
          "%s, %s. Load average %.2f at the start, %.2f at the end. Raw "
          "figures: `BUILD/bench/%s`.\n\n" % (
              m["date"],
              "full run: %d s per fio job, medians of %d runs" % (
                  cfg["runtime"], cfg["repeats"]) if not cfg["quick"] else
              "%s run: %d MiB corpus, %d s per fio job — indicative only" % (
                  cfg["mode"], corpus, cfg["runtime"]),
              m["loadavg"][0], m["loadavg_end"][0], json_name(cfg["mode"])),
          "The run was niced (%d): the machine is shared, so the IOPS "
          "figures move by 10-20%% from run to run; server CPU per I/O "
          "is steadier.\n\n" % m["nice"] if m.get("nice") else "",
          "```\n" + goals(res) + "\n```\n\n"]
    if res.get("cold_skip"):
        md.append("**The zramd cold-tier rows are pending**: the plugin of "
                  "this run has no cold tier (%s). The peers and zramd with "
                  "the cold tier off are measured; `make bench-cold` fills "
                  "in the rest once the plugin takes `recompress=`.\n\n" %
                  res["cold_skip"].replace("SKIP: zramd cold tier: ", ""))

    md.append("### Density: %d MiB of real data, by RSS\n\n" % corpus)
    md.append(
        "The corpus (a tar of /usr/share/doc and the system libraries, cut "
        "to %d MiB) copied onto a fresh 1 GiB device (nbdcopy; zram: dd "
        "with O_DIRECT), left idle (the cold-tier row: until the stats "
        "file's packed_sectors stopped growing; the others: %d s), then "
        "read back in full and compared with the file. *RSS growth*: the "
        "server's VmRSS after that read minus its VmRSS at start; for the "
        "kernel's zram, mm_stat mem_used_total. *idle*: the same growth "
        "before the read. *data/RSS*: corpus bytes per byte of growth. "
        "*pool*: mem_used_total from the stats file or mm_stat after the "
        "read. The nbdkit memory rows run with nbdkit's defaults (16 "
        "threads per connection), zramd as shipped (--threads=1); the "
        "request buffers of nbdcopy's connections count in the RSS rows "
        "(a few MiB, see the 8 MiB smoke run).\n\n" % (
            corpus, cfg["idle_s"] + 1))
    rows = []
    ref = (d.get("zstd") or {}).get("rss_growth")
    for k in res["order"].get("density", []):
        r = d.get(k)
        if not r:
            continue
        f = r.get("final") or {}
        packed = r.get("idle_stats", {}).get("packed_sectors")
        rows.append([
            labels[k], fmt(r.get("in_s"), "s"), fmt(r.get("read_s"), "s"),
            fmt(r.get("idle_growth"), "mib"),
            fmt(r.get("rss_growth"), "mib"),
            fmt(r.get("data_per_mem"), "x"),
            fmt(ratio(r.get("rss_growth"), ref), "x") + "x"
            if ref and r.get("rss_growth") else "–",
            fmt(r.get("mem_used_total"), "mib"),
            fmt(ratio(f.get("orig_data_size"), f.get("compr_data_size")),
                "x"),
            "–" if packed is None else "{:,}".format(packed) +
            ("" if r.get("settled", True) else " (timeout)")])
    md.append(table(["system", "copy in s", "read back s", "idle MiB",
                     "RSS growth MiB", "data/RSS", "x zstd", "pool MiB",
                     "orig/compr", "packed sectors"], rows)
              if rows else "No figures.\n")
    md.append(notes(res, "density", res["order"].get("density", [])))
    cold = d.get("zramd-cold")
    if cold:
        md.append("\nThe cold-tier row's counters once packing had stopped "
                  "(%.1f s after the copy) and at exit, after the read:\n\n"
                  % cold["wait_s"])
        md.append(table(["counter", "idle", "after the read"], [
            [k, str(cold["idle_stats"].get(k, "–")),
             str(cold.get("final", {}).get(k, "–"))]
            for k in COLD_STATS + ["mem_used_total"]]))

    h = res.get("hot", {})
    md.append("\n### Hot path: random 4 KiB I/O on hot data\n\n")
    md.append(
        "A fresh %d MiB device, filled by a sequential write, then %d s of "
        "random writes and %d s of random reads over all of it (fio, nbd "
        "engine, 2 jobs x iodepth 32, 4 KiB blocks about 2:1 for LZ4), as "
        "in the random section above. The cold tier on has "
        "recompress_idle=%d s, so nothing goes cold during the run "
        "(*packed*: packed_sectors at exit). The rows alternate, %d "
        "run(s) each; medians.\n\n" % (
            cfg["region"] // MiB, cfg["runtime"], cfg["runtime"],
            HOT_IDLE_S, cfg["repeats"]))
    rows = []
    off = h.get("zramd") or {}
    for k in res["order"].get("hot", []):
        r = h.get(k)
        if not r:
            continue
        rows.append([labels[k], fmt(r.get("write_iops"), "iops"),
                     fmt(ratio(r.get("write_iops"), off.get("write_iops")),
                         "x"),
                     fmt(r.get("read_iops"), "iops"),
                     fmt(ratio(r.get("read_iops"), off.get("read_iops")),
                         "x"),
                     fmt(r.get("write_cpu_us"), "x"),
                     fmt(r.get("read_cpu_us"), "x"),
                     fmt(r.get("packed_sectors"), "")])
    md.append(table(["zramd", "write IOPS", "x off", "read IOPS", "x off",
                     "server CPU µs/write", "server CPU µs/read", "packed"],
                    rows) if rows else "No figures.\n")
    md.append(notes(res, "hot", res["order"].get("hot", [])))

    c = res.get("coldread", {})
    md.append("\n### Cold reads: packed against hot\n\n")
    md.append(
        "The corpus (%d MiB) on a fresh device of its size. *packed*: the "
        "cold tier on with recompress_idle=%d s, read once packed_sectors "
        "has stopped growing (waited for again before each phase, since "
        "reads may make sectors hot); the share is of the sectors stored, "
        "packed_sectors / (packed_sectors + hot_sectors); *hot*: the same device with "
        "recompress_idle=%d s. %d s of random 4 KiB reads at queue depth 1 "
        "(mean latency), then %d s at 2 jobs x iodepth 32 (IOPS). *from "
        "packs*: pack_reads over the reads fio made.\n\n" % (
            corpus, cfg["idle_s"], HOT_IDLE_S, cfg["runtime"],
            cfg["runtime"]))
    rows = []
    for k in ("hot", "packed"):
        r = c.get(k)
        if not r:
            continue
        rows.append([labels.get("coldread/" + k, k),
                     fmt(r.get("qd1_lat_us"), "us"),
                     fmt(r.get("iops_iops"), "iops"),
                     fmt(r.get("qd1_packed_before"), "") + (
                         "" if r.get("qd1_packed_share") is None else
                         " (%.0f%%)" % (100 * r["qd1_packed_share"])),
                     "–" if r.get("iops_pack_share") is None else
                     "%.0f%%" % (100 * r["iops_pack_share"])])
    md.append(table(["device", "QD1 read latency µs", "read IOPS",
                     "packed sectors at QD1 start (share)", "from packs"], rows)
              if rows else "No figures.\n")
    md.append(notes(res, "coldread", ["hot", "packed"]))
    md.append("\n" + bench_report.COLD_END + "\n")
    return "".join(md)


def json_name(mode):
    return "cold.json" if mode == "full" else "cold-%s.json" % mode


def write_report(path, block):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    with open(path, "w") as f:
        f.write(bench_report.splice_cold(text, block))


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--plugin", default=None)
    ap.add_argument("--render", metavar="COLD_JSON",
                    help="only write the report from an earlier run")
    args = ap.parse_args()

    mode = ("smoke" if os.environ.get("BENCH_SMOKE") == "1" else
            "quick" if os.environ.get("BENCH_QUICK") == "1" else "full")
    cfg = Config(mode)
    build = os.path.abspath(args.build)
    workdir = os.path.join(build, "bench")
    os.makedirs(workdir, exist_ok=True)
    plugin = os.path.abspath(args.plugin or os.path.join(
        build, "nbdkit-zramd-plugin.so"))
    json_path = os.path.join(workdir, json_name(mode))

    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        mode = res["config"]["mode"]
    out_md = os.environ.get("BENCH_OUT", "docs/BENCHMARKS.md"
                            if mode == "full" else
                            os.path.join(workdir, "BENCHMARKS-cold.md"))
    if args.render:
        write_report(out_md, render(res))
        log(goals(res))
        return 0

    for tool in ("nbdkit", "nbdcopy", "fio", "dd", "cmp", "tar"):
        if not shutil.which(tool):
            sys.exit("bench-cold: %s not found (make deps)" % tool)
    parts = os.environ.get("BENCH_COLD_PARTS", ",".join(PARTS)).split(",")
    only = os.environ.get("BENCH_PEERS")

    res = {"config": {k: v for k, v in vars(cfg).items()},
           "machine": dict(bench.machine(), nice=os.nice(0)),
           "skipped": {}, "errors": {},
           "labels": {}, "order": {}}
    log("bench-cold: %s run, %d MiB corpus, %d s per fio job, %d "
        "repeat(s); load average %.2f" % (
            mode, cfg.corpus // MiB, cfg.runtime, cfg.repeats,
            res["machine"]["loadavg"][0]))

    cold_skip = None
    if not os.path.exists(plugin):
        cold_skip = "plugin not built (%s)" % plugin
    else:
        cold_skip = probe_cold(plugin, cfg)
    if cold_skip:
        log(cold_skip if cold_skip == SKIP_COLD else
            "SKIP: zramd cold tier: " + cold_skip)
    res["cold_skip"] = cold_skip
    res["config"]["idle_arg"] = cfg.idle_arg
    off, on, on_hot = zramd_peers(plugin, cfg, cold_skip is None)
    peers = [Peer("zstd", "nbdkit memory 1G allocator=zstd", "nbd",
                  "memory", ["allocator=zstd"]),
             Peer("memory", "nbdkit memory 1G (sparse)", "nbd", "memory"),
             Peer("zram", "kernel zram (lz4)", "zram"), off]
    res["labels"] = {p.key: p.label for p in peers}
    res["labels"]["zramd-cold"] = on.label if on else \
        "zramd, cold tier on (recompress=%s)" % cfg.recompress
    res["labels"]["zramd-cold-hot"] = on_hot.label if on_hot else \
        "zramd, cold tier on, nothing idle"
    res["labels"]["coldread/hot"] = "all hot (%s)" % (
        on_hot.label if on_hot else off.label)
    res["labels"]["coldread/packed"] = "all packed (%s)" % (
        on.label if on else res["labels"]["zramd-cold"])
    usable = {}
    for p in peers + [x for x in (on, on_hot) if x]:
        if only and p.key.split("-hot")[0] not in only.split(","):
            continue
        try:
            p.check()
            usable[p.key] = p
        except PeerUnavailable as e:
            res["skipped"]["density/" + p.key] = str(e)
            log("bench-cold: %s skipped: %s" % (p.label, e))

    def attempt(part, key, fn, *a):
        try:
            return fn(*a)
        except PeerUnavailable as e:
            res["skipped"]["%s/%s" % (part, key)] = str(e)
            log("  skipped: %s" % e)
        except PeerFailed as e:
            res["errors"]["%s/%s" % (part, key)] = str(e)
            log("  ERROR: %s" % e)
        except (OSError, ValueError, KeyError, TypeError) as e:
            traceback.print_exc(file=sys.stdout)
            res["errors"]["%s/%s" % (part, key)] = repr(e)
        return None

    def skip_cold(part, key):
        if cold_skip:
            res["skipped"]["%s/%s" % (part, key)] = cold_skip
            log("bench-cold: %s / %s: %s" % (part, key, cold_skip
                                             if cold_skip == SKIP_COLD else
                                             "SKIP: " + cold_skip))
            return True
        return False

    data = os.path.join(workdir, "data-%dM.tar" % (cfg.corpus // MiB))
    bench.build_data(data, cfg.corpus)

    if "density" in parts:
        res["density"] = {}
        res["order"]["density"] = ["zstd", "memory", "zram", "zramd",
                                   "zramd-cold"]
        for key in res["order"]["density"]:
            if key == "zramd-cold" and skip_cold("density", key):
                continue
            if key not in usable:
                continue
            log("bench-cold: density / %s" % usable[key].label)
            bench.warm(data)
            r = attempt("density", key, part_density, cfg, usable[key],
                        workdir, data, key == "zramd-cold")
            if r:
                res["density"][key] = r

    if "hot" in parts:
        res["hot"] = {}
        keys = ["zramd", "zramd-cold-hot"]
        res["order"]["hot"] = keys
        if skip_cold("hot", "zramd-cold-hot"):
            keys = ["zramd"]
        runs = {k: [] for k in keys if k in usable}
        for i in range(cfg.repeats):
            for k in runs:
                log("bench-cold: hot / %s, run %d" % (usable[k].label, i + 1))
                r = attempt("hot", k, part_hot_once, cfg, usable[k], workdir)
                if r:
                    runs[k].append(r)
                    log("  write %.0f IOPS, read %.0f IOPS%s" % (
                        r["write_iops"], r["read_iops"],
                        "" if r["packed_sectors"] is None else
                        ", packed_sectors %d at exit" % r["packed_sectors"]))
        for k, rs in runs.items():
            if rs:
                res["hot"][k] = median_of(rs)

    if "coldread" in parts:
        res["coldread"] = {}
        # Without the cold tier, the hot row still runs (on the plugin as
        # it is), so that this part of the harness cannot rot.
        hot_peer = usable.get("zramd-cold-hot") or usable.get("zramd")
        if hot_peer:
            log("bench-cold: coldread / hot (%s)" % hot_peer.label)
            r = attempt("coldread", "hot", part_coldread, cfg, hot_peer,
                        workdir, data, False)
            if r:
                res["coldread"]["hot"] = r
        if not skip_cold("coldread", "packed") and "zramd-cold" in usable:
            log("bench-cold: coldread / packed (%s)" %
                usable["zramd-cold"].label)
            r = attempt("coldread", "packed", part_coldread, cfg,
                        usable["zramd-cold"], workdir, data, True)
            if r:
                res["coldread"]["packed"] = r

    res["machine"]["loadavg_end"] = os.getloadavg()
    with open(json_path, "w") as f:
        json.dump(res, f, indent=1)
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    write_report(out_md, render(res))
    log("")
    log(goals(res))
    log("bench-cold: report written to %s (raw figures: %s)" % (
        out_md, json_path))
    if res["errors"]:
        log("bench-cold: %d run(s) failed: %s" % (
            len(res["errors"]), ", ".join(res["errors"])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
