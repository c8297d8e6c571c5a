"""Cluster test harness: real `cairn peer` processes on 127.0.0.1, driven through the CLI.

Cluster(n) inits n peers (ids 1..n, host ids host1..hostn) in a temp dir with listen ports chosen
free up front (every peer seeds all others) and API ports picked by the daemon (port 0, written
back to cairn.toml), starts them, and waits until every peer sees all n alive. Helpers run the CLI
(parsing --json), wait on conditions with deadlines (polling every 100 ms, never fixed sleeps),
kill -9 or SIGTERM peers, and always stop every peer on teardown. ClusterTestCase prints the peer
logs when a test fails and removes the temp dir otherwise (env KEEP=1 keeps it).

The binary is $CAIRN_BIN (ctest sets it), else build/cmd/cairn/cairn under the repo root.
Python stdlib only.
"""

import atexit
import base64
import ctypes
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREECMP = os.path.join(REPO, "scripts", "treecmp.py")
POLL = 0.1  # seconds between polls of a condition


def cairn_bin() -> str:
    b = os.environ.get("CAIRN_BIN") or os.path.join(REPO, "build", "cmd", "cairn", "cairn")
    if not os.access(b, os.X_OK):
        raise unittest.SkipTest(f"no cairn binary at {b} (set CAIRN_BIN)")
    return b


def free_ports(n: int) -> list:
    """n distinct free TCP ports on 127.0.0.1 (bound together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Fatal(AssertionError):
    """Raised by a wait_for condition to stop waiting at once (e.g. the peer died)."""


def wait_for(cond, timeout: float, what: str):
    """Polls cond() every 100 ms until it returns a truthy value (returned) or the deadline.
    Exceptions from cond count as "not yet", except Fatal, which is re-raised."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Fatal:
            raise
        except Exception as e:  # a poll may fail while the condition is not yet true
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(POLL)


def _die_with_parent():
    """preexec_fn: the peer gets SIGKILL if the test process dies (no orphans after a timeout)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def show(b) -> str:
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else str(b)


class CliResult:
    def __init__(self, args, rc, out: bytes, err: bytes, want_json: bool):
        self.args, self.rc, self.out_bytes, self.err_bytes = args, rc, out, err
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")
        self.json = None
        if want_json and out.strip():
            try:
                self.json = json.loads(self.out)
            except ValueError:
                self.json = None

    def __repr__(self):
        return (f"$ {' '.join(show(a) for a in self.args)}\n-> exit {self.rc}\n"
                f"stdout: {self.out[:3000]}\nstderr: {self.err[:3000]}")


class Peer:
    def __init__(self, cluster, peer_id: int, listen_port: int):
        self.cluster = cluster
        self.id = peer_id
        self.dir = os.path.join(cluster.root, f"peer{peer_id}")
        self.listen_port = listen_port
        self.log_path = os.path.join(self.dir, "peer.log")
        self.proc = None
        self.exit_code = None

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    def config(self) -> dict:
        with open(os.path.join(self.dir, "cairn.toml"), "rb") as f:
            return tomllib.load(f)

    def api_port(self) -> int:
        """The API port the daemon wrote back to cairn.toml (0 until it did)."""
        return int(self.config()["api"].rsplit(":", 1)[1])

    def token(self) -> str:
        with open(os.path.join(self.dir, "secrets", "api.token")) as f:
            return f.read().strip()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.cluster.bin, "peer", "--dir", self.dir],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        log.close()
        self.exit_code = None

    def kill9(self):
        """SIGKILL, as a crash or power loss would."""
        self.proc.kill()
        self.exit_code = self.proc.wait()

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL and raise after the timeout)."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = self.proc.returncode
                raise AssertionError(f"peer {self.id} did not exit {timeout} s after SIGTERM")
        self.exit_code = self.proc.returncode
        return self.exit_code

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        return "\n".join(show(l) for l in data.splitlines()[-lines:])


_live_clusters = []


@atexit.register
def _kill_leftovers():
    for c in _live_clusters:
        c.kill_all()


class Cluster:
    def __init__(self, n: int, root: str, copies: int = 2, quota: str = "1G",
                 ping_interval: str = "250ms", extra_init=()):
        self.bin = cairn_bin()
        self.n = n
        self.root = root
        self.copies = copies
        self.quota = quota
        self.ping_interval = ping_interval
        self.extra_init = list(extra_init)
        self.peers = {}
        self.history = []  # CLI calls, printed on failure
        _live_clusters.append(self)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60):
        ports = free_ports(self.n)
        for i in range(1, self.n + 1):
            self.peers[i] = Peer(self, i, ports[i - 1])
        for p in self.peers.values():
            args = ["init", "--dir", p.dir, "--peer-id", str(p.id), "--host-id", f"host{p.id}",
                    "--listen", p.listen, "--api", "127.0.0.1:0", "--quota", self.quota,
                    "--copies", str(self.copies), "--ping-interval", self.ping_interval,
                    *self.extra_init]
            for q in self.peers.values():
                if q.id != p.id:
                    args += ["--seed", q.listen]
            r = self.run_raw(args)
            if r.rc != 0:
                raise AssertionError(f"cairn init failed: {r!r}")
        for p in self.peers.values():
            p.start()
        self.wait_all_alive(timeout)

    def stop_all(self) -> dict:
        """SIGTERMs every running peer (in parallel) and waits; returns {peer id: exit code}."""
        for p in self.peers.values():
            if p.running():
                p.proc.terminate()
        codes, errors = {}, []
        for p in self.peers.values():
            try:
                codes[p.id] = p.stop()
            except AssertionError as e:
                errors.append(str(e))
                codes[p.id] = p.exit_code
        if errors:
            raise AssertionError("; ".join(errors))
        return codes

    def kill_all(self):
        for p in self.peers.values():
            if p.running():
                p.kill9()

    def dump_logs(self, out=sys.stderr, lines: int = 60):
        print("\n===== recent cairn CLI calls =====", file=out)
        for r in self.history[-15:]:
            print(repr(r), file=out)
        for p in self.peers.values():
            code = p.exit_code if p.proc is None else p.proc.poll()
            state = "running" if p.running() else f"exited {code}"
            print(f"\n===== peer {p.id} ({state}) {p.log_path} (last {lines} lines) =====",
                  file=out)
            print(p.log_tail(lines), file=out)
        out.flush()

    # --- CLI ---------------------------------------------------------------------------------
    def run_raw(self, args, timeout: float = 180, env=None) -> CliResult:
        """Runs `cairn ARGS` (no --dir added) and returns the result without checking it."""
        full = [self.bin, *args]
        try:
            cp = subprocess.run(full, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=timeout, env=env)
            r = CliResult(full, cp.returncode, cp.stdout, cp.stderr, "--json" in args)
        except subprocess.TimeoutExpired as e:
            r = CliResult(full, None, e.stdout or b"", (e.stderr or b"") + b"\n(TIMEOUT)",
                          False)
        self.history.append(r)
        print(f"$ {' '.join(show(a) for a in full)}  -> exit {r.rc}", flush=True)
        return r

    def cli(self, peer: int, cmd: str, *args, json_out: bool = False, expect=0,
            timeout: float = 180) -> CliResult:
        """Runs `cairn CMD --dir DIR(peer) [--json] ARGS`; asserts the exit code unless expect
        is None."""
        a = [cmd, "--dir", self.peers[peer].dir] + (["--json"] if json_out else []) + list(args)
        r = self.run_raw(a, timeout=timeout)
        if expect is not None and r.rc != expect:
            raise AssertionError(f"expected exit {expect}: {r!r}")
        if json_out and expect == 0 and r.json is None:
            raise AssertionError(f"no JSON on stdout: {r!r}")
        return r

    def json(self, peer: int, cmd: str, *args, expect=0, timeout: float = 180):
        return self.cli(peer, cmd, *args, json_out=True, expect=expect, timeout=timeout).json

    # --- conditions ------------------------------------------------------------------------
    def alive_seen_by(self, peer: int) -> set:
        """Peer ids that `peer` reports alive (itself included)."""
        r = self.run_raw(["peers", "--dir", self.peers[peer].dir, "--json"], timeout=30)
        if r.rc != 0 or not isinstance(r.json, list):
            return set()
        return {p.get("peer_id") for p in r.json if p.get("self") or p.get("state") == "alive"}

    def wait_all_alive(self, timeout: float = 60):
        want = {p.id for p in self.peers.values() if p.running()}
        for p in self.peers.values():
            if not p.running():
                continue

            def ok(p=p):
                if not p.running():
                    raise Fatal(f"peer {p.id} exited with {p.proc.poll()} "
                                f"(log {p.log_path}):\n{p.log_tail(20)}")
                return want <= self.alive_seen_by(p.id)

            wait_for(ok, timeout, f"peer {p.id} to see peers {sorted(want)} alive")

    def wait_api(self, peer: int, timeout: float = 30) -> int:
        return wait_for(lambda: self.peers[peer].api_port(), timeout,
                        f"peer {peer} to write its API port to cairn.toml")

    def http(self, peer: int, method: str, path: str, body=None, token=True, headers=None,
             timeout: float = 30):
        """One request to a peer's local API; returns (status, parsed JSON or raw bytes)."""
        port = self.wait_api(peer)
        h = dict(headers or {})
        if token is True:
            h["Authorization"] = f"Bearer {self.peers[peer].token()}"
        elif token:
            h["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data

    # --- data --------------------------------------------------------------------------------
    def holders_by_used(self) -> list:
        """Storage peers (all but 1) sorted by bytes they hold, largest first (own report)."""
        used = []
        for p in self.peers.values():
            if p.id == 1 or not p.running():
                continue
            me = [e for e in self.json(p.id, "peers") if e.get("self")]
            used.append((me[0]["used"] if me else 0, p.id))
        return [pid for _, pid in sorted(used, reverse=True)]


def treecmp(src, dst, *flags):
    """Runs scripts/treecmp.py; returns (ok, output)."""
    cp = subprocess.run([sys.executable, TREECMP, *flags, src, dst], capture_output=True)
    return cp.returncode == 0, (cp.stdout + cp.stderr).decode("utf-8", "replace")


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def json_path(entry: dict, field: str = "path") -> bytes:
    """The exact bytes of a JSON path field (spec: `<field>_base64` when not UTF-8)."""
    if f"{field}_base64" in entry:
        return base64.b64decode(entry[f"{field}_base64"])
    return entry[field].encode("utf-8")


class ClusterTestCase(unittest.TestCase):
    """Base class: one temp dir per test class (cls.tmp); clusters made with make_cluster() are
    stopped after the class, also when setUpClass or a test fails; then the peer logs and recent
    CLI calls are printed. The temp dir is removed unless env KEEP is set."""

    seed = None  # seeded randomness; printed, and settable with CAIRN_TEST_SEED

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        own = cls.__dict__.get("setUpClass")
        if own is None:
            return
        func = own.__func__

        @classmethod
        def wrapped(c):
            try:
                func(c)
            except BaseException:
                c.failed = True
                raise

        cls.setUpClass = wrapped

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"cairn-{cls.__name__}-")
        cls.clusters = []
        cls.failed = False
        cls.addClassCleanup(cls._cleanup)
        if cls.seed is None:
            cls.seed = int(os.environ.get("CAIRN_TEST_SEED", random.randrange(1 << 32)))
        print(f"{cls.__name__}: seed {cls.seed} (CAIRN_TEST_SEED to repeat), dir {cls.tmp}",
              flush=True)

    @classmethod
    def make_cluster(cls, n: int, name: str = "cluster", **kw) -> Cluster:
        c = Cluster(n, os.path.join(cls.tmp, name), **kw)
        cls.clusters.append(c)
        c.start()
        return c

    @classmethod
    def _cleanup(cls):
        errors = []
        for c in cls.clusters:
            try:
                c.stop_all()
            except AssertionError as e:
                errors.append(str(e))
        if cls.failed or errors:
            print(f"\n{cls.__name__} FAILED (seed {cls.seed}); temp dir {cls.tmp}",
                  file=sys.stderr)
            for c in cls.clusters:
                c.dump_logs()
        if os.environ.get("KEEP"):
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        if errors:
            raise AssertionError("; ".join(errors))

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            type(self).failed = True
        return out


def main():
    # Stop peers also when ctest (or the user) terminates the test with SIGTERM / SIGINT.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unittest.main(verbosity=2)
