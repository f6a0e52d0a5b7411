//! Seeds: loading a CSV file into a table, as `dbt seed` does.
//!
//! The whole file is read and checked first (header, row widths), column types
//! are inferred over every row (`column_types` overrides win), and only then
//! is the warehouse touched: the rows are bulk-loaded into a temporary table
//! which is swapped in, all in one transaction, so a bad file leaves the
//! previous seed table exactly as it was. On PostgreSQL the checked file is
//! streamed to `COPY` as is (what `psql \copy` does), so the rows are never
//! held in memory; should the server read the file differently, the load is
//! redone from the rows as read here.
//!
//! Replacing an existing seed table follows dbt: without `--full-refresh` the
//! table is kept and its rows replaced (dbt truncates and reloads; here the
//! rows are swapped from the temporary table in the same transaction), which
//! requires the columns to be unchanged; with `--full-refresh` the table is
//! dropped and recreated.
//!
//! Inferred types, as dbt's SQL adapters type seeds: integers → `INTEGER`
//! (`BIGINT` beyond 32 bits), other numbers → `DOUBLE PRECISION`,
//! `true`/`false` → `BOOLEAN`, `YYYY-MM-DD` → `DATE`,
//! `YYYY-MM-DD HH:MM:SS[.fff]` → `TIMESTAMP`, anything else → text, a column
//! with no values → `INTEGER`. Empty fields, blanks and `null` (in any case)
//! are NULL, as dbt (agate) reads seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime};

use super::adapter::{
    drop_relation_sql, get_columns, get_relation, quote, render, same_ident, with_suffix,
};
use super::materialize::{in_transaction, swap_in, BuildOutcome, SwapMethod, TMP_SUFFIX};
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

/// A checked seed file: column names, each column's inferred kind (`None`:
/// no values), and, when kept, the rows (empty fields as `None`) with the
/// line each row starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedData {
    pub columns: Vec<String>,
    pub kinds: Vec<Option<InferredType>>,
    pub rows: Vec<Vec<Option<String>>>,
    pub lines: Vec<u64>,
    /// Whether `rows`/`lines` were kept (otherwise the file is loaded as is).
    pub rows_kept: bool,
    /// The file has blank lines, which CSV readers disagree about.
    pub blank_lines: bool,
    /// A value PostgreSQL's COPY would read differently from dbt's reader:
    /// a double quote inside an unquoted field (`{ "a": 1 }`, which dbt
    /// keeps and COPY takes as quoting), or a NULL spelled `null` or as
    /// blanks. Such a file is loaded from the rows read here.
    pub copy_reads_differently: bool,
    /// Data rows (blank lines not counted).
    pub row_count: u64,
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
    let o = SeedOptions {
        column_types,
        full_refresh,
        quote_columns: true,
        delimiter: b',',
    };
    load_seed_with(conn, engine, relation, csv_path, &o)
}

/// A seed's settings from its config.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions<'a> {
    /// `column_types`: SQL types that win over the inferred ones.
    pub column_types: &'a BTreeMap<String, String>,
    pub full_refresh: bool,
    /// dbt's `quote_columns` (true by default): unquoted, the header's
    /// names are folded as the engine folds identifiers (PostgreSQL:
    /// `COLUMN_NAME` becomes `column_name`; DuckDB keeps case).
    pub quote_columns: bool,
    /// dbt's `delimiter` (`,` by default).
    pub delimiter: u8,
}

/// `load_seed` with every seed setting.
///
/// DuckDB reads the file with its own CSV reader, as dbt-duckdb's seeds do
/// (`COPY … FROM 'file' (FORMAT CSV, HEADER TRUE, DELIMITER …)`), so values
/// load as they would there (`NULL` and a lone space stay text); PostgreSQL
/// gets the file streamed to `COPY` unless its reading would differ from
/// dbt's (agate's) reading, which loads the rows as sluice read them.
pub fn load_seed_with(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    csv_path: &Path,
    o: &SeedOptions,
) -> Result<BuildOutcome, SeedError> {
    let (column_types, full_refresh, quote_columns) =
        (o.column_types, o.full_refresh, o.quote_columns);
    // Where the engine can load the checked file itself (COPY on Postgres,
    // like `psql \copy`), the rows are not kept in memory at all.
    let mut data = scan_csv(csv_path, !conn.can_copy_csv_file(), o.delimiter)?;
    let reads_differently = engine == Engine::Postgres && data.copy_reads_differently;
    if (data.blank_lines || reads_differently) && !data.rows_kept {
        data = read_csv(csv_path, o.delimiter)?;
    }
    let mut columns = seed_columns(engine, &data, column_types);
    if !quote_columns && engine == Engine::Postgres {
        for c in &mut columns {
            c.name = c.name.to_lowercase();
        }
    }
    let load = |conn: &mut dyn Connection, data: &SeedData| {
        in_transaction(conn, |c| {
            load_and_swap(
                c,
                engine,
                relation,
                &columns,
                data,
                (csv_path, o.delimiter),
                full_refresh,
            )
        })
    };
    let mut loaded = load(conn, &data);
    if matches!(loaded, Err(LoadError::Bulk(_))) && !data.rows_kept {
        // The engine's own CSV reading rejected the file: load the rows as
        // this reader sees them, which also pins a bad value to its line.
        data = read_csv(csv_path, o.delimiter)?;
        loaded = load(conn, &data);
    }
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

/// Read and check a seed file (a header, then rows as wide as the header),
/// keeping its rows.
pub fn read_csv(path: &Path, delimiter: u8) -> Result<SeedData, SeedError> {
    scan_csv(path, true, delimiter)
}

/// Check a seed file and infer its column kinds in one pass; keep the rows
/// only when `keep_rows`.
fn scan_csv(path: &Path, keep_rows: bool, delimiter: u8) -> Result<SeedData, SeedError> {
    let io = |source| SeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let invalid = |line: u64, message: String, hint: &str| SeedError::Invalid {
        path: path.to_path_buf(),
        line,
        message,
        hint: hint.to_string(),
    };
    let mut record = csv::StringRecord::new();
    let header = match reader.read_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            return Err(invalid(
                1,
                "the file is empty".into(),
                "a seed needs a header row",
            ))
        }
        Err(e) => return Err(csv_error(path, e)),
    };
    let columns = header_columns(&header).map_err(|m| {
        invalid(
            1,
            m,
            "every column needs a distinct, non-empty name in the header row",
        )
    })?;
    let mut data = SeedData {
        kinds: vec![None; columns.len()],
        columns,
        rows: Vec::new(),
        lines: Vec::new(),
        rows_kept: keep_rows,
        blank_lines: false,
        copy_reads_differently: false,
        row_count: 0,
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
            data.blank_lines = true;
            continue;
        }
        if record.len() != data.columns.len() {
            return Err(invalid(
                line,
                format!(
                    "row has {} values but the header has {} columns",
                    record.len(),
                    data.columns.len()
                ),
                "look for an unquoted comma or a missing value; quote values that contain commas",
            ));
        }
        data.row_count += 1;
        for (kind, v) in data.kinds.iter_mut().zip(record.iter()) {
            if is_null(v) {
                data.copy_reads_differently |= !v.is_empty();
            } else {
                observe(kind, v);
                data.copy_reads_differently |= v.contains('"');
            }
        }
        if keep_rows {
            data.rows.push(
                record
                    .iter()
                    .map(|v| (!is_null(v)).then(|| v.to_string()))
                    .collect(),
            );
            data.lines.push(line);
        }
    }
    Ok(data)
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
    /// Whole numbers beyond 32 bits (dbt would still say `integer`, and
    /// fail to load them).
    BigInteger,
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
            // dbt's SQL adapters (dbt-postgres, dbt-duckdb): `integer`,
            // and `float8` for numbers with decimals.
            (InferredType::Integer, _) => "INTEGER",
            (InferredType::BigInteger, _) => "BIGINT",
            (InferredType::Number, _) => "DOUBLE PRECISION",
            (InferredType::Boolean, _) => "BOOLEAN",
            (InferredType::Date, _) => "DATE",
            (InferredType::Timestamp, _) => "TIMESTAMP",
            (InferredType::Text, Engine::DuckDb) => "VARCHAR",
            (InferredType::Text, Engine::Postgres) => "TEXT",
        }
    }
}

/// The narrowest kind every value fits; `Integer` when there are no
/// values (agate's first type accepts an all-empty column, so dbt types it
/// `integer`).
pub fn infer_type<'a>(values: impl IntoIterator<Item = &'a str>) -> InferredType {
    let mut kind = None;
    for v in values {
        observe(&mut kind, v);
        if kind == Some(InferredType::Text) {
            break;
        }
    }
    kind.unwrap_or(InferredType::Integer)
}

/// Widen a column's kind so far to fit one more non-empty value.
/// A seed value that is NULL, as dbt's CSV reading (agate) has it: empty,
/// blanks, or `null` in any case.
fn is_null(v: &str) -> bool {
    let t = v.trim();
    t.is_empty() || t.eq_ignore_ascii_case("null")
}

fn observe(kind: &mut Option<InferredType>, v: &str) {
    if *kind == Some(InferredType::Text) {
        return;
    }
    let this = classify(v);
    *kind = Some(kind.map_or(this, |k| widen(k, this)));
}

fn widen(a: InferredType, b: InferredType) -> InferredType {
    use InferredType::*;
    match (a, b) {
        _ if a == b => a,
        (Integer, BigInteger) | (BigInteger, Integer) => BigInteger,
        (Integer | BigInteger, Number) | (Number, Integer | BigInteger) => Number,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        _ => Text,
    }
}

fn classify(v: &str) -> InferredType {
    let t = v.trim();
    if let Ok(n) = t.parse::<i64>() {
        if i32::try_from(n).is_ok() {
            InferredType::Integer
        } else {
            InferredType::BigInteger
        }
    } else if is_number(t) {
        InferredType::Number
    } else if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        InferredType::Boolean
    } else if parse_date(t).is_some() && t.len() == 10 {
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
    t.bytes().any(|c| c.is_ascii_digit())
        && t.bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        && t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `YYYY-MM-DD` at the start of `t`, a real calendar date. Checked by hand:
/// seeds run this on every value, and chrono's format-string parser is ten
/// times slower.
fn parse_date(t: &str) -> Option<NaiveDate> {
    let b = t.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(t, 0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(t, 5..7)?, digits(t, 8..10)?)
}

/// The number written by the ASCII digits at `range` of `t` (nothing else allowed).
fn digits(t: &str, range: std::ops::Range<usize>) -> Option<u32> {
    t.get(range)?.bytes().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// What dbt's seed loader (agate) reads as a timestamp: exactly
/// `YYYY-MM-DD HH:MM:SS` (its `strptime` format, so no fraction), or ISO
/// 8601 with a `T`: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` and an optional
/// `Z` / `±HH[:MM]` offset (`isodate`).
pub(crate) fn is_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 16 || !matches!(b[10], b' ' | b'T') || parse_date(t).is_none() {
        return false;
    }
    let time_ok = |h: Option<u32>, m: Option<u32>, s: Option<u32>| matches!((h, m, s), (Some(h), Some(m), Some(s)) if NaiveTime::from_hms_opt(h, m, s).is_some());
    if b[10] == b' ' {
        return b.len() == 19
            && b[13] == b':'
            && b[16] == b':'
            && time_ok(digits(t, 11..13), digits(t, 14..16), digits(t, 17..19));
    }
    if b[13] != b':' {
        return false;
    }
    // After `HH:MM`: `:SS`, then `.fraction`, then an offset, each optional.
    let mut rest = &t[16..];
    let mut seconds = Some(0);
    if let Some(r) = rest.strip_prefix(':') {
        seconds = r.get(..2).and_then(|s| digits(s, 0..2));
        rest = r.get(2..).unwrap_or("");
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return false;
            }
            rest = &r[n..];
        }
    }
    let offset_ok = match rest.as_bytes().first() {
        None => true,
        Some(b'Z') => rest.len() == 1,
        Some(b'+' | b'-') => {
            let o = &rest[1..];
            let hh = o
                .get(..2)
                .and_then(|h| digits(h, 0..2))
                .is_some_and(|h| h < 24);
            let mm = match o.get(2..) {
                Some("") => true,
                Some(m) => {
                    let m = m.strip_prefix(':').unwrap_or(m);
                    m.len() == 2 && digits(m, 0..2).is_some_and(|m| m < 60)
                }
                None => false,
            };
            hh && mm
        }
        Some(_) => false,
    };
    offset_ok && time_ok(digits(t, 11..13), digits(t, 14..16), seconds)
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
        .zip(&data.kinds)
        .map(|(name, kind)| {
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
                    // All empty: see `infer_type`.
                    kind.unwrap_or(InferredType::Integer)
                        .sql_type(engine)
                        .to_string()
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
    (csv_path, delimiter): (&Path, u8),
    full_refresh: bool,
) -> Result<u64, LoadError> {
    let tmp = with_suffix(relation, TMP_SUFFIX);
    conn.execute(&drop_relation_sql(engine, &tmp, RelationKind::Table))?;
    conn.execute(&create_table_sql(&tmp, columns))?;
    let n = if data.rows_kept {
        conn.bulk_insert(&tmp, columns, &data.rows)
    } else {
        // The engine read the file itself: it must have seen the same rows.
        conn.copy_csv_file(&tmp, columns, csv_path, delimiter)
            .and_then(|n| match n == data.row_count {
                true => Ok(n),
                false => Err(WarehouseError::Other(format!(
                    "the engine read {n} rows from {} but the file has {}",
                    csv_path.display(),
                    data.row_count
                ))),
            })
    }
    .map_err(LoadError::Bulk)?;
    let method = match get_relation(conn, engine, relation)? {
        Some(RelationKind::Table) if !full_refresh => {
            let new_cols = get_columns(conn, engine, &tmp)?;
            let old_cols = get_columns(conn, engine, relation)?;
            // As dbt's seed (truncate, then insert): the existing table
            // keeps its column types, the rows are cast into them; only
            // other column names need a full refresh.
            let same_names = new_cols.len() == old_cols.len()
                && new_cols
                    .iter()
                    .zip(&old_cols)
                    .all(|(a, b)| same_ident(engine, &a.name, &b.name));
            if !same_names {
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
        assert_eq!(infer_type(["1", "3000000000"]), InferredType::BigInteger);
        assert_eq!(infer_type(["3000000000", "0.5"]), InferredType::Number);
        assert_eq!(infer_type(["1e3"]), InferredType::Number);
        assert_eq!(infer_type(["nan"]), InferredType::Text);
        assert_eq!(infer_type(["true", "FALSE"]), InferredType::Boolean);
        assert_eq!(infer_type(["2024-01-31"]), InferredType::Date);
        assert_eq!(
            infer_type(["2024-01-31", "2024-02-01 10:00:00"]),
            InferredType::Timestamp
        );
        // As dbt's agate reads them (checked against dbt-core 1.12's
        // `agate_helper.from_csv`): a fraction needs the ISO `T` form,
        // which also takes minutes only and an offset.
        assert_eq!(infer_type(["2024-02-01 10:00:00.123"]), InferredType::Text);
        assert_eq!(
            infer_type([
                "2024-02-01T10:00:00.123",
                "2024-02-01T10:00",
                "2024-02-01T10:00:00Z"
            ]),
            InferredType::Timestamp
        );
        assert_eq!(
            infer_type(["2024-02-01T10:00:00+02:00", "2024-02-01T10:00:00.5-0530"]),
            InferredType::Timestamp
        );
        assert_eq!(infer_type(["2024-02-01T10:00:00Q"]), InferredType::Text);
        assert_eq!(infer_type(["2024-02-30"]), InferredType::Text);
        assert_eq!(infer_type(["2024-1-31"]), InferredType::Text);
        assert_eq!(infer_type(["2024-01-31T23:59:59"]), InferredType::Timestamp);
        assert_eq!(infer_type(["2024-01-31 24:00:00"]), InferredType::Text);
        assert_eq!(infer_type(["2024-01-31 10:00:00."]), InferredType::Text);
        assert_eq!(infer_type(["2024-01-31 10:00"]), InferredType::Text);
        assert_eq!(infer_type(["1", "x"]), InferredType::Text);
        assert_eq!(infer_type(std::iter::empty()), InferredType::Integer);
    }
}
