//! From a loaded project to a compiled graph: render every node (phase
//! one), fold `config()` into node configs, resolve refs and sources into
//! dependencies, name every relation (`generate_schema_name`,
//! `generate_alias_name`), check for cycles, and produce compiled SQL
//! (phase two: placeholder substitution, ephemeral CTE injection, and a
//! re-render for templates that depend on execution).

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde_json::Value;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::graph::Graph;
use crate::project::node::{Node, ResourceType};
use crate::project::{config::unknown_config_key, Project};
use crate::templating::objects::ResolvedRelation;
use crate::templating::{RenderSettings, Renderer};

pub struct Compiled {
    pub project: Project,
    pub graph: Graph,
    pub renderer: Renderer,
    pub warnings: Diagnostics,
}

impl Compiled {
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.project.nodes
    }
}

/// Which nodes carry a template to render.
fn is_rendered(n: &Node) -> bool {
    matches!(
        n.resource_type,
        ResourceType::Model | ResourceType::Test | ResourceType::Analysis | ResourceType::Snapshot
    )
}

/// Phase one and naming: everything but compiled SQL. Enough for `parse` and `ls`.
pub fn parse(
    mut project: Project,
    settings: RenderSettings,
    mut warnings: Diagnostics,
) -> Result<Compiled, Diagnostics> {
    let renderer = Renderer::new(&project, settings).map_err(Diagnostics::from)?;
    let mut diags = project.config.check_tree_keys();
    render_yaml_properties(&mut project, &renderer, &mut diags);
    let root = &project.config;
    // Every node on its own, in parallel: render, fold the result in, tags.
    let found: Vec<Vec<Diagnostic>> = project
        .nodes
        .par_iter_mut()
        .map(|(_, node)| {
            let mut found = Vec::new();
            if node.resource_type == ResourceType::Test && node.test_metadata.is_some() {
                node.raw_code = generic_test_call(node);
            }
            render_config_values(node, &renderer, root, &mut found);
            if is_rendered(node) {
                render_node(node, &renderer, &mut found);
            }
            // A package's node: the root project's dbt_project.yml has the
            // last word on its config, over the package's own and even
            // its `config()` call (dbt's `calculate_node_config`).
            if node.package_name != root.name {
                for (k, v) in root.tree_config(node.resource_type.config_tree(), &node.fqn) {
                    crate::project::config::merge_config_value(&mut node.config, &k, v);
                }
                render_config_values(node, &renderer, root, &mut found);
            }
            node.tags = node
                .config
                .get("tags")
                .map(crate::project::config::string_list)
                .unwrap_or_default();
            node.config
                .insert("tags".into(), Value::from(node.tags.clone()));
            // A disabled node leaves the graph below: nothing more to check.
            if node.enabled() {
                if node.resource_type == ResourceType::Model {
                    check_constraints(node, &renderer, &mut found);
                }
                render_descriptions(node, &renderer, &mut found);
            }
            found
        })
        .collect();
    for d in found.into_iter().flatten() {
        diags.push(d);
    }
    // Disabled nodes leave the graph (dbt keeps them under `disabled`), and
    // so do the generic tests declared on them.
    project.nodes.retain(|_, n| n.enabled());
    let gone: Vec<String> = project
        .nodes
        .iter()
        .filter(|(_, n)| {
            n.attached_node
                .as_ref()
                .is_some_and(|a| !project.nodes.contains_key(a))
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in gone {
        project.nodes.remove(&id);
    }
    resolve_dependencies(&mut project, &renderer, &mut diags);
    check_groups_and_access(&project, &mut diags);
    name_relations(&mut project, &renderer, &mut diags);
    let graph = Graph::build(&project.nodes);
    if let Err(cycle) = graph.topo_order() {
        let first = cycle.first().and_then(|id| project.nodes.get(id));
        let names: Vec<String> = cycle
            .iter()
            .map(|id| {
                project
                    .nodes
                    .get(id)
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| id.clone())
            })
            .collect();
        let mut d = Diagnostic::error("E0303", format!("dependency cycle: {}", names.join(" -> ")));
        if let Some(n) = first {
            d = d.at(n.original_file_path.clone(), Some(1));
        }
        let files: Vec<String> = cycle
            .iter()
            .take(cycle.len().saturating_sub(1))
            .filter_map(|id| project.nodes.get(id).map(|n| n.original_file_path.clone()))
            .collect();
        diags.push(d.hint(format!(
            "break the cycle by removing one ref() in: {}",
            files.join(", ")
        )));
    }
    warnings.extend(Diagnostics(diags.warnings().cloned().collect()));
    if diags.has_errors() {
        return Err(Diagnostics(diags.errors().cloned().collect()).sorted());
    }
    Ok(Compiled {
        project,
        graph,
        renderer,
        warnings,
    })
}

/// Config values written with Jinja in dbt_project.yml or YAML
/// (`+materialized: "{{ 'table' if target.type == 'duckdb' else 'view' }}"`,
/// also inside `column_types:` and other maps) take the value they render
/// to, as in dbt: `true`/`false` and numbers become what they say. Hooks
/// are left for run time, where `this` is known.
/// A failure points at the key in the root dbt_project.yml when it is set
/// there, else at the file that declares the node.
fn render_config_values(
    node: &mut Node,
    renderer: &Renderer,
    root: &crate::project::config::ProjectConfig,
    diags: &mut Vec<Diagnostic>,
) {
    const AT_RUN_TIME: [&str; 3] = ["pre-hook", "post-hook", "sql_header"];
    // Fields, not `defining_file()`: the config is borrowed mutably below.
    let file = node.patch_path.as_ref().unwrap_or(&node.original_file_path);
    let (name, line) = (&node.name, node.line);
    for (key, value) in node.config.iter_mut() {
        if !AT_RUN_TIME.contains(&key.as_str()) {
            render_config_value(value, renderer, &mut |mut d: Diagnostic| {
                // Said once for every node the project's value reaches.
                match crate::project::yaml::line_of_key(&root.text, &format!("+{key}"), 1) {
                    Some(l) => {
                        d.message = format!("config `{key}`: {}", d.message);
                        d = d.at(crate::project::config::PROJECT_FILE, Some(l));
                    }
                    None => {
                        d.message = format!("config `{key}` of `{name}`: {}", d.message);
                        d = d.at(file.clone(), Some(line));
                    }
                }
                diags.push(d);
            });
        }
    }
}

/// Whether a YAML string holds Jinja to render.
fn has_jinja(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

fn render_config_value(value: &mut Value, renderer: &Renderer, fail: &mut dyn FnMut(Diagnostic)) {
    match value {
        Value::String(text) if has_jinja(text) => {
            match renderer.render("dbt_project.yml", text, None, false, false, None) {
                Ok(r) => {
                    let out = r.output.trim();
                    *value = match out {
                        "true" | "True" => Value::Bool(true),
                        "false" | "False" => Value::Bool(false),
                        "None" | "none" => Value::Null,
                        _ => out
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(out.to_string())),
                    };
                }
                Err(d) => fail(d),
            }
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                render_config_value(v, renderer, fail);
            }
        }
        Value::Array(items) => {
            for v in items {
                render_config_value(v, renderer, fail);
            }
        }
        _ => {}
    }
}

/// Descriptions are Jinja, as in dbt: `{{ doc('orders') }}` becomes the
/// text of that docs block (in the manifest, the docs site and persisted
/// comments alike). So are columns' `data_type`s (`"{{ 'UInt8' if
/// target.type == 'clickhouse' else 'integer' }}"`).
fn render_descriptions(node: &mut Node, renderer: &Renderer, found: &mut Vec<Diagnostic>) {
    let needs = has_jinja(&node.description)
        || node
            .columns
            .values()
            .any(|c| has_jinja(&c.description) || c.data_type.as_deref().is_some_and(has_jinja))
        || node
            .source
            .as_ref()
            .is_some_and(|s| has_jinja(&s.source_description));
    if !needs {
        return;
    }
    let file = node.defining_file().to_string();
    let line = node.patch_line.unwrap_or(node.line);
    let render = |text: &mut String, found: &mut Vec<Diagnostic>| {
        if !has_jinja(text) {
            return;
        }
        match renderer.render(&file, text, None, false, false, None) {
            Ok(r) => *text = r.output.trim().to_string(),
            Err(mut d) => {
                d.file = Some(file.clone());
                d.line = Some(line);
                found.push(d);
            }
        }
    };
    render(&mut node.description, found);
    for c in node.columns.values_mut() {
        render(&mut c.description, found);
        if let Some(t) = c.data_type.as_mut() {
            render(t, found);
        }
    }
    if let Some(s) = node.source.as_mut() {
        render(&mut s.source_description, found);
    }
}

/// A model's contract constraints: dbt's parse-time checks, and a foreign
/// key's `to: ref('customers')` becomes a dependency of the model.
fn check_constraints(node: &mut Node, renderer: &Renderer, found: &mut Vec<Diagnostic>) {
    let at = |d: Diagnostic, node: &Node| match &node.patch_path {
        Some(p) => d.at(p.clone(), node.patch_line),
        None => d.at(node.original_file_path.clone(), Some(1)),
    };
    for e in crate::warehouse::contract::check_node(node) {
        found.push(
            at(Diagnostic::error("E0118", e), node)
                .hint("see https://docs.getdbt.com/reference/resource-properties/constraints"),
        );
    }
    let targets: Vec<String> = node
        .columns
        .values()
        .flat_map(|c| c.constraints.iter())
        .chain(node.constraints.iter())
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("foreign_key"))
        .filter_map(|c| c.get("to").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    for to in targets {
        let file = node.patch_path.clone().unwrap_or_default();
        match renderer.render(
            &file,
            &format!("{{{{ {to} }}}}"),
            Some(node),
            false,
            false,
            None,
        ) {
            Ok(r) if !r.refs.is_empty() || !r.sources.is_empty() => {
                node.refs.extend(r.refs);
                node.sources.extend(r.sources);
            }
            _ => found.push(at(
                Diagnostic::error(
                    "E0118",
                    format!(
                        "Invalid 'ref' or 'source' syntax on foreign key constraint 'to' on \
                         model {}: {to}.",
                        node.name
                    ),
                ),
                node,
            )),
        }
    }
}

/// dbt renders Jinja in YAML properties such as a source's `schema:
/// "{{ target.schema }}"`; descriptions and test arguments are left alone.
/// Phase one for a model, test or analysis: render its template and fold
/// what the template captured (config, refs, sources, macros) into the node.
fn render_node(node: &mut Node, renderer: &Renderer, diags: &mut Vec<Diagnostic>) {
    let name = if node.test_metadata.is_some() {
        node.defining_file().to_string()
    } else {
        node.original_file_path.clone()
    };
    let r = match renderer.render(&name, &node.raw_code, Some(node), false, false, None) {
        Ok(r) => r,
        Err(mut d) => {
            // An error in a generic test's call points at its YAML entry;
            // one inside the test's macro keeps the macro's file and line.
            if d.line.is_some() && node.test_metadata.is_some() && d.file.as_deref() == Some(&name)
            {
                d.line = Some(node.line);
            }
            diags.push(d);
            return;
        }
    };
    for key in r.config.keys() {
        let line = node
            .raw_code
            .find(key.as_str())
            .map(|p| node.raw_code_line(p));
        if let Some(d) = unknown_config_key(key, &node.original_file_path, line) {
            diags.push(d);
        }
    }
    crate::project::apply_inline_config(node, &r.config);
    node.refs = r.refs;
    node.sources = r.sources;
    // dbt's `depends_on.macros` at parse (what `graph` shows): what the
    // template calls itself; every macro the render reached is kept for
    // `state:modified.macros`.
    let mut direct: Vec<String> = r
        .direct_macros
        .iter()
        .map(|m| format!("macro.{m}"))
        .collect();
    let mut used: Vec<String> = r.macros.iter().map(|m| format!("macro.{m}")).collect();
    // dbt renders a node's hooks at parse too, and what they call is among
    // its macros. (They run rendered again later; one that cannot render
    // yet only adds nothing here.)
    for hook in ["pre-hook", "post-hook"]
        .iter()
        .flat_map(|k| node.hooks(k))
        .filter(|h| has_jinja(h))
    {
        if let Ok(h) = renderer.render(&name, &hook, Some(node), false, false, None) {
            for m in h.direct_macros {
                let id = format!("macro.{m}");
                if !direct.contains(&id) {
                    direct.push(id.clone());
                }
                if !used.contains(&id) {
                    used.push(id);
                }
            }
        }
    }
    node.depends_on.macros = direct;
    node.macros_used = used;
    node.compiled_code = Some(r.output);
    if r.dynamic {
        node.config.insert("__dynamic".into(), Value::Bool(true));
    }
}

fn render_yaml_properties(project: &mut Project, renderer: &Renderer, diags: &mut Diagnostics) {
    for n in project.nodes.values_mut() {
        if n.resource_type != ResourceType::Source {
            continue;
        }
        let file = n.defining_file().to_string();
        let line = n.line;
        // Rendered as the source's own: a package's source reads the vars
        // scoped to its package (`vars: {github: {github_schema: …}}`).
        let node: &Node = n;
        let mut render = |v: &str| -> Option<String> {
            if !has_jinja(v) {
                return Some(v.to_string());
            }
            match renderer.render(&file, v, Some(node), false, false, None) {
                Ok(r) => Some(r.output.trim().to_string()),
                Err(mut d) => {
                    d.line = Some(line);
                    diags.push(d);
                    None
                }
            }
        };
        let schema = render(&n.schema);
        let database = n.database.clone().map(|db| render(&db));
        let alias = render(&n.alias);
        if let Some(s) = schema {
            n.schema = s;
        }
        if let Some(db) = database {
            n.database = db;
        }
        if let Some(a) = alias {
            n.alias = a;
        }
    }
}

/// Phase two for the nodes in `ids` (all when `None`): final SQL.
pub fn compile_sql(
    c: &mut Compiled,
    ids: Option<&std::collections::BTreeSet<String>>,
) -> Result<(), Diagnostics> {
    compile_sql_with(c, ids, None)
}

/// A warehouse connection shared by renders.
pub type SharedConnection = std::sync::Arc<std::sync::Mutex<Box<dyn crate::warehouse::Connection>>>;

/// `compile_sql`, rendering the nodes whose SQL depends on the warehouse
/// with `execute` true over `connection` when there is one (as dbt's
/// `compile` does).
pub fn compile_sql_with(
    c: &mut Compiled,
    ids: Option<&std::collections::BTreeSet<String>>,
    connection: Option<SharedConnection>,
) -> Result<(), Diagnostics> {
    let renderer = &c.renderer;
    let nodes = &c.project.nodes;
    let any_ephemeral = nodes.values().any(|n| n.materialized() == "ephemeral");
    // A node whose SQL depends on the warehouse is rendered again,
    // connected, when it runs; without a connection here it renders as at
    // parse time (`execute` false), so that a macro asking whether a
    // relation exists does not fail on the empty answer.
    let execute = connection.is_some();
    // One result per node, in map order, so they fold back without lookups.
    let results: Vec<Option<Result<String, Diagnostic>>> = nodes
        .par_iter()
        .map(|(id, n)| {
            if !is_rendered(n) || ids.is_some_and(|s| !s.contains(id)) {
                return None;
            }
            let sql = if n.config.contains_key("__dynamic") {
                let name = if n.test_metadata.is_some() {
                    n.defining_file().to_string()
                } else {
                    n.original_file_path.clone()
                };
                renderer
                    .render(
                        &name,
                        &n.raw_code,
                        Some(n),
                        execute,
                        false,
                        connection.clone(),
                    )
                    .map(|r| r.output)
            } else {
                Ok(renderer.substitute(n.compiled_code.as_deref().unwrap_or_default()))
            };
            Some(sql.map(|s| {
                if any_ephemeral {
                    inject_ephemerals(&s, n, nodes, renderer)
                } else {
                    s
                }
            }))
        })
        .collect();
    let mut diags = Diagnostics::default();
    for (n, r) in c.project.nodes.values_mut().zip(results) {
        match r {
            Some(Ok(sql)) => n.compiled_code = Some(sql),
            Some(Err(d)) => diags.push(d),
            None => {}
        }
    }
    if diags.has_errors() {
        Err(diags.sorted())
    } else {
        Ok(())
    }
}

/// `with __dbt__cte__x as (…)` for every ephemeral model the node depends
/// on (transitively through other ephemerals), parents first.
pub fn inject_ephemerals(
    sql: &str,
    node: &Node,
    nodes: &BTreeMap<String, Node>,
    renderer: &Renderer,
) -> String {
    ephemeral_ctes(sql, node, nodes, |e| {
        Ok::<_, std::convert::Infallible>(
            renderer.substitute(e.compiled_code.as_deref().unwrap_or_default()),
        )
    })
    .unwrap_or_else(|never| match never {})
}

/// `sql` with a CTE for each ephemeral model `node` reads, parents first,
/// each body made by `body`.
fn ephemeral_ctes<E>(
    sql: &str,
    node: &Node,
    nodes: &BTreeMap<String, Node>,
    mut body: impl FnMut(&Node) -> Result<String, E>,
) -> Result<String, E> {
    let mut order: Vec<&Node> = Vec::new();
    collect_ephemerals(node, nodes, &mut order);
    let mut ctes = Vec::new();
    for e in order {
        ctes.push(format!(
            "__dbt__cte__{} as (\n{}\n)",
            e.name,
            body(e)?.trim()
        ));
    }
    Ok(with_ctes(sql, &ctes))
}

/// [`inject_ephemerals`] at run time: an ephemeral model whose SQL depends
/// on the warehouse (`adapter.get_columns_in_relation`, `run_query`, …) is
/// rendered now, with the connection, as dbt compiles it when the model
/// that selects from it runs.
pub fn inject_ephemerals_at_run(
    sql: &str,
    node: &Node,
    nodes: &BTreeMap<String, Node>,
    renderer: &Renderer,
    conn: &SharedConnection,
) -> Result<String, Diagnostic> {
    ephemeral_ctes(sql, node, nodes, |e| {
        if !e.config.contains_key("__dynamic") {
            return Ok(renderer.substitute(e.compiled_code.as_deref().unwrap_or_default()));
        }
        let r = renderer.render(
            &e.original_file_path,
            &e.raw_code,
            Some(e),
            true,
            false,
            Some(conn.clone()),
        )?;
        Ok(renderer.substitute(&r.output))
    })
}

/// Whether a node selects from an ephemeral model (directly or through
/// others) whose SQL is only final at run time.
pub fn reads_dynamic_ephemeral(node: &Node, nodes: &BTreeMap<String, Node>) -> bool {
    let mut order: Vec<&Node> = Vec::new();
    collect_ephemerals(node, nodes, &mut order);
    order.iter().any(|e| e.config.contains_key("__dynamic"))
}

/// `sql` with `ctes` (`name as (…)`) in front, merged into its own `with`.
pub fn with_ctes(sql: &str, ctes: &[String]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    // The statement's own `with`, after any leading comments (kept).
    let start = code_start(sql);
    let rest = &sql[start..];
    let lower = rest.get(..5).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("with ") | Some("with\n") | Some("with\t") | Some("with\r") => format!(
            "{}with {},\n{}",
            &sql[..start],
            ctes.join(",\n"),
            &rest[5..]
        ),
        _ => format!("with {}\n{}", ctes.join(",\n"), sql),
    }
}

/// Where the SQL's first token starts: past whitespace, `-- …` line
/// comments and `/* … */` block comments.
fn code_start(sql: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &sql[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if let Some(body) = trimmed.strip_prefix("/*") {
            i += 2 + body.find("*/").map_or(body.len(), |e| e + 2);
        } else {
            return i;
        }
    }
}

fn collect_ephemerals<'a>(node: &Node, nodes: &'a BTreeMap<String, Node>, out: &mut Vec<&'a Node>) {
    for p in &node.depends_on.nodes {
        if let Some(parent) = nodes.get(p) {
            if parent.materialized() == "ephemeral"
                && !out.iter().any(|n| n.unique_id == parent.unique_id)
            {
                collect_ephemerals(parent, nodes, out);
                out.push(parent);
            }
        }
    }
}

/// The Jinja call that renders a generic test's SQL.
fn generic_test_call(n: &Node) -> String {
    let Some(meta) = &n.test_metadata else {
        return String::new();
    };
    let macro_name = match &meta.namespace {
        Some(ns) => format!("{ns}.test_{}", meta.name),
        None => format!("test_{}", meta.name),
    };
    let filter = n.config.get("where").and_then(Value::as_str);
    // The tested `model` last, as dbt passes it, so refs are captured in
    // dbt's order (the arguments', then the model's).
    let args: Vec<String> = meta
        .kwargs
        .iter()
        .filter(|(k, _)| k.as_str() != "model")
        .chain(meta.kwargs.iter().filter(|(k, _)| k.as_str() == "model"))
        .map(|(k, v)| match (k.as_str(), filter) {
            // dbt's `where` config: the test reads a filtered subquery of the model.
            ("model", Some(w)) => format!(
                "model=('(select * from ' ~ {} ~ ' where ' ~ {} ~ ') dbt_subquery')",
                jinja_literal(v),
                jinja_string(w)
            ),
            _ => format!("{k}={}", jinja_literal(v)),
        })
        .collect();
    format!("{{{{ {macro_name}({}) }}}}", args.join(", "))
}

/// A JSON value as a Jinja expression; strings holding `{{ … }}` become the expression itself.
fn jinja_literal(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Some(inner) = t.strip_prefix("{{").and_then(|x| x.strip_suffix("}}")) {
                format!("({})", inner.trim())
            } else if is_ref_or_source_call(t) {
                // dbt evaluates `to: ref('users')` as an expression.
                format!("({t})")
            } else {
                jinja_string(s)
            }
        }
        Value::Null => "none".into(),
        Value::Bool(b) => {
            if *b {
                "true".into()
            } else {
                "false".into()
            }
        }
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(jinja_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::to_string(k).unwrap_or_default(),
                    jinja_literal(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A string as a Jinja expression that renders the `{{ … }}` parts in it,
/// as dbt renders a test argument such as `row_condition: "day = {{
/// dbt_date.yesterday() }}"`: `("day = " ~ (dbt_date.yesterday()) ~ "")`.
/// A plain string is a plain literal.
fn jinja_string(s: &str) -> String {
    let quoted = |t: &str| serde_json::to_string(t).unwrap_or_default();
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open + 2..].find("}}") else {
            break;
        };
        parts.push(quoted(&rest[..open]));
        parts.push(format!("({})", rest[open + 2..open + 2 + len].trim()));
        rest = &rest[open + 2 + len + 2..];
    }
    if parts.is_empty() {
        return quoted(s);
    }
    parts.push(quoted(rest));
    format!("({})", parts.join(" ~ "))
}

fn is_ref_or_source_call(s: &str) -> bool {
    (s.starts_with("ref(") || s.starts_with("source(")) && s.ends_with(')')
}

fn resolve_dependencies(project: &mut Project, renderer: &Renderer, diags: &mut Diagnostics) {
    let resolver = &renderer.resolver;
    let found: Vec<Vec<Diagnostic>> = project
        .nodes
        .par_iter_mut()
        .map(|(_, n)| {
            let mut found = Vec::new();
            let mut deps: Vec<String> = Vec::new();
            for r in &n.refs {
                let key = crate::templating::ref_key(&r.name, r.version.as_deref());
                match resolver.resolve_ref(r.package.as_deref(), &key, &n.package_name) {
                    Some(id) => deps.push(id.clone()),
                    None => found.push(
                        Diagnostic::error("E0301", format!("unknown model `{}` in ref()", r.name))
                            .at(n.defining_file().to_string(), Some(n.line))
                            .hint(
                                match crate::diagnostics::did_you_mean(
                                    &r.name,
                                    resolver.by_name.keys().map(String::as_str),
                                ) {
                                    Some(s) => format!("did you mean `{s}`?"),
                                    None => "no model, seed or snapshot has that name".into(),
                                },
                            ),
                    ),
                }
            }
            for s in &n.sources {
                if let [src, table] = s.as_slice() {
                    match resolver.sources.get(&(src.clone(), table.clone())) {
                        Some(id) => deps.push(id.clone()),
                        None => found.push(
                            Diagnostic::error("E0302", format!("unknown source `{src}.{table}`"))
                                .at(n.defining_file().to_string(), Some(n.line)),
                        ),
                    }
                }
            }
            if let Some(s) = &n.semantic {
                deps.extend(s.depends_on.iter().cloned());
            }
            deps.sort();
            deps.dedup();
            n.depends_on.nodes = deps;
            found
        })
        .collect();
    // Disabled parents: a ref to a node that was removed.
    let nodes = &project.nodes;
    let disabled: Vec<Vec<Diagnostic>> = nodes
        .par_iter()
        .map(|(_, n)| {
            n.depends_on
                .nodes
                .iter()
                .filter(|d| !nodes.contains_key(*d))
                .map(|d| {
                    Diagnostic::error(
                        "E0304",
                        format!("`{}` depends on `{d}`, which is disabled", n.name),
                    )
                    .at(n.defining_file().to_string(), Some(n.line))
                })
                .collect()
        })
        .collect();
    for d in found.into_iter().chain(disabled).flatten() {
        diags.push(d);
    }
}

/// dbt's group checks: a node's `group` must be a declared group, and a
/// model with `access: private` may only be referenced by nodes of its
/// group (tests on it aside).
fn check_groups_and_access(project: &Project, diags: &mut Diagnostics) {
    let groups: std::collections::BTreeSet<&str> =
        project.groups.iter().map(|g| g.name.as_str()).collect();
    let group_of = |n: &Node| {
        n.config
            .get("group")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for n in project.nodes.values() {
        if let Some(g) = group_of(n) {
            if !groups.contains(g.as_str()) {
                // Where the group is most likely set: the node's YAML entry.
                let (file, line) = match (&n.patch_path, n.patch_line) {
                    (Some(p), Some(l)) => (p.clone(), l),
                    _ => (n.defining_file().to_string(), n.line),
                };
                let d = Diagnostic::error(
                    "E0305",
                    format!("`{}` is in group `{g}`, which is not declared", n.name),
                )
                .at(file, Some(line));
                diags.push(
                    match crate::diagnostics::did_you_mean(&g, groups.iter().copied()) {
                        Some(s) => d.hint(format!("did you mean `{s}`?")),
                        None => d.hint(
                            "declare it in a YAML file: `groups: [{name: …, owner: {email: …}}]`",
                        ),
                    },
                );
            }
        }
        if !matches!(
            n.resource_type,
            ResourceType::Model | ResourceType::Snapshot | ResourceType::Analysis
        ) {
            continue;
        }
        for parent in n
            .depends_on
            .nodes
            .iter()
            .filter_map(|d| project.nodes.get(d))
        {
            let private = parent.resource_type == ResourceType::Model
                && parent.config.get("access").and_then(Value::as_str) == Some("private");
            if !private || group_of(n).is_some_and(|g| Some(g) == group_of(parent)) {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    "E0306",
                    format!(
                        "`{}` refers to `{}`, which is private to group `{}`",
                        n.name,
                        parent.name,
                        group_of(parent).unwrap_or_default()
                    ),
                )
                .at(
                    n.original_file_path.clone(),
                    n.raw_code.find(&parent.name).map(|p| n.raw_code_line(p)),
                )
                .hint(format!(
                    "put `{}` in that group, or give `{}` `access: protected` or `public`",
                    n.name, parent.name
                )),
            );
        }
    }
}

/// dbt's default `generate_schema_name`: the target schema, or
/// `<target_schema>_<custom>` when the node configures a schema.
fn default_schema(target_schema: &str, custom: Option<&str>) -> String {
    match custom {
        Some(c) if !c.trim().is_empty() => format!("{target_schema}_{}", c.trim()),
        _ => target_schema.to_string(),
    }
}

fn name_relations(project: &mut Project, renderer: &Renderer, diags: &mut Diagnostics) {
    let target = &renderer.settings.target;
    let target_schema = target
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or("main")
        .to_string();
    let target_db = target
        .get("database")
        .and_then(Value::as_str)
        .map(str::to_string);
    let custom_schema_macro = renderer.has_macro("generate_schema_name");
    let custom_alias_macro = renderer.has_macro("generate_alias_name");
    let custom_db_macro = renderer.has_macro("generate_database_name");
    let engine = renderer.settings.engine;
    let name_one = |n: &mut Node| -> Result<(String, ResolvedRelation), Diagnostic> {
        if n.resource_type == ResourceType::Source {
            if n.database.is_none() {
                n.database = target_db.clone();
            }
        } else {
            // A data test's schema is where `store_failures` keeps its rows:
            // dbt's test config defaults it to `dbt_test__audit`.
            let custom_schema = n
                .config
                .get("schema")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    (n.resource_type == ResourceType::Test)
                        .then(|| crate::project::config::TEST_SCHEMA.to_string())
                });
            let custom_alias = n
                .config
                .get("alias")
                .and_then(Value::as_str)
                .map(str::to_string);
            let custom_db = n
                .config
                .get("database")
                .and_then(Value::as_str)
                .map(str::to_string);
            n.schema = if custom_schema_macro {
                call_naming_macro(
                    renderer,
                    "generate_schema_name",
                    custom_schema.as_deref(),
                    n,
                )?
            } else {
                default_schema(&target_schema, custom_schema.as_deref())
            };
            n.alias = if custom_alias_macro {
                call_naming_macro(renderer, "generate_alias_name", custom_alias.as_deref(), n)?
            } else {
                custom_alias.unwrap_or_else(|| match &n.version {
                    // dbt: a versioned model's relation is `<name>_v<version>`.
                    Some(v) => format!("{}_v{}", n.name, v.replace('.', "_")),
                    None => n.name.clone(),
                })
            };
            n.database = if custom_db_macro {
                call_naming_macro(renderer, "generate_database_name", custom_db.as_deref(), n).ok()
            } else {
                custom_db.or_else(|| target_db.clone())
            };
            // A snapshot's legacy `target_schema`/`target_database` are used
            // as written, without the naming macros.
            if n.resource_type == ResourceType::Snapshot {
                let verbatim = |key: &str| {
                    n.config
                        .get(key)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                if let Some(schema) = verbatim("target_schema") {
                    n.schema = schema;
                }
                if let Some(db) = verbatim("target_database") {
                    n.database = Some(db);
                }
            }
        }
        let kind = match n.resource_type {
            ResourceType::Seed | ResourceType::Source => "table".to_string(),
            // dbt-duckdb: `this.incorporate(type='view')` over the file.
            _ if n.materialized() == "external" => "view".to_string(),
            _ => n.materialized().to_string(),
        };
        let resolved = if kind == "ephemeral" {
            ResolvedRelation {
                database: None,
                schema: String::new(),
                identifier: format!("__dbt__cte__{}", n.name),
                kind,
                event_time: None,
                external: None,
            }
        } else {
            ResolvedRelation {
                database: n.database.clone(),
                schema: n.schema.clone(),
                identifier: n.alias.clone(),
                kind,
                event_time: n
                    .config
                    .get("event_time")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                external: match n.resource_type {
                    ResourceType::Source if engine == crate::sql::Engine::DuckDb => {
                        crate::warehouse::external::source_location(n).map_err(|m| {
                            Diagnostic::error("E0120", format!("source `{}.{}`: {m}", n.source.as_ref().map_or("", |s| s.source_name.as_str()), n.name))
                                .at(n.original_file_path.clone(), Some(n.line))
                                .hint("dbt-duckdb formats `external_location` with the source's name, identifier, schema, database, tags and meta")
                        })?
                    }
                    _ => None,
                },
            }
        };
        if matches!(
            n.resource_type,
            ResourceType::Model
                | ResourceType::Seed
                | ResourceType::Source
                | ResourceType::Snapshot
        ) {
            n.relation_name = Some(if resolved.kind == "ephemeral" {
                resolved.identifier.clone()
            } else {
                resolved.render()
            });
        }
        Ok((n.unique_id.clone(), resolved))
    };
    // Each node is named on its own (custom naming macros included): in parallel.
    let named: Vec<_> = project
        .nodes
        .par_iter_mut()
        .map(|(_, n)| name_one(n))
        .collect();
    let mut relations = std::collections::HashMap::with_capacity(named.len());
    for r in named {
        match r {
            Ok((id, resolved)) => {
                relations.insert(id, resolved);
            }
            Err(d) => diags.push(d),
        }
    }
    if let Ok(mut r) = renderer.resolver.relations.write() {
        *r = relations;
    }
}

fn call_naming_macro(
    renderer: &Renderer,
    name: &str,
    custom: Option<&str>,
    n: &Node,
) -> Result<String, Diagnostic> {
    let node_value = minijinja::Value::from_serialize(serde_json::json!({
        "name": n.name, "unique_id": n.unique_id, "resource_type": n.resource_type.as_str(),
        "fqn": n.fqn, "path": n.path, "original_file_path": n.original_file_path, "config": n.config,
        "package_name": n.package_name, "tags": n.tags,
    }));
    let args = [
        minijinja::Value::from(custom.map(str::to_string)),
        node_value,
    ];
    match renderer.call_macro(name, &args, Some(n)) {
        Some(r) => r.map(|s| s.trim().to_string()),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schema_matches_dbt() {
        assert_eq!(default_schema("analytics", None), "analytics");
        assert_eq!(
            default_schema("analytics", Some(" marts ")),
            "analytics_marts"
        );
    }

    #[test]
    fn ctes_join_the_models_own_with() {
        let ctes = ["__dbt__cte__a as (select 1)".to_string()];
        assert_eq!(
            with_ctes("with b as (select 2) select * from b", &ctes),
            "with __dbt__cte__a as (select 1),\nb as (select 2) select * from b"
        );
        assert_eq!(
            with_ctes("select 3", &ctes),
            "with __dbt__cte__a as (select 1)\nselect 3"
        );
    }

    #[test]
    fn ctes_join_a_with_that_follows_comments() {
        let ctes = ["__dbt__cte__a as (select 1)".to_string()];
        assert_eq!(
            with_ctes(
                "-- setup\n/* x */ with b as (select 2) select * from b",
                &ctes
            ),
            "-- setup\n/* x */ with __dbt__cte__a as (select 1),\nb as (select 2) select * from b"
        );
        assert_eq!(
            with_ctes("-- no with here\nselect 3", &ctes),
            "with __dbt__cte__a as (select 1)\n-- no with here\nselect 3"
        );
    }

    #[test]
    fn jinja_literals() {
        assert_eq!(
            jinja_literal(&serde_json::json!("{{ ref('x') }}")),
            "(ref('x'))"
        );
        assert_eq!(
            jinja_literal(&serde_json::json!(["a", 1, null, true])),
            "[\"a\", 1, none, true]"
        );
        // Jinja inside a test argument renders, as in dbt.
        assert_eq!(
            jinja_literal(&serde_json::json!("day = {{ dbt_date.yesterday() }}")),
            "(\"day = \" ~ (dbt_date.yesterday()) ~ \"\")"
        );
    }
}
