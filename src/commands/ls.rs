//! `sluice ls`: selected resources on stdout, one per line.

use std::io::Write;

use serde_json::json;

use super::{load, select_ids, Exit, Failure, Ui};
use crate::cli::{GlobalArgs, LsOutput, SelectArgs};
use crate::project::node::{Node, ResourceType};

pub fn ls(g: &GlobalArgs, ui: &Ui, s: &SelectArgs, output: LsOutput) -> Result<Exit, Failure> {
    let mut loaded = load(
        g,
        &Ui {
            quiet: true,
            ..ui.clone()
        },
        "ls",
        false,
    )?;
    // JSON output carries column lineage, which needs compiled SQL (and the
    // catalog from the last `docs generate`, when there is one, for `select *`).
    let lineage = if output == LsOutput::Json {
        crate::compile::compile_sql(&mut loaded.compiled, None)?;
        let catalog =
            fs_err::read_to_string(loaded.compiled.project.target_dir().join("catalog.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
        super::docs::lineage_json(&loaded.compiled, &catalog)
    } else {
        serde_json::Value::Null
    };
    let c = &loaded.compiled;
    let ids = select_ids(c, s)?;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let Some(n) = c.nodes().get(&id) else {
            continue;
        };
        let line = match output {
            LsOutput::Name => n.name.clone(),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Selector => selector(n),
            LsOutput::Json => json_line(n, &lineage[&n.unique_id]),
        };
        writeln!(out, "{line}")?;
    }
    Ok(0)
}

/// dbt's default `ls` output: the fqn joined by dots, prefixed with the
/// resource type for sources, exposures and unit tests.
fn selector(n: &Node) -> String {
    match n.resource_type {
        ResourceType::Source
        | ResourceType::Exposure
        | ResourceType::UnitTest
        | ResourceType::SemanticModel
        | ResourceType::Metric
        | ResourceType::SavedQuery => {
            format!("{}:{}", n.resource_type.as_str(), n.fqn.join("."))
        }
        _ => n.fqn.join("."),
    }
}

fn json_line(n: &Node, lineage: &serde_json::Value) -> String {
    let mut config = n.config.clone();
    config.remove("__dynamic");
    json!({
        "name": n.name,
        "resource_type": n.resource_type.as_str(),
        "package_name": n.package_name,
        "original_file_path": n.original_file_path,
        "unique_id": n.unique_id,
        "alias": n.alias,
        "config": config,
        "tags": n.tags,
        "depends_on": n.depends_on,
        "column_lineage": lineage,
    })
    .to_string()
}
