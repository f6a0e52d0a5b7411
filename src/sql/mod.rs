//! Static SQL analysis of compiled (jinja-free) model SQL.
//!
//! This module owns everything sluice knows about SQL *text*, without talking
//! to a warehouse:
//!
//! * [`check`] — syntax validation with 1-based error positions, so a model
//!   with a typo fails before it reaches the warehouse.
//! * [`lineage`] — column-level lineage: which upstream `(relation, column)`
//!   pairs each output column of a model derives from.
//!
//! Both are pure functions (data in, data out) built on `sqlparser`.

use serde::{Deserialize, Serialize};
use sqlparser::dialect::{Dialect, DuckDbDialect, PostgreSqlDialect};

pub mod check;
pub mod lineage;

/// The SQL dialect a model is written in (the warehouse that will run it).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    DuckDb,
}

impl Engine {
    /// The `sqlparser` dialect used to parse SQL for this engine.
    pub(crate) fn dialect(self) -> Box<dyn Dialect> {
        match self {
            Engine::Postgres => Box::new(PostgreSqlDialect {}),
            Engine::DuckDb => Box::new(DuckDbDialect {}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Engine;

    #[test]
    fn engine_serializes_lower_case() {
        let names = serde_json::to_string(&[Engine::Postgres, Engine::DuckDb]).ok();
        assert_eq!(names.as_deref(), Some(r#"["postgres","duckdb"]"#));
    }
}
