//! Typed rows for bulk loading, stored flat.
//!
//! A [`Rows`] batch keeps its values in one vector of fixed-size cells and
//! all of its text in one string: filling it allocates nothing per value, and
//! the engines' bulk paths read the values typed (binary COPY on PostgreSQL,
//! the Appender on DuckDB) instead of parsing text back.

/// One value of a [`Rows`] batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Bool(bool),
    /// Microseconds since 1970-01-01 00:00:00, a zone-less (UTC) timestamp.
    Timestamp(i64),
    Text(&'a str),
}

/// A stored value: text is a range of the batch's text buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Timestamp(i64),
    Text { start: usize, end: usize },
}

/// Text already in a batch, to repeat without copying it again
/// (e.g. the same run id on every row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRef(Cell);

/// Rows of `width` typed values, filled value by value in row order.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    width: usize,
    cells: Vec<Cell>,
    text: String,
}

impl Rows {
    pub fn new(width: usize) -> Self {
        Rows {
            width,
            cells: Vec::new(),
            text: String::new(),
        }
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Complete rows so far.
    pub fn len(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Whether the last row has all of its values.
    pub fn is_complete(&self) -> bool {
        self.width == 0 || self.cells.len().is_multiple_of(self.width)
    }

    pub fn null(&mut self) {
        self.cells.push(Cell::Null);
    }

    pub fn int(&mut self, v: Option<i64>) {
        self.cells.push(v.map_or(Cell::Null, Cell::Int));
    }

    pub fn bool(&mut self, v: Option<bool>) {
        self.cells.push(v.map_or(Cell::Null, Cell::Bool));
    }

    /// Microseconds since the Unix epoch, zone-less.
    pub fn timestamp(&mut self, micros: Option<i64>) {
        self.cells.push(micros.map_or(Cell::Null, Cell::Timestamp));
    }

    pub fn text(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                let r = self.push_str(s);
                self.cells.push(r.0);
            }
            None => self.cells.push(Cell::Null),
        }
    }

    /// An error unless every row is complete with one value per column.
    pub fn check_width(
        &self,
        relation: &super::Relation,
        columns: &[super::ColumnMeta],
    ) -> Result<(), super::WarehouseError> {
        if self.width == columns.len() && self.is_complete() {
            return Ok(());
        }
        Err(super::WarehouseError::Other(format!(
            "bulk load into {}: rows have {} values but there are {} columns",
            super::adapter::render(relation),
            self.width,
            columns.len()
        )))
    }

    /// Store `s` without adding a value; add it (any number of times) with
    /// [`Rows::repeat`].
    pub fn push_str(&mut self, s: &str) -> TextRef {
        let start = self.text.len();
        self.text.push_str(s);
        TextRef(Cell::Text {
            start,
            end: self.text.len(),
        })
    }

    /// Add a value stored earlier with [`Rows::push_str`].
    pub fn repeat(&mut self, r: TextRef) {
        self.cells.push(r.0);
    }

    /// All rows, each as an iterator of values.
    pub fn rows(&self) -> impl Iterator<Item = impl Iterator<Item = Value<'_>> + '_> + '_ {
        self.cells
            .chunks_exact(self.width.max(1))
            .map(|row| row.iter().map(|c| self.value(c)))
    }

    fn value<'a>(&'a self, c: &Cell) -> Value<'a> {
        match *c {
            Cell::Null => Value::Null,
            Cell::Int(v) => Value::Int(v),
            Cell::Bool(v) => Value::Bool(v),
            Cell::Timestamp(v) => Value::Timestamp(v),
            Cell::Text { start, end } => Value::Text(&self.text[start..end]),
        }
    }
}

impl Value<'_> {
    /// The value as text, as `COPY … (FORMAT csv)` and SQL literals read it
    /// (`None` for NULL).
    pub fn to_text(&self) -> Option<String> {
        match *self {
            Value::Null => None,
            Value::Int(v) => Some(v.to_string()),
            Value::Bool(v) => Some(v.to_string()),
            Value::Timestamp(micros) => Some(format_timestamp(micros)),
            Value::Text(s) => Some(s.to_string()),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` for microseconds since the Unix epoch.
pub fn format_timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => micros.to_string(),
    }
}

/// Microseconds since the Unix epoch of a zone-less or UTC date-time.
pub fn timestamp_micros(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_store_values_flat_and_read_them_back() {
        let mut rows = Rows::new(3);
        let run = rows.push_str("run-1");
        for i in 0..2 {
            rows.int(Some(i));
            rows.text(if i == 0 { Some("a,\"b\"") } else { None });
            rows.repeat(run);
        }
        rows.int(Some(9));
        assert!(!rows.is_complete());
        assert_eq!(rows.len(), 2, "complete rows only");
        rows.null();
        rows.repeat(run);
        assert!(rows.is_complete());
        assert_eq!(rows.len(), 3);
        let all: Vec<Vec<Value<'_>>> = rows.rows().map(Iterator::collect).collect();
        assert_eq!(
            all,
            vec![
                vec![Value::Int(0), Value::Text("a,\"b\""), Value::Text("run-1")],
                vec![Value::Int(1), Value::Null, Value::Text("run-1")],
                vec![Value::Int(9), Value::Null, Value::Text("run-1")],
            ]
        );
        assert_eq!(rows.text.matches("run-1").count(), 1, "stored once");
    }

    #[test]
    fn timestamps_round_trip_through_text() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_micro_opt(14, 3, 27, 120_000)
            .unwrap();
        let micros = timestamp_micros(t);
        assert_eq!(
            Value::Timestamp(micros).to_text().as_deref(),
            Some("2026-11-20 14:03:27.120000")
        );
        assert_eq!(Value::Bool(false).to_text().as_deref(), Some("false"));
        assert_eq!(Value::Null.to_text(), None);
    }
}
