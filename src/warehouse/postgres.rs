//! The PostgreSQL warehouse, on `tokio-postgres` behind the sync
//! [`Warehouse`]/[`Connection`] traits.
//!
//! * [`PostgresWarehouse`] owns a small multi-thread tokio runtime, the parsed
//!   connection settings and the [`CancelToken`] of every open session.
//!   [`Warehouse::connect`] opens one session (one backend) per call; the
//!   connection task runs on the runtime and the returned [`PgConnection`]
//!   `block_on`s each call on the caller's thread. Each worker thread is
//!   expected to own one connection, so there is no pool.
//! * [`Warehouse::cancel_all`] sends a Postgres cancel request (a separate
//!   short-lived connection carrying the backend's pid and secret key) for
//!   every open session; the interrupted statement fails with SQLSTATE 57014,
//!   which is reported as [`WarehouseError::Cancelled`].
//! * Statements run through the simple query protocol, so several statements
//!   can be sent at once and every result value arrives as text; `query`
//!   first prepares the statement (parse + describe only) to learn the column
//!   types and converts the text to JSON accordingly ([`convert`]).
//! * `bulk_insert` streams CSV through `COPY … FROM STDIN`, which the server
//!   parses with each column type's own input function (the same path as
//!   `psql \copy`); `load_rows` streams typed rows as binary COPY
//!   ([`binary`]), which the server stores without parsing.
//! * `sslmode` follows libpq: `disable`, `prefer` (TLS without certificate
//!   checks, falling back to plain), `require` (TLS without certificate checks
//!   unless `sslrootcert` is given), `verify-ca` and `verify-full` ([`tls`]).
//! * Database errors carry the server's message, detail, hint, context and
//!   the error position as `line L, column C` of the submitted SQL ([`error`]).
//!   Connection errors name `user@host:port/dbname`, never the password.

mod binary;
mod convert;
mod error;
mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, TryStreamExt};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::types::Type;
use tokio_postgres::{CancelToken, Client, NoTls, SimpleQueryMessage, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::rows::Rows;
use super::{
    ColumnMeta, Connection, Engine, PostgresTarget, QueryResult, Relation, Result, Warehouse,
    WarehouseError,
};
use tls::SslPolicy;

/// `application_name` reported to the server (visible in `pg_stat_activity`).
const APPLICATION_NAME: &str = "sluice";
/// dbt-postgres' default `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `cancel_all` waits for each cancel request to be delivered.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);
/// COPY data is sent to the server in chunks of about this many bytes.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Open a PostgreSQL warehouse. Does not connect: the first
/// [`Warehouse::connect`] does, so configuration errors that need the server
/// surface there.
pub fn open(target: &PostgresTarget) -> Result<Arc<dyn Warehouse>> {
    Ok(Arc::new(PostgresWarehouse::new(target)?))
}

/// An open PostgreSQL target. See the module docs.
pub struct PostgresWarehouse {
    runtime: Arc<Runtime>,
    settings: Arc<Settings>,
    sessions: Arc<Sessions>,
    version: OnceLock<String>,
}

/// Everything needed to open a session, derived once from the target.
struct Settings {
    config: tokio_postgres::Config,
    ssl: SslPolicy,
    tls: MakeRustlsConnect,
    /// `user@host:port/dbname`: how errors name the target.
    label: String,
    /// Limit for a whole connection attempt (TCP, TLS, authentication), as
    /// libpq's `connect_timeout`; tokio-postgres only bounds the TCP part.
    connect_timeout: Duration,
    /// Scrubbed from every error message, in case a driver ever echoes it.
    password: String,
}

/// Cancel tokens of the open sessions, and a counter bumped by every
/// `cancel_all` so a connection can tell a cancel it asked for from a
/// `statement_timeout`.
#[derive(Default)]
struct Sessions {
    tokens: Mutex<HashMap<u64, CancelToken>>,
    next_id: AtomicU64,
    cancel_epoch: AtomicU64,
}

impl Sessions {
    fn tokens(&self) -> MutexGuard<'_, HashMap<u64, CancelToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn register(&self, token: CancelToken) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.tokens().insert(id, token);
        id
    }

    fn unregister(&self, id: u64) {
        self.tokens().remove(&id);
    }

    fn epoch(&self) -> u64 {
        self.cancel_epoch.load(Ordering::SeqCst)
    }
}

impl PostgresWarehouse {
    /// Parse the target and start the runtime; no connection is made.
    pub fn new(target: &PostgresTarget) -> Result<Self> {
        let settings = Settings::from_target(target)?;
        Ok(PostgresWarehouse {
            runtime: Arc::new(Runtime::new()?),
            settings: Arc::new(settings),
            sessions: Arc::new(Sessions::default()),
            version: OnceLock::new(),
        })
    }

    /// Open a session; the concrete type behind [`Warehouse::connect`].
    pub fn connect_pg(&self) -> Result<PgConnection> {
        let session = self.runtime.block_on(open_session(&self.settings))?;
        let id = self.sessions.register(session.client.cancel_token());
        Ok(PgConnection {
            client: session.client,
            closed: session.closed,
            id,
            runtime: Arc::clone(&self.runtime),
            settings: Arc::clone(&self.settings),
            sessions: Arc::clone(&self.sessions),
        })
    }
}

impl Warehouse for PostgresWarehouse {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn connect(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(self.connect_pg()?))
    }

    fn cancel_all(&self) {
        self.sessions.cancel_epoch.fetch_add(1, Ordering::SeqCst);
        let tokens: Vec<CancelToken> = self.sessions.tokens().values().cloned().collect();
        let tls = self.settings.tls.clone();
        self.runtime.block_on(async move {
            let requests = tokens.iter().map(|token| {
                let tls = tls.clone();
                // Best effort: an unreachable server has nothing left to cancel.
                async move { tokio::time::timeout(CANCEL_TIMEOUT, token.cancel_query(tls)).await }
            });
            futures_util::future::join_all(requests).await;
        });
    }

    fn server_version(&self) -> Result<String> {
        if let Some(version) = self.version.get() {
            return Ok(version.clone());
        }
        let mut conn = self.connect_pg()?;
        let result = conn.query("show server_version")?;
        let raw = result
            .rows
            .first()
            .and_then(|row| row.first())
            .and_then(|value| value.as_str())
            .ok_or_else(|| {
                WarehouseError::Other("`show server_version` returned nothing".into())
            })?;
        let version = format_server_version(raw);
        Ok(self.version.get_or_init(|| version).clone())
    }
}

/// `15.18 (Debian 15.18-1.pgdg120+1)` → `PostgreSQL 15.18`.
fn format_server_version(raw: &str) -> String {
    let number = raw.split_whitespace().next().unwrap_or(raw);
    format!("PostgreSQL {number}")
}

impl Settings {
    fn from_target(target: &PostgresTarget) -> Result<Self> {
        let label = format!(
            "{}@{}:{}/{}",
            target.user, target.host, target.port, target.dbname
        );
        let connect_error = |message: String| WarehouseError::Connect {
            target: label.clone(),
            message,
        };
        let ssl = SslPolicy::parse(target.sslmode.as_deref(), extra_str(target, "sslrootcert"))
            .map_err(connect_error)?;
        let tls = tls::connector(&ssl).map_err(connect_error)?;
        let connect_timeout = target
            .connect_timeout
            .filter(|secs| *secs > 0)
            .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs);
        let mut config = base_config(target);
        config.connect_timeout(connect_timeout);
        Ok(Settings {
            config,
            ssl,
            tls,
            label,
            connect_timeout,
            password: target.password.clone(),
        })
    }

    /// The base configuration with `sslmode` set for one connection attempt.
    fn config(&self, mode: SslMode) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        config.ssl_mode(mode);
        config
    }

    fn scrub(&self, message: String) -> String {
        // A very short password would mangle unrelated text; those are not
        // worth hiding from a message anyway.
        if self.password.len() >= 3 && message.contains(&self.password) {
            message.replace(&self.password, "****")
        } else {
            message
        }
    }
}

fn base_config(target: &PostgresTarget) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(APPLICATION_NAME)
        .keepalives(true);
    if !target.password.is_empty() {
        config.password(&target.password);
    }
    if let Some(idle) = target.keepalives_idle.filter(|secs| *secs > 0) {
        config.keepalives_idle(Duration::from_secs(idle));
    }
    if let Some(options) = startup_options(target) {
        config.options(options);
    }
    config
}

/// `-c search_path=…` / `-c role=…` from the dbt-postgres profile keys.
fn startup_options(target: &PostgresTarget) -> Option<String> {
    let options: Vec<String> = ["search_path", "role"]
        .iter()
        .filter_map(|key| {
            let value = extra_str(target, key)?;
            // In `options`, spaces separate arguments; a backslash escapes one.
            let escaped = value.replace('\\', "\\\\").replace(' ', "\\ ");
            Some(format!("-c {key}={escaped}"))
        })
        .collect();
    (!options.is_empty()).then(|| options.join(" "))
}

fn extra_str<'a>(target: &'a PostgresTarget, key: &str) -> Option<&'a str> {
    target
        .extra
        .get(key)
        .and_then(|value| value.as_str())
        .filter(|value| !value.is_empty())
}

// ---------------------------------------------------------------------------
// Sessions

/// A freshly opened session: the client and where the connection task
/// records why the connection ended.
struct Session {
    client: Client,
    closed: Arc<Mutex<Option<String>>>,
}

async fn open_session(settings: &Settings) -> Result<Session> {
    let limit = settings.connect_timeout;
    match tokio::time::timeout(limit, try_open_session(settings)).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(WarehouseError::Connect {
            target: settings.label.clone(),
            message: settings.scrub(error::describe_connect_error(&e, &settings.ssl)),
        }),
        Err(_elapsed) => Err(WarehouseError::Connect {
            target: settings.label.clone(),
            message: format!(
                "timed out after {}s (connect_timeout) waiting for the server to accept the connection",
                limit.as_secs()
            ),
        }),
    }
}

async fn try_open_session(
    settings: &Settings,
) -> std::result::Result<Session, tokio_postgres::Error> {
    match settings.ssl {
        SslPolicy::Disable => spawn_connection(settings.config(SslMode::Disable), NoTls).await,
        SslPolicy::Prefer => {
            match spawn_connection(settings.config(SslMode::Prefer), settings.tls.clone()).await {
                // libpq's `prefer` also retries without TLS when the handshake fails.
                Err(e) if error::is_tls_failure(&e) => {
                    spawn_connection(settings.config(SslMode::Disable), NoTls).await
                }
                other => other,
            }
        }
        SslPolicy::Require { .. } => {
            spawn_connection(settings.config(SslMode::Require), settings.tls.clone()).await
        }
    }
}

async fn spawn_connection<T>(
    config: tokio_postgres::Config,
    tls: T,
) -> std::result::Result<Session, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    let closed = Arc::new(Mutex::new(None));
    let reason = Arc::clone(&closed);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            let mut slot = reason
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *slot = Some(error::describe_client_error(&e));
        }
    });
    Ok(Session { client, closed })
}

/// One PostgreSQL session (one backend process). Not shared between threads.
pub struct PgConnection {
    client: Client,
    closed: Arc<Mutex<Option<String>>>,
    id: u64,
    runtime: Arc<Runtime>,
    settings: Arc<Settings>,
    sessions: Arc<Sessions>,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        self.sessions.unregister(self.id);
    }
}

impl PgConnection {
    /// Run `fut` (which talks to the server about `sql`) and map its error.
    fn run<T: Send>(
        &self,
        sql: &str,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send,
    ) -> Result<T> {
        if self.client.is_closed() {
            return Err(self.connection_lost());
        }
        let epoch = self.sessions.epoch();
        self.runtime
            .block_on(fut)
            .map_err(|e| self.statement_error(sql, &e, epoch))
    }

    fn statement_error(&self, sql: &str, e: &tokio_postgres::Error, epoch: u64) -> WarehouseError {
        let cancel_requested = self.sessions.epoch() != epoch;
        match e.as_db_error() {
            Some(db) if error::is_cancel(db, cancel_requested) => WarehouseError::Cancelled,
            Some(db) if error::is_connection_fatal(db) => WarehouseError::Database {
                message: self.settings.scrub(format!(
                    "lost the connection to {}: {}",
                    self.settings.label,
                    error::format_db_error(db, sql)
                )),
            },
            Some(db) => WarehouseError::Database {
                message: self.settings.scrub(error::format_db_error(db, sql)),
            },
            None if e.is_closed() || self.client.is_closed() => self.connection_lost(),
            None => WarehouseError::Database {
                message: self.settings.scrub(error::describe_client_error(e)),
            },
        }
    }

    fn connection_lost(&self) -> WarehouseError {
        let reason = self
            .closed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_else(|| "the server closed the connection unexpectedly".to_string());
        WarehouseError::Database {
            message: self.settings.scrub(format!(
                "lost the connection to {}: {reason}",
                self.settings.label
            )),
        }
    }
}

impl Connection for PgConnection {
    fn execute(&mut self, sql: &str) -> Result<u64> {
        self.run(sql, execute_simple(&self.client, sql))
    }

    fn query(&mut self, sql: &str) -> Result<QueryResult> {
        self.run(sql, query_simple(&self.client, sql))
    }

    fn bulk_insert(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &[Vec<Option<String>>],
    ) -> Result<u64> {
        if let Some(bad) = rows.iter().position(|row| row.len() != columns.len()) {
            return Err(WarehouseError::Other(format!(
                "bulk insert into {}: row {} has {} values but there are {} columns",
                convert::qualified_name(relation),
                bad + 1,
                rows[bad].len(),
                columns.len()
            )));
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let statement = convert::copy_statement(relation, columns);
        self.run(&statement, copy_csv(&self.client, &statement, rows))
    }

    fn load_rows(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        rows: &Rows,
    ) -> Result<u64> {
        rows.check_width(relation, columns)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let describe = binary::describe_statement(relation, columns);
        let types = self.run(&describe, column_types(&self.client, &describe))?;
        if !binary::supported(&types) {
            let text: Vec<Vec<Option<String>>> = rows
                .rows()
                .map(|row| row.map(|v| v.to_text()).collect())
                .collect();
            return self.bulk_insert(relation, columns, &text);
        }
        let statement = binary::copy_statement(relation, columns);
        self.run(
            &statement,
            copy_binary(&self.client, &statement, columns, &types, rows),
        )?
        .map_err(|why| {
            WarehouseError::Other(format!(
                "bulk load into {}: {why}",
                convert::qualified_name(relation)
            ))
        })
    }

    fn can_copy_csv_file(&self) -> bool {
        true
    }

    fn copy_csv_file(
        &mut self,
        relation: &Relation,
        columns: &[ColumnMeta],
        path: &std::path::Path,
        delimiter: u8,
    ) -> Result<u64> {
        let statement = convert::copy_file_statement(relation, columns, delimiter);
        let file = std::fs::File::open(path)
            .map_err(|e| WarehouseError::Other(format!("reading {}: {e}", path.display())))?;
        self.run(&statement, copy_file(&self.client, &statement, file))
    }
}

/// Run one or more statements, discarding rows; rows affected by the last.
async fn execute_simple(
    client: &Client,
    sql: &str,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let mut stream = pin!(client.simple_query_raw(sql).await?);
    let mut affected = 0;
    while let Some(message) = stream.try_next().await? {
        if let SimpleQueryMessage::CommandComplete(rows) = message {
            affected = rows;
        }
    }
    Ok(affected)
}

/// Run a query and convert its (last) result set to JSON values.
async fn query_simple(
    client: &Client,
    sql: &str,
) -> std::result::Result<QueryResult, tokio_postgres::Error> {
    let types = match client.prepare(sql).await {
        Ok(statement) => Some(
            statement
                .columns()
                .iter()
                .map(|column| column.type_().clone())
                .collect::<Vec<Type>>(),
        ),
        // Several statements cannot be prepared; their values stay text.
        Err(e) if e.as_db_error().is_some_and(error::is_multiple_commands) => None,
        Err(e) => return Err(e),
    };
    let messages = client.simple_query(sql).await?;
    Ok(convert::result_from_messages(messages, types.as_deref()))
}

/// Stream `rows` as CSV into `statement` (a `COPY … FROM STDIN`).
async fn copy_csv(
    client: &Client,
    statement: &str,
    rows: &[Vec<Option<String>>],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let mut sink = pin!(client.copy_in::<_, bytes::Bytes>(statement).await?);
    let mut buf = BytesMut::with_capacity(COPY_CHUNK_BYTES + COPY_CHUNK_BYTES / 8);
    for row in rows {
        convert::push_csv_row(&mut buf, row);
        if buf.len() >= COPY_CHUNK_BYTES {
            sink.send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.split().freeze()).await?;
    }
    sink.as_mut().finish().await
}

/// The types of the columns a prepared statement returns.
async fn column_types(
    client: &Client,
    sql: &str,
) -> std::result::Result<Vec<Type>, tokio_postgres::Error> {
    let statement = client.prepare(sql).await?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect())
}

/// Stream typed `rows` into `statement` (a `COPY … (FORMAT binary)`), encoded
/// for the column `types` while the server stores earlier chunks. A value
/// that does not fit its column aborts the COPY (`Ok(Err(why))`).
async fn copy_binary(
    client: &Client,
    statement: &str,
    columns: &[ColumnMeta],
    types: &[Type],
    rows: &Rows,
) -> std::result::Result<std::result::Result<u64, String>, tokio_postgres::Error> {
    let mut sink = pin!(client.copy_in::<_, bytes::Bytes>(statement).await?);
    let mut buf = BytesMut::with_capacity(COPY_CHUNK_BYTES + COPY_CHUNK_BYTES / 8);
    binary::push_header(&mut buf);
    for (i, row) in rows.rows().enumerate() {
        if let Err(why) = binary::push_row(&mut buf, row, columns, types) {
            // Dropping the sink unfinished aborts the COPY.
            return Ok(Err(format!("row {}: {why}", i + 1)));
        }
        if buf.len() >= COPY_CHUNK_BYTES {
            sink.send(buf.split().freeze()).await?;
        }
    }
    binary::push_trailer(&mut buf);
    sink.send(buf.split().freeze()).await?;
    sink.as_mut().finish().await.map(Ok)
}

/// Stream a file's bytes into `statement` (a `COPY … FROM STDIN`), as `psql \copy` does.
async fn copy_file(
    client: &Client,
    statement: &str,
    mut file: std::fs::File,
) -> std::result::Result<u64, tokio_postgres::Error> {
    use std::io::Read;
    let mut sink = pin!(client.copy_in::<_, bytes::Bytes>(statement).await?);
    loop {
        let mut buf = BytesMut::zeroed(COPY_CHUNK_BYTES);
        // A read error ends the stream early; the server then sees a short
        // file and the caller's checked row count no longer matches.
        let n = file.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.truncate(n);
        sink.send(buf.freeze()).await?;
    }
    sink.as_mut().finish().await
}

// ---------------------------------------------------------------------------
// Runtime

/// The warehouse's tokio runtime. Shut down in the background on drop so that
/// dropping the last connection inside some other async context cannot panic.
struct Runtime {
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                WarehouseError::Other(format!("starting the PostgreSQL client runtime: {e}"))
            })?;
        Ok(Runtime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Run `fut` to completion on the calling thread. Called from inside
    /// another tokio runtime (where `block_on` would panic), the future runs
    /// on a short-lived helper thread instead.
    fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.handle.block_on(fut);
        }
        std::thread::scope(
            |scope| match scope.spawn(|| self.handle.block_on(fut)).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
