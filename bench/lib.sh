# Shared by the bench/*.sh scripts (sourced, not run): building cairn, the work directory and
# its cleanup, timing commands.
# The script sets before bench_init: repo (the checkout, also the current directory), bench (its
# name, for messages and the work directory), workdir ("" = a new temporary directory), keep
# (non-empty: keep the work directory at the end).

# bench_init [--bench]: builds cairn unless CAIRN_BIN is set and sets $cairn; installs the
# packages (--bench: restic and borg too); makes $work (and an empty $work/times); on exit stops
# the local cluster in $work/cluster and removes $work unless --keep.
bench_init() {
  if [[ -z "${CAIRN_BIN:-}" ]]; then
    echo "$bench: building cairn (scripts/build cairn)" >&2
    scripts/build cairn
    export CAIRN_BIN="$repo/build/cmd/cairn/cairn"
  fi
  cairn="$CAIRN_BIN"
  scripts/install-deps "$@"
  if [[ -n "$workdir" ]]; then
    mkdir -p "$workdir"
    work="$(cd "$workdir" && pwd)"
  else
    work="$(mktemp -d "${TMPDIR:-/var/tmp}/cairn-$bench.XXXXXX")"
  fi
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  : >"$work/times"
}

bench_cleanup() {
  local rc=$?
  scripts/local-cluster stop "$work/cluster" >/dev/null 2>&1 || true
  # A script's own file systems mounted in $work (bench/e2e.sh) go before $work does.
  if declare -F bench_unmount >/dev/null; then bench_unmount; fi
  if [[ -n "$keep" ]]; then echo "$bench: kept $work" >&2; else rm -rf "$work"; fi
  exit $rc
}

now() { date +%s.%N; }

# elapsed T0 T1: seconds between two `now` values, 3 decimals.
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

# timed NAME CMD...: runs CMD (stdout to $work/NAME.out, stderr to $work/NAME.err), appends
# "NAME<TAB>seconds" to $work/times and prints it on stderr; any non-zero exit (also 3,
# degraded) fails the benchmark loudly.
timed() {
  local name="$1" t0 t1
  shift
  t0=$(now)
  if ! "$@" >"$work/$name.out" 2>"$work/$name.err"; then
    echo "$bench: $name failed: $*" >&2
    tail -n 30 "$work/$name.out" "$work/$name.err" >&2
    exit 1
  fi
  t1=$(now)
  printf '%s\t%s\n' "$name" "$(elapsed "$t0" "$t1")" >>"$work/times"
  echo "$bench: $name $(secs "$name") s" >&2
}

# secs NAME: the seconds `timed NAME` recorded.
secs() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$work/times"; }
