//! Loading a dbt project from disk: `dbt_project.yml`, models, seeds,
//! macros, singular tests, schema YAML and docs blocks, assembled into
//! unrendered [`Node`]s. Everything here is file reading and data shaping;
//! rendering Jinja is `templating`'s job.

pub mod config;
pub mod files;
pub mod node;
pub mod profiles;
pub mod schema;
pub mod semantic;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use config::{merge_config_value, ProjectConfig, PROJECT_FILE};
use files::SourceFile;
use node::{
    Config, DependsOn, Node, RefCall, ResourceType, SemanticInfo, SourceInfo, TestMetadata,
};
use schema::{ExposureDecl, GroupDecl, Patch, SchemaFiles, SemanticDecl, TestSpec, UnitTestDecl};

/// A macro file: its path, text and the macros it defines.
#[derive(Debug, Clone)]
pub struct MacroFile {
    pub path: String,
    pub text: String,
    /// Macro names defined in the file (`{% test x %}` defines `test_x`).
    pub names: Vec<String>,
    /// The installed package that defines them (`None`: this project).
    pub package: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
    /// Every node, keyed by unique id.
    pub nodes: BTreeMap<String, Node>,
    pub macros: Vec<MacroFile>,
    /// `{% docs name %}…{% enddocs %}` blocks.
    pub docs: BTreeMap<String, String>,
    /// The installed packages whose resources are among `nodes`.
    pub packages: Vec<Package>,
    /// `groups:` declared in the project's YAML.
    pub groups: Vec<GroupDecl>,
}

impl Project {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn target_dir(&self) -> PathBuf {
        self.root.join(&self.config.target_path)
    }
}

/// Load the project at `root`, with the resources of every package
/// installed under its `packages-install-path`. Returns the project and its
/// warnings, or every error found.
pub fn load(root: &Path) -> Result<(Project, Diagnostics), Diagnostics> {
    let project_file = root.join(PROJECT_FILE);
    let text = fs_err::read_to_string(&project_file).map_err(|_| {
        Diagnostic::error("E0100", format!("no {PROJECT_FILE} found in {}", root.display()))
            .hint("run sluice from a project directory, pass --project-dir, or create one with `sluice init <dir>`")
    })?;
    let (config, mut diags) = ProjectConfig::parse(&text)?;
    let mut loaded = Loaded::default();
    load_resources(root, &config, None, &mut loaded, &mut diags)?;
    for package in installed_packages(root, &config, &mut diags) {
        if package.config.name == config.name {
            continue;
        }
        let base = package.base.clone();
        let before = loaded.nodes.len();
        if let Err(found) =
            load_resources(root, &package.config, Some(&base), &mut loaded, &mut diags)
        {
            diags.extend(found);
        }
        if loaded.nodes.len() > before {
            disable_from_root(&config, &package.config.name, &mut loaded.nodes);
        }
        loaded.packages.push(package);
    }
    let Loaded {
        nodes,
        macros,
        docs,
        packages,
        groups,
    } = loaded;
    let project = Project {
        root: root.to_path_buf(),
        config,
        nodes,
        macros,
        docs,
        packages,
        groups,
    };
    if diags.has_errors() {
        Err(diags.sorted())
    } else {
        Ok((project, diags.sorted()))
    }
}

/// The root project's dbt_project.yml has the last word on a package's
/// configs (applied in full after rendering, see `compile::parse`); its
/// `enabled` is applied now, so that refs resolve past disabled nodes as
/// in dbt.
fn disable_from_root(root: &ProjectConfig, package: &str, nodes: &mut BTreeMap<String, Node>) {
    for n in nodes.values_mut().filter(|n| n.package_name == package) {
        if let Some(v) = root
            .tree_config(n.resource_type.config_tree(), &n.fqn)
            .remove("enabled")
        {
            n.config.insert("enabled".to_string(), v);
        }
    }
}

/// What the root project and its packages contribute.
#[derive(Default)]
struct Loaded {
    nodes: BTreeMap<String, Node>,
    macros: Vec<MacroFile>,
    docs: BTreeMap<String, String>,
    packages: Vec<Package>,
    groups: Vec<GroupDecl>,
}

/// The resources of one project, the root (`base` `None`) or an installed
/// package under `base` (e.g. `dbt_packages/dbt_utils`): read its files,
/// build its nodes and add them, its macros and its docs to `out`.
fn load_resources(
    root: &Path,
    config: &ProjectConfig,
    base: Option<&str>,
    out: &mut Loaded,
    diags: &mut Diagnostics,
) -> Result<(), Diagnostics> {
    let under = |paths: &[String]| -> Vec<String> {
        match base {
            None => paths.to_vec(),
            Some(b) => paths.iter().map(|p| format!("{b}/{p}")).collect(),
        }
    };
    let model_paths = under(&config.model_paths);
    let seed_paths = under(&config.seed_paths);
    let macro_paths = under(&config.macro_paths);
    let test_paths = under(&config.test_paths);
    let analysis_paths = under(&config.analysis_paths);
    let snapshot_paths = under(&config.snapshot_paths);
    let docs_paths = under(&doc_paths(config));
    let listing = files::list(
        root,
        [
            &model_paths,
            &seed_paths,
            &macro_paths,
            &test_paths,
            &analysis_paths,
            &snapshot_paths,
            &docs_paths,
        ]
        .into_iter()
        .flatten(),
    )
    .map_err(Diagnostics::from)?;
    let read = |paths: &[String], exts: &[&str]| listing.read(paths, exts);
    let collected = (|| -> Result<_, Diagnostic> {
        Ok((
            read(&model_paths, &["sql", "py"])?,
            read(&model_paths, &["yml", "yaml"])?,
            read(&seed_paths, &["csv"])?,
            read(&macro_paths, &["sql"])?,
            read(&test_paths, &["sql"])?,
            read(&docs_paths, &["md"])?,
            read(&analysis_paths, &["sql"])?,
            read(&snapshot_paths, &["sql"])?,
        ))
    })();
    let (
        model_files,
        mut yaml_files,
        seed_files,
        macro_files,
        test_files,
        md_files,
        analysis_files,
        snapshot_files,
    ) = collected.map_err(Diagnostics::from)?;
    // `<test path>/fixtures/` holds unit tests' fixtures, not singular tests.
    let fixture_dirs: Vec<String> = test_paths
        .iter()
        .map(|p| format!("{p}/fixtures/"))
        .collect();
    let test_files: Vec<_> = test_files
        .into_iter()
        .filter(|f| !fixture_dirs.iter().any(|d| f.path.starts_with(d.as_str())))
        .collect();
    for paths in [&snapshot_paths, &analysis_paths, &seed_paths, &macro_paths] {
        yaml_files.extend(read(paths, &["yml", "yaml"]).map_err(Diagnostics::from)?);
    }

    // The YAML files parse while the model and seed nodes are made.
    let ((schema, schema_diags), (nodes, found)) = rayon::join(
        || schema::parse_all(&yaml_files),
        || {
            let mut b = Builder::new(config, base);
            b.add_models(&model_files);
            b.add_seeds(&seed_files);
            (b.nodes, b.diags)
        },
    );
    diags.extend(schema_diags);
    let mut b = Builder {
        nodes,
        diags: found,
        ..Builder::new(config, base)
    };
    b.add_sources(&schema);
    b.add_singular_tests(&test_files);
    b.add_analyses(&analysis_files);
    b.add_snapshots(&snapshot_files);
    b.add_yaml_snapshots(&schema.snapshots);
    b.apply_patches(&schema);
    b.add_generic_tests();
    if base.is_none() {
        // A package's unit tests and exposures are its own business.
        b.add_unit_tests(&schema.unit_tests);
        b.add_semantic(&schema.semantic);
        b.add_exposures(&schema.exposures);
        out.groups.extend(schema.groups.iter().cloned());
    }
    let Builder {
        nodes,
        diags: found,
        ..
    } = b;
    diags.extend(found);
    // Freeing tens of thousands of parsed YAML entries and file texts is
    // pure overhead on the way to rendering: a pool thread does it.
    let parsed = (schema, yaml_files, model_files);
    rayon::spawn(move || drop(parsed));
    if out.nodes.is_empty() {
        out.nodes = nodes;
    } else {
        out.nodes.extend(nodes);
    }

    let package = base.map(|_| config.name.clone());
    out.macros.extend(
        macro_files
            .into_iter()
            .chain(test_files.into_iter().filter(is_generic_test_file))
            .map(|f| MacroFile {
                package: package.clone(),
                ..macro_file(f)
            }),
    );
    for f in &md_files {
        match docs_blocks(&f.text, &f.path) {
            Ok(found) => out.docs.extend(found),
            Err(d) => diags.push(d),
        }
    }
    Ok(())
}

fn doc_paths(config: &ProjectConfig) -> Vec<String> {
    if !config.docs_paths.is_empty() {
        return config.docs_paths.clone();
    }
    let mut all = config.model_paths.clone();
    all.extend(config.seed_paths.iter().cloned());
    all.extend(config.macro_paths.iter().cloned());
    all.extend(config.test_paths.iter().cloned());
    all
}

fn is_generic_test_file(f: &SourceFile) -> bool {
    f.rel.starts_with("generic/")
}

fn macro_file(f: SourceFile) -> MacroFile {
    let mut names: Vec<String> = block_names(&f.text, &["macro", "test"])
        .into_iter()
        .map(|(kind, name)| {
            if kind == "test" {
                format!("test_{name}")
            } else {
                name
            }
        })
        .collect();
    names.extend(materialization_blocks(&f.text));
    MacroFile {
        path: f.path,
        text: f.text,
        names,
        package: None,
    }
}

/// The macro names (`materialization_<name>_<adapter>`) of a file's
/// `{% materialization … %}` blocks.
fn materialization_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{%") {
        rest = &rest[i + 2..];
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        if let Some(after) = body.strip_prefix("materialization ") {
            if let Some(close) = after.find("%}") {
                out.push(materialization_macro_name(&after[..close]));
            }
        }
    }
    out
}

/// What dbt names the macro of `{% materialization <args> %}`:
/// `materialization_<name>_<adapter>`, the adapter `default` when the
/// block says `default` or names none.
pub fn materialization_macro_name(args: &str) -> String {
    let args = args.trim_end().trim_end_matches(['-', '+']);
    let mut parts = args.split(',').map(str::trim);
    let name = parts.next().unwrap_or_default();
    let adapter = parts
        .find_map(|p| {
            (p == "default").then(|| "default".to_string()).or_else(|| {
                p.strip_prefix("adapter")
                    .map(|v| v.trim_start().trim_start_matches('=').trim())
                    .map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .unwrap_or_else(|| "default".to_string());
    format!("materialization_{name}_{adapter}")
}

/// Warn, as dbt stops, when `packages.yml` (or `dependencies.yml`) lists
/// more packages than are installed.
fn missing_packages(root: &Path, install: &str, installed: usize, diags: &mut Diagnostics) {
    for file in ["packages.yml", "dependencies.yml"] {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        let listed = yaml::parse(&text, file)
            .ok()
            .and_then(|v| v.get("packages").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0);
        if listed > installed {
            diags.push(
                Diagnostic::warning(
                    "E0113",
                    format!("{file} lists {listed} package(s) but {installed} are installed in {install}/"),
                )
                .at(file.to_string(), Some(1))
                .hint("install them with `sluice deps` (or `dbt deps`); until then their macros are undefined"),
            );
        }
        return;
    }
}

/// An installed package: where it is and its `dbt_project.yml`.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its directory, relative to the project root (`dbt_packages/dbt_utils`).
    pub base: String,
    pub config: ProjectConfig,
}

/// Every package installed under `packages-install-path` (where `dbt deps`
/// puts them, `dbt_packages/` by default), each read from its own
/// `dbt_project.yml`, in name order.
fn installed_packages(
    root: &Path,
    config: &ProjectConfig,
    diags: &mut Diagnostics,
) -> Vec<Package> {
    let install = config.packages_install_path.trim_end_matches('/');
    let Ok(entries) = std::fs::read_dir(root.join(install)) else {
        missing_packages(root, install, 0, diags);
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(PROJECT_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    dirs.sort();
    missing_packages(root, install, dirs.len(), diags);
    let mut out = Vec::new();
    for dir in dirs {
        let base = format!("{install}/{dir}");
        let project_file = format!("{base}/{PROJECT_FILE}");
        let Ok(text) = std::fs::read_to_string(root.join(&project_file)) else {
            diags.push(
                Diagnostic::warning(
                    "E0112",
                    format!(
                        "the package in {base} has no readable {PROJECT_FILE}: it is not loaded"
                    ),
                )
                .at(project_file, None)
                .hint("reinstall it (`sluice deps`) or remove the directory"),
            );
            continue;
        };
        match ProjectConfig::parse(&text) {
            Ok((config, _)) => out.push(Package { base, config }),
            // A broken package file is as much an error as the project's,
            // at its own path and line.
            Err(found) => {
                for mut d in found.0 {
                    d.file = Some(project_file.clone());
                    diags.push(d);
                }
            }
        }
    }
    out
}

/// `(keyword, name)` for each `{% keyword name(` / `{%- keyword name %}` in `text`.
pub fn block_names(text: &str, keywords: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{%") {
        rest = &rest[i + 2..];
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        for kw in keywords {
            if let Some(after) = body.strip_prefix(kw) {
                if after.starts_with(|c: char| c.is_whitespace()) {
                    let name: String = after
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((kw.to_string(), name));
                    }
                }
            }
        }
    }
    out
}

/// A `{% kind name %}…{% endkind %}` block (docs, snapshot).
struct Block<'t> {
    name: &'t str,
    /// The 1-based line of the opening tag.
    line: usize,
    /// Byte offsets of the body, between the two tags.
    body: std::ops::Range<usize>,
    /// Byte offsets of the whole block, tags included.
    outer: std::ops::Range<usize>,
}

/// Each `{% macro name(…) %}…{% endmacro %}` of `text` on its own: the
/// macro's name and its source, preceded by as many newlines as the file
/// has before it (so line numbers in errors match the file). `None` when a
/// block is never closed (compiling the whole file reports that).
pub fn macro_sources(text: &str) -> Option<Vec<(String, String)>> {
    let found = blocks(text, "macro", "").ok()?;
    Some(
        found
            .into_iter()
            .map(|b| {
                let name: String = b
                    .name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let lead = text[..b.outer.start].matches('\n').count();
                (name, format!("{}{}", "\n".repeat(lead), &text[b.outer]))
            })
            .collect(),
    )
}

/// The next `{% … %}` tag at or after `from`: (start, end, inner text).
fn next_tag(text: &str, from: usize) -> Option<(usize, usize, &str)> {
    let open = from + text[from..].find("{%")?;
    let close = open + text[open..].find("%}")?;
    let inner = text[open + 2..close].trim_matches(['-', '+', ' ', '\n', '\t', '\r']);
    Some((open, close + 2, inner))
}

/// Every `{% kind name %}…{% endkind %}` block of `text`; a block that is
/// never closed is an error naming `path` and the opening tag's line.
fn blocks<'t>(text: &'t str, kind: &str, path: &str) -> Result<Vec<Block<'t>>, Diagnostic> {
    let end_tag = format!("end{kind}");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((start, after, inner)) = next_tag(text, at) {
        at = after;
        let Some(name) = inner
            .strip_prefix(kind)
            .filter(|r| r.starts_with(char::is_whitespace))
        else {
            continue;
        };
        let line = text[..start].matches('\n').count() + 1;
        let mut scan = after;
        let close = loop {
            match next_tag(text, scan) {
                Some((open, shut, inner)) if inner == end_tag => break Some((open, shut)),
                Some((_, shut, _)) => scan = shut,
                None => break None,
            }
        };
        let Some((body_end, next)) = close else {
            return Err(Diagnostic::error(
                "E0111",
                format!("`{{% {kind} {} %}}` is never closed", name.trim()),
            )
            .at(path.to_string(), Some(line))
            .hint(format!("end the block with {{% {end_tag} %}}")));
        };
        out.push(Block {
            name: name.trim(),
            line,
            body: after..body_end,
            outer: start..next,
        });
        at = next;
    }
    Ok(out)
}

/// A snapshot's code: its body, preceded by as many newlines as the file
/// has before it, so line numbers in errors match the file.
fn snapshot_code(text: &str, b: &Block<'_>) -> String {
    let lead = text[..b.body.start].matches('\n').count();
    format!("{}{}", "\n".repeat(lead), &text[b.body.clone()])
}

fn docs_blocks(text: &str, path: &str) -> Result<Vec<(String, String)>, Diagnostic> {
    Ok(blocks(text, "docs", path)?
        .into_iter()
        .map(|b| (b.name.to_string(), text[b.body].trim().to_string()))
        .collect())
}

struct Builder<'a> {
    config: &'a ProjectConfig,
    /// For a package: its directory and a slash (`dbt_packages/dbt_utils/`).
    base: Option<String>,
    nodes: BTreeMap<String, Node>,
    diags: Diagnostics,
    /// Generic tests declared so far; their nodes are built together (in
    /// parallel) by `add_generic_tests` once every resource is known.
    tests: Vec<PendingTest<'a>>,
}

/// A generic test as declared: the spec, the unique id of the resource it
/// is attached to, that resource's name (a source's name for a source
/// table) and the source table, if any.
struct PendingTest<'a> {
    spec: &'a TestSpec,
    attached: String,
    model_name: String,
    table: Option<String>,
    /// The version of a versioned model it tests.
    version: Option<String>,
}

pub fn checksum(text: &str) -> String {
    // dbt 1.12: the file's text with its whitespace runs made one space.
    let normalized: Vec<&str> = text.split_whitespace().collect();
    sha256_hex(&normalized.join(" "))
}

/// dbt's checksum of a seed: its text, trimmed; a seed too large to hash
/// is known by its path (`path:<path>`, written as dbt's `{"name": "path"}`).
pub fn seed_checksum(f: &SourceFile) -> String {
    if f.text.starts_with(files::TOO_LARGE_TO_HASH) {
        return format!("path:{}", f.path);
    }
    // Read as Python reads text files: any line ending is `\n`.
    sha256_hex(f.text.replace("\r\n", "\n").replace('\r', "\n").trim())
}

/// The newlines before a text's first non-blank character.
fn leading_newlines(text: &str) -> usize {
    let blank = text.len() - text.trim_start().len();
    text[..blank].matches('\n').count()
}

pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<'a> Builder<'a> {
    fn new(config: &'a ProjectConfig, base: Option<&str>) -> Builder<'a> {
        Builder {
            config,
            base: base.map(|b| format!("{b}/")),
            nodes: BTreeMap::new(),
            diags: Diagnostics::default(),
            tests: Vec::new(),
        }
    }

    fn project(&self) -> &str {
        &self.config.name
    }

    fn package_dir(&self) -> Option<String> {
        self.base
            .as_ref()
            .map(|b| b.trim_end_matches('/').to_string())
    }

    /// A file's path below its resource folder (`models/a/b.yml` → `a/b.yml`),
    /// for fqns of what a YAML file declares.
    fn rel_in_resource<'f>(&self, file: &'f str) -> &'f str {
        let in_project = match &self.base {
            Some(b) => file.strip_prefix(b.as_str()).unwrap_or(file),
            None => file,
        };
        in_project
            .split_once('/')
            .map(|(_, r)| r)
            .unwrap_or(in_project)
    }

    /// `project.<folders under the resource root>.<name>`: dbt's fqn.
    fn fqn(&self, dirs_of: &str, name: &str) -> Vec<String> {
        let mut fqn = vec![self.project().to_string()];
        fqn.extend(files::dirs(dirs_of));
        fqn.push(name.to_string());
        fqn
    }

    fn base_node(&self, rt: ResourceType, name: &str, f: &SourceFile, tree: &str) -> Node {
        self.node_with_fqn(rt, name, f, tree, self.fqn(&f.rel, name))
    }

    /// A node from file `f` whose config comes from `tree` along `fqn`.
    fn node_with_fqn(
        &self,
        rt: ResourceType,
        name: &str,
        f: &SourceFile,
        tree: &str,
        fqn: Vec<String>,
    ) -> Node {
        let config = self.config.tree_config(tree, &fqn);
        Node {
            unique_id: format!("{}.{}.{}", rt.as_str(), self.project(), name),
            resource_type: rt,
            name: name.to_string(),
            package_name: self.project().to_string(),
            path: f.rel.clone(),
            original_file_path: f.path.clone(),
            fqn,
            database: None,
            schema: String::new(),
            alias: name.to_string(),
            relation_name: None,
            // dbt keeps a file's text without surrounding whitespace.
            raw_code: f.text.trim().to_string(),
            language: "sql".to_string(),
            compiled_code: None,
            compiled_path: None,
            config,
            description: String::new(),
            columns: Default::default(),
            meta: Default::default(),
            tags: Vec::new(),
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: DependsOn::default(),
            patch_path: None,
            source: None,
            test_metadata: None,
            column_name: None,
            attached_node: None,
            unit_test: None,
            exposure: None,
            semantic: None,
            macros_used: Vec::new(),
            checksum: checksum(&f.text),
            // The file line `raw_code` starts on (blank lines are trimmed).
            line: 1 + leading_newlines(&f.text),
            package_dir: self.package_dir(),
            version: None,
            latest_version: None,
            constraints: Vec::new(),
            patch_line: None,
            time_spine: None,
        }
    }

    fn insert_unique(&mut self, node: Node) {
        if let Some(existing) = self.nodes.get(&node.unique_id) {
            self.diags.push(
                Diagnostic::error(
                    "E0108",
                    format!(
                        "two {}s are named `{}`: {} and {}",
                        node.resource_type.as_str(),
                        node.name,
                        existing.original_file_path,
                        node.original_file_path
                    ),
                )
                .at(node.original_file_path.clone(), Some(1))
                .hint("names must be unique within a project: rename one of the files"),
            );
            return;
        }
        self.nodes.insert(node.unique_id.clone(), node);
    }

    fn add_models(&mut self, model_files: &[SourceFile]) {
        // Config inheritance and checksums per file, in parallel; then
        // inserted in file order, so duplicate names are reported the same way.
        let nodes: Vec<Node> = model_files
            .par_iter()
            .map(|f| {
                let name = files::stem(&f.rel).to_string();
                let mut node = self.base_node(ResourceType::Model, &name, f, "models");
                if f.path.ends_with(".py") {
                    node.language = "python".to_string();
                }
                node
            })
            .collect();
        for node in nodes {
            if node.language == "python" {
                self.diags.push(
                    Diagnostic::warning(
                        "E0109",
                        format!(
                            "Python model `{}` is not supported and will be skipped",
                            node.name
                        ),
                    )
                    .at(node.original_file_path.clone(), Some(1)),
                );
                continue;
            }
            self.insert_unique(node);
        }
    }

    fn add_seeds(&mut self, seed_files: &[SourceFile]) {
        for f in seed_files {
            let name = files::stem(&f.rel).to_string();
            let mut node = self.base_node(ResourceType::Seed, &name, f, "seeds");
            node.raw_code = String::new();
            node.checksum = seed_checksum(f);
            self.insert_unique(node);
        }
    }

    fn add_sources(&mut self, schema: &'a SchemaFiles) {
        for t in &schema.sources {
            let mut fqn = vec![self.project().to_string()];
            fqn.extend(files::dirs(self.rel_in_resource(&t.file)));
            fqn.push(t.source_name.clone());
            fqn.push(t.table_name.clone());
            let mut config = self.config.tree_config(
                "sources",
                &[
                    self.project().to_string(),
                    t.source_name.clone(),
                    t.table_name.clone(),
                ],
            );
            for (k, v) in &t.config {
                merge_config_value(&mut config, k, v.clone());
            }
            let unique_id = format!(
                "source.{}.{}.{}",
                self.project(),
                t.source_name,
                t.table_name
            );
            let node = Node {
                unique_id: unique_id.clone(),
                resource_type: ResourceType::Source,
                name: t.table_name.clone(),
                package_name: self.project().to_string(),
                path: t.file.clone(),
                original_file_path: t.file.clone(),
                fqn,
                database: t.database.clone(),
                schema: t.schema.clone(),
                alias: t.identifier.clone(),
                relation_name: None,
                raw_code: String::new(),
                language: "sql".to_string(),
                compiled_code: None,
                compiled_path: None,
                config,
                description: t.description.clone(),
                columns: t.columns.clone(),
                // dbt: the source's meta under the table's, tags of both
                // sorted without repeats.
                meta: {
                    let mut meta = t.source_meta.clone();
                    meta.extend(t.meta.clone());
                    meta
                },
                tags: {
                    let mut tags = t.tags.clone();
                    tags.sort();
                    tags.dedup();
                    tags
                },
                refs: Vec::new(),
                sources: Vec::new(),
                depends_on: DependsOn::default(),
                patch_path: Some(t.file.clone()),
                source: Some(Box::new(SourceInfo {
                    source_name: t.source_name.clone(),
                    source_description: t.source_description.clone(),
                    loader: t.loader.clone(),
                    identifier: t.identifier.clone(),
                    loaded_at_field: t.loaded_at_field.clone(),
                    freshness: t.freshness.clone(),
                    source_meta: t.source_meta.clone(),
                    extract: t.extract.clone(),
                })),
                test_metadata: None,
                column_name: None,
                attached_node: None,
                unit_test: None,
                exposure: None,
                semantic: None,
                macros_used: Vec::new(),
                checksum: checksum(&format!("{:?}{:?}", t.columns, t.config)),
                line: t.line,
                package_dir: self.package_dir(),
                version: None,
                latest_version: None,
                constraints: Vec::new(),
                patch_line: None,
                time_spine: None,
            };
            if self.nodes.contains_key(&unique_id) {
                self.diags.push(
                    Diagnostic::error(
                        "E0108",
                        format!(
                            "source table `{}.{}` is declared twice",
                            t.source_name, t.table_name
                        ),
                    )
                    .at(t.file.clone(), Some(t.line)),
                );
                continue;
            }
            self.nodes.insert(unique_id.clone(), node);
            for spec in &t.tests {
                self.tests.push(PendingTest {
                    spec,
                    attached: unique_id.clone(),
                    model_name: t.source_name.clone(),
                    table: Some(t.table_name.clone()),
                    version: None,
                });
            }
        }
    }

    /// Analyses: compiled, never run. By default dbt names them with their
    /// folder (`project.analyses.name`) and ignores the `analyses:` config
    /// tree; `flags: require_corrected_analysis_fqns` fixes both.
    fn add_analyses(&mut self, analysis_files: &[SourceFile]) {
        for f in analysis_files {
            let name = files::stem(&f.rel).to_string();
            // dbt's legacy fqn takes the folders from the project root.
            let dirs_of = if self.config.corrected_analysis_fqns {
                &f.rel
            } else {
                &f.path
            };
            let fqn = self.fqn(dirs_of, &name);
            let node = self.node_with_fqn(ResourceType::Analysis, &name, f, "analyses", fqn);
            self.insert_unique(node);
        }
    }

    /// Snapshots: every `{% snapshot name %}…{% endsnapshot %}` block. The
    /// body is the node's code, kept on its lines in the file so errors
    /// point at the right one; dbt's fqn for a snapshot includes the file name.
    fn add_snapshots(&mut self, snapshot_files: &[SourceFile]) {
        for f in snapshot_files {
            let found = match blocks(&f.text, "snapshot", &f.path) {
                Ok(found) => found,
                Err(d) => {
                    self.diags.push(d);
                    continue;
                }
            };
            for block in found {
                // `project.<folders>.<file>.<name>`: dbt counts the file as a folder.
                let mut fqn = self.fqn(&f.rel, block.name);
                fqn.insert(fqn.len() - 1, files::stem(&f.rel).to_string());
                let mut node =
                    self.node_with_fqn(ResourceType::Snapshot, block.name, f, "snapshots", fqn);
                node.config
                    .entry("materialized".to_string())
                    .or_insert_with(|| Value::from("snapshot"));
                node.raw_code = snapshot_code(&f.text, &block);
                node.line = block.line;
                self.insert_unique(node);
            }
        }
    }

    /// Snapshots defined in YAML with `relation:` (dbt 1.9): the node
    /// selects everything from that relation, and its YAML entry (applied
    /// with the other patches) gives its config, columns and tests.
    fn add_yaml_snapshots(&mut self, patches: &[Patch]) {
        for p in patches {
            let Some(relation) = &p.relation else {
                continue;
            };
            let relation = if relation.starts_with("ref(") || relation.starts_with("source(") {
                format!("{{{{ {relation} }}}}")
            } else {
                relation.clone()
            };
            let code = format!("select * from {relation}");
            let file = SourceFile::new(p.file.clone(), p.rel.clone(), code);
            // dbt: the project, the YAML file's folders, the name.
            let fqn = self.fqn(&p.rel, &p.name);
            let mut node =
                self.node_with_fqn(ResourceType::Snapshot, &p.name, &file, "snapshots", fqn);
            node.config
                .entry("materialized".to_string())
                .or_insert_with(|| Value::from("snapshot"));
            node.line = p.line;
            self.insert_unique(node);
        }
    }

    /// Semantic models, metrics and saved queries: nodes in the graph below
    /// what they name (a semantic model its `model: ref(…)`, a metric the
    /// semantic models of its measures and the metrics it builds on, a
    /// saved query its metrics), never run. A name nothing defines is an
    /// error at the entry.
    fn add_semantic(&mut self, decls: &[SemanticDecl]) {
        let project = self.project().to_string();
        let id_of = |rt: ResourceType, name: &str| format!("{}.{project}.{name}", rt.as_str());
        let mut measures: BTreeMap<String, String> = BTreeMap::new();
        let mut metrics: BTreeSet<String> = BTreeSet::new();
        for d in decls {
            match d.kind {
                ResourceType::SemanticModel => {
                    for m in schema::items(&d.properties, "measures") {
                        if let Some(name) = semantic::name(m) {
                            measures.insert(name, id_of(d.kind, &d.name));
                        }
                    }
                }
                ResourceType::Metric => {
                    metrics.insert(d.name.clone());
                }
                _ => {}
            }
        }
        for d in decls {
            let file = SourceFile::new(d.file.clone(), d.rel.clone(), String::new());
            let fqn = self.fqn(&d.rel, &d.name);
            let mut node = self.node_with_fqn(d.kind, &d.name, &file, d.kind.config_tree(), fqn);
            node.description = d.description.clone();
            node.line = d.line;
            node.meta = d.meta.clone();
            node.patch_path = Some(d.file.clone());
            node.checksum = checksum(&format!("{:?}", d.properties));
            for (k, v) in &d.config {
                merge_config_value(&mut node.config, k, v.clone());
            }
            if !d.tags.is_empty() {
                merge_config_value(&mut node.config, "tags", Value::from(d.tags.clone()));
            }
            let named = semantic::names(d.kind, &d.properties);
            let mut depends_on = Vec::new();
            for (what, name) in named.iter() {
                let found = match *what {
                    "measure" => measures.get(name).cloned(),
                    _ => metrics
                        .contains(name)
                        .then(|| id_of(ResourceType::Metric, name)),
                };
                match found {
                    Some(id) => depends_on.push(id),
                    None => {
                        let known: Vec<&str> = match *what {
                            "measure" => measures.keys().map(String::as_str).collect(),
                            _ => metrics.iter().map(String::as_str).collect(),
                        };
                        let d = Diagnostic::error(
                            "E0118",
                            format!(
                                "{} `{}` names {what} `{name}`, which no {} defines",
                                d.kind.as_str().replace('_', " "),
                                d.name,
                                if *what == "measure" {
                                    "semantic model"
                                } else {
                                    "metric"
                                }
                            ),
                        )
                        .at(d.file.clone(), Some(d.line));
                        self.diags.push(match did_you_mean(name, known) {
                            Some(s) => d.hint(format!("did you mean `{s}`?")),
                            None => d.hint(format!(
                                "declare the {what} in a YAML file's `{}`",
                                if *what == "measure" {
                                    "semantic_models: … measures:"
                                } else {
                                    "metrics:"
                                }
                            )),
                        });
                    }
                }
            }
            if d.kind == ResourceType::SemanticModel {
                let model = d
                    .properties
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match crate::unit_tests::parse_input(model) {
                    Some(crate::unit_tests::Input::Ref(name)) => node.refs.push(RefCall {
                        name,
                        package: None,
                        version: None,
                    }),
                    _ => self.diags.push(
                        Diagnostic::error(
                            "E0118",
                            format!("semantic model `{}` has model `{model}`", d.name),
                        )
                        .at(d.file.clone(), Some(d.line))
                        .hint("write `model: ref('a_model')`"),
                    ),
                }
            }
            depends_on.sort();
            depends_on.dedup();
            node.semantic = Some(Box::new(SemanticInfo {
                properties: d.properties.clone(),
                depends_on,
            }));
            self.insert_unique(node);
        }
    }

    /// Exposures (`exposures:` in schema YAML): what uses the project's data
    /// downstream, in the graph below the nodes it `depends_on`, never run.
    fn add_exposures(&mut self, exposures: &[ExposureDecl]) {
        for e in exposures {
            let mut refs = Vec::new();
            let mut sources = Vec::new();
            let mut metrics = Vec::new();
            for dep in &e.depends_on {
                if let Some(name) = semantic::metric_call(dep) {
                    let id = format!("metric.{}.{name}", self.project());
                    if self.nodes.contains_key(&id) {
                        metrics.push(id);
                    } else {
                        self.diags.push(
                            Diagnostic::error(
                                "E0117",
                                format!(
                                    "exposure `{}` depends on metric `{name}`, which does not exist",
                                    e.name
                                ),
                            )
                            .at(e.file.clone(), Some(e.line)),
                        );
                    }
                    continue;
                }
                match crate::unit_tests::parse_input(dep) {
                    Some(crate::unit_tests::Input::Ref(name)) => refs.push(RefCall {
                        name,
                        package: None,
                        version: None,
                    }),
                    Some(crate::unit_tests::Input::Source(s, t)) => sources.push(vec![s, t]),
                    _ => self.diags.push(
                        Diagnostic::error(
                            "E0117",
                            format!("exposure `{}` depends on `{dep}`", e.name),
                        )
                        .at(e.file.clone(), Some(e.line))
                        .hint("write ref('model') or source('source', 'table')"),
                    ),
                }
            }
            let file = SourceFile::new(e.file.clone(), e.rel.clone(), String::new());
            let fqn = self.fqn(&e.rel, &e.name);
            let mut node =
                self.node_with_fqn(ResourceType::Exposure, &e.name, &file, "exposures", fqn);
            node.description = e.description.clone();
            node.line = e.line;
            node.meta = e.meta.clone();
            for (k, v) in &e.config {
                merge_config_value(&mut node.config, k, v.clone());
            }
            if !e.tags.is_empty() {
                merge_config_value(&mut node.config, "tags", Value::from(e.tags.clone()));
            }
            node.refs = refs;
            node.sources = sources;
            node.exposure = Some(Box::new(e.info.clone()));
            if !metrics.is_empty() {
                node.semantic = Some(Box::new(SemanticInfo {
                    properties: Default::default(),
                    depends_on: metrics,
                }));
            }
            self.insert_unique(node);
        }
    }

    /// Unit tests (`unit_tests:` in schema YAML): one node each, named
    /// `unit_test.<project>.<model>.<name>`, depending on the model it tests.
    fn add_unit_tests(&mut self, tests: &[UnitTestDecl]) {
        for t in tests {
            let model = &t.spec.model;
            if !self
                .nodes
                .contains_key(&format!("model.{}.{model}", self.project()))
            {
                let models = self
                    .nodes
                    .values()
                    .filter(|n| n.resource_type == ResourceType::Model)
                    .map(|n| n.name.as_str());
                let d = Diagnostic::error(
                    "E0116",
                    format!(
                        "unit test `{}` tests model `{model}`, which does not exist",
                        t.name
                    ),
                )
                .at(t.file.clone(), Some(t.line));
                self.diags.push(match did_you_mean(model, models) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("`model:` names a model of this project"),
                });
                continue;
            }
            // dbt: the project, the YAML file's folders, the model, the test.
            let mut fqn = self.fqn(&t.rel, model);
            fqn.push(t.name.clone());
            let file = SourceFile::new(t.file.clone(), t.rel.clone(), String::new());
            let mut node =
                self.node_with_fqn(ResourceType::UnitTest, &t.name, &file, "unit_tests", fqn);
            node.unique_id = format!("unit_test.{}.{model}.{}", self.project(), t.name);
            node.description = t.description.clone();
            node.patch_path = Some(t.file.clone());
            node.line = t.line;
            for (k, v) in &t.config {
                merge_config_value(&mut node.config, k, v.clone());
            }
            node.config
                .entry("materialized".to_string())
                .or_insert_with(|| Value::from("unit"));
            node.refs = vec![RefCall {
                name: model.clone(),
                package: None,
                version: None,
            }];
            node.unit_test = Some(Box::new(t.spec.clone()));
            self.insert_unique(node);
        }
    }

    fn add_singular_tests(&mut self, test_files: &[SourceFile]) {
        for f in test_files.iter().filter(|f| !is_generic_test_file(f)) {
            let name = files::stem(&f.rel).to_string();
            let node = self.base_node(ResourceType::Test, &name, f, "tests");
            self.insert_unique(node);
        }
    }

    fn apply_patches(&mut self, schema: &'a SchemaFiles) {
        for (patches, rt) in [
            (&schema.models, ResourceType::Model),
            (&schema.seeds, ResourceType::Seed),
            (&schema.analyses, ResourceType::Analysis),
            (&schema.snapshots, ResourceType::Snapshot),
        ] {
            for p in patches {
                self.apply_patch(p, rt);
            }
        }
    }

    /// A versioned model (`versions:`): each version's file
    /// (`<name>_v<v>.sql`, or `defined_in`) becomes node
    /// `model.<project>.<name>.v<v>`, named `<name>` (its relation is named
    /// `<name>_v<v>` with the others), and gets that version's properties.
    fn apply_versions(&mut self, p: &'a Patch) {
        let numeric = |v: &str| v.parse::<f64>().ok();
        let latest = p.latest_version.clone().or_else(|| {
            p.versions
                .iter()
                .filter_map(|v| v.version.clone())
                .max_by(|a, b| match (numeric(a), numeric(b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    _ => a.cmp(b),
                })
        });
        for vp in &p.versions {
            let Some(v) = vp.version.clone() else {
                continue;
            };
            let stem = vp
                .defined_in
                .clone()
                .unwrap_or_else(|| format!("{}_v{v}", p.name));
            let Some(mut node) = self
                .nodes
                .remove(&format!("model.{}.{stem}", self.project()))
            else {
                self.diags.push(
                    Diagnostic::error(
                        "E0110",
                        format!("version {v} of model `{}` has no file {stem}.sql", p.name),
                    )
                    .at(p.file.clone(), Some(vp.line))
                    .hint(format!(
                        "name the version's file {stem}.sql, or point `defined_in:` at it"
                    )),
                );
                continue;
            };
            node.unique_id = format!("model.{}.{}.v{v}", self.project(), p.name);
            node.name = p.name.clone();
            if let Some(last) = node.fqn.last_mut() {
                *last = p.name.clone();
            }
            node.fqn.push(format!("v{v}"));
            node.version = Some(v);
            node.latest_version = latest.clone();
            let id = node.unique_id.clone();
            self.nodes.insert(id.clone(), node);
            self.apply_patch_to(&id, vp);
        }
    }

    fn apply_patch(&mut self, p: &'a Patch, rt: ResourceType) {
        if rt == ResourceType::Model && !p.versions.is_empty() {
            return self.apply_versions(p);
        }
        let unique_id = format!("{}.{}.{}", rt.as_str(), self.project(), p.name);
        if !self.nodes.contains_key(&unique_id) {
            let candidates: Vec<&str> = self
                .nodes
                .values()
                .filter(|n| n.resource_type == rt)
                .map(|n| n.name.as_str())
                .collect();
            let mut d = Diagnostic::warning(
                "E0110",
                format!(
                    "{} `{}` is described in YAML but no such {} exists",
                    rt.as_str(),
                    p.name,
                    rt.as_str()
                ),
            )
            .at(p.file.clone(), Some(p.line));
            d = match did_you_mean(&p.name, candidates.iter().copied()) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d.hint(format!(
                    "create {}/{}.sql or remove the entry",
                    self.config.model_paths[0], p.name
                )),
            };
            self.diags.push(d);
            return;
        }
        self.apply_patch_to(&unique_id, p);
    }

    /// Patch `p` (description, columns, config, tests) onto node `unique_id`.
    fn apply_patch_to(&mut self, unique_id: &str, p: &'a Patch) {
        let Some(node) = self.nodes.get_mut(unique_id) else {
            return;
        };
        let rt = node.resource_type;
        if let Some(prev) = &node.patch_path {
            self.diags.push(
                Diagnostic::error(
                    "E0111",
                    format!(
                        "{} `{}` is described twice in YAML (also in {prev})",
                        rt.as_str(),
                        p.name
                    ),
                )
                .at(p.file.clone(), Some(p.line)),
            );
            return;
        }
        node.patch_path = Some(p.file.clone());
        node.patch_line = Some(p.line);
        node.description = p.description.clone();
        node.columns = p.columns.clone();
        node.constraints = p.constraints.clone();
        if let Some(t) = &p.time_spine {
            node.time_spine = Some(Box::new(t.clone()));
        }
        node.meta = p.meta.clone();
        for (k, v) in &p.config {
            merge_config_value(&mut node.config, k, v.clone());
        }
        if !p.tags.is_empty() {
            merge_config_value(&mut node.config, "tags", Value::from(p.tags.clone()));
        }
        let name = node.name.clone();
        let version = node.version.clone();
        for spec in &p.tests {
            self.tests.push(PendingTest {
                spec,
                attached: unique_id.to_string(),
                model_name: name.clone(),
                table: None,
                version: version.clone(),
            });
        }
    }

    /// A generic test node named like dbt names them
    /// (`not_null_orders_id`, `accepted_values_orders_status__a__b`).
    /// Build every declared generic test's node (in parallel: a project has
    /// several tests per model) and add them in declaration order.
    fn add_generic_tests(&mut self) {
        let tests = std::mem::take(&mut self.tests);
        let nodes: Vec<Node> = tests
            .par_iter()
            .map(|t| {
                self.generic_test(
                    t.spec,
                    &t.attached,
                    &t.model_name,
                    t.table.as_deref(),
                    t.version.as_deref(),
                )
            })
            .collect();
        for node in nodes {
            // The identical test declared twice: dbt keeps one.
            if !self.nodes.contains_key(&node.unique_id) {
                self.nodes.insert(node.unique_id.clone(), node);
            }
        }
    }

    fn generic_test(
        &self,
        spec: &TestSpec,
        attached: &str,
        model_name: &str,
        table: Option<&str>,
        version: Option<&str>,
    ) -> Node {
        let (namespace, short) = match spec.test_name.split_once('.') {
            Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
            None => (None, spec.test_name.clone()),
        };
        let target = match (table, version) {
            (Some(t), _) => format!("source_{model_name}_{t}"),
            (None, Some(v)) => format!("{model_name}_v{v}"),
            (None, None) => model_name.to_string(),
        };
        let mut kwargs: BTreeMap<String, Value> = spec.kwargs.clone().into_iter().collect();
        if let Some(c) = &spec.column_name {
            kwargs.insert("column_name".into(), Value::String(c.clone()));
        }
        // The tested relation, as dbt's test builder writes it.
        let target_call = match (table, version) {
            (Some(t), _) => format!("source('{model_name}', '{t}')"),
            (None, Some(v)) => format!("ref('{model_name}', version='{v}')"),
            (None, None) => format!("ref('{model_name}')"),
        };
        kwargs.insert(
            "model".into(),
            Value::String(format!("{{{{ {target_call} }}}}")),
        );
        // dbt names the node with the full synthesized name and, when that
        // is 64 characters or longer, aliases it (and its compiled file) by
        // the short, hashed one.
        let (name, short_alias) = match &spec.custom_name {
            Some(n) => (n.clone(), None),
            None => {
                let (short_name, full) =
                    generic_test_name(namespace.as_deref(), &short, &target, spec);
                let alias = (short_name != full).then_some(short_name);
                (full, alias)
            }
        };
        // The hash over the metadata as dbt builds it (its `model` wraps
        // the target in `get_where_subquery`), so unique ids match dbt's.
        let mut dbt_kwargs = kwargs.clone();
        dbt_kwargs.insert(
            "model".into(),
            Value::String(format!("{{{{ get_where_subquery({target_call}) }}}}")),
        );
        let metadata = serde_json::json!({
            "namespace": namespace,
            "name": short,
            "kwargs": dbt_kwargs,
        });
        let hash = dbt_test_hash(&name, &metadata);
        let unique_id = format!("test.{}.{}.{}", self.project(), name, hash);
        let mut fqn = vec![self.project().to_string()];
        fqn.extend(files::dirs(self.rel_in_resource(&spec.file)));
        fqn.push(name.clone());
        let mut config = self.config.tree_config("tests", &fqn);
        for (k, v) in &spec.config {
            merge_config_value(&mut config, k, v.clone());
        }
        // dbt's `path` for a generic test: its compiled name, as a file.
        let path = format!("{}.sql", short_alias.as_deref().unwrap_or(&name));
        if let Some(alias) = short_alias {
            config
                .entry("alias".to_string())
                .or_insert(Value::String(alias));
        }
        // In dbt's order: what the arguments name (as declared), then the
        // tested model or source (its `model` argument comes last).
        let mut refs = Vec::new();
        let mut sources = Vec::new();
        for v in spec.kwargs.values() {
            if let Some(s) = v.as_str() {
                refs.extend(refs_in(s));
                sources.extend(sources_in(s));
            }
        }
        match table {
            Some(t) => sources.push(vec![model_name.to_string(), t.to_string()]),
            None => refs.push(RefCall {
                name: model_name.to_string(),
                package: None,
                version: version.map(str::to_string),
            }),
        }
        Node {
            unique_id,
            resource_type: ResourceType::Test,
            name,
            package_name: self.project().to_string(),
            path,
            original_file_path: spec.file.clone(),
            fqn,
            database: None,
            schema: String::new(),
            alias: String::new(),
            relation_name: None,
            raw_code: String::new(),
            language: "sql".into(),
            compiled_code: None,
            compiled_path: None,
            config,
            description: spec.description.clone(),
            columns: Default::default(),
            meta: Default::default(),
            tags: Vec::new(),
            refs,
            sources,
            depends_on: DependsOn::default(),
            patch_path: Some(spec.file.clone()),
            source: None,
            test_metadata: Some(Box::new(TestMetadata {
                name: short,
                kwargs,
                namespace,
            })),
            column_name: spec.column_name.clone(),
            attached_node: Some(attached.to_string()),
            unit_test: None,
            exposure: None,
            semantic: None,
            macros_used: Vec::new(),
            checksum: checksum(&format!("{:?}", spec)),
            line: spec.line,
            package_dir: self.package_dir(),
            version: None,
            latest_version: None,
            constraints: Vec::new(),
            patch_line: None,
            time_spine: None,
        }
    }
}

/// dbt's `synthesize_generic_test_names`: `<test>_<model>_` followed by
/// the cleaned argument values in sorted argument order (column first);
/// returns `(short, full)`, the short one truncated with an md5 label when
/// the full one is 64 characters or longer.
fn generic_test_name(
    namespace: Option<&str>,
    short: &str,
    target: &str,
    spec: &TestSpec,
) -> (String, String) {
    let mut args: BTreeMap<&str, Value> = spec
        .kwargs
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if let Some(c) = &spec.column_name {
        args.insert("column_name", Value::String(c.clone()));
    }
    let flat: Vec<String> = args
        .iter()
        .filter(|(k, _)| **k != "model")
        .flat_map(|(_, v)| match v {
            Value::Object(o) => o.values().map(py_str).collect::<Vec<_>>(),
            Value::Array(a) => a.iter().map(py_str).collect(),
            other => vec![py_str(other)],
        })
        .map(|a| clean_name(&a))
        .collect();
    let identifier = match namespace {
        Some(ns) => format!("{ns}_{short}_{target}"),
        None => format!("{short}_{target}"),
    };
    let full = format!("{identifier}_{}", flat.join("__"));
    if full.len() >= 64 {
        let label = md5_hex(&full);
        let trunc: String = identifier.chars().take(30).collect();
        (format!("{trunc}_{label}"), full)
    } else {
        (full.clone(), full)
    }
}

/// A value as Python's `str()` prints it (what dbt puts in test names,
/// what dbt-duckdb formats locations with).
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => crate::templating::pyjson::number(n),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_str_repr(s),
        other => py_str(other),
    }
}

/// dbt's cleaning of test names: every run of characters other than
/// letters, digits and `_` becomes one `_`.
fn clean_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// `ref('x')` / `ref("pkg", "x")` calls inside a Jinja string (test arguments).
pub fn refs_in(s: &str) -> Vec<RefCall> {
    calls_in(s, "ref")
        .into_iter()
        .filter_map(|args| match args.as_slice() {
            [n] => Some(RefCall {
                name: n.clone(),
                package: None,
                version: None,
            }),
            [p, n] => Some(RefCall {
                name: n.clone(),
                package: Some(p.clone()),
                version: None,
            }),
            _ => None,
        })
        .collect()
}

/// `source('s', 't')` calls inside a Jinja string.
pub fn sources_in(s: &str) -> Vec<Vec<String>> {
    calls_in(s, "source")
        .into_iter()
        .filter(|a| a.len() == 2)
        .collect()
}

fn calls_in(s: &str, func: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pat = format!("{func}(");
    let mut rest = s;
    while let Some(i) = rest.find(&pat) {
        let before_ok = i == 0
            || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        rest = &rest[i + pat.len()..];
        let Some(end) = rest.find(')') else { break };
        if before_ok {
            let args: Vec<String> = rest[..end]
                .split(',')
                .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                .filter(|a| !a.is_empty())
                .collect();
            out.push(args);
        }
    }
    out
}

/// Set a config value on a node from a model's `config()` call.
pub fn apply_inline_config(node: &mut Node, inline: &Config) {
    for (k, v) in inline {
        merge_config_value(&mut node.config, k, v.clone());
    }
}

/// The MD5 digest of `text` in lower-case hex (dbt's `local_md5`).
/// Python's `repr` of a string: single quotes unless the text holds a
/// single quote and no double quote, backslashes and control characters
/// escaped.
pub(crate) fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// dbt's hash of a generic test (`create_test_node`): the md5 of its name
/// followed by the `repr` of its test metadata with every mapping's keys
/// sorted and every leaf as its `str()`; the last ten hex digits.
fn dbt_test_hash(name: &str, metadata: &Value) -> String {
    fn hashable(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let items: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{}: {}", py_str_repr(k), hashable(&m[k])))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(hashable).collect();
                format!("[{}]", items.join(", "))
            }
            leaf => py_str_repr(&py_str(leaf)),
        }
    }
    let digest = md5_hex(&format!("{name}{}", hashable(metadata)));
    digest[digest.len() - 10..].to_string()
}

pub fn md5_hex(text: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialization_blocks_are_macros_named_as_dbt_names_them() {
        let text = "{% macro helper() %}{% endmacro %}\n{%- materialization logged, default -%}x{%- endmaterialization %}\n{% materialization fast, adapter = \"duckdb\", supported_languages=['sql'] %}y{% endmaterialization %}\n{% materialization bare %}z{% endmaterialization %}\n{% test positive(model, column_name) %}w{% endtest %}";
        let f = SourceFile::new("macros/m.sql".into(), "m.sql".into(), text.into());
        assert_eq!(
            macro_file(f).names,
            [
                "helper",
                "test_positive",
                "materialization_logged_default",
                "materialization_fast_duckdb",
                "materialization_bare_default"
            ]
        );
    }

    #[test]
    fn snapshot_blocks_keep_their_lines_and_names() {
        let text = "-- two snapshots\n{%- snapshot a -%}\nselect 1\n{%- endsnapshot %}\n\n{% snapshot b %}\n  {% if true %}select 2{% endif %}\n{% endsnapshot %}\n";
        let found = blocks(text, "snapshot", "snapshots/s.sql").unwrap();
        let got: Vec<(&str, usize)> = found.iter().map(|b| (b.name, b.line)).collect();
        assert_eq!(got, [("a", 2), ("b", 6)]);
        assert_eq!(snapshot_code(text, &found[0]), "\n\nselect 1\n");
        assert_eq!(
            snapshot_code(text, &found[1]).lines().nth(6),
            Some("  {% if true %}select 2{% endif %}")
        );
        // A block that never ends is an error at its opening line.
        let open = format!("{text}{{% snapshot unterminated %}}\nselect 3\n");
        let e = blocks(&open, "snapshot", "snapshots/s.sql").err().unwrap();
        assert_eq!(
            (e.file.as_deref(), e.line),
            (Some("snapshots/s.sql"), Some(9))
        );
        assert!(e.message.contains("never closed"), "{}", e.message);
    }

    #[test]
    fn finds_macro_and_test_blocks() {
        let names = block_names(
            "{% macro a(x) %}{% endmacro %}\n{%- test b(model) -%}{% endtest %}",
            &["macro", "test"],
        );
        assert_eq!(
            names,
            vec![("macro".into(), "a".into()), ("test".into(), "b".into())]
        );
    }

    #[test]
    fn generic_test_names_match_dbt() {
        let spec = |col: &str, kwargs: serde_json::Value| TestSpec {
            test_name: String::new(),
            custom_name: None,
            column_name: Some(col.to_string()),
            kwargs: kwargs.as_object().cloned().unwrap_or_default(),
            config: Default::default(),
            description: String::new(),
            file: String::new(),
            line: 1,
        };
        let s = spec(
            "author_id",
            serde_json::json!({"to": "ref('int_users')", "field": "id"}),
        );
        assert_eq!(
            generic_test_name(None, "relationships", "int_tweets", &s).1,
            "relationships_int_tweets_author_id__id__ref_int_users_"
        );
        let s = spec(
            "status",
            serde_json::json!({"values": ["placed", "shipped"]}),
        );
        assert_eq!(
            generic_test_name(None, "accepted_values", "orders", &s).1,
            "accepted_values_orders_status__placed__shipped"
        );
        let s = spec("id", serde_json::json!({}));
        assert_eq!(
            generic_test_name(None, "not_null", "source_raw_tweets", &s).1,
            "not_null_source_raw_tweets_id"
        );
        let long = spec(
            "a_rather_long_column_name",
            serde_json::json!({"values": ["first_value", "second_value"]}),
        );
        let (n, full) = generic_test_name(None, "accepted_values", "a_long_model_name", &long);
        assert_eq!(n.len(), 30 + 1 + 32, "{n}");
        assert!(n.starts_with("accepted_values_a_long_model_n_"), "{n}");
        assert_eq!(
            full,
            "accepted_values_a_long_model_name_a_rather_long_column_name__first_value__second_value"
        );
    }

    #[test]
    fn checksums_are_dbts() {
        // What dbt-core 1.12 writes (sha256 of the whitespace-normalized
        // text; a seed's trimmed text; a large seed's path).
        assert_eq!(
            checksum("-- a model\n\nselect  1 as id\n  from x\n"),
            "d65c604eaee709d2211ed889d2c0eb61897ef5f66f5dd14c5c9d2e4487a04e50"
        );
        let seed = SourceFile::new(
            "seeds/s.csv".into(),
            "s.csv".into(),
            "id,name\n1,a\n\n".into(),
        );
        assert_eq!(
            seed_checksum(&seed),
            "8785bd65e2099267252e07a04b3ad2eb72f692775aae46d95ff6a49f0a864e4f"
        );
        let crlf = SourceFile::new(
            "seeds/s.csv".into(),
            "s.csv".into(),
            "id,name\r\n1,a\r\n".into(),
        );
        assert_eq!(seed_checksum(&crlf), seed_checksum(&seed));
        let big = SourceFile::new(
            "seeds/big.csv".into(),
            "big.csv".into(),
            format!("{}seeds/big.csv", files::TOO_LARGE_TO_HASH),
        );
        assert_eq!(seed_checksum(&big), "path:seeds/big.csv");
    }

    #[test]
    fn test_hashes_are_dbts() {
        // Unique ids dbt-core 1.12 gave these tests (dbt-project-evaluator's
        // integration project).
        let unique = serde_json::json!({
            "namespace": null, "name": "unique",
            "kwargs": {"column_name": "id", "model": "{{ get_where_subquery(ref('dim_model_7')) }}"},
        });
        assert_eq!(
            dbt_test_hash("unique_dim_model_7_id", &unique),
            "418f4d38fd"
        );
        let combination = serde_json::json!({
            "namespace": "dbt_utils", "name": "unique_combination_of_columns",
            "kwargs": {
                "combination_of_columns": ["node_unique_id", "name"],
                "model": "{{ get_where_subquery(ref('stg_columns_dpe')) }}",
            },
        });
        assert_eq!(
            dbt_test_hash(
                "dbt_utils_unique_combination_of_columns_stg_columns_dpe_node_unique_id__name",
                &combination
            ),
            "fbe4f0b520"
        );
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a'\"b\\"), "'a\\'\"b\\\\'");
    }

    #[test]
    fn refs_in_test_arguments() {
        let r = refs_in("ref('users')");
        assert_eq!(r[0].name, "users");
        assert_eq!(
            sources_in("source('raw', 'tweets')"),
            vec![vec!["raw".to_string(), "tweets".to_string()]]
        );
    }

    #[test]
    fn docs_blocks_are_extracted() {
        let d = docs_blocks(
            "{% docs __overview__ %}\n# Hi\n{% enddocs %}\n{% docs x %}y{% enddocs %}",
            "models/docs.md",
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                ("__overview__".into(), "# Hi".into()),
                ("x".into(), "y".into())
            ]
        );
    }
}
