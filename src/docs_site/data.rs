//! The project data embedded in the docs page, built from dbt artifacts.
//!
//! [`build_site_data`] flattens manifest nodes, sources and exposures into one
//! array (the viewer refers to nodes by index), merges catalog column types and
//! run results in, attaches tests to their models and columns, renders every
//! description to safe HTML, and lays out the lineage graph (tests excluded).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::layout::{layered_layout, LayoutConfig};
use super::markdown::render_markdown;
use super::{DocsError, SiteInput};

/// Resource types that are documented but never drawn in the lineage graph.
const NOT_IN_GRAPH: &[&str] = &["test", "unit_test", "operation", "sql_operation", "macro"];

/// Everything the viewer needs; serialized once into the page.
#[derive(Debug, Serialize)]
pub struct SiteData<'a> {
    /// `metadata.project_name`, or `"dbt project"`.
    pub project: &'a str,
    /// Rendered overview Markdown.
    pub overview_html: String,
    /// All documented nodes; other fields refer to them by index.
    pub nodes: Vec<NodeData<'a>>,
    /// Lineage graph: laid-out nodes and edges.
    pub graph: GraphData,
    /// Column lineage, passed through unchanged (`null` when absent).
    pub lineage: &'a Value,
}

/// The laid-out lineage graph.
#[derive(Debug, Default, Serialize)]
pub struct GraphData {
    /// Extent of node centres, in layout units.
    pub width: f64,
    /// Extent of node centres, in layout units.
    pub height: f64,
    /// `[node index, x, y, rank]` per graph node (x, y: rounded centre).
    pub nodes: Vec<(u32, i64, i64, u32)>,
    /// `[from, to]` indices into `nodes` (the graph list, not the node array).
    pub edges: Vec<[u32; 2]>,
}

/// One model, source, seed, snapshot, test, exposure, ….
#[derive(Debug, Serialize)]
pub struct NodeData<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// `resource_type`.
    pub rt: &'a str,
    pub package: &'a str,
    pub path: &'a str,
    pub patch_path: &'a str,
    pub relation: &'a str,
    pub description: &'a str,
    pub description_html: String,
    pub materialized: &'a str,
    pub tags: Vec<&'a str>,
    pub config: &'a Value,
    pub columns: Vec<ColumnData<'a>>,
    pub raw_code: &'a str,
    pub compiled_code: &'a str,
    /// Indices of the nodes this one depends on.
    pub parents: Vec<u32>,
    /// Indices of the nodes depending on this one (tests excluded).
    pub children: Vec<u32>,
    /// Indices of the tests attached to this node.
    pub tests: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<TestData<'a>>,
}

/// A column: catalog type merged with the documented description.
#[derive(Debug, Serialize)]
pub struct ColumnData<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub data_type: &'a str,
    pub description: &'a str,
    pub description_html: String,
    /// Indices of the tests on this column.
    pub tests: Vec<u32>,
}

/// The node's entry in `run_results.json`.
#[derive(Debug, Serialize)]
pub struct RunData<'a> {
    pub status: &'a str,
    pub execution_time: f64,
    pub message: &'a str,
    pub failures: &'a Value,
    pub completed_at: &'a str,
}

/// Source-only fields: loader, freshness and the (masked) extraction settings.
#[derive(Debug, Serialize)]
pub struct SourceData<'a> {
    pub source_name: &'a str,
    pub loader: &'a str,
    pub loaded_at_field: &'a str,
    pub freshness: &'a Value,
    pub meta: &'a Value,
    pub extract: &'a Value,
    pub source_description: &'a str,
}

/// Test-only fields.
#[derive(Debug, Serialize)]
pub struct TestData<'a> {
    /// Generic test name (`not_null`, `unique`, …) or the node name.
    pub kind: &'a str,
    pub column: &'a str,
    #[serde(skip)]
    attached: Vec<&'a str>,
}

static NULL: Value = Value::Null;

/// Builds the embedded data from the artifacts in `input`.
pub fn build_site_data<'a>(input: &SiteInput<'a>) -> Result<SiteData<'a>, DocsError> {
    let manifest = input
        .manifest
        .as_object()
        .ok_or_else(|| DocsError::InvalidManifest("expected a JSON object".into()))?;
    let project = manifest
        .get("metadata")
        .and_then(|m| m.get("project_name"))
        .and_then(Value::as_str)
        .unwrap_or("dbt project");
    let mut nodes = collect_nodes(manifest, input)?;
    let index: HashMap<&str, u32> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id, to_u32(i)))
        .collect();
    let entries = manifest_entries(manifest);
    link_dependencies(&mut nodes, &entries, manifest.get("parent_map"), &index);
    attach_tests(&mut nodes, &index);
    let graph = build_graph(&nodes);
    let overview = input
        .overview_markdown
        .map_or_else(|| default_overview(project), str::to_owned);
    Ok(SiteData {
        project,
        overview_html: render_markdown(&overview),
        nodes,
        graph,
        lineage: input.lineage.unwrap_or(&NULL),
    })
}

/// Saturating `usize` to `u32` conversion.
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Overview shown when the project has no `__overview__` doc block.
fn default_overview(project: &str) -> String {
    format!(
        "# {project}\n\nWelcome to the documentation of this project, generated by sluice.\n\n\
         Browse models and sources in the sidebar, search with the box above, or open the \
         [lineage graph](#!/graph)."
    )
}

/// `(unique_id, entry)` for every node, source, exposure and Semantic
/// Layer resource, in manifest order.
fn manifest_entries(manifest: &Map<String, Value>) -> Vec<(&str, &Value)> {
    [
        "sources",
        "nodes",
        "semantic_models",
        "metrics",
        "saved_queries",
        "exposures",
    ]
    .iter()
    .filter_map(|key| manifest.get(*key).and_then(Value::as_object))
    .flat_map(|map| map.iter().map(|(id, v)| (id.as_str(), v)))
    .collect()
}

/// Converts every manifest entry into a [`NodeData`] (links are filled in later).
fn collect_nodes<'a>(
    manifest: &'a Map<String, Value>,
    input: &SiteInput<'a>,
) -> Result<Vec<NodeData<'a>>, DocsError> {
    if !manifest.contains_key("nodes") {
        return Err(DocsError::InvalidManifest("missing `nodes`".into()));
    }
    let runs = run_results_by_id(input.run_results);
    Ok(manifest_entries(manifest)
        .into_iter()
        .map(|(id, entry)| {
            let catalog = catalog_entry(input.catalog, id);
            let mut node = node_data(id, entry, catalog);
            node.run = runs.get(id).map(|r| run_data(r));
            node
        })
        .collect())
}

/// String field of a JSON object, `""` when missing or not a string.
fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Field of a JSON object, `null` when missing.
fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&NULL)
}

/// The catalog entry for a unique id (`nodes` or `sources`).
fn catalog_entry<'a>(catalog: Option<&'a Value>, id: &str) -> Option<&'a Value> {
    let catalog = catalog?;
    ["nodes", "sources"]
        .iter()
        .find_map(|key| catalog.get(*key).and_then(|m| m.get(id)))
}

/// `run_results.results` keyed by unique id.
fn run_results_by_id(run_results: Option<&Value>) -> HashMap<&str, &Value> {
    run_results
        .and_then(|r| r.get("results"))
        .and_then(Value::as_array)
        .map(|results| {
            results
                .iter()
                .filter_map(|r| Some((r.get("unique_id")?.as_str()?, r)))
                .collect()
        })
        .unwrap_or_default()
}

/// Status, timing and message of one run result.
fn run_data(result: &Value) -> RunData<'_> {
    let completed_at = result
        .get("timing")
        .and_then(Value::as_array)
        .and_then(|timing| timing.last())
        .map_or("", |t| str_field(t, "completed_at"));
    RunData {
        status: str_field(result, "status"),
        execution_time: result
            .get("execution_time")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        message: str_field(result, "message"),
        failures: field(result, "failures"),
        completed_at,
    }
}

/// Renders a description, skipping the parser for empty strings.
fn description_html(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        render_markdown(text)
    }
}

/// One node without its links.
fn node_data<'a>(id: &'a str, entry: &'a Value, catalog: Option<&'a Value>) -> NodeData<'a> {
    let rt = match str_field(entry, "resource_type") {
        "" if id.starts_with("exposure.") => "exposure",
        "" => id.split('.').next().unwrap_or("node"),
        rt => rt,
    };
    let config = field(entry, "config");
    let description = str_field(entry, "description");
    let compiled = match str_field(entry, "compiled_code") {
        "" => str_field(entry, "compiled_sql"),
        code => code,
    };
    let raw = match str_field(entry, "raw_code") {
        "" => str_field(entry, "raw_sql"),
        code => code,
    };
    NodeData {
        id,
        name: str_field(entry, "name"),
        rt,
        package: str_field(entry, "package_name"),
        path: str_field(entry, "original_file_path"),
        patch_path: str_field(entry, "patch_path"),
        relation: str_field(entry, "relation_name"),
        description,
        description_html: description_html(description),
        materialized: str_field(config, "materialized"),
        tags: string_list(field(entry, "tags")),
        config,
        columns: merge_columns(
            field(entry, "columns"),
            catalog.map(|c| field(c, "columns")),
        ),
        raw_code: raw,
        compiled_code: compiled,
        parents: Vec::new(),
        children: Vec::new(),
        tests: Vec::new(),
        run: None,
        source: (rt == "source").then(|| source_data(entry)),
        test: (rt == "test" || rt == "unit_test").then(|| test_data(entry)),
    }
}

/// A JSON array of strings as `&str`s (non-strings skipped).
fn string_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Source-only fields of a manifest source.
fn source_data(entry: &Value) -> SourceData<'_> {
    SourceData {
        source_name: str_field(entry, "source_name"),
        loader: str_field(entry, "loader"),
        loaded_at_field: str_field(entry, "loaded_at_field"),
        freshness: field(entry, "freshness"),
        meta: field(entry, "meta"),
        extract: field(entry, "extract"),
        source_description: str_field(entry, "source_description"),
    }
}

/// Test-only fields of a manifest test.
fn test_data(entry: &Value) -> TestData<'_> {
    let metadata = field(entry, "test_metadata");
    let kind = match str_field(metadata, "name") {
        "" => str_field(entry, "name"),
        name => name,
    };
    let column = match str_field(entry, "column_name") {
        "" => str_field(field(metadata, "kwargs"), "column_name"),
        column => column,
    };
    let attached = match str_field(entry, "attached_node") {
        "" => string_list(field(field(entry, "depends_on"), "nodes")),
        node => vec![node],
    };
    TestData {
        kind,
        column,
        attached,
    }
}

/// Catalog columns (in warehouse order) merged with documented columns; columns
/// only documented follow, in manifest order. Names match case-insensitively.
fn merge_columns<'a>(documented: &'a Value, catalog: Option<&'a Value>) -> Vec<ColumnData<'a>> {
    let documented: Vec<&Value> = documented
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    let mut by_name: HashMap<String, usize> = documented
        .iter()
        .enumerate()
        .map(|(i, c)| (str_field(c, "name").to_lowercase(), i))
        .collect();
    let mut used = vec![false; documented.len()];
    let mut columns = Vec::new();
    for (name, cat) in catalog_columns(catalog) {
        let doc = by_name.remove(&name.to_lowercase()).map(|i| {
            used[i] = true;
            documented[i]
        });
        columns.push(column_data(name, str_field(cat, "type"), doc));
    }
    for (i, doc) in documented.iter().enumerate() {
        if !used[i] {
            columns.push(column_data(str_field(doc, "name"), "", Some(doc)));
        }
    }
    columns
}

/// Catalog columns as `(name, entry)`, sorted by their `index`.
fn catalog_columns(catalog: Option<&Value>) -> Vec<(&str, &Value)> {
    let mut columns: Vec<(&str, &Value)> = catalog
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(key, c)| (c.get("name").and_then(Value::as_str).unwrap_or(key), c))
                .collect()
        })
        .unwrap_or_default();
    columns.sort_by_key(|(_, c)| c.get("index").and_then(Value::as_i64).unwrap_or(i64::MAX));
    columns
}

/// One merged column; the catalog type wins over the documented `data_type`.
fn column_data<'a>(name: &'a str, catalog_type: &'a str, doc: Option<&'a Value>) -> ColumnData<'a> {
    let description = doc.map_or("", |d| str_field(d, "description"));
    let data_type = match catalog_type {
        "" => doc.map_or("", |d| str_field(d, "data_type")),
        t => t,
    };
    ColumnData {
        name,
        data_type,
        description,
        description_html: description_html(description),
        tests: Vec::new(),
    }
}

/// Fills `parents` from `depends_on.nodes` (or `parent_map` when a node has
/// none) and `children` as its inverse (tests are not listed as children: they
/// have their own section).
fn link_dependencies(
    nodes: &mut [NodeData<'_>],
    entries: &[(&str, &Value)],
    parent_map: Option<&Value>,
    index: &HashMap<&str, u32>,
) {
    for (i, (id, entry)) in entries.iter().enumerate() {
        let mut deps = string_list(field(field(entry, "depends_on"), "nodes"));
        if deps.is_empty() {
            deps = parent_map.map_or_else(Vec::new, |m| string_list(field(m, id)));
        }
        let mut parents: Vec<u32> = deps
            .into_iter()
            .filter_map(|id| index.get(id).copied())
            .collect();
        parents.sort_unstable();
        parents.dedup();
        let is_test = nodes[i].test.is_some();
        for &p in &parents {
            if !is_test {
                nodes[p as usize].children.push(to_u32(i));
            }
        }
        nodes[i].parents = parents;
    }
}

/// Lists each test on the nodes it is attached to and, for column tests, on the column.
fn attach_tests(nodes: &mut [NodeData<'_>], index: &HashMap<&str, u32>) {
    let tests: Vec<(u32, &str, Vec<&str>)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            n.test
                .as_ref()
                .map(|t| (to_u32(i), t.column, t.attached.clone()))
        })
        .collect();
    for (test, column, attached) in tests {
        for target in attached.iter().filter_map(|id| index.get(id)) {
            let node = &mut nodes[*target as usize];
            node.tests.push(test);
            if let Some(col) = node
                .columns
                .iter_mut()
                .find(|c| !column.is_empty() && c.name.eq_ignore_ascii_case(column))
            {
                col.tests.push(test);
            }
        }
    }
}

/// Lays out every node except tests and operations.
fn build_graph(nodes: &[NodeData<'_>]) -> GraphData {
    let members: Vec<usize> = (0..nodes.len())
        .filter(|&i| !NOT_IN_GRAPH.contains(&nodes[i].rt))
        .collect();
    let mut local = vec![u32::MAX; nodes.len()];
    for (k, &i) in members.iter().enumerate() {
        local[i] = to_u32(k);
    }
    let edges: Vec<(usize, usize)> = members
        .iter()
        .flat_map(|&i| {
            let to = local[i] as usize;
            let local = &local;
            nodes[i]
                .parents
                .iter()
                .filter(move |&&p| local[p as usize] != u32::MAX)
                .map(move |&p| (local[p as usize] as usize, to))
        })
        .collect();
    let layout = layered_layout(members.len(), &edges, &LayoutConfig::default());
    GraphData {
        width: layout.width,
        height: layout.height,
        nodes: members
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                (
                    to_u32(i),
                    round(layout.x[k]),
                    round(layout.y[k]),
                    layout.ranks[k],
                )
            })
            .collect(),
        edges: edges.iter().map(|&(a, b)| [to_u32(a), to_u32(b)]).collect(),
    }
}

/// Rounds a layout coordinate to a whole number (they are far below `i64::MAX`).
fn round(v: f64) -> i64 {
    v.round() as i64
}
