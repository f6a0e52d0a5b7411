//! The embedded DuckDB engine.
//!
//! One `duckdb::Connection` is opened per warehouse (a database file or
//! `:memory:`); every worker connection is a `try_clone()` of it, so all of
//! them see the same database — essential for `:memory:`, where a second
//! `open` would create a second, empty database, and for files, which DuckDB
//! locks per process.
//!
//! Extension auto-install and auto-load are switched off when the database is
//! opened: a build must never reach for the network.
//!
//! Query values are converted to JSON: integers and floats to numbers,
//! decimals to numbers (exact when they fit an `f64`'s textual round trip),
//! booleans, text, dates/times/timestamps to ISO-8601 strings, nested values
//! to arrays/objects, NULL to `null`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use ::duckdb::core::LogicalTypeId;
use ::duckdb::types::{TimeUnit, Value};
use ::duckdb::types::{ToSqlOutput, ValueRef};
use ::duckdb::{appender_params_from_iter, InterruptHandle, ToSql};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta};

use super::rows::{Rows, Value as RowValue};
use super::{
    ColumnMeta, Connection, DuckDbTarget, Engine, QueryResult, Relation, Result, Warehouse,
    WarehouseError,
};

/// Settings applied to the root connection before any clone is handed out.
/// `SET` (not `SET GLOBAL`) would only affect the root session, so these are
/// global.
const OFFLINE_SETTINGS: &str = "SET GLOBAL autoinstall_known_extensions = false; \
     SET GLOBAL autoload_known_extensions = false;";

/// The bundled DuckDB has no ICU extension, which is where `current_date`
/// and `today()` live, and without which a `TIMESTAMP WITH TIME ZONE`
/// (what `now()` and `current_timestamp` return) can be neither shifted by
/// an interval nor truncated nor cast. So each connection gets, as
/// temporary macros, `now()`, `current_timestamp`, `get_current_timestamp()`
/// as the plain UTC `TIMESTAMP` of the transaction's start, and
/// `current_date` / `today()` as its date, unless the engine has ICU.
const TIME_SHIMS: &str = "CREATE OR REPLACE TEMP MACRO get_current_timestamp() AS \
     make_timestamp(epoch_us(transaction_timestamp())); \
     CREATE OR REPLACE TEMP MACRO now() AS get_current_timestamp(); \
     CREATE OR REPLACE TEMP MACRO current_timestamp() AS get_current_timestamp(); \
     CREATE OR REPLACE TEMP MACRO current_date() AS cast(get_current_timestamp() AS date); \
     CREATE OR REPLACE TEMP MACRO today() AS current_date();";

/// An open DuckDB database.
pub struct DuckDbWarehouse {
    /// The connection every worker connection is cloned from. Only used to
    /// clone and for `server_version`; the mutex makes the warehouse `Sync`.
    root: Mutex<::duckdb::Connection>,
    /// Interrupt handles of the connections handed out, paired with a token
    /// that dies with the connection so stale entries can be pruned.
    live: Mutex<Vec<(Weak<()>, Arc<InterruptHandle>)>>,
    /// The catalog name DuckDB gives the database (file stem or `memory`).
    catalog: String,
    /// Whether connections need `TIME_SHIMS`.
    time_shims: bool,
    /// The profile's `settings:` that applied, as `SET` statements run on
    /// every connection as dbt-duckdb does on every cursor.
    settings: Vec<String>,
    /// See [`DuckDbWarehouse::warnings`].
    warnings: Vec<String>,
}

/// The profile's `settings:` as dbt-duckdb runs them: `SET key = 'value'`
/// (DuckDB casts the string).
fn connection_settings(target: &DuckDbTarget) -> Vec<(String, String)> {
    target
        .settings
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (
                k.clone(),
                format!("SET {k} = '{}'", value.replace('\'', "''")),
            )
        })
        .collect()
}

/// The profile's `extensions:`, `attach:` and `settings:` on a freshly
/// opened database, as dbt-duckdb's `initialize_db`. Nothing is downloaded:
/// an extension this build does not carry (json and parquet are built in)
/// or a setting it does not know is a warning, so a profile written for
/// dbt-duckdb with, say, `httpfs` still runs the models that need none.
/// An attachment that fails is an error: models read from it. Returns the
/// settings that applied, and the warnings.
fn set_up(
    root: &::duckdb::Connection,
    target: &DuckDbTarget,
    project_dir: &Path,
) -> std::result::Result<(Vec<String>, Vec<String>), String> {
    let mut warnings = Vec::new();
    let mut applied = Vec::new();
    for ext in &target.extensions {
        let name = match ext {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(m) => match m.get("name").and_then(|v| v.as_str()) {
                Some(n) => n.to_string(),
                None => return Err(format!("Failed to parse extension: {ext} has no `name`")),
            },
            other => return Err(format!("Failed to parse extension: {other}")),
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "Failed to parse extension: `{name}` is not an extension name"
            ));
        }
        if let Err(e) = root.execute_batch(&format!("LOAD {name}")) {
            warnings.push(format!(
                "extension `{name}` is not available offline in sluice's embedded DuckDB ({}); models that need it will fail",
                first_line(&e.to_string())
            ));
        }
    }
    for a in &target.attach {
        let sql = DuckDbTarget::attach_sql(a, project_dir)?;
        root.execute_batch(&sql).map_err(|e| {
            format!(
                "could not attach `{}`: {}",
                a.path,
                first_line(&e.to_string())
            )
        })?;
    }
    for (key, sql) in connection_settings(target) {
        let Err(e) = root.execute_batch(&sql) else {
            applied.push(sql);
            continue;
        };
        // The value may be a credential: only the name is shown.
        let msg = e.to_string();
        let shown = match target.settings.get(&key) {
            Some(serde_json::Value::String(v)) if !v.is_empty() => msg.replace(v.as_str(), "****"),
            _ => msg,
        };
        warnings.push(format!(
            "setting `{key}` was not applied: {}",
            first_line(&shown)
        ));
    }
    Ok((applied, warnings))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Open the DuckDB database a target points at. A relative `path` resolves
/// against `project_dir`; `:memory:` opens a private in-memory database.
pub fn open(target: &DuckDbTarget, project_dir: &Path) -> Result<Arc<dyn Warehouse>> {
    Ok(Arc::new(DuckDbWarehouse::open(target, project_dir)?))
}

impl DuckDbWarehouse {
    /// See [`open`].
    pub fn open(target: &DuckDbTarget, project_dir: &Path) -> Result<Self> {
        let path = resolve_path(&target.path, project_dir);
        let connect_err = |e: ::duckdb::Error| WarehouseError::Connect {
            target: path.display().to_string(),
            message: e.to_string(),
        };
        let config = ::duckdb::Config::default()
            .enable_autoload_extension(false)
            .map_err(connect_err)?;
        let root = match &path {
            p if p.as_os_str() == ":memory:" => {
                ::duckdb::Connection::open_in_memory_with_flags(config)
            }
            p => ::duckdb::Connection::open_with_flags(p, config),
        }
        .map_err(connect_err)?;
        root.execute_batch(OFFLINE_SETTINGS).map_err(connect_err)?;
        let (settings, warnings) =
            set_up(&root, target, project_dir).map_err(|message| WarehouseError::Connect {
                target: path.display().to_string(),
                message,
            })?;
        let catalog: String = root
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .map_err(connect_err)?;
        let builtin: i64 = root
            .query_row(
                "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'current_date'",
                [],
                |r| r.get(0),
            )
            .map_err(connect_err)?;
        Ok(DuckDbWarehouse {
            root: Mutex::new(root),
            live: Mutex::new(Vec::new()),
            catalog,
            time_shims: builtin == 0,
            settings,
            warnings,
        })
    }

    /// The catalog name of the database (what `current_database()` returns).
    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    /// A connection with its concrete type (the trait method boxes it).
    pub fn connect_duckdb(&self) -> Result<DuckDbConnection> {
        let conn = {
            let root = self.root.lock().unwrap_or_else(|e| e.into_inner());
            root.try_clone().map_err(db_error)?
        };
        if self.time_shims {
            conn.execute_batch(TIME_SHIMS).map_err(db_error)?;
        }
        for sql in &self.settings {
            conn.execute_batch(sql).map_err(db_error)?;
        }
        let token = Arc::new(());
        let handle = conn.interrupt_handle();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|(alive, _)| alive.strong_count() > 0);
        live.push((Arc::downgrade(&token), handle));
        Ok(DuckDbConnection {
            conn,
            _token: token,
        })
    }
}

fn resolve_path(path: &str, project_dir: &Path) -> PathBuf {
    if path == ":memory:" || path.is_empty() {
        return PathBuf::from(":memory:");
    }
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        project_dir.join(p)
    }
}

impl Warehouse for DuckDbWarehouse {
    fn engine(&self) -> Engine {
        Engine::DuckDb
    }

    fn connect(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(self.connect_duckdb()?))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn cancel_all(&self) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for (alive, handle) in live.iter() {
            if alive.strong_count() > 0 {
                handle.interrupt();
            }
        }
    }

    fn server_version(&self) -> Result<String> {
        let root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        let version: String = root
            .query_row("SELECT version()", [], |r| r.get(0))
            .map_err(db_error)?;
        Ok(format!("DuckDB {version}"))
    }

    fn checkpoint(&self) {
        let root = self.root.lock().unwrap_or_else(|e| e.into_inner());
        // Fails only while another connection holds a transaction open;
        // the WAL then keeps the data, as it does anyway.
        let _ = root.execute_batch("CHECKPOINT");
    }
}

/// One DuckDB session (a clone of the warehouse's root connection).
pub struct DuckDbConnection {
    conn: ::duckdb::Connection,
    /// Dropped with the connection; tells the warehouse the interrupt handle
    /// is stale.
    _token: Arc<()>,
}

impl DuckDbConnection {
    /// The underlying DuckDB connection, for engine-specific callers.
    pub fn raw(&self) -> &::duckdb::Connection {
        &self.conn
    }

    fn appender(
        &self,
        relation: &Relation,
        columns: &[ColumnMeta],
    ) -> Result<::duckdb::Appender<'_>> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        match &relation.database {
            Some(db) => self.conn.appender_with_columns_to_catalog_and_db(
                &relation.identifier,
                db,
                &relation.schema,
                &names,
            ),
            None => self.conn.appender_with_columns_to_db(
                &relation.identifier,
                &relation.schema,
                &names,
            ),
        }
        .map_err(db_error)
    }
}

impl Connection for DuckDbConnection {
    fn execute(&mut self, sql: &str) -> Result<u64> {
        if sql.trim().is_empty() {
            return Ok(0);
        }
        let mut stmt = self.conn.prepare(sql).map_err(db_error)?;
        let changed = stmt.execute([]).map_err(db_error)?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        let mut stmt = self.conn.prepare(sql).map_err(db_error)?;
        let mut rows = stmt.query([]).map_err(db_error)?;
        let columns = match rows.as_ref() {
            Some(stmt) => result_columns(stmt),
            None => Vec::new(),
        };
        let kinds: Vec<LogicalTypeId> = match rows.as_ref() {
            Some(stmt) => (0..columns.len())
                .map(|i| stmt.column_logical_type(i).id())
                .collect(),
            None => Vec::new(),
        };
        // Columns of DuckDB's NULL type (`select null as x`) hold only nulls;
        // the duckdb crate cannot read them through `get_ref`.
        let null_typed: Vec<bool> = match rows.as_ref() {
            Some(stmt) => (0..columns.len())
                .map(|i| stmt.column_type(i) == ::duckdb::arrow::datatypes::DataType::Null)
                .collect(),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_error)? {
            let mut values = Vec::with_capacity(kinds.len());
            for (i, kind) in kinds.iter().enumerate() {
                if null_typed.get(i).copied().unwrap_or(false) {
                    values.push(serde_json::Value::Null);
                    continue;
                }
                let value = row.get_ref(i).map_err(db_error)?.to_owned();
                values.push(to_json(value, *kind));
            }
            out.push(values);
        }
        Ok(QueryResult { columns, rows: out })
    }

    fn can_copy_csv_file(&self) -> bool {
        true
    }

    /// dbt-duckdb's seed load: DuckDB's own CSV reader into the table
    /// created with the inferred types (its dialect sniffed, as there).
    fn copy_csv_file(
        &mut self,
        relation: &Relation,
        _columns: &[ColumnMeta],
        path: &Path,
        delimiter: u8,
    ) -> Result<u64> {
        let path = path.to_string_lossy();
        let delimiter = char::from(delimiter).to_string();
        self.execute(&format!(
            "COPY {} FROM {} (FORMAT CSV, HEADER TRUE, DELIMITER {})",
            super::adapter::render(relation),
            super::adapter::literal(&path),
            super::adapter::literal(&delimiter),
        ))
    }

    fn bulk_insert(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &[Vec<Option<String>>],
    ) -> Result<u64> {
        let mut appender = self.appender(relation, columns)?;
        for (i, row) in rows.iter().enumerate() {
            if row.len() != columns.len() {
                return Err(WarehouseError::Other(format!(
                    "row {} has {} values, expected {}",
                    i + 1,
                    row.len(),
                    columns.len()
                )));
            }
            appender
                .append_row(appender_params_from_iter(row.iter().map(|v| v.as_deref())))
                .map_err(db_error)?;
        }
        appender.flush().map_err(db_error)?;
        Ok(rows.len() as u64)
    }

    fn load_rows(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &Rows,
    ) -> Result<u64> {
        rows.check_width(relation, columns)?;
        let mut appender = self.appender(relation, columns)?;
        for row in rows.rows() {
            appender
                .append_row(appender_params_from_iter(row.map(Typed)))
                .map_err(db_error)?;
        }
        appender.flush().map_err(db_error)?;
        Ok(rows.len() as u64)
    }
}

/// A row value as the Appender takes it: typed, text borrowed.
struct Typed<'a>(RowValue<'a>);

impl ToSql for Typed<'_> {
    fn to_sql(&self) -> ::duckdb::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            RowValue::Null => ValueRef::Null,
            RowValue::Int(v) => ValueRef::BigInt(v),
            RowValue::Bool(v) => ValueRef::Boolean(v),
            RowValue::Timestamp(micros) => ValueRef::Timestamp(TimeUnit::Microsecond, micros),
            RowValue::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// Map a DuckDB error, recognising interrupts as cancellation.
fn db_error(e: ::duckdb::Error) -> WarehouseError {
    let message = e.to_string();
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        WarehouseError::Cancelled
    } else {
        WarehouseError::Database { message }
    }
}

fn result_columns(stmt: &::duckdb::Statement<'_>) -> Vec<ColumnMeta> {
    stmt.column_names()
        .into_iter()
        .enumerate()
        .map(|(i, name)| ColumnMeta {
            name,
            data_type: type_name(&stmt.column_logical_type(i)),
        })
        .collect()
}

/// The SQL spelling of a result column's type, as `DESCRIBE` would show it.
fn type_name(t: &::duckdb::core::LogicalTypeHandle) -> String {
    use LogicalTypeId as L;
    match t.id() {
        L::Boolean => "BOOLEAN".into(),
        L::Tinyint => "TINYINT".into(),
        L::Smallint => "SMALLINT".into(),
        L::Integer => "INTEGER".into(),
        L::Bigint => "BIGINT".into(),
        L::Hugeint => "HUGEINT".into(),
        L::UTinyint => "UTINYINT".into(),
        L::USmallint => "USMALLINT".into(),
        L::UInteger => "UINTEGER".into(),
        L::UBigint => "UBIGINT".into(),
        L::UHugeint => "UHUGEINT".into(),
        L::Float => "FLOAT".into(),
        L::Double => "DOUBLE".into(),
        L::Decimal => format!("DECIMAL({},{})", t.decimal_width(), t.decimal_scale()),
        L::Varchar => "VARCHAR".into(),
        L::Blob => "BLOB".into(),
        L::Date => "DATE".into(),
        L::Time | L::TimeNs => "TIME".into(),
        L::TimeTZ => "TIME WITH TIME ZONE".into(),
        L::Timestamp => "TIMESTAMP".into(),
        L::TimestampS => "TIMESTAMP_S".into(),
        L::TimestampMs => "TIMESTAMP_MS".into(),
        L::TimestampNs => "TIMESTAMP_NS".into(),
        L::TimestampTZ => "TIMESTAMP WITH TIME ZONE".into(),
        L::Interval => "INTERVAL".into(),
        L::Uuid => "UUID".into(),
        L::Enum => "ENUM".into(),
        L::List => format!("{}[]", type_name(&t.child(0))),
        L::Array => "ARRAY".into(),
        L::Struct => "STRUCT".into(),
        L::Map => "MAP".into(),
        L::Union => "UNION".into(),
        L::Bit => "BIT".into(),
        L::Bignum => "BIGNUM".into(),
        L::SqlNull => "NULL".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// Convert one DuckDB value to JSON. `kind` is the column's logical type; it
/// only matters where the value alone is ambiguous (time zones).
fn to_json(value: Value, kind: LogicalTypeId) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::TinyInt(i) => J::from(i),
        Value::SmallInt(i) => J::from(i),
        Value::Int(i) => J::from(i),
        Value::BigInt(i) => J::from(i),
        Value::UTinyInt(i) => J::from(i),
        Value::USmallInt(i) => J::from(i),
        Value::UInt(i) => J::from(i),
        Value::UBigInt(i) => J::from(i),
        Value::HugeInt(i) => big_int_json(i.to_string()),
        Value::UHugeInt(i) => big_int_json(i.to_string()),
        Value::Float(f) => float_json(f64::from(f)),
        Value::Double(f) => float_json(f),
        Value::Decimal(d) => decimal_json(&d.to_string()),
        Value::Text(s) | Value::Enum(s) => J::String(s),
        Value::Blob(b) | Value::Geometry(b) => J::String(hex(&b)),
        Value::Date32(days) => J::String(format_date(days)),
        Value::Time64(unit, v) => J::String(format_time(unit.to_micros(v))),
        Value::Timestamp(unit, v) => J::String(format_timestamp(
            v,
            unit,
            kind == LogicalTypeId::TimestampTZ,
        )),
        Value::Interval {
            months,
            days,
            nanos,
        } => J::String(format_interval(months, days, nanos)),
        Value::List(items) | Value::Array(items) => J::Array(
            items
                .into_iter()
                .map(|v| to_json(v, LogicalTypeId::Invalid))
                .collect(),
        ),
        Value::Struct(fields) => J::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v.clone(), LogicalTypeId::Invalid)))
                .collect(),
        ),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match to_json(k.clone(), LogicalTypeId::Invalid) {
                        J::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v.clone(), LogicalTypeId::Invalid))
                })
                .collect(),
        ),
        Value::Union(inner) => to_json(*inner, LogicalTypeId::Invalid),
        other => J::String(format!("{other:?}")),
    }
}

/// 128-bit integers: a JSON number when it fits `i64`/`u64`, else a string.
fn big_int_json(text: String) -> serde_json::Value {
    if let Ok(i) = text.parse::<i64>() {
        return serde_json::Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return serde_json::Value::from(u);
    }
    serde_json::Value::String(text)
}

fn float_json(f: f64) -> serde_json::Value {
    serde_json::Number::from_f64(f)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| serde_json::Value::String(f.to_string()))
}

/// Decimals become numbers; whole values stay integers (`3`, not `3.0`).
fn decimal_json(text: &str) -> serde_json::Value {
    let whole = match text.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
        _ => text,
    };
    if let Ok(i) = whole.parse::<i64>() {
        return serde_json::Value::from(i);
    }
    match text.parse::<f64>() {
        Ok(f) => float_json(f),
        Err(_) => serde_json::Value::String(text.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn format_date(days: i32) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(TimeDelta::days(i64::from(days))))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{days} days since epoch"))
}

fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let t = u32::try_from(secs)
        .ok()
        .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, (frac * 1000) as u32));
    match t {
        Some(t) if frac == 0 => t.format("%H:%M:%S").to_string(),
        Some(t) => t.format("%H:%M:%S%.6f").to_string(),
        None => format!("{micros} microseconds"),
    }
}

fn format_timestamp(v: i64, unit: TimeUnit, with_zone: bool) -> String {
    let dt = match unit {
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
        other => DateTime::from_timestamp_micros(other.to_micros(v)),
    };
    let Some(dt) = dt else {
        return format!("{v}");
    };
    let naive = dt.naive_utc();
    let subsec = naive.and_utc().timestamp_subsec_nanos();
    let base = if subsec == 0 {
        naive.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else if subsec % 1000 == 0 {
        naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    } else {
        naive.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()
    };
    if with_zone {
        format!("{base}+00:00")
    } else {
        base
    }
}

fn format_interval(months: i32, days: i32, nanos: i64) -> String {
    let mut parts = Vec::new();
    if months != 0 {
        parts.push(format!("{months} months"));
    }
    if days != 0 {
        parts.push(format!("{days} days"));
    }
    if nanos != 0 || parts.is_empty() {
        parts.push(format_time(nanos / 1000));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_and_timestamps() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(19_000), "2022-01-08");
        assert_eq!(
            format_timestamp(1_500_000, TimeUnit::Microsecond, false),
            "1970-01-01T00:00:01.500000"
        );
        assert_eq!(
            format_timestamp(60, TimeUnit::Second, true),
            "1970-01-01T00:01:00+00:00"
        );
        assert_eq!(format_time(3_723_000_000), "01:02:03");
    }

    #[test]
    fn decimals_keep_integers_integral() {
        assert_eq!(decimal_json("3"), serde_json::json!(3));
        assert_eq!(decimal_json("2.50"), serde_json::json!(2.5));
    }

    #[test]
    fn relative_paths_resolve_against_project() {
        assert_eq!(
            resolve_path("db.duckdb", Path::new("/p")),
            PathBuf::from("/p/db.duckdb")
        );
        assert_eq!(
            resolve_path(":memory:", Path::new("/p")),
            PathBuf::from(":memory:")
        );
    }
}
