//! Node selection: dbt's `--select` / `--exclude` syntax, evaluated against a
//! project's nodes and their DAG.
//!
//! # Syntax
//!
//! Every `--select` argument holds one or more space-separated *specs*; their
//! results are unioned. A spec containing commas is an intersection of its
//! comma-separated parts. `--exclude` is parsed the same way and subtracted at
//! the end. No `--select` at all means every enabled node (dbt's default of
//! `fqn:* source:* …`); the caller narrows the result to the resource types its
//! command covers.
//!
//! A single spec is `[@][N+]method:value[+N]` (or a bare `value`):
//!
//! * `+x` / `N+x` — `x` and its ancestors (up to `N` generations);
//! * `x+` / `x+N` — `x` and its descendants (up to `N` generations);
//! * `@x` — `x`, its descendants, and every ancestor of those descendants
//!   (`@` cannot be combined with a `+` suffix, as in dbt).
//!
//! Methods (values accept fnmatch wildcards `*`, `?`, `[…]` unless noted):
//!
//! * bare value — dbt's default method: `path` if the value contains `/`,
//!   `file` if it ends in `.sql`, `.py` or `.csv`, otherwise `fqn`;
//! * `fqn:` — a node's name, or a dotted prefix of its fully qualified name
//!   (`my_project.staging`, `staging.stg_users`), with or without the package;
//!   from the first wildcard part on, the rest of the fqn is fnmatched as a
//!   dotted string. A wildcard without dots (`stg_*`) also matches node names
//!   at any depth, as dbt Fusion does (dbt-core would need `*.stg_*`). Sources
//!   are not matched;
//! * `tag:`, `package:` (`this` is the current project), `file:` (file name
//!   with or without extension), `test_name:`, `group:`;
//! * `path:` — a file or directory relative to the project root (a glob;
//!   `*` stays within one path component, `**` spans several);
//! * `source:` — `source_name`, `source_name.table` or
//!   `package.source_name.table`;
//! * `resource_type:` — one of dbt's node types (no wildcards);
//! * `config.<key>[.<key>…]:` — equality with a string config value, membership
//!   in a list value, or `true`/`false` for booleans (no wildcards; numbers never
//!   match, as in dbt; `config.severity` compares case-insensitively);
//! * `test_type:` — `generic`, `singular` (also dbt's legacy `schema`), `data`
//!   (both) and `unit` (unit tests);
//! * `unit_test:`, `exposure:`, `metric:`, `semantic_model:`, `saved_query:` —
//!   those resources by name or fqn;
//! * `access:` — a model's access (`protected` by default);
//! * `state:` — `new`, `old`, `modified`, `unmodified`, `modified.body`, … —
//!   evaluated by the caller through [`SelectContext::state`]; without it
//!   `state:` is an error saying `--state` is required;
//! * `version:` — `latest`, `old`, `prerelease` (against `latest_version`) or
//!   `none` (models without versions);
//! * `result:`, `source_status:` — recognized but not supported.
//!
//! # Tests ("indirect selection")
//!
//! As in dbt, every spec is expanded to the tests attached to what it selected
//! before the set operations are applied, so excluding a model also excludes
//! its tests. [`IndirectSelection`] implements all four of dbt's modes:
//! `eager` (the default: a test is selected when any of its parents is),
//! `cautious` (all parents), `buildable` (all parents, or their ancestors) and
//! `empty` (never).
//!
//! # Errors and warnings
//!
//! A spec that matches nothing is not an error: it yields a warning in
//! [`Selection::warnings`], worded like dbt's. Malformed specs, unknown methods
//! (with a did-you-mean suggestion) and invalid method values are
//! [`SelectError`]s.
//!
//! Disabled nodes (`enabled: false`) are never selected and are not walked
//! through by graph operators, like dbt's enabled-only selection graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::graph::Graph;
use crate::project::node::{Node, ResourceType};

/// The caller's evaluation of a `state:` selector: given the selector value
/// (e.g. `modified.body`) and a node, whether the node matches. `Err` aborts the
/// selection with that message.
pub type StateCheck<'a> = &'a dyn Fn(&str, &Node) -> Result<bool, String>;

/// dbt's `--indirect-selection`: how tests follow the nodes they test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndirectSelection {
    /// A test is selected when any of its parents is selected.
    #[default]
    Eager,
    /// A test is selected only when all of its parents are selected.
    Cautious,
    /// Like `Cautious`, but parents may also be ancestors of the selection.
    Buildable,
    /// Tests are never selected indirectly.
    Empty,
}

impl IndirectSelection {
    pub fn parse(s: &str) -> Option<IndirectSelection> {
        Some(match s {
            "eager" => IndirectSelection::Eager,
            "cautious" => IndirectSelection::Cautious,
            "buildable" => IndirectSelection::Buildable,
            "empty" => IndirectSelection::Empty,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IndirectSelection::Eager => "eager",
            IndirectSelection::Cautious => "cautious",
            IndirectSelection::Buildable => "buildable",
            IndirectSelection::Empty => "empty",
        }
    }
}

/// Everything selection needs besides the nodes, the graph and the specs.
#[derive(Clone, Copy, Default)]
pub struct SelectContext<'a> {
    /// The root project's name, for `package:this`.
    pub project_name: Option<&'a str>,
    /// The project directory, so that absolute `path:` values can be resolved.
    pub project_root: Option<&'a Path>,
    pub indirect_selection: IndirectSelection,
    /// Evaluates `state:` selectors; `None` when `--state` was not given.
    // TODO: wire to the `--state` manifest comparison once it exists.
    pub state: Option<StateCheck<'a>>,
}

impl std::fmt::Debug for SelectContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectContext")
            .field("project_name", &self.project_name)
            .field("project_root", &self.project_root)
            .field("indirect_selection", &self.indirect_selection)
            .field("state", &self.state.map(|_| "<fn>"))
            .finish()
    }
}

/// The selected node ids, plus warnings for specs that matched nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub ids: BTreeSet<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("invalid selector spec \"{spec}\": {reason}")]
    Malformed { spec: String, reason: String },
    #[error(
        "invalid selector spec \"{spec}\": '{method}' is not a valid method name{}",
        did_you_mean(suggestion)
    )]
    UnknownMethod {
        spec: String,
        method: String,
        suggestion: Option<String>,
    },
    #[error("invalid selector spec \"{spec}\": the '{method}' method is not supported by sluice")]
    Unsupported { spec: String, method: String },
    #[error(
        "invalid selector spec \"{spec}\": invalid resource_type \"{value}\"{}",
        did_you_mean(suggestion)
    )]
    UnknownResourceType {
        spec: String,
        value: String,
        suggestion: Option<String>,
    },
    #[error("invalid selector spec \"{spec}\": {message}")]
    InvalidValue { spec: String, message: String },
    #[error("selector \"{spec}\" compares against a previous state: --state is required")]
    StateRequired { spec: String },
    #[error("selector \"{spec}\": {message}")]
    State { spec: String, message: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

/// The closest candidate to `word`, if any is reasonably close: a small edit
/// distance (transpositions count once) or a high Jaro-Winkler similarity.
fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    let max_edits = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(word, c),
                strsim::jaro_winkler(word, c),
                c,
            )
        })
        .filter(|(edits, similarity, _)| *edits <= max_edits || *similarity > 0.85)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c.to_string())
}

// ---------------------------------------------------------------------------
// Parsing

/// A selection method (the part of a spec before `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Fqn,
    Tag,
    Group,
    Access,
    Source,
    Path,
    File,
    Package,
    Config,
    TestName,
    TestType,
    ResourceType,
    State,
    Exposure,
    Metric,
    Result,
    SourceStatus,
    Version,
    SemanticModel,
    SavedQuery,
    UnitTest,
}

const METHODS: [(Method, &str); 21] = [
    (Method::Fqn, "fqn"),
    (Method::Tag, "tag"),
    (Method::Group, "group"),
    (Method::Access, "access"),
    (Method::Source, "source"),
    (Method::Path, "path"),
    (Method::File, "file"),
    (Method::Package, "package"),
    (Method::Config, "config"),
    (Method::TestName, "test_name"),
    (Method::TestType, "test_type"),
    (Method::ResourceType, "resource_type"),
    (Method::State, "state"),
    (Method::Exposure, "exposure"),
    (Method::Metric, "metric"),
    (Method::Result, "result"),
    (Method::SourceStatus, "source_status"),
    (Method::Version, "version"),
    (Method::SemanticModel, "semantic_model"),
    (Method::SavedQuery, "saved_query"),
    (Method::UnitTest, "unit_test"),
];

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        METHODS.iter().find(|(_, n)| *n == s).map(|(m, _)| *m)
    }

    pub fn as_str(self) -> &'static str {
        METHODS
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("", |(_, n)| n)
    }

    /// dbt's method for a spec without `method:`.
    fn default_for(value: &str) -> Method {
        let lower = value.to_ascii_lowercase();
        if value.contains('/') || value.contains('\\') {
            Method::Path
        } else if [".sql", ".py", ".csv"]
            .iter()
            .any(|ext| lower.ends_with(ext))
        {
            Method::File
        } else {
            Method::Fqn
        }
    }
}

/// A graph operator's depth: `None` means unlimited.
pub type Depth = Option<usize>;

/// One parsed spec, e.g. `2+config.materialized:table+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criterion {
    pub raw: String,
    pub method: Method,
    /// The dotted arguments after the method name (`config.a.b` → `[a, b]`).
    pub args: Vec<String>,
    pub value: String,
    /// The `@` operator.
    pub childrens_parents: bool,
    /// The `+` prefix, with its depth.
    pub parents: Option<Depth>,
    /// The `+` suffix, with its depth.
    pub children: Option<Depth>,
    /// A selector definition's own `indirect_selection` (else the command's).
    pub indirect: Option<IndirectSelection>,
}

/// Parse a single spec (no spaces or commas).
pub fn parse_spec(raw: &str) -> Result<Criterion, SelectError> {
    let malformed = |reason: &str| SelectError::Malformed {
        spec: raw.to_string(),
        reason: reason.to_string(),
    };
    let (childrens_parents, rest) = match raw.strip_prefix('@') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (parents, rest) = split_parents(rest).map_err(|r| malformed(&r))?;
    let (rest, children) = split_children(rest).map_err(|r| malformed(&r))?;
    let (method_name, value) = split_method(rest);
    check_value(value).map_err(|r| malformed(&r))?;
    if childrens_parents && children.is_some() {
        return Err(malformed(
            "the \"@\" prefix and \"+\" suffix are incompatible",
        ));
    }
    let (method, args) = resolve_method(raw, method_name, value)?;
    Ok(Criterion {
        raw: raw.to_string(),
        method,
        args,
        value: value.to_string(),
        childrens_parents,
        parents,
        children,
        indirect: None,
    })
}

/// `N+rest` / `+rest` → the parents operator; digits not followed by `+`
/// belong to the value.
fn split_parents(s: &str) -> Result<(Option<Depth>, &str), String> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    match s[digits..].strip_prefix('+') {
        Some(rest) => Ok((Some(parse_depth(&s[..digits])?), rest)),
        None => Ok((None, s)),
    }
}

/// `rest+N` / `rest+` → the children operator.
fn split_children(s: &str) -> Result<(&str, Option<Depth>), String> {
    match s.rsplit_once('+') {
        Some((rest, digits)) if digits.chars().all(|c| c.is_ascii_digit()) => {
            Ok((rest, Some(parse_depth(digits)?)))
        }
        _ => Ok((s, None)),
    }
}

fn parse_depth(digits: &str) -> Result<Depth, String> {
    if digits.is_empty() {
        return Ok(None);
    }
    digits
        .parse::<usize>()
        .map(Some)
        .map_err(|_| format!("graph operator depth {digits} is too large"))
}

/// `method:value` → (Some(method), value) when the prefix is a run of word
/// characters and dots (dbt's `[\w.]+`); otherwise the whole string is the value.
fn split_method(s: &str) -> (Option<&str>, &str) {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    match s[end..].strip_prefix(':') {
        Some(value) if end > 0 => (Some(&s[..end]), value),
        _ => (None, s),
    }
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("no search value".to_string())
    } else if value.contains('+') {
        Err("\"+\" is only allowed at the start or end of a spec".to_string())
    } else if value.starts_with('@') {
        Err("\"@\" is only allowed at the very start of a spec".to_string())
    } else {
        Ok(())
    }
}

fn resolve_method(
    raw: &str,
    name: Option<&str>,
    value: &str,
) -> Result<(Method, Vec<String>), SelectError> {
    let Some(name) = name else {
        return Ok((Method::default_for(value), Vec::new()));
    };
    let mut parts = name.split('.');
    let head = parts.next().unwrap_or_default();
    let args: Vec<String> = parts.map(str::to_string).collect();
    let method = Method::parse(head).ok_or_else(|| SelectError::UnknownMethod {
        spec: raw.to_string(),
        method: head.to_string(),
        suggestion: suggest(head, METHODS.iter().map(|(_, n)| *n)),
    })?;
    check_args(raw, method, &args)?;
    Ok((method, args))
}

fn check_args(raw: &str, method: Method, args: &[String]) -> Result<(), SelectError> {
    let message = match (method, args.is_empty()) {
        (Method::Config, true) => "config selectors need a key, e.g. config.materialized:table",
        (Method::Config, false) if args.iter().any(String::is_empty) => {
            "config keys cannot be empty"
        }
        (Method::Config, false) | (_, true) => return Ok(()),
        (_, false) => "only the config method takes dotted arguments",
    };
    Err(SelectError::InvalidValue {
        spec: raw.to_string(),
        message: message.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Spec trees (dbt's SelectionUnion / Intersection / Difference)

/// How a group combines its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Intersection,
    Difference,
}

/// A parsed selection: `--select`/`--exclude`, or a `selectors.yml`
/// definition (see [`crate::graph::selectors`]).
#[derive(Debug)]
pub enum Spec {
    /// Every enabled node (no `--select`).
    All,
    Atom(Criterion),
    Group {
        op: SetOp,
        parts: Vec<Spec>,
        raw: String,
        /// Warn when this group selects nothing.
        expect_exists: bool,
    },
}

impl Spec {
    /// One criterion (`+tag:nightly`), its tests following it as
    /// `indirect` says (else as the command says).
    pub fn criterion(raw: &str, indirect: Option<IndirectSelection>) -> Result<Spec, SelectError> {
        parse_spec(raw).map(|c| Spec::Atom(Criterion { indirect, ..c }))
    }

    /// `--select`'s syntax: space-separated specs, commas intersecting.
    pub fn cli(args: &[String]) -> Result<Spec, SelectError> {
        parse_union(args)
    }

    /// What all of `parts` select; warns under `raw` when that is nothing.
    pub fn union(parts: Vec<Spec>, raw: String) -> Spec {
        Spec::Group {
            op: SetOp::Union,
            parts,
            raw,
            expect_exists: true,
        }
    }

    /// What any of `parts` selects, without a warning when that is nothing.
    pub fn any_of(parts: Vec<Spec>) -> Spec {
        Spec::Group {
            op: SetOp::Union,
            parts,
            raw: String::new(),
            expect_exists: false,
        }
    }

    /// What each of `parts` selects.
    pub fn intersection(parts: Vec<Spec>, raw: String) -> Spec {
        Spec::Group {
            op: SetOp::Intersection,
            parts,
            raw,
            expect_exists: true,
        }
    }

    /// What `include` selects and `exclude` does not.
    pub fn difference(include: Spec, exclude: Spec) -> Spec {
        Spec::Group {
            op: SetOp::Difference,
            parts: vec![include, exclude],
            raw: String::new(),
            expect_exists: false,
        }
    }
}

/// `["a b", "c,d"]` → union(intersection(a), intersection(b), intersection(c, d)).
fn parse_union(args: &[String]) -> Result<Spec, SelectError> {
    let mut parts = Vec::new();
    for raw in args.iter().flat_map(|a| a.split_whitespace()) {
        let atoms = raw
            .split(',')
            .map(|p| parse_spec(p).map(Spec::Atom))
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(Spec::Group {
            op: SetOp::Intersection,
            parts: atoms,
            raw: raw.to_string(),
            expect_exists: true,
        });
    }
    Ok(Spec::Group {
        op: SetOp::Union,
        parts,
        raw: args.join(" "),
        expect_exists: false,
    })
}

fn parse_selection(select: &[String], exclude: &[String]) -> Result<Spec, SelectError> {
    let include = if select.is_empty() {
        Spec::All
    } else {
        parse_union(select)?
    };
    Ok(Spec::Group {
        op: SetOp::Difference,
        parts: vec![include, parse_union(exclude)?],
        raw: String::new(),
        expect_exists: false,
    })
}

// ---------------------------------------------------------------------------
// Evaluation

/// Select node ids from `nodes` by dbt's `--select`/`--exclude` syntax.
///
/// `graph` must have been built from `nodes`. The result holds every matching
/// enabled node, of any resource type.
pub fn select(
    nodes: &BTreeMap<String, Node>,
    graph: &Graph,
    select: &[String],
    exclude: &[String],
    ctx: &SelectContext,
) -> Result<Selection, SelectError> {
    select_spec(nodes, graph, &parse_selection(select, exclude)?, ctx)
}

/// [`select`] for an already parsed selection (a named selector's).
pub fn select_spec(
    nodes: &BTreeMap<String, Node>,
    graph: &Graph,
    spec: &Spec,
    ctx: &SelectContext,
) -> Result<Selection, SelectError> {
    let selector = Selector::new(nodes, graph, ctx);
    let mut warnings = Vec::new();
    let (direct, _) = selector.eval(spec, &mut warnings)?;
    Ok(Selection {
        ids: direct.into_iter().map(str::to_string).collect(),
        warnings,
    })
}

type Ids<'a> = BTreeSet<&'a str>;

struct Selector<'a> {
    nodes: &'a BTreeMap<String, Node>,
    graph: &'a Graph,
    ctx: &'a SelectContext<'a>,
    /// Enabled nodes: the only ones that can be selected or walked through.
    universe: Ids<'a>,
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

impl<'a> Selector<'a> {
    fn new(
        nodes: &'a BTreeMap<String, Node>,
        graph: &'a Graph,
        ctx: &'a SelectContext<'a>,
    ) -> Self {
        let universe = nodes
            .iter()
            .filter(|(_, n)| n.enabled())
            .map(|(id, _)| id.as_str())
            .collect();
        Selector {
            nodes,
            graph,
            ctx,
            universe,
        }
    }

    fn mode(&self) -> IndirectSelection {
        self.ctx.indirect_selection
    }

    /// (direct, indirect) as in dbt: `indirect` holds tests that may still
    /// qualify once the other parts of a set operation are known.
    fn eval(
        &self,
        spec: &Spec,
        warnings: &mut Vec<String>,
    ) -> Result<(Ids<'a>, Ids<'a>), SelectError> {
        match spec {
            Spec::All => Ok((self.universe.clone(), self.universe.clone())),
            Spec::Atom(c) => self.eval_criterion(c),
            Spec::Group {
                op,
                parts,
                raw,
                expect_exists,
            } => {
                let (direct, indirect) = self.eval_group(*op, parts, warnings)?;
                if *expect_exists && direct.is_empty() {
                    warnings.push(format!(
                        "The selection criterion '{raw}' does not match any enabled nodes"
                    ));
                }
                Ok((direct, indirect))
            }
        }
    }

    fn eval_group(
        &self,
        op: SetOp,
        parts: &[Spec],
        warnings: &mut Vec<String>,
    ) -> Result<(Ids<'a>, Ids<'a>), SelectError> {
        let mut direct_sets = Vec::with_capacity(parts.len());
        let mut indirect_sets = Vec::with_capacity(parts.len());
        for part in parts {
            let (direct, indirect) = self.eval(part, warnings)?;
            indirect_sets.push(direct.union(&indirect).copied().collect());
            direct_sets.push(direct);
        }
        let direct = combine(op, direct_sets);
        let indirect = combine(op, indirect_sets);
        let direct = self.incorporate_indirect(direct, &indirect);
        Ok((direct, indirect))
    }

    fn eval_criterion(&self, c: &Criterion) -> Result<(Ids<'a>, Ids<'a>), SelectError> {
        let matcher = Matcher::compile(c, self.ctx)?;
        let mut collected = Ids::new();
        for id in &self.universe {
            if let Some(node) = self.nodes.get(*id) {
                if matcher.matches(node)? {
                    collected.insert(*id);
                }
            }
        }
        let mut selected = self.neighbors(c, &collected);
        selected.extend(collected);
        let mode = c.indirect.unwrap_or(self.mode());
        if mode == IndirectSelection::Empty {
            return Ok((selected, Ids::new()));
        }
        Ok(self.expand_to_tests(selected, mode))
    }

    /// The nodes added by the spec's graph operators.
    fn neighbors(&self, c: &Criterion, selected: &Ids<'a>) -> Ids<'a> {
        let mut out = Ids::new();
        if c.childrens_parents {
            let mut base = self.walk(selected, Direction::Down, None);
            base.extend(selected.iter().copied());
            out.extend(self.walk(&base, Direction::Up, None));
            out.extend(base);
        }
        if let Some(depth) = c.parents {
            out.extend(self.walk(selected, Direction::Up, depth));
        }
        if let Some(depth) = c.children {
            out.extend(self.walk(selected, Direction::Down, depth));
        }
        out
    }

    /// Nodes reachable from `start` within `depth` generations (start nodes
    /// only included when reachable from another start node).
    fn walk(&self, start: &Ids<'a>, dir: Direction, depth: Depth) -> Ids<'a> {
        let mut found = Ids::new();
        let mut frontier: Vec<&'a str> = start.iter().copied().collect();
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for id in frontier {
                for n in self.step(id, dir) {
                    if found.insert(n) {
                        next.push(n);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        found
    }

    fn step(&self, id: &str, dir: Direction) -> Vec<&'a str> {
        let graph: &'a Graph = self.graph;
        let ids = match dir {
            Direction::Up => graph.parents(id),
            Direction::Down => graph.children(id),
        };
        ids.into_iter()
            .filter(|n| self.universe.contains(n))
            .collect()
    }

    fn is_test(&self, id: &str) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| matches!(n.resource_type, ResourceType::Test | ResourceType::UnitTest))
    }

    fn test_parents(&self, id: &str) -> &'a [String] {
        self.nodes
            .get(id)
            .map_or(&[], |n| n.depends_on.nodes.as_slice())
    }

    /// dbt's `expand_selection`: tests that are children of the selection join
    /// it (eager), or wait in `indirect` until all their parents are selected.
    fn expand_to_tests(&self, selected: Ids<'a>, mode: IndirectSelection) -> (Ids<'a>, Ids<'a>) {
        let buildable = if mode == IndirectSelection::Buildable {
            let mut set = self.walk(&selected, Direction::Up, None);
            set.extend(selected.iter().copied());
            set.extend(self.sources());
            set
        } else {
            Ids::new()
        };
        let mut direct = selected.clone();
        let mut indirect = Ids::new();
        for id in self.walk(&selected, Direction::Down, Some(1)) {
            if !self.is_test(id) {
                continue;
            }
            let parents = self.test_parents(id);
            let all_in = |set: &Ids| parents.iter().all(|p| set.contains(p.as_str()));
            if mode == IndirectSelection::Eager
                || all_in(&selected)
                || (mode == IndirectSelection::Buildable && all_in(&buildable))
            {
                direct.insert(id);
            } else {
                indirect.insert(id);
            }
        }
        (direct, indirect)
    }

    fn sources(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.universe.iter().copied().filter(|id| {
            self.nodes
                .get(*id)
                .is_some_and(|n| n.resource_type == ResourceType::Source)
        })
    }

    /// dbt's `incorporate_indirect_nodes`: after a set operation, admit the
    /// waiting tests whose parents are now all selected.
    fn incorporate_indirect(&self, mut direct: Ids<'a>, indirect: &Ids<'a>) -> Ids<'a> {
        if direct == *indirect {
            return direct;
        }
        let pool = match self.mode() {
            IndirectSelection::Cautious => direct.clone(),
            IndirectSelection::Buildable => {
                let mut set = self.walk(&direct, Direction::Up, None);
                set.extend(direct.iter().copied());
                set
            }
            IndirectSelection::Eager | IndirectSelection::Empty => return direct,
        };
        for id in indirect {
            let parents = self.test_parents(id);
            if self.is_test(id) && parents.iter().all(|p| pool.contains(p.as_str())) {
                direct.insert(id);
            }
        }
        direct
    }
}

fn combine<'a>(op: SetOp, sets: Vec<Ids<'a>>) -> Ids<'a> {
    let mut sets = sets.into_iter();
    let Some(first) = sets.next() else {
        return Ids::new();
    };
    sets.fold(first, |acc, s| match op {
        SetOp::Union => acc.union(&s).copied().collect(),
        SetOp::Intersection => acc.intersection(&s).copied().collect(),
        SetOp::Difference => acc.difference(&s).copied().collect(),
    })
}

// ---------------------------------------------------------------------------
// Methods

/// dbt's node types: valid `resource_type:` values even where sluice has none.
const DBT_RESOURCE_TYPES: [&str; 19] = [
    "model",
    "analysis",
    "test",
    "snapshot",
    "operation",
    "seed",
    "rpc",
    "sql_operation",
    "doc",
    "source",
    "macro",
    "exposure",
    "metric",
    "group",
    "saved_query",
    "semantic_model",
    "unit_test",
    "fixture",
    "function",
];

const STATE_SELECTORS: [&str; 10] = [
    "new",
    "old",
    "modified",
    "unmodified",
    "modified.body",
    "modified.configs",
    "modified.persisted_descriptions",
    "modified.relation",
    "modified.macros",
    "modified.contract",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestKind {
    Generic,
    Singular,
    Any,
    Unit,
}

/// A criterion with its value validated, ready to test nodes.
enum Matcher<'c> {
    Fqn(&'c str),
    Tag(&'c str),
    Group(&'c str),
    Access(&'c str),
    Source([&'c str; 3]),
    Path(Option<Vec<String>>),
    File(&'c str),
    Package(&'c str),
    Config(&'c [String], &'c str),
    TestName(&'c str),
    TestType(TestKind),
    /// A unit test, exposure, metric, semantic model or saved query by
    /// name or fqn.
    Named(ResourceType, &'c str),
    ResourceType(Option<ResourceType>),
    State(&'c str, StateCheck<'c>, &'c str),
    /// `version:latest|old|prerelease|none` (versioned models).
    Version(VersionKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionKind {
    Latest,
    Old,
    Prerelease,
    None,
}

/// Where a model's version stands against its latest: `version:` selector.
fn version_matches(node: &Node, kind: VersionKind) -> bool {
    if node.resource_type != ResourceType::Model {
        return false;
    }
    let (Some(v), Some(latest)) = (&node.version, &node.latest_version) else {
        return kind == VersionKind::None && node.version.is_none();
    };
    let order = match (v.parse::<f64>(), latest.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.total_cmp(&b),
        _ => v.cmp(latest),
    };
    match kind {
        VersionKind::Latest => order.is_eq(),
        VersionKind::Old => order.is_lt(),
        VersionKind::Prerelease => order.is_gt(),
        VersionKind::None => false,
    }
}

impl<'c> Matcher<'c> {
    fn compile(c: &'c Criterion, ctx: &SelectContext<'c>) -> Result<Matcher<'c>, SelectError> {
        let v = c.value.as_str();
        let invalid = |message: String| SelectError::InvalidValue {
            spec: c.raw.clone(),
            message,
        };
        Ok(match c.method {
            Method::Fqn => Matcher::Fqn(v),
            Method::Tag => Matcher::Tag(v),
            Method::Group => Matcher::Group(v),
            Method::Access => Matcher::Access(v),
            Method::Source => Matcher::Source(source_parts(v).ok_or_else(|| {
                invalid(format!(
                    "invalid source selector value \"{v}\": sources must be of the form \
                     source_name, source_name.table_name or package.source_name.table_name"
                ))
            })?),
            Method::Path => Matcher::Path(path_pattern(v, ctx.project_root)),
            Method::File => Matcher::File(v),
            Method::Package => Matcher::Package(match (v, ctx.project_name) {
                ("this", Some(name)) => name,
                _ => v,
            }),
            Method::Config => Matcher::Config(&c.args, v),
            Method::TestName => Matcher::TestName(v),
            Method::TestType => Matcher::TestType(test_kind(v).ok_or_else(|| {
                invalid(format!(
                    "invalid test type \"{v}\": expected \"generic\", \"singular\", \"unit\" or \"data\""
                ))
            })?),
            Method::ResourceType => Matcher::ResourceType(resource_type(c)?),
            Method::State => Matcher::State(v, state_check(c, ctx)?, &c.raw),
            Method::Metric => Matcher::Named(ResourceType::Metric, v),
            Method::SemanticModel => Matcher::Named(ResourceType::SemanticModel, v),
            Method::SavedQuery => Matcher::Named(ResourceType::SavedQuery, v),
            Method::Exposure => Matcher::Named(ResourceType::Exposure, v),
            Method::UnitTest => Matcher::Named(ResourceType::UnitTest, v),
            Method::Version => Matcher::Version(match v {
                "latest" => VersionKind::Latest,
                "old" => VersionKind::Old,
                "prerelease" => VersionKind::Prerelease,
                "none" => VersionKind::None,
                _ => {
                    return Err(invalid(format!(
                        "invalid version selector \"{v}\": expected \"latest\", \"old\", \"prerelease\" or \"none\""
                    )))
                }
            }),
            Method::Result | Method::SourceStatus => {
                return Err(SelectError::Unsupported {
                    spec: c.raw.clone(),
                    method: c.method.as_str().to_string(),
                })
            }
        })
    }

    fn matches(&self, node: &Node) -> Result<bool, SelectError> {
        let is_source = node.resource_type == ResourceType::Source;
        Ok(match self {
            Matcher::Fqn(sel) => !is_source && fqn_matches(&node.fqn, sel, node.version.is_some()),
            Matcher::Tag(sel) => node.tags.iter().any(|t| fnmatch(t, sel)),
            Matcher::Group(sel) => {
                !is_source && config_str(node, "group").is_some_and(|g| fnmatch(g, sel))
            }
            Matcher::Access(sel) => {
                node.resource_type == ResourceType::Model && model_access(node) == *sel
            }
            Matcher::Source([package, source, table]) => {
                is_source
                    && fnmatch(&node.package_name, package)
                    && fnmatch(node.source_name().unwrap_or_default(), source)
                    && fnmatch(&node.name, table)
            }
            Matcher::Path(pattern) => pattern.as_ref().is_some_and(|p| path_matches(node, p)),
            Matcher::File(sel) => file_matches(&node.original_file_path, sel),
            Matcher::Package(sel) => fnmatch(&node.package_name, sel),
            Matcher::Version(kind) => version_matches(node, *kind),
            Matcher::Config(keys, sel) => config_matches(node, keys, sel),
            Matcher::TestName(sel) => node
                .test_metadata
                .as_ref()
                .is_some_and(|m| node.resource_type == ResourceType::Test && fnmatch(&m.name, sel)),
            Matcher::TestType(kind) => test_kind_matches(node, *kind),
            Matcher::Named(rt, sel) => {
                node.resource_type == *rt
                    && (fnmatch(&node.name, sel)
                        || fqn_matches(&node.fqn, sel, node.version.is_some()))
            }
            Matcher::ResourceType(rt) => Some(node.resource_type) == *rt,
            Matcher::State(value, check, raw) => {
                check(value, node).map_err(|message| SelectError::State {
                    spec: raw.to_string(),
                    message,
                })?
            }
        })
    }
}

fn source_parts(v: &str) -> Option<[&str; 3]> {
    let parts: Vec<&str> = v.split('.').collect();
    match parts.as_slice() {
        [source] => Some(["*", source, "*"]),
        [source, table] => Some(["*", source, table]),
        [package, source, table] => Some([package, source, table]),
        _ => None,
    }
}

fn test_kind(v: &str) -> Option<TestKind> {
    Some(match v {
        "generic" | "schema" => TestKind::Generic,
        "singular" => TestKind::Singular,
        "data" => TestKind::Any,
        "unit" => TestKind::Unit,
        _ => return None,
    })
}

fn test_kind_matches(node: &Node, kind: TestKind) -> bool {
    let data = node.resource_type == ResourceType::Test;
    match kind {
        TestKind::Generic => data && node.test_metadata.is_some(),
        TestKind::Singular => data && node.test_metadata.is_none(),
        TestKind::Any => data,
        TestKind::Unit => node.resource_type == ResourceType::UnitTest,
    }
}

/// `Some(type)` for sluice's types, `None` for dbt types sluice never has.
fn resource_type(c: &Criterion) -> Result<Option<ResourceType>, SelectError> {
    let v = c.value.as_str();
    if let Some(rt) = ResourceType::parse(v) {
        return Ok(Some(rt));
    }
    if DBT_RESOURCE_TYPES.contains(&v) {
        return Ok(None);
    }
    Err(SelectError::UnknownResourceType {
        spec: c.raw.clone(),
        value: v.to_string(),
        suggestion: suggest(v, DBT_RESOURCE_TYPES),
    })
}

fn state_check<'c>(c: &Criterion, ctx: &SelectContext<'c>) -> Result<StateCheck<'c>, SelectError> {
    let v = c.value.as_str();
    if !STATE_SELECTORS.contains(&v) {
        return Err(SelectError::InvalidValue {
            spec: c.raw.clone(),
            message: format!(
                "invalid state selector \"{v}\", expected one of {}{}",
                STATE_SELECTORS.join(", "),
                did_you_mean(&suggest(v, STATE_SELECTORS))
            ),
        });
    }
    ctx.state.ok_or_else(|| SelectError::StateRequired {
        spec: c.raw.clone(),
    })
}

/// dbt's qualified-name match, with and without the package prefix. A wildcard
/// selector without dots also matches the node's name alone (`stg_*` selects
/// nested models), as in dbt Fusion; dbt-core only fnmatches the whole fqn tail.
/// A versioned model's fqn ends in its version (`…, orders, v2`).
fn fqn_matches(fqn: &[String], selector: &str, versioned: bool) -> bool {
    let bare_wildcard = !selector.contains('.') && selector.contains(['*', '?', '[', ']']);
    let name = if versioned && fqn.len() >= 2 {
        fqn.get(fqn.len() - 2)
    } else {
        fqn.last()
    };
    if bare_wildcard && name.is_some_and(|leaf| fnmatch(leaf, selector)) {
        return true;
    }
    is_selected_node(fqn, selector, versioned)
        || fqn
            .get(1..)
            .is_some_and(|rest| is_selected_node(rest, selector, versioned))
}

/// The node's name equals the selector, or the selector's dotted parts are a
/// prefix of the (dot-flattened) fqn; from the first part with a wildcard on,
/// the remainders are fnmatched as dotted strings. A versioned model also
/// matches its name (every version) and `name.v2` or `name_v2` (that one).
fn is_selected_node(fqn: &[String], selector: &str, versioned: bool) -> bool {
    if versioned && fqn.len() >= 2 {
        let (name, version) = (&fqn[fqn.len() - 2], &fqn[fqn.len() - 1]);
        let parts: Vec<&str> = selector.split('.').collect();
        let tail = parts[parts.len().saturating_sub(2)..].join("_");
        if name == selector || format!("{name}_{version}") == tail {
            return true;
        }
    } else if fqn.last().is_some_and(|leaf| leaf == selector) {
        return true;
    }
    let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
    let parts: Vec<&str> = selector.split('.').collect();
    if flat.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if part.contains(['*', '?', '[', ']']) {
            return fnmatch(&flat[i..].join("."), &parts[i..].join("."));
        }
        if flat[i] != *part {
            return false;
        }
    }
    true
}

fn file_matches(original_file_path: &str, selector: &str) -> bool {
    let path = Path::new(original_file_path);
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    fnmatch(name, selector) || fnmatch(stem, selector)
}

/// The `path:` value as glob components relative to the project root;
/// `None` when it is absolute and outside the project.
fn path_pattern(value: &str, root: Option<&Path>) -> Option<Vec<String>> {
    let value = value.replace('\\', "/");
    let relative = if value.starts_with('/') {
        let root = root?.to_string_lossy().replace('\\', "/");
        let rest = value.strip_prefix(root.trim_end_matches('/'))?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.to_string()
    } else {
        value
    };
    Some(path_components(&relative).map(str::to_string).collect())
}

fn path_components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// dbt: the node's file, its YAML patch file, or any directory containing
/// its file matches the glob.
fn path_matches(node: &Node, pattern: &[String]) -> bool {
    let file: Vec<&str> = path_components(&node.original_file_path).collect();
    if (0..=file.len()).any(|k| glob_components(pattern, &file[..k])) {
        return true;
    }
    node.patch_path.as_deref().is_some_and(|patch| {
        let patch = patch.split_once("://").map_or(patch, |(_, p)| p);
        let patch: Vec<&str> = path_components(patch).collect();
        glob_components(pattern, &patch)
    })
}

/// Component-wise glob: `*` stays within a component, `**` spans any number.
fn glob_components(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|k| glob_components(rest, &path[k..]))
        }
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(head, tail)| fnmatch(head, first) && glob_components(rest, tail)),
    }
}

fn config_str<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    node.config.get(key).and_then(|v| v.as_str())
}

fn model_access(node: &Node) -> &str {
    config_str(node, "access").unwrap_or("protected")
}

/// The config value at `keys`, with dbt's defaults for the keys every node
/// config has.
fn config_value(node: &Node, keys: &[String]) -> Option<serde_json::Value> {
    let (first, rest) = keys.split_first()?;
    let top = match node.config.get(first) {
        Some(v) => v.clone(),
        None => config_default(node, first)?,
    };
    rest.iter()
        .try_fold(top, |v, k| v.as_object().and_then(|o| o.get(k)).cloned())
}

fn config_default(node: &Node, key: &str) -> Option<serde_json::Value> {
    let rt = node.resource_type;
    let value = match key {
        "enabled" => serde_json::Value::Bool(true),
        "materialized" if rt == ResourceType::Snapshot => "snapshot".into(),
        "materialized" if rt != ResourceType::Source => node.materialized().into(),
        "severity" if rt == ResourceType::Test => "ERROR".into(),
        _ => return None,
    };
    Some(value)
}

/// dbt's `config.` comparison: string equality (case-insensitive for
/// `severity`), list membership, or `true`/`false` against booleans.
fn config_matches(node: &Node, keys: &[String], selector: &str) -> bool {
    let Some(value) = config_value(node, keys) else {
        return false;
    };
    let case_insensitive = keys.len() == 1 && keys[0] == "severity";
    let eq = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if case_insensitive => s.eq_ignore_ascii_case(selector),
        serde_json::Value::String(s) => s == selector,
        serde_json::Value::Bool(b) => {
            selector.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        _ => false,
    };
    match &value {
        serde_json::Value::Array(items) => items.iter().any(eq),
        other => eq(other),
    }
}

// ---------------------------------------------------------------------------
// fnmatch

/// Python's `fnmatch.fnmatchcase`: `*` matches any run (including `/` and
/// `.`), `?` one character, `[abc]`, `[a-z]` and `[!…]` a class; an unclosed
/// `[` is literal.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    fnmatch_chars(&name, &pattern)
}

fn fnmatch_chars(name: &[char], pattern: &[char]) -> bool {
    let (mut ni, mut pi) = (0, 0);
    // After a `*`: where the pattern resumes, and the next name position to retry.
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < name.len() {
        if pattern.get(pi) == Some(&'*') {
            pi += 1;
            backtrack = Some((pi, ni));
            continue;
        }
        if let Some(next) = match_one(pattern, pi, name[ni]) {
            pi = next;
            ni += 1;
            continue;
        }
        match backtrack {
            Some((p, n)) => {
                pi = p;
                ni = n + 1;
                backtrack = Some((p, n + 1));
            }
            None => return false,
        }
    }
    pattern[pi..].iter().all(|&c| c == '*')
}

/// If the single-character token at `pi` matches `c`, the index after it.
fn match_one(pattern: &[char], pi: usize, c: char) -> Option<usize> {
    match *pattern.get(pi)? {
        '*' => None,
        '?' => Some(pi + 1),
        '[' => match char_class(pattern, pi) {
            Some((matched, next)) => matched(c).then_some(next),
            None => (c == '[').then_some(pi + 1),
        },
        p => (p == c).then_some(pi + 1),
    }
}

/// The class starting at `pattern[start] == '['`: a predicate and the index
/// after its `]`, or `None` if it never closes.
fn char_class(pattern: &[char], start: usize) -> Option<(impl Fn(char) -> bool + '_, usize)> {
    let mut j = start + 1;
    let negated = pattern.get(j) == Some(&'!');
    if negated {
        j += 1;
    }
    let body_start = j;
    if pattern.get(j) == Some(&']') {
        j += 1;
    }
    while pattern.get(j).is_some_and(|&c| c != ']') {
        j += 1;
    }
    if j >= pattern.len() {
        return None;
    }
    let body = &pattern[body_start..j];
    let matches = move |c: char| class_contains(body, c) != negated;
    Some((matches, j + 1))
}

fn class_contains(body: &[char], c: char) -> bool {
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            if body[i] <= c && c <= body[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if body[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::node::{DependsOn, SourceInfo, TestMetadata};
    use serde_json::json;

    const RAW_CUSTOMERS: &str = "source.jaffle.raw.customers";
    const RAW_ORDERS: &str = "source.jaffle.raw.orders";
    const EVENTS: &str = "source.jaffle.other.events";
    const COUNTRIES: &str = "seed.jaffle.country_codes";
    const STG_CUSTOMERS: &str = "model.jaffle.stg_customers";
    const STG_ORDERS: &str = "model.jaffle.stg_orders";
    const INT_ORDERS: &str = "model.jaffle.int_orders";
    const CUSTOMERS: &str = "model.jaffle.customers";
    const REPORT: &str = "model.jaffle.orders_report";
    const OLD: &str = "model.jaffle.old_model";
    const UTIL: &str = "model.utils.util_dates";
    const NOT_NULL: &str = "test.jaffle.not_null_stg_customers_id";
    const REL: &str = "test.jaffle.relationships_customers_id";
    const POSITIVE: &str = "test.jaffle.assert_positive";
    const SRC_NOT_NULL: &str = "test.jaffle.source_not_null_raw_orders_id";

    fn node(id: &str, ofp: &str, fqn: &[&str], deps: &[&str]) -> Node {
        let mut parts = id.split('.');
        let rt = parts
            .next()
            .and_then(ResourceType::parse)
            .unwrap_or(ResourceType::Model);
        let package = parts.next().unwrap_or_default().to_string();
        let name = id.rsplit('.').next().unwrap_or_default().to_string();
        let path = ofp.split_once('/').map_or(ofp, |(_, p)| p).to_string();
        Node {
            unique_id: id.to_string(),
            resource_type: rt,
            name: name.clone(),
            package_name: package,
            path,
            original_file_path: ofp.to_string(),
            fqn: fqn.iter().map(|s| s.to_string()).collect(),
            database: None,
            schema: "main".to_string(),
            alias: name,
            relation_name: None,
            raw_code: String::new(),
            language: "sql".to_string(),
            compiled_code: None,
            compiled_path: None,
            config: Config::new(),
            description: String::new(),
            columns: Default::default(),
            meta: BTreeMap::new(),
            tags: Vec::new(),
            refs: Vec::new(),
            sources: Vec::new(),
            depends_on: DependsOn {
                macros: Vec::new(),
                nodes: deps.iter().map(|s| s.to_string()).collect(),
            },
            patch_path: None,
            source: None,
            test_metadata: None,
            column_name: None,
            attached_node: None,
            unit_test: None,
            exposure: None,
            semantic: None,
            macros_used: Vec::new(),
            checksum: String::new(),
            line: 1,
            package_dir: None,
            version: None,
            latest_version: None,
            constraints: Vec::new(),
            patch_line: None,
            time_spine: None,
        }
    }

    use crate::project::node::Config;

    fn source(id: &str, source_name: &str) -> Node {
        let table = id.rsplit('.').next().unwrap_or_default();
        let mut n = node(
            id,
            "models/staging/sources.yml",
            &["jaffle", "staging", source_name, table],
            &[],
        );
        n.source = Some(Box::new(SourceInfo {
            source_name: source_name.to_string(),
            ..Default::default()
        }));
        n
    }

    fn generic_test(id: &str, ofp: &str, test: &str, deps: &[&str]) -> Node {
        let name = id.rsplit('.').next().unwrap_or_default();
        let mut n = node(id, ofp, &["jaffle", "staging", name], deps);
        n.test_metadata = Some(Box::new(TestMetadata {
            name: test.to_string(),
            kwargs: BTreeMap::new(),
            namespace: None,
        }));
        n.attached_node = deps.first().map(|s| s.to_string());
        n
    }

    fn with_config(mut n: Node, config: serde_json::Value) -> Node {
        if let serde_json::Value::Object(map) = config {
            n.config.extend(map);
        }
        n
    }

    fn with_tags(mut n: Node, tags: &[&str]) -> Node {
        n.tags = tags.iter().map(|s| s.to_string()).collect();
        n
    }

    /// raw.customers → stg_customers → customers ← int_orders ← stg_orders ← raw.orders
    /// country_codes → int_orders → orders_report; tests hang off the models.
    fn project() -> BTreeMap<String, Node> {
        let mut stg_customers = with_tags(
            with_config(
                node(
                    STG_CUSTOMERS,
                    "models/staging/stg_customers.sql",
                    &["jaffle", "staging", "stg_customers"],
                    &[RAW_CUSTOMERS],
                ),
                json!({"materialized": "view"}),
            ),
            &["staging", "pii"],
        );
        stg_customers.patch_path = Some("jaffle://models/staging/schema.yml".to_string());
        let nodes = vec![
            source(RAW_CUSTOMERS, "raw"),
            source(RAW_ORDERS, "raw"),
            source(EVENTS, "other"),
            node(
                COUNTRIES,
                "seeds/country_codes.csv",
                &["jaffle", "country_codes"],
                &[],
            ),
            stg_customers,
            with_tags(
                with_config(
                    node(
                        STG_ORDERS,
                        "models/staging/stg_orders.sql",
                        &["jaffle", "staging", "stg_orders"],
                        &[RAW_ORDERS],
                    ),
                    json!({"materialized": "view"}),
                ),
                &["staging"],
            ),
            with_config(
                node(
                    INT_ORDERS,
                    "models/intermediate/int_orders.sql",
                    &["jaffle", "intermediate", "int_orders"],
                    &[STG_ORDERS, COUNTRIES],
                ),
                json!({"materialized": "table", "labels": ["a", "b"]}),
            ),
            with_config(
                node(
                    CUSTOMERS,
                    "models/marts/customers.sql",
                    &["jaffle", "marts", "customers"],
                    &[STG_CUSTOMERS, INT_ORDERS],
                ),
                json!({"materialized": "table", "persist_docs": {"relation": true}, "threads": 5}),
            ),
            with_config(
                node(
                    REPORT,
                    "models/marts/reports/orders_report.sql",
                    &["jaffle", "marts", "reports", "orders_report"],
                    &[INT_ORDERS],
                ),
                json!({"group": "finance", "access": "public"}),
            ),
            with_config(
                node(
                    OLD,
                    "models/staging/old_model.sql",
                    &["jaffle", "staging", "old_model"],
                    &[STG_ORDERS],
                ),
                json!({"enabled": false}),
            ),
            node(UTIL, "models/util_dates.sql", &["utils", "util_dates"], &[]),
            generic_test(
                NOT_NULL,
                "models/staging/schema.yml",
                "not_null",
                &[STG_CUSTOMERS],
            ),
            with_config(
                generic_test(
                    REL,
                    "models/marts/schema.yml",
                    "relationships",
                    &[CUSTOMERS, STG_CUSTOMERS],
                ),
                json!({"severity": "warn"}),
            ),
            node(
                POSITIVE,
                "tests/assert_positive.sql",
                &["jaffle", "assert_positive"],
                &[INT_ORDERS],
            ),
            generic_test(
                SRC_NOT_NULL,
                "models/staging/sources.yml",
                "not_null",
                &[RAW_ORDERS],
            ),
        ];
        nodes
            .into_iter()
            .map(|n| (n.unique_id.clone(), n))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn run_with(
        select_args: &[&str],
        exclude: &[&str],
        ctx: &SelectContext,
    ) -> Result<Selection, SelectError> {
        let nodes = project();
        let graph = Graph::build(&nodes);
        select(
            &nodes,
            &graph,
            &strings(select_args),
            &strings(exclude),
            ctx,
        )
    }

    fn run(select_args: &[&str], exclude: &[&str]) -> Result<Selection, SelectError> {
        run_with(select_args, exclude, &SelectContext::default())
    }

    /// The selected ids; panics on errors or warnings.
    fn ids(select_args: &[&str], exclude: &[&str]) -> BTreeSet<String> {
        let selection = run(select_args, exclude).unwrap();
        assert_eq!(selection.warnings, Vec::<String>::new());
        selection.ids
    }

    fn ids_in(mode: IndirectSelection, select_args: &[&str], exclude: &[&str]) -> BTreeSet<String> {
        let ctx = SelectContext {
            indirect_selection: mode,
            ..Default::default()
        };
        run_with(select_args, exclude, &ctx).unwrap().ids
    }

    fn err(select_args: &[&str]) -> SelectError {
        run(select_args, &[]).unwrap_err()
    }

    const ALL_ENABLED: [&str; 14] = [
        RAW_CUSTOMERS,
        RAW_ORDERS,
        EVENTS,
        COUNTRIES,
        STG_CUSTOMERS,
        STG_ORDERS,
        INT_ORDERS,
        CUSTOMERS,
        REPORT,
        UTIL,
        NOT_NULL,
        REL,
        POSITIVE,
        SRC_NOT_NULL,
    ];

    // --- defaults and the default method

    #[test]
    fn empty_select_is_every_enabled_node() {
        assert_eq!(ids(&[], &[]), set(&ALL_ENABLED));
    }

    #[test]
    fn bare_name_selects_model_and_its_tests() {
        assert_eq!(
            ids(&["stg_customers"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn bare_folder_selects_by_fqn_prefix_but_not_sources() {
        assert_eq!(
            ids(&["staging"], &[]),
            set(&[STG_CUSTOMERS, STG_ORDERS, NOT_NULL, REL, SRC_NOT_NULL])
        );
    }

    #[test]
    fn fqn_with_package_and_nested_folders() {
        assert_eq!(ids(&["jaffle.marts"], &[]), set(&[CUSTOMERS, REPORT, REL]));
        assert_eq!(ids(&["fqn:marts.reports"], &[]), set(&[REPORT]));
        assert_eq!(
            ids(&["jaffle.marts.reports.orders_report"], &[]),
            set(&[REPORT])
        );
    }

    #[test]
    fn fqn_matches_other_packages_with_and_without_prefix() {
        assert_eq!(ids(&["utils"], &[]), set(&[UTIL]));
        assert_eq!(ids(&["util_dates"], &[]), set(&[UTIL]));
        assert_eq!(ids(&["utils.util_dates"], &[]), set(&[UTIL]));
    }

    #[test]
    fn fqn_wildcards() {
        assert_eq!(
            ids(&["stg_*"], &[]),
            set(&[STG_CUSTOMERS, STG_ORDERS, NOT_NULL, REL])
        );
        assert_eq!(
            ids(&["jaffle.*.stg_c*"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL, REL])
        );
        assert_eq!(ids(&["*.stg_orders"], &[]), set(&[STG_ORDERS]));
        assert_eq!(run(&["*_report?"], &[]).unwrap().ids, set(&[]));
        assert_eq!(ids(&["orders_repor?"], &[]), set(&[REPORT]));
        let all_but_sources: Vec<&str> = ALL_ENABLED
            .iter()
            .copied()
            .filter(|id| !id.starts_with("source."))
            .collect();
        assert_eq!(
            ids(&["fqn:*"], &[]),
            set(&all_but_sources)
                .union(&set(&[SRC_NOT_NULL]))
                .cloned()
                .collect()
        );
    }

    #[test]
    fn default_method_is_file_for_sql_and_csv_names() {
        assert_eq!(ids(&["customers.sql"], &[]), set(&[CUSTOMERS, REL]));
        assert_eq!(ids(&["country_codes.csv"], &[]), set(&[COUNTRIES]));
    }

    #[test]
    fn default_method_is_path_when_value_has_a_slash() {
        assert_eq!(ids(&["models/marts/reports"], &[]), set(&[REPORT]));
        assert_eq!(ids(&["models/marts/"], &[]), set(&[CUSTOMERS, REPORT, REL]));
    }

    // --- graph operators

    #[test]
    fn plus_prefix_selects_all_ancestors_and_their_tests() {
        assert_eq!(
            ids(&["+customers"], &[]),
            set(&[
                CUSTOMERS,
                STG_CUSTOMERS,
                INT_ORDERS,
                STG_ORDERS,
                COUNTRIES,
                RAW_CUSTOMERS,
                RAW_ORDERS,
                NOT_NULL,
                REL,
                POSITIVE,
                SRC_NOT_NULL,
            ])
        );
    }

    #[test]
    fn depth_limited_parents() {
        assert_eq!(
            ids(&["1+customers"], &[]),
            set(&[
                CUSTOMERS,
                STG_CUSTOMERS,
                INT_ORDERS,
                NOT_NULL,
                REL,
                POSITIVE
            ])
        );
        assert_eq!(
            ids(&["2+int_orders"], &[]),
            set(&[
                INT_ORDERS,
                STG_ORDERS,
                COUNTRIES,
                RAW_ORDERS,
                POSITIVE,
                SRC_NOT_NULL
            ])
        );
        assert_eq!(ids(&["0+customers"], &[]), set(&[CUSTOMERS, REL]));
    }

    #[test]
    fn plus_suffix_selects_all_descendants_skipping_disabled() {
        assert_eq!(
            ids(&["stg_orders+"], &[]),
            set(&[STG_ORDERS, INT_ORDERS, CUSTOMERS, REPORT, POSITIVE, REL])
        );
    }

    #[test]
    fn depth_limited_children() {
        assert_eq!(
            ids(&["stg_orders+1"], &[]),
            set(&[STG_ORDERS, INT_ORDERS, POSITIVE])
        );
        assert_eq!(
            ids(&["int_orders+1"], &[]),
            set(&[INT_ORDERS, CUSTOMERS, REPORT, POSITIVE, REL])
        );
    }

    #[test]
    fn both_operators_with_depths() {
        assert_eq!(
            ids(&["1+int_orders+1"], &[]),
            set(&[STG_ORDERS, COUNTRIES, INT_ORDERS, CUSTOMERS, REPORT, POSITIVE, REL])
        );
    }

    #[test]
    fn at_operator_adds_ancestors_of_descendants() {
        assert_eq!(
            ids(&["@int_orders"], &[]),
            set(&[
                INT_ORDERS,
                CUSTOMERS,
                REPORT,
                POSITIVE,
                REL,
                STG_ORDERS,
                RAW_ORDERS,
                COUNTRIES,
                STG_CUSTOMERS,
                RAW_CUSTOMERS,
                NOT_NULL,
                SRC_NOT_NULL,
            ])
        );
        assert_eq!(
            ids(&["@stg_customers"], &[]),
            set(&[
                STG_CUSTOMERS,
                CUSTOMERS,
                REL,
                NOT_NULL,
                RAW_CUSTOMERS,
                INT_ORDERS,
                STG_ORDERS,
                COUNTRIES,
                RAW_ORDERS,
                POSITIVE,
                SRC_NOT_NULL,
            ])
        );
    }

    // --- set operators

    #[test]
    fn space_separated_and_repeated_arguments_are_unions() {
        let expected = set(&[STG_CUSTOMERS, NOT_NULL, REL, REPORT, COUNTRIES]);
        assert_eq!(
            ids(&["stg_customers  orders_report"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL, REL, REPORT])
        );
        assert_eq!(
            ids(&["stg_customers orders_report", "country_codes"], &[]),
            expected
        );
    }

    #[test]
    fn commas_intersect() {
        assert_eq!(
            ids(&["tag:staging,tag:pii"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL, REL])
        );
        assert_eq!(
            ids(&["+customers,resource_type:source"], &[]),
            set(&[RAW_CUSTOMERS, RAW_ORDERS, SRC_NOT_NULL])
        );
        assert_eq!(
            ids(&["stg_orders+,config.materialized:table"], &[]),
            set(&[INT_ORDERS, CUSTOMERS, POSITIVE, REL])
        );
    }

    #[test]
    fn exclude_subtracts_nodes_and_their_tests() {
        assert_eq!(
            ids(&["+customers"], &["stg_customers"]),
            set(&[
                CUSTOMERS,
                INT_ORDERS,
                STG_ORDERS,
                COUNTRIES,
                RAW_CUSTOMERS,
                RAW_ORDERS,
                POSITIVE,
                SRC_NOT_NULL,
            ])
        );
    }

    #[test]
    fn exclude_without_select_starts_from_everything() {
        assert_eq!(
            ids(&[], &["staging resource_type:source", "utils"]),
            set(&[COUNTRIES, INT_ORDERS, CUSTOMERS, REPORT, POSITIVE])
        );
    }

    #[test]
    fn exclude_with_intersection() {
        assert_eq!(
            ids(&["tag:staging"], &["tag:staging,tag:pii"]),
            set(&[STG_ORDERS])
        );
    }

    // --- methods

    #[test]
    fn tag_method_with_wildcards() {
        assert_eq!(ids(&["tag:pii"], &[]), set(&[STG_CUSTOMERS, NOT_NULL, REL]));
        assert_eq!(ids(&["tag:pi*"], &[]), set(&[STG_CUSTOMERS, NOT_NULL, REL]));
        assert_eq!(
            ids(&["tag:stag?ng"], &[]),
            set(&[STG_CUSTOMERS, STG_ORDERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn path_method_directory_file_and_globs() {
        assert_eq!(
            ids(&["path:models/staging"], &[]),
            set(&[
                STG_CUSTOMERS,
                STG_ORDERS,
                RAW_CUSTOMERS,
                RAW_ORDERS,
                EVENTS,
                NOT_NULL,
                REL,
                SRC_NOT_NULL,
            ])
        );
        assert_eq!(
            ids(&["path:models/marts/*.sql"], &[]),
            set(&[CUSTOMERS, REL])
        );
        assert_eq!(ids(&["path:models/*/reports"], &[]), set(&[REPORT]));
        assert_eq!(
            ids(&["path:models/**/orders_report.sql"], &[]),
            set(&[REPORT])
        );
        assert_eq!(
            ids(&["path:./seeds/country_codes.csv"], &[]),
            set(&[COUNTRIES])
        );
    }

    #[test]
    fn path_method_matches_yaml_patch_files() {
        assert_eq!(
            ids(&["path:models/staging/schema.yml"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn path_method_resolves_absolute_paths_against_project_root() {
        let root = Path::new("/home/me/jaffle");
        let ctx = SelectContext {
            project_root: Some(root),
            ..Default::default()
        };
        let inside = run_with(&["path:/home/me/jaffle/models/marts/reports"], &[], &ctx).unwrap();
        assert_eq!(inside.ids, set(&[REPORT]));
        let outside = run_with(&["path:/elsewhere/models"], &[], &ctx).unwrap();
        assert_eq!(outside.ids, set(&[]));
        let sibling = run_with(&["path:/home/me/jaffle2/models"], &[], &ctx).unwrap();
        assert_eq!(sibling.ids, set(&[]));
    }

    #[test]
    fn file_method_by_name_or_stem() {
        assert_eq!(ids(&["file:stg_orders.sql"], &[]), set(&[STG_ORDERS]));
        assert_eq!(ids(&["file:stg_orders"], &[]), set(&[STG_ORDERS]));
        assert_eq!(ids(&["file:*_report.*"], &[]), set(&[REPORT]));
        assert_eq!(
            ids(&["file:sources.yml"], &[]),
            set(&[RAW_CUSTOMERS, RAW_ORDERS, EVENTS, SRC_NOT_NULL])
        );
    }

    #[test]
    fn source_method_forms() {
        assert_eq!(
            ids(&["source:raw"], &[]),
            set(&[RAW_CUSTOMERS, RAW_ORDERS, SRC_NOT_NULL])
        );
        assert_eq!(ids(&["source:raw.customers"], &[]), set(&[RAW_CUSTOMERS]));
        assert_eq!(
            ids(&["source:*"], &[]),
            set(&[RAW_CUSTOMERS, RAW_ORDERS, EVENTS, SRC_NOT_NULL])
        );
        assert_eq!(ids(&["source:jaffle.other.*"], &[]), set(&[EVENTS]));
        assert_eq!(
            ids(&["source:*.orders"], &[]),
            set(&[RAW_ORDERS, SRC_NOT_NULL])
        );
    }

    #[test]
    fn source_method_with_children() {
        assert_eq!(
            ids(&["source:raw.customers+"], &[]),
            set(&[RAW_CUSTOMERS, STG_CUSTOMERS, CUSTOMERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn source_method_rejects_four_parts() {
        assert!(matches!(
            err(&["source:a.b.c.d"]),
            SelectError::InvalidValue { .. }
        ));
    }

    #[test]
    fn resource_type_method() {
        assert_eq!(ids(&["resource_type:seed"], &[]), set(&[COUNTRIES]));
        assert_eq!(
            ids(&["resource_type:test"], &[]),
            set(&[NOT_NULL, REL, POSITIVE, SRC_NOT_NULL])
        );
    }

    #[test]
    fn resource_type_dbt_has_but_sluice_lacks_matches_nothing() {
        let selection = run(&["resource_type:exposure"], &[]).unwrap();
        assert_eq!(selection.ids, set(&[]));
        assert_eq!(selection.warnings.len(), 1);
    }

    #[test]
    fn resource_type_unknown_is_an_error_with_suggestion() {
        assert_eq!(
            err(&["resource_type:modle"]),
            SelectError::UnknownResourceType {
                spec: "resource_type:modle".to_string(),
                value: "modle".to_string(),
                suggestion: Some("model".to_string()),
            }
        );
    }

    #[test]
    fn config_method_strings_and_defaults() {
        assert_eq!(
            ids(&["config.materialized:table"], &[]),
            set(&[INT_ORDERS, CUSTOMERS, POSITIVE, REL])
        );
        assert_eq!(
            ids(&["config.materialized:view"], &[]),
            set(&[STG_CUSTOMERS, STG_ORDERS, REPORT, UTIL, NOT_NULL, REL])
        );
        assert_eq!(ids(&["config.materialized:seed"], &[]), set(&[COUNTRIES]));
        assert_eq!(ids(&["config.group:finance"], &[]), set(&[REPORT]));
    }

    #[test]
    fn config_method_lists_bools_and_nested_keys() {
        assert_eq!(ids(&["config.labels:b"], &[]), set(&[INT_ORDERS, POSITIVE]));
        assert_eq!(
            ids(&["config.persist_docs.relation:TRUE"], &[]),
            set(&[CUSTOMERS, REL])
        );
        assert_eq!(run(&["config.enabled:false"], &[]).unwrap().ids, set(&[]));
        assert_eq!(
            ids(&["config.enabled:true,source:raw"], &[]),
            set(&[RAW_CUSTOMERS, RAW_ORDERS, SRC_NOT_NULL])
        );
    }

    #[test]
    fn config_method_severity_is_case_insensitive_and_numbers_never_match() {
        assert_eq!(ids(&["config.severity:WARN"], &[]), set(&[REL]));
        assert_eq!(
            ids(&["config.severity:error"], &[]),
            set(&[NOT_NULL, POSITIVE, SRC_NOT_NULL])
        );
        assert_eq!(run(&["config.threads:5"], &[]).unwrap().ids, set(&[]));
    }

    #[test]
    fn test_type_method() {
        assert_eq!(
            ids(&["test_type:generic"], &[]),
            set(&[NOT_NULL, REL, SRC_NOT_NULL])
        );
        assert_eq!(ids(&["test_type:singular"], &[]), set(&[POSITIVE]));
        assert_eq!(
            ids(&["test_type:data"], &[]),
            set(&[NOT_NULL, REL, POSITIVE, SRC_NOT_NULL])
        );
        assert!(matches!(
            err(&["test_type:bogus"]),
            SelectError::InvalidValue { .. }
        ));
    }

    #[test]
    fn test_name_method() {
        assert_eq!(
            ids(&["test_name:not_null"], &[]),
            set(&[NOT_NULL, SRC_NOT_NULL])
        );
        assert_eq!(ids(&["test_name:rel*"], &[]), set(&[REL]));
    }

    #[test]
    fn package_method_and_this() {
        assert_eq!(ids(&["package:utils"], &[]), set(&[UTIL]));
        assert_eq!(ids(&["package:ut*"], &[]), set(&[UTIL]));
        let ctx = SelectContext {
            project_name: Some("utils"),
            ..Default::default()
        };
        assert_eq!(
            run_with(&["package:this"], &[], &ctx).unwrap().ids,
            set(&[UTIL])
        );
    }

    #[test]
    fn group_and_access_methods() {
        assert_eq!(ids(&["group:fin*"], &[]), set(&[REPORT]));
        assert_eq!(ids(&["access:public"], &[]), set(&[REPORT]));
        assert_eq!(
            ids(&["access:protected"], &[]),
            set(&[
                STG_CUSTOMERS,
                STG_ORDERS,
                INT_ORDERS,
                CUSTOMERS,
                UTIL,
                NOT_NULL,
                REL,
                POSITIVE
            ])
        );
    }

    #[test]
    fn state_method_uses_the_hook() {
        let check = |arg: &str, node: &Node| -> Result<bool, String> {
            Ok(arg == "modified" && node.name == "stg_orders")
        };
        let ctx = SelectContext {
            state: Some(&check),
            ..Default::default()
        };
        let selection = run_with(&["state:modified+"], &[], &ctx).unwrap();
        assert_eq!(
            selection.ids,
            set(&[STG_ORDERS, INT_ORDERS, CUSTOMERS, REPORT, POSITIVE, REL])
        );
        assert_eq!(run_with(&["state:new"], &[], &ctx).unwrap().ids, set(&[]));
    }

    #[test]
    fn state_method_without_hook_requires_state() {
        assert_eq!(
            err(&["state:modified"]),
            SelectError::StateRequired {
                spec: "state:modified".to_string()
            }
        );
        assert!(err(&["state:modified"])
            .to_string()
            .contains("--state is required"));
    }

    #[test]
    fn state_method_rejects_unknown_values_and_reports_hook_errors() {
        let check = |_: &str, _: &Node| -> Result<bool, String> { Err("no manifest".to_string()) };
        let ctx = SelectContext {
            state: Some(&check),
            ..Default::default()
        };
        let e = run_with(&["state:modifed"], &[], &ctx).unwrap_err();
        assert!(e.to_string().contains("did you mean 'modified'"), "{e}");
        assert_eq!(
            run_with(&["state:modified.body"], &[], &ctx).unwrap_err(),
            SelectError::State {
                spec: "state:modified.body".to_string(),
                message: "no manifest".to_string()
            }
        );
    }

    #[test]
    fn resourceless_methods_match_nothing_and_unsupported_ones_error() {
        assert_eq!(run(&["exposure:*", "metric:x"], &[]).unwrap().ids, set(&[]));
        assert_eq!(
            err(&["result:error"]),
            SelectError::Unsupported {
                spec: "result:error".to_string(),
                method: "result".to_string()
            }
        );
    }

    // --- indirect selection of tests

    #[test]
    fn eager_selects_tests_when_any_parent_is_selected() {
        assert_eq!(
            ids_in(IndirectSelection::Eager, &["customers"], &[]),
            set(&[CUSTOMERS, REL])
        );
    }

    #[test]
    fn cautious_needs_all_parents() {
        let mode = IndirectSelection::Cautious;
        assert_eq!(ids_in(mode, &["customers"], &[]), set(&[CUSTOMERS]));
        assert_eq!(
            ids_in(mode, &["stg_customers"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL])
        );
        assert_eq!(
            ids_in(mode, &["stg_customers customers"], &[]),
            set(&[STG_CUSTOMERS, CUSTOMERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn buildable_accepts_parents_upstream_of_the_selection() {
        let mode = IndirectSelection::Buildable;
        assert_eq!(ids_in(mode, &["customers"], &[]), set(&[CUSTOMERS, REL]));
        assert_eq!(
            ids_in(mode, &["stg_customers"], &[]),
            set(&[STG_CUSTOMERS, NOT_NULL])
        );
    }

    #[test]
    fn empty_mode_selects_no_tests() {
        let mode = IndirectSelection::Empty;
        assert_eq!(ids_in(mode, &["stg_customers"], &[]), set(&[STG_CUSTOMERS]));
        assert_eq!(
            ids_in(mode, &["stg_customers+"], &[]),
            set(&[STG_CUSTOMERS, CUSTOMERS, NOT_NULL, REL])
        );
    }

    #[test]
    fn eager_exclude_of_one_parent_drops_multi_parent_tests() {
        assert_eq!(
            ids(&["stg_customers customers"], &["customers"]),
            set(&[STG_CUSTOMERS, NOT_NULL])
        );
    }

    #[test]
    fn tests_can_be_selected_directly() {
        assert_eq!(ids(&["assert_positive"], &[]), set(&[POSITIVE]));
        assert_eq!(
            ids(&["+assert_positive"], &[]),
            set(&[
                POSITIVE,
                INT_ORDERS,
                STG_ORDERS,
                COUNTRIES,
                RAW_ORDERS,
                SRC_NOT_NULL
            ])
        );
    }

    // --- warnings and errors

    #[test]
    fn unmatched_spec_warns_instead_of_failing() {
        let selection = run(&["nope stg_orders"], &["missing"]).unwrap();
        assert_eq!(selection.ids, set(&[STG_ORDERS]));
        assert_eq!(
            selection.warnings,
            vec![
                "The selection criterion 'nope' does not match any enabled nodes".to_string(),
                "The selection criterion 'missing' does not match any enabled nodes".to_string(),
            ]
        );
    }

    #[test]
    fn disabled_nodes_are_never_selected() {
        let selection = run(&["old_model"], &[]).unwrap();
        assert_eq!(selection.ids, set(&[]));
        assert_eq!(selection.warnings.len(), 1);
    }

    #[test]
    fn unknown_method_suggests_the_closest() {
        assert_eq!(
            err(&["tga:nightly"]),
            SelectError::UnknownMethod {
                spec: "tga:nightly".to_string(),
                method: "tga".to_string(),
                suggestion: Some("tag".to_string()),
            }
        );
        assert_eq!(
            err(&["xyzzy:1"]).to_string(),
            "invalid selector spec \"xyzzy:1\": 'xyzzy' is not a valid method name"
        );
    }

    #[test]
    fn malformed_specs_are_errors() {
        for spec in ["++x", "x+y", "@x+", "+", "tag:", "@", "+@x", "x++", "1+2+x"] {
            assert!(
                matches!(err(&[spec]), SelectError::Malformed { .. }),
                "{spec} should be malformed"
            );
        }
    }

    #[test]
    fn method_arguments_are_only_for_config() {
        assert!(matches!(
            err(&["config:table"]),
            SelectError::InvalidValue { .. }
        ));
        assert!(matches!(
            err(&["tag.x:y"]),
            SelectError::InvalidValue { .. }
        ));
    }

    #[test]
    fn errors_in_exclude_are_reported() {
        assert!(matches!(
            run(&[], &["bogus:x"]).unwrap_err(),
            SelectError::UnknownMethod { .. }
        ));
    }

    // --- parsing and fnmatch

    #[test]
    fn parse_spec_fields() {
        let c = parse_spec("2+config.materialized:table+3").unwrap();
        assert_eq!(c.method, Method::Config);
        assert_eq!(c.args, strings(&["materialized"]));
        assert_eq!(c.value, "table");
        assert_eq!(
            (c.parents, c.children, c.childrens_parents),
            (Some(Some(2)), Some(Some(3)), false)
        );

        let c = parse_spec("@+tag:nightly").unwrap();
        assert_eq!((c.method, c.value.as_str()), (Method::Tag, "nightly"));
        assert_eq!(
            (c.parents, c.children, c.childrens_parents),
            (Some(None), None, true)
        );

        let c = parse_spec("2020_sales").unwrap();
        assert_eq!(
            (c.method, c.value.as_str(), c.parents),
            (Method::Fqn, "2020_sales", None)
        );

        let c = parse_spec("tag:a:b").unwrap();
        assert_eq!((c.method, c.value.as_str()), (Method::Tag, "a:b"));

        assert_eq!(parse_spec("models/x.sql").unwrap().method, Method::Path);
        assert_eq!(parse_spec("x.PY").unwrap().method, Method::File);
    }

    #[test]
    fn fnmatch_semantics() {
        assert!(fnmatch("a/b.c", "*"));
        assert!(fnmatch("a/b.c", "a*c"));
        assert!(fnmatch("abc", "a?c"));
        assert!(!fnmatch("ac", "a?c"));
        assert!(fnmatch("abc", "[a-c]b[!x]"));
        assert!(!fnmatch("abx", "[a-c]b[!x]"));
        assert!(!fnmatch("a]", "[]]]"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("[x", "[x"));
        assert!(fnmatch("aXbXc", "a*b*c"));
        assert!(!fnmatch("abc", "ab"));
        assert!(fnmatch("", "*"));
        assert!(!fnmatch("Abc", "abc"));
    }

    #[test]
    fn indirect_selection_names_round_trip() {
        for mode in ["eager", "cautious", "buildable", "empty"] {
            assert_eq!(
                IndirectSelection::parse(mode).map(|m| m.as_str()),
                Some(mode)
            );
        }
        assert_eq!(IndirectSelection::parse("lazy"), None);
    }
}
