//! Seeds: loading a CSV file into a table, as `dbt seed` does.
//!
//! The whole file is read and checked first (header, row widths), column types
//! are inferred over every row (`column_types` overrides win), and only then
//! is the warehouse touched: the rows are bulk-loaded into a temporary table
//! which is swapped in, all in one transaction, so a bad file leaves the
//! previous seed table exactly as it was.
//!
//! Replacing an existing seed table follows dbt: without `--full-refresh` the
//! table is kept and its rows replaced (dbt truncates and reloads; here the
//! rows are swapped from the temporary table in the same transaction), which
//! requires the columns to be unchanged; with `--full-refresh` the table is
//! dropped and recreated.
//!
//! Inferred types: integers → `BIGINT`; other numbers → `DOUBLE` (DuckDB) or
//! `NUMERIC` (PostgreSQL, as dbt-postgres); `true`/`false` → `BOOLEAN`;
//! `YYYY-MM-DD` → `DATE`; `YYYY-MM-DD HH:MM:SS[.fff]` → `TIMESTAMP`; anything
//! else, and columns with no values, → text. Empty fields are NULL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};

use super::adapter::{drop_relation_sql, get_columns, get_relation, quote, render, with_suffix};
use super::materialize::{
    in_transaction, same_columns, swap_in, BuildOutcome, SwapMethod, TMP_SUFFIX,
};
use super::{ColumnMeta, Connection, Engine, Relation, RelationKind, WarehouseError};

/// Suffix of the scratch table used to pinpoint a row the warehouse rejects.
const PROBE_SUFFIX: &str = "__sluice_probe";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("could not read seed {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a well-formed CSV (or a value does not fit its
    /// column's type). `line` is 1-based and counts the header.
    #[error("{}:{line}: {message}\n  hint: {hint}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        message: String,
        hint: String,
    },
    #[error("seed {}: {source}", path.display())]
    Warehouse {
        path: PathBuf,
        source: WarehouseError,
    },
}

impl SeedError {
    /// The CSV line the error points at, when it points at one.
    pub fn line(&self) -> Option<u64> {
        match self {
            SeedError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// A parsed seed file: column names, rows (empty fields as `None`), and the
/// line each row starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedData {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    pub lines: Vec<u64>,
}

/// Load a CSV seed into `relation`. See the module docs.
pub fn load_seed(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    csv_path: &Path,
    column_types: &BTreeMap<String, String>,
    full_refresh: bool,
) -> Result<BuildOutcome, SeedError> {
    let data = read_csv(csv_path)?;
    let columns = seed_columns(engine, &data, column_types);
    let loaded = in_transaction(conn, |c| {
        load_and_swap(c, engine, relation, &columns, &data, full_refresh)
    });
    match loaded {
        Ok(n) => Ok(BuildOutcome {
            rows_affected: Some(n),
            message: format!("INSERT {n}"),
        }),
        Err(LoadError::Columns(message)) => Err(SeedError::Invalid {
            path: csv_path.to_path_buf(),
            line: 1,
            message,
            hint: "the seed's columns changed; run with --full-refresh to recreate the table"
                .into(),
        }),
        Err(LoadError::Bulk(source)) => Err(locate_bad_row(
            conn, engine, relation, csv_path, &columns, &data, source,
        )),
        Err(LoadError::Warehouse(source)) => Err(SeedError::Warehouse {
            path: csv_path.to_path_buf(),
            source,
        }),
    }
}

/// Read and check a seed file: a header, then rows as wide as the header.
pub fn read_csv(path: &Path) -> Result<SeedData, SeedError> {
    let io = |source| SeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let invalid = |line: u64, message: String, hint: &str| SeedError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
        hint: hint.to_string(),
    };
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(csv_error(path, e)),
        None => {
            return Err(invalid(
                1,
                "the file is empty".into(),
                "a seed needs a header row",
            ))
        }
    };
    let columns = header_columns(&header).map_err(|m| {
        invalid(
            1,
            m,
            "every column needs a distinct, non-empty name in the header row",
        )
    })?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
            continue; // blank line
        }
        if record.len() != columns.len() {
            return Err(invalid(
                line,
                format!(
                    "row has {} values but the header has {} columns",
                    record.len(),
                    columns.len()
                ),
                "look for an unquoted comma or a missing value; quote values that contain commas",
            ));
        }
        rows.push(
            record
                .iter()
                .map(|v| (!v.is_empty()).then(|| v.to_string()))
                .collect(),
        );
        lines.push(line);
    }
    Ok(SeedData {
        columns,
        rows,
        lines,
    })
}

fn header_columns(header: &csv::StringRecord) -> Result<Vec<String>, String> {
    let mut columns: Vec<String> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("column {} has an empty name", i + 1));
        }
        if columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
            return Err(format!("column name '{name}' appears twice"));
        }
        columns.push(name.to_string());
    }
    Ok(columns)
}

fn csv_error(path: &Path, e: csv::Error) -> SeedError {
    let line = e.position().map_or(0, |p| p.line());
    SeedError::Invalid {
        path: path.to_path_buf(),
        line,
        message: e.to_string(),
        hint: "check quoting: a quoted value must end with a closing quote, and the file must be UTF-8"
            .into(),
    }
}

/// The kinds a seed value can be inferred as, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InferredType {
    Integer,
    Number,
    Boolean,
    Date,
    Timestamp,
    Text,
}

impl InferredType {
    /// The SQL type used for this kind on `engine`.
    pub fn sql_type(self, engine: Engine) -> &'static str {
        match (self, engine) {
            (InferredType::Integer, _) => "BIGINT",
            (InferredType::Number, Engine::DuckDb) => "DOUBLE",
            (InferredType::Number, Engine::Postgres) => "NUMERIC",
            (InferredType::Boolean, _) => "BOOLEAN",
            (InferredType::Date, _) => "DATE",
            (InferredType::Timestamp, _) => "TIMESTAMP",
            (InferredType::Text, Engine::DuckDb) => "VARCHAR",
            (InferredType::Text, Engine::Postgres) => "TEXT",
        }
    }
}

/// The narrowest kind every value fits; `Text` when there are no values.
pub fn infer_type<'a>(values: impl IntoIterator<Item = &'a str>) -> InferredType {
    let mut kind: Option<InferredType> = None;
    for v in values {
        let this = classify(v);
        kind = Some(match kind {
            None => this,
            Some(k) => widen(k, this),
        });
        if kind == Some(InferredType::Text) {
            break;
        }
    }
    kind.unwrap_or(InferredType::Text)
}

fn widen(a: InferredType, b: InferredType) -> InferredType {
    use InferredType::*;
    match (a, b) {
        _ if a == b => a,
        (Integer, Number) | (Number, Integer) => Number,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        _ => Text,
    }
}

fn classify(v: &str) -> InferredType {
    let t = v.trim();
    if t.parse::<i64>().is_ok() {
        InferredType::Integer
    } else if is_number(t) {
        InferredType::Number
    } else if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        InferredType::Boolean
    } else if NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() && t.len() == 10 {
        InferredType::Date
    } else if is_timestamp(t) {
        InferredType::Timestamp
    } else {
        InferredType::Text
    }
}

/// A decimal number in plain or scientific notation (not `inf`/`NaN`, which
/// `f64` parsing would accept).
fn is_number(t: &str) -> bool {
    t.chars().any(|c| c.is_ascii_digit())
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && t.parse::<f64>().is_ok_and(f64::is_finite)
}

fn is_timestamp(t: &str) -> bool {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .any(|f| NaiveDateTime::parse_from_str(t, f).is_ok())
}

/// Column names and SQL types: inferred, or as overridden by `column_types`
/// (matched exactly, then case-insensitively).
pub fn seed_columns(
    engine: Engine,
    data: &SeedData,
    column_types: &BTreeMap<String, String>,
) -> Vec<ColumnMeta> {
    data.columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let data_type = column_types
                .get(name)
                .or_else(|| {
                    column_types
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
                .cloned()
                .unwrap_or_else(|| {
                    let values = data.rows.iter().filter_map(|r| r.get(i)?.as_deref());
                    infer_type(values).sql_type(engine).to_string()
                });
            ColumnMeta {
                name: name.clone(),
                data_type,
            }
        })
        .collect()
}

/// Why loading inside the transaction failed.
enum LoadError {
    /// The bulk load was rejected (a value does not fit its column type).
    Bulk(WarehouseError),
    /// Columns changed and this is not a full refresh.
    Columns(String),
    Warehouse(WarehouseError),
}

impl From<WarehouseError> for LoadError {
    fn from(e: WarehouseError) -> Self {
        LoadError::Warehouse(e)
    }
}

fn create_table_sql(relation: &Relation, columns: &[ColumnMeta]) -> String {
    let cols = columns
        .iter()
        .map(|c| format!("{} {}", quote(&c.name), c.data_type))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CREATE TABLE {} ({cols})", render(relation))
}

fn load_and_swap(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    columns: &[ColumnMeta],
    data: &SeedData,
    full_refresh: bool,
) -> Result<u64, LoadError> {
    let tmp = with_suffix(relation, TMP_SUFFIX);
    conn.execute(&drop_relation_sql(engine, &tmp, RelationKind::Table))?;
    conn.execute(&create_table_sql(&tmp, columns))?;
    let n = conn
        .bulk_insert(&tmp, columns, &data.rows)
        .map_err(LoadError::Bulk)?;
    let method = match get_relation(conn, engine, relation)? {
        Some(RelationKind::Table) if !full_refresh => {
            let new_cols = get_columns(conn, engine, &tmp)?;
            let old_cols = get_columns(conn, engine, relation)?;
            if !same_columns(engine, &new_cols, &old_cols) {
                return Err(LoadError::Columns(column_change_message(
                    &old_cols, &new_cols,
                )));
            }
            SwapMethod::Contents
        }
        _ => SwapMethod::Rename,
    };
    swap_in(conn, engine, &tmp, relation, method)?;
    Ok(n)
}

fn column_change_message(old: &[ColumnMeta], new: &[ColumnMeta]) -> String {
    let show = |cols: &[ColumnMeta]| {
        cols.iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "the seed's columns ({}) differ from the existing table's ({})",
        show(new),
        show(old)
    )
}

/// After the warehouse rejected the rows, find the first one it rejects on
/// its own (by bisection into a scratch table, outside any transaction) and
/// report its CSV line.
fn locate_bad_row(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    path: &Path,
    columns: &[ColumnMeta],
    data: &SeedData,
    original: WarehouseError,
) -> SeedError {
    let probe = with_suffix(relation, PROBE_SUFFIX);
    let found = (|| -> Result<Option<(usize, WarehouseError)>, WarehouseError> {
        conn.execute(&drop_relation_sql(engine, &probe, RelationKind::Table))?;
        conn.execute(&create_table_sql(&probe, columns))?;
        Ok(bisect(conn, &probe, columns, &data.rows))
    })();
    let _ = conn.execute(&drop_relation_sql(engine, &probe, RelationKind::Table));
    match found {
        Ok(Some((index, error))) => SeedError::Invalid {
            path: path.to_path_buf(),
            line: data.lines.get(index).copied().unwrap_or(0),
            message: format!("value does not fit its column type: {error}"),
            hint: format!(
                "columns are {}; fix the value or the seed's column_types config",
                columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.data_type))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        _ => SeedError::Warehouse {
            path: path.to_path_buf(),
            source: original,
        },
    }
}

/// Index of the first row the warehouse rejects, with its error. Assumes
/// rejection is per row (a cast failure), which makes halving sound.
fn bisect(
    conn: &mut dyn Connection,
    probe: &Relation,
    columns: &[ColumnMeta],
    rows: &[Vec<Option<String>>],
) -> Option<(usize, WarehouseError)> {
    let (mut lo, mut hi) = (0, rows.len());
    let mut last = match conn.bulk_insert(probe, columns, rows) {
        Ok(_) => return None,
        Err(e) => e,
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match conn.bulk_insert(probe, columns, &rows[lo..mid]) {
            Err(e) => {
                last = e;
                hi = mid;
            }
            Ok(_) => lo = mid,
        }
    }
    // The row alone, for an error message about that row only.
    if let Err(e) = conn.bulk_insert(probe, columns, &rows[lo..=lo]) {
        last = e;
    }
    Some((lo, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_narrowest_type() {
        assert_eq!(infer_type(["1", "-2", "30"]), InferredType::Integer);
        assert_eq!(infer_type(["1", "2.5"]), InferredType::Number);
        assert_eq!(infer_type(["1e3"]), InferredType::Number);
        assert_eq!(infer_type(["nan"]), InferredType::Text);
        assert_eq!(infer_type(["true", "FALSE"]), InferredType::Boolean);
        assert_eq!(infer_type(["2024-01-31"]), InferredType::Date);
        assert_eq!(
            infer_type(["2024-01-31", "2024-02-01 10:00:00.123"]),
            InferredType::Timestamp
        );
        assert_eq!(infer_type(["2024-02-30"]), InferredType::Text);
        assert_eq!(infer_type(["1", "x"]), InferredType::Text);
        assert_eq!(infer_type(std::iter::empty()), InferredType::Text);
    }
}
