//! End-to-end `seed`/`run`/`test`/`build` through the binary, on DuckDB and
//! on a real PostgreSQL: the example Twitter project and a jaffle-style
//! fixture build from an empty database, rebuild idempotently, come out
//! identical on both engines, and failures skip exactly what depends on them.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cli::{copy_tree, example_project, repo_root, sluice, write_all, Out};
use crate::support::pg::PgServer;
use sluice::warehouse::{self, TargetConfig};

/// Where a project runs: its profile target and the environment that points it there.
enum Engine {
    #[allow(dead_code)]
    DuckDb {
        db: tempfile::TempDir,
    },
    Postgres {
        pg: PgServer,
    },
}

impl Engine {
    #[cfg(feature = "duckdb")]
    fn duckdb() -> Engine {
        Engine::DuckDb {
            db: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn postgres() -> Engine {
        Engine::Postgres {
            pg: PgServer::start(),
        }
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = sluice();
        c.current_dir(dir);
        match self {
            Engine::DuckDb { db } => {
                c.env("SLUICE_DUCKDB_PATH", db.path().join("warehouse.duckdb"));
                c.args(args);
            }
            Engine::Postgres { pg } => {
                c.env("PGHOST", &pg.host)
                    .env("PGPORT", pg.port.to_string())
                    .env("PGUSER", &pg.user)
                    .env("PGDATABASE", &pg.dbname)
                    .env("PGPASSWORD", pg.password.clone().unwrap_or_default());
                c.arg("-t").arg("prod").args(args);
            }
        }
        c
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Out {
        let o = self.command(dir, args).output().expect("run sluice");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn target(&self) -> TargetConfig {
        match self {
            Engine::DuckDb { db } => serde_json::from_value(serde_json::json!({
                "type": "duckdb", "path": db.path().join("warehouse.duckdb").display().to_string(), "schema": "main"
            }))
            .expect("duckdb target"),
            Engine::Postgres { pg } => pg.target("public"),
        }
    }

    fn execute(&self, dir: &Path, sql: &str) {
        let w = warehouse::open(&self.target(), dir).expect("open warehouse");
        let mut conn = w.connect().expect("connect");
        conn.execute(sql).expect("execute");
    }

    fn query(&self, dir: &Path, sql: &str) -> Vec<Vec<Value>> {
        let w = warehouse::open(&self.target(), dir).expect("open warehouse");
        let mut conn = w.connect().expect("connect");
        conn.query(sql).expect("query").rows
    }
}

fn load_raw_twitter(engine: &Engine, dir: &Path) {
    let sql = std::fs::read_to_string(repo_root().join("tests/fixtures/raw_twitter.sql"))
        .expect("raw sql");
    engine.execute(dir, &sql);
}

fn read_manifest(root: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root.join("target/manifest.json")).expect("manifest"),
    )
    .expect("manifest json")
}

fn assert_ok(out: &Out, what: &str) {
    assert_eq!(out.code, 0, "{what} failed:\n{}", out.stderr);
}

/// The example project from an empty database; returns the mart's rows.
fn example_builds(engine: &Engine) -> Vec<Vec<Value>> {
    let dir = example_project();
    load_raw_twitter(engine, dir.path());
    let out = engine.run(dir.path(), &["build"]);
    assert_ok(&out, "build");
    // dbt-core 1.12 gives PASS=56 WARN=1 TOTAL=57 on the same data (one author
    // missing from the users list); sluice's build has one more step first:
    // extracting and staging the `twitter` source (replaying the sample).
    assert!(
        out.stderr
            .contains("Done. PASS=57 WARN=1 ERROR=0 SKIP=0 TOTAL=58"),
        "{}",
        out.stderr
    );
    let run_results: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("run_results"),
    )
    .expect("json");
    assert_eq!(run_results["results"].as_array().map(Vec::len), Some(58));
    assert!(
        run_results["results"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["unique_id"] == "source.twitter_analytics.twitter"
                && r["status"] == "success"),
        "{run_results}"
    );
    let rows = engine.query(
        dir.path(),
        "select cast(bucket_start as varchar), tweets, distinct_authors, running_tweets, running_distinct_authors from analytics.tweets_per_10_minutes order by 1",
    );
    assert!(rows.len() > 10, "expected 10-minute buckets, got {rows:?}");
    // Rebuilding changes nothing.
    let again = engine.run(dir.path(), &["build", "-q"]);
    assert_ok(&again, "second build");
    let rows_again = engine.query(
        dir.path(),
        "select cast(bucket_start as varchar), tweets, distinct_authors, running_tweets, running_distinct_authors from analytics.tweets_per_10_minutes order by 1",
    );
    assert_eq!(rows, rows_again);
    rows
}

#[test]
fn example_project_builds_on_postgres_and_matches_duckdb() {
    let pg = Engine::postgres();
    let pg_rows = example_builds(&pg);
    #[cfg(feature = "duckdb")]
    {
        let duck = Engine::duckdb();
        let duck_rows = example_builds(&duck);
        let norm = |rows: Vec<Vec<Value>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| {
                            v.as_str()
                                .map(|s| s.trim_end_matches(".000").to_string())
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            norm(pg_rows),
            norm(duck_rows),
            "the datamart differs between engines"
        );
    }
    #[cfg(not(feature = "duckdb"))]
    drop(pg_rows);
}

fn jaffle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&repo_root().join("tests/fixtures/jaffle"), dir.path());
    dir
}

fn jaffle_builds_and_rebuilds(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let out = engine.run(dir.path(), &["build"]);
    assert_ok(&out, "build");
    assert!(
        out.stderr
            .contains("Done. PASS=21 WARN=0 ERROR=0 SKIP=0 TOTAL=21"),
        "{}",
        out.stderr
    );
    let q = format!("select customer_id, number_of_orders, cast(customer_lifetime_value as double precision) from {schema}.customers order by 1");
    let first = engine.query(dir.path(), &q);
    assert_eq!(first.len(), 6);
    assert_eq!(first[0][1], Value::from(2));
    // The ephemeral model is inlined, never built.
    let eph = engine.query(dir.path(), &format!("select count(*) from information_schema.tables where table_schema = '{schema}' and table_name = 'stg_payments'"));
    assert_eq!(eph[0][0], Value::from(0));
    // Idempotent rebuild, incremental run included: no duplicates.
    assert_ok(&engine.run(dir.path(), &["build", "-q"]), "second build");
    assert_eq!(engine.query(dir.path(), &q), first);
    let dupes = engine.query(
        dir.path(),
        &format!("select count(*) - count(distinct order_id) from {schema}.order_events"),
    );
    assert_eq!(dupes[0][0], Value::from(0));

    // A failing error-severity test skips what depends on the tested model,
    // and the unrelated branch still builds.
    std::fs::write(
        dir.path().join("seeds/raw_orders.csv"),
        "id,user_id,order_date,status\n1,1,2018-01-01,lost\n2,3,2018-01-02,completed\n",
    )
    .expect("write seed");
    let out = engine.run(dir.path(), &["build"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("FAIL 1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("SKIP sql table model"),
        "{}",
        out.stderr
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("run_results"),
    )
    .expect("json");
    let status = |id: &str| {
        results["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["unique_id"] == id))
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("model.jaffle.customers"), "skipped");
    assert_eq!(status("model.jaffle.stg_customers"), "success");

    // A model with broken SQL fails, names the compiled file, and the previous table survives.
    std::fs::write(
        dir.path().join("models/marts/customers.sql"),
        "select customer_id from nowhere_at_all",
    )
    .expect("write");
    let out = engine.run(dir.path(), &["run", "-s", "customers"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("target/run/jaffle/models/marts/customers.sql"),
        "{}",
        out.stderr
    );
    assert_eq!(
        engine.query(dir.path(), &q),
        first,
        "the old customers table must be intact"
    );
}

#[test]
fn jaffle_fixture_builds_on_postgres() {
    jaffle_builds_and_rebuilds(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn jaffle_fixture_builds_on_duckdb() {
    jaffle_builds_and_rebuilds(&Engine::duckdb(), "main");
}

#[cfg(feature = "duckdb")]
#[test]
fn example_project_compiles_and_runs_on_default_duckdb_target() {
    let duck = Engine::duckdb();
    let dir = example_project();
    load_raw_twitter(&duck, dir.path());
    let out = duck.run(
        dir.path(),
        &["run", "-s", "+tweets_per_10_minutes", "--threads", "2"],
    );
    assert_ok(&out, "run");
    assert!(
        out.stderr
            .contains("Done. PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2"),
        "{}",
        out.stderr
    );
}

#[test]
fn fail_fast_stops_after_the_first_failure() {
    let pg = Engine::postgres();
    let dir = jaffle();
    std::fs::write(
        dir.path().join("models/staging/stg_orders.sql"),
        "select nope from nowhere",
    )
    .expect("write");
    let out = pg.run(dir.path(), &["build", "--fail-fast", "--threads", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The summary names the model's own file, not the YAML describing it.
    assert!(
        out.stderr
            .contains("ERROR stg_orders (models/staging/stg_orders.sql)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("skipped") || out.stderr.contains("SKIP"),
        "{}",
        out.stderr
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("run_results"),
    )
    .expect("json");
    let arr = results["results"].as_array().cloned().unwrap_or_default();
    let errors = arr.iter().filter(|r| r["status"] == "error").count();
    assert_eq!(errors, 1, "{results}");
    assert!(
        arr.iter().any(|r| r["message"] == "skipped: --fail-fast"),
        "{results}"
    );
}

#[test]
fn debug_masks_the_password_and_reports_the_server() {
    let pg = Engine::postgres();
    let dir = jaffle();
    let mut c = pg.command(dir.path(), &["debug"]);
    c.env("PGPASSWORD", "s3cret-do-not-print");
    let o = c.output().expect("run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("connection: OK (PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("s3cret-do-not-print"), "{stderr}");
}

#[test]
fn docs_generate_writes_catalog_lineage_and_site_after_build() {
    let pg = Engine::postgres();
    let dir = example_project();
    assert_ok(&pg.run(dir.path(), &["build", "-q"]), "build");
    let out = pg.run(dir.path(), &["docs", "generate"]);
    assert_ok(&out, "docs generate");
    let read = |f: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("target").join(f)).expect("artifact"),
        )
        .expect("json")
    };
    let catalog = read("catalog.json");
    assert_eq!(
        catalog["nodes"]["model.twitter_analytics.tweets_per_10_minutes"]["columns"]["tweets"]
            ["type"],
        "bigint"
    );
    assert!(
        catalog["sources"]["source.twitter_analytics.twitter.tweets"]["columns"]["author_id"]
            .is_object()
    );
    // Column lineage goes from the mart through the intermediate model to the raw source.
    let lineage = read("lineage.json");
    assert_eq!(
        lineage["model.twitter_analytics.tweets_per_10_minutes"]["distinct_authors"]["upstream"],
        serde_json::json!([{"node": "model.twitter_analytics.int_tweets", "column": "author_id"}])
    );
    let from_source = &lineage["model.twitter_analytics.int_tweets"]["author_id"]["upstream"];
    assert_eq!(
        from_source[0]["node"], "source.twitter_analytics.twitter.tweets",
        "{from_source}"
    );
    let html = std::fs::read_to_string(dir.path().join("target/index.html")).expect("site");
    assert!(html.contains("sluice-data"));
    assert!(
        !html.contains("<script src=\"http"),
        "the site must be self-contained"
    );
}

/// A project with one slow model on the harness's PostgreSQL.
fn slow_project(pg: &PgServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("tests/fixtures/bad/unknown_selector"),
        dir.path(),
    );
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "bad:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: {}\n      port: {}\n      user: {}\n      dbname: {}\n      schema: s\n",
            pg.host, pg.port, pg.user, pg.dbname
        ),
    )
    .expect("profiles");
    std::fs::write(
        dir.path().join("models/slow.sql"),
        "{{ config(materialized='table') }}\nselect 1 as id from (select pg_sleep(20)) as s",
    )
    .expect("model");
    dir
}

/// `sluice run -s slow` in `dir`, given time to get its query running.
fn start_slow_run(dir: &Path) -> std::process::Child {
    let child = sluice()
        .current_dir(dir)
        .args(["run", "-s", "slow"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child
}

fn table_exists(pg: &PgServer, dir: &Path, name: &str) -> bool {
    let target = pg.target("s");
    let w = warehouse::open(&target, dir).expect("open");
    let rows = w
        .connect()
        .expect("connect")
        .query(&format!(
            "select count(*) from information_schema.tables where table_name like '{name}%'"
        ))
        .expect("query")
        .rows;
    rows[0][0] != 0
}

#[test]
fn ctrl_c_cancels_the_running_query_and_leaves_no_half_built_relation() {
    let pg = PgServer::start();
    let dir = slow_project(&pg);
    let child = start_slow_run(dir.path());
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed().as_secs() < 10,
        "cancellation took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Cancelling"), "{stderr}");
    assert!(
        !table_exists(&pg, dir.path(), "slow"),
        "no relation may be left behind"
    );
}

#[test]
fn a_dropped_connection_is_a_clear_error_and_a_failure() {
    let pg = PgServer::start();
    let dir = slow_project(&pg);
    let child = start_slow_run(dir.path());
    let target = pg.target("s");
    let w = warehouse::open(&target, dir.path()).expect("open");
    w.connect()
        .expect("connect")
        .query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sluice' and pid <> pg_backend_pid() and query like '%pg_sleep%'")
        .expect("terminate");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connection"),
        "the error must say the connection was lost: {stderr}"
    );
    assert!(stderr.contains("ERROR=1"), "{stderr}");
}

/// A project's own `{% materialization %}`: a model `materialized` with a
/// name sluice does not build itself runs the macro dbt would pick (the
/// engine's `adapter=` version over `default`), with `sql`, `this`,
/// `pre_hooks`/`post_hooks` (through `run_hooks`) and `statement('main')`
/// as dbt gives them, and rebuilds over its previous relation. A name no
/// macro defines is an error naming it.
fn custom_materializations_build(engine: &Engine, schema: &str, adapter: &str) {
    let dir = jaffle();
    let root = dir.path();
    std::fs::create_dir_all(root.join("macros/materializations")).expect("mkdir");
    std::fs::write(
        root.join("macros/materializations/custom.sql"),
        format!(
            "{{% materialization logged_table, default %}}\n\
             {{%- set target_relation = this.incorporate(type='table') -%}}\n\
             {{%- set existing = load_cached_relation(this) -%}}\n\
             {{%- set tmp = make_intermediate_relation(target_relation) -%}}\n\
             {{{{ run_hooks(pre_hooks) }}}}\n\
             {{% call statement('main') -%}}\n\
             {{{{ create_table_as(False, tmp, sql) }}}}\n\
             {{%- endcall %}}\n\
             {{{{ drop_relation_if_exists(existing) }}}}\n\
             {{{{ adapter.rename_relation(tmp, target_relation) }}}}\n\
             {{{{ run_hooks(post_hooks) }}}}\n\
             {{{{ return({{'relations': [target_relation]}}) }}}}\n\
             {{% endmaterialization %}}\n\
             {{% materialization picked, default %}}\n\
             {{% call statement('main') %}}create or replace view {{{{ this }}}} as select 'default' as picked{{% endcall %}}\n\
             {{{{ return({{'relations': [this]}}) }}}}\n\
             {{% endmaterialization %}}\n\
             {{% materialization picked, adapter='{adapter}' %}}\n\
             {{% call statement('main') %}}create or replace view {{{{ this }}}} as select 'adapter' as picked{{% endcall %}}\n\
             {{{{ return({{'relations': [this]}}) }}}}\n\
             {{% endmaterialization %}}\n"
        ),
    )
    .expect("write materializations");
    std::fs::write(
        root.join("models/logged.sql"),
        "{{ config(materialized='logged_table', pre_hook=\"select 1\", post_hook=\"insert into {{ this }} values (99)\") }}\nselect 1 as id\n",
    )
    .expect("write model");
    std::fs::write(
        root.join("models/picked_model.sql"),
        "{{ config(materialized='picked') }}\nselect 1 as x\n",
    )
    .expect("write model");
    for round in 1..=2 {
        let out = engine.run(root, &["run", "-s", "logged", "picked_model"]);
        assert_ok(&out, &format!("run {round}"));
        assert_eq!(
            engine.query(root, &format!("select id from {schema}.logged order by id")),
            vec![vec![Value::from(1)], vec![Value::from(99)]],
            "round {round}"
        );
    }
    assert_eq!(
        engine.query(root, &format!("select picked from {schema}.picked_model")),
        vec![vec![Value::from("adapter")]]
    );
    std::fs::write(
        root.join("models/picked_model.sql"),
        "{{ config(materialized='no_such_thing') }}\nselect 1 as x\n",
    )
    .expect("write model");
    let out = engine.run(root, &["run", "-s", "picked_model"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("unknown materialization 'no_such_thing'")
            && said.contains("models/picked_model.sql"),
        "{said}"
    );
}

#[test]
fn custom_materializations_build_on_postgres() {
    custom_materializations_build(&Engine::postgres(), "jaffle", "postgres");
}

#[cfg(feature = "duckdb")]
#[test]
fn custom_materializations_build_on_duckdb() {
    custom_materializations_build(&Engine::duckdb(), "main", "duckdb");
}

/// dbt's cross-database macros (`dbt.datediff(…)`, or bare `datediff(…)`),
/// built and queried on a real warehouse: each engine gets the SQL dbt's
/// adapter for it generates, so the answers are the same on both.
fn cross_database_macros_answer(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    std::fs::write(
        root.join("models/cross_db.sql"),
        r#"select
  cast({{ dbt.datediff("cast('2024-01-01' as date)", "cast('2024-03-15' as date)", 'day') }} as integer) as days,
  cast({{ datediff("cast('2024-01-01' as date)", "cast('2024-03-15' as date)", 'month') }} as integer) as months,
  cast({{ datediff("cast('2024-01-01' as date)", "cast('2024-01-15' as date)", 'week') }} as integer) as weeks,
  cast({{ dbt.dateadd('day', 3, "cast('2024-01-30' as date)") }} as date) as plus_three,
  cast({{ dbt.date_trunc('month', "cast('2024-02-17' as date)") }} as date) as month_start,
  {{ dbt.last_day("cast('2024-02-10' as date)", 'month') }} as february_end,
  {{ dbt.last_day("cast('2024-02-10' as date)", 'quarter') }} as quarter_end,
  {{ dbt.date(2024, 2, 9) }} as made_date,
  {{ dbt.split_part("'a,b,c'", "','", 2) }} as second_part,
  {{ dbt.concat(["'x'", "'y'"]) }} as xy,
  {{ dbt.length("'abcd'") }} as len,
  {{ dbt.position("'c'", "'abcd'") }} as pos,
  {{ dbt.right("'abcd'", 2) }} as last_two,
  {{ dbt.replace("'abcd'", "'b'", "'B'") }} as replaced,
  {{ dbt.hash("'a'") }} as md5_of_a,
  {{ dbt.safe_cast("'7'", dbt.type_int()) }} as seven,
  cast('1.5' as {{ type_numeric() }}) as one_and_a_half,
  {{ dbt.cast_bool_to_text('true') }} as true_text,
  {{ dbt.string_literal("it" ~ dbt.escape_single_quotes("'s")) }} as quoted,
  {{ dbt.current_timestamp() }} is not null as has_now
"#,
    )
    .expect("write model");
    std::fs::write(
        root.join("models/cross_db_agg.sql"),
        "select {{ dbt.listagg('v', \"'|'\", 'order by v') }} as joined,\n  \
         {{ any_value('v') }} is not null as has_any,\n  \
         {{ dbt.bool_or(\"v = 'b'\") }} as has_b\n\
         from (select 'a' as v union all select 'c' union all select 'b') as t\n",
    )
    .expect("write model");
    let out = engine.run(root, &["run", "-s", "cross_db cross_db_agg"]);
    assert_ok(&out, "run");
    let rows = engine.query(
        root,
        &format!(
            "select days, months, weeks, cast(plus_three as varchar), \
             cast(month_start as varchar), cast(february_end as varchar), cast(quarter_end as varchar), \
             cast(made_date as varchar), second_part, xy, cast(len as integer), cast(pos as integer), \
             last_two, replaced, md5_of_a, seven, cast(one_and_a_half as varchar), true_text, quoted, has_now \
             from {schema}.cross_db"
        ),
    );
    let expected = serde_json::json!([[
        74,
        2,
        2,
        "2024-02-02",
        "2024-02-01",
        "2024-02-29",
        "2024-03-31",
        "2024-02-09",
        "b",
        "xy",
        4,
        3,
        "cd",
        "aBcd",
        "0cc175b9c0f1b6a831c399e269772661",
        7,
        "1.500000",
        "true",
        "it's",
        true
    ]]);
    assert_eq!(serde_json::json!(rows), expected);
    let agg = engine.query(
        root,
        &format!("select joined, has_any, has_b from {schema}.cross_db_agg"),
    );
    assert_eq!(
        serde_json::json!(agg),
        serde_json::json!([["a|b|c", true, true]])
    );
    // The SQL is the adapter's own: PostgreSQL has no any_value before 16.
    // (`run` writes the compiled SQL where dbt does.)
    let compiled =
        std::fs::read_to_string(root.join("target/compiled/jaffle/models/cross_db_agg.sql"))
            .expect("compiled sql");
    let any_value = match engine {
        Engine::Postgres { .. } => "min(v)",
        Engine::DuckDb { .. } => "arbitrary(v)",
    };
    assert!(compiled.contains(any_value), "{compiled}");
}

#[test]
fn cross_database_macros_run_on_postgres() {
    cross_database_macros_answer(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn cross_database_macros_run_on_duckdb() {
    cross_database_macros_answer(&Engine::duckdb(), "main");
}

/// `run` writes each node's SQL to `target/compiled/…` (where its errors
/// point) and `target/run/…`; for a model rendered again at run time
/// (here from a query's answer) that is the SQL that ran.
#[cfg(feature = "duckdb")]
#[test]
fn run_writes_the_sql_that_ran() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    std::fs::write(
        root.join("models/answer.sql"),
        "{% if execute %}{% set r = run_query('select 41 + 1 as v') %}{% set v = r.rows[0][0] %}\
         {% else %}{% set v = 0 %}{% endif %}select {{ v }} as answer\n",
    )
    .expect("write model");
    // `compile` connects, as dbt's does, to render it as it will run.
    assert_ok(&duck.run(root, &["compile", "-s", "answer"]), "compile");
    let compiled = std::fs::read_to_string(root.join("target/compiled/jaffle/models/answer.sql"))
        .expect("compiled");
    assert_eq!(compiled.trim(), "select 42 as answer");
    std::fs::remove_dir_all(root.join("target")).expect("rm target");
    assert_ok(&duck.run(root, &["run", "-s", "answer"]), "run");
    for dir in ["compiled", "run"] {
        let path = root.join(format!("target/{dir}/jaffle/models/answer.sql"));
        let sql =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sql.trim(), "select 42 as answer", "{}", path.display());
    }
    assert_eq!(
        duck.query(root, "select answer from main.answer"),
        vec![vec![Value::from(42)]]
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("target/run_results.json")).expect("run results"),
    )
    .expect("json");
    assert_eq!(
        results["results"][0]["compiled_code"]
            .as_str()
            .map(str::trim),
        Some("select 42 as answer")
    );
}

/// dbt's `graph` holds the project's nodes and sources when executing.
#[cfg(feature = "duckdb")]
#[test]
fn graph_holds_the_projects_nodes_when_executing() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    std::fs::write(
        root.join("models/model_census.sql"),
        "{% set names = [] %}{% if execute %}\
         {% for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') %}\
         {% do names.append(node.name) %}{% endfor %}{% endif %}\
         {% set meta = {} %}{% if execute %}{% set meta = graph.nodes['model.jaffle.customers'].config.meta %}\
         {% do meta.update({'touched': 'yes'}) %}{% endif %}\
         select {{ names | length }} as models, '{{ names | sort | join(',') }}' as names, \
         {{ graph.sources.values() | list | length }} as sources, \
         '{{ graph.nodes['model.jaffle.customers'].config.meta.touched if execute }}' as touched\n",
    )
    .expect("write model");
    let listed = duck.run(
        root,
        &["ls", "--resource-type", "model", "--output", "name"],
    );
    assert_ok(&listed, "ls");
    let mut models: Vec<&str> = listed
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    models.sort();
    assert!(models.len() > 3, "{models:?}");
    assert_ok(&duck.run(root, &["run", "-s", "model_census"]), "run");
    let rows = duck.query(
        root,
        "select models, names, sources, touched from main.model_census",
    );
    // The graph's dicts change in place, as Python's do.
    assert_eq!(
        rows,
        vec![vec![
            Value::from(models.len()),
            Value::from(models.join(",")),
            Value::from(0),
            Value::from("yes")
        ]]
    );
}

/// What packages that walk dbt's `graph` (dbt-project-evaluator) and tools
/// that read the manifest rely on: exposures and unit tests in their own
/// sections of `graph` (not under `nodes`), the empty `metrics`/`groups`
/// sections, every model carrying `time_spine`, `contract`, `docs` even
/// when unset (so `rejectattr('time_spine', 'none')` keeps only the time
/// spine), `depends_on.macros` naming the package that defines each macro,
/// `parse` writing no compiled code (as `dbt parse`) while `compile` does,
/// and `thread_id` naming the worker.
#[cfg(feature = "duckdb")]
#[test]
fn graph_and_manifest_carry_dbts_sections_and_node_keys() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    std::fs::write(
        root.join("models/extra.yml"),
        "version: 2\nmodels:\n  - name: all_days\n    time_spine:\n      standard_granularity_column: date_day\n    columns:\n      - name: date_day\n        granularity: day\n\nexposures:\n  - name: weekly_report\n    type: dashboard\n    owner: {name: Ana, email: ana@example.com}\n    depends_on:\n      - ref('customers')\n      - ref('orders')\n\nsources:\n  - name: raw\n    tables:\n      - name: payments\n",
    )
    .expect("write yaml");
    std::fs::write(
        root.join("models/all_days.sql"),
        "select cast('2024-01-01' as date) as date_day\n",
    )
    .expect("write spine");
    std::fs::write(
        root.join("models/graph_census.sql"),
        "{% set spines = [] %}{% set parents = [] %}{% if execute %}\
         {% set spines = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') \
            | rejectattr('time_spine', 'none') | map(attribute='name') | list %}\
         {% for e in graph.exposures.values() %}{% for p in e.depends_on.nodes %}{% do parents.append(p) %}{% endfor %}{% endfor %}\
         {% endif %}\
         select '{{ spines | join(',') }}' as spines, '{{ parents | sort | join(',') }}' as exposure_parents, \
         {{ (graph.metrics | length) if execute else -1 }} as metrics, \
         {{ (graph.nodes.values() | selectattr('resource_type', 'equalto', 'exposure') | list | length) if execute else -1 }} as exposures_in_nodes, \
         '{{ thread_id }}' as thread\n",
    )
    .expect("write model");

    // dbt's `depends_on.macros`: the macros a template calls itself, not
    // what those macros call (dispatch targets, helpers).
    std::fs::write(
        root.join("macros/outer.sql"),
        "{% macro outer() %}{{ cents_to_dollars('1') }}{% endmacro %}\n\
         {% macro hook_macro() %}{% endmacro %}\n",
    )
    .expect("write macro");
    std::fs::write(
        root.join("models/nested_macros.sql"),
        "{{ config(post_hook=\"{{ hook_macro() }}\") }}\n\
         select {{ outer() }} as a, {{ dbt.dateadd('day', 1, \"cast('2024-01-01' as date)\") }} as b\n",
    )
    .expect("write model");
    assert_ok(&duck.run(root, &["parse"]), "parse");
    let manifest = read_manifest(root);
    let nodes = manifest["nodes"].as_object().expect("nodes");
    for (id, n) in nodes {
        assert!(n["compiled_code"].is_null(), "{id} compiled by parse");
    }
    let customers = &nodes["model.jaffle.customers"];
    for key in ["time_spine", "contract", "docs", "group", "access"] {
        assert!(
            customers.get(key).is_some(),
            "models carry `{key}`: {customers}"
        );
    }
    assert!(customers["time_spine"].is_null());
    assert_eq!(customers["contract"]["enforced"], false);
    assert_eq!(
        nodes["model.jaffle.all_days"]["time_spine"]["standard_granularity_column"],
        "date_day"
    );
    let macros_of = |id: &str| -> Vec<String> {
        nodes[id]["depends_on"]["macros"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        macros_of("model.jaffle.stg_payments")
            .contains(&"macro.jaffle.cents_to_dollars".to_string()),
        "{:?}",
        macros_of("model.jaffle.stg_payments")
    );
    let not_null = nodes
        .keys()
        .find(|id| id.starts_with("test.jaffle.not_null_customers_customer_id"))
        .expect("not_null test");
    assert!(
        macros_of(not_null).contains(&"macro.dbt.test_not_null".to_string()),
        "{:?}",
        macros_of(not_null)
    );
    assert!(manifest["exposures"]["exposure.jaffle.weekly_report"].is_object());
    assert_eq!(
        macros_of("model.jaffle.nested_macros"),
        // (A hook's macros count too: dbt renders hooks at parse.)
        [
            "macro.jaffle.outer",
            "macro.dbt.dateadd",
            "macro.jaffle.hook_macro"
        ]
    );
    // A generic test depends on its test macro alone, as dbt parses it.
    assert_eq!(macros_of(not_null), ["macro.dbt.test_not_null"]);
    // Each resource type has dbt's keys: a source no alias or code.
    let source = manifest["sources"]
        .as_object()
        .and_then(|m| m.values().next())
        .expect("a source");
    assert!(
        source.get("alias").is_none() && source.get("raw_code").is_none(),
        "{source}"
    );
    assert_eq!(
        nodes["model.jaffle.customers"]["extra_ctes"],
        serde_json::json!([])
    );
    // A generic test's path is its compiled name, its refs in dbt's order
    // (the arguments', then the tested model's); a seed depends on no node.
    let (rel_id, rel) = nodes
        .iter()
        .find(|(id, _)| id.starts_with("test.jaffle.relationships_orders_customer_id"))
        .expect("relationships test");
    assert_eq!(
        rel["path"].as_str(),
        Some(format!("{}.sql", rel["name"].as_str().unwrap_or_default()).as_str()),
        "{rel_id}"
    );
    let ref_names: Vec<&str> = rel["refs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(ref_names, ["customers", "orders"]);
    assert_eq!(
        nodes["seed.jaffle.raw_payments"]["depends_on"],
        serde_json::json!({"macros": []})
    );
    // Configs carry the keys dbt's config classes always have.
    let config = &nodes["model.jaffle.customers"]["config"];
    assert_eq!(config["full_refresh"], serde_json::Value::Null);
    assert_eq!(config["on_schema_change"], "ignore");
    assert_eq!(config["post-hook"], serde_json::json!([]));
    assert_eq!(config["access"], "protected");
    let config = &nodes[not_null]["config"];
    assert_eq!(config["severity"], "ERROR");
    assert_eq!(config["fail_calc"], "count(*)");
    assert!(config.get("full_refresh").is_none(), "{config}");

    assert_ok(&duck.run(root, &["compile"]), "compile");
    let manifest = read_manifest(root);
    assert!(
        manifest["nodes"]["model.jaffle.customers"]["compiled_code"]
            .as_str()
            .is_some_and(|c| c.contains("stg_orders")),
        "compile writes compiled code"
    );

    assert_ok(&duck.run(root, &["seed"]), "seed");
    assert_ok(&duck.run(root, &["run", "-s", "+graph_census"]), "run");
    let rows = duck.query(
        root,
        "select spines, exposure_parents, metrics, exposures_in_nodes, thread from main.graph_census",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][..4],
        [
            Value::from("all_days"),
            Value::from("model.jaffle.customers,model.jaffle.orders"),
            Value::from(0),
            Value::from(0)
        ]
    );
    // dbt's `thread_id`: the worker's name (elementary keys state by it).
    let thread = rows[0][4].as_str().unwrap_or_default();
    assert!(
        thread.starts_with("Thread-") && thread.ends_with(" (worker)"),
        "{thread}"
    );
}

/// dbt snapshots on a real warehouse: the first `snapshot` copies the
/// source with dbt's four columns; after the source changes, `build` (which
/// runs snapshots in DAG order, then what refs them and their tests) closes
/// changed rows' versions and adds new ones — `timestamp` by `updated_at`,
/// `check` by the checked columns, with `hard_deletes: invalidate` closing a
/// deleted key — and an unchanged source adds nothing.
fn snapshots_keep_history(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    engine.execute(
        root,
        "create schema if not exists raw; \
         create table raw.customers_raw (id integer, status varchar(20), updated_at timestamp); \
         insert into raw.customers_raw values (1, 'new', '2024-01-01 00:00:00'), (2, 'new', '2024-01-01 00:00:00')",
    );
    std::fs::create_dir_all(root.join("snapshots")).expect("mkdir");
    std::fs::write(
        root.join("snapshots/customers.sql"),
        "{% snapshot customers_ts %}\n\
         {{ config(target_schema='snap', unique_key='id', strategy='timestamp', updated_at='updated_at') }}\n\
         select * from raw.customers_raw\n\
         {% endsnapshot %}\n\n\
         {% snapshot customers_check %}\n\
         {{ config(unique_key=['id'], strategy='check', check_cols=['status'], hard_deletes='invalidate') }}\n\
         select id, status from raw.customers_raw\n\
         {% endsnapshot %}\n\n\
         {% snapshot customers_nr %}\n\
         {{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='new_record') }}\n\
         select * from raw.customers_raw\n\
         {% endsnapshot %}\n",
    )
    .expect("write snapshot");
    std::fs::write(
        root.join("snapshots/snapshots.yml"),
        "snapshots:\n  - name: customers_ts\n    columns:\n      - name: dbt_scd_id\n        data_tests: [unique, not_null]\n",
    )
    .expect("write yml");
    std::fs::write(
        root.join("models/current_customers.sql"),
        "select id, status from {{ ref('customers_ts') }} where dbt_valid_to is null\n",
    )
    .expect("write model");
    let count = |table: &str, filter: &str| -> i64 {
        let q = format!("select count(*) from {table} where {filter}");
        engine.query(root, &q)[0][0].as_i64().expect("count")
    };
    let ts = "snap.customers_ts";
    let check = format!("{schema}.customers_check");
    let nr = format!("{schema}.customers_nr");

    let out = engine.run(root, &["snapshot"]);
    assert_ok(&out, "snapshot");
    assert!(
        out.stderr.contains("snapshot snap.customers_ts"),
        "{}",
        out.stderr
    );
    assert_eq!(count(ts, "dbt_valid_to is null"), 2);
    assert_eq!(count(&check, "dbt_valid_to is null"), 2);
    let first = engine.query(
        root,
        &format!("select cast(dbt_valid_from as varchar), cast(dbt_updated_at as varchar), dbt_scd_id from {ts} where id = 1"),
    );
    assert_eq!(first[0][0], Value::from("2024-01-01 00:00:00"));
    assert_eq!(first[0][1], Value::from("2024-01-01 00:00:00"));
    // dbt's scd id: md5 of the key and the change time, `|`-joined.
    let expected_id = engine.query(
        root,
        "select md5(coalesce(cast(1 as varchar), '') || '|' || coalesce(cast(cast('2024-01-01 00:00:00' as timestamp) as varchar), ''))",
    );
    assert_eq!(first[0][2], expected_id[0][0]);

    engine.execute(
        root,
        "update raw.customers_raw set status = 'active', updated_at = '2024-02-01 00:00:00' where id = 1; \
         delete from raw.customers_raw where id = 2; \
         insert into raw.customers_raw values (3, 'new', '2024-02-02 00:00:00')",
    );
    let out = engine.run(root, &["build"]);
    assert_ok(&out, "build");
    // timestamp, deletes ignored: id 1 has two versions, 2 stays current.
    assert_eq!(count(ts, "true"), 4);
    assert_eq!(count(ts, "dbt_valid_to is null"), 3);
    let closed = engine.query(
        root,
        &format!("select cast(dbt_valid_to as varchar) from {ts} where id = 1 and status = 'new'"),
    );
    assert_eq!(closed[0][0], Value::from("2024-02-01 00:00:00"));
    // check + invalidate: id 2's version is closed, id 1 re-versioned, 3 new.
    assert_eq!(count(&check, "true"), 4);
    assert_eq!(count(&check, "dbt_valid_to is null"), 2);
    assert_eq!(count(&check, "id = 2 and dbt_valid_to is not null"), 1);
    // new_record: the deleted key's version is closed and a current
    // "deleted" version added.
    assert_eq!(count(&nr, "true"), 5);
    assert_eq!(count(&nr, "dbt_valid_to is null"), 3);
    assert_eq!(
        count(
            &nr,
            "id = 2 and dbt_is_deleted = 'True' and dbt_valid_to is null"
        ),
        1
    );
    assert_eq!(count(&nr, "dbt_is_deleted = 'False'"), 4);
    // What refs a snapshot is built after it, and its tests ran.
    assert_eq!(count(&format!("{schema}.current_customers"), "true"), 3);
    assert!(
        out.stderr.contains("unique_customers_ts_dbt_scd_id"),
        "{}",
        out.stderr
    );

    // Nothing changed: nothing added.
    assert_ok(&engine.run(root, &["snapshot"]), "snapshot again");
    assert_eq!(count(ts, "true"), 4);
    assert_eq!(count(&check, "true"), 4);
    assert_eq!(count(&nr, "true"), 5);

    // A snapshot without its settings fails with what is missing, and the
    // table it would have built is not created.
    std::fs::write(
        root.join("snapshots/broken.sql"),
        "{% snapshot broken %}\n{{ config(strategy='timestamp', updated_at='updated_at') }}\nselect 1 as id, now() as updated_at\n{% endsnapshot %}\n",
    )
    .expect("write snapshot");
    let out = engine.run(root, &["snapshot", "-s", "broken"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("needs `unique_key`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("snapshots/broken.sql:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn snapshots_keep_history_on_postgres() {
    snapshots_keep_history(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn snapshots_keep_history_on_duckdb() {
    snapshots_keep_history(&Engine::duckdb(), "main");
}

/// dbt unit tests: `given` rows stand in for a model's inputs (dict and
/// csv fixtures, columns left out are null), the model's output is compared
/// with `expect` as a multiset; `build` runs a unit test after the model's
/// inputs and before the model, which a failing unit test skips; `test`
/// runs them too, and a failure shows the rows that differ.
fn unit_tests_check_a_model(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    let given = "    given:\n      - input: ref('stg_customers')\n        rows:\n          - {customer_id: 1, first_name: Ann}\n          - {customer_id: 2, first_name: Bo}\n";
    std::fs::write(
        root.join("models/unit_tests.yml"),
        format!(
            "unit_tests:\n  - name: customers_count_and_sum\n    model: customers\n{given}\
             \x20     - input: ref('stg_orders')\n        format: csv\n        rows: |\n          order_id,customer_id,order_date\n          10,1,2024-01-02\n          11,1,2024-01-05\n\
             \x20     - input: ref('orders')\n        rows:\n          - {{order_id: 10, customer_id: 1, amount: 5}}\n          - {{order_id: 11, customer_id: 1, amount: 7}}\n\
             \x20   expect:\n      rows:\n        - {{customer_id: 2, number_of_orders: 0, customer_lifetime_value: null}}\n        - {{customer_id: 1, number_of_orders: 2, customer_lifetime_value: 12}}\n\
             \x20 - name: customers_wrong_on_purpose\n    model: customers\n    config:\n      tags: [wrong]\n{given}\
             \x20     - input: ref('stg_orders')\n        rows: []\n\
             \x20     - input: ref('orders')\n        rows: []\n\
             \x20   expect:\n      rows:\n        - {{customer_id: 1, number_of_orders: 5}}\n        - {{customer_id: 2, number_of_orders: 0}}\n"
        ),
    )
    .expect("write unit tests");

    // In the manifest's own section, selectable by type.
    let out = engine.run(root, &["ls", "--resource-type", "unit_test"]);
    assert_ok(&out, "ls");
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    let out = engine.run(root, &["build", "--exclude", "tag:wrong"]);
    assert_ok(&out, "build");
    let at = |text: &str, what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("no {what} in:\n{text}"))
    };
    let ut = at(
        &out.stderr,
        "PASS unit_test customers::customers_count_and_sum",
    );
    assert!(at(&out.stderr, &format!("model {schema}.stg_customers")) < ut);
    assert!(ut < at(&out.stderr, &format!("model {schema}.customers ")));
    let manifest = read_manifest(root);
    let entry = &manifest["unit_tests"]["unit_test.jaffle.customers.customers_count_and_sum"];
    assert_eq!(entry["model"], "customers");
    assert_eq!(entry["given"].as_array().map(Vec::len), Some(3));
    assert!(manifest["nodes"]
        .as_object()
        .expect("nodes")
        .keys()
        .all(|k| !k.starts_with("unit_test.")));

    // The wrong one fails with the rows that differ.
    let out = engine.run(root, &["test", "-s", "test_type:unit"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("PASS unit_test customers::customers_count_and_sum"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("FAIL unit_test customers::customers_wrong_on_purpose"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("+ | 1 | 5 |") && out.stderr.contains("- | 1 | 0 |"),
        "{}",
        out.stderr
    );

    // In a build, a failing unit test skips its model.
    let out = engine.run(root, &["build", "-s", "customers"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("SKIP sql table model {schema}.customers")),
        "{}",
        out.stderr
    );

    // A unit test of a model that does not exist is an error at its line.
    std::fs::write(
        root.join("models/more_unit_tests.yml"),
        "unit_tests:\n  - name: lost\n    model: custmers\n    given: []\n    expect:\n      rows: []\n",
    )
    .expect("write");
    let out = engine.run(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("models/more_unit_tests.yml:2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `customers`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn unit_tests_check_a_model_on_postgres() {
    unit_tests_check_a_model(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn unit_tests_check_a_model_on_duckdb() {
    unit_tests_check_a_model(&Engine::duckdb(), "main");
}

/// `show` previews a node's rows (or an inline query's) as a table or JSON;
/// `run-operation` calls a macro against the warehouse with `--args`.
#[cfg(feature = "duckdb")]
#[test]
fn show_previews_rows_and_run_operation_calls_a_macro() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    assert_ok(&duck.run(root, &["build"]), "build");

    let out = duck.run(root, &["show", "-s", "customers", "--limit", "2"]);
    assert_ok(&out, "show");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Previewing node 'customers':", "{}", out.stdout);
    assert!(
        lines[1].starts_with("| customer_id | first_name"),
        "{}",
        out.stdout
    );
    assert!(lines[2].starts_with("| ----------- |"), "{}", out.stdout);
    assert_eq!(lines.len(), 5, "{}", out.stdout);

    let out = duck.run(
        root,
        &[
            "show",
            "--inline",
            "select count(*) as n from {{ ref('customers') }}",
            "-o",
            "json",
        ],
    );
    assert_ok(&out, "show --inline");
    let shown: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        shown,
        serde_json::json!({"node": "inline", "show": [{"n": 6}]})
    );
    let out = duck.run(root, &["show"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("--select or --inline"),
        "{}",
        out.stderr
    );

    std::fs::write(
        root.join("macros/ops.sql"),
        "{% macro make_audit(table_name, rows=1) %}\n\
         {% do run_query('create table ' ~ target.schema ~ '.' ~ table_name ~ ' as select ' ~ rows ~ ' as n') %}\n\
         {% do log('created ' ~ table_name, info=True) %}\n\
         {% endmacro %}\n",
    )
    .expect("write macro");
    let out = duck.run(
        root,
        &[
            "run-operation",
            "make_audit",
            "--args",
            "{table_name: audit_x, rows: 3}",
        ],
    );
    assert_ok(&out, "run-operation");
    assert!(out.stdout.contains("created audit_x"), "{}", out.stdout);
    assert_eq!(
        duck.query(root, "select n from main.audit_x"),
        vec![vec![Value::from(3)]]
    );
    let out = duck.run(root, &["run-operation", "no_such_macro"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no_such_macro"), "{}", out.stderr);

    // Query results read like agate's: rows by position or by column name,
    // a statement's table iterated row by row.
    std::fs::write(
        root.join("macros/rows.sql"),
        "{% macro read_rows() %}\n\
         {% call statement('t', fetch_result=True) %}select 1 as id, 'a' as tag union all select 2, 'b' order by id{% endcall %}\n\
         {% set t = load_result('t')['table'] %}\n\
         {% set out = [] %}{% for row in t %}{% do out.append(row.tag ~ row['id'] ~ row[0]) %}{% endfor %}\n\
         {% do log('rows ' ~ out | join(',') ~ ' ' ~ (t | length) ~ ' ' ~ t.rows[1].get('tag') ~ ' ' ~ t.columns['tag'].values() | join('') ~ ' ' ~ t.rows[0].keys() | join('/') ~ ' ' ~ t.rename({'tag': 'label'}).column_names | join('/') ~ ' ' ~ tojson({'b': 1, 'a': 2}, sort_keys=true), info=True) %}\n\
         {% endmacro %}\n",
    )
    .expect("write macro");
    let out = duck.run(root, &["run-operation", "read_rows"]);
    assert_ok(&out, "run-operation read_rows");
    assert!(
        out.stdout
            .contains("rows a11,b22 2 b ab id/tag id/label {\"a\": 2, \"b\": 1}"),
        "{}",
        out.stdout
    );
}

/// Python-Jinja habits of real macro code (dbt_utils' among them), run on
/// DuckDB: a macro catching undeclared keyword and positional arguments in
/// `kwargs`/`varargs`, lists passed in or stored in a dict changed in place,
/// sets compared regardless of order, dbt's `Column` from
/// `adapter.get_columns_in_relation`, and agate's `table.columns.items()`.
#[cfg(feature = "duckdb")]
#[test]
fn macros_run_python_jinja_habits() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    std::fs::write(
        root.join("macros/habits.sql"),
        r#"{% macro describe(model, group_by=[]) %}
{%- set cols = group_by -%}
{%- do cols.append(kwargs.get('extra', 'none')) -%}
{%- set by_kind = {} -%}
{%- do by_kind.update({'all': []}) -%}
{%- do by_kind['all'].append(varargs | length) -%}
{{ return(cols | join('+') ~ '/' ~ by_kind['all'][0]) }}
{% endmacro %}
"#,
    )
    .expect("write macro");
    std::fs::write(
        root.join("models/habits.sql"),
        r#"{%- set described = describe('m', ['a'], 'x', 'y', extra='b') -%}
{%- set same = set(['p', 'q']) == set(['q', 'p', 'q']) -%}
{%- set kinds = [] -%}
{%- set totals = {} -%}
{%- if execute -%}
  {%- for c in adapter.get_columns_in_relation(ref('stg_customers')) -%}
    {%- do kinds.append(c.quoted ~ ':' ~ ('string' if c.is_string() else 'number' if c.is_number() else 'other')) -%}
  {%- endfor -%}
  {%- call statement('counts', fetch_result=True) -%}select 1 as one, 2 as two{%- endcall -%}
  {%- for name, column in load_result('counts').table.columns.items() -%}
    {%- do totals.update({name: column.values()[0]}) -%}
  {%- endfor -%}
{%- endif -%}
select '{{ described }}' as described, {{ same }} as same_set,
  '{{ kinds | join(",") | replace('"', '') }}' as kinds, {{ totals.get('two', 0) }} as two
-- depends_on: {{ ref('stg_customers') }}
"#,
    )
    .expect("write model");
    let out = duck.run(root, &["build", "-s", "+habits"]);
    assert_ok(&out, "build");
    assert_eq!(
        duck.query(
            root,
            "select described, same_set, kinds, two from main.habits"
        ),
        vec![vec![
            Value::from("a+b/2"),
            Value::from(true),
            Value::from("customer_id:number,first_name:string,last_name:string"),
            Value::from(2)
        ]]
    );
}

/// A seed's `pre-hook`s run before it loads and its `post-hook`s after,
/// rendered as they run (`this` is the seed, `adapter` calls work), as
/// dbt's seed materialization runs them.
#[cfg(feature = "duckdb")]
#[test]
fn seed_hooks_run_around_the_load() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    let project = std::fs::read_to_string(root.join("dbt_project.yml")).expect("read");
    let project = project.replace(
        "    raw_payments:\n",
        "    +pre-hook: \"create table if not exists main.seed_log (what varchar)\"\n    +post-hook:\n      - \"insert into main.seed_log select '{{ this.identifier }} ' || count(*) from {{ this }}\"\n    raw_orders:\n      +post-hook:\n        sql: \"{% do adapter.drop_relation(this.incorporate(type='table')) %}\"\n        transaction: false\n    raw_payments:\n",
    );
    std::fs::write(root.join("dbt_project.yml"), project).expect("write");
    // One thread: two seeds' `create table if not exists` at once conflict.
    assert_ok(&duck.run(root, &["seed", "--threads", "1"]), "seed");
    assert_eq!(
        duck.query(root, "select what from main.seed_log order by what"),
        vec![
            vec![Value::from("raw_customers 6")],
            vec![Value::from("raw_orders 9")],
            vec![Value::from("raw_payments 10")],
        ]
    );
    // Hooks add up: raw_orders' own post-hook (dbt's `{sql: …}` form) ran
    // after the shared one, and dropped it.
    assert!(duck
        .query(
            root,
            "select count(*) from information_schema.tables where table_name = 'raw_orders'"
        )
        .eq(&vec![vec![Value::from(0)]]));
}

/// `on-run-end` hooks get dbt's context for them — `results` (status and
/// node of each step), `schemas` and `database_schemas` — and a failing
/// hook fails the run.
#[cfg(feature = "duckdb")]
#[test]
fn on_run_end_hooks_see_results_and_schemas() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    assert_ok(&duck.run(root, &["seed"]), "seed");
    let project = std::fs::read_to_string(root.join("dbt_project.yml")).expect("read");
    let hook = "on-run-end:\n  - \"create table main.run_audit as select {{ results | length }} as steps, \
                '{{ schemas | join(',') }}' as schemas, \
                '{% for r in results if r.node.name == 'stg_customers' %}{{ r.status }}{% endfor %}' as stg_status\"\n";
    std::fs::write(root.join("dbt_project.yml"), format!("{project}\n{hook}")).expect("write");
    assert_ok(
        &duck.run(root, &["run", "-s", "stg_customers stg_orders"]),
        "run",
    );
    assert_eq!(
        duck.query(
            root,
            "select steps, schemas, stg_status from main.run_audit"
        ),
        vec![vec![
            Value::from(2),
            Value::from("main"),
            Value::from("success")
        ]]
    );
    // The table exists now: the same hook fails, and so does the run.
    let out = duck.run(root, &["run", "-s", "stg_customers"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("on-run-end hook #1 of `jaffle` failed"),
        "{}",
        out.stderr
    );
    // The summary counts the failed hook rather than claiming success.
    assert!(
        out.stderr.contains("Completed with 1 error")
            && out.stderr.contains("ERROR=1")
            && out
                .stderr
                .contains("ERROR on-run-end hook #1 (dbt_project.yml)"),
        "{}",
        out.stderr
    );

    // A macro the hook calls sees `results` without being passed them (as
    // dbt_artifacts' uploads do); each result has dbt's `timing` steps and
    // `thread_id`, and its node's config answers `none` for keys it lacks.
    write_all(
        root,
        &[(
            "macros/audit_results.sql",
            "{% macro audit_results() %}create table main.hook_macro as select \
             '{% for r in results | sort(attribute='node.unique_id') %}\
             {{ r.node.resource_type }}:{{ r.timing | map(attribute='name') | join('+') }}:\
             {% if r.node.config.full_refresh is none %}none{% endif %}:\
             {{ r.node.config.materialized }}:{{ r.thread_id[:7] }};{% endfor %}' as detail\
             {% endmacro %}",
        )],
    );
    std::fs::write(
        root.join("dbt_project.yml"),
        format!("{project}\non-run-end:\n  - \"{{{{ audit_results() }}}}\"\n"),
    )
    .expect("write");
    assert_ok(
        &duck.run(root, &["build", "-s", "stg_orders"]),
        "build with a hook macro",
    );
    let detail = duck.query(root, "select detail from main.hook_macro");
    assert_eq!(
        detail,
        vec![vec![Value::from(
            "model:compile+execute:none:view:Thread-;\
             test:compile+execute:none:test:Thread-;\
             test:compile+execute:none:test:Thread-;"
        )]]
    );

    // An installed package's hooks run too, before the project's, in the
    // package (its macros bare), and a macro they call can query.
    std::fs::write(root.join("dbt_project.yml"), format!("{project}\non-run-start:\n  - \"insert into main.hook_log select 'root_start', count(*) from main.hook_log\"\non-run-end:\n  - \"insert into main.hook_log select 'root_end', count(*) from main.hook_log\"\n")).expect("write");
    write_all(
        root,
        &[
            (
                "dbt_packages/hookpkg/dbt_project.yml",
                "name: hookpkg\non-run-start:\n  - \"{{ note('start') }}\"\non-run-end:\n  - \"{{ note('end') }}\"\n",
            ),
            (
                "dbt_packages/hookpkg/macros/note.sql",
                "{% macro note(what) %}\n{% do run_query('create table if not exists main.hook_log (what text, n bigint)') %}\n\
                 {% do run_query(\"insert into main.hook_log select 'pkg_\" ~ what ~ \"', count(*) from main.hook_log\") %}\n{% endmacro %}\n",
            ),
        ],
    );
    assert_ok(
        &duck.run(root, &["run", "-s", "stg_customers"]),
        "run with package hooks",
    );
    assert_eq!(
        duck.query(root, "select what from main.hook_log order by n"),
        vec![
            vec![Value::from("pkg_start")],
            vec![Value::from("root_start")],
            vec![Value::from("pkg_end")],
            vec![Value::from("root_end")],
        ]
    );
    // A package's hook that fails is a warning: the project's run goes on.
    write_all(
        root,
        &[(
            "dbt_packages/hookpkg/dbt_project.yml",
            "name: hookpkg\non-run-end:\n  - \"select * from main.no_such_table\"\n",
        )],
    );
    let out = duck.run(root, &["run", "-s", "stg_customers"]);
    assert_ok(&out, "run with a failing package hook");
    assert!(
        out.stderr
            .contains("warning: on-run-end hook #1 of `hookpkg` failed"),
        "{}",
        out.stderr
    );
}

/// An installed package's models, seeds, macros and tests are part of the
/// project (`model.<package>.<name>`, compiled under its own folder), with
/// dbt's precedences: the package's bare macro calls reach its own macros,
/// its vars yield to the root project's, the root project's dbt_project.yml
/// overrides its configs (here disabling a seed, which a bare ref then
/// passes over for the root project's of that name). Versioned models,
/// Jinja in dbt_project.yml configs and `current_date` on the bundled
/// DuckDB come along.
#[cfg(feature = "duckdb")]
#[test]
fn packages_versions_and_project_config_jinja_build() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    let project = std::fs::read_to_string(root.join("dbt_project.yml")).expect("read");
    let project = project.replace("vars:\n", "vars:\n  pkg:\n    multiplier: 3\n")
        + "\n  pkg:\n    lookup:\n      +enabled: \"{{ target.type != 'duckdb' }}\"\n";
    let project = project.replace(
        "  jaffle:\n    staging:",
        "  pkg:\n    +materialized: \"{{ 'table' if target.type == 'duckdb' else 'view' }}\"\n  jaffle:\n    staging:",
    );
    std::fs::write(root.join("dbt_project.yml"), project).expect("write");
    write_all(
        root,
        &[
            (
                "dbt_packages/pkg/dbt_project.yml",
                "name: pkg\nconfig-version: 2\nvars:\n  multiplier: 2\n  offset: 100\nmodels:\n  pkg:\n    +materialized: view\n",
            ),
            ("dbt_packages/pkg/seeds/lookup.csv", "code,label\n1,from the package\n"),
            (
                "dbt_packages/pkg/macros/scale.sql",
                "{% macro scale(x) %}({{ x }} * {{ var('multiplier') }} + {{ var('offset') }}){% endmacro %}\n",
            ),
            (
                "dbt_packages/pkg/models/pkg_orders.sql",
                "select order_id, {{ scale('order_id') }} as scaled, (select label from {{ ref('lookup') }}) as label,\n  current_date as today\nfrom {{ ref('stg_orders') }}\n",
            ),
            (
                "dbt_packages/pkg/models/schema.yml",
                "models:\n  - name: pkg_orders\n    columns:\n      - name: order_id\n        data_tests: [not_null]\n",
            ),
            ("seeds/lookup.csv", "code,label\n1,from the root\n"),
            (
                "seeds/lookup.yml",
                "seeds:\n  - name: lookup\n    config:\n      column_types:\n        code: \"{{ 'smallint' if target.type == 'duckdb' else 'int' }}\"\n",
            ),
            (
                "models/marts/dim_orders_v1.sql",
                "select order_id, 1 as v from {{ ref('pkg', 'pkg_orders') }}\n",
            ),
            (
                "models/marts/dim_orders_v2.sql",
                "select order_id, 2 as v from {{ ref('pkg_orders') }}\n",
            ),
            (
                "models/marts/versions.yml",
                "models:\n  - name: dim_orders\n    latest_version: 1\n    columns:\n      - name: order_id\n        data_tests: [unique]\n      - name: v\n    versions:\n      - v: 1\n      - v: 2\n        columns:\n          - include: all\n            exclude: [v]\n",
            ),
            (
                "macros/add_row.sql",
                "{% macro add_row(rel) %}{% if execute %}{% do run_query('insert into ' ~ rel ~ ' values (2)') %}{% endif %}{% endmacro %}\n",
            ),
            (
                "models/marts/hooked.sql",
                "{{ config(materialized='table', post_hook=\"{{ add_row(this) }}\") }}\nselect 1 as n\n",
            ),
            (
                "models/marts/graph_shape.sql",
                "{% set found = [] %}{% if execute %}{% for n in graph.nodes.values() if n.name == 'pkg_orders' %}{% do found.append(n.package_name ~ '/' ~ n.access ~ '/' ~ n.config.contract.enforced ~ '/' ~ n.config.enabled) %}{% endfor %}{% endif %}\nselect '{{ found | join(\",\") }}' as shape\n",
            ),
            (
                "models/marts/orders_by_version.sql",
                "select (select max(v) from {{ ref('dim_orders') }}) as latest, (select max(v) from {{ ref('dim_orders', v=2) }}) as second\n",
            ),
        ],
    );
    let out = duck.run(
        root,
        &[
            "build",
            "-s",
            "+orders_by_version+",
            "+pkg_orders+",
            "lookup",
            "graph_shape",
            "hooked",
        ],
    );
    assert_ok(&out, "build");
    // The package's macro with its var from the root project (3) and its
    // own (100); the root project's seed, the package's being disabled.
    assert_eq!(
        duck.query(
            root,
            "select scaled, label, today = current_date from main.pkg_orders where order_id = 1"
        ),
        vec![vec![
            Value::from(103),
            Value::from("from the root"),
            Value::from(true)
        ]]
    );
    assert_eq!(
        duck.query(root, "select latest, second from main.orders_by_version"),
        vec![vec![Value::from(1), Value::from(2)]]
    );
    // A post-hook that queries while it renders runs once `this` exists.
    assert_eq!(
        duck.query(root, "select count(*) from main.hooked"),
        vec![vec![Value::from(2)]]
    );
    // `graph` holds nodes in dbt's manifest shape, defaults included.
    assert_eq!(
        duck.query(root, "select shape from main.graph_shape"),
        vec![vec![Value::from("pkg/protected/False/True")]]
    );
    // The root project's Jinja config made the package's model a table.
    assert_eq!(
        duck.query(
            root,
            "select table_type from information_schema.tables where table_name = 'pkg_orders'"
        ),
        vec![vec![Value::from("BASE TABLE")]]
    );
    // Jinja inside a map-valued config (`column_types:`) is rendered too.
    assert_eq!(
        duck.query(
            root,
            "select data_type from information_schema.columns where table_name = 'lookup' and column_name = 'code'"
        ),
        vec![vec![Value::from("SMALLINT")]]
    );
    let compiled = root.join("target/compiled/pkg/models/pkg_orders.sql");
    assert!(compiled.exists(), "{}", compiled.display());
    assert!(root
        .join("target/compiled/pkg/models/schema.yml/not_null_pkg_orders_order_id.sql")
        .exists());
    assert!(root
        .join("target/compiled/jaffle/models/marts/versions.yml/unique_dim_orders_v2_order_id.sql")
        .exists());

    let manifest = read_manifest(root);
    let nodes = &manifest["nodes"];
    let pkg = &nodes["model.pkg.pkg_orders"];
    assert_eq!(pkg["package_name"], "pkg");
    assert_eq!(pkg["original_file_path"], "models/pkg_orders.sql");
    assert_eq!(pkg["config"]["materialized"], "table");
    assert!(nodes.get("seed.jaffle.lookup").is_some());
    assert!(
        nodes.get("seed.pkg.lookup").is_none(),
        "disabled seed listed"
    );
    let v2 = &nodes["model.jaffle.dim_orders.v2"];
    assert_eq!(v2["name"], "dim_orders");
    assert_eq!(v2["alias"], "dim_orders_v2");
    assert_eq!(v2["version"], "2");
    assert_eq!(v2["latest_version"], "1");
    assert_eq!(
        v2["columns"]
            .as_object()
            .map(|c| c.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["order_id".to_string()])
    );
    let deps = &nodes["model.jaffle.orders_by_version"]["depends_on"]["nodes"];
    assert_eq!(
        deps,
        &serde_json::json!(["model.jaffle.dim_orders.v1", "model.jaffle.dim_orders.v2"])
    );

    // A bare name selects every version; `name_v2` just that one.
    let ls = |sel: &str| {
        let out = duck.run(root, &["ls", "-s", sel, "--resource-type", "model"]);
        assert_ok(&out, "ls");
        out.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(
        ls("dim_orders"),
        vec!["jaffle.marts.dim_orders.v1", "jaffle.marts.dim_orders.v2"]
    );
    assert_eq!(ls("dim_orders_v2"), vec!["jaffle.marts.dim_orders.v2"]);
    assert_eq!(ls("version:latest"), vec!["jaffle.marts.dim_orders.v1"]);
    assert_eq!(ls("version:prerelease"), vec!["jaffle.marts.dim_orders.v2"]);
    assert_eq!(ls("package:pkg"), vec!["pkg.pkg_orders"]);
}

/// `build --empty` (dbt 1.8): every model is built from refs and sources
/// that read no rows, so the SQL and the schemas are checked and the tables
/// exist, empty; seeds load as usual and tests pass on the empty tables.
#[cfg(feature = "duckdb")]
#[test]
fn build_empty_builds_every_model_with_no_rows() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    let out = duck.run(root, &["build", "--empty"]);
    assert_ok(&out, "build --empty");
    assert_eq!(
        duck.query(
            root,
            "select (select count(*) from main.customers), (select count(*) from main.raw_customers) > 0"
        ),
        vec![vec![Value::from(0), Value::from(true)]]
    );
    let run_sql =
        std::fs::read_to_string(root.join("target/run/jaffle/models/marts/customers.sql"))
            .expect("run sql");
    assert!(
        run_sql.contains("from \"warehouse\".\"main\".\"stg_orders\" where false limit 0)"),
        "{run_sql}"
    );
    // Without the flag the same project fills its tables (the views built
    // with --empty read no rows until they are rebuilt, as in dbt).
    assert_ok(&duck.run(root, &["build", "-s", "+customers"]), "build");
    let rows = duck.query(root, "select count(*) from main.customers");
    assert_ne!(rows, vec![vec![Value::from(0)]]);
}

/// Model contracts (`contract: {enforced: true}`): the table is created from
/// the YAML's columns and constraints, so the warehouse enforces them on
/// every row; a model whose SQL drifts from its contract fails with dbt's
/// mismatch table and leaves the previous table as it was; a foreign key's
/// `to: ref(…)` is a dependency; primary keys declared twice are a parse
/// error at the YAML entry.
fn contracts_are_enforced(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    let contracted_sql = "select cast(customer_id as integer) as id, cast(first_name as text) as name\nfrom {{ ref('stg_customers') }}\n";
    write_all(
        root,
        &[
            ("models/contracted.sql", contracted_sql),
            (
                "models/contracted_orders.sql",
                "select cast(order_id as integer) as order_id, cast(customer_id as integer) as customer_id\nfrom {{ ref('stg_orders') }}\n",
            ),
            (
                "models/contracts.yml",
                "models:\n\
                 \x20 - name: contracted\n\
                 \x20   config:\n      materialized: table\n      contract: {enforced: true}\n\
                 \x20   columns:\n\
                 \x20     - name: id\n        data_type: integer\n        constraints:\n          - type: not_null\n          - type: primary_key\n\
                 \x20     - name: name\n        data_type: string\n\
                 \x20 - name: contracted_orders\n\
                 \x20   config:\n      materialized: table\n      contract: {enforced: true}\n\
                 \x20   constraints:\n      - type: check\n        expression: order_id > 0\n\
                 \x20   columns:\n\
                 \x20     - name: order_id\n        data_type: int\n\
                 \x20     - name: customer_id\n        data_type: integer\n        constraints:\n          - type: foreign_key\n            to: ref('contracted')\n            to_columns: [id]\n",
            ),
        ],
    );
    let out = engine.run(root, &["build", "-s", "+contracted_orders"]);
    assert_ok(&out, "build");
    let manifest = read_manifest(root);
    let deps = &manifest["nodes"]["model.jaffle.contracted_orders"]["depends_on"]["nodes"];
    assert!(
        deps.as_array()
            .expect("deps")
            .contains(&Value::from("model.jaffle.contracted")),
        "{deps}"
    );
    assert_eq!(
        manifest["nodes"]["model.jaffle.contracted_orders"]["constraints"][0]["expression"],
        "order_id > 0"
    );
    let rows = engine.query(root, &format!("select count(*) from {schema}.contracted"));
    assert_eq!(rows[0][0], Value::from(6));

    // The constraints are the warehouse's now.
    let w = warehouse::open(&engine.target(), root).expect("open");
    let mut conn = w.connect().expect("connect");
    for bad in [
        format!("insert into {schema}.contracted values (null, 'x')"),
        format!("insert into {schema}.contracted values (1, 'again')"),
        format!("insert into {schema}.contracted_orders values (-1, 1)"),
        format!("insert into {schema}.contracted_orders values (99, 4242)"),
    ] {
        assert!(conn.execute(&bad).is_err(), "accepted: {bad}");
    }
    drop(conn);
    drop(w);

    // The SQL drifts from the contract: the build fails, the table stays.
    std::fs::write(
        root.join("models/contracted.sql"),
        "select cast(customer_id as text) as id, first_name as name, last_name\nfrom {{ ref('stg_customers') }}\n",
    )
    .expect("write");
    let out = engine.run(root, &["run", "-s", "contracted"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expected in [
        "This model has an enforced contract that failed.",
        "| column_name | definition_type | contract_type | mismatch_reason",
        "data type mismatch",
        "missing in contract",
    ] {
        assert!(
            out.stderr.contains(expected),
            "no {expected:?} in:\n{}",
            out.stderr
        );
    }
    let rows = engine.query(root, &format!("select count(*) from {schema}.contracted"));
    assert_eq!(rows[0][0], Value::from(6));

    // A view is checked too.
    std::fs::write(root.join("models/contracted.sql"), contracted_sql).expect("write");
    let yml = std::fs::read_to_string(root.join("models/contracts.yml")).expect("yml");
    std::fs::write(
        root.join("models/contracts.yml"),
        yml.replacen("data_type: string", "data_type: date", 1)
            .replacen("materialized: table", "materialized: view", 1),
    )
    .expect("write");
    let out = engine.run(root, &["run", "-s", "contracted"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("data type mismatch"), "{}", out.stderr);

    // Two primary keys: an error at the model's YAML entry.
    std::fs::write(
        root.join("models/contracts.yml"),
        yml.replacen(
            "      - type: check\n        expression: order_id > 0\n",
            "      - type: primary_key\n        columns: [order_id]\n",
            1,
        )
        .replacen(
            "        data_type: int\n",
            "        data_type: int\n        constraints:\n          - type: primary_key\n",
            1,
        ),
    )
    .expect("write");
    let out = engine.run(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("Primary key constraint error")
            && out.stderr.contains("models/contracts.yml:"),
        "{}",
        out.stderr
    );
}

#[test]
fn contracts_are_enforced_on_postgres() {
    contracts_are_enforced(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn contracts_are_enforced_on_duckdb() {
    contracts_are_enforced(&Engine::duckdb(), "main");
}

/// `persist_docs` writes a model's description (here from a docs block) and
/// its columns' as comments on the table and a view; `indexes:` creates the
/// table's indexes on PostgreSQL, once however often the model is rebuilt.
fn docs_and_indexes_persist(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    let yml = std::fs::read_to_string(root.join("models/schema.yml")).expect("yml");
    write_all(
        root,
        &[
            ("models/docs.md", "{% docs customers_doc %}\nOne row per customer, with O'Brien's quote.\n{% enddocs %}\n"),
            (
                "models/schema.yml",
                &yml.replacen(
                    "  - name: customers\n    description: One row per customer.\n",
                    "  - name: customers\n    description: '{{ doc(\"customers_doc\") }}'\n    config:\n      persist_docs: {relation: true, columns: true}\n      indexes:\n        - columns: [customer_id]\n          unique: true\n",
                    1,
                )
                .replacen(
                    "  - name: stg_orders\n",
                    "  - name: stg_orders\n    description: Orders as loaded.\n    config:\n      persist_docs: {relation: true}\n",
                    1,
                ),
            ),
        ],
    );
    assert_ok(&engine.run(root, &["seed"]), "seed");
    for _ in 0..2 {
        let out = engine.run(root, &["run", "-s", "+customers", "stg_orders"]);
        assert_ok(&out, "run");
    }
    let (table, column, view, indexes) = match engine {
        Engine::Postgres { .. } => (
            format!("select obj_description('{schema}.customers'::regclass, 'pg_class')"),
            format!("select col_description('{schema}.customers'::regclass, 1)"),
            format!("select obj_description('{schema}.stg_orders'::regclass, 'pg_class')"),
            format!("select count(*) from pg_indexes where schemaname = '{schema}' and tablename = 'customers' and indexdef like 'CREATE UNIQUE INDEX%(customer_id)'"),
        ),
        Engine::DuckDb { .. } => (
            "select comment from duckdb_tables() where table_name = 'customers'".to_string(),
            "select comment from duckdb_columns() where table_name = 'customers' and column_name = 'customer_id'".to_string(),
            "select comment from duckdb_views() where view_name = 'stg_orders'".to_string(),
            "select 1".to_string(),
        ),
    };
    let one = |sql: &str| engine.query(root, sql)[0][0].clone();
    assert_eq!(one(&table), "One row per customer, with O'Brien's quote.");
    assert_eq!(one(&column), "Primary key.");
    assert_eq!(one(&view), "Orders as loaded.");
    assert_eq!(one(&indexes), Value::from(1));
}

#[test]
fn docs_and_indexes_persist_on_postgres() {
    docs_and_indexes_persist(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn docs_and_indexes_persist_on_duckdb() {
    docs_and_indexes_persist(&Engine::duckdb(), "main");
}

/// `incremental_strategy: microbatch`: the first run builds every day from
/// `begin` (here up to `--event-time-end`), each batch reading only its day
/// of the upstream seed (which has an `event_time`); a later run with
/// `--event-time-start` replaces only the days it covers.
fn microbatch_builds_in_batches(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    let seed = |rows: &str| {
        write_all(
            root,
            &[(
                "seeds/events.csv",
                &format!("id,happened_at,amount\n{rows}"),
            )],
        )
    };
    seed("1,2024-01-01 10:00:00,10\n2,2024-01-02 11:00:00,20\n3,2024-01-03 12:00:00,30\n4,2024-01-03 13:00:00,40\n");
    write_all(
        root,
        &[
            (
                "seeds/events.yml",
                "seeds:\n  - name: events\n    config:\n      event_time: happened_at\n      column_types: {happened_at: timestamp}\n",
            ),
            (
                "models/daily_events.sql",
                "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='happened_at', batch_size='day', begin='2024-01-01', unique_key=('id' if target.type == 'postgres' else none)) }}\n\
                 select id, happened_at, amount, '{{ model.batch.id }}' as batch_id from {{ ref('events') }}\n",
            ),
        ],
    );
    assert_ok(&engine.run(root, &["seed", "-s", "events"]), "seed");
    let out = engine.run(
        root,
        &[
            "run",
            "-s",
            "daily_events",
            "--event-time-end",
            "2024-01-04",
        ],
    );
    assert_ok(&out, "run");
    assert!(
        out.stderr.contains("MICROBATCH 3 batches"),
        "{}",
        out.stderr
    );
    let q = format!(
        "select id, cast(amount as integer), batch_id from {schema}.daily_events order by id"
    );
    let rows = engine.query(root, &q);
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {} {}", r[0], r[1], r[2]))
        .collect();
    assert_eq!(
        got,
        [
            "1 10 \"20240101\"",
            "2 20 \"20240102\"",
            "3 30 \"20240103\"",
            "4 40 \"20240103\""
        ]
    );

    // Jan 3 changes and a late row for Jan 2 arrives; only Jan 3 is rebuilt.
    seed("1,2024-01-01 10:00:00,10\n2,2024-01-02 11:00:00,20\n5,2024-01-02 12:00:00,50\n3,2024-01-03 12:00:00,33\n4,2024-01-03 13:00:00,44\n");
    assert_ok(&engine.run(root, &["seed", "-s", "events"]), "reseed");
    let out = engine.run(
        root,
        &[
            "run",
            "-s",
            "daily_events",
            "--event-time-start",
            "2024-01-03",
            "--event-time-end",
            "2024-01-04",
        ],
    );
    assert_ok(&out, "incremental run");
    assert!(
        out.stderr.contains("MICROBATCH 1 batches"),
        "{}",
        out.stderr
    );
    let rows = engine.query(root, &q);
    let got: Vec<String> = rows.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    assert_eq!(got, ["1 10", "2 20", "3 33", "4 44"]);

    // A microbatch model without `begin` cannot start.
    let sql = std::fs::read_to_string(root.join("models/daily_events.sql")).expect("sql");
    std::fs::write(
        root.join("models/daily_events.sql"),
        sql.replace(", begin='2024-01-01'", ""),
    )
    .expect("write");
    let out = engine.run(root, &["run", "-s", "daily_events", "--full-refresh"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("needs a `begin` config")
            && out.stderr.contains("--> models/daily_events.sql:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn microbatch_builds_in_batches_on_postgres() {
    microbatch_builds_in_batches(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn microbatch_builds_in_batches_on_duckdb() {
    microbatch_builds_in_batches(&Engine::duckdb(), "main");
}

/// An ephemeral model whose SQL depends on the warehouse (here the columns
/// of its parent) is rendered when the model selecting from it runs, as dbt
/// compiles it then; `dbt.run_query` is the global project's macro.
#[cfg(feature = "duckdb")]
#[test]
fn dynamic_ephemeral_models_render_at_run_time() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    write_all(
        root,
        &[
            (
                "models/wide.sql",
                "{{ config(materialized='table') }}\nselect 1 as id, 'a' as x_first, 'b' as x_second, 'c' as other\n",
            ),
            (
                "models/only_x.sql",
                "{{ config(materialized='ephemeral') }}\n\
                 {%- set cols = [] -%}\n\
                 {%- if execute -%}{%- for c in adapter.get_columns_in_relation(ref('wide')) -%}{%- if c.name.startswith('x_') -%}{%- do cols.append(c.name) -%}{%- endif -%}{%- endfor -%}{%- endif %}\n\
                 select id{% for c in cols %}, {{ c }}{% endfor %} from {{ ref('wide') }}\n",
            ),
            (
                "models/uses_only_x.sql",
                "{{ config(materialized='table') }}\nselect * from {{ ref('only_x') }}\n",
            ),
            (
                "models/answer.sql",
                "select {{ dbt.run_query('select 42 as n').columns[0].values()[0] if execute else 0 }} as answer\n",
            ),
        ],
    );
    let out = duck.run(root, &["run", "-s", "+uses_only_x", "answer"]);
    assert_ok(&out, "run");
    let rows = duck.query(root, "select id, x_first, x_second from main.uses_only_x");
    assert_eq!(
        rows,
        vec![vec![Value::from(1), Value::from("a"), Value::from("b")]]
    );
    assert_eq!(
        duck.query(root, "select answer from main.answer"),
        vec![vec![Value::from(42)]]
    );
}

/// `materialized: materialized_view` on PostgreSQL, as dbt-postgres builds
/// it: created, then refreshed on later runs (new rows appear; a changed
/// query waits for `--full-refresh`, which recreates it), with its indexes.
/// DuckDB has none, and says so.
#[test]
fn materialized_views_build_and_refresh_on_postgres() {
    let pg = Engine::postgres();
    let dir = jaffle();
    let root = dir.path();
    let model = |extra: &str| {
        format!(
            "{{{{ config(materialized='materialized_view', indexes=[{{'columns': ['status']}}]) }}}}\n\
             select status, count(*) as n{extra} from {{{{ ref('stg_orders') }}}} group by status\n"
        )
    };
    write_all(root, &[("models/order_counts.sql", &model(""))]);
    assert_ok(&pg.run(root, &["seed"]), "seed");
    assert_ok(&pg.run(root, &["run", "-s", "+order_counts"]), "first run");
    let total = || {
        pg.query(
            root,
            "select cast(sum(n) as integer) from jaffle.order_counts",
        )[0][0]
            .clone()
    };
    let before = total();
    assert_eq!(
        pg.query(root, "select count(*) from pg_matviews where schemaname = 'jaffle' and matviewname = 'order_counts'")[0][0],
        Value::from(1)
    );
    assert_eq!(
        pg.query(root, "select count(*) from pg_indexes where schemaname = 'jaffle' and tablename = 'order_counts'")[0][0],
        Value::from(1)
    );
    pg.execute(root, "insert into jaffle.raw_orders select id + 1000, user_id, order_date, status from jaffle.raw_orders");
    // A changed query is not applied by a refresh…
    write_all(root, &[("models/order_counts.sql", &model(", 1 as added"))]);
    let out = pg.run(root, &["run", "-s", "order_counts"]);
    assert_ok(&out, "refresh");
    assert!(
        out.stderr.contains("REFRESH MATERIALIZED VIEW"),
        "{}",
        out.stderr
    );
    let after = total();
    assert_eq!(
        after.as_i64().expect("int"),
        2 * before.as_i64().expect("int"),
        "refreshed rows"
    );
    let added = "select count(*) from pg_attribute where attrelid = 'jaffle.order_counts'::regclass and attname = 'added'";
    assert_eq!(pg.query(root, added)[0][0], Value::from(0));
    // …a full refresh recreates the view with it.
    assert_ok(
        &pg.run(root, &["run", "-s", "order_counts", "--full-refresh"]),
        "full refresh",
    );
    assert_eq!(pg.query(root, added)[0][0], Value::from(1));
    assert_eq!(
        pg.query(root, "select min(added) from jaffle.order_counts")[0][0],
        Value::from(1)
    );
}

#[cfg(feature = "duckdb")]
#[test]
fn materialized_views_are_an_error_on_duckdb() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    write_all(
        root,
        &[(
            "models/mv.sql",
            "{{ config(materialized='materialized_view') }}\nselect 1 as x\n",
        )],
    );
    let out = duck.run(root, &["run", "-s", "mv"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("No materialization 'materialized_view' was found for adapter duckdb"),
        "{}",
        out.stderr
    );
}

/// A dbt-duckdb project's DuckDB habits: sources read straight from files
/// (`external_location`), `external` models written to files with a view
/// over them, and the profile's `attach`, `settings` and `extensions`.
#[cfg(feature = "duckdb")]
#[test]
fn dbt_duckdb_files_attachments_and_profile_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let secret = "Sup3rS3cretValue";
    write_all(
        root,
        &[
            ("dbt_project.yml", "name: files\nprofile: files\n"),
            (
                "profiles.yml",
                &format!(
                    "files:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: dev.duckdb\n      \
                     extensions: [parquet, json, httpfs]\n      settings:\n        threads: 2\n        \
                     s3_secret_access_key: {secret}\n      attach:\n        - path: lake.duckdb\n          alias: lake\n      \
                     external_root: exports\n    \
                     bad:\n      type: duckdb\n      path: dev.duckdb\n      database: elsewhere\n"
                ),
            ),
            ("data/orders.csv", "id,amount\n1,10\n2,20\n3,30\n"),
            (
                "models/sources.yml",
                "sources:\n  - name: raw\n    meta:\n      external_location: \"data/{name}.csv\"\n    tables:\n      \
                 - name: orders\n        columns:\n          - name: id\n            data_tests: [unique, not_null]\n      \
                 - name: refunds\n        config:\n          external_location: \"read_csv('data/orders.csv', header = true)\"\n",
            ),
            (
                "models/orders_file.sql",
                "{{ config(materialized='external') }}\nselect id, amount * 2 as doubled from {{ source('raw', 'orders') }}\n",
            ),
            (
                "models/refunds_csv.sql",
                "{{ config(materialized='external', location='exports/csv/refunds.csv') }}\n\
                 select * from {{ source('raw', 'refunds') }} where amount > 100\n",
            ),
            (
                "models/by_id.sql",
                "{{ config(materialized='external', options={'partition_by': 'id', 'overwrite': true}) }}\nselect * from {{ ref('orders_file') }}\n",
            ),
            (
                "models/in_lake.sql",
                "{{ config(materialized='table', database='lake') }}\nselect count(*) as n from {{ ref('by_id') }}\n",
            ),
            (
                "models/summary.sql",
                "{{ config(materialized='table', grants={'select': ['reporter']}) }}\n\
                 select (select sum(doubled) from {{ ref('orders_file') }}) as doubled,\n\
                 (select count(*) from {{ ref('refunds_csv') }}) as refunds,\n\
                 (select n from {{ ref('in_lake') }}) as in_lake\n",
            ),
        ],
    );
    let run = |args: &[&str]| crate::cli::run_in(root, args);
    let out = run(&["build"]);
    assert_ok(&out, "build");
    // What this offline engine cannot do is said once, without the secret.
    assert!(
        out.stderr.contains("extension `httpfs` is not available"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("setting `s3_secret_access_key` was not applied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Grants for relations are not supported by DuckDB"),
        "{}",
        out.stderr
    );
    let compiled =
        std::fs::read_to_string(root.join("target/compiled/files/models/orders_file.sql"))
            .expect("compiled");
    assert!(compiled.contains("from 'data/orders.csv'"), "{compiled}");
    assert!(root.join("exports/orders_file.parquet").is_file());
    assert!(root.join("exports/by_id/id=3").is_dir());
    // A model without rows still writes its columns.
    assert_eq!(
        std::fs::read_to_string(root.join("exports/csv/refunds.csv")).expect("csv"),
        "id,amount\n,\n"
    );
    let db: TargetConfig = serde_json::from_value(serde_json::json!({
        "type": "duckdb", "path": root.join("dev.duckdb").display().to_string(),
        "attach": [{"path": root.join("lake.duckdb").display().to_string(), "alias": "lake"}]
    }))
    .expect("target");
    let w = warehouse::open(&db, root).expect("open");
    let mut conn = w.connect().expect("connect");
    let rows = conn
        .query("select * from main.summary")
        .expect("summary")
        .rows;
    assert_eq!(
        rows,
        vec![vec![Value::from(120), Value::from(0), Value::from(3)]]
    );
    let kinds = conn
        .query("select table_catalog, table_name, table_type from information_schema.tables where table_name in ('orders_file', 'in_lake') order by 2")
        .expect("kinds")
        .rows;
    assert_eq!(
        kinds,
        vec![
            vec![
                Value::from("lake"),
                Value::from("in_lake"),
                Value::from("BASE TABLE")
            ],
            vec![
                Value::from("dev"),
                Value::from("orders_file"),
                Value::from("VIEW")
            ],
        ]
    );
    drop(conn);
    drop(w);
    // A rebuild replaces the files and views.
    assert_ok(&run(&["run", "-s", "orders_file+"]), "rebuild");
    for entry in walkdir::WalkDir::new(root.join("target")) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(
                !text.contains(secret),
                "{} holds the secret",
                entry.path().display()
            );
        }
    }
    let debug = run(&["debug"]);
    assert!(
        !debug.stderr.contains(secret) && !debug.stdout.contains(secret),
        "{}",
        debug.stderr
    );
    // dbt-duckdb's profile check.
    let bad = run(&["run", "-t", "bad"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("the 'database' property must be set to 'dev' to match the 'path'"),
        "{}",
        bad.stderr
    );
}

#[test]
fn grants_are_applied_and_revoked_on_postgres() {
    let pg = Engine::postgres();
    let dir = jaffle();
    let root = dir.path();
    for role in ["reporter", "analyst"] {
        pg.execute(
            root,
            &format!(
                "do $$ begin create role {role}; exception when duplicate_object then null; end $$"
            ),
        );
    }
    let model = |grants: &str| {
        format!("{{{{ config(materialized='table', grants={grants}) }}}}\nselect 1 as x\n")
    };
    let can = |role: &str, privilege: &str| {
        pg.query(
            root,
            &format!("select has_table_privilege('{role}', 'jaffle.granted', '{privilege}')"),
        )[0][0]
            .clone()
    };
    write_all(
        root,
        &[(
            "models/granted.sql",
            &model("{'select': ['reporter', 'analyst']}"),
        )],
    );
    assert_ok(&pg.run(root, &["run", "-s", "granted"]), "first run");
    assert_eq!(can("reporter", "select"), Value::from(true));
    assert_eq!(can("analyst", "select"), Value::from(true));
    // Rebuilt with fewer grantees and another privilege: the rest is revoked.
    write_all(
        root,
        &[(
            "models/granted.sql",
            &model("{'select': 'reporter', 'insert': ['analyst']}"),
        )],
    );
    assert_ok(&pg.run(root, &["run", "-s", "granted"]), "second run");
    assert_eq!(can("reporter", "select"), Value::from(true));
    assert_eq!(can("analyst", "select"), Value::from(false));
    assert_eq!(can("analyst", "insert"), Value::from(true));
    // Seeds get their grants and persisted docs too.
    write_all(
        root,
        &[
            ("seeds/granted_seed.csv", "id\n1\n"),
            (
                "seeds/granted_seed.yml",
                "seeds:\n  - name: granted_seed\n    description: Ids for reporting\n    config:\n      \
                 grants: {select: [reporter]}\n      persist_docs: {relation: true}\n",
            ),
        ],
    );
    // Whether `reporter` may read the table, and its comment.
    let granted_and_described = |table: &str| {
        pg.query(
            root,
            &format!(
                "select has_table_privilege('reporter', 'jaffle.{table}', 'select'), \
                 obj_description('jaffle.{table}'::regclass)"
            ),
        )
    };
    assert_ok(&pg.run(root, &["seed", "-s", "granted_seed"]), "seed");
    assert_eq!(
        granted_and_described("granted_seed"),
        vec![vec![Value::from(true), Value::from("Ids for reporting")]]
    );
    // And snapshots.
    write_all(
        root,
        &[
            (
                "snapshots/granted_snap.sql",
                "{% snapshot granted_snap %}\n{{ config(target_schema='jaffle', unique_key='id', strategy='check', \
                 check_cols='all', grants={'select': ['reporter']}, persist_docs={'relation': true}) }}\n\
                 select 1 as id\n{% endsnapshot %}\n",
            ),
            (
                "snapshots/granted_snap.yml",
                "snapshots:\n  - name: granted_snap\n    description: Snapped ids\n",
            ),
        ],
    );
    assert_ok(
        &pg.run(root, &["snapshot", "-s", "granted_snap"]),
        "snapshot",
    );
    assert_eq!(
        granted_and_described("granted_snap"),
        vec![vec![Value::from(true), Value::from("Snapped ids")]]
    );
    // An external model is dbt-duckdb's.
    write_all(
        root,
        &[(
            "models/ext.sql",
            "{{ config(materialized='external') }}\nselect 1 as x\n",
        )],
    );
    let out = pg.run(root, &["run", "-s", "ext"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("No materialization 'external' was found for adapter postgres"),
        "{}",
        out.stderr
    );
}

/// What macros and unit tests of real projects (dbt-codegen's, dbt-audit-helper's
/// integration tests) ask of dbt: the adapter's schema and relation methods,
/// relation helpers, dbt's naming macros, Jinja2's habits (a default naming an
/// earlier argument, `| list` that changes, `length` of nothing), and a unit
/// test's `overrides` (vars, env vars, macros called directly or by another
/// macro) with a SQL fixture from `tests/fixtures/`, which is no singular test.
fn macros_and_unit_tests_behave_as_in_dbt(engine: &Engine, schema: &str) {
    let dir = jaffle();
    let root = dir.path();
    write_all(
        root,
        &[
            ("macros/ops.sql", OPS),
            ("tests/fixtures/seven.sql", "select 7 as id\n"),
            ("models/uses_overrides.sql", MODEL),
            ("models/never_built.sql", "select 1 as id\n"),
            ("models/unit.yml", UNIT),
        ],
    );
    let out = engine.run(root, &["run-operation", "ops_demo"]);
    assert_ok(&out, "run-operation");
    let database = match engine {
        Engine::DuckDb { .. } => "warehouse",
        Engine::Postgres { .. } => "postgres",
    };
    for line in [
        "listed=t2".to_string(),
        "missing=b".into(),
        "answer=42".into(),
        "exists=False".into(),
        format!("schema={schema}_extra|{schema}"),
        format!("columns_view=\"{database}\".\"information_schema\".\"columns\"|\"{schema}_ops\".\"t1\""),
        "greet=hi bob|yo".into(),
        "jinja=1|3|0|f0o".into(),
        "schema_gone=True".into(),
        "dispatch=real".into(),
        "| a | b |".into(),
        // dbt's `tojson` is Python's `json.dumps` text.
        "agate={\"b\": 2}|5".into(),
        "yaml=a:;- 1;b: 1;".into(),
        "rendered=2".into(),
        "temp=True|merge=11,20".into(),
    ] {
        assert!(out.stderr.contains(&line) || out.stdout.contains(&line), "{line} missing:\n{}{}", out.stdout, out.stderr);
    }
    let listed = engine.run(root, &["ls", "--resource-type", "test"]);
    assert!(!listed.stdout.contains("seven"), "{}", listed.stdout);
    // Neither the model nor its input is built: the unit test needs neither.
    let out = engine.run(root, &["test", "-s", "uses_overrides"]);
    assert_ok(&out, "unit test");
    assert!(out.stderr.contains("PASS=1 "), "{}", out.stderr);
    // `quote_columns: false`: the header's names as the engine folds them;
    // dbt's seed types (`integer`, an all-empty column `integer` too).
    write_all(
        root,
        &[
            ("seeds/upper.csv", "ID,Amount,Nothing\n1,2.5,\n"),
            (
                "seeds/upper.yml",
                "seeds:\n  - name: upper\n    config:\n      quote_columns: false\n",
            ),
        ],
    );
    assert_ok(&engine.run(root, &["seed", "-s", "upper"]), "seed");
    let columns = engine.query(
        root,
        &format!("select column_name, data_type from information_schema.columns where table_schema = '{schema}' and table_name = 'upper' order by ordinal_position"),
    );
    let (id, amount, nothing) = match engine {
        Engine::DuckDb { .. } => (
            ("ID", "INTEGER"),
            ("Amount", "DOUBLE"),
            ("Nothing", "INTEGER"),
        ),
        Engine::Postgres { .. } => (
            ("id", "integer"),
            ("amount", "double precision"),
            ("nothing", "integer"),
        ),
    };
    let row = |(c, t): (&str, &str)| vec![Value::from(c), Value::from(t)];
    assert_eq!(columns, vec![row(id), row(amount), row(nothing)]);
}

const OPS: &str = r#"{% macro pick() %}real{% endmacro %}
{% macro wrap_pick() %}{{ pick() }}{% endmacro %}
{% macro greet(name, greeting='hi ' ~ name) %}{{ greeting }}{% endmacro %}
{% macro ops_demo() %}
  {% set s = api.Relation.create(database=target.database, schema=target.schema ~ '_ops') %}
  {% do adapter.create_schema(s) %}
  {% set t1 = api.Relation.create(database=target.database, schema=target.schema ~ '_ops', identifier='t1', type='table') %}
  {% do run_query('create table ' ~ t1 ~ ' as select 1 as a, 2 as b') %}
  {% set t2 = t1.incorporate(path={'identifier': 't2'}) %}
  {% do adapter.rename_relation(t1, t2) %}
  {% do log('listed=' ~ (adapter.list_relations_without_caching(s) | map(attribute='identifier') | join(',')), info=true) %}
  {% do run_query('create table ' ~ t1 ~ ' as select 1 as a') %}
  {% do log('missing=' ~ (adapter.get_missing_columns(t2, t1) | map(attribute='name') | join(',')), info=true) %}
  {% set res = adapter.execute('select 41 + 1 as answer', fetch=true) %}
  {% do log('answer=' ~ res[1][0][0], info=true) %}
  {% do adapter.drop_relation(t2) %}
  {% do log('exists=' ~ (adapter.get_relation(database=t2.database, schema=t2.schema, identifier='t2') is not none), info=true) %}
  {% do log('schema=' ~ generate_schema_name('extra') ~ '|' ~ generate_schema_name(none), info=true) %}
  {% do log('columns_view=' ~ t1.information_schema('columns') ~ '|' ~ t1.include(database=false), info=true) %}
  {% do log('greet=' ~ greet('bob') ~ '|' ~ greet('al', greeting='yo'), info=true) %}
  {% set ns = namespace(items=none) %}{% set ns.items = [] %}{% do ns.items.append(1) %}
  {% set thing = {} %}
  {% do log('jinja=' ~ ns.items | length ~ '|' ~ ([3, 1, 2] | sort | list).pop() ~ '|' ~ (thing.fields | length) ~ '|' ~ modules.re.sub('o', '0', 'foo', 1), info=true) %}
  {% do adapter.drop_schema(s) %}
  {% do log('schema_gone=' ~ (not adapter.check_schema_exists(target.database, s.schema)), info=true) %}
  {% do log('dispatch=' ~ adapter.dispatch('pick', macro_namespace='jaffle')(), info=true) %}
  {% set t = run_query('select 1 as a, 2 as b') %}
  {% do t.print_table() %}
  {% set d = t.rows[0].dict() %}{% do d.pop('a') %}
  {% do log('agate=' ~ (d | tojson) ~ '|' ~ t.columns.get('b').data_type.jsonify(5), info=true) %}
  {% do log('yaml=' ~ (toyaml({'b': 1, 'a': [1]}, sort_keys=true) | replace('\n', ';')), info=true) %}
  {% set ns2 = namespace(seen={}) %}{% do ns2.seen.update({'k': render("{{ 1 + 1 }}")}) %}
  {% do log('rendered=' ~ ns2.seen.k, info=true) %}
  {% set base = api.Relation.create(database=target.database, schema=target.schema, identifier='mergeme', type='table') %}
  {% do adapter.create_schema(base) %}
  {% do run_query('drop table if exists ' ~ base) %}
  {% do run_query('create table ' ~ base ~ ' as select 1 as id, 10 as v') %}
  {% set tmp = make_temp_relation(base) %}
  {% do run_query(create_table_as(True, tmp, 'select 1 as id, 11 as v union all select 2, 20')) %}
  {% do run_query(get_merge_sql(base, tmp, 'id', adapter.get_columns_in_relation(tmp))) %}
  {% set merged = run_query('select id, v from ' ~ base ~ ' order by id') %}
  {% do log('temp=' ~ (tmp.schema is none or tmp.schema == '') ~ '|merge=' ~ (merged.columns[1].values() | join(',')), info=true) %}
{% endmacro %}
"#;
const MODEL: &str = r#"select id, '{{ var("my_var", "default") }}' as v, '{{ env_var("MY_ENV", "unset") }}' as e, '{{ pick() }}' as m, '{{ wrap_pick() }}' as w
from {{ ref('never_built') }}
"#;
const UNIT: &str = r#"unit_tests:
  - name: overrides_apply
    model: uses_overrides
    given:
      - input: ref('never_built')
        format: sql
        fixture: seven
    expect:
      rows:
        - {id: 7, v: from_override, e: env_override, m: macro_override, w: macro_override}
    overrides:
      vars: {my_var: from_override}
      env_vars: {MY_ENV: env_override}
      macros:
        pick: macro_override
"#;

#[test]
fn macros_and_unit_tests_behave_as_in_dbt_on_postgres() {
    macros_and_unit_tests_behave_as_in_dbt(&Engine::postgres(), "jaffle");
}

#[cfg(feature = "duckdb")]
#[test]
fn macros_and_unit_tests_behave_as_in_dbt_on_duckdb() {
    macros_and_unit_tests_behave_as_in_dbt(&Engine::duckdb(), "main");
}

/// After a build the DuckDB file holds what it wrote, not a WAL beside it
/// (dbt-duckdb's last connection closing checkpoints): the file alone can
/// be copied or shipped.
#[cfg(feature = "duckdb")]
#[test]
fn a_duckdb_build_leaves_its_data_in_the_database_file() {
    let duck = Engine::duckdb();
    let dir = jaffle();
    let root = dir.path();
    assert_ok(&duck.run(root, &["build"]), "build");
    let Engine::DuckDb { db } = &duck else {
        unreachable!("a DuckDB engine")
    };
    let file = db.path().join("warehouse.duckdb");
    assert!(file.exists());
    assert!(
        !db.path().join("warehouse.duckdb.wal").exists(),
        "the build's writes are checkpointed into the file"
    );
}
