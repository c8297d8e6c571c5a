#!/usr/bin/env bash
# Incremental backup benchmark: cairn vs restic vs borg on the same 100k-file tree, in one run.
#
# Generates FILES small files (default 100000; sizes 100 B .. 4 KB, random content, 100 per
# directory, deterministic from --seed), then for each tool:
#   1. a first (full) backup,
#   2. an incremental backup with no change,
#   3. an incremental backup after 1% of the files were changed (new content and mtime; the
#      same files for every tool: all tools back up 1, then all 2, then the tree is changed
#      once and all back up 3),
# and for cairn also 4. `cairn backup --rehash` of the unchanged tree (reads everything).
#   cairn   4 local peers (scripts/local-cluster), `cairn backup --copies 2` from peer 1
#   restic  local repository, default settings (parent snapshot: mtime, ctime, size, inode)
#   borg    local repository (repokey), default files cache (ctime, size, inode)
# Prints seconds (wall clock of the command, CLI start-up and polling included) and files/s
# (FILES / seconds) for each tool and run, the ratios cairn/restic and cairn/borg (> 1: cairn
# faster), cairn's files read per run (from its JSON result), and the peak RSS of the cairn
# home peer during the full backup and during the incrementals (VmHWM, reset in between).
# Not a test: nothing is asserted about speed. Page cache is warm for every tool alike.
#
# Usage: bench/incremental.sh [--files 100000] [--seed 1] [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

files=100000 seed=1 workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "incremental: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=incremental
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init --bench

data="$work/data"

echo "incremental: generating $files files (seed $seed) in $data" >&2
python3 - "$data" "$files" "$seed" <<'EOF'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
total = 0
for i in range(n):
    d = os.path.join(root, f"d{i // 10000:02d}", f"s{(i // 100) % 100:02d}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randrange(100, 4000)
    path = os.path.join(d, f"f{i:06d}")
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))
    os.utime(path, ns=(1_600_000_000_000_000_000 + i * 1_000_000_000,) * 2)
    total += size
print(f"incremental: {n} files, {total} bytes", file=sys.stderr)
EOF
sync

# Changes 1% of the files (every 100th, offset by the seed): new content and a new mtime.
change_one_percent() {
  python3 - "$data" "$files" "$seed" <<'EOF'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed + 1)
changed = 0
for i in range(seed % 100, n, 100):
    path = os.path.join(root, f"d{i // 10000:02d}", f"s{(i // 100) % 100:02d}", f"f{i:06d}")
    with open(path, "wb") as f:
        f.write(rng.randbytes(rng.randrange(100, 4000)))
    os.utime(path, ns=(1_700_000_000_000_000_000 + i,) * 2)
    changed += 1
print(f"incremental: changed {changed} files", file=sys.stderr)
EOF
}

# --- set up the three tools -----------------------------------------------------------------
echo "incremental: cairn (4 local peers, --copies 2)" >&2
scripts/local-cluster start 4 "$work/cluster" --quota 100G >&2
home="$work/cluster/peer1"
home_pid="$(cat "$home/pid")"
hwm_mib() { echo $(($(awk '/^VmHWM:/ {print $2}' "/proc/$home_pid/status") / 1024)); }

echo "incremental: restic $(restic version | awk '{print $2}')" >&2
export RESTIC_PASSWORD=cairn-bench RESTIC_REPOSITORY="$work/restic" RESTIC_CACHE_DIR="$work/restic-cache"
restic init -q >/dev/null

echo "incremental: $(borg --version)" >&2
export BORG_PASSPHRASE=cairn-bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR="$work/borg-home" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e repokey "$work/borg" >"$work/borg_init.log" 2>&1 || { cat "$work/borg_init.log" >&2; exit 1; }

# backup_all RUN: one backup with each tool.
backup_all() {
  local run="$1"
  timed "cairn_$run" "$cairn" backup --dir "$home" "$data" --copies 2 --json
  timed "restic_$run" restic backup --json "$data"
  # Relative path from $work: the archive holds data/..., as the files cache keys by path.
  (cd "$work" && timed "borg_$run" borg create "$work/borg::$run" data)
}

backup_all full
rss_full="$(hwm_mib)"
echo 5 >"/proc/$home_pid/clear_refs" # resets VmHWM to the current RSS
backup_all nochange
change_one_percent
backup_all changed
timed cairn_rehash "$cairn" backup --dir "$home" "$data" --copies 2 --rehash --json
rss_incr="$(hwm_mib)"

# --- report ---------------------------------------------------------------------------------
python3 - "$work" "$files" "$rss_full" "$rss_incr" <<'EOF'
import json, sys
work, files, rss_full, rss_incr = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t = dict(line.rstrip("\n").split("\t") for line in open(f"{work}/times"))
t = {k: float(v) for k, v in t.items()}
def cairn_json(run):
    return json.load(open(f"{work}/cairn_{run}.out"))
def restic_summary(run):
    for line in open(f"{work}/restic_{run}.out"):
        j = json.loads(line)
        if j.get("message_type") == "summary":
            return j
    return {}
runs = [("full", "first backup"), ("nochange", "no change"), ("changed", "1% changed")]
print(f"\n{files} files; MB = 10^6 bytes; files/s = {files} / seconds")
print(f"{'run':12} {'tool':7} {'seconds':>8} {'files/s':>9} {'files read':>11} {'engine s':>9}")
for run, label in runs:
    cj, rs = cairn_json(run), restic_summary(run)
    read = {"cairn": str(cj["files_read"]),
            "restic": str(rs.get("files_new", 0) + rs.get("files_changed", 0)) if rs else "?",
            "borg": "-"}
    for tool in ("cairn", "restic", "borg"):
        s = t[f"{tool}_{run}"]
        engine = f"{cj['duration_seconds']:9.2f}" if tool == "cairn" else f"{'-':>9}"
        print(f"{label:12} {tool:7} {s:8.2f} {files / s:9.0f} {read[tool]:>11} {engine}")
rj = cairn_json("rehash")
print(f"{'rehash':12} {'cairn':7} {t['cairn_rehash']:8.2f} {files / t['cairn_rehash']:9.0f} "
      f"{rj['files_read']:>11} {rj['duration_seconds']:9.2f}   (--rehash, nothing changed: "
      f"{rj['files_unchanged']} unchanged by content)")
print("(restic's 'files read' = files new + changed from its summary; borg reports none)")
for run, label in runs:
    c = t[f"cairn_{run}"]
    print(f"{label:12} cairn/restic speed {t[f'restic_{run}'] / c:5.2f}x   "
          f"cairn/borg speed {t[f'borg_{run}'] / c:5.2f}x   (> 1: cairn faster)")
print(f"cairn home peer peak RSS: {rss_full} MiB during the first backup, "
      f"{rss_incr} MiB during the incrementals")
EOF
