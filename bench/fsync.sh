#!/usr/bin/env bash
# Syncs per stored blob on a storage peer during a first backup of many small files.
#
# Generates FILES small files (default 20000; 100 B .. 4 KB of random content, 100 per
# directory, deterministic from --seed), starts 4 local peers (scripts/local-cluster), attaches
# `strace -f -c` (fsync, fdatasync, sync_file_range, syncfs) to storage peer 2, backs the tree up
# from peer 1 with --copies 2, and prints the sync calls on peer 2, the blobs peer 2 holds
# (cairn status), and their ratio. A storage peer that writes one file per blob makes ~4 syncs
# per blob; with segments and group commit, one sync covers a whole write group.
# Not a test: nothing is asserted. strace slows peer 2 down (it is not a speed benchmark).
#
# Usage: bench/fsync.sh [--files 20000] [--seed 1] [--layout segments|files|""] [--workdir DIR]
#                       [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

files=20000 seed=1 layout=segments workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --layout) layout="$2"; shift 2 ;;  # "": cairn's default (for binaries without [storage])
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fsync: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=fsync
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init
command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null

data="$work/data"
python3 - "$data" "$files" "$seed" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
for i in range(n):
    d = os.path.join(root, f"d{i // 100:05d}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
        f.write(rng.randbytes(rng.randint(100, 4096)))
PY

scripts/local-cluster start 4 "$work/cluster" --quota 10G ${layout:+--storage-layout "$layout"} >&2
strace -f --seccomp-bpf -c -e trace=fsync,fdatasync,sync_file_range,syncfs -o "$work/strace.txt" \
  -p "$(cat "$work/cluster/peer2/pid")" 2>/dev/null &
strace_pid=$!
python3 - "$work/cluster/peer2/pid" <<'PY'
import sys, time
pid = open(sys.argv[1]).read().strip()
deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # wait until strace is attached (TracerPid set)
    if any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in open(f"/proc/{pid}/status")):
        break
    time.sleep(0.05)
PY
timed backup "$cairn" backup --dir "$work/cluster/peer1" "$data" --copies 2 --json
kill -INT "$strace_pid"
wait "$strace_pid" || true
blobs="$("$cairn" status --dir "$work/cluster/peer2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["blobs"])')"
syncs="$(awk '$NF ~ /^(fsync|fdatasync|sync_file_range|syncfs)$/ { n += $4 } END { print n + 0 }' "$work/strace.txt")"
cat "$work/strace.txt" >&2
python3 -c '
import sys
files, layout, syncs, blobs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print(f"{files} small files, layout {layout}: storage peer 2 made {syncs} sync calls for {blobs} "
      f"blobs it holds = {syncs / max(blobs, 1):.3f} syncs per stored blob")' \
  "$files" "$layout" "$syncs" "$blobs"
