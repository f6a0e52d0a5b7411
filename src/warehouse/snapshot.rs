//! Snapshots: type-2 slowly changing dimension tables, built the way dbt's
//! global-project `snapshot` materialization builds them (dbt-adapters'
//! `snapshots/*.sql`, with dbt-postgres' and dbt-duckdb's merge).
//!
//! * The first build creates the table from the snapshot's query plus four
//!   columns: `dbt_scd_id` (a hash of the unique key and the change time),
//!   `dbt_updated_at`, `dbt_valid_from` and `dbt_valid_to` (null, or
//!   `dbt_valid_to_current`, for the current version of a row).
//! * Every later build stages the changes — new keys and changed rows
//!   (`insert`), the versions they close (`update`), and with
//!   `hard_deletes: invalidate | new_record` the keys gone from the source
//!   (`delete`) — adds columns the query gained, closes the old versions
//!   (`UPDATE … SET dbt_valid_to`) and inserts the new ones.
//!
//! Strategies: `timestamp` (a row changed when its `updated_at` is later than
//! the current version's `dbt_valid_from`) and `check` (`check_cols`, a list
//! or `all`, differ, nulls included). Everything runs in one transaction with
//! the hooks, so a failed snapshot leaves the table as it was.
//!
//! The SQL text is built by pure functions; [`build_snapshot`] runs it.

use serde_json::Value;

use super::adapter::{self, drop_relation_sql, get_columns, get_relation, quote, render};
use super::materialize::{in_transaction, run_hooks, BuildError, BuildOutcome, HookPhase};
use super::{ColumnMeta, Connection, Engine, Relation, RelationKind};
use crate::project::node::Config;

/// Suffixes of the relations a snapshot stages its source rows and its
/// changes in (dropped before the transaction commits).
const SOURCE_SUFFIX: &str = "__sluice_snap_src";
const STAGING_SUFFIX: &str = "__sluice_snap_stg";

/// How a changed row is recognised (`strategy:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// `updated_at:` is the change time.
    Timestamp { updated_at: String },
    /// `check_cols:` are compared; the change time is `updated_at:` if set,
    /// else the snapshot's run time.
    Check {
        cols: CheckCols,
        updated_at: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckCols {
    All,
    List(Vec<String>),
}

/// What happens to rows whose key left the source (`hard_deletes:`, or the
/// older `invalidate_hard_deletes: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardDeletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// The names of the columns a snapshot adds (`snapshot_meta_column_names:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaColumns {
    pub valid_from: String,
    pub valid_to: String,
    pub scd_id: String,
    pub updated_at: String,
    pub is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> Self {
        MetaColumns {
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            is_deleted: "dbt_is_deleted".into(),
        }
    }
}

/// A snapshot's configuration, read from its `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    pub strategy: Strategy,
    /// One key expression, or several (`unique_key: [a, b]`).
    pub unique_key: Vec<String>,
    pub key_is_list: bool,
    pub hard_deletes: HardDeletes,
    /// `dbt_valid_to_current:`, an SQL expression for current rows' `dbt_valid_to`.
    pub valid_to_current: Option<String>,
    pub columns: MetaColumns,
}

fn config_error(msg: impl Into<String>) -> BuildError {
    BuildError::Config(msg.into())
}

impl SnapshotConfig {
    /// Read and check the snapshot settings, with dbt's messages' substance.
    pub fn from_config(config: &Config) -> Result<SnapshotConfig, BuildError> {
        let text = |k: &str| {
            config
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (unique_key, key_is_list) = match config.get("unique_key") {
            Some(Value::String(s)) if !s.trim().is_empty() => (vec![s.trim().to_string()], false),
            Some(Value::Array(a)) if !a.is_empty() => (
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                true,
            ),
            _ => {
                return Err(config_error(
                    "a snapshot needs `unique_key` (a column, an expression or a list of them)",
                ))
            }
        };
        let strategy = match text("strategy").as_deref() {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: text("updated_at").ok_or_else(|| {
                    config_error("the `timestamp` snapshot strategy needs `updated_at`")
                })?,
            },
            Some("check") => {
                let cols = match config.get("check_cols") {
                    Some(Value::String(s)) if s.trim() == "all" => CheckCols::All,
                    Some(Value::Array(a)) if !a.is_empty() => CheckCols::List(
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                    ),
                    other => {
                        return Err(config_error(format!(
                            "Invalid value for 'check_cols': {}; use 'all' or a list of columns",
                            other.map_or("none".to_string(), Value::to_string)
                        )))
                    }
                };
                Strategy::Check {
                    cols,
                    updated_at: text("updated_at"),
                }
            }
            Some(other) => {
                return Err(config_error(format!(
                    "unknown snapshot strategy '{other}': expected 'timestamp' or 'check'"
                )))
            }
            None => {
                return Err(config_error(
                    "a snapshot needs `strategy` ('timestamp' or 'check')",
                ))
            }
        };
        let hard_deletes = match text("hard_deletes").map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "ignore" => HardDeletes::Ignore,
            Some(s) if s == "invalidate" => HardDeletes::Invalidate,
            Some(s) if s == "new_record" => HardDeletes::NewRecord,
            Some(other) => {
                return Err(config_error(format!(
                "invalid hard_deletes '{other}': expected 'ignore', 'invalidate' or 'new_record'"
            )))
            }
            None if config
                .get("invalidate_hard_deletes")
                .and_then(Value::as_bool)
                == Some(true) =>
            {
                HardDeletes::Invalidate
            }
            None => HardDeletes::Ignore,
        };
        let mut columns = MetaColumns::default();
        if let Some(names) = config
            .get("snapshot_meta_column_names")
            .and_then(Value::as_object)
        {
            for (k, v) in names {
                let Some(v) = v.as_str().filter(|v| !v.trim().is_empty()) else {
                    continue;
                };
                let slot = match k.as_str() {
                    "dbt_valid_from" => &mut columns.valid_from,
                    "dbt_valid_to" => &mut columns.valid_to,
                    "dbt_scd_id" => &mut columns.scd_id,
                    "dbt_updated_at" => &mut columns.updated_at,
                    "dbt_is_deleted" => &mut columns.is_deleted,
                    other => {
                        return Err(config_error(format!(
                            "unknown key '{other}' in snapshot_meta_column_names: expected \
                             dbt_valid_from, dbt_valid_to, dbt_scd_id, dbt_updated_at or dbt_is_deleted"
                        )))
                    }
                };
                *slot = v.trim().to_string();
            }
        }
        Ok(SnapshotConfig {
            strategy,
            unique_key,
            key_is_list,
            hard_deletes,
            valid_to_current: text("dbt_valid_to_current"),
            columns,
        })
    }
}

/// The SQL of one snapshot build, for one engine. Pure: no connection.
pub struct SnapshotSql<'a> {
    pub cfg: &'a SnapshotConfig,
    pub engine: Engine,
}

impl SnapshotSql<'_> {
    /// dbt's `snapshot_get_time()`: the run time as a timestamp without zone.
    pub fn now(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => "now()::timestamp without time zone",
            Engine::DuckDb => "now()::timestamp",
        }
    }

    /// The change time of a row: `updated_at`, or the run time for `check`
    /// without one.
    pub fn updated_at(&self) -> String {
        match &self.cfg.strategy {
            Strategy::Timestamp { updated_at } => updated_at.clone(),
            Strategy::Check {
                updated_at: Some(u),
                ..
            } => u.clone(),
            Strategy::Check {
                updated_at: None, ..
            } => self.now().to_string(),
        }
    }

    /// dbt's `snapshot_hash_arguments`: md5 of the arguments as text, `|`-joined.
    fn hash(args: &[String]) -> String {
        let parts: Vec<String> = args
            .iter()
            .map(|a| format!("coalesce(cast({a} as varchar ), '')"))
            .collect();
        format!("md5({})", parts.join(" || '|' || "))
    }

    /// `dbt_scd_id`: the unique key(s) and the change time.
    pub fn scd_id(&self) -> String {
        let mut args = self.cfg.unique_key.clone();
        args.push(self.updated_at());
        Self::hash(&args)
    }

    /// `dbt_valid_to` of a current row, typed like the change time.
    fn valid_to_current(&self) -> String {
        let u = self.updated_at();
        format!(
            "coalesce(nullif({u}, {u}), {}) as {}",
            self.cfg.valid_to_current.as_deref().unwrap_or("null"),
            self.cfg.columns.valid_to
        )
    }

    /// The first build: the query's rows, each the current version.
    pub fn build_table(&self, sql: &str) -> String {
        let c = &self.cfg.columns;
        let deleted = if self.cfg.hard_deletes == HardDeletes::NewRecord {
            format!(",\n    'False' as {}", c.is_deleted)
        } else {
            String::new()
        };
        format!(
            "select *,\n    {scd} as {scd_col},\n    {u} as {upd},\n    {u} as {from},\n    {to}{deleted}\nfrom (\n{sql}\n) sbq",
            scd = self.scd_id(),
            scd_col = c.scd_id,
            u = self.updated_at(),
            upd = c.updated_at,
            from = c.valid_from,
            to = self.valid_to_current(),
        )
    }

    /// `a as dbt_unique_key` or `a as dbt_unique_key_1, b as dbt_unique_key_2`.
    fn key_fields(&self) -> String {
        if self.cfg.key_is_list {
            self.cfg
                .unique_key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("{} as dbt_unique_key", self.cfg.unique_key[0])
        }
    }

    fn key_join(&self, left: &str, right: &str) -> String {
        if self.cfg.key_is_list {
            (1..=self.cfg.unique_key.len())
                .map(|i| {
                    let (a, b) = (
                        format!("{left}.dbt_unique_key_{i}"),
                        format!("{right}.dbt_unique_key_{i}"),
                    );
                    format!("({a} = {b} or ({a} is null and {b} is null))")
                })
                .collect::<Vec<_>>()
                .join(" and ")
        } else {
            format!("{left}.dbt_unique_key = {right}.dbt_unique_key")
        }
    }

    fn key_is_null(&self, rel: &str) -> String {
        if self.cfg.key_is_list {
            format!("{rel}.dbt_unique_key_1 is null")
        } else {
            format!("{rel}.dbt_unique_key is null")
        }
    }

    fn key_is_not_null(&self, rel: &str) -> String {
        if self.cfg.key_is_list {
            format!("{rel}.dbt_unique_key_1 is not null")
        } else {
            format!("{rel}.dbt_unique_key is not null")
        }
    }

    /// The condition a row of the current version is "current" by.
    fn is_current(&self, rel: &str) -> String {
        let to = format!("{rel}{}", self.cfg.columns.valid_to);
        match &self.cfg.valid_to_current {
            Some(cur) => format!("({to} = {cur} or {to} is null)"),
            None => format!("{to} is null"),
        }
    }

    /// The strategy's "this row changed" test between the current version
    /// (`snapshotted_data`) and the source row (`source_data`). `check_cols`
    /// holds the columns to compare for `check` (already narrowed to the
    /// ones the table has), `column_added` whether the query gained columns.
    pub fn row_changed(&self, check_cols: &[String], column_added: bool) -> String {
        match &self.cfg.strategy {
            Strategy::Timestamp { updated_at } => format!(
                "(snapshotted_data.{} < source_data.{updated_at})",
                self.cfg.columns.valid_from
            ),
            Strategy::Check { .. } if column_added => "(TRUE)".to_string(),
            Strategy::Check { .. } => {
                let tests: Vec<String> = check_cols
                    .iter()
                    .map(|col| {
                        let (s, n) = (
                            format!("snapshotted_data.{col}"),
                            format!("source_data.{col}"),
                        );
                        format!(
                            "{s} != {n} or (({s} is null) and not ({n} is null)) or ((not {s} is null) and ({n} is null))"
                        )
                    })
                    .collect();
                if tests.is_empty() {
                    "(FALSE)".to_string()
                } else {
                    format!("({})", tests.join(" or "))
                }
            }
        }
    }

    /// dbt's `snapshot_staging_table`: the changes between `source` (the
    /// snapshot query's rows) and `target`, one `dbt_change_type` each.
    /// `source_cols` are the query's columns and `target_cols` the table's
    /// (used by `hard_deletes: new_record`).
    pub fn staging(
        &self,
        source: &str,
        target: &str,
        row_changed: &str,
        source_cols: &[String],
        target_cols: &[String],
    ) -> String {
        let c = &self.cfg.columns;
        let u = self.updated_at();
        let now = self.now();
        let hd = self.cfg.hard_deletes;
        let new_record = hd == HardDeletes::NewRecord;
        let deletes_tracked = hd != HardDeletes::Ignore;
        let deleted_again = if new_record {
            format!(" or snapshotted_data.{} = 'True'", c.is_deleted)
        } else {
            String::new()
        };
        let mut q = format!(
            "with snapshot_query as (\n    select * from {source}\n),\n\
             snapshotted_data as (\n    select *, {keys}\n    from {target}\n    where {current}\n),\n\
             insertions_source_data as (\n    select *, {keys},\n        {u} as {upd},\n        {u} as {from},\n        {to_current},\n        {scd} as {scd_col}\n    from snapshot_query\n),\n\
             updates_source_data as (\n    select *, {keys},\n        {u} as {upd},\n        {u} as {from},\n        {u} as {to}\n    from snapshot_query\n),\n",
            keys = self.key_fields(),
            current = self.is_current(""),
            upd = c.updated_at,
            from = c.valid_from,
            to = c.valid_to,
            to_current = self.valid_to_current(),
            scd = self.scd_id(),
            scd_col = c.scd_id,
        );
        if deletes_tracked {
            q.push_str(&format!(
                "deletes_source_data as (\n    select *, {}\n    from snapshot_query\n),\n",
                self.key_fields()
            ));
        }
        let is_deleted_insert = if new_record {
            format!(", 'False' as {}", c.is_deleted)
        } else {
            String::new()
        };
        let is_deleted_carry = if new_record {
            format!(", snapshotted_data.{}", c.is_deleted)
        } else {
            String::new()
        };
        q.push_str(&format!(
            "insertions as (\n    select 'insert' as dbt_change_type, source_data.*{is_deleted_insert}\n    from insertions_source_data as source_data\n    left outer join snapshotted_data\n        on {join}\n    where {snap_null}\n        or ({snap_not_null} and ({row_changed}{deleted_again}))\n),\n\
             updates as (\n    select 'update' as dbt_change_type, source_data.*, snapshotted_data.{scd}{is_deleted_carry}\n    from updates_source_data as source_data\n    join snapshotted_data\n        on {join}\n    where ({row_changed}{deleted_again})\n)",
            join = self.key_join("snapshotted_data", "source_data"),
            snap_null = self.key_is_null("snapshotted_data"),
            snap_not_null = self.key_is_not_null("snapshotted_data"),
            scd = c.scd_id,
        ));
        // A deleted key's latest version that already says "deleted".
        let already_deleted = format!(
            "snapshotted_data.{} = 'True' and {}",
            c.is_deleted,
            self.is_current("snapshotted_data.")
        );
        if deletes_tracked {
            q.push_str(&format!(
                ",\ndeletes as (\n    select 'delete' as dbt_change_type, source_data.*,\n        {now} as {from},\n        {now} as {upd},\n        {now} as {to},\n        snapshotted_data.{scd}{is_deleted_carry}\n    from snapshotted_data\n    left join deletes_source_data as source_data\n        on {join}\n    where {src_null}{not_again}\n)",
                from = c.valid_from,
                upd = c.updated_at,
                to = c.valid_to,
                scd = c.scd_id,
                join = self.key_join("snapshotted_data", "source_data"),
                src_null = self.key_is_null("source_data"),
                not_again = if new_record {
                    format!("\n        and not ({already_deleted})")
                } else {
                    String::new()
                },
            ));
        }
        if new_record {
            let mut cols: Vec<String> = source_cols
                .iter()
                .map(|col| {
                    let side = if target_cols.iter().any(|t| t == col) {
                        "snapshotted_data"
                    } else {
                        "source_data"
                    };
                    format!("{side}.{}", quote(col))
                })
                .collect();
            if self.cfg.key_is_list {
                for i in 1..=self.cfg.unique_key.len() {
                    cols.push(format!(
                        "snapshotted_data.dbt_unique_key_{i} as dbt_unique_key_{i}"
                    ));
                }
            } else {
                cols.push("snapshotted_data.dbt_unique_key as dbt_unique_key".into());
            }
            q.push_str(&format!(
                ",\ndeletion_records as (\n    select 'insert' as dbt_change_type, {cols},\n        {now} as {from},\n        {now} as {upd},\n        snapshotted_data.{to} as {to},\n        {new_scd} as {scd},\n        'True' as {del}\n    from snapshotted_data\n    left join deletes_source_data as source_data\n        on {join}\n    where {src_null}\n        and not ({already_deleted})\n)",
                cols = cols.join(", "),
                from = c.valid_from,
                upd = c.updated_at,
                to = c.valid_to,
                new_scd = Self::hash(&[format!("snapshotted_data.{}", c.scd_id), now.to_string()]),
                scd = c.scd_id,
                del = c.is_deleted,
                join = self.key_join("snapshotted_data", "source_data"),
                src_null = self.key_is_null("source_data"),
            ));
        }
        q.push_str("\nselect * from insertions\nunion all\nselect * from updates");
        if deletes_tracked {
            q.push_str("\nunion all\nselect * from deletes");
        }
        if new_record {
            q.push_str("\nunion all\nselect * from deletion_records");
        }
        q
    }

    /// Close the versions the staged changes replace (dbt-postgres' and
    /// dbt-duckdb's `snapshot_merge_sql`, first statement).
    pub fn close_versions(&self, target: &str, staging: &str) -> String {
        let c = &self.cfg.columns;
        format!(
            "update {target} as dbt_internal_target\nset {to} = dbt_internal_source.{to}\nfrom {staging} as dbt_internal_source\nwhere dbt_internal_source.{scd}::text = dbt_internal_target.{scd}::text\n  and dbt_internal_source.dbt_change_type::text in ('update', 'delete')\n  and {current}",
            to = c.valid_to,
            scd = c.scd_id,
            current = self.is_current("dbt_internal_target."),
        )
    }

    /// Insert the new versions (second statement of the merge).
    pub fn insert_versions(&self, target: &str, staging: &str, cols: &[String]) -> String {
        let list: Vec<String> = cols.iter().map(|c| quote(c)).collect();
        let from: Vec<String> = list
            .iter()
            .map(|c| format!("dbt_internal_source.{c}"))
            .collect();
        format!(
            "insert into {target} ({})\nselect {}\nfrom {staging} as dbt_internal_source\nwhere dbt_internal_source.dbt_change_type::text = 'insert'",
            list.join(", "),
            from.join(", ")
        )
    }
}

/// Whether `name` is one of the staging table's bookkeeping columns, which
/// never reach the snapshot table.
fn is_bookkeeping(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "dbt_change_type"
        || n == "dbt_unique_key"
        || n.strip_prefix("dbt_unique_key_")
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// One snapshot to build.
pub struct SnapshotBuild<'a> {
    pub relation: &'a Relation,
    pub sql: &'a str,
    pub config: &'a SnapshotConfig,
    pub pre_hooks: &'a [String],
    pub post_hooks: &'a [String],
}

/// Build (or bring up to date) one snapshot table. See the module docs.
pub fn build_snapshot(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &SnapshotBuild,
) -> Result<BuildOutcome, BuildError> {
    in_transaction(conn, |c| {
        run_hooks(c, HookPhase::Pre, b.pre_hooks)?;
        let outcome = snapshot_body(c, engine, b)?;
        run_hooks(c, HookPhase::Post, b.post_hooks)?;
        Ok(outcome)
    })
}

fn snapshot_body(
    conn: &mut dyn Connection,
    engine: Engine,
    b: &SnapshotBuild,
) -> Result<BuildOutcome, BuildError> {
    let s = SnapshotSql {
        cfg: b.config,
        engine,
    };
    let sql = b
        .sql
        .trim_end_matches(|c: char| c.is_whitespace() || c == ';');
    let target = render(b.relation);
    match get_relation(conn, engine, b.relation)? {
        None => {
            let rows = conn.execute(&format!(
                "create table {target} as (\n{}\n)",
                s.build_table(sql)
            ))?;
            return Ok(BuildOutcome {
                rows_affected: Some(rows),
                message: format!("SELECT {rows}"),
            });
        }
        Some(RelationKind::Table) => {}
        Some(RelationKind::View) => {
            return Err(config_error(format!(
                "{target} is a view, not a table: a snapshot only updates a table it built \
                 (drop the view and the snapshot starts a new history)"
            )))
        }
    }
    let existing = get_columns(conn, engine, b.relation)?;
    let has = |cols: &[ColumnMeta], name: &str| {
        cols.iter()
            .any(|c| adapter::same_ident(engine, &c.name, name))
    };
    let c = &b.config.columns;
    let mut missing: Vec<&str> = [&c.scd_id, &c.valid_from, &c.valid_to]
        .into_iter()
        .filter(|m| !has(&existing, m))
        .map(String::as_str)
        .collect();
    if b.config.hard_deletes == HardDeletes::NewRecord && !has(&existing, &c.is_deleted) {
        missing.push(&c.is_deleted);
    }
    if !missing.is_empty() {
        return Err(config_error(format!(
            "{target} is not a snapshot table of this configuration: it lacks {}; \
             rename the columns in snapshot_meta_column_names or drop the table to start a new history",
            missing.join(", ")
        )));
    }
    // The source rows, once: their columns decide `check_cols: all`.
    let src = adapter::with_suffix(b.relation, SOURCE_SUFFIX);
    let stg = adapter::with_suffix(b.relation, STAGING_SUFFIX);
    conn.execute(&drop_relation_sql(engine, &src, RelationKind::Table))?;
    conn.execute(&drop_relation_sql(engine, &stg, RelationKind::Table))?;
    conn.execute(&format!("create table {} as (\n{sql}\n)", render(&src)))?;
    let source_cols: Vec<String> = get_columns(conn, engine, &src)?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let (check_cols, column_added) = match &b.config.strategy {
        Strategy::Timestamp { .. } => (Vec::new(), false),
        Strategy::Check { cols, .. } => {
            let wanted: Vec<String> = match cols {
                CheckCols::All => source_cols.clone(),
                CheckCols::List(l) => l.clone(),
            };
            let mut added = false;
            let mut kept = Vec::new();
            for col in wanted {
                let bare = col.trim_matches('"');
                if has(&existing, bare) {
                    kept.push(if matches!(cols, CheckCols::All) {
                        quote(bare)
                    } else {
                        col.clone()
                    });
                } else {
                    added = true;
                }
            }
            (kept, added)
        }
    };
    let existing_names: Vec<String> = existing.iter().map(|c| c.name.clone()).collect();
    let staging_sql = s.staging(
        &render(&src),
        &target,
        &s.row_changed(&check_cols, column_added),
        &source_cols,
        &existing_names,
    );
    conn.execute(&format!(
        "create table {} as (\n{staging_sql}\n)",
        render(&stg)
    ))?;
    // Columns the query gained join the table (older versions hold null).
    let staged: Vec<ColumnMeta> = get_columns(conn, engine, &stg)?
        .into_iter()
        .filter(|col| !is_bookkeeping(&col.name))
        .collect();
    for col in staged.iter().filter(|col| !has(&existing, &col.name)) {
        conn.execute(&format!(
            "alter table {target} add column {} {}",
            quote(&col.name),
            col.data_type
        ))?;
    }
    conn.execute(&s.close_versions(&target, &render(&stg)))?;
    let names: Vec<String> = staged.into_iter().map(|c| c.name).collect();
    let inserted = conn.execute(&s.insert_versions(&target, &render(&stg), &names))?;
    conn.execute(&drop_relation_sql(engine, &stg, RelationKind::Table))?;
    conn.execute(&drop_relation_sql(engine, &src, RelationKind::Table))?;
    Ok(BuildOutcome {
        rows_affected: Some(inserted),
        message: format!("INSERT {inserted}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: serde_json::Value) -> Config {
        serde_json::from_value(pairs).unwrap()
    }

    #[test]
    fn settings_are_read_with_dbt_defaults_and_checked() {
        let c = SnapshotConfig::from_config(&cfg(serde_json::json!({
            "strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at"
        })))
        .unwrap();
        assert_eq!(
            c.strategy,
            Strategy::Timestamp {
                updated_at: "updated_at".into()
            }
        );
        assert_eq!(c.hard_deletes, HardDeletes::Ignore);
        assert_eq!(c.columns, MetaColumns::default());

        let c = SnapshotConfig::from_config(&cfg(serde_json::json!({
            "strategy": "check", "unique_key": ["a", "b"], "check_cols": "all",
            "invalidate_hard_deletes": true,
            "snapshot_meta_column_names": {"dbt_valid_to": "valid_until"}
        })))
        .unwrap();
        assert!(c.key_is_list && c.unique_key == ["a", "b"]);
        assert_eq!(c.hard_deletes, HardDeletes::Invalidate);
        assert_eq!(c.columns.valid_to, "valid_until");
        assert_eq!(c.columns.valid_from, "dbt_valid_from");

        for (bad, says) in [
            (
                serde_json::json!({"strategy": "timestamp", "unique_key": "id"}),
                "needs `updated_at`",
            ),
            (
                serde_json::json!({"strategy": "check", "unique_key": "id"}),
                "Invalid value for 'check_cols'",
            ),
            (
                serde_json::json!({"strategy": "timestamp", "updated_at": "u"}),
                "needs `unique_key`",
            ),
            (
                serde_json::json!({"strategy": "sometimes", "unique_key": "id"}),
                "unknown snapshot strategy 'sometimes'",
            ),
            (
                serde_json::json!({"strategy": "check", "unique_key": "id", "check_cols": "all", "hard_deletes": "purge"}),
                "invalid hard_deletes 'purge'",
            ),
        ] {
            let e = SnapshotConfig::from_config(&cfg(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_first_build_adds_dbts_columns() {
        let c = SnapshotConfig::from_config(&cfg(serde_json::json!({
            "strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at",
            "dbt_valid_to_current": "'9999-12-31'::timestamp"
        })))
        .unwrap();
        let s = SnapshotSql {
            cfg: &c,
            engine: Engine::Postgres,
        };
        let sql = s.build_table("select 1 as id, now() as updated_at");
        assert!(sql.contains(
            "md5(coalesce(cast(id as varchar ), '') || '|' || coalesce(cast(updated_at as varchar ), '')) as dbt_scd_id"
        ));
        assert!(sql.contains("updated_at as dbt_valid_from"));
        assert!(sql.contains(
            "coalesce(nullif(updated_at, updated_at), '9999-12-31'::timestamp) as dbt_valid_to"
        ));
    }

    #[test]
    fn check_strategy_compares_columns_null_safely_and_uses_the_run_time() {
        let c = SnapshotConfig::from_config(&cfg(serde_json::json!({
            "strategy": "check", "unique_key": "id", "check_cols": ["status"]
        })))
        .unwrap();
        let s = SnapshotSql {
            cfg: &c,
            engine: Engine::DuckDb,
        };
        assert_eq!(s.updated_at(), "now()::timestamp");
        let changed = s.row_changed(&["status".into()], false);
        assert!(changed.contains("snapshotted_data.status != source_data.status"));
        assert!(changed
            .contains("((snapshotted_data.status is null) and not (source_data.status is null))"));
        assert_eq!(s.row_changed(&["status".into()], true), "(TRUE)");
    }

    #[test]
    fn deletes_are_staged_only_when_tracked() {
        let mut c = SnapshotConfig::from_config(&cfg(serde_json::json!({
            "strategy": "timestamp", "unique_key": "id", "updated_at": "u"
        })))
        .unwrap();
        let staging = |c: &SnapshotConfig| {
            SnapshotSql {
                cfg: c,
                engine: Engine::Postgres,
            }
            .staging("src", "tgt", "(x)", &["id".into()], &["id".into()])
        };
        assert!(!staging(&c).contains("deletes"));
        c.hard_deletes = HardDeletes::Invalidate;
        let s = staging(&c);
        assert!(s.contains("select * from deletes") && !s.contains("deletion_records"));
        c.hard_deletes = HardDeletes::NewRecord;
        let s = staging(&c);
        assert!(
            s.contains("select * from deletion_records") && s.contains("'True' as dbt_is_deleted")
        );
    }

    #[test]
    fn bookkeeping_columns_stay_out_of_the_table() {
        assert!(is_bookkeeping("dbt_change_type") && is_bookkeeping("DBT_UNIQUE_KEY"));
        assert!(is_bookkeeping("dbt_unique_key_2"));
        assert!(!is_bookkeeping("dbt_unique_key_x") && !is_bookkeeping("dbt_scd_id"));
    }
}
