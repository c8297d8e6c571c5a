#!/usr/bin/env python3
"""Continuous backup: sources watched by the daemon, and `cairn watch`.

3 peers, [watch] quiet_period = "1s". A tree is made a source with `cairn source add` (the
[[source]] table lands in cairn.toml and `cairn source list` shows it). Then, one at a time:
a file is created, modified, renamed and deleted in it, a directory tree is made with `mkdir -p`
and a file inside it, that file is modified, and an excluded file is written. After each change,
with no `cairn backup`, a snapshot of the tree that reflects it must appear within the quiet period
plus slack (polling `cairn snapshots` and `cairn ls`). The last snapshot restores identical to the
tree. `cairn watch` refuses a configured source; `cairn source remove` takes it out of cairn.toml.

`cairn watch OTHER --quiet 1s` (a path that is not a source) backs OTHER up at start and again
after a new file appears in it, printing one line per snapshot, and exits 0 on SIGINT.

The event-queue overflow path is tested at unit level: a real kernel overflow (the watcher
thread held while more than fs.inotify.max_queued_events events are made) in
daemon/watcher_test.cc, and the rescan it triggers with a fake clock in debouncer_test.cc and
sources_test.cc.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

QUIET = 1.0  # seconds, the [watch] quiet_period of the cluster
SLACK = 30.0  # a backup of a small tree on a loaded machine, plus polling
DEADLINE = QUIET + SLACK


def write(path: str, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class WatchTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.make_cluster(3, config={("watch", "quiet_period"): '"1s"',
                                            ("watch", "rescan_interval"): '""'})

    # --- helpers -------------------------------------------------------------------------------
    def snapshots_of(self, path: str) -> list:
        """Snapshots whose paths are exactly [path], oldest first."""
        snaps = [s for s in self.c.json(1, "snapshots") if s.get("paths") == [path]]
        return sorted(snaps, key=lambda s: s["time_ns"])

    def latest_listing(self, path: str) -> dict:
        """{path inside the snapshot: entry} of the newest snapshot of `path` ({} if none)."""
        snaps = self.snapshots_of(path)
        if not snaps:
            return {}
        entries = self.c.json(1, "ls", snaps[-1]["id"], "-r")
        return {harness.json_path(e).decode("utf-8", "replace"): e for e in entries}

    def wait_snapshot(self, path: str, cond, what: str) -> dict:
        """Waits (quiet period + slack) until the newest snapshot of `path` satisfies
        cond(listing); returns that listing."""
        def ok():
            listing = self.latest_listing(path)
            return listing if cond(listing) else None
        return harness.wait_for(ok, DEADLINE, what, interval=0.25)

    # --- tests ---------------------------------------------------------------------------------
    def test_1_source_follows_changes(self):
        c = self.c
        tree = os.path.join(self.tmp, "tree")
        write(os.path.join(tree, "a.txt"), b"first file\n")
        r = c.cli(1, "source add", tree, "--exclude", "*.tmp", "--copies", "2", json_out=True)
        self.assertEqual(r.json["path"], tree)
        self.assertEqual(r.json["copies"], 2)
        sources = c.peers[1].config().get("source", [])
        self.assertEqual([s["path"] for s in sources], [tree], sources)
        self.assertEqual(sources[0]["exclude"], ["*.tmp"])
        listed = c.json(1, "source list")
        self.assertEqual([s["path"] for s in listed], [tree])
        # Again: refused, nothing changes.
        c.cli(1, "source add", tree, expect=1)
        # `cairn watch` on a configured source is refused.
        c.cli(1, "watch", tree, expect=1, timeout=30)

        base = "tree/"
        self.wait_snapshot(tree, lambda l: base + "a.txt" in l, "the first backup of the source")
        self.assertTrue(c.json(1, "source list")[0]["watching"])
        text = c.cli(1, "source list").out
        self.assertIn(tree, text)
        self.assertIn("2 copies", text)

        # Create.
        write(os.path.join(tree, "new.txt"), b"x" * 100)
        self.wait_snapshot(tree, lambda l: base + "new.txt" in l, "a snapshot with new.txt")
        # Modify (another size, so that the listing shows it).
        write(os.path.join(tree, "new.txt"), b"y" * 5000)
        self.wait_snapshot(tree, lambda l: l.get(base + "new.txt", {}).get("size") == 5000,
                           "a snapshot with new.txt modified")
        # Rename.
        os.rename(os.path.join(tree, "new.txt"), os.path.join(tree, "renamed.txt"))
        self.wait_snapshot(tree, lambda l: base + "renamed.txt" in l and base + "new.txt" not in l,
                           "a snapshot with new.txt renamed")
        # Delete.
        os.remove(os.path.join(tree, "renamed.txt"))
        self.wait_snapshot(tree, lambda l: base + "renamed.txt" not in l and base + "a.txt" in l,
                           "a snapshot without renamed.txt")
        # A new directory tree made at once, with a file inside.
        deep = os.path.join(tree, "d1", "d2", "d3")
        os.makedirs(deep)
        write(os.path.join(deep, "deep.txt"), b"deep\n")
        self.wait_snapshot(tree, lambda l: base + "d1/d2/d3/deep.txt" in l,
                           "a snapshot with d1/d2/d3/deep.txt")
        # Changes inside it are watched too.
        with open(os.path.join(deep, "deep.txt"), "ab") as f:
            f.write(b"more\n")
        self.wait_snapshot(tree, lambda l: l.get(base + "d1/d2/d3/deep.txt", {}).get("size") == 10,
                           "a snapshot with deep.txt appended to")
        # Excluded names are not backed up (and a change next to them is).
        write(os.path.join(tree, "scratch.tmp"), b"tmp")
        write(os.path.join(tree, "d1", "after.txt"), b"after")
        listing = self.wait_snapshot(tree, lambda l: base + "d1/after.txt" in l,
                                     "a snapshot with d1/after.txt")
        self.assertNotIn(base + "scratch.tmp", listing)

        # Changes to excluded names start no backup; the next real change is backed up with
        # the directory as it is then, and the newest snapshot is the tree as it is now.
        os.remove(os.path.join(tree, "scratch.tmp"))
        write(os.path.join(tree, "last.txt"), b"last")
        mtime = os.stat(tree).st_mtime_ns
        self.wait_snapshot(tree, lambda l: l.get("tree", {}).get("mtime_ns") == mtime,
                           "a snapshot with last.txt and the tree's new mtime")
        snap = self.snapshots_of(tree)[-1]["id"]
        target = os.path.join(self.tmp, "restored")
        r = c.cli(1, "restore", snap, "--target", target, json_out=True, timeout=120)
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, out = harness.treecmp(tree, os.path.join(target, "tree"))
        self.assertTrue(ok, out)

        # Removed: gone from cairn.toml and from the list; the snapshots stay.
        before = len(self.snapshots_of(tree))
        c.cli(1, "source remove", tree)
        self.assertEqual(c.json(1, "source list"), [])
        self.assertNotIn("source", c.peers[1].config())
        c.cli(1, "source remove", tree, expect=1)
        self.assertGreaterEqual(len(self.snapshots_of(tree)), before)

    def test_2_watch_command(self):
        c = self.c
        other = os.path.join(self.tmp, "other")
        write(os.path.join(other, "one.txt"), b"one\n")
        proc = subprocess.Popen([c.bin, "watch", other, "--dir", c.peers[1].dir, "--quiet", "1s"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=harness._die_with_parent)
        lines, errs = [], []

        def pump(stream, into):
            for line in stream:
                into.append(line.decode("utf-8", "replace"))

        threads = [threading.Thread(target=pump, args=(proc.stdout, lines), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, errs), daemon=True)]
        for t in threads:
            t.start()
        try:
            def saved(n):
                if proc.poll() is not None:
                    raise harness.Fatal(f"cairn watch exited {proc.returncode}: {''.join(errs)}")
                return len([l for l in lines if " saved" in l]) >= n

            harness.wait_for(lambda: saved(1), DEADLINE, "cairn watch's first backup")
            self.assertIn("other/one.txt", self.latest_listing(other))
            write(os.path.join(other, "sub", "two.txt"), b"two\n")
            harness.wait_for(lambda: saved(2), DEADLINE, "cairn watch's backup of a new file")
            self.assertIn("other/sub/two.txt", self.latest_listing(other))
            self.assertIn("snapshot " + self.snapshots_of(other)[-1]["short_id"], "".join(lines))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(20 * harness.TIME_SCALE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("cairn watch did not stop on SIGINT")
            for t in threads:
                t.join(5)
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(code, 0, "".join(errs))


if __name__ == "__main__":
    harness.main()
