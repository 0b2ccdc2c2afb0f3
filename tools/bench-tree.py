#!/usr/bin/env python3
"""Writes a deterministic source-like tree as a tar file: N files (default
7,500, about 130 MB) in nested folders, text content. Usage: bench-tree.py OUT.tar N"""
import io, random, sys, tarfile

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7500
rng = random.Random(42)
words = [w.encode() for w in "fn let mut struct impl return match self error value buffer index note zebra client mood sleep plan".split()]
with tarfile.open(out, "w") as t:
    for i in range(n):
        d = f"tree/d{i % 40:02}/s{i % 7}/"
        size = int(min(rng.lognormvariate(9.2, 1.0), 400_000))
        buf = io.BytesIO()
        while buf.tell() < size:
            buf.write(b" ".join(rng.choices(words, k=12)) + b"\n")
        data = buf.getvalue()[:size]
        ti = tarfile.TarInfo(d + f"file{i:05}.rs")
        ti.size = len(data)
        ti.mtime = 1_700_000_000
        t.addfile(ti, io.BytesIO(data))
