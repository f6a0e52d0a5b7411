//! Syntax validation of compiled model SQL.
//!
//! [`validate`] reports the first syntax error `sqlparser` finds, with a
//! 1-based line and column. `sqlparser` is not the engine's own parser: it may
//! (rarely) reject SQL the warehouse accepts. The constructs common in dbt
//! models are covered by the tests below; callers treat an `Err` as a model
//! error (that is what dbt users expect from a "compile" step), and the error
//! message says where the problem is so an unsupported construct is easy to
//! recognise and report.

use std::fmt;

use sqlparser::parser::{Parser, ParserError};

use super::Engine;

/// A syntax error in model SQL. `line` and `column` are 1-based; both are 0
/// when `sqlparser` did not report a position (e.g. recursion limit).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub struct SqlSyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SqlSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "SQL syntax error: {}", self.message)
        } else {
            write!(
                f,
                "SQL syntax error at line {}, column {}: {}",
                self.line, self.column, self.message
            )
        }
    }
}

/// Parses `sql` (one or more statements, comments and trailing semicolons
/// allowed) with the dialect of `engine`.
///
/// # Errors
///
/// The first syntax error `sqlparser` finds, with its position.
pub fn validate(sql: &str, engine: Engine) -> Result<(), SqlSyntaxError> {
    if engine == Engine::DuckDb && is_pivot_statement(sql) {
        // DuckDB's `PIVOT … ON … USING …` statement form is not one
        // sqlparser parses: the engine is the judge of it.
        return Ok(());
    }
    let dialect = engine.dialect();
    Parser::parse_sql(dialect.as_ref(), sql)
        .map(|_| ())
        .map_err(|e| SqlSyntaxError::from_parser_error(&e))
}

/// Whether `sql` (after comments) starts with DuckDB's PIVOT or UNPIVOT
/// statement.
fn is_pivot_statement(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    word == "pivot" || word == "unpivot" || word == "pivot_wider" || word == "pivot_longer"
}

impl SqlSyntaxError {
    /// Splits sqlparser's `"<message> at Line: X, Column: Y"` into parts.
    pub(crate) fn from_parser_error(error: &ParserError) -> Self {
        let raw = match error {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s.as_str(),
            ParserError::RecursionLimitExceeded => "recursion limit exceeded",
        };
        match split_location(raw) {
            Some((message, line, column)) => SqlSyntaxError {
                message: message.to_string(),
                line,
                column,
            },
            None => SqlSyntaxError {
                message: raw.to_string(),
                line: 0,
                column: 0,
            },
        }
    }
}

/// `"msg at Line: 3, Column: 7"` → `("msg", 3, 7)`.
fn split_location(raw: &str) -> Option<(&str, usize, usize)> {
    const MARKER: &str = " at Line: ";
    let at = raw.rfind(MARKER)?;
    let (message, rest) = (&raw[..at], &raw[at + MARKER.len()..]);
    let (line, column) = rest.split_once(", Column: ")?;
    let line = line.trim().parse().ok()?;
    let column = column.trim().parse().ok()?;
    Some((message, line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(engine: Engine, sql: &str) {
        if let Err(e) = validate(sql, engine) {
            panic!("{engine:?} should accept:\n{sql}\nbut got: {e}");
        }
    }

    fn error_of(sql: &str, engine: Engine) -> SqlSyntaxError {
        match validate(sql, engine) {
            Ok(()) => panic!("{engine:?} should reject:\n{sql}"),
            Err(e) => e,
        }
    }

    fn accepts_both(sql: &str) {
        accepts(Engine::Postgres, sql);
        accepts(Engine::DuckDb, sql);
    }

    #[test]
    fn duckdb_pivot_statements_are_left_to_the_engine() {
        accepts(
            Engine::DuckDb,
            "-- wide\npivot (select 1 as a, 'x' as k) on k using sum(a)",
        );
        accepts(
            Engine::DuckDb,
            "/* long */ UNPIVOT t ON a, b INTO NAME k VALUE v",
        );
        error_of("pivot t on k using sum(a)", Engine::Postgres);
    }

    #[test]
    fn accepts_ctes_and_union_all() {
        accepts_both(
            "with a as (select id from raw.users), b as (select id from a)
             select id from a union all select id from b",
        );
    }

    #[test]
    fn accepts_window_functions() {
        accepts_both(
            "select id, row_number() over (partition by user_id order by created_at desc) as rn,
                    sum(amount) over (order by created_at rows between unbounded preceding and current row) as running
             from orders",
        );
    }

    #[test]
    fn accepts_qualify_on_duckdb() {
        accepts(
            Engine::DuckDb,
            "select * from orders qualify row_number() over (partition by id order by ts) = 1",
        );
    }

    #[test]
    fn accepts_double_colon_casts() {
        accepts_both("select id::bigint, created_at::date as d, '1'::int from t");
    }

    #[test]
    fn accepts_interval_literals() {
        accepts_both("select now() - interval '1 minute' as a, ts + interval '2 days' from t");
    }

    #[test]
    fn accepts_date_trunc() {
        accepts_both("select date_trunc('day', created_at) as day, count(*) from t group by 1");
    }

    #[test]
    fn accepts_aggregate_filter() {
        accepts_both(
            "select count(*) filter (where status = 'done') as done, \
             sum(x) filter (where y > 0) from t",
        );
    }

    #[test]
    fn accepts_lateral_joins() {
        accepts_both(
            "select u.id, o.total from users u
             left join lateral (select sum(amount) as total from orders where orders.user_id = u.id) o on true",
        );
    }

    #[test]
    fn accepts_select_star_exclude_on_duckdb() {
        accepts(
            Engine::DuckDb,
            "select * exclude (password, ssn) from users",
        );
        accepts(Engine::DuckDb, "select u.* exclude (password) from users u");
    }

    #[test]
    fn accepts_distinct_on_postgres() {
        accepts(
            Engine::Postgres,
            "select distinct on (user_id) user_id, created_at from events order by user_id, created_at desc",
        );
    }

    #[test]
    fn accepts_quoted_identifiers() {
        accepts_both(r#"select "User Id" as "id", "t"."Name" from "analytics"."Users" as "t""#);
    }

    #[test]
    fn accepts_trailing_semicolon_and_comments() {
        accepts_both(
            "-- leading comment\n/* block\n comment */ select 1 as one -- trailing\n;\n-- after\n",
        );
    }

    #[test]
    fn accepts_a_realistic_dbt_model() {
        accepts_both(
            r#"with source as (
                select * from "analytics"."raw_tweets"
            ),
            renamed as (
                select
                    id::bigint as tweet_id,
                    lower(author) as author,
                    case when likes > 100 then 'viral' else 'normal' end as reach,
                    coalesce(retweets, 0) as retweets,
                    created_at at time zone 'UTC' as created_at_utc
                from source
                where created_at > now() - interval '30 days'
            )
            select * from renamed;"#,
        );
    }

    #[test]
    fn empty_sql_is_valid() {
        accepts_both("");
        accepts_both("-- only a comment\n");
    }

    #[test]
    fn reports_line_and_column_of_a_syntax_error() {
        // `form` instead of `from`: the parser stops at `users` on line 3.
        let sql = "select\n  id,\n  name form users";
        let err = error_of(sql, Engine::Postgres);
        assert_eq!((err.line, err.column), (3, 13), "{err}");
        assert!(err.message.contains("users"), "{}", err.message);
        assert!(!err.message.contains("Line:"), "{}", err.message);
    }

    #[test]
    fn reports_position_of_a_missing_closing_paren() {
        let sql = "with a as (\n  select 1 as x\n\nselect * from a";
        let err = error_of(sql, Engine::DuckDb);
        assert_eq!((err.line, err.column), (4, 1), "{err}");
    }

    #[test]
    fn reports_tokenizer_errors_with_position() {
        let sql = "select 1,\n  'unterminated";
        let err = error_of(sql, Engine::Postgres);
        assert_eq!((err.line, err.column), (2, 3), "{err}");
    }

    #[test]
    fn display_includes_the_position() {
        let err = error_of("select (1 + from t", Engine::Postgres);
        let shown = err.to_string();
        assert!(
            shown.starts_with("SQL syntax error at line 1, column "),
            "{shown}"
        );
    }

    #[test]
    fn splits_location_suffix() {
        assert_eq!(
            split_location("Expected: x, found: y at Line: 12, Column: 34"),
            Some(("Expected: x, found: y", 12, 34))
        );
        assert_eq!(split_location("no position here"), None);
    }
}
