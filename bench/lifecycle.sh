#!/usr/bin/env bash
# Space and lifecycle figures: forget + garbage collection, and reclaim (evacuation).
#
# Generates SIZE bytes of mixed data (bench/gen_dataset.py) and starts a local cluster of PEERS
# peers (scripts/local-cluster; 2 copies). Backs up the dataset (v1), replaces about a third of
# its files by new random ones, backs up again (v2), then:
#   - `cairn forget v1`: time, chunks dropped, blob deletions delivered, bytes freed on the peers
#     (sum of the peers' `used` before and after);
#   - `cairn reclaim 0` on the storage peer holding the most: time, blobs and MB moved, MB/s;
#   - `cairn check` must exit 0 and a restore of v2 must equal the data (scripts/treecmp.py).
# Prints the figures. Not a test: nothing is asserted about speed.
#
# Usage: bench/lifecycle.sh [--size 256M] [--seed 1] [--peers 6] [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=256M seed=1 peers=6 workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "lifecycle: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=lifecycle
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init

data="$work/data"
used_total() {
  local i used total=0
  for ((i = 1; i <= peers; i++)); do
    used="$("$cairn" status --dir "$work/cluster/peer$i" --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])')"
    total=$((total + used))
  done
  echo "$total"
}

echo "lifecycle: generating $size dataset (seed $seed) in $data" >&2
python3 bench/gen_dataset.py "$data" --size "$size" --seed "$seed"
scripts/local-cluster start "$peers" "$work/cluster" --quota 100G --no-multicast --scrub off >&2
home="$work/cluster/peer1"

"$cairn" backup --dir "$home" "$data" --copies 2 --json >"$work/v1.json"
python3 - "$data" "$seed" <<'PY'
import os, random, sys
root, rng = sys.argv[1], random.Random(int(sys.argv[2]) + 1)
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs)
for path in rng.sample(files, len(files) // 3):
    size = os.path.getsize(path)
    os.remove(path)
    with open(path + ".v2", "wb") as f:
        f.write(rng.randbytes(size))
PY
"$cairn" backup --dir "$home" "$data" --copies 2 --json >"$work/v2.json"
v1="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshot_id"])' "$work/v1.json")"
before="$(used_total)"
t0=$(now)
"$cairn" forget --dir "$home" "$v1" --json >"$work/forget.json"
t1=$(now)
after="$(used_total)"
forget_s="$(elapsed "$t0" "$t1")"

victim="$(for ((i = 2; i <= peers; i++)); do
  echo "$i $("$cairn" status --dir "$work/cluster/peer$i" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["used"])')"
done | sort -k2 -n -r | head -1 | cut -d' ' -f1)"
t0=$(now)
"$cairn" reclaim --dir "$work/cluster/peer$victim" 0 --json >"$work/reclaim.json"
t1=$(now)
reclaim_s="$(elapsed "$t0" "$t1")"

check_rc=0
for _ in $(seq 1 60); do
  check_rc=0
  "$cairn" check --dir "$home" --json >"$work/check.json" || check_rc=$?
  [[ $check_rc -eq 0 ]] && break
  sleep 1
done
"$cairn" restore --dir "$home" latest --target "$work/restore" --json >/dev/null
python3 scripts/treecmp.py "$data" "$work/restore/data" >"$work/cmp.out" 2>&1 ||
  { cat "$work/cmp.out" >&2; echo "lifecycle: restore differs" >&2; exit 1; }

python3 - "$work" "$before" "$after" "$forget_s" "$reclaim_s" "$victim" "$check_rc" <<'PY'
import json, sys
work, before, after, fs, rs, victim, check_rc = sys.argv[1:8]
before, after, fs, rs = int(before), int(after), float(fs), float(rs)
f = json.load(open(f"{work}/forget.json"))
r = json.load(open(f"{work}/reclaim.json"))
v2 = json.load(open(f"{work}/v2.json"))
gc, d = f["gc"], f["deletions"]
print(f"\ndataset v2: {v2['bytes'] / 1e6:.1f} MB, {v2['files']} files")
print(f"forget v1 + GC:  {fs:.2f} s; {gc['referenced_chunks']} chunks kept, "
      f"{gc['unreferenced_chunks']} dropped; {d['delivered']} blob deletions delivered "
      f"({d['delivered'] / fs:.0f}/s); peers' used {before / 1e6:.1f} -> {after / 1e6:.1f} MB "
      f"({(before - after) / 1e6:.1f} MB freed)")
print(f"reclaim 0 (peer {victim}): {rs:.2f} s; {r['moved_blobs']} blobs, "
      f"{r['moved_bytes'] / 1e6:.1f} MB moved ({r['moved_bytes'] / 1e6 / rs:.1f} MB/s), "
      f"{r['evicted_blobs']} extra copies evicted")
print(f"check after reclaim: exit {check_rc}; restore of v2 identical")
PY
