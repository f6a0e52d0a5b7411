//! `sluice source freshness`: for each selected source table with a
//! `loaded_at_field` and a `freshness` policy, how long ago it was last
//! loaded, judged against `warn_after`/`error_after`. Writes
//! target/sources.json in dbt's shape.

use serde_json::{json, Value};

use super::{load, select_ids, Exit, Failure, Ui};
use crate::cli::{GlobalArgs, SelectArgs};
use crate::diagnostics::Diagnostic;
use crate::project::node::{Node, ResourceType};

/// A `warn_after`/`error_after` threshold in seconds.
fn threshold(v: &Value) -> Option<f64> {
    let count = v.get("count")?.as_f64()?;
    let unit = match v.get("period")?.as_str()? {
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86400.0,
        _ => return None,
    };
    Some(count * unit)
}

/// `pass`, `warn` or `error` for a source loaded `age` seconds ago.
pub fn judge(freshness: &Value, age: f64) -> &'static str {
    if freshness
        .get("error_after")
        .and_then(threshold)
        .is_some_and(|t| age > t)
    {
        "error"
    } else if freshness
        .get("warn_after")
        .and_then(threshold)
        .is_some_and(|t| age > t)
    {
        "warn"
    } else {
        "pass"
    }
}

pub fn freshness(g: &GlobalArgs, ui: &Ui, s: &SelectArgs) -> Result<Exit, Failure> {
    let loaded = load(g, ui, "freshness", false)?;
    let c = &loaded.compiled;
    let ids = select_ids(c, s)?;
    let sources: Vec<&Node> = ids
        .iter()
        .filter_map(|id| c.nodes().get(id))
        .filter(|n| n.resource_type == ResourceType::Source)
        .filter(|n| {
            n.source
                .as_ref()
                .is_some_and(|s| s.loaded_at_field.is_some() && s.freshness.is_some())
        })
        .collect();
    if sources.is_empty() {
        ui.info("No selected source has both `loaded_at_field` and `freshness`");
        return Ok(0);
    }
    let w = crate::warehouse::open(&loaded.target.config, &c.project.root)
        .map_err(|e| Diagnostic::error("E0701", e.to_string()))?;
    let mut conn = w
        .connect()
        .map_err(|e| Diagnostic::error("E0701", e.to_string()))?;
    let mut results = Vec::new();
    let mut worst = 0;
    for (i, n) in sources.iter().enumerate() {
        let Some(info) = &n.source else { continue };
        let field = info.loaded_at_field.clone().unwrap_or_default();
        let policy = info.freshness.clone().unwrap_or(Value::Null);
        let filter = policy
            .get("filter")
            .and_then(Value::as_str)
            .map(|f| format!(" where {f}"))
            .unwrap_or_default();
        let relation = n.relation_name.clone().unwrap_or_default();
        let sql = format!(
            "select cast(max({field}) as varchar), cast(current_timestamp as varchar), extract(epoch from (cast(current_timestamp as timestamp) - cast(max({field}) as timestamp))) from {relation}{filter}"
        );
        let started = std::time::Instant::now();
        let (status, row) = match conn.query(&sql) {
            Ok(r) => {
                let row = r.rows.into_iter().next().unwrap_or_default();
                let age = row.get(2).and_then(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                });
                match age {
                    Some(age) => (judge(&policy, age), row),
                    None => ("error", row),
                }
            }
            Err(e) => {
                eprintln!("  source {}.{}: {e}", info.source_name, n.name);
                ("runtime error", Vec::new())
            }
        };
        worst = worst.max(match status {
            "pass" => 0,
            "warn" => 0,
            _ => 1,
        });
        let word = match status {
            "pass" => "PASS",
            "warn" => "WARN",
            _ => "ERROR STALE",
        };
        ui.info(format!(
            "{} of {} {word} freshness of {}.{} [{:.2}s]",
            i + 1,
            sources.len(),
            info.source_name,
            n.name,
            started.elapsed().as_secs_f64()
        ));
        results.push(json!({
            "unique_id": n.unique_id,
            "status": status,
            "max_loaded_at": row.first().cloned().unwrap_or(Value::Null),
            "snapshotted_at": row.get(1).cloned().unwrap_or(Value::Null),
            "max_loaded_at_time_ago_in_s": row.get(2).cloned().unwrap_or(Value::Null),
            "criteria": policy,
            "execution_time": started.elapsed().as_secs_f64(),
        }));
    }
    let doc = json!({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json", "generated_at": chrono::Utc::now().to_rfc3339()},
        "results": results,
        "elapsed_time": 0,
    });
    crate::artifacts::write_json(&c.project.target_dir().join("sources.json"), &doc)?;
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_against_thresholds() {
        let p = json!({"warn_after": {"count": 1, "period": "hour"}, "error_after": {"count": 1, "period": "day"}});
        assert_eq!(judge(&p, 60.0), "pass");
        assert_eq!(judge(&p, 7200.0), "warn");
        assert_eq!(judge(&p, 200000.0), "error");
        assert_eq!(judge(&json!({}), 1e9), "pass");
    }
}
