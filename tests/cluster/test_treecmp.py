#!/usr/bin/env python3
"""Self-test of scripts/treecmp.py, the comparer every cluster test relies on: a copy made with
`cp -a` is identical, and each kind of difference a restore could get wrong is reported."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TREECMP = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "treecmp.py")


def run(src, dst, *flags):
    cp = subprocess.run([sys.executable, TREECMP, *flags, src, dst], capture_output=True)
    return cp.returncode, (cp.stdout + cp.stderr).decode("utf-8", "replace")


class TreecmpTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-treecmp-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.src = os.path.join(self.tmp, "src")
        s = self.src
        os.makedirs(os.path.join(s, "dir", "sub"))
        os.makedirs(os.path.join(s, "empty"))
        with open(os.path.join(s, "file"), "wb") as f:
            f.write(b"x" * 3_000_000 + b"end")
        with open(os.path.join(s, "dir", "small"), "wb") as f:
            f.write(b"small")
        open(os.path.join(s, "dir", "sub", "empty_file"), "wb").close()
        with open(os.path.join(os.fsencode(s), b"caf\xe9"), "wb") as f:
            f.write(b"raw name")
        os.link(os.path.join(s, "dir", "small"), os.path.join(s, "dir", "sub", "small_link"))
        os.symlink("dir/small", os.path.join(s, "symlink"))
        os.symlink("/nowhere", os.path.join(s, "dangling"))
        os.chmod(os.path.join(s, "file"), 0o640)
        for p in ["file", "dir/small", "dir/sub", "dir", "empty", ""]:
            os.utime(os.path.join(s, p), ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
        os.utime(os.path.join(s, "symlink"), ns=(1, 2), follow_symlinks=False)
        self.dst = os.path.join(self.tmp, "dst")
        self.assertEqual(subprocess.call(["cp", "-a", s, self.dst]), 0)

    def p(self, rel):
        return os.path.join(self.dst, rel)

    def assert_differ(self, needle):
        rc, out = run(self.src, self.dst)
        self.assertEqual(rc, 1, out)
        self.assertIn(needle, out)

    def test_copy_is_identical(self):
        rc, out = run(self.src, self.dst)
        self.assertEqual(rc, 0, out)
        self.assertIn("identical: 5 files, 3000021 bytes, 4 dirs, 2 symlinks, 1 hard-link groups",
                      out)

    def test_content(self):
        with open(self.p("file"), "r+b") as f:
            f.seek(2_999_999)
            f.write(b"y")
        os.utime(self.p("file"), ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
        self.assert_differ("content differs from byte 2999999")

    def test_size(self):
        with open(self.p("dir/small"), "ab") as f:
            f.write(b"!")
        self.assert_differ("size 5 in source, 6 in destination")

    def test_mode(self):
        os.chmod(self.p("file"), 0o644)
        self.assert_differ("mode 0640 in source, 0644 in destination")

    def test_mtime_ns(self):
        os.utime(self.p("file"), ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_788))
        self.assert_differ("mtime 1500000000123456789 ns in source, 1500000000123456788 ns")

    def test_dir_mtime(self):
        os.utime(self.p("empty"), ns=(5, 5))
        self.assert_differ("empty: mtime")

    def test_symlink_target_and_mtime(self):
        os.unlink(self.p("symlink"))
        os.symlink("dir/other", self.p("symlink"))
        os.utime(self.p("symlink"), ns=(1, 2), follow_symlinks=False)
        self.assert_differ("symlink target 'dir/small' in source, 'dir/other'")
        os.unlink(self.p("symlink"))
        os.symlink("dir/small", self.p("symlink"))
        self.assert_differ("symlink: mtime")

    def test_type(self):
        os.unlink(self.p("symlink"))
        with open(self.p("symlink"), "wb") as f:
            f.write(b"small")
        self.assert_differ("type symlink in source, file in destination")

    def test_missing_and_extra(self):
        os.unlink(os.path.join(os.fsencode(self.dst), b"caf\xe9"))
        open(self.p("extra"), "wb").close()
        rc, out = run(self.src, self.dst)
        self.assertEqual(rc, 1)
        self.assertIn("caf\\xe9: missing in destination", out)
        self.assertIn("extra: extra in destination", out)

    def test_hard_link_broken(self):
        os.unlink(self.p("dir/sub/small_link"))
        shutil.copy2(self.p("dir/small"), self.p("dir/sub/small_link"))
        os.utime(self.p("dir/sub"), ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
        self.assert_differ("hard links in source not linked alike")

    def test_hard_link_extra(self):
        os.unlink(self.p("file"))
        os.link(self.p("dir/sub/empty_file"), self.p("file"))
        rc, out = run(os.path.join(self.dst, "dir"), os.path.join(self.dst, "dir"))
        self.assertEqual(rc, 0, out)
        rc, out = run(self.src, self.dst)
        self.assertIn("separate files in source", out)

    def test_missing_root(self):
        rc, out = run(self.src, os.path.join(self.tmp, "nope"))
        self.assertEqual(rc, 2, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
