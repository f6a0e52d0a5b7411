//! Column-level lineage of a model's compiled SQL.
//!
//! [`column_lineage`] answers, for every output column of the final query of a
//! model: which upstream `(relation, column)` pairs does its value derive from?
//! It traces through CTE chains (including `with recursive`), subqueries in
//! `FROM` and in expressions, aliases, joins (self-joins included, `USING`
//! merges columns), set operations, `select *` / `t.*` (with DuckDB's
//! `exclude` / `replace`), window functions, aggregates, `CASE`, casts and
//! function calls.
//!
//! What "derives from" means: every column referenced anywhere inside the
//! output expression counts — arguments, `CASE` conditions, `filter (where …)`,
//! window `partition by` / `order by`. Row filters of the query (`where`,
//! `join … on`, `group by`, `having`, `qualify`) do not. A subquery used as an
//! expression contributes the lineage of its output columns.
//!
//! The analysis never guesses. When a column can't be attributed with
//! certainty (an unqualified name with several candidate relations whose
//! columns the catalog doesn't list, a table function, an unsupported
//! construct) it is [`ColumnLineage::Untraced`] with a reason. Without a
//! catalog, `select *` from a relation can't be expanded into columns; such an
//! output entry is keyed by the wildcard as written (`*`, `t.*`). Names are
//! compared case-insensitively (quoted or not) and reported lower-case.

use std::collections::BTreeSet;
use std::iter::once;
use std::rc::Rc;

use indexmap::IndexMap;
use serde::Serialize;
use sqlparser::ast::{
    AccessExpr, Cte, ExcludeSelectItem, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, Ident, JoinConstraint, JoinOperator,
    NamedWindowDefinition, NamedWindowExpr, ObjectName, ObjectNamePart, OneOrManyWithParens, Query,
    Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier,
    Statement, Subscript, TableAlias, TableFactor, TableWithJoins, Values,
    WildcardAdditionalOptions, WindowFrameBound, WindowSpec, WindowType, With,
};
use sqlparser::parser::Parser;

use super::Engine;

/// One upstream column: a relation as written in `FROM` (quotes stripped,
/// lower-case, qualified as written) and one of its columns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ColumnRef {
    pub relation: String,
    pub column: String,
}

/// Lineage of one output column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnLineage {
    /// Every upstream column the value derives from; empty for literals.
    Traced(BTreeSet<ColumnRef>),
    /// The column could not be traced with certainty.
    Untraced { reason: String },
}

/// Lineage of a model: output columns in `SELECT` order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelLineage {
    /// Output column name (lower-case) → lineage.
    pub columns: IndexMap<String, ColumnLineage>,
    /// Set when the SQL doesn't parse, isn't a single query, or its output
    /// columns can't be determined at all; `columns` is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Looks up the columns of an upstream relation by its normalized name
/// (e.g. `analytics.int_tweets`); `None` when unknown.
pub type Catalog<'a> = &'a dyn Fn(&str) -> Option<Vec<String>>;

/// Column lineage of the final query of `sql` (a model's compiled SQL).
pub fn column_lineage(
    sql: &str,
    engine: Engine,
    catalog: &dyn Fn(&str) -> Option<Vec<String>>,
) -> ModelLineage {
    let analyzer = Analyzer { engine, catalog };
    match parse_query(sql, engine).and_then(|q| analyzer.query(&q, &Ctes::default(), None)) {
        Ok(items) => ModelLineage::from_items(items),
        Err(error) => ModelLineage {
            columns: IndexMap::new(),
            error: Some(error),
        },
    }
}

fn parse_query(sql: &str, engine: Engine) -> Result<Query, String> {
    let dialect = engine.dialect();
    let mut statements = Parser::parse_sql(dialect.as_ref(), sql).map_err(|e| e.to_string())?;
    if statements.len() != 1 {
        return Err(format!(
            "expected a single query, found {} statements",
            statements.len()
        ));
    }
    match statements.pop() {
        Some(Statement::Query(query)) => Ok(*query),
        _ => Err("the SQL is not a query (SELECT / WITH … SELECT)".to_string()),
    }
}

impl ModelLineage {
    fn from_items(items: Vec<Item>) -> Self {
        let mut columns = IndexMap::new();
        for item in items {
            let (name, lineage) = match item {
                Item::Column { name, lineage } => (name, lineage),
                Item::Opaque { label, origin } => (label, Err(origin.reason())),
            };
            let lineage = if columns.contains_key(&name) {
                ColumnLineage::Untraced {
                    reason: format!("several output columns are named `{name}`"),
                }
            } else {
                ColumnLineage::from(lineage)
            };
            columns.insert(name, lineage);
        }
        ModelLineage {
            columns,
            error: None,
        }
    }
}

impl From<Lineage> for ColumnLineage {
    fn from(lineage: Lineage) -> Self {
        match lineage {
            Ok(refs) => ColumnLineage::Traced(refs),
            Err(reason) => ColumnLineage::Untraced { reason },
        }
    }
}

// ---------------------------------------------------------------------------
// Internal model: the columns a query or `FROM` item produces.
// ---------------------------------------------------------------------------

/// Upstream columns of one value, or why they can't be known.
type Lineage = Result<BTreeSet<ColumnRef>, String>;

/// The columns of a query, or why they can't be determined at all.
type Columns = Result<Vec<Item>, String>;

/// Output of a query / columns of a `FROM` item, in order.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Column {
        name: String,
        lineage: Lineage,
    },
    /// Columns that can't be listed (a `*` over a relation the catalog doesn't
    /// know). `label` is the wildcard as written, used as the output key.
    Opaque {
        label: String,
        origin: Opacity,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Opacity {
    /// All columns of `relation` except `excluded`: any other name `c`
    /// resolves to `(relation, c)`.
    Relation {
        relation: String,
        excluded: BTreeSet<String>,
    },
    /// Nothing is known about these columns.
    Unknown(String),
}

impl Opacity {
    fn reason(&self) -> String {
        match self {
            Opacity::Relation { relation, .. } => format!(
                "the columns of `{relation}` are unknown (not in the catalog), so `*` can't be expanded"
            ),
            Opacity::Unknown(reason) => reason.clone(),
        }
    }

    /// Lineage of column `name` if these columns may contain it.
    fn lineage_of(&self, name: &str) -> Option<Lineage> {
        match self {
            Opacity::Relation { relation, excluded } if !excluded.contains(name) => {
                Some(Ok(BTreeSet::from([column_ref(relation, name)])))
            }
            Opacity::Relation { .. } => None,
            Opacity::Unknown(reason) => Some(Err(reason.clone())),
        }
    }
}

fn column_ref(relation: &str, column: &str) -> ColumnRef {
    ColumnRef {
        relation: relation.to_string(),
        column: column.to_string(),
    }
}

fn unknown(reason: impl Into<String>) -> Vec<Item> {
    vec![Item::Opaque {
        label: "*".to_string(),
        origin: Opacity::Unknown(reason.into()),
    }]
}

/// Result of looking a column name up in a list of items.
enum Lookup {
    /// An explicitly listed column (or an ambiguity error).
    Found(Lineage),
    /// Not listed, but opaque columns may contain it.
    Possible(Lineage),
    Absent,
}

fn lookup(items: &[Item], name: &str) -> Lookup {
    let listed: Vec<&Lineage> = items
        .iter()
        .filter_map(|item| match item {
            Item::Column { name: n, lineage } if n == name => Some(lineage),
            _ => None,
        })
        .collect();
    match listed.as_slice() {
        [one] => return Lookup::Found((*one).clone()),
        [_, _, ..] => return Lookup::Found(Err(format!("column `{name}` is ambiguous"))),
        [] => {}
    }
    let mut possible = items.iter().filter_map(|item| match item {
        Item::Opaque { origin, .. } => origin.lineage_of(name),
        Item::Column { .. } => None,
    });
    match (possible.next(), possible.next()) {
        (None, _) => Lookup::Absent,
        (Some(lineage), None) => Lookup::Possible(lineage),
        (Some(_), Some(_)) => Lookup::Possible(Err(format!(
            "column `{name}` may come from several relations whose columns are unknown"
        ))),
    }
}

/// Removes column `name` from `items` (also from opaque columns) and returns
/// its lineage, if it was there.
fn take_column(items: &mut Vec<Item>, name: &str) -> Option<Lineage> {
    let found = match lookup(items, name) {
        Lookup::Found(lineage) | Lookup::Possible(lineage) => Some(lineage),
        Lookup::Absent => None,
    };
    items.retain(|item| !matches!(item, Item::Column { name: n, .. } if n == name));
    for item in items.iter_mut() {
        if let Item::Opaque {
            origin: Opacity::Relation { excluded, .. },
            ..
        } = item
        {
            excluded.insert(name.to_string());
        }
    }
    found
}

/// Union of the lineage of all items (a whole row, e.g. `to_json(t.*)`).
fn row_lineage(items: &[Item]) -> Lineage {
    union_all(items.iter().map(|item| match item {
        Item::Column { lineage, .. } => lineage.clone(),
        Item::Opaque { origin, .. } => Err(origin.reason()),
    }))
}

fn union_all(parts: impl IntoIterator<Item = Lineage>) -> Lineage {
    let mut all = BTreeSet::new();
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

/// Renames the leading columns positionally (`t(a, b)` aliases).
fn rename_columns(items: Vec<Item>, aliases: &[Ident]) -> Vec<Item> {
    if aliases.is_empty() {
        return items;
    }
    let mut names = aliases.iter().map(ident_name);
    let mut renamed = Vec::with_capacity(items.len());
    for item in items {
        match (item, names.next()) {
            (item, None) => renamed.push(item),
            (Item::Column { lineage, .. }, Some(name)) => {
                renamed.push(Item::Column { name, lineage })
            }
            (Item::Opaque { origin, .. }, Some(_)) => {
                return unknown(format!(
                    "column aliases can't be applied: {}",
                    origin.reason()
                ))
            }
        }
    }
    renamed
}

// ---------------------------------------------------------------------------
// Scopes: the relations visible to expressions.
// ---------------------------------------------------------------------------

/// A `FROM` item: the names that qualify it and its columns.
#[derive(Clone, Debug)]
struct Source {
    qualifiers: Vec<String>,
    items: Vec<Item>,
}

/// The `FROM` clause of one `SELECT`, linked to enclosing queries (for
/// correlated subqueries and lateral joins).
#[derive(Clone, Debug, Default)]
struct Scope<'p> {
    sources: Vec<Source>,
    /// What `*` expands to (join order, `USING` columns merged).
    star: Vec<Item>,
    parent: Option<&'p Scope<'p>>,
}

enum Resolution {
    /// The name is a listed column of exactly one relation.
    Definite(Lineage),
    /// Only one relation may have it, but its columns aren't listed.
    Possible(Lineage),
}

impl Scope<'_> {
    /// Sources called `qualifier` in the innermost scope that has any.
    fn sources_named(&self, qualifier: &str) -> Vec<&Source> {
        let here: Vec<&Source> = self
            .sources
            .iter()
            .filter(|s| s.qualifiers.iter().any(|q| q == qualifier))
            .collect();
        match self.parent {
            Some(parent) if here.is_empty() => parent.sources_named(qualifier),
            _ => here,
        }
    }

    /// Resolves an unqualified column among this scope's sources only.
    fn resolve_here(&self, name: &str) -> Option<Resolution> {
        let mut found = Vec::new();
        let mut possible = Vec::new();
        for source in &self.sources {
            match lookup(&source.items, name) {
                Lookup::Found(lineage) => found.push(lineage),
                Lookup::Possible(lineage) => possible.push(lineage),
                Lookup::Absent => {}
            }
        }
        match (found.len(), possible.len()) {
            (0, 0) => None,
            (1, 0) => found.pop().map(Resolution::Definite),
            (0, 1) => possible.pop().map(Resolution::Possible),
            (2.., _) => Some(Resolution::Definite(match lookup(&self.star, name) {
                // `USING` / `NATURAL` merged the candidates into one column.
                Lookup::Found(lineage) => lineage,
                _ => Err(format!("column `{name}` is ambiguous")),
            })),
            _ => Some(Resolution::Definite(Err(format!(
                "column `{name}` may come from several relations; the catalog doesn't list all their columns"
            )))),
        }
    }

    /// Resolves an unqualified column in the enclosing scopes.
    fn resolve_outer(&self, name: &str) -> Option<Lineage> {
        let parent = self.parent?;
        match parent.resolve_here(name) {
            Some(Resolution::Definite(lineage) | Resolution::Possible(lineage)) => Some(lineage),
            None => parent.resolve_outer(name),
        }
    }
}

/// CTEs visible at a point of the query, innermost last.
#[derive(Clone, Debug, Default)]
struct Ctes(Vec<(String, Rc<Columns>)>);

impl Ctes {
    fn get(&self, name: &str) -> Option<&Columns> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, items)| items.as_ref())
    }

    fn with(&self, name: String, items: Columns) -> Ctes {
        let mut extended = self.clone();
        extended.0.push((name, Rc::new(items)));
        extended
    }
}

/// What expressions of one `SELECT` can see.
#[derive(Clone)]
struct ExprCtx<'a> {
    scope: &'a Scope<'a>,
    ctes: &'a Ctes,
    windows: &'a [NamedWindowDefinition],
    /// Output columns of the same `SELECT` listed so far (DuckDB lets later
    /// expressions refer to earlier aliases).
    earlier: &'a [Item],
    /// Lambda parameters in scope (not columns).
    bound: Vec<String>,
}

// ---------------------------------------------------------------------------
// The analysis.
// ---------------------------------------------------------------------------

const MAX_RECURSIVE_ROUNDS: usize = 64;
const MAX_WINDOW_DEPTH: usize = 16;

struct Analyzer<'c> {
    engine: Engine,
    catalog: Catalog<'c>,
}

impl Analyzer<'_> {
    fn query(&self, query: &Query, ctes: &Ctes, outer: Option<&Scope>) -> Columns {
        match &query.with {
            Some(with) => {
                let ctes = self.with_clause(with, ctes, outer);
                self.set_expr(&query.body, &ctes, outer)
            }
            None => self.set_expr(&query.body, ctes, outer),
        }
    }

    fn with_clause(&self, with: &With, ctes: &Ctes, outer: Option<&Scope>) -> Ctes {
        let mut env = ctes.clone();
        for cte in &with.cte_tables {
            let items = if with.recursive {
                self.recursive_cte(cte, &env, outer)
            } else {
                self.cte(cte, &env, outer)
            };
            env = env.with(ident_name(&cte.alias.name), items);
        }
        env
    }

    fn cte(&self, cte: &Cte, ctes: &Ctes, outer: Option<&Scope>) -> Columns {
        self.query(&cte.query, ctes, outer)
            .map(|items| rename_columns(items, &alias_columns(&cte.alias)))
    }

    /// A recursive CTE refers to itself: start from its anchor (the first
    /// branch of the union) and re-analyze until the lineage stops growing.
    fn recursive_cte(&self, cte: &Cte, ctes: &Ctes, outer: Option<&Scope>) -> Columns {
        let name = ident_name(&cte.alias.name);
        let mut current = self
            .set_expr(anchor_branch(&cte.query.body), ctes, outer)
            .map(|items| rename_columns(items, &alias_columns(&cte.alias)));
        for _ in 0..MAX_RECURSIVE_ROUNDS {
            let next = self.cte(cte, &ctes.with(name.clone(), current.clone()), outer);
            if next == current {
                return next;
            }
            current = next;
        }
        Err(format!(
            "the lineage of recursive CTE `{name}` did not converge"
        ))
    }

    fn set_expr(&self, body: &SetExpr, ctes: &Ctes, outer: Option<&Scope>) -> Columns {
        match body {
            SetExpr::Select(select) => Ok(self.select(select, ctes, outer)),
            SetExpr::Query(query) => self.query(query, ctes, outer),
            SetExpr::SetOperation {
                op,
                set_quantifier,
                left,
                right,
            } => {
                let left = self.set_expr(left, ctes, outer)?;
                let right = self.set_expr(right, ctes, outer)?;
                combine_set_operation(*op, *set_quantifier, left, right)
            }
            SetExpr::Values(values) => Ok(self.values(values, ctes, outer)),
            SetExpr::Table(table) => {
                let parts: Vec<&str> = [&table.schema_name, &table.table_name]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                Ok(self.named_relation(&parts.join(".").to_lowercase(), ctes))
            }
            other => Err(format!("not a query: `{other}`")),
        }
    }

    fn select(&self, select: &Select, ctes: &Ctes, outer: Option<&Scope>) -> Vec<Item> {
        let mut scope = Scope {
            parent: outer,
            ..Scope::default()
        };
        for from in &select.from {
            self.add_table_with_joins(from, ctes, &mut scope);
        }
        let mut items = Vec::new();
        for select_item in &select.projection {
            let cx = ExprCtx {
                scope: &scope,
                ctes,
                windows: &select.named_window,
                earlier: &items,
                bound: Vec::new(),
            };
            let produced = self.select_item(select_item, &cx);
            items.extend(produced);
        }
        // `where`, `group by`, `having`, `qualify` and `distinct on` only
        // filter rows; they don't contribute to lineage.
        items
    }

    fn select_item(&self, item: &SelectItem, cx: &ExprCtx) -> Vec<Item> {
        match item {
            SelectItem::UnnamedExpr(expr) => vec![Item::Column {
                name: default_column_name(expr, self.engine),
                lineage: self.expr(expr, cx),
            }],
            SelectItem::ExprWithAlias { expr, alias } => vec![Item::Column {
                name: ident_name(alias),
                lineage: self.expr(expr, cx),
            }],
            SelectItem::Wildcard(options) => {
                self.apply_wildcard_options(cx.scope.star.clone(), "*", options, cx)
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(name),
                options,
            ) => {
                let qualifier = object_name(name);
                let label = format!("{qualifier}.*");
                match qualified_items(cx.scope, &qualifier) {
                    Ok(items) => self.apply_wildcard_options(items, &label, options, cx),
                    Err(reason) => unknown(reason),
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::Expr(expr), _) => {
                unknown(format!("`{expr}.*` is not supported"))
            }
        }
    }

    /// DuckDB's `* exclude (…)` / `* replace (… as c)` (and `except`/`rename`).
    fn apply_wildcard_options(
        &self,
        mut items: Vec<Item>,
        label: &str,
        options: &WildcardAdditionalOptions,
        cx: &ExprCtx,
    ) -> Vec<Item> {
        for item in &mut items {
            if let Item::Opaque { label: l, .. } = item {
                *l = label.to_string();
            }
        }
        let mut excluded: Vec<&Ident> = match &options.opt_exclude {
            Some(ExcludeSelectItem::Single(ident)) => vec![ident],
            Some(ExcludeSelectItem::Multiple(idents)) => idents.iter().collect(),
            None => Vec::new(),
        };
        if let Some(except) = &options.opt_except {
            excluded.push(&except.first_element);
            excluded.extend(&except.additional_elements);
        }
        for ident in excluded {
            take_column(&mut items, &ident_name(ident));
        }
        if let Some(replace) = &options.opt_replace {
            for element in &replace.items {
                let name = ident_name(&element.column_name);
                let lineage = self.expr(&element.expr, cx);
                replace_column(&mut items, name, lineage);
            }
        }
        if let Some(rename) = &options.opt_rename {
            let pairs = match rename {
                sqlparser::ast::RenameSelectItem::Single(pair) => std::slice::from_ref(pair),
                sqlparser::ast::RenameSelectItem::Multiple(pairs) => pairs.as_slice(),
            };
            for pair in pairs {
                rename_column(
                    &mut items,
                    &ident_name(&pair.ident),
                    ident_name(&pair.alias),
                );
            }
        }
        items
    }

    fn values(&self, values: &Values, ctes: &Ctes, outer: Option<&Scope>) -> Vec<Item> {
        let scope = Scope {
            parent: outer,
            ..Scope::default()
        };
        let cx = ExprCtx {
            scope: &scope,
            ctes,
            windows: &[],
            earlier: &[],
            bound: Vec::new(),
        };
        let width = values.rows.first().map_or(0, Vec::len);
        (0..width)
            .map(|i| Item::Column {
                name: match self.engine {
                    Engine::Postgres => format!("column{}", i + 1),
                    Engine::DuckDb => format!("col{i}"),
                },
                lineage: union_all(values.rows.iter().map(|row| {
                    row.get(i)
                        .map_or(Ok(BTreeSet::new()), |e| self.expr(e, &cx))
                })),
            })
            .collect()
    }

    // --- FROM ------------------------------------------------------------

    /// Adds the sources of one comma-separated `FROM` entry to `scope` and
    /// appends its columns to the scope's `*`.
    fn add_table_with_joins(&self, from: &TableWithJoins, ctes: &Ctes, scope: &mut Scope) {
        let star = self.joined_star(from, ctes, scope);
        scope.star.extend(star);
    }

    /// Adds the sources of a join tree to `scope`; returns what `*` over it
    /// expands to.
    fn joined_star(&self, from: &TableWithJoins, ctes: &Ctes, scope: &mut Scope) -> Vec<Item> {
        let mut star = self.add_table_factor(&from.relation, ctes, scope);
        for join in &from.joins {
            let right = self.add_table_factor(&join.relation, ctes, scope);
            star = join_columns(star, right, &join.join_operator);
        }
        star
    }

    /// Adds one `FROM` item to `scope`; returns its columns.
    fn add_table_factor(&self, factor: &TableFactor, ctes: &Ctes, scope: &mut Scope) -> Vec<Item> {
        if let TableFactor::NestedJoin {
            table_with_joins,
            alias: None,
        } = factor
        {
            return self.joined_star(table_with_joins, ctes, scope);
        }
        let (qualifiers, items) = self.table_factor(factor, ctes, scope);
        scope.sources.push(Source {
            qualifiers,
            items: items.clone(),
        });
        items
    }

    /// Qualifiers and columns of one `FROM` item; `scope` holds the items to
    /// its left (visible to lateral subqueries).
    fn table_factor(
        &self,
        factor: &TableFactor,
        ctes: &Ctes,
        scope: &Scope,
    ) -> (Vec<String>, Vec<Item>) {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let relation = object_name(name);
                let items = rename_columns(
                    self.named_relation(&relation, ctes),
                    &alias_columns_opt(alias.as_ref()),
                );
                let qualifiers = match alias {
                    Some(alias) => vec![ident_name(&alias.name)],
                    None => default_qualifiers(&relation),
                };
                (qualifiers, items)
            }
            TableFactor::Table {
                name,
                alias,
                args: Some(_),
                ..
            } => table_function(&object_name(name), alias.as_ref()),
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
            } => {
                // Lateral subqueries (and, in DuckDB, all subqueries) see
                // the FROM items to their left.
                let siblings = Scope {
                    sources: scope.sources.clone(),
                    star: Vec::new(),
                    parent: scope.parent,
                };
                let outer = if *lateral || self.engine == Engine::DuckDb {
                    Some(&siblings)
                } else {
                    scope.parent
                };
                let items = self.query(subquery, ctes, outer).unwrap_or_else(unknown);
                let items = rename_columns(items, &alias_columns_opt(alias.as_ref()));
                let qualifiers = alias.iter().map(|a| ident_name(&a.name)).collect();
                (qualifiers, items)
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let mut inner = Scope {
                    parent: scope.parent,
                    ..Scope::default()
                };
                let star = self.joined_star(table_with_joins, ctes, &mut inner);
                let qualifiers = alias.iter().map(|a| ident_name(&a.name)).collect();
                (
                    qualifiers,
                    rename_columns(star, &alias_columns_opt(alias.as_ref())),
                )
            }
            TableFactor::Function { name, alias, .. } => {
                table_function(&object_name(name), alias.as_ref())
            }
            TableFactor::UNNEST { alias, .. } => table_function("unnest", alias.as_ref()),
            TableFactor::TableFunction { alias, .. } => table_function("table", alias.as_ref()),
            other => (
                Vec::new(),
                unknown(format!("unsupported FROM item `{other}`")),
            ),
        }
    }

    /// Columns of a relation named in `FROM`: a CTE in scope, or an upstream
    /// relation (listed by the catalog, or opaque).
    fn named_relation(&self, relation: &str, ctes: &Ctes) -> Vec<Item> {
        if let Some(cte) = ctes.get(relation) {
            return cte.clone().unwrap_or_else(unknown);
        }
        match (self.catalog)(relation) {
            Some(columns) => columns
                .iter()
                .map(|column| {
                    let column = column.to_lowercase();
                    Item::Column {
                        lineage: Ok(BTreeSet::from([column_ref(relation, &column)])),
                        name: column,
                    }
                })
                .collect(),
            None => vec![Item::Opaque {
                label: "*".to_string(),
                origin: Opacity::Relation {
                    relation: relation.to_string(),
                    excluded: BTreeSet::new(),
                },
            }],
        }
    }

    // --- expressions -----------------------------------------------------

    fn exprs<'e>(&self, exprs: impl IntoIterator<Item = &'e Expr>, cx: &ExprCtx) -> Lineage {
        union_all(exprs.into_iter().map(|e| self.expr(e, cx)))
    }

    /// Every upstream column referenced inside `expr`.
    fn expr(&self, expr: &Expr, cx: &ExprCtx) -> Lineage {
        match expr {
            Expr::Identifier(ident) => self.resolve_name(&ident_name(ident), cx),
            Expr::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(ident_name).collect();
                self.resolve_compound(&parts, cx)
            }
            Expr::Function(function) => self.function(function, cx),
            Expr::InSubquery { expr, subquery, .. } => {
                union_all([self.expr(expr, cx), self.subquery(subquery, cx)])
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => self.subquery(subquery, cx),
            Expr::QualifiedWildcard(name, _) => {
                qualified_items(cx.scope, &object_name(name)).and_then(|items| row_lineage(&items))
            }
            Expr::Lambda(lambda) => {
                let mut inner = cx.clone();
                match &lambda.params {
                    OneOrManyWithParens::One(param) => inner.bound.push(ident_name(param)),
                    OneOrManyWithParens::Many(params) => {
                        inner.bound.extend(params.iter().map(ident_name));
                    }
                }
                self.expr(&lambda.body, &inner)
            }
            other => match operands(other) {
                Some(operands) => self.exprs(operands, cx),
                None => Err(format!("unsupported expression `{other}`")),
            },
        }
    }

    /// Lineage of a subquery used as a value: all its output columns.
    fn subquery(&self, query: &Query, cx: &ExprCtx) -> Lineage {
        self.query(query, cx.ctes, Some(cx.scope))
            .and_then(|items| row_lineage(&items))
    }

    fn function(&self, function: &Function, cx: &ExprCtx) -> Lineage {
        if self.engine == Engine::DuckDb && object_name(&function.name) == "columns" {
            return Err("DuckDB `columns(…)` expressions are not traced".to_string());
        }
        union_all([
            self.function_arguments(&function.parameters, cx),
            self.function_arguments(&function.args, cx),
            self.exprs(function.filter.as_deref(), cx),
            match &function.over {
                Some(window) => self.window(window, cx, 0),
                None => Ok(BTreeSet::new()),
            },
        ])
    }

    fn function_arguments(&self, arguments: &FunctionArguments, cx: &ExprCtx) -> Lineage {
        let list = match arguments {
            FunctionArguments::None => return Ok(BTreeSet::new()),
            FunctionArguments::Subquery(query) => return self.subquery(query, cx),
            FunctionArguments::List(list) => list,
        };
        let args = list.args.iter().map(|arg| match arg {
            FunctionArg::Named { arg, .. }
            | FunctionArg::ExprNamed { arg, .. }
            | FunctionArg::Unnamed(arg) => self.function_arg(arg, cx),
        });
        let clauses = list.clauses.iter().map(|clause| match clause {
            FunctionArgumentClause::OrderBy(order_by) => {
                self.exprs(order_by.iter().map(|o| &o.expr), cx)
            }
            FunctionArgumentClause::Limit(limit) => self.expr(limit, cx),
            _ => Ok(BTreeSet::new()),
        });
        union_all(args.chain(clauses))
    }

    fn function_arg(&self, arg: &FunctionArgExpr, cx: &ExprCtx) -> Lineage {
        match arg {
            FunctionArgExpr::Expr(expr) => self.expr(expr, cx),
            // `count(*)` counts rows; it reads no column.
            FunctionArgExpr::Wildcard => Ok(BTreeSet::new()),
            FunctionArgExpr::QualifiedWildcard(name) => {
                qualified_items(cx.scope, &object_name(name)).and_then(|items| row_lineage(&items))
            }
        }
    }

    fn window(&self, window: &WindowType, cx: &ExprCtx, depth: usize) -> Lineage {
        match window {
            WindowType::WindowSpec(spec) => self.window_spec(spec, cx, depth),
            WindowType::NamedWindow(name) => self.named_window(name, cx, depth),
        }
    }

    fn named_window(&self, name: &Ident, cx: &ExprCtx, depth: usize) -> Lineage {
        if depth > MAX_WINDOW_DEPTH {
            return Err(format!("window `{name}` is defined in terms of itself"));
        }
        let wanted = ident_name(name);
        let definition = cx
            .windows
            .iter()
            .find(|NamedWindowDefinition(n, _)| ident_name(n) == wanted);
        match definition {
            Some(NamedWindowDefinition(_, NamedWindowExpr::WindowSpec(spec))) => {
                self.window_spec(spec, cx, depth + 1)
            }
            Some(NamedWindowDefinition(_, NamedWindowExpr::NamedWindow(other))) => {
                self.named_window(other, cx, depth + 1)
            }
            None => Err(format!("window `{wanted}` is not defined")),
        }
    }

    fn window_spec(&self, spec: &WindowSpec, cx: &ExprCtx, depth: usize) -> Lineage {
        let bounds = spec.window_frame.iter().flat_map(|frame| {
            frame_bound(&frame.start_bound)
                .into_iter()
                .chain(frame.end_bound.as_ref().and_then(frame_bound))
        });
        union_all([
            match &spec.window_name {
                Some(base) => self.named_window(base, cx, depth),
                None => Ok(BTreeSet::new()),
            },
            self.exprs(&spec.partition_by, cx),
            self.exprs(spec.order_by.iter().map(|o| &o.expr), cx),
            self.exprs(bounds, cx),
        ])
    }

    // --- name resolution -------------------------------------------------

    /// An unqualified column name.
    fn resolve_name(&self, name: &str, cx: &ExprCtx) -> Lineage {
        if cx.bound.iter().any(|b| b == name) {
            return Ok(BTreeSet::new());
        }
        let alias = match self.engine {
            Engine::DuckDb => match lookup(cx.earlier, name) {
                Lookup::Found(lineage) => Some(lineage),
                _ => None,
            },
            Engine::Postgres => None,
        };
        match (cx.scope.resolve_here(name), alias) {
            (Some(Resolution::Definite(lineage)), _) => lineage,
            (Some(Resolution::Possible(_)), Some(_)) => Err(format!(
                "`{name}` is either an earlier select alias or a column of a relation whose columns are unknown"
            )),
            (Some(Resolution::Possible(lineage)), None) => match cx.scope.resolve_outer(name) {
                Some(_) => Err(format!(
                    "`{name}` may be a column of a relation whose columns are unknown or of an enclosing query"
                )),
                None => lineage,
            },
            (None, Some(lineage)) => lineage,
            (None, None) => cx
                .scope
                .resolve_outer(name)
                .unwrap_or_else(|| Err(format!("column `{name}` not found in any relation in scope"))),
        }
    }

    /// `t.c`, `schema.t.c`, or `c.field` (struct field access).
    fn resolve_compound(&self, parts: &[String], cx: &ExprCtx) -> Lineage {
        let Some(first) = parts.first() else {
            return Ok(BTreeSet::new());
        };
        if cx.bound.contains(first) {
            return Ok(BTreeSet::new());
        }
        // The longest prefix naming a relation qualifies the next part.
        for split in (1..parts.len()).rev() {
            let qualifier = parts[..split].join(".");
            let column = &parts[split];
            match cx.scope.sources_named(&qualifier).as_slice() {
                [] => {}
                [source] => {
                    return match lookup(&source.items, column) {
                        Lookup::Found(lineage) | Lookup::Possible(lineage) => lineage,
                        Lookup::Absent => {
                            Err(format!("column `{column}` not found in `{qualifier}`"))
                        }
                    }
                }
                _ => return Err(format!("relation name `{qualifier}` is ambiguous")),
            }
        }
        // No relation prefix. Postgres needs `(col).field` for struct
        // fields, so this is an unknown relation there; DuckDB reads
        // `col.field`, but only a listed column makes that certain.
        let no_relation = || {
            let qualifier = parts[..parts.len().saturating_sub(1)].join(".");
            Err(format!("no relation `{qualifier}` in scope"))
        };
        match (self.engine, cx.scope.resolve_here(first)) {
            (Engine::DuckDb, Some(Resolution::Definite(lineage))) => lineage,
            (Engine::DuckDb, Some(Resolution::Possible(_))) => Err(format!(
                "`{first}` is either an unknown relation or a struct column of a relation whose columns are unknown"
            )),
            _ => no_relation(),
        }
    }
}

/// The sub-expressions of an expression whose lineage is just theirs
/// combined (operators, casts, `CASE`, literals…); `None` if unsupported.
fn operands(expr: &Expr) -> Option<Vec<&Expr>> {
    let operands: Vec<&Expr> = match expr {
        Expr::Value(_) | Expr::TypedString(_) | Expr::Wildcard(_) => Vec::new(),
        Expr::IsFalse(e)
        | Expr::IsNotFalse(e)
        | Expr::IsTrue(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotUnknown(e)
        | Expr::IsNormalized { expr: e, .. }
        | Expr::UnaryOp { expr: e, .. }
        | Expr::Cast { expr: e, .. }
        | Expr::Extract { expr: e, .. }
        | Expr::Ceil { expr: e, .. }
        | Expr::Floor { expr: e, .. }
        | Expr::Collate { expr: e, .. }
        | Expr::Nested(e)
        | Expr::Prefixed { value: e, .. }
        | Expr::Named { expr: e, .. }
        | Expr::OuterJoin(e)
        | Expr::Prior(e)
        | Expr::JsonAccess { value: e, .. } => vec![e],
        Expr::IsDistinctFrom(a, b)
        | Expr::IsNotDistinctFrom(a, b)
        | Expr::BinaryOp {
            left: a, right: b, ..
        }
        | Expr::AnyOp {
            left: a, right: b, ..
        }
        | Expr::AllOp {
            left: a, right: b, ..
        }
        | Expr::Like {
            expr: a,
            pattern: b,
            ..
        }
        | Expr::ILike {
            expr: a,
            pattern: b,
            ..
        }
        | Expr::SimilarTo {
            expr: a,
            pattern: b,
            ..
        }
        | Expr::RLike {
            expr: a,
            pattern: b,
            ..
        }
        | Expr::InUnnest {
            expr: a,
            array_expr: b,
            ..
        }
        | Expr::AtTimeZone {
            timestamp: a,
            time_zone: b,
        }
        | Expr::Position { expr: a, r#in: b } => vec![a, b],
        Expr::InList { expr, list, .. } => once(expr.as_ref()).chain(list).collect(),
        Expr::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        Expr::Convert { expr, styles, .. } => once(expr.as_ref()).chain(styles).collect(),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => once(expr.as_ref())
            .chain(substring_from.as_deref())
            .chain(substring_for.as_deref())
            .collect(),
        Expr::Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => once(expr.as_ref())
            .chain(trim_what.as_deref())
            .chain(trim_characters.iter().flatten())
            .collect(),
        Expr::Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => [expr.as_ref(), overlay_what.as_ref(), overlay_from.as_ref()]
            .into_iter()
            .chain(overlay_for.as_deref())
            .collect(),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => operand
            .as_deref()
            .into_iter()
            .chain(conditions.iter().flat_map(|w| [&w.condition, &w.result]))
            .chain(else_result.as_deref())
            .collect(),
        Expr::CompoundFieldAccess { root, access_chain } => once(root.as_ref())
            .chain(access_chain.iter().flat_map(subscript_operands))
            .collect(),
        Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
            sets.iter().flatten().collect()
        }
        Expr::Tuple(exprs) | Expr::Struct { values: exprs, .. } => exprs.iter().collect(),
        Expr::Array(array) => array.elem.iter().collect(),
        Expr::Dictionary(fields) => fields.iter().map(|f| f.value.as_ref()).collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|entry| [entry.key.as_ref(), entry.value.as_ref()])
            .collect(),
        Expr::Interval(interval) => vec![&interval.value],
        _ => return None,
    };
    Some(operands)
}

/// `[i]` / `[a:b]` subscripts read their bounds; `.field` names a struct
/// field, not a column.
fn subscript_operands(access: &AccessExpr) -> Vec<&Expr> {
    match access {
        AccessExpr::Dot(_) => Vec::new(),
        AccessExpr::Subscript(Subscript::Index { index }) => vec![index],
        AccessExpr::Subscript(Subscript::Slice {
            lower_bound,
            upper_bound,
            stride,
        }) => [lower_bound, upper_bound, stride]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// The columns of the one source called `qualifier`.
fn qualified_items(scope: &Scope, qualifier: &str) -> Columns {
    match scope.sources_named(qualifier).as_slice() {
        [source] => Ok(source.items.clone()),
        [] => Err(format!("no relation `{qualifier}` in scope")),
        _ => Err(format!("relation name `{qualifier}` is ambiguous")),
    }
}

fn frame_bound(bound: &WindowFrameBound) -> Option<&Expr> {
    match bound {
        WindowFrameBound::Preceding(expr) | WindowFrameBound::Following(expr) => expr.as_deref(),
        WindowFrameBound::CurrentRow => None,
    }
}

/// `union` / `intersect` combine column i of both sides; `except` keeps the
/// left side's values. `union by name` (DuckDB) matches columns by name.
fn combine_set_operation(
    op: SetOperator,
    quantifier: SetQuantifier,
    left: Vec<Item>,
    right: Vec<Item>,
) -> Columns {
    if let Some(Item::Opaque { origin, .. }) = left
        .iter()
        .chain(&right)
        .find(|i| matches!(i, Item::Opaque { .. }))
    {
        return Err(format!(
            "a set operation's columns can't be matched: {}",
            origin.reason()
        ));
    }
    if matches!(op, SetOperator::Except | SetOperator::Minus) {
        return Ok(left);
    }
    let by_name = matches!(
        quantifier,
        SetQuantifier::ByName | SetQuantifier::AllByName | SetQuantifier::DistinctByName
    );
    if by_name {
        return Ok(union_by_name(left, right));
    }
    if left.len() != right.len() {
        return Err(format!(
            "set operation branches have different column counts ({} and {})",
            left.len(),
            right.len()
        ));
    }
    Ok(left
        .into_iter()
        .zip(right)
        .map(|(l, r)| match (l, r) {
            (Item::Column { name, lineage: a }, Item::Column { lineage: b, .. }) => Item::Column {
                name,
                lineage: union_all([a, b]),
            },
            (l, _) => l,
        })
        .collect())
}

fn union_by_name(mut left: Vec<Item>, right: Vec<Item>) -> Vec<Item> {
    for item in right {
        let Item::Column { name, lineage } = item else {
            continue;
        };
        match left
            .iter_mut()
            .find(|i| matches!(i, Item::Column { name: n, .. } if *n == name))
        {
            Some(Item::Column {
                lineage: existing, ..
            }) => {
                *existing = union_all([existing.clone(), lineage]);
            }
            _ => left.push(Item::Column { name, lineage }),
        }
    }
    left
}

/// The columns of `left JOIN right`: `USING` / `NATURAL` columns merged
/// first (as in Postgres and DuckDB), then the rest of each side.
fn join_columns(mut left: Vec<Item>, mut right: Vec<Item>, operator: &JoinOperator) -> Vec<Item> {
    let merged: Vec<String> = match join_constraint(operator) {
        Some(JoinConstraint::Using(names)) => names.iter().map(last_name_part).collect(),
        Some(JoinConstraint::Natural) => {
            let opaque = |items: &[Item]| items.iter().any(|i| matches!(i, Item::Opaque { .. }));
            if opaque(&left) || opaque(&right) {
                return unknown("NATURAL join over relations whose columns are unknown");
            }
            column_names(&left)
                .into_iter()
                .filter(|name| column_names(&right).contains(name))
                .collect()
        }
        _ => Vec::new(),
    };
    let keep_left_only = matches!(operator, JoinOperator::Left(_) | JoinOperator::LeftOuter(_));
    let keep_right_only = matches!(
        operator,
        JoinOperator::Right(_) | JoinOperator::RightOuter(_)
    );
    let mut columns = Vec::new();
    for name in merged {
        let from_left = take_column(&mut left, &name);
        let from_right = take_column(&mut right, &name);
        let missing = || Err(format!("join column `{name}` not found"));
        let lineage = if keep_left_only {
            from_left.unwrap_or_else(missing)
        } else if keep_right_only {
            from_right.unwrap_or_else(missing)
        } else {
            union_all([
                from_left.unwrap_or_else(missing),
                from_right.unwrap_or_else(missing),
            ])
        };
        columns.push(Item::Column { name, lineage });
    }
    columns.extend(left);
    columns.extend(right);
    columns
}

fn join_constraint(operator: &JoinOperator) -> Option<&JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c)
        | JoinOperator::AsOf { constraint: c, .. } => Some(c),
        JoinOperator::CrossApply | JoinOperator::OuterApply => None,
    }
}

fn column_names(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Column { name, .. } => Some(name.clone()),
            Item::Opaque { .. } => None,
        })
        .collect()
}

fn replace_column(items: &mut Vec<Item>, name: String, lineage: Lineage) {
    let slot = items
        .iter_mut()
        .find(|i| matches!(i, Item::Column { name: n, .. } if *n == name));
    match slot {
        Some(Item::Column {
            lineage: existing, ..
        }) => *existing = lineage,
        _ => {
            take_column(items, &name);
            items.push(Item::Column { name, lineage });
        }
    }
}

fn rename_column(items: &mut Vec<Item>, from: &str, to: String) {
    let slot = items
        .iter_mut()
        .find(|i| matches!(i, Item::Column { name: n, .. } if n == from));
    match slot {
        Some(Item::Column { name, .. }) => *name = to,
        _ => {
            if let Some(lineage) = take_column(items, from) {
                items.push(Item::Column { name: to, lineage });
            }
        }
    }
}

/// A table function's columns come from its arguments, not a relation.
fn table_function(name: &str, alias: Option<&TableAlias>) -> (Vec<String>, Vec<Item>) {
    let reason = format!("values come from table function `{name}`");
    let qualifiers = alias.map(|a| ident_name(&a.name)).into_iter().collect();
    let items = match alias {
        Some(alias) if !alias.columns.is_empty() => alias
            .columns
            .iter()
            .map(|c| Item::Column {
                name: ident_name(&c.name),
                lineage: Err(reason.clone()),
            })
            .collect(),
        _ => unknown(reason),
    };
    (qualifiers, items)
}

/// The SELECT whose column names a set operation uses.
fn anchor_branch(body: &SetExpr) -> &SetExpr {
    match body {
        SetExpr::SetOperation { left, .. } => anchor_branch(left),
        SetExpr::Query(query) if query.with.is_none() => anchor_branch(&query.body),
        other => other,
    }
}

// ---------------------------------------------------------------------------
// Names.
// ---------------------------------------------------------------------------

fn ident_name(ident: &Ident) -> String {
    ident.value.to_lowercase()
}

/// `"Analytics"."Int_Tweets"` → `analytics.int_tweets`.
fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident_name(ident),
            ObjectNamePart::Function(function) => function.to_string().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn last_name_part(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(ident_name)
        .unwrap_or_default()
}

/// An unaliased relation can be qualified by its full name or its last part.
fn default_qualifiers(relation: &str) -> Vec<String> {
    let mut qualifiers = vec![relation.to_string()];
    if let Some((_, table)) = relation.rsplit_once('.') {
        qualifiers.push(table.to_string());
    }
    qualifiers
}

fn alias_columns(alias: &TableAlias) -> Vec<Ident> {
    alias.columns.iter().map(|c| c.name.clone()).collect()
}

fn alias_columns_opt(alias: Option<&TableAlias>) -> Vec<Ident> {
    alias.map(alias_columns).unwrap_or_default()
}

/// The name the engine gives an unaliased select expression. Postgres uses
/// the column or function name (else `?column?`); DuckDB uses the expression
/// text (approximated by sqlparser's rendering).
fn default_column_name(expr: &Expr, engine: Engine) -> String {
    match expr {
        Expr::Identifier(ident) => ident_name(ident),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
        _ => match engine {
            Engine::Postgres => postgres_column_name(expr),
            Engine::DuckDb => expr.to_string().to_lowercase(),
        },
    }
}

fn postgres_column_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            default_column_name(expr, Engine::Postgres)
        }
        Expr::Nested(inner) => postgres_column_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => match postgres_column_name(expr) {
            unnamed if unnamed == "?column?" => data_type.to_string().to_lowercase(),
            named => named,
        },
        Expr::Function(function) => last_name_part(&function.name),
        Expr::Case { .. } => "case".to_string(),
        _ => "?column?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Tables<'a> = &'a [(&'a str, &'a [&'a str])];

    fn run_with(engine: Engine, sql: &str, tables: Tables) -> ModelLineage {
        let catalog = |relation: &str| {
            tables
                .iter()
                .find(|(name, _)| *name == relation)
                .map(|(_, columns)| columns.iter().map(|c| c.to_string()).collect())
        };
        let lineage = column_lineage(sql, engine, &catalog);
        assert_eq!(lineage.error, None, "unexpected error for:\n{sql}");
        lineage
    }

    fn run(sql: &str, tables: Tables) -> ModelLineage {
        run_with(Engine::Postgres, sql, tables)
    }

    fn traced(pairs: &[(&str, &str)]) -> ColumnLineage {
        ColumnLineage::Traced(pairs.iter().map(|(r, c)| column_ref(r, c)).collect())
    }

    /// Asserts the exact output columns, in order, with their lineage.
    fn assert_lineage(actual: &ModelLineage, expected: &[(&str, ColumnLineage)]) {
        let actual: Vec<(&str, &ColumnLineage)> = actual
            .columns
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let expected: Vec<(&str, &ColumnLineage)> = expected.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(actual, expected);
    }

    /// Asserts that `column` is untraced with a reason mentioning `needle`.
    fn assert_untraced(lineage: &ModelLineage, column: &str, needle: &str) {
        match lineage.columns.get(column) {
            Some(ColumnLineage::Untraced { reason }) => {
                assert!(
                    reason.contains(needle),
                    "reason {reason:?} should mention {needle:?}"
                )
            }
            other => panic!("`{column}` should be untraced, got {other:?}"),
        }
    }

    #[test]
    fn traces_qualified_and_unqualified_columns_of_one_relation() {
        let lineage = run(
            "select id, u.email as mail, u.name from analytics.users as u",
            &[],
        );
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("analytics.users", "id")])),
                ("mail", traced(&[("analytics.users", "email")])),
                ("name", traced(&[("analytics.users", "name")])),
            ],
        );
    }

    #[test]
    fn strips_quotes_and_lower_cases_relations_and_columns() {
        let lineage = run(
            r#"select "UserId" as "ID", T."Name", "analytics"."Int_Tweets"."Likes"
               from "analytics"."Int_Tweets" t"#,
            &[],
        );
        assert_eq!(
            lineage.columns.keys().collect::<Vec<_>>(),
            ["id", "name", "likes"]
        );
        assert_eq!(
            lineage.columns["id"],
            traced(&[("analytics.int_tweets", "userid")])
        );
        assert_eq!(
            lineage.columns["name"],
            traced(&[("analytics.int_tweets", "name")])
        );
        // The alias `t` hides the relation's own name (as in Postgres).
        assert_untraced(&lineage, "likes", "no relation `analytics.int_tweets`");
    }

    #[test]
    fn full_relation_name_qualifies_an_unaliased_relation() {
        let lineage = run(
            r#"select "Analytics"."Int_Tweets".likes, int_tweets.id from "analytics"."int_tweets""#,
            &[],
        );
        assert_lineage(
            &lineage,
            &[
                ("likes", traced(&[("analytics.int_tweets", "likes")])),
                ("id", traced(&[("analytics.int_tweets", "id")])),
            ],
        );
    }

    #[test]
    fn traces_through_a_cte_chain_with_renames() {
        let sql = "
            with source as (select * from raw.tweets),
            renamed as (
                select id as tweet_id, author_name as author, likes + retweets as engagement
                from source
            ),
            final as (select tweet_id, upper(author) as author_upper, engagement from renamed)
            select * from final";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("tweet_id", traced(&[("raw.tweets", "id")])),
                ("author_upper", traced(&[("raw.tweets", "author_name")])),
                (
                    "engagement",
                    traced(&[("raw.tweets", "likes"), ("raw.tweets", "retweets")]),
                ),
            ],
        );
    }

    #[test]
    fn expands_select_star_through_two_levels_of_ctes_with_the_catalog() {
        let sql = "
            with a as (select * from raw.users),
                 b as (select * from a)
            select * from b";
        let lineage = run(sql, &[("raw.users", &["ID", "Email", "created_at"])]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("raw.users", "id")])),
                ("email", traced(&[("raw.users", "email")])),
                ("created_at", traced(&[("raw.users", "created_at")])),
            ],
        );
    }

    #[test]
    fn names_through_unexpanded_stars_resolve_to_the_relation_without_a_catalog() {
        let sql = "
            with a as (select * from raw.users),
                 b as (select *, 1 as flag from a)
            select id, email, flag from b";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("raw.users", "id")])),
                ("email", traced(&[("raw.users", "email")])),
                ("flag", traced(&[])),
            ],
        );
    }

    #[test]
    fn final_select_star_over_unknown_relation_is_untraced() {
        let lineage = run("with a as (select * from raw.users) select * from a", &[]);
        assert_eq!(lineage.columns.len(), 1);
        assert_untraced(&lineage, "*", "raw.users");
    }

    #[test]
    fn self_join_with_different_aliases() {
        let sql = "
            select e.name as employee, m.email as manager_email, e.salary - m.salary as gap
            from hr.employees e
            left join hr.employees m on e.manager_id = m.id";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("employee", traced(&[("hr.employees", "name")])),
                ("manager_email", traced(&[("hr.employees", "email")])),
                ("gap", traced(&[("hr.employees", "salary")])),
            ],
        );
    }

    #[test]
    fn self_join_of_a_cte() {
        let sql = "
            with people as (select id, full_name as n, boss_id from hr.staff)
            select p.n as person, b.n as boss from people p join people b on p.boss_id = b.id";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("person", traced(&[("hr.staff", "full_name")])),
                ("boss", traced(&[("hr.staff", "full_name")])),
            ],
        );
    }

    #[test]
    fn union_all_combines_column_i_of_every_branch() {
        let sql = "
            select id, web_amount as amount, 'web' as channel from sales.web
            union all
            select store_id, store_amount, channel_name from sales.store
            union all
            select id, amount * 100, 'app' from sales.app";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                (
                    "id",
                    traced(&[
                        ("sales.app", "id"),
                        ("sales.store", "store_id"),
                        ("sales.web", "id"),
                    ]),
                ),
                (
                    "amount",
                    traced(&[
                        ("sales.app", "amount"),
                        ("sales.store", "store_amount"),
                        ("sales.web", "web_amount"),
                    ]),
                ),
                ("channel", traced(&[("sales.store", "channel_name")])),
            ],
        );
    }

    #[test]
    fn union_inside_a_cte_then_aggregated() {
        let sql = "
            with all_events as (
                select user_id, ts from app.clicks
                union all
                select uid, viewed_at from app.views
            )
            select user_id, max(ts) as last_seen from all_events group by user_id";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                (
                    "user_id",
                    traced(&[("app.clicks", "user_id"), ("app.views", "uid")]),
                ),
                (
                    "last_seen",
                    traced(&[("app.clicks", "ts"), ("app.views", "viewed_at")]),
                ),
            ],
        );
    }

    #[test]
    fn except_keeps_the_left_values_only() {
        let lineage = run(
            "select id from app.users except select user_id from app.banned",
            &[],
        );
        assert_lineage(&lineage, &[("id", traced(&[("app.users", "id")]))]);
    }

    #[test]
    fn union_with_different_column_counts_is_a_model_error() {
        let lineage = column_lineage(
            "select a, b from x union all select a from y",
            Engine::Postgres,
            &|_| None,
        );
        assert!(lineage.columns.is_empty());
        assert!(lineage
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("column counts"));
    }

    #[test]
    fn window_functions_include_partition_and_order_columns() {
        let sql = "
            select
                row_number() over (partition by user_id order by created_at desc) as rn,
                sum(amount) over (partition by user_id order by created_at
                                  rows between unbounded preceding and current row) as running,
                lag(status) over w as prev_status
            from shop.orders
            window w as (partition by region order by ordered_at)";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                (
                    "rn",
                    traced(&[("shop.orders", "created_at"), ("shop.orders", "user_id")]),
                ),
                (
                    "running",
                    traced(&[
                        ("shop.orders", "amount"),
                        ("shop.orders", "created_at"),
                        ("shop.orders", "user_id"),
                    ]),
                ),
                (
                    "prev_status",
                    traced(&[
                        ("shop.orders", "ordered_at"),
                        ("shop.orders", "region"),
                        ("shop.orders", "status"),
                    ]),
                ),
            ],
        );
    }

    #[test]
    fn aggregates_filters_and_row_filters() {
        let sql = "
            select customer_id,
                   count(*) as n,
                   count(*) filter (where status = 'paid') as n_paid,
                   sum(amount) as total
            from shop.orders
            where created_at > now() - interval '30 days'
            group by customer_id
            having sum(amount) > 0";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("customer_id", traced(&[("shop.orders", "customer_id")])),
                ("n", traced(&[])),
                ("n_paid", traced(&[("shop.orders", "status")])),
                ("total", traced(&[("shop.orders", "amount")])),
            ],
        );
    }

    #[test]
    fn expressions_mixing_columns_of_several_relations() {
        let sql = "
            select coalesce(o.discount, c.default_discount) * o.amount + 1 as net,
                   case when c.tier = 'gold' then o.amount else 0 end as gold_amount,
                   o.amount::numeric(10, 2),
                   date_trunc('day', o.created_at) as day,
                   concat(c.first_name, ' ', c.last_name) full_name
            from shop.orders o join shop.customers c on o.customer_id = c.id";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                (
                    "net",
                    traced(&[
                        ("shop.customers", "default_discount"),
                        ("shop.orders", "amount"),
                        ("shop.orders", "discount"),
                    ]),
                ),
                (
                    "gold_amount",
                    traced(&[("shop.customers", "tier"), ("shop.orders", "amount")]),
                ),
                ("amount", traced(&[("shop.orders", "amount")])),
                ("day", traced(&[("shop.orders", "created_at")])),
                (
                    "full_name",
                    traced(&[
                        ("shop.customers", "first_name"),
                        ("shop.customers", "last_name"),
                    ]),
                ),
            ],
        );
    }

    #[test]
    fn unqualified_names_over_joins_need_the_catalog() {
        let sql =
            "select amount, tier from shop.orders o join shop.customers c on o.customer_id = c.id";
        let without = run(sql, &[]);
        assert_untraced(&without, "amount", "several relations");
        assert_untraced(&without, "tier", "several relations");

        let with = run(
            sql,
            &[
                ("shop.orders", &["id", "customer_id", "amount"]),
                ("shop.customers", &["id", "tier"]),
            ],
        );
        assert_lineage(
            &with,
            &[
                ("amount", traced(&[("shop.orders", "amount")])),
                ("tier", traced(&[("shop.customers", "tier")])),
            ],
        );
    }

    #[test]
    fn a_partial_catalog_resolves_by_elimination_only() {
        let sql =
            "select amount, id from shop.orders o join shop.customers c on o.customer_id = c.id";
        // Orders is known and has no `amount`: it must come from customers.
        // `id` is in orders and maybe in customers: ambiguous.
        let lineage = run(sql, &[("shop.orders", &["id", "customer_id"])]);
        assert_lineage(
            &lineage,
            &[
                ("amount", traced(&[("shop.customers", "amount")])),
                ("id", lineage.columns["id"].clone()),
            ],
        );
        assert_untraced(&lineage, "id", "several relations");
    }

    #[test]
    fn ambiguous_column_in_known_relations_is_untraced() {
        let lineage = run(
            "select id from a join b on a.x = b.y",
            &[("a", &["id", "x"]), ("b", &["id", "y"])],
        );
        assert_untraced(&lineage, "id", "ambiguous");
    }

    #[test]
    fn using_join_merges_the_join_column() {
        let sql = "select * from a join b using (id)";
        let lineage = run(sql, &[("a", &["id", "x"]), ("b", &["id", "y"])]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("a", "id"), ("b", "id")])),
                ("x", traced(&[("a", "x")])),
                ("y", traced(&[("b", "y")])),
            ],
        );
        let left = run(
            "select id from a left join b using (id)",
            &[("a", &["id", "x"]), ("b", &["id", "y"])],
        );
        assert_lineage(&left, &[("id", traced(&[("a", "id")]))]);
    }

    #[test]
    fn subqueries_in_from_and_scalar_subqueries() {
        let sql = "
            select s.uid, s.total,
                   (select max(p.price) from shop.products p where p.id = s.uid) as max_price
            from (select user_id as uid, sum(amount) as total from shop.orders group by 1) as s";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("uid", traced(&[("shop.orders", "user_id")])),
                ("total", traced(&[("shop.orders", "amount")])),
                ("max_price", traced(&[("shop.products", "price")])),
            ],
        );
    }

    #[test]
    fn subquery_column_aliases_rename_positionally() {
        let lineage = run("select a, b from (select x, y + z from t) as s(a, b)", &[]);
        assert_lineage(
            &lineage,
            &[
                ("a", traced(&[("t", "x")])),
                ("b", traced(&[("t", "y"), ("t", "z")])),
            ],
        );
    }

    #[test]
    fn correlated_reference_to_an_outer_query() {
        let sql = "
            select u.id,
                   (select count(*) + u.bonus from shop.orders o where o.user_id = u.id) as score
            from shop.users u";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("shop.users", "id")])),
                ("score", traced(&[("shop.users", "bonus")])),
            ],
        );
    }

    #[test]
    fn unqualified_name_in_a_correlated_subquery_without_catalog_is_untraced() {
        let sql = "select (select max(bonus) from shop.orders o) as b from shop.users u";
        let lineage = run(sql, &[]);
        assert_untraced(&lineage, "b", "enclosing query");
        let known = run(sql, &[("shop.orders", &["id"]), ("shop.users", &["bonus"])]);
        assert_lineage(&known, &[("b", traced(&[("shop.users", "bonus")]))]);
    }

    #[test]
    fn lateral_join_sees_earlier_from_items() {
        let sql = "
            select u.id, l.last_total
            from shop.users u
            left join lateral (
                select o.amount * u.multiplier as last_total from shop.orders o
                where o.user_id = u.id order by o.created_at desc limit 1
            ) l on true";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("shop.users", "id")])),
                (
                    "last_total",
                    traced(&[("shop.orders", "amount"), ("shop.users", "multiplier")]),
                ),
            ],
        );
    }

    #[test]
    fn literal_only_columns_are_traced_with_no_upstream() {
        let lineage = run(
            "select 1 as one, 'x' as s, null as n, current_date as d, interval '1 minute' as i, now() as t",
            &[],
        );
        assert_lineage(
            &lineage,
            &[
                ("one", traced(&[])),
                ("s", traced(&[])),
                ("n", traced(&[])),
                ("d", traced(&[])),
                ("i", traced(&[])),
                ("t", traced(&[])),
            ],
        );
    }

    #[test]
    fn qualified_star_with_catalog_in_a_join() {
        let sql = "select o.*, c.name as customer from shop.orders o join shop.customers c on o.cid = c.id";
        let lineage = run(
            sql,
            &[
                ("shop.orders", &["id", "cid"]),
                ("shop.customers", &["id", "name"]),
            ],
        );
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("shop.orders", "id")])),
                ("cid", traced(&[("shop.orders", "cid")])),
                ("customer", traced(&[("shop.customers", "name")])),
            ],
        );
    }

    #[test]
    fn duckdb_star_exclude_and_replace() {
        let sql = "select * exclude (password) replace (lower(email) as email) from app.users";
        let lineage = run_with(
            Engine::DuckDb,
            sql,
            &[("app.users", &["id", "email", "password", "name"])],
        );
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("app.users", "id")])),
                ("email", traced(&[("app.users", "email")])),
                ("name", traced(&[("app.users", "name")])),
            ],
        );
        assert!(!lineage.columns.contains_key("password"));
    }

    #[test]
    fn duckdb_exclude_without_catalog_hides_the_column_from_later_lookups() {
        let sql =
            "with u as (select * exclude (password) from app.users) select id, password from u";
        let lineage = run_with(Engine::DuckDb, sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("app.users", "id")])),
                ("password", lineage.columns["password"].clone()),
            ],
        );
        assert_untraced(&lineage, "password", "not found");
    }

    #[test]
    fn duckdb_qualify_and_earlier_select_aliases() {
        let sql = "
            select amount * rate as converted, converted * 2 as doubled
            from fx.payments
            qualify row_number() over (partition by payment_id order by loaded_at desc) = 1";
        let lineage = run_with(
            Engine::DuckDb,
            sql,
            &[(
                "fx.payments",
                &["amount", "rate", "payment_id", "loaded_at"],
            )],
        );
        assert_lineage(
            &lineage,
            &[
                (
                    "converted",
                    traced(&[("fx.payments", "amount"), ("fx.payments", "rate")]),
                ),
                (
                    "doubled",
                    traced(&[("fx.payments", "amount"), ("fx.payments", "rate")]),
                ),
            ],
        );
        // Without a catalog, `converted` might also be a column of fx.payments.
        let unsure = run_with(Engine::DuckDb, sql, &[]);
        assert_untraced(&unsure, "doubled", "select alias");
    }

    #[test]
    fn duckdb_union_by_name() {
        let sql = "select a, b from x union all by name select b, c from y";
        let lineage = run_with(Engine::DuckDb, sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("a", traced(&[("x", "a")])),
                ("b", traced(&[("x", "b"), ("y", "b")])),
                ("c", traced(&[("y", "c")])),
            ],
        );
    }

    #[test]
    fn duckdb_lambda_parameters_are_not_columns() {
        let sql = "select list_transform(tags, t -> upper(t) || suffix) as tags from app.posts";
        let lineage = run_with(Engine::DuckDb, sql, &[]);
        assert_lineage(
            &lineage,
            &[(
                "tags",
                traced(&[("app.posts", "suffix"), ("app.posts", "tags")]),
            )],
        );
    }

    #[test]
    fn postgres_distinct_on_and_default_names() {
        let sql = "
            select distinct on (user_id) user_id, created_at::date, lower(email), id + 1
            from app.events order by user_id, created_at desc";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("user_id", traced(&[("app.events", "user_id")])),
                ("created_at", traced(&[("app.events", "created_at")])),
                ("lower", traced(&[("app.events", "email")])),
                ("?column?", traced(&[("app.events", "id")])),
            ],
        );
    }

    #[test]
    fn struct_field_and_json_access_trace_to_the_column() {
        let lineage = run(
            "select (payload).user_id as uid, data ->> 'name' as name, tags[1] as first_tag from raw.events",
            &[],
        );
        assert_lineage(
            &lineage,
            &[
                ("uid", traced(&[("raw.events", "payload")])),
                ("name", traced(&[("raw.events", "data")])),
                ("first_tag", traced(&[("raw.events", "tags")])),
            ],
        );
    }

    #[test]
    fn duckdb_dotted_struct_access_needs_a_listed_column() {
        let sql = "select payload.user_id as uid from raw.events";
        let known = run_with(Engine::DuckDb, sql, &[("raw.events", &["payload"])]);
        assert_lineage(&known, &[("uid", traced(&[("raw.events", "payload")]))]);
        // Without a catalog `payload` could be a misspelt relation name.
        let unknown = run_with(Engine::DuckDb, sql, &[]);
        assert_untraced(&unknown, "uid", "unknown relation or a struct column");
        // Postgres has no `col.field` syntax: `payload` must be a relation.
        let postgres = run(sql, &[("raw.events", &["payload"])]);
        assert_untraced(&postgres, "uid", "no relation `payload`");
    }

    #[test]
    fn ctes_shadow_relations_and_nested_with_is_scoped() {
        let sql = "
            with orders as (select id, total_cents / 100 as total from raw.orders)
            select o.total,
                   (with orders as (select 1 as total) select max(total) from orders) as inner_total
            from orders o";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("total", traced(&[("raw.orders", "total_cents")])),
                ("inner_total", traced(&[])),
            ],
        );
    }

    #[test]
    fn recursive_cte_accumulates_lineage_of_both_members() {
        let sql = "
            with recursive tree(id, path) as (
                select id, name from org.nodes where parent_id is null
                union all
                select n.id, t.path || '/' || n.slug from org.nodes n join tree t on n.parent_id = t.id
            )
            select id, path from tree";
        let lineage = run(sql, &[]);
        assert_lineage(
            &lineage,
            &[
                ("id", traced(&[("org.nodes", "id")])),
                (
                    "path",
                    traced(&[("org.nodes", "name"), ("org.nodes", "slug")]),
                ),
            ],
        );
    }

    #[test]
    fn table_functions_are_untraced() {
        let lineage = run("select g.n from generate_series(1, 10) as g(n)", &[]);
        assert_untraced(&lineage, "n", "generate_series");
    }

    #[test]
    fn duplicate_output_names_are_untraced() {
        let lineage = run("select a.id, b.id from a join b on a.x = b.x", &[]);
        assert_eq!(lineage.columns.len(), 1);
        assert_untraced(&lineage, "id", "several output columns");
    }

    #[test]
    fn unknown_qualifier_is_untraced() {
        let lineage = run("select z.id, users.id as hidden from app.users u", &[]);
        assert_untraced(&lineage, "id", "no relation `z`");
        assert_untraced(&lineage, "hidden", "no relation `users`");
    }

    #[test]
    fn parse_errors_and_non_queries_set_the_error() {
        let broken = column_lineage("select from where (", Engine::Postgres, &|_| None);
        assert!(broken.columns.is_empty());
        assert!(broken.error.is_some());

        let insert = column_lineage("insert into t values (1)", Engine::Postgres, &|_| None);
        assert_eq!(
            insert.error.as_deref(),
            Some("the SQL is not a query (SELECT / WITH … SELECT)")
        );

        let two = column_lineage("select 1; select 2", Engine::Postgres, &|_| None);
        assert!(two
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("2 statements"));
    }

    #[test]
    fn trailing_semicolon_and_comments_are_fine() {
        let lineage = run("-- model\nselect id /* pk */ from app.users;\n", &[]);
        assert_lineage(&lineage, &[("id", traced(&[("app.users", "id")]))]);
    }

    #[test]
    fn case_insensitive_matching_of_ctes_aliases_and_columns() {
        let sql = "with Stg as (select ID as User_Id from RAW.Users U) select STG.user_ID from stg";
        let lineage = run(sql, &[]);
        assert_lineage(&lineage, &[("user_id", traced(&[("raw.users", "id")]))]);
    }

    #[test]
    fn serializes_to_tagged_json() {
        let lineage = run("select id, 1 as one, z.q from app.users", &[]);
        let json = serde_json::to_value(&lineage).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "columns": {
                    "id": {"traced": [{"relation": "app.users", "column": "id"}]},
                    "one": {"traced": []},
                    "q": {"untraced": {"reason": "no relation `z` in scope"}}
                }
            })
        );
    }
}
