//! `sluice extract` (sources' APIs → lake) and `sluice stage` (lake →
//! warehouse raw tables). Which sources: those selected with `-s` (e.g.
//! `-s source:twitter`; default: every source) that declare an `extract`
//! block. Where the lake is: the target's `lake:` key in profiles.yml.
//!
//! [`extract_and_stage`] is the same work for one source as one step of
//! `build`'s DAG (see `run.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::progress::reporter;
use super::{select_ids, Exit, Failure, Ui};
use crate::cli::{ExtractArgs, GlobalArgs};
use crate::compile::Compiled;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::extract::{self, ExtractError, PluginOptions, RunError, RunOptions, RunSummary};
use crate::lake::{self, Lake, LakeConfig};
use crate::project::node::ResourceType;
use crate::stage::{self, StageOptions, StageSummary, StageTarget};
use crate::warehouse::{Connection, TargetConfig};

/// A source with an extraction block.
#[derive(Debug, Clone)]
pub(super) struct ExtractSource {
    pub name: String,
    /// The unique ids of its tables (`source.<package>.<source>.<table>`).
    pub tables: BTreeSet<String>,
    /// Its step in `build`: `source.<package>.<source>`.
    pub step_id: String,
    schema: String,
    /// table name → identifier.
    identifiers: BTreeMap<String, String>,
    extract: Value,
    /// Where it is declared, for diagnostics.
    pub file: String,
    line: usize,
}

/// The sources with an extraction block that have a table among `ids`, by name.
pub(super) fn sources_among<'a>(
    c: &Compiled,
    ids: impl IntoIterator<Item = &'a String>,
) -> Vec<ExtractSource> {
    let mut out: BTreeMap<String, ExtractSource> = BTreeMap::new();
    for id in ids {
        let Some(n) = c.nodes().get(id) else { continue };
        if n.resource_type != ResourceType::Source {
            continue;
        }
        let Some(info) = &n.source else { continue };
        let Some(block) = &info.extract else { continue };
        let e = out
            .entry(info.source_name.clone())
            .or_insert_with(|| ExtractSource {
                name: info.source_name.clone(),
                tables: BTreeSet::new(),
                step_id: format!("source.{}.{}", n.package_name, info.source_name),
                schema: n.schema.clone(),
                identifiers: BTreeMap::new(),
                extract: block.clone(),
                file: n.defining_file().to_string(),
                line: n.line,
            });
        e.line = e.line.min(n.line);
        e.tables.insert(id.clone());
        e.identifiers
            .insert(n.name.clone(), info.identifier.clone());
    }
    out.into_values().collect()
}

fn extract_sources(c: &Compiled, args: &ExtractArgs) -> Result<Vec<ExtractSource>, Failure> {
    let out = sources_among(c, &select_ids(c, &args.select)?);
    if out.is_empty() {
        return Err(Diagnostic::error(
            "E0901",
            "no selected source declares an extraction",
        )
        .hint("declare one under the source in schema YAML: `meta: {sluice: {extract: {plugin: x_recent_search, query: …}}}` (see docs/extraction.md)")
        .hint("select sources with `-s source:<name>`")
        .into());
    }
    Ok(out)
}

fn open_lake(target: &TargetConfig, root: &Path) -> Result<Box<dyn Lake>, Diagnostic> {
    let config = LakeConfig::from_target(target).map_err(|e| {
        Diagnostic::error("E0905", e.to_string())
            .at("profiles.yml", None)
            .hint("e.g. `lake: {type: local, path: lake}` or `lake: {type: s3, bucket: my-bucket, prefix: raw}` under the target")
    })?;
    lake::open(&config, root)
        .map_err(|e| Diagnostic::error("E0905", format!("cannot open the lake: {e}")))
}

fn extract_diag(src: &ExtractSource, e: &ExtractError) -> Diagnostic {
    match e {
        ExtractError::Config(_) | ExtractError::UnknownPlugin(_) => {
            let d = Diagnostic::error("E0902", format!("source `{}`: {e}", src.name))
                .at(src.file.clone(), Some(src.line));
            if matches!(e, ExtractError::UnknownPlugin(_)) {
                d.hint(format!("available plugins: `{}`", extract::twitter::PLUGIN_NAME))
            } else {
                d.hint("see docs/extraction.md for the `extract:` keys")
            }
        }
        ExtractError::MissingToken { var } => Diagnostic::error(
            "E0903",
            format!("source `{}`: {e}", src.name),
        )
        .hint(format!("export {var}=<app-only bearer token> (it is never printed or written)"))
        .hint(format!(
            "or replay a recording without network or token: `replay: <dir>` in the extract block, or {}=<dir>",
            extract::twitter::REPLAY_ENV
        ))
        .hint("`sluice extract --dry-run` shows the requests without a token"),
        ExtractError::Rejected {
            messages, hint, ..
        } => {
            let mut msg = format!("source `{}`: {e}", src.name);
            for m in messages {
                msg.push_str(&format!("\n  api: {m}"));
            }
            Diagnostic::error("E0904", msg).hint(hint.clone())
        }
        _ => Diagnostic::error("E0906", format!("source `{}`: {e}", src.name)),
    }
}

fn run_error_diag(src: &ExtractSource, e: &RunError) -> Diagnostic {
    let mut d = extract_diag(src, &e.error);
    if let Some(run) = &e.run_id {
        let pages = e.pages_in_lake;
        if e.error.is_resumable() {
            d = d.hint(format!(
                "run {run} stopped after {pages} landed page{}; run `sluice extract` again to resume it (landed pages are not fetched again)",
                if pages == 1 { "" } else { "s" }
            ));
        } else {
            d = d.hint(format!(
                "run {run} is kept open with {pages} landed page{}; the next `sluice extract` resumes it",
                if pages == 1 { "" } else { "s" }
            ));
        }
    }
    d
}

fn plugin_options(root: &Path, dry_run: bool, record: Option<std::path::PathBuf>) -> PluginOptions {
    PluginOptions {
        project_dir: root.to_path_buf(),
        dry_run,
        record,
    }
}

/// Extract one source into the lake (progress on the way, a summary line at the end).
fn extract_one(
    src: &ExtractSource,
    opts: &PluginOptions,
    lake: &dyn Lake,
    run_opts: RunOptions,
    ui: &Ui,
) -> Result<RunSummary, Diagnostic> {
    let mut plugin = extract::plugin_for(&src.extract, opts).map_err(|e| extract_diag(src, &e))?;
    if let Some(dir) = plugin.replaying() {
        ui.info(format!(
            "Replaying recorded X API responses from `{dir}` for source `{}` (no network, no token)",
            src.name
        ));
    }
    let result = {
        // The bar (if any) is cleared before the summary line.
        let progress = reporter(ui);
        extract::run(plugin.as_mut(), lake, &src.name, run_opts, &progress)
    };
    let s = result.map_err(|e| run_error_diag(src, &e))?;
    let budget = s
        .stopped_by
        .as_ref()
        .map(|b| format!("; stopped by `{b}`"))
        .unwrap_or_default();
    let errs = if s.partial_errors > 0 {
        format!(
            ", {} partial error{} kept",
            s.partial_errors,
            plural(s.partial_errors as usize)
        )
    } else {
        String::new()
    };
    ui.info(format!(
        "Extracted source `{}`: run {}, {}{errs}{budget} -> {}{}",
        src.name,
        s.run_id,
        pages_and_posts(&s),
        lake.describe(),
        s.run_prefix
    ));
    Ok(s)
}

/// `5 pages, 337 posts` (`5 pages (2 new), …` for a resumed run).
fn pages_and_posts(s: &RunSummary) -> String {
    let new = if s.resumed {
        format!(" ({} new)", s.pages_landed)
    } else {
        String::new()
    };
    format!(
        "{} page{}{new}, {} post{}",
        s.pages,
        plural(s.pages),
        s.posts,
        plural(s.posts as usize)
    )
}

/// Stage one source's complete runs (progress on the way, a summary line at the end).
fn stage_one(
    src: &ExtractSource,
    conn: &mut dyn Connection,
    lake: &dyn Lake,
    target: &TargetConfig,
    opts: StageOptions,
    root: &Path,
    ui: &Ui,
) -> Result<StageSummary, Diagnostic> {
    let family = extract::plugin_for(&src.extract, &plugin_options(root, true, None))
        .map_err(|e| extract_diag(src, &e))?
        .family();
    let stage_target = StageTarget {
        engine: target.engine(),
        schema: src.schema.clone(),
        identifiers: src.identifiers.clone(),
    };
    let result = {
        let progress = reporter(ui);
        stage::stage_source(
            conn,
            lake,
            family,
            &src.name,
            &stage_target,
            opts,
            &progress,
        )
    };
    let s = result.map_err(|e| {
        Diagnostic::error("E0911", format!("staging source `{}`: {e}", src.name)).hint(
            "staging is per run and transactional: fix the cause and run `sluice stage` again",
        )
    })?;
    let verb = if opts.dry_run {
        "Would stage"
    } else {
        "Staged"
    };
    let rate = if s.seconds > 0.0 && rows_staged(&s) > 0 {
        format!(" ({:.0} rows/s)", rows_staged(&s) as f64 / s.seconds)
    } else {
        String::new()
    };
    ui.info(format!(
        "{verb} source `{}` into `{}`: {} run{} ({} already staged, {} in the lake){}{} in {:.2}s{rate}",
        src.name,
        src.schema,
        s.runs_staged.len(),
        plural(s.runs_staged.len()),
        s.runs_skipped,
        s.runs_in_lake,
        if opts.dry_run { "" } else { ": " },
        if opts.dry_run { String::new() } else { rows_by_table(&s) },
        s.seconds,
    ));
    Ok(s)
}

fn rows_staged(s: &StageSummary) -> u64 {
    s.rows.iter().map(|(_, n)| n).sum()
}

/// `337 tweets, 7 users, 674 tweet_hashtags`.
fn rows_by_table(s: &StageSummary) -> String {
    s.rows
        .iter()
        .map(|(t, n)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one `build` step for a source did.
pub(super) struct StepOutcome {
    /// For run_results.json: `<pages>, <posts>, <rows> staged; <rows per table>; run <id>`
    /// (the status line shows the part before the first `; `).
    pub message: String,
    pub rows: u64,
}

/// `build`'s step for a source: extract it into the target's lake, then
/// stage its complete runs through `conn` (the executor's connection).
pub(super) fn extract_and_stage(
    src: &ExtractSource,
    target: &TargetConfig,
    root: &Path,
    conn: &mut dyn Connection,
    ui: &Ui,
) -> Result<StepOutcome, Diagnostic> {
    let lake = open_lake(target, root)?;
    let run = extract_one(
        src,
        &plugin_options(root, false, None),
        lake.as_ref(),
        RunOptions::default(),
        ui,
    )?;
    let staged = stage_one(
        src,
        conn,
        lake.as_ref(),
        target,
        StageOptions::default(),
        root,
        ui,
    )?;
    let rows = rows_staged(&staged);
    Ok(StepOutcome {
        message: format!(
            "{}, {rows} row{} staged; {}; run {}",
            pages_and_posts(&run),
            plural(rows as usize),
            rows_by_table(&staged),
            run.run_id
        ),
        rows,
    })
}

pub fn extract_cmd(g: &GlobalArgs, ui: &Ui, args: &ExtractArgs) -> Result<Exit, Failure> {
    let loaded = super::load(g, ui, "extract", false)?;
    let root = loaded.compiled.project.root.clone();
    let sources = extract_sources(&loaded.compiled, args)?;
    let lake = open_lake(&loaded.target.config, &root)?;
    let record = args.record.as_ref().map(|p| {
        if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        }
    });
    let opts = plugin_options(&root, args.dry_run, record);
    let run_opts = RunOptions {
        full_refresh: args.full_refresh,
    };
    let mut errors = Diagnostics::default();
    for src in &sources {
        if !args.dry_run {
            if let Err(d) = extract_one(src, &opts, lake.as_ref(), run_opts, ui) {
                errors.push(d);
            }
            continue;
        }
        let plugin = match extract::plugin_for(&src.extract, &opts) {
            Ok(p) => p,
            Err(e) => {
                errors.push(extract_diag(src, &e));
                continue;
            }
        };
        let mut out = std::io::stdout().lock();
        use std::io::Write;
        writeln!(
            out,
            "# source `{}` ({}), lake {}",
            src.name,
            plugin.name(),
            lake.describe()
        )?;
        for line in extract::dry_run(plugin.as_ref(), lake.as_ref(), &src.name, run_opts) {
            writeln!(out, "{line}")?;
        }
    }
    if errors.0.is_empty() {
        Ok(0)
    } else {
        Err(errors.into())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn stage_cmd(g: &GlobalArgs, ui: &Ui, args: &ExtractArgs) -> Result<Exit, Failure> {
    let loaded = super::load(g, ui, "stage", false)?;
    let root = loaded.compiled.project.root.clone();
    let sources = extract_sources(&loaded.compiled, args)?;
    let lake = open_lake(&loaded.target.config, &root)?;
    let wh = crate::warehouse::open(&loaded.target.config, &root)
        .map_err(|e| Diagnostic::error("E0910", e.to_string()))?;
    let mut conn = wh
        .connect()
        .map_err(|e| Diagnostic::error("E0910", e.to_string()))?;
    let opts = StageOptions {
        full_refresh: args.full_refresh,
        dry_run: args.dry_run,
    };
    let mut errors = Diagnostics::default();
    for src in &sources {
        if let Err(d) = stage_one(
            src,
            conn.as_mut(),
            lake.as_ref(),
            &loaded.target.config,
            opts,
            &root,
            ui,
        ) {
            errors.push(d);
        }
    }
    if errors.0.is_empty() {
        Ok(0)
    } else {
        Err(errors.into())
    }
}
