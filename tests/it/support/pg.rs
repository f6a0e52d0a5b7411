//! Throwaway PostgreSQL servers for integration tests.
//!
//! This module owns everything about getting a PostgreSQL server to test
//! against: finding the server binaries, building a cluster template, starting
//! and stopping per-test clusters, and creating scratch databases.
//!
//! # How a server is provided
//!
//! * **Local cluster (default).** `initdb` runs once into a *template* cluster
//!   (`-A trust`, `--no-sync`, UTF8, locale C, superuser `postgres`). The
//!   template lives in the system temp dir under a name keyed by uid, server
//!   version and initdb options, so it is built once per machine and shared by
//!   every test process (important under nextest, which runs one process per
//!   test); within a process a [`OnceLock`] guards it. Each [`PgServer::start`]
//!   copies the template into a fresh temp dir, picks a free 127.0.0.1 port and
//!   starts it with `pg_ctl start -w` (`fsync=off`, small `shared_buffers`,
//!   `TimeZone=UTC`, Unix socket inside the temp dir). Dropping the
//!   [`PgServer`] runs `pg_ctl stop -m immediate` and deletes the directory.
//!   When the tests run as root (PostgreSQL refuses to), `initdb`/`pg_ctl` run
//!   via `runuser -u postgres --` and the directories are chowned to
//!   `postgres`.
//! * **External server.** If `SLUICE_TEST_DATABASE_URL` is set (e.g.
//!   `postgres://me:secret@db:5432/postgres`), no cluster is started: each
//!   [`PgServer::start`] creates a database with a random name on that server
//!   (the URL's user needs `CREATEDB`) and drops it on `Drop`. TLS is not
//!   supported; the server must accept plain connections.
//!
//! Server binaries are looked up in `$SLUICE_PG_BINDIR`, then
//! `/usr/lib/postgresql/<newest>/bin`, then `pg_config --bindir`, then `PATH`.
//! If none is found the harness panics with install instructions: tests that
//! need PostgreSQL never skip silently.
//!
//! The API is synchronous and may be called from plain `#[test]`s and from
//! inside a tokio runtime alike (admin SQL runs on its own thread).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Environment variable naming an existing server to use instead of local clusters.
pub const EXTERNAL_URL_ENV: &str = "SLUICE_TEST_DATABASE_URL";
/// Environment variable overriding the directory holding `initdb`/`pg_ctl`/`postgres`.
pub const BINDIR_ENV: &str = "SLUICE_PG_BINDIR";

/// Superuser created by `initdb` in local clusters.
const LOCAL_SUPERUSER: &str = "postgres";
/// Database every local cluster has from the start.
const LOCAL_DBNAME: &str = "postgres";
/// Bump when the template's initdb options or layout change.
const TEMPLATE_LAYOUT: u32 = 1;
/// Arguments passed to `initdb` for the template cluster.
const INITDB_ARGS: &[&str] = &[
    "-A",
    "trust",
    "-U",
    LOCAL_SUPERUSER,
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
];
/// How often starting a local cluster is retried (covers the port race).
const START_ATTEMPTS: u32 = 3;

/// A running PostgreSQL server (or a scratch database on an external one).
///
/// Connect with [`PgServer::url`], [`PgServer::config`] or
/// [`PgServer::connect`]. The public fields describe the connection to the
/// test's database; with a local cluster the user is a trust-authenticated
/// superuser without a password.
pub struct PgServer {
    /// Host name or IP (`127.0.0.1` for local clusters; may be a socket
    /// directory for an external server).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User to connect as.
    pub user: String,
    /// Password, if the server needs one (never for local clusters).
    pub password: Option<String>,
    /// The test's database.
    pub dbname: String,
    backend: Backend,
}

enum Backend {
    Local(LocalCluster),
    External {
        /// Database to connect to for `CREATE/DROP DATABASE`.
        admin_dbname: String,
        /// Databases this handle created; dropped on `Drop`.
        created: Mutex<Vec<String>>,
    },
}

struct LocalCluster {
    bins: &'static PgBins,
    /// Root of the cluster: `data/`, `postgres.log` and the Unix socket.
    dir: tempfile::TempDir,
}

impl LocalCluster {
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }
}

impl PgServer {
    /// Provide a PostgreSQL server for one test.
    ///
    /// Starts a fresh local cluster, or, when `SLUICE_TEST_DATABASE_URL` is
    /// set, creates a fresh database on that server. Panics with a clear
    /// message when neither is possible (e.g. the server binaries are missing).
    pub fn start() -> PgServer {
        match std::env::var(EXTERNAL_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => start_external(url.trim()),
            _ => start_local(),
        }
    }

    /// A sluice target for the test's database, building into `schema`.
    pub fn target(&self, schema: &str) -> sluice::warehouse::TargetConfig {
        serde_json::from_value(serde_json::json!({
            "type": "postgres", "host": self.host, "port": self.port, "user": self.user,
            "password": self.password.clone().unwrap_or_default(), "dbname": self.dbname,
            "schema": schema, "sslmode": "disable"
        }))
        .expect("postgres target")
    }

    /// `postgres://` URL of the test's database.
    pub fn url(&self) -> String {
        self.url_for(&self.dbname)
    }

    /// `postgres://` URL of `dbname` on this server, with the same credentials.
    pub fn url_for(&self, dbname: &str) -> String {
        let mut url = String::from("postgres://");
        url.push_str(&pct_encode(&self.user));
        if let Some(password) = &self.password {
            url.push(':');
            url.push_str(&pct_encode(password));
        }
        url.push('@');
        url.push_str(&pct_encode(&self.host));
        write!(url, ":{}/{}", self.port, pct_encode(dbname)).unwrap();
        url
    }

    /// tokio-postgres configuration for the test's database.
    pub fn config(&self) -> tokio_postgres::Config {
        self.config_for(&self.dbname)
    }

    /// tokio-postgres configuration for `dbname` on this server.
    pub fn config_for(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name("sluice-tests")
            .connect_timeout(Duration::from_secs(30));
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    /// Connect to the test's database (must be called inside a tokio runtime;
    /// the connection task is spawned onto it).
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.connect_to(&self.dbname).await
    }

    /// Connect to `dbname` on this server (inside a tokio runtime).
    pub async fn connect_to(&self, dbname: &str) -> tokio_postgres::Client {
        let (client, connection) = self
            .config_for(dbname)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connecting to {} failed: {}",
                    self.url_for(dbname),
                    pg_error(&e)
                )
            });
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("test PostgreSQL connection closed with error: {e}");
            }
        });
        client
    }

    /// Create a new, empty database with a random name on this server and
    /// return its name. With an external server it is dropped with `self`;
    /// with a local cluster it goes away with the cluster.
    pub fn fresh_database(&self) -> String {
        let name = random_dbname();
        if let Backend::External { created, .. } = &self.backend {
            created.lock().unwrap().push(name.clone());
        }
        self.admin_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .unwrap_or_else(|e| panic!("creating test database {name} failed: {e}"));
        name
    }

    /// Whether this handle uses `SLUICE_TEST_DATABASE_URL` rather than a local cluster.
    pub fn is_external(&self) -> bool {
        matches!(self.backend, Backend::External { .. })
    }

    /// Directory holding the local cluster's Unix socket (`None` when external).
    pub fn socket_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(cluster) => Some(cluster.dir.path()),
            Backend::External { .. } => None,
        }
    }

    /// The local cluster's server log, for diagnosing failures (empty when external).
    pub fn server_log(&self) -> String {
        match &self.backend {
            Backend::Local(cluster) => {
                std::fs::read_to_string(cluster.log_path()).unwrap_or_default()
            }
            Backend::External { .. } => String::new(),
        }
    }

    /// Run `sql` (one or more statements) against the admin database.
    fn admin_execute(&self, sql: &str) -> Result<(), String> {
        let admin_db = match &self.backend {
            Backend::Local(_) => LOCAL_DBNAME,
            Backend::External { admin_dbname, .. } => admin_dbname.as_str(),
        };
        batch_execute_blocking(self.config_for(admin_db), sql.to_owned())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Never panic here: a panic while a failing test unwinds would abort.
        match &self.backend {
            Backend::Local(cluster) => {
                let mut cmd = pg_command(&cluster.bins.pg_ctl);
                cmd.arg("stop").arg("-D").arg(cluster.data_dir()).args([
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                    "-s",
                ]);
                if let Err(e) = run(&mut cmd, "pg_ctl stop") {
                    eprintln!("warning: stopping test PostgreSQL cluster failed: {e}");
                }
                // `cluster.dir` (a TempDir) deletes the directory when dropped.
            }
            Backend::External { created, .. } => {
                let names: Vec<String> = created.lock().map(|v| v.clone()).unwrap_or_default();
                for name in names.iter().rev() {
                    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
                    if let Err(e) = self.admin_execute(&sql) {
                        eprintln!("warning: dropping test database {name} failed: {e}");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// External server

fn start_external(url: &str) -> PgServer {
    let parsed: tokio_postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("{EXTERNAL_URL_ENV} is not a valid PostgreSQL URL: {e}"));
    let host = match parsed.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".to_owned(),
    };
    let user = parsed
        .get_user()
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| panic!("{EXTERNAL_URL_ENV} must name a user"));
    let password = parsed.get_password().map(|p| {
        String::from_utf8(p.to_vec()).expect("password in SLUICE_TEST_DATABASE_URL must be UTF-8")
    });
    let admin_dbname = parsed.get_dbname().unwrap_or("postgres").to_owned();
    let mut server = PgServer {
        host,
        port: parsed.get_ports().first().copied().unwrap_or(5432),
        user,
        password,
        dbname: admin_dbname.clone(),
        backend: Backend::External {
            admin_dbname,
            created: Mutex::new(Vec::new()),
        },
    };
    server.dbname = server.fresh_database();
    server
}

// ---------------------------------------------------------------------------
// Local clusters

fn start_local() -> PgServer {
    let bins = pg_bins();
    let template = template_data_dir(bins);
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match try_start_local(bins, template) {
            Ok(server) => return server,
            Err(e) => failures.push(e),
        }
    }
    panic!(
        "could not start a test PostgreSQL cluster ({} from {}); attempts:\n\n{}\n\n\
         If the template cluster looks broken, delete {} and retry.",
        bins.version,
        bins.bindir.display(),
        failures.join("\n\n"),
        template.parent().unwrap_or(template).display(),
    );
}

fn try_start_local(bins: &'static PgBins, template: &Path) -> Result<PgServer, String> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-pg-")
        .tempdir()
        .map_err(|e| format!("creating a temp dir for the cluster failed: {e}"))?;
    chown_to_postgres(dir.path())?;
    let cluster = LocalCluster { bins, dir };
    let data_dir = cluster.data_dir();

    // `cp -a` keeps the 0700 mode and (as root) the postgres ownership.
    run(
        Command::new("cp").arg("-a").arg(template).arg(&data_dir),
        "copying the template cluster",
    )?;

    let port = free_port()?;
    let settings = format!(
        "\n# Added by the sluice test harness.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         wal_level = minimal\n\
         max_wal_senders = 0\n\
         shared_buffers = 16MB\n\
         max_connections = 100\n\
         max_parallel_workers_per_gather = 0\n\
         TimeZone = 'UTC'\n\
         log_timezone = 'UTC'\n",
        socket_dir = cluster.dir.path().display().to_string().replace('\'', "''"),
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(data_dir.join("postgresql.conf"))
        .and_then(|mut f| f.write_all(settings.as_bytes()))
        .map_err(|e| format!("writing postgresql.conf failed: {e}"))?;

    let mut cmd = pg_command(&bins.pg_ctl);
    cmd.arg("start")
        .arg("-D")
        .arg(&data_dir)
        .arg("-l")
        .arg(cluster.log_path())
        .args(["-w", "-t", "60", "-s"]);
    if let Err(e) = run(&mut cmd, "pg_ctl start") {
        let log = std::fs::read_to_string(cluster.log_path()).unwrap_or_default();
        // In case it came up after the timeout: stop it before the dir goes away.
        let mut stop = pg_command(&bins.pg_ctl);
        stop.arg("stop")
            .arg("-D")
            .arg(&data_dir)
            .args(["-m", "immediate", "-s"]);
        let _ = stop.output();
        return Err(format!(
            "{e}\n--- server log (port {port}) ---\n{}",
            tail(&log, 4000)
        ));
    }

    Ok(PgServer {
        host: "127.0.0.1".to_owned(),
        port,
        user: LOCAL_SUPERUSER.to_owned(),
        password: None,
        dbname: LOCAL_DBNAME.to_owned(),
        backend: Backend::Local(cluster),
    })
}

/// The template cluster's data directory, built on first use (see module docs).
fn template_data_dir(bins: &'static PgBins) -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| build_or_reuse_template(bins))
}

fn build_or_reuse_template(bins: &PgBins) -> PathBuf {
    let key = fnv1a(&format!(
        "{TEMPLATE_LAYOUT}\n{}\n{}\n{}",
        bins.bindir.display(),
        bins.version,
        INITDB_ARGS.join(" ")
    ));
    let tmp = std::env::temp_dir();
    let name = format!("sluice-pg-template-u{}-{key:016x}", current_uid());
    let final_dir = tmp.join(&name);
    if template_is_complete(&final_dir) {
        return final_dir.join("data");
    }

    // Build in a private staging dir and publish with an atomic rename, so
    // concurrent test processes never see a half-built template.
    let staging = tempfile::Builder::new()
        .prefix(&format!("{name}.staging-"))
        .tempdir_in(&tmp)
        .unwrap_or_else(|e| panic!("creating a staging dir in {} failed: {e}", tmp.display()));
    chown_to_postgres(staging.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut initdb = pg_command(&bins.initdb);
    initdb
        .arg("-D")
        .arg(staging.path().join("data"))
        .args(INITDB_ARGS);
    run(&mut initdb, "initdb (template cluster)").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(staging.path().join("READY"), &bins.version)
        .unwrap_or_else(|e| panic!("writing the template marker failed: {e}"));

    let staging = staging.keep();
    for _ in 0..2 {
        match std::fs::rename(&staging, &final_dir) {
            Ok(()) => return final_dir.join("data"),
            Err(_) if template_is_complete(&final_dir) => {
                // Another test process published first; use theirs.
                let _ = std::fs::remove_dir_all(&staging);
                return final_dir.join("data");
            }
            // A broken leftover (e.g. partly cleaned by tmpfiles): replace it.
            Err(_) => {
                let _ = std::fs::remove_dir_all(&final_dir);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    panic!(
        "could not publish the template cluster at {}",
        final_dir.display()
    );
}

fn template_is_complete(dir: &Path) -> bool {
    dir.join("READY").is_file()
        && dir.join("data/PG_VERSION").is_file()
        && dir.join("data/global/pg_control").is_file()
        && dir.join("data/postgresql.conf").is_file()
}

/// Ask the OS for a free TCP port on 127.0.0.1. Racy by nature; the caller retries.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("finding a free port failed: {e}"))
}

// ---------------------------------------------------------------------------
// Server binaries and running them

struct PgBins {
    bindir: PathBuf,
    initdb: PathBuf,
    pg_ctl: PathBuf,
    /// `postgres --version` output, e.g. `postgres (PostgreSQL) 15.18 (Debian ...)`.
    version: String,
}

fn pg_bins() -> &'static PgBins {
    static BINS: OnceLock<PgBins> = OnceLock::new();
    BINS.get_or_init(|| {
        let bindir = find_bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: looked in \
                 ${BINDIR_ENV}, /usr/lib/postgresql/*/bin, `pg_config --bindir` and PATH.\n\
                 The PostgreSQL integration tests need them. Either:\n  \
                 * run `scripts/test.sh` (the documented test command; it installs them), or\n  \
                 * install the server: `sudo apt-get install -y postgresql-15` \
                 (or `postgresql`; on macOS `brew install postgresql@15`), or\n  \
                 * set {BINDIR_ENV} to the directory holding initdb/pg_ctl, or\n  \
                 * set {EXTERNAL_URL_ENV}=postgres://user:pass@host:port/db to use a running server."
            )
        });
        let postgres = bindir.join("postgres");
        let version = Command::new(&postgres)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| panic!("`{} --version` failed", postgres.display()));
        PgBins {
            initdb: bindir.join("initdb"),
            pg_ctl: bindir.join("pg_ctl"),
            bindir,
            version,
        }
    })
}

fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };

    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        assert!(
            has_server(&dir),
            "{BINDIR_ENV}={} does not contain initdb, pg_ctl and postgres",
            dir.display()
        );
        return Some(dir);
    }

    // Debian/Ubuntu: /usr/lib/postgresql/<major>/bin; prefer the newest major.
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Some(dir);
    }

    // pg_config often belongs to the client package only, so check what it points at.
    let pg_config_dir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    pg_config_dir
        .into_iter()
        .chain(path_dirs)
        .find(|dir| has_server(dir))
        // Resolve symlinks such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
        // so initdb finds its sibling `postgres` binary and share dir.
        .map(|dir| {
            std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| has_server(d))
                .unwrap_or(dir)
        })
}

/// Whether this process runs as root, in which case PostgreSQL programs must
/// run as the `postgres` user.
fn running_as_root() -> bool {
    current_uid() == "0"
}

fn current_uid() -> &'static str {
    static UID: OnceLock<String> = OnceLock::new();
    UID.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("`id -u` failed; cannot tell whether the tests run as root")
    })
}

/// A command for a PostgreSQL program, run as `postgres` when we are root.
fn pg_command(program: &Path) -> Command {
    let mut cmd = if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    // The postgres user may not be able to enter the test's working directory,
    // and the caller's locale may not be installed.
    cmd.current_dir("/").env("LC_ALL", "C").env_remove("PGDATA");
    cmd
}

/// Give `path` to the `postgres` user when running as root (no-op otherwise).
fn chown_to_postgres(path: &Path) -> Result<(), String> {
    if !running_as_root() {
        return Ok(());
    }
    run(
        Command::new("chown").arg("postgres:").arg(path),
        "chown to the postgres user (running as root needs a `postgres` OS user; \
         installing the postgresql package creates it)",
    )
    .map(drop)
}

/// Run `cmd` to completion; on failure return a message with its output.
fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd
        .output()
        .map_err(|e| format!("{what}: could not run {cmd:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {cmd:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        tail(&String::from_utf8_lossy(&output.stdout), 4000),
        tail(&String::from_utf8_lossy(&output.stderr), 4000),
    ))
}

// ---------------------------------------------------------------------------
// Small helpers

/// Run SQL on a dedicated thread with its own runtime, so callers may be sync
/// or already inside a tokio runtime.
fn batch_execute_blocking(config: tokio_postgres::Config, sql: String) -> Result<(), String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("building a tokio runtime failed: {e}"))?;
        runtime.block_on(async move {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("connecting failed: {}", pg_error(&e)))?;
            let connection = tokio::spawn(connection);
            let result = client.batch_execute(&sql).await;
            drop(client);
            let _ = connection.await;
            result.map_err(|e| format!("`{sql}` failed: {}", pg_error(&e)))
        })
    })
    .join()
    .unwrap_or_else(|_| Err("admin SQL thread panicked".to_owned()))
}

/// Render a tokio-postgres error with the server's message when there is one.
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                write!(msg, ": {s}").unwrap();
                source = s.source();
            }
            msg
        }
    }
}

fn random_dbname() -> String {
    format!("sluice_test_{}", uuid::Uuid::new_v4().simple())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// 64-bit FNV-1a: a stable hash for the template directory name.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encodes_credentials_and_socket_hosts() {
        let server = PgServer {
            host: "/var/run/postgresql".into(),
            port: 5432,
            user: "me".into(),
            password: Some("p@ss:word/".into()),
            dbname: "db".into(),
            backend: Backend::External {
                admin_dbname: "postgres".into(),
                created: Mutex::new(Vec::new()),
            },
        };
        let url = server.url();
        assert_eq!(
            url,
            "postgres://me:p%40ss%3Aword%2F@%2Fvar%2Frun%2Fpostgresql:5432/db"
        );
        let parsed: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"p@ss:word/"[..]));
        // Nothing was created, so Drop must not try to reach the server.
        drop(server);
    }
}
