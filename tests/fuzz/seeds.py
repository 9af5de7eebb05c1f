#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seed inputs of tests/fuzz/corpus/.

    python3 tests/fuzz/seeds.py [CORPUS_DIR]

Each seed is a small program in a target's input format (see the header of
tests/fuzz/fuzz_TARGET.c) that reaches one feature, so that fuzzing starts
from inputs that already do something. Files are named seed-*; inputs that
fuzzing found are added next to them under other names. Rerunning this
rewrites the seed-* files only.
"""
import os
import struct
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


def u16(v):
    return list(struct.pack("<H", v & 0xFFFF))


def u32(v):
    return list(struct.pack("<I", v & 0xFFFFFFFF))


def u64(v):
    return list(struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF))


# --- zpool ------------------------------------------------------------------
def zp_malloc(size, fill=0, seed=1):
    return [0, 4] + u16(size - 1) + [fill] + u32(seed)


def zpool():
    p = [0]
    for i in range(24):
        p += zp_malloc(300 + i * 150, i % 4, i)
    p += [8, 8, 0] + [0] * 24  # shrink 8 KiB, evict every object
    p += [10]
    put("zpool", "malloc-shrink", p)

    p = [0]
    for i in range(30):
        p += zp_malloc(1 + (i * 997) % 4096, i % 4, i * 7)
    p += [3, 5, 4, 7, 9, 10, 6] + u16(10) + u16(50) + [3, 2]
    # shrink 16 KiB; callbacks: evict, refuse, race, free other, malloc
    p += [8, 16, 0] + [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3
    p += [9, 11, 10]
    put("zpool", "mixed", p)

    p = [0]
    for i in range(40):
        p += zp_malloc(4096 if i % 3 == 0 else 64, 0, i)
    for i in range(0, 40, 2):
        p += [3, i]
    p += [9, 10]  # compact a sparse pool
    put("zpool", "sparse-compact", p)

    put("zpool", "unshrinkable", [1] + zp_malloc(100) + [8, 1, 0, 11])


# --- device -----------------------------------------------------------------
def dev_range(how, off, length):
    return [how] + u32(off) + u16(length)


def dev_write(how, off, length, kind, seed=7):
    return [0] + dev_range(how, off, length) + [kind] + u32(seed)


def dev_read(how, off, length):
    return [5] + dev_range(how, off, length)


def device():
    # zsmalloc, no limit, 1 MiB: every data kind, partial writes, reads
    p = [0x00, 0x00, 0x00]
    for k in range(8):
        p += dev_write(0, k * 8192, 2, k, k)
        p += dev_write(3, k * 8192 + 100, 5000, k, k + 1)
    p += dev_read(3, 0, 20000) + dev_read(2, 1 << 19, 0)
    p += [8] + dev_range(3, 300, 9000)  # zero
    p += [9] + dev_range(3, 4000, 13000)  # trim
    p += [10] + dev_range(3, 0, 40000) + [0]  # extents
    p += [10] + dev_range(3, 5000, 100) + [1]  # req_one
    p += [13, 14, 0x25, 15, 12, 13]
    put("device", "kinds", p)

    # zbud, the smallest limit (512K), backing file, shrinkable: writes
    # past the limit (768K of random sectors, 4 a write), the shrinker
    # played, reads back from the backing file
    p = [0x01 | 0x02 | 0x08, 0x00, 0x00]
    for i in range(48):
        p += dev_write(0, i * 16384, 3, 3, i)
    p += [11] + u16(4096) + dev_read(3, 0, 60000) + [13]
    put("device", "zbud-limit-backing", p)

    # the write path's hooks: wait_room, then an eager kick (past the
    # 512K limit, as above)
    for c2, name in ((1, "hooks-wait-room"), (3, "hooks-eager-kick")):
        p = [0x01 | 0x02 | 0x08, 0x00, c2]
        for i in range(48):
            p += dev_write(0, i * 16384, 3, 3, i)
        p += dev_read(3, 0, 60000) + [13]
        put("device", name, p)

    # at the 512K limit, no backing file (zsmalloc), then with one and the
    # hooks: small writes into empty sectors and zeroes of parts of full
    # ones, read-modify-writes that need a new object when there is no room
    for c0, c2, name in ((0x02, 0, "limit-partial"),
                         (0x02 | 0x08, 3, "hooks-partial")):
        p = [c0, 0x00, c2]
        for i in range(48):
            p += dev_write(0, i * 16384, 3, 3, i)
        for i in range(8):
            p += dev_write(1, (200 + i) * 4096 + 100, 500, 3, i)
            p += [8] + dev_range(1, i * 4096 + 7, 300)
        p += dev_read(3, 0, 60000) + [13]
        put("device", name, p)

    # store hooks: failed stores, and writes racing with the eviction
    p = [0x00 | 0x06 | 0x08, 0x20 | 0x80, 0x00]
    for i in range(24):
        p += dev_write(0, i * 4096, 0, 2 + i % 2, i)
    # shrink 32 KiB; each store reads a hook byte: none, fail, write,
    # partial write, trim, zero
    p += [11] + u16(2048) + [0, 4, 5, 6, 7, 4 + 8, 5 + 16, 0, 3] + [13]
    p += dev_read(3, 0, 60000)
    put("device", "zsmalloc-limit-backing-hooks", p)

    # store hooks at the 512K limit: overwrites with random data during
    # the eviction find no room (-ENOSPC), the evicted copy is dropped
    p = [0x02 | 0x08, 0x20 | 0x80, 0x00]
    for i in range(48):
        p += dev_write(0, i * 16384, 3, 3, i)
    p += [11] + u16(2048) + [28, 28 | 0x40, 4 + 5 * 8, 28, 0, 28, 3, 0]
    p += [13] + dev_read(3, 0, 60000)
    put("device", "limit-store-hooks", p)

    # idle writeback: two passes move what was not touched in between
    p = [0x08, 0x00, 0x00]
    for i in range(16):
        p += dev_write(0, i * 4096, 0, 2, i)
    p += [16, 0] + dev_read(0, 0, 1) + [16, 0, 13, 16, 2, 13]
    p += dev_write(0, 4096, 0, 3) + [16, 0, 13] + dev_read(3, 0, 65535)
    put("device", "idle", p)
    put("device", "idle-no-backing", [0x00, 0x00, 0x00, 16, 0, 13])

    # a device of 2^63-1 bytes, and one of 1 MiB + 1234: unaligned ends
    p = [0x00, 4 << 2, 0x00]
    p += dev_write(2, 1 << 20, 0, 3) + dev_write(3, 5, 3000, 2)
    p += dev_read(2, 1000, 0) + [10] + dev_range(2, 100, 0) + [0]
    p += [14, 0x00, 14, 0x10, 14, 0x20, 14, 0x30, 13]
    put("device", "huge", p)
    p = [0x01, 1 << 2, 0x00] + dev_write(2, (1 << 20) - 10, 0, 3)
    p += dev_read(2, (1 << 20) - 4000, 0) + [13]
    put("device", "tail", p)
    put("device", "empty", [0x00, 3 << 2, 0x00, 0, 0, 0, 0, 0, 0, 0, 14, 7,
                            13])
    # huge_threshold 1: everything raw; acceleration 65537
    p = [0xE0 | 0x20, 0x03, 0x00]
    for k in range(8):
        p += dev_write(3, k * 5000, 7000, k, k)
    p += dev_read(3, 0, 50000) + [12, 13]
    put("device", "thresholds", p)

    # the cold tier (byte 2 bit 2): idle passes pack text sectors, reads,
    # overwrites, trims and zeroes of packed ones, a pass under pressure
    # repacks, packs go to the backing file and come back
    for c0, c1, c2, name in ((0x08, 0x00, 0x04, "cold"),
                             (0x08, 0x20 | 0x80, 0x04, "cold-store-hooks"),
                             (0x01, 0x00, 0x04 | 0x08, "cold-hot-zstd"),
                             (0x02 | 0x08, 0x00, 0x04 | 0x01, "cold-limit")):
        p = [c0, c1, c2]
        for i in range(40):
            p += dev_write(0, i * 4096, 0, 2 if i % 5 else 3, i)
        p += [17, 0, 0, 17, 0, 0, 13] + dev_read(3, 0, 65535)
        p += dev_write(1, 5 * 4096 + 10, 300, 3) + [8] + dev_range(1, 9 * 4096, 4096)
        p += [9] + dev_range(0, 12 * 4096, 0) + [13]
        p += [17, 1, 0, 13, 18] + u16(64) + [4, 0, 28, 5, 3, 0, 6, 7]
        p += [13] + dev_read(3, 0, 65535)
        p += dev_write(0, 20 * 4096, 1, 2, 99) + [17, 3 | 8, 2, 13]
        p += dev_read(3, 4096 * 16, 65535) + [13]
        put("device", name, p)


# --- params -----------------------------------------------------------------
def params():
    def prog(cmdline, text):
        data = [len(cmdline)]
        for arg in cmdline:
            data += list(arg.encode()) + [0]
        return data + list(text.encode())

    put("params", "full", prog(["size=1G"], """# comment
[zramd]
allocator = zbud
compressor = lz4
acceleration = 2
huge_threshold = 3000
stats = zramd.stats
stats_interval = 5
mem_limit = 256M
backing = zramd.backing
backing_size = 4G
writeback_idle = 3600
mem_high = 95
mem_low = 70
psi = off
"""))
    put("params", "cmdline-wins", prog(["size=4G", "mem_limit=1G"],
                                       "size = 2G\nmem_limit = 0\n"))
    put("params", "bad-key", prog([], "size=1G\nbogus = 1\n"))
    put("params", "bad-section", prog([], "[other]\nsize=1G\n"))
    put("params", "twice", prog([], "size=1G\nsize=2G\n"))
    put("params", "sizes", prog(["size=8E"], "mem_limit=63k\n"))
    put("params", "suffixes", prog(["size=9223372036854775807"],
                                   "huge_threshold = 4095b\nbacking_size=7s\n"))
    put("params", "syntax", prog([], "size 1G\n"))
    put("params", "long-line", prog([], "size = " + "1" * 300 + "\n"))
    put("params", "psi", prog(["psi=55"], "size=1\npsi=on\n"))
    put("params", "comment", prog([], "size = 1G ; the size\n; c\n# c\n"))


# --- stats ------------------------------------------------------------------
def stats():
    names = ["disksize", "orig_data_size", "compr_data_size",
             "mem_used_total", "mem_limit", "mem_used_max", "same_pages",
             "pages_compacted", "huge_pages", "failed_reads", "failed_writes",
             "invalid_io", "notify_free", "bd_count", "bd_reads", "bd_writes",
             "bd_failed", "bd_checksum_errors", "bd_io_errors", "evict_limit", "evict_psi",
             "evict_cgroup", "evict_idle"]
    text = "# zramd stats v1\nversion 1\nallocator zsmalloc\n"
    text += "".join("%s %d\n" % (n, i * 1000) for i, n in enumerate(names))
    put("stats", "full", [0] + list(text.encode()))
    put("stats", "minimal", [0] + list(
        b"version 1\ndisksize 1\norig_data_size 2\ncompr_data_size 3\n"
        b"mem_used_total 4\n"))
    put("stats", "unknown-key", [0] + list(
        b"version 1\nnew_counter 5\ndisksize 1\norig_data_size 2\n"
        b"compr_data_size 3\nmem_used_total 4\n"))
    put("stats", "bad", [0] + list(b"version 2\ndisksize x\n \nkey\n"))
    put("stats", "max", [0] + list(
        b"version 1\ndisksize 18446744073709551615\norig_data_size 0\n"
        b"compr_data_size 18446744073709551616\nmem_used_total 4\n"))
    put("stats", "truncated", [0] + list(b"version 1\ndisksize 1"))
    # round trip: counters from the input, written and parsed again
    put("stats", "roundtrip", [1] + list(range(0, 256, 3)) * 2)


# --- backing ----------------------------------------------------------------
def backing():
    # ops: 0 write, 1 free, 2 read, 3 corrupt, 4 truncate, 5 punch, 6 bad,
    # 7 stats; see fuzz_backing.c
    def write(sector, length, kind=0, flags=0, big=False):
        how = 1 if big else 0
        s = u64(sector) if big else [sector & 0xFF]
        return [0, how] + s + u16(length - 1) + [kind] + u16(flags)

    p = [0]
    for i in range(12):
        p += write(i, 100 + i * 350, i % 4, i)
    p += [1, 0, 1, 3] + [2, 2, 0] * 4  # free two, read others
    p += [3, 4] + u16(10) + [0x55]  # corrupt a header byte
    p += [3, 5] + u16(600) + [0x01]  # corrupt a payload byte (or padding)
    p += [2, 4, 0, 2, 5, 0, 2, 6, 1, 2, 7, 2, 2, 8, 3, 7, 3]
    put("backing", "write-corrupt-read", p)

    p = [0]  # 64 KiB file: fill it up, then make room
    for i in range(30):
        p += write(i, 4096, 3)
    p += [7, 0, 1, 0, 1, 0] + write(99, 4096) + [7, 0, 2, 0, 0, 2, 1, 0]
    p += [0, 2] + [0] * 6  # bad length and flags
    put("backing", "full", p)

    p = [2]
    for i in range(8):
        p += write(1 << 40 | i, 1 + i * 500, 1, 0xFFFF, big=True)
    p += [4, 7] + u16(700) + [5, 0, 5, 3, 2, 7, 0, 2, 3, 0, 7, 1]
    p += [6, 0] + u32(0) + [6, 1] + u32(5) + [6, 2] + u32(0x12345)
    p += [6, 3] + u32(0x777) + [7, 0]
    put("backing", "truncate-punch-bad", p)


# --- codec ------------------------------------------------------------------
def codec():
    put("codec", "decode-empty", [0])
    # a valid LZ4 block of 4096 bytes: "abcd", a match of 4087 at offset
    # 4, then 5 literals
    block = [0x4F] + list(b"abcd") + [4, 0] + [0xFF] * 15 + [0xF3]
    block += [0x50] + list(b"abcda")
    put("codec", "decode-block", [0] + block)
    put("codec", "decode-short", [0] + block[:-1])
    for k in range(6):
        put("codec", "encode-%d" % k, [1, k, k, 0x00, 0x0C] +
            u64(0x0123456789ABCDEF * (k + 1)) + list(b"zram sector " * 4))
    put("codec", "encode-threshold-1", [1, 3, 0, 0, 0] + u64(5) +
        list(b"ab" * 40))
    put("codec", "fill", [2] + u64(0x0123456789ABCDEF) + u16(4001) + u16(
        95))


# --- pressure ---------------------------------------------------------------
def pressure():
    put("pressure", "psi", [0] + list(
        b"some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\n"
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
    put("pressure", "psi-round-trip", [1, 0x0F] + list(range(1, 40)))
    for i, text in enumerate([b"max\n", b"1234\n", b"4611686018427387904",
                              b"18446744073709551616", b"12 \n", b""]):
        put("pressure", "cgroup-value-%d" % i, [2] + list(text))
    for i, text in enumerate([b"on", b"off", b"auto", b"100", b"101", b"007",
                              b"-1"]):
        put("pressure", "psi-setting-%d" % i, [3] + list(text))
    put("pressure", "near", [4] + u64(900) + u64(1000) + [10, 0])
    put("pressure", "near-huge", [4] + u64(2**64 - 2) + u64(2**64 - 2) +
        [99, 0])
    put("pressure", "find-v2", [5] + list(
        b"0::/a\n\0"
        b"30 1 0:26 / @ rw,nosuid - cgroup2 cgroup2 rw\n"))
    put("pressure", "find-v1", [5] + list(
        b"5:memory:/b\n0::/x\n\0"
        b"30 1 0:26 / @ rw - cgroup cgroup rw,memory\n"))
    put("pressure", "find-root", [5] + list(
        b"0::/sub/a\n\0"
        b"30 1 0:26 /sub @ rw - cgroup2 cgroup2 rw\n"))
    put("pressure", "find-escape", [5] + list(
        b"0::/a\n\0"
        b"30 1 0:26 / @\\040x rw - cgroup2 cgroup2 rw\n"))


# --- snapshot ---------------------------------------------------------------
# Mode 1 programs (see fuzz_snapshot.c); the raw snapshot files (mode 0),
# which need XXH3 checksums, are made by the daemon itself:
# tests/fuzz/snapshot_seeds.sh.
def snapshot():
    def ops(n):
        p = []
        for i in range(n):
            k = i % 4
            p += [k, (i * 7) & 0xFF]
            p += u64(0x0101010101010101 * i) if k == 2 else ([] if k == 3 else [i])
        return p

    for damage, name in [(0, "clean"), (1 | 5 << 3, "xor"), (2 | 9 << 3, "cut"),
                         (3, "append"), (4, "other-size"), (5, "mem-limit")]:
        put("snapshot", "damaged-" + name,
            [1, 40, damage] + ops(24) + u16(333) + [0x40])
    put("snapshot", "damaged-zbud-odd-end", [3, 6, 0] + ops(12))
    # Packs: compressible sectors, packed (op 4), then some written over
    # and trimmed (dead slots); LZ4 and zstd hot codecs.
    def pack_ops():
        p = []
        for i in range(20):
            p += [1, i, i & 3]
        p += [4, 0]
        for i in range(0, 20, 3):
            p += [0, i, i]
        p += [3, 7]
        return p

    for damage, name in [(0, "clean"), (1 | 5 << 3, "xor"), (1 | 20 << 3, "xor2"),
                         (2 | 9 << 3, "cut"), (5, "mem-limit")]:
        put("snapshot", "damaged-packs-" + name, [1, 30, damage] + pack_ops() + u16(777) + [0x40])
        put("snapshot", "damaged-packs-zstd-" + name, [5, 30, damage] + pack_ops() + u16(555) + [0x20])
    put("snapshot", "raw-empty", [0])


if __name__ == "__main__":
    zpool()
    device()
    params()
    stats()
    backing()
    codec()
    pressure()
    snapshot()
