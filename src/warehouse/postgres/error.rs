//! Turning `tokio-postgres` errors into messages a person can act on: the
//! server's message with its SQLSTATE, detail, hint and context, and the
//! error position as `line L, column C` of the SQL that was sent, with the
//! offending line quoted and a caret under the column (as psql does).

use std::error::Error as _;
use std::fmt::Write as _;

use tokio_postgres::error::{DbError, ErrorPosition, SqlState};

use super::tls::SslPolicy;

/// The longest stretch of a SQL line quoted under an error.
const SNIPPET_WIDTH: usize = 100;

/// Whether a connection attempt failed in the TLS handshake (rather than
/// reaching the server, authenticating, …).
pub(super) fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

/// Why a connection attempt failed, without naming the target (the caller's
/// [`WarehouseError::Connect`](crate::warehouse::WarehouseError::Connect)
/// does that).
pub(super) fn describe_connect_error(e: &tokio_postgres::Error, ssl: &SslPolicy) -> String {
    if let Some(db) = e.as_db_error() {
        return format_db_error(db, "");
    }
    let chain = describe_client_error(e);
    if matches!(ssl, SslPolicy::Require { .. }) && chain.contains("server does not support TLS") {
        return format!(
            "the server does not accept SSL/TLS connections, but sslmode is `{}`; \
             set sslmode to `prefer` or `disable` to connect without encryption",
            ssl.name()
        );
    }
    chain
}

/// A client-side error with all its causes, e.g. `error connecting to
/// server: Connection refused (os error 111)`.
pub(super) fn describe_client_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format_db_error(db, "");
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            let _ = write!(message, ": {text}");
        }
        source = cause.source();
    }
    message
}

/// SQLSTATE 57014 after our own cancel request (or any "user request"
/// cancel, e.g. `pg_cancel_backend`), as opposed to a `statement_timeout`.
pub(super) fn is_cancel(db: &DbError, cancel_requested: bool) -> bool {
    db.code() == &SqlState::QUERY_CANCELED
        && (cancel_requested || db.message().contains("user request"))
}

/// Errors after which the session is gone: the backend was terminated
/// (`pg_terminate_backend`, server shutdown or crash) or is otherwise fatal.
pub(super) fn is_connection_fatal(db: &DbError) -> bool {
    db.code().code().starts_with("57P") || matches!(db.severity(), "FATAL" | "PANIC")
}

/// "cannot insert multiple commands into a prepared statement".
pub(super) fn is_multiple_commands(db: &DbError) -> bool {
    db.code() == &SqlState::SYNTAX_ERROR && db.message().contains("multiple commands")
}

/// The full report of a server error about `sql` (may be empty when the
/// error is not about a statement).
pub(super) fn format_db_error(db: &DbError, sql: &str) -> String {
    let mut out = String::new();
    if !matches!(db.severity(), "ERROR" | "") {
        let _ = write!(out, "{}: ", db.severity());
    }
    let _ = write!(out, "{} (SQLSTATE {})", db.message(), db.code().code());
    match db.position() {
        Some(ErrorPosition::Original(position)) => push_position(&mut out, sql, *position, ""),
        Some(ErrorPosition::Internal { position, query }) => {
            let _ = write!(out, "\n  QUERY: {}", query.trim());
            push_position(&mut out, query, *position, " of that query");
        }
        None => {}
    }
    for (label, value) in [
        ("DETAIL", db.detail()),
        ("HINT", db.hint()),
        ("CONTEXT", db.where_()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = write!(out, "\n  {label}: {}", value.replace('\n', "\n    "));
        }
    }
    out
}

/// Append ` at line L, column C` and the quoted line with a caret.
fn push_position(out: &mut String, sql: &str, position: u32, suffix: &str) {
    let Some((line, column)) = line_col(sql, position) else {
        return;
    };
    let _ = write!(out, " at line {line}, column {column}{suffix}");
    if let Some(text) = sql.lines().nth(line - 1) {
        let (snippet, caret) = snippet(text, column);
        let prefix = format!("LINE {line}: ");
        let _ = write!(
            out,
            "\n  {prefix}{snippet}\n  {}^",
            " ".repeat(prefix.len() + caret)
        );
    }
}

/// 1-based line and column (in characters) of the 1-based character
/// `position` Postgres reports. The position just past the end (e.g. "syntax
/// error at end of input") maps to the end of the last line.
pub(super) fn line_col(sql: &str, position: u32) -> Option<(usize, usize)> {
    let target = usize::try_from(position).ok()?.checked_sub(1)?;
    let (mut line, mut column) = (1, 1);
    for (index, ch) in sql.chars().enumerate() {
        if index == target {
            return Some((line, column));
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (target == sql.chars().count()).then_some((line, column))
}

/// The part of `line` to quote around 1-based `column`, and the caret's
/// 0-based offset within it. Tabs become spaces so the caret lines up.
fn snippet(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let caret = column.saturating_sub(1);
    if chars.len() <= SNIPPET_WIDTH {
        return (chars.into_iter().collect(), caret);
    }
    let start = caret.saturating_sub(SNIPPET_WIDTH / 2);
    let end = (start + SNIPPET_WIDTH).min(chars.len());
    let mut text = String::new();
    let mut caret_offset = caret - start;
    if start > 0 {
        text.push_str("...");
        caret_offset += 3;
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push_str("...");
    }
    (text, caret_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_lines_and_columns() {
        let sql = "select 1\nfrom t\nwhere x";
        assert_eq!(line_col(sql, 1), Some((1, 1)));
        assert_eq!(line_col(sql, 10), Some((2, 1)));
        assert_eq!(line_col(sql, 15), Some((2, 6)));
        assert_eq!(line_col(sql, 17), Some((3, 1)));
        // Just past the end: "syntax error at end of input".
        assert_eq!(line_col(sql, 24), Some((3, 8)));
        assert_eq!(line_col(sql, 25), None);
        assert_eq!(line_col(sql, 0), None);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let sql = "select 'é', x";
        // 'x' is the 13th character but the 14th byte.
        assert_eq!(line_col(sql, 13), Some((1, 13)));
    }

    #[test]
    fn long_lines_are_quoted_around_the_column() {
        let line = "x".repeat(300);
        let (text, caret) = snippet(&line, 200);
        assert!(text.starts_with("...") && text.ends_with("..."));
        assert_eq!(&text[caret..=caret], "x");
        assert_eq!(caret, 3 + SNIPPET_WIDTH / 2);
        let (short, caret) = snippet("a\tb", 3);
        assert_eq!((short.as_str(), caret), ("a b", 2));
    }
}
