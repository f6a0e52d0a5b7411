//! What dbt applies to a model's relation once it is built, inside the
//! build's transaction: its `indexes:` (dbt-postgres; tables only), its
//! `grants:` (PostgreSQL; dbt-duckdb only warns) and its descriptions as
//! comments (`persist_docs: {relation: true, columns: true}`).

use serde_json::Value;

use crate::project::config::string_list;

use super::adapter::{get_columns, literal, quote, render, same_ident};
use super::{Connection, Engine, Relation, WarehouseError};

/// One entry of a model's `indexes:` config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub columns: Vec<String>,
    pub unique: bool,
    /// `btree`, `hash`, `gist`, …; the server's default when absent.
    pub kind: Option<String>,
}

impl Index {
    /// The `indexes:` config (a list of `{columns, unique, type}`).
    pub fn from_config(v: Option<&Value>) -> Result<Vec<Index>, String> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let items = v.as_array().ok_or_else(|| {
            format!("`indexes` must be a list of {{columns, unique, type}}, got {v}")
        })?;
        items
            .iter()
            .map(|i| {
                let columns = i.get("columns").map(string_list).unwrap_or_default();
                if columns.is_empty() {
                    return Err(format!("an index needs `columns`: {i}"));
                }
                Ok(Index {
                    columns,
                    unique: i.get("unique").and_then(Value::as_bool).unwrap_or(false),
                    kind: i.get("type").and_then(Value::as_str).map(str::to_string),
                })
            })
            .collect()
    }

    /// A name that depends only on what the index is and where, so the same
    /// index is created once however often the model is rebuilt.
    fn name(&self, relation: &Relation) -> String {
        let key = format!(
            "{}_{}_{}_{}",
            self.columns.join("_"),
            self.unique,
            self.kind.as_deref().unwrap_or(""),
            render(relation)
        );
        crate::project::md5_hex(&key)
    }

    fn create_sql(&self, relation: &Relation) -> String {
        format!(
            "create {}index if not exists {} on {} {}({})",
            if self.unique { "unique " } else { "" },
            quote(&self.name(relation)),
            render(relation),
            self.kind
                .as_deref()
                .map(|k| format!("using {k} "))
                .unwrap_or_default(),
            self.columns.join(", ")
        )
    }
}

/// Create a table's indexes (PostgreSQL; dbt-duckdb has no `indexes`).
pub fn create_indexes(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    indexes: &[Index],
) -> Result<(), WarehouseError> {
    if engine != Engine::Postgres {
        return Ok(());
    }
    for index in indexes {
        conn.execute(&index.create_sql(relation))?;
    }
    Ok(())
}

/// The descriptions `persist_docs` writes as comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comments {
    /// The model's description, when `persist_docs.relation` is on and it
    /// has one.
    pub relation: Option<String>,
    /// `(name, quote, description)` of each YAML column, when
    /// `persist_docs.columns` is on.
    pub columns: Vec<(String, bool, String)>,
}

impl Comments {
    pub fn is_empty(&self) -> bool {
        self.relation.is_none() && self.columns.is_empty()
    }
}

/// `comment on <kind> … is …` (`table`, `view`, `materialized view`), and one `comment on column` for each
/// documented column the relation has (dbt leaves out columns it lacks).
pub fn persist_docs(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    kind: &str,
    comments: &Comments,
) -> Result<(), WarehouseError> {
    if let Some(text) = &comments.relation {
        conn.execute(&format!(
            "comment on {kind} {} is {}",
            render(relation),
            literal(text)
        ))?;
    }
    if comments.columns.is_empty() {
        return Ok(());
    }
    let existing = get_columns(conn, engine, relation)?;
    for (name, quoted, text) in &comments.columns {
        let Some(col) = existing.iter().find(|c| same_ident(engine, &c.name, name)) else {
            continue;
        };
        let column = if *quoted {
            quote(name)
        } else {
            quote(&col.name)
        };
        conn.execute(&format!(
            "comment on column {}.{column} is {}",
            render(relation),
            literal(text)
        ))?;
    }
    Ok(())
}

/// What dbt's materializations apply last to a relation they built: its
/// grants, then its descriptions as comments (`kind` is `table`, `view`,
/// `materialized view`).
pub fn grants_and_docs(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    kind: &str,
    grants: &Grants,
    comments: &Comments,
) -> Result<(), WarehouseError> {
    apply_grants(conn, engine, relation, grants)?;
    if !comments.is_empty() {
        persist_docs(conn, engine, relation, kind, comments)?;
    }
    Ok(())
}

/// A relation's `grants:` config: privilege → grantees.
pub type Grants = std::collections::BTreeMap<String, Vec<String>>;

/// The `grants:` config (`{select: [a, b], insert: c}`).
pub fn grants_from_config(v: Option<&Value>) -> Result<Grants, String> {
    match v {
        None | Some(Value::Null) => Ok(Grants::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .map(|(privilege, grantees)| (privilege.clone(), string_list(grantees)))
            .filter(|(_, g)| !g.is_empty())
            .collect()),
        Some(other) => Err(format!(
            "`grants` must map privileges to grantees (`select: [reporter]`), got {other}"
        )),
    }
}

/// dbt's `diff_of_two_dicts`: the grantees in `a` that `b` lacks, per
/// privilege, compared without regard to case.
fn grants_missing(a: &Grants, b: &Grants) -> Grants {
    let mut out = Grants::new();
    for (privilege, grantees) in a {
        let have: Vec<String> = b
            .iter()
            .filter(|(p, _)| p.to_lowercase() == privilege.to_lowercase())
            .flat_map(|(_, g)| g.iter().map(|x| x.to_lowercase()))
            .collect();
        let missing: Vec<String> = grantees
            .iter()
            .filter(|g| !have.contains(&g.to_lowercase()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            out.insert(privilege.clone(), missing);
        }
    }
    out
}

/// dbt's `apply_grants` on PostgreSQL: the grants this role gave on the
/// relation are read back, those the config lacks are revoked and those it
/// adds are granted (`grant select on <relation> to a, b`), grantees
/// written as in the config, as dbt does. A relation just created has none,
/// so that is a plain grant. DuckDB has no grants (the run warns once).
pub fn apply_grants(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    grants: &Grants,
) -> Result<(), WarehouseError> {
    if grants.is_empty() || engine != Engine::Postgres {
        return Ok(());
    }
    let current_rows = conn.query(&format!(
        "select grantee, privilege_type from information_schema.role_table_grants \
         where grantor = current_role and grantee != current_role \
         and table_schema = {} and table_name = {}",
        literal(&relation.schema),
        literal(&relation.identifier)
    ))?;
    let mut current = Grants::new();
    for row in &current_rows.rows {
        if let (Some(grantee), Some(privilege)) = (
            row.first().and_then(Value::as_str),
            row.get(1).and_then(Value::as_str),
        ) {
            current
                .entry(privilege.to_string())
                .or_default()
                .push(grantee.to_string());
        }
    }
    let target = render(relation);
    for (privilege, grantees) in grants_missing(&current, grants) {
        conn.execute(&format!(
            "revoke {privilege} on {target} from {}",
            grantees.join(", ")
        ))?;
    }
    for (privilege, grantees) in grants_missing(grants, &current) {
        conn.execute(&format!(
            "grant {privilege} on {target} to {}",
            grantees.join(", ")
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rel() -> Relation {
        Relation {
            database: None,
            schema: "analytics".into(),
            identifier: "orders".into(),
        }
    }

    #[test]
    fn indexes_read_from_config_and_render_for_postgres() {
        let idx = Index::from_config(Some(&json!([
            {"columns": ["id"], "unique": true},
            {"columns": ["customer_id", "ordered_at"], "type": "btree"}
        ])))
        .unwrap();
        assert_eq!(idx.len(), 2);
        let sql = idx[0].create_sql(&rel());
        assert!(
            sql.starts_with("create unique index if not exists \""),
            "{sql}"
        );
        assert!(sql.ends_with(" on \"analytics\".\"orders\" (id)"), "{sql}");
        assert!(idx[1]
            .create_sql(&rel())
            .ends_with("using btree (customer_id, ordered_at)"));
        // The same index gets the same name; another index another one.
        assert_eq!(idx[0].name(&rel()), idx[0].name(&rel()));
        assert_ne!(idx[0].name(&rel()), idx[1].name(&rel()));
        assert!(Index::from_config(Some(&json!([{"unique": true}]))).is_err());
        assert!(Index::from_config(None).unwrap().is_empty());
    }

    #[test]
    fn grants_are_compared_as_dbt_does() {
        let config = grants_from_config(Some(
            &serde_json::json!({"select": ["Reporter", "bi"], "insert": "etl"}),
        ))
        .unwrap();
        let current: Grants = [(
            "SELECT".to_string(),
            vec!["reporter".to_string(), "old".to_string()],
        )]
        .into();
        assert_eq!(
            grants_missing(&config, &current),
            [
                ("insert".to_string(), vec!["etl".to_string()]),
                ("select".to_string(), vec!["bi".to_string()])
            ]
            .into()
        );
        assert_eq!(
            grants_missing(&current, &config),
            [("SELECT".to_string(), vec!["old".to_string()])].into()
        );
        assert!(grants_from_config(Some(&serde_json::json!(["x"]))).is_err());
    }
}
