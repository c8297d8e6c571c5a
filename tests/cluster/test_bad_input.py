#!/usr/bin/env python3
"""Bad input gets a clear error and the peer keeps serving (docs/architecture.md "Invariants and
where they hold": bad input).

Garbage, a bogus HTTP request and half-open connections on a peer's gRPC port and on its local
API port; API requests without or with a wrong token (401), malformed JSON (400), unknown routes
(404); CLI errors (bad snapshot id, missing paths: exit 1; bad usage: exit 2); corrupt
cairn.toml (the daemon exits 1 naming the file). After all that the peer still answers and a
backup and restore still work, and SIGTERM shuts every peer down cleanly (exit 0).
"""

import os
import random
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def make_small_tree(root: str, rng: random.Random):
    os.makedirs(os.path.join(root, "sub"))
    for k in range(20):
        with open(os.path.join(root, "sub" if k % 2 else "", f"f{k}"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(0, 300_000)))
    os.symlink("sub/f1", os.path.join(root, "link"))


def send_and_close(port: int, data: bytes):
    """Connects, sends data, reads whatever comes back (up to 2 s), closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(2)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the peer may reset the connection: fine


class BadInputTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rng = random.Random(cls.seed)
        cls.src = os.path.join(cls.tmp, "src")
        make_small_tree(cls.src, cls.rng)
        cls.c = cls.make_cluster(3)
        cls.open_sockets = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.open_sockets:
            s.close()

    def half_open(self, port: int, data: bytes):
        """A connection that sends a partial request and then stays open (until teardown)."""
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(data)
        self.open_sockets.append(s)

    def assert_serving(self, peer: int = 1):
        peers = self.c.json(peer, "peers", timeout=30)
        self.assertEqual(sorted(p["peer_id"] for p in peers), [1, 2, 3], peers)
        status = self.c.json(peer, "status", expect=None, timeout=30)
        self.assertIsInstance(status, dict)
        self.assertEqual(status["peer_id"], peer)
        self.assertTrue(self.c.peers[peer].running(), f"peer {peer} died")

    def test_1_garbage_on_ports(self):
        target = self.c.peers[2]
        grpc_port = target.listen_port
        api_port = self.c.wait_api(2)
        garbage = self.rng.randbytes(64 * 1024)
        bogus_http = b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
        h2_preface_then_junk = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.rng.randbytes(4096)
        for port in (grpc_port, api_port):
            send_and_close(port, garbage)
            send_and_close(port, bogus_http)
            send_and_close(port, h2_preface_then_junk)
            send_and_close(port, b"")
            self.half_open(port, b"POST /v1/backup HTTP/1.1\r\nContent-Length: 100000\r\n\r\n{")
            self.half_open(port, h2_preface_then_junk[:30])
            self.half_open(port, b"")
        # Still serving: its own API, and the others still see it alive (its gRPC port works).
        self.assert_serving(2)
        harness.wait_for(lambda: 2 in self.c.alive_seen_by(1), 30, "peer 1 to see peer 2 alive")
        harness.wait_for(lambda: 2 in self.c.alive_seen_by(3), 30, "peer 3 to see peer 2 alive")
        # The same on the home peer's ports.
        send_and_close(self.c.peers[1].listen_port, garbage)
        send_and_close(self.c.wait_api(1), garbage)
        self.assert_serving(1)

    def test_2_api_errors(self):
        st, body = self.c.http(1, "GET", "/v1/status", token=None)
        self.assertEqual(st, 401, body)
        self.assertEqual(body["error"]["code"], "UNAUTHENTICATED", body)
        self.assertTrue(body["error"]["message"])
        st, body = self.c.http(1, "GET", "/v1/peers", token="0" * 64)
        self.assertEqual(st, 401, body)
        st, body = self.c.http(1, "POST", "/v1/backup", body={"paths_base64": []}, token=None)
        self.assertEqual(st, 401, body)

        st, body = self.c.http(1, "GET", "/v1/status")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["peer_id"], 1)
        st, body = self.c.http(1, "POST", "/v1/backup", body=b"{not json",
                               headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400, body)
        self.assertEqual(body["error"]["code"], "INVALID_ARGUMENT", body)
        st, body = self.c.http(1, "POST", "/v1/restore", body=b"\xff\xfe\x00garbage")
        self.assertEqual(st, 400, body)
        st, body = self.c.http(1, "POST", "/v1/backup", body={"paths_base64": "not a list"})
        self.assertEqual(st, 400, body)
        st, body = self.c.http(1, "GET", "/v1/no/such/route")
        self.assertEqual(st, 404, body)
        st, body = self.c.http(1, "GET", "/v1/jobs/nosuchjob")
        self.assertEqual(st, 404, body)
        self.assertEqual(body["error"]["code"], "NOT_FOUND", body)
        self.assert_serving(1)

    def test_3_backup_restore_still_work(self):
        r = self.c.cli(1, "backup", self.src, json_out=True)
        self.assertEqual(r.json["degraded"], False)
        target = os.path.join(self.tmp, "restore")
        self.c.cli(1, "restore", r.json["short_id"], "--target", target)
        ok, out = harness.treecmp(self.src, os.path.join(target, "src"))
        self.assertTrue(ok, out)

    def assert_error(self, r, rc=1):
        self.assertEqual(r.rc, rc, repr(r))
        self.assertTrue(r.err.strip(), f"no message on stderr: {r!r}")
        if rc == 1:  # usage errors (2) carry CLI11's own wording
            self.assertRegex(r.err, r"(?m)^cairn: \S", repr(r))

    def test_4_cli_errors(self):
        self.c.cli(1, "backup", self.src)  # something to refer to
        restore_target = os.path.join(self.tmp, "never")
        cases = [
            (["ls", "deadbeefdeadbeef"], 1),
            (["ls", "zz-not-hex"], 1),
            (["ls", "latest", "no/such/path"], 1),
            (["restore", "latest:no/such/path", "--target", restore_target], 1),
            (["restore", "deadbeefdeadbeef", "--target", restore_target], 1),
            (["backup", "/nonexistent/cairn/path"], 1),
            (["backup"], 2),
            (["ls"], 2),
            (["restore", "latest"], 2),  # --target missing
            (["backup", self.src, "--copies", "many"], 2),
            (["backup", self.src, "--no-such-flag"], 2),
        ]
        for args, rc in cases:
            with self.subTest(args=args):
                r = self.c.cli(1, *args, expect=None)
                self.assert_error(r, rc)
        r = self.c.run_raw(["frobnicate", "--dir", self.c.peers[1].dir])
        self.assert_error(r, 2)
        self.assertFalse(os.path.exists(restore_target) and os.listdir(restore_target))
        # init refuses an existing peer directory.
        r = self.c.run_raw(["init", "--dir", self.c.peers[1].dir, "--peer-id", "9"])
        self.assert_error(r, 1)
        self.assert_serving(1)

    def test_5_corrupt_config(self):
        port = harness.free_ports(1)[0]
        cases = {
            "not toml": b"peer_id = = 3\n[[[\n",
            "binary": bytes(range(256)),
            "missing peer_id": None,  # peer_id line removed
            "bad quota": ("quota", '"10Q"'),
            "peer_id type": ("peer_id", '"three"'),
            "bad duration": ("ping_interval", '"fast"'),
        }
        for name, change in cases.items():
            with self.subTest(case=name):
                d = os.path.join(self.tmp, "corrupt", name.replace(" ", "_"))
                r = self.c.run_raw(["init", "--dir", d, "--peer-id", "7", "--listen",
                                    f"127.0.0.1:{port}"])
                self.assertEqual(r.rc, 0, repr(r))
                cfg = os.path.join(d, "cairn.toml")
                with open(cfg, "rb") as f:
                    text = f.read()
                if isinstance(change, bytes):
                    text = change
                elif change is None:
                    text = b"\n".join(l for l in text.splitlines()
                                      if not l.startswith(b"peer_id")) + b"\n"
                else:
                    key, value = change
                    lines = text.splitlines()
                    idx = [i for i, l in enumerate(lines)
                           if l.split(b"=")[0].strip() == key.encode()]
                    self.assertTrue(idx, f"cairn init wrote no {key} key:\n{text.decode()}")
                    lines[idx[0]] = f"{key} = {value}".encode()
                    text = b"\n".join(lines) + b"\n"
                with open(cfg, "wb") as f:
                    f.write(text)
                try:
                    cp = subprocess.run([self.c.bin, "peer", "--dir", d], capture_output=True,
                                        timeout=10, stdin=subprocess.DEVNULL)
                except subprocess.TimeoutExpired:
                    self.fail(f"cairn peer kept running with a corrupt config ({name})")
                err = cp.stderr.decode("utf-8", "replace")
                self.assertEqual(cp.returncode, 1, err)
                self.assertIn("cairn.toml", err)
                if isinstance(change, tuple):
                    self.assertIn(change[0], err)
                if change is None:
                    self.assertIn("peer_id", err)

    def test_9_clean_shutdown(self):
        # Last: the half-open connections are still open; SIGTERM must still stop every peer.
        self.assert_serving(1)
        codes = self.c.stop_all()
        self.assertEqual(codes, {1: 0, 2: 0, 3: 0})


if __name__ == "__main__":
    harness.main()
