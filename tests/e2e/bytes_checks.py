# tests/e2e/bytes_checks.py - exact-byte checks through nbdsh
#
# Run by test-nbdsh.sh as
#   nbdsh --base-allocation -u URI -c "exec(open('bytes_checks.py').read())"
# with the handle `h` connected to a fresh zramd device whose size is not a
# multiple of 4096. Every check prints "ok - ..." or "FAIL - ...".

import errno
import os
import random

import nbd

SEC = 4096
seed = int(os.environ.get("TEST_SEED", random.randrange(1 << 30)))
print("bytes_checks: TEST_SEED=%d" % seed)
rng = random.Random(seed)
size = h.get_size()
shadow = bytearray(size)


def check(what, cond):
    print(("ok - " if cond else "FAIL - ") + what)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def text_bytes(n):
    words = b"zram sector compress lz4 page the of \n"
    return (words * (n // len(words) + 1))[:n]


def write(buf, off, what):
    h.pwrite(buf, off)
    shadow[off:off + len(buf)] = buf
    back = h.pread(len(buf), off)
    check("%s: %d bytes at %d read back" % (what, len(buf), off), back == buf)


def whole_device_matches(what):
    good = True
    step = 4 << 20
    for off in range(0, size, step):
        n = min(step, size - off)
        if h.pread(n, off) != shadow[off:off + n]:
            good = False
            break
    check("%s: whole device matches the shadow" % what, good)


def extents(off, n):
    found = []

    def cb(meta, offset, entries, err):
        if meta == nbd.CONTEXT_BASE_ALLOCATION:
            pos = offset
            for i in range(0, len(entries), 2):
                found.append((pos, entries[i], entries[i + 1]))
                pos += entries[i]
        return 0

    h.block_status(n, off, cb)
    return found


# --- what the server says about itself ------------------------------------
check("can_multi_conn", h.can_multi_conn())
check("can_trim", h.can_trim())
check("can_zero", h.can_zero())
check("can_fast_zero", h.can_fast_zero())
check("can_flush", h.can_flush())
check("can_fua", h.can_fua())
check("can_cache", h.can_cache())
check("base:allocation", h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION))
check("preferred block size 4096",
      h.get_block_size(nbd.SIZE_PREFERRED) == 4096)
check("minimum block size 1", h.get_block_size(nbd.SIZE_MINIMUM) == 1)
check("size is not sector-aligned", size % SEC != 0)

# --- unwritten regions read as zeroes -------------------------------------
check("unwritten start reads zero", h.pread(SEC, 0) == bytes(SEC))
check("unwritten middle reads zero",
      h.pread(3 * SEC + 7, size // 2 - 5) == bytes(3 * SEC + 7))
check("unwritten end reads zero", h.pread(5000, size - 5000) == bytes(5000))
e = extents(0, size)
check("empty device is one hole",
      len(e) == 1 and e[0][1] >= size and e[0][2] == 3)

# --- start, middle, end -----------------------------------------------------
write(text_bytes(SEC), 0, "first sector")
write(rand_bytes(SEC), size // 2 - (size // 2) % SEC, "middle sector")
write(text_bytes(size % SEC), size - size % SEC, "partial last sector")
write(rand_bytes(1), size - 1, "last byte")
write(rand_bytes(SEC + 1), size - SEC - 1, "last 4097 bytes")

# --- unaligned writes across sector boundaries ------------------------------
for off, n in [(1, 1), (4095, 2), (4095, 4098), (SEC * 3 + 100, 3 * SEC),
               (SEC * 10 - 1, 1), (SEC * 12 + 2048, 2 * SEC + 1),
               (SEC * 20 + 1, SEC - 2), (SEC * 30 - 7, 14)]:
    write(rand_bytes(n) if n % 2 else text_bytes(n), off, "unaligned")
# Two overlapping unaligned writes, the second wins where they overlap.
write(b"\xaa" * 6000, SEC * 40 + 1000, "overlap 1")
write(b"\x55" * 6000, SEC * 40 + 4000, "overlap 2")
check("overlap bytes", h.pread(3, SEC * 40 + 3999) == b"\xaa\x55\x55")
# Same-filled sectors of a non-zero word, and a word pattern.
write(b"\x01\x02\x03\x04\x05\x06\x07\x08" * (2 * SEC // 8), SEC * 50,
      "same-filled word")
write(b"\xff" * SEC, SEC * 52, "same-filled 0xff")
write(b"\xff" * 10, SEC * 52 + 4090, "patch a same-filled sector")
whole_device_matches("after writes")

# --- trim, write zeroes, fast zero --------------------------------------------
h.trim(4 * SEC, 0)
shadow[0:4 * SEC] = bytes(4 * SEC)
check("trim then read zero", h.pread(4 * SEC, 0) == bytes(4 * SEC))
h.trim(SEC + 10, SEC * 12 + 1000)
shadow[SEC * 12 + 1000:SEC * 13 + 1010] = bytes(SEC + 10)
check("unaligned trim then read zero",
      h.pread(SEC + 10, SEC * 12 + 1000) == bytes(SEC + 10))
h.zero(3 * SEC, SEC * 50)
shadow[SEC * 50:SEC * 53] = bytes(3 * SEC)
check("write zeroes then read zero", h.pread(3 * SEC, SEC * 50) == bytes(3 * SEC))
h.zero(1234, SEC * 40 + 500, nbd.CMD_FLAG_NO_HOLE)
shadow[SEC * 40 + 500:SEC * 40 + 1734] = bytes(1234)
check("write zeroes NO_HOLE unaligned",
      h.pread(1234, SEC * 40 + 500) == bytes(1234))
try:
    h.zero(2 * SEC, SEC * 20, nbd.CMD_FLAG_FAST_ZERO)
    shadow[SEC * 20:SEC * 22] = bytes(2 * SEC)
    check("fast zero accepted", True)
except nbd.Error as ex:
    check("fast zero accepted (%s)" % ex, False)
check("fast zero reads zero", h.pread(2 * SEC, SEC * 20) == bytes(2 * SEC))
write(rand_bytes(SEC), SEC * 60, "FUA write")
h.pwrite(text_bytes(SEC), SEC * 61, nbd.CMD_FLAG_FUA)
shadow[SEC * 61:SEC * 62] = text_bytes(SEC)
h.flush()
h.cache(SEC * 8, 0)
check("flush and cache succeed", True)
whole_device_matches("after trims and zeroes")

# --- extents ---------------------------------------------------------------
h.pwrite(rand_bytes(2 * SEC), SEC * 100)
h.trim(SEC, SEC * 100)
e = extents(SEC * 99, 4 * SEC)
kinds = [(off, length, flags) for off, length, flags in e
         if off < SEC * 103]
check("extents: hole before data", kinds[0][2] == 3 and kinds[0][0] == SEC * 99)
check("extents: trimmed sector is a hole",
      kinds[0][1] == 2 * SEC if kinds else False)
check("extents: data after the trim",
      len(kinds) >= 2 and kinds[1][0] == SEC * 101 and kinds[1][2] == 0)
h.trim(SEC, SEC * 101)
e = extents(SEC * 99, 4 * SEC)
check("extents: all hole after trimming both",
      e[0][0] == SEC * 99 and e[0][1] >= 4 * SEC and e[0][2] == 3)
total = sum(length for off, length, flags in extents(0, size))
check("extents cover the whole device", total >= size)

# --- past the end is refused ---------------------------------------------------
try:
    h.pread(2, size - 1)
    check("read past the end refused", False)
except nbd.Error as ex:
    check("read past the end refused (%s)" % errno.errorcode.get(ex.errno),
          True)
