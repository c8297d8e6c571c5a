#!/usr/bin/env python3
"""Degraded is not failed (docs/operations.md "When the cluster is too small"): with 3 peers,
`--copies 3` from peer 1 can place only 2 copies (never on the home peer), so backup exits 3
naming the shortfall, `status` reports chunks below target (exit 3), and the data is still
restorable in full.

Then targets (docs/operations.md "Redundancy targets"): `--copies 5` on the same 3 peers warns
that only 2 other storage peers are known; check and repair say so once per target, not once per
chunk; after a `--copies 2` backup of the same data and a `forget` of every snapshot that asked
for more, check, repair and status are healthy again (exit 0): the targets were lowered.
"""

import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def make_tree(root: str, rng: random.Random):
    os.makedirs(os.path.join(root, "d", "e"))
    for k in range(12):
        sub = ["", "d", "d/e"][k % 3]
        with open(os.path.join(root, sub, f"file{k}"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(1, 3_000_000)))
    os.symlink("d/file1", os.path.join(root, "link"))
    os.link(os.path.join(root, "file0"), os.path.join(root, "d", "hardlink0"))


class DegradedTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = os.path.join(cls.tmp, "data")
        make_tree(cls.src, random.Random(cls.seed))
        cls.c = cls.make_cluster(3)

    def test_1_copies_3_on_3_peers_is_degraded(self):
        r = self.c.cli(1, "backup", self.src, "--copies", "3", json_out=True, expect=3)
        b = r.json
        self.assertIsInstance(b, dict, repr(r))
        self.assertIs(b["degraded"], True, b)
        self.assertEqual(b["copies"], 3, b)
        self.assertGreater(b["chunks_below_target"], 0, b)
        self.assertEqual(b["errors"], [], b)
        self.assertTrue(b["snapshot_id"], b)

        # The human summary says what is short.
        r = self.c.cli(1, "backup", self.src, "--copies", "3", expect=3)
        text = r.out + r.err
        self.assertRegex(text, r"degraded: \d+ chunks? below 3 cop", repr(r))

        status = self.c.cli(1, "status", json_out=True, expect=3)
        self.assertGreater(status.json["chunks_below_target"], 0, repr(status))
        self.assertLess(status.json["chunks_at_target"], status.json["chunks"], repr(status))

        # Still restorable, byte for byte.
        target = os.path.join(self.tmp, "restore")
        rr = self.c.cli(1, "restore", b["snapshot_id"], "--target", target, json_out=True)
        self.assertEqual(rr.json["errors"], [])
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"), "--owner")
        self.assertTrue(ok, out)

    def test_2_copies_2_is_fine(self):
        # Two other peers are enough for 2 copies: exit 0, not degraded.
        sub = os.path.join(self.src, "d")
        b = self.c.json(1, "backup", sub, "--copies", "2")
        self.assertIs(b["degraded"], False, b)
        self.assertEqual(b["chunks_below_target"], 0, b)
        target = os.path.join(self.tmp, "restore2")
        self.c.cli(1, "restore", b["short_id"], "--target", target)
        ok, out = harness.treecmp(sub, os.path.join(target, "d"), "--owner")
        self.assertTrue(ok, out)

    def test_3_forgetting_copies_5_lowers_the_targets(self):
        want = ("--copies 5 asks for 5 copies but only 2 other storage peers are known; chunks "
                "will stay below target until more peers join")
        b = self.c.cli(1, "backup", self.src, "--copies", "5", json_out=True, expect=3).json
        self.assertEqual(b["redundancy_warning"], want, b)
        self.assertGreater(b["chunks_below_target"], 0, b)
        r = self.c.cli(1, "backup", self.src, "--copies", "5", expect=3)
        self.assertIn("warning: " + want, r.err, repr(r))
        self.assertTrue(self.c.peer(1).log_text().count(want) >= 1, self.c.peer(1).log_tail())

        # Check and repair: one summary line per target, no line per chunk.
        check = self.c.cli(1, "check", json_out=True, expect=3).json
        self.assertEqual(check["storage_peers"], 2, check)
        targets = {s["target"]: s for s in check["short_of_peers"]}
        self.assertIn(5, targets, check)
        self.assertRegex(targets[5]["message"],
                         r"^\d+ chunks below target: only 2 storage peers for a target of 5$")
        r = self.c.cli(1, "repair", expect=3)
        self.assertNotIn("error:", r.err, repr(r))
        self.assertRegex(r.err, r"\d+ chunks below target: only 2 storage peers for a target of 5")
        self.assertLess(len(r.err.splitlines()), 10, repr(r))

        # A copies-2 backup of the same data, then forget every snapshot that asked for more.
        two = self.c.json(1, "backup", self.src, "--copies", "2")
        self.assertIs(two["degraded"], False, two)
        self.assertIsNone(two["redundancy_warning"], two)
        snaps = self.c.json(1, "snapshots")
        greedy = [s["id"] for s in snaps if s["copies"] > 2]
        self.assertGreaterEqual(len(greedy), 3, snaps)
        f = self.c.json(1, "forget", *greedy)
        self.assertGreater(f["gc"]["targets_lowered"], 0, f)

        check = self.c.json(1, "check")
        self.assertIs(check["healthy"], True, check)
        self.assertEqual(check["short_of_peers"], [], check)
        rep = self.c.json(1, "repair")
        self.assertEqual(rep["still_below_target"], 0, rep)
        status = self.c.json(1, "status")
        self.assertEqual(status["chunks_below_target"], 0, status)

        target = os.path.join(self.tmp, "restore3")
        self.c.cli(1, "restore", two["short_id"], "--target", target)
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"), "--owner")
        self.assertTrue(ok, out)


if __name__ == "__main__":
    harness.main()
