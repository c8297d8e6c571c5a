#!/usr/bin/env python3
"""Erasure coding survives two dead peers and heals itself.

docs/operations.md "When a peer dies: a worked example".

9 peers on 9 host ids: home peer 1 and 8 storage peers (the home peer never stores its own
blobs, so after 2 deaths 6 storage peers must remain for 4+2 to be back at 6 shards on 6
distinct survivors). Membership runs fast (ping 500 ms, suspect after 2 s, dead after 4 s;
6 s and 12 s under ASan).

A generated tree (files above 64 KiB, which are erasure coded, and small files, which get m+1 = 3
copies; small chunker sizes give many chunks) is backed up with `--ec 4+2`. Two storage peers
that hold shards are killed with SIGKILL; the restore is still byte-identical. Once peer 1
reports both dead, `cairn check` must reach exit 0 within 90 s (the daemon repairs by itself
when a peer becomes dead; after 30 s the test also calls `cairn repair`). The blobs on the
survivors' disks are then counted independently (the live rows of each survivor's segment
registry, read-only from DIR/index.db: the storage peers use the segment layout): every
erasure-coded chunk has shards 0..5 on 6 distinct live peers, every replicated chunk at least as
many live copies as it had before. A second restore is identical.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
N_PEERS = 9
K, M = 4, 2


def make_tree(root: str, rng: random.Random) -> int:
    """~8 MB: a few large and medium files (random and text-like) and many small ones."""
    os.makedirs(os.path.join(root, "big"))
    os.makedirs(os.path.join(root, "small", "deeper"))
    total = 0

    def write(rel, data):
        nonlocal total
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        total += len(data)

    write("big/random.bin", rng.randbytes(3 * MiB + 12345))
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(2, 9)))
             for _ in range(500)]
    write("big/text.txt", b" ".join(rng.choice(words) for _ in range(300_000))[:2 * MiB])
    for k in range(6):
        write(f"big/medium{k}.bin", rng.randbytes(rng.randrange(65 * KiB, 600 * KiB)))
    for k in range(60):
        write(f"small/{'deeper/' if k % 3 == 0 else ''}s{k:03d}",
              rng.randbytes(rng.choice([0, 1, 100, 4096, rng.randrange(1, 60 * KiB)])))
    return total


class EcRepairTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = os.path.join(cls.tmp, "data")
        cls.bytes = make_tree(cls.src, random.Random(cls.seed))
        # Under ASan+UBSan (ctest sets CAIRN_SANITIZED) with other cluster tests beside it, a
        # ping answered late must not make a live peer suspect mid-backup (which places around
        # it and reports the backup degraded): slower membership there.
        slow = os.environ.get("CAIRN_SANITIZED") == "1"
        cls.c = cls.make_cluster(N_PEERS, ping_interval="500ms",
                                 suspect_after="6s" if slow else "2s",
                                 dead_after="12s" if slow else "4s", chunk_min="64K", chunk_avg="128K",
                                 chunk_max="512K", quota="2G")
        cls.victims = []
        cls.before = None

    def restore_and_compare(self, name: str):
        target = os.path.join(self.tmp, name)
        r = self.c.cli(1, "restore", "latest", "--target", target, json_out=True, timeout=300)
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, f"restore {name} differs (seed {self.seed}):\n{out}")

    def test_1_backup_ec(self):
        r = self.c.cli(1, "backup", self.src, "--ec", f"{K}+{M}", json_out=True, timeout=300)
        b = r.json
        self.assertIs(b["degraded"], False, b)
        self.assertEqual(b["chunks_below_target"], 0, b)
        # Spec: "scheme": "ec", "k", "m"; the code may instead report "ec": "K+M".
        if "scheme" in b:
            self.assertEqual((b["scheme"], b.get("k"), b.get("m")), ("ec", K, M), b)
        else:
            self.assertEqual(b.get("ec"), f"{K}+{M}", b)
        self.assertGreater(b["new_chunks"], 20, b)
        for pid, p in self.c.peers.items():
            if pid != 1:
                self.assertTrue(harness.has_segments(p.dir), f"peer {pid} is not on segments")
                self.assertEqual(p.blob_files(), {}, f"peer {pid} has blob files")
        blobs = self.c.blob_map(owner=1)
        ec_chunks = [c for c, shards in blobs.items() if max(shards) > 0]
        copy_chunks = [c for c, shards in blobs.items() if max(shards) == 0]
        print(f"{len(blobs)} chunks on disk: {len(ec_chunks)} erasure coded, "
              f"{len(copy_chunks)} replicated", flush=True)
        self.assertGreater(len(ec_chunks), 10, "too few erasure-coded chunks to test")
        self.assertTrue(copy_chunks, "no small (replicated) chunk")
        for chunk in ec_chunks:
            shards = blobs[chunk]
            self.assertEqual(sorted(shards), list(range(K + M)), (chunk, shards))
            holders = set().union(*shards.values())
            self.assertEqual(len(holders), K + M, f"shards of {chunk} not on distinct peers: "
                                                  f"{shards}")
            self.assertNotIn(1, holders, "the home peer stores its own shard")
        for chunk in copy_chunks:
            self.assertGreaterEqual(len(blobs[chunk][0]), 1, chunk)
        type(self).before = blobs

        check = self.c.check(1)
        self.assertEqual(check.rc, 0, repr(check))
        for key in ["healthy", "chunks", "at_target", "below_target", "lost", "corrupt",
                    "blobs_read", "bytes_read", "snapshots", "below_target_detail",
                    "corrupt_blobs"]:
            self.assertIn(key, check.json)
        self.assertEqual(len(check.json["snapshots"]), 1, check.json)
        self.assertEqual(check.json["snapshots"][0]["id"], b["snapshot_id"], check.json)
        self.assertIs(check.json["healthy"], True, check.json)
        self.assertEqual(check.json["lost"], 0, check.json)
        self.assertEqual(check.json["below_target"], 0, check.json)

    def test_2_kill_two_shard_holders_and_restore(self):
        self.assertIsNotNone(self.before, "backup failed")
        used = self.c.used_by_peer()
        holders = [pid for pid, u in sorted(used.items(), key=lambda kv: -kv[1])
                   if pid != 1 and u > 0]
        self.assertGreaterEqual(len(holders), K + M, f"peers with data: {used}")
        # The two that hold the most (their `used` from `cairn peers --json`).
        victims = holders[:2]
        on_disk = {pid for shards in self.before.values() for s in shards.values() for pid in s}
        self.assertTrue(set(victims) <= on_disk, (victims, on_disk))
        print(f"killing peers {victims} with SIGKILL (used: {used})", flush=True)
        for v in victims:
            self.c.peers[v].kill9()
        type(self).victims = victims
        self.restore_and_compare("restore_after_kill")

    def test_3_repair_back_to_target(self):
        self.assertTrue(self.victims, "no peer was killed")
        survivors = [p for p in self.c.peers if p not in self.victims]
        t_dead = time.monotonic()
        self.c.wait_state(1, self.victims, "dead", timeout=60)
        print(f"peer 1 reports {self.victims} dead after {time.monotonic() - t_dead:.1f} s",
              flush=True)

        start = time.monotonic()
        repaired_by = {"how": None}
        last = {"r": None}

        def healthy():
            if not self.c.peers[1].running():
                raise harness.Fatal("home peer died")
            r = self.c.check(1)
            last["r"] = r
            if r.rc == 0:
                repaired_by["how"] = repaired_by["how"] or "the daemon (automatic repair)"
                return r
            if r.rc == 1:
                raise harness.Fatal(f"cairn check says data is lost: {r!r}")
            if time.monotonic() - start > 30:
                rep = self.c.repair(1)
                repaired_by["how"] = "`cairn repair`"
                if rep.rc == 1:
                    raise harness.Fatal(f"cairn repair says data is lost: {rep!r}")
            return None

        r = harness.wait_for(healthy, 90, "cairn check to exit 0 after repair", interval=1)
        print(f"healthy {time.monotonic() - start:.1f} s after the deaths were seen, repaired by "
              f"{repaired_by['how']}", flush=True)
        j = r.json
        self.assertIs(j["healthy"], True, j)
        self.assertEqual(j["at_target"], j["chunks"], j)
        self.assertEqual((j["below_target"], j["lost"]), (0, 0), j)

        # Independently, from what the survivors' segment registries say they hold.
        after = self.c.blob_map(survivors, owner=1)
        for chunk, shards_before in self.before.items():
            shards = after.get(chunk, {})
            if max(shards_before) > 0:  # erasure coded
                self.assertEqual(sorted(shards), list(range(K + M)),
                                 f"chunk {chunk[1]} shards on survivors: {shards}")
                holders = set().union(*shards.values())
                self.assertGreaterEqual(len(holders), K + M,
                                        f"chunk {chunk[1]}: shards not on 6 distinct survivors: "
                                        f"{shards}")
                self.assertNotIn(1, holders)
            else:  # small chunk, replicated: M+1 live copies (extra copies, which repair does
                # not replace, may have been among those before the deaths)
                self.assertGreaterEqual(len(shards.get(0, ())), M + 1,
                                        f"chunk {chunk[1]} copies: before {shards_before}, "
                                        f"after {shards}")
        self.restore_and_compare("restore_after_repair")


if __name__ == "__main__":
    harness.main()
