//! All YAML parsing goes through here (serde_yaml_ng today), so the YAML
//! library can be swapped in one place. Values are converted to JSON values,
//! which is what configs, vars and artifacts carry.

use crate::diagnostics::Diagnostic;

pub type Value = serde_json::Value;

/// `v` written as a YAML document (dbt's `toyaml`), keys in their order
/// unless `sort_keys`.
pub fn to_string(v: &Value, sort_keys: bool) -> Result<String, String> {
    let sorted;
    let v = if sort_keys {
        // serde_json's map without `preserve_order` would sort; with it,
        // re-insert sorted.
        fn sort(v: &Value) -> Value {
            match v {
                Value::Object(m) => {
                    let mut keys: Vec<&String> = m.keys().collect();
                    keys.sort();
                    Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
                }
                Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
                other => other.clone(),
            }
        }
        sorted = sort(v);
        &sorted
    } else {
        v
    };
    serde_yaml_ng::to_string(v).map_err(|e| e.to_string())
}

/// Parse a YAML document into a JSON value. An empty document is `null`.
/// Errors name `file` and the line and column of the problem.
pub fn parse(text: &str, file: &str) -> Result<Value, Diagnostic> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    // Straight into JSON values when no merge key needs resolving; anything
    // the direct path cannot take (tags, odd keys, errors) takes the full one.
    if !text.contains("<<") {
        if let Ok(Strict(v)) = serde_yaml_ng::from_str::<Strict>(text) {
            return Ok(v);
        }
    }
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let loc = e.location();
        let message = e.to_string();
        // serde_yaml appends " at line X column Y"; the frame shows that already.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        Diagnostic::error("E0101", format!("invalid YAML: {message}"))
            .at(file, loc.as_ref().map(|l| l.line()))
            .col(loc.as_ref().map(|l| l.column()))
            .hint("check the indentation and quoting around this line; Jinja in YAML values must be quoted, e.g. \"{{ env_var('X') }}\"")
    })?;
    // `<<: *defaults` merge keys, as PyYAML (and so dbt) resolves them.
    yaml.apply_merge().map_err(|e| {
        Diagnostic::error("E0101", format!("invalid YAML merge key: {e}")).at(file, None)
    })?;
    to_json(yaml).map_err(|m| Diagnostic::error("E0101", m).at(file, None))
}

/// A JSON value read straight from YAML events, refusing what the full path
/// reports (a duplicate key) so that such documents take the full path and
/// get its error.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(serde::de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// Parse YAML into a typed value (for profiles, project config).
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn to_json(v: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    other => return Err(format!("unsupported mapping key: {other:?}")),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => to_json(t.value)?,
    })
}

/// The 1-based line where a YAML entry `name: <name>` (optionally as a list
/// item, optionally quoted) is declared, searching from `after_line`.
pub fn line_of_name(text: &str, name: &str, after_line: usize) -> Option<usize> {
    line_of_key_value(text, "name", name, after_line)
}

/// The 1-based line of `key: value` (value optionally quoted) at or after `after_line`.
pub fn line_of_key_value(text: &str, key: &str, value: &str, after_line: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(after_line.saturating_sub(1))
        .find_map(|(i, line)| {
            let t = line.trim_start().trim_start_matches('-').trim_start();
            let rest = t.strip_prefix(key)?.trim_start().strip_prefix(':')?.trim();
            let rest = rest.split(" #").next().unwrap_or(rest).trim();
            let unquoted = rest.trim_matches(|c| c == '"' || c == '\'');
            (unquoted == value).then_some(i + 1)
        })
}

/// The 1-based line where mapping key `key` first appears (e.g. `+materialized`), at or after `after_line`.
pub fn line_of_key(text: &str, key: &str, after_line: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(after_line.saturating_sub(1))
        .find_map(|(i, line)| {
            let t = line.trim_start().trim_start_matches('-').trim_start();
            let t = t.trim_start_matches(['"', '\'']);
            let rest = t.strip_prefix(key)?;
            let rest = rest.trim_start_matches(['"', '\'']).trim_start();
            rest.starts_with(':').then_some(i + 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = parse("models:\n  - name: a\n   bad: [\n", "models/schema.yml").unwrap_err();
        assert_eq!(err.file.as_deref(), Some("models/schema.yml"));
        assert!(err.line.is_some_and(|l| l >= 2), "{err}");
    }

    #[test]
    fn the_direct_path_reads_what_the_full_path_reads() {
        let text = "version: 2\nmodels:\n  - &m\n    name: a\n    config: {enabled: true, n: 3, f: 1.5, big: 18446744073709551615, z: ~}\n    columns:\n      - name: 'x: y'\n        description: |\n          two\n          lines\n  - *m\n1: one\ntrue: yes\n";
        let direct = parse(text, "f.yml").unwrap();
        let full = to_json(serde_yaml_ng::from_str(text).unwrap()).unwrap();
        assert_eq!(direct, full);
        assert_eq!(
            direct["models"][1]["columns"][0]["description"],
            "two\nlines\n"
        );
        // A tag takes the full path (the direct one refuses it).
        let tagged = parse("a: !custom 5\n", "f.yml").unwrap();
        assert_eq!(tagged["a"], 5);
        // So does a duplicate key, which is an error naming its line.
        let dup = parse("a: 1\nb:\n  c: 2\n  c: 3\n", "f.yml").unwrap_err();
        assert!(dup.message.contains("duplicate"), "{}", dup.message);
        assert_eq!(dup.line, Some(3));
    }

    #[test]
    fn merge_keys_are_resolved_like_pyyaml() {
        let text = "defaults: &d\n  materialized: view\n  tags: [a]\nmodels:\n  - name: m\n    config:\n      <<: *d\n      tags: [b]\n";
        let v = parse(text, "models/schema.yml").unwrap();
        let config = &v["models"][0]["config"];
        assert_eq!(config["materialized"], "view");
        assert_eq!(
            config["tags"],
            serde_json::json!(["b"]),
            "explicit keys win over merged ones"
        );
        assert!(config.get("<<").is_none());
    }

    #[test]
    fn finds_name_lines() {
        let text = "models:\n  - name: a\n  - name: \"b\" # c\n";
        assert_eq!(line_of_name(text, "b", 1), Some(3));
        assert_eq!(line_of_name(text, "zz", 1), None);
        assert_eq!(
            line_of_key("x:\n  +materialized: view\n", "+materialized", 1),
            Some(2)
        );
    }
}
