#!/usr/bin/env python3
"""Off-site copies (docs/operations.md "Sites and off-site copies"): 3 disk peers on the LAN
site and a bucket peer (peer 4, `cairn init --storage s3://...` against s3rver, site "offsite"
by default).

1. `cairn peers --json` shows each peer's site; a real tree (a copy of part of /usr/share/doc,
   symlinks kept, plus a generated file) backed up from peer 1 with `--copies 2 --offsite 1` has
   a copy of every chunk on the bucket peer (its blob registry), `check` is healthy and reports
   no chunk without its off-site copy, `status` agrees.
2. With the bucket peer stopped (and seen not alive), a second tree backed up with
   `--offsite 1` ends degraded (exit 3, the warning names the off-site target); `check` and
   `status` count its chunks without their off-site copy. With the bucket peer back, `repair`
   puts them there: `check` is healthy again.
3. Every disk peer but the home peer and one storage peer is killed (SIGKILL): both trees
   restore identically from the surviving disk peer and the bucket peer.

Skips (prints "SKIP:") when node or npm is missing; s3rver is installed as for
test_bucket_peer.py (into $CAIRN_S3RVER_DIR).
"""

import os
import random
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_bucket_peer import BUCKET, MiB, S3rver, ensure_s3rver  # noqa: E402

DOC = "/usr/share/doc"


def copy_real_tree(dest: str, rng: random.Random, limit: int = 6 * MiB):
    """Copies whole package directories of /usr/share/doc (sorted, symlinks as symlinks) until
    about `limit` bytes, plus one generated file so that several segments are sealed."""
    os.makedirs(dest)
    total = 0
    if os.path.isdir(DOC):
        for name in sorted(os.listdir(DOC)):
            src = os.path.join(DOC, name)
            if not os.path.isdir(src) or os.path.islink(src):
                continue
            size = 0
            for root, _, files in os.walk(src):
                for f in files:
                    p = os.path.join(root, f)
                    if not os.path.islink(p):
                        size += os.path.getsize(p)
            if total + size > limit:
                continue
            try:
                shutil.copytree(src, os.path.join(dest, name), symlinks=True)
            except (OSError, shutil.Error):
                shutil.rmtree(os.path.join(dest, name), ignore_errors=True)
                continue
            total += size
    with open(os.path.join(dest, "generated.bin"), "wb") as f:
        f.write(rng.randbytes(3 * MiB))


class OffsiteTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ensure_s3rver()
        cls.rng = random.Random(cls.seed)
        cls.s3 = S3rver(os.path.join(cls.tmp, "s3rver-data"))
        cls.addClassCleanup(cls.s3.stop)
        cls.c = cls.make_cluster(3, copies=2, suspect_after="3s")
        creds = os.path.join(cls.tmp, "s3-credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n")
        cls.c.extra_init = ["--storage", f"s3://{BUCKET}/peer4", "--s3-endpoint",
                            cls.s3.endpoint, "--s3-credentials", creds]
        cls.p4 = cls.c.new_peer(4, edits={("storage", "segment_size"): '"1M"'})
        cls.c.extra_init = []
        cls.p4.start()
        cls.c.wait_all_alive(60)

    def restore_identical(self, snapshot: str, src: str, name: str):
        dest = os.path.join(self.tmp, name)
        self.c.json(1, "restore", snapshot, "--target", dest, timeout=300)
        ok, out = harness.treecmp(src, os.path.join(dest, os.path.basename(src)))
        self.assertTrue(ok, f"restore {name} differs (seed {self.seed}):\n{out}")

    def chunks_without_bucket_copy(self) -> list:
        """Peer 1's chunks (as the storage peers hold them) that the bucket peer does not hold."""
        blobs = self.c.blob_map(peer_ids=[2, 3, 4], owner=1)
        self.assertGreater(len(blobs), 0, "no blobs of peer 1 on any storage peer")
        return [chunk for (_, chunk), shards in blobs.items() if 4 not in shards.get(0, set())]

    def test_offsite(self):
        c, p4 = self.c, self.p4
        self.assertEqual(p4.config().get("site"), "offsite", "a bucket peer's default site")
        sites = {p["peer_id"]: p["site"] for p in c.json(1, "peers")}
        self.assertEqual(sites, {1: "", 2: "", 3: "", 4: "offsite"})

        # 1. Every chunk of a --copies 2 --offsite 1 backup has a copy on the bucket peer.
        tree_a = os.path.join(self.tmp, "docs")
        copy_real_tree(tree_a, self.rng)
        r = c.json(1, "backup", tree_a, "--copies", "2", "--offsite", "1", timeout=300)
        snap_a = r["short_id"]
        self.assertEqual(r["offsite"], 1)
        self.assertFalse(r["degraded"], r)
        self.assertEqual(self.chunks_without_bucket_copy(), [])
        check = c.check(1)
        self.assertEqual(check.rc, 0, check)
        self.assertEqual(check.json["without_offsite"], 0)
        self.assertEqual(c.json(1, "status")["chunks_without_offsite"], 0)
        self.assertIn("offsite", c.cli(1, "peers").out)

        # 2. The bucket peer down: a backup is degraded, check counts the chunks short of
        # their off-site copy, and repair places them once the bucket peer is back.
        self.assertEqual(p4.stop(), 0, p4.log_tail())
        c.wait_state(1, [4], "suspect", 60)
        tree_b = os.path.join(self.tmp, "later")
        os.makedirs(tree_b)
        for k in range(20):
            with open(os.path.join(tree_b, f"f{k:02d}"), "wb") as f:
                f.write(self.rng.randbytes(self.rng.randrange(1, 200_000)))
        r = c.cli(1, "backup", tree_b, "--copies", "2", "--offsite", "1", json_out=True,
                  expect=3, timeout=300)
        snap_b = r.json["short_id"]
        self.assertTrue(r.json["degraded"], r)
        self.assertGreater(r.json["chunks_below_target"], 0, r)
        self.assertIn("off-site", r.json["redundancy_warning"] or "", r)
        check = c.check(1)
        self.assertEqual(check.rc, 3, check)
        short = check.json["without_offsite"]
        self.assertGreater(short, 0, check)
        human = c.cli(1, "check", expect=3).out
        self.assertIn(f"{short} chunks without their off-site copy", human)
        status = c.cli(1, "status", json_out=True, expect=3).json  # 3: chunks below target
        self.assertGreater(status["chunks_without_offsite"], 0, status)

        p4.start()
        c.wait_all_alive(60)
        harness.wait_for(lambda: c.repair(1).rc == 0 and c.check(1).rc == 0, 180,
                         "repair to put the missing off-site copies on the bucket peer")
        self.assertEqual(c.check(1).json["without_offsite"], 0)
        self.assertEqual(self.chunks_without_bucket_copy(), [])
        self.assertEqual(c.json(1, "status")["chunks_without_offsite"], 0)

        # 3. Only the home peer, one disk storage peer and the bucket peer left.
        c.peer(3).kill9()
        self.restore_identical(snap_a, tree_a, "restore-a")
        self.restore_identical(snap_b, tree_b, "restore-b")


if __name__ == "__main__":
    harness.main()
