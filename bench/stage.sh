#!/usr/bin/env bash
# bench/stage.sh - X API pages -> lake -> PostgreSQL: `sluice extract` + `sluice stage` vs \copy and pandas.
#
# Usage:  bench/stage.sh [TWEETS]          (default 1000000)
#
# Data (bench/out/stage-TWEETS/, generated once and reused):
#   tweets.ndjson, tweets.csv  /work/shared/bench/gen_tweets.py TWEETS (--csv)
#   replay/                    bench/x_pages.py pages: the tweets as X API v2 recent-search
#                              pages, 100 a page, newest first, in sluice's recording layout
#                              (index.json + one body per page), with includes.users and meta
#   project/                   a one-source project (models/sources.yml: plugin x_recent_search)
#                              with two PostgreSQL targets whose lakes are project/lake-replay
#                              and project/lake-http
# Then, on a throwaway PostgreSQL 15 (pg_temp.sh, fsync off, stopped on exit):
#   1. extract (replay)  `SLUICE_X_REPLAY=replay/ sluice extract`: pages/s landing the
#                        recording into the lake, no HTTP (write-once files, fsync per page)
#   2. stage             `sluice stage`: the lake run -> raw_twitter.tweets / users /
#                        tweet_hashtags (binary COPY, one transaction). rows/s over all three
#                        tables, from the command's own "Staged … in X s" line (reading +
#                        parsing pages + loading) and from the whole process's wall time
#   3. \copy             (a) the same rows: the three staged tables exported to CSV (untimed),
#                        then timed `psql \copy` of each into `(like raw_twitter.<table>)`
#                        tables; (b) gen_tweets.py's own 9-column CSV into a 9-column table
#   4. pandas            bench/pandas_load.py with the venv's Python: read the lake pages,
#                        pd.json_normalize, DataFrame.to_sql via SQLAlchemy+psycopg2
#                        (method=None, chunksize 10000; PANDAS_METHOD / PANDAS_CHUNKSIZE)
#   5. extract (HTTP)    `sluice extract` with base_url pointing at `x_pages.py serve` on
#                        127.0.0.1 (no rate limit, keep-alive): pages/s through reqwest; the
#                        server's own CPU seconds are reported to show whether it limited the run
# Prints sluice's staging rows/s as a percentage of \copy's (issue target: >= 70%).
#
# Environment: SLUICE_BIN, SLUICE_ARGS, DBT_VENV, PG_BIN, SHARED_BENCH (see bench/lib.sh);
#   PANDAS_METHOD (none|multi, default none), PANDAS_CHUNKSIZE (default 10000),
#   SKIP_PANDAS=1 to leave out step 4 (slow: minutes at 1M tweets).
# Disk: about 1 KB a tweet for the recording plus as much again per lake (~3 GB at 1M);
# the HTTP lake is deleted after step 5.
# Results are appended to bench/out/stage-results.md; logs stay in bench/out/.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bench_args "tweet count" "" "$@"
TWEETS=${COUNT:-1000000}
PANDAS_METHOD=${PANDAS_METHOD:-none}
PANDAS_CHUNKSIZE=${PANDAS_CHUNKSIZE:-10000}
SKIP_PANDAS=${SKIP_PANDAS:-0}

need_time
need_sluice
need_pg
[[ $SKIP_PANDAS == 1 ]] || "$DBT_VENV/bin/python" -c 'import pandas, sqlalchemy, psycopg2' 2>/dev/null \
  || die "$DBT_VENV needs pandas, SQLAlchemy and psycopg2 (run $SHARED_BENCH/setup_venv.sh $DBT_VENV) or set SKIP_PANDAS=1"

D="$OUT/stage-$TWEETS"
P="$D/project"
if [[ ! -f "$D/replay/.complete" ]]; then
  rm -rf "$D"
  mkdir -p "$D"
  say "generating $TWEETS tweets (gen_tweets.py) -> $D"
  python3 "$SHARED_BENCH/gen_tweets.py" "$TWEETS" "$D/tweets.ndjson" --csv "$D/tweets.csv" || die "gen_tweets.py failed"
  say "writing X API pages -> $D/replay"
  python3 "$HERE/x_pages.py" pages "$D/tweets.ndjson" "$D/replay" || die "x_pages.py failed"
  touch "$D/replay/.complete"
fi
PAGES=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["responses"]))' "$D/replay/index.json")

mkdir -p "$P/models"
cat >"$P/dbt_project.yml" <<'EOF'
name: stage_bench
version: "1.0.0"
config-version: 2
profile: stage_bench
model-paths: ["models"]
EOF
{ echo "stage_bench:"; echo "  target: replay"; echo "  outputs:"
  pg_output replay analytics "lake: {type: local, path: lake-replay}"
  pg_output http analytics "lake: {type: local, path: lake-http}"; } >"$P/profiles.yml"
write_sources() {  # write_sources BASE_URL
  cat >"$P/models/sources.yml" <<EOF
version: 2
sources:
  - name: twitter
    schema: raw_twitter
    meta:
      sluice:
        extract:
          plugin: x_recent_search
          query: "#bench"
          max_results: 100
          bearer_token_env: X_BEARER_TOKEN
          base_url: "$1"
    tables:
      - name: tweets
      - name: users
      - name: tweet_hashtags
EOF
}
write_sources "http://127.0.0.1:9"

pg_up
pg_fresh_db stage_bench
export PGDATABASE=stage_bench DBT_PROFILES_DIR=.
rates() {  # rates COUNT SECONDS -> "12,345"
  calc "f'{$1 / $2:,.0f}'"
}

# ---------------------------------------------------------------- 1. extract, replay
say "1. sluice extract (replay, $PAGES pages)"
rm -rf "$P/lake-replay" "$P/target"
read -r ex_wall ex_cpu _ <<<"$(SLUICE_X_REPLAY="$D/replay" timev "$P" "stage-extract-replay-$TWEETS" \
  "$SLUICE_BIN" extract -t replay $SLUICE_ARGS)"
[[ $ex_wall == FAIL ]] && die "sluice extract (replay) failed, see $OUT/run-stage-extract-replay-$TWEETS.log"
landed=$(find "$P/lake-replay" -name 'page-*.json' | wc -l)

# ---------------------------------------------------------------- 2. stage
say "2. sluice stage"
psqlq -c checkpoint
read -r st_wall st_cpu st_rss <<<"$(timev "$P" "stage-stage-$TWEETS" "$SLUICE_BIN" stage -t replay $SLUICE_ARGS)"
[[ $st_wall == FAIL ]] && die "sluice stage failed, see $OUT/run-stage-stage-$TWEETS.log"
st_own=$(sed -n 's/.*Staged source.* in \([0-9.]*\)s.*/\1/p' "$OUT/run-stage-stage-$TWEETS.log" | tail -1)
# per run: "staged run …: … (read 1.48s, load 1.09s)"
read -r st_read st_load <<<"$(sed -n 's/.*staged run .*(read \([0-9.]*\)s, load \([0-9.]*\)s).*/\1 \2/p' \
  "$OUT/run-stage-stage-$TWEETS.log" | awk '{ r += $1; l += $2 } END { printf "%.2f %.2f", r, l }')"
declare -A N
TOTAL=0
for t in tweets users tweet_hashtags; do
  N[$t]=$(psqlq -At -c "select count(*) from raw_twitter.$t")
  TOTAL=$((TOTAL + N[$t]))
done

# ---------------------------------------------------------------- 3. \copy
say "3. psql \\copy of the same rows"
mkdir -p "$D/copy"
psqlq -c "drop schema if exists copy_bench cascade" -c "create schema copy_bench"
for t in tweets users tweet_hashtags; do
  psqlq -c "\\copy raw_twitter.$t to '$D/copy/$t.csv' with (format csv, header true)"
  psqlq -c "create table copy_bench.$t (like raw_twitter.$t)"
done
psqlq -c checkpoint
cp_total=0
for t in tweets users tweet_hashtags; do
  t0=$(now)
  psqlq -c "\\copy copy_bench.$t from '$D/copy/$t.csv' with (format csv, header true)" \
    >>"$OUT/run-stage-copy-$TWEETS.log" 2>&1 || die "\\copy into copy_bench.$t failed"
  t1=$(now)
  cp_total=$(calc "f'{$cp_total + $t1 - $t0:.3f}'")
done
psqlq -c "create table copy_bench.gen_tweets (id bigint, author_id bigint, created_at timestamp, text text,
  lang text, retweet_count bigint, reply_count bigint, like_count bigint, quote_count bigint)" -c checkpoint
t0=$(now)
psqlq -c "\\copy copy_bench.gen_tweets from '$D/tweets.csv' with (format csv, header true)" \
  >>"$OUT/run-stage-copy-$TWEETS.log" 2>&1 || die "\\copy of tweets.csv failed"
t1=$(now)
cp_gen=$(calc "f'{$t1 - $t0:.3f}'")

# ---------------------------------------------------------------- 4. pandas
if [[ $SKIP_PANDAS != 1 ]]; then
  say "4. pandas json_normalize + to_sql (method=$PANDAS_METHOD, chunksize=$PANDAS_CHUNKSIZE)"
  psqlq -c checkpoint
  read -r pd_wall pd_cpu pd_rss <<<"$(timev "$P" "stage-pandas-$TWEETS" "$DBT_VENV/bin/python" "$HERE/pandas_load.py" \
    "$P/lake-replay" pandas_bench --method "$PANDAS_METHOD" --chunksize "$PANDAS_CHUNKSIZE")"
  [[ $pd_wall == FAIL ]] && die "pandas_load.py failed, see $OUT/run-stage-pandas-$TWEETS.log"
  pd_json=$(grep '^{' "$OUT/run-stage-pandas-$TWEETS.log" | tail -1)
  read -r pd_rows pd_tosql pd_total <<<"$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["total_rows"], j["to_sql_s"], j["total_s"])' "$pd_json")"
fi

# ---------------------------------------------------------------- 5. extract over HTTP
say "5. sluice extract against x_pages.py serve (HTTP, no rate limit)"
python3 "$HERE/x_pages.py" serve "$D/replay" >"$D/server.out" 2>"$OUT/run-stage-server-$TWEETS.log" &
SERVER_PID=$!
at_exit "kill $SERVER_PID 2>/dev/null"
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^port //p' "$D/server.out")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || die "x_pages.py serve did not start, see $OUT/run-stage-server-$TWEETS.log"
write_sources "http://127.0.0.1:$port"
rm -rf "$P/lake-http"
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }
s0=$(srv_cpu)
read -r hx_wall hx_cpu _ <<<"$(SLUICE_X_REPLAY=off X_BEARER_TOKEN=bench-token timev "$P" "stage-extract-http-$TWEETS" \
  "$SLUICE_BIN" extract -t http $SLUICE_ARGS)"
s1=$(srv_cpu)
kill "$SERVER_PID" 2>/dev/null
[[ $hx_wall == FAIL ]] && die "sluice extract (HTTP) failed, see $OUT/run-stage-extract-http-$TWEETS.log"
http_landed=$(find "$P/lake-http" -name 'page-*.json' | wc -l)
rm -rf "$P/lake-http"
write_sources "http://127.0.0.1:9"

{
  results_header "stage.sh: $TWEETS tweets, $PAGES pages, into PostgreSQL"
  echo "Staged rows: ${N[tweets]} tweets + ${N[users]} users + ${N[tweet_hashtags]} tweet_hashtags = $TOTAL."
  echo
  echo "| load | rows | seconds | rows/s | tweets/s | % of \\copy (same rows) |"
  echo "|---|---|---|---|---|---|"
  echo "| psql \\copy, the staged rows (3 tables) | $TOTAL | $cp_total | $(rates "$TOTAL" "$cp_total") | $(rates "$TWEETS" "$cp_total") | 100% |"
  echo "| sluice stage (its own timer: read + parse ${st_read}s, COPY ${st_load}s) | $TOTAL | $st_own | $(rates "$TOTAL" "$st_own") | $(rates "$TWEETS" "$st_own") | $(calc "f'{$cp_total / $st_own * 100:.0f}%'") |"
  echo "| sluice stage (whole command; CPU ${st_cpu}s, peak RSS ${st_rss} MB) | $TOTAL | $st_wall | $(rates "$TOTAL" "$st_wall") | $(rates "$TWEETS" "$st_wall") | $(calc "f'{$cp_total / $st_wall * 100:.0f}%'") |"
  if [[ $SKIP_PANDAS != 1 ]]; then
    echo "| pandas read + json_normalize + to_sql (method=$PANDAS_METHOD, chunksize $PANDAS_CHUNKSIZE; peak RSS ${pd_rss} MB) | $pd_rows | $pd_total | $(rates "$pd_rows" "$pd_total") | $(rates "$TWEETS" "$pd_total") | $(calc "f'{$cp_total / $pd_total * 100:.0f}%'") |"
    echo "| pandas to_sql only | $pd_rows | $pd_tosql | $(rates "$pd_rows" "$pd_tosql") | $(rates "$TWEETS" "$pd_tosql") | $(calc "f'{$cp_total / $pd_tosql * 100:.0f}%'") |"
  fi
  echo "| psql \\copy of gen_tweets.py's 9-column CSV (reference) | $TWEETS | $cp_gen | $(rates "$TWEETS" "$cp_gen") | $(rates "$TWEETS" "$cp_gen") | – |"
  echo
  echo "| extract | pages landed | wall s | pages/s | tweets/s | sluice CPU s | server CPU s |"
  echo "|---|---|---|---|---|---|---|"
  echo "| replay (no HTTP) | $landed | $ex_wall | $(rates "$landed" "$ex_wall") | $(rates "$TWEETS" "$ex_wall") | $ex_cpu | – |"
  echo "| HTTP, local x_pages.py server | $http_landed | $hx_wall | $(rates "$http_landed" "$hx_wall") | $(rates "$TWEETS" "$hx_wall") | $hx_cpu | $(calc "f'{$s1 - $s0:.2f}'") |"
} | tee -a "$OUT/stage-results.md"
