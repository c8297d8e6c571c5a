#!/usr/bin/env python3
"""Repair with fewer storage peers than k+m (docs/operations.md "When the cluster is too small").

8 peers: home peer 1 and 7 storage peers; `--ec 4+2` puts each large chunk's 6 shards on 6 of
the 7. Two storage peers that hold shards are killed (SIGKILL): 5 storage peers are left, fewer
than 6, and some chunks are down to exactly k = 4 shards (they survive no further loss). The
restore is byte-identical. Repair (the daemon's own, on the deaths; `cairn repair` after 30 s)
must rebuild every missing shard on the 5 survivors — one peer holding two — so that `cairn
check` reports every erasure-coded chunk below target but surviving any 1 lost peer, and says
so in its text output. The survivors' disks are read independently: shards 0..5 of each chunk on
5 distinct peers, none holding more than 2. Then the repair loop must not spin: an explicit
`cairn repair` writes nothing and reports the chunks as unimprovable, and while `cairn check`
asks for a repair every few hundred milliseconds the daemon starts at most 2 (it backs off).
A second restore is identical.
"""

import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
N_PEERS = 8
K, M = 4, 2
AUTO_REPAIR = "a check found chunks below target: repairing own backups"


def make_tree(root: str, rng: random.Random):
    os.makedirs(os.path.join(root, "big"))
    os.makedirs(os.path.join(root, "small"))
    with open(os.path.join(root, "big", "random.bin"), "wb") as f:
        f.write(rng.randbytes(2 * MiB + 4321))
    for k in range(4):
        with open(os.path.join(root, "big", f"medium{k}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(70 * KiB, 400 * KiB)))
    for k in range(20):
        with open(os.path.join(root, "small", f"s{k:02d}"), "wb") as f:
            f.write(rng.randbytes(rng.choice([0, 1, 100, rng.randrange(1, 30 * KiB)])))


class EcTooFewPeersTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = os.path.join(cls.tmp, "data")
        make_tree(cls.src, random.Random(cls.seed))
        cls.c = cls.make_cluster(N_PEERS, ping_interval="500ms", suspect_after="3s",
                                 dead_after="5s", chunk_min="64K", chunk_avg="128K",
                                 chunk_max="512K", quota="2G")
        cls.victims = []
        cls.ec_chunks = []

    def restore_and_compare(self, name: str):
        target = os.path.join(self.tmp, name)
        r = self.c.cli(1, "restore", "latest", "--target", target, json_out=True, timeout=300)
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, f"restore {name} differs (seed {self.seed}):\n{out}")

    def test_1_backup_ec(self):
        b = self.c.json(1, "backup", self.src, "--ec", f"{K}+{M}", timeout=300)
        self.assertIs(b["degraded"], False, b)
        blobs = self.c.blob_map(owner=1)
        ec = [c for c, shards in blobs.items() if max(shards) > 0]
        self.assertGreater(len(ec), 5, "too few erasure-coded chunks to test")
        for chunk in ec:
            holders = set().union(*blobs[chunk].values())
            self.assertEqual(len(holders), K + M, (chunk, blobs[chunk]))
        type(self).ec_chunks = ec
        check = self.c.check(1)
        self.assertEqual(check.rc, 0, repr(check))
        self.assertEqual(check.json["survives"], [], check.json)

    def test_2_kill_two_storage_peers_and_restore(self):
        self.assertTrue(self.ec_chunks, "backup failed")
        victims = self.c.holders_by_used(home=1)[:2]
        print(f"killing peers {victims} with SIGKILL", flush=True)
        for v in victims:
            self.c.peers[v].kill9()
        type(self).victims = victims
        self.restore_and_compare("restore_after_kill")

    def test_3_repair_restores_what_five_peers_allow(self):
        self.assertTrue(self.victims, "no peer was killed")
        survivors = [p for p in self.c.peers if p not in self.victims]
        storage = [p for p in survivors if p != 1]
        self.c.wait_state(1, self.victims, "dead", timeout=60)
        start = time.monotonic()
        n = len(self.ec_chunks)

        def restored():
            if not self.c.peers[1].running():
                raise harness.Fatal("home peer died")
            r = self.c.check(1)
            if r.rc == 1:
                raise harness.Fatal(f"cairn check says data is lost: {r!r}")
            j = r.json
            if (r.rc == 3 and j["below_target"] == n and
                    [(s["peers"], s["chunks"]) for s in j["survives"]] == [(1, n)]):
                return r
            if time.monotonic() - start > 30:
                rep = self.c.repair(1)
                if rep.rc == 1:
                    raise harness.Fatal(f"cairn repair says data is lost: {rep!r}")
            return None

        r = harness.wait_for(restored, 120, f"{n} chunks below target surviving 1 lost peer")
        print(f"tolerance restored {time.monotonic() - start:.1f} s after the deaths were seen",
              flush=True)
        j = r.json
        self.assertEqual(j["lost"], 0, j)
        self.assertEqual(j["storage_peers"], len(storage), j)
        self.assertEqual([(s["target"], s["chunks"]) for s in j["short_of_peers"]],
                         [(K + M, n)], j)
        self.assertEqual(j["survives"][0]["message"],
                         f"{n} chunks below target survive any 1 lost peer", j)

        # The text output says what the chunks survive and why they are below target.
        text = self.c.cli(1, "check", expect=3)
        self.assertIn(f"degraded: {n} chunks below target survive any 1 lost peer", text.err,
                      repr(text))
        self.assertIn(f"only {len(storage)} storage peers for a target of {K + M}", text.err,
                      repr(text))

        # Independently, from the survivors' disks: 6 shards on 5 distinct peers, at most 2 each.
        after = self.c.blob_map(survivors, owner=1)
        for chunk in self.ec_chunks:
            shards = after.get(chunk, {})
            self.assertEqual(sorted(shards), list(range(K + M)), f"{chunk[1]}: {shards}")
            per_peer = {}
            for shard, peers in shards.items():
                for p in peers:
                    per_peer[p] = per_peer.get(p, 0) + 1
            self.assertEqual(set(per_peer), set(storage), f"{chunk[1]}: {shards}")
            self.assertLessEqual(max(per_peer.values()), 2, f"{chunk[1]}: {shards}")
        self.restore_and_compare("restore_after_repair")

    def test_4_no_busy_loop(self):
        n = len(self.ec_chunks)
        # Nothing is left that 5 peers could improve: nothing fetched or written.
        rep = self.c.repair(1)
        self.assertEqual(rep.rc, 3, repr(rep))
        j = rep.json
        self.assertEqual((j["blobs_written"], j["lost"]), (0, 0), j)
        self.assertEqual(j["still_below_target"], n, j)
        self.assertEqual(j["unimprovable"], n, j)
        self.assertEqual(j["errors"], [], j)
        text = self.c.cli(1, "repair", expect=3)
        self.assertIn(f"{n} still below target ({n} as far as the alive peers allow)", text.out,
                      repr(text))
        # Each check that finds chunks below target asks the daemon for a repair; after one that
        # could do nothing it backs off instead of repairing after every check.
        log = self.c.peer(1).log_text()
        before = log.count(AUTO_REPAIR)
        checks = 0
        t0 = time.monotonic()
        while checks < 12 or time.monotonic() - t0 < 6:  # at least 12 ticks of the repair loop
            self.assertEqual(self.c.check(1).rc, 3)
            checks += 1
        started = self.c.peer(1).log_text().count(AUTO_REPAIR) - before
        print(f"{checks} checks in {time.monotonic() - t0:.1f} s started {started} automatic "
              f"repairs", flush=True)
        self.assertLessEqual(started, 2, self.c.peer(1).log_tail())
        self.assertRegex(self.c.peer(1).log_text(),
                         r"the next automatic repair waits \d+ s unless the alive peers change")
        self.restore_and_compare("restore_at_the_end")


if __name__ == "__main__":
    harness.main()
