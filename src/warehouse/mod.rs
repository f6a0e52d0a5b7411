//! Warehouses: one trait, two engines (DuckDB embedded, PostgreSQL), and the
//! engine-neutral adapter operations built on it (relations, columns, schemas,
//! materializations, seeds).
//!
//! The trait is deliberately small: open connections, run statements, run
//! queries, cancel. Everything dbt calls "adapter" behaviour is written once on
//! top of it, with the SQL differences between engines kept in `Engine`
//! methods rather than scattered `match`es.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::sql::Engine;

pub mod adapter;
pub mod contract;
#[cfg(feature = "duckdb")]
pub mod duckdb;
pub mod materialize;
pub mod post_build;
pub mod postgres;
pub mod rows;
pub mod seed;
pub mod snapshot;

/// A connection target as written under `outputs:` in profiles.yml, after
/// `env_var()` rendering. Selected by its `type:` key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetConfig {
    Duckdb(DuckDbTarget),
    Postgres(PostgresTarget),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct DuckDbTarget {
    /// Database file, relative to the project directory; `:memory:` allowed.
    #[serde(default = "default_duckdb_path")]
    pub path: String,
    #[serde(default = "default_duckdb_schema")]
    pub schema: String,
    #[serde(default)]
    pub threads: Option<usize>,
    /// Extra keys are accepted (dbt-duckdb has many) but unused.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

fn default_duckdb_path() -> String {
    ":memory:".to_string()
}
fn default_duckdb_schema() -> String {
    "main".to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PostgresTarget {
    pub host: String,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    pub user: String,
    /// Never printed: `Debug`/`Serialize` output of a target must go through
    /// [`TargetConfig::masked`].
    #[serde(default, alias = "pass")]
    pub password: String,
    #[serde(alias = "database")]
    pub dbname: String,
    pub schema: String,
    #[serde(default)]
    pub threads: Option<usize>,
    /// `disable`, `prefer` (default) or `require`.
    #[serde(default)]
    pub sslmode: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    /// Seconds.
    #[serde(default)]
    pub keepalives_idle: Option<u64>,
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

fn default_pg_port() -> u16 {
    5432
}

impl TargetConfig {
    pub fn engine(&self) -> Engine {
        match self {
            TargetConfig::Duckdb(_) => Engine::DuckDb,
            TargetConfig::Postgres(_) => Engine::Postgres,
        }
    }
    pub fn schema(&self) -> &str {
        match self {
            TargetConfig::Duckdb(t) => &t.schema,
            TargetConfig::Postgres(t) => &t.schema,
        }
    }
    pub fn threads(&self) -> Option<usize> {
        match self {
            TargetConfig::Duckdb(t) => t.threads,
            TargetConfig::Postgres(t) => t.threads,
        }
    }
    /// The database name dbt exposes as `target.database`: the file stem for
    /// DuckDB (`memory` for `:memory:`), `dbname` for Postgres.
    pub fn database(&self) -> String {
        match self {
            TargetConfig::Duckdb(t) => {
                if t.path == ":memory:" {
                    "memory".to_string()
                } else {
                    Path::new(&t.path)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "memory".to_string())
                }
            }
            TargetConfig::Postgres(t) => t.dbname.clone(),
        }
    }
    /// A copy safe to print or serialize: secrets replaced by `****`.
    pub fn masked(&self) -> TargetConfig {
        let mut t = self.clone();
        if let TargetConfig::Postgres(p) = &mut t {
            if !p.password.is_empty() {
                p.password = "****".to_string();
            }
        }
        t
    }
}

/// A relation in the warehouse: `database.schema.identifier`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    Table,
    View,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    pub data_type: String,
}

impl ColumnMeta {
    pub fn new(name: &str, data_type: &str) -> Self {
        ColumnMeta {
            name: name.into(),
            data_type: data_type.into(),
        }
    }
}

/// Rows returned by a query, values converted to JSON so that Jinja
/// (`run_query`, `load_result`) and artifacts can use them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryResult {
    pub columns: Vec<ColumnMeta>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("could not connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("{message}")]
    Database { message: String },
    #[error("query cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// An open warehouse: hands out connections and can cancel what runs on them.
pub trait Warehouse: Send + Sync {
    fn engine(&self) -> Engine;
    /// A connection for one worker thread.
    fn connect(&self) -> Result<Box<dyn Connection>>;
    /// Cancel every query in flight on connections from this warehouse.
    fn cancel_all(&self);
    /// e.g. `PostgreSQL 15.18` or `DuckDB v1.2.0`.
    fn server_version(&self) -> Result<String>;
}

/// One session. Not shared between threads.
pub trait Connection: Send {
    /// Run one or more statements; returns rows affected by the last one when
    /// the engine reports it.
    fn execute(&mut self, sql: &str) -> Result<u64>;
    /// Run a query and collect its rows.
    fn query(&mut self, sql: &str) -> Result<QueryResult>;
    /// Bulk-load rows into an existing table whose columns are `columns`, in
    /// order. Values are text as read from a CSV (`None` is NULL) and are
    /// converted to the column types by the engine's bulk path (COPY on
    /// Postgres, the Appender or a CSV scan on DuckDB). Returns rows loaded.
    fn bulk_insert(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &[Vec<Option<String>>],
    ) -> Result<u64>;

    /// Bulk-load typed rows into an existing table whose columns are
    /// `columns`, in order (binary COPY on PostgreSQL, the Appender on
    /// DuckDB). Returns rows loaded.
    fn load_rows(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &rows::Rows,
    ) -> Result<u64>;

    /// Whether [`Connection::copy_csv_file`] loads a CSV file directly.
    fn can_copy_csv_file(&self) -> bool {
        false
    }

    /// Load a checked CSV file with a header row into `relation` as the
    /// engine reads CSV itself, empty fields (quoted or not) as NULL.
    /// Only called when [`Connection::can_copy_csv_file`] says so.
    fn copy_csv_file(
        &mut self,
        relation: &Relation,
        _columns: &[ColumnMeta],
        path: &std::path::Path,
    ) -> Result<u64> {
        Err(WarehouseError::Other(format!(
            "loading {} into {}: this engine loads rows, not files",
            path.display(),
            relation.identifier
        )))
    }
}

/// Open the warehouse a target points at. Relative DuckDB paths resolve
/// against `project_dir`.
pub fn open(target: &TargetConfig, project_dir: &Path) -> Result<Arc<dyn Warehouse>> {
    match target {
        TargetConfig::Postgres(t) => postgres::open(t),
        #[cfg(feature = "duckdb")]
        TargetConfig::Duckdb(t) => self::duckdb::open(t, project_dir),
        #[cfg(not(feature = "duckdb"))]
        TargetConfig::Duckdb(_) => {
            let _ = project_dir;
            Err(WarehouseError::Other(
                "this build of sluice has no DuckDB support (built without the `duckdb` feature)"
                    .into(),
            ))
        }
    }
}
