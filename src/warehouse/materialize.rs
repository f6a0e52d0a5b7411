//! Materializations: turning a model's compiled `SELECT` into a view, a table
//! or an incremental table, the way dbt's global-project materializations do,
//! on either engine.
//!
//! Every build runs in one transaction on the caller's connection, with the
//! model's pre-hooks first and post-hooks last inside it (dbt's default
//! `inside_transaction: true`). A failure anywhere rolls the whole build back,
//! so the previous relation stays as it was.
//!
//! # Replacing a table
//!
//! A table is first built under a temporary name (`<identifier>__sluice_tmp`)
//! and then swapped in before the transaction commits, so readers see either
//! the old table or the complete new one, never a missing or half-filled one.
//! How the swap happens is a deliberate per-engine choice ([`SwapMethod`]):
//!
//! * **DuckDB** — *rename swap*: drop the old table, rename the new one into
//!   place. DuckDB binds views by name when they are queried, so views
//!   downstream of the table keep answering (with the new rows).
//! * **PostgreSQL, same columns** — *content swap*: `DELETE` the old rows and
//!   `INSERT` the new ones into the existing table. PostgreSQL binds views to
//!   the table's OID, and this keeps the table (its OID, grants and the views
//!   depending on it) intact. `DELETE` rather than `TRUNCATE` keeps the swap
//!   MVCC-safe for concurrent readers.
//! * **PostgreSQL, columns changed** — rename swap with `DROP … CASCADE`, as
//!   dbt does: dependent views are dropped and get rebuilt later in the run.
//!
//! Seeds always use the content swap unless fully refreshed (dbt truncates and
//! reloads a seed table; see [`super::seed`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::adapter::{
    self, drop_relation_sql, get_columns, get_relation, literal, quote, rename_relation_sql,
    render, same_ident, same_type, with_suffix,
};
use super::contract::{self, Contract};
use super::external::ExternalModel;
use super::post_build::{self, Comments, Grants, Index};
use super::{ColumnMeta, Connection, Engine, Relation, RelationKind, WarehouseError};

/// Suffix of the relation a table (or a full-refresh incremental) is built
/// into before it is swapped in.
pub const TMP_SUFFIX: &str = "__sluice_tmp";
/// Suffix of the relation an incremental run stages its new rows in.
pub const INCREMENTAL_SUFFIX: &str = "__sluice_incr";

/// How a model is materialized (`materialized:` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
    /// PostgreSQL's materialized view (dbt-postgres; dbt-duckdb has none).
    MaterializedView,
    /// dbt-duckdb's: the rows written to a file, a view reading it.
    External,
}

impl FromStr for Materialization {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self, BuildError> {
        match s.to_ascii_lowercase().as_str() {
            "view" => Ok(Materialization::View),
            "table" => Ok(Materialization::Table),
            "incremental" => Ok(Materialization::Incremental),
            "ephemeral" => Ok(Materialization::Ephemeral),
            "materialized_view" => Ok(Materialization::MaterializedView),
            "external" => Ok(Materialization::External),
            other => Err(BuildError::Config(format!(
                "unknown materialization '{other}': expected one of view, table, incremental, \
                 ephemeral, materialized_view, external (DuckDB)"
            ))),
        }
    }
}

/// `incremental_strategy:` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrementalStrategy {
    Append,
    DeleteInsert,
    Merge,
    /// One batch of a microbatch model ([`crate::microbatch`]): its window
    /// is replaced (DuckDB: delete and insert on `event_time`;
    /// PostgreSQL: merge on the unique key, as dbt-postgres does).
    Microbatch,
}

impl IncrementalStrategy {
    /// The configured strategy, or dbt's default for both dbt-postgres and
    /// dbt-duckdb: `delete+insert` when a unique key is set, else `append`.
    pub fn resolve(configured: Option<&str>, unique_key: &[String]) -> Result<Self, BuildError> {
        match configured.map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(Self::default_for(unique_key)),
            Some(s) if s.is_empty() || s == "default" => Ok(Self::default_for(unique_key)),
            Some(s) => match s.as_str() {
                "append" => Ok(Self::Append),
                "delete+insert" => Ok(Self::DeleteInsert),
                "merge" => Ok(Self::Merge),
                "microbatch" => Ok(Self::Microbatch),
                other => Err(BuildError::Config(format!(
                    "invalid incremental strategy '{other}': expected one of 'append', \
                     'delete+insert', 'merge', 'microbatch'"
                ))),
            },
        }
    }

    fn default_for(unique_key: &[String]) -> Self {
        if unique_key.is_empty() {
            Self::Append
        } else {
            Self::DeleteInsert
        }
    }
}

/// `on_schema_change:` config for incremental models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    #[default]
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

impl FromStr for OnSchemaChange {
    type Err = BuildError;
    fn from_str(s: &str) -> Result<Self, BuildError> {
        match s.to_ascii_lowercase().as_str() {
            "ignore" => Ok(Self::Ignore),
            "fail" => Ok(Self::Fail),
            "append_new_columns" => Ok(Self::AppendNewColumns),
            "sync_all_columns" => Ok(Self::SyncAllColumns),
            other => Err(BuildError::Config(format!(
                "invalid on_schema_change '{other}': expected one of ignore, fail, \
                 append_new_columns, sync_all_columns"
            ))),
        }
    }
}

/// Everything needed to build one model.
#[derive(Debug, Clone)]
pub struct ModelBuild<'a> {
    pub relation: &'a Relation,
    pub materialized: Materialization,
    /// The compiled `SELECT` (a trailing `;` is tolerated).
    pub sql: &'a str,
    /// Column names or SQL expressions, inserted unquoted as dbt does.
    pub unique_key: Vec<String>,
    /// `append`, `delete+insert` or `merge`; `None` for the adapter default.
    pub incremental_strategy: Option<String>,
    pub on_schema_change: OnSchemaChange,
    pub full_refresh: bool,
    pub pre_hooks: &'a [String],
    pub post_hooks: &'a [String],
    /// The model's enforced contract, if any (see [`super::contract`]).
    pub contract: Option<&'a Contract>,
    /// Indexes to create on a table (PostgreSQL).
    pub indexes: &'a [Index],
    /// Descriptions to persist as comments (`persist_docs`).
    pub comments: Option<&'a Comments>,
    /// `incremental_predicates`: extra conditions on the rows a
    /// `delete+insert`, `merge` or microbatch replaces.
    pub incremental_predicates: Vec<String>,
    /// A microbatch batch: the `event_time` column and the window
    /// (start, end) this build replaces.
    pub batch: Option<(&'a str, String, String)>,
    /// `merge_update_columns` / `merge_exclude_columns`: which columns a
    /// `merge` updates on matched rows (all by default).
    pub merge_update_columns: Vec<String>,
    pub merge_exclude_columns: Vec<String>,
    /// An `external` model's file (DuckDB).
    pub external: Option<&'a ExternalModel>,
    /// `grants:` to apply once built (PostgreSQL).
    pub grants: &'a Grants,
}

/// What a build did, in the shape of dbt's adapter response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildOutcome {
    pub rows_affected: Option<u64>,
    /// e.g. `SELECT 1520`, `CREATE VIEW`, `INSERT 0 12`, `MERGE 3`.
    pub message: String,
}

impl BuildOutcome {
    fn new(rows_affected: Option<u64>, message: impl Into<String>) -> Self {
        BuildOutcome {
            rows_affected,
            message: message.into(),
        }
    }
}

/// Which hook list a failing hook came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPhase {
    Pre,
    Post,
}

impl fmt::Display for HookPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookPhase::Pre => "pre-hook",
            HookPhase::Post => "post-hook",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("{phase} #{number} failed: {source}")]
    Hook {
        phase: HookPhase,
        /// 1-based position in the hook list.
        number: usize,
        source: WarehouseError,
    },
    #[error("{0}")]
    SchemaChange(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Contract(String),
}

/// Build one model. See the module docs for the semantics of each
/// materialization.
pub fn build_model(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
) -> Result<BuildOutcome, BuildError> {
    match b.materialized {
        Materialization::Ephemeral => Ok(BuildOutcome::new(None, "EPHEMERAL")),
        Materialization::View => in_transaction(conn, |c| {
            with_hooks(c, engine, b, |c| build_view(c, engine, b.relation, b.sql))
        }),
        Materialization::Table => in_transaction(conn, |c| {
            with_hooks(c, engine, b, |c| {
                build_table(c, engine, b.relation, b.sql, b.contract)
            })
        }),
        Materialization::MaterializedView if engine == Engine::DuckDb => Err(BuildError::Config(
            "No materialization 'materialized_view' was found for adapter duckdb: DuckDB has no \
             materialized views (use `table`)"
                .into(),
        )),
        Materialization::MaterializedView => in_transaction(conn, |c| {
            with_hooks(c, engine, b, |c| build_materialized_view(c, engine, b))
        }),
        Materialization::External if engine == Engine::Postgres => Err(BuildError::Config(
            "No materialization 'external' was found for adapter postgres: it is dbt-duckdb's \
             (use `table`)"
                .into(),
        )),
        Materialization::External => {
            let Some(file) = b.external else {
                return Err(BuildError::Config(
                    "an external model without its file".into(),
                ));
            };
            in_transaction(conn, |c| {
                with_hooks(c, engine, b, |c| build_external(c, engine, b, file))
            })
        }
        Materialization::Incremental => {
            let strategy =
                IncrementalStrategy::resolve(b.incremental_strategy.as_deref(), &b.unique_key)?;
            in_transaction(conn, |c| {
                with_hooks(c, engine, b, |c| build_incremental(c, engine, b, strategy))
            })
        }
    }
}

/// An enforced contract's column check, before anything is built.
fn assert_contract(conn: &mut dyn Connection, b: &ModelBuild) -> Result<(), BuildError> {
    match b.contract {
        Some(c) => contract::assert_columns_equivalent(conn, clean_sql(b.sql), c)
            .map_err(BuildError::Contract),
        None => Ok(()),
    }
}

/// Run `f` between `BEGIN` and `COMMIT`; roll back if it (or the commit)
/// fails. The original error is kept when the rollback fails too.
pub fn in_transaction<T, E>(
    conn: &mut dyn Connection,
    f: impl FnOnce(&mut dyn Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<WarehouseError>,
{
    conn.execute("BEGIN")?;
    let result = f(conn).and_then(|value| {
        conn.execute("COMMIT")?;
        Ok(value)
    });
    if result.is_err() {
        // After a failed COMMIT the transaction is already gone on some
        // engines; a failing ROLLBACK then says nothing new.
        let _ = conn.execute("ROLLBACK");
    }
    result
}

/// Pre-hooks, an enforced contract's column check, the build, the table's
/// indexes, post-hooks, then the persisted docs: the order of dbt's
/// materializations.
fn with_hooks(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
    build: impl FnOnce(&mut dyn Connection) -> Result<BuildOutcome, BuildError>,
) -> Result<BuildOutcome, BuildError> {
    run_hooks(conn, HookPhase::Pre, b.pre_hooks)?;
    assert_contract(conn, b)?;
    let outcome = build(conn)?;
    let kind = match b.materialized {
        Materialization::View | Materialization::External => "view",
        Materialization::MaterializedView => "materialized view",
        _ => "table",
    };
    if kind != "view" {
        post_build::create_indexes(conn, engine, b.relation, b.indexes)?;
    }
    run_hooks(conn, HookPhase::Post, b.post_hooks)?;
    let no_comments = Comments::default();
    let comments = b.comments.unwrap_or(&no_comments);
    post_build::grants_and_docs(conn, engine, b.relation, kind, b.grants, comments)?;
    Ok(outcome)
}

pub(super) fn run_hooks(
    conn: &mut dyn Connection,
    phase: HookPhase,
    hooks: &[String],
) -> Result<(), BuildError> {
    for (i, hook) in hooks.iter().enumerate() {
        if hook.trim().is_empty() {
            continue;
        }
        conn.execute(hook).map_err(|source| BuildError::Hook {
            phase,
            number: i + 1,
            source,
        })?;
    }
    Ok(())
}

/// The compiled SQL without trailing whitespace and semicolons, so it can be
/// wrapped in `( … )`.
fn clean_sql(sql: &str) -> &str {
    sql.trim_end_matches(|c: char| c.is_whitespace() || c == ';')
}

/// `CREATE TABLE … AS ( … )`; returns the rows written.
fn create_table_as(
    conn: &mut dyn Connection,
    relation: &Relation,
    sql: &str,
) -> Result<u64, WarehouseError> {
    conn.execute(&format!(
        "CREATE TABLE {} AS (\n{}\n)",
        render(relation),
        clean_sql(sql)
    ))
}

fn build_view(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    sql: &str,
) -> Result<BuildOutcome, BuildError> {
    let existing = get_relation(conn, engine, relation)?;
    if existing == Some(RelationKind::Table) {
        conn.execute(&drop_relation_sql(engine, relation, RelationKind::Table))?;
    }
    let replace = format!(
        "CREATE OR REPLACE VIEW {} AS (\n{}\n)",
        render(relation),
        clean_sql(sql)
    );
    match (engine, existing) {
        (Engine::Postgres, Some(RelationKind::View)) => replace_pg_view(conn, relation, &replace)?,
        _ => {
            conn.execute(&replace)?;
        }
    }
    Ok(BuildOutcome::new(None, "CREATE VIEW"))
}

/// PostgreSQL's `CREATE OR REPLACE VIEW` refuses to drop or retype columns.
/// Try it first (it keeps dependent views); when it fails, drop the view
/// with `CASCADE` and create it afresh, as dbt does.
fn replace_pg_view(
    conn: &mut dyn Connection,
    relation: &Relation,
    replace: &str,
) -> Result<(), BuildError> {
    conn.execute("SAVEPOINT sluice_replace_view")?;
    match conn.execute(replace) {
        Ok(_) => {
            conn.execute("RELEASE SAVEPOINT sluice_replace_view")?;
        }
        Err(_) => {
            conn.execute("ROLLBACK TO SAVEPOINT sluice_replace_view")?;
            conn.execute(&drop_relation_sql(
                Engine::Postgres,
                relation,
                RelationKind::View,
            ))?;
            conn.execute(&replace.replacen("CREATE OR REPLACE VIEW", "CREATE VIEW", 1))?;
        }
    }
    Ok(())
}

fn build_table(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    sql: &str,
    contract: Option<&Contract>,
) -> Result<BuildOutcome, BuildError> {
    let tmp = with_suffix(relation, TMP_SUFFIX);
    conn.execute(&drop_relation_sql(engine, &tmp, RelationKind::Table))?;
    let rows = match contract {
        Some(c) => contract::create_table(conn, &tmp, clean_sql(sql), c)?,
        None => create_table_as(conn, &tmp, sql)?,
    };
    let method = match get_relation(conn, engine, relation)? {
        Some(RelationKind::Table) => {
            let same = same_columns(
                engine,
                &get_columns(conn, engine, &tmp)?,
                &get_columns(conn, engine, relation)?,
            );
            model_swap_method(engine, same)
        }
        _ => SwapMethod::Rename,
    };
    swap_in(conn, engine, &tmp, relation, method)?;
    Ok(BuildOutcome::new(Some(rows), format!("SELECT {rows}")))
}

/// A PostgreSQL materialized view, as dbt-postgres builds one: created when
/// missing (replacing a table or view of that name), refreshed when it
/// exists (its SQL is only replaced by `--full-refresh`, as in dbt, whose
/// `on_configuration_change` compares indexes only), recreated on a full
/// refresh.
fn build_materialized_view(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
) -> Result<BuildOutcome, BuildError> {
    let relation = b.relation;
    let exists = !conn
        .query(&format!(
            "SELECT 1 FROM pg_catalog.pg_matviews WHERE schemaname = {} AND matviewname = {}",
            adapter::literal(&relation.schema),
            adapter::literal(&relation.identifier)
        ))?
        .rows
        .is_empty();
    if exists && !b.full_refresh {
        conn.execute(&format!("REFRESH MATERIALIZED VIEW {}", render(relation)))?;
        return Ok(BuildOutcome::new(None, "REFRESH MATERIALIZED VIEW"));
    }
    if exists {
        conn.execute(&format!(
            "DROP MATERIALIZED VIEW IF EXISTS {} CASCADE",
            render(relation)
        ))?;
    } else if let Some(kind) = get_relation(conn, engine, relation)? {
        conn.execute(&drop_relation_sql(engine, relation, kind))?;
    }
    conn.execute(&format!(
        "CREATE MATERIALIZED VIEW {} AS (\n{}\n)",
        render(relation),
        clean_sql(b.sql)
    ))?;
    Ok(BuildOutcome::new(None, "CREATE MATERIALIZED VIEW"))
}

/// dbt-duckdb's `external` materialization: the rows built into a
/// scratch table, written to the file with `COPY … TO` (a model without
/// rows writes one row of NULLs, so the file has its columns, and the view
/// filters it out), then a view reading the file replaces whatever had the
/// model's name. The file is written before the view: a failure after it
/// leaves the new file beside the old relation, as in dbt-duckdb.
fn build_external(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
    file: &ExternalModel,
) -> Result<BuildOutcome, BuildError> {
    let tmp = with_suffix(b.relation, "__dbt_tmp");
    conn.execute(&drop_relation_sql(engine, &tmp, RelationKind::Table))?;
    create_table_as(conn, &tmp, b.sql)?;
    let count = conn.query(&format!("select count(*) from {}", render(&tmp)))?;
    let rows = count
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let empty_columns: Vec<String> = if rows == 0 {
        let columns = get_columns(conn, engine, &tmp)?;
        let nulls = vec!["NULL"; columns.len()].join(", ");
        conn.execute(&format!("insert into {} values ({nulls})", render(&tmp)))?;
        columns.into_iter().map(|c| c.name).collect()
    } else {
        Vec::new()
    };
    // A local file's directory is made, so a fresh `external_root` works.
    if let Some(dir) = file.local_directory() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BuildError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    conn.execute(&format!(
        "copy {} to '{}' ({})",
        render(&tmp),
        file.location.replace('\'', "''"),
        file.write_options
    ))?;
    if let Some(kind) = get_relation(conn, engine, b.relation)? {
        conn.execute(&drop_relation_sql(engine, b.relation, kind))?;
    }
    conn.execute(&format!(
        "create or replace view {} as (\n{}\n)",
        render(b.relation),
        file.view_select(&empty_columns)
    ))?;
    conn.execute(&drop_relation_sql(engine, &tmp, RelationKind::Table))?;
    Ok(BuildOutcome::new(Some(rows), format!("COPY {rows}")))
}

/// How a freshly built table replaces the existing one. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapMethod {
    /// Drop whatever has the target name, rename the new table into place.
    Rename,
    /// Keep the existing table; replace its rows. Requires identical columns.
    Contents,
}

/// The swap a model table uses: content swap on PostgreSQL when the columns
/// are unchanged (dependent views are bound to the table's OID), rename swap
/// otherwise and always on DuckDB (views are bound by name).
pub fn model_swap_method(engine: Engine, same_columns: bool) -> SwapMethod {
    match engine {
        Engine::Postgres if same_columns => SwapMethod::Contents,
        _ => SwapMethod::Rename,
    }
}

/// Replace `target` with the table `tmp` (same schema), which is gone
/// afterwards. Runs inside the caller's transaction.
pub fn swap_in(
    conn: &mut dyn Connection,
    engine: Engine,
    tmp: &Relation,
    target: &Relation,
    method: SwapMethod,
) -> Result<(), WarehouseError> {
    match method {
        SwapMethod::Contents => {
            conn.execute(&format!("DELETE FROM {}", render(target)))?;
            conn.execute(&format!(
                "INSERT INTO {} SELECT * FROM {}",
                render(target),
                render(tmp)
            ))?;
            conn.execute(&drop_relation_sql(engine, tmp, RelationKind::Table))?;
        }
        SwapMethod::Rename => {
            adapter::drop_if_exists(conn, engine, target)?;
            conn.execute(&rename_relation_sql(
                tmp,
                RelationKind::Table,
                &target.identifier,
            ))?;
        }
    }
    Ok(())
}

/// Same column names (per the engine's identifier rules) and types, in the
/// same order.
pub fn same_columns(engine: Engine, a: &[ColumnMeta], b: &[ColumnMeta]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            same_ident(engine, &x.name, &y.name) && same_type(&x.data_type, &y.data_type)
        })
}

fn build_incremental(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
    strategy: IncrementalStrategy,
) -> Result<BuildOutcome, BuildError> {
    let existing = get_relation(conn, engine, b.relation)?;
    if b.full_refresh || existing != Some(RelationKind::Table) {
        return build_table(conn, engine, b.relation, b.sql, b.contract);
    }
    let staged = with_suffix(b.relation, INCREMENTAL_SUFFIX);
    conn.execute(&drop_relation_sql(engine, &staged, RelationKind::Table))?;
    create_table_as(conn, &staged, b.sql)?;
    let source = get_columns(conn, engine, &staged)?;
    let target = get_columns(conn, engine, b.relation)?;
    let dest = process_schema_changes(conn, engine, b, &source, &target)?;
    let outcome = apply_strategy(conn, engine, strategy, b, &staged, &dest)?;
    conn.execute(&drop_relation_sql(engine, &staged, RelationKind::Table))?;
    Ok(outcome)
}

/// Column differences between an incremental model's new rows (source) and
/// its existing table (target).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// In the source, not in the target.
    pub added: Vec<ColumnMeta>,
    /// In the target, not in the source.
    pub removed: Vec<ColumnMeta>,
    /// In both with different types: (name, target type, source type).
    pub type_changes: Vec<(String, String, String)>,
}

impl SchemaDiff {
    pub fn compute(engine: Engine, source: &[ColumnMeta], target: &[ColumnMeta]) -> SchemaDiff {
        let find = |cols: &[ColumnMeta], name: &str| -> Option<ColumnMeta> {
            cols.iter()
                .find(|c| same_ident(engine, &c.name, name))
                .cloned()
        };
        let added = source
            .iter()
            .filter(|c| find(target, &c.name).is_none())
            .cloned()
            .collect();
        let removed = target
            .iter()
            .filter(|c| find(source, &c.name).is_none())
            .cloned()
            .collect();
        let type_changes = source
            .iter()
            .filter_map(|s| {
                let t = find(target, &s.name)?;
                (!same_type(&s.data_type, &t.data_type))
                    .then(|| (t.name.clone(), t.data_type.clone(), s.data_type.clone()))
            })
            .collect();
        SchemaDiff {
            added,
            removed,
            type_changes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.type_changes.is_empty()
    }

    /// One line per kind of difference, for error messages.
    pub fn describe(&self) -> String {
        let cols = |v: &[ColumnMeta]| {
            v.iter()
                .map(|c| format!("{} {}", c.name, c.data_type))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = Vec::new();
        if !self.added.is_empty() {
            lines.push(format!(
                "  columns added in the model: {}",
                cols(&self.added)
            ));
        }
        if !self.removed.is_empty() {
            lines.push(format!(
                "  columns missing from the model: {}",
                cols(&self.removed)
            ));
        }
        if !self.type_changes.is_empty() {
            let changes = self
                .type_changes
                .iter()
                .map(|(n, from, to)| format!("{n} {from} -> {to}"))
                .collect::<Vec<_>>()
                .join(", ");
            lines.push(format!("  column types changed: {changes}"));
        }
        lines.join("\n")
    }
}

/// Apply `on_schema_change` and return the columns to insert (dbt's
/// `dest_columns`): the target's columns when nothing changed or changes are
/// ignored, the model's columns once the target has been adapted.
fn process_schema_changes(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &ModelBuild,
    source: &[ColumnMeta],
    target: &[ColumnMeta],
) -> Result<Vec<ColumnMeta>, BuildError> {
    let diff = SchemaDiff::compute(engine, source, target);
    if diff.is_empty() {
        return Ok(target.to_vec());
    }
    let table = render(b.relation);
    match b.on_schema_change {
        OnSchemaChange::Ignore => Ok(target.to_vec()),
        OnSchemaChange::Fail => Err(BuildError::SchemaChange(format!(
            "the columns of incremental model {table} no longer match its table \
             (on_schema_change: fail):\n{}\nrun with --full-refresh to rebuild the table, or set \
             on_schema_change to append_new_columns or sync_all_columns",
            diff.describe()
        ))),
        OnSchemaChange::AppendNewColumns => {
            add_columns(conn, &table, &diff.added)?;
            Ok(source.to_vec())
        }
        OnSchemaChange::SyncAllColumns => {
            add_columns(conn, &table, &diff.added)?;
            for c in &diff.removed {
                conn.execute(&format!(
                    "ALTER TABLE {table} DROP COLUMN {}",
                    quote(&c.name)
                ))?;
            }
            for (name, _, to) in &diff.type_changes {
                let col = quote(name);
                conn.execute(&format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} TYPE {to} USING CAST({col} AS {to})"
                ))?;
            }
            Ok(source.to_vec())
        }
    }
}

fn add_columns(
    conn: &mut dyn Connection,
    table: &str,
    cols: &[ColumnMeta],
) -> Result<(), WarehouseError> {
    for c in cols {
        conn.execute(&format!(
            "ALTER TABLE {table} ADD COLUMN {} {}",
            quote(&c.name),
            c.data_type
        ))?;
    }
    Ok(())
}

// dbt's aliases, which `incremental_predicates` refer to.
const DEST: &str = "DBT_INTERNAL_DEST";
const SRC: &str = "DBT_INTERNAL_SOURCE";

fn apply_strategy(
    conn: &mut dyn Connection,
    engine: Engine,
    strategy: IncrementalStrategy,
    b: &ModelBuild,
    staged: &Relation,
    dest: &[ColumnMeta],
) -> Result<BuildOutcome, BuildError> {
    let keyed = !b.unique_key.is_empty();
    let predicates = &b.incremental_predicates;
    match strategy {
        IncrementalStrategy::Microbatch => {
            let Some((column, start, end)) = &b.batch else {
                return Err(BuildError::Config(
                    "the microbatch strategy builds in batches: `event_time`, `batch_size` \
                     and `begin` configure them"
                        .into(),
                ));
            };
            match engine {
                Engine::Postgres if keyed => merge(conn, b, staged, dest),
                Engine::Postgres => Err(BuildError::Config(
                    "dbt-postgres 'microbatch' requires a `unique_key` config".into(),
                )),
                Engine::DuckDb if keyed => Err(BuildError::Config(
                    "microbatch incremental strategy does not support 'unique_key'. Microbatch \
                     runs delete+insert per batch based on 'event_time' and does not do \
                     key-based upserts. Remove 'unique_key' or use incremental_strategy='merge'."
                        .into(),
                )),
                Engine::DuckDb => {
                    let window = format!(
                        "{column} >= {} and {column} < {}",
                        literal(start),
                        literal(end)
                    );
                    let mut delete = format!("DELETE FROM {} WHERE {window}", render(b.relation));
                    for p in predicates {
                        delete.push_str(&format!(" AND ({p})"));
                    }
                    conn.execute(&delete)?;
                    let cols = column_list(dest, None);
                    let n = conn.execute(&format!(
                        "INSERT INTO {} ({cols}) SELECT {cols} FROM {} WHERE {window}",
                        render(b.relation),
                        render(staged)
                    ))?;
                    Ok(BuildOutcome::new(Some(n), format!("INSERT 0 {n}")))
                }
            }
        }
        IncrementalStrategy::Merge if keyed => merge(conn, b, staged, dest),
        IncrementalStrategy::DeleteInsert if keyed => {
            conn.execute(&delete_sql(b.relation, staged, &b.unique_key, predicates))?;
            insert_rows(conn, b.relation, staged, dest)
        }
        _ => insert_rows(conn, b.relation, staged, dest),
    }
}

fn merge(
    conn: &mut dyn Connection,
    b: &ModelBuild,
    staged: &Relation,
    dest: &[ColumnMeta],
) -> Result<BuildOutcome, BuildError> {
    let updates = merge_update_set(
        dest,
        &b.unique_key,
        &b.merge_update_columns,
        &b.merge_exclude_columns,
    )?;
    let sql = merge_sql(
        b.relation,
        staged,
        &b.unique_key,
        dest,
        &updates,
        &b.incremental_predicates,
    );
    let n = conn.execute(&sql)?;
    Ok(BuildOutcome::new(Some(n), format!("MERGE {n}")))
}

/// `(p1) AND (p2)…` appended to a condition.
fn and_predicates(condition: String, predicates: &[String]) -> String {
    predicates
        .iter()
        .fold(condition, |acc, p| format!("{acc} AND ({p})"))
}

fn column_list(cols: &[ColumnMeta], qualifier: Option<&str>) -> String {
    cols.iter()
        .map(|c| match qualifier {
            Some(q) => format!("{q}.{}", quote(&c.name)),
            None => quote(&c.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_rows(
    conn: &mut dyn Connection,
    target: &Relation,
    staged: &Relation,
    dest: &[ColumnMeta],
) -> Result<BuildOutcome, BuildError> {
    let cols = column_list(dest, None);
    let n = conn.execute(&format!(
        "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
        render(target),
        render(staged)
    ))?;
    Ok(BuildOutcome::new(Some(n), format!("INSERT 0 {n}")))
}

/// `src.k1 = dest.k1 AND …`; keys are used verbatim (dbt does not quote them).
fn key_match(unique_key: &[String]) -> String {
    unique_key
        .iter()
        .map(|k| format!("{SRC}.{k} = {DEST}.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn delete_sql(
    target: &Relation,
    staged: &Relation,
    unique_key: &[String],
    predicates: &[String],
) -> String {
    format!(
        "DELETE FROM {} AS {DEST} USING {} AS {SRC} WHERE {}",
        render(target),
        render(staged),
        and_predicates(format!("({})", key_match(unique_key)), predicates)
    )
}

/// The columns a merge updates on matched rows, as dbt's
/// `get_merge_update_columns` chooses them: `merge_update_columns` as
/// written, or every column but `merge_exclude_columns` (and the keys), or
/// every column but the keys.
fn merge_update_set(
    dest: &[ColumnMeta],
    unique_key: &[String],
    update: &[String],
    exclude: &[String],
) -> Result<Vec<String>, BuildError> {
    if !update.is_empty() && !exclude.is_empty() {
        return Err(BuildError::Config(
            "Model cannot specify merge_update_columns and merge_exclude_columns. Please update \
             model to use only one config"
                .into(),
        ));
    }
    if !update.is_empty() {
        return Ok(update.to_vec());
    }
    let bare = |s: &str| s.trim_matches('"').to_ascii_lowercase();
    Ok(dest
        .iter()
        .filter(|c| !unique_key.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .filter(|c| {
            !exclude
                .iter()
                .any(|e| bare(e) == c.name.to_ascii_lowercase())
        })
        .map(|c| quote(&c.name))
        .collect())
}

fn merge_sql(
    target: &Relation,
    staged: &Relation,
    unique_key: &[String],
    dest: &[ColumnMeta],
    update_columns: &[String],
    predicates: &[String],
) -> String {
    let updates: Vec<String> = update_columns
        .iter()
        .map(|c| format!("{c} = {SRC}.{c}"))
        .collect();
    let when_matched = if updates.is_empty() {
        String::new()
    } else {
        format!("WHEN MATCHED THEN UPDATE SET {}\n", updates.join(", "))
    };
    format!(
        "MERGE INTO {} AS {DEST}\nUSING {} AS {SRC}\nON {}\n{when_matched}\
         WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
        render(target),
        render(staged),
        and_predicates(format!("({})", key_match(unique_key)), predicates),
        column_list(dest, None),
        column_list(dest, Some(SRC)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> ColumnMeta {
        ColumnMeta::new(name, t)
    }

    #[test]
    fn merge_updates_what_the_config_names() {
        let dest = [col("id", "int"), col("a", "text"), col("b", "text")];
        let key = ["id".to_string()];
        let set = |u: &[&str], e: &[&str]| {
            let u: Vec<String> = u.iter().map(|s| s.to_string()).collect();
            let e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
            merge_update_set(&dest, &key, &u, &e)
        };
        assert_eq!(set(&[], &[]).unwrap(), ["\"a\"", "\"b\""]);
        assert_eq!(set(&["b"], &[]).unwrap(), ["b"]);
        assert_eq!(set(&[], &["A"]).unwrap(), ["\"b\""]);
        assert!(set(&["a"], &["b"]).is_err());
        let rel = Relation {
            database: None,
            schema: "s".into(),
            identifier: "t".into(),
        };
        let sql = merge_sql(&rel, &rel, &key, &dest, &["b".into()], &[]);
        assert!(
            sql.contains("WHEN MATCHED THEN UPDATE SET b = DBT_INTERNAL_SOURCE.b\n"),
            "{sql}"
        );
    }

    #[test]
    fn default_strategy_follows_unique_key() {
        assert_eq!(
            IncrementalStrategy::resolve(None, &[]).ok(),
            Some(IncrementalStrategy::Append)
        );
        assert_eq!(
            IncrementalStrategy::resolve(None, &["id".into()]).ok(),
            Some(IncrementalStrategy::DeleteInsert)
        );
        assert!(IncrementalStrategy::resolve(Some("insert_overwrite"), &[]).is_err());
    }

    #[test]
    fn schema_diff_lists_every_kind_of_change() {
        let source = [
            col("id", "INTEGER"),
            col("b", "VARCHAR"),
            col("new", "DATE"),
        ];
        let target = [col("ID", "integer"), col("b", "BIGINT"), col("old", "DATE")];
        let diff = SchemaDiff::compute(Engine::DuckDb, &source, &target);
        assert_eq!(diff.added, vec![col("new", "DATE")]);
        assert_eq!(diff.removed, vec![col("old", "DATE")]);
        assert_eq!(
            diff.type_changes,
            vec![("b".into(), "BIGINT".into(), "VARCHAR".into())]
        );
        let text = diff.describe();
        assert!(
            text.contains("new DATE")
                && text.contains("old DATE")
                && text.contains("b BIGINT -> VARCHAR")
        );
    }

    #[test]
    fn swap_method_is_per_engine() {
        assert_eq!(
            model_swap_method(Engine::Postgres, true),
            SwapMethod::Contents
        );
        assert_eq!(
            model_swap_method(Engine::Postgres, false),
            SwapMethod::Rename
        );
        assert_eq!(model_swap_method(Engine::DuckDb, true), SwapMethod::Rename);
    }

    #[test]
    fn trailing_semicolons_are_dropped() {
        assert_eq!(clean_sql("select 1;\n  ; "), "select 1");
    }
}
