#!/usr/bin/env python3
"""gen_project.py - sluice's own synthetic dbt project generator.

Usage:
    python3 bench/gen_project.py N OUTDIR [--seed 7] [--max-view-fanin 24]

Writes a deterministic (same N + --seed => byte-identical files), layered dbt
project with N models. Python standard library only.

Shape
-----
* seeds/ (4 CSVs, also declared as source `landing`):
    raw_accounts (300 rows), raw_invoices (2500), raw_lines (4000), raw_visits (3000).
* models/staging/ (~10% of N): one seed each, alternating ref() and source(),
  cast to the common row shape
      pk bigint, account_id bigint, metric double precision,
      label varchar, event_day date, weight bigint
  staging descriptions use a {% docs %} block (models/docs.md).
* models/core/tier_NN/: D tiers (D ~ log2(N) - 1, min 3), tapering in size; a
  model in tier k refs 1-3 earlier models, at least one from tier k-1.
  Kinds: filter (var()), enrich (left joins on pk), rollup (group by),
  rolling (sum/lag/row_number windows), dedupe (row_number subquery),
  bucket (project macros), stack (union all), pivot (Jinja for-loop over a
  list var), compare (CTE + join against a per-account aggregate).
* models/marts/: the final tier, materialized as table via dbt_project.yml.
* A view whose fully expanded tree would touch more than --max-view-fanin
  relations gets {{ config(materialized='table') }} instead; some models carry
  tags via config() or via the YAML `config:` key.
* Tests: every model has unique + not_null on pk; not_null on account_id for
  every 2nd model; relationships (pk -> parent.pk) on every 4th filter/dedupe
  model; custom generic test `not_below` on weight for rollups/pivots;
  accepted_values on label for some staging models; one singular test.
* macros/bench_utils.sql: safe_ratio(), classify(), day_floor(), test not_below.
* profiles.yml (run from OUTDIR or pass --profiles-dir OUTDIR): profile
  `sluice_bench`, target from DBT_TARGET (default duckdb):
    duckdb   path from DUCKDB_PATH (default sluice_bench.duckdb)
    postgres PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, schema DBT_SCHEMA
  threads from DBT_THREADS (default 4).
All generated SQL is valid on DuckDB and PostgreSQL 15.
"""
import argparse
import datetime
import math
import os
import random
import shutil

ROW_COLS = [
    ("pk", "Row key, unique within the model."),
    ("account_id", "Account the row belongs to."),
    ("metric", "Numeric measure carried through the DAG."),
    ("label", "Categorical label (tier, state, sku, channel or bucket)."),
    ("event_day", "Business day of the row."),
    ("weight", "Count / rank / quantity carried through the DAG."),
]
COL_LIST = "pk, account_id, metric, label, event_day, weight"

SEEDS = ["raw_accounts", "raw_invoices", "raw_lines", "raw_visits"]

TIERS = ["bronze", "silver", "gold", "platinum"]
STATES = ["draft", "open", "paid", "void", "overdue"]
CHANNELS = ["web", "mobile", "email", "store"]
REGIONS = ["emea", "amer", "apac", "latam"]

# seed -> (pk, account_id, metric, label, event_day, weight) expressions
STAGING_EXPR = {
    "raw_accounts": ("id", "id", "credit_limit", "tier", "opened_on", "1"),
    "raw_invoices": ("id", "account_id", "total", "state", "issued_on", "1"),
    "raw_lines": ("id", "account_id", "qty * unit_price", "sku", "shipped_on", "qty"),
    "raw_visits": ("id", "account_id", "duration_s", "channel", "visited_on", "1"),
}
SEED_LABELS = {"raw_accounts": TIERS, "raw_invoices": STATES, "raw_visits": CHANNELS}

KIND_WEIGHTS = [
    ("filter", 18), ("enrich", 20), ("rollup", 10), ("rolling", 12), ("dedupe", 8),
    ("bucket", 10), ("stack", 7), ("pivot", 5), ("compare", 10),
]
# kind -> (min parents, max parents)
KIND_ARITY = {
    "filter": (1, 1), "enrich": (2, 3), "rollup": (1, 1), "rolling": (1, 1),
    "dedupe": (1, 1), "bucket": (1, 1), "stack": (2, 2), "pivot": (1, 1), "compare": (2, 2),
}


def put(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="\n", encoding="utf-8") as fh:
        fh.write(text)


def day(offset):
    return (datetime.date(2023, 1, 1) + datetime.timedelta(days=offset)).isoformat()


def ref(name):
    return "{{ ref('%s') }}" % name


# ------------------------------------------------------------------ seeds
def write_seeds(root, rng):
    out = ["id,region,tier,opened_on,credit_limit"]
    for i in range(1, 301):
        out.append(f"{i},{rng.choice(REGIONS)},{rng.choice(TIERS)},{day(rng.randrange(400))},"
                   f"{rng.randrange(500, 20000, 50)}.00")
    put(root, "seeds/raw_accounts.csv", "\n".join(out) + "\n")

    out = ["id,account_id,issued_on,state,total"]
    for i in range(1, 2501):
        out.append(f"{i},{rng.randint(1, 300)},{day(rng.randrange(540))},{rng.choice(STATES)},"
                   f"{rng.randint(50, 90000) / 100:.2f}")
    put(root, "seeds/raw_invoices.csv", "\n".join(out) + "\n")

    out = ["id,invoice_id,account_id,sku,qty,unit_price,shipped_on"]
    for i in range(1, 4001):
        out.append(f"{i},{rng.randint(1, 2500)},{rng.randint(1, 300)},sku_{rng.randint(1, 40):02d},"
                   f"{rng.randint(1, 12)},{rng.randint(99, 25000) / 100:.2f},{day(rng.randrange(540))}")
    put(root, "seeds/raw_lines.csv", "\n".join(out) + "\n")

    out = ["id,account_id,channel,visited_on,duration_s"]
    for i in range(1, 3001):
        out.append(f"{i},{rng.randint(1, 300)},{rng.choice(CHANNELS)},{day(rng.randrange(540))},"
                   f"{rng.randint(3, 3600)}")
    put(root, "seeds/raw_visits.csv", "\n".join(out) + "\n")

    yml = ["version: 2", "", "seeds:"]
    for s in SEEDS:
        yml += [f"  - name: {s}",
                f"    description: \"Landing extract of {s[4:]} (synthetic).\"",
                "    columns:",
                "      - name: id",
                "        data_tests:",
                "          - unique",
                "          - not_null"]
    put(root, "seeds/properties.yml", "\n".join(yml) + "\n")


# ------------------------------------------------------------------ SQL per kind
def staging_sql(seed, use_source, rng):
    pk, acc, metric, label, dt, weight = STAGING_EXPR[seed]
    rel = "{{ source('landing', '%s') }}" % seed if use_source else ref(seed)
    m = rng.randint(4, 11)
    r = rng.randrange(m)
    return (
        f"-- staging: {seed}\n"
        f"with landing as (\n    select * from {rel}\n),\n\n"
        "typed as (\n    select\n"
        f"        cast({pk} as bigint) as pk,\n"
        f"        cast({acc} as bigint) as account_id,\n"
        f"        cast({metric} as double precision) as metric,\n"
        f"        cast({label} as varchar) as label,\n"
        f"        cast({dt} as date) as event_day,\n"
        f"        cast({weight} as bigint) as weight\n"
        "    from landing\n"
        f"    where mod(id, {m}) <> {r}\n"
        ")\n\n"
        "select * from typed\n"
    )


def k_filter(p, rng):
    factor = rng.choice(["1.0", "0.95", "1.02", "1.1"])
    return (
        "select\n    pk,\n    account_id,\n"
        f"    metric * {factor} as metric,\n    label,\n    event_day,\n    weight\n"
        f"from {ref(p[0])}\n"
        "where metric >= {{ var('min_metric') }}\n"
        "  and event_day >= cast('{{ var('window_start') }}' as date)\n"
    )


def k_enrich(p, rng):
    aliases = "lmn"
    metric = "base.metric"
    label = "base.label"
    joins = []
    for a, parent in zip(aliases, p[1:]):
        metric = f"{metric} + coalesce({a}.metric, 0)"
        label = f"coalesce({a}.label, {label})"
        joins.append(f"left join {ref(parent)} as {a}\n    on base.pk = {a}.pk")
    return (
        "select\n    base.pk,\n    base.account_id,\n"
        f"    ({metric}) / {len(p)} as metric,\n"
        f"    {label} as label,\n    base.event_day,\n    base.weight\n"
        f"from {ref(p[0])} as base\n" + "\n".join(joins) + "\n"
    )


def k_rollup(p, rng):
    fn = rng.choice(["avg", "sum", "max"])
    return (
        f"with src as (\n    select {COL_LIST} from {ref(p[0])}\n)\n\n"
        "select\n    account_id as pk,\n    account_id,\n"
        f"    {fn}(metric) as metric,\n    max(label) as label,\n"
        "    min(event_day) as event_day,\n    cast(count(*) as bigint) as weight\n"
        "from src\ngroup by account_id\n"
    )


def k_rolling(p, rng):
    w = rng.randint(2, 6)
    return (
        "select\n    pk,\n    account_id,\n"
        f"    sum(metric) over (\n        partition by account_id order by event_day, pk\n"
        f"        rows between {w} preceding and current row\n    )\n"
        "    - coalesce(lag(metric) over (partition by account_id order by event_day, pk), 0) as metric,\n"
        "    label,\n    event_day,\n"
        "    cast(row_number() over (partition by account_id order by event_day desc, pk) as bigint) as weight\n"
        f"from {ref(p[0])}\n"
    )


def k_dedupe(p, rng):
    return (
        "select\n    pk,\n    account_id,\n    metric,\n    label,\n    event_day,\n    weight\n"
        "from (\n    select\n        *,\n"
        "        row_number() over (partition by account_id, label order by event_day desc, pk) as rn\n"
        f"    from {ref(p[0])}\n) as ranked\nwhere rn = 1\n"
    )


def k_bucket(p, rng):
    return (
        "select\n    pk,\n    account_id,\n"
        "    coalesce({{ safe_ratio('metric', 'weight') }}, 0) as metric,\n"
        "    {{ classify('metric') }} as label,\n"
        "    {{ day_floor('event_day') }} as event_day,\n    weight\n"
        f"from {ref(p[0])}\n"
    )


def k_stack(p, rng):
    return (
        f"select\n    pk * 2 as pk,\n    account_id,\n    metric,\n    label,\n    event_day,\n    weight\n"
        f"from {ref(p[0])}\n\nunion all\n\n"
        f"select\n    pk * 2 + 1 as pk,\n    account_id,\n    metric,\n    label,\n    event_day,\n    weight\n"
        f"from {ref(p[1])}\n"
    )


def k_pivot(p, rng):
    return (
        "select\n    account_id as pk,\n    account_id,\n"
        "    {%- for lbl in var('tracked_labels') %}\n"
        "    {% if not loop.first %}+ {% endif %}sum(case when label = '{{ lbl }}' then metric else 0 end)\n"
        "    {%- endfor %} as metric,\n"
        "    cast('pivot' as varchar) as label,\n    max(event_day) as event_day,\n"
        "    cast(count(*) as bigint) as weight\n"
        f"from {ref(p[0])}\ngroup by account_id\n"
    )


def k_compare(p, rng):
    return (
        f"with facts as (\n    select {COL_LIST} from {ref(p[0])}\n),\n\n"
        "account_stats as (\n"
        "    select account_id, avg(metric) as avg_metric, count(*) as n_rows\n"
        f"    from {ref(p[1])}\n    group by account_id\n)\n\n"
        "select\n    facts.pk,\n    facts.account_id,\n"
        "    facts.metric - coalesce(account_stats.avg_metric, 0) as metric,\n"
        "    case when account_stats.n_rows is null then cast('unmatched' as varchar) else facts.label end as label,\n"
        "    facts.event_day,\n    facts.weight\n"
        "from facts\nleft join account_stats\n    on facts.account_id = account_stats.account_id\n"
    )


KIND_SQL = {
    "filter": k_filter, "enrich": k_enrich, "rollup": k_rollup, "rolling": k_rolling,
    "dedupe": k_dedupe, "bucket": k_bucket, "stack": k_stack, "pivot": k_pivot,
    "compare": k_compare,
}


def pick_kind(rng):
    x = rng.randrange(sum(w for _, w in KIND_WEIGHTS))
    for kind, w in KIND_WEIGHTS:
        if x < w:
            return kind
        x -= w
    return KIND_WEIGHTS[-1][0]


# ------------------------------------------------------------------ YAML
def model_yaml(name, description, account_not_null, relationship_to=None,
               weight_floor=False, accepted=None, yml_tags=None):
    y = [f"  - name: {name}", f"    description: {description}"]
    if yml_tags:
        y += ["    config:", f"      tags: [{', '.join(repr(t) for t in yml_tags)}]"]
    y.append("    columns:")
    for col, desc in ROW_COLS:
        y += [f"      - name: {col}", f"        description: \"{desc}\""]
        tests = []
        if col == "pk":
            tests = ["          - unique", "          - not_null"]
            if relationship_to:
                tests += ["          - relationships:",
                          "              arguments:",
                          f"                to: ref('{relationship_to}')",
                          "                field: pk"]
        elif col == "account_id" and account_not_null:
            tests = ["          - not_null"]
        elif col == "weight" and weight_floor:
            tests = ["          - not_below:",
                     "              arguments:",
                     "                floor: 0"]
        elif col == "label" and accepted:
            tests = ["          - accepted_values:",
                     "              arguments:",
                     f"                values: [{', '.join(repr(v) for v in accepted)}]"]
        if tests:
            y.append("        data_tests:")
            y += tests
    return "\n".join(y)


def count_tests(block):
    return sum(1 for line in block.splitlines() if line.startswith("          - "))


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description="sluice synthetic dbt project generator")
    ap.add_argument("n", type=int, help="number of models (>= 12)")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-view-fanin", type=int, default=24,
                    help="expanded-relation count above which a view becomes a table")
    a = ap.parse_args()

    n = max(12, a.n)
    rng = random.Random(a.seed)
    root = a.outdir
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)

    n_staging = max(len(SEEDS), round(n * 0.10))
    depth = max(3, math.ceil(math.log2(n)) - 1)      # tiers after staging, incl. marts
    remaining = n - n_staging
    # tapering tier sizes: weight of tier k is (2*depth - k)
    wts = [2 * depth - k for k in range(depth)]
    sizes = [remaining * w // sum(wts) for w in wts]
    for k in range(remaining - sum(sizes)):
        sizes[k % depth] += 1

    # ---- project-level files
    put(root, "dbt_project.yml", f"""# generated by sluice bench/gen_project.py (n={n}, seed={a.seed})
name: sluice_bench
version: "0.1.0"
config-version: 2
profile: sluice_bench

model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
test-paths: ["tests"]
target-path: "target"
clean-targets: ["target", "dbt_packages"]

vars:
  min_metric: 0
  window_start: "2023-01-01"
  tracked_labels: ["gold", "paid", "web", "sku_07"]
  bucket_small: 25
  bucket_large: 250

seeds:
  sluice_bench:
    +quote_columns: false

models:
  sluice_bench:
    +materialized: view
    staging:
      +tags: ["staging"]
    core:
      +tags: ["core"]
    marts:
      +materialized: table
      +tags: ["marts"]
""")
    put(root, "profiles.yml", """sluice_bench:
  target: "{{ env_var('DBT_TARGET', 'duckdb') }}"
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('DUCKDB_PATH', 'sluice_bench.duckdb') }}"
      schema: main
      threads: "{{ env_var('DBT_THREADS', '4') | as_number }}"
    postgres:
      type: postgres
      host: "{{ env_var('PGHOST', '127.0.0.1') }}"
      port: "{{ env_var('PGPORT', '5432') | as_number }}"
      user: "{{ env_var('PGUSER', 'postgres') }}"
      password: "{{ env_var('PGPASSWORD', '') }}"
      dbname: "{{ env_var('PGDATABASE', 'postgres') }}"
      schema: "{{ env_var('DBT_SCHEMA', 'sluice_bench') }}"
      threads: "{{ env_var('DBT_THREADS', '4') | as_number }}"
""")
    put(root, "macros/bench_utils.sql", """{% macro safe_ratio(numerator, denominator) -%}
case
    when {{ denominator }} is null or {{ denominator }} = 0 then null
    else cast({{ numerator }} as double precision) / {{ denominator }}
end
{%- endmacro %}

{% macro classify(col) -%}
case
    when {{ col }} < {{ var('bucket_small') }} then 'small'
    when {{ col }} < {{ var('bucket_large') }} then 'medium'
    else 'large'
end
{%- endmacro %}

{% macro day_floor(col) -%}
{%- set first_day = var('window_start') -%}
case
    when {{ col }} < cast('{{ first_day }}' as date) then cast('{{ first_day }}' as date)
    else {{ col }}
end
{%- endmacro %}

{% test not_below(model, column_name, floor=0) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ floor }}
{% endtest %}
""")
    put(root, "tests/assert_accounts_loaded.sql",
        "-- singular test: returns a row (fails) when the accounts seed is empty\n"
        "select 'no accounts' as problem\n"
        f"from (select count(*) as n_rows from {ref('raw_accounts')}) as c\n"
        "where c.n_rows = 0\n")
    put(root, "models/docs.md", """{% docs staging_model %}
Staging model: one landing seed, typed to the common bench row shape
(pk, account_id, metric, label, event_day, weight) and lightly filtered.
{% enddocs %}
""")
    write_seeds(root, rng)
    n_tests = 1 + 2 * len(SEEDS)

    fanin = {}   # model -> relations touched when its view is fully expanded
    tiers = []
    n_tables = 0
    kinds_used = {}

    # ---- staging
    yml = ["version: 2", "", "sources:", "  - name: landing",
           "    description: \"Landing tables loaded by dbt seed.\"",
           "    schema: \"{{ target.schema }}\"", "    tables:"]
    for s in SEEDS:
        yml += [f"      - name: {s}", f"        description: \"Landing {s[4:]}.\""]
    yml += ["", "models:"]
    staging = []
    for i in range(n_staging):
        seed = SEEDS[i % len(SEEDS)]
        name = f"stg_{seed[4:]}_{i:05d}"
        put(root, f"models/staging/{name}.sql", staging_sql(seed, i % 2 == 0, rng))
        fanin[name] = 2
        accepted = SEED_LABELS.get(seed) if i % 3 == 0 else None
        block = model_yaml(name, "'{{ doc(\"staging_model\") }}'", i % 2 == 0,
                              accepted=accepted)
        n_tests += count_tests(block)
        yml.append(block)
        staging.append(name)
    put(root, "models/staging/properties.yml", "\n".join(yml) + "\n")
    tiers.append(staging)

    # ---- core tiers + marts
    idx = n_staging
    for t, size in enumerate(sizes, start=1):
        mart = t == depth
        folder = "models/marts" if mart else f"models/core/tier_{t:02d}"
        prev = tiers[-1]
        earlier = [m for tier in tiers for m in tier]
        recent = [m for tier in tiers[-3:] for m in tier]
        yml = ["version: 2", "", "models:"]
        names = []
        for _ in range(size):
            kind = pick_kind(rng)
            lo, hi = KIND_ARITY[kind]
            want = rng.randint(lo, hi)
            parents = [rng.choice(prev)]
            while len(parents) < want:
                r = rng.random()
                cand = rng.choice(recent) if r < 0.5 else rng.choice(earlier) if r < 0.8 else rng.choice(prev)
                if cand not in parents:
                    parents.append(cand)
            if mart:
                name = f"{'fct' if idx % 3 else 'dim'}_{kind}_{idx:05d}"
            else:
                name = f"core_{kind}_{idx:05d}"
            cost = 1 + sum(fanin[p] for p in parents)
            header = ""
            if mart:
                fanin[name] = 1
                n_tables += 1
            elif cost > a.max_view_fanin:
                header = "{{ config(materialized='table', tags=['materialized_for_cost']) }}\n\n"
                fanin[name] = 1
                n_tables += 1
            else:
                fanin[name] = cost
                if idx % 11 == 0:
                    header = "{{ config(tags=['hourly']) }}\n\n"
            sql = f"-- {kind} over {', '.join(parents)}\n" + header + KIND_SQL[kind](parents, rng)
            put(root, f"{folder}/{name}.sql", sql)
            rel = parents[0] if kind in ("filter", "dedupe") and idx % 4 == 0 else None
            block = model_yaml(
                name, f"\"Tier {t} {kind} model over {len(parents)} parent(s).\"",
                idx % 2 == 0, relationship_to=rel,
                weight_floor=kind in ("rollup", "pivot"),
                yml_tags=["yaml_tagged"] if idx % 10 == 3 else None)
            n_tests += count_tests(block)
            yml.append(block)
            names.append(name)
            kinds_used[kind] = kinds_used.get(kind, 0) + 1
            idx += 1
        put(root, f"{folder}/properties.yml", "\n".join(yml) + "\n")
        tiers.append(names)

    total = sum(len(t) for t in tiers)
    kinds = ", ".join(f"{k}={kinds_used[k]}" for k, _ in KIND_WEIGHTS if k in kinds_used)
    print(f"wrote {root}: {total} models ({n_staging} staging + {depth} tiers; "
          f"{n_tables} tables, {total - n_tables} views; {kinds}), "
          f"{len(SEEDS)} seeds, {n_tests} data tests")


if __name__ == "__main__":
    main()
