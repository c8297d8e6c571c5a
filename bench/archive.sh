#!/usr/bin/env bash
# Archive benchmark: sequential write and read through a mounted archive (`cairn mount
# --archive`, docs/operations.md "Archives: files that live only on the peers") against `cp`
# into and out of a plain directory, and against reading the same data back by `cairn restore`.
#
# 4 local peers (scripts/local-cluster), archive `--copies 2`; one file of SIZE (default 512M,
# random, from --seed) in a plain directory on the same file system. In one run:
#   1. cp FILE into a plain directory (+ sync)              "plain write"
#   2. cp FILE into the mounted archive (closing it stores it on the peers and commits)
#                                                            "archive write"
#   3. cp the plain copy out to /dev/null (page cache dropped first when root)   "plain read"
#   4. unmount, remount (a cold chunk cache), cp the archived file to /dev/null  "archive read"
#   5. `cairn restore` of that file from the archive's latest version             "restore"
# Prints seconds and MB/s (MB = 10^6 bytes) for each, and the ratios archive/plain and
# archive read/restore. Not a test: nothing is asserted about speed.
#
# Usage: bench/archive.sh [--size 512M] [--seed 1] [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=512M seed=1 workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "archive: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=archive
mnt=""
mount_pid=""
bench_unmount() {
  if [[ -n "$mount_pid" ]] && kill -0 "$mount_pid" 2>/dev/null; then
    kill -INT "$mount_pid" 2>/dev/null || true
    wait "$mount_pid" 2>/dev/null || true
  fi
  if [[ -n "$mnt" ]] && mountpoint -q "$mnt"; then fusermount3 -u -z "$mnt" || true; fi
}
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init

bytes=$(python3 -c 'import sys
s=sys.argv[1].upper(); m={"K":1<<10,"M":1<<20,"G":1<<30}
print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(s))' "$size")
echo "archive: generating $bytes bytes (seed $seed)" >&2
mkdir -p "$work/src" "$work/plain" "$work/restore"
python3 - "$work/src/file.bin" "$bytes" "$seed" <<'EOF'
import random, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(path, "wb") as f:
    left = n
    while left:
        k = min(left, 8 << 20)
        f.write(rng.randbytes(k))
        left -= k
EOF
sync

scripts/local-cluster start 4 "$work/cluster" --quota 100G >&2
home="$work/cluster/peer1"
"$cairn" archive create --dir "$home" bench --copies 2 >&2
mnt="$work/mnt"
mkdir -p "$mnt"

drop_caches() { [[ $(id -u) -eq 0 ]] && { sync; echo 3 >/proc/sys/vm/drop_caches; } || true; }
mount_archive() {
  "$cairn" mount --dir "$home" --archive bench "$mnt" 2>>"$work/mount.log" &
  mount_pid=$!
  for _ in $(seq 1 300); do mountpoint -q "$mnt" && return 0; sleep 0.1; done
  echo "archive: the mount did not appear" >&2
  cat "$work/mount.log" >&2
  exit 1
}
unmount_archive() {
  kill -INT "$mount_pid"
  wait "$mount_pid"
  mount_pid=""
}

mount_archive
drop_caches
timed plain_write sh -c "cp '$work/src/file.bin' '$work/plain/' && sync '$work/plain/file.bin'"
drop_caches
timed archive_write cp "$work/src/file.bin" "$mnt/"
drop_caches
timed plain_read cp "$work/plain/file.bin" /dev/null
unmount_archive
mount_archive
drop_caches
timed archive_read cp "$mnt/file.bin" /dev/null
cmp "$work/src/file.bin" "$mnt/file.bin" || { echo "archive: read back differs" >&2; exit 1; }
unmount_archive
timed restore "$cairn" restore --dir "$home" "$("$cairn" archive list --dir "$home" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["latest"])'):/file.bin" \
  --target "$work/restore"
cmp "$work/src/file.bin" "$work/restore/file.bin" || { echo "archive: restore differs" >&2; exit 1; }

python3 - "$work" "$bytes" <<'EOF'
import sys
work, n = sys.argv[1], int(sys.argv[2])
t = {k: float(v) for k, v in (l.rstrip("\n").split("\t") for l in open(f"{work}/times"))}
mbs = lambda k: n / 1e6 / t[k]
print(f"\n{n / 1e6:.0f} MB, one file; 4 local peers, archive --copies 2; MB/s = 10^6 bytes/s")
for k, label in [("plain_write", "cp into a plain directory"),
                 ("archive_write", "cp into the archive"),
                 ("plain_read", "cp out of the plain directory"),
                 ("archive_read", "cp out of the archive (cold)"),
                 ("restore", "cairn restore from the archive")]:
    print(f"  {label:34} {t[k]:8.2f} s {mbs(k):9.1f} MB/s")
print(f"  archive write / plain write: {t['plain_write'] / t['archive_write']:.2f}x")
print(f"  archive read / plain read:   {t['plain_read'] / t['archive_read']:.2f}x")
print(f"  archive read / restore:      {t['restore'] / t['archive_read']:.2f}x")
EOF
