#!/usr/bin/env python3
"""TLS between peers (docs/security.md "TLS between peers").

Two members (peer 2 joins peer 1), with multicast announcements on, so certificates are pinned
both by calls and by announcements.

- Each member knows the other's certificate fingerprint (`cairn peers --json`), and it is the
  SHA-256 of the SubjectPublicKeyInfo of the certificate in the other's secrets/tls.crt.
- A TLS client that speaks to a peer's port gets that same certificate and negotiates TLS 1.3
  with ALPN h2; a plaintext HTTP/2 client gets no HTTP/2 answer.
- Peer 2 restarted with another key and certificate (same peer id, node id and cluster key) is
  refused by peer 1: its log names peer id 2 and both fingerprints, and peer 1 stops seeing
  peer 2 alive; peer 1 keeps its pin.
- Peer 2 restarted with its TLS files removed gets them made again, byte for byte the same
  (they come from the owner key), and is alive to peer 1 again.
"""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def spki_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo, with the openssl CLI."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=cert_pem,
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def make_identity(directory: str, cn: str):
    """Another Ed25519 key and self-signed certificate, as tls.key / tls.crt in `directory`."""
    key = os.path.join(directory, "tls.key")
    crt = os.path.join(directory, "tls.crt")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-key", key, "-out", crt, "-days", "3650",
                    "-subj", f"/CN={cn}", "-addext", "subjectAltName=DNS:cairn"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    os.chmod(crt, 0o600)


class TlsTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.c = cls.make_cluster(2, multicast=True, announce_interval="500ms",
                                 suspect_after="2s")

    def secrets(self, pid: int) -> str:
        return os.path.join(self.c.peer(pid).dir, "secrets")

    def fingerprint_seen(self, observer: int, pid: int) -> str:
        for e in self.c.peers_seen_by(observer):
            if e["peer_id"] == pid:
                return e.get("cert_fingerprint", "")
        return ""

    def test_tls_and_pinning(self):
        c = self.c
        fp = {pid: spki_fingerprint(read(os.path.join(self.secrets(pid), "tls.crt")))
              for pid in (1, 2)}
        self.assertNotEqual(fp[1], fp[2])
        for observer, pid in ((1, 2), (2, 1)):
            harness.wait_for(lambda: self.fingerprint_seen(observer, pid) == fp[pid], 30,
                             f"peer {observer} to know peer {pid}'s certificate {fp[pid]}")
            self.assertEqual(self.fingerprint_seen(observer, observer), fp[observer])

        # What a TLS client of peer 1's port gets: peer 1's certificate, TLS 1.3, h2.
        port = c.peer(1).listen_port
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="cairn") as tls:
                self.assertEqual(tls.version(), "TLSv1.3")
                self.assertEqual(tls.selected_alpn_protocol(), "h2")
                served = tls.getpeercert(binary_form=True)
        self.assertEqual(served, ssl.PEM_cert_to_DER_cert(
            read(os.path.join(self.secrets(1), "tls.crt")).decode()))

        # A plaintext HTTP/2 client: no HTTP/2 frame comes back (at most a TLS alert record).
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        got = b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(preface)
            try:
                while len(got) < 4096:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass  # reset: fine
        self.assertTrue(got == b"" or got[:1] == b"\x15", f"plaintext client got {got[:64]!r}")

        # Peer 2 comes back with another certificate: peer 1 refuses it.
        p2 = c.peer(2)
        p2.stop()
        kept = os.path.join(self.tmp, "peer2-tls")
        os.makedirs(kept)
        for name in ("tls.key", "tls.crt"):
            shutil.move(os.path.join(self.secrets(2), name), os.path.join(kept, name))
        make_identity(self.secrets(2), "impostor")
        other = spki_fingerprint(read(os.path.join(self.secrets(2), "tls.crt")))
        self.assertNotIn(other, fp.values())
        log_mark = len(c.peer(1).log_text())
        p2.start()
        want = f"peer id 2 presented TLS certificate {other}, but it is pinned to certificate {fp[2]}"
        harness.wait_for(lambda: want in c.peer(1).log_text()[log_mark:], 30,
                         f"peer 1 to log {want!r}")
        c.wait_state(1, [2], "suspect", 30)
        self.assertEqual(self.fingerprint_seen(1, 2), fp[2])
        self.assertTrue(p2.running(), "peer 2 exited")

        # Its own files removed: made again from the owner key, identical; accepted again.
        p2.stop()
        for name in ("tls.key", "tls.crt"):
            os.remove(os.path.join(self.secrets(2), name))
        p2.start()
        c.wait_state(1, [2], "alive", 30)
        for name in ("tls.key", "tls.crt"):
            self.assertEqual(read(os.path.join(self.secrets(2), name)),
                             read(os.path.join(kept, name)), name)
        self.assertEqual(self.fingerprint_seen(1, 2), fp[2])


if __name__ == "__main__":
    harness.main()
