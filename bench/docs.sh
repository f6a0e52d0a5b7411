#!/usr/bin/env bash
# bench/docs.sh - time `sluice docs generate` and its site in headless Chromium (and `dbt docs generate`).
#
# Usage:  bench/docs.sh [--dbt] [N]          (default N=5000)
#
# Generates bench/out/ref-N with /work/shared/bench/gen_project.py N ($REF_GEN) and, on the
# DuckDB target (no database is needed: no catalog query), measures:
#   parse          `sluice parse`, hyperfine, cold (target/ removed before each run): context,
#                  since docs generate loads, renders and compiles the project itself
#   docs generate  `sluice docs generate --empty-catalog`, hyperfine, cold: parse + compile +
#                  column lineage + manifest/catalog/lineage JSON + the self-contained
#                  target/index.html, without the warehouse catalog query (issue target: < 3 s
#                  at 5,000 models); peak RSS from one more run under /usr/bin/time -v
#   the site       bench/docs_timing.py in headless Chromium (Playwright driving
#                  /usr/bin/chromium, installed into $DBT_VENV when missing): load, ready,
#                  interactive (target: < 2 s), full graph, pan frame gaps, focus on a node;
#                  $BROWSER_RUNS runs (default 3), medians reported
# --dbt  also times one cold `dbt docs generate --empty-catalog` (it compiles every node) on the
#        same project under /usr/bin/time -v; with DBT_SITE=1, also dbt's own site until its
#        file tree is drawn (/work/shared/bench/docs_site_timing.py, --ready .filename-normal, 1 run).
#
# Environment: SLUICE_BIN, SLUICE_ARGS, RUNS (hyperfine runs, default 5), REF_GEN, DBT_VENV
#   (see bench/lib.sh); BROWSER_RUNS (default 3); DBT_SITE=1.
# Results are appended to bench/out/docs-results.md; hyperfine JSON, time -v output, logs and
# the browser's JSON lines stay in bench/out/.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

BROWSER_RUNS=${BROWSER_RUNS:-3}
DBT_SITE=${DBT_SITE:-0}
bench_args "model count" "--dbt" "$@"
N=${COUNT:-5000}

need_time
need_hyperfine
need_sluice
need_playwright
[[ $WITH_DBT == 1 ]] && need_dbt

gen_ref_project "$N"
export DBT_TARGET=duckdb DBT_PROFILES_DIR=. DUCKDB_PATH="$OUT/docs-$N.duckdb"
rm -f "$DUCKDB_PATH"

say "sluice parse / docs generate --empty-catalog (hyperfine, $RUNS runs)"
p=$(hf "$DIR" "docs-parse-$N" "$SLUICE_BIN parse $SLUICE_ARGS")
g=$(hf "$DIR" "docs-generate-$N" "$SLUICE_BIN docs generate --empty-catalog $SLUICE_ARGS")
rm -rf "$DIR/target"
read -r _ _ grss <<<"$(timev "$DIR" "docs-generate-$N" "$SLUICE_BIN" docs generate --empty-catalog $SLUICE_ARGS)"
[[ -f "$DIR/target/index.html" ]] || die "no target/index.html, see $OUT/run-docs-generate-$N.log"
site_mb=$(calc "f'{$(stat -c %s "$DIR/target/index.html") / 1048576:.1f}'")

say "site in headless Chromium ($BROWSER_RUNS runs)"
# focus: the model in the middle of the sorted model ids
focus=$(python3 -c 'import json,sys; m=sorted(k for k in json.load(open(sys.argv[1]))["nodes"] if k.startswith("model.")); print(m[len(m)//2])' \
  "$DIR/target/manifest.json")
"$DBT_VENV/bin/python" "$HERE/docs_timing.py" "$DIR/target" --runs "$BROWSER_RUNS" --focus "$focus" \
  >"$OUT/browser-docs-$N.jsonl" 2>"$OUT/browser-docs-$N.log" \
  || die "docs_timing.py failed, see $OUT/browser-docs-$N.log"
{ read -r b_load b_ready b_inter b_graph b_pan b_step b_focus; read -r b_info; } < <(python3 - "$OUT/browser-docs-$N.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(k):
    v = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
    return f"{statistics.median(v):g}" if v else "n/a"
print(*(med(k) for k in ("load_ms", "ready_ms", "interactive_ms", "graph_ms", "pan_frame_ms", "pan_step_ms", "focus_ms")))
r = rows[0]
errs = sum(len(x["js_errors"]) for x in rows)
print(f"{r['nodes']} nodes in the site, full graph {r['graph_nodes']} nodes ({r['renderer']}), "
      f"focus on {r.get('focus')} ({r.get('focus_nodes')} nodes), "
      f"the drag moved the view in {sum(1 for x in rows if x.get('pan_moved'))} of {len(rows)} runs, {errs} JS errors")
PY
)

if [[ $WITH_DBT == 1 ]]; then
  say "dbt docs generate --empty-catalog (one cold run; slow)"
  rm -rf "$DIR/target" "$DIR/logs" "$DUCKDB_PATH"
  read -r dwall dcpu drss <<<"$(timev "$DIR" "dbt-docs-generate-$N" "$DBT_VENV/bin/dbt" docs generate --empty-catalog)"
  if [[ $DBT_SITE == 1 && $dwall != FAIL ]]; then
    say "dbt's site until the file tree is drawn (1 run)"
    "$DBT_VENV/bin/python" "$SHARED_BENCH/docs_site_timing.py" "$DIR/target" --ready .filename-normal --runs 1 \
      >"$OUT/browser-dbt-docs-$N.jsonl" 2>&1
    dsite=$(sed -n 's/^median .*"ready_ms": \([0-9.]*\).*/\1/p' "$OUT/browser-dbt-docs-$N.jsonl")
  fi
fi

sg=$(calc "f'{float(\"${g%% *}\"):.3f}'")
{
  results_header "docs.sh N=$N (reference project, DuckDB target, --empty-catalog)"
  echo "| N | sluice parse s | sluice docs generate s | docs generate peak RSS MB | index.html MB |"
  echo "|---|---|---|---|---|"
  echo "| $N | $p | $g | $grss | $site_mb |"
  echo
  echo "Headless Chromium, median of $BROWSER_RUNS runs, ms: $b_info."
  echo
  echo "| load | ready | interactive | full graph | pan: longest frame | pan: per mouse move | focus node (depth 2) |"
  echo "|---|---|---|---|---|---|---|"
  echo "| $b_load | $b_ready | $b_inter | $b_graph | $b_pan | $b_step | $b_focus |"
  if [[ $WITH_DBT == 1 ]]; then
    echo
    site_h='' site_s='' site_v=''
    [[ $DBT_SITE == 1 ]] && site_h=' dbt site: file tree drawn ms |' site_s='---|' site_v=" ${dsite:-n/a} |"
    echo "| N | dbt docs generate --empty-catalog wall s | dbt CPU s | dbt peak RSS MB | dbt/sluice wall |$site_h"
    echo "|---|---|---|---|---|$site_s"
    echo "| $N | $dwall | $dcpu | $drss | $(calc "f'{$dwall / $sg:.1f}x'") |$site_v"
  fi
} | tee -a "$OUT/docs-results.md"
