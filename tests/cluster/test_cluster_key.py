#!/usr/bin/env python3
"""Only cluster members take part (docs/security.md "Threat model"; docs/architecture.md
"Membership").

Three members: peer 1 made with `cairn init` (a new cluster key), peers 2 and 3 with
`--join $(cairn cluster token)`. Multicast is on, on a UDP port of this cluster's own, with
announcements every 500 ms, so both ways in are tried: seeds and announcements.

An outsider (peer 4, initialised without --join: a cluster key of its own) is seeded with every
member's address and announces on the same port. While the members exchange many pings and
announcements: the members never list it, it lists only itself (`cairn peers --json`), its
backup fails (exit 1 or 3: no peer takes a blob) and the members' blob stores get nothing.

A duplicate: a fifth process with the right token but member 2's peer id is refused: `cairn peer`
exits 1 within a deadline with a message about the duplicate id, and member 2 keeps its place.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ClusterKeyTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = random.Random(cls.seed)
        cls.src = os.path.join(cls.tmp, "data")
        os.makedirs(cls.src)
        for k in range(8):
            with open(os.path.join(cls.src, f"f{k}"), "wb") as f:
                f.write(rng.randbytes(rng.randrange(1000, 400_000)))
        cls.c = cls.make_cluster(3, multicast=True, announce_interval="500ms")

    def members_store(self) -> dict:
        return {pid: sorted(p.blob_files()) for pid, p in self.c.peers.items()}

    def wait_rounds(self, since_ns: int, rounds_s: float):
        """Waits until every member has heard from every other member at least `rounds_s`
        seconds (by their own last_seen) after `since_ns`: many ping rounds and announcement
        intervals have passed, during which the outsider was trying too."""
        want = since_ns + int(rounds_s * 1e9)

        def ok():
            for pid in self.c.peers:
                seen = {e["peer_id"]: e.get("last_seen_ns", 0)
                        for e in self.c.peers_seen_by(pid) if not e.get("self")}
                others = set(self.c.peers) - {pid}
                if not others <= set(seen) or min(seen[o] for o in others) < want:
                    return False
            return True

        harness.wait_for(ok, 60, f"members to exchange pings for {rounds_s} s")

    def test_1_token_and_join(self):
        token = self.c.cluster_token(1)
        self.assertEqual(token, self.c.join_token)
        # Every member lists the other two alive (they share the key).
        for pid in self.c.peers:
            self.assertEqual(self.c.alive_seen_by(pid), {1, 2, 3})

    def test_2_outsider_is_refused(self):
        before = self.members_store()
        used_before = self.c.used_by_peer()
        seeds = [p.listen for p in self.c.peers.values()]
        out = self.c.new_peer(4, name="outsider", join=False, seeds=seeds, member=False)
        self.assertNotEqual(read(os.path.join(out.dir, "secrets", "cluster.key")),
                            read(os.path.join(self.c.peers[1].dir, "secrets", "cluster.key")),
                            "the outsider got the cluster's key")
        t0 = time.time_ns()
        out.start()
        self.c.wait_api(out)

        leaks = []

        def watch():
            for pid in self.c.peers:
                if 4 in {e.get("peer_id") for e in self.c.peers_seen_by(pid)}:
                    leaks.append(f"member {pid} lists the outsider")
            mine = self.c.peers_seen_by(out)
            if [e.get("peer_id") for e in mine] != [4]:
                leaks.append(f"the outsider lists {mine}")

        watch()
        b = self.c.cli(out, "backup", self.src, "--copies", "1", json_out=True, expect=(1, 3),
                       timeout=120)
        print(f"outsider backup: exit {b.rc}: {b.out[:300]} {b.err[:300]}", flush=True)
        watch()
        # At least 6 s of pings (250 ms) and announcements (500 ms) with the outsider running.
        self.wait_rounds(t0, 6)
        watch()
        self.assertTrue(out.running(), f"the outsider exited: {out.log_tail(20)}")
        self.assertEqual(leaks, [])
        mine = self.c.json(out, "peers")
        self.assertEqual([e["peer_id"] for e in mine], [4], mine)
        self.assertIs(mine[0]["self"], True, mine)

        self.assertEqual(self.members_store(), before, "a member stored a blob from the outsider")
        for pid in self.c.peers:
            owners = {k[0] for k in self.c.peers[pid].blob_files().values()}
            self.assertNotIn(4, owners, f"member {pid} holds blobs of owner 4")
        self.assertEqual(self.c.used_by_peer(), used_before)
        for pid in self.c.peers:
            self.assertEqual(self.c.alive_seen_by(pid), {1, 2, 3})
        self.assertEqual(out.stop(), 0)

    def test_3_duplicate_peer_id_is_refused(self):
        # A member backs up first, so that member 2 holds something and is in use.
        self.c.cli(1, "backup", self.src, "--copies", "2", json_out=True)
        addr2 = [e for e in self.c.peers_seen_by(1) if e.get("peer_id") == 2][0]["address"]
        dup = self.c.new_peer(2, name="duplicate2", host_id="host-dup", member=False)
        dup.start()
        code = dup.wait_exit(60)
        text = dup.log_text()
        print(f"duplicate exited {code}; log:\n{dup.log_tail(10)}", flush=True)
        self.assertEqual(code, 1, text)
        self.assertRegex(text, r"(?i)peer id 2\b.*(another node|already|duplicate|in use|taken)",
                         "no message about the duplicate peer id")
        # Member 2 keeps its id, address and data.
        self.assertTrue(self.c.peers[2].running(), "member 2 died")
        self.c.wait_all_alive(30)
        e2 = [e for e in self.c.peers_seen_by(1) if e.get("peer_id") == 2][0]
        self.assertEqual(e2["address"], addr2, e2)
        self.assertEqual(e2["state"], "alive", e2)
        target = os.path.join(self.tmp, "restore")
        self.c.cli(1, "restore", "latest", "--target", target)
        ok, diff = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, diff)


if __name__ == "__main__":
    harness.main()
