#!/usr/bin/env python3
"""`cairn mount`: a read-only FUSE view of the snapshots, read on demand through the
daemon's GET /v1/read.

MountTest (3 peers, 2 copies, small chunks): a tree with nested directories, a relative and a
dangling symlink, an empty file, a multi-chunk file, a hard link pair, modes 0600/0755 and a
name that is not UTF-8 is backed up; `cairn mount` runs in the background until `latest`
appears; `diff -r --no-dereference` finds no difference between mount/latest/data and the
source, symlink targets read back equal (os.readlink), and every entry's mode, size, mtime (ns),
uid and gid match. Writes fail with EROFS. A second backup appears in the mounted view without
remounting (and `latest` moves to it, the first snapshot is unchanged). GET /v1/read answers
bytes and 400 for bad offsets. SIGINT unmounts: exit 0 and the directory is no longer a mount
point. A second mount is unmounted with `fusermount3 -u` and exits 0 as well.

Skipped (printed "SKIP: ...") only when /dev/fuse is missing.
"""

import base64
import errno
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
SMALL_CHUNKS = dict(chunk_min="64K", chunk_avg="128K", chunk_max="512K")
NON_UTF8 = b"caf\xe9.txt"
NAME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-[0-9a-f]{8,64})?$")


def write(path, data: bytes, mode=None, mtime_ns=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def make_tree(root: str, rng: random.Random):
    j = os.path.join
    t0 = 1_700_000_000_123_456_789
    write(j(root, "a", "b", "c", "deep.txt"), b"deep down\n" * 100, mtime_ns=t0 + 1)
    write(j(root, "a", "b", "mid.txt"), rng.randbytes(10 * KiB), mode=0o600)
    write(j(root, "a", "run.sh"), b"#!/bin/sh\necho hi\n", mode=0o755, mtime_ns=t0 + 2)
    os.makedirs(j(root, "a", "empty_dir"))
    write(j(root, "empty"), b"", mtime_ns=t0 + 3)
    # Multi-chunk (64K..512K chunks) and larger than the mount's 1 MiB read blocks; random,
    # then repeated text, so the chunk boundaries fall at odd offsets.
    big = rng.randbytes(2 * MiB + 12345) + b"the quick brown fox\n" * 40000
    write(j(root, "big.bin"), big, mtime_ns=t0 + 4)
    write(os.fsencode(j(root, "names")) + b"/" + NON_UTF8, b"latin-1 name\n")
    os.symlink("a/b/c/deep.txt", j(root, "link"))
    os.symlink("/nonexistent/target", j(root, "dangling"))
    write(j(root, "hard1"), b"same inode\n")
    os.link(j(root, "hard1"), j(root, "a", "hard2"))
    os.utime(j(root, "a", "b"), ns=(t0 + 5, t0 + 5))
    return big


def expected_names(snaps: list) -> list:
    """The mount's directory names for `cairn snapshots --json` (same order): local time, plus
    the short id when several snapshots share a second."""
    names = [time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(s["time_ns"] // 10**9))
             for s in snaps]
    return [n + "-" + s["id"][:8] if names.count(n) > 1 else n for n, s in zip(names, snaps)]


def same_metadata(case, src: bytes, mounted: bytes):
    """Type, permission bits, size, mtime (ns), uid and gid of every entry under src equal those
    under mounted (hard links are plain files in the mount: nlink is not compared)."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            a = os.path.join(dirpath, name)
            b = os.path.join(mounted, os.path.relpath(a, src))
            sa, sb = os.lstat(a), os.lstat(b)
            what = os.fsdecode(os.path.relpath(a, src))
            if os.path.islink(a):
                case.assertTrue(os.path.islink(b), f"{what} is a symlink")
            else:
                case.assertEqual(sa.st_mode, sb.st_mode, f"mode of {what}")
            if not os.path.isdir(a) or os.path.islink(a):
                case.assertEqual(sa.st_size, sb.st_size, f"size of {what}")
            if not os.path.islink(a):
                case.assertEqual(sa.st_mtime_ns, sb.st_mtime_ns, f"mtime of {what}")
            case.assertEqual((sa.st_uid, sa.st_gid), (sb.st_uid, sb.st_gid), f"owner of {what}")
            if os.path.islink(a):
                case.assertEqual(os.readlink(a), os.readlink(b), f"symlink target of {what}")
            count += 1
    case.assertGreater(count, 10)


class MountTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.make_cluster(3, **SMALL_CHUNKS)
        rng = random.Random(cls.seed)
        cls.src = os.path.join(cls.tmp, "data")
        cls.big = make_tree(cls.src, rng)
        b = cls.c.json(1, "backup", cls.src, timeout=300)
        cls.snap = b["snapshot_id"]
        cls.mnt = os.path.join(cls.tmp, "mnt")
        os.makedirs(cls.mnt)

    def start_mount(self, tag: str) -> subprocess.Popen:
        """`cairn mount` in the background (stderr to a log file); waits until `latest`."""
        log_path = os.path.join(self.tmp, f"mount-{tag}.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen([self.c.bin, "mount", "--dir", self.c.peers[1].dir, self.mnt],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=harness._die_with_parent)
        log.close()
        self.addCleanup(self.stop_mount, proc, log_path)
        latest = os.path.join(self.mnt, "latest")

        def ready():
            if proc.poll() is not None:
                with open(log_path, "rb") as f:
                    raise harness.Fatal(f"cairn mount exited with {proc.returncode}: "
                                        f"{harness.show(f.read())}")
            return os.path.islink(latest)

        harness.wait_for(ready, 30, "the mount to show latest")
        return proc

    def stop_mount(self, proc: subprocess.Popen, log_path: str):
        """Cleanup: never leave a mount behind, whatever happened."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        if proc.returncode != 0:
            with open(log_path, "rb") as f:
                print(f"cairn mount log:\n{harness.show(f.read())}", file=sys.stderr)

    def diff(self, a: str, b: str, *extra) -> subprocess.CompletedProcess:
        return subprocess.run(["diff", "-r", "--no-dereference", *extra, a, b],
                              capture_output=True, timeout=120)

    def snapshot_dirs(self) -> list:
        return sorted(os.listdir(os.path.join(self.mnt, "snapshots")))

    def test_1_browse_read_and_sigint(self):
        proc = self.start_mount("sigint")
        self.assertTrue(os.path.ismount(self.mnt))
        dirs = self.snapshot_dirs()
        self.assertEqual(dirs, expected_names(self.c.json(1, "snapshots")))
        self.assertRegex(dirs[0], NAME_RE)
        self.assertEqual(os.readlink(os.path.join(self.mnt, "latest")), f"snapshots/{dirs[0]}")
        self.assertEqual(sorted(os.listdir(self.mnt)), ["latest", "snapshots"])
        self.assertEqual(os.listdir(os.path.join(self.mnt, "latest")), ["data"])

        mounted = os.path.join(self.mnt, "latest", "data")
        d = self.diff(self.src, mounted)
        self.assertEqual(d.returncode, 0, f"diff -r (seed {self.seed}):\n"
                         f"{harness.show(d.stdout)}{harness.show(d.stderr)}")
        same_metadata(self, os.fsencode(self.src), os.fsencode(mounted))
        self.assertEqual(os.readlink(os.path.join(mounted, "link")), "a/b/c/deep.txt")
        self.assertEqual(os.readlink(os.path.join(mounted, "dangling")), "/nonexistent/target")
        with open(os.path.join(mounted, "link"), "rb") as f:  # followed inside the mount
            self.assertEqual(f.read(), b"deep down\n" * 100)
        with open(os.path.join(os.fsencode(mounted), b"names", NON_UTF8), "rb") as f:
            self.assertEqual(f.read(), b"latin-1 name\n")

        # Ranged reads at odd offsets (across chunk and block boundaries) and at the end.
        with open(os.path.join(mounted, "big.bin"), "rb") as f:
            for off, n in [(0, 10), (MiB - 3, 7), (2 * MiB + 12340, 100), (len(self.big) - 5, 50),
                           (len(self.big), 10), (123457, 300 * KiB)]:
                f.seek(off)
                self.assertEqual(f.read(n), self.big[off:off + n], f"offset {off} length {n}")

        # Read-only.
        for attempt in (lambda: open(os.path.join(mounted, "new.txt"), "wb"),
                        lambda: open(os.path.join(mounted, "empty"), "r+b"),
                        lambda: os.mkdir(os.path.join(mounted, "newdir")),
                        lambda: os.unlink(os.path.join(mounted, "empty")),
                        lambda: os.chmod(os.path.join(mounted, "empty"), 0o777)):
            with self.assertRaises(OSError) as cm:
                attempt()
            self.assertEqual(cm.exception.errno, errno.EROFS, cm.exception)

        # A new snapshot shows up while mounted; the old one stays as it was.
        write(os.path.join(self.src, "added.txt"), b"new in the second snapshot\n")
        second = self.c.json(1, "backup", self.src, timeout=300)["snapshot_id"]
        snaps = self.c.json(1, "snapshots")
        self.assertEqual([s["id"] for s in snaps], [self.snap, second])
        names = expected_names(snaps)
        harness.wait_for(lambda: self.snapshot_dirs() == sorted(names), 30,
                         f"the mount to list snapshots {names}")
        harness.wait_for(lambda: os.readlink(os.path.join(self.mnt, "latest")) ==
                         f"snapshots/{names[1]}", 30, "latest to move to the second snapshot")
        d = self.diff(self.src, os.path.join(self.mnt, "latest", "data"))
        self.assertEqual(d.returncode, 0, harness.show(d.stdout + d.stderr))
        old = os.path.join(self.mnt, "snapshots", names[0], "data")
        self.assertFalse(os.path.exists(os.path.join(old, "added.txt")))
        d = self.diff(self.src, old, "-x", "added.txt")
        self.assertEqual(d.returncode, 0, harness.show(d.stdout + d.stderr))

        # GET /v1/read directly: bytes, and 400 for bad offsets.
        path = base64.b64encode(os.fsencode(os.path.join("data", "big.bin"))).decode()
        q = f"/v1/read?snapshot={self.snap}&path_base64={path}"
        status, body = self.c.http(1, "GET", f"{q}&offset=1000&length=5000")
        self.assertEqual(status, 200)
        self.assertEqual(body, self.big[1000:6000])
        for bad in ("offset=-1&length=10", "offset=abc&length=10", "length=10",
                    f"offset={len(self.big) + 1}&length=1"):
            status, body = self.c.http(1, "GET", f"{q}&{bad}")
            self.assertEqual(status, 400, (bad, body))
            self.assertEqual(body["error"]["code"], "INVALID_ARGUMENT", (bad, body))
        status, body = self.c.http(1, "GET", f"/v1/read?snapshot={self.snap}&path=data/a"
                                   "&offset=0&length=1")
        self.assertEqual(status, 400, body)  # a directory

        # SIGINT: clean unmount, exit 0.
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(30), 0)
        self.assertFalse(os.path.ismount(self.mnt))

    def test_2_fusermount_unmounts(self):
        proc = self.start_mount("fusermount")
        with open(os.path.join(self.mnt, "latest", "data", "a", "b", "c", "deep.txt"), "rb") as f:
            self.assertEqual(f.read(), b"deep down\n" * 100)
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, harness.show(r.stderr))
        self.assertEqual(proc.wait(30), 0)
        self.assertFalse(os.path.ismount(self.mnt))

    def test_3_without_a_running_peer_it_fails_cleanly(self):
        r = self.c.run_raw(["mount", "--dir", os.path.join(self.tmp, "nope"), self.mnt])
        self.assertEqual(r.rc, 1, repr(r))
        self.assertFalse(os.path.ismount(self.mnt))


if __name__ == "__main__":
    if not os.path.exists("/dev/fuse"):
        print("SKIP: /dev/fuse is missing (no FUSE in this environment)")
        sys.exit(0)
    if shutil.which("fusermount3") is None:
        print("note: fusermount3 not found; test_2 will fail", file=sys.stderr)
    harness.main()
