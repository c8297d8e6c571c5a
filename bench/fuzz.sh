#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (docs/security.md "Fuzzing") with clang, ASan and
# UBSan into build-fuzz/ (only the libraries they need), replays the checked-in crash inputs of
# tests/fuzz/regressions/, then fuzzes each target for the given time and prints per target:
# execs, exec/s, coverage (cov = edges, ft = features, from libFuzzer's final stats), corpus
# size and whether anything was found (crash, leak, timeout, out-of-memory). Exits 1 on a finding.
#
# Usage: bench/fuzz.sh [--time SECONDS] [--jobs N] [TARGET...]
#   --time S   fuzzing time per target (default 60)
#   --jobs N   targets run at once (default 1; the machine has 2 cores)
#   TARGET     e.g. blob segment (default: all of tests/fuzz/*_fuzzer.cc)
#   env BUILD_DIR overrides the build directory.
# The corpus a run grows is kept in BUILD_DIR/fuzz-corpus/TARGET and reused by the next run;
# findings land in BUILD_DIR/fuzz-artifacts/TARGET/ (replay one with BUILD_DIR/tests/fuzz/fuzz_TARGET FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

time_s=60
jobs=1
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in tests/fuzz/*_fuzzer.cc; do
    n=$(basename "$f" _fuzzer.cc)
    targets+=("$n")
  done
fi

build_dir="${BUILD_DIR:-build-fuzz}"
scripts/install-deps
start=$(date +%s)
if [[ ! -f "$build_dir/build.ninja" ]]; then
  # -O1 with line tables and assertions on: libFuzzer's usual trade of speed for build time.
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
    -DCAIRN_FUZZ=ON >/dev/null
fi
ninja -C "$build_dir" --quiet fuzzers
echo "fuzz: built in $(( $(date +%s) - start ))s"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
bin="$build_dir/tests/fuzz"
mkdir -p "$build_dir/fuzz-logs"

# run_one TARGET: replay regressions, fuzz, write the summary line to fuzz-logs/TARGET.summary.
run_one() {
  local t="$1" exe="$bin/fuzz_$1"
  local corpus="$build_dir/fuzz-corpus/$t" seeds="$build_dir/fuzz-seeds/$t"
  local artifacts="$build_dir/fuzz-artifacts/$t" log="$build_dir/fuzz-logs/$t.log"
  local regress="tests/fuzz/regressions/$t"
  mkdir -p "$corpus" "$artifacts"
  rm -rf "$seeds" && mkdir -p "$seeds"
  CAIRN_FUZZ_WRITE_SEEDS="$seeds" "$exe" 2>/dev/null
  local found="no" rc=0
  if [[ -d "$regress" ]] && compgen -G "$regress/*" >/dev/null; then
    if ! "$exe" "$regress"/* >"$build_dir/fuzz-logs/$t.replay.log" 2>&1; then
      found="REGRESSION (see $build_dir/fuzz-logs/$t.replay.log)"
    fi
  else
    regress=""
  fi
  "$exe" -max_total_time="$time_s" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds" ${regress:+"$regress"} >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]] || compgen -G "$artifacts/*" >/dev/null; then
    found="YES: $(ls "$artifacts" | head -3 | tr '\n' ' ')(log $log)"
  fi
  local execs eps cov ft
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  ft=$(grep -oE '^#[0-9]+.*ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  printf '%-14s %12s %8s %7s %7s %7s  %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
    "$(ls "$corpus" | wc -l)" "$found" >"$build_dir/fuzz-logs/$t.summary"
}

echo "fuzz: ${#targets[@]} targets, ${time_s}s each, $jobs at a time"
pids=()
for t in "${targets[@]}"; do
  [[ -x "$bin/fuzz_$t" ]] || { echo "fuzz: no target $t" >&2; exit 2; }
  run_one "$t" &
  pids+=($!)
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
done
wait
printf '%-14s %12s %8s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus found
status=0
for t in "${targets[@]}"; do
  cat "$build_dir/fuzz-logs/$t.summary"
  grep -q '  no$' "$build_dir/fuzz-logs/$t.summary" || status=1
done
echo "fuzz: done in $(( $(date +%s) - start ))s"
exit $status
