#!/usr/bin/env python3
"""Running cairn like a service (docs/operations.md "Monitoring", docs/security.md "The local
API and browsers", docs/cli.md): on 3 peers with a [metrics] listener each,

- /metrics passes `promtool check metrics` and its numbers are right after a backup
  (cairn_backup_bytes_total = the bytes backed up, cairn_peer_up = 1 for the 3 peers, store
  quota and used, chunks below target, per-RPC counters on a storage peer, the source's last
  backup time); on the API it needs the token, on the [metrics] listener it does not;
- cairn_peer_up of a killed peer goes to 0 and back to 1 when it returns, and the peer log says
  so (suspect, dead, alive again); the repair its death starts is counted;
- scrub counters follow a scrub pass, GC counters a forget (and the forgotten source's last
  backup time goes away);
- /v1/health and /v1/version answer JSON; `cairn version` and `cairn --version`;
- the API refuses a foreign Host header (DNS rebinding) and a foreign Origin even with the token;
- unknown commands get a suggestion; under --json errors are a JSON object on stderr;
- Ctrl-C while a backup runs cancels it and exits 130.

promtool comes from Debian's `prometheus` package (scripts/install-deps; as root the test
installs it itself); when it is missing and cannot be installed the test is skipped, saying why.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def promtool() -> tuple:
    """(path to promtool, None) or (None, why not)."""
    found = shutil.which("promtool")
    if found:
        return found, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "promtool is not installed (Debian package prometheus) and this is not root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    found = shutil.which("promtool")
    if found:
        return found, None
    return None, f"apt-get install prometheus failed: {r.stderr.decode(errors='replace')[-500:]}"


def parse_metrics(text: str) -> dict:
    """{(name, frozenset of (label, value))): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, f"unparsable metrics line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics: dict, name: str, **labels):
    return metrics.get((name, frozenset(labels.items())))


def make_tree(root: str, rng: random.Random) -> int:
    """Files of random sizes under root; returns their total bytes."""
    total = 0
    os.makedirs(os.path.join(root, "sub"))
    for k in range(9):
        size = rng.randrange(1, 1_500_000)
        with open(os.path.join(root, "sub" if k % 2 else "", f"f{k}"), "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    return total


class MetricsTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.promtool, why = promtool()
        if cls.promtool is None:
            print(f"SKIP: {why}", flush=True)
            raise unittest.SkipTest(why)
        cls.src = os.path.join(cls.tmp, "data")
        cls.total = make_tree(cls.src, random.Random(cls.seed))
        cls.c = cls.make_cluster(3, suspect_after="3s", dead_after="8s", scrub="1s",
                                 config={("metrics", "listen"): '"127.0.0.1:0"'})

    # --- helpers -----------------------------------------------------------------------------
    def metrics_address(self, peer: int) -> str:
        st = self.c.json(peer, "status", expect=None)
        self.assertIsInstance(st, dict)
        self.assertTrue(st.get("metrics_address"), st)
        return st["metrics_address"]

    def scrape(self, peer: int) -> str:
        """GET /metrics from the peer's [metrics] listener, without a token."""
        addr = self.metrics_address(peer)
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return r.read().decode()

    def check_with_promtool(self, text: str):
        r = subprocess.run([self.promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        # promtool exits 3 for lint problems (names, units, help text), 1 for a parse error.
        self.assertEqual(r.returncode, 0,
                         f"promtool: {r.stdout.decode()} {r.stderr.decode()}\n{text[:4000]}")

    # --- tests -------------------------------------------------------------------------------
    def test_1_metrics_after_backup(self):
        b = self.c.json(1, "backup", self.src)
        self.assertEqual(b["bytes"], self.total, b)
        snaps = self.c.json(1, "snapshots")
        self.assertEqual(len(snaps), 1, snaps)

        text = self.scrape(1)
        self.check_with_promtool(text)
        m = parse_metrics(text)
        self.assertEqual(value(m, "cairn_backup_bytes_total"), self.total, text)
        self.assertEqual(value(m, "cairn_backups_total", result="success"), 1)
        self.assertEqual(value(m, "cairn_backups_total", result="failure"), 0)
        self.assertEqual(value(m, "cairn_backup_sent_bytes_total"), b["sent_bytes"])
        for pid in (1, 2, 3):
            self.assertEqual(value(m, "cairn_peer_up", peer=str(pid)), 1, (pid, text))
            self.assertEqual(value(m, "cairn_peer_state", peer=str(pid), state="alive"), 1)
        st = self.c.json(1, "status")
        self.assertEqual(value(m, "cairn_store_quota_bytes"), st["quota"])
        self.assertEqual(value(m, "cairn_store_quota_bytes"), 1 << 30)
        self.assertEqual(value(m, "cairn_chunks", state="below_target"),
                         st["chunks_below_target"])
        self.assertEqual(value(m, "cairn_chunks", state="at_target"), st["chunks_at_target"])
        self.assertGreater(st["chunks_at_target"], 0)
        self.assertEqual(value(m, "cairn_snapshots"), 1)
        when = value(m, "cairn_backup_last_success_timestamp_seconds", source=self.src)
        self.assertIsNotNone(when, text)
        self.assertAlmostEqual(when, snaps[0]["time_ns"] / 1e9, delta=0.001)
        version = self.c.json(1, "version")
        self.assertEqual(value(m, "cairn_build_info", version=version["version"],
                               git_commit=version["git_commit"] or "unknown"), 1)

        # A storage peer: what it holds, and the calls it served (per method and code).
        text2 = self.scrape(2)
        self.check_with_promtool(text2)
        m2 = parse_metrics(text2)
        me = [p for p in self.c.json(2, "peers") if p["self"]][0]
        self.assertEqual(value(m2, "cairn_store_used_bytes"), me["used"])
        self.assertGreater(me["used"], 0)
        puts = sum(v for (name, labels), v in m2.items() if name == "cairn_rpc_requests_total"
                   and ("code", "OK") in labels
                   and dict(labels)["method"] in ("PutBlob", "PutBlobs"))
        self.assertGreater(puts, 0, text2)
        pings = value(m2, "cairn_rpc_duration_seconds_count", method="Ping")
        self.assertGreater(pings or 0, 0, text2)
        self.assertEqual(value(m2, "cairn_backups_total", result="success"), 0)

    def test_2_token_and_browser_rules(self):
        # On the API, /metrics needs the token like every route.
        st, _ = self.c.http(1, "GET", "/metrics", token=None)
        self.assertEqual(st, 401)
        st, body = self.c.http(1, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.check_with_promtool(body.decode() if isinstance(body, bytes) else str(body))
        # DNS rebinding: the token is right, the Host is not the API's own address.
        st, body = self.c.http(1, "GET", "/v1/status", headers={"Host": "evil.example"})
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "PERMISSION_DENIED", body)
        self.assertNotIn("peer_id", body)
        st, body = self.c.http(1, "POST", "/v1/backup", body={"paths": [self.src]},
                               headers={"Host": f"evil.example:{self.c.wait_api(1)}"})
        self.assertEqual(st, 403, body)
        st, body = self.c.http(1, "GET", "/v1/status", headers={"Origin": "http://evil.example"})
        self.assertEqual(st, 403, body)
        # Its own origin and the usual names are fine.
        port = self.c.wait_api(1)
        for headers in ({"Origin": f"http://127.0.0.1:{port}"}, {"Host": f"localhost:{port}"}):
            st, body = self.c.http(1, "GET", "/v1/status", headers=headers)
            self.assertEqual(st, 200, (headers, body))
        # The [metrics] listener serves /metrics and /v1/health only, and checks Host too.
        addr = self.metrics_address(1)
        for path, want in (("/v1/status", 404), ("/v1/snapshots", 404), ("/v1/health", 200)):
            try:
                with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            self.assertEqual(code, want, path)
        req = urllib.request.Request(f"http://{addr}/metrics", headers={"Host": "evil.example"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(e.exception.code, 403)

    def test_3_health_and_version(self):
        st, health = self.c.http(1, "GET", "/v1/health")
        self.assertEqual(st, 200, health)
        self.assertEqual(health["live"], True)
        self.assertEqual(health["ready"], True)
        self.assertEqual(health["problems"], [])
        self.assertEqual(health["peers_known"], 2)
        st, version = self.c.http(1, "GET", "/v1/version")
        self.assertEqual(st, 200, version)
        self.assertEqual(version["protocol"], "cairn.v1")
        self.assertRegex(version["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(version["formats"]["blob"], 1)
        # The CLI's own binary is the peer's here.
        self.assertEqual(self.c.json(1, "version"), version)
        r = self.c.run_raw(["--version"])
        self.assertEqual(r.rc, 0, repr(r))
        self.assertTrue(r.out.startswith(f"cairn {version['version']}"), repr(r))
        r = self.c.run_raw(["version"])
        self.assertEqual(r.rc, 0, repr(r))
        self.assertIn("protocol cairn.v1", r.out)

    def test_4_cli_errors(self):
        r = self.c.run_raw(["bakup", "/tmp"])
        self.assertEqual(r.rc, 2, repr(r))
        self.assertIn("unknown command 'bakup'; did you mean backup?", r.err)
        r = self.c.run_raw(["--dir", self.c.peers[1].dir, "snapshot"])
        self.assertEqual(r.rc, 2, repr(r))
        self.assertIn("did you mean snapshots?", r.err)
        r = self.c.run_raw(["frobnicate"])
        self.assertEqual(r.rc, 2, repr(r))
        self.assertIn("the commands are: init, peer, backup", r.err)
        # Under --json an error is one JSON object on stderr (restic's exit_error).
        r = self.c.run_raw(["--json", "bakup"])
        self.assertEqual(r.rc, 2, repr(r))
        err = json.loads(r.err)
        self.assertEqual(err, {"message_type": "exit_error", "code": 2,
                               "message": "unknown command 'bakup'; did you mean backup?"})
        r = self.c.run_raw(["ls", "--dir", self.c.peers[1].dir, "--json", "nosuchsnapshot"])
        self.assertEqual(r.rc, 1, repr(r))
        err = json.loads(r.err)
        self.assertEqual(err["message_type"], "exit_error")
        self.assertEqual(err["code"], 1)
        self.assertIn("nosuchsnapshot", err["message"])
        self.assertEqual(r.out, "")

    def test_5_ctrl_c_exits_130(self):
        # A sparse 4 GiB file: seconds of reading and chunking zeros, no disk space.
        big = os.path.join(self.tmp, "big")
        os.makedirs(big)
        with open(os.path.join(big, "zeros"), "wb") as f:
            f.truncate(4 << 30)
        p = self.c.peers[1]
        log_before = len(p.log_text())
        proc = subprocess.Popen([self.c.bin, "backup", "--dir", p.dir, big],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            harness.wait_for(lambda: "backup of 1 path(s) started" in p.log_text()[log_before:],
                             30, "the backup job to start")
            self.assertIsNone(proc.poll(), "the backup ended before Ctrl-C")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 130, (out, err))
        self.assertIn(b"interrupted", err)
        harness.wait_for(lambda: "backup failed: CANCELLED" in p.log_text()[log_before:], 30,
                         "the peer to cancel the backup")

    def test_6_peer_up_follows_a_killed_peer(self):
        p3 = self.c.peers[3]
        p3.kill9()

        def peer3_up():
            return value(parse_metrics(self.scrape(1)), "cairn_peer_up", peer="3")

        harness.wait_for(lambda: peer3_up() == 0, 30, "cairn_peer_up{peer=3} to be 0 on peer 1")
        m = parse_metrics(self.scrape(1))
        self.assertEqual(value(m, "cairn_peer_up", peer="2"), 1)
        harness.wait_for(
            lambda: value(parse_metrics(self.scrape(1)), "cairn_peer_state", peer="3",
                          state="dead") == 1, 30, "peer 3 to be dead in peer 1's metrics")
        # Logged at the end of the ping round that sees the change.
        for pattern in (r"peer 3 \(host3, 127\.0\.0\.1:\d+\) is now suspect \(was alive",
                        r"peer 3 \(host3, 127\.0\.0\.1:\d+\) is now dead \(was suspect"):
            harness.wait_for(lambda: re.search(pattern, self.c.peers[1].log_text()), 10,
                             f"peer 1 to log /{pattern}/")
        # A peer became dead: peer 1 repairs its own backups (counted, whatever it could do).
        harness.wait_for(
            lambda: (value(parse_metrics(self.scrape(1)), "cairn_repairs_total",
                           result="success") or 0) >= 1, 60, "peer 1 to count a repair")
        p3.start()
        harness.wait_for(lambda: peer3_up() == 1, 60, "cairn_peer_up{peer=3} to be 1 again")
        harness.wait_for(
            lambda: re.search(r"peer 3 \(host3, [^)]*\) is alive again \(was dead\)",
                              self.c.peers[1].log_text()), 30, "peer 1 to log peer 3 back")

    def test_7_scrub_and_gc_counters(self):
        # Peer 2 scrubs what it holds every second ([scrub] interval 1s).
        held = len(self.c.peers[2].held_blobs())
        self.assertGreater(held, 0)

        def scrubbed():
            m = parse_metrics(self.scrape(2))
            return ((value(m, "cairn_scrub_passes_total") or 0) >= 1
                    and (value(m, "cairn_scrub_blobs_total") or 0) >= held and m)

        m = harness.wait_for(scrubbed, 60, "peer 2 to finish a scrub pass")
        self.assertEqual(value(m, "cairn_scrub_corrupt_blobs_total"), 0)
        self.assertGreater(value(m, "cairn_scrub_bytes_total"), 0)

        # Forgetting the only snapshot collects its chunks.
        snaps = self.c.json(1, "snapshots")
        self.assertEqual(len(snaps), 1, snaps)
        before = parse_metrics(self.scrape(1))
        self.c.cli(1, "forget", snaps[0]["id"])
        m = parse_metrics(self.scrape(1))
        self.assertEqual(value(m, "cairn_gc_runs_total"),
                         (value(before, "cairn_gc_runs_total") or 0) + 1)
        self.assertGreater(value(m, "cairn_gc_chunks_total"), 0)
        self.assertGreater(value(m, "cairn_gc_deletions_total"), 0)
        self.assertEqual(value(m, "cairn_snapshots"), 0)
        self.assertIsNone(value(m, "cairn_backup_last_success_timestamp_seconds",
                                source=self.src))
        self.assertEqual(value(m, "cairn_chunks", state="at_target"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
