#!/usr/bin/env python3
"""Peers on a LAN find each other by multicast alone (docs/protocol.md "Announcements").

As root: scripts/netns-cluster net-up makes 4 network namespaces on one bridge (in a namespace
of its own), addresses 10.199.X.11-14/24 that exist only there, and the multicast route in each.
Peer i runs in namespace i (`ip netns exec`), listening on its namespace's address; peer 1 makes
the cluster key, the others join with its token, and every seed is removed from cairn.toml: the
only way to meet is the multicast announcements. Each peer must list all others alive; then a
backup from peer 1 restores identically (through peers found that way), and the CLI runs in the
peer's namespace too (the API is 127.0.0.1 there). The namespaces are deleted afterwards, also
on failure.

Skipped, with the reason printed, when not root or when `ip netns` does not work here.
Label: netns (and cluster); run alone with `ctest -L netns`.
"""

import os
import random
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

N = 4


def netns_unusable():
    """Why network namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_SYS_ADMIN)"
    probe = f"cairn-probe-{os.getpid()}"
    try:
        cp = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns add` failed: {e}"
    if cp.returncode != 0:
        return f"`ip netns add` failed: {harness.show(cp.stderr).strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


class NetnsDiscoveryTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_unusable()
        if why:
            print(f"SKIP: {why}", flush=True)
            raise unittest.SkipTest(why)
        harness.cairn_bin()  # skip before making namespaces when there is no binary
        rng = random.Random()
        name = f"cairn-{os.getpid() % 100000}-{rng.randrange(1 << 16):04x}"
        cls.net = harness.NetnsNet(name, N, f"10.199.{rng.randrange(1, 255)}")
        # Registered before the base class's cleanup: class cleanups run last-in first-out, so
        # the peers are stopped first and the namespaces deleted after.
        cls.addClassCleanup(cls.net.down)
        super().setUpClass()
        cls.src = os.path.join(cls.tmp, "data")
        r = random.Random(cls.seed)
        os.makedirs(os.path.join(cls.src, "d"))
        for k in range(12):
            with open(os.path.join(cls.src, "d" if k % 2 else "", f"f{k}"), "wb") as f:
                f.write(r.randbytes(r.randrange(0, 1_500_000)))
        os.symlink("d/f1", os.path.join(cls.src, "link"))
        print(f"namespaces {name}-1..{N} on {cls.net.subnet}.0/24", flush=True)
        cls.net.up()
        cls.c = cls.make_cluster(N, netns=cls.net, ping_interval="500ms",
                                 announce_interval="1s", start=False)
        cls.c.start(timeout=90)

    def test_1_found_by_multicast_only(self):
        for pid, p in self.c.peers.items():
            cfg = p.config()
            self.assertEqual(cfg.get("seeds"), [], f"peer {pid} has seeds")
            self.assertIs(cfg["discovery"]["multicast"], True)
            seen = {e["peer_id"]: e for e in self.c.peers_seen_by(pid)}
            self.assertEqual(set(seen), set(range(1, N + 1)), seen)
            for q in range(1, N + 1):
                if q != pid:
                    self.assertEqual(seen[q]["state"], "alive", seen[q])
                    self.assertEqual(seen[q]["address"], f"{self.net.address(q)}:7000",
                                     seen[q])

    def test_2_backup_and_restore(self):
        b = self.c.json(1, "backup", self.src, "--copies", "2")
        self.assertIs(b["degraded"], False, b)
        # Stored on the other namespaces' peers.
        self.assertGreater(sum(u for pid, u in self.c.used_by_peer().items() if pid != 1), 0)
        target = os.path.join(self.tmp, "restore")
        r = self.c.cli(1, "restore", b["short_id"], "--target", target, json_out=True)
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, out)


if __name__ == "__main__":
    harness.main()
