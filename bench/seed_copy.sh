#!/usr/bin/env bash
# bench/seed_copy.sh - `sluice seed` of a large CSV into PostgreSQL vs `psql \copy` of the same file.
#
# Usage:  bench/seed_copy.sh [ROWS]          (default 1000000)
#
# Writes bench/out/seed-ROWS/, a one-seed project whose seeds/bench_rows.csv comes from
# bench/gen_seed_csv.py ROWS (mixed types: bigint, numeric, text with quotes and commas,
# timestamp, date, boolean, NULLs; ~120 bytes a row), starts a throwaway PostgreSQL 15
# (/work/shared/bench/pg_temp.sh, fsync off, stopped on exit) and $RUNS times, alternating:
#   sluice   drop the seed schema, then `sluice seed` under /usr/bin/time -v. Two times:
#            load = the seed node's execution_time in target/run_results.json (read the file,
#            infer types, binary COPY into a temporary table, swap it in, commit) and
#            command = the whole process (adds start-up, project parse, connecting).
#   \copy    drop and re-create copy_bench.bench_rows as `(like <sluice's table>)` (same
#            column types), then time `psql -c "\copy … from 'file.csv' (format csv, header)"`.
# A CHECKPOINT runs before every timed step. Prints the median and best of each, rows/s, and
# sluice's throughput as a percentage of \copy's (issue target: >= 70%).
#
# Environment: SLUICE_BIN, SLUICE_ARGS, PG_BIN, SHARED_BENCH (see bench/lib.sh);
#   RUNS  timed repetitions of each side (default 3)
# Results are appended to bench/out/seed-results.md; logs and time -v output stay in bench/out/.
set -uo pipefail
RUNS=${RUNS:-3}
. "$(dirname "$0")/lib.sh"

bench_args "row count" "" "$@"
ROWS=${COUNT:-1000000}

need_time
need_sluice
need_pg

P="$OUT/seed-$ROWS"
CSV="$P/seeds/bench_rows.csv"
mkdir -p "$P/seeds"
if [[ ! -s "$CSV" ]]; then
  say "generating $ROWS rows -> $CSV"
  python3 "$HERE/gen_seed_csv.py" "$ROWS" "$CSV" || die "generator failed"
fi
cat >"$P/dbt_project.yml" <<'EOF'
name: seed_bench
version: "1.0.0"
config-version: 2
profile: seed_bench
seed-paths: ["seeds"]
EOF
{ echo "seed_bench:"; echo "  target: pg"; echo "  outputs:"; pg_output pg seed_bench; } >"$P/profiles.yml"
MB=$(calc "f'{$(stat -c %s "$CSV") / 1048576:.0f}'")

pg_up
pg_fresh_db seed_bench
export PGDATABASE=seed_bench DBT_PROFILES_DIR=.
psqlq -c "create schema copy_bench"

LOADS=() CMDS=() COPIES=()
for i in $(seq 1 "$RUNS"); do
  say "run $i/$RUNS: sluice seed ($ROWS rows, $MB MB)"
  psqlq -c "drop schema if exists seed_bench cascade" -c checkpoint
  rm -rf "$P/target"
  read -r wall cpu rss <<<"$(timev "$P" "seed-sluice-$ROWS-$i" "$SLUICE_BIN" seed $SLUICE_ARGS)"
  [[ $wall == FAIL ]] && die "sluice seed failed, see $OUT/run-seed-sluice-$ROWS-$i.log"
  cp "$P/target/run_results.json" "$OUT/rr-seed-sluice-$ROWS-$i.json"
  load=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.3f" % r[0]["execution_time"])' "$P/target/run_results.json")
  LOADS+=("$load") CMDS+=("$wall")
  echo "sluice run $i: load ${load}s, command ${wall}s, CPU ${cpu}s, peak RSS ${rss} MB" >&2

  say "run $i/$RUNS: psql \\copy"
  psqlq -c "drop table if exists copy_bench.bench_rows" \
        -c "create table copy_bench.bench_rows (like seed_bench.bench_rows)" -c checkpoint
  t0=$(now)
  psqlq -c "\\copy copy_bench.bench_rows from '$CSV' with (format csv, header true)" \
    >"$OUT/run-seed-copy-$ROWS-$i.log" 2>&1 || die "\\copy failed, see $OUT/run-seed-copy-$ROWS-$i.log"
  t1=$(now)
  COPIES+=("$(calc "f'{$t1 - $t0:.3f}'")")
  echo "\\copy run $i: ${COPIES[-1]}s" >&2
done

# Both tables must hold the same rows.
n_s=$(psqlq -At -c "select count(*) from seed_bench.bench_rows")
n_c=$(psqlq -At -c "select count(*) from copy_bench.bench_rows")
diff=$(psqlq -At -c "select count(*) from (select * from seed_bench.bench_rows except all select * from copy_bench.bench_rows) d")
types=$(psqlq -At -c "select string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) from information_schema.columns where table_schema = 'seed_bench' and table_name = 'bench_rows'")

stats() {  # stats V... -> "median best"
  python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.3f} {min(v):.3f}")' "$@"
}
read -r load_med load_best <<<"$(stats "${LOADS[@]}")"
read -r cmd_med cmd_best <<<"$(stats "${CMDS[@]}")"
read -r copy_med copy_best <<<"$(stats "${COPIES[@]}")"
rate() { calc "f'{$ROWS / $1:,.0f}'"; }

{
  results_header "seed_copy.sh: $ROWS rows ($MB MB CSV) into PostgreSQL, $RUNS runs each"
  echo "Rows: sluice table $n_s, \\copy table $n_c, rows differing: $diff. Inferred columns: $types."
  echo
  echo "| what | median s | best s | rows/s (median) | % of \\copy (median) | % of \\copy (best vs best) |"
  echo "|---|---|---|---|---|---|"
  echo "| psql \\copy | $copy_med | $copy_best | $(rate "$copy_med") | 100% | 100% |"
  echo "| sluice seed, load (run_results execution_time) | $load_med | $load_best | $(rate "$load_med") | $(calc "f'{$copy_med / $load_med * 100:.0f}%'") | $(calc "f'{$copy_best / $load_best * 100:.0f}%'") |"
  echo "| sluice seed, whole command | $cmd_med | $cmd_best | $(rate "$cmd_med") | $(calc "f'{$copy_med / $cmd_med * 100:.0f}%'") | $(calc "f'{$copy_best / $cmd_best * 100:.0f}%'") |"
} | tee -a "$OUT/seed-results.md"
