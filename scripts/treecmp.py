#!/usr/bin/env python3
"""Compares two directory trees in full: what a restore must reproduce.

Usage: treecmp.py [--max-diffs N] [--json] [--owner] [--ignore-special] [--no-symlink-mtime] SRC DST

Checked for every path below SRC and DST (and the roots themselves):
  * the same set of names (raw bytes; names need not be UTF-8),
  * file type (regular file, directory, symlink, fifo, socket, device),
  * permission bits incl. setuid/setgid/sticky (st_mode & 0o7777; not for symlinks),
  * mtime in nanoseconds (also for directories and, unless --no-symlink-mtime, symlinks),
  * regular files: size and every byte,
  * symlinks: the target bytes,
  * hard-link structure: paths that share an inode inside SRC share one inode in DST and
    vice versa (links to inodes outside the tree are not counted),
  * with --owner: uid and gid.
Prints the first differences (default 20) on stderr and exits 1; exits 0 and prints a one-line
summary when identical (with --json, a JSON object with the counts on stdout). Exit 2 on usage
errors or when SRC/DST cannot be read.
"""

import argparse
import json
import os
import stat
import sys

CHUNK = 1 << 20


def show(path: bytes) -> str:
    """A printable form of a raw path (invalid UTF-8 bytes shown as \\xNN)."""
    return path.decode("utf-8", "backslashreplace") if path else "."


def kind(st: os.stat_result) -> str:
    m = st.st_mode
    if stat.S_ISREG(m):
        return "file"
    if stat.S_ISDIR(m):
        return "dir"
    if stat.S_ISLNK(m):
        return "symlink"
    if stat.S_ISFIFO(m):
        return "fifo"
    if stat.S_ISSOCK(m):
        return "socket"
    if stat.S_ISCHR(m):
        return "chardev"
    if stat.S_ISBLK(m):
        return "blockdev"
    return "unknown"


def walk(root: bytes):
    """Yields (relative path, lstat) for root ('' first) and everything below it, sorted."""
    st = os.lstat(root)
    yield b"", st
    stack = [b""] if stat.S_ISDIR(st.st_mode) else []
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        names = sorted(os.listdir(full))
        subdirs = []
        for name in names:
            r = os.path.join(rel, name) if rel else name
            s = os.lstat(os.path.join(root, r))
            yield r, s
            if stat.S_ISDIR(s.st_mode):
                subdirs.append(r)
        stack.extend(reversed(subdirs))


def same_content(a: bytes, b: bytes):
    """Returns None when equal, else the first differing byte offset."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        offset = 0
        while True:
            ba = fa.read(CHUNK)
            bb = fb.read(CHUNK)
            if ba != bb:
                n = min(len(ba), len(bb))
                for i in range(n):
                    if ba[i] != bb[i]:
                        return offset + i
                return offset + n
            if not ba:
                return None
            offset += len(ba)


class Diffs:
    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def add(self, path: bytes, what: str):
        self.count += 1
        if self.count <= self.limit:
            print(f"treecmp: {show(path)}: {what}", file=sys.stderr)
        elif self.count == self.limit + 1:
            print("treecmp: ... (more differences not shown)", file=sys.stderr)

    def full(self) -> bool:
        # Keep going a little past the limit only to say "more"; no need to scan everything.
        return self.count > self.limit


def compare(src: bytes, dst: bytes, args) -> tuple:
    diffs = Diffs(args.max_diffs)
    stats = {"files": 0, "bytes": 0, "directories": 0, "symlinks": 0, "hardlink_groups": 0,
             "hardlinked_paths": 0, "special": 0}
    dst_entries = dict(walk(dst))
    src_inodes = {}  # (dev, ino) -> [paths]
    dst_inodes = {}
    seen = set()
    for rel, s in walk(src):
        if diffs.full():
            break
        seen.add(rel)
        d = dst_entries.get(rel)
        k = kind(s)
        if k == "dir":
            stats["directories"] += 1
        elif k == "file":
            stats["files"] += 1
            stats["bytes"] += s.st_size
        elif k == "symlink":
            stats["symlinks"] += 1
        else:
            stats["special"] += 1
            if args.ignore_special:
                continue
        if d is None:
            diffs.add(rel, f"missing in destination ({k})")
            continue
        dk = kind(d)
        if dk != k:
            diffs.add(rel, f"type {k} in source, {dk} in destination")
            continue
        if k != "symlink" and stat.S_IMODE(s.st_mode) != stat.S_IMODE(d.st_mode):
            diffs.add(rel, f"mode {stat.S_IMODE(s.st_mode):04o} in source, "
                           f"{stat.S_IMODE(d.st_mode):04o} in destination")
        if s.st_mtime_ns != d.st_mtime_ns and not (k == "symlink" and args.no_symlink_mtime):
            diffs.add(rel, f"mtime {s.st_mtime_ns} ns in source, {d.st_mtime_ns} ns in destination")
        if args.owner and (s.st_uid, s.st_gid) != (d.st_uid, d.st_gid):
            diffs.add(rel, f"owner {s.st_uid}:{s.st_gid} in source, {d.st_uid}:{d.st_gid} "
                           "in destination")
        if k == "symlink":
            ts = os.readlink(os.path.join(src, rel) if rel else src)
            td = os.readlink(os.path.join(dst, rel) if rel else dst)
            if ts != td:
                diffs.add(rel, f"symlink target {show(ts)!r} in source, {show(td)!r} "
                               "in destination")
        elif k == "file":
            src_inodes.setdefault((s.st_dev, s.st_ino), []).append(rel)
            dst_inodes.setdefault((d.st_dev, d.st_ino), []).append(rel)
            if s.st_size != d.st_size:
                diffs.add(rel, f"size {s.st_size} in source, {d.st_size} in destination")
            elif len(src_inodes[(s.st_dev, s.st_ino)]) == 1:  # content of a link group once
                off = same_content(os.path.join(src, rel) if rel else src,
                                   os.path.join(dst, rel) if rel else dst)
                if off is not None:
                    diffs.add(rel, f"content differs from byte {off}")
        elif k in ("chardev", "blockdev") and s.st_rdev != d.st_rdev:
            diffs.add(rel, f"device {s.st_rdev:#x} in source, {d.st_rdev:#x} in destination")
    if not diffs.full():
        for rel in sorted(set(dst_entries) - seen):
            diffs.add(rel, f"extra in destination ({kind(dst_entries[rel])})")
            if diffs.full():
                break
    # Hard links: the partition of file paths into inodes must be the same on both sides.
    src_groups = {tuple(sorted(p)) for p in src_inodes.values()}
    dst_groups = {tuple(sorted(p)) for p in dst_inodes.values()}
    for g in sorted(src_groups - dst_groups):
        if len(g) > 1:
            diffs.add(g[0], "hard links in source not linked alike in destination: "
                      + ", ".join(show(p) for p in g))
    for g in sorted(dst_groups - src_groups):
        if len(g) > 1:
            diffs.add(g[0], "hard links in destination that are separate files in source: "
                      + ", ".join(show(p) for p in g))
    linked = [g for g in src_groups if len(g) > 1]
    stats["hardlink_groups"] = len(linked)
    stats["hardlinked_paths"] = sum(len(g) for g in linked)
    return diffs.count, stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--max-diffs", type=int, default=20, help="differences to print (default 20)")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON on success")
    ap.add_argument("--owner", action="store_true", help="also compare uid and gid")
    ap.add_argument("--ignore-special", action="store_true",
                    help="skip fifos, sockets and devices in SRC (backups may skip them)")
    ap.add_argument("--no-symlink-mtime", action="store_true",
                    help="do not compare the mtime of symlinks")
    args = ap.parse_args()
    src, dst = os.fsencode(args.src), os.fsencode(args.dst)
    for p in (src, dst):
        if not os.path.lexists(p):
            print(f"treecmp: {show(p)}: no such file or directory", file=sys.stderr)
            return 2
    try:
        ndiff, stats = compare(src, dst, args)
    except OSError as e:
        print(f"treecmp: {e}", file=sys.stderr)
        return 2
    if ndiff:
        print(f"treecmp: {show(src)} and {show(dst)} differ ({ndiff}"
              f"{'+' if ndiff > args.max_diffs else ''} differences)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"identical: {stats['files']} files, {stats['bytes']} bytes, "
              f"{stats['directories']} dirs, {stats['symlinks']} symlinks, "
              f"{stats['hardlink_groups']} hard-link groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
