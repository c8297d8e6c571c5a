#!/usr/bin/env bash
# Off-site bucket benchmark: the same data backed up, in one run, through
#   (a) 4 local peers that all keep their blobs on disk, and
#   (b) 3 disk peers and 1 bucket peer whose sealed segments go to s3rver (an S3 emulator from
#       npm) on 127.0.0.1 (docs/operations.md "An off-site copy in S3-compatible storage"),
# each with `cairn backup --copies 2` from peer 1 (plus `--offsite 1` in (b) when this cairn
# offers it), then a full `cairn restore` that must equal the data (scripts/treecmp.py).
# Prints backup and restore MB/s of both clusters and their ratio, how long the bucket peer
# took to upload what it sealed, and the S3 requests (by kind) and bytes the bucket peer sent,
# per GB of backed-up data and per GB uploaded (its `cairn status --json` "bucket" object,
# docs/operations.md "Requests and costs"); the restore's S3 requests separately.
# Not a test: nothing is asserted about speed (s3rver on the same machine is no real bucket; the
# request counts are what carries over).
#
# The dataset is bench/gen_dataset.py's (text-like, random and repeated content in many files).
# Sealed segments are uploaded within a second of sealing; the open segment stays on the
# bucket peer's disk, so with --segment-size larger than what the peer receives nothing is
# uploaded (the default is the peer's default, 64M).
#
# Usage: bench/bucket.sh [--size 256M] [--seed 1] [--segment-size 64M] [--workdir DIR] [--keep]
#   env CAIRN_BIN: use this binary instead of building build/cmd/cairn/cairn
#   env CAIRN_S3RVER_DIR: where s3rver is (installed with npm on first use; default
#       build/s3rver-cache, shared with the s3rver tests)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

size=256M seed=1 segment_size="" workdir="" keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --segment-size) segment_size="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bucket: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench=bucket
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_init

bucket_name=cairn-bench
s3rver_dir="${CAIRN_S3RVER_DIR:-$repo/build/s3rver-cache}"
s3rver_js="$s3rver_dir/node_modules/s3rver/bin/s3rver.js"
s3rver_pid=""
stop_s3rver() {
  if [[ -n "$s3rver_pid" ]]; then
    kill -TERM "$s3rver_pid" 2>/dev/null || true
    wait "$s3rver_pid" 2>/dev/null || true
    s3rver_pid=""
  fi
}
# The peers first (bench_cleanup), then the server they upload to.
trap 'rc=$?; scripts/local-cluster stop "$work/cluster" >/dev/null 2>&1 || true; stop_s3rver; (exit $rc); bench_cleanup' EXIT

if [[ ! -f "$s3rver_js" ]]; then
  command -v npm >/dev/null && command -v node >/dev/null ||
    { echo "bucket: needs node and npm (s3rver is an npm package)" >&2; exit 1; }
  echo "bucket: installing s3rver into $s3rver_dir" >&2
  mkdir -p "$s3rver_dir"
  npm install --no-audit --no-fund --silent --prefix "$s3rver_dir" s3rver@3.7.1 \
    >>"$s3rver_dir/npm.log" 2>&1 || { echo "bucket: npm install failed ($s3rver_dir/npm.log)" >&2; exit 1; }
fi

data="$work/data"
echo "bucket: generating $size dataset (seed $seed) in $data" >&2
python3 bench/gen_dataset.py "$data" --size "$size" --seed "$seed"
bytes="$(python3 -c '
import os, sys
print(sum(os.lstat(os.path.join(r, f)).st_size for r, _, fs in os.walk(sys.argv[1]) for f in fs))
' "$data")"
files="$(find "$data" -type f | wc -l)"
echo "bucket: dataset $((bytes / 1000000)) MB in $files files" >&2
sync

verify() {
  if ! python3 scripts/treecmp.py "$data" "$2" >"$work/cmp_$1.out" 2>&1; then
    cat "$work/cmp_$1.out" >&2
    echo "bucket: the restore of ($1) differs from the dataset" >&2
    exit 1
  fi
}

# --- (a) 4 disk peers ------------------------------------------------------------------------
echo "bucket: (a) 4 disk peers, --copies 2" >&2
scripts/local-cluster start 4 "$work/cluster" --quota 100G >&2
timed disk_backup "$cairn" backup --dir "$work/cluster/peer1" "$data" --copies 2 --json
timed disk_restore "$cairn" restore --dir "$work/cluster/peer1" latest --target "$work/restore_disk" --json
verify disk "$work/restore_disk/data"
scripts/local-cluster stop "$work/cluster" >&2
rm -rf "$work/restore_disk" "$work/cluster"

# --- (b) 3 disk peers + 1 bucket peer ----------------------------------------------------------
mkdir -p "$work/s3rver-data"
# s3rver 3.7 makes continuation tokens with DES: Node >= 17 has it in the legacy provider.
node --openssl-legacy-provider "$s3rver_js" -d "$work/s3rver-data" -a 127.0.0.1 -p 0 \
  --configure-bucket "$bucket_name" </dev/null >"$work/s3rver.out" 2>"$work/s3rver.log" &
s3rver_pid=$!
endpoint=""
for _ in $(seq 600); do
  endpoint="$(sed -n 's|.*listening on \(127\.0\.0\.1:[0-9]*\).*|http://\1|p' "$work/s3rver.out" | head -n1)"
  [[ -n "$endpoint" ]] && break
  kill -0 "$s3rver_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$endpoint" ]] || { cat "$work/s3rver.out" "$work/s3rver.log" >&2; echo "bucket: s3rver did not start" >&2; exit 1; }
echo "bucket: (b) 3 disk peers + 1 bucket peer on s3rver at $endpoint, --copies 2" >&2

scripts/local-cluster start 3 "$work/cluster" --quota 100G >&2
p4="$work/cluster/peer4"
creds="$work/s3-credentials"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$creds"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
seeds=()
for i in 1 2 3; do
  seeds+=(--seed "$(sed -n 's/^listen = "\(.*\)"/\1/p' "$work/cluster/peer$i/cairn.toml")")
done
"$cairn" init --dir "$p4" --peer-id 4 --host-id host4 --listen "127.0.0.1:$port" \
  --api 127.0.0.1:0 --quota 100G --copies 2 --ping-interval 500ms "${seeds[@]}" \
  --join "$("$cairn" cluster token --dir "$work/cluster/peer1")" \
  --storage "s3://$bucket_name/peer4" --s3-endpoint "$endpoint" --s3-credentials "$creds" >/dev/null
if [[ -n "$segment_size" ]]; then
  sed -i "s/^segment_size = .*/segment_size = \"$segment_size\"/" "$p4/cairn.toml"
fi
nohup "$cairn" peer --dir "$p4" </dev/null >"$p4/peer.log" 2>&1 &
echo $! >"$p4/pid"
# Every peer sees all 4 alive (the disk peers learn of peer 4 from its pings and announcements).
all_alive() {
  local i
  for i in 1 2 3 4; do
    "$cairn" peers --dir "$work/cluster/peer$i" --json 2>/dev/null | python3 -c '
import json, sys
peers = json.load(sys.stdin)
sys.exit(0 if len({p["peer_id"] for p in peers if p.get("self") or p.get("state") == "alive"}) >= 4 else 1)' ||
      return 1
  done
}
for _ in $(seq 600); do
  all_alive && break
  kill -0 "$(cat "$p4/pid")" 2>/dev/null || { tail -n 30 "$p4/peer.log" >&2; exit 1; }
  sleep 0.1
done
all_alive || { tail -n 30 "$p4/peer.log" >&2; echo "bucket: the 4 peers do not all see each other" >&2; exit 1; }

offsite=()
"$cairn" backup --help 2>/dev/null | grep -q -- '--offsite' && offsite=(--offsite 1)
bucket_json() { "$cairn" status --dir "$p4" --json; }
bucket_json >"$work/bucket_start.json"
t0=$(now)
timed bucket_backup "$cairn" backup --dir "$work/cluster/peer1" "$data" --copies 2 "${offsite[@]}" --json
# Uploaded: every sealed segment has left the bucket peer's disk (the open one stays).
for _ in $(seq 3000); do
  (($(find "$p4/segments" -maxdepth 1 -name '*.seg' | wc -l) <= 1)) && break
  sleep 0.1
done
t1=$(now)
printf '%s\t%s\n' bucket_settled "$(elapsed "$t0" "$t1")" >>"$work/times"
bucket_json >"$work/bucket_backup.json"
timed bucket_restore "$cairn" restore --dir "$work/cluster/peer1" latest --target "$work/restore_bucket" --json
verify bucket "$work/restore_bucket/data"
bucket_json >"$work/bucket_restore.json"
bucket_objects="$(find "$work/s3rver-data" -name '*._S3rver_object' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
scripts/local-cluster stop "$work/cluster" >&2
stop_s3rver

# --- report -----------------------------------------------------------------------------------
python3 - "$bytes" "$files" "$work/times" "$work/bucket_start.json" "$work/bucket_backup.json" \
  "$work/bucket_restore.json" "$bucket_objects" "${offsite[*]:-}" <<'EOF'
import json, sys
a = sys.argv[1:]
data, files = int(a[0]), int(a[1])
times = dict(l.rstrip("\n").split("\t") for l in open(a[2]) if l.strip())
start, after_backup, after_restore = (json.load(open(p)) for p in a[3:6])
in_bucket, offsite = int(a[6]), a[7]
sec = lambda n: float(times[n])
mbs = lambda n: data / 1e6 / sec(n)
gb = data / 1e9

def delta(later, earlier):
    b1, b0 = later["bucket"], earlier["bucket"]
    out = {k: b1[k] - b0[k] for k in ("requests_total", "retries", "failures", "errors_total",
                                      "bytes_sent", "bytes_received")}
    out["requests"] = {k: v - b0["requests"][k] for k, v in b1["requests"].items()}
    out["errors"] = {k: v - b0["errors"][k] for k, v in b1["errors"].items()}
    return out

def kinds(d):
    return ", ".join(f"{k} {v}" for k, v in d.items() if v) or "none"

up, down = delta(after_backup, start), delta(after_restore, after_backup)
print(f"\ndataset: {data / 1e6:.1f} MB in {files} files; cairn backup --copies 2"
      + (f" ({offsite} in (b))" if offsite else ""))
print(f"{'cluster':28} {'backup s':>9} {'backup MB/s':>12} {'restore s':>10} {'restore MB/s':>13}")
for name, label in (("disk", "(a) 4 disk peers"), ("bucket", "(b) 3 disk + 1 bucket peer")):
    print(f"{label:28} {sec(name + '_backup'):9.2f} {mbs(name + '_backup'):12.1f} "
          f"{sec(name + '_restore'):10.2f} {mbs(name + '_restore'):13.1f}")
print(f"ratio (b)/(a): backup {mbs('bucket_backup') / mbs('disk_backup'):.2f}, "
      f"restore {mbs('bucket_restore') / mbs('disk_restore'):.2f}")
print(f"(b) backup until the bucket peer had uploaded its sealed segments: "
      f"{sec('bucket_settled'):.2f} s ({data / 1e6 / sec('bucket_settled'):.1f} MB/s)")
b = after_backup["bucket"]
print(f"bucket peer {b['url']}: {after_backup['used'] / 1e6:.1f} MB held, "
      f"{in_bucket / 1e6:.1f} MB in the bucket")
print(f"backup: {up['requests_total']} S3 requests ({kinds(up['requests'])}), "
      f"{up['retries']} retries, {up['errors_total']} errors ({kinds(up['errors'])}), "
      f"{up['bytes_sent'] / 1e6:.1f} MB sent, {up['bytes_received'] / 1e6:.3f} MB received")
per_up = up['requests_total'] / (up['bytes_sent'] / 1e9) if up['bytes_sent'] else float('nan')
print(f"S3 requests per GB backed up: {up['requests_total'] / gb:.1f}; "
      f"per GB uploaded: {per_up:.1f}")
print(f"restore: {down['requests_total']} S3 requests ({kinds(down['requests'])}), "
      f"{down['bytes_received'] / 1e6:.1f} MB received; "
      f"{down['requests_total'] / gb:.1f} per GB restored")
EOF
