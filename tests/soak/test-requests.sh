#!/usr/bin/env bash
# Bad and odd requests from a client (nbdsh, libnbd's strict checks off,
# so each request reaches nbdkit): reads, writes, trims and zeroes past the
# end, straddling it, at offsets near 2^63; zero-length requests (which
# nbdkit itself refuses); lengths
# above the NBD limit; unaligned writes, trims and zeroes checked against a
# shadow copy. Each bad one must fail with an error, the server must keep
# serving, and the data must be unchanged. (make check-soak-quick)
source "$(dirname "$0")/../e2e/functions.sh"
requires nbdkit
requires nbdsh

for alloc in $(allocators); do
	start_zramd size=8M allocator="$alloc" || {
		not_ok "$alloc: start"
		continue
	}
	nbdsh_checks "$alloc" -c '
import errno, random
h.set_strict_mode(0)            # send what the client would refuse
size = h.get_size()
rng = random.Random(7)
shadow = bytearray(rng.randbytes(size))
h.pwrite(bytes(shadow), 0)

def fails(what, fn):
    try:
        fn()
    except nbd.Error as e:
        print("ok - %s fails (%s)" % (what, errno.errorcode.get(e.errnum, e.errnum)))
        return
    print("FAIL - %s succeeded" % what)

def works(what, fn):
    try:
        fn()
        print("ok - " + what)
    except nbd.Error as e:
        print("FAIL - %s: %s" % (what, e))

fails("pread at the end", lambda: h.pread(4096, size))
fails("pread straddling the end", lambda: h.pread(8192, size - 4096))
fails("pread at offset 2^63 - 4096", lambda: h.pread(4096, (1 << 63) - 4096))
fails("pread at offset 2^64 - 1", lambda: h.pread(1, (1 << 64) - 1))
fails("pwrite past the end", lambda: h.pwrite(b"x" * 4096, size))
fails("pwrite straddling the end", lambda: h.pwrite(b"x" * 8192, size - 4096))
fails("trim straddling the end", lambda: h.trim(8192, size - 4096))
fails("zero straddling the end", lambda: h.zero(8192, size - 4096))
fails("trim at offset 2^63", lambda: h.trim(4096, 1 << 63))
fails("zero at offset 2^63", lambda: h.zero(4096, 1 << 63))
fails("pread of 64 MiB from an 8 MiB device (past the end)",
      lambda: h.pread(64 << 20, 0))
# (requests above the 64 MiB limit of nbdkit: tests/e2e/test-bad-runtime.sh)
# nbdkit 1.32 refuses count 0 itself (valid_range() in its protocol.c)
# before the plugin sees it; the NBD spec leaves zero-length requests to
# the server. So they must fail cleanly, and change nothing.
fails("zero-length pwrite", lambda: h.pwrite(b"", 0))
fails("zero-length pread", lambda: h.pread(0, 4096))
fails("zero-length pwrite at the end", lambda: h.pwrite(b"", size))
fails("zero-length trim", lambda: h.trim(0, 0))
fails("zero-length zero", lambda: h.zero(0, 0))
print(("ok - " if h.pread(size, 0) == bytes(shadow) else "FAIL - ")
      + "the data is unchanged after every refused request")
works("trim of the whole device in one request", lambda: h.trim(size, 0))
print(("ok - " if h.pread(size, 0) == bytes(size) else "FAIL - ")
      + "the trimmed device reads as zeroes")
shadow[:] = bytes(size)
h.pwrite(bytes(shadow), 0)
# Unaligned requests, checked against the shadow copy.
for i in range(300):
    off = rng.randrange(size - 1)
    n = rng.randrange(1, min(20000, size - off) + 1)
    op = rng.randrange(3)
    if op == 0:
        d = rng.randbytes(n)
        h.pwrite(d, off)
        shadow[off:off + n] = d
    elif op == 1:
        h.zero(n, off)
        shadow[off:off + n] = bytes(n)
    else:
        # trimmed bytes may read as anything (NBD); zramd drops the whole
        # 4 KiB sectors inside the range (they read as zeroes) and keeps
        # the partial ones. Each byte must be zero or unchanged.
        h.trim(n, off)
        got = h.pread(n, off)
        bad = sum(1 for a, b in zip(got, shadow[off:off + n]) if a != b and a != 0)
        if bad:
            print("FAIL - trim of %d at %d changed %d bytes to non-zero" % (n, off, bad))
        shadow[off:off + n] = got
got = h.pread(size, 0)
print(("ok - " if got == bytes(shadow) else "FAIL - ")
      + "300 unaligned writes, zeroes and trims: the device equals the shadow")
h.pwrite(b"alive" * 800, 12345)
print(("ok - " if h.pread(4000, 12345) == b"alive" * 800 else "FAIL - ")
      + "nbdkit still serves after every bad request")
'
	check_stop "$alloc"
done
finish
