# SPDX-License-Identifier: MIT
"""Turn bench.py's results into docs/BENCHMARKS.md and the targets block.

Every table row shows its ratio to the nbdkit memory row ("x mem") and to
the kernel zram row ("x zram") of the same run: value divided by reference.
For IOPS higher is better; for times and memory lower is better.
"""

import os

MiB = 1 << 20

REF = ("memory", "zram")


def fmt_ratio(v, ref):
    if v is None or not ref:
        return "–"
    return "%.2fx" % (v / ref)


def fmt(v, kind):
    if v is None:
        return "–"
    if kind == "iops":
        return "{:,.0f}".format(v)
    if kind == "s":
        return "%.2f" % v
    if kind == "mib":
        return "%.1f" % (v / MiB)
    if kind == "us":
        return "%.0f" % v
    if kind == "x":
        return "%.2f" % v
    return str(v)


def table(headers, rows, numeric=True):
    """A markdown table; columns after the first are right-aligned figures
    unless numeric is false."""
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i == 0 or not numeric else "---:"
                          for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


class Results:
    def __init__(self, res):
        self.res = res
        self.labels = res["labels"]
        self.order = res["order"]

    def get(self, section, key, field):
        return self.res["peers"].get(key, {}).get(section, {}).get(field)

    def why_not(self, section, key):
        """The reason a peer has no figures in a section."""
        for k in ("%s/%s" % (section, key), key):
            if k in self.res["errors"]:
                return "error: " + self.res["errors"][k]
            if k in self.res["skipped"]:
                return "skipped: " + self.res["skipped"][k]
        return "not run"

    def rows(self, section, cols, keys=None):
        """One row per peer: for each (field, kind, refs) column the value,
        then its ratio to each reference peer's value in refs."""
        rows, notes = [], []
        for key in keys or self.order:
            if key not in self.res["peers"] or \
                    section not in self.res["peers"][key]:
                if key in self.labels:
                    notes.append("- %s: %s" % (self.labels[key],
                                               self.why_not(section, key)))
                continue
            row = [self.labels[key]]
            for field, kind, refs in cols:
                v = self.value(section, key, field)
                row.append(fmt(v, kind))
                for ref in refs:
                    row.append(fmt_ratio(v, self.value(section, ref, field)))
            rows.append(row)
        return rows, notes

    def value(self, section, key, field):
        """A figure; "mem" is the memory a copy cost: RSS growth for a
        server, mem_used_total for the kernel's zram."""
        if field == "mem":
            if key == "zram":
                return self.get(section, key, "mem_used_total")
            return self.get(section, key, "rss_growth")
        if field == "ratio":
            o = self.get(section, key, "orig_data_size")
            c = self.get(section, key, "compr_data_size")
            return o / c if o and c else None
        if field == "density":
            m = self.value(section, key, "mem")
            size = self.res["config"]["copy_size"]
            return size / m if m and m > 0 else None
        return self.get(section, key, field)


def headers(first, cols):
    h = [first]
    for _, title, refs in cols:
        h.append(title)
        h += ["x " + ("mem" if r == "memory" else r) for r in refs]
    return h


def section_table(r, section, first, cols, keys=None):
    spec = [(f, k, refs) for f, _, k, refs in cols]
    rows, notes = r.rows(section, spec, keys)
    h = headers(first, [(f, t, refs) for f, t, _, refs in cols])
    text = table(h, rows) if rows else "No figures.\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    return text


def targets(r):
    """The project's targets for zramd allocator=zsmalloc: met or not."""
    lines = ["targets (zramd allocator=zsmalloc as shipped, nbdkit "
             "--threads=1; figures, not assertions):"]

    def check(name, v, ref, limit, higher, fmtv, refname, cpu=None):
        if v is None or not ref:
            lines.append("  %-44s not measured" % name)
            return
        x = v / ref
        ok = x >= limit if higher else x <= limit
        lines.append("  %-44s %5.2fx (%s vs %s %s)  %s" % (
            name, x, fmtv(v), fmtv(ref), refname,
            "met" if ok else "NOT MET"))
        # Server CPU time for the same work: steadier on a busy machine.
        if cpu:
            c, cref = (r.value(cpu[0], k, cpu[1])
                       for k in ("zsmalloc", "memory"))
            if c and cref:
                lines.append("  %-44s %5.2fx" % (
                    "  server CPU time for the same work", c / cref))

    def iops(v):
        return fmt(v, "iops")

    def secs(v):
        return fmt(v, "s") + " s"

    def mib(v):
        return fmt(v, "mib") + " MiB"

    check("random 4K write IOPS >= 1.0x nbdkit memory",
          r.value("random", "zsmalloc", "write_iops"),
          r.value("random", "memory", "write_iops"), 1.0, True, iops,
          "nbdkit memory", ("random", "write_cpu_us"))
    check("random 4K read IOPS >= 1.0x nbdkit memory",
          r.value("random", "zsmalloc", "read_iops"),
          r.value("random", "memory", "read_iops"), 1.0, True, iops,
          "nbdkit memory", ("random", "read_cpu_us"))
    mt = [(what, r.value("random", "zsmalloc-mt", what + "_iops"),
           r.value("random", "memory", what + "_iops"))
          for what in ("write", "read")]
    if all(v and ref for _, v, ref in mt):
        lines.append("    with nbdkit --threads=16 instead: " + ", ".join(
            "%s %.2fx" % (what, v / ref) for what, v, ref in mt))
    check("copy-in time <= 1.2x nbdkit memory",
          r.value("copy", "zsmalloc", "in_s"),
          r.value("copy", "memory", "in_s"), 1.2, False, secs,
          "nbdkit memory", ("copy", "in_cpu_s"))
    check("RSS growth <= 1.02x zram mem_used_total",
          r.value("copy", "zsmalloc", "mem"),
          r.value("copy", "zram", "mem"), 1.02, False, mib, "zram")
    idle = r.value("idle", "zsmalloc", "vmrss")
    if idle is None:
        lines.append("  %-44s not measured" % "idle 1 TiB VmRSS <= 4 MiB")
    else:
        floor = r.value("idle", "null", "vmrss")
        anon = r.value("idle", "zsmalloc", "rss_anon")
        pss = r.value("idle", "zsmalloc", "pss")
        lines.append("  %-44s %5s MiB  %s" % (
            "idle 1 TiB VmRSS <= 4 MiB", fmt(idle, "mib"),
            "met" if idle <= 4 * MiB else "NOT MET"))
        lines.append("    zramd RssAnon %s MiB, Pss %s MiB; nbdkit null "
                     "alone: VmRSS %s MiB%s" % (
                         fmt(anon, "mib"), fmt(pss, "mib"), fmt(floor, "mib"),
                         ", so zramd adds %s MiB" % fmt(idle - floor, "mib")
                         if floor else ""))
    return "\n".join(lines)


def shrinker(r):
    s = None
    for key in ("zsmalloc", "zbud"):
        s = r.res["peers"].get(key, {}).get("shrinker")
        if s:
            break
    if not s:
        return "".join("- %s: %s\n" % (r.labels[k], r.why_not("shrinker", k))
                       for k in ("zsmalloc", "zbud")
                       if k in r.labels and k in r.order)
    evict = s.get("evict_per_s")
    bdr = s.get("bd_reads_per_s")
    rows = [
        ["all in memory", fmt(s["mem_write_iops"], "iops"),
         fmt(s["mem_read_iops"], "iops"), fmt(s["mem_read_lat_us"], "us"),
         "–", "–"],
        ["working set 4x mem_limit", fmt(s["write_iops"], "iops"),
         fmt(s["read_iops"], "iops"), fmt(s["read_lat_us"], "us"),
         "{:,.0f}".format(evict) if evict is not None else "n/a",
         "{:,.0f}".format(bdr) if bdr is not None else "n/a"],
    ]
    text = ("%s, mem_limit %s MiB, working set %s MiB, backing file on "
            "local disk.\n\n" % (s["label"], fmt(s["mem_limit"], "mib"),
                                 fmt(s["working_set"], "mib")))
    text += table([s["label"], "write IOPS", "read IOPS",
                   "read latency µs", "evictions/s", "backing reads/s"], rows)
    text += ("\nRead slowdown, all reads at 4x mem_limit: %s (in-memory "
             "read IOPS / read IOPS at 4x mem_limit, 2 jobs x iodepth 32).\n"
             % (fmt(s["read_slowdown"], "x") + "x"
                if s["read_slowdown"] else "–"))
    share = s.get("qd1_backing_share")
    text += ("\nRead slowdown for evicted data, at queue depth 1 with the "
             "backing file's page cache dropped first: mean read "
             "latency %s µs in memory, %s µs at 4x mem_limit, where the "
             "backing file served %s of the reads; so an evicted read takes "
             "about %s µs, %s the in-memory read.\n" % (
                 fmt(s.get("qd1_mem_lat_us"), "us"),
                 fmt(s.get("qd1_lat_us"), "us"),
                 "%.0f%%" % (100 * share) if share is not None else "n/a",
                 fmt(s.get("qd1_evicted_lat_us"), "us"),
                 fmt(s.get("evicted_read_slowdown"), "x") + "x"
                 if s.get("evicted_read_slowdown") else "n/a x"))
    text += ("\nAt exit: bd_writes %s, bd_reads %s, bd_count %s, "
             "mem_used_max %s MiB; the backing file had %s MiB allocated "
             "before the server stopped.\n" % (
                 s["bd_writes"], s["bd_reads"], s["bd_count"],
                 fmt(s["mem_used_max"], "mib"),
                 fmt(s["backing_bytes"], "mib")))
    if evict is None:
        text += ("\nevictions/s: n/a, the stats file was written fewer than "
                 "twice during the write phase.\n")
    return text


def render(res):
    r = Results(res)
    m = res["machine"]
    cfg = res["config"]
    tgt = targets(r)
    mode = ("quick run (BENCH_QUICK=1): %d s per fio job, %d MiB data, one "
            "repeat — indicative only" % (cfg["runtime"],
                                          cfg["copy_size"] // MiB)
            if cfg["quick"] else
            "full run: %d s per fio job, medians of %d runs" % (
                cfg["runtime"], cfg["repeats"]))
    md = ["# zramd benchmarks\n\n",
          "Written by `make bench` (tests/bench/bench.py); run it again on a "
          "quiet machine to refresh this page. Raw figures: "
          "`BUILD/bench/results.json`.\n\n",
          "%s, %s. Load average %.2f at the start, %.2f at the end.\n" % (
              m["date"], mode, m["loadavg"][0], m["loadavg_end"][0]) + "\n",
          "## Machine\n\n",
          table(["", ""], [
              ["CPU", "%s, %d cores" % (m["cpu"], m["cores"])],
              ["Memory", "%.1f GiB" % (m["memory"] / (1 << 30))],
              ["Kernel", m["kernel"]],
              ["nbdkit", m["nbdkit"]],
              ["fio", m["fio"]],
              ["libnbd (nbdcopy)", m["libnbd"]],
              ["LZ4", "%s (zramd); the kernel's lz4 (zram)" % m["lz4"]],
              ["zramd", m["zramd"]]], numeric=False),
          "\n## Targets\n\n", "```\n" + tgt + "\n```\n",
          "\n## Random 4 KiB I/O\n\n",
          "A fresh %d MiB device per run, filled by a sequential write (not "
          "timed), then %d s of random writes and %d s of random reads "
          "over the whole of it, so every read hits written data. fio, 2 "
          "jobs, iodepth 32 each; each 4 KiB block is half random bytes, half "
          "repeated (buffer_compress_percentage=50), about 2:1 for LZ4. "
          "*server CPU*: user and system time of the nbdkit process, all "
          "threads, per I/O; it is steadier than IOPS on a busy machine. "
          "zram works in the client's context and has no such figure.\n\n" % (
              cfg["region"] // MiB, cfg["runtime"], cfg["runtime"]),
          section_table(r, "random", "device", [
              ("write_iops", "write IOPS", "iops", REF),
              ("read_iops", "read IOPS", "iops", REF),
              ("write_lat_us", "write lat µs", "us", ()),
              ("read_lat_us", "read lat µs", "us", ()),
              ("write_cpu_us", "server CPU µs/write", "x", ("memory",)),
              ("read_cpu_us", "server CPU µs/read", "x", ("memory",))]),
          "\n## Sequential copy of a %d MiB real-data file\n\n" % (
              cfg["copy_size"] // MiB),
          "A tar of /usr/share/doc and the system libraries, cut to %d MiB, "
          "read from the page cache. Copy in onto a fresh device of the same "
          "size, then copy out. NBD devices: nbdcopy (default: several "
          "connections, skips zero blocks). zram: dd bs=1M with O_DIRECT "
          "(one request at a time). Wall time in seconds, and the nbdkit "
          "process's CPU time during the copy in; the data read back is "
          "compared with the file once per device.\n\n" % (
              cfg["copy_size"] // MiB),
          section_table(r, "copy", "device", [
              ("in_s", "copy in s", "s", REF),
              ("out_s", "copy out s", "s", REF),
              ("in_cpu_s", "server CPU s (in)", "s", ("memory",))]),
          "\n### Memory after the copy\n\n",
          "*memory*: VmRSS growth of the server process over the copy in "
          "(nbdkit rows), mem_used_total from mm_stat (zram). *orig/compr*: "
          "compression ratio from zram's mm_stat or the zramd stats file. "
          "*data/memory*: bytes copied per byte of memory.\n\n",
          section_table(r, "copy", "device", [
              ("mem", "memory MiB", "mib", REF),
              ("mem_used_total", "pool mem_used_total MiB", "mib", ()),
              ("ratio", "orig/compr", "x", ()),
              ("density", "data/memory", "x", ())]),
          "\n## Idle 1 TiB device\n\n",
          "VmRSS one second after the server started with an empty 1 TiB "
          "device. The nbdkit null plugin shows what nbdkit itself costs: "
          "mostly pages of shared libraries (gnutls, libc, ...), which "
          "other processes share. RssAnon is the process's own memory; "
          "Pss counts each shared page divided by the processes that map "
          "it. Where the null row is above the 4 MiB target, no nbdkit "
          "plugin can meet it here; what zramd itself adds is its row "
          "minus the null row: the sector table's lock stripes (128 KiB), "
          "the zsmalloc size classes (about 64 KiB), a background thread's "
          "stack and the pages of liblz4, libinih and the plugin. zramd "
          "speaks the sd_notify protocol itself and uses xxHash header-only "
          "because libsystemd (with the libraries it loads) and "
          "libxxhash.so cost about 0.8 MiB more of this figure.\n\n",
          section_table(r, "idle", "server", [
              ("vmrss", "VmRSS MiB", "mib", ("memory",)),
              ("rss_anon", "RssAnon MiB", "mib", ()),
              ("pss", "Pss MiB", "mib", ("memory",))],
              ["null"] + res["order"]),
          "\n## Shrinker: working set at 4x mem_limit\n\n",
          "The random 4 KiB workload above, plus %d s of random reads at "
          "queue depth 1, over a working set of four times mem_limit in "
          "uncompressed bytes (at about 2:1, half of the compressed data "
          "fits under the limit); beside it, the same run with no limit. "
          "Evictions and backing-file reads per second come from the stats "
          "file's bd_writes and bd_reads counters, timed by the file's own "
          "write times.\n\n" % cfg["runtime"],
          shrinker(r),
          analysis()]
    return "".join(md), tgt


def analysis():
    """tests/bench/analysis.md, profiles taken by hand: appended as is."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "analysis.md")
    try:
        with open(path) as f:
            return "\n" + f.read()
    except FileNotFoundError:
        return ""


# The cold-tier block (tests/bench/bench_cold.py, `make bench-cold`) has a
# run of its own: each script replaces only its part of the page.
COLD_BEGIN = "<!-- bench-cold:begin -->"
COLD_END = "<!-- bench-cold:end -->"
ANALYSIS_HEADING = "## Where the time goes"


def cold_block(text):
    """The cold-tier block of a page, markers included, or ""."""
    i = text.find(COLD_BEGIN)
    j = text.find(COLD_END, i)
    if i < 0 or j < 0:
        return ""
    return text[i:j + len(COLD_END)] + "\n"


def hand_tail(text):
    """The hand-written part of a page: from the analysis heading to the
    end (profiles, and the sections pasted from the issue-17 benches), or
    "". bench.py generates everything before it."""
    i = text.find("\n" + ANALYSIS_HEADING)
    return text[i + 1:] if i >= 0 else ""


def splice_cold(text, block):
    """The page with its cold-tier block replaced by block. A page without
    one gets it before the hand-written analysis, or at its end."""
    if not block:
        return text
    old = cold_block(text)
    if old:
        return text.replace(old, block, 1)
    i = text.find("\n" + ANALYSIS_HEADING)
    if i < 0:
        return text + ("\n" if text and not text.endswith("\n\n") else "") \
            + block
    return text[:i + 1] + block + "\n" + text[i + 1:]
