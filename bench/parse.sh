#!/usr/bin/env bash
# bench/parse.sh - time `sluice parse` / `sluice compile` on synthetic dbt projects.
#
# Usage:  bench/parse.sh [--dbt] [N ...]          (default N: 1000 5000 10000)
#
# For every N it generates two projects into bench/out/:
#   ours-N  bench/gen_project.py N               (sluice's own generator)
#   ref-N   /work/shared/bench/gen_project.py N  (the shared reference workload; $REF_GEN)
# then, on each project:
#   * wall time of `sluice parse` and `sluice compile` with hyperfine, cold: no target/
#     before every run ($RUNS runs after 1 warm-up, default 5), and of a warm `compile`
#     (target/ from the previous run present, the everyday case)
#     Cold runs move target/ aside into bench/out/trash/ instead of deleting it, and the
#     trash is deleted when the script ends: right after tens of thousands of files are
#     deleted, ext4 skips their recently freed inodes when allocating new ones (for 60 s,
#     or 5 more minutes while the inode table is dirty; `recently_deleted()` in
#     fs/ext4/ialloc.c), which made `rm -rf target && sluice compile` at 10,000 models
#     spend 60-80% of its time in the kernel's inode search. A fresh clone never pays it.
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
. "$(dirname "$0")/lib.sh"

bench_args "model count" "--dbt" "$@"
SIZES=("${COUNTS[@]}")
[[ ${#SIZES[@]} -eq 0 ]] && SIZES=(1000 5000 10000)

need_hyperfine
need_time
need_sluice
[[ $WITH_DBT == 1 ]] && need_dbt
TRASH="$OUT/trash"
mkdir -p "$TRASH"
at_exit "rm -rf '$TRASH'"
# `sync` before every run: the previous run's tens of thousands of files and
# its manifest are still being written back by the kernel's flusher, which on
# 2 cores takes CPU from the run being timed (a cold compile measured 2.7-3.0 s
# with it, 4.5-5.3 s without). Each run is timed on its own, as a user runs it.
COLD="sh -c 'if [ -d target ]; then mv target $TRASH/t.\$\$; fi; sync'"
WARM="sync"
export DBT_TARGET=duckdb DBT_PROFILES_DIR=. DUCKDB_PATH="$OUT/scratch.duckdb"

ROWS=()
DBT_ROWS=()
for n in "${SIZES[@]}"; do
  echo ">> generating projects for N=$n" >&2
  python3 "$HERE/gen_project.py" "$n" "$OUT/ours-$n" >&2 || exit 1
  python3 "$REF_GEN" "$n" "$OUT/ref-$n" >&2 || exit 1
  for kind in ours ref; do
    dir="$OUT/$kind-$n"
    echo ">> sluice on $kind-$n" >&2
    p=$(hf "$dir" "parse-$kind-$n" "$SLUICE_BIN parse $SLUICE_ARGS" "$COLD")
    c=$(hf "$dir" "compile-$kind-$n" "$SLUICE_BIN compile $SLUICE_ARGS" "$COLD")
    w=$(hf "$dir" "compile-warm-$kind-$n" "$SLUICE_BIN compile $SLUICE_ARGS" "$WARM")
    [[ -d $dir/target ]] && mv "$dir/target" "$TRASH/t.$kind-$n-p"
    read -r _ _ prss <<<"$(timev "$dir" "parse-$kind-$n" "$SLUICE_BIN" parse $SLUICE_ARGS)"
    [[ -d $dir/target ]] && mv "$dir/target" "$TRASH/t.$kind-$n-c"
    read -r _ _ crss <<<"$(timev "$dir" "compile-$kind-$n" "$SLUICE_BIN" compile $SLUICE_ARGS)"
    ROWS+=("| $n | $kind | $p | $c | $w | $prss | $crss |")
  done
  if [[ $WITH_DBT == 1 ]]; then
    echo ">> dbt parse --no-partial-parse on ref-$n (slow)" >&2
    [[ -d $OUT/ref-$n/target ]] && mv "$OUT/ref-$n/target" "$TRASH/t.dbt-$n"
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
  echo "| N | project | parse wall s (mean ± sd) | compile wall s, cold (mean ± sd) | compile wall s, warm | parse peak RSS MB | compile peak RSS MB |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [[ $WITH_DBT == 1 ]]; then
    echo
    echo "dbt-core $(dbt_version) (dbt parse --no-partial-parse, cold, 1 run, ref project)"
    echo
    echo "| N | dbt parse wall s | dbt CPU s (user+sys) | dbt peak RSS MB | sluice parse wall s | dbt/sluice wall |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${DBT_ROWS[@]}"
  fi
} | tee "$OUT/results.md"
