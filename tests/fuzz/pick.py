#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pick a small seed corpus that keeps most of a big corpus's coverage.

    pick.py FUZZER N OUTDIR DIR...

Runs the libFuzzer binary FUZZER with -merge=1 over DIR... to find the
inputs that add coverage at all (the merge's own set cover), then runs
each of those alone (an inner merge of one file, a process each) to learn
every coverage edge and feature it reaches. Then picks greedily: every
file named seed-* (the hand-written seeds, see seeds.py), then the input
that adds the most new edges (new features break ties, then the smaller
file), until N files are chosen or nothing adds coverage. The chosen files
are copied to OUTDIR, named by the SHA-1 of their contents as libFuzzer
names them. Prints the coverage libFuzzer sees for the pick and for the
whole (its "INITED cov: ... ft: ..." line).

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
    useful = set()
    for line in lines[2 + nfiles:]:
        words = line.split()
        if words and words[0] in ("FT", "COV") and len(words) > 2:
            useful.add(int(words[1]))
    useful |= {i for i, f in enumerate(files)
               if os.path.basename(f).startswith("seed-")}

    ft, cov = {}, {}
    for i in sorted(useful):
        ft[i], cov[i] = features(fuzzer, files[i])

    chosen, have_ft, have_cov = [], set(), set()
    for i in sorted(useful):
        if os.path.basename(files[i]).startswith("seed-"):
            chosen.append(i)
            have_ft |= ft[i]
            have_cov |= cov[i]
    candidates = [i for i in useful if i not in chosen]
    while len(chosen) < n and candidates:
        best = max(candidates, key=lambda i: (
            len(cov[i] - have_cov), len(ft[i] - have_ft),
            -os.path.getsize(files[i])))
        if not (cov[best] - have_cov or ft[best] - have_ft):
            break
        chosen.append(best)
        candidates.remove(best)
        have_ft |= ft[best]
        have_cov |= cov[best]

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


def features(fuzzer, path):
    """Every feature and edge one input reaches, run alone."""
    with tempfile.TemporaryDirectory() as tmp:
        ctl = os.path.join(tmp, "control")
        with open(ctl, "w") as f:
            f.write("1\n1\n%s\n" % path)
        subprocess.run([fuzzer, "-merge_inner=1", "-timeout=10",
                        "-merge_control_file=" + ctl],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ft, cov = set(), set()
        with open(ctl) as f:
            for line in f:
                words = line.split()
                if words and words[0] == "FT":
                    ft = set(map(int, words[2:]))
                elif words and words[0] == "COV":
                    cov = set(map(int, words[2:]))
        return ft, cov


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
