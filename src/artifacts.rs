//! Artifacts in `target/`: manifest.json (and later run_results.json,
//! catalog.json), in dbt's shapes and field names, written atomically
//! (temp file + rename) so a failed run never leaves half a file.

use std::path::Path;

use rayon::prelude::*;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::compile::Compiled;
use crate::project::node::{Node, ResourceType};

pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// Everything but timestamps and the invocation id is a function of the project.
///
/// The manifest borrows from the compiled project and serializes straight to
/// JSON: at thousands of nodes, building a `Value` tree first costs more than
/// everything else `parse` does.
pub struct Manifest<'a> {
    c: &'a Compiled,
    invocation_id: &'a str,
    generated_at: &'a str,
    /// Whether nodes carry `compiled_code`: not after `parse`, as in dbt.
    compiled: bool,
}

pub fn manifest<'a>(
    c: &'a Compiled,
    invocation_id: &'a str,
    generated_at: &'a str,
) -> Manifest<'a> {
    Manifest {
        c,
        invocation_id,
        generated_at,
        compiled: true,
    }
}

impl Manifest<'_> {
    /// The manifest `dbt parse` writes: nodes without compiled code.
    pub fn parsed_only(self) -> Self {
        Manifest {
            compiled: false,
            ..self
        }
    }

    /// The manifest as a JSON value, for readers that walk it (docs site, tests).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Manifest<'_> {
    fn metadata(&self) -> Value {
        json!({
            "dbt_schema_version": MANIFEST_SCHEMA,
            "dbt_version": "1.9.0",
            "generator": format!("sluice {}", env!("CARGO_PKG_VERSION")),
            "generated_at": self.generated_at,
            "invocation_id": self.invocation_id,
            "project_name": self.c.project.name(),
            "adapter_type": match self.c.renderer.settings.engine { crate::sql::Engine::DuckDb => "duckdb", crate::sql::Engine::Postgres => "postgres" },
            "env": crate::templating::metadata_envs(std::env::vars()),
        })
    }

    /// Stream the manifest to `out` as compact JSON (dbt writes it compact
    /// too). Nodes are serialized in parallel, a block at a time, while a
    /// writer thread hands the previous blocks to `out`, and the maps after
    /// the nodes are serialized alongside: at thousands of nodes this is
    /// most of the cost, and memory stays at a few blocks rather than a
    /// second copy of the file.
    pub fn to_writer(&self, out: &mut (impl std::io::Write + Send)) -> std::io::Result<()> {
        const BLOCK: usize = 2048;
        // Unit tests and exposures have their own sections, written with the rest.
        let (sources, nodes): (Vec<&Node>, Vec<&Node>) = self
            .c
            .nodes()
            .values()
            .filter(|n| !own_section(n))
            .partition(|n| n.resource_type == ResourceType::Source);
        let head_out = &mut *out;
        let (rest, streamed) = rayon::join(
            || serde_json::to_vec(&Rest(self)),
            || {
                std::thread::scope(|scope| {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2 * BLOCK);
                    let writer = scope.spawn(move || -> std::io::Result<()> {
                        for piece in rx {
                            head_out.write_all(&piece)?;
                        }
                        Ok(())
                    });
                    // A writer that failed stops receiving: stop producing.
                    let send = |piece: Vec<u8>| tx.send(piece).map_err(std::io::Error::other);
                    let object = |nodes: &[&Node]| -> std::io::Result<()> {
                        for (b, block) in nodes.chunks(BLOCK).enumerate() {
                            let pieces: Vec<Vec<u8>> = block
                                .par_iter()
                                .enumerate()
                                .map(|(i, n)| {
                                    let mut buf = Vec::with_capacity(2048);
                                    if b > 0 || i > 0 {
                                        buf.push(b',');
                                    }
                                    serde_json::to_writer(&mut buf, &n.unique_id)?;
                                    buf.push(b':');
                                    serde_json::to_writer(
                                        &mut buf,
                                        &ManifestNode(n, self.compiled),
                                    )?;
                                    Ok(buf)
                                })
                                .collect::<serde_json::Result<_>>()?;
                            for p in pieces {
                                send(p)?;
                            }
                        }
                        Ok(())
                    };
                    let produced = (|| -> std::io::Result<()> {
                        let mut head = b"{\"metadata\":".to_vec();
                        serde_json::to_writer(&mut head, &self.metadata())?;
                        head.extend_from_slice(b",\"nodes\":{");
                        send(head)?;
                        object(&nodes)?;
                        send(b"},\"sources\":{".to_vec())?;
                        object(&sources)?;
                        send(b"}".to_vec())
                    })();
                    drop(tx);
                    let written = writer
                        .join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("manifest writer panicked")));
                    // The writer's own error explains a failed send.
                    written.and(produced)
                })
            },
        );
        streamed?;
        let rest = rest?;
        // `rest` is `{…}`: continue the top-level object with its entries.
        if rest.len() > 2 {
            out.write_all(b",")?;
            out.write_all(&rest[1..])?;
        } else {
            out.write_all(b"}")?;
        }
        out.write_all(b"\n")
    }

    /// Write `manifest.json` atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic_with(path, |file| {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            self.to_writer(&mut out)?;
            std::io::Write::flush(&mut out)
        })
    }

    /// Everything after `metadata`, `nodes` and `sources`.
    fn rest_entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        let c = self.c;
        let project_name = c.project.name();
        let ids = || c.nodes().keys().map(String::as_str);
        let parent_map = EdgeMap(ids(), |id| c.graph.parents(id));
        let child_map = EdgeMap(ids(), |id| c.graph.children(id));
        let macros: Map<String, Value> = crate::state::macro_checksums(&c.project)
            .into_iter()
            .map(|(id, sum)| {
                let mut parts = id.splitn(3, '.').skip(1);
                let package = parts.next().unwrap_or(project_name).to_string();
                let name = parts.next().unwrap_or(&id).to_string();
                let path = c
                    .project
                    .macros
                    .iter()
                    .find(|m| {
                        m.package.as_deref().unwrap_or(project_name) == package
                            && m.names.contains(&name)
                    })
                    .map(|m| m.path.clone());
                let v = json!({"name": name, "package_name": package, "original_file_path": path, "resource_type": "macro", "unique_id": id, "checksum": sum});
                (id, v)
            })
            .collect();
        let docs: Map<String, Value> = c
            .project
            .docs
            .iter()
            .map(|(k, v)| {
                (
                    format!("doc.{project_name}.{k}"),
                    json!({"name": k, "block_contents": v}),
                )
            })
            .collect();
        let empty = Map::new();
        m.serialize_entry("macros", &macros)?;
        m.serialize_entry("docs", &docs)?;
        let of_type = |rt: ResourceType| c.nodes().values().filter(move |n| n.resource_type == rt);
        m.serialize_entry(
            "exposures",
            &NodeMap(of_type(ResourceType::Exposure), self.compiled),
        )?;
        m.serialize_entry(
            "metrics",
            &NodeMap(of_type(ResourceType::Metric), self.compiled),
        )?;
        m.serialize_entry("groups", &groups(c))?;
        for k in ["selectors", "disabled"] {
            m.serialize_entry(k, &empty)?;
        }
        m.serialize_entry("parent_map", &parent_map)?;
        m.serialize_entry("child_map", &child_map)?;
        m.serialize_entry("group_map", &group_map(c))?;
        m.serialize_entry(
            "saved_queries",
            &NodeMap(of_type(ResourceType::SavedQuery), self.compiled),
        )?;
        m.serialize_entry(
            "semantic_models",
            &NodeMap(of_type(ResourceType::SemanticModel), self.compiled),
        )?;
        m.serialize_entry(
            "unit_tests",
            &NodeMap(of_type(ResourceType::UnitTest), self.compiled),
        )?;
        Ok(())
    }
}

impl Serialize for Manifest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let is_source = |n: &&Node| n.resource_type == ResourceType::Source;
        let all = || self.c.nodes().values().filter(|n| !own_section(n));
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("metadata", &self.metadata())?;
        let compiled = self.compiled;
        m.serialize_entry("nodes", &NodeMap(all().filter(|n| !is_source(n)), compiled))?;
        m.serialize_entry("sources", &NodeMap(all().filter(is_source), compiled))?;
        self.rest_entries(&mut m)?;
        m.end()
    }
}

/// Unit tests, exposures and the Semantic Layer's resources are not under
/// `nodes` in dbt's manifest but in sections of their own.
fn own_section(n: &Node) -> bool {
    matches!(
        n.resource_type,
        ResourceType::UnitTest
            | ResourceType::Exposure
            | ResourceType::SemanticModel
            | ResourceType::Metric
            | ResourceType::SavedQuery
    )
}

/// dbt's `groups` section: `group.<project>.<name>` → the group.
pub fn groups(c: &Compiled) -> Map<String, Value> {
    let project = c.project.name();
    c.project
        .groups
        .iter()
        .map(|g| {
            let id = format!("group.{project}.{}", g.name);
            let v = json!({
                "name": g.name, "resource_type": "group", "package_name": project,
                "path": g.file, "original_file_path": g.file, "unique_id": id,
                "owner": g.owner, "description": g.description,
                "config": {"meta": g.config.get("meta").cloned().unwrap_or_else(|| json!({}))},
            });
            (id, v)
        })
        .collect()
}

/// dbt's `group_map`: each group's name → the unique ids of its nodes.
fn group_map(c: &Compiled) -> Map<String, Value> {
    let mut map: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for n in c.nodes().values() {
        if let Some(g) = n.config.get("group").and_then(Value::as_str) {
            map.entry(g).or_default().push(&n.unique_id);
        }
    }
    map.into_iter()
        .map(|(g, ids)| (g.to_string(), json!(ids)))
        .collect()
}

fn is_semantic(rt: ResourceType) -> bool {
    matches!(
        rt,
        ResourceType::SemanticModel | ResourceType::Metric | ResourceType::SavedQuery
    )
}

/// The manifest's entries after the nodes, as a map of their own.
struct Rest<'a>(&'a Manifest<'a>);

impl Serialize for Rest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.0.rest_entries(&mut m)?;
        m.end()
    }
}

/// `unique_id → node` for the nodes an iterator yields (in unique-id
/// order), with or without their compiled code.
struct NodeMap<I>(I, bool);

impl<'a, I: Iterator<Item = &'a Node> + Clone> Serialize for NodeMap<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0
                .clone()
                .map(|n| (&n.unique_id, ManifestNode(n, self.1))),
        )
    }
}

/// `unique_id → [neighbour ids]` (dbt's `parent_map` / `child_map`).
struct EdgeMap<'a, I, F>(I, F)
where
    I: Iterator<Item = &'a str> + Clone,
    F: Fn(&'a str) -> Vec<&'a str>;

impl<'a, I, F> Serialize for EdgeMap<'a, I, F>
where
    I: Iterator<Item = &'a str> + Clone,
    F: Fn(&'a str) -> Vec<&'a str>,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.clone().map(|id| (id, (self.1)(id))))
    }
}

/// One node in dbt's manifest shape: the node's own fields, its config with
/// dbt's defaults filled in, the checksum as `{name, checksum}`, and a
/// source's fields at the top level as dbt has them.
/// The flag says whether its compiled code is shown (not after `parse`).
pub struct ManifestNode<'a>(pub &'a Node, pub bool);

impl Serialize for ManifestNode<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("unique_id", &n.unique_id)?;
        m.serialize_entry("resource_type", &n.resource_type)?;
        m.serialize_entry("name", &n.name)?;
        m.serialize_entry("package_name", &n.package_name)?;
        m.serialize_entry("path", &n.path)?;
        m.serialize_entry("original_file_path", n.package_file_path())?;
        m.serialize_entry("fqn", &n.fqn)?;
        use crate::project::node::ResourceType as R;
        let rt = n.resource_type;
        // The keys dbt's class for each resource type has: a source has no
        // alias or code, an exposure or a Semantic Layer resource no
        // relation, a seed no compiled code or refs.
        let lineage_only = matches!(rt, R::Exposure) || is_semantic(rt);
        let compiled_kind = matches!(rt, R::Model | R::Test | R::Analysis | R::Snapshot);
        if !lineage_only {
            m.serialize_entry("database", &n.database)?;
            m.serialize_entry("schema", &n.schema)?;
            if rt != R::Source {
                m.serialize_entry("alias", &n.alias)?;
            }
            m.serialize_entry("relation_name", &n.relation_name)?;
        }
        if !lineage_only && rt != R::Source {
            m.serialize_entry("raw_code", &n.raw_code)?;
        }
        if compiled_kind || rt == R::UnitTest {
            m.serialize_entry("language", &n.language)?;
        }
        if compiled_kind {
            // A node this invocation did not compile (`compile -s …`) still
            // holds its phase-one text with relation placeholders: as in
            // dbt, it has no compiled code yet.
            let compiled = n
                .compiled_code
                .as_deref()
                .filter(|c| self.1 && !c.contains(crate::templating::objects::MARK));
            m.serialize_entry("compiled_code", &compiled)?;
            m.serialize_entry("compiled_path", &n.compiled_path)?;
            m.serialize_entry("compiled", &compiled.is_some())?;
            m.serialize_entry("extra_ctes_injected", &compiled.is_some())?;
            m.serialize_entry("extra_ctes", &[(); 0])?;
        }
        m.serialize_entry("config", &ManifestConfig(n))?;
        m.serialize_entry("description", &n.description)?;
        if !lineage_only {
            m.serialize_entry("columns", &n.columns)?;
            m.serialize_entry("doc_blocks", &[(); 0])?;
        }
        if rt != R::SemanticModel {
            m.serialize_entry("meta", &n.meta)?;
            m.serialize_entry("tags", &n.tags)?;
        }
        if !matches!(rt, R::Source | R::Seed) {
            m.serialize_entry("refs", &n.refs)?;
        }
        if !matches!(rt, R::Source | R::Seed | R::SemanticModel) {
            m.serialize_entry("sources", &n.sources)?;
        }
        match rt {
            R::Source => {}
            // A seed depends on no node: dbt writes only its macros.
            R::Seed => m.serialize_entry("depends_on", &json!({"macros": n.depends_on.macros}))?,
            _ => m.serialize_entry("depends_on", &n.depends_on)?,
        }
        if rt == R::Exposure {
            m.serialize_entry("metrics", &[(); 0])?;
        }
        m.serialize_entry("patch_path", &n.patch_path)?;
        let config = |k: &str| n.config.get(k).cloned().unwrap_or(Value::Null);
        if let Some(sem) = &n.semantic {
            // MetricFlow's keys as declared (`model`, `entities`,
            // `type_params`, …); the node's own fields above win.
            const OWN: [&str; 7] = [
                "name",
                "description",
                "config",
                "meta",
                "tags",
                "depends_on",
                "group",
            ];
            for (k, v) in sem
                .properties
                .iter()
                .filter(|(k, _)| !OWN.contains(&k.as_str()))
            {
                m.serialize_entry(k, v)?;
            }
            if is_semantic(rt) {
                m.serialize_entry("group", &config("group"))?;
            }
        }
        if !matches!(rt, R::Source | R::Exposure | R::UnitTest) && !is_semantic(rt) {
            // Keys dbt's nodes always have: macros walking `graph` test
            // them (`rejectattr("time_spine", "none")`), so they are
            // present even when empty.
            m.serialize_entry("group", &config("group"))?;
            let docs = n.config.get("docs").cloned();
            m.serialize_entry(
                "docs",
                &docs.unwrap_or_else(|| json!({"show": true, "node_color": null})),
            )?;
            if rt != R::Seed {
                m.serialize_entry("metrics", &[(); 0])?;
            }
        }
        if rt == R::Test {
            m.serialize_entry(
                "contract",
                &json!({"enforced": false, "alias_types": true, "checksum": null}),
            )?;
        }
        if n.resource_type == R::Model {
            m.serialize_entry("version", &n.version)?;
            m.serialize_entry("latest_version", &n.latest_version)?;
            let access = n.config.get("access").cloned();
            m.serialize_entry("access", &access.unwrap_or_else(|| json!("protected")))?;
            m.serialize_entry("constraints", &n.constraints)?;
            m.serialize_entry("deprecation_date", &config("deprecation_date"))?;
            let enforced = n
                .config
                .get("contract")
                .and_then(|c| c.get("enforced"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            m.serialize_entry(
                "contract",
                &json!({"enforced": enforced, "alias_types": true, "checksum": null}),
            )?;
            m.serialize_entry("time_spine", &n.time_spine)?;
            m.serialize_entry("primary_key", &[(); 0])?;
        }
        if let Some(t) = &n.test_metadata {
            m.serialize_entry("test_metadata", t)?;
        }
        if let Some(col) = &n.column_name {
            m.serialize_entry("column_name", col)?;
        }
        if let Some(a) = &n.attached_node {
            m.serialize_entry("attached_node", a)?;
        }
        if let Some(e) = &n.exposure {
            if let Value::Object(fields) =
                serde_json::to_value(e).map_err(serde::ser::Error::custom)?
            {
                for (k, v) in &fields {
                    m.serialize_entry(k, v)?;
                }
            }
        }
        if let Some(u) = &n.unit_test {
            m.serialize_entry("model", &u.model)?;
            m.serialize_entry("given", &u.given)?;
            m.serialize_entry("expect", &u.expect)?;
            m.serialize_entry("overrides", &u.overrides)?;
        }
        let checksum = match n.checksum.strip_prefix("path:") {
            Some(path) => json!({"name": "path", "checksum": path}),
            None => json!({"name": "sha256", "checksum": n.checksum}),
        };
        m.serialize_entry("checksum", &checksum)?;
        if let Some(src) = &n.source {
            if let Value::Object(fields) =
                serde_json::to_value(src).map_err(serde::ser::Error::custom)?
            {
                for (k, v) in &fields {
                    m.serialize_entry(k, v)?;
                }
            }
        }
        m.end()
    }
}

/// A node's config as dbt writes it: `materialized` and `enabled` always
/// present, sluice's internal keys left out.
pub struct ManifestConfig<'a>(pub &'a Node);

impl Serialize for ManifestConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let cfg = &n.config;
        let mut m = s.serialize_map(None)?;
        // (`deprecation_date` is a node property, written beside the config.)
        for (k, v) in cfg
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "__dynamic" | "deprecation_date"))
        {
            m.serialize_entry(k, v)?;
        }
        if !cfg.contains_key("materialized") && !is_semantic(n.resource_type) {
            m.serialize_entry("materialized", n.materialized())?;
        }
        if !cfg.contains_key("enabled") {
            m.serialize_entry("enabled", &true)?;
        }
        if !cfg.contains_key("meta") {
            m.serialize_entry("meta", &json!({}))?;
        }
        if let Some(src) = n
            .source
            .as_deref()
            .filter(|_| !cfg.contains_key("freshness"))
        {
            m.serialize_entry("freshness", &src.freshness)?;
        }
        for (k, v) in config_defaults(n.resource_type) {
            if !cfg.contains_key(k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// The keys dbt's config classes always carry, with their defaults, for
/// those a node does not set (`materialized`, `enabled` and `meta` are
/// written above). Jinja that reads them (`node.config.full_refresh is
/// none`, dbt_artifacts' uploads) needs them present, as in dbt.
pub fn config_defaults(rt: crate::project::node::ResourceType) -> &'static Map<String, Value> {
    use crate::project::node::ResourceType as R;
    use std::sync::LazyLock;
    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
    // dbt's `NodeConfig`, with what a resource type's class adds.
    fn node(extra: Value) -> Map<String, Value> {
        let mut m = object(json!({
            "alias": null, "schema": null, "database": null, "tags": [], "group": null,
            "incremental_strategy": null, "batch_size": null, "lookback": 1, "begin": null,
            "persist_docs": {}, "post-hook": [], "pre-hook": [], "quoting": {},
            "column_types": {}, "full_refresh": null, "unique_key": null,
            "on_schema_change": "ignore", "on_configuration_change": "apply", "grants": {},
            "packages": [], "docs": {"show": true, "node_color": null},
            "contract": {"enforced": false, "alias_types": true},
            "event_time": null, "concurrent_batches": null,
        }));
        m.extend(object(extra));
        m
    }
    static MODEL: LazyLock<Map<String, Value>> =
        LazyLock::new(|| node(json!({"access": "protected"})));
    static SEED: LazyLock<Map<String, Value>> =
        LazyLock::new(|| node(json!({"delimiter": ",", "quote_columns": null})));
    static SNAPSHOT: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        node(json!({
            "strategy": null, "target_schema": null, "target_database": null,
            "updated_at": null, "check_cols": null, "snapshot_meta_column_names": {},
            "dbt_valid_to_current": null,
        }))
    });
    static OTHER: LazyLock<Map<String, Value>> = LazyLock::new(|| node(json!({})));
    static TEST: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        object(json!({
            "alias": null, "schema": crate::project::config::TEST_SCHEMA, "database": null,
            "tags": [], "group": null, "severity": "ERROR", "store_failures": null,
            "store_failures_as": null, "where": null, "limit": null,
            "fail_calc": "count(*)", "warn_if": "!= 0", "error_if": "!= 0",
        }))
    });
    static SOURCE: LazyLock<Map<String, Value>> =
        LazyLock::new(|| object(json!({"event_time": null})));
    static SEMANTIC: LazyLock<Map<String, Value>> =
        LazyLock::new(|| object(json!({"group": null})));
    static SAVED_QUERY: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        object(
            json!({"group": null, "export_as": null, "schema": null, "cache": {"enabled": false}}),
        )
    });
    static NONE: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    match rt {
        R::Model => &MODEL,
        R::Seed => &SEED,
        R::Snapshot => &SNAPSHOT,
        R::Analysis => &OTHER,
        R::Test => &TEST,
        R::Source => &SOURCE,
        R::SemanticModel | R::Metric => &SEMANTIC,
        R::SavedQuery => &SAVED_QUERY,
        R::UnitTest | R::Exposure => &NONE,
    }
}

/// Write `contents` to `path` through a temp file in the same directory and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| std::io::Write::write_all(file, contents))
}

/// Write `path` through `write` into a temp file beside it, then rename.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    write(tmp.as_file_mut())?;
    // Temp files are created private; artifacts are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    // Renaming over an existing file makes ext4 write the new one out
    // before `rename` returns (`auto_da_alloc`): 80 ms for a 75 MB
    // manifest. Moving the old file out of the way first keeps the rename
    // cheap; readers miss the file only between two renames.
    let aside = dir.join(format!(
        ".{}.old",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact")
    ));
    let moved = std::fs::rename(path, &aside).is_ok();
    if let Err(e) = tmp.persist(path) {
        if moved {
            // Put the previous artifact back rather than lose it.
            let _ = std::fs::rename(&aside, path);
        }
        return Err(e.error);
    }
    if moved {
        let _ = std::fs::remove_file(&aside);
    }
    Ok(())
}

pub fn write_json(path: &Path, v: &impl Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text)
}
