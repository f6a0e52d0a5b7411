//! Schema YAML (`models:`, `sources:`, `seeds:` … under model paths): the
//! properties that patch models and seeds, the source tables they declare,
//! and the generic data tests attached to columns and resources.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::project::config::{merge_config_value, string_list, unknown_config_key};
use crate::project::files::SourceFile;
use crate::project::node::{
    ColumnDef, Config, ExposureInfo, UnitTestInput, UnitTestRows, UnitTestSpec,
};
use crate::project::yaml;

/// Properties declared for a model, seed or snapshot by name.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub name: String,
    pub file: String,
    /// The file's path under its resource root (for a YAML-defined node's fqn).
    pub rel: String,
    /// A snapshot defined in YAML (dbt 1.9): what it selects from,
    /// e.g. `source('shop', 'orders')`.
    pub relation: Option<String>,
    pub line: usize,
    pub description: String,
    pub columns: IndexMap<String, ColumnDef>,
    pub config: Config,
    pub meta: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    pub tests: Vec<TestSpec>,
    /// A model's `latest_version`, as written.
    pub latest_version: Option<String>,
    /// A versioned model's versions, each a complete patch of its own
    /// (columns included or excluded, config merged, tests).
    pub versions: Vec<Patch>,
    /// For one of `versions`: its `v` and the file stem defining it.
    pub version: Option<String>,
    pub defined_in: Option<String>,
    /// A model's model-level contract constraints.
    pub constraints: Vec<Value>,
    /// A model's `time_spine:` (MetricFlow's time spine), as written.
    pub time_spine: Option<Value>,
}

/// One source table as declared.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    pub source_name: String,
    pub table_name: String,
    pub file: String,
    pub line: usize,
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
    pub description: String,
    pub source_description: String,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Option<Value>,
    pub meta: BTreeMap<String, Value>,
    pub source_meta: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    pub config: Config,
    pub columns: IndexMap<String, ColumnDef>,
    pub tests: Vec<TestSpec>,
    pub extract: Option<Value>,
}

/// A generic test as written under `data_tests:`/`tests:`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSpec {
    /// The generic test's name, possibly namespaced (`dbt_utils.unique_combination_of_columns`).
    pub test_name: String,
    /// A user-chosen node name (`name:`), if any.
    pub custom_name: Option<String>,
    pub column_name: Option<String>,
    pub kwargs: Map<String, Value>,
    pub config: Config,
    pub description: String,
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct SchemaFiles {
    pub models: Vec<Patch>,
    pub seeds: Vec<Patch>,
    pub snapshots: Vec<Patch>,
    pub analyses: Vec<Patch>,
    pub sources: Vec<SourceTable>,
    pub unit_tests: Vec<UnitTestDecl>,
    pub exposures: Vec<ExposureDecl>,
    /// `semantic_models:`, `metrics:` and `saved_queries:` entries.
    pub semantic: Vec<SemanticDecl>,
    pub groups: Vec<GroupDecl>,
}

/// A `semantic_models:`, `metrics:` or `saved_queries:` entry as declared.
#[derive(Debug, Clone)]
pub struct SemanticDecl {
    pub kind: crate::project::node::ResourceType,
    pub name: String,
    pub file: String,
    pub rel: String,
    pub line: usize,
    pub description: String,
    pub config: Config,
    pub meta: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    /// The whole entry, for the manifest and for finding what it names.
    pub properties: Map<String, Value>,
}

/// A `groups:` entry: a name and an owner that models join with `group:`.
#[derive(Debug, Clone, Default)]
pub struct GroupDecl {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub owner: Value,
    pub description: Option<String>,
    pub config: Config,
}

/// An `exposures:` entry as declared.
#[derive(Debug, Clone, Default)]
pub struct ExposureDecl {
    pub name: String,
    pub file: String,
    pub rel: String,
    pub line: usize,
    pub description: String,
    pub config: Config,
    pub meta: BTreeMap<String, Value>,
    pub tags: Vec<String>,
    /// `ref('x')`, `source('s', 't')`, … as written.
    pub depends_on: Vec<String>,
    pub info: ExposureInfo,
}

/// A `unit_tests:` entry as declared.
#[derive(Debug, Clone, Default)]
pub struct UnitTestDecl {
    pub name: String,
    pub file: String,
    /// The file's path under its resource root (for the test's fqn).
    pub rel: String,
    pub line: usize,
    pub description: String,
    pub config: Config,
    pub spec: UnitTestSpec,
}

/// Config keys that may be written inline on a test (legacy style) rather
/// than under `config:`.
const TEST_CONFIG_KEYS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// Every schema file, parsed in parallel and merged in file order.
pub fn parse_all(files: &[SourceFile]) -> (SchemaFiles, Diagnostics) {
    let parsed: Vec<(SchemaFiles, Diagnostics)> = files
        .par_iter()
        .map(|f| {
            let mut out = SchemaFiles::default();
            let mut diags = Diagnostics::default();
            match yaml::parse(&f.text, &f.path) {
                Ok(doc) => parse_one(f, &doc, &mut out, &mut diags),
                Err(d) => diags.push(d),
            }
            (out, diags)
        })
        .collect();
    let mut out = SchemaFiles::default();
    let mut diags = Diagnostics::default();
    for (one, d) in parsed {
        out.models.extend(one.models);
        out.seeds.extend(one.seeds);
        out.snapshots.extend(one.snapshots);
        out.analyses.extend(one.analyses);
        out.sources.extend(one.sources);
        out.unit_tests.extend(one.unit_tests);
        out.exposures.extend(one.exposures);
        out.semantic.extend(one.semantic);
        out.groups.extend(one.groups);
        diags.extend(d);
    }
    (out, diags)
}

fn parse_one(f: &SourceFile, doc: &Value, out: &mut SchemaFiles, diags: &mut Diagnostics) {
    let Some(map) = doc.as_object() else { return };
    for (key, target) in [
        ("models", 0),
        ("seeds", 1),
        ("snapshots", 2),
        ("analyses", 3),
    ] {
        let mut cursor = f.line_of_key(key, 1, usize::MAX).unwrap_or(1);
        for entry in items(map, key) {
            if let Some(p) = parse_patch(f, entry, cursor, diags) {
                // Entries come in file order: the next one is below this one.
                cursor = p.line;
                match target {
                    0 => out.models.push(p),
                    1 => out.seeds.push(p),
                    2 => out.snapshots.push(p),
                    _ => out.analyses.push(p),
                }
            }
        }
    }
    out.unit_tests = entries(f, map, "unit_tests", diags, parse_unit_test, |t| t.line);
    out.exposures = entries(f, map, "exposures", diags, parse_exposure, |e| e.line);
    {
        use crate::project::node::ResourceType as R;
        for (key, kind) in [
            ("semantic_models", R::SemanticModel),
            ("metrics", R::Metric),
            ("saved_queries", R::SavedQuery),
        ] {
            let parse = |f: &SourceFile, e: &Value, after: usize, d: &mut Diagnostics| {
                semantic_decl(kind, f, e, after, d)
            };
            out.semantic
                .extend(entries(f, map, key, diags, parse, |e| e.line));
        }
    }
    out.groups = entries(f, map, "groups", diags, parse_group, |g| g.line);
    for source in items(map, "sources") {
        parse_source(f, source, &mut out.sources, diags);
    }
}

/// Every entry of the top-level list `key`, each parsed by `parse` with the
/// line the previous one was declared on to search from.
fn entries<T>(
    f: &SourceFile,
    map: &Map<String, Value>,
    key: &str,
    diags: &mut Diagnostics,
    parse: impl Fn(&SourceFile, &Value, usize, &mut Diagnostics) -> Option<T>,
    line_of: fn(&T) -> usize,
) -> Vec<T> {
    let mut cursor = f.line_of_key(key, 1, usize::MAX).unwrap_or(1);
    let mut out = Vec::new();
    for entry in items(map, key) {
        if let Some(t) = parse(f, entry, cursor, diags) {
            cursor = line_of(&t);
            out.push(t);
        }
    }
    out
}

/// The entries of list `key` of `m` (none when absent or not a list).
pub(crate) fn items<'m>(m: &'m Map<String, Value>, key: &str) -> impl Iterator<Item = &'m Value> {
    m.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn str_of(m: &Map<String, Value>, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn obj_of(m: &Map<String, Value>, key: &str) -> BTreeMap<String, Value> {
    m.get(key)
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn config_of(
    f: &SourceFile,
    m: &Map<String, Value>,
    line: usize,
    diags: &mut Diagnostics,
) -> Config {
    let mut config = Config::new();
    if let Some(c) = m.get("config").and_then(Value::as_object) {
        for (k, v) in c {
            if let Some(d) = unknown_config_key(k, &f.path, f.line_of_key(k, line, 400)) {
                diags.push(d);
            }
            merge_config_value(&mut config, k, v.clone());
        }
    }
    config
}

/// A model's `deprecation_date` as dbt writes it: a datetime with an
/// offset (a date is its midnight, a time without an offset is UTC here).
fn deprecation_date(v: &Value) -> Option<Value> {
    let t = v.as_str()?.trim();
    let out = if t.len() == 10 {
        format!("{t}T00:00:00+00:00")
    } else {
        let t = t.replacen(' ', "T", 1);
        let has_offset = t.ends_with('Z')
            || t.get(19..)
                .is_some_and(|rest| rest.contains('+') || rest.contains('-'));
        match (has_offset, t.strip_suffix('Z')) {
            (true, Some(utc)) => format!("{utc}+00:00"),
            (true, None) => t,
            (false, _) => format!("{t}+00:00"),
        }
    };
    Some(Value::String(out))
}

/// A constraint with the keys dbt's constraint classes always carry
/// (`name`, `expression`, `warn_unenforced`, `warn_unsupported`, `to`,
/// `to_columns`, and a model-level one's `columns`), as the manifest and
/// `graph` show them.
fn with_constraint_defaults(c: &Value, model_level: bool) -> Value {
    let Some(m) = c.as_object() else {
        return c.clone();
    };
    let mut out = m.clone();
    let defaults = [
        ("name", Value::Null),
        ("expression", Value::Null),
        ("warn_unenforced", Value::Bool(true)),
        ("warn_unsupported", Value::Bool(true)),
        ("to", Value::Null),
        ("to_columns", Value::Array(Vec::new())),
    ];
    for (k, v) in defaults {
        out.entry(k).or_insert(v);
    }
    if model_level {
        out.entry("columns").or_insert(Value::Array(Vec::new()));
    }
    Value::Object(out)
}

/// An entry's `name` and the line it is declared on (searched from
/// `after_line`, as entries come in file order).
fn name_and_line(f: &SourceFile, m: &Map<String, Value>, after_line: usize) -> (String, usize) {
    let name = str_of(m, "name");
    let line = f
        .line_of_name(&name, after_line)
        .or_else(|| f.line_of_name(&name, 1))
        .unwrap_or(after_line);
    (name, line)
}

fn parse_patch(
    f: &SourceFile,
    entry: &Value,
    after_line: usize,
    diags: &mut Diagnostics,
) -> Option<Patch> {
    let m = entry.as_object()?;
    let name = str_of(m, "name");
    if name.is_empty() {
        diags.push(
            Diagnostic::error("E0106", "a YAML entry has no `name`").at(f.path.clone(), None),
        );
        return None;
    }
    let line = f
        .line_of_name(&name, after_line)
        .or_else(|| f.line_of_name(&name, 1))
        .unwrap_or(1);
    let mut patch = Patch {
        file: f.path.clone(),
        rel: f.rel.clone(),
        relation: m
            .get("relation")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        line,
        description: str_of(m, "description"),
        config: config_of(f, m, line, diags),
        meta: obj_of(m, "meta"),
        tags: m.get("tags").map(string_list).unwrap_or_default(),
        constraints: items(m, "constraints")
            .map(|c| with_constraint_defaults(c, true))
            .collect(),
        time_spine: m.get("time_spine").filter(|v| !v.is_null()).cloned(),
        ..Patch::default()
    };
    if let Some(d) = m.get("deprecation_date").and_then(deprecation_date) {
        patch.config.insert("deprecation_date".into(), d);
    }
    // `access:` and `group:` written as properties rather than configs.
    for key in ["access", "group"] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
            patch
                .config
                .entry(key.to_string())
                .or_insert_with(|| v.clone());
        }
    }
    let (columns, tests) = parse_columns(f, m, line, diags);
    patch.columns = columns;
    patch.tests = tests;
    patch.tests.extend(parse_tests(f, m, None, line, diags));
    patch.name = name;
    patch.latest_version = m.get("latest_version").map(version_text);
    for v in items(m, "versions") {
        if let Some(version) = parse_version(f, &patch, v, diags) {
            patch.versions.push(version);
        }
    }
    Some(patch)
}

/// A version number as dbt prints it (`2`, `1.5`, `"beta"`).
fn version_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One entry of a model's `versions:`: the model's properties, its columns
/// narrowed by `include`/`exclude` and extended by the version's own, its
/// config merged with the version's.
fn parse_version(
    f: &SourceFile,
    base: &Patch,
    entry: &Value,
    diags: &mut Diagnostics,
) -> Option<Patch> {
    let m = entry.as_object()?;
    let Some(v) = m.get("v").map(version_text) else {
        diags.push(
            Diagnostic::error(
                "E0106",
                format!("a version of model `{}` has no `v`", base.name),
            )
            .at(f.path.clone(), Some(base.line))
            .hint("write each version as `- v: 1`"),
        );
        return None;
    };
    let line = f
        .line_of_key("v", base.line, usize::MAX)
        .unwrap_or(base.line);
    let mut include: Option<Vec<String>> = None;
    let mut exclude: Vec<String> = Vec::new();
    for c in items(m, "columns") {
        if let Some(i) = c.get("include") {
            include = match i {
                Value::String(all) if all == "all" || all == "*" => None,
                other => Some(string_list(other)),
            };
            exclude = c.get("exclude").map(string_list).unwrap_or_default();
        }
    }
    let kept = |name: &str| {
        include.as_ref().is_none_or(|i| i.iter().any(|c| c == name))
            && !exclude.iter().any(|c| c == name)
    };
    let (own_columns, own_tests) = parse_columns(f, m, line, diags);
    let mut version = Patch {
        name: base.name.clone(),
        file: base.file.clone(),
        rel: base.rel.clone(),
        line,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .map_or_else(|| base.description.clone(), str::to_string),
        meta: base.meta.clone(),
        tags: base.tags.clone(),
        config: base.config.clone(),
        version: Some(v),
        defined_in: m
            .get("defined_in")
            .and_then(Value::as_str)
            .map(str::to_string),
        latest_version: base.latest_version.clone(),
        constraints: match m.get("constraints") {
            Some(_) => items(m, "constraints")
                .map(|c| with_constraint_defaults(c, true))
                .collect(),
            None => base.constraints.clone(),
        },
        ..Patch::default()
    };
    for (k, val) in config_of(f, m, line, diags) {
        version.config.insert(k, val);
    }
    if let Some(d) = m.get("deprecation_date").and_then(deprecation_date) {
        version.config.insert("deprecation_date".into(), d);
    }
    version.columns = base
        .columns
        .iter()
        .filter(|(name, _)| kept(name))
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect();
    version.tests = base
        .tests
        .iter()
        .filter(|t| t.column_name.as_deref().is_none_or(kept))
        .filter(|t| {
            // A column the version redefines brings its own tests.
            t.column_name
                .as_deref()
                .is_none_or(|c| !own_columns.contains_key(c))
        })
        .cloned()
        .collect();
    version.columns.extend(own_columns);
    version.tests.extend(own_tests);
    version.tests.extend(parse_tests(f, m, None, line, diags));
    Some(version)
}

/// One `exposures:` entry: `name`, `type`, `owner`, `depends_on`, and
/// optional `label`, `maturity`, `url`, `description`, `meta`, `tags`,
/// `config`.
fn parse_exposure(
    f: &SourceFile,
    entry: &Value,
    after_line: usize,
    diags: &mut Diagnostics,
) -> Option<ExposureDecl> {
    let m = entry.as_object()?;
    let (name, line) = name_and_line(f, m, after_line);
    if name.is_empty() {
        diags.push(
            Diagnostic::error("E0106", "an exposure has no `name`").at(f.path.clone(), Some(line)),
        );
        return None;
    }
    let kind = str_of(m, "type");
    const KINDS: [&str; 5] = ["dashboard", "notebook", "analysis", "ml", "application"];
    if !KINDS.contains(&kind.as_str()) {
        diags.push(
            Diagnostic::error("E0117", format!("exposure `{name}` has type `{kind}`"))
                .at(f.path.clone(), Some(line))
                .hint(format!("use one of {}", KINDS.join(", "))),
        );
        return None;
    }
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ExposureDecl {
        file: f.path.clone(),
        rel: f.rel.clone(),
        line,
        description: str_of(m, "description"),
        config: config_of(f, m, line, diags),
        meta: obj_of(m, "meta"),
        tags: m.get("tags").map(string_list).unwrap_or_default(),
        depends_on: m.get("depends_on").map(string_list).unwrap_or_default(),
        info: ExposureInfo {
            kind,
            owner: m.get("owner").cloned().unwrap_or(Value::Null),
            label: text("label"),
            maturity: text("maturity"),
            url: text("url"),
        },
        name,
    })
}

/// A Semantic Layer entry: a `name`, and the rest kept as declared (its
/// `config:` merged as any resource's; the keys are MetricFlow's).
fn semantic_decl(
    kind: crate::project::node::ResourceType,
    f: &SourceFile,
    entry: &Value,
    after_line: usize,
    diags: &mut Diagnostics,
) -> Option<SemanticDecl> {
    let m = entry.as_object()?;
    let (name, line) = name_and_line(f, m, after_line);
    if name.is_empty() {
        diags.push(
            Diagnostic::error("E0106", format!("a {} has no `name`", kind.as_str()))
                .at(f.path.clone(), Some(line)),
        );
        return None;
    }
    let mut config = Config::new();
    if let Some(c) = m.get("config").and_then(Value::as_object) {
        for (k, v) in c {
            merge_config_value(&mut config, k, v.clone());
        }
    }
    Some(SemanticDecl {
        kind,
        file: f.path.clone(),
        rel: f.rel.clone(),
        line,
        description: str_of(m, "description"),
        config,
        meta: obj_of(m, "meta"),
        tags: m.get("tags").map(string_list).unwrap_or_default(),
        properties: m.clone(),
        name,
    })
}

/// One `groups:` entry: `name` and `owner` (a name or an email at least).
fn parse_group(
    f: &SourceFile,
    entry: &Value,
    after_line: usize,
    diags: &mut Diagnostics,
) -> Option<GroupDecl> {
    let m = entry.as_object()?;
    let (name, line) = name_and_line(f, m, after_line);
    let owner = m.get("owner").cloned().unwrap_or(Value::Null);
    let named = owner
        .as_object()
        .is_some_and(|o| o.contains_key("name") || o.contains_key("email"));
    if name.is_empty() || !named {
        diags.push(
            Diagnostic::error(
                "E0106",
                format!("group `{name}` needs a `name` and an `owner` with a `name` or an `email`"),
            )
            .at(f.path.clone(), Some(line))
            .hint("groups:\n  - name: finance\n    owner:\n      email: finance@example.com"),
        );
        return None;
    }
    Some(GroupDecl {
        file: f.path.clone(),
        line,
        owner,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        config: config_of(f, m, line, diags),
        name,
    })
}

/// One `unit_tests:` entry: `name`, `model`, `given` inputs, `expect`,
/// optional `overrides`, `config` and `description`.
fn parse_unit_test(
    f: &SourceFile,
    entry: &Value,
    after_line: usize,
    diags: &mut Diagnostics,
) -> Option<UnitTestDecl> {
    let m = entry.as_object()?;
    let (name, line) = name_and_line(f, m, after_line);
    let fail = |diags: &mut Diagnostics, msg: String, hint: &str| {
        diags.push(
            Diagnostic::error("E0115", msg)
                .at(f.path.clone(), Some(line))
                .hint(hint.to_string()),
        );
    };
    if name.is_empty() {
        fail(
            diags,
            "a unit test has no `name`".into(),
            "give every entry under unit_tests: a name",
        );
        return None;
    }
    let model = str_of(m, "model");
    if model.is_empty() {
        fail(
            diags,
            format!("unit test `{name}` has no `model`"),
            "name the model it tests: `model: <model name>`",
        );
        return None;
    }
    let rows_of = |v: &Map<String, Value>, what: &str, diags: &mut Diagnostics| {
        let format = v
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("dict")
            .to_ascii_lowercase();
        if !matches!(format.as_str(), "dict" | "csv" | "sql") {
            fail(
                diags,
                format!("unit test `{name}`: {what} has format `{format}`"),
                "use format: dict, csv or sql",
            );
            return None;
        }
        let rows = v.get("rows").filter(|r| !r.is_null()).cloned();
        let fixture = v.get("fixture").and_then(Value::as_str).map(str::to_string);
        if rows.is_none() && fixture.is_none() && format == "sql" {
            fail(
                diags,
                format!("unit test `{name}`: {what} has neither `rows` nor `fixture`"),
                "give the rows inline or name a fixture file",
            );
            return None;
        }
        Some(UnitTestRows {
            format,
            rows,
            fixture,
        })
    };
    let mut given = Vec::new();
    for g in items(m, "given") {
        let Some(gm) = g.as_object() else { continue };
        let input = str_of(gm, "input");
        if input.is_empty() {
            fail(
                diags,
                format!("unit test `{name}`: a given entry has no `input`"),
                "write `input: ref('model')` or `input: source('source', 'table')`",
            );
            return None;
        }
        let rows = rows_of(gm, &format!("input {input}"), diags)?;
        given.push(UnitTestInput { input, rows });
    }
    let Some(expect) = m.get("expect").and_then(Value::as_object) else {
        fail(
            diags,
            format!("unit test `{name}` has no `expect`"),
            "list the rows the model must produce under `expect: rows:`",
        );
        return None;
    };
    let expect = rows_of(expect, "expect", diags)?;
    Some(UnitTestDecl {
        file: f.path.clone(),
        rel: f.rel.clone(),
        line,
        description: str_of(m, "description"),
        config: config_of(f, m, line, diags),
        spec: UnitTestSpec {
            model,
            given,
            expect,
            overrides: obj_of(m, "overrides"),
        },
        name,
    })
}

fn parse_columns(
    f: &SourceFile,
    m: &Map<String, Value>,
    line: usize,
    diags: &mut Diagnostics,
) -> (IndexMap<String, ColumnDef>, Vec<TestSpec>) {
    let mut columns = IndexMap::new();
    let mut tests = Vec::new();
    for c in items(m, "columns") {
        let Some(cm) = c.as_object() else { continue };
        let name = str_of(cm, "name");
        if name.is_empty() {
            continue;
        }
        let col_line = f.line_of_name(&name, line).unwrap_or(line);
        let col = ColumnDef {
            name: name.clone(),
            description: str_of(cm, "description"),
            meta: obj_of(cm, "meta"),
            data_type: cm
                .get("data_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            tags: cm.get("tags").map(string_list).unwrap_or_default(),
            constraints: items(cm, "constraints")
                .map(|c| with_constraint_defaults(c, false))
                .collect(),
            quote: cm.get("quote").and_then(Value::as_bool),
        };
        tests.extend(parse_tests(f, cm, Some(&name), col_line, diags));
        columns.insert(name, col);
    }
    (columns, tests)
}

/// The `data_tests:` (or legacy `tests:`) list of a resource or column.
fn parse_tests(
    f: &SourceFile,
    m: &Map<String, Value>,
    column: Option<&str>,
    line: usize,
    diags: &mut Diagnostics,
) -> Vec<TestSpec> {
    let mut out = Vec::new();
    let list = m.get("data_tests").or_else(|| m.get("tests"));
    for t in list.and_then(Value::as_array).into_iter().flatten() {
        match parse_test(f, t, column, line) {
            Ok(spec) => out.push(spec),
            Err(d) => diags.push(d),
        }
    }
    out
}

fn parse_test(
    f: &SourceFile,
    t: &Value,
    column: Option<&str>,
    line: usize,
) -> Result<TestSpec, Diagnostic> {
    let (test_name, body) = match t {
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(o) if o.len() == 1 => {
            let (k, v) = o
                .iter()
                .next()
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap_or_default();
            (k, v.as_object().cloned().unwrap_or_default())
        }
        Value::Object(o) => {
            // Long form: `- name: my_test\n  test_name: unique\n  …`
            let name = o
                .get("test_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (name, o.clone())
        }
        _ => (String::new(), Map::new()),
    };
    let test_line = f
        .line_of_key(&test_name, line, 400)
        .or_else(|| f.line_of_item(&test_name, line, 400))
        .unwrap_or(line);
    if test_name.is_empty() {
        return Err(Diagnostic::error("E0107", "a data test entry has no test name")
            .at(f.path.clone(), Some(line))
            .hint("write tests as `- unique`, `- not_null` or `- accepted_values: {values: [a, b]}`"));
    }
    let mut config = Config::new();
    let mut kwargs = Map::new();
    let mut custom_name = None;
    let mut description = String::new();
    for (k, v) in body {
        match k.as_str() {
            "config" => {
                for (ck, cv) in v.as_object().cloned().unwrap_or_default() {
                    merge_config_value(&mut config, &ck, cv);
                }
            }
            "arguments" => {
                for (ak, av) in v.as_object().cloned().unwrap_or_default() {
                    kwargs.insert(ak, av);
                }
            }
            "name" => custom_name = v.as_str().map(str::to_string),
            "test_name" => {}
            "description" => description = v.as_str().unwrap_or_default().to_string(),
            k if TEST_CONFIG_KEYS.contains(&k) => merge_config_value(&mut config, k, v),
            _ => {
                kwargs.insert(k, v);
            }
        }
    }
    Ok(TestSpec {
        test_name,
        custom_name,
        column_name: column.map(str::to_string),
        kwargs,
        config,
        description,
        file: f.path.clone(),
        line: test_line,
    })
}

fn parse_source(
    f: &SourceFile,
    source: &Value,
    out: &mut Vec<SourceTable>,
    diags: &mut Diagnostics,
) {
    let Some(sm) = source.as_object() else { return };
    let source_name = str_of(sm, "name");
    if source_name.is_empty() {
        diags.push(Diagnostic::error("E0106", "a source has no `name`").at(f.path.clone(), None));
        return;
    }
    let source_line = f.line_of_name(&source_name, 1).unwrap_or(1);
    let source_config = config_of(f, sm, source_line, diags);
    let schema = sm
        .get("schema")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| source_name.clone());
    let database = sm
        .get("database")
        .and_then(Value::as_str)
        .map(str::to_string);
    let source_freshness = sm
        .get("freshness")
        .cloned()
        .or_else(|| source_config.get("freshness").cloned());
    let source_loaded_at = sm
        .get("loaded_at_field")
        .or_else(|| source_config.get("loaded_at_field"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let source_meta = obj_of(sm, "meta");
    let extract = sm.get("extract").cloned().or_else(|| {
        source_meta
            .get("sluice")
            .and_then(|s| s.get("extract"))
            .cloned()
    });
    let source_tags = sm.get("tags").map(string_list).unwrap_or_default();
    for t in items(sm, "tables") {
        let Some(tm) = t.as_object() else { continue };
        let table_name = str_of(tm, "name");
        if table_name.is_empty() {
            continue;
        }
        let line = f
            .line_of_name(&table_name, source_line)
            .unwrap_or(source_line);
        let table_config = config_of(f, tm, line, diags);
        // The most specific freshness wins (`null` turns it off): the
        // table's `config`, the table's own key, then the source's.
        let freshness = match table_config
            .get("freshness")
            .or_else(|| tm.get("freshness"))
        {
            Some(Value::Null) => None,
            Some(v) => Some(merge_freshness(source_freshness.as_ref(), v)),
            None => source_freshness.clone(),
        };
        let mut config = source_config.clone();
        for (k, v) in table_config {
            merge_config_value(&mut config, &k, v);
        }
        let (columns, mut tests) = parse_columns(f, tm, line, diags);
        tests.extend(parse_tests(f, tm, None, line, diags));
        let mut tags = source_tags.clone();
        tags.extend(tm.get("tags").map(string_list).unwrap_or_default());
        out.push(SourceTable {
            source_name: source_name.clone(),
            identifier: tm
                .get("identifier")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| table_name.clone()),
            table_name,
            file: f.path.clone(),
            line,
            database: database.clone(),
            schema: schema.clone(),
            description: str_of(tm, "description"),
            source_description: str_of(sm, "description"),
            loader: str_of(sm, "loader"),
            loaded_at_field: tm
                .get("loaded_at_field")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| source_loaded_at.clone()),
            freshness,
            meta: obj_of(tm, "meta"),
            source_meta: source_meta.clone(),
            tags,
            config,
            columns,
            tests,
            extract: extract.clone(),
        });
    }
}

/// dbt's `merge_freshness`: a table's thresholds over its source's, key
/// by key (`warn_after`, `error_after`, `filter`).
fn merge_freshness(source: Option<&Value>, table: &Value) -> Value {
    match (source.and_then(Value::as_object), table.as_object()) {
        (Some(base), Some(update)) => {
            let mut merged = base.clone();
            for (k, v) in update {
                merged.insert(k.clone(), v.clone());
            }
            Value::Object(merged)
        }
        _ => table.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new("models/schema.yml".into(), "schema.yml".into(), text.into())
    }

    #[test]
    fn parses_models_columns_and_both_test_styles() {
        let f = file(
            "version: 2\nmodels:\n  - name: orders\n    description: Orders\n    columns:\n      - name: id\n        data_tests:\n          - unique\n          - not_null:\n              config:\n                severity: warn\n      - name: status\n        tests:\n          - accepted_values:\n              values: [a, b]\n              severity: warn\n          - accepted_values:\n              arguments:\n                values: [c]\n",
        );
        let (s, d) = parse_all(&[f]);
        assert!(d.0.is_empty(), "{d}");
        let p = &s.models[0];
        assert_eq!(p.name, "orders");
        assert_eq!(p.line, 3);
        assert_eq!(p.columns.len(), 2);
        assert_eq!(p.tests.len(), 4);
        assert_eq!(p.tests[1].config["severity"], "warn");
        assert_eq!(p.tests[2].kwargs["values"], serde_json::json!(["a", "b"]));
        assert_eq!(p.tests[2].config["severity"], "warn");
        assert_eq!(p.tests[3].kwargs["values"], serde_json::json!(["c"]));
        assert_eq!(p.tests[0].column_name.as_deref(), Some("id"));
    }

    #[test]
    fn sources_default_schema_to_source_name_and_inherit_freshness() {
        let f = file(
            "sources:\n  - name: raw\n    loaded_at_field: _loaded\n    freshness:\n      warn_after: {count: 1, period: hour}\n    tables:\n      - name: tweets\n      - name: users\n        identifier: user_table\n        freshness: null\n",
        );
        let (s, d) = parse_all(&[f]);
        assert!(d.0.is_empty());
        assert_eq!(s.sources.len(), 2);
        assert_eq!(s.sources[0].schema, "raw");
        assert!(s.sources[0].freshness.is_some());
        assert_eq!(s.sources[0].loaded_at_field.as_deref(), Some("_loaded"));
        assert_eq!(s.sources[1].identifier, "user_table");
        assert!(s.sources[1].freshness.is_none());
    }

    #[test]
    fn a_tables_config_freshness_overrides_or_merges_the_sources() {
        let f = file(
            "sources:\n  - name: raw\n    config:\n      freshness:\n        warn_after: {count: 12, period: hour}\n    tables:\n      - name: a\n      - name: off\n        config:\n          freshness: null\n      - name: strict\n        config:\n          freshness:\n            error_after: {count: 1, period: day}\n",
        );
        let (s, d) = parse_all(&[f]);
        assert!(d.0.is_empty(), "{d}");
        let warn = serde_json::json!({"count": 12, "period": "hour"});
        assert_eq!(s.sources[0].freshness.as_ref().unwrap()["warn_after"], warn);
        assert!(s.sources[1].freshness.is_none());
        assert!(s.sources[1].config["freshness"].is_null());
        let strict = s.sources[2].freshness.as_ref().unwrap();
        assert_eq!(strict["warn_after"], warn);
        assert_eq!(strict["error_after"]["period"], "day");
    }

    #[test]
    fn misspelled_config_key_in_yaml_is_reported() {
        let f = file("models:\n  - name: a\n    config:\n      materialzed: table\n");
        let (_, d) = parse_all(&[f]);
        let e = d.errors().next().expect("error");
        assert_eq!(e.line, Some(4));
    }
}
