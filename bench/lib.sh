# bench/lib.sh - shared helpers for the bench/*.sh scripts (sourced, not run).
#
# Sets HERE (bench/), OUT (bench/out/), SLUICE_BIN, SLUICE_ARGS, DBT_VENV, REF_GEN, SHARED_BENCH
# and PG_BIN from the environment or their defaults, and exports the variables that keep dbt
# quiet and offline. Functions:
#   need_time / need_hyperfine / need_sluice / need_dbt / need_playwright   install or check tools
#   timev DIR NAME CMD...   one run under /usr/bin/time -v in DIR -> "wall_s cpu_s rss_mb"
#                           (FAIL FAIL FAIL on a non-zero exit); raw output in $OUT/time-NAME.txt,
#                           the command's stdout+stderr in $OUT/run-NAME.log
#   hf DIR NAME CMD [PREPARE]   hyperfine mean ± sd (s) of CMD in DIR ($RUNS runs, 1 warm-up)
#   at_exit CMD             run CMD (eval) when the script exits, last registered first
#   pg_up                   start a throwaway cluster (shared pg_temp.sh), stopped on exit
#   pg_fresh_db NAME        drop and create database NAME on it
#   psqlq ARGS...           psql -X -q -v ON_ERROR_STOP=1, notices off
#   now                     seconds since the epoch, nanosecond resolution
#   calc EXPR               a Python expression, printed (for ratios and rates)
#   results_header TITLE    a markdown heading with date, binary, version and machine load
#   bench_args, show_usage  command-line parsing and --help (the script's header comment)
#   gen_ref_project N       $REF_GEN N into $OUT/ref-N (sets DIR)
#   pg_output TARGET SCHEMA [EXTRA]   a profiles.yml output for the PG* environment
#   dbt_version, die MSG, say MSG
# Every script sources this with `. "$(dirname "$0")/lib.sh"`.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/out"
SLUICE_BIN=${SLUICE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}/release/sluice}
SLUICE_ARGS=${SLUICE_ARGS:-}
DBT_VENV=${DBT_VENV:-/work/venv-dbt}
SHARED_BENCH=${SHARED_BENCH:-/work/shared/bench}
REF_GEN=${REF_GEN:-$SHARED_BENCH/gen_project.py}
RUNS=${RUNS:-5}
if [[ -z "${PG_BIN:-}" ]]; then
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then PG_BIN=/usr/lib/postgresql/15/bin
  else PG_BIN=$(dirname "$(command -v initdb 2>/dev/null || echo /usr/bin/initdb)"); fi
fi
export PG_BIN
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false NO_COLOR=1
mkdir -p "$OUT"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
say() { echo ">> $*" >&2; }

# The calling script's header comment (from line 2 to the first line that is not a comment).
show_usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# bench_args WHAT OPTIONS ARGS...: the command line of a bench script. OPTIONS lists the flags the
# script takes, among --dbt and --engine. Sets WITH_DBT (0/1), ENGINE (default both), COUNTS
# (the numbers given, each a WHAT, e.g. "model count") and COUNT (the last of them, or empty);
# -h/--help prints the usage and exits.
bench_args() {
  local what=$1 options=" $2 "; shift 2
  WITH_DBT=0 ENGINE=both COUNTS=() COUNT=
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) show_usage; exit 0 ;;
      --dbt|--engine|--engine=*)
        [[ $options == *" ${1%%=*} "* ]] || die "unknown option $1 (see --help)"
        case "$1" in
          --dbt) WITH_DBT=1 ;;
          --engine) ENGINE=${2:-}; shift ;;
          *) ENGINE=${1#--engine=} ;;
        esac ;;
      *[!0-9]*|'') die "not a $what: $1" ;;
      *) COUNTS+=("$1") COUNT=$1 ;;
    esac
    shift
  done
}

# gen_ref_project N: the shared reference project ($REF_GEN) freshly written to $OUT/ref-N; sets DIR.
gen_ref_project() {
  DIR="$OUT/ref-$1"
  say "generating the reference project, N=$1 -> $DIR"
  rm -rf "$DIR"
  python3 "$REF_GEN" "$1" "$DIR" >&2 || die "$REF_GEN failed"
}

# pg_output TARGET SCHEMA [EXTRA]: a PostgreSQL output for profiles.yml, indented to go under
# `outputs:`, connecting with the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD,
# PGDATABASE), one thread; EXTRA is one more key, e.g. "lake: {type: local, path: lake}".
pg_output() {
  cat <<EOF
    $1:
      type: postgres
      host: "{{ env_var('PGHOST') }}"
      port: "{{ env_var('PGPORT') | as_number }}"
      user: "{{ env_var('PGUSER') }}"
      password: "{{ env_var('PGPASSWORD', '') }}"
      dbname: "{{ env_var('PGDATABASE') }}"
      schema: $2
      threads: 1
EOF
  if [[ -n ${3:-} ]]; then echo "      $3"; fi
}

dbt_version() { "$DBT_VENV/bin/dbt" --version 2>/dev/null | grep -m1 'installed:' | sed 's/.*installed: *//'; }

need_time() {
  [[ -x /usr/bin/time ]] && return 0
  say "installing GNU time (apt-get install time)"
  { apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }; } \
    || die "could not install /usr/bin/time"
}

need_hyperfine() {
  if ! command -v hyperfine >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/hyperfine ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v hyperfine >/dev/null 2>&1 && return 0
  say "installing hyperfine (cargo install, CARGO_TARGET_DIR=/tmp/hf-target)"
  # hyperfine 2.x needs a newer rustc than some toolchains here; fall back to 1.20.
  CARGO_TARGET_DIR=/tmp/hf-target cargo install hyperfine --locked \
    || CARGO_TARGET_DIR=/tmp/hf-target cargo install hyperfine --version 1.20.0 --locked \
    || die "could not install hyperfine"
  export PATH="$HOME/.cargo/bin:$PATH"
}

need_sluice() {
  [[ -x "$SLUICE_BIN" ]] || die "no sluice binary at $SLUICE_BIN (build with 'cargo build --release' or set SLUICE_BIN)"
}

need_dbt() {
  [[ -x "$DBT_VENV/bin/dbt" ]] \
    || die "$DBT_VENV/bin/dbt is missing (run $SHARED_BENCH/setup_venv.sh $DBT_VENV)"
}

need_pg() {
  [[ -x "$PG_BIN/initdb" ]] || die "no PostgreSQL server binaries in $PG_BIN (apt-get install postgresql, or set PG_BIN)"
  command -v psql >/dev/null 2>&1 || die "psql is not on PATH (apt-get install postgresql-client)"
}

# Playwright (Python) in the venv, driving the system Chromium; no browser download.
need_playwright() {
  [[ -x /usr/bin/chromium ]] || {
    say "installing chromium (apt-get install chromium)"
    { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
      || die "could not install chromium"
  }
  [[ -x "$DBT_VENV/bin/python" ]] || die "no Python venv at $DBT_VENV (run $SHARED_BENCH/setup_venv.sh $DBT_VENV)"
  "$DBT_VENV/bin/python" -c 'import playwright' 2>/dev/null && return 0
  say "installing playwright into $DBT_VENV (pip; it uses /usr/bin/chromium, nothing else is downloaded)"
  "$DBT_VENV/bin/pip" install -q playwright || die "could not pip install playwright"
}

# one run under /usr/bin/time -v -> "wall_s cpu_s rss_mb" (or "FAIL FAIL FAIL")
timev() {  # timev DIR NAME CMD...
  local dir=$1 name=$2; shift 2
  local tf="$OUT/time-$name.txt"
  if (cd "$dir" && /usr/bin/time -v -o "$tf" "$@" >"$OUT/run-$name.log" 2>&1); then
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

# hyperfine mean±stddev of one command in one project dir -> "12.34 ± 0.56" (seconds) or FAIL
hf() {  # hf DIR NAME CMD [PREPARE]
  local dir=$1 name=$2 cmd=$3 prepare=${4:-rm -rf target} json="$OUT/hf-$2.json"
  if (cd "$dir" && hyperfine -N --style basic --warmup 1 --runs "$RUNS" \
        --prepare "$prepare" --export-json "$json" "$cmd" >"$OUT/hf-$name.log" 2>&1); then
    python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{r['mean']:.3f} ± {r['stddev'] or 0:.3f}")
PY
  else
    echo FAIL
  fi
}

now() { date +%s.%N; }
calc() { python3 -c "import sys
try: print($1)
except Exception: print('n/a')"; }

psqlq() { PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# Commands run when the script exits, last registered first.
AT_EXIT=()
run_at_exit() { local i; for ((i = ${#AT_EXIT[@]} - 1; i >= 0; i--)); do eval "${AT_EXIT[i]}"; done; }
trap run_at_exit EXIT
at_exit() { AT_EXIT+=("$1"); }

# Start the shared throwaway cluster (fsync off) and stop it when the script exits.
pg_up() {
  need_pg
  local env
  env=$("$SHARED_BENCH/pg_temp.sh" start) || die "pg_temp.sh start failed"
  eval "$env"
  at_exit "'$SHARED_BENCH/pg_temp.sh' stop '$PGTEMP_DIR' >/dev/null 2>&1"
  export PGPASSWORD=${PGPASSWORD:-}
  say "PostgreSQL on $PGHOST:$PGPORT ($PGTEMP_DIR, stopped on exit)"
}

pg_fresh_db() {  # pg_fresh_db NAME
  psqlq -d postgres -c "drop database if exists \"$1\"" -c "create database \"$1\"" \
    || die "could not create database $1"
}

results_header() {  # results_header TITLE
  echo
  echo "### $1"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); sluice: $SLUICE_BIN ($("$SLUICE_BIN" --version 2>/dev/null || echo '?')); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
}
