//! What a Semantic Layer entry (`semantic_models:`, `metrics:`,
//! `saved_queries:`) names, read from its YAML as MetricFlow's spec writes
//! it: measures by name (a string or `{name: …}`), metrics likewise, saved
//! queries' metrics as plain names.

use serde_json::{Map, Value};

use crate::project::node::ResourceType;

use crate::project::schema::items;

/// A reference written as a name or as a mapping with a `name`.
pub fn name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The measures and metrics an entry names, as `("measure" | "metric",
/// name)` in the order written: a simple or cumulative metric's
/// `measure`, a conversion metric's base and conversion measures, a ratio's
/// numerator and denominator, a derived or cumulative metric's `metrics` /
/// `metric`, a saved query's `query_params.metrics`.
pub fn names(kind: ResourceType, m: &Map<String, Value>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match kind {
        ResourceType::Metric => {
            let Some(params) = m.get("type_params").and_then(Value::as_object) else {
                return out;
            };
            let mut add = |what: &'static str, v: Option<&Value>| {
                if let Some(n) = v.and_then(name) {
                    out.push((what, n));
                }
            };
            add("measure", params.get("measure"));
            if let Some(c) = params
                .get("conversion_type_params")
                .and_then(Value::as_object)
            {
                add("measure", c.get("base_measure"));
                add("measure", c.get("conversion_measure"));
            }
            add("metric", params.get("numerator"));
            add("metric", params.get("denominator"));
            add("metric", params.get("metric"));
            for v in items(params, "metrics") {
                add("metric", Some(v));
            }
        }
        ResourceType::SavedQuery => {
            if let Some(q) = m.get("query_params").and_then(Value::as_object) {
                out.extend(items(q, "metrics").filter_map(name).map(|n| ("metric", n)));
            }
        }
        _ => {}
    }
    out
}

/// `metric('name')` (either quote) as an exposure's `depends_on` writes it.
pub fn metric_call(text: &str) -> Option<String> {
    let inner = text
        .trim()
        .strip_prefix("metric(")?
        .strip_suffix(')')?
        .trim();
    let unquoted = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    Some(unquoted.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn metrics_name_their_measures_and_metrics() {
        let simple = obj(json!({"type": "simple", "type_params": {"measure": "order_total"}}));
        assert_eq!(
            names(ResourceType::Metric, &simple),
            vec![("measure", "order_total".to_string())]
        );
        let filtered = obj(json!({"type_params": {"measure": {"name": "m", "filter": "x"}}}));
        assert_eq!(
            names(ResourceType::Metric, &filtered),
            vec![("measure", "m".to_string())]
        );
        let ratio = obj(
            json!({"type": "ratio", "type_params": {"numerator": "a", "denominator": {"name": "b"}}}),
        );
        assert_eq!(
            names(ResourceType::Metric, &ratio),
            vec![("metric", "a".to_string()), ("metric", "b".to_string())]
        );
        let derived = obj(
            json!({"type": "derived", "type_params": {"expr": "a - b", "metrics": [{"name": "a", "offset_window": "1 week"}, "b"]}}),
        );
        assert_eq!(
            names(ResourceType::Metric, &derived),
            vec![("metric", "a".to_string()), ("metric", "b".to_string())]
        );
        let conversion = obj(
            json!({"type": "conversion", "type_params": {"conversion_type_params": {"base_measure": "visits", "conversion_measure": {"name": "buys"}, "entity": "user"}}}),
        );
        assert_eq!(
            names(ResourceType::Metric, &conversion),
            vec![
                ("measure", "visits".to_string()),
                ("measure", "buys".to_string())
            ]
        );
        let saved = obj(
            json!({"query_params": {"metrics": ["a", "b"], "group_by": ["TimeDimension('x', 'day')"]}}),
        );
        assert_eq!(
            names(ResourceType::SavedQuery, &saved),
            vec![("metric", "a".to_string()), ("metric", "b".to_string())]
        );
        assert!(names(ResourceType::SemanticModel, &simple).is_empty());
    }

    #[test]
    fn metric_calls_in_exposures() {
        assert_eq!(metric_call("metric('revenue')"), Some("revenue".into()));
        assert_eq!(metric_call(" metric(\"revenue\") "), Some("revenue".into()));
        assert_eq!(metric_call("ref('revenue')"), None);
        assert_eq!(metric_call("metric(revenue)"), None);
    }
}
