#!/usr/bin/env bash
# End-to-end benchmark: cairn vs restic vs borg on the same generated dataset, in one run.
#
# Generates SIZE bytes of mixed data (bench/gen_dataset.py: text-like, random and repeated
# content in many files), then for each tool times a backup and a full restore, checks that the
# restore equals the dataset (scripts/treecmp.py), and measures what the tool stored:
#   cairn   4 local peers (scripts/local-cluster), `cairn backup --copies 2` from peer 1 and
#           `cairn restore`; stored = sum of the peers' used bytes (2 copies, compressed+encrypted)
#   restic  local repository (restic init; backup; restore), default compression
#   borg    local repository (borg init -e repokey; create; extract), default compression (lz4)
# Prints a table (MB = 10^6 bytes) and the cairn/restic and cairn/borg ratios.
# Not a test: nothing is asserted about speed. Page cache is warm for every tool alike.
#
# Usage: bench/e2e.sh [--size 1G] [--seed 1] [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=1G seed=1 workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=e2e
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init --bench

data="$work/data"
results="$work/results.tsv"
: >"$results"
verify() {
  local tool="$1" restored="$2"
  if ! python3 scripts/treecmp.py "$data" "$restored" >"$work/cmp_$tool.out" 2>&1; then
    cat "$work/cmp_$tool.out" >&2
    echo "e2e: $tool restore differs from the dataset" >&2
    exit 1
  fi
}

echo "e2e: generating $size dataset (seed $seed) in $data" >&2
python3 bench/gen_dataset.py "$data" --size "$size" --seed "$seed"
bytes="$(python3 -c '
import os, sys
print(sum(os.lstat(os.path.join(r, f)).st_size for r, _, fs in os.walk(sys.argv[1]) for f in fs))
' "$data")"
sync

# --- cairn ----------------------------------------------------------------------------------
echo "e2e: cairn (4 local peers, --copies 2)" >&2
scripts/local-cluster start 4 "$work/cluster" --quota 100G >&2
home="$work/cluster/peer1"
timed cairn_backup "$cairn" backup --dir "$home" "$data" --copies 2 --json
timed cairn_restore "$cairn" restore --dir "$home" latest --target "$work/restore_cairn" --json
verify cairn "$work/restore_cairn/data"
cairn_stored=0
for i in 1 2 3 4; do
  used="$("$cairn" peers --dir "$work/cluster/peer$i" --json |
    python3 -c 'import json,sys; print(next(p["used"] for p in json.load(sys.stdin) if p.get("self")))')"
  cairn_stored=$((cairn_stored + used))
done
# Peak resident memory of each peer process (home peer 1 chunks and uploads; 2-4 store).
cairn_rss=""
for i in 1 2 3 4; do
  pid="$(cat "$work/cluster/peer$i/pid" 2>/dev/null || true)"
  hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
  cairn_rss="$cairn_rss peer$i=$((hwm / 1024))MiB"
done
echo "$cairn_rss" >"$work/cairn_rss"
scripts/local-cluster stop "$work/cluster" >&2
rm -rf "$work/restore_cairn" "$work/cluster"/peer*/blobs

# --- restic ---------------------------------------------------------------------------------
echo "e2e: restic $(restic version | awk '{print $2}')" >&2
export RESTIC_PASSWORD=cairn-bench RESTIC_REPOSITORY="$work/restic" RESTIC_CACHE_DIR="$work/restic-cache"
restic init -q >/dev/null
timed restic_backup restic backup -q "$data"
timed restic_restore restic restore -q latest --target "$work/restore_restic"
verify restic "$work/restore_restic$data"
restic_stored="$(du -sb "$work/restic" | cut -f1)"
rm -rf "$work/restore_restic" "$work/restic-cache"

# --- borg -----------------------------------------------------------------------------------
echo "e2e: $(borg --version)" >&2
export BORG_PASSPHRASE=cairn-bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR="$work/borg-home" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e repokey "$work/borg" >"$work/borg_init.log" 2>&1 || { cat "$work/borg_init.log" >&2; exit 1; }
# Archive the path relative to $work so that extract recreates data/ in its cwd.
(cd "$work" && timed borg_backup borg create "$work/borg::bench" data)
mkdir -p "$work/restore_borg"
(cd "$work/restore_borg" && timed borg_restore borg extract "$work/borg::bench")
verify borg "$work/restore_borg/data"
borg_stored="$(du -sb "$work/borg" | cut -f1)"
rm -rf "$work/restore_borg"

# --- report ---------------------------------------------------------------------------------
python3 - "$bytes" "$(secs cairn_backup)" "$(secs cairn_restore)" "$cairn_stored" \
  "$(secs restic_backup)" "$(secs restic_restore)" "$restic_stored" \
  "$(secs borg_backup)" "$(secs borg_restore)" "$borg_stored" "$work/cairn_backup.out" \
  "$(cat "$work/cairn_rss")" <<'EOF'
import json, sys
a = sys.argv[1:]
data = int(a[0])
rows = {"cairn": (float(a[1]), float(a[2]), int(a[3]), 2),
        "restic": (float(a[4]), float(a[5]), int(a[6]), 1),
        "borg": (float(a[7]), float(a[8]), int(a[9]), 1)}
cj = json.load(open(a[10]))
mb = lambda b, s: b / 1e6 / s
print(f"\ndataset: {data / 1e6:.1f} MB; cairn: {cj['files']} files, unique after dedup "
      f"{cj['new_bytes'] / 1e6:.1f} MB, sent {cj['sent_bytes'] / 1e6:.1f} MB")
print(f"cairn peak RSS:{a[11]}")
print(f"{'tool':8} {'backup MB/s':>12} {'restore MB/s':>13} {'stored MB':>10} {'copies':>7} "
      f"{'stored/copy':>12} {'backup s':>9} {'restore s':>10}")
for tool, (b, r, st, cp) in rows.items():
    print(f"{tool:8} {mb(data, b):12.1f} {mb(data, r):13.1f} {st / 1e6:10.1f} {cp:7d} "
          f"{st / cp / 1e6:12.1f} {b:9.2f} {r:10.2f}")
c = rows["cairn"]
for other in ("restic", "borg"):
    o = rows[other]
    print(f"cairn/{other:6}  backup speed {o[0] / c[0]:.2f}x   restore speed {o[1] / c[1]:.2f}x   "
          f"stored per copy {(c[2] / c[3]) / (o[2] / o[3]):.2f}x   stored total {c[2] / o[2]:.2f}x")
print("(speed ratio > 1: cairn faster; stored ratio < 1: cairn stores less. cairn keeps 2 copies "
      "on other peers, restic and borg 1 local copy.)")
EOF
echo "e2e: all three restores identical to the dataset" >&2
