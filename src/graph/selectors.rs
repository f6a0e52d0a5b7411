//! dbt's `selectors.yml`: named selections for `--selector <name>`, and the
//! one marked `default: true` that commands use when given no selection.
//! Each definition becomes the same [`Spec`] tree `--select`/`--exclude`
//! parse into:
//!
//! * a string: `--select` syntax (`"tag:nightly"`, `"+orders"`);
//! * `{method: tag, value: nightly}` (or the short `{tag: nightly}`), with
//!   `parents`, `parents_depth`, `children`, `children_depth`,
//!   `childrens_parents` as the `+`/`@` operators, `indirect_selection`
//!   for its tests, and `exclude: [...]`;
//! * `union: [...]` and `intersection: [...]`, where one item may be
//!   `exclude: [...]`, subtracted from the rest;
//! * `{method: selector, value: other}`: another selector's definition.

use std::path::Path;

use serde_json::Value;

use super::select::{IndirectSelection, Spec};
use crate::diagnostics::Diagnostic;
use crate::project::yaml;

const FILE: &str = "selectors.yml";

/// The selectors a project defines, in file order.
#[derive(Debug, Default)]
pub struct Selectors {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    definition: Value,
    default: bool,
    line: usize,
}

impl Selectors {
    /// `selectors.yml` in the project directory; none when it is absent.
    pub fn load(root: &Path) -> Result<Selectors, Diagnostic> {
        match std::fs::read_to_string(root.join(FILE)) {
            Ok(text) => Selectors::parse(&text),
            Err(_) => Ok(Selectors::default()),
        }
    }

    pub fn parse(text: &str) -> Result<Selectors, Diagnostic> {
        let doc = yaml::parse(text, FILE)?;
        let mut entries = Vec::new();
        let listed = doc.get("selectors").and_then(Value::as_array);
        for item in listed.into_iter().flatten() {
            let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
            let line = yaml::line_of_name(text, name, 1).unwrap_or(1);
            let error = |message: String| {
                Diagnostic::error("E0403", message)
                    .at(FILE, Some(line))
                    .hint(
                        "each selector has a `name` and a `definition` (see dbt's YAML selectors)",
                    )
            };
            if name.is_empty() {
                return Err(error("a selector has no `name`".into()));
            }
            let Some(definition) = item.get("definition") else {
                return Err(error(format!("selector `{name}` has no `definition`")));
            };
            let default = match item.get("default") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(error(format!(
                        "selector `{name}`: `default` must be true or false, not {other}"
                    )))
                }
            };
            if entries.iter().any(|e: &Entry| e.name == name) {
                return Err(error(format!("selector `{name}` is defined twice")));
            }
            entries.push(Entry {
                name: name.to_string(),
                definition: definition.clone(),
                default,
                line,
            });
        }
        let defaults: Vec<&str> = entries
            .iter()
            .filter(|e| e.default)
            .map(|e| e.name.as_str())
            .collect();
        if defaults.len() > 1 {
            return Err(Diagnostic::error(
                "E0403",
                format!(
                    "more than one selector is `default: true`: {}",
                    defaults.join(", ")
                ),
            )
            .at(FILE, None)
            .hint("keep `default: true` on one selector"));
        }
        Ok(Selectors { entries })
    }

    /// The selector marked `default: true`.
    pub fn default_name(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.default)
            .map(|e| e.name.as_str())
    }

    /// Selector `name`'s selection.
    pub fn spec(&self, name: &str) -> Result<Spec, Diagnostic> {
        self.resolve(name, &mut Vec::new())
    }

    fn resolve(&self, name: &str, seen: &mut Vec<String>) -> Result<Spec, Diagnostic> {
        let Some(entry) = self.entries.iter().find(|e| e.name == name) else {
            let known: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
            let hint = match crate::diagnostics::did_you_mean(name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => format!("no {FILE} selectors are defined"),
                None => format!("selectors in {FILE}: {}", known.join(", ")),
            };
            return Err(
                Diagnostic::error("E0403", format!("no selector named `{name}`")).hint(hint),
            );
        };
        if seen.iter().any(|s| s == name) {
            seen.push(name.to_string());
            return Err(Diagnostic::error(
                "E0403",
                format!(
                    "selectors refer to each other in a cycle: {}",
                    seen.join(" -> ")
                ),
            )
            .at(FILE, Some(entry.line)));
        }
        seen.push(name.to_string());
        let spec = self
            .definition(&entry.definition, seen)
            .map_err(|m| {
                Diagnostic::error("E0403", format!("selector `{name}`: {m}"))
                    .at(FILE, Some(entry.line))
                    .hint("a definition is a selection string, `method`/`value`, `union:` or `intersection:`")
            });
        seen.pop();
        spec
    }

    fn definition(&self, def: &Value, seen: &mut Vec<String>) -> Result<Spec, String> {
        match def {
            Value::String(s) => Spec::cli(std::slice::from_ref(s)).map_err(|e| e.to_string()),
            Value::Object(m) if m.contains_key("union") || m.contains_key("intersection") => {
                let union = m.contains_key("union");
                let key = if union { "union" } else { "intersection" };
                let items = m[key]
                    .as_array()
                    .ok_or_else(|| format!("`{key}` must be a list"))?;
                let mut include = Vec::new();
                let mut exclude = None;
                for item in items {
                    match item.get("exclude") {
                        Some(ex) => {
                            if exclude.is_some() {
                                return Err(format!("only one `exclude` per `{key}`"));
                            }
                            exclude = Some(self.exclusions(ex, seen)?);
                        }
                        None => include.push(self.definition(item, seen)?),
                    }
                }
                let raw = def.to_string();
                let base = if union {
                    Spec::union(include, raw)
                } else {
                    Spec::intersection(include, raw)
                };
                Ok(match exclude {
                    Some(ex) => Spec::difference(base, ex),
                    None => base,
                })
            }
            Value::Object(m) => {
                let only = m.iter().next().filter(|_| m.len() == 1);
                let (method, value) = match (m.get("method"), m.get("value"), only) {
                    (Some(method), Some(value), _) => (scalar(method), scalar(value)),
                    (_, _, Some((k, v))) => (k.clone(), scalar(v)),
                    _ => {
                        return Err(format!(
                            "expected one key or `method` and `value`, got: {}",
                            m.keys().cloned().collect::<Vec<_>>().join(", ")
                        ))
                    }
                };
                let base = if method == "selector" {
                    self.resolve(&value, seen).map_err(|d| d.message)?
                } else {
                    let indirect = match m.get("indirect_selection").and_then(Value::as_str) {
                        Some(mode) => Some(IndirectSelection::parse(mode).ok_or_else(|| {
                            format!("`indirect_selection` must be eager, cautious, buildable or empty, not `{mode}`")
                        })?),
                        None => None,
                    };
                    Spec::criterion(&criterion(&method, &value, m)?, indirect)
                        .map_err(|e| e.to_string())?
                };
                match m.get("exclude") {
                    Some(ex) if m.contains_key("method") => {
                        Ok(Spec::difference(base, self.exclusions(ex, seen)?))
                    }
                    _ => Ok(base),
                }
            }
            other => Err(format!("unexpected definition: {other}")),
        }
    }

    /// An `exclude:` list: the union of its definitions.
    fn exclusions(&self, ex: &Value, seen: &mut Vec<String>) -> Result<Spec, String> {
        let items = ex.as_array().ok_or("`exclude` must be a list")?;
        let parts = items
            .iter()
            .map(|d| self.definition(d, seen))
            .collect::<Result<Vec<_>, _>>()?;
        // Excluding nothing is not worth a warning (and has no text to name).
        Ok(Spec::any_of(parts))
    }
}

/// A method/value definition in `--select` syntax, its operators from
/// `parents`, `children`, `childrens_parents` and their depths.
fn criterion(
    method: &str,
    value: &str,
    m: &serde_json::Map<String, Value>,
) -> Result<String, String> {
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    let depth = |k: &str| -> Result<String, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            Some(other) => Err(format!("`{k}` must be a whole number, not {other}")),
        }
    };
    let mut out = String::new();
    if flag("childrens_parents") {
        out.push('@');
    }
    if flag("parents") {
        out.push_str(&depth("parents_depth")?);
        out.push('+');
    }
    out.push_str(&format!("{method}:{value}"));
    if flag("children") {
        out.push('+');
        out.push_str(&depth("children_depth")?);
    }
    Ok(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_become_selections() {
        let s = Selectors::parse(
            "selectors:\n  - name: nightly\n    default: true\n    definition:\n      union:\n        - method: tag\n          value: nightly\n          parents: true\n          children_depth: 2\n          children: true\n        - 'path:models/marts'\n        - exclude:\n            - tag: slow\n  - name: marts_only\n    definition:\n      intersection:\n        - method: selector\n          value: nightly\n        - config.materialized: table\n",
        )
        .expect("parses");
        assert_eq!(s.default_name(), Some("nightly"));
        let text = format!("{:?}", s.spec("marts_only").expect("spec"));
        for part in [
            "+tag:nightly+2",
            "path:models/marts",
            "tag:slow",
            "config.materialized:table",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let e = s.spec("nighty").expect_err("unknown");
        assert!(e.to_string().contains("did you mean `nightly`"), "{e}");
    }

    #[test]
    fn bad_selectors_are_errors_at_their_line() {
        let e = Selectors::parse("selectors:\n  - name: a\n    definition: tag:x\n  - name: b\n")
            .expect_err("no definition");
        assert!(e.to_string().contains("`b` has no `definition`"), "{e}");
        let s = Selectors::parse(
            "selectors:\n  - name: a\n    definition:\n      method: selector\n      value: b\n  - name: b\n    definition:\n      selector: a\n",
        )
        .expect("parses");
        let e = s.spec("a").expect_err("cycle");
        assert!(e.to_string().contains("a -> b -> a"), "{e}");
        let s = Selectors::parse(
            "selectors:\n  - name: a\n    definition:\n      method: tag\n      value: x\n      parents_depth: two\n      parents: true\n  - name: b\n    definition:\n      method: tag\n      value: x\n      indirect_selection: sometimes\n",
        )
        .expect("parses");
        assert!(s.spec("a").is_err());
        let e = s.spec("b").expect_err("bad mode");
        assert!(e.to_string().contains("not `sometimes`"), "{e}");
    }
}
