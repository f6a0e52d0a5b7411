//! The methods of dbt's `adapter` object that change or list what is in the
//! warehouse (`create_schema`, `drop_relation`, `rename_relation`,
//! `list_relations_without_caching`, `execute`, …), as macros and
//! `run-operation`s call them. Each is the statement dbt-postgres or
//! dbt-duckdb runs, sent through the render's connection; without one
//! (parsing) they do nothing and return empty answers, as `run_query` does.

use minijinja::value::{from_args, Kwargs};
use minijinja::{Error, ErrorKind, Value};

use super::objects::{quote, ColumnObj, RelationObj, RenderScope, ResolvedRelation, TableObj};
use crate::sql::Engine;
use crate::warehouse::adapter::{literal as lit, render_schema};

/// A relation argument's parts: database, schema, identifier, type, and
/// the name as the relation renders itself (a temporary table's has no
/// schema).
struct Parts {
    database: Option<String>,
    schema: String,
    identifier: String,
    kind: Option<String>,
    rendered: String,
}

fn text_attr(v: &Value, name: &str) -> Option<String> {
    v.get_attr(name)
        .ok()
        .filter(|a| !a.is_undefined() && !a.is_none())
        .map(|a| a.to_string())
        .filter(|s| !s.is_empty())
}

fn parts(v: &Value) -> Parts {
    Parts {
        database: text_attr(v, "database"),
        schema: text_attr(v, "schema").unwrap_or_default(),
        identifier: text_attr(v, "identifier").unwrap_or_default(),
        kind: text_attr(v, "type"),
        rendered: v.to_string(),
    }
}

impl Parts {
    fn schema_sql(&self, engine: Engine) -> String {
        render_schema(engine, self.database.as_deref(), &self.schema)
    }
}

fn relation_value(
    engine: Engine,
    database: Option<String>,
    schema: String,
    identifier: String,
    kind: &str,
) -> Value {
    Value::from_object(RelationObj {
        unique_id: String::new(),
        resolved: Some(ResolvedRelation {
            database,
            schema,
            identifier,
            kind: kind.to_string(),
            event_time: None,
            external: None,
        }),
        engine,
        limit_zero: false,
        event_time_window: None,
    })
}

/// The catalog condition on the relation's schema; none for a relation
/// without one (a temporary table, which lives in a session's own schema).
fn schema_filter(p: &Parts, fold: &str) -> String {
    if p.schema.is_empty() {
        String::new()
    } else {
        format!(" and {fold}(table_schema) = {fold}({})", lit(&p.schema))
    }
}

/// `table` or `view` for what the catalog says a relation is.
fn kind_of(table_type: &str) -> &'static str {
    if table_type.to_ascii_uppercase().contains("VIEW") {
        "view"
    } else {
        "table"
    }
}

/// What the catalog has at `p`: its kind, if it exists.
fn existing_kind(scope: &RenderScope, p: &Parts) -> Result<Option<&'static str>, Error> {
    let rows = scope.run_query(&format!(
        "select table_type from information_schema.tables where table_name = {}{}",
        lit(&p.identifier),
        schema_filter(p, "")
    ))?;
    Ok(rows
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_str())
        .map(kind_of))
}

fn columns_of(scope: &RenderScope, p: &Parts) -> Result<Vec<ColumnObj>, Error> {
    let rows = scope.run_query(&format!(
        "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale \
         from information_schema.columns where lower(table_name) = lower({}){} \
         order by ordinal_position",
        lit(&p.identifier),
        schema_filter(p, "lower")
    ))?;
    let text = cell_text;
    let number = |r: &[serde_json::Value], i: usize| {
        r.get(i)
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
    };
    Ok(rows
        .rows
        .iter()
        .map(|r| ColumnObj {
            name: text(r, 0),
            dtype: text(r, 1),
            char_size: number(r, 2),
            numeric_precision: number(r, 3),
            numeric_scale: number(r, 4),
        })
        .collect())
}

/// A query result's cell as text (empty when NULL or not text).
fn cell_text(row: &[serde_json::Value], i: usize) -> String {
    row.get(i)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// `adapter.get_columns_in_relation(relation)`: dbt's columns, in order.
pub fn columns_in_relation(scope: &RenderScope, relation: &Value) -> Result<Value, Error> {
    Ok(Value::from(
        columns_of(scope, &parts(relation))?
            .into_iter()
            .map(Value::from_object)
            .collect::<Vec<_>>(),
    ))
}

/// `adapter.<method>(args)` for the methods in this module; `None` for any
/// other method.
pub fn call(
    scope: &RenderScope,
    engine: Engine,
    external_root: Option<String>,
    method: &str,
    args: &[Value],
) -> Option<Result<Value, Error>> {
    let one = || -> Result<Parts, Error> {
        let (pos, _): (&[Value], Kwargs) = from_args(args)?;
        let v = pos.first().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingArgument,
                format!("adapter.{method} takes a relation"),
            )
        })?;
        Ok(parts(v))
    };
    let run = |sql: String| scope.run_query(&sql).map(|_| Value::from(()));
    Some(match method {
        "create_schema" => one().and_then(|p| {
            run(format!(
                "create schema if not exists {}",
                p.schema_sql(engine)
            ))
        }),
        "drop_schema" => one().and_then(|p| {
            run(format!(
                "drop schema if exists {} cascade",
                p.schema_sql(engine)
            ))
        }),
        "drop_relation" => one().and_then(|p| {
            let kind = match p.kind.as_deref() {
                Some(k @ ("table" | "view")) => Some(k.to_string()),
                _ => existing_kind(scope, &p)?.map(str::to_string),
            };
            match kind {
                Some(k) => run(format!("drop {k} if exists {} cascade", p.rendered)),
                None => Ok(Value::from(())),
            }
        }),
        "truncate_relation" => one().and_then(|p| run(format!("truncate table {}", p.rendered))),
        "rename_relation" => (|| {
            let (from, to): (Value, Value) = from_args(args)?;
            let (from, to) = (parts(&from), parts(&to));
            let kind = match from.kind.as_deref() {
                Some(k @ ("table" | "view")) => k.to_string(),
                _ => existing_kind(scope, &from)?.unwrap_or("table").to_string(),
            };
            run(format!(
                "alter {kind} {} rename to {}",
                from.rendered,
                quote(&to.identifier)
            ))
        })(),
        "get_missing_columns" => (|| {
            let (from, to): (Value, Value) = from_args(args)?;
            let have: Vec<String> = columns_of(scope, &parts(&to))?
                .into_iter()
                .map(|c| c.name.to_lowercase())
                .collect();
            Ok(Value::from(
                columns_of(scope, &parts(&from))?
                    .into_iter()
                    .filter(|c| !have.contains(&c.name.to_lowercase()))
                    .map(Value::from_object)
                    .collect::<Vec<_>>(),
            ))
        })(),
        "list_relations_without_caching" => one().and_then(|p| {
            // DuckDB's catalog lists every attached database's tables.
            let catalog = match (&p.database, engine) {
                (Some(db), Engine::DuckDb) => format!(" and table_catalog = {}", lit(db)),
                _ => String::new(),
            };
            let rows = scope.run_query(&format!(
                "select table_catalog, table_schema, table_name, table_type \
                 from information_schema.tables \
                 where table_schema = {}{catalog} order by table_name",
                lit(&p.schema)
            ))?;
            let text = cell_text;
            Ok(Value::from(
                rows.rows
                    .iter()
                    .map(|r| {
                        relation_value(
                            engine,
                            Some(text(r, 0)),
                            text(r, 1),
                            text(r, 2),
                            kind_of(&text(r, 3)),
                        )
                    })
                    .collect::<Vec<_>>(),
            ))
        }),
        "list_schemas" => (|| {
            let rows = scope.run_query(
                "select distinct schema_name from information_schema.schemata order by 1",
            )?;
            Ok(Value::from(
                rows.rows
                    .iter()
                    .filter_map(|r| r.first()?.as_str().map(str::to_string))
                    .collect::<Vec<_>>(),
            ))
        })(),
        "check_schema_exists" => (|| {
            let (_database, schema): (Value, String) = from_args(args)?;
            let rows = scope.run_query(&format!(
                "select count(*) from information_schema.schemata where schema_name = {}",
                lit(&schema)
            ))?;
            let n = rows
                .rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            Ok(Value::from(n > 0))
        })(),
        "already_exists" => (|| {
            let (schema, name): (String, String) = from_args(args)?;
            let p = Parts {
                database: None,
                schema,
                identifier: name,
                kind: None,
                rendered: String::new(),
            };
            Ok(Value::from(existing_kind(scope, &p)?.is_some()))
        })(),
        // dbt's `adapter.execute(sql, auto_begin=False, fetch=False)`: the
        // response and a table (empty unless fetched).
        "execute" => (|| {
            let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
            let sql = pos.first().map(|v| v.to_string()).unwrap_or_default();
            let fetch = match pos.get(2) {
                Some(v) => v.is_true(),
                None => kwargs.get::<Option<bool>>("fetch")?.unwrap_or(false),
            };
            let _ = kwargs.get::<Option<bool>>("auto_begin")?;
            let result = scope.run_query(&sql)?;
            let rows = result.rows.len();
            let table = if fetch { result } else { Default::default() };
            Ok(Value::from(vec![
                Value::from_serialize(serde_json::json!({
                    "_message": "OK", "code": "OK", "rows_affected": rows,
                })),
                Value::from_object(TableObj(table)),
            ]))
        })(),
        "quote_as_configured" => (|| {
            let (identifier, _key): (String, Value) = from_args(args)?;
            Ok(Value::from(quote(&identifier)))
        })(),
        "quote_seed_column" => (|| {
            let (column, quote_config): (String, Option<bool>) = from_args(args)?;
            Ok(Value::from(if quote_config.unwrap_or(true) {
                quote(&column)
            } else {
                column
            }))
        })(),
        // Transaction and relation-cache bookkeeping: sluice's connections
        // commit each statement, and it keeps no relation cache.
        "commit" | "begin" | "cache_added" | "cache_dropped" | "cache_renamed"
        | "clear_transaction" => Ok(Value::from(())),
        "warn_once" => (|| {
            let (msg,): (String,) = from_args(args)?;
            eprintln!("warning: {msg}");
            Ok(Value::from(()))
        })(),
        // dbt-duckdb's.
        "external_root" => Ok(Value::from(external_root.unwrap_or_else(|| ".".into()))),
        _ => return None,
    })
}
