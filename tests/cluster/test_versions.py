#!/usr/bin/env python3
"""Versions: `cairn versions`, `cairn restore --at`, `cairn diff`, `cairn find`.

VersionsTest (3 peers: home 1, 2 copies): a tree is backed up three times; docs/report.txt has
new content (and size) each time. Between the first and second backup these changes are made
as well: a file added, a file removed, a file's mode changed, a directory with a file added.

- `cairn versions data/docs/report.txt` lists 3 versions, one per snapshot, with distinct
  content hashes and the sizes written.
- `cairn restore --at T PATH` restores each version's bytes for T at a snapshot's time and in
  the middle of each interval (RFC 3339 with ns), after the last one ("@unix-seconds" and
  local "YYYY-MM-DD HH:MM:SS"), and fails (exit 1) before the first.
- `cairn diff S1 S2` lists exactly the changes made (text and --json); S2 to S3 only the
  report.
- `cairn find '*.txt'` finds the report in every snapshot and the added file in two.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB = 1 << 10


def write(path: str, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def rfc3339_ns(t_ns: int) -> str:
    secs, ns = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % ns


class VersionsTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = random.Random(cls.seed)
        cls.c = cls.make_cluster(3)
        cls.src = os.path.join(cls.tmp, "data")
        cls.report = os.path.join(cls.src, "docs", "report.txt")
        cls.contents = [rng.randbytes(300 * KiB), rng.randbytes(120 * KiB),
                        b"third version\n" * 1000]
        write(os.path.join(cls.src, "common.bin"), rng.randbytes(200 * KiB))
        write(os.path.join(cls.src, "old.txt"), b"to be removed\n")
        write(os.path.join(cls.src, "run.sh"), b"#!/bin/sh\necho hi\n")
        os.chmod(os.path.join(cls.src, "run.sh"), 0o644)
        for d in range(10):  # an unchanged subtree
            write(os.path.join(cls.src, "stable", f"d{d}", "f.bin"), rng.randbytes(4 * KiB))
        cls.snaps = []
        for v, content in enumerate(cls.contents):
            write(cls.report, content)
            if v == 1:  # the changes diff must list, besides the report
                write(os.path.join(cls.src, "added.txt"), b"new file\n")
                os.remove(os.path.join(cls.src, "old.txt"))
                os.chmod(os.path.join(cls.src, "run.sh"), 0o755)
                write(os.path.join(cls.src, "newdir", "inner.bin"), rng.randbytes(5 * KiB))
            b = cls.c.json(1, "backup", cls.src, timeout=300)
            cls.snaps.append(b["snapshot_id"])
        listed = {s["id"]: s for s in cls.c.json(1, "snapshots")}
        cls.times = [listed[s]["time_ns"] for s in cls.snaps]
        assert cls.times == sorted(cls.times), cls.times

    def restore_at(self, at: str, tag: str, expect=0):
        target = os.path.join(self.tmp, f"restore_at_{tag}")
        r = self.c.cli(1, "restore", "--at", at, self.report, "--target", target, expect=expect,
                       timeout=300)
        if expect != 0:
            return r, None
        with open(os.path.join(target, "report.txt"), "rb") as f:
            return r, f.read()

    def test_versions_lists_three(self):
        r = self.c.json(1, "versions", self.report)
        versions = r["versions"]
        self.assertEqual(len(versions), 3, r)
        self.assertEqual([v["snapshot_id"] for v in versions], self.snaps)
        self.assertEqual([v["size"] for v in versions], [len(c) for c in self.contents])
        self.assertEqual(len({v["content_hash"] for v in versions}), 3, r)
        self.assertTrue(all(v["type"] == "file" and v["snapshots"] == 1 for v in versions), r)
        # An unchanged file is one version seen in all three snapshots.
        common = self.c.json(1, "versions", os.path.join(self.src, "common.bin"))["versions"]
        self.assertEqual(len(common), 1, common)
        self.assertEqual(common[0]["snapshots"], 3, common)
        self.assertEqual(common[0]["last_snapshot_id"], self.snaps[2], common)
        text = self.c.cli(1, "versions", self.report).out
        self.assertIn("3 versions of", text)
        for s in self.snaps:
            self.assertIn(s[:8], text)
        missing = self.c.cli(1, "versions", os.path.join(self.src, "nope.txt"), expect=1)
        self.assertIn("nope.txt", missing.err)

    def test_restore_at_each_interval(self):
        for i, t in enumerate(self.times):
            end = self.times[i + 1] if i + 1 < len(self.times) else t + 10 * 60 * 10**9
            for k, at in enumerate((t, t + (end - t) // 2, end - 1)):
                r, got = self.restore_at(rfc3339_ns(at), f"{i}_{k}")
                self.assertEqual(got, self.contents[i],
                                 f"restore --at {rfc3339_ns(at)} gave the wrong version ({r!r})")
        # Other notations, after the last snapshot: the third version.
        after = self.times[2] // 10**9 + 2
        _, got = self.restore_at(f"@{after}", "unix")
        self.assertEqual(got, self.contents[2])
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(after))
        _, got = self.restore_at(local, "local")
        self.assertEqual(got, self.contents[2])
        # Before the first snapshot: nothing to restore.
        r, _ = self.restore_at(rfc3339_ns(self.times[0] - 1), "before", expect=1)
        self.assertIn("no snapshot", r.err)
        self.c.cli(1, "restore", "--at", "not a time", self.report, "--target",
                   os.path.join(self.tmp, "x"), expect=2)

    def test_diff_lists_exactly_the_changes(self):
        r = self.c.json(1, "diff", self.snaps[0], self.snaps[1])
        got = {(c["change"], harness.json_path(c)) for c in r["changes"]}
        want = {
            ("modified", b"data/docs/report.txt"),
            ("added", b"data/added.txt"),
            ("removed", b"data/old.txt"),
            ("modified", b"data/run.sh"),
            ("added", b"data/newdir"),
            ("added", b"data/newdir/inner.bin"),
        }
        self.assertEqual(got, want, r)
        self.assertEqual(len(r["changes"]), len(want), r)
        by_path = {harness.json_path(c): c for c in r["changes"]}
        report = by_path[b"data/docs/report.txt"]
        self.assertEqual((report["size_before"], report["size_after"]),
                         (len(self.contents[0]), len(self.contents[1])))
        self.assertTrue(report["content_changed"])
        run = by_path[b"data/run.sh"]
        self.assertEqual((run["mode_before"], run["mode_after"]), (0o644, 0o755))
        self.assertFalse(run["content_changed"])
        self.assertEqual((r["added"], r["removed"], r["modified"]), (3, 1, 2), r)
        self.assertGreaterEqual(r["identical_subtrees"], 1, r)

        text = self.c.cli(1, "diff", self.snaps[0][:8], self.snaps[1][:8]).out
        lines = {ln.split("  (")[0] for ln in text.splitlines()
                 if ln[:1] in ("+", "-", "M")}
        src = self.src
        self.assertEqual(report["source_path"], self.report)
        self.assertEqual(lines, {f"M    {src}/docs/report.txt", f"+    {src}/added.txt",
                                 f"-    {src}/old.txt", f"M    {src}/run.sh",
                                 f"+    {src}/newdir/", f"+    {src}/newdir/inner.bin"}, text)
        self.assertIn("3 added", text)
        self.assertIn("1 removed", text)
        self.assertIn("2 modified", text)

        later = self.c.json(1, "diff", self.snaps[1], self.snaps[2])
        self.assertEqual([(c["change"], harness.json_path(c)) for c in later["changes"]],
                         [("modified", b"data/docs/report.txt")], later)
        same = self.c.json(1, "diff", self.snaps[2], "latest")
        self.assertEqual(same["changes"], [])
        self.c.cli(1, "diff", self.snaps[0], "ffffffffff", expect=1)

    def test_find(self):
        found = self.c.json(1, "find", "*.txt")
        got = sorted((f["snapshot_id"], harness.json_path(f)) for f in found)
        src = self.src.encode()
        want = []
        for i, s in enumerate(self.snaps):
            want.append((s, src + b"/docs/report.txt"))
            want.append((s, src + b"/added.txt" if i > 0 else src + b"/old.txt"))
        self.assertEqual(got, sorted(want), found)
        self.assertEqual(self.c.json(1, "find", "*.nothing"), [])
        text = self.c.cli(1, "find", "inner.*").out
        self.assertIn("2 matches in 2 snapshots", text)


if __name__ == "__main__":
    harness.main()
