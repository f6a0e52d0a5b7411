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
pub mod external;
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
    /// dbt-duckdb's `database`: the catalog models are built in. The path's
    /// stem unless it names an attached database (see [`DuckDbTarget::check`]).
    #[serde(default)]
    pub database: Option<String>,
    /// Extensions to load on connect: a name, or `{name, repo}`.
    #[serde(default)]
    pub extensions: Vec<serde_json::Value>,
    /// `SET key = 'value'` on every connection (values may be secrets).
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, serde_json::Value>,
    /// Other databases attached on connect, as dbt-duckdb's `attach:`.
    #[serde(default)]
    pub attach: Vec<DuckDbAttachment>,
    /// Where `materialized: external` models write their files by default.
    #[serde(default = "default_external_root")]
    pub external_root: String,
    /// Extra keys are accepted (dbt-duckdb has many) but unused.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One entry of a DuckDB target's `attach:` (dbt-duckdb's `Attachment`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct DuckDbAttachment {
    pub path: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Default for DuckDbTarget {
    fn default() -> Self {
        DuckDbTarget {
            path: default_duckdb_path(),
            schema: default_duckdb_schema(),
            threads: None,
            database: None,
            extensions: Vec::new(),
            settings: Default::default(),
            attach: Vec::new(),
            external_root: default_external_root(),
            extra: Default::default(),
        }
    }
}

fn default_external_root() -> String {
    ".".to_string()
}

impl DuckDbTarget {
    /// The catalog DuckDB names the database at `path` (dbt-duckdb's
    /// `path_derived_database_name`): the file's stem, `memory` in memory.
    pub fn path_database(&self) -> String {
        if self.path == ":memory:" || self.path.is_empty() {
            return "memory".to_string();
        }
        let path = self.path.split(['?', '#']).next().unwrap_or_default();
        Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "memory".to_string())
    }

    /// dbt-duckdb's profile check: `database` must be the path's catalog or
    /// the alias of an attached database.
    pub fn check(&self) -> std::result::Result<(), String> {
        let Some(db) = &self.database else {
            return Ok(());
        };
        let from_path = self.path_database();
        let attached = self.attach.iter().any(|a| a.alias.as_ref() == Some(db));
        if *db != from_path && !attached {
            return Err(format!(
                "Inconsistency detected between 'path' and 'database' fields in profile; \
                 the 'database' property must be set to '{from_path}' to match the 'path'"
            ));
        }
        Ok(())
    }

    /// The `ATTACH` statement for `a`, as dbt-duckdb writes it; a relative
    /// local path resolves against `project_dir`, like `path`.
    pub fn attach_sql(
        a: &DuckDbAttachment,
        project_dir: &Path,
    ) -> std::result::Result<String, String> {
        // `md:db`, `s3://…`, `ducklake:…`: a scheme, not a file name.
        let scheme = a
            .path
            .split_once(':')
            .is_some_and(|(s, _)| s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric()));
        let path = if scheme || a.path == ":memory:" || Path::new(&a.path).is_absolute() {
            a.path.clone()
        } else {
            project_dir.join(&a.path).to_string_lossy().into_owned()
        };
        let mut sql = format!("ATTACH IF NOT EXISTS '{}'", path.replace('\'', "''"));
        if let Some(alias) = &a.alias {
            sql.push_str(&format!(" AS {alias}"));
        }
        let given_directly = [
            ("type", a.kind.is_some()),
            ("secret", a.secret.is_some()),
            ("read_only", a.read_only),
        ];
        if let Some((key, _)) = given_directly
            .iter()
            .find(|(key, direct)| *direct && a.options.contains_key(*key))
        {
            return Err(format!(
                "attachment option `{key}` is given both directly and under `options`; give it once"
            ));
        }
        let mut options = Vec::new();
        let opt_str = |k: &str| {
            a.options.get(k).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        if let Some(t) = a.kind.clone().or_else(|| opt_str("type")) {
            options.push(format!("TYPE {t}"));
        }
        if let Some(s) = a.secret.clone().or_else(|| opt_str("secret")) {
            options.push(format!("SECRET {s}"));
        }
        if a.read_only || a.options.get("read_only") == Some(&serde_json::Value::Bool(true)) {
            options.push("READ_ONLY".to_string());
        }
        for (k, v) in &a.options {
            if matches!(k.as_str(), "type" | "secret" | "read_only") {
                continue;
            }
            match v {
                serde_json::Value::Bool(true) => options.push(k.to_uppercase()),
                serde_json::Value::Bool(false) | serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    let t = s.trim();
                    let quoted = t.len() >= 2
                        && ((t.starts_with('\'') && t.ends_with('\''))
                            || (t.starts_with('"') && t.ends_with('"')));
                    if quoted {
                        options.push(format!("{} {s}", k.to_uppercase()));
                    } else {
                        options.push(format!("{} '{}'", k.to_uppercase(), s.replace('\'', "''")));
                    }
                }
                other => options.push(format!("{} {other}", k.to_uppercase())),
            }
        }
        if !options.is_empty() {
            sql.push_str(&format!(" ({})", options.join(", ")));
        }
        Ok(sql)
    }
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
            TargetConfig::Duckdb(t) => t.database.clone().unwrap_or_else(|| t.path_database()),
            TargetConfig::Postgres(t) => t.dbname.clone(),
        }
    }
    /// A copy safe to print or serialize: secrets replaced by `****`.
    pub fn masked(&self) -> TargetConfig {
        let mut t = self.clone();
        match &mut t {
            TargetConfig::Postgres(p) => {
                if !p.password.is_empty() {
                    p.password = "****".to_string();
                }
            }
            TargetConfig::Duckdb(d) => {
                // dbt-duckdb's settings carry cloud keys; its secrets too.
                for (k, v) in d.settings.iter_mut() {
                    if is_secret_key(k) {
                        *v = serde_json::Value::from("****");
                    }
                }
                if let Some(serde_json::Value::Array(secrets)) = d.extra.get_mut("secrets") {
                    for s in secrets.iter_mut() {
                        if let serde_json::Value::Object(m) = s {
                            for (k, v) in m.iter_mut() {
                                if !matches!(
                                    k.as_str(),
                                    "type" | "name" | "provider" | "scope" | "region"
                                ) {
                                    *v = serde_json::Value::from("****");
                                }
                            }
                        }
                    }
                }
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
    /// What the profile asked for that the engine could not do, to show
    /// once (an extension DuckDB cannot load offline, an unknown setting).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Make what a command wrote durable in the database file itself (a
    /// DuckDB checkpoint: the file holds everything, not its WAL beside it,
    /// as when dbt-duckdb closes its last connection). Best effort.
    fn checkpoint(&self) {}
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

    /// Load a checked CSV file with a header row, fields separated by
    /// `delimiter`, into `relation` as the engine reads CSV itself.
    /// Only called when [`Connection::can_copy_csv_file`] says so.
    fn copy_csv_file(
        &mut self,
        relation: &Relation,
        _columns: &[ColumnMeta],
        path: &std::path::Path,
        _delimiter: u8,
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

/// Whether a profile setting's name says its value is a credential.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "token",
        "key_id",
        "access_key",
        "session",
        "credential",
        "sas",
        "connection_string",
    ]
    .iter()
    .any(|w| k.contains(w))
}
