#!/usr/bin/env bash
# bench/parse.sh - time `sluice parse` / `sluice compile` on synthetic dbt projects.
#
# Usage:  bench/parse.sh [--dbt] [N ...]          (default N: 1000 5000 10000)
#
# For every N it generates two projects into bench/out/:
#   ours-N  bench/gen_project.py N               (sluice's own generator)
#   ref-N   /work/shared/bench/gen_project.py N  (the shared reference workload; $REF_GEN)
# then, on each project:
#   * wall time of `sluice parse` and `sluice compile` with hyperfine
#     (cold: target/ removed before every run; $RUNS runs after 1 warm-up, default 5)
#   * peak RSS of one cold run of each with /usr/bin/time -v
# and prints a table (also written to bench/out/results.md).
#
# --dbt  additionally runs `dbt parse --no-partial-parse` once, cold, on each ref-N project
#        from the venv $DBT_VENV (default /work/venv-dbt; create it with
#        /work/shared/bench/setup_venv.sh /work/venv-dbt) and prints dbt/sluice ratios.
#        dbt at 1,000 models takes ~25 s of CPU, ~80 s at 5,000, minutes at 10,000.
#
# Environment:
#   SLUICE_BIN     sluice binary (default ${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/release/sluice)
#   SLUICE_ARGS    extra arguments appended to every sluice command (default: none)
#   RUNS           hyperfine runs per measurement (default 5)
#   REF_GEN        reference generator (default /work/shared/bench/gen_project.py)
#   DBT_VENV       dbt virtualenv (default /work/venv-dbt)
# Projects are run from their own directory with DBT_PROFILES_DIR=. DBT_TARGET=duckdb and
# DUCKDB_PATH pointing at a scratch file under bench/out/.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/out"
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/release/sluice}
SLUICE_ARGS=${SLUICE_ARGS:-}
RUNS=${RUNS:-5}
REF_GEN=${REF_GEN:-/work/shared/bench/gen_project.py}
DBT_VENV=${DBT_VENV:-/work/venv-dbt}

WITH_DBT=0
SIZES=()
for arg in "$@"; do
  case "$arg" in
    --dbt) WITH_DBT=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "parse.sh: not a model count: $arg" >&2; exit 2 ;;
    *) SIZES+=("$arg") ;;
  esac
done
[[ ${#SIZES[@]} -eq 0 ]] && SIZES=(1000 5000 10000)

# ---------------------------------------------------------------- tools
if ! command -v hyperfine >/dev/null 2>&1; then
  [[ -x $HOME/.cargo/bin/hyperfine ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v hyperfine >/dev/null 2>&1; then
  echo ">> installing hyperfine (cargo install, CARGO_TARGET_DIR=/tmp/hf-target)" >&2
  # hyperfine 2.x needs a newer rustc than some toolchains here; fall back to 1.20.
  CARGO_TARGET_DIR=/tmp/hf-target cargo install hyperfine --locked \
    || CARGO_TARGET_DIR=/tmp/hf-target cargo install hyperfine --version 1.20.0 --locked \
    || { echo "parse.sh: could not install hyperfine" >&2; exit 1; }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if [[ ! -x /usr/bin/time ]]; then
  echo ">> installing GNU time (apt-get install time)" >&2
  { apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }; } \
    || { echo "parse.sh: could not install /usr/bin/time" >&2; exit 1; }
fi
if [[ ! -x "$SLUICE_BIN" ]]; then
  echo "parse.sh: no sluice binary at $SLUICE_BIN (build with 'cargo build --release' or set SLUICE_BIN)" >&2
  exit 1
fi
if [[ $WITH_DBT == 1 && ! -x "$DBT_VENV/bin/dbt" ]]; then
  echo "parse.sh: --dbt given but $DBT_VENV/bin/dbt is missing (run /work/shared/bench/setup_venv.sh $DBT_VENV)" >&2
  exit 1
fi

mkdir -p "$OUT"
export DBT_TARGET=duckdb DBT_PROFILES_DIR=. DUCKDB_PATH="$OUT/scratch.duckdb"
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false

# hyperfine mean±stddev of one command in one project dir -> "12.34 ± 0.56" (seconds) or FAIL
hf() {  # hf DIR NAME CMD
  local dir=$1 name=$2 cmd=$3 json="$OUT/hf-$2.json"
  if (cd "$dir" && hyperfine -N --style basic --warmup 1 --runs "$RUNS" \
        --prepare 'rm -rf target' --export-json "$json" "$cmd" >"$OUT/hf-$name.log" 2>&1); then
    python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{r['mean']:.3f} ± {r['stddev'] or 0:.3f}")
PY
  else
    echo FAIL
  fi
}

# one cold run under /usr/bin/time -v -> "wall_s cpu_s rss_mb" (or "FAIL FAIL FAIL")
timev() {  # timev DIR NAME CMD...
  local dir=$1 name=$2; shift 2
  local tf="$OUT/time-$name.txt"
  if (cd "$dir" && rm -rf target && /usr/bin/time -v -o "$tf" "$@" >"$OUT/run-$name.log" 2>&1); then
    python3 - "$tf" <<'PY'
import sys
v = {}
for line in open(sys.argv[1]):
    k, _, val = line.strip().rpartition(": ")
    v[k] = val
w = v["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(w)))
cpu = float(v["User time (seconds)"]) + float(v["System time (seconds)"])
print(f"{wall:.2f} {cpu:.2f} {int(v['Maximum resident set size (kbytes)']) / 1024:.0f}")
PY
  else
    echo "FAIL FAIL FAIL"
  fi
}

ROWS=()
DBT_ROWS=()
for n in "${SIZES[@]}"; do
  echo ">> generating projects for N=$n" >&2
  python3 "$HERE/gen_project.py" "$n" "$OUT/ours-$n" >&2 || exit 1
  python3 "$REF_GEN" "$n" "$OUT/ref-$n" >&2 || exit 1
  for kind in ours ref; do
    dir="$OUT/$kind-$n"
    echo ">> sluice on $kind-$n" >&2
    p=$(hf "$dir" "parse-$kind-$n" "$SLUICE_BIN parse $SLUICE_ARGS")
    c=$(hf "$dir" "compile-$kind-$n" "$SLUICE_BIN compile $SLUICE_ARGS")
    read -r _ _ prss <<<"$(timev "$dir" "parse-$kind-$n" "$SLUICE_BIN" parse $SLUICE_ARGS)"
    read -r _ _ crss <<<"$(timev "$dir" "compile-$kind-$n" "$SLUICE_BIN" compile $SLUICE_ARGS)"
    ROWS+=("| $n | $kind | $p | $c | $prss | $crss |")
  done
  if [[ $WITH_DBT == 1 ]]; then
    echo ">> dbt parse --no-partial-parse on ref-$n (slow)" >&2
    read -r dwall dcpu drss <<<"$(timev "$OUT/ref-$n" "dbt-parse-ref-$n" "$DBT_VENV/bin/dbt" parse --no-partial-parse)"
    smean=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' \
              "$OUT/hf-parse-ref-$n.json" 2>/dev/null || echo "")
    ratio=$(python3 -c 'import sys
try: print(f"{float(sys.argv[1]) / float(sys.argv[2]):.1f}x")
except Exception: print("n/a")' "$dwall" "$smean")
    DBT_ROWS+=("| $n | $dwall | $dcpu | $drss | ${smean:-n/a} | $ratio |")
  fi
done

{
  echo "sluice: $SLUICE_BIN ($("$SLUICE_BIN" --version 2>/dev/null || echo '?')); runs=$RUNS; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| N | project | parse wall s (mean ± sd) | compile wall s (mean ± sd) | parse peak RSS MB | compile peak RSS MB |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [[ $WITH_DBT == 1 ]]; then
    echo
    echo "dbt-core $("$DBT_VENV/bin/dbt" --version 2>/dev/null | grep -m1 'installed:' | sed 's/.*installed: *//') (dbt parse --no-partial-parse, cold, 1 run, ref project)"
    echo
    echo "| N | dbt parse wall s | dbt CPU s (user+sys) | dbt peak RSS MB | sluice parse wall s | dbt/sluice wall |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${DBT_ROWS[@]}"
  fi
} | tee "$OUT/results.md"
