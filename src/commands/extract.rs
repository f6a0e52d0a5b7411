//! `sluice extract` (sources' APIs → lake) and `sluice stage` (lake →
//! warehouse raw tables). Which sources: those selected with `-s` (e.g.
//! `-s source:twitter`; default: every source) that declare an `extract`
//! block. Where the lake is: the target's `lake:` key in profiles.yml.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{select_ids, Exit, Failure, Ui};
use crate::cli::{ExtractArgs, GlobalArgs};
use crate::compile::Compiled;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::extract::{self, ExtractError, PluginOptions, RunError, RunOptions};
use crate::lake::{self, Lake, LakeConfig};
use crate::project::node::ResourceType;
use crate::stage::{self, StageOptions, StageTarget};

/// A source with an extraction block.
struct ExtractSource {
    name: String,
    schema: String,
    /// table name → identifier.
    identifiers: BTreeMap<String, String>,
    extract: Value,
    /// Where it is declared, for diagnostics.
    file: String,
    line: usize,
}

fn extract_sources(c: &Compiled, args: &ExtractArgs) -> Result<Vec<ExtractSource>, Failure> {
    let ids = select_ids(c, &args.select)?;
    let mut out: BTreeMap<String, ExtractSource> = BTreeMap::new();
    for id in &ids {
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
                schema: n.schema.clone(),
                identifiers: BTreeMap::new(),
                extract: block.clone(),
                file: n.defining_file().to_string(),
                line: n.line,
            });
        e.line = e.line.min(n.line);
        e.identifiers
            .insert(n.name.clone(), info.identifier.clone());
    }
    if out.is_empty() {
        return Err(Diagnostic::error(
            "E0901",
            "no selected source declares an extraction",
        )
        .hint("declare one under the source in schema YAML: `meta: {sluice: {extract: {plugin: x_recent_search, query: …}}}` (see docs/extraction.md)")
        .hint("select sources with `-s source:<name>`")
        .into());
    }
    Ok(out.into_values().collect())
}

fn open_lake(
    target: &crate::warehouse::TargetConfig,
    root: &Path,
) -> Result<Box<dyn Lake>, Failure> {
    let config = LakeConfig::from_target(target).map_err(|e| {
        Diagnostic::error("E0905", e.to_string())
            .at("profiles.yml", None)
            .hint("e.g. `lake: {type: local, path: lake}` or `lake: {type: s3, bucket: my-bucket, prefix: raw}` under the target")
    })?;
    lake::open(&config, root)
        .map_err(|e| Diagnostic::error("E0905", format!("cannot open the lake: {e}")).into())
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

pub fn extract_cmd(g: &GlobalArgs, ui: &Ui, args: &ExtractArgs) -> Result<Exit, Failure> {
    let loaded = super::load(g, ui, "extract", false)?;
    let root = loaded.compiled.project.root.clone();
    let sources = extract_sources(&loaded.compiled, args)?;
    let lake = open_lake(&loaded.target.config, &root)?;
    let log = |m: &str| ui.info(m);
    let opts = PluginOptions {
        project_dir: root.clone(),
        dry_run: args.dry_run,
        record: args.record.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            }
        }),
    };
    let run_opts = RunOptions {
        full_refresh: args.full_refresh,
    };
    let mut errors = Diagnostics::default();
    for src in &sources {
        let mut plugin = match extract::plugin_for(&src.extract, &opts) {
            Ok(p) => p,
            Err(e) => {
                errors.push(extract_diag(src, &e));
                continue;
            }
        };
        if args.dry_run {
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
            continue;
        }
        if let Some(dir) = plugin.replaying() {
            ui.info(format!(
                "Replaying recorded X API responses from `{dir}` for source `{}` (no network, no token)",
                src.name
            ));
        }
        match extract::run(plugin.as_mut(), lake.as_ref(), &src.name, run_opts, &log) {
            Ok(s) => {
                let landed = if s.resumed {
                    format!(
                        "{} page{} ({} new)",
                        s.pages,
                        plural(s.pages),
                        s.pages_landed
                    )
                } else {
                    format!("{} page{}", s.pages, plural(s.pages))
                };
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
                    "Extracted source `{}`: run {}, {landed}, {} post{}{errs}{budget} -> {}{}",
                    src.name,
                    s.run_id,
                    s.posts,
                    plural(s.posts as usize),
                    lake.describe(),
                    s.run_prefix
                ));
            }
            Err(e) => errors.push(run_error_diag(src, &e)),
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
    let log = |m: &str| ui.info(m);
    let opts = StageOptions {
        full_refresh: args.full_refresh,
        dry_run: args.dry_run,
    };
    let mut errors = Diagnostics::default();
    for src in &sources {
        let family = match extract::plugin_for(
            &src.extract,
            &PluginOptions {
                project_dir: root.clone(),
                dry_run: true,
                record: None,
            },
        ) {
            Ok(p) => p.family(),
            Err(e) => {
                errors.push(extract_diag(src, &e));
                continue;
            }
        };
        let target = StageTarget {
            engine: loaded.target.config.engine(),
            schema: src.schema.clone(),
            identifiers: src.identifiers.clone(),
        };
        match stage::stage_source(conn.as_mut(), lake.as_ref(), family, &src.name, &target, opts, &log) {
            Ok(s) => {
                let total: u64 = s.rows.iter().map(|(_, n)| n).sum();
                let rows = s
                    .rows
                    .iter()
                    .map(|(t, n)| format!("{n} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let verb = if args.dry_run { "Would stage" } else { "Staged" };
                let rate = if s.seconds > 0.0 && total > 0 {
                    format!(" ({:.0} rows/s)", total as f64 / s.seconds)
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
                    if args.dry_run { "" } else { ": " },
                    if args.dry_run { String::new() } else { rows },
                    s.seconds,
                ));
            }
            Err(e) => errors.push(
                Diagnostic::error("E0911", format!("staging source `{}`: {e}", src.name))
                    .hint("staging is per run and transactional: fix the cause and run `sluice stage` again"),
            ),
        }
    }
    if errors.0.is_empty() {
        Ok(0)
    } else {
        Err(errors.into())
    }
}
