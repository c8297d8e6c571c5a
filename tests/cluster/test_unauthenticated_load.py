#!/usr/bin/env python3
"""An outsider cannot make a storage peer buffer large bodies or starve members
(docs/security.md "What an unauthenticated client can do").

A client without the cluster key, speaking raw HTTP/2 over TLS (peers accept any client
certificate, or none, in the handshake: the cluster key decides membership; a minimal client
below: no HPACK indexing, no Huffman; it honours flow control like any well-behaved gRPC client,
which is what lets a careless server take a whole message in), sends 8 concurrent 60 MiB
PutBlob calls to a storage peer and holds 1000 idle connections to it (500 plain TCP sockets
that never speak, 500 TLS connections that sent the HTTP/2 preface and SETTINGS). Asserts:

- every PutBlob call is refused (UNAUTHENTICATED) having sent at most a flow-control window of
  its body, not the whole 60 MiB;
- the storage peer's peak RSS (VmHWM in /proc/PID/status) stays under 128 MiB (release build;
  an ASan build's RSS is not cairn's);
- while the connections are held, a member's `cairn peers` answers and a small backup succeeds
  within their usual deadlines, and the storage peer still holds its share afterwards;
- after the connections close, the peer keeps serving (a restore reads the bytes back).

Prints the measured figures (RSS before and peak, bytes each call got to send).
"""

import os
import random
import resource
import select
import socket
import ssl
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MiB = 1 << 20
BODY = 60 * MiB  # the blob field of each PutBlob
CALLS = 8
IDLE_TCP = 500
IDLE_H2 = 500
RSS_LIMIT_KIB = 128 * 1024

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def connect(port: int, timeout: float) -> ssl.SSLSocket:
    """A TLS connection to a peer's port, as an outsider makes it: any certificate accepted, no
    client certificate, ALPN h2."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="cairn")


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        got = sock.recv(n - len(buf))
        if not got:
            raise ConnectionError("connection closed")
        buf += got
    return bytes(buf)


def read_frame(sock: socket.socket):
    head = recv_exact(sock, 9)
    length = int.from_bytes(head[:3], "big")
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, recv_exact(
        sock, length)


def unauthenticated_put_blob(port: int, body_bytes: int, deadline: float) -> dict:
    """One PutBlob call with a `body_bytes` blob and no x-cairn-auth headers, over its own
    HTTP/2 connection. Sends DATA as fast as the server's flow-control windows allow, until the
    server answers (trailers or RST_STREAM) or closes. Returns {"sent", "answer", "error"}."""
    # PutBlobRequest{blob = 2: bytes}: tag, length, then the bytes (zeros; their content does
    # not matter to a server that must refuse the call before reading them).
    proto_head = b"\x12" + varint(body_bytes)
    message_len = len(proto_head) + body_bytes
    grpc_head = b"\x00" + struct.pack(">I", message_len)
    total = len(grpc_head) + message_len
    out = {"sent": 0, "answer": None, "error": None}
    sock = connect(port, 20)
    try:
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        headers = b"".join(
            hpack_literal(k, v) for k, v in [
                (":method", "POST"), (":scheme", "https"), (":path", "/cairn.v1.Peer/PutBlob"),
                (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                ("te", "trailers")
            ])
        sock.sendall(frame(HEADERS, END_HEADERS, 1, headers))
        conn_window, stream_window, initial, max_frame = 65535, 65535, 65535, 16384
        zeros = bytes(max_frame)
        prefix = grpc_head + proto_head
        sent = 0
        pending = b""
        while time.monotonic() < deadline:
            can_send = sent < total and min(conn_window, stream_window) > 0
            # Bytes TLS already decrypted do not show in select().
            readable = sock.pending() > 0 or select.select([sock], [], [],
                                                           0 if can_send else 0.05)[0]
            if can_send and not readable:
                n = min(conn_window, stream_window, max_frame, total - sent)
                chunk = prefix[sent:sent + n] if sent < len(prefix) else zeros[:n]
                n = len(chunk)
                try:
                    # Blocking, whole frames: a server that stops reading shows as a timeout.
                    sock.sendall(frame(DATA, END_STREAM if sent + n == total else 0, 1, chunk))
                except OSError as e:
                    out["error"] = f"send failed after {sent} bytes: {e!r}"
                    return out
                sent += n
                out["sent"] = sent
                conn_window -= n
                stream_window -= n
                continue
            if not readable:
                continue
            try:
                got = sock.recv(65536)
            except OSError as e:
                out["error"] = f"connection error: {e!r}"
                return out
            if not got:
                out["error"] = out["error"] or "connection closed by the server"
                return out
            pending += got
            while len(pending) >= 9:
                length = int.from_bytes(pending[:3], "big")
                if len(pending) < 9 + length:
                    break
                kind, flags = pending[3], pending[4]
                stream = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
                payload = pending[9:9 + length]
                pending = pending[9 + length:]
                if kind == SETTINGS and not flags & ACK:
                    for i in range(0, len(payload) - 5, 6):
                        ident, value = struct.unpack(">HI", payload[i:i + 6])
                        if ident == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                            stream_window += value - initial
                            initial = value
                        elif ident == 5:  # SETTINGS_MAX_FRAME_SIZE
                            max_frame = value
                            zeros = bytes(max_frame)
                    sock.sendall(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    sock.sendall(frame(PING, ACK, 0, payload))
                elif kind == WINDOW_UPDATE:
                    inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                    if stream == 0:
                        conn_window += inc
                    else:
                        stream_window += inc
                elif kind == HEADERS and stream == 1 and flags & END_STREAM:
                    # Trailers (or a trailers-only answer): the call is over.
                    out["answer"] = "ended"
                    out["raw_trailers"] = payload
                    return out
                elif kind == RST_STREAM and stream == 1:
                    out["answer"] = f"rst_stream {int.from_bytes(payload, 'big')}"
                    return out
                elif kind == GOAWAY:
                    out["error"] = f"goaway {payload[4:8].hex()}"
                    return out
        out["error"] = "deadline"
        return out
    finally:
        sock.close()


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class UnauthenticatedLoadTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = IDLE_TCP + IDLE_H2 + 200
        if soft < want:
            if hard < want:
                raise harness.unittest.SkipTest(f"RLIMIT_NOFILE hard limit {hard} < {want}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        cls.rng = random.Random(cls.seed)
        cls.c = cls.make_cluster(3)

    def small_tree(self, name: str) -> str:
        root = os.path.join(self.tmp, name)
        os.makedirs(root)
        for k in range(8):
            with open(os.path.join(root, f"f{k}"), "wb") as f:
                f.write(self.rng.randbytes(self.rng.randrange(1, 200_000)))
        return root

    def test_outsider_cannot_exhaust_a_storage_peer(self):
        target = self.c.peers[2]
        pid = target.proc.pid
        port = target.listen_port
        # Warm up: a normal backup through every peer, so the baseline includes normal work.
        warm = self.small_tree("warm")
        self.c.cli(1, "backup", warm, json_out=True, timeout=60)
        hwm_before = vm_hwm_kib(pid)

        results = [None] * CALLS
        deadline = time.monotonic() + 60 * harness.TIME_SCALE

        def call(i):
            try:
                results[i] = unauthenticated_put_blob(port, BODY, deadline)
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = {"sent": -1, "answer": None, "error": repr(e)}

        threads = [threading.Thread(target=call, args=(i, )) for i in range(CALLS)]
        for t in threads:
            t.start()

        held = []
        try:
            for _ in range(IDLE_TCP):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            for _ in range(IDLE_H2):
                s = connect(port, 10)
                s.sendall(PREFACE + frame(SETTINGS, 0, 0))
                held.append(s)
            for t in threads:
                t.join(timeout=max(1.0, deadline - time.monotonic() + 5))

            # Members are still served while the connections are held: the member's view of
            # the peers (which needs the target's Ping answers to see it alive) and a backup
            # that stores on the target.
            started = time.monotonic()
            peers = self.c.json(1, "peers", timeout=20)
            self.assertEqual(sorted(p["peer_id"] for p in peers), [1, 2, 3], peers)
            harness.wait_for(lambda: 2 in self.c.alive_seen_by(1), 20,
                             "peer 1 to see peer 2 alive while outsiders hold connections")
            small = self.small_tree("small")
            held_before = len(target.held_blobs())
            backup = self.c.cli(1, "backup", small, json_out=True, timeout=60)
            self.assertFalse(backup.json["degraded"], backup.json)
            served_in = time.monotonic() - started
            hwm_after = vm_hwm_kib(pid)
            rss_after = vm_rss_kib(pid)
        finally:
            for s in held:
                s.close()

        print(f"storage peer VmHWM before {hwm_before // 1024} MiB, peak {hwm_after // 1024} MiB, "
              f"RSS after {rss_after // 1024} MiB; member served in {served_in:.1f} s; "
              f"bytes each call sent: {[r['sent'] for r in results]}; "
              f"answers: {[r['answer'] or r['error'] for r in results]}")
        for i, r in enumerate(results):
            self.assertIsNotNone(r, f"call {i} did not finish")
            self.assertIsNone(r["error"], f"call {i}: {r}")
            self.assertIn(b"grpc-status", r.get("raw_trailers", b""), f"call {i}: {r}")
            # 16 = UNAUTHENTICATED, sent as a literal "16".
            self.assertIn(b"16", r["raw_trailers"], f"call {i}: {r}")
            # At most one HTTP/2 flow-control window (gRPC's server default: 4 MiB), not 60 MiB.
            self.assertLessEqual(r["sent"], 4 * MiB, f"call {i} got to send {r['sent']} bytes")
        # The bound holds for the release build. Under ASan (ctest sets CAIRN_SANITIZED) the peer
        # starts near 300 MiB and keeps freed blocks in a 256 MiB quarantine, so RSS says nothing
        # there; the bytes each call got to send (above) are the mechanism and are checked always.
        if os.environ.get("CAIRN_SANITIZED", "0") in ("0", "", "FALSE", "false"):
            self.assertLess(hwm_after, RSS_LIMIT_KIB,
                            f"storage peer peak RSS {hwm_after} KiB (was {hwm_before} KiB)")
        self.assertGreater(len(target.held_blobs()), held_before, "the backup stored nothing on 2")

        # After the outsiders left, the peer keeps serving: read everything back.
        out = os.path.join(self.tmp, "restore")
        self.c.cli(1, "restore", backup.json["short_id"], "--target", out, timeout=60)
        ok, diff = harness.treecmp(small, os.path.join(out, "small"))
        self.assertTrue(ok, diff)
        self.assertTrue(target.running(), "the storage peer died")


if __name__ == "__main__":
    harness.main()
