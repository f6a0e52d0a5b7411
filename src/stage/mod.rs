//! Staging: complete runs in the lake → raw tables in the warehouse.
//!
//! Each complete run (one with a manifest) is flattened into rows by the
//! plugin family's flattener ([`twitter`]) into typed [`Rows`] and loaded
//! with [`Connection::load_rows`] (binary COPY on PostgreSQL, the Appender on
//! DuckDB),
//! with two extra columns: `_sluice_run_id` and `_sluice_loaded_at` (UTC,
//! `timestamp` without time zone).
//!
//! Idempotent per run: in one transaction the run's rows are deleted from
//! every table, loaded again, and the run id is recorded in
//! `<schema>._sluice_runs`. Runs already recorded there are skipped, so
//! re-staging changes nothing; `--full-refresh` drops the tables and stages
//! every run in the lake again.

pub mod twitter;

use std::time::Instant;

use crate::extract::{self, ExtractError};
use crate::lake::Lake;
use crate::progress::{Event, Progress};
use crate::warehouse::adapter;
use crate::warehouse::rows::{Rows, TextRef};
use crate::warehouse::{ColumnMeta, Connection, Engine, Relation, WarehouseError};

/// Errors that stop staging.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Lake(#[from] ExtractError),
    #[error("run `{run_id}`: page `{page}` is unreadable: {message}")]
    BadPage {
        run_id: String,
        page: String,
        message: String,
    },
    #[error("no stager for plugin family `{0}`")]
    UnknownFamily(String),
}

/// A raw table: its logical name (as in the source YAML), columns and types.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: Vec<(&'static str, &'static str)>,
}

/// The run being staged, recorded on every row it loads.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    pub run_id: &'a str,
    /// When staging started, microseconds since the Unix epoch (UTC).
    pub loaded_at: i64,
}

/// Rows for one raw table, each ending with `_sluice_run_id` and
/// `_sluice_loaded_at`: a flattener fills a row's values with
/// [`StagedRows::values`] and closes it with [`StagedRows::end_row`].
pub struct StagedRows {
    rows: Rows,
    run_id: TextRef,
    loaded_at: i64,
}

impl StagedRows {
    pub fn new(spec: &TableSpec, run: &Provenance<'_>) -> Self {
        let mut rows = Rows::new(spec.columns.len() + 2);
        let run_id = rows.push_str(run.run_id);
        StagedRows {
            rows,
            run_id,
            loaded_at: run.loaded_at,
        }
    }

    /// Where the current row's table columns go.
    pub fn values(&mut self) -> &mut Rows {
        &mut self.rows
    }

    /// Add the provenance columns, ending the row.
    pub fn end_row(&mut self) {
        self.rows.repeat(self.run_id);
        self.rows.timestamp(Some(self.loaded_at));
    }

    pub fn rows(&self) -> &Rows {
        &self.rows
    }
}

/// Where the raw tables go.
#[derive(Debug, Clone)]
pub struct StageTarget {
    pub engine: Engine,
    pub schema: String,
    /// Identifier overrides by logical table name (`identifier:` in YAML).
    pub identifiers: std::collections::BTreeMap<String, String>,
}

impl StageTarget {
    fn relation(&self, name: &str) -> Relation {
        Relation {
            database: None,
            schema: self.schema.clone(),
            identifier: self
                .identifiers
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StageOptions {
    pub full_refresh: bool,
    pub dry_run: bool,
}

/// What staging did for one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageSummary {
    pub runs_in_lake: usize,
    pub runs_staged: Vec<String>,
    pub runs_skipped: usize,
    /// Rows loaded per table (logical name, rows), this invocation.
    pub rows: Vec<(String, u64)>,
    pub seconds: f64,
}

pub const RUNS_TABLE: &str = "_sluice_runs";

fn tables_for(family: &str) -> Result<Vec<TableSpec>, StageError> {
    match family {
        extract::twitter::FAMILY => Ok(twitter::tables()),
        other => Err(StageError::UnknownFamily(other.to_string())),
    }
}

fn create_sql(rel: &Relation, columns: &[(&str, &str)]) -> String {
    let cols = columns
        .iter()
        .map(|(n, t)| format!("{} {t}", adapter::quote(n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({cols})",
        adapter::render(rel)
    )
}

fn with_meta_columns(spec: &TableSpec) -> Vec<(&'static str, &'static str)> {
    let mut cols = spec.columns.clone();
    cols.push(("_sluice_run_id", "varchar"));
    cols.push(("_sluice_loaded_at", "timestamp"));
    cols
}

/// Stage every complete, not yet staged run of `source` into the warehouse.
pub fn stage_source(
    conn: &mut dyn Connection,
    lake: &dyn Lake,
    family: &str,
    source: &str,
    target: &StageTarget,
    opts: StageOptions,
    progress: &dyn Progress,
) -> Result<StageSummary, StageError> {
    let started = Instant::now();
    let specs = tables_for(family)?;
    let runs = extract::complete_runs(lake, family, source)?;
    let mut summary = StageSummary {
        runs_in_lake: runs.len(),
        rows: specs.iter().map(|s| (s.name.to_string(), 0)).collect(),
        ..Default::default()
    };
    let runs_rel = target.relation(RUNS_TABLE);
    let runs_cols: Vec<(&str, &str)> = vec![
        ("run_id", "varchar"),
        ("source", "varchar"),
        ("plugin", "varchar"),
        ("posts", "bigint"),
        ("staged_at", "timestamp"),
    ];
    if opts.dry_run {
        let staged = if adapter::get_relation(conn, target.engine, &runs_rel)?.is_some()
            && !opts.full_refresh
        {
            staged_runs(conn, &runs_rel, source)?
        } else {
            Default::default()
        };
        for r in &runs {
            if staged.contains(&r.manifest.run_id) {
                summary.runs_skipped += 1;
            } else {
                progress.emit(Event::WouldStage {
                    run_id: r.manifest.run_id.clone(),
                    posts: r.manifest.posts,
                    pages: r.manifest.pages.len(),
                });
                summary.runs_staged.push(r.manifest.run_id.clone());
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    adapter::create_schema_if_missing(conn, target.engine, None, &target.schema)?;
    conn.execute(&create_sql(&runs_rel, &runs_cols))?;
    if opts.full_refresh {
        for spec in &specs {
            conn.execute(&format!(
                "DROP TABLE IF EXISTS {}",
                adapter::render(&target.relation(spec.name))
            ))?;
        }
        conn.execute(&format!(
            "DELETE FROM {} WHERE source = {}",
            adapter::render(&runs_rel),
            adapter::literal(source)
        ))?;
    }
    for spec in &specs {
        conn.execute(&create_sql(
            &target.relation(spec.name),
            &with_meta_columns(spec),
        ))?;
    }
    let staged = staged_runs(conn, &runs_rel, source)?;
    let (runs, already): (Vec<_>, Vec<_>) = runs
        .iter()
        .partition(|r| !staged.contains(&r.manifest.run_id));
    summary.runs_skipped = already.len();
    progress.emit(Event::StageStarted {
        source: source.to_string(),
        runs: runs.len(),
        pages: runs.iter().map(|r| r.manifest.pages.len()).sum(),
        posts: runs.iter().map(|r| r.manifest.posts).sum(),
    });

    for run in runs {
        let run_id = &run.manifest.run_id;
        let now = chrono::Utc::now().naive_utc();
        let loaded_at = crate::warehouse::rows::timestamp_micros(now);
        let provenance = Provenance { run_id, loaded_at };
        // Pages are read and flattened a batch at a time on one thread while
        // the previous batch is loaded on this one: memory stays bounded and
        // parsing overlaps the warehouse's work.
        let (counts, read_secs, load_secs) = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let reader = scope.spawn(move || read_batches(lake, run, &provenance, tx));
            let loaded = load_run(
                conn, target, &specs, &runs_rel, source, run, loaded_at, rx, progress,
            );
            let read_secs = reader.join().unwrap_or(0.0);
            loaded.map(|(counts, load_secs)| (counts, read_secs, load_secs))
        })?;
        for (i, n) in counts.iter().enumerate() {
            summary.rows[i].1 += n;
        }
        progress.emit(Event::RunStaged {
            run_id: run_id.clone(),
            rows: specs
                .iter()
                .zip(&counts)
                .map(|(s, n)| (s.name.to_string(), *n))
                .collect(),
            read_secs,
            load_secs,
        });
        summary.runs_staged.push(run_id.clone());
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn staged_runs(
    conn: &mut dyn Connection,
    runs_rel: &Relation,
    source: &str,
) -> Result<std::collections::BTreeSet<String>, StageError> {
    let res = conn.query(&format!(
        "SELECT run_id FROM {} WHERE source = {}",
        adapter::render(runs_rel),
        adapter::literal(source)
    ))?;
    Ok(res
        .rows
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_string))
        .collect())
}

/// Pages of a run read from the lake and flattened into rows.
struct Batch {
    pages: usize,
    tables: Vec<StagedRows>,
}

/// Pages per batch: about 10,000 posts, a few MB of rows.
const BATCH_PAGES: usize = 100;

/// Read and flatten a run's pages a batch at a time, in page order, until
/// done, an error (sent on), or the loader hangs up. Returns the seconds spent.
fn read_batches(
    lake: &dyn Lake,
    run: &extract::CompleteRun,
    provenance: &Provenance<'_>,
    tx: std::sync::mpsc::SyncSender<Result<Batch, StageError>>,
) -> f64 {
    let run_id = &run.manifest.run_id;
    let mut busy = 0.0;
    let mut flattener = twitter::Flattener::default();
    for chunk in run.manifest.pages.chunks(BATCH_PAGES) {
        let started = Instant::now();
        let batch = chunk
            .iter()
            .map(|p| {
                let key = format!("{}{}", run.prefix, p.name);
                match lake.get(&key).map_err(ExtractError::from)? {
                    Some(bytes) => Ok((key, bytes)),
                    None => Err(StageError::BadPage {
                        run_id: run_id.clone(),
                        page: key,
                        message: "listed in the manifest but missing from the lake".into(),
                    }),
                }
            })
            .collect::<Result<Vec<_>, StageError>>()
            .and_then(|pages| {
                Ok(Batch {
                    pages: pages.len(),
                    tables: flattener.add_pages(provenance, &pages)?,
                })
            });
        busy += started.elapsed().as_secs_f64();
        let failed = batch.is_err();
        if tx.send(batch).is_err() || failed {
            break;
        }
    }
    busy
}

/// Delete-then-insert one run from its batches and record it, in one
/// transaction. Returns rows per table and the seconds spent loading.
#[allow(clippy::too_many_arguments)]
fn load_run(
    conn: &mut dyn Connection,
    target: &StageTarget,
    specs: &[TableSpec],
    runs_rel: &Relation,
    source: &str,
    run: &extract::CompleteRun,
    loaded_at: i64,
    batches: std::sync::mpsc::Receiver<Result<Batch, StageError>>,
    progress: &dyn Progress,
) -> Result<(Vec<u64>, f64), StageError> {
    let run_id = &run.manifest.run_id;
    let columns: Vec<Vec<ColumnMeta>> = specs
        .iter()
        .map(|spec| {
            with_meta_columns(spec)
                .into_iter()
                .map(|(n, t)| ColumnMeta {
                    name: n.to_string(),
                    data_type: t.to_string(),
                })
                .collect()
        })
        .collect();
    conn.execute("BEGIN")?;
    let result = (|| -> Result<(Vec<u64>, f64), StageError> {
        for spec in specs {
            conn.execute(&format!(
                "DELETE FROM {} WHERE _sluice_run_id = {}",
                adapter::render(&target.relation(spec.name)),
                adapter::literal(run_id)
            ))?;
        }
        let mut counts = vec![0; specs.len()];
        let mut load_secs = 0.0;
        for batch in batches {
            let batch = batch?;
            for _ in 0..batch.pages {
                progress.emit(Event::StagePageRead {
                    run_id: run_id.clone(),
                });
            }
            progress.emit(Event::StageLoading {
                run_id: run_id.clone(),
                rows: batch.tables.iter().map(|t| t.rows().len() as u64).sum(),
            });
            let started = Instant::now();
            for (i, table) in batch.tables.iter().enumerate() {
                let (Some(spec), Some(cols)) = (specs.get(i), columns.get(i)) else {
                    continue;
                };
                counts[i] += conn.load_rows(&target.relation(spec.name), cols, table.rows())?;
            }
            load_secs += started.elapsed().as_secs_f64();
        }
        conn.execute(&format!(
            "DELETE FROM {rr} WHERE run_id = {id}; INSERT INTO {rr} (run_id, source, plugin, posts, staged_at) VALUES ({id}, {src}, {plugin}, {posts}, {at})",
            rr = adapter::render(runs_rel),
            id = adapter::literal(run_id),
            src = adapter::literal(source),
            plugin = adapter::literal(&run.manifest.plugin),
            posts = run.manifest.posts,
            at = adapter::literal(&crate::warehouse::rows::format_timestamp(loaded_at)),
        ))?;
        Ok((counts, load_secs))
    })();
    match result {
        Ok(c) => {
            conn.execute("COMMIT")?;
            Ok(c)
        }
        Err(e) => {
            let _ = conn.execute("ROLLBACK");
            Err(e)
        }
    }
}
