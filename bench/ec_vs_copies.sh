#!/usr/bin/env bash
# Erasure coding against copies: `cairn backup --ec 4+2` vs `--copies 3` on the same data, in
# one run.
#
# Generates SIZE bytes of mixed data (bench/gen_dataset.py), then for each scheme starts a fresh
# local cluster of PEERS peers (scripts/local-cluster: one home peer, PEERS-1 storage peers on
# distinct host ids, multicast off), times `cairn backup` from peer 1 and a full `cairn restore`,
# checks the restore equals the dataset (scripts/treecmp.py), and sums the bytes stored on the
# peers (`used` of each peer). Both schemes survive the loss of any 2 storage peers; 4+2 stores
# 1.5x the (compressed, deduplicated) data, 3 copies 3x. Chunks under 64 KiB are stored as m+1 = 3
# copies under 4+2, so small-file data pulls its overhead toward 3x.
# Prints a table (MB = 10^6 bytes): backup MB/s, restore MB/s, MB sent, MB stored, stored /
# dataset, and stored / one copy of the unique data (one copy = the copies run's stored bytes /
# copies; ideal: 1.5 for 4+2, 3 for 3 copies). Not a test: nothing is asserted about speed.
#
# Usage: bench/ec_vs_copies.sh [--size 512M] [--seed 1] [--peers 8] [--ec 4+2] [--copies 3]
#                              [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=512M seed=1 peers=8 ec=4+2 copies=3 workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --ec) ec="$2"; shift 2 ;;
    --copies) copies="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "ec_vs_copies: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=ec_vs_copies
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init

data="$work/data"

echo "ec_vs_copies: generating $size dataset (seed $seed) in $data" >&2
python3 bench/gen_dataset.py "$data" --size "$size" --seed "$seed"
bytes="$(python3 -c '
import os, sys
print(sum(os.lstat(os.path.join(r, f)).st_size for r, _, fs in os.walk(sys.argv[1]) for f in fs))
' "$data")"
sync

# run NAME ARGS...: fresh cluster, backup ARGS, restore, verify, stored bytes -> $work/NAME.stored
run() {
  local name="$1" i used stored=0
  shift
  echo "ec_vs_copies: $name: $peers local peers, cairn backup $*" >&2
  scripts/local-cluster start "$peers" "$work/cluster" --quota 100G --no-multicast --scrub off >&2
  local home="$work/cluster/peer1"
  timed "${name}_backup" "$cairn" backup --dir "$home" "$data" "$@" --json
  timed "${name}_restore" "$cairn" restore --dir "$home" latest --target "$work/restore" --json
  if ! python3 scripts/treecmp.py "$data" "$work/restore/data" >"$work/cmp_$name.out" 2>&1; then
    cat "$work/cmp_$name.out" >&2
    echo "ec_vs_copies: $name restore differs from the dataset" >&2
    exit 1
  fi
  for ((i = 1; i <= peers; i++)); do
    used="$("$cairn" peers --dir "$work/cluster/peer$i" --json |
      python3 -c 'import json,sys; print(next(p["used"] for p in json.load(sys.stdin) if p.get("self")))')"
    stored=$((stored + used))
  done
  echo "$stored" >"$work/$name.stored"
  scripts/local-cluster stop "$work/cluster" >&2
  rm -rf "$work/restore" "$work/cluster"
}

run ec --ec "$ec"
run copies --copies "$copies"

python3 - "$bytes" "$work" "$ec" "$copies" <<'EOF'
import json, sys
data, work, ec, copies = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
times = dict(l.split("\t") for l in open(f"{work}/times").read().split("\n") if l)
rows = []
for name, label in (("ec", f"--ec {ec}"), ("copies", f"--copies {copies}")):
    b = json.load(open(f"{work}/{name}_backup.out"))
    stored = int(open(f"{work}/{name}.stored").read())
    bs, rs = float(times[f"{name}_backup"]), float(times[f"{name}_restore"])
    rows.append((label, b, stored, bs, rs))
unique = rows[1][2] / copies  # one copy of the deduplicated, compressed, encrypted data
b0 = rows[0][1]
print(f"\ndataset: {data / 1e6:.1f} MB, {b0['files']} files; unique after dedup "
      f"{b0['new_bytes'] / 1e6:.1f} MB in {b0['new_chunks']} chunks; one stored copy "
      f"{unique / 1e6:.1f} MB")
print(f"{'scheme':12} {'backup MB/s':>11} {'restore MB/s':>12} {'sent MB':>9} {'stored MB':>10} "
      f"{'stored/data':>11} {'stored/copy':>11} {'backup s':>9} {'restore s':>9}")
for label, b, stored, bs, rs in rows:
    print(f"{label:12} {data / 1e6 / bs:11.1f} {data / 1e6 / rs:12.1f} "
          f"{b['sent_bytes'] / 1e6:9.1f} {stored / 1e6:10.1f} {stored / data:11.2f} "
          f"{stored / unique:11.2f} {bs:9.2f} {rs:9.2f}")
e, c = rows
print(f"ec/copies: backup speed {c[3] / e[3]:.2f}x, restore speed {c[4] / e[4]:.2f}x, "
      f"stored {e[2] / c[2]:.2f}x")
print("(stored/copy: bytes on peers / one copy of the unique data; 4+2 ideal 1.5, "
      "3 copies 3.0)")
EOF
echo "ec_vs_copies: both restores identical to the dataset" >&2
