//! `seed`, `run`, `test`, `build`: execute the selected nodes in a
//! warehouse over `--threads` workers, in DAG order. A failing node skips
//! its descendants and the rest continues (`--fail-fast` stops instead); in
//! `build`, a model's tests run right after it and a failing error-severity
//! test skips everything downstream of that model. Writes run_results.json.
//!
//! `build` starts at the API: every selected source that declares an
//! extraction is one step of the same DAG, `source.<package>.<source>`
//! (the common prefix of its tables' unique ids), which extracts the source
//! into the lake and stages it into its raw tables, once for all its tables.
//! Its tests and models wait for it; a failed extraction skips them while
//! unrelated seeds and models go on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use super::extract::{extract_and_stage, sources_among, ExtractSource};
use super::{load_with, select_ids, shown_path, Exit, Failure, Ui};
use crate::cli::{GlobalArgs, RunArgs};
use crate::compile::{self, Compiled};
use crate::compiled_files;
use crate::diagnostics::Diagnostic;
use crate::project::node::{Node, ResourceType};
use crate::templating::Renderer;
use crate::warehouse::contract::Contract;
use crate::warehouse::materialize::{self, Materialization, ModelBuild, OnSchemaChange};
use crate::warehouse::post_build::{Comments, Index};
use crate::warehouse::{
    adapter, seed, snapshot, Connection, Engine, Relation, TargetConfig, Warehouse,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Seed,
    Run,
    Snapshot,
    Test,
    Build,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Seed => "seed",
            Mode::Run => "run",
            Mode::Snapshot => "snapshot",
            Mode::Test => "test",
            Mode::Build => "build",
        }
    }

    fn covers(self, rt: ResourceType) -> bool {
        match self {
            Mode::Seed => rt == ResourceType::Seed,
            Mode::Run => rt == ResourceType::Model,
            Mode::Snapshot => rt == ResourceType::Snapshot,
            Mode::Test => matches!(rt, ResourceType::Test | ResourceType::UnitTest),
            Mode::Build => matches!(
                rt,
                ResourceType::Seed
                    | ResourceType::Model
                    | ResourceType::Snapshot
                    | ResourceType::Test
                    | ResourceType::UnitTest
            ),
        }
    }
}

/// How one node ended, with dbt's status words.
#[derive(Debug, Clone)]
struct NodeResult {
    unique_id: String,
    status: &'static str,
    message: String,
    rows_affected: Option<u64>,
    failures: Option<u64>,
    seconds: f64,
    thread: usize,
    started_at: String,
    completed_at: String,
    /// The SQL that ran, when it was rendered at run time (incremental and
    /// warehouse-dependent nodes); the compiled SQL otherwise.
    sql: Option<String>,
}

impl NodeResult {
    fn failed(&self) -> bool {
        matches!(self.status, "error" | "fail")
    }

    /// dbt's `timing`: a `compile` and an `execute` step for a node that
    /// ran (sluice compiles before the run, so its compile step is the
    /// instant the node started), none for a skipped one.
    fn timing(&self) -> Value {
        if self.status == "skipped" {
            return json!([]);
        }
        json!([
            {"name": "compile", "started_at": self.started_at, "completed_at": self.started_at},
            {"name": "execute", "started_at": self.started_at, "completed_at": self.completed_at},
        ])
    }

    fn thread_id(&self) -> String {
        format!("Thread-{} (worker)", self.thread + 1)
    }

    fn adapter_response(&self) -> Value {
        json!({"_message": self.message, "rows_affected": self.rows_affected})
    }
}

pub fn execute(g: &GlobalArgs, ui: &Ui, mode: Mode, a: &RunArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    let loaded = load_with(g, ui, mode.name(), a.full_refresh, a.empty)?;
    let c = loaded.compiled;
    let target = loaded.target;
    let chosen = select_ids(&c, &a.select)?;
    // A source's extraction runs when one of its tables is selected
    // (`build`, `build -s +model`, `build -s source:twitter+`).
    let extractions = if mode == Mode::Build {
        sources_among(&c, &chosen)
    } else {
        Vec::new()
    };
    let selected: BTreeSet<String> = chosen
        .into_iter()
        .filter(|id| {
            c.nodes()
                .get(id)
                .is_some_and(|n| mode.covers(n.resource_type) && n.materialized() != "ephemeral")
        })
        .collect();
    execute_selected(c, target, mode, a, ui, selected, extractions, started)
}

/// Re-run what failed or was skipped last time (dbt's `retry`), with the
/// command recorded in run_results.json.
pub fn retry(g: &GlobalArgs, ui: &Ui, a: &RunArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    let root = super::project_dir(g);
    let (project, _) = crate::project::load(&root)?;
    let path = project.target_dir().join("run_results.json");
    let text = fs_err::read_to_string(&path).map_err(|_| {
        Diagnostic::error(
            "E0704",
            "no previous run to retry: target/run_results.json is missing",
        )
        .hint("run `sluice build` (or run/test/seed) first")
    })?;
    let previous: Value = serde_json::from_str(&text)
        .map_err(|e| Diagnostic::error("E0704", format!("run_results.json: {e}")))?;
    let mode = match previous["args"]["which"].as_str() {
        Some("seed") => Mode::Seed,
        Some("run") => Mode::Run,
        Some("snapshot") => Mode::Snapshot,
        Some("test") => Mode::Test,
        _ => Mode::Build,
    };
    let again: BTreeSet<String> = previous["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            matches!(
                r["status"].as_str(),
                Some("error" | "fail" | "skipped" | "runtime error")
            )
        })
        .filter_map(|r| r["unique_id"].as_str().map(str::to_string))
        .collect();
    let loaded = load_with(g, ui, mode.name(), a.full_refresh, a.empty)?;
    let c = &loaded.compiled;
    // A failed or skipped extraction step is retried as a whole.
    let extractions: Vec<ExtractSource> = if mode == Mode::Build {
        sources_among(c, c.nodes().keys())
            .into_iter()
            .filter(|s| again.contains(&s.step_id))
            .collect()
    } else {
        Vec::new()
    };
    let selected: BTreeSet<String> = again
        .into_iter()
        .filter(|id| c.nodes().contains_key(id))
        .collect();
    if selected.is_empty() && extractions.is_empty() {
        ui.info("Nothing to retry: the last run had no failures");
        return Ok(0);
    }
    execute_selected(
        loaded.compiled,
        loaded.target,
        mode,
        a,
        ui,
        selected,
        extractions,
        started,
    )
}

#[allow(clippy::too_many_arguments)]
fn execute_selected(
    mut c: Compiled,
    target: crate::project::profiles::Target,
    mode: Mode,
    a: &RunArgs,
    ui: &Ui,
    selected: BTreeSet<String>,
    extractions: Vec<ExtractSource>,
    started: Instant,
) -> Result<Exit, Failure> {
    if selected.is_empty() && extractions.is_empty() {
        ui.info("Nothing to do: the selection matched no nodes");
        return Ok(0);
    }
    let engine = target.config.engine();
    let warehouse = crate::warehouse::open(&target.config, &c.project.root).map_err(|e| {
        Diagnostic::error("E0701", e.to_string())
            .hint("run `sluice debug` to check the profile and connection")
    })?;
    for w in warehouse.warnings() {
        ui.info(format!("warning: {w}"));
    }
    // dbt-duckdb's `apply_grants` warns once and grants nothing.
    let grants = |id: &String| {
        c.nodes()
            .get(id)
            .and_then(|n| n.config.get("grants"))
            .is_some_and(|g| g.as_object().is_some_and(|m| !m.is_empty()))
    };
    if engine == Engine::DuckDb && selected.iter().any(grants) {
        ui.info("warning: Grants for relations are not supported by DuckDB");
    }
    if a.defer {
        defer_to_state(&c, &selected, a, warehouse.as_ref(), engine)?;
    }
    compile::compile_sql(&mut c, None)?;
    if uses_graph(&c) {
        c.renderer.set_graph(&c.project.nodes);
    }
    // Syntax errors are caught before anything is built.
    let cache = crate::compiled_files::CompileCache::load(&c.project.target_dir());
    let (static_errors, passed) = super::check_sql(&c, &selected, &cache);
    if static_errors.has_errors() {
        return Err(static_errors.into());
    }
    // Remembering what passed only saves work: a cache that cannot be
    // written is no reason to stop a run.
    let _ = cache.save(&c.project.target_dir(), Vec::new(), passed);
    let threads = a.threads.or(target.config.threads()).unwrap_or(1).max(1);

    // Schemas first, once.
    {
        let mut conn = warehouse
            .connect()
            .map_err(|e| Diagnostic::error("E0701", e.to_string()))?;
        let mut schemas: BTreeSet<(Option<String>, String)> = BTreeSet::new();
        for id in &selected {
            let n = &c.nodes()[id];
            if n.resource_type != ResourceType::Test {
                schemas.insert((n.database.clone(), n.schema.clone()));
            }
        }
        for (db, schema) in schemas {
            adapter::create_schema_if_missing(conn.as_mut(), engine, db.as_deref(), &schema)
                .map_err(|e| {
                    Diagnostic::error("E0702", format!("cannot create schema `{schema}`: {e}"))
                })?;
        }
        // Hooks run with the connection, so macros they call can query.
        let conn: SharedConn = Arc::new(Mutex::new(conn));
        for hook in project_hooks(&c, "on-run-start") {
            let Err(e) = run_project_hook(&c, &hook, &conn, minijinja::Value::UNDEFINED) else {
                continue;
            };
            let message = format!(
                "on-run-start hook #{} of `{}` failed: {e}",
                hook.index + 1,
                hook.package
            );
            // A package's hook (monitoring, artifact upload) that sluice
            // cannot run does not stop the project's run; the project's does.
            if hook.package != c.project.name() {
                ui.info(format!("warning: {message}"));
                continue;
            }
            return Err(Diagnostic::error("E0703", message)
                .at(hook.file.clone(), None)
                .into());
        }
    }

    let plan = Plan::new(&c, &selected, extractions, mode);
    let cancelled = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(warehouse.clone(), cancelled.clone());
    ui.info(format!(
        "Running with {threads} thread{} on {} target `{}`",
        if threads == 1 { "" } else { "s" },
        engine_name(engine),
        target.target_name
    ));
    let results = run_plan(
        &c,
        &plan,
        warehouse.clone(),
        &target.config,
        threads,
        a,
        ui,
        &cancelled,
    );

    let failed_hooks = run_end_hooks(&c, &results, warehouse.as_ref(), ui);
    write_artifacts(&c, &results, started.elapsed().as_secs_f64(), mode)?;
    let seconds = started.elapsed().as_secs_f64();
    summarize(ui, &results, seconds, &c, &plan, &failed_hooks);
    // (The Ctrl-C watcher keeps the warehouse alive to the end, so it is
    // never closed: checkpoint what the run wrote instead.)
    warehouse.checkpoint();
    let failed = !failed_hooks.is_empty()
        || results.iter().any(NodeResult::failed)
        || cancelled.load(Ordering::SeqCst);
    Ok(if failed { 1 } else { 0 })
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::DuckDb => "duckdb",
        Engine::Postgres => "postgres",
    }
}

/// Cancel in-flight queries on Ctrl-C.
fn watch_ctrl_c(warehouse: Arc<dyn Warehouse>, cancelled: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Cancelling: waiting for in-flight queries to stop");
                cancelled.store(true, Ordering::SeqCst);
                warehouse.cancel_all();
            }
        });
    });
}

/// Run the `on-run-end` hooks with dbt's context for them: `results` (each
/// node's `status`, `message`, `execution_time`, `failures` and `node`),
/// `schemas` and `database_schemas` (where this run built). Returns the
/// project's own hooks that failed, named for the summary (each failure is
/// printed as it happens).
fn run_end_hooks(
    c: &Compiled,
    results: &[NodeResult],
    warehouse: &dyn Warehouse,
    ui: &Ui,
) -> Vec<String> {
    let hooks = project_hooks(c, "on-run-end");
    if hooks.is_empty() {
        return Vec::new();
    }
    let mut built: BTreeSet<(String, String)> = BTreeSet::new();
    let results_value: Vec<minijinja::Value> = results
        .iter()
        .filter_map(|r| {
            let n = c.nodes().get(&r.unique_id)?;
            if r.status == "success"
                && matches!(
                    n.resource_type,
                    ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
                )
            {
                built.insert((n.database.clone().unwrap_or_default(), n.schema.clone()));
            }
            // The node as the manifest writes it, its config an object
            // whose missing keys are `none` (dbt hands hooks node objects).
            let config = minijinja::Value::from_serialize(crate::artifacts::ManifestConfig(n));
            let node = minijinja::context! {
                config => minijinja::Value::from_object(
                    crate::templating::objects::NodeConfigObj(config),
                ),
                ..minijinja::Value::from_serialize(crate::artifacts::ManifestNode(n, true))
            };
            let result = minijinja::Value::from_serialize(json!({
                "status": r.status,
                "message": r.message,
                "execution_time": r.seconds,
                "failures": r.failures,
                "timing": r.timing(),
                "thread_id": r.thread_id(),
                "adapter_response": r.adapter_response(),
            }));
            Some(minijinja::context! { node, ..result })
        })
        .collect();
    let schemas: BTreeSet<&str> = built.iter().map(|(_, s)| s.as_str()).collect();
    let extra = minijinja::context! {
        results => results_value,
        schemas => minijinja::Value::from_serialize(&schemas),
        database_schemas => minijinja::Value::from_serialize(&built),
    };
    let conn = match warehouse.connect() {
        Ok(conn) => Arc::new(Mutex::new(conn)),
        Err(e) => {
            ui.eprint(format!("error: on-run-end hooks not run: {e}"));
            return vec!["on-run-end hooks (no connection)".to_string()];
        }
    };
    let mut failed = Vec::new();
    for hook in &hooks {
        if let Err(e) = run_project_hook(c, hook, &conn, extra.clone()) {
            let message = format!(
                "on-run-end hook #{} of `{}` failed: {e}",
                hook.index + 1,
                hook.package
            );
            // As for `on-run-start`: only the project's own hooks fail the run.
            if hook.package == c.project.name() {
                ui.eprint(format!("error: {message}"));
                failed.push(format!(
                    "on-run-end hook #{} ({})",
                    hook.index + 1,
                    hook.file
                ));
            } else {
                ui.eprint(format!("warning: {message}"));
            }
        }
    }
    failed
}

/// One `on-run-start` / `on-run-end` hook of the project or of a package.
struct ProjectHook {
    package: String,
    /// Its project file (`dbt_project.yml` or the package's).
    file: String,
    /// Its place in its project's list.
    index: usize,
    /// `on-run-start` or `on-run-end`.
    kind: &'static str,
    sql: String,
}

/// The hooks of a kind in dbt's order: installed packages' first, by
/// package name, then the root project's, each in its list's order.
fn project_hooks(c: &Compiled, kind: &'static str) -> Vec<ProjectHook> {
    let of = |config: &crate::project::config::ProjectConfig| match kind {
        "on-run-start" => config.on_run_start.clone(),
        _ => config.on_run_end.clone(),
    };
    let mut packages: Vec<_> = c.project.packages.iter().collect();
    packages.sort_by(|a, b| a.config.name.cmp(&b.config.name));
    let mut hooks = Vec::new();
    let projects = packages
        .into_iter()
        .map(|p| {
            (
                p.config.name.clone(),
                format!("{}/dbt_project.yml", p.base),
                of(&p.config),
            )
        })
        .chain(std::iter::once((
            c.project.name().to_string(),
            "dbt_project.yml".to_string(),
            of(&c.project.config),
        )));
    for (package, file, list) in projects {
        for (index, sql) in list.into_iter().enumerate() {
            if !sql.trim().is_empty() {
                hooks.push(ProjectHook {
                    package: package.clone(),
                    file: file.clone(),
                    index,
                    kind,
                    sql,
                });
            }
        }
    }
    hooks
}

/// Render a project hook as dbt does, as an operation of its project (a
/// package's hook calls the package's macros bare and reads its vars), with
/// the connection, then run what it renders to.
fn run_project_hook(
    c: &Compiled,
    hook: &ProjectHook,
    conn: &SharedConn,
    extra: minijinja::Value,
) -> Result<(), String> {
    let node = Node {
        unique_id: format!(
            "operation.{0}.{0}-{1}-{2}",
            hook.package, hook.kind, hook.index
        ),
        name: format!("{}-{}-{}", hook.package, hook.kind, hook.index),
        package_name: hook.package.clone(),
        original_file_path: hook.file.clone(),
        ..Node::default()
    };
    let r = c
        .renderer
        .render_with(
            &hook.file,
            &hook.sql,
            Some(&node),
            true,
            false,
            Some(conn.clone()),
            extra,
        )
        .map_err(|d| d.to_string())?;
    for l in &r.logs {
        eprintln!("{l}");
    }
    let sql = c.renderer.substitute(&r.output);
    if sql.trim().is_empty() {
        return Ok(());
    }
    lock(conn)
        .execute(&sql)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The steps to run (selected nodes, and sources to extract) and what each waits for.
struct Plan {
    order: Vec<String>,
    waits_for: HashMap<String, BTreeSet<String>>,
    /// Everything that must be skipped when a step fails.
    blocks: HashMap<String, BTreeSet<String>>,
    /// Extraction steps by step id.
    extractions: BTreeMap<String, ExtractSource>,
}

/// Which step of the plan a graph node belongs to: selected nodes are their
/// own step; the tables of a source being extracted belong to its step.
struct Steps<'a> {
    selected: &'a BTreeSet<String>,
    /// Source table id → extraction step id.
    table_step: HashMap<String, String>,
}

impl Steps<'_> {
    fn of<'s>(&'s self, id: &'s str) -> Option<&'s str> {
        if self.selected.contains(id) {
            Some(id)
        } else {
            self.table_step.get(id).map(String::as_str)
        }
    }
}

impl Plan {
    fn new(
        c: &Compiled,
        selected: &BTreeSet<String>,
        extractions: Vec<ExtractSource>,
        mode: Mode,
    ) -> Plan {
        let steps = Steps {
            selected,
            table_step: extractions
                .iter()
                .flat_map(|s| s.tables.iter().map(|t| (t.clone(), s.step_id.clone())))
                .collect(),
        };
        // Sources have no parents: extraction steps come first.
        let order: Vec<String> = extractions
            .iter()
            .map(|s| s.step_id.clone())
            .chain(
                c.graph
                    .topo_order()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|id| selected.contains(*id))
                    .map(str::to_string),
            )
            .collect();
        let extractions: BTreeMap<String, ExtractSource> = extractions
            .into_iter()
            .map(|s| (s.step_id.clone(), s))
            .collect();
        let mut waits_for: HashMap<String, BTreeSet<String>> = HashMap::new();
        for id in &order {
            let parents = if extractions.contains_key(id) {
                BTreeSet::new()
            } else {
                nearest_selected(c, id, &steps, true)
            };
            waits_for.insert(id.clone(), parents);
        }
        // A unit test runs after its model's inputs and before the model
        // (dbt's build order): it waits for the model's parents, and the
        // model for it, so a failing unit test skips the model.
        for ut in order.iter().filter(|id| {
            c.nodes()
                .get(*id)
                .is_some_and(|n| n.resource_type == ResourceType::UnitTest)
        }) {
            let Some(model) = c.nodes()[ut].depends_on.nodes.first() else {
                continue;
            };
            waits_for.insert(ut.clone(), nearest_selected(c, model, &steps, true));
            if let Some(w) = waits_for.get_mut(model) {
                w.insert(ut.clone());
            }
        }
        if mode == Mode::Build {
            // The children of a tested model wait for its tests, so a failing
            // test skips what is built on that model. A child that is itself an
            // input of the test (relationships) or upstream of one cannot wait.
            for t in order.iter().filter(|id| {
                c.nodes()
                    .get(*id)
                    .is_some_and(|n| n.resource_type == ResourceType::Test)
            }) {
                let tested = &c.nodes()[t].depends_on.nodes;
                let upstream: std::collections::HashSet<&str> = if tested.len() > 1 {
                    tested
                        .iter()
                        .flat_map(|p| c.graph.ancestors(p, None))
                        .collect()
                } else {
                    Default::default()
                };
                for p in tested {
                    for child in nearest_selected(c, p, &steps, false) {
                        let is_test = c.nodes().get(&child).is_some_and(|n| {
                            matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest)
                        });
                        if is_test || tested.contains(&child) || upstream.contains(child.as_str()) {
                            continue;
                        }
                        if let Some(w) = waits_for.get_mut(&child) {
                            w.insert(t.clone());
                        }
                    }
                }
            }
        }
        let mut blocks: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (id, ws) in &waits_for {
            for w in ws {
                blocks.entry(w.clone()).or_default().insert(id.clone());
            }
        }
        Plan {
            order,
            waits_for,
            blocks,
            extractions,
        }
    }
}

/// The closest steps among the parents (`up`) or children of `id`, looking
/// through nodes that are not part of the plan.
fn nearest_selected(c: &Compiled, id: &str, steps: &Steps, up: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen = std::collections::HashSet::new();
    let step = |x: &str| {
        if up {
            c.graph.parents(x)
        } else {
            c.graph.children(x)
        }
    };
    let mut frontier: Vec<&str> = step(id);
    while let Some(n) = frontier.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let Some(step) = steps.of(n) {
            out.insert(step.to_string());
        } else {
            frontier.extend(step(n));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn run_plan(
    c: &Compiled,
    plan: &Plan,
    warehouse: Arc<dyn Warehouse>,
    target: &TargetConfig,
    threads: usize,
    a: &RunArgs,
    ui: &Ui,
    cancelled: &AtomicBool,
) -> Vec<NodeResult> {
    let total = plan.order.len();
    let mut remaining: HashMap<&str, usize> = plan
        .order
        .iter()
        .map(|id| (id.as_str(), plan.waits_for[id].len()))
        .collect();
    let mut ready: Vec<&str> = plan
        .order
        .iter()
        .filter(|id| remaining[id.as_str()] == 0)
        .map(String::as_str)
        .rev()
        .collect();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut results: Vec<NodeResult> = Vec::new();
    let index: HashMap<&str, usize> = plan
        .order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i + 1))
        .collect();
    let stop = &AtomicBool::new(false);
    let engine = target.engine();

    std::thread::scope(|s| {
        let (work_tx, work_rx) = mpsc::channel::<String>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::channel::<NodeResult>();
        for thread in 0..threads {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let warehouse = warehouse.clone();
            // Named as dbt names its worker threads: templates read the
            // name as `thread_id` (elementary keys its state by it).
            let worker =
                std::thread::Builder::new().name(format!("Thread-{} (worker)", thread + 1));
            let spawned = worker.spawn_scoped(s, move || {
                let conn = warehouse.connect().map(|c| Arc::new(Mutex::new(c)));
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(id) = next else { break };
                    // Work queued before a --fail-fast stop or Ctrl-C is skipped.
                    if stop.load(Ordering::SeqCst) || cancelled.load(Ordering::SeqCst) {
                        if done_tx.send(skipped_result(id, stop)).is_err() {
                            break;
                        }
                        continue;
                    }
                    let started_at = now();
                    let t0 = Instant::now();
                    let outcome = match (&conn, plan.extractions.get(&id)) {
                        (Err(e), _) => Err(format!("could not connect: {e}")),
                        (Ok(conn), Some(src)) => {
                            extract_and_stage(src, target, &c.project.root, lock(conn).as_mut(), ui)
                                .map(|o| ok("success", o.message, Some(o.rows), None))
                                .map_err(|d| d.to_string())
                        }
                        (Ok(conn), None) => run_node(c, &c.nodes()[&id], conn, engine, a),
                    };
                    let mut r = match outcome {
                        Ok(r) => r,
                        Err(message) => NodeResult {
                            unique_id: id.clone(),
                            status: "error",
                            message,
                            rows_affected: None,
                            failures: None,
                            seconds: 0.0,
                            thread,
                            started_at: String::new(),
                            completed_at: String::new(),
                            sql: None,
                        },
                    };
                    r.unique_id = id;
                    r.seconds = t0.elapsed().as_secs_f64();
                    r.thread = thread;
                    r.started_at = started_at;
                    r.completed_at = now();
                    if r.failed() && a.fail_fast {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if done_tx.send(r).is_err() {
                        break;
                    }
                }
            });
            if let Err(e) = spawned {
                // Nothing is left unbuilt quietly: the run stops and fails.
                eprintln!("error: could not start worker thread {}: {e}", thread + 1);
                cancelled.store(true, Ordering::SeqCst);
            }
        }
        drop(done_tx);
        let mut in_flight = 0usize;
        let mut finished = 0usize;
        loop {
            while let Some(id) = ready.pop() {
                if stop.load(Ordering::SeqCst) || cancelled.load(Ordering::SeqCst) {
                    skipped.insert(id.to_string());
                    continue;
                }
                if work_tx.send(id.to_string()).is_ok() {
                    in_flight += 1;
                }
            }
            if in_flight == 0 {
                break;
            }
            let Ok(r) = done_rx.recv() else { break };
            in_flight -= 1;
            finished += 1;
            print_status(
                ui,
                c,
                plan,
                &r,
                index.get(r.unique_id.as_str()).copied().unwrap_or(finished),
                total,
            );
            let failed = r.failed();
            if failed && a.fail_fast {
                stop.store(true, Ordering::SeqCst);
            }
            let blocked_by_failure = failed;
            for child in plan.blocks.get(&r.unique_id).into_iter().flatten() {
                if blocked_by_failure {
                    skip_with_descendants(child, plan, &mut skipped);
                }
                if let Some(n) = remaining.get_mut(child.as_str()) {
                    *n = n.saturating_sub(1);
                    if *n == 0 && !skipped.contains(child) {
                        ready.push(child.as_str());
                    }
                }
            }
            results.push(r);
        }
        drop(work_tx);
    });
    for id in &plan.order {
        if !results.iter().any(|r| &r.unique_id == id) {
            let r = skipped_result(id.clone(), stop);
            print_status(ui, c, plan, &r, index[id.as_str()], total);
            results.push(r);
        }
    }
    results
}

/// A step that did not run: after a --fail-fast stop, or below a failure.
fn skipped_result(unique_id: String, stop: &AtomicBool) -> NodeResult {
    let message = if stop.load(Ordering::SeqCst) {
        "skipped: --fail-fast"
    } else {
        "skipped: an upstream node failed"
    };
    NodeResult {
        unique_id,
        ..ok("skipped", message.into(), None, None)
    }
}

fn skip_with_descendants(id: &str, plan: &Plan, skipped: &mut BTreeSet<String>) {
    if !skipped.insert(id.to_string()) {
        return;
    }
    for child in plan.blocks.get(id).into_iter().flatten() {
        skip_with_descendants(child, plan, skipped);
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn relation_of(n: &Node) -> Relation {
    Relation {
        database: n.database.clone(),
        schema: n.schema.clone(),
        identifier: n.alias.clone(),
    }
}

fn ok(
    status: &'static str,
    message: String,
    rows: Option<u64>,
    failures: Option<u64>,
) -> NodeResult {
    NodeResult {
        unique_id: String::new(),
        status,
        message,
        rows_affected: rows,
        failures,
        seconds: 0.0,
        thread: 0,
        started_at: String::new(),
        completed_at: String::new(),
        sql: None,
    }
}

type SharedConn = Arc<Mutex<Box<dyn Connection>>>;

fn run_node(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    engine: Engine,
    a: &RunArgs,
) -> Result<NodeResult, String> {
    match n.resource_type {
        ResourceType::Seed => {
            // dbt's seed materialization runs the seed's hooks around the load.
            run_hooks_now(c, n, conn, (&n.hooks("pre-hook"), "pre-hook"), false)?;
            let path = c.project.root.join(&n.original_file_path);
            let column_types: BTreeMap<String, String> = n
                .config
                .get("column_types")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let full_refresh = a.full_refresh
                || n.config
                    .get("full_refresh")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            let relation = relation_of(n);
            let grants = grants_of(n)?;
            let mut guard = lock(conn);
            let delimiter = match n.config.get("delimiter").and_then(Value::as_str) {
                None => b',',
                Some(d) if d.len() == 1 => d.as_bytes()[0],
                Some(d) => {
                    return Err(format!(
                        "seed `{}`: `delimiter` must be one character, not {d:?}\n  --> {}",
                        n.name,
                        n.file_line()
                    ))
                }
            };
            let options = seed::SeedOptions {
                column_types: &column_types,
                full_refresh,
                quote_columns: n
                    .config
                    .get("quote_columns")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                delimiter,
            };
            let out = seed::load_seed_with(guard.as_mut(), engine, &relation, &path, &options)
                .map_err(|e| e.to_string())?;
            // As dbt's seed materialization: grants, then persisted docs.
            crate::warehouse::post_build::grants_and_docs(
                guard.as_mut(),
                engine,
                &relation,
                "table",
                &grants,
                &comments_to_persist(n),
            )
            .map_err(|e| e.to_string())?;
            drop(guard);
            run_hooks_now(c, n, conn, (&n.hooks("post-hook"), "post-hook"), false)?;
            Ok(ok("success", out.message, out.rows_affected, None))
        }
        ResourceType::Model | ResourceType::Snapshot => build_one_model(c, n, conn, engine, a),
        ResourceType::Test => run_test(c, n, conn),
        ResourceType::UnitTest => run_unit_test(c, n, conn, engine),
        _ => Ok(ok("skipped", "not runnable".into(), None, None)),
    }
}

/// Whether any template or macro reads dbt's `graph` variable (filling it
/// means serializing every node).
pub fn uses_graph(c: &Compiled) -> bool {
    c.project
        .nodes
        .values()
        .any(|n| n.raw_code.contains("graph"))
        || c.project.macros.iter().any(|m| m.text.contains("graph"))
}

pub(super) fn lock(conn: &SharedConn) -> std::sync::MutexGuard<'_, Box<dyn Connection>> {
    match conn.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn render_at_run(
    renderer: &Renderer,
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    is_incremental: bool,
) -> Result<String, String> {
    render_at_run_with(
        renderer,
        c,
        n,
        conn,
        is_incremental,
        minijinja::Value::UNDEFINED,
    )
}

/// `render_at_run` with more in the context (a unit test's overrides).
fn render_at_run_with(
    renderer: &Renderer,
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    is_incremental: bool,
    extra: minijinja::Value,
) -> Result<String, String> {
    let r = renderer
        .render_with(
            &n.original_file_path,
            &n.raw_code,
            Some(n),
            true,
            is_incremental,
            Some(conn.clone()),
            extra,
        )
        .map_err(|d| d.to_string())?;
    for l in &r.logs {
        eprintln!("{l}");
    }
    compile::inject_ephemerals_at_run(&r.output, n, c.nodes(), renderer, conn)
        .map_err(|d| d.to_string())
}

/// Render one of a node's hooks as it runs (connected, so it may query or
/// call `adapter` methods): the SQL to execute.
fn render_hook(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    hook: &str,
    is_incremental: bool,
) -> Result<String, String> {
    c.renderer
        .render(
            &n.original_file_path,
            hook,
            Some(n),
            true,
            is_incremental,
            Some(conn.clone()),
        )
        .map(|r| c.renderer.substitute(&r.output))
        .map_err(|d| d.to_string())
}

/// Render and execute `hooks` one by one (`what` names them in errors).
fn run_hooks_now(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    (hooks, what): (&[String], &str),
    is_incremental: bool,
) -> Result<(), String> {
    for hook in hooks {
        let sql = render_hook(c, n, conn, hook, is_incremental)
            .map_err(|e| format!("{what} failed: {e}"))?;
        if !sql.trim().is_empty() {
            lock(conn)
                .execute(&sql)
                .map_err(|e| format!("{what} failed: {e}"))?;
        }
    }
    Ok(())
}

fn string_or_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A microbatch model, batch by batch ([`crate::microbatch`]): each batch
/// is rendered with its window (refs and sources with an `event_time` read
/// only the window's rows) and replaces that window of the table, in its
/// own transaction. The first batch of a first or full-refresh run creates
/// the table; a later batch that fails is reported after the others ran.
/// Pre-hooks run before the first batch, post-hooks after the last.
fn build_batches(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    engine: Engine,
    a: &RunArgs,
    base: &ModelBuild,
    is_incremental: bool,
) -> Result<materialize::BuildOutcome, materialize::BuildError> {
    use crate::microbatch::{parse_time, plan, sql_time, MicrobatchConfig};
    use materialize::BuildError;
    let config = MicrobatchConfig::of(n).map_err(BuildError::Config)?;
    let when = |t: &Option<String>, flag: &str| {
        t.as_deref()
            .map(|t| {
                parse_time(t).ok_or_else(|| {
                    BuildError::Config(format!("--{flag} {t}: not a date or a timestamp"))
                })
            })
            .transpose()
    };
    let batches = plan(
        &config,
        is_incremental,
        when(&a.event_time_start, "event-time-start")?,
        when(&a.event_time_end, "event-time-end")?,
        chrono::Utc::now().naive_utc(),
    )
    .map_err(BuildError::Config)?;
    let mut rows = 0;
    let mut failed = Vec::new();
    let last = batches.len() - 1;
    for (i, batch) in batches.iter().enumerate() {
        let incremental_batch = is_incremental || i > 0;
        let extra = minijinja::Value::from_serialize(json!({ "__sluice_batch": batch.context() }));
        let sql = c
            .renderer
            .render_with(
                &n.original_file_path,
                &n.raw_code,
                Some(n),
                true,
                incremental_batch,
                Some(conn.clone()),
                extra,
            )
            .and_then(|r| {
                compile::inject_ephemerals_at_run(&r.output, n, c.nodes(), &c.renderer, conn)
            })
            .map_err(|d| BuildError::Config(d.to_string()))?;
        let build = ModelBuild {
            sql: &sql,
            full_refresh: base.full_refresh && i == 0,
            pre_hooks: if i == 0 { base.pre_hooks } else { &[] },
            post_hooks: if i == last { base.post_hooks } else { &[] },
            batch: Some((
                config.event_time.as_str(),
                sql_time(batch.start),
                sql_time(batch.end),
            )),
            ..base.clone()
        };
        match materialize::build_model(lock(conn).as_mut(), engine, &build) {
            Ok(out) => rows += out.rows_affected.unwrap_or(0),
            // Without the first batch there is no table for the others.
            Err(e) if i == 0 && !is_incremental => return Err(e),
            Err(e) => failed.push(format!("batch {}: {e}", batch.id())),
        }
    }
    if !failed.is_empty() {
        return Err(BuildError::Config(format!(
            "{} of {} batches failed (the others were built):\n{}",
            failed.len(),
            batches.len(),
            failed.join("\n")
        )));
    }
    Ok(materialize::BuildOutcome {
        rows_affected: Some(rows),
        message: format!("MICROBATCH {} batches, {rows} rows", batches.len()),
    })
}

/// A node's `grants:` config; a malformed one is an error at its file.
fn grants_of(n: &Node) -> Result<crate::warehouse::post_build::Grants, String> {
    crate::warehouse::post_build::grants_from_config(n.config.get("grants"))
        .map_err(|e| format!("{e}\n  --> {}", n.file_line()))
}

/// The descriptions a model's `persist_docs` config asks to write as
/// comments.
fn comments_to_persist(n: &Node) -> Comments {
    let on = |what: &str| {
        n.config
            .get("persist_docs")
            .and_then(|p| p.get(what))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    Comments {
        relation: (on("relation") && !n.description.is_empty()).then(|| n.description.clone()),
        columns: if on("columns") {
            n.columns
                .values()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.quote.unwrap_or(false),
                        c.description.clone(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Renders Jinja snippets in a node's context, at run time.
type RenderJinja<'a> = dyn Fn(&[String]) -> Result<Vec<String>, String> + 'a;

/// A model's enforced contract with its foreign keys' `to: ref(…)` rendered
/// to relation names (by `render`, which renders Jinja in the model's
/// context).
fn model_contract(n: &Node, render: &RenderJinja) -> Result<Option<Contract>, String> {
    let at = || {
        format!(
            "\n  --> {}",
            n.patch_path.as_deref().unwrap_or(&n.original_file_path)
        )
    };
    let Some(mut contract) = Contract::of(n).map_err(|e| format!("{e}{}", at()))? else {
        return Ok(None);
    };
    contract.resolve_to(|to| {
        let out = render(&[format!("{{{{ {to} }}}}")])?;
        Ok(out.concat().trim().to_string())
    })?;
    Ok(Some(contract))
}

fn build_one_model(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    engine: Engine,
    a: &RunArgs,
) -> Result<NodeResult, String> {
    // A snapshot has its own materialization (and never a full refresh);
    // a materialization sluice does not have is the project's or a
    // package's `{% materialization %}` macro.
    enum Builds {
        Model(Materialization),
        Snapshot(Box<snapshot::SnapshotConfig>),
        Custom(String),
    }
    let builds = if n.resource_type == ResourceType::Snapshot {
        // A setting's mistake is in the snapshot's own file.
        Builds::Snapshot(Box::new(
            snapshot::SnapshotConfig::from_config(&n.config)
                .map_err(|e| format!("{e}\n  --> {}", n.file_line()))?,
        ))
    } else {
        match n.materialized().parse() {
            Ok(m) => Builds::Model(m),
            Err(e) => match custom_materialization(c, n.materialized(), engine) {
                Some(call) => Builds::Custom(call),
                None => return Err(format!("{e}\n  --> {}", n.file_line())),
            },
        }
    };
    let incremental = matches!(builds, Builds::Model(Materialization::Incremental));
    let relation = relation_of(n);
    let full_refresh = match n.config.get("full_refresh").and_then(Value::as_bool) {
        Some(v) => v,
        None => a.full_refresh,
    };
    let is_incremental = if incremental && !full_refresh {
        let mut guard = lock(conn);
        matches!(
            adapter::get_relation(guard.as_mut(), engine, &relation),
            Ok(Some(crate::warehouse::RelationKind::Table))
        )
    } else {
        false
    };
    // A microbatch model renders once per batch (`build_batches`), not here.
    let microbatch = incremental && crate::microbatch::is_microbatch(n);
    let rendered_at_run = !microbatch
        && (incremental
            || matches!(builds, Builds::Custom(_))
            || n.config.contains_key("__dynamic")
            || compile::reads_dynamic_ephemeral(n, c.nodes()));
    let sql = if rendered_at_run {
        render_at_run(&c.renderer, c, n, conn, is_incremental)?
    } else {
        n.compiled_code.clone().unwrap_or_default()
    };
    let render_hooks = |hooks: &[String]| -> Result<Vec<String>, String> {
        hooks
            .iter()
            .map(|h| render_hook(c, n, conn, h, is_incremental))
            .collect()
    };
    let pre = render_hooks(&n.hooks("pre-hook"))?;
    // A post-hook that queries the warehouse while it renders (e.g. to
    // insert rows into `this`) needs the relation built: it is rendered and
    // run after the build, as dbt renders each hook when it runs it.
    let (later, now): (Vec<String>, Vec<String>) = n
        .hooks("post-hook")
        .into_iter()
        .partition(|h| c.renderer.queries_when_rendered(h));
    let post = render_hooks(&now)?;
    let failed_at = |e: materialize::BuildError| {
        // A broken contract is fixed in the model's YAML (or its SQL).
        if let (materialize::BuildError::Contract(_), Some(yml)) = (&e, &n.patch_path) {
            return format!("{e}\n  --> {yml}:{}", n.patch_line.unwrap_or(1));
        }
        // A bad setting (a strategy, a microbatch's `begin`, …) is the
        // model's, not its compiled SQL's.
        if let materialize::BuildError::Config(_) = &e {
            return format!("{e}\n  --> {}", n.file_line());
        }
        let compiled = format!(
            "{}/run/{}/{}",
            c.project.config.target_path,
            n.package_name,
            compiled_files::rel_path(n)
        );
        format!("{e}\n  --> {compiled}")
    };
    let out = match &builds {
        Builds::Snapshot(config) => {
            let build = snapshot::SnapshotBuild {
                relation: &relation,
                sql: &sql,
                config: config.as_ref(),
                pre_hooks: &pre,
                post_hooks: &post,
            };
            let grants = grants_of(n)?;
            let comments = comments_to_persist(n);
            let mut guard = lock(conn);
            // As dbt's snapshot materialization: grants and persisted docs
            // once the snapshot table is up to date.
            snapshot::build_snapshot(guard.as_mut(), engine, &build).and_then(|out| {
                crate::warehouse::post_build::grants_and_docs(
                    guard.as_mut(),
                    engine,
                    &relation,
                    "table",
                    &grants,
                    &comments,
                )?;
                Ok(out)
            })
        }
        Builds::Custom(call) => {
            let grants = grants_of(n)?;
            let comments = comments_to_persist(n);
            run_custom_materialization(c, n, conn, call, &sql, (&pre, &post), is_incremental)
                .and_then(|out| {
                    let mut guard = lock(conn);
                    let kind = match adapter::get_relation(guard.as_mut(), engine, &relation)? {
                        Some(crate::warehouse::RelationKind::View) => "view",
                        Some(_) => "table",
                        None => return Ok(out),
                    };
                    crate::warehouse::post_build::grants_and_docs(
                        guard.as_mut(),
                        engine,
                        &relation,
                        kind,
                        &grants,
                        &comments,
                    )?;
                    Ok(out)
                })
        }
        Builds::Model(materialized) => {
            let on_schema_change: OnSchemaChange = n
                .config
                .get("on_schema_change")
                .and_then(Value::as_str)
                .unwrap_or("ignore")
                .parse()
                .map_err(|e: materialize::BuildError| e.to_string())?;
            let contract = model_contract(n, &render_hooks)?;
            let indexes = Index::from_config(n.config.get("indexes"))
                .map_err(|e| format!("{e}\n  --> {}", n.file_line()))?;
            let comments = comments_to_persist(n);
            let grants = grants_of(n)?;
            let external = match materialized {
                Materialization::External => Some(
                    crate::warehouse::external::ExternalModel::from_config(
                        &n.config,
                        &relation.identifier,
                        c.renderer
                            .settings
                            .target
                            .get("external_root")
                            .and_then(Value::as_str)
                            .unwrap_or("."),
                    )
                    .map_err(|e| format!("{e}\n  --> {}", n.file_line()))?,
                ),
                _ => None,
            };
            let build = ModelBuild {
                relation: &relation,
                materialized: *materialized,
                sql: &sql,
                unique_key: string_or_list(n.config.get("unique_key")),
                incremental_strategy: n
                    .config
                    .get("incremental_strategy")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                on_schema_change,
                full_refresh,
                pre_hooks: &pre,
                post_hooks: &post,
                contract: contract.as_ref(),
                indexes: &indexes,
                comments: Some(&comments),
                incremental_predicates: string_or_list(n.config.get("incremental_predicates")),
                batch: None,
                merge_update_columns: string_or_list(n.config.get("merge_update_columns")),
                merge_exclude_columns: string_or_list(n.config.get("merge_exclude_columns")),
                external: external.as_ref(),
                grants: &grants,
            };
            if microbatch {
                build_batches(c, n, conn, engine, a, &build, is_incremental)
            } else {
                materialize::build_model(lock(conn).as_mut(), engine, &build)
            }
        }
    }
    .map_err(failed_at)?;
    run_hooks_now(c, n, conn, (&later, "post-hook"), is_incremental)?;
    let mut r = ok("success", out.message, out.rows_affected, None);
    r.sql = rendered_at_run.then_some(sql);
    Ok(r)
}

/// The macro that builds models `materialized: <name>` on this engine, as
/// dbt looks it up: `materialization_<name>_<adapter>`, then
/// `materialization_<name>_default`, each first in the project, then in
/// the installed packages (by name). Returned as the expression that
/// calls it.
fn custom_materialization(c: &Compiled, name: &str, engine: Engine) -> Option<String> {
    for adapter in [engine_name(engine), "default"] {
        let wanted = format!("materialization_{name}_{adapter}");
        let mut defining: Vec<Option<&str>> = c
            .project
            .macros
            .iter()
            .filter(|m| m.names.contains(&wanted))
            .map(|m| m.package.as_deref())
            .collect();
        // The project's own (`None`) sorts first, then packages by name.
        defining.sort();
        match defining.first() {
            Some(None) => return Some(wanted),
            Some(Some(package)) => return Some(format!("{package}.{wanted}")),
            None => {}
        }
    }
    None
}

/// Build a model with a custom materialization: its macro runs with the
/// model's context, as dbt runs it: `sql` (and `compiled_code`) the
/// model's compiled SQL, `pre_hooks`/`post_hooks` the rendered hooks for
/// `run_hooks`, the warehouse connected (`statement('main')` runs). What
/// the macro returns (`{'relations': […]}`) is not needed: the relation is
/// the model's.
fn run_custom_materialization(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    call: &str,
    sql: &str,
    (pre, post): (&[String], &[String]),
    is_incremental: bool,
) -> Result<materialize::BuildOutcome, materialize::BuildError> {
    let hooks = |list: &[String]| -> Vec<Value> {
        list.iter()
            .enumerate()
            .map(|(i, h)| json!({"sql": h, "transaction": true, "index": i + 1}))
            .collect()
    };
    let extra = minijinja::Value::from_serialize(json!({
        "sql": sql,
        "compiled_code": sql,
        "pre_hooks": hooks(pre),
        "post_hooks": hooks(post),
    }));
    c.renderer
        .render_with(
            &n.original_file_path,
            &format!("{{{{ {call}() }}}}"),
            Some(n),
            true,
            is_incremental,
            Some(conn.clone()),
            extra,
        )
        .map_err(|d| {
            materialize::BuildError::Config(format!(
                "materialization '{}' ({call}) failed: {d}",
                n.materialized()
            ))
        })?;
    Ok(materialize::BuildOutcome {
        rows_affected: None,
        message: "OK".to_string(),
    })
}

/// Run a unit test as dbt's `unit` materialization does (see
/// [`crate::unit_tests`]): the model's SQL over its fixtures, compared with
/// the expected rows.
fn run_unit_test(
    c: &Compiled,
    n: &Node,
    conn: &SharedConn,
    engine: Engine,
) -> Result<NodeResult, String> {
    use crate::unit_tests::{self as ut, Fixture, Input};
    let spec = n.unit_test.as_deref().ok_or("not a unit test")?;
    let model = n
        .depends_on
        .nodes
        .first()
        .and_then(|id| c.nodes().get(id))
        .ok_or_else(|| {
            format!(
                "unit test {}: model `{}` is not in the project",
                n.name, spec.model
            )
        })?;
    let root = &c.project.root;
    let test_paths = &c.project.config.test_paths;
    let at = |e: String| {
        format!(
            "unit test {}: {e}\n  --> {}:{}",
            n.name,
            n.defining_file(),
            n.line
        )
    };
    let is_incremental = spec
        .overrides
        .get("macros")
        .and_then(|m| m.get("is_incremental"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let overrides = c.renderer.unit_test_overrides(&spec.overrides);
    let mut sql = render_at_run_with(&c.renderer, c, model, conn, is_incremental, overrides)?;
    let mut ctes = Vec::new();
    for g in &spec.given {
        let input = ut::parse_input(&g.input).ok_or_else(|| {
            at(format!(
                "input `{}`: expected ref('…'), source('…', '…') or this",
                g.input
            ))
        })?;
        let node = match &input {
            Input::Ref(name) => c.renderer.resolver.by_name.get(name),
            Input::Source(s, t) => c.renderer.resolver.sources.get(&(s.clone(), t.clone())),
            Input::This => Some(&model.unique_id),
        }
        .and_then(|id| c.nodes().get(id))
        .ok_or_else(|| at(format!("input `{}` names nothing in the project", g.input)))?;
        let fixture = ut::read_fixture(&g.rows, root, test_paths)
            .map_err(|e| at(format!("input `{}`: {e}", g.input)))?;
        let relation = relation_of(node);
        // A SQL fixture is its own query: the input need not exist.
        let columns = match &fixture {
            Fixture::Sql(_) => Vec::new(),
            Fixture::Rows(_) => adapter::get_columns(lock(conn).as_mut(), engine, &relation)
                .map_err(|e| e.to_string())?,
        };
        if columns.is_empty() && matches!(fixture, Fixture::Rows(_)) {
            return Err(at(format!(
                "input `{}`: {} has no columns in the warehouse; build it first \
                 (`sluice build` builds a unit test's inputs before it)",
                g.input,
                adapter::render(&relation)
            )));
        }
        let body = ut::fixture_sql(&fixture, &columns, engine)
            .map_err(|e| at(format!("input `{}`: {e}", g.input)))?;
        let cte = ut::cte_name(&input);
        if let Some(rendered) = &node.relation_name {
            sql = sql.replace(rendered.as_str(), &cte);
        }
        ctes.push(format!("{cte} as (\n{body}\n)"));
    }
    let actual_sql = compile::with_ctes(&sql, &ctes);
    let columns_of = |query: &str| -> Result<Vec<crate::warehouse::ColumnMeta>, String> {
        lock(conn)
            .query(&format!(
                "select * from (\n{query}\n) as dbt_internal_probe limit 0"
            ))
            .map(|r| r.columns)
            .map_err(|e| at(e.to_string()))
    };
    let returned = columns_of(&actual_sql)?;
    let expected =
        ut::read_fixture(&spec.expect, root, test_paths).map_err(|e| at(format!("expect: {e}")))?;
    let (expected_sql, compared) = match &expected {
        Fixture::Sql(q) => (q.clone(), columns_of(q)?),
        Fixture::Rows(_) => {
            let names = ut::expected_columns(&expected);
            let names = if names.is_empty() {
                returned.iter().map(|c| c.name.clone()).collect()
            } else {
                names
            };
            let typed = names
                .iter()
                .map(|name| {
                    returned
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(name))
                        .cloned()
                        .ok_or_else(|| {
                            at(format!(
                                "expected column `{name}` is not among the model's columns: {}",
                                returned
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let q = ut::fixture_sql(&expected, &typed, engine)
                .map_err(|e| at(format!("expect: {e}")))?;
            (q, typed)
        }
    };
    let list = compared
        .iter()
        .map(|c| adapter::quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let actual_query =
        format!("select {list} from (\n{actual_sql}\n) as dbt_internal_unit_test_actual");
    let expected_query =
        format!("select {list} from (\n{expected_sql}\n) as dbt_internal_unit_test_expected");
    let actual_rows = lock(conn)
        .query(&actual_query)
        .map_err(|e| at(e.to_string()))?;
    let expected_rows = lock(conn)
        .query(&expected_query)
        .map_err(|e| at(e.to_string()))?;
    let mut r = match ut::compare(&actual_rows, &expected_rows) {
        None => ok("pass", String::new(), None, Some(0)),
        Some(diff) => ok("fail", diff, None, Some(1)),
    };
    r.sql = Some(format!(
        "-- actual\n{actual_query};\n\n-- expected\n{expected_query};\n"
    ));
    Ok(r)
}

/// Run a data test the way dbt does: count the failing rows with
/// `fail_calc`, compare with `warn_if`/`error_if`, honour `severity`.
fn run_test(c: &Compiled, n: &Node, conn: &SharedConn) -> Result<NodeResult, String> {
    let cfg = |k: &str, d: &str| {
        n.config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or(d)
            .to_string()
    };
    let fail_calc = cfg("fail_calc", "count(*)");
    let warn_if = cfg("warn_if", "!= 0");
    let error_if = cfg("error_if", "!= 0");
    let severity = cfg("severity", "error").to_ascii_lowercase();
    let limit = n
        .config
        .get("limit")
        .and_then(Value::as_u64)
        // On its own line, as dbt's `get_limit_subquery_sql`: a test whose
        // SQL ends in a `--` comment keeps its limit.
        .map(|l| format!("\nlimit {l}"))
        .unwrap_or_default();
    let rendered_at_run = n.config.contains_key("__dynamic");
    let body = if rendered_at_run {
        render_at_run(&c.renderer, c, n, conn, false)?
    } else {
        n.compiled_code.clone().unwrap_or_default()
    };
    let body = body.trim().trim_end_matches(';');
    let sql = format!(
        "select {fail_calc} as failures, case when {fail_calc} {warn_if} then 1 else 0 end as should_warn, case when {fail_calc} {error_if} then 1 else 0 end as should_error from (\n{body}{limit}\n) dbt_internal_test"
    );
    let mut guard = lock(conn);
    let stored = if n
        .config
        .get("store_failures")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        Some(store_failures(guard.as_mut(), c, n, body)?)
    } else {
        None
    };
    let r = guard.query(&sql).map_err(|e| e.to_string())?;
    let row = r.rows.first().cloned().unwrap_or_default();
    let num = |i: usize| {
        row.get(i)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().map(|f| f as u64))
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0)
    };
    let failures = num(0);
    let (should_warn, should_error) = (num(1) == 1, num(2) == 1);
    let status = if should_error && severity == "error" {
        "fail"
    } else if should_warn || should_error {
        "warn"
    } else {
        "pass"
    };
    let mut message = if failures == 0 {
        String::new()
    } else {
        format!(
            "Got {failures} result{}, configured to {} if {}",
            if failures == 1 { "" } else { "s" },
            if status == "fail" { "fail" } else { "warn" },
            if status == "fail" {
                &error_if
            } else {
                &warn_if
            }
        )
    };
    if let (Some(table), true) = (&stored, failures > 0) {
        message.push_str(&format!("; failing rows stored in {table}"));
    }
    let mut r = ok(status, message, None, Some(failures));
    r.sql = rendered_at_run.then(|| body.to_string());
    Ok(r)
}

/// dbt's `store_failures`: the failing rows, kept in the test's relation,
/// `<target schema>_dbt_test__audit.<test alias>` by default (replaced on
/// every run).
fn store_failures(
    conn: &mut dyn Connection,
    c: &Compiled,
    n: &Node,
    body: &str,
) -> Result<String, String> {
    let engine = c.renderer.settings.engine;
    // The test's own relation, as dbt names it: its schema through
    // `generate_schema_name` (`dbt_test__audit` unless configured), its
    // alias (the short name when the full one is too long).
    let schema = n.schema.clone();
    let database = n.database.clone();
    let relation = Relation {
        database: database.clone(),
        schema: schema.clone(),
        identifier: if n.alias.is_empty() {
            n.name.clone()
        } else {
            n.alias.clone()
        },
    };
    adapter::create_schema_if_missing(conn, engine, database.as_deref(), &schema)
        .map_err(|e| e.to_string())?;
    adapter::drop_if_exists(conn, engine, &relation).map_err(|e| e.to_string())?;
    let rendered = adapter::render(&relation);
    conn.execute(&format!("create table {rendered} as\n{body}"))
        .map_err(|e| e.to_string())?;
    Ok(format!("{schema}.{}", relation.identifier))
}

/// How a step is named in status lines.
struct Shown<'a> {
    resource_type: ResourceType,
    name: &'a str,
    file: &'a str,
    description: String,
}

fn shown<'a>(c: &'a Compiled, plan: &'a Plan, id: &str) -> Option<Shown<'a>> {
    if let Some(src) = plan.extractions.get(id) {
        return Some(Shown {
            resource_type: ResourceType::Source,
            name: &src.name,
            file: &src.file,
            description: format!("source {}", src.name),
        });
    }
    let n = c.nodes().get(id)?;
    Some(Shown {
        resource_type: n.resource_type,
        name: &n.name,
        // A model's own file (dbt names it so), not the YAML describing it;
        // a generic or unit test is its YAML entry.
        file: match n.resource_type {
            ResourceType::Test | ResourceType::UnitTest => n.defining_file(),
            _ => &n.original_file_path,
        },
        description: match n.resource_type {
            ResourceType::Seed => format!("seed file {}.{}", n.schema, n.alias),
            ResourceType::Test => format!("test {}", n.name),
            ResourceType::UnitTest => format!(
                "unit_test {}::{}",
                n.unit_test.as_ref().map_or("", |u| u.model.as_str()),
                n.name
            ),
            ResourceType::Snapshot => format!("snapshot {}.{}", n.schema, n.alias),
            _ => format!("sql {} model {}.{}", n.materialized(), n.schema, n.alias),
        },
    })
}

fn print_status(ui: &Ui, c: &Compiled, plan: &Plan, r: &NodeResult, i: usize, total: usize) {
    let Some(n) = shown(c, plan, &r.unique_id) else {
        return;
    };
    let (word, detail) = match (n.resource_type, r.status) {
        (_, "skipped") => ("SKIP", "SKIP".to_string()),
        (ResourceType::Test | ResourceType::UnitTest, "pass") => ("PASS", "PASS".to_string()),
        (ResourceType::Test, "warn") => ("WARN", format!("WARN {}", r.failures.unwrap_or(0))),
        (ResourceType::Test | ResourceType::UnitTest, "fail") => {
            ("FAIL", format!("FAIL {}", r.failures.unwrap_or(0)))
        }
        (_, "error") => ("ERROR", "ERROR".to_string()),
        (ResourceType::Source, _) => (
            "OK extracted and staged",
            r.message.split("; ").next().unwrap_or_default().to_string(),
        ),
        (ResourceType::Seed, _) => ("OK loaded", r.message.clone()),
        (_, _) => ("OK created", r.message.clone()),
    };
    let label = format!("{i} of {total} {word} {}", n.description);
    let dots = ".".repeat(80usize.saturating_sub(label.len() + 1).max(3));
    ui.info(format!("{label} {dots} [{detail} in {:.2}s]", r.seconds));
    if r.status == "error" {
        ui.eprint(format_args!(
            "  {} `{}` failed:\n  {}",
            n.resource_type.as_str(),
            n.name,
            r.message.replace('\n', "\n  ")
        ));
    } else if (r.status == "fail" || r.status == "warn") && !r.message.is_empty() && !ui.quiet {
        ui.eprint(format_args!("  {}", r.message));
    }
}

/// The closing lines of a run. A failed `on-run-end` hook of the project
/// makes the run fail, so it counts among the errors.
fn summarize(
    ui: &Ui,
    results: &[NodeResult],
    seconds: f64,
    c: &Compiled,
    plan: &Plan,
    failed_hooks: &[String],
) {
    let count = |s: &[&str]| results.iter().filter(|r| s.contains(&r.status)).count();
    let pass = count(&["success", "pass"]);
    let warn = count(&["warn"]);
    let error = count(&["error", "fail"]) + failed_hooks.len();
    let skip = count(&["skipped"]);
    ui.info(format!(
        "\nFinished running {} node{} in {seconds:.2}s.",
        results.len(),
        if results.len() == 1 { "" } else { "s" }
    ));
    if error == 0 {
        ui.info("Completed successfully");
    } else {
        ui.info(format!(
            "Completed with {error} error{}",
            if error == 1 { "" } else { "s" }
        ));
        for r in results.iter().filter(|r| r.failed()) {
            if let Some(n) = shown(c, plan, &r.unique_id) {
                ui.eprint(format_args!(
                    "  {} {} ({})",
                    if r.status == "fail" { "FAIL" } else { "ERROR" },
                    n.name,
                    n.file
                ));
            }
        }
        for hook in failed_hooks {
            ui.eprint(format_args!("  ERROR {hook}"));
        }
    }
    ui.info(format!(
        "Done. PASS={pass} WARN={warn} ERROR={error} SKIP={skip} TOTAL={}",
        results.len() + failed_hooks.len()
    ));
}

/// `--defer`: unselected nodes that do not exist in this target resolve to
/// their relations in the `--state` manifest.
fn defer_to_state(
    c: &Compiled,
    selected: &BTreeSet<String>,
    a: &RunArgs,
    w: &dyn Warehouse,
    engine: Engine,
) -> Result<(), Failure> {
    let Some(dir) = &a.select.state else {
        return Ok(());
    };
    let previous = crate::state::PreviousState::load(dir, &c.project)?;
    let mut conn = w
        .connect()
        .map_err(|e| Diagnostic::error("E0701", e.to_string()))?;
    let mut relations = match c.renderer.resolver.relations.write() {
        Ok(r) => r,
        Err(p) => p.into_inner(),
    };
    for (id, n) in c.nodes() {
        if selected.contains(id)
            || !matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
            )
        {
            continue;
        }
        if n.materialized() == "ephemeral" {
            continue;
        }
        let exists = matches!(
            adapter::get_relation(conn.as_mut(), engine, &relation_of(n)),
            Ok(Some(_))
        );
        if exists {
            continue;
        }
        if let Some((database, schema, identifier)) = previous.relation(id) {
            if let Some(r) = relations.get_mut(id) {
                r.database = database;
                r.schema = schema;
                r.identifier = identifier;
            }
        }
    }
    Ok(())
}

/// `target/compiled/<project>/…` for every model and test that ran, as dbt
/// writes it (errors point there); files already holding the SQL are left
/// alone, through the compile cache.
fn write_compiled_files(
    c: &Compiled,
    results: &[NodeResult],
    executed: &dyn Fn(&NodeResult) -> Option<String>,
) -> Result<(), Failure> {
    let target_dir = c.project.target_dir();
    let ran: Vec<(&Node, String)> = results
        .iter()
        .filter_map(|r| {
            let n = c.nodes().get(&r.unique_id)?;
            matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Snapshot | ResourceType::Test
            )
            .then_some((n, executed(r)?))
        })
        .collect();
    let jobs: Vec<crate::compiled_files::Job> = ran
        .iter()
        .map(|(n, sql)| crate::compiled_files::Job::new(&target_dir, n, sql))
        .collect();
    let cache = crate::compiled_files::CompileCache::load(&target_dir);
    let written = crate::compiled_files::write_all(&jobs, &cache)?;
    cache.save(&target_dir, written, Vec::new())?;
    Ok(())
}

fn write_artifacts(
    c: &Compiled,
    results: &[NodeResult],
    elapsed: f64,
    mode: Mode,
) -> Result<(), Failure> {
    let target = c.project.target_dir();
    let run_dir = target.join("run");
    // What ran: the SQL rendered at run time, or else the compiled SQL.
    let executed = |r: &NodeResult| {
        r.sql
            .clone()
            .or_else(|| c.nodes().get(&r.unique_id)?.compiled_code.clone())
    };
    write_compiled_files(c, results, &executed)?;
    let mut out = Vec::new();
    for r in results {
        let n = c.nodes().get(&r.unique_id);
        let run_path = |n: &crate::project::node::Node| {
            run_dir
                .join(&n.package_name)
                .join(crate::compiled_files::rel_path(n))
        };
        let compiled_path = n.map(|n| shown_path(&run_path(n), &c.project.root));
        let code = executed(r);
        if let (Some(n), Some(code)) = (n, &code) {
            if n.resource_type == ResourceType::Model {
                crate::artifacts::write_atomic(&run_path(n), code.as_bytes())?;
            }
        }
        out.push(json!({
            "unique_id": r.unique_id,
            "status": r.status,
            "timing": r.timing(),
            "thread_id": r.thread_id(),
            "execution_time": r.seconds,
            "adapter_response": r.adapter_response(),
            "message": r.message,
            "failures": r.failures,
            "compiled": n.map(|n| n.compiled_code.is_some()),
            "compiled_code": code,
            "compiled_path": compiled_path,
            "relation_name": n.and_then(|n| n.relation_name.clone()),
        }));
    }
    let doc = json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.9.0",
            "generated_at": now(),
            "invocation_id": uuid::Uuid::new_v4().to_string(),
        },
        "results": out,
        "elapsed_time": elapsed,
        "args": {"which": mode.name()},
    });
    crate::artifacts::write_json(&target.join("run_results.json"), &doc)?;
    let (invocation_id, generated_at) = (uuid::Uuid::new_v4().to_string(), now());
    let m = crate::artifacts::manifest(c, &invocation_id, &generated_at);
    m.write(&target.join("manifest.json"))?;
    Ok(())
}
