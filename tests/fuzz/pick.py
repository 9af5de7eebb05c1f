#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pick a small seed corpus that keeps most of a big corpus's coverage.

    pick.py FUZZER N OUTDIR DIR...

Runs the libFuzzer binary FUZZER with -merge=1 over DIR... only to learn,
from its control file, which coverage edges and features each input adds
to those of the inputs merged before it (the merge's own set cover). Then
picks every file named seed-* (the hand-written seeds, see seeds.py) and
the inputs that added the most (an edge counts as ten features), up to N
files in all. The chosen files are copied to OUTDIR, named by the SHA-1 of
their contents as libFuzzer names them. Prints the coverage libFuzzer sees
for the pick and for the whole (its "INITED cov: ... ft: ..." line).

`make fuzz-pick` runs this for every target (tests/fuzz/fuzz.mk).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    fuzzer, n, outdir, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
        sys.argv[4:]
    with tempfile.TemporaryDirectory() as tmp:
        ctl = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run([fuzzer, "-merge=1", "-timeout=10",
                        "-merge_control_file=" + ctl, out] + dirs,
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(ctl) as f:
            lines = f.read().splitlines()
    nfiles = int(lines[0])
    files = lines[2:2 + nfiles]
    ft, cov = {}, {}
    for line in lines[2 + nfiles:]:
        words = line.split()
        if words and words[0] in ("FT", "COV"):
            (ft if words[0] == "FT" else cov)[int(words[1])] = \
                set(map(int, words[2:]))

    chosen = [i for i, path in enumerate(files)
              if os.path.basename(path).startswith("seed-")]
    rest = sorted((i for i in ft if i not in chosen and
                   (ft[i] or cov.get(i))),
                  key=lambda i: (-(len(ft[i]) + 10 * len(cov.get(i, ()))),
                                 os.path.getsize(files[i])))
    chosen += rest[:max(0, n - len(chosen))]

    os.makedirs(outdir, exist_ok=True)
    size = 0
    for i in chosen:
        with open(files[i], "rb") as f:
            data = f.read()
        name = os.path.basename(files[i])
        if not name.startswith("seed-"):
            name = hashlib.sha1(data).hexdigest()
        shutil.copyfile(files[i], os.path.join(outdir, name))
        size += len(data)
    print("%s: picked %d files, %d bytes; %s; the whole: %s" % (
        os.path.basename(fuzzer), len(chosen), size,
        coverage(fuzzer, [outdir]), coverage(fuzzer, dirs)))


def coverage(fuzzer, dirs):
    """libFuzzer's coverage summary after running the inputs of @dirs."""
    r = subprocess.run([fuzzer, "-runs=0", "-timeout=10"] + dirs,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    for line in r.stdout.splitlines():
        if "INITED" in line:
            return " ".join(w for w in line.split()
                            if w not in ("INITED",) and not w.startswith("#"))
    return "?"


if __name__ == "__main__":
    main()
