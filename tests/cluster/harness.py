"""Cluster test harness: real `cairn peer` processes on 127.0.0.1, driven through the CLI.

Cluster(n) inits n peers (ids 1..n, host ids host1..hostn) in a temp dir with listen ports chosen
free up front (every peer seeds all others) and API ports picked by the daemon (port 0, written
back to cairn.toml), starts them, and waits until every peer sees all n alive. Peer 1 is made
with a new cluster key and the others join it with its token (`cairn init --join $(cairn cluster
token)`). Multicast discovery is off unless asked for (multicast=True gives the cluster a UDP
port of its own, so that concurrent test clusters never hear each other). Helpers run the CLI
(parsing --json), edit cairn.toml, list, damage and drop the blobs a storage peer holds (segment
layout: the registry in DIR/index.db, read read-only, and the segment files DIR/segments/*.seg;
or the blob files of the old one-file-per-blob layout, for a peer directory in that layout),
wait on conditions with deadlines (polling every 100 ms, never fixed sleeps), kill -9 or SIGTERM
peers, and always stop every peer on teardown. ClusterTestCase prints the peer logs when a test
fails and removes the temp dir otherwise (env KEEP=1 keeps it).

Network namespaces (netns=NetnsNet(...)): peer i runs in namespace NAME-i at SUBNET.(10+i), with
no seeds (multicast finds the others); every CLI call for it runs under `ip netns exec` too.

The binary is $CAIRN_BIN (ctest sets it), else build/cmd/cairn/cairn under the repo root.
$CAIRN_TEST_SEED repeats a test's random data; $CAIRN_TEST_TIME_SCALE (e.g. 3 under ASan)
stretches every deadline. Python stdlib only.
"""

import atexit
import base64
import collections
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREECMP = os.path.join(REPO, "scripts", "treecmp.py")
NETNS_CLUSTER = os.path.join(REPO, "scripts", "netns-cluster")
POLL = 0.1  # seconds between polls of a condition
# Stretches every wait_for deadline (e.g. 3 under ASan/valgrind, or on a loaded machine).
TIME_SCALE = float(os.environ.get("CAIRN_TEST_TIME_SCALE", "1") or 1)


def cairn_bin() -> str:
    b = os.environ.get("CAIRN_BIN") or os.path.join(REPO, "build", "cmd", "cairn", "cairn")
    if not os.access(b, os.X_OK):
        raise unittest.SkipTest(f"no cairn binary at {b} (set CAIRN_BIN)")
    return b


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list:
    """n distinct free TCP ports on 127.0.0.1 (bound together so they differ).

    Taken below the kernel's ephemeral range: a port picked there could be handed to any
    outgoing connection (every gRPC client of a test running alongside) or `:0` listener before
    the peer binds it, and the peer would then fail to start."""
    low = max(2048, min(_ephemeral_low(), 65536) - 20000)
    high = max(low + 1000, min(_ephemeral_low(), 65536)) - 1
    socks = []
    try:
        while len(socks) < n:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.SystemRandom().randint(low, high)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_udp_port() -> int:
    """A UDP port free on every address right now (for a cluster's own multicast port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def set_toml(path: str, section, key: str, value: str):
    """Sets `key = value` in section `section` (None: the top-level table) of a TOML file that
    cairn wrote, keeping everything else. `value` is TOML text ('false', '"4+2"', '[]').
    Replaces the key's line if present, else adds it at the end of the section (making the
    section if needed). Checks that the file parses afterwards."""
    with open(path) as f:
        lines = f.read().split("\n")
    cur, start, end = None, None, None
    first_header = None
    for i, line in enumerate(lines):
        m = re.match(r"^\s*\[([^\]]+)\]", line)
        if m:
            if first_header is None:
                first_header = i
            if cur == section and start is not None and end is None:
                end = i
            cur = m.group(1).strip()
            if cur == section:
                start = i
            continue
        if cur == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            break
    else:
        if section is None:
            at = first_header if first_header is not None else len(lines)
            lines.insert(at, f"{key} = {value}")
        elif start is None:
            lines += [f"[{section}]", f"{key} = {value}", ""]
        else:
            at = end if end is not None else len(lines)
            while at > start + 1 and not lines[at - 1].strip():
                at -= 1
            lines.insert(at, f"{key} = {value}")
    text = "\n".join(lines)
    tomllib.loads(text)  # raises on a broken edit
    tmp = path + ".edit"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def blob_files(peer_dir: str) -> dict:
    """{relative path: (owner, chunk hex, shard)} of the blob files under DIR/blobs, without the
    quarantine directory and temp files (cairn's DiskBlobStore layout: ab/cd/OWNER-CHUNK-SHARD)."""
    root = os.path.join(peer_dir, "blobs")
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d != "quarantine"]
        for n in filenames:
            m = re.fullmatch(r"(\d+)-([0-9a-f]+)-(\d+)", n)
            if m:
                rel = os.path.relpath(os.path.join(dirpath, n), root)
                out[rel] = (int(m.group(1)), m.group(2), int(m.group(3)))
    return out


def quarantined_files(peer_dir: str) -> list:
    q = os.path.join(peer_dir, "blobs", "quarantine")
    try:
        return sorted(os.listdir(q))
    except FileNotFoundError:
        return []


# --- Segment layout (docs/formats.md "Segments"; migration 0005_segments.sql) -------------------
# A peer keeps the blobs it holds for others in DIR/segments/NNNNNNNN.seg; which record is held
# (live), deleted (dead) or quarantined is a state in the registry table segment_blobs of
# DIR/index.db. The helpers below read that registry read-only (the peer may be running: the
# database is in WAL mode) and the segment files directly. A peer directory may hold either
# layout (`[storage] layout`), or both while it migrates: the helpers that list what a peer holds
# take the union of DIR/segments (registry) and DIR/blobs (files).

SEG_MAGIC = b"CAIRNSEG"
SEG_HEADER_SIZE = 32    # magic, version, flags, id, checksum
SEG_RECORD_HEADER = 76  # L, header checksum, type, kind, flags, 0, owner, chunk, shard, XXH3-128
SEG_RECORD_BLOB = 1     # record type
SEG_FLAG_EXTRA = 1      # record flags bit 0
SEG_MAX_BLOB = 64 << 20
SEG_LIVE, SEG_DEAD, SEG_QUARANTINED = 0, 1, 2  # segment_blobs.state


def segment_path(peer_dir: str, segment: int) -> str:
    return os.path.join(peer_dir, "segments", f"{segment:08d}.seg")


def has_segments(peer_dir: str) -> bool:
    """Whether the peer directory uses the segment layout (the daemon made DIR/segments)."""
    return os.path.isdir(os.path.join(peer_dir, "segments"))


def _index_ro(peer_dir: str):
    """A read-only connection to DIR/index.db (None when there is none)."""
    path = os.path.join(peer_dir, "index.db")
    if not os.path.exists(path):
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


class SegmentSlot(collections.namedtuple(
        "SegmentSlot", "segment pos owner chunk shard size kind extra state")):
    """One row of segment_blobs: where a record is (segment id, pos = offset of the record in
    the segment file) and what it holds (chunk as hex, extra as bool)."""
    __slots__ = ()

    @property
    def key(self) -> tuple:
        return (self.owner, self.chunk, self.shard)

    @property
    def where(self) -> str:
        """segments/NNNNNNNN.seg@POS, relative to the peer directory."""
        return f"segments/{self.segment:08d}.seg@{self.pos}"


def segment_slots(peer_dir: str, states=(SEG_LIVE,)) -> list:
    """SegmentSlot rows of the peer's segment registry in the given states (default: live, i.e.
    held), ordered by (segment, pos); [] when the directory has no segment registry."""
    if not has_segments(peer_dir):
        return []
    db = _index_ro(peer_dir)
    if db is None:
        return []
    try:
        marks = ",".join("?" * len(states))
        rows = db.execute(
            "SELECT segment, pos, owner, chunk_id, shard, size, kind, extra, state "
            f"FROM segment_blobs WHERE state IN ({marks}) ORDER BY segment, pos",
            tuple(states)).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []
        raise
    finally:
        db.close()
    return [SegmentSlot(seg, pos, o, bytes(c).hex(), sh, size, kind, bool(x), st)
            for seg, pos, o, c, sh, size, kind, x, st in rows]


def parse_segment_header(data: bytes) -> dict:
    """The fields of a segment file header (32 bytes; the checksum is not verified: XXH3 is not
    in the Python standard library). Raises ValueError if it is not one."""
    if len(data) < SEG_HEADER_SIZE or data[:8] != SEG_MAGIC:
        raise ValueError(f"not a segment header: {data[:8]!r}")
    version, flags, seg_id = struct.unpack_from("<IIQ", data, 8)
    return {"version": version, "flags": flags, "id": seg_id}


def parse_record_header(data: bytes) -> dict:
    """The fields of one record header (76 bytes, docs/formats.md "Segments"); the header
    checksum and the blob's XXH3-128 are not verified. Raises ValueError for anything that is
    not a blob record header of a valid length."""
    if len(data) < SEG_RECORD_HEADER:
        raise ValueError(f"record header truncated ({len(data)} bytes)")
    length, = struct.unpack_from("<I", data, 0)
    rtype, kind, flags, zero = data[12], data[13], data[14], data[15]
    owner, = struct.unpack_from("<Q", data, 16)
    chunk = data[24:56].hex()
    shard, = struct.unpack_from("<I", data, 56)
    if rtype != SEG_RECORD_BLOB or zero != 0 or not 64 <= length <= 64 + SEG_MAX_BLOB:
        raise ValueError(f"not a blob record header (type {rtype}, length {length})")
    return {"length": length, "size": length - 64, "kind": kind, "extra": bool(flags & 1),
            "owner": owner, "chunk": chunk, "shard": shard, "checksum": data[60:76].hex(),
            "key": (owner, chunk, shard)}


def segment_records(path: str) -> list:
    """Walks a segment file from its header: [(pos, record header fields)], stopping at the first
    record that is incomplete or not a valid blob record header (where a torn tail starts; the
    checksums are not verified)."""
    out = []
    with open(path, "rb") as f:
        parse_segment_header(f.read(SEG_HEADER_SIZE))
        size = os.fstat(f.fileno()).st_size
        pos = SEG_HEADER_SIZE
        while pos + SEG_RECORD_HEADER <= size:
            f.seek(pos)
            try:
                rec = parse_record_header(f.read(SEG_RECORD_HEADER))
            except ValueError:
                break
            if pos + SEG_RECORD_HEADER + rec["size"] > size:
                break
            out.append((pos, rec))
            pos += SEG_RECORD_HEADER + rec["size"]
    return out


def segment_mismatches(peer_dir: str) -> list:
    """Cross-checks the registry against the segment files (read with segment_records): every
    live row must sit at a record boundary of its segment, the record holding the row's key,
    size and extra flag as written. Returns the disagreements ([] when they agree). Only
    meaningful while the peer is quiet (a compaction moves records)."""
    bad, records = [], {}
    for s in segment_slots(peer_dir):
        if s.segment not in records:
            path = segment_path(peer_dir, s.segment)
            try:
                records[s.segment] = dict(segment_records(path))
            except (OSError, ValueError) as e:
                records[s.segment] = {}
                bad.append(f"{path}: {e}")
        rec = records[s.segment].get(s.pos)
        if rec is None:
            bad.append(f"{s.where}: no record starts there ({s})")
        elif (rec["key"], rec["size"]) != (s.key, s.size):
            bad.append(f"{s.where}: record {rec} is not row {s}")
    return bad


def held_blobs(peer_dir: str) -> dict:
    """{where: (owner, chunk hex, shard)} of every blob the peer holds: the live rows of its
    segment registry (where = "segments/NNNNNNNN.seg@POS") and its blob files (file layout or
    not yet migrated; where = "blobs/REL")."""
    out = {s.where: s.key for s in segment_slots(peer_dir)}
    out.update({f"blobs/{rel}": key for rel, key in blob_files(peer_dir).items()})
    return out


def held_records(peer_dir: str) -> list:
    """(owner, chunk hex, shard, extra) of every blob the peer's registry says it holds: live
    segment rows and rows of the file layout's `blobs` table (read-only)."""
    out = [(s.owner, s.chunk, s.shard, s.extra) for s in segment_slots(peer_dir)]
    db = _index_ro(peer_dir)
    if db is None:
        return out
    try:
        out += [(o, bytes(c).hex(), s, bool(e))
                for o, c, s, e in db.execute("SELECT owner, chunk_id, shard, extra FROM blobs")]
    except sqlite3.OperationalError as e:
        if "no such table" not in str(e):
            raise
    finally:
        db.close()
    return out


def quarantined_blobs(peer_dir: str) -> list:
    """(owner, chunk hex, shard) of the blobs the peer quarantined: segment rows in state
    quarantined (the bytes stay in the segment), and files in DIR/blobs/quarantine/ (file
    layout; their names start with OWNER-CHUNK-SHARD)."""
    out = [s.key for s in segment_slots(peer_dir, states=(SEG_QUARANTINED,))]
    for name in quarantined_files(peer_dir):
        m = re.match(r"(\d+)-([0-9a-f]+)-(\d+)", name)
        if m:
            out.append((int(m.group(1)), m.group(2), int(m.group(3))))
    return sorted(out)


def is_quarantined(peer_dir: str, where: str) -> bool:
    """Whether the blob copy at `where` (a key of held_blobs) was quarantined: for
    "segments/NNNNNNNN.seg@POS", the registry row at that segment and offset is in state
    quarantined; for "blobs/REL", DIR/blobs/quarantine/ has a file named after it."""
    m = re.fullmatch(r"segments/(\d+)\.seg@(\d+)", where)
    if m:
        seg, pos = int(m.group(1)), int(m.group(2))
        return any((s.segment, s.pos) == (seg, pos)
                   for s in segment_slots(peer_dir, states=(SEG_QUARANTINED,)))
    name = os.path.basename(where)
    return any(q.startswith(name) for q in quarantined_files(peer_dir))


def _flip_at(path: str, offsets):
    with open(path, "r+b") as f:
        for off in offsets:
            f.seek(off)
            b = f.read(1)
            if len(b) != 1:
                raise AssertionError(f"{path}: nothing to flip at offset {off}")
            f.seek(off)
            f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())


def corrupt_blob(peer_dir: str, key: tuple, rng: random.Random) -> str:
    """Damages the peer's held copy of blob `key` = (owner, chunk hex, shard) in place, keeping
    its size: flips one byte in the second half of the blob (past the envelope header) and one in
    the first half, so that the peer's checksum check fails when it next reads it. Segment
    layout: inside the blob's bytes in its segment, at the offset the registry records (pos +
    76), after checking that the record header there names this key and size (a wrong offset
    would damage another blob or a record header instead). File layout: inside the blob file.
    Returns where (for the log). AssertionError if the peer holds no live copy of `key`."""
    key = (int(key[0]), str(key[1]).lower(), int(key[2]))
    for s in segment_slots(peer_dir):
        if s.key != key:
            continue
        path = segment_path(peer_dir, s.segment)
        with open(path, "rb") as f:
            seg = parse_segment_header(f.read(SEG_HEADER_SIZE))
            f.seek(s.pos)
            rec = parse_record_header(f.read(SEG_RECORD_HEADER))
        if seg["id"] != s.segment or rec["key"] != key or rec["size"] != s.size:
            raise AssertionError(f"{path}@{s.pos}: record {rec} does not match registry row {s}")
        start = s.pos + SEG_RECORD_HEADER
        _flip_at(path, sorted({start + rng.randrange(s.size // 2, s.size),
                               start + rng.randrange(0, max(1, s.size // 2))}))
        return f"{path}@{s.pos} (blob bytes {start}..{start + s.size})"
    for rel, k in blob_files(peer_dir).items():
        if k == key:
            path = os.path.join(peer_dir, "blobs", rel)
            size = os.path.getsize(path)
            _flip_at(path, sorted({rng.randrange(size // 2, size),
                                   rng.randrange(0, max(1, size // 2))}))
            return path
    raise AssertionError(f"{peer_dir} holds no live copy of blob {key}")


def drop_held_blob(peer_dir: str, key: tuple) -> str:
    """Makes a STOPPED peer lose its copy of `key` without anything noticing at once, as a blob
    file removed behind the daemon's back does in the file layout. Segment layout: the live
    registry row goes (the record's bytes stay, unreferenced: open re-registers only records past
    a segment's registered_end, so the peer comes back up not holding the blob). File layout:
    the blob file is removed (its `blobs` row stays; Has sees no file). Returns what was done."""
    key = (int(key[0]), str(key[1]).lower(), int(key[2]))
    for s in segment_slots(peer_dir):
        if s.key == key:
            db = sqlite3.connect(os.path.join(peer_dir, "index.db"), timeout=30)
            try:
                with db:
                    n = db.execute("DELETE FROM segment_blobs WHERE segment = ? AND pos = ? "
                                   "AND state = ?", (s.segment, s.pos, SEG_LIVE)).rowcount
            finally:
                db.close()
            if n != 1:
                raise AssertionError(f"registry row {s} not removed ({n} rows)")
            return f"removed the registry row of {s.where}"
    for rel, k in blob_files(peer_dir).items():
        if k == key:
            os.remove(os.path.join(peer_dir, "blobs", rel))
            return f"removed blobs/{rel}"
    raise AssertionError(f"{peer_dir} holds no live copy of blob {key}")


class NetnsNet:
    """Network namespaces NAME-1..NAME-N on one bridge (scripts/netns-cluster net-up), peer i at
    SUBNET.(10+i). Root only; cleaned up by down() (also called at exit)."""

    def __init__(self, name: str, n: int, subnet: str):
        self.name, self.n, self.subnet = name, n, subnet
        self.up_done = False

    def ns(self, i: int) -> str:
        return f"{self.name}-{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{10 + i}"

    def up(self):
        atexit.register(self.down)
        self.up_done = True
        cp = subprocess.run([NETNS_CLUSTER, "net-up", self.name, str(self.n), "--subnet",
                             self.subnet], capture_output=True, timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"netns-cluster net-up failed (exit {cp.returncode}): "
                               f"{show(cp.stdout)}{show(cp.stderr)}")

    def down(self):
        if not self.up_done:
            return
        cp = subprocess.run([NETNS_CLUSTER, "net-down", self.name], capture_output=True,
                            timeout=120)
        if cp.returncode != 0:
            print(f"netns-cluster net-down {self.name} failed: {show(cp.stderr)}",
                  file=sys.stderr)
        else:
            self.up_done = False


class Fatal(AssertionError):
    """Raised by a wait_for condition to stop waiting at once (e.g. the peer died)."""


def wait_for(cond, timeout: float, what: str, interval: float = POLL):
    """Polls cond() every `interval` seconds (default 100 ms) until it returns a truthy value
    (returned) or the deadline. Exceptions from cond count as "not yet", except Fatal, which is
    re-raised."""
    timeout *= TIME_SCALE
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
        time.sleep(interval)


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
    """One peer directory and its `cairn peer` process. `name` is the directory name (peerN
    for members); `netns`, when set, is the network namespace it runs in."""

    def __init__(self, cluster, peer_id: int, listen_port: int, name: str = None,
                 host: str = "127.0.0.1", netns: str = None):
        self.cluster = cluster
        self.id = peer_id
        self.name = name or f"peer{peer_id}"
        self.dir = os.path.join(cluster.root, self.name)
        self.host = host
        self.listen_port = listen_port
        self.netns = netns
        self.log_path = os.path.join(self.dir, "peer.log")
        self.proc = None
        self.exit_code = None
        # argv prefix of `cairn peer` (not of CLI calls), e.g. ["faketime", "-f", "+10m"]
        self.launcher = []
        # extra environment of `cairn peer` (e.g. NOTIFY_SOCKET), over the test's own
        self.env = {}

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def config_path(self) -> str:
        return os.path.join(self.dir, "cairn.toml")

    def config(self) -> dict:
        with open(self.config_path, "rb") as f:
            return tomllib.load(f)

    def set_config(self, section, key: str, value: str):
        """Edits cairn.toml (takes effect at the next start). value is TOML text."""
        set_toml(self.config_path, section, key, value)

    def api_port(self) -> int:
        """The API port the daemon wrote back to cairn.toml (0 until it did)."""
        return int(self.config()["api"].rsplit(":", 1)[1])

    def token(self) -> str:
        with open(os.path.join(self.dir, "secrets", "api.token")) as f:
            return f.read().strip()

    def wrap(self, argv: list) -> list:
        """argv run inside this peer's network namespace (unchanged without one)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else list(argv)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap([*self.launcher, self.cluster.bin, "peer", "--dir",
                                                self.dir]),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env} if self.env else None,
                                     preexec_fn=_die_with_parent)
        log.close()
        self.exit_code = None

    def kill9(self):
        """SIGKILL, as a crash or power loss would."""
        self.proc.kill()
        self.exit_code = self.proc.wait()

    def wait_exit(self, timeout: float) -> int:
        """Waits for the process to exit on its own; returns its exit code (raises on timeout)."""
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"peer {self.name} still running after {timeout:.0f} s")
        return self.exit_code

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

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return show(f.read())
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        return "\n".join(show(l) for l in data.splitlines()[-lines:])

    def blob_files(self) -> dict:
        """Blob files of the file layout (DIR/blobs); see held_blobs for either layout."""
        return blob_files(self.dir)

    def held_blobs(self) -> dict:
        """{where: (owner, chunk hex, shard)} of the blobs it holds, in either layout."""
        return held_blobs(self.dir)


_live_clusters = []


@atexit.register
def _kill_leftovers():
    for c in _live_clusters:
        c.kill_all()


class Cluster:
    """n member peers (ids 1..n). Keyword options (None = cairn's default):
      copies          --copies at init (the config default)
      ec              [backup] ec default, e.g. "4+2"
      ping_interval, suspect_after, dead_after   membership timing ("500ms", "4s")
      multicast       False: [discovery] multicast = false (default on loopback);
                      True: on, on a UDP port of this cluster's own; an int: on, that port
      announce_interval   [discovery] interval
      scrub           False: [scrub] enabled = false; a duration string: enabled, that interval
      config          {(section or None, key): TOML text} edited into every cairn.toml
      join            True: peers 2..n join peer 1 with its token; False: every peer makes its
                      own cluster key (as before cluster keys existed)
      netns           NetnsNet: peer i in its namespace, no seeds, multicast on
      chunk_avg etc.  --chunk-min/--chunk-avg/--chunk-max at init
    """

    def __init__(self, n: int, root: str, copies: int = 2, quota: str = "1G",
                 ping_interval: str = "250ms", extra_init=(), ec: str = None,
                 suspect_after: str = None, dead_after: str = None, multicast=False,
                 announce_interval: str = None, scrub=None, config=None, join: bool = True,
                 netns: NetnsNet = None, chunk_min: str = None, chunk_avg: str = None,
                 chunk_max: str = None):
        self.bin = cairn_bin()
        self.n = n
        self.root = root
        self.copies = copies
        self.quota = quota
        self.ping_interval = ping_interval
        self.extra_init = list(extra_init)
        self.ec = ec
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self.netns = netns
        if netns is not None and multicast is False:
            multicast = True
        if multicast is True:
            multicast = 7946 if netns is not None else free_udp_port()
        self.multicast = multicast  # False or a UDP port
        self.announce_interval = announce_interval
        self.scrub = scrub
        self.config = dict(config or {})
        self.join = join
        self.chunk = {"--chunk-min": chunk_min, "--chunk-avg": chunk_avg, "--chunk-max": chunk_max}
        self.join_token = None
        self.peers = {}
        self.others = []  # peers that are not members (outsiders, impostors): stopped, logged
        self.history = []  # CLI calls, printed on failure
        _live_clusters.append(self)

    def all_peers(self) -> list:
        return list(self.peers.values()) + self.others

    # --- lifecycle -------------------------------------------------------------------------
    def init_args(self, p: Peer, seeds=()) -> list:
        args = ["init", "--dir", p.dir, "--peer-id", str(p.id), "--listen", p.listen,
                "--api", "127.0.0.1:0", "--quota", self.quota, "--copies", str(self.copies)]
        if self.ping_interval:
            args += ["--ping-interval", self.ping_interval]
        if self.suspect_after:
            args += ["--suspect-after", self.suspect_after]
        if self.dead_after:
            args += ["--dead-after", self.dead_after]
        for flag, v in self.chunk.items():
            if v:
                args += [flag, v]
        for s in seeds:
            args += ["--seed", s]
        return args + self.extra_init

    def settings(self) -> dict:
        """The cairn.toml edits every peer of this cluster gets."""
        edits = {}
        if self.multicast is False:
            edits[("discovery", "multicast")] = "false"
        else:
            edits[("discovery", "multicast")] = "true"
            edits[("discovery", "port")] = str(self.multicast)
        if self.announce_interval:
            edits[("discovery", "interval")] = f'"{self.announce_interval}"'
        if self.ec:
            edits[("backup", "ec")] = f'"{self.ec}"'
        if self.scrub is False:
            edits[("scrub", "enabled")] = "false"
        elif self.scrub:
            edits[("scrub", "enabled")] = "true"
            edits[("scrub", "interval")] = f'"{self.scrub}"'
        edits.update(self.config)
        return edits

    def new_peer(self, peer_id: int, name: str = None, host_id: str = None, join=None,
                 seeds=None, member: bool = True, port: int = None, edits=None) -> Peer:
        """Inits one peer directory (not started). join: None = this cluster's default (the
        token of peer 1 when self.join), False = a new cluster key of its own, or a token
        string. seeds: default every member's address (none in network namespaces)."""
        if self.netns is not None:
            i = len(self.peers) + len(self.others) + 1
            p = Peer(self, peer_id, port or 7000, name=name, host=self.netns.address(i),
                     netns=self.netns.ns(i))
        else:
            p = Peer(self, peer_id, port or free_ports(1)[0], name=name)
        if seeds is None:
            seeds = [] if self.netns is not None else [q.listen for q in self.peers.values()
                                                       if q.listen != p.listen]
        args = self.init_args(p, seeds)
        at = args.index("--peer-id") + 2
        args[at:at] = ["--host-id", host_id or f"host{peer_id}"]
        token = self.join_token if join is None and self.join else (join or None)
        if token:
            args += ["--join", token]
        r = self.run_raw(args)
        if r.rc != 0:
            raise AssertionError(f"cairn init failed: {r!r}")
        all_edits = self.settings()
        if token and self.netns is not None:
            # The token's address becomes a seed; in namespaces the peers must find each other
            # by multicast alone.
            all_edits[(None, "seeds")] = "[]"
        all_edits.update(edits or {})
        for (section, key), value in all_edits.items():
            p.set_config(section, key, value)
        if member:
            assert peer_id not in self.peers, peer_id
            self.peers[peer_id] = p
        else:
            self.others.append(p)
        return p

    def cluster_token(self, peer: int = 1) -> str:
        """`cairn cluster token` of a member (one line on stdout)."""
        r = self.cli(peer, "cluster token")
        token = r.out.strip()
        if not token or "\n" in token:
            raise AssertionError(f"cairn cluster token printed no single line: {r!r}")
        return token

    def start(self, timeout: float = 60):
        """Inits peers 1..n (peer 1 first: the others join with its token), starts them and
        waits until every one sees all n alive."""
        if self.netns is None:
            ports = free_ports(self.n)  # every peer seeds all others on loopback
            made = [Peer(self, i, ports[i - 1]) for i in range(1, self.n + 1)]
        else:  # one address per namespace; the same port in each
            made = [Peer(self, i, 7000, host=self.netns.address(i), netns=self.netns.ns(i))
                    for i in range(1, self.n + 1)]
        for p in made:
            seeds = [] if self.netns is not None else [q.listen for q in made if q is not p]
            args = self.init_args(p, seeds)
            at = args.index("--peer-id") + 2
            args[at:at] = ["--host-id", f"host{p.id}"]
            if self.join and p.id != 1:
                args += ["--join", self.join_token]
            r = self.run_raw(args)
            if r.rc != 0:
                raise AssertionError(f"cairn init failed: {r!r}")
            self.peers[p.id] = p
            edits = self.settings()
            if self.netns is not None:
                # --join made the token's address a seed: here multicast alone must find peers.
                edits[(None, "seeds")] = "[]"
            for (section, key), value in edits.items():
                p.set_config(section, key, value)
            if self.join and p.id == 1:
                self.join_token = self.cluster_token(1)
        for p in self.peers.values():
            p.start()
        self.wait_all_alive(timeout)

    def stop_all(self) -> dict:
        """SIGTERMs every running peer (in parallel) and waits; returns {peer id: exit code}
        (members; other peers by name)."""
        for p in self.all_peers():
            if p.running():
                p.proc.terminate()
        codes, errors = {}, []
        for p in self.all_peers():
            key = p.id if p in self.peers.values() else p.name
            try:
                codes[key] = p.stop()
            except AssertionError as e:
                errors.append(str(e))
                codes[key] = p.exit_code
        if errors:
            raise AssertionError("; ".join(errors))
        return codes

    def kill_all(self):
        for p in self.all_peers():
            if p.running():
                p.kill9()

    def dump_problems(self, out=sys.stderr, per_peer: int = 6):
        """The last two failed CLI calls (stderr) and each peer's first warning/error lines."""
        for r in [r for r in self.history if r.rc != 0][-2:]:
            print(f"failed CLI call: {' '.join(show(a) for a in r.args[1:4])} ... "
                  f"-> exit {r.rc}; stderr: {r.err[-1500:]!r}", file=out)
        for p in self.all_peers():
            try:
                with open(p.log_path, errors="replace") as f:
                    hits = [line.rstrip() for line in f
                            if "] warning:" in line or "] error:" in line or "] critical:" in line]
            except OSError:
                continue
            for line in hits[:per_peer]:
                print(f"{p.name}: {line[:400]}", file=out)
        out.flush()

    def dump_logs(self, out=sys.stderr, lines: int = 60):
        print("\n===== recent cairn CLI calls =====", file=out)
        for r in self.history[-15:]:
            print(repr(r), file=out)
        for p in self.all_peers():
            code = p.exit_code if p.proc is None else p.proc.poll()
            state = "running" if p.running() else f"exited {code}"
            print(f"\n===== {p.name} (id {p.id}, {state}) {p.log_path} (last {lines} lines) "
                  f"=====", file=out)
            print(p.log_tail(lines), file=out)
        out.flush()

    # --- CLI ---------------------------------------------------------------------------------
    def peer(self, peer) -> Peer:
        return peer if isinstance(peer, Peer) else self.peers[peer]

    def run_raw(self, args, timeout: float = 180, env=None, netns: str = None) -> CliResult:
        """Runs `cairn ARGS` (no --dir added) and returns the result without checking it.
        With netns, inside that network namespace (init runs outside: it needs no network)."""
        full = [self.bin, *args]
        if netns:
            full = ["ip", "netns", "exec", netns, *full]
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

    def cli(self, peer, cmd: str, *args, json_out: bool = False, expect=0,
            timeout: float = 180) -> CliResult:
        """Runs `cairn CMD --dir DIR(peer) [--json] ARGS` (peer: member id or Peer); asserts
        the exit code unless expect is None (expect may also be a tuple of codes). cmd may be
        "cluster token" (several words)."""
        p = self.peer(peer)
        a = cmd.split() + ["--dir", p.dir] + (["--json"] if json_out else []) + list(args)
        r = self.run_raw(a, timeout=timeout, netns=p.netns)
        ok = expect is None or (r.rc in expect if isinstance(expect, tuple) else r.rc == expect)
        if not ok:
            raise AssertionError(f"expected exit {expect}: {r!r}")
        if json_out and expect == 0 and r.json is None:
            raise AssertionError(f"no JSON on stdout: {r!r}")
        return r

    def json(self, peer, cmd: str, *args, expect=0, timeout: float = 180):
        return self.cli(peer, cmd, *args, json_out=True, expect=expect, timeout=timeout).json

    # --- conditions ------------------------------------------------------------------------
    def peers_seen_by(self, peer) -> list:
        """`cairn peers --json` of a peer ([] if it does not answer)."""
        p = self.peer(peer)
        r = self.run_raw(["peers", "--dir", p.dir, "--json"], timeout=30, netns=p.netns)
        if r.rc != 0 or not isinstance(r.json, list):
            return []
        return r.json

    def states_seen_by(self, peer) -> dict:
        """{peer id: state} as `peer` reports them ("self" for itself)."""
        return {e.get("peer_id"): ("self" if e.get("self") else e.get("state"))
                for e in self.peers_seen_by(peer)}

    def alive_seen_by(self, peer) -> set:
        """Peer ids that `peer` reports alive (itself included)."""
        return {pid for pid, st in self.states_seen_by(peer).items() if st in ("self", "alive")}

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

    def wait_state(self, observer, peer_ids, state: str, timeout: float):
        """Waits until `observer` reports every peer in peer_ids in `state`."""
        want = set(peer_ids)

        def ok():
            if not self.peer(observer).running():
                raise Fatal(f"observer {observer} exited")
            states = self.states_seen_by(observer)
            return all(states.get(i) == state for i in want) and states

        return wait_for(ok, timeout, f"peer {observer} to report {sorted(want)} {state}")

    def wait_api(self, peer, timeout: float = 30) -> int:
        p = self.peer(peer)
        return wait_for(lambda: p.api_port(), timeout,
                        f"peer {p.name} to write its API port to cairn.toml")

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
    def used_by_peer(self) -> dict:
        """{peer id: used bytes} of the running members, each from its own `cairn peers`."""
        used = {}
        for p in self.peers.values():
            if not p.running():
                continue
            me = [e for e in self.json(p.id, "peers") if e.get("self")]
            used[p.id] = me[0]["used"] if me else 0
        return used

    def holders_by_used(self, home: int = 1) -> list:
        """Storage peers (all but the home peer) sorted by bytes they hold, largest first."""
        used = self.used_by_peer()
        return [pid for pid, u in sorted(used.items(), key=lambda kv: (kv[1], kv[0]),
                                         reverse=True) if pid != home]

    def blob_map(self, peer_ids=None, owner: int = None) -> dict:
        """{(owner, chunk hex): {shard: set(peer ids holding that blob)}} over the blobs the
        given members hold on disk (default all, running or not; held_blobs: live segment
        registry rows and blob files)."""
        out = {}
        for pid in (peer_ids if peer_ids is not None else self.peers):
            for (o, chunk, shard) in self.peers[pid].held_blobs().values():
                if owner is not None and o != owner:
                    continue
                out.setdefault((o, chunk), {}).setdefault(shard, set()).add(pid)
        return out

    def check(self, peer: int = 1, *args, timeout: float = 300) -> CliResult:
        """`cairn check --json ARGS`. The exit code (0 healthy, 3 below target, 1 lost) is not
        asserted, but a usage error (2: no such command or flag) or a timeout raises Fatal; a
        JSON object is required on stdout."""
        r = self.cli(peer, "check", *args, json_out=True, expect=None, timeout=timeout)
        if r.rc not in (0, 1, 3) or not isinstance(r.json, dict):
            raise Fatal(f"cairn check did not run: {r!r}")
        return r

    def repair(self, peer: int = 1, timeout: float = 300) -> CliResult:
        """`cairn repair --json` (exit code 0/1/3 not asserted; usage errors raise Fatal)."""
        r = self.cli(peer, "repair", json_out=True, expect=None, timeout=timeout)
        if r.rc not in (0, 1, 3):
            raise Fatal(f"cairn repair did not run: {r!r}")
        return r


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
    # [storage] layout of every peer of make_cluster() (None: cairn's default, segments).
    storage_layout = None

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
        cls.first_failures = []  # "test id: last line of its trace", printed first on failure
        cls.addClassCleanup(cls._cleanup)
        if cls.seed is None:
            cls.seed = int(os.environ.get("CAIRN_TEST_SEED", random.randrange(1 << 32)))
        print(f"{cls.__name__}: seed {cls.seed} (CAIRN_TEST_SEED to repeat), dir {cls.tmp}",
              flush=True)

    @classmethod
    def make_cluster(cls, n: int, name: str = "cluster", start: bool = True, **kw) -> Cluster:
        if cls.storage_layout:
            kw["config"] = {("storage", "layout"): f'"{cls.storage_layout}"',
                            **(kw.get("config") or {})}
        c = Cluster(n, os.path.join(cls.tmp, name), **kw)
        cls.clusters.append(c)
        if start:
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
            # A short summary first: CI shows the head and the tail of a long output.
            for line in cls.first_failures[:3]:
                print(f"first failure: {line[:2000]}", file=sys.stderr)
            for c in cls.clusters:
                c.dump_problems()
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
            for _, trace in (result.failures + result.errors)[before:]:
                type(self).first_failures.append(f"{self.id()}: {trace.strip().splitlines()[-1]}")
        return out


def main():
    # Stop peers also when ctest (or the user) terminates the test with SIGTERM / SIGINT.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unittest.main(verbosity=2)
