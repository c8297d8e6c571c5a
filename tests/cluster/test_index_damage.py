#!/usr/bin/env python3
"""A damaged index.db (docs/operations.md "When the index is damaged").

A cluster of 4 peers (2 copies, small chunks). Peer 1 backs up two trees (the second with 3
copies), peer 2 one tree, so every peer holds blobs for others.

Home peer: for each kind of damage — index.db truncated to zero bytes, deleted, or a page of
garbage written into its middle — peer 1 is stopped, its index.db damaged and the peer started
again. It must say what is wrong (an error line in its log naming the problem, `cairn status`
naming it), keep the damaged file aside (index.db.damaged-TIMESTAMP, byte for byte the damaged
file), rebuild its catalog from the peers by itself, and then list every snapshot and restore
each byte-identically. `cairn index rebuild` run by hand afterwards also succeeds (and adds
nothing new).

Storage peer: peer 3's index.db is truncated to zero while it holds blobs of peers 1 and 2.
After its restart it rebuilds its registry from its segments (log line), holds and counts the
same blobs, and `cairn check` on peers 1 and 2 finds nothing below target.
"""

import glob
import os
import random
import sqlite3
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB = 1 << 10
SMALL_CHUNKS = dict(chunk_min="64K", chunk_avg="128K", chunk_max="512K")
PAGE = 4096


def write(path: str, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def quick_check_ok(path: str) -> bool:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
        return rows == [("ok",)]
    except sqlite3.DatabaseError:
        return False


def garble_a_page(path: str, rng: random.Random) -> int:
    """Writes a page of random bytes over a page in the middle of the file that SQLite then
    finds damaged (a free page would not be); returns its offset."""
    size = os.path.getsize(path)
    pages = size // PAGE
    assert pages >= 8, f"index.db has only {pages} pages"
    middle = pages // 2
    for page in sorted(range(1, pages), key=lambda p: abs(p - middle)):
        with open(path, "r+b") as f:
            f.seek(page * PAGE)
            before = f.read(PAGE)
            f.seek(page * PAGE)
            f.write(rng.randbytes(PAGE))
        if not quick_check_ok(path):
            return page * PAGE
        with open(path, "r+b") as f:
            f.seek(page * PAGE)
            f.write(before)
    raise AssertionError("no page of index.db is checked by quick_check")


class IndexDamageTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = random.Random(cls.seed)
        cls.c = cls.make_cluster(4, **SMALL_CHUNKS)
        cls.data1 = os.path.join(cls.tmp, "data1")
        write(os.path.join(cls.data1, "big.bin"), rng.randbytes(1200 * KiB))
        write(os.path.join(cls.data1, "docs", "notes.txt"), b"notes\n" * 5000)
        write(os.path.join(cls.data1, "docs", "empty"), b"")
        os.symlink("big.bin", os.path.join(cls.data1, "link"))
        cls.data2 = os.path.join(cls.tmp, "data2")
        write(os.path.join(cls.data2, "random.bin"), rng.randbytes(700 * KiB))
        for i in range(40):
            write(os.path.join(cls.data2, "many", f"f{i:02d}.txt"), rng.randbytes(100 + 97 * i))
        cls.sources = {}
        b1 = cls.c.json(1, "backup", cls.data1, "--copies", "2", timeout=300)
        cls.sources[b1["snapshot_id"]] = cls.data1
        b2 = cls.c.json(1, "backup", cls.data2, "--copies", "3", timeout=300)
        cls.sources[b2["snapshot_id"]] = cls.data2
        cls.data_p2 = os.path.join(cls.tmp, "data-p2")
        write(os.path.join(cls.data_p2, "p2.bin"), rng.randbytes(600 * KiB))
        cls.c.json(2, "backup", cls.data_p2, "--copies", "2", timeout=300)

    def index_status(self, peer: int) -> dict:
        r = self.c.cli(peer, "status", json_out=True, expect=(0, 3))
        return r.json.get("index") or {}

    def restore_all(self, tag: str):
        c = self.c
        snaps = c.json(1, "snapshots")
        self.assertEqual(sorted(s["id"] for s in snaps), sorted(self.sources), snaps)
        for snap_id, src in self.sources.items():
            dest = os.path.join(self.tmp, f"restore-{tag}-{snap_id[:8]}")
            res = c.json(1, "restore", snap_id[:12], "--target", dest, timeout=300)
            self.assertEqual(res.get("errors", []), [], res)
            ok, out = harness.treecmp(src, os.path.join(dest, os.path.basename(src)))
            self.assertTrue(ok, f"{tag}: restore of {snap_id} differs (seed {self.seed}):\n{out}")

    def damage_and_restart(self, kind: str, rng: random.Random):
        c = self.c
        home = c.peers[1]
        self.assertEqual(home.stop(), 0)
        index = os.path.join(home.dir, "index.db")
        self.assertFalse(os.path.exists(index + "-wal") and os.path.getsize(index + "-wal") > 0,
                         "a clean stop leaves no WAL behind")
        before_aside = set(glob.glob(index + ".damaged-*"))
        if kind == "truncated":
            os.truncate(index, 0)
            expect_problem = "index.db is empty (0 bytes)"
        elif kind == "deleted":
            os.remove(index)
            expect_problem = "index.db is missing"
        else:
            garble_a_page(index, rng)
            expect_problem = "index.db is damaged"
        damaged = None
        if os.path.exists(index):
            with open(index, "rb") as f:
                damaged = f.read()
        log_before = len(home.log_text())
        home.start()
        c.wait_api(1)

        # It says what is wrong: in its log, and in `cairn status`.
        harness.wait_for(lambda: expect_problem in home.log_text()[log_before:], 30,
                         f"peer 1 logs '{expect_problem}'")
        harness.wait_for(
            lambda: "rebuilding this peer's catalog from the peers" in home.log_text()[log_before:],
            30, "peer 1 logs that it rebuilds its catalog")
        st = self.index_status(1)
        self.assertIn(st.get("state"), ("rebuilding", "rebuilt"), st)
        self.assertIn(expect_problem, st.get("problem") or "", st)
        if st.get("state") == "rebuilding":
            # Meanwhile commands that need the catalog say why they cannot run.
            r = c.cli(1, "snapshots", json_out=False, expect=None)
            if r.rc != 0:
                self.assertIn("being rebuilt from the peers", r.err, repr(r))

        # The damaged file is kept aside, as it was.
        aside = sorted(set(glob.glob(index + ".damaged-*")) - before_aside)
        aside = [a for a in aside if not a.endswith("-wal")]
        if damaged is None:
            self.assertEqual(aside, [])
            self.assertIsNone(st.get("kept_aside"), st)
        else:
            self.assertEqual(len(aside), 1, aside)
            self.assertEqual(st.get("kept_aside"), aside[0], st)
            with open(aside[0], "rb") as f:
                self.assertEqual(f.read(), damaged, "the damaged file was changed")

        # The catalog is rebuilt from the peers by itself.
        harness.wait_for(lambda: self.index_status(1).get("state") in ("rebuilt", "failed"), 180,
                         "peer 1 rebuilds its index")
        st = self.index_status(1)
        self.assertEqual(st.get("state"), "rebuilt", st)
        self.assertTrue(st["rebuilt"]["complete"], st)
        self.assertEqual(st["rebuilt"]["snapshots"], len(self.sources), st)
        self.assertIn("index: rebuilt from peer(s)", home.log_text()[log_before:])
        self.restore_all(kind)

    def test_1_home_peer_index_damage(self):
        rng = random.Random(self.seed)
        for kind in ("truncated", "deleted", "garbage"):
            with self.subTest(kind=kind):
                self.damage_and_restart(kind, rng)
        # By hand: the same rebuild, adding nothing the catalog lacks.
        r = self.c.cli(1, "index rebuild", json_out=True, timeout=300)
        self.assertTrue(r.json["complete"], r.json)
        self.assertEqual(sorted(s["id"] for s in r.json["snapshots"]), sorted(self.sources))
        text = self.c.cli(1, "index rebuild", timeout=300)
        self.assertIn("rebuilt the index from peer(s)", text.out)
        check = self.c.check(1)
        self.assertEqual(check.json["lost"], 0, check.json)

    def test_2_storage_peer_keeps_serving(self):
        c = self.c
        c.wait_all_alive(60)
        for owner in (1, 2):
            check = c.check(owner)
            self.assertEqual(check.json["below_target"], 0, check.json)
        storage = c.peers[3]
        before = c.json(3, "status")
        held_before = harness.held_blobs(storage.dir)
        owners = {key[0] for key in held_before.values()}
        self.assertTrue({1, 2} <= owners, f"peer 3 holds blobs of {owners}")
        self.assertEqual(storage.stop(), 0)
        os.truncate(os.path.join(storage.dir, "index.db"), 0)
        log_before = len(storage.log_text())
        storage.start()
        c.wait_api(3)
        harness.wait_for(
            lambda: "the registry of held blobs was empty" in storage.log_text()[log_before:], 30,
            "peer 3 logs that it rebuilt its registry")
        # Its own catalog was lost too (it has no backups): the rebuild finds nothing to do.
        harness.wait_for(lambda: self.index_status(3).get("state") in ("rebuilt", "failed"), 180,
                         "peer 3 finishes its index rebuild")
        self.assertEqual(self.index_status(3).get("state"), "rebuilt")
        self.assertIn("index: nothing to rebuild", storage.log_text()[log_before:])
        after = c.json(3, "status")
        self.assertEqual(after["blobs"], before["blobs"], (before, after))
        self.assertEqual(after["used"], before["used"], (before, after))
        self.assertEqual(harness.held_blobs(storage.dir), held_before)
        c.wait_all_alive(60)
        for owner in (1, 2):
            check = c.check(owner)
            self.assertEqual(check.rc, 0, repr(check))
            self.assertEqual(check.json["below_target"], 0, check.json)
            self.assertEqual(check.json["lost"], 0, check.json)
        self.restore_all("after-storage")


if __name__ == "__main__":
    harness.main()
