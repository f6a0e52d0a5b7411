#!/usr/bin/env bash
# bench/run.sh - time `sluice seed` + `sluice run` (and dbt's) on the reference project, both engines.
#
# Usage:  bench/run.sh [--dbt] [--engine duckdb|postgres|both] [N]     (default N=1000, both engines)
#
# Generates bench/out/ref-N with /work/shared/bench/gen_project.py N ($REF_GEN), then for each
# engine (DuckDB file; PostgreSQL 15 in a throwaway cluster from pg_temp.sh, stopped on exit)
# and each tool, from an empty database (new DuckDB file / new PG database, no target/):
#   seed                  `sluice seed`            (dbt: `dbt seed`)
#   run                   `sluice run --threads 4` (dbt: `dbt run --threads 4`), right after the seed
# each once under /usr/bin/time -v: wall, user+sys CPU of the tool's process, peak RSS.
# From the run's target/run_results.json (+ manifest.json): per-model tool overhead, see
# bench/README.md ("run.sh") for the definitions:
#   serial ms/model  (run wall - time during which any model was executing) / models
#   CPU ms/model     the tool process's user+sys / models (PostgreSQL: all of it is tool time,
#                    the server is another process; DuckDB runs in-process, so there it also
#                    counts the engine's work and is only an upper bound)
# --dbt  also runs dbt-core from $DBT_VENV in the same sitting and prints dbt/sluice ratios.
#        dbt at 1,000 models: ~1-2 min per command.
#
# Environment:
#   SLUICE_BIN   sluice binary (default ${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/release/sluice)
#   SLUICE_ARGS  extra arguments for every sluice command
#   THREADS      --threads for run (default 4; seeds use the profile's, DBT_THREADS=4)
#   REF_GEN, DBT_VENV, PG_BIN, SHARED_BENCH  see bench/lib.sh
# Results are appended to bench/out/run-results.md; logs, time -v output and copies of
# run_results.json are kept in bench/out/ (run-*.log, time-*.txt, rr-*.json).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

THREADS=${THREADS:-4}
bench_args "model count" "--dbt --engine" "$@"
N=${COUNT:-1000}
case "$ENGINE" in
  duckdb) ENGINES=(duckdb) ;;
  postgres) ENGINES=(postgres) ;;
  both) ENGINES=(duckdb postgres) ;;
  *) die "--engine takes duckdb, postgres or both, not '$ENGINE'" ;;
esac
TOOLS=(sluice)
[[ $WITH_DBT == 1 ]] && TOOLS+=(dbt)

need_time
need_sluice
[[ $WITH_DBT == 1 ]] && need_dbt

gen_ref_project "$N"
[[ " ${ENGINES[*]} " == *" postgres "* ]] && pg_up

export DBT_PROFILES_DIR=. DBT_THREADS=4

tool_cmd() {  # tool_cmd TOOL SUBCOMMAND ARGS...: sets the array CMD to the command line
  local tool=$1; shift
  if [[ $tool == sluice ]]; then CMD=("$SLUICE_BIN" "$@" $SLUICE_ARGS)
  else CMD=("$DBT_VENV/bin/dbt" "$@"); fi
}

ROWS=()
declare -A RUNWALL SEEDWALL RUNCPU
for engine in "${ENGINES[@]}"; do
  export DBT_TARGET=$engine
  for tool in "${TOOLS[@]}"; do
    tag="$tool-$engine-$N"
    if [[ $engine == duckdb ]]; then
      export DUCKDB_PATH="$OUT/run-$tag.duckdb"
      rm -f "$DUCKDB_PATH" "$DUCKDB_PATH.wal"
    else
      export PGDATABASE="bench_$tool"
      pg_fresh_db "$PGDATABASE"
    fi
    rm -rf "$DIR/target" "$DIR/logs"
    say "$tool seed on $engine (N=$N)"
    tool_cmd "$tool" seed
    read -r swall _ _ <<<"$(timev "$DIR" "$tool-seed-$engine-$N" "${CMD[@]}")"
    cp "$DIR/target/run_results.json" "$OUT/rr-$tool-seed-$engine-$N.json" 2>/dev/null
    say "$tool run --threads $THREADS on $engine (N=$N)"
    tool_cmd "$tool" run --threads "$THREADS"
    read -r rwall rcpu rrss <<<"$(timev "$DIR" "$tool-run-$engine-$N" "${CMD[@]}")"
    rr="$OUT/rr-$tool-run-$engine-$N.json"
    cp "$DIR/target/run_results.json" "$rr" 2>/dev/null || echo '{"results": []}' >"$rr"
    read -r nodes ok sumx busy crit <<<"$(python3 "$HERE/run_results_stats.py" "$rr" "$DIR/target/manifest.json")"
    serial=$(calc "f'{($rwall - $busy) * 1000 / $nodes:.2f}'")
    cpuper=$(calc "f'{$rcpu * 1000 / $nodes:.2f}'")
    [[ $engine == duckdb ]] && cpuper="$cpuper (incl. engine)"
    [[ $rwall == FAIL || $ok != "$nodes" ]] && say "WARNING: $tool run on $engine: $ok of $nodes nodes OK, see $OUT/run-$tool-run-$engine-$N.log"
    ROWS+=("| $engine | $tool | $swall | $rwall | $rcpu | $rrss | $ok/$nodes | $sumx | $busy | $crit | $serial | $cpuper |")
    SEEDWALL[$tag]=$swall RUNWALL[$tag]=$rwall RUNCPU[$tag]=$rcpu
  done
done

{
  results_header "run.sh N=$N, engines: ${ENGINES[*]}, run --threads $THREADS"
  echo "| engine | tool | seed wall s | run wall s | run CPU s (user+sys) | run peak RSS MB | models OK | Σ node exec s | busy s | critical path s | serial overhead ms/model | CPU ms/model |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [[ $WITH_DBT == 1 ]]; then
    echo
    echo "dbt-core $(dbt_version) in the same sitting"
    echo
    echo "| engine | dbt/sluice run wall | dbt/sluice seed+run wall | dbt/sluice run CPU |"
    echo "|---|---|---|---|"
    for engine in "${ENGINES[@]}"; do
      s="sluice-$engine-$N" d="dbt-$engine-$N"
      echo "| $engine | $(calc "f'{${RUNWALL[$d]} / ${RUNWALL[$s]}:.1f}x'") | $(calc "f'{(${SEEDWALL[$d]} + ${RUNWALL[$d]}) / (${SEEDWALL[$s]} + ${RUNWALL[$s]}):.1f}x'") | $(calc "f'{${RUNCPU[$d]} / ${RUNCPU[$s]}:.1f}x'") |"
    done
  fi
} | tee -a "$OUT/run-results.md"
