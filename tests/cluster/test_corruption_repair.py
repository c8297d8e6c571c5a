#!/usr/bin/env python3
"""Corrupt blobs on disk are found, reported and repaired (docs/architecture.md "Check, scrub and
repair").

7 peers (home peer 1 and 6 storage peers; scrub off so that only `check` finds the damage). Two
generated trees are backed up: one with `--copies 2`, one with `--ec 4+2`. The storage peers
keep blobs in segment files (DIR/segments/*.seg, the default layout). Then bytes are flipped in
5% (at least 3) of the blobs the storage peers hold (the live rows of their segment registries,
never two blobs of one chunk, so nothing is lost): in place, inside each chosen blob's bytes in
its segment, at the offset its registry row records (segment and offset are printed). `cairn
check --read-data --json` must report every flipped blob (corrupt >= flipped, each in
corrupt_blobs, exit 3: below target, not lost); the peers quarantine them when they read them.
After `cairn repair`, `cairn check --read-data` exits 0 and both snapshots restore identically.

Then scrub: one storage peer is restarted with scrub on (interval 1 s) after a blob of its own
was flipped (the peer stopped meanwhile); it quarantines the blob (its registry row turns
quarantined, the bytes stay in the segment; it is no longer held nor counted), the owner's
`cairn check` (without --read-data) sees the chunk below target, and repair brings it back.
"""

import os
import random
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20


def make_tree(root: str, rng: random.Random, nbig: int, nsmall: int):
    os.makedirs(os.path.join(root, "sub"))
    for k in range(nbig):
        with open(os.path.join(root, f"big{k}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(200 * KiB, 2 * MiB)))
    for k in range(nsmall):
        with open(os.path.join(root, "sub", f"small{k}"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(0, 50 * KiB)))


def same_chunk(a: str, b: str) -> bool:
    """Chunk ids as hex, either possibly shortened."""
    n = min(len(a), len(b))
    return n >= 8 and a[:n].lower() == b[:n].lower()


class CorruptionRepairTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rng = random.Random(cls.seed)
        cls.src_copies = os.path.join(cls.tmp, "copies")
        cls.src_ec = os.path.join(cls.tmp, "ec")
        make_tree(cls.src_copies, cls.rng, 6, 30)
        make_tree(cls.src_ec, cls.rng, 6, 30)
        # No extra copies: check --read-data does not read them (they never count), so a
        # flipped extra copy would not be reported.
        cls.c = cls.make_cluster(7, scrub=False, chunk_min="64K", chunk_avg="128K",
                                 chunk_max="512K", config={("extra", "metadata"): "false"})
        cls.snaps = {}
        for name, src, args in (("copies", cls.src_copies, ["--copies", "2"]),
                                ("ec", cls.src_ec, ["--ec", "4+2"])):
            b = cls.c.json(1, "backup", src, *args, timeout=300)
            cls.snaps[name] = b["snapshot_id"]
        cls.flipped = []

    def restore_all(self, tag: str):
        for name, src in (("copies", self.src_copies), ("ec", self.src_ec)):
            target = os.path.join(self.tmp, f"restore_{tag}_{name}")
            r = self.c.cli(1, "restore", self.snaps[name], "--target", target, json_out=True,
                           timeout=300)
            self.assertEqual(r.json.get("errors", []), [], repr(r))
            ok, out = harness.treecmp(src, os.path.join(target, name))
            self.assertTrue(ok, f"{name} restore ({tag}) differs (seed {self.seed}):\n{out}")

    def test_1_read_data_finds_every_flip(self):
        check = self.c.check(1, "--read-data")
        self.assertEqual(check.rc, 0, repr(check))
        self.assertEqual(check.json["corrupt"], 0, check.json)
        self.assertGreater(check.json["blobs_read"], 0, check.json)

        files = []  # (peer id, where, (owner, chunk, shard))
        for pid, p in self.c.peers.items():
            if pid == 1:
                continue
            self.assertTrue(harness.has_segments(p.dir), f"peer {pid} is not on segments")
            self.assertEqual(p.blob_files(), {}, f"peer {pid} has blob files")
            self.assertEqual(harness.segment_mismatches(p.dir), [], f"peer {pid}")
            files += [(pid, where, key) for where, key in sorted(p.held_blobs().items())]
        self.assertGreater(len(files), 20, files)
        want = max(3, (len(files) * 5 + 99) // 100)
        self.rng.shuffle(files)
        chosen, chunks = [], set()
        for pid, where, key in files:
            if key[1] in chunks:
                continue  # one damaged blob per chunk: always repairable
            chosen.append((pid, where, key))
            chunks.add(key[1])
            if len(chosen) == want:
                break
        self.assertEqual(len(chosen), want)
        for pid, where, key in chosen:
            at = harness.corrupt_blob(self.c.peers[pid].dir, key, self.rng)
            print(f"flipped bytes in peer {pid}: {at} (chunk {key[1][:16]} shard {key[2]})",
                  flush=True)
        type(self).flipped = chosen
        print(f"{len(chosen)} of {len(files)} held blobs flipped", flush=True)

        check = self.c.check(1, "--read-data")
        j = check.json
        self.assertIsInstance(j, dict, repr(check))
        self.assertEqual(check.rc, 3, f"want exit 3 (below target, nothing lost): {check!r}")
        self.assertIs(j["healthy"], False, j)
        self.assertGreaterEqual(j["corrupt"], len(chosen), j)
        self.assertEqual(j["lost"], 0, j)
        reported = [(str(e["chunk"]), int(e["shard"]), int(e["peer"]))
                    for e in j.get("corrupt_blobs", [])]
        for pid, where, (owner, chunk, shard) in chosen:
            self.assertTrue(any(same_chunk(c, chunk) and (s, p) == (shard, pid)
                                for c, s, p in reported),
                            f"flipped blob {where} on peer {pid} not in corrupt_blobs: {reported}")
        # Each peer quarantined what it found corrupt: a registry state; that record is no
        # longer held (the daemon may already be repairing: a new copy would be a new record).
        for pid, where, key in chosen:
            self.assertTrue(harness.is_quarantined(self.c.peers[pid].dir, where),
                            f"peer {pid} did not quarantine {where} {key}: quarantined "
                            f"{harness.quarantined_blobs(self.c.peers[pid].dir)}")
            self.assertNotIn(where, self.c.peers[pid].held_blobs())
            self.assertNotIn(where, self.c.peers[pid].held_blobs())

    def test_2_repair_fixes_every_flip(self):
        self.assertTrue(self.flipped, "nothing was flipped")
        rep = self.c.repair(1)
        self.assertIn(rep.rc, (0, 3), repr(rep))
        self.assertIsInstance(rep.json, dict, repr(rep))
        for key in ["chunks", "repaired", "blobs_written", "bytes_sent", "still_below_target",
                    "lost"]:
            self.assertIn(key, rep.json)
        self.assertEqual(rep.json["lost"], 0, rep.json)
        # Every flipped blob was quarantined when check read it: repair rewrote them all (the
        # daemon may have started on them already after that check).
        print(f"repair: {rep.json}", flush=True)

        def healthy():
            r = self.c.check(1, "--read-data")
            if r.rc == 0:
                return r
            if r.rc == 1:
                raise harness.Fatal(f"check says data is lost: {r!r}")
            self.c.repair(1)  # another pass (e.g. a target was busy)
            return None

        r = harness.wait_for(healthy, 90, "cairn check --read-data to exit 0 after repair",
                             interval=1)
        self.assertEqual(r.json["corrupt"], 0, r.json)
        self.assertEqual(r.json["at_target"], r.json["chunks"], r.json)
        self.restore_all("after_repair")

    def test_3_scrub_quarantines(self):
        # A storage peer with a blob of an erasure-coded chunk, restarted with scrub on.
        blobs = self.c.blob_map(owner=1)
        pid = where = key = None
        for p in sorted(self.c.peers)[1:]:
            for w, k in sorted(self.c.peers[p].held_blobs().items()):
                if k[2] > 0 and len(blobs[(k[0], k[1])]) >= 6:
                    pid, where, key = p, w, k
                    break
            if pid:
                break
        self.assertIsNotNone(pid, "no erasure-coded shard found")
        peer = self.c.peers[pid]
        self.assertEqual(peer.stop(), 0)
        peer.set_config("scrub", "enabled", "true")
        peer.set_config("scrub", "interval", '"1s"')
        peer.set_config("scrub", "rate", '"100M"')
        self.assertFalse(harness.is_quarantined(peer.dir, where))
        at = harness.corrupt_blob(peer.dir, key, self.rng)
        print(f"flipped {at} on peer {pid}; restarting it with scrub on", flush=True)
        peer.start()
        harness.wait_for(lambda: harness.is_quarantined(peer.dir, where),
                         60, f"peer {pid} to quarantine {where} {key}")
        self.assertNotIn(where, peer.held_blobs())
        self.c.wait_all_alive(60)
        st = self.c.json(pid, "status", expect=None)
        if isinstance(st, dict) and isinstance(st.get("scrub"), dict):
            self.assertGreaterEqual(st["scrub"].get("quarantined", 1), 1, st)

        check = self.c.check(1)
        # The daemon may already have repaired (a scrub found damage): either way no data lost.
        self.assertIn(check.rc, (0, 3), repr(check))
        print(f"check after the quarantine: exit {check.rc}, below_target "
              f"{check.json['below_target']}", flush=True)
        if check.rc == 3:
            self.assertGreaterEqual(check.json["below_target"], 1, check.json)

        def healthy():
            r = self.c.check(1)
            if r.rc == 0:
                return r
            self.c.repair(1)
            return None

        harness.wait_for(healthy, 90, "cairn check to exit 0 after the quarantine", interval=1)
        self.restore_all("after_scrub")


if __name__ == "__main__":
    harness.main()
