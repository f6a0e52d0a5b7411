//! dbt unit tests (`unit_tests:` in schema YAML), the pure part: reading
//! fixtures, turning fixture rows into SQL, putting the model's SQL on top
//! of its fixtures, and comparing what it returns with what is expected.
//! `commands::run` runs the SQL, as dbt's `unit` materialization does:
//!
//! 1. every `given` input (`ref('x')`, `source('s', 't')`, `this`) becomes a
//!    CTE of its rows, typed like the input relation in the warehouse (so
//!    the upstream relations must exist: `build` runs a unit test after
//!    them and before its model), columns left out of the rows are null;
//! 2. the model's SQL reads those CTEs instead of the relations;
//! 3. the expected rows are cast to the types the model returns, and both
//!    sides are compared as multisets over the expected columns (extra
//!    columns the model returns are not compared; row order is ignored).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::project::node::UnitTestRows;
use crate::warehouse::adapter::quote;
use crate::warehouse::{ColumnMeta, Engine, QueryResult};

/// A unit test input as written in `given: - input: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Ref(String),
    Source(String, String),
    This,
}

/// `ref('x')`, `ref('pkg', 'x')`, `source('s', 't')` or `this` (quotes of
/// either kind, spaces anywhere).
pub fn parse_input(text: &str) -> Option<Input> {
    let t = text.trim();
    if t == "this" {
        return Some(Input::This);
    }
    let (func, rest) = t.split_once('(')?;
    let args = rest.trim_end().strip_suffix(')')?;
    let args: Vec<String> = args
        .split(',')
        .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|a| !a.is_empty() && !a.contains('='))
        .collect();
    match (func.trim(), args.as_slice()) {
        ("ref", [name]) | ("ref", [_, name]) => Some(Input::Ref(name.clone())),
        ("source", [source, table]) => Some(Input::Source(source.clone(), table.clone())),
        _ => None,
    }
}

/// The CTE name an input's rows are bound to.
pub fn cte_name(input: &Input) -> String {
    match input {
        Input::Ref(name) => format!("__dbt__cte__{name}"),
        Input::Source(s, t) => format!("__dbt__cte__{s}__{t}"),
        Input::This => "__dbt__cte__this".to_string(),
    }
}

/// Fixture rows: mappings from column to value (`dict`, and `csv` with
/// every value a string, empty meaning null), or a query (`sql`).
#[derive(Debug, Clone, PartialEq)]
pub enum Fixture {
    Rows(Vec<BTreeMap<String, Value>>),
    Sql(String),
}

/// Read a fixture: inline `rows`, or the file `fixture:` names under a test
/// path's `fixtures/` folder (`<name>.csv` or `<name>.sql`).
pub fn read_fixture(
    rows: &UnitTestRows,
    root: &Path,
    test_paths: &[String],
) -> Result<Fixture, String> {
    let text = match (&rows.rows, &rows.fixture) {
        (Some(v), _) => v.clone(),
        (None, Some(name)) => Value::String(fixture_file(root, test_paths, name, &rows.format)?),
        (None, None) => Value::Array(Vec::new()),
    };
    match rows.format.as_str() {
        "sql" => match text {
            Value::String(s) => Ok(Fixture::Sql(s)),
            _ => Err("format sql needs the rows as one SQL query".into()),
        },
        "csv" => match text {
            Value::String(s) => csv_rows(&s).map(Fixture::Rows),
            _ => Err("format csv needs the rows as CSV text".into()),
        },
        _ => match text {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => Ok(m.into_iter().collect()),
                    other => Err(format!("a fixture row is not a mapping: {other}")),
                })
                .collect::<Result<_, _>>()
                .map(Fixture::Rows),
            Value::Null => Ok(Fixture::Rows(Vec::new())),
            other => Err(format!("format dict needs a list of rows, not {other}")),
        },
    }
}

fn fixture_file(
    root: &Path,
    test_paths: &[String],
    name: &str,
    format: &str,
) -> Result<String, String> {
    let ext = if format == "sql" { "sql" } else { "csv" };
    for tp in test_paths {
        let dir = root.join(tp).join("fixtures");
        for entry in walkdir::WalkDir::new(&dir)
            .sort_by_file_name()
            .into_iter()
            .flatten()
        {
            let p = entry.path();
            if p.file_stem().and_then(|s| s.to_str()) == Some(name)
                && p.extension().and_then(|s| s.to_str()) == Some(ext)
            {
                return std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
            }
        }
    }
    Err(format!(
        "no fixture file {name}.{ext} under {}",
        test_paths
            .iter()
            .map(|t| format!("{t}/fixtures/"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn csv_rows(text: &str) -> Result<Vec<BTreeMap<String, Value>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("fixture CSV: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.map_err(|e| format!("fixture CSV: {e}"))?;
            Ok(header
                .iter()
                .zip(r.iter())
                .map(|(k, v)| {
                    let v = if v.is_empty() || v.eq_ignore_ascii_case("null") {
                        Value::Null
                    } else {
                        Value::from(v)
                    };
                    (k.clone(), v)
                })
                .collect())
        })
        .collect()
}

/// An SQL literal for a fixture value.
pub fn literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

/// dbt's `safe_cast` for fixture values.
fn cast(engine: Engine, value: &str, data_type: &str) -> String {
    match engine {
        Engine::DuckDb => format!("try_cast({value} as {data_type})"),
        Engine::Postgres => format!("cast({value} as {data_type})"),
    }
}

/// The fixture as a query with exactly `columns` (the input relation's,
/// or the expected columns), typed like them: a value per row for every
/// column, null where the row leaves it out. A column in the rows that is
/// not among `columns` is an error naming it.
pub fn fixture_sql(
    fixture: &Fixture,
    columns: &[ColumnMeta],
    engine: Engine,
) -> Result<String, String> {
    let rows = match fixture {
        Fixture::Sql(sql) => return Ok(sql.trim().trim_end_matches(';').to_string()),
        Fixture::Rows(rows) => rows,
    };
    let find = |name: &str| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name));
    for row in rows {
        if let Some(bad) = row.keys().find(|k| find(k).is_none()) {
            return Err(format!(
                "column `{bad}` is not one of the relation's columns: {}",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let select = |row: Option<&BTreeMap<String, Value>>| {
        let values: Vec<String> = columns
            .iter()
            .map(|c| {
                let v = row
                    .and_then(|r| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c.name)))
                    .map_or(Value::Null, |(_, v)| v.clone());
                format!(
                    "{} as {}",
                    cast(engine, &literal(&v), &c.data_type),
                    quote(&c.name)
                )
            })
            .collect();
        format!("select {}", values.join(", "))
    };
    if rows.is_empty() {
        return Ok(format!("{} limit 0", select(None)));
    }
    Ok(rows
        .iter()
        .map(|r| select(Some(r)))
        .collect::<Vec<_>>()
        .join("\nunion all\n"))
}

/// The expected columns: every key of the expected rows, in the order
/// they first appear.
pub fn expected_columns(fixture: &Fixture) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Fixture::Rows(rows) = fixture {
        for row in rows {
            for k in row.keys() {
                if !out.iter().any(|c| c.eq_ignore_ascii_case(k)) {
                    out.push(k.clone());
                }
            }
        }
    }
    out
}

/// Compare the model's rows with the expected ones as multisets. `None`
/// when they match; otherwise a table of the differing rows, `+` for
/// expected rows the model did not return and `-` for returned rows that
/// were not expected.
pub fn compare(actual: &QueryResult, expected: &QueryResult) -> Option<String> {
    let key = |row: &Vec<Value>| serde_json::to_string(row).unwrap_or_default();
    let mut left: BTreeMap<String, (usize, &Vec<Value>)> = BTreeMap::new();
    for row in &actual.rows {
        left.entry(key(row)).or_insert((0, row)).0 += 1;
    }
    let mut missing: Vec<&Vec<Value>> = Vec::new();
    for row in &expected.rows {
        match left.get_mut(&key(row)) {
            Some((n, _)) if *n > 0 => *n -= 1,
            _ => missing.push(row),
        }
    }
    let extra: Vec<&Vec<Value>> = left
        .values()
        .flat_map(|(n, row)| std::iter::repeat_n(*row, *n))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    };
    let names: Vec<&str> = expected.columns.iter().map(|c| c.name.as_str()).collect();
    let mut out = format!(
        "actual differs from expected:\n\n  | {} |\n",
        names.join(" | ")
    );
    for (mark, rows) in [("+", &missing), ("-", &extra)] {
        for row in rows.iter() {
            let cells: Vec<String> = row.iter().map(cell).collect();
            out.push_str(&format!("{mark} | {} |\n", cells.join(" | ")));
        }
    }
    out.push_str("\n(+ expected, not returned; - returned, not expected)");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> ColumnMeta {
        ColumnMeta::new(name, t)
    }

    #[test]
    fn inputs_are_read_as_dbt_writes_them() {
        assert_eq!(
            parse_input("ref('stg_orders')"),
            Some(Input::Ref("stg_orders".into()))
        );
        assert_eq!(
            parse_input(" ref( \"pkg\" , \"m\" ) "),
            Some(Input::Ref("m".into()))
        );
        assert_eq!(
            parse_input("source('ecom', 'raw_stores')"),
            Some(Input::Source("ecom".into(), "raw_stores".into()))
        );
        assert_eq!(parse_input("this"), Some(Input::This));
        assert_eq!(parse_input("stg_orders"), None);
    }

    #[test]
    fn fixture_rows_are_typed_and_missing_columns_are_null() {
        let rows: Vec<BTreeMap<String, Value>> = vec![
            [
                ("id".to_string(), Value::from(1)),
                ("Name".to_string(), Value::from("it's")),
            ]
            .into_iter()
            .collect(),
            [("id".to_string(), Value::from(2))].into_iter().collect(),
        ];
        let cols = [col("id", "integer"), col("name", "text"), col("at", "date")];
        let sql = fixture_sql(&Fixture::Rows(rows), &cols, Engine::Postgres).unwrap();
        assert_eq!(
            sql,
            "select cast(1 as integer) as \"id\", cast('it''s' as text) as \"name\", cast(null as date) as \"at\"\n\
             union all\n\
             select cast(2 as integer) as \"id\", cast(null as text) as \"name\", cast(null as date) as \"at\""
        );
        let empty = fixture_sql(&Fixture::Rows(Vec::new()), &cols[..1], Engine::DuckDb).unwrap();
        assert_eq!(empty, "select try_cast(null as integer) as \"id\" limit 0");
        let bad = vec![[("nope".to_string(), Value::from(1))].into_iter().collect()];
        let e = fixture_sql(&Fixture::Rows(bad), &cols, Engine::DuckDb).unwrap_err();
        assert!(e.contains("`nope`") && e.contains("id, name, at"), "{e}");
    }

    #[test]
    fn csv_fixtures_are_strings_with_empty_as_null() {
        let rows = UnitTestRows {
            format: "csv".into(),
            rows: Some(Value::from("id,name\n1,a\n2,\n")),
            fixture: None,
        };
        let Fixture::Rows(r) = read_fixture(&rows, Path::new("."), &[]).unwrap() else {
            panic!("rows")
        };
        assert_eq!(r[0]["id"], Value::from("1"));
        assert_eq!(r[1]["name"], Value::Null);
    }

    #[test]
    fn rows_compare_as_multisets_and_differences_are_shown() {
        let result = |rows: Vec<Vec<Value>>| QueryResult {
            columns: vec![col("id", "integer")],
            rows,
        };
        let a = result(vec![
            vec![Value::from(2)],
            vec![Value::from(1)],
            vec![Value::from(1)],
        ]);
        let same = result(vec![
            vec![Value::from(1)],
            vec![Value::from(1)],
            vec![Value::from(2)],
        ]);
        assert_eq!(compare(&a, &same), None);
        let other = result(vec![
            vec![Value::from(1)],
            vec![Value::from(2)],
            vec![Value::from(3)],
        ]);
        let diff = compare(&a, &other).unwrap();
        assert!(
            diff.contains("+ | 3 |") && diff.contains("- | 1 |"),
            "{diff}"
        );
    }
}
