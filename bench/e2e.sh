#!/usr/bin/env bash
# End-to-end benchmark: cairn vs restic vs borg on the same dataset, in one run.
#
# The dataset is either generated (default: SIZE bytes of mixed data, bench/gen_dataset.py:
# text-like, random and repeated content in many files) or, with --real, a copy of real system
# directories (default /usr/include /usr/share /usr/lib/x86_64-linux-gnu: ~70k files, ~2 GB of
# headers, docs, locales, shared libraries; --real-dirs "D1 D2 ..." to choose). Then for each
# tool it times a backup, a no-change re-backup and a full restore, checks that the restore
# equals the dataset (scripts/treecmp.py), and measures what the tool stored:
#   cairn   4 local peers (scripts/local-cluster), `cairn backup --copies 2` from peer 1 and
#           `cairn restore`; stored = sum of the peers' used bytes (2 copies, compressed+encrypted)
#   restic  local repository (restic init; backup; restore), default compression
#   borg    local repository (borg init -e repokey; create; extract), default compression (lz4)
# Prints a table (MB = 10^6 bytes) and the cairn/restic and cairn/borg ratios.
# Not a test: nothing is asserted about speed. Page cache is warm for every tool alike, and each
# timed step starts after a `sync`, so that no tool pays for writing back the previous one's data.
# Each tool restores into a fresh ext4 file system of its own (with a journal, as most are; a
# loop device over a file in the work directory, direct I/O) when run as root, else into the
# work directory. An ext4 without a journal (as this machine's) does not reuse an inode
# within 60 s (6 min once its inode-table block is dirty again) of its deletion and scans past
# every such inode (fs/ext4/ialloc.c, recently_deleted): a restore after a mass delete (the
# previous run's cleanup, the previous tool's restore being removed) spent most of its time in
# that scan, 11 s or 30-36 s for the same restore, whichever tool restored.
#
# Usage: bench/e2e.sh [--size 1G] [--seed 1] [--real [--real-dirs "DIRS"]] [--workdir DIR]
#                     [--keep] [--only cairn]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=1G seed=1 workdir="" keep="" real="" only=""
real_dirs="/usr/include /usr/share /usr/lib/x86_64-linux-gnu"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --real) real=1; shift ;;
    --real-dirs) real=1; real_dirs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

if [[ -n "$real" ]]; then
  echo "e2e: copying real files ($real_dirs) to $data" >&2
  mkdir -p "$data"
  for d in $real_dirs; do
    # Regular files, directories and symlinks only (what every tool restores alike).
    (cd / && find "${d#/}" \( -type f -o -type d -o -type l \) -print0 |
      tar --null --no-recursion -T - -cf - 2>/dev/null) | tar -C "$data" -xf -
  done
else
  echo "e2e: generating $size dataset (seed $seed) in $data" >&2
  python3 bench/gen_dataset.py "$data" --size "$size" --seed "$seed"
fi
bytes="$(python3 -c '
import os, sys
print(sum(os.lstat(os.path.join(r, f)).st_size for r, _, fs in os.walk(sys.argv[1]) for f in fs))
' "$data")"
files="$(find "$data" -type f | wc -l)"
echo "e2e: dataset $((bytes / 1000000)) MB in $files files" >&2
sync
# step NAME CMD...: `timed` after a sync (the restore before wrote GBs that the kernel may still
# be writing back: without it the next tool's timing depended on the one before).
step() { sync; timed "$@"; }
# fresh_fs DIR: DIR becomes a new, empty ext4 file system (see the header); as root only.
loops=()
fresh_fs() {
  local dir="$1" img="$1.img" dev
  mkdir -p "$dir"
  [[ "$(id -u)" == 0 ]] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null ||
    return 0
  truncate -s $(((bytes * 3 / 2 >> 20) + 1024))M "$img"  # whole MiB: losetup wants sectors
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
  dev="$(losetup -f --show --direct-io=on "$img")"
  loops+=("$dev")
  mount "$dev" "$dir"
}
bench_unmount() {
  for dev in "${loops[@]}"; do
    umount "$dev" 2>/dev/null || true
    losetup -d "$dev" 2>/dev/null || true
  done
}

# --- cairn ----------------------------------------------------------------------------------
echo "e2e: cairn (4 local peers, --copies 2)" >&2
scripts/local-cluster start 4 "$work/cluster" --quota 100G >&2
home="$work/cluster/peer1"
step cairn_backup "$cairn" backup --dir "$home" "$data" --copies 2 --json
step cairn_rebackup "$cairn" backup --dir "$home" "$data" --copies 2 --json
fresh_fs "$work/restore_cairn"
step cairn_restore "$cairn" restore --dir "$home" latest --target "$work/restore_cairn" --json
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

if [[ -z "$only" ]]; then
# --- restic ---------------------------------------------------------------------------------
echo "e2e: restic $(restic version | awk '{print $2}')" >&2
export RESTIC_PASSWORD=cairn-bench RESTIC_REPOSITORY="$work/restic" RESTIC_CACHE_DIR="$work/restic-cache"
restic init -q >/dev/null
step restic_backup restic backup -q "$data"
step restic_rebackup restic backup -q "$data"
fresh_fs "$work/restore_restic"
step restic_restore restic restore -q latest --target "$work/restore_restic"
verify restic "$work/restore_restic$data"
restic_stored="$(du -sb "$work/restic" | cut -f1)"

# --- borg -----------------------------------------------------------------------------------
echo "e2e: $(borg --version)" >&2
export BORG_PASSPHRASE=cairn-bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR="$work/borg-home" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e repokey "$work/borg" >"$work/borg_init.log" 2>&1 || { cat "$work/borg_init.log" >&2; exit 1; }
# Archive the path relative to $work so that extract recreates data/ in its cwd.
(cd "$work" && step borg_backup borg create "$work/borg::bench" data)
(cd "$work" && step borg_rebackup borg create "$work/borg::bench2" data)
fresh_fs "$work/restore_borg"
(cd "$work/restore_borg" && step borg_restore borg extract "$work/borg::bench")
verify borg "$work/restore_borg/data"
borg_stored="$(du -sb "$work/borg" | cut -f1)"
fi

# --- report ---------------------------------------------------------------------------------
python3 - "$bytes" "$files" "$work/times" "$cairn_stored" "${restic_stored:-0}" \
  "${borg_stored:-0}" "$work/cairn_backup.out" "$(cat "$work/cairn_rss")" <<'EOF'
import json, sys
a = sys.argv[1:]
data, files = int(a[0]), int(a[1])
times = dict(l.rstrip("\n").split("\t") for l in open(a[2]) if l.strip())
stored = {"cairn": int(a[3]), "restic": int(a[4]), "borg": int(a[5])}
copies = {"cairn": 2, "restic": 1, "borg": 1}
cj = json.load(open(a[6]))
tools = [t for t in ("cairn", "restic", "borg") if f"{t}_backup" in times]
sec = lambda t, op: float(times[f"{t}_{op}"])
mb = lambda s: data / 1e6 / s
print(f"\ndataset: {data / 1e6:.1f} MB in {files} files; cairn: {cj['files']} files, unique after "
      f"dedup {cj['new_bytes'] / 1e6:.1f} MB, sent {cj['sent_bytes'] / 1e6:.1f} MB")
print(f"cairn peak RSS:{a[7]}")
print(f"{'tool':8} {'backup MB/s':>12} {'restore MB/s':>13} {'stored MB':>10} {'copies':>7} "
      f"{'backup s':>9} {'re-backup s':>12} {'restore s':>10}")
for t in tools:
    print(f"{t:8} {mb(sec(t, 'backup')):12.1f} {mb(sec(t, 'restore')):13.1f} "
          f"{stored[t] / 1e6:10.1f} {copies[t]:7d} {sec(t, 'backup'):9.2f} "
          f"{sec(t, 'rebackup'):12.2f} {sec(t, 'restore'):10.2f}")
for other in tools[1:]:
    print(f"cairn/{other:6}  backup speed {sec(other, 'backup') / sec('cairn', 'backup'):.2f}x   "
          f"re-backup speed {sec(other, 'rebackup') / sec('cairn', 'rebackup'):.2f}x   "
          f"restore speed {sec(other, 'restore') / sec('cairn', 'restore'):.2f}x   "
          f"stored per copy {(stored['cairn'] / 2) / max(stored[other], 1):.2f}x")
if len(tools) > 1:
    best = lambda op: min(sec(t, op) for t in tools[1:])
    print(f"cairn against the faster of {' and '.join(tools[1:])}: backup "
          f"{best('backup') / sec('cairn', 'backup'):.2f}x, re-backup "
          f"{best('rebackup') / sec('cairn', 'rebackup'):.2f}x, restore "
          f"{best('restore') / sec('cairn', 'restore'):.2f}x")
print("(speed ratio > 1: cairn faster; stored ratio < 1: cairn stores less. cairn keeps 2 copies "
      "on other peers, restic and borg 1 local copy.)")
EOF
echo "e2e: every restore identical to the dataset" >&2
