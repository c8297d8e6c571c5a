#!/usr/bin/env bash
# Where a first backup's CPU goes: starts 4 local peers (scripts/local-cluster), backs DATA up
# from peer 1 with `--copies 2`, and prints the wall time, the CPU seconds (user + system, from
# /proc/PID/stat) each peer process used during the backup, and each peer's peak RSS (VmHWM).
# Peer 1 is the home peer; peers 2-4 store. Run it alternately with another binary (CAIRN_BIN)
# and with `borg create` on the same DATA to compare on a shared, noisy machine.
# Not a test: nothing is asserted.
#
# Usage: bench/cpu_split.sh DATA [WORKDIR]     env CAIRN_BIN: the binary (default build's)
set -euo pipefail
data=${1:?usage: bench/cpu_split.sh DATA [WORKDIR]}
work=${2:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN:-$root/build/cmd/cairn/cairn}
export CAIRN_BIN=$bin
rm -rf "$work/pc"
"$root/scripts/local-cluster" start 4 "$work/pc" --quota 10G >/dev/null
trap '"$root/scripts/local-cluster" stop "$work/pc" >/dev/null 2>&1 || true' EXIT
cpu() { for i in 1 2 3 4; do awk '{print $14+$15}' "/proc/$(cat "$work/pc/peer$i/pid")/stat"; done | tr '\n' ' '; }
before=$(cpu); t0=$(date +%s.%N)
"$bin" backup --dir "$work/pc/peer1" "$data" --copies 2 --json >"$work/backup.json"
t1=$(date +%s.%N); after=$(cpu)
rss=$(for i in 1 2 3 4; do awk '/VmHWM/{printf "%d ", $2/1024}' "/proc/$(cat "$work/pc/peer$i/pid")/status"; done)
python3 - "$before" "$after" "$t0" "$t1" "$rss" <<'PY'
import sys
b = list(map(int, sys.argv[1].split())); a = list(map(int, sys.argv[2].split()))
tick = 100  # USER_HZ
print(f"wall {float(sys.argv[4]) - float(sys.argv[3]):.2f} s")
print("cpu s (home, storage x3):", [round((y - x) / tick, 2) for x, y in zip(b, a)])
print("peak RSS MiB (home, storage x3):", sys.argv[5].split())
PY
