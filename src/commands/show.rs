//! `sluice show` (dbt's `show`: preview the rows a node or an inline query
//! returns) and `sluice run-operation` (call a macro against the warehouse).

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::Value;

use super::run::lock;
use super::{load, select_ids, Exit, Failure, Ui};
use crate::cli::{GlobalArgs, SelectArgs, ShowOutput};
use crate::compile::{self, Compiled, SharedConnection};
use crate::diagnostics::Diagnostic;
use crate::project::node::ResourceType;
use crate::warehouse::QueryResult;

/// A connection for rendering and querying; unreachable is an error.
fn connect(
    c: &Compiled,
    target: &crate::project::profiles::Target,
) -> Result<SharedConnection, Failure> {
    super::connect_renderer(c, target).map_err(|e| Diagnostic::error("E0701", e).into())
}

/// Preview up to `limit` rows of each selected model, seed, snapshot or
/// analysis, or of `inline` SQL (rendered like a model).
pub fn show(
    g: &GlobalArgs,
    ui: &Ui,
    s: &SelectArgs,
    inline: Option<&str>,
    limit: usize,
    output: ShowOutput,
) -> Result<Exit, Failure> {
    let loaded = load(g, ui, "show", false)?;
    let c = &loaded.compiled;
    let conn = connect(c, &loaded.target)?;
    let mut previews: Vec<(String, String)> = Vec::new();
    if let Some(sql) = inline {
        let r = c
            .renderer
            .render("<inline>", sql, None, true, false, Some(conn.clone()))?;
        previews.push(("inline".into(), c.renderer.substitute(&r.output)));
    } else {
        if s.select.is_empty() {
            return Err(
                Diagnostic::error("E0405", "show needs --select or --inline")
                    .hint("e.g. sluice show -s customers, or sluice show --inline \"select 1\"")
                    .into(),
            );
        }
        let ids: BTreeSet<String> = select_ids(c, s)?
            .into_iter()
            .filter(|id| {
                c.nodes().get(id).is_some_and(|n| {
                    matches!(
                        n.resource_type,
                        ResourceType::Model
                            | ResourceType::Seed
                            | ResourceType::Snapshot
                            | ResourceType::Analysis
                    )
                })
            })
            .collect();
        for id in &ids {
            let n = &c.nodes()[id];
            let sql = if n.resource_type == ResourceType::Model
                || n.resource_type == ResourceType::Analysis
            {
                let r = c.renderer.render(
                    &n.original_file_path,
                    &n.raw_code,
                    Some(n),
                    true,
                    false,
                    Some(conn.clone()),
                )?;
                compile::inject_ephemerals(
                    &c.renderer.substitute(&r.output),
                    n,
                    c.nodes(),
                    &c.renderer,
                )
            } else {
                // A seed or snapshot shows its table.
                format!(
                    "select * from {}",
                    n.relation_name.clone().unwrap_or_default()
                )
            };
            previews.push((n.name.clone(), sql));
        }
    }
    let mut out = std::io::stdout().lock();
    for (name, sql) in previews {
        let query = format!(
            "select * from (\n{}\n) as sluice_show limit {limit}",
            sql.trim().trim_end_matches(';')
        );
        let rows = lock(&conn)
            .query(&query)
            .map_err(|e| Diagnostic::error("E0705", format!("{name}: {e}")))?;
        match output {
            ShowOutput::Json => {
                let records: Vec<serde_json::Map<String, Value>> = rows
                    .rows
                    .iter()
                    .map(|r| {
                        rows.columns
                            .iter()
                            .map(|c| c.name.clone())
                            .zip(r.iter().cloned())
                            .collect()
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"node": name, "show": records})
                )?;
            }
            ShowOutput::Text => {
                if name == "inline" {
                    writeln!(out, "Previewing inline node:")?;
                } else {
                    writeln!(out, "Previewing node '{name}':")?;
                }
                writeln!(out, "{}", table(&rows))?;
            }
        }
    }
    Ok(0)
}

/// The rows as a Markdown-style table, columns padded to their widest cell.
fn table(r: &QueryResult) -> String {
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row.get(i).map_or(0, |s| s.chars().count()))
                .chain([c.name.chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |values: Vec<String>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut lines = vec![
        line(r.columns.iter().map(|c| c.name.clone()).collect()),
        line(widths.iter().map(|w| "-".repeat(*w)).collect()),
    ];
    lines.extend(cells.into_iter().map(line));
    lines.join("\n")
}

/// Call macro `name` (or `package.name`) with `args` (a YAML/JSON mapping)
/// against the warehouse, as dbt's `run-operation` does: its SQL runs, its
/// `log()` lines are printed, its output is discarded.
pub fn run_operation(
    g: &GlobalArgs,
    ui: &Ui,
    name: &str,
    args: Option<&str>,
) -> Result<Exit, Failure> {
    let loaded = load(g, ui, "run-operation", false)?;
    let c = &loaded.compiled;
    let args = match args {
        None => Value::Object(Default::default()),
        Some(text) => match crate::project::yaml::parse(text, "--args") {
            Ok(v @ Value::Object(_)) => v,
            Ok(Value::Null) => Value::Object(Default::default()),
            _ => {
                return Err(Diagnostic::error(
                    "E0406",
                    format!("--args must be a YAML or JSON mapping, got `{text}`"),
                )
                .hint("e.g. --args '{table: tweets, days: 7}'")
                .into())
            }
        },
    };
    let valid = name
        .split('.')
        .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'));
    if !valid {
        return Err(Diagnostic::error("E0406", format!("`{name}` is not a macro name")).into());
    }
    let conn = connect(c, &loaded.target)?;
    let json = serde_json::to_string(&args.to_string()).unwrap_or_default();
    let call = format!("{{{{ {name}(**fromjson({json})) }}}}");
    ui.info(format!("Running with dbt macro {name}"));
    let r = c
        .renderer
        .render("<run-operation>", &call, None, true, false, Some(conn))?;
    let mut out = std::io::stdout().lock();
    for l in &r.logs {
        writeln!(out, "{l}")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::ColumnMeta;

    #[test]
    fn rows_print_as_an_aligned_table() {
        let r = QueryResult {
            columns: vec![
                ColumnMeta {
                    name: "id".into(),
                    data_type: "integer".into(),
                },
                ColumnMeta {
                    name: "name".into(),
                    data_type: "text".into(),
                },
            ],
            rows: vec![
                vec![Value::from(1), Value::from("Ann")],
                vec![Value::from(22), Value::Null],
            ],
        };
        assert_eq!(
            table(&r),
            "| id  | name |\n| --- | ---- |\n| 1   | Ann  |\n| 22  |      |"
        );
    }
}
