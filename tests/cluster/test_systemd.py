#!/usr/bin/env python3
"""`cairn peer` as a systemd Type=notify service (docs/operations.md "Running under systemd").

The test plays the service manager: it owns a unix datagram socket, passes it as NOTIFY_SOCKET
(with WATCHDOG_USEC) and reads what the peer sends.
- READY=1 (with STATUS=serving, ...) arrives only once the peer port and the API answer: at the
  moment it is received both accept a connection and GET /v1/health answers 200.
- WATCHDOG=1 arrives every WATCHDOG_USEC/2; STATUS= follows the membership ("0 of 1 peers
  alive" after the other peer is killed).
- SIGTERM: STOPPING=1 arrives, then the peer exits 0.
- With JOURNAL_STREAM naming stderr's dev:ino every log line starts with the syslog priority
  ("<6>" info, "<4>" for the warning that peer 2 is suspect, "<3>" for gRPC's error about a
  failed TLS handshake, which goes through the same log then); lines written without it (the
  first start) carry no prefix.
"""

import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class Notifications:
    """The service manager's end of NOTIFY_SOCKET: every datagram, in order."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.got = []  # (monotonic time, {key: value}) per datagram

    def next(self, deadline: float):
        """The next datagram as {key: value}, or None at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.got.append((time.monotonic(), fields))
        return fields

    def wait(self, cond, timeout: float, what: str, on_each=None):
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(deadline)
            if m is None:
                raise AssertionError(f"no {what} within {timeout:.0f} s; got {self.got}")
            if on_each:
                on_each(m)
            if cond(m):
                return m


def connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def new_log_lines(path: str, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


class SystemdTest(harness.ClusterTestCase):
    def test_notify_watchdog_and_journal_priorities(self):
        c = self.make_cluster(2, suspect_after="1s", dead_after="3s")
        p = c.peer(1)
        api_port = p.api_port()
        self.assertGreater(api_port, 0)
        self.assertEqual(p.stop(), 0)
        before = p.log_text()
        self.assertTrue(before, "peer 1 logged nothing on its first start")
        # cairn's lines (gRPC writes its own, "E1203 20:22:16.25 ...", without JOURNAL_STREAM).
        mine = [l for l in before.splitlines() if "[peer 1]" in l]
        self.assertTrue(mine, before)
        for line in mine:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT", "a line without JOURNAL_STREAM")

        sock_path = os.path.join(self.tmp, "notify.sock")
        n = Notifications(sock_path)
        st = os.stat(p.log_path)  # the peer's stderr is this file (harness.Peer.start)
        p.env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000",
                 "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        log_offset = os.path.getsize(p.log_path)
        p.start()

        answered = {}

        def check_ports(m):
            # Checked right when READY=1 is read: the ports must answer by then.
            if m.get("READY") == "1":
                answered["peer"] = connects(p.listen_port)
                answered["api"] = connects(api_port)
                answered["health"] = c.http(1, "GET", "/v1/health", timeout=5)[0]

        ready = n.wait(lambda m: m.get("READY") == "1", 60, "READY=1", on_each=check_ports)
        self.assertEqual(answered, {"peer": True, "api": True, "health": 200}, p.log_tail())
        self.assertRegex(ready.get("STATUS", ""), r"^serving, \d+ of \d+ peers alive$")
        self.assertNotIn("STOPPING", ready)

        # WATCHDOG=1 every 0.5 s (WATCHDOG_USEC/2): at least 3 within 5 s of READY.
        t0 = time.monotonic()
        dogs = []
        n.wait(lambda m: len(dogs) >= 3, 5, "3 WATCHDOG=1",
               on_each=lambda m: dogs.append(m) if m.get("WATCHDOG") == "1" else None)
        self.assertLess(time.monotonic() - t0, 5)

        # gRPC's own error lines go through the same log with their priority: garbage on the
        # peer port fails the TLS handshake, which gRPC logs as an error.
        with socket.create_connection(("127.0.0.1", p.listen_port), timeout=5) as g:
            g.sendall(b"\x16\x03\x01not a TLS hello" * 8)
            harness.wait_for(lambda: re.search(r"(?m)^<3>.*grpc .*Handshake failed",
                                               new_log_lines(p.log_path, log_offset)), 30,
                             "gRPC's handshake error with <3>")

        # Peer 2 dies: STATUS says so, the warning reaches the journal as priority 4.
        n.wait(lambda m: m.get("STATUS") == "serving, 1 of 1 peers alive", 30,
               "STATUS with peer 2 alive")
        c.peer(2).kill9()
        n.wait(lambda m: m.get("STATUS") == "serving, 0 of 1 peers alive", 30,
               "STATUS with peer 2 not alive")
        harness.wait_for(lambda: re.search(r"(?m)^<4>.*peer 2 .*is now suspect",
                                           new_log_lines(p.log_path, log_offset)), 30,
                         "the suspect warning with <4>")

        # SIGTERM: STOPPING=1, then a clean exit.
        p.proc.terminate()
        n.wait(lambda m: m.get("STOPPING") == "1", 30, "STOPPING=1")
        self.assertEqual(p.wait_exit(60), 0, p.log_tail())

        n.sock.close()
        lines = new_log_lines(p.log_path, log_offset).splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>\d{4}-\d\d-\d\dT", "a line with JOURNAL_STREAM")
        self.assertTrue(any(l.startswith("<6>") and "listening on" in l for l in lines), lines)
        self.assertTrue(any(l.startswith("<6>") and "stopped" in l for l in lines), lines)


if __name__ == "__main__":
    harness.main()
