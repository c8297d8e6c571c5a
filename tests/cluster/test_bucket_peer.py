#!/usr/bin/env python3
"""A storage peer whose sealed segments live in an S3-compatible bucket (docs/operations.md "An
off-site copy in S3-compatible storage"), against s3rver (an S3 emulator from npm) on 127.0.0.1.

- 3 disk peers and 1 bucket peer made with `cairn init --storage s3://BUCKET/PREFIX
  --s3-endpoint URL --s3-credentials FILE` (segment_size 1M, so that backups seal segments).
- A generated tree is backed up with --copies 2 and restores byte-identically; the bucket peer's
  sealed segments are uploaded and leave its disk (only the open segment stays local).
- The bucket peer's directory is lost except cairn.toml and secrets/: restarted, it rebuilds its
  registry from the bucket and holds again every blob of its uploaded segments. After `cairn
  repair` (which re-places what was in the lost open segment) a disk peer is stopped, and the
  tree still restores identically: blobs whose other copy was there come from the bucket.

Skips (prints "SKIP:") when node or npm is missing. s3rver is installed into $CAIRN_S3RVER_DIR
(ctest sets it to BUILD/s3rver-cache, shared with s3rver_test).
"""

import os
import random
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BUCKET = "cairn-test"
MiB = 1 << 20


def s3rver_dir() -> str:
    return os.environ.get("CAIRN_S3RVER_DIR") or os.path.join(os.getcwd(), "s3rver-cache")


def s3rver_script() -> str:
    return os.path.join(s3rver_dir(), "node_modules", "s3rver", "bin", "s3rver.js")


def ensure_s3rver():
    """Installs s3rver with npm if needed; exits with SKIP when node or npm is missing."""
    if os.path.exists(s3rver_script()):
        return
    if shutil.which("npm") is None or shutil.which("node") is None:
        print("SKIP: npm or node is not installed; s3rver cannot be installed")
        sys.exit(0)
    os.makedirs(s3rver_dir(), exist_ok=True)
    with open(os.path.join(s3rver_dir(), "npm.log"), "ab") as log:
        rc = subprocess.call(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix",
                              s3rver_dir(), "s3rver@3.7.1"], stdout=log, stderr=log)
    if rc != 0 or not os.path.exists(s3rver_script()):
        raise SystemExit(f"npm install s3rver into {s3rver_dir()} failed (see npm.log there)")


class S3rver:
    """One s3rver process on 127.0.0.1 with its own data directory: on an ephemeral port, or on
    `port` with the data directory of an earlier one (a server started again after stop())."""

    def __init__(self, data_dir: str, port: int = 0):
        os.makedirs(data_dir, exist_ok=bool(port))
        self.data_dir = data_dir
        self.log_path = data_dir + ".log"
        log = open(self.log_path, "ab")
        # s3rver 3.7 makes continuation tokens with DES: Node >= 17 has it in the legacy provider.
        self.proc = subprocess.Popen(
            ["node", "--openssl-legacy-provider", s3rver_script(), "-d", data_dir, "-a",
             "127.0.0.1", "-p", str(port), "--configure-bucket", BUCKET],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            preexec_fn=harness._die_with_parent)
        log.close()
        self.port = 0
        deadline = time.monotonic() + 60
        text = b""
        marker = b"listening on 127.0.0.1:"
        while time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline()
            text += line
            if marker in line:
                self.port = int(line.split(marker)[1].split()[0].rstrip(b"/"))
                break
        if not self.port:
            self.stop()
            raise AssertionError(f"s3rver did not report its port within 60 s: {text!r} "
                                 f"(see {self.log_path})")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def make_tree(root: str, rng: random.Random):
    os.makedirs(root)
    for d in range(6):
        sub = os.path.join(root, f"d{d}")
        os.makedirs(sub)
        for k in range(12):
            size = rng.choice([0, 100, 4096, rng.randrange(1, 300_000)])
            with open(os.path.join(sub, f"f{k:02d}"), "wb") as f:
                f.write(rng.randbytes(size))
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(rng.randbytes(10 * MiB))


def local_segments(peer: harness.Peer) -> list:
    d = os.path.join(peer.dir, "segments")
    return sorted(n for n in os.listdir(d) if n.endswith(".seg")) if os.path.isdir(d) else []


def held_keys(peer: harness.Peer, exclude_segments=()) -> set:
    return {s.key for s in harness.segment_slots(peer.dir) if s.segment not in exclude_segments}


class BucketPeerTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ensure_s3rver()
        cls.s3 = S3rver(os.path.join(cls.tmp, "s3rver-data"))
        cls.addClassCleanup(cls.s3.stop)
        cls.c = cls.make_cluster(3, copies=2)
        creds = os.path.join(cls.tmp, "s3-credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n")
        cls.c.extra_init = ["--storage", f"s3://{BUCKET}/peer4", "--s3-endpoint",
                            cls.s3.endpoint, "--s3-credentials", creds]
        cls.p4 = cls.c.new_peer(4, edits={("storage", "segment_size"): '"1M"'})
        cls.c.extra_init = []
        # The credentials file lives with the peer's secrets (kept when the rest is lost).
        kept = os.path.join(cls.p4.dir, "secrets", "s3-credentials")
        shutil.copy(creds, kept)
        cls.p4.set_config("s3", "credentials_file", f'"{kept}"')
        cls.p4.start()
        cls.c.wait_all_alive(60)
        cls.src = os.path.join(cls.tmp, "src")
        make_tree(cls.src, random.Random(cls.seed))

    def restore_identical(self, name: str):
        dest = os.path.join(self.tmp, name)
        self.c.json(1, "restore", "latest", "--target", dest, timeout=300)
        ok, out = harness.treecmp(self.src, os.path.join(dest, os.path.basename(self.src)))
        self.assertTrue(ok, f"restore {name} differs (seed {self.seed}):\n{out}")

    def test_bucket_peer(self):
        c, p4 = self.c, self.p4
        cfg = p4.config()
        self.assertEqual(cfg["storage"]["bucket"], f"s3://{BUCKET}/peer4")
        self.assertEqual(cfg["s3"]["endpoint"], self.s3.endpoint)
        self.assertIn("storage: sealed segments go to s3://", p4.log_text())

        c.json(1, "backup", self.src, "--copies", "2", timeout=300)
        self.assertGreater(len(held_keys(p4)), 0, "the bucket peer holds nothing")
        # Sealed segments leave the disk once uploaded: only the open one stays.
        harness.wait_for(lambda: "uploaded" in p4.log_text() and len(local_segments(p4)) <= 1,
                         60, "the bucket peer to upload its sealed segments")
        slots = harness.segment_slots(p4.dir)
        segments = {s.segment for s in slots}
        self.assertGreaterEqual(len(segments), 3, "expected several sealed segments")
        self.restore_identical("restore-1")

        # Lose the bucket peer's directory but for its config and secrets.
        open_segments = {int(n[:-4]) for n in local_segments(p4)}
        in_bucket = held_keys(p4, exclude_segments=open_segments)
        self.assertGreater(len(in_bucket), 0)
        self.assertEqual(p4.stop(), 0, p4.log_tail())
        for name in os.listdir(p4.dir):
            if name in ("cairn.toml", "secrets"):
                continue
            path = os.path.join(p4.dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        p4.start()
        c.wait_all_alive(60)
        harness.wait_for(lambda: "rebuilt" in p4.log_text(), 30, "the registry rebuild log line")
        self.assertEqual(held_keys(p4), in_bucket,
                         "the rebuilt registry does not hold what the uploaded segments held")
        self.assertEqual(local_segments(p4), [], "segments were downloaded instead of read")
        self.restore_identical("restore-2")

        # What the lost open segment held goes back on some peer; then a disk peer stops and
        # blobs whose other copy was there are read from the bucket.
        c.repair(1)
        self.assertEqual(c.peer(3).stop(), 0)
        self.restore_identical("restore-3")


if __name__ == "__main__":
    harness.main()
