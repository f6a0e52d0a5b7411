//! One function per subcommand, wiring the pure core (project, templating,
//! graph) to the edges (files, warehouses, the terminal). stdout carries
//! data (`ls`, `compile --inline`); stderr carries progress and diagnostics.

mod debug;
mod deps;
pub mod docs;
mod extract;
mod freshness;
mod init;
mod ls;
pub mod progress;
pub mod run;
mod show;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::Value;

use crate::cli::{Cli, Command, DocsCommand, GlobalArgs, LogFormat, SelectArgs, SourceCommand};
use crate::compile::{self, Compiled};
use crate::compiled_files;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::graph::select::{self, SelectContext};
use crate::project::node::ResourceType;
use crate::project::{self, profiles, Project};
use crate::templating::RenderSettings;

/// What a command ends with: an exit code (0 ok, 1 failure, 2 usage/internal).
pub type Exit = i32;

/// Errors that end a command: user-facing diagnostics (exit 1) or an
/// internal failure (exit 2).
#[derive(Debug)]
pub enum Failure {
    User(Diagnostics),
    Internal(anyhow::Error),
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::User(d)
    }
}
impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::User(d.into())
    }
}
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Internal(e.into())
    }
}

/// Where output goes and how it looks.
#[derive(Debug, Clone)]
pub struct Ui {
    pub quiet: bool,
    pub json: bool,
    /// Progress bars on stderr (a terminal, not `-q`, not JSON logs); lines
    /// printed meanwhile go above the bars.
    pub bars: Option<indicatif::MultiProgress>,
}

impl Ui {
    /// A plain or JSON UI without progress bars.
    pub fn plain(quiet: bool, json: bool) -> Ui {
        Ui {
            quiet,
            json,
            bars: None,
        }
    }

    /// Print to stderr, above any progress bars.
    pub fn eprint(&self, text: impl std::fmt::Display) {
        match &self.bars {
            Some(m) => m.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    pub fn info(&self, msg: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.json {
            let line = serde_json::json!({"level": "info", "msg": msg.as_ref(), "ts": chrono::Utc::now().to_rfc3339()});
            self.eprint(line);
        } else {
            self.eprint(msg.as_ref());
        }
    }

    /// A progress line; JSON logs also carry the event's fields.
    pub fn event(&self, msg: &str, event: &crate::progress::Event) {
        if self.quiet {
            return;
        }
        if self.json {
            let line = serde_json::json!({"level": "info", "msg": msg, "ts": chrono::Utc::now().to_rfc3339(), "progress": event});
            self.eprint(line);
        } else {
            self.eprint(msg);
        }
    }

    pub fn diagnostics(&self, d: &Diagnostics) {
        if self.json {
            for x in &d.0 {
                self.eprint(serde_json::to_string(x).unwrap_or_default());
            }
        } else if !d.0.is_empty() {
            self.eprint(d);
        }
    }
}

pub fn main(cli: Cli) -> Exit {
    use std::io::IsTerminal;
    let quiet = cli.global.quiet;
    let json = cli.global.log_format == LogFormat::Json;
    let mut ui = Ui::plain(quiet, json);
    if progress::display_for(std::io::stderr().is_terminal(), quiet, json)
        == progress::Display::Bars
    {
        ui.bars = Some(indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::stderr(),
        ));
    }
    let result = dispatch(&cli, &ui);
    match result {
        Ok(code) => code,
        Err(Failure::User(d)) => {
            ui.diagnostics(&d);
            1
        }
        Err(Failure::Internal(e)) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

fn dispatch(cli: &Cli, ui: &Ui) -> Result<Exit, Failure> {
    let g = &cli.global;
    match &cli.command {
        Command::Init { dir } => init::init(dir, ui),
        Command::Clean => clean(g, ui),
        Command::Retry(a) => run::retry(g, ui, a),
        Command::Source {
            command: SourceCommand::Freshness { select },
        } => freshness::freshness(g, ui, select),
        Command::Docs {
            command: DocsCommand::Generate { empty_catalog },
        } => docs::generate(g, ui, *empty_catalog),
        Command::Docs {
            command: DocsCommand::Serve { host, port },
        } => docs::serve(g, ui, host, *port),
        Command::Debug => debug::debug(g, ui),
        Command::Deps => deps::deps(g, ui),
        Command::Parse => parse_cmd(g, ui),
        Command::Compile { select, inline } => compile_cmd(g, ui, select, inline.as_deref()),
        Command::Ls { select, output } => ls::ls(g, ui, select, *output),
        Command::Seed(a) => run::execute(g, ui, run::Mode::Seed, a),
        Command::Run(a) => run::execute(g, ui, run::Mode::Run, a),
        Command::Snapshot(a) => run::execute(g, ui, run::Mode::Snapshot, a),
        Command::Test(a) => run::execute(g, ui, run::Mode::Test, a),
        Command::Build(a) => run::execute(g, ui, run::Mode::Build, a),
        Command::Show {
            select,
            inline,
            limit,
            output,
        } => show::show(g, ui, select, inline.as_deref(), *limit, *output),
        Command::RunOperation { name, args } => show::run_operation(g, ui, name, args.as_deref()),
        Command::Extract(a) => extract::extract_cmd(g, ui, a),
        Command::Stage(a) => extract::stage_cmd(g, ui, a),
    }
}

pub fn project_dir(g: &GlobalArgs) -> PathBuf {
    g.project_dir.clone().unwrap_or_else(|| PathBuf::from("."))
}

/// `--vars` as a JSON object (YAML or JSON accepted).
pub fn cli_vars(g: &GlobalArgs) -> Result<serde_json::Map<String, Value>, Diagnostic> {
    let Some(text) = &g.vars else {
        return Ok(Default::default());
    };
    match project::yaml::parse(text, "--vars") {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Default::default()),
        Ok(_) | Err(_) => Err(Diagnostic::error(
            "E0401",
            format!("--vars must be a YAML or JSON mapping, got `{text}`"),
        )
        .hint("e.g. --vars '{bucket_minutes: 15, hashtag: HouseOfTheDragon}'")),
    }
}

/// A loaded, parsed project with its target.
pub struct Loaded {
    pub compiled: Compiled,
    pub target: profiles::Target,
}

pub fn load_target(g: &GlobalArgs, project: &Project) -> Result<profiles::Target, Failure> {
    let vars = cli_vars(g)?;
    let root = &project.root;
    let Some(path) = profiles::find_profiles(g.profiles_dir.as_deref(), root) else {
        return Err(Diagnostic::error("E0505", "no profiles.yml found")
            .hint("put profiles.yml in the project directory or ~/.dbt/, or pass --profiles-dir")
            .into());
    };
    let shown = shown_path(&path, root);
    let text = fs_err::read_to_string(&path).map_err(|_| {
        Diagnostic::error("E0505", format!("cannot read {shown}"))
            .hint("put profiles.yml in the project directory or ~/.dbt/, or pass --profiles-dir")
    })?;
    let profile_name = g
        .profile
        .clone()
        .or_else(|| project.config.profile.clone())
        .unwrap_or_else(|| project.config.name.clone());
    let render = |s: &str| crate::templating::render_config_string(s, &vars);
    Ok(profiles::resolve(
        &text,
        &shown,
        path.clone(),
        &profile_name,
        g.target.as_deref(),
        &render,
    )?)
}

/// A path as shown to the user: relative to the project when inside it.
pub fn shown_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

/// `target` as Jinja sees it: the target's fields without secrets.
pub fn target_value(t: &profiles::Target) -> Value {
    let mut v = serde_json::to_value(t.config.masked()).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("password");
        m.insert("name".into(), Value::from(t.target_name.clone()));
        m.insert("target_name".into(), Value::from(t.target_name.clone()));
        m.insert("profile_name".into(), Value::from(t.profile_name.clone()));
        m.insert("database".into(), Value::from(t.config.database()));
        m.entry("threads").or_insert(Value::from(1));
    }
    v
}

/// Load, render and name everything (phase one). `which` is the command name.
pub fn load(g: &GlobalArgs, ui: &Ui, which: &str, full_refresh: bool) -> Result<Loaded, Failure> {
    load_with(g, ui, which, full_refresh, false)
}

/// `load` for `run`/`build`, with `--empty`.
pub fn load_with(
    g: &GlobalArgs,
    ui: &Ui,
    which: &str,
    full_refresh: bool,
    empty: bool,
) -> Result<Loaded, Failure> {
    let root = project_dir(g);
    let started = Instant::now();
    let (mut project, warnings) = project::load(&root)?;
    if let Some(dir) = &g.target_path {
        project.config.target_path = dir.to_string_lossy().into_owned();
    }
    let target = load_target(g, &project)?;
    let settings = RenderSettings {
        engine: target.config.engine(),
        target: target_value(&target),
        cli_vars: cli_vars(g)?,
        full_refresh,
        which: which.to_string(),
        empty,
    };
    let compiled = compile::parse(project, settings, warnings)?;
    if g.warn_error && !compiled.warnings.0.is_empty() {
        let as_errors = compiled
            .warnings
            .0
            .iter()
            .cloned()
            .map(|mut d| {
                d.severity = crate::diagnostics::Severity::Error;
                d
            })
            .collect();
        return Err(Failure::User(Diagnostics(as_errors)));
    }
    ui.diagnostics(&compiled.warnings);
    let counts = count_kinds(&compiled);
    ui.info(format!(
        "Found {} in {:.2}s",
        counts,
        started.elapsed().as_secs_f64()
    ));
    Ok(Loaded { compiled, target })
}

fn count_kinds(c: &Compiled) -> String {
    use crate::project::node::ResourceType as R;
    let count = |rt: R| c.nodes().values().filter(|n| n.resource_type == rt).count();
    let parts = [
        (count(R::Model), "model"),
        (count(R::Test), "data test"),
        (count(R::Seed), "seed"),
        (count(R::Source), "source"),
        (
            c.project
                .macros
                .iter()
                .map(|m| m.names.len())
                .sum::<usize>(),
            "macro",
        ),
    ];
    // Kinds many projects lack are named only when present.
    let optional = [
        (count(R::Snapshot), "snapshot"),
        (count(R::UnitTest), "unit test"),
        (count(R::Exposure), "exposure"),
        (count(R::SemanticModel), "semantic model"),
        (count(R::Metric), "metric"),
        (count(R::SavedQuery), "saved query"),
        (c.project.groups.len(), "group"),
    ];
    parts
        .iter()
        .chain(optional.iter().filter(|(n, _)| *n > 0))
        .map(|(n, what)| match (*n, *what) {
            (1, _) => format!("1 {what}"),
            (n, "saved query") => format!("{n} saved queries"),
            (n, _) => format!("{n} {what}s"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn select_ids(
    c: &Compiled,
    s: &SelectArgs,
) -> Result<std::collections::BTreeSet<String>, Failure> {
    let previous = match &s.state {
        Some(dir) => Some(crate::state::PreviousState::load(dir, &c.project)?),
        None => None,
    };
    let check = |what: &str, n: &crate::project::node::Node| match &previous {
        Some(p) => p.check(what, n),
        None => Err("--state is required".to_string()),
    };
    let ctx = SelectContext {
        project_name: Some(c.project.name()),
        project_root: Some(&c.project.root),
        indirect_selection: s
            .indirect_selection
            .as_deref()
            .and_then(crate::graph::select::IndirectSelection::parse)
            .unwrap_or_default(),
        state: previous
            .as_ref()
            .map(|_| &check as crate::graph::select::StateCheck),
    };
    // As dbt: `--selector`, else `--select`/`--exclude`, else the
    // selectors.yml selector marked `default: true`, else everything.
    let selectors = crate::graph::selectors::Selectors::load(&c.project.root)?;
    let named = match (&s.selector, s.select.is_empty() && s.exclude.is_empty()) {
        (Some(name), given_none) => {
            if !given_none {
                eprintln!(
                    "warning: --select/--exclude are ignored: --selector {name} chooses the nodes"
                );
            }
            Some(name.as_str())
        }
        (None, true) => selectors.default_name(),
        (None, false) => None,
    };
    let selection = match named {
        Some(name) => {
            let spec = selectors.spec(name)?;
            select::select_spec(c.nodes(), &c.graph, &spec, &ctx)
        }
        None => select::select(c.nodes(), &c.graph, &s.select, &s.exclude, &ctx),
    }
    .map_err(|e| {
        Diagnostic::error("E0402", e.to_string()).hint("selectors: name, +name, name+, @name, tag:, path:, source:, resource_type:, config.materialized:, test_type:, test_name:")
    })?;
    for w in &selection.warnings {
        eprintln!("warning: {w}");
    }
    // `--resource-type` / `--exclude-resource-type` narrow what was selected.
    let types = |names: &[String]| -> Result<Vec<ResourceType>, Failure> {
        let mut out = Vec::new();
        for t in names
            .iter()
            .filter(|t| !matches!(t.as_str(), "all" | "default"))
        {
            out.push(ResourceType::parse(t).ok_or_else(|| {
                Diagnostic::error("E0403", format!("unknown resource type `{t}`")).hint(
                    "one of: model, seed, snapshot, test, unit_test, source, exposure, analysis",
                )
            })?);
        }
        Ok(out)
    };
    let (only, except) = (types(&s.resource_type)?, types(&s.exclude_resource_type)?);
    Ok(selection
        .ids
        .into_iter()
        .filter(|id| {
            c.nodes().get(id).is_some_and(|n| {
                (only.is_empty() || only.contains(&n.resource_type))
                    && !except.contains(&n.resource_type)
            })
        })
        .collect())
}

/// `target/manifest.json`; `compiled` says whether nodes were compiled
/// (dbt's `parse` writes none of their compiled code).
fn write_manifest(c: &Compiled, compiled: bool) -> Result<(), Failure> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let id = uuid::Uuid::new_v4().to_string();
    let m = crate::artifacts::manifest(c, &id, &now);
    let m = if compiled { m } else { m.parsed_only() };
    m.write(&c.project.target_dir().join("manifest.json"))?;
    Ok(())
}

fn parse_cmd(g: &GlobalArgs, ui: &Ui) -> Result<Exit, Failure> {
    // As `dbt parse`: the nodes are rendered (configs, refs, the graph),
    // not compiled; `compile` writes their compiled code.
    let loaded = load(g, ui, "parse", false)?;
    write_manifest(&loaded.compiled, false)?;
    ui.info(format!(
        "Wrote {}",
        shown_path(
            &loaded.compiled.project.target_dir().join("manifest.json"),
            &loaded.compiled.project.root
        )
    ));
    exit_without_freeing(loaded);
    Ok(0)
}

/// Hand a large loaded project back to the OS at process exit instead of
/// freeing it node by node (a tenth of `parse` at thousands of models).
/// Only for commands that return straight after.
fn exit_without_freeing<T>(big: T) {
    std::mem::forget(big);
}

fn compile_cmd(
    g: &GlobalArgs,
    ui: &Ui,
    s: &SelectArgs,
    inline: Option<&str>,
) -> Result<Exit, Failure> {
    let mut loaded = load(g, ui, "compile", false)?;
    let c = &mut loaded.compiled;
    if let Some(sql) = inline {
        c.renderer.set_graph(&c.project.nodes);
        let r = c
            .renderer
            .render("<inline>", sql, None, true, false, None)?;
        let ids: std::collections::BTreeSet<String> = r
            .refs
            .iter()
            .filter_map(|x| c.renderer.resolver.by_name.get(&x.name).cloned())
            .collect();
        compile::compile_sql(c, Some(&ids))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", r.output.trim_end())?;
        return Ok(0);
    }
    let target_dir = c.project.target_dir();
    // The cache of what target/compiled/ holds loads while nodes compile.
    let (cache, compiled) = rayon::join(
        || compiled_files::CompileCache::load(&target_dir),
        || -> Result<_, Failure> {
            let ids = select_ids(c, s)?;
            let connection = connect_for_dynamic(c, &loaded.target, &ids, ui);
            compile::compile_sql_with(c, Some(&ids), connection)?;
            Ok(ids)
        },
    );
    let ids = compiled?;
    let root = c.project.root.clone();
    let base = target_dir.join("compiled");
    let shown_base = shown_path(&base, &root);
    // Every compiled node's file; tests go under their YAML file's path.
    // Tens of thousands of paths: made on the pool.
    let selected: Vec<&mut crate::project::node::Node> = c
        .project
        .nodes
        .iter_mut()
        .filter(|(id, n)| n.compiled_code.is_some() && ids.contains(*id))
        .map(|(_, n)| n)
        .collect();
    selected.into_par_iter().for_each(|n| {
        n.compiled_path = Some(format!(
            "{shown_base}/{}/{}",
            n.package_name,
            compiled_files::rel_path(n)
        ));
    });
    let c = &*c;
    let jobs: Vec<compiled_files::Job> = c
        .project
        .nodes
        .par_iter()
        .filter(|(id, n)| n.compiled_code.is_some() && ids.contains(*id))
        .map(|(_, n)| {
            compiled_files::Job::new(
                &target_dir,
                n,
                n.compiled_code.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    // The SQL check, the files and the manifest are independent: overlap them.
    let ((check, passed), (written, manifest)) = rayon::join(
        || check_sql(c, &ids, &cache),
        || {
            rayon::join(
                || compiled_files::write_all(&jobs, &cache),
                || write_manifest(c, true),
            )
        },
    );
    manifest?;
    let written = written?;
    let count = written.len();
    cache.save(&target_dir, written, passed)?;
    ui.info(format!(
        "Compiled {count} nodes into {shown_base}/{}",
        c.project.name()
    ));
    exit_without_freeing(loaded);
    if check.has_errors() {
        return Err(check.into());
    }
    Ok(0)
}

/// A connection to the target for rendering with `execute` true, with
/// dbt's `graph` filled when some template reads it.
pub fn connect_renderer(
    c: &Compiled,
    target: &profiles::Target,
) -> Result<compile::SharedConnection, String> {
    let conn = crate::warehouse::open(&target.config, &c.project.root)
        .and_then(|w| w.connect())
        .map_err(|e| e.to_string())?;
    if run::uses_graph(c) {
        c.renderer.set_graph(&c.project.nodes);
    }
    Ok(std::sync::Arc::new(std::sync::Mutex::new(conn)))
}

/// dbt's `compile` connects so that nodes whose SQL depends on the
/// warehouse (`run_query`, `adapter.get_columns_in_relation`, …) compile to
/// what would run. A connection is opened only when the selection has such
/// nodes; when the warehouse cannot be reached they compile as at parse
/// time, and a line says so.
fn connect_for_dynamic(
    c: &Compiled,
    target: &profiles::Target,
    ids: &std::collections::BTreeSet<String>,
    ui: &Ui,
) -> Option<compile::SharedConnection> {
    let dynamic = ids
        .iter()
        .filter_map(|id| c.project.nodes.get(id))
        .filter(|n| n.config.contains_key("__dynamic"))
        .count();
    if dynamic == 0 {
        return None;
    }
    match connect_renderer(c, target) {
        Ok(conn) => Some(conn),
        Err(e) => {
            ui.info(format!(
                "warning: {dynamic} node(s) query the warehouse to compile, which is unreachable ({e}); they compile as at parse time"
            ));
            None
        }
    }
}

/// Static SQL check of compiled models: syntax errors before any warehouse
/// is touched, pointing at the compiled file. SQL that `cache` saw pass is
/// not parsed again; returns the errors and the models that passed.
pub fn check_sql(
    c: &Compiled,
    ids: &std::collections::BTreeSet<String>,
    cache: &compiled_files::CompileCache,
) -> (Diagnostics, Vec<(String, u64)>) {
    let engine = c.renderer.settings.engine;
    let dialect = format!("{engine:?}");
    let models: Vec<(&crate::project::node::Node, &str)> = ids
        .iter()
        .filter_map(|id| c.project.nodes.get(id))
        .filter(|n| n.resource_type == crate::project::node::ResourceType::Model)
        // SQL that depends on the warehouse is only final when it runs.
        .filter(|n| !n.config.contains_key("__dynamic"))
        // An ephemeral model never runs on its own: it is checked inside
        // the models it is a CTE of (dbt projects keep placeholder SQL in
        // ephemeral models that are only there for the graph).
        .filter(|n| n.materialized() != "ephemeral")
        .filter_map(|n| Some((n, n.compiled_code.as_deref()?)))
        .collect();
    // Parsing every model's SQL is the bulk of `compile`: spread it out.
    let verdicts: Vec<Result<(String, u64), Diagnostic>> = models
        .par_iter()
        .map(|(n, sql)| {
            let key = compiled_files::check_key(&dialect, sql);
            if cache.passed_check(&n.unique_id, key) {
                return Ok((n.unique_id.clone(), key));
            }
            let Err(e) = crate::sql::check::validate(sql, engine) else {
                return Ok((n.unique_id.clone(), key));
            };
            let compiled = format!(
                "{}/compiled/{}/{}",
                c.project.config.target_path,
                n.package_name,
                compiled_files::rel_path(n)
            );
            Err(Diagnostic::error(
                "E0601",
                format!("SQL syntax error in model `{}`: {}", n.name, e.message),
            )
            .at(compiled, Some(e.line))
            .col(Some(e.column))
            .hint(format!("the model's source is {}", n.original_file_path)))
        })
        .collect();
    let mut errors = Diagnostics::default();
    let mut passed = Vec::new();
    for v in verdicts {
        match v {
            Ok(p) => passed.push(p),
            Err(d) => errors.push(d),
        }
    }
    (errors, passed)
}

fn clean(g: &GlobalArgs, ui: &Ui) -> Result<Exit, Failure> {
    let root = project_dir(g);
    let text = fs_err::read_to_string(root.join(project::config::PROJECT_FILE)).map_err(|_| {
        Diagnostic::error("E0100", format!("no dbt_project.yml in {}", root.display()))
    })?;
    let (cfg, _) = project::config::ProjectConfig::parse(&text)?;
    for t in &cfg.clean_targets {
        let p = root.join(t);
        // Never delete outside the project.
        let canon_root = fs_err::canonicalize(&root)?;
        if let Ok(canon) = fs_err::canonicalize(&p) {
            if !canon.starts_with(&canon_root) || canon == canon_root {
                return Err(Diagnostic::error(
                    "E0106",
                    format!("refusing to clean `{t}`: it is not inside the project"),
                )
                .at(
                    project::config::PROJECT_FILE,
                    project::yaml::line_of_key(&text, "clean-targets", 1),
                )
                .into());
            }
            fs_err::remove_dir_all(&canon)?;
            ui.info(format!("Cleaned {t}/"));
        }
    }
    Ok(0)
}
