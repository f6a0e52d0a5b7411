//! Typed rows as `COPY … FROM STDIN (FORMAT binary)` data: the server stores
//! each value as sent instead of parsing text. Values are encoded by
//! `postgres-types` (the same encoders tokio-postgres' `BinaryCopyInWriter`
//! uses); this module frames them (signature, per-row field counts, per-value
//! lengths, trailer) and sends them in large chunks.

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{ToSql, Type};

use crate::warehouse::rows::Value;
use crate::warehouse::{ColumnMeta, Relation};

use super::convert::{qualified_name, quote_ident};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

pub(super) fn copy_statement(relation: &Relation, columns: &[ColumnMeta]) -> String {
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        qualified_name(relation),
        column_list(columns)
    )
}

/// `SELECT <columns> FROM <relation>`, prepared (never run) to learn the
/// columns' types.
pub(super) fn describe_statement(relation: &Relation, columns: &[ColumnMeta]) -> String {
    format!(
        "SELECT {} FROM {}",
        column_list(columns),
        qualified_name(relation)
    )
}

fn column_list(columns: &[ColumnMeta]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether every column type has a binary encoding here; other types (e.g.
/// `numeric`, `date`, `jsonb`) are loaded as CSV instead.
pub(super) fn supported(types: &[Type]) -> bool {
    types.iter().all(|t| {
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
        ]
        .contains(t)
    })
}

pub(super) fn push_header(buf: &mut BytesMut) {
    buf.put_slice(SIGNATURE);
    buf.put_i32(0); // flags
    buf.put_i32(0); // header extension length
}

pub(super) fn push_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// Append one row. `Err` names the column and says why its value does not fit.
pub(super) fn push_row<'a>(
    buf: &mut BytesMut,
    row: impl Iterator<Item = Value<'a>>,
    columns: &[ColumnMeta],
    types: &[Type],
) -> Result<(), String> {
    buf.put_i16(types.len() as i16);
    for ((value, ty), column) in row.zip(types).zip(columns) {
        push_value(buf, value, ty).map_err(|why| format!("column `{}`: {why}", column.name))?;
    }
    Ok(())
}

fn push_value(buf: &mut BytesMut, value: Value<'_>, ty: &Type) -> Result<(), String> {
    if value == Value::Null {
        buf.put_i32(-1);
        return Ok(());
    }
    let at = buf.len();
    buf.put_i32(0); // length, patched below
    encode(buf, value, ty)?;
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode(buf: &mut BytesMut, value: Value<'_>, ty: &Type) -> Result<(), String> {
    let text_type = [Type::TEXT, Type::VARCHAR, Type::BPCHAR].contains(ty);
    let out = match value {
        Value::Null => return Ok(()),
        Value::Text(s) if text_type => s.to_sql(ty, buf),
        Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, buf),
        Value::Int(v) if *ty == Type::INT4 => i32::try_from(v)
            .map_err(|_| format!("{v} is out of range for type integer"))?
            .to_sql(ty, buf),
        Value::Int(v) if *ty == Type::INT2 => i16::try_from(v)
            .map_err(|_| format!("{v} is out of range for type smallint"))?
            .to_sql(ty, buf),
        Value::Int(v) if *ty == Type::FLOAT8 => (v as f64).to_sql(ty, buf),
        Value::Int(v) if *ty == Type::FLOAT4 => (v as f32).to_sql(ty, buf),
        Value::Bool(v) if *ty == Type::BOOL => v.to_sql(ty, buf),
        Value::Timestamp(micros) if *ty == Type::TIMESTAMP || *ty == Type::TIMESTAMPTZ => {
            let t = chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| format!("timestamp {micros} µs is out of range"))?;
            if *ty == Type::TIMESTAMP {
                t.naive_utc().to_sql(ty, buf)
            } else {
                t.to_sql(ty, buf)
            }
        }
        // Anything lands in a text column as its text.
        Value::Int(_) | Value::Bool(_) | Value::Timestamp(_) if text_type => {
            value.to_text().unwrap_or_default().as_str().to_sql(ty, buf)
        }
        other => return Err(format!("cannot load {other:?} into a column of type {ty}")),
    };
    out.map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> ColumnMeta {
        ColumnMeta {
            name: name.into(),
            data_type: String::new(),
        }
    }

    #[test]
    fn rows_are_framed_as_postgres_binary_copy() {
        let mut buf = BytesMut::new();
        push_header(&mut buf);
        push_row(
            &mut buf,
            [
                Value::Int(7),
                Value::Null,
                Value::Text("hé"),
                Value::Bool(true),
            ]
            .into_iter(),
            &[col("a"), col("b"), col("c"), col("d")],
            &[Type::INT8, Type::TIMESTAMP, Type::VARCHAR, Type::BOOL],
        )
        .unwrap();
        push_trailer(&mut buf);
        let mut expected = SIGNATURE.to_vec();
        expected.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend([0, 4]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend([0xff, 0xff, 0xff, 0xff]);
        expected.extend([0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        expected.extend([0, 0, 0, 1, 1]);
        expected.extend([0xff, 0xff]);
        assert_eq!(buf.to_vec(), expected);
    }

    #[test]
    fn timestamps_count_from_2000_and_narrow_ints_are_range_checked() {
        let mut buf = BytesMut::new();
        // 2000-01-01 00:00:01 UTC = 946684801 s after the Unix epoch.
        encode(
            &mut buf,
            Value::Timestamp(946_684_801_000_000),
            &Type::TIMESTAMP,
        )
        .unwrap();
        assert_eq!(buf.to_vec(), 1_000_000i64.to_be_bytes());
        let err = push_row(
            &mut BytesMut::new(),
            [Value::Int(1 << 40)].into_iter(),
            &[col("n")],
            &[Type::INT4],
        )
        .unwrap_err();
        assert!(
            err.contains("column `n`") && err.contains("out of range"),
            "{err}"
        );
        assert!(supported(&[Type::INT8, Type::TIMESTAMPTZ]));
        assert!(!supported(&[Type::NUMERIC]));
    }
}
