# tests/e2e/seeded_sectors.py - seeded sectors written and checked through nbdsh
#
# The backing-file tests (test-shrinker.sh, tests/soak/test-faults.sh)
# run it before their own code, through functions.sh's $SECTORS_PY:
#
#   nbdsh_checks LABEL "${SECTORS_PY[@]}" -c 'CODE'
#
# which sets `seed` and execs this file with the handle `h` connected.
# Checks print "ok - ..." / "FAIL - ...".
import errno
import random

import nbd

SEC = 4096


def check(what, cond):
    print(("ok - " if cond else "FAIL - ") + what)


def sector(i):
    """The data of sector I: incompressible, from the seed."""
    return random.Random(seed * 100003 + i).randbytes(SEC)


def write_sectors(first, n, salt=0):
    """Writes sector(salt + i) at sector i, for i in [first, first + n)."""
    for i in range(first, first + n):
        h.pwrite(sector(salt + i), i * SEC)


def wrong_sectors(first, n, salt=0):
    """How many of the sectors [first, first + n) do not read back."""
    return sum(h.pread(SEC, i * SEC) != sector(salt + i)
               for i in range(first, first + n))


def read_all(n, damaged=None):
    """Reads sectors 0..n-1 back. Returns (good, eio, wrong, other):
    intact, failed with EIO, other bytes, other errors. With damaged (a
    set), a damaged sector that reads counts as wrong and an EIO on any
    other as other."""
    good = eio = wrong = other = 0
    for i in range(n):
        try:
            got = h.pread(SEC, i * SEC)
            if got == sector(i) and not (damaged and i in damaged):
                good += 1
            else:
                wrong += 1
        except nbd.Error as e:
            if e.errnum == errno.EIO and (damaged is None or i in damaged):
                eio += 1
            else:
                other += 1
                print("sector %d: %s" % (i, e))
    return good, eio, wrong, other


def fill_until_full(what, limit, least=1, salt=0, retries=0):
    """Writes sectors until a write fails; that must be ENOSPC ("once WHAT
    is full"). RETRIES more writes must fail cleanly too. The sectors
    written before (more than LEAST - 1) must read back; after trimming
    them, half as many are written again (with SALT) and read back."""
    n = err = 0
    for i in range(limit):
        try:
            h.pwrite(sector(i), i * SEC)
            n += 1
        except nbd.Error as e:
            err = e.errnum
            break
    check("writes fail with ENOSPC once %s is full (after %d sectors, %s)"
          % (what, n, errno.errorcode.get(err, err)), err == errno.ENOSPC)
    if retries:
        more = 0
        for i in range(n, n + retries):
            try:
                h.pwrite(sector(i), i * SEC)
            except nbd.Error as e:
                more += e.errnum == errno.ENOSPC
        check("further writes still refused cleanly (%d of %d ENOSPC)"
              % (more, retries), more > 0)
    bad = wrong_sectors(0, n)
    check("the %d sectors written before read back intact (%d wrong)"
          % (n, bad), bad == 0 and n >= least)
    h.trim(n * SEC, 0)
    write_sectors(0, n // 2, salt)
    bad = wrong_sectors(0, n // 2, salt)
    check("after trims, %d sectors written and read back (%d wrong)"
          % (n // 2, bad), bad == 0)
    return n
