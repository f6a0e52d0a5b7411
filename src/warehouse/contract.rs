//! Model contracts (dbt 1.5+): a model with `contract: {enforced: true}`
//! promises the columns its YAML lists, with their `data_type`s, and may
//! carry constraints.
//!
//! As dbt-postgres and dbt-duckdb do it:
//! * before a view or table is built, the columns its SQL returns are
//!   compared with the contract's, both as the warehouse types them (the SQL
//!   `… where false limit 0`, the contract `select cast(null as <type>) as
//!   <name>, …`). A difference in names, types or count fails the build with
//!   dbt's table of mismatches, and the previous relation stays;
//! * a table is created from the contract's column list (types, column-level
//!   constraints, model-level constraints) and then filled with `insert …
//!   select <columns> from (<sql>) as model_subq`, so the warehouse enforces
//!   the constraints on every row.
//!
//! Both engines enforce every constraint type dbt knows (`check`,
//! `not_null`, `unique`, `primary_key`, `foreign_key`) and take `custom`
//! ones verbatim.

use serde_json::Value;

use super::adapter::{quote, render, same_type};
use super::{ColumnMeta, Connection, Relation, WarehouseError};
use crate::project::config::string_list;
use crate::project::node::Node;

/// dbt's constraint types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Check,
    NotNull,
    Unique,
    PrimaryKey,
    ForeignKey,
    Custom,
}

const KINDS: &str = "['check', 'not_null', 'unique', 'primary_key', 'foreign_key', 'custom']";

impl ConstraintKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "check" => Self::Check,
            "not_null" => Self::NotNull,
            "unique" => Self::Unique,
            "primary_key" => Self::PrimaryKey,
            "foreign_key" => Self::ForeignKey,
            "custom" => Self::Custom,
            _ => return None,
        })
    }
}

/// One constraint as written in YAML, on a column or on the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub kind: ConstraintKind,
    pub name: Option<String>,
    pub expression: Option<String>,
    /// Model-level: the columns it covers.
    pub columns: Vec<String>,
    /// Foreign key: the referenced relation (`ref('customers')` in YAML,
    /// the rendered relation name once resolved) and its columns.
    pub to: Option<String>,
    pub to_columns: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.map(string_list).unwrap_or_default()
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl Constraint {
    pub fn parse(v: &Value) -> Result<Self, String> {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .and_then(ConstraintKind::parse)
            .ok_or_else(|| format!("Type must be one of {KINDS}"))?;
        Ok(Constraint {
            kind,
            name: text(v.get("name")),
            expression: text(v.get("expression")),
            columns: strings(v.get("columns")),
            to: text(v.get("to")),
            to_columns: strings(v.get("to_columns")),
        })
    }

    /// The DDL after a column's type (dbt's `render_column_constraint`).
    fn render_for_column(&self) -> Option<String> {
        let expr = self.expression.as_deref().unwrap_or("");
        let out = match self.kind {
            ConstraintKind::Check if !expr.is_empty() => format!("check ({expr})"),
            ConstraintKind::NotNull => format!("not null {expr}"),
            ConstraintKind::Unique => format!("unique {expr}"),
            ConstraintKind::PrimaryKey => format!("primary key {expr}"),
            ConstraintKind::ForeignKey => match (&self.to, self.to_columns.is_empty()) {
                (Some(to), false) => format!("references {to} ({})", self.to_columns.join(", ")),
                _ if !expr.is_empty() => format!("references {expr}"),
                _ => return None,
            },
            ConstraintKind::Custom if !expr.is_empty() => expr.to_string(),
            _ => return None,
        };
        Some(out.trim().to_string())
    }

    /// A table-level constraint (dbt's `render_model_constraint`).
    fn render_for_model(&self) -> Option<String> {
        let prefix = self
            .name
            .as_deref()
            .map(|n| format!("constraint {n} "))
            .unwrap_or_default();
        let cols = self.columns.join(", ");
        let expr = self
            .expression
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default();
        Some(match self.kind {
            ConstraintKind::Check if !expr.is_empty() => format!("{prefix}check ({})", expr.trim()),
            ConstraintKind::Unique => format!("{prefix}unique{expr} ({cols})"),
            ConstraintKind::PrimaryKey => format!("{prefix}primary key{expr} ({cols})"),
            ConstraintKind::ForeignKey => match (&self.to, self.to_columns.is_empty()) {
                (Some(to), false) => format!(
                    "{prefix}foreign key ({cols}) references {to} ({})",
                    self.to_columns.join(", ")
                ),
                _ if !expr.is_empty() => {
                    format!("{prefix}foreign key ({cols}) references {}", expr.trim())
                }
                _ => return None,
            },
            ConstraintKind::Custom if !expr.is_empty() => format!("{prefix}{}", expr.trim()),
            _ => return None,
        })
    }
}

/// One column of a contract.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractColumn {
    pub name: String,
    pub data_type: Option<String>,
    pub quote: bool,
    pub constraints: Vec<Constraint>,
}

impl ContractColumn {
    fn sql_name(&self) -> String {
        if self.quote {
            quote(&self.name)
        } else {
            self.name.clone()
        }
    }
}

/// An enforced contract: the model's YAML columns and constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    pub columns: Vec<ContractColumn>,
    pub constraints: Vec<Constraint>,
}

/// Whether a node's config enforces its contract.
pub fn enforced(node: &Node) -> bool {
    node.config
        .get("contract")
        .and_then(|c| c.get("enforced"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// dbt's `Column.translate_type` with `alias_types` on: `string` is `text`.
fn alias_type(t: &str) -> String {
    if t.trim().eq_ignore_ascii_case("string") {
        "TEXT".to_string()
    } else {
        t.to_string()
    }
}

impl Contract {
    /// The contract a model enforces, `None` when it enforces none.
    /// Foreign keys' `to` is as written; see [`Contract::resolve_to`].
    pub fn of(node: &Node) -> Result<Option<Contract>, String> {
        if !enforced(node) {
            return Ok(None);
        }
        let alias_types = node
            .config
            .get("contract")
            .and_then(|c| c.get("alias_types"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut columns = Vec::new();
        for c in node.columns.values() {
            columns.push(ContractColumn {
                name: c.name.clone(),
                data_type: c.data_type.as_deref().map(|t| {
                    if alias_types {
                        alias_type(t)
                    } else {
                        t.to_string()
                    }
                }),
                quote: c.quote.unwrap_or(false),
                constraints: c
                    .constraints
                    .iter()
                    .map(Constraint::parse)
                    .collect::<Result<_, _>>()?,
            });
        }
        let constraints = node
            .constraints
            .iter()
            .map(Constraint::parse)
            .collect::<Result<_, _>>()?;
        Ok(Some(Contract {
            columns,
            constraints,
        }))
    }

    /// Replace every foreign key's `to` (`ref('customers')`) with what
    /// `resolve` renders it to (the relation's name).
    pub fn resolve_to(
        &mut self,
        mut resolve: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<(), String> {
        let all = self
            .columns
            .iter_mut()
            .flat_map(|c| c.constraints.iter_mut())
            .chain(self.constraints.iter_mut());
        for c in all {
            if let Some(to) = &c.to {
                c.to = Some(resolve(to)?);
            }
        }
        Ok(())
    }

    /// `select cast(null as <type>) as <name>, …`: the contract's columns as
    /// the warehouse types them (dbt's `get_empty_schema_sql`).
    fn empty_schema_sql(&self) -> Result<String, String> {
        let missing: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.data_type.is_none())
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "Contracted models require data_type to be defined for each column. Please \
                 ensure that the column name and data_type are defined within the YAML \
                 configuration for the {:?} column(s).",
                missing
            ));
        }
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "cast(null as {}) as {}",
                    c.data_type.as_deref().unwrap_or_default(),
                    c.sql_name()
                )
            })
            .collect();
        Ok(format!("select {}", cols.join(", ")))
    }

    /// `(<name> <type> <constraints>, …, <model constraints>)` (dbt's
    /// `get_table_columns_and_constraints`).
    fn columns_and_constraints(&self) -> String {
        let mut items: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut parts = vec![format!(
                    "{} {}",
                    c.sql_name(),
                    c.data_type.as_deref().unwrap_or_default()
                )];
                parts.extend(
                    c.constraints
                        .iter()
                        .filter_map(Constraint::render_for_column),
                );
                parts.join(" ")
            })
            .collect();
        items.extend(
            self.constraints
                .iter()
                .filter_map(Constraint::render_for_model),
        );
        format!("(\n    {}\n)", items.join(",\n    "))
    }

    fn column_names(&self) -> String {
        self.columns
            .iter()
            .map(ContractColumn::sql_name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The columns `sql` returns, without running it for rows.
fn columns_of_query(
    conn: &mut dyn Connection,
    sql: &str,
) -> Result<Vec<ColumnMeta>, WarehouseError> {
    Ok(conn
        .query(&format!(
            "select * from (\n{sql}\n) as __dbt_sbq where false limit 0"
        ))?
        .columns)
}

/// Fail unless `sql` returns exactly the contract's columns, with the same
/// types as the warehouse sees them (dbt's `assert_columns_equivalent`).
pub fn assert_columns_equivalent(
    conn: &mut dyn Connection,
    sql: &str,
    contract: &Contract,
) -> Result<(), String> {
    if contract.columns.is_empty() {
        return Err(
            "This model has an enforced contract, and its 'columns' specification is missing"
                .to_string(),
        );
    }
    let sql_columns = columns_of_query(conn, sql).map_err(|e| e.to_string())?;
    let yaml_sql = contract.empty_schema_sql()?;
    let yaml_columns = conn.query(&yaml_sql).map_err(|e| e.to_string())?.columns;
    match mismatches(&yaml_columns, &sql_columns) {
        None => Ok(()),
        Some(table) => Err(format!(
            "This model has an enforced contract that failed.\nPlease ensure the name, \
             data_type, and number of columns in your contract match the columns in your \
             model's definition.\n\n{table}"
        )),
    }
}

/// dbt's mismatch table, or `None` when the columns agree. A column matches
/// by name (as the warehouse reports it) and type; order does not matter.
pub fn mismatches(yaml: &[ColumnMeta], sql: &[ColumnMeta]) -> Option<String> {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for s in sql {
        match yaml.iter().find(|y| y.name == s.name) {
            Some(y) if same_type(&y.data_type, &s.data_type) => {}
            Some(y) => rows.push([
                s.name.clone(),
                s.data_type.to_uppercase(),
                y.data_type.to_uppercase(),
                "data type mismatch".into(),
            ]),
            None => rows.push([
                s.name.clone(),
                s.data_type.to_uppercase(),
                String::new(),
                "missing in contract".into(),
            ]),
        }
    }
    for y in yaml {
        if !sql.iter().any(|s| s.name == y.name) {
            rows.push([
                y.name.clone(),
                String::new(),
                y.data_type.to_uppercase(),
                "missing in definition".into(),
            ]);
        }
    }
    if rows.is_empty() && yaml.len() == sql.len() {
        return None;
    }
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    let header = [
        "column_name",
        "definition_type",
        "contract_type",
        "mismatch_reason",
    ];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![line(header)];
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push(format!("| {} |", dashes.join(" | ")));
    for r in &rows {
        out.push(line([&r[0], &r[1], &r[2], &r[3]]));
    }
    Some(out.join("\n"))
}

/// Create `relation` from the contract's columns and constraints and fill
/// it with `sql`'s rows; returns the rows inserted.
pub fn create_table(
    conn: &mut dyn Connection,
    relation: &Relation,
    sql: &str,
    contract: &Contract,
) -> Result<u64, WarehouseError> {
    conn.execute(&format!(
        "create table {} {}",
        render(relation),
        contract.columns_and_constraints()
    ))?;
    let cols = contract.column_names();
    conn.execute(&format!(
        "insert into {} ({cols})\nselect {cols} from (\n{sql}\n) as model_subq",
        render(relation)
    ))
}

/// Parse-time checks of a model's constraints (dbt's `patch_constraints`):
/// each constraint must have a known type when the contract is enforced, an
/// enforced contract needs YAML columns, and a primary key is declared on
/// one column or on the model, not both.
pub fn check_node(node: &Node) -> Vec<String> {
    let mut errors = Vec::new();
    let column_constraints = node.columns.values().flat_map(|c| c.constraints.iter());
    if enforced(node) {
        if node.patch_path.is_some() && node.columns.is_empty() {
            errors.push(format!(
                "Contract enforcement failed for: ({})\nConstraints must be defined in a `yml` \
                 schema configuration file like `schema.yml`.",
                node.original_file_path
            ));
        }
        let bad = column_constraints
            .clone()
            .chain(node.constraints.iter())
            .any(|c| Constraint::parse(c).is_err());
        if bad {
            errors.push(format!(
                "Invalid constraint type on model {}: Type must be one of {KINDS}",
                node.name
            ));
        }
    }
    let is_pk = |c: &Value| c.get("type").and_then(Value::as_str) == Some("primary_key");
    let pk_columns: Vec<&str> = node
        .columns
        .values()
        .filter(|c| c.constraints.iter().any(is_pk))
        .map(|c| c.name.as_str())
        .collect();
    let mut pk_errors = Vec::new();
    if pk_columns.len() > 1 {
        pk_errors.push(format!(
            "Found {} columns ({pk_columns:?}) with primary key constraints defined. Primary keys \
             for multiple columns must be defined as a model level constraint.",
            pk_columns.len()
        ));
    }
    if !pk_columns.is_empty() && node.constraints.iter().any(is_pk) {
        pk_errors.push(
            "Primary key constraints defined at the model level and the columns level. Primary \
             keys can be defined at the model level or the column level, not both."
                .to_string(),
        );
    }
    if !pk_errors.is_empty() {
        errors.push(format!(
            "Primary key constraint error: ({})\n{}",
            node.original_file_path,
            pk_errors.join("\n")
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(name: &str, t: &str) -> ColumnMeta {
        ColumnMeta::new(name, t)
    }

    #[test]
    fn matching_columns_in_any_order_pass() {
        let yaml = [col("id", "integer"), col("name", "text")];
        let sql = [col("name", "TEXT"), col("id", "integer")];
        assert_eq!(mismatches(&yaml, &sql), None);
    }

    #[test]
    fn the_mismatch_table_reads_like_dbts() {
        let yaml = [col("id", "integer"), col("gone", "text")];
        let sql = [col("id", "text"), col("extra", "date")];
        let table = mismatches(&yaml, &sql).unwrap();
        assert_eq!(
            table,
            "| column_name | definition_type | contract_type | mismatch_reason       |\n\
             | ----------- | --------------- | ------------- | --------------------- |\n\
             | extra       | DATE            |               | missing in contract   |\n\
             | gone        |                 | TEXT          | missing in definition |\n\
             | id          | TEXT            | INTEGER       | data type mismatch    |"
        );
    }

    #[test]
    fn constraints_render_as_dbt_renders_them() {
        let c = |v: Value| Constraint::parse(&v).unwrap();
        assert_eq!(
            c(json!({"type": "not_null"})).render_for_column().unwrap(),
            "not null"
        );
        assert_eq!(
            c(json!({"type": "check", "expression": "id > 0"}))
                .render_for_column()
                .unwrap(),
            "check (id > 0)"
        );
        assert_eq!(
            c(json!({"type": "foreign_key", "to": "\"db\".\"main\".\"customers\"", "to_columns": ["id"]}))
                .render_for_column()
                .unwrap(),
            "references \"db\".\"main\".\"customers\" (id)"
        );
        assert_eq!(
            c(json!({"type": "primary_key", "name": "pk_orders", "columns": ["id", "line"]}))
                .render_for_model()
                .unwrap(),
            "constraint pk_orders primary key (id, line)"
        );
        assert_eq!(
            c(json!({"type": "check", "expression": "a < b"}))
                .render_for_model()
                .unwrap(),
            "check (a < b)"
        );
        assert!(Constraint::parse(&json!({"type": "nullable"})).is_err());
    }

    #[test]
    fn the_table_ddl_lists_columns_then_model_constraints() {
        let contract = Contract {
            columns: vec![
                ContractColumn {
                    name: "id".into(),
                    data_type: Some("integer".into()),
                    quote: false,
                    constraints: vec![Constraint::parse(&json!({"type": "not_null"})).unwrap()],
                },
                ContractColumn {
                    name: "Name".into(),
                    data_type: Some("TEXT".into()),
                    quote: true,
                    constraints: Vec::new(),
                },
            ],
            constraints: vec![
                Constraint::parse(&json!({"type": "unique", "columns": ["id"]})).unwrap(),
            ],
        };
        assert_eq!(
            contract.columns_and_constraints(),
            "(\n    id integer not null,\n    \"Name\" TEXT,\n    unique (id)\n)"
        );
        assert_eq!(contract.column_names(), "id, \"Name\"");
        assert_eq!(
            contract.empty_schema_sql().unwrap(),
            "select cast(null as integer) as id, cast(null as TEXT) as \"Name\""
        );
        assert_eq!(alias_type("string"), "TEXT");
        assert_eq!(alias_type("varchar(10)"), "varchar(10)");
    }
}
