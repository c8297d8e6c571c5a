#!/usr/bin/env python3
"""One `cairn peer` per directory (docs/cli.md "cairn peer"), and days in durations.

- A second `cairn peer` on a directory a running peer uses exits 1 at once with "already running
  (pid N)" naming the running peer's pid (not a gRPC bind error), and touches nothing: the first
  peer still answers and its lock file still holds its pid.
- After the first peer is SIGKILLed (its peer.lock left behind with its pid), a new peer starts
  on the directory: the kernel dropped the flock with the process.
- Durations accept days: `cairn source add --schedule 1d` stores 24 h (shown as "24h").
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


class PeerLockTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.make_cluster(1)

    def test_second_peer_on_the_same_dir_is_refused(self):
        c = self.c
        p = c.peer(1)
        lock = os.path.join(p.dir, "peer.lock")
        first_pid = p.proc.pid
        self.assertEqual(read(lock), f"{first_pid}\n")
        api_before = p.api_port()

        r = c.run_raw(["peer", "--dir", p.dir], timeout=30)
        self.assertEqual(r.rc, 1, r)
        self.assertIn(f"already running (pid {first_pid})", r.err, r)
        self.assertNotIn("bind", r.err.lower(), r)
        self.assertNotIn("address already in use", r.err.lower(), r)

        # The first peer is untouched and still serves.
        self.assertTrue(p.running(), p.log_tail())
        self.assertEqual(read(lock), f"{first_pid}\n")
        self.assertEqual(p.api_port(), api_before)
        peers = c.json(1, "peers")
        self.assertEqual([e["peer_id"] for e in peers if e.get("self")], [1])

        # A crash leaves the file with a dead pid; it does not block the next start.
        p.kill9()
        self.assertEqual(read(lock), f"{first_pid}\n")
        p.start()
        harness.wait_for(lambda: p.running() and read(lock) == f"{p.proc.pid}\n", 30,
                         "the restarted peer to take the lock")
        harness.wait_for(lambda: c.run_raw(["peers", "--dir", p.dir, "--json"], timeout=30).rc == 0,
                         60, "the restarted peer to answer")

        # Durations in days, through the CLI and the API into cairn.toml.
        src = os.path.join(self.tmp, "src")
        os.makedirs(src, exist_ok=True)
        c.cli(1, "source add", src, "--schedule", "1d")
        listed = c.json(1, "source list")
        rows = listed if isinstance(listed, list) else listed.get("sources", [])
        mine = [s for s in rows if s.get("path") == src]
        self.assertEqual(len(mine), 1, listed)
        self.assertEqual(mine[0]["schedule"], "24h")
        other = os.path.join(self.tmp, "other")
        os.makedirs(other, exist_ok=True)
        bad = c.cli(1, "source add", other, "--schedule", "1w", expect=2)
        self.assertIn("invalid duration '1w'", bad.err)
        self.assertEqual([s["path"] for s in c.json(1, "source list")], [src])


if __name__ == "__main__":
    harness.main()
