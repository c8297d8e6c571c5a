#!/usr/bin/env python3
"""A storage peer killed in the middle of a restore (docs/architecture.md "Holders and retries").

Peer 1 backs up ~340 MB (random content, from the printed seed: 64 files of 5 MB and 2,000 small
files) with --copies 2 onto peers 2-4. Peer 2 is then killed with SIGKILL and restarted, and
the test waits until every peer sees it alive again: the holder "that just restarted". A restore
starts in the background; once a tenth of its bytes are written, peer 3 is killed with SIGKILL
(the chunks it held have their other copy on peer 2 or 4), and restarted once another tenth is
written, while the restore goes on. The restore must exit 0 with a tree identical to the source
(each chunk read from another recorded holder, retried while a holder reconnects), and peer
1's log must show no chunk given up on.
"""

import os
import random
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIG_FILES = 64
BIG_SIZE = 5 << 20
SMALL_FILES = 2000


def make_tree(root: str, rng: random.Random) -> int:
    os.makedirs(os.path.join(root, "big"))
    total = 0
    for i in range(BIG_FILES):
        with open(os.path.join(root, "big", f"b{i:03d}"), "wb") as f:
            f.write(rng.randbytes(BIG_SIZE))
        total += BIG_SIZE
    for i in range(SMALL_FILES):
        d = os.path.join(root, f"s{i // 200:02d}")
        if i % 200 == 0:
            os.makedirs(d)
        n = rng.randint(100, 8192)
        with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
            f.write(rng.randbytes(n))
        total += n
    return total


def written_bytes(root: str) -> int:
    """Bytes a restore has written so far: its files are created at full size but sparse, so
    the allocated blocks are what pwrite filled in."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


class RestoreFailoverTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rng = random.Random(cls.seed)
        cls.src = os.path.join(cls.tmp, "data")
        cls.total = make_tree(cls.src, cls.rng)
        cls.c = cls.make_cluster(4)
        cls.backup = cls.c.cli(1, "backup", cls.src, "--copies", "2", json_out=True,
                               timeout=900)

    def test_killed_holder_mid_restore(self):
        b = self.backup.json
        self.assertEqual(b["chunks_below_target"], 0, repr(self.backup))
        c = self.c

        # Peer 2 restarts: alive again for every peer, but a fresh process.
        c.peers[2].kill9()
        c.peers[2].start()
        c.wait_api(2)
        c.wait_all_alive(60)

        target = os.path.join(self.tmp, "restore")
        p1 = c.peers[1]
        argv = [c.bin, "restore", "--dir", p1.dir, "--json", "latest", "--target", target]
        restore = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            harness.wait_for(lambda: restore.poll() is not None
                             or written_bytes(target) >= self.total // 10,
                             300, "a tenth of the restore written")
            self.assertIsNone(restore.poll(),
                              "the restore ended before a peer could be killed in its middle")
            c.peers[3].kill9()
            at_kill = written_bytes(target)
            print(f"peer 3 killed with {at_kill} of {self.total} bytes restored", flush=True)
            # Restarted while the restore goes on, once the restore has had to do without it.
            harness.wait_for(lambda: restore.poll() is not None
                             or written_bytes(target) >= at_kill + self.total // 10,
                             300, "the restore going on without peer 3")
            c.peers[3].start()
            out, err = restore.communicate(timeout=900 * harness.TIME_SCALE)
        finally:
            if restore.poll() is None:
                restore.kill()
                restore.wait()
        r = harness.CliResult(argv, restore.returncode, out, err, True)
        print(f"$ {' '.join(argv)}  -> exit {r.rc}", flush=True)
        self.assertEqual(r.rc, 0, repr(r))
        self.assertEqual(r.json.get("errors", []), [], repr(r))
        ok, diff = harness.treecmp(self.src, os.path.join(target, "data"))
        self.assertTrue(ok, f"restore differs (seed {self.seed}):\n{diff}")
        # No chunk was given up on. (Whether a fetch met peer 3 dead, and logged the fallback, or
        # membership had already made it suspect and its chunks went to their other holder
        # first, depends on timing.)
        log = p1.log_text()
        self.assertNotIn("no copy could be read", log)
        print(f"fallbacks logged: {log.count('failed (')}", flush=True)

        # Peer 3 is back: every peer sees it alive again.
        c.wait_api(3)
        c.wait_all_alive(60)


if __name__ == "__main__":
    harness.main()
