//! Values in and out of PostgreSQL as text: result values (the simple query
//! protocol sends every value as text) become JSON according to the column
//! type, and rows for `COPY` become CSV.

use bytes::{BufMut, BytesMut};
use serde_json::{Number, Value};
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

use crate::warehouse::{ColumnMeta, QueryResult, Relation};

/// The last result set among `messages` (a simple-query response), its values
/// converted with `types` when they describe that result set's columns.
pub(super) fn result_from_messages(
    messages: Vec<SimpleQueryMessage>,
    types: Option<&[Type]>,
) -> QueryResult {
    let mut result = QueryResult::default();
    let mut current: Option<QueryResult> = None;
    let mut current_types: Vec<Option<&Type>> = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                let types = types.filter(|t| t.len() == columns.len());
                current_types = (0..columns.len())
                    .map(|i| types.and_then(|t| t.get(i)))
                    .collect();
                current = Some(QueryResult {
                    columns: columns
                        .iter()
                        .zip(&current_types)
                        .map(|(column, ty)| ColumnMeta {
                            name: column.name().to_string(),
                            data_type: ty.map_or_else(|| "text".to_string(), sql_type_name),
                        })
                        .collect(),
                    rows: Vec::new(),
                });
            }
            SimpleQueryMessage::Row(row) => {
                if let Some(current) = current.as_mut() {
                    let values = (0..row.len())
                        .map(|i| {
                            let text = row.try_get(i).ok().flatten();
                            let ty = current_types.get(i).copied().flatten();
                            text.map_or(Value::Null, |text| text_to_json(ty, text))
                        })
                        .collect();
                    current.rows.push(values);
                }
            }
            SimpleQueryMessage::CommandComplete(_) => {
                if let Some(done) = current.take() {
                    result = done;
                }
            }
            _ => {}
        }
    }
    current.unwrap_or(result)
}

/// Postgres' text output of one value → JSON. Numbers become JSON numbers
/// (numerics too, as `f64` when not integral), `json`/`jsonb` are parsed,
/// booleans are booleans; everything else (dates, timestamps, uuids,
/// intervals, arrays, …) stays the text Postgres printed.
pub(super) fn text_to_json(ty: Option<&Type>, text: &str) -> Value {
    let Some(ty) = ty else {
        return Value::String(text.to_string());
    };
    let parsed = match *ty {
        Type::BOOL => match text {
            "t" => Some(Value::Bool(true)),
            "f" => Some(Value::Bool(false)),
            _ => None,
        },
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            text.parse::<i64>().ok().map(Value::from)
        }
        Type::FLOAT4 | Type::FLOAT8 => float(text),
        Type::NUMERIC => numeric(text),
        Type::JSON | Type::JSONB => serde_json::from_str(text).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

/// NaN and infinities have no JSON number: they stay strings.
fn float(text: &str) -> Option<Value> {
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// Integral numerics that fit stay exact; others go through `f64`.
fn numeric(text: &str) -> Option<Value> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(int) = text.parse::<i64>() {
            return Some(Value::from(int));
        }
        if let Ok(uint) = text.parse::<u64>() {
            return Some(Value::from(uint));
        }
    }
    float(text)
}

/// The name `information_schema.columns.data_type` uses for `ty`, so query
/// results and catalog introspection agree; other types keep their own name.
pub(super) fn sql_type_name(ty: &Type) -> String {
    let name = match *ty {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::NUMERIC => "numeric",
        Type::VARCHAR => "character varying",
        Type::BPCHAR => "character",
        Type::TIMESTAMP => "timestamp without time zone",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::TIME => "time without time zone",
        Type::TIMETZ => "time with time zone",
        _ => return ty.name().to_string(),
    };
    name.to_string()
}

/// `"schema"."table"`. The database part is left out: a Postgres session can
/// only reach its own database.
pub(super) fn qualified_name(relation: &Relation) -> String {
    format!(
        "{}.{}",
        quote_ident(&relation.schema),
        quote_ident(&relation.identifier)
    )
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `COPY "s"."t" ("a", "b") FROM STDIN (FORMAT csv)`: an unquoted empty field
/// is NULL, a quoted one (`""`) the empty string.
pub(super) fn copy_statement(relation: &Relation, columns: &[ColumnMeta]) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT csv)",
        qualified_name(relation),
        names.join(", ")
    )
}

/// `COPY` of a CSV file with a header row, fields separated by
/// `delimiter`, every empty field NULL (quoted or not, as a seed's CSV
/// reader sees it).
pub(super) fn copy_file_statement(
    relation: &Relation,
    columns: &[ColumnMeta],
    delimiter: u8,
) -> String {
    let names = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let delimiter = crate::warehouse::adapter::literal(&char::from(delimiter).to_string());
    format!(
        "COPY {} ({names}) FROM STDIN (FORMAT csv, HEADER true, DELIMITER {delimiter}, FORCE_NULL ({names}))",
        qualified_name(relation),
    )
}

/// Append one CSV line for `COPY … (FORMAT csv)`.
pub(super) fn push_csv_row(buf: &mut BytesMut, row: &[Option<String>]) {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        if let Some(value) = value {
            push_csv_field(buf, value);
        }
    }
    buf.put_u8(b'\n');
}

fn push_csv_field(buf: &mut BytesMut, value: &str) {
    if !needs_quotes(value) {
        buf.put_slice(value.as_bytes());
        return;
    }
    buf.put_u8(b'"');
    for (i, part) in value.split('"').enumerate() {
        if i > 0 {
            buf.put_slice(b"\"\"");
        }
        buf.put_slice(part.as_bytes());
    }
    buf.put_u8(b'"');
}

/// Empty strings (else NULL), delimiters, quotes, line breaks, and a leading
/// backslash (`\.` alone on a line ends the data).
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value.starts_with('\\')
        || value
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_values_convert_by_type() {
        assert_eq!(
            text_to_json(Some(&Type::INT8), "-9000000000"),
            json!(-9_000_000_000_i64)
        );
        assert_eq!(text_to_json(Some(&Type::BOOL), "t"), json!(true));
        assert_eq!(text_to_json(Some(&Type::FLOAT8), "1.5"), json!(1.5));
        assert_eq!(text_to_json(Some(&Type::FLOAT8), "NaN"), json!("NaN"));
        assert_eq!(text_to_json(Some(&Type::NUMERIC), "12.50"), json!(12.5));
        assert_eq!(text_to_json(Some(&Type::NUMERIC), "42"), json!(42));
        assert_eq!(
            text_to_json(Some(&Type::NUMERIC), "123456789012345678901234567890"),
            json!(1.2345678901234568e29)
        );
        assert_eq!(
            text_to_json(Some(&Type::JSONB), r#"{"a": [1]}"#),
            json!({"a": [1]})
        );
        assert_eq!(
            text_to_json(Some(&Type::DATE), "2024-01-02"),
            json!("2024-01-02")
        );
        assert_eq!(text_to_json(None, "7"), json!("7"));
    }

    #[test]
    fn csv_rows_distinguish_null_from_empty() {
        let mut buf = BytesMut::new();
        push_csv_row(
            &mut buf,
            &[
                Some("plain".into()),
                None,
                Some(String::new()),
                Some("a,\"b\"\nc".into()),
                Some("\\.".into()),
            ],
        );
        assert_eq!(&buf[..], b"plain,,\"\",\"a,\"\"b\"\"\nc\",\"\\.\"\n");
    }

    #[test]
    fn copy_statement_quotes_identifiers() {
        let relation = Relation {
            database: Some("db".into()),
            schema: "my schema".into(),
            identifier: "t\"1".into(),
        };
        let columns = [ColumnMeta {
            name: "id".into(),
            data_type: "integer".into(),
        }];
        assert_eq!(
            copy_statement(&relation, &columns),
            "COPY \"my schema\".\"t\"\"1\" (\"id\") FROM STDIN (FORMAT csv)"
        );
    }
}
