#!/usr/bin/env python3
"""Archives: `cairn archive create`, `cairn mount --archive` (a writable FUSE file system served
by the home peer whose files live only on the peers), versions, and their faults.

ArchiveTest (4 peers, 2 copies, small chunks), in order:
 1. fio with sequential and random writes at many offsets, `--verify=crc32c`, through the
    mount; unmount (SIGINT: commits), remount, and fio verifies every file again.
 2. A model-based test: random create / write at an offset / truncate / rename / unlink / mkdir
    sequences against the mount and a plain directory, compared after every step (seed printed).
 3. chmod, chown and utimens through the mount survive a remount; `snapshots` lists archive
    versions apart from backups; `versions NAME:/path` lists a file's versions; `restore --at
    TIME NAME:/path` restores one; `check` exits 0.
 4. A storage peer is SIGKILLed while files are read through a fresh mount: reads succeed.
 5. The home peer is SIGKILLed while a file is being written: after a restart and a remount
    every file closed before the kill reads back identical, the unclosed one is dropped (logged)
    and `check` exits 0. A second mount of a mounted archive is refused.
 6. An [[archive]] table in cairn.toml mounts the archive when the peer starts.

Skipped (printed "SKIP: ...") when /dev/fuse or fio is missing.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
SMALL_CHUNKS = dict(chunk_min="64K", chunk_avg="128K", chunk_max="512K")


def read_all(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ArchiveTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists("/dev/fuse"):
            print("SKIP: /dev/fuse is missing")
            raise unittest_skip("no /dev/fuse")
        if shutil.which("fio") is None:
            print("SKIP: fio is missing (scripts/install-deps installs it)")
            raise unittest_skip("no fio")
        cls.c = cls.make_cluster(4, **SMALL_CHUNKS)
        cls.mnt = os.path.join(cls.tmp, "mnt")
        os.makedirs(cls.mnt)
        cls.c.cli(1, "archive create", "attic")
        cls.mount_proc = None

    # --- mounting ----------------------------------------------------------------------------
    def mount(self, tag: str):
        """`cairn mount --archive attic MNT` in the background; waits until it is mounted."""
        log_path = os.path.join(self.tmp, f"mount-{tag}.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [self.c.bin, "mount", "--dir", self.c.peers[1].dir, "--archive", "attic",
             "--spool", "4M", self.mnt],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=harness._die_with_parent)
        log.close()
        self.addCleanup(self.cleanup_mount, proc, log_path)

        def ready():
            if proc.poll() is not None:
                raise harness.Fatal(f"cairn mount --archive exited with {proc.returncode}: "
                                    f"{harness.show(read_all(log_path))}")
            return os.path.ismount(self.mnt)

        harness.wait_for(ready, 30, "the archive to be mounted")
        type(self).mount_proc = proc
        return proc

    def unmount(self, proc):
        """SIGINT: the peer commits and unmounts; the command exits 0."""
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(60), 0)
        self.assertFalse(os.path.ismount(self.mnt))

    def cleanup_mount(self, proc, log_path: str):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        if proc.returncode not in (0, None):
            print(f"mount log:\n{harness.show(read_all(log_path))}", file=sys.stderr)

    def fio(self, *args, timeout: float = 600) -> subprocess.CompletedProcess:
        r = subprocess.run(["fio", "--directory=" + self.mnt, "--ioengine=psync",
                            "--randseed=" + str(self.seed % (1 << 31)), *args],
                           capture_output=True, timeout=timeout, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, f"fio {' '.join(args)} failed:\n"
                         f"{harness.show(r.stdout)}{harness.show(r.stderr)}")
        return r

    FIO_JOBS = [
        ["--name=seq", "--rw=write", "--bs=256k", "--size=24M", "--verify=crc32c"],
        ["--name=rand", "--rw=randwrite", "--bs=16k", "--size=6M", "--verify=crc32c"],
        ["--name=mixed", "--rw=randrw", "--bs=4k", "--size=2M", "--verify=crc32c",
         "--rwmixread=30"],
    ]

    # --- tests -------------------------------------------------------------------------------
    def test_1_fio_verify_then_remount_and_verify_again(self):
        proc = self.mount("fio")
        for job in self.FIO_JOBS:
            self.fio(*job)
        st = os.statvfs(self.mnt)
        self.assertGreater(st.f_bavail * st.f_frsize, 64 * MiB)  # the peers' free space / copies
        self.unmount(proc)
        archives = self.c.json(1, "archive list")
        self.assertEqual([a["name"] for a in archives], ["attic"])
        self.assertGreaterEqual(archives[0]["versions"], 2)
        self.assertGreaterEqual(archives[0]["bytes"], 32 * MiB)
        self.assertIsNone(archives[0]["mountpoint"])

        proc = self.mount("fio-again")
        for job in self.FIO_JOBS:
            self.fio(*job, "--verify_only")
        self.unmount(proc)

    def test_2_model_based_against_a_plain_directory(self):
        rng = random.Random(self.seed)
        print(f"model-based test: seed {self.seed}", flush=True)
        model = os.path.join(self.tmp, "model")
        os.makedirs(model)
        proc = self.mount("model")
        base = os.path.join(self.mnt, "model")
        os.mkdir(base)
        names = ["a", "b", "c", "d/x", "d/y", "e"]

        def both(fn):
            """Runs fn on the mount and on the model; both must succeed or fail alike."""
            outcome = []
            for root in (base, model):
                try:
                    fn(root)
                    outcome.append(None)
                except OSError as e:
                    outcome.append(e.errno)
            self.assertEqual(outcome[0], outcome[1], "mount vs plain directory")

        for step in range(150):
            name = rng.choice(names)
            op = rng.choice(["write", "write", "truncate", "rename", "unlink", "mkdir", "rmdir"])
            off, data = rng.randrange(400 * KiB), rng.randbytes(1 + rng.randrange(200 * KiB))
            size, to = rng.randrange(600 * KiB), rng.choice(names)
            with self.subTest(step=step, op=op, name=name):
                if op == "write":
                    def fn(r):
                        fd = os.open(os.path.join(r, name), os.O_RDWR | os.O_CREAT, 0o644)
                        try:
                            os.pwrite(fd, data, off)
                        finally:
                            os.close(fd)
                elif op == "truncate":
                    def fn(r):
                        os.truncate(os.path.join(r, name), size)
                elif op == "rename":
                    def fn(r):
                        os.rename(os.path.join(r, name), os.path.join(r, to))
                elif op == "unlink":
                    def fn(r):
                        os.unlink(os.path.join(r, name))
                elif op == "mkdir":
                    def fn(r):
                        os.mkdir(os.path.join(r, "d"))
                else:
                    def fn(r):
                        os.rmdir(os.path.join(r, "d"))
                both(fn)
                d = subprocess.run(["diff", "-r", "--no-dereference", model, base],
                                   capture_output=True, timeout=60)
                self.assertEqual(d.returncode, 0, f"step {step} ({op} {name}), seed {self.seed}:"
                                 f"\n{harness.show(d.stdout)}{harness.show(d.stderr)}")
        self.unmount(proc)
        proc = self.mount("model-again")
        d = subprocess.run(["diff", "-r", model, base], capture_output=True, timeout=60)
        self.assertEqual(d.returncode, 0, f"after remount: {harness.show(d.stdout)}")
        self.unmount(proc)

    def test_3_versions_snapshots_restore_and_check(self):
        proc = self.mount("versions")
        path = os.path.join(self.mnt, "notes.txt")
        for text in (b"first version\n", b"second version, longer\n"):
            with open(path, "wb") as f:
                f.write(text)
            time.sleep(2.5)  # versions some seconds apart: --at below names whole seconds
        # chmod, chown and utimens reach the next version.
        t = 1_700_000_000_123_456_789
        os.chmod(path, 0o640)
        os.chown(path, 1234, 5678)
        os.utime(path, ns=(t, t))
        self.unmount(proc)
        proc = self.mount("versions-again")
        st = os.stat(path)
        self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns),
                         (0o640, 1234, 5678, t))
        self.unmount(proc)
        snaps = self.c.cli(1, "snapshots").out
        self.assertIn("archive version", snaps)
        listed = self.c.json(1, "snapshots")
        self.assertTrue(all(s["archive"] == "attic" for s in listed))
        versions = self.c.json(1, "versions", "attic:/notes.txt")["versions"]
        self.assertGreaterEqual(len(versions), 2, versions)
        first = min(versions, key=lambda v: v["snapshot_time_ns"])
        target = os.path.join(self.tmp, "restore-at")
        at = str(first["snapshot_time_ns"])
        self.c.cli(1, "restore", "--at", time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.localtime(first["snapshot_time_ns"] / 1e9 + 1.0)),
            "attic:/notes.txt", "--target", target)
        self.assertEqual(read_all(os.path.join(target, "notes.txt")), b"first version\n", at)
        self.c.cli(1, "check")

    def test_4_storage_peer_killed_while_reading(self):
        proc = self.mount("write-for-read")
        rng = random.Random(self.seed + 4)
        files = {f"r{i}.bin": rng.randbytes(3 * MiB + i * 1000) for i in range(3)}
        for name, data in files.items():
            with open(os.path.join(self.mnt, name), "wb") as f:
                f.write(data)
        self.unmount(proc)
        proc = self.mount("read")  # a fresh mount: nothing cached
        self.c.peers[2].kill9()
        self.addCleanup(self.restart, 2)
        for name, data in files.items():
            self.assertEqual(read_all(os.path.join(self.mnt, name)), data, name)
        self.unmount(proc)

    def restart(self, peer_id: int):
        p = self.c.peers[peer_id]
        if not p.running():
            p.start()
            self.c.wait_all_alive()

    def test_5_home_peer_killed_mid_write(self):
        proc = self.mount("kill")
        second = subprocess.run([self.c.bin, "mount", "--dir", self.c.peers[1].dir, "--archive",
                                 "attic", os.path.join(self.tmp)], capture_output=True, timeout=60)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(b"already mounted", second.stderr)
        rng = random.Random(self.seed + 5)
        closed = {}
        for i in range(5):
            name, data = f"k{i}.bin", rng.randbytes(1 * MiB + i * 777)
            with open(os.path.join(self.mnt, name), "wb") as f:
                f.write(data)
            closed[name] = data
        open_file = open(os.path.join(self.mnt, "unclosed.bin"), "wb")
        open_file.write(rng.randbytes(2 * MiB))
        open_file.flush()
        self.c.peers[1].kill9()
        try:
            open_file.close()
        except OSError:
            pass  # the mount went with the peer
        proc.wait(30)
        harness.wait_for(lambda: not os.path.ismount(self.mnt), 30, "auto_unmount")
        self.c.peers[1].start()
        self.c.wait_all_alive()  # its API answers (wait_api only sees the port in cairn.toml)
        proc = self.mount("after-kill")
        for name, data in closed.items():
            self.assertEqual(read_all(os.path.join(self.mnt, name)), data, name)
        self.assertFalse(os.path.exists(os.path.join(self.mnt, "unclosed.bin")))
        self.unmount(proc)
        self.assertIn("writes to a file that was never closed", self.c.peers[1].log_text())
        self.c.cli(1, "check")

    def test_6_archive_table_mounts_at_start(self):
        p = self.c.peers[1]
        p.stop()
        with open(p.config_path, "a") as f:
            f.write(f'\n[[archive]]\nname = "attic"\nmountpoint = "{self.mnt}"\n')
        p.start()
        self.c.wait_api(1)
        harness.wait_for(lambda: os.path.ismount(self.mnt), 30, "[[archive]] mounted at start")
        self.assertTrue(os.path.exists(os.path.join(self.mnt, "k0.bin")))
        with open(os.path.join(self.mnt, "from-config.txt"), "wb") as f:
            f.write(b"written through the [[archive]] mount\n")
        self.assertEqual(p.stop(), 0)  # unmounts and commits
        self.assertFalse(os.path.ismount(self.mnt))
        p.start()
        self.c.wait_api(1)
        harness.wait_for(lambda: os.path.ismount(self.mnt), 30, "mounted again")
        self.assertEqual(read_all(os.path.join(self.mnt, "from-config.txt")),
                         b"written through the [[archive]] mount\n")
        p.stop()


def unittest_skip(reason):
    import unittest
    return unittest.SkipTest(reason)


if __name__ == "__main__":
    harness.main()
