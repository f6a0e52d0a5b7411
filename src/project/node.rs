//! The resources of a project — models, seeds, sources, tests — in the shape
//! dbt's manifest gives them, so that serializing a [`Node`] yields dbt's
//! field names.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    #[default]
    Model,
    Seed,
    Source,
    Test,
    Analysis,
    Snapshot,
    UnitTest,
    Exposure,
    /// The Semantic Layer's resources: parsed into the manifest and the
    /// graph (lineage, selection), never run.
    SemanticModel,
    Metric,
    SavedQuery,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Source => "source",
            ResourceType::Test => "test",
            ResourceType::Analysis => "analysis",
            ResourceType::Snapshot => "snapshot",
            ResourceType::UnitTest => "unit_test",
            ResourceType::Exposure => "exposure",
            ResourceType::SemanticModel => "semantic_model",
            ResourceType::Metric => "metric",
            ResourceType::SavedQuery => "saved_query",
        }
    }
    /// The dbt_project.yml key whose tree configures resources of this type.
    pub fn config_tree(self) -> &'static str {
        match self {
            ResourceType::Model => "models",
            ResourceType::Seed => "seeds",
            ResourceType::Source => "sources",
            ResourceType::Test => "tests",
            ResourceType::Analysis => "analyses",
            ResourceType::Snapshot => "snapshots",
            ResourceType::UnitTest => "unit_tests",
            ResourceType::Exposure => "exposures",
            ResourceType::SemanticModel => "semantic-models",
            ResourceType::Metric => "metrics",
            ResourceType::SavedQuery => "saved-queries",
        }
    }
    pub fn parse(s: &str) -> Option<ResourceType> {
        Some(match s {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "source" => ResourceType::Source,
            "test" => ResourceType::Test,
            "analysis" => ResourceType::Analysis,
            "snapshot" => ResourceType::Snapshot,
            "unit_test" => ResourceType::UnitTest,
            "exposure" => ResourceType::Exposure,
            "semantic_model" => ResourceType::SemanticModel,
            "metric" => ResourceType::Metric,
            "saved_query" => ResourceType::SavedQuery,
            _ => return None,
        })
    }
}

/// A node's configuration: dbt's `config` dictionary after the project's
/// config tree, the YAML `config:` and the model's own `config()` call have
/// been merged (in that order of increasing precedence).
pub type Config = BTreeMap<String, serde_json::Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub meta: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub data_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Model contract constraints on the column (`not_null`, `unique`, …).
    #[serde(default)]
    pub constraints: Vec<serde_json::Value>,
    #[serde(default)]
    pub quote: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DependsOn {
    pub macros: Vec<String>,
    pub nodes: Vec<String>,
}

/// A `ref()` as written: `ref('name')`, `ref('package', 'name')`, or with
/// `version=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCall {
    pub name: String,
    pub package: Option<String>,
    pub version: Option<String>,
}

/// Where a test came from and what it checks (dbt's `test_metadata`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetadata {
    pub name: String,
    pub kwargs: BTreeMap<String, serde_json::Value>,
    pub namespace: Option<String>,
}

/// A unit test (dbt 1.8's `unit_tests:`): the model it tests, the rows that
/// stand in for the model's inputs, and the rows it must produce. Fixture
/// rows are as written: a list of mappings (`format: dict`), CSV text, or
/// SQL; `fixture:` names a file under `<test-path>/fixtures/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitTestSpec {
    pub model: String,
    pub given: Vec<UnitTestInput>,
    pub expect: UnitTestRows,
    #[serde(default)]
    pub overrides: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitTestInput {
    /// `ref('x')`, `source('s', 't')` or `this`.
    pub input: String,
    #[serde(flatten)]
    pub rows: UnitTestRows,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitTestRows {
    /// `dict`, `csv` or `sql`.
    pub format: String,
    pub rows: Option<serde_json::Value>,
    pub fixture: Option<String>,
}

/// An exposure's own fields (dbt's `exposures:`): what uses the project's
/// data downstream, e.g. a dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExposureInfo {
    /// `dashboard`, `notebook`, `analysis`, `ml` or `application`.
    #[serde(rename = "type")]
    pub kind: String,
    pub owner: serde_json::Value,
    pub label: Option<String>,
    pub maturity: Option<String>,
    pub url: Option<String>,
}

/// A Semantic Layer resource's YAML entry (`entities`, `measures`,
/// `type_params`, `query_params`, …, as declared) and the unique ids of the
/// semantic models and metrics it names, found once every one is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SemanticInfo {
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub depends_on: Vec<String>,
}

/// Source-only fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub source_name: String,
    pub source_description: String,
    pub loader: String,
    pub identifier: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Option<serde_json::Value>,
    pub source_meta: BTreeMap<String, serde_json::Value>,
    /// The extraction plugin block (`meta.sluice.extract` or `extract:`),
    /// secrets never included.
    pub extract: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub package_name: String,
    /// Path relative to the resource's root folder (e.g. `intermediate/int_tweets.sql`).
    pub path: String,
    /// Path relative to the project directory (e.g. `models/intermediate/int_tweets.sql`).
    pub original_file_path: String,
    pub fqn: Vec<String>,
    pub database: Option<String>,
    pub schema: String,
    pub alias: String,
    /// The relation name as rendered for the target engine, e.g. `"db"."analytics"."int_tweets"`.
    pub relation_name: Option<String>,
    pub raw_code: String,
    pub language: String,
    pub compiled_code: Option<String>,
    pub compiled_path: Option<String>,
    pub config: Config,
    pub description: String,
    pub columns: IndexMap<String, ColumnDef>,
    pub meta: BTreeMap<String, serde_json::Value>,
    pub tags: Vec<String>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<Vec<String>>,
    pub depends_on: DependsOn,
    /// Set for YAML-defined resources and tests: the YAML file that declared it.
    pub patch_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<SourceInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_metadata: Option<Box<TestMetadata>>,
    /// For a test: the column it tests, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_name: Option<String>,
    /// For a test: the node it is attached to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_node: Option<String>,
    /// For a unit test: what it feeds the model and expects back (written
    /// to the manifest's `unit_tests` by `artifacts`).
    #[serde(skip)]
    pub unit_test: Option<Box<UnitTestSpec>>,
    /// For an exposure: its type, owner, … (written by `artifacts`).
    #[serde(skip)]
    pub exposure: Option<Box<ExposureInfo>>,
    /// For a semantic model, metric or saved query: its declared
    /// properties and what it depends on (written by `artifacts`).
    #[serde(skip)]
    pub semantic: Option<Box<SemanticInfo>>,
    /// Every macro its render reached, nested calls too (`depends_on.macros`
    /// has only the ones it calls itself, as dbt's): what
    /// `state:modified.macros` compares.
    #[serde(skip)]
    pub macros_used: Vec<String>,
    /// The checksum of the raw file, for `state:modified`.
    pub checksum: String,
    /// 1-based line in `original_file_path`/`patch_path` where the node is declared
    /// (1 for SQL files; the YAML line for sources and tests).
    #[serde(skip)]
    pub line: usize,
    /// For a node of an installed package: the package's directory,
    /// relative to the project root (`dbt_packages/dbt_utils`).
    #[serde(skip)]
    pub package_dir: Option<String>,
    /// For a versioned model: its version (`v`), and the model's latest.
    #[serde(skip)]
    pub version: Option<String>,
    #[serde(skip)]
    pub latest_version: Option<String>,
    /// A model's model-level contract constraints (YAML `constraints:`);
    /// column-level ones are on its columns.
    #[serde(skip)]
    pub constraints: Vec<serde_json::Value>,
    /// The line of the node's entry in `patch_path`, once patched.
    #[serde(skip)]
    /// A model's `time_spine:` property (dbt's node field), if any.
    pub time_spine: Option<Box<serde_json::Value>>,
    pub patch_line: Option<usize>,
}

impl Node {
    pub fn materialized(&self) -> &str {
        self.config
            .get("materialized")
            .and_then(|v| v.as_str())
            .unwrap_or(match self.resource_type {
                ResourceType::Seed => "seed",
                ResourceType::Test => "test",
                _ => "view",
            })
    }
    pub fn enabled(&self) -> bool {
        self.config
            .get("enabled")
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    }
    pub fn source_name(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.source_name.as_str())
    }
    /// `original_file_path` as dbt writes it: relative to the root of the
    /// project or package the node belongs to.
    pub fn package_file_path(&self) -> &str {
        match &self.package_dir {
            Some(dir) => self
                .original_file_path
                .strip_prefix(dir.as_str())
                .map_or(&self.original_file_path, |p| p.trim_start_matches('/')),
            None => &self.original_file_path,
        }
    }
    /// The file the user edits to change this node (YAML for sources/generic tests).
    /// `file:line` of the node's own definition, where a setting's
    /// mistake is reported.
    /// The node's `pre-hook` or `post-hook` (`key`) SQL as written: a
    /// string, a list of them, or dbt's `{sql: …, transaction: …}` entries.
    pub fn hooks(&self, key: &str) -> Vec<String> {
        use serde_json::Value;
        let one = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("sql").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        match self.config.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
            Some(v) => one(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The file line of byte `pos` of `raw_code` (which starts on the
    /// file's line `line`: dbt trims leading blank lines).
    pub fn raw_code_line(&self, pos: usize) -> usize {
        crate::diagnostics::line_of(&self.raw_code, pos) + self.line.saturating_sub(1)
    }

    pub fn file_line(&self) -> String {
        format!("{}:{}", self.original_file_path, self.line)
    }

    pub fn defining_file(&self) -> &str {
        self.patch_path
            .as_deref()
            .unwrap_or(&self.original_file_path)
    }
}
