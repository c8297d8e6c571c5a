#!/usr/bin/env python3
"""The web dashboard (docs/dashboard.md) in a real browser: 4 peers; headless Chromium
(Debian's `chromium`) driven by playwright-core (npm, installed into a cache outside the source
tree: $CAIRN_PLAYWRIGHT_DIR, else BUILD_DIR/playwright next to the cairn binary's build) runs
tests/cluster/dashboard_browser.js, which

- is refused with a wrong token, logs in with the pasted token, logs out, logs in with the
  one-time link `cairn ui` prints (the code then no longer works: a second browser is refused);
- sees the 4 peers alive on the cluster page;
- adds a source on the sources page, starts its backup on the jobs page and sees it finish;
- browses the snapshot to a 5 MiB file (more than one 4 MiB GET /v1/read block), downloads
  it, and the downloaded bytes equal the original; restores its directory to a new directory
  (the restored tree equals the source: treecmp);
- after the harness changed one file, added one (its name holds markup, shown as text) and
  removed one, starts a second backup, picks the two snapshots on the snapshots page and shows
  their diff: exactly those three changes with their sizes, and the totals (as `cairn diff`);
- runs a check on the health page and sees it healthy, per snapshot, and both snapshots
  "survives any 1 peer" (2 copies on 3 storage peers, each its own host) with no single-point
  host;
- sees peer 3, SIGKILLed by the harness, turn suspect or dead, then dead, on the cluster page;
- sees on the health page both snapshots "survives no peer loss", with the hosts of peer 3's
  partners as single points (automatic repair is off in this cluster, so that this lasts);
- after the harness ran `cairn repair`, sees them survive any 1 peer again, with a rebuild
  estimate at the measured repair rate; GET /v1/health says the same.

Screenshots of each page land in the test's temp dir (artifacts/; KEEP=1 keeps it, and
$CAIRN_TEST_ARTIFACTS, when set, gets a copy). Before the browser, plain HTTP checks the
security rules: the page without a token, data without a token refused, a foreign Host or
Origin refused, the page's Content-Security-Policy, a login code working once.

Skipped (printed "SKIP: ...") only when chromium or npm / playwright-core cannot be installed.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYWRIGHT_VERSION = "1.65.1"


def find_chromium() -> tuple:
    """(path, None) or (None, why not); installs Debian's chromium as root when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed (scripts/install-deps) and this is not root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    found = shutil.which("chromium")
    if found:
        return found, None
    return None, f"apt-get install chromium failed: {r.stderr.decode(errors='replace')[-500:]}"


def playwright_dir() -> tuple:
    """(cache dir holding node_modules/playwright-core, None) or (None, why not)."""
    d = os.environ.get("CAIRN_PLAYWRIGHT_DIR")
    if not d:
        # BUILD/cmd/cairn/cairn -> BUILD/playwright (a build dir, never the source tree).
        d = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(harness.cairn_bin())))), "playwright")
    if os.path.isfile(os.path.join(d, "node_modules", "playwright-core", "package.json")):
        return d, None
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node and npm are not installed"
    os.makedirs(d, exist_ok=True)
    r = subprocess.run(["npm", "install", "--prefix", d, "--no-save", "--no-audit", "--no-fund",
                        "--loglevel=error", f"playwright-core@{PLAYWRIGHT_VERSION}"],
                       capture_output=True, timeout=600)
    if r.returncode != 0:
        return None, f"npm install playwright-core failed: {r.stderr.decode(errors='replace')[-500:]}"
    return d, None


class DashboardTest(harness.ClusterTestCase):
    def test_dashboard(self):
        chromium, why = find_chromium()
        if chromium is None:
            print(f"SKIP: {why}", flush=True)
            raise unittest.SkipTest(why)
        pw, why = playwright_dir()
        if pw is None:
            print(f"SKIP: {why}", flush=True)
            raise unittest.SkipTest(why)

        # The first backup of a new source waits one quiet period: 10 min, so that the
        # backup the browser starts is the only one.
        # Automatic repair is off: the health page must show what the snapshots survive while
        # peer 3 is dead, until the harness runs `cairn repair`.
        c = self.make_cluster(4, suspect_after="1s", dead_after="3s",
                              config={("watch", "quiet_period"): '"10m"',
                                      ("repair", "enabled"): "false"})
        rng = random.Random(self.seed)
        src = os.path.join(self.tmp, "src")
        os.makedirs(os.path.join(src, "docs", "deep"))
        big = os.path.join(src, "docs", "deep", "big.bin")
        with open(big, "wb") as f:
            f.write(rng.randbytes(5 * 1024 * 1024 + 12345))
        for i in range(20):
            with open(os.path.join(src, "docs", f"note{i}.txt"), "wb") as f:
                f.write(rng.randbytes(rng.randrange(1, 40000)))
        with open(os.path.join(src, "top.txt"), "w") as f:
            f.write("hello from the dashboard test\n")  # 30 bytes
        with open(os.path.join(src, "old.txt"), "wb") as f:
            f.write(rng.randbytes(2048))

        port = c.wait_api(1)
        base = f"http://127.0.0.1:{port}"
        self.check_http_rules(c, port)

        ui = c.json(1, "ui", "--no-open")
        self.assertTrue(ui["url"].startswith(base + "/#code="), ui)
        self.assertFalse(ui["opened"])

        artifacts = os.path.join(self.tmp, "artifacts")
        os.makedirs(artifacts)
        restore_target = os.path.join(self.tmp, "restored")
        # A snapshot's root holds each backed-up path by its last component (`cairn ls`).
        parts = ["src", "docs", "deep", "big.bin"]
        cfg = {"playwright": pw, "chromium": chromium, "base": base, "token": c.peer(1).token(),
               "code_url": ui["url"], "source": src, "file_parts": parts, "file_original": big,
               "restore_target": restore_target, "artifacts": artifacts, "kill_peer": 3,
               "peers": 4, "timeout_ms": int(20000 * harness.TIME_SCALE)}
        cfg_path = os.path.join(self.tmp, "browser.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)

        proc = subprocess.Popen(["node", os.path.join(HERE, "dashboard_browser.js"), cfg_path],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out = []
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                out.append(line)
                print("browser:", line, flush=True)
                if line == "CHANGE":
                    self.change_files(src, rng)
                    proc.stdin.write("changed\n")
                    proc.stdin.flush()
                elif line.startswith("KILL "):
                    c.peer(int(line.split()[1])).kill9()
                    proc.stdin.write("killed\n")
                    proc.stdin.flush()
                elif line == "REPAIR":
                    r = c.repair(1)
                    print("repair:", r.rc, (r.json or {}).get("repaired"), flush=True)
                    proc.stdin.write("repaired\n")
                    proc.stdin.flush()
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stdin.close()
            if os.environ.get("CAIRN_TEST_ARTIFACTS"):
                shutil.copytree(artifacts, os.environ["CAIRN_TEST_ARTIFACTS"], dirs_exist_ok=True)
        self.assertEqual(rc, 0, "the browser script failed:\n" + "\n".join(out[-20:]))
        self.assertIn("STEP done", out)

        # What the browser downloaded and what the restore wrote are the original bytes.
        with open(big, "rb") as f:
            want = f.read()
        with open(os.path.join(artifacts, "downloaded-big.bin"), "rb") as f:
            self.assertEqual(f.read(), want)
        restored = os.path.join(restore_target, "deep")
        self.assertTrue(os.path.isdir(restored), os.listdir(restore_target))
        harness.treecmp(os.path.join(src, "docs", "deep"), restored)
        for name in ("login", "cluster", "jobs", "snapshots", "diff", "health", "cluster-dead",
                     "health-dead", "health-repaired"):
            self.assertGreater(os.path.getsize(os.path.join(artifacts, name + ".png")), 1000)
        # The two backups ran from the browser, and made the two snapshots.
        snaps = c.json(1, "snapshots")
        self.assertEqual(len(snaps), 2, snaps)

        self.check_survival(c, out, snaps)

        # The diff the page showed: exactly the three changes, paths on the backed-up machine.
        diffs = [json.loads(x[len("DIFF "):]) for x in out if x.startswith("DIFF ")]
        self.assertEqual(len(diffs), 1, out)
        diff = diffs[0]
        self.assertEqual(sorted(diff["rows"]), sorted([
            ["M", os.path.join(src, "top.txt"), "30 B -> 100 B"],
            ["+", os.path.join(src, "docs", self.ADDED), "2.9 KiB"],
            ["-", os.path.join(src, "old.txt"), "2.0 KiB"],
        ]), diff)
        self.assertEqual(diff["totals"], "1 added (2.9 KiB), 1 removed (2.0 KiB), 1 modified")
        self.assertTrue(diff["title"].startswith(
            f"comparing snapshot {snaps[0]['short_id']} ("), diff)
        self.assertIn(f"to {snaps[1]['short_id']} (", diff["title"])
        # The same changes as `cairn diff` finds.
        cli = c.json(1, "diff", snaps[0]["id"], snaps[1]["id"])
        self.assertEqual((cli["added"], cli["removed"], cli["modified"]), (1, 1, 1), cli)

    def check_survival(self, c, out, snaps):
        """What the health page showed each snapshot survives, before the kill of peer 3, while
        it was dead, after the repair; then GET /v1/health's "snapshots" (docs/cli.md)."""
        stages = {}
        for x in out:
            if x.startswith("SURVIVAL "):
                _, stage, rows = x.split(" ", 2)
                stages[stage] = json.loads(rows)
        self.assertEqual(sorted(stages), ["before", "dead", "repaired"], out)
        ids = sorted(s["id"] for s in snaps)
        for stage, rows in stages.items():
            self.assertEqual(sorted(r["id"] for r in rows), ids, (stage, rows))
        for r in stages["before"]:
            self.assertEqual((r["survives"], r["hosts"]), ("survives any 1 peer", "none"), r)
        for r in stages["dead"]:
            self.assertEqual(r["survives"], "survives no peer loss", r)
            # The chunks peer 3 held have one copy left, on peer 2 or 4.
            self.assertNotIn("host3", r["hosts"], r)
            self.assertRegex(r["hosts"], r"^host host[24]( is a single point|, host host[24] "
                                         r"are single points)$", r)
        for r in stages["repaired"]:
            self.assertEqual((r["survives"], r["hosts"], r["rate"]),
                             ("survives any 1 peer", "none", "repair"), r)
            self.assertIn(" in ~", r["rebuild"], r)

        st, health = c.http(1, "GET", "/v1/health")
        self.assertEqual(st, 200, health)
        info = health["snapshot_health"]
        self.assertEqual(info["rebuild_rate_source"], "repair", info)
        self.assertGreater(info["rebuild_rate_bytes_per_second"], 0, info)
        self.assertIsNotNone(info["computed_at"], info)
        self.assertIsNone(info["error"], info)
        self.assertEqual(sorted(s["id"] for s in health["snapshots"]), ids, health)
        for s in health["snapshots"]:
            self.assertEqual((s["survives_peers"], s["single_point_hosts"], s["lost_chunks"]),
                             (1, [], 0), s)
            self.assertEqual(s["paths"], snaps[0]["paths"], s)
            self.assertGreater(s["rebuild_bytes"], 0, s)
            self.assertIn(s["rebuild_peer"], (2, 4), s)
            self.assertGreaterEqual(s["rebuild_seconds"], 1, s)
            self.assertIsNone(s["error"], s)
            self.assertTrue(s["computed_at"].endswith("Z"), s)
        # The bytes the most loaded peer holds of the second snapshot: at least the 5 MiB file
        # (both its copies are on peers 2 and 4 now).
        newest = max(health["snapshots"], key=lambda s: s["time_ns"])
        self.assertGreater(newest["rebuild_bytes"], 5 * 1024 * 1024, newest)

    # A new file whose name is markup: the page must show it as text.
    ADDED = "added <b>&amp;.txt"

    def change_files(self, src, rng):
        """Between the two snapshots: top.txt changed (30 -> 100 bytes), docs/ADDED added (3000
        bytes), old.txt (2048 bytes) removed."""
        with open(os.path.join(src, "top.txt"), "wb") as f:
            f.write(b"x" * 100)
        with open(os.path.join(src, "docs", self.ADDED), "wb") as f:
            f.write(rng.randbytes(3000))
        os.unlink(os.path.join(src, "old.txt"))

    def check_http_rules(self, c, port):
        """docs/security.md "The local API and browsers", docs/dashboard.md "Security"."""
        host = {"Host": f"127.0.0.1:{port}"}
        st, body = c.http(1, "GET", "/", token=False, headers=host)
        self.assertEqual(st, 200)
        self.assertIn(b"<title>cairn</title>", body)
        st, body = c.http(1, "GET", "/ui/app.js", token=False)
        self.assertEqual(st, 200)
        st, _ = c.http(1, "GET", "/ui/nothing.js", token=False)
        self.assertEqual(st, 404)
        st, body = c.http(1, "GET", "/v1/peers", token=False)
        self.assertEqual(st, 401, body)
        st, body = c.http(1, "GET", "/v1/jobs", token=False)
        self.assertEqual(st, 401, body)
        st, body = c.http(1, "GET", "/", token=False, headers={"Host": f"evil.example:{port}"})
        self.assertEqual(st, 403, body)
        st, body = c.http(1, "POST", "/v1/ui/login", {"code": "00"}, token=False,
                          headers={"Origin": "http://evil.example"})
        self.assertEqual(st, 403, body)
        # The page's own headers: scripts of its origin only, no framing, no caching.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        csp = resp.getheader("Content-Security-Policy") or ""
        self.assertIn("script-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertIsNone(resp.getheader("Access-Control-Allow-Origin"))
        conn.close()
        # A login code works once.
        st, made = c.http(1, "POST", "/v1/ui/code", {})
        self.assertEqual(st, 201, made)
        st, got = c.http(1, "POST", "/v1/ui/login", {"code": made["code"]}, token=False)
        self.assertEqual((st, got), (200, {"token": c.peer(1).token()}))
        st, got = c.http(1, "POST", "/v1/ui/login", {"code": made["code"]}, token=False)
        self.assertEqual(st, 401, got)
        self.assertIn("unknown, used or expired", got["error"]["message"])
        st, got = c.http(1, "POST", "/v1/ui/login", {"nope": 1}, token=False)
        self.assertEqual(st, 400, got)
        st, jobs = c.http(1, "GET", "/v1/jobs")
        self.assertEqual((st, jobs), (200, []))


if __name__ == "__main__":
    harness.main()
