//! Engine-neutral adapter operations: quoting, rendering relation names, and
//! catalog lookups (does a relation exist, what are its columns, which
//! relations live in a schema), plus the DDL helpers materializations share.
//!
//! Catalog lookups go through `information_schema` wherever both engines agree
//! on it. Column types are the exception on PostgreSQL, where
//! `information_schema.columns.data_type` drops lengths and precisions
//! (`character varying` instead of `character varying(16)`); there
//! `pg_catalog.format_type` is used so the types can be compared and re-used
//! in DDL verbatim.
//!
//! Identifier comparison follows the engine: PostgreSQL compares quoted
//! identifiers exactly, DuckDB compares them case-insensitively (it preserves
//! case but treats `"Foo"` and `"foo"` as the same name).

use super::{ColumnMeta, Connection, Engine, Relation, RelationKind, Result, WarehouseError};

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1); DuckDB has none,
/// but temporary names are kept within it on both engines.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Quote an identifier with double quotes, doubling embedded quotes.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A SQL string literal, single quotes doubled.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"db"."schema"."identifier"`, or `"schema"."identifier"` when the relation
/// carries no database. On DuckDB the database is the catalog name DuckDB gives
/// the attached file (its stem, `memory` for `:memory:`), which is exactly what
/// [`super::TargetConfig::database`] reports, so three-part names resolve; on
/// PostgreSQL a three-part name is valid when it names the current database.
pub fn render(relation: &Relation) -> String {
    match &relation.database {
        Some(db) => format!(
            "{}.{}.{}",
            quote(db),
            quote(&relation.schema),
            quote(&relation.identifier)
        ),
        None => format!(
            "{}.{}",
            quote(&relation.schema),
            quote(&relation.identifier)
        ),
    }
}

/// `"db"."schema"` (DuckDB, when a database is given) or `"schema"`.
/// PostgreSQL does not accept a database qualifier on schema names.
pub fn render_schema(engine: Engine, database: Option<&str>, schema: &str) -> String {
    match (engine, database) {
        (Engine::DuckDb, Some(db)) => format!("{}.{}", quote(db), quote(schema)),
        _ => quote(schema),
    }
}

/// Whether two column types are spelled the same (case and outer spaces
/// aside).
pub fn same_type(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether two identifiers name the same object on this engine.
pub fn same_ident(engine: Engine, a: &str, b: &str) -> bool {
    match engine {
        Engine::Postgres => a == b,
        Engine::DuckDb => a.eq_ignore_ascii_case(b),
    }
}

/// The same relation with another identifier, e.g. a temporary build target.
/// The identifier is `<identifier><suffix>`, shortened (with a hash of the
/// full name, so distinct models keep distinct names) to fit
/// [`MAX_IDENTIFIER_LEN`].
pub fn with_suffix(relation: &Relation, suffix: &str) -> Relation {
    Relation {
        database: relation.database.clone(),
        schema: relation.schema.clone(),
        identifier: suffixed_identifier(&relation.identifier, suffix),
    }
}

fn suffixed_identifier(identifier: &str, suffix: &str) -> String {
    let full = format!("{identifier}{suffix}");
    if full.len() <= MAX_IDENTIFIER_LEN {
        return full;
    }
    let hash = format!("{:08x}", fnv1a(identifier.as_bytes()) as u32);
    let budget = MAX_IDENTIFIER_LEN.saturating_sub(suffix.len() + hash.len() + 1);
    let mut cut = budget.min(identifier.len());
    while !identifier.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}{suffix}", &identifier[..cut])
}

/// FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `table_catalog = …` for `information_schema` queries: the relation's
/// database, or the session's current database.
fn catalog_filter(database: Option<&str>) -> String {
    match database {
        Some(db) => format!("table_catalog = {}", literal(db)),
        None => "table_catalog = current_database()".to_string(),
    }
}

/// `column = 'value'`, case-insensitive on DuckDB.
fn name_filter(engine: Engine, column: &str, value: &str) -> String {
    match engine {
        Engine::Postgres => format!("{column} = {}", literal(value)),
        Engine::DuckDb => format!("lower({column}) = lower({})", literal(value)),
    }
}

fn kind_from_table_type(table_type: &str) -> RelationKind {
    if table_type.eq_ignore_ascii_case("VIEW") {
        RelationKind::View
    } else {
        RelationKind::Table
    }
}

fn text_cell(value: Option<&serde_json::Value>, what: &str) -> Result<String> {
    match value {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        other => Err(WarehouseError::Other(format!(
            "unexpected {what} in catalog query result: {other:?}"
        ))),
    }
}

/// Whether the relation exists, and as what.
pub fn get_relation(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
) -> Result<Option<RelationKind>> {
    let sql = format!(
        "SELECT CAST(table_type AS VARCHAR) FROM information_schema.tables \
         WHERE {} AND {} AND {}",
        catalog_filter(relation.database.as_deref()),
        name_filter(engine, "table_schema", &relation.schema),
        name_filter(engine, "table_name", &relation.identifier),
    );
    let result = conn.query(&sql)?;
    match result.rows.first() {
        Some(row) => Ok(Some(kind_from_table_type(&text_cell(
            row.first(),
            "table_type",
        )?))),
        None => Ok(None),
    }
}

/// The relation's columns in ordinal order; empty when it does not exist.
pub fn get_columns(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
) -> Result<Vec<ColumnMeta>> {
    let sql = match engine {
        Engine::Postgres => format!(
            "SELECT CAST(a.attname AS VARCHAR), format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = {} AND c.relname = {} AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            literal(&relation.schema),
            literal(&relation.identifier),
        ),
        Engine::DuckDb => format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE {} AND {} AND {} ORDER BY ordinal_position",
            catalog_filter(relation.database.as_deref()),
            name_filter(engine, "table_schema", &relation.schema),
            name_filter(engine, "table_name", &relation.identifier),
        ),
    };
    let result = conn.query(&sql)?;
    result
        .rows
        .iter()
        .map(|row| {
            Ok(ColumnMeta {
                name: text_cell(row.first(), "column name")?,
                data_type: text_cell(row.get(1), "data type")?,
            })
        })
        .collect()
}

/// Every table and view in a schema, sorted by identifier.
pub fn list_relations(
    conn: &mut dyn Connection,
    engine: Engine,
    database: Option<&str>,
    schema: &str,
) -> Result<Vec<(Relation, RelationKind)>> {
    let sql = format!(
        "SELECT CAST(table_catalog AS VARCHAR), CAST(table_schema AS VARCHAR), \
         CAST(table_name AS VARCHAR), CAST(table_type AS VARCHAR) \
         FROM information_schema.tables WHERE {} AND {} ORDER BY table_name",
        catalog_filter(database),
        name_filter(engine, "table_schema", schema),
    );
    let result = conn.query(&sql)?;
    result
        .rows
        .iter()
        .map(|row| {
            let relation = Relation {
                database: Some(text_cell(row.first(), "table_catalog")?),
                schema: text_cell(row.get(1), "table_schema")?,
                identifier: text_cell(row.get(2), "table_name")?,
            };
            let kind = kind_from_table_type(&text_cell(row.get(3), "table_type")?);
            Ok((relation, kind))
        })
        .collect()
}

/// Whether a schema exists.
pub fn schema_exists(
    conn: &mut dyn Connection,
    engine: Engine,
    database: Option<&str>,
    schema: &str,
) -> Result<bool> {
    let catalog = match database {
        Some(db) => format!("catalog_name = {}", literal(db)),
        None => "catalog_name = current_database()".to_string(),
    };
    let sql = format!(
        "SELECT 1 FROM information_schema.schemata WHERE {catalog} AND {}",
        name_filter(engine, "schema_name", schema)
    );
    Ok(!conn.query(&sql)?.rows.is_empty())
}

/// `CREATE SCHEMA IF NOT EXISTS`, tolerant of a concurrent creator (on
/// PostgreSQL two sessions racing on `IF NOT EXISTS` can still collide).
pub fn create_schema_if_missing(
    conn: &mut dyn Connection,
    engine: Engine,
    database: Option<&str>,
    schema: &str,
) -> Result<()> {
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        render_schema(engine, database, schema)
    );
    match conn.execute(&sql) {
        Ok(_) => Ok(()),
        Err(e) => {
            if schema_exists(conn, engine, database, schema)? {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// `DROP TABLE|VIEW IF EXISTS`; on PostgreSQL with `CASCADE`, as dbt does
/// (dependent views are rebuilt later in the run). DuckDB views are bound by
/// name at query time and have no dependencies to cascade to.
pub fn drop_relation_sql(engine: Engine, relation: &Relation, kind: RelationKind) -> String {
    let what = match kind {
        RelationKind::Table => "TABLE",
        RelationKind::View => "VIEW",
    };
    let cascade = match engine {
        Engine::Postgres => " CASCADE",
        Engine::DuckDb => "",
    };
    format!("DROP {what} IF EXISTS {}{cascade}", render(relation))
}

/// Drop a relation if it exists.
pub fn drop_relation(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
    kind: RelationKind,
) -> Result<()> {
    conn.execute(&drop_relation_sql(engine, relation, kind))?;
    Ok(())
}

/// Drop whatever exists under this name (table or view).
pub fn drop_if_exists(
    conn: &mut dyn Connection,
    engine: Engine,
    relation: &Relation,
) -> Result<()> {
    if let Some(kind) = get_relation(conn, engine, relation)? {
        drop_relation(conn, engine, relation, kind)?;
    }
    Ok(())
}

/// `ALTER TABLE|VIEW … RENAME TO …` (the new name is unqualified on both
/// engines: a rename never moves a relation between schemas).
pub fn rename_relation_sql(
    relation: &Relation,
    kind: RelationKind,
    new_identifier: &str,
) -> String {
    let what = match kind {
        RelationKind::Table => "TABLE",
        RelationKind::View => "VIEW",
    };
    format!(
        "ALTER {what} {} RENAME TO {}",
        render(relation),
        quote(new_identifier)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(db: Option<&str>, schema: &str, id: &str) -> Relation {
        Relation {
            database: db.map(str::to_string),
            schema: schema.to_string(),
            identifier: id.to_string(),
        }
    }

    #[test]
    fn quotes_and_renders() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(render(&rel(Some("db"), "s", "t")), "\"db\".\"s\".\"t\"");
        assert_eq!(render(&rel(None, "s", "t")), "\"s\".\"t\"");
        assert_eq!(render_schema(Engine::Postgres, Some("db"), "s"), "\"s\"");
        assert_eq!(
            render_schema(Engine::DuckDb, Some("db"), "s"),
            "\"db\".\"s\""
        );
    }

    #[test]
    fn suffixes_fit_postgres_limit() {
        assert_eq!(suffixed_identifier("m", "__sluice_tmp"), "m__sluice_tmp");
        let long = "x".repeat(80);
        let a = suffixed_identifier(&long, "__sluice_tmp");
        assert!(a.len() <= MAX_IDENTIFIER_LEN, "{a}");
        assert!(a.ends_with("__sluice_tmp"));
        let other = format!("{long}y");
        assert_ne!(a, suffixed_identifier(&other, "__sluice_tmp"));
    }

    #[test]
    fn identifier_comparison_follows_engine() {
        assert!(same_ident(Engine::DuckDb, "Foo", "foo"));
        assert!(!same_ident(Engine::Postgres, "Foo", "foo"));
    }
}
