#!/usr/bin/env python3
"""A storage peer whose disk is smaller than its quota (docs/operations.md "A full disk").

Peer 4's directory is a 96 MiB tmpfs (root only; skipped otherwise) while every quota is 1G and
[storage] disk_reserve is 16M. Peer 1 backs up 160 MB of random data with --copies 2 to peers
2-4 (each would take ~107 MB by placement alone). Then:
  1. the backup exits 0 with every chunk at target: what peer 4 could not hold went to 2 and 3;
  2. peer 4 holds no more than its disk, and advertises the small room: its `cairn status`
     shows the disk as the limit, `cairn peers` on peer 1 shows its ROOM marked "(disk)";
  3. peer 4's log says once that its disk is full;
  4. the restore is identical to the source;
  5. when the tmpfs grows (space returns) peer 4 logs that it has room again and advertises it.
"""

import os
import random
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MiB = 1 << 20
SOURCE_BYTES = 160 * MiB
SMALL_PEER = 4


def mount_tmpfs(path: str, size: str):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True, capture_output=True, timeout=30)


def tmpfs_unusable(probe_dir: str):
    """Why a tmpfs cannot be mounted here, or None."""
    if os.geteuid() != 0:
        return "not root (mounting a tmpfs needs CAP_SYS_ADMIN)"
    probe = os.path.join(probe_dir, "probe")
    try:
        mount_tmpfs(probe, "1m")
    except (OSError, subprocess.SubprocessError) as e:
        return f"cannot mount a tmpfs: {e}"
    subprocess.run(["umount", probe], capture_output=True, timeout=30)
    os.rmdir(probe)
    return None


def make_tree(root: str, rng: random.Random):
    left, i = SOURCE_BYTES, 0
    while left > 0:
        d = os.path.join(root, f"d{i // 10:02d}")
        os.makedirs(d, exist_ok=True)
        n = min(left, rng.randint(2 * MiB, 6 * MiB))
        with open(os.path.join(d, f"f{i:03d}"), "wb") as f:
            f.write(rng.randbytes(n))
        left -= n
        i += 1


class FullDiskTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = tmpfs_unusable(cls.tmp)
        if why:
            print(f"SKIP: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.small_dir = os.path.join(cls.tmp, "cluster", f"peer{SMALL_PEER}")
        mount_tmpfs(cls.small_dir, "96m")
        # Class cleanups run last-in first-out: the peers stop before the tmpfs goes.
        cls.addClassCleanup(lambda: subprocess.run(["umount", "-l", cls.small_dir],
                                                   capture_output=True, timeout=30))
        cls.rng = random.Random(cls.seed)
        cls.src = os.path.join(cls.tmp, "data")
        make_tree(cls.src, cls.rng)
        cls.c = cls.make_cluster(4, quota="1G", config={("storage", "disk_reserve"): '"16M"'})
        cls.backup = cls.c.cli(1, "backup", cls.src, "--copies", "2", json_out=True, timeout=600)

    def small_status(self):
        return self.c.json(SMALL_PEER, "status")

    def peer_seen_by_home(self, pid: int) -> dict:
        for p in self.c.json(1, "peers"):
            if p["peer_id"] == pid:
                return p
        return {}

    def test_1_backup_at_target(self):
        b = self.backup.json
        self.assertEqual(b["chunks_below_target"], 0, repr(self.backup))
        for pid in (2, 3):
            self.assertGreater(self.c.json(pid, "status")["used"], 100 * MiB)

    def test_2_small_room_advertised(self):
        st = self.small_status()
        self.assertLessEqual(st["used"], 96 * MiB, st)
        self.assertIsNotNone(st.get("disk_free"), st)
        self.assertLess(st["room"], 32 * MiB, st)
        self.assertEqual(st["disk_reserve"], 16 * MiB, st)
        self.assertIn("the disk is the limit", self.c.cli(SMALL_PEER, "status").out)
        harness.wait_for(
            lambda: (self.peer_seen_by_home(SMALL_PEER).get("disk_room") is not None
                     and self.peer_seen_by_home(SMALL_PEER)["room"] < 32 * MiB),
            30, "peer 1 to see peer 4's small room")
        line = [ln for ln in self.c.cli(1, "peers").out.splitlines()
                if ln.split() and ln.split()[0] == str(SMALL_PEER)]
        self.assertEqual(len(line), 1, line)
        self.assertIn("(disk)", line[0])

    def test_3_log_says_disk_full_once(self):
        log = self.c.peers[SMALL_PEER].log_text()
        self.assertEqual(log.count("segments is full"), 1, log[-4000:])

    def test_4_restore_identical(self):
        target = os.path.join(self.tmp, "restore")
        r = self.c.cli(1, "restore", "latest", "--target", target, json_out=True, timeout=600)
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, out = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, f"restore differs (seed {self.seed}):\n{out}")

    def test_5_space_returns(self):
        subprocess.run(["mount", "-o", "remount,size=512m", self.small_dir], check=True,
                       capture_output=True, timeout=30)
        peer = self.c.peers[SMALL_PEER]
        harness.wait_for(lambda: "has room again" in peer.log_text(), 30,
                         "peer 4 to log that its disk has room again")
        self.assertGreater(self.small_status()["room"], 300 * MiB)
        harness.wait_for(lambda: self.peer_seen_by_home(SMALL_PEER).get("room", 0) > 300 * MiB,
                         30, "peer 1 to see peer 4's room grow")


if __name__ == "__main__":
    harness.main()
