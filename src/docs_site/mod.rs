//! The lineage docs site: sluice's answer to `dbt docs`.
//!
//! [`render_site`] turns dbt artifacts (manifest, optional catalog, run results
//! and column lineage) into ONE self-contained `index.html`: styles and the viewer
//! script are inlined, the project data is embedded as JSON, and nothing is
//! fetched at view time, so the file works from `file://` as well as from
//! [`serve`]. A Content-Security-Policy forbids every network request and any
//! script but the viewer's own.
//!
//! What keeps big projects fast, unlike dbt's site:
//! * the lineage graph is laid out here, in Rust ([`layout`]), not in the browser;
//! * Markdown is rendered here too ([`markdown`]), safely (raw HTML is escaped);
//! * the viewer draws SVG for small graphs and a canvas above 1,000 nodes, and
//!   builds sidebar lists and search indexes lazily.
//!
//! Pages use hash routing: `#!/overview`, `#!/graph`, `#!/graph/<id>/<depth>`
//! (focused `+node+` view), `#!/<resource_type>/<unique_id>`,
//! `#!/column/<model id>/<column>` (column lineage) and `#!/search/<query>`.

mod data;
mod html;
pub mod layout;
pub mod markdown;
mod serve;

use serde_json::Value;

pub use serve::serve;

/// The artifacts a docs site is generated from.
#[derive(Debug, Clone, Copy)]
pub struct SiteInput<'a> {
    /// dbt `manifest.json`: `nodes`, `sources` (and optional `exposures`) keyed
    /// by unique id, plus `metadata.project_name`.
    pub manifest: &'a Value,
    /// dbt `catalog.json`: warehouse column types per node.
    pub catalog: Option<&'a Value>,
    /// dbt `run_results.json`: last status and timing per node.
    pub run_results: Option<&'a Value>,
    /// Column lineage: `{ model_id: { column: {"upstream": [{node, column}]} | {"untraced": reason} } }`.
    pub lineage: Option<&'a Value>,
    /// Markdown for the overview page (the `__overview__` doc block).
    pub overview_markdown: Option<&'a str>,
}

/// Why a docs site could not be generated or served.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The manifest does not have the expected shape.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// The embedded data could not be serialized.
    #[error("could not serialize the docs data: {0}")]
    Json(#[from] serde_json::Error),
    /// The docs server could not listen on the requested address.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// `host:port` as requested.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other I/O error of the docs server.
    #[error("docs server I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Renders the whole docs site as one self-contained `index.html`.
pub fn render_site(input: &SiteInput<'_>) -> Result<String, DocsError> {
    let data = data::build_site_data(input)?;
    let json = serde_json::to_string(&data)?;
    Ok(html::page(data.project, &json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    /// The embedded JSON, unescaped by parsing.
    fn embedded_data(page: &str) -> Value {
        let start_tag = "<script type=\"application/json\" id=\"sluice-data\">";
        let start = page.find(start_tag).map(|i| i + start_tag.len()).unwrap();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    }

    fn small_manifest() -> Value {
        json!({
            "metadata": {"project_name": "shop"},
            "sources": {
                "source.shop.raw.orders": {
                    "name": "orders", "resource_type": "source", "source_name": "raw",
                    "loader": "sluice", "description": "Raw orders",
                    "columns": {"id": {"name": "id", "description": "pk"}},
                    "freshness": {"warn_after": {"count": 12, "period": "hour"}},
                    "extract": {"plugin": "postgres", "password": "****"}
                }
            },
            "nodes": {
                "model.shop.stg_orders": {
                    "name": "stg_orders", "resource_type": "model",
                    "description": "Evil <script>alert(1)</script> \u{2028} end",
                    "columns": {"ID": {"name": "ID", "description": "the id"}},
                    "config": {"materialized": "view"},
                    "depends_on": {"nodes": ["source.shop.raw.orders"]},
                    "raw_code": "select * from {{ source('raw', 'orders') }} where x < 1",
                    "original_file_path": "models/stg_orders.sql"
                },
                "test.shop.not_null_stg_orders_id.abc": {
                    "name": "not_null_stg_orders_id", "resource_type": "test",
                    "column_name": "id", "test_metadata": {"name": "not_null", "kwargs": {}},
                    "attached_node": "model.shop.stg_orders",
                    "depends_on": {"nodes": ["model.shop.stg_orders"]}
                }
            }
        })
    }

    #[test]
    fn page_is_self_contained_and_embeds_escaped_data() {
        let manifest = small_manifest();
        let catalog = json!({"nodes": {"model.shop.stg_orders": {"columns": {
            "extra": {"name": "extra", "type": "TEXT", "index": 2},
            "id": {"name": "id", "type": "INTEGER", "index": 1}}}}});
        let input = SiteInput {
            manifest: &manifest,
            catalog: Some(&catalog),
            run_results: None,
            lineage: None,
            overview_markdown: Some("# Hi <b>there</b>"),
        };
        let page = render_site(&input).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script>alert(1)"), "raw description leaked");
        assert!(!page.contains('\u{2028}'));
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch(",
            "XMLHttpRequest",
        ] {
            assert!(!page.contains(external), "external reference: {external}");
        }
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the data and viewer scripts"
        );
        let data = embedded_data(&page);
        assert_eq!(data["project"], "shop");
        let model = &data["nodes"][1];
        assert_eq!(model["name"], "stg_orders");
        assert!(model["description"]
            .as_str()
            .unwrap()
            .contains("<script>alert(1)</script>"));
        assert!(!model["description_html"]
            .as_str()
            .unwrap()
            .contains("<script"));
        let columns = model["columns"].as_array().unwrap();
        assert_eq!(columns[0]["name"], "id");
        assert_eq!(columns[0]["type"], "INTEGER");
        assert_eq!(columns[0]["description"], "the id");
        assert_eq!(columns[0]["tests"], json!([2]));
        assert_eq!(columns[1]["name"], "extra");
        assert_eq!(model["parents"], json!([0]));
        assert_eq!(data["nodes"][0]["children"], json!([1]));
        assert_eq!(
            data["graph"]["nodes"].as_array().unwrap().len(),
            2,
            "tests are not drawn"
        );
        assert_eq!(data["graph"]["edges"], json!([[0, 1]]));
        assert!(data["overview_html"]
            .as_str()
            .unwrap()
            .contains("&lt;b&gt;"));
    }

    #[test]
    fn rejects_a_manifest_without_nodes() {
        let manifest = json!({"metadata": {}});
        let input = SiteInput {
            manifest: &manifest,
            catalog: None,
            run_results: None,
            lineage: None,
            overview_markdown: None,
        };
        assert!(matches!(
            render_site(&input),
            Err(DocsError::InvalidManifest(_))
        ));
    }

    /// A synthetic project: `n` models in layers, each with 3 parents and 8 columns.
    fn synthetic_manifest(n: usize) -> Value {
        let mut nodes = serde_json::Map::new();
        for i in 0..n {
            let deps: Vec<String> = if i < 50 {
                Vec::new()
            } else {
                (1..=3)
                    .map(|k| format!("model.big.m{}", (i * 7 + k * 13) % (i - i % 50)))
                    .collect()
            };
            let columns: serde_json::Map<String, Value> = (0..8)
                .map(|c| (format!("col_{c}"), json!({"name": format!("col_{c}"), "description": format!("Column *{c}* of m{i}")})))
                .collect();
            nodes.insert(
                format!("model.big.m{i}"),
                json!({
                    "name": format!("m{i}"), "resource_type": "model",
                    "description": format!("Model **{i}** with a [link](#!/model/model.big.m0)."),
                    "columns": columns, "config": {"materialized": "table", "tags": []},
                    "depends_on": {"nodes": deps}, "tags": ["big"],
                    "raw_code": format!("select {} from {{{{ ref('m0') }}}} where id > {i}", "col_1, col_2, col_3"),
                    "compiled_code": format!("select col_1, col_2, col_3 from main.m0 where id > {i}"),
                    "original_file_path": format!("models/m{i}.sql")
                }),
            );
        }
        json!({"metadata": {"project_name": "big"}, "nodes": nodes, "sources": {}})
    }

    #[test]
    fn renders_5000_models_quickly() {
        let manifest = synthetic_manifest(5_000);
        let input = SiteInput {
            manifest: &manifest,
            catalog: None,
            run_results: None,
            lineage: None,
            overview_markdown: None,
        };
        let start = Instant::now();
        let page = render_site(&input).unwrap();
        let elapsed = start.elapsed();
        println!(
            "render_site: 5000 models ({} edges) -> {} KiB in {elapsed:?}",
            embedded_data(&page)["graph"]["edges"]
                .as_array()
                .map_or(0, Vec::len),
            page.len() / 1024
        );
        assert!(page.contains("model.big.m4999"));
    }
}
