#!/usr/bin/env python3
"""Clock offsets in `cairn peers` (docs/operations.md "When a peer's clock is off").

Five members on 127.0.0.1, every one seeded with every other's address. Peer 4 runs under
faketime 10 minutes ahead (beyond the 300 s the cluster accepts), peer 5 under faketime 90 s
ahead (within it); libfaketime shifts the wall clock of the whole process, gRPC's threads
included. Checked, with deadlines:

  - peer 1 measures peer 5 at +90 s (NTP-style from the Ping answer; within a few seconds) and
    peers 2 and 3 at about 0, none flagged; peer 4 at +600 s, flagged (`clock_skewed`), from
    peer 4's signed refusals; peer 1's own clock is not flagged; the table shows "+600.0 s !"
    in the CLOCK column and the note;
  - peer 4 measures every other peer about 10 minutes behind it (peer 5: 510 s), all flagged,
    so its own clock is flagged: `cairn peers` says its clock is off, and its log names each
    member's offset ("clock skew: the caller's clock is 600 s ahead of the callee's"; 510 s
    from peer 5), in whatever order the refusals came;
  - peer 4 never becomes alive on peer 1 (its calls are refused), peer 5 does.
"""

import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WINDOW = 300
AHEAD = 600  # peer 4: faketime +10m
NEAR = 90  # peer 5: faketime +90 (seconds)
# Loopback round trips are milliseconds; faketime applies its offset at start, and a second of
# margin covers the refusals' whole-second resolution.
TOLERANCE = 3.0


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime(offset: str) -> list:
    # Shifts the whole process's clocks by a constant, as a badly set clock would be. libfaketime
    # is preloaded by `env`, which execs the peer, so that the harness's SIGTERM and its
    # die-with-parent signal reach the peer itself (the `faketime` program forks it as a child,
    # which outlived the test). It is loaded ahead of an ASan build's runtime, which ASan refuses
    # unless told that the order is wanted (verify_asan_link_order=0); the release build ignores
    # ASAN_OPTIONS.
    asan = os.environ.get("ASAN_OPTIONS", "")
    asan = f"{asan}:verify_asan_link_order=0" if asan else "verify_asan_link_order=0"
    return ["env", f"ASAN_OPTIONS={asan}", f"LD_PRELOAD={LIBFAKETIME}", f"FAKETIME={offset}"]


def by_id(entries: list) -> dict:
    return {e["peer_id"]: e for e in entries}


def near(value, want: float) -> bool:
    return isinstance(value, (int, float)) and abs(value - want) <= TOLERANCE


class ClockSkewTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which("faketime") is None:
            raise AssertionError("faketime is not installed (scripts/install-deps installs it)")
        c = cls.make_cluster(5, start=False)
        ports = harness.free_ports(5)
        addresses = [f"127.0.0.1:{port}" for port in ports]

        def seeds(i):
            return [a for j, a in enumerate(addresses, 1) if j != i]

        c.new_peer(1, join=False, port=ports[0], seeds=seeds(1))
        c.join_token = c.cluster_token(1)
        for i in range(2, 6):
            c.new_peer(i, port=ports[i - 1], seeds=seeds(i))
        c.peers[4].launcher = faketime(f"+{AHEAD // 60}m")
        c.peers[5].launcher = faketime(f"+{NEAR}")
        # Peer 4 starts last, once every peer it pings listens: under libfaketime, a connection
        # of a skewed process that failed because its target was not listening yet was not
        # retried within a minute (gRPC's reconnect timers under the faked clock), which is not
        # what is tested here.
        for i in (1, 2, 3, 5, 4):
            c.peers[i].start()
            harness.wait_for(lambda i=i: "listening on" in c.peers[i].log_text(), 30,
                             f"peer {i} listening")
        cls.c = c
        cls.addresses = addresses

    def test_offsets_are_measured_and_flagged(self):
        c = self.c

        def peer1_view():
            seen = by_id(c.peers_seen_by(1))
            if set(seen) != {1, 2, 3, 4, 5}:
                return None
            if not all(seen[i]["state"] == "alive" for i in (2, 3, 5)):
                return None
            ok = (near(seen[2]["clock_offset_seconds"], 0) and
                  near(seen[3]["clock_offset_seconds"], 0) and
                  near(seen[5]["clock_offset_seconds"], NEAR) and
                  near(seen[4]["clock_offset_seconds"], AHEAD))
            return seen if ok else None

        seen = harness.wait_for(peer1_view, 60, "peer 1 measuring every peer's clock")
        for i in (2, 3, 5):
            self.assertFalse(seen[i]["clock_skewed"], seen[i])
        self.assertTrue(seen[4]["clock_skewed"], seen[4])
        self.assertNotEqual(seen[4]["state"], "alive", seen[4])  # its calls are refused
        self.assertEqual(seen[1]["clock_offset_seconds"], 0)
        self.assertFalse(seen[1]["clock_skewed"], seen[1])
        self.assertEqual(seen[1]["clock_window_seconds"], WINDOW)

        table = c.cli(1, "peers").out
        print(table, flush=True)
        row4 = [line for line in table.splitlines() if line.startswith("4 ")]
        self.assertEqual(len(row4), 1, table)
        self.assertRegex(row4[0], r"\+(59[7-9]|60[0-3])\.\d s !$")
        row5 = [line for line in table.splitlines() if line.startswith("5 ")]
        self.assertRegex(row5[0], r"\+(8[7-9]|9[0-3])\.\d s$")
        self.assertIn("more than 300 s off from this peer's", table)

        def peer4_view():
            seen = by_id(c.peers_seen_by(4))
            if set(seen) != {1, 2, 3, 4, 5}:
                return None
            ok = all(near(seen[i]["clock_offset_seconds"], -AHEAD) for i in (1, 2, 3)) and near(
                seen[5]["clock_offset_seconds"], NEAR - AHEAD)
            return seen if ok else None

        seen = harness.wait_for(peer4_view, 60, "peer 4 measuring every peer's clock")
        for i in (1, 2, 3, 5):
            self.assertTrue(seen[i]["clock_skewed"], seen[i])
            self.assertNotEqual(seen[i]["state"], "alive", seen[i])
        self.assertTrue(seen[4]["clock_skewed"], seen[4])
        table = c.cli(4, "peers").out
        print(table, flush=True)
        self.assertIn("this peer's clock is more than 300 s off from most peers' clocks", table)

        # One line per refusing member, each with its own offset: 600 s for peers 1-3, 510 s for
        # peer 5 (whose clock is 90 s ahead too); in whatever order the refusals came.
        pattern = re.compile(r"the peer at (\S+) refuses this peer's calls: .*clock skew: the "
                             r"caller's clock is (\d+) s ahead of the callee's")

        def refusals():
            found = {a: int(s) for a, s in pattern.findall(c.peers[4].log_text())}
            return found if set(self.addresses) - {self.addresses[3]} <= set(found) else None

        found = harness.wait_for(refusals, 30, "peer 4 logging each member's clock refusal")
        for i in (1, 2, 3, 5):
            want = AHEAD if i != 5 else AHEAD - NEAR
            got = found[self.addresses[i - 1]]
            self.assertTrue(want - TOLERANCE <= got <= want + TOLERANCE, (i, got, found))


if __name__ == "__main__":
    harness.main()
