#!/usr/bin/env python3
"""Generates a benchmark dataset: SIZE bytes in many files of mixed content, deterministic
from a seed, so every backup tool in bench/e2e.sh sees the same data.

Usage: gen_dataset.py DIR [--size 1G] [--seed 1]

Content mix (by bytes, roughly):
  45% text-like: lines of words from a fixed vocabulary (compresses ~3-4x, little dedup),
  35% random (incompressible, no dedup),
  20% repeated: copies of earlier files and files built from a pool of shared 256 KiB blocks
      (dedup finds them; compression does not).
File sizes: many small (1-64 KiB), some medium (64 KiB-2 MiB), a few large (8-32 MiB),
spread over a nested directory tree. Files only (no links): every tool restores those alike.
"""

import argparse
import os
import random
import sys

KiB, MiB = 1 << 10, 1 << 20
UNITS = {"": 1, "K": KiB, "M": MiB, "G": 1 << 30, "T": 1 << 40}


def parse_size(s: str) -> int:
    s = s.strip().upper().removesuffix("B").removesuffix("I")
    num = s.rstrip("KMGT")
    return int(float(num) * UNITS[s[len(num):]])


def text_pool(rng: random.Random, size: int) -> bytes:
    syll = ["ka", "lo", "mi", "ter", "an", "dor", "quo", "fen", "is", "ru", "bel", "zon", "ph",
            "ect", "ion", "ar", "ti", "mon", "ex", "ver"]
    words = ["".join(rng.choice(syll) for _ in range(rng.randrange(1, 5))) for _ in range(3000)]
    weights = [1 / (i + 1) for i in range(len(words))]  # Zipf-like, as in prose
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choices(words, weights, k=rng.randrange(4, 16))) + "\n"
        if rng.random() < 0.1:
            line = f"{rng.randrange(10**9)}: " + line
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    total = parse_size(args.size)
    rng = random.Random(args.seed)
    pool = text_pool(rng, 8 * MiB)
    blocks = [rng.randbytes(256 * KiB) for _ in range(16)]
    written, nfiles, earlier = 0, 0, []
    os.makedirs(args.dir, exist_ok=True)

    def file_size() -> int:
        r = rng.random()
        if r < 0.90:
            return rng.randrange(KiB, 64 * KiB)
        if r < 0.997:
            return rng.randrange(64 * KiB, 2 * MiB)
        return rng.randrange(8 * MiB, 32 * MiB)

    while written < total:
        size = min(file_size(), total - written)
        d = os.path.join(args.dir, f"d{rng.randrange(8)}", f"s{rng.randrange(12)}")
        if rng.random() < 0.3:
            d = os.path.join(d, f"t{rng.randrange(6)}")
        os.makedirs(d, exist_ok=True)
        r = rng.random()
        path = os.path.join(d, f"f{nfiles:06d}")
        with open(path, "wb") as f:
            if r < 0.45:  # text-like: windows of the pool with small edits
                left = size
                while left:
                    n = min(left, rng.randrange(4 * KiB, 256 * KiB))
                    off = rng.randrange(0, len(pool) - n)
                    piece = bytearray(pool[off:off + n])
                    for _ in range(max(1, n // 8192)):
                        piece[rng.randrange(n)] = rng.randrange(32, 127)
                    f.write(piece)
                    left -= n
                kind = "text"
            elif r < 0.80:
                left = size
                while left:
                    n = min(left, 4 * MiB)
                    f.write(rng.randbytes(n))
                    left -= n
                kind = "random"
            elif r < 0.90 and earlier:  # a copy of an earlier file
                src, n = rng.choice(earlier)
                with open(src, "rb") as s:
                    while chunk := s.read(4 * MiB):
                        f.write(chunk)
                size = n
                kind = "copy"
            else:  # shared blocks
                left = size
                while left:
                    n = min(left, 256 * KiB)
                    f.write(rng.choice(blocks)[:n])
                    left -= n
                kind = "blocks"
        if kind != "copy" and size < 8 * MiB:
            earlier.append((path, size))
        written += size
        nfiles += 1
        os.utime(path, ns=(1_600_000_000_000_000_000 + rng.randrange(10**17),) * 2)
    print(f"gen_dataset: {nfiles} files, {written} bytes in {args.dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
