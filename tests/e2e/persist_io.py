# tests/e2e/persist_io.py - a known device image for the snapshot tests
#
#   persist_io.py SOCK write REALFILE SEED   write the pattern below
#   persist_io.py SOCK write-more SEED       overwrite a few regions
#   persist_io.py SOCK write-sparse SEED     overwrite every 5th sector of
#                                            the real data, trim 64 KiB of
#                                            it (dead slots in its packs)
#   persist_io.py SOCK dump IMG EXTENTS      the whole device and its
#                                            extents (base:allocation)
#
# The pattern (a 64 MiB device): real data, random data, same-filled
# sectors (one byte, and an 8-byte word), a region written then trimmed,
# one written then zeroed, an unaligned write, and holes everywhere else.
import random
import sys

import nbd

M = 1 << 20
sock, cmd = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_unix(sock)


def write(buf, off):
    for i in range(0, len(buf), 4 * M):
        h.pwrite(buf[i:i + 4 * M], off + i)


if cmd == "write":
    real = open(sys.argv[3], "rb").read(16 * M)
    rnd = random.Random(int(sys.argv[4]))
    write(real, 0)
    write(rnd.randbytes(8 * M), 16 * M)
    write(b"\xab" * (2 * M), 24 * M)
    write(bytes.fromhex("0123456789abcdef") * (M // 8), 26 * M)
    write(rnd.randbytes(4 * M), 28 * M)
    h.trim(4 * M, 28 * M)
    write(rnd.randbytes(M), 32 * M)
    h.zero(M, 32 * M)
    write(rnd.randbytes(10000), 40 * M + 1234)
    h.flush()
elif cmd == "write-more":
    rnd = random.Random(int(sys.argv[3]))
    write(rnd.randbytes(2 * M), 2 * M)
    write(rnd.randbytes(M), 48 * M)
    h.flush()
elif cmd == "write-sparse":
    rnd = random.Random(int(sys.argv[3]))
    for off in range(0, 16 * M, 5 * 4096):
        h.pwrite(rnd.randbytes(4096), off)
    h.trim(65536, 8 * M)
    h.flush()
elif cmd == "dump":
    size = h.get_size()
    with open(sys.argv[3], "wb") as f:
        for off in range(0, size, 4 * M):
            f.write(h.pread(min(4 * M, size - off), off))
    ext = []

    def cb(meta, off, entries, err):
        if meta == nbd.CONTEXT_BASE_ALLOCATION:
            for i in range(0, len(entries), 2):
                ext.append((entries[i], entries[i + 1]))
        return 0

    off = 0
    while off < size:
        n = len(ext)
        h.block_status(min(size - off, 1 << 30), off, cb)
        for length, flags in ext[n:]:
            off += length
    # Merge neighbours of one type: how a server cuts extents may differ.
    merged = []
    for length, flags in ext:
        if merged and merged[-1][1] == flags:
            merged[-1][0] += length
        else:
            merged.append([length, flags])
    with open(sys.argv[4], "w") as f:
        for length, flags in merged:
            f.write(f"{length} {flags}\n")
else:
    sys.exit(f"unknown command {cmd}")
h.shutdown()
