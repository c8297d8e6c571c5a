#!/usr/bin/env python3
"""Disaster recovery of a home peer: `cairn key export` and `cairn recover`.

A cluster of 4 peers (home 1, storage 2-4, 2 copies, small chunks). Peer 1 backs up two trees:
data1 with 2 copies and data2 (which shares a large file with data1) erasure-coded 2+1. Its
recovery key is exported. Then peer 1 is stopped and its directory deleted entirely.

Wrong keys fail cleanly, each without leaving a directory behind: a key with one character
mistyped (exit 2, "mistyped"), the right key with another --peer-id (exit 2), the recovery key
of another cluster (exit 1: the members refuse its cluster key), and a key with this cluster's
key, peer id and node id but another owner key (exit 1: the TLS certificate made from that owner
key is not the one the members pinned to peer id 1, docs/security.md "TLS between peers").

With the right key, `cairn recover` into a new directory (on a new port) rebuilds the index;
the recovered peer is started with `cairn peer`, `cairn snapshots` lists both snapshots, each
restores byte-identically (treecmp), `cairn check` finds every chunk at target, and a new backup
works.
"""

import base64
import os
import random
import shutil
import sys
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB = 1 << 10
SMALL_CHUNKS = dict(chunk_min="64K", chunk_avg="128K", chunk_max="512K")
PREFIX = "cairn-recovery-1:"


def write(path: str, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def decode_key(key: str) -> bytes:
    """The 93 raw bytes of a recovery key (payload || CRC-32), docs/formats.md."""
    body = key[len(PREFIX):].replace("-", "").upper()
    body += "=" * (-len(body) % 8)
    return base64.b32decode(body)[:93]


def encode_key(payload: bytes) -> str:
    raw = payload + zlib.crc32(payload).to_bytes(4, "little")
    return PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


class RecoverTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rng = random.Random(cls.seed)
        cls.c = cls.make_cluster(4, **SMALL_CHUNKS)
        shared = rng.randbytes(1500 * KiB)
        cls.data1 = os.path.join(cls.tmp, "data1")
        write(os.path.join(cls.data1, "big.bin"), shared)
        write(os.path.join(cls.data1, "docs", "notes.txt"), b"notes\n" * 5000)
        write(os.path.join(cls.data1, "docs", "empty"), b"")
        write(os.path.join(cls.data1, "small.bin"), rng.randbytes(3 * KiB))
        os.symlink("big.bin", os.path.join(cls.data1, "link"))
        os.link(os.path.join(cls.data1, "small.bin"), os.path.join(cls.data1, "hard"))
        cls.data2 = os.path.join(cls.tmp, "data2")
        write(os.path.join(cls.data2, "big.bin"), shared)
        write(os.path.join(cls.data2, "more", "random.bin"), rng.randbytes(900 * KiB))
        write(os.path.join(cls.data2, "more", "text.txt"), b"a line of text\n" * 20000)
        cls.sources = {}
        b1 = cls.c.json(1, "backup", cls.data1, timeout=300)
        cls.sources[b1["snapshot_id"]] = cls.data1
        b2 = cls.c.json(1, "backup", cls.data2, "--ec", "2+1", timeout=300)
        cls.sources[b2["snapshot_id"]] = cls.data2
        cls.key = cls.c.json(1, "key export")["recovery_key"]

    def recover(self, key: str, peer_id: int = 1, name: str = "peer1-recovered", port=None,
                expect=0, wait: str = "30s"):
        c = self.c
        port = port or harness.free_ports(1)[0]
        target = os.path.join(c.root, name)
        args = ["recover", "--recovery-key", key, "--peer-id", str(peer_id), "--dir", target,
                "--seed", c.peers[2].listen, "--listen", f"127.0.0.1:{port}",
                "--api", "127.0.0.1:0", "--quota", "1G", "--host-id", "host1-new",
                "--ping-interval", c.ping_interval, "--wait", wait, "--json"]
        for flag, v in c.chunk.items():
            if v:
                args += [flag, v]
        r = c.run_raw(args, timeout=300)
        ok = r.rc in expect if isinstance(expect, tuple) else r.rc == expect
        self.assertTrue(ok, f"expected exit {expect}: {r!r}")
        return r, target, port

    def test_recover_after_losing_the_home_peer(self):
        c = self.c
        # The text form: one line on stdout, the advice on stderr.
        text = c.cli(1, "key export")
        self.assertEqual(text.out.strip(), self.key)
        self.assertIn("off this machine", text.err.lower())
        self.assertTrue(self.key.startswith(PREFIX), self.key)

        home = c.peers[1]
        self.assertEqual(home.stop(), 0)
        shutil.rmtree(home.dir)

        # 1. A typo: one character changed.
        body = self.key[len(PREFIX):]
        i = next(j for j, ch in enumerate(body) if ch != "-" and j > 20)
        typo = PREFIX + body[:i] + ("a" if body[i] != "a" else "b") + body[i + 1:]
        r, target, _ = self.recover(typo, expect=2)
        self.assertIn("mistyped", r.err)
        self.assertFalse(os.path.exists(target), "a mistyped key made a directory")

        # 2. The right key for another peer id.
        r, target, _ = self.recover(self.key, peer_id=2, expect=2)
        self.assertIn("belongs to peer 1", r.err)
        self.assertFalse(os.path.exists(target))

        # 3. The recovery key of another cluster: the members refuse its cluster key.
        other_dir = os.path.join(self.tmp, "other-cluster-peer")
        r = c.run_raw(["init", "--dir", other_dir, "--peer-id", "1", "--listen", "127.0.0.1:0"])
        self.assertEqual(r.rc, 0, repr(r))
        other = c.run_raw(["key", "export", "--dir", other_dir, "--json"])
        self.assertEqual(other.rc, 0, repr(other))
        r, target, _ = self.recover(other.json["recovery_key"], expect=1, wait="15s")
        err = r.err
        self.assertIn("cluster key", err)
        self.assertFalse(os.path.exists(target), "a failed recovery left its directory")

        # 4. This cluster's key, peer id and node id, but another owner key: its TLS certificate
        # (made from the owner key) is not the one the members pinned, and they refuse it.
        raw = decode_key(self.key)
        payload = raw[:89]
        forged = encode_key(payload[:9] + bytes(32) + payload[41:])
        r, target, _ = self.recover(forged, expect=1, wait="15s")
        err = r.err
        self.assertIn("TLS certificate refused (is the recovery key this peer's?)", err)
        self.assertIn("peer id 1 presented TLS certificate", err)
        self.assertIn("but it is pinned to certificate", err)
        self.assertFalse(os.path.exists(target))

        # 5. The right key.
        r, target, port = self.recover(self.key)
        report = r.json
        self.assertTrue(report["complete"], report)
        self.assertEqual(sorted(s["id"] for s in report["snapshots"]), sorted(self.sources), report)
        self.assertEqual(report["peers_listed"], [2, 3, 4], report)
        self.assertGreater(report["erasure_chunks"], 0, report)
        self.assertEqual(report["missing_chunks"], 0, report)

        recovered = harness.Peer(c, 1, port, name=os.path.basename(target))
        for (section, key), value in c.settings().items():
            recovered.set_config(section, key, value)
        self.assertIn(recovered.config()["quota"], ("1G", 1 << 30))  # not the 0 of recovery
        c.peers[1] = recovered
        recovered.start()
        c.wait_all_alive(60)

        snaps = c.json(1, "snapshots")
        self.assertEqual(sorted(s["id"] for s in snaps), sorted(self.sources), snaps)
        for snap_id, src in self.sources.items():
            dest = os.path.join(self.tmp, f"restore-{snap_id[:8]}")
            res = c.json(1, "restore", snap_id[:12], "--target", dest, timeout=300)
            self.assertEqual(res.get("errors", []), [], res)
            ok, out = harness.treecmp(src, os.path.join(dest, os.path.basename(src)))
            self.assertTrue(ok, f"restore of {snap_id} differs (seed {self.seed}):\n{out}")

        check = c.check(1)
        self.assertEqual(check.rc, 0, repr(check))
        self.assertEqual(check.json["below_target"], 0, check.json)
        self.assertEqual(check.json["lost"], 0, check.json)

        # Backups go on: the recovered peer deduplicates against what it recovered.
        write(os.path.join(self.data1, "after.txt"), b"written after the recovery\n")
        b = c.json(1, "backup", self.data1, timeout=300)
        self.assertLess(b["new_bytes"], 100 * KiB, b)


if __name__ == "__main__":
    harness.main()
