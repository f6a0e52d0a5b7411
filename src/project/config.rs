//! `dbt_project.yml`: the project's name, paths, vars and config trees, and
//! the rules for resolving a node's config from the tree (folder
//! inheritance, `+key` prefixes, additive tags/meta/hooks).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use crate::project::node::Config;
use crate::project::yaml;

pub const PROJECT_FILE: &str = "dbt_project.yml";

/// Keys dbt accepts at the top level of dbt_project.yml.
const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "version",
    "config-version",
    "profile",
    "model-paths",
    "source-paths",
    "seed-paths",
    "data-paths",
    "macro-paths",
    "test-paths",
    "analysis-paths",
    "snapshot-paths",
    "docs-paths",
    "asset-paths",
    "function-paths",
    "target-path",
    "log-path",
    "packages-install-path",
    "clean-targets",
    "vars",
    "models",
    "seeds",
    "snapshots",
    "sources",
    "tests",
    "data_tests",
    "analyses",
    "unit_tests",
    "metrics",
    "semantic-models",
    "saved-queries",
    "exposures",
    "functions",
    "on-run-start",
    "on-run-end",
    "require-dbt-version",
    "quoting",
    "query-comment",
    "dispatch",
    "flags",
    "restrict-access",
    "dbt-cloud",
];

/// Config keys dbt knows for models, seeds, tests and sources (hyphen and
/// underscore spellings). Keys outside this list are kept but reported when
/// they look like a typo of one in it.
pub const KNOWN_CONFIG_KEYS: &[&str] = &[
    "enabled",
    "tags",
    "meta",
    "docs",
    "materialized",
    "database",
    "schema",
    "alias",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "persist_docs",
    "full_refresh",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "on_configuration_change",
    "sql_header",
    "quoting",
    "column_types",
    "quote_columns",
    "delimiter",
    "severity",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "contract",
    "grants",
    "indexes",
    "access",
    "group",
    "event_time",
    "batch_size",
    "lookback",
    "begin",
    "concurrent_batches",
    "packages",
    "bind",
    "unlogged",
    "incremental_predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "copy_grants",
    "transient",
    "cluster_by",
    "partition_by",
    "file_format",
    "location_root",
    "freshness",
    "loaded_at_field",
    "loaded_at_query",
    "strategy",
    "target_schema",
    "target_database",
    "check_cols",
    "updated_at",
    "invalidate_hard_deletes",
    "snapshot_meta_column_names",
    "hard_deletes",
    "dbt_valid_to_current",
    "plugin",
    "options",
    "external_location",
    "format",
    "partitioned_by",
    "glue_register",
    "glue_database",
    "partition_columns",
    "microbatch",
    // dbt-duckdb's `external` materialization and sources.
    "location",
    "formatter",
    "parquet_read_options",
    "csv_read_options",
    "json_read_options",
];

/// Config keys whose values accumulate as lists down the config levels
/// (dbt's `MergeBehavior.Append`).
const APPEND_KEYS: &[&str] = &["tags", "pre-hook", "post-hook", "packages"];
/// Config keys whose dictionaries are merged key by key
/// (dbt's `MergeBehavior.Update`; `grants` is `DictKeyAppend`, close enough
/// for one level of keys).
const UPDATE_KEYS: &[&str] = &[
    "meta",
    "quoting",
    "column_types",
    "docs",
    "contract",
    "grants",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectConfig {
    pub name: String,
    pub version: Option<String>,
    pub profile: Option<String>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub test_paths: Vec<String>,
    /// Where analyses live. dbt compiles none unless `analysis-paths` is set.
    pub analysis_paths: Vec<String>,
    /// dbt's `flags: require_corrected_analysis_fqns`: analysis fqns without
    /// the folder segment, and the `analyses:` config tree honoured.
    pub corrected_analysis_fqns: bool,
    pub snapshot_paths: Vec<String>,
    pub docs_paths: Vec<String>,
    pub target_path: String,
    pub packages_install_path: String,
    pub clean_targets: Vec<String>,
    /// Global vars and package-scoped vars (`vars: {pkg: {…}}`), as written.
    pub vars: Map<String, Value>,
    /// Config trees: `models`, `seeds`, `tests`/`data_tests`, `sources`, `snapshots`.
    pub trees: BTreeMap<String, Value>,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    pub dispatch: Vec<Value>,
    /// `flags:`, dbt's behaviour switches.
    pub flags: Map<String, Value>,
    /// The raw text, for locating keys in errors.
    pub text: String,
}

impl ProjectConfig {
    pub fn parse(text: &str) -> Result<(ProjectConfig, Diagnostics), Diagnostics> {
        let file = PROJECT_FILE;
        let value = yaml::parse(text, file)?;
        let Value::Object(map) = value else {
            return Err(
                Diagnostic::error("E0102", "dbt_project.yml must be a mapping")
                    .at(file, Some(1))
                    .into(),
            );
        };
        let mut warnings = Diagnostics::default();
        for key in map.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                let mut d =
                    Diagnostic::warning("E0103", format!("unknown key `{key}` in dbt_project.yml"))
                        .at(file, yaml::line_of_key(text, key, 1));
                if let Some(s) = did_you_mean(key, TOP_LEVEL_KEYS.iter().copied()) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                warnings.push(d);
            }
        }
        let Some(name) = map.get("name").and_then(Value::as_str) else {
            return Err(Diagnostic::error("E0102", "dbt_project.yml has no `name`")
                .at(file, Some(1))
                .hint("add `name: my_project` at the top")
                .into());
        };
        let paths = |keys: &[&str], default: &str| -> Vec<String> {
            keys.iter()
                .find_map(|k| map.get(*k))
                .map(string_list)
                .unwrap_or_else(|| vec![default.to_string()])
        };
        let target_path = map
            .get("target-path")
            .and_then(Value::as_str)
            .unwrap_or("target")
            .to_string();
        let corrected_analysis_fqns = map
            .get("flags")
            .and_then(|f| f.get("require_corrected_analysis_fqns"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut trees = BTreeMap::new();
        if corrected_analysis_fqns {
            if let Some(v) = map.get("analyses") {
                trees.insert("analyses".to_string(), v.clone());
            }
        }
        for key in [
            "models",
            "seeds",
            "tests",
            "data_tests",
            "sources",
            "snapshots",
            "unit_tests",
            "exposures",
        ] {
            if let Some(v) = map.get(key) {
                let k = if key == "data_tests" { "tests" } else { key };
                trees.insert(k.to_string(), v.clone());
            }
        }
        let config = ProjectConfig {
            name: name.to_string(),
            version: map.get("version").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            profile: map
                .get("profile")
                .and_then(Value::as_str)
                .map(str::to_string),
            model_paths: paths(&["model-paths", "source-paths"], "models"),
            seed_paths: paths(&["seed-paths", "data-paths"], "seeds"),
            macro_paths: paths(&["macro-paths"], "macros"),
            test_paths: paths(&["test-paths"], "tests"),
            analysis_paths: map
                .get("analysis-paths")
                .map(string_list)
                .unwrap_or_default(),
            corrected_analysis_fqns,
            snapshot_paths: paths(&["snapshot-paths"], "snapshots"),
            docs_paths: map.get("docs-paths").map(string_list).unwrap_or_default(),
            clean_targets: map
                .get("clean-targets")
                .map(string_list)
                .unwrap_or_else(|| vec![target_path.clone()]),
            target_path,
            packages_install_path: map
                .get("packages-install-path")
                .and_then(Value::as_str)
                .unwrap_or("dbt_packages")
                .to_string(),
            vars: map
                .get("vars")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            trees,
            on_run_start: map.get("on-run-start").map(string_list).unwrap_or_default(),
            on_run_end: map.get("on-run-end").map(string_list).unwrap_or_default(),
            dispatch: map
                .get("dispatch")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            flags: map
                .get("flags")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            text: text.to_string(),
        };
        Ok((config, warnings))
    }

    /// Whether `flags:` turns behaviour switch `name` on.
    pub fn flag(&self, name: &str) -> bool {
        self.flags
            .get(name)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The config a node at `fqn` gets from the `tree` (e.g. `models`) of
    /// dbt_project.yml. The first fqn element is the package name.
    pub fn tree_config(&self, tree: &str, fqn: &[String]) -> Config {
        let mut out = Config::new();
        let Some(Value::Object(root)) = self.trees.get(tree) else {
            return out;
        };
        // Top-level `+key`s apply to everything, then descend by fqn.
        apply_level(&mut out, root);
        let mut level = root;
        for part in fqn {
            match level.get(part) {
                Some(Value::Object(next)) => {
                    apply_level(&mut out, next);
                    level = next;
                }
                _ => break,
            }
        }
        out
    }

    /// Config keys in the trees that look like typos: `+materialised`.
    pub fn check_tree_keys(&self) -> Diagnostics {
        let mut out = Diagnostics::default();
        for value in self.trees.values() {
            check_level(self, value, &mut out);
        }
        out
    }
}

fn check_level(cfg: &ProjectConfig, value: &Value, out: &mut Diagnostics) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        if let Some(k) = key.strip_prefix('+') {
            if let Some(d) =
                unknown_config_key(k, PROJECT_FILE, yaml::line_of_key(&cfg.text, key, 1))
            {
                out.push(d);
            }
        } else if v.is_object() && !is_config_key(key) {
            check_level(cfg, v, out);
        }
    }
}

/// A diagnostic for a config key that is not one dbt knows: an error when it
/// is a likely typo of a known key, nothing for adapter-specific keys.
pub fn unknown_config_key(key: &str, file: &str, line: Option<usize>) -> Option<Diagnostic> {
    if is_config_key(key) {
        return None;
    }
    let suggestion = did_you_mean(key, KNOWN_CONFIG_KEYS.iter().copied())?;
    Some(
        Diagnostic::error("E0104", format!("unknown config key `{key}`"))
            .at(file, line)
            .hint(format!("did you mean `{suggestion}`?")),
    )
}

fn is_config_key(key: &str) -> bool {
    KNOWN_CONFIG_KEYS.contains(&key)
}

fn apply_level(out: &mut Config, level: &Map<String, Value>) {
    for (key, value) in level {
        let key = match key.strip_prefix('+') {
            Some(k) => k,
            // Unprefixed keys are configs only when dbt knows them and the value is not a subfolder.
            None if is_config_key(key) && !value.is_object() || key == "meta" || key == "docs" => {
                key
            }
            None => continue,
        };
        merge_config_value(out, key, value.clone());
    }
}

/// dbt's default schema of a data test (`<target schema>_dbt_test__audit`),
/// where `store_failures` keeps failing rows.
pub const TEST_SCHEMA: &str = "dbt_test__audit";

/// Merge one config key with dbt's rules: tags, hooks and packages append,
/// dictionaries such as `meta` and `contract` merge key by key, everything
/// else replaces. Hook keys are normalised to `pre-hook`/`post-hook`.
pub fn merge_config_value(out: &mut Config, key: &str, value: Value) {
    let key = match key {
        "pre_hook" => "pre-hook",
        "post_hook" => "post-hook",
        k => k,
    };
    if UPDATE_KEYS.contains(&key) {
        match (out.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    existing.insert(k, v);
                }
            }
            (_, new) => {
                out.insert(key.to_string(), new);
            }
        }
        return;
    }
    if !APPEND_KEYS.contains(&key) {
        out.insert(key.to_string(), value);
        return;
    }
    match out.get_mut(key) {
        Some(existing) => {
            let mut list = as_list(existing.take());
            for item in as_list(value) {
                if !(key == "tags" && list.contains(&item)) {
                    list.push(item);
                }
            }
            *existing = Value::Array(list);
        }
        None => {
            out.insert(key.to_string(), Value::Array(as_list(value)));
        }
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A YAML value that may be a string or a list of strings.
pub fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "name: shop\nprofile: shop\nvars:\n  x: 1\nmodels:\n  +tags: [all]\n  shop:\n    +materialized: view\n    marts:\n      +materialized: table\n      +tags: mart\n";

    #[test]
    fn folder_configs_inherit_and_tags_accumulate() {
        let (cfg, warnings) = ProjectConfig::parse(PROJECT).unwrap();
        assert!(warnings.0.is_empty());
        let fqn = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = cfg.tree_config("models", &fqn(&["shop", "marts", "orders"]));
        assert_eq!(c["materialized"], "table");
        assert_eq!(c["tags"], serde_json::json!(["all", "mart"]));
        let c = cfg.tree_config("models", &fqn(&["shop", "staging", "stg"]));
        assert_eq!(c["materialized"], "view");
        assert_eq!(cfg.model_paths, vec!["models"]);
    }

    #[test]
    fn misspelled_tree_key_is_an_error_with_line() {
        let (cfg, _) =
            ProjectConfig::parse("name: p\nmodels:\n  p:\n    +materialised: table\n").unwrap();
        let d = cfg.check_tree_keys();
        let e = d.errors().next().expect("an error");
        assert_eq!(e.line, Some(4));
        assert!(e.hints[0].contains("materialized"), "{e}");
    }

    #[test]
    fn missing_name_is_an_error() {
        assert!(ProjectConfig::parse("profile: x\n").is_err());
    }
}
