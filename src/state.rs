//! `--state`: comparing the project with a previous run's manifest, for
//! `state:new`, `state:modified[.body|.configs|.relation|.macros]` and
//! `--defer`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use crate::diagnostics::Diagnostic;
use crate::project::node::Node;
use crate::project::Project;

/// The parts of a previous manifest that state comparison needs.
#[derive(Debug, Default)]
pub struct PreviousState {
    /// unique id → node JSON (nodes and sources).
    nodes: HashMap<String, Value>,
    /// macro unique id → checksum.
    macros: HashMap<String, String>,
    /// This project's macro checksums, to compare with `macros`.
    current_macros: HashMap<String, String>,
}

/// Checksum of each macro, by unique id (`macro.<project>.<name>`), from the file that defines it.
pub fn macro_checksums(project: &Project) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in &project.macros {
        let sum = crate::project::checksum(&m.text);
        let package = m.package.as_deref().unwrap_or(project.name());
        for name in &m.names {
            out.insert(format!("macro.{package}.{name}"), sum.clone());
        }
    }
    out
}

impl PreviousState {
    pub fn load(dir: &Path, project: &Project) -> Result<PreviousState, Diagnostic> {
        let path = dir.join("manifest.json");
        let text = fs_err::read_to_string(&path).map_err(|_| {
            Diagnostic::error("E0404", format!("no manifest.json in --state {}", dir.display()))
                .hint("point --state at the target/ directory of a previous `sluice parse`, `compile` or `build`")
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                "E0404",
                format!("{} is not a manifest: {e}", path.display()),
            )
        })?;
        let mut nodes = HashMap::new();
        for key in ["nodes", "sources"] {
            if let Some(m) = v[key].as_object() {
                for (id, n) in m {
                    nodes.insert(id.clone(), n.clone());
                }
            }
        }
        let macros = v["macros"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(id, x)| {
                        (
                            id.clone(),
                            x["checksum"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(PreviousState {
            nodes,
            macros,
            current_macros: macro_checksums(project).into_iter().collect(),
        })
    }

    /// Evaluate a `state:` selector value for `node`.
    pub fn check(&self, what: &str, node: &Node) -> Result<bool, String> {
        let old = self.nodes.get(&node.unique_id);
        Ok(match what {
            "new" => old.is_none(),
            "old" => old.is_some(),
            "modified" => old.is_none() || self.modified(node, old, None),
            "unmodified" => old.is_some() && !self.modified(node, old, None),
            w => match w.strip_prefix("modified.") {
                Some(part) => old.is_some() && self.modified(node, old, Some(part)),
                None => return Err(format!("unknown state selector `{w}`")),
            },
        })
    }

    fn modified(&self, node: &Node, old: Option<&Value>, part: Option<&str>) -> bool {
        let Some(old) = old else { return true };
        let body = || old["checksum"]["checksum"].as_str() != Some(node.checksum.as_str());
        let configs = || {
            // The config as the manifest writes it, defaults included, so
            // that both sides have the same shape.
            let mut now =
                serde_json::to_value(crate::artifacts::ManifestConfig(node)).unwrap_or(Value::Null);
            let mut before = old["config"].clone();
            for v in [&mut now, &mut before] {
                if let Value::Object(m) = v {
                    for k in ["__dynamic", "materialized", "enabled", "tags"] {
                        m.remove(k);
                    }
                }
            }
            now != before
                || old["config"]["materialized"]
                    .as_str()
                    .is_some_and(|m| m != node.materialized())
        };
        // (Sources have no alias, exposures no relation: a key the old
        // manifest does not have cannot have changed.)
        let relation = || {
            let differs =
                |key: &str, now: &str| old.get(key).is_some_and(|v| v.as_str() != Some(now));
            differs("schema", &node.schema) || differs("alias", &node.alias)
        };
        let macros = || {
            node.depends_on
                .macros
                .iter()
                .chain(&node.macros_used)
                .any(|m| self.macros.get(m) != self.current_macros.get(m))
        };
        match part {
            None => body() || configs() || relation() || macros(),
            Some("body") => body(),
            Some("configs") => configs(),
            Some("relation") => relation(),
            Some("macros") => macros(),
            Some(_) => false,
        }
    }

    /// The relation a node had in the previous state (`--defer`).
    pub fn relation(&self, id: &str) -> Option<(Option<String>, String, String)> {
        let n = self.nodes.get(id)?;
        let schema = n["schema"].as_str()?.to_string();
        let alias = n["alias"]
            .as_str()
            .or_else(|| n["identifier"].as_str())?
            .to_string();
        Some((n["database"].as_str().map(str::to_string), schema, alias))
    }
}
