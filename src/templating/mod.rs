//! The minijinja environment dbt projects are rendered in: `ref`, `source`,
//! `config`, `var`, `env_var`, `this`, `target`, `is_incremental`,
//! `execute`, `log`, `exceptions`, `return`, `run_started_at`,
//! `invocation_id`, `modules`, `tojson`/`fromjson`, `adapter`,
//! `run_query`, `statement`/`load_result`, and every project macro as a
//! global function.
//!
//! Rendering happens in two phases. The first renders every node once with
//! `execute = false` and relations that print as placeholders; it captures
//! refs, sources and `config()`. Once every node's schema and alias are known
//! the placeholders are substituted — so most nodes are rendered only once.
//! Nodes whose templates depend on execution (`execute`, `run_query`,
//! adapter calls, `is_incremental`) are rendered again at execution time.

mod adapter_ops;
mod mutable;
pub mod objects;
pub mod pyjson;
mod python_datetime;
mod python_re;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use minijinja::value::{from_args, Kwargs, Rest};
use minijinja::{context, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::project::node::{Node, RefCall};
use crate::project::Project;
use crate::warehouse::{Connection, Engine};
use objects::{ConfigObj, Exceptions, RelationObj, RenderScope, ResolvedRelation, TableObj, MARK};

/// Built-in macros written in Jinja: dbt's generic tests and helpers. Project
/// macros with the same names override them.
const BUILTINS_NAME: &str = "<sluice builtins>";
const BUILTINS: &str = include_str!("builtins.sql");
/// dbt's cross-database macros and the run-settings macros dbt's tests ask for.
const CROSS_DB_NAME: &str = "<sluice cross-database macros>";
const CROSS_DB: &str = include_str!("cross_db.sql");

/// Names and relations every render can resolve.
#[derive(Debug, Default)]
pub struct Resolver {
    /// ref-able name (models, seeds, snapshots) → unique id; the root
    /// project's node where a package has one of the same name.
    pub by_name: HashMap<String, String>,
    /// (package, name) → unique id, for `ref('package', 'name')` and for
    /// refs inside packages.
    pub by_package: HashMap<(String, String), String>,
    /// The root project's name.
    pub root: String,
    /// Ids of disabled nodes among those above.
    pub disabled: std::collections::HashSet<String>,
    /// dbt's `flags: require_ref_prefers_node_package_to_root`: a package's
    /// bare ref looks in the package before the root project.
    pub prefer_node_package: bool,
    /// (source, table) → unique id.
    pub sources: HashMap<(String, String), String>,
    /// unique id → relation, filled once schemas and aliases are known.
    pub relations: RwLock<HashMap<String, ResolvedRelation>>,
}

impl Resolver {
    /// The node `ref(package?, name)` means when written in a node of
    /// package `from`, as dbt resolves it: the named package only; else
    /// the root project and the node's own package (the node's first when
    /// the project sets `require_ref_prefers_node_package_to_root`), then
    /// any package.
    pub fn resolve_ref(&self, package: Option<&str>, name: &str, from: &str) -> Option<&String> {
        if package.is_none() && from == self.root {
            // The everyday case, without allocating.
            return self.by_name.get(name);
        }
        let key = |p: &str| (p.to_string(), name.to_string());
        let candidates: Vec<Option<&String>> = match package {
            Some(p) => vec![self.by_package.get(&key(p))],
            None if from != self.root => {
                let order = if self.prefer_node_package {
                    [from, self.root.as_str()]
                } else {
                    [self.root.as_str(), from]
                };
                let mut c: Vec<Option<&String>> =
                    order.iter().map(|p| self.by_package.get(&key(p))).collect();
                c.push(self.by_name.get(name));
                c
            }
            None => vec![self.by_name.get(name)],
        };
        // The first enabled candidate; a disabled one only when there is
        // no other (an error the caller reports).
        let found = || candidates.iter().flatten().copied();
        found()
            .find(|id| !self.disabled.contains(*id))
            .or_else(|| found().next())
    }

    pub fn relation(&self, id: &str) -> Option<ResolvedRelation> {
        self.relations.read().ok().and_then(|r| r.get(id).cloned())
    }
}

/// Everything a render needs that comes from outside the project files.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub engine: Engine,
    /// `target` as Jinja sees it (no secrets).
    pub target: serde_json::Value,
    /// Vars from `--vars`.
    pub cli_vars: serde_json::Map<String, serde_json::Value>,
    pub full_refresh: bool,
    pub which: String,
    /// `--empty`: refs and sources read no rows.
    pub empty: bool,
}

pub struct Renderer {
    env: Environment<'static>,
    pub resolver: Arc<Resolver>,
    pub settings: RenderSettings,
    /// Macro files whose text depends on execution.
    dynamic_macros: HashMap<String, bool>,
    /// What `graph.nodes` / `graph.sources` hold once set (`set_graph`).
    graph: Arc<std::sync::OnceLock<Value>>,
    /// Each installed package's macros by name: callable bare in the
    /// package's own nodes, ahead of the root project's (dbt's "local"
    /// macro namespace).
    package_macros: HashMap<String, Value>,
}

/// The result of rendering one template.
#[derive(Debug)]
pub struct Rendered {
    pub output: String,
    pub refs: Vec<RefCall>,
    pub sources: Vec<Vec<String>>,
    pub config: crate::project::node::Config,
    /// Every macro called, nested ones too.
    pub macros: Vec<String>,
    /// The macros the template called itself.
    pub direct_macros: Vec<String>,
    pub dynamic: bool,
    pub results: BTreeMap<String, Value>,
    pub logs: Vec<String>,
}

thread_local! {
    /// Values passed to `return()` by the macro calls in progress on this thread.
    static RETURNS: RefCell<Vec<Option<Value>>> = const { RefCell::new(Vec::new()) };
}

const RETURN_SIGNAL: &str = "__sluice_return__";

/// Strings that make a template's output depend on execution.
fn text_is_dynamic(text: &str) -> bool {
    [
        "execute",
        "run_query",
        "statement(",
        "load_result",
        "adapter.",
        "is_incremental",
        "graph.",
    ]
    .iter()
    .any(|k| text.contains(k))
}

impl Renderer {
    pub fn new(project: &Project, settings: RenderSettings) -> Result<Renderer, Diagnostic> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_keep_trailing_newline(true);
        env.set_recursion_limit(500);
        // SQL is never escaped, whatever the template's file extension (tests
        // are named after the YAML that declares them; minijinja would
        // JSON-escape `.yml` templates by default).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // Python's methods on strings, lists and dicts (`.upper()`,
        // `.split()`, `.items()`, …), and lists and dicts that change in
        // place (`{% do cols.append(c) %}`), as dbt's Jinja has them.
        env.set_unknown_method_callback(python_methods);
        env.add_function(mutable::LIST, mutable::List::value);
        env.add_function(mutable::DICT, mutable::Dict::value);
        let resolver = Arc::new(build_resolver(project));
        let mut dynamic_macros = HashMap::new();

        // dbt's own macros: callable by name, and as `dbt.<name>` even
        // where a project macro of the same name replaces the bare one.
        let mut dbt_namespace = BTreeMap::new();
        for (file, text) in [(BUILTINS_NAME, BUILTINS), (CROSS_DB_NAME, CROSS_DB)] {
            let names: Vec<String> = crate::project::block_names(text, &["macro"])
                .into_iter()
                .map(|(_, n)| n)
                .collect();
            add_macro_file(&mut env, file, text, &names, "dbt")?;
            for name in names {
                let f = macro_function(file, &name, None, "dbt");
                dbt_namespace.insert(name, f);
            }
        }
        // Installed packages' macros are called as `<package>.<macro>`;
        // inside a package, its own macros are also callable bare.
        let mut packages: BTreeMap<&str, PackageMacros> = BTreeMap::new();
        // The root project's macros are also `<project name>.<macro>`.
        let mut root_namespace = BTreeMap::new();
        for m in &project.macros {
            match &m.package {
                None => {
                    let root = project.config.name.as_str();
                    add_macro_file(&mut env, &m.path, &m.text, &m.names, root)?;
                    for name in &m.names {
                        let f = macro_function(&m.path, name, None, root);
                        root_namespace.insert(name.clone(), f);
                    }
                }
                Some(package) => {
                    add_macro_templates(&mut env, &m.path, &m.text)?;
                    let p = packages.entry(package).or_default();
                    for name in &m.names {
                        let f = macro_function(&m.path, name, Some(p.locals.clone()), package);
                        p.functions.insert(name.clone(), f);
                    }
                }
            }
            for n in &m.names {
                *dynamic_macros.entry(n.clone()).or_default() |= text_is_dynamic(&m.text);
            }
        }
        // (A project named like a package or `dbt` keeps those; dbt's
        // globals, registered below, win over it too.)
        if !packages.contains_key(project.config.name.as_str()) && project.config.name != "dbt" {
            env.add_global(project.config.name.clone(), Value::from(root_namespace));
        }
        let mut package_macros = HashMap::new();
        for (package, p) in packages {
            let namespace = Value::from(p.functions);
            let _ = p.locals.set(namespace.clone());
            env.add_global(package.to_string(), namespace.clone());
            package_macros.insert(package.to_string(), namespace);
        }
        let graph = Arc::new(std::sync::OnceLock::new());
        register_globals(&mut env, project, &settings, &resolver, &graph);
        // dbt's global project has these as macros, so packages call them as
        // `dbt.run_query(…)` too; sluice has them as functions.
        for name in [
            "run_query",
            "is_incremental",
            "should_full_refresh",
            "load_result",
        ] {
            if let Some((_, f)) = env.globals().find(|(k, _)| *k == name) {
                dbt_namespace.entry(name.to_string()).or_insert(f);
            }
        }
        env.add_global("dbt", Value::from(dbt_namespace));
        Ok(Renderer {
            env,
            resolver,
            settings,
            dynamic_macros,
            graph,
            package_macros,
        })
    }

    /// Fill dbt's `graph` variable from the parsed project, for renders at
    /// execution time (dbt, too, only fills it when executing). The first
    /// call wins.
    pub fn set_graph(&self, nodes: &BTreeMap<String, Node>) {
        self.graph.get_or_init(|| {
            use crate::project::node::ResourceType;
            // dbt's flat graph: sources, exposures and unit tests have
            // their own sections; everything else is under `nodes`.
            let (mut sources, mut exposures, mut unit_tests, mut others) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut metrics, mut semantic_models, mut saved_queries) =
                (Vec::new(), Vec::new(), Vec::new());
            for n in nodes.values() {
                match n.resource_type {
                    ResourceType::Source => sources.push(n),
                    ResourceType::Exposure => exposures.push(n),
                    ResourceType::UnitTest => unit_tests.push(n),
                    ResourceType::Metric => metrics.push(n),
                    ResourceType::SemanticModel => semantic_models.push(n),
                    ResourceType::SavedQuery => saved_queries.push(n),
                    _ => others.push(n),
                }
            }
            // Each node in dbt's manifest shape (config defaults, a source's
            // fields at the top level), which is what macros that walk
            // `graph` expect.
            fn by_id(list: Vec<&Node>) -> BTreeMap<&str, crate::artifacts::ManifestNode<'_>> {
                list.into_iter()
                    .map(|n| {
                        (
                            n.unique_id.as_str(),
                            crate::artifacts::ManifestNode(n, true),
                        )
                    })
                    .collect()
            }
            // Dicts and lists that change in place, as Python's do: packages
            // (elementary) `update` a node's `meta` they read from here.
            let none = || mutable::deep(Value::from_serialize(BTreeMap::<&str, ()>::new()));
            context! {
                nodes => mutable::deep(Value::from_serialize(by_id(others))),
                sources => mutable::deep(Value::from_serialize(by_id(sources))),
                exposures => mutable::deep(Value::from_serialize(by_id(exposures))),
                unit_tests => mutable::deep(Value::from_serialize(by_id(unit_tests))),
                metrics => mutable::deep(Value::from_serialize(by_id(metrics))),
                groups => none(),
                semantic_models => mutable::deep(Value::from_serialize(by_id(semantic_models))),
                saved_queries => mutable::deep(Value::from_serialize(by_id(saved_queries))),
            }
        });
    }

    /// Render `source` (named `name`, a project path) for node `node_id`.
    pub fn render(
        &self,
        name: &str,
        source: &str,
        node: Option<&Node>,
        execute: bool,
        is_incremental: bool,
        connection: Option<Arc<Mutex<Box<dyn Connection>>>>,
    ) -> Result<Rendered, Diagnostic> {
        self.render_with(
            name,
            source,
            node,
            execute,
            is_incremental,
            connection,
            Value::UNDEFINED,
        )
    }

    /// The context a unit test's `overrides:` add to its model's render
    /// (pass it as `render_with`'s `extra`): `vars` and `env_vars` for
    /// `var()`/`env_var()`, and each overridden macro returning the given
    /// value, whether the model calls it or a macro does, bare
    /// (`is_incremental()`) or through its package
    /// (`audit_helper._get_comparison_bounds`); `invocation_id` is a value.
    pub fn unit_test_overrides(&self, overrides: &BTreeMap<String, serde_json::Value>) -> Value {
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        let mut by_name = serde_json::Map::new();
        if let Some(serde_json::Value::Object(macros)) = overrides.get("macros") {
            for (name, value) in macros {
                let bare = name.rsplit('.').next().unwrap_or(name);
                by_name.insert(bare.to_string(), value.clone());
                let v = Value::from_serialize(value);
                ctx.insert(
                    bare.to_string(),
                    if bare == "invocation_id" {
                        v
                    } else {
                        Value::from_function(move |_args: minijinja::value::Rest<Value>| v.clone())
                    },
                );
            }
        }
        ctx.insert(
            "__sluice_overrides".into(),
            Value::from_serialize(serde_json::json!({
                "vars": overrides.get("vars"),
                "env_vars": overrides.get("env_vars"),
                "macros": by_name,
            })),
        );
        Value::from(ctx)
    }

    /// `render` with more variables in the context (`extra`, a map), e.g.
    /// an on-run-end hook's `results` and `schemas`.
    #[allow(clippy::too_many_arguments)]
    pub fn render_with(
        &self,
        name: &str,
        source: &str,
        node: Option<&Node>,
        execute: bool,
        is_incremental: bool,
        connection: Option<Arc<Mutex<Box<dyn Connection>>>>,
        extra: Value,
    ) -> Result<Rendered, Diagnostic> {
        let node_id = node.map(|n| n.unique_id.clone()).unwrap_or_default();
        // A microbatch batch (`model.batch`), passed in `extra`.
        let batch = extra
            .get_attr("__sluice_batch")
            .ok()
            .filter(|b| !b.is_undefined());
        let window = batch.as_ref().and_then(|b| {
            let at = |k: &str| {
                b.get_attr(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            Some((at("event_time_start")?, at("event_time_end")?))
        });
        // A unit test's overrides, passed in `extra`.
        let overrides = |key: &str| {
            extra
                .get_attr("__sluice_overrides")
                .ok()
                .and_then(|o| o.get_attr(key).ok())
                .filter(|v| !v.is_undefined() && !v.is_none())
        };
        let scope = Arc::new(RenderScope {
            node_id: node_id.clone(),
            captured: Mutex::new(Default::default()),
            execute,
            is_incremental,
            connection,
            disabled: node.is_some_and(|n| !n.enabled()),
            batch: window,
            var_overrides: overrides("vars"),
            env_var_overrides: overrides("env_vars"),
            macro_overrides: overrides("macros"),
        });
        let this = node.map(|n| {
            Value::from_object(RelationObj {
                unique_id: n.unique_id.clone(),
                resolved: self.resolver.relation(&n.unique_id),
                engine: self.settings.engine,
                limit_zero: false,
                event_time_window: None,
            })
        });
        let model = node.map(|n| model_value(n, batch.as_ref()));
        let ctx = context! {
            __sluice => Value::from_dyn_object(scope.clone()),
            this => this,
            model => model,
            execute => execute,
            thread_id => thread_id(),
            ..extra
        };
        // A package's node: its own macros, callable bare.
        let ctx = match node.and_then(|n| self.package_macros.get(&n.package_name)) {
            Some(locals) => context! { ..ctx, ..locals.clone() },
            None => ctx,
        };
        let result = self
            .env
            .template_from_named_str(name, &mutable::literals(&jinja2_syntax(source)))
            .and_then(|t| t.render(ctx));
        let captured = std::mem::take(&mut *match scope.captured.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        });
        match result {
            Ok(output) => {
                let dynamic = captured.dynamic
                    || text_is_dynamic(source)
                    || captured
                        .macros
                        .iter()
                        .map(|m| m.rsplit_once('.').map_or(m.as_str(), |(_, name)| name))
                        .any(|m| self.dynamic_macros.get(m).copied().unwrap_or(false));
                Ok(Rendered {
                    output,
                    refs: captured.refs,
                    sources: captured.sources,
                    config: captured.config,
                    macros: captured.macros,
                    direct_macros: captured.direct_macros,
                    dynamic,
                    results: captured.results,
                    logs: captured.logs,
                })
            }
            Err(e) => {
                let mut d = jinja_diagnostic(&e, name, captured.pending_error);
                // A node's text starts on its file's line `node.line` (dbt
                // trims leading blank lines): report the file's line.
                if let Some(n) =
                    node.filter(|n| n.test_metadata.is_none() && n.original_file_path == name)
                {
                    if d.file.as_deref() == Some(name) {
                        d.line = d.line.map(|l| l + n.line.saturating_sub(1));
                    }
                }
                Err(d)
            }
        }
    }

    /// Call a macro (project or builtin) by name outside of any node, e.g.
    /// `generate_schema_name`. Returns `None` when no such macro exists.
    pub fn call_macro(
        &self,
        macro_name: &str,
        args: &[Value],
        node: Option<&Node>,
    ) -> Option<Result<String, Diagnostic>> {
        let src = format!("{{{{ {macro_name}(*__args) }}}}");
        if !self.dynamic_macros.contains_key(macro_name) {
            return None;
        }
        let scope = Arc::new(RenderScope {
            node_id: node.map(|n| n.unique_id.clone()).unwrap_or_default(),
            captured: Mutex::new(Default::default()),
            execute: false,
            is_incremental: false,
            connection: None,
            disabled: false,
            batch: None,
            var_overrides: None,
            env_var_overrides: None,
            macro_overrides: None,
        });
        let ctx = context! {
            __sluice => Value::from_dyn_object(scope.clone()),
            __args => Value::from(args.to_vec()),
            model => node.map(|n| model_value(n, None)),
            execute => false,
            thread_id => thread_id(),
        };
        let name = format!("<call {macro_name}>");
        let r = self
            .env
            .template_from_named_str(&name, &src)
            .and_then(|t| t.render(ctx));
        let pending = scope
            .captured
            .lock()
            .ok()
            .and_then(|mut c| c.pending_error.take());
        Some(r.map_err(|e| jinja_diagnostic(&e, &name, pending)))
    }

    pub fn has_macro(&self, name: &str) -> bool {
        self.dynamic_macros.contains_key(name)
    }

    /// Whether rendering `text` may query the warehouse: it says so itself
    /// (`run_query`, `adapter.`, …) or calls a macro that does.
    pub fn queries_when_rendered(&self, text: &str) -> bool {
        text_is_dynamic(text)
            || self.dynamic_macros.iter().any(|(name, dynamic)| {
                *dynamic
                    && text
                        .match_indices(name.as_str())
                        .any(|(i, _)| text[i + name.len()..].trim_start().starts_with('('))
            })
    }

    /// Replace phase-one placeholders with the resolved relation names.
    pub fn substitute(&self, text: &str) -> String {
        if !text.contains(MARK) {
            return text.to_string();
        }
        let relations = match self.resolver.relations.read() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let mut out = String::with_capacity(text.len());
        let mut parts = text.split(MARK);
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        let mut inside = true;
        for part in parts {
            if inside {
                let (id, what) = part.rsplit_once('|').unwrap_or((part, "relation"));
                match relations.get(id) {
                    Some(r) => match what {
                        "empty" => out.push_str(&r.render_limit_zero(self.settings.engine)),
                        "schema" => out.push_str(&r.schema),
                        "identifier" => out.push_str(&r.identifier),
                        "database" => out.push_str(r.database.as_deref().unwrap_or("")),
                        _ => out.push_str(&r.render()),
                    },
                    None => out.push_str(id),
                }
            } else {
                out.push_str(part);
            }
            inside = !inside;
        }
        out
    }
}

/// The `model` context variable: the node's identity and config.
/// `model` in Jinja; `batch` inside a microbatch batch.
fn model_value(n: &Node, batch: Option<&Value>) -> Value {
    #[derive(serde::Serialize)]
    struct ModelContext<'a> {
        name: &'a str,
        unique_id: &'a str,
        resource_type: &'a str,
        package_name: &'a str,
        path: &'a str,
        original_file_path: &'a str,
        fqn: &'a [String],
        config: &'a crate::project::node::Config,
        tags: &'a [String],
        description: &'a str,
        schema: &'a str,
        alias: &'a str,
        raw_code: &'a str,
        version: Option<&'a str>,
        latest_version: Option<&'a str>,
        batch: Option<&'a Value>,
    }
    Value::from_serialize(ModelContext {
        name: &n.name,
        unique_id: &n.unique_id,
        resource_type: n.resource_type.as_str(),
        package_name: &n.package_name,
        path: &n.path,
        original_file_path: &n.original_file_path,
        fqn: &n.fqn,
        config: &n.config,
        tags: &n.tags,
        description: &n.description,
        schema: &n.schema,
        alias: &n.alias,
        raw_code: &n.raw_code,
        version: n.version.as_deref(),
        latest_version: n.latest_version.as_deref(),
        batch,
    })
}

fn build_resolver(project: &Project) -> Resolver {
    let root = project.config.name.clone();
    let mut r = Resolver {
        prefer_node_package: project
            .config
            .flag("require_ref_prefers_node_package_to_root"),
        root: root.clone(),
        ..Resolver::default()
    };
    // The root project's nodes win a bare name over a package's.
    let is_root = |n: &Node| n.package_name == root;
    // Enabled nodes first: a ref falls through a disabled node to the next
    // candidate, as in dbt, and only lands on one when nothing else matches.
    let (enabled, disabled): (Vec<_>, Vec<_>) =
        project.nodes.iter().partition(|(_, n)| n.enabled());
    for (id, n) in enabled.into_iter().chain(disabled) {
        if !n.enabled() {
            r.disabled.insert(id.clone());
        }
        match n.resource_type {
            crate::project::node::ResourceType::Model
            | crate::project::node::ResourceType::Seed
            | crate::project::node::ResourceType::Snapshot => {
                // A versioned model answers to `name.v<v>`, and its latest
                // version to the bare name too.
                let mut keys = Vec::new();
                if let Some(v) = &n.version {
                    keys.push(ref_key(&n.name, Some(v)));
                }
                if n.version.is_none() || n.version == n.latest_version {
                    keys.push(n.name.clone());
                }
                for key in keys {
                    let taken = r
                        .by_name
                        .get(&key)
                        .and_then(|other| project.nodes.get(other));
                    if taken.is_none_or(|t| !is_root(t) && t.enabled() == n.enabled()) {
                        r.by_name.insert(key.clone(), id.clone());
                    }
                    r.by_package
                        .entry((n.package_name.clone(), key))
                        .or_insert_with(|| id.clone());
                }
            }
            crate::project::node::ResourceType::Source => {
                if let Some(s) = &n.source {
                    let key = (s.source_name.clone(), n.name.clone());
                    let taken = r
                        .sources
                        .get(&key)
                        .and_then(|other| project.nodes.get(other))
                        .is_some_and(is_root);
                    if !taken {
                        r.sources.insert(key, id.clone());
                    }
                }
            }
            _ => {}
        }
    }
    r
}

/// The resolver's key for `ref(name, v=version)`.
pub fn ref_key(name: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{name}.v{v}"),
        None => name.to_string(),
    }
}

/// The package (or project) a node belongs to, from its unique id
/// (`model.<package>.<name>`).
pub fn package_of(unique_id: &str) -> Option<&str> {
    unique_id.split('.').nth(1).filter(|p| !p.is_empty())
}

/// Convert a minijinja error into a diagnostic naming the template file and line.
pub fn jinja_diagnostic(
    e: &Error,
    fallback_name: &str,
    pending: Option<(&'static str, Vec<String>)>,
) -> Diagnostic {
    let name = e.name().unwrap_or(fallback_name);
    let file = name.split(MACRO_SEP).next().unwrap_or(name).to_string();
    let (code, hints) = match (pending, e.kind()) {
        (Some((code, hints)), _) => (code, hints),
        (None, ErrorKind::SyntaxError) => (
            "E0201",
            vec![
                "check that every `{%`/`{{` is closed and every block has its `end` tag"
                    .to_string(),
            ],
        ),
        (None, ErrorKind::UnknownFunction) => (
            "E0205",
            vec!["define the macro under macro-paths, or check its spelling".to_string()],
        ),
        (None, _) if e.detail().is_some_and(|d| d.starts_with("undefined has no method")) => (
            "E0202",
            vec!["`name.macro(…)` on an undefined name: if `name` is a dbt package, install it into dbt_packages/ (`dbt deps`; sluice loads installed packages' macros); otherwise check the spelling".to_string()],
        ),
        (None, _) => ("E0202", Vec::new()),
    };
    let message = match (code, e.detail()) {
        ("E0201", Some(d)) => format!("Jinja syntax error: {d}"),
        (_, Some(d)) => d.to_string(),
        (_, None) => e.kind().to_string(),
    };
    let mut d = Diagnostic::error(code, message).at(file, e.line());
    d.hints = hints;
    d
}

/// dbt's `builtins`: the original `ref`, `source` and `config`, whatever a
/// project's macros override. `builtins.ref.config` is dbt's runtime
/// config, which packages (elementary, the Tuva Project) read: the project
/// and profile names, vars, and the installed packages' versions.
fn builtins(project: &Project, settings: &RenderSettings) -> Value {
    let dependencies: BTreeMap<String, Value> = project
        .packages
        .iter()
        .map(|p| {
            (
                p.config.name.clone(),
                context! { project_name => p.config.name.clone(), version => p.config.version.clone() },
            )
        })
        .collect();
    let config = context! {
        project_name => project.config.name.clone(),
        profile_name => project.config.profile.clone(),
        target_name => settings.target.get("name").cloned().map(Value::from_serialize),
        version => project.config.version.clone(),
        args => context! { which => settings.which.clone() },
        cli_vars => Value::from_serialize(&settings.cli_vars),
        vars => Value::from_object(objects::VarsObj(Value::from_serialize(&project.config.vars))),
        dependencies => Value::from(dependencies),
    };
    context! {
        ref => Value::from_object(objects::Builtin { name: "ref", config: config.clone() }),
        source => Value::from_object(objects::Builtin { name: "source", config: config.clone() }),
        config => Value::from_object(objects::Builtin { name: "config", config }),
    }
}

/// dbt's `dbt_metadata_envs`: the `DBT_ENV_CUSTOM_ENV_<KEY>` variables by
/// their `<KEY>` (dbt also writes them into artifacts' metadata `env`).
pub fn metadata_envs(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.filter_map(|(k, v)| {
        let key = k.strip_prefix("DBT_ENV_CUSTOM_ENV_")?;
        (!key.is_empty()).then(|| (key.to_string(), v))
    })
    .collect()
}

/// Python's methods on Jinja values: minijinja-contrib's `pycompat`, and
/// `list.index(x)` and `copy()` it lacks (a shallow copy that can change in
/// place: `{% set d = config.copy() %}{% do d.update(…) %}`).
fn python_methods(
    state: &minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    if method == "index" && value.kind() == minijinja::value::ValueKind::Seq {
        let (wanted,): (Value,) = from_args(args)?;
        return value
            .try_iter()?
            .position(|v| v == wanted)
            .map(Value::from)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{wanted} is not in list"),
                )
            });
    }
    if method == "copy" && args.is_empty() {
        match value.kind() {
            minijinja::value::ValueKind::Map => return mutable::Dict::value(value.clone()),
            minijinja::value::ValueKind::Seq => return mutable::List::value(value.clone()),
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Jinja2 syntax minijinja does not have, rewritten into what it does
/// (unary plus, a conditional `do`, datetime arithmetic); every line stays
/// where it was.
/// Unchanged (and not copied) when there is none.
pub fn jinja2_syntax(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let mut out = Cow::Borrowed(text);
    for rewrite in [
        unary_plus as fn(&str) -> Cow<'_, str>,
        conditional_do,
        macro_defaults,
        python_datetime::timedelta_arithmetic,
        python_datetime::datetime_difference,
        python_datetime::timedelta_sums,
    ] {
        if let Cow::Owned(changed) = rewrite(&out) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// The value a rewritten macro default stands in with (see
/// `macro_defaults`).
const UNSET_DEFAULT: &str = "'__sluice_unset_default__'";

/// Jinja2 evaluates a macro argument's default when the macro is called,
/// where earlier arguments are visible: dbt-codegen writes
/// `{% macro generate_source(schema_name, …, name=schema_name) %}`.
/// minijinja evaluates defaults outside the macro, so such a default
/// becomes a marker, and the macro's first statements (on the same line)
/// replace the marker with the default evaluated inside. Defaults that name
/// no earlier argument are left alone.
fn macro_defaults(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("macro") {
        return std::borrow::Cow::Borrowed(text);
    }
    rewrite_tags(text, |body, body_at, close| {
        let sig = body.strip_prefix("macro")?;
        let (lp, rp) = (sig.find('(')?, sig.rfind(')')?);
        if lp > rp {
            return None;
        }
        let mut names: Vec<&str> = Vec::new();
        let mut late: Vec<(&str, &str)> = Vec::new();
        let mut params: Vec<String> = Vec::new();
        for p in split_top_level(&sig[lp + 1..rp]) {
            let (name, default) = match p.split_once('=') {
                Some((n, d)) => (n.trim(), Some(d.trim())),
                None => (p.trim(), None),
            };
            match default {
                Some(d) if names.iter().any(|n| mentions(d, n)) => {
                    late.push((name, d));
                    params.push(format!("{name}={UNSET_DEFAULT}"));
                }
                _ => params.push(p.trim().to_string()),
            }
            names.push(name);
        }
        if late.is_empty() {
            return None;
        }
        // The parameter list replaced, the tag kept, and after it (on the
        // same line) each late default set where the arguments are known.
        let list_start = body_at + "macro".len() + lp + 1;
        let trims_after = text[..close].ends_with('-');
        let mut with = params.join(", ");
        with.push_str(&text[body_at + "macro".len() + rp..close + 2]);
        for (name, default) in late {
            with.push_str(&format!(
                "{{% if {name} == {UNSET_DEFAULT} %}}{{% set {name} = ({default}) %}}{{% endif {}%}}",
                if trims_after { "-" } else { "" }
            ));
        }
        Some((list_start, close + 2, with))
    })
}

/// `s` split at commas outside brackets and strings.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0, None::<char>);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

/// Whether expression `expr` names the variable `name` (not an attribute,
/// not inside a string).
fn mentions(expr: &str, name: &str) -> bool {
    let bytes = expr.as_bytes();
    let mut quote = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if expr[i..].starts_with(name) => {
                let before = i.checked_sub(1).map(|j| bytes[j]);
                let after = bytes.get(i + name.len()).copied();
                let ident =
                    |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ident(before) && before != Some(b'.') && !ident(after) {
                    return true;
                }
            }
            None => {}
        }
        i += 1;
    }
    false
}

/// Jinja2's `do` takes any expression, and dbt code writes
/// `{% do items.append(x) if cond %}`; minijinja's takes only a call. Such
/// a `do` becomes `{% set __sluice_do = … %}`, which evaluates the same
/// expression (the call only happens when `cond` holds).
fn conditional_do(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("do ") || !text.contains(" if ") {
        return std::borrow::Cow::Borrowed(text);
    }
    rewrite_tags(text, |body, body_at, _close| {
        let expr = body
            .strip_prefix("do")
            .filter(|e| e.starts_with(char::is_whitespace))?;
        has_top_level_if(expr).then(|| (body_at, body_at + 2, "set __sluice_do =".to_string()))
    })
}

/// `text` with some `{% … %}` tags rewritten: `rewrite` sees each tag's
/// statement (`body`, after `{%`, whitespace control and blanks) and the
/// tag's closing `%}` offset, and returns what replaces `text[from..to]`
/// (`from` inside the tag or at its start, `to` anywhere up to past the
/// tag). Unchanged (and not copied) when no tag is rewritten.
fn rewrite_tags<'a>(
    text: &'a str,
    mut rewrite: impl FnMut(&str, usize, usize) -> Option<(usize, usize, String)>,
) -> std::borrow::Cow<'a, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(open) = text[at..].find("{%").map(|i| at + i) {
        at = open + 2;
        let Some(close) = text[at..].find("%}").map(|i| at + i) else {
            break;
        };
        let inner = &text[at..close];
        let body = inner.trim_start_matches(['-', '+']).trim_start();
        let body_at = at + (inner.len() - body.len());
        let Some((from, to, with)) = rewrite(&text[body_at..close], body_at, close) else {
            continue;
        };
        out.push_str(&text[copied..from]);
        out.push_str(&with);
        copied = to;
        at = to.max(close + 2);
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Jinja2 has a unary plus (`interval = +1`), minijinja does not: inside
/// `{{ … }}` and `{% … %}`, a `+` where an operand starts (after `=`, `(`,
/// `[`, `,` or another operator) is dropped. Unchanged (and not copied)
/// when there is none.
fn unary_plus(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('+') {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut drop = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find(['{']).map(|i| at + i) {
        at = open + 1;
        let Some(close_tag) = (match bytes.get(open + 1) {
            Some(b'{') => Some("}}"),
            Some(b'%') => Some("%}"),
            _ => None,
        }) else {
            continue;
        };
        let start = open + 2;
        let Some(end) = text[start..].find(close_tag).map(|i| start + i) else {
            break;
        };
        let mut quote: Option<u8> = None;
        let mut prev: u8 = b'(';
        for i in start..end {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => continue,
                None if b == b'\'' || b == b'"' => quote = Some(b),
                None if b == b'+'
                    && i > start
                    && b"=([,+-*/<>".contains(&prev)
                    && bytes
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'(' || *n == b' ') =>
                {
                    drop.push(i);
                }
                None => {}
            }
            if !b.is_ascii_whitespace() {
                prev = b;
            }
        }
        at = end;
    }
    if drop.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for i in drop {
        out.push_str(&text[copied..i]);
        out.push(' ');
        copied = i + 1;
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Whether `expr` has the keyword `if` outside brackets and strings (a
/// conditional expression).
fn has_top_level_if(expr: &str) -> bool {
    let bytes = expr.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'i' if depth == 0
                    && expr[i..].starts_with("if")
                    && i > 0
                    && bytes[i - 1].is_ascii_whitespace()
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_whitespace) =>
                {
                    return true
                }
                _ => {}
            },
        }
        i += 1;
    }
    false
}

/// Rewrite dbt's `{% test name(…) %}…{% endtest %}` blocks as the macros
/// they define (`test_name`), and `{% materialization name, adapter %}`
/// blocks as dbt's `materialization_<name>_<adapter>` macros, keeping every
/// line where it was. (A model whose `materialized` is none of sluice's
/// own is built by calling such a macro, see `commands::run`.)
pub fn desugar_test_blocks(text: &str) -> String {
    if !text.contains("test") && !text.contains("materialization") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(i) = rest.find("{%") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        let ws = rest.len() - rest.trim_start_matches(['-', '+']).len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let lead = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..lead]);
        rest = &rest[lead..];
        let ends_tag =
            |after: &str| after.starts_with(|c: char| c.is_whitespace() || c == '-' || c == '%');
        if let Some(after) = rest.strip_prefix("test ") {
            out.push_str("macro test_");
            rest = after.trim_start();
        } else if let Some(after) = rest.strip_prefix("endtest").filter(|a| ends_tag(a)) {
            out.push_str("endmacro");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("materialization ") {
            let Some(close) = after.find("%}") else { break };
            let name = crate::project::materialization_macro_name(&after[..close]);
            out.push_str(&format!("macro {name}() "));
            // Keep a `-%}` / `+%}` whitespace control.
            if let Some(c) = after[..close]
                .chars()
                .last()
                .filter(|c| *c == '-' || *c == '+')
            {
                out.push(c);
            }
            rest = &after[close..];
        } else if let Some(after) = rest
            .strip_prefix("endmaterialization")
            .filter(|a| ends_tag(a))
        {
            out.push_str("endmacro");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The template holding macro `name` of file `path` alone (see `add_macro_file`).
fn macro_template(path: &str, name: &str) -> String {
    format!("{path}{MACRO_SEP}{name}")
}

/// Between a macro file's path and a macro's name in a template name; never
/// part of a path.
const MACRO_SEP: char = '\u{1f}';

/// One installed package's macros: `<package>.<name>` functions, and the
/// same map once built, which its macros see as local names.
#[derive(Default)]
struct PackageMacros {
    functions: BTreeMap<String, Value>,
    locals: Arc<std::sync::OnceLock<Value>>,
}

/// Register a macro file's templates: the whole file (which checks its
/// syntax) and each macro on its own, which is what a call renders. dbt,
/// too, keeps only the macro blocks of a file; and a macro that calls
/// another of its file then reaches it as a macro call of its own, so that
/// one's `return()` ends only that call.
fn add_macro_templates(
    env: &mut Environment<'static>,
    path: &str,
    text: &str,
) -> Result<(), Diagnostic> {
    let text = mutable::literals(&jinja2_syntax(&desugar_test_blocks(text))).into_owned();
    env.add_template_owned(path.to_string(), text.clone())
        .map_err(|e| jinja_diagnostic(&e, path, None))?;
    for (name, source) in crate::project::macro_sources(&text).unwrap_or_default() {
        env.add_template_owned(macro_template(path, &name), source)
            .map_err(|e| jinja_diagnostic(&e, path, None))?;
    }
    Ok(())
}

/// Register a macro file of the project (or a builtin one, `package`
/// `dbt`): its templates, and each macro as a global function.
fn add_macro_file(
    env: &mut Environment<'static>,
    path: &str,
    text: &str,
    names: &[String],
    package: &str,
) -> Result<(), Diagnostic> {
    add_macro_templates(env, path, text)?;
    for name in names {
        env.add_global(name.clone(), macro_function(path, name, None, package));
    }
    Ok(())
}

/// Macro `name` of file `path` as a Jinja function; `locals` (a package's
/// own macros, once built) are visible by name inside it.
/// Macro `name` of `package` (`dbt` for dbt's own), defined in `path`, as
/// a function.
fn macro_function(
    path: &str,
    name: &str,
    locals: Option<Arc<std::sync::OnceLock<Value>>>,
    package: &str,
) -> Value {
    let (file, macro_name) = (path.to_string(), name.to_string());
    let id: Arc<str> = format!("{package}.{name}").into();
    Value::from_function(move |state: &State, args: Rest<Value>| {
        call_macro_in(
            state,
            &file,
            (&macro_name, &id),
            &args,
            locals.as_ref().and_then(|l| l.get()),
        )
    })
}

/// dbt's `thread_id`: the worker thread's name (`Thread-1 (worker)`), or
/// `MainThread` outside the workers.
fn thread_id() -> String {
    match std::thread::current().name() {
        Some(name) if name.starts_with("Thread-") => name.to_string(),
        _ => "MainThread".to_string(),
    }
}

/// Call `macro_name` defined in template `file`, in the caller's render
/// scope, honouring `return()`, with `locals` visible by name.
/// `(macro_name, id)`: the macro's name and `<package>.<name>`, which the
/// node's `depends_on.macros` records.
fn call_macro_in(
    state: &State,
    file: &str,
    (macro_name, id): (&str, &str),
    args: &[Value],
    locals: Option<&Value>,
) -> Result<Value, Error> {
    if let Ok(scope) = RenderScope::of(state) {
        // A unit test's `overrides: {macros: …}` answer for the macro.
        if let Some(v) = objects::overridden(scope.macro_overrides.as_ref(), macro_name) {
            return Ok(v);
        }
        // No macro call in progress on this thread: the template itself
        // calls this one.
        let direct = RETURNS.with(|r| r.borrow().is_empty());
        scope.with(|c| {
            if !c.macros.iter().any(|m| m == id) {
                c.macros.push(id.to_string());
            }
            if direct && !c.direct_macros.iter().any(|m| m == id) {
                c.direct_macros.push(id.to_string());
            }
        });
    }
    let tmpl = match state.env().get_template(&macro_template(file, macro_name)) {
        Ok(t) => t,
        Err(_) => state.env().get_template(file)?,
    };
    let ctx = context! {
        __sluice => state.lookup("__sluice"),
        this => state.lookup("this"),
        model => state.lookup("model"),
        execute => state.lookup("execute"),
        thread_id => state.lookup("thread_id"),
    };
    // Inside a materialization, every macro sees its `sql` and hooks.
    let ctx = match state.lookup("pre_hooks") {
        Some(pre_hooks) => context! {
            pre_hooks,
            post_hooks => state.lookup("post_hooks"),
            sql => state.lookup("sql"),
            compiled_code => state.lookup("compiled_code"),
            ..ctx
        },
        None => ctx,
    };
    // In an `on-run-end` hook, every macro sees the run's `results` and
    // `schemas` (dbt_artifacts reads `results` in a macro the hook calls).
    let ctx = match state.lookup("results") {
        Some(results) => context! {
            results,
            schemas => state.lookup("schemas"),
            database_schemas => state.lookup("database_schemas"),
            ..ctx
        },
        None => ctx,
    };
    let ctx = match locals {
        Some(locals) => context! { ..ctx, ..locals.clone() },
        None => ctx,
    };
    let not_found = || {
        Error::new(
            ErrorKind::UnknownFunction,
            format!("macro `{macro_name}` not found in {file}"),
        )
    };
    let mut module = tmpl.render_captured(ctx.clone())?;
    let mut m = module.state().lookup(macro_name).ok_or_else(not_found)?;
    let mut args = pythonic_args(args);
    // Jinja2 hands a macro the keyword (and extra positional) arguments it
    // does not declare as `kwargs` (`varargs`) when its body uses them;
    // minijinja refuses them. Take them out of the call and render the
    // macro again with those bound.
    let source = tmpl.source();
    if source.contains("kwargs") || source.contains("varargs") {
        let declared: Vec<String> = m
            .get_attr("arguments")
            .ok()
            .and_then(|a| a.try_iter().ok())
            .map(|it| it.map(|v| v.to_string()).collect())
            .unwrap_or_default();
        let (kept, kwargs, varargs) = split_undeclared(args, &declared)?;
        args = kept;
        module = tmpl.render_captured(context! { kwargs, varargs, ..ctx })?;
        m = module.state().lookup(macro_name).ok_or_else(not_found)?;
    }
    RETURNS.with(|r| r.borrow_mut().push(None));
    let result = m.call(module.state(), &args);
    let returned = RETURNS.with(|r| r.borrow_mut().pop()).flatten();
    match (returned, result) {
        (Some(v), _) => Ok(v),
        (None, r) => r,
    }
}

/// Lists passed to a macro can be changed in place, as in Python
/// (`{% set cols = group_by %}{% do cols.append(c) %}`).
fn pythonic_args(args: &[Value]) -> Vec<Value> {
    let mutable = |v: &Value| mutable::changeable(v.clone());
    args.iter()
        .map(|a| {
            if a.is_kwargs() {
                match minijinja::value::Kwargs::try_from(a.clone()) {
                    Ok(kw) => {
                        let pairs: Vec<(String, Value)> = kw
                            .args()
                            .filter_map(|k| {
                                Some((k.to_string(), mutable(&kw.peek::<Value>(k).ok()?)))
                            })
                            .collect();
                        Value::from(minijinja::value::Kwargs::from_iter(pairs))
                    }
                    Err(_) => a.clone(),
                }
            } else {
                mutable(a)
            }
        })
        .collect()
}

/// Split a macro call's arguments into those the macro declares and the
/// rest: undeclared keywords (`kwargs`) and extra positionals (`varargs`).
fn split_undeclared(
    args: Vec<Value>,
    declared: &[String],
) -> Result<(Vec<Value>, Value, Value), Error> {
    let mut positional = Vec::new();
    let mut kept_kw: Vec<(String, Value)> = Vec::new();
    let mut extra_kw: BTreeMap<String, Value> = BTreeMap::new();
    for a in args {
        if a.is_kwargs() {
            let kw = minijinja::value::Kwargs::try_from(a)?;
            for k in kw.args() {
                let v: Value = kw.peek(k)?;
                if k == "caller" || declared.iter().any(|d| d == k) {
                    kept_kw.push((k.to_string(), v));
                } else {
                    extra_kw.insert(k.to_string(), v);
                }
            }
        } else {
            positional.push(a);
        }
    }
    let extra_pos: Vec<Value> = if positional.len() > declared.len() {
        positional.split_off(declared.len())
    } else {
        Vec::new()
    };
    if !kept_kw.is_empty() {
        positional.push(Value::from(minijinja::value::Kwargs::from_iter(kept_kw)));
    }
    Ok((positional, Value::from(extra_kw), Value::from(extra_pos)))
}

fn register_globals(
    env: &mut Environment<'static>,
    project: &Project,
    settings: &RenderSettings,
    resolver: &Arc<Resolver>,
    graph: &Arc<std::sync::OnceLock<Value>>,
) {
    let engine = settings.engine;
    let empty = settings.empty;

    let r = resolver.clone();
    env.add_function(
        "ref",
        move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
            let scope = RenderScope::of(state)?;
            let (pos, kwargs): (&[Value], Kwargs) = from_args(&args)?;
            let version: Option<Value> = kwargs.get("version").or_else(|_| kwargs.get("v")).ok();
            let strs: Vec<String> = pos.iter().map(|v| v.to_string()).collect();
            let (package, name) = match strs.as_slice() {
                [n] => (None, n.clone()),
                [p, n] => (Some(p.clone()), n.clone()),
                _ => {
                    return Err(scope.fail(
                        "E0301",
                        "ref() takes a model name, or a package and a model name".into(),
                        Vec::new(),
                    ))
                }
            };
            let from = package_of(&scope.node_id).unwrap_or(&r.root);
            let version = version.filter(|v| !v.is_none() && !v.is_undefined());
            let key = ref_key(&name, version.as_ref().map(|v| v.to_string()).as_deref());
            let Some(id) = r.resolve_ref(package.as_deref(), &key, from).cloned() else {
                if scope.node_disabled() {
                    return Ok(Value::UNDEFINED);
                }
                let hint = match did_you_mean(&name, r.by_name.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "no model, seed or snapshot has that name".to_string(),
                };
                return Err(scope.fail(
                    "E0301",
                    format!("unknown model `{key}` in ref()"),
                    vec![hint],
                ));
            };
            scope.with(|c| {
                let call = RefCall {
                    name: name.clone(),
                    package: package.clone(),
                    version: version.map(|v| v.to_string()),
                };
                if !c.refs.contains(&call) {
                    c.refs.push(call);
                }
            });
            Ok(Value::from_object(RelationObj {
                resolved: r.relation(&id),
                unique_id: id,
                engine,
                limit_zero: empty,
                event_time_window: scope.batch.clone(),
            }))
        },
    );

    let r = resolver.clone();
    env.add_function(
        "source",
        move |state: &State, source_name: String, table_name: String| -> Result<Value, Error> {
            let scope = RenderScope::of(state)?;
            let Some(id) = r
                .sources
                .get(&(source_name.clone(), table_name.clone()))
                .cloned()
            else {
                if scope.node_disabled() {
                    return Ok(Value::UNDEFINED);
                }
                let known: Vec<String> =
                    r.sources.keys().map(|(s, t)| format!("{s}.{t}")).collect();
                let wanted = format!("{source_name}.{table_name}");
                let hint = match did_you_mean(&wanted, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "declare it under `sources:` in a YAML file in your model paths".to_string()
                    }
                };
                return Err(scope.fail(
                    "E0302",
                    format!("unknown source `{wanted}` in source()"),
                    vec![hint],
                ));
            };
            scope.with(|c| {
                let pair = vec![source_name, table_name];
                if !c.sources.contains(&pair) {
                    c.sources.push(pair);
                }
            });
            Ok(Value::from_object(RelationObj {
                resolved: r.relation(&id),
                unique_id: id,
                engine,
                limit_zero: empty,
                event_time_window: scope.batch.clone(),
            }))
        },
    );

    let base = project
        .nodes
        .iter()
        .map(|(k, n)| (k.clone(), n.config.clone()))
        .collect();
    env.add_global("config", Value::from_object(ConfigObj { base }));

    // dbt's vars for a node of package P: P's own `vars:`, then the root
    // project's, then `--vars`; each project's global vars and those it
    // scopes to P (`vars: {P: {…}}`).
    let vars_for = |package: &str| -> serde_json::Map<String, serde_json::Value> {
        let mut vars = serde_json::Map::new();
        let own = project.packages.iter().find(|p| p.config.name == package);
        for config in own.map(|p| &p.config).into_iter().chain([&project.config]) {
            for (k, v) in &config.vars {
                if k != package {
                    vars.insert(k.clone(), v.clone());
                }
            }
            if let Some(m) = config
                .vars
                .get(package)
                .and_then(serde_json::Value::as_object)
            {
                vars.extend(m.clone());
            }
        }
        vars.extend(settings.cli_vars.clone());
        vars
    };
    let root_name = project.config.name.clone();
    let vars: Arc<HashMap<String, serde_json::Map<String, serde_json::Value>>> = Arc::new(
        std::iter::once(root_name.as_str())
            .chain(project.packages.iter().map(|p| p.config.name.as_str()))
            .map(|p| (p.to_string(), vars_for(p)))
            .collect(),
    );
    env.add_function("var", move |state: &State, name: String, args: Rest<Value>| -> Result<Value, Error> {
        let default = var_default(&args)?;
        let scope = RenderScope::of(state).ok();
        if let Some(v) = scope
            .as_ref()
            .and_then(|s| objects::overridden(s.var_overrides.as_ref(), &name))
        {
            return Ok(v);
        }
        let package = scope
            .as_ref()
            .and_then(|s| package_of(&s.node_id))
            .filter(|p| vars.contains_key(*p))
            .unwrap_or(&root_name);
        let vars = &vars[package];
        match (vars.get(&name), default) {
            // dbt renders a var's Jinja when it is read (`"{{ 5 if … }}"`).
            (Some(serde_json::Value::String(text)), _) if text.contains("{{") || text.contains("{%") => {
                let ctx = context! { __sluice => state.lookup("__sluice") };
                state.env().render_str(text, ctx).map(Value::from)
            }
            (Some(v), _) => Ok(Value::from_serialize(v)),
            (None, Some(d)) => Ok(d),
            (None, None) if scope.as_ref().is_some_and(|s| s.node_disabled()) => Ok(Value::from(())),
            (None, None) => {
                let hint = match did_you_mean(&name, vars.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("define it under `vars:` in dbt_project.yml, pass --vars '{{{name}: …}}', or give var() a default"),
                };
                match scope {
                    Some(scope) => Err(scope.fail("E0203", format!("required var `{name}` is not defined"), vec![hint])),
                    None => Err(Error::new(ErrorKind::InvalidOperation, format!("required var `{name}` is not defined"))),
                }
            }
        }
    });
    env.add_function("env_var", env_var);
    add_dbt_filters(env);

    env.add_global("target", Value::from_serialize(&settings.target));
    env.add_global("project_name", Value::from(project.config.name.clone()));
    env.add_global("dbt_version", Value::from("1.9.0"));
    env.add_global(
        "run_started_at",
        python_datetime::PyDateTime::utc_now().value(),
    );
    env.add_global(
        "invocation_id",
        Value::from(uuid::Uuid::new_v4().to_string()),
    );
    env.add_global("exceptions", Value::from_object(Exceptions));
    python_datetime::register(env);
    env.add_global(
        "modules",
        context! {
            datetime => python_datetime::module(),
            pytz => python_datetime::pytz_module(),
            re => python_re::module(),
        },
    );
    env.add_global(
        "flags",
        context! { FULL_REFRESH => settings.full_refresh, WHICH => settings.which.clone(), STORE_FAILURES => false },
    );
    env.add_global(
        "graph",
        Value::from_object(objects::GraphObj::new(graph.clone())),
    );
    env.add_global("builtins", builtins(project, settings));
    env.add_global(
        "dbt_metadata_envs",
        Value::from(metadata_envs(std::env::vars())),
    );
    env.add_global(
        "invocation_args_dict",
        context! { which => settings.which.clone(), vars => Value::from_serialize(&settings.cli_vars), full_refresh => settings.full_refresh },
    );

    env.add_function("is_incremental", |state: &State| -> Result<bool, Error> {
        Ok(RenderScope::of(state)
            .map(|s| s.is_incremental)
            .unwrap_or(false))
    });
    env.add_function(
        "log",
        // `log(msg, True)` or, as dbt code mostly writes it, `log(msg, info=True)`.
        |state: &State,
         msg: Value,
         info: Option<Value>,
         kwargs: minijinja::value::Kwargs|
         -> Result<String, Error> {
            let info = match info {
                Some(v) => v.is_true(),
                None => kwargs.get::<Option<bool>>("info")?.unwrap_or(false),
            };
            kwargs.assert_all_used()?;
            if let Ok(scope) = RenderScope::of(state) {
                if scope.execute && info {
                    scope.with(|c| c.logs.push(msg.to_string()));
                }
            }
            Ok(String::new())
        },
    );
    env.add_function("print", |msg: Value| -> String {
        eprintln!("{msg}");
        String::new()
    });
    env.add_function("return", |v: Value| -> Result<Value, Error> {
        // What a macro returns is Python data: its dicts and lists change
        // in place (`return({'durations': {}})`, then `.update(…)`).
        let v = mutable::deep(v);
        RETURNS.with(|r| {
            if let Some(top) = r.borrow_mut().last_mut() {
                *top = Some(v);
            }
        });
        Err(Error::new(ErrorKind::InvalidOperation, RETURN_SIGNAL))
    });
    // dbt's `tojson(value, default=None, sort_keys=False)`: Python's
    // `json.dumps` text.
    env.add_function(
        "tojson",
        |v: Value, default: Option<Value>, kwargs: Kwargs| -> Result<Value, Error> {
            let o = pyjson::Options {
                sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
                indent: kwargs.get::<Option<usize>>("indent")?,
                html_safe: false,
            };
            let default = match default {
                Some(d) => Some(d),
                None => kwargs.get::<Option<Value>>("default")?,
            };
            kwargs.assert_all_used()?;
            // What json.dumps cannot write (an object it does not know)
            // gives the default, when there is one.
            if v.is_undefined() {
                if let Some(d) = default {
                    return Ok(d);
                }
            }
            Ok(Value::from(pyjson::dumps(&objects::to_json(&v), &o)))
        },
    );
    // Jinja's `|tojson` filter: sorted keys, HTML-safe.
    env.add_filter("tojson", |v: Value, indent: Option<usize>| -> String {
        let o = pyjson::Options {
            sort_keys: true,
            indent,
            html_safe: true,
        };
        pyjson::dumps(&objects::to_json(&v), &o)
    });
    env.add_function(
        "fromjson",
        |s: String, default: Option<Value>| -> Result<Value, Error> {
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(v) => Ok(Value::from_serialize(v)),
                Err(e) => default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))
                }),
            }
        },
    );
    // `namespace(items=[], seen={})`: the lists and dicts given can change
    // in place (`ns.seen.update(…)`), as in Python.
    env.add_function(
        "namespace",
        |defaults: Option<Value>| -> Result<Value, Error> {
            let defaults = defaults.map(|d| {
                let pairs: Vec<(Value, Value)> = d
                    .try_iter()
                    .map(|keys| {
                        keys.map(|k| {
                            let v = d.get_item(&k).unwrap_or_default();
                            (k, mutable::deep(v))
                        })
                        .collect()
                    })
                    .unwrap_or_default();
                Value::from_iter(pairs)
            });
            minijinja::functions::namespace(defaults)
        },
    );
    // dbt's `render(text)`: Jinja in a string, rendered where it is called.
    env.add_function(
        "render",
        |state: &State, text: Value| -> Result<Value, Error> {
            let Some(s) = text.as_str() else {
                return Ok(text);
            };
            if !s.contains("{{") && !s.contains("{%") {
                return Ok(text);
            }
            let ctx = context! {
                __sluice => state.lookup("__sluice"),
                this => state.lookup("this"),
                model => state.lookup("model"),
                execute => state.lookup("execute"),
            };
            state.env().render_str(s, ctx).map(Value::from)
        },
    );
    env.add_function(
        "toyaml",
        |v: Value, default: Option<Value>, kwargs: Kwargs| -> Result<Value, Error> {
            let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
            let json = serde_json::to_value(&v)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()));
            match json.and_then(|j| {
                crate::project::yaml::to_string(&j, sort_keys)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
            }) {
                Ok(text) => Ok(Value::from(text)),
                Err(e) => default.ok_or(e),
            }
        },
    );
    env.add_function("fromyaml", |s: String| -> Result<Value, Error> {
        crate::project::yaml::parse(&s, "<fromyaml>")
            .map(Value::from_serialize)
            .map_err(|d| Error::new(ErrorKind::InvalidOperation, d.message))
    });
    // `{{ doc('name') }}` (or `doc('package', 'name')`) in a description:
    // the text of the `{% docs name %}` block.
    let docs = Arc::new(project.docs.clone());
    env.add_function("doc", move |args: Rest<String>| -> Result<String, Error> {
        let name = match args.as_slice() {
            [name] | [_, name] => name,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "doc() takes a doc block's name, or a package and a name",
                ))
            }
        };
        docs.get(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("doc `{name}` was not found: no `{{% docs {name} %}}` block in a .md file"),
            )
        })
    });
    env.add_function("local_md5", |s: String| crate::project::md5_hex(&s));
    // dbt's `_strict` variants raise where Python would on bad input;
    // arguments that convert to lists cannot fail here.
    for name in ["zip", "zip_strict"] {
        env.add_function(name, |a: Vec<Value>, b: Vec<Value>| -> Vec<Value> {
            a.into_iter()
                .zip(b)
                .map(|(x, y)| Value::from(vec![x, y]))
                .collect()
        });
    }
    // A Python set has no order, and two with the same members are equal:
    // sorted and without repeats, these compare the same way.
    for name in ["set", "set_strict"] {
        env.add_function(name, |mut items: Vec<Value>| -> Vec<Value> {
            items.sort();
            items.dedup();
            items
        });
    }
    env.add_function(
        "run_query",
        |state: &State, sql: String| -> Result<Value, Error> {
            let scope = RenderScope::of(state)?;
            if !scope.execute {
                return Ok(Value::from(()));
            }
            Ok(Value::from_object(TableObj(scope.run_query(&sql)?)))
        },
    );
    env.add_function("statement", |state: &State, name: Option<String>, kwargs: Kwargs| -> Result<String, Error> {
        let scope = RenderScope::of(state)?;
        let fetch: bool = kwargs.get::<Option<bool>>("fetch_result")?.unwrap_or(false);
        let _: Option<bool> = kwargs.get("auto_begin")?;
        let caller: Value = kwargs.get("caller")?;
        let sql = caller.call(state, &[])?.to_string();
        if scope.execute {
            let table = scope.run_query(&sql)?;
            let data: Vec<Value> = table
                .rows
                .iter()
                .map(|r| Value::from(r.iter().map(Value::from_serialize).collect::<Vec<_>>()))
                .collect();
            let n = table.rows.len();
            let result = context! { data => data, table => Value::from_object(TableObj(table)), response => context! { rows_affected => n } };
            if let Some(name) = name {
                scope.with(|c| c.results.insert(name, if fetch { result } else { context! {} }));
            }
        }
        Ok(String::new())
    });
    env.add_function(
        "load_result",
        |state: &State, name: String| -> Result<Value, Error> {
            let scope = RenderScope::of(state)?;
            Ok(scope
                .with(|c| c.results.get(&name).cloned())
                .unwrap_or_default())
        },
    );
    env.add_global(
        "adapter",
        Value::from_object(adapter::AdapterObj {
            engine,
            search_orders: adapter::search_orders(project),
        }),
    );
    env.add_global("api", adapter::api(engine));
}

/// dbt's type-coercing filters: `as_number`, `as_bool`, `as_native`, `as_text`.
fn add_dbt_filters(env: &mut Environment<'static>) {
    fn native(v: Value) -> Value {
        match v.as_str() {
            Some(s) => match serde_json::from_str::<serde_json::Value>(s.trim()) {
                Ok(j) => Value::from_serialize(j),
                Err(_) => v,
            },
            None => v,
        }
    }
    env.add_filter("as_number", native);
    env.add_filter("as_bool", native);
    env.add_filter("as_native", native);
    env.add_filter("as_text", |v: Value| v.to_string());
    env.add_filter("int", jinja_int);
    env.add_filter("round", jinja_round);
    env.add_filter("float", jinja_float);
    // Jinja2's Undefined has length 0 (`column.fields | length` on an
    // adapter whose columns have no `fields`).
    fn length(v: &Value) -> Result<usize, minijinja::Error> {
        if v.is_undefined() {
            return Ok(0);
        }
        minijinja::filters::length(v)
    }
    env.add_filter("length", length);
    env.add_filter("count", length);
    // Python's `list(…)` makes a list that changes in place
    // (`(nodes | selectattr(…) | list).pop()`).
    env.add_filter("list", |state: &minijinja::State, v: Value| {
        mutable::List::value(minijinja::filters::list(state, v)?)
    });
}

/// Jinja2's `int` filter: a number, a numeric string (`"3"`, `"3.7"`,
/// `"0x1F"` with `base=16`) or `default` (0) for anything else. minijinja's
/// own fails on what Jinja2 turns into the default, which dbt code relies on.
fn jinja_int(v: Value, default: Option<Value>, base: Option<u32>) -> Value {
    let default = default.unwrap_or(Value::from(0));
    if let Ok(i) = i64::try_from(v.clone()) {
        return Value::from(i);
    }
    if let Some(f) = v.as_str().map(str::trim).and_then(|s| {
        let base = base.unwrap_or(10);
        let digits = s.trim_start_matches("0x").trim_start_matches("0X");
        i64::from_str_radix(if base == 16 { digits } else { s }, base)
            .ok()
            .map(|i| i as f64)
            .or_else(|| s.parse::<f64>().ok())
    }) {
        return Value::from(f.trunc() as i64);
    }
    match f64::try_from(v) {
        Ok(f) if f.is_finite() => Value::from(f.trunc() as i64),
        _ => default,
    }
}

/// Jinja2's `round(precision=0, method='common')`: `ceil` and `floor`
/// round up or down; the result stays a float, as in Python.
fn jinja_round(v: Value, precision: Option<i32>, method: Option<String>) -> Result<Value, Error> {
    let x = f64::try_from(v.clone())
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("cannot round {v}")))?;
    let scale = 10f64.powi(precision.unwrap_or(0));
    let scaled = x * scale;
    let r = match method.as_deref().unwrap_or("common") {
        // Python rounds halves to even.
        "common" => scaled.round_ties_even(),
        "ceil" => scaled.ceil(),
        "floor" => scaled.floor(),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("round: method must be common, ceil or floor, not {other}"),
            ))
        }
    };
    Ok(Value::from(r / scale))
}

/// Jinja2's `float` filter: a number, a numeric string, or `default` (0.0).
fn jinja_float(v: Value, default: Option<Value>) -> Value {
    let parsed = match v.as_str() {
        Some(s) => s.trim().parse::<f64>().ok(),
        None if v.is_number() => f64::try_from(v).ok(),
        None => None,
    };
    parsed.map_or_else(|| default.unwrap_or(Value::from(0.0)), Value::from)
}

/// An optional argument given by position or by keyword (`var('x', 3)` or
/// `var('x', default=3)`; dbt code writes both).
/// `var(name, default)`'s default, by position or keyword. A `None` given
/// as the default is a default (`var('x', none)` is none when `x` is not
/// set), unlike no default at all.
fn var_default(args: &[Value]) -> Result<Option<Value>, Error> {
    let mut default = None;
    for a in args {
        if a.is_kwargs() {
            let kwargs = minijinja::value::Kwargs::try_from(a.clone())?;
            if kwargs.has("default") {
                default = Some(kwargs.get::<Value>("default")?);
            }
            kwargs.assert_all_used()?;
        } else if default.is_none() {
            default = Some(a.clone());
        } else {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "var() takes a name and a default",
            ));
        }
    }
    Ok(default)
}

fn positional_or_keyword(
    given: Option<Value>,
    kwargs: &minijinja::value::Kwargs,
    name: &str,
) -> Result<Option<Value>, Error> {
    let by_name: Option<Value> = kwargs.get(name)?;
    kwargs.assert_all_used()?;
    Ok(given.or(by_name))
}

fn env_var(
    state: &State,
    name: String,
    default: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, Error> {
    let default = positional_or_keyword(default, &kwargs, "default")?;
    if let Some(v) = RenderScope::of(state)
        .ok()
        .and_then(|s| objects::overridden(s.env_var_overrides.as_ref(), &name))
    {
        return Ok(v);
    }
    match (std::env::var(&name), default) {
        (Ok(v), _) => Ok(Value::from(v)),
        (Err(_), Some(d)) => Ok(d),
        (Err(_), None) => {
            let msg = format!("environment variable `{name}` is not set");
            let hints = vec![format!(
                "export {name}=… or give a default: env_var('{name}', 'default')"
            )];
            match RenderScope::of(state) {
                Ok(scope) => Err(scope.fail("E0206", msg, hints)),
                Err(_) => Err(Error::new(ErrorKind::InvalidOperation, msg)),
            }
        }
    }
}

/// Render a string that may use `env_var()` and `var()` (profiles.yml,
/// dbt_project.yml values) without a project.
pub fn render_config_string(
    text: &str,
    cli_vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.add_function("env_var", env_var);
    add_dbt_filters(&mut env);
    let vars = cli_vars.clone();
    env.add_function(
        "var",
        move |name: String,
              default: Option<Value>,
              kwargs: minijinja::value::Kwargs|
              -> Result<Value, Error> {
            let default = positional_or_keyword(default, &kwargs, "default")?;
            match (vars.get(&name), default) {
                (Some(v), _) => Ok(Value::from_serialize(v)),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("required var `{name}` is not defined"),
                )),
            }
        },
    );
    env.render_str(text, context! {}).map_err(|e| {
        e.detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_blocks_become_macros_on_the_same_lines() {
        let src = "{% test is_positive(model, column_name) %}\nselect 1\n{%- endtest %}\n{% macro x() %}{% endmacro %}";
        assert_eq!(
            desugar_test_blocks(src),
            "{% macro test_is_positive(model, column_name) %}\nselect 1\n{%- endmacro %}\n{% macro x() %}{% endmacro %}"
        );
    }

    #[test]
    fn defaults_may_be_given_by_keyword() {
        let vars = serde_json::Map::new();
        for (text, want) in [
            ("{{ var('missing', default=3) }}", "3"),
            ("{{ var('missing', 4) }}", "4"),
            (
                "{{ env_var('SLUICE_TEST_SURELY_UNSET', default='d') }}",
                "d",
            ),
        ] {
            assert_eq!(render_config_string(text, &vars).unwrap(), want, "{text}");
        }
        assert!(render_config_string("{{ var('missing', dflt=3) }}", &vars).is_err());
    }

    #[test]
    fn materialization_blocks_become_dbt_named_macros_on_the_same_lines() {
        let src = "{% materialization table_x, adapter='duckdb', supported_languages=['sql'] -%}\n  {{ return('t') }}\n{%- endmaterialization %}\n{% materialization view_x, default %}v{% endmaterialization %}";
        let out = desugar_test_blocks(src);
        assert_eq!(
            out,
            "{% macro materialization_table_x_duckdb() -%}\n  {{ return('t') }}\n{%- endmacro %}\n{% macro materialization_view_x_default() %}v{% endmacro %}"
        );
    }

    #[test]
    fn macro_defaults_may_name_earlier_arguments() {
        let src = "{%- macro gen(schema_name, db=target.database, name=schema_name, n=[schema_name, 'name']) -%}\n{{ name }}/{{ n | join(',') }}/{{ db }}{%- endmacro %}";
        let rewritten = macro_defaults(src);
        assert_eq!(rewritten.lines().count(), src.lines().count());
        assert!(
            rewritten.contains("name='__sluice_unset_default__'"),
            "{rewritten}"
        );
        assert!(rewritten.contains("db=target.database,"), "{rewritten}");
        let mut env = minijinja::Environment::new();
        env.add_global("target", minijinja::context! { database => "dev" });
        env.add_template("m", &rewritten).unwrap();
        let t = env
            .template_from_str(
                "{% from 'm' import gen %}[{{ gen('raw') }}][{{ gen('raw', name='x', n=[]) }}]",
            )
            .unwrap();
        assert_eq!(t.render(()).unwrap(), "[raw/raw,name/dev][x//dev]");
        assert!(matches!(
            macro_defaults("{% macro f(a, b=1) %}{% endmacro %}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_conditional_do_runs_its_call_only_when_the_condition_holds() {
        let src = "{% set l = [] %}{%- do l.append('a') if true -%}{% do l.append('b') if false %}{% do l.append('(if)') %}{{ l | join(',') }}";
        let rewritten = jinja2_syntax(src);
        assert!(
            rewritten.contains("{%- set __sluice_do = l.append('a') if true -%}"),
            "{rewritten}"
        );
        assert!(
            rewritten.contains("{% do l.append('(if)') %}"),
            "{rewritten}"
        );
        let mut env = Environment::new();
        env.add_function(mutable::LIST, mutable::List::value);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        let out = env
            .render_str(&mutable::literals(&rewritten), context! {})
            .expect("render");
        assert_eq!(out, "a,(if)");
        assert!(matches!(
            jinja2_syntax("{% do x.y() %}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn metadata_envs_are_the_custom_env_vars_by_their_key() {
        let vars = [
            ("DBT_ENV_CUSTOM_ENV_RUN_REASON", "nightly"),
            ("DBT_ENV_CUSTOM_ENV_", "no key"),
            ("DBT_ENV_SECRET_TOKEN", "hidden"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let got = metadata_envs(vars.into_iter());
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![("RUN_REASON".to_string(), "nightly".to_string())]
        );
    }

    #[test]
    fn graph_setdefault_is_a_cache_shared_by_renders() {
        let mut env = Environment::new();
        env.add_function(mutable::DICT, mutable::Dict::value);
        env.set_unknown_method_callback(python_methods);
        let graph = Arc::new(std::sync::OnceLock::new());
        env.add_global("graph", Value::from_object(objects::GraphObj::new(graph)));
        let r = |t: &str| {
            env.render_str(&mutable::literals(t), context! {})
                .unwrap_or_else(|e| panic!("{e}"))
        };
        r("{% do graph.setdefault('cache', {}).update({'a': 1}) %}");
        assert_eq!(
            r("{{ graph.setdefault('cache', {}).get('a') }}|{{ graph.get('cache').a }}|{{ graph.nodes | length }}|{{ [3, 4].index(4) }}"),
            "1|1|0|1"
        );
        // `copy()` of a plain dict or list changes in place, the original does not.
        let ctx = context! { cfg => context! { a => 1 }, xs => vec![1] };
        let out = env
            .render_str(
                "{% set d = cfg.copy() %}{% do d.update({'b': 2}) %}{% set l = xs.copy() %}{% do l.append(2) %}{{ d | length }}{{ cfg | length }}{{ l | length }}{{ xs | length }}",
                ctx,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, "2121");
    }

    #[test]
    fn int_float_and_round_filters_behave_as_in_jinja2() {
        let mut env = Environment::new();
        add_dbt_filters(&mut env);
        let r = |t: &str| env.render_str(t, context! {}).unwrap();
        assert_eq!(
            r("{{ '-1' | int }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(5) }}"),
            "-1|3|0|5"
        );
        assert_eq!(r("{{ '1f' | int(0, 16) }}|{{ 2.9 | int }}"), "31|2");
        assert_eq!(r("{{ 'x' | float }}|{{ '2.5' | float }}"), "0.0|2.5");
        assert_eq!(r("{{ (7 / 2) | round(0, 'ceil') | int }}|{{ 2.45 | round(1, 'floor') }}|{{ 2.5 | round }}"), "4|2.4|2.0");
    }

    #[test]
    fn a_call_into_a_missing_package_says_to_install_it() {
        let env = Environment::new();
        let e = env
            .render_str("select 1\n{{ dbt_utils.star(x) }}", ())
            .expect_err("undefined package");
        let d = jinja_diagnostic(&e, "models/m.sql", None);
        assert_eq!((d.code, d.line), ("E0202", Some(2)));
        assert!(
            d.hints
                .iter()
                .any(|h| h.contains("install it into dbt_packages/")),
            "{d:?}"
        );
    }
}

mod adapter {
    //! `adapter.*` as dbt macros use it.
    use std::collections::HashMap;
    use std::sync::Arc;

    use minijinja::value::{from_args, Kwargs, Object};
    use minijinja::{Error, ErrorKind, State, Value};

    use super::objects::{quote, RelationObj, RenderScope, ResolvedRelation};
    use crate::warehouse::Engine;

    #[derive(Debug)]
    pub struct AdapterObj {
        pub engine: Engine,
        /// `dispatch:` in dbt_project.yml: macro namespace → the packages to
        /// search, in order (the project's own name for its macros).
        pub search_orders: HashMap<String, SearchOrder>,
    }

    /// Packages to search in order, each with (for the project itself) the
    /// names of the macros it defines.
    pub type SearchOrder = Vec<(String, Option<Vec<String>>)>;

    /// The project's `dispatch:` search orders, each package paired with
    /// the names of the macros it defines (`None` for a package whose
    /// namespace is looked up by name at dispatch time).
    pub fn search_orders(project: &crate::project::Project) -> HashMap<String, SearchOrder> {
        let root = project.config.name.as_str();
        let own: Vec<String> = project
            .macros
            .iter()
            .filter(|m| m.package.is_none())
            .flat_map(|m| m.names.iter().cloned())
            .collect();
        let mut out = HashMap::new();
        for entry in &project.config.dispatch {
            let Some(namespace) = entry.get("macro_namespace").and_then(|v| v.as_str()) else {
                continue;
            };
            let order = entry
                .get("search_order")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_else(|| vec![namespace.to_string()]);
            let order = order
                .into_iter()
                .map(|p| {
                    let names = (p == root).then(|| own.clone());
                    (p, names)
                })
                .collect();
            out.insert(namespace.to_string(), order);
        }
        out
    }

    /// `api`: what dbt's macros use of its adapter classes (`api.Column`,
    /// `api.Relation`).
    pub fn api(engine: Engine) -> Value {
        minijinja::context! {
            Column => Value::from_object(ColumnApi),
            Relation => Value::from_object(RelationApi { engine }),
        }
    }

    /// `api.Relation.create(database=…, schema=…, identifier=…, type=…)`.
    #[derive(Debug)]
    struct RelationApi {
        engine: Engine,
    }

    impl Object for RelationApi {
        fn call_method(
            self: &Arc<Self>,
            _state: &State<'_, '_>,
            method: &str,
            args: &[Value],
        ) -> Result<Value, Error> {
            if method != "create" {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("api.Relation has no method `{method}`"),
                ));
            }
            let (kwargs,): (Kwargs,) = from_args(args)?;
            let part = |name: &str| -> Result<Option<String>, Error> {
                Ok(kwargs
                    .get::<Option<Value>>(name)?
                    .filter(|v| !v.is_none() && !v.is_undefined())
                    .map(|v| v.to_string()))
            };
            let resolved = ResolvedRelation {
                database: part("database")?,
                schema: part("schema")?.unwrap_or_default(),
                identifier: part("identifier")?.unwrap_or_default(),
                kind: part("type")?.unwrap_or_else(|| "table".into()),
                event_time: None,
                external: None,
            };
            Ok(Value::from_object(RelationObj {
                unique_id: String::new(),
                resolved: Some(resolved),
                engine: self.engine,
                limit_zero: false,
                event_time_window: None,
            }))
        }
    }

    /// `api.Column`'s class methods, as dbt's base `Column` defines them
    /// (neither the PostgreSQL nor the DuckDB adapter changes them).
    #[derive(Debug)]
    struct ColumnApi;

    impl Object for ColumnApi {
        fn call_method(
            self: &Arc<Self>,
            _state: &State<'_, '_>,
            method: &str,
            args: &[Value],
        ) -> Result<Value, Error> {
            match method {
                // dbt's one type label: `string` is `TEXT`.
                "translate_type" => {
                    let (dtype,): (String,) = from_args(args)?;
                    Ok(Value::from(if dtype.eq_ignore_ascii_case("string") {
                        "TEXT".to_string()
                    } else {
                        dtype
                    }))
                }
                "numeric_type" => {
                    let (dtype, precision, scale): (String, Value, Value) = from_args(args)?;
                    Ok(Value::from(if precision.is_none() || scale.is_none() {
                        dtype
                    } else {
                        format!("{dtype}({precision},{scale})")
                    }))
                }
                "string_type" => {
                    let (size,): (Value,) = from_args(args)?;
                    Ok(Value::from(format!("character varying({size})")))
                }
                _ => Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("api.Column has no method `{method}`"),
                )),
            }
        }
    }

    fn engine_name(e: Engine) -> &'static str {
        match e {
            Engine::DuckDb => "duckdb",
            Engine::Postgres => "postgres",
        }
    }

    fn lit(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    impl Object for AdapterObj {
        fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
            match key.as_str()? {
                "type" => Some(Value::from(engine_name(self.engine))),
                _ => None,
            }
        }

        fn call_method(
            self: &Arc<Self>,
            state: &State<'_, '_>,
            method: &str,
            args: &[Value],
        ) -> Result<Value, Error> {
            let scope = RenderScope::of(state)?;
            // What the warehouse answers can change the SQL: render again
            // when executing.
            if matches!(method, "get_relation" | "get_columns_in_relation") {
                scope.with(|c| c.dynamic = true);
            }
            match method {
                "type" => Ok(Value::from(engine_name(self.engine))),
                "quote" => {
                    let (s,): (String,) = from_args(args)?;
                    Ok(Value::from(quote(&s)))
                }
                "dispatch" => {
                    // `dispatch(name, namespace)` or `dispatch(name, macro_namespace=…)`.
                    let (name, namespace, kwargs): (String, Option<String>, Kwargs) =
                        from_args(args)?;
                    let namespace = match namespace {
                        Some(ns) => Some(ns),
                        None => kwargs.get::<Option<String>>("macro_namespace")?,
                    };
                    let _ = kwargs.get::<Option<Value>>("packages")?;
                    let candidates = [
                        format!("{}__{name}", engine_name(self.engine)),
                        format!("default__{name}"),
                        name.clone(),
                    ];
                    // The namespace's packages, in the project's `dispatch:`
                    // search order or else the namespace's own package
                    // (dbt's default); `dbt`'s own macros come after the
                    // project's, which may replace them.
                    let order: SearchOrder = match &namespace {
                        Some(ns) => self
                            .search_orders
                            .get(ns)
                            .cloned()
                            .unwrap_or_else(|| vec![(ns.clone(), None)]),
                        None => Vec::new(),
                    };
                    let in_package = |package: &str, own: &Option<Vec<String>>, c: &String| {
                        match own {
                            // The project itself: its macros are globals
                            // (which a package's own names may shadow here).
                            Some(names) if names.contains(c) => state
                                .env()
                                .globals()
                                .find(|(name, _)| name == c)
                                .map(|(_, v)| v),
                            Some(_) => None,
                            None if package == "dbt" => None,
                            None => state
                                .lookup(package)
                                .filter(|v| v.kind() == minijinja::value::ValueKind::Map)
                                .and_then(|p| p.get_attr(c).ok()),
                        }
                        .filter(|v| !v.is_undefined())
                    };
                    order
                        .iter()
                        .find_map(|(package, own)| {
                            candidates[..2]
                                .iter()
                                .find_map(|c| in_package(package, own, c))
                        })
                        .or_else(|| {
                            candidates
                                .iter()
                                .find_map(|c| state.lookup(c).filter(|v| !v.is_undefined()))
                        })
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::UnknownFunction,
                                format!(
                                    "no implementation of macro `{name}` for {}",
                                    engine_name(self.engine)
                                ),
                            )
                        })
                }
                "get_relation" => {
                    // Positional or by keyword, as dbt's macros call it.
                    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
                    let arg = |i: usize, name: &str| -> Result<Option<String>, Error> {
                        let v = match pos.get(i) {
                            Some(v) => Some(v.clone()),
                            None => kwargs.get::<Option<Value>>(name)?,
                        };
                        Ok(v.filter(|v| !v.is_none() && !v.is_undefined())
                            .map(|v| v.to_string()))
                    };
                    let database = arg(0, "database")?;
                    let schema = arg(1, "schema")?.unwrap_or_default();
                    let identifier = arg(2, "identifier")?.unwrap_or_default();
                    let rows = scope.run_query(&format!(
                        "select table_type from information_schema.tables where lower(table_schema) = lower({}) and lower(table_name) = lower({})",
                        lit(&schema),
                        lit(&identifier)
                    ))?;
                    let Some(row) = rows.rows.first() else {
                        return Ok(Value::from(()));
                    };
                    let kind = if row
                        .first()
                        .and_then(|v| v.as_str())
                        .is_some_and(|t| t.contains("VIEW"))
                    {
                        "view"
                    } else {
                        "table"
                    };
                    Ok(Value::from_object(RelationObj {
                        unique_id: String::new(),
                        resolved: Some(ResolvedRelation {
                            database,
                            schema,
                            identifier,
                            kind: kind.into(),
                            event_time: None,
                            external: None,
                        }),
                        engine: self.engine,
                        limit_zero: false,
                        event_time_window: None,
                    }))
                }
                "get_columns_in_relation" => {
                    let (rel,): (Value,) = from_args(args)?;
                    super::adapter_ops::columns_in_relation(&scope, &rel)
                }
                _ => {
                    let external_root = state
                        .lookup("target")
                        .and_then(|t| t.get_attr("external_root").ok())
                        .filter(|v| !v.is_undefined() && !v.is_none())
                        .map(|v| v.to_string());
                    super::adapter_ops::call(&scope, self.engine, external_root, method, args)
                        .unwrap_or_else(|| {
                            Err(Error::new(
                                ErrorKind::UnknownMethod,
                                format!("adapter has no method `{method}`"),
                            ))
                        })
                }
            }
        }
    }
}
