//! Engine-neutral warehouse behaviour cases: materializations, seeds and
//! adapter operations, written against `&dyn Warehouse` and a fresh schema
//! name so the same functions run on DuckDB (`warehouse.rs`) and PostgreSQL
//! (`warehouse_pg.rs`). Each case panics on failure.
//!
//! SQL in these cases sticks to what both engines accept.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::warehouse::adapter;
use sluice::warehouse::materialize::{
    build_model, BuildError, Materialization, ModelBuild, OnSchemaChange,
};
use sluice::warehouse::seed::{load_seed, load_seed_with, SeedError, SeedOptions};
use sluice::warehouse::{Connection, Engine, Relation, RelationKind, Warehouse, WarehouseError};

/// A relation in `schema` of the current database.
pub fn rel(schema: &str, identifier: &str) -> Relation {
    Relation {
        database: None,
        schema: schema.to_string(),
        identifier: identifier.to_string(),
    }
}

/// A connection with `schema` created.
pub fn connect(wh: &dyn Warehouse, schema: &str) -> Box<dyn Connection> {
    let mut conn = wh.connect().expect("connect");
    adapter::create_schema_if_missing(conn.as_mut(), wh.engine(), None, schema)
        .expect("create schema");
    conn
}

/// A model build with every option at its default.
pub fn model<'a>(
    relation: &'a Relation,
    materialized: Materialization,
    sql: &'a str,
) -> ModelBuild<'a> {
    ModelBuild {
        relation,
        materialized,
        sql,
        unique_key: Vec::new(),
        incremental_strategy: None,
        on_schema_change: OnSchemaChange::Ignore,
        full_refresh: false,
        pre_hooks: &[],
        post_hooks: &[],
        contract: None,
        indexes: &[],
        comments: None,
        incremental_predicates: Vec::new(),
        batch: None,
        merge_update_columns: Vec::new(),
        merge_exclude_columns: Vec::new(),
        external: None,
        grants: &NO_GRANTS,
    }
}

static NO_GRANTS: sluice::warehouse::post_build::Grants = std::collections::BTreeMap::new();

pub fn rows(conn: &mut dyn Connection, sql: &str) -> Vec<Vec<Value>> {
    conn.query(sql)
        .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"))
        .rows
}

pub fn count(conn: &mut dyn Connection, relation: &Relation) -> i64 {
    let r = rows(
        conn,
        &format!("SELECT count(*) FROM {}", adapter::render(relation)),
    );
    r[0][0].as_i64().expect("count is an integer")
}

fn build(
    conn: &mut dyn Connection,
    wh: &dyn Warehouse,
    b: &ModelBuild,
) -> sluice::warehouse::materialize::BuildOutcome {
    build_model(conn, wh.engine(), b).unwrap_or_else(|e| panic!("build failed: {e}"))
}

fn kind(
    conn: &mut dyn Connection,
    wh: &dyn Warehouse,
    relation: &Relation,
) -> Option<RelationKind> {
    adapter::get_relation(conn, wh.engine(), relation).expect("get_relation")
}

fn column_names(conn: &mut dyn Connection, wh: &dyn Warehouse, relation: &Relation) -> Vec<String> {
    adapter::get_columns(conn, wh.engine(), relation)
        .expect("get_columns")
        .into_iter()
        .map(|c| c.name.to_lowercase())
        .collect()
}

/// No temporary relations are left behind in the schema.
fn assert_no_leftovers(conn: &mut dyn Connection, wh: &dyn Warehouse, schema: &str) {
    let leftovers: Vec<String> = adapter::list_relations(conn, wh.engine(), None, schema)
        .expect("list_relations")
        .into_iter()
        .map(|(r, _)| r.identifier)
        .filter(|id| id.contains("__sluice"))
        .collect();
    assert!(leftovers.is_empty(), "leftover relations: {leftovers:?}");
}

// ---------------------------------------------------------------- adapter

pub fn adapter_catalog_operations(wh: &dyn Warehouse, schema: &str) {
    let engine = wh.engine();
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    // Idempotent.
    adapter::create_schema_if_missing(c, engine, None, schema).expect("second create");
    assert!(adapter::schema_exists(c, engine, None, schema).expect("schema_exists"));

    let t = rel(schema, "cat_table");
    let v = rel(schema, "cat_view");
    assert_eq!(kind(c, wh, &t), None);
    c.execute(&format!(
        "CREATE TABLE {} (id INTEGER, name VARCHAR(20), amount NUMERIC(10,2))",
        adapter::render(&t)
    ))
    .expect("create table");
    c.execute(&format!(
        "CREATE VIEW {} AS SELECT id FROM {}",
        adapter::render(&v),
        adapter::render(&t)
    ))
    .expect("create view");
    assert_eq!(kind(c, wh, &t), Some(RelationKind::Table));
    assert_eq!(kind(c, wh, &v), Some(RelationKind::View));

    let cols = adapter::get_columns(c, engine, &t).expect("get_columns");
    let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["id", "name", "amount"]);
    let types: Vec<String> = cols.iter().map(|c| c.data_type.to_lowercase()).collect();
    assert!(types[0].contains("int"), "{types:?}");
    assert!(types[2].contains("10,2"), "{types:?}");
    assert!(adapter::get_columns(c, engine, &rel(schema, "nope"))
        .expect("get_columns of missing")
        .is_empty());

    let listed: Vec<(String, RelationKind)> = adapter::list_relations(c, engine, None, schema)
        .expect("list")
        .into_iter()
        .map(|(r, k)| (r.identifier, k))
        .collect();
    assert_eq!(
        listed,
        [
            ("cat_table".to_string(), RelationKind::Table),
            ("cat_view".to_string(), RelationKind::View)
        ]
    );

    adapter::drop_relation(c, engine, &v, RelationKind::View).expect("drop view");
    adapter::drop_relation(c, engine, &t, RelationKind::Table).expect("drop table");
    adapter::drop_relation(c, engine, &t, RelationKind::Table).expect("drop is idempotent");
    assert_eq!(kind(c, wh, &t), None);
}

// -------------------------------------------------------- materializations

pub fn view_materialization(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let v = rel(schema, "my_view");
    let out = build(
        c,
        wh,
        &model(&v, Materialization::View, "SELECT 1 AS id, 'a' AS name;"),
    );
    assert_eq!(out.message, "CREATE VIEW");
    assert_eq!(out.rows_affected, None);
    assert_eq!(kind(c, wh, &v), Some(RelationKind::View));
    assert_eq!(count(c, &v), 1);

    // Replacing the view with different columns works.
    build(
        c,
        wh,
        &model(&v, Materialization::View, "SELECT 2 AS other"),
    );
    assert_eq!(column_names(c, wh, &v), ["other"]);

    // A table with the view's name is replaced by the view.
    let t = rel(schema, "was_table");
    c.execute(&format!(
        "CREATE TABLE {} AS SELECT 1 AS x",
        adapter::render(&t)
    ))
    .expect("create table");
    build(c, wh, &model(&t, Materialization::View, "SELECT 5 AS x"));
    assert_eq!(kind(c, wh, &t), Some(RelationKind::View));
    assert_eq!(
        rows(c, &format!("SELECT x FROM {}", adapter::render(&t))),
        [[json!(5)]]
    );
}

pub fn table_materialization(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "my_table");
    let sql = "SELECT 1 AS id UNION ALL SELECT 2 UNION ALL SELECT 3";
    let out = build(c, wh, &model(&t, Materialization::Table, sql));
    assert_eq!(out.message, "SELECT 3");
    assert_eq!(out.rows_affected, Some(3));
    assert_eq!(kind(c, wh, &t), Some(RelationKind::Table));
    assert_eq!(count(c, &t), 3);

    // Rebuild with other rows, then with other columns.
    build(c, wh, &model(&t, Materialization::Table, "SELECT 7 AS id"));
    assert_eq!(
        rows(c, &format!("SELECT id FROM {}", adapter::render(&t))),
        [[json!(7)]]
    );
    build(
        c,
        wh,
        &model(&t, Materialization::Table, "SELECT 7 AS id, 'x' AS name"),
    );
    assert_eq!(column_names(c, wh, &t), ["id", "name"]);

    // A view with the table's name is replaced by the table.
    let v = rel(schema, "was_view");
    c.execute(&format!(
        "CREATE VIEW {} AS SELECT 1 AS x",
        adapter::render(&v)
    ))
    .expect("create view");
    build(c, wh, &model(&v, Materialization::Table, "SELECT 2 AS x"));
    assert_eq!(kind(c, wh, &v), Some(RelationKind::Table));
    assert_no_leftovers(c, wh, schema);
}

pub fn failed_table_rebuild_keeps_old_rows(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "keeper");
    build(
        c,
        wh,
        &model(
            &t,
            Materialization::Table,
            "SELECT 1 AS id UNION ALL SELECT 2",
        ),
    );
    let err = build_model(
        c,
        wh.engine(),
        &model(
            &t,
            Materialization::Table,
            "SELECT id FROM no_such_table_anywhere",
        ),
    );
    assert!(err.is_err(), "bad SQL must fail");
    // Same connection still usable, old rows intact, no temp table left.
    assert_eq!(count(c, &t), 2);
    let mut other = wh.connect().expect("connect");
    assert_eq!(count(other.as_mut(), &t), 2);
    assert_no_leftovers(c, wh, schema);

    // A failing post-hook rolls the whole rebuild back too.
    let hooks = ["SELECT * FROM no_such_table_anywhere".to_string()];
    let mut b = model(&t, Materialization::Table, "SELECT 9 AS id");
    b.post_hooks = &hooks;
    match build_model(c, wh.engine(), &b) {
        Err(BuildError::Hook { number: 1, .. }) => {}
        other => panic!("expected a post-hook failure, got {other:?}"),
    }
    assert_eq!(count(c, &t), 2);
}

pub fn view_downstream_of_rebuilt_table_still_answers(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "upstream");
    let v = rel(schema, "downstream");
    build(
        c,
        wh,
        &model(&t, Materialization::Table, "SELECT 1 AS id, 'a' AS name"),
    );
    let view_sql = format!("SELECT id, name FROM {}", adapter::render(&t));
    build(c, wh, &model(&v, Materialization::View, &view_sql));
    assert_eq!(count(c, &v), 1);

    build(
        c,
        wh,
        &model(
            &t,
            Materialization::Table,
            "SELECT 1 AS id, 'a' AS name UNION ALL SELECT 2, 'b'",
        ),
    );
    assert_eq!(
        kind(c, wh, &v),
        Some(RelationKind::View),
        "view must survive"
    );
    assert_eq!(count(c, &v), 2);
    let mut other = wh.connect().expect("connect");
    assert_eq!(count(other.as_mut(), &v), 2);
}

pub fn ephemeral_builds_nothing(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let e = rel(schema, "ephemeral_model");
    let out = build(
        c,
        wh,
        &model(&e, Materialization::Ephemeral, "SELECT 1 AS id"),
    );
    assert_eq!(out.rows_affected, None);
    assert_eq!(kind(c, wh, &e), None);
}

pub fn hooks_run_in_order_inside_the_build(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let log = rel(schema, "hook_log");
    let t = rel(schema, "hooked");
    c.execute(&format!(
        "CREATE TABLE {} (step VARCHAR(20))",
        adapter::render(&log)
    ))
    .expect("create log");
    let pre = [format!(
        "INSERT INTO {} VALUES ('pre')",
        adapter::render(&log)
    )];
    let post = [format!(
        "INSERT INTO {} SELECT 'post ' || CAST(count(*) AS VARCHAR) FROM {}",
        adapter::render(&log),
        adapter::render(&t)
    )];
    let mut b = model(
        &t,
        Materialization::Table,
        "SELECT 1 AS id UNION ALL SELECT 2",
    );
    b.pre_hooks = &pre;
    b.post_hooks = &post;
    build(c, wh, &b);
    let steps = rows(
        c,
        &format!(
            "SELECT step FROM {} ORDER BY step DESC",
            adapter::render(&log)
        ),
    );
    assert_eq!(steps, [[json!("pre")], [json!("post 2")]]);
}

// ------------------------------------------------------------ incremental

const FIRST_BATCH: &str = "SELECT 1 AS id, 'a' AS val UNION ALL SELECT 2, 'b'";
const SECOND_BATCH: &str = "SELECT 2 AS id, 'B' AS val UNION ALL SELECT 3, 'c'";

pub fn incremental_first_run_then_append(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "inc_append");
    let out = build(c, wh, &model(&t, Materialization::Incremental, FIRST_BATCH));
    assert_eq!(out.message, "SELECT 2");
    let out = build(
        c,
        wh,
        &model(&t, Materialization::Incremental, SECOND_BATCH),
    );
    assert_eq!(out.message, "INSERT 0 2");
    assert_eq!(out.rows_affected, Some(2));
    assert_eq!(count(c, &t), 4, "append keeps duplicates by design");
    assert_no_leftovers(c, wh, schema);

    // full_refresh rebuilds from scratch.
    let mut b = model(&t, Materialization::Incremental, SECOND_BATCH);
    b.full_refresh = true;
    let out = build(c, wh, &b);
    assert_eq!(out.message, "SELECT 2");
    assert_eq!(count(c, &t), 2);

    // An incremental model whose relation is a view is rebuilt as a table.
    let v = rel(schema, "inc_was_view");
    build(c, wh, &model(&v, Materialization::View, FIRST_BATCH));
    build(
        c,
        wh,
        &model(&v, Materialization::Incremental, SECOND_BATCH),
    );
    assert_eq!(kind(c, wh, &v), Some(RelationKind::Table));
    assert_eq!(count(c, &v), 2);
}

/// Run an incremental model twice with overlapping keys under `strategy`
/// (`None`: the adapter default); the overlap must not duplicate.
pub fn incremental_upsert_has_no_duplicates(
    wh: &dyn Warehouse,
    schema: &str,
    strategy: Option<&str>,
    composite: bool,
) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let name = format!(
        "inc_{}_{}",
        strategy.unwrap_or("default").replace('+', "_"),
        if composite { "composite" } else { "single" }
    );
    let t = rel(schema, &name);
    let (first, second, keys) = if composite {
        (
            "SELECT 1 AS k1, 'x' AS k2, 'a' AS val UNION ALL SELECT 1, 'y', 'b' UNION ALL SELECT 2, 'x', 'c'",
            "SELECT 1 AS k1, 'y' AS k2, 'B' AS val UNION ALL SELECT 2, 'y', 'd'",
            vec!["k1".to_string(), "k2".to_string()],
        )
    } else {
        (FIRST_BATCH, SECOND_BATCH, vec!["id".to_string()])
    };
    for sql in [first, second, second] {
        let mut b = model(&t, Materialization::Incremental, sql);
        b.unique_key = keys.clone();
        b.incremental_strategy = strategy.map(str::to_string);
        build(c, wh, &b);
    }
    let got = if composite {
        rows(
            c,
            &format!(
                "SELECT k1, k2, val FROM {} ORDER BY k1, k2",
                adapter::render(&t)
            ),
        )
    } else {
        rows(
            c,
            &format!("SELECT id, val FROM {} ORDER BY id", adapter::render(&t)),
        )
    };
    let want: Vec<Vec<Value>> = if composite {
        vec![
            vec![json!(1), json!("x"), json!("a")],
            vec![json!(1), json!("y"), json!("B")],
            vec![json!(2), json!("x"), json!("c")],
            vec![json!(2), json!("y"), json!("d")],
        ]
    } else {
        vec![
            vec![json!(1), json!("a")],
            vec![json!(2), json!("B")],
            vec![json!(3), json!("c")],
        ]
    };
    assert_eq!(got, want);
    assert_no_leftovers(c, wh, schema);
}

/// `incremental_predicates` narrow the rows a keyed strategy replaces, with
/// dbt's `DBT_INTERNAL_DEST` alias for the existing table: id 1 is outside
/// the predicate, so its new row is added beside the old one, while id 3 is
/// replaced.
pub fn incremental_predicates_narrow_the_replaced_rows(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    for strategy in ["delete+insert", "merge"] {
        let t = rel(schema, &format!("pred_{}", strategy.replace('+', "_")));
        let first = "SELECT 1 AS id, 'a' AS val UNION ALL SELECT 2, 'b' UNION ALL SELECT 3, 'c'";
        let second = "SELECT 1 AS id, 'A' AS val UNION ALL SELECT 3, 'C'";
        for sql in [first, second] {
            let mut b = model(&t, Materialization::Incremental, sql);
            b.unique_key = vec!["id".into()];
            b.incremental_strategy = Some(strategy.into());
            b.incremental_predicates = vec!["DBT_INTERNAL_DEST.id > 1".into()];
            build(c, wh, &b);
        }
        let got = rows(
            c,
            &format!(
                "SELECT id, val FROM {} ORDER BY id, val",
                adapter::render(&t)
            ),
        );
        assert_eq!(
            got,
            vec![
                vec![json!(1), json!("A")],
                vec![json!(1), json!("a")],
                vec![json!(2), json!("b")],
                vec![json!(3), json!("C")],
            ],
            "{strategy}"
        );
    }
}

fn incremental_with_schema_change(
    wh: &dyn Warehouse,
    c: &mut dyn Connection,
    t: &Relation,
    mode: OnSchemaChange,
) -> Result<(), BuildError> {
    let first = "SELECT 1 AS id, 'a' AS old_col, 10 AS amount";
    // Second batch: old_col removed, new_col added, amount becomes text.
    let second = "SELECT 2 AS id, 'n' AS new_col, 'twenty' AS amount";
    build(c, wh, &model(t, Materialization::Incremental, first));
    let mut b = model(t, Materialization::Incremental, second);
    b.on_schema_change = mode;
    build_model(c, wh.engine(), &b).map(|_| ())
}

pub fn schema_change_ignore(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "osc_ignore");
    // dbt's `ignore` inserts the target's columns; the model lacks old_col,
    // so (as in dbt) the insert fails and the table is left as it was.
    let result = incremental_with_schema_change(wh, c, &t, OnSchemaChange::Ignore);
    assert!(result.is_err());
    assert_eq!(column_names(c, wh, &t), ["id", "old_col", "amount"]);
    assert_eq!(count(c, &t), 1);

    // Added columns alone are ignored: the row lands without them.
    let t2 = rel(schema, "osc_ignore_add");
    build(
        c,
        wh,
        &model(&t2, Materialization::Incremental, "SELECT 1 AS id"),
    );
    build(
        c,
        wh,
        &model(
            &t2,
            Materialization::Incremental,
            "SELECT 2 AS id, 'x' AS extra",
        ),
    );
    assert_eq!(column_names(c, wh, &t2), ["id"]);
    assert_eq!(count(c, &t2), 2);
}

pub fn schema_change_fail(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "osc_fail");
    match incremental_with_schema_change(wh, c, &t, OnSchemaChange::Fail) {
        Err(BuildError::SchemaChange(message)) => {
            for needle in ["new_col", "old_col", "amount", "--full-refresh"] {
                assert!(message.contains(needle), "{needle} missing from: {message}");
            }
        }
        other => panic!("expected a schema change error, got {other:?}"),
    }
    assert_eq!(column_names(c, wh, &t), ["id", "old_col", "amount"]);
    assert_eq!(count(c, &t), 1);
    assert_no_leftovers(c, wh, schema);
}

pub fn schema_change_append_new_columns(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "osc_append");
    // Type changes are not applied by append_new_columns, so keep amount numeric.
    build(
        c,
        wh,
        &model(
            &t,
            Materialization::Incremental,
            "SELECT 1 AS id, 'a' AS old_col",
        ),
    );
    let mut b = model(
        &t,
        Materialization::Incremental,
        "SELECT 2 AS id, 'n' AS new_col",
    );
    b.on_schema_change = OnSchemaChange::AppendNewColumns;
    build(c, wh, &b);
    assert_eq!(column_names(c, wh, &t), ["id", "old_col", "new_col"]);
    let got = rows(
        c,
        &format!(
            "SELECT id, old_col, new_col FROM {} ORDER BY id",
            adapter::render(&t)
        ),
    );
    assert_eq!(
        got,
        [
            [json!(1), json!("a"), Value::Null],
            [json!(2), Value::Null, json!("n")]
        ]
    );
}

pub fn schema_change_sync_all_columns(wh: &dyn Warehouse, schema: &str) {
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "osc_sync");
    incremental_with_schema_change(wh, c, &t, OnSchemaChange::SyncAllColumns)
        .unwrap_or_else(|e| panic!("sync_all_columns failed: {e}"));
    assert_eq!(column_names(c, wh, &t), ["id", "amount", "new_col"]);
    let got = rows(
        c,
        &format!(
            "SELECT id, amount, new_col FROM {} ORDER BY id",
            adapter::render(&t)
        ),
    );
    assert_eq!(
        got,
        [
            [json!(1), json!("10"), Value::Null],
            [json!(2), json!("twenty"), json!("n")]
        ]
    );
}

// ------------------------------------------------------------------ seeds

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write csv");
    path
}

pub fn seed_infers_types(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "seed_types");
    let csv = write(
        dir.path(),
        "types.csv",
        "i,n,b,d,ts,s,empty\n\
         1,1.5,true,2024-01-31,2024-01-31 10:11:12,hello,\n\
         2,2,FALSE,2024-02-01,2024-02-01T00:00:00.250,\"a, b\",\n\
         ,,,,,,\n",
    );
    let out = load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.rows_affected, Some(3));
    assert_eq!(out.message, "INSERT 3");
    let types: Vec<String> = adapter::get_columns(c, wh.engine(), &t)
        .expect("columns")
        .into_iter()
        .map(|c| c.data_type.to_lowercase())
        .collect();
    // dbt's SQL adapters: `integer`, `float8`; an all-empty column is
    // `integer` too (agate's first type).
    assert_eq!(types[0], "integer");
    assert!(
        types[1] == "double" || types[1] == "double precision",
        "{types:?}"
    );
    assert_eq!(types[2], "boolean");
    assert_eq!(types[3], "date");
    assert!(types[4].starts_with("timestamp"), "{types:?}");
    assert!(types[5] == "varchar" || types[5] == "text", "{types:?}");
    assert_eq!(types[6], "integer");
    let got = rows(
        c,
        &format!(
            "SELECT i, b, s, CAST(d AS VARCHAR) FROM {} WHERE i IS NOT NULL ORDER BY i",
            adapter::render(&t)
        ),
    );
    assert_eq!(
        got,
        [
            [json!(1), json!(true), json!("hello"), json!("2024-01-31")],
            [json!(2), json!(false), json!("a, b"), json!("2024-02-01")]
        ]
    );
    let nulls = rows(
        c,
        &format!(
            "SELECT count(*) FROM {} WHERE i IS NULL AND s IS NULL",
            adapter::render(&t)
        ),
    );
    assert_eq!(nulls, [[json!(1)]], "empty fields load as NULL");
}

/// Seeds load as dbt's adapter for the engine loads them. PostgreSQL (dbt
/// reads the file with agate): quoted empty values are NULL like unquoted
/// ones, and so are blanks and `null`, whichever path the load takes (the
/// file streamed to COPY or the rows). DuckDB (dbt-duckdb `COPY`s the file
/// with DuckDB's reader): empty values are NULL, a blank and `NULL` are
/// text. Both: quoted newlines and CRLF line ends are data, quotes inside
/// an unquoted value are kept, blank lines are skipped, and the seed's
/// `delimiter` separates fields.
pub fn seed_reads_csv_edge_cases_like_the_checker(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let render = |t: &sluice::warehouse::Relation| adapter::render(t);
    let plain = rel(schema, "seed_edges");
    let csv = write(
        dir.path(),
        "edges.csv",
        "id,note\r\n1,\"\"\r\n2,\"two\nlines\"\r\n3,\"say \"\"hi\"\"\"\r\n4,{ \"a\": [1] }\r\n5, \r\n6,NULL\r\n",
    );
    let out = load_seed(c, wh.engine(), &plain, &csv, &BTreeMap::new(), false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.rows_affected, Some(6));
    let got = rows(
        c,
        &format!("SELECT id, note FROM {} ORDER BY id", render(&plain)),
    );
    assert_eq!(
        got,
        [
            [json!(1), json!(null)],
            [json!(2), json!("two\nlines")],
            [json!(3), json!("say \"hi\"")],
            // Quotes inside an unquoted value are data, as Python's csv
            // (dbt's) reads them.
            [json!(4), json!("{ \"a\": [1] }")],
        ]
        .into_iter()
        .chain(match wh.engine() {
            // Blanks and `null` are NULL, as dbt (agate) reads them.
            Engine::Postgres => [[json!(5), json!(null)], [json!(6), json!(null)]],
            // DuckDB's CSV reader keeps them, as in dbt-duckdb.
            Engine::DuckDb => [[json!(5), json!(" ")], [json!(6), json!("NULL")]],
        })
        .collect::<Vec<_>>()
    );
    let semi = rel(schema, "seed_semicolons");
    let csv = write(dir.path(), "semi.csv", "id;name\n1;a,b\n2;\"c;d\"\n");
    let o = SeedOptions {
        column_types: &BTreeMap::new(),
        full_refresh: false,
        quote_columns: true,
        delimiter: b';',
    };
    let out = load_seed_with(c, wh.engine(), &semi, &csv, &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.rows_affected, Some(2));
    assert_eq!(
        rows(
            c,
            &format!("SELECT id, name FROM {} ORDER BY id", render(&semi))
        ),
        [[json!(1), json!("a,b")], [json!(2), json!("c;d")]]
    );
    let blank = rel(schema, "seed_blank_lines");
    let csv = write(dir.path(), "blank.csv", "id,name\n1,a\n\n2,b\n\n");
    let out = load_seed(c, wh.engine(), &blank, &csv, &BTreeMap::new(), false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.rows_affected, Some(2), "blank lines are not rows");
    let got = rows(
        c,
        &format!(
            "SELECT count(*) FROM {} WHERE name IS NOT NULL",
            render(&blank)
        ),
    );
    assert_eq!(got, [[json!(2)]]);
}

pub fn seed_column_types_override(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "seed_override");
    let csv = write(dir.path(), "codes.csv", "code,label\n007,x\n42,y\n");
    let types = BTreeMap::from([("code".to_string(), "varchar(16)".to_string())]);
    load_seed(c, wh.engine(), &t, &csv, &types, false).unwrap_or_else(|e| panic!("{e}"));
    let got = rows(
        c,
        &format!("SELECT code FROM {} ORDER BY label", adapter::render(&t)),
    );
    assert_eq!(
        got,
        [[json!("007")], [json!("42")]],
        "leading zeros kept as text"
    );
}

pub fn seed_reload_replaces_rows(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "seed_reload");
    let csv = write(dir.path(), "r.csv", "id,name\n1,a\n2,b\n");
    load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false).unwrap_or_else(|e| panic!("{e}"));
    // A view on the seed keeps answering after a reload.
    let v = rel(schema, "seed_reload_view");
    c.execute(&format!(
        "CREATE VIEW {} AS SELECT id FROM {}",
        adapter::render(&v),
        adapter::render(&t)
    ))
    .expect("create view");
    write(dir.path(), "r.csv", "id,name\n3,c\n");
    load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows(c, &format!("SELECT id FROM {}", adapter::render(&v))),
        [[json!(3)]]
    );

    // A table whose types differ (loaded by an older sluice, or by hand)
    // keeps them, as dbt's truncate-and-insert does.
    c.execute(&format!("DROP VIEW {}", adapter::render(&v)))
        .expect("drop view");
    c.execute(&format!("DROP TABLE {}", adapter::render(&t)))
        .expect("drop table");
    c.execute(&format!(
        "CREATE TABLE {} (id BIGINT, name VARCHAR(40))",
        adapter::render(&t)
    ))
    .expect("create wider table");
    load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false).unwrap_or_else(|e| panic!("{e}"));
    let kept = adapter::get_columns(c, wh.engine(), &t).expect("columns");
    assert_eq!(kept[0].data_type.to_lowercase(), "bigint");
    assert_eq!(count(c, &t), 1);

    // Changed columns need a full refresh.
    write(dir.path(), "r.csv", "id,name,extra\n4,d,e\n");
    match load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false) {
        Err(e @ SeedError::Invalid { .. }) => {
            assert!(e.to_string().contains("--full-refresh"), "{e}")
        }
        other => panic!("expected a column change error, got {other:?}"),
    }
    assert_eq!(count(c, &t), 1);
    load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(column_names(c, wh, &t), ["id", "name", "extra"]);
    assert_no_leftovers(c, wh, schema);
}

pub fn seed_ragged_row_reports_line_and_keeps_table(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "seed_ragged");
    let csv = write(dir.path(), "ragged.csv", "id,name\n1,a\n2,b\n");
    load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), false).unwrap_or_else(|e| panic!("{e}"));

    write(
        dir.path(),
        "ragged.csv",
        "id,name\n1,a\n\"2\",\"multi\nline\"\n3,c,oops\n",
    );
    let err = load_seed(c, wh.engine(), &t, &csv, &BTreeMap::new(), true)
        .expect_err("ragged csv must fail");
    assert_eq!(err.line(), Some(5), "{err}");
    let text = err.to_string();
    assert!(text.contains("ragged.csv:5"), "{text}");
    assert!(text.contains("hint"), "{text}");
    assert_eq!(count(c, &t), 2, "previous seed table intact");
}

pub fn seed_bad_override_value_reports_line_and_keeps_table(wh: &dyn Warehouse, schema: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let t = rel(schema, "seed_badvalue");
    let csv = write(dir.path(), "bad.csv", "id,amount\n1,10\n2,20\n");
    let types = BTreeMap::from([("amount".to_string(), "integer".to_string())]);
    load_seed(c, wh.engine(), &t, &csv, &types, false).unwrap_or_else(|e| panic!("{e}"));

    write(
        dir.path(),
        "bad.csv",
        "id,amount\n1,10\n2,20\n3,30\n4,lots\n5,50\n",
    );
    let err = load_seed(c, wh.engine(), &t, &csv, &types, false).expect_err("bad value must fail");
    assert_eq!(err.line(), Some(5), "{err}");
    assert!(err.to_string().contains("column_types"), "{err}");
    assert_eq!(count(c, &t), 2, "previous seed table intact");
    assert_no_leftovers(c, wh, schema);
}

// ------------------------------------------------------------- cancelling

/// `long_query` must run for many seconds; `cancel_all` from another thread
/// must stop it promptly with `WarehouseError::Cancelled`, and the connection
/// must stay usable.
pub fn cancel_all_interrupts_long_query(wh: &dyn Warehouse, long_query: &str) {
    std::thread::scope(|scope| {
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let (resume_tx, resume_rx) = mpsc::channel::<()>();
        let worker = scope.spawn(move || {
            let mut conn = wh.connect().expect("connect");
            started_tx.send(()).expect("signal start");
            let started = Instant::now();
            let result = conn.query(long_query);
            let elapsed = started.elapsed();
            done_tx.send(()).expect("signal done");
            // Wait until the canceller has stopped, then check the connection.
            resume_rx.recv().expect("resume");
            let after = conn.query("SELECT 1 AS one").map(|r| r.rows);
            (result, elapsed, after)
        });
        started_rx.recv().expect("worker started");
        // Keep cancelling until the query ends: a cancel that lands before
        // the query has started is not guaranteed to stop it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while done_rx.recv_timeout(Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "query was not cancelled within 30s"
            );
            wh.cancel_all();
        }
        resume_tx.send(()).expect("resume worker");
        let (result, elapsed, after) = worker.join().expect("worker panicked");
        assert!(
            matches!(result, Err(WarehouseError::Cancelled)),
            "expected Cancelled, got {result:?}"
        );
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
        assert_eq!(after.expect("connection usable after cancel"), [[json!(1)]]);
    });
}

/// Typed rows through the engine's bulk path (binary COPY, the Appender):
/// values keep their types, text keeps quotes and newlines, NULLs stay NULL,
/// and a value that does not fit its column is an error that leaves the
/// connection usable and the table as it was.
pub fn load_rows_keeps_types(wh: &dyn Warehouse, schema: &str) {
    use sluice::warehouse::rows::Rows;
    let mut conn = connect(wh, schema);
    let c = conn.as_mut();
    let table = rel(schema, "typed_rows");
    let name = adapter::render(&table);
    c.execute(&format!(
        "CREATE TABLE {name} (i bigint, n integer, t timestamp, b boolean, s varchar)"
    ))
    .expect("create");
    let columns = adapter::get_columns(c, wh.engine(), &table).expect("columns");
    let mut rows = Rows::new(5);
    rows.int(Some(1 << 40));
    rows.int(Some(-7));
    // 2026-11-20 14:03:27.120 UTC
    rows.timestamp(Some(1_795_183_407_120_000));
    rows.bool(Some(true));
    rows.text(Some("a,\"b\"\nc"));
    for _ in 0..5 {
        rows.null();
    }
    assert_eq!(c.load_rows(&table, &columns, &rows).expect("load"), 2);
    let got = self::rows(
        c,
        &format!("SELECT i, n, CAST(t AS varchar), b, s FROM {name} ORDER BY i NULLS LAST"),
    );
    assert_eq!(
        got,
        [
            [
                json!(1_i64 << 40),
                json!(-7),
                json!("2026-11-20 14:03:27.12"),
                json!(true),
                json!("a,\"b\"\nc")
            ],
            [
                json!(null),
                json!(null),
                json!(null),
                json!(null),
                json!(null)
            ]
        ]
    );
    let mut too_big = Rows::new(5);
    too_big.int(Some(1));
    too_big.int(Some(1 << 40));
    for _ in 0..3 {
        too_big.null();
    }
    let err = c
        .load_rows(&table, &columns, &too_big)
        .expect_err("integer overflow");
    assert!(
        err.to_string().contains("1099511627776") || err.to_string().contains("out of range"),
        "{err}"
    );
    let count = self::rows(c, &format!("SELECT count(*) FROM {name}"));
    assert_eq!(count, [[json!(2)]], "nothing half-loaded");
}
