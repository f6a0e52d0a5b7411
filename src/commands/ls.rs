//! `sluice ls`: selected resources on stdout, one per line.

use std::io::Write;

use serde_json::json;

use super::{load, select_ids, Exit, Failure, Ui};
use crate::cli::{GlobalArgs, LsOutput, SelectArgs};
use crate::diagnostics::Diagnostic;
use crate::project::node::{Node, ResourceType};

pub fn ls(
    g: &GlobalArgs,
    ui: &Ui,
    s: &SelectArgs,
    output: LsOutput,
    types: &[String],
) -> Result<Exit, Failure> {
    let loaded = load(
        g,
        &Ui {
            quiet: true,
            ..ui.clone()
        },
        "ls",
        false,
    )?;
    let c = &loaded.compiled;
    let mut wanted = Vec::new();
    for t in types {
        if t == "all" || t == "default" {
            continue;
        }
        let rt = ResourceType::parse(t).ok_or_else(|| {
            Diagnostic::error("E0403", format!("unknown resource type `{t}`"))
                .hint("one of: model, seed, source, test, snapshot, analysis")
        })?;
        wanted.push(rt);
    }
    let ids = select_ids(c, s)?;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let Some(n) = c.nodes().get(&id) else {
            continue;
        };
        if !wanted.is_empty() && !wanted.contains(&n.resource_type) {
            continue;
        }
        let line = match output {
            LsOutput::Name => n.name.clone(),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Selector => selector(n),
            LsOutput::Json => json_line(n),
        };
        writeln!(out, "{line}")?;
    }
    Ok(0)
}

/// dbt's default `ls` output: the fqn joined by dots (`source:` prefixed for sources).
fn selector(n: &Node) -> String {
    match n.resource_type {
        ResourceType::Source => format!("source:{}", n.fqn.join(".")),
        _ => n.fqn.join("."),
    }
}

fn json_line(n: &Node) -> String {
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
    })
    .to_string()
}
