//! dbt-duckdb's files as relations: a source whose `external_location`
//! names a file (or a table function reading one), and the `external`
//! materialization, which writes a model to a file and puts a view over it.
//! Pure text in, text out; the materialization's statements run in
//! `materialize`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::project::node::Node;
use crate::project::{py_repr, py_str};

/// Config keys a source has in dbt itself; the others are dbt-duckdb's
/// "extra" config, which it reads beside `meta`.
const SOURCE_CONFIG_KEYS: &[&str] = &[
    "enabled",
    "meta",
    "tags",
    "freshness",
    "event_time",
    "loaded_at_field",
    "loaded_at_query",
    "docs",
    "quoting",
    "database",
    "schema",
];

/// What a DuckDB `source()` renders as when its table or source sets
/// `external_location` (in `meta` or `config`), as dbt-duckdb's
/// `DuckDBRelation.create_from_source`: the template formatted with the
/// source's `name`, `identifier`, `schema`, `database`, `tags` and its meta
/// (Python's `str.format`, or `%` with `formatter: oldstyle`, or
/// `string.Template` with `formatter: template`), single-quoted unless it
/// is a function call or already quoted. `None` for an ordinary table.
pub fn source_location(n: &Node) -> Result<Option<String>, String> {
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    vars.insert("name".into(), Value::from(n.name.clone()));
    vars.insert("identifier".into(), Value::from(n.alias.clone()));
    vars.insert("schema".into(), Value::from(n.schema.clone()));
    vars.insert(
        "database".into(),
        n.database.clone().map_or(Value::Null, Value::from),
    );
    vars.insert(
        "tags".into(),
        Value::from(
            n.tags
                .iter()
                .map(|t| Value::from(t.clone()))
                .collect::<Vec<_>>(),
        ),
    );
    for (k, v) in &n.meta {
        vars.insert(k.clone(), v.clone());
    }
    if let Some(Value::Object(meta)) = n.config.get("meta") {
        for (k, v) in meta {
            vars.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in n.config.iter() {
        if !SOURCE_CONFIG_KEYS.contains(&k.as_str()) && !k.starts_with("__") {
            vars.insert(k.clone(), v.clone());
        }
    }
    let Some(template) = vars.get("external_location") else {
        return Ok(None);
    };
    let template = match template {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let formatter = vars
        .get("formatter")
        .and_then(Value::as_str)
        .unwrap_or("newstyle");
    let location = match formatter {
        "newstyle" => format_newstyle(&template, &vars)?,
        "oldstyle" => format_oldstyle(&template, &vars)?,
        "template" => format_template(&template, &vars)?,
        other => {
            return Err(format!(
                "Formatter {other} not recognized. Must be one of 'newstyle', 'oldstyle', or 'template'."
            ))
        }
    };
    if location.contains('(') || location.starts_with('\'') {
        Ok(Some(location))
    } else {
        Ok(Some(format!("'{location}'")))
    }
}

fn missing(key: &str) -> String {
    format!(
        "`external_location` uses `{key}`, which the source has neither as a field nor in its meta"
    )
}

/// Python's `template.format_map(vars)` for the fields dbt-duckdb users
/// write: `{key}`, `{key!r}`, `{{` and `}}`; a format spec is ignored
/// apart from its presence.
fn format_newstyle(template: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return Err("unclosed `{` in `external_location`".into()),
                    }
                }
                let field = field.split(':').next().unwrap_or_default();
                let (key, repr) = match field.split_once('!') {
                    Some((k, conv)) => (k, conv == "r"),
                    None => (field, false),
                };
                let v = vars.get(key.trim()).ok_or_else(|| missing(key.trim()))?;
                out.push_str(&if repr { py_repr(v) } else { py_str(v) });
            }
            '}' => return Err("single `}` in `external_location` (write `}}`)".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Python's `template % vars`: `%(key)s` and `%%`.
fn format_oldstyle(template: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix('(') else {
            return Err(
                "`external_location` with `formatter: oldstyle` takes `%(name)s` fields".into(),
            );
        };
        let Some(close) = r.find(')') else {
            return Err("unclosed `%(` in `external_location`".into());
        };
        let key = &r[..close];
        let after = &r[close + 1..];
        let conv = after.chars().next().unwrap_or('s');
        let v = vars.get(key).ok_or_else(|| missing(key))?;
        out.push_str(&if conv == 'r' { py_repr(v) } else { py_str(v) });
        rest = &after[conv.len_utf8().min(after.len())..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Python's `string.Template(template).substitute(vars)`: `$key`,
/// `${key}` and `$$`.
fn format_template(template: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (key, after) = if let Some(r) = rest.strip_prefix('{') {
            let close = r.find('}').ok_or("unclosed `${` in `external_location`")?;
            (&r[..close], &r[close + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(
                    "a `$` in `external_location` must start a `$name` (write `$$` for a dollar)"
                        .into(),
                );
            }
            (&rest[..end], &rest[end..])
        };
        let v = vars.get(key).ok_or_else(|| missing(key))?;
        out.push_str(&py_str(v));
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// An `external` model's file: where it is written and how it is read
/// back, from its config as dbt-duckdb's `external` materialization reads
/// it (`location`, `format`, `options`, the legacy `delimiter`, and
/// `parquet_read_options` / `csv_read_options` / `json_read_options`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalModel {
    /// The file (or, partitioned, the directory) written.
    pub location: String,
    /// `parquet`, `csv` or `json`.
    pub format: String,
    /// The `COPY … TO` options: `format parquet, partition_by (a, b)`.
    pub write_options: String,
    /// What the view reads: the file, or a glob over the partitions.
    pub read_location: String,
    /// The reader's options, rendered as `, key=value` pairs.
    pub read_options: String,
}

impl ExternalModel {
    /// `identifier` is the model's relation name; `external_root` the
    /// profile's (`.` by default).
    pub fn from_config(
        config: &crate::project::node::Config,
        identifier: &str,
        external_root: &str,
    ) -> Result<ExternalModel, String> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // The write options, in dbt-duckdb's order: `options`, then the
        // legacy top-level `format` and `delimiter`.
        let mut options: Vec<(String, String)> = match config.get("options") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            Some(_) => return Err("The options argument must be a dictionary".into()),
        };
        let set = |options: &mut Vec<(String, String)>, key: &str, value: String| match options
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some(entry) => entry.1 = value,
            None => options.push((key.to_string(), value)),
        };
        let format_config = config.get("format").filter(|v| !v.is_null()).map(text);
        if let Some(f) = &format_config {
            set(&mut options, "format", f.clone());
        }
        if let Some(d) = config.get("delimiter").filter(|v| !v.is_null()).map(text) {
            set(&mut options, "delimiter", d);
        }
        let get = |options: &[(String, String)], key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let root = external_root.trim_end_matches('/');
        let location = match config.get("location").filter(|v| !v.is_null()) {
            Some(l) => text(l),
            None if get(&options, "partition_by").is_some() => format!("{root}/{identifier}"),
            None => format!(
                "{root}/{identifier}.{}",
                format_config.clone().unwrap_or_else(|| "parquet".into())
            ),
        };
        const FORMATS: [&str; 3] = ["csv", "parquet", "json"];
        let format = match &format_config {
            Some(f) if !FORMATS.contains(&f.as_str()) => {
                return Err(format!(
                    "Invalid format: {f}. Allowed formats are: csv, parquet, json"
                ))
            }
            Some(f) => f.clone(),
            None => {
                let ext = location
                    .rsplit_once('.')
                    .map(|(_, e)| e.to_ascii_lowercase())
                    .unwrap_or_default();
                if FORMATS.contains(&ext.as_str()) {
                    ext
                } else {
                    "parquet".into()
                }
            }
        };
        // `adapter.external_write_options`: the format from the file's
        // extension when not given, a header for CSV, parentheses around
        // several partition columns.
        if get(&options, "format").is_none() {
            let ext = std::path::Path::new(&location)
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase());
            let f = match ext {
                Some(e) if !e.is_empty() => e,
                _ if get(&options, "delimiter").is_some() => "csv".into(),
                _ => "parquet".into(),
            };
            set(&mut options, "format", f);
        }
        if get(&options, "format").as_deref() == Some("csv") && get(&options, "header").is_none() {
            set(&mut options, "header", "1".into());
        }
        if let Some(p) = get(&options, "partition_by") {
            if p.contains(',') && !p.starts_with('(') {
                set(&mut options, "partition_by", format!("({p})"));
            }
        }
        let write_options = options
            .iter()
            .map(|(k, v)| {
                let quoted = ["delimiter", "quote", "escape", "null"]
                    .contains(&k.to_ascii_lowercase().as_str())
                    && !v.starts_with('\'');
                if quoted {
                    format!("{k} '{v}'")
                } else {
                    format!("{k} {v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        // `adapter.external_read_location`: partitioned or per-thread output
        // is read back through a glob.
        let partition_by = get(&options, "partition_by").filter(|p| !p.is_empty());
        let per_thread = get(&options, "per_thread_output")
            .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"));
        let read_location = if partition_by.is_some() || per_thread {
            let mut globs = vec![location.clone(), "*".to_string()];
            if let Some(p) = &partition_by {
                globs.extend(std::iter::repeat_n("*".to_string(), p.split(',').count()));
            }
            format!(
                "{}.{}",
                globs.join("/"),
                get(&options, "format").unwrap_or_else(|| "parquet".into())
            )
        } else {
            location.clone()
        };
        let (read_key, default) = match format.as_str() {
            "json" => (
                "json_read_options",
                serde_json::json!({"auto_detect": true}),
            ),
            "csv" => ("csv_read_options", serde_json::json!({"auto_detect": true})),
            _ => (
                "parquet_read_options",
                serde_json::json!({"union_by_name": false}),
            ),
        };
        let read = config.get(read_key).cloned().unwrap_or(default);
        let read_options = read
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!(", {k}='{s}'"),
                        Value::Bool(b) => format!(", {k}={}", if *b { "True" } else { "False" }),
                        other => format!(", {k}={other}"),
                    })
                    .collect::<String>()
            })
            .unwrap_or_default();
        Ok(ExternalModel {
            location,
            format,
            write_options,
            read_location,
            read_options,
        })
    }

    /// The local directory the file goes into (the location itself when
    /// the output is a directory of partitions or per-thread files); `None`
    /// for a URL (`s3://…`) or the current directory.
    pub fn local_directory(&self) -> Option<&std::path::Path> {
        if self.location.contains("://") {
            return None;
        }
        let location = std::path::Path::new(&self.location);
        let dir = if self.read_location != self.location {
            Some(location)
        } else {
            location.parent()
        };
        dir.filter(|d| !d.as_os_str().is_empty())
    }

    /// The view over the file; `columns` (the model's, when it returned no
    /// rows and a row of NULLs was written so the file has a schema) filter
    /// that row out again.
    pub fn view_select(&self, empty_columns: &[String]) -> String {
        let reader = match self.format.as_str() {
            "json" => "read_json",
            "csv" => "read_csv",
            _ => "read_parquet",
        };
        let mut sql = format!(
            "select * from {reader}('{}'{})",
            self.read_location.replace('\'', "''"),
            self.read_options
        );
        if !empty_columns.is_empty() {
            sql.push_str(" where 1");
            for c in empty_columns {
                sql.push_str(&format!(" AND \"{}\" is not NULL", c.replace('"', "\"\"")));
            }
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(meta: Value, config: Value) -> Node {
        let mut n = Node {
            name: "orders".into(),
            alias: "orders_v2".into(),
            schema: "raw".into(),
            database: Some("dev".into()),
            tags: vec!["daily".into()],
            ..Node::default()
        };
        n.meta = serde_json::from_value(meta).unwrap();
        for (k, v) in config.as_object().unwrap() {
            n.config.insert(k.clone(), v.clone());
        }
        n
    }

    #[test]
    fn plain_paths_are_quoted_and_function_calls_left_alone() {
        let n = source(
            serde_json::json!({"external_location": "data/{schema}/{name}.parquet"}),
            serde_json::json!({}),
        );
        assert_eq!(
            source_location(&n).unwrap().as_deref(),
            Some("'data/raw/orders.parquet'")
        );
        let n = source(
            serde_json::json!({}),
            serde_json::json!({"external_location": "read_csv('s/{identifier}.csv', header = true)"}),
        );
        assert_eq!(
            source_location(&n).unwrap().as_deref(),
            Some("read_csv('s/orders_v2.csv', header = true)")
        );
        assert_eq!(
            source_location(&source(serde_json::json!({}), serde_json::json!({}))).unwrap(),
            None
        );
    }

    #[test]
    fn the_three_formatters_and_their_errors() {
        let n = source(
            serde_json::json!({"external_location": "%(root)s/%(name)s_%%.csv", "formatter": "oldstyle", "root": "s3://b"}),
            serde_json::json!({}),
        );
        assert_eq!(
            source_location(&n).unwrap().as_deref(),
            Some("'s3://b/orders_%.csv'")
        );
        let n = source(
            serde_json::json!({"external_location": "${root}/$name.json", "formatter": "template", "root": "/d"}),
            serde_json::json!({}),
        );
        assert_eq!(
            source_location(&n).unwrap().as_deref(),
            Some("'/d/orders.json'")
        );
        let n = source(
            serde_json::json!({"external_location": "{{x}}/{nope}"}),
            serde_json::json!({}),
        );
        assert!(source_location(&n).unwrap_err().contains("`nope`"));
        let n = source(
            serde_json::json!({"external_location": "x", "formatter": "fancy"}),
            serde_json::json!({}),
        );
        assert!(source_location(&n).unwrap_err().contains("fancy"));
    }

    fn config(v: Value) -> crate::project::node::Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn external_models_locate_and_read_their_files_as_dbt_duckdb() {
        let e = ExternalModel::from_config(&config(serde_json::json!({})), "m", "out/").unwrap();
        assert_eq!(e.location, "out/m.parquet");
        assert_eq!(e.local_directory(), Some(std::path::Path::new("out")));
        assert_eq!(e.write_options, "format parquet");
        assert_eq!(
            e.view_select(&[]),
            "select * from read_parquet('out/m.parquet', union_by_name=False)"
        );

        let e = ExternalModel::from_config(
            &config(serde_json::json!({"location": "x/m.csv", "delimiter": "|"})),
            "m",
            ".",
        )
        .unwrap();
        assert_eq!(
            (e.format.as_str(), e.write_options.as_str()),
            ("csv", "delimiter '|', format csv, header 1")
        );
        assert_eq!(
            e.view_select(&["a".into()]),
            "select * from read_csv('x/m.csv', auto_detect=True) where 1 AND \"a\" is not NULL"
        );

        let e = ExternalModel::from_config(
            &config(serde_json::json!({"options": {"partition_by": "y, m"}})),
            "t",
            ".",
        )
        .unwrap();
        assert_eq!(e.location, "./t");
        assert_eq!(e.write_options, "partition_by (y, m), format parquet");
        assert_eq!(e.read_location, "./t/*/*/*.parquet");
        assert_eq!(e.local_directory(), Some(std::path::Path::new("./t")));

        let err =
            ExternalModel::from_config(&config(serde_json::json!({"format": "xlsx"})), "t", ".");
        assert!(err.unwrap_err().contains("Invalid format: xlsx"));
    }
}
