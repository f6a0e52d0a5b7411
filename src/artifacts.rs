//! Artifacts in `target/`: manifest.json (and later run_results.json,
//! catalog.json), in dbt's shapes and field names, written atomically
//! (temp file + rename) so a failed run never leaves half a file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::compile::Compiled;
use crate::project::node::ResourceType;

pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// Everything but timestamps and the invocation id is a function of the project.
pub fn manifest(c: &Compiled, invocation_id: &str, generated_at: &str) -> Value {
    let mut nodes = Map::new();
    let mut sources = Map::new();
    for (id, n) in c.nodes() {
        let mut v = serde_json::to_value(n).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("line");
            if let Some(Value::Object(cfg)) = m.get_mut("config") {
                cfg.remove("__dynamic");
                cfg.entry("materialized")
                    .or_insert_with(|| Value::from(n.materialized()));
                cfg.entry("enabled").or_insert(Value::Bool(true));
            }
            m.insert(
                "checksum".into(),
                json!({"name": "sha256", "checksum": n.checksum}),
            );
            if let Some(Value::Object(s)) = m.remove("source") {
                for (k, v) in s {
                    m.insert(k, v);
                }
            }
        }
        if n.resource_type == ResourceType::Source {
            sources.insert(id.clone(), v);
        } else {
            nodes.insert(id.clone(), v);
        }
    }
    let mut parent_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut child_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in c.nodes().keys() {
        parent_map.insert(
            id.clone(),
            c.graph
                .parents(id)
                .into_iter()
                .map(str::to_string)
                .collect(),
        );
        child_map.insert(
            id.clone(),
            c.graph
                .children(id)
                .into_iter()
                .map(str::to_string)
                .collect(),
        );
    }
    let checksums = crate::state::macro_checksums(&c.project);
    let macros: Map<String, Value> = checksums
        .iter()
        .map(|(id, sum)| {
            let name = id.rsplit('.').next().unwrap_or(id);
            let path = c.project.macros.iter().find(|m| m.names.iter().any(|n| n == name)).map(|m| m.path.clone());
            (
                id.clone(),
                json!({"name": name, "package_name": c.project.name(), "original_file_path": path, "resource_type": "macro", "unique_id": id, "checksum": sum}),
            )
        })
        .collect();
    let docs: Map<String, Value> = c
        .project
        .docs
        .iter()
        .map(|(k, v)| {
            (
                format!("doc.{}.{k}", c.project.name()),
                json!({"name": k, "block_contents": v}),
            )
        })
        .collect();
    json!({
        "metadata": {
            "dbt_schema_version": MANIFEST_SCHEMA,
            "dbt_version": "1.9.0",
            "generator": format!("sluice {}", env!("CARGO_PKG_VERSION")),
            "generated_at": generated_at,
            "invocation_id": invocation_id,
            "project_name": c.project.name(),
            "adapter_type": match c.renderer.settings.engine { crate::sql::Engine::DuckDb => "duckdb", crate::sql::Engine::Postgres => "postgres" },
            "env": {},
        },
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "docs": docs,
        "exposures": {},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
        "parent_map": parent_map,
        "child_map": child_map,
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": {},
    })
}

/// Write `contents` to `path` through a temp file in the same directory and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, contents)?;
    // Temp files are created private; artifacts are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn write_json(path: &Path, v: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text)
}
