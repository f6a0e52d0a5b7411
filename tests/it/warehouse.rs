//! DuckDB warehouse tests: the engine-neutral cases of `warehouse_cases`
//! against an in-memory and a file database, plus DuckDB specifics (value
//! conversion, shared in-memory database, offline settings, cancelling).

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sluice::warehouse::materialize::{build_model, Materialization};
use sluice::warehouse::{adapter, open, DuckDbTarget, Engine, Relation, TargetConfig, Warehouse};

use crate::warehouse_cases as cases;

const SCHEMA: &str = "analytics";

fn target(path: &str) -> TargetConfig {
    TargetConfig::Duckdb(DuckDbTarget {
        path: path.to_string(),
        schema: SCHEMA.to_string(),
        ..DuckDbTarget::default()
    })
}

fn memory() -> Arc<dyn Warehouse> {
    open(&target(":memory:"), Path::new(".")).expect("open in-memory duckdb")
}

/// A file database in a fresh project directory (kept alive by the guard).
fn file() -> (tempfile::TempDir, Arc<dyn Warehouse>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = open(&target("dev.duckdb"), dir.path()).expect("open file duckdb");
    (dir, wh)
}

/// Each case runs against `:memory:` and against a database file.
macro_rules! duckdb_cases {
    ($($name:ident $(($($arg:expr),*))?;)*) => {
        mod memory {
            $(
                #[test]
                fn $name() {
                    let wh = super::memory();
                    super::cases::$name(&*wh, super::SCHEMA $($(, $arg)*)?);
                }
            )*
        }
        mod file {
            $(
                #[test]
                fn $name() {
                    let (_dir, wh) = super::file();
                    super::cases::$name(&*wh, super::SCHEMA $($(, $arg)*)?);
                }
            )*
        }
    };
}

duckdb_cases! {
    adapter_catalog_operations;
    view_materialization;
    table_materialization;
    failed_table_rebuild_keeps_old_rows;
    view_downstream_of_rebuilt_table_still_answers;
    ephemeral_builds_nothing;
    hooks_run_in_order_inside_the_build;
    incremental_first_run_then_append;
    incremental_predicates_narrow_the_replaced_rows;
    schema_change_ignore;
    schema_change_fail;
    schema_change_append_new_columns;
    schema_change_sync_all_columns;
    seed_infers_types;
    seed_reads_csv_edge_cases_like_the_checker;
    load_rows_keeps_types;
    seed_column_types_override;
    seed_reload_replaces_rows;
    seed_ragged_row_reports_line_and_keeps_table;
    seed_bad_override_value_reports_line_and_keeps_table;
}

mod upsert {
    //! Overlapping incremental runs under each keyed strategy.
    use super::*;

    #[test]
    fn merge_single_key() {
        cases::incremental_upsert_has_no_duplicates(&*memory(), SCHEMA, Some("merge"), false);
    }
    #[test]
    fn merge_composite_key() {
        cases::incremental_upsert_has_no_duplicates(&*memory(), SCHEMA, Some("merge"), true);
    }
    #[test]
    fn delete_insert_single_key() {
        let (_dir, wh) = file();
        cases::incremental_upsert_has_no_duplicates(&*wh, SCHEMA, Some("delete+insert"), false);
    }
    #[test]
    fn delete_insert_composite_key() {
        cases::incremental_upsert_has_no_duplicates(
            &*memory(),
            SCHEMA,
            Some("delete+insert"),
            true,
        );
    }
    #[test]
    fn default_strategy_with_unique_key() {
        cases::incremental_upsert_has_no_duplicates(&*memory(), SCHEMA, None, true);
    }
}

#[test]
fn cancel_all_interrupts_long_query() {
    let wh = memory();
    cases::cancel_all_interrupts_long_query(
        &*wh,
        "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b",
    );
}

#[test]
fn in_memory_connections_share_one_database() {
    let wh = memory();
    let mut a = wh.connect().expect("connect a");
    let mut b = wh.connect().expect("connect b");
    a.execute("CREATE TABLE shared AS SELECT 42 AS answer")
        .expect("create");
    let got = b.query("SELECT answer FROM shared").expect("query from b");
    assert_eq!(got.rows, [[json!(42)]]);
}

#[test]
fn file_database_resolves_against_project_dir_and_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let wh = open(&target("missing_dir/dev.duckdb"), dir.path());
        // The parent directory does not exist: opening must fail cleanly
        // rather than panic.
        assert!(wh.is_err());
    }
    {
        let wh = open(&target("dev.duckdb"), dir.path()).expect("open");
        let mut c = wh.connect().expect("connect");
        c.execute("CREATE TABLE kept AS SELECT 1 AS x")
            .expect("create");
    }
    assert!(dir.path().join("dev.duckdb").exists());
    let wh = open(&target("dev.duckdb"), dir.path()).expect("reopen");
    let mut c = wh.connect().expect("connect");
    assert_eq!(
        c.query("SELECT x FROM kept").expect("query").rows,
        [[json!(1)]]
    );
    // The catalog is named after the file stem, as TargetConfig::database says.
    assert_eq!(
        c.query("SELECT current_database()").expect("query").rows,
        [[json!(target("dev.duckdb").database())]]
    );
}

#[test]
fn extensions_are_never_fetched() {
    let wh = memory();
    let mut c = wh.connect().expect("connect");
    let got = c
        .query(
            "SELECT current_setting('autoinstall_known_extensions'), \
             current_setting('autoload_known_extensions')",
        )
        .expect("query");
    assert_eq!(got.rows, [[json!(false), json!(false)]]);
}

/// Without ICU a `TIMESTAMP WITH TIME ZONE` can be neither shifted nor
/// truncated, so `now()`, `current_timestamp` and `current_date` are the
/// plain UTC timestamp and date, and date arithmetic on them works.
#[test]
fn now_and_current_timestamp_take_intervals_without_icu() {
    let wh = memory();
    let mut c = wh.connect().expect("connect");
    let got = c
        .query(
            "SELECT typeof(now()), typeof(current_timestamp), \
             now() + INTERVAL 1 DAY > current_timestamp, \
             date_trunc('day', now()) = current_date, \
             current_date = today(), \
             now() - make_timestamp(epoch_us(transaction_timestamp())) = INTERVAL 0 SECOND",
        )
        .expect("query")
        .rows;
    assert_eq!(
        got,
        vec![vec![
            json!("TIMESTAMP"),
            json!("TIMESTAMP"),
            json!(true),
            json!(true),
            json!(true),
            json!(true)
        ]]
    );
}

#[test]
fn server_version_names_duckdb() {
    let version = memory().server_version().expect("version");
    assert!(version.starts_with("DuckDB v"), "{version}");
}

#[test]
fn query_converts_values_to_json() {
    let wh = memory();
    let mut c = wh.connect().expect("connect");
    let got = c
        .query(
            "SELECT 1 AS i, 9007199254740993::BIGINT AS big, 2.5::DOUBLE AS f, \
             CAST(1.25 AS DECIMAL(10,2)) AS d, CAST(3 AS DECIMAL(10,2)) AS d_whole, \
             true AS b, 'x' AS t, DATE '2024-01-31' AS dt, \
             TIMESTAMP '2024-01-31 10:11:12' AS ts, TIMESTAMP '2024-01-31 10:11:12.5' AS ts_frac, \
             TIME '01:02:03' AS tm, NULL AS n, [1, 2] AS l, {'k': 'v'} AS s, \
             170141183460469231731687303715884105727::HUGEINT AS huge",
        )
        .expect("query");
    assert_eq!(
        got.rows,
        [[
            json!(1),
            json!(9007199254740993_i64),
            json!(2.5),
            json!(1.25),
            json!(3),
            json!(true),
            json!("x"),
            json!("2024-01-31"),
            json!("2024-01-31T10:11:12"),
            json!("2024-01-31T10:11:12.500000"),
            json!("01:02:03"),
            json!(null),
            json!([1, 2]),
            json!({"k": "v"}),
            json!("170141183460469231731687303715884105727"),
        ]]
    );
    let types: Vec<&str> = got.columns.iter().map(|c| c.data_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "INTEGER",
            "BIGINT",
            "DOUBLE",
            "DECIMAL(10,2)",
            "DECIMAL(10,2)",
            "BOOLEAN",
            "VARCHAR",
            "DATE",
            "TIMESTAMP",
            "TIMESTAMP",
            "TIME",
            "NULL",
            "INTEGER[]",
            "STRUCT",
            "HUGEINT"
        ]
    );
    assert_eq!(got.columns[0].name, "i");
}

#[test]
fn execute_reports_rows_of_the_last_statement() {
    let wh = memory();
    let mut c = wh.connect().expect("connect");
    let n = c
        .execute("CREATE TABLE e (x INTEGER); INSERT INTO e VALUES (1), (2), (3)")
        .expect("execute");
    assert_eq!(n, 3);
    assert_eq!(c.execute("DELETE FROM e WHERE x > 1").expect("delete"), 2);
    assert!(c.execute("SELECT * FROM missing_table").is_err());
}

#[test]
fn bulk_insert_casts_text_per_column() {
    let wh = memory();
    let mut c = wh.connect().expect("connect");
    c.execute("CREATE TABLE bulk (i BIGINT, d DATE, b BOOLEAN, s VARCHAR)")
        .expect("create");
    let relation = Relation {
        database: None,
        schema: "main".into(),
        identifier: "bulk".into(),
    };
    let cols = adapter::get_columns(c.as_mut(), Engine::DuckDb, &relation).expect("cols");
    let text = |v: &str| Some(v.to_string());
    let n = c
        .bulk_insert(
            &relation,
            &cols,
            &[
                vec![text("1"), text("2024-01-31"), text("true"), text("a")],
                vec![None, None, None, None],
            ],
        )
        .expect("bulk insert");
    assert_eq!(n, 2);
    let got = c
        .query("SELECT i, CAST(d AS VARCHAR), b, s FROM bulk ORDER BY i NULLS LAST")
        .expect("query");
    assert_eq!(
        got.rows,
        [
            [json!(1), json!("2024-01-31"), json!(true), json!("a")],
            [json!(null), json!(null), json!(null), json!(null)]
        ]
    );
    let bad = c.bulk_insert(&relation, &cols, &[vec![text("x"), None, None, None]]);
    assert!(bad.is_err());
}

#[test]
fn three_part_names_use_the_catalog() {
    let (_dir, wh) = file();
    let mut conn = cases::connect(&*wh, SCHEMA);
    let c = conn.as_mut();
    let relation = Relation {
        database: Some(target("dev.duckdb").database()),
        schema: SCHEMA.into(),
        identifier: "qualified".into(),
    };
    assert_eq!(
        adapter::render(&relation),
        "\"dev\".\"analytics\".\"qualified\""
    );
    for _ in 0..2 {
        build_model(
            c,
            Engine::DuckDb,
            &cases::model(&relation, Materialization::Table, "SELECT 1 AS id"),
        )
        .expect("build");
    }
    assert_eq!(cases::count(c, &relation), 1);
    assert_eq!(
        adapter::get_relation(c, Engine::DuckDb, &relation).expect("get"),
        Some(sluice::warehouse::RelationKind::Table)
    );
}

#[test]
fn view_downstream_survives_a_column_change_on_duckdb() {
    // DuckDB binds views by name at query time, so even a rename swap (used
    // when the table's columns change) leaves downstream views answering.
    let wh = memory();
    let mut conn = cases::connect(&*wh, SCHEMA);
    let c = conn.as_mut();
    let t = cases::rel(SCHEMA, "up");
    let v = cases::rel(SCHEMA, "down");
    build_model(
        c,
        Engine::DuckDb,
        &cases::model(&t, Materialization::Table, "SELECT 1 AS id"),
    )
    .expect("table");
    let view_sql = format!("SELECT id FROM {}", adapter::render(&t));
    build_model(
        c,
        Engine::DuckDb,
        &cases::model(&v, Materialization::View, &view_sql),
    )
    .expect("view");
    build_model(
        c,
        Engine::DuckDb,
        &cases::model(
            &t,
            Materialization::Table,
            "SELECT 1 AS id, 'new' AS extra UNION ALL SELECT 2, 'x'",
        ),
    )
    .expect("rebuild");
    assert_eq!(cases::count(c, &v), 2);
}

#[test]
fn readers_never_see_a_missing_table_during_rebuilds() {
    let wh = memory();
    let mut conn = cases::connect(&*wh, SCHEMA);
    let t = cases::rel(SCHEMA, "hot");
    let sql = "SELECT range AS id FROM range(1000)";
    build_model(
        conn.as_mut(),
        Engine::DuckDb,
        &cases::model(&t, Materialization::Table, sql),
    )
    .expect("first build");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut r = wh.connect().expect("reader");
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = cases::count(r.as_mut(), &t);
                assert_eq!(n, 1000, "a reader saw a partial table");
                reads += 1;
            }
            reads
        });
        for _ in 0..20 {
            build_model(
                conn.as_mut(),
                Engine::DuckDb,
                &cases::model(&t, Materialization::Table, sql),
            )
            .expect("rebuild");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("reader panicked") > 0);
    });
}
