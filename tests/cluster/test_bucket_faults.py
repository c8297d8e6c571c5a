#!/usr/bin/env python3
"""Faults around a storage peer whose sealed segments live in an S3-compatible bucket
(docs/operations.md "An off-site copy in S3-compatible storage"), against s3rver on 127.0.0.1.
3 disk peers and a bucket peer (peer 4, segment_size 1M, scrub every second); every backup
uses --copies 2. The tests run in name order, each on trees of its own:

1. forget + GC: two snapshots of disjoint trees; `cairn forget` of the first (garbage
   collection runs with it) makes the bucket peer's segments that held only its blobs dead;
   compaction retires them and their objects (segment and index) leave s3rver's data directory.
   Every segment object left holds a live blob, and the kept snapshot restores identically.
2. scrub: bytes of a blob are flipped inside its segment object in s3rver's data directory
   (s3rver 3.7.1 keeps object KEY as BUCKET/KEY._S3rver_object); the bucket peer's scrub reads it
   with a ranged GET, quarantines that blob, `cairn status` reports it; `cairn repair` from the
   owner puts a new copy elsewhere and the tree restores identically.
3. the S3 server stops while a backup is running: the backup completes (puts go to the local
   open segment; sealed segments wait on the disk), the peer logs the failed upload, and scrub
   reads that fail meanwhile quarantine nothing. With the server back, the waiting segments are
   uploaded, `cairn check` is healthy and the tree restores identically. A snapshot taken
   before the outage restores identically while the server is down (from the other copies).

Skips (prints "SKIP:") when node or npm is missing; s3rver is installed as for
test_bucket_peer.py (into $CAIRN_S3RVER_DIR).
"""

import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_bucket_peer import BUCKET, MiB, S3rver, ensure_s3rver, local_segments  # noqa: E402

PREFIX = "peer4"
OBJECT_SUFFIX = "._S3rver_object"


def write_tree(root: str, rng: random.Random, files: int, big: int):
    os.makedirs(root)
    for k in range(files):
        size = rng.choice([0, 100, 4096, rng.randrange(1, 300_000)])
        with open(os.path.join(root, f"f{k:03d}"), "wb") as f:
            f.write(rng.randbytes(size))
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(rng.randbytes(big))


class BucketFaultsTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ensure_s3rver()
        cls.rng = random.Random(cls.seed)
        cls.s3 = S3rver(os.path.join(cls.tmp, "s3rver-data"))
        cls.addClassCleanup(lambda: cls.s3.stop())  # the one running at the end
        cls.c = cls.make_cluster(3, copies=2)
        creds = os.path.join(cls.tmp, "s3-credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n")
        cls.c.extra_init = ["--storage", f"s3://{BUCKET}/{PREFIX}", "--s3-endpoint",
                            cls.s3.endpoint, "--s3-credentials", creds]
        cls.p4 = cls.c.new_peer(4, edits={("storage", "segment_size"): '"1M"',
                                          ("scrub", "enabled"): "true",
                                          ("scrub", "interval"): '"1s"',
                                          ("scrub", "rate"): '"100M"'})
        cls.c.extra_init = []
        cls.p4.start()
        cls.c.wait_all_alive(60)

    # --- helpers ---------------------------------------------------------------------------
    def objects_dir(self) -> str:
        return os.path.join(self.s3.data_dir, BUCKET, PREFIX, "segments")

    def object_path(self, segment: int, ext: str = "seg") -> str:
        return os.path.join(self.objects_dir(), f"{segment:08d}.{ext}{OBJECT_SUFFIX}")

    def bucket_segments(self) -> dict:
        """{segment id: set of "seg"/"idx"} of the objects in s3rver's data directory."""
        out = {}
        d = self.objects_dir()
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if not name.endswith(OBJECT_SUFFIX):
                continue
            base = name[:-len(OBJECT_SUFFIX)]
            seg, ext = base.split(".")
            out.setdefault(int(seg), set()).add(ext)
        return out

    def uploaded(self) -> bool:
        """Every sealed segment of the bucket peer is in the bucket (only the open one local)."""
        return len(local_segments(self.p4)) <= 1

    def restore_identical(self, snapshot: str, src: str, name: str):
        dest = os.path.join(self.tmp, name)
        self.c.json(1, "restore", snapshot, "--target", dest, timeout=300)
        ok, out = harness.treecmp(src, os.path.join(dest, os.path.basename(src)))
        self.assertTrue(ok, f"restore {name} differs (seed {self.seed}):\n{out}")

    def healthy(self):
        def ok():
            r = self.c.check(1)
            if r.rc == 0:
                return r
            self.c.repair(1)
            return None
        return harness.wait_for(ok, 120, "cairn check to exit 0", interval=1)

    # --- 1 ---------------------------------------------------------------------------------
    def test_1_forget_and_gc_delete_objects(self):
        c, p4 = self.c, self.p4
        src_a = os.path.join(self.tmp, "gc-a")
        src_b = os.path.join(self.tmp, "gc-b")
        write_tree(src_a, self.rng, 20, 12 * MiB)
        write_tree(src_b, self.rng, 20, 3 * MiB)
        snap_a = c.json(1, "backup", src_a, "--copies", "2", timeout=300)["snapshot_id"]
        snap_b = c.json(1, "backup", src_b, "--copies", "2", timeout=300)["snapshot_id"]
        harness.wait_for(self.uploaded, 60, "the bucket peer to upload its sealed segments")
        # A healthy start: the bucket peer's copies in the bucket count for `cairn check`.
        self.assertEqual(c.check(1).rc, 0)

        before = {}  # segment -> keys live in it
        for s in harness.segment_slots(p4.dir):
            before.setdefault(s.segment, set()).add(s.key)
        in_bucket = self.bucket_segments()
        remote = {seg for seg in before if seg in in_bucket}
        self.assertGreaterEqual(len(remote), 3, f"few segments in the bucket: {in_bucket}")
        for seg in remote:
            self.assertEqual(in_bucket[seg], {"seg", "idx"}, seg)

        r = c.json(1, "forget", snap_a[:12], timeout=300)
        self.assertEqual(len(r["removed"]), 1, r)
        self.assertGreater(r["gc"]["unreferenced_chunks"], 0, r)
        self.assertGreater(r["deletions"]["delivered"], 0, r)
        self.assertEqual(r["deletions"]["pending"], 0, r)

        live_now = {s.key for s in harness.segment_slots(p4.dir)}
        # Segments of the bucket whose every blob the GC deleted: nothing needs them.
        unneeded = {seg for seg in remote if not (before[seg] & live_now)}
        self.assertGreater(len(unneeded), 0,
                           f"no bucket segment held only blobs of {snap_a}: {sorted(remote)}")
        print(f"segments in the bucket {sorted(remote)}, of them no longer needed "
              f"{sorted(unneeded)}", flush=True)

        # Compaction (every 30 s) retires them and deletes their objects.
        harness.wait_for(lambda: not (unneeded & set(self.bucket_segments())), 120,
                         f"the objects of segments {sorted(unneeded)} to leave the bucket")
        harness.wait_for(self.uploaded, 60, "compaction outputs to be uploaded")
        for seg in unneeded:
            self.assertFalse(os.path.exists(self.object_path(seg, "seg")), seg)
            self.assertFalse(os.path.exists(self.object_path(seg, "idx")), seg)
        # What is left in the bucket is complete and known to the registry, and every segment
        # object holds a live blob (no segment only dead blobs is kept in the bucket forever:
        # those below compact_below are rewritten, and one with no live blob is below it).
        live_segments = {s.segment for s in harness.segment_slots(p4.dir)}
        known = {s.segment for s in harness.segment_slots(
            p4.dir, states=(harness.SEG_LIVE, harness.SEG_DEAD, harness.SEG_QUARANTINED))}
        for seg, exts in self.bucket_segments().items():
            self.assertEqual(exts, {"seg", "idx"}, f"segment {seg}: half an upload left")
            self.assertIn(seg, known, f"segment {seg} in the bucket is not in the registry")
            self.assertIn(seg, live_segments, f"segment {seg} in the bucket holds no live blob")

        self.restore_identical(snap_b, src_b, "gc-restore-b")
        self.assertEqual(c.check(1).rc, 0)
        self.assertEqual(harness.quarantined_blobs(p4.dir), [])

    # --- 2 ---------------------------------------------------------------------------------
    def test_2_scrub_quarantines_a_blob_damaged_in_the_bucket(self):
        c, p4 = self.c, self.p4
        src = os.path.join(self.tmp, "scrub")
        write_tree(src, self.rng, 30, 4 * MiB)
        snap = c.json(1, "backup", src, "--copies", "2", timeout=300)["snapshot_id"]
        harness.wait_for(self.uploaded, 60, "the bucket peer to upload its sealed segments")
        in_bucket = self.bucket_segments()
        candidates = [s for s in harness.segment_slots(p4.dir)
                      if s.segment in in_bucket and s.owner == 1 and s.size > 1024 and
                      not os.path.exists(harness.segment_path(p4.dir, s.segment))]
        self.assertTrue(candidates, "no blob of peer 1 in a segment only in the bucket")
        victim = self.rng.choice(candidates)
        path = self.object_path(victim.segment)
        with open(path, "rb") as f:
            f.seek(victim.pos)
            rec = harness.parse_record_header(f.read(harness.SEG_RECORD_HEADER))
        self.assertEqual((rec["key"], rec["size"]), (victim.key, victim.size),
                         f"{path}@{victim.pos} is not the record of {victim}")
        start = victim.pos + harness.SEG_RECORD_HEADER
        harness._flip_at(path, sorted({start + self.rng.randrange(0, victim.size // 2),
                                       start + self.rng.randrange(victim.size // 2,
                                                                  victim.size)}))
        print(f"flipped 2 bytes of blob {victim.key} in {path}@{victim.pos}", flush=True)

        harness.wait_for(lambda: harness.is_quarantined(p4.dir, victim.where), 90,
                         f"the bucket peer's scrub to quarantine {victim.where}")
        self.assertNotIn(victim.where, p4.held_blobs())
        self.assertEqual(harness.quarantined_blobs(p4.dir), [victim.key],
                         "only the damaged blob is quarantined")
        st = c.json(4, "status")
        self.assertGreaterEqual(st["scrub"]["quarantined"], 1, st["scrub"])
        self.assertIn("quarantin", p4.log_text())

        self.healthy()
        self.assertEqual(c.check(1, "--read-data").rc, 0)
        self.restore_identical(snap, src, "scrub-restore")

    # --- 3 ---------------------------------------------------------------------------------
    def test_3_s3_server_stopped_mid_backup(self):
        c, p4 = self.c, self.p4
        src = os.path.join(self.tmp, "s3down")
        write_tree(src, self.rng, 40, 40 * MiB)
        # A snapshot whose blobs on the bucket peer are only in the bucket, read while it is down.
        before = os.path.join(self.tmp, "s3down-before")
        write_tree(before, self.rng, 20, 3 * MiB)
        snap_before = c.json(1, "backup", before, "--copies", "2", timeout=300)["snapshot_id"]
        harness.wait_for(self.uploaded, 60, "earlier segments to be uploaded")
        quarantined = harness.quarantined_blobs(p4.dir)
        held = {s.key for s in harness.segment_slots(p4.dir)}
        log_at = len(p4.log_text())

        result = {}

        def backup():
            result["r"] = c.cli(1, "backup", src, "--copies", "2", json_out=True, expect=None,
                                timeout=300)

        t = threading.Thread(target=backup)
        t.start()
        try:
            # Stop the server once the bucket peer took some blobs of this backup.
            harness.wait_for(lambda: len({s.key for s in harness.segment_slots(p4.dir)} - held)
                             >= 5, 120, "the bucket peer to take blobs of the backup")
            port = self.s3.port
            self.s3.stop()
            stopped_ns = time.time_ns()
            at_stop = {s.key for s in harness.segment_slots(p4.dir)}
            print("s3rver stopped during the backup", flush=True)
        finally:
            t.join(320)
        r = result["r"]
        # The puts are acknowledged after the local fsync: the backup completes.
        self.assertEqual(r.rc, 0, repr(r))
        snap = r.json["snapshot_id"]
        # The server was down while the bucket peer still took puts of this backup.
        after_stop = {s.key for s in harness.segment_slots(p4.dir)} - at_stop
        print(f"the bucket peer took {len(after_stop)} blobs after s3rver stopped", flush=True)
        self.assertGreater(len(after_stop), 0, "the backup ended before s3rver stopped")
        harness.wait_for(lambda: "storage: upload to" in p4.log_text()[log_at:], 30,
                         "the bucket peer to log the failed upload")
        self.assertGreater(len(local_segments(p4)), 1,
                           "sealed segments should wait on the disk while the bucket is down")
        # Scrub passes go on meanwhile: their reads of the bucket fail (UNAVAILABLE once the
        # store's retries are spent), which is counted as an error, not as damage.
        def scrub_errors():
            sc = c.json(4, "status")["scrub"]
            passes = [sc.get("current_pass")]
            if sc.get("last_pass") and sc["last_pass"]["finished_ns"] > stopped_ns:
                passes.append(sc["last_pass"])
            return any(p and p["errors"] > 0 for p in passes)

        harness.wait_for(scrub_errors, 120, "a scrub pass to fail reading the stopped bucket")
        self.assertEqual(harness.quarantined_blobs(p4.dir), quarantined,
                         "a failed read of the bucket quarantined a blob")

        # Nothing is lost meanwhile: blobs the bucket peer cannot read come from their other
        # copy.
        self.restore_identical(snap_before, before, "s3down-restore-before")
        self.assertEqual(harness.quarantined_blobs(p4.dir), quarantined)

        type(self).s3 = S3rver(self.s3.data_dir, port=port)
        print(f"s3rver started again on port {port}", flush=True)
        harness.wait_for(lambda: "uploads to" in p4.log_text()[log_at:] and self.uploaded(),
                         90, "the waiting segments to be uploaded")
        in_bucket = self.bucket_segments()
        for s in harness.segment_slots(p4.dir):
            if not os.path.exists(harness.segment_path(p4.dir, s.segment)):
                self.assertEqual(in_bucket.get(s.segment), {"seg", "idx"}, s)
        self.assertEqual(harness.quarantined_blobs(p4.dir), quarantined,
                         "a failed read of the bucket quarantined a blob")
        self.healthy()
        self.restore_identical(snap, src, "s3down-restore")


if __name__ == "__main__":
    harness.main()
