//! The Jinja-visible objects of a render: relations (`ref`, `source`,
//! `this`), the per-render capture (what a node's template referenced and
//! configured), `config`, `exceptions`, dates, and query results.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use crate::project::node::{Config, RefCall};
use crate::warehouse::{Connection, Engine, QueryResult};

/// Separator around placeholders in phase-one output; replaced by the real
/// relation names once every node's schema and alias are known.
pub const MARK: char = '\u{1}';

/// A relation as Jinja sees it. When `resolved` is `None` (first render,
/// before schemas are known) it renders as a placeholder for `unique_id`.
#[derive(Debug, Clone)]
pub struct RelationObj {
    pub unique_id: String,
    pub resolved: Option<ResolvedRelation>,
    pub engine: Engine,
    /// `--empty`: a ref or source reads no rows (dbt's `limit 0` relation).
    pub limit_zero: bool,
    /// A microbatch batch's window (start, end), when the relation is read
    /// from inside one: a relation with an `event_time` reads only the
    /// window's rows.
    pub event_time_window: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRelation {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
    /// `table`, `view`, `ephemeral`, … (dbt's `relation.type`).
    pub kind: String,
    /// The node's `event_time` config: the column that places its rows in
    /// time (for microbatch models downstream).
    pub event_time: Option<String>,
    /// dbt-duckdb: a source read from a file renders as its location
    /// (`'data/x.parquet'`, `read_csv(…)`), see `warehouse::external`.
    pub external: Option<String>,
}

impl ResolvedRelation {
    pub fn render(&self) -> String {
        if self.kind == "ephemeral" {
            return self.identifier.clone();
        }
        if let Some(location) = &self.external {
            return location.clone();
        }
        let mut parts = Vec::new();
        if let Some(db) = &self.database {
            parts.push(quote(db));
        }
        // `api.Relation.create` may leave out the schema (or the name).
        for part in [&self.schema, &self.identifier] {
            if !part.is_empty() {
                parts.push(quote(part));
            }
        }
        parts.join(".")
    }
}

impl ResolvedRelation {
    /// The relation read as no rows, as dbt renders refs and sources under
    /// `--empty`: `(select * from <relation> where false limit 0)`, aliased
    /// `_dbt_limit_subq_<name>` where the engine requires subqueries to
    /// have an alias (PostgreSQL; dbt-duckdb leaves it out). An ephemeral
    /// model's CTE is read as is.
    pub fn render_limit_zero(&self, engine: Engine) -> String {
        if self.kind == "ephemeral" {
            return self.render();
        }
        let alias = match engine {
            Engine::Postgres => format!(" _dbt_limit_subq_{}", self.identifier),
            Engine::DuckDb => String::new(),
        };
        format!(
            "(select * from {} where false limit 0){alias}",
            self.render()
        )
    }
}

/// The error for a method an object does not have.
pub fn no_method(what: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{what} has no method `{method}`"),
    )
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub fn placeholder(unique_id: &str, part: &str) -> String {
    format!("{MARK}{unique_id}|{part}{MARK}")
}

impl RelationObj {
    /// A copy whose parts can be changed: a relation not named yet (while
    /// the project renders) gets its parts as placeholders, which are
    /// replaced once every node is named, so `incorporate(path=…)` and
    /// `include(…)` compose with them.
    fn with_parts(&self) -> RelationObj {
        let mut copy = self.clone();
        if copy.resolved.is_none() {
            copy.resolved = Some(ResolvedRelation {
                database: Some(placeholder(&self.unique_id, "database")),
                schema: placeholder(&self.unique_id, "schema"),
                identifier: placeholder(&self.unique_id, "identifier"),
                kind: "table".into(),
                event_time: None,
                external: None,
            });
        }
        copy
    }
}

impl Object for RelationObj {
    /// A mapping, as dbt's relations are (dbt_utils checks `obj is mapping`
    /// and `obj.metadata.type` before it accepts a relation).
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["database", "schema", "identifier", "type", "metadata"])
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let part = |name: &str, v: Option<String>| match v {
            Some(s) => Value::from(s),
            None => Value::from(placeholder(&self.unique_id, name)),
        };
        let r = self.resolved.as_ref();
        Some(match key {
            "database" => match r {
                Some(r) => Value::from(r.database.clone()),
                None => part("database", None),
            },
            "schema" => part("schema", r.map(|r| r.schema.clone())),
            "identifier" | "name" | "table" => part("identifier", r.map(|r| r.identifier.clone())),
            "type" => Value::from(r.map(|r| r.kind.clone()).unwrap_or_else(|| "table".into())),
            "is_table" => {
                Value::from(r.is_some_and(|r| r.kind == "table" || r.kind == "incremental"))
            }
            "is_view" => Value::from(r.is_some_and(|r| r.kind == "view")),
            "is_cte" => Value::from(r.is_some_and(|r| r.kind == "ephemeral" || r.kind == "cte")),
            "is_materialized_view" => Value::from(r.is_some_and(|r| r.kind == "materialized_view")),
            "unique_id" => Value::from(self.unique_id.clone()),
            "metadata" => {
                let kind = match self.engine {
                    Engine::DuckDb => "DuckDBRelation",
                    Engine::Postgres => "PostgresRelation",
                };
                Value::from_serialize(BTreeMap::from([("type", kind)]))
            }
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.to_string())),
            // dbt's `include(database=False, …)`: the part is left out of
            // the rendered name.
            "include" => {
                let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
                let mut copy = self.with_parts();
                if let Some(r) = &mut copy.resolved {
                    if kwargs.get::<Option<bool>>("database")? == Some(false) {
                        r.database = None;
                    }
                    if kwargs.get::<Option<bool>>("schema")? == Some(false) {
                        r.schema.clear();
                    }
                    if kwargs.get::<Option<bool>>("identifier")? == Some(false) {
                        r.identifier.clear();
                    }
                }
                Ok(Value::from_object(copy))
            }
            // `incorporate(path={'identifier': …}, type='view')` and
            // `replace_path(identifier=…)`: a copy with parts replaced.
            "incorporate" | "replace_path" => {
                let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
                let mut copy = self.with_parts();
                if let Some(r) = &mut copy.resolved {
                    let path: Option<Value> = if method == "incorporate" {
                        kwargs.get("path")?
                    } else {
                        None
                    };
                    for part in ["database", "schema", "identifier"] {
                        let v = match &path {
                            Some(p) => p.get_attr(part).ok(),
                            None => kwargs.get::<Option<Value>>(part)?,
                        };
                        let Some(v) = v.filter(|v| !v.is_undefined()) else {
                            continue;
                        };
                        let text = (!v.is_none()).then(|| v.to_string());
                        match part {
                            "database" => r.database = text,
                            "schema" => r.schema = text.unwrap_or_default(),
                            _ => r.identifier = text.unwrap_or_default(),
                        }
                    }
                    if method == "incorporate" {
                        if let Some(t) = kwargs.get::<Option<String>>("type")? {
                            r.kind = t;
                        }
                    }
                }
                Ok(Value::from_object(copy))
            }
            "without_identifier" => {
                let mut copy = self.with_parts();
                if let Some(r) = &mut copy.resolved {
                    r.identifier.clear();
                }
                Ok(Value::from_object(copy))
            }
            // `relation.information_schema('columns')`: the catalog's views,
            // in the relation's database.
            "information_schema" => {
                let (view,): (Option<String>,) = minijinja::value::from_args(args)?;
                let database = self.resolved.as_ref().and_then(|r| r.database.clone());
                Ok(Value::from_object(RelationObj {
                    unique_id: String::new(),
                    resolved: Some(ResolvedRelation {
                        database,
                        schema: "information_schema".into(),
                        identifier: view.unwrap_or_default(),
                        kind: "view".into(),
                        event_time: None,
                        external: None,
                    }),
                    engine: self.engine,
                    limit_zero: false,
                    event_time_window: None,
                }))
            }
            "quote" => Ok(Value::from_object((**self).clone())),
            _ => Err(no_method("relation", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

impl ResolvedRelation {
    /// The relation filtered to a microbatch window on its `event_time`,
    /// as dbt renders it: `(select * from <relation> where <event_time> >=
    /// '<start>' and <event_time> < '<end>')`, aliased on PostgreSQL.
    pub fn render_event_time_filtered(
        &self,
        rendered: String,
        window: &(String, String),
        engine: Engine,
    ) -> String {
        let Some(column) = self
            .event_time
            .as_deref()
            .filter(|_| self.kind != "ephemeral")
        else {
            return rendered;
        };
        let alias = match engine {
            Engine::Postgres => format!(" _dbt_et_filter_subq_{}", self.identifier),
            Engine::DuckDb => String::new(),
        };
        format!(
            "(select * from {rendered} where {column} >= '{}' and {column} < '{}'){alias}",
            window.0, window.1
        )
    }
}

impl fmt::Display for RelationObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(r), Some(window)) = (&self.resolved, &self.event_time_window) {
            let rendered = if self.limit_zero {
                r.render_limit_zero(self.engine)
            } else {
                r.render()
            };
            return f.write_str(&r.render_event_time_filtered(rendered, window, self.engine));
        }
        match (&self.resolved, self.limit_zero) {
            (Some(r), true) => f.write_str(&r.render_limit_zero(self.engine)),
            (Some(r), false) => f.write_str(&r.render()),
            (None, true) => f.write_str(&placeholder(&self.unique_id, "empty")),
            (None, false) => f.write_str(&placeholder(&self.unique_id, "relation")),
        }
    }
}

/// What one node's render referenced and configured.
#[derive(Debug, Default)]
pub struct Captured {
    pub refs: Vec<RefCall>,
    pub sources: Vec<Vec<String>>,
    pub config: Config,
    /// Every macro the render called (`<package>.<name>`), nested ones too.
    pub macros: Vec<String>,
    /// The macros the template itself called (dbt's `depends_on.macros`).
    pub direct_macros: Vec<String>,
    /// A diagnostic code and hint for the error being raised (the line is
    /// attached by minijinja).
    pub pending_error: Option<(&'static str, Vec<String>)>,
    /// True when the template touched something whose value differs between
    /// the first render and execution (`execute`, `run_query`, adapter calls).
    pub dynamic: bool,
    pub results: BTreeMap<String, Value>,
    pub logs: Vec<String>,
}

/// Per-render state reachable from every Jinja function through the
/// `__sluice` context variable.
pub struct RenderScope {
    pub node_id: String,
    pub captured: Mutex<Captured>,
    pub execute: bool,
    pub is_incremental: bool,
    pub connection: Option<Arc<Mutex<Box<dyn Connection>>>>,
    /// The node is disabled by its config before rendering (project or
    /// YAML): like one whose `config(enabled=false)` has run, it is never
    /// built, so a missing var or an unknown ref in it is not an error.
    pub disabled: bool,
    /// Inside a microbatch batch: its window (start, end).
    pub batch: Option<(String, String)>,
    /// A unit test's `overrides: {vars: …, env_vars: …}`: what `var()` and
    /// `env_var()` answer first.
    pub var_overrides: Option<Value>,
    pub env_var_overrides: Option<Value>,
    /// A unit test's overridden macros: bare macro name → what it returns.
    pub macro_overrides: Option<Value>,
}

/// `name` in one of a unit test's override maps (`RenderScope`'s
/// `*_overrides`), when it is there.
pub fn overridden(overrides: Option<&Value>, name: &str) -> Option<Value> {
    overrides?.get_attr(name).ok().filter(|v| !v.is_undefined())
}

impl fmt::Debug for RenderScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderScope")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl Object for RenderScope {}

impl RenderScope {
    /// Whether the node being rendered is disabled, by its config or by a
    /// `config(enabled=false)` call already made. dbt leaves such nodes out
    /// of the graph, so what they reference need not exist.
    pub fn node_disabled(&self) -> bool {
        self.disabled
            || self.with(|c| {
                c.config
                    .get("enabled")
                    .is_some_and(|v| v == &serde_json::Value::Bool(false))
            })
    }

    pub fn of(state: &State) -> Result<Arc<RenderScope>, Error> {
        state
            .lookup("__sluice")
            .and_then(|v| v.downcast_object::<RenderScope>())
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "not inside a sluice render"))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Captured) -> R) -> R {
        let mut guard = match self.captured.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn fail(&self, code: &'static str, message: String, hints: Vec<String>) -> Error {
        self.with(|c| c.pending_error = Some((code, hints)));
        Error::new(ErrorKind::InvalidOperation, message)
    }

    pub fn run_query(&self, sql: &str) -> Result<QueryResult, Error> {
        self.with(|c| c.dynamic = true);
        let Some(conn) = &self.connection else {
            return Ok(QueryResult::default());
        };
        let mut conn = match conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        conn.query(sql).map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("database error in run_query: {e}"),
            )
        })
    }
}

/// `config` as a global: callable (`config(materialized='table')`) and with
/// `get`/`require`/`set` methods that read the node's config so far.
#[derive(Debug)]
pub struct ConfigObj {
    /// Config from dbt_project.yml and YAML, looked up by `config.get`.
    pub base: BTreeMap<String, Config>,
}

impl Object for ConfigObj {
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let scope = RenderScope::of(state)?;
        let (pos, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        let mut pairs: Vec<(String, serde_json::Value)> = Vec::new();
        for v in pos {
            // config({'materialized': 'table'})
            if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(v) {
                pairs.extend(m);
            }
        }
        for key in kwargs.args() {
            let v: Value = kwargs.peek(key)?;
            pairs.push((key.to_string(), to_json(&v)));
        }
        scope.with(|c| {
            for (k, v) in pairs {
                crate::project::config::merge_config_value(&mut c.config, &k, v);
            }
        });
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let scope = RenderScope::of(state)?;
        match method {
            "get" | "require" => {
                let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                let inline = scope.with(|c| c.config.get(&key).cloned());
                let found = inline.or_else(|| {
                    self.base
                        .get(&scope.node_id)
                        .and_then(|b| b.get(&key).cloned())
                });
                match (found, default) {
                    (Some(v), _) => Ok(Value::from_serialize(&v)),
                    (None, Some(d)) => Ok(d),
                    (None, None) if method == "require" => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("required config `{key}` is not set"),
                    )),
                    (None, None) => Ok(Value::from(())),
                }
            }
            "set" => {
                let (key, value): (String, Value) = minijinja::value::from_args(args)?;
                scope.with(|c| c.config.insert(key, to_json(&value)));
                Ok(Value::from(""))
            }
            _ => Err(no_method("config", method)),
        }
    }
}

pub fn to_json(v: &Value) -> serde_json::Value {
    if let Some(obj) = v.downcast_object_ref::<RelationObj>() {
        return serde_json::Value::String(obj.to_string());
    }
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
pub struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (msg,): (String,) = minijinja::value::from_args(args)?;
        match method {
            "raise_compiler_error" | "raise_not_implemented" | "raise_database_error" => {
                let scope = RenderScope::of(state)?;
                Err(scope.fail("E0204", format!("compilation error: {msg}"), Vec::new()))
            }
            "warn" => {
                if let Ok(scope) = RenderScope::of(state) {
                    scope.with(|c| c.logs.push(format!("warning: {msg}")));
                }
                Ok(Value::from(""))
            }
            _ => Err(no_method("exceptions", method)),
        }
    }
}

/// A query result as dbt's agate table: a sequence of rows, with `.rows`,
/// `.columns` (`columns[i].values()`), `.column_names`.
#[derive(Debug)]
pub struct TableObj(pub QueryResult);

impl Object for TableObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some("rows") => Some(Value::from(self.rows())),
            Some("columns") => Some(Value::from_object(TableColumns(self.clone()))),
            Some("column_names") => Some(Value::from(
                self.0
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            )),
            _ => key
                .as_usize()
                .filter(|i| *i < self.0.rows.len())
                .map(|index| self.row(index)),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            // agate's `rename(column_names)`: a dict old → new, or a list of
            // the new names in order.
            "rename" => {
                let (names,): (Value,) = minijinja::value::from_args(args)?;
                let mut renamed = self.0.clone();
                for (i, c) in renamed.columns.iter_mut().enumerate() {
                    let new = match names.kind() {
                        minijinja::value::ValueKind::Seq => names.get_item_by_index(i).ok(),
                        _ => names.get_item(&Value::from(c.name.as_str())).ok(),
                    };
                    if let Some(n) = new.filter(|n| !n.is_undefined() && !n.is_none()) {
                        c.name = n.to_string();
                    }
                }
                Ok(Value::from_object(TableObj(renamed)))
            }
            // agate's `print_table(max_rows=20, max_columns=6, …)`: the
            // rows as a Markdown-style table on standard output.
            "print_table" => {
                let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
                let max_rows = kwargs.get::<Option<usize>>("max_rows")?.unwrap_or(20);
                let max_columns = kwargs.get::<Option<usize>>("max_columns")?.unwrap_or(6);
                let _ = kwargs.get::<Option<Value>>("max_column_width")?;
                let _ = kwargs.get::<Option<Value>>("max_precision")?;
                println!("{}", self.text_table(max_rows, max_columns));
                Ok(Value::from(()))
            }
            _ => Err(no_method("table", method)),
        }
    }
}

impl TableObj {
    /// The first `max_rows` rows and `max_columns` columns as a table.
    fn text_table(&self, max_rows: usize, max_columns: usize) -> String {
        let columns = &self.0.columns[..self.0.columns.len().min(max_columns)];
        let cell = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut lines = vec![format!(
            "| {} |",
            columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        )];
        lines.push(format!("| {} |", vec!["---"; columns.len()].join(" | ")));
        for row in self.0.rows.iter().take(max_rows) {
            let cells: Vec<String> = row.iter().take(columns.len()).map(cell).collect();
            lines.push(format!("| {} |", cells.join(" | ")));
        }
        if self.0.rows.len() > max_rows {
            lines.push(format!("| {} |", vec!["..."; columns.len()].join(" | ")));
        }
        lines.join("\n")
    }

    fn row(self: &Arc<Self>, index: usize) -> Value {
        Value::from_object(RowObj {
            table: self.clone(),
            index,
        })
    }

    fn rows(self: &Arc<Self>) -> Vec<Value> {
        (0..self.0.rows.len()).map(|i| self.row(i)).collect()
    }
}

/// An agate row: a sequence of values that can also be read by column name
/// (`row.table_schema`, `row['id']`), with a dict's `keys()`, `values()`,
/// `items()` and `get()`.
#[derive(Debug)]
struct RowObj {
    table: Arc<TableObj>,
    index: usize,
}

impl RowObj {
    fn values(&self) -> &[serde_json::Value] {
        self.table.0.rows.get(self.index).map_or(&[], Vec::as_slice)
    }

    fn by_name(&self, name: &str) -> Option<Value> {
        let i = self.table.0.columns.iter().position(|c| c.name == name)?;
        self.values().get(i).map(Value::from_serialize)
    }
}

impl Object for RowObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(name) => self.by_name(name),
            None => self
                .values()
                .get(key.as_usize()?)
                .map(Value::from_serialize),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.values().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let names = self.table.0.columns.iter().map(|c| c.name.clone());
        let values = self.values().iter().map(Value::from_serialize);
        Ok(match method {
            "keys" => Value::from(names.collect::<Vec<_>>()),
            "values" => Value::from(values.collect::<Vec<_>>()),
            "items" => Value::from(
                names
                    .zip(values)
                    .map(|(k, v)| Value::from(vec![Value::from(k), v]))
                    .collect::<Vec<_>>(),
            ),
            // A dict the template may change (`row.dict().pop('name')`).
            "dict" => crate::templating::mutable::deep(Value::from_iter(names.zip(values))),
            "get" => {
                let (name, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                self.by_name(&name)
                    .unwrap_or_else(|| default.unwrap_or_default())
            }
            _ => return Err(no_method("row", method)),
        })
    }
}

/// agate's `table.columns`: a sequence of columns that can also be looked
/// up by name, with a dict's `keys()`, `values()` and `items()`.
#[derive(Debug)]
struct TableColumns(Arc<TableObj>);

impl TableColumns {
    fn column(&self, index: usize) -> Value {
        Value::from_object(ColumnValues {
            table: self.0.clone(),
            index,
        })
    }
    fn names(&self) -> impl Iterator<Item = &str> {
        self.0 .0.columns.iter().map(|c| c.name.as_str())
    }
}

impl Object for TableColumns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = match key.as_str() {
            Some(name) => self.names().position(|n| n == name)?,
            None => key.as_usize()?,
        };
        (index < self.0 .0.columns.len()).then(|| self.column(index))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0 .0.columns.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let n = self.0 .0.columns.len();
        Ok(match method {
            "get" => {
                let (name, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                match self.names().position(|c| c == name) {
                    Some(i) => self.column(i),
                    None => default.unwrap_or_default(),
                }
            }
            "keys" => Value::from(self.names().map(str::to_string).collect::<Vec<_>>()),
            "values" => Value::from((0..n).map(|i| self.column(i)).collect::<Vec<_>>()),
            "items" => Value::from(
                self.names()
                    .enumerate()
                    .map(|(i, name)| Value::from(vec![Value::from(name), self.column(i)]))
                    .collect::<Vec<_>>(),
            ),
            _ => return Err(no_method("columns", method)),
        })
    }
}

/// An agate column's `data_type`: its `jsonify(value)` is the value as
/// JSON has it (query values here already are).
#[derive(Debug)]
struct AgateType(String);

impl Object for AgateType {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "jsonify" | "cast" => {
                let (v,): (Value,) = minijinja::value::from_args(args)?;
                Ok(v)
            }
            _ => Err(no_method("data type", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
struct ColumnValues {
    table: Arc<TableObj>,
    index: usize,
}

impl Object for ColumnValues {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let column = self.table.0.columns.get(self.index)?;
        match key.as_str() {
            Some("name") => Some(Value::from(column.name.clone())),
            Some("data_type") => Some(Value::from_object(AgateType(column.data_type.clone()))),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(
                self.table
                    .0
                    .rows
                    .iter()
                    .map(|r| {
                        r.get(self.index)
                            .map(Value::from_serialize)
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => Err(no_method("column", method)),
        }
    }
}

const GRAPH_KEYS: &[&str] = &["nodes", "sources", "exposures", "metrics", "groups"];

/// dbt's `graph`: `nodes` and `sources` by unique id, empty until the
/// renderer is given the parsed project (`Renderer::set_graph`).
#[derive(Debug)]
pub struct GraphObj {
    pub graph: Arc<std::sync::OnceLock<Value>>,
    /// Keys a run adds with `graph.setdefault(…)`: packages (elementary)
    /// use dbt's `graph` as a cache shared by every node of the run.
    pub added: Mutex<BTreeMap<String, Value>>,
}

impl GraphObj {
    pub fn new(graph: Arc<std::sync::OnceLock<Value>>) -> Self {
        GraphObj {
            graph,
            added: Mutex::new(BTreeMap::new()),
        }
    }

    fn added(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        match self.added.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

impl Object for GraphObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if !GRAPH_KEYS.contains(&key) {
            return self.added().get(key).cloned();
        }
        Some(
            self.graph
                .get()
                .and_then(|g| g.get_attr(key).ok())
                .filter(|v| !v.is_undefined())
                .unwrap_or_else(|| Value::from_serialize(BTreeMap::<String, Value>::new())),
        )
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(GRAPH_KEYS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "setdefault" => {
                let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                if let Some(v) = self.get_value(&Value::from(key.as_str())) {
                    return Ok(v);
                }
                // Stored to change in place, as a Python dict would.
                let v = super::mutable::deep(default.unwrap_or_else(|| Value::from(())));
                self.added().insert(key, v.clone());
                Ok(v)
            }
            "get" => {
                let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                Ok(self
                    .get_value(&Value::from(key.as_str()))
                    .unwrap_or_else(|| default.unwrap_or_default()))
            }
            _ => Err(no_method("graph", method)),
        }
    }
}

/// A column as `adapter.get_columns_in_relation` returns it: dbt's `Column`
/// with its attributes (`name`, `column`, `quoted`, `data_type`, `dtype`,
/// `char_size`, `numeric_precision`, `numeric_scale`) and type tests
/// (`is_string()`, `is_number()`, `string_size()`, …) that dbt_utils uses.
#[derive(Debug, Clone)]
pub struct ColumnObj {
    pub name: String,
    pub dtype: String,
    pub char_size: Option<i64>,
    pub numeric_precision: Option<i64>,
    pub numeric_scale: Option<i64>,
}

/// A type name without its size, lower case (`character varying`, `decimal`).
fn base_type(dtype: &str) -> String {
    let t = dtype.trim().to_ascii_lowercase();
    t.split('(').next().unwrap_or_default().trim().to_string()
}

fn is_string_type(dtype: &str) -> bool {
    matches!(
        base_type(dtype).as_str(),
        "text" | "character varying" | "character" | "varchar" | "char" | "string" | "bpchar"
    )
}

impl ColumnObj {
    fn base(&self) -> String {
        base_type(&self.dtype)
    }
    fn is_string(&self) -> bool {
        is_string_type(&self.dtype)
    }
    fn is_integer(&self) -> bool {
        matches!(
            self.base().as_str(),
            "tinyint"
                | "smallint"
                | "integer"
                | "int"
                | "bigint"
                | "hugeint"
                | "int2"
                | "int4"
                | "int8"
                | "smallserial"
                | "serial"
                | "bigserial"
                | "utinyint"
                | "usmallint"
                | "uinteger"
                | "ubigint"
        )
    }
    fn is_float(&self) -> bool {
        matches!(
            self.base().as_str(),
            "real" | "float" | "float4" | "float8" | "double" | "double precision"
        )
    }
    fn is_numeric(&self) -> bool {
        matches!(self.base().as_str(), "numeric" | "decimal")
    }
    /// dbt's `data_type`: the type with its size where it has one.
    fn data_type(&self) -> String {
        if self.dtype.contains('(') {
            return self.dtype.clone();
        }
        match (self.char_size, self.numeric_precision, self.numeric_scale) {
            (Some(n), _, _) if self.is_string() => format!("{}({n})", self.dtype),
            (_, Some(p), Some(s)) if self.is_numeric() => format!("{}({p},{s})", self.dtype),
            _ => self.dtype.clone(),
        }
    }
}

impl Object for ColumnObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&[
            "name",
            "column",
            "quoted",
            "data_type",
            "dtype",
            "char_size",
        ])
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "quoted" => Value::from(quote(&self.name)),
            "data_type" | "expanded_data_type" => Value::from(self.data_type()),
            "dtype" => Value::from(self.dtype.clone()),
            "char_size" => Value::from(self.char_size),
            "numeric_precision" => Value::from(self.numeric_precision),
            "numeric_scale" => Value::from(self.numeric_scale),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        Ok(match method {
            "is_string" => Value::from(self.is_string()),
            "is_integer" => Value::from(self.is_integer()),
            "is_float" => Value::from(self.is_float()),
            "is_numeric" => Value::from(self.is_numeric()),
            "is_number" => Value::from(self.is_integer() || self.is_float() || self.is_numeric()),
            // dbt: 256 when a string column has no declared size.
            "string_size" => Value::from(self.char_size.unwrap_or(256)),
            "can_expand_to" => {
                let other = args.first().cloned().unwrap_or_default();
                let other_size = other
                    .get_attr("char_size")
                    .ok()
                    .and_then(|v| i64::try_from(v).ok())
                    .unwrap_or(256);
                let other_is_string = other
                    .get_attr("dtype")
                    .is_ok_and(|d| is_string_type(&d.to_string()));
                Value::from(
                    self.is_string()
                        && other_is_string
                        && self.char_size.unwrap_or(256) < other_size,
                )
            }
            "literal" => {
                let v = args.first().map(|v| v.to_string()).unwrap_or_default();
                Value::from(format!(
                    "cast('{}' as {})",
                    v.replace('\'', "''"),
                    self.data_type()
                ))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("Column has no method named {method}"),
                ))
            }
        })
    }
}

/// One of dbt's `builtins` (`ref`, `source`, `config`): callable as the
/// global of that name, with the runtime config as `.config`.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub config: Value,
}

impl Object for Builtin {
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let global = state
            .env()
            .globals()
            .find(|(k, _)| *k == self.name)
            .map(|(_, v)| v);
        match global {
            Some(f) => f.call(state, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("builtins.{} is not available", self.name),
            )),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "config").then(|| self.config.clone())
    }
}

/// The runtime config's `vars`: a mapping with `to_dict()`.
#[derive(Debug)]
pub struct VarsObj(pub Value);

impl Object for VarsObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.try_iter().map(|i| i.collect()).unwrap_or_default())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "to_dict" => Ok(self.0.clone()),
            _ => Err(no_method("vars", method)),
        }
    }
}

/// A node's config as dbt hands it to Jinja on a run result's `node`: an
/// object whose keys it does not hold read as `none` (dbt's
/// `BaseConfig.get`), so `node.config.full_refresh is none` holds for a
/// test, whose config class has no such key.
#[derive(Debug)]
pub struct NodeConfigObj(pub Value);

impl Object for NodeConfigObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self.0.get_item(key).ok().filter(|v| !v.is_undefined());
        // Only names are config keys: an index or other key stays undefined.
        v.or_else(|| key.as_str().map(|_| Value::from(())))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.try_iter().map(|i| i.collect()).unwrap_or_default())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get" => {
                let (key, default): (Value, Option<Value>) = minijinja::value::from_args(args)?;
                Ok(self
                    .0
                    .get_item(&key)
                    .ok()
                    .filter(|v| !v.is_undefined())
                    .or(default)
                    .unwrap_or(Value::from(())))
            }
            // `items()`, `keys()`, … come from the Python methods callback.
            _ => Err(no_method("config", method)),
        }
    }
}
