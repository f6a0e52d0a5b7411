//! `docs generate` and `docs serve`: catalog.json from the warehouse,
//! column lineage from the compiled SQL, and the self-contained site.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::{load, shown_path, Exit, Failure, Ui};
use crate::cli::GlobalArgs;
use crate::compile::{self, Compiled};
use crate::diagnostics::Diagnostic;
use crate::project::node::{Node, ResourceType};
use crate::sql::lineage::{column_lineage, ColumnLineage};
use crate::warehouse::{self, Engine};

pub fn generate(g: &GlobalArgs, ui: &Ui, empty_catalog: bool) -> Result<Exit, Failure> {
    let mut loaded = load(g, ui, "docs", false)?;
    compile::compile_sql(&mut loaded.compiled, None)?;
    let c = &loaded.compiled;
    let target_dir = c.project.target_dir();
    let catalog = if empty_catalog {
        empty(c)
    } else {
        match read_catalog(c, &loaded.target.config) {
            Ok(cat) => cat,
            Err(e) => {
                eprintln!("warning: could not read the catalog from the warehouse ({e}); column types will be missing\n   = hint: run `sluice build` first, or pass --empty-catalog");
                empty(c)
            }
        }
    };
    let lineage = lineage_json(c, &catalog);
    let (invocation_id, generated_at) = (uuid::Uuid::new_v4().to_string(), now());
    let manifest = crate::artifacts::manifest(c, &invocation_id, &generated_at);
    manifest.write(&target_dir.join("manifest.json"))?;
    let manifest = manifest.to_value();
    crate::artifacts::write_json(&target_dir.join("catalog.json"), &catalog)?;
    crate::artifacts::write_json(&target_dir.join("lineage.json"), &lineage)?;
    let run_results: Option<Value> = fs_err::read_to_string(target_dir.join("run_results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let overview = c
        .project
        .docs
        .get("__overview__")
        .cloned()
        .or_else(|| fs_err::read_to_string(c.project.root.join("README.md")).ok());
    let html = crate::docs_site::render_site(&crate::docs_site::SiteInput {
        manifest: &manifest,
        catalog: Some(&catalog),
        run_results: run_results.as_ref(),
        lineage: Some(&lineage),
        overview_markdown: overview.as_deref(),
    })
    .map_err(|e| Failure::Internal(e.into()))?;
    let index = target_dir.join("index.html");
    crate::artifacts::write_atomic(&index, html.as_bytes())?;
    ui.info(format!(
        "Catalog written to {}",
        shown_path(&target_dir.join("catalog.json"), &c.project.root)
    ));
    ui.info(format!(
        "Docs site written to {}",
        shown_path(&index, &c.project.root)
    ));
    Ok(0)
}

pub fn serve(g: &GlobalArgs, ui: &Ui, host: &str, port: u16) -> Result<Exit, Failure> {
    let root = super::project_dir(g);
    let text =
        fs_err::read_to_string(root.join(crate::project::config::PROJECT_FILE)).map_err(|_| {
            Diagnostic::error("E0100", format!("no dbt_project.yml in {}", root.display()))
        })?;
    let (cfg, _) = crate::project::config::ProjectConfig::parse(&text)?;
    let dir = match &g.target_path {
        Some(t) => root.join(t),
        None => root.join(&cfg.target_path),
    };
    if !dir.join("index.html").is_file() {
        return Err(Diagnostic::error("E0801", "no docs site in target/")
            .hint("run `sluice docs generate` first")
            .into());
    }
    let quiet = ui.quiet;
    crate::docs_site::serve(&dir, host, port, |addr| {
        if !quiet {
            eprintln!("Serving docs at http://{addr}/ (Ctrl-C to stop)");
        }
        println!("http://{addr}/");
    })
    .map_err(|e| Failure::Internal(e.into()))?;
    Ok(0)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn has_relation(n: &Node) -> bool {
    matches!(
        n.resource_type,
        ResourceType::Model | ResourceType::Seed | ResourceType::Source | ResourceType::Snapshot
    ) && n.materialized() != "ephemeral"
}

fn empty(c: &Compiled) -> Value {
    json!({"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json", "generated_at": now(), "project_name": c.project.name()}, "nodes": {}, "sources": {}, "errors": null})
}

/// dbt's catalog.json: columns and types of every relation, from information_schema.
fn read_catalog(c: &Compiled, target: &warehouse::TargetConfig) -> Result<Value, String> {
    let w = warehouse::open(target, &c.project.root).map_err(|e| e.to_string())?;
    let mut conn = w.connect().map_err(|e| e.to_string())?;
    let schemas: std::collections::BTreeSet<String> = c
        .nodes()
        .values()
        .filter(|n| has_relation(n))
        .map(|n| n.schema.to_lowercase())
        .collect();
    let list = schemas
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    if list.is_empty() {
        return Ok(empty(c));
    }
    let rows = conn
        .query(&format!(
            "select lower(table_schema), lower(table_name), column_name, data_type, ordinal_position from information_schema.columns where lower(table_schema) in ({list}) order by 1, 2, 5"
        ))
        .map_err(|e| e.to_string())?;
    let mut by_relation: HashMap<(String, String), Map<String, Value>> = HashMap::new();
    for r in rows.rows {
        let s = |i: usize| {
            r.get(i)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let index = r.get(4).and_then(Value::as_i64).unwrap_or(0);
        by_relation.entry((s(0), s(1))).or_default().insert(
            s(2),
            json!({"type": s(3), "index": index, "name": s(2), "comment": null}),
        );
    }
    let mut nodes = Map::new();
    let mut sources = Map::new();
    for (id, n) in c.nodes() {
        if !has_relation(n) {
            continue;
        }
        let Some(columns) = by_relation.get(&(n.schema.to_lowercase(), n.alias.to_lowercase()))
        else {
            continue;
        };
        let entry = json!({
            "metadata": {"type": if n.materialized() == "view" { "VIEW" } else { "BASE TABLE" }, "schema": n.schema, "name": n.alias, "database": n.database, "comment": null, "owner": null},
            "columns": columns,
            "stats": {},
            "unique_id": id,
        });
        if n.resource_type == ResourceType::Source {
            sources.insert(id.clone(), entry);
        } else {
            nodes.insert(id.clone(), entry);
        }
    }
    Ok(json!({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json", "generated_at": now(), "project_name": c.project.name()},
        "nodes": nodes, "sources": sources, "errors": null,
    }))
}

/// Column lineage of every model, keyed by unique id, upstream columns named
/// by the node that owns the relation.
pub fn lineage_json(c: &Compiled, catalog: &Value) -> Value {
    let engine: Engine = c.renderer.settings.engine;
    // relation name as sqlparser reports it (lower-case, unquoted) -> unique id
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    for (id, n) in c.nodes() {
        if !has_relation(n) {
            continue;
        }
        let short = format!("{}.{}", n.schema, n.alias).to_lowercase();
        let long = match &n.database {
            Some(db) => format!("{db}.{short}").to_lowercase(),
            None => short.clone(),
        };
        let cols: Option<Vec<String>> = ["nodes", "sources"].iter().find_map(|k| {
            catalog[k][id]["columns"]
                .as_object()
                .map(|m| m.keys().map(|c| c.to_lowercase()).collect())
        });
        for key in [short, long] {
            owner.insert(key.clone(), id.clone());
            if let Some(cols) = &cols {
                columns.insert(key, cols.clone());
            }
        }
    }
    let lookup = |rel: &str| columns.get(rel).cloned();
    // Every model's SQL is parsed for its lineage: spread the models out.
    let models: Vec<(&String, &str)> = c
        .nodes()
        .iter()
        .filter(|(_, n)| n.resource_type == ResourceType::Model)
        .filter_map(|(id, n)| Some((id, n.compiled_code.as_deref()?)))
        .collect();
    let out: BTreeMap<String, Value> = models
        .par_iter()
        .map(|(id, sql)| {
            let lineage = column_lineage(sql, engine, &lookup);
            let mut cols = Map::new();
            if let Some(err) = &lineage.error {
                cols.insert("*".into(), json!({"untraced": err}));
            }
            for (name, l) in lineage.columns {
                let v = match l {
                    ColumnLineage::Traced(refs) => json!({"upstream": refs.iter().map(|r| json!({
                        "node": owner.get(&r.relation).cloned().unwrap_or_else(|| r.relation.clone()),
                        "column": r.column,
                    })).collect::<Vec<_>>()}),
                    ColumnLineage::Untraced { reason } => json!({"untraced": reason}),
                };
                cols.insert(name, v);
            }
            ((*id).clone(), Value::Object(cols))
        })
        .collect();
    serde_json::to_value(out).unwrap_or(Value::Null)
}
